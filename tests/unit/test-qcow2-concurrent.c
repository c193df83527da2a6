/*
 * qcow2 under concurrent requests: allocating writes drop s->lock for their
 * data write (see the locking rules at the top of block/qcow2.c), so these
 * tests run many coroutines against one image at once and check that
 *
 * - two allocating writes to different clusters really are in flight at
 *   the same time (a blkdebug break point holds the first one's data
 *   write; the second completes meanwhile);
 * - two allocating writes to the same cluster end up with one allocation
 *   holding both halves' data (the second waits for the first's record);
 * - a discard that overlaps an allocation in flight waits for it (else it
 *   would free the cluster the allocation replaces a second time);
 * - an I/O error on one allocation's data write, while another is in
 *   flight, leaves a consistent image; corruption detected meanwhile makes
 *   the allocation fail without touching metadata;
 * - a write that needs a new L2 table does not flush the file: the L1
 *   entry is written at the next flush (a crash before leaks, never
 *   corrupts), also when the L1 table grows meanwhile;
 * - random writes (full, partial with copy-on-write, across L2 tables),
 *   write zeroes, discards, compressed writes and reads from 16 coroutines
 *   at once, with small clusters and the smallest L2/refcount caches (so
 *   tables are evicted while writes are in flight), match a flat
 *   in-memory model.  Requests in flight at the same time never share a
 *   byte (the result would be either order), but often share a cluster.
 *
 * Every image must then pass Debian's `qemu-img check` (skipped when not
 * installed) and compare equal to the model with `qemu-img compare`.
 * QCOW2_CONC_SEED=N changes the random seeds.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "test-util.h"
#include <check.h>
#include <sys/wait.h>

static char *tmpdir;
static bool have_qemu;
static unsigned seed_base;

static void setup(void)
{
    g_autofree char *qi = g_find_program_in_path("qemu-img");
    const char *seed = g_getenv("QCOW2_CONC_SEED");

    qemu_init_main_loop();
    bdrv_init();
    have_qemu = qi != NULL;
    seed_base = seed ? (unsigned)g_ascii_strtoull(seed, NULL, 10) : 0;
    tmpdir = g_dir_make_tmp("test-qcow2-conc-XXXXXX", NULL);
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

/* qemu-img check: no corruption and no leaked cluster */
static void qemu_check_clean(const char *path)
{
    g_autofree char *out = NULL;
    int st;

    if (!have_qemu) {
        return;
    }
    st = test_run_cmd(&out, "qemu-img check -f qcow2 '%s'", path);
    ck_assert_msg(st == 0, "qemu-img check exit %d: %s", st, out);
    ck_assert_msg(strstr(out, "No errors were found"), "%s", out);
}

static void qemu_compare_raw(const char *img, const uint8_t *ref,
                             int64_t size)
{
    g_autofree char *raw = tpath("ref.raw");
    g_autofree char *out = NULL;
    int st;

    if (!have_qemu) {
        return;
    }
    ck_assert(g_file_set_contents(raw, (const char *)ref, size, NULL));
    st = test_run_cmd(&out,
                      "qemu-img compare -f qcow2 -F raw '%s' '%s'", img, raw);
    ck_assert_msg(st == 0, "qemu-img compare exit %d: %s", st, out);
}

static void create(const char *path, int64_t size, int64_t cluster_size)
{
    g_autoptr(json_t) opts = json_pack("{s:I, s:I}", "size",
                                       (json_int_t)size, "cluster_size",
                                       (json_int_t)cluster_size);
    Error *err = NULL;
    int ret = bdrv_create(&bdrv_qcow2, path, opts, &err);

    if (err) {
        error_report_err(err);
    }
    ck_assert_int_eq(ret, 0);
}

/*
 * The image through qcow2 over blkdebug (@rules: extra blkdebug options,
 * "" for none) over the file, with the smallest caches if @tiny_cache.
 */
