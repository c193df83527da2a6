/*
 * AioContext internals shared by async.c (GSource, BHs, notify, coroutine
 * scheduling), aio-posix.c (fd handlers, aio_poll), qemu-timer.c (clocks,
 * timers) and thread-pool.c.
 */
#ifndef UTIL_AIO_INT_H
#define UTIL_AIO_INT_H

#include "block/aio.h"
#include "block/thread-pool.h"

#include <pthread.h>

typedef struct AioHandler {
    GPollFD pfd;            /* registered with the GSource while live */
    IOHandler *io_read;
    IOHandler *io_write;
    void *opaque;
    bool deleted;           /* unregistered while the list was walked */
} AioHandler;

struct QEMUBH {
    AioContext *ctx;
    QEMUBHFunc *cb;
    void *opaque;
    /* Scheduled queue links and state, protected by ctx->bh_lock. */
    QEMUBH *next;
    QEMUBH *prev;
    uint64_t seq;           /* ctx->bh_seq when it was (last) scheduled */
    bool scheduled;
    bool oneshot;           /* freed after running (aio_bh_schedule_oneshot) */
};

struct QEMUTimer {
    AioContext *ctx;
    QEMUClockType type;
    int scale;
    int64_t expire_time;    /* ns; -1 when not pending */
    uint64_t mod_gen;       /* ctx->timer_gen when it was last armed */
    QEMUTimerCB *cb;
    void *opaque;
    QEMUTimer *next;        /* in ctx->timers[type], sorted by expire_time */
};

struct AioContext {
    GSource source;         /* first: AioContext is a GSource */
    pthread_t home_thread;  /* thread that runs this context's callbacks */

    /* ---- bottom halves: a FIFO of scheduled BHs ---- */
    GMutex bh_lock;
    QEMUBH *bh_head;
    QEMUBH *bh_tail;
    uint64_t bh_seq;

    /* ---- cross-thread wake-up ---- */
    int notify_fd;          /* eventfd */
    GPollFD notify_pfd;
    int notify_me;          /* atomic: >0 while a poller may block */
    bool notified;          /* atomic: eventfd written, not yet accepted */
    bool gsource_notify_me; /* prepare() raised notify_me */

    /* ---- fd handlers ---- */
    GQueue handlers;        /* of AioHandler * */
    unsigned walking_handlers;
    bool handlers_deleted;  /* some deleted entries await freeing */
    GArray *pollfds;        /* scratch for aio_poll: struct pollfd */

    /* ---- timers ---- */
    QEMUTimer *timers[QEMU_CLOCK_MAX];
    uint64_t timer_gen;

    /* ---- coroutines scheduled with aio_co_schedule (under bh_lock) ---- */
    Coroutine *scheduled_head;
    Coroutine *scheduled_tail;
    QEMUBH *co_schedule_bh;

    ThreadPool *thread_pool;
};

/* async.c */
/* Run the BHs that were scheduled when it started.  Returns progress. */
bool aio_bh_poll(AioContext *ctx);
bool aio_bh_pending(AioContext *ctx);
/* Accept a pending notification: reset the eventfd. */
void aio_notify_accept(AioContext *ctx);
/* The context whose aio_poll()/dispatch runs on this thread, if any. */
AioContext *aio_push_current(AioContext *ctx);
void aio_pop_current(AioContext *prev);

/* aio-posix.c */
/* Call handlers whose pfd.revents are set.  Returns progress. */
bool aio_dispatch_handlers(AioContext *ctx);
bool aio_handlers_ready(AioContext *ctx);
void aio_handlers_init(AioContext *ctx);
void aio_handlers_cleanup(AioContext *ctx);

/* qemu-timer.c */
/*
 * ns until the earliest timer of ctx expires: 0 if one has expired, -1 if
 * none is armed (or only manual-clock ones in the future).
 */
int64_t aio_timers_deadline_ns(AioContext *ctx);
/* Run the expired timers of every clock.  Returns progress. */
bool aio_timers_run(AioContext *ctx);
void aio_timers_register(AioContext *ctx);
/* Initialise a caller-allocated (e.g. on-stack) timer. */
void aio_timer_init(AioContext *ctx, QEMUTimer *ts, QEMUClockType type,
                    int scale, QEMUTimerCB *cb, void *opaque);
void aio_timers_unregister(AioContext *ctx);

/* thread-pool.c */
void thread_pool_free(ThreadPool *pool);

#endif /* UTIL_AIO_INT_H */
