/*
 * qcow2 format driver: shared definitions.
 *
 * The driver is split by concern:
 *   qcow2.c           open (header, extensions, feature checks), the
 *                     BlockDriver table, read/write/zero/discard/status
 *   qcow2-cache.c     write-back cache of L2 tables and refcount blocks,
 *                     with flush dependencies between the two caches
 *   qcow2-refcount.c  refcount table/blocks of any refcount_order,
 *                     cluster and byte allocation, freeing, table growth
 *   qcow2-cluster.c   guest -> host mapping (L1/L2), L2 allocation and
 *                     copy-on-write of shared L2 tables, L1 growth,
 *                     zeroing and discarding of whole clusters
 *   qcow2-compress.c  raw deflate of single clusters (read and write)
 *   qcow2-snapshot.c  read-only validation of the internal snapshot table
 *   qcow2-create.c    image creation and metadata preallocation
 *   qcow2-measure.c   qemu-img measure: size of a new image
 *   qcow2-amend.c     header rewrites: backing file change, amend
 *                     (compat, lazy_refcounts), emptying the image
 *
 * Crash consistency (what a SIGKILL or power loss may leave behind):
 * a cluster's refcount reaches the file before any L2 entry that points at
 * it (the L2 cache "depends" on the refcount cache), a new L2 table is on
 * disk before the L1 entry that points at it, and when clusters are freed
 * the L2 entries are cleared on disk before the refcounts are decreased
 * (the refcount cache then depends on the L2 cache).  The L1 entry of a
 * new L2 table is written at the next flush of the L2 cache, after the
 * table, behind a barrier (until then it is in memory only).  The worst
 * case is a
 * leak (refcount > references), never a cluster referenced with a refcount
 * too low.  In-memory values of the L1 and refcount tables are host
 * endian; the cached L2 tables and refcount blocks are kept big endian, as
 * on disk.
 *
 * Locking: s->lock (CoMutex) protects all metadata.  Data I/O runs
 * without the lock: reads and in-place overwrites of allocated clusters,
 * and the data write of an allocating write, which is registered as an
 * in-flight allocation (Qcow2InFlightAlloc) until its L2 entries are set.
 * Every request that changes the mapping of guest clusters first waits
 * for the in-flight allocations overlapping its range.  All data I/O
 * without the lock is counted in s->data_io_in_flight, and clusters freed
 * meanwhile are not handed out again until the count drops to zero.  The
 * rules in full are at the top of qcow2.c.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include "qemu/osdep.h"
#include "block/block_int.h"

#define QCOW_MAGIC 0x514649fbU  /* 'Q' 'F' 'I' 0xfb */

#define QCOW_MIN_CLUSTER_BITS 9
#define QCOW_MAX_CLUSTER_BITS 21
#define QCOW2_DEFAULT_CLUSTER_SIZE 65536

/* QEMU's limits on table sizes (bytes) */
#define QCOW_MAX_L1_SIZE        (32 * MiB)
#define QCOW_MAX_REFTABLE_SIZE  (8 * MiB)
#define QCOW_MAX_SNAPSHOTS      65536
#define QCOW_MAX_BACKING_NAME   1023

#define QCOW2_V2_HEADER_SIZE 72
#define QCOW2_V3_HEADER_SIZE 104
#define QCOW2_HEADER_SIZE    112  /* what we write for v3 */

