/*
 * Unit tests for the graph and the drivers: options and node names,
 * permissions, op blockers, file-posix in each aio mode (threads, native
 * with O_DIRECT, io_uring), SEEK_HOLE block status, image locking, raw
 * offset/size, null-co, blkdebug rules and break points.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/raw-aio.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include <check.h>

static char *tmpdir;
static char *img;

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-block-XXXXXX", NULL);
    img = g_build_filename(tmpdir, "t.img", NULL);
    g_autoptr(json_t) o = json_pack("{s:s}", "size", "1M");

    ck_assert_int_eq(bdrv_create_file(img, o, &error_abort), 0);
}

static void teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

    ck_assert_ptr_null(bdrv_next_node(NULL));
    ck_assert_int_eq(system(cmd), 0);
    g_free(img);
    g_free(tmpdir);
}

static json_t *J(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;
    json_error_t jerr;
    json_t *o;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    o = json_loads(s, 0, &jerr);
    ck_assert_msg(o != NULL, "bad json %s", s);
    return o;
}

static BlockDriverState *open_ok(json_t *o)
{
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(o, &err);

    json_decref(o);
    ck_assert_msg(bs != NULL, "open: %s", err ? error_get_pretty(err) : "");
    return bs;
}

static void open_fails(json_t *o, const char *msg)
{
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(o, &err);

    json_decref(o);
    ck_assert_ptr_null(bs);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), msg);
    error_free(err);
}

static BlockBackend *blk_rw(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    return blk;
}

/* ---- options, names, lookup ---- */

