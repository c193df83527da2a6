/*
 * Block layer: public API of the node graph and the request path.
 *
 * Users (jobs, exports, blockd-io, tests) normally talk to a node through a
 * BlockBackend (include/block/block-backend.h), which holds permissions.
 * The bdrv_* functions here work on nodes directly.
 *
 * Calling conventions (QEMU's):
 * - Control path (open, graph changes, lookups): Error **errp last, and a
 *   bool/pointer/negative-errno result.
 * - I/O path: return 0 or -errno.  bdrv_co_* must be called from a
 *   coroutine; bdrv_pread/pwrite/... (no _co_) are synchronous wrappers that
 *   run the coroutine version to completion (driving the main AioContext)
 *   when called outside a coroutine, and call it directly inside one.
 * - Offsets and lengths are bytes (int64_t); a single request is limited to
 *   BDRV_REQUEST_MAX_BYTES.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/notify.h"
#include <jansson.h>

/* g_autoptr(json_t) drops a reference at scope exit (shared guard). */
#ifndef QAPI_JSON_AUTOPTR_DEFINED
#define QAPI_JSON_AUTOPTR_DEFINED
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)
#endif

typedef struct BlockDriver BlockDriver;
typedef struct BlockDriverState BlockDriverState;
typedef struct BdrvChild BdrvChild;
typedef struct BdrvTrackedRequest BdrvTrackedRequest;

#define BDRV_SECTOR_BITS   9
#define BDRV_SECTOR_SIZE   (1ULL << BDRV_SECTOR_BITS)

/* Largest single request (bytes); QEMU's limit, aligned to 4 KiB pages */
#define BDRV_REQUEST_MAX_BYTES  (INT32_MAX & ~(int64_t)(4096 - 1))
/* Largest image size we accept */
#define BDRV_MAX_LENGTH  (INT64_MAX & ~(int64_t)(BDRV_SECTOR_SIZE - 1))

/* ---- open flags (bs->open_flags) ---- */
enum {
    BDRV_O_RDWR         = 0x0002,
    BDRV_O_RESIZE       = 0x0004, /* request RESIZE permission (tools) */
    BDRV_O_NOCACHE      = 0x0020, /* O_DIRECT (cache.direct=on) */
    BDRV_O_NO_FLUSH     = 0x0200, /* cache.no-flush=on: flush is a no-op */
    BDRV_O_NATIVE_AIO   = 0x0080, /* aio=native */
    BDRV_O_NO_BACKING   = 0x0100, /* don't open the backing chain */
    BDRV_O_UNMAP        = 0x4000, /* discard=unmap: pass discards down */
    BDRV_O_IO_URING     = 0x40000, /* aio=io_uring */
    BDRV_O_NO_SHARE     = 0x80000, /* tools: don't share write/resize */
    BDRV_O_FORCE_SHARE  = 0x100000, /* force-share=on (read-only users) */
};

/* ---- request flags (BdrvRequestFlags) ---- */
typedef enum BdrvRequestFlags {
    BDRV_REQ_ZERO_WRITE      = 0x2,   /* internal: write zeroes request */
    BDRV_REQ_MAY_UNMAP       = 0x4,   /* zero write may deallocate */
    BDRV_REQ_FUA             = 0x10,  /* data on stable storage on return */
    BDRV_REQ_WRITE_COMPRESSED = 0x20, /* format may compress (qcow2) */
    BDRV_REQ_WRITE_UNCHANGED = 0x40,  /* write does not change the data */
    BDRV_REQ_SERIALISING     = 0x80,  /* wait for/block overlapping reqs */
    BDRV_REQ_NO_FALLBACK     = 0x100, /* fail write_zeroes with -ENOTSUP
                                       * rather than writing a buffer */
    BDRV_REQ_PREFETCH        = 0x200, /* read: only populate caches */
    BDRV_REQ_NO_WAIT         = 0x400, /* with SERIALISING: fail -EBUSY
                                       * instead of waiting */
    BDRV_REQ_NO_SERIALISING  = 0x800, /* read (and copy_range source):
                                       * do not wait for serialising
                                       * requests.  For copy-before-write
                                       * reads issued while the guest
                                       * write that triggered them is
                                       * tracked (it may be a serialising
                                       * RMW write): waiting would
                                       * deadlock. */
    BDRV_REQ_CLONE           = 0x1000, /* copy_range: only by sharing
                                        * extents (reflink); -ENOTSUP
                                        * rather than copying data */
    BDRV_REQ_MASK            = 0x1ff6,
} BdrvRequestFlags;

