/*
 * BlockBackend: a user's handle on a node with its own permissions.
 *
 * The BlockBackend attaches to its node as a root parent (BdrvChild named
 * "root" without a parent node).  When the node is drained, the root
 * child's drained_begin callback raises blk->quiesce; requests entering
 * through blk_co_* then wait on blk->queued_requests until the drained
 * section ends, unless the user asked for allow_drained_io (jobs doing
 * their own I/O inside a drained section).
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/trace.h"

struct BlockBackend {
    char *name;
    int refcnt;
    BdrvChild *root;
    uint64_t perm, shared_perm;
    int quiesce;
    bool allow_drained_io;
    bool allow_write_beyond_eof;
    CoQueue queued_requests;
    unsigned aio_in_flight;
    bool writethrough;          /* every write is FUA (cache=writethrough) */
};

static GList *all_blks;

BlockBackend *blk_new(uint64_t perm, uint64_t shared_perm)
{
    BlockBackend *blk = g_new0(BlockBackend, 1);

    blk->refcnt = 1;
    blk->perm = perm;
    blk->shared_perm = shared_perm;
    blk->name = g_strdup("");
    qemu_co_queue_init(&blk->queued_requests);
    all_blks = g_list_append(all_blks, blk);
    return blk;
}

BlockBackend *blk_new_open(const char *filename, const char *format,
                           json_t *options, int flags, Error **errp)
{
    uint64_t perm = BLK_PERM_CONSISTENT_READ;
    uint64_t shared = BLK_PERM_ALL;
    BlockDriverState *bs;
    BlockBackend *blk;

    if (flags & BDRV_O_RDWR) {
        perm |= BLK_PERM_WRITE;
    }
    if (flags & BDRV_O_RESIZE) {
        perm |= BLK_PERM_RESIZE;
    }
    if (flags & BDRV_O_NO_SHARE) {
        shared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    }
    if (filename || format || !json_object_get(options, "driver") ||
        json_is_object(json_object_get(options, "file"))) {
        /* probes the format, and file.driver, where they are missing */
        bs = bdrv_open_file(filename, format, options, flags, errp);
    } else {
        bs = bdrv_open_flags(options, flags, errp);
    }
    if (!bs) {
        return NULL;
    }
    blk = blk_new(perm, shared);
    if (!blk_insert_bs(blk, bs, errp)) {
        blk_unref(blk);
        bdrv_unref(bs);
        return NULL;
    }
    bdrv_unref(bs);
    return blk;
}

void blk_ref(BlockBackend *blk)
{
    blk->refcnt++;
}

void blk_unref(BlockBackend *blk)
{
    if (!blk) {
        return;
    }
    assert(blk->refcnt > 0);
    if (--blk->refcnt == 0) {
        /*
         * As QEMU's blk_delete(): closing a BlockBackend first completes
         * every request submitted through it, callbacks included, so an
         * acknowledged write is never left behind (qemu-io "aio_write"
         * then "close").
         */
        while (blk->aio_in_flight) {
            aio_poll(qemu_get_aio_context(), true);
        }
        blk_remove_bs(blk);
        all_blks = g_list_remove(all_blks, blk);
        g_free(blk->name);
        g_free(blk);
    }
}

static void blk_root_drained_begin(BdrvChild *c)
{
    BlockBackend *blk = c->opaque;

    blk->quiesce++;
}

static void blk_root_drained_end(BdrvChild *c)
{
    BlockBackend *blk = c->opaque;

    assert(blk->quiesce > 0);
    if (--blk->quiesce == 0) {
        qemu_co_queue_restart_all(&blk->queued_requests);
    }
}

bool blk_insert_bs(BlockBackend *blk, BlockDriverState *bs, Error **errp)
{
    g_autofree char *desc = blk->name[0] ?
        g_strdup_printf("block device '%s'", blk->name) :
        g_strdup("an unnamed block device");

    assert(!blk->root);
    blk->root = bdrv_root_attach_child(bs, "root", desc, BDRV_CHILD_FILTERED |
                                       BDRV_CHILD_PRIMARY, blk->perm,
                                       blk->shared_perm, blk, errp);
    if (!blk->root) {
        return false;
    }
    blk->root->drained_begin = blk_root_drained_begin;
    blk->root->drained_end = blk_root_drained_end;
    blk->quiesce = bs->quiesce_counter;
    return true;
}

