/*
 * BlockJob: block-layer side of jobs (nodes, op blockers, drain, speed,
 * error policy, QMP events and query-block-jobs).
 *
 * A block job is a Job whose driver is a BlockJobDriver.  It reaches its
 * nodes through root BdrvChild edges (parent_desc "<type> job '<id>'"),
 * one per block_job_add_bdrv(); each edge
 *  - carries the job's permissions, so conflicting users are refused;
 *  - installs job->blocker on every op type of the node (all but
 *    dataplane), so blockdev-del, another backup, ... fail with
 *    "Node '%s' is busy: block device is in use by block job: backup";
 *  - pauses the job while the node is drained (drained_begin/_end hooks;
 *    a node drained already when attached counts as well).
 * The edges live until block_job_remove_all_bdrv() (a driver's clean()
 * may call it early) or block_job_free(), i.e. the job's last reference.
 *
 * QMP events hang off the Job notifier lists: BLOCK_JOB_COMPLETED or
 * BLOCK_JOB_CANCELLED when a started job finalizes (CANCELLED iff it was
 * force-cancelled), BLOCK_JOB_READY on READY, BLOCK_JOB_PENDING on
 * PENDING when auto-finalize is off.  Internal jobs send none.
 */
#include "qemu/osdep.h"
#include "block/blockjob_int.h"
#include "block/block_int.h"
#include "qemu/trace.h"
#include "qapi-events.h"

static bool job_is_blockjob_type(JobType type)
{
    return type == JOB_TYPE_BACKUP || type == JOB_TYPE_COMMIT ||
           type == JOB_TYPE_MIRROR || type == JOB_TYPE_STREAM;
}

bool is_block_job(Job *job)
{
    return job_is_blockjob_type(job_type(job));
}

const BlockJobDriver *block_job_driver(BlockJob *job)
{
    return container_of(job->job.driver, BlockJobDriver, job_driver);
}

bool block_job_is_internal(BlockJob *job)
{
    return job->job.id == NULL;
}

BlockJob *block_job_next(BlockJob *bjob)
{
    Job *job = bjob ? &bjob->job : NULL;

    do {
        job = job_next(job);
    } while (job && !is_block_job(job));

    return job ? container_of(job, BlockJob, job) : NULL;
}

BlockJob *block_job_get(const char *id)
{
    Job *job = job_get(id);

    if (job && is_block_job(job)) {
        return container_of(job, BlockJob, job);
    }
    return NULL;
}

/* ---- nodes ---- */

static void child_job_drained_begin(BdrvChild *c)
{
    BlockJob *job = c->opaque;

    job_pause(&job->job);
    if (job->job.driver->drain) {
        job->job.driver->drain(&job->job);
    }
}

static void child_job_drained_end(BdrvChild *c)
{
    BlockJob *job = c->opaque;

    job_resume(&job->job);
}

int block_job_add_bdrv(BlockJob *job, const char *name, BlockDriverState *bs,
                       uint64_t perm, uint64_t shared_perm, Error **errp)
{
    g_autofree char *desc = g_strdup_printf("%s job '%s'",
                                            job_type_str(&job->job),
                                            job->job.id ? job->job.id : "");
    BdrvChild *c;

    c = bdrv_root_attach_child(bs, name, desc, 0, perm, shared_perm, job,
                               errp);
    if (!c) {
        return -EPERM;
    }
    c->drained_begin = child_job_drained_begin;
    c->drained_end = child_job_drained_end;
    /* already inside drained sections: they count for the job too */
    for (int i = 0; i < bs->quiesce_counter; i++) {
        job_pause(&job->job);
    }

    job->nodes = g_slist_prepend(job->nodes, c);
    bdrv_op_block_all(bs, job->blocker);
    trace(block_job_add_bdrv, "job %p node %s perm 0x%" PRIx64
          " shared 0x%" PRIx64, job, bdrv_get_node_name(bs), perm,
          shared_perm);
    return 0;
}

BdrvChild *block_job_get_child(BlockJob *job, BlockDriverState *bs)
{
    for (GSList *l = job->nodes; l; l = l->next) {
        BdrvChild *c = l->data;

        if (c->bs == bs) {
            return c;
        }
    }
    return NULL;
}

bool block_job_has_bdrv(BlockJob *job, BlockDriverState *bs)
{
    return block_job_get_child(job, bs) != NULL;
}

void block_job_remove_all_bdrv(BlockJob *job)
{
    /* Unlink each edge before detaching it: detaching may call back. */
    while (job->nodes) {
        GSList *l = job->nodes;
        BdrvChild *c = l->data;
        BlockDriverState *bs = c->bs;
        int drained = bs->quiesce_counter;

        job->nodes = l->next;
        g_slist_free_1(l);

        bdrv_op_unblock_all(bs, job->blocker);
        c->drained_begin = NULL;
        c->drained_end = NULL;
        /* leave the drained sections of this node */
        for (int i = 0; i < drained; i++) {
            job_resume(&job->job);
        }
        bdrv_root_unref_child(c);
    }
}

