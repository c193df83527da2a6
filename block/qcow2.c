/*
 * qcow2 format driver: open (header, extensions, feature checks), the
 * request path (read, write, compressed write, write zeroes, discard,
 * block status), flush, resize and the BlockDriver table.
 *
 * Locking rules (s->lock, a CoMutex, protects every piece of metadata:
 * L1 table, both caches, refcount table, free-space indexes, the list of
 * in-flight allocations):
 *
 * - Reads and in-place overwrites (NORMAL cluster with COPIED) look the
 *   mapping up under the lock and drop it around the data I/O
 *   (data_cluster_io).  A read may thus see the mapping an allocating
 *   write is about to replace: that write has not completed yet.
 * - An allocating write (first write, a shared, compressed or zero
 *   cluster) runs write_allocate(): under the lock it reads the old L2
 *   entries, allocates the host clusters (refcounts first), reads the
 *   old content of the partial head/tail clusters (copy-on-write) and
 *   registers an in-flight allocation (Qcow2InFlightAlloc: guest range,
 *   host offset).  It drops the lock for the data write only, then takes
 *   it again, gets the L2 table again (it may have been evicted), sets
 *   the entries (the L2 cache depends on the refcount cache), frees the
 *   old clusters, removes the record and wakes its waiters.  On failure
 *   the new clusters are freed instead.
 * - Whatever changes the mapping of guest clusters (allocating writes,
 *   any write to a cluster not yet mapped, write zeroes, discard,
 *   compressed writes, resize, close) first waits under the lock in
 *   qcow2_wait_for_allocations() until no record overlaps its range, and
 *   looks the mapping up only afterwards; it holds the lock from that
 *   look-up to its own registration or L2 update, so two allocating
 *   writes never allocate the same guest cluster.  A request only waits
 *   while it owns no record, so waits cannot form a cycle.
 * - Data I/O without the lock counts in s->data_io_in_flight: clusters
 *   freed meanwhile are not reused until it drops to zero (a read may
 *   still be reading a cluster that a concurrent discard freed).
 *
 * See qcow2.h for the on-disk write order.
 *
 * The header is never rewritten as a whole on an existing image: single
 * fields are updated in place, so header extensions we do not interpret
 * (bitmaps, unknown ones) stay byte-for-byte intact.  On the first
 * read-write open every autoclear bit is cleared, as the specification
 * requires from programs that do not maintain the data they protect
 * (QEMU then treats persistent bitmaps as inconsistent, not as valid).
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "qemu/cutils.h"
#include "qemu/trace.h"
#include "block/qcow2.h"

#define QCOW2_OPT_L2_CACHE_SIZE       "l2-cache-size"
#define QCOW2_OPT_REFCOUNT_CACHE_SIZE "refcount-cache-size"
#define QCOW2_OPT_CACHE_SIZE          "cache-size"
#define QCOW2_DEFAULT_L2_CACHE_MAX    (32 * MiB)
#define QCOW2_MIN_L2_CACHE_TABLES     4
#define QCOW2_MIN_REFCOUNT_CACHE_TABLES 4

/*
 * As QEMU: a fatal event on a writable image sets the corrupt bit on disk
 * and makes the node refuse every later request (-ENOMEDIUM; the request
 * that found the damage fails with -EIO); a non-fatal one (any on a
 * read-only image) is only reported.  One message per kind: a fatal event
 * after non-fatal ones is still reported.  The messages go to stderr
 * without a program name prefix, in QEMU's wording.
 */
static void signal_corruption_va(BlockDriverState *bs, bool fatal,
                                 const char *fmt, va_list ap)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *msg = NULL;

    fatal = fatal && !bs->read_only;
    if (s->corrupt_signalled && (!fatal || s->corrupt_fatal)) {
        return;
    }
    msg = g_strdup_vprintf(fmt, ap);
    if (fatal) {
        fprintf(stderr, "qcow2: Marking image as corrupt: %s; further "
                "corruption events will be suppressed\n", msg);
    } else {
        fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal "
                "corruption events will be suppressed\n", msg);
    }
    trace(qcow2_signal_corruption, "bs %p fatal %d msg %s", bs, fatal, msg);
    s->corrupt_signalled = true;
    if (fatal) {
        uint8_t be[8];

        s->corrupt_fatal = true;
        s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        if (s->qcow_version >= 3) {
            q2_st64(be, s->incompatible_features);
            if (bdrv_pwrite(bs->file, QCOW2_HDR_INCOMPAT, 8, be, 0) == 0) {
                bdrv_flush(bs->file->bs);
            }
        }
    }
}

int qcow2_signal_corruption(BlockDriverState *bs, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    signal_corruption_va(bs, true, fmt, ap);
    va_end(ap);
    return -EIO;
}

void qcow2_report_corruption(BlockDriverState *bs, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    signal_corruption_va(bs, false, fmt, ap);
    va_end(ap);
}

