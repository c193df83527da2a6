/*
 * Unit tests for job.c / job-qmp.c: the state machine, the verb table,
 * events, transactions, pause/resume, cancel in every state, sync helpers.
 *
 * The test driver's run() does `steps` steps; after each it either
 * yields (STEP_YIELD: the test advances it one step with job_enter()) or
 * sleeps on QEMU_CLOCK_REALTIME, which the tests put in manual mode and
 * move with qemu_clock_advance().  Nothing here waits for real time.
 *
 * JOB_STATUS_CHANGE events are recorded as "id:status", other events as
 * "NAME {json}"; driver callbacks as "id:callback".
 */
#include "qemu/osdep.h"
#include "qemu/job.h"
#include "qemu/coroutine.h"
#include "qapi/qmp-event.h"
#include "qapi-commands.h"
#include <check.h>
#include <jansson.h>
#include "test-util.h"

/* ---- recording ---- */

static GPtrArray *events;
static GPtrArray *cblog;

static void capture_event(const char *name, json_t *event)
{
    test_log_event(events, name, event);
}

/* Assert the recorded events (NULL-terminated list) and forget them. */
static void G_GNUC_NULL_TERMINATED expect_events(const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    test_expect_log_va(events, first, ap);
    va_end(ap);
}

static void G_GNUC_NULL_TERMINATED expect_log(const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    test_expect_log_va(cblog, first, ap);
    va_end(ap);
}

static void expect_no_events(void)
{
    g_autofree char *got = test_join_array(events);

    ck_assert_str_eq(got, "");
}

static void expect_no_log(void)
{
    g_autofree char *got = test_join_array(cblog);

    ck_assert_str_eq(got, "");
}

/* ---- the test driver ---- */

typedef enum StepMode {
    STEP_YIELD,
    STEP_SLEEP,
} StepMode;

typedef struct TestJob {
    Job common;
    char *name;             /* copy of the id for the free log */
    int steps;
    int done;
    int fail_at;            /* step that fails with -EIO, -1: none */
    bool fail_with_msg;     /* set *errp as well */
    StepMode mode;
    int64_t sleep_ns;
    bool should_complete;   /* ready driver: job-complete seen */
    int prepare_ret;
    void (*in_abort)(struct TestJob *s);
} TestJob;

static void job_log(Job *job, const char *what)
{
    TestJob *s = container_of(job, TestJob, common);

    g_ptr_array_add(cblog, g_strdup_printf("%s:%s", s->name, what));
}

static int coroutine_fn test_run(Job *job, Error **errp)
{
    TestJob *s = container_of(job, TestJob, common);

    job_progress_set_remaining(job, s->steps);
    while (s->done < s->steps) {
        if (job_is_cancelled(job)) {
            return 0;
        }
        if (s->done == s->fail_at) {
            if (s->fail_with_msg) {
                error_setg(errp, "step %d failed", s->done);
            }
            return -EIO;
        }
        s->done++;
        job_progress_update(job, 1);
        if (s->mode == STEP_SLEEP) {
            job_sleep_ns(job, s->sleep_ns);
        } else {
            job_yield(job);
        }
    }
    if (job->driver->complete) {
        /* mirror-like: READY until job-complete or a cancel */
        job_transition_to_ready(job);
        while (!s->should_complete && !job_cancel_requested(job)) {
            job_yield(job);
        }
    }
    return 0;
}

static int test_prepare(Job *job)
{
    job_log(job, "prepare");
    return container_of(job, TestJob, common)->prepare_ret;
}

static void test_commit(Job *job)
{
    job_log(job, "commit");
}

static void test_abort(Job *job)
{
    TestJob *s = container_of(job, TestJob, common);

    job_log(job, "abort");
    if (s->in_abort) {
        s->in_abort(s);
    }
}

static void test_clean(Job *job)
{
    job_log(job, "clean");
}

static void test_free(Job *job)
{
    TestJob *s = container_of(job, TestJob, common);

    job_log(job, "free");
    g_free(s->name);
}

static void test_complete(Job *job, Error **errp)
{
    TestJob *s = container_of(job, TestJob, common);

    s->should_complete = true;
    job_enter(job);
}

/* mirror: a soft cancel of a READY job completes it */
static bool test_cancel(Job *job, bool force)
{
    return force || !job_is_ready(job);
}

static const JobDriver test_driver = {
    .instance_size = sizeof(TestJob),
    .job_type = JOB_TYPE_CREATE,
    .run = test_run,
    .prepare = test_prepare,
    .commit = test_commit,
    .abort = test_abort,
    .clean = test_clean,
    .free = test_free,
};

static const JobDriver test_ready_driver = {
    .instance_size = sizeof(TestJob),
    .job_type = JOB_TYPE_CREATE,
    .run = test_run,
    .prepare = test_prepare,
    .commit = test_commit,
    .abort = test_abort,
    .clean = test_clean,
    .free = test_free,
    .complete = test_complete,
    .cancel = test_cancel,
};

