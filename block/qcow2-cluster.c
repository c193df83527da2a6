/*
 * qcow2 cluster mapping: guest offset -> L1 entry -> L2 table -> L2 entry.
 *
 * The L1 table lives in memory (host endian) and is written entry by entry;
 * L2 tables go through the L2 cache.  An L1 or L2 entry without the COPIED
 * flag points at a cluster whose refcount may be > 1 (shared with an
 * internal snapshot): it is never modified in place.  A shared L2 table is
 * copied to a new cluster before its entries change, and a shared data
 * cluster is rewritten elsewhere (see qcow2.c).
 *
 * L1 entries of new (empty) L2 tables are written lazily: the in-memory
 * L1 table is authoritative, and the dirty range reaches the disk at the
 * next flush of the L2 cache, behind a barrier after the tables and their
 * refcounts.  Before that a crash leaks the tables and the clusters they
 * map (they are allocated but unreachable), never more.  Everything that
 * writes or reads the on-disk L1 table flushes the L2 cache first (grow,
 * check, flush, close).
 *
 * In-flight allocations: an allocating write registers the guest clusters
 * it is about to map before it drops s->lock for its data write, and
 * removes the record once their L2 entries are set (or the write failed).
 * Whatever rewrites L2 entries here (zeroize, discard, preallocation), and
 * the write paths in qcow2.c, wait for the overlapping records first.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

Qcow2ClusterType qcow2_get_cluster_type(BDRVQcow2State *s, uint64_t l2_entry)
{
    if (l2_entry & QCOW_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if ((l2_entry & QCOW_OFLAG_ZERO) && s->qcow_version >= 3) {
        return (l2_entry & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                            : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    return (l2_entry & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_NORMAL
                                        : QCOW2_CLUSTER_UNALLOCATED;
}

/* L2 table offset for guest offset (0: none), or -errno */
static int64_t l2_offset_for(BlockDriverState *bs, uint64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = qcow2_l1_index(s, offset);
    uint64_t l2_offset;
    int64_t file_len;

    if (l1_index >= s->l1_size) {
        return 0;
    }
    l2_offset = s->l1_table[l1_index] & L1E_OFFSET_MASK;
    if (!l2_offset) {
        return 0;
    }
    if (qcow2_offset_into_cluster(s, l2_offset)) {
        return qcow2_signal_corruption(bs, "L2 table offset %#" PRIx64
                                       " unaligned (L1 index: %#" PRIx64 ")",
                                       l2_offset, l1_index);
    }
    file_len = bdrv_getlength(bs->file->bs);
    /* a new table may live in the cache only, not yet written */
    if (file_len >= 0 && l2_offset + s->cluster_size > (uint64_t)file_len &&
        !qcow2_cache_has(s->l2_table_cache, l2_offset)) {
        return qcow2_signal_corruption(bs, "L2 table offset %#" PRIx64
                                       " is beyond the end of the image "
                                       "file (L1 index: %#" PRIx64 ")",
                                       l2_offset, l1_index);
    }
    return l2_offset;
}

/* entry @l2_index of the L2 table at @l2_offset, for guest @guest_offset */
static int check_l2_entry(BlockDriverState *bs, uint64_t entry,
                          uint64_t guest_offset, uint64_t l2_offset,
                          int l2_index)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ClusterType type = qcow2_get_cluster_type(s, entry);

    if (type == QCOW2_CLUSTER_COMPRESSED) {
        return 0;
    }
    if (entry & (s->qcow_version >= 3 ? L2E_STD_RESERVED_MASK
                                      : L2E_STD_RESERVED_MASK | 1)) {
        return qcow2_signal_corruption(bs, "L2 entry %#" PRIx64 " for "
                                       "guest offset %#" PRIx64 " has "
                                       "reserved bits set", entry,
                                       guest_offset);
    }
    if (qcow2_offset_into_cluster(s, entry & L2E_OFFSET_MASK)) {
        return qcow2_signal_corruption(bs, "Cluster allocation offset %#"
                                       PRIx64 " unaligned (L2 offset: %#"
                                       PRIx64 ", L2 index: %#x)",
                                       entry & L2E_OFFSET_MASK, l2_offset,
                                       l2_index);
    }
    return 0;
}

