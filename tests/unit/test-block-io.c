/*
 * Unit tests for the request path (block/io.c, block/block-status.c):
 * tracked/serialising ordering, before-write notifiers, write hooks,
 * alignment RMW, max_transfer splitting, detect-zeroes, block status
 * through a backing chain, drain.
 *
 * A test driver ("test-mem") keeps the image in memory, yields to the
 * event loop on every request (so requests really overlap) and can hold
 * requests at a gate; a test format ("test-cow") allocates per 64 KiB
 * cluster and has a backing file.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include <check.h>
#include "test-util.h"

#define IMG_SIZE (1 * MiB)
#define CLUSTER  (64 * KiB)

typedef struct MemState {
    uint8_t *buf;
    int64_t size;
    uint64_t align, max_transfer;
    bool gate_closed;
    CoQueue gate;
} MemState;

/* log of driver calls: "r:off:len", "w:off:len", "z:...", "d:..." */
static GPtrArray *drv_log;

static void log_call(const char *op, int64_t off, int64_t len)
{
    g_ptr_array_add(drv_log, g_strdup_printf("%s:%" PRId64 ":%" PRId64, op,
                                             off, len));
}

static int mem_open(BlockDriverState *bs, json_t *options, int flags,
                    Error **errp)
{
    MemState *s = bs->opaque;
    uint64_t size = IMG_SIZE;

    if (!bdrv_opt_get_size(options, "size", &size, NULL, errp) ||
        !bdrv_opt_get_size(options, "align", &s->align, NULL, errp) ||
        !bdrv_opt_get_size(options, "max-transfer", &s->max_transfer, NULL,
                           errp)) {
        return -EINVAL;
    }
    s->size = size;
    s->buf = g_malloc0(size);
    qemu_co_queue_init(&s->gate);
    return 0;
}

static void mem_close(BlockDriverState *bs)
{
    MemState *s = bs->opaque;

    g_free(s->buf);
}

static void mem_refresh_limits(BlockDriverState *bs, Error **errp)
{
    MemState *s = bs->opaque;

    if (s->align) {
        bs->bl.request_alignment = s->align;
    }
    bs->bl.max_transfer = s->max_transfer;
}

static void coroutine_fn mem_wait(MemState *s)
{
    /* complete asynchronously, like real I/O */
    aio_co_schedule(qemu_get_aio_context(), qemu_coroutine_self());
    qemu_coroutine_yield();
    while (s->gate_closed) {
        qemu_co_queue_wait(&s->gate, NULL);
    }
}

static int coroutine_fn mem_preadv(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   BdrvRequestFlags flags)
{
    MemState *s = bs->opaque;

    log_call("r", offset, bytes);
    ck_assert(QEMU_IS_ALIGNED(offset | bytes, bs->bl.request_alignment));
    mem_wait(s);
    qemu_iovec_from_buf(qiov, 0, s->buf + offset, bytes);
    return 0;
}

static int coroutine_fn mem_pwritev(BlockDriverState *bs, int64_t offset,
                                    int64_t bytes, QEMUIOVector *qiov,
                                    BdrvRequestFlags flags)
{
    MemState *s = bs->opaque;

    log_call("w", offset, bytes);
    ck_assert(QEMU_IS_ALIGNED(offset | bytes, bs->bl.request_alignment));
    if (s->max_transfer) {
        ck_assert_int_le(bytes, s->max_transfer);
    }
    mem_wait(s);
    qemu_iovec_to_buf(qiov, 0, s->buf + offset, bytes);
    return 0;
}

static int coroutine_fn mem_pwrite_zeroes(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes,
                                          BdrvRequestFlags flags)
{
    MemState *s = bs->opaque;

    log_call("z", offset, bytes);
    mem_wait(s);
    memset(s->buf + offset, 0, bytes);
    return 0;
}

