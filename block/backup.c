/*
 * The backup block job (sync=full|top|none).
 *
 * backup_job_create() takes the point in time: it sets up the copy engine
 * (block-copy, every cluster dirty) and installs the copy-before-write
 * notifier on the source before it returns, so writes that complete after
 * creation never reach the snapshot -- that is what lets a transaction
 * take several consistent backups at once.  The job's run():
 *
 *   full/top  block_copy_run() walks the copy bitmap (top: skipping
 *             clusters the source's top layer does not allocate); on an
 *             error it asks block_job_error_action() with the source or
 *             target policy: report fails the job, ignore retries at once,
 *             stop pauses the job (BLOCK_JOB_ERROR, io-status) and retries
 *             the failed clusters after block-job-resume, as QEMU does.
 *   none      only the notifier copies; run() sleeps until the job is
 *             cancelled (BLOCK_JOB_CANCELLED is the normal end), waking up
 *             to rewrite CBW-buffer data whose background write failed.
 *
 * Rate limiting (speed) applies to the background walk only; the notifier
 * never waits for it.  Pausing stops the walk after its running tasks end,
 * so no background I/O happens while the job is paused; copy-before-write
 * goes on (guest writes must proceed).
 *
 * on-cbw-error: break-guest-write (QEMU's default) fails the guest write
 * when its copy-before-write fails, keeping the snapshot intact;
 * break-snapshot lets the guest write go on and fails the job.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/blockjob_int.h"
#include "block/block_int.h"
#include "qemu/trace.h"

#define BACKUP_CLUSTER_SIZE_DEFAULT (64 * KiB)

typedef struct BackupBlockJob {
    BlockJob common;
    BlockDriverState *source_bs;
    BlockDriverState *target_bs;
    BdrvChild *source;
    BdrvChild *target;
    BlockCopyState *bcs;
    BackupCBW *cbw;
    MirrorSyncMode sync_mode;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    int64_t len;
    int64_t cluster_size;
    uint64_t progress_done;
    /* break-snapshot happened */
    int snapshot_error;
    bool snapshot_error_is_read;
    /* engine counters, kept after the engine is gone */
    BlockCopyStats stats;
} BackupBlockJob;

static BackupBlockJob *to_backup(Job *job)
{
    return container_of(job, BackupBlockJob, common.job);
}

static void backup_progress(void *opaque)
{
    BackupBlockJob *s = opaque;
    uint64_t done, remaining;

    block_copy_progress(s->bcs, &done, &remaining);
    if (done > s->progress_done) {
        job_progress_update(&s->common.job, done - s->progress_done);
        s->progress_done = done;
    }
    job_progress_set_remaining(&s->common.job, remaining);
}

static void backup_cbw_error(void *opaque, int ret, bool is_read)
{
    BackupBlockJob *s = opaque;

    trace(backup_cbw_error, "job %s ret %d is_read %d",
          s->common.job.id ? s->common.job.id : "", ret, is_read);
    if (backup_cbw_snapshot_error(s->cbw)) {
        s->snapshot_error = ret;
        s->snapshot_error_is_read = is_read;
        job_enter(&s->common.job);
    }
}

/* ---- background walk hooks ---- */

static bool backup_should_stop(void *opaque)
{
    BackupBlockJob *s = opaque;

    return job_is_cancelled(&s->common.job) || s->snapshot_error;
}

static bool backup_pause_pending(void *opaque)
{
    BackupBlockJob *s = opaque;

    return s->common.job.pause_count > 0;
}

static void coroutine_fn backup_pause_point(void *opaque)
{
    BackupBlockJob *s = opaque;

    job_pause_point(&s->common.job);
}

static void coroutine_fn backup_ratelimit(void *opaque, int64_t bytes)
{
    BackupBlockJob *s = opaque;

    if (s->common.speed) {
        block_job_ratelimit_processed_bytes(&s->common, bytes);
        block_job_ratelimit_sleep(&s->common);
    }
}

