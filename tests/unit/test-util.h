/*
 * Helpers that several Check suites repeat: QMP events recorded as short
 * strings, a recorded log compared with an expected NULL-terminated list,
 * an Error compared with an expected message, the main loop run until
 * it is idle, and a command line run to completion (test_run_cmd).
 *
 * Include after "qemu/osdep.h".  Everything is static inline so that a
 * suite using only part of it builds warning-free.
 */
#ifndef TESTS_UNIT_TEST_UTIL_H
#define TESTS_UNIT_TEST_UTIL_H

#include "block/aio.h"
#include "qapi/error.h"
#include <check.h>
#include <jansson.h>

/*
 * Append @event to @log: JOB_STATUS_CHANGE as "id:status", any other
 * event as "NAME {data}" (compact JSON, sorted keys).
 */
static inline void test_log_event(GPtrArray *log, const char *name,
                                  json_t *event)
{
    json_t *data = json_object_get(event, "data");

    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        g_ptr_array_add(log, g_strdup_printf(
            "%s:%s", json_string_value(json_object_get(data, "id")),
            json_string_value(json_object_get(data, "status"))));
    } else {
        char *d = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);

        g_ptr_array_add(log, g_strdup_printf("%s %s", name, d));
        free(d);
    }
}

/* @first and the strings after it up to NULL, joined with ", " */
static inline char *test_join_va(const char *first, va_list ap)
{
    GString *s = g_string_new("");

    for (const char *e = first; e; e = va_arg(ap, const char *)) {
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", e);
    }
    return g_string_free(s, false);
}

/* The strings of @a joined with ", " */
static inline char *test_join_array(GPtrArray *a)
{
    GString *s = g_string_new("");

    for (guint i = 0; i < a->len; i++) {
        g_string_append_printf(s, "%s%s", i ? ", " : "",
                               (char *)g_ptr_array_index(a, i));
    }
    return g_string_free(s, false);
}

/* Assert that @log holds exactly the list @first, @ap; then empty it. */
static inline void test_expect_log_va(GPtrArray *log, const char *first,
                                      va_list ap)
{
    g_autofree char *got = test_join_array(log);
    g_autofree char *want = test_join_va(first, ap);

    ck_assert_str_eq(got, want);
    g_ptr_array_set_size(log, 0);
}

/* Assert that *@err is set with message @msg; free and clear it. */
static inline void test_assert_err(Error **err, const char *msg)
{
    ck_assert_ptr_nonnull(*err);
    ck_assert_str_eq(error_get_pretty(*err), msg);
    error_free(*err);
    *err = NULL;
}

/* Run the main loop until nothing is left to do. */
/* Remove a test's flat scratch directory: its files, then itself */
static inline void test_rm_dir(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);

        unlink(p);
    }
    if (d) {
        g_dir_close(d);
    }
    rmdir(dir);
}

static inline void test_drain_loop(void)
{
    while (aio_poll(qemu_get_aio_context(), false)) {
    }
}

/*
 * Run a command line (split like a shell would, no shell features) and
 * return its exit status (-1 if killed); its stdout and stderr, joined,
 * replace *out unless out is NULL.
 */
static inline int test_run_cmd(char **out, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
static inline int test_run_cmd(char **out, const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    g_autofree char *sout = NULL, *serr = NULL;
    g_auto(GStrv) argv = NULL;
    int status = -1;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    ck_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    ck_assert(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                           &sout, &serr, &status, NULL));
    if (out) {
        g_free(*out);
        *out = g_strconcat(sout, serr, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif /* TESTS_UNIT_TEST_UTIL_H */
