/*
 * Unit tests for QMP dispatch, generated marshalers, events and
 * introspection, using the test schema (prefix "test-").  The handlers
 * below are the hand-written qmp_* functions the generated
 * test-qapi-commands.c calls.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp-dispatch.h"
#include "qapi/qmp-event.h"
#include "tests/qapi/test-qapi-commands.h"
#include "tests/qapi/test-qapi-events.h"
#include "tests/qapi/test-qapi-introspect.h"
#include "qapi-introspect.h"
#include <check.h>

/* ---- handlers ----------------------------------------------------------- */

static int boxed_calls;
static TestDriver boxed_driver;
static char *boxed_filename;

UserDefOne *qmp_user_def_cmd(const char *name, int64_t count, bool has_mode,
                             EnumOne mode, strList *tags, Error **errp)
{
    UserDefOne *ret = g_new0(UserDefOne, 1);
    int ntags = 0;

    for (; tags; tags = tags->next) {
        ntags++;
    }
    ret->integer = count + ntags;
    ret->string = g_strdup(name);
    ret->has_enum1 = has_mode;
    ret->enum1 = mode;
    return ret;
}

void qmp_cmd_no_args(Error **errp)
{
}

void qmp_cmd_fails(bool has_not_found, bool not_found, Error **errp)
{
    if (has_not_found && not_found) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Cannot find device='%s' nor node-name='%s'", "d", "d");
    } else {
        error_setg(errp, "Bitmap '%s' could not be found", "b0");
    }
}

void qmp_cmd_boxed(TestOptions *arg, Error **errp)
{
    boxed_calls++;
    boxed_driver = arg->driver;
    g_free(boxed_filename);
    boxed_filename = arg->driver == TEST_DRIVER_FILE ?
        g_strdup(arg->u.file.filename) : NULL;
}

UserDefOneList *qmp_cmd_list(int64_t n, Error **errp)
{
    UserDefOneList *head = NULL;

    while (n-- > 0) {
        UserDefOneList *elt = g_new0(UserDefOneList, 1);

        elt->value = g_new0(UserDefOne, 1);
        elt->value->integer = n;
        elt->value->string = g_strdup_printf("e%" PRId64, n);
        elt->next = head;
        head = elt;
    }
    return head;
}

char *qmp_cmd_str(Error **errp)
{
    return g_strdup("hello");
}

json_t *qmp_cmd_any(json_t *value, Error **errp)
{
    return json_pack("{s:O}", "echo", value);
}

/* A hand-registered qmp_capabilities, as the monitor will have */
static void marshal_capabilities(json_t *args, json_t **ret, Error **errp)
{
    *ret = json_object();
}

/* ---- helpers ------------------------------------------------------------ */

static QmpCommandList cmds;

static void setup(void)
{
    memset(&cmds, 0, sizeof(cmds));
    test_qmp_init_marshal(&cmds);
    qmp_register_command(&cmds, "qmp_capabilities", marshal_capabilities,
                         QCO_ALLOW_PRECONFIG, 0);
    qmp_set_reject_deprecated(false);
}

static void teardown(void)
{
    qmp_command_list_destroy(&cmds);
    g_free(boxed_filename);
    boxed_filename = NULL;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_DECODE_ANY, &jerr);

    ck_assert_msg(obj, "bad test JSON: %s", text);
    return obj;
}

/* Dispatch @request in command mode; return the response. */
static json_t *dispatch_full(const char *request, bool negotiated)
{
    g_autoptr(json_t) req = parse(request);

    return qmp_dispatch(&cmds, req, negotiated);
}

static json_t *dispatch(const char *request)
{
    return dispatch_full(request, true);
}

static void check_json_eq(json_t *got, const char *expected)
{
    g_autoptr(json_t) exp = parse(expected);

    if (!json_equal(got, exp)) {
        g_autofree char *s = json_dumps(got, JSON_SORT_KEYS);

        ck_abort_msg("got %s, expected %s", s, expected);
    }
}