/* ---- speed ---- */

static bool job_sleep_timer_armed(Job *job)
{
    return timer_pending(job->sleep_timer);
}

bool block_job_set_speed(BlockJob *job, int64_t speed, Error **errp)
{
    const BlockJobDriver *drv = block_job_driver(job);
    int64_t old_speed = job->speed;

    if (job_apply_verb(&job->job, JOB_VERB_SET_SPEED, errp) < 0) {
        return false;
    }
    if (speed < 0) {
        error_setg(errp, "Parameter '%s' expects %s", "speed",
                   "a non-negative value");
        return false;
    }

    /*
     * Start the accounting afresh: what was dispatched under the old
     * limit must not be re-priced at the new one (a job that always
     * wakes exactly at its slice end never starts a new slice, so after
     * lowering the speed it would otherwise stall for its whole history
     * re-paid at the lower rate).  QEMU keeps the old accounting.
     */
    ratelimit_destroy(&job->limit);
    ratelimit_init(&job->limit);
    ratelimit_set_speed(&job->limit, speed, BLOCK_JOB_SLICE_TIME);
    job->speed = speed;
    trace(block_job_set_speed, "job %p speed %" PRId64, job, speed);

    if (drv->set_speed) {
        drv->set_speed(job, speed);
    }

    /* A lower (non-zero) limit lets the current sleep run its course. */
    if (speed && speed <= old_speed) {
        return true;
    }

    /* Kick a rate-limit sleep so the job recomputes its delay. */
    if (job_sleep_timer_armed(&job->job)) {
        job_enter(&job->job);
    }
    return true;
}

void block_job_ratelimit_processed_bytes(BlockJob *job, uint64_t n)
{
    ratelimit_calculate_delay(&job->limit, n);
}

void coroutine_fn block_job_ratelimit_sleep(BlockJob *job)
{
    int64_t delay_ns;

    /*
     * Sleep at least once (a pause point).  If woken early, sleep again
     * for what is still owed; recompute each time, since the speed may
     * have changed meanwhile.
     */
    do {
        delay_ns = ratelimit_calculate_delay(&job->limit, 0);
        job_sleep_ns(&job->job, delay_ns);
    } while (delay_ns && !job_is_cancelled(&job->job));
}

/* ---- io-status and error policy ---- */

void block_job_iostatus_reset(BlockJob *job)
{
    if (job->iostatus == BLOCK_DEVICE_IO_STATUS_OK) {
        return;
    }
    assert(job->job.user_paused && job->job.pause_count > 0);
    job->iostatus = BLOCK_DEVICE_IO_STATUS_OK;
}

static void block_job_iostatus_set_err(BlockJob *job, int error)
{
    if (job->iostatus == BLOCK_DEVICE_IO_STATUS_OK) {
        job->iostatus = error == ENOSPC ? BLOCK_DEVICE_IO_STATUS_NOSPACE :
                                          BLOCK_DEVICE_IO_STATUS_FAILED;
    }
}

void block_job_user_resume(Job *job)
{
    block_job_iostatus_reset(container_of(job, BlockJob, job));
}

BlockErrorAction block_job_error_action(BlockJob *job, BlockdevOnError on_err,
                                        int is_read, int error)
{
    BlockErrorAction action;

    switch (on_err) {
    case BLOCKDEV_ON_ERROR_ENOSPC:
    case BLOCKDEV_ON_ERROR_AUTO:
        action = (error == ENOSPC) ? BLOCK_ERROR_ACTION_STOP
                                   : BLOCK_ERROR_ACTION_REPORT;
        break;
    case BLOCKDEV_ON_ERROR_STOP:
        action = BLOCK_ERROR_ACTION_STOP;
        break;
    case BLOCKDEV_ON_ERROR_REPORT:
        action = BLOCK_ERROR_ACTION_REPORT;
        break;
    case BLOCKDEV_ON_ERROR_IGNORE:
        action = BLOCK_ERROR_ACTION_IGNORE;
        break;
    default:
        g_assert_not_reached();
    }
    trace(block_job_error_action, "job %p %s error %d action %s", job,
          is_read ? "read" : "write", error, BlockErrorAction_str(action));
    if (!block_job_is_internal(job)) {
        qapi_event_send_block_job_error(job->job.id,
                                        is_read ? IO_OPERATION_TYPE_READ
                                                : IO_OPERATION_TYPE_WRITE,
                                        action);
    }
    if (action == BLOCK_ERROR_ACTION_STOP) {
        if (!job->job.user_paused) {
            job_pause(&job->job);
            /* a user-visible pause: block-job-resume lifts it */
            job->job.user_paused = true;
        }
        block_job_iostatus_set_err(job, error);
    }
    return action;
}

/* ---- events ---- */

