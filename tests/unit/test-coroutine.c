/*
 * Unit tests for coroutines (util/coroutine-ucontext.c, qemu-coroutine.c),
 * the coroutine locks and sleeps.  The event loop is driven with aio_poll()
 * and the manual virtual clock; nothing here sleeps for real.
 */
#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include <check.h>

/* ---- an event log to assert orderings ---- */

static char log_buf[512];

static void log_reset(void)
{
    log_buf[0] = '\0';
}

static void log_ev(const char *ev)
{
    if (log_buf[0]) {
        g_strlcat(log_buf, " ", sizeof(log_buf));
    }
    g_strlcat(log_buf, ev, sizeof(log_buf));
}

static AioContext *ctx;

static void setup(void)
{
    qemu_init_main_loop();
    ctx = qemu_get_aio_context();
    log_reset();
}

static void teardown(void)
{
    while (aio_poll(ctx, false)) {
        /* drain */
    }
    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, false);
}

/* ---- basics ---- */

static void coroutine_fn co_yield_twice(void *opaque)
{
    log_ev("a1");
    qemu_coroutine_yield();
    log_ev("a2");
    qemu_coroutine_yield();
    log_ev("a3");
}

START_TEST(test_enter_yield_order)
{
    Coroutine *co = qemu_coroutine_create(co_yield_twice, NULL);

    log_ev("m1");
    qemu_coroutine_enter(co);
    log_ev("m2");
    ck_assert(!qemu_coroutine_entered(co));
    qemu_coroutine_enter(co);
    log_ev("m3");
    qemu_coroutine_enter(co);   /* terminates */
    log_ev("m4");
    ck_assert_str_eq(log_buf, "m1 a1 m2 a2 m3 a3 m4");
}
END_TEST

typedef struct NestData {
    Coroutine *outer;
    Coroutine *inner;
} NestData;

static void coroutine_fn co_inner(void *opaque)
{
    NestData *d = opaque;

    ck_assert_ptr_eq(qemu_coroutine_self(), d->inner);
    ck_assert(qemu_coroutine_entered(d->outer));
    log_ev("i1");
    qemu_coroutine_yield();     /* back to outer */
    log_ev("i2");
}

static void coroutine_fn co_outer(void *opaque)
{
    NestData *d = opaque;

    log_ev("o1");
    d->inner = qemu_coroutine_create(co_inner, d);
    qemu_coroutine_enter(d->inner);
    ck_assert_ptr_eq(qemu_coroutine_self(), d->outer);
    log_ev("o2");
    qemu_coroutine_enter(d->inner);     /* inner terminates */
    log_ev("o3");
}

START_TEST(test_nesting)
{
    NestData d = { 0 };

    d.outer = qemu_coroutine_create(co_outer, &d);
    qemu_coroutine_enter(d.outer);
    ck_assert_str_eq(log_buf, "o1 i1 o2 i2 o3");
}
END_TEST

static void coroutine_fn co_square(void *opaque)
{
    int *v = opaque;

    *v = *v * *v;
}

START_TEST(test_return_through_opaque)
{
    int v = 12;

    qemu_coroutine_enter(qemu_coroutine_create(co_square, &v));
    ck_assert_int_eq(v, 144);
}
END_TEST

static void coroutine_fn co_check_self(void *opaque)
{
    Coroutine **self = opaque;

    ck_assert(qemu_in_coroutine());
    ck_assert_ptr_eq(qemu_coroutine_self(), *self);
    ck_assert(qemu_coroutine_entered(*self));
    ck_assert_ptr_eq(qemu_coroutine_get_aio_context(*self), ctx);
    ck_assert_ptr_eq(qemu_get_current_aio_context(), ctx);
}

START_TEST(test_self_in_coroutine)
{
    Coroutine *leader = qemu_coroutine_self();
    Coroutine *co;

    ck_assert(!qemu_in_coroutine());
    ck_assert_ptr_nonnull(leader);
    ck_assert_ptr_eq(qemu_coroutine_self(), leader);
    co = qemu_coroutine_create(co_check_self, &co);
    ck_assert_ptr_ne(co, leader);
    qemu_coroutine_enter(co);
    ck_assert(!qemu_in_coroutine());
    ck_assert_ptr_eq(qemu_coroutine_self(), leader);
}
END_TEST

