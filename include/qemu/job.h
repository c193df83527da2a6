/*
 * Job: the generic background-job state machine (QEMU's job.c model).
 *
 * A job is created (CREATED), started (RUNNING: its driver's run()
 * coroutine does the work), may be paused (PAUSED, or STANDBY when it was
 * READY), and once run() returns the rest of its life is driven from the
 * main loop ("deferred to the main loop"):
 *
 *   run() ok  -> WAITING (for the other members of its transaction)
 *             -> PENDING (all members done; BLOCK_JOB_PENDING and a wait
 *                for job-finalize when auto-finalize is false)
 *             -> prepare() on every member; commit() (or abort() if a
 *                prepare failed) -> clean() -> cb -> CONCLUDED
 *   run() err -> ABORTING; every other member of the transaction is
 *                force-cancelled and waited for; abort() -> clean() -> cb
 *             -> CONCLUDED
 *   CONCLUDED -> NULL (job-dismiss, or at once with auto-dismiss) and the
 *                job is freed when its last reference goes.
 *
 * The legal edges are the JobSTT transition matrix; which QMP verb a job
 * accepts in which state is the verb table (both in job.c, both exactly as
 * QEMU's).  job_state_transition() is the only place that changes
 * job->status: it asserts the edge, traces it and sends JOB_STATUS_CHANGE
 * (not for internal jobs, which have no id).
 *
 * Pausing is cooperative: job_pause() raises pause_count and the job
 * parks at its next job_pause_point() (or job_sleep_ns()/job_yield(),
 * which are pause points too).  User pauses (job-pause, an error policy
 * "stop") and drained sections both count.
 *
 * Everything runs on the main AioContext thread; there is no job lock
 * (QEMU's *_locked functions are plain here).
 */
#ifndef QEMU_JOB_H
#define QEMU_JOB_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/notify.h"
#include "block/aio.h"
#include "qapi-types.h"

typedef void BlockCompletionFunc(void *opaque, int ret);

typedef struct JobDriver JobDriver;
typedef struct JobTxn JobTxn;

/* Work counter behind current-progress / total-progress (and len/offset). */
typedef struct ProgressMeter {
    uint64_t current;
    uint64_t total;
} ProgressMeter;

typedef struct Job {
    /* ---- set at creation, constant afterwards ---- */
    char *id;                   /* NULL for internal jobs */
    const JobDriver *driver;
    AioContext *aio_context;
    BlockCompletionFunc *cb;    /* called once the job finalized */
    void *opaque;
    bool auto_finalize;
    bool auto_dismiss;

    /* ---- state ---- */
    JobStatus status;
    int refcnt;
    Coroutine *co;              /* the run() coroutine (NULL until start) */
    QEMUTimer *sleep_timer;     /* wakes a job_sleep_ns() */

    /*
     * pause_count > 0: the job should pause at its next pause point.
     * paused: it is parked in a pause point (or not started yet).
     * user_paused: one of the pause_count is the user's (job-pause or an
     * error policy); job-resume undoes only that one.
     */
    int pause_count;
    bool paused;
    bool user_paused;
    /* false while the coroutine is yielded/sleeping/paused */
    bool busy;

    /* cancelled: any cancel requested; force_cancel: a real cancel */
    bool cancelled;
    bool force_cancel;
    /* run() returned; the rest happens in the main loop */
    bool deferred_to_main_loop;

    int ret;                    /* run()/prepare() result, -errno */
    Error *err;                 /* why it failed (set with ret < 0) */

    ProgressMeter progress;

    /* events for layers above (BlockJob sends its QMP events from these) */
    NotifierList on_finalize_cancelled;
    NotifierList on_finalize_completed;
    NotifierList on_pending;
    NotifierList on_ready;
    NotifierList on_idle;

    JobTxn *txn;                /* every job is in exactly one txn */
    GList txn_link;             /* data = this job */
} Job;

/*
 * The driver table.  instance_size >= sizeof(Job) (embed Job first).
 * Only run is required.  Callbacks other than run/pause/resume are called
 * from the main loop, outside the job's coroutine.
 */
struct JobDriver {
    size_t instance_size;
    JobType job_type;

    /*
     * The job's work, in its coroutine.  Return 0 or -errno (set *errp
     * to explain; without it the error is strerror(-ret)).  Call
     * job_pause_point()/job_sleep_ns()/job_yield() regularly and return
     * early when job_is_cancelled().
     */
    int coroutine_fn (*run)(Job *job, Error **errp);

    /* In the coroutine, when the job is about to pause / has resumed. */
    void coroutine_fn (*pause)(Job *job);
    void coroutine_fn (*resume)(Job *job);

    /* job-resume (or a cancel) lifts a user pause. */
    void (*user_resume)(Job *job);

    /* job-complete of a READY job (mirror-like jobs). */
    void (*complete)(Job *job, Error **errp);

    /* Called when a node of the job is drained (after it was kicked). */
    void (*drain)(Job *job);

    /*
     * Successful run of every txn member: prepare() may still fail the
     * transaction (return -errno).  Then commit() xor abort(), then
     * clean(), for each member.
     */
    int (*prepare)(Job *job);
    void (*commit)(Job *job);
    void (*abort)(Job *job);
    void (*clean)(Job *job);

    /*
     * A cancel was requested; return whether it is a forced cancel (a
     * soft cancel of a READY mirror completes it instead).  Without this
     * hook every cancel is forced.
     */
    bool (*cancel)(Job *job, bool force);

    /* Release the driver's state before the Job is freed. */
    void (*free)(Job *job);
};