int coroutine_fn qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset,
                                       uint64_t *bytes, uint64_t *host,
                                       Qcow2ClusterType *type,
                                       uint64_t *l2_entry)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    int l2_index = qcow2_l2_index(s, offset);
    uint64_t max_clusters = MIN((uint64_t)(s->l2_size - l2_index),
                                (*bytes + in_cluster + s->cluster_size - 1) >>
                                s->cluster_bits);
    uint64_t *table, first, n;
    int64_t l2_offset = l2_offset_for(bs, offset);
    int ret;

    assert(*bytes > 0);
    if (l2_offset < 0) {
        return l2_offset;
    }
    if (!l2_offset) {
        *type = QCOW2_CLUSTER_UNALLOCATED;
        *host = 0;
        *l2_entry = 0;
        n = max_clusters;
        goto out;
    }
    ret = qcow2_cache_get(bs, s->l2_table_cache, l2_offset, (void **)&table);
    if (ret < 0) {
        return ret;
    }
    first = GUINT64_FROM_BE(table[l2_index]);
    ret = check_l2_entry(bs, first, offset, l2_offset, l2_index);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&table);
        return ret;
    }
    *l2_entry = first;
    *type = qcow2_get_cluster_type(s, first);
    *host = 0;
    if (*type == QCOW2_CLUSTER_COMPRESSED) {
        n = 1;
    } else {
        uint64_t mask = QCOW_OFLAG_COPIED | QCOW_OFLAG_ZERO;

        for (n = 1; n < max_clusters; n++) {
            uint64_t e = GUINT64_FROM_BE(table[l2_index + n]);

            if (qcow2_get_cluster_type(s, e) != *type ||
                (e & mask) != (first & mask)) {
                break;
            }
            if ((*type == QCOW2_CLUSTER_NORMAL ||
                 *type == QCOW2_CLUSTER_ZERO_ALLOC) &&
                (e & L2E_OFFSET_MASK) !=
                (first & L2E_OFFSET_MASK) + n * s->cluster_size) {
                break;
            }
            if (check_l2_entry(bs, e, offset + n * s->cluster_size,
                               l2_offset, l2_index + n) < 0) {
                break;
            }
        }
        if (*type == QCOW2_CLUSTER_NORMAL ||
            *type == QCOW2_CLUSTER_ZERO_ALLOC) {
            *host = (first & L2E_OFFSET_MASK) + in_cluster;
        }
    }
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
out:
    *bytes = MIN(*bytes, (n << s->cluster_bits) - in_cluster);
    return 0;
}

void qcow2_alloc_in_flight_add(BDRVQcow2State *s, Qcow2InFlightAlloc *a,
                               uint64_t start, uint64_t end, uint64_t host)
{
    assert(start < end);
    a->start = start;
    a->end = end;
    a->host = host;
    qemu_co_queue_init(&a->waiters);
    a->next = s->allocs_in_flight;
    s->allocs_in_flight = a;
}

void qcow2_alloc_in_flight_remove(BDRVQcow2State *s, Qcow2InFlightAlloc *a)
{
    Qcow2InFlightAlloc **p = &s->allocs_in_flight;

    while (*p != a) {
        assert(*p);
        p = &(*p)->next;
    }
    *p = a->next;
    a->next = NULL;
    /* the waiters re-check the list (and re-take s->lock) after we yield */
    qemu_co_queue_restart_all(&a->waiters);
}

void coroutine_fn qcow2_wait_for_allocations(BlockDriverState *bs,
                                             uint64_t offset,
                                             uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start = qcow2_start_of_cluster(s, offset);
    uint64_t end = bytes > UINT64_MAX - offset ? UINT64_MAX : offset + bytes;
    Qcow2InFlightAlloc *a;

    qemu_co_mutex_assert_locked(&s->lock);
restart:
    for (a = s->allocs_in_flight; a; a = a->next) {
        if (a->start < end && start < a->end) {
            /* a is gone when we wake up: start over */
            qemu_co_queue_wait(&a->waiters, &s->lock);
            goto restart;
        }
    }
}

