/*
 * Unit tests for blockjob.c and the block-job-* QMP handlers: job ids
 * from device names, node ownership (permissions, op blockers, drain),
 * BLOCK_JOB_* events, query-block-jobs, speed and rate limiting on a
 * manual clock, and the on-error policies.
 *
 * The test block job walks `len` bytes of its null-co node in `chunk`
 * steps.  After each chunk it either yields (the test steps it with
 * job_enter()) or takes the rate-limit sleep on QEMU_CLOCK_REALTIME,
 * which the tests put in manual mode.  An "I/O error" can be injected at
 * one offset, for a number of attempts.
 */
#include "qemu/osdep.h"
#include "block/blockjob_int.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/coroutine.h"
#include "qapi/qmp-event.h"
#include "qapi-commands.h"
#include <check.h>
#include <jansson.h>
#include "test-util.h"

/* ---- recording ---- */

static GPtrArray *events;

static void capture_event(const char *name, json_t *event)
{
    test_log_event(events, name, event);
}

static void G_GNUC_NULL_TERMINATED expect_events(const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    test_expect_log_va(events, first, ap);
    va_end(ap);
}

/* Only the BLOCK_JOB_* events (drop JOB_STATUS_CHANGE). */
static void G_GNUC_NULL_TERMINATED expect_block_events(const char *first,
                                                       ...)
{
    va_list ap;
    g_autofree char *want = NULL;
    GString *got = g_string_new("");

    va_start(ap, first);
    want = test_join_va(first, ap);
    va_end(ap);
    for (guint i = 0; i < events->len; i++) {
        const char *e = g_ptr_array_index(events, i);

        if (g_str_has_prefix(e, "BLOCK_JOB_")) {
            g_string_append_printf(got, "%s%s", got->len ? ", " : "", e);
        }
    }
    ck_assert_str_eq(got->str, want);
    g_string_free(got, true);
    g_ptr_array_set_size(events, 0);
}

/* ---- the test block job ---- */

typedef struct TestBlockJob {
    BlockJob common;
    int64_t len;
    int64_t chunk;
    int64_t offset;
    bool yield_mode;
    bool should_complete;

    /* error injection: at err_offset, err_attempts times */
    int64_t err_offset;
    int err_attempts;
    int err_errno;
    bool err_read;
    BlockdevOnError on_err;
} TestBlockJob;

static int coroutine_fn tbj_run(Job *job, Error **errp)
{
    TestBlockJob *s = container_of(job, TestBlockJob, common.job);

    job_progress_set_remaining(job, s->len);
    while (s->offset < s->len) {
        if (job_is_cancelled(job)) {
            return 0;
        }
        if (s->err_attempts > 0 && s->offset == s->err_offset) {
            BlockErrorAction action;

            s->err_attempts--;
            action = block_job_error_action(&s->common, s->on_err,
                                            s->err_read, s->err_errno);
            if (action == BLOCK_ERROR_ACTION_REPORT) {
                return -s->err_errno;
            }
            if (action == BLOCK_ERROR_ACTION_STOP) {
                /* paused until block-job-resume; then retry */
                job_pause_point(job);
                continue;
            }
            /* IGNORE: carry on as if the chunk was copied */
        }
        s->offset += s->chunk;
        job_progress_update(job, s->chunk);
        block_job_ratelimit_processed_bytes(&s->common, s->chunk);
        if (s->yield_mode) {
            job_yield(job);
        } else {
            block_job_ratelimit_sleep(&s->common);
        }
    }
    if (job->driver->complete) {
        job_transition_to_ready(job);
        while (!s->should_complete && !job_cancel_requested(job)) {
            job_yield(job);
        }
    }
    return 0;
}

static void tbj_complete(Job *job, Error **errp)
{
    TestBlockJob *s = container_of(job, TestBlockJob, common.job);

    s->should_complete = true;
    job_enter(job);
}

static bool tbj_cancel(Job *job, bool force)
{
    return force || !job_is_ready(job);
}

static const BlockJobDriver tbj_driver = {
    .job_driver = {
        .instance_size = sizeof(TestBlockJob),
        .job_type = JOB_TYPE_BACKUP,
        .run = tbj_run,
        .free = block_job_free,
        .user_resume = block_job_user_resume,
    },
};

/* mirror-like: READY at the end, job-complete to finish */
static const BlockJobDriver tbj_ready_driver = {
    .job_driver = {
        .instance_size = sizeof(TestBlockJob),
        .job_type = JOB_TYPE_MIRROR,
        .run = tbj_run,
        .free = block_job_free,
        .user_resume = block_job_user_resume,
        .complete = tbj_complete,
        .cancel = tbj_cancel,
    },
};

/* a generic, non-block job, to check block-job-* ignores it */
static int coroutine_fn plain_run(Job *job, Error **errp)
{
    job_yield(job);
    return 0;
}