static BlockBackend *open_img(const char *path, const char *rules,
                              bool tiny_cache)
{
    g_autofree char *s = g_strdup_printf(
        "{\"driver\":\"qcow2\",\"discard\":\"unmap\",%s"
        "\"file\":{\"driver\":\"blkdebug\",%s"
        "\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
        tiny_cache ? "\"l2-cache-size\":1,\"refcount-cache-size\":1," : "",
        rules, path);
    g_autoptr(json_t) o = NULL;
    json_error_t jerr;
    Error *err = NULL;
    BlockDriverState *bs;
    BlockBackend *blk;

    o = json_loads(s, 0, &jerr);
    ck_assert_msg(o != NULL, "bad json %s", s);
    bs = bdrv_open(o, &err);
    ck_assert_msg(bs != NULL, "open %s: %s", s,
                  err ? error_get_pretty(err) : "");
    blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                  BLK_PERM_RESIZE, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    bdrv_unref(bs);
    return blk;
}

static BDRVQcow2State *qcow2_state(BlockBackend *blk)
{
    return blk_bs(blk)->opaque;
}

static unsigned allocs_in_flight(BlockBackend *blk)
{
    Qcow2InFlightAlloc *a;
    unsigned n = 0;

    for (a = qcow2_state(blk)->allocs_in_flight; a; a = a->next) {
        n++;
    }
    return n;
}

static int64_t file_length(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/*
 * Run the event loop until *@flag is set or @ms milliseconds passed;
 * returns *@flag.  (Non-blocking polls: a request held at a break point
 * leaves nothing to wait for.)
 */
static bool poll_until(bool *flag, int ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

    while (!*flag && g_get_monotonic_time() < deadline) {
        if (!aio_poll(qemu_get_aio_context(), false)) {
            g_usleep(50);
        }
    }
    return *flag;
}

static void wait_suspended(BlockBackend *blk, const char *tag)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (!bdrv_debug_is_suspended(blk_bs(blk), tag)) {
        ck_assert_msg(g_get_monotonic_time() < deadline,
                      "no request reached break point %s", tag);
        if (!aio_poll(qemu_get_aio_context(), false)) {
            g_usleep(50);
        }
    }
}

/* ---- one request in a coroutine ---- */

typedef enum {
    OP_WRITE,
    OP_ZERO,
    OP_DISCARD,
    OP_READ,
    OP_COMPRESSED,
} OpKind;

typedef struct Op {
    BlockBackend *blk;
    OpKind kind;
    int64_t offset, bytes;
    uint8_t *buf;
    BdrvRequestFlags flags;
    bool done;
    int ret;
} Op;

static int coroutine_fn op_run(Op *op)
{
    QEMUIOVector qiov;

    switch (op->kind) {
    case OP_WRITE:
    case OP_COMPRESSED:
        qemu_iovec_init_buf(&qiov, op->buf, op->bytes);
        return blk_co_pwritev(op->blk, op->offset, op->bytes, &qiov,
                              op->kind == OP_COMPRESSED ?
                              BDRV_REQ_WRITE_COMPRESSED : 0);
    case OP_ZERO:
        return blk_co_pwrite_zeroes(op->blk, op->offset, op->bytes,
                                    op->flags);
    case OP_DISCARD:
        return blk_co_pdiscard(op->blk, op->offset, op->bytes);
    default:
        qemu_iovec_init_buf(&qiov, op->buf, op->bytes);
        return blk_co_preadv(op->blk, op->offset, op->bytes, &qiov, 0);
    }
}

static void coroutine_fn op_entry(void *opaque)
{
    Op *op = opaque;

    op->ret = op_run(op);
    op->done = true;
}

static void op_start(Op *op, BlockBackend *blk, OpKind kind, int64_t offset,
                     int64_t bytes, uint8_t *buf)
{
    *op = (Op) { .blk = blk, .kind = kind, .offset = offset,
                 .bytes = bytes, .buf = buf };
    qemu_coroutine_enter(qemu_coroutine_create(op_entry, op));
}

