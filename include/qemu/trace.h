/*
 * Trace points: compiled in everywhere, off by default, enabled at run time
 * with `-T pattern` / --trace (glob patterns on event names, e.g.
 * "backup_*"; several patterns may be given; "-pattern" disables).
 *
 * Use:  trace(backup_do_cow_enter, "job %p offset %" PRId64, job, off);
 * prints   "backup_do_cow_enter job 0x... offset 65536"  with a
 * "<pid>@<seconds>.<usec>:" prefix to stderr (or the file set with
 * trace_set_output()).  A disabled trace point costs one compare.
 */
#ifndef QEMU_TRACE_H
#define QEMU_TRACE_H

#include "qemu/osdep.h"
#include "qapi/error.h"

typedef struct TraceEvent {
    const char *name;
    unsigned generation;    /* trace_generation when `enabled` was computed */
    bool enabled;
} TraceEvent;

extern unsigned trace_generation;

bool trace_event_refresh(TraceEvent *ev);
/*
 * Write one line "<pid>@<sec>.<usec>:<name><formatted fmt>".  @fmt starts
 * with the space separating the name from the arguments (trace() adds
 * it); a result that is only that space is dropped.  Thread-safe; lines
 * never interleave.  errno is preserved.
 */
void trace_event_emit(TraceEvent *ev, const char *fmt, ...) QEMU_PRINTF(2, 3);

static inline bool trace_event_check(TraceEvent *ev)
{
    if (likely(ev->generation == trace_generation)) {
        return ev->enabled;
    }
    return trace_event_refresh(ev);
}

/*
 * @fmt must be a string literal; it may be "" for a trace point without
 * arguments.  (The macro prepends the separating space to it, which keeps
 * the format non-empty for -Wformat-zero-length.)
 */
#define trace(ev_name_, fmt, ...)                                       \
    do {                                                                \
        static TraceEvent trace_ev_ = { .name = #ev_name_ };            \
        if (unlikely(trace_event_check(&trace_ev_))) {                  \
            trace_event_emit(&trace_ev_, " " fmt, ##__VA_ARGS__);       \
        }                                                               \
    } while (0)

/*
 * Add an enable (or, with a leading '-', disable) pattern.  "file=PATH"
 * sends output to PATH, "events=FILE" reads patterns from a file, one per
 * line (qemu's -trace syntax); a bare pattern is the same as enable=PATTERN.
 */
bool trace_opt_parse(const char *optarg, Error **errp);
void trace_enable_events(const char *pattern);
void trace_set_output(FILE *f);
/* True if a pattern enables the named event (tests). */
bool trace_event_is_enabled_name(const char *name);

#endif /* QEMU_TRACE_H */
