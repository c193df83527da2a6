/*
 * Unit tests for keyval option parsing (util/keyval.c).
 */
#include "qemu/osdep.h"
#include "qemu/keyval.h"
#include <check.h>

/* Parse @params and compare with the JSON text @expected. */
static void check_ok_help(const char *params, const char *implied,
                          const char *expected, bool *help)
{
    Error *err = NULL;
    json_error_t jerr;
    json_t *got = keyval_parse(params, implied, help, &err);
    json_t *want = json_loads(expected, 0, &jerr);

    ck_assert_msg(want, "bad expected JSON %s: %s", expected, jerr.text);
    if (!got) {
        ck_abort_msg("'%s' failed: %s", params, error_get_pretty(err));
    }
    ck_assert_ptr_null(err);
    if (!json_equal(got, want)) {
        g_autofree char *dump = json_dumps(got, JSON_SORT_KEYS);

        ck_abort_msg("'%s': got %s, want %s", params, dump, expected);
    }
    json_decref(got);
    json_decref(want);
}

static void check_ok(const char *params, const char *implied,
                     const char *expected)
{
    check_ok_help(params, implied, expected, NULL);
}

static void check_err(const char *params, const char *implied,
                      const char *msg)
{
    Error *err = NULL;
    json_t *got = keyval_parse(params, implied, NULL, &err);

    if (got) {
        g_autofree char *dump = json_dumps(got, JSON_SORT_KEYS);

        ck_abort_msg("'%s' unexpectedly parsed to %s", params, dump);
    }
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), msg);
    error_free(err);
}

START_TEST(test_basic)
{
    check_ok("", NULL, "{}");
    check_ok("a=1", NULL, "{\"a\": \"1\"}");
    check_ok("a=1,b.c=x", NULL, "{\"a\": \"1\", \"b\": {\"c\": \"x\"}}");
    check_ok("node-name=n_0,cache.direct=on", NULL,
             "{\"node-name\": \"n_0\", \"cache\": {\"direct\": \"on\"}}");
    /* numbers stay strings: typing is the visitor's job */
    check_ok("size=64k,n=42", NULL, "{\"size\": \"64k\", \"n\": \"42\"}");
    /* a key may start with a digit unless it is all digits */
    check_ok("9p=x", NULL, "{\"9p\": \"x\"}");
}
END_TEST

START_TEST(test_escaping)
{
    check_ok("a=x,,y", NULL, "{\"a\": \"x,y\"}");
    check_ok("a=,,", NULL, "{\"a\": \",\"}");
    check_ok("a=,,,,", NULL, "{\"a\": \",,\"}");
    check_ok("a=,,,b=2", NULL, "{\"a\": \",\", \"b\": \"2\"}");
    check_ok("a=x,,,,y,b=1,,", NULL, "{\"a\": \"x,,y\", \"b\": \"1,\"}");
    /* '=' and '.' inside a value are ordinary characters */
    check_ok("a=b=c.d", NULL, "{\"a\": \"b=c.d\"}");
    /* trailing comma */
    check_ok("a=1,", NULL, "{\"a\": \"1\"}");
    check_ok("a=1,b=2,", NULL, "{\"a\": \"1\", \"b\": \"2\"}");
    /* empty values */
    check_ok("a=", NULL, "{\"a\": \"\"}");
    check_ok("a=,b=", NULL, "{\"a\": \"\", \"b\": \"\"}");
    /* an escaped comma in the implied value */
    check_ok("a,,b,x=1", "file", "{\"file\": \"a,b\", \"x\": \"1\"}");
}
END_TEST

