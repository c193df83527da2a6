/*
 * AioContext core: the GSource glue, bottom halves, cross-thread
 * notification and coroutine scheduling.  fd handlers and aio_poll() are in
 * aio-posix.c, timers in qemu-timer.c.
 *
 * Bottom halves.  Scheduled BHs form one FIFO protected by bh_lock, so
 * qemu_bh_schedule() and aio_bh_schedule_oneshot() work from any thread.
 * Every scheduling stamps the BH with a sequence number; aio_bh_poll()
 * notes the newest number when it starts and runs only BHs up to it, in
 * queue order.  A BH scheduled while BHs are being dispatched (even the
 * running one rescheduling itself) therefore runs in the NEXT iteration,
 * which keeps a self-rescheduling BH from starving fds and timers.  Each
 * BH is unlinked before its callback runs and not touched afterwards, so
 * callbacks may cancel, delete or reschedule any BH, their own included.
 *
 * Notification.  A poller that may block raises notify_me before it checks
 * for pending work; aio_notify() writes the eventfd only if notify_me is
 * raised and nobody wrote it since the last accept (notified).  As the
 * check and the scheduling both take bh_lock, either the poller sees the
 * new BH or the scheduler sees notify_me; a wake-up is never lost, and
 * aio_poll(ctx, false) never pays for an eventfd write or read.
 */
#include "qemu/osdep.h"
#include "util/aio-int.h"
#include "util/coroutine-int.h"
#include "qemu/trace.h"

#include <sys/eventfd.h>

static AioContext *main_ctx;
/* The context whose aio_poll() or GSource dispatch runs on this thread. */
static __thread AioContext *current_ctx;

/* ---- bottom halves ---- */

static void bh_unlink_locked(AioContext *ctx, QEMUBH *bh)
{
    if (bh->prev) {
        bh->prev->next = bh->next;
    } else {
        ctx->bh_head = bh->next;
    }
    if (bh->next) {
        bh->next->prev = bh->prev;
    } else {
        ctx->bh_tail = bh->prev;
    }
    bh->next = bh->prev = NULL;
    bh->scheduled = false;
}

/* Returns true if bh was newly queued. */
static bool bh_schedule(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;

    g_mutex_lock(&ctx->bh_lock);
    if (bh->scheduled) {
        g_mutex_unlock(&ctx->bh_lock);
        return false;
    }
    bh->scheduled = true;
    bh->seq = ++ctx->bh_seq;
    bh->next = NULL;
    bh->prev = ctx->bh_tail;
    if (ctx->bh_tail) {
        ctx->bh_tail->next = bh;
    } else {
        ctx->bh_head = bh;
    }
    ctx->bh_tail = bh;
    g_mutex_unlock(&ctx->bh_lock);
    aio_notify(ctx);
    return true;
}

QEMUBH *aio_bh_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    QEMUBH *bh = g_new0(QEMUBH, 1);

    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    return bh;
}

void qemu_bh_schedule(QEMUBH *bh)
{
    bh_schedule(bh);
}

void qemu_bh_cancel(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;

    g_mutex_lock(&ctx->bh_lock);
    if (bh->scheduled) {
        bh_unlink_locked(ctx, bh);
    }
    g_mutex_unlock(&ctx->bh_lock);
}

void qemu_bh_delete(QEMUBH *bh)
{
    if (!bh) {
        return;
    }
    qemu_bh_cancel(bh);
    g_free(bh);
}

void aio_bh_schedule_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    QEMUBH *bh = aio_bh_new(ctx, cb, opaque);

    bh->oneshot = true;
    bh_schedule(bh);
}

bool aio_bh_pending(AioContext *ctx)
{
    bool pending;

    g_mutex_lock(&ctx->bh_lock);
    pending = ctx->bh_head != NULL;
    g_mutex_unlock(&ctx->bh_lock);
    return pending;
}