static void test_cb(void *opaque, int ret)
{
    TestJob *s = opaque;

    g_ptr_array_add(cblog, g_strdup_printf("%s:cb(%d)", s->name, ret));
}

static TestJob *create_full(const char *id, const JobDriver *drv,
                            JobTxn *txn, int flags, int steps)
{
    Error *err = NULL;
    TestJob *s = job_create(id, drv, txn, NULL, flags, test_cb, NULL, &err);

    if (!s) {
        ck_abort_msg("job_create: %s", error_get_pretty(err));
    }
    s->common.opaque = s;
    s->name = g_strdup(id);
    s->steps = steps;
    s->fail_at = -1;
    return s;
}

static TestJob *create(const char *id, int steps)
{
    return create_full(id, &test_driver, NULL, 0, steps);
}

static void step(TestJob *s)
{
    ck_assert(!s->common.busy);
    job_enter(&s->common);
}

static void setup(void)
{
    qemu_init_main_loop();
    events = g_ptr_array_new_with_free_func(g_free);
    cblog = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_emitter(capture_event);
}

static void teardown(void)
{
    job_cancel_sync_all();
    test_drain_loop();
    ck_assert_ptr_null(job_next(NULL));
    qapi_event_set_emitter(NULL);
    g_ptr_array_free(events, true);
    g_ptr_array_free(cblog, true);
}

/* ---- the lifecycle of a successful job ---- */

START_TEST(test_auto_lifecycle)
{
    TestJob *s = create("j0", 2);
    Job *job = &s->common;

    expect_events("j0:created", NULL);
    ck_assert_int_eq(job->status, JOB_STATUS_CREATED);
    ck_assert(!job_started(job));

    job_start(job);
    /* ran to its first yield */
    ck_assert_int_eq(job->status, JOB_STATUS_RUNNING);
    ck_assert_int_eq(s->done, 1);
    ck_assert(!job->busy);
    ck_assert_uint_eq(job->progress.current, 1);
    ck_assert_uint_eq(job->progress.total, 2);
    expect_events("j0:running", NULL);

    step(s);
    ck_assert_int_eq(s->done, 2);
    step(s);
    /* run() returned; the rest happens in a BH */
    ck_assert(job->deferred_to_main_loop);
    ck_assert_int_eq(job->status, JOB_STATUS_RUNNING);
    expect_no_events();

    test_drain_loop();
    expect_events("j0:waiting", "j0:pending", "j0:concluded", "j0:null",
                  NULL);
    expect_log("j0:prepare", "j0:commit", "j0:clean", "j0:cb(0)", "j0:free",
               NULL);
    ck_assert_ptr_null(job_next(NULL));
}
END_TEST

START_TEST(test_manual_finalize_and_dismiss)
{
    Error *err = NULL;
    TestJob *s = create_full("j0", &test_driver, NULL,
                             JOB_MANUAL_FINALIZE | JOB_MANUAL_DISMISS, 1);
    JobInfoList *list;

    ck_assert(!s->common.auto_finalize);
    ck_assert(!s->common.auto_dismiss);
    job_start(&s->common);
    step(s);
    test_drain_loop();
    expect_events("j0:created", "j0:running", "j0:waiting", "j0:pending",
                  NULL);
    expect_no_log();
    ck_assert_int_eq(s->common.status, JOB_STATUS_PENDING);

    /* dismiss is refused before finalize */
    qmp_job_dismiss("j0", &err);
    test_assert_err(&err, "Job 'j0' in state 'pending' cannot accept command "
                    "verb 'dismiss'");

    qmp_job_finalize("j0", &error_abort);
    expect_events("j0:concluded", NULL);
    expect_log("j0:prepare", "j0:commit", "j0:clean", "j0:cb(0)", NULL);

    list = qmp_query_jobs(&error_abort);
    ck_assert_ptr_nonnull(list);
    ck_assert_ptr_null(list->next);
    ck_assert_str_eq(list->value->id, "j0");
    ck_assert_int_eq(list->value->status, JOB_STATUS_CONCLUDED);
    ck_assert_int_eq(list->value->type, JOB_TYPE_CREATE);
    ck_assert_int_eq(list->value->current_progress, 1);
    ck_assert_int_eq(list->value->total_progress, 1);
    ck_assert_ptr_null(list->value->error);
    qapi_free_JobInfoList(list);

    qmp_job_dismiss("j0", &error_abort);
    expect_events("j0:null", NULL);
    expect_log("j0:free", NULL);
    ck_assert_ptr_null(qmp_query_jobs(&error_abort));
}
END_TEST

