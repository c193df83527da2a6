/*
 * Coroutine internals shared by the generic code (qemu-coroutine*.c,
 * async.c) and the stack-switching backend (coroutine-ucontext.c).
 *
 * A Coroutine is embedded at the start of the backend's own struct, which
 * adds the stack and the saved register context.  All lists below are
 * intrusive so that entering, waking and yielding never allocate.
 */
#ifndef UTIL_COROUTINE_INT_H
#define UTIL_COROUTINE_INT_H

#include "qemu/coroutine.h"

typedef enum CoroutineAction {
    COROUTINE_YIELD = 1,
    COROUTINE_TERMINATE = 2,
    COROUTINE_ENTER = 3,
} CoroutineAction;

struct Coroutine {
    CoroutineEntry *entry;
    void *entry_arg;
    /* Who entered us and gets control back when we yield; NULL if idle. */
    Coroutine *caller;
    /* The AioContext the coroutine was last entered in. */
    AioContext *ctx;
    /*
     * Name of the function that scheduled us with aio_co_schedule(); NULL
     * when not scheduled.  Written before the scheduling BH's lock is
     * taken, cleared on the home thread just before entering.
     */
    const char *scheduled;
    /* True while sitting in some coroutine's wakeup queue. */
    bool wakeup_queued;
    /* Link in a wakeup queue or in qemu_aio_coroutine_enter()'s list. */
    Coroutine *co_queue_next;
    /*
     * Coroutines woken (aio_co_wake) while we were running; entered by our
     * caller's enter loop right after we yield or terminate.
     */
    Coroutine *wakeup_head;
    Coroutine *wakeup_tail;
    /* Link in AioContext's list of scheduled coroutines. */
    Coroutine *co_scheduled_next;
    /* Link in the per-thread free-list pool. */
    Coroutine *pool_next;
};

/* ---- backend (coroutine-ucontext.c) ---- */

/* A fresh coroutine with its own stack; entry/entry_arg are unset. */
Coroutine *qemu_coroutine_new(void);
/* Free the coroutine and its stack (not for the pool). */
void qemu_coroutine_delete(Coroutine *co);
/*
 * Save the current context in from and resume to.  Returns the action
 * passed by whoever switches back to from.
 */
CoroutineAction qemu_coroutine_switch(Coroutine *from, Coroutine *to,
                                      CoroutineAction action);

/* ---- generic (qemu-coroutine.c) ---- */

/* Queue co on the current coroutine's wakeup queue (must be in one). */
void qemu_coroutine_queue_wakeup(Coroutine *co);

#endif /* UTIL_COROUTINE_INT_H */
