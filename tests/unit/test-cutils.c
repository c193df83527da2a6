/*
 * Unit tests for util/cutils.c: qemu_strto*(), qemu_strtosz*(),
 * size_to_str(), string helpers and aligned allocation.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include <check.h>
#include <math.h>

/* ---- size parsing ---- */

static void sz_ok(int (*fn)(const char *, const char **, uint64_t *),
                  const char *str, uint64_t want)
{
    uint64_t res = 0xdead;
    const char *end = NULL;
    int ret;

    ret = fn(str, NULL, &res);
    ck_assert_msg(ret == 0, "'%s': ret %d", str, ret);
    ck_assert_msg(res == want, "'%s': got %" PRIu64 " want %" PRIu64,
                  str, res, want);
    /* with an end pointer: same value, end at the terminator */
    res = 0xdead;
    ret = fn(str, &end, &res);
    ck_assert_int_eq(ret, 0);
    ck_assert_uint_eq(res, want);
    ck_assert_ptr_eq(end, str + strlen(str));
}

static void sz_err(int (*fn)(const char *, const char **, uint64_t *),
                   const char *str, int want_ret)
{
    uint64_t res = 0xdead;
    int ret = fn(str, NULL, &res);

    ck_assert_msg(ret == want_ret, "'%s': ret %d want %d", str, ret,
                  want_ret);
    ck_assert_msg(res == 0, "'%s': result %" PRIu64 " on error", str, res);
}

START_TEST(test_strtosz_suffixes)
{
    sz_ok(qemu_strtosz, "0", 0);
    sz_ok(qemu_strtosz, "12345", 12345);
    sz_ok(qemu_strtosz, "1B", 1);
    sz_ok(qemu_strtosz, "1b", 1);
    sz_ok(qemu_strtosz, "1K", KiB);
    sz_ok(qemu_strtosz, "1k", KiB);
    sz_ok(qemu_strtosz, "64k", 64 * KiB);
    sz_ok(qemu_strtosz, "1M", MiB);
    sz_ok(qemu_strtosz, "1m", MiB);
    sz_ok(qemu_strtosz, "1G", GiB);
    sz_ok(qemu_strtosz, "3g", 3 * GiB);
    sz_ok(qemu_strtosz, "1T", TiB);
    sz_ok(qemu_strtosz, "1P", 1024 * TiB);
    sz_ok(qemu_strtosz, "1E", UINT64_C(1) << 60);
    sz_ok(qemu_strtosz, "15E", UINT64_C(15) << 60);
    sz_ok(qemu_strtosz, " 12k", 12 * KiB);
    sz_ok(qemu_strtosz, "0x10", 16);
    sz_ok(qemu_strtosz, "0X1f", 31);
    sz_ok(qemu_strtosz, "18446744073709551615", UINT64_MAX);
    sz_ok(qemu_strtosz, "18446744073709551615B", UINT64_MAX);

    /* default unit MiB */
    sz_ok(qemu_strtosz_MiB, "1", MiB);
    sz_ok(qemu_strtosz_MiB, "1.5", 3 * MiB / 2);
    sz_ok(qemu_strtosz_MiB, "1k", KiB);
    sz_ok(qemu_strtosz_MiB, "7B", 7);
    sz_ok(qemu_strtosz_MiB, "0x10", 16 * MiB);

    /* metric */
    sz_ok(qemu_strtosz_metric, "1k", 1000);
    sz_ok(qemu_strtosz_metric, "1.5M", 1500000);
    sz_ok(qemu_strtosz_metric, "1E", UINT64_C(1000000000000000000));
    sz_ok(qemu_strtosz_metric, "12", 12);
}
END_TEST

