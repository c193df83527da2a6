/*
 * QMP handlers for backup: blockdev-backup and drive-backup.
 *
 * Both commands go through two steps so that transaction (see
 * blockdev-transaction.c) can run them all-or-nothing:
 *
 *   prepare  look the nodes up, check the arguments, (drive-backup)
 *            create and open the target, and create the backup job.
 *            Creating the job is the point in time: from then on the
 *            copy-before-write notifier copies old data out before the
 *            source is overwritten.  The job is in state 'created'.
 *   start    job_start(); or, to roll back, job_cancel_sync().
 *
 * Checks and their wording follow QEMU's blockdev.c (do_backup_common,
 * drive_backup_prepare) and block/backup.c; backup_job_create() has the
 * engine's own checks (same nodes, compression, op blockers, x-perf).
 *
 * Where blockd differs from QEMU (documented in qapi/backup.json and
 * docs/backup.md):
 * - job-id defaults to the source node name.  QEMU takes the device
 *   (BlockBackend) name, which nodes of a storage daemon do not have, so
 *   qemu-storage-daemon rejects a missing job-id with "Invalid job ID ''".
 * - filter-node-name is refused: blockd's copy-before-write is a notifier
 *   on the source, there is no filter node to name.  discard-source=true
 *   is refused too.
 * - x-perf.x-cbw-buffer-size (unstable) sizes the CBW buffer.
 * - bitmaps do not exist yet, so any bitmap name is "could not be found".
 *
 * drive-backup's target node belongs to the job: the job holds the only
 * reference, so the node goes away when the job is freed (as in QEMU).
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/block_int.h"
#include "block/blockdev.h"
#include "qapi-commands.h"
#include "qemu/trace.h"

/*
 * The checks of QEMU's do_backup_common() on the bitmap arguments.  No
 * node has dirty bitmaps yet, so a named bitmap is never found.
 */
static bool backup_check_bitmap(BackupCommon *backup, Error **errp)
{
    if ((backup->sync == MIRROR_SYNC_MODE_BITMAP ||
         backup->sync == MIRROR_SYNC_MODE_INCREMENTAL) && !backup->bitmap) {
        error_setg(errp, "must provide a valid bitmap name for '%s' sync mode",
                   MirrorSyncMode_str(backup->sync));
        return false;
    }
    if (backup->sync == MIRROR_SYNC_MODE_INCREMENTAL &&
        backup->has_bitmap_mode &&
        backup->bitmap_mode != BITMAP_SYNC_MODE_ON_SUCCESS) {
        error_setg(errp, "Bitmap sync mode must be '%s' when using sync "
                   "mode '%s'", BitmapSyncMode_str(BITMAP_SYNC_MODE_ON_SUCCESS),
                   MirrorSyncMode_str(backup->sync));
        return false;
    }
    if (backup->bitmap) {
        error_setg(errp, "Bitmap '%s' could not be found", backup->bitmap);
        return false;
    }
    if (backup->has_bitmap_mode) {
        error_setg(errp, "Cannot specify bitmap sync mode without a bitmap");
        return false;
    }
    return true;
}

/* Turn the QMP arguments into BackupJobOptions; false if one is refused */
static bool backup_common_options(BackupCommon *backup, BackupJobOptions *o,
                                  Error **errp)
{
    if (!backup_check_bitmap(backup, errp)) {
        return false;
    }
    if (backup->filter_node_name) {
        error_setg(errp, "filter-node-name is not supported: blockd copies "
                   "before write without a filter node");
        return false;
    }
    if (backup->has_discard_source && backup->discard_source) {
        error_setg(errp, "discard-source is not supported");
        return false;
    }

    backup_job_options_init(o, backup->sync);
    o->speed = backup->has_speed ? backup->speed : 0;
    o->compress = backup->has_compress && backup->compress;
    if (backup->has_on_source_error) {
        o->on_source_error = backup->on_source_error;
    }
    if (backup->has_on_target_error) {
        o->on_target_error = backup->on_target_error;
    }
    if (backup->has_on_cbw_error) {
        o->on_cbw_error = backup->on_cbw_error;
    }
    if (backup->x_perf) {
        o->perf = backup->x_perf;
        if (backup->x_perf->has_x_cbw_buffer_size) {
            if (backup->x_perf->x_cbw_buffer_size > INT64_MAX) {
                error_setg(errp, "x-cbw-buffer-size must be at most %" PRId64,
                           INT64_MAX);
                return false;
            }
            o->cbw_buffer_size = backup->x_perf->x_cbw_buffer_size;
        }
    }
    if (backup->has_auto_finalize && !backup->auto_finalize) {
        o->creation_flags |= JOB_MANUAL_FINALIZE;
    }
    if (backup->has_auto_dismiss && !backup->auto_dismiss) {
        o->creation_flags |= JOB_MANUAL_DISMISS;
    }
    return true;
}