static int coroutine_fn mem_pdiscard(BlockDriverState *bs, int64_t offset,
                                     int64_t bytes)
{
    log_call("d", offset, bytes);
    return 0;
}

static int coroutine_fn mem_flush_to_disk(BlockDriverState *bs)
{
    log_call("f", 0, 0);
    return 0;
}

static int64_t coroutine_fn mem_getlength(BlockDriverState *bs)
{
    return ((MemState *)bs->opaque)->size;
}

static BlockDriver bdrv_test_mem = {
    .format_name = "test-mem",
    .instance_size = sizeof(MemState),
    .bdrv_open = mem_open,
    .bdrv_close = mem_close,
    .bdrv_refresh_limits = mem_refresh_limits,
    .bdrv_co_preadv = mem_preadv,
    .bdrv_co_pwritev = mem_pwritev,
    .bdrv_co_pwrite_zeroes = mem_pwrite_zeroes,
    .bdrv_co_pdiscard = mem_pdiscard,
    .bdrv_co_flush_to_disk = mem_flush_to_disk,
    .bdrv_co_getlength = mem_getlength,
};

/* ---- test-cow: cluster allocation map over its file, with backing ---- */

typedef struct CowState {
    uint64_t allocated;      /* bit per cluster */
    int64_t size;
} CowState;

static int cow_open(BlockDriverState *bs, json_t *options, int flags,
                    Error **errp)
{
    CowState *s = bs->opaque;
    uint64_t alloc = 0;

    if (!bdrv_opt_get_uint(options, "alloc", &alloc, NULL, errp)) {
        return -EINVAL;
    }
    s->allocated = alloc;
    if (!bdrv_open_child(bs, options, "file", BDRV_CHILD_IMAGE |
                         BDRV_CHILD_PRIMARY, false, errp)) {
        return -EINVAL;
    }
    s->size = bdrv_getlength(bs->file->bs);
    return 0;
}

static int coroutine_fn cow_preadv(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   BdrvRequestFlags flags)
{
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn cow_block_status(BlockDriverState *bs, bool want_zero,
                                         int64_t offset, int64_t bytes,
                                         int64_t *pnum, int64_t *map,
                                         BlockDriverState **file)
{
    CowState *s = bs->opaque;
    int64_t c = offset / CLUSTER;
    bool alloc = s->allocated & (1ULL << c);
    int64_t end = offset;

    while (end < offset + bytes &&
           !!(s->allocated & (1ULL << (end / CLUSTER))) == alloc) {
        end = QEMU_ALIGN_DOWN(end, CLUSTER) + CLUSTER;
    }
    *pnum = MIN(end, offset + bytes) - offset;
    *map = offset;
    *file = bs->file->bs;
    return alloc ? BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID : 0;
}

static int64_t coroutine_fn cow_getlength(BlockDriverState *bs)
{
    return ((CowState *)bs->opaque)->size;
}

static BlockDriver bdrv_test_cow = {
    .format_name = "test-cow",
    .instance_size = sizeof(CowState),
    .is_format = true,
    .supports_backing = true,
    .bdrv_open = cow_open,
    .bdrv_co_preadv = cow_preadv,
    .bdrv_co_block_status = cow_block_status,
    .bdrv_co_getlength = cow_getlength,
};

/* ---- helpers ---- */

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_test_mem);
    bdrv_register(&bdrv_test_cow);
    drv_log = g_ptr_array_new_with_free_func(g_free);
}

static void teardown(void)
{
    g_ptr_array_free(drv_log, true);
    ck_assert_ptr_null(bdrv_next_node(NULL));
}

static BlockDriverState *open_json(const char *json)
{
    json_error_t jerr;
    g_autoptr(json_t) o = json_loads(json, 0, &jerr);
    Error *err = NULL;
    BlockDriverState *bs;

    ck_assert_ptr_nonnull(o);
    bs = bdrv_open(o, &err);
    if (!bs) {
        ck_abort_msg("open failed: %s", error_get_pretty(err));
    }
    return bs;
}