START_TEST(test_strtosz_fractions)
{
    sz_ok(qemu_strtosz, "1.5M", 3 * MiB / 2);
    sz_ok(qemu_strtosz, "1.5k", 1536);
    sz_ok(qemu_strtosz, "0.5k", 512);
    sz_ok(qemu_strtosz, ".5k", 512);
    sz_ok(qemu_strtosz, "1.k", 1024);
    sz_ok(qemu_strtosz, "1.", 1);
    sz_ok(qemu_strtosz, "1.0", 1);          /* no fraction of a byte */
    sz_ok(qemu_strtosz, "1.25G", 5 * GiB / 4);
    sz_ok(qemu_strtosz, "1.5e", UINT64_C(3) << 59);
    /* rounding to the nearest byte, half up */
    sz_ok(qemu_strtosz, "1.0001k", 1024);   /* 1024.1024 */
    sz_ok(qemu_strtosz, "1.0005k", 1025);   /* 1024.512 */
    sz_ok(qemu_strtosz, "0.00048828125k", 1); /* exactly 0.5 */
    sz_ok(qemu_strtosz, "0.0004k", 0);      /* 0.4096 */
    sz_ok(qemu_strtosz, "12.345M", 12944671); /* 12944670.72 */
    /* long fractions are fine */
    sz_ok(qemu_strtosz, "1.000000000000000000000000001k", 1024);
    sz_ok(qemu_strtosz, "15.9375E", UINT64_C(255) << 56);

    /* a fraction needs a unit bigger than a byte */
    sz_err(qemu_strtosz, "1.5", -EINVAL);
    sz_err(qemu_strtosz, "1.5B", -EINVAL);
    sz_err(qemu_strtosz, "0.1", -EINVAL);
    sz_err(qemu_strtosz, "1.000000000000000000000000001", -EINVAL);
    /* hex takes no fraction or suffix */
    sz_err(qemu_strtosz, "0x1.5k", -EINVAL);
    sz_err(qemu_strtosz, "0x10k", -EINVAL);
    sz_err(qemu_strtosz, "0x10.", -EINVAL);
}
END_TEST

START_TEST(test_strtosz_errors)
{
    const char *end;
    uint64_t res;
    const char *s;

    sz_err(qemu_strtosz, "", -EINVAL);
    sz_err(qemu_strtosz, " ", -EINVAL);
    sz_err(qemu_strtosz, "k", -EINVAL);
    sz_err(qemu_strtosz, ".", -EINVAL);
    sz_err(qemu_strtosz, ".k", -EINVAL);
    sz_err(qemu_strtosz, "-1", -EINVAL);
    sz_err(qemu_strtosz, "-0", -EINVAL);
    sz_err(qemu_strtosz, " -1k", -EINVAL);
    sz_err(qemu_strtosz, "+1", -EINVAL);
    sz_err(qemu_strtosz, "1.5.k", -EINVAL);
    sz_err(qemu_strtosz, "12junk", -EINVAL);
    sz_err(qemu_strtosz, "1kB", -EINVAL);
    sz_err(qemu_strtosz, "1k ", -EINVAL);
    sz_err(qemu_strtosz, "1 k", -EINVAL);
    sz_err(qemu_strtosz, "1X", -EINVAL);
    sz_err(qemu_strtosz, "1e5", -EINVAL);
    sz_err(qemu_strtosz, NULL, -EINVAL);

    /* overflow */
    sz_err(qemu_strtosz, "16E", -ERANGE);
    sz_err(qemu_strtosz, "16384P", -ERANGE);
    sz_err(qemu_strtosz, "17179869184G", -ERANGE);
    sz_err(qemu_strtosz, "18446744073709551616", -ERANGE);
    sz_err(qemu_strtosz, "99999999999999999999999k", -ERANGE);
    sz_err(qemu_strtosz, "0x10000000000000000", -ERANGE);
    sz_err(qemu_strtosz, "15.99999999999999999999E", -ERANGE);
    sz_err(qemu_strtosz_MiB, "17592186044416", -ERANGE);
    sz_err(qemu_strtosz_metric, "18.5E", -ERANGE);

    /* with an end pointer, trailing text is the caller's business */
    s = "12junk";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), 0);
    ck_assert_uint_eq(res, 12);
    ck_assert_ptr_eq(end, s + 2);
    s = "1kB";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), 0);
    ck_assert_uint_eq(res, KiB);
    ck_assert_ptr_eq(end, s + 2);
    s = "8M,size=1";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), 0);
    ck_assert_uint_eq(res, 8 * MiB);
    ck_assert_str_eq(end, ",size=1");
    /* -EINVAL: end is reset to the start */
    s = "-5k";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), -EINVAL);
    ck_assert_ptr_eq(end, s);
    ck_assert_uint_eq(res, 0);
    s = "1.5x";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), -EINVAL);
    ck_assert_ptr_eq(end, s);
    /* -ERANGE: end is past the number */
    s = "16E,";
    ck_assert_int_eq(qemu_strtosz(s, &end, &res), -ERANGE);
    ck_assert_str_eq(end, ",");
    ck_assert_uint_eq(res, 0);
}
END_TEST

