/*
 * qcow2 under metadata write errors and metadata corruption (issue 12).
 *
 * Errors: blkdebug fails the I/O after a metadata event (the L1 entry of
 * a new L2 table, which is written at the next L2 cache flush; an L2
 * table; a refcount block), once or for good.  With the write cache off
 * (cache=writethrough) the write itself must fail; with it on, the flush.
 * A failed flush keeps the tables dirty: a later flush writes them and
 * the data reads back; nothing may claim success before that.
 *
 * Corruption: damaged refcounts that allocation runs into (an unaligned
 * refcount block offset, an emptied refcount block that makes the header
 * look free) fail the request with EIO, set the corrupt bit on disk, make
 * the node refuse later requests (ENOMEDIUM, as QEMU's unusable node) and
 * a read-write open refuse the image until check -r repairs it.  A
 * compressed cluster that does not decompress is damaged data, not
 * metadata: the read fails, the image is not marked corrupt.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "test-util.h"
#include <check.h>

static char *tmpdir;

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_qcow2);
    tmpdir = g_dir_make_tmp("test-qcow2-err-XXXXXX", NULL);
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

static void create(const char *path, int64_t size, int64_t cluster_size,
                   int refcount_bits)
{
    g_autoptr(json_t) opts = json_pack("{s:I, s:I, s:i}", "size",
                                       (json_int_t)size, "cluster_size",
                                       (json_int_t)cluster_size,
                                       "refcount_bits", refcount_bits);
    Error *err = NULL;
    int ret = bdrv_create(&bdrv_qcow2, path, opts, &err);

    if (err) {
        error_report_err(err);
    }
    ck_assert_int_eq(ret, 0);
}

/* qcow2 over blkdebug (rule: @event fails the next I/O with @err) */
static BlockBackend *open_blkdebug(const char *path, const char *event,
                                   int err, bool once)
{
    g_autofree char *s = g_strdup_printf(
        "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"blkdebug\","
        "\"inject-error\":[{\"event\":\"%s\",\"errno\":\"%d\","
        "\"once\":%s}],\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
        event, err, once ? "true" : "false", path);
    g_autoptr(json_t) o = json_loads(s, 0, NULL);
    Error *e = NULL;
    BlockBackend *blk;

    ck_assert_ptr_nonnull(o);
    blk = blk_new_open(NULL, NULL, o, BDRV_O_RDWR, &e);
    if (!blk) {
        error_report_err(e);
    }
    ck_assert_ptr_nonnull(blk);
    return blk;
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

static BDRVQcow2State *qcow2_state(BlockBackend *blk)
{
    return blk_bs(blk)->opaque;
}

static uint64_t peek64(const char *path, uint64_t off)
{
    uint64_t be;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &be, 8, off), 8);
    close(fd);
    return GUINT64_FROM_BE(be);
}

static void poke64(const char *path, uint64_t off, uint64_t v)
{
    uint64_t be = GUINT64_TO_BE(v);
    int fd = open(path, O_RDWR);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, &be, 8, off), 8);
    close(fd);
}

static bool corrupt_bit(const char *path)
{
    return peek64(path, QCOW2_HDR_INCOMPAT) & QCOW2_INCOMPAT_CORRUPT;
}

/* 128 KiB of @pattern at 0 must read back, in a fresh open */
static void expect_data(const char *path, int pattern, bool want)
{
    g_autofree uint8_t *buf = g_malloc(128 * KiB);
    g_autofree uint8_t *ref = g_malloc(128 * KiB);
    BlockBackend *blk = open_img(path, 0);

    memset(ref, pattern, 128 * KiB);
    ck_assert_int_eq(blk_pread(blk, 0, 128 * KiB, buf, 0), 0);
    ck_assert_int_eq(!memcmp(buf, ref, 128 * KiB), want);
    blk_unref(blk);
}

/* ---- metadata write errors ---- */