static BlockBackend *blk_for(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    return blk;
}

static MemState *mem_of(BlockDriverState *bs)
{
    return bs->opaque;
}

static const char *log_at(guint i)
{
    ck_assert_uint_lt(i, drv_log->len);
    return g_ptr_array_index(drv_log, i);
}

/* ---- async requests ---- */

typedef struct Req {
    BlockBackend *blk;
    bool write;
    int64_t offset, bytes;
    BdrvRequestFlags flags;
    uint8_t *buf;
    int ret;
    bool done;
} Req;

static void coroutine_fn req_entry(void *opaque)
{
    Req *r = opaque;

    if (r->write) {
        r->ret = blk_co_pwrite(r->blk, r->offset, r->bytes, r->buf,
                               r->flags);
    } else {
        r->ret = blk_co_pread(r->blk, r->offset, r->bytes, r->buf, r->flags);
    }
    r->done = true;
}

static void req_start(Req *r, BlockBackend *blk, bool write, int64_t offset,
                      int64_t bytes, BdrvRequestFlags flags)
{
    *r = (Req) { blk, write, offset, bytes, flags, g_malloc0(bytes), -1,
                 false };
    memset(r->buf, write ? 0xab : 0, bytes);
    qemu_coroutine_enter(qemu_coroutine_create(req_entry, r));
}

/* ---- tests ---- */

START_TEST(test_serialising_overlap_waits)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *blk = blk_for(bs);
    Req a, b, c;

    mem_of(bs)->gate_closed = true;
    req_start(&a, blk, true, 0, 4096, BDRV_REQ_SERIALISING);
    test_drain_loop();
    ck_assert_uint_eq(drv_log->len, 1);      /* A is in the driver */
    req_start(&b, blk, false, 1024, 512, 0);  /* overlaps A */
    req_start(&c, blk, false, 8192, 512, 0);  /* does not */
    test_drain_loop();
    /* C reached the driver, B is waiting for A */
    ck_assert_uint_eq(drv_log->len, 2);
    ck_assert_str_eq(log_at(1), "r:8192:512");
    ck_assert(!b.done);
    mem_of(bs)->gate_closed = false;
    qemu_co_queue_restart_all(&mem_of(bs)->gate);
    test_drain_loop();
    ck_assert(a.done && b.done && c.done);
    ck_assert_int_eq(a.ret, 0);
    ck_assert_int_eq(b.ret, 0);
    ck_assert_str_eq(log_at(2), "r:1024:512");
    /* B saw A's data */
    ck_assert_int_eq(b.buf[0], 0xab);
    g_free(a.buf);
    g_free(b.buf);
    g_free(c.buf);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_serialising_blocks_later)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *blk = blk_for(bs);
    Req a, b, c;

    /* A: plain write in flight; B: serialising read waits for A; C: a
     * later plain write overlapping B waits behind the waiting B */
    mem_of(bs)->gate_closed = true;
    req_start(&a, blk, true, 0, 4096, 0);
    test_drain_loop();
    req_start(&b, blk, false, 0, 8192, BDRV_REQ_SERIALISING);
    test_drain_loop();
    ck_assert_uint_eq(drv_log->len, 1);
    req_start(&c, blk, true, 4096, 4096, 0);
    test_drain_loop();
    ck_assert_uint_eq(drv_log->len, 1);   /* C did not overtake B */
    mem_of(bs)->gate_closed = false;
    qemu_co_queue_restart_all(&mem_of(bs)->gate);
    test_drain_loop();
    ck_assert(a.done && b.done && c.done);
    ck_assert_str_eq(log_at(1), "r:0:8192");
    ck_assert_str_eq(log_at(2), "w:4096:4096");
    /* B read A's data and not C's */
    ck_assert_int_eq(b.buf[0], 0xab);
    ck_assert_int_eq(b.buf[4096], 0);
    g_free(a.buf);
    g_free(b.buf);
    g_free(c.buf);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

