/*
 * block-copy: the copy engine behind the backup job.
 *
 * A BlockCopyState copies clusters from a source child to a target child
 * at the same offsets.  It keeps a copy bitmap (one bit per cluster, set =
 * still to copy) and a list of in-flight tasks; every copier claims the
 * dirty clusters it is going to copy (clearing their bits) in one step,
 * without yielding, after waiting for the in-flight tasks that overlap its
 * range.  So a cluster is copied exactly once, by whoever gets there
 * first: the copy-before-write path (block_copy()) or the background walk
 * (block_copy_run()).  A failed task sets its bits again.
 *
 * The background walk asks block status to turn zero/hole runs into
 * write_zeroes(MAY_UNMAP) on the target without reading them, chunks data
 * up to max_chunk (read/write) or 16 MiB (copy_range), runs up to
 * max_workers tasks in parallel within a bounce-buffer memory cap
 * (max_mem, default BLOCK_COPY_MAX_MEM), and calls the caller's hooks for
 * rate limiting, pausing and cancelling.  Read/write bounce buffers come
 * from a small pool in the state and are reused (see docs/backup.md).
 * Copy offload (copy_file_range) is tried when enabled and disabled for
 * good at the first failure.  Before it, with use_clone, data runs are
 * cloned (copy_range with BDRV_REQ_CLONE: FICLONERANGE on XFS/btrfs, the
 * target shares the source's extents); the first -ENOTSUP turns cloning
 * off for good and the same range is copied with the next method.
 *
 * Beyond QEMU: the copy-before-write (CBW) buffer.  With a non-zero
 * cbw_buffer_limit, block_copy_cbw() reads the old data of the dirty
 * clusters into memory ("captured"), lets the guest write go on, and
 * writes the captured data to the target in a background coroutine.  When
 * the limit would be exceeded it falls back to a synchronous copy.  Every
 * reader of the point-in-time snapshot must go through
 * block_copy_snapshot_read(), which serves captured clusters from memory,
 * copied clusters from the target and the rest from the source while
 * holding off copy-before-write for those clusters.  The buffer is never
 * used when the target's backing chain contains the source (fleecing
 * through a plain backing file): readers of such a target bypass the
 * engine, so there the engine copies synchronously and serialises its
 * target writes instead, as QEMU does.
 *
 * Everything runs in the main AioContext; functions marked coroutine_fn
 * must be called from a coroutine.
 */
#ifndef BLOCK_BLOCK_COPY_H
#define BLOCK_BLOCK_COPY_H

#include "block/block.h"
#include "qemu/hbitmap.h"

typedef struct BlockCopyState BlockCopyState;

/* Defaults (documented in docs/backup.md). */
#define BLOCK_COPY_MAX_WORKERS_DEFAULT   64
#define BLOCK_COPY_MAX_WORKERS_LIMIT     INT_MAX
#define BLOCK_COPY_MAX_BUFFER            (1 * MiB)
#define BLOCK_COPY_MAX_COPY_RANGE        (16 * MiB)
#define BLOCK_COPY_MAX_CLONE             (16 * MiB)
#define BLOCK_COPY_MAX_MEM               (8 * MiB)
#define BLOCK_COPY_CBW_BUFFER_DEFAULT    (64 * MiB)

typedef struct BlockCopyOptions {
    /* bytes per bit of the copy bitmap: power of two >= 512 */
    int64_t cluster_size;
    /* try copy_range offload (falls back to read/write) */
    bool use_copy_range;
    /*
     * clone data runs first (falls back to copy_range or read/write at the
     * first -ENOTSUP); ignored with compress or when the target's chain
     * contains the source (fleecing)
     */
    bool use_clone;
    /* parallel background tasks (0: default) */
    int max_workers;
    /* largest background task in bytes (0: default); >= cluster_size */
    int64_t max_chunk;
    /*
     * bounce buffer memory cap of the background tasks (0: default); a
     * task counts as max(its bytes, one read/write chunk), the size of a
     * pooled buffer
     */
    int64_t max_mem;
    /* write compressed clusters (target must support it) */
    bool compress;
    /* CBW buffer limit in bytes, 0 = disabled */
    int64_t cbw_buffer_limit;
    /* sync=top: skip clusters the source's top layer does not allocate */
    bool skip_unallocated;
} BlockCopyOptions;

/*
 * Hooks of the background walk (all optional).  They run in the walking
 * coroutine.
 */
typedef struct BlockCopyHooks {
    /* true: stop issuing new tasks (the walk waits for the running ones) */
    bool (*should_stop)(void *opaque);
    /*
     * true: a pause is pending.  The walk then waits for its running tasks
     * (no background I/O while paused) before calling pause_point.
     */
    bool (*pause_pending)(void *opaque);
    void coroutine_fn (*pause_point)(void *opaque);
    /* account bytes about to be copied and sleep as the limit requires */
    void coroutine_fn (*ratelimit)(void *opaque, int64_t bytes);
    void *opaque;
} BlockCopyHooks;

/* Progress changed: done bytes, remaining bytes (see block_copy_progress) */
typedef void BlockCopyProgressFunc(void *opaque);

