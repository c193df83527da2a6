/*
 * Unit tests for the Error API (util/error.c).
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include <check.h>
#include <sys/wait.h>

static bool fail_with(Error **errp, const char *what)
{
    error_setg(errp, "Bitmap '%s' could not be found", what);
    return false;
}

START_TEST(test_setg_and_class)
{
    Error *err = NULL;

    ck_assert(!fail_with(&err, "b0"));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), "Bitmap 'b0' could not be found");
    ck_assert_int_eq(error_get_class(err), ERROR_CLASS_GENERIC_ERROR);
    ck_assert_str_eq(error_class_name(error_get_class(err)), "GenericError");
    error_free(err);
    err = NULL;

    error_set(&err, ERROR_CLASS_DEVICE_NOT_ACTIVE, "Block job '%s' not found", "j");
    ck_assert_str_eq(error_class_name(error_get_class(err)), "DeviceNotActive");
    ck_assert_str_eq(error_get_pretty(err), "Block job 'j' not found");
    error_free(err);
}
END_TEST

START_TEST(test_setg_errno)
{
    Error *err = NULL;

    errno = 1234;
    error_setg_errno(&err, ENOSPC, "Could not write '%s'", "t.img");
    ck_assert_int_eq(errno, 1234);
    ck_assert_str_eq(error_get_pretty(err),
                     "Could not write 't.img': No space left on device");
    error_free(err);
}
END_TEST

START_TEST(test_null_errp_ignored)
{
    ck_assert(!fail_with(NULL, "x"));
}
END_TEST

START_TEST(test_prepend_propagate)
{
    Error *local = NULL, *dst = NULL, *other = NULL;

    fail_with(&local, "b1");
    error_prepend(&local, "Cannot start: ");
    error_propagate(&dst, local);
    ck_assert_str_eq(error_get_pretty(dst),
                     "Cannot start: Bitmap 'b1' could not be found");

    /* First error wins; the second is freed. */
    fail_with(&other, "b2");
    error_propagate(&dst, other);
    ck_assert_str_eq(error_get_pretty(dst),
                     "Cannot start: Bitmap 'b1' could not be found");

    /* NULL destination frees. */
    other = NULL;
    fail_with(&other, "b3");
    error_propagate(NULL, other);

    /* propagate_prepend */
    Error *dst2 = NULL;
    other = NULL;
    fail_with(&other, "b4");
    error_propagate_prepend(&dst2, other, "node '%s': ", "n0");
    ck_assert_str_eq(error_get_pretty(dst2),
                     "node 'n0': Bitmap 'b4' could not be found");
    error_free(dst2);
    error_free_or_abort(&dst);
    ck_assert_ptr_null(dst);
    error_propagate(&dst, NULL);
    ck_assert_ptr_null(dst);
}
END_TEST

static bool guarded(Error **errp)
{
    ERRP_GUARD();

    fail_with(errp, "g");
    if (*errp) {
        error_prepend(errp, "guarded: ");
        return false;
    }
    return true;
}

START_TEST(test_errp_guard)
{
    Error *err = NULL;

    ck_assert(!guarded(&err));
    ck_assert_str_eq(error_get_pretty(err),
                     "guarded: Bitmap 'g' could not be found");
    error_free(err);
    /* NULL errp: ERRP_GUARD substitutes a local and frees it */
    ck_assert(!guarded(NULL));
}
END_TEST

START_TEST(test_copy_and_hint)
{
    Error *err = NULL, *copy;

    fail_with(&err, "c");
    error_append_hint(&err, "try %s\n", "harder");
    copy = error_copy(err);
    ck_assert_str_eq(error_get_pretty(copy), error_get_pretty(err));
    error_free(err);
    error_free(copy);
}
END_TEST

START_TEST(test_error_abort_aborts)
{
    fail_with(&error_abort, "a");
}
END_TEST

START_TEST(test_error_fatal_exits)
{
    fail_with(&error_fatal, "f");
}
END_TEST

START_TEST(test_guard_fatal_exits)
{
    guarded(&error_fatal);
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_setg_and_class);
    tcase_add_test(tc, test_setg_errno);
    tcase_add_test(tc, test_null_errp_ignored);
    tcase_add_test(tc, test_prepend_propagate);
    tcase_add_test(tc, test_errp_guard);
    tcase_add_test(tc, test_copy_and_hint);
    tcase_add_test_raise_signal(tc, test_error_abort_aborts, SIGABRT);
    tcase_add_exit_test(tc, test_error_fatal_exits, 1);
    tcase_add_exit_test(tc, test_guard_fatal_exits, 1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(error_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