/* header field offsets (big endian on disk) */
#define QCOW2_HDR_MAGIC                 0
#define QCOW2_HDR_VERSION               4
#define QCOW2_HDR_BACKING_OFFSET        8
#define QCOW2_HDR_BACKING_SIZE          16
#define QCOW2_HDR_CLUSTER_BITS          20
#define QCOW2_HDR_SIZE                  24
#define QCOW2_HDR_CRYPT_METHOD          32
#define QCOW2_HDR_L1_SIZE               36
#define QCOW2_HDR_L1_OFFSET             40
#define QCOW2_HDR_REFTABLE_OFFSET       48
#define QCOW2_HDR_REFTABLE_CLUSTERS     56
#define QCOW2_HDR_NB_SNAPSHOTS          60
#define QCOW2_HDR_SNAPSHOTS_OFFSET      64
#define QCOW2_HDR_INCOMPAT              72
#define QCOW2_HDR_COMPAT                80
#define QCOW2_HDR_AUTOCLEAR             88
#define QCOW2_HDR_REFCOUNT_ORDER        96
#define QCOW2_HDR_HEADER_LENGTH         100
#define QCOW2_HDR_COMPRESSION_TYPE      104

/* header extensions */
#define QCOW2_EXT_MAGIC_END             0
#define QCOW2_EXT_MAGIC_BACKING_FORMAT  0xe2792acaU
#define QCOW2_EXT_MAGIC_FEATURE_TABLE   0x6803f857U
#define QCOW2_EXT_MAGIC_CRYPTO_HEADER   0x0537be77U
#define QCOW2_EXT_MAGIC_BITMAPS         0x23852875U
#define QCOW2_EXT_MAGIC_DATA_FILE       0x44415441U

/* feature bits */
#define QCOW2_INCOMPAT_DIRTY            (UINT64_C(1) << 0)
#define QCOW2_INCOMPAT_CORRUPT          (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE        (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION      (UINT64_C(1) << 3)
#define QCOW2_INCOMPAT_EXTL2            (UINT64_C(1) << 4)
#define QCOW2_INCOMPAT_SUPPORTED        (QCOW2_INCOMPAT_DIRTY | \
                                         QCOW2_INCOMPAT_CORRUPT | \
                                         QCOW2_INCOMPAT_COMPRESSION)
#define QCOW2_COMPAT_LAZY_REFCOUNTS     (UINT64_C(1) << 0)
#define QCOW2_AUTOCLEAR_BITMAPS         (UINT64_C(1) << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW   (UINT64_C(1) << 1)

#define QCOW2_FEAT_TYPE_INCOMPATIBLE    0
#define QCOW2_FEAT_TYPE_COMPATIBLE      1
#define QCOW2_FEAT_TYPE_AUTOCLEAR       2

/* L1 / L2 / refcount table entries */
#define QCOW_OFLAG_COPIED       (UINT64_C(1) << 63)
#define QCOW_OFLAG_COMPRESSED   (UINT64_C(1) << 62)
#define QCOW_OFLAG_ZERO         (UINT64_C(1) << 0)
#define L1E_OFFSET_MASK         UINT64_C(0x00fffffffffffe00)
#define L2E_OFFSET_MASK         UINT64_C(0x00fffffffffffe00)
#define L1E_RESERVED_MASK       UINT64_C(0x7f000000000001ff)
#define L2E_STD_RESERVED_MASK   UINT64_C(0x3f000000000001fe)
#define REFT_OFFSET_MASK        UINT64_C(0xfffffffffffffe00)

/* big-endian load/store on byte buffers */
static inline uint64_t q2_ld64(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_BE(v);
}

static inline uint32_t q2_ld32(const void *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_BE(v);
}

static inline uint16_t q2_ld16(const void *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT16_FROM_BE(v);
}

static inline void q2_st64(void *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, sizeof(v));
}

static inline void q2_st32(void *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, sizeof(v));
}

static inline void q2_st16(void *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, sizeof(v));
}