static void op_finish(Op *op, int expect)
{
    ck_assert_msg(poll_until(&op->done, 10000), "request at %" PRId64
                  " did not complete", op->offset);
    ck_assert_int_eq(op->ret, expect);
}

static void verify(BlockBackend *blk, const uint8_t *ref, int64_t size)
{
    g_autofree uint8_t *buf = g_malloc(size);
    int64_t i;

    ck_assert_int_eq(blk_pread(blk, 0, size, buf, 0), 0);
    for (i = 0; i < size && buf[i] == ref[i]; i++) {
        /* find the first difference */
    }
    ck_assert_msg(i == size, "image content differs at %" PRId64
                  " (0x%02x, expected 0x%02x)", i, i < size ? buf[i] : 0,
                  i < size ? ref[i] : 0);
}

#define CS (64 * KiB)

/* ---- two allocating writes in flight at once ---- */

START_TEST(test_allocations_in_parallel)
{
    g_autofree char *img = tpath("par.qcow2");
    int64_t size = 4 * MiB;
    g_autofree uint8_t *ref = g_malloc0(size);
    g_autofree uint8_t *got = g_malloc(CS);
    BlockBackend *blk;
    Op w1, w2, rd;

    create(img, size, CS);
    blk = open_img(img, "", false);
    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "A"),
                     0);
    memset(ref, 0x11, CS);
    op_start(&w1, blk, OP_WRITE, 0, CS, ref);
    wait_suspended(blk, "A");

    /* another cluster: allocated, written and mapped meanwhile */
    memset(ref + 5 * CS + 100, 0x22, 1000);
    op_start(&w2, blk, OP_WRITE, 5 * CS + 100, 1000, ref + 5 * CS + 100);
    ck_assert_msg(poll_until(&w2.done, 5000), "the second allocating write "
                  "waited for the first one's data write");
    ck_assert_int_eq(w2.ret, 0);
    ck_assert(!w1.done);
    ck_assert_uint_eq(allocs_in_flight(blk), 1);

    /* a read of the first cluster still sees the old mapping */
    memset(got, 0xff, CS);
    op_start(&rd, blk, OP_READ, 0, CS, got);
    op_finish(&rd, 0);
    ck_assert(buffer_is_zero(got, CS));

    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "A"), 0);
    op_finish(&w1, 0);
    ck_assert_uint_eq(allocs_in_flight(blk), 0);
    verify(blk, ref, size);
    blk_unref(blk);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, size);
}
END_TEST

/* ---- two allocating writes to the two halves of one cluster ---- */

START_TEST(test_same_cluster_one_allocation)
{
    g_autofree char *img = tpath("same.qcow2");
    int64_t size = 4 * MiB, len0;
    g_autofree uint8_t *ref = g_malloc0(size);
    BlockBackend *blk;
    Op w1, w2;

    create(img, size, CS);
    blk = open_img(img, "", false);
    /* the L2 table exists: what follows allocates data clusters only */
    memset(ref, 0x01, CS);
    ck_assert_int_eq(blk_pwrite(blk, 0, CS, ref, 0), 0);
    ck_assert_int_eq(blk_flush(blk), 0);
    len0 = file_length(img);

    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "A"),
                     0);
    memset(ref + 3 * CS, 0x33, CS / 2);
    op_start(&w1, blk, OP_WRITE, 3 * CS, CS / 2, ref + 3 * CS);
    wait_suspended(blk, "A");
    memset(ref + 3 * CS + CS / 2, 0x44, CS / 2);
    op_start(&w2, blk, OP_WRITE, 3 * CS + CS / 2, CS / 2,
             ref + 3 * CS + CS / 2);
    /* the second half waits for the first half's allocation */
    ck_assert(!poll_until(&w2.done, 300));
    ck_assert_uint_eq(allocs_in_flight(blk), 1);

    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "A"), 0);
    op_finish(&w1, 0);
    op_finish(&w2, 0);
    verify(blk, ref, size);
    blk_unref(blk);
    /* exactly one new data cluster */
    ck_assert_int_eq(file_length(img), len0 + CS);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, size);
}
END_TEST