START_TEST(test_failure_visible_until_dismissed)
{
    TestJob *s = create_full("j0", &test_driver, NULL, JOB_MANUAL_DISMISS, 3);
    TestJob *t = create_full("j1", &test_driver, NULL, JOB_MANUAL_DISMISS, 3);
    JobInfoList *list;

    s->fail_at = 1;
    s->fail_with_msg = true;
    t->fail_at = 0;             /* -EIO without a message */
    job_start(&s->common);
    job_start(&t->common);
    step(s);
    test_drain_loop();
    expect_events("j0:created", "j1:created", "j0:running", "j1:running",
                  "j1:aborting", "j1:concluded", "j0:aborting",
                  "j0:concluded", NULL);
    expect_log("j1:abort", "j1:clean", "j1:cb(-5)", "j0:abort", "j0:clean",
               "j0:cb(-5)", NULL);
    ck_assert_int_eq(s->common.ret, -EIO);

    /* newest first, as QEMU lists them */
    list = qmp_query_jobs(&error_abort);
    ck_assert_str_eq(list->value->id, "j1");
    ck_assert_str_eq(list->value->error, strerror(EIO));
    ck_assert_int_eq(list->value->status, JOB_STATUS_CONCLUDED);
    ck_assert_str_eq(list->next->value->id, "j0");
    ck_assert_str_eq(list->next->value->error, "step 1 failed");
    ck_assert_int_eq(list->next->value->current_progress, 1);
    ck_assert_int_eq(list->next->value->total_progress, 3);
    ck_assert_ptr_null(list->next->next);
    qapi_free_JobInfoList(list);

    qmp_job_dismiss("j0", &error_abort);
    qmp_job_dismiss("j1", &error_abort);
    expect_events("j0:null", "j1:null", NULL);
}
END_TEST

/* ---- ids ---- */

START_TEST(test_job_ids)
{
    static const char *const bad[] = {
        "", "0abc", "-x", "_x", ".x", "a b", "a/b", "a:b", "é", "a\tb",
    };
    static const char *const good[] = {
        "a", "Z", "a0", "job-1", "job_1", "job.1", "A-._9",
    };
    Error *err = NULL;
    TestJob *s;

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *msg = g_strdup_printf("Invalid job ID '%s'", bad[i]);

        ck_assert_ptr_null(job_create(bad[i], &test_driver, NULL, NULL, 0,
                                      NULL, NULL, &err));
        test_assert_err(&err, msg);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        s = create(good[i], 1);
        ck_assert_ptr_eq(job_get(good[i]), &s->common);
    }

    ck_assert_ptr_null(job_create("job-1", &test_driver, NULL, NULL, 0, NULL,
                                  NULL, &err));
    test_assert_err(&err, "Job ID 'job-1' already in use");

    ck_assert_ptr_null(job_create(NULL, &test_driver, NULL, NULL, 0, NULL,
                                  NULL, &err));
    test_assert_err(&err, "An explicit job ID is required");
    ck_assert_ptr_null(job_create("x", &test_driver, NULL, NULL,
                                  JOB_INTERNAL, NULL, NULL, &err));
    test_assert_err(&err, "Cannot specify job ID for internal job");

    /* ids are case-sensitive */
    s = create("JOB-1", 1);
    ck_assert_ptr_eq(job_get("JOB-1"), &s->common);
    ck_assert_ptr_null(job_get("nope"));

    /* an id is free again once its job is gone */
    job_cancel_sync(job_get("job-1"), true);
    ck_assert_ptr_null(job_get("job-1"));
    s = create("job-1", 1);
    ck_assert_ptr_nonnull(s);
}
END_TEST

START_TEST(test_internal_job_silent)
{
    Error *err = NULL;
    TestJob *s = job_create(NULL, &test_driver, NULL, NULL, JOB_INTERNAL,
                            NULL, NULL, &err);

    ck_assert_ptr_null(err);
    s->name = g_strdup("internal");
    s->steps = 1;
    s->fail_at = -1;
    ck_assert(job_is_internal(&s->common));
    job_start(&s->common);
    step(s);
    test_drain_loop();
    /* no JOB_STATUS_CHANGE for a job without id */
    expect_no_events();
    expect_log("internal:prepare", "internal:commit", "internal:clean",
               "internal:free", NULL);
}
END_TEST

/* ---- the verb table in every reachable state ---- */

static const char *const verb_states[JOB_VERB__MAX] = {
    [JOB_VERB_CANCEL] = "CRPYSWD",
    [JOB_VERB_PAUSE] = "CRPYS",
    [JOB_VERB_RESUME] = "CRPYS",
    [JOB_VERB_SET_SPEED] = "CRPYS",
    [JOB_VERB_COMPLETE] = "YS",
    [JOB_VERB_DISMISS] = "E",
    [JOB_VERB_FINALIZE] = "D",
    [JOB_VERB_CHANGE] = "CRPYS",
};
static const char state_letters[] = "UCRPYSWDXEN";
static int verb_checks;