int coroutine_fn qcow2_update_header_field(BlockDriverState *bs,
                                           int offset, const void *buf,
                                           int len)
{
    return bdrv_co_pwrite(bs->file, offset, len, buf, 0);
}

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    if (buf_size >= 8 && q2_ld32(buf) == QCOW_MAGIC && q2_ld32(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

/* ---- open ---- */

typedef struct Qcow2FeatureName {
    uint8_t type;
    uint8_t bit;
    char name[46];
} Qcow2FeatureName;

static char *unsupported_features(const uint8_t *table, int table_len,
                                  uint64_t mask)
{
    GString *str = g_string_new(NULL);
    int i;

    for (i = 0; table && i + 48 <= table_len; i += 48) {
        const uint8_t *e = table + i;

        if (e[0] == QCOW2_FEAT_TYPE_INCOMPATIBLE && e[1] < 64 &&
            (mask & (1ULL << e[1]))) {
            g_string_append_printf(str, "%s%.46s", str->len ? ", " : "",
                                   (const char *)e + 2);
            mask &= ~(1ULL << e[1]);
        }
    }
    if (mask) {
        g_string_append_printf(str, "%sUnknown incompatible feature: %"
                               PRIx64, str->len ? ", " : "", mask);
    }
    return g_string_free(str, false);
}

typedef struct Qcow2OpenCo {
    BlockDriverState *bs;
    json_t *options;
    int flags;
    Error **errp;
    int ret;
} Qcow2OpenCo;

static int coroutine_fn qcow2_read_extensions(BlockDriverState *bs,
                                              const uint8_t *hdr,
                                              uint64_t start, uint64_t end,
                                              uint8_t **feature_table,
                                              int *feature_table_len,
                                              Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = start;

    while (off + 8 <= end) {
        uint32_t magic = q2_ld32(hdr + off);
        uint32_t len = q2_ld32(hdr + off + 4);
        const uint8_t *data = hdr + off + 8;

        if (magic == QCOW2_EXT_MAGIC_END) {
            return 0;
        }
        if (len > end - off - 8) {
            error_setg(errp, "Invalid extension length (%#x bytes of "
                       "extension %#x)", len, magic);
            return -EINVAL;
        }
        switch (magic) {
        case QCOW2_EXT_MAGIC_BACKING_FORMAT:
            if (len >= sizeof(bs->backing_format)) {
                error_setg(errp, "ERROR: ext_backing_format: len=%" PRIu32
                           " too large (>=%zu)", len,
                           sizeof(bs->backing_format));
                return -EINVAL;
            }
            memcpy(bs->backing_format, data, len);
            bs->backing_format[len] = 0;
            break;
        case QCOW2_EXT_MAGIC_FEATURE_TABLE:
            g_free(*feature_table);
            *feature_table = g_memdup2(data, len);
            *feature_table_len = len;
            s->has_feature_table = true;
            break;
        case QCOW2_EXT_MAGIC_BITMAPS:
            s->has_bitmaps_ext = true;
            if (len >= 24) {
                s->nb_bitmaps = q2_ld32(data);
                s->bitmap_directory_size = q2_ld64(data + 8);
                s->bitmap_directory_offset = q2_ld64(data + 16);
            }
            break;
        case QCOW2_EXT_MAGIC_CRYPTO_HEADER:
            error_setg(errp, "Encrypted qcow2 images are not supported");
            return -ENOTSUP;
        case QCOW2_EXT_MAGIC_DATA_FILE:
            error_setg(errp, "qcow2 images with an external data file are "
                       "not supported");
            return -ENOTSUP;
        default:
            /* unknown extensions are kept as they are */
            break;
        }
        off += 8 + QEMU_ALIGN_UP((uint64_t)len, 8);
    }
    return 0;
}

static int coroutine_fn qcow2_do_open(BlockDriverState *bs, json_t *options,
                                      int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *hdr = NULL;
    g_autofree uint8_t *feature_table = NULL;
    int feature_table_len = 0;
    uint64_t l2_cache_size = 0, refcount_cache_size = 0, cache_size = 0;
    bool has_l2 = false, has_rc = false, has_cache = false, lazy = false;
    int64_t clean_interval = 0;
    bool pass_discard = true;
    bool check_mode = false;
    int64_t file_len;
    uint64_t backing_offset, ext_end, l1_bytes, l2_tables, rc_tables;
    uint32_t backing_size, crypt_method, rt_clusters;
    int hdr_len, ret, i;

    if (!bdrv_opt_get_size(options, QCOW2_OPT_L2_CACHE_SIZE, &l2_cache_size,
                           &has_l2, errp) ||
        !bdrv_opt_get_size(options, QCOW2_OPT_REFCOUNT_CACHE_SIZE,
                           &refcount_cache_size, &has_rc, errp) ||
        !bdrv_opt_get_size(options, QCOW2_OPT_CACHE_SIZE, &cache_size,
                           &has_cache, errp) ||
        !bdrv_opt_get_bool(options, "lazy-refcounts", &lazy, NULL, errp) ||
        !bdrv_opt_get_int(options, "cache-clean-interval", &clean_interval,
                          NULL, errp) ||
        !bdrv_opt_get_bool(options, "pass-discard-request", &pass_discard,
                           NULL, errp) ||
        !bdrv_opt_get_bool(options, "x-check", &check_mode, NULL, errp)) {
        return -EINVAL;
    }
    if (!bdrv_open_child(bs, options, "file",
                         BDRV_CHILD_IMAGE | BDRV_CHILD_PRIMARY, false,
                         errp)) {
        return -EINVAL;
    }

    file_len = bdrv_getlength(bs->file->bs);
    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get image file size");
        return file_len;
    }
    if (file_len < QCOW2_V2_HEADER_SIZE) {
        error_setg(errp, "Image is not in qcow2 format (file too short for "
                   "a qcow2 header: %" PRId64 " bytes)", file_len);
        return -EINVAL;
    }
    /* header and extensions live in the first cluster (at most 2 MiB) */
    hdr_len = MIN(file_len, 1 << QCOW_MAX_CLUSTER_BITS);
    hdr = g_malloc0(hdr_len);
    ret = bdrv_co_pread(bs->file, 0, hdr_len, hdr, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read qcow2 header");
        return ret;
    }
    if (q2_ld32(hdr + QCOW2_HDR_MAGIC) != QCOW_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        return -EINVAL;
    }
    s->qcow_version = q2_ld32(hdr + QCOW2_HDR_VERSION);
    if (s->qcow_version < 2 || s->qcow_version > 3) {
        error_setg(errp, "Unsupported qcow2 version %d", s->qcow_version);
        return -ENOTSUP;
    }
    s->cluster_bits = q2_ld32(hdr + QCOW2_HDR_CLUSTER_BITS);
    if (s->cluster_bits < QCOW_MIN_CLUSTER_BITS ||
        s->cluster_bits > QCOW_MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%d", s->cluster_bits);
        return -EINVAL;
    }
    s->cluster_size = 1 << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1 << s->l2_bits;
    s->size = q2_ld64(hdr + QCOW2_HDR_SIZE);
    crypt_method = q2_ld32(hdr + QCOW2_HDR_CRYPT_METHOD);
    s->l1_size = q2_ld32(hdr + QCOW2_HDR_L1_SIZE);
    s->l1_table_offset = q2_ld64(hdr + QCOW2_HDR_L1_OFFSET);
    s->refcount_table_offset = q2_ld64(hdr + QCOW2_HDR_REFTABLE_OFFSET);
    rt_clusters = q2_ld32(hdr + QCOW2_HDR_REFTABLE_CLUSTERS);
    s->nb_snapshots = q2_ld32(hdr + QCOW2_HDR_NB_SNAPSHOTS);
    s->snapshots_offset = q2_ld64(hdr + QCOW2_HDR_SNAPSHOTS_OFFSET);
    backing_offset = q2_ld64(hdr + QCOW2_HDR_BACKING_OFFSET);
    backing_size = q2_ld32(hdr + QCOW2_HDR_BACKING_SIZE);

    if (s->qcow_version == 2) {
        s->header_length = QCOW2_V2_HEADER_SIZE;
        s->refcount_order = 4;
    } else {
        if (file_len < QCOW2_V3_HEADER_SIZE) {
            error_setg(errp, "qcow2 header too short (file is %" PRId64
                       " bytes)", file_len);
            return -EINVAL;
        }
        s->incompatible_features = q2_ld64(hdr + QCOW2_HDR_INCOMPAT);
        s->compatible_features = q2_ld64(hdr + QCOW2_HDR_COMPAT);
        s->autoclear_features = q2_ld64(hdr + QCOW2_HDR_AUTOCLEAR);
        s->refcount_order = q2_ld32(hdr + QCOW2_HDR_REFCOUNT_ORDER);
        s->header_length = q2_ld32(hdr + QCOW2_HDR_HEADER_LENGTH);
        if (s->header_length < QCOW2_V3_HEADER_SIZE) {
            error_setg(errp, "qcow2 header too short");
            return -EINVAL;
        }
        if (s->header_length > (uint32_t)s->cluster_size ||
            s->header_length > (uint64_t)hdr_len) {
            error_setg(errp, "qcow2 header exceeds cluster size");
            return -EINVAL;
        }
        if (s->header_length > QCOW2_HDR_COMPRESSION_TYPE) {
            s->compression_type = hdr[QCOW2_HDR_COMPRESSION_TYPE];
        }
    }
    if (s->refcount_order > 6) {
        error_setg(errp, "Unsupported refcount order %d (must be 0..6)",
                   s->refcount_order);
        return -EINVAL;
    }
    s->refcount_bits = 1 << s->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX :
                      (1ULL << s->refcount_bits) - 1;
    s->refblock_bits = s->cluster_bits + 3 - s->refcount_order;
    s->refblock_size = 1 << s->refblock_bits;

    /* header extensions end where the backing file name starts */
    if (backing_offset) {
        if (backing_offset > (uint64_t)s->cluster_size ||
            backing_size > QCOW_MAX_BACKING_NAME ||
            backing_offset + backing_size > (uint64_t)MIN(hdr_len,
                                                          s->cluster_size)) {
            error_setg(errp, "Invalid backing file offset or size");
            return -EINVAL;
        }
        ext_end = backing_offset;
    } else {
        ext_end = MIN(hdr_len, s->cluster_size);
    }
    if (ext_end < s->header_length) {
        error_setg(errp, "Invalid backing file offset or size");
        return -EINVAL;
    }
    ret = qcow2_read_extensions(bs, hdr, s->header_length, ext_end,
                                &feature_table, &feature_table_len, errp);
    if (ret < 0) {
        return ret;
    }

    if (s->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED) {
        uint64_t unknown = s->incompatible_features &
                           ~QCOW2_INCOMPAT_SUPPORTED;
        g_autofree char *names = NULL;

        if (unknown & QCOW2_INCOMPAT_DATA_FILE) {
            error_setg(errp, "qcow2 images with an external data file are "
                       "not supported");
            return -ENOTSUP;
        }
        if (unknown & QCOW2_INCOMPAT_EXTL2) {
            error_setg(errp, "qcow2 images with extended L2 entries are not "
                       "supported");
            return -ENOTSUP;
        }
        names = unsupported_features(feature_table, feature_table_len,
                                     unknown);
        error_setg(errp, "Unsupported qcow2 feature(s): %s", names);
        return -ENOTSUP;
    }
    if ((s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) ||
        s->compression_type != 0) {
        if (s->compression_type == 0) {
            error_setg(errp, "qcow2: Compression type incompatible feature "
                       "bit must not be set with zlib compression");
        } else {
            error_setg(errp, "Unsupported qcow2 compression type %u (only "
                       "zlib is supported)", s->compression_type);
        }
        return -ENOTSUP;
    }
    /* x-check: blockd-img check -r opens broken images to repair them */
    if ((s->incompatible_features & QCOW2_INCOMPAT_CORRUPT) &&
        (flags & BDRV_O_RDWR) && !check_mode) {
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                   "read/write");
        return -EACCES;
    }
    if ((s->incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
        (flags & BDRV_O_RDWR) && !check_mode) {
        error_setg(errp, "qcow2: Image is dirty (lazy refcounts were in "
                   "use); repair it with 'qemu-img check -r all' before "
                   "opening it read/write");
        return -EACCES;
    }
    if (crypt_method) {
        error_setg(errp, "Encrypted qcow2 images are not supported");
        return -ENOTSUP;
    }

    /* tables: sizes and offsets from the file are never trusted */
    if (s->size > BDRV_MAX_LENGTH ||
        qcow2_l1_entries_for(s->cluster_bits, s->size) >
        QCOW_MAX_L1_SIZE / 8) {
        error_setg(errp, "Image is too big");
        return -EFBIG;
    }
    if ((uint64_t)s->l1_size * 8 > QCOW_MAX_L1_SIZE) {
        error_setg(errp, "Active L1 table too large");
        return -EFBIG;
    }
    if (s->l1_size < qcow2_l1_entries_for(s->cluster_bits, s->size)) {
        error_setg(errp, "L1 table is too small");
        return -EINVAL;
    }
    l1_bytes = (uint64_t)s->l1_size * 8;
    if (s->l1_size && (qcow2_offset_into_cluster(s, s->l1_table_offset) ||
                       s->l1_table_offset > (uint64_t)file_len ||
                       l1_bytes > (uint64_t)file_len - s->l1_table_offset)) {
        error_setg(errp, "Invalid L1 table offset (beyond the end of the "
                   "image file or unaligned)");
        return -EINVAL;
    }
    if ((uint64_t)rt_clusters << s->cluster_bits > QCOW_MAX_REFTABLE_SIZE) {
        error_setg(errp, "Reference count table too large");
        return -EINVAL;
    }
    if (!rt_clusters || !s->refcount_table_offset ||
        qcow2_offset_into_cluster(s, s->refcount_table_offset)) {
        error_setg(errp, "Invalid reference count table offset");
        return -EINVAL;
    }
    s->refcount_table_size = ((uint64_t)rt_clusters << s->cluster_bits) / 8;
    if (s->nb_snapshots > QCOW_MAX_SNAPSHOTS) {
        error_setg(errp, "Too many snapshots");
        return -EINVAL;
    }
    if (s->nb_snapshots &&
        qcow2_offset_into_cluster(s, s->snapshots_offset)) {
        error_setg(errp, "Invalid snapshot table offset");
        return -EINVAL;
    }

    s->l1_table = g_try_malloc0(MAX(l1_bytes, 8));
    if (!s->l1_table) {
        error_setg(errp, "Could not allocate L1 table");
        return -ENOMEM;
    }
    if (l1_bytes) {
        ret = bdrv_co_pread(bs->file, s->l1_table_offset, l1_bytes,
                            s->l1_table, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read L1 table");
            return ret;
        }
        for (i = 0; i < (int)s->l1_size; i++) {
            s->l1_table[i] = GUINT64_FROM_BE(s->l1_table[i]);
        }
    }
    ret = qcow2_refcount_init(bs, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_read_snapshot_table(bs, errp);
    if (ret < 0) {
        return ret;
    }

    if (backing_offset && backing_size) {
        memcpy(bs->backing_file, hdr + backing_offset, backing_size);
        bs->backing_file[backing_size] = 0;
    }

    /* caches: by default enough L2 tables for the whole disk, capped */
    if (has_cache && (has_l2 || has_rc) && has_l2 && has_rc) {
        error_setg(errp, "l2-cache-size, refcount-cache-size and "
                   "cache-size may not be set at the same time");
        return -EINVAL;
    }
    if (!has_l2) {
        uint64_t need = DIV_ROUND_UP(s->size, (uint64_t)s->cluster_size) * 8;

        l2_cache_size = has_cache ? cache_size * 3 / 4 :
                        MIN(need, QCOW2_DEFAULT_L2_CACHE_MAX);
    }
    if (!has_rc) {
        refcount_cache_size = has_cache ? cache_size / 4 : l2_cache_size / 4;
    }
    l2_tables = MAX(l2_cache_size / s->cluster_size,
                    QCOW2_MIN_L2_CACHE_TABLES);
    rc_tables = MAX(refcount_cache_size / s->cluster_size,
                    QCOW2_MIN_REFCOUNT_CACHE_TABLES);
    if (l2_tables > 65536 || rc_tables > 65536) {
        error_setg(errp, "Cache size too big");
        return -EINVAL;
    }
    s->l2_table_cache = qcow2_cache_create(bs, l2_tables, s->cluster_size);
    s->refcount_block_cache = qcow2_cache_create(bs, rc_tables,
                                                 s->cluster_size);
    if (!s->l2_table_cache || !s->refcount_block_cache) {
        error_setg(errp, "Could not allocate metadata caches");
        return -ENOMEM;
    }
    s->cluster_cache = g_try_malloc(s->cluster_size);
    s->cluster_data = g_try_malloc(s->cluster_size + 1024);
    if (!s->cluster_cache || !s->cluster_data) {
        error_setg(errp, "Could not allocate cluster buffers");
        return -ENOMEM;
    }
    s->cluster_cache_offset = -1;
    s->deferred_free_index = -1;
    s->free_cluster_index = 0;
    s->free_run_end = 0;
    qemu_co_mutex_init(&s->lock);

    if ((flags & BDRV_O_RDWR) && s->qcow_version >= 3 &&
        s->autoclear_features) {
        /* we maintain none of the structures autoclear bits protect */
        uint8_t be[8] = { 0 };

        ret = qcow2_update_header_field(bs, QCOW2_HDR_AUTOCLEAR, be, 8);
        if (ret == 0) {
            ret = bdrv_co_flush(bs->file->bs);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not update qcow2 header");
            return ret;
        }
        s->autoclear_features = 0;
    }
    bs->supported_write_flags = BDRV_REQ_WRITE_COMPRESSED;
    bs->supported_zero_flags = s->qcow_version >= 3 ?
                               (BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK) :
                               0;
    return 0;
}

static void qcow2_free_state(BDRVQcow2State *s)
{
    qcow2_cache_destroy(s->l2_table_cache);
    qcow2_cache_destroy(s->refcount_block_cache);
    s->l2_table_cache = s->refcount_block_cache = NULL;
    g_free(s->l1_table);
    g_free(s->refcount_table);
    g_free(s->cluster_cache);
    g_free(s->cluster_data);
    s->l1_table = s->refcount_table = NULL;
    s->cluster_cache = s->cluster_data = NULL;
}

static void coroutine_fn qcow2_open_entry(void *opaque)
{
    Qcow2OpenCo *oc = opaque;

    oc->ret = qcow2_do_open(oc->bs, oc->options, oc->flags, oc->errp);
}

static int qcow2_open(BlockDriverState *bs, json_t *options, int flags,
                      Error **errp)
{
    Qcow2OpenCo oc = { bs, options, flags, errp, -EINPROGRESS };

    qemu_co_run_sync(qcow2_open_entry, &oc);
    if (oc.ret < 0) {
        qcow2_free_state(bs->opaque);
    }
    return oc.ret;
}

static void qcow2_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    bs->bl.request_alignment = 1;
    bs->bl.pwrite_zeroes_alignment = s->cluster_size;
    bs->bl.pdiscard_alignment = s->cluster_size;
    bs->bl.opt_transfer = s->cluster_size;
}

static int coroutine_fn qcow2_co_flush_to_os(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (bs->read_only || s->corrupt_fatal) {
        /* nothing more is written to an image found corrupt */
        return 0;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static void coroutine_fn qcow2_close_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    /* the block layer drained us; any allocation still linking waits */
    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, 0, UINT64_MAX);
    /*
     * Both caches are tried, each followed by a flush of the file, and
     * each failure is reported (QEMU's wording)
     */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_report("Failed to flush the L2 table cache: %s",
                     strerror(-ret));
    }
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_report("Failed to flush the refcount block cache: %s",
                     strerror(-ret));
    }
    qemu_co_mutex_unlock(&s->lock);
}

