/*
 * qcow2 check and repair (block/qcow2-check.c) on deliberately broken
 * images: a valid image is written through the driver, then bytes of its
 * metadata are changed in the file.  Each test asserts the counts the
 * check reports, that -r leaks / -r all repair what they should, that a
 * second check of the repaired image is clean, and the data is intact.
 * When qemu-img is installed it is the oracle: its check must report the
 * same counts on the broken image and find the repaired image clean.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include <check.h>
#include <sys/wait.h>

#define CS 65536

static char *tmpdir;
static bool have_qemu;

static void setup(void)
{
    g_autofree char *qi = g_find_program_in_path("qemu-img");

    qemu_init_main_loop();
    bdrv_init();
    have_qemu = qi != NULL;
    tmpdir = g_dir_make_tmp("test-qcow2-check-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
}

static void teardown(void)
{
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(tmpdir, name, NULL);

        unlink(p);
    }
    if (d) {
        g_dir_close(d);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    ck_assert_ptr_null(bdrv_next_node(NULL));
}

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* image of 1 MiB, 64k clusters: data written at 0 (2 clusters), 512k */
static char *make_image(const char *name)
{
    char *path = tpath(name);
    g_autoptr(json_t) opts = json_pack("{s:i}", "size", 1 * MiB);
    Error *err = NULL;
    BlockBackend *blk;
    uint8_t *buf = g_malloc(2 * CS);

    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, path, opts, &err), 0);
    blk = blk_new_open(path, "qcow2", NULL, BDRV_O_RDWR, &err);
    ck_assert_ptr_nonnull(blk);
    memset(buf, 0x11, 2 * CS);
    ck_assert_int_eq(blk_pwrite(blk, 0, 2 * CS, buf, 0), 0);
    memset(buf, 0x22, CS);
    ck_assert_int_eq(blk_pwrite(blk, 512 * KiB, CS, buf, 0), 0);
    blk_unref(blk);
    g_free(buf);
    return path;
}

static void file_rw(const char *path, uint64_t off, void *buf, size_t len,
                    bool write)
{
    int fd = open(path, O_RDWR);

    ck_assert_int_ge(fd, 0);
    if (write) {
        ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
    } else {
        ck_assert_int_eq(pread(fd, buf, len, off), (ssize_t)len);
    }
    close(fd);
}

static uint64_t rd64(const char *path, uint64_t off)
{
    uint8_t b[8];

    file_rw(path, off, b, 8, false);
    return q2_ld64(b);
}

static void wr64(const char *path, uint64_t off, uint64_t v)
{
    uint8_t b[8];

    q2_st64(b, v);
    file_rw(path, off, b, 8, true);
}

static void wr16(const char *path, uint64_t off, uint16_t v)
{
    uint8_t b[2];

    q2_st16(b, v);
    file_rw(path, off, b, 2, true);
}

static uint64_t refblock0(const char *path)
{
    return rd64(path, rd64(path, QCOW2_HDR_REFTABLE_OFFSET));
}

static uint64_t l2_table0(const char *path)
{
    return rd64(path, rd64(path, QCOW2_HDR_L1_OFFSET)) & L1E_OFFSET_MASK;
}

/* host offset of the data cluster for guest cluster gc */
static uint64_t data_cluster(const char *path, int gc)
{
    return rd64(path, l2_table0(path) + 8 * gc) & L2E_OFFSET_MASK;
}

typedef struct CheckCo {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    int ret;
} CheckCo;

static void coroutine_fn check_entry(void *opaque)
{
    CheckCo *cc = opaque;

    cc->ret = qcow2_co_check(cc->bs, cc->res, cc->fix);
}

/* check (and with fix repair) the image; returns the driver's result */
static int do_check(const char *path, BdrvCheckMode fix,
                    BdrvCheckResult *res)
{
    g_autoptr(json_t) opts = json_pack("{s:b}", "x-check", 1);
    Error *err = NULL;
    BlockBackend *blk = blk_new_open(path, "qcow2", fix ? opts : NULL,
                                     fix ? BDRV_O_RDWR : 0, &err);
    CheckCo cc;

    if (!blk) {
        error_report_err(err);
    }
    ck_assert_ptr_nonnull(blk);
    cc = (CheckCo) { blk_bs(blk), res, fix, -EINPROGRESS };
    qemu_co_run_sync(check_entry, &cc);
    blk_unref(blk);
    return cc.ret;
}

