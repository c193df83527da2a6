/*
 * Unit tests for the QAPI generator's types and visitors, using the test
 * schema tests/qapi-schema/qapi-schema-test.json (generated with prefix
 * "test-"): enum tables, nested structs, optional members, lists, flat
 * unions, alternates, input errors with QEMU's exact wording, keyval mode,
 * and output round trips.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi/qobject-output-visitor.h"
#include "tests/qapi/test-qapi-types.h"
#include "tests/qapi/test-qapi-visit.h"
#include <check.h>

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_DECODE_ANY, &jerr);

    ck_assert_msg(obj, "bad test JSON: %s: %s", text, jerr.text);
    return obj;
}

/*
 * Visit @text with the strict (or keyval) input visitor into a T.  Returns
 * the object, or NULL with *msg set to the error message.
 */
#define DEFINE_INPUT(T)                                                   \
static T *input_##T(const char *text, bool keyval, char **msg)            \
{                                                                         \
    g_autoptr(json_t) obj = parse(text);                                  \
    Visitor *v = keyval ? qobject_input_visitor_new_keyval(obj)           \
                        : qobject_input_visitor_new(obj);                 \
    T *ret = NULL;                                                        \
    Error *err = NULL;                                                    \
                                                                          \
    if (!visit_type_##T(v, NULL, &ret, &err)) {                           \
        ck_assert_ptr_null(ret);                                          \
        ck_assert_ptr_nonnull(err);                                       \
        if (msg) {                                                        \
            *msg = g_strdup(error_get_pretty(err));                       \
        }                                                                 \
        error_free(err);                                                  \
    } else {                                                              \
        ck_assert_ptr_null(err);                                          \
    }                                                                     \
    visit_free(v);                                                        \
    return ret;                                                           \
}                                                                         \
                                                                          \
static void check_error_##T(const char *text, bool keyval,                \
                            const char *expected)                         \
{                                                                         \
    g_autofree char *msg = NULL;                                          \
    T *ret = input_##T(text, keyval, &msg);                               \
                                                                          \
    ck_assert_msg(!ret, "no error for %s", text);                         \
    ck_assert_str_eq(msg, expected);                                      \
}                                                                         \
                                                                          \