static void qcow2_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (!bs->read_only && s->l2_table_cache && !s->corrupt_fatal) {
        qemu_co_run_sync(qcow2_close_entry, bs);
    }
    qcow2_free_state(s);
}

/* ---- read ---- */

static int coroutine_fn read_compressed(BlockDriverState *bs,
                                        uint64_t l2_entry, uint64_t offset,
                                        uint64_t bytes, QEMUIOVector *qiov,
                                        size_t qiov_off)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t host;
    int csize, ret;
    int64_t file_len;

    qcow2_parse_compressed_entry(s, l2_entry, &host, &csize);
    if ((int64_t)host != s->cluster_cache_offset) {
        file_len = bdrv_getlength(bs->file->bs);
        if (file_len < 0) {
            return file_len;
        }
        if (host >= (uint64_t)file_len) {
            return qcow2_signal_corruption(bs, "Compressed cluster at %#"
                                           PRIx64 " is beyond the end of "
                                           "the image file", host);
        }
        csize = MIN((int64_t)csize, file_len - (int64_t)host);
        csize = MIN(csize, s->cluster_size + 1024);
        BLKDBG_EVENT(bs->file, BLKDBG_READ_COMPRESSED);
        s->cluster_cache_offset = -1;
        ret = bdrv_co_pread(bs->file, host, csize, s->cluster_data, 0);
        if (ret < 0) {
            return ret;
        }
        if (qcow2_decompress(s->cluster_cache, s->cluster_size,
                             s->cluster_data, csize) < 0) {
            /*
             * Damaged data, not metadata: the read fails, the image is
             * not marked corrupt (as QEMU), so a rewrite of the cluster
             * or check -r can still mend it
             */
            trace(qcow2_decompress_failed, "bs %p host %#" PRIx64
                  " csize %d", bs, host, csize);
            return -EIO;
        }
        s->cluster_cache_offset = host;
    }
    qemu_iovec_from_buf(qiov, qiov_off, s->cluster_cache +
                        qcow2_offset_into_cluster(s, offset), bytes);
    return 0;
}