void blk_remove_bs(BlockBackend *blk)
{
    BdrvChild *root = blk->root;

    if (!root) {
        return;
    }
    bdrv_drain(root->bs);
    blk->root = NULL;
    blk->quiesce = 0;
    bdrv_root_unref_child(root);
}

BlockDriverState *blk_bs(BlockBackend *blk)
{
    return blk->root ? blk->root->bs : NULL;
}

BdrvChild *blk_root(BlockBackend *blk)
{
    return blk->root;
}

bool blk_set_perm(BlockBackend *blk, uint64_t perm, uint64_t shared,
                  Error **errp)
{
    if (blk->root &&
        bdrv_child_try_set_perm(blk->root, perm, shared, errp) < 0) {
        return false;
    }
    blk->perm = perm;
    blk->shared_perm = shared;
    return true;
}

void blk_get_perm(BlockBackend *blk, uint64_t *perm, uint64_t *shared)
{
    *perm = blk->perm;
    *shared = blk->shared_perm;
}

bool blk_set_name(BlockBackend *blk, const char *name, Error **errp)
{
    if (!bdrv_node_name_valid(name)) {
        error_setg(errp, "Invalid device name '%s'", name);
        return false;
    }
    if (blk_by_name(name)) {
        error_setg(errp, "Device with id '%s' already exists", name);
        return false;
    }
    if (bdrv_find_node(name)) {
        error_setg(errp, "Device name '%s' conflicts with an existing node "
                   "name", name);
        return false;
    }
    g_free(blk->name);
    blk->name = g_strdup(name);
    if (blk->root) {
        g_free(blk->root->parent_desc);
        blk->root->parent_desc = g_strdup_printf("block device '%s'", name);
    }
    return true;
}

const char *blk_name(const BlockBackend *blk)
{
    return blk->name;
}

BlockBackend *blk_by_name(const char *name)
{
    GList *l;

    for (l = all_blks; l; l = l->next) {
        BlockBackend *blk = l->data;

        if (blk->name[0] && !strcmp(blk->name, name)) {
            return blk;
        }
    }
    return NULL;
}

BlockBackend *blk_next(BlockBackend *blk)
{
    GList *l;

    if (!blk) {
        return all_blks ? all_blks->data : NULL;
    }
    l = g_list_find(all_blks, blk);
    return l && l->next ? l->next->data : NULL;
}

void blk_set_enable_write_cache(BlockBackend *blk, bool wce)
{
    blk->writethrough = !wce;
}

bool blk_enable_write_cache(BlockBackend *blk)
{
    return !blk->writethrough;
}

void blk_set_allow_drained_io(BlockBackend *blk, bool allow)
{
    blk->allow_drained_io = allow;
}

/* ---- I/O ---- */

static int coroutine_fn blk_wait_while_drained(BlockBackend *blk)
{
    if (!blk->root) {
        return -ENOMEDIUM;
    }
    while (blk->quiesce > 0 && !blk->allow_drained_io) {
        qemu_co_queue_wait(&blk->queued_requests, NULL);
        if (!blk->root) {
            return -ENOMEDIUM;
        }
    }
    return 0;
}

void blk_set_allow_write_beyond_eof(BlockBackend *blk, bool allow)
{
    blk->allow_write_beyond_eof = allow;
}

/*
 * A request must lie within the node's length (QEMU's
 * blk_check_byte_request): nothing written through a BlockBackend may
 * land beyond the end of the disk, where a format would silently drop it
 * or a protocol would grow.  Only image creation, which writes a new
 * file's metadata, asks for allow_write_beyond_eof.  Reads may cover the
 * partial last sector of a file whose length is not a multiple of 512
 * (QEMU counts lengths in sectors): the block layer reads zeroes past EOF.
 */
static int blk_check_byte_request(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, bool write)
{
    int64_t len;

    if (offset < 0 || bytes < 0) {
        return -EIO;
    }
    if (!blk->allow_write_beyond_eof) {
        len = bdrv_getlength(blk->root->bs);
        if (len < 0) {
            return len;
        }
        if (!write) {
            len = QEMU_ALIGN_UP(len, BDRV_SECTOR_SIZE);
        }
        if (offset > len || len - offset < bytes) {
            return -EIO;
        }
    }
    return 0;
}

/* What every byte-range request waits for and checks before it is issued */
static int coroutine_fn blk_co_request_begin(BlockBackend *blk,
                                             int64_t offset, int64_t bytes,
                                             bool write)
{
    int ret = blk_wait_while_drained(blk);

    if (ret < 0) {
        return ret;
    }
    return blk_check_byte_request(blk, offset, bytes, write);
}