/* ---- block status (bdrv_block_status result bits) ---- */
#define BDRV_BLOCK_DATA         0x01 /* reads return data from the image */
#define BDRV_BLOCK_ZERO         0x02 /* reads return zeroes */
#define BDRV_BLOCK_OFFSET_VALID 0x04 /* *map is the offset in *file */
#define BDRV_BLOCK_RAW          0x08 /* driver: ask *file at *map instead */
#define BDRV_BLOCK_ALLOCATED    0x10 /* this layer defines the content */
#define BDRV_BLOCK_EOF          0x20 /* range ends at end of file */
#define BDRV_BLOCK_RECURSE      0x40 /* driver: also ask *file for zero */

/* ---- permissions (QEMU's BLK_PERM_*; bit numbers matter for locking) ---- */
enum {
    BLK_PERM_CONSISTENT_READ = 0x01,
    BLK_PERM_WRITE           = 0x02,
    BLK_PERM_WRITE_UNCHANGED = 0x04,
    BLK_PERM_RESIZE          = 0x08,
    BLK_PERM_ALL             = 0x0f,
    DEFAULT_PERM_PASSTHROUGH = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                               BLK_PERM_WRITE_UNCHANGED | BLK_PERM_RESIZE,
    DEFAULT_PERM_UNCHANGED   = BLK_PERM_ALL & ~DEFAULT_PERM_PASSTHROUGH,
};
#define BLK_PERM_BITS 4
/* "consistent read, write" (caller frees) */
char *bdrv_perm_names(uint64_t perm);

/* ---- child roles (flags) ---- */
enum {
    BDRV_CHILD_DATA      = 1 << 0, /* holds guest data */
    BDRV_CHILD_METADATA  = 1 << 1, /* holds format metadata */
    BDRV_CHILD_FILTERED  = 1 << 2, /* filter child: same data as parent */
    BDRV_CHILD_COW       = 1 << 3, /* backing child */
    BDRV_CHILD_PRIMARY   = 1 << 4, /* bs->file */
    BDRV_CHILD_IMAGE     = BDRV_CHILD_DATA | BDRV_CHILD_METADATA,
};

/* ---- op blockers ---- */
typedef enum BlockOpType {
    BLOCK_OP_TYPE_BACKUP_SOURCE,
    BLOCK_OP_TYPE_BACKUP_TARGET,
    BLOCK_OP_TYPE_CHANGE,
    BLOCK_OP_TYPE_COMMIT_SOURCE,
    BLOCK_OP_TYPE_COMMIT_TARGET,
    BLOCK_OP_TYPE_DATAPLANE,
    BLOCK_OP_TYPE_DRIVE_DEL,
    BLOCK_OP_TYPE_EJECT,
    BLOCK_OP_TYPE_EXTERNAL_SNAPSHOT,
    BLOCK_OP_TYPE_INTERNAL_SNAPSHOT,
    BLOCK_OP_TYPE_INTERNAL_SNAPSHOT_DELETE,
    BLOCK_OP_TYPE_MIRROR_SOURCE,
    BLOCK_OP_TYPE_MIRROR_TARGET,
    BLOCK_OP_TYPE_RESIZE,
    BLOCK_OP_TYPE_STREAM,
    BLOCK_OP_TYPE_REPLACE,
    BLOCK_OP_TYPE_BITMAP,
    BLOCK_OP_TYPE_MAX,
} BlockOpType;

/* "backup-source", ... */
const char *bdrv_op_type_name(BlockOpType op);

/*
 * Op blockers: each node keeps, per operation type, a list of Error
 * reasons.  A blocker is identified by its Error pointer (the owner keeps
 * it and removes it with the same pointer).  bdrv_op_is_blocked() fails
 * with "Node '%s' is busy: <reason>" naming the node (QEMU's wording).
 */