static json_t *output_##T(T *obj)                                         \
{                                                                         \
    json_t *ret = NULL;                                                   \
    Visitor *v = qobject_output_visitor_new(&ret);                        \
                                                                          \
    ck_assert(visit_type_##T(v, NULL, &obj, &error_abort));               \
    visit_complete(v, &ret);                                              \
    visit_free(v);                                                        \
    return ret;                                                           \
}

DEFINE_INPUT(UserDefTwo)
DEFINE_INPUT(AllScalars)
DEFINE_INPUT(TestOptions)
DEFINE_INPUT(AltNumbers)

static void check_json_eq(json_t *got, const char *expected)
{
    g_autoptr(json_t) exp = parse(expected);

    if (!json_equal(got, exp)) {
        g_autofree char *s = json_dumps(got, JSON_SORT_KEYS);

        ck_abort_msg("got %s, expected %s", s, expected);
    }
}

/* ---- enums ------------------------------------------------------------ */

START_TEST(test_enum_lookup)
{
    Error *err = NULL;

    ck_assert_int_eq(ENUM_ONE__MAX, 3);
    ck_assert_str_eq(EnumOne_str(ENUM_ONE_VALUE_THREE), "value-three");
    ck_assert_int_eq(qapi_enum_parse(&EnumOne_lookup, "value2", -1, NULL),
                     ENUM_ONE_VALUE2);
    ck_assert_int_eq(qapi_enum_parse(&EnumOne_lookup, NULL, 7, NULL), 7);
    ck_assert_int_eq(qapi_enum_parse(&EnumOne_lookup, "nope", -1, &err),
                     -1);
    ck_assert_str_eq(error_get_pretty(err), "Invalid parameter 'nope'");
    error_free(err);

    /* 'prefix' and per-value features */
    ck_assert_int_eq(QENUM_TWO_VALUE_B, 1);
    ck_assert_str_eq(QEnumTwo_str(QENUM_TWO_VALUE_B), "value-b");
    ck_assert_ptr_nonnull(QEnumTwo_lookup.special_features);
    ck_assert(QEnumTwo_lookup.special_features[QENUM_TWO_VALUE_B] &
              QAPI_FEAT_DEPRECATED);
    ck_assert(!QEnumTwo_lookup.special_features[QENUM_TWO_VALUE_A]);
    ck_assert_str_eq(TestDriver_str(TEST_DRIVER_NULL_CO), "null-co");
}
END_TEST

/* ---- strict input ------------------------------------------------------- */

START_TEST(test_input_nested)
{
    g_autoptr(UserDefTwo) two = input_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 42, \"string\": \"s\","
        " \"enum1\": \"value-three\"},"
        " \"x-perf\": {\"max-workers\": 8, \"use-copy-range\": false},"
        " \"ones\": [{\"integer\": 1, \"string\": \"a\"},"
        "            {\"integer\": 2, \"string\": \"b\", \"flag\": true}],"
        " \"strings\": [\"x\", \"y\", \"z\"],"
        " \"enums\": [\"value1\", \"value2\"]}", false, NULL);
    UserDefOneList *l;
    strList *s;

    ck_assert_ptr_nonnull(two);
    ck_assert_str_eq(two->name, "n");
    ck_assert_int_eq(two->one->integer, 42);
    ck_assert_str_eq(two->one->string, "s");
    ck_assert(two->one->has_enum1);
    ck_assert_int_eq(two->one->enum1, ENUM_ONE_VALUE_THREE);
    ck_assert(!two->one->has_flag);
    /* base upcast */
    ck_assert_int_eq(qapi_UserDefOne_base(two->one)->integer, 42);

    ck_assert(two->x_perf->has_max_workers);
    ck_assert_int_eq(two->x_perf->max_workers, 8);
    ck_assert(!two->x_perf->has_max_chunk);
    ck_assert(two->x_perf->has_use_copy_range);
    ck_assert(!two->x_perf->use_copy_range);

    l = two->ones;
    ck_assert_int_eq(l->value->integer, 1);
    ck_assert(!l->value->has_flag);
    l = l->next;
    ck_assert_str_eq(l->value->string, "b");
    ck_assert(l->value->has_flag && l->value->flag);
    ck_assert_ptr_null(l->next);

    s = two->strings;
    ck_assert_str_eq(s->value, "x");
    ck_assert_str_eq(s->next->value, "y");
    ck_assert_str_eq(s->next->next->value, "z");
    ck_assert_ptr_null(s->next->next->next);
    ck_assert_int_eq(two->enums->value, ENUM_ONE_VALUE1);
    ck_assert_int_eq(two->enums->next->value, ENUM_ONE_VALUE2);
}
END_TEST

START_TEST(test_input_optional_absent)
{
    g_autoptr(UserDefTwo) two = input_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\"},"
        " \"strings\": []}", false, NULL);

    ck_assert_ptr_nonnull(two);
    ck_assert_ptr_null(two->x_perf);
    ck_assert_ptr_null(two->ones);
    ck_assert_ptr_null(two->enums);
    /* an empty list is present but NULL, as in QEMU */
    ck_assert_ptr_null(two->strings);
    ck_assert(!two->one->has_enum1);
}
END_TEST

START_TEST(test_input_all_scalars)
{
    g_autoptr(AllScalars) a = input_AllScalars(
        "{\"i8\": -128, \"i16\": 32767, \"i32\": -2147483648,"
        " \"i64\": -9223372036854775807, \"u8\": 255, \"u16\": 65535,"
        " \"u32\": 4294967295, \"u64\": 9223372036854775807,"
        " \"sz\": 4096, \"num\": 2.5, \"b\": true, \"s\": \"str\","
        " \"a\": {\"any\": [1, \"x\"]}, \"n\": null, \"default\": 7}",
        false, NULL);
    g_autoptr(AllScalars) b = input_AllScalars("{\"num\": 3}", false, NULL);

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->i8, -128);
    ck_assert_int_eq(a->i16, 32767);
    ck_assert_int_eq(a->i32, INT32_MIN);
    ck_assert_int_eq(a->i64, -INT64_MAX);
    ck_assert_uint_eq(a->u8, 255);
    ck_assert_uint_eq(a->u16, 65535);
    ck_assert_uint_eq(a->u32, UINT32_MAX);
    ck_assert_uint_eq(a->u64, INT64_MAX);
    ck_assert(a->has_sz && a->sz == 4096);
    ck_assert_double_eq(a->num, 2.5);
    ck_assert(a->has_b && a->b);
    ck_assert_str_eq(a->s, "str");
    ck_assert(json_is_object(a->a));
    ck_assert_int_eq(json_array_size(json_object_get(a->a, "any")), 2);
    ck_assert_ptr_nonnull(a->n);
    ck_assert(a->has_q_default && a->q_default == 7);
    /* an integer is a valid number */
    ck_assert_double_eq(b->num, 3.0);
}
END_TEST