/* ---- pool ---- */

static void coroutine_fn co_yield_once(void *opaque)
{
    int *count = opaque;

    qemu_coroutine_yield();
    (*count)++;
}

START_TEST(test_pool_bounded_and_reused)
{
    enum { N = COROUTINE_POOL_MAX + 100 };
    Coroutine **cos = g_new(Coroutine *, N);
    unsigned before = qemu_coroutine_pool_size();
    Coroutine *last, *again;
    int count = 0;

    /* All alive at once: the pool is drained, then new ones are made. */
    for (int i = 0; i < N; i++) {
        cos[i] = qemu_coroutine_create(co_yield_once, &count);
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_uint_eq(qemu_coroutine_pool_size(), 0);
    for (int i = 0; i < N; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_int_eq(count, N);
    /* Only COROUTINE_POOL_MAX were kept, the rest freed. */
    ck_assert_uint_eq(qemu_coroutine_pool_size(), COROUTINE_POOL_MAX);
    ck_assert_uint_ge(COROUTINE_POOL_MAX, before);

    /* Creating pops the most recently released coroutine. */
    last = cos[COROUTINE_POOL_MAX - 1];
    again = qemu_coroutine_create(co_yield_once, &count);
    ck_assert_ptr_eq(again, last);
    ck_assert_uint_eq(qemu_coroutine_pool_size(), COROUTINE_POOL_MAX - 1);
    qemu_coroutine_enter(again);
    qemu_coroutine_enter(again);
    ck_assert_int_eq(count, N + 1);
    ck_assert_uint_eq(qemu_coroutine_pool_size(), COROUTINE_POOL_MAX);
    g_free(cos);
}
END_TEST

static void coroutine_fn co_count(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_pool_many_cycles)
{
    int count = 0;
    Coroutine *first = qemu_coroutine_create(co_count, &count);

    qemu_coroutine_enter(first);
    /* 100k create/enter cycles reuse the same pooled coroutine. */
    for (int i = 0; i < 100000; i++) {
        Coroutine *co = qemu_coroutine_create(co_count, &count);

        ck_assert_ptr_eq(co, first);
        qemu_coroutine_enter(co);
    }
    ck_assert_int_eq(count, 100001);
    ck_assert_uint_eq(qemu_coroutine_pool_size(), 1);
}
END_TEST

/* Another thread has its own leader, current coroutine and pool. */
static gpointer thread_run_coroutines(gpointer opaque)
{
    Coroutine *main_self = opaque;
    int count = 0;
    Coroutine *cos[8];

    ck_assert(!qemu_in_coroutine());
    ck_assert_ptr_ne(qemu_coroutine_self(), main_self);
    ck_assert_uint_eq(qemu_coroutine_pool_size(), 0);
    for (int i = 0; i < 8; i++) {
        cos[i] = qemu_coroutine_create(co_yield_once, &count);
        qemu_coroutine_enter(cos[i]);
    }
    for (int i = 0; i < 8; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_int_eq(count, 8);
    ck_assert_uint_eq(qemu_coroutine_pool_size(), 8);
    /* The pool is freed when the thread exits (LSan checks). */
    return GINT_TO_POINTER(1);
}

static void coroutine_fn co_spawn_thread(void *opaque)
{
    GThread *th;

    /* While we are in a coroutine, the other thread is not. */
    th = g_thread_new("co", thread_run_coroutines, qemu_coroutine_self());
    ck_assert_int_eq(GPOINTER_TO_INT(g_thread_join(th)), 1);
    ck_assert(qemu_in_coroutine());
}

START_TEST(test_thread_local_state)
{
    unsigned pool_before = qemu_coroutine_pool_size();

    qemu_coroutine_enter(qemu_coroutine_create(co_spawn_thread, NULL));
    ck_assert_uint_eq(qemu_coroutine_pool_size(),
                      pool_before ? pool_before : 1);
}
END_TEST

/* A coroutine with a large buffer on its stack (block drivers do this). */
static void coroutine_fn co_big_stack(void *opaque)
{
    char buf[512 * KiB];
    volatile char *p = buf;

    memset(buf, 0x5a, sizeof(buf));
    qemu_coroutine_yield();
    *(int *)opaque = p[0] + p[sizeof(buf) - 1];
}

START_TEST(test_big_stack_buffer)
{
    int v = 0;
    Coroutine *co = qemu_coroutine_create(co_big_stack, &v);

    qemu_coroutine_enter(co);
    qemu_coroutine_enter(co);
    ck_assert_int_eq(v, 2 * 0x5a);
}
END_TEST

/* ---- misuse aborts ---- */

static void coroutine_fn co_enter_self(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_self());
}

START_TEST(test_enter_running_aborts)
{
    qemu_coroutine_enter(qemu_coroutine_create(co_enter_self, NULL));
}
END_TEST

static void coroutine_fn co_enter_caller(void *opaque)
{
    qemu_coroutine_enter(opaque);   /* our caller is running */
}

static void coroutine_fn co_enter_child(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(co_enter_caller,
                                               qemu_coroutine_self()));
}

START_TEST(test_enter_caller_aborts)
{
    qemu_coroutine_enter(qemu_coroutine_create(co_enter_child, NULL));
}
END_TEST

START_TEST(test_yield_outside_aborts)
{
    qemu_coroutine_yield();
}
END_TEST

/* ---- aio_co_wake and the wakeup queue ---- */

typedef struct WakeData {
    Coroutine *a, *b, *c;
} WakeData;

static void coroutine_fn co_wakee(void *opaque)
{
    const char *name = opaque;
    g_autofree char *ev = g_strdup_printf("%s-wait", name);

    log_ev(ev);
    qemu_coroutine_yield();
    g_free(ev);
    ev = g_strdup_printf("%s-woken", name);
    log_ev(ev);
}

static void coroutine_fn co_waker(void *opaque)
{
    WakeData *d = opaque;

    aio_co_wake(d->b);
    log_ev("a-woke-b");
    aio_co_wake(d->c);
    log_ev("a-woke-c");
    /* Neither may have run yet: wake-ups are deferred, not nested. */
    ck_assert(!qemu_coroutine_entered(d->b));
    qemu_coroutine_yield();
    log_ev("a-end");
}

START_TEST(test_co_wake_deferred)
{
    WakeData d;

    d.b = qemu_coroutine_create(co_wakee, (void *)"b");
    d.c = qemu_coroutine_create(co_wakee, (void *)"c");
    qemu_coroutine_enter(d.b);
    qemu_coroutine_enter(d.c);
    d.a = qemu_coroutine_create(co_waker, &d);
    qemu_coroutine_enter(d.a);
    log_ev("main");
    ck_assert_str_eq(log_buf, "b-wait c-wait a-woke-b a-woke-c b-woken "
                     "c-woken main");
    /* Outside coroutine context aio_co_wake enters right away. */
    aio_co_wake(d.a);
    ck_assert_str_eq(log_buf, "b-wait c-wait a-woke-b a-woke-c b-woken "
                     "c-woken main a-end");
}
END_TEST

/* A coroutine that wakes another and terminates: the wakee still runs. */
static void coroutine_fn co_wake_and_die(void *opaque)
{
    aio_co_wake(opaque);
    log_ev("dying");
}

START_TEST(test_co_wake_from_terminating)
{
    Coroutine *b = qemu_coroutine_create(co_wakee, (void *)"b");

    qemu_coroutine_enter(b);
    qemu_coroutine_enter(qemu_coroutine_create(co_wake_and_die, b));
    ck_assert_str_eq(log_buf, "b-wait dying b-woken");
}
END_TEST

START_TEST(test_enter_if_inactive)
{
    Coroutine *b = qemu_coroutine_create(co_wakee, (void *)"b");

    qemu_coroutine_enter_if_inactive(b);
    ck_assert_str_eq(log_buf, "b-wait");
    aio_co_schedule(ctx, b);
    qemu_coroutine_enter_if_inactive(b);    /* scheduled: not entered */
    ck_assert_str_eq(log_buf, "b-wait");
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "b-wait b-woken");
}
END_TEST

