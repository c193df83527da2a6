/*
 * qcow2 refcounts: the refcount table (kept in memory, host endian) points
 * at refcount blocks (cached, big endian) of 2^refcount_order-bit entries,
 * one per host cluster.  Entries narrower than a byte are packed starting
 * at the least significant bit, as QEMU does.
 *
 * Allocation is first fit: it scans for free clusters from
 * free_cluster_index (every cluster below it is in use, except those freed
 * while data I/O was in flight, see cluster_became_free), skipping the
 * stretch up to free_run_end when that holds no free run long enough (the
 * hint is dropped whenever a cluster is freed).  Before any
 * refcount is increased, every refcount block it needs must exist: a
 * missing block is created "self-describing" at the first cluster it
 * covers (that cluster is free by definition, since nothing in the range
 * has a refcount yet), and a full refcount table is replaced by a larger
 * one placed, together with the refcount blocks that describe it, in a
 * fresh area past every cluster the old table covers.  Then the scan is
 * repeated, because the new metadata may occupy the clusters it found.
 *
 * Write order: new refcount blocks reach the disk before the table entry
 * pointing at them; a new refcount table and its blocks before the header
 * switch; the old table is freed only after the switch.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

int coroutine_fn qcow2_refcount_init(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bytes = (uint64_t)s->refcount_table_size * sizeof(uint64_t);
    int64_t file_len = bdrv_getlength(bs->file->bs);
    uint32_t i;
    int ret;

    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get image file size");
        return file_len;
    }
    if (s->refcount_table_offset + bytes > (uint64_t)file_len) {
        error_setg(errp, "Refcount table is beyond the end of the image "
                   "file");
        return -EINVAL;
    }
    s->refcount_table = g_try_malloc0(MAX(bytes, 1));
    if (!s->refcount_table) {
        error_setg(errp, "Could not allocate refcount table");
        return -ENOMEM;
    }
    if (bytes) {
        BLKDBG_EVENT(bs->file, BLKDBG_REFTABLE_LOAD);
        ret = bdrv_co_pread(bs->file, s->refcount_table_offset, bytes,
                            s->refcount_table, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read refcount table");
            return ret;
        }
    }
    for (i = 0; i < s->refcount_table_size; i++) {
        s->refcount_table[i] = GUINT64_FROM_BE(s->refcount_table[i]);
    }
    return 0;
}

uint64_t qcow2_refcount_get_entry(BDRVQcow2State *s, const void *block,
                                  uint64_t index)
{
    const uint8_t *b = block;

    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        uint64_t bit = index << s->refcount_order;

        return (b[bit / 8] >> (bit % 8)) & ((1u << s->refcount_bits) - 1);
    }
    case 3:
        return b[index];
    case 4:
        return q2_ld16(b + index * 2);
    case 5:
        return q2_ld32(b + index * 4);
    default:
        return q2_ld64(b + index * 8);
    }
}

void qcow2_refcount_set_entry(BDRVQcow2State *s, void *block,
                              uint64_t index, uint64_t value)
{
    uint8_t *b = block;

    assert(value <= s->refcount_max);
    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        uint64_t bit = index << s->refcount_order;
        uint8_t mask = ((1u << s->refcount_bits) - 1) << (bit % 8);

        b[bit / 8] = (b[bit / 8] & ~mask) | (value << (bit % 8));
        break;
    }
    case 3:
        b[index] = value;
        break;
    case 4:
        q2_st16(b + index * 2, value);
        break;
    case 5:
        q2_st32(b + index * 4, value);
        break;
    default:
        q2_st64(b + index * 8, value);
        break;
    }
}

/* offset of refcount block rt_index, 0 if none; -EIO if corrupt */
static int64_t refblock_offset(BlockDriverState *bs, uint64_t rt_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off;

    if (rt_index >= s->refcount_table_size) {
        return 0;
    }
    off = s->refcount_table[rt_index] & REFT_OFFSET_MASK;
    if (qcow2_offset_into_cluster(s, off)) {
        return qcow2_signal_corruption(bs, "Refblock offset %#" PRIx64
                                       " unaligned (reftable index: %#"
                                       PRIx64 ")", off, rt_index);
    }
    return off;
}

