/*
 * Unit tests for trace points (util/trace.c).  Each test runs in its own
 * process (Check's fork mode), so the global pattern list starts empty;
 * tests that must also work without fork reset it with "-*" first.
 */
#include "qemu/osdep.h"
#include "qemu/trace.h"
#include <check.h>

/* Read everything written to @f so far. */
static char *slurp(FILE *f)
{
    GString *s = g_string_new(NULL);
    char buf[512];
    size_t n;

    fflush(f);
    rewind(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        g_string_append_len(s, buf, n);
    }
    return g_string_free(s, false);
}

/* Truncate @f for the next round. */
static void clear(FILE *f)
{
    fflush(f);
    ck_assert_int_eq(ftruncate(fileno(f), 0), 0);
    rewind(f);
}

/*
 * Check that @line is "<pid>@<sec>.<usec>:<rest>" with our pid and a
 * plausible time, and return <rest>.
 */
static const char *check_prefix(const char *line)
{
    const char *p;
    char *end;
    long long pid, sec, usec;
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;

    pid = strtoll(line, &end, 10);
    ck_assert_int_eq(pid, getpid());
    ck_assert_int_eq(*end, '@');
    p = end + 1;
    sec = strtoll(p, &end, 10);
    ck_assert_int_le(sec, now);
    ck_assert_int_ge(sec, now - 60);
    ck_assert_int_eq(*end, '.');
    p = end + 1;
    usec = strtoll(p, &end, 10);
    ck_assert_int_eq(end - p, 6);       /* always six digits */
    ck_assert_int_lt(usec, 1000000);
    ck_assert_int_eq(*end, ':');
    return end + 1;
}

static void fire_a(int v)
{
    trace(test_ev_alpha, "value %d name %s", v, "x");
}

static void fire_b(void)
{
    trace(test_ev_beta, "");
}

static void fire_other(void)
{
    trace(other_event, "n %" PRId64, (int64_t)-5);
}

START_TEST(test_patterns)
{
    trace_enable_events("-*");
    ck_assert_uint_ge(trace_generation, 1);
    ck_assert(!trace_event_is_enabled_name("backup_do_cow"));

    trace_enable_events("backup_*");
    ck_assert(trace_event_is_enabled_name("backup_do_cow"));
    ck_assert(trace_event_is_enabled_name("backup_run"));
    ck_assert(!trace_event_is_enabled_name("job_state"));
    ck_assert(!trace_event_is_enabled_name("xbackup_run"));

    /* later patterns override earlier ones */
    trace_enable_events("-backup_do_*");
    ck_assert(!trace_event_is_enabled_name("backup_do_cow"));
    ck_assert(trace_event_is_enabled_name("backup_run"));
    trace_enable_events("backup_do_cow");
    ck_assert(trace_event_is_enabled_name("backup_do_cow"));
    ck_assert(!trace_event_is_enabled_name("backup_do_other"));

    /* '?' and '*' globs */
    trace_enable_events("job_?");
    ck_assert(trace_event_is_enabled_name("job_x"));
    ck_assert(!trace_event_is_enabled_name("job_xy"));

    /* "*" and "-*" override everything */
    trace_enable_events("*");
    ck_assert(trace_event_is_enabled_name("backup_do_other"));
    ck_assert(trace_event_is_enabled_name("anything"));
    trace_enable_events("-*");
    ck_assert(!trace_event_is_enabled_name("backup_run"));

    /* empty patterns are ignored */
    trace_enable_events("");
    trace_enable_events("-");
    ck_assert(!trace_event_is_enabled_name("backup_run"));
}
END_TEST

