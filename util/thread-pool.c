/*
 * Thread pool for blocking system calls.
 *
 * Requests wait in a FIFO under pool->lock.  Workers are started on
 * demand: when a request is queued and there are not enough idle (or just
 * started) workers to take all queued requests, a new worker is spawned,
 * up to max_workers.  An idle worker exits after idle_timeout_ms.
 *
 * A worker runs func(arg), moves the request to the done list and
 * schedules the pool's completion BH, which is thread-safe and wakes the
 * AioContext through its eventfd.  The BH runs on the context's thread and
 * calls every completion callback (thread_pool_submit_co's callback
 * re-enters the waiting coroutine).
 *
 * Destroying the pool (with its AioContext) lets the workers finish the
 * requests already queued, then joins every worker thread.  Completions
 * still undelivered at that point are dropped without calling back.
 */
#include "qemu/osdep.h"
#include "util/aio-int.h"
#include "qemu/coroutine.h"
#include "qemu/trace.h"

#define THREAD_POOL_DEFAULT_MAX_WORKERS 64
#define THREAD_POOL_DEFAULT_IDLE_TIMEOUT_MS 10000

typedef struct ThreadPoolElement {
    ThreadPoolFunc *func;
    void *arg;
    ThreadPoolCompletionFunc *cb;
    void *opaque;
    int ret;
    GList link;             /* in requests, then in done */
} ThreadPoolElement;

struct ThreadPool {
    AioContext *ctx;
    QEMUBH *completion_bh;

    GMutex lock;
    GCond request_cond;     /* a request was queued, or stopping */
    GCond worker_exited;
    GQueue requests;        /* of ThreadPoolElement, not yet started */
    GQueue done;            /* of ThreadPoolElement, awaiting callback */
    GSList *exited_threads; /* GThread * to join */
    int cur_workers;
    int idle_workers;
    int starting_workers;
    int max_workers;
    int64_t idle_timeout_ms;
    bool stopping;
};

static gpointer worker_thread(gpointer opaque)
{
    ThreadPool *pool = opaque;

    g_mutex_lock(&pool->lock);
    pool->starting_workers--;
    for (;;) {
        ThreadPoolElement *req;
        GList *link;

        while (!pool->requests.length && !pool->stopping) {
            gint64 deadline = g_get_monotonic_time() +
                              pool->idle_timeout_ms * G_TIME_SPAN_MILLISECOND;
            bool signalled;

            pool->idle_workers++;
            signalled = g_cond_wait_until(&pool->request_cond, &pool->lock,
                                          deadline);
            pool->idle_workers--;
            if (!signalled && !pool->requests.length) {
                goto out;   /* idle for too long */
            }
        }
        link = g_queue_pop_head_link(&pool->requests);
        if (!link) {
            break;          /* stopping and nothing left to run */
        }
        g_mutex_unlock(&pool->lock);

        req = link->data;
        req->ret = req->func(req->arg);

        g_mutex_lock(&pool->lock);
        g_queue_push_tail_link(&pool->done, &req->link);
        if (!pool->stopping) {
            qemu_bh_schedule(pool->completion_bh);
        }
    }
out:
    pool->cur_workers--;
    pool->exited_threads = g_slist_prepend(pool->exited_threads,
                                           g_thread_self());
    g_cond_broadcast(&pool->worker_exited);
    g_mutex_unlock(&pool->lock);
    return NULL;
}

/* Join workers that have exited.  Called without pool->lock held. */
static void join_exited_workers(ThreadPool *pool)
{
    GSList *list;

    g_mutex_lock(&pool->lock);
    list = pool->exited_threads;
    pool->exited_threads = NULL;
    g_mutex_unlock(&pool->lock);

    for (GSList *l = list; l; l = l->next) {
        g_thread_join(l->data);
    }
    g_slist_free(list);
}

static void completion_bh_cb(void *opaque)
{
    ThreadPool *pool = opaque;
    GQueue done = G_QUEUE_INIT;
    GList *link;

    g_mutex_lock(&pool->lock);
    done = pool->done;
    g_queue_init(&pool->done);
    g_mutex_unlock(&pool->lock);

    while ((link = g_queue_pop_head_link(&done))) {
        ThreadPoolElement *req = link->data;

        trace(thread_pool_complete, "pool %p req %p opaque %p ret %d",
              pool, req, req->opaque, req->ret);
        req->cb(req->opaque, req->ret);
        g_free(req);
    }
    join_exited_workers(pool);
}