/*
 * Apply the error policy.  Returns true to retry, false to give up (the
 * job fails with ret).
 */
static bool coroutine_fn backup_handle_error(BackupBlockJob *s, int ret,
                                             bool is_read)
{
    BlockErrorAction action;

    action = block_job_error_action(&s->common,
                                    is_read ? s->on_source_error :
                                              s->on_target_error,
                                    is_read, -ret);
    trace(backup_error, "job %s ret %d is_read %d action %d",
          s->common.job.id ? s->common.job.id : "", ret, is_read, action);
    if (action == BLOCK_ERROR_ACTION_REPORT) {
        return false;
    }
    /* stop: paused by the error action; wait here for the resume */
    job_pause_point(&s->common.job);
    return true;
}

static int coroutine_fn backup_run_none(BackupBlockJob *s)
{
    Job *job = &s->common.job;

    while (!job_is_cancelled(job) && !s->snapshot_error) {
        if (block_copy_captured_failed(s->bcs)) {
            int ret = block_copy_flush_captured(s->bcs);

            if (ret < 0 && !backup_handle_error(s, ret, false)) {
                return ret;
            }
            continue;
        }
        /* woken by a cancel, a pause/resume, or a CBW error */
        job_sleep_ns(job, 100 * SCALE_MS);
    }
    return 0;
}

static int coroutine_fn backup_run(Job *job, Error **errp)
{
    BackupBlockJob *s = to_backup(job);
    BlockCopyHooks hooks = {
        .should_stop = backup_should_stop,
        .pause_pending = backup_pause_pending,
        .pause_point = backup_pause_point,
        .ratelimit = backup_ratelimit,
        .opaque = s,
    };
    int ret = 0;

    backup_progress(s);
    if (s->sync_mode == MIRROR_SYNC_MODE_NONE) {
        ret = backup_run_none(s);
    } else {
        for (;;) {
            bool is_read = false;

            ret = block_copy_run(s->bcs, &hooks, &is_read);
            if (ret == 0 || ret == -ECANCELED) {
                ret = 0;
                break;
            }
            if (!backup_handle_error(s, ret, is_read)) {
                break;
            }
        }
    }
    block_copy_drain(s->bcs);
    if (ret == 0 && s->snapshot_error) {
        ret = s->snapshot_error;
        error_setg_errno(errp, -ret, "Copy-before-write failed, the "
                         "snapshot is broken");
    }
    /*
     * No flush here, as in QEMU: the target is flushed when it is closed
     * (blockdev-del, daemon exit).  A flush before BLOCK_JOB_COMPLETED
     * doubled the time of a page-cache backup (docs/backup.md).
     */
    return ret;
}

static void backup_clean(Job *job)
{
    BackupBlockJob *s = to_backup(job);

    if (s->cbw) {
        /* guest requests inside the notifier finish first */
        bdrv_drained_begin(s->source_bs);
        backup_cbw_detach(s->cbw);
        s->cbw = NULL;
        bdrv_drained_end(s->source_bs);
    }
    if (s->bcs) {
        block_copy_drain_sync(s->bcs);
        s->stats = *block_copy_stats(s->bcs);
        block_copy_state_free(s->bcs);
        s->bcs = NULL;
    }
}

static void backup_set_speed(BlockJob *job, int64_t speed)
{
    /* the walk reads job->speed before each chunk; nothing cached */
}

static const BlockJobDriver backup_job_driver = {
    .job_driver = {
        .instance_size = sizeof(BackupBlockJob),
        .job_type = JOB_TYPE_BACKUP,
        .run = backup_run,
        .clean = backup_clean,
        .free = block_job_free,
        .user_resume = block_job_user_resume,
    },
    .set_speed = backup_set_speed,
};

BlockCopyState *backup_job_block_copy(BlockJob *job)
{
    if (job->job.driver != &backup_job_driver.job_driver) {
        return NULL;
    }
    return to_backup(&job->job)->bcs;
}

