/*
 * qcow2 metadata cache: a small write-back cache of cluster-sized tables
 * (L2 tables, refcount blocks), one instance per kind.
 *
 * Entries are reference counted while a caller uses the table pointer;
 * only unreferenced entries are evicted (least recently used first).  A
 * dirty entry is written back on eviction or flush.
 *
 * Ordering between the two caches: qcow2_cache_set_dependency(c, dep)
 * means "dep must reach the disk before c": flushing c first flushes dep
 * and then the file (a barrier), so e.g. a refcount increase is stable
 * before the L2 entry using the cluster.  The relation never forms a
 * cycle: setting one direction while the other holds flushes first.
 * Flushing the L2 cache also writes the L1 entries of new L2 tables,
 * which qcow2-cluster.c leaves dirty in memory until then.
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "block/qcow2.h"

typedef struct Qcow2CachedTable {
    int64_t offset;    /* 0 = empty slot */
    bool dirty;
    int ref;
    uint64_t lru;
} Qcow2CachedTable;

struct Qcow2Cache {
    Qcow2CachedTable *entries;
    /* offset -> slot + 1 of every non-empty slot (keys: &entry.offset) */
    GHashTable *index;
    uint8_t *tables;
    int size;
    int table_size;
    Qcow2Cache *depends;
    bool depends_on_flush;
    uint64_t lru_counter;
};

Qcow2Cache *qcow2_cache_create(BlockDriverState *bs, int num_tables,
                               int table_size)
{
    Qcow2Cache *c = g_new0(Qcow2Cache, 1);

    assert(num_tables > 0);
    c->size = num_tables;
    c->table_size = table_size;
    c->entries = g_new0(Qcow2CachedTable, num_tables);
    c->index = g_hash_table_new(g_int64_hash, g_int64_equal);
    c->tables = qemu_try_blockalign(bs->file->bs,
                                    (size_t)num_tables * table_size);
    if (!c->tables) {
        g_hash_table_destroy(c->index);
        g_free(c->entries);
        g_free(c);
        return NULL;
    }
    return c;
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    if (!c) {
        return;
    }
    qemu_vfree(c->tables);
    g_hash_table_destroy(c->index);
    g_free(c->entries);
    g_free(c);
}

/* slot holding the table at @offset, -1 if none */
static int cache_lookup(Qcow2Cache *c, int64_t offset)
{
    gpointer v = g_hash_table_lookup(c->index, &offset);

    return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

/* (re)label slot @i: @offset 0 empties it */
static void cache_set_offset(Qcow2Cache *c, int i, int64_t offset)
{
    if (c->entries[i].offset) {
        g_hash_table_remove(c->index, &c->entries[i].offset);
    }
    c->entries[i].offset = offset;
    if (offset) {
        g_hash_table_insert(c->index, &c->entries[i].offset,
                            GINT_TO_POINTER(i + 1));
    }
}

int qcow2_cache_num_tables(Qcow2Cache *c)
{
    return c->size;
}

static inline void *cache_table(Qcow2Cache *c, int i)
{
    return c->tables + (size_t)i * c->table_size;
}

static int cache_index(Qcow2Cache *c, void *table)
{
    ptrdiff_t d = (uint8_t *)table - c->tables;
    int i = d / c->table_size;

    assert(d >= 0 && i < c->size && d % c->table_size == 0);
    return i;
}

uint64_t qcow2_cache_table_offset(Qcow2Cache *c, void *table)
{
    return c->entries[cache_index(c, table)].offset;
}

static int coroutine_fn cache_flush_dependency(BlockDriverState *bs,
                                               Qcow2Cache *c)
{
    int ret = qcow2_cache_flush(bs, c->depends);

    if (ret < 0) {
        return ret;
    }
    c->depends = NULL;
    c->depends_on_flush = false;
    return 0;
}

static int coroutine_fn cache_entry_flush(BlockDriverState *bs,
                                          Qcow2Cache *c, int i)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!c->entries[i].dirty || !c->entries[i].offset) {
        return 0;
    }
    if (c->depends) {
        ret = cache_flush_dependency(bs, c);
    } else if (c->depends_on_flush) {
        ret = bdrv_co_flush(bs->file->bs);
        if (ret >= 0) {
            c->depends_on_flush = false;
        }
    } else {
        ret = 0;
    }
    if (ret < 0) {
        return ret;
    }
    if (c == s->refcount_block_cache) {
        BLKDBG_EVENT(bs->file, BLKDBG_REFBLOCK_UPDATE_PART);
    } else if (c == s->l2_table_cache) {
        BLKDBG_EVENT(bs->file, BLKDBG_L2_UPDATE);
    }
    ret = bdrv_co_pwrite(bs->file, c->entries[i].offset, c->table_size,
                         cache_table(c, i), 0);
    if (ret < 0) {
        return ret;
    }
    c->entries[i].dirty = false;
    return 0;
}

