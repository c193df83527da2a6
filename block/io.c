/*
 * Block layer: the request path.
 *
 * Every read, write, write_zeroes, discard goes through here before it
 * reaches a driver:
 *
 *   range checks -> in-flight++ -> pad to request_alignment (bounce
 *   buffers; unaligned writes become serialising read-modify-write) ->
 *   tracked request -> wait for serialising conflicts -> [writes] before-
 *   write notifiers -> detect-zeroes -> split by max_transfer -> driver ->
 *   [writes] write hooks (dirty bitmaps) -> tracked end -> in-flight--
 *
 * Tracked requests: each node lists its in-flight requests with the range
 * they cover.  A request is "serialising" when flagged
 * BDRV_REQ_SERIALISING, or when it does RMW (its range is then widened to
 * the alignment), or when someone calls bdrv_make_request_serialising on
 * it (the backup job's copy-before-write widens to its cluster size).
 * Conflicts: two overlapping requests conflict if at least one of them is
 * serialising; the later one waits on the earlier one's wait_queue until
 * it ends.  A conflicting request that is itself waiting is skipped (it
 * will re-check after waking), which avoids deadlocks between waiters.
 *
 * Because requests are tracked before they wait, a serialising request
 * that is waiting already makes newer overlapping requests wait behind
 * it: that is what fleecing needs (guest writes must not overtake a
 * point-in-time read of the same clusters).
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qemu/trace.h"

/* Largest bounce buffer for write_zeroes fallback */
#define MAX_ZERO_BOUNCE (16 * MiB)

/* ---- in-flight counting and drain ---- */

void bdrv_inc_in_flight(BlockDriverState *bs)
{
    bs->in_flight++;
}

void bdrv_dec_in_flight(BlockDriverState *bs)
{
    assert(bs->in_flight > 0);
    bs->in_flight--;
    if (bs->in_flight == 0) {
        /* wake a blocking aio_poll() in bdrv_drain */
        aio_notify(qemu_get_aio_context());
    }
}

unsigned bdrv_get_in_flight(BlockDriverState *bs)
{
    return bs->in_flight;
}

static bool bdrv_requests_pending(BlockDriverState *bs)
{
    GList *l;

    if (bs->in_flight) {
        return true;
    }
    for (l = bs->children; l; l = l->next) {
        if (bdrv_requests_pending(((BdrvChild *)l->data)->bs)) {
            return true;
        }
    }
    return false;
}

static void bdrv_poll_idle(BlockDriverState *bs)
{
    if (qemu_in_coroutine()) {
        while (bdrv_requests_pending(bs)) {
            qemu_co_yield_to_loop();
        }
    } else {
        AIO_WAIT_WHILE(qemu_get_aio_context(), bdrv_requests_pending(bs));
    }
}

void bdrv_drain(BlockDriverState *bs)
{
    bdrv_drained_begin(bs);
    bdrv_drained_end(bs);
}

static void bdrv_quiesce(BlockDriverState *bs, bool begin)
{
    GList *l;

    if (begin) {
        if (bs->quiesce_counter++ == 0 && bs->drv &&
            bs->drv->bdrv_drain_begin) {
            bs->drv->bdrv_drain_begin(bs);
        }
    } else {
        assert(bs->quiesce_counter > 0);
        if (--bs->quiesce_counter == 0 && bs->drv &&
            bs->drv->bdrv_drain_end) {
            bs->drv->bdrv_drain_end(bs);
        }
    }
    /* parents stop submitting new requests */
    for (l = bs->parents; l; l = l->next) {
        BdrvChild *c = l->data;

        if (c->parent_bs) {
            bdrv_quiesce(c->parent_bs, begin);
        } else if (begin && c->drained_begin) {
            c->drained_begin(c);
        } else if (!begin && c->drained_end) {
            c->drained_end(c);
        }
    }
}

void bdrv_drained_begin(BlockDriverState *bs)
{
    trace(bdrv_drained_begin, "bs %s in_flight %u", bs->node_name,
          bs->in_flight);
    bdrv_quiesce(bs, true);
    bdrv_poll_idle(bs);
}

void bdrv_drained_end(BlockDriverState *bs)
{
    trace(bdrv_drained_end, "bs %s", bs->node_name);
    bdrv_quiesce(bs, false);
}

bool bdrv_is_drained(BlockDriverState *bs)
{
    return bs->quiesce_counter > 0;
}

void bdrv_drain_all(void)
{
    BlockDriverState *bs;

    for (bs = bdrv_next_node(NULL); bs; bs = bdrv_next_node(bs)) {
        bdrv_quiesce(bs, true);
    }
    for (bs = bdrv_next_node(NULL); bs; bs = bdrv_next_node(bs)) {
        bdrv_poll_idle(bs);
    }
    for (bs = bdrv_next_node(NULL); bs; bs = bdrv_next_node(bs)) {
        bdrv_quiesce(bs, false);
    }
}

/* ---- tracked requests ---- */

void bdrv_tracked_request_begin(BdrvTrackedRequest *req,
                                BlockDriverState *bs, int64_t offset,
                                int64_t bytes, BdrvTrackedRequestType type,
                                BdrvRequestFlags flags)
{
    *req = (BdrvTrackedRequest) {
        .bs = bs,
        .offset = offset,
        .bytes = bytes,
        .type = type,
        .flags = flags,
        .overlap_offset = offset,
        .overlap_bytes = bytes,
        .co = qemu_coroutine_self(),
    };
    qemu_co_queue_init(&req->wait_queue);
    req->link.data = req;
    g_queue_push_tail_link(&bs->tracked_requests, &req->link);
    trace(bdrv_tracked_request_begin, "bs %s req %p type %d offset %" PRId64
          " bytes %" PRId64 " flags 0x%x", bs->node_name, req, type, offset,
          bytes, flags);
}