static const JobDriver plain_driver = {
    .instance_size = sizeof(Job),
    .job_type = JOB_TYPE_CREATE,
    .run = plain_run,
};

static BlockDriverState *node;

static TestBlockJob *create_full(const char *id, const BlockJobDriver *drv,
                                 JobTxn *txn, int flags, int64_t speed,
                                 Error **errp)
{
    TestBlockJob *s = block_job_create(id, drv, txn, node,
                                       BLK_PERM_CONSISTENT_READ,
                                       BLK_PERM_CONSISTENT_READ |
                                       BLK_PERM_WRITE_UNCHANGED,
                                       speed, flags, NULL, NULL, errp);

    if (s) {
        s->len = 4 * 64 * KiB;
        s->chunk = 64 * KiB;
        s->err_offset = -1;
        s->yield_mode = true;
    }
    return s;
}

static TestBlockJob *create(const char *id)
{
    return create_full(id, &tbj_driver, NULL, 0, 0, &error_abort);
}

static void step(TestBlockJob *s)
{
    ck_assert(!s->common.job.busy);
    job_enter(&s->common.job);
}

/* Step until run() returned, then let the main loop finish the job. */
static void run_to_end(TestBlockJob *s)
{
    while (!s->common.job.deferred_to_main_loop) {
        step(s);
    }
    test_drain_loop();
}

static void setup(void)
{
    json_error_t jerr;
    g_autoptr(json_t) o = NULL;

    qemu_init_main_loop();
    bdrv_init();
    o = json_loads("{\"driver\": \"null-co\", \"node-name\": \"n0\","
                   " \"size\": 1048576}", 0, &jerr);
    node = bdrv_open(o, &error_abort);
    events = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_emitter(capture_event);
}

static void teardown(void)
{
    job_cancel_sync_all();
    test_drain_loop();
    ck_assert_ptr_null(job_next(NULL));
    ck_assert(bdrv_op_blocker_is_empty(node));
    ck_assert_int_eq(bdrv_get_refcnt(node), 1);
    bdrv_unref(node);
    qapi_event_set_emitter(NULL);
    g_ptr_array_free(events, true);
}

/* ---- ids ---- */

START_TEST(test_job_id_from_device)
{
    Error *err = NULL;
    BlockBackend *blk;
    TestBlockJob *s;

    /* a node without a BlockBackend has device name "" */
    ck_assert_ptr_null(create_full(NULL, &tbj_driver, NULL, 0, 0, &err));
    test_assert_err(&err, "Invalid job ID ''");

    blk = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(blk, node, &error_abort));
    ck_assert(blk_set_name(blk, "drive0", &error_abort));
    s = create_full(NULL, &tbj_driver, NULL, 0, 0, &error_abort);
    ck_assert_str_eq(s->common.job.id, "drive0");
    ck_assert_ptr_eq(block_job_get("drive0"), &s->common);

    ck_assert_ptr_null(create_full(NULL, &tbj_driver, NULL, 0, 0, &err));
    test_assert_err(&err, "Job ID 'drive0' already in use");
    ck_assert_ptr_null(create_full("bad id", &tbj_driver, NULL, 0, 0, &err));
    test_assert_err(&err, "Invalid job ID 'bad id'");

    job_cancel_sync(&s->common.job, true);
    blk_unref(blk);
}
END_TEST

START_TEST(test_internal_block_job)
{
    TestBlockJob *s = create_full(NULL, &tbj_driver, NULL, JOB_INTERNAL, 0,
                                  &error_abort);
    Error *err = NULL;

    ck_assert(block_job_is_internal(&s->common));
    ck_assert_ptr_null(block_job_query(&s->common, &err));
    test_assert_err(&err, "Cannot query QEMU internal jobs");
    s->err_offset = 0;
    s->err_attempts = 1;
    s->on_err = BLOCKDEV_ON_ERROR_IGNORE;
    job_start(&s->common.job);
    ck_assert_ptr_null(qmp_query_block_jobs(&error_abort));
    ck_assert_ptr_null(qmp_query_jobs(&error_abort));
    run_to_end(s);
    /* no event at all, not even BLOCK_JOB_ERROR */
    ck_assert_uint_eq(events->len, 0);
}
END_TEST

/* ---- nodes: blockers, permissions, references, drain ---- */

