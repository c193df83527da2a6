/*
 * qcow2 refcount block placement with small clusters and wide refcounts,
 * where one refcount block covers only a few clusters (512-byte clusters
 * with 64-bit refcounts: 64 clusters, 32 KiB).  A new refcount block goes
 * in the first free cluster, like QEMU's: placing it at the start of the
 * range it covers cut the free space into runs shorter than a large
 * request, so allocation created block after block and never finished
 * (or left a file hundreds of times larger than QEMU's).
 *
 * Each image must pass `qemu-img check` when qemu-img is installed.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "test-util.h"
#include <check.h>
#include <sys/stat.h>

static char *tmpdir;
static bool have_qemu_img;

static void setup(void)
{
    g_autofree char *qi = g_find_program_in_path("qemu-img");

    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_qcow2);
    have_qemu_img = qi != NULL;
    tmpdir = g_dir_make_tmp("test-qcow2-refblock-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
}

static void teardown(void)
{
    test_rm_dir(tmpdir);
    g_free(tmpdir);
    ck_assert_ptr_null(bdrv_next_node(NULL));
}

static char *create_img(int64_t size, int cluster_size, int refcount_bits)
{
    char *path = g_build_filename(tmpdir, "r.qcow2", NULL);
    g_autofree char *json = g_strdup_printf(
        "{\"size\": %" PRId64 ", \"cluster_size\": %d, "
        "\"refcount_bits\": %d}", size, cluster_size, refcount_bits);
    g_autoptr(json_t) opts = json_loads(json, 0, NULL);
    Error *err = NULL;
    int ret;

    ck_assert_ptr_nonnull(opts);
    ret = bdrv_create(&bdrv_qcow2, path, opts, &err);
    if (err) {
        error_report_err(err);
    }
    ck_assert_int_eq(ret, 0);
    return path;
}

static BlockBackend *open_img(const char *path)
{
    Error *err = NULL;
    BlockBackend *blk = blk_new_open(path, "qcow2", NULL, BDRV_O_RDWR, &err);

    if (!blk) {
        error_report_err(err);
    }
    ck_assert_ptr_nonnull(blk);
    return blk;
}

static int64_t file_size(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static void qemu_img_check(const char *path)
{
    g_autofree char *out = NULL;
    int st;

    if (!have_qemu_img) {
        return;
    }
    st = test_run_cmd(&out, "qemu-img check -f qcow2 '%s'", path);
    ck_assert_msg(st == 0, "qemu-img check exit %d: %s", st, out);
}

typedef struct RefblockCheck {
    BlockDriverState *bs;
    uint32_t bad_index;   /* first block with a refcount other than 1 */
    uint64_t bad_refcount;
    int ret;
    bool done;
} RefblockCheck;

static void coroutine_fn refblock_check_entry(void *opaque)
{
    RefblockCheck *c = opaque;
    BDRVQcow2State *s = c->bs->opaque;
    uint32_t i;

    c->bad_index = UINT32_MAX;
    for (i = 0; i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
        uint64_t rc = 0;

        if (!off) {
            continue;
        }
        c->ret = qcow2_get_refcount(c->bs, off >> s->cluster_bits, &rc);
        if (c->ret < 0) {
            break;
        }
        if (rc != 1) {
            c->bad_index = i;
            c->bad_refcount = rc;
            break;
        }
    }
    c->done = true;
}

/* Every refcount block in use has refcount 1 (in itself or elsewhere) */
static void check_refblocks_counted(BlockBackend *blk)
{
    RefblockCheck c = { .bs = blk_bs(blk) };

    qemu_coroutine_enter(qemu_coroutine_create(refblock_check_entry, &c));
    while (!c.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_int_eq(c.ret, 0);
    ck_assert_msg(c.bad_index == UINT32_MAX, "refcount block %u has "
                  "refcount %" PRIu64, c.bad_index, c.bad_refcount);
}

static void write_pattern(BlockBackend *blk, int64_t off, int64_t len,
                          int pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);

    memset(buf, pattern, len);
    ck_assert_int_eq(blk_pwrite(blk, off, len, buf, 0), 0);
}

static void expect_pattern(BlockBackend *blk, int64_t off, int64_t len,
                           int pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);
    int64_t i;

    ck_assert_int_eq(blk_pread(blk, off, len, buf, 0), 0);
    for (i = 0; i < len && buf[i] == pattern; i++) {
        /* find the first difference */
    }
    ck_assert_msg(i == len, "byte %" PRId64 " is 0x%02x, expected 0x%02x",
                  off + i, i < len ? buf[i] : 0, pattern);
}

/*
 * One request larger than the range a refcount block covers: it must end,
 * and the file must stay near data + metadata (QEMU: 272896 bytes for
 * 512-byte clusters, 270336 for 1 KiB ones).
 */