typedef struct TestNotifier {
    NotifierWithReturn n;
    int id;
    int ret;
    GArray *order;
    int64_t offset, bytes;
} TestNotifier;

static int test_notify(NotifierWithReturn *n, void *data)
{
    TestNotifier *t = container_of(n, TestNotifier, n);
    BdrvTrackedRequest *req = data;

    g_array_append_val(t->order, t->id);
    t->offset = req->offset;
    t->bytes = req->bytes;
    return t->ret;
}

START_TEST(test_before_write_notifiers)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *blk = blk_for(bs);
    GArray *order = g_array_new(false, false, sizeof(int));
    TestNotifier n1 = { .n.notify = test_notify, .id = 1, .order = order };
    TestNotifier n2 = { .n.notify = test_notify, .id = 2, .order = order };
    uint8_t buf[512];
    int ret;

    memset(buf, 0x11, sizeof(buf));
    bdrv_add_before_write_notifier(bs, &n1.n);
    bdrv_add_before_write_notifier(bs, &n2.n);

    ret = blk_pwrite(blk, 4096, 512, buf, 0);
    ck_assert_int_eq(ret, 0);
    ck_assert_uint_eq(order->len, 2);
    ck_assert_int_eq(g_array_index(order, int, 0), 1);
    ck_assert_int_eq(g_array_index(order, int, 1), 2);
    ck_assert_int_eq(n2.offset, 4096);
    ck_assert_int_eq(n2.bytes, 512);

    /* reads do not notify */
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    ck_assert_uint_eq(order->len, 2);

    /* zero writes and discards do */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 0, 4096, 0), 0);
    ck_assert_uint_eq(order->len, 4);

    /* an error of n1 fails the write; n2 and the driver never see it */
    n1.ret = -ENOSPC;
    g_ptr_array_set_size(drv_log, 0);
    ret = blk_pwrite(blk, 8192, 512, buf, 0);
    ck_assert_int_eq(ret, -ENOSPC);
    ck_assert_uint_eq(order->len, 5);
    ck_assert_int_eq(g_array_index(order, int, 4), 1);
    ck_assert_uint_eq(drv_log->len, 0);
    ck_assert_int_eq(mem_of(bs)->buf[8192], 0);

    /* removed notifiers are not called */
    n1.ret = 0;
    bdrv_remove_before_write_notifier(bs, &n1.n);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), 0);
    ck_assert_uint_eq(order->len, 6);
    ck_assert_int_eq(g_array_index(order, int, 5), 2);

    g_array_free(order, true);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

typedef struct HookRec {
    int calls;
    int64_t offset, bytes;
} HookRec;

static void test_hook(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *opaque)
{
    HookRec *h = opaque;

    h->calls++;
    h->offset = offset;
    h->bytes = bytes;
}