START_TEST(test_op_blockers_for_lifetime)
{
    Error *err = NULL;
    TestBlockJob *s;

    ck_assert_int_eq(bdrv_get_refcnt(node), 1);
    s = create_full("j0", &tbj_driver, NULL, JOB_MANUAL_DISMISS, 0,
                    &error_abort);
    ck_assert(block_job_has_bdrv(&s->common, node));
    ck_assert_ptr_eq(block_job_get_child(&s->common, node)->bs, node);
    ck_assert_int_eq(bdrv_get_refcnt(node), 2);

    for (BlockOpType op = 0; op < BLOCK_OP_TYPE_MAX; op++) {
        if (op == BLOCK_OP_TYPE_DATAPLANE) {
            ck_assert(!bdrv_op_is_blocked(node, op, &error_abort));
            continue;
        }
        ck_assert(bdrv_op_is_blocked(node, op, &err));
        test_assert_err(&err, "Node 'n0' is busy: block device is in use by "
                        "block job: backup");
    }

    job_start(&s->common.job);
    run_to_end(s);
    /* concluded but not dismissed: still holds the node */
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_CONCLUDED);
    ck_assert(bdrv_op_is_blocked(node, BLOCK_OP_TYPE_BACKUP_SOURCE, NULL));
    qmp_block_job_dismiss("j0", &error_abort);
    ck_assert(!bdrv_op_is_blocked(node, BLOCK_OP_TYPE_BACKUP_SOURCE, NULL));
    ck_assert(bdrv_op_blocker_is_empty(node));
    ck_assert_int_eq(bdrv_get_refcnt(node), 1);
}
END_TEST

START_TEST(test_permissions)
{
    Error *err = NULL;
    BlockBackend *writer = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                   BLK_PERM_ALL);
    BlockBackend *writer2 = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                    BLK_PERM_ALL);
    TestBlockJob *s;

    ck_assert(blk_insert_bs(writer, node, &error_abort));
    /* the job does not share WRITE: refused while a writer exists */
    ck_assert_ptr_null(create_full("j0", &tbj_driver, NULL, 0, 0, &err));
    ck_assert_ptr_nonnull(err);
    error_free(err);
    err = NULL;
    /* the failed job went through created -> null and left nothing */
    expect_events("j0:created", "j0:null", NULL);
    ck_assert(bdrv_op_blocker_is_empty(node));
    ck_assert_ptr_null(job_get("j0"));
    blk_unref(writer);

    s = create("j0");
    ck_assert(!blk_insert_bs(writer2, node, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err), "backup job 'j0'"));
    error_free(err);
    err = NULL;
    job_cancel_sync(&s->common.job, true);
    ck_assert(blk_insert_bs(writer2, node, &error_abort));
    blk_unref(writer2);
}
END_TEST

START_TEST(test_bad_speed_at_create)
{
    Error *err = NULL;

    ck_assert_ptr_null(create_full("j0", &tbj_driver, NULL, 0, -1, &err));
    test_assert_err(&err, "Parameter 'speed' expects a non-negative value");
    ck_assert(bdrv_op_blocker_is_empty(node));
    ck_assert_int_eq(bdrv_get_refcnt(node), 1);
    expect_events("j0:created", "j0:null", NULL);
}
END_TEST

START_TEST(test_drain_pauses_job)
{
    TestBlockJob *s = create("j0");
    TestBlockJob *t;

    job_start(&s->common.job);
    ck_assert_int_eq(s->offset, 64 * KiB);
    bdrv_drained_begin(node);
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_PAUSED);
    ck_assert(s->common.job.paused);
    ck_assert(!job_user_paused(&s->common.job));
    test_drain_loop();
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(s->offset, 64 * KiB);
    bdrv_drained_end(node);
    /* resumed: goes on with the next chunk */
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_RUNNING);
    ck_assert_int_eq(s->offset, 128 * KiB);
    job_cancel_sync(&s->common.job, true);

    /* a job created inside a drained section starts paused */
    bdrv_drained_begin(node);
    t = create("j1");
    job_start(&t->common.job);
    ck_assert_int_eq(t->common.job.status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(t->offset, 0);
    bdrv_drained_end(node);
    ck_assert_int_eq(t->common.job.status, JOB_STATUS_RUNNING);
    ck_assert_int_eq(t->offset, 64 * KiB);
    expect_events("j0:created", "j0:running", "j0:paused", "j0:running",
                  "j0:aborting", "BLOCK_JOB_CANCELLED {\"device\":\"j0\","
                  "\"len\":262144,\"offset\":131072,\"speed\":0,"
                  "\"type\":\"backup\"}", "j0:concluded", "j0:null",
                  "j1:created", "j1:running", "j1:paused", "j1:running",
                  NULL);
}
END_TEST

/* ---- events ---- */

START_TEST(test_events_completed)
{
    TestBlockJob *s = create("j0");

    job_start(&s->common.job);
    run_to_end(s);
    expect_events("j0:created", "j0:running", "j0:waiting", "j0:pending",
                  "BLOCK_JOB_COMPLETED {\"device\":\"j0\",\"len\":262144,"
                  "\"offset\":262144,\"speed\":0,\"type\":\"backup\"}",
                  "j0:concluded", "j0:null", NULL);
}
END_TEST

