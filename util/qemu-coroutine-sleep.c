/*
 * Coroutine sleeps: a timer on the coroutine's AioContext (on the
 * sleeper's stack) that wakes it, unless qemu_co_sleep_wake() does first.
 */
#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include "util/aio-int.h"

void qemu_co_sleep_wake(QemuCoSleep *w)
{
    Coroutine *co = w->to_wake;

    if (co) {
        w->to_wake = NULL;
        aio_co_wake(co);
    }
}

static void co_sleep_cb(void *opaque)
{
    qemu_co_sleep_wake(opaque);
}

void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                            QEMUClockType type, int64_t ns)
{
    Coroutine *self = qemu_coroutine_self();
    AioContext *ctx = qemu_get_current_aio_context();
    QEMUTimer ts;

    assert(qemu_in_coroutine());
    assert(!w->to_wake);
    aio_timer_init(ctx, &ts, type, SCALE_NS, co_sleep_cb, w);
    timer_mod(&ts, qemu_clock_get_ns(type) + MAX(ns, 0));
    w->to_wake = self;
    qemu_coroutine_yield();
    /* Woken by the timer or by qemu_co_sleep_wake(): both cleared it. */
    assert(!w->to_wake);
    timer_del(&ts);
}

void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns)
{
    QemuCoSleep w = { 0 };

    qemu_co_sleep_ns_wakeable(&w, type, ns);
}
