/*
 * block-copy: the copy engine behind the backup job (see the design notes
 * in include/block/block-copy.h and docs/backup.md).
 *
 * Bookkeeping, all on the main thread:
 *
 *   copy bitmap   one bit per cluster, set = not copied yet.
 *   tasks         in-flight work on a cluster range: a copy (background
 *                 or copy-before-write), a capture (CBW buffer read), or
 *                 a snapshot reader.  Copies and captures own their
 *                 clusters: their bits were cleared when they were
 *                 claimed.  Readers own nothing; they only hold off
 *                 copy-before-write of their range while they read the
 *                 source.
 *   captured      CBW buffers: old data in memory, written to the target
 *                 by a background coroutine.  Their bits are clear.
 *   buffer pool   read/write bounce buffers of buf_size bytes (the largest
 *                 read/write chunk), kept for reuse when a copy ends: a
 *                 fresh buffer per copy costs page faults on first touch
 *                 and an munmap on free, about a third of the daemon's time
 *                 in a raw->qcow2 backup.  The pool holds at most
 *                 pool_max idle buffers; the background walk counts whole
 *                 pooled buffers against max_mem, so the in-flight and the
 *                 idle buffers together never exceed the cap (plus the
 *                 synchronous CBW copies of guest writes in flight).  The
 *                 CBW buffer (captured) is a separate budget, not pooled.
 *
 * Methods, per run of clusters: zero runs (block status) become
 * write_zeroes; data runs are cloned (FICLONERANGE through copy_range with
 * BDRV_REQ_CLONE) while use_clone is on, else copied with copy_range when
 * enabled, else read and written.  Offload failures with -ENOTSUP switch
 * that method off for good and the same range is copied with the next
 * method, so the task still ends with its clusters copied.  Until a clone
 * has succeeded the background walk keeps one clone in flight (a probe of
 * one read/write chunk, with its bounce buffer counted): on a filesystem
 * without reflink the first -ENOTSUP is seen before any chunk of clone
 * size (16 MiB) is claimed, and the failed probe is an ordinary
 * read/write task.  A clone shares the source's
 * blocks as they are when the ioctl runs; the filesystem copies on the
 * next write to either file, so later guest writes never reach the
 * target, exactly as with a copy.  Copy-before-write clones too (same
 * method order), which makes a guest write wait only for the clone of
 * its clusters; while cloning is on, the CBW buffer is not used.
 *
 * The invariant that makes "exactly once" and the point-in-time property
 * hold: a cluster's bit is cleared only by a claim, and a claim happens
 * only after the claimer waited for every overlapping task (CBW) or only
 * on bits that are still set (background), with no yield between looking
 * at the bitmap and clearing it.  A guest write reaches the driver only
 * after its copy-before-write returned, i.e. after every cluster of its
 * range is copied, captured, or failed (then the write fails too, unless
 * the caller decides otherwise).
 */
#include "qemu/osdep.h"
#include "block/block-copy.h"
#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qemu/trace.h"

typedef enum BlockCopyTaskKind {
    TASK_COPY,          /* owns its clusters; copies them */
    TASK_CAPTURE,       /* owns its clusters; reads them into memory */
    TASK_READER,        /* snapshot reader of the source */
} BlockCopyTaskKind;

typedef enum BlockCopyMethod {
    METHOD_ZERO,
    METHOD_CLONE,               /* share extents; else the next method */
    METHOD_COPY_RANGE,
    METHOD_READ_WRITE,
} BlockCopyMethod;

typedef struct BlockCopyTask {
    BlockCopyState *s;
    BlockCopyTaskKind kind;
    BlockCopyMethod method;
    bool background;
    bool clone_probe;           /* background clone before any succeeded */
    int64_t offset;
    int64_t bytes;
    int64_t mem;                /* bounce buffer bytes held (background) */
    CoQueue wait_queue;         /* waiters for this task's end */
    GList link;                 /* in s->tasks (data = this) */
} BlockCopyTask;

typedef struct BlockCopyCaptured {
    BlockCopyState *s;
    int64_t offset;
    int64_t bytes;
    void *buf;
    bool writing;               /* a coroutine is writing it out */
    bool failed;                /* its last write failed */
    GList link;                 /* in s->captured (data = this) */
} BlockCopyCaptured;

struct BlockCopyState {
    BdrvChild *source;
    BdrvChild *target;
    int64_t len;
    int64_t cluster_size;
    HBitmap *copy_bitmap;

    bool use_copy_range;
    bool use_clone;             /* until the first -ENOTSUP */
    bool clone_ok;              /* a clone succeeded */
    int clone_probes;           /* background clone probes in flight */
    bool compress;
    bool skip_unallocated;
    bool fleecing;              /* target chain contains source */
    int max_workers;
    int64_t max_chunk;          /* user cap, aligned to clusters */
    int64_t max_mem;
    int64_t cbw_limit;          /* 0: no CBW buffer */
    BdrvRequestFlags write_flags;

    /* bounce buffer pool (read/write copies) */
    int64_t buf_size;           /* size of a pooled buffer */
    size_t buf_align;           /* alignment of the pooled buffers */
    GPtrArray *pool;            /* idle buffers, at most pool_max */
    guint pool_max;

    GQueue tasks;               /* of BlockCopyTask */
    GQueue captured;            /* of BlockCopyCaptured */
    int64_t cbw_used;           /* bytes in captured buffers + captures */
    int captured_failed;
    int captured_writers;

    /* background walk */
    int bg_running;
    int64_t mem_used;
    CoQueue bg_queue;           /* worker slots, memory, bg task ends */
    int bg_ret;
    bool bg_error_is_read;