static int coroutine_fn read_backing(BlockDriverState *bs, uint64_t offset,
                                     uint64_t bytes, QEMUIOVector *qiov,
                                     size_t qiov_off)
{
    int64_t blen;
    uint64_t n = 0;
    int ret = 0;

    if (bs->backing) {
        blen = bdrv_getlength(bs->backing->bs);
        if (blen < 0) {
            return blen;
        }
        if (offset < (uint64_t)blen) {
            QEMUIOVector sub;

            n = MIN(bytes, (uint64_t)blen - offset);
            qemu_iovec_init_slice(&sub, qiov, qiov_off, n);
            BLKDBG_EVENT(bs->file, BLKDBG_READ_BACKING_AIO);
            ret = bdrv_co_preadv(bs->backing, offset, n, &sub, 0);
            qemu_iovec_destroy(&sub);
        }
    }
    if (ret == 0 && n < bytes) {
        qemu_iovec_memset(qiov, qiov_off + n, 0, bytes - n);
    }
    return ret;
}

/*
 * Read or write (@write) @n bytes of guest @offset in the normal data
 * cluster at @host, from or to @qiov at @qiov_off.  The caller holds
 * s->lock; with @drop_lock it is released around the I/O, which counts as
 * data I/O in flight meanwhile.
 */