void bdrv_tracked_request_end(BdrvTrackedRequest *req)
{
    BlockDriverState *bs = req->bs;
    GList *l;

    if (req->serialising) {
        bs->serialising_in_flight--;
    }
    g_queue_unlink(&bs->tracked_requests, &req->link);
    /* waiters are no longer waiting for us (keeps waiting_for chains valid) */
    for (l = bs->tracked_requests.head; l; l = l->next) {
        BdrvTrackedRequest *other = l->data;

        if (other->waiting_for == req) {
            other->waiting_for = NULL;
        }
    }
    trace(bdrv_tracked_request_end, "bs %s req %p", bs->node_name, req);
    qemu_co_queue_restart_all(&req->wait_queue);
}

void bdrv_mark_request_serialising(BdrvTrackedRequest *req, uint64_t align)
{
    int64_t start = QEMU_ALIGN_DOWN(req->offset, (int64_t)align);
    int64_t end = QEMU_ALIGN_UP(req->offset + req->bytes, (int64_t)align);

    if (!req->serialising) {
        req->serialising = true;
        req->bs->serialising_in_flight++;
    }
    start = MIN(start, req->overlap_offset);
    end = MAX(end, req->overlap_offset + req->overlap_bytes);
    req->overlap_offset = start;
    req->overlap_bytes = end - start;
}

static bool tracked_request_overlaps(BdrvTrackedRequest *a,
                                     BdrvTrackedRequest *b)
{
    return a->overlap_offset < b->overlap_offset + b->overlap_bytes &&
           b->overlap_offset < a->overlap_offset + a->overlap_bytes;
}

static BdrvTrackedRequest *find_conflicting_request(BdrvTrackedRequest *self)
{
    GList *l;

    for (l = self->bs->tracked_requests.head; l; l = l->next) {
        BdrvTrackedRequest *req = l->data;

        if (req == self || (!req->serialising && !self->serialising)) {
            continue;
        }
        if (tracked_request_overlaps(self, req)) {
            /* a coroutine must never wait for itself */
            assert(qemu_coroutine_self() != req->co);
            BdrvTrackedRequest *w;

            /*
             * If req is (transitively) waiting for us, waiting for it
             * would deadlock: skip it, it re-checks when it wakes up.
             * Otherwise wait for it even if it waits itself, so that a
             * waiting serialising request keeps newer overlapping
             * requests from overtaking it.
             */
            for (w = req->waiting_for; w && w != self; w = w->waiting_for) {
            }
            if (!w) {
                return req;
            }
        }
    }
    return NULL;
}

bool coroutine_fn bdrv_wait_serialising_requests(BdrvTrackedRequest *self)
{
    BdrvTrackedRequest *req;
    bool waited = false;

    if (!self->bs->serialising_in_flight) {
        return false;
    }
    while ((req = find_conflicting_request(self))) {
        trace(bdrv_wait_serialising, "bs %s req %p waits for %p",
              self->bs->node_name, self, req);
        self->waiting_for = req;
        qemu_co_queue_wait(&req->wait_queue, NULL);
        self->waiting_for = NULL;
        waited = true;
    }
    return waited;
}

bool coroutine_fn bdrv_make_request_serialising(BdrvTrackedRequest *req,
                                                uint64_t align)
{
    bdrv_mark_request_serialising(req, align);
    return bdrv_wait_serialising_requests(req);
}

BdrvTrackedRequest *bdrv_find_tracked_request(BlockDriverState *bs,
                                              Coroutine *co)
{
    GList *l;

    for (l = bs->tracked_requests.head; l; l = l->next) {
        BdrvTrackedRequest *req = l->data;

        if (req->co == co) {
            return req;
        }
    }
    return NULL;
}

/* ---- hooks ---- */

void bdrv_add_before_write_notifier(BlockDriverState *bs,
                                    NotifierWithReturn *notifier)
{
    notifier_with_return_list_add(&bs->before_write_notifiers, notifier);
}

void bdrv_remove_before_write_notifier(BlockDriverState *bs,
                                       NotifierWithReturn *notifier)
{
    notifier_with_return_remove(notifier);
}

void bdrv_add_write_hook(BlockDriverState *bs, BdrvWriteHookFunc *cb,
                         void *opaque)
{
    BdrvWriteHook h = { cb, opaque };

    g_array_append_val(bs->write_hooks, h);
}

void bdrv_remove_write_hook(BlockDriverState *bs, BdrvWriteHookFunc *cb,
                            void *opaque)
{
    guint i;

    for (i = 0; i < bs->write_hooks->len; i++) {
        BdrvWriteHook *h = &g_array_index(bs->write_hooks, BdrvWriteHook, i);

        if (h->cb == cb && h->opaque == opaque) {
            g_array_remove_index(bs->write_hooks, i);
            return;
        }
    }
}

void bdrv_run_write_hooks(BlockDriverState *bs, int64_t offset,
                          int64_t bytes)
{
    guint i;

    for (i = 0; i < bs->write_hooks->len; i++) {
        BdrvWriteHook h = g_array_index(bs->write_hooks, BdrvWriteHook, i);

        h.cb(bs, offset, bytes, h.opaque);
    }
}

