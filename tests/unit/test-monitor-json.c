/*
 * Unit tests of the QMP JSON stream reader (monitor/json-stream.c,
 * monitor/json-parser.c): framing of split and joined messages, QEMU's
 * error texts and resynchronisation, limits, flush.  The expected error
 * texts were taken from qemu-storage-daemon 7.2 fed the same input.
 */
#include "qemu/osdep.h"
#include "monitor/json-stream.h"
#include <check.h>

typedef struct Collect {
    GPtrArray *out;     /* char *: compact JSON or "ERR: message" */
} Collect;

static void collect_emit(void *opaque, json_t *value, Error *err)
{
    Collect *c = opaque;

    ck_assert((value == NULL) != (err == NULL));
    if (err) {
        g_ptr_array_add(c->out, g_strdup_printf("ERR: %s",
                                                error_get_pretty(err)));
        error_free(err);
    } else {
        g_ptr_array_add(c->out, json_dumps(value, JSON_COMPACT |
                                           JSON_ENCODE_ANY |
                                           JSON_ENSURE_ASCII));
        json_decref(value);
    }
}

/* Feed @in in chunks cut at @cuts (sorted offsets); return the outputs. */
static GPtrArray *run_cuts(const char *in, size_t len, const size_t *cuts,
                           size_t ncuts, bool flush)
{
    Collect c = { .out = g_ptr_array_new_with_free_func(g_free) };
    JsonStream *js = json_stream_new(collect_emit, &c);
    size_t pos = 0, i;

    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        json_stream_feed(js, in + pos, end - pos);
        pos = end;
    }
    if (flush) {
        json_stream_flush(js);
    }
    json_stream_free(js);
    return c.out;
}

static GPtrArray *run(const char *in)
{
    return run_cuts(in, strlen(in), NULL, 0, false);
}

static char *joined(GPtrArray *out)
{
    g_ptr_array_add(out, NULL);
    return g_strjoinv("\n", (char **)out->pdata);
}

#define CHECK_OUT(in, expect) do {                      \
        GPtrArray *out_ = run(in);                      \
        g_autofree char *got_ = joined(out_);           \
        ck_assert_str_eq(got_, expect);                 \
        g_ptr_array_free(out_, true);                   \
    } while (0)

static const char stream_text[] =
    "{\"execute\": \"a{b}[c]\", \"id\": \"q\\\"}\\\\\"}"
    "  [1, -2.5e3, {\"x\": [true, false, null]}, []]\r\n"
    "{'single': 'it\\'s \"quoted\" {'}"
    "\"lone string\"  {\"u\": \"\\u00e9\\ud83d\\ude00\\u0000x\"}"
    "{\"deep\": {\"a\": [[{\"b\": {}}]]}}\n";

static const char *const stream_expect[] = {
    "{\"execute\":\"a{b}[c]\",\"id\":\"q\\\"}\\\\\"}",
    "[1,-2500.0,{\"x\":[true,false,null]},[]]",
    "{\"single\":\"it's \\\"quoted\\\" {\"}",
    "\"lone string\"",
    "{\"u\":\"\\u00E9\\uD83D\\uDE00\\u0000x\"}",
    "{\"deep\":{\"a\":[[{\"b\":{}}]]}}",
};

static void check_stream_out(GPtrArray *out)
{
    size_t i;

    ck_assert_uint_eq(out->len, G_N_ELEMENTS(stream_expect));
    for (i = 0; i < out->len; i++) {
        ck_assert_str_eq(out->pdata[i], stream_expect[i]);
    }
}

START_TEST(test_whole)
{
    GPtrArray *out = run(stream_text);

    check_stream_out(out);
    g_ptr_array_free(out, true);
}
END_TEST

/* Every single cut point, then every pair of cut points */
START_TEST(test_split_everywhere)
{
    size_t len = strlen(stream_text);
    size_t i, j;

    for (i = 0; i <= len; i++) {
        GPtrArray *out = run_cuts(stream_text, len, &i, 1, false);

        check_stream_out(out);
        g_ptr_array_free(out, true);
    }
    for (i = 0; i <= len; i += 3) {
        for (j = i; j <= len; j += 7) {
            size_t cuts[2] = { i, j };
            GPtrArray *out = run_cuts(stream_text, len, cuts, 2, false);

            check_stream_out(out);
            g_ptr_array_free(out, true);
        }
    }
}
END_TEST