static void check_error_full(const char *request, bool negotiated,
                             const char *cls, const char *desc)
{
    g_autoptr(json_t) resp = dispatch_full(request, negotiated);
    json_t *err = json_object_get(resp, "error");

    ck_assert_msg(err, "no error for %s", request);
    ck_assert_ptr_null(json_object_get(resp, "return"));
    ck_assert_str_eq(json_string_value(json_object_get(err, "class")), cls);
    ck_assert_str_eq(json_string_value(json_object_get(err, "desc")), desc);
}

static void check_error(const char *request, const char *desc)
{
    check_error_full(request, true, "GenericError", desc);
}

/* ---- dispatch ----------------------------------------------------------- */

START_TEST(test_dispatch_success)
{
    g_autoptr(json_t) r1 = dispatch(
        "{\"execute\": \"user-def-cmd\", \"arguments\": {\"name\": \"n\","
        " \"count\": 40, \"mode\": \"value2\", \"tags\": [\"a\", \"b\"]},"
        " \"id\": \"abc\"}");
    g_autoptr(json_t) r2 = dispatch("{\"execute\": \"cmd-no-args\"}");
    g_autoptr(json_t) r3 = dispatch("{\"execute\": \"cmd-no-args\","
                                    " \"arguments\": {}, \"id\": 7}");
    g_autoptr(json_t) r4 = dispatch("{\"execute\": \"cmd-list\","
                                    " \"arguments\": {\"n\": 2}}");
    g_autoptr(json_t) r5 = dispatch("{\"execute\": \"cmd-str\"}");
    g_autoptr(json_t) r6 = dispatch("{\"execute\": \"cmd-any\","
                                    " \"arguments\": {\"value\": [1, null]}}");
    g_autoptr(json_t) r7 = dispatch("{\"execute\": \"cmd-list\","
                                    " \"arguments\": {\"n\": 0}}");

    check_json_eq(r1, "{\"return\": {\"integer\": 42, \"string\": \"n\","
                  " \"enum1\": \"value2\"}, \"id\": \"abc\"}");
    check_json_eq(r2, "{\"return\": {}}");
    check_json_eq(r3, "{\"return\": {}, \"id\": 7}");
    check_json_eq(r4, "{\"return\": [{\"integer\": 0, \"string\": \"e0\"},"
                  " {\"integer\": 1, \"string\": \"e1\"}]}");
    check_json_eq(r5, "{\"return\": \"hello\"}");
    check_json_eq(r6, "{\"return\": {\"echo\": [1, null]}}");
    check_json_eq(r7, "{\"return\": []}");
}
END_TEST

START_TEST(test_dispatch_boxed)
{
    g_autoptr(json_t) r1 = dispatch(
        "{\"execute\": \"cmd-boxed\", \"arguments\": {\"driver\": \"file\","
        " \"filename\": \"/img\", \"node-name\": \"n\"}}");

    check_json_eq(r1, "{\"return\": {}}");
    ck_assert_int_eq(boxed_calls, 1);
    ck_assert_int_eq(boxed_driver, TEST_DRIVER_FILE);
    ck_assert_str_eq(boxed_filename, "/img");
    check_error("{\"execute\": \"cmd-boxed\", \"arguments\": "
                "{\"driver\": \"null-co\", \"filename\": \"/img\"}}",
                "Parameter 'filename' is unexpected");
    /* a failed argument check does not call the handler */
    ck_assert_int_eq(boxed_calls, 1);
}
END_TEST

START_TEST(test_dispatch_unknown_command)
{
    g_autoptr(json_t) resp = dispatch("{\"execute\": \"foo\", \"id\": "
                                      "{\"x\": [1]}}");

    check_json_eq(resp, "{\"error\": {\"class\": \"CommandNotFound\","
                  " \"desc\": \"The command foo has not been found\"},"
                  " \"id\": {\"x\": [1]}}");
}
END_TEST