static void coroutine_fn co_yield_to_loop(void *opaque)
{
    log_ev("before");
    qemu_co_yield_to_loop();
    log_ev("after");
}

START_TEST(test_yield_to_loop)
{
    qemu_coroutine_enter(qemu_coroutine_create(co_yield_to_loop, NULL));
    ck_assert_str_eq(log_buf, "before");
    log_ev("main");
    ck_assert(aio_poll(ctx, false));
    ck_assert_str_eq(log_buf, "before main after");
    ck_assert(!aio_poll(ctx, false));
}
END_TEST

START_TEST(test_schedule_twice_aborts)
{
    Coroutine *b = qemu_coroutine_create(co_wakee, (void *)"b");

    qemu_coroutine_enter(b);
    aio_co_schedule(ctx, b);
    aio_co_schedule(ctx, b);
}
END_TEST

static void coroutine_fn co_run_sync_fn(void *opaque)
{
    int *v = opaque;

    ck_assert(qemu_in_coroutine());
    qemu_co_yield_to_loop();
    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 1000);
    (*v)++;
}

static void coroutine_fn co_run_sync_nested(void *opaque)
{
    Coroutine *self = qemu_coroutine_self();

    /* Already in a coroutine: called directly, same coroutine. */
    qemu_co_run_sync(co_run_sync_fn, opaque);
    ck_assert_ptr_eq(qemu_coroutine_self(), self);
}

