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

/* The pool of the main AioContext (created on first use). */
typedef struct ThreadPool ThreadPool;
ThreadPool *aio_get_thread_pool(AioContext *ctx);

/* Run func(arg) in a worker; cb(opaque, ret) runs on ctx's thread after. */
void thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                            ThreadPoolCompletionFunc *cb, void *opaque);
/* From a coroutine: run func(arg) in a worker, yield, return its result. */
int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg);

void thread_pool_set_max_workers(ThreadPool *pool, int max);

#endif /* BLOCK_THREAD_POOL_H */