START_TEST(test_options_and_names)
{
    BlockDriverState *bs, *bs2;
    Error *err = NULL;
    g_autofree char *msg = NULL;

    open_fails(J("{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
                 "\"filename\":\"%s\"},\"foo\":1}", img),
               "Block format 'raw' does not support the option 'foo'");
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s\",\"bar\":\"x\"}",
                 img),
               "Block protocol 'file' doesn't support the option 'bar'");
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s\","
                 "\"cache\":{\"direct\":\"maybe\"}}", img),
               "Parameter 'cache.direct' expects 'on' or 'off'");
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s\","
                 "\"read-only\":3}", img),
               "Invalid parameter type for 'read-only', expected: boolean");
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s\","
                 "\"node-name\":\"1bad\"}", img),
               "Invalid node-name: '1bad'");
    open_fails(J("{\"driver\":\"nosuch\"}"), "Unknown driver 'nosuch'");
    msg = g_strdup_printf("Could not open '%s/none': No such file or "
                          "directory", tmpdir);
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s/none\"}", tmpdir),
               msg);

    /* keyval-style strings are accepted: cache.direct=off, nested */
    bs = open_ok(J("{\"driver\":\"file\",\"filename\":\"%s\","
                   "\"node-name\":\"disk0\",\"cache\":{\"direct\":\"off\"},"
                   "\"read-only\":\"on\"}", img));
    ck_assert(bdrv_is_read_only(bs));
    ck_assert_ptr_eq(bdrv_find_node("disk0"), bs);
    ck_assert_ptr_eq(bdrv_lookup_bs(NULL, "disk0", &error_abort), bs);
    ck_assert_ptr_null(bdrv_lookup_bs("dev", "nope", &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Cannot find device='dev' nor node-name='nope'");
    error_free(err);
    open_fails(J("{\"driver\":\"null-co\",\"node-name\":\"disk0\"}"),
               "Duplicate nodes with node-name='disk0'");

    /* implicit names */
    bs2 = open_ok(J("{\"driver\":\"null-co\"}"));
    ck_assert(g_str_has_prefix(bdrv_get_node_name(bs2), "#block"));
    ck_assert_int_eq(bdrv_getlength(bs2), GiB);
    bdrv_unref(bs2);
    bdrv_unref(bs);
}
END_TEST

/* ---- permissions and op blockers ---- */

START_TEST(test_permissions)
{
    BlockDriverState *bs = open_ok(J("{\"driver\":\"null-co\","
                                     "\"node-name\":\"n0\"}"));
    BlockBackend *a = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                              BLK_PERM_CONSISTENT_READ);
    BlockBackend *b = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                              BLK_PERM_ALL);
    BlockBackend *c = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);
    Error *err = NULL;

    ck_assert(blk_set_name(a, "drive0", &error_abort));
    ck_assert(blk_insert_bs(a, bs, &error_abort));
    ck_assert(!blk_insert_bs(b, bs, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Permission conflict on node 'n0': permissions 'write' "
                     "are both required by an unnamed block device (uses "
                     "node 'n0' as 'root' child) and unshared by block "
                     "device 'drive0' (uses node 'n0' as 'root' child).");
    error_free(err);
    err = NULL;
    /* reading is shared */
    ck_assert(blk_insert_bs(c, bs, &error_abort));
    ck_assert_str_eq(bdrv_get_device_name(bs), "drive0");
    ck_assert_ptr_eq(bdrv_lookup_bs("drive0", NULL, &error_abort), bs);
    /* after a goes away, b may write */
    blk_unref(a);
    ck_assert(blk_insert_bs(b, bs, &error_abort));
    /* c cannot stop sharing write now */
    ck_assert(!blk_set_perm(c, BLK_PERM_CONSISTENT_READ,
                            BLK_PERM_CONSISTENT_READ, &err));
    error_free(err);
    blk_unref(b);
    blk_unref(c);
    bdrv_unref(bs);

    /* read-only nodes refuse writers */
    bs = open_ok(J("{\"driver\":\"null-co\",\"read-only\":true}"));
    a = blk_new(BLK_PERM_WRITE, BLK_PERM_ALL);
    err = NULL;
    ck_assert(!blk_insert_bs(a, bs, &err));
    ck_assert_str_eq(error_get_pretty(err), "Block node is read-only");
    error_free(err);
    blk_unref(a);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_op_blockers)
{
    BlockDriverState *bs = open_ok(J("{\"driver\":\"null-co\","
                                     "\"node-name\":\"src\"}"));
    Error *reason = NULL, *err = NULL;

    error_setg(&reason, "block device is in use by block job: backup");
    ck_assert(!bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_RESIZE, &error_abort));
    bdrv_op_block_all(bs, reason);
    bdrv_op_unblock(bs, BLOCK_OP_TYPE_DATAPLANE, reason);
    ck_assert(!bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_DATAPLANE, NULL));
    ck_assert(bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_RESIZE, &err));
    ck_assert_str_eq(error_get_pretty(err), "Node 'src' is busy: block "
                     "device is in use by block job: backup");
    error_free(err);
    ck_assert(!bdrv_op_blocker_is_empty(bs));
    ck_assert_str_eq(bdrv_op_type_name(BLOCK_OP_TYPE_BACKUP_SOURCE),
                     "backup-source");
    bdrv_set_monitor_owned(bs);
    err = NULL;
    ck_assert(!bdrv_delete_node(bs, &err));
    ck_assert(g_str_has_prefix(error_get_pretty(err), "Node 'src' is busy"));
    error_free(err);
    bdrv_op_unblock_all(bs, reason);
    ck_assert(bdrv_op_blocker_is_empty(bs));
    bdrv_unref(bs);
    ck_assert(bdrv_delete_node(bs, &error_abort));
    error_free(reason);
}
END_TEST

/* ---- file-posix ---- */

static void file_io_roundtrip(const char *extra, bool direct)
{
    BlockDriverState *bs = open_ok(J("{\"driver\":\"file\",\"filename\":"
                                     "\"%s\"%s%s}", img,
                                     direct ? ",\"cache\":{\"direct\":true}"
                                            : "", extra));
    BlockBackend *blk;
    uint8_t *buf = qemu_blockalign(bs, 128 * KiB);
    uint8_t *back = qemu_blockalign(bs, 128 * KiB);
    int64_t pnum;
    int ret, i;

    bs->open_flags |= BDRV_O_UNMAP;
    blk = blk_rw(bs);
    for (i = 0; i < 128 * KiB; i++) {
        buf[i] = i * 13;
    }
    ck_assert_int_eq(blk_pwrite(blk, 64 * KiB, 128 * KiB, buf, 0), 0);
    ck_assert_int_eq(blk_flush(blk), 0);
    ck_assert_int_eq(blk_pread(blk, 64 * KiB, 128 * KiB, back, 0), 0);
    ck_assert_mem_eq(buf, back, 128 * KiB);
    /* unaligned and misaligned buffer (bounce paths with O_DIRECT) */
    ck_assert_int_eq(blk_pwrite(blk, 64 * KiB + 1, 100, buf + 3, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 64 * KiB, 4096, back + 5, 0), 0);
    ck_assert_mem_eq(back + 5 + 1, buf + 3, 100);
    ck_assert_int_eq(back[5], buf[0]);
    /* write zeroes (punch with MAY_UNMAP), discard */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 128 * KiB, 64 * KiB,
                                       BDRV_REQ_MAY_UNMAP), 0);
    ck_assert_int_eq(blk_pread(blk, 128 * KiB, 64 * KiB, back, 0), 0);
    ck_assert(buffer_is_zero(back, 64 * KiB));
    ck_assert_int_eq(blk_pdiscard(blk, 64 * KiB, 64 * KiB), 0);
    ret = bdrv_block_status(bs, 64 * KiB, 64 * KiB, &pnum, NULL, NULL);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    /* reads past EOF-aligned tail of the image return zeroes */
    ck_assert_int_eq(blk_pread(blk, MiB - 4096, 4096, back, 0), 0);
    ck_assert(buffer_is_zero(back, 4096));
    qemu_vfree(buf);
    qemu_vfree(back);
    blk_unref(blk);
    bdrv_unref(bs);
}