START_TEST(test_co_run_sync)
{
    int v = 0;

    qemu_co_run_sync(co_run_sync_fn, &v);
    ck_assert_int_eq(v, 1);
    qemu_co_run_sync(co_run_sync_nested, &v);
    ck_assert_int_eq(v, 2);
}
END_TEST

/* ---- CoMutex ---- */

typedef struct MutexData {
    CoMutex lock;
    int in_cs;
    int done;
    char order[64];
} MutexData;

static void order_add(char *order, int id)
{
    char c[2] = { (char)('0' + id), 0 };

    g_strlcat(order, c, 64);
}

typedef struct MutexArg {
    MutexData *d;
    int id;
} MutexArg;

static void coroutine_fn co_mutex_worker(void *opaque)
{
    MutexArg *a = opaque;
    MutexData *d = a->d;

    for (int round = 0; round < 2; round++) {
        qemu_co_mutex_lock(&d->lock);
        qemu_co_mutex_assert_locked(&d->lock);
        order_add(d->order, a->id);
        ck_assert_int_eq(++d->in_cs, 1);
        /* Yield twice to the loop while holding the lock. */
        qemu_co_yield_to_loop();
        qemu_co_yield_to_loop();
        ck_assert_int_eq(d->in_cs, 1);
        d->in_cs--;
        qemu_co_mutex_unlock(&d->lock);
        /* Re-locking at once must queue behind the waiters (FIFO). */
    }
    d->done++;
}

START_TEST(test_co_mutex_fifo)
{
    enum { N = 6 };
    MutexData d = { 0 };
    MutexArg args[N];

    qemu_co_mutex_init(&d.lock);
    for (int i = 0; i < N; i++) {
        args[i] = (MutexArg){ .d = &d, .id = i };
        qemu_coroutine_enter(qemu_coroutine_create(co_mutex_worker,
                                                   &args[i]));
    }
    while (d.done < N) {
        ck_assert(aio_poll(ctx, false));
    }
    ck_assert_str_eq(d.order, "012345012345");
    ck_assert(!d.lock.locked);
    ck_assert(g_queue_is_empty(&d.lock.waiters));
}
END_TEST

static void coroutine_fn co_mutex_quick(void *opaque)
{
    MutexArg *a = opaque;

    qemu_co_mutex_lock(&a->d->lock);
    order_add(a->d->order, a->id);
    qemu_co_mutex_unlock(&a->d->lock);
    a->d->done++;
}

static void coroutine_fn co_mutex_holder(void *opaque)
{
    MutexArg *a = opaque;

    qemu_co_mutex_lock(&a->d->lock);
    order_add(a->d->order, a->id);
    qemu_coroutine_yield();
    qemu_co_mutex_unlock(&a->d->lock);
    a->d->done++;
}