/* ---- size ---- */

typedef struct LengthCo {
    BlockDriverState *bs;
    int64_t ret;
} LengthCo;

static void coroutine_fn bdrv_getlength_co_entry(void *opaque)
{
    LengthCo *lc = opaque;

    lc->ret = lc->bs->drv->bdrv_co_getlength(lc->bs);
}

int bdrv_refresh_total_size(BlockDriverState *bs)
{
    int64_t len;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_co_getlength) {
        LengthCo lc = { bs, -EINPROGRESS };

        qemu_co_run_sync(bdrv_getlength_co_entry, &lc);
        len = lc.ret;
    } else if (bs->file || bdrv_filter_child(bs)) {
        BdrvChild *c = bs->file ? bs->file : bdrv_filter_child(bs);

        len = bdrv_getlength(c->bs);
    } else {
        len = -ENOTSUP;
    }
    if (len < 0) {
        return len;
    }
    bs->total_size = len;
    return 0;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->total_size < 0) {
        int ret = bdrv_refresh_total_size(bs);

        if (ret < 0) {
            return ret;
        }
    }
    return bs->total_size;
}

/* ---- request checks ---- */

static int bdrv_check_request(int64_t offset, int64_t bytes)
{
    if (offset < 0 || bytes < 0 || bytes > BDRV_MAX_LENGTH ||
        offset > BDRV_MAX_LENGTH - bytes) {
        return -EIO;
    }
    return 0;
}

static int bdrv_check_rw_request(int64_t offset, int64_t bytes)
{
    int ret = bdrv_check_request(offset, bytes);

    if (ret == 0 && bytes > BDRV_REQUEST_MAX_BYTES) {
        return -EIO;
    }
    return ret;
}

/*
 * A request that changes data ([offset, offset + bytes) of a write,
 * write_zeroes, discard or copy-range destination) must end within the
 * node.  Only a protocol node may be written past its end, and only by a
 * parent holding the resize permission (a format growing its image
 * file); a format node never is: its driver has no place for such data,
 * and accepting it would acknowledge a write that is then lost.
 */
static int bdrv_check_write_range(BdrvChild *child, int64_t offset,
                                  int64_t bytes)
{
    BlockDriverState *bs = child->bs;
    int64_t len;

    if ((child->perm & BLK_PERM_RESIZE) && !bs->drv->is_format) {
        return 0;
    }
    len = bdrv_getlength(bs);
    if (len < 0) {
        return len;
    }
    if (offset > len || len - offset < bytes) {
        trace(bdrv_write_beyond_eof, "bs %s offset %" PRId64 " bytes %"
              PRId64 " length %" PRId64, bs->node_name, offset, bytes, len);
        return -EIO;
    }
    return 0;
}

static int64_t bdrv_max_transfer(BlockDriverState *bs, uint32_t align)
{
    int64_t mt = BDRV_REQUEST_MAX_BYTES;

    if (bs->bl.max_transfer) {
        mt = MIN(mt, bs->bl.max_transfer);
    }
    return MAX(QEMU_ALIGN_DOWN(mt, (int64_t)align), (int64_t)align);
}

/* ---- driver calls ---- */

static int coroutine_fn bdrv_driver_preadv(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    if (!bs->drv->bdrv_co_preadv) {
        return -ENOTSUP;
    }
    return bs->drv->bdrv_co_preadv(bs, offset, bytes, qiov,
                                   flags & BDRV_REQ_PREFETCH);
}

static int coroutine_fn bdrv_driver_pwritev(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            BdrvRequestFlags flags)
{
    BdrvRequestFlags drv_flags = flags & bs->supported_write_flags;
    int ret;

    if (!bs->drv->bdrv_co_pwritev) {
        return -ENOTSUP;
    }
    ret = bs->drv->bdrv_co_pwritev(bs, offset, bytes, qiov, drv_flags);
    if (ret == 0 && (flags & BDRV_REQ_FUA) && !(drv_flags & BDRV_REQ_FUA)) {
        ret = bdrv_co_flush(bs);
    }
    return ret;
}

static int coroutine_fn bdrv_do_pwrite_zeroes(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags)
{
    BlockDriver *drv = bs->drv;
    int64_t max_write_zeroes = bs->bl.max_pwrite_zeroes ?
        bs->bl.max_pwrite_zeroes : BDRV_REQUEST_MAX_BYTES;
    uint32_t align = bs->bl.request_alignment;
    void *buf = NULL;
    int ret = 0;

    if (!(bs->open_flags & BDRV_O_UNMAP)) {
        flags &= ~BDRV_REQ_MAY_UNMAP;
    }
    max_write_zeroes = MAX(QEMU_ALIGN_DOWN(max_write_zeroes, (int64_t)align),
                           (int64_t)align);
    while (bytes > 0 && ret == 0) {
        int64_t num = MIN(bytes, max_write_zeroes);

        ret = -ENOTSUP;
        if (drv->bdrv_co_pwrite_zeroes) {
            BdrvRequestFlags zf = flags & (bs->supported_zero_flags |
                                           BDRV_REQ_NO_FALLBACK);

            ret = drv->bdrv_co_pwrite_zeroes(bs, offset, num, zf);
            if (ret == 0 && (flags & BDRV_REQ_FUA) &&
                !(bs->supported_zero_flags & BDRV_REQ_FUA)) {
                ret = bdrv_co_flush(bs);
            }
        }
        if (ret == -ENOTSUP && !(flags & BDRV_REQ_NO_FALLBACK)) {
            /* fall back to writing a buffer of zeroes */
            int64_t chunk = MIN(num, MIN(bdrv_max_transfer(bs, align),
                                         MAX_ZERO_BOUNCE));
            QEMUIOVector qiov;

            trace(bdrv_pwrite_zeroes_fallback, "bs %s offset %" PRId64
                  " bytes %" PRId64, bs->node_name, offset, num);
            if (!buf) {
                buf = qemu_try_blockalign(bs, chunk);
                if (!buf) {
                    return -ENOMEM;
                }
                memset(buf, 0, chunk);
            }
            num = chunk;
            qemu_iovec_init_buf(&qiov, buf, num);
            ret = bdrv_driver_pwritev(bs, offset, num, &qiov,
                                      flags & BDRV_REQ_FUA);
        }
        offset += num;
        bytes -= num;
    }
    qemu_vfree(buf);
    return ret;
}

