/*
 * QMP transaction: several actions, all or nothing.
 *
 * Each action has a prepare step that does everything that can fail and
 * leaves at most a created (not started) job behind; the transaction
 * then either commits (starts every job, in order) or, if any prepare
 * failed, aborts (cancels the jobs already created, newest first) and
 * reports the error of the failing action.  Nothing of an aborted
 * transaction is visible afterwards except the JOB_STATUS_CHANGE events
 * of jobs that were created and dismissed, and image files drive-backup
 * created (QEMU leaves those too).
 *
 * Backup jobs take their point in time when they are created.  As in
 * QEMU, each action's source is drained before its prepare and stays
 * drained until the transaction is over, so all backups of one
 * transaction start from the same moment as far as the guest can tell:
 * a guest request that arrives meanwhile (a prepare may run the event
 * loop: drive-backup creating its image) waits, and lands after every
 * job's point in time, in none of the backups.
 *
 * completion-mode=grouped puts every job in one JobTxn: when one fails or
 * is cancelled, the others are cancelled, and they finalize together.
 * An action that starts no job cannot take part in that ("Action '%s'
 * does not support Transaction property completion-mode = %s", QEMU's
 * text); the only such action blockd has is abort, which fails anyway
 * (as in QEMU, where abort never looks at the properties).
 */
#include "qemu/osdep.h"
#include "block/blockdev.h"
#include "qapi-commands.h"
#include "qemu/trace.h"

typedef struct TransactionActionDesc {
    /* Can the action's job join a grouped transaction? */
    bool supports_grouped;
    /* Returns the created job (NULL with errp set on failure) */
    BlockJob *(*prepare)(TransactionAction *act, JobTxn *txn, Error **errp);
} TransactionActionDesc;

static BlockJob *abort_prepare(TransactionAction *act, JobTxn *txn,
                               Error **errp)
{
    error_setg(errp, "Transaction aborted using Abort action");
    return NULL;
}

static BlockJob *blockdev_backup_action(TransactionAction *act, JobTxn *txn,
                                        Error **errp)
{
    return blockdev_backup_prepare(act->u.blockdev_backup.data, txn, errp);
}

static BlockJob *drive_backup_action(TransactionAction *act, JobTxn *txn,
                                     Error **errp)
{
    return drive_backup_prepare(act->u.drive_backup.data, txn, errp);
}

static const TransactionActionDesc action_descs[TRANSACTION_ACTION_KIND__MAX] = {
    [TRANSACTION_ACTION_KIND_ABORT] = {
        .supports_grouped = false,
        .prepare = abort_prepare,
    },
    [TRANSACTION_ACTION_KIND_BLOCKDEV_BACKUP] = {
        .supports_grouped = true,
        .prepare = blockdev_backup_action,
    },
    [TRANSACTION_ACTION_KIND_DRIVE_BACKUP] = {
        .supports_grouped = true,
        .prepare = drive_backup_action,
    },
};

/* The node an action backs up, to keep drained; NULL if none (yet) */
static BlockDriverState *action_source(TransactionAction *act)
{
    const char *dev;

    switch (act->type) {
    case TRANSACTION_ACTION_KIND_BLOCKDEV_BACKUP:
        dev = act->u.blockdev_backup.data->device;
        break;
    case TRANSACTION_ACTION_KIND_DRIVE_BACKUP:
        dev = act->u.drive_backup.data->device;
        break;
    default:
        return NULL;
    }
    /* an unknown device fails in prepare, with QEMU's message */
    return dev ? bdrv_lookup_bs(dev, dev, NULL) : NULL;
}

static bool action_check_completion_mode(TransactionAction *act,
                                         ActionCompletionMode mode,
                                         Error **errp)
{
    if (mode != ACTION_COMPLETION_MODE_INDIVIDUAL &&
        !action_descs[act->type].supports_grouped &&
        act->type != TRANSACTION_ACTION_KIND_ABORT) {
        error_setg(errp, "Action '%s' does not support Transaction property "
                   "completion-mode = %s",
                   TransactionActionKind_str(act->type),
                   ActionCompletionMode_str(mode));
        return false;
    }
    return true;
}

void qmp_transaction(TransactionActionList *actions,
                     TransactionProperties *properties, Error **errp)
{
    ActionCompletionMode mode = ACTION_COMPLETION_MODE_INDIVIDUAL;
    g_autoptr(GPtrArray) jobs = g_ptr_array_new();
    g_autoptr(GPtrArray) drained = g_ptr_array_new();
    TransactionActionList *l;
    JobTxn *txn = NULL;
    Error *err = NULL;
    guint i;

    if (properties && properties->has_completion_mode) {
        mode = properties->completion_mode;
    }
    if (mode == ACTION_COMPLETION_MODE_GROUPED) {
        txn = job_txn_new();
    }

    /* prepare: every action, in order, until one fails */
    for (l = actions; l; l = l->next) {
        TransactionAction *act = l->value;
        BlockDriverState *src;
        BlockJob *job;

        assert(act->type < TRANSACTION_ACTION_KIND__MAX);
        if (!action_check_completion_mode(act, mode, &err)) {
            break;
        }
        src = action_source(act);
        if (src) {
            bdrv_ref(src);
            bdrv_drained_begin(src);
            g_ptr_array_add(drained, src);
        }
        job = action_descs[act->type].prepare(act, txn, &err);
        if (!job) {
            break;
        }
        /* a cancel of a sibling must not free it under us */
        job_ref(&job->job);
        g_ptr_array_add(jobs, job);
    }

    if (err) {
        /* abort: drop the created jobs, newest first */
        trace(qmp_transaction_abort, "actions prepared %u: %s", jobs->len,
              error_get_pretty(err));
        for (i = jobs->len; i-- > 0;) {
            BlockJob *job = g_ptr_array_index(jobs, i);

            if (!job_is_completed(&job->job)) {
                job_cancel_sync(&job->job, true);
            }
        }
        error_propagate(errp, err);
    } else {
        /* commit */
        trace(qmp_transaction_commit, "jobs %u mode %s", jobs->len,
              ActionCompletionMode_str(mode));
        for (i = 0; i < jobs->len; i++) {
            BlockJob *job = g_ptr_array_index(jobs, i);

            job_start(&job->job);
        }
    }
    /* guest requests held meanwhile go on now, after every job's start */
    for (i = drained->len; i-- > 0;) {
        BlockDriverState *src = g_ptr_array_index(drained, i);

        bdrv_drained_end(src);
        bdrv_unref(src);
    }
    for (i = 0; i < jobs->len; i++) {
        job_unref(&((BlockJob *)g_ptr_array_index(jobs, i))->job);
    }
    if (txn) {
        job_txn_unref(txn);
    }
}