    /* anything ended: drain and "wait for everything" waiters */
    CoQueue drain_queue;

    uint64_t done;
    uint64_t skipped;
    BlockCopyProgressFunc *progress_cb;
    void *progress_opaque;

    BlockCopyStats stats;
};

static GList *block_copy_states;

/* ---- helpers ---- */

static int64_t cluster_end(BlockCopyState *s, int64_t offset)
{
    return MIN(QEMU_ALIGN_UP(offset + 1, s->cluster_size), s->len);
}

static void progress_changed(BlockCopyState *s)
{
    if (s->progress_cb) {
        s->progress_cb(s->progress_opaque);
    }
}

static BlockCopyTask *find_overlapping_task(BlockCopyState *s, int64_t offset,
                                            int64_t bytes, bool readers)
{
    GList *l;

    for (l = s->tasks.head; l; l = l->next) {
        BlockCopyTask *t = l->data;

        if (!readers && t->kind == TASK_READER) {
            continue;
        }
        if (t->offset < offset + bytes && offset < t->offset + t->bytes) {
            return t;
        }
    }
    return NULL;
}

static BlockCopyCaptured *find_captured(BlockCopyState *s, int64_t offset)
{
    GList *l;

    for (l = s->captured.head; l; l = l->next) {
        BlockCopyCaptured *c = l->data;

        if (c->offset <= offset && offset < c->offset + c->bytes) {
            return c;
        }
    }
    return NULL;
}

static BlockCopyTask *task_new(BlockCopyState *s, BlockCopyTaskKind kind,
                               int64_t offset, int64_t bytes)
{
    BlockCopyTask *t = g_new0(BlockCopyTask, 1);

    t->s = s;
    t->kind = kind;
    t->offset = offset;
    t->bytes = bytes;
    t->method = METHOD_READ_WRITE;
    qemu_co_queue_init(&t->wait_queue);
    t->link.data = t;
    g_queue_push_tail_link(&s->tasks, &t->link);
    if (kind != TASK_READER) {
        hbitmap_reset(s->copy_bitmap, offset, bytes);
    }
    trace(block_copy_task_new, "s %p task %p kind %d offset %" PRId64
          " bytes %" PRId64, s, t, kind, offset, bytes);
    return t;
}

/* End a task: on failure its clusters become dirty again. */
static void task_end(BlockCopyTask *t, int ret)
{
    BlockCopyState *s = t->s;

    if (ret < 0 && t->kind != TASK_READER) {
        hbitmap_set(s->copy_bitmap, t->offset, t->bytes);
    }
    if (ret == 0 && t->kind == TASK_COPY) {
        s->done += t->bytes;
    }
    g_queue_unlink(&s->tasks, &t->link);
    trace(block_copy_task_end, "s %p task %p ret %d", s, t, ret);
    qemu_co_queue_restart_all(&t->wait_queue);
    qemu_co_queue_restart_all(&s->drain_queue);
    g_free(t);
    if (ret == 0) {
        progress_changed(s);
    }
}

/*
 * Claim the dirty clusters in [start, end) as copy tasks of at most
 * chunk bytes; no yield.  Returns the tasks in order.
 */
static GSList *claim_dirty(BlockCopyState *s, int64_t start, int64_t end,
                           int64_t chunk, BlockCopyTaskKind kind)
{
    GSList *list = NULL;
    int64_t off = start, dstart, dcount;

    while (off < end &&
           hbitmap_next_dirty_area(s->copy_bitmap, off, end, chunk,
                                   &dstart, &dcount)) {
        list = g_slist_prepend(list, task_new(s, kind, dstart, dcount));
        off = dstart + dcount;
    }
    return g_slist_reverse(list);
}

static int64_t rw_chunk(BlockCopyState *s)
{
    int64_t chunk;

    if (s->compress) {
        return s->cluster_size;
    }
    chunk = MAX(s->cluster_size, BLOCK_COPY_MAX_BUFFER);
    if (s->max_chunk) {
        chunk = MIN(chunk, s->max_chunk);
    }
    return chunk;
}

static int64_t current_chunk(BlockCopyState *s)
{
    int64_t chunk;

    if (s->use_clone) {
        chunk = MAX(s->cluster_size, BLOCK_COPY_MAX_CLONE);
    } else if (s->use_copy_range) {
        chunk = MAX(s->cluster_size, BLOCK_COPY_MAX_COPY_RANGE);
    } else {
        return rw_chunk(s);
    }
    if (s->max_chunk) {
        chunk = MIN(chunk, s->max_chunk);
    }
    return chunk;
}

/* The first method to try for a data run. */
static BlockCopyMethod data_method(BlockCopyState *s)
{
    if (s->use_clone) {
        return METHOD_CLONE;
    }
    return s->use_copy_range ? METHOD_COPY_RANGE : METHOD_READ_WRITE;
}

/* ---- bounce buffers ---- */

/* Bytes of bounce buffer a read/write copy of bytes holds. */
static int64_t bounce_size(BlockCopyState *s, int64_t bytes)
{
    return bytes <= s->buf_size ? s->buf_size : bytes;
}

static size_t bounce_align(BlockCopyState *s)
{
    return MAX(bdrv_opt_mem_align(s->source->bs),
               bdrv_opt_mem_align(s->target->bs));
}

static void pool_flush(BlockCopyState *s)
{
    while (s->pool->len > 0) {
        qemu_vfree(g_ptr_array_steal_index_fast(s->pool, s->pool->len - 1));
    }
}