START_TEST(test_write_hooks)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\","
                                     "\"discard\":\"unmap\"}");
    BlockBackend *blk = blk_for(bs);
    HookRec h = { 0 };
    uint8_t buf[1000] = { 1 };

    bdrv_add_write_hook(bs, test_hook, &h);
    ck_assert_int_eq(blk_pwrite(blk, 100, 1000, buf, 0), 0);
    ck_assert_int_eq(h.calls, 1);
    ck_assert_int_eq(h.offset, 100);
    ck_assert_int_eq(h.bytes, 1000);
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 65536, 4096, 0), 0);
    ck_assert_int_eq(h.calls, 2);
    ck_assert_int_eq(h.offset, 65536);
    ck_assert_int_eq(blk_pdiscard(blk, 0, 8192), 0);
    ck_assert_int_eq(h.calls, 3);
    ck_assert_int_eq(h.bytes, 8192);
    ck_assert_int_eq(blk_pread(blk, 0, 1000, buf, 0), 0);
    ck_assert_int_eq(h.calls, 3);
    bdrv_remove_write_hook(bs, test_hook, &h);
    ck_assert_int_eq(blk_pwrite(blk, 100, 1000, buf, 0), 0);
    ck_assert_int_eq(h.calls, 3);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_alignment_rmw)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\","
                                     "\"align\":4096}");
    BlockBackend *blk = blk_for(bs);
    uint8_t *ref = g_malloc0(3 * 4096), *buf = g_malloc(3 * 4096);
    uint8_t pat[5000];
    int i;

    for (i = 0; i < 3 * 4096; i++) {
        mem_of(bs)->buf[i] = ref[i] = i * 7;
    }
    memset(pat, 0x5a, sizeof(pat));
    /* crosses a block boundary, unaligned at both ends */
    ck_assert_int_eq(blk_pwrite(blk, 3000, sizeof(pat), pat, 0), 0);
    memcpy(ref + 3000, pat, sizeof(pat));
    /* RMW: head block and tail block read, then one aligned write */
    ck_assert_str_eq(log_at(0), "r:0:4096");
    ck_assert_str_eq(log_at(1), "r:4096:4096");
    ck_assert_str_eq(log_at(2), "w:0:8192");
    ck_assert_int_eq(blk_pread(blk, 0, 3 * 4096, buf, 0), 0);
    ck_assert_mem_eq(buf, ref, 3 * 4096);

    /* within one block: one read, one write */
    g_ptr_array_set_size(drv_log, 0);
    ck_assert_int_eq(blk_pwrite(blk, 10, 20, pat, 0), 0);
    memcpy(ref + 10, pat, 20);
    ck_assert_uint_eq(drv_log->len, 2);
    ck_assert_str_eq(log_at(0), "r:0:4096");
    ck_assert_str_eq(log_at(1), "w:0:4096");

    /* unaligned read */
    memset(buf, 0, 100);
    ck_assert_int_eq(blk_pread(blk, 4090, 100, buf, 0), 0);
    ck_assert_mem_eq(buf, ref + 4090, 100);

    /* unaligned zero write keeps the neighbours */
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 100, 8000, 0), 0);
    memset(ref + 100, 0, 8000);
    ck_assert_int_eq(blk_pread(blk, 0, 3 * 4096, buf, 0), 0);
    ck_assert_mem_eq(buf, ref, 3 * 4096);
    g_free(ref);
    g_free(buf);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_rmw_concurrent_writes)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\","
                                     "\"align\":4096}");
    BlockBackend *blk = blk_for(bs);
    Req r[8];
    uint8_t buf[4096];
    int i;

    /* eight unaligned writes into the same block must not lose data */
    for (i = 0; i < 8; i++) {
        req_start(&r[i], blk, true, i * 512 + 1, 100, 0);
        memset(r[i].buf, 0x10 + i, 100);
    }
    test_drain_loop();
    for (i = 0; i < 8; i++) {
        ck_assert(r[i].done);
        ck_assert_int_eq(r[i].ret, 0);
        g_free(r[i].buf);
    }
    ck_assert_int_eq(blk_pread(blk, 0, 4096, buf, 0), 0);
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(buf[i * 512 + 1], 0x10 + i);
        ck_assert_int_eq(buf[i * 512 + 100], 0x10 + i);
        ck_assert_int_eq(buf[i * 512], 0);
    }
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_max_transfer_split)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\","
                                     "\"max-transfer\":4096}");
    BlockBackend *blk = blk_for(bs);
    g_autofree uint8_t *buf = g_malloc(10000);
    g_autofree uint8_t *back = g_malloc(10000);
    int i;

    for (i = 0; i < 10000; i++) {
        buf[i] = i;
    }
    ck_assert_int_eq(blk_pwrite(blk, 100, 10000, buf, 0), 0);
    ck_assert_uint_eq(drv_log->len, 3);
    ck_assert_str_eq(log_at(0), "w:100:4096");
    ck_assert_str_eq(log_at(1), "w:4196:4096");
    ck_assert_str_eq(log_at(2), "w:8292:1808");
    ck_assert_int_eq(blk_pread(blk, 100, 10000, back, 0), 0);
    ck_assert_uint_eq(drv_log->len, 6);
    ck_assert_mem_eq(buf, back, 10000);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_detect_zeroes)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\","
                                     "\"detect-zeroes\":\"on\"}");
    BlockBackend *blk = blk_for(bs);
    uint8_t zero[4096] = { 0 }, one[4096];

    memset(one, 1, sizeof(one));
    ck_assert_int_eq(blk_pwrite(blk, 0, 4096, zero, 0), 0);
    ck_assert_str_eq(log_at(0), "z:0:4096");
    ck_assert_int_eq(blk_pwrite(blk, 0, 4096, one, 0), 0);
    ck_assert_str_eq(log_at(1), "w:0:4096");
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_read_only_and_perm)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *ro = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);
    uint8_t buf[512] = { 0 };

    ck_assert(blk_insert_bs(ro, bs, &error_abort));
    /* no write permission taken: writes are refused */
    ck_assert_int_eq(blk_pwrite(ro, 0, 512, buf, 0), -EPERM);
    ck_assert_int_eq(blk_pread(ro, 0, 512, buf, 0), 0);
    /* out of range */
    ck_assert_int_eq(blk_pread(ro, -1, 512, buf, 0), -EIO);
    blk_unref(ro);
    bdrv_unref(bs);
}
END_TEST

