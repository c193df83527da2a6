/*
 * QMP handlers for jobs: query-jobs and job-* (any job, GenericError
 * "Job not found"), query-block-jobs and block-job-* (block jobs only,
 * DeviceNotActive "Block job '%s' not found").  The prototypes are
 * generated from qapi/job.json and qapi/block-core.json.
 */
#include "qemu/osdep.h"
#include "qemu/job.h"
#include "qemu/trace.h"
#include "block/blockjob.h"
#include "qapi-commands.h"
#include "qapi-types.h"

/* ---- job-* ---- */

static Job *find_job(const char *id, Error **errp)
{
    Job *job = job_get(id);

    if (!job) {
        error_setg(errp, "Job not found");
        return NULL;
    }
    return job;
}

void qmp_job_cancel(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_cancel, "job %p", job);
    job_user_cancel(job, true, errp);
}

void qmp_job_pause(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_pause, "job %p", job);
    job_user_pause(job, errp);
}

void qmp_job_resume(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_resume, "job %p", job);
    job_user_resume(job, errp);
}

void qmp_job_complete(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_complete, "job %p", job);
    job_complete(job, errp);
}

void qmp_job_finalize(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_finalize, "job %p", job);
    /* finalizing may conclude and free the job under us */
    job_ref(job);
    job_finalize(job, errp);
    job_unref(job);
}

void qmp_job_dismiss(const char *id, Error **errp)
{
    Job *job = find_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_job_dismiss, "job %p", job);
    job_dismiss(&job, errp);
}

static JobInfo *job_query_single(Job *job)
{
    JobInfo *info = g_new0(JobInfo, 1);
    uint64_t current, total;

    assert(!job_is_internal(job));
    progress_get_snapshot(&job->progress, &current, &total);
    info->id = g_strdup(job->id);
    info->type = job_type(job);
    info->status = job->status;
    info->current_progress = current;
    info->total_progress = total;
    info->error = job->err ? g_strdup(error_get_pretty(job->err)) : NULL;
    return info;
}

JobInfoList *qmp_query_jobs(Error **errp)
{
    JobInfoList *head = NULL, **tail = &head;

    for (Job *job = job_next(NULL); job; job = job_next(job)) {
        JobInfoList *elem;

        /* internal jobs, and jobs dismissed but still referenced */
        if (job_is_internal(job) || job->status == JOB_STATUS_NULL) {
            continue;
        }
        elem = g_new0(JobInfoList, 1);
        elem->value = job_query_single(job);
        *tail = elem;
        tail = &elem->next;
    }
    return head;
}

/* ---- block-job-* ---- */

static BlockJob *find_block_job(const char *id, Error **errp)
{
    BlockJob *job;

    assert(id != NULL);
    job = block_job_get(id);
    if (!job) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_ACTIVE,
                  "Block job '%s' not found", id);
        return NULL;
    }
    return job;
}

BlockJobInfoList *qmp_query_block_jobs(Error **errp)
{
    BlockJobInfoList *head = NULL, **tail = &head;

    for (BlockJob *job = block_job_next(NULL); job;
         job = block_job_next(job)) {
        BlockJobInfoList *elem;
        BlockJobInfo *value;

        if (block_job_is_internal(job) ||
            job->job.status == JOB_STATUS_NULL) {
            continue;
        }
        value = block_job_query(job, errp);
        if (!value) {
            qapi_free_BlockJobInfoList(head);
            return NULL;
        }
        elem = g_new0(BlockJobInfoList, 1);
        elem->value = value;
        *tail = elem;
        tail = &elem->next;
    }
    return head;
}

void qmp_block_job_set_speed(const char *device, int64_t speed, Error **errp)
{
    BlockJob *job = find_block_job(device, errp);

    if (!job) {
        return;
    }
    block_job_set_speed(job, speed, errp);
}

void qmp_block_job_cancel(const char *device, bool has_force, bool force,
                          Error **errp)
{
    BlockJob *job = find_block_job(device, errp);

    if (!job) {
        return;
    }
    if (!has_force) {
        force = false;
    }
    if (job_user_paused(&job->job) && !force) {
        error_setg(errp, "The block job for device '%s' is currently paused",
                   device);
        return;
    }
    trace(qmp_block_job_cancel, "job %p", job);
    job_user_cancel(&job->job, force, errp);
}

void qmp_block_job_pause(const char *device, Error **errp)
{
    BlockJob *job = find_block_job(device, errp);

    if (!job) {
        return;
    }
    trace(qmp_block_job_pause, "job %p", job);
    job_user_pause(&job->job, errp);
}

void qmp_block_job_resume(const char *device, Error **errp)
{
    BlockJob *job = find_block_job(device, errp);

    if (!job) {
        return;
    }
    trace(qmp_block_job_resume, "job %p", job);
    job_user_resume(&job->job, errp);
}

void qmp_block_job_complete(const char *device, Error **errp)
{
    BlockJob *job = find_block_job(device, errp);

    if (!job) {
        return;
    }
    trace(qmp_block_job_complete, "job %p", job);
    job_complete(&job->job, errp);
}

void qmp_block_job_finalize(const char *id, Error **errp)
{
    BlockJob *job = find_block_job(id, errp);

    if (!job) {
        return;
    }
    trace(qmp_block_job_finalize, "job %p", job);
    job_ref(&job->job);
    job_finalize(&job->job, errp);
    job_unref(&job->job);
}

void qmp_block_job_dismiss(const char *id, Error **errp)
{
    BlockJob *bjob = find_block_job(id, errp);
    Job *job;

    if (!bjob) {
        return;
    }
    trace(qmp_block_job_dismiss, "job %p", bjob);
    job = &bjob->job;
    job_dismiss(&job, errp);
}