START_TEST(test_events_manual_finalize)
{
    Error *err = NULL;
    TestBlockJob *s = create_full("j0", &tbj_driver, NULL,
                                  JOB_MANUAL_FINALIZE, 0, &error_abort);

    job_start(&s->common.job);
    run_to_end(s);
    expect_events("j0:created", "j0:running", "j0:waiting", "j0:pending",
                  "BLOCK_JOB_PENDING {\"id\":\"j0\",\"type\":\"backup\"}",
                  NULL);
    qmp_block_job_dismiss("j0", &err);
    test_assert_err(&err, "Job 'j0' in state 'pending' cannot accept command "
                    "verb 'dismiss'");
    qmp_block_job_finalize("j0", &error_abort);
    expect_events("BLOCK_JOB_COMPLETED {\"device\":\"j0\",\"len\":262144,"
                  "\"offset\":262144,\"speed\":0,\"type\":\"backup\"}",
                  "j0:concluded", "j0:null", NULL);
}
END_TEST

START_TEST(test_events_cancelled)
{
    TestBlockJob *s = create("j0");
    TestBlockJob *t = create("j1");

    job_start(&s->common.job);
    step(s);
    qmp_block_job_cancel("j0", false, false, &error_abort);
    test_drain_loop();
    expect_block_events("BLOCK_JOB_CANCELLED {\"device\":\"j0\","
                        "\"len\":262144,\"offset\":131072,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);

    /* never started: no BLOCK_JOB_CANCELLED, only the state changes */
    qmp_block_job_cancel("j1", true, true, &error_abort);
    expect_events("j1:aborting", "j1:concluded", "j1:null", NULL);
    (void)t;
}
END_TEST

START_TEST(test_events_failed)
{
    TestBlockJob *s = create_full("j0", &tbj_driver, NULL,
                                  JOB_MANUAL_DISMISS, 0, &error_abort);
    BlockJobInfoList *list;

    s->err_offset = 128 * KiB;
    s->err_attempts = 1;
    s->err_errno = EIO;
    s->on_err = BLOCKDEV_ON_ERROR_REPORT;
    job_start(&s->common.job);
    run_to_end(s);
    expect_events("j0:created", "j0:running",
                  "BLOCK_JOB_ERROR {\"action\":\"report\",\"device\":\"j0\","
                  "\"operation\":\"write\"}",
                  "j0:aborting",
                  "BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                  "\"error\":\"Input/output error\",\"len\":262144,"
                  "\"offset\":131072,\"speed\":0,\"type\":\"backup\"}",
                  "j0:concluded", NULL);
    list = qmp_query_block_jobs(&error_abort);
    ck_assert_str_eq(list->value->error, "Input/output error");
    ck_assert_int_eq(list->value->status, JOB_STATUS_CONCLUDED);
    qapi_free_BlockJobInfoList(list);
    qmp_block_job_dismiss("j0", &error_abort);
}
END_TEST

START_TEST(test_events_ready_and_complete)
{
    Error *err = NULL;
    TestBlockJob *s = create_full("m0", &tbj_ready_driver, NULL, 0, 0,
                                  &error_abort);
    TestBlockJob *t = create_full("m1", &tbj_ready_driver, NULL, 0, 0,
                                  &error_abort);
    BlockJobInfoList *list;

    job_start(&s->common.job);
    qmp_block_job_complete("m0", &err);
    test_assert_err(&err, "Job 'm0' in state 'running' cannot accept command "
                    "verb 'complete'");
    while (s->offset < s->len) {
        step(s);
    }
    step(s);
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_READY);
    expect_block_events("BLOCK_JOB_READY {\"device\":\"m0\",\"len\":262144,"
                        "\"offset\":262144,\"speed\":0,"
                        "\"type\":\"mirror\"}", NULL);
    list = qmp_query_block_jobs(&error_abort);
    ck_assert(list->next->value->ready);
    ck_assert_str_eq(list->next->value->device, "m0");
    ck_assert(!list->value->ready);
    qapi_free_BlockJobInfoList(list);

    qmp_block_job_complete("m0", &error_abort);
    test_drain_loop();
    expect_block_events("BLOCK_JOB_COMPLETED {\"device\":\"m0\","
                        "\"len\":262144,\"offset\":262144,\"speed\":0,"
                        "\"type\":\"mirror\"}", NULL);

    /* a soft cancel of a READY mirror completes it too */
    t->len = 0;
    job_start(&t->common.job);
    ck_assert_int_eq(t->common.job.status, JOB_STATUS_READY);
    qmp_block_job_cancel("m1", false, false, &error_abort);
    test_drain_loop();
    expect_block_events("BLOCK_JOB_READY {\"device\":\"m1\",\"len\":0,"
                        "\"offset\":0,\"speed\":0,\"type\":\"mirror\"}",
                        "BLOCK_JOB_COMPLETED {\"device\":\"m1\",\"len\":0,"
                        "\"offset\":0,\"speed\":0,\"type\":\"mirror\"}",
                        NULL);
}
END_TEST