typedef enum Qcow2ClusterType {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,
    QCOW2_CLUSTER_ZERO_ALLOC,
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

typedef struct Qcow2Cache Qcow2Cache;

typedef struct Qcow2UnknownExt {
    uint32_t magic;
    uint32_t len;
} Qcow2UnknownExt;

/*
 * An allocating write between the allocation of its host clusters and the
 * update of the L2 entries of guest clusters [start, end) (cluster
 * aligned), while s->lock is dropped for its data write.  Lives on the
 * writer's stack, linked in s->allocs_in_flight; requests that change the
 * mapping of an overlapping guest cluster wait on @waiters.
 */
typedef struct Qcow2InFlightAlloc {
    uint64_t start;
    uint64_t end;
    uint64_t host;             /* first new host cluster */
    CoQueue waiters;
    struct Qcow2InFlightAlloc *next;
} Qcow2InFlightAlloc;

typedef struct BDRVQcow2State {
    int qcow_version;
    int cluster_bits;
    int cluster_size;
    int l2_bits;               /* log2 of entries per L2 table */
    int l2_size;               /* entries per L2 table */
    int refcount_order;
    int refcount_bits;
    int refblock_bits;         /* log2 of entries per refcount block */
    int refblock_size;         /* entries per refcount block */
    uint64_t refcount_max;
    uint64_t size;             /* virtual disk size */
    uint32_t header_length;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint8_t compression_type;

    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t *l1_table;        /* host endian, l1_size entries */
    /* [start, end): entries not yet written (new L2 tables, see -cluster.c) */
    uint64_t l1_dirty_start;
    uint64_t l1_dirty_end;

    uint64_t refcount_table_offset;
    uint32_t refcount_table_size;  /* entries */
    uint64_t *refcount_table;      /* host endian */

    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;   /* bytes of the snapshot table */

    bool has_bitmaps_ext;
    /* bitmaps extension (only for the consistency check) */
    uint32_t nb_bitmaps;
    uint64_t bitmap_directory_size;
    uint64_t bitmap_directory_offset;
    bool has_feature_table;

    Qcow2Cache *l2_table_cache;
    Qcow2Cache *refcount_block_cache;

    CoMutex lock;
    int64_t free_cluster_index;
    /*
     * Allocation hint: no free run in [free_run_start, free_run_end) is
     * longer than free_run_max clusters; used while free_cluster_index ==
     * free_run_start, dropped (free_run_end = 0) when a cluster is freed.
     */
    int64_t free_run_start;
    int64_t free_run_end;
    int64_t free_run_max;
    int64_t free_byte_offset;      /* compressed data packing, 0 = none */
    unsigned data_io_in_flight;
    int64_t deferred_free_index;   /* -1: nothing freed while in flight */
    Qcow2InFlightAlloc *allocs_in_flight;  /* under s->lock */

    /* the last decompressed cluster */
    uint8_t *cluster_cache;
    uint8_t *cluster_data;
    int64_t cluster_cache_offset;  /* host offset of its L2 entry, -1 */

    bool corrupt_signalled;    /* a corruption event was reported */
    bool corrupt_fatal;        /* ... a fatal one: the node is unusable */
} BDRVQcow2State;

static inline int64_t qcow2_start_of_cluster(BDRVQcow2State *s, int64_t o)
{
    return o & ~((int64_t)s->cluster_size - 1);
}

static inline int64_t qcow2_offset_into_cluster(BDRVQcow2State *s,
                                                int64_t o)
{
    return o & (s->cluster_size - 1);
}

static inline int64_t qcow2_size_to_clusters(BDRVQcow2State *s,
                                             uint64_t size)
{
    return (size + s->cluster_size - 1) >> s->cluster_bits;
}

static inline int qcow2_l2_index(BDRVQcow2State *s, uint64_t offset)
{
    return (offset >> s->cluster_bits) & (s->l2_size - 1);
}

static inline uint64_t qcow2_l1_index(BDRVQcow2State *s, uint64_t offset)
{
    return offset >> (s->cluster_bits + s->l2_bits);
}

Qcow2ClusterType qcow2_get_cluster_type(BDRVQcow2State *s,
                                        uint64_t l2_entry);

/* number of L1 entries needed for a disk of size bytes */
static inline uint64_t qcow2_l1_entries_for(int cluster_bits, uint64_t size)
{
    int shift = cluster_bits + (cluster_bits - 3);

    return (size + (1ULL << shift) - 1) >> shift;
}

/*
 * The VM state lives behind the guest disk, from the first guest offset
 * the L1 table of a disk of this size does not cover (QEMU's layout)
 */
static inline uint64_t qcow2_vm_state_offset(BDRVQcow2State *s)
{
    return qcow2_l1_entries_for(s->cluster_bits, s->size) <<
           (s->cluster_bits + s->l2_bits);
}

/*
 * Metadata corruption found (QEMU's qcow2_signal_corruption): fatal on a
 * writable image, i.e. the corrupt bit is set and every later request
 * fails (-ENOMEDIUM, as QEMU's unusable node); returns -EIO for the
 * request that found it.  qcow2_report_corruption is the non-fatal kind
 * (only reported; the request goes on).
 */
int qcow2_signal_corruption(BlockDriverState *bs, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
void qcow2_report_corruption(BlockDriverState *bs, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* qcow2-cache.c */
Qcow2Cache *qcow2_cache_create(BlockDriverState *bs, int num_tables,
                               int table_size);
void qcow2_cache_destroy(Qcow2Cache *c);
int coroutine_fn qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c,
                                 uint64_t offset, void **table);
int coroutine_fn qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c,
                                       uint64_t offset, void **table);
void qcow2_cache_put(Qcow2Cache *c, void **table);
void qcow2_cache_entry_mark_dirty(Qcow2Cache *c, void *table);
int coroutine_fn qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c);
int coroutine_fn qcow2_cache_set_dependency(BlockDriverState *bs,
                                            Qcow2Cache *c,
                                            Qcow2Cache *dependency);