/* ---- reads ---- */

static int coroutine_fn bdrv_aligned_preadv(BdrvChild *child,
                                            BdrvTrackedRequest *req,
                                            int64_t offset, int64_t bytes,
                                            uint32_t align,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    int64_t total, max_bytes, max_transfer, done = 0;
    int ret = 0;

    assert(QEMU_IS_ALIGNED(offset, align) && QEMU_IS_ALIGNED(bytes, align));
    if (flags & BDRV_REQ_SERIALISING) {
        bdrv_mark_request_serialising(req, align);
    }
    if (!(flags & BDRV_REQ_NO_SERIALISING)) {
        bdrv_wait_serialising_requests(req);
    }

    total = bdrv_getlength(bs);
    if (total < 0) {
        return total;
    }
    max_bytes = QEMU_ALIGN_UP(MAX(0, total - offset), (int64_t)align);
    max_transfer = bdrv_max_transfer(bs, align);

    while (done < bytes) {
        int64_t num = MIN(bytes - done, max_transfer);

        if (done >= max_bytes) {
            /* past EOF: zeroes */
            qemu_iovec_memset(qiov, qiov_offset + done, 0, bytes - done);
            break;
        }
        num = MIN(num, max_bytes - done);
        if (num == bytes && qiov_offset == 0 && qiov->size == bytes) {
            ret = bdrv_driver_preadv(bs, offset, num, qiov, flags);
        } else {
            QEMUIOVector slice;

            qemu_iovec_init_slice(&slice, qiov, qiov_offset + done, num);
            ret = bdrv_driver_preadv(bs, offset + done, num, &slice, flags);
            qemu_iovec_destroy(&slice);
        }
        if (ret < 0) {
            break;
        }
        done += num;
    }
    return ret;
}

/*
 * Padding of an unaligned request to the node's alignment: a head buffer
 * for [start, offset) and a tail buffer for [offset + bytes, end), which
 * may be the same block.
 */
typedef struct BdrvPad {
    int64_t start, end;        /* aligned range */
    int64_t head, tail;        /* bytes of padding at each end */
    uint8_t *head_buf;         /* one aligned block (or NULL) */
    uint8_t *tail_buf;         /* may == head_buf */
    QEMUIOVector qiov;         /* head + caller's + tail */
} BdrvPad;

static bool bdrv_pad_init(BlockDriverState *bs, int64_t offset,
                          int64_t bytes, uint32_t align, BdrvPad *pad)
{
    memset(pad, 0, sizeof(*pad));
    pad->start = QEMU_ALIGN_DOWN(offset, (int64_t)align);
    pad->end = QEMU_ALIGN_UP(offset + bytes, (int64_t)align);
    pad->head = offset - pad->start;
    pad->tail = pad->end - (offset + bytes);
    if (!pad->head && !pad->tail) {
        return false;
    }
    if (pad->head) {
        pad->head_buf = qemu_blockalign(bs, align);
    }
    if (pad->tail) {
        if (pad->head && pad->end - pad->start == align) {
            pad->tail_buf = pad->head_buf;
        } else {
            pad->tail_buf = qemu_blockalign(bs, align);
        }
    }
    return true;
}

static void bdrv_pad_build_qiov(BdrvPad *pad, uint32_t align,
                                QEMUIOVector *qiov, int64_t bytes)
{
    qemu_iovec_init(&pad->qiov, (qiov ? qiov->niov : 1) + 2);
    if (pad->head) {
        qemu_iovec_add(&pad->qiov, pad->head_buf, pad->head);
    }
    if (qiov) {
        qemu_iovec_concat(&pad->qiov, qiov, 0, bytes);
    }
    if (pad->tail) {
        qemu_iovec_add(&pad->qiov, pad->tail_buf + align - pad->tail,
                       pad->tail);
    }
}

static void bdrv_pad_destroy(BdrvPad *pad)
{
    if (pad->tail_buf && pad->tail_buf != pad->head_buf) {
        qemu_vfree(pad->tail_buf);
    }
    qemu_vfree(pad->head_buf);
    if (pad->qiov.nalloc > 0 || pad->qiov.iov) {
        qemu_iovec_destroy(&pad->qiov);
    }
}

