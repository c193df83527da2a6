/*
 * Unit tests for the thread pool: coroutine and callback submission,
 * completion on the AioContext's thread, the worker limit, idle exit and
 * clean destruction with the context.
 */
#include "qemu/osdep.h"
#include "block/thread-pool.h"
#include "qemu/coroutine.h"
#include <check.h>
#include <pthread.h>

static AioContext *ctx;
static pthread_t main_thread;

static void setup(void)
{
    qemu_init_main_loop();
    ctx = qemu_get_aio_context();
    main_thread = pthread_self();
}

/* ---- 100 concurrent submissions from coroutines ---- */

typedef struct SquareReq {
    int in;
    int result;
    bool done;
} SquareReq;

static int square_worker(void *opaque)
{
    SquareReq *r = opaque;

    /* Really runs off the main thread, in parallel with others. */
    ck_assert(!pthread_equal(pthread_self(), main_thread));
    ck_assert(!qemu_in_coroutine());
    g_usleep(1000);
    return r->in * r->in;
}

static void coroutine_fn co_square(void *opaque)
{
    SquareReq *r = opaque;

    r->result = thread_pool_submit_co(square_worker, r);
    ck_assert(pthread_equal(pthread_self(), main_thread));
    r->done = true;
}

START_TEST(test_submit_co_many)
{
    enum { N = 100 };
    SquareReq reqs[N];
    int done = 0;

    for (int i = 0; i < N; i++) {
        reqs[i] = (SquareReq){ .in = i };
        qemu_coroutine_enter(qemu_coroutine_create(co_square, &reqs[i]));
    }
    while (done < N) {
        aio_poll(ctx, true);
        done = 0;
        for (int i = 0; i < N; i++) {
            done += reqs[i].done;
        }
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].result, i * i);
    }
    ck_assert_int_le(thread_pool_get_num_workers(aio_get_thread_pool(ctx)),
                     64);
}
END_TEST

/* ---- callback submission ---- */

typedef struct AioReq {
    int ret;
    int calls;
    pthread_t cb_thread;
} AioReq;

static int errno_worker(void *opaque)
{
    return -ENOSPC;
}

static void aio_req_cb(void *opaque, int ret)
{
    AioReq *r = opaque;

    r->ret = ret;
    r->calls++;
    r->cb_thread = pthread_self();
}

START_TEST(test_submit_aio_cb_on_main_thread)
{
    AioReq r = { 0 };

    thread_pool_submit_aio(errno_worker, NULL, aio_req_cb, &r);
    ck_assert_int_eq(r.calls, 0);       /* never called synchronously */
    while (!r.calls) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.ret, -ENOSPC);
    ck_assert(pthread_equal(r.cb_thread, main_thread));
}
END_TEST

/* ---- workers do not see the block thread's coroutine state ---- */

static int worker_saw_coroutine = -1;

static int check_state_worker(void *opaque)
{
    Coroutine *main_co = opaque;

    __atomic_store_n(&worker_saw_coroutine,
                     qemu_in_coroutine() || qemu_coroutine_self() == main_co,
                     __ATOMIC_SEQ_CST);
    return 0;
}

static void nop_cb(void *opaque, int ret)
{
    *(bool *)opaque = true;
}

static void coroutine_fn co_spin_until_checked(void *opaque)
{
    thread_pool_submit_aio(check_state_worker, qemu_coroutine_self(),
                           nop_cb, opaque);
    /* Stay inside the coroutine while the worker looks. */
    while (__atomic_load_n(&worker_saw_coroutine, __ATOMIC_SEQ_CST) < 0) {
        g_usleep(100);
    }
}

START_TEST(test_worker_thread_local_state)
{
    bool done = false;

    qemu_coroutine_enter(qemu_coroutine_create(co_spin_until_checked,
                                               &done));
    ck_assert_int_eq(worker_saw_coroutine, 0);
    while (!done) {
        aio_poll(ctx, true);
    }
}
END_TEST

/* ---- max_workers ---- */

static int running, max_running;
static GMutex running_lock;

static int busy_worker(void *opaque)
{
    g_mutex_lock(&running_lock);
    running++;
    max_running = MAX(max_running, running);
    g_mutex_unlock(&running_lock);
    g_usleep(5 * 1000);
    g_mutex_lock(&running_lock);
    running--;
    g_mutex_unlock(&running_lock);
    return 0;
}