START_TEST(test_input_errors_missing_unexpected)
{
    check_error_UserDefTwo("{\"name\": \"n\"}", false,
                           "Parameter 'one' is missing");
    check_error_UserDefTwo("{\"name\": \"n\", \"one\": {\"string\": \"s\"}}",
                           false, "Parameter 'one.integer' is missing");
    check_error_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\"},"
        " \"foo\": 1}", false, "Parameter 'foo' is unexpected");
    check_error_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\"},"
        " \"x-perf\": {\"max-workers\": 1, \"bogus\": true}}", false,
        "Parameter 'x-perf.bogus' is unexpected");
    check_error_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\"},"
        " \"ones\": [{\"integer\": 1, \"string\": \"a\"}, {\"integer\": 2}]}",
        false, "Parameter 'ones[1].string' is missing");
}
END_TEST

START_TEST(test_input_errors_types)
{
    const char *one = "\"one\": {\"integer\": 1, \"string\": \"s\"}";
    g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;

    check_error_UserDefTwo("{\"name\": \"n\", \"one\": {\"integer\": \"1\","
                           " \"string\": \"s\"}}", false,
                           "Invalid parameter type for 'one.integer', "
                           "expected: integer");
    check_error_UserDefTwo("{\"name\": 5}", false,
                           "Invalid parameter type for 'name', "
                           "expected: string");
    check_error_UserDefTwo("{\"name\": \"n\", \"one\": []}", false,
                           "Invalid parameter type for 'one', "
                           "expected: object");
    t1 = g_strdup_printf("{\"name\": \"n\", %s, \"strings\": \"x\"}", one);
    check_error_UserDefTwo(t1, false,
                           "Invalid parameter type for 'strings', "
                           "expected: array");
    t2 = g_strdup_printf("{\"name\": \"n\", %s, \"strings\": [\"a\", 1]}",
                         one);
    check_error_UserDefTwo(t2, false,
                           "Invalid parameter type for 'strings[1]', "
                           "expected: string");
    t3 = g_strdup_printf("{\"name\": \"n\", %s, \"x-perf\": "
                         "{\"use-copy-range\": \"yes\"}}", one);
    check_error_UserDefTwo(t3, false,
                           "Invalid parameter type for "
                           "'x-perf.use-copy-range', expected: boolean");
    t4 = g_strdup_printf("{\"name\": \"n\", %s, \"ones\": [{\"integer\": "
                         "1.5, \"string\": \"a\"}]}", one);
    check_error_UserDefTwo(t4, false,
                           "Invalid parameter type for 'ones[0].integer', "
                           "expected: integer");
    check_error_AllScalars("{\"num\": \"2\"}", false,
                           "Invalid parameter type for 'num', "
                           "expected: number");
    check_error_AllScalars("{\"n\": 0}", false,
                           "Invalid parameter type for 'n', expected: null");
    check_error_AllScalars("{\"u64\": \"1\"}", false,
                           "Parameter 'u64' expects uint64");
    check_error_AllScalars("{\"sz\": true}", false,
                           "Parameter 'sz' expects uint64");
}
END_TEST