static int coroutine_fn data_cluster_io(BlockDriverState *bs,
                                        uint64_t offset, uint64_t host,
                                        uint64_t n, QEMUIOVector *qiov,
                                        size_t qiov_off, bool write,
                                        bool drop_lock)
{
    BDRVQcow2State *s = bs->opaque;
    QEMUIOVector sub;
    int ret;

    if (host < (uint64_t)s->cluster_size) {
        return qcow2_signal_corruption(bs, "Data cluster for guest offset %#"
                                       PRIx64 " overlaps the header", offset);
    }
    qemu_iovec_init_slice(&sub, qiov, qiov_off, n);
    if (drop_lock) {
        qcow2_data_io_begin(s);
        qemu_co_mutex_unlock(&s->lock);
    }
    if (write) {
        BLKDBG_EVENT(bs->file, BLKDBG_WRITE_AIO);
        ret = bdrv_co_pwritev(bs->file, host, n, &sub, 0);
    } else {
        BLKDBG_EVENT(bs->file, BLKDBG_READ_AIO);
        ret = bdrv_co_preadv(bs->file, host, n, &sub, 0);
    }
    if (drop_lock) {
        qemu_co_mutex_lock(&s->lock);
        qcow2_data_io_end(s);
    }
    qemu_iovec_destroy(&sub);
    return ret;
}

/*
 * Read guest data.  locked: the caller holds s->lock and keeps it
 * (copy-on-write inside an allocating write); else it is taken here and
 * dropped around data reads.
 */
static int coroutine_fn qcow2_read(BlockDriverState *bs, uint64_t offset,
                                   uint64_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_off, bool locked)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    if (!locked) {
        qemu_co_mutex_lock(&s->lock);
    }
    while (bytes > 0) {
        uint64_t n = bytes, host, l2_entry;
        Qcow2ClusterType type;

        ret = qcow2_get_host_offset(bs, offset, &n, &host, &type, &l2_entry);
        if (ret < 0) {
            break;
        }
        switch (type) {
        case QCOW2_CLUSTER_UNALLOCATED:
            if (bs->backing) {
                if (!locked) {
                    qemu_co_mutex_unlock(&s->lock);
                }
                ret = read_backing(bs, offset, n, qiov, qiov_off);
                if (!locked) {
                    qemu_co_mutex_lock(&s->lock);
                }
            } else {
                qemu_iovec_memset(qiov, qiov_off, 0, n);
            }
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            qemu_iovec_memset(qiov, qiov_off, 0, n);
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            ret = read_compressed(bs, l2_entry, offset, n, qiov, qiov_off);
            break;
        case QCOW2_CLUSTER_NORMAL:
            ret = data_cluster_io(bs, offset, host, n, qiov, qiov_off, false,
                                  !locked);
            break;
        }
        if (ret < 0) {
            break;
        }
        offset += n;
        bytes -= n;
        qiov_off += n;
    }
    if (!locked) {
        qemu_co_mutex_unlock(&s->lock);
    }
    return ret;
}

static int coroutine_fn qcow2_co_preadv(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->corrupt_fatal) {
        return -ENOMEDIUM;
    }
    return qcow2_read(bs, offset, bytes, qiov, 0, false);
}

/* guest bytes [offset, offset + bytes) into buf, for copy-on-write */
static int coroutine_fn cow_read(BlockDriverState *bs, uint64_t offset,
                                 uint64_t bytes, uint8_t *buf)
{
    BDRVQcow2State *s = bs->opaque;
    QEMUIOVector qiov;
    uint64_t n = 0;

    if (offset >= qcow2_vm_state_offset(s)) {
        n = bytes;
    } else if (offset < s->size) {
        n = MIN(bytes, s->size - offset);
    }
    if (n < bytes) {
        memset(buf + n, 0, bytes - n);
    }
    if (!n) {
        return 0;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_COW_READ);
    qemu_iovec_init_buf(&qiov, buf, n);
    return qcow2_read(bs, offset, n, &qiov, 0, true);
}

