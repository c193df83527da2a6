/*
 * Unit tests for the backup QMP handlers and transaction
 * (blockdev-backup.c, blockdev-transaction.c), called as the monitor
 * would, on raw images in a temp dir:
 * - blockdev-backup argument checks with QEMU's wording (bitmaps,
 *   filter-node-name, job-id defaulting to the node name);
 * - drive-backup: qcow2 target created with the source's size, sync=none
 *   gets the source as backing, raw cannot, the target node goes away
 *   with the job, mode=existing on a missing file fails;
 * - transaction: commit starts every job; a failing action (abort, or a
 *   bad device) rolls back the jobs created before it and frees their
 *   nodes for the next command; completion-mode=grouped cancels the
 *   sibling of a job that fails (blkdebug EIO), individual does not.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/blockdev.h"
#include "block/blockjob_int.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qapi/qmp-event.h"
#include "qapi-commands.h"
#include <check.h>

#define IMG_SIZE (1 * MiB)

static char *tmpdir;
static GPtrArray *events;
static GString *statuses;       /* "id:status " per JOB_STATUS_CHANGE */

static void capture_event(const char *name, json_t *event)
{
    json_t *data = json_object_get(event, "data");
    const char *dev = json_string_value(json_object_get(data, "device"));

    if (!strcmp(name, "JOB_STATUS_CHANGE")) {
        g_string_append_printf(statuses, "%s:%s ",
            json_string_value(json_object_get(data, "id")),
            json_string_value(json_object_get(data, "status")));
    }
    if (!strcmp(name, "BLOCK_JOB_COMPLETED") ||
        !strcmp(name, "BLOCK_JOB_CANCELLED")) {
        g_ptr_array_add(events, g_strdup_printf("%s %s%s", name, dev,
                        json_object_get(data, "error") ? " error" : ""));
    }
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The completion events seen so far, sorted, one per line; forget them */
static void expect_events(const char *want)
{
    GString *got = g_string_new("");

    g_ptr_array_sort(events, cmp_str);
    for (guint i = 0; i < events->len; i++) {
        g_string_append_printf(got, "%s%s", i ? "\n" : "",
                               (char *)g_ptr_array_index(events, i));
    }
    ck_assert_str_eq(got->str, want);
    g_string_free(got, true);
    g_ptr_array_set_size(events, 0);
}

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-transaction-XXXXXX", NULL);
    events = g_ptr_array_new_with_free_func(g_free);
    statuses = g_string_new("");
    qapi_event_set_emitter(capture_event);
}

static void teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

    job_cancel_sync_all();
    ck_assert_ptr_null(job_next(NULL));
    ck_assert_int_eq(system(cmd), 0);
    g_ptr_array_free(events, true);
    g_string_free(statuses, true);
    g_free(tmpdir);
}

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static char *create_raw(const char *name)
{
    char *path = tpath(name);
    g_autoptr(json_t) o = json_pack("{s:I}", "size", (json_int_t)IMG_SIZE);

    ck_assert_int_eq(bdrv_create_file(path, o, &error_abort), 0);
    return path;
}

/* raw node `name` over a new file; err_writes: blkdebug EIO on writes */
static BlockDriverState *open_node(const char *name, bool err_writes)
{
    g_autofree char *path = create_raw(name);
    g_autofree char *s = NULL;
    g_autoptr(json_t) o = NULL;

    if (err_writes) {
        s = g_strdup_printf("{\"driver\":\"raw\",\"node-name\":\"%s\","
                            "\"file\":{\"driver\":\"blkdebug\","
                            "\"inject-error\":[{\"event\":\"write_aio\"}],"
                            "\"image\":{\"driver\":\"file\","
                            "\"filename\":\"%s\"}}}", name, path);
    } else {
        s = g_strdup_printf("{\"driver\":\"raw\",\"node-name\":\"%s\","
                            "\"file\":{\"driver\":\"file\","
                            "\"filename\":\"%s\"}}", name, path);
    }
    o = json_loads(s, 0, NULL);
    return bdrv_open(o, &error_abort);
}

static int count_nodes(void)
{
    BlockDriverState *bs = NULL;
    int n = 0;

    while ((bs = bdrv_next_node(bs))) {
        n++;
    }
    return n;
}