/*
 * A bounce buffer of at least bytes, aligned for both children (O_DIRECT):
 * a pooled one when bytes fits in buf_size, else a one-off allocation.
 * NULL when out of memory.
 */
static void *bounce_get(BlockCopyState *s, int64_t bytes)
{
    size_t align = bounce_align(s);
    void *buf;

    if (align > s->buf_align) {
        /* a child was reopened with a stricter alignment */
        pool_flush(s);
        s->buf_align = align;
    }
    if (bytes <= s->buf_size && s->pool->len > 0) {
        s->stats.buf_reuses++;
        return g_ptr_array_steal_index_fast(s->pool, s->pool->len - 1);
    }
    buf = qemu_try_memalign(s->buf_align, bounce_size(s, bytes));
    if (buf) {
        s->stats.buf_allocs++;
    }
    return buf;
}

/* Give back a buffer from bounce_get(s, bytes). */
static void bounce_put(BlockCopyState *s, void *buf, int64_t bytes)
{
    if (buf && bytes <= s->buf_size && s->pool->len < s->pool_max) {
        g_ptr_array_add(s->pool, buf);
        s->stats.buf_pooled_max = MAX(s->stats.buf_pooled_max, s->pool->len);
        return;
    }
    qemu_vfree(buf);
}

/* ---- the copy itself ---- */

/*
 * Whether the target reads zeroes in [offset, offset + bytes) by itself.
 * Never when fleecing: there the target "reads zeroes" through its
 * backing chain, i.e. from the source, which the guest is about to
 * overwrite -- the zeroes must be written into the target itself.
 */
static bool coroutine_fn target_reads_zeroes(BlockCopyState *s,
                                             int64_t offset, int64_t bytes)
{
    int64_t pnum;
    int ret;

    if (s->fleecing) {
        return false;
    }
    ret = bdrv_co_block_status_above(s->target->bs, NULL, true, offset,
                                     bytes, &pnum, NULL, NULL, NULL);
    return ret >= 0 && (ret & BDRV_BLOCK_ZERO) && pnum >= bytes;
}

/*
 * Write zeroes to the target, unless it reads as zeroes there already (a
 * fresh raw target is one big hole: writing zeroes into a file opened
 * without discard=unmap would allocate it).
 */
static int coroutine_fn write_zeroes(BlockCopyState *s, int64_t offset,
                                     int64_t bytes)
{
    s->stats.zero_bytes += bytes;
    if (target_reads_zeroes(s, offset, bytes)) {
        return 0;
    }
    return bdrv_co_pwrite_zeroes(s->target, offset, bytes,
                                 s->write_flags | BDRV_REQ_MAY_UNMAP);
}

/* End of the run of clusters from pos that are all zero or all data. */
static int64_t same_kind_run(BlockCopyState *s, const uint8_t *buf,
                             int64_t pos, int64_t bytes, bool *zero)
{
    int64_t end = MIN(pos + s->cluster_size, bytes);

    *zero = buffer_is_zero(buf + pos, end - pos);
    while (end < bytes) {
        int64_t n = MIN(s->cluster_size, bytes - end);

        if (buffer_is_zero(buf + end, n) != *zero) {
            break;
        }
        end += n;
    }
    return end;
}

/*
 * Write a buffer of old data to the target, cluster by cluster: runs of
 * zero clusters become write_zeroes (nothing at all where the target
 * reads zeroes already), the rest is written as data.  Like
 * cp --sparse=always, this keeps written zeroes of the source out of the
 * target's allocation and saves their page-cache copy.
 */
static int coroutine_fn write_buffer(BlockCopyState *s, int64_t offset,
                                     int64_t bytes, void *buf)
{
    int64_t pos = 0;

    if (s->compress) {
        s->stats.rw_bytes += bytes;
        return bdrv_co_pwrite(s->target, offset, bytes, buf, s->write_flags);
    }
    while (pos < bytes) {
        bool zero;
        int64_t end = same_kind_run(s, buf, pos, bytes, &zero);
        int ret;

        if (zero) {
            ret = write_zeroes(s, offset + pos, end - pos);
        } else {
            s->stats.rw_bytes += end - pos;
            ret = bdrv_co_pwrite(s->target, offset + pos, end - pos,
                                 (uint8_t *)buf + pos, s->write_flags);
        }
        if (ret < 0) {
            return ret;
        }
        pos = end;
    }
    return 0;
}

/*
 * Read and write [offset, offset + bytes) in pieces of at most one
 * read/write chunk, each through a pooled bounce buffer (a range claimed
 * for offload may be bigger than that).
 */
static int coroutine_fn copy_rw(BlockCopyState *s, int64_t offset,
                                int64_t bytes, bool *error_is_read)
{
    int64_t chunk = rw_chunk(s), pos;
    int ret = 0;

    for (pos = 0; pos < bytes && ret == 0; pos += chunk) {
        int64_t n = MIN(chunk, bytes - pos);
        void *buf = bounce_get(s, n);

        if (!buf) {
            *error_is_read = true;
            return -ENOMEM;
        }
        ret = bdrv_co_pread(s->source, offset + pos, n, buf,
                            BDRV_REQ_NO_SERIALISING);
        if (ret < 0) {
            trace(block_copy_read_fail, "s %p offset %" PRId64 " ret %d", s,
                  offset + pos, ret);
            *error_is_read = true;
        } else {
            ret = write_buffer(s, offset + pos, n, buf);
            if (ret < 0) {
                trace(block_copy_write_fail, "s %p offset %" PRId64
                      " ret %d", s, offset + pos, ret);
            }
        }
        bounce_put(s, buf, n);
    }
    return ret;
}

