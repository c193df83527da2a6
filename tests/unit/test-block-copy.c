/*
 * Unit tests for the copy engine (block/block-copy.c) and the
 * copy-before-write notifier (block/backup-cbw.c), without the job
 * framework: a small harness attaches the engine to a source and a target
 * opened through the real block layer (files in a temp dir, qcow2,
 * blkdebug, null-co), drives the background copy in a coroutine and fires
 * random guest writes at the source between aio_poll steps.
 *
 * The point-in-time property: whatever the interleaving, the target (or,
 * for sync=none, the snapshot read through the engine) equals the source
 * as it was when the copy started.  BLOCKD_STRESS=1 runs 200+ trials
 * instead of 24; BLOCK_COPY_TEST_SEED shifts the seeds.
 *
 * Cloning (use_clone): the tests look at what the temp dir's filesystem
 * can do (dir_can_clone) and assert either branch: on ext4/tmpfs the
 * first clone falls back and the rest is copied, on XFS/btrfs data is
 * cloned.  The "reflink" test case needs a filesystem with reflink and is
 * only registered with BLOCKD_TEST_REFLINK=1 (iotest 095 runs it with
 * TMPDIR on an XFS loop mount): alignment rules of file-posix's
 * FICLONERANGE, shared extents, point-in-time trials that clone.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "qemu/cutils.h"
#include <check.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/fiemap.h>

#define CLUSTER (64 * KiB)

static char *tmpdir;
static unsigned seed_base;

static void setup(void)
{
    const char *seed = g_getenv("BLOCK_COPY_TEST_SEED");

    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-block-copy-XXXXXX", NULL);
    seed_base = seed ? (unsigned)g_ascii_strtoull(seed, NULL, 10) : 0;
}

static void teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

    ck_assert_ptr_null(bdrv_next_node(NULL));
    ck_assert_int_eq(system(cmd), 0);
    g_free(tmpdir);
}

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockDriverState *open_json(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;
    g_autoptr(json_t) o = NULL;
    json_error_t jerr;
    Error *err = NULL;
    BlockDriverState *bs;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    o = json_loads(s, 0, &jerr);
    ck_assert_msg(o != NULL, "bad json %s", s);
    bs = bdrv_open(o, &err);
    ck_assert_msg(bs != NULL, "open %s: %s", s,
                  err ? error_get_pretty(err) : "");
    return bs;
}

static void create_raw(const char *path, int64_t size)
{
    g_autoptr(json_t) o = json_pack("{s:I}", "size", (json_int_t)size);

    ck_assert_int_eq(bdrv_create_file(path, o, &error_abort), 0);
}

static BlockDriverState *open_raw(const char *path)
{
    return open_json("{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
                     "\"filename\":\"%s\"}}", path);
}

/* Whether two files in dir can share extents (FICLONE works there). */
static bool dir_can_clone(const char *dir)
{
    g_autofree char *a = g_build_filename(dir, "clone-probe-a", NULL);
    g_autofree char *b = g_build_filename(dir, "clone-probe-b", NULL);
    char buf[4096];
    int fa, fb;
    bool ok;

    memset(buf, 0x5a, sizeof(buf));
    fa = open(a, O_RDWR | O_CREAT | O_TRUNC, 0600);
    fb = open(b, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert(fa >= 0 && fb >= 0);
    ck_assert_int_eq(pwrite(fa, buf, sizeof(buf), 0), sizeof(buf));
    ok = ioctl(fb, FICLONE, fa) == 0;
    close(fa);
    close(fb);
    unlink(a);
    unlink(b);
    return ok;
}

/* Bytes of path's extents that FIEMAP flags as shared with another file */
static int64_t shared_bytes(const char *path)
{
    enum { N = 64 };
    g_autofree struct fiemap *fm = g_malloc0(sizeof(*fm) +
                                             N * sizeof(struct fiemap_extent));
    int64_t shared = 0;
    uint64_t start = 0;
    bool last = false;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    while (!last) {
        uint32_t i;

        memset(fm, 0, sizeof(*fm));
        fm->fm_start = start;
        fm->fm_length = FIEMAP_MAX_OFFSET - start;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        fm->fm_extent_count = N;
        ck_assert_int_eq(ioctl(fd, FS_IOC_FIEMAP, fm), 0);
        if (fm->fm_mapped_extents == 0) {
            break;
        }
        for (i = 0; i < fm->fm_mapped_extents; i++) {
            struct fiemap_extent *e = &fm->fm_extents[i];

            if (e->fe_flags & FIEMAP_EXTENT_SHARED) {
                shared += e->fe_length;
            }
            last = e->fe_flags & FIEMAP_EXTENT_LAST;
            start = e->fe_logical + e->fe_length;
        }
    }
    close(fd);
    return shared;
}

static BlockBackend *blk_rw(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    return blk;
}

static void fill_random(GRand *r, uint8_t *buf, int64_t len)
{
    int64_t i;

    for (i = 0; i + 4 <= len; i += 4) {
        uint32_t v = g_rand_int(r);

        memcpy(buf + i, &v, 4);
    }
    for (; i < len; i++) {
        buf[i] = g_rand_int(r);
    }
}

static void read_all(BlockDriverState *bs, uint8_t *buf, int64_t len)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    ck_assert_int_eq(blk_pread(blk, 0, len, buf, 0), 0);
    blk_unref(blk);
}

/* ---- the harness ---- */

typedef struct Harness {
    BlockDriverState *src, *tgt;
    BlockBackend *guest;
    BdrvChild *src_child, *tgt_child;
    BlockCopyState *bcs;
    BackupCBW *cbw;
    int64_t len;
    /* target writes per cluster (write hook) */
    GArray *tgt_writes;
    int cbw_errors;
    /* background run */
    bool run_done;
    int run_ret;
    bool run_is_read;
    BlockCopyHooks hooks;
    bool stop;
    bool pause;
    int paused_count;
} Harness;

static void tgt_write_hook(BlockDriverState *bs, int64_t offset,
                           int64_t bytes, void *opaque)
{
    Harness *h = opaque;
    int64_t c;

    for (c = offset / CLUSTER; c < DIV_ROUND_UP(offset + bytes, CLUSTER);
         c++) {
        if (c < (int64_t)h->tgt_writes->len) {
            g_array_index(h->tgt_writes, int, c)++;
        }
    }
}

static void harness_cbw_error(void *opaque, int ret, bool is_read)
{
    Harness *h = opaque;

    h->cbw_errors++;
}