/* The part shared by both commands: create the job from bs to target */
static BlockJob *do_backup_common(BackupCommon *backup, BlockDriverState *bs,
                                  BlockDriverState *target, JobTxn *txn,
                                  Error **errp)
{
    BackupJobOptions opts;
    BlockJob *job;

    if (!backup_common_options(backup, &opts, errp)) {
        return NULL;
    }
    job = backup_job_create(backup->job_id ? backup->job_id :
                            bdrv_get_node_name(bs), bs, target, &opts,
                            NULL, NULL, txn, errp);
    if (job) {
        trace(qmp_backup_prepare, "job %s source %s target %s sync %s",
              job->job.id, bdrv_get_node_name(bs),
              bdrv_get_node_name(target), MirrorSyncMode_str(backup->sync));
    }
    return job;
}

BlockJob *blockdev_backup_prepare(BlockdevBackup *backup, JobTxn *txn,
                                  Error **errp)
{
    BlockDriverState *bs, *target;

    bs = bdrv_lookup_bs(backup->device, backup->device, errp);
    if (!bs) {
        return NULL;
    }
    target = bdrv_lookup_bs(backup->target, backup->target, errp);
    if (!target) {
        return NULL;
    }
    return do_backup_common(qapi_BlockdevBackup_base(backup), bs, target,
                            txn, errp);
}

void qmp_blockdev_backup(BlockdevBackup *backup, Error **errp)
{
    BlockJob *job = blockdev_backup_prepare(backup, NULL, errp);

    if (job) {
        job_start(&job->job);
    }
}

/* Create drive-backup's target image (mode absolute-paths) */
static bool drive_backup_create(const char *filename, const char *format,
                                int64_t size, BlockDriverState *backing,
                                Error **errp)
{
    BlockDriver *drv = bdrv_find_format(format);
    g_autoptr(json_t) opts = json_object();

    if (!drv || !drv->is_format || !drv->bdrv_co_create_opts) {
        error_setg(errp, "Unknown file format '%s'", format);
        return false;
    }
    if (backing && !drv->supports_backing) {
        error_setg(errp, "Backing file not supported for file format '%s'",
                   format);
        return false;
    }
    json_object_set_new(opts, BLOCK_OPT_SIZE,
                        json_sprintf("%" PRId64, size));
    if (backing) {
        const char *name = backing->filename[0] ? backing->filename :
                           bdrv_get_filename(backing);

        json_object_set_new(opts, BLOCK_OPT_BACKING_FILE, json_string(name));
        json_object_set_new(opts, BLOCK_OPT_BACKING_FMT,
                            json_string(bdrv_get_format_name(backing)));
    }
    return bdrv_create(drv, filename, opts, errp) >= 0;
}

BlockJob *drive_backup_prepare(DriveBackup *backup, JobTxn *txn,
                               Error **errp)
{
    BackupCommon *common = qapi_DriveBackup_base(backup);
    BlockDriverState *bs, *target, *backing = NULL;
    NewImageMode mode = backup->has_mode ? backup->mode :
                        NEW_IMAGE_MODE_ABSOLUTE_PATHS;
    const char *format = backup->format;
    g_autoptr(json_t) opts = NULL;
    int flags = BDRV_O_RDWR;
    bool set_backing = false;
    BlockJob *job;
    int64_t size;

    bs = bdrv_lookup_bs(common->device, common->device, errp);
    if (!bs) {
        return NULL;
    }
    if (!format && mode != NEW_IMAGE_MODE_EXISTING) {
        format = bdrv_get_format_name(bs);
    }
    /* before creating anything */
    if (bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_BACKUP_SOURCE, errp)) {
        return NULL;
    }

    if (common->sync == MIRROR_SYNC_MODE_TOP) {
        /* the new image gets the source's backing file */
        backing = bdrv_backing_bs(bdrv_skip_filters(bs));
        if (!backing) {
            common->sync = MIRROR_SYNC_MODE_FULL;
        }
    }
    if (common->sync == MIRROR_SYNC_MODE_NONE) {
        /* fleecing: the target reads through to the live source */
        backing = bs;
        flags |= BDRV_O_NO_BACKING;
        set_backing = true;
    }

    size = bdrv_getlength(bs);
    if (size < 0) {
        error_setg_errno(errp, -size, "bdrv_getlength failed");
        return NULL;
    }
    if (mode != NEW_IMAGE_MODE_EXISTING &&
        !drive_backup_create(backup->target, format, size, backing, errp)) {
        return NULL;
    }

    opts = json_object();
    json_object_set_new(opts, "discard", json_string("unmap"));
    json_object_set_new(opts, "detect-zeroes", json_string("unmap"));
    target = bdrv_open_file(backup->target, format, opts, flags, errp);
    if (!target) {
        return NULL;
    }
    if (set_backing && !bdrv_set_backing_hd(target, bs, errp)) {
        bdrv_unref(target);
        return NULL;
    }
    job = do_backup_common(common, bs, target, txn, errp);
    /* the job holds the target now; without a job it is closed here */
    bdrv_unref(target);
    return job;
}

void qmp_drive_backup(DriveBackup *backup, Error **errp)
{
    BlockJob *job = drive_backup_prepare(backup, NULL, errp);

    if (job) {
        job_start(&job->job);
    }
}