/*
 * A discard of a cluster whose replacement is in flight (compressed ->
 * normal) waits for it: it must not free the compressed cluster that the
 * allocation frees when it links its new one.
 */
START_TEST(test_discard_waits_for_allocation)
{
    g_autofree char *img = tpath("disc.qcow2");
    int64_t size = 4 * MiB;
    g_autofree uint8_t *ref = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(CS);
    BlockBackend *blk;
    Op w1, d, z;

    create(img, size, CS);
    blk = open_img(img, "", false);
    memset(buf, 0x5a, CS);
    ck_assert_int_eq(blk_pwrite(blk, 2 * CS, CS, buf,
                                BDRV_REQ_WRITE_COMPRESSED), 0);
    ck_assert_int_eq(blk_pwrite(blk, 4 * CS, CS, buf,
                                BDRV_REQ_WRITE_COMPRESSED), 0);

    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "A"),
                     0);
    memset(buf, 0x66, 4096);
    op_start(&w1, blk, OP_WRITE, 2 * CS + 4096, 4096, buf);
    wait_suspended(blk, "A");
    op_start(&d, blk, OP_DISCARD, 2 * CS, CS, NULL);
    ck_assert(!poll_until(&d.done, 300));
    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "A"), 0);
    op_finish(&w1, 0);
    op_finish(&d, 0);
    /* the discard came second: the cluster reads as zeroes */

    /* the same for write zeroes (without unmap: keeps allocations) */
    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "B"),
                     0);
    op_start(&w1, blk, OP_WRITE, 4 * CS, 512, buf);
    wait_suspended(blk, "B");
    op_start(&z, blk, OP_ZERO, 4 * CS, CS, NULL);
    ck_assert(!poll_until(&z.done, 300));
    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "B"), 0);
    op_finish(&w1, 0);
    op_finish(&z, 0);

    ck_assert(!qcow2_state(blk)->corrupt_signalled);
    verify(blk, ref, size);
    blk_unref(blk);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, size);
}
END_TEST

/* ---- an I/O error on one data write while another is in flight ---- */

START_TEST(test_error_while_other_in_flight)
{
    g_autofree char *img = tpath("err.qcow2");
    int64_t size = 4 * MiB, host;
    g_autofree uint8_t *ref = g_malloc0(size);
    g_autofree char *rules = NULL;
    g_autofree uint8_t *lost = g_malloc(CS);
    BlockBackend *blk;
    Op w1, w2, w3;

    create(img, size, CS);
    blk = open_img(img, "", false);
    memset(ref, 0x01, CS);
    ck_assert_int_eq(blk_pwrite(blk, 0, CS, ref, 0), 0);
    blk_unref(blk);
    /* a fresh image has no holes: the next data cluster is the file end */
    host = QEMU_ALIGN_UP(file_length(img), CS);
    rules = g_strdup_printf("\"inject-error\":[{\"event\":\"write_aio\","
                            "\"errno\":5,\"offset\":%" PRId64 ","
                            "\"once\":true}],", host);
    blk = open_img(img, rules, false);

    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "A"),
                     0);
    /* w1 gets the cluster at host and its data write will fail */
    memset(lost, 0x99, CS);
    op_start(&w1, blk, OP_WRITE, 2 * CS, CS, lost);
    wait_suspended(blk, "A");
    memset(ref + 6 * CS + 300, 0x66, 5000);
    op_start(&w2, blk, OP_WRITE, 6 * CS + 300, 5000, ref + 6 * CS + 300);
    op_finish(&w2, 0);
    ck_assert(!w1.done);
    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "A"), 0);
    op_finish(&w1, -EIO);
    ck_assert_uint_eq(allocs_in_flight(blk), 0);
    ck_assert(!qcow2_state(blk)->corrupt_signalled);
    verify(blk, ref, size);

    /* the range is writable again (the rule fired once) */
    memset(ref + 2 * CS + 10, 0x77, 20000);
    op_start(&w3, blk, OP_WRITE, 2 * CS + 10, 20000, ref + 2 * CS + 10);
    op_finish(&w3, 0);
    verify(blk, ref, size);
    blk_unref(blk);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, size);
}
END_TEST