START_TEST(test_block_status_chain)
{
    /* base allocates clusters 1 and 2, top allocates cluster 0 and 2 */
    BlockDriverState *base = open_json(
        "{\"driver\":\"test-cow\",\"node-name\":\"base\",\"alloc\":6,"
        "\"backing\":null,\"file\":{\"driver\":\"test-mem\"}}");
    BlockDriverState *top = open_json(
        "{\"driver\":\"test-cow\",\"node-name\":\"top\",\"alloc\":5,"
        "\"backing\":\"base\",\"file\":{\"driver\":\"test-mem\"}}");
    int64_t pnum, map;
    BlockDriverState *file;
    int ret, depth;

    ck_assert_ptr_eq(bdrv_backing_bs(top), base);
    ret = bdrv_block_status_above(top, NULL, 0, IMG_SIZE, &pnum, &map, &file,
                                  &depth);
    ck_assert(ret & BDRV_BLOCK_ALLOCATED);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert_int_eq(pnum, CLUSTER);
    ck_assert_int_eq(depth, 1);

    ret = bdrv_block_status_above(top, NULL, CLUSTER, IMG_SIZE - CLUSTER,
                                  &pnum, &map, &file, &depth);
    ck_assert(ret & BDRV_BLOCK_ALLOCATED);
    ck_assert_int_eq(pnum, CLUSTER);   /* narrowed to top's hole */
    ck_assert_int_eq(depth, 2);
    ck_assert_ptr_eq(file, bdrv_file_bs(base));

    /* cluster 3+: nowhere allocated; base has no backing -> zero */
    ret = bdrv_block_status_above(top, NULL, 3 * CLUSTER, CLUSTER, &pnum,
                                  NULL, NULL, &depth);
    ck_assert(!(ret & BDRV_BLOCK_ALLOCATED));
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert_int_eq(depth, 0);

    /* down to base (exclusive): cluster 1 unallocated above base */
    ret = bdrv_block_status_above(top, base, CLUSTER, CLUSTER, &pnum, NULL,
                                  NULL, &depth);
    ck_assert(!(ret & BDRV_BLOCK_ALLOCATED));
    ck_assert_int_eq(depth, 0);

    ck_assert_int_eq(bdrv_is_allocated(top, 0, IMG_SIZE, &pnum), 1);
    ck_assert_int_eq(pnum, CLUSTER);
    ck_assert_int_eq(bdrv_is_allocated(top, CLUSTER, IMG_SIZE, &pnum), 0);
    ck_assert_int_eq(pnum, CLUSTER);
    ck_assert_int_eq(bdrv_is_allocated_above(top, NULL, false, CLUSTER,
                                             CLUSTER, &pnum), 2);
    ck_assert_int_eq(bdrv_is_allocated_above(top, base, false, CLUSTER,
                                             CLUSTER, &pnum), 0);
    ck_assert_int_eq(bdrv_is_allocated_above(top, base, true, CLUSTER,
                                             CLUSTER, &pnum), 2);
    ck_assert_int_eq(bdrv_is_allocated_above(top, NULL, false, 4 * CLUSTER,
                                             CLUSTER, &pnum), 0);

    /* the backing node is in use: refcount held by top */
    ck_assert_int_eq(bdrv_get_refcnt(base), 2);
    bdrv_unref(base);
    bdrv_unref(top);
}
END_TEST