bool aio_bh_poll(AioContext *ctx)
{
    bool progress = false;
    uint64_t limit;

    g_mutex_lock(&ctx->bh_lock);
    if (!ctx->bh_head) {
        g_mutex_unlock(&ctx->bh_lock);
        return false;
    }
    limit = ctx->bh_seq;
    g_mutex_unlock(&ctx->bh_lock);

    for (;;) {
        QEMUBH *bh;
        QEMUBHFunc *cb;
        void *opaque;
        bool oneshot;

        g_mutex_lock(&ctx->bh_lock);
        bh = ctx->bh_head;
        if (!bh || bh->seq > limit) {
            g_mutex_unlock(&ctx->bh_lock);
            break;
        }
        bh_unlink_locked(ctx, bh);
        g_mutex_unlock(&ctx->bh_lock);

        /* From here on bh may be deleted or rescheduled by anyone. */
        cb = bh->cb;
        opaque = bh->opaque;
        oneshot = bh->oneshot;
        if (oneshot) {
            g_free(bh);
        }
        cb(opaque);
        progress = true;
    }
    return progress;
}

/* ---- notification ---- */

void aio_notify(AioContext *ctx)
{
    /* Pairs with the notify_me increment in the pollers. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&ctx->notify_me, __ATOMIC_RELAXED)) {
        return;
    }
    if (!__atomic_exchange_n(&ctx->notified, true, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t ret;

        do {
            ret = write(ctx->notify_fd, &one, sizeof(one));
        } while (ret < 0 && errno == EINTR);
        /* EAGAIN: the counter is saturated, the fd is readable anyway. */
    }
}

void aio_notify_accept(AioContext *ctx)
{
    if (__atomic_exchange_n(&ctx->notified, false, __ATOMIC_SEQ_CST)) {
        uint64_t value;
        ssize_t ret;

        do {
            ret = read(ctx->notify_fd, &value, sizeof(value));
        } while (ret < 0 && errno == EINTR);
    }
}

/* ---- current context ---- */

AioContext *aio_push_current(AioContext *ctx)
{
    AioContext *prev = current_ctx;

    current_ctx = ctx;
    return prev;
}

void aio_pop_current(AioContext *prev)
{
    current_ctx = prev;
}

/* ---- GSource ---- */

static int64_t aio_compute_timeout_ns(AioContext *ctx)
{
    if (aio_bh_pending(ctx)) {
        return 0;
    }
    return aio_timers_deadline_ns(ctx);
}

static gboolean aio_ctx_prepare(GSource *source, gint *timeout)
{
    AioContext *ctx = (AioContext *)source;
    int64_t ns;

    if (!ctx->gsource_notify_me) {
        __atomic_fetch_add(&ctx->notify_me, 1, __ATOMIC_SEQ_CST);
        ctx->gsource_notify_me = true;
    }
    ns = aio_compute_timeout_ns(ctx);
    if (ns < 0) {
        *timeout = -1;
    } else {
        *timeout = MIN(DIV_ROUND_UP(ns, SCALE_MS), (int64_t)INT_MAX);
    }
    return *timeout == 0;
}

static gboolean aio_ctx_check(GSource *source)
{
    AioContext *ctx = (AioContext *)source;

    if (ctx->gsource_notify_me) {
        __atomic_fetch_sub(&ctx->notify_me, 1, __ATOMIC_SEQ_CST);
        ctx->gsource_notify_me = false;
    }
    aio_notify_accept(ctx);
    return aio_bh_pending(ctx) || aio_handlers_ready(ctx) ||
           aio_timers_deadline_ns(ctx) == 0;
}

static gboolean aio_ctx_dispatch(GSource *source, GSourceFunc callback,
                                 gpointer user_data)
{
    AioContext *ctx = (AioContext *)source;
    AioContext *prev = aio_push_current(ctx);

    aio_bh_poll(ctx);
    aio_dispatch_handlers(ctx);
    aio_timers_run(ctx);
    aio_pop_current(prev);
    return G_SOURCE_CONTINUE;
}

static void aio_ctx_finalize(GSource *source)
{
    AioContext *ctx = (AioContext *)source;
    QEMUBH *bh;

    if (ctx->thread_pool) {
        thread_pool_free(ctx->thread_pool);
        ctx->thread_pool = NULL;
    }
    qemu_bh_delete(ctx->co_schedule_bh);
    ctx->co_schedule_bh = NULL;

    /* Pending one-shot BHs belong to us; reusable ones to their owners. */
    g_mutex_lock(&ctx->bh_lock);
    while ((bh = ctx->bh_head)) {
        bh_unlink_locked(ctx, bh);
        if (bh->oneshot) {
            g_free(bh);
        }
    }
    g_mutex_unlock(&ctx->bh_lock);
    g_mutex_clear(&ctx->bh_lock);

    aio_handlers_cleanup(ctx);
    aio_timers_unregister(ctx);
    close(ctx->notify_fd);
    if (ctx == main_ctx) {
        main_ctx = NULL;
    }
}