/* ---- integer parsing ---- */

START_TEST(test_strtoi)
{
    const char *end;
    int res;
    const char *s;

    ck_assert_int_eq(qemu_strtoi("123", NULL, 0, &res), 0);
    ck_assert_int_eq(res, 123);
    ck_assert_int_eq(qemu_strtoi("-123", NULL, 10, &res), 0);
    ck_assert_int_eq(res, -123);
    ck_assert_int_eq(qemu_strtoi("  +7", NULL, 10, &res), 0);
    ck_assert_int_eq(res, 7);
    /* base 0 detects hex and octal, base 16 accepts 0x */
    ck_assert_int_eq(qemu_strtoi("0x1f", NULL, 0, &res), 0);
    ck_assert_int_eq(res, 31);
    ck_assert_int_eq(qemu_strtoi("017", NULL, 0, &res), 0);
    ck_assert_int_eq(res, 15);
    ck_assert_int_eq(qemu_strtoi("017", NULL, 10, &res), 0);
    ck_assert_int_eq(res, 17);
    ck_assert_int_eq(qemu_strtoi("1f", NULL, 16, &res), 0);
    ck_assert_int_eq(res, 31);
    ck_assert_int_eq(qemu_strtoi("0x1F", NULL, 16, &res), 0);
    ck_assert_int_eq(res, 31);
    ck_assert_int_eq(qemu_strtoi("-0x10", NULL, 0, &res), 0);
    ck_assert_int_eq(res, -16);
    ck_assert_int_eq(qemu_strtoi("08", NULL, 0, &res), -EINVAL);
    ck_assert_int_eq(res, 0);
    ck_assert_int_eq(qemu_strtoi("1f", NULL, 10, &res), -EINVAL);

    /* limits */
    ck_assert_int_eq(qemu_strtoi("2147483647", NULL, 0, &res), 0);
    ck_assert_int_eq(res, INT_MAX);
    ck_assert_int_eq(qemu_strtoi("-2147483648", NULL, 0, &res), 0);
    ck_assert_int_eq(res, INT_MIN);
    ck_assert_int_eq(qemu_strtoi("2147483648", NULL, 0, &res), -ERANGE);
    ck_assert_int_eq(res, INT_MAX);
    ck_assert_int_eq(qemu_strtoi("-2147483649", NULL, 0, &res), -ERANGE);
    ck_assert_int_eq(res, INT_MIN);
    ck_assert_int_eq(qemu_strtoi("0x80000000", NULL, 16, &res), -ERANGE);
    ck_assert_int_eq(res, INT_MAX);
    ck_assert_int_eq(qemu_strtoi("99999999999999999999999", NULL, 0, &res),
                     -ERANGE);
    ck_assert_int_eq(res, INT_MAX);
    ck_assert_int_eq(qemu_strtoi("-99999999999999999999999", NULL, 0, &res),
                     -ERANGE);
    ck_assert_int_eq(res, INT_MIN);

    /* not numbers */
    s = "";
    ck_assert_int_eq(qemu_strtoi(s, &end, 0, &res), -EINVAL);
    ck_assert_ptr_eq(end, s);
    s = "  ";
    ck_assert_int_eq(qemu_strtoi(s, &end, 0, &res), -EINVAL);
    ck_assert_ptr_eq(end, s);
    s = "abc";
    ck_assert_int_eq(qemu_strtoi(s, &end, 0, &res), -EINVAL);
    ck_assert_ptr_eq(end, s);
    ck_assert_int_eq(res, 0);
    ck_assert_int_eq(qemu_strtoi(NULL, &end, 0, &res), -EINVAL);
    ck_assert_ptr_null(end);

    /* trailing junk: error without endptr, fine with it */
    s = "12abc";
    ck_assert_int_eq(qemu_strtoi(s, NULL, 0, &res), -EINVAL);
    ck_assert_int_eq(res, 0);
    ck_assert_int_eq(qemu_strtoi(s, &end, 0, &res), 0);
    ck_assert_int_eq(res, 12);
    ck_assert_ptr_eq(end, s + 2);
    ck_assert_int_eq(qemu_strtoi("12 ", NULL, 0, &res), -EINVAL);
    /* overflow plus junk: junk wins without endptr */
    ck_assert_int_eq(qemu_strtoi("99999999999x", NULL, 0, &res), -EINVAL);
    s = "99999999999x";
    ck_assert_int_eq(qemu_strtoi(s, &end, 0, &res), -ERANGE);
    ck_assert_int_eq(res, INT_MAX);
    ck_assert_ptr_eq(end, s + 11);
}
END_TEST