int coroutine_fn qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t new_size = MAX(min_size, (uint64_t)s->l1_size * 3 / 2);
    uint64_t old_offset = s->l1_table_offset;
    uint64_t old_bytes = (uint64_t)s->l1_size * 8;
    uint64_t new_bytes, i;
    g_autofree uint64_t *new_table = NULL;
    int64_t new_offset;
    uint8_t hdr[12];
    int ret;

    if (min_size <= s->l1_size) {
        return 0;
    }
    /*
     * The new table is written from memory: every L2 table it points at
     * must be on disk first (this also writes the lazy L1 entries into
     * the old table)
     */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        return ret;
    }
    new_size = MIN(new_size, QCOW_MAX_L1_SIZE / 8);
    if (new_size < min_size) {
        return -EFBIG;
    }
    new_bytes = QEMU_ALIGN_UP(new_size * 8, (uint64_t)s->cluster_size);
    new_size = new_bytes / 8;
    new_size = MIN(new_size, QCOW_MAX_L1_SIZE / 8);
    new_table = g_try_malloc0(new_bytes);
    if (!new_table) {
        return -ENOMEM;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_L1_GROW_ALLOC_TABLE);
    new_offset = qcow2_alloc_clusters(bs, new_bytes >> s->cluster_bits);
    if (new_offset < 0) {
        return new_offset;
    }
    if (new_offset == 0) {
        return qcow2_signal_corruption(bs, "Preventing invalid write on "
                                       "metadata (overlaps with "
                                       "qcow2_header)");
    }
    /* the new table's refcount before the header points at it */
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto fail;
    }
    for (i = 0; i < s->l1_size; i++) {
        new_table[i] = GUINT64_TO_BE(s->l1_table[i]);
    }
    BLKDBG_EVENT(bs->file, BLKDBG_L1_GROW_WRITE_TABLE);
    ret = bdrv_co_pwrite(bs->file, new_offset, new_bytes, new_table, 0);
    if (ret < 0) {
        goto fail;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        goto fail;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_L1_GROW_ACTIVATE_TABLE);
    q2_st32(hdr, new_size);
    q2_st64(hdr + 4, new_offset);
    ret = qcow2_update_header_field(bs, QCOW2_HDR_L1_SIZE, hdr, sizeof(hdr));
    if (ret < 0) {
        goto fail;
    }
    /*
     * The header may point at the new table from now on, even if this
     * flush fails: use it (and leak the old one rather than free a table
     * the header on disk may still name)
     */
    ret = bdrv_co_flush(bs->file->bs);
    for (i = 0; i < new_size; i++) {
        new_table[i] = GUINT64_FROM_BE(new_table[i]);
    }
    g_free(s->l1_table);
    s->l1_table = g_steal_pointer(&new_table);
    s->l1_size = new_size;
    s->l1_table_offset = new_offset;
    if (ret < 0) {
        return ret;
    }
    if (old_bytes) {
        return qcow2_free_clusters(bs, old_offset,
                                   QEMU_ALIGN_UP(old_bytes,
                                                 (uint64_t)s->cluster_size));
    }
    return 0;

fail:
    qcow2_free_clusters(bs, new_offset, new_bytes);
    return ret;
}

bool qcow2_l1_dirty(BDRVQcow2State *s)
{
    return s->l1_dirty_end > s->l1_dirty_start;
}