START_TEST(test_file_threads)
{
    file_io_roundtrip(",\"aio\":\"threads\"", false);
}
END_TEST

START_TEST(test_file_native_direct)
{
    if (!laio_available()) {
        return;
    }
    file_io_roundtrip(",\"aio\":\"native\"", true);
}
END_TEST

START_TEST(test_file_io_uring)
{
    uint64_t before = luring_submit_count();

    if (!luring_available()) {
        return;
    }
    file_io_roundtrip(",\"aio\":\"io_uring\"", false);
    ck_assert_uint_gt(luring_submit_count(), before);
}
END_TEST

START_TEST(test_file_native_needs_direct)
{
    open_fails(J("{\"driver\":\"file\",\"filename\":\"%s\","
                 "\"aio\":\"native\"}", img),
               "aio=native was specified, but it requires cache.direct=on, "
               "which was not specified.");
}
END_TEST

typedef struct BlockStatusCo {
    BlockDriverState *bs;
    int64_t offset, bytes, pnum;
    int ret;
    bool done;
} BlockStatusCo;

static void coroutine_fn block_status_co(void *opaque)
{
    BlockStatusCo *b = opaque;

    b->ret = bdrv_co_block_status(b->bs, true, b->offset, b->bytes,
                                  &b->pnum, NULL, NULL);
    b->done = true;
}

/*
 * Block status of the file node from a coroutine; asserts that it finished
 * within qemu_coroutine_enter(), i.e. lseek ran directly on this thread
 * without a yield for a thread-pool round trip.
 */
static int block_status_no_yield(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, int64_t *pnum)
{
    BlockStatusCo b = { .bs = bs, .offset = offset, .bytes = bytes };

    qemu_coroutine_enter(qemu_coroutine_create(block_status_co, &b));
    ck_assert_msg(b.done, "file block status yielded (thread pool?)");
    *pnum = b.pnum;
    return b.ret;
}