const BlockCopyStats *backup_job_stats(BlockJob *job)
{
    BackupBlockJob *s;

    if (job->job.driver != &backup_job_driver.job_driver) {
        return NULL;
    }
    s = to_backup(&job->job);
    return s->bcs ? block_copy_stats(s->bcs) : &s->stats;
}

void backup_job_options_init(BackupJobOptions *opts, MirrorSyncMode sync)
{
    memset(opts, 0, sizeof(*opts));
    opts->sync = sync;
    opts->on_source_error = BLOCKDEV_ON_ERROR_REPORT;
    opts->on_target_error = BLOCKDEV_ON_ERROR_REPORT;
    opts->on_cbw_error = ON_CBW_ERROR_BREAK_GUEST_WRITE;
    opts->cbw_buffer_size = -1;
}

/* QEMU's rule: never less than 64 KiB nor the target's cluster size */
static int64_t backup_calculate_cluster_size(BlockDriverState *target,
                                             int64_t min_cluster_size)
{
    BlockDriverInfo bdi = { 0 };
    int64_t cs = MAX(BACKUP_CLUSTER_SIZE_DEFAULT, min_cluster_size);

    if (bdrv_get_info(target, &bdi) == 0 && bdi.cluster_size > 0) {
        cs = MAX(cs, bdi.cluster_size);
    }
    return cs;
}

