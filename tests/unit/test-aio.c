/*
 * Unit tests for the AioContext event loop: bottom halves, notification
 * across threads, timers (manual virtual clock and real time), fd handlers
 * and the GSource view.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qemu/coroutine.h"
#include <check.h>

static AioContext *ctx;
static char log_buf[512];

static void log_ev(const char *ev)
{
    if (log_buf[0]) {
        g_strlcat(log_buf, " ", sizeof(log_buf));
    }
    g_strlcat(log_buf, ev, sizeof(log_buf));
}

static void setup(void)
{
    ctx = aio_context_new(&error_abort);
    log_buf[0] = '\0';
}

static void teardown(void)
{
    while (aio_poll(ctx, false)) {
        /* drain */
    }
    aio_context_unref(ctx);
    ctx = NULL;
    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, false);
}

/* ---- bottom halves ---- */

static void bh_log(void *opaque)
{
    log_ev(opaque);
}

START_TEST(test_bh_order)
{
    QEMUBH *a = aio_bh_new(ctx, bh_log, (void *)"a");
    QEMUBH *b = aio_bh_new(ctx, bh_log, (void *)"b");
    QEMUBH *c = aio_bh_new(ctx, bh_log, (void *)"c");

    ck_assert(!aio_poll(ctx, false));
    qemu_bh_schedule(c);
    qemu_bh_schedule(a);
    aio_bh_schedule_oneshot(ctx, bh_log, (void *)"o");
    qemu_bh_schedule(b);
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "c a o b");
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_delete(a);
    qemu_bh_delete(b);
    qemu_bh_delete(c);
}
END_TEST

START_TEST(test_bh_schedule_idempotent)
{
    QEMUBH *a = aio_bh_new(ctx, bh_log, (void *)"a");
    QEMUBH *b = aio_bh_new(ctx, bh_log, (void *)"b");

    qemu_bh_schedule(a);
    qemu_bh_schedule(b);
    qemu_bh_schedule(a);    /* pending: keeps its place, runs once */
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "a b");
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_schedule(a);    /* reusable after running */
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "a b a");
    qemu_bh_delete(a);
    qemu_bh_delete(b);
}
END_TEST

START_TEST(test_bh_cancel_delete)
{
    QEMUBH *a = aio_bh_new(ctx, bh_log, (void *)"a");
    QEMUBH *b = aio_bh_new(ctx, bh_log, (void *)"b");
    QEMUBH *c = aio_bh_new(ctx, bh_log, (void *)"c");

    qemu_bh_schedule(a);
    qemu_bh_schedule(b);
    qemu_bh_schedule(c);
    qemu_bh_cancel(b);
    qemu_bh_delete(c);
    qemu_bh_cancel(b);      /* cancelling an idle BH is a no-op */
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "a");
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_delete(NULL);
    qemu_bh_delete(a);
    qemu_bh_delete(b);
}
END_TEST

typedef struct BhSelf {
    QEMUBH *bh;
    QEMUBH *victim;
    int runs;
    bool reschedule;
} BhSelf;

static void bh_delete_self(void *opaque)
{
    BhSelf *s = opaque;

    s->runs++;
    qemu_bh_delete(s->bh);
    qemu_bh_delete(s->victim);      /* pending later in the same pass */
}

START_TEST(test_bh_delete_in_callback)
{
    BhSelf s = { 0 };

    s.bh = aio_bh_new(ctx, bh_delete_self, &s);
    s.victim = aio_bh_new(ctx, bh_log, (void *)"victim");
    qemu_bh_schedule(s.bh);
    qemu_bh_schedule(s.victim);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.runs, 1);
    ck_assert_str_eq(log_buf, "");
    ck_assert(!aio_poll(ctx, false));
}
END_TEST

static void bh_reschedule(void *opaque)
{
    BhSelf *s = opaque;

    s->runs++;
    log_ev("r");
    if (s->reschedule) {
        qemu_bh_schedule(s->bh);
    }
}