typedef enum JobCreateFlags {
    JOB_DEFAULT = 0x00,
    JOB_INTERNAL = 0x01,        /* no id, no QMP visibility, no events */
    JOB_MANUAL_FINALIZE = 0x02, /* auto-finalize=false */
    JOB_MANUAL_DISMISS = 0x04,  /* auto-dismiss=false */
} JobCreateFlags;

/* ---- transactions ---- */

/* A new transaction (refcount 1).  Jobs added to it finish together. */
JobTxn *job_txn_new(void);
void job_txn_unref(JobTxn *txn);
/*
 * Put a job that is in no transaction into txn (job_create does this with
 * its txn argument; every job is in exactly one transaction).
 */
void job_txn_add_job(JobTxn *txn, Job *job);

/* ---- lifecycle ---- */

/*
 * Create a job in state CREATED (sends JOB_STATUS_CHANGE created).
 * job_id: NULL only with JOB_INTERNAL ("An explicit job ID is
 * required"); "Invalid job ID '%s'" unless [A-Za-z][A-Za-z0-9_.-]*;
 * "Job ID '%s' already in use".  txn NULL: a transaction of its own.
 * cb(opaque, ret) runs when the job finalizes.
 */
void *job_create(const char *job_id, const JobDriver *driver, JobTxn *txn,
                 AioContext *ctx, int flags, BlockCompletionFunc *cb,
                 void *opaque, Error **errp);

/* CREATED -> RUNNING and enter the run() coroutine. */
void job_start(Job *job);

/* Dismiss a job that failed to set up (still CREATED, never started). */
void job_early_fail(Job *job);

void job_ref(Job *job);
/* The last reference frees the job (it must be NULL by then). */
void job_unref(Job *job);

/* ---- lookup ---- */
Job *job_next(Job *job);        /* NULL to start; newest first, as QEMU */
Job *job_get(const char *id);   /* by id (internal jobs never match) */
bool job_is_internal(Job *job);
JobType job_type(const Job *job);
const char *job_type_str(const Job *job);

/* ---- state queries ---- */
bool job_started(Job *job);
/* Force-cancelled (the job should stop as soon as possible). */
bool job_is_cancelled(Job *job);
/* Any cancel requested, including a soft one. */
bool job_cancel_requested(Job *job);
/* WAITING and later. */
bool job_is_completed(Job *job);
/* READY or STANDBY. */
bool job_is_ready(Job *job);
bool job_user_paused(Job *job);

/*
 * "Job '%s' in state '%s' cannot accept command verb '%s'" unless the
 * verb table allows verb in the job's state.  Returns 0 or -EPERM.
 */
int job_apply_verb(Job *job, JobVerb verb, Error **errp);

/* ---- inside run() (coroutine_fn) ---- */

/* Park here while a pause is requested (PAUSED / STANDBY). */
void coroutine_fn job_pause_point(Job *job);
/*
 * Sleep ns on QEMU_CLOCK_REALTIME; wakes early for a pause request,
 * a cancel or job_enter().  Then a pause point.  Returns at once if the
 * job is cancelled.
 */
void coroutine_fn job_sleep_ns(Job *job, int64_t ns);
/* Yield until job_enter(); then a pause point. */
void coroutine_fn job_yield(Job *job);
/* RUNNING -> READY, BLOCK_JOB_READY (through on_ready). */
void job_transition_to_ready(Job *job);

/* Re-enter a job that is yielded or sleeping (no-op otherwise). */
void job_enter(Job *job);

/* ---- progress ---- */
void job_progress_update(Job *job, uint64_t done);
void job_progress_set_remaining(Job *job, uint64_t remaining);
void job_progress_increase_remaining(Job *job, uint64_t delta);
void progress_get_snapshot(ProgressMeter *pm, uint64_t *current,
                           uint64_t *total);

/* ---- control (QMP verbs) ---- */

/* Internal pause/resume (drained sections); counted, never fail. */
void job_pause(Job *job);
void job_resume(Job *job);

/* job-pause: "Job is already paused" */
void job_user_pause(Job *job, Error **errp);
/* job-resume: "Can't resume a job that was not paused" */
void job_user_resume(Job *job, Error **errp);

/*
 * Cancel (force: always; soft: the driver's cancel hook decides).  A
 * CONCLUDED job is dismissed instead.  Asynchronous: the job finishes
 * through the main loop.
 */
void job_cancel(Job *job, bool force);
/* job-cancel / block-job-cancel after the verb check. */
void job_user_cancel(Job *job, bool force, Error **errp);

/* job-complete: "The active block job '%s' cannot be completed" */
void job_complete(Job *job, Error **errp);
/* job-finalize of a PENDING job: finalizes its whole transaction. */
void job_finalize(Job *job, Error **errp);
/* job-dismiss of a CONCLUDED job; *job is set to NULL on success. */
void job_dismiss(Job **job, Error **errp);

/*
 * Call finish(job, errp) (if non-NULL) and then drive the main loop
 * until the job completed.  Returns its ret (-ECANCELED if cancelled).
 */
int job_finish_sync(Job *job, void (*finish)(Job *, Error **errp),
                    Error **errp);
/* Cancel and wait (force or soft). */
int job_cancel_sync(Job *job, bool force);
/* Force-cancel every job and wait for each to reach NULL (shutdown). */
void job_cancel_sync_all(void);
/* job_complete and wait. */
int job_complete_sync(Job *job, Error **errp);

/* [A-Za-z][A-Za-z0-9_.-]* (QEMU's id_wellformed, no length cap). */
bool job_id_wellformed(const char *id);

#endif /* QEMU_JOB_H */