START_TEST(test_key_errors)
{
    check_err(",a=1", NULL, "Invalid parameter ''");
    check_err("=1", NULL, "Invalid parameter ''");
    check_ok("a=1,,,", NULL, "{\"a\": \"1,\"}");
    check_err("a=1,,,=2", NULL, "Invalid parameter ''");
    check_err(",", NULL, "Invalid parameter ''");
    check_err("a", NULL, "Expected '=' after parameter 'a'");
    check_err("a=1,b", NULL, "Expected '=' after parameter 'b'");
    check_err("a.b", NULL, "Expected '=' after parameter 'a.b'");
    check_err("a!=1", NULL, "Invalid parameter 'a!'");
    check_err("a b=1", NULL, "Invalid parameter 'a b'");
    check_err("a!", NULL, "Invalid parameter 'a!'");
    check_err("a..b=1", NULL, "Invalid parameter 'a..b'");
    check_err(".a=1", NULL, "Invalid parameter '.a'");
    check_err("a.=1", NULL, "Invalid parameter 'a.'");
    check_err("a.b$c=1", NULL, "Invalid parameter 'a.b$c'");
    check_err("0=x", NULL, "Invalid parameter '0'");
    check_err("12.a=x", NULL, "Invalid parameter '12.a'");
}
END_TEST

START_TEST(test_key_length)
{
    g_autofree char *k127 = g_strnfill(127, 'k');
    g_autofree char *k128 = g_strnfill(128, 'k');
    g_autofree char *ok = g_strdup_printf("%s=1", k127);
    g_autofree char *ok_json = g_strdup_printf("{\"%s\": \"1\"}", k127);
    g_autofree char *bad = g_strdup_printf("%s=1", k128);
    g_autofree char *bad_msg = g_strdup_printf("Parameter '%s' is too long",
                                               k128);
    g_autofree char *bad2 = g_strdup_printf("a.%s=1", k128);
    g_autofree char *bad2_msg =
        g_strdup_printf("Parameter fragment '%s' is too long", k128);

    check_ok(ok, NULL, ok_json);
    check_err(bad, NULL, bad_msg);
    check_err(bad2, NULL, bad2_msg);
}
END_TEST

START_TEST(test_implied_key)
{
    check_ok("qcow2", "driver", "{\"driver\": \"qcow2\"}");
    check_ok("qcow2,file=f.img", "driver",
             "{\"driver\": \"qcow2\", \"file\": \"f.img\"}");
    check_ok("nbd,id=e0,node-name=n", "type",
             "{\"type\": \"nbd\", \"id\": \"e0\", \"node-name\": \"n\"}");
    check_ok("socket,id=c0,path=/tmp/s", "backend",
             "{\"backend\": \"socket\", \"id\": \"c0\", \"path\": \"/tmp/s\"}");
    /* explicit key in the first element: implied key unused */
    check_ok("type=nbd,id=e0", "type", "{\"type\": \"nbd\", \"id\": \"e0\"}");
    check_ok("id=e0,type=nbd", "type", "{\"type\": \"nbd\", \"id\": \"e0\"}");
    /* a dotted implied key */
    check_ok("inet,addr.host=h", "addr.type",
             "{\"addr\": {\"type\": \"inet\", \"host\": \"h\"}}");
    /* only the first element may omit the key */
    check_err("nbd,e0", "type", "Expected '=' after parameter 'e0'");
    check_err("id=e0,nbd", "type", "Expected '=' after parameter 'nbd'");
    /* any characters are fine in the implied value */
    check_ok("a.b!c", "x", "{\"x\": \"a.b!c\"}");
    check_ok("qcow2,", "driver", "{\"driver\": \"qcow2\"}");
    /* an empty first element is an empty key, not an empty implied value */
    check_err(",a=1", "driver", "Invalid parameter ''");
    /* implied key and explicit key: last one wins */
    check_ok("raw,driver=qcow2", "driver", "{\"driver\": \"qcow2\"}");
}
END_TEST

START_TEST(test_utf8)
{
    check_ok("filename=d\xc3\xa9j\xc3\xa0.img", NULL,
             "{\"filename\": \"d\\u00e9j\\u00e0.img\"}");
    check_err("filename=\xff.img", NULL,
              "Parameter 'filename' is not valid UTF-8");
    check_err("\xe9t\xe9", "driver", "Parameter 'driver' is not valid UTF-8");
}
END_TEST

