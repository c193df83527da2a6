/*
 * io_uring and linux-aio backends of the file driver.  See raw-aio.h.
 */
#include "qemu/osdep.h"
#include "block/raw-aio.h"
#include "block/aio.h"
#include "qemu/coroutine.h"
#include "qemu/trace.h"
#include <sys/eventfd.h>
#include <libaio.h>
#ifdef CONFIG_LINUX_IO_URING
#include <liburing.h>
#endif

/* ---------------------------- io_uring ---------------------------- */

#ifdef CONFIG_LINUX_IO_URING

#define LURING_ENTRIES 128

typedef struct LuringReq {
    Coroutine *co;
    int fd;
    int64_t offset;
    QEMUIOVector *qiov;
    RawAioType type;
    size_t done;             /* bytes transferred so far (short I/O) */
    QEMUIOVector resubmit;   /* remainder after a short transfer */
    int ret;
    bool completed;
} LuringReq;

typedef struct LuringState {
    struct io_uring ring;
    int efd;
    QEMUBH *submit_bh;
    unsigned queued;         /* sqes prepared but not submitted */
    unsigned in_flight;
    GQueue overflow;         /* LuringReq * waiting for a free sqe */
    uint64_t submits;
} LuringState;

static LuringState *luring;
static int luring_init_ret = 1;   /* 1: not tried */

static void luring_prep(LuringState *s, LuringReq *req)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    QEMUIOVector *q = req->done ? &req->resubmit : req->qiov;

    assert(sqe);
    switch (req->type) {
    case RAW_AIO_READ:
        io_uring_prep_readv(sqe, req->fd, q->iov, q->niov,
                            req->offset + req->done);
        break;
    case RAW_AIO_WRITE:
        io_uring_prep_writev(sqe, req->fd, q->iov, q->niov,
                             req->offset + req->done);
        break;
    case RAW_AIO_FLUSH:
        io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, req);
    s->queued++;
}

static void luring_submit(LuringState *s)
{
    while (s->queued) {
        int ret = io_uring_submit(&s->ring);

        if (ret == -EINTR || ret == -EAGAIN) {
            continue;
        }
        if (ret < 0) {
            /* cannot happen with a valid ring; fail loudly */
            g_error("io_uring_submit: %s", strerror(-ret));
        }
        s->submits++;
        trace(luring_submit, "submitted %d", ret);
        s->queued -= MIN((unsigned)ret, s->queued);
    }
}

static void luring_submit_bh(void *opaque)
{
    LuringState *s = opaque;

    luring_submit(s);
}

/* Put req on the ring, or on the overflow queue when the ring is full */
static void luring_enqueue(LuringState *s, LuringReq *req)
{
    if (io_uring_sq_space_left(&s->ring) == 0) {
        luring_submit(s);
    }
    if (io_uring_sq_space_left(&s->ring) == 0) {
        g_queue_push_tail(&s->overflow, req);
        return;
    }
    luring_prep(s, req);
    qemu_bh_schedule(s->submit_bh);
}

static void luring_complete(LuringState *s, LuringReq *req, int res)
{
    size_t total = req->qiov ? req->qiov->size : 0;

    if (res >= 0 && req->type != RAW_AIO_FLUSH) {
        req->done += res;
        if (req->done < total) {
            if (res == 0) {
                if (req->type == RAW_AIO_READ) {
                    /* EOF: the rest reads as zeroes */
                    qemu_iovec_memset(req->qiov, req->done, 0,
                                      total - req->done);
                    res = 0;
                    goto done;
                }
                res = -ENOSPC;
                goto done;
            }
            /* short transfer: resubmit the remainder */
            qemu_iovec_destroy(&req->resubmit);
            qemu_iovec_init(&req->resubmit, req->qiov->niov);
            qemu_iovec_concat(&req->resubmit, req->qiov, req->done,
                              total - req->done);
            luring_enqueue(s, req);
            return;
        }
        res = 0;
    }
done:
    req->ret = res < 0 ? res : 0;
    req->completed = true;
    s->in_flight--;
    aio_co_wake(req->co);
}

static void luring_completion_cb(void *opaque)
{
    LuringState *s = opaque;
    struct io_uring_cqe *cqe;
    eventfd_t v;

    (void)eventfd_read(s->efd, &v);
    while (io_uring_peek_cqe(&s->ring, &cqe) == 0) {
        LuringReq *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&s->ring, cqe);
        luring_complete(s, req, res);
    }
    /* room on the ring again: move waiting requests in */
    while (!g_queue_is_empty(&s->overflow) &&
           io_uring_sq_space_left(&s->ring) > 0) {
        luring_prep(s, g_queue_pop_head(&s->overflow));
    }
    if (s->queued) {
        qemu_bh_schedule(s->submit_bh);
    }
}

int luring_init(void)
{
    LuringState *s;
    int ret;

    if (luring_init_ret != 1) {
        return luring_init_ret;
    }
    s = g_new0(LuringState, 1);
    ret = io_uring_queue_init(LURING_ENTRIES, &s->ring, 0);
    if (ret < 0) {
        g_free(s);
        luring_init_ret = ret;
        return ret;
    }
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0 || io_uring_register_eventfd(&s->ring, s->efd) < 0) {
        ret = s->efd < 0 ? -errno : -EIO;
        if (s->efd >= 0) {
            close(s->efd);
        }
        io_uring_queue_exit(&s->ring);
        g_free(s);
        luring_init_ret = ret;
        return ret;
    }
    g_queue_init(&s->overflow);
    s->submit_bh = aio_bh_new(qemu_get_aio_context(), luring_submit_bh, s);
    aio_set_fd_handler(qemu_get_aio_context(), s->efd, luring_completion_cb,
                       NULL, s);
    luring = s;
    luring_init_ret = 0;
    return 0;
}