START_TEST(test_co_mutex_handoff_no_barging)
{
    MutexData d = { 0 };
    MutexArg a0 = { &d, 0 }, a1 = { &d, 1 }, a2 = { &d, 2 };
    Coroutine *holder = qemu_coroutine_create(co_mutex_holder, &a0);

    qemu_co_mutex_init(&d.lock);
    qemu_coroutine_enter(holder);
    qemu_coroutine_enter(qemu_coroutine_create(co_mutex_quick, &a1));
    ck_assert_str_eq(d.order, "0");
    /* Unlock hands over to 1 directly; nobody else may take it meanwhile. */
    qemu_coroutine_enter(holder);
    ck_assert_str_eq(d.order, "01");
    qemu_coroutine_enter(qemu_coroutine_create(co_mutex_quick, &a2));
    ck_assert_str_eq(d.order, "012");
    ck_assert_int_eq(d.done, 3);
    ck_assert(!d.lock.locked);
}
END_TEST

/* ---- CoQueue ---- */

typedef struct QueueData {
    CoQueue queue;
    CoMutex lock;
    bool use_lock;
    int woken;
    char order[64];
} QueueData;

typedef struct QueueArg {
    QueueData *d;
    int id;
} QueueArg;

static void coroutine_fn co_queue_waiter(void *opaque)
{
    QueueArg *a = opaque;
    QueueData *d = a->d;

    if (d->use_lock) {
        qemu_co_mutex_lock(&d->lock);
        qemu_co_queue_wait(&d->queue, &d->lock);
        qemu_co_mutex_assert_locked(&d->lock);
        order_add(d->order, a->id);
        qemu_co_mutex_unlock(&d->lock);
    } else {
        qemu_co_queue_wait(&d->queue, NULL);
        order_add(d->order, a->id);
    }
    d->woken++;
}

static void run_co_queue(bool use_lock)
{
    QueueData d = { .use_lock = use_lock };
    QueueArg args[4];

    qemu_co_queue_init(&d.queue);
    qemu_co_mutex_init(&d.lock);
    ck_assert(qemu_co_queue_empty(&d.queue));
    ck_assert(!qemu_co_queue_next(&d.queue));
    for (int i = 0; i < 4; i++) {
        args[i] = (QueueArg){ &d, i };
        qemu_coroutine_enter(qemu_coroutine_create(co_queue_waiter, &args[i]));
    }
    ck_assert(!qemu_co_queue_empty(&d.queue));
    /* The mutex was released while waiting. */
    ck_assert(!d.lock.locked);
    ck_assert_int_eq(d.woken, 0);

    ck_assert(qemu_co_queue_next(&d.queue));
    ck_assert_int_eq(d.woken, 1);
    ck_assert(qemu_co_enter_next(&d.queue));
    ck_assert_int_eq(d.woken, 2);
    qemu_co_queue_restart_all(&d.queue);
    ck_assert_int_eq(d.woken, 4);
    ck_assert_str_eq(d.order, "0123");
    ck_assert(qemu_co_queue_empty(&d.queue));
    ck_assert(!qemu_co_enter_next(&d.queue));
    ck_assert(!d.lock.locked);
}

START_TEST(test_co_queue_no_lock)
{
    run_co_queue(false);
}
END_TEST

START_TEST(test_co_queue_with_lock)
{
    run_co_queue(true);
}
END_TEST

/* Waking from a coroutine while holding the mutex: waiters run afterwards. */
static void coroutine_fn co_queue_waker(void *opaque)
{
    QueueData *d = opaque;

    qemu_co_mutex_lock(&d->lock);
    qemu_co_queue_restart_all(&d->queue);
    ck_assert_int_eq(d->woken, 0);      /* deferred until we yield */
    qemu_co_yield_to_loop();            /* still holding the lock */
    ck_assert_int_eq(d->woken, 0);      /* they wait for the mutex */
    qemu_co_mutex_unlock(&d->lock);
}

static void coroutine_fn co_queue_rewaiter(void *opaque)
{
    QueueArg *a = opaque;

    /* Waits again when woken: restart_all must not loop on it. */
    qemu_co_queue_wait(&a->d->queue, NULL);
    a->d->woken++;
    qemu_co_queue_wait(&a->d->queue, NULL);
    a->d->woken++;
}