int coroutine_fn qcow2_get_refcount(BlockDriverState *bs,
                                    int64_t cluster_index,
                                    uint64_t *refcount)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t off = refblock_offset(bs, cluster_index >> s->refblock_bits);
    void *block;
    int ret;

    if (off <= 0) {
        *refcount = 0;
        return off;
    }
    ret = qcow2_cache_get(bs, s->refcount_block_cache, off, &block);
    if (ret < 0) {
        return ret;
    }
    *refcount = qcow2_refcount_get_entry(s, block, cluster_index &
                                         (s->refblock_size - 1));
    qcow2_cache_put(s->refcount_block_cache, &block);
    return 0;
}

void qcow2_data_io_begin(BDRVQcow2State *s)
{
    s->data_io_in_flight++;
}

void qcow2_data_io_end(BDRVQcow2State *s)
{
    assert(s->data_io_in_flight > 0);
    if (--s->data_io_in_flight == 0 && s->deferred_free_index >= 0) {
        s->free_cluster_index = MIN(s->free_cluster_index,
                                    s->deferred_free_index);
        s->deferred_free_index = -1;
    }
}

static void cluster_became_free(BlockDriverState *bs, int64_t index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = (uint64_t)index << s->cluster_bits;

    qcow2_cache_discard(s->l2_table_cache, off);
    qcow2_cache_discard(s->refcount_block_cache, off);
    if (s->free_byte_offset &&
        qcow2_start_of_cluster(s, s->free_byte_offset) == (int64_t)off) {
        s->free_byte_offset = 0;
    }
    s->cluster_cache_offset = -1;
    /* a longer free run may exist behind free_cluster_index now */
    s->free_run_end = 0;
    if (s->data_io_in_flight) {
        /* a request may still read the old data: don't reuse it yet */
        if (s->deferred_free_index < 0 || index < s->deferred_free_index) {
            s->deferred_free_index = index;
        }
    } else if (index < s->free_cluster_index) {
        s->free_cluster_index = index;
    }
}

int coroutine_fn qcow2_update_refcount(BlockDriverState *bs, int64_t offset,
                                       int64_t length, int delta)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t first, last, i;
    void *block = NULL;
    int64_t block_off = 0;
    int ret = 0;

    if (length <= 0) {
        return 0;
    }
    if (delta < 0) {
        /* the references must be gone on disk before the refcount drops */
        ret = qcow2_cache_set_dependency(bs, s->refcount_block_cache,
                                         s->l2_table_cache);
        if (ret < 0) {
            return ret;
        }
    }
    first = offset >> s->cluster_bits;
    last = (offset + length - 1) >> s->cluster_bits;
    for (i = first; i <= last; i++) {
        int64_t off = refblock_offset(bs, i >> s->refblock_bits);
        uint64_t idx = i & (s->refblock_size - 1);
        uint64_t rc;

        if (off < 0) {
            ret = off;
            break;
        }
        if (off == 0) {
            ret = qcow2_signal_corruption(bs, "Refcount block for cluster %#"
                                          PRIx64 " is missing",
                                          (uint64_t)i << s->cluster_bits);
            break;
        }
        if (off != block_off) {
            if (block) {
                qcow2_cache_put(s->refcount_block_cache, &block);
            }
            /* where QEMU has them: the block to update, cached or not */
            BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC);
            BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_LOAD);
            ret = qcow2_cache_get(bs, s->refcount_block_cache, off, &block);
            if (ret < 0) {
                break;
            }
            block_off = off;
        }
        rc = qcow2_refcount_get_entry(s, block, idx);
        if ((delta < 0 && rc < (uint64_t)-delta) ||
            (delta > 0 && rc + delta > s->refcount_max)) {
            ret = delta < 0 ?
                qcow2_signal_corruption(bs, "Refcount of cluster %#" PRIx64
                                        " would become negative",
                                        (uint64_t)i << s->cluster_bits) :
                -ERANGE;
            break;
        }
        rc += delta;
        qcow2_refcount_set_entry(s, block, idx, rc);
        qcow2_cache_entry_mark_dirty(s->refcount_block_cache, block);
        if (rc == 0) {
            cluster_became_free(bs, i);
        }
    }
    if (block) {
        qcow2_cache_put(s->refcount_block_cache, &block);
    }
    return ret;
}