START_TEST(test_byte_at_a_time)
{
    size_t len = strlen(stream_text);
    g_autofree size_t *cuts = g_new(size_t, len);
    GPtrArray *out;
    size_t i;

    for (i = 0; i < len; i++) {
        cuts[i] = i;
    }
    out = run_cuts(stream_text, len, cuts, len, false);
    check_stream_out(out);
    g_ptr_array_free(out, true);
}
END_TEST

START_TEST(test_joined)
{
    CHECK_OUT("{\"a\":1}{\"b\":2}[3]\"x\"{}",
              "{\"a\":1}\n{\"b\":2}\n[3]\n\"x\"\n{}");
}
END_TEST

/* Numbers and keywords end only when the next byte arrives */
START_TEST(test_scalar_lookahead)
{
    CHECK_OUT("1", "");
    CHECK_OUT("12 ", "12");
    CHECK_OUT("true", "");
    CHECK_OUT("true{}", "true\n{}");
    CHECK_OUT("-0.5e+2]", "-50.0\nERR: JSON parse error, expecting value");
}
END_TEST

START_TEST(test_errors)
{
    /* parser errors, wording as QEMU */
    CHECK_OUT("{\"a\" 1}", "ERR: JSON parse error, missing : in object pair");
    CHECK_OUT("[1 2]", "ERR: JSON parse error, expected separator in list");
    CHECK_OUT("{1:2}", "ERR: JSON parse error, key is not a string in object");
    CHECK_OUT("{\"a\":}", "ERR: JSON parse error, expecting value");
    CHECK_OUT("{,}", "ERR: JSON parse error, expecting value");
    CHECK_OUT("{\"a\":1,}", "ERR: JSON parse error, expecting value");
    CHECK_OUT("[1,]", "ERR: JSON parse error, expecting value");
    CHECK_OUT("{\"a\":\"\\x\"}",
              "ERR: JSON parse error, invalid escape sequence in string");
    CHECK_OUT("{\"a\":\"\\u12\"}", "ERR: JSON parse error, \\u12\" is not a "
              "valid Unicode character");
    CHECK_OUT("{\"a\":\"\\ud800\"}", "ERR: JSON parse error, \\ud800 is not "
              "a valid Unicode character");
    CHECK_OUT("{\"execute\":\"x\"]",
              "ERR: JSON parse error, expected separator in dict");
    CHECK_OUT("{\"a\":1 \"b\":2}",
              "ERR: JSON parse error, expected separator in dict");
    CHECK_OUT("{\"a\":tru}", "ERR: JSON parse error, invalid keyword 'tru'");
    CHECK_OUT("{\"a\":1,\"a\":2}", "ERR: JSON parse error, duplicate key");
    CHECK_OUT("{\"a\":\"\xff\"}",
              "ERR: JSON parse error, invalid UTF-8 sequence in string");
    /* a stray closer after a complete message */
    CHECK_OUT("{\"a\":1}}", "{\"a\":1}\nERR: JSON parse error, expecting value");
}
END_TEST

/* Lexer errors and how the stream recovers */
START_TEST(test_lexer_recovery)
{
    CHECK_OUT("@{\"a\":1}", "ERR: JSON parse error, stray '@'\n{\"a\":1}");
    /* "01" is an error; '}' then stands alone */
    CHECK_OUT("{\"a\":01}", "ERR: JSON parse error, stray '01'\n"
              "ERR: JSON parse error, expecting value");
    CHECK_OUT("{\"a\":-}", "ERR: JSON parse error, stray '-}'");
    CHECK_OUT("{\"a\":1.5e}[]", "ERR: JSON parse error, stray '1.5e}'\n[]");
    /* a control character in a string; recovery skips to '}' */
    CHECK_OUT("{\"a\":\"x\001y\"}", "ERR: JSON parse error, stray '\"x\001'\n"
              "ERR: JSON parse error, expecting value");
    /* recovery skips a partial message up to a newline */
    CHECK_OUT("Ab cd\n{}", "ERR: JSON parse error, stray 'A'\n{}");
    CHECK_OUT("garbage{}", "ERR: JSON parse error, invalid keyword "
              "'garbage'\n{}");
}
END_TEST

START_TEST(test_numbers)
{
    CHECK_OUT("[0, -0, 9223372036854775807, -9223372036854775808, 1.5, "
              "1e3, 12345678901234567890123]",
              "[0,0,9223372036854775807,-9223372036854775808,1.5,"
              "1000.0,1.2345678901234568e22]");
}
END_TEST