START_TEST(test_file_seek_hole)
{
    BlockDriverState *bs;
    int64_t pnum, map;
    BlockDriverState *file;
    int fd, ret;
    char data[4096];

    /* sparse file: data at [256K, 260K) only */
    memset(data, 'x', sizeof(data));
    fd = open(img, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, data, sizeof(data), 256 * KiB), 4096);
    close(fd);
    bs = open_ok(J("{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
                   "\"filename\":\"%s\"}}", img));
    /* a new file's first block is allocated, as QEMU's (allocate_first_block) */
    ret = bdrv_block_status(bs, 0, MiB, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert_int_eq(pnum, 4096);
    ret = bdrv_block_status(bs, 4096, MiB - 4096, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert(!(ret & BDRV_BLOCK_DATA));
    ck_assert_int_eq(pnum, 252 * KiB);
    ck_assert_ptr_eq(file, bdrv_file_bs(bs));
    ret = bdrv_block_status(bs, 256 * KiB, MiB - 256 * KiB, &pnum, &map,
                            &file);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert(ret & BDRV_BLOCK_OFFSET_VALID);
    ck_assert_int_eq(map, 256 * KiB);
    ck_assert_int_eq(pnum, 4096);
    ret = bdrv_block_status(bs, 260 * KiB, MiB, &pnum, NULL, NULL);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert(ret & BDRV_BLOCK_EOF);
    ck_assert_int_eq(pnum, MiB - 260 * KiB);

    /* the file node answers without leaving the block-layer thread */
    file = bdrv_file_bs(bs);
    ret = block_status_no_yield(file, 4096, MiB - 4096, &pnum);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_ZERO);
    ck_assert_int_eq(pnum, 252 * KiB);
    ret = block_status_no_yield(file, 256 * KiB, MiB - 256 * KiB, &pnum);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_DATA);
    ck_assert_int_eq(pnum, 4096);
    ret = block_status_no_yield(file, 260 * KiB, MiB - 260 * KiB, &pnum);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert_int_eq(pnum, MiB - 260 * KiB);
    bdrv_unref(bs);

    /* data up to EOF: SEEK_HOLE finds the implicit hole at EOF */
    fd = open(img, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, data, sizeof(data), MiB - 4096), 4096);
    close(fd);
    bs = open_ok(J("{\"driver\":\"file\",\"filename\":\"%s\"}", img));
    ret = block_status_no_yield(bs, MiB - 8192, 8192, &pnum);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_ZERO);
    ck_assert_int_eq(pnum, 4096);
    ret = block_status_no_yield(bs, MiB - 4096, 4096, &pnum);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_DATA);
    ck_assert_int_eq(pnum, 4096);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_file_locking)
{
    BlockBackend *a, *b;
    Error *err = NULL;
    g_autoptr(json_t) nolock = J("{\"file\":{\"locking\":\"off\"}}");

    a = blk_new_open(img, "raw", NULL, BDRV_O_RDWR | BDRV_O_NO_SHARE,
                     &error_abort);
    /* a second writer fails with QEMU's message */
    b = blk_new_open(img, "raw", NULL, BDRV_O_RDWR | BDRV_O_NO_SHARE, &err);
    ck_assert_ptr_null(b);
    ck_assert_str_eq(error_get_pretty(err), "Failed to get \"write\" lock");
    error_free(err);
    err = NULL;
    /* a reader that does not share write fails too */
    b = blk_new_open(img, "raw", NULL, BDRV_O_NO_SHARE, &err);
    ck_assert_ptr_null(b);
    ck_assert_str_eq(error_get_pretty(err),
                     "Failed to get shared \"write\" lock");
    error_free(err);
    /* a reader sharing everything (-U) works */
    b = blk_new_open(img, "raw", NULL, BDRV_O_FORCE_SHARE, &error_abort);
    blk_unref(b);
    /* locking=off skips locks */
    b = blk_new_open(img, "raw", nolock, BDRV_O_RDWR | BDRV_O_NO_SHARE,
                     &error_abort);
    blk_unref(b);
    blk_unref(a);
    /* released on close */
    b = blk_new_open(img, "raw", NULL, BDRV_O_RDWR | BDRV_O_NO_SHARE,
                     &error_abort);
    blk_unref(b);
}
END_TEST

typedef struct CopyRangeCo {
    BlockBackend *src, *dst;
    int ret;
} CopyRangeCo;

static void coroutine_fn copy_range_entry(void *opaque)
{
    CopyRangeCo *cr = opaque;

    cr->ret = blk_co_copy_range(cr->src, 65536, cr->dst, 131072, 65536, 0,
                                0);
}

START_TEST(test_copy_range)
{
    CopyRangeCo cr = { NULL, NULL, -1 };
    g_autofree char *img2 = g_build_filename(tmpdir, "u.img", NULL);
    BlockDriverState *src, *dst;
    BlockBackend *bsrc, *bdst;
    uint8_t buf[65536], back[65536];

    g_autoptr(json_t) o = json_pack("{s:I}", "size", (json_int_t)MiB);

    ck_assert_int_eq(bdrv_create_file(img2, o, &error_abort), 0);
    src = open_ok(J("{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
                    "\"filename\":\"%s\"}}", img));
    dst = open_ok(J("{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
                    "\"filename\":\"%s\"}}", img2));
    bsrc = blk_rw(src);
    bdst = blk_rw(dst);
    memset(buf, 0x77, sizeof(buf));
    ck_assert_int_eq(blk_pwrite(bsrc, 65536, 65536, buf, 0), 0);
    cr.src = bsrc;
    cr.dst = bdst;
    qemu_co_run_sync(copy_range_entry, &cr);
    ck_assert_int_eq(cr.ret, 0);
    ck_assert_int_eq(blk_pread(bdst, 131072, 65536, back, 0), 0);
    ck_assert_mem_eq(buf, back, sizeof(buf));
    blk_unref(bsrc);
    blk_unref(bdst);
    bdrv_unref(src);
    bdrv_unref(dst);
}
END_TEST