START_TEST(test_input_errors_enum_range)
{
    check_error_UserDefTwo("{\"name\": \"n\", \"one\": {\"integer\": 1, "
                           "\"string\": \"s\", \"enum1\": \"sideways\"}}",
                           false,
                           "Parameter 'enum1' does not accept value "
                           "'sideways'");
    check_error_AllScalars("{\"i8\": 128}", false,
                           "Parameter 'i8' expects int8");
    check_error_AllScalars("{\"i8\": -129}", false,
                           "Parameter 'i8' expects int8");
    check_error_AllScalars("{\"i16\": 32768}", false,
                           "Parameter 'i16' expects int16");
    check_error_AllScalars("{\"i32\": 2147483648}", false,
                           "Parameter 'i32' expects int32");
    check_error_AllScalars("{\"u8\": 256}", false,
                           "Parameter 'u8' expects uint8");
    check_error_AllScalars("{\"u8\": -1}", false,
                           "Parameter 'u8' expects uint8");
    check_error_AllScalars("{\"u16\": 65536}", false,
                           "Parameter 'u16' expects uint16");
    check_error_AllScalars("{\"u32\": 4294967296}", false,
                           "Parameter 'u32' expects uint32");
}
END_TEST

START_TEST(test_input_flat_union)
{
    g_autoptr(TestOptions) f = input_TestOptions(
        "{\"driver\": \"file\", \"node-name\": \"n0\", \"filename\": \"/x\","
        " \"aio\": \"value2\", \"read-only\": true}", false, NULL);
    g_autoptr(TestOptions) z = input_TestOptions(
        "{\"driver\": \"null-co\"}", false, NULL);

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->driver, TEST_DRIVER_FILE);
    ck_assert_str_eq(f->node_name, "n0");
    ck_assert(f->has_read_only && f->read_only);
    ck_assert_str_eq(f->u.file.filename, "/x");
    ck_assert(f->u.file.has_aio);
    ck_assert_int_eq(f->u.file.aio, ENUM_ONE_VALUE2);

    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(z->driver, TEST_DRIVER_NULL_CO);
    ck_assert_ptr_null(z->node_name);

    check_error_TestOptions("{\"driver\": \"file\"}", false,
                            "Parameter 'filename' is missing");
    check_error_TestOptions("{\"driver\": \"null-co\", \"filename\": \"x\"}",
                            false, "Parameter 'filename' is unexpected");
    check_error_TestOptions("{\"driver\": \"qcow3\"}", false,
                            "Parameter 'driver' does not accept value "
                            "'qcow3'");
    check_error_TestOptions("{\"filename\": \"x\"}", false,
                            "Parameter 'driver' is missing");
}
END_TEST

START_TEST(test_input_alternate)
{
    g_autoptr(TestOptions) ref = input_TestOptions(
        "{\"driver\": \"nested\", \"file\": \"node0\", \"backing\": null}",
        false, NULL);
    g_autoptr(TestOptions) def = input_TestOptions(
        "{\"driver\": \"nested\", \"file\": {\"driver\": \"file\","
        " \"filename\": \"/img\"}, \"backing\": {\"driver\": \"null-co\"}}",
        false, NULL);
    g_autoptr(AltNumbers) n = input_AltNumbers("5", false, NULL);
    g_autoptr(AltNumbers) b = input_AltNumbers("false", false, NULL);
    g_autoptr(AltNumbers) e = input_AltNumbers("\"value2\"", false, NULL);
    g_autoptr(AltNumbers) l = input_AltNumbers("[3, 4]", false, NULL);

    ck_assert_int_eq(ref->u.nested.file->type, QTYPE_QSTRING);
    ck_assert_str_eq(ref->u.nested.file->u.reference, "node0");
    ck_assert_int_eq(ref->u.nested.backing->type, QTYPE_QNULL);

    ck_assert_int_eq(def->u.nested.file->type, QTYPE_QDICT);
    ck_assert_int_eq(def->u.nested.file->u.definition.driver,
                     TEST_DRIVER_FILE);
    ck_assert_str_eq(def->u.nested.file->u.definition.u.file.filename,
                     "/img");
    ck_assert_int_eq(def->u.nested.backing->type, QTYPE_QDICT);
    ck_assert_int_eq(def->u.nested.backing->u.definition.driver,
                     TEST_DRIVER_NULL_CO);

    ck_assert(n->type == QTYPE_QNUM && n->u.n == 5);
    ck_assert(b->type == QTYPE_QBOOL && !b->u.b);
    ck_assert(e->type == QTYPE_QSTRING && e->u.e == ENUM_ONE_VALUE2);
    ck_assert(l->type == QTYPE_QLIST && l->u.l->value == 3 &&
              l->u.l->next->value == 4);

    check_error_TestOptions("{\"driver\": \"nested\", \"file\": 5}", false,
                            "Invalid parameter type for 'file', "
                            "expected: TestRef");
    check_error_TestOptions("{\"driver\": \"nested\", \"file\": {"
                            "\"driver\": \"file\"}}", false,
                            "Parameter 'file.filename' is missing");
    check_error_AltNumbers("{}", false,
                           "Invalid parameter type for 'null', "
                           "expected: AltNumbers");
    check_error_AltNumbers("\"value9\"", false,
                           "Parameter 'null' does not accept value "
                           "'value9'");
}
END_TEST