START_TEST(test_nested_and_merge)
{
    check_ok("a.b.c=1,a.b.d=2,a.e=3", NULL,
             "{\"a\": {\"b\": {\"c\": \"1\", \"d\": \"2\"}, \"e\": \"3\"}}");
    /* repeated key: last wins */
    check_ok("a=1,a=2", NULL, "{\"a\": \"2\"}");
    check_ok("a.b=1,c=0,a.b=2", NULL,
             "{\"a\": {\"b\": \"2\"}, \"c\": \"0\"}");
    /* scalar vs object */
    check_err("a=1,a.b=2", NULL, "Parameters 'a.*' used inconsistently");
    check_err("a.b=2,a=1", NULL, "Parameters 'a.*' used inconsistently");
    check_err("x.a.b=2,x.a=1", NULL,
              "Parameters 'x.a.*' used inconsistently");
    check_err("x.a=1,x.a.b.c=2", NULL,
              "Parameters 'x.a.*' used inconsistently");
}
END_TEST

START_TEST(test_lists)
{
    check_ok("a.0=x,a.1=y", NULL, "{\"a\": [\"x\", \"y\"]}");
    /* any order */
    check_ok("a.2=z,a.0=x,a.1=y", NULL, "{\"a\": [\"x\", \"y\", \"z\"]}");
    /* lists of objects, lists of lists */
    check_ok("b.0.n=a,b.1.n=b,b.0.m=c", NULL,
             "{\"b\": [{\"n\": \"a\", \"m\": \"c\"}, {\"n\": \"b\"}]}");
    check_ok("m.0.0=a,m.0.1=b,m.1.0=c", NULL,
             "{\"m\": [[\"a\", \"b\"], [\"c\"]]}");
    check_ok("s.x.0=1", NULL, "{\"s\": {\"x\": [\"1\"]}}");
    /* non-contiguous indices */
    check_err("a.1=y", NULL, "Parameter 'a.0' missing");
    check_err("a.0=x,a.2=z", NULL, "Parameter 'a.1' missing");
    check_err("a.0=x,a.99999999999=z", NULL, "Parameter 'a.1' missing");
    check_err("s.b.0.c.1=x", NULL, "Parameter 's.b.0.c.0' missing");
    /* mixing indices and names */
    check_err("a.0=x,a.b=y", NULL, "Parameters 'a.*' used inconsistently");
    check_err("t.a.0=x,t.a.b=y", NULL,
              "Parameters 't.a.*' used inconsistently");
    /* the same index spelled twice */
    check_err("a.1=x,a.01=y", NULL, "Parameter 'a.1' used inconsistently");
}
END_TEST

START_TEST(test_help)
{
    bool help = true;

    check_ok_help("a=1", NULL, "{\"a\": \"1\"}", &help);
    ck_assert(!help);
    check_ok_help("help", NULL, "{}", &help);
    ck_assert(help);
    help = false;
    check_ok_help("?", NULL, "{}", &help);
    ck_assert(help);
    help = false;
    check_ok_help("driver=qcow2,help", NULL, "{\"driver\": \"qcow2\"}", &help);
    ck_assert(help);
    help = false;
    check_ok_help("help,driver=qcow2", "driver", "{\"driver\": \"qcow2\"}",
                  &help);
    ck_assert(help);
    help = false;
    check_ok_help("qcow2,help,", "driver", "{\"driver\": \"qcow2\"}", &help);
    ck_assert(help);
    /* "help=x" is an ordinary key */
    check_ok_help("help=x", NULL, "{\"help\": \"x\"}", &help);
    ck_assert(!help);
    /* "helpme" is not help */
    check_ok_help("helpme", "driver", "{\"driver\": \"helpme\"}", &help);
    ck_assert(!help);
    /* Without a help pointer, "help" is data or an error */
    check_ok("help", "driver", "{\"driver\": \"help\"}");
    check_err("help", NULL, "Expected '=' after parameter 'help'");
    check_err("a=1,?", NULL, "Invalid parameter '?'");
}
END_TEST