START_TEST(test_dispatch_malformed)
{
    g_autoptr(json_t) r1 = dispatch("[1, 2]");
    g_autoptr(json_t) r2 = dispatch("{\"arguments\": {}, \"id\": 3}");

    check_json_eq(r1, "{\"error\": {\"class\": \"GenericError\","
                  " \"desc\": \"QMP input must be a JSON object\"}}");
    /* the id is echoed even when the request is malformed */
    check_json_eq(r2, "{\"error\": {\"class\": \"GenericError\","
                  " \"desc\": \"QMP input lacks member 'execute'\"},"
                  " \"id\": 3}");
    check_error("{\"execute\": 1}",
                "QMP input member 'execute' must be a string");
    check_error("{\"execute\": \"cmd-no-args\", \"arguments\": []}",
                "QMP input member 'arguments' must be an object");
    check_error("{\"execute\": \"cmd-no-args\", \"foo\": 1}",
                "QMP input member 'foo' is unexpected");
    check_error("{\"execute\": \"cmd-no-args\", \"exec-oob\": \"x\"}",
                "QMP input member 'exec-oob' is unexpected");
}
END_TEST

START_TEST(test_dispatch_argument_errors)
{
    check_error("{\"execute\": \"user-def-cmd\", \"arguments\": "
                "{\"name\": \"n\"}}", "Parameter 'count' is missing");
    check_error("{\"execute\": \"user-def-cmd\", \"arguments\": "
                "{\"name\": \"n\", \"count\": \"1\"}}",
                "Invalid parameter type for 'count', expected: integer");
    check_error("{\"execute\": \"user-def-cmd\", \"arguments\": "
                "{\"name\": \"n\", \"count\": 1, \"mode\": \"sideways\"}}",
                "Parameter 'mode' does not accept value 'sideways'");
    check_error("{\"execute\": \"user-def-cmd\", \"arguments\": "
                "{\"name\": \"n\", \"count\": 1, \"tags\": [1]}}",
                "Invalid parameter type for 'tags[0]', expected: string");
    check_error("{\"execute\": \"cmd-no-args\", \"arguments\": "
                "{\"x\": 1}}", "Parameter 'x' is unexpected");
}
END_TEST

START_TEST(test_dispatch_command_error)
{
    g_autoptr(json_t) r = dispatch("{\"execute\": \"cmd-fails\","
                                   " \"id\": \"f\"}");

    check_json_eq(r, "{\"error\": {\"class\": \"GenericError\","
                  " \"desc\": \"Bitmap 'b0' could not be found\"},"
                  " \"id\": \"f\"}");
    check_error_full("{\"execute\": \"cmd-fails\", \"arguments\": "
                     "{\"not-found\": true}}", true, "DeviceNotFound",
                     "Cannot find device='d' nor node-name='d'");
}
END_TEST

START_TEST(test_dispatch_negotiation)
{
    g_autoptr(json_t) ok = dispatch_full("{\"execute\": \"qmp_capabilities\"}",
                                         false);

    check_json_eq(ok, "{\"return\": {}}");
    check_error_full("{\"execute\": \"cmd-no-args\"}", false,
                     "CommandNotFound",
                     "Expecting capabilities negotiation with "
                     "'qmp_capabilities'");
    check_error_full("{\"execute\": \"qmp_capabilities\"}", true,
                     "CommandNotFound",
                     "Capabilities negotiation is already complete, "
                     "command ignored");
}
END_TEST

START_TEST(test_dispatch_flags)
{
    const QmpCommand *c;

    c = qmp_find_command(&cmds, "cmd-str");
    ck_assert_ptr_nonnull(c);
    ck_assert(c->special_features & QAPI_FEAT_DEPRECATED);
    c = qmp_find_command(&cmds, "cmd-list");
    ck_assert(c->options & QCO_ALLOW_PRECONFIG);
    ck_assert(!(c->special_features & QAPI_FEAT_DEPRECATED));
    ck_assert_ptr_null(qmp_find_command(&cmds, "nope"));

    qmp_set_reject_deprecated(true);
    check_error_full("{\"execute\": \"cmd-str\"}", true, "CommandNotFound",
                     "Deprecated command cmd-str disabled by policy");
    qmp_set_reject_deprecated(false);

    qmp_disable_command(&cmds, "cmd-no-args", "for a test");
    check_error_full("{\"execute\": \"cmd-no-args\"}", true,
                     "CommandNotFound",
                     "Command cmd-no-args has been disabled: for a test");
    qmp_enable_command(&cmds, "cmd-no-args");

    qmp_unregister_command(&cmds, "cmd-no-args");
    check_error_full("{\"execute\": \"cmd-no-args\"}", true,
                     "CommandNotFound",
                     "The command cmd-no-args has not been found");
}
END_TEST

