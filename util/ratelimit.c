/*
 * Slice-based rate limiting; the model is described in
 * include/qemu/ratelimit.h.  Arithmetic is done in 128-bit integers so
 * that large speeds and long slices neither overflow nor lose precision.
 */
#include "qemu/osdep.h"
#include "qemu/ratelimit.h"

void ratelimit_init(RateLimit *limit)
{
    memset(limit, 0, sizeof(*limit));
    g_mutex_init(&limit->lock);
}

void ratelimit_destroy(RateLimit *limit)
{
    g_mutex_clear(&limit->lock);
}

void ratelimit_set_speed(RateLimit *limit, uint64_t speed, uint64_t slice_ns)
{
    assert(slice_ns > 0);

    g_mutex_lock(&limit->lock);
    limit->slice_ns = slice_ns;
    if (speed == 0) {
        limit->slice_quota = 0;
    } else {
        unsigned __int128 q = (unsigned __int128)speed * slice_ns /
                              NANOSECONDS_PER_SECOND;

        limit->slice_quota = q == 0 ? 1 : q > UINT64_MAX ? UINT64_MAX : q;
    }
    g_mutex_unlock(&limit->lock);
}

bool ratelimit_enabled(RateLimit *limit)
{
    bool enabled;

    g_mutex_lock(&limit->lock);
    enabled = limit->slice_quota != 0;
    g_mutex_unlock(&limit->lock);
    return enabled;
}

int64_t ratelimit_calculate_delay_at(RateLimit *limit, uint64_t n,
                                     int64_t now)
{
    unsigned __int128 len;
    int64_t delay;

    g_mutex_lock(&limit->lock);
    if (!limit->slice_quota) {
        g_mutex_unlock(&limit->lock);
        return 0;
    }

    if (limit->slice_end_time < now) {
        /* The (possibly stretched) slice is over: start a new one. */
        limit->slice_start_time = now;
        limit->slice_end_time = now + limit->slice_ns;
        limit->dispatched = 0;
    }

    limit->dispatched = n > UINT64_MAX - limit->dispatched ?
                        UINT64_MAX : limit->dispatched + n;
    if (limit->dispatched < limit->slice_quota) {
        g_mutex_unlock(&limit->lock);
        return 0;
    }

    /*
     * Quota used up: the slice lasts as long as it takes to send what was
     * dispatched at the configured rate, and the caller waits for its end.
     */
    len = (unsigned __int128)limit->dispatched * limit->slice_ns /
          limit->slice_quota;
    if (len > INT64_MAX - limit->slice_start_time) {
        len = INT64_MAX - limit->slice_start_time;
    }
    limit->slice_end_time = limit->slice_start_time + (int64_t)len;
    delay = limit->slice_end_time - now;
    g_mutex_unlock(&limit->lock);
    return delay;
}