/*
 * Every verb through job_apply_verb(), and every refused verb that has a
 * job-* command through that command, which must refuse it with the same
 * text and change nothing.
 */
static void check_verbs(Job *job, JobStatus expect)
{
    ck_assert_int_eq(job->status, expect);
    for (JobVerb v = 0; v < JOB_VERB__MAX; v++) {
        bool allowed = strchr(verb_states[v], state_letters[expect]);
        Error *err = NULL;
        g_autofree char *msg = g_strdup_printf(
            "Job '%s' in state '%s' cannot accept command verb '%s'",
            job->id, JobStatus_str(expect), JobVerb_str(v));
        int ret = job_apply_verb(job, v, &err);

        if (allowed) {
            ck_assert_int_eq(ret, 0);
            ck_assert_ptr_null(err);
            continue;
        }
        ck_assert_int_eq(ret, -EPERM);
        test_assert_err(&err, msg);

        switch (v) {
        case JOB_VERB_CANCEL:
            qmp_job_cancel(job->id, &err);
            break;
        case JOB_VERB_PAUSE:
            qmp_job_pause(job->id, &err);
            break;
        case JOB_VERB_COMPLETE:
            qmp_job_complete(job->id, &err);
            break;
        case JOB_VERB_FINALIZE:
            qmp_job_finalize(job->id, &err);
            break;
        case JOB_VERB_DISMISS:
            qmp_job_dismiss(job->id, &err);
            break;
        default:
            continue;       /* no job-* command for it */
        }
        test_assert_err(&err, msg);
        ck_assert_int_eq(job->status, expect);
        verb_checks++;
    }
}

static void check_verbs_aborting(TestJob *s)
{
    check_verbs(&s->common, JOB_STATUS_ABORTING);
}

START_TEST(test_verb_table)
{
    TestJob *s, *t;

    /* C */
    s = create("c", 3);
    check_verbs(&s->common, JOB_STATUS_CREATED);
    /* R */
    job_start(&s->common);
    check_verbs(&s->common, JOB_STATUS_RUNNING);
    /* P */
    qmp_job_pause("c", &error_abort);
    check_verbs(&s->common, JOB_STATUS_PAUSED);
    job_cancel_sync(&s->common, true);

    /* Y, S */
    s = create_full("y", &test_ready_driver, NULL, 0, 0);
    job_start(&s->common);
    check_verbs(&s->common, JOB_STATUS_READY);
    qmp_job_pause("y", &error_abort);
    check_verbs(&s->common, JOB_STATUS_STANDBY);
    qmp_job_resume("y", &error_abort);
    ck_assert_int_eq(s->common.status, JOB_STATUS_READY);
    job_cancel_sync(&s->common, true);

    /* W: done, but its transaction partner is still running */
    {
        JobTxn *txn = job_txn_new();

        s = create_full("w", &test_driver, txn, 0, 1);
        t = create_full("w2", &test_driver, txn, 0, 3);
        job_txn_unref(txn);
        job_start(&s->common);
        job_start(&t->common);
        step(s);
        test_drain_loop();
        check_verbs(&s->common, JOB_STATUS_WAITING);
        job_cancel_sync(&t->common, true);
        ck_assert_ptr_null(job_next(NULL));
    }

    /* D */
    s = create_full("d", &test_driver, NULL, JOB_MANUAL_FINALIZE, 1);
    job_start(&s->common);
    step(s);
    test_drain_loop();
    check_verbs(&s->common, JOB_STATUS_PENDING);
    job_cancel_sync(&s->common, true);

    /* X: from inside abort() */
    s = create("x", 2);
    s->fail_at = 1;
    s->in_abort = check_verbs_aborting;
    job_start(&s->common);
    step(s);
    test_drain_loop();
    ck_assert_ptr_null(job_get("x"));

    /* E, then N (still referenced) */
    s = create_full("e", &test_driver, NULL, JOB_MANUAL_DISMISS, 1);
    job_start(&s->common);
    step(s);
    test_drain_loop();
    check_verbs(&s->common, JOB_STATUS_CONCLUDED);
    job_ref(&s->common);
    qmp_job_dismiss("e", &error_abort);
    check_verbs(&s->common, JOB_STATUS_NULL);
    job_unref(&s->common);

    /* every refused verb with a job-* command was tried somewhere */
    ck_assert_int_eq(verb_checks, 3 + 5 + 8 + 9 + 9);
}
END_TEST