static void harness_init(Harness *h, BlockDriverState *src,
                         BlockDriverState *tgt, BlockCopyOptions *opts,
                         OnCbwError on_cbw_error)
{
    memset(h, 0, sizeof(*h));
    h->src = src;
    h->tgt = tgt;
    h->len = bdrv_getlength(src);
    h->guest = blk_rw(src);
    h->src_child = bdrv_root_attach_child(src, "source", "block-copy test",
                                          BDRV_CHILD_DATA,
                                          BLK_PERM_CONSISTENT_READ,
                                          BLK_PERM_ALL, NULL, &error_abort);
    h->tgt_child = bdrv_root_attach_child(tgt, "target", "block-copy test",
                                          BDRV_CHILD_DATA, BLK_PERM_WRITE,
                                          BLK_PERM_ALL, NULL, &error_abort);
    if (!opts->cluster_size) {
        opts->cluster_size = CLUSTER;
    }
    h->bcs = block_copy_state_new(h->src_child, h->tgt_child, opts,
                                  &error_abort);
    h->cbw = backup_cbw_attach(src, h->bcs, on_cbw_error, harness_cbw_error,
                               h);
    h->tgt_writes = g_array_new(false, true, sizeof(int));
    g_array_set_size(h->tgt_writes, DIV_ROUND_UP(h->len, CLUSTER));
    bdrv_add_write_hook(tgt, tgt_write_hook, h);
}

static void harness_cleanup(Harness *h)
{
    blk_drain(h->guest);
    block_copy_drain_sync(h->bcs);
    bdrv_remove_write_hook(h->tgt, tgt_write_hook, h);
    backup_cbw_detach(h->cbw);
    block_copy_state_free(h->bcs);
    blk_unref(h->guest);
    bdrv_root_unref_child(h->src_child);
    bdrv_root_unref_child(h->tgt_child);
    g_array_free(h->tgt_writes, true);
    bdrv_unref(h->src);
    bdrv_unref(h->tgt);
}

static bool h_should_stop(void *opaque)
{
    return ((Harness *)opaque)->stop;
}

static bool h_pause_pending(void *opaque)
{
    return ((Harness *)opaque)->pause;
}

static void coroutine_fn h_pause_point(void *opaque)
{
    Harness *h = opaque;

    h->paused_count++;
    while (h->pause) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 100 * SCALE_US);
    }
}

static void coroutine_fn run_entry(void *opaque)
{
    Harness *h = opaque;

    h->run_ret = block_copy_run(h->bcs, &h->hooks, &h->run_is_read);
    h->run_done = true;
}

static void harness_start_run(Harness *h)
{
    h->hooks.should_stop = h_should_stop;
    h->hooks.pause_pending = h_pause_pending;
    h->hooks.pause_point = h_pause_point;
    h->hooks.opaque = h;
    h->run_done = false;
    qemu_coroutine_enter(qemu_coroutine_create(run_entry, h));
}

static void harness_wait_run(Harness *h)
{
    while (!h->run_done) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

/* ---- guest requests ---- */

typedef struct GuestReq {
    BlockBackend *blk;
    int kind;           /* 0 write, 1 zeroes, 2 discard */
    int64_t offset, bytes;
    uint8_t *buf;
    int ret;
    bool done;
    int *pending;
} GuestReq;

static void coroutine_fn guest_entry(void *opaque)
{
    GuestReq *g = opaque;

    switch (g->kind) {
    case 0:
        g->ret = blk_co_pwrite(g->blk, g->offset, g->bytes, g->buf, 0);
        break;
    case 1:
        g->ret = blk_co_pwrite_zeroes(g->blk, g->offset, g->bytes, 0);
        break;
    default:
        g->ret = blk_co_pdiscard(g->blk, g->offset, g->bytes);
        break;
    }
    g->done = true;
    (*g->pending)--;
}

static GuestReq *guest_start(BlockBackend *blk, GRand *r, int64_t len,
                             int *pending)
{
    GuestReq *g = g_new0(GuestReq, 1);
    int64_t max = g_rand_boolean(r) ? 4096 : 3 * CLUSTER;

    g->blk = blk;
    g->offset = g_rand_int_range(r, 0, len);
    g->bytes = g_rand_int_range(r, 1, max + 1);
    g->bytes = MIN(g->bytes, len - g->offset);
    if (g_rand_boolean(r)) {
        /* cluster-aligned now and then */
        g->offset = QEMU_ALIGN_DOWN(g->offset, 4096);
        g->bytes = MIN(QEMU_ALIGN_UP(g->bytes, 4096), len - g->offset);
    }
    g->kind = g_rand_int_range(r, 0, 10) < 8 ? 0 :
              g_rand_int_range(r, 1, 3);
    g->buf = g_malloc(g->bytes);
    fill_random(r, g->buf, g->bytes);
    g->pending = pending;
    (*pending)++;
    qemu_coroutine_enter(qemu_coroutine_create(guest_entry, g));
    return g;
}

static void guest_free(gpointer p)
{
    GuestReq *g = p;

    ck_assert(g->done);
    ck_assert_int_eq(g->ret, 0);
    g_free(g->buf);
    g_free(g);
}

/* ---- snapshot readers ---- */

typedef struct SnapRead {
    BlockCopyState *bcs;
    int64_t offset, bytes;
    uint8_t *buf;
    const uint8_t *expect;
    int ret;
    int *pending;
} SnapRead;

static void coroutine_fn snap_entry(void *opaque)
{
    SnapRead *sr = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, sr->buf, sr->bytes);
    sr->ret = block_copy_snapshot_read(sr->bcs, sr->offset, sr->bytes,
                                       &qiov);
    ck_assert_int_eq(sr->ret, 0);
    ck_assert_msg(memcmp(sr->buf, sr->expect + sr->offset, sr->bytes) == 0,
                  "snapshot read %" PRId64 "+%" PRId64 " differs",
                  sr->offset, sr->bytes);
    (*sr->pending)--;
    g_free(sr->buf);
    g_free(sr);
}

static void snap_start(BlockCopyState *bcs, GRand *r, int64_t len,
                       const uint8_t *expect, int *pending)
{
    SnapRead *sr = g_new0(SnapRead, 1);

    sr->bcs = bcs;
    sr->offset = g_rand_int_range(r, 0, len);
    sr->bytes = g_rand_int_range(r, 1, 2 * CLUSTER);
    sr->bytes = MIN(sr->bytes, len - sr->offset);
    sr->buf = g_malloc(sr->bytes);
    sr->expect = expect;
    sr->pending = pending;
    (*pending)++;
    qemu_coroutine_enter(qemu_coroutine_create(snap_entry, sr));
}

/* ---- point-in-time trials ---- */

typedef enum { SYNC_FULL, SYNC_TOP, SYNC_NONE } TrialSync;