START_TEST(test_co_queue_restart_all_in_coroutine)
{
    QueueData d = { .use_lock = true };
    QueueArg args[3];

    qemu_co_queue_init(&d.queue);
    qemu_co_mutex_init(&d.lock);
    for (int i = 0; i < 3; i++) {
        args[i] = (QueueArg){ &d, i };
        qemu_coroutine_enter(qemu_coroutine_create(co_queue_waiter, &args[i]));
    }
    qemu_coroutine_enter(qemu_coroutine_create(co_queue_waker, &d));
    while (aio_poll(ctx, false)) {
        /* run */
    }
    ck_assert_int_eq(d.woken, 3);
    ck_assert_str_eq(d.order, "012");

    d.woken = 0;
    qemu_coroutine_enter(qemu_coroutine_create(co_queue_rewaiter, &args[0]));
    qemu_co_queue_restart_all(&d.queue);
    ck_assert_int_eq(d.woken, 1);
    ck_assert(!qemu_co_queue_empty(&d.queue));
    qemu_co_queue_restart_all(&d.queue);
    ck_assert_int_eq(d.woken, 2);
    ck_assert(qemu_co_queue_empty(&d.queue));
}
END_TEST

/* ---- CoRwlock ---- */

typedef struct RwData {
    CoRwlock lock;
    int readers;
    int writers;
    int max_readers;
    char order[64];
} RwData;

typedef struct RwArg {
    RwData *d;
    char name;
    bool write;
    Coroutine *co;
} RwArg;

static void rw_note(RwData *d, char c)
{
    char s[2] = { c, 0 };

    g_strlcat(d->order, s, sizeof(d->order));
}

static void coroutine_fn co_rw_user(void *opaque)
{
    RwArg *a = opaque;
    RwData *d = a->d;

    if (a->write) {
        qemu_co_rwlock_wrlock(&d->lock);
        ck_assert_int_eq(d->readers, 0);
        ck_assert_int_eq(++d->writers, 1);
    } else {
        qemu_co_rwlock_rdlock(&d->lock);
        ck_assert_int_eq(d->writers, 0);
        d->readers++;
        d->max_readers = MAX(d->max_readers, d->readers);
    }
    rw_note(d, a->name);
    qemu_coroutine_yield();     /* hold until the test re-enters us */
    if (a->write) {
        d->writers--;
    } else {
        d->readers--;
    }
    qemu_co_rwlock_unlock(&d->lock);
}

static void rw_start(RwArg *a, RwData *d, char name, bool write)
{
    *a = (RwArg){ .d = d, .name = name, .write = write };
    a->co = qemu_coroutine_create(co_rw_user, a);
    qemu_coroutine_enter(a->co);
}

START_TEST(test_co_rwlock_readers_and_writer)
{
    RwData d = { 0 };
    RwArg r1, r2, r3, w1;

    qemu_co_rwlock_init(&d.lock);
    rw_start(&r1, &d, 'a', false);
    rw_start(&r2, &d, 'b', false);
    rw_start(&r3, &d, 'c', false);
    ck_assert_int_eq(d.max_readers, 3);         /* concurrent readers */
    ck_assert_int_eq(d.lock.owners, 3);
    rw_start(&w1, &d, 'W', true);
    ck_assert_str_eq(d.order, "abc");           /* writer waits */
    qemu_coroutine_enter(r1.co);
    qemu_coroutine_enter(r2.co);
    ck_assert_str_eq(d.order, "abc");
    qemu_coroutine_enter(r3.co);                /* last reader leaves */
    ck_assert_str_eq(d.order, "abcW");
    ck_assert_int_eq(d.lock.owners, -1);
    qemu_coroutine_enter(w1.co);
    ck_assert_int_eq(d.lock.owners, 0);
}
END_TEST