START_TEST(test_bh_scheduled_in_dispatch_runs_next_time)
{
    BhSelf s = { .reschedule = true };
    QEMUBH *other = aio_bh_new(ctx, bh_log, (void *)"x");

    s.bh = aio_bh_new(ctx, bh_reschedule, &s);
    qemu_bh_schedule(s.bh);
    qemu_bh_schedule(other);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.runs, 1);        /* not again in the same pass */
    ck_assert_str_eq(log_buf, "r x");
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.runs, 2);
    s.reschedule = false;
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.runs, 3);
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_delete(s.bh);
    qemu_bh_delete(other);
}
END_TEST

static void bh_count(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_bh_oneshot)
{
    int n = 0;

    for (int i = 0; i < 10; i++) {
        aio_bh_schedule_oneshot(ctx, bh_count, &n);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n, 10);
    ck_assert(!aio_poll(ctx, false));
}
END_TEST

START_TEST(test_bh_oneshot_freed_with_context)
{
    static int n;
    AioContext *c2 = aio_context_new(&error_abort);

    /* A pending one-shot is freed with its context (ASan/LSan check). */
    aio_bh_schedule_oneshot(c2, bh_count, &n);
    aio_context_unref(c2);
    ck_assert_int_eq(n, 0);
}
END_TEST

typedef struct ThreadArg {
    QEMUBH *bh;
    AioContext *ctx;
    int *counter;
    Coroutine *co;
} ThreadArg;

static gpointer thread_schedule_bh(gpointer opaque)
{
    ThreadArg *t = opaque;

    g_usleep(20 * 1000);    /* let the main thread block first */
    qemu_bh_schedule(t->bh);
    return NULL;
}

static gpointer thread_schedule_oneshot(gpointer opaque)
{
    ThreadArg *t = opaque;

    g_usleep(20 * 1000);
    aio_bh_schedule_oneshot(t->ctx, bh_count, t->counter);
    return NULL;
}

START_TEST(test_bh_from_thread_wakes_poll)
{
    int n = 0;
    ThreadArg t = { .ctx = ctx, .counter = &n };
    GThread *th;

    t.bh = aio_bh_new(ctx, bh_count, &n);
    th = g_thread_new("bh", thread_schedule_bh, &t);
    ck_assert(aio_poll(ctx, true));     /* no fds, no timers: only the BH */
    ck_assert_int_eq(n, 1);
    g_thread_join(th);

    th = g_thread_new("oneshot", thread_schedule_oneshot, &t);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(n, 2);
    g_thread_join(th);
    qemu_bh_delete(t.bh);
}
END_TEST

/* Many threads hammering qemu_bh_schedule while the main thread polls. */
static gpointer thread_schedule_many(gpointer opaque)
{
    ThreadArg *t = opaque;

    for (int i = 0; i < 1000; i++) {
        aio_bh_schedule_oneshot(t->ctx, bh_count, t->counter);
    }
    return NULL;
}

START_TEST(test_bh_threads_stress)
{
    enum { T = 4 };
    int n = 0;
    ThreadArg t = { .ctx = ctx, .counter = &n };
    GThread *th[T];

    for (int i = 0; i < T; i++) {
        th[i] = g_thread_new("stress", thread_schedule_many, &t);
    }
    while (n < T * 1000) {
        aio_poll(ctx, true);
    }
    for (int i = 0; i < T; i++) {
        g_thread_join(th[i]);
    }
    ck_assert_int_eq(n, T * 1000);
}
END_TEST

/* ---- timers ---- */

typedef struct TimerRec {
    const char *name;
    int64_t fired_at;
    int fired;
    QEMUTimer *t;
    int64_t period;     /* re-arm in the callback if > 0 */
} TimerRec;

static void timer_cb(void *opaque)
{
    TimerRec *r = opaque;

    r->fired_at = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    r->fired++;
    log_ev(r->name);
    if (r->period > 0) {
        timer_mod(r->t, r->fired_at + r->period);
    }
}