static ThreadPool *thread_pool_new(AioContext *ctx)
{
    ThreadPool *pool = g_new0(ThreadPool, 1);

    pool->ctx = ctx;
    pool->completion_bh = aio_bh_new(ctx, completion_bh_cb, pool);
    g_mutex_init(&pool->lock);
    g_cond_init(&pool->request_cond);
    g_cond_init(&pool->worker_exited);
    g_queue_init(&pool->requests);
    g_queue_init(&pool->done);
    pool->max_workers = THREAD_POOL_DEFAULT_MAX_WORKERS;
    pool->idle_timeout_ms = THREAD_POOL_DEFAULT_IDLE_TIMEOUT_MS;
    return pool;
}

ThreadPool *aio_get_thread_pool(AioContext *ctx)
{
    if (!ctx->thread_pool) {
        ctx->thread_pool = thread_pool_new(ctx);
    }
    return ctx->thread_pool;
}

void thread_pool_free(ThreadPool *pool)
{
    GList *link;

    g_mutex_lock(&pool->lock);
    pool->stopping = true;
    g_cond_broadcast(&pool->request_cond);
    while (pool->cur_workers > 0) {
        g_cond_wait(&pool->worker_exited, &pool->lock);
    }
    g_mutex_unlock(&pool->lock);
    join_exited_workers(pool);

    assert(!pool->requests.length);
    while ((link = g_queue_pop_head_link(&pool->done))) {
        g_free(link->data);
    }
    qemu_bh_delete(pool->completion_bh);
    g_cond_clear(&pool->worker_exited);
    g_cond_clear(&pool->request_cond);
    g_mutex_clear(&pool->lock);
    g_free(pool);
}

static void thread_pool_submit(ThreadPool *pool, ThreadPoolFunc *func,
                               void *arg, ThreadPoolCompletionFunc *cb,
                               void *opaque)
{
    ThreadPoolElement *req = g_new0(ThreadPoolElement, 1);

    req->func = func;
    req->arg = arg;
    req->cb = cb;
    req->opaque = opaque;
    req->link.data = req;
    trace(thread_pool_submit, "pool %p req %p opaque %p", pool, req, opaque);

    g_mutex_lock(&pool->lock);
    assert(!pool->stopping);
    g_queue_push_tail_link(&pool->requests, &req->link);
    if ((int)pool->requests.length >
            pool->idle_workers + pool->starting_workers &&
        pool->cur_workers < pool->max_workers) {
        pool->cur_workers++;
        pool->starting_workers++;
        trace(thread_pool_spawn, "pool %p workers %d", pool,
              pool->cur_workers);
        /*
         * Our reference is consumed by g_thread_join() once the worker
         * has put itself (g_thread_self(), the same GThread) on
         * exited_threads.
         */
        g_thread_new("blockd-worker", worker_thread, pool);
    }
    g_cond_signal(&pool->request_cond);
    g_mutex_unlock(&pool->lock);
}

void thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                            ThreadPoolCompletionFunc *cb, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(qemu_get_current_aio_context());

    if (__atomic_load_n(&pool->exited_threads, __ATOMIC_RELAXED)) {
        join_exited_workers(pool);  /* reap workers that timed out */
    }
    thread_pool_submit(pool, func, arg, cb, opaque);
}

typedef struct ThreadPoolCo {
    Coroutine *co;
    int ret;
    bool done;
} ThreadPoolCo;

static void thread_pool_co_cb(void *opaque, int ret)
{
    ThreadPoolCo *tpc = opaque;

    tpc->ret = ret;
    tpc->done = true;
    aio_co_wake(tpc->co);
}

int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg)
{
    ThreadPoolCo tpc = { .co = qemu_coroutine_self(), .ret = -EINPROGRESS };

    assert(qemu_in_coroutine());
    thread_pool_submit_aio(func, arg, thread_pool_co_cb, &tpc);
    qemu_coroutine_yield();
    assert(tpc.done);
    return tpc.ret;
}

void thread_pool_set_max_workers(ThreadPool *pool, int max)
{
    assert(max > 0);
    g_mutex_lock(&pool->lock);
    pool->max_workers = max;
    g_mutex_unlock(&pool->lock);
}

void thread_pool_set_idle_timeout_ms(ThreadPool *pool, int64_t ms)
{
    assert(ms > 0);
    g_mutex_lock(&pool->lock);
    pool->idle_timeout_ms = ms;
    /* Let idle workers recompute their deadline. */
    g_cond_broadcast(&pool->request_cond);
    g_mutex_unlock(&pool->lock);
}

int thread_pool_get_num_workers(ThreadPool *pool)
{
    int n;

    g_mutex_lock(&pool->lock);
    n = pool->cur_workers;
    g_mutex_unlock(&pool->lock);
    return n;
}