/* Random image content: data, zero-written data, holes. */
static void populate(BlockBackend *blk, GRand *r, int64_t len,
                     int64_t granule)
{
    g_autofree uint8_t *buf = g_malloc(granule);
    int64_t off;

    for (off = 0; off < len; off += granule) {
        int64_t n = MIN(granule, len - off);
        int what = g_rand_int_range(r, 0, 4);

        if (what == 0) {
            continue;                           /* hole / unallocated */
        } else if (what == 1) {
            memset(buf, 0, n);                  /* zeroes as data */
        } else {
            fill_random(r, buf, n);
        }
        ck_assert_int_eq(blk_pwrite(blk, off, n, buf, 0), 0);
    }
}

/* One trial; returns the bytes it cloned. */
/*
 * A trial's disk length: whole and partial job clusters.  A qcow2 source
 * (sync=top) is a multiple of 512 bytes, and the raw target must have the
 * same length: nothing may be written past a node's end.
 */
static int64_t trial_len(GRand *r, TrialSync sync)
{
    int64_t len = g_rand_int_range(r, 1, 24) * CLUSTER +
                  (g_rand_boolean(r) ? g_rand_int_range(r, 1, CLUSTER) : 0);

    return sync == SYNC_TOP ? QEMU_ALIGN_UP(len, 512) : len;
}

static uint64_t run_trial(unsigned seed, TrialSync sync, bool use_buffer,
                          bool clone)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed + seed_base);
    g_autofree char *src_path = tpath("src.img");
    g_autofree char *base_path = tpath("base.img");
    g_autofree char *tgt_path = tpath("tgt.img");
    int64_t len = trial_len(r, sync);
    g_autofree uint8_t *snap = g_malloc(len);
    g_autofree uint8_t *expect = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *top_alloc = g_malloc0(DIV_ROUND_UP(len, CLUSTER));
    g_autoptr(GPtrArray) reqs = g_ptr_array_new_with_free_func(guest_free);
    BlockCopyOptions opts = { 0 };
    BlockDriverState *src, *tgt;
    Harness h;
    int pending = 0, snap_pending = 0, nwrites, i, twice = 0;
    int64_t c;
    uint64_t cloned;

    unlink(src_path);
    unlink(base_path);
    if (sync == SYNC_TOP) {
        /* qcow2 overlay (4 KiB clusters: partial job clusters) on raw */
        g_autofree char *create_opts = NULL;
        g_autoptr(json_t) o = NULL;
        BlockBackend *b;

        create_raw(base_path, len);
        b = blk_rw(open_raw(base_path));
        bdrv_unref(blk_bs(b));
        populate(b, r, len, 16 * KiB);
        blk_unref(b);
        create_opts = g_strdup_printf("{\"size\":%" PRId64 ",\"backing_file\":"
                                      "\"%s\",\"backing_fmt\":\"raw\","
                                      "\"cluster_size\":4096}", len,
                                      base_path);
        o = json_loads(create_opts, 0, NULL);
        ck_assert_int_eq(bdrv_create(&bdrv_qcow2, src_path, o, &error_abort),
                         0);
        src = open_json("{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
                        "\"filename\":\"%s\"}}", src_path);
        b = blk_rw(src);
        populate(b, r, len, 12 * KiB);
        blk_unref(b);
        for (c = 0; c < DIV_ROUND_UP(len, CLUSTER); c++) {
            int64_t end = MIN((c + 1) * CLUSTER, len), pos, pnum;

            for (pos = c * CLUSTER; pos < end; pos += pnum) {
                int ret = bdrv_is_allocated(src, pos, end - pos, &pnum);

                ck_assert_int_ge(ret, 0);
                top_alloc[c] |= ret;
            }
        }
    } else {
        BlockBackend *b;

        create_raw(src_path, len);
        src = open_raw(src_path);
        b = blk_rw(src);
        populate(b, r, len, g_rand_int_range(r, 1, 5) * 16 * KiB);
        blk_unref(b);
    }
    unlink(tgt_path);
    create_raw(tgt_path, len);
    tgt = open_raw(tgt_path);
    read_all(src, snap, len);

    opts.skip_unallocated = sync == SYNC_TOP;
    opts.max_workers = g_rand_int_range(r, 1, 9);
    opts.max_chunk = g_rand_int_range(r, 1, 5) * CLUSTER;
    opts.use_copy_range = sync != SYNC_TOP && g_rand_boolean(r);
    opts.use_clone = clone;
    if (use_buffer) {
        /* small limits force the synchronous fallback */
        opts.cbw_buffer_limit = g_rand_boolean(r) ? 4 * MiB :
                                g_rand_int_range(r, 1, 4) * CLUSTER;
    }
    harness_init(&h, src, tgt, &opts, ON_CBW_ERROR_BREAK_GUEST_WRITE);
    if (sync != SYNC_NONE) {
        harness_start_run(&h);
    }

    nwrites = g_rand_int_range(r, 5, 60);
    for (i = 0; i < nwrites || (sync != SYNC_NONE && !h.run_done); i++) {
        if (i < nwrites) {
            g_ptr_array_add(reqs, guest_start(h.guest, r, len, &pending));
        }
        if (sync != SYNC_TOP && g_rand_int_range(r, 0, 4) == 0) {
            snap_start(h.bcs, r, len, snap, &snap_pending);
        }
        int steps = g_rand_int_range(r, 0, 4);

        while (steps-- > 0) {
            bool busy = pending || snap_pending ||
                        (sync != SYNC_NONE && !h.run_done);

            aio_poll(qemu_get_aio_context(), busy && g_rand_boolean(r));
        }
        if (i > 100000) {
            ck_abort_msg("trial %u does not finish", seed);
        }
    }
    while (pending > 0 || snap_pending > 0) {
        aio_poll(qemu_get_aio_context(), true);
    }
    if (sync != SYNC_NONE) {
        harness_wait_run(&h);
        ck_assert_int_eq(h.run_ret, 0);
        ck_assert(hbitmap_empty(block_copy_dirty_bitmap(h.bcs)));
    }
    block_copy_drain_sync(h.bcs);
    ck_assert_int_eq(h.cbw_errors, 0);

    /*
     * Every cluster reached the target at most once.  A clone that failed
     * with -ENOTSUP counts as a target write too (write hooks run for
     * failed requests): its range, at most max_chunk, was then copied.
     */
    for (c = 0; c < (int64_t)h.tgt_writes->len; c++) {
        int n = g_array_index(h.tgt_writes, int, c);

        twice += n == 2;
        ck_assert_msg(n <= 1 || (n == 2 && clone),
                      "seed %u: cluster %" PRId64 " written %d times", seed,
                      c, n);
    }
    ck_assert_int_le(twice, block_copy_stats(h.bcs)->clone_fallbacks *
                            (opts.max_chunk / CLUSTER));

    switch (sync) {
    case SYNC_FULL:
        memcpy(expect, snap, len);
        read_all(tgt, got, len);
        break;
    case SYNC_TOP:
        for (c = 0; c < DIV_ROUND_UP(len, CLUSTER); c++) {
            int64_t n = MIN(CLUSTER, len - c * CLUSTER);

            /*
             * Unallocated clusters are skipped, unless a guest write
             * copied them before the walk got there (their data then
             * comes from the backing file, as the snapshot has it).
             */
            if (top_alloc[c] || g_array_index(h.tgt_writes, int, c)) {
                memcpy(expect + c * CLUSTER, snap + c * CLUSTER, n);
            } else {
                memset(expect + c * CLUSTER, 0, n);
            }
        }
        read_all(tgt, got, len);
        break;
    case SYNC_NONE: {
        /* copied clusters from the target, the rest from the source */
        g_autofree uint8_t *src_now = g_malloc(len);
        HBitmap *bm = block_copy_dirty_bitmap(h.bcs);

        memcpy(expect, snap, len);
        read_all(tgt, got, len);
        read_all(src, src_now, len);
        for (c = 0; c < DIV_ROUND_UP(len, CLUSTER); c++) {
            int64_t n = MIN(CLUSTER, len - c * CLUSTER);

            if (hbitmap_get(bm, c * CLUSTER)) {
                memcpy(got + c * CLUSTER, src_now + c * CLUSTER, n);
            }
        }
        break;
    }
    }
    for (c = 0; c < len; c++) {
        if (got[c] != expect[c]) {
            ck_abort_msg("seed %u sync %d buffer %d clone %d: byte %"
                         PRId64 " (cluster %" PRId64 ") is %02x, expected "
                         "%02x", seed, sync, use_buffer, clone, c,
                         c / CLUSTER, got[c], expect[c]);
        }
    }
    cloned = block_copy_stats(h.bcs)->clone_bytes;
    harness_cleanup(&h);
    return cloned;
}