static const char *const error_events[] = {
    "l1_update", "l2_update", "l2_alloc_write", "refblock_update_part",
    "refblock_load", "refblock_alloc", "cluster_alloc", "write_aio",
};

/*
 * cache=writethrough: the write fails whenever an error hit its metadata
 * (the deferred L1 entry included: the write's own flush writes it)
 */
START_TEST(test_writethrough_fails)
{
    const char *event = error_events[_i / 2];
    bool once = _i % 2;
    g_autofree char *img = tpath("wt.qcow2");
    g_autofree uint8_t *buf = g_malloc(128 * KiB);
    BlockBackend *blk;

    create(img, 1 * GiB, 1024, 16);
    blk = open_blkdebug(img, event, EIO, once);
    blk_set_enable_write_cache(blk, false);
    memset(buf, 0x5a, 128 * KiB);
    ck_assert_msg(blk_pwrite(blk, 0, 128 * KiB, buf, 0) == -EIO,
                  "event %s once %d: the write succeeded", event, once);
    blk_unref(blk);
    ck_assert(!corrupt_bit(img));
}
END_TEST

/*
 * cache=writeback: the error surfaces at the flush at the latest; the
 * dirty metadata stays cached and a later flush (once=on) writes it, so
 * the data is there.  Nothing that failed may be forgotten in between.
 */
START_TEST(test_writeback_flush_retries)
{
    const char *event = error_events[_i];
    g_autofree char *img = tpath("wb.qcow2");
    g_autofree uint8_t *buf = g_malloc(128 * KiB);
    BlockBackend *blk;
    int ret;

    create(img, 1 * GiB, 1024, 16);
    blk = open_blkdebug(img, event, EIO, true);
    memset(buf, 0x5a, 128 * KiB);
    ret = blk_pwrite(blk, 0, 128 * KiB, buf, 0);
    if (ret == 0) {
        ck_assert_msg(blk_flush(blk) == -EIO,
                      "event %s: write and flush succeeded", event);
        /* the rule is spent: this flush writes what the first one left */
        ck_assert_int_eq(blk_flush(blk), 0);
        blk_unref(blk);
        expect_data(img, 0x5a, true);
    } else {
        ck_assert_int_eq(ret, -EIO);
        /* a failed data write leaves the old contents */
        ck_assert_int_eq(blk_flush(blk), 0);
        blk_unref(blk);
        expect_data(img, 0, true);
    }
    ck_assert(!corrupt_bit(img));
}
END_TEST

/* ---- corruption ---- */

/*
 * An allocation that reaches a refcount block whose offset is unaligned
 * (QEMU's iotest 305 with the layout made explicit): EIO, corrupt bit,
 * later requests ENOMEDIUM, read-write open refused
 */
START_TEST(test_unaligned_refblock)
{
    g_autofree char *img = tpath("rb.qcow2");
    g_autofree uint8_t *buf = g_malloc0(64 * KiB);
    g_autofree char *msg = NULL;
    uint64_t rt;
    BlockBackend *blk;
    Error *err = NULL;
    int i;

    /* 1 KiB clusters, 16-bit refcounts: a block covers 512 clusters */
    create(img, 1 * MiB, 1024, 16);
    blk = open_img(img, BDRV_O_RDWR);
    /* one cluster at a time: the first block fills up completely */
    for (i = 0; i < 600; i++) {
        ck_assert_int_eq(blk_pwrite(blk, i * KiB, KiB, buf, 0), 0);
    }
    blk_unref(blk);
    rt = peek64(img, QCOW2_HDR_REFTABLE_OFFSET);
    ck_assert_uint_ne(peek64(img, rt + 8), 0);
    /* so the free-cluster scan reaches the second, now unaligned, one */
    poke64(img, rt + 8, peek64(img, rt + 8) | 0x200);

    blk = open_img(img, BDRV_O_RDWR);
    ck_assert_int_eq(blk_pwrite(blk, 900 * KiB, KiB, buf, 0), -EIO);
    ck_assert(qcow2_state(blk)->corrupt_fatal);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), -ENOMEDIUM);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), -ENOMEDIUM);
    blk_unref(blk);
    ck_assert(corrupt_bit(img));
    blk = blk_new_open(img, "qcow2", NULL, BDRV_O_RDWR, &err);
    ck_assert_ptr_null(blk);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    ck_assert_str_eq(msg, "qcow2: Image is corrupt; cannot be opened "
                     "read/write");
}
END_TEST

