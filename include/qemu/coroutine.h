/*
 * Coroutines: cooperative user-space threads on the block-layer thread.
 *
 * Backend: ucontext stacks (makecontext + one jump per coroutine, then
 * sigsetjmp/siglongjmp switches: no syscall and no allocation per switch),
 * kept in a free-list pool so creating a coroutine is usually just a pop.
 * With ASan, every switch is annotated with
 * __sanitizer_start/finish_switch_fiber.
 *
 * Rules (QEMU's):
 * - qemu_coroutine_enter(co) runs co until it yields or terminates; the
 *   caller resumes then.  Entering a coroutine that is already running, or
 *   was entered and has not yielded, aborts.
 * - A coroutine yields with qemu_coroutine_yield(); whoever completes what
 *   it waits for re-enters it (usually with aio_co_wake()).
 * - When the entry function returns, the coroutine is freed (back to pool).
 *   Misuse aborts with a message: yielding outside a coroutine ("yielding
 *   to no one"), waking a running or already-woken coroutine.
 * - Locks here are for coroutines on the one thread: no pthread mutexes.
 * - All coroutine state is per thread (__thread): a thread-pool worker is
 *   never "in a coroutine", even while the block thread is.
 *
 * Wakeup queue (QEMU's co_queue_wakeup): when coroutine A wakes coroutine B
 * with aio_co_wake() (directly, or through CoMutex/CoQueue/CoRwlock), B is
 * not entered from inside A.  It is queued on A and entered by the same
 * loop that entered A, right after A yields or terminates.  So wake-ups
 * never nest and are never lost.
 */
#ifndef QEMU_COROUTINE_H
#define QEMU_COROUTINE_H

#include "qemu/osdep.h"
#include "block/aio.h"

typedef void coroutine_fn CoroutineEntry(void *opaque);

/*
 * Usable stack of every coroutine (plus one PROT_NONE guard page below it).
 * Big enough for block drivers to keep a cluster-sized buffer on it.
 */
#define COROUTINE_STACK_SIZE (1 * MiB)
/* Terminated coroutines kept per thread for reuse (bounded free list). */
#define COROUTINE_POOL_MAX 256

Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque);
/*
 * Enter co in qemu_get_current_aio_context().  Aborts with "Co-routine
 * re-entered recursively" if co is running (or entered and not yielded),
 * and if co is still scheduled with aio_co_schedule().
 */
void qemu_coroutine_enter(Coroutine *co);
/* Same, but co's AioContext (for sleeps, yield_to_loop, ...) is ctx. */
void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co);
/*
 * Enter co only if it is not currently running or queued to run (entered,
 * on a wakeup queue, or scheduled with aio_co_schedule()).
 */
void qemu_coroutine_enter_if_inactive(Coroutine *co);
void coroutine_fn qemu_coroutine_yield(void);
/* The current coroutine (a per-thread "leader" when not in a coroutine). */
Coroutine *qemu_coroutine_self(void);
bool qemu_in_coroutine(void);
/* True if co was entered and has not yet yielded or terminated. */
bool qemu_coroutine_entered(Coroutine *co);
/* The AioContext co was last entered in (NULL if never entered). */
AioContext *qemu_coroutine_get_aio_context(Coroutine *co);
/* Number of coroutines in this thread's free-list pool (tests). */
unsigned qemu_coroutine_pool_size(void);

/*
 * ---- CoMutex: FIFO fair; the unlocker hands the lock to the next waiter ----
 *
 * Wait-queue links of CoMutex, CoQueue and CoRwlock live on the waiting
 * coroutines' stacks (no allocation); never g_queue_clear() these queues.
 * A zero-filled struct is a valid unlocked mutex / empty queue.
 */
typedef struct CoWaitRecord CoWaitRecord;
typedef struct CoMutex {
    bool locked;
    Coroutine *holder;
    GQueue waiters;         /* of Coroutine * */
} CoMutex;

void qemu_co_mutex_init(CoMutex *mutex);
void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex);
void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex);
void qemu_co_mutex_assert_locked(CoMutex *mutex);

/* ---- CoQueue: a list of waiting coroutines (FIFO) ---- */
typedef struct CoQueue {
    GQueue entries;         /* of Coroutine * */
} CoQueue;

void qemu_co_queue_init(CoQueue *queue);
/*
 * Wait until woken.  If lock is non-NULL it is released while waiting and
 * re-taken before returning.
 */
void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock);
/* Wake the first waiter (aio_co_wake semantics). Returns false if none. */
bool qemu_co_queue_next(CoQueue *queue);
/*
 * Wake all coroutines waiting now (in FIFO order; ones that wait again
 * while being woken are not woken a second time).
 */
void qemu_co_queue_restart_all(CoQueue *queue);
/* Outside coroutine context: enter the first waiter now. */
bool qemu_co_enter_next(CoQueue *queue);
bool qemu_co_queue_empty(CoQueue *queue);

/* ---- CoRwlock: writers are not starved (FIFO between readers and writers) ---- */
typedef struct CoRwlock {
    int owners;             /* >0: number of readers, -1: one writer */
    GQueue tickets;         /* waiting CoRwTicket * in arrival order */
} CoRwlock;

void qemu_co_rwlock_init(CoRwlock *lock);
void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock);
void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock);
/*
 * Reader -> writer.  If other readers hold the lock or anybody is queued,
 * the read lock is released and the caller queues (FIFO) for the write
 * lock; so other writers may run in between.
 */
void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock);
/* Writer -> reader; queued readers at the head of the line join in. */
void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock);
void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock);

/* ---- sleeping ---- */
typedef struct QemuCoSleep {
    Coroutine *to_wake;
} QemuCoSleep;

/*
 * Sleep ns nanoseconds on clock type, or until qemu_co_sleep_wake(w) is
 * called, whichever comes first.  w must stay valid during the sleep.
 */
void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                            QEMUClockType type, int64_t ns);
/* Wake a sleeping coroutine early; no-op if it is not sleeping. */
void qemu_co_sleep_wake(QemuCoSleep *w);
void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns);

/*
 * Yield until the next event-loop iteration (lets BHs and fds run): the
 * coroutine reschedules itself with aio_co_schedule() on its AioContext.
 */
void coroutine_fn qemu_co_yield_to_loop(void);

/*
 * Run fn(opaque) in a new coroutine and drive the main loop until it
 * returns (for non-coroutine callers such as tools and sync wrappers).
 * If already in a coroutine, fn is just called.  The loop driven is
 * qemu_get_current_aio_context().
 */
void qemu_co_run_sync(CoroutineEntry *fn, void *opaque);

#endif /* QEMU_COROUTINE_H */