START_TEST(test_raw_offset_size)
{
    BlockDriverState *bs = open_ok(J("{\"driver\":\"raw\",\"offset\":4096,"
                                     "\"size\":\"8192\",\"file\":{\"driver\":"
                                     "\"file\",\"filename\":\"%s\"}}", img));
    BlockBackend *blk = blk_rw(bs);
    uint8_t buf[4096];
    int fd;

    ck_assert_int_eq(bdrv_getlength(bs), 8192);
    memset(buf, 0x42, sizeof(buf));
    ck_assert_int_eq(blk_pwrite(blk, 0, 4096, buf, 0), 0);
    /* past the window: refused before it reaches the file */
    ck_assert_int_eq(blk_pwrite(blk, 8192, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pwrite(blk, 6144, 4096, buf, 0), -EIO);
    blk_unref(blk);
    bdrv_unref(bs);
    fd = open(img, O_RDONLY);
    ck_assert_int_eq(pread(fd, buf, 1, 4096), 1);
    ck_assert_int_eq(buf[0], 0x42);
    ck_assert_int_eq(pread(fd, buf, 1, 0), 1);
    ck_assert_int_eq(buf[0], 0);
    close(fd);
    open_fails(J("{\"driver\":\"raw\",\"offset\":4096,\"size\":\"2M\","
                 "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}", img),
               "The sum of offset (4096) and size (2097152) has to be "
               "smaller or equal to the  actual size of the containing file "
               "(1048576)");
}
END_TEST

START_TEST(test_null_co)
{
    BlockDriverState *bs = open_ok(J("{\"driver\":\"null-co\",\"size\":"
                                     "\"64k\",\"read-zeroes\":\"on\"}"));
    BlockBackend *blk = blk_rw(bs);
    uint8_t buf[512];
    int64_t pnum;

    memset(buf, 1, sizeof(buf));
    ck_assert_int_eq(bdrv_getlength(bs), 64 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    ck_assert(buffer_is_zero(buf, 512));
    ck_assert(bdrv_block_status(bs, 0, 4096, &pnum, NULL, NULL) &
              BDRV_BLOCK_ZERO);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

/* ---- blkdebug ---- */

static BlockBackend *open_blkdebug(const char *rules)
{
    json_t *o = J("{\"driver\":\"raw\",\"file\":{\"driver\":\"blkdebug\","
                  "%s\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
                  rules, img);
    BlockDriverState *bs = open_ok(o);
    BlockBackend *blk = blk_rw(bs);

    bdrv_unref(bs);
    return blk;
}

START_TEST(test_blkdebug_once_and_every)
{
    BlockBackend *blk = open_blkdebug(
        "\"inject-error\":[{\"event\":\"read_aio\",\"once\":true}],");
    uint8_t buf[512];

    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), -EIO);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    blk_unref(blk);

    blk = open_blkdebug("\"inject-error\":[{\"event\":\"write_aio\","
                        "\"errno\":\"28\",\"immediately\":\"on\","
                        "\"iotype\":[\"write\"]}],");
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), -ENOSPC);
    ck_assert_int_eq(blk_pwrite(blk, 512, 512, buf, 0), -ENOSPC);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    blk_unref(blk);
}
END_TEST

START_TEST(test_blkdebug_sector_filter)
{
    BlockBackend *blk = open_blkdebug(
        "\"inject-error\":[{\"event\":\"read_aio\",\"sector\":16}],");
    uint8_t buf[4096];

    ck_assert_int_eq(blk_pread(blk, 0, 4096, buf, 0), 0);      /* 0-7 */
    ck_assert_int_eq(blk_pread(blk, 8192, 512, buf, 0), -EIO); /* 16 */
    ck_assert_int_eq(blk_pread(blk, 4096, 4096, buf, 0), 0);   /* 8-15 */
    ck_assert_int_eq(blk_pread(blk, 6144, 4096, buf, 0), -EIO);
    blk_unref(blk);
}
END_TEST