START_TEST(test_static_event_refresh)
{
    TraceEvent ev = { .name = "manual_ev" };
    unsigned gen;

    trace_enable_events("-*");
    /* a fresh event (generation 0) is always computed */
    ck_assert_uint_eq(ev.generation, 0);
    ck_assert(!trace_event_check(&ev));
    ck_assert_uint_eq(ev.generation, trace_generation);

    gen = trace_generation;
    trace_enable_events("manual_*");
    ck_assert_uint_ne(trace_generation, gen);
    /* the cached answer is stale and recomputed */
    ck_assert(trace_event_check(&ev));
    ck_assert(ev.enabled);
    trace_enable_events("-manual_ev");
    ck_assert(!trace_event_check(&ev));
}
END_TEST

START_TEST(test_output_line)
{
    FILE *f = tmpfile();
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;

    ck_assert_ptr_nonnull(f);
    trace_enable_events("-*");
    trace_set_output(f);

    /* disabled: nothing */
    fire_a(1);
    fire_b();
    out = slurp(f);
    ck_assert_str_eq(out, "");
    g_free(out);

    /* enabled by pattern; the call sites pick up the change */
    trace_enable_events("test_ev_*");
    fire_a(42);
    fire_b();
    fire_other();
    out = slurp(f);
    lines = g_strsplit(out, "\n", -1);
    ck_assert_uint_eq(g_strv_length(lines), 3);   /* two lines + "" */
    ck_assert_str_eq(check_prefix(lines[0]), "test_ev_alpha value 42 name x");
    /* no trailing space when there are no arguments */
    ck_assert_str_eq(check_prefix(lines[1]), "test_ev_beta");
    ck_assert_str_eq(lines[2], "");

    /* disabling one event again */
    clear(f);
    trace_enable_events("-test_ev_alpha");
    trace_enable_events("other_*");
    fire_a(7);
    fire_b();
    fire_other();
    g_free(out);
    out = slurp(f);
    g_strfreev(lines);
    lines = g_strsplit(out, "\n", -1);
    ck_assert_uint_eq(g_strv_length(lines), 3);
    ck_assert_str_eq(check_prefix(lines[0]), "test_ev_beta");
    ck_assert_str_eq(check_prefix(lines[1]), "other_event n -5");

    trace_set_output(NULL);
    fclose(f);
}
END_TEST

START_TEST(test_errno_preserved)
{
    FILE *f = tmpfile();

    trace_enable_events("test_ev_*");
    trace_set_output(f);
    errno = EXDEV;
    fire_a(1);
    ck_assert_int_eq(errno, EXDEV);
    trace_set_output(NULL);
    fclose(f);
}
END_TEST