static void block_job_event_cancelled(Notifier *n, void *opaque)
{
    BlockJob *job = opaque;
    uint64_t current, total;

    if (block_job_is_internal(job)) {
        return;
    }
    progress_get_snapshot(&job->job.progress, &current, &total);
    qapi_event_send_block_job_cancelled(job_type(&job->job), job->job.id,
                                        total, current, job->speed);
}

static void block_job_event_completed(Notifier *n, void *opaque)
{
    BlockJob *job = opaque;
    const char *msg = NULL;
    uint64_t current, total;

    if (block_job_is_internal(job)) {
        return;
    }
    if (job->job.ret < 0) {
        msg = error_get_pretty(job->job.err);
    }
    progress_get_snapshot(&job->job.progress, &current, &total);
    qapi_event_send_block_job_completed(job_type(&job->job), job->job.id,
                                        total, current, job->speed, msg);
}

static void block_job_event_pending(Notifier *n, void *opaque)
{
    BlockJob *job = opaque;

    if (block_job_is_internal(job)) {
        return;
    }
    qapi_event_send_block_job_pending(job_type(&job->job), job->job.id);
}

static void block_job_event_ready(Notifier *n, void *opaque)
{
    BlockJob *job = opaque;
    uint64_t current, total;

    if (block_job_is_internal(job)) {
        return;
    }
    progress_get_snapshot(&job->job.progress, &current, &total);
    qapi_event_send_block_job_ready(job_type(&job->job), job->job.id,
                                    total, current, job->speed);
}

/* ---- query ---- */

BlockJobInfo *block_job_query(BlockJob *job, Error **errp)
{
    const BlockJobDriver *drv = block_job_driver(job);
    BlockJobInfo *info;
    uint64_t current, total;

    if (block_job_is_internal(job)) {
        error_setg(errp, "Cannot query QEMU internal jobs");
        return NULL;
    }
    progress_get_snapshot(&job->job.progress, &current, &total);

    info = g_new0(BlockJobInfo, 1);
    info->type = job_type(&job->job);
    info->device = g_strdup(job->job.id);
    info->busy = job->job.busy;
    info->paused = job->job.pause_count > 0;
    info->offset = current;
    info->len = total;
    info->speed = job->speed;
    info->io_status = job->iostatus;
    info->ready = job_is_ready(&job->job);
    info->status = job->job.status;
    info->auto_finalize = job->job.auto_finalize;
    info->auto_dismiss = job->job.auto_dismiss;
    if (job->job.ret) {
        info->error = job->job.err ?
                      g_strdup(error_get_pretty(job->job.err)) :
                      g_strdup(strerror(-job->job.ret));
    }
    if (drv->query) {
        drv->query(job, info);
    }
    return info;
}

/* ---- create / free ---- */

void block_job_free(Job *job)
{
    BlockJob *bjob = container_of(job, BlockJob, job);

    block_job_remove_all_bdrv(bjob);
    ratelimit_destroy(&bjob->limit);
    error_free(bjob->blocker);
}

void *block_job_create(const char *job_id, const BlockJobDriver *driver,
                       JobTxn *txn, BlockDriverState *bs, uint64_t perm,
                       uint64_t shared_perm, int64_t speed, int flags,
                       BlockCompletionFunc *cb, void *opaque, Error **errp)
{
    BlockJob *job;

    if (job_id == NULL && !(flags & JOB_INTERNAL)) {
        job_id = bdrv_get_device_name(bs);
    }

    assert(job_is_blockjob_type(driver->job_driver.job_type));
    assert(driver->job_driver.free == block_job_free);
    assert(driver->job_driver.user_resume == block_job_user_resume);

    job = job_create(job_id, &driver->job_driver, txn, qemu_get_aio_context(),
                     flags, cb, opaque, errp);
    if (job == NULL) {
        return NULL;
    }

    ratelimit_init(&job->limit);

    job->finalize_cancelled_notifier.notify = block_job_event_cancelled;
    job->finalize_completed_notifier.notify = block_job_event_completed;
    job->pending_notifier.notify = block_job_event_pending;
    job->ready_notifier.notify = block_job_event_ready;
    notifier_list_add(&job->job.on_finalize_cancelled,
                      &job->finalize_cancelled_notifier);
    notifier_list_add(&job->job.on_finalize_completed,
                      &job->finalize_completed_notifier);
    notifier_list_add(&job->job.on_pending, &job->pending_notifier);
    notifier_list_add(&job->job.on_ready, &job->ready_notifier);

    error_setg(&job->blocker, "block device is in use by block job: %s",
               job_type_str(&job->job));

    if (block_job_add_bdrv(job, "main node", bs, perm, shared_perm,
                           errp) < 0) {
        goto fail;
    }
    bdrv_op_unblock(bs, BLOCK_OP_TYPE_DATAPLANE, job->blocker);

    if (!block_job_set_speed(job, speed, errp)) {
        goto fail;
    }
    return job;

fail:
    job_early_fail(&job->job);
    return NULL;
}