void qcow2_cache_depends_on_flush(Qcow2Cache *c);
/* forget a cached table whose cluster is freed (dirty data dropped) */
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
/* is the table at offset in the cache? */
bool qcow2_cache_has(Qcow2Cache *c, uint64_t offset);
/* offset of a table obtained from the cache */
uint64_t qcow2_cache_table_offset(Qcow2Cache *c, void *table);
int qcow2_cache_num_tables(Qcow2Cache *c);

/* qcow2-refcount.c */
int coroutine_fn qcow2_refcount_init(BlockDriverState *bs, Error **errp);
uint64_t qcow2_refcount_get_entry(BDRVQcow2State *s, const void *block,
                                  uint64_t index);
void qcow2_refcount_set_entry(BDRVQcow2State *s, void *block,
                              uint64_t index, uint64_t value);
int coroutine_fn qcow2_get_refcount(BlockDriverState *bs,
                                    int64_t cluster_index,
                                    uint64_t *refcount);
/* allocate n contiguous clusters with refcount 1; returns host offset */
int64_t coroutine_fn qcow2_alloc_clusters(BlockDriverState *bs, int64_t n);
/* allocate bytes for compressed data (may share a host cluster) */
int64_t coroutine_fn qcow2_alloc_bytes(BlockDriverState *bs, int size);
/* add delta (+1/-1) to the refcount of every cluster touched */
int coroutine_fn qcow2_update_refcount(BlockDriverState *bs, int64_t offset,
                                       int64_t length, int delta);
/* decrease refcounts (after the referencing metadata is gone) */
int coroutine_fn qcow2_free_clusters(BlockDriverState *bs, int64_t offset,
                                     int64_t length);
/* free what an L2 entry references (normal, zero-alloc, compressed) */
int coroutine_fn qcow2_free_any_cluster(BlockDriverState *bs,
                                        uint64_t l2_entry);
void qcow2_data_io_begin(BDRVQcow2State *s);
void qcow2_data_io_end(BDRVQcow2State *s);
/* compressed entry -> host offset and number of bytes it may occupy */
void qcow2_parse_compressed_entry(BDRVQcow2State *s, uint64_t l2_entry,
                                  uint64_t *host, int *bytes);