BlockJob *backup_job_create(const char *job_id, BlockDriverState *bs,
                            BlockDriverState *target,
                            const BackupJobOptions *opts,
                            BlockCompletionFunc *cb, void *opaque,
                            JobTxn *txn, Error **errp)
{
    const BackupPerf *perf = opts->perf;
    BlockCopyOptions bco = { 0 };
    BackupBlockJob *s;
    MirrorSyncMode sync = opts->sync;
    int64_t len, target_len, cluster_size, min_cluster_size = 0;
    int64_t max_chunk = 0, max_workers = BLOCK_COPY_MAX_WORKERS_DEFAULT;

    assert(bs && target);
    if (bs == target) {
        error_setg(errp, "Source and target cannot be the same");
        return NULL;
    }
    if (sync == MIRROR_SYNC_MODE_INCREMENTAL ||
        sync == MIRROR_SYNC_MODE_BITMAP) {
        error_setg(errp, "must provide a valid bitmap name for '%s' sync mode",
                   MirrorSyncMode_str(sync));
        return NULL;
    }
    if (opts->compress && !(target->supported_write_flags &
                            BDRV_REQ_WRITE_COMPRESSED)) {
        error_setg(errp, "Compression is not supported for this drive %s",
                   bdrv_get_device_name(target));
        return NULL;
    }
    if (bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_BACKUP_SOURCE, errp) ||
        bdrv_op_is_blocked(target, BLOCK_OP_TYPE_BACKUP_TARGET, errp)) {
        return NULL;
    }
    if (perf && perf->has_max_workers) {
        max_workers = perf->max_workers;
        if (max_workers < 1 || max_workers > INT_MAX) {
            error_setg(errp, "max-workers must be between 1 and %d",
                       INT_MAX);
            return NULL;
        }
    }
    if (perf && perf->has_max_chunk) {
        max_chunk = perf->max_chunk;
        if (max_chunk < 0) {
            error_setg(errp, "max-chunk must be zero (which means no limit) "
                       "or positive");
            return NULL;
        }
    }
    if (perf && perf->has_min_cluster_size) {
        min_cluster_size = perf->min_cluster_size;
        if (min_cluster_size & (min_cluster_size - 1) ||
            min_cluster_size > INT_MAX) {
            error_setg(errp, "min-cluster-size needs to be a power of 2");
            return NULL;
        }
    }

    len = bdrv_getlength(bs);
    if (len < 0) {
        error_setg_errno(errp, -len, "Unable to get length for '%s'",
                         bdrv_get_device_or_node_name(bs));
        return NULL;
    }
    target_len = bdrv_getlength(target);
    if (target_len < 0) {
        error_setg_errno(errp, -target_len, "Unable to get length for '%s'",
                         bdrv_get_device_or_node_name(target));
        return NULL;
    }
    if (target_len != len) {
        error_setg(errp, "Source and target image have different sizes");
        return NULL;
    }
    cluster_size = backup_calculate_cluster_size(target, min_cluster_size);
    if (max_chunk && max_chunk < cluster_size) {
        error_setg(errp, "Required max-chunk (%" PRIi64 ") is less than "
                   "backup cluster size (%" PRIi64 ")", max_chunk,
                   cluster_size);
        return NULL;
    }
    if (sync == MIRROR_SYNC_MODE_TOP &&
        !bdrv_backing_bs(bdrv_skip_filters(bs))) {
        sync = MIRROR_SYNC_MODE_FULL;   /* nothing below: same thing */
    }

    /* the source keeps its writers; nobody resizes either node */
    s = block_job_create(job_id, &backup_job_driver, txn, bs,
                         BLK_PERM_CONSISTENT_READ,
                         BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                         BLK_PERM_WRITE_UNCHANGED, opts->speed,
                         opts->creation_flags, cb, opaque, errp);
    if (!s) {
        return NULL;
    }
    /*
     * Share write on the target, as QEMU's copy-before-write filter does:
     * with fleecing the source is in the target's backing chain, and the
     * target's backing edge may only let others write the source (the
     * guest!) if the target's own users share write.  Never resize.
     */
    if (block_job_add_bdrv(&s->common, "target", target, BLK_PERM_WRITE,
                           BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                           BLK_PERM_WRITE_UNCHANGED, errp) < 0) {
        goto fail;
    }
    s->source_bs = bs;
    s->target_bs = target;
    s->source = block_job_get_child(&s->common, bs);
    s->target = block_job_get_child(&s->common, target);
    s->sync_mode = sync;
    s->on_source_error = opts->on_source_error;
    s->on_target_error = opts->on_target_error;
    s->len = len;
    s->cluster_size = cluster_size;

    bco.cluster_size = cluster_size;
    /*
     * QEMU's default: read/write.  On filesystems without reflink
     * copy_file_range is an in-kernel splice copy that is slower than
     * read/write through the page cache (docs/backup.md, issue 8).
     */
    bco.use_copy_range = perf && perf->has_use_copy_range &&
                         perf->use_copy_range;
    /*
     * Clone (reflink) data by default where the filesystem can: a backup
     * on XFS/btrfs then costs metadata only.  The engine leaves it off
     * with compression (clusters must be written compressed) and when
     * fleecing (target reads fall through to the source); elsewhere the
     * first clone fails with -ENOTSUP and the job copies as above.
     */
    bco.use_clone = true;
    bco.max_workers = max_workers;
    bco.max_chunk = max_chunk;
    bco.compress = opts->compress;
    bco.skip_unallocated = sync == MIRROR_SYNC_MODE_TOP;
    bco.cbw_buffer_limit = opts->cbw_buffer_size < 0 ?
                           BACKUP_CBW_BUFFER_DEFAULT : opts->cbw_buffer_size;
    s->bcs = block_copy_state_new(s->source, s->target, &bco, errp);
    if (!s->bcs) {
        goto fail;
    }
    block_copy_set_progress_callback(s->bcs, backup_progress, s);
    job_progress_set_remaining(&s->common.job, len);

    /* the point in time: from here on, writes copy old data out first */
    s->cbw = backup_cbw_attach(bs, s->bcs, opts->on_cbw_error,
                               backup_cbw_error, s);
    trace(backup_job_create, "job %s source %s target %s sync %s cluster %"
          PRId64 " copy_range %d", s->common.job.id ? s->common.job.id : "",
          bdrv_get_node_name(bs), bdrv_get_node_name(target),
          MirrorSyncMode_str(sync), cluster_size, bco.use_copy_range);
    return &s->common;

fail:
    backup_clean(&s->common.job);
    job_early_fail(&s->common.job);
    return NULL;
}