/* ---- keyval input -------------------------------------------------------- */

START_TEST(test_keyval_conversions)
{
    g_autoptr(UserDefTwo) two = input_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": \"0x10\", \"string\": \"7\","
        " \"flag\": \"on\", \"enum1\": \"value2\"},"
        " \"x-perf\": {\"max-workers\": \"4\", \"max-chunk\": \"64k\","
        " \"use-copy-range\": \"off\"},"
        " \"ones\": [{\"integer\": \"-3\", \"string\": \"a\"}],"
        " \"strings\": [\"a\", \"b\"]}", true, NULL);
    g_autoptr(AllScalars) a = input_AllScalars(
        "{\"i8\": \"-8\", \"u64\": \"18446744073709551615\", \"sz\": \"1.5M\","
        " \"num\": \"2.5\", \"b\": \"yes\", \"n\": \"\", \"s\": \"on\","
        " \"u32\": \"010\"}", true, NULL);
    const struct {
        const char *size;
        uint64_t value;
    } sizes[] = {
        { "0", 0 }, { "512", 512 }, { "512B", 512 }, { "4k", 4096 },
        { "4K", 4096 }, { "2M", 2 * MiB }, { "3G", 3 * GiB },
        { "1T", TiB }, { "0.5K", 512 }, { "0x1000", 4096 },
    };
    const struct {
        const char *str;
        bool value;
    } bools[] = {
        { "on", true }, { "yes", true }, { "true", true }, { "y", true },
        { "off", false }, { "no", false }, { "false", false }, { "n", false },
    };
    size_t i;

    ck_assert_ptr_nonnull(two);
    ck_assert_int_eq(two->one->integer, 16);
    ck_assert_str_eq(two->one->string, "7");
    ck_assert(two->one->has_flag && two->one->flag);
    ck_assert_int_eq(two->one->enum1, ENUM_ONE_VALUE2);
    ck_assert_int_eq(two->x_perf->max_workers, 4);
    ck_assert_uint_eq(two->x_perf->max_chunk, 64 * KiB);
    ck_assert(two->x_perf->has_use_copy_range &&
              !two->x_perf->use_copy_range);
    ck_assert_int_eq(two->ones->value->integer, -3);
    ck_assert_str_eq(two->strings->next->value, "b");

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->i8, -8);
    ck_assert_uint_eq(a->u64, UINT64_MAX);
    ck_assert_uint_eq(a->sz, 3 * MiB / 2);
    ck_assert_double_eq(a->num, 2.5);
    ck_assert(a->b);
    ck_assert_ptr_nonnull(a->n);
    ck_assert_str_eq(a->s, "on");
    ck_assert_uint_eq(a->u32, 8);

    for (i = 0; i < ARRAY_SIZE(sizes); i++) {
        g_autofree char *text = g_strdup_printf("{\"sz\": \"%s\"}",
                                                sizes[i].size);
        g_autoptr(AllScalars) s = input_AllScalars(text, true, NULL);

        ck_assert_msg(s, "size %s rejected", sizes[i].size);
        ck_assert_uint_eq(s->sz, sizes[i].value);
    }
    for (i = 0; i < ARRAY_SIZE(bools); i++) {
        g_autofree char *text = g_strdup_printf("{\"b\": \"%s\"}",
                                                bools[i].str);
        g_autoptr(AllScalars) s = input_AllScalars(text, true, NULL);

        ck_assert_msg(s, "bool %s rejected", bools[i].str);
        ck_assert(s->b == bools[i].value);
    }
}
END_TEST