/*
 * Corruption found while an allocation's data write is in flight: the
 * allocation fails and leaves the L2 table alone (no metadata updates on
 * a corrupt image).
 */
START_TEST(test_corruption_while_in_flight)
{
    g_autofree char *img = tpath("corrupt.qcow2");
    g_autofree uint8_t *buf = g_malloc(CS);
    uint64_t be, l1_off, l2_off;
    int64_t pnum;
    BlockBackend *blk;
    Op w1, rd;
    int fd;

    create(img, 4 * MiB, CS);
    blk = open_img(img, "", false);
    memset(buf, 0x11, CS);
    ck_assert_int_eq(blk_pwrite(blk, 0, CS, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 10 * CS, CS, buf, 0), 0);
    blk_unref(blk);
    /* L2 entry of guest cluster 10 -> an unaligned host offset */
    fd = open(img, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &be, 8, QCOW2_HDR_L1_OFFSET), 8);
    l1_off = GUINT64_FROM_BE(be);
    ck_assert_int_eq(pread(fd, &be, 8, l1_off), 8);
    l2_off = GUINT64_FROM_BE(be) & L1E_OFFSET_MASK;
    be = GUINT64_TO_BE(UINT64_C(0x12345600) | QCOW_OFLAG_COPIED);
    ck_assert_int_eq(pwrite(fd, &be, 8, l2_off + 10 * 8), 8);
    close(fd);

    blk = open_img(img, "", false);
    ck_assert_int_eq(bdrv_debug_breakpoint(blk_bs(blk), "write_aio", "A"),
                     0);
    op_start(&w1, blk, OP_WRITE, 3 * CS, CS, buf);
    wait_suspended(blk, "A");
    op_start(&rd, blk, OP_READ, 10 * CS, CS, buf);
    op_finish(&rd, -EIO);
    ck_assert(qcow2_state(blk)->corrupt_signalled);
    ck_assert_int_eq(bdrv_debug_resume(blk_bs(blk), "A"), 0);
    op_finish(&w1, -EIO);
    ck_assert_uint_eq(allocs_in_flight(blk), 0);
    /* guest cluster 3 is still unallocated */
    ck_assert_int_eq(bdrv_is_allocated(blk_bs(blk), 3 * CS, CS, &pnum), 0);
    blk_unref(blk);
}
END_TEST

static uint64_t disk_l1_entry(const char *path, int index)
{
    uint64_t be;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &be, 8, QCOW2_HDR_L1_OFFSET), 8);
    ck_assert_int_eq(pread(fd, &be, 8, GUINT64_FROM_BE(be) + index * 8), 8);
    close(fd);
    return GUINT64_FROM_BE(be);
}

/*
 * A write that needs a new L2 table does not flush the file (every flush
 * fails here): the L1 entry stays in memory until the next flush.  If that
 * never succeeds, the image only leaks the table and the data clusters.
 * With a working flush, the entry is on disk afterwards.
 */