/* qcow2-cluster.c */
/*
 * Map guest offset: *bytes in = max, out = length of the run (same type,
 * contiguous on the host for NORMAL/ZERO_ALLOC; one cluster for
 * COMPRESSED; never crossing an L2 table).  *l2_entry gets the raw entry
 * of the first cluster.
 */
int coroutine_fn qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset,
                                       uint64_t *bytes, uint64_t *host,
                                       Qcow2ClusterType *type,
                                       uint64_t *l2_entry);
/*
 * Get the L2 table for offset for modification: allocates the table or
 * copies a shared one (refcount > 1).  *table is a cache reference.
 */
int coroutine_fn qcow2_get_l2_for_write(BlockDriverState *bs,
                                        uint64_t offset, uint64_t **table,
                                        int *index);
/*
 * In-flight allocations (caller holds s->lock).  wait_for_allocations
 * returns once no in-flight allocation overlaps the guest clusters of
 * [offset, offset + bytes) (bytes may run past the end: "everything");
 * s->lock is dropped while it waits, so look the mapping up afterwards.
 */
void qcow2_alloc_in_flight_add(BDRVQcow2State *s, Qcow2InFlightAlloc *a,
                               uint64_t start, uint64_t end, uint64_t host);
void qcow2_alloc_in_flight_remove(BDRVQcow2State *s, Qcow2InFlightAlloc *a);
void coroutine_fn qcow2_wait_for_allocations(BlockDriverState *bs,
                                             uint64_t offset,
                                             uint64_t bytes);
int coroutine_fn qcow2_grow_l1_table(BlockDriverState *bs,
                                     uint64_t min_size);
/*
 * Lazily written L1 entries: qcow2_cache_flush() of the L2 cache writes
 * them (after a barrier); qcow2_write_dirty_l1 does the write itself.
 */
bool qcow2_l1_dirty(BDRVQcow2State *s);
int coroutine_fn qcow2_write_dirty_l1(BlockDriverState *bs);
/* whole-cluster operations on [offset, offset + bytes), cluster aligned */
int coroutine_fn qcow2_cluster_zeroize(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool unmap);
int coroutine_fn qcow2_cluster_discard(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool full_discard);
/* preallocation=metadata: allocate every cluster of [0, size) */
int coroutine_fn qcow2_preallocate_metadata(BlockDriverState *bs,
                                            uint64_t start, uint64_t end);

/* qcow2-compress.c */
/* deflate src into dst (raw, QEMU's window); -ENOSPC if not smaller */
ssize_t qcow2_compress(void *dst, size_t dst_size, const void *src,
                       size_t src_size);
int qcow2_decompress(void *dst, size_t dst_size, const void *src,
                     size_t src_size);

/* qcow2-snapshot.c */
int coroutine_fn qcow2_read_snapshot_table(BlockDriverState *bs,
                                           Error **errp);

/* qcow2-amend.c: see the BlockDriver callbacks of the same names */
int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs,
                                              const char *backing_file,
                                              const char *backing_fmt);
int coroutine_fn qcow2_co_make_empty(BlockDriverState *bs);
int coroutine_fn qcow2_co_amend(BlockDriverState *bs, json_t *opts,
                                bool force, Error **errp);

/* qcow2-measure.c: bdrv_measure (qemu-img measure) */
int qcow2_measure(json_t *opts, BlockDriverState *in_bs,
                  BlockMeasureInfo *info, Error **errp);

/* qcow2-check.c */
/* bdrv_co_check: see block/qcow2-check.c */
int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix);

/* qcow2-create.c */
int coroutine_fn qcow2_co_create_opts(BlockDriver *drv, const char *filename,
                                      json_t *options, Error **errp);

/* qcow2.c */
int coroutine_fn qcow2_update_header_field(BlockDriverState *bs,
                                           int offset, const void *buf,
                                           int len);
extern BlockDriver bdrv_qcow2;

#endif /* BLOCK_QCOW2_H */