START_TEST(test_keyval_union)
{
    g_autoptr(TestOptions) f = input_TestOptions(
        "{\"driver\": \"file\", \"filename\": \"/x\", \"read-only\": \"on\"}",
        true, NULL);
    g_autoptr(TestOptions) nested = input_TestOptions(
        "{\"driver\": \"nested\", \"file\": {\"driver\": \"file\","
        " \"filename\": \"/img\"}}", true, NULL);

    ck_assert_str_eq(f->u.file.filename, "/x");
    ck_assert(f->has_read_only && f->read_only);
    ck_assert_int_eq(nested->u.nested.file->type, QTYPE_QDICT);
    ck_assert_str_eq(nested->u.nested.file->u.definition.u.file.filename,
                     "/img");
}
END_TEST

START_TEST(test_keyval_errors)
{
    check_error_UserDefTwo("{\"name\": \"n\", \"one\": {\"integer\": \"1\","
                           " \"string\": \"s\"}, \"x-perf\": "
                           "{\"max-workers\": \"many\"}}", true,
                           "Parameter 'x-perf.max-workers' expects integer");
    check_error_UserDefTwo("{\"name\": \"n\", \"one\": {\"integer\": \"1\","
                           " \"string\": \"s\"}, \"ones\": [{\"integer\":"
                           " \"x\", \"string\": \"a\"}]}", true,
                           "Parameter 'ones.0.integer' expects integer");
    check_error_UserDefTwo("{\"name\": {\"a\": \"b\"}}", true,
                           "Parameters 'name.*' are unexpected");
    check_error_UserDefTwo("{\"name\": 1}", true,
                           "Invalid parameter type for 'name', "
                           "expected: string");
    check_error_AllScalars("{\"sz\": \"12Q\"}", true,
                           "Parameter 'sz' expects size");
    check_error_AllScalars("{\"sz\": \"-1\"}", true,
                           "Parameter 'sz' expects size");
    check_error_AllScalars("{\"sz\": \"1.5\"}", true,
                           "Parameter 'sz' expects size");
    check_error_AllScalars("{\"sz\": \"99999999999E\"}", true,
                           "Parameter 'sz' expects size");
    check_error_AllScalars("{\"b\": \"maybe\"}", true,
                           "Parameter 'b' expects 'on' or 'off'");
    check_error_AllScalars("{\"i64\": \"12abc\"}", true,
                           "Parameter 'i64' expects integer");
    check_error_AllScalars("{\"i64\": \"99999999999999999999\"}", true,
                           "Parameter 'i64' expects integer");
    check_error_AllScalars("{\"i8\": \"300\"}", true,
                           "Parameter 'i8' expects int8");
    check_error_AllScalars("{\"num\": \"x\"}", true,
                           "Invalid parameter type for 'num', "
                           "expected: number");
    check_error_AllScalars("{\"n\": \"x\"}", true,
                           "Invalid parameter type for 'n', expected: null");
    check_error_AllScalars("{\"zz\": \"1\"}", true,
                           "Parameter 'zz' is unexpected");
}
END_TEST

/* ---- output ------------------------------------------------------------ */

START_TEST(test_output_built_by_hand)
{
    g_autoptr(UserDefTwo) two = g_new0(UserDefTwo, 1);
    g_autoptr(json_t) out = NULL;
    UserDefOneList *elt = g_new0(UserDefOneList, 1);

    two->name = g_strdup("n");
    two->one = g_new0(UserDefOne, 1);
    two->one->integer = 3;
    two->one->string = g_strdup("s");
    two->one->has_enum1 = true;
    two->one->enum1 = ENUM_ONE_VALUE_THREE;
    /* has_flag false: flag must not appear even if set */
    two->one->flag = true;
    two->x_perf = g_new0(PerfOpts, 1);
    two->x_perf->has_max_chunk = true;
    two->x_perf->max_chunk = 65536;
    elt->value = g_new0(UserDefOne, 1);
    elt->value->string = g_strdup("e");
    two->ones = elt;
    two->enums = g_new0(EnumOneList, 1);
    two->enums->value = ENUM_ONE_VALUE1;

    out = output_UserDefTwo(two);
    check_json_eq(out,
        "{\"name\": \"n\", \"one\": {\"integer\": 3, \"string\": \"s\","
        " \"enum1\": \"value-three\"}, \"x-perf\": {\"max-chunk\": 65536},"
        " \"ones\": [{\"integer\": 0, \"string\": \"e\"}],"
        " \"enums\": [\"value1\"]}");
}
END_TEST

