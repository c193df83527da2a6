/*
 * Throughput of a full backup through the backup job, without the daemon:
 *
 *   backup-engine SOURCE TARGET [FORMAT] [copy-range|read-write]
 *
 * SOURCE is opened as raw, TARGET with FORMAT (raw or qcow2; it must
 * exist with the source's size).  Prints one line:
 *   backup-engine: BYTES bytes in SECONDS s (MiB/s MiB/s) copy_range=...
 * Build: make bench builds it as $(BUILD)/bench/backup-engine when the
 * Makefile has a bench rule; otherwise compile it against libblockd.a.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/block_int.h"

static BlockDriverState *open_node(const char *path, const char *fmt,
                                   const char *name)
{
    g_autofree char *s = g_strdup_printf(
        "{\"driver\":\"%s\",\"node-name\":\"%s\",\"file\":{\"driver\":"
        "\"file\",\"filename\":\"%s\"}}", fmt, name, path);
    g_autoptr(json_t) o = json_loads(s, 0, NULL);

    return bdrv_open(o, &error_abort);
}

int main(int argc, char **argv)
{
    BlockDriverState *src, *tgt;
    BackupJobOptions o;
    BackupPerf perf = { 0 };
    BlockJob *job;
    const BlockCopyStats *st;
    int64_t len, t0, t1;
    double secs;
    Job *j;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SOURCE TARGET [raw|qcow2] "
                "[copy-range|read-write]\n", argv[0]);
        return 2;
    }
    qemu_init_main_loop();
    bdrv_init();
    src = open_node(argv[1], "raw", "src");
    tgt = open_node(argv[2], argc > 3 ? argv[3] : "raw", "tgt");
    len = bdrv_getlength(src);

    backup_job_options_init(&o, MIRROR_SYNC_MODE_FULL);
    o.creation_flags = JOB_MANUAL_DISMISS;
    if (argc > 4) {
        perf.has_use_copy_range = true;
        perf.use_copy_range = !strcmp(argv[4], "copy-range");
        o.perf = &perf;
    }
    t0 = g_get_monotonic_time();
    job = backup_job_create("bench", src, tgt, &o, NULL, NULL, NULL,
                            &error_abort);
    j = &job->job;
    job_start(j);
    while (j->status != JOB_STATUS_CONCLUDED) {
        aio_poll(qemu_get_aio_context(), true);
    }
    t1 = g_get_monotonic_time();
    if (j->ret) {
        fprintf(stderr, "backup failed: %s\n", strerror(-j->ret));
        return 1;
    }
    st = backup_job_stats(job);
    secs = (t1 - t0) / 1e6;
    printf("backup-engine: %" PRId64 " bytes in %.3f s (%.0f MiB/s) "
           "copy_range=%" PRIu64 " rw=%" PRIu64 " zero=%" PRIu64 "\n",
           len, secs, len / (double)MiB / secs, st->copy_range_bytes,
           st->rw_bytes, st->zero_bytes);
    job_dismiss(&j, &error_abort);
    bdrv_unref(src);
    bdrv_unref(tgt);
    return 0;
}