static void count_cb(void *opaque, int ret)
{
    (*(int *)opaque)++;
}



START_TEST(test_idle_workers_exit)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int done = 0;

    thread_pool_set_idle_timeout_ms(pool, 20);
    for (int i = 0; i < 4; i++) {
        thread_pool_submit_aio(busy_worker, NULL, count_cb, &done);
    }
    while (done < 4) {
        aio_poll(ctx, true);
    }
    ck_assert_int_ge(thread_pool_get_num_workers(pool), 1);
    /* Bounded wait for the idle timeout (the only real-time wait here). */
    for (int i = 0; i < 200 && thread_pool_get_num_workers(pool); i++) {
        g_usleep(10 * 1000);
    }
    ck_assert_int_eq(thread_pool_get_num_workers(pool), 0);
    /* The pool still works and starts workers again. */
    thread_pool_submit_aio(busy_worker, NULL, count_cb, &done);
    while (done < 5) {
        aio_poll(ctx, true);
    }
}
END_TEST

/* ---- a private context: its pool dies with it ---- */

typedef struct CtxSubmit {
    int done;
    int n;
} CtxSubmit;

static void submit_in_ctx_bh(void *opaque)
{
    CtxSubmit *s = opaque;

    /* In ctx's BH, the current context (and so the pool) is ctx's. */
    for (int i = 0; i < s->n; i++) {
        thread_pool_submit_aio(busy_worker, NULL, count_cb, &s->done);
    }
}

/* A fresh context, so that workers of earlier tests do not count. */
START_TEST(test_max_workers)
{
    AioContext *c2 = aio_context_new(&error_abort);
    ThreadPool *pool = aio_get_thread_pool(c2);
    CtxSubmit s = { .n = 12 };

    max_running = 0;
    thread_pool_set_max_workers(pool, 3);
    aio_bh_schedule_oneshot(c2, submit_in_ctx_bh, &s);
    ck_assert(aio_poll(c2, false));
    ck_assert_int_le(thread_pool_get_num_workers(pool), 3);
    while (s.done < s.n) {
        aio_poll(c2, true);
        ck_assert_int_le(thread_pool_get_num_workers(pool), 3);
    }
    ck_assert_int_le(max_running, 3);
    ck_assert_int_ge(max_running, 2);   /* and it did run in parallel */
    aio_context_unref(c2);
}
END_TEST

START_TEST(test_pool_destroyed_with_context)
{
    AioContext *c2 = aio_context_new(&error_abort);
    ThreadPool *pool = aio_get_thread_pool(c2);
    CtxSubmit s = { .n = 6 };
    int64_t start;

    ck_assert_ptr_ne(pool, aio_get_thread_pool(ctx));
    aio_bh_schedule_oneshot(c2, submit_in_ctx_bh, &s);
    while (s.done < s.n) {
        aio_poll(c2, true);
    }
    ck_assert_int_ge(thread_pool_get_num_workers(pool), 1);
    /* Idle workers (10 s timeout) are woken and joined at once. */
    start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    aio_context_unref(c2);
    ck_assert_int_lt(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - start,
                     2 * NANOSECONDS_PER_SECOND);
}
END_TEST

START_TEST(test_pool_destroyed_while_busy)
{
    AioContext *c2 = aio_context_new(&error_abort);
    CtxSubmit s = { .n = 4 };

    aio_bh_schedule_oneshot(c2, submit_in_ctx_bh, &s);
    ck_assert(aio_poll(c2, false));
    /* Requests still running: they finish, workers are joined, and the
     * undelivered completions are dropped. */
    aio_context_unref(c2);
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(running, 0);
}
END_TEST

static Suite *thread_pool_suite(void)
{
    Suite *s = suite_create("thread-pool");
    TCase *tc = tcase_create("pool");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_submit_co_many);
    tcase_add_test(tc, test_submit_aio_cb_on_main_thread);
    tcase_add_test(tc, test_worker_thread_local_state);
    tcase_add_test(tc, test_max_workers);
    tcase_add_test(tc, test_idle_workers_exit);
    tcase_add_test(tc, test_pool_destroyed_with_context);
    tcase_add_test(tc, test_pool_destroyed_while_busy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(thread_pool_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