static GSourceFuncs aio_source_funcs = {
    .prepare = aio_ctx_prepare,
    .check = aio_ctx_check,
    .dispatch = aio_ctx_dispatch,
    .finalize = aio_ctx_finalize,
};

/* ---- coroutines ---- */

static void co_schedule_bh_cb(void *opaque)
{
    AioContext *ctx = opaque;
    Coroutine *co;

    g_mutex_lock(&ctx->bh_lock);
    co = ctx->scheduled_head;
    ctx->scheduled_head = ctx->scheduled_tail = NULL;
    g_mutex_unlock(&ctx->bh_lock);

    while (co) {
        Coroutine *next = co->co_scheduled_next;

        co->co_scheduled_next = NULL;
        __atomic_store_n(&co->scheduled, NULL, __ATOMIC_RELEASE);
        qemu_aio_coroutine_enter(ctx, co);
        co = next;
    }
}

void aio_co_schedule(AioContext *ctx, Coroutine *co)
{
    const char *old = __atomic_exchange_n(&co->scheduled, __func__,
                                          __ATOMIC_SEQ_CST);

    if (old) {
        fprintf(stderr, "%s: Co-routine was already scheduled in '%s'\n",
                __func__, old);
        abort();
    }
    trace(aio_co_schedule, "ctx %p co %p", ctx, co);
    g_mutex_lock(&ctx->bh_lock);
    co->co_scheduled_next = NULL;
    if (ctx->scheduled_tail) {
        ctx->scheduled_tail->co_scheduled_next = co;
    } else {
        ctx->scheduled_head = co;
    }
    ctx->scheduled_tail = co;
    g_mutex_unlock(&ctx->bh_lock);
    qemu_bh_schedule(ctx->co_schedule_bh);
}

void aio_co_enter(AioContext *ctx, Coroutine *co)
{
    if (!pthread_equal(ctx->home_thread, pthread_self())) {
        aio_co_schedule(ctx, co);
        return;
    }
    if (qemu_in_coroutine()) {
        qemu_coroutine_queue_wakeup(co);
        return;
    }
    qemu_aio_coroutine_enter(ctx, co);
}

void aio_co_wake(Coroutine *co)
{
    AioContext *ctx = co->ctx ? co->ctx : qemu_get_current_aio_context();

    aio_co_enter(ctx, co);
}

/* ---- contexts ---- */

AioContext *aio_context_new(Error **errp)
{
    AioContext *ctx;
    int fd;

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to initialize event notifier");
        return NULL;
    }
    ctx = (AioContext *)g_source_new(&aio_source_funcs, sizeof(AioContext));
    g_source_set_name(&ctx->source, "aio-context");
    /* Make the GSource usable from nested aio_poll()s of its callbacks. */
    g_source_set_can_recurse(&ctx->source, true);
    ctx->home_thread = pthread_self();
    g_mutex_init(&ctx->bh_lock);
    ctx->notify_fd = fd;
    ctx->notify_pfd.fd = fd;
    ctx->notify_pfd.events = G_IO_IN;
    g_source_add_poll(&ctx->source, &ctx->notify_pfd);
    aio_handlers_init(ctx);
    aio_timers_register(ctx);
    ctx->co_schedule_bh = aio_bh_new(ctx, co_schedule_bh_cb, ctx);
    return ctx;
}

void aio_context_ref(AioContext *ctx)
{
    g_source_ref(&ctx->source);
}

void aio_context_unref(AioContext *ctx)
{
    g_source_unref(&ctx->source);
}

GSource *aio_get_g_source(AioContext *ctx)
{
    g_source_ref(&ctx->source);
    return &ctx->source;
}

void qemu_init_main_loop(void)
{
    if (main_ctx) {
        return;
    }
    main_ctx = aio_context_new(&error_abort);
    g_source_attach(&main_ctx->source, NULL);
}

AioContext *qemu_get_aio_context(void)
{
    if (!main_ctx) {
        qemu_init_main_loop();
    }
    return main_ctx;
}

AioContext *qemu_get_current_aio_context(void)
{
    if (qemu_in_coroutine()) {
        Coroutine *self = qemu_coroutine_self();

        if (self->ctx) {
            return self->ctx;
        }
    }
    if (current_ctx) {
        return current_ctx;
    }
    return qemu_get_aio_context();
}