/* ---- write ---- */

static int coroutine_fn check_writable(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->corrupt_fatal) {
        return -ENOMEDIUM;
    }
    if (s->corrupt_signalled ||
        (s->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        return -EIO;
    }
    return 0;
}

/*
 * Point the L2 entries of the @n guest clusters from @start at the new
 * host clusters from @host, after the data write.  The table is fetched
 * again: it may have left the cache while s->lock was dropped.  Nobody
 * changed these entries meanwhile (they wait for our in-flight record),
 * so they still hold @old.
 */
static int coroutine_fn link_new_clusters(BlockDriverState *bs,
                                          uint64_t start, int64_t n,
                                          uint64_t host, const uint64_t *old)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *table;
    int index, i, ret;

    ret = qcow2_get_l2_for_write(bs, start, &table, &index);
    if (ret < 0) {
        return ret;
    }
    /* the new refcounts reach the disk before these entries */
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&table);
        return ret;
    }
    for (i = 0; i < n; i++) {
        assert(GUINT64_FROM_BE(table[index + i]) == old[i]);
        table[index + i] = GUINT64_TO_BE((host + ((uint64_t)i <<
                                                  s->cluster_bits)) |
                                         QCOW_OFLAG_COPIED);
    }
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
    return 0;
}

/*
 * Write [offset, offset + bytes) (within one L2 table) to newly allocated
 * clusters, copying the rest of the first and last cluster from the old
 * content.  Called with s->lock held, after waiting for the in-flight
 * allocations of the range; the lock is dropped around the data write
 * (see the locking rules at the top of this file).
 */
static int coroutine_fn write_allocate(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, QEMUIOVector *qiov,
                                       size_t qiov_off)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start = qcow2_start_of_cluster(s, offset);
    uint64_t end = offset + bytes;
    uint64_t cend = QEMU_ALIGN_UP(end, (uint64_t)s->cluster_size);
    int64_t n = (cend - start) >> s->cluster_bits;
    uint64_t head = offset - start, tail = cend - end;
    g_autofree uint64_t *old = NULL;
    Qcow2InFlightAlloc alloc;
    uint8_t *head_buf = NULL, *tail_buf = NULL;
    QEMUIOVector wq;
    uint64_t *table;
    int64_t host;
    int index, i, ret;

    ret = qcow2_get_l2_for_write(bs, offset, &table, &index);
    if (ret < 0) {
        return ret;
    }
    assert(index + n <= s->l2_size);
    old = g_new(uint64_t, n);
    for (i = 0; i < n; i++) {
        old[i] = GUINT64_FROM_BE(table[index + i]);
    }
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
    host = qcow2_alloc_clusters(bs, n);
    if (host < 0) {
        return host;
    }
    if (host == 0) {
        /* the header's refcount is gone: the refcounts are damaged */
        return qcow2_signal_corruption(bs, "Preventing invalid write on "
                                       "metadata (overlaps with "
                                       "qcow2_header)");
    }
    qemu_iovec_init(&wq, qiov->niov + 2);
    if (head) {
        head_buf = qemu_try_blockalign(bs->file->bs, head);
        ret = head_buf ? cow_read(bs, start, head, head_buf) : -ENOMEM;
        if (ret < 0) {
            goto out_free;
        }
        qemu_iovec_add(&wq, head_buf, head);
    }
    qemu_iovec_concat(&wq, qiov, qiov_off, bytes);
    if (tail) {
        tail_buf = qemu_try_blockalign(bs->file->bs, tail);
        ret = tail_buf ? cow_read(bs, end, tail, tail_buf) : -ENOMEM;
        if (ret < 0) {
            goto out_free;
        }
        qemu_iovec_add(&wq, tail_buf, tail);
    }

    qcow2_alloc_in_flight_add(s, &alloc, start, cend, host);
    qcow2_data_io_begin(s);
    qemu_co_mutex_unlock(&s->lock);
    BLKDBG_EVENT(bs->file, BLKDBG_WRITE_AIO);
    ret = bdrv_co_pwritev(bs->file, host, n << s->cluster_bits, &wq, 0);
    qemu_co_mutex_lock(&s->lock);
    qcow2_data_io_end(s);

    if (s->corrupt_signalled) {
        /* no metadata updates on a corrupt image: the clusters leak */
        ret = ret < 0 ? ret : -EIO;
        qcow2_alloc_in_flight_remove(s, &alloc);
        goto out;
    }
    if (ret == 0) {
        ret = link_new_clusters(bs, start, n, host, old);
    }
    if (ret == 0) {
        /* drop what the old entries referenced (shared, compressed, zero) */
        for (i = 0; i < n && ret == 0; i++) {
            ret = qcow2_free_any_cluster(bs, old[i]);
        }
        qcow2_alloc_in_flight_remove(s, &alloc);
        goto out;
    }
    qcow2_alloc_in_flight_remove(s, &alloc);

out_free:
    qcow2_free_clusters(bs, host, n << s->cluster_bits);
out:
    qemu_iovec_destroy(&wq);
    qemu_vfree(head_buf);
    qemu_vfree(tail_buf);
    return ret;
}