/*
 * Clone [offset, offset + bytes): 0, -ENOTSUP when the nodes cannot share
 * extents there (cloning is then off for good), or another -errno (an
 * I/O error; counted as the target's, which the clone modifies).
 */
static int coroutine_fn try_clone(BlockCopyState *s, int64_t offset,
                                  int64_t bytes)
{
    int ret;

    ret = bdrv_co_copy_range(s->source, offset, s->target, offset, bytes,
                             BDRV_REQ_NO_SERIALISING,
                             s->write_flags | BDRV_REQ_CLONE);
    if (ret == 0) {
        s->clone_ok = true;
        s->stats.clone_bytes += bytes;
        return 0;
    }
    trace(block_copy_clone_fail, "s %p offset %" PRId64 " bytes %" PRId64
          " ret %d", s, offset, bytes, ret);
    if (ret == -ENOTSUP) {
        s->use_clone = false;
        s->stats.clone_fallbacks++;
    }
    return ret;
}

/* Copy [offset, offset + bytes) with method (or the next ones). */
static int coroutine_fn do_copy(BlockCopyState *s, int64_t offset,
                                int64_t bytes, BlockCopyMethod method,
                                bool *error_is_read)
{
    int ret;

    *error_is_read = false;
    if (method == METHOD_ZERO) {
        return write_zeroes(s, offset, bytes);
    }
    if (method == METHOD_CLONE && s->use_clone) {
        ret = try_clone(s, offset, bytes);
        if (ret != -ENOTSUP) {
            return ret;
        }
        /* the same range, with the next method */
    }
    if ((method == METHOD_CLONE || method == METHOD_COPY_RANGE) &&
        s->use_copy_range) {
        ret = bdrv_co_copy_range(s->source, offset, s->target, offset, bytes,
                                 BDRV_REQ_NO_SERIALISING, s->write_flags);
        if (ret == 0) {
            s->stats.copy_range_bytes += bytes;
            return 0;
        }
        /* as QEMU: any failure switches to read/write for good */
        trace(block_copy_copy_range_fail, "s %p offset %" PRId64 " ret %d",
              s, offset, ret);
        s->use_copy_range = false;
        s->stats.copy_range_fallbacks++;
    }
    return copy_rw(s, offset, bytes, error_is_read);
}

/* ---- synchronous copy (copy-before-write and block_copy()) ---- */

/* Wait until no task (readers too) overlaps [start, end). */
static void coroutine_fn wait_overlapping(BlockCopyState *s, int64_t start,
                                          int64_t end)
{
    BlockCopyTask *t;

    while ((t = find_overlapping_task(s, start, end - start, true))) {
        trace(block_copy_wait, "s %p range %" PRId64 "+%" PRId64
              " waits for task %p", s, start, end - start, t);
        qemu_co_queue_wait(&t->wait_queue, NULL);
    }
}

static BlockCopyMethod status_run(BlockCopyState *s, int64_t offset,
                                  int64_t bytes, int64_t *pnum);

/*
 * Copy a claimed task run by run of the source's block status: a cluster
 * that reads as zeroes is not read (for a hole that would allocate and
 * clear page cache only to find zeroes), only zeroed on the target where
 * needed.
 */
static int coroutine_fn copy_task_runs(BlockCopyState *s, BlockCopyTask *t,
                                       bool *is_read)
{
    int64_t pos = t->offset, end = t->offset + t->bytes;

    while (pos < end) {
        int64_t pnum;
        BlockCopyMethod method = status_run(s, pos, end - pos, &pnum);
        int ret = do_copy(s, pos, pnum, method, is_read);

        if (ret < 0) {
            return ret;
        }
        pos += pnum;
    }
    return 0;
}

/*
 * Whether a claimed range needs nothing at all: the source reads zeroes
 * there and so does the target (a capture of it would hold zeroes in
 * memory and write nothing later).
 */
static bool coroutine_fn zero_on_both_sides(BlockCopyState *s, int64_t offset,
                                            int64_t bytes)
{
    int64_t pnum;

    return status_run(s, offset, bytes, &pnum) == METHOD_ZERO &&
           pnum >= bytes && target_reads_zeroes(s, offset, bytes);
}

static int coroutine_fn copy_claimed_sync(BlockCopyState *s, GSList *tasks,
                                          bool *error_is_read)
{
    GSList *l;
    int ret = 0;
    bool is_read = false;

    for (l = tasks; l; l = l->next) {
        BlockCopyTask *t = l->data;
        int r = -ECANCELED;

        if (ret == 0) {
            s->stats.cbw_sync_bytes += t->bytes;
            r = copy_task_runs(s, t, &is_read);
            if (r < 0) {
                ret = r;
                if (error_is_read) {
                    *error_is_read = is_read;
                }
            }
        }
        task_end(t, r);
    }
    g_slist_free(tasks);
    return ret;
}

static void clip_range(BlockCopyState *s, int64_t *offset, int64_t *bytes,
                       int64_t *start, int64_t *end)
{
    *start = QEMU_ALIGN_DOWN(MIN(*offset, s->len), s->cluster_size);
    *end = MIN(QEMU_ALIGN_UP(*offset + *bytes, s->cluster_size), s->len);
}

int coroutine_fn block_copy(BlockCopyState *s, int64_t offset, int64_t bytes,
                            bool *error_is_read)
{
    int64_t start, end;

    clip_range(s, &offset, &bytes, &start, &end);
    if (start >= end) {
        return 0;
    }
    wait_overlapping(s, start, end);
    return copy_claimed_sync(s, claim_dirty(s, start, end, current_chunk(s),
                                            TASK_COPY),
                             error_is_read);
}