START_TEST(test_large_request_small_refblocks)
{
    static const int cluster_sizes[] = { 1024, 512 };
    int cs = cluster_sizes[_i];
    g_autofree char *img = create_img(3 * MiB, cs, 64);
    BlockBackend *blk = open_img(img);
    int64_t size;

    write_pattern(blk, 0, 256 * KiB, 0xff);
    expect_pattern(blk, 0, 256 * KiB, 0xff);
    check_refblocks_counted(blk);
    blk_unref(blk);
    size = file_size(img);
    ck_assert_msg(size <= 256 * KiB + 32 * KiB, "image file is %" PRId64
                  " bytes for 256 KiB of data", size);
    qemu_img_check(img);
}
END_TEST

/*
 * Enough data that the refcount table (one cluster: 64 blocks of 64
 * clusters) must grow, in several requests of various sizes.
 */
START_TEST(test_reftable_growth_small_refblocks)
{
    g_autofree char *img = create_img(8 * MiB, 512, 64);
    BlockBackend *blk = open_img(img);
    BDRVQcow2State *s = blk_bs(blk)->opaque;
    int64_t size;

    write_pattern(blk, 0, 3 * MiB, 0xab);
    write_pattern(blk, 5 * MiB, 64 * KiB, 0xcd);
    write_pattern(blk, 7 * MiB, 1 * MiB, 0x11);
    ck_assert_uint_gt(s->refcount_table_size, 64);
    check_refblocks_counted(blk);
    expect_pattern(blk, 0, 3 * MiB, 0xab);
    expect_pattern(blk, 3 * MiB, 2 * MiB, 0);
    expect_pattern(blk, 5 * MiB, 64 * KiB, 0xcd);
    expect_pattern(blk, 7 * MiB, 1 * MiB, 0x11);
    blk_unref(blk);
    /* QEMU: 4431872 bytes (the new table lands past the 4 MiB it covers) */
    size = file_size(img);
    ck_assert_msg(size <= 4608 * KiB, "image file is %" PRId64 " bytes",
                  size);
    qemu_img_check(img);
}
END_TEST

typedef struct HostOffset {
    BlockDriverState *bs;
    uint64_t offset, host;
    int ret;
    bool done;
} HostOffset;

static void coroutine_fn host_offset_entry(void *opaque)
{
    HostOffset *h = opaque;
    BDRVQcow2State *s = h->bs->opaque;
    uint64_t bytes = 1, l2_entry;
    Qcow2ClusterType type;

    qemu_co_mutex_lock(&s->lock);
    h->ret = qcow2_get_host_offset(h->bs, h->offset, &bytes, &h->host,
                                   &type, &l2_entry);
    qemu_co_mutex_unlock(&s->lock);
    h->done = true;
}

static uint64_t host_offset(BlockBackend *blk, uint64_t offset)
{
    HostOffset h = { .bs = blk_bs(blk), .offset = offset };

    qemu_coroutine_enter(qemu_coroutine_create(host_offset_entry, &h));
    while (!h.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_int_eq(h.ret, 0);
    return h.host;
}

/*
 * A request whose last cluster is counted by a new refcount block: the
 * block goes after the data, where QEMU puts it (iotest 305 pokes it
 * there), and the data stays contiguous.
 */
START_TEST(test_refblock_after_the_run)
{
    g_autofree char *img = create_img(1 * MiB, 1024, 64);
    BlockBackend *blk = open_img(img);
    BDRVQcow2State *s = blk_bs(blk)->opaque;
    uint64_t first, last;

    write_pattern(blk, 0, 124 * KiB, 0x5a);
    first = host_offset(blk, 0);
    last = host_offset(blk, 123 * KiB);
    ck_assert_uint_eq(last - first, 123 * KiB);
    /* 1 KiB clusters, 64-bit refcounts: 128 clusters a block */
    ck_assert_uint_lt(first >> 10, 128);
    ck_assert_uint_ge(last >> 10, 128);
    ck_assert_uint_eq(s->refcount_table[1] & REFT_OFFSET_MASK,
                      last + 1024);
    check_refblocks_counted(blk);
    expect_pattern(blk, 0, 124 * KiB, 0x5a);
    blk_unref(blk);
    qemu_img_check(img);
}
END_TEST

static Suite *qcow2_refblock_suite(void)
{
    Suite *s = suite_create("qcow2-refblock");
    TCase *tc = tcase_create("qcow2-refblock");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* the old placement looped for ever on the 512-byte case */
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_large_request_small_refblocks, 0, 2);
    tcase_add_test(tc, test_reftable_growth_small_refblocks);
    tcase_add_test(tc, test_refblock_after_the_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_refblock_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