int coroutine_fn qcow2_write_dirty_l1(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start = s->l1_dirty_start, end = s->l1_dirty_end, i;
    g_autofree uint64_t *buf = NULL;
    int ret;

    if (!qcow2_l1_dirty(s)) {
        return 0;
    }
    assert(end <= s->l1_size);
    buf = g_new(uint64_t, end - start);
    for (i = start; i < end; i++) {
        buf[i - start] = GUINT64_TO_BE(s->l1_table[i]);
    }
    BLKDBG_EVENT(bs->file, BLKDBG_L1_UPDATE);
    ret = bdrv_co_pwrite(bs->file, s->l1_table_offset + start * 8,
                         (end - start) * 8, buf, 0);
    if (ret < 0) {
        return ret;
    }
    /* callers hold s->lock: no entry was dirtied during the write */
    s->l1_dirty_start = s->l1_dirty_end = 0;
    return 0;
}

static void l1_mark_dirty(BDRVQcow2State *s, uint64_t index)
{
    if (!qcow2_l1_dirty(s)) {
        s->l1_dirty_start = index;
        s->l1_dirty_end = index + 1;
    } else {
        s->l1_dirty_start = MIN(s->l1_dirty_start, index);
        s->l1_dirty_end = MAX(s->l1_dirty_end, index + 1);
    }
}

static int coroutine_fn write_l1_entry(BlockDriverState *bs, uint64_t index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t be = GUINT64_TO_BE(s->l1_table[index]);

    BLKDBG_EVENT(bs->file, BLKDBG_L1_UPDATE);
    return bdrv_co_pwrite(bs->file, s->l1_table_offset + index * 8,
                          sizeof(be), &be, 0);
}

int coroutine_fn qcow2_get_l2_for_write(BlockDriverState *bs,
                                        uint64_t offset, uint64_t **table,
                                        int *index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = qcow2_l1_index(s, offset);
    int64_t old_l2, new_l2;
    uint64_t *new_table;
    int ret;

    *index = qcow2_l2_index(s, offset);
    if (l1_index >= s->l1_size) {
        ret = qcow2_grow_l1_table(bs, l1_index + 1);
        if (ret < 0) {
            return ret;
        }
    }
    old_l2 = l2_offset_for(bs, offset);
    if (old_l2 < 0) {
        return old_l2;
    }
    if (old_l2 && (s->l1_table[l1_index] & QCOW_OFLAG_COPIED)) {
        return qcow2_cache_get(bs, s->l2_table_cache, old_l2,
                               (void **)table);
    }

    /* allocate a new L2 table (copy of the shared one, if any) */
    new_l2 = qcow2_alloc_clusters(bs, 1);
    if (new_l2 < 0) {
        return new_l2;
    }
    if (new_l2 == 0) {
        /* cluster 0 (the header) looked free: the refcounts are damaged */
        return qcow2_signal_corruption(bs, "Preventing invalid allocation of "
                                       "L2 table at offset 0");
    }
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_cache_get_empty(bs, s->l2_table_cache, new_l2,
                                (void **)&new_table);
    if (ret < 0) {
        goto fail;
    }
    if (old_l2) {
        uint64_t *old_table;

        BLKDBG_EVENT(bs->file, BLKDBG_L2_ALLOC_COW_READ);
        ret = qcow2_cache_get(bs, s->l2_table_cache, old_l2,
                              (void **)&old_table);
        if (ret < 0) {
            qcow2_cache_put(s->l2_table_cache, (void **)&new_table);
            goto fail;
        }
        memcpy(new_table, old_table, s->cluster_size);
        qcow2_cache_put(s->l2_table_cache, (void **)&old_table);
    } else {
        memset(new_table, 0, s->cluster_size);
    }
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, new_table);
    if (!old_l2) {
        /* where QEMU writes the new table (an error shows up later here) */
        BLKDBG_EVENT(bs->file, BLKDBG_L2_ALLOC_WRITE);
        /*
         * A new table: its L1 entry is written with the next flush of the
         * L2 cache, after the table and its refcount and behind a barrier
         * (qcow2_cache_flush).  Until then a crash only leaks the table
         * and the clusters it maps; and this write does not wait for an
         * fdatasync of all the data written so far.
         */
        s->l1_table[l1_index] = new_l2 | QCOW_OFLAG_COPIED;
        l1_mark_dirty(s, l1_index);
        *table = new_table;
        return 0;
    }
    /*
     * A copy of a shared table: the old one loses a reference once the L1
     * entry stops pointing at it, so that entry is written right away,
     * after the table (and its refcount) are on disk.
     */
    BLKDBG_EVENT(bs->file, BLKDBG_L2_ALLOC_WRITE);
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&new_table);
        goto fail;
    }
    s->l1_table[l1_index] = new_l2 | QCOW_OFLAG_COPIED;
    ret = write_l1_entry(bs, l1_index);
    if (ret < 0) {
        s->l1_table[l1_index] = old_l2;
        qcow2_cache_put(s->l2_table_cache, (void **)&new_table);
        goto fail;
    }
    /* the snapshot keeps its reference */
    ret = qcow2_free_clusters(bs, old_l2, s->cluster_size);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&new_table);
        return ret;
    }
    *table = new_table;
    return 0;

