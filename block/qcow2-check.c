/*
 * qcow2 consistency check and repair (qemu-img check [-r leaks|all]).
 *
 * The check rebuilds every cluster's reference count in memory by walking
 * everything that can reference a host cluster: the header cluster, the
 * active L1 table and its L2 tables (normal and preallocated zero
 * clusters, and the byte span of compressed clusters, which may share a
 * host cluster), every internal snapshot's L1/L2 tables, the snapshot
 * table, the refcount table and its refcount blocks, and (while the
 * bitmaps autoclear bit says they are valid) the bitmap directory and
 * bitmap tables.  It then compares these with the refcounts on disk:
 *
 *   on disk < references   corruption  "ERROR cluster N refcount=R reference=F"
 *   on disk > references   leak        "Leaked cluster N refcount=R reference=F"
 *
 * and finally checks the COPIED flags of L1 and L2 entries (set exactly
 * when the refcount is 1).  Misaligned tables, reserved bits and refcount
 * blocks outside the image are corruptions.  Messages and counts follow
 * QEMU 7.2, so qemu-img check and blockd-img check agree.
 *
 * Repair:
 * - BDRV_FIX_LEAKS sets too-high refcounts to the computed value.
 * - BDRV_FIX_ERRORS also raises too-low refcounts.  A refcount of 0 on a
 *   referenced cluster, or broken refcount blocks, cannot be fixed in
 *   place (the cluster could be handed out again while we allocate), so
 *   the whole refcount structure is rebuilt from the in-memory counts: new
 *   refcount blocks and table are written past the end of everything in
 *   use, the header is switched to them, and the old structures, which
 *   are then leaked, are freed by a second comparison.
 * - A repaired image without remaining corruptions gets its corrupt and
 *   dirty bits cleared.
 *
 * The in-memory counts are one uint64_t per host cluster; the array grows
 * (in whole refcount blocks, as QEMU's) when something references a
 * cluster past the end of the file.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

#define CHECK_FRAG_INFO 1
/* refuse to track references beyond this many clusters (garbage offsets) */
#define CHECK_MAX_CLUSTERS (INT64_C(1) << 31)

typedef struct Qcow2Check {
    BlockDriverState *bs;
    BDRVQcow2State *s;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    uint64_t *refs;
    int64_t nb_clusters;
    int64_t file_len;
    bool rebuild;
} Qcow2Check;

static int grow_refs(Qcow2Check *c, int64_t min_clusters)
{
    int64_t n = QEMU_ALIGN_UP(min_clusters, c->s->refblock_size);
    uint64_t *p;

    if (min_clusters <= c->nb_clusters) {
        return 0;
    }
    if (n > CHECK_MAX_CLUSTERS) {
        return -ENOMEM;
    }
    p = g_try_renew(uint64_t, c->refs, n);
    if (!p) {
        return -ENOMEM;
    }
    memset(p + c->nb_clusters, 0, (n - c->nb_clusters) * sizeof(*p));
    c->refs = p;
    c->nb_clusters = n;
    return 0;
}

/* count one reference to every cluster of [offset, offset + size) */
static int inc_refs(Qcow2Check *c, uint64_t offset, int64_t size)
{
    BDRVQcow2State *s = c->s;
    uint64_t start, last, k;
    int ret;

    if (size <= 0) {
        return 0;
    }
    /* the last cluster may be partly past EOF, nothing further */
    if (offset > INT64_MAX - size ||
        (int64_t)offset + size - c->file_len >= s->cluster_size) {
        fprintf(stderr, "ERROR: counting reference for region exceeding the "
                "end of the file by one cluster or more: offset 0x%" PRIx64
                " size 0x%" PRIx64 "\n", offset, size);
        c->res->corruptions++;
        return 0;
    }
    start = qcow2_start_of_cluster(s, offset);
    last = qcow2_start_of_cluster(s, offset + size - 1);
    for (; start <= last; start += s->cluster_size) {
        k = start >> s->cluster_bits;
        if ((int64_t)k >= c->nb_clusters) {
            ret = grow_refs(c, k + 1);
            if (ret < 0) {
                c->res->check_errors++;
                return ret;
            }
        }
        if (c->refs[k] == s->refcount_max) {
            fprintf(stderr, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
                    start);
            fprintf(stderr, "Use qemu-img amend to increase the refcount "
                    "entry width or qemu-img convert to create a clean copy "
                    "if the image cannot be opened for writing\n");
            c->res->corruptions++;
            continue;
        }
        c->refs[k]++;
    }
    return 0;
}