/* ---- the CBW buffer ---- */

static void coroutine_fn captured_write_entry(void *opaque)
{
    BlockCopyCaptured *c = opaque;
    BlockCopyState *s = c->s;
    BlockDriverState *target_bs = s->target->bs;
    int ret;

    ret = write_buffer(s, c->offset, c->bytes, c->buf);
    trace(block_copy_captured_written, "s %p offset %" PRId64 " ret %d", s,
          c->offset, ret);
    c->writing = false;
    s->captured_writers--;
    if (ret < 0) {
        if (!c->failed) {
            c->failed = true;
            s->captured_failed++;
        }
    } else {
        if (c->failed) {
            s->captured_failed--;
        }
        g_queue_unlink(&s->captured, &c->link);
        s->cbw_used -= c->bytes;
        qemu_vfree(c->buf);
        g_free(c);
    }
    qemu_co_queue_restart_all(&s->drain_queue);
    bdrv_dec_in_flight(target_bs);
}

static void captured_start_write(BlockCopyState *s, BlockCopyCaptured *c)
{
    c->writing = true;
    s->captured_writers++;
    bdrv_inc_in_flight(s->target->bs);
    aio_co_schedule(qemu_get_aio_context(),
                    qemu_coroutine_create(captured_write_entry, c));
}

int coroutine_fn block_copy_cbw(BlockCopyState *s, int64_t offset,
                                int64_t bytes, bool *error_is_read)
{
    int64_t start, end, off, dstart, dcount, dirty = 0;
    GSList *tasks, *l;
    int ret = 0;

    if (!block_copy_cbw_buffer_enabled(s) || s->use_clone) {
        /* a clone is cheaper than a capture and its later write */
        return block_copy(s, offset, bytes, error_is_read);
    }
    clip_range(s, &offset, &bytes, &start, &end);
    if (start >= end) {
        return 0;
    }
    wait_overlapping(s, start, end);
    for (off = start;
         off < end && hbitmap_next_dirty_area(s->copy_bitmap, off, end,
                                              end - off, &dstart, &dcount);
         off = dstart + dcount) {
        dirty += dcount;
    }
    if (!dirty) {
        return 0;
    }
    if (s->cbw_used + dirty > s->cbw_limit) {
        /* buffer full: copy synchronously (we waited already) */
        s->stats.cbw_fallbacks++;
        trace(block_copy_cbw_fallback, "s %p used %" PRId64 " need %" PRId64,
              s, s->cbw_used, dirty);
        return copy_claimed_sync(s, claim_dirty(s, start, end,
                                                current_chunk(s), TASK_COPY),
                                 error_is_read);
    }

    tasks = claim_dirty(s, start, end, end - start, TASK_CAPTURE);
    s->cbw_used += dirty;
    for (l = tasks; l; l = l->next) {
        BlockCopyTask *t = l->data;
        BlockCopyCaptured *c;
        void *buf = NULL;
        int r = -ECANCELED;

        if (ret == 0 && zero_on_both_sides(s, t->offset, t->bytes)) {
            /* the old data is zeroes and the target has them already */
            s->cbw_used -= t->bytes;
            s->stats.zero_bytes += t->bytes;
            s->stats.cbw_zero_bytes += t->bytes;
            t->kind = TASK_COPY;    /* counts as copied when it ends */
            task_end(t, 0);
            continue;
        }
        if (ret == 0) {
            buf = qemu_try_blockalign(s->source->bs, t->bytes);
            r = buf ? bdrv_co_pread(s->source, t->offset, t->bytes, buf,
                                    BDRV_REQ_NO_SERIALISING) : -ENOMEM;
            if (r < 0) {
                ret = r;
                if (error_is_read) {
                    *error_is_read = true;
                }
            }
        }
        if (r < 0) {
            qemu_vfree(buf);
            s->cbw_used -= t->bytes;
            task_end(t, r);
            continue;
        }
        /* the task becomes a captured buffer before anyone can look */
        c = g_new0(BlockCopyCaptured, 1);
        c->s = s;
        c->offset = t->offset;
        c->bytes = t->bytes;
        c->buf = buf;
        c->link.data = c;
        g_queue_push_tail_link(&s->captured, &c->link);
        s->done += t->bytes;
        s->stats.cbw_captured_bytes += t->bytes;
        t->kind = TASK_READER;  /* ends without touching the bitmap */
        task_end(t, 0);
        captured_start_write(s, c);
    }
    g_slist_free(tasks);
    return ret;
}

int coroutine_fn block_copy_flush_captured(BlockCopyState *s)
{
    GList *l;
    bool again = true;

    while (again) {
        again = false;
        /* wait for writes in progress: they may fail and need a retry */
        while (s->captured_writers > 0) {
            qemu_co_queue_wait(&s->drain_queue, NULL);
        }
        for (l = s->captured.head; l; l = l->next) {
            BlockCopyCaptured *c = l->data;

            if (c->failed && !c->writing) {
                captured_start_write(s, c);
                again = true;
            }
        }
        if (again) {
            while (s->captured_writers > 0) {
                qemu_co_queue_wait(&s->drain_queue, NULL);
            }
            if (s->captured_failed) {
                return -EIO;
            }
            again = false;
        }
    }
    return s->captured_failed ? -EIO : 0;
}

int block_copy_captured_failed(BlockCopyState *s)
{
    return s->captured_failed;
}

/* ---- the background walk ---- */