static void count_cmd(const QmpCommand *cmd, void *opaque)
{
    GPtrArray *names = opaque;

    g_ptr_array_add(names, (gpointer)cmd->name);
}

START_TEST(test_for_each_command)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();

    qmp_for_each_command(&cmds, count_cmd, names);
    /*
     * 7 generated commands + query-qmp-schema + qmp_capabilities, in
     * registration order
     */
    ck_assert_int_eq(names->len, 9);
    ck_assert_str_eq(g_ptr_array_index(names, 0), "user-def-cmd");
    ck_assert_str_eq(g_ptr_array_index(names, 7), "query-qmp-schema");
    ck_assert_str_eq(g_ptr_array_index(names, 8), "qmp_capabilities");
}
END_TEST

/* ---- events ------------------------------------------------------------- */

static json_t *last_event;
static int event_count;

static void test_emitter(const char *name, json_t *event)
{
    ck_assert_str_eq(name,
                     json_string_value(json_object_get(event, "event")));
    json_decref(last_event);
    last_event = json_incref(event);
    event_count++;
}

START_TEST(test_events)
{
    int64_t before = g_get_real_time() / G_USEC_PER_SEC;
    json_t *ts, *data;

    ck_assert_ptr_null(qapi_event_set_emitter(test_emitter));

    qapi_event_send_test_event_a("job0", ENUM_ONE_VALUE2, true, 42, NULL);
    ck_assert_int_eq(event_count, 1);
    ck_assert_str_eq(json_string_value(json_object_get(last_event, "event")),
                     "TEST_EVENT_A");
    ts = json_object_get(last_event, "timestamp");
    ck_assert(json_is_integer(json_object_get(ts, "seconds")));
    ck_assert_int_ge(json_integer_value(json_object_get(ts, "seconds")),
                     before);
    ck_assert_int_lt(json_integer_value(json_object_get(ts, "microseconds")),
                     1000000);
    data = json_object_get(last_event, "data");
    check_json_eq(data, "{\"id\": \"job0\", \"status\": \"value2\","
                  " \"len\": 42}");
    ck_assert_int_eq(json_object_size(last_event), 3);

    qapi_event_send_test_event_a("job1", ENUM_ONE_VALUE1, false, 0, "EIO");
    check_json_eq(json_object_get(last_event, "data"),
                  "{\"id\": \"job1\", \"status\": \"value1\","
                  " \"error\": \"EIO\"}");

    qapi_event_send_test_event_b();
    ck_assert_str_eq(json_string_value(json_object_get(last_event, "event")),
                     "TEST_EVENT_B");
    ck_assert_ptr_null(json_object_get(last_event, "data"));
    ck_assert_ptr_nonnull(json_object_get(last_event, "timestamp"));

    {
        UserDefOne one = { .integer = 5, .string = (char *)"s" };

        qapi_event_send_test_event_boxed(&one);
        check_json_eq(json_object_get(last_event, "data"),
                      "{\"integer\": 5, \"string\": \"s\"}");
    }
    ck_assert_int_eq(event_count, 4);

    /* without an emitter, events are dropped */
    ck_assert(qapi_event_set_emitter(NULL) == test_emitter);
    qapi_event_send_test_event_b();
    ck_assert_int_eq(event_count, 4);
    json_decref(last_event);
    last_event = NULL;
}
END_TEST

/* ---- introspection ------------------------------------------------------ */

static json_t *find_info(json_t *schema, const char *name)
{
    size_t i;
    json_t *ent;

    json_array_foreach(schema, i, ent) {
        if (!strcmp(json_string_value(json_object_get(ent, "name")), name)) {
            return ent;
        }
    }
    return NULL;
}

