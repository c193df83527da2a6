/*
 * Unit tests for the backup job (block/backup.c) on the job framework:
 * creation errors with QEMU's wording, sync=full/top/none, events and
 * progress, sparse targets, copy_range offload, 4097-byte images, a 2 MiB
 * cluster qcow2 target, compression, error policies with blkdebug on
 * either side (report/ignore/stop/enospc), on-cbw-error, pause, rate
 * limiting on a manual clock, cancel, and point-in-time trials with guest
 * writes racing the job.  Everything goes through the real block layer
 * with files in a temp dir.  raw -> raw jobs clone by default: where the
 * temp dir's filesystem cannot (ext4, tmpfs) the first clone falls back
 * and the job copies; on XFS/btrfs it clones; tests assert either branch.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/blockjob_int.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "qapi/qmp-event.h"
#include "qemu/cutils.h"
#include <check.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

static char *tmpdir;
static GPtrArray *events;

static void capture_event(const char *name, json_t *event)
{
    json_t *data = json_object_get(event, "data");
    char *d;

    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        return;
    }
    d = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    g_ptr_array_add(events, g_strdup_printf("%s %s", name, d));
    free(d);
}

static void expect_events(const char *want)
{
    GString *got = g_string_new("");

    for (guint i = 0; i < events->len; i++) {
        g_string_append_printf(got, "%s%s", i ? "\n" : "",
                               (char *)g_ptr_array_index(events, i));
    }
    ck_assert_str_eq(got->str, want);
    g_string_free(got, true);
    g_ptr_array_set_size(events, 0);
}

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-backup-XXXXXX", NULL);
    events = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_emitter(capture_event);
}

static void teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

    job_cancel_sync_all();
    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, false);
    ck_assert_ptr_null(job_next(NULL));
    ck_assert_ptr_null(bdrv_next_node(NULL));
    ck_assert_int_eq(system(cmd), 0);
    g_ptr_array_free(events, true);
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
    Error *err = NULL;
    BlockDriverState *bs;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    o = json_loads(s, 0, NULL);
    ck_assert_msg(o != NULL, "bad json %s", s);
    bs = bdrv_open(o, &err);
    ck_assert_msg(bs != NULL, "open %s: %s", s,
                  err ? error_get_pretty(err) : "");
    return bs;
}

/* A raw file of exactly size bytes (image creation rounds up to 512) */
static char *create_raw(const char *name, int64_t size)
{
    char *path = tpath(name);
    int fd;

    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
    return path;
}

static char *create_qcow2(const char *name, const char *opts_json)
{
    char *path = tpath(name);
    g_autoptr(json_t) o = json_loads(opts_json, 0, NULL);

    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, path, o, &error_abort), 0);
    return path;
}

static BlockDriverState *open_raw(const char *path, const char *node)
{
    return open_json("{\"driver\":\"raw\",\"node-name\":\"%s\",\"file\":"
                     "{\"driver\":\"file\",\"filename\":\"%s\"}}", node,
                     path);
}

static BlockBackend *blk_rw(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    return blk;
}

static void pattern(uint8_t *buf, int64_t len, unsigned seed)
{
    for (int64_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)((i * 7 + seed * 13 + (i >> 12)) | 1);
    }
}

static void read_all(BlockDriverState *bs, uint8_t *buf, int64_t len)
{
    BlockBackend *blk = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);

    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    ck_assert_int_eq(blk_pread(blk, 0, len, buf, 0), 0);
    blk_unref(blk);
}