static void coroutine_fn bg_task_entry(void *opaque)
{
    BlockCopyTask *t = opaque;
    BlockCopyState *s = t->s;
    bool is_read = false;
    int ret;

    if (t->clone_probe) {
        /* let the walk go on as soon as the method is known */
        ret = s->use_clone ? try_clone(s, t->offset, t->bytes) : -ENOTSUP;
        s->clone_probes--;
        qemu_co_queue_restart_all(&s->bg_queue);
        if (ret == -ENOTSUP) {
            /* cloning is off now: the next method */
            ret = do_copy(s, t->offset, t->bytes, t->method, &is_read);
        }
    } else {
        ret = do_copy(s, t->offset, t->bytes, t->method, &is_read);
    }
    if (ret < 0 && s->bg_ret == 0) {
        s->bg_ret = ret;
        s->bg_error_is_read = is_read;
    }
    s->mem_used -= t->mem;
    s->bg_running--;
    task_end(t, ret);
    qemu_co_queue_restart_all(&s->bg_queue);
}

static void coroutine_fn wait_bg_idle(BlockCopyState *s)
{
    while (s->bg_running > 0) {
        qemu_co_queue_wait(&s->bg_queue, NULL);
    }
}

/*
 * sync=top: is [offset, ...) allocated in the source's top layer?  Sets
 * *pnum to a cluster-aligned length (or up to len) that shares the
 * answer; a partially allocated cluster counts as allocated.
 */
static int coroutine_fn allocated_run(BlockCopyState *s, int64_t offset,
                                      int64_t bytes, int64_t *pnum)
{
    BlockDriverState *bs = s->source->bs;
    int64_t n, pos, cend;
    int ret;

    ret = bdrv_co_is_allocated(bs, offset, bytes, &n);
    if (ret < 0) {
        return ret;
    }
    if (ret) {
        *pnum = MIN(QEMU_ALIGN_UP(n, s->cluster_size), bytes);
        return 1;
    }
    if (n >= s->cluster_size || offset + n >= s->len) {
        *pnum = offset + n >= s->len ? n : QEMU_ALIGN_DOWN(n,
                                                            s->cluster_size);
        return 0;
    }
    /* the first cluster starts unallocated: look at the rest of it */
    cend = cluster_end(s, offset);
    for (pos = offset + n; pos < cend; pos += n) {
        ret = bdrv_co_is_allocated(bs, pos, cend - pos, &n);
        if (ret < 0) {
            return ret;
        }
        if (ret) {
            *pnum = cend - offset;
            return 1;
        }
    }
    *pnum = cend - offset;
    return 0;
}

/* Block status of a dirty run: zero or data, cluster-aligned length */
static BlockCopyMethod status_run(BlockCopyState *s, int64_t offset,
                                  int64_t bytes, int64_t *pnum)
{
    int64_t n;
    int ret;

    if (s->compress) {
        *pnum = bytes;
        return METHOD_READ_WRITE;
    }
    ret = bdrv_co_block_status_above(s->source->bs, NULL, true, offset,
                                     bytes, &n, NULL, NULL, NULL);
    if (ret < 0 || n <= 0) {
        *pnum = bytes;
        return data_method(s);
    }
    if (offset + n < s->len) {
        n = QEMU_ALIGN_DOWN(n, s->cluster_size);
    }
    if (n == 0) {
        *pnum = MIN(s->cluster_size, bytes);
        return data_method(s);
    }
    *pnum = MIN(n, bytes);
    if (ret & BDRV_BLOCK_ZERO) {
        return METHOD_ZERO;
    }
    return data_method(s);
}

/*
 * Wait for a worker slot, and while no clone has succeeded yet, for the
 * clone probe in flight: its outcome decides the method of the rest.
 */
static void coroutine_fn wait_worker_slot(BlockCopyState *s,
                                          BlockCopyMethod method)
{
    while (s->bg_running >= s->max_workers ||
           (method == METHOD_CLONE && s->use_clone && !s->clone_ok &&
            s->clone_probes > 0)) {
        qemu_co_queue_wait(&s->bg_queue, NULL);
    }
}

/* Reset the still-dirty clusters of an unallocated run (sync=top). */
static void skip_range(BlockCopyState *s, int64_t start, int64_t end)
{
    int64_t off = start, dstart, dcount;

    while (off < end &&
           hbitmap_next_dirty_area(s->copy_bitmap, off, end, end - off,
                                   &dstart, &dcount)) {
        hbitmap_reset(s->copy_bitmap, dstart, dcount);
        s->skipped += dcount;
        s->stats.skipped_bytes += dcount;
        off = dstart + dcount;
    }
    progress_changed(s);
}

/* All tasks (background, CBW, captures, readers) ended. */
static void coroutine_fn wait_all_tasks(BlockCopyState *s)
{
    while (!g_queue_is_empty(&s->tasks) || s->bg_running > 0) {
        qemu_co_queue_wait(&s->drain_queue, NULL);
    }
}