/* Write one entry of the refcount table (in memory and on disk) */
static int coroutine_fn write_reftable_entry(BlockDriverState *bs,
                                             uint64_t rt_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t be = GUINT64_TO_BE(s->refcount_table[rt_index]);

    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC_HOOKUP);
    return bdrv_co_pwrite(bs->file, s->refcount_table_offset +
                          rt_index * sizeof(uint64_t), sizeof(be), &be, 0);
}

/* Create refcount block rt_index at the first cluster it covers */
static int coroutine_fn create_refblock(BlockDriverState *bs,
                                        uint64_t rt_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = rt_index << (s->refblock_bits + s->cluster_bits);
    void *block;
    int ret;

    if (off == 0 || off > L2E_OFFSET_MASK) {
        return off ? -EFBIG :
            qcow2_signal_corruption(bs, "Preventing invalid allocation of "
                                    "refcount block at offset 0");
    }
    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC);
    ret = qcow2_cache_get_empty(bs, s->refcount_block_cache, off, &block);
    if (ret < 0) {
        return ret;
    }
    memset(block, 0, s->cluster_size);
    qcow2_refcount_set_entry(s, block, 0, 1);
    qcow2_cache_entry_mark_dirty(s->refcount_block_cache, block);
    qcow2_cache_put(s->refcount_block_cache, &block);
    /* the block (and any pending refcount change) before the hookup */
    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE);
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret == 0) {
        s->refcount_table[rt_index] = off;
        ret = write_reftable_entry(bs, rt_index);
    }
    if (ret < 0) {
        /*
         * Not hooked up: no dirty copy may stay cached for a cluster that
         * is no refcount block (the next allocation creates it again)
         */
        s->refcount_table[rt_index] = 0;
        qcow2_cache_discard(s->refcount_block_cache, off);
        return ret;
    }
    return 0;
}

/* Replace the refcount table by one with at least min_index + 1 entries */
static int coroutine_fn grow_reftable(BlockDriverState *bs,
                                      uint64_t min_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per = s->refblock_size;
    uint64_t old_size = s->refcount_table_size;
    uint64_t old_offset = s->refcount_table_offset;
    uint64_t old_clusters = qcow2_size_to_clusters(s, old_size * 8);
    int64_t file_len = bdrv_getlength(bs->file->bs);
    uint64_t j, new_size, t, b, area, k;
    g_autofree uint64_t *new_table = NULL;
    g_autofree uint8_t *blocks = NULL;
    uint8_t hdr[12];
    int ret;

    if (file_len < 0) {
        return file_len;
    }
    j = MAX(old_size, DIV_ROUND_UP(qcow2_size_to_clusters(s, file_len),
                                   per));
    new_size = MAX(min_index + 1, old_size + old_size / 2 + 1);
    for (;;) {
        t = qcow2_size_to_clusters(s, new_size * 8);
        new_size = t * (s->cluster_size / 8);
        b = 1;
        while (b * per < t + b) {
            b++;
        }
        if (new_size >= j + b) {
            break;
        }
        new_size = j + b;
    }
    if (new_size * 8 > QCOW_MAX_REFTABLE_SIZE ||
        ((j + b) << (s->refblock_bits + s->cluster_bits)) > L2E_OFFSET_MASK) {
        return -EFBIG;
    }
    area = j * per;   /* first cluster index of the new area */

    BLKDBG_EVENT(bs->file, BLKDBG_REFTABLE_GROW);
    /* refcount blocks for the area: table clusters + the blocks */
    blocks = g_try_malloc0(b * s->cluster_size);
    new_table = g_try_malloc0(t * s->cluster_size);
    if (!blocks || !new_table) {
        return -ENOMEM;
    }
    for (k = 0; k < t + b; k++) {
        qcow2_refcount_set_entry(s, blocks, k, 1);
    }
    memcpy(new_table, s->refcount_table, old_size * 8);
    for (k = 0; k < b; k++) {
        new_table[j + k] = (area + t + k) << s->cluster_bits;
    }
    for (k = 0; k < new_size; k++) {
        new_table[k] = GUINT64_TO_BE(new_table[k]);
    }
    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS);
    ret = bdrv_co_pwrite(bs->file, (area + t) << s->cluster_bits,
                         b * s->cluster_size, blocks, 0);
    if (ret < 0) {
        return ret;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE);
    ret = bdrv_co_pwrite(bs->file, area << s->cluster_bits,
                         t * s->cluster_size, new_table, 0);
    if (ret < 0) {
        return ret;
    }
    /* pending refcount updates of the old blocks, then a barrier */
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        return ret;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE);
    q2_st64(hdr, area << s->cluster_bits);
    q2_st32(hdr + 8, t);
    ret = qcow2_update_header_field(bs, QCOW2_HDR_REFTABLE_OFFSET, hdr,
                                    sizeof(hdr));
    if (ret < 0) {
        return ret;
    }
    for (k = 0; k < new_size; k++) {
        new_table[k] = GUINT64_FROM_BE(new_table[k]);
    }
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&new_table);
    s->refcount_table_size = new_size;
    s->refcount_table_offset = area << s->cluster_bits;
    /* the old table is no longer referenced */
    return qcow2_update_refcount(bs, old_offset,
                                 old_clusters << s->cluster_bits, -1);
}