START_TEST(test_txn_block_events)
{
    JobTxn *txn = job_txn_new();
    TestBlockJob *a = create_full("a", &tbj_driver, txn, 0, 0, &error_abort);
    TestBlockJob *b = create_full("b", &tbj_driver, txn, 0, 0, &error_abort);

    job_txn_unref(txn);
    b->err_offset = 64 * KiB;
    b->err_attempts = 1;
    b->err_errno = EIO;
    b->err_read = true;
    b->on_err = BLOCKDEV_ON_ERROR_REPORT;
    job_start(&a->common.job);
    job_start(&b->common.job);
    step(b);
    test_drain_loop();
    expect_block_events("BLOCK_JOB_ERROR {\"action\":\"report\","
                        "\"device\":\"b\",\"operation\":\"read\"}",
                        "BLOCK_JOB_COMPLETED {\"device\":\"b\","
                        "\"error\":\"Input/output error\",\"len\":262144,"
                        "\"offset\":65536,\"speed\":0,\"type\":\"backup\"}",
                        "BLOCK_JOB_CANCELLED {\"device\":\"a\","
                        "\"len\":262144,\"offset\":65536,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
    ck_assert_ptr_null(job_next(NULL));
}
END_TEST

/* ---- query ---- */

START_TEST(test_query_block_jobs)
{
    TestBlockJob *s = create_full("j0", &tbj_driver, NULL,
                                  JOB_MANUAL_FINALIZE, 4096, &error_abort);
    Job *plain = job_create("plain", &plain_driver, NULL, NULL, 0, NULL,
                            NULL, &error_abort);
    BlockJobInfoList *list;
    BlockJobInfo *info;
    JobInfoList *jl;

    job_start(&s->common.job);
    job_start(plain);
    list = qmp_query_block_jobs(&error_abort);
    ck_assert_ptr_null(list->next);         /* the plain job is no block job */
    info = list->value;
    ck_assert_int_eq(info->type, JOB_TYPE_BACKUP);
    ck_assert_str_eq(info->device, "j0");
    ck_assert_int_eq(info->len, 262144);
    ck_assert_int_eq(info->offset, 65536);
    ck_assert(!info->busy);
    ck_assert(!info->paused);
    ck_assert_int_eq(info->speed, 4096);
    ck_assert_int_eq(info->io_status, BLOCK_DEVICE_IO_STATUS_OK);
    ck_assert(!info->ready);
    ck_assert_int_eq(info->status, JOB_STATUS_RUNNING);
    ck_assert(!info->auto_finalize);
    ck_assert(info->auto_dismiss);
    ck_assert_ptr_null(info->error);
    qapi_free_BlockJobInfoList(list);

    qmp_block_job_pause("j0", &error_abort);
    list = qmp_query_block_jobs(&error_abort);
    ck_assert(list->value->paused);
    ck_assert_int_eq(list->value->status, JOB_STATUS_PAUSED);
    qapi_free_BlockJobInfoList(list);

    /* query-jobs sees both */
    jl = qmp_query_jobs(&error_abort);
    ck_assert_str_eq(jl->value->id, "plain");
    ck_assert_int_eq(jl->value->type, JOB_TYPE_CREATE);
    ck_assert_str_eq(jl->next->value->id, "j0");
    ck_assert_int_eq(jl->next->value->type, JOB_TYPE_BACKUP);
    ck_assert_int_eq(jl->next->value->current_progress, 65536);
    ck_assert_int_eq(jl->next->value->total_progress, 262144);
    qapi_free_JobInfoList(jl);
}
END_TEST

START_TEST(test_qmp_errors)
{
    Error *err = NULL;
    TestBlockJob *s = create("j0");
    const char *msg = "Block job 'nope' not found";

    job_create("plain", &plain_driver, NULL, NULL, 0, NULL, NULL,
               &error_abort);

    qmp_block_job_set_speed("nope", 1, &err);
    ck_assert_int_eq(error_get_class(err), ERROR_CLASS_DEVICE_NOT_ACTIVE);
    test_assert_err(&err, msg);
    qmp_block_job_cancel("nope", false, false, &err);
    ck_assert_int_eq(error_get_class(err), ERROR_CLASS_DEVICE_NOT_ACTIVE);
    test_assert_err(&err, msg);
    qmp_block_job_pause("nope", &err);
    test_assert_err(&err, msg);
    qmp_block_job_resume("nope", &err);
    test_assert_err(&err, msg);
    qmp_block_job_complete("nope", &err);
    test_assert_err(&err, msg);
    qmp_block_job_finalize("nope", &err);
    test_assert_err(&err, msg);
    qmp_block_job_dismiss("nope", &err);
    test_assert_err(&err, msg);

    /* block-job-* does not see other jobs; job-* does */
    qmp_block_job_pause("plain", &err);
    test_assert_err(&err, "Block job 'plain' not found");
    qmp_job_pause("plain", &error_abort);
    qmp_job_resume("plain", &error_abort);

    job_start(&s->common.job);
    qmp_block_job_resume("j0", &err);
    test_assert_err(&err, "Can't resume a job that was not paused");
    qmp_block_job_pause("j0", &error_abort);
    qmp_block_job_pause("j0", &err);
    test_assert_err(&err, "Job is already paused");
    /* a paused job is only cancelled with force */
    qmp_block_job_cancel("j0", false, false, &err);
    test_assert_err(&err, "The block job for device 'j0' is currently paused");
    qmp_block_job_cancel("j0", true, false, &err);
    test_assert_err(&err, "The block job for device 'j0' is currently paused");
    qmp_block_job_complete("j0", &err);
    test_assert_err(&err, "Job 'j0' in state 'paused' cannot accept "
                    "command verb 'complete'");
    qmp_block_job_cancel("j0", true, true, &error_abort);
    test_drain_loop();
    ck_assert_ptr_null(block_job_get("j0"));
}
END_TEST

/* ---- speed ---- */

START_TEST(test_set_speed_errors)
{
    Error *err = NULL;
    TestBlockJob *s = create_full("j0", &tbj_driver, NULL,
                                  JOB_MANUAL_DISMISS, 0, &error_abort);

    qmp_block_job_set_speed("j0", -1, &err);
    test_assert_err(&err, "Parameter 'speed' expects a non-negative value");
    ck_assert_int_eq(s->common.speed, 0);
    /* allowed before start */
    qmp_block_job_set_speed("j0", 1000, &error_abort);
    ck_assert_int_eq(s->common.speed, 1000);
    job_start(&s->common.job);
    run_to_end(s);
    qmp_block_job_set_speed("j0", 5, &err);
    test_assert_err(&err, "Job 'j0' in state 'concluded' cannot accept command "
                    "verb 'set-speed'");
    expect_block_events("BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                        "\"len\":262144,\"offset\":262144,\"speed\":1000,"
                        "\"type\":\"backup\"}", NULL);
    qmp_block_job_dismiss("j0", &error_abort);
}
END_TEST

#define assert_about(got, want, slack) \
    assert_about_at(__LINE__, (got), (want), (slack))

static void assert_about_at(int line, int64_t got, int64_t want,
                            int64_t slack)
{
    ck_assert_msg(got >= want - slack && got <= want + slack,
                  "line %d: %" PRId64 " bytes, expected %" PRId64 " +- %"
                  PRId64, line, got, want, slack);
}

START_TEST(test_rate_limit_virtual_clock)
{
    TestBlockJob *s;
    int64_t before;

    qemu_clock_set_manual(QEMU_CLOCK_REALTIME, true);
    s = create_full("j0", &tbj_driver, NULL, 0, 1 * MiB, &error_abort);
    s->yield_mode = false;
    s->len = 64 * MiB;
    job_start(&s->common.job);

    /* 1 MiB/s: about 1 MiB per virtual second */
    qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
    test_drain_loop();
    assert_about(s->offset, 1 * MiB, 2 * s->chunk);
    before = s->offset;
    qemu_clock_advance(QEMU_CLOCK_REALTIME, 2 * NANOSECONDS_PER_SECOND);
    test_drain_loop();
    assert_about(s->offset - before, 2 * MiB, 2 * s->chunk);

    /* raising the limit takes effect at once */
    qmp_block_job_set_speed("j0", 4 * MiB, &error_abort);
    before = s->offset;
    qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
    test_drain_loop();
    assert_about(s->offset - before, 4 * MiB, 2 * s->chunk);

    /* lowering too (after the current sleep) */
    qmp_block_job_set_speed("j0", 512 * KiB, &error_abort);
    qemu_clock_advance(QEMU_CLOCK_REALTIME, NANOSECONDS_PER_SECOND);
    test_drain_loop();
    before = s->offset;
    qemu_clock_advance(QEMU_CLOCK_REALTIME, 2 * NANOSECONDS_PER_SECOND);
    test_drain_loop();
    assert_about(s->offset - before, 1 * MiB, 2 * s->chunk);

    /* paused: nothing moves however long we wait */
    qmp_block_job_pause("j0", &error_abort);
    before = s->offset;
    qemu_clock_advance(QEMU_CLOCK_REALTIME, 10 * NANOSECONDS_PER_SECOND);
    test_drain_loop();
    ck_assert_int_eq(s->offset, before);
    qmp_block_job_resume("j0", &error_abort);

    /* unlimited: the job finishes without the clock moving */
    qmp_block_job_set_speed("j0", 0, &error_abort);
    test_drain_loop();
    ck_assert_ptr_null(job_get("j0"));
    ck_assert_int_eq(s == NULL, 0);
    expect_block_events("BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                        "\"len\":67108864,\"offset\":67108864,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
}
END_TEST

/* ---- error policies ---- */

static TestBlockJob *start_failing(const char *id, BlockdevOnError on_err,
                                   int errnum, bool is_read, int attempts)
{
    TestBlockJob *s = create(id);

    s->err_offset = 64 * KiB;
    s->err_attempts = attempts;
    s->err_errno = errnum;
    s->err_read = is_read;
    s->on_err = on_err;
    job_start(&s->common.job);
    return s;
}

static BlockDeviceIoStatus io_status(const char *id)
{
    BlockJobInfoList *list = qmp_query_block_jobs(&error_abort);
    BlockDeviceIoStatus st = BLOCK_DEVICE_IO_STATUS__MAX;

    for (BlockJobInfoList *l = list; l; l = l->next) {
        if (!strcmp(l->value->device, id)) {
            st = l->value->io_status;
        }
    }
    qapi_free_BlockJobInfoList(list);
    return st;
}

START_TEST(test_error_ignore)
{
    TestBlockJob *s = start_failing("j0", BLOCKDEV_ON_ERROR_IGNORE, EIO,
                                    true, 1);

    run_to_end(s);
    expect_block_events("BLOCK_JOB_ERROR {\"action\":\"ignore\","
                        "\"device\":\"j0\",\"operation\":\"read\"}",
                        "BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                        "\"len\":262144,\"offset\":262144,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
}
END_TEST

START_TEST(test_error_stop_resume_retries)
{
    Error *err = NULL;
    TestBlockJob *s = start_failing("j0", BLOCKDEV_ON_ERROR_STOP, EIO,
                                    false, 2);

    step(s);
    /* stopped at the error, user-paused, io-status failed */
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_PAUSED);
    ck_assert(job_user_paused(&s->common.job));
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_FAILED);
    ck_assert_int_eq(s->offset, 64 * KiB);
    expect_block_events("BLOCK_JOB_ERROR {\"action\":\"stop\","
                        "\"device\":\"j0\",\"operation\":\"write\"}", NULL);
    qmp_block_job_cancel("j0", false, false, &err);
    test_assert_err(&err, "The block job for device 'j0' is currently paused");

    /* resume: retried, fails again, stops again */
    qmp_block_job_resume("j0", &error_abort);
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_FAILED);
    expect_block_events("BLOCK_JOB_ERROR {\"action\":\"stop\","
                        "\"device\":\"j0\",\"operation\":\"write\"}", NULL);

    /* resume: the retry succeeds */
    qmp_block_job_resume("j0", &error_abort);
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_OK);
    ck_assert_int_eq(s->common.job.status, JOB_STATUS_RUNNING);
    ck_assert_int_eq(s->offset, 128 * KiB);
    run_to_end(s);
    expect_block_events("BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                        "\"len\":262144,\"offset\":262144,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
}
END_TEST