START_TEST(test_state_matrix_via_events)
{
    /*
     * Walk every legal edge at least once and check the event stream
     * reports exactly the states passed through.
     */
    TestJob *s = create_full("j", &test_ready_driver, NULL,
                             JOB_MANUAL_FINALIZE | JOB_MANUAL_DISMISS, 1);

    job_start(&s->common);                      /* C->R */
    qmp_job_pause("j", &error_abort);           /* R->P */
    qmp_job_resume("j", &error_abort);          /* P->R */
    step(s);                                    /* R->Y */
    qmp_job_pause("j", &error_abort);           /* Y->S */
    qmp_job_resume("j", &error_abort);          /* S->Y */
    qmp_job_complete("j", &error_abort);
    test_drain_loop();                               /* Y->W->D */
    qmp_job_finalize("j", &error_abort);        /* D->E */
    qmp_job_dismiss("j", &error_abort);         /* E->N */
    expect_events("j:created", "j:running", "j:paused", "j:running",
                  "j:ready", "j:standby", "j:ready", "j:waiting",
                  "j:pending", "j:concluded", "j:null", NULL);
}
END_TEST

/* ---- complete ---- */

START_TEST(test_complete_errors)
{
    Error *err = NULL;
    TestJob *s = create("j0", 2);
    TestJob *r;

    job_start(&s->common);
    qmp_job_complete("j0", &err);
    test_assert_err(&err, "Job 'j0' in state 'running' cannot accept command "
                    "verb 'complete'");

    r = create_full("m", &test_ready_driver, NULL, 0, 0);
    job_start(&r->common);
    ck_assert(job_is_ready(&r->common));
    /* a soft cancel that was requested blocks completion */
    r->common.cancelled = true;
    qmp_job_complete("m", &err);
    test_assert_err(&err, "The active block job 'm' cannot be completed");
    r->common.cancelled = false;
    ck_assert_int_eq(job_complete_sync(&r->common, &error_abort), 0);
    expect_log("m:prepare", "m:commit", "m:clean", "m:cb(0)", "m:free",
               NULL);

    qmp_job_complete("nope", &err);
    test_assert_err(&err, "Job not found");
}
END_TEST

/* ---- pause / resume ---- */

START_TEST(test_pause_resume_progress)
{
    Error *err = NULL;
    TestJob *s = create("j0", 10);
    JobInfoList *list;

    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, true);
    s->mode = STEP_SLEEP;
    s->sleep_ns = 100 * SCALE_MS;
    job_start(&s->common);
    ck_assert_uint_eq(s->common.progress.current, 1);
    qemu_clock_advance(QEMU_CLOCK_REALTIME, 100 * SCALE_MS);
    ck_assert_uint_eq(s->common.progress.current, 2);

    qmp_job_resume("j0", &err);
    test_assert_err(&err, "Can't resume a job that was not paused");

    qmp_job_pause("j0", &error_abort);
    /* woken from its sleep straight into the pause point */
    ck_assert_int_eq(s->common.status, JOB_STATUS_PAUSED);
    ck_assert(s->common.paused);
    ck_assert(job_user_paused(&s->common));
    qmp_job_pause("j0", &err);
    test_assert_err(&err, "Job is already paused");

    qemu_clock_advance(QEMU_CLOCK_REALTIME, 5 * NANOSECONDS_PER_SECOND);
    test_drain_loop();
    ck_assert_uint_eq(s->common.progress.current, 2);
    list = qmp_query_jobs(&error_abort);
    ck_assert_int_eq(list->value->status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(list->value->current_progress, 2);
    qapi_free_JobInfoList(list);

    qmp_job_resume("j0", &error_abort);
    ck_assert_int_eq(s->common.status, JOB_STATUS_RUNNING);
    ck_assert_uint_eq(s->common.progress.current, 3);
    qmp_job_resume("j0", &err);
    test_assert_err(&err, "Can't resume a job that was not paused");
    qemu_clock_advance(QEMU_CLOCK_REALTIME, 100 * SCALE_MS);
    ck_assert_uint_eq(s->common.progress.current, 4);
    expect_events("j0:created", "j0:running", "j0:paused", "j0:running",
                  NULL);

    /* internal pauses nest with the user's */
    job_pause(&s->common);
    ck_assert_int_eq(s->common.status, JOB_STATUS_PAUSED);
    qmp_job_pause("j0", &error_abort);
    qmp_job_resume("j0", &error_abort);
    ck_assert_int_eq(s->common.status, JOB_STATUS_PAUSED);
    job_resume(&s->common);
    ck_assert_int_eq(s->common.status, JOB_STATUS_RUNNING);
    ck_assert_uint_eq(s->common.progress.current, 5);

    qemu_clock_advance(QEMU_CLOCK_REALTIME, 10 * 100 * SCALE_MS);
    test_drain_loop();
    ck_assert_ptr_null(job_get("j0"));
    expect_log("j0:prepare", "j0:commit", "j0:clean", "j0:cb(0)", "j0:free",
               NULL);
}
END_TEST

