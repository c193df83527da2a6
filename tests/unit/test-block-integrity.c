/*
 * Data integrity at the edges of the request path: nothing is written
 * beyond the end of a node (block/block-backend.c, block/io.c), and a
 * BlockBackend that is closed completes its requests first.  Both were
 * found as acknowledged-but-lost writes by QEMU's own iotests (004: a
 * qcow2 write at 100G "succeeded" and read back as something else; a
 * qemu-io "aio_write" followed by "close" never reached the image).
 *
 * Real drivers (file, raw, qcow2) on files in a private temp dir.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "qemu/cutils.h"
#include "test-util.h"
#include <check.h>

#define IMG_SIZE (128 * MiB)

static char *tmpdir;

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_qcow2);
    tmpdir = g_dir_make_tmp("test-block-integrity-XXXXXX", NULL);
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

static int64_t file_size(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static void create_raw(const char *path, int64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
}

static void create_qcow2(const char *path, int64_t size)
{
    g_autofree char *o = g_strdup_printf("{\"size\":%" PRId64 "}", size);
    g_autoptr(json_t) opts = json_loads(o, 0, NULL);

    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, path, opts, &error_abort), 0);
}

static BlockBackend *open_blk(const char *path, const char *fmt, int flags)
{
    return blk_new_open(path, fmt, NULL, flags, &error_abort);
}

/* Every kind of request that ends past the node is refused, and changes
 * nothing; requests that end exactly at the end are fine. */
