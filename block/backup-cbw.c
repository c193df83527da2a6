/*
 * The copy-before-write notifier of the backup job.
 *
 * It runs inside every write, write_zeroes and discard of the source node,
 * after the request is tracked and before the driver sees it (block/io.c),
 * in the guest request's coroutine.  It widens the request's range to
 * whole clusters and hands it to block-copy, which waits for overlapping
 * in-flight copies and copies (or captures into the CBW buffer) whatever
 * is still dirty.  Only then does the guest data reach the disk, so the
 * target always receives the data the source had when the job started.
 *
 * The source reads of the copy use BDRV_REQ_NO_SERIALISING: the guest
 * request that triggered them may itself be serialising (read-modify-
 * write of an unaligned write) and is tracked already; waiting for it
 * would deadlock.
 */
#include "qemu/osdep.h"
#include "block/backup.h"
#include "block/block_int.h"
#include "qemu/trace.h"

struct BackupCBW {
    NotifierWithReturn notifier;
    BlockDriverState *source;
    BlockCopyState *bcs;
    OnCbwError on_cbw_error;
    BackupCBWErrorFunc *on_error;
    void *opaque;
    int snapshot_error;
    int in_flight;
};

static int backup_cbw_notify(NotifierWithReturn *n, void *data)
{
    BackupCBW *cbw = container_of(n, BackupCBW, notifier);
    BdrvTrackedRequest *req = data;
    bool is_read = false;
    int ret;

    assert(req->bs == cbw->source);
    if (cbw->snapshot_error) {
        return 0;       /* break-snapshot happened: nothing to protect */
    }
    cbw->in_flight++;
    ret = block_copy_cbw(cbw->bcs, req->offset, req->bytes, &is_read);
    cbw->in_flight--;
    trace(backup_cbw, "source %s offset %" PRId64 " bytes %" PRId64
          " ret %d", cbw->source->node_name, req->offset, req->bytes, ret);
    if (ret == 0) {
        return 0;
    }
    if (cbw->on_cbw_error == ON_CBW_ERROR_BREAK_SNAPSHOT) {
        if (!cbw->snapshot_error) {
            cbw->snapshot_error = ret;
            if (cbw->on_error) {
                cbw->on_error(cbw->opaque, ret, is_read);
            }
        }
        return 0;
    }
    if (cbw->on_error) {
        cbw->on_error(cbw->opaque, ret, is_read);
    }
    return ret;
}

BackupCBW *backup_cbw_attach(BlockDriverState *source, BlockCopyState *bcs,
                             OnCbwError on_cbw_error,
                             BackupCBWErrorFunc *on_error, void *opaque)
{
    BackupCBW *cbw = g_new0(BackupCBW, 1);

    cbw->notifier.notify = backup_cbw_notify;
    cbw->source = source;
    cbw->bcs = bcs;
    cbw->on_cbw_error = on_cbw_error;
    cbw->on_error = on_error;
    cbw->opaque = opaque;
    bdrv_add_before_write_notifier(source, &cbw->notifier);
    return cbw;
}

void backup_cbw_detach(BackupCBW *cbw)
{
    if (!cbw) {
        return;
    }
    assert(cbw->in_flight == 0);
    bdrv_remove_before_write_notifier(cbw->source, &cbw->notifier);
    g_free(cbw);
}

int backup_cbw_snapshot_error(BackupCBW *cbw)
{
    return cbw->snapshot_error;
}

int backup_cbw_in_flight(BackupCBW *cbw)
{
    return cbw->in_flight;
}