START_TEST(test_pause_before_start)
{
    TestJob *s = create("j0", 2);

    qmp_job_pause("j0", &error_abort);
    job_start(&s->common);
    /* parks in the pause point before run() */
    ck_assert_int_eq(s->common.status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(s->done, 0);
    qmp_job_resume("j0", &error_abort);
    ck_assert_int_eq(s->done, 1);
    expect_events("j0:created", "j0:running", "j0:paused", "j0:running",
                  NULL);
}
END_TEST

/* ---- cancel in every state ---- */

START_TEST(test_cancel_created)
{
    create("j0", 2);
    qmp_job_cancel("j0", &error_abort);
    /* never ran: straight through, no run() */
    expect_events("j0:created", "j0:aborting", "j0:concluded", "j0:null",
                  NULL);
    expect_log("j0:abort", "j0:clean", "j0:cb(-125)", "j0:free", NULL);
}
END_TEST

START_TEST(test_cancel_running)
{
    TestJob *s = create("j0", 5);

    job_start(&s->common);
    qmp_job_cancel("j0", &error_abort);
    ck_assert(job_is_cancelled(&s->common));
    /* run() saw the cancel at once and returned */
    ck_assert(s->common.deferred_to_main_loop);
    ck_assert_int_eq(s->done, 1);
    test_drain_loop();
    expect_events("j0:created", "j0:running", "j0:aborting", "j0:concluded",
                  "j0:null", NULL);
    expect_log("j0:abort", "j0:clean", "j0:cb(-125)", "j0:free", NULL);
}
END_TEST

START_TEST(test_cancel_paused)
{
    TestJob *s = create("j0", 5);

    job_start(&s->common);
    qmp_job_pause("j0", &error_abort);
    qmp_job_cancel("j0", &error_abort);
    /* the cancel lifted the user pause */
    ck_assert(!job_user_paused(&s->common));
    test_drain_loop();
    expect_events("j0:created", "j0:running", "j0:paused", "j0:running",
                  "j0:aborting", "j0:concluded", "j0:null", NULL);
    expect_log("j0:abort", "j0:clean", "j0:cb(-125)", "j0:free", NULL);
}
END_TEST

START_TEST(test_cancel_ready_force_and_soft)
{
    TestJob *s = create_full("f", &test_ready_driver, NULL, 0, 0);
    TestJob *t = create_full("s", &test_ready_driver, NULL, 0, 0);

    job_start(&s->common);
    job_start(&t->common);
    expect_events("f:created", "s:created", "f:running", "f:ready",
                  "s:running", "s:ready", NULL);

    /* forced: aborts */
    job_cancel(&s->common, true);
    test_drain_loop();
    expect_events("f:aborting", "f:concluded", "f:null", NULL);
    expect_log("f:abort", "f:clean", "f:cb(-125)", "f:free", NULL);

    /* soft cancel of a READY mirror-like job: completes normally */
    job_cancel(&t->common, false);
    ck_assert(job_cancel_requested(&t->common));
    ck_assert(!job_is_cancelled(&t->common));
    test_drain_loop();
    expect_events("s:waiting", "s:pending", "s:concluded", "s:null", NULL);
    expect_log("s:prepare", "s:commit", "s:clean", "s:cb(0)", "s:free",
               NULL);
}
END_TEST

START_TEST(test_cancel_waiting)
{
    JobTxn *txn = job_txn_new();
    TestJob *a = create_full("a", &test_driver, txn, 0, 1);
    TestJob *b = create_full("b", &test_driver, txn, 0, 3);

    job_txn_unref(txn);
    job_start(&a->common);
    job_start(&b->common);
    step(a);
    test_drain_loop();
    ck_assert_int_eq(a->common.status, JOB_STATUS_WAITING);
    g_ptr_array_set_size(events, 0);

    qmp_job_cancel("a", &error_abort);
    /* the partner is cancelled and finished first, then a itself */
    expect_events("b:aborting", "b:concluded", "b:null", "a:aborting",
                  "a:concluded", "a:null", NULL);
    expect_log("b:abort", "b:clean", "b:cb(-125)", "b:free", "a:abort",
               "a:clean", "a:cb(-125)", "a:free", NULL);
}
END_TEST

START_TEST(test_cancel_pending)
{
    TestJob *s = create_full("j0", &test_driver, NULL, JOB_MANUAL_FINALIZE, 1);

    job_start(&s->common);
    step(s);
    test_drain_loop();
    g_ptr_array_set_size(events, 0);
    qmp_job_cancel("j0", &error_abort);
    expect_events("j0:aborting", "j0:concluded", "j0:null", NULL);
    /* prepare never ran: finalize did not happen */
    expect_log("j0:abort", "j0:clean", "j0:cb(-125)", "j0:free", NULL);
}
END_TEST

START_TEST(test_cancel_concluded_dismisses)
{
    Error *err = NULL;
    TestJob *s = create_full("j0", &test_driver, NULL, JOB_MANUAL_DISMISS, 1);

    job_start(&s->common);
    step(s);
    test_drain_loop();
    g_ptr_array_set_size(events, 0);
    qmp_job_cancel("j0", &err);
    test_assert_err(&err, "Job 'j0' in state 'concluded' cannot accept command "
                    "verb 'cancel'");
    /* internally (shutdown), a cancel of a concluded job dismisses it */
    job_cancel(&s->common, true);
    expect_events("j0:null", NULL);
    ck_assert_ptr_null(job_get("j0"));
}
END_TEST

START_TEST(test_not_found)
{
    Error *err = NULL;

    qmp_job_pause("nope", &err);
    test_assert_err(&err, "Job not found");
    qmp_job_resume("nope", &err);
    test_assert_err(&err, "Job not found");
    qmp_job_cancel("nope", &err);
    ck_assert_int_eq(error_get_class(err), ERROR_CLASS_GENERIC_ERROR);
    test_assert_err(&err, "Job not found");
    qmp_job_finalize("nope", &err);
    test_assert_err(&err, "Job not found");
    qmp_job_dismiss("nope", &err);
    test_assert_err(&err, "Job not found");
}
END_TEST

/* ---- transactions ---- */

START_TEST(test_txn_success_waits_for_all)
{
    JobTxn *txn = job_txn_new();
    TestJob *a = create_full("a", &test_driver, txn, 0, 1);
    TestJob *b = create_full("b", &test_driver, txn, 0, 2);

    job_txn_unref(txn);
    job_start(&a->common);
    job_start(&b->common);
    step(a);
    test_drain_loop();
    ck_assert_int_eq(a->common.status, JOB_STATUS_WAITING);
    expect_no_log();
    step(b);
    step(b);
    test_drain_loop();
    expect_events("a:created", "b:created", "a:running", "b:running",
                  "a:waiting", "b:waiting", "b:pending", "a:pending",
                  "b:concluded", "b:null", "a:concluded", "a:null", NULL);
    /* every member prepares before any commits */
    /* b is freed last: the finalization that runs from it holds it */
    expect_log("b:prepare", "a:prepare", "b:commit", "b:clean", "b:cb(0)",
               "a:commit", "a:clean", "a:cb(0)", "a:free", "b:free", NULL);
}
END_TEST

START_TEST(test_txn_failure_aborts_others)
{
    JobTxn *txn = job_txn_new();
    TestJob *a = create_full("a", &test_driver, txn, 0, 5);
    TestJob *b = create_full("b", &test_driver, txn, 0, 5);
    TestJob *c = create_full("c", &test_driver, txn, 0, 1);

    job_txn_unref(txn);
    job_start(&a->common);
    job_start(&b->common);
    job_start(&c->common);
    step(c);
    test_drain_loop();
    ck_assert_int_eq(c->common.status, JOB_STATUS_WAITING);
    g_ptr_array_set_size(events, 0);

    b->fail_at = 1;
    step(b);
    test_drain_loop();
    expect_events("b:aborting",
                  "c:aborting", "c:concluded", "c:null",
                  "b:concluded", "b:null",
                  "a:aborting", "a:concluded", "a:null", NULL);
    expect_log("c:abort", "c:clean", "c:cb(-125)", "c:free",
               "b:abort", "b:clean", "b:cb(-5)",
               "a:abort", "a:clean", "a:cb(-125)", "a:free", "b:free", NULL);
}
END_TEST

START_TEST(test_txn_prepare_failure)
{
    JobTxn *txn = job_txn_new();
    TestJob *a = create_full("a", &test_driver, txn, JOB_MANUAL_DISMISS, 1);
    TestJob *b = create_full("b", &test_driver, txn, JOB_MANUAL_DISMISS, 1);
    JobInfoList *list;

    job_txn_unref(txn);
    a->prepare_ret = -ENOSPC;
    job_start(&a->common);
    job_start(&b->common);
    step(a);
    step(b);
    test_drain_loop();
    /* nobody commits; a keeps its own error, b is cancelled */
    expect_log("b:prepare", "a:prepare", "b:abort", "b:clean", "b:cb(-125)",
               "a:abort", "a:clean", "a:cb(-28)", NULL);
    list = qmp_query_jobs(&error_abort);
    ck_assert_str_eq(list->value->id, "b");
    ck_assert_str_eq(list->value->error, strerror(ECANCELED));
    ck_assert_str_eq(list->next->value->id, "a");
    ck_assert_str_eq(list->next->value->error, strerror(ENOSPC));
    qapi_free_JobInfoList(list);
}
END_TEST

START_TEST(test_txn_manual_finalize_any_member)
{
    JobTxn *txn = job_txn_new();
    TestJob *a = create_full("a", &test_driver, txn, JOB_MANUAL_FINALIZE, 1);
    TestJob *b = create_full("b", &test_driver, txn, 0, 1);

    job_txn_unref(txn);
    job_start(&a->common);
    job_start(&b->common);
    step(a);
    step(b);
    test_drain_loop();
    /* one member needing job-finalize holds the whole transaction */
    ck_assert_int_eq(a->common.status, JOB_STATUS_PENDING);
    ck_assert_int_eq(b->common.status, JOB_STATUS_PENDING);
    expect_no_log();
    qmp_job_finalize("b", &error_abort);
    ck_assert_ptr_null(job_next(NULL));
    /* b is freed last: the finalization that runs from it holds it */
    expect_log("b:prepare", "a:prepare", "b:commit", "b:clean", "b:cb(0)",
               "a:commit", "a:clean", "a:cb(0)", "a:free", "b:free", NULL);
}
END_TEST

/* ---- sync helpers ---- */

START_TEST(test_cancel_sync_all)
{
    TestJob *c, *r, *p, *d, *e, *z;

    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, true);
    c = create("created", 3);
    r = create("running", 3);
    r->mode = STEP_SLEEP;
    r->sleep_ns = 3600 * NANOSECONDS_PER_SECOND;
    p = create("paused", 3);
    d = create_full("pending", &test_driver, NULL, JOB_MANUAL_FINALIZE, 1);
    e = create_full("concluded", &test_driver, NULL, JOB_MANUAL_DISMISS, 1);
    z = create_full("ready", &test_ready_driver, NULL, 0, 0);
    (void)c;
    job_start(&r->common);
    job_start(&p->common);
    qmp_job_pause("paused", &error_abort);
    job_start(&d->common);
    step(d);
    job_start(&e->common);
    step(e);
    job_start(&z->common);
    test_drain_loop();
    ck_assert_int_eq(d->common.status, JOB_STATUS_PENDING);
    ck_assert_int_eq(e->common.status, JOB_STATUS_CONCLUDED);
    g_ptr_array_set_size(cblog, 0);

    job_cancel_sync_all();
    ck_assert_ptr_null(job_next(NULL));
    /* each job that was not yet concluded aborted and was freed */
    ck_assert_uint_eq(cblog->len, 5 * 4 + 1);
    for (guint i = 0; i < cblog->len; i++) {
        const char *l = g_ptr_array_index(cblog, i);

        ck_assert(!strstr(l, "commit"));
        if (strstr(l, ":cb(")) {
            ck_assert(g_str_has_suffix(l, ":cb(-125)"));
        }
    }
}
END_TEST