static void poll_until_no_jobs(void)
{
    while (job_next(NULL)) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

static BlockdevBackup *bb_new(const char *job_id, const char *dev,
                              const char *target, int64_t speed)
{
    BlockdevBackup *b = g_new0(BlockdevBackup, 1);

    b->job_id = job_id ? g_strdup(job_id) : NULL;
    b->device = g_strdup(dev);
    b->target = g_strdup(target);
    b->sync = MIRROR_SYNC_MODE_FULL;
    b->has_speed = speed != 0;
    b->speed = speed;
    return b;
}

static TransactionActionList *add_action(TransactionActionList *list,
                                         TransactionAction *act)
{
    TransactionActionList *e = g_new0(TransactionActionList, 1), **t = &list;

    e->value = act;
    while (*t) {
        t = &(*t)->next;
    }
    *t = e;
    return list;
}

static TransactionActionList *add_backup(TransactionActionList *list,
                                         BlockdevBackup *b)
{
    TransactionAction *act = g_new0(TransactionAction, 1);

    act->type = TRANSACTION_ACTION_KIND_BLOCKDEV_BACKUP;
    act->u.blockdev_backup.data = b;
    return add_action(list, act);
}

static TransactionActionList *add_abort(TransactionActionList *list)
{
    TransactionAction *act = g_new0(TransactionAction, 1);

    act->type = TRANSACTION_ACTION_KIND_ABORT;
    act->u.abort.data = g_new0(Abort, 1);
    return add_action(list, act);
}

static void run_transaction(TransactionActionList *list,
                            ActionCompletionMode mode, const char *want_err)
{
    TransactionProperties props = {
        .has_completion_mode = true, .completion_mode = mode,
    };
    Error *err = NULL;

    qmp_transaction(list, &props, &err);
    if (want_err) {
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(error_get_pretty(err), want_err);
        error_free(err);
    } else {
        ck_assert_msg(!err, "transaction: %s",
                      err ? error_get_pretty(err) : "");
    }
    qapi_free_TransactionActionList(list);
}

/* blockdev-backup, expecting an error text (NULL: success) */
static void backup_expect(BlockdevBackup *b, const char *want_err)
{
    Error *err = NULL;

    qmp_blockdev_backup(b, &err);
    if (want_err) {
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(error_get_pretty(err), want_err);
        error_free(err);
    } else {
        ck_assert_msg(!err, "%s", err ? error_get_pretty(err) : "");
    }
    qapi_free_BlockdevBackup(b);
}

START_TEST(test_blockdev_backup_args)
{
    BlockDriverState *src = open_node("src", false);
    BlockDriverState *tgt = open_node("tgt", false);
    BlockdevBackup *b;

    b = bb_new("j", "src", "tgt", 0);
    b->sync = MIRROR_SYNC_MODE_INCREMENTAL;
    backup_expect(b, "must provide a valid bitmap name for 'incremental' "
                  "sync mode");
    b = bb_new("j", "src", "tgt", 0);
    b->sync = MIRROR_SYNC_MODE_INCREMENTAL;
    b->bitmap = g_strdup("b0");
    b->has_bitmap_mode = true;
    b->bitmap_mode = BITMAP_SYNC_MODE_NEVER;
    backup_expect(b, "Bitmap sync mode must be 'on-success' when using sync "
                  "mode 'incremental'");
    b = bb_new("j", "src", "tgt", 0);
    b->bitmap = g_strdup("b0");
    backup_expect(b, "Bitmap 'b0' could not be found");
    b = bb_new("j", "src", "tgt", 0);
    b->has_bitmap_mode = true;
    b->bitmap_mode = BITMAP_SYNC_MODE_ALWAYS;
    backup_expect(b, "Cannot specify bitmap sync mode without a bitmap");
    b = bb_new("j", "src", "tgt", 0);
    b->filter_node_name = g_strdup("cbw0");
    backup_expect(b, "filter-node-name is not supported: blockd copies "
                  "before write without a filter node");
    b = bb_new("j", "src", "tgt", 0);
    b->has_discard_source = true;
    b->discard_source = true;
    backup_expect(b, "discard-source is not supported");
    b = bb_new("j", "src", "nope", 0);
    backup_expect(b, "Cannot find device='nope' nor node-name='nope'");
    b = bb_new("j", "src", "tgt", -1);
    backup_expect(b, "Parameter 'speed' expects a non-negative value");
    b = bb_new("j", "src", "tgt", 0);
    b->x_perf = g_new0(BackupPerf, 1);
    b->x_perf->has_max_workers = true;
    b->x_perf->max_workers = 0;
    backup_expect(b, "max-workers must be between 1 and 2147483647");
    ck_assert_ptr_null(job_next(NULL));

    /* job-id defaults to the node name; x-cbw-buffer-size reaches it */
    b = bb_new(NULL, "src", "tgt", 0);
    b->x_perf = g_new0(BackupPerf, 1);
    b->x_perf->has_x_cbw_buffer_size = true;
    b->x_perf->x_cbw_buffer_size = 0;
    backup_expect(b, NULL);
    ck_assert_ptr_nonnull(job_get("src"));
    ck_assert(!block_copy_cbw_buffer_enabled(
                  backup_job_block_copy(block_job_get("src"))));
    /* the source and the target are busy while it runs */
    backup_expect(bb_new("j2", "tgt", "src", 0),
                  "Node 'tgt' is busy: block device is in use by block job: "
                  "backup");
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_COMPLETED src");
    bdrv_unref(src);
    bdrv_unref(tgt);
}
END_TEST

static DriveBackup *db_new(const char *job_id, const char *target,
                           const char *format, MirrorSyncMode sync)
{
    DriveBackup *d = g_new0(DriveBackup, 1);

    d->job_id = g_strdup(job_id);
    d->device = g_strdup("src");
    d->target = g_strdup(target);
    d->format = format ? g_strdup(format) : NULL;
    d->sync = sync;
    return d;
}

START_TEST(test_drive_backup)
{
    BlockDriverState *src = open_node("src", false);
    g_autofree char *q = tpath("q.qcow2");
    g_autofree char *r = tpath("r.raw");
    int nodes = count_nodes();
    BlockDriverState *tgt, *opened;
    DriveBackup *d;
    Error *err = NULL;
    BlockJob *job;

    /* raw has no backing file: sync=none cannot fleece into it */
    d = db_new("d0", r, "raw", MIRROR_SYNC_MODE_NONE);
    ck_assert_ptr_null(drive_backup_prepare(d, NULL, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Backing file not supported for file format 'raw'");
    error_free(err);
    err = NULL;
    qapi_free_DriveBackup(d);

    /* mode=existing on a missing file */
    d = db_new("d0", r, "raw", MIRROR_SYNC_MODE_FULL);
    d->has_mode = true;
    d->mode = NEW_IMAGE_MODE_EXISTING;
    ck_assert_ptr_null(drive_backup_prepare(d, NULL, &err));
    ck_assert_ptr_nonnull(err);
    error_free(err);
    err = NULL;
    qapi_free_DriveBackup(d);

    /* sync=none into a new qcow2: its backing is the source node */
    d = db_new("d1", q, "qcow2", MIRROR_SYNC_MODE_NONE);
    job = drive_backup_prepare(d, NULL, &error_abort);
    qapi_free_DriveBackup(d);
    ck_assert_ptr_nonnull(job);
    ck_assert_int_eq(count_nodes(), nodes + 2);     /* qcow2 + file */
    tgt = NULL;
    for (BlockDriverState *bs = bdrv_next_node(NULL); bs;
         bs = bdrv_next_node(bs)) {
        if (!strcmp(bdrv_get_format_name(bs), "qcow2")) {
            tgt = bs;
        }
    }
    ck_assert_ptr_nonnull(tgt);
    ck_assert_ptr_eq(bdrv_backing_bs(tgt), src);
    ck_assert_int_eq(bdrv_getlength(tgt), IMG_SIZE);
    ck_assert_int_eq(tgt->detect_zeroes, BLOCKDEV_DETECT_ZEROES_OPTIONS_UNMAP);
    job_start(&job->job);
    job_user_cancel(&job->job, true, &error_abort);
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_CANCELLED d1");
    /* the target node went away with the job */
    ck_assert_int_eq(count_nodes(), nodes);

    /* sync=full, format defaults to the source's (raw), size copied */
    d = db_new("d2", r, NULL, MIRROR_SYNC_MODE_FULL);
    qmp_drive_backup(d, &error_abort);
    qapi_free_DriveBackup(d);
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_COMPLETED d2");
    ck_assert_int_eq(count_nodes(), nodes);
    opened = bdrv_open_file(r, "raw", NULL, 0, &error_abort);
    ck_assert_int_eq(bdrv_getlength(opened), IMG_SIZE);
    bdrv_unref(opened);
    bdrv_unref(src);
}
END_TEST

START_TEST(test_txn_commit)
{
    BlockDriverState *s1 = open_node("s1", false);
    BlockDriverState *t1 = open_node("t1", false);
    BlockDriverState *s2 = open_node("s2", false);
    BlockDriverState *t2 = open_node("t2", false);
    TransactionActionList *l = NULL;

    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_backup(l, bb_new("j2", "s2", "t2", 0));
    run_transaction(l, ACTION_COMPLETION_MODE_INDIVIDUAL, NULL);
    ck_assert_ptr_nonnull(job_get("j1"));
    ck_assert_ptr_nonnull(job_get("j2"));
    ck_assert(job_started(job_get("j1")) && job_started(job_get("j2")));
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_COMPLETED j1\nBLOCK_JOB_COMPLETED j2");
    bdrv_unref(s1);
    bdrv_unref(t1);
    bdrv_unref(s2);
    bdrv_unref(t2);
}
END_TEST

/*
 * All sources stay drained from their action's prepare until the
 * transaction is over, as in QEMU: a guest write issued while the
 * transaction runs (here from a BH that runs in the first nested event
 * loop, e.g. while drive-backup creates its image) is held until every job
 * has its point in time, so it is in none of the backups.
 */
typedef struct GuestWrite {
    BlockBackend *blk;
    uint8_t buf[4096];
    bool started, done;
    int ret;
} GuestWrite;

static void coroutine_fn guest_write_co(void *opaque)
{
    GuestWrite *w = opaque;

    w->ret = blk_co_pwrite(w->blk, 0, sizeof(w->buf), w->buf, 0);
    w->done = true;
}

static void guest_write_bh(void *opaque)
{
    GuestWrite *w = opaque;

    w->started = true;
    qemu_coroutine_enter(qemu_coroutine_create(guest_write_co, w));
}

START_TEST(test_txn_sources_drained)
{
    BlockDriverState *s1 = open_node("s1", false);
    BlockDriverState *t1 = open_node("t1", false);
    BlockDriverState *s2 = open_node("s2", false);
    g_autofree char *t2 = tpath("t2.qcow2");
    TransactionActionList *l = NULL;
    TransactionAction *act = g_new0(TransactionAction, 1);
    DriveBackup *d = db_new("j2", t2, "qcow2", MIRROR_SYNC_MODE_FULL);
    GuestWrite w = { 0 };
    uint8_t got[4096];

    w.blk = blk_new(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE, BLK_PERM_ALL);
    ck_assert(blk_insert_bs(w.blk, s1, &error_abort));
    memset(w.buf, 0x5c, sizeof(w.buf));
    g_free(d->device);
    d->device = g_strdup("s2");
    act->type = TRANSACTION_ACTION_KIND_DRIVE_BACKUP;
    act->u.drive_backup.data = d;
    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_action(l, act);

    aio_bh_schedule_oneshot(qemu_get_aio_context(), guest_write_bh, &w);
    run_transaction(l, ACTION_COMPLETION_MODE_INDIVIDUAL, NULL);
    ck_assert(w.started);
    ck_assert(!w.done);
    while (!w.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ck_assert_int_eq(w.ret, 0);
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_COMPLETED j1\nBLOCK_JOB_COMPLETED j2");

    /* the write happened after j1's point in time: not in its backup */
    {
        BlockBackend *r = blk_new(BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL);

        ck_assert(blk_insert_bs(r, t1, &error_abort));
        ck_assert_int_eq(blk_pread(r, 0, sizeof(got), got, 0), 0);
        blk_unref(r);
    }
    ck_assert(buffer_is_zero(got, sizeof(got)));
    blk_unref(w.blk);
    bdrv_unref(s1);
    bdrv_unref(t1);
    bdrv_unref(s2);
}
END_TEST

/* A failing action rolls back the jobs created before it */
static void check_rollback(ActionCompletionMode mode)
{
    BlockDriverState *s1 = open_node("s1", false);
    BlockDriverState *t1 = open_node("t1", false);
    BlockDriverState *s2 = open_node("s2", false);
    BlockDriverState *t2 = open_node("t2", false);
    TransactionActionList *l = NULL;

    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_backup(l, bb_new("j2", "s2", "t2", 0));
    l = add_abort(l);
    g_string_truncate(statuses, 0);
    run_transaction(l, mode, "Transaction aborted using Abort action");
    ck_assert_ptr_null(job_next(NULL));
    /*
     * Rolled back newest first, never started: as in QEMU, status
     * changes only, no BLOCK_JOB_CANCELLED.
     */
    ck_assert_str_eq(statuses->str, "j1:created j2:created j2:aborting "
                     "j2:concluded j2:null j1:aborting j1:concluded "
                     "j1:null ");
    expect_events("");

    l = NULL;
    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_backup(l, bb_new("j2", "nope", "t2", 0));
    g_string_truncate(statuses, 0);
    run_transaction(l, mode, "Cannot find device='nope' nor "
                    "node-name='nope'");
    ck_assert_ptr_null(job_next(NULL));
    ck_assert_str_eq(statuses->str, "j1:created j1:aborting j1:concluded "
                     "j1:null ");
    expect_events("");

    /* the same job id reused within one transaction */
    l = NULL;
    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_backup(l, bb_new("j1", "s2", "t2", 0));
    run_transaction(l, mode, "Job ID 'j1' already in use");
    ck_assert_ptr_null(job_next(NULL));
    expect_events("");

    /* the nodes are free again: the blockers went with the jobs */
    backup_expect(bb_new("j3", "s1", "t1", 0), NULL);
    poll_until_no_jobs();
    expect_events("BLOCK_JOB_COMPLETED j3");
    bdrv_unref(s1);
    bdrv_unref(t1);
    bdrv_unref(s2);
    bdrv_unref(t2);
}

START_TEST(test_txn_rollback_individual)
{
    check_rollback(ACTION_COMPLETION_MODE_INDIVIDUAL);
}
END_TEST

START_TEST(test_txn_rollback_grouped)
{
    check_rollback(ACTION_COMPLETION_MODE_GROUPED);
}
END_TEST

static void fill(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(BLK_PERM_WRITE | BLK_PERM_CONSISTENT_READ,
                                BLK_PERM_ALL);
    g_autofree uint8_t *buf = g_malloc(IMG_SIZE);

    memset(buf, 0x5a, IMG_SIZE);
    ck_assert(blk_insert_bs(blk, bs, &error_abort));
    ck_assert_int_eq(blk_pwrite(blk, 0, IMG_SIZE, buf, 0), 0);
    blk_unref(blk);
}

/* j1's target fails every write; j2 is slow (speed 1) */
static void check_failure(ActionCompletionMode mode, const char *want)
{
    BlockDriverState *s1 = open_node("s1", false);
    BlockDriverState *t1 = open_node("t1", true);
    BlockDriverState *s2 = open_node("s2", false);
    BlockDriverState *t2 = open_node("t2", false);
    TransactionActionList *l = NULL;

    /* data: the backups must write, and j2's rate limit must bite */
    fill(s1);
    fill(s2);

    l = add_backup(l, bb_new("j1", "s1", "t1", 0));
    l = add_backup(l, bb_new("j2", "s2", "t2", 1));
    run_transaction(l, mode, NULL);
    if (mode == ACTION_COMPLETION_MODE_INDIVIDUAL) {
        /* j2 goes on alone: wait for j1's end, then cancel j2 */
        while (job_get("j1")) {
            aio_poll(qemu_get_aio_context(), true);
        }
        ck_assert_ptr_nonnull(job_get("j2"));
        job_user_cancel(job_get("j2"), true, &error_abort);
    }
    poll_until_no_jobs();
    expect_events(want);
    bdrv_unref(s1);
    bdrv_unref(t1);
    bdrv_unref(s2);
    bdrv_unref(t2);
}

START_TEST(test_txn_grouped_failure)
{
    check_failure(ACTION_COMPLETION_MODE_GROUPED,
                  "BLOCK_JOB_CANCELLED j2\nBLOCK_JOB_COMPLETED j1 error");
}
END_TEST

START_TEST(test_txn_individual_failure)
{
    check_failure(ACTION_COMPLETION_MODE_INDIVIDUAL,
                  "BLOCK_JOB_CANCELLED j2\nBLOCK_JOB_COMPLETED j1 error");
}
END_TEST

static Suite *transaction_suite(void)
{
    Suite *s = suite_create("transaction");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_blockdev_backup_args);
    tcase_add_test(tc, test_drive_backup);
    tcase_add_test(tc, test_txn_sources_drained);
    tcase_add_test(tc, test_txn_commit);
    tcase_add_test(tc, test_txn_rollback_individual);
    tcase_add_test(tc, test_txn_rollback_grouped);
    tcase_add_test(tc, test_txn_grouped_failure);
    tcase_add_test(tc, test_txn_individual_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(transaction_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