bool bdrv_op_is_blocked(BlockDriverState *bs, BlockOpType op, Error **errp);
void bdrv_op_block(BlockDriverState *bs, BlockOpType op, Error *reason);
void bdrv_op_unblock(BlockDriverState *bs, BlockOpType op, Error *reason);
void bdrv_op_block_all(BlockDriverState *bs, Error *reason);
void bdrv_op_unblock_all(BlockDriverState *bs, Error *reason);
bool bdrv_op_blocker_is_empty(BlockDriverState *bs);

/* ---- drivers ---- */
void bdrv_init(void);          /* register built-in drivers (idempotent) */
void bdrv_register(BlockDriver *drv);
BlockDriver *bdrv_find_format(const char *format_name);
/* Iterate registered driver names (for "help" and error messages) */
void bdrv_iterate_format(void (*it)(void *opaque, const char *name),
                         void *opaque);

/* ---- graph: open / close / lookup ---- */

/*
 * Open a node from an options tree (borrowed; not modified).  Values may be
 * typed JSON or keyval strings.  Keys: "driver" (required), "node-name",
 * "read-only", "auto-read-only", "discard" (ignore|unmap),
 * "detect-zeroes" (off|on|unmap), "cache.direct", "cache.no-flush",
 * "force-share", "file" (nested object, node-name string, or for format
 * drivers a filename), "backing" (node-name string, null, or object), and
 * the driver's own options.  Unknown options fail with QEMU's wording.
 * Returns a node with refcount 1 (drop with bdrv_unref).
 */
BlockDriverState *bdrv_open(json_t *options, Error **errp);

/*
 * Like bdrv_open, with extra BDRV_O_* flags OR-ed in (tools: BDRV_O_RDWR
 * when not read-only, BDRV_O_NO_BACKING...).  flags & BDRV_O_RDWR only sets
 * the default of "read-only"; an explicit option wins.
 */
BlockDriverState *bdrv_open_flags(json_t *options, int flags, Error **errp);

/*
 * Open FILENAME with an optional format (NULL: probe, "raw" if nothing
 * matches) and extra options (may be NULL; borrowed).  Used by tools.
 */
BlockDriverState *bdrv_open_file(const char *filename, const char *format,
                                 json_t *options, int flags, Error **errp);

void bdrv_ref(BlockDriverState *bs);
/* Drop a reference; the last one closes bs (children unref'd recursively) */
void bdrv_unref(BlockDriverState *bs);

/* Remove a node's monitor reference (blockdev-del); fails if in use */
bool bdrv_delete_node(BlockDriverState *bs, Error **errp);

BlockDriverState *bdrv_find_node(const char *node_name);
/*
 * Find by BlockBackend name (device) or node name; either may be NULL.
 * Error: "Cannot find device='%s' nor node-name='%s'".
 */
BlockDriverState *bdrv_lookup_bs(const char *device, const char *node_name,
                                 Error **errp);
/* Iterate all nodes: bs = NULL to start; returns NULL at the end */
BlockDriverState *bdrv_next_node(BlockDriverState *bs);
/* Nodes with a monitor reference (opened by blockdev-add, "named nodes") */
BlockDriverState *bdrv_next_monitor_owned(BlockDriverState *bs);
void bdrv_set_monitor_owned(BlockDriverState *bs);

/* Names are [A-Za-z][A-Za-z0-9_.-]{0,127} (QEMU's id_wellformed) */
bool bdrv_node_name_valid(const char *name);