START_TEST(test_strtoui)
{
    unsigned int res;

    ck_assert_int_eq(qemu_strtoui("4294967295", NULL, 0, &res), 0);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("0xffffffff", NULL, 0, &res), 0);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("4294967296", NULL, 0, &res), -ERANGE);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("99999999999999999999999", NULL, 0, &res),
                     -ERANGE);
    ck_assert_uint_eq(res, UINT_MAX);
    /* negative numbers wrap like strtoul, if their magnitude fits */
    ck_assert_int_eq(qemu_strtoui("-1", NULL, 0, &res), 0);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("-0", NULL, 0, &res), 0);
    ck_assert_uint_eq(res, 0);
    ck_assert_int_eq(qemu_strtoui(" -4294967295", NULL, 0, &res), 0);
    ck_assert_uint_eq(res, 1);
    ck_assert_int_eq(qemu_strtoui("-4294967296", NULL, 0, &res), -ERANGE);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("-18446744073709551615", NULL, 0, &res),
                     -ERANGE);
    ck_assert_int_eq(qemu_strtoui("-18446744073709551616", NULL, 0, &res),
                     -ERANGE);
    ck_assert_uint_eq(res, UINT_MAX);
    ck_assert_int_eq(qemu_strtoui("x", NULL, 0, &res), -EINVAL);
    ck_assert_uint_eq(res, 0);
}
END_TEST

START_TEST(test_strtol_ul)
{
    long l;
    unsigned long ul;

    ck_assert_int_eq(qemu_strtol("9223372036854775807", NULL, 0, &l), 0);
    ck_assert_int_eq(l, LONG_MAX);
    ck_assert_int_eq(qemu_strtol("9223372036854775808", NULL, 0, &l),
                     -ERANGE);
    ck_assert_int_eq(l, LONG_MAX);
    ck_assert_int_eq(qemu_strtol("-9223372036854775809", NULL, 0, &l),
                     -ERANGE);
    ck_assert_int_eq(l, LONG_MIN);
    ck_assert_int_eq(qemu_strtol("-0x7f", NULL, 16, &l), 0);
    ck_assert_int_eq(l, -127);

    ck_assert_int_eq(qemu_strtoul("18446744073709551615", NULL, 0, &ul), 0);
    ck_assert_uint_eq(ul, ULONG_MAX);
    ck_assert_int_eq(qemu_strtoul("18446744073709551616", NULL, 0, &ul),
                     -ERANGE);
    ck_assert_uint_eq(ul, ULONG_MAX);
    ck_assert_int_eq(qemu_strtoul("-1", NULL, 0, &ul), 0);
    ck_assert_uint_eq(ul, ULONG_MAX);
    ck_assert_int_eq(qemu_strtoul("-2", NULL, 0, &ul), 0);
    ck_assert_uint_eq(ul, ULONG_MAX - 1);
    ck_assert_int_eq(qemu_strtoul("12k", NULL, 0, &ul), -EINVAL);
    ck_assert_uint_eq(ul, 0);
}
END_TEST

