/*
 * RateLimit: byte-rate throttling for block jobs (QEMU's semantics).
 *
 * Time is cut into slices of slice_ns; each slice may dispatch
 * slice_quota = speed * slice_ns / 1e9 bytes (at least 1).  A caller
 * accounts each chunk it is about to send with ratelimit_calculate_delay()
 * and sleeps for the returned number of nanoseconds before sending the
 * next one:
 *
 * - within the current slice's quota, the delay is 0;
 * - once the dispatched total reaches the quota, the slice is stretched to
 *   cover everything dispatched (dispatched / quota slices long) and the
 *   delay is the time until that stretched slice ends;
 * - after the slice has ended, the next call starts a fresh slice.
 *
 * So a single chunk larger than the quota is allowed through, and paid for
 * afterwards with a proportionally longer wait; the long-run rate is the
 * configured speed.  speed 0 means unlimited (delay always 0).
 *
 * All functions are thread-safe (a job's coroutine and a QMP
 * block-job-set-speed may race).
 */
#ifndef QEMU_RATELIMIT_H
#define QEMU_RATELIMIT_H

#include "qemu/osdep.h"
#include "block/aio.h"

typedef struct RateLimit {
    GMutex lock;
    int64_t slice_start_time;
    int64_t slice_end_time;
    uint64_t slice_quota;       /* 0: unlimited */
    uint64_t slice_ns;
    uint64_t dispatched;
} RateLimit;

/* Default slice length used by block jobs (QEMU: 100 ms). */
#define RATELIMIT_SLICE_NS (INT64_C(100) * SCALE_MS)

void ratelimit_init(RateLimit *limit);
void ratelimit_destroy(RateLimit *limit);

/*
 * Set the rate in bytes per second (0 = unlimited) and the slice length
 * (> 0).  The current slice's accounting is kept.
 */
void ratelimit_set_speed(RateLimit *limit, uint64_t speed, uint64_t slice_ns);

/* True unless the speed is 0. */
bool ratelimit_enabled(RateLimit *limit);

/*
 * Account @n bytes dispatched at time @now (ns, any monotonic clock) and
 * return how many ns to wait before dispatching more.  Tests call this
 * directly with an invented clock.
 */
int64_t ratelimit_calculate_delay_at(RateLimit *limit, uint64_t n,
                                     int64_t now);

/* As above, at the current QEMU_CLOCK_REALTIME time. */
static inline int64_t ratelimit_calculate_delay(RateLimit *limit, uint64_t n)
{
    return ratelimit_calculate_delay_at(limit, n,
                                        qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
}

#endif /* QEMU_RATELIMIT_H */