START_TEST(test_new_l2_table_lazy_l1)
{
    g_autofree char *img = tpath("lazy.qcow2");
    int64_t size = 1 * GiB;
    g_autofree uint8_t *buf = g_malloc(CS);
    g_autofree uint8_t *got = g_malloc(CS);
    g_autofree char *out = NULL;
    BlockBackend *blk;
    int st;

    create(img, size, CS);
    blk = open_img(img, "\"inject-error\":[{\"event\":\"flush_to_disk\","
                   "\"errno\":5}],", false);
    memset(buf, 0x42, CS);
    /* two L2 tables (each covers 512 MiB) */
    ck_assert_int_eq(blk_pwrite(blk, 0, CS, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 700 * MiB, CS, buf, 0), 0);
    ck_assert_int_eq(blk_pread(blk, 700 * MiB, CS, got, 0), 0);
    ck_assert(memcmp(got, buf, CS) == 0);
    ck_assert_uint_eq(disk_l1_entry(img, 0), 0);
    ck_assert_uint_eq(disk_l1_entry(img, 1), 0);
    ck_assert_int_eq(blk_flush(blk), -EIO);
    ck_assert_uint_eq(disk_l1_entry(img, 1), 0);
    blk_unref(blk);             /* its flush fails too */
    if (have_qemu) {
        /* leaked (exit 3), not corrupt (exit 2) */
        st = test_run_cmd(&out, "qemu-img check -f qcow2 '%s'", img);
        ck_assert_msg(st == 3, "qemu-img check exit %d: %s", st, out);
        ck_assert_msg(!strstr(out, "ERROR"), "%s", out);
    }

    unlink(img);
    create(img, size, CS);
    blk = open_img(img, "", false);
    ck_assert_int_eq(blk_pwrite(blk, 700 * MiB, CS, buf, 0), 0);
    ck_assert_uint_eq(disk_l1_entry(img, 1), 0);
    ck_assert_int_eq(blk_flush(blk), 0);
    ck_assert_uint_ne(disk_l1_entry(img, 1), 0);
    ck_assert_uint_eq(disk_l1_entry(img, 1),
                      qcow2_state(blk)->l1_table[1]);
    blk_unref(blk);
    blk = open_img(img, "", false);
    ck_assert_int_eq(blk_pread(blk, 700 * MiB, CS, got, 0), 0);
    ck_assert(memcmp(got, buf, CS) == 0);
    blk_unref(blk);
    qemu_check_clean(img);
}
END_TEST

/*
 * Growing the L1 table (resize) while L1 entries are only in memory: the
 * new table is written with them, after their L2 tables.
 */
START_TEST(test_l1_grow_with_lazy_entries)
{
    g_autofree char *img = tpath("grow.qcow2");
    int64_t size = 1 * MiB, big = 8 * MiB;
    g_autofree uint8_t *ref = g_malloc0(big);
    BlockBackend *blk;

    create(img, size, 512);
    blk = open_img(img, "", false);
    memset(ref + 1000, 0x31, 3000);
    memset(ref + 600 * KiB, 0x32, 5000);
    ck_assert_int_eq(blk_pwrite(blk, 1000, 3000, ref + 1000, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 600 * KiB, 5000, ref + 600 * KiB, 0),
                     0);
    ck_assert(qcow2_l1_dirty(qcow2_state(blk)));
    ck_assert_int_eq(blk_truncate(blk, big, false, &error_abort), 0);
    ck_assert(!qcow2_l1_dirty(qcow2_state(blk)));
    memset(ref + 7 * MiB, 0x33, 4096);
    ck_assert_int_eq(blk_pwrite(blk, 7 * MiB, 4096, ref + 7 * MiB, 0), 0);
    verify(blk, ref, big);
    blk_unref(blk);
    blk = open_img(img, "", false);
    verify(blk, ref, big);
    blk_unref(blk);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, big);
}
END_TEST

/* ---- random concurrent requests against a flat model ---- */

#define STRESS_WORKERS 16

typedef struct Stress {
    BlockBackend *blk;
    GRand *rand;
    uint8_t *ref;
    int64_t size, cs, l2_span;
    int ops_left;
    int running;
    /* the byte range each worker has in flight (bytes 0: none) */
    int64_t cur_off[STRESS_WORKERS], cur_len[STRESS_WORKERS];
    unsigned counts[OP_COMPRESSED + 1];
} Stress;

typedef struct Worker {
    Stress *st;
    int id;
} Worker;