START_TEST(test_co_rwlock_writer_not_starved)
{
    RwData d = { 0 };
    RwArg r1, r2, r3, w1, w2;

    qemu_co_rwlock_init(&d.lock);
    rw_start(&r1, &d, 'a', false);
    rw_start(&w1, &d, 'W', true);
    /* Readers arriving after a queued writer wait behind it. */
    rw_start(&r2, &d, 'b', false);
    rw_start(&r3, &d, 'c', false);
    rw_start(&w2, &d, 'X', true);
    ck_assert_str_eq(d.order, "a");
    qemu_coroutine_enter(r1.co);
    ck_assert_str_eq(d.order, "aW");
    qemu_coroutine_enter(w1.co);
    /* Both queued readers are granted together; the next writer waits. */
    ck_assert_str_eq(d.order, "aWbc");
    ck_assert_int_eq(d.max_readers, 2);
    qemu_coroutine_enter(r3.co);
    ck_assert_str_eq(d.order, "aWbc");
    qemu_coroutine_enter(r2.co);
    ck_assert_str_eq(d.order, "aWbcX");
    qemu_coroutine_enter(w2.co);
    ck_assert_int_eq(d.lock.owners, 0);
    ck_assert(g_queue_is_empty(&d.lock.tickets));
}
END_TEST

static void coroutine_fn co_rw_upgrader(void *opaque)
{
    RwArg *a = opaque;
    RwData *d = a->d;

    qemu_co_rwlock_rdlock(&d->lock);
    rw_note(d, 'r');
    qemu_coroutine_yield();
    qemu_co_rwlock_upgrade(&d->lock);
    ck_assert_int_eq(d->lock.owners, -1);
    ck_assert_int_eq(d->readers, 0);
    rw_note(d, 'U');
    qemu_coroutine_yield();
    qemu_co_rwlock_downgrade(&d->lock);
    ck_assert_int_ge(d->lock.owners, 1);
    rw_note(d, 'D');
    qemu_coroutine_yield();
    qemu_co_rwlock_unlock(&d->lock);
}

START_TEST(test_co_rwlock_upgrade_downgrade)
{
    RwData d = { 0 };
    RwArg up = { .d = &d }, r1, r2;

    qemu_co_rwlock_init(&d.lock);
    up.co = qemu_coroutine_create(co_rw_upgrader, &up);
    qemu_coroutine_enter(up.co);            /* r */
    rw_start(&r1, &d, 'a', false);          /* a second reader */
    qemu_coroutine_enter(up.co);            /* upgrade must wait for a */
    ck_assert_str_eq(d.order, "ra");
    rw_start(&r2, &d, 'b', false);          /* queued behind the upgrade */
    ck_assert_str_eq(d.order, "ra");
    qemu_coroutine_enter(r1.co);            /* a leaves: upgrade granted */
    ck_assert_str_eq(d.order, "raU");
    ck_assert_int_eq(d.lock.owners, -1);
    /* Downgrade lets b in, once the downgrader yields. */
    qemu_coroutine_enter(up.co);
    ck_assert_str_eq(d.order, "raUDb");
    ck_assert_int_eq(d.lock.owners, 2);
    qemu_coroutine_enter(up.co);
    qemu_coroutine_enter(r2.co);
    ck_assert_int_eq(d.lock.owners, 0);
}
END_TEST

static void coroutine_fn co_rw_solo_upgrade(void *opaque)
{
    CoRwlock *lock = opaque;

    qemu_co_rwlock_rdlock(lock);
    qemu_co_rwlock_upgrade(lock);   /* sole reader: immediate */
    ck_assert_int_eq(lock->owners, -1);
    qemu_co_rwlock_unlock(lock);
}

START_TEST(test_co_rwlock_solo_upgrade)
{
    CoRwlock lock;

    qemu_co_rwlock_init(&lock);
    qemu_coroutine_enter(qemu_coroutine_create(co_rw_solo_upgrade, &lock));
    ck_assert_int_eq(lock.owners, 0);
}
END_TEST

/* ---- sleeping ---- */

typedef struct SleepData {
    QemuCoSleep w;
    int64_t ns;
    int64_t start;
    int64_t woke_at;
    bool done;
} SleepData;

static void coroutine_fn co_sleeper(void *opaque)
{
    SleepData *s = opaque;

    s->start = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    qemu_co_sleep_ns_wakeable(&s->w, QEMU_CLOCK_VIRTUAL, s->ns);
    s->woke_at = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->done = true;
}