int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    BdrvTrackedRequest req;
    uint32_t align;
    BdrvPad pad;
    int ret;

    if (!bs || !bs->drv) {
        return -ENOMEDIUM;
    }
    ret = bdrv_check_rw_request(offset, bytes);
    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    align = bs->bl.request_alignment;
    bdrv_inc_in_flight(bs);
    trace(bdrv_co_preadv, "bs %s offset %" PRId64 " bytes %" PRId64
          " flags 0x%x", bs->node_name, offset, bytes, flags);
    if (bdrv_pad_init(bs, offset, bytes, align, &pad)) {
        bdrv_pad_build_qiov(&pad, align, qiov, bytes);
        bdrv_tracked_request_begin(&req, bs, pad.start, pad.end - pad.start,
                                   BDRV_TRACKED_READ, flags);
        ret = bdrv_aligned_preadv(child, &req, pad.start,
                                  pad.end - pad.start, align, &pad.qiov, 0,
                                  flags);
        bdrv_pad_destroy(&pad);
    } else {
        bdrv_tracked_request_begin(&req, bs, offset, bytes,
                                   BDRV_TRACKED_READ, flags);
        ret = bdrv_aligned_preadv(child, &req, offset, bytes, align, qiov, 0,
                                  flags);
    }
    bdrv_tracked_request_end(&req);
    bdrv_dec_in_flight(bs);
    trace(bdrv_co_preadv_done, "bs %s offset %" PRId64 " ret %d",
          bs->node_name, offset, ret);
    return ret;
}

/* ---- writes ---- */

static int coroutine_fn bdrv_write_req_prepare(BdrvTrackedRequest *req,
                                               uint32_t align,
                                               BdrvRequestFlags flags)
{
    BlockDriverState *bs = req->bs;
    int ret;

    if (flags & BDRV_REQ_SERIALISING) {
        bdrv_mark_request_serialising(req, align);
    }
    if (flags & BDRV_REQ_NO_WAIT) {
        assert(req->serialising);
        if (find_conflicting_request(req)) {
            return -EBUSY;
        }
    } else {
        bdrv_wait_serialising_requests(req);
    }
    if (bs->read_only) {
        return -EPERM;
    }
    bs->write_gen++;
    if (bs->before_write_notifiers.head) {
        trace(bdrv_before_write_notifiers, "bs %s req %p offset %" PRId64
              " bytes %" PRId64, bs->node_name, req, req->offset,
              req->bytes);
        ret = notifier_with_return_list_notify(&bs->before_write_notifiers,
                                               req);
        if (ret < 0) {
            trace(bdrv_before_write_notifier_failed, "bs %s req %p ret %d",
                  bs->node_name, req, ret);
            return ret;
        }
    }
    return 0;
}

static void bdrv_write_req_finish(BdrvTrackedRequest *req, int64_t offset,
                                  int64_t bytes, int ret)
{
    BlockDriverState *bs = req->bs;

    if (ret == 0 && req->type == BDRV_TRACKED_WRITE && bs->total_size >= 0 &&
        offset + bytes > bs->total_size && !bs->drv->is_format) {
        /* protocols grow when written past EOF */
        bs->total_size = offset + bytes;
    }
    bdrv_run_write_hooks(bs, offset, bytes);
}

static int coroutine_fn bdrv_aligned_pwritev(BdrvChild *child,
                                             BdrvTrackedRequest *req,
                                             int64_t offset, int64_t bytes,
                                             uint32_t align,
                                             QEMUIOVector *qiov,
                                             size_t qiov_offset,
                                             BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    int64_t max_transfer = bdrv_max_transfer(bs, align), done = 0;
    int ret = 0;

    assert(QEMU_IS_ALIGNED(offset, align) && QEMU_IS_ALIGNED(bytes, align));
    if (bs->detect_zeroes != BLOCKDEV_DETECT_ZEROES_OFF &&
        !(flags & BDRV_REQ_ZERO_WRITE) && qiov &&
        qemu_iovec_is_zero(qiov, qiov_offset, bytes)) {
        flags |= BDRV_REQ_ZERO_WRITE;
        if (bs->detect_zeroes == BLOCKDEV_DETECT_ZEROES_UNMAP) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        trace(bdrv_detect_zeroes, "bs %s offset %" PRId64 " bytes %" PRId64,
              bs->node_name, offset, bytes);
    }

    if (flags & BDRV_REQ_ZERO_WRITE) {
        bdrv_debug_event(bs, BLKDBG_PWRITEV_ZERO);
        ret = bdrv_do_pwrite_zeroes(bs, offset, bytes, flags);
    } else {
        bdrv_debug_event(bs, BLKDBG_PWRITEV);
        while (done < bytes) {
            int64_t num = MIN(bytes - done, max_transfer);

            if (num == bytes && qiov_offset == 0 && qiov->size == bytes) {
                ret = bdrv_driver_pwritev(bs, offset, num, qiov, flags);
            } else {
                QEMUIOVector slice;

                qemu_iovec_init_slice(&slice, qiov, qiov_offset + done, num);
                ret = bdrv_driver_pwritev(bs, offset + done, num, &slice,
                                          flags);
                qemu_iovec_destroy(&slice);
            }
            if (ret < 0) {
                break;
            }
            done += num;
        }
    }
    bdrv_debug_event(bs, BLKDBG_PWRITEV_DONE);
    return ret;
}