START_TEST(test_finish_sync_returns_result)
{
    TestJob *s = create("j0", 3);
    TestJob *t = create("j1", 3);

    /* zero-length sleeps: every loop iteration advances the job */
    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, true);
    s->mode = STEP_SLEEP;
    job_start(&s->common);
    ck_assert_int_eq(job_finish_sync(&s->common, NULL, NULL), 0);

    t->mode = STEP_SLEEP;
    t->fail_at = 1;
    job_start(&t->common);
    ck_assert_int_eq(job_finish_sync(&t->common, NULL, NULL), -EIO);
    expect_log("j0:prepare", "j0:commit", "j0:clean", "j0:cb(0)", "j0:free",
               "j1:abort", "j1:clean", "j1:cb(-5)", "j1:free", NULL);
}
END_TEST

START_TEST(test_cancel_sync_returns_ecanceled)
{
    TestJob *s = create("j0", 3);

    job_start(&s->common);
    ck_assert_int_eq(job_cancel_sync(&s->common, false), -ECANCELED);
    ck_assert_ptr_null(job_get("j0"));
}
END_TEST

static Suite *job_suite(void)
{
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("job");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_auto_lifecycle);
    tcase_add_test(tc, test_manual_finalize_and_dismiss);
    tcase_add_test(tc, test_failure_visible_until_dismissed);
    tcase_add_test(tc, test_job_ids);
    tcase_add_test(tc, test_internal_job_silent);
    tcase_add_test(tc, test_verb_table);
    tcase_add_test(tc, test_state_matrix_via_events);
    tcase_add_test(tc, test_complete_errors);
    tcase_add_test(tc, test_pause_resume_progress);
    tcase_add_test(tc, test_pause_before_start);
    tcase_add_test(tc, test_cancel_created);
    tcase_add_test(tc, test_cancel_running);
    tcase_add_test(tc, test_cancel_paused);
    tcase_add_test(tc, test_cancel_ready_force_and_soft);
    tcase_add_test(tc, test_cancel_waiting);
    tcase_add_test(tc, test_cancel_pending);
    tcase_add_test(tc, test_cancel_concluded_dismisses);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_txn_success_waits_for_all);
    tcase_add_test(tc, test_txn_failure_aborts_others);
    tcase_add_test(tc, test_txn_prepare_failure);
    tcase_add_test(tc, test_txn_manual_finalize_any_member);
    tcase_add_test(tc, test_cancel_sync_all);
    tcase_add_test(tc, test_finish_sync_returns_result);
    tcase_add_test(tc, test_cancel_sync_returns_ecanceled);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(job_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