static void assert_clean(const char *path)
{
    BdrvCheckResult r;

    ck_assert_int_eq(do_check(path, 0, &r), 0);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.leaks, 0);
    ck_assert_int_eq(r.check_errors, 0);
}

/* qemu-img check --output=json agrees with our counts */
static void qemu_agrees(const char *path, const BdrvCheckResult *r)
{
    g_autofree char *cmd = NULL, *out = NULL;
    g_autoptr(json_t) j = NULL;
    json_error_t jerr;
    int status;

    if (!have_qemu) {
        return;
    }
    cmd = g_strdup_printf("qemu-img check --output=json '%s'", path);
    ck_assert(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    j = json_loads(out, 0, &jerr);
    ck_assert_msg(j != NULL, "qemu-img output: %s", out);
#define FIELD(k) json_integer_value(json_object_get(j, k))
    ck_assert_int_eq(FIELD("corruptions"), r->corruptions);
    ck_assert_int_eq(FIELD("leaks"), r->leaks);
    ck_assert_int_eq(FIELD("check-errors"), r->check_errors);
    ck_assert_int_eq(FIELD("allocated-clusters"), r->allocated_clusters);
    ck_assert_int_eq(FIELD("fragmented-clusters"), r->fragmented_clusters);
    ck_assert_int_eq(FIELD("compressed-clusters"), r->compressed_clusters);
    ck_assert_int_eq(FIELD("total-clusters"), r->total_clusters);
    ck_assert_int_eq(FIELD("image-end-offset"), r->image_end_offset);
#undef FIELD
}

static void verify_data(const char *path)
{
    Error *err = NULL;
    BlockBackend *blk = blk_new_open(path, "qcow2", NULL, 0, &err);
    uint8_t *buf = g_malloc(CS), *exp = g_malloc(CS);

    ck_assert_ptr_nonnull(blk);
    memset(exp, 0x11, CS);
    ck_assert_int_eq(blk_pread(blk, CS, CS, buf, 0), 0);
    ck_assert(!memcmp(buf, exp, CS));
    memset(exp, 0x22, CS);
    ck_assert_int_eq(blk_pread(blk, 512 * KiB, CS, buf, 0), 0);
    ck_assert(!memcmp(buf, exp, CS));
    blk_unref(blk);
    g_free(buf);
    g_free(exp);
}

START_TEST(test_clean_image)
{
    g_autofree char *img = make_image("clean.qcow2");
    BdrvCheckResult r;

    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.corruptions + r.leaks + r.check_errors, 0);
    ck_assert_int_eq(r.total_clusters, 16);
    ck_assert_int_eq(r.allocated_clusters, 3);
    /* header, reftable, refblock, L1, L2, 3 data clusters */
    ck_assert_int_eq(r.image_end_offset, 8 * CS);
    qemu_agrees(img, &r);
}
END_TEST

START_TEST(test_refcount_too_low)
{
    g_autofree char *img = make_image("low.qcow2");
    uint64_t data = data_cluster(img, 0);
    BdrvCheckResult r;

    wr16(img, refblock0(img) + 2 * (data / CS), 0);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    /* "ERROR cluster N refcount=0 reference=1" + OFLAG_COPIED */
    ck_assert_int_eq(r.corruptions, 2);
    ck_assert_int_eq(r.leaks, 0);
    qemu_agrees(img, &r);

    /* -r leaks can't fix a refcount of 0: the structure must be rebuilt */
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS, &r), -EIO);
    ck_assert_int_eq(r.check_errors, 1);

    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &r), 0);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.corruptions_fixed, 1);
    assert_clean(img);
    verify_data(img);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    qemu_agrees(img, &r);
}
END_TEST

START_TEST(test_refcount_low_not_zero)
{
    g_autofree char *img = make_image("low2.qcow2");
    uint64_t l2 = l2_table0(img), data = data_cluster(img, 1);
    BdrvCheckResult r;

    /* guest cluster 2 shares cluster 1's host cluster: refcount 1 < 2 */
    wr64(img, l2 + 16, data | QCOW_OFLAG_COPIED);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_ge(r.corruptions, 1);
    qemu_agrees(img, &r);

    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &r), 0);
    ck_assert_int_ge(r.corruptions_fixed, 1);
    assert_clean(img);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    qemu_agrees(img, &r);
    /* the shared cluster is no longer marked COPIED */
    ck_assert_int_eq(rd64(img, l2 + 16), data);
    ck_assert_int_eq(rd64(img, l2 + 8), data);
}
END_TEST