START_TEST(test_timers_deadline_order)
{
    TimerRec a = { "a" }, b = { "b" }, c = { "c" }, d = { "d" };
    int64_t t0;

    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, true);
    /* Align to a microsecond so the SCALE_US timer is exact. */
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL,
                       1000 - qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) % 1000);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    a.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_cb, &a);
    b.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_cb, &b);
    c.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_US, timer_cb, &c);
    d.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_cb, &d);
    timer_mod(a.t, t0 + 3000);
    timer_mod(b.t, t0 + 1000);
    ck_assert_int_eq(t0 % 1000, 0);
    timer_mod(c.t, t0 / 1000 + 2);      /* 2 us */
    timer_mod(d.t, t0 + 1000);          /* same deadline as b: after b */
    ck_assert(timer_pending(c.t));
    ck_assert_int_eq(timer_expire_time_ns(c.t), t0 + 2000);

    ck_assert(!aio_poll(ctx, false));   /* manual clock: nothing expired */
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 10000);
    ck_assert_str_eq(log_buf, "b d c a");
    ck_assert_int_eq(b.fired_at, t0 + 1000);
    ck_assert_int_eq(d.fired_at, t0 + 1000);
    ck_assert_int_eq(c.fired_at, t0 + 2000);
    ck_assert_int_eq(a.fired_at, t0 + 3000);
    ck_assert(!timer_pending(a.t));
    ck_assert_int_eq(timer_expire_time_ns(a.t), -1);
    timer_free(a.t);
    timer_free(b.t);
    timer_free(c.t);
    timer_free(d.t);
}
END_TEST

START_TEST(test_timer_mod_rearm_del)
{
    TimerRec a = { "a" };
    int64_t t0;

    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, true);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    a.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_cb, &a);
    timer_mod(a.t, t0 + 100);
    timer_mod(a.t, t0 + 200);           /* re-arm later */
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 150);
    ck_assert_int_eq(a.fired, 0);
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 50);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_int_eq(a.fired_at, t0 + 200);

    timer_mod(a.t, t0 + 300);
    timer_del(a.t);
    timer_del(a.t);                     /* idempotent */
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 1000);
    ck_assert_int_eq(a.fired, 1);

    /* anticipate: only moves the deadline earlier */
    t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    timer_mod_anticipate(a.t, t0 + 500);
    timer_mod_anticipate(a.t, t0 + 900);
    ck_assert_int_eq(timer_expire_time_ns(a.t), t0 + 500);
    timer_mod_anticipate(a.t, t0 + 100);
    ck_assert_int_eq(timer_expire_time_ns(a.t), t0 + 100);

    /* An expired timer fires at the next aio_poll even on a manual clock */
    timer_mod(a.t, t0 - 5);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(a.fired, 2);
    timer_free(a.t);
}
END_TEST

START_TEST(test_timer_periodic_rearm_in_callback)
{
    TimerRec a = { "p", .period = 100 };
    int64_t t0;

    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, true);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    a.t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_cb, &a);
    timer_mod(a.t, t0 + 100);
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 1050);
    ck_assert_int_eq(a.fired, 10);
    ck_assert_int_eq(a.fired_at, t0 + 1000);
    ck_assert_int_eq(timer_expire_time_ns(a.t), t0 + 1100);
    timer_free(a.t);
}
END_TEST

typedef struct TimerDel {
    QEMUTimer *self;
    QEMUTimer *other;
    int fired;
} TimerDel;

static void timer_del_cb(void *opaque)
{
    TimerDel *d = opaque;

    d->fired++;
    timer_free(d->self);
    timer_del(d->other);
}

START_TEST(test_timer_delete_in_callback)
{
    TimerDel d = { 0 };
    TimerRec o = { "o" };
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    d.self = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, timer_del_cb,
                           &d);
    o.t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, timer_cb, &o);
    d.other = o.t;
    timer_mod(d.self, now - 10);
    timer_mod(o.t, now - 5);            /* expired too, but deleted first */
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(d.fired, 1);
    ck_assert_int_eq(o.fired, 0);
    ck_assert(!timer_pending(o.t));
    timer_free(o.t);
}
END_TEST