START_TEST(test_error_stop_while_user_paused)
{
    TestBlockJob *s = start_failing("j0", BLOCKDEV_ON_ERROR_STOP, ENOSPC,
                                    false, 1);

    /* a user pause arrives while the job is about to hit the error */
    s->common.job.user_paused = true;
    s->common.job.pause_count++;
    block_job_error_action(&s->common, BLOCKDEV_ON_ERROR_STOP, false, ENOSPC);
    /* not paused twice */
    ck_assert_int_eq(s->common.job.pause_count, 1);
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_NOSPACE);
    /* the first error's status sticks */
    block_job_error_action(&s->common, BLOCKDEV_ON_ERROR_STOP, false, EIO);
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_NOSPACE);
    s->err_attempts = 0;
    qmp_block_job_resume("j0", &error_abort);
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_OK);
    ck_assert_int_eq(s->offset, 128 * KiB);
}
END_TEST

START_TEST(test_error_enospc_and_auto)
{
    static const BlockdevOnError policies[] = {
        BLOCKDEV_ON_ERROR_ENOSPC, BLOCKDEV_ON_ERROR_AUTO,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(policies); i++) {
        TestBlockJob *s = start_failing("j0", policies[i], ENOSPC, false, 1);
        TestBlockJob *t;

        /* ENOSPC stops (nospace) */
        step(s);
        ck_assert_int_eq(s->common.job.status, JOB_STATUS_PAUSED);
        ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_NOSPACE);
        qmp_block_job_resume("j0", &error_abort);
        run_to_end(s);
        expect_block_events("BLOCK_JOB_ERROR {\"action\":\"stop\","
                            "\"device\":\"j0\",\"operation\":\"write\"}",
                            "BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                            "\"len\":262144,\"offset\":262144,\"speed\":0,"
                            "\"type\":\"backup\"}", NULL);

        /* anything else reports */
        t = start_failing("j1", policies[i], EIO, true, 1);
        step(t);
        test_drain_loop();
        expect_block_events("BLOCK_JOB_ERROR {\"action\":\"report\","
                            "\"device\":\"j1\",\"operation\":\"read\"}",
                            "BLOCK_JOB_COMPLETED {\"device\":\"j1\","
                            "\"error\":\"Input/output error\","
                            "\"len\":262144,\"offset\":65536,\"speed\":0,"
                            "\"type\":\"backup\"}", NULL);
    }
}
END_TEST