bool luring_available(void)
{
    return luring_init() == 0;
}

uint64_t luring_submit_count(void)
{
    return luring ? luring->submits : 0;
}

int coroutine_fn luring_co_submit(int fd, int64_t offset, QEMUIOVector *qiov,
                                  RawAioType type)
{
    LuringReq req = {
        .co = qemu_coroutine_self(),
        .fd = fd,
        .offset = offset,
        .qiov = qiov,
        .type = type,
    };
    int ret = luring_init();

    if (ret < 0) {
        return ret;
    }
    qemu_iovec_init(&req.resubmit, 1);
    luring->in_flight++;
    luring_enqueue(luring, &req);
    while (!req.completed) {
        qemu_coroutine_yield();
    }
    qemu_iovec_destroy(&req.resubmit);
    return req.ret;
}

#else /* !CONFIG_LINUX_IO_URING */

int luring_init(void)
{
    return -ENOSYS;
}

bool luring_available(void)
{
    return false;
}

uint64_t luring_submit_count(void)
{
    return 0;
}

int coroutine_fn luring_co_submit(int fd, int64_t offset, QEMUIOVector *qiov,
                                  RawAioType type)
{
    return -ENOSYS;
}

#endif /* CONFIG_LINUX_IO_URING */

/* ---------------------------- linux-aio ---------------------------- */

#define LAIO_MAX_EVENTS 128

typedef struct LaioReq {
    struct iocb iocb;
    Coroutine *co;
    QEMUIOVector *qiov;
    RawAioType type;
    int ret;
    bool completed;
} LaioReq;

typedef struct LaioState {
    io_context_t ctx;
    int efd;
    unsigned in_flight;
} LaioState;

static LaioState *laio;
static int laio_init_ret = 1;

static void laio_completion_cb(void *opaque)
{
    LaioState *s = opaque;
    struct io_event events[LAIO_MAX_EVENTS];
    struct timespec ts = { 0, 0 };
    eventfd_t v;
    int n, i;

    (void)eventfd_read(s->efd, &v);
    do {
        n = io_getevents(s->ctx, 0, LAIO_MAX_EVENTS, events, &ts);
        for (i = 0; i < n; i++) {
            LaioReq *req = container_of(events[i].obj, LaioReq, iocb);
            long res = (long)events[i].res;
            size_t want = req->qiov ? req->qiov->size : 0;

            if (res < 0) {
                req->ret = res;
            } else if (req->type == RAW_AIO_FLUSH || (size_t)res == want) {
                req->ret = 0;
            } else if (req->type == RAW_AIO_READ) {
                /* short read: EOF, the rest reads as zeroes */
                qemu_iovec_memset(req->qiov, res, 0, want - res);
                req->ret = 0;
            } else {
                req->ret = -ENOSPC;
            }
            req->completed = true;
            s->in_flight--;
            aio_co_wake(req->co);
        }
    } while (n == LAIO_MAX_EVENTS);
}

int laio_init(void)
{
    LaioState *s;
    int ret;

    if (laio_init_ret != 1) {
        return laio_init_ret;
    }
    s = g_new0(LaioState, 1);
    ret = io_setup(LAIO_MAX_EVENTS, &s->ctx);
    if (ret < 0) {
        g_free(s);
        laio_init_ret = ret;
        return ret;
    }
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0) {
        ret = -errno;
        io_destroy(s->ctx);
        g_free(s);
        laio_init_ret = ret;
        return ret;
    }
    aio_set_fd_handler(qemu_get_aio_context(), s->efd, laio_completion_cb,
                       NULL, s);
    laio = s;
    laio_init_ret = 0;
    return 0;
}

bool laio_available(void)
{
    return laio_init() == 0;
}

int coroutine_fn laio_co_submit(int fd, int64_t offset, QEMUIOVector *qiov,
                                RawAioType type)
{
    LaioReq req = {
        .co = qemu_coroutine_self(),
        .qiov = qiov,
        .type = type,
    };
    struct iocb *iocbs[1] = { &req.iocb };
    int ret = laio_init();

    if (ret < 0) {
        return ret;
    }
    switch (type) {
    case RAW_AIO_READ:
        io_prep_preadv(&req.iocb, fd, qiov->iov, qiov->niov, offset);
        break;
    case RAW_AIO_WRITE:
        io_prep_pwritev(&req.iocb, fd, qiov->iov, qiov->niov, offset);
        break;
    case RAW_AIO_FLUSH:
        io_prep_fdsync(&req.iocb, fd);
        break;
    }
    io_set_eventfd(&req.iocb, laio->efd);
    do {
        ret = io_submit(laio->ctx, 1, iocbs);
    } while (ret == -EAGAIN || ret == -EINTR);
    if (ret < 0) {
        return ret;
    }
    laio->in_flight++;
    trace(laio_submit, "fd %d type %d offset %" PRId64, fd, type, offset);
    while (!req.completed) {
        qemu_coroutine_yield();
    }
    return req.ret;
}