/* What a scan for free clusters saw before the run it returns */
typedef struct FreeScan {
    int64_t first_free;   /* first free cluster, -1: none */
    int64_t max_run;      /* longest free run that was too short */
    bool skipped;         /* started at free_run_end (the hint) */
} FreeScan;

/*
 * Find n free clusters, first fit from free_cluster_index (refcounts not
 * changed).  The hint lets a request skip the allocated stretch behind
 * free_cluster_index when it holds no free run long enough for it.
 */
static int64_t coroutine_fn find_free_clusters(BlockDriverState *bs,
                                               int64_t n, FreeScan *scan)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t i = s->free_cluster_index, run = 0;
    uint64_t covered = (uint64_t)s->refcount_table_size << s->refblock_bits;

    *scan = (FreeScan) { .first_free = -1 };
    if (s->free_run_end > i && s->free_run_start == i &&
        n > s->free_run_max) {
        i = s->free_run_end;
        scan->skipped = true;
    }
    while (run < n) {
        uint64_t rc;
        int ret;

        if ((uint64_t)(i + run) >= covered) {
            /* nothing past the table's reach is in use */
            run = n;
            break;
        }
        ret = qcow2_get_refcount(bs, i + run, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc == 0) {
            if (scan->first_free < 0) {
                scan->first_free = i + run;
            }
            run++;
        } else {
            scan->max_run = MAX(scan->max_run, run);
            i += run + 1;
            run = 0;
        }
    }
    if (scan->first_free < 0) {
        scan->first_free = i;
    }
    if ((uint64_t)(i + n) << s->cluster_bits > L2E_OFFSET_MASK + 1) {
        return -EFBIG;
    }
    return i;
}