static void rt_timer_cb(void *opaque)
{
    log_ev(opaque);
}

START_TEST(test_timers_realtime_blocking)
{
    QEMUTimer *t1, *t2, *t3;
    int64_t start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    t1 = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, rt_timer_cb,
                       (void *)"3ms");
    t2 = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_US, rt_timer_cb,
                       (void *)"1ms");
    t3 = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, rt_timer_cb,
                       (void *)"2ms");
    timer_mod(t1, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 3);
    timer_mod(t2, qemu_clock_get_us(QEMU_CLOCK_REALTIME) + 1000);
    timer_mod(t3, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 2 * SCALE_MS);
    /* A blocking poll sleeps until the next deadline. */
    while (timer_pending(t1) || timer_pending(t2) || timer_pending(t3)) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_str_eq(log_buf, "1ms 2ms 3ms");
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - start,
                     2 * SCALE_MS);
    timer_free(t1);
    timer_free(t2);
    timer_free(t3);
    ck_assert_int_gt(qemu_clock_get_wall_ns(), 1600000000LL * SCALE_MS * 1000);
}
END_TEST

/* ---- fd handlers ---- */

typedef struct PipeData {
    int fds[2];
    int reads;
    int writes;
    char last;
    bool remove_on_read;
    AioContext *ctx;
} PipeData;

static void pipe_read(void *opaque)
{
    PipeData *p = opaque;
    char c;

    if (read(p->fds[0], &c, 1) == 1) {
        p->last = c;
    }
    p->reads++;
    if (p->remove_on_read) {
        aio_set_fd_handler(p->ctx, p->fds[0], NULL, NULL, NULL);
    }
}

static void pipe_write(void *opaque)
{
    PipeData *p = opaque;

    p->writes++;
    aio_set_fd_handler(p->ctx, p->fds[1], NULL, NULL, NULL);
}

static void pipe_open(PipeData *p)
{
    ck_assert_int_eq(pipe2(p->fds, O_CLOEXEC | O_NONBLOCK), 0);
    p->ctx = ctx;
}

static void pipe_close(PipeData *p)
{
    close(p->fds[0]);
    close(p->fds[1]);
}

START_TEST(test_fd_read_write)
{
    PipeData p = { 0 };

    pipe_open(&p);
    aio_set_fd_handler(ctx, p.fds[0], pipe_read, NULL, &p);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 0);
    ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 1);
    ck_assert_int_eq(p.last, 'x');
    ck_assert(!aio_poll(ctx, false));   /* drained: level-triggered off */

    /* Blocking poll wakes up for the fd. */
    ck_assert_int_eq(write(p.fds[1], "y", 1), 1);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(p.last, 'y');

    /* Write readiness: a pipe is writable at once; handler removes itself */
    aio_set_fd_handler(ctx, p.fds[1], NULL, pipe_write, &p);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(p.writes, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(p.writes, 1);

    /* Replacing the registration keeps one handler per fd. */
    aio_set_fd_handler(ctx, p.fds[0], pipe_read, NULL, &p);
    ck_assert_int_eq(write(p.fds[1], "z", 1), 1);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 3);
    aio_set_fd_handler(ctx, p.fds[0], NULL, NULL, NULL);
    ck_assert_int_eq(write(p.fds[1], "w", 1), 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 3);
    pipe_close(&p);
}
END_TEST

START_TEST(test_fd_remove_in_callback)
{
    PipeData p = { .remove_on_read = true };

    pipe_open(&p);
    aio_set_fd_handler(ctx, p.fds[0], pipe_read, NULL, &p);
    ck_assert_int_eq(write(p.fds[1], "ab", 2), 2);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 1);
    /* Still readable ('b'), but unregistered. */
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(p.reads, 1);
    pipe_close(&p);
}
END_TEST

typedef struct PairData {
    PipeData a, b;
    bool a_removes_b;
} PairData;

