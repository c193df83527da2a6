/*
 * Synchronous wrappers around the coroutine request path, for callers that
 * are not coroutines (tools, tests, the control path).  Each packs its
 * arguments, runs the bdrv_co_* function with qemu_co_run_sync() (which
 * just calls it when already in a coroutine, and otherwise drives the main
 * AioContext until it finishes), and returns its result.
 *
 * Also the generic entry points of the blkdebug debugging hooks, which
 * find the blkdebug node below a given node.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

typedef enum SyncOp {
    SYNC_READ,
    SYNC_WRITE,
    SYNC_DISCARD,
    SYNC_FLUSH,
    SYNC_TRUNCATE,
    SYNC_BLOCK_STATUS,
    SYNC_IS_ALLOCATED,
    SYNC_IS_ALLOCATED_ABOVE,
} SyncOp;

typedef struct SyncCo {
    SyncOp op;
    BdrvChild *child;
    BlockDriverState *bs, *base;
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    bool exact, include_base;
    Error **errp;
    int64_t *pnum, *map;
    BlockDriverState **file;
    int *depth;
    int ret;
} SyncCo;

static void coroutine_fn bdrv_sync_entry(void *opaque)
{
    SyncCo *s = opaque;

    switch (s->op) {
    case SYNC_READ:
        s->ret = bdrv_co_preadv(s->child, s->offset, s->bytes, s->qiov,
                                s->flags);
        break;
    case SYNC_WRITE:
        s->ret = bdrv_co_pwritev(s->child, s->offset, s->bytes, s->qiov,
                                 s->flags);
        break;
    case SYNC_DISCARD:
        s->ret = bdrv_co_pdiscard(s->child, s->offset, s->bytes);
        break;
    case SYNC_FLUSH:
        s->ret = bdrv_co_flush(s->bs);
        break;
    case SYNC_TRUNCATE:
        s->ret = bdrv_co_truncate(s->child, s->offset, s->exact, s->errp);
        break;
    case SYNC_BLOCK_STATUS:
        s->ret = bdrv_co_block_status_above(s->bs, s->base, true, s->offset,
                                            s->bytes, s->pnum, s->map,
                                            s->file, s->depth);
        break;
    case SYNC_IS_ALLOCATED:
        s->ret = bdrv_co_is_allocated(s->bs, s->offset, s->bytes, s->pnum);
        break;
    case SYNC_IS_ALLOCATED_ABOVE:
        s->ret = bdrv_co_is_allocated_above(s->bs, s->base, s->include_base,
                                            s->offset, s->bytes, s->pnum);
        break;
    }
}

static int bdrv_run_sync(SyncCo *s)
{
    s->ret = -EINPROGRESS;
    qemu_co_run_sync(bdrv_sync_entry, s);
    assert(s->ret != -EINPROGRESS);
    return s->ret;
}

int bdrv_preadv(BdrvChild *child, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    SyncCo s = { .op = SYNC_READ, .child = child, .offset = offset,
                 .bytes = bytes, .qiov = qiov, .flags = flags };

    return bdrv_run_sync(&s);
}

int bdrv_pwritev(BdrvChild *child, int64_t offset, int64_t bytes,
                 QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    SyncCo s = { .op = SYNC_WRITE, .child = child, .offset = offset,
                 .bytes = bytes, .qiov = qiov, .flags = flags };

    return bdrv_run_sync(&s);
}

int bdrv_pread(BdrvChild *child, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return bdrv_preadv(child, offset, bytes, &qiov, flags);
}

int bdrv_pwrite(BdrvChild *child, int64_t offset, int64_t bytes,
                const void *buf, BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return bdrv_pwritev(child, offset, bytes, &qiov, flags);
}

int bdrv_pwrite_sync(BdrvChild *child, int64_t offset, int64_t bytes,
                     const void *buf, BdrvRequestFlags flags)
{
    int ret = bdrv_pwrite(child, offset, bytes, buf, flags);

    if (ret < 0) {
        return ret;
    }
    return bdrv_flush(child->bs);
}

int bdrv_pwrite_zeroes(BdrvChild *child, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags)
{
    SyncCo s = { .op = SYNC_WRITE, .child = child, .offset = offset,
                 .bytes = bytes, .flags = flags | BDRV_REQ_ZERO_WRITE };

    return bdrv_run_sync(&s);
}

int bdrv_pdiscard(BdrvChild *child, int64_t offset, int64_t bytes)
{
    SyncCo s = { .op = SYNC_DISCARD, .child = child, .offset = offset,
                 .bytes = bytes };

    return bdrv_run_sync(&s);
}

int bdrv_flush(BlockDriverState *bs)
{
    SyncCo s = { .op = SYNC_FLUSH, .bs = bs };

    return bdrv_run_sync(&s);
}

int bdrv_truncate(BdrvChild *child, int64_t offset, bool exact,
                  Error **errp)
{
    SyncCo s = { .op = SYNC_TRUNCATE, .child = child, .offset = offset,
                 .exact = exact, .errp = errp };

    return bdrv_run_sync(&s);
}

int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    return bdrv_block_status_above(bs, bdrv_backing_bs(bs), offset, bytes,
                                   pnum, map, file, NULL);
}

int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file,
                            int *depth)
{
    int64_t dummy;
    SyncCo s = { .op = SYNC_BLOCK_STATUS, .bs = bs, .base = base,
                 .offset = offset, .bytes = bytes,
                 .pnum = pnum ? pnum : &dummy, .map = map, .file = file,
                 .depth = depth };

    return bdrv_run_sync(&s);
}

int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum)
{
    int64_t dummy;
    SyncCo s = { .op = SYNC_IS_ALLOCATED, .bs = bs, .offset = offset,
                 .bytes = bytes, .pnum = pnum ? pnum : &dummy };

    return bdrv_run_sync(&s);
}

int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum)
{
    int64_t dummy;
    SyncCo s = { .op = SYNC_IS_ALLOCATED_ABOVE, .bs = top, .base = base,
                 .include_base = include_base, .offset = offset,
                 .bytes = bytes, .pnum = pnum ? pnum : &dummy };

    return bdrv_run_sync(&s);
}

/* ---- blkdebug entry points ---- */