const char *bdrv_get_node_name(const BlockDriverState *bs);
/* Name of the BlockBackend attached to bs ("" if none) */
const char *bdrv_get_device_name(const BlockDriverState *bs);
/* Device name if there is one, else the node name (error messages) */
const char *bdrv_get_device_or_node_name(const BlockDriverState *bs);
const char *bdrv_get_format_name(BlockDriverState *bs);
/* the filename of the protocol node at the bottom ("" if none) */
const char *bdrv_get_filename(BlockDriverState *bs);
BlockDriver *bdrv_get_driver(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
int bdrv_get_open_flags(BlockDriverState *bs);
int bdrv_get_refcnt(BlockDriverState *bs);

BlockDriverState *bdrv_file_bs(BlockDriverState *bs);    /* bs->file->bs */
BlockDriverState *bdrv_backing_bs(BlockDriverState *bs); /* or NULL */
/* The child that holds bs's data for a filter, else NULL */
BdrvChild *bdrv_filter_child(BlockDriverState *bs);
/* Skip filters downwards (bs itself if not a filter) */
BlockDriverState *bdrv_skip_filters(BlockDriverState *bs);
/* True if base is in the backing chain of bs (bs itself excluded) */
bool bdrv_chain_contains(BlockDriverState *bs, BlockDriverState *base);

/*
 * Attach child_bs under parent as child `name` with role flags; takes a new
 * reference on child_bs.  Checks permissions (the parent driver's
 * bdrv_child_perm decides what the parent needs/shares).
 */
BdrvChild *bdrv_attach_child(BlockDriverState *parent,
                             BlockDriverState *child_bs, const char *name,
                             unsigned role, Error **errp);
/* Detach and drop the child reference */
void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child);
/* Replace (or with NULL remove) the backing child */
bool bdrv_set_backing_hd(BlockDriverState *bs, BlockDriverState *backing_hd,
                         Error **errp);
BdrvChild *bdrv_find_child(BlockDriverState *parent, const char *name);

/* Cumulative permissions taken / shared by all parents of bs */
void bdrv_get_cumulative_perm(BlockDriverState *bs, uint64_t *perm,
                              uint64_t *shared);

/* ---- request path (block/io.c) ---- */

int64_t bdrv_getlength(BlockDriverState *bs);
int coroutine_fn bdrv_co_truncate(BdrvChild *child, int64_t offset,
                                  bool exact, Error **errp);
int bdrv_truncate(BdrvChild *child, int64_t offset, bool exact,
                  Error **errp);
/* Refresh total size from the driver */
int bdrv_refresh_total_size(BlockDriverState *bs);

int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pread(BdrvChild *child, int64_t offset,
                               int64_t bytes, void *buf,
                               BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite(BdrvChild *child, int64_t offset,
                                int64_t bytes, const void *buf,
                                BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite_zeroes(BdrvChild *child, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pdiscard(BdrvChild *child, int64_t offset,
                                  int64_t bytes);
int coroutine_fn bdrv_co_flush(BlockDriverState *bs);
/* VM state I/O (see BlockDriver.bdrv_co_rw_vmstate) */
int coroutine_fn bdrv_co_rw_vmstate(BlockDriverState *bs, QEMUIOVector *qiov,
                                    int64_t pos, bool is_read);
/*
 * Copy offload: copy bytes from src at src_offset to dst at dst_offset
 * without a bounce buffer when the drivers support it (file-posix:
 * copy_file_range).  -ENOTSUP if not possible; callers fall back to
 * read + write.
 */
int coroutine_fn bdrv_co_copy_range(BdrvChild *src, int64_t src_offset,
                                    BdrvChild *dst, int64_t dst_offset,
                                    int64_t bytes,
                                    BdrvRequestFlags read_flags,
                                    BdrvRequestFlags write_flags);

/* Synchronous wrappers (bytes transferred semantics as QEMU: 0 / -errno) */
int bdrv_preadv(BdrvChild *child, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags);
int bdrv_pwritev(BdrvChild *child, int64_t offset, int64_t bytes,
                 QEMUIOVector *qiov, BdrvRequestFlags flags);
int bdrv_pread(BdrvChild *child, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags);
int bdrv_pwrite(BdrvChild *child, int64_t offset, int64_t bytes,
                const void *buf, BdrvRequestFlags flags);
int bdrv_pwrite_sync(BdrvChild *child, int64_t offset, int64_t bytes,
                     const void *buf, BdrvRequestFlags flags);
int bdrv_pwrite_zeroes(BdrvChild *child, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags);
int bdrv_pdiscard(BdrvChild *child, int64_t offset, int64_t bytes);
int bdrv_flush(BlockDriverState *bs);

/*
 * Block status of [offset, offset + bytes) in bs alone: returns
 * BDRV_BLOCK_* bits (or -errno) for the first *pnum bytes, which share the
 * status; *map and *file describe where the data lives when OFFSET_VALID.
 * map/file may be NULL.  want_zero=false allows a cheaper, less precise
 * answer (allocation only).
 */
int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, bool want_zero,
                                      int64_t offset, int64_t bytes,
                                      int64_t *pnum, int64_t *map,
                                      BlockDriverState **file);
/*
 * Same, through the backing chain of bs down to base (exclusive; base NULL
 * = whole chain).  Unallocated regions of a layer fall through to the next
 * one; past the end of a backing file reads are zero.  *depth (may be
 * NULL) is 1 for bs, 2 for its backing file, ... and 0 if no layer down to
 * base allocates the range.
 */
int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs,
                                            BlockDriverState *base,
                                            bool want_zero,
                                            int64_t offset, int64_t bytes,
                                            int64_t *pnum, int64_t *map,
                                            BlockDriverState **file,
                                            int *depth);
int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file);
int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file,
                            int *depth);