static void check_round_trip_UserDefTwo(const char *text)
{
    g_autoptr(UserDefTwo) obj = input_UserDefTwo(text, false, NULL);
    g_autoptr(json_t) out = NULL;

    ck_assert_ptr_nonnull(obj);
    out = output_UserDefTwo(obj);
    check_json_eq(out, text);
}

START_TEST(test_output_round_trip)
{
    g_autoptr(TestOptions) u = NULL;
    g_autoptr(AllScalars) a = NULL;
    g_autoptr(AltNumbers) l = NULL;
    g_autoptr(json_t) out1 = NULL, out2 = NULL, out3 = NULL;
    const char *union_text =
        "{\"driver\": \"nested\", \"node-name\": \"top\","
        " \"file\": {\"driver\": \"file\", \"filename\": \"/img\","
        " \"aio\": \"value1\"}, \"backing\": null}";
    const char *scalars_text =
        "{\"i8\": -1, \"i16\": 2, \"i32\": -3, \"i64\": 4, \"u8\": 5,"
        " \"u16\": 6, \"u32\": 7, \"u64\": 8, \"sz\": 9, \"num\": 1.25,"
        " \"b\": false, \"s\": \"x\", \"a\": [1, {\"k\": null}],"
        " \"n\": null, \"default\": -7}";

    check_round_trip_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\","
        " \"flag\": false},"
        " \"x-perf\": {\"max-workers\": 8, \"use-copy-range\": true},"
        " \"ones\": [{\"integer\": 1, \"string\": \"a\"}],"
        " \"strings\": [\"x\", \"y\"], \"enums\": [\"value2\"]}");

    u = input_TestOptions(union_text, false, NULL);
    ck_assert_ptr_nonnull(u);
    out1 = output_TestOptions(u);
    check_json_eq(out1, union_text);

    a = input_AllScalars(scalars_text, false, NULL);
    ck_assert_ptr_nonnull(a);
    out2 = output_AllScalars(a);
    check_json_eq(out2, scalars_text);

    l = input_AltNumbers("[1, 2, 3]", false, NULL);
    ck_assert_ptr_nonnull(l);
    out3 = output_AltNumbers(l);
    check_json_eq(out3, "[1, 2, 3]");
}
END_TEST

START_TEST(test_free_partial_input)
{
    /*
     * A failure late in the visit must free everything built so far (run
     * under ASan/LSan to make this test bite).
     */
    check_error_UserDefTwo(
        "{\"name\": \"n\", \"one\": {\"integer\": 1, \"string\": \"s\"},"
        " \"ones\": [{\"integer\": 1, \"string\": \"a\"}],"
        " \"strings\": [\"a\", \"b\"], \"enums\": [\"value1\", \"bad\"]}",
        false, "Parameter 'null' does not accept value 'bad'");
    check_error_TestOptions(
        "{\"driver\": \"nested\", \"file\": {\"driver\": \"file\","
        " \"filename\": \"/img\"}, \"backing\": 7}", false,
        "Invalid parameter type for 'backing', expected: TestRefOrNull");
    qapi_free_UserDefTwo(NULL);
}
END_TEST

static Suite *qapi_visit_suite(void)
{
    Suite *s = suite_create("qapi-visit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_enum_lookup);
    tcase_add_test(tc, test_input_nested);
    tcase_add_test(tc, test_input_optional_absent);
    tcase_add_test(tc, test_input_all_scalars);
    tcase_add_test(tc, test_input_errors_missing_unexpected);
    tcase_add_test(tc, test_input_errors_types);
    tcase_add_test(tc, test_input_errors_enum_range);
    tcase_add_test(tc, test_input_flat_union);
    tcase_add_test(tc, test_input_alternate);
    tcase_add_test(tc, test_keyval_conversions);
    tcase_add_test(tc, test_keyval_union);
    tcase_add_test(tc, test_keyval_errors);
    tcase_add_test(tc, test_output_built_by_hand);
    tcase_add_test(tc, test_output_round_trip);
    tcase_add_test(tc, test_free_partial_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qapi_visit_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
