/*
 * Trace points (include/qemu/trace.h).
 *
 * Every trace() call site owns a static TraceEvent.  Whether it is enabled
 * depends on an ordered list of glob patterns ("backup_*", "-backup_cow*"):
 * the last pattern that matches the event's name decides, and no match
 * means disabled.  Rather than matching on every call, each event caches
 * its answer together with the value of trace_generation it was computed
 * at; changing the pattern list bumps trace_generation, so every cached
 * answer goes stale and is recomputed (under the lock) on that event's next
 * call.  trace_generation starts at 1 and never returns to 0, and static
 * events start at generation 0, so the first call always computes.
 *
 * The fast path (trace_event_check() in the header) is one load and one
 * compare without locking.  A thread that races with a pattern change may
 * use the old answer for one more call, which is harmless for tracing.
 *
 * Output lines are "<pid>@<sec>.<usec>:<name> <args>\n" (QEMU's log
 * backend format), written whole under a mutex so that lines from several
 * threads never interleave, and flushed so that a crash loses nothing.
 */
#include "qemu/osdep.h"
#include "qemu/trace.h"
#include "qemu/keyval.h"

#include <sys/time.h>

typedef struct TracePattern {
    char *glob;
    bool enable;
} TracePattern;

unsigned trace_generation = 1;

static GMutex trace_lock;
static GPtrArray *trace_patterns;   /* of TracePattern *, in order */
static FILE *trace_out;             /* NULL: stderr */
static FILE *trace_out_owned;       /* opened by "file=", closed by us */

static void trace_pattern_free(gpointer p)
{
    TracePattern *pat = p;

    g_free(pat->glob);
    g_free(pat);
}

static bool trace_match_locked(const char *name)
{
    bool enabled = false;

    if (!trace_patterns) {
        return false;
    }
    for (guint i = 0; i < trace_patterns->len; i++) {
        TracePattern *pat = g_ptr_array_index(trace_patterns, i);

        if (g_pattern_match_simple(pat->glob, name)) {
            enabled = pat->enable;
        }
    }
    return enabled;
}

bool trace_event_refresh(TraceEvent *ev)
{
    bool enabled;

    g_mutex_lock(&trace_lock);
    enabled = trace_match_locked(ev->name);
    ev->enabled = enabled;
    __atomic_store_n(&ev->generation,
                     __atomic_load_n(&trace_generation, __ATOMIC_RELAXED),
                     __ATOMIC_RELEASE);
    g_mutex_unlock(&trace_lock);
    return enabled;
}

bool trace_event_is_enabled_name(const char *name)
{
    bool enabled;

    g_mutex_lock(&trace_lock);
    enabled = trace_match_locked(name);
    g_mutex_unlock(&trace_lock);
    return enabled;
}

void trace_enable_events(const char *pattern)
{
    TracePattern *pat;
    bool enable = true;
    unsigned gen;

    if (pattern[0] == '-') {
        enable = false;
        pattern++;
    }
    if (!pattern[0]) {
        return;
    }
    pat = g_new(TracePattern, 1);
    pat->glob = g_strdup(pattern);
    pat->enable = enable;

    g_mutex_lock(&trace_lock);
    if (!trace_patterns) {
        trace_patterns = g_ptr_array_new_with_free_func(trace_pattern_free);
    }
    if (!strcmp(pattern, "*")) {
        /* Overrides everything before it. */
        g_ptr_array_set_size(trace_patterns, 0);
    }
    g_ptr_array_add(trace_patterns, pat);
    gen = trace_generation + 1;
    if (gen == 0) {
        gen = 1;        /* 0 is reserved for "never computed" */
    }
    __atomic_store_n(&trace_generation, gen, __ATOMIC_RELEASE);
    g_mutex_unlock(&trace_lock);
}

/* Install @f as output; takes ownership if @owned. */
static void trace_set_output_locked(FILE *f, bool owned)
{
    if (trace_out_owned && trace_out_owned != f) {
        fclose(trace_out_owned);
    }
    trace_out_owned = owned ? f : NULL;
    trace_out = f;
}

void trace_set_output(FILE *f)
{
    g_mutex_lock(&trace_lock);
    trace_set_output_locked(f, false);
    g_mutex_unlock(&trace_lock);
}

void trace_event_emit(TraceEvent *ev, const char *fmt, ...)
{
    int saved_errno = errno;
    g_autofree char *msg = NULL;
    struct timeval tv;
    va_list ap;
    FILE *out;

    gettimeofday(&tv, NULL);
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    g_mutex_lock(&trace_lock);
    out = trace_out ? trace_out : stderr;
    fprintf(out, "%d@%lld.%06ld:%s%s\n", (int)getpid(),
            (long long)tv.tv_sec, (long)tv.tv_usec, ev->name,
            strcmp(msg, " ") ? msg : "");
    fflush(out);
    g_mutex_unlock(&trace_lock);
    errno = saved_errno;
}

/*
 * Read an events file: one pattern per line, '#' starts a comment line,
 * blank lines are ignored.  Returns the patterns, or NULL with *errp set.
 */
static char **trace_read_events_file(const char *path, Error **errp)
{
    g_autofree char *contents = NULL;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) pats = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &contents, NULL, &gerr)) {
        error_setg(errp, "Could not read trace events file '%s': %s",
                   path, gerr->message);
        return NULL;
    }
    lines = g_strsplit(contents, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *line = g_strstrip(*l);

        if (line[0] && line[0] != '#') {
            g_ptr_array_add(pats, g_strdup(line));
        }
    }
    g_ptr_array_add(pats, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&pats), false);
}

bool trace_opt_parse(const char *optarg, Error **errp)
{
    json_t *opts;
    const char *key;
    json_t *value;
    const char *enable = NULL, *events = NULL, *file = NULL;
    g_auto(GStrv) event_pats = NULL;
    FILE *f = NULL;

    opts = keyval_parse(optarg, "enable", NULL, errp);
    if (!opts) {
        return false;
    }
    json_object_foreach(opts, key, value) {
        const char **slot;

        if (!strcmp(key, "enable")) {
            slot = &enable;
        } else if (!strcmp(key, "events")) {
            slot = &events;
        } else if (!strcmp(key, "file")) {
            slot = &file;
        } else {
            error_setg(errp, "Invalid parameter '%s'", key);
            json_decref(opts);
            return false;
        }
        if (!json_is_string(value)) {
            error_setg(errp, "Parameter '%s' expects a string", key);
            json_decref(opts);
            return false;
        }
        *slot = json_string_value(value);
    }

    /* Everything that can fail comes before anything that changes state. */
    if (events) {
        event_pats = trace_read_events_file(events, errp);
        if (!event_pats) {
            json_decref(opts);
            return false;
        }
    }
    if (file) {
        f = fopen(file, "w");
        if (!f) {
            error_setg_errno(errp, errno, "Could not open trace file '%s'",
                             file);
            json_decref(opts);
            return false;
        }
    }

    for (char **p = event_pats; p && *p; p++) {
        trace_enable_events(*p);
    }
    if (enable) {
        trace_enable_events(enable);
    }
    if (f) {
        g_mutex_lock(&trace_lock);
        trace_set_output_locked(f, true);
        g_mutex_unlock(&trace_lock);
    }
    json_decref(opts);
    return true;
}