/* ---- the CBW buffer, deterministically ---- */

typedef struct WriteCo {
    BlockBackend *blk;
    int64_t offset, bytes;
    uint8_t byte;
    int ret;
    bool done;
} WriteCo;

static void coroutine_fn write_co_entry(void *opaque)
{
    WriteCo *w = opaque;
    g_autofree uint8_t *buf = g_malloc(w->bytes);

    memset(buf, w->byte, w->bytes);
    w->ret = blk_co_pwrite(w->blk, w->offset, w->bytes, buf, 0);
    w->done = true;
}

static void start_write(WriteCo *w, BlockBackend *blk, int64_t offset,
                        int64_t bytes, uint8_t byte)
{
    *w = (WriteCo) { blk, offset, bytes, byte, -EINPROGRESS, false };
    qemu_coroutine_enter(qemu_coroutine_create(write_co_entry, w));
}

static void poll_until(bool *flag, int max)
{
    for (int i = 0; i < max && !*flag; i++) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

typedef struct ReadCo {
    BlockCopyState *bcs;
    int64_t offset, bytes;
    uint8_t *buf;
    int ret;
    bool done;
} ReadCo;

static void coroutine_fn snap_read_entry(void *opaque)
{
    ReadCo *r = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, r->buf, r->bytes);
    r->ret = block_copy_snapshot_read(r->bcs, r->offset, r->bytes, &qiov);
    r->done = true;
}

/*
 * A stalled target (blkdebug break point on its writes): with the buffer,
 * guest writes complete anyway and snapshot reads see the captured data;
 * over the limit the CBW falls back to a synchronous copy, which waits.
 */
START_TEST(test_cbw_buffer_stalled_target)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *old = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockCopyOptions opts = { .cbw_buffer_limit = 2 * CLUSTER };
    BlockDriverState *src, *tgt, *bd;
    BlockBackend *b;
    Harness h;
    WriteCo w1, w2, w3;
    ReadCo rd = { 0 };

    create_raw(a, len);
    create_raw(c, len);
    src = open_raw(a);
    b = blk_rw(src);
    memset(old, 0x11, len);
    ck_assert_int_eq(blk_pwrite(b, 0, len, old, 0), 0);
    blk_unref(b);
    tgt = open_json("{\"driver\":\"raw\",\"file\":{\"driver\":\"blkdebug\","
                    "\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
                    c);
    bd = bdrv_file_bs(tgt);
    harness_init(&h, src, tgt, &opts, ON_CBW_ERROR_BREAK_GUEST_WRITE);
    ck_assert(block_copy_cbw_buffer_enabled(h.bcs));
    ck_assert_int_eq(bdrv_debug_breakpoint(bd, "write_aio", "T"), 0);

    /* captured: the guest write completes although the target hangs */
    start_write(&w1, h.guest, 100, 1000, 0xaa);
    poll_until(&w1.done, 1000);
    ck_assert(w1.done);
    ck_assert_int_eq(w1.ret, 0);
    while (!bdrv_debug_is_suspended(bd, "T")) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_uint_eq(block_copy_stats(h.bcs)->cbw_captured_bytes, CLUSTER);

    /* the snapshot still reads the old data, from memory */
    rd.bcs = h.bcs;
    rd.offset = 0;
    rd.bytes = 2 * CLUSTER;
    rd.buf = got;
    qemu_coroutine_enter(qemu_coroutine_create(snap_read_entry, &rd));
    poll_until(&rd.done, 1000);
    ck_assert(rd.done);
    ck_assert_int_eq(rd.ret, 0);
    ck_assert(memcmp(got, old, 2 * CLUSTER) == 0);

    /* a second cluster still fits (its target write hangs too) */
    ck_assert_int_eq(bdrv_debug_breakpoint(bd, "write_aio", "T2"), 0);
    start_write(&w2, h.guest, CLUSTER, 10, 0xbb);
    poll_until(&w2.done, 1000);
    ck_assert(w2.done);
    while (!bdrv_debug_is_suspended(bd, "T2")) {
        aio_poll(qemu_get_aio_context(), true);
    }

    /* the third does not: synchronous copy, which waits for the target */
    ck_assert_int_eq(bdrv_debug_breakpoint(bd, "write_aio", "T3"), 0);
    start_write(&w3, h.guest, 5 * CLUSTER, 10, 0xcc);
    while (!bdrv_debug_is_suspended(bd, "T3")) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert(!w3.done);
    ck_assert_uint_eq(block_copy_stats(h.bcs)->cbw_fallbacks, 1);
    ck_assert_uint_eq(block_copy_stats(h.bcs)->cbw_captured_bytes,
                      2 * CLUSTER);

    ck_assert_int_eq(bdrv_debug_resume(bd, "T"), 0);
    ck_assert_int_eq(bdrv_debug_resume(bd, "T2"), 0);
    ck_assert_int_eq(bdrv_debug_resume(bd, "T3"), 0);
    poll_until(&w3.done, 100000);
    ck_assert_int_eq(w3.ret, 0);
    block_copy_drain_sync(h.bcs);

    /* the target got the old data of the three clusters */
    read_all(tgt, got, len);
    ck_assert(memcmp(got, old, 2 * CLUSTER) == 0);
    ck_assert(memcmp(got + 5 * CLUSTER, old, CLUSTER) == 0);
    ck_assert(buffer_is_zero(got + 2 * CLUSTER, 3 * CLUSTER));
    harness_cleanup(&h);
}
END_TEST

