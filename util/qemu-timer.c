/*
 * Clocks and AioContext timers.
 *
 * QEMU_CLOCK_REALTIME is CLOCK_MONOTONIC.  QEMU_CLOCK_VIRTUAL is too,
 * unless a test put it in manual mode: then it stands still and moves only
 * with qemu_clock_advance(), which steps it from deadline to deadline so
 * that every timer runs with the clock reading exactly its expiry time.
 *
 * Each AioContext keeps one list of armed timers per clock, sorted by
 * expiry (ns).  Running the expired ones re-reads the list head after
 * every callback, so callbacks may arm or delete any timer.  A timer armed
 * during the current run (tracked with timer_gen) waits for the next run
 * even if already expired, so a callback re-arming itself "now" cannot
 * livelock the loop.
 *
 * Clock mode and timers are main-thread state (no locking).
 */
#include "qemu/osdep.h"
#include "util/aio-int.h"

#include <time.h>

typedef struct QEMUClock {
    bool manual;
    int64_t manual_ns;
} QEMUClock;

static QEMUClock clocks[QEMU_CLOCK_MAX];
/* Every live AioContext, for qemu_clock_advance(). */
static GList *timer_contexts;

static int64_t get_clock_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

int64_t qemu_clock_get_ns(QEMUClockType type)
{
    assert(type >= 0 && type < QEMU_CLOCK_MAX);
    if (clocks[type].manual) {
        return clocks[type].manual_ns;
    }
    return get_clock_monotonic();
}

int64_t qemu_clock_get_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

void qemu_clock_set_manual(QEMUClockType type, bool manual)
{
    assert(type >= 0 && type < QEMU_CLOCK_MAX);
    if (manual && !clocks[type].manual) {
        /* Start from "now" so already-armed timers keep their meaning. */
        clocks[type].manual_ns = get_clock_monotonic();
    }
    clocks[type].manual = manual;
}

/* ---- timer lists ---- */

void aio_timers_register(AioContext *ctx)
{
    timer_contexts = g_list_prepend(timer_contexts, ctx);
}

void aio_timers_unregister(AioContext *ctx)
{
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimer *ts;

        /* Timers still armed belong to their owners; just disarm them. */
        while ((ts = ctx->timers[type])) {
            ctx->timers[type] = ts->next;
            ts->next = NULL;
            ts->expire_time = -1;
        }
    }
    timer_contexts = g_list_remove(timer_contexts, ctx);
}

void aio_timer_init(AioContext *ctx, QEMUTimer *ts, QEMUClockType type,
                    int scale, QEMUTimerCB *cb, void *opaque)
{
    assert(type >= 0 && type < QEMU_CLOCK_MAX);
    assert(scale > 0);
    memset(ts, 0, sizeof(*ts));
    ts->ctx = ctx;
    ts->type = type;
    ts->scale = scale;
    ts->cb = cb;
    ts->opaque = opaque;
    ts->expire_time = -1;
}

QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type, int scale,
                         QEMUTimerCB *cb, void *opaque)
{
    QEMUTimer *ts = g_new(QEMUTimer, 1);

    aio_timer_init(ctx, ts, type, scale, cb, opaque);
    return ts;
}

QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    return aio_timer_new(qemu_get_aio_context(), type, SCALE_NS, cb, opaque);
}

QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    return aio_timer_new(qemu_get_aio_context(), type, SCALE_MS, cb, opaque);
}

bool timer_pending(QEMUTimer *ts)
{
    return ts->expire_time >= 0;
}

int64_t timer_expire_time_ns(QEMUTimer *ts)
{
    return ts->expire_time;
}

void timer_del(QEMUTimer *ts)
{
    QEMUTimer **pt;

    if (!timer_pending(ts)) {
        return;
    }
    for (pt = &ts->ctx->timers[ts->type]; *pt; pt = &(*pt)->next) {
        if (*pt == ts) {
            *pt = ts->next;
            break;
        }
    }
    ts->next = NULL;
    ts->expire_time = -1;
}

void timer_free(QEMUTimer *ts)
{
    if (ts) {
        timer_del(ts);
        g_free(ts);
    }
}