static void check_bounds(BlockBackend *blk, int64_t len)
{
    g_autofree uint8_t *buf = g_malloc(4 * MiB);

    memset(buf, 0xab, 4 * MiB);
    ck_assert_int_eq(blk_getlength(blk), len);
    /* straddling the end (iotest 004's "write 127M 4M") */
    ck_assert_int_eq(blk_pwrite(blk, len - 1 * MiB, 4 * MiB, buf, 0), -EIO);
    /* entirely beyond it (004's "write 100G 4096") */
    ck_assert_int_eq(blk_pwrite(blk, 100 * GiB, 4096, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, len, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, len - 512, 1024, buf, 0), -EIO);
    /* unaligned, one byte too far */
    ck_assert_int_eq(blk_pwrite(blk, len - 511, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite_zeroes(blk, len - 4096, 8192, 0), -EIO);
    ck_assert_int_eq(blk_pdiscard(blk, len - 4096, 8192), -EIO);
    ck_assert_int_eq(blk_pread(blk, len - 4096, 8192, buf, 0), -EIO);
    ck_assert_int_eq(blk_pread(blk, 100 * GiB, 4096, buf, 0), -EIO);
    /* up to the end exactly */
    ck_assert_int_eq(blk_pwrite(blk, len - 4096, 4096, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, len - 100, 100, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, len, 0, buf, 0), 0);
    ck_assert_int_eq(blk_getlength(blk), len);
}

START_TEST(test_raw_write_beyond_eof)
{
    g_autofree char *img = tpath("a.raw");
    BlockBackend *blk;

    create_raw(img, IMG_SIZE);
    blk = open_blk(img, "raw", BDRV_O_RDWR);
    check_bounds(blk, IMG_SIZE);
    blk_unref(blk);
    /* the file did not grow (it grew to 137363456 bytes before) */
    ck_assert_int_eq(file_size(img), IMG_SIZE);

    /* the protocol node alone, even with the resize permission */
    blk = open_blk(img, "file", BDRV_O_RDWR | BDRV_O_RESIZE);
    check_bounds(blk, IMG_SIZE);
    blk_unref(blk);
    ck_assert_int_eq(file_size(img), IMG_SIZE);
}
END_TEST

/*
 * A file whose length is not a multiple of 512 (QEMU's iotest 101): its
 * partial last sector reads, zeroes past EOF, as QEMU counts lengths in
 * sectors; nothing may be written past the end of it.
 */
START_TEST(test_raw_partial_sector)
{
    g_autofree char *img = tpath("s.raw");
    uint8_t buf[1024];
    BlockBackend *blk;

    create_raw(img, 320);
    blk = open_blk(img, "raw", BDRV_O_RDWR);
    memset(buf, 0xff, sizeof(buf));
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    ck_assert(buffer_is_zero(buf, 512));
    ck_assert_int_eq(blk_pread(blk, 0, 1024, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, 0, 320, buf, 0), 0);
    blk_unref(blk);
    ck_assert_int_eq(file_size(img), 320);
}
END_TEST

START_TEST(test_qcow2_write_beyond_eof)
{
    g_autofree char *img = tpath("d.qcow2");
    g_autofree uint8_t *buf = g_malloc(4096);
    BlockBackend *blk;
    int64_t before;

    create_qcow2(img, IMG_SIZE);
    before = file_size(img);
    blk = open_blk(img, "qcow2", BDRV_O_RDWR | BDRV_O_RESIZE);
    check_bounds(blk, IMG_SIZE);
    blk_unref(blk);
    /* two data clusters were written at the end; nothing at 100G, so no
     * grown L1 table and no cluster allocated for it */
    ck_assert_int_le(file_size(img), before + 4 * 64 * KiB);

    blk = open_blk(img, "qcow2", 0);
    ck_assert_int_eq(blk_getlength(blk), IMG_SIZE);
    ck_assert_int_eq(blk_pread(blk, IMG_SIZE - 4096, 4096, buf, 0), 0);
    ck_assert_int_eq(buf[0], 0xab);
    blk_unref(blk);
}
END_TEST

/*
 * Below the BlockBackend: a node's own parent may write past the end of
 * a protocol node only with the resize permission (a format growing its
 * file); a format node is never written past its end.
 */
START_TEST(test_bdrv_write_beyond_eof)
{
    g_autofree char *img = tpath("b.raw");
    g_autofree char *q = tpath("b.qcow2");
    uint8_t buf[512];
    BlockDriverState *bs;
    BlockBackend *blk;

    memset(buf, 0x11, sizeof(buf));
    create_raw(img, 1 * MiB);
    bs = bdrv_open_file(img, "file", NULL, BDRV_O_RDWR, &error_abort);
    blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    blk_set_allow_write_beyond_eof(blk, true);
    /* no resize permission: the core refuses */
    ck_assert_int_eq(blk_pwrite(blk, 1 * MiB, 512, buf, 0), -EIO);
    blk_unref(blk);
    blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                  BLK_PERM_RESIZE, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    blk_set_allow_write_beyond_eof(blk, true);
    /* with it, the file grows, as a format's image file does */
    ck_assert_int_eq(blk_pwrite(blk, 1 * MiB, 512, buf, 0), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 1 * MiB + 512);
    blk_unref(blk);
    bdrv_unref(bs);
    ck_assert_int_eq(file_size(img), 1 * MiB + 512);

    create_qcow2(q, 1 * MiB);
    bs = bdrv_open_file(q, "qcow2", NULL, BDRV_O_RDWR, &error_abort);
    blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                  BLK_PERM_RESIZE, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    blk_set_allow_write_beyond_eof(blk, true);
    ck_assert_int_eq(blk_pwrite(blk, 1 * MiB, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, 1 * GiB, 512, buf, 0), -EIO);
    ck_assert_int_eq(bdrv_getlength(bs), 1 * MiB);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

typedef struct AioDone {
    int calls;
    int ret;
} AioDone;

static void aio_done_cb(void *opaque, int ret)
{
    AioDone *d = opaque;

    d->calls++;
    d->ret = ret;
}

/*
 * blk_unref() of the last reference with an aio request in flight: the
 * request completes (its callback runs) before the node is closed, and
 * the data is in the image afterwards (qemu-io "aio_write 0 4M" "close").
 */
static void aio_then_close(const char *img, const char *fmt)
{
    g_autofree uint8_t *buf = g_malloc(4 * MiB);
    g_autofree uint8_t *rd = g_malloc(4 * MiB);
    QEMUIOVector qiov;
    AioDone d = { 0, -EINPROGRESS };
    BlockBackend *blk = open_blk(img, fmt, BDRV_O_RDWR);

    memset(buf, 0x5c, 4 * MiB);
    qemu_iovec_init_buf(&qiov, buf, 4 * MiB);
    blk_aio_pwritev(blk, 0, &qiov, 0, aio_done_cb, &d);
    ck_assert_int_eq(blk_aio_in_flight(blk), 1);
    blk_unref(blk);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.ret, 0);

    blk = open_blk(img, fmt, 0);
    ck_assert_int_eq(blk_pread(blk, 0, 4 * MiB, rd, 0), 0);
    ck_assert(memcmp(rd, buf, 4 * MiB) == 0);
    blk_unref(blk);
}

START_TEST(test_close_completes_aio)
{
    g_autofree char *raw = tpath("e.raw");
    g_autofree char *q = tpath("e.qcow2");

    create_raw(raw, IMG_SIZE);
    aio_then_close(raw, "raw");
    create_qcow2(q, IMG_SIZE);
    aio_then_close(q, "qcow2");
}
END_TEST

/* A callback may drop the last reference itself */
static void unref_cb(void *opaque, int ret)
{
    BlockBackend *blk = opaque;

    ck_assert_int_eq(ret, 0);
    ck_assert_int_eq(blk_aio_in_flight(blk), 0);
    blk_unref(blk);
}

START_TEST(test_callback_drops_last_ref)
{
    g_autofree char *raw = tpath("f.raw");
    uint8_t buf[4096];
    QEMUIOVector qiov;
    BlockBackend *blk;

    create_raw(raw, 1 * MiB);
    blk = open_blk(raw, "raw", BDRV_O_RDWR);
    memset(buf, 1, sizeof(buf));
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    blk_aio_pwritev(blk, 0, &qiov, 0, unref_cb, blk);
    while (bdrv_next_node(NULL)) {
        aio_poll(qemu_get_aio_context(), true);
    }
}
END_TEST

static Suite *integrity_suite(void)
{
    Suite *s = suite_create("block-integrity");
    TCase *tc = tcase_create("integrity");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_raw_write_beyond_eof);
    tcase_add_test(tc, test_raw_partial_sector);
    tcase_add_test(tc, test_qcow2_write_beyond_eof);
    tcase_add_test(tc, test_bdrv_write_beyond_eof);
    tcase_add_test(tc, test_close_completes_aio);
    tcase_add_test(tc, test_callback_drops_last_ref);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(integrity_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