int coroutine_fn qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c)
{
    BDRVQcow2State *s = bs->opaque;
    bool wrote = false;
    int result = 0;
    int i;

    for (i = 0; i < c->size; i++) {
        if (c->entries[i].dirty) {
            int ret = cache_entry_flush(bs, c, i);

            if (ret < 0 && result != -ENOSPC) {
                result = ret;
            }
            wrote = true;
        }
    }
    if (result == 0 && wrote) {
        /* a barrier for whatever depends on this cache */
        result = bdrv_co_flush(bs->file->bs);
    }
    if (result == 0 && c == s->l2_table_cache && qcow2_l1_dirty(s)) {
        /*
         * L1 entries of new L2 tables (see qcow2-cluster.c): the tables
         * are on disk now, or were written back earlier (eviction, no
         * barrier then: this one is a no-op if nothing was written since)
         */
        if (!wrote) {
            result = bdrv_co_flush(bs->file->bs);
        }
        if (result == 0) {
            result = qcow2_write_dirty_l1(bs);
        }
    }
    return result;
}

int coroutine_fn qcow2_cache_set_dependency(BlockDriverState *bs,
                                            Qcow2Cache *c,
                                            Qcow2Cache *dependency)
{
    int ret;

    if (dependency->depends) {
        ret = cache_flush_dependency(bs, dependency);
        if (ret < 0) {
            return ret;
        }
    }
    if (c->depends && c->depends != dependency) {
        ret = cache_flush_dependency(bs, c);
        if (ret < 0) {
            return ret;
        }
    }
    c->depends = dependency;
    return 0;
}

void qcow2_cache_depends_on_flush(Qcow2Cache *c)
{
    c->depends_on_flush = true;
}

static int coroutine_fn cache_do_get(BlockDriverState *bs, Qcow2Cache *c,
                                     uint64_t offset, void **table,
                                     bool read_from_disk)
{
    BDRVQcow2State *s = bs->opaque;
    int i, victim = -1;
    uint64_t min_lru = UINT64_MAX;
    int ret;

    assert(offset != 0 && offset % c->table_size == 0);
    i = cache_lookup(c, offset);
    if (i >= 0) {
        goto found;
    }
    /* pick a victim: empty slot first, else LRU among unreferenced */
    for (i = 0; i < c->size; i++) {
        if (c->entries[i].ref) {
            continue;
        }
        if (!c->entries[i].offset) {
            victim = i;
            break;
        }
        if (c->entries[i].lru < min_lru) {
            min_lru = c->entries[i].lru;
            victim = i;
        }
    }
    if (victim < 0) {
        /* every table is in use: the cache is too small */
        return -ENOSPC;
    }
    i = victim;
    /* pin while writing back so nobody else grabs the slot */
    c->entries[i].ref++;
    ret = cache_entry_flush(bs, c, i);
    c->entries[i].ref--;
    if (ret < 0) {
        return ret;
    }
    cache_set_offset(c, i, 0);
    if (read_from_disk) {
        /* refcount blocks: at each update, see qcow2_update_refcount */
        if (c == s->l2_table_cache) {
            BLKDBG_EVENT(bs->file, BLKDBG_L2_LOAD);
        }
        c->entries[i].ref++;
        ret = bdrv_co_pread(bs->file, offset, c->table_size,
                            cache_table(c, i), 0);
        c->entries[i].ref--;
        if (ret < 0) {
            return ret;
        }
        /* someone may have loaded the same table meanwhile */
        if (cache_lookup(c, offset) >= 0) {
            i = cache_lookup(c, offset);
            goto found;
        }
    }
    cache_set_offset(c, i, offset);
    c->entries[i].dirty = false;

found:
    c->entries[i].ref++;
    c->entries[i].lru = ++c->lru_counter;
    *table = cache_table(c, i);
    return 0;
}

int coroutine_fn qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c,
                                 uint64_t offset, void **table)
{
    return cache_do_get(bs, c, offset, table, true);
}

int coroutine_fn qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c,
                                       uint64_t offset, void **table)
{
    return cache_do_get(bs, c, offset, table, false);
}

void qcow2_cache_put(Qcow2Cache *c, void **table)
{
    int i = cache_index(c, *table);

    assert(c->entries[i].ref > 0);
    c->entries[i].ref--;
    *table = NULL;
}

void qcow2_cache_entry_mark_dirty(Qcow2Cache *c, void *table)
{
    int i = cache_index(c, table);

    assert(c->entries[i].offset != 0);
    c->entries[i].dirty = true;
}

bool qcow2_cache_has(Qcow2Cache *c, uint64_t offset)
{
    return offset && cache_lookup(c, offset) >= 0;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    int i = offset ? cache_lookup(c, offset) : -1;

    if (i >= 0) {
        assert(c->entries[i].ref == 0);
        cache_set_offset(c, i, 0);
        c->entries[i].dirty = false;
        c->entries[i].lru = 0;
    }
}