/* 1 if allocated in bs itself, 0 if not, -errno; *pnum bytes share it */
int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum);
int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum);
/*
 * Allocation in the chain top..base: returns the depth of the first layer
 * allocating the start of the range (1 = top), 0 if none, or -errno.
 * include_base: also look at base itself.
 */
int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *top,
                                            BlockDriverState *base,
                                            bool include_base, int64_t offset,
                                            int64_t bytes, int64_t *pnum);
int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum);

/* ---- in-flight requests, drain ---- */
void bdrv_inc_in_flight(BlockDriverState *bs);
void bdrv_dec_in_flight(BlockDriverState *bs);
unsigned bdrv_get_in_flight(BlockDriverState *bs);
/*
 * Wait (driving the main loop, or yielding when called from a coroutine)
 * until no request is in flight on bs and its children.  Between
 * bdrv_drained_begin and _end new requests from BlockBackends are queued.
 */
void bdrv_drain(BlockDriverState *bs);
void bdrv_drained_begin(BlockDriverState *bs);
void bdrv_drained_end(BlockDriverState *bs);
bool bdrv_is_drained(BlockDriverState *bs);
void bdrv_drain_all(void);

/* ---- hooks on the write path ---- */

/*
 * Before-write notifiers run for every write, write_zeroes and discard
 * after the request is tracked (and waited for serialising conflicts) and
 * before the driver sees it.  data is the BdrvTrackedRequest (offset,
 * bytes, type, flags are stable for the call).  A negative return fails the
 * request with that value; the driver is not called.  Notifiers run in the
 * order they were added and may yield.
 */
void bdrv_add_before_write_notifier(BlockDriverState *bs,
                                    NotifierWithReturn *notifier);
void bdrv_remove_before_write_notifier(BlockDriverState *bs,
                                       NotifierWithReturn *notifier);

/*
 * Write hooks: called after the driver finished a write, write_zeroes or
 * discard (whether it succeeded or not; a failed write may have changed
 * part of the range), with the aligned byte range.  Dirty bitmaps register
 * here.  Hooks must not yield.
 */
typedef void BdrvWriteHookFunc(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, void *opaque);
void bdrv_add_write_hook(BlockDriverState *bs, BdrvWriteHookFunc *cb,
                         void *opaque);
void bdrv_remove_write_hook(BlockDriverState *bs, BdrvWriteHookFunc *cb,
                            void *opaque);

/* ---- driver info ---- */
typedef struct BlockDriverInfo {
    int cluster_size;         /* 0 if the format has no clusters */
    bool is_dirty;
    int64_t vm_state_offset;
} BlockDriverInfo;
int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);

/* Alignment any request to bs must have to avoid RMW (request_alignment) */
uint32_t bdrv_get_request_alignment(BlockDriverState *bs);
/* Memory alignment for buffers of requests to bs (O_DIRECT) */
size_t bdrv_opt_mem_align(BlockDriverState *bs);
void *qemu_blockalign(BlockDriverState *bs, size_t size);
void *qemu_try_blockalign(BlockDriverState *bs, size_t size);
void *qemu_blockalign0(BlockDriverState *bs, size_t size);

/* ---- blkdebug break points (generic entry points; see blkdebug.c) ---- */
int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event,
                          const char *tag);
int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag);
int bdrv_debug_resume(BlockDriverState *bs, const char *tag);
bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag);
/* Raise a blkdebug event (BLKDBG_*) on bs and its filtered children */
void bdrv_debug_event(BlockDriverState *bs, int event);

#endif /* BLOCK_BLOCK_H */
