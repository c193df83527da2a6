/*
 * Discard and write zeroes on qcow2 v2 (compat=0.10) images with a backing
 * file.  v2 has no zero flag: an unmapped cluster reads from the backing
 * file, so a discard must keep the cluster (QEMU answers ENOTSUP, which the
 * block layer treats as "nothing done"), and write zeroes must write real
 * zeroes (ENOTSUP there makes the block layer write a zero buffer, unless
 * the caller forbids the fallback).  The images must pass `qemu-img check`
 * and read the same in QEMU when qemu-img is installed.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "test-util.h"
#include <check.h>

#define IMG_SIZE (256 * KiB)
#define CS 4096

static char *tmpdir;
static bool have_qemu_img;

static void setup(void)
{
    g_autofree char *qi = g_find_program_in_path("qemu-img");

    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_qcow2);
    have_qemu_img = qi != NULL;
    tmpdir = g_dir_make_tmp("test-qcow2-v2-backing-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
}

static void teardown(void)
{
    test_rm_dir(tmpdir);
    g_free(tmpdir);
    ck_assert_ptr_null(bdrv_next_node(NULL));
}

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void create(const char *path, const char *json_opts)
{
    g_autoptr(json_t) opts = json_loads(json_opts, 0, NULL);
    Error *err = NULL;
    int ret;

    ck_assert_ptr_nonnull(opts);
    ret = bdrv_create(&bdrv_qcow2, path, opts, &err);
    if (err) {
        error_report_err(err);
    }
    ck_assert_int_eq(ret, 0);
}

static BlockBackend *open_img(const char *path, int flags)
{
    Error *err = NULL;
    BlockBackend *blk = blk_new_open(path, "qcow2", NULL, flags, &err);

    if (!blk) {
        error_report_err(err);
    }
    ck_assert_ptr_nonnull(blk);
    return blk;
}

static void verify(BlockBackend *blk, const uint8_t *ref)
{
    g_autofree uint8_t *buf = g_malloc(IMG_SIZE);
    int64_t i;

    ck_assert_int_eq(blk_pread(blk, 0, IMG_SIZE, buf, 0), 0);
    for (i = 0; i < IMG_SIZE && buf[i] == ref[i]; i++) {
        /* find the first difference */
    }
    ck_assert_msg(i == IMG_SIZE, "image content differs at %" PRId64
                  " (0x%02x, expected 0x%02x)", i, i < IMG_SIZE ? buf[i] : 0,
                  i < IMG_SIZE ? ref[i] : 0);
}

/* qemu-img check is clean and QEMU reads what ref holds */
static void qemu_agrees(const char *img, const uint8_t *ref)
{
    g_autofree char *raw = tpath("ref.raw");
    g_autofree char *out = NULL;
    int st;

    if (!have_qemu_img) {
        return;
    }
    st = test_run_cmd(&out, "qemu-img check -f qcow2 '%s'", img);
    ck_assert_msg(st == 0, "qemu-img check exit %d: %s", st, out);
    ck_assert(g_file_set_contents(raw, (const char *)ref, IMG_SIZE, NULL));
    st = test_run_cmd(&out, "qemu-img compare -f qcow2 -F raw '%s' '%s'",
                      img, raw);
    ck_assert_msg(st == 0, "qemu-img compare exit %d: %s", st, out);
}

/*
 * base: 0xff everywhere; top (compat as given) on it, with 0x01 written
 * over its first half (the second half stays unallocated).
 */