static bool range_busy(Stress *st, int self, int64_t off, int64_t len)
{
    int i;

    for (i = 0; i < STRESS_WORKERS; i++) {
        if (i != self && st->cur_len[i] && off < st->cur_off[i] +
            st->cur_len[i] && st->cur_off[i] < off + len) {
            return true;
        }
    }
    return false;
}

/* a random range, often in a cluster another worker is writing */
static void pick_range(Stress *st, int self, OpKind kind, int64_t *off,
                       int64_t *len)
{
    GRand *r = st->rand;
    int64_t cs = st->cs;

    do {
        int mode = g_rand_int_range(r, 0, 10);

        if (kind == OP_COMPRESSED) {
            *off = g_rand_int_range(r, 0, st->size / cs) * cs;
            *len = cs;
        } else if (mode < 3) {
            /* inside a cluster that someone has in flight */
            int j = g_rand_int_range(r, 0, STRESS_WORKERS);
            int64_t c = QEMU_ALIGN_DOWN(st->cur_off[j], cs);

            *off = c + g_rand_int_range(r, 0, cs);
            *len = 1 + g_rand_int_range(r, 0, cs / 2);
        } else if (mode < 5) {
            /* across an L2 table boundary */
            int64_t b = g_rand_int_range(r, 1, st->size / st->l2_span) *
                        st->l2_span;

            *off = b - g_rand_int_range(r, 1, 2 * cs);
            *len = b - *off + g_rand_int_range(r, 1, 2 * cs);
        } else {
            *off = g_rand_int_range(r, 0, st->size);
            *len = 1 + g_rand_int_range(r, 0, 3 * cs);
        }
        *len = MIN(*len, st->size - *off);
    } while (*len <= 0 || range_busy(st, self, *off, *len));
}

static void coroutine_fn worker_entry(void *opaque)
{
    Worker *w = opaque;
    Stress *st = w->st;
    GRand *r = st->rand;

    while (st->ops_left > 0) {
        int k = g_rand_int_range(r, 0, 100);
        OpKind kind = k < 50 ? OP_WRITE : k < 60 ? OP_ZERO :
                      k < 70 ? OP_DISCARD : k < 75 ? OP_COMPRESSED : OP_READ;
        g_autofree uint8_t *buf = NULL;
        int64_t off, len, i;
        Op op;

        st->ops_left--;
        pick_range(st, w->id, kind, &off, &len);
        st->cur_off[w->id] = off;
        st->cur_len[w->id] = len;
        buf = g_malloc(len);
        if (kind == OP_COMPRESSED) {
            /* compressible */
            memset(buf, g_rand_int_range(r, 1, 256), len);
            buf[g_rand_int_range(r, 0, len)] = 0;
        } else {
            for (i = 0; i < len; i++) {
                buf[i] = g_rand_int_range(r, 1, 256);
            }
        }
        op = (Op) { .blk = st->blk, .kind = kind, .offset = off,
                    .bytes = len, .buf = buf };
        if (kind == OP_ZERO && g_rand_boolean(r)) {
            op.flags = BDRV_REQ_MAY_UNMAP;
        }
        op.ret = op_run(&op);
        ck_assert_msg(op.ret == 0, "op %d at %" PRId64 "+%" PRId64
                      ": %s", kind, off, len, strerror(-op.ret));
        switch (kind) {
        case OP_WRITE:
        case OP_COMPRESSED:
            memcpy(st->ref + off, buf, len);
            break;
        case OP_ZERO:
            memset(st->ref + off, 0, len);
            break;
        case OP_DISCARD: {
            /* whole clusters inside the range read as zero */
            int64_t a = QEMU_ALIGN_UP(off, st->cs);
            int64_t e = QEMU_ALIGN_DOWN(off + len, st->cs);

            if (a < e) {
                memset(st->ref + a, 0, e - a);
            }
            break;
        }
        default:
            for (i = 0; i < len && buf[i] == st->ref[off + i]; i++) {
                /* first difference */
            }
            ck_assert_msg(i == len, "read at %" PRId64 " differs at +%"
                          PRId64 " (0x%02x, expected 0x%02x)", off, i,
                          i < len ? buf[i] : 0,
                          i < len ? st->ref[off + i] : 0);
            break;
        }
        st->counts[kind]++;
        st->cur_len[w->id] = 0;
    }
    st->running--;
}