START_TEST(test_leak)
{
    g_autofree char *img = make_image("leak.qcow2");
    BdrvCheckResult r;
    uint8_t zero[CS] = { 0 };
    struct stat st;

    /* an unused cluster at the end of the file with refcount 1 */
    ck_assert_int_eq(stat(img, &st), 0);
    file_rw(img, st.st_size, zero, CS, true);
    wr16(img, refblock0(img) + 2 * (st.st_size / CS), 1);

    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.leaks, 1);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.image_end_offset, st.st_size + CS);
    qemu_agrees(img, &r);

    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS, &r), 0);
    ck_assert_int_eq(r.leaks_fixed, 1);
    ck_assert_int_eq(r.leaks, 0);
    assert_clean(img);
    verify_data(img);
}
END_TEST

START_TEST(test_leak_of_used_cluster)
{
    g_autofree char *img = make_image("leak2.qcow2");
    uint64_t data = data_cluster(img, 0);
    BdrvCheckResult r;

    /* refcount 2 on a cluster referenced once: leak + COPIED mismatch */
    wr16(img, refblock0(img) + 2 * (data / CS), 2);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.leaks, 1);
    ck_assert_int_eq(r.corruptions, 1);
    qemu_agrees(img, &r);
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS, &r), 0);
    ck_assert_int_eq(r.leaks_fixed, 1);
    assert_clean(img);
}
END_TEST

START_TEST(test_l2_entry_beyond_eof)
{
    g_autofree char *img = make_image("eof.qcow2");
    uint64_t l2 = l2_table0(img);
    BdrvCheckResult r;

    wr64(img, l2 + 8 * 10, (64 * MiB) | QCOW_OFLAG_COPIED);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_ge(r.corruptions, 1);
    ck_assert_int_eq(r.allocated_clusters, 4);
    qemu_agrees(img, &r);
    /*
     * As QEMU: only the COPIED flag can be repaired; the reference past
     * the end of the file stays a corruption (nothing safe to point to)
     */
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &r), 0);
    ck_assert_int_eq(r.corruptions_fixed, 1);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.corruptions, 1);
    ck_assert_int_eq(r.leaks, 0);
    qemu_agrees(img, &r);
    verify_data(img);
}
END_TEST

START_TEST(test_refblock_missing)
{
    g_autofree char *img = make_image("norb.qcow2");
    uint64_t rt = rd64(img, QCOW2_HDR_REFTABLE_OFFSET);
    BdrvCheckResult r;

    wr64(img, rt, 0);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    /* every used cluster: refcount=0 reference=1, + COPIED flags */
    ck_assert_int_ge(r.corruptions, 8);
    qemu_agrees(img, &r);
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS, &r), -EIO);
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &r), 0);
    ck_assert_int_eq(r.corruptions, 0);
    assert_clean(img);
    verify_data(img);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    qemu_agrees(img, &r);
}
END_TEST

START_TEST(test_misaligned_l2_offset)
{
    g_autofree char *img = make_image("mis.qcow2");
    uint64_t l1 = rd64(img, QCOW2_HDR_L1_OFFSET);
    BdrvCheckResult r;

    wr64(img, l1, rd64(img, l1) + 512);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_ge(r.corruptions, 1);
    qemu_agrees(img, &r);
}
END_TEST

/* crash leftovers: clusters allocated (refcounts on disk) never linked */
typedef struct AllocCo {
    BlockDriverState *bs;
    int64_t ret;
} AllocCo;

static void coroutine_fn alloc_entry(void *opaque)
{
    AllocCo *a = opaque;
    BDRVQcow2State *s = a->bs->opaque;

    qemu_co_mutex_lock(&s->lock);
    a->ret = qcow2_alloc_clusters(a->bs, 3);
    if (a->ret >= 0) {
        int ret = qcow2_cache_flush(a->bs, s->refcount_block_cache);

        a->ret = ret < 0 ? ret : a->ret;
    }
    qemu_co_mutex_unlock(&s->lock);
}

