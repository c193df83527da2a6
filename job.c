/*
 * Job: generic background-job state machine, transactions and the
 * coroutine plumbing (pause points, sleeps, deferred completion).
 *
 * See include/qemu/job.h for the life of a job.  Two tables rule it:
 *
 * - JobSTT[from][to]: the legal state transitions.  Every change of
 *   job->status goes through job_state_transition(), which asserts the
 *   edge, traces it and sends JOB_STATUS_CHANGE.
 * - JobVerbTable[verb][state]: which QMP command a job accepts in which
 *   state; job_apply_verb() turns a refusal into QEMU's error text.
 *
 * Completion.  When run() returns, the coroutine records ret and schedules
 * job_exit() as a BH: from then on (deferred_to_main_loop) everything runs
 * in the main loop, where finalization may drain nodes and wait for other
 * jobs.  A successful job goes to WAITING; when every member of its
 * transaction is WAITING they all go to PENDING and, unless one of them
 * needs a manual job-finalize, are finalized: prepare() on all, then
 * commit() or abort(), clean(), the completion callback, the
 * completed/cancelled notifiers (QMP events live in blockjob.c), and
 * CONCLUDED (then NULL with auto-dismiss).
 *
 * A failing or cancelled job aborts its transaction: the others are
 * force-cancelled, each is run to completion with job_finish_sync() and
 * finalized (abort path) in list order.  txn->aborting keeps the
 * recursive job_completed() calls of those members from starting a
 * second abort.
 *
 * References: the job list holds one (dropped at NULL); job_exit() and
 * job_finish_sync() hold one while they work, so a job can reach NULL
 * under them and still be inspected until they return.
 */
#include "qemu/osdep.h"
#include "qemu/job.h"
#include "qemu/coroutine.h"
#include "qemu/trace.h"
#include "qapi-events.h"

struct JobTxn {
    GList *jobs;        /* of Job * (Job.txn_link) */
    int refcnt;
    bool aborting;      /* an abort of this transaction is under way */
};

/* Every job that has not been freed, newest first (as QEMU lists them). */
static GList *jobs;