int coroutine_fn block_copy_run(BlockCopyState *s, const BlockCopyHooks *hooks,
                                bool *error_is_read)
{
    static const BlockCopyHooks no_hooks;
    int64_t offset = 0;
    int ret = 0;

    hooks = hooks ? hooks : &no_hooks;
    s->bg_ret = 0;
    for (;;) {
        int64_t start, count, pnum, end;
        BlockCopyMethod method;
        BlockCopyTask *t;

        if (hooks->should_stop && hooks->should_stop(hooks->opaque)) {
            ret = -ECANCELED;
            break;
        }
        if (hooks->pause_pending && hooks->pause_pending(hooks->opaque)) {
            wait_bg_idle(s);
            if (hooks->pause_point) {
                hooks->pause_point(hooks->opaque);
            }
            continue;
        }
        if (s->bg_ret < 0) {
            break;
        }
        if (!hbitmap_next_dirty_area(s->copy_bitmap, offset, s->len,
                                     current_chunk(s), &start, &count)) {
            /* end of a pass: settle everything, then look again */
            wait_bg_idle(s);
            wait_all_tasks(s);
            if (s->bg_ret < 0) {
                break;
            }
            if (!hbitmap_empty(s->copy_bitmap)) {
                offset = 0;     /* failed CBW copies dirtied clusters */
                if (hooks->pause_point) {
                    hooks->pause_point(hooks->opaque);
                }
                continue;
            }
            break;
        }

        if (s->skip_unallocated) {
            int r = allocated_run(s, start, count, &pnum);

            if (r < 0) {
                pnum = MIN(s->cluster_size, count); /* copy it anyway */
            } else if (r == 0) {
                skip_range(s, start, start + pnum);
                offset = start + pnum;
                continue;
            }
            count = pnum;
        }
        method = status_run(s, start, count, &pnum);
        end = start + pnum;

        if (method != METHOD_ZERO && hooks->ratelimit) {
            hooks->ratelimit(hooks->opaque, pnum);
        }
        wait_worker_slot(s, method);
        /*
         * We yielded: an offload may be off now (then copy at most one
         * read/write chunk), and only what is still dirty is ours.
         */
        if (method != METHOD_ZERO) {
            method = data_method(s);
            if (method == METHOD_READ_WRITE ||
                (method == METHOD_CLONE && !s->clone_ok)) {
                /* a clone probe is one read/write chunk: its fallback */
                end = MIN(end, start + rw_chunk(s));
            }
        }
        /* claim what is still dirty, without yielding */
        if (!hbitmap_next_dirty_area(s->copy_bitmap, start, end, end - start,
                                     &start, &count)) {
            offset = end;
            continue;
        }
        t = task_new(s, TASK_COPY, start, count);
        t->method = method;
        t->background = true;
        s->bg_running++;
        s->stats.max_workers_seen = MAX(s->stats.max_workers_seen,
                                        s->bg_running);
        if (method == METHOD_CLONE && !s->clone_ok) {
            t->clone_probe = true;
            s->clone_probes++;
        }
        if (method == METHOD_READ_WRITE || t->clone_probe) {
            t->mem = bounce_size(s, count);
        }
        if (t->mem) {
            while (s->mem_used > 0 && s->mem_used + t->mem > s->max_mem) {
                qemu_co_queue_wait(&s->bg_queue, NULL);
            }
            s->mem_used += t->mem;
            s->stats.max_mem_seen = MAX(s->stats.max_mem_seen, s->mem_used);
        }
        offset = start + count;
        aio_co_schedule(qemu_get_aio_context(),
                        qemu_coroutine_create(bg_task_entry, t));
    }
    wait_bg_idle(s);
    if (s->bg_ret < 0) {
        ret = s->bg_ret;
        if (error_is_read) {
            *error_is_read = s->bg_error_is_read;
        }
        s->bg_ret = 0;
        return ret;
    }
    if (ret == 0 && s->captured_failed) {
        ret = block_copy_flush_captured(s);
        if (ret < 0 && error_is_read) {
            *error_is_read = false;
        }
    }
    return ret;
}

/* ---- snapshot reads ---- */

int coroutine_fn block_copy_snapshot_read(BlockCopyState *s, int64_t offset,
                                          int64_t bytes, QEMUIOVector *qiov)
{
    int64_t pos = offset, end = offset + bytes;
    int ret = 0;

    if (offset < 0 || bytes < 0 || end > s->len) {
        return -EINVAL;
    }
    while (pos < end && ret == 0) {
        int64_t cstart = QEMU_ALIGN_DOWN(pos, s->cluster_size);
        int64_t cend = cluster_end(s, pos);
        int64_t n = MIN(end, cend) - pos;
        BlockCopyCaptured *c = find_captured(s, pos);
        BlockCopyTask *t;
        QEMUIOVector slice;

        if (c) {
            qemu_iovec_from_buf(qiov, pos - offset,
                                (uint8_t *)c->buf + (pos - c->offset), n);
            pos += n;
            continue;
        }
        t = find_overlapping_task(s, cstart, cend - cstart, false);
        if (t) {
            /* being copied or captured: look again when it is done */
            qemu_co_queue_wait(&t->wait_queue, NULL);
            continue;
        }
        qemu_iovec_init_slice(&slice, qiov, pos - offset, n);
        if (hbitmap_get(s->copy_bitmap, cstart)) {
            /* not copied yet: read the source, holding off CBW */
            BlockCopyTask *r = task_new(s, TASK_READER, cstart,
                                        cend - cstart);

            ret = bdrv_co_preadv(s->source, pos, n, &slice, 0);
            task_end(r, 0);
        } else {
            ret = bdrv_co_preadv(s->target, pos, n, &slice, 0);
        }
        qemu_iovec_destroy(&slice);
        pos += n;
    }
    return ret;
}

BlockCopyState *block_copy_find_by_target(BlockDriverState *bs)
{
    GList *l;

    for (l = block_copy_states; l; l = l->next) {
        BlockCopyState *s = l->data;

        if (s->target->bs == bs) {
            return s;
        }
    }
    return NULL;
}

/* ---- setup ---- */