START_TEST(test_json_path)
{
    Error *err = NULL;
    bool is_json = false;
    json_t *obj;

    obj = keyval_or_json_parse_full(
        "{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
        "\"filename\": \"a,b.img\"}, \"read-only\": true, \"n\": 5}",
        "driver", &is_json, &error_abort);
    ck_assert(is_json);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "driver")),
                     "qcow2");
    ck_assert(json_is_true(json_object_get(obj, "read-only")));
    ck_assert_int_eq(json_integer_value(json_object_get(obj, "n")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(
        json_object_get(obj, "file"), "filename")), "a,b.img");
    json_decref(obj);

    /* keyval path: the same information, as strings */
    obj = keyval_or_json_parse_full("qcow2,file.driver=file,read-only=on",
                                    "driver", &is_json, &error_abort);
    ck_assert(!is_json);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "driver")),
                     "qcow2");
    ck_assert_str_eq(json_string_value(json_object_get(obj, "read-only")),
                     "on");
    json_decref(obj);

    /* parse errors */
    obj = keyval_or_json_parse("{\"driver\": ", NULL, &err);
    ck_assert_ptr_null(obj);
    ck_assert(g_str_has_prefix(error_get_pretty(err), "JSON parse error, "));
    error_free(err);
    err = NULL;
    obj = keyval_or_json_parse("{\"a\": 1} x", NULL, &err);
    ck_assert_ptr_null(obj);
    ck_assert(g_str_has_prefix(error_get_pretty(err), "JSON parse error, "));
    error_free(err);
    err = NULL;
    obj = keyval_or_json_parse("{\"a\": 1, \"a\": 2}", NULL, &err);
    ck_assert_ptr_null(obj);
    ck_assert(g_str_has_prefix(error_get_pretty(err), "JSON parse error, "));
    error_free(err);
    err = NULL;
    /* keyval errors come through too; help is not accepted here */
    obj = keyval_or_json_parse("a=1,help", NULL, &err);
    ck_assert_ptr_null(obj);
    ck_assert_str_eq(error_get_pretty(err),
                     "Expected '=' after parameter 'help'");
    error_free(err);
}
END_TEST

START_TEST(test_merge)
{
    json_t *dest = keyval_parse("a=1,b.c=2,l.0=x", NULL, NULL, &error_abort);
    json_t *src = keyval_parse("a=9,b.d=3,l.0=y,n=4", NULL, NULL,
                               &error_abort);
    json_t *want = json_loads("{\"a\": \"9\", \"b\": {\"c\": \"2\", \"d\": "
                              "\"3\"}, \"l\": [\"x\", \"y\"], \"n\": \"4\"}",
                              0, NULL);
    Error *err = NULL;

    ck_assert(keyval_merge(dest, src, &error_abort));
    ck_assert(json_equal(dest, want));
    /* src is unchanged and not shared */
    json_array_append_new(json_object_get(dest, "l"), json_string("z"));
    ck_assert_int_eq(json_array_size(json_object_get(src, "l")), 1);
    json_decref(src);

    src = keyval_parse("b.c.x=1", NULL, NULL, &error_abort);
    ck_assert(!keyval_merge(dest, src, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Parameter 'b.c' used inconsistently");
    error_free(err);
    err = NULL;
    json_decref(src);

    src = keyval_parse("l=1", NULL, NULL, &error_abort);
    ck_assert(!keyval_merge(dest, src, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Parameter 'l' used inconsistently");
    error_free(err);
    json_decref(src);
    json_decref(dest);
    json_decref(want);
}
END_TEST

static Suite *keyval_suite(void)
{
    Suite *s = suite_create("keyval");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_key_errors);
    tcase_add_test(tc, test_key_length);
    tcase_add_test(tc, test_implied_key);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_nested_and_merge);
    tcase_add_test(tc, test_lists);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_json_path);
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(keyval_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