int64_t coroutine_fn qcow2_alloc_clusters(BlockDriverState *bs, int64_t n)
{
    BDRVQcow2State *s = bs->opaque;
    FreeScan scan;
    int64_t idx;
    uint64_t rt;
    int ret;

    assert(n > 0);
    BLKDBG_EVENT(bs->file, BLKDBG_CLUSTER_ALLOC);
retry:
    idx = find_free_clusters(bs, n, &scan);
    if (idx < 0) {
        return idx;
    }
    for (rt = idx >> s->refblock_bits;
         rt <= (uint64_t)(idx + n - 1) >> s->refblock_bits; rt++) {
        if (rt >= s->refcount_table_size) {
            ret = grow_reftable(bs, (idx + n - 1) >> s->refblock_bits);
            if (ret < 0) {
                return ret;
            }
            goto retry;
        }
        if (!(s->refcount_table[rt] & REFT_OFFSET_MASK)) {
            ret = create_refblock(bs, rt);
            if (ret < 0) {
                return ret;
            }
            goto retry;
        }
    }
    ret = qcow2_update_refcount(bs, idx << s->cluster_bits,
                                n << s->cluster_bits, 1);
    if (ret < 0) {
        return ret;
    }
    /*
     * Everything below the first free cluster the scan saw is in use, so
     * the next first-fit scan starts there (or after this allocation).
     * The free runs between there and idx are all shorter than n: the
     * hint lets longer requests skip them, so sequential allocation does
     * not rescan every allocated cluster each time (it used to, from the
     * end of the header metadata: quadratic).
     */
    assert(idx >= s->free_cluster_index);
    if (scan.skipped) {
        s->free_run_max = MAX(s->free_run_max, scan.max_run);
    } else {
        s->free_cluster_index = scan.first_free < idx ? scan.first_free
                                                      : idx + n;
        s->free_run_max = scan.max_run;
    }
    s->free_run_start = s->free_cluster_index;
    s->free_run_end = idx + n;
    return idx << s->cluster_bits;
}

int64_t coroutine_fn qcow2_alloc_bytes(BlockDriverState *bs, int size)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t off = s->free_byte_offset;
    int ret;

    assert(size > 0 && size <= s->cluster_size);
    BLKDBG_EVENT(bs->file, BLKDBG_CLUSTER_ALLOC_BYTES);
    if (off && qcow2_offset_into_cluster(s, off) &&
        s->cluster_size - qcow2_offset_into_cluster(s, off) >= size) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc > 0 && rc < s->refcount_max) {
            ret = qcow2_update_refcount(bs, off, 1, 1);
            if (ret < 0) {
                return ret;
            }
            s->free_byte_offset = off + size;
            if (!qcow2_offset_into_cluster(s, s->free_byte_offset)) {
                s->free_byte_offset = 0;
            }
            return off;
        }
    }
    off = qcow2_alloc_clusters(bs, qcow2_size_to_clusters(s, size));
    if (off < 0) {
        return off;
    }
    s->free_byte_offset = off + size;
    if (!qcow2_offset_into_cluster(s, s->free_byte_offset)) {
        s->free_byte_offset = 0;
    }
    return off;
}

int coroutine_fn qcow2_free_clusters(BlockDriverState *bs, int64_t offset,
                                     int64_t length)
{
    BLKDBG_EVENT(bs->file, BLKDBG_CLUSTER_FREE);
    return qcow2_update_refcount(bs, offset, length, -1);
}

void qcow2_parse_compressed_entry(BDRVQcow2State *s, uint64_t l2_entry,
                                  uint64_t *host, int *bytes)
{
    int csize_shift = 62 - (s->cluster_bits - 8);
    uint64_t csize_mask = (1ULL << (s->cluster_bits - 8)) - 1;
    uint64_t nb_sectors = ((l2_entry >> csize_shift) & csize_mask) + 1;

    *host = l2_entry & ((1ULL << csize_shift) - 1);
    *bytes = nb_sectors * 512 - (*host & 511);
}

int coroutine_fn qcow2_free_any_cluster(BlockDriverState *bs,
                                        uint64_t l2_entry)
{
    BDRVQcow2State *s = bs->opaque;

    switch (qcow2_get_cluster_type(s, l2_entry)) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        if (qcow2_offset_into_cluster(s, l2_entry & L2E_OFFSET_MASK)) {
            /* as QEMU: the entry goes, the cluster it meant leaks */
            qcow2_report_corruption(bs, "Cannot free unaligned cluster %#"
                                    PRIx64, l2_entry & L2E_OFFSET_MASK);
            return 0;
        }
        return qcow2_free_clusters(bs, l2_entry & L2E_OFFSET_MASK,
                                   s->cluster_size);
    case QCOW2_CLUSTER_COMPRESSED: {
        uint64_t host;
        int bytes;

        qcow2_parse_compressed_entry(s, l2_entry, &host, &bytes);
        return qcow2_free_clusters(bs, host, bytes);
    }
    default:
        return 0;
    }
}