static void pair_read_a(void *opaque)
{
    PairData *d = opaque;
    char c;

    ck_assert_int_eq(read(d->a.fds[0], &c, 1), 1);
    d->a.reads++;
    /* Remove the other handler (ready in this same pass) and ourselves. */
    aio_set_fd_handler(d->a.ctx, d->b.fds[0], NULL, NULL, NULL);
    aio_set_fd_handler(d->a.ctx, d->a.fds[0], NULL, NULL, NULL);
}

static void pair_read_b(void *opaque)
{
    PairData *d = opaque;

    d->b.reads++;
}

START_TEST(test_fd_remove_other_in_callback)
{
    PairData d = { 0 };

    pipe_open(&d.a);
    pipe_open(&d.b);
    aio_set_fd_handler(ctx, d.a.fds[0], pair_read_a, NULL, &d);
    aio_set_fd_handler(ctx, d.b.fds[0], pair_read_b, NULL, &d);
    ck_assert_int_eq(write(d.a.fds[1], "1", 1), 1);
    ck_assert_int_eq(write(d.b.fds[1], "2", 1), 1);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(d.a.reads, 1);
    ck_assert_int_eq(d.b.reads, 0);
    ck_assert(!aio_poll(ctx, false));
    /* Re-registering after removal works. */
    aio_set_fd_handler(ctx, d.b.fds[0], pair_read_b, NULL, &d);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(d.b.reads, 1);
    aio_set_fd_handler(ctx, d.b.fds[0], NULL, NULL, NULL);
    pipe_close(&d.a);
    pipe_close(&d.b);
}
END_TEST

/* ---- coroutines and the loop ---- */

static void coroutine_fn co_log_after_yield(void *opaque)
{
    qemu_coroutine_yield();
    ck_assert_ptr_eq(qemu_get_current_aio_context(), ctx);
    log_ev(opaque);
}

static gpointer thread_co_schedule(gpointer opaque)
{
    ThreadArg *t = opaque;

    g_usleep(10 * 1000);
    aio_co_wake(t->co);     /* from another thread: scheduled in ctx */
    return NULL;
}

START_TEST(test_co_schedule)
{
    Coroutine *a = qemu_coroutine_create(co_log_after_yield, (void *)"a");
    Coroutine *b = qemu_coroutine_create(co_log_after_yield, (void *)"b");
    Coroutine *c = qemu_coroutine_create(co_log_after_yield, (void *)"c");
    ThreadArg t = { 0 };
    GThread *th;

    qemu_aio_coroutine_enter(ctx, a);
    qemu_aio_coroutine_enter(ctx, b);
    qemu_aio_coroutine_enter(ctx, c);
    aio_co_schedule(ctx, b);
    aio_co_schedule(ctx, a);
    ck_assert_str_eq(log_buf, "");
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "b a");

    t.co = c;
    th = g_thread_new("co", thread_co_schedule, &t);
    ck_assert(aio_poll(ctx, true));
    ck_assert_str_eq(log_buf, "b a c");
    g_thread_join(th);
}
END_TEST

/* ---- GSource view ---- */

START_TEST(test_gsource_main_loop)
{
    AioContext *main_ctx;
    QEMUBH *bh;
    QEMUTimer *t;
    PipeData p = { 0 };
    int n = 0;

    qemu_init_main_loop();
    qemu_init_main_loop();          /* idempotent */
    main_ctx = qemu_get_aio_context();
    ck_assert_ptr_eq(qemu_get_current_aio_context(), main_ctx);
    ck_assert_ptr_eq(g_source_get_context(aio_get_g_source(main_ctx)),
                     g_main_context_default());

    bh = aio_bh_new(main_ctx, bh_count, &n);
    qemu_bh_schedule(bh);
    ck_assert(g_main_context_iteration(NULL, false));
    ck_assert_int_eq(n, 1);

    t = timer_new_ms(QEMU_CLOCK_REALTIME, bh_count, &n);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    while (timer_pending(t)) {
        g_main_context_iteration(NULL, true);
    }
    ck_assert_int_eq(n, 2);

    pipe_open(&p);
    p.ctx = main_ctx;
    aio_set_fd_handler(main_ctx, p.fds[0], pipe_read, NULL, &p);
    ck_assert_int_eq(write(p.fds[1], "g", 1), 1);
    while (!p.reads) {
        g_main_context_iteration(NULL, true);
    }
    ck_assert_int_eq(p.last, 'g');
    aio_set_fd_handler(main_ctx, p.fds[0], NULL, NULL, NULL);
    pipe_close(&p);

    /* The same context can still be driven with aio_poll(). */
    qemu_bh_schedule(bh);
    ck_assert(aio_poll(main_ctx, false));
    ck_assert_int_eq(n, 3);
    qemu_bh_delete(bh);
    timer_free(t);
}
END_TEST