fail:
    qcow2_cache_discard(s->l2_table_cache, new_l2);
    qcow2_free_clusters(bs, new_l2, s->cluster_size);
    return ret;
}

/*
 * Apply fn-like rewriting of whole-cluster L2 entries in [offset, end):
 * mode 0 = zeroize keeping COPIED allocations, 1 = zeroize and unmap,
 * 2 = discard (zero flag if a backing file could show through),
 * 3 = full discard (unallocated).
 */
static int coroutine_fn rewrite_entries(BlockDriverState *bs,
                                        uint64_t offset, uint64_t end,
                                        int mode)
{
    BDRVQcow2State *s = bs->opaque;
    bool unmap_file = mode != 0 && (bs->open_flags & BDRV_O_UNMAP);
    g_autoptr(GArray) runs = g_array_new(false, false, sizeof(uint64_t));
    uint64_t run_start = 0, run_len = 0;
    int ret = 0;

    while (offset < end) {
        uint64_t *table;
        int index, i, n;

        n = MIN((uint64_t)(s->l2_size - qcow2_l2_index(s, offset)),
                (end - offset + s->cluster_size - 1) >> s->cluster_bits);
        if (mode >= 2) {
            /* nothing to discard where no L2 table exists */
            int64_t l2 = l2_offset_for(bs, offset);

            if (l2 < 0) {
                return l2;
            }
            if (!l2 && (mode == 3 || !bs->backing ||
                        s->qcow_version < 3)) {
                offset += (uint64_t)n << s->cluster_bits;
                continue;
            }
        }
        ret = qcow2_get_l2_for_write(bs, offset, &table, &index);
        if (ret < 0) {
            return ret;
        }
        for (i = 0; i < n; i++) {
            uint64_t old = GUINT64_FROM_BE(table[index + i]);
            Qcow2ClusterType type = qcow2_get_cluster_type(s, old);
            uint64_t new;
            bool free_old = type == QCOW2_CLUSTER_NORMAL ||
                            type == QCOW2_CLUSTER_ZERO_ALLOC ||
                            type == QCOW2_CLUSTER_COMPRESSED;

            switch (mode) {
            case 0:
                if ((type == QCOW2_CLUSTER_NORMAL ||
                     type == QCOW2_CLUSTER_ZERO_ALLOC) &&
                    (old & QCOW_OFLAG_COPIED)) {
                    new = (old & L2E_OFFSET_MASK) | QCOW_OFLAG_COPIED |
                          QCOW_OFLAG_ZERO;
                    free_old = false;
                } else {
                    new = QCOW_OFLAG_ZERO;
                }
                break;
            case 1:
                new = QCOW_OFLAG_ZERO;
                break;
            case 2:
                new = (bs->backing && s->qcow_version >= 3) ?
                      QCOW_OFLAG_ZERO : 0;
                break;
            default:
                new = 0;
                break;
            }
            if (new == old) {
                continue;
            }
            table[index + i] = GUINT64_TO_BE(new);
            qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
            if (free_old) {
                uint64_t rc = 0;

                if (type != QCOW2_CLUSTER_COMPRESSED && unmap_file) {
                    ret = qcow2_get_refcount(bs, (old & L2E_OFFSET_MASK) >>
                                             s->cluster_bits, &rc);
                }
                if (ret == 0) {
                    ret = qcow2_free_any_cluster(bs, old);
                }
                if (ret < 0) {
                    break;
                }
                if (rc == 1) {
                    uint64_t host = old & L2E_OFFSET_MASK;

                    if (run_len && run_start + run_len == host) {
                        run_len += s->cluster_size;
                    } else {
                        if (run_len) {
                            g_array_append_val(runs, run_start);
                            g_array_append_val(runs, run_len);
                        }
                        run_start = host;
                        run_len = s->cluster_size;
                    }
                }
            }
        }
        qcow2_cache_put(s->l2_table_cache, (void **)&table);
        if (run_len) {
            g_array_append_val(runs, run_start);
            g_array_append_val(runs, run_len);
            run_len = 0;
        }
        if (ret == 0 && runs->len) {
            guint r;

            /* the L2 entries on disk first, then give the space back */
            ret = qcow2_cache_flush(bs, s->l2_table_cache);
            for (r = 0; ret == 0 && r + 1 < runs->len; r += 2) {
                bdrv_co_pdiscard(bs->file, g_array_index(runs, uint64_t, r),
                                 g_array_index(runs, uint64_t, r + 1));
            }
            g_array_set_size(runs, 0);
        }
        if (ret < 0) {
            return ret;
        }
        offset += (uint64_t)n << s->cluster_bits;
    }
    return 0;
}

