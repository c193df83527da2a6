/*
 * AioContext: blockd's event loop, a GSource on the GLib main loop.
 *
 * There is one block-layer thread.  Everything below runs on it:
 * - fd handlers (aio_set_fd_handler), level-triggered, read and/or write;
 * - bottom halves: callbacks run at the next aio_poll() iteration, in the
 *   order they were scheduled; one-shot (aio_bh_schedule_oneshot) or
 *   reusable (aio_bh_new + qemu_bh_schedule, which is idempotent while
 *   pending).  A BH scheduled while BHs are being dispatched (including a
 *   BH rescheduling itself) runs in the NEXT iteration, not the same pass;
 * - timers on QEMU_CLOCK_REALTIME (monotonic) or QEMU_CLOCK_VIRTUAL
 *   (monotonic too, unless a test switched it to manual mode, in which case
 *   it only moves with qemu_clock_advance());
 * - coroutines woken with aio_co_wake()/aio_co_schedule().
 *
 * aio_poll(ctx, blocking) runs one iteration: ready BHs, then ready fd
 * handlers, then expired timers.  It returns true if any callback ran.
 * With blocking=true it waits (in poll(2), at most until the next timer
 * deadline) until something is ready and returns only after running at
 * least one callback (so it always returns true); with blocking=false it
 * never waits and makes no syscall if no fd handler is registered.  Tests drive
 * the loop deterministically with `while (aio_poll(ctx, false)) {}`.
 * The daemon runs g_main_loop_run() on the default GMainContext, to which
 * the main AioContext's GSource is attached; both views work together.
 */
#ifndef BLOCK_AIO_H
#define BLOCK_AIO_H

#include "qemu/osdep.h"
#include "qapi/error.h"

typedef struct AioContext AioContext;
typedef struct QEMUBH QEMUBH;
typedef struct QEMUTimer QEMUTimer;
typedef struct Coroutine Coroutine;

typedef void QEMUBHFunc(void *opaque);
typedef void IOHandler(void *opaque);
typedef void QEMUTimerCB(void *opaque);

/* ---- main context ---- */

/*
 * Create the main AioContext (idempotent) and attach it to the default
 * GMainContext.  Every program calls this first.
 */
void qemu_init_main_loop(void);
/* The main AioContext (qemu_init_main_loop() must have run). */
AioContext *qemu_get_aio_context(void);
/*
 * The AioContext callbacks currently run in: the running coroutine's
 * context, else the one whose aio_poll() is dispatching on this thread,
 * else the main one (created on demand, like qemu_get_aio_context()).
 */
AioContext *qemu_get_current_aio_context(void);

/*
 * A new context (not attached to any GMainContext), usable standalone with
 * aio_poll().  Its callbacks must run on the creating thread.  Freed with
 * the last aio_context_unref(), together with its thread pool (workers
 * joined); the caller must have deleted its own BHs, timers, fd handlers.
 */
AioContext *aio_context_new(Error **errp);
void aio_context_ref(AioContext *ctx);
void aio_context_unref(AioContext *ctx);
/* ctx's GSource (borrowed reference: g_source_ref() it to keep it). */
GSource *aio_get_g_source(AioContext *ctx);

/* Wake a blocking aio_poll() (eventfd).  Safe from any thread. */
void aio_notify(AioContext *ctx);

bool aio_poll(AioContext *ctx, bool blocking);

/*
 * Run aio_poll(ctx, true) while cond holds (for synchronous callers).
 * cond must be made false by a callback of ctx (BH, fd, timer, coroutine).
 */
#define AIO_WAIT_WHILE(ctx, cond)           \
    do {                                    \
        AioContext *ctx_ = (ctx);           \
        while ((cond)) {                    \
            aio_poll(ctx_, true);           \
        }                                   \
    } while (0)

/* ---- bottom halves ---- */

QEMUBH *aio_bh_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
/* Schedule (no-op if already scheduled).  Safe from any thread. */
void qemu_bh_schedule(QEMUBH *bh);
void qemu_bh_cancel(QEMUBH *bh);
/*
 * Delete; a pending invocation is cancelled.  Safe from within any BH
 * callback, its own included.  NULL is ignored.
 */
void qemu_bh_delete(QEMUBH *bh);
/* Run cb(opaque) once at the next iteration.  Safe from any thread. */
void aio_bh_schedule_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque);

/* ---- fd handlers ---- */

/*
 * Register (or, with both handlers NULL, unregister) read/write handlers
 * for fd.  Replaces any previous registration for the same fd.  Safe to
 * call from any callback, including the fd's own handler.  io_read runs on
 * POLLIN/POLLHUP/POLLERR, io_write on POLLOUT/POLLERR.
 */
void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, void *opaque);

/* ---- clocks and timers ---- */

typedef enum QEMUClockType {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_MAX
} QEMUClockType;

#define SCALE_MS 1000000
#define SCALE_US 1000
#define SCALE_NS 1
#define NANOSECONDS_PER_SECOND 1000000000LL

int64_t qemu_clock_get_ns(QEMUClockType type);
static inline int64_t qemu_clock_get_ms(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_MS;
}
static inline int64_t qemu_clock_get_us(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_US;
}
/* Wall-clock time in ns since the epoch (event timestamps). */
int64_t qemu_clock_get_wall_ns(void);

/*
 * Tests: put a clock in manual mode (it stops, at the current monotonic
 * time, and only moves with qemu_clock_advance()).  qemu_clock_advance()
 * moves it forward by ns, stepping through every timer deadline on the
 * way, so each expiring timer (of every AioContext) runs with the clock
 * reading exactly its expire time.
 */
void qemu_clock_set_manual(QEMUClockType type, bool manual);
void qemu_clock_advance(QEMUClockType type, int64_t ns);

/* A new, unarmed timer whose times are counted in scale ns units. */
QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type, int scale,
                         QEMUTimerCB *cb, void *opaque);
/* Shorthands on the main AioContext. */
QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
/*
 * Arm (or re-arm) the timer to fire when the clock reaches expire_time (in
 * scale units).  Timers with equal expire times fire in arming order.  A
 * timer armed from a timer callback with an already-passed time fires in
 * the next iteration.
 */
void timer_mod(QEMUTimer *ts, int64_t expire_time);
/* Arm only if not pending or if expire_time is earlier. */
void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time);
/* Disarm; safe from any timer callback.  timer_free() also disarms. */
void timer_del(QEMUTimer *ts);
void timer_free(QEMUTimer *ts);
bool timer_pending(QEMUTimer *ts);
/* Expire time in ns, or -1 if not pending. */
int64_t timer_expire_time_ns(QEMUTimer *ts);

/* ---- coroutines and the loop ---- */

/*
 * Wake co (which must be yielded): outside coroutine context, enter it now;
 * inside a coroutine, queue it to be entered as soon as the current
 * coroutine yields or terminates (QEMU's co_queue_wakeup: never nested).
 */
void aio_co_wake(Coroutine *co);
/*
 * Schedule co to be entered from ctx's event loop (a BH), in scheduling
 * order.  Safe from any thread.  Scheduling a coroutine that is already
 * scheduled aborts.
 */
void aio_co_schedule(AioContext *ctx, Coroutine *co);
/*
 * Enter co in ctx: from another thread, aio_co_schedule(); from inside a
 * coroutine, queue it on the current coroutine's wakeup queue (as
 * aio_co_wake); otherwise enter it now.
 */
void aio_co_enter(AioContext *ctx, Coroutine *co);

#endif /* BLOCK_AIO_H */