/* Transition matrix: JobSTT[from][to] */
static const bool JobSTT[JOB_STATUS__MAX][JOB_STATUS__MAX] = {
                                  /* U, C, R, P, Y, S, W, D, X, E, N */
    [JOB_STATUS_UNDEFINED] =        { 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [JOB_STATUS_CREATED] =          { 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1 },
    [JOB_STATUS_RUNNING] =          { 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0 },
    [JOB_STATUS_PAUSED] =           { 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 },
    [JOB_STATUS_READY] =            { 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0 },
    [JOB_STATUS_STANDBY] =          { 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 },
    [JOB_STATUS_WAITING] =          { 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0 },
    [JOB_STATUS_PENDING] =          { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0 },
    [JOB_STATUS_ABORTING] =         { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0 },
    [JOB_STATUS_CONCLUDED] =        { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
    [JOB_STATUS_NULL] =             { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
};

/* Verb table: JobVerbTable[verb][state] */
static const bool JobVerbTable[JOB_VERB__MAX][JOB_STATUS__MAX] = {
                                  /* U, C, R, P, Y, S, W, D, X, E, N */
    [JOB_VERB_CANCEL] =             { 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 },
    [JOB_VERB_PAUSE] =              { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    [JOB_VERB_RESUME] =             { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    [JOB_VERB_SET_SPEED] =          { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    [JOB_VERB_COMPLETE] =           { 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0 },
    [JOB_VERB_FINALIZE] =           { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 },
    [JOB_VERB_DISMISS] =            { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 },
    [JOB_VERB_CHANGE] =             { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
};

/* ---- small helpers ---- */

bool job_id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

bool job_is_internal(Job *job)
{
    return job->id == NULL;
}

JobType job_type(const Job *job)
{
    return job->driver->job_type;
}

const char *job_type_str(const Job *job)
{
    return JobType_str(job_type(job));
}

bool job_started(Job *job)
{
    return job->co != NULL;
}

bool job_is_cancelled(Job *job)
{
    /* force_cancel implies cancelled */
    assert(job->cancelled || !job->force_cancel);
    return job->force_cancel;
}

bool job_cancel_requested(Job *job)
{
    return job->cancelled;
}

bool job_is_ready(Job *job)
{
    return job->status == JOB_STATUS_READY ||
           job->status == JOB_STATUS_STANDBY;
}

bool job_is_completed(Job *job)
{
    switch (job->status) {
    case JOB_STATUS_UNDEFINED:
    case JOB_STATUS_CREATED:
    case JOB_STATUS_RUNNING:
    case JOB_STATUS_PAUSED:
    case JOB_STATUS_READY:
    case JOB_STATUS_STANDBY:
        return false;
    case JOB_STATUS_WAITING:
    case JOB_STATUS_PENDING:
    case JOB_STATUS_ABORTING:
    case JOB_STATUS_CONCLUDED:
    case JOB_STATUS_NULL:
        return true;
    default:
        g_assert_not_reached();
    }
}

bool job_user_paused(Job *job)
{
    return job->user_paused;
}

static bool job_should_pause(Job *job)
{
    return job->pause_count > 0;
}

/* ---- the two tables ---- */

static void job_state_transition(Job *job, JobStatus s1)
{
    JobStatus s0 = job->status;

    assert(s1 >= 0 && s1 < JOB_STATUS__MAX);
    trace(job_state_transition,
          "job %p (ret: %d) attempting %s transition (%s-->%s)",
          job, job->ret, JobSTT[s0][s1] ? "allowed" : "disallowed",
          JobStatus_str(s0), JobStatus_str(s1));
    assert(JobSTT[s0][s1]);
    job->status = s1;

    if (!job_is_internal(job) && s1 != s0) {
        qapi_event_send_job_status_change(job->id, job->status);
    }
}

int job_apply_verb(Job *job, JobVerb verb, Error **errp)
{
    JobStatus s0 = job->status;

    assert(verb >= 0 && verb < JOB_VERB__MAX);
    trace(job_apply_verb, "job %p in state %s; applying verb %s (%s)",
          job, JobStatus_str(s0), JobVerb_str(verb),
          JobVerbTable[verb][s0] ? "allowed" : "prohibited");
    if (JobVerbTable[verb][s0]) {
        return 0;
    }
    error_setg(errp, "Job '%s' in state '%s' cannot accept command verb '%s'",
               job->id, JobStatus_str(s0), JobVerb_str(verb));
    return -EPERM;
}

/* ---- progress ---- */

void progress_get_snapshot(ProgressMeter *pm, uint64_t *current,
                           uint64_t *total)
{
    *current = pm->current;
    *total = pm->total;
}

void job_progress_update(Job *job, uint64_t done)
{
    job->progress.current += done;
}

void job_progress_set_remaining(Job *job, uint64_t remaining)
{
    job->progress.total = job->progress.current + remaining;
}

void job_progress_increase_remaining(Job *job, uint64_t delta)
{
    job->progress.total += delta;
}

/* ---- transactions ---- */

JobTxn *job_txn_new(void)
{
    JobTxn *txn = g_new0(JobTxn, 1);

    txn->refcnt = 1;
    return txn;
}

static void job_txn_ref(JobTxn *txn)
{
    txn->refcnt++;
}

void job_txn_unref(JobTxn *txn)
{
    if (txn && --txn->refcnt == 0) {
        assert(txn->jobs == NULL);
        g_free(txn);
    }
}

void job_txn_add_job(JobTxn *txn, Job *job)
{
    if (!txn) {
        return;
    }
    assert(!job->txn);
    job->txn = txn;
    job->txn_link.data = job;
    txn->jobs = g_list_insert_before_link(txn->jobs, txn->jobs,
                                          &job->txn_link);
    job_txn_ref(txn);
}

static void job_txn_del_job(Job *job)
{
    if (job->txn) {
        job->txn->jobs = g_list_remove_link(job->txn->jobs, &job->txn_link);
        job_txn_unref(job->txn);
        job->txn = NULL;
    }
}

/*
 * Apply fn to every member of job's transaction, stopping at the first
 * non-zero return.  fn may remove its argument from the transaction.
 */
static int job_txn_apply(Job *job, int fn(Job *))
{
    JobTxn *txn = job->txn;
    GList *l, *next;
    int rc = 0;

    job_ref(job);
    job_txn_ref(txn);
    for (l = txn->jobs; l; l = next) {
        next = l->next;
        rc = fn(l->data);
        if (rc) {
            break;
        }
    }
    job_txn_unref(txn);
    job_unref(job);
    return rc;
}

/* ---- create / free ---- */

Job *job_next(Job *job)
{
    GList *l;

    if (!job) {
        return jobs ? jobs->data : NULL;
    }
    l = g_list_find(jobs, job);
    assert(l);
    return l->next ? l->next->data : NULL;
}

Job *job_get(const char *id)
{
    for (GList *l = jobs; l; l = l->next) {
        Job *job = l->data;

        if (job->id && !strcmp(id, job->id)) {
            return job;
        }
    }
    return NULL;
}

static void job_sleep_timer_cb(void *opaque)
{
    job_enter(opaque);
}

void *job_create(const char *job_id, const JobDriver *driver, JobTxn *txn,
                 AioContext *ctx, int flags, BlockCompletionFunc *cb,
                 void *opaque, Error **errp)
{
    Job *job;

    if (job_id) {
        if (flags & JOB_INTERNAL) {
            error_setg(errp, "Cannot specify job ID for internal job");
            return NULL;
        }
        if (!job_id_wellformed(job_id)) {
            error_setg(errp, "Invalid job ID '%s'", job_id);
            return NULL;
        }
        if (job_get(job_id)) {
            error_setg(errp, "Job ID '%s' already in use", job_id);
            return NULL;
        }
    } else if (!(flags & JOB_INTERNAL)) {
        error_setg(errp, "An explicit job ID is required");
        return NULL;
    }

    assert(driver->instance_size >= sizeof(Job));
    assert(driver->run);
    job = g_malloc0(driver->instance_size);
    job->driver = driver;
    job->id = g_strdup(job_id);
    job->refcnt = 1;
    job->aio_context = ctx ? ctx : qemu_get_aio_context();
    job->busy = false;
    job->paused = true;
    job->pause_count = 1;
    job->auto_finalize = !(flags & JOB_MANUAL_FINALIZE);
    job->auto_dismiss = !(flags & JOB_MANUAL_DISMISS);
    job->cb = cb;
    job->opaque = opaque;
    notifier_list_init(&job->on_finalize_cancelled);
    notifier_list_init(&job->on_finalize_completed);
    notifier_list_init(&job->on_pending);
    notifier_list_init(&job->on_ready);
    notifier_list_init(&job->on_idle);

    job_state_transition(job, JOB_STATUS_CREATED);
    job->sleep_timer = aio_timer_new(qemu_get_aio_context(),
                                     QEMU_CLOCK_REALTIME, SCALE_NS,
                                     job_sleep_timer_cb, job);

    jobs = g_list_prepend(jobs, job);

    /* A lone job is a transaction of one: one completion path for all. */
    if (!txn) {
        txn = job_txn_new();
        job_txn_add_job(txn, job);
        job_txn_unref(txn);
    } else {
        job_txn_add_job(txn, job);
    }
    return job;
}

void job_ref(Job *job)
{
    ++job->refcnt;
}

void job_unref(Job *job)
{
    if (--job->refcnt == 0) {
        assert(job->status == JOB_STATUS_NULL);
        assert(!timer_pending(job->sleep_timer));
        assert(!job->txn);

        if (job->driver->free) {
            job->driver->free(job);
        }
        jobs = g_list_remove(jobs, job);
        timer_free(job->sleep_timer);
        error_free(job->err);
        g_free(job->id);
        g_free(job);
    }
}

/* ---- notifications for the layers above ---- */

static void job_event_cancelled(Job *job)
{
    notifier_list_notify(&job->on_finalize_cancelled, job);
}

static void job_event_completed(Job *job)
{
    notifier_list_notify(&job->on_finalize_completed, job);
}

static void job_event_pending(Job *job)
{
    notifier_list_notify(&job->on_pending, job);
}

static void job_event_ready(Job *job)
{
    notifier_list_notify(&job->on_ready, job);
}

static void job_event_idle(Job *job)
{
    notifier_list_notify(&job->on_idle, job);
}

/* ---- entering and yielding ---- */

/*
 * Re-enter the job's coroutine if it is started, not running, not past
 * run(), and fn (if given) agrees.  Stops a pending sleep.
 */
static void job_enter_cond(Job *job, bool (*fn)(Job *job))
{
    if (!job_started(job)) {
        return;
    }
    if (job->deferred_to_main_loop) {
        return;
    }
    if (job->busy) {
        return;
    }
    if (fn && !fn(job)) {
        return;
    }

    timer_del(job->sleep_timer);
    job->busy = true;
    aio_co_wake(job->co);
}

void job_enter(Job *job)
{
    job_enter_cond(job, NULL);
}

static bool job_timer_not_pending(Job *job)
{
    return !timer_pending(job->sleep_timer);
}

/* Yield until job_enter(); with ns != -1 also arm the sleep timer. */
static void coroutine_fn job_do_yield(Job *job, int64_t ns)
{
    if (ns != -1) {
        timer_mod(job->sleep_timer, ns);
    }
    job->busy = false;
    job_event_idle(job);
    qemu_coroutine_yield();
    /* whoever entered us set busy */
    assert(job->busy);
}

void coroutine_fn job_pause_point(Job *job)
{
    assert(job && job_started(job));

    if (!job_should_pause(job)) {
        return;
    }
    if (job_is_cancelled(job)) {
        return;
    }

    if (job->driver->pause) {
        job->driver->pause(job);
    }

    if (job_should_pause(job) && !job_is_cancelled(job)) {
        JobStatus status = job->status;

        job_state_transition(job, status == JOB_STATUS_READY
                                  ? JOB_STATUS_STANDBY
                                  : JOB_STATUS_PAUSED);
        job->paused = true;
        job_do_yield(job, -1);
        job->paused = false;
        job_state_transition(job, status);
    }

    if (job->driver->resume) {
        job->driver->resume(job);
    }
}

void coroutine_fn job_yield(Job *job)
{
    assert(job->busy);

    /* Check cancellation *before* going idle */
    if (job_is_cancelled(job)) {
        return;
    }
    if (!job_should_pause(job)) {
        job_do_yield(job, -1);
    }
    job_pause_point(job);
}

void coroutine_fn job_sleep_ns(Job *job, int64_t ns)
{
    assert(job->busy);

    if (job_is_cancelled(job)) {
        return;
    }
    if (!job_should_pause(job)) {
        job_do_yield(job, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + ns);
    }
    job_pause_point(job);
}

void job_transition_to_ready(Job *job)
{
    job_state_transition(job, JOB_STATUS_READY);
    job_event_ready(job);
}

/* ---- pause / resume ---- */

void job_pause(Job *job)
{
    job->pause_count++;
    if (!job->paused) {
        /* kick it into its next pause point */
        job_enter(job);
    }
}

void job_resume(Job *job)
{
    assert(job->pause_count > 0);
    job->pause_count--;
    if (job->pause_count) {
        return;
    }
    /* A sleeping job finishes its sleep; only a parked one is kicked. */
    job_enter_cond(job, job_timer_not_pending);
}

void job_user_pause(Job *job, Error **errp)
{
    if (job_apply_verb(job, JOB_VERB_PAUSE, errp)) {
        return;
    }
    if (job->user_paused) {
        error_setg(errp, "Job is already paused");
        return;
    }
    job->user_paused = true;
    job_pause(job);
}

void job_user_resume(Job *job, Error **errp)
{
    if (!job->user_paused || job->pause_count <= 0) {
        error_setg(errp, "Can't resume a job that was not paused");
        return;
    }
    if (job_apply_verb(job, JOB_VERB_RESUME, errp)) {
        return;
    }
    if (job->driver->user_resume) {
        job->driver->user_resume(job);
    }
    job->user_paused = false;
    job_resume(job);
}

/* ---- completion ---- */

static void job_do_dismiss(Job *job)
{
    assert(job);
    job->busy = false;
    job->paused = false;
    job->deferred_to_main_loop = true;

    job_txn_del_job(job);

    job_state_transition(job, JOB_STATUS_NULL);
    /* the job list's reference */
    job_unref(job);
}

void job_early_fail(Job *job)
{
    assert(job->status == JOB_STATUS_CREATED);
    job_do_dismiss(job);
}

static void job_conclude(Job *job)
{
    job_state_transition(job, JOB_STATUS_CONCLUDED);
    if (job->auto_dismiss || !job_started(job)) {
        job_do_dismiss(job);
    }
}

/* A cancel turns success into -ECANCELED; failure means ABORTING. */
static int job_update_rc(Job *job)
{
    if (!job->ret && job_is_cancelled(job)) {
        job->ret = -ECANCELED;
    }
    if (job->ret) {
        if (!job->err) {
            error_setg(&job->err, "%s", strerror(-job->ret));
        }
        job_state_transition(job, JOB_STATUS_ABORTING);
    }
    return job->ret;
}

static void job_commit(Job *job)
{
    assert(!job->ret);
    if (job->driver->commit) {
        job->driver->commit(job);
    }
}

static void job_abort(Job *job)
{
    assert(job->ret);
    if (job->driver->abort) {
        job->driver->abort(job);
    }
}

static void job_clean(Job *job)
{
    if (job->driver->clean) {
        job->driver->clean(job);
    }
}

static int job_finalize_single(Job *job)
{
    int job_ret;

    assert(job_is_completed(job));

    /* late failures (another member's prepare, a cancel) abort too */
    job_update_rc(job);

    job_ret = job->ret;
    if (!job_ret) {
        job_commit(job);
    } else {
        job_abort(job);
    }
    job_clean(job);

    if (job->cb) {
        job->cb(job->opaque, job_ret);
    }

    /* Only jobs that actually ran report how they ended. */
    if (job_started(job)) {
        if (job_is_cancelled(job)) {
            job_event_cancelled(job);
        } else {
            job_event_completed(job);
        }
    }

    job_txn_del_job(job);
    job_conclude(job);
    return 0;
}

static void job_cancel_async(Job *job, bool force)
{
    if (job->driver->cancel) {
        force = job->driver->cancel(job, force);
    } else {
        /* No .cancel(): every cancel is a forced one */
        force = true;
    }

    if (job->user_paused) {
        /* The caller enters the job if needed. */
        if (job->driver->user_resume) {
            job->driver->user_resume(job);
        }
        job->user_paused = false;
        assert(job->pause_count > 0);
        job->pause_count--;
    }

    /*
     * A soft cancel of a job that already finished its work is ignored
     * (the driver's cancel hook could still turn it into a forced one).
     */
    if (force || !job->deferred_to_main_loop) {
        job->cancelled = true;
        /* never let a soft cancel undo a forced one */
        job->force_cancel |= force;
    }
}

static void job_completed_txn_abort(Job *job)
{
    JobTxn *txn = job->txn;

    if (txn->aborting) {
        /* Another member is aborting the transaction and handles us. */
        return;
    }
    txn->aborting = true;
    job_txn_ref(txn);
    job_ref(job);

    /*
     * One failure spoils the whole transaction: force-cancel the other
     * members so they stop as soon as possible.  This job keeps its own
     * ret (it may have failed rather than been cancelled).
     */
    for (GList *l = txn->jobs; l; l = l->next) {
        Job *other = l->data;

        if (other != job) {
            job_cancel_async(other, true);
        }
    }
    while (txn->jobs) {
        Job *other = txn->jobs->data;

        if (!job_started(other)) {
            /* a member that never ran has nothing to wait for */
            job_update_rc(other);
        } else if (!job_is_completed(other)) {
            assert(job_cancel_requested(other));
            job_finish_sync(other, NULL, NULL);
        }
        job_finalize_single(other);
    }

    job_unref(job);
    job_txn_unref(txn);
}

static int job_prepare(Job *job)
{
    if (job->ret == 0 && job->driver->prepare) {
        job->ret = job->driver->prepare(job);
        job_update_rc(job);
    }
    return job->ret;
}

static int job_needs_finalize(Job *job)
{
    return !job->auto_finalize;
}

/*
 * Prepare every member; if one fails, it aborts the transaction (so the
 * others are cancelled, whichever member started the finalization: QEMU
 * aborts on behalf of the caller's job, which would then still commit
 * when the failing prepare was another member's).  Else finalize all.
 */
static void job_do_finalize(Job *job)
{
    JobTxn *txn = job->txn;
    Job *failed = NULL;

    assert(job && txn);

    job_ref(job);
    for (GList *l = txn->jobs; l; l = l->next) {
        if (job_prepare(l->data)) {
            failed = l->data;
            break;
        }
    }
    if (failed) {
        job_completed_txn_abort(failed);
    } else {
        job_txn_apply(job, job_finalize_single);
    }
    job_unref(job);
}

void job_finalize(Job *job, Error **errp)
{
    assert(job && job->id);
    if (job_apply_verb(job, JOB_VERB_FINALIZE, errp)) {
        return;
    }
    job_do_finalize(job);
}

static int job_transition_to_pending(Job *job)
{
    job_state_transition(job, JOB_STATUS_PENDING);
    if (!job->auto_finalize) {
        job_event_pending(job);
    }
    return 0;
}

static void job_completed_txn_success(Job *job)
{
    JobTxn *txn = job->txn;

    job_state_transition(job, JOB_STATUS_WAITING);

    /* Wait for the other members that are still working. */
    for (GList *l = txn->jobs; l; l = l->next) {
        Job *other = l->data;

        if (!job_is_completed(other)) {
            return;
        }
        assert(other->ret == 0);
    }

    job_txn_apply(job, job_transition_to_pending);

    /* If no member needs a manual job-finalize, finalize now. */
    if (job_txn_apply(job, job_needs_finalize) == 0) {
        job_do_finalize(job);
    }
}

static void job_completed(Job *job)
{
    assert(job && job->txn && !job_is_completed(job));

    job_update_rc(job);
    trace(job_completed, "job %p ret %d", job, job->ret);
    if (job->ret) {
        job_completed_txn_abort(job);
    } else {
        job_completed_txn_success(job);
    }
}

/* BH: run() returned; finish the job in the main loop. */
static void job_exit(void *opaque)
{
    Job *job = opaque;

    job_ref(job);
    /*
     * Not really idle, but completion drains nodes and must not wait
     * for this job to become idle.
     */
    job->busy = false;
    job_event_idle(job);
    job_completed(job);
    job_unref(job);
}

static void coroutine_fn job_co_entry(void *opaque)
{
    Job *job = opaque;
    int ret;

    assert(job && job->driver && job->driver->run);
    job_pause_point(job);
    ret = job->driver->run(job, &job->err);
    job->ret = ret;
    job->deferred_to_main_loop = true;
    job->busy = true;
    aio_bh_schedule_oneshot(qemu_get_aio_context(), job_exit, job);
}

void job_start(Job *job)
{
    assert(job && !job_started(job) && job->paused &&
           job->driver && job->driver->run);
    job->co = qemu_coroutine_create(job_co_entry, job);
    job->pause_count--;
    job->busy = true;
    job->paused = false;
    job_state_transition(job, JOB_STATUS_RUNNING);
    aio_co_enter(job->aio_context, job->co);
}

/* ---- cancel / complete / dismiss ---- */

void job_cancel(Job *job, bool force)
{
    if (job->status == JOB_STATUS_CONCLUDED) {
        job_do_dismiss(job);
        return;
    }
    job_cancel_async(job, force);
    if (!job_started(job)) {
        job_completed(job);
    } else if (job->deferred_to_main_loop) {
        /*
         * The job finished its work: a soft cancel was ignored above, so
         * only a forced cancel aborts the transaction now (a job waiting
         * in WAITING/PENDING would otherwise never hear of it).
         */
        if (job_is_cancelled(job)) {
            job_completed_txn_abort(job);
        }
    } else {
        job_enter(job);
    }
}

void job_user_cancel(Job *job, bool force, Error **errp)
{
    if (job_apply_verb(job, JOB_VERB_CANCEL, errp)) {
        return;
    }
    job_cancel(job, force);
}

void job_complete(Job *job, Error **errp)
{
    /* Not reachable through QMP for internal jobs */
    assert(job->id);
    if (job_apply_verb(job, JOB_VERB_COMPLETE, errp)) {
        return;
    }
    if (job_cancel_requested(job) || !job->driver->complete) {
        error_setg(errp, "The active block job '%s' cannot be completed",
                   job->id);
        return;
    }
    job->driver->complete(job, errp);
}

void job_dismiss(Job **jobptr, Error **errp)
{
    Job *job = *jobptr;

    /* QMP only, like complete */
    assert(job->id);
    if (job_apply_verb(job, JOB_VERB_DISMISS, errp)) {
        return;
    }
    job_do_dismiss(job);
    *jobptr = NULL;
}

/* ---- synchronous helpers ---- */

int job_finish_sync(Job *job, void (*finish)(Job *, Error **errp),
                    Error **errp)
{
    Error *local_err = NULL;
    int ret;

    job_ref(job);

    if (finish) {
        finish(job, &local_err);
    }
    if (local_err) {
        error_propagate(errp, local_err);
        job_unref(job);
        return -EBUSY;
    }

    /* Kick the job on every iteration: it may be sleeping. */
    AIO_WAIT_WHILE(job->aio_context, (job_enter(job), !job_is_completed(job)));

    ret = (job_is_cancelled(job) && job->ret == 0) ? -ECANCELED : job->ret;
    job_unref(job);
    return ret;
}

static void job_cancel_err(Job *job, Error **errp)
{
    job_cancel(job, false);
}

static void job_force_cancel_err(Job *job, Error **errp)
{
    job_cancel(job, true);
}

int job_cancel_sync(Job *job, bool force)
{
    return job_finish_sync(job, force ? job_force_cancel_err : job_cancel_err,
                           NULL);
}

void job_cancel_sync_all(void)
{
    Job *job;

    /*
     * A job that reached NULL but is still referenced (by a caller that
     * is about to drop it) stays on the list until then: skip those.
     */
    for (;;) {
        job = NULL;
        for (GList *l = jobs; l; l = l->next) {
            if (((Job *)l->data)->status != JOB_STATUS_NULL) {
                job = l->data;
                break;
            }
        }
        if (!job) {
            break;
        }
        job_cancel_sync(job, true);
    }
}

int job_complete_sync(Job *job, Error **errp)
{
    return job_finish_sync(job, job_complete, errp);
}