/* fleecing layout (target backed by the source): no buffer, serialising */
START_TEST(test_cbw_buffer_off_for_fleecing)
{
    g_autofree char *a = tpath("src.img");
    g_autofree char *q = tpath("fleece.qcow2");
    g_autofree char *copts = NULL;
    g_autoptr(json_t) o = NULL;
    BlockCopyOptions opts = { .cbw_buffer_limit = 4 * MiB,
                              .use_clone = true };
    BlockDriverState *src, *tgt;
    uint8_t buf[512] = { 0 };
    Harness h;

    create_raw(a, 1 * MiB);
    src = open_json("{\"driver\":\"raw\",\"node-name\":\"src\",\"file\":"
                    "{\"driver\":\"file\",\"filename\":\"%s\"}}", a);
    copts = g_strdup_printf("{\"size\":1048576}");
    o = json_loads(copts, 0, NULL);
    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, q, o, &error_abort), 0);
    tgt = open_json("{\"driver\":\"qcow2\",\"backing\":\"src\",\"file\":"
                    "{\"driver\":\"file\",\"filename\":\"%s\"}}", q);
    harness_init(&h, src, tgt, &opts, ON_CBW_ERROR_BREAK_GUEST_WRITE);
    ck_assert(block_copy_target_is_fleecing(h.bcs));
    ck_assert(!block_copy_cbw_buffer_enabled(h.bcs));
    /* no clone either (a qcow2 target would have refused it: -ENOTSUP) */
    ck_assert_int_eq(blk_pwrite(h.guest, 0, sizeof(buf), buf, 0), 0);
    ck_assert_uint_eq(block_copy_stats(h.bcs)->cbw_sync_bytes, CLUSTER);
    ck_assert_uint_eq(block_copy_stats(h.bcs)->clone_fallbacks, 0);
    harness_cleanup(&h);
}
END_TEST

/*
 * An unaligned guest write on a 4 KiB-aligned source is a serialising
 * read-modify-write; its copy-before-write reads the same clusters and
 * must not wait for it (BDRV_REQ_NO_SERIALISING) or it would deadlock.
 */
START_TEST(test_cbw_under_rmw_write)
{
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *old = g_malloc(CLUSTER);
    g_autofree uint8_t *got = g_malloc(CLUSTER);
    BlockCopyOptions opts = { 0 };
    BlockDriverState *src, *tgt;
    BlockBackend *b;
    Harness h;
    WriteCo w;

    create_raw(a, 1 * MiB);
    create_raw(c, 1 * MiB);
    src = open_json("{\"driver\":\"raw\",\"file\":{\"driver\":\"blkdebug\","
                    "\"align\":4096,\"image\":{\"driver\":\"file\","
                    "\"filename\":\"%s\"}}}", a);
    b = blk_rw(src);
    memset(old, 0x42, CLUSTER);
    ck_assert_int_eq(blk_pwrite(b, 0, CLUSTER, old, 0), 0);
    blk_unref(b);
    tgt = open_raw(c);
    harness_init(&h, bdrv_file_bs(src), tgt, &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);
    /* the notifier sits on the aligned blkdebug node itself */
    bdrv_ref(bdrv_file_bs(src));
    start_write(&w, h.guest, 300, 100, 0x99);
    poll_until(&w.done, 100000);
    ck_assert(w.done);
    ck_assert_int_eq(w.ret, 0);
    block_copy_drain_sync(h.bcs);
    read_all(tgt, got, CLUSTER);
    ck_assert(memcmp(got, old, CLUSTER) == 0);
    harness_cleanup(&h);
    bdrv_unref(src);
}
END_TEST

/* background walk: worker and memory caps, pause, stop */
START_TEST(test_run_limits_pause_stop)
{
    int64_t len = 8 * MiB;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockCopyOptions opts = { .max_workers = 3, .max_chunk = 256 * KiB,
                              .max_mem = 512 * KiB };
    BlockDriverState *src;
    BlockBackend *b;
    Harness h;
    int w;
    g_autoptr(GRand) r = g_rand_new_with_seed(7);

    create_raw(a, len);
    create_raw(c, len);
    src = open_raw(a);
    b = blk_rw(src);
    fill_random(r, data, len);
    ck_assert_int_eq(blk_pwrite(b, 0, len, data, 0), 0);
    blk_unref(b);
    harness_init(&h, src, open_raw(c), &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);

    h.pause = true;
    harness_start_run(&h);
    for (int i = 0; i < 20; i++) {
        aio_poll(qemu_get_aio_context(), false);
    }
    ck_assert_int_ge(h.paused_count, 1);
    w = 0;
    for (guint i = 0; i < h.tgt_writes->len; i++) {
        w += g_array_index(h.tgt_writes, int, i);
    }
    ck_assert_int_eq(w, 0);     /* nothing copied while paused */
    h.pause = false;
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    ck_assert_int_le(block_copy_stats(h.bcs)->max_workers_seen, 3);
    ck_assert_int_ge(block_copy_stats(h.bcs)->max_workers_seen, 2);
    ck_assert_int_le(block_copy_stats(h.bcs)->max_mem_seen, 512 * KiB);
    read_all(h.tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);

    /* stop: returns -ECANCELED, leaves the rest dirty */
    hbitmap_set(block_copy_dirty_bitmap(h.bcs), 0, len);
    h.stop = true;
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, -ECANCELED);
    ck_assert_uint_eq(hbitmap_count(block_copy_dirty_bitmap(h.bcs)), len);
    harness_cleanup(&h);
}
END_TEST

typedef struct SyncCopy {
    BlockCopyState *bcs;
    int64_t offset, bytes;
    bool done;
    int ret;
} SyncCopy;

static void coroutine_fn sync_copy_entry(void *opaque)
{
    SyncCopy *sc = opaque;
    bool is_read;

    sc->ret = block_copy(sc->bcs, sc->offset, sc->bytes, &is_read);
    sc->done = true;
}