/* Read the aligned blocks around an unaligned write (under req) */
static int coroutine_fn bdrv_rmw_read(BdrvChild *child,
                                      BdrvTrackedRequest *req, BdrvPad *pad,
                                      uint32_t align)
{
    BlockDriverState *bs = child->bs;
    QEMUIOVector q;
    int ret;

    if (pad->head) {
        bdrv_debug_event(bs, BLKDBG_PWRITEV_RMW_HEAD);
        qemu_iovec_init_buf(&q, pad->head_buf, align);
        ret = bdrv_aligned_preadv(child, req, pad->start, align, align, &q, 0,
                                  0);
        if (ret < 0) {
            return ret;
        }
        bdrv_debug_event(bs, BLKDBG_PWRITEV_RMW_AFTER_HEAD);
    }
    if (pad->tail && pad->tail_buf != pad->head_buf) {
        bdrv_debug_event(bs, BLKDBG_PWRITEV_RMW_TAIL);
        qemu_iovec_init_buf(&q, pad->tail_buf, align);
        ret = bdrv_aligned_preadv(child, req, pad->end - align, align, align,
                                  &q, 0, 0);
        if (ret < 0) {
            return ret;
        }
        bdrv_debug_event(bs, BLKDBG_PWRITEV_RMW_AFTER_TAIL);
    }
    return 0;
}

/* Unaligned write_zeroes: RMW the edge blocks, zero the aligned middle */
static int coroutine_fn bdrv_zero_pwritev_unaligned(BdrvChild *child,
                                                    BdrvTrackedRequest *req,
                                                    BdrvPad *pad,
                                                    uint32_t align,
                                                    BdrvRequestFlags flags)
{
    int64_t mid_start = pad->start, mid_end = pad->end;
    QEMUIOVector q;
    int ret;

    flags &= ~BDRV_REQ_ZERO_WRITE;
    if (pad->head) {
        int64_t bytes = (pad->end - pad->tail) - (pad->start + pad->head);

        memset(pad->head_buf + pad->head, 0, MIN(align - pad->head, bytes));
        if (pad->tail_buf == pad->head_buf) {
            qemu_iovec_init_buf(&q, pad->head_buf, align);
            return bdrv_aligned_pwritev(child, req, pad->start, align, align,
                                        &q, 0, flags);
        }
        qemu_iovec_init_buf(&q, pad->head_buf, align);
        ret = bdrv_aligned_pwritev(child, req, pad->start, align, align, &q,
                                   0, flags);
        if (ret < 0) {
            return ret;
        }
        mid_start += align;
    }
    if (pad->tail) {
        memset(pad->tail_buf, 0, align - pad->tail);
        mid_end -= align;
    }
    if (mid_end > mid_start) {
        ret = bdrv_aligned_pwritev(child, req, mid_start,
                                   mid_end - mid_start, align, NULL, 0,
                                   flags | BDRV_REQ_ZERO_WRITE);
        if (ret < 0) {
            return ret;
        }
    }
    if (pad->tail) {
        qemu_iovec_init_buf(&q, pad->tail_buf, align);
        ret = bdrv_aligned_pwritev(child, req, pad->end - align, align, align,
                                   &q, 0, flags);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    BdrvTrackedRequest req;
    uint32_t align;
    BdrvPad pad;
    int ret;

    if (!bs || !bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->read_only) {
        return -EPERM;
    }
    if (!(child->perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED))) {
        return -EPERM;
    }
    ret = bdrv_check_rw_request(offset, bytes);
    if (ret == 0) {
        ret = bdrv_check_write_range(child, offset, bytes);
    }
    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    assert(qiov || (flags & BDRV_REQ_ZERO_WRITE));
    align = bs->bl.request_alignment;
    bdrv_inc_in_flight(bs);
    trace(bdrv_co_pwritev, "bs %s offset %" PRId64 " bytes %" PRId64
          " flags 0x%x", bs->node_name, offset, bytes, flags);

    bdrv_tracked_request_begin(&req, bs, offset, bytes, BDRV_TRACKED_WRITE,
                               flags);
    if (!bdrv_pad_init(bs, offset, bytes, align, &pad)) {
        ret = bdrv_write_req_prepare(&req, align, flags);
        if (ret == 0) {
            ret = bdrv_aligned_pwritev(child, &req, offset, bytes, align,
                                       qiov, 0, flags);
            bdrv_write_req_finish(&req, offset, bytes, ret);
        }
    } else {
        /* RMW: nobody may touch the edge blocks until we are done */
        bdrv_make_request_serialising(&req, align);
        ret = bdrv_rmw_read(child, &req, &pad, align);
        if (ret == 0) {
            ret = bdrv_write_req_prepare(&req, align, flags);
        }
        if (ret == 0) {
            if (flags & BDRV_REQ_ZERO_WRITE) {
                ret = bdrv_zero_pwritev_unaligned(child, &req, &pad, align,
                                                  flags);
            } else {
                bdrv_pad_build_qiov(&pad, align, qiov, bytes);
                ret = bdrv_aligned_pwritev(child, &req, pad.start,
                                           pad.end - pad.start, align,
                                           &pad.qiov, 0, flags);
            }
            bdrv_write_req_finish(&req, pad.start, pad.end - pad.start, ret);
        }
        bdrv_pad_destroy(&pad);
    }
    bdrv_tracked_request_end(&req);
    bdrv_dec_in_flight(bs);
    trace(bdrv_co_pwritev_done, "bs %s offset %" PRId64 " ret %d",
          bs->node_name, offset, ret);
    return ret;
}

int coroutine_fn bdrv_co_pwrite_zeroes(BdrvChild *child, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags)
{
    return bdrv_co_pwritev(child, offset, bytes, NULL,
                           flags | BDRV_REQ_ZERO_WRITE);
}

