/*
 * Block job internals: for the implementers of block job drivers
 * (block/backup.c), not for the QMP layer.
 */
#ifndef BLOCK_BLOCKJOB_INT_H
#define BLOCK_BLOCKJOB_INT_H

#include "block/blockjob.h"

/* Rate-limit slice of block jobs (QEMU's BLOCK_JOB_SLICE_TIME, 100 ms). */
#define BLOCK_JOB_SLICE_TIME RATELIMIT_SLICE_NS

/*
 * A block job driver.  job_driver.free must be block_job_free and
 * job_driver.user_resume block_job_user_resume (as in QEMU; they may be
 * wrapped by functions that call them).
 */
struct BlockJobDriver {
    JobDriver job_driver;

    /* The speed changed (after the limit was updated). */
    void (*set_speed)(BlockJob *job, int64_t speed);

    /* Fill in driver-specific parts of query-block-jobs. */
    void (*query)(BlockJob *job, BlockJobInfo *info);
};

/*
 * Create a block job on bs (CREATED; start it with job_start()).
 *
 * job_id NULL (and not JOB_INTERNAL): the device name of bs, which is ""
 * for a node without a BlockBackend, so that fails with "Invalid job ID
 * ''" exactly as QEMU does.  bs is attached as "main node" with
 * perm/shared_perm; speed as block_job_set_speed.  flags: JOB_*.
 * cb(opaque, ret) when the job finalizes.  NULL on error (errp set).
 */
void *block_job_create(const char *job_id, const BlockJobDriver *driver,
                       JobTxn *txn, BlockDriverState *bs, uint64_t perm,
                       uint64_t shared_perm, int64_t speed, int flags,
                       BlockCompletionFunc *cb, void *opaque, Error **errp);

/* JobDriver.free for block jobs: drops nodes, blocker, rate limit. */
void block_job_free(Job *job);
/* JobDriver.user_resume for block jobs: resets the io-status. */
void block_job_user_resume(Job *job);

/*
 * Rate limiting from run(): account n bytes just processed, and sleep
 * (job_sleep_ns, so pause/cancel wake it) until the limit allows more.
 */
void block_job_ratelimit_processed_bytes(BlockJob *job, uint64_t n);
void coroutine_fn block_job_ratelimit_sleep(BlockJob *job);

/*
 * What to do about I/O error `error` (positive errno) under policy
 * on_err:
 *   report -> REPORT; ignore -> IGNORE; stop -> STOP;
 *   enospc, auto -> STOP for ENOSPC, REPORT otherwise.
 * Sends BLOCK_JOB_ERROR {device, operation, action} (not for internal
 * jobs).  STOP also user-pauses the job (block-job-resume continues it)
 * and sets the io-status to failed / nospace.  The caller retries after
 * STOP, gives up after REPORT and carries on after IGNORE.
 */
BlockErrorAction block_job_error_action(BlockJob *job, BlockdevOnError on_err,
                                        int is_read, int error);

#endif /* BLOCK_BLOCKJOB_INT_H */