/* The first node at or below bs (following file/filter children) with cb */
#define FIND_DEBUG_NODE(bs, cb)                                          \
    ({                                                                  \
        BlockDriverState *b_ = (bs);                                    \
        while (b_ && !(b_->drv && b_->drv->cb)) {                       \
            BdrvChild *c_ = b_->file ? b_->file : bdrv_filter_child(b_); \
            b_ = c_ ? c_->bs : NULL;                                    \
        }                                                               \
        b_;                                                             \
    })

void bdrv_debug_event(BlockDriverState *bs, int event)
{
    if (bs && bs->drv && bs->drv->bdrv_debug_event) {
        bs->drv->bdrv_debug_event(bs, event);
    }
}

int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event,
                          const char *tag)
{
    bs = FIND_DEBUG_NODE(bs, bdrv_debug_breakpoint);
    return bs ? bs->drv->bdrv_debug_breakpoint(bs, event, tag) : -ENOTSUP;
}

int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag)
{
    bs = FIND_DEBUG_NODE(bs, bdrv_debug_remove_breakpoint);
    return bs ? bs->drv->bdrv_debug_remove_breakpoint(bs, tag) : -ENOTSUP;
}

int bdrv_debug_resume(BlockDriverState *bs, const char *tag)
{
    bs = FIND_DEBUG_NODE(bs, bdrv_debug_resume);
    return bs ? bs->drv->bdrv_debug_resume(bs, tag) : -ENOTSUP;
}

bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag)
{
    bs = FIND_DEBUG_NODE(bs, bdrv_debug_is_suspended);
    return bs ? bs->drv->bdrv_debug_is_suspended(bs, tag) : false;
}