int coroutine_fn bdrv_co_pread(BdrvChild *child, int64_t offset,
                               int64_t bytes, void *buf,
                               BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return bdrv_co_preadv(child, offset, bytes, &qiov, flags);
}

int coroutine_fn bdrv_co_pwrite(BdrvChild *child, int64_t offset,
                                int64_t bytes, const void *buf,
                                BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return bdrv_co_pwritev(child, offset, bytes, &qiov, flags);
}

/* ---- discard ---- */

int coroutine_fn bdrv_co_pdiscard(BdrvChild *child, int64_t offset,
                                  int64_t bytes)
{
    BlockDriverState *bs = child->bs;
    BdrvTrackedRequest req;
    int64_t align, head, tail, max_pdiscard;
    int ret;

    if (!bs || !bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->read_only) {
        return -EPERM;
    }
    ret = bdrv_check_request(offset, bytes);
    if (ret == 0) {
        ret = bdrv_check_write_range(child, offset, bytes);
    }
    if (ret < 0) {
        return ret;
    }
    if (!(bs->open_flags & BDRV_O_UNMAP) || !bs->drv->bdrv_co_pdiscard ||
        bytes == 0) {
        return 0;
    }
    align = MAX(bs->bl.pdiscard_alignment, bs->bl.request_alignment);
    max_pdiscard = bs->bl.max_pdiscard ? bs->bl.max_pdiscard
                                       : BDRV_REQUEST_MAX_BYTES;
    max_pdiscard = MAX(QEMU_ALIGN_DOWN(max_pdiscard, align), align);
    /* only whole aligned blocks are discarded; edges stay as they are */
    head = QEMU_ALIGN_UP(offset, align);
    tail = QEMU_ALIGN_DOWN(offset + bytes, align);
    if (head >= tail) {
        return 0;
    }
    bdrv_inc_in_flight(bs);
    bdrv_tracked_request_begin(&req, bs, offset, bytes, BDRV_TRACKED_DISCARD,
                               0);
    ret = bdrv_write_req_prepare(&req, bs->bl.request_alignment, 0);
    if (ret == 0) {
        int64_t off = head;

        while (off < tail) {
            int64_t num = MIN(tail - off, max_pdiscard);

            ret = bs->drv->bdrv_co_pdiscard(bs, off, num);
            if (ret == -ENOTSUP) {
                ret = 0;
            }
            if (ret < 0) {
                break;
            }
            off += num;
        }
        bdrv_write_req_finish(&req, head, tail - head, ret);
    }
    bdrv_tracked_request_end(&req);
    bdrv_dec_in_flight(bs);
    trace(bdrv_co_pdiscard_done, "bs %s offset %" PRId64 " bytes %" PRId64
          " ret %d", bs->node_name, offset, bytes, ret);
    return ret;
}

/* ---- VM state ---- */