/*
 * An emptied refcount block makes cluster 0 look free: the allocation
 * must not hand out the header (it used to assert, or overwrite it)
 */
START_TEST(test_header_looks_free)
{
    g_autofree char *img = tpath("hdr.qcow2");
    g_autofree uint8_t *buf = g_malloc0(64 * KiB);
    uint64_t rt, rb;
    BlockBackend *blk;

    create(img, 64 * MiB, 65536, 16);
    if (_i) {
        /* an L2 table exists: the data cluster itself gets offset 0 */
        blk = open_img(img, BDRV_O_RDWR);
        ck_assert_int_eq(blk_pwrite(blk, 64 * KiB, 64 * KiB, buf, 0), 0);
        blk_unref(blk);
    }
    rt = peek64(img, QCOW2_HDR_REFTABLE_OFFSET);
    rb = peek64(img, rt);
    poke64(img, rb, 0);
    blk = open_img(img, BDRV_O_RDWR);
    ck_assert_int_eq(blk_pwrite(blk, 0, 64 * KiB, buf, 0), -EIO);
    blk_unref(blk);
    ck_assert(corrupt_bit(img));
    ck_assert_uint_eq(peek64(img, 0) >> 32, QCOW_MAGIC);
}
END_TEST

/* Damaged compressed data: the read fails, the image stays usable */
START_TEST(test_bad_compressed_data)
{
    g_autofree char *img = tpath("c.qcow2");
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    uint64_t l1, l2, entry, host;
    BlockBackend *blk;
    int nb;

    create(img, 1 * MiB, 65536, 16);
    blk = open_img(img, BDRV_O_RDWR);
    memset(buf, 0x11, 64 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 0, 64 * KiB, buf,
                                BDRV_REQ_WRITE_COMPRESSED), 0);
    blk_unref(blk);
    /* overwrite the deflate stream with garbage */
    l1 = peek64(img, QCOW2_HDR_L1_OFFSET);
    l2 = peek64(img, l1) & L1E_OFFSET_MASK;
    entry = peek64(img, l2);
    ck_assert(entry & QCOW_OFLAG_COMPRESSED);
    host = entry & ((UINT64_C(1) << 54) - 1);
    for (nb = 0; nb < 4; nb++) {
        poke64(img, host + nb * 8, UINT64_C(0xffffffffffffffff));
    }

    blk = open_img(img, BDRV_O_RDWR);
    ck_assert_int_eq(blk_pread(blk, 0, 64 * KiB, buf, 0), -EIO);
    ck_assert(!qcow2_state(blk)->corrupt_signalled);
    /* a rewrite mends it */
    memset(buf, 0x22, 64 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 0, 64 * KiB, buf, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 0, 64 * KiB, buf, 0), 0);
    ck_assert_int_eq(buf[0], 0x22);
    blk_unref(blk);
    ck_assert(!corrupt_bit(img));
}
END_TEST

static Suite *qcow2_errors_suite(void)
{
    Suite *s = suite_create("qcow2-errors");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_writethrough_fails, 0,
                        2 * G_N_ELEMENTS(error_events));
    tcase_add_loop_test(tc, test_writeback_flush_retries, 0,
                        G_N_ELEMENTS(error_events));
    tcase_add_test(tc, test_unaligned_refblock);
    tcase_add_loop_test(tc, test_header_looks_free, 0, 2);
    tcase_add_test(tc, test_bad_compressed_data);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_errors_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