START_TEST(test_drain)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *blk = blk_for(bs);
    Req a, b;

    req_start(&a, blk, true, 0, 512, 0);
    ck_assert_uint_eq(bdrv_get_in_flight(bs), 1);
    bdrv_drained_begin(bs);
    ck_assert(a.done);
    ck_assert_uint_eq(bdrv_get_in_flight(bs), 0);
    /* new requests through the BlockBackend wait until drained_end */
    req_start(&b, blk, true, 512, 512, 0);
    test_drain_loop();
    ck_assert(!b.done);
    ck_assert_uint_eq(bdrv_get_in_flight(bs), 0);
    bdrv_drained_end(bs);
    test_drain_loop();
    ck_assert(b.done);
    ck_assert_int_eq(b.ret, 0);
    g_free(a.buf);
    g_free(b.buf);
    blk_unref(blk);
    bdrv_unref(bs);
}
END_TEST

/*
 * Closing a node flushes what was written through it (as QEMU's
 * bdrv_close): that is when a backup target becomes durable.  A node that
 * was not written since its last flush is not flushed again.
 */
START_TEST(test_close_flushes)
{
    BlockDriverState *bs = open_json("{\"driver\":\"test-mem\"}");
    BlockBackend *blk = blk_for(bs);
    uint8_t buf[512] = { 1 };

    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), 0);
    blk_unref(blk);
    ck_assert_uint_eq(drv_log->len, 1);
    bdrv_unref(bs);
    ck_assert_uint_eq(drv_log->len, 2);
    ck_assert_str_eq(log_at(0), "w:0:512");
    ck_assert_str_eq(log_at(1), "f:0:0");

    g_ptr_array_set_size(drv_log, 0);
    bs = open_json("{\"driver\":\"test-mem\"}");
    blk = blk_for(bs);
    ck_assert_int_eq(blk_pwrite(blk, 0, 512, buf, 0), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(blk_pread(blk, 0, 512, buf, 0), 0);
    blk_unref(blk);
    bdrv_unref(bs);
    ck_assert_uint_eq(drv_log->len, 3);
    ck_assert_str_eq(log_at(1), "f:0:0");
    ck_assert_str_eq(log_at(2), "r:0:512");
}
END_TEST

static Suite *block_io_suite(void)
{
    Suite *s = suite_create("block-io");
    TCase *tc = tcase_create("io");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_serialising_overlap_waits);
    tcase_add_test(tc, test_serialising_blocks_later);
    tcase_add_test(tc, test_before_write_notifiers);
    tcase_add_test(tc, test_write_hooks);
    tcase_add_test(tc, test_alignment_rmw);
    tcase_add_test(tc, test_rmw_concurrent_writes);
    tcase_add_test(tc, test_max_transfer_split);
    tcase_add_test(tc, test_detect_zeroes);
    tcase_add_test(tc, test_read_only_and_perm);
    tcase_add_test(tc, test_block_status_chain);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_close_flushes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(block_io_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