static void coroutine_fn co_yield_to_loop_twice(void *opaque)
{
    qemu_co_yield_to_loop();
    qemu_co_yield_to_loop();
    (*(int *)opaque)++;
}

/* A callback dispatched by GLib runs a nested aio_poll() loop. */
static void bh_run_sync(void *opaque)
{
    qemu_co_run_sync(co_yield_to_loop_twice, opaque);
}

START_TEST(test_gsource_nested_aio_poll)
{
    int n = 0;

    qemu_init_main_loop();
    aio_bh_schedule_oneshot(qemu_get_aio_context(), bh_run_sync, &n);
    ck_assert(g_main_context_iteration(NULL, false));
    ck_assert_int_eq(n, 1);
}
END_TEST

static gpointer thread_bh_to_main(gpointer opaque)
{
    ThreadArg *t = opaque;

    g_usleep(20 * 1000);
    qemu_bh_schedule(t->bh);
    return NULL;
}

START_TEST(test_gsource_woken_from_thread)
{
    int n = 0;
    ThreadArg t;
    GThread *th;

    qemu_init_main_loop();
    t.bh = aio_bh_new(qemu_get_aio_context(), bh_count, &n);
    th = g_thread_new("gsrc", thread_bh_to_main, &t);
    while (!n) {
        g_main_context_iteration(NULL, true);
    }
    g_thread_join(th);
    qemu_bh_delete(t.bh);
}
END_TEST

static Suite *aio_suite(void)
{
    Suite *s = suite_create("aio");
    TCase *tb = tcase_create("bh");
    TCase *tt = tcase_create("timers");
    TCase *tf = tcase_create("fd");
    TCase *tg = tcase_create("gsource");

    tcase_add_checked_fixture(tb, setup, teardown);
    tcase_add_test(tb, test_bh_order);
    tcase_add_test(tb, test_bh_schedule_idempotent);
    tcase_add_test(tb, test_bh_cancel_delete);
    tcase_add_test(tb, test_bh_delete_in_callback);
    tcase_add_test(tb, test_bh_scheduled_in_dispatch_runs_next_time);
    tcase_add_test(tb, test_bh_oneshot);
    tcase_add_test(tb, test_bh_oneshot_freed_with_context);
    tcase_add_test(tb, test_bh_from_thread_wakes_poll);
    tcase_add_test(tb, test_bh_threads_stress);
    tcase_add_test(tb, test_co_schedule);
    suite_add_tcase(s, tb);

    tcase_add_checked_fixture(tt, setup, teardown);
    tcase_add_test(tt, test_timers_deadline_order);
    tcase_add_test(tt, test_timer_mod_rearm_del);
    tcase_add_test(tt, test_timer_periodic_rearm_in_callback);
    tcase_add_test(tt, test_timer_delete_in_callback);
    tcase_add_test(tt, test_timers_realtime_blocking);
    suite_add_tcase(s, tt);

    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_add_test(tf, test_fd_read_write);
    tcase_add_test(tf, test_fd_remove_in_callback);
    tcase_add_test(tf, test_fd_remove_other_in_callback);
    suite_add_tcase(s, tf);

    tcase_add_checked_fixture(tg, setup, teardown);
    tcase_add_test(tg, test_gsource_main_loop);
    tcase_add_test(tg, test_gsource_woken_from_thread);
    tcase_add_test(tg, test_gsource_nested_aio_poll);
    suite_add_tcase(s, tg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(aio_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