BlockCopyState *block_copy_state_new(BdrvChild *source, BdrvChild *target,
                                     const BlockCopyOptions *opts,
                                     Error **errp)
{
    BlockCopyState *s;
    int64_t len = bdrv_getlength(source->bs);
    int64_t tlen = bdrv_getlength(target->bs);
    int64_t cs = opts->cluster_size;

    if (len < 0) {
        error_setg_errno(errp, -len, "Unable to get source length");
        return NULL;
    }
    if (tlen < 0) {
        error_setg_errno(errp, -tlen, "Unable to get target length");
        return NULL;
    }
    if (cs < BDRV_SECTOR_SIZE || (cs & (cs - 1)) || cs > INT_MAX) {
        error_setg(errp, "Invalid cluster size %" PRId64, cs);
        return NULL;
    }
    if (opts->max_workers < 0) {
        error_setg(errp, "max-workers must be between 1 and %d", INT_MAX);
        return NULL;
    }
    if (opts->max_chunk && opts->max_chunk < cs) {
        error_setg(errp, "Required max-chunk (%" PRIi64 ") is less than "
                   "backup cluster size (%" PRIi64 ")", opts->max_chunk, cs);
        return NULL;
    }
    if (opts->compress && !(target->bs->supported_write_flags &
                            BDRV_REQ_WRITE_COMPRESSED)) {
        error_setg(errp, "Compression is not supported for this drive %s",
                   bdrv_get_device_or_node_name(target->bs));
        return NULL;
    }

    s = g_new0(BlockCopyState, 1);
    s->source = source;
    s->target = target;
    s->len = len;
    s->cluster_size = cs;
    s->copy_bitmap = hbitmap_alloc(len, ctz64(cs));
    hbitmap_set(s->copy_bitmap, 0, len);
    s->compress = opts->compress;
    s->use_copy_range = opts->use_copy_range && !opts->compress;
    s->use_clone = opts->use_clone && !opts->compress;
    s->skip_unallocated = opts->skip_unallocated;
    s->max_workers = opts->max_workers ? opts->max_workers :
                     BLOCK_COPY_MAX_WORKERS_DEFAULT;
    s->max_chunk = QEMU_ALIGN_DOWN(opts->max_chunk, cs);
    s->max_mem = opts->max_mem ? opts->max_mem : BLOCK_COPY_MAX_MEM;
    s->buf_size = rw_chunk(s);
    s->buf_align = bounce_align(s);
    s->pool = g_ptr_array_new();
    s->pool_max = MAX(1, MIN(s->max_workers, s->max_mem / s->buf_size));
    s->fleecing = bdrv_chain_contains(target->bs, source->bs);
    s->cbw_limit = s->fleecing ? 0 : MAX(opts->cbw_buffer_limit, 0);
    if (s->fleecing) {
        /*
         * readers of the target fall through to the source (see io.c):
         * serialise target writes with them, and never share extents
         */
        s->write_flags |= BDRV_REQ_SERIALISING;
        s->use_clone = false;
    }
    if (s->compress) {
        s->write_flags |= BDRV_REQ_WRITE_COMPRESSED;
    }
    g_queue_init(&s->tasks);
    g_queue_init(&s->captured);
    qemu_co_queue_init(&s->bg_queue);
    qemu_co_queue_init(&s->drain_queue);
    block_copy_states = g_list_prepend(block_copy_states, s);
    trace(block_copy_state_new, "s %p source %s target %s len %" PRId64
          " cluster %" PRId64 " copy_range %d clone %d cbw_limit %" PRId64,
          s, source->bs->node_name, target->bs->node_name, len, cs,
          s->use_copy_range, s->use_clone, s->cbw_limit);
    return s;
}

static bool block_copy_busy(BlockCopyState *s)
{
    return !g_queue_is_empty(&s->tasks) || s->bg_running > 0 ||
           s->captured_writers > 0;
}

void coroutine_fn block_copy_drain(BlockCopyState *s)
{
    while (block_copy_busy(s)) {
        qemu_co_queue_wait(&s->drain_queue, NULL);
    }
}

void block_copy_drain_sync(BlockCopyState *s)
{
    AIO_WAIT_WHILE(qemu_get_aio_context(), block_copy_busy(s));
}

void block_copy_state_free(BlockCopyState *s)
{
    GList *l;

    if (!s) {
        return;
    }
    assert(!block_copy_busy(s));
    while ((l = g_queue_pop_head_link(&s->captured))) {
        BlockCopyCaptured *c = l->data;

        qemu_vfree(c->buf);
        g_free(c);
    }
    pool_flush(s);
    g_ptr_array_free(s->pool, true);
    block_copy_states = g_list_remove(block_copy_states, s);
    hbitmap_free(s->copy_bitmap);
    g_free(s);
}

void block_copy_set_progress_callback(BlockCopyState *s,
                                      BlockCopyProgressFunc *cb,
                                      void *opaque)
{
    s->progress_cb = cb;
    s->progress_opaque = opaque;
}

HBitmap *block_copy_dirty_bitmap(BlockCopyState *s)
{
    return s->copy_bitmap;
}

int64_t block_copy_cluster_size(BlockCopyState *s)
{
    return s->cluster_size;
}

int64_t block_copy_len(BlockCopyState *s)
{
    return s->len;
}

bool block_copy_cbw_buffer_enabled(BlockCopyState *s)
{
    return s->cbw_limit > 0;
}

bool block_copy_target_is_fleecing(BlockCopyState *s)
{
    return s->fleecing;
}

const BlockCopyStats *block_copy_stats(BlockCopyState *s)
{
    return &s->stats;
}

void block_copy_progress(BlockCopyState *s, uint64_t *done,
                         uint64_t *remaining)
{
    uint64_t total = s->len - MIN(s->skipped, (uint64_t)s->len);

    *done = MIN(s->done, total);
    *remaining = total - *done;
}
