/*
 * BlockJob: a Job that works on block nodes (backup, ...).
 *
 * On top of the generic Job (include/qemu/job.h) a block job
 * - holds the nodes it works on (a root BdrvChild each, with the
 *   permissions it needs) and blocks every other operation on them with
 *   "block device is in use by block job: <type>" until it is freed;
 * - pauses while one of its nodes is drained;
 * - has a speed (bytes/s) enforced with a RateLimit;
 * - applies an on-error policy (report/ignore/stop/enospc/auto), keeping
 *   an io-status and sending BLOCK_JOB_ERROR;
 * - sends QEMU's BLOCK_JOB_COMPLETED / CANCELLED / READY / PENDING
 *   events (device = job id) and answers query-block-jobs.
 */
#ifndef BLOCK_BLOCKJOB_H
#define BLOCK_BLOCKJOB_H

#include "qemu/job.h"
#include "qemu/ratelimit.h"
#include "block/block.h"

typedef struct BlockJobDriver BlockJobDriver;

typedef struct BlockJob {
    Job job;                    /* must come first */

    RateLimit limit;
    int64_t speed;              /* bytes/s, 0: unlimited */

    /* the op blocker reason installed on every node of the job */
    Error *blocker;
    BlockDeviceIoStatus iostatus;

    Notifier finalize_cancelled_notifier;
    Notifier finalize_completed_notifier;
    Notifier pending_notifier;
    Notifier ready_notifier;

    /* BdrvChild * edges to the nodes the job holds (newest first) */
    GSList *nodes;
} BlockJob;

/* Iterate block jobs: NULL to start. */
BlockJob *block_job_next(BlockJob *job);
/* The block job with this id, or NULL. */
BlockJob *block_job_get(const char *id);
/* Whether a Job is a block job (backup, commit, mirror, stream). */
bool is_block_job(Job *job);

/*
 * Attach bs to the job as child `name` with perm/shared_perm and block
 * all operations on it (except dataplane).  The edge goes away with
 * block_job_remove_all_bdrv() or when the job is freed.
 * Returns 0 or -EPERM (permission conflict, errp set).
 */
int block_job_add_bdrv(BlockJob *job, const char *name, BlockDriverState *bs,
                       uint64_t perm, uint64_t shared_perm, Error **errp);
/* The edge block_job_add_bdrv created for bs (NULL if none). */
BdrvChild *block_job_get_child(BlockJob *job, BlockDriverState *bs);
/* Drop every node of the job and lift its op blockers. */
void block_job_remove_all_bdrv(BlockJob *job);
/* Whether the job holds bs. */
bool block_job_has_bdrv(BlockJob *job, BlockDriverState *bs);

/*
 * block-job-set-speed: verb check, "Parameter 'speed' expects a
 * non-negative value"; takes effect at once (a sleeping job is woken to
 * recompute its delay when the limit was raised or lifted).
 */
bool block_job_set_speed(BlockJob *job, int64_t speed, Error **errp);

/* query-block-jobs entry ("Cannot query QEMU internal jobs"). */
BlockJobInfo *block_job_query(BlockJob *job, Error **errp);

/* Reset the io-status to ok (block-job-resume does this). */
void block_job_iostatus_reset(BlockJob *job);

bool block_job_is_internal(BlockJob *job);
const BlockJobDriver *block_job_driver(BlockJob *job);

#endif /* BLOCK_BLOCKJOB_H */