static BlockBackend *make_chain(const char *compat, uint8_t *ref,
                                char **top_path)
{
    g_autofree char *base = tpath("base.qcow2");
    g_autofree char *opts = g_strdup_printf(
        "{\"backing_file\": \"base.qcow2\", \"backing_fmt\": \"qcow2\", "
        "\"cluster_size\": %d, \"compat\": \"%s\"}", CS, compat);
    BlockBackend *blk;

    *top_path = tpath("top.qcow2");
    create(base, "{\"size\": 262144}");
    blk = open_img(base, BDRV_O_RDWR);
    memset(ref, 0xff, IMG_SIZE);
    ck_assert_int_eq(blk_pwrite(blk, 0, IMG_SIZE, ref, 0), 0);
    blk_unref(blk);

    create(*top_path, opts);
    blk = open_img(*top_path, BDRV_O_RDWR | BDRV_O_UNMAP);
    ck_assert_ptr_nonnull(blk_bs(blk)->backing);
    memset(ref, 0x01, IMG_SIZE / 2);
    ck_assert_int_eq(blk_pwrite(blk, 0, IMG_SIZE / 2, ref, 0), 0);
    return blk;
}

/* A discard keeps the data: v2 cannot mark a cluster as reading zeroes */
START_TEST(test_v2_discard_keeps_data)
{
    g_autofree uint8_t *ref = g_malloc(IMG_SIZE);
    g_autofree char *top = NULL;
    BlockBackend *blk = make_chain("0.10", ref, &top);

    /* whole image, part of a cluster, a cluster-aligned middle range */
    ck_assert_int_eq(blk_pdiscard(blk, 0, IMG_SIZE), 0);
    ck_assert_int_eq(blk_pdiscard(blk, 100, 5000), 0);
    ck_assert_int_eq(blk_pdiscard(blk, 8 * CS, 8 * CS), 0);
    verify(blk, ref);
    blk_unref(blk);

    blk = open_img(top, 0);
    verify(blk, ref);
    blk_unref(blk);
    qemu_agrees(top, ref);
}
END_TEST

/* v3 on the same chain: the discarded clusters read as zeroes */
START_TEST(test_v3_discard_reads_zeroes)
{
    g_autofree uint8_t *ref = g_malloc(IMG_SIZE);
    g_autofree char *top = NULL;
    BlockBackend *blk = make_chain("1.1", ref, &top);

    ck_assert_int_eq(blk_pdiscard(blk, 8 * CS, 48 * CS), 0);
    memset(ref + 8 * CS, 0, 48 * CS);
    verify(blk, ref);
    blk_unref(blk);
    qemu_agrees(top, ref);
}
END_TEST

/* Write zeroes, with and without unmap, over allocated and backing data */
START_TEST(test_v2_write_zeroes)
{
    g_autofree uint8_t *ref = g_malloc(IMG_SIZE);
    g_autofree char *top = NULL;
    BlockBackend *blk = make_chain("0.10", ref, &top);
    int flags = _i ? BDRV_REQ_MAY_UNMAP : 0;

    /* allocated clusters, then across the allocated/unallocated border */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 2 * CS, 4 * CS, flags), 0);
    memset(ref + 2 * CS, 0, 4 * CS);
    ck_assert_int_eq(blk_pwrite_zeroes(blk, IMG_SIZE / 2 - 3 * CS - 100,
                                       8 * CS, flags), 0);
    memset(ref + IMG_SIZE / 2 - 3 * CS - 100, 0, 8 * CS);
    /* unallocated clusters over the backing file's 0xff */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, IMG_SIZE - 8 * CS, 8 * CS,
                                       flags), 0);
    memset(ref + IMG_SIZE - 8 * CS, 0, 8 * CS);
    verify(blk, ref);

    /* no fallback allowed: refused, nothing changes */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 0, 2 * CS,
                                       flags | BDRV_REQ_NO_FALLBACK),
                     -ENOTSUP);
    verify(blk, ref);
    blk_unref(blk);

    blk = open_img(top, 0);
    verify(blk, ref);
    blk_unref(blk);
    qemu_agrees(top, ref);
}
END_TEST

static Suite *qcow2_v2_backing_suite(void)
{
    Suite *s = suite_create("qcow2-v2-backing");
    TCase *tc = tcase_create("qcow2-v2-backing");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_v2_discard_keeps_data);
    tcase_add_test(tc, test_v3_discard_reads_zeroes);
    tcase_add_loop_test(tc, test_v2_write_zeroes, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_v2_backing_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