static void poll_until_done(Job *job)
{
    int guard = 0;

    while (!job_is_completed(job)) {
        aio_poll(qemu_get_aio_context(), true);
        ck_assert_int_lt(++guard, 1000000);
    }
    while (job->status != JOB_STATUS_CONCLUDED &&
           job->status != JOB_STATUS_NULL) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

static void poll_briefly(int n)
{
    for (int i = 0; i < n; i++) {
        aio_poll(qemu_get_aio_context(), false);
    }
}

static BlockJob *start_backup(BlockDriverState *src, BlockDriverState *tgt,
                              BackupJobOptions *o)
{
    BlockJob *job;

    o->creation_flags |= JOB_MANUAL_DISMISS;
    job = backup_job_create("j0", src, tgt, o, NULL, NULL, NULL,
                            &error_abort);
    ck_assert_ptr_nonnull(job);
    job_start(&job->job);
    return job;
}

static int finish(BlockJob *job, char **err)
{
    Job *j = &job->job;
    int ret;

    poll_until_done(j);
    ret = j->ret;
    if (err) {
        *err = j->err ? g_strdup(error_get_pretty(j->err)) : NULL;
    }
    job_dismiss(&j, &error_abort);
    poll_briefly(10);
    return ret;
}

/* ---- creation ---- */

static void create_fails(BlockDriverState *src, BlockDriverState *tgt,
                         BackupJobOptions *o, const char *msg)
{
    Error *err = NULL;

    ck_assert_ptr_null(backup_job_create("j0", src, tgt, o, NULL, NULL,
                                         NULL, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), msg);
    error_free(err);
}

START_TEST(test_create_errors)
{
    g_autofree char *a = create_raw("a.img", 1 * MiB);
    g_autofree char *b = create_raw("b.img", 2 * MiB);
    g_autofree char *c = create_raw("c.img", 1 * MiB);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *big = open_raw(b, "big");
    BlockDriverState *tgt = open_raw(c, "tgt");
    BackupPerf perf = { 0 };
    BackupJobOptions o;
    BlockJob *job;

    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    create_fails(src, src, &o, "Source and target cannot be the same");
    create_fails(src, big, &o, "Source and target image have different "
                 "sizes");
    o.compress = true;
    create_fails(src, tgt, &o, "Compression is not supported for this "
                 "drive ");
    o.compress = false;
    o.perf = &perf;
    perf.has_max_workers = true;
    perf.max_workers = 0;
    create_fails(src, tgt, &o, "max-workers must be between 1 and "
                 "2147483647");
    perf.has_max_workers = false;
    perf.has_max_chunk = true;
    perf.max_chunk = 4096;
    create_fails(src, tgt, &o, "Required max-chunk (4096) is less than "
                 "backup cluster size (65536)");
    perf.has_min_cluster_size = true;
    perf.min_cluster_size = 3 * 65536;
    perf.max_chunk = 0;
    create_fails(src, tgt, &o, "min-cluster-size needs to be a power of 2");
    o.perf = NULL;
    o.sync = MIRROR_SYNC_MODE_BITMAP;
    create_fails(src, tgt, &o, "must provide a valid bitmap name for "
                 "'bitmap' sync mode");
    o.sync = MIRROR_SYNC_MODE_FULL;

    /* a running backup blocks both nodes for other backups */
    o.speed = 1;
    job = backup_job_create("j1", src, tgt, &o, NULL, NULL, NULL,
                            &error_abort);
    o.speed = 0;
    create_fails(src, big, &o, "Node 'src' is busy: block device is in use "
                 "by block job: backup");
    create_fails(big, tgt, &o, "Node 'tgt' is busy: block device is in use "
                 "by block job: backup");
    ck_assert_int_eq(job_cancel_sync(&job->job, true), -ECANCELED);
    g_ptr_array_set_size(events, 0);
    ck_assert(bdrv_op_blocker_is_empty(src));
    ck_assert(bdrv_op_blocker_is_empty(tgt));
    bdrv_unref(src);
    bdrv_unref(big);
    bdrv_unref(tgt);
}
END_TEST

/* ---- full backups ---- */

/* Whether two files in the temp dir can share extents (FICLONE). */
static bool can_clone(void)
{
    g_autofree char *a = tpath("clone-probe-a");
    g_autofree char *b = tpath("clone-probe-b");
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

static int64_t allocated_bytes(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return (int64_t)st.st_blocks * 512;
}

static void full_backup_raw(bool copy_range, int64_t len)
{
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_raw(c, "tgt");
    BlockBackend *blk = blk_rw(src);
    BackupPerf perf = { .has_use_copy_range = true,
                        .use_copy_range = copy_range };
    const BlockCopyStats *st;
    BackupJobOptions o;
    BlockJob *job;
    int64_t off;
    g_autofree char *ev = NULL;
    bool clone = can_clone();

    /* data in every other 256 KiB, holes between, one zero-filled run */
    memset(data, 0, len);
    for (off = 0; off < len; off += 512 * KiB) {
        int64_t n = MIN(256 * KiB, len - off);

        pattern(data + off, n, off / KiB);
        ck_assert_int_eq(blk_pwrite(blk, off, n, data + off, 0), 0);
    }
    if (len > 2 * MiB) {
        /* written zeroes in the second half of a data run */
        memset(got, 0, 128 * KiB);
        ck_assert_int_eq(blk_pwrite(blk, 2 * MiB + 128 * KiB, 128 * KiB,
                                    got, 0), 0);
        memcpy(data + 2 * MiB + 128 * KiB, got, 128 * KiB);
    }
    blk_unref(blk);

    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.perf = &perf;
    job = start_backup(src, tgt, &o);
    poll_until_done(&job->job);
    st = backup_job_stats(job);
    if (clone) {
        ck_assert_uint_gt(st->clone_bytes, 0);
        ck_assert_uint_eq(st->clone_fallbacks, 0);
        ck_assert_uint_eq(st->copy_range_bytes + st->rw_bytes, 0);
    } else if (copy_range) {
        /* clone first (the default), then copy_range for everything */
        ck_assert_uint_eq(st->clone_fallbacks, 1);
        ck_assert_uint_eq(st->clone_bytes, 0);
        ck_assert_uint_gt(st->copy_range_bytes, 0);
        ck_assert_uint_eq(st->rw_bytes, 0);
    } else {
        ck_assert_uint_eq(st->clone_fallbacks, 1);
        ck_assert_uint_eq(st->clone_bytes, 0);
        ck_assert_uint_eq(st->copy_range_bytes, 0);
        ck_assert_uint_gt(st->rw_bytes, 0);
    }
    if (len >= MiB) {
        ck_assert_uint_gt(st->zero_bytes, 0);
    }
    ck_assert_int_eq(finish(job, NULL), 0);
    ev = g_strdup_printf("BLOCK_JOB_COMPLETED {\"device\":\"j0\",\"len\":%"
                         PRId64 ",\"offset\":%" PRId64 ",\"speed\":0,"
                         "\"type\":\"backup\"}", len, len);
    expect_events(ev);

    read_all(tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    bdrv_unref(src);
    bdrv_unref(tgt);
    /*
     * Sparse source, sparse target.  copy_file_range may round the data
     * it copies up to a filesystem block at EOF: allow one 4 KiB block.
     * Read/write leaves the source's written zeroes (the two clusters
     * at 2 MiB + 128 KiB) out of the target, as cp --sparse=always does.
     */
    if (copy_range || clone) {
        ck_assert_int_le(allocated_bytes(c), allocated_bytes(a) + 4096);
    } else {
        ck_assert_int_le(allocated_bytes(c), allocated_bytes(a) -
                         (len > 2 * MiB ? 128 * KiB : 0));
    }
}

START_TEST(test_full_read_write)
{
    full_backup_raw(false, 4 * MiB);
}
END_TEST

START_TEST(test_full_copy_range)
{
    full_backup_raw(true, 4 * MiB + 4096);
}
END_TEST

START_TEST(test_full_4097_bytes)
{
    full_backup_raw(false, 4097);
    full_backup_raw(true, 4097);
}
END_TEST

/*
 * raw -> raw clones by default; where the filesystem cannot, the first
 * clone fails and the job copies with read/write (QEMU's default; faster
 * than copy_file_range's splice copy on filesystems without reflink).
 * A node without copy offload (blkdebug) makes the clone and an explicit
 * copy_range fall back to read/write.
 */
START_TEST(test_read_write_default_and_copy_range_fallback)
{
    g_autofree char *a = create_raw("src.img", 1 * MiB);
    g_autofree char *c = create_raw("tgt.img", 1 * MiB);
    g_autofree uint8_t *data = g_malloc(MiB);
    g_autofree uint8_t *got = g_malloc(MiB);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt;
    BlockBackend *blk = blk_rw(src);
    BackupJobOptions o;
    BlockJob *job;

    pattern(data, MiB, 5);
    ck_assert_int_eq(blk_pwrite(blk, 0, MiB, data, 0), 0);
    blk_unref(blk);

    tgt = open_raw(c, "tgt");
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    job = start_backup(src, tgt, &o);
    poll_until_done(&job->job);
    ck_assert_uint_eq(backup_job_stats(job)->copy_range_bytes, 0);
    if (can_clone()) {
        ck_assert_uint_eq(backup_job_stats(job)->clone_bytes, MiB);
        ck_assert_uint_eq(backup_job_stats(job)->rw_bytes, 0);
    } else {
        ck_assert_uint_eq(backup_job_stats(job)->clone_fallbacks, 1);
        ck_assert_uint_eq(backup_job_stats(job)->clone_bytes, 0);
        ck_assert_uint_eq(backup_job_stats(job)->rw_bytes, MiB);
    }
    ck_assert_int_eq(finish(job, NULL), 0);
    read_all(tgt, got, MiB);
    ck_assert(memcmp(got, data, MiB) == 0);
    bdrv_unref(tgt);

    /* blkdebug has no copy offload: -ENOTSUP, fall back, still correct */
    unlink(c);
    g_free(create_raw("tgt.img", 1 * MiB));
    tgt = open_json("{\"driver\":\"raw\",\"file\":{\"driver\":\"blkdebug\","
                    "\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
                    c);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    BackupPerf perf = { .has_use_copy_range = true, .use_copy_range = true };
    o.perf = &perf;
    job = start_backup(src, tgt, &o);
    poll_until_done(&job->job);
    ck_assert_uint_eq(backup_job_stats(job)->clone_fallbacks, 1);
    ck_assert_uint_eq(backup_job_stats(job)->copy_range_fallbacks, 1);
    ck_assert_uint_eq(backup_job_stats(job)->clone_bytes, 0);
    ck_assert_uint_eq(backup_job_stats(job)->copy_range_bytes, 0);
    ck_assert_uint_eq(backup_job_stats(job)->rw_bytes, MiB);
    ck_assert_int_eq(finish(job, NULL), 0);
    g_ptr_array_set_size(events, 0);
    read_all(tgt, got, MiB);
    ck_assert(memcmp(got, data, MiB) == 0);
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

static bool have_qemu_img(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void qemu_img_check(const char *path)
{
    g_autofree char *cmd = NULL;

    if (!have_qemu_img()) {
        return;
    }
    cmd = g_strdup_printf("qemu-img check -q '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

/* target cluster 2 MiB: the job copies whole 2 MiB clusters */
START_TEST(test_qcow2_target_2m_cluster)
{
    int64_t len = 6 * MiB + 4096;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *q = create_qcow2("tgt.qcow2", "{\"size\":6295552,"
                                      "\"cluster_size\":2097152}");
    g_autofree uint8_t *data = g_malloc0(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_json("{\"driver\":\"qcow2\",\"file\":"
                                      "{\"driver\":\"file\",\"filename\":"
                                      "\"%s\"}}", q);
    BlockBackend *blk = blk_rw(src);
    BackupJobOptions o;
    BlockJob *job;

    pattern(data + 3 * MiB, 100 * KiB, 9);
    ck_assert_int_eq(blk_pwrite(blk, 3 * MiB, 100 * KiB, data + 3 * MiB, 0),
                     0);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    job = start_backup(src, tgt, &o);
    ck_assert_int_eq(block_copy_cluster_size(backup_job_block_copy(job)),
                     2 * MiB);
    /* a guest write in the middle of a 2 MiB cluster copies all of it */
    memset(got, 0x5a, 4096);
    ck_assert_int_eq(blk_pwrite(blk, 5 * MiB, 4096, got, 0), 0);
    ck_assert(!hbitmap_get(block_copy_dirty_bitmap(
                  backup_job_block_copy(job)), 4 * MiB));
    ck_assert_int_eq(finish(job, NULL), 0);
    blk_unref(blk);
    read_all(tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    bdrv_unref(src);
    bdrv_unref(tgt);
    qemu_img_check(q);
}
END_TEST

START_TEST(test_compress)
{
    int64_t len = 2 * MiB;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *q = create_qcow2("tgt.qcow2", "{\"size\":2097152}");
    g_autofree uint8_t *data = g_malloc0(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_json("{\"driver\":\"qcow2\",\"file\":"
                                      "{\"driver\":\"file\",\"filename\":"
                                      "\"%s\"}}", q);
    BlockBackend *blk = blk_rw(src);
    BackupJobOptions o;
    BlockJob *job;

    /* compressible: a repeating pattern */
    for (int64_t i = 0; i < len; i++) {
        data[i] = "backup"[i % 6];
    }
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    blk_unref(blk);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.compress = true;
    job = start_backup(src, tgt, &o);
    poll_until_done(&job->job);
    /* no clone attempt: compressed clusters must be written */
    ck_assert_uint_eq(backup_job_stats(job)->clone_fallbacks, 0);
    ck_assert_uint_eq(backup_job_stats(job)->clone_bytes, 0);
    ck_assert_uint_eq(backup_job_stats(job)->rw_bytes, len);
    ck_assert_int_eq(finish(job, NULL), 0);
    read_all(tgt, got, len);
    ck_assert(memcmp(got, data, len) == 0);
    bdrv_unref(src);
    bdrv_unref(tgt);
    /* compressed clusters take far less than the data */
    ck_assert_int_lt(allocated_bytes(q), len / 4);
    qemu_img_check(q);
}
END_TEST

/* ---- sync=top and sync=none ---- */

START_TEST(test_sync_top)
{
    int64_t len = 2 * MiB;
    g_autofree char *base = create_raw("base.img", len);
    g_autofree char *top = NULL;
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *expect = g_malloc0(len);
    g_autofree char *copts = NULL;
    BlockDriverState *b = open_raw(base, "base");
    BlockDriverState *src, *tgt;
    BlockBackend *blk = blk_rw(b);
    BackupJobOptions o;
    BlockJob *job;

    pattern(data, len, 1);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    blk_unref(blk);
    bdrv_unref(b);
    copts = g_strdup_printf("{\"size\":%" PRId64 ",\"backing_file\":\"%s\","
                            "\"backing_fmt\":\"raw\",\"cluster_size\":4096}",
                            len, base);
    top = create_qcow2("top.qcow2", copts);
    src = open_json("{\"driver\":\"qcow2\",\"node-name\":\"src\",\"file\":"
                    "{\"driver\":\"file\",\"filename\":\"%s\"}}", top);
    blk = blk_rw(src);
    /* top allocates 4 KiB in cluster 1 and all of cluster 5 */
    pattern(got, 64 * KiB, 2);
    ck_assert_int_eq(blk_pwrite(blk, 64 * KiB + 8192, 4096, got, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 5 * 64 * KiB, 64 * KiB, got, 0), 0);
    read_all(src, data, len);
    memcpy(expect + 64 * KiB, data + 64 * KiB, 64 * KiB);
    memcpy(expect + 5 * 64 * KiB, data + 5 * 64 * KiB, 64 * KiB);
    blk_unref(blk);

    tgt = open_raw(c, "tgt");
    backup_job_options_init(&o, MIRROR_SYNC_MODE_TOP);
    job = start_backup(src, tgt, &o);
    ck_assert_int_eq(finish(job, NULL), 0);
    expect_events("BLOCK_JOB_COMPLETED {\"device\":\"j0\",\"len\":131072,"
                  "\"offset\":131072,\"speed\":0,\"type\":\"backup\"}");
    read_all(tgt, got, len);
    ck_assert(memcmp(got, expect, len) == 0);
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

START_TEST(test_sync_none_until_cancel)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *buf = g_malloc(len);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_raw(c, "tgt");
    BlockBackend *blk = blk_rw(src);
    BackupJobOptions o;
    BlockJob *job;

    pattern(data, len, 3);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_NONE);
    job = start_backup(src, tgt, &o);
    poll_briefly(50);
    ck_assert_int_eq(job->job.status, JOB_STATUS_RUNNING);
    ck_assert_uint_eq(job->job.progress.current, 0);

    /* a write copies its old cluster(s) first; nothing else is copied */
    memset(buf, 0xee, 100);
    ck_assert_int_eq(blk_pwrite(blk, 3 * 64 * KiB + 10, 100, buf, 0), 0);
    poll_briefly(20);
    ck_assert_uint_eq(job->job.progress.current, 64 * KiB);
    job_cancel(&job->job, false);
    ck_assert_int_eq(finish(job, NULL), -ECANCELED);
    expect_events("BLOCK_JOB_CANCELLED {\"device\":\"j0\",\"len\":1048576,"
                  "\"offset\":65536,\"speed\":0,\"type\":\"backup\"}");
    read_all(tgt, got, len);
    ck_assert(memcmp(got + 3 * 64 * KiB, data + 3 * 64 * KiB, 64 * KiB) ==
              0);
    ck_assert(buffer_is_zero(got, 3 * 64 * KiB));
    ck_assert(buffer_is_zero(got + 4 * 64 * KiB, len - 4 * 64 * KiB));
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

/*
 * Copy-before-write of clusters that read as zeroes: they are not read (a
 * hole would only be filled with zeroes in the page cache); with the CBW
 * buffer, nothing is captured where the target reads zeroes too, while
 * zeroes over target data are captured like any old data (the guest write
 * never waits for target I/O) and written later.
 */
START_TEST(test_cbw_zero_clusters)
{
    int64_t len = 1 * MiB, cl = 64 * KiB;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(cl);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree uint8_t *buf = g_malloc(cl);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_raw(c, "tgt");
    BlockBackend *blk = blk_rw(src);
    BlockBackend *tblk = blk_rw(tgt);
    const BlockCopyStats *st;
    BackupJobOptions o;
    BlockJob *job;

    /* source: data in cluster 3, holes elsewhere; target: data in 7 */
    pattern(data, cl, 3);
    ck_assert_int_eq(blk_pwrite(blk, 3 * cl, cl, data, 0), 0);
    memset(buf, 0x77, cl);
    ck_assert_int_eq(blk_pwrite(tblk, 7 * cl, cl, buf, 0), 0);
    blk_unref(tblk);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_NONE);
    job = start_backup(src, tgt, &o);
    poll_briefly(50);
    st = backup_job_stats(job);
    memset(buf, 0xee, 100);

    /* before the first clone attempt CBW copies synchronously: no read */
    ck_assert_int_eq(blk_pwrite(blk, 5 * cl + 10, 100, buf, 0), 0);
    poll_briefly(20);
    ck_assert_uint_eq(st->cbw_sync_bytes, cl);
    ck_assert_uint_eq(st->zero_bytes, cl);
    ck_assert_uint_eq(st->rw_bytes + st->clone_bytes +
                      st->clone_fallbacks, 0);
    ck_assert_uint_eq(job->job.progress.current, cl);

    /* data: cloned, or (no reflink here) the clone falls back */
    ck_assert_int_eq(blk_pwrite(blk, 3 * cl + 10, 100, buf, 0), 0);
    poll_briefly(20);
    ck_assert_uint_eq(st->rw_bytes + st->clone_bytes, cl);

    ck_assert_int_eq(blk_pwrite(blk, 9 * cl + 10, 100, buf, 0), 0);
    ck_assert_int_eq(blk_pwrite(blk, 7 * cl + 10, 100, buf, 0), 0);
    poll_briefly(20);
    if (st->clone_bytes == 0) {
        /* the CBW buffer works now: zero on both sides needs nothing */
        ck_assert_uint_eq(st->cbw_zero_bytes, cl);
        /* zeroes over target data: captured, written later */
        ck_assert_uint_eq(st->cbw_captured_bytes, cl);
    }
    ck_assert_uint_eq(st->rw_bytes + st->clone_bytes, cl);
    ck_assert_uint_eq(job->job.progress.current, 4 * cl);
    job_cancel(&job->job, false);
    ck_assert_int_eq(finish(job, NULL), -ECANCELED);
    g_ptr_array_set_size(events, 0);

    read_all(tgt, got, len);
    ck_assert(memcmp(got + 3 * cl, data, cl) == 0);
    ck_assert(buffer_is_zero(got, 3 * cl));
    ck_assert(buffer_is_zero(got + 4 * cl, len - 4 * cl));
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

/* ---- errors ---- */

typedef struct ErrCase {
    bool source;                /* inject on the source, else the target */
    int err;
    BlockdevOnError policy;
    const char *action;         /* expected BLOCK_JOB_ERROR action */
    bool fails;
} ErrCase;

static void run_err_case(const ErrCase *ec)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree char *rule = g_strdup_printf(
        "\"inject-error\":[{\"event\":\"%s\",\"errno\":\"%d\","
        "\"once\":true,\"sector\":1024}],",
        ec->source ? "read_aio" : "write_aio", ec->err);
    g_autofree char *ev = NULL;
    g_autofree char *errmsg = NULL;
    g_autofree char *errpart = ec->fails ?
        g_strdup_printf("\"error\":\"%s\",", strerror(ec->err)) :
        g_strdup("");
    BlockDriverState *src, *tgt;
    BlockBackend *blk;
    BackupJobOptions o;
    BlockJob *job;
    const char *bd = "{\"driver\":\"raw\",\"node-name\":\"%s\",\"file\":"
                     "{\"driver\":\"blkdebug\",%s\"image\":{\"driver\":"
                     "\"file\",\"filename\":\"%s\"}}}";

    src = open_json(bd, "src", ec->source ? rule : "", a);
    tgt = open_json(bd, "tgt", ec->source ? "" : rule, c);
    blk = blk_rw(src);
    pattern(data, len, 4);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    blk_unref(blk);

    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.on_source_error = ec->source ? ec->policy : BLOCKDEV_ON_ERROR_REPORT;
    o.on_target_error = ec->source ? BLOCKDEV_ON_ERROR_REPORT : ec->policy;
    job = start_backup(src, tgt, &o);
    if (!strcmp(ec->action, "stop")) {
        while (job->job.status != JOB_STATUS_PAUSED) {
            aio_poll(qemu_get_aio_context(), true);
        }
        ck_assert(job->job.user_paused);
        ck_assert_int_eq(job->iostatus, ec->err == ENOSPC ?
                         BLOCK_DEVICE_IO_STATUS_NOSPACE :
                         BLOCK_DEVICE_IO_STATUS_FAILED);
        /* paused: no progress */
        uint64_t cur = job->job.progress.current;

        poll_briefly(100);
        ck_assert_uint_eq(job->job.progress.current, cur);
        ck_assert_int_lt(cur, len);
        job_user_resume(&job->job, &error_abort);
    }
    ck_assert_int_eq(finish(job, &errmsg), ec->fails ? -ec->err : 0);
    ev = g_strdup_printf("BLOCK_JOB_ERROR {\"action\":\"%s\",\"device\":"
                         "\"j0\",\"operation\":\"%s\"}\n"
                         "BLOCK_JOB_COMPLETED {\"device\":\"j0\",%s\"len\":"
                         "1048576,\"offset\":%s,\"speed\":0,\"type\":"
                         "\"backup\"}",
                         ec->action, ec->source ? "read" : "write",
                         errpart,
                         ec->fails ? "0" : "1048576");
    if (!ec->fails) {
        read_all(tgt, got, len);
        ck_assert(memcmp(got, data, len) == 0);
    } else {
        ck_assert_str_eq(errmsg, strerror(ec->err));
        /* offset depends on how far the job got: compare the prefix */
        GString *got_ev = g_string_new("");

        for (guint i = 0; i < events->len; i++) {
            g_string_append_printf(got_ev, "%s%s", i ? "\n" : "",
                                   (char *)g_ptr_array_index(events, i));
        }
        ck_assert_msg(g_str_has_prefix(got_ev->str, "BLOCK_JOB_ERROR"),
                      "%s", got_ev->str);
        ck_assert_ptr_nonnull(strstr(got_ev->str, ec->action));
        ck_assert_ptr_nonnull(strstr(got_ev->str, "\"error\":"));
        g_string_free(got_ev, true);
        g_ptr_array_set_size(events, 0);
    }
    if (!ec->fails) {
        expect_events(ev);
    }
    bdrv_unref(src);
    bdrv_unref(tgt);
}

START_TEST(test_error_policies)
{
    static const ErrCase cases[] = {
        { true, EIO, BLOCKDEV_ON_ERROR_REPORT, "report", true },
        { false, EIO, BLOCKDEV_ON_ERROR_REPORT, "report", true },
        { true, EIO, BLOCKDEV_ON_ERROR_IGNORE, "ignore", false },
        { false, ENOSPC, BLOCKDEV_ON_ERROR_IGNORE, "ignore", false },
        { true, EIO, BLOCKDEV_ON_ERROR_STOP, "stop", false },
        { false, ENOSPC, BLOCKDEV_ON_ERROR_STOP, "stop", false },
        { false, ENOSPC, BLOCKDEV_ON_ERROR_ENOSPC, "stop", false },
        { false, EIO, BLOCKDEV_ON_ERROR_ENOSPC, "report", true },
        { true, ENOSPC, BLOCKDEV_ON_ERROR_AUTO, "stop", false },
        { true, EIO, BLOCKDEV_ON_ERROR_AUTO, "report", true },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_err_case(&cases[i]);
    }
}
END_TEST

/* copy-before-write failures: break-guest-write vs break-snapshot */
static void cbw_error_case(OnCbwError mode)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    g_autofree char *errmsg = NULL;
    BlockDriverState *src, *tgt;
    BlockBackend *blk;
    BackupJobOptions o;
    BlockJob *job;
    uint8_t buf[512];
    int ret;

    src = open_raw(a, "src");
    tgt = open_json("{\"driver\":\"raw\",\"node-name\":\"tgt\",\"file\":"
                    "{\"driver\":\"blkdebug\",\"inject-error\":[{\"event\":"
                    "\"write_aio\",\"errno\":\"5\",\"once\":true}],"
                    "\"image\":{\"driver\":\"file\",\"filename\":\"%s\"}}}",
                    c);
    blk = blk_rw(src);
    pattern(data, len, 6);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);

    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.on_cbw_error = mode;
    o.cbw_buffer_size = 0;      /* synchronous CBW: target errors show */
    o.speed = 1;                /* the background walk barely moves */
    o.creation_flags = JOB_MANUAL_DISMISS;
    job = backup_job_create("j0", src, tgt, &o, NULL, NULL, NULL,
                            &error_abort);
    /* the job exists but has not started: only CBW copies */
    memset(buf, 0x77, sizeof(buf));
    ret = blk_pwrite(blk, 128 * KiB, sizeof(buf), buf, 0);
    if (mode == ON_CBW_ERROR_BREAK_GUEST_WRITE) {
        ck_assert_int_eq(ret, -EIO);
        /* the snapshot is intact: the cluster is still to be copied */
        ck_assert(hbitmap_get(block_copy_dirty_bitmap(
                      backup_job_block_copy(job)), 128 * KiB));
        block_job_set_speed(job, 0, &error_abort);
        job_start(&job->job);
        ck_assert_int_eq(finish(job, NULL), 0);
        read_all(tgt, got, len);
        ck_assert(memcmp(got, data, len) == 0);
    } else {
        ck_assert_int_eq(ret, 0);
        job_start(&job->job);
        ck_assert_int_eq(finish(job, &errmsg), -EIO);
        ck_assert_str_eq(errmsg, "Copy-before-write failed, the snapshot is "
                         "broken: Input/output error");
    }
    g_ptr_array_set_size(events, 0);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
}

START_TEST(test_cbw_error_break_guest_write)
{
    cbw_error_case(ON_CBW_ERROR_BREAK_GUEST_WRITE);
}
END_TEST

START_TEST(test_cbw_error_break_snapshot)
{
    cbw_error_case(ON_CBW_ERROR_BREAK_SNAPSHOT);
}
END_TEST

/* ---- pause, rate limit, cancel ---- */

static int tgt_writes;

static void count_writes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         void *opaque)
{
    tgt_writes++;
}

START_TEST(test_rate_limit_pause_cancel)
{
    int64_t len = 16 * MiB;
    BlockDriverState *src = open_json("{\"driver\":\"null-co\",\"node-name\":"
                                      "\"src\",\"size\":%" PRId64 "}", len);
    BlockDriverState *tgt = open_json("{\"driver\":\"null-co\",\"node-name\":"
                                      "\"tgt\",\"size\":%" PRId64 "}", len);
    BlockBackend *blk = blk_rw(src);
    BackupPerf perf = { .has_max_chunk = true, .max_chunk = 64 * KiB };
    BackupJobOptions o;
    BlockJob *job;
    uint64_t before;
    uint8_t buf[4096] = { 1 };
    int w;

    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, true);
    bdrv_add_write_hook(tgt, count_writes, NULL);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.speed = 1 * MiB;
    o.perf = &perf;
    job = start_backup(src, tgt, &o);

    /* 1 MiB/s on the virtual clock */
    for (int i = 0; i < 3; i++) {
        qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
        poll_briefly(200);
    }
    ck_assert_int_ge(job->job.progress.current, 2 * MiB);
    ck_assert_int_le(job->job.progress.current, 4 * MiB + 128 * KiB);

    /* CBW is never rate limited: a write to an uncopied cluster copies */
    before = job->job.progress.current;
    ck_assert_int_eq(blk_pwrite(blk, 12 * MiB, sizeof(buf), buf, 0), 0);
    ck_assert_uint_eq(job->job.progress.current, before + 64 * KiB);

    /* paused: neither progress nor target writes, however long */
    job_user_pause(&job->job, &error_abort);
    poll_briefly(50);
    ck_assert_int_eq(job->job.status, JOB_STATUS_PAUSED);
    before = job->job.progress.current;
    w = tgt_writes;
    for (int i = 0; i < 5; i++) {
        qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
        poll_briefly(100);
    }
    ck_assert_uint_eq(job->job.progress.current, before);
    ck_assert_int_eq(tgt_writes, w);
    /* guest writes still copy while paused */
    ck_assert_int_eq(blk_pwrite(blk, 14 * MiB, sizeof(buf), buf, 0), 0);
    poll_briefly(10);           /* the CBW buffer writes asynchronously */
    ck_assert_int_eq(tgt_writes, w + 1);
    job_user_resume(&job->job, &error_abort);
    qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
    poll_briefly(200);
    ck_assert_uint_gt(job->job.progress.current, before + 64 * KiB);

    /* cancel while copying */
    job_cancel(&job->job, true);
    ck_assert_int_eq(finish(job, NULL), -ECANCELED);
    ck_assert_int_eq(g_str_has_prefix(g_ptr_array_index(events, 0),
                                      "BLOCK_JOB_CANCELLED"), 1);
    g_ptr_array_set_size(events, 0);
    bdrv_remove_write_hook(tgt, count_writes, NULL);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

/* ---- point in time with the job ---- */

typedef struct GuestW {
    BlockBackend *blk;
    int64_t off, n;
    uint8_t *buf;
    int *pending;
} GuestW;

static void coroutine_fn guest_w_entry(void *opaque)
{
    GuestW *g = opaque;

    ck_assert_int_eq(blk_co_pwrite(g->blk, g->off, g->n, g->buf, 0), 0);
    (*g->pending)--;
    g_free(g->buf);
    g_free(g);
}

static void job_trial(unsigned seed, bool buffer)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    int64_t len = g_rand_int_range(r, 4, 40) * 64 * KiB +
                  g_rand_int_range(r, 0, 65536);
    g_autofree char *a = create_raw("src.img", len);
    g_autofree char *c = create_raw("tgt.img", len);
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    BlockDriverState *src = open_raw(a, "src");
    BlockDriverState *tgt = open_raw(c, "tgt");
    BlockBackend *blk = blk_rw(src);
    BackupPerf perf = { .has_max_workers = true,
                        .max_workers = g_rand_int_range(r, 1, 5) };
    BackupJobOptions o;
    BlockJob *job;
    int pending = 0;

    pattern(data, len, seed);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.perf = &perf;
    o.cbw_buffer_size = buffer ? 3 * 64 * KiB : 0;
    job = start_backup(src, tgt, &o);
    while (!job_is_completed(&job->job)) {
        if (g_rand_int_range(r, 0, 3) == 0) {
            GuestW *g = g_new0(GuestW, 1);

            g->blk = blk;
            g->off = g_rand_int_range(r, 0, len);
            g->n = g_rand_int_range(r, 1, 200000);
            g->n = MIN(g->n, len - g->off);
            g->buf = g_malloc(g->n);
            memset(g->buf, g_rand_int(r) | 1, g->n);
            g->pending = &pending;
            pending++;
            qemu_coroutine_enter(qemu_coroutine_create(guest_w_entry, g));
        }
        aio_poll(qemu_get_aio_context(), g_rand_boolean(r));
    }
    while (pending) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_int_eq(finish(job, NULL), 0);
    g_ptr_array_set_size(events, 0);
    read_all(tgt, got, len);
    ck_assert_msg(memcmp(got, data, len) == 0, "seed %u", seed);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
}

START_TEST(test_job_point_in_time)
{
    int n = g_getenv("BLOCKD_STRESS") ? 100 : 10;

    for (int i = 0; i < n; i++) {
        job_trial(500 + i, i % 2);
    }
}
END_TEST

/* two backups in one transaction: one fails, the other is cancelled */
START_TEST(test_txn_failure_aborts_all)
{
    int64_t len = 1 * MiB;
    g_autofree char *a = create_raw("a.img", len);
    g_autofree char *b = create_raw("b.img", len);
    g_autofree char *c = create_raw("c.img", len);
    g_autofree char *d = create_raw("d.img", len);
    BlockDriverState *s1 = open_raw(a, "s1");
    BlockDriverState *t1 = open_json("{\"driver\":\"raw\",\"node-name\":"
                                     "\"t1\",\"file\":{\"driver\":"
                                     "\"blkdebug\",\"inject-error\":[{"
                                     "\"event\":\"write_aio\"}],\"image\":"
                                     "{\"driver\":\"file\",\"filename\":"
                                     "\"%s\"}}}", b);
    BlockDriverState *s2 = open_raw(c, "s2");
    BlockDriverState *t2 = open_raw(d, "t2");
    JobTxn *txn = job_txn_new();
    BackupJobOptions o;
    BlockJob *j1, *j2;
    BlockBackend *blk = blk_rw(s1);
    g_autofree uint8_t *data = g_malloc(len);

    pattern(data, len, 8);
    ck_assert_int_eq(blk_pwrite(blk, 0, len, data, 0), 0);
    blk_unref(blk);
    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.creation_flags = JOB_MANUAL_DISMISS;
    j1 = backup_job_create("j1", s1, t1, &o, NULL, NULL, txn, &error_abort);
    o.speed = 1;    /* j2 barely moves: still running when j1 fails */
    j2 = backup_job_create("j2", s2, t2, &o, NULL, NULL, txn, &error_abort);
    job_txn_unref(txn);
    job_start(&j1->job);
    job_start(&j2->job);
    poll_until_done(&j1->job);
    poll_until_done(&j2->job);
    ck_assert_int_eq(j1->job.ret, -EIO);
    ck_assert_int_eq(j2->job.ret, -ECANCELED);
    ck_assert_int_eq(finish(j1, NULL), -EIO);
    ck_assert_int_eq(finish(j2, NULL), -ECANCELED);
    g_ptr_array_set_size(events, 0);
    bdrv_unref(s1);
    bdrv_unref(t1);
    bdrv_unref(s2);
    bdrv_unref(t2);
}
END_TEST

static Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("backup");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, g_getenv("BLOCKD_STRESS") ? 600 : 60);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_full_read_write);
    tcase_add_test(tc, test_full_copy_range);
    tcase_add_test(tc, test_full_4097_bytes);
    tcase_add_test(tc, test_read_write_default_and_copy_range_fallback);
    tcase_add_test(tc, test_qcow2_target_2m_cluster);
    tcase_add_test(tc, test_compress);
    tcase_add_test(tc, test_sync_top);
    tcase_add_test(tc, test_sync_none_until_cancel);
    tcase_add_test(tc, test_cbw_zero_clusters);
    tcase_add_test(tc, test_error_policies);
    tcase_add_test(tc, test_cbw_error_break_guest_write);
    tcase_add_test(tc, test_cbw_error_break_snapshot);
    tcase_add_test(tc, test_rate_limit_pause_cancel);
    tcase_add_test(tc, test_job_point_in_time);
    tcase_add_test(tc, test_txn_failure_aborts_all);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backup_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