int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags)
{
    int ret = blk_co_request_begin(blk, offset, bytes, false);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_preadv(blk->root, offset, bytes, qiov, flags);
}

int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    int ret = blk_co_request_begin(blk, offset, bytes, true);

    if (ret < 0) {
        return ret;
    }
    if (blk->writethrough) {
        /* the data and the metadata reaching it are stable on return */
        flags |= BDRV_REQ_FUA;
    }
    return bdrv_co_pwritev(blk->root, offset, bytes, qiov, flags);
}

int coroutine_fn blk_co_pread(BlockBackend *blk, int64_t offset,
                              int64_t bytes, void *buf,
                              BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return blk_co_preadv(blk, offset, bytes, &qiov, flags);
}

int coroutine_fn blk_co_pwrite(BlockBackend *blk, int64_t offset,
                               int64_t bytes, const void *buf,
                               BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return blk_co_pwritev(blk, offset, bytes, &qiov, flags);
}

int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                      int64_t bytes, BdrvRequestFlags flags)
{
    return blk_co_pwritev(blk, offset, bytes, NULL,
                          flags | BDRV_REQ_ZERO_WRITE);
}

int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes)
{
    int ret = blk_co_request_begin(blk, offset, bytes, true);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_pdiscard(blk->root, offset, bytes);
}

int coroutine_fn blk_co_flush(BlockBackend *blk)
{
    int ret = blk_wait_while_drained(blk);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_flush(blk->root->bs);
}

int coroutine_fn blk_co_rw_vmstate(BlockBackend *blk, QEMUIOVector *qiov,
                                   int64_t pos, bool is_read)
{
    int ret = blk_wait_while_drained(blk);

    if (ret < 0) {
        return ret;
    }
    if (!blk->root) {
        return -ENOMEDIUM;
    }
    ret = bdrv_co_rw_vmstate(blk->root->bs, qiov, pos, is_read);
    if (ret == 0 && !is_read && blk->writethrough) {
        ret = bdrv_co_flush(blk->root->bs);
    }
    return ret;
}

int coroutine_fn blk_co_truncate(BlockBackend *blk, int64_t offset,
                                 bool exact, Error **errp)
{
    if (!blk->root) {
        error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    return bdrv_co_truncate(blk->root, offset, exact, errp);
}

int coroutine_fn blk_co_copy_range(BlockBackend *blk_in, int64_t off_in,
                                   BlockBackend *blk_out, int64_t off_out,
                                   int64_t bytes, BdrvRequestFlags read_flags,
                                   BdrvRequestFlags write_flags)
{
    int ret = blk_co_request_begin(blk_in, off_in, bytes, false);

    if (ret == 0) {
        ret = blk_co_request_begin(blk_out, off_out, bytes, true);
    }
    if (ret < 0) {
        return ret;
    }
    return bdrv_co_copy_range(blk_in->root, off_in, blk_out->root, off_out,
                              bytes, read_flags, write_flags);
}

/* ---- synchronous wrappers ---- */

typedef struct BlkRwCo {
    BlockBackend *blk;
    int op;              /* 0 read, 1 write, 2 discard, 3 flush, 4/5 vmstate
                          * read/write */
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    int ret;
} BlkRwCo;

static void coroutine_fn blk_rw_entry(void *opaque)
{
    BlkRwCo *rw = opaque;

    switch (rw->op) {
    case 0:
        rw->ret = blk_co_preadv(rw->blk, rw->offset, rw->bytes, rw->qiov,
                                rw->flags);
        break;
    case 1:
        rw->ret = blk_co_pwritev(rw->blk, rw->offset, rw->bytes, rw->qiov,
                                 rw->flags);
        break;
    case 2:
        rw->ret = blk_co_pdiscard(rw->blk, rw->offset, rw->bytes);
        break;
    case 4:
    case 5:
        rw->ret = blk_co_rw_vmstate(rw->blk, rw->qiov, rw->offset,
                                    rw->op == 4);
        break;
    default:
        rw->ret = blk_co_flush(rw->blk);
        break;
    }
}

static int blk_rw_sync(BlockBackend *blk, int op, int64_t offset,
                       int64_t bytes, QEMUIOVector *qiov,
                       BdrvRequestFlags flags)
{
    BlkRwCo rw = { blk, op, offset, bytes, qiov, flags, -EINPROGRESS };

    qemu_co_run_sync(blk_rw_entry, &rw);
    return rw.ret;
}

int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return blk_rw_sync(blk, 0, offset, bytes, qiov, flags);
}