/* Counters for tests and benchmarks. */
typedef struct BlockCopyStats {
    uint64_t clone_bytes;        /* cloned (extents shared, no data copied) */
    uint64_t copy_range_bytes;   /* copied with copy_range */
    uint64_t rw_bytes;           /* copied with read + write */
    uint64_t zero_bytes;         /* written as write_zeroes */
    uint64_t skipped_bytes;      /* unallocated clusters skipped (top) */
    uint64_t cbw_sync_bytes;     /* copied synchronously by CBW */
    uint64_t cbw_captured_bytes; /* captured into the CBW buffer */
    uint64_t cbw_zero_bytes;     /* CBW of zeroes the target had already */
    uint64_t cbw_fallbacks;      /* CBW requests over the buffer limit */
    uint64_t copy_range_fallbacks; /* copy_range failures -> read/write */
    uint64_t clone_fallbacks;    /* ranges whose clone was -ENOTSUP */
    int max_workers_seen;        /* highest number of parallel bg tasks */
    int64_t max_mem_seen;        /* highest bounce buffer use */
    uint64_t buf_allocs;         /* bounce buffers allocated */
    uint64_t buf_reuses;         /* bounce buffers taken from the pool */
    guint buf_pooled_max;        /* most idle buffers the pool held */
} BlockCopyStats;

/*
 * Create the engine over source and target (same length; the caller holds
 * the children with the needed permissions).  The copy bitmap starts all
 * set ("copy everything").  Errors: "max-workers must be between 1 and
 * %d", "Required max-chunk (%" PRIi64 ") is less than backup cluster size
 * (%" PRIi64 ")", bad cluster size.
 */
BlockCopyState *block_copy_state_new(BdrvChild *source, BdrvChild *target,
                                     const BlockCopyOptions *opts,
                                     Error **errp);
/* Free; no task may be running (call block_copy_drain() first). */
void block_copy_state_free(BlockCopyState *s);

void block_copy_set_progress_callback(BlockCopyState *s,
                                      BlockCopyProgressFunc *cb,
                                      void *opaque);

/* The copy bitmap (items are bytes; granularity = log2(cluster_size)). */
HBitmap *block_copy_dirty_bitmap(BlockCopyState *s);
int64_t block_copy_cluster_size(BlockCopyState *s);
int64_t block_copy_len(BlockCopyState *s);
/* Whether the CBW buffer is in use (limit > 0 and not fleecing). */
bool block_copy_cbw_buffer_enabled(BlockCopyState *s);
/* Whether target writes are serialising (fleecing layout). */
bool block_copy_target_is_fleecing(BlockCopyState *s);
const BlockCopyStats *block_copy_stats(BlockCopyState *s);

/*
 * Progress: bytes copied (or zeroed, or captured) so far, and bytes still
 * to do (dirty clusters + in-flight tasks + captured data not yet
 * written).
 */
void block_copy_progress(BlockCopyState *s, uint64_t *done,
                         uint64_t *remaining);

/*
 * Copy the dirty clusters of [offset, offset + bytes) (widened to whole
 * clusters) synchronously: waits for overlapping in-flight tasks first.
 * Rate limits never apply.  Returns 0 or -errno; *error_is_read (may be
 * NULL) tells which side failed.
 */
int coroutine_fn block_copy(BlockCopyState *s, int64_t offset, int64_t bytes,
                            bool *error_is_read);

/*
 * The copy-before-write entry: like block_copy(), but when the CBW buffer
 * is enabled and has room, capture the old data in memory and return as
 * soon as it is read (the target write happens in the background).
 */
int coroutine_fn block_copy_cbw(BlockCopyState *s, int64_t offset,
                                int64_t bytes, bool *error_is_read);

/*
 * The background walk: copy every dirty cluster (skipping unallocated
 * ones in skip_unallocated mode), then write out captured CBW data whose
 * background write failed.  Returns 0 when nothing is left, -ECANCELED
 * when hooks->should_stop said so, or the first error (-errno, with
 * *error_is_read) after waiting for the running tasks; the failed
 * clusters are dirty again, so calling it again retries them.
 */
int coroutine_fn block_copy_run(BlockCopyState *s, const BlockCopyHooks *hooks,
                                bool *error_is_read);

/*
 * Write out captured CBW data whose background write failed (sync=none
 * jobs call this; block_copy_run does it too).  0 or -errno (target).
 */
int coroutine_fn block_copy_flush_captured(BlockCopyState *s);

/* Number of captured CBW buffers whose background write failed. */
int block_copy_captured_failed(BlockCopyState *s);

/* Wait (coroutine: yield; else drive the main loop) until no task runs. */
void coroutine_fn block_copy_drain(BlockCopyState *s);
void block_copy_drain_sync(BlockCopyState *s);

/*
 * Read [offset, offset + bytes) of the point-in-time snapshot: captured
 * clusters from memory, clusters already on the target from the target,
 * clusters still to copy from the source (copy-before-write of those
 * clusters waits until the read is done).  For fleecing readers.
 */
int coroutine_fn block_copy_snapshot_read(BlockCopyState *s, int64_t offset,
                                          int64_t bytes, QEMUIOVector *qiov);

/*
 * The engine whose target is bs (NULL if none): lets a reader of a
 * fleecing target (NBD export) route its reads through
 * block_copy_snapshot_read().
 */
BlockCopyState *block_copy_find_by_target(BlockDriverState *bs);

#endif /* BLOCK_BLOCK_COPY_H */
