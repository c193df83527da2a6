/*
 * Backup: the copy-before-write notifier and the backup block job.
 *
 * The engine is block-copy (include/block/block-copy.h).  This header
 * adds
 * - the copy-before-write (CBW) notifier: a before-write notifier on the
 *   source node that, for every write/write_zeroes/discard, copies (or
 *   captures into the CBW buffer) the not-yet-copied clusters of the
 *   request's range before the request reaches the driver;
 * - the backup job (sync=full|top|none) on the block job framework.
 * See docs/backup.md for options, defaults and the CBW buffer design.
 */
#ifndef BLOCK_BACKUP_H
#define BLOCK_BACKUP_H

#include "block/block-copy.h"
#include "block/blockjob.h"
#include "qapi-types.h"

/* ---- the copy-before-write notifier ---- */

typedef struct BackupCBW BackupCBW;

/*
 * Called when copy-before-write failed (ret -errno, is_read: the source
 * read failed).  With break-snapshot it is called once, when the snapshot
 * breaks.
 */
typedef void BackupCBWErrorFunc(void *opaque, int ret, bool is_read);

/*
 * Install the notifier on source (the node bcs copies from).  on_error
 * (may be NULL) is told about every failure.
 * - break-guest-write (QEMU's default): the guest request fails with the
 *   CBW error; the clusters stay dirty (the background copy retries).
 * - break-snapshot: the guest request goes on, the snapshot is broken
 *   for good (backup_cbw_snapshot_error() returns the error; the job
 *   fails with it) and later writes no longer copy.
 */
BackupCBW *backup_cbw_attach(BlockDriverState *source, BlockCopyState *bcs,
                             OnCbwError on_cbw_error,
                             BackupCBWErrorFunc *on_error, void *opaque);
/* Remove the notifier (waits for nothing: CBWs run in guest requests). */
void backup_cbw_detach(BackupCBW *cbw);
/* break-snapshot: the error that broke the snapshot, else 0 */
int backup_cbw_snapshot_error(BackupCBW *cbw);
/* CBW calls that are still running (guest requests inside the notifier) */
int backup_cbw_in_flight(BackupCBW *cbw);

/* ---- the backup job ---- */

/* blockd's option beyond QEMU: CBW buffer size (bytes, 0 = off) */
#define BACKUP_CBW_BUFFER_DEFAULT BLOCK_COPY_CBW_BUFFER_DEFAULT

typedef struct BackupJobOptions {
    MirrorSyncMode sync;
    int64_t speed;                      /* bytes/s, 0 = unlimited */
    bool compress;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    OnCbwError on_cbw_error;
    const BackupPerf *perf;             /* x-perf, may be NULL */
    /*
     * x-cbw-buffer-size: bytes of old data the CBW path may hold in
     * memory; -1 = default (BACKUP_CBW_BUFFER_DEFAULT), 0 = disabled.
     */
    int64_t cbw_buffer_size;
    int creation_flags;                 /* JOB_* */
} BackupJobOptions;

/* Defaults: sync as given, report/report, break-guest-write, buffer -1. */
void backup_job_options_init(BackupJobOptions *opts, MirrorSyncMode sync);

/*
 * Create (not start) a backup job from bs to target.  job_id NULL: the
 * device name of bs.  cb(opaque, ret) runs when the job finalizes; txn
 * may be NULL.  QEMU's validations and error wording (see
 * QEMU-COMPAT.md); the job holds op blockers backup-source on bs and
 * backup-target on target until it is freed.  Start it with
 * job_start(&job->job); to drop a created job that was never started,
 * use job_cancel_sync() (it runs the job's clean-up, which removes the
 * copy-before-write notifier), not job_early_fail().
 */
BlockJob *backup_job_create(const char *job_id, BlockDriverState *bs,
                            BlockDriverState *target,
                            const BackupJobOptions *opts,
                            BlockCompletionFunc *cb, void *opaque,
                            JobTxn *txn, Error **errp);

/* The engine of a backup job (tests, fleecing readers); NULL if not one */
BlockCopyState *backup_job_block_copy(BlockJob *job);
/* Engine counters (still valid after the job ended, until it is freed) */
const BlockCopyStats *backup_job_stats(BlockJob *job);

#endif /* BLOCK_BACKUP_H */