static void do_stress(int64_t cs, int64_t size, int nops, unsigned seed)
{
    g_autofree char *img = tpath("stress.qcow2");
    g_autofree uint8_t *ref = g_malloc0(size);
    Worker workers[STRESS_WORKERS];
    unsigned max_in_flight = 0;
    Stress st = {
        .ref = ref, .size = size, .cs = cs,
        .l2_span = (cs / 8) * cs, .ops_left = nops,
        .rand = g_rand_new_with_seed(seed + seed_base),
    };
    int i;

    ck_assert_int_eq(size % st.l2_span, 0);
    ck_assert_int_ge(size / st.l2_span, 8);
    create(img, size, cs);
    st.blk = open_img(img, "", true);
    /* the caches hold 4 tables each: far fewer than the image needs */
    ck_assert_int_eq(qcow2_cache_num_tables(
                         qcow2_state(st.blk)->l2_table_cache), 4);
    for (i = 0; i < STRESS_WORKERS; i++) {
        workers[i] = (Worker) { &st, i };
        st.running++;
        qemu_coroutine_enter(qemu_coroutine_create(worker_entry,
                                                   &workers[i]));
    }
    while (st.running) {
        aio_poll(qemu_get_aio_context(), true);
        max_in_flight = MAX(max_in_flight, allocs_in_flight(st.blk));
    }
    if (g_getenv("QCOW2_CONC_VERBOSE")) {
        printf("cs %" PRId64 ": %u writes %u zero %u discard %u read %u "
               "compressed, max %u allocations in flight\n", cs,
               st.counts[OP_WRITE], st.counts[OP_ZERO],
               st.counts[OP_DISCARD], st.counts[OP_READ],
               st.counts[OP_COMPRESSED], max_in_flight);
    }
    /* allocations really overlapped in time */
    ck_assert_uint_ge(max_in_flight, 2);
    ck_assert_uint_gt(st.counts[OP_WRITE], 0);
    ck_assert_uint_gt(st.counts[OP_READ], 0);
    ck_assert(!qcow2_state(st.blk)->corrupt_signalled);
    verify(st.blk, ref, size);
    ck_assert_int_eq(blk_flush(st.blk), 0);
    blk_unref(st.blk);
    g_rand_free(st.rand);

    st.blk = open_img(img, "", false);
    verify(st.blk, ref, size);
    blk_unref(st.blk);
    qemu_check_clean(img);
    qemu_compare_raw(img, ref, size);
}

START_TEST(test_stress)
{
    static const struct {
        int64_t cs, size;
        int nops;
    } cfg[] = {
        { 512, 1 * MiB, 1500 },         /* 32 L2 tables of 32 KiB */
        { 4 * KiB, 16 * MiB, 1200 },    /* 8 L2 tables of 2 MiB */
        { 512, 512 * KiB, 1500 },       /* denser: more shared clusters */
    };

    do_stress(cfg[_i].cs, cfg[_i].size, cfg[_i].nops, 100 + _i);
}
END_TEST

static Suite *qcow2_conc_suite(void)
{
    Suite *s = suite_create("qcow2-concurrent");
    TCase *tc = tcase_create("qcow2-concurrent");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_allocations_in_parallel);
    tcase_add_test(tc, test_same_cluster_one_allocation);
    tcase_add_test(tc, test_discard_waits_for_allocation);
    tcase_add_test(tc, test_error_while_other_in_flight);
    tcase_add_test(tc, test_corruption_while_in_flight);
    tcase_add_test(tc, test_new_l2_table_lazy_l1);
    tcase_add_test(tc, test_l1_grow_with_lazy_entries);
    tcase_add_loop_test(tc, test_stress, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_conc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