START_TEST(test_nesting_limit)
{
    Collect c = { .out = g_ptr_array_new_with_free_func(g_free) };
    JsonStream *js = json_stream_new(collect_emit, &c);
    GString *s = g_string_new(NULL);
    int i;

    /* the default limit: 1024 levels pass, 1025 do not */
    for (i = 0; i < JSON_MAX_NESTING; i++) {
        g_string_append_c(s, '[');
    }
    for (i = 0; i < JSON_MAX_NESTING; i++) {
        g_string_append_c(s, ']');
    }
    json_stream_feed(js, s->str, s->len);
    ck_assert_uint_eq(c.out->len, 1);
    ck_assert(g_str_has_prefix(c.out->pdata[0], "[[[[[[[[[[[[[[[["));

    g_ptr_array_set_size(c.out, 0);
    json_stream_feed(js, "[", 1);
    json_stream_feed(js, s->str, s->len);
    ck_assert_uint_ge(c.out->len, 1);
    ck_assert_str_eq(c.out->pdata[0],
                     "ERR: JSON nesting depth limit exceeded");

    /* a lowered limit; the stream works again after the error */
    json_stream_free(js);
    g_ptr_array_set_size(c.out, 0);
    js = json_stream_new(collect_emit, &c);
    json_stream_set_limits(js, 0, 3);
    json_stream_feed(js, "[[[1]]]", 7);
    json_stream_feed(js, "\n{\"a\":{\"b\":[{}]}}", 17);
    json_stream_feed(js, "\n{}", 3);
    ck_assert_str_eq(c.out->pdata[0], "[[[1]]]");
    ck_assert_str_eq(c.out->pdata[1],
                     "ERR: JSON nesting depth limit exceeded");
    ck_assert_str_eq(c.out->pdata[c.out->len - 1], "{}");
    json_stream_free(js);
    g_ptr_array_free(c.out, true);
    g_string_free(s, true);
}
END_TEST

START_TEST(test_size_limit)
{
    Collect c = { .out = g_ptr_array_new_with_free_func(g_free) };
    JsonStream *js = json_stream_new(collect_emit, &c);
    g_autofree char *big = g_strnfill(100, 'x');
    g_autofree char *msg = g_strdup_printf("{\"a\": \"%s\"}", big);

    json_stream_set_limits(js, 64, 0);
    json_stream_feed(js, "{\"a\": \"short\"}", 14);
    /* one message over the limit, made of small tokens */
    {
        g_autoptr(GString) many = g_string_new("[0");
        int i;

        for (i = 1; i < 40; i++) {
            g_string_append_printf(many, ",%d", i);
        }
        g_string_append(many, "]\n");
        json_stream_feed(js, many->str, many->len);
    }
    /* one token over the limit */
    json_stream_feed(js, msg, strlen(msg));
    json_stream_feed(js, "\n{}", 3);
    ck_assert_str_eq(c.out->pdata[0], "{\"a\":\"short\"}");
    ck_assert_str_eq(c.out->pdata[1], "ERR: JSON token size limit exceeded");
    ck_assert_str_eq(c.out->pdata[c.out->len - 1], "{}");
    {
        unsigned i, n = 0;

        for (i = 0; i < c.out->len; i++) {
            n += !strcmp(c.out->pdata[i],
                         "ERR: JSON token size limit exceeded");
        }
        ck_assert_uint_ge(n, 2);
    }
    json_stream_free(js);
    g_ptr_array_free(c.out, true);
}
END_TEST

START_TEST(test_flush)
{
    GPtrArray *out = run_cuts("12", 2, NULL, 0, true);

    ck_assert_uint_eq(out->len, 1);
    ck_assert_str_eq(out->pdata[0], "12");
    g_ptr_array_free(out, true);
    out = run_cuts("[1, {\"a\"", 8, NULL, 0, true);
    ck_assert_uint_eq(out->len, 1);
    ck_assert_str_eq(out->pdata[0], "ERR: JSON parse error, premature EOI");
    g_ptr_array_free(out, true);
    out = run_cuts("\"abc", 4, NULL, 0, true);
    ck_assert_uint_eq(out->len, 1);
    ck_assert_str_eq(out->pdata[0], "ERR: JSON parse error, stray '\"abc'");
    g_ptr_array_free(out, true);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("monitor-json");
    TCase *tc = tcase_create("stream");

    tcase_add_test(tc, test_whole);
    tcase_add_test(tc, test_split_everywhere);
    tcase_add_test(tc, test_byte_at_a_time);
    tcase_add_test(tc, test_joined);
    tcase_add_test(tc, test_scalar_lookahead);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_lexer_recovery);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_flush);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