int coroutine_fn bdrv_co_rw_vmstate(BlockDriverState *bs, QEMUIOVector *qiov,
                                    int64_t pos, bool is_read)
{
    int ret;

    if (!bs || !bs->drv) {
        return -ENOMEDIUM;
    }
    if (!is_read && bs->read_only) {
        return -EPERM;
    }
    if (pos < 0 || qiov->size > BDRV_REQUEST_MAX_BYTES) {
        return -EIO;
    }
    if (!bs->drv->bdrv_co_rw_vmstate) {
        return -ENOTSUP;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_rw_vmstate(bs, qiov, pos, is_read);
    if (ret == 0 && !is_read) {
        bs->write_gen++;
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- flush ---- */

int coroutine_fn bdrv_co_flush(BlockDriverState *bs)
{
    GList *l;
    int ret = 0;

    if (!bs || !bs->drv) {
        return 0;
    }
    bdrv_inc_in_flight(bs);
    if (bs->drv->bdrv_co_flush_to_os) {
        bdrv_debug_event(bs, BLKDBG_FLUSH_TO_OS);
        ret = bs->drv->bdrv_co_flush_to_os(bs);
    }
    if (ret == 0 && !(bs->open_flags & BDRV_O_NO_FLUSH) &&
        bs->drv->bdrv_co_flush_to_disk && bs->flushed_gen != bs->write_gen) {
        uint64_t gen = bs->write_gen;

        bdrv_debug_event(bs, BLKDBG_FLUSH_TO_DISK);
        ret = bs->drv->bdrv_co_flush_to_disk(bs);
        if (ret == 0) {
            bs->flushed_gen = gen;
        }
    }
    /* flush the children we may have written to */
    for (l = bs->children; l && ret == 0; l = l->next) {
        BdrvChild *c = l->data;

        if (c->perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED)) {
            ret = bdrv_co_flush(c->bs);
        }
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- truncate ---- */

int coroutine_fn bdrv_co_truncate(BdrvChild *child, int64_t offset,
                                  bool exact, Error **errp)
{
    BlockDriverState *bs = child->bs;
    BdrvTrackedRequest req;
    int64_t old_size;
    int ret;

    if (!bs || !bs->drv) {
        error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    if (offset < 0 || offset > BDRV_MAX_LENGTH) {
        error_setg(errp, "Image size cannot be negative or exceed the "
                   "maximum");
        return -EINVAL;
    }
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    if (!(child->perm & BLK_PERM_RESIZE)) {
        error_setg(errp, "Node '%s' cannot be resized: no resize permission",
                   bs->node_name);
        return -EPERM;
    }
    old_size = bdrv_getlength(bs);
    if (old_size < 0) {
        error_setg_errno(errp, -old_size, "Failed to get old image size");
        return old_size;
    }
    bdrv_inc_in_flight(bs);
    bdrv_tracked_request_begin(&req, bs, MIN(offset, old_size),
                               BDRV_MAX_LENGTH - MIN(offset, old_size),
                               BDRV_TRACKED_TRUNCATE, 0);
    bdrv_make_request_serialising(&req, 1);
    if (bs->drv->bdrv_co_truncate) {
        ret = bs->drv->bdrv_co_truncate(bs, offset, exact, errp);
    } else if (bs->file && bs->drv->is_filter) {
        ret = bdrv_co_truncate(bs->file, offset, exact, errp);
    } else {
        error_setg(errp, "Image format driver does not support resize");
        ret = -ENOTSUP;
    }
    if (ret == 0) {
        bs->write_gen++;
        ret = bdrv_refresh_total_size(bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not refresh total size");
        }
    }
    bdrv_tracked_request_end(&req);
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- copy offload ---- */

static int coroutine_fn bdrv_co_copy_range_internal(
    BdrvChild *src, int64_t src_offset, BdrvChild *dst, int64_t dst_offset,
    int64_t bytes, BdrvRequestFlags read_flags,
    BdrvRequestFlags write_flags, bool recurse_src)
{
    BlockDriverState *bs = recurse_src ? src->bs : dst->bs;
    BdrvTrackedRequest req;
    int ret;

    if (!dst || !dst->bs || !dst->bs->drv || !src || !src->bs ||
        !src->bs->drv) {
        return -ENOMEDIUM;
    }
    ret = bdrv_check_rw_request(src_offset, bytes);
    if (ret == 0) {
        ret = bdrv_check_rw_request(dst_offset, bytes);
    }
    if (ret == 0 && !recurse_src) {
        ret = bdrv_check_write_range(dst, dst_offset, bytes);
    }
    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    if ((read_flags | write_flags) & BDRV_REQ_ZERO_WRITE) {
        return bdrv_co_pwrite_zeroes(dst, dst_offset, bytes, write_flags);
    }
    if (!QEMU_IS_ALIGNED(src_offset | dst_offset | bytes,
                         MAX(src->bs->bl.request_alignment,
                             dst->bs->bl.request_alignment))) {
        return -ENOTSUP;
    }
    bdrv_inc_in_flight(bs);
    if (recurse_src) {
        if (!bs->drv->bdrv_co_copy_range_from) {
            ret = -ENOTSUP;
        } else {
            bdrv_tracked_request_begin(&req, bs, src_offset, bytes,
                                       BDRV_TRACKED_READ, read_flags);
            if (read_flags & BDRV_REQ_SERIALISING) {
                bdrv_mark_request_serialising(&req, 1);
            }
            if (!(read_flags & BDRV_REQ_NO_SERIALISING)) {
                bdrv_wait_serialising_requests(&req);
            }
            ret = bs->drv->bdrv_co_copy_range_from(bs, src, src_offset, dst,
                                                   dst_offset, bytes,
                                                   read_flags, write_flags);
            bdrv_tracked_request_end(&req);
        }
    } else {
        if (bs->read_only ||
            !(dst->perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED))) {
            ret = -EPERM;
        } else if (!bs->drv->bdrv_co_copy_range_to) {
            ret = -ENOTSUP;
        } else {
            bdrv_tracked_request_begin(&req, bs, dst_offset, bytes,
                                       BDRV_TRACKED_WRITE, write_flags);
            ret = bdrv_write_req_prepare(&req, 1, write_flags);
            if (ret == 0) {
                ret = bs->drv->bdrv_co_copy_range_to(bs, src, src_offset,
                                                     dst, dst_offset, bytes,
                                                     read_flags,
                                                     write_flags);
                bdrv_write_req_finish(&req, dst_offset, bytes, ret);
            }
            bdrv_tracked_request_end(&req);
        }
    }
    bdrv_dec_in_flight(bs);
    trace(bdrv_co_copy_range, "src %s dst %s bytes %" PRId64 " ret %d",
          src->bs->node_name, dst->bs->node_name, bytes, ret);
    return ret;
}

int coroutine_fn bdrv_co_copy_range_from(BdrvChild *src, int64_t src_offset,
                                         BdrvChild *dst, int64_t dst_offset,
                                         int64_t bytes,
                                         BdrvRequestFlags read_flags,
                                         BdrvRequestFlags write_flags)
{
    return bdrv_co_copy_range_internal(src, src_offset, dst, dst_offset,
                                       bytes, read_flags, write_flags, true);
}

int coroutine_fn bdrv_co_copy_range_to(BdrvChild *src, int64_t src_offset,
                                       BdrvChild *dst, int64_t dst_offset,
                                       int64_t bytes,
                                       BdrvRequestFlags read_flags,
                                       BdrvRequestFlags write_flags)
{
    return bdrv_co_copy_range_internal(src, src_offset, dst, dst_offset,
                                       bytes, read_flags, write_flags, false);
}

int coroutine_fn bdrv_co_copy_range(BdrvChild *src, int64_t src_offset,
                                    BdrvChild *dst, int64_t dst_offset,
                                    int64_t bytes,
                                    BdrvRequestFlags read_flags,
                                    BdrvRequestFlags write_flags)
{
    return bdrv_co_copy_range_from(src, src_offset, dst, dst_offset, bytes,
                                   read_flags, write_flags);
}