START_TEST(test_blkdebug_states_and_config)
{
    g_autofree char *conf = g_build_filename(tmpdir, "bd.conf", NULL);
    g_autofree char *fn = NULL;
    BlockBackend *blk;
    uint8_t buf[512] = { 0 };

    /* reads fail only after the first write (state 1 -> 2) */
    ck_assert(g_file_set_contents(conf,
        "# comment\n"
        "[set-state]\n"
        "state = \"1\"\n"
        "event = \"write_aio\"\n"
        "new_state = \"2\"\n"
        "\n"
        "[inject-error]\n"
        "state = \"2\"\n"
        "event = \"read_aio\"\n"
        "errno = \"5\"\n", -1, NULL));
    fn = g_strdup_printf("blkdebug:%s:%s", conf, img);
    blk = blk_new_open(fn, "raw", NULL, BDRV_O_RDWR, &error_abort);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), -EIO);
    blk_unref(blk);
}
END_TEST

typedef struct BpReq {
    BlockBackend *blk;
    int ret;
    bool done;
} BpReq;

static void coroutine_fn bp_entry(void *opaque)
{
    BpReq *r = opaque;
    uint8_t buf[512] = { 0 };

    r->ret = blk_co_pwrite(r->blk, 0, 512, buf, 0);
    r->done = true;
}

START_TEST(test_blkdebug_breakpoints)
{
    BlockBackend *blk = open_blkdebug("");
    BlockDriverState *bs = blk_bs(blk);
    BpReq r = { blk, -1, false };

    ck_assert_int_eq(bdrv_debug_breakpoint(bs, "write_aio", "A"), 0);
    ck_assert_int_eq(bdrv_debug_breakpoint(bs, "nonsense", "B"), -ENOENT);
    qemu_coroutine_enter(qemu_coroutine_create(bp_entry, &r));
    while (!bdrv_debug_is_suspended(bs, "A")) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert(!r.done);
    ck_assert_int_eq(bdrv_debug_resume(bs, "B"), -ENOENT);
    ck_assert_int_eq(bdrv_debug_resume(bs, "A"), 0);
    while (!r.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_int_eq(r.ret, 0);
    ck_assert(!bdrv_debug_is_suspended(bs, "A"));
    blk_unref(blk);
}
END_TEST

START_TEST(test_blkdebug_align)
{
    BlockBackend *blk = open_blkdebug("\"align\":4096,");
    BlockDriverState *bd = bdrv_file_bs(blk_bs(blk));
    uint8_t pat[300], back[8192];

    ck_assert_uint_eq(bdrv_get_request_alignment(bd), 4096);
    memset(pat, 0x33, sizeof(pat));
    ck_assert_int_eq(blk_pwrite(blk, 4000, 300, pat, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 0, 8192, back, 0), 0);
    ck_assert(buffer_is_zero(back, 4000));
    ck_assert_mem_eq(back + 4000, pat, 300);
    ck_assert(buffer_is_zero(back + 4300, 8192 - 4300));
    blk_unref(blk);
}
END_TEST

static Suite *drivers_suite(void)
{
    Suite *s = suite_create("block-drivers");
    TCase *tc = tcase_create("drivers");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_options_and_names);
    tcase_add_test(tc, test_permissions);
    tcase_add_test(tc, test_op_blockers);
    tcase_add_test(tc, test_file_threads);
    tcase_add_test(tc, test_file_native_direct);
    tcase_add_test(tc, test_file_io_uring);
    tcase_add_test(tc, test_file_native_needs_direct);
    tcase_add_test(tc, test_file_seek_hole);
    tcase_add_test(tc, test_file_locking);
    tcase_add_test(tc, test_copy_range);
    tcase_add_test(tc, test_raw_offset_size);
    tcase_add_test(tc, test_null_co);
    tcase_add_test(tc, test_blkdebug_once_and_every);
    tcase_add_test(tc, test_blkdebug_sector_filter);
    tcase_add_test(tc, test_blkdebug_states_and_config);
    tcase_add_test(tc, test_blkdebug_breakpoints);
    tcase_add_test(tc, test_blkdebug_align);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(drivers_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