/* block_copy() from outside a coroutine */
static int sync_copy(BlockCopyState *bcs, int64_t offset, int64_t bytes)
{
    SyncCopy sc = { .bcs = bcs, .offset = offset, .bytes = bytes };

    qemu_coroutine_enter(qemu_coroutine_create(sync_copy_entry, &sc));
    while (!sc.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    return sc.ret;
}

/* A raw source of len random bytes (no zero runs), its data in *data. */
static BlockDriverState *random_source(const char *path, int64_t len,
                                       unsigned seed, uint8_t **data)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    BlockDriverState *src;
    BlockBackend *b;

    create_raw(path, len);
    src = open_raw(path);
    b = blk_rw(src);
    *data = g_malloc(len);
    fill_random(r, *data, len);
    ck_assert_int_eq(blk_pwrite(b, 0, len, *data, 0), 0);
    blk_unref(b);
    return src;
}

/*
 * The bounce buffer pool: a background run of 32 read/write chunks with a
 * cap of 4 chunks allocates at most 4 buffers and reuses them for the
 * rest; the cap bounds the bytes in flight; a second run allocates
 * nothing.  A synchronous copy (the CBW path) takes pooled buffers too.
 */
START_TEST(test_run_buffer_pool)
{
    int64_t chunk = 256 * KiB, len = 32 * chunk;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = NULL;
    g_autofree uint8_t *got = g_malloc(len);
    BlockCopyOptions opts = { .max_workers = 16, .max_chunk = chunk,
                              .max_mem = 4 * chunk };
    const BlockCopyStats *st;
    BlockDriverState *src;
    Harness h;

    src = random_source(a, len, 11, &data);
    create_raw(c, len);
    harness_init(&h, src, open_raw(c), &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);
    st = block_copy_stats(h.bcs);

    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    ck_assert_uint_eq(st->rw_bytes, len);
    /* every chunk took one buffer: fresh or reused */
    ck_assert_uint_eq(st->buf_allocs + st->buf_reuses, len / chunk);
    ck_assert_uint_ge(st->buf_allocs, 1);
    ck_assert_uint_le(st->buf_allocs, 4);
    ck_assert_uint_ge(st->buf_reuses, len / chunk - 4);
    ck_assert_uint_le(st->buf_pooled_max, 4);
    /* the cap, not max_workers, bounded the concurrent bytes */
    ck_assert_int_le(st->max_mem_seen, 4 * chunk);
    read_all(h.tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);

    /* again: everything comes from the pool */
    hbitmap_set(block_copy_dirty_bitmap(h.bcs), 0, len);
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    ck_assert_uint_le(st->buf_allocs, 4);
    ck_assert_uint_eq(st->buf_allocs + st->buf_reuses, 2 * len / chunk);

    /* a synchronous copy of one chunk reuses a pooled buffer */
    hbitmap_set(block_copy_dirty_bitmap(h.bcs), 0, chunk);
    ck_assert_int_eq(sync_copy(h.bcs, 0, chunk), 0);
    ck_assert_uint_le(st->buf_allocs, 4);
    ck_assert_uint_eq(st->buf_allocs + st->buf_reuses, 2 * len / chunk + 1);
    harness_cleanup(&h);
}
END_TEST

/*
 * The default memory cap: with the default options (64 workers, 1 MiB
 * chunks) the bytes of bounce buffers in flight stay within
 * BLOCK_COPY_MAX_MEM, and so do the buffers ever allocated.
 */
START_TEST(test_run_default_mem_cap)
{
    int64_t len = BLOCK_COPY_MAX_MEM + 8 * MiB;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = NULL;
    BlockCopyOptions opts = { 0 };
    const BlockCopyStats *st;
    BlockDriverState *src;
    Harness h;

    ck_assert_int_lt(BLOCK_COPY_MAX_MEM,
                     BLOCK_COPY_MAX_WORKERS_DEFAULT * BLOCK_COPY_MAX_BUFFER);
    src = random_source(a, len, 12, &data);
    create_raw(c, len);
    harness_init(&h, src, open_raw(c), &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);
    st = block_copy_stats(h.bcs);
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    ck_assert_uint_eq(st->rw_bytes, len);
    ck_assert_int_le(st->max_mem_seen, BLOCK_COPY_MAX_MEM);
    ck_assert_uint_le(st->buf_allocs,
                      BLOCK_COPY_MAX_MEM / BLOCK_COPY_MAX_BUFFER);
    ck_assert_uint_eq(st->buf_allocs + st->buf_reuses,
                      len / BLOCK_COPY_MAX_BUFFER);
    harness_cleanup(&h);
}
END_TEST

/* a failed copy leaves its clusters dirty; the next run retries them */
START_TEST(test_run_error_and_retry)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    BlockCopyOptions opts = { 0 };
    BlockDriverState *src;
    BlockBackend *b;
    Harness h;
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);

    create_raw(a, len);
    create_raw(c, len);
    b = blk_rw(open_raw(a));
    memset(data, 0x3c, len);
    ck_assert_int_eq(blk_pwrite(b, 0, len, data, 0), 0);
    bdrv_unref(blk_bs(b));
    blk_unref(b);
    src = open_json("{\"driver\":\"raw\",\"file\":{\"driver\":\"blkdebug\","
                    "\"inject-error\":[{\"event\":\"read_aio\",\"once\":true,"
                    "\"sector\":512}],\"image\":{\"driver\":\"file\","
                    "\"filename\":\"%s\"}}}", a);
    harness_init(&h, src, open_raw(c), &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, -EIO);
    ck_assert(h.run_is_read);
    ck_assert(hbitmap_get(block_copy_dirty_bitmap(h.bcs), 512 * 512));
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    read_all(h.tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    harness_cleanup(&h);
}
END_TEST

/* ---- cloning (use_clone) ---- */

/*
 * A raw source of len (>= 8 clusters) bytes: random data around a hole
 * of 2 clusters at cluster 5; its content in *data, the bytes of its data
 * runs in *data_bytes.
 */
static BlockDriverState *clone_source(const char *path, int64_t len,
                                      unsigned seed, uint8_t **data,
                                      int64_t *data_bytes)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    BlockDriverState *src;
    BlockBackend *b;

    ck_assert_int_ge(len, 8 * CLUSTER);
    create_raw(path, len);
    src = open_raw(path);
    b = blk_rw(src);
    *data = g_malloc(len);
    fill_random(r, *data, len);
    memset(*data + 5 * CLUSTER, 0, 2 * CLUSTER);
    ck_assert_int_eq(blk_pwrite(b, 0, 5 * CLUSTER, *data, 0), 0);
    ck_assert_int_eq(blk_pwrite(b, 7 * CLUSTER, len - 7 * CLUSTER,
                                *data + 7 * CLUSTER, 0), 0);
    blk_unref(b);
    *data_bytes = len - 2 * CLUSTER;
    return src;
}