START_TEST(test_strtoi64_u64)
{
    int64_t i;
    uint64_t u;
    const char *end;

    ck_assert_int_eq(qemu_strtoi64("9223372036854775807", NULL, 0, &i), 0);
    ck_assert_int_eq(i, INT64_MAX);
    ck_assert_int_eq(qemu_strtoi64("-9223372036854775808", NULL, 0, &i), 0);
    ck_assert_int_eq(i, INT64_MIN);
    ck_assert_int_eq(qemu_strtoi64("9223372036854775808", NULL, 0, &i),
                     -ERANGE);
    ck_assert_int_eq(i, INT64_MAX);
    ck_assert_int_eq(qemu_strtoi64("-9223372036854775809", NULL, 0, &i),
                     -ERANGE);
    ck_assert_int_eq(i, INT64_MIN);
    ck_assert_int_eq(qemu_strtoi64("0x7fffffffffffffff", NULL, 16, &i), 0);
    ck_assert_int_eq(i, INT64_MAX);
    ck_assert_int_eq(qemu_strtoi64("65536", &end, 10, &i), 0);
    ck_assert_int_eq(i, 65536);
    ck_assert_str_eq(end, "");

    ck_assert_int_eq(qemu_strtou64("18446744073709551615", NULL, 0, &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(qemu_strtou64("0xffffffffffffffff", NULL, 0, &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(qemu_strtou64("18446744073709551616", NULL, 0, &u),
                     -ERANGE);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(qemu_strtou64("-1", NULL, 0, &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(qemu_strtou64("-18446744073709551615", NULL, 0, &u), 0);
    ck_assert_uint_eq(u, 1);
    ck_assert_int_eq(qemu_strtou64("-18446744073709551616", NULL, 0, &u),
                     -ERANGE);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(qemu_strtou64("777", NULL, 8, &u), 0);
    ck_assert_uint_eq(u, 511);
    ck_assert_int_eq(qemu_strtou64("", NULL, 0, &u), -EINVAL);
}
END_TEST

START_TEST(test_strtod)
{
    double d;
    const char *end;
    const char *s;

    ck_assert_int_eq(qemu_strtod("1.5", NULL, &d), 0);
    ck_assert(d == 1.5);
    ck_assert_int_eq(qemu_strtod(" -2.5e3", NULL, &d), 0);
    ck_assert(d == -2500.0);
    ck_assert_int_eq(qemu_strtod("1e400", NULL, &d), -ERANGE);
    ck_assert(d == HUGE_VAL);
    ck_assert_int_eq(qemu_strtod("-1e400", NULL, &d), -ERANGE);
    ck_assert(d == -HUGE_VAL);
    ck_assert_int_eq(qemu_strtod("1e-400", NULL, &d), -ERANGE);
    ck_assert(fabs(d) < 1e-300);
    ck_assert_int_eq(qemu_strtod("x", NULL, &d), -EINVAL);
    ck_assert(d == 0.0);
    ck_assert_int_eq(qemu_strtod("1.5x", NULL, &d), -EINVAL);
    s = "1.5x";
    ck_assert_int_eq(qemu_strtod(s, &end, &d), 0);
    ck_assert(d == 1.5);
    ck_assert_ptr_eq(end, s + 3);
    ck_assert_int_eq(qemu_strtod("inf", NULL, &d), 0);
    ck_assert(isinf(d));

    ck_assert_int_eq(qemu_strtod_finite("2.25", NULL, &d), 0);
    ck_assert(d == 2.25);
    s = "inf";
    ck_assert_int_eq(qemu_strtod_finite(s, &end, &d), -EINVAL);
    ck_assert_ptr_eq(end, s);
    ck_assert(d == 0.0);
    ck_assert_int_eq(qemu_strtod_finite("nan", NULL, &d), -EINVAL);
    ck_assert_int_eq(qemu_strtod_finite("1e400", NULL, &d), -ERANGE);
    ck_assert_int_eq(qemu_strtod_finite("3junk", NULL, &d), -EINVAL);
    ck_assert(d == 0.0);
}
END_TEST

/* ---- printing and strings ---- */

static void check_size_str(uint64_t val, const char *want)
{
    g_autofree char *s = size_to_str(val);

    ck_assert_msg(!strcmp(s, want), "%" PRIu64 ": got '%s' want '%s'",
                  val, s, want);
}

START_TEST(test_size_to_str)
{
    check_size_str(0, "0 B");
    check_size_str(1, "1 B");
    check_size_str(999, "999 B");
    check_size_str(1000, "0.977 KiB");
    check_size_str(1023, "0.999 KiB");
    check_size_str(1024, "1 KiB");
    check_size_str(1536, "1.5 KiB");
    check_size_str(64 * KiB, "64 KiB");
    check_size_str(1000 * KiB, "0.977 MiB");
    check_size_str(3 * MiB / 2, "1.5 MiB");
    check_size_str(123456789, "118 MiB");
    check_size_str(1023 * MiB, "0.999 GiB");
    check_size_str(GiB, "1 GiB");
    check_size_str(10 * GiB, "10 GiB");
    check_size_str(2 * TiB, "2 TiB");
    check_size_str(1024 * TiB, "1 PiB");
    check_size_str(UINT64_C(1) << 60, "1 EiB");
    check_size_str(UINT64_MAX, "16 EiB");
}
END_TEST

START_TEST(test_strings)
{
    char buf[4];
    const char *rest;

    memset(buf, 'x', sizeof(buf));
    pstrcpy(buf, sizeof(buf), "hello");
    ck_assert_str_eq(buf, "hel");
    pstrcpy(buf, sizeof(buf), "hi");
    ck_assert_str_eq(buf, "hi");
    buf[0] = 'q';
    pstrcpy(buf, 0, "zzz");
    ck_assert_int_eq(buf[0], 'q');
    pstrcpy(buf, 1, "zzz");
    ck_assert_int_eq(buf[0], '\0');

    ck_assert(strstart("nbd://host", "nbd://", &rest));
    ck_assert_str_eq(rest, "host");
    ck_assert(strstart("nbd", "nbd", NULL));
    ck_assert(!strstart("nb", "nbd", &rest));
    ck_assert(strstart("x", "", &rest));
    ck_assert_str_eq(rest, "x");
}
END_TEST

START_TEST(test_memalign)
{
    size_t aligns[] = { 1, 8, 512, 4096, 65536 };

    for (size_t i = 0; i < ARRAY_SIZE(aligns); i++) {
        unsigned char *p = qemu_memalign(aligns[i], 1000);
        unsigned char *q = qemu_try_memalign(aligns[i], 0);

        ck_assert(QEMU_PTR_IS_ALIGNED(p, aligns[i]));
        ck_assert_ptr_nonnull(q);
        ck_assert(QEMU_PTR_IS_ALIGNED(q, MAX(aligns[i], sizeof(void *))));
        memset(p, 0xa5, 1000);
        qemu_vfree(p);
        qemu_vfree(q);
    }
    qemu_vfree(NULL);
}
END_TEST

START_TEST(test_blockalign)
{
    unsigned char *p = qemu_blockalign_buf(0, 100);
    unsigned char *z;

    ck_assert(QEMU_PTR_IS_ALIGNED(p, QEMU_DEFAULT_IO_ALIGN));
    /* size rounded up to the alignment: the whole block is ours */
    memset(p, 1, QEMU_DEFAULT_IO_ALIGN);
    qemu_vfree(p);

    p = qemu_try_blockalign_buf(512, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert(QEMU_PTR_IS_ALIGNED(p, 512));
    memset(p, 1, 512);
    qemu_vfree(p);

    z = qemu_try_blockalign0_buf(4096, 3 * 4096 + 5);
    ck_assert(QEMU_PTR_IS_ALIGNED(z, 4096));
    ck_assert(buffer_is_zero(z, 3 * 4096 + 5));
    qemu_vfree(z);

    ck_assert_ptr_null(qemu_try_blockalign_buf(512, SIZE_MAX - 100));
}
END_TEST

static Suite *cutils_suite(void)
{
    Suite *s = suite_create("cutils");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_strtosz_suffixes);
    tcase_add_test(tc, test_strtosz_fractions);
    tcase_add_test(tc, test_strtosz_errors);
    tcase_add_test(tc, test_strtoi);
    tcase_add_test(tc, test_strtoui);
    tcase_add_test(tc, test_strtol_ul);
    tcase_add_test(tc, test_strtoi64_u64);
    tcase_add_test(tc, test_strtod);
    tcase_add_test(tc, test_size_to_str);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_memalign);
    tcase_add_test(tc, test_blockalign);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cutils_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