START_TEST(test_introspection)
{
    g_autoptr(json_t) schema = test_qmp_schema_json();
    g_autoptr(json_t) real = qmp_schema_json();
    json_t *ent;

    ck_assert(json_is_array(schema));
    ent = find_info(schema, "user-def-cmd");
    ck_assert_ptr_nonnull(ent);
    check_json_eq(ent, "{\"name\": \"user-def-cmd\", \"meta-type\": "
                  "\"command\", \"arg-type\": \"q_obj_user-def-cmd-arg\","
                  " \"ret-type\": \"UserDefOne\"}");
    ent = find_info(schema, "q_obj_user-def-cmd-arg");
    check_json_eq(json_array_get(json_object_get(ent, "members"), 2),
                  "{\"name\": \"mode\", \"type\": \"EnumOne\","
                  " \"default\": null}");
    check_json_eq(json_array_get(json_object_get(ent, "members"), 3),
                  "{\"name\": \"tags\", \"type\": \"[str]\","
                  " \"default\": null}");
    ent = find_info(schema, "cmd-str");
    check_json_eq(json_object_get(ent, "features"), "[\"deprecated\"]");
    ck_assert_str_eq(json_string_value(json_object_get(ent, "arg-type")),
                     "q_empty");
    ck_assert_ptr_nonnull(find_info(schema, "q_empty"));
    ent = find_info(schema, "EnumOne");
    check_json_eq(json_object_get(ent, "values"),
                  "[\"value1\", \"value2\", \"value-three\"]");
    ent = find_info(schema, "TestOptions");
    ck_assert_str_eq(json_string_value(json_object_get(ent, "tag")),
                     "driver");
    check_json_eq(json_object_get(ent, "variants"),
                  "[{\"case\": \"file\", \"type\": \"TestOptionsFile\"},"
                  " {\"case\": \"nested\", \"type\": \"TestOptionsNested\"}]");
    ent = find_info(schema, "AllScalars");
    /* all integer types are reported as int */
    check_json_eq(json_array_get(json_object_get(ent, "members"), 0),
                  "{\"name\": \"i8\", \"type\": \"int\", \"default\": null}");
    ent = find_info(schema, "TEST_EVENT_A");
    ck_assert_str_eq(json_string_value(json_object_get(ent, "meta-type")),
                     "event");
    ent = find_info(schema, "[str]");
    check_json_eq(ent, "{\"name\": \"[str]\", \"meta-type\": \"array\","
                  " \"element-type\": \"str\"}");
    ent = find_info(schema, "int");
    check_json_eq(ent, "{\"name\": \"int\", \"meta-type\": \"builtin\","
                  " \"json-type\": \"int\"}");

    /* query-qmp-schema is served from the same data */
    {
        g_autoptr(json_t) resp = dispatch("{\"execute\": "
                                          "\"query-qmp-schema\"}");

        ck_assert(json_equal(json_object_get(resp, "return"), schema));
        ck_assert_ptr_nonnull(find_info(schema, "query-qmp-schema"));
    }
    check_error("{\"execute\": \"query-qmp-schema\", \"arguments\": "
                "{\"x\": 1}}", "Parameter 'x' is unexpected");

    /* the real schema's introspection data has the real commands */
    ck_assert_ptr_nonnull(find_info(real, "query-version"));
    ck_assert_ptr_nonnull(find_info(real, "qmp_capabilities"));
    ck_assert_ptr_null(find_info(real, "user-def-cmd"));
}
END_TEST

static Suite *qapi_dispatch_suite(void)
{
    Suite *s = suite_create("qapi-dispatch");
    TCase *tc = tcase_create("dispatch");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_dispatch_success);
    tcase_add_test(tc, test_dispatch_boxed);
    tcase_add_test(tc, test_dispatch_unknown_command);
    tcase_add_test(tc, test_dispatch_malformed);
    tcase_add_test(tc, test_dispatch_argument_errors);
    tcase_add_test(tc, test_dispatch_command_error);
    tcase_add_test(tc, test_dispatch_negotiation);
    tcase_add_test(tc, test_dispatch_flags);
    tcase_add_test(tc, test_for_each_command);
    suite_add_tcase(s, tc);

    tc = tcase_create("events");
    tcase_add_test(tc, test_events);
    suite_add_tcase(s, tc);

    tc = tcase_create("introspection");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_introspection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qapi_dispatch_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