START_TEST(test_error_report_enospc)
{
    TestBlockJob *s = start_failing("j0", BLOCKDEV_ON_ERROR_REPORT, ENOSPC,
                                    false, 1);

    ck_assert_int_eq(block_job_error_action(&s->common,
                                            BLOCKDEV_ON_ERROR_REPORT, true,
                                            ENOSPC),
                     BLOCK_ERROR_ACTION_REPORT);
    /* report does not touch the io-status */
    ck_assert_int_eq(io_status("j0"), BLOCK_DEVICE_IO_STATUS_OK);
    step(s);
    test_drain_loop();
    expect_block_events("BLOCK_JOB_ERROR {\"action\":\"report\","
                        "\"device\":\"j0\",\"operation\":\"read\"}",
                        "BLOCK_JOB_ERROR {\"action\":\"report\","
                        "\"device\":\"j0\",\"operation\":\"write\"}",
                        "BLOCK_JOB_COMPLETED {\"device\":\"j0\","
                        "\"error\":\"No space left on device\","
                        "\"len\":262144,\"offset\":65536,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
}
END_TEST

/* ---- shutdown ---- */

START_TEST(test_cancel_sync_all_releases_nodes)
{
    TestBlockJob *a = create("a");
    TestBlockJob *b = create_full("b", &tbj_driver, NULL,
                                  JOB_MANUAL_DISMISS, 0, &error_abort);
    TestBlockJob *c = start_failing("c", BLOCKDEV_ON_ERROR_STOP, EIO,
                                    false, 1);

    job_start(&a->common.job);
    job_start(&b->common.job);
    run_to_end(b);
    step(c);
    ck_assert_int_eq(c->common.job.status, JOB_STATUS_PAUSED);
    ck_assert_int_eq(bdrv_get_refcnt(node), 4);
    g_ptr_array_set_size(events, 0);

    job_cancel_sync_all();
    ck_assert_ptr_null(job_next(NULL));
    ck_assert(bdrv_op_blocker_is_empty(node));
    ck_assert_int_eq(bdrv_get_refcnt(node), 1);
    expect_block_events("BLOCK_JOB_CANCELLED {\"device\":\"c\","
                        "\"len\":262144,\"offset\":65536,\"speed\":0,"
                        "\"type\":\"backup\"}",
                        "BLOCK_JOB_CANCELLED {\"device\":\"a\","
                        "\"len\":262144,\"offset\":65536,\"speed\":0,"
                        "\"type\":\"backup\"}", NULL);
}
END_TEST

static Suite *blockjob_suite(void)
{
    Suite *s = suite_create("blockjob");
    TCase *tc = tcase_create("blockjob");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_job_id_from_device);
    tcase_add_test(tc, test_internal_block_job);
    tcase_add_test(tc, test_op_blockers_for_lifetime);
    tcase_add_test(tc, test_permissions);
    tcase_add_test(tc, test_bad_speed_at_create);
    tcase_add_test(tc, test_drain_pauses_job);
    tcase_add_test(tc, test_events_completed);
    tcase_add_test(tc, test_events_manual_finalize);
    tcase_add_test(tc, test_events_cancelled);
    tcase_add_test(tc, test_events_failed);
    tcase_add_test(tc, test_events_ready_and_complete);
    tcase_add_test(tc, test_txn_block_events);
    tcase_add_test(tc, test_query_block_jobs);
    tcase_add_test(tc, test_qmp_errors);
    tcase_add_test(tc, test_set_speed_errors);
    tcase_add_test(tc, test_rate_limit_virtual_clock);
    tcase_add_test(tc, test_error_ignore);
    tcase_add_test(tc, test_error_stop_resume_retries);
    tcase_add_test(tc, test_error_stop_while_user_paused);
    tcase_add_test(tc, test_error_enospc_and_auto);
    tcase_add_test(tc, test_error_report_enospc);
    tcase_add_test(tc, test_cancel_sync_all_releases_nodes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(blockjob_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