static void timer_mod_ns(QEMUTimer *ts, int64_t expire_ns)
{
    AioContext *ctx = ts->ctx;
    QEMUTimer **pt;

    timer_del(ts);
    ts->expire_time = MAX(expire_ns, 0);
    ts->mod_gen = ctx->timer_gen;
    for (pt = &ctx->timers[ts->type]; *pt; pt = &(*pt)->next) {
        if ((*pt)->expire_time > ts->expire_time) {
            break;
        }
    }
    ts->next = *pt;
    *pt = ts;
    /* An earlier deadline than the one a blocking poller sleeps on. */
    if (pt == &ctx->timers[ts->type]) {
        aio_notify(ctx);
    }
}

static int64_t scale_to_ns(QEMUTimer *ts, int64_t expire_time)
{
    if (expire_time > INT64_MAX / ts->scale) {
        return INT64_MAX;
    }
    return expire_time * ts->scale;
}

void timer_mod(QEMUTimer *ts, int64_t expire_time)
{
    timer_mod_ns(ts, scale_to_ns(ts, expire_time));
}

void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time)
{
    int64_t ns = scale_to_ns(ts, expire_time);

    if (!timer_pending(ts) || ns < ts->expire_time) {
        timer_mod_ns(ts, ns);
    }
}

/* ---- running ---- */

int64_t aio_timers_deadline_ns(AioContext *ctx)
{
    int64_t deadline = -1;

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimer *ts = ctx->timers[type];
        int64_t now, delta;

        if (!ts) {
            continue;
        }
        now = qemu_clock_get_ns(type);
        if (ts->expire_time <= now) {
            return 0;
        }
        if (clocks[type].manual) {
            continue;       /* only qemu_clock_advance() gets it there */
        }
        delta = ts->expire_time - now;
        if (deadline < 0 || delta < deadline) {
            deadline = delta;
        }
    }
    return deadline;
}

static bool timerlist_run(AioContext *ctx, QEMUClockType type)
{
    uint64_t gen;
    bool progress = false;
    int64_t now;

    if (!ctx->timers[type]) {
        return false;
    }
    now = qemu_clock_get_ns(type);
    gen = ctx->timer_gen++;

    for (;;) {
        QEMUTimer *ts;

        /* The first expired timer not armed during this run. */
        for (ts = ctx->timers[type]; ts && ts->expire_time <= now;
             ts = ts->next) {
            if (ts->mod_gen <= gen) {
                break;
            }
        }
        if (!ts || ts->expire_time > now) {
            break;
        }
        timer_del(ts);
        ts->cb(ts->opaque);
        progress = true;
    }
    return progress;
}

bool aio_timers_run(AioContext *ctx)
{
    bool progress = false;
    AioContext *prev = aio_push_current(ctx);

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        progress |= timerlist_run(ctx, type);
    }
    aio_pop_current(prev);
    return progress;
}

/* Earliest armed deadline on clock type over all contexts, or -1. */
static int64_t clock_earliest_deadline(QEMUClockType type)
{
    int64_t earliest = -1;

    for (GList *l = timer_contexts; l; l = l->next) {
        AioContext *ctx = l->data;
        QEMUTimer *ts = ctx->timers[type];

        if (ts && (earliest < 0 || ts->expire_time < earliest)) {
            earliest = ts->expire_time;
        }
    }
    return earliest;
}

static void clock_run_all_timers(QEMUClockType type)
{
    GList *l = timer_contexts;

    while (l) {
        GList *next = l->next;
        AioContext *ctx = l->data;
        AioContext *prev = aio_push_current(ctx);

        timerlist_run(ctx, type);
        aio_pop_current(prev);
        l = next;
    }
}

void qemu_clock_advance(QEMUClockType type, int64_t ns)
{
    int64_t target;

    assert(type >= 0 && type < QEMU_CLOCK_MAX);
    assert(clocks[type].manual);
    assert(ns >= 0);
    target = clocks[type].manual_ns + ns;

    for (;;) {
        int64_t deadline = clock_earliest_deadline(type);

        if (deadline < 0 || deadline > target) {
            break;
        }
        if (deadline > clocks[type].manual_ns) {
            clocks[type].manual_ns = deadline;
        }
        clock_run_all_timers(type);
    }
    clocks[type].manual_ns = target;
}
