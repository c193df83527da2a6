/*
 * Thread pool for blocking system calls.
 *
 * Workers (started on demand, up to a maximum, idle ones exit after a
 * while) run func(arg) off the block-layer thread; completion is signalled
 * back to the AioContext through an eventfd, and the completion callback /
 * coroutine wake-up runs on the block-layer thread.
 */
#ifndef BLOCK_THREAD_POOL_H
#define BLOCK_THREAD_POOL_H

#include "qemu/osdep.h"
#include "block/aio.h"

typedef int ThreadPoolFunc(void *opaque);
typedef void ThreadPoolCompletionFunc(void *opaque, int ret);

/* The pool of ctx (created on first use, destroyed with ctx). */
typedef struct ThreadPool ThreadPool;
ThreadPool *aio_get_thread_pool(AioContext *ctx);

/*
 * Run func(arg) in a worker of qemu_get_current_aio_context()'s pool;
 * cb(opaque, ret) runs on that context's thread after, from a BH.
 */
void thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                            ThreadPoolCompletionFunc *cb, void *opaque);
/* From a coroutine: run func(arg) in a worker, yield, return its result. */
int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg);

/* At most max worker threads (default 64); running ones are not stopped. */
void thread_pool_set_max_workers(ThreadPool *pool, int max);
/* How long an idle worker waits for work before exiting (default 10 s). */
void thread_pool_set_idle_timeout_ms(ThreadPool *pool, int64_t ms);
/* Worker threads currently alive (tests). */
int thread_pool_get_num_workers(ThreadPool *pool);

#endif /* BLOCK_THREAD_POOL_H */