START_TEST(test_co_sleep_manual_clock)
{
    SleepData a = { .ns = 1000 }, b = { .ns = 250 };

    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, true);
    qemu_coroutine_enter(qemu_coroutine_create(co_sleeper, &a));
    qemu_coroutine_enter(qemu_coroutine_create(co_sleeper, &b));
    ck_assert(!aio_poll(ctx, false));
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 249);
    ck_assert(!b.done);
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 1);
    ck_assert(b.done);
    ck_assert_int_eq(b.woke_at - b.start, 250);
    ck_assert(!a.done);
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 749);
    ck_assert(!a.done);
    /* Jumping far past the deadline: woken with the clock AT it. */
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 5001);
    ck_assert(a.done);
    ck_assert_int_eq(a.woke_at - a.start, 1000);
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - a.start, 6000);
}
END_TEST

START_TEST(test_co_sleep_wake_early)
{
    SleepData a = { .ns = 10 * NANOSECONDS_PER_SECOND };

    qemu_clock_set_manual(QEMU_CLOCK_VIRTUAL, true);
    qemu_coroutine_enter(qemu_coroutine_create(co_sleeper, &a));
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 100);
    ck_assert(!a.done);
    qemu_co_sleep_wake(&a.w);
    ck_assert(a.done);
    ck_assert_int_eq(a.woke_at - a.start, 100);
    /* Not sleeping any more: no-op; the timer is gone. */
    qemu_co_sleep_wake(&a.w);
    qemu_clock_advance(QEMU_CLOCK_VIRTUAL, 20 * NANOSECONDS_PER_SECOND);
    ck_assert(!aio_poll(ctx, false));
}
END_TEST

static void coroutine_fn co_sleep_realtime(void *opaque)
{
    int64_t start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 2 * SCALE_MS);
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - start,
                     2 * SCALE_MS);
    *(bool *)opaque = true;
}

START_TEST(test_co_sleep_realtime)
{
    bool done = false;

    qemu_coroutine_enter(qemu_coroutine_create(co_sleep_realtime, &done));
    while (!done) {
        ck_assert(aio_poll(ctx, true));
    }
}
END_TEST

static Suite *coroutine_suite(void)
{
    Suite *s = suite_create("coroutine");
    TCase *tc = tcase_create("basic");
    TCase *tl = tcase_create("locks");
    TCase *ts = tcase_create("sleep");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_enter_yield_order);
    tcase_add_test(tc, test_nesting);
    tcase_add_test(tc, test_return_through_opaque);
    tcase_add_test(tc, test_self_in_coroutine);
    tcase_add_test(tc, test_pool_bounded_and_reused);
    tcase_add_test(tc, test_pool_many_cycles);
    tcase_add_test(tc, test_big_stack_buffer);
    tcase_add_test(tc, test_thread_local_state);
    tcase_add_test_raise_signal(tc, test_enter_running_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_enter_caller_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_yield_outside_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_schedule_twice_aborts, SIGABRT);
    tcase_add_test(tc, test_co_wake_deferred);
    tcase_add_test(tc, test_co_wake_from_terminating);
    tcase_add_test(tc, test_enter_if_inactive);
    tcase_add_test(tc, test_yield_to_loop);
    tcase_add_test(tc, test_co_run_sync);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tl, setup, teardown);
    tcase_add_test(tl, test_co_mutex_fifo);
    tcase_add_test(tl, test_co_mutex_handoff_no_barging);
    tcase_add_test(tl, test_co_queue_no_lock);
    tcase_add_test(tl, test_co_queue_with_lock);
    tcase_add_test(tl, test_co_queue_restart_all_in_coroutine);
    tcase_add_test(tl, test_co_rwlock_readers_and_writer);
    tcase_add_test(tl, test_co_rwlock_writer_not_starved);
    tcase_add_test(tl, test_co_rwlock_upgrade_downgrade);
    tcase_add_test(tl, test_co_rwlock_solo_upgrade);
    suite_add_tcase(s, tl);

    tcase_add_checked_fixture(ts, setup, teardown);
    tcase_add_test(ts, test_co_sleep_manual_clock);
    tcase_add_test(ts, test_co_sleep_wake_early);
    tcase_add_test(ts, test_co_sleep_realtime);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(coroutine_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
