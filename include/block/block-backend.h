/*
 * BlockBackend: a user's handle on a node (exports, jobs, blockd-io).
 *
 * A BlockBackend holds a root BdrvChild on its node with the permissions
 * the user needs (perm) and tolerates from others (shared).  Attaching
 * fails if that conflicts with other users.  While the node is drained,
 * new requests through the BlockBackend wait until the drained section
 * ends (requests already in flight finish).
 *
 * An optional name makes it findable as a "device" (bdrv_lookup_bs).
 */
#ifndef BLOCK_BLOCK_BACKEND_H
#define BLOCK_BLOCK_BACKEND_H

#include "block/block.h"

typedef struct BlockBackend BlockBackend;

BlockBackend *blk_new(uint64_t perm, uint64_t shared_perm);
/*
 * Open a node from options (as bdrv_open_flags) and attach a new
 * BlockBackend to it with perms derived from flags, like QEMU's
 * blk_new_open: CONSISTENT_READ (+ WRITE with BDRV_O_RDWR, + RESIZE with
 * BDRV_O_RESIZE); shares everything unless BDRV_O_NO_SHARE (then only
 * CONSISTENT_READ | WRITE_UNCHANGED).
 */
BlockBackend *blk_new_open(const char *filename, const char *format,
                           json_t *options, int flags, Error **errp);
void blk_ref(BlockBackend *blk);
/* Drop a reference; the last one detaches the node (and unrefs it) */
void blk_unref(BlockBackend *blk);

/* Attach bs (takes a reference on bs) checking permissions */
bool blk_insert_bs(BlockBackend *blk, BlockDriverState *bs, Error **errp);
void blk_remove_bs(BlockBackend *blk);
BlockDriverState *blk_bs(BlockBackend *blk);
BdrvChild *blk_root(BlockBackend *blk);
bool blk_set_perm(BlockBackend *blk, uint64_t perm, uint64_t shared,
                  Error **errp);
void blk_get_perm(BlockBackend *blk, uint64_t *perm, uint64_t *shared);

/* Name (device id); "" if none.  Names must be unique and valid. */
bool blk_set_name(BlockBackend *blk, const char *name, Error **errp);
const char *blk_name(const BlockBackend *blk);
BlockBackend *blk_by_name(const char *name);
BlockBackend *blk_next(BlockBackend *blk);

/*
 * Write cache mode (QEMU's cache.writeback): when disabled
 * (cache=writethrough) every write is made FUA, i.e. stable on completion.
 * Enabled by default.
 */
void blk_set_enable_write_cache(BlockBackend *blk, bool wce);
bool blk_enable_write_cache(BlockBackend *blk);

/*
 * Requests past the end of the node fail with -EIO unless allowed (as in
 * QEMU, where only image creation allows them).  blockd allows them by
 * default (its image creation code relies on it); the tools turn the
 * check on.
 */
void blk_set_allow_write_beyond_eof(BlockBackend *blk, bool allow);

/* Allow requests while drained (jobs that drive their own I/O) */
void blk_set_allow_drained_io(BlockBackend *blk, bool allow);

/* I/O: -ENOMEDIUM without a node; -EIO on range errors */
int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags);
int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn blk_co_pread(BlockBackend *blk, int64_t offset,
                              int64_t bytes, void *buf,
                              BdrvRequestFlags flags);
int coroutine_fn blk_co_pwrite(BlockBackend *blk, int64_t offset,
                               int64_t bytes, const void *buf,
                               BdrvRequestFlags flags);
int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                      int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes);
int coroutine_fn blk_co_flush(BlockBackend *blk);
int coroutine_fn blk_co_truncate(BlockBackend *blk, int64_t offset,
                                 bool exact, Error **errp);
int coroutine_fn blk_co_copy_range(BlockBackend *blk_in, int64_t off_in,
                                   BlockBackend *blk_out, int64_t off_out,
                                   int64_t bytes, BdrvRequestFlags read_flags,
                                   BdrvRequestFlags write_flags);

/* synchronous wrappers */
int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags);
int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags);
int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags);
int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes);
int blk_flush(BlockBackend *blk);
int blk_truncate(BlockBackend *blk, int64_t offset, bool exact,
                 Error **errp);
int64_t blk_getlength(BlockBackend *blk);
bool blk_is_read_only(BlockBackend *blk);
bool blk_is_inserted(BlockBackend *blk);
void blk_drain(BlockBackend *blk);

/*
 * Asynchronous requests (aio_read/aio_write in blockd-io): run the request
 * in a new coroutine; cb(opaque, ret) is called on completion from the
 * event loop.  Returns immediately.
 */
typedef void BlockCompletionFunc(void *opaque, int ret);
void blk_aio_preadv(BlockBackend *blk, int64_t offset, QEMUIOVector *qiov,
                    BdrvRequestFlags flags, BlockCompletionFunc *cb,
                    void *opaque);
void blk_aio_pwritev(BlockBackend *blk, int64_t offset, QEMUIOVector *qiov,
                     BdrvRequestFlags flags, BlockCompletionFunc *cb,
                     void *opaque);
void blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb, void *opaque);
/* Number of asynchronous requests still running on blk */
unsigned blk_aio_in_flight(BlockBackend *blk);

#endif /* BLOCK_BLOCK_BACKEND_H */
