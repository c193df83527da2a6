/*
 * Unit tests for buffer_is_zero() (util/bufferiszero.c): every
 * implementation the CPU supports is checked against a naive byte loop.
 *
 * The bytes around the buffer under test are set to 0xff, so an
 * implementation that reads outside [buf, buf + len) gives a wrong answer
 * (and ASan builds flag it as well).
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include <check.h>

#define MAX_LEN 300
#define MAX_ALIGN 64
#define AREA (MAX_ALIGN + MAX_LEN + MAX_ALIGN)

static bool naive_is_zero(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

/* Run @fn once per implementation this machine supports. */
static void for_each_accel(void (*fn)(BufferZeroAccel accel))
{
    int tested = 0;

    for (int a = BUFFER_ZERO_ACCEL_INT; a < BUFFER_ZERO_ACCEL__MAX; a++) {
        if (buffer_is_zero_set_accel(a)) {
            fn(a);
            tested++;
        }
    }
    ck_assert_int_ge(tested, 1);
    ck_assert(buffer_is_zero_set_accel(BUFFER_ZERO_ACCEL_AUTO));
}

/*
 * Note: inner loops test with if + ck_abort_msg(), because every passing
 * ck_assert() costs a write to Check's result pipe.
 */

/*
 * All lengths 0..MAX_LEN at all alignments 0..63: an all-zero buffer, then
 * a single non-zero byte at every position.
 */
static void check_small(BufferZeroAccel accel)
{
    /* 64-byte aligned backing store */
    unsigned char *area = g_aligned_alloc(1, AREA, MAX_ALIGN);

    for (size_t align = 0; align < MAX_ALIGN; align++) {
        unsigned char *buf = area + align;

        for (size_t len = 0; len <= MAX_LEN; len++) {
            memset(area, 0xff, AREA);
            memset(buf, 0, len);
            if (!buffer_is_zero(buf, len)) {
                ck_abort_msg("accel %d align %zu len %zu: zero buffer not "
                             "zero", accel, align, len);
            }
            for (size_t pos = 0; pos < len; pos++) {
                buf[pos] = 1 << (pos % 8);
                if (buffer_is_zero(buf, len)) {
                    ck_abort_msg("accel %d align %zu len %zu: byte %zu missed",
                                 accel, align, len, pos);
                }
                buf[pos] = 0;
            }
        }
    }
    g_aligned_free(area);
}

START_TEST(test_single_byte_all_lengths)
{
    for_each_accel(check_small);
}
END_TEST

/* Random sparse contents compared with the naive loop. */
static void check_random(BufferZeroAccel accel)
{
    unsigned char *area = g_aligned_alloc(1, AREA, MAX_ALIGN);
    GRand *rand = g_rand_new_with_seed(0xb10cd + accel);

    for (int iter = 0; iter < 20000; iter++) {
        size_t align = g_rand_int_range(rand, 0, MAX_ALIGN);
        size_t len = g_rand_int_range(rand, 0, MAX_LEN + 1);
        unsigned char *buf = area + align;
        int nset = g_rand_int_range(rand, 0, 3);

        memset(area, 0xff, AREA);
        memset(buf, 0, len);
        for (int i = 0; i < nset && len; i++) {
            buf[g_rand_int_range(rand, 0, len)] =
                g_rand_int_range(rand, 0, 256);
        }
        if (buffer_is_zero(buf, len) != naive_is_zero(buf, len)) {
            ck_abort_msg("accel %d align %zu len %zu", accel, align, len);
        }
    }
    g_rand_free(rand);
    g_aligned_free(area);
}

START_TEST(test_random)
{
    for_each_accel(check_random);
}
END_TEST

/* Big buffers: 4 MiB and odd sizes, a non-zero byte at chosen places. */
static void check_big(BufferZeroAccel accel)
{
    const size_t size = 4 * MiB + 4096;
    unsigned char *area = g_malloc0(size);
    static const size_t lens[] = {
        4 * MiB, 4 * MiB - 1, 64 * KiB, 65 * KiB + 7, 1 * MiB + 33,
    };
    static const size_t offs[] = { 0, 1, 31, 4095 };

    for (size_t o = 0; o < ARRAY_SIZE(offs); o++) {
        for (size_t l = 0; l < ARRAY_SIZE(lens); l++) {
            unsigned char *buf = area + offs[o];
            size_t len = lens[l];
            size_t positions[] = {
                0, 1, 63, 64, 127, 128, 129, len / 3, len / 2 + 1,
                len - 129, len - 128, len - 65, len - 64, len - 33,
                len - 32, len - 2, len - 1,
            };

            ck_assert(buffer_is_zero(buf, len));
            for (size_t i = 0; i < ARRAY_SIZE(positions); i++) {
                buf[positions[i]] = 0x80;
                ck_assert_msg(!buffer_is_zero(buf, len),
                              "accel %d off %zu len %zu pos %zu", accel,
                              offs[o], len, positions[i]);
                buf[positions[i]] = 0;
            }
            ck_assert(buffer_is_zero(buf, len));
        }
    }
    g_free(area);
}

START_TEST(test_big)
{
    for_each_accel(check_big);
}
END_TEST

START_TEST(test_accel_selection)
{
    /* The portable implementation always exists; out-of-range is refused. */
    ck_assert(buffer_is_zero_set_accel(BUFFER_ZERO_ACCEL_INT));
    ck_assert(!buffer_is_zero_set_accel(BUFFER_ZERO_ACCEL__MAX));
    ck_assert(buffer_is_zero_set_accel(BUFFER_ZERO_ACCEL_AUTO));
#if defined(__x86_64__)
    /* SSE2 is part of x86_64 */
    ck_assert(buffer_is_zero_set_accel(BUFFER_ZERO_ACCEL_SSE2));
#endif
    ck_assert(buffer_is_zero("", 0));
    ck_assert(buffer_is_zero(NULL, 0));
}
END_TEST

static Suite *bufferiszero_suite(void)
{
    Suite *s = suite_create("bufferiszero");
    TCase *tc = tcase_create("core");

    /* ASan builds are several times slower */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_accel_selection);
    tcase_add_test(tc, test_single_byte_all_lengths);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_big);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bufferiszero_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
