/*
 * Unit tests for util/ratelimit.c, with an invented clock (all times are
 * passed to ratelimit_calculate_delay_at()), so nothing sleeps.
 */
#include "qemu/osdep.h"
#include "qemu/ratelimit.h"
#include <check.h>

#define SLICE (INT64_C(100) * SCALE_MS)
#define T0 (INT64_C(5) * NANOSECONDS_PER_SECOND)

START_TEST(test_unlimited)
{
    RateLimit rl;

    ratelimit_init(&rl);
    ck_assert(!ratelimit_enabled(&rl));
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, UINT64_MAX / 2, T0), 0);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, UINT64_MAX / 2, T0), 0);

    ratelimit_set_speed(&rl, 1 * MiB, SLICE);
    ck_assert(ratelimit_enabled(&rl));
    ratelimit_set_speed(&rl, 0, SLICE);
    ck_assert(!ratelimit_enabled(&rl));
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 100 * GiB, T0), 0);
    ratelimit_destroy(&rl);
}
END_TEST

START_TEST(test_quota)
{
    RateLimit rl;
    uint64_t quota = (uint64_t)MiB * SLICE / NANOSECONDS_PER_SECOND;

    ratelimit_init(&rl);
    ratelimit_set_speed(&rl, 1 * MiB, SLICE);
    ck_assert_uint_eq(rl.slice_quota, quota);       /* 104857 bytes */
    ck_assert_uint_eq(quota, 104857);

    /* within the slice's quota: no delay */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 50000, T0), 0);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 50000, T0 + 1000), 0);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota - 100001,
                                                  T0 + 2000), 0);

    /*
     * Exceeding it: the slice is stretched to dispatched / quota slices
     * and the caller waits until its end.
     */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 10001, T0 + 3000),
                     (int64_t)((quota + 10000) * (uint64_t)SLICE / quota) -
                     3000);
    /* Still inside the stretched slice: more data means a longer wait. */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota, T0 + 4000),
                     (int64_t)((2 * quota + 10000) * (uint64_t)SLICE / quota) -
                     4000);

    /* After the stretched slice: a fresh slice with a fresh quota. */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota - 1,
                                                  T0 + 10 * SLICE), 0);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 1, T0 + 10 * SLICE + 7),
                     SLICE - 7);
    ratelimit_destroy(&rl);
}
END_TEST

START_TEST(test_big_chunk)
{
    RateLimit rl;
    uint64_t quota;

    ratelimit_init(&rl);
    ratelimit_set_speed(&rl, 10 * MiB, SLICE);
    quota = rl.slice_quota;

    /* A chunk of 10 quotas goes through, then costs 10 slices. */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 10 * quota, T0),
                     10 * SLICE);
    /* Later, in fresh slices: one quota costs one slice. */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota,
                                                  T0 + 20 * SLICE),
                     SLICE);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota,
                                                  T0 + 40 * SLICE),
                     SLICE);
    ratelimit_destroy(&rl);
}
END_TEST

START_TEST(test_elapsed_time_counts)
{
    RateLimit rl;
    uint64_t quota;

    ratelimit_init(&rl);
    ratelimit_set_speed(&rl, 4 * MiB, SLICE);
    quota = rl.slice_quota;

    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 1, T0), 0);
    /* 60 ms into the slice the quota runs out: 40 ms left to wait */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, quota - 1,
                                                  T0 + 60 * SCALE_MS),
                     40 * SCALE_MS);
    ratelimit_destroy(&rl);
}
END_TEST

/* Simulate a job copying 64 KiB chunks and sleeping as told. */
static int64_t simulate(uint64_t speed, uint64_t chunk, uint64_t total)
{
    RateLimit rl;
    int64_t now = T0;

    ratelimit_init(&rl);
    ratelimit_set_speed(&rl, speed, SLICE);
    for (uint64_t sent = 0; sent < total; sent += chunk) {
        int64_t delay = ratelimit_calculate_delay_at(&rl, chunk, now);

        ck_assert_int_ge(delay, 0);
        now += delay + 1000;        /* each chunk also takes 1 us */
    }
    ratelimit_destroy(&rl);
    return now - T0;
}

START_TEST(test_long_run_rate)
{
    /* 100 MiB at 10 MiB/s: about 10 s, within one slice */
    int64_t t = simulate(10 * MiB, 64 * KiB, 100 * MiB);

    ck_assert_int_ge(t, 10 * NANOSECONDS_PER_SECOND - SLICE);
    ck_assert_int_le(t, 10 * NANOSECONDS_PER_SECOND + SLICE);

    /* chunks larger than the quota: same rate */
    t = simulate(1 * MiB, 4 * MiB, 40 * MiB);
    ck_assert_int_ge(t, 40 * NANOSECONDS_PER_SECOND - 2 * SLICE);
    ck_assert_int_le(t, 40 * NANOSECONDS_PER_SECOND + 5 * SLICE);
}
END_TEST

START_TEST(test_quota_limits)
{
    RateLimit rl;

    ratelimit_init(&rl);
    /* at least one byte per slice */
    ratelimit_set_speed(&rl, 1, SLICE);
    ck_assert_uint_eq(rl.slice_quota, 1);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 1, T0), SLICE);
    /* huge speeds do not overflow */
    ratelimit_set_speed(&rl, UINT64_MAX, 10 * NANOSECONDS_PER_SECOND);
    ck_assert_uint_eq(rl.slice_quota, UINT64_MAX);
    ratelimit_set_speed(&rl, UINT64_MAX / 2, SLICE);
    ck_assert_uint_eq(rl.slice_quota, UINT64_MAX / 20);
    /* a new speed applies to the running slice */
    ratelimit_set_speed(&rl, 1 * MiB, SLICE);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 1000,
                                                  T0 + 100 * SLICE), 0);
    ratelimit_set_speed(&rl, 10000, SLICE);         /* quota 1000 */
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 1000,
                                                  T0 + 100 * SLICE),
                     2 * SLICE);
    ratelimit_destroy(&rl);
}
END_TEST

typedef struct ThreadArg {
    RateLimit *rl;
    int iterations;
} ThreadArg;

static gpointer hammer(gpointer opaque)
{
    ThreadArg *arg = opaque;

    for (int i = 0; i < arg->iterations; i++) {
        ratelimit_calculate_delay_at(arg->rl, 1, T0);
    }
    return NULL;
}

START_TEST(test_threads)
{
    RateLimit rl;
    ThreadArg arg = { .rl = &rl, .iterations = 100000 };
    GThread *threads[4];

    ratelimit_init(&rl);
    ratelimit_set_speed(&rl, UINT64_MAX / 2, SLICE);
    ck_assert_int_eq(ratelimit_calculate_delay_at(&rl, 0, T0), 0);
    for (size_t i = 0; i < ARRAY_SIZE(threads); i++) {
        threads[i] = g_thread_new("hammer", hammer, &arg);
    }
    for (size_t i = 0; i < ARRAY_SIZE(threads); i++) {
        g_thread_join(threads[i]);
    }
    /* no update was lost */
    ck_assert_uint_eq(rl.dispatched, 4 * 100000);
    ratelimit_destroy(&rl);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_unlimited);
    tcase_add_test(tc, test_quota);
    tcase_add_test(tc, test_big_chunk);
    tcase_add_test(tc, test_elapsed_time_counts);
    tcase_add_test(tc, test_long_run_rate);
    tcase_add_test(tc, test_quota_limits);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ratelimit_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