START_TEST(test_crash_leaks_repaired)
{
    g_autofree char *img = make_image("crash.qcow2");
    Error *err = NULL;
    BlockBackend *blk = blk_new_open(img, "qcow2", NULL, BDRV_O_RDWR, &err);
    AllocCo a = { blk_bs(blk), -EINPROGRESS };
    BdrvCheckResult r;
    uint8_t pad[3 * CS] = { 0 };

    qemu_co_run_sync(alloc_entry, &a);
    ck_assert_int_ge(a.ret, 0);
    blk_unref(blk);
    /* the data of the lost write reached the file */
    file_rw(img, a.ret, pad, sizeof(pad), true);

    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.leaks, 3);
    ck_assert_int_eq(r.corruptions, 0);
    qemu_agrees(img, &r);
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS, &r), 0);
    ck_assert_int_eq(r.leaks_fixed, 3);
    assert_clean(img);
    ck_assert_int_eq(do_check(img, 0, &r), 0);
    qemu_agrees(img, &r);
}
END_TEST

START_TEST(test_compressed_and_fragmented)
{
    g_autofree char *img = tpath("comp.qcow2");
    g_autoptr(json_t) opts = json_pack("{s:i}", "size", 4 * MiB);
    Error *err = NULL;
    BlockBackend *blk;
    uint8_t *buf = g_malloc(CS);
    BdrvCheckResult r;
    int i;

    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, img, opts, &err), 0);
    blk = blk_new_open(img, "qcow2", NULL, BDRV_O_RDWR, &err);
    for (i = 0; i < 3; i++) {
        memset(buf, 'a' + i, CS);
        ck_assert_int_eq(blk_pwrite(blk, (int64_t)i * CS, CS, buf,
                                    BDRV_REQ_WRITE_COMPRESSED), 0);
    }
    /* out-of-order allocation: fragmented */
    memset(buf, 0x33, CS);
    ck_assert_int_eq(blk_pwrite(blk, 3 * MiB, CS, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 1 * MiB, CS, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 2 * MiB, CS, buf, 0), 0);
    blk_unref(blk);
    g_free(buf);

    ck_assert_int_eq(do_check(img, 0, &r), 0);
    ck_assert_int_eq(r.corruptions + r.leaks, 0);
    ck_assert_int_eq(r.allocated_clusters, 6);
    ck_assert_int_eq(r.compressed_clusters, 3);
    ck_assert_int_ge(r.fragmented_clusters, 4);
    qemu_agrees(img, &r);
}
END_TEST

START_TEST(test_corrupt_bit_cleared)
{
    g_autofree char *img = make_image("cbit.qcow2");
    uint64_t data = data_cluster(img, 0);
    BdrvCheckResult r;
    Error *err = NULL;
    BlockBackend *blk;

    wr16(img, refblock0(img) + 2 * (data / CS), 0);
    wr64(img, QCOW2_HDR_INCOMPAT, QCOW2_INCOMPAT_CORRUPT);
    blk = blk_new_open(img, "qcow2", NULL, BDRV_O_RDWR, &err);
    ck_assert_ptr_null(blk);
    error_free(err);
    ck_assert_int_eq(do_check(img, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &r), 0);
    ck_assert_int_eq(rd64(img, QCOW2_HDR_INCOMPAT), 0);
    err = NULL;
    blk = blk_new_open(img, "qcow2", NULL, BDRV_O_RDWR, &err);
    ck_assert_ptr_nonnull(blk);
    blk_unref(blk);
}
END_TEST

static Suite *qcow2_check_suite(void)
{
    Suite *s = suite_create("qcow2-check");
    TCase *tc = tcase_create("check");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_clean_image);
    tcase_add_test(tc, test_refcount_too_low);
    tcase_add_test(tc, test_refcount_low_not_zero);
    tcase_add_test(tc, test_leak);
    tcase_add_test(tc, test_leak_of_used_cluster);
    tcase_add_test(tc, test_l2_entry_beyond_eof);
    tcase_add_test(tc, test_refblock_missing);
    tcase_add_test(tc, test_misaligned_l2_offset);
    tcase_add_test(tc, test_crash_leaks_repaired);
    tcase_add_test(tc, test_compressed_and_fragmented);
    tcase_add_test(tc, test_corrupt_bit_cleared);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_check_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