static int coroutine_fn check_l2(Qcow2Check *c, uint64_t l2_offset,
                                 int flags)
{
    BDRVQcow2State *s = c->s;
    g_autofree uint64_t *l2 = g_try_malloc(s->cluster_size);
    uint64_t next_contiguous = 0;
    int i, ret;

    if (!l2) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(c->bs->file, l2_offset, s->cluster_size, l2, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l2\n");
        c->res->check_errors++;
        return ret;
    }
    for (i = 0; i < s->l2_size; i++) {
        uint64_t entry = GUINT64_FROM_BE(l2[i]);
        Qcow2ClusterType type = qcow2_get_cluster_type(s, entry);
        uint64_t off;
        int bytes;

        if (type != QCOW2_CLUSTER_COMPRESSED &&
            (entry & L2E_STD_RESERVED_MASK)) {
            fprintf(stderr, "ERROR found l2 entry with reserved bits set: %"
                    PRIx64 "\n", entry);
            c->res->corruptions++;
        }
        switch (type) {
        case QCOW2_CLUSTER_COMPRESSED:
            if (entry & QCOW_OFLAG_COPIED) {
                qcow2_parse_compressed_entry(s, entry, &off, &bytes);
                fprintf(stderr, "ERROR: coffset=0x%" PRIx64 ": copied flag "
                        "must never be set for compressed clusters\n", off);
                entry &= ~QCOW_OFLAG_COPIED;
                c->res->corruptions++;
            }
            qcow2_parse_compressed_entry(s, entry, &off, &bytes);
            ret = inc_refs(c, off, bytes);
            if (ret < 0) {
                return ret;
            }
            if (flags & CHECK_FRAG_INFO) {
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                /* compressed clusters are fragmented by nature */
                c->res->fragmented_clusters++;
            }
            break;
        case QCOW2_CLUSTER_ZERO_ALLOC:
        case QCOW2_CLUSTER_NORMAL:
            off = entry & L2E_OFFSET_MASK;
            if (qcow2_offset_into_cluster(s, off)) {
                c->res->corruptions++;
                if (entry & QCOW_OFLAG_ZERO) {
                    fprintf(stderr, "ERROR offset=%" PRIx64 ": Preallocated "
                            "cluster is not properly aligned; L2 entry "
                            "corrupted.\n", off);
                } else {
                    fprintf(stderr, "ERROR offset=%" PRIx64 ": Data cluster "
                            "is not properly aligned; L2 entry corrupted.\n",
                            off);
                }
            }
            if (flags & CHECK_FRAG_INFO) {
                c->res->allocated_clusters++;
                if (next_contiguous && off != next_contiguous) {
                    c->res->fragmented_clusters++;
                }
                next_contiguous = off + s->cluster_size;
            }
            ret = inc_refs(c, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_UNALLOCATED:
            break;
        }
    }
    return 0;
}

static int coroutine_fn check_l1(Qcow2Check *c, uint64_t l1_offset,
                                 uint32_t l1_size, int flags)
{
    BDRVQcow2State *s = c->s;
    g_autofree uint64_t *l1 = NULL;
    uint64_t bytes = (uint64_t)l1_size * 8;
    uint32_t i;
    int ret;

    if (!l1_size) {
        return 0;
    }
    ret = inc_refs(c, l1_offset, bytes);
    if (ret < 0) {
        return ret;
    }
    l1 = g_try_malloc(bytes);
    if (!l1) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(c->bs->file, l1_offset, bytes, l1, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l1\n");
        c->res->check_errors++;
        return ret;
    }
    for (i = 0; i < l1_size; i++) {
        uint64_t entry = GUINT64_FROM_BE(l1[i]);
        uint64_t l2_offset;

        if (!entry) {
            continue;
        }
        if (entry & L1E_RESERVED_MASK) {
            fprintf(stderr, "ERROR found L1 entry with reserved bits set: %"
                    PRIx64 "\n", entry);
            c->res->corruptions++;
        }
        l2_offset = entry & L1E_OFFSET_MASK;
        ret = inc_refs(c, l2_offset, s->cluster_size);
        if (ret < 0) {
            return ret;
        }
        if (qcow2_offset_into_cluster(s, l2_offset)) {
            fprintf(stderr, "ERROR l2_offset=%" PRIx64 ": Table is not "
                    "cluster aligned; L1 entry corrupted\n", l2_offset);
            c->res->corruptions++;
        }
        ret = check_l2(c, l2_offset, flags);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int coroutine_fn check_snapshots(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    uint64_t offset = s->snapshots_offset;
    uint8_t hdr[40];
    uint32_t i;
    int ret;

    for (i = 0; i < s->nb_snapshots; i++) {
        uint64_t l1_offset;
        uint32_t l1_size, extra;
        uint16_t id_len, name_len;

        ret = bdrv_co_pread(c->bs->file, offset, sizeof(hdr), hdr, 0);
        if (ret < 0) {
            c->res->check_errors++;
            return ret;
        }
        l1_offset = q2_ld64(hdr);
        l1_size = q2_ld32(hdr + 8);
        id_len = q2_ld16(hdr + 12);
        name_len = q2_ld16(hdr + 14);
        extra = q2_ld32(hdr + 36);
        /* open validated alignment and sizes */
        ret = check_l1(c, l1_offset, l1_size, 0);
        if (ret < 0) {
            return ret;
        }
        offset += QEMU_ALIGN_UP(sizeof(hdr) + extra + id_len + name_len, 8);
    }
    return inc_refs(c, s->snapshots_offset, s->snapshots_size);
}

static int coroutine_fn check_bitmaps(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    g_autofree uint8_t *dir = NULL;
    uint64_t pos = 0;
    uint32_t i;
    int ret;

    if (!s->nb_bitmaps || !(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)
        || s->bitmap_directory_size > 64 * MiB) {
        return 0;
    }
    ret = inc_refs(c, s->bitmap_directory_offset, s->bitmap_directory_size);
    if (ret < 0) {
        return ret;
    }
    dir = g_try_malloc(MAX(s->bitmap_directory_size, 1));
    if (!dir) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(c->bs->file, s->bitmap_directory_offset,
                        s->bitmap_directory_size, dir, 0);
    if (ret < 0) {
        c->res->check_errors++;
        return ret;
    }
    for (i = 0; i < s->nb_bitmaps && pos + 24 <= s->bitmap_directory_size;
         i++) {
        uint64_t table_offset = q2_ld64(dir + pos);
        uint32_t table_size = q2_ld32(dir + pos + 8);
        uint16_t name_size = q2_ld16(dir + pos + 18);
        uint32_t extra = q2_ld32(dir + pos + 20);
        g_autofree uint64_t *table = NULL;
        uint32_t j;

        pos += QEMU_ALIGN_UP(24 + (uint64_t)extra + name_size, 8);
        if (!table_offset || table_size > QCOW_MAX_L1_SIZE / 8) {
            continue;
        }
        ret = inc_refs(c, table_offset, (int64_t)table_size * 8);
        if (ret < 0) {
            return ret;
        }
        table = g_try_new(uint64_t, MAX(table_size, 1));
        if (!table) {
            c->res->check_errors++;
            return -ENOMEM;
        }
        ret = bdrv_co_pread(c->bs->file, table_offset,
                            (int64_t)table_size * 8, table, 0);
        if (ret < 0) {
            c->res->check_errors++;
            return ret;
        }
        for (j = 0; j < table_size; j++) {
            uint64_t off = GUINT64_FROM_BE(table[j]) & L1E_OFFSET_MASK;

            if (off) {
                ret = inc_refs(c, off, s->cluster_size);
                if (ret < 0) {
                    return ret;
                }
            }
        }
    }
    return 0;
}

static int coroutine_fn check_refblocks(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    uint32_t i;
    int ret;

    for (i = 0; i < s->refcount_table_size; i++) {
        uint64_t entry = s->refcount_table[i];
        uint64_t off = entry & REFT_OFFSET_MASK;
        int64_t cluster = off >> s->cluster_bits;

        if (entry & ~REFT_OFFSET_MASK) {
            fprintf(stderr, "ERROR refcount table entry %" PRIu32 " has "
                    "reserved bits set\n", i);
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (qcow2_offset_into_cluster(s, off)) {
            fprintf(stderr, "ERROR refcount block %" PRIu32 " is not cluster "
                    "aligned; refcount table entry corrupted\n", i);
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (cluster >= c->nb_clusters) {
            c->res->corruptions++;
            fprintf(stderr, "%s refcount block %" PRIu32 " is outside "
                    "image\n", (c->fix & BDRV_FIX_ERRORS) ? "Repairing" :
                    "ERROR", i);
            if (c->fix & BDRV_FIX_ERRORS) {
                Error *err = NULL;

                ret = bdrv_co_truncate(c->bs->file, off + s->cluster_size,
                                       false, &err);
                if (ret < 0) {
                    fprintf(stderr, "ERROR could not resize image: %s\n",
                            error_get_pretty(err));
                    error_free(err);
                    c->rebuild = true;
                    continue;
                }
                c->file_len = bdrv_getlength(c->bs->file->bs);
                ret = c->file_len < 0 ? c->file_len : grow_refs(c, cluster + 1);
                if (ret < 0) {
                    c->res->check_errors++;
                    return ret;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
                ret = inc_refs(c, off, s->cluster_size);
                if (ret < 0) {
                    return ret;
                }
            }
            continue;
        }
        if (off) {
            ret = inc_refs(c, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            if (c->refs[cluster] != 1) {
                fprintf(stderr, "ERROR refcount block %" PRIu32
                        " refcount=%" PRIu64 "\n", i, c->refs[cluster]);
                c->res->corruptions++;
                c->rebuild = true;
            }
        }
    }
    return 0;
}

static int coroutine_fn calculate_refcounts(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    int ret;

    memset(c->refs, 0, c->nb_clusters * sizeof(*c->refs));
    ret = inc_refs(c, 0, s->cluster_size);
    if (ret == 0) {
        ret = check_l1(c, s->l1_table_offset, s->l1_size, CHECK_FRAG_INFO);
    }
    if (ret == 0) {
        ret = check_snapshots(c);
    }
    if (ret == 0) {
        ret = inc_refs(c, s->refcount_table_offset,
                       (int64_t)s->refcount_table_size * 8);
    }
    if (ret == 0) {
        ret = check_bitmaps(c);
    }
    if (ret == 0) {
        ret = check_refblocks(c);
    }
    return ret;
}

/* on-disk refcount of a cluster, without signalling corruption */
static int coroutine_fn read_refcount(Qcow2Check *c, int64_t cluster,
                                      uint64_t *refcount)
{
    BDRVQcow2State *s = c->s;
    uint64_t rt_index = cluster >> s->refblock_bits;
    uint64_t off;
    void *block;
    int ret;

    *refcount = 0;
    if (rt_index >= s->refcount_table_size) {
        return 0;
    }
    off = s->refcount_table[rt_index] & REFT_OFFSET_MASK;
    if (!off) {
        return 0;
    }
    if (qcow2_offset_into_cluster(s, off)) {
        return -EIO;
    }
    ret = qcow2_cache_get(c->bs, s->refcount_block_cache, off, &block);
    if (ret < 0) {
        return ret;
    }
    *refcount = qcow2_refcount_get_entry(s, block, cluster &
                                         (s->refblock_size - 1));
    qcow2_cache_put(s->refcount_block_cache, &block);
    return 0;
}

static int coroutine_fn write_refcount(Qcow2Check *c, int64_t cluster,
                                       uint64_t value)
{
    BDRVQcow2State *s = c->s;
    uint64_t off = s->refcount_table[cluster >> s->refblock_bits] &
                   REFT_OFFSET_MASK;
    void *block;
    int ret;

    ret = qcow2_cache_get(c->bs, s->refcount_block_cache, off, &block);
    if (ret < 0) {
        return ret;
    }
    qcow2_refcount_set_entry(s, block, cluster & (s->refblock_size - 1),
                             value);
    qcow2_cache_entry_mark_dirty(s->refcount_block_cache, block);
    qcow2_cache_put(s->refcount_block_cache, &block);
    return 0;
}

static void coroutine_fn compare_refcounts(Qcow2Check *c, BdrvCheckMode fix,
                                           int64_t *highest)
{
    BDRVQcow2State *s = c->s;
    int64_t i;

    *highest = 0;
    for (i = 0; i < c->nb_clusters; i++) {
        uint64_t disk, ref = c->refs[i];
        int *num_fixed = NULL;
        int ret = read_refcount(c, i, &disk);

        if (ret < 0) {
            fprintf(stderr, "Can't get refcount for cluster %" PRId64 ": %s\n",
                    i, strerror(-ret));
            c->res->check_errors++;
            continue;
        }
        if (disk > 0 || ref > 0) {
            *highest = i;
        }
        if (disk == ref) {
            continue;
        }
        if (disk == 0) {
            c->rebuild = true;
        } else if (disk > ref && (fix & BDRV_FIX_LEAKS)) {
            num_fixed = &c->res->leaks_fixed;
        } else if (disk < ref && (fix & BDRV_FIX_ERRORS) &&
                   ref <= s->refcount_max) {
            num_fixed = &c->res->corruptions_fixed;
        }
        fprintf(stderr, "%s cluster %" PRId64 " refcount=%" PRIu64
                " reference=%" PRIu64 "\n",
                num_fixed ? "Repairing" : disk < ref ? "ERROR" : "Leaked",
                i, disk, ref);
        if (num_fixed) {
            ret = write_refcount(c, i, ref);
            if (ret >= 0) {
                (*num_fixed)++;
                continue;
            }
        }
        if (disk < ref) {
            c->res->corruptions++;
        } else {
            c->res->leaks++;
        }
    }
}

/*
 * First fit for n free clusters in the in-memory counts from *first_free
 * (appending at the end if needed); marks them used.  Returns the cluster
 * index, or -errno.
 */
static int64_t alloc_imrt(Qcow2Check *c, int64_t n, int64_t *first_free)
{
    int64_t cluster, contiguous = 0;
    bool first_gap = true;
    int ret;

    for (cluster = *first_free; cluster < c->nb_clusters && contiguous < n;
         cluster++) {
        if (!c->refs[cluster]) {
            contiguous++;
            if (first_gap) {
                *first_free = cluster;
                first_gap = false;
            }
        } else {
            contiguous = 0;
        }
    }
    if (contiguous < n) {
        ret = grow_refs(c, cluster + n - contiguous);
        if (ret < 0) {
            return ret;
        }
    }
    cluster -= contiguous;
    for (contiguous = 0; contiguous < n; contiguous++) {
        c->refs[cluster + contiguous] = 1;
    }
    return cluster;
}

/*
 * Allocate refcount blocks for every block range of [from, c->nb_clusters)
 * holding a used cluster, as QEMU does: first fit, never inside a range
 * whose block was already placed; the refcount table is squeezed in when
 * the last range's block is allocated.
 */
static int alloc_refblocks(Qcow2Check *c, int64_t from, int64_t **table,
                           int64_t *entries, int64_t *first_free,
                           int64_t *reftable)
{
    BDRVQcow2State *s = c->s;
    int64_t cluster, rb_entries_per_cluster = s->cluster_size / 8;

    for (cluster = from; cluster < c->nb_clusters; cluster++) {
        int64_t index = cluster >> s->refblock_bits;
        int64_t start = index << s->refblock_bits;
        int64_t off;

        if (!c->refs[cluster]) {
            continue;
        }
        if (index >= *entries || !(*table)[index]) {
            if (*first_free < start) {
                *first_free = start;
            }
            off = alloc_imrt(c, 1, first_free);
            if (off < 0) {
                return off;
            }
            if (index >= *entries) {
                int64_t n = QEMU_ALIGN_UP(index + 1, rb_entries_per_cluster);

                *table = g_renew(int64_t, *table, n);
                memset(*table + *entries, 0, (n - *entries) * 8);
                *entries = n;
            }
            (*table)[index] = off;
            if (index == (c->nb_clusters - 1) >> s->refblock_bits &&
                *reftable < 0) {
                *reftable = alloc_imrt(c, DIV_ROUND_UP(*entries * 8,
                                                       s->cluster_size),
                                       first_free);
                if (*reftable < 0) {
                    return *reftable;
                }
            }
        }
        cluster = start + s->refblock_size - 1;
    }
    return 0;
}

/*
 * Write a new refcount structure describing c->refs (blocks and table in
 * free clusters, first fit) and switch the header to it.
 */
static int coroutine_fn rebuild_refcounts(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    g_autofree int64_t *table = NULL;
    g_autofree uint8_t *buf = NULL;
    g_autofree uint64_t *be_table = NULL;
    int64_t entries = 0, first_free = 0, reftable = -1, rt_clusters, i;
    uint8_t hdr[12];
    int ret;

    ret = alloc_refblocks(c, 0, &table, &entries, &first_free, &reftable);
    if (ret == 0 && reftable < 0) {
        int64_t post = QEMU_ALIGN_UP(c->nb_clusters, s->refblock_size);

        first_free = MAX(first_free, post);
        reftable = alloc_imrt(c, DIV_ROUND_UP(entries * 8, s->cluster_size),
                              &first_free);
        ret = reftable < 0 ? reftable
                           : alloc_refblocks(c, post, &table, &entries,
                                             &first_free, &reftable);
    }
    if (ret < 0) {
        return ret;
    }
    rt_clusters = DIV_ROUND_UP(entries * 8, s->cluster_size);
    for (i = 0; i < rt_clusters; i++) {
        if (reftable + i >= c->nb_clusters || c->refs[reftable + i] != 1) {
            /* the table outgrew the space reserved for it */
            return -ENOSPC;
        }
    }
    if ((uint64_t)rt_clusters << s->cluster_bits > QCOW_MAX_REFTABLE_SIZE) {
        return -EFBIG;
    }
    c->file_len = MAX(c->file_len, (c->nb_clusters) << s->cluster_bits);

    /* nothing dirty may be written to the old blocks later */
    ret = qcow2_cache_flush(c->bs, s->refcount_block_cache);
    if (ret < 0) {
        return ret;
    }
    buf = g_malloc0(s->cluster_size);
    be_table = g_new0(uint64_t, rt_clusters << (s->cluster_bits - 3));
    for (i = 0; i < entries; i++) {
        int64_t j, base = i << s->refblock_bits;

        if (!table[i]) {
            continue;
        }
        memset(buf, 0, s->cluster_size);
        for (j = 0; j < s->refblock_size && base + j < c->nb_clusters; j++) {
            qcow2_refcount_set_entry(s, buf, j, MIN(c->refs[base + j],
                                                    s->refcount_max));
        }
        ret = bdrv_co_pwrite(c->bs->file, table[i] << s->cluster_bits,
                             s->cluster_size, buf, 0);
        if (ret < 0) {
            return ret;
        }
        be_table[i] = GUINT64_TO_BE((uint64_t)table[i] << s->cluster_bits);
    }
    ret = bdrv_co_pwrite(c->bs->file, reftable << s->cluster_bits,
                         rt_clusters << s->cluster_bits, be_table, 0);
    if (ret == 0) {
        ret = bdrv_co_flush(c->bs->file->bs);
    }
    if (ret < 0) {
        return ret;
    }
    q2_st64(hdr, (uint64_t)reftable << s->cluster_bits);
    q2_st32(hdr + 8, rt_clusters);
    ret = qcow2_update_header_field(c->bs, QCOW2_HDR_REFTABLE_OFFSET, hdr,
                                    sizeof(hdr));
    if (ret == 0) {
        ret = bdrv_co_flush(c->bs->file->bs);
    }
    if (ret < 0) {
        return ret;
    }

    for (i = 0; i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;

        if (off && !qcow2_offset_into_cluster(s, off)) {
            qcow2_cache_discard(s->refcount_block_cache, off);
        }
    }
    g_free(s->refcount_table);
    s->refcount_table_size = rt_clusters << (s->cluster_bits - 3);
    s->refcount_table = g_new0(uint64_t, s->refcount_table_size);
    for (i = 0; i < entries; i++) {
        s->refcount_table[i] = (uint64_t)table[i] << s->cluster_bits;
    }
    s->refcount_table_offset = (uint64_t)reftable << s->cluster_bits;
    s->free_cluster_index = 0;
    return 0;
}

/* Fix the COPIED flags (L1 and L2) where the refcounts disagree */
static int coroutine_fn check_oflag_copied(Qcow2Check *c, BdrvCheckMode fix)
{
    BDRVQcow2State *s = c->s;
    BdrvCheckResult *res = c->res;
    g_autofree uint64_t *l2 = g_malloc(s->cluster_size);
    bool repair;
    uint32_t i;
    int ret;

    if (fix & BDRV_FIX_ERRORS) {
        repair = true;
    } else if (fix & BDRV_FIX_LEAKS) {
        /* safe only if the refcounts are now known to be right */
        repair = !res->check_errors && !res->corruptions && !res->leaks;
    } else {
        repair = false;
    }
    for (i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i];
        uint64_t l2_offset = l1e & L1E_OFFSET_MASK;
        uint64_t refcount;
        int j, dirty = 0;

        if (!l2_offset || qcow2_offset_into_cluster(s, l2_offset)) {
            continue;
        }
        if (read_refcount(c, l2_offset >> s->cluster_bits, &refcount) < 0) {
            continue;
        }
        if ((refcount == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
            res->corruptions++;
            fprintf(stderr, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
                    " l1_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
                    repair ? "Repairing" : "ERROR", i, l1e, refcount);
            if (repair) {
                uint8_t be[8];

                s->l1_table[i] = refcount == 1 ? l1e | QCOW_OFLAG_COPIED
                                               : l1e & ~QCOW_OFLAG_COPIED;
                q2_st64(be, s->l1_table[i]);
                ret = bdrv_co_pwrite(c->bs->file,
                                     s->l1_table_offset + 8 * (uint64_t)i,
                                     8, be, 0);
                if (ret < 0) {
                    res->check_errors++;
                    return ret;
                }
                res->corruptions--;
                res->corruptions_fixed++;
            }
        }
        ret = bdrv_co_pread(c->bs->file, l2_offset, s->cluster_size, l2, 0);
        if (ret < 0) {
            fprintf(stderr, "ERROR: Could not read L2 table: %s\n",
                    strerror(-ret));
            res->check_errors++;
            return ret;
        }
        for (j = 0; j < s->l2_size; j++) {
            uint64_t l2e = GUINT64_FROM_BE(l2[j]);
            Qcow2ClusterType type = qcow2_get_cluster_type(s, l2e);

            if (type != QCOW2_CLUSTER_NORMAL &&
                type != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            if (read_refcount(c, (l2e & L2E_OFFSET_MASK) >> s->cluster_bits,
                              &refcount) < 0) {
                continue;
            }
            if ((refcount == 1) != !!(l2e & QCOW_OFLAG_COPIED)) {
                res->corruptions++;
                fprintf(stderr, "%s OFLAG_COPIED data cluster: l2_entry=%"
                        PRIx64 " refcount=%" PRIu64 "\n",
                        repair ? "Repairing" : "ERROR", l2e, refcount);
                if (repair) {
                    l2e = refcount == 1 ? l2e | QCOW_OFLAG_COPIED
                                        : l2e & ~QCOW_OFLAG_COPIED;
                    l2[j] = GUINT64_TO_BE(l2e);
                    dirty++;
                }
            }
        }
        if (dirty) {
            ret = bdrv_co_pwrite(c->bs->file, l2_offset, s->cluster_size, l2,
                                 0);
            if (ret < 0) {
                fprintf(stderr, "ERROR: Could not write L2 table: %s\n",
                        strerror(-ret));
                res->check_errors++;
                return ret;
            }
            qcow2_cache_discard(s->l2_table_cache, l2_offset);
            res->corruptions -= dirty;
            res->corruptions_fixed += dirty;
        }
    }
    return 0;
}

static int coroutine_fn check_refcounts(Qcow2Check *c)
{
    BDRVQcow2State *s = c->s;
    BdrvCheckResult *res = c->res;
    BdrvCheckResult pre_compare;
    int64_t file_len = bdrv_getlength(c->bs->file->bs);
    int64_t highest = 0;
    int ret;

    if (file_len < 0) {
        res->check_errors++;
        return file_len;
    }
    c->file_len = file_len;
    res->total_clusters = qcow2_size_to_clusters(s, s->size);
    c->nb_clusters = 0;
    ret = grow_refs(c, qcow2_size_to_clusters(s, file_len));
    if (ret < 0) {
        res->check_errors++;
        return ret;
    }
    /* the array is rounded up to whole blocks; compare the file's extent */
    c->nb_clusters = qcow2_size_to_clusters(s, file_len);
    ret = calculate_refcounts(c);
    if (ret < 0) {
        return ret;
    }
    pre_compare = *res;
    compare_refcounts(c, 0, &highest);

    if (c->rebuild && (c->fix & BDRV_FIX_ERRORS)) {
        BdrvCheckResult old = *res;
        int fresh_leaks = 0;

        fprintf(stderr, "Rebuilding refcount structure\n");
        ret = rebuild_refcounts(c);
        if (ret < 0) {
            fprintf(stderr, "ERROR could not rebuild the refcount structure: "
                    "%s\n", strerror(-ret));
            res->check_errors++;
            return ret;
        }
        res->corruptions = 0;
        res->leaks = 0;
        c->rebuild = false;
        ret = calculate_refcounts(c);
        if (ret < 0) {
            return ret;
        }
        if (c->fix & BDRV_FIX_LEAKS) {
            /* the old structures are leaked now: free them */
            BdrvCheckResult saved = *res;

            *res = (BdrvCheckResult) { 0 };
            compare_refcounts(c, BDRV_FIX_LEAKS, &highest);
            if (c->rebuild) {
                fprintf(stderr, "ERROR rebuilt refcount structure is still "
                        "broken\n");
            }
            fresh_leaks = res->leaks;
            *res = saved;
        }
        if (res->corruptions < old.corruptions) {
            res->corruptions_fixed += old.corruptions - res->corruptions;
        }
        if (res->leaks < old.leaks) {
            res->leaks_fixed += old.leaks - res->leaks;
        }
        res->leaks += fresh_leaks;
    } else if (c->fix) {
        if (c->rebuild) {
            fprintf(stderr, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            return -EIO;
        }
        if (res->leaks || res->corruptions) {
            *res = pre_compare;
            compare_refcounts(c, c->fix, &highest);
        }
    }
    ret = qcow2_cache_flush(c->bs, s->refcount_block_cache);
    if (ret < 0) {
        res->check_errors++;
        return ret;
    }
    ret = check_oflag_copied(c, c->fix);
    if (ret < 0) {
        return ret;
    }
    res->image_end_offset = (highest + 1) * s->cluster_size;
    return 0;
}

static int coroutine_fn mark_clean(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bits = QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY;
    uint8_t be[8];
    int ret;

    if (!(s->incompatible_features & bits) || s->qcow_version < 3) {
        return 0;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features &= ~bits;
    q2_st64(be, s->incompatible_features);
    ret = qcow2_update_header_field(bs, QCOW2_HDR_INCOMPAT, be, 8);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    s->corrupt_signalled = false;
    return ret;
}

int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Check c = { .bs = bs, .s = s, .res = res, .fix = fix };
    int ret;

    memset(res, 0, sizeof(*res));
    if (fix && bs->read_only) {
        return -EACCES;
    }
    qemu_co_mutex_lock(&s->lock);
    /* the check reads tables from the file: write back what is cached */
    if (!bs->read_only) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
        if (ret == 0) {
            ret = qcow2_cache_flush(bs, s->refcount_block_cache);
        }
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
    }
    ret = check_refcounts(&c);
    if (ret == 0 && fix && !bs->read_only) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
        if (ret == 0) {
            ret = bdrv_co_flush(bs->file->bs);
        }
        if (ret == 0 && res->check_errors == 0 && res->corruptions == 0) {
            ret = mark_clean(bs);
        }
    }
out:
    qemu_co_mutex_unlock(&s->lock);
    g_free(c.refs);
    return ret;
}