static int coroutine_fn qcow2_write(BlockDriverState *bs, uint64_t offset,
                                    uint64_t bytes, QEMUIOVector *qiov,
                                    size_t qiov_off)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = check_writable(bs);

    if (ret < 0) {
        return ret;
    }
    qemu_co_mutex_lock(&s->lock);
    while (bytes > 0) {
        /* one L2 table at a time: that is what one look-up covers */
        uint64_t in_table = ((uint64_t)(s->l2_size -
                                        qcow2_l2_index(s, offset)) <<
                             s->cluster_bits) -
                            qcow2_offset_into_cluster(s, offset);
        uint64_t n = MIN(bytes, in_table), host, l2_entry;
        Qcow2ClusterType type;

        qcow2_wait_for_allocations(bs, offset, n);
        ret = qcow2_get_host_offset(bs, offset, &n, &host, &type, &l2_entry);
        if (ret < 0) {
            break;
        }
        if (type == QCOW2_CLUSTER_NORMAL && (l2_entry & QCOW_OFLAG_COPIED)) {
            ret = data_cluster_io(bs, offset, host, n, qiov, qiov_off, true,
                                  true);
        } else {
            ret = write_allocate(bs, offset, n, qiov, qiov_off);
        }
        if (ret < 0) {
            break;
        }
        offset += n;
        bytes -= n;
        qiov_off += n;
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/* One cluster, deflated; falls back to a normal write if not smaller */
static int coroutine_fn write_compressed_cluster(BlockDriverState *bs,
                                                 uint64_t offset,
                                                 uint64_t bytes,
                                                 QEMUIOVector *qiov,
                                                 size_t qiov_off)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *buf = g_malloc0(s->cluster_size);
    g_autofree uint8_t *out = g_malloc(s->cluster_size);
    int csize_shift = 62 - (s->cluster_bits - 8);
    uint64_t nb_csectors, entry, old;
    uint64_t *table;
    ssize_t out_len;
    int64_t coff;
    int index, ret;

    qemu_iovec_to_buf(qiov, qiov_off, buf, bytes);
    out_len = qcow2_compress(out, s->cluster_size - 512, buf,
                             s->cluster_size);
    if (out_len == -ENOSPC) {
        return qcow2_write(bs, offset, bytes, qiov, qiov_off);
    }
    if (out_len < 0) {
        return out_len;
    }
    ret = check_writable(bs);
    if (ret < 0) {
        return ret;
    }
    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, offset, bytes);
    ret = qcow2_get_l2_for_write(bs, offset, &table, &index);
    if (ret < 0) {
        goto out;
    }
    coff = qcow2_alloc_bytes(bs, out_len);
    if (coff < 0) {
        ret = coff;
        goto out_put;
    }
    if (coff < s->cluster_size) {
        ret = qcow2_signal_corruption(bs, "Preventing invalid allocation of "
                                      "compressed cluster at offset 0");
        goto out_put;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_WRITE_COMPRESSED);
    ret = bdrv_co_pwrite(bs->file, coff, out_len, out, 0);
    if (ret < 0) {
        qcow2_free_clusters(bs, coff, out_len);
        goto out_put;
    }
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        goto out_put;
    }
    nb_csectors = ((coff + out_len - 1) >> 9) - (coff >> 9);
    entry = QCOW_OFLAG_COMPRESSED | ((uint64_t)nb_csectors << csize_shift) |
            coff;
    old = GUINT64_FROM_BE(table[index]);
    BLKDBG_EVENT(bs->file, BLKDBG_L2_UPDATE_COMPRESSED);
    table[index] = GUINT64_TO_BE(entry);
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
    ret = qcow2_free_any_cluster(bs, old);
    goto out;

out_put:
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
out:
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static int coroutine_fn qcow2_co_pwritev(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes,
                                         QEMUIOVector *qiov,
                                         BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    size_t qiov_off = 0;

    if (!(flags & BDRV_REQ_WRITE_COMPRESSED)) {
        return qcow2_write(bs, offset, bytes, qiov, 0);
    }
    if (qcow2_offset_into_cluster(s, offset) ||
        (qcow2_offset_into_cluster(s, bytes) &&
         (uint64_t)(offset + bytes) != s->size)) {
        return -EINVAL;
    }
    while (bytes > 0) {
        uint64_t n = MIN(bytes, s->cluster_size);
        int ret = write_compressed_cluster(bs, offset, n, qiov, qiov_off);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
        qiov_off += n;
    }
    return 0;
}

/*
 * qcow2_get_host_offset() under s->lock: on entry *@bytes is the length
 * asked about, on return the length mapped like @offset.
 */
static int coroutine_fn get_host_offset_co(BlockDriverState *bs,
                                           uint64_t offset, uint64_t *bytes,
                                           uint64_t *host,
                                           Qcow2ClusterType *type)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l2_entry;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_get_host_offset(bs, offset, bytes, host, type, &l2_entry);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/*
 * true if [offset, offset + bytes) of one cluster already reads as zero
 * (once no allocation of it is in flight: a write zeroes must not skip a
 * cluster whose data write is under way)
 */
static int coroutine_fn range_is_zero(BlockDriverState *bs, uint64_t offset,
                                      uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = bytes, host, l2_entry;
    Qcow2ClusterType type;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, offset, bytes);
    ret = qcow2_get_host_offset(bs, offset, &n, &host, &type, &l2_entry);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    return n >= bytes && (type == QCOW2_CLUSTER_ZERO_PLAIN ||
                          type == QCOW2_CLUSTER_ZERO_ALLOC ||
                          (type == QCOW2_CLUSTER_UNALLOCATED &&
                           !bs->backing));
}

/*
 * The whole clusters [*astart, *aend) inside [offset, offset + bytes); a
 * partial cluster that ends at the image end counts as whole.  Empty when
 * *astart >= *aend.
 */
static void whole_clusters(BDRVQcow2State *s, uint64_t offset,
                           uint64_t bytes, uint64_t *astart, uint64_t *aend)
{
    uint64_t end = offset + bytes;

    *astart = QEMU_ALIGN_UP(offset, (uint64_t)s->cluster_size);
    *aend = end == s->size ? end :
            QEMU_ALIGN_DOWN(end, (uint64_t)s->cluster_size);
}

static int coroutine_fn write_zero_buffer(BlockDriverState *bs,
                                          uint64_t offset, uint64_t bytes,
                                          BdrvRequestFlags flags)
{
    g_autofree void *zero = NULL;
    QEMUIOVector qiov;
    int ret;

    if (!bytes) {
        return 0;
    }
    ret = range_is_zero(bs, offset, bytes);
    if (ret != 0) {
        return ret < 0 ? ret : 0;
    }
    if (flags & BDRV_REQ_NO_FALLBACK) {
        return -ENOTSUP;
    }
    zero = g_malloc0(bytes);
    qemu_iovec_init_buf(&qiov, zero, bytes);
    return qcow2_write(bs, offset, bytes, &qiov, 0);
}