START_TEST(test_opt_parse)
{
    g_autofree char *dir = g_dir_make_tmp("test-trace-XXXXXX", NULL);
    g_autofree char *events = g_build_filename(dir, "events", NULL);
    g_autofree char *log = g_build_filename(dir, "log", NULL);
    g_autofree char *opt = NULL;
    g_autofree char *contents = NULL;
    Error *err = NULL;

    ck_assert_ptr_nonnull(dir);
    trace_enable_events("-*");

    /* bare pattern and enable= */
    ck_assert(trace_opt_parse("bare_*", &error_abort));
    ck_assert(trace_event_is_enabled_name("bare_x"));
    ck_assert(trace_opt_parse("-bare_y", &error_abort));
    ck_assert(!trace_event_is_enabled_name("bare_y"));
    ck_assert(trace_opt_parse("enable=en_*", &error_abort));
    ck_assert(trace_event_is_enabled_name("en_1"));

    /* events file: comments, blank lines, disables, whitespace */
    ck_assert(g_file_set_contents(events,
                                  "# my events\n"
                                  "ev_file_*\n"
                                  "\n"
                                  "  -ev_file_no  \n"
                                  "single_ev", -1, NULL));
    opt = g_strdup_printf("events=%s", events);
    ck_assert(trace_opt_parse(opt, &error_abort));
    ck_assert(trace_event_is_enabled_name("ev_file_yes"));
    ck_assert(!trace_event_is_enabled_name("ev_file_no"));
    ck_assert(trace_event_is_enabled_name("single_ev"));
    ck_assert(!trace_event_is_enabled_name("# my events"));

    /* file= together with a pattern: output goes to the file */
    g_free(opt);
    opt = g_strdup_printf("test_ev_alpha,file=%s", log);
    ck_assert(trace_opt_parse(opt, &error_abort));
    fire_a(99);
    ck_assert(g_file_get_contents(log, &contents, NULL, NULL));
    ck_assert(g_str_has_suffix(contents, ":test_ev_alpha value 99 name x\n"));
    check_prefix(contents);

    /* errors, which change nothing */
    ck_assert(!trace_opt_parse("bogus=1", &err));
    ck_assert_str_eq(error_get_pretty(err), "Invalid parameter 'bogus'");
    error_free(err);
    err = NULL;
    ck_assert(!trace_opt_parse("enable.x=1", &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Parameter 'enable' expects a string");
    error_free(err);
    err = NULL;
    ck_assert(!trace_opt_parse("nope_*,events=/nonexistent/events", &err));
    ck_assert(g_str_has_prefix(error_get_pretty(err),
              "Could not read trace events file '/nonexistent/events'"));
    ck_assert(!trace_event_is_enabled_name("nope_1"));
    error_free(err);
    err = NULL;
    ck_assert(!trace_opt_parse("nope_*,file=/nonexistent/dir/log", &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Could not open trace file '/nonexistent/dir/log': "
                     "No such file or directory");
    ck_assert(!trace_event_is_enabled_name("nope_1"));
    error_free(err);
    err = NULL;
    ck_assert(!trace_opt_parse("a,b", &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Expected '=' after parameter 'b'");
    error_free(err);

    /* the log is still the output after the failed attempts */
    fire_a(100);
    g_free(contents);
    ck_assert(g_file_get_contents(log, &contents, NULL, NULL));
    ck_assert(g_str_has_suffix(contents, ":test_ev_alpha value 100 name x\n"));

    trace_set_output(NULL);         /* closes the log */
    unlink(events);
    unlink(log);
    rmdir(dir);
}
END_TEST

#define THREADS 4
#define LINES_PER_THREAD 2000
#define PADDING "................................" \
                "................................"

static gpointer emit_thread(gpointer opaque)
{
    int id = GPOINTER_TO_INT(opaque);

    for (int i = 0; i < LINES_PER_THREAD; i++) {
        trace(test_ev_thread, "thread %d line %d padding %s", id, i,
              PADDING);
    }
    return NULL;
}

START_TEST(test_threads)
{
    FILE *f = tmpfile();
    GThread *threads[THREADS];
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    int next[THREADS] = { 0 };

    trace_enable_events("test_ev_thread");
    trace_set_output(f);
    for (int i = 0; i < THREADS; i++) {
        threads[i] = g_thread_new("emit", emit_thread, GINT_TO_POINTER(i));
    }
    for (int i = 0; i < THREADS; i++) {
        g_thread_join(threads[i]);
    }
    trace_set_output(NULL);
    out = slurp(f);
    fclose(f);

    /* every line whole, and each thread's lines in order */
    lines = g_strsplit(out, "\n", -1);
    ck_assert_uint_eq(g_strv_length(lines), THREADS * LINES_PER_THREAD + 1);
    for (int i = 0; i < THREADS * LINES_PER_THREAD; i++) {
        const char *rest = strchr(lines[i], ':');
        int id, n;
        char pad[100];

        if (!rest || sscanf(rest, ":test_ev_thread thread %d line %d "
                            "padding %99s", &id, &n, pad) != 3 ||
            id < 0 || id >= THREADS || n != next[id] || strlen(pad) != 64) {
            ck_abort_msg("bad line %d: '%s'", i, lines[i]);
        }
        next[id]++;
    }
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("core");

    /* 4 threads x 2000 lines: more than 4 s under ASan on a loaded host */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_patterns);
    tcase_add_test(tc, test_static_event_refresh);
    tcase_add_test(tc, test_output_line);
    tcase_add_test(tc, test_errno_preserved);
    tcase_add_test(tc, test_opt_parse);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