int coroutine_fn qcow2_cluster_zeroize(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool unmap)
{
    qcow2_wait_for_allocations(bs, offset, bytes);
    return rewrite_entries(bs, offset, offset + bytes, unmap ? 1 : 0);
}

int coroutine_fn qcow2_cluster_discard(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool full_discard)
{
    qcow2_wait_for_allocations(bs, offset, bytes);
    return rewrite_entries(bs, offset, offset + bytes,
                           full_discard ? 3 : 2);
}

int coroutine_fn qcow2_preallocate_metadata(BlockDriverState *bs,
                                            uint64_t start, uint64_t end)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t last_host = -1;
    int ret;

    start = qcow2_start_of_cluster(s, start);
    if (start < end) {
        qcow2_wait_for_allocations(bs, start, end - start);
    }
    while (start < end) {
        uint64_t *table;
        int index, i, n, k;

        ret = qcow2_get_l2_for_write(bs, start, &table, &index);
        if (ret < 0) {
            return ret;
        }
        n = MIN((uint64_t)(s->l2_size - index),
                (end - start + s->cluster_size - 1) >> s->cluster_bits);
        for (i = 0; i < n; i = k) {
            int64_t host;

            if (table[index + i]) {
                k = i + 1;
                continue;
            }
            for (k = i + 1; k < n && !table[index + k]; k++) {
                /* run of unallocated entries */
            }
            host = qcow2_alloc_clusters(bs, k - i);
            if (host < 0) {
                qcow2_cache_put(s->l2_table_cache, (void **)&table);
                return host;
            }
            ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                             s->refcount_block_cache);
            if (ret < 0) {
                qcow2_cache_put(s->l2_table_cache, (void **)&table);
                return ret;
            }
            for (; i < k; i++) {
                table[index + i] = GUINT64_TO_BE(host | QCOW_OFLAG_COPIED);
                last_host = MAX(last_host, host);
                host += s->cluster_size;
            }
            qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
        }
        qcow2_cache_put(s->l2_table_cache, (void **)&table);
        start += (uint64_t)n << s->cluster_bits;
    }
    if (last_host >= 0) {
        /* make the file cover every cluster (reads as zeroes anyway) */
        g_autofree void *zero = g_malloc0(s->cluster_size);

        ret = bdrv_co_pwrite(bs->file, last_host, s->cluster_size, zero, 0);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}