static int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = offset + bytes, astart, aend;
    int ret;

    whole_clusters(s, offset, bytes, &astart, &aend);
    if (s->qcow_version < 3) {
        return -ENOTSUP;
    }
    ret = check_writable(bs);
    if (ret < 0) {
        return ret;
    }
    if (astart >= aend) {
        /* inside one cluster (or two partial ones) */
        return write_zero_buffer(bs, offset, bytes, flags);
    }
    ret = write_zero_buffer(bs, offset, astart - offset, flags);
    if (ret < 0) {
        return ret;
    }
    ret = write_zero_buffer(bs, aend, end - aend, flags);
    if (ret < 0) {
        return ret;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cluster_zeroize(bs, astart, aend - astart,
                                flags & BDRV_REQ_MAY_UNMAP);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t astart, aend;
    int ret;

    if (s->qcow_version < 3 && bs->backing) {
        /*
         * Without zero clusters, a discarded cluster would show the
         * backing file's data: keep ours (a discard is only a hint).
         */
        return -ENOTSUP;
    }
    whole_clusters(s, offset, bytes, &astart, &aend);
    ret = check_writable(bs);
    if (ret < 0) {
        return ret;
    }
    if (astart >= aend) {
        return 0;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cluster_discard(bs, astart, aend - astart, false);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static int coroutine_fn qcow2_co_block_status(BlockDriverState *bs,
                                              bool want_zero, int64_t offset,
                                              int64_t bytes, int64_t *pnum,
                                              int64_t *map,
                                              BlockDriverState **file)
{
    uint64_t n = bytes, host;
    Qcow2ClusterType type;
    int ret = get_host_offset_co(bs, offset, &n, &host, &type);

    if (ret < 0) {
        return ret;
    }
    *pnum = n;
    switch (type) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        *map = host;
        *file = bs->file->bs;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED |
               BDRV_BLOCK_OFFSET_VALID;
    case QCOW2_CLUSTER_COMPRESSED:
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    default:
        *map = host;
        *file = bs->file->bs;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED |
               BDRV_BLOCK_OFFSET_VALID;
    }
}

static int coroutine_fn qcow2_co_rw_vmstate(BlockDriverState *bs,
                                            QEMUIOVector *qiov, int64_t pos,
                                            bool is_read)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t offset = qcow2_vm_state_offset(s) + pos;

    if (s->corrupt_fatal) {
        return -ENOMEDIUM;
    }
    if (is_read) {
        return qcow2_read(bs, offset, qiov->size, qiov, 0, false);
    }
    return qcow2_write(bs, offset, qiov->size, qiov, 0);
}

static int64_t coroutine_fn qcow2_co_getlength(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->size;
}

static int64_t coroutine_fn qcow2_co_get_allocated_file_size(
    BlockDriverState *bs)
{
    BlockDriver *drv = bs->file->bs->drv;

    if (drv && drv->bdrv_co_get_allocated_file_size) {
        return drv->bdrv_co_get_allocated_file_size(bs->file->bs);
    }
    return bdrv_getlength(bs->file->bs);
}

static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->is_dirty = !!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY);
    bdi->vm_state_offset = qcow2_vm_state_offset(s);
    return 0;
}

static int coroutine_fn qcow2_co_truncate(BlockDriverState *bs,
                                          int64_t offset, bool exact,
                                          Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t be[8];
    int ret;

    if (offset < 0 || offset % BDRV_SECTOR_SIZE) {
        error_setg(errp, "The new size must be a non-negative multiple of "
                   "512");
        return -EINVAL;
    }
    if ((uint64_t)offset < s->size) {
        error_setg(errp, "qcow2 doesn't support shrinking images yet");
        return -ENOTSUP;
    }
    if (s->nb_snapshots) {
        error_setg(errp, "Can't resize an image which has snapshots");
        return -ENOTSUP;
    }
    if (qcow2_l1_entries_for(s->cluster_bits, offset) > QCOW_MAX_L1_SIZE / 8) {
        error_setg(errp, "Image size too big");
        return -EFBIG;
    }
    ret = check_writable(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Image is corrupt");
        return ret;
    }
    qemu_co_mutex_lock(&s->lock);
    /* the L1 table and the header change under every allocation */
    qcow2_wait_for_allocations(bs, 0, UINT64_MAX);
    ret = qcow2_grow_l1_table(bs, qcow2_l1_entries_for(s->cluster_bits,
                                                       offset));
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to grow the L1 table");
        goto out;
    }
    q2_st64(be, offset);
    ret = qcow2_update_header_field(bs, QCOW2_HDR_SIZE, be, 8);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to update the image size");
        goto out;
    }
    s->size = offset;
out:
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static void qcow2_dump_info(BlockDriverState *bs, GString *out)
{
    BDRVQcow2State *s = bs->opaque;

    g_string_append_printf(out, "compat: %s\ncluster_size: %d\n"
                           "refcount bits: %d\nlazy refcounts: %s\n"
                           "snapshots: %" PRIu32 "\n",
                           s->qcow_version >= 3 ? "1.1" : "0.10",
                           s->cluster_size, s->refcount_bits,
                           (s->compatible_features &
                            QCOW2_COMPAT_LAZY_REFCOUNTS) ? "true" : "false",
                           s->nb_snapshots);
}

BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(BDRVQcow2State),
    .is_format = true,
    .supports_backing = true,
    .bdrv_probe = qcow2_probe,
    .bdrv_open = qcow2_open,
    .bdrv_close = qcow2_close,
    .bdrv_refresh_limits = qcow2_refresh_limits,
    .bdrv_co_preadv = qcow2_co_preadv,
    .bdrv_co_pwritev = qcow2_co_pwritev,
    .bdrv_co_pwrite_zeroes = qcow2_co_pwrite_zeroes,
    .bdrv_co_pdiscard = qcow2_co_pdiscard,
    .bdrv_co_flush_to_os = qcow2_co_flush_to_os,
    .bdrv_co_block_status = qcow2_co_block_status,
    .bdrv_co_truncate = qcow2_co_truncate,
    .bdrv_co_rw_vmstate = qcow2_co_rw_vmstate,
    .bdrv_co_getlength = qcow2_co_getlength,
    .bdrv_co_get_allocated_file_size = qcow2_co_get_allocated_file_size,
    .bdrv_get_info = qcow2_get_info,
    .bdrv_co_create_opts = qcow2_co_create_opts,
    .bdrv_co_check = qcow2_co_check,
    .bdrv_dump_info = qcow2_dump_info,
    .bdrv_co_change_backing_file = qcow2_co_change_backing_file,
    .bdrv_co_make_empty = qcow2_co_make_empty,
    .bdrv_co_amend = qcow2_co_amend,
    .bdrv_measure = qcow2_measure,
    .supported_write_flags = BDRV_REQ_WRITE_COMPRESSED,
    .supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK,
};