int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return blk_rw_sync(blk, 1, offset, bytes, qiov, flags);
}

int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return blk_preadv(blk, offset, bytes, &qiov, flags);
}

int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, bytes);

    return blk_pwritev(blk, offset, bytes, &qiov, flags);
}

int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags)
{
    return blk_rw_sync(blk, 1, offset, bytes, NULL,
                       flags | BDRV_REQ_ZERO_WRITE);
}

int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes)
{
    return blk_rw_sync(blk, 2, offset, bytes, NULL, 0);
}

int blk_flush(BlockBackend *blk)
{
    return blk_rw_sync(blk, 3, 0, 0, NULL, 0);
}

int blk_rw_vmstate(BlockBackend *blk, QEMUIOVector *qiov, int64_t pos,
                   bool is_read)
{
    return blk_rw_sync(blk, is_read ? 4 : 5, pos, qiov->size, qiov, 0);
}

int blk_truncate(BlockBackend *blk, int64_t offset, bool exact,
                 Error **errp)
{
    if (!blk->root) {
        error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    return bdrv_truncate(blk->root, offset, exact, errp);
}

int64_t blk_getlength(BlockBackend *blk)
{
    return blk->root ? bdrv_getlength(blk->root->bs) : -ENOMEDIUM;
}

bool blk_is_read_only(BlockBackend *blk)
{
    return blk->root ? bdrv_is_read_only(blk->root->bs) : true;
}

bool blk_is_inserted(BlockBackend *blk)
{
    return blk->root != NULL;
}

void blk_drain(BlockBackend *blk)
{
    if (blk->root) {
        bdrv_drain(blk->root->bs);
    }
    while (blk->aio_in_flight) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

/* ---- asynchronous requests ---- */

typedef struct BlkAioCo {
    BlockBackend *blk;
    int op;
    int64_t offset;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    BlockCompletionFunc *cb;
    void *opaque;
    int ret;
} BlkAioCo;

static void blk_aio_complete_bh(void *opaque)
{
    BlkAioCo *a = opaque;
    BlockBackend *blk = a->blk;

    /*
     * Counted out before the callback, which may drop the last reference:
     * blk_unref() waits for this counter, so it never frees a
     * BlockBackend that still has a request (or its callback) pending.
     */
    blk->aio_in_flight--;
    a->cb(a->opaque, a->ret);
    g_free(a);
}

static void coroutine_fn blk_aio_entry(void *opaque)
{
    BlkAioCo *a = opaque;

    switch (a->op) {
    case 0:
        a->ret = blk_co_preadv(a->blk, a->offset, a->qiov->size, a->qiov,
                               a->flags);
        break;
    case 1:
        a->ret = blk_co_pwritev(a->blk, a->offset, a->qiov->size, a->qiov,
                                a->flags);
        break;
    default:
        a->ret = blk_co_flush(a->blk);
        break;
    }
    /* never call back from inside the submitter's stack */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), blk_aio_complete_bh, a);
}

static void blk_aio_start(BlockBackend *blk, int op, int64_t offset,
                          QEMUIOVector *qiov, BdrvRequestFlags flags,
                          BlockCompletionFunc *cb, void *opaque)
{
    BlkAioCo *a = g_new0(BlkAioCo, 1);
    Coroutine *co;

    *a = (BlkAioCo) { blk, op, offset, qiov, flags, cb, opaque,
                      -EINPROGRESS };
    blk->aio_in_flight++;
    co = qemu_coroutine_create(blk_aio_entry, a);
    aio_co_enter(qemu_get_aio_context(), co);
}

void blk_aio_preadv(BlockBackend *blk, int64_t offset, QEMUIOVector *qiov,
                    BdrvRequestFlags flags, BlockCompletionFunc *cb,
                    void *opaque)
{
    blk_aio_start(blk, 0, offset, qiov, flags, cb, opaque);
}

void blk_aio_pwritev(BlockBackend *blk, int64_t offset, QEMUIOVector *qiov,
                     BdrvRequestFlags flags, BlockCompletionFunc *cb,
                     void *opaque)
{
    blk_aio_start(blk, 1, offset, qiov, flags, cb, opaque);
}

void blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb, void *opaque)
{
    blk_aio_start(blk, 2, 0, NULL, 0, cb, opaque);
}

unsigned blk_aio_in_flight(BlockBackend *blk)
{
    return blk->aio_in_flight;
}