/* A full run with use_clone: each method's share of the bytes. */
static void clone_run(BlockDriverState *src, BlockDriverState *tgt,
                      BlockCopyOptions *opts, const uint8_t *data,
                      int64_t len, BlockCopyStats *st)
{
    g_autofree uint8_t *got = g_malloc(len);
    Harness h;

    harness_init(&h, src, tgt, opts, ON_CBW_ERROR_BREAK_GUEST_WRITE);
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    *st = *block_copy_stats(h.bcs);
    read_all(h.tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    harness_cleanup(&h);
}

/*
 * The default path for raw -> raw: clone where the filesystem can, else
 * one -ENOTSUP and read/write for everything (the failed range included),
 * within the read/write chunk and the memory cap although clone chunks
 * are 16 MiB.  Zero runs are never cloned.
 */
START_TEST(test_clone_or_fallback)
{
    int64_t len = 40 * MiB + 3 * CLUSTER, data_bytes;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = NULL;
    BlockCopyOptions opts = { .use_clone = true };
    BlockCopyStats st;
    BlockDriverState *src;

    src = clone_source(a, len, 21, &data, &data_bytes);
    create_raw(c, len);
    clone_run(src, open_raw(c), &opts, data, len, &st);
    ck_assert_uint_eq(st.copy_range_bytes, 0);
    ck_assert_uint_eq(st.zero_bytes, 2 * CLUSTER);
    if (dir_can_clone(tmpdir)) {
        ck_assert_uint_eq(st.clone_fallbacks, 0);
        ck_assert_uint_eq(st.clone_bytes, data_bytes);
        ck_assert_uint_eq(st.rw_bytes, 0);
        ck_assert_int_ge(shared_bytes(c), data_bytes);
    } else {
        ck_assert_uint_eq(st.clone_fallbacks, 1);
        ck_assert_uint_eq(st.clone_bytes, 0);
        ck_assert_uint_eq(st.rw_bytes, data_bytes);
        ck_assert_int_le(st.max_mem_seen, BLOCK_COPY_MAX_MEM);
        ck_assert_uint_le(st.buf_allocs,
                          BLOCK_COPY_MAX_MEM / BLOCK_COPY_MAX_BUFFER);
    }
}
END_TEST

/*
 * Fallback order: a failed clone goes on with copy_range when that is
 * enabled (it works on ext4 and tmpfs); a node without copy offload at
 * all (blkdebug) makes both fall back to read/write, and compress never
 * clones.
 */
START_TEST(test_clone_fallback_order)
{
    int64_t len = 2 * MiB, data_bytes;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = NULL;
    BlockCopyOptions opts = { .use_clone = true, .use_copy_range = true };
    BlockCopyStats st;
    bool can_clone = dir_can_clone(tmpdir);
    BlockDriverState *src;

    src = clone_source(a, len, 22, &data, &data_bytes);
    bdrv_ref(src);
    create_raw(c, len);
    clone_run(src, open_raw(c), &opts, data, len, &st);
    if (can_clone) {
        ck_assert_uint_eq(st.clone_bytes, data_bytes);
        ck_assert_uint_eq(st.copy_range_bytes, 0);
    } else {
        ck_assert_uint_eq(st.clone_fallbacks, 1);
        ck_assert_uint_eq(st.clone_bytes, 0);
        ck_assert_uint_eq(st.copy_range_bytes, data_bytes);
    }
    ck_assert_uint_eq(st.rw_bytes, 0);

    /* blkdebug (no copy_range): clone and copy_range both fall back */
    unlink(c);
    create_raw(c, len);
    bdrv_ref(src);
    memset(&opts, 0, sizeof(opts));
    opts.use_clone = true;
    opts.use_copy_range = true;
    clone_run(src, open_json("{\"driver\":\"raw\",\"file\":{\"driver\":"
                             "\"blkdebug\",\"image\":{\"driver\":\"file\","
                             "\"filename\":\"%s\"}}}", c),
              &opts, data, len, &st);
    ck_assert_uint_eq(st.clone_fallbacks, 1);
    ck_assert_uint_eq(st.copy_range_fallbacks, 1);
    ck_assert_uint_eq(st.clone_bytes + st.copy_range_bytes, 0);
    ck_assert_uint_eq(st.rw_bytes, data_bytes);

    /* use_clone without effect when compressing (qcow2 target) */
    {
        g_autofree char *q = tpath("tgt.qcow2");
        g_autofree char *copts = g_strdup_printf("{\"size\":%" PRId64 "}",
                                                 len);
        g_autoptr(json_t) o = json_loads(copts, 0, NULL);

        ck_assert_int_eq(bdrv_create(&bdrv_qcow2, q, o, &error_abort), 0);
        memset(&opts, 0, sizeof(opts));
        opts.use_clone = true;
        opts.compress = true;
        clone_run(src, open_json("{\"driver\":\"qcow2\",\"file\":{\"driver\":"
                                 "\"file\",\"filename\":\"%s\"}}", q),
                  &opts, data, len, &st);
        ck_assert_uint_eq(st.clone_fallbacks + st.clone_bytes, 0);
        ck_assert_uint_eq(st.rw_bytes, len);
    }
}
END_TEST

/*
 * Copy-before-write uses the same method order: while cloning is on, a
 * guest write waits for the clone of its cluster (nothing is captured);
 * where the clone fails it is copied synchronously once, and later guest
 * writes use the CBW buffer as usual.  The target holds the old data.
 */
START_TEST(test_clone_cbw)
{
    int64_t len = 1 * MiB, data_bytes;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree uint8_t *data = NULL;
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *buf = g_malloc(4096);
    BlockCopyOptions opts = { .use_clone = true,
                              .cbw_buffer_limit = 4 * MiB };
    const BlockCopyStats *st;
    bool can_clone = dir_can_clone(tmpdir);
    Harness h;

    harness_init(&h, clone_source(a, len, 23, &data, &data_bytes),
                 (create_raw(c, len), open_raw(c)), &opts,
                 ON_CBW_ERROR_BREAK_GUEST_WRITE);
    st = block_copy_stats(h.bcs);
    memset(buf, 0xee, 4096);
    ck_assert_int_eq(blk_pwrite(h.guest, 4096, 4096, buf, 0), 0);
    ck_assert_uint_eq(st->cbw_sync_bytes, CLUSTER);
    ck_assert_uint_eq(st->cbw_captured_bytes, 0);
    if (can_clone) {
        ck_assert_uint_eq(st->clone_bytes, CLUSTER);
    } else {
        ck_assert_uint_eq(st->clone_fallbacks, 1);
        ck_assert_uint_eq(st->rw_bytes, CLUSTER);
    }
    ck_assert_int_eq(blk_pwrite(h.guest, 9 * CLUSTER, 4096, buf, 0), 0);
    if (can_clone) {
        ck_assert_uint_eq(st->clone_bytes, 2 * CLUSTER);
        ck_assert_uint_eq(st->cbw_captured_bytes, 0);
    } else {
        ck_assert_uint_eq(st->clone_fallbacks, 1);
        ck_assert_uint_eq(st->cbw_captured_bytes, CLUSTER);
    }
    harness_start_run(&h);
    harness_wait_run(&h);
    ck_assert_int_eq(h.run_ret, 0);
    block_copy_drain_sync(h.bcs);
    ck_assert_uint_eq(st->clone_bytes + st->rw_bytes, data_bytes);
    read_all(h.tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    harness_cleanup(&h);
}
END_TEST

/* ---- on a filesystem with reflink (BLOCKD_TEST_REFLINK=1) ---- */

/*
 * file-posix's FICLONERANGE rules: 4 KiB-aligned ranges clone; a range
 * that is not (512-byte job clusters) is -ENOTSUP, which switches cloning
 * off and copies instead; the partial block at the source's EOF clones
 * when it also ends the target, but not when a raw window ends there
 * while the file goes on.
 */
START_TEST(test_reflink_alignment)
{
    int64_t len = 1 * MiB + 1024, data_bytes;
    g_autofree char *a = tpath("src.img");
    g_autofree char *c = tpath("tgt.img");
    g_autofree char *big = tpath("big.img");
    g_autofree uint8_t *data = NULL;
    BlockCopyOptions opts = { .use_clone = true };
    BlockCopyStats st;
    BlockDriverState *src;

    ck_assert_msg(dir_can_clone(tmpdir), "%s: no reflink here", tmpdir);
    src = clone_source(a, len, 31, &data, &data_bytes);
    bdrv_ref(src);

    /* aligned + EOF tail: all cloned, shared */
    create_raw(c, len);
    clone_run(src, open_raw(c), &opts, data, len, &st);
    ck_assert_uint_eq(st.clone_fallbacks, 0);
    ck_assert_uint_eq(st.clone_bytes, data_bytes);
    ck_assert_uint_eq(st.rw_bytes, 0);
    ck_assert_int_ge(shared_bytes(c), data_bytes - 1024);
    ck_assert_int_ge(shared_bytes(a), data_bytes - 1024);

    /* 512-byte clusters, 1.5 KiB chunks: unaligned, fall back, correct */
    unlink(c);
    create_raw(c, len);
    bdrv_ref(src);
    memset(&opts, 0, sizeof(opts));
    opts.use_clone = true;
    opts.cluster_size = 512;
    opts.max_chunk = 1536;
    clone_run(src, open_raw(c), &opts, data, len, &st);
    ck_assert_uint_eq(st.clone_fallbacks, 1);
    ck_assert_uint_eq(st.clone_bytes, 0);
    ck_assert_uint_eq(st.rw_bytes, data_bytes);
    ck_assert_int_eq(shared_bytes(c), 0);

    /*
     * A raw window [0, len) of a bigger file as the source: the partial
     * last block is not the file's EOF, so it must not be cloned (it
     * would share the block beyond the window); 1 MiB chunks clone.
     */
    {
        BlockDriverState *win;
        BlockBackend *b;

        create_raw(big, 2 * MiB);
        b = blk_rw(open_raw(big));
        bdrv_unref(blk_bs(b));
        ck_assert_int_eq(blk_pwrite(b, 0, len, data, 0), 0);
        blk_unref(b);
        win = open_json("{\"driver\":\"raw\",\"size\":%" PRId64 ",\"file\":"
                        "{\"driver\":\"file\",\"filename\":\"%s\"}}", len,
                        big);
        unlink(c);
        create_raw(c, len);
        memset(&opts, 0, sizeof(opts));
        opts.use_clone = true;
        opts.max_chunk = 1 * MiB;
        clone_run(win, open_raw(c), &opts, data, len, &st);
        ck_assert_uint_eq(st.clone_bytes, 1 * MiB);
        ck_assert_uint_eq(st.clone_fallbacks, 1);
        ck_assert_uint_eq(st.rw_bytes, 1024);
    }
    bdrv_unref(src);
}
END_TEST

/* point-in-time trials with cloning where it really clones */
START_TEST(test_reflink_point_in_time)
{
    int i;

    uint64_t full = 0, none = 0;

    ck_assert_msg(dir_can_clone(tmpdir), "%s: no reflink here", tmpdir);
    for (i = 0; i < 8; i++) {
        full += run_trial(4000 + i, SYNC_FULL, i % 2, true);
        none += run_trial(5000 + i, SYNC_NONE, i % 2, true);
    }
    ck_assert_uint_gt(full, 0);
    ck_assert_uint_gt(none, 0);
}
END_TEST

static int trials(void)
{
    return g_getenv("BLOCKD_STRESS") ? 210 : 24;
}

START_TEST(test_point_in_time_full)
{
    int i;

    for (i = 0; i < trials(); i++) {
        run_trial(1000 + i, SYNC_FULL, i % 2, i % 4 >= 2);
    }
}
END_TEST

START_TEST(test_point_in_time_top)
{
    int i;

    for (i = 0; i < trials(); i++) {
        run_trial(2000 + i, SYNC_TOP, i % 2, i % 4 >= 2);
    }
}
END_TEST

START_TEST(test_point_in_time_none)
{
    int i;

    for (i = 0; i < trials(); i++) {
        run_trial(3000 + i, SYNC_NONE, i % 2, i % 4 >= 2);
    }
}
END_TEST

static Suite *block_copy_suite(void)
{
    Suite *s = suite_create("block-copy");
    TCase *tc = tcase_create("point-in-time");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, g_getenv("BLOCKD_STRESS") ? 600 : 60);
    tcase_add_test(tc, test_point_in_time_full);
    tcase_add_test(tc, test_point_in_time_top);
    tcase_add_test(tc, test_point_in_time_none);
    suite_add_tcase(s, tc);
    tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, teardown);
    /* 40 MiB copies: Check's 4 s default is too short on a loaded host */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cbw_buffer_stalled_target);
    tcase_add_test(tc, test_cbw_buffer_off_for_fleecing);
    tcase_add_test(tc, test_cbw_under_rmw_write);
    tcase_add_test(tc, test_run_limits_pause_stop);
    tcase_add_test(tc, test_run_error_and_retry);
    tcase_add_test(tc, test_run_buffer_pool);
    tcase_add_test(tc, test_run_default_mem_cap);
    tcase_add_test(tc, test_clone_or_fallback);
    tcase_add_test(tc, test_clone_fallback_order);
    tcase_add_test(tc, test_clone_cbw);
    suite_add_tcase(s, tc);
    if (g_getenv("BLOCKD_TEST_REFLINK")) {
        tc = tcase_create("reflink");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_clone_or_fallback);
        tcase_add_test(tc, test_clone_cbw);
        tcase_add_test(tc, test_reflink_alignment);
        tcase_add_test(tc, test_reflink_point_in_time);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(block_copy_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
