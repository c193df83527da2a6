/*
 * Block layer internals: the BlockDriver table, BlockDriverState, BdrvChild,
 * tracked requests.  For drivers and the core; users use block.h and
 * block-backend.h.
 *
 * ==== The contract between the generic layer and a driver ====
 *
 * A driver is a designated-initialiser BlockDriver table, registered by
 * bdrv_register() (built-ins are registered by bdrv_init(); see the list
 * in block/block.c).  Everything runs on the one block-layer thread;
 * callbacks named bdrv_co_* run in a coroutine and may yield.
 *
 * Opening (control path):
 * - The generic layer creates the BlockDriverState, allocates
 *   drv->instance_size bytes of zeroed bs->opaque, consumes the generic
 *   options (node-name, read-only, cache.*, discard, detect-zeroes,
 *   force-share, driver).  Format drivers open their "file" child
 *   themselves at the start of .bdrv_open with
 *   bdrv_open_child(bs, options, "file", role, false, errp) (role
 *   BDRV_CHILD_IMAGE | BDRV_CHILD_PRIMARY for formats with metadata,
 *   FILTERED | PRIMARY for raw without offset/size), as in QEMU.
 * - .bdrv_open(bs, options, flags, errp) must remove every option it uses
 *   from `options` (the bdrv_opt_* getters do that); whatever is left
 *   afterwards is reported as unsupported.  It must set up bs->total_size
 *   via .bdrv_co_getlength (queried after open), and may set bs->bl limits.
 * - Backing files: if .supports_backing, the generic layer opens "backing"
 *   after .bdrv_open returns (option "backing": node name, null, object;
 *   absent: the driver's bs->backing_file/backing_format from the header,
 *   unless BDRV_O_NO_BACKING).  The format reads its backing data through
 *   bs->backing.
 * - .bdrv_close releases driver state; children are detached by the
 *   generic layer afterwards.
 *
 * I/O (bdrv_co_preadv/pwritev/pwrite_zeroes/pdiscard/...):
 * - offset and bytes are multiples of bs->bl.request_alignment (the generic
 *   layer does read-modify-write and padding), 0 < bytes <=
 *   bs->bl.max_transfer when max_transfer is set (the generic layer
 *   splits), and the range lies within the image for reads/writes issued by
 *   users (formats may be asked to write past EOF only by their own
 *   internal requests to their file child).
 * - qiov is owned by the caller; the driver must not keep it after
 *   returning.  Data buffers of requests reaching a node whose
 *   bl.min_mem_alignment > 1 are aligned by the generic layer (bounce
 *   buffers) only for the RMW padding; callers with O_DIRECT nodes must
 *   allocate with qemu_blockalign (the file driver copies through an
 *   aligned bounce buffer if a caller does not).
 * - Flags: the driver only sees flags in bs->supported_write_flags /
 *   supported_zero_flags; the generic layer emulates FUA with a flush and
 *   drops MAY_UNMAP when unsupported.  BDRV_REQ_NO_FALLBACK on
 *   write_zeroes: return -ENOTSUP instead of writing a buffer.
 * - Return 0 on success or -errno; short reads/writes are errors, except
 *   that protocol drivers must return zeroes for reads past EOF.
 * - .bdrv_co_pwrite_zeroes may return -ENOTSUP: the generic layer then
 *   writes a zeroed buffer (unless NO_FALLBACK).
 * - .bdrv_co_pdiscard is advisory; -ENOTSUP is treated as success.
 * - .bdrv_co_block_status(bs, want_zero, offset, bytes, pnum, map, file):
 *   offset is aligned to request_alignment; set *pnum (> 0, <= bytes,
 *   aligned unless it reaches EOF) and return BDRV_BLOCK_* bits.  Return
 *   BDRV_BLOCK_RAW with *map and *file set to have the generic layer ask *file
 *   instead (raw, filters).  Returning 0 for an unallocated range makes the
 *   generic layer consult the backing chain (block_status_above).  A driver
 *   without the callback is "all data": DATA|ALLOCATED|OFFSET_VALID with
 *   map = offset in bs itself for protocols, or RAW-forwarded to its
 *   filtered child for filters.
 * - .bdrv_co_copy_range_from/to: copy offload; the generic layer calls
 *   _from on the source node, which forwards down (raw: to its file child
 *   with the offset shifted) until a protocol driver calls
 *   bdrv_co_copy_range_to on the destination; file-posix implements both
 *   ends with copy_file_range.  -ENOTSUP if impossible.
 *
 * Permissions: every BdrvChild carries perm/shared_perm; the sum over a
 * node's parents must be consistent (what one takes, every other shares).
 * .bdrv_child_perm computes what bs needs from a child given what bs's
 * own parents need (default: bdrv_default_perms).  Protocol drivers
 * receive the node's cumulative permissions in .bdrv_check_perm (may
 * fail, e.g. image locking; must be undoable by .bdrv_abort_perm_update)
 * and then .bdrv_set_perm (commit).
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include "block/block.h"
#include "qemu/coroutine.h"
#include "qapi-types.h"

#define BLOCK_OPT_SIZE          "size"
#define BLOCK_OPT_BACKING_FILE  "backing_file"
#define BLOCK_OPT_BACKING_FMT   "backing_fmt"
#define BLOCK_OPT_CLUSTER_SIZE  "cluster_size"

/* blkdebug events: the QAPI-generated BlkdebugEvent (qapi-types.h). */

const char *blkdebug_event_name(BlkdebugEvent ev);
/* -1 if unknown */
int blkdebug_event_lookup(const char *name);

/* Raise event on child->bs (no-op for NULL child) */
#define BLKDBG_EVENT(child, evt)                                        \
    do {                                                                \
        if (child) {                                                    \
            bdrv_debug_event((child)->bs, (evt));                       \
        }                                                               \
    } while (0)

/* ---- limits ---- */
typedef struct BlockLimits {
    /* reads/writes must be multiples of this (power of 2, >= 1) */
    uint32_t request_alignment;
    /* largest request the driver accepts (0 = no limit); multiple of
     * request_alignment */
    int64_t max_transfer;
    /* preferred alignment for write zeroes / discard (0 = none) */
    int64_t pwrite_zeroes_alignment;
    int64_t pdiscard_alignment;
    int64_t max_pwrite_zeroes;
    int64_t max_pdiscard;
    /* memory alignment for data buffers (O_DIRECT), and optimum */
    size_t min_mem_alignment;
    size_t opt_mem_alignment;
    /* preferred transfer size (0 = none) */
    int64_t opt_transfer;
    int max_iov;
} BlockLimits;

/* ---- consistency check (qemu-img check) ---- */
typedef enum BdrvCheckMode {
    BDRV_FIX_LEAKS  = 1,   /* -r leaks: drop refcounts nothing uses */
    BDRV_FIX_ERRORS = 2,   /* -r all: also repair corruptions */
} BdrvCheckMode;

/* QEMU's BdrvCheckResult; counts of clusters */
typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;     /* highest used cluster end, 0 unknown */
    int64_t total_clusters;       /* guest clusters of the virtual disk */
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
} BdrvCheckResult;

/* QEMU's BlockMeasureInfo: what an image of this format would take */
typedef struct BlockMeasureInfo {
    uint64_t required;          /* bytes for the data and metadata */
    uint64_t fully_allocated;   /* bytes if every cluster is allocated */
    bool has_bitmaps;
    uint64_t bitmaps;           /* persistent bitmaps (qcow2 v3) */
} BlockMeasureInfo;

/* ---- the driver table ---- */
struct BlockDriver {
    const char *format_name;
    int instance_size;

    /* format driver: has a "file" child (and maybe a backing file) */
    bool is_format;
    /* filter driver: one child with the same data (blkdebug, raw w/o
     * offset/size counts as filter only via bdrv_filter_child) */
    bool is_filter;
    bool supports_backing;
    /* protocol driver: name used for "proto:" filename prefixes */
    const char *protocol_name;

    /*
     * Probe: score (0..100) that buf (first bytes of the file, buf_size
     * may be < 512) is this format; filename may help.  Highest wins;
     * raw is the fallback with score 1.
     */
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);
    /*
     * Protocol drivers: turn a filename (after the "proto:" prefix handling
     * when protocol_name is set, else the plain filename for "file")
     * into options, e.g. blkdebug's "blkdebug:conf:image".
     */
    void (*bdrv_parse_filename)(const char *filename, json_t *options,
                                Error **errp);

    /* options: see the file comment.  flags: BDRV_O_* */
    int (*bdrv_open)(BlockDriverState *bs, json_t *options, int flags,
                     Error **errp);
    void (*bdrv_close)(BlockDriverState *bs);
    /* after open and after graph changes: set bs->bl */
    void (*bdrv_refresh_limits)(BlockDriverState *bs, Error **errp);

    int coroutine_fn (*bdrv_co_preadv)(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pwritev)(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pwrite_zeroes)(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pdiscard)(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes);
    /* write cached data to the OS (formats: metadata caches) */
    int coroutine_fn (*bdrv_co_flush_to_os)(BlockDriverState *bs);
    /* make data stable (protocols: fdatasync) */
    int coroutine_fn (*bdrv_co_flush_to_disk)(BlockDriverState *bs);
    int coroutine_fn (*bdrv_co_block_status)(BlockDriverState *bs,
                                             bool want_zero, int64_t offset,
                                             int64_t bytes, int64_t *pnum,
                                             int64_t *map,
                                             BlockDriverState **file);
    int coroutine_fn (*bdrv_co_copy_range_from)(BlockDriverState *bs,
                                                BdrvChild *src,
                                                int64_t src_offset,
                                                BdrvChild *dst,
                                                int64_t dst_offset,
                                                int64_t bytes,
                                                BdrvRequestFlags read_flags,
                                                BdrvRequestFlags write_flags);
    int coroutine_fn (*bdrv_co_copy_range_to)(BlockDriverState *bs,
                                              BdrvChild *src,
                                              int64_t src_offset,
                                              BdrvChild *dst,
                                              int64_t dst_offset,
                                              int64_t bytes,
                                              BdrvRequestFlags read_flags,
                                              BdrvRequestFlags write_flags);
    /*
     * VM state (savevm data, qemu-io read/write -b): @qiov at byte @pos of
     * an area outside the guest-visible disk.  Formats that can store it
     * (qcow2) implement this; elsewhere the request fails with -ENOTSUP.
     */
    int coroutine_fn (*bdrv_co_rw_vmstate)(BlockDriverState *bs,
                                           QEMUIOVector *qiov, int64_t pos,
                                           bool is_read);
    /* exact=false: may grow more than asked (prealloc granularity) */
    int coroutine_fn (*bdrv_co_truncate)(BlockDriverState *bs, int64_t offset,
                                         bool exact, Error **errp);
    /* image size in bytes, or -errno */
    int64_t coroutine_fn (*bdrv_co_getlength)(BlockDriverState *bs);
    /* allocated bytes on the host (qemu-img info "disk size") */
    int64_t coroutine_fn (*bdrv_co_get_allocated_file_size)(
        BlockDriverState *bs);
    int (*bdrv_get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);

    /*
     * Image creation from options (size, format specifics); filename or a
     * "file" node in options.  Used by blockd-img create / drive-backup.
     */
    int coroutine_fn (*bdrv_co_create_opts)(BlockDriver *drv,
                                            const char *filename,
                                            json_t *options, Error **errp);

    /*
     * Check (and with fix, repair) the image metadata; messages about each
     * problem go to stderr as qemu-img prints them.  The node is open
     * read-only unless fix != 0.  Returns 0 or -errno (check_errors).
     */
    int coroutine_fn (*bdrv_co_check)(BlockDriverState *bs,
                                      BdrvCheckResult *result,
                                      BdrvCheckMode fix);

    /*
     * Image tools (blockd-img rebase, commit, amend); -ENOTSUP when not
     * set.  change_backing_file: write the backing file name and format
     * (NULL or "": none) into the image header and bs->backing_file /
     * backing_format; the graph is left alone.  make_empty: every
     * cluster unallocated, so reads go to the backing file.  amend:
     * change format options (keyval strings or typed JSON, consumed; an
     * unknown key is an error) on a read-write node.  The callers run
     * them in coroutine context on a node nobody else uses.
     */
    /*
     * qemu-img measure: the size of a new image with the creation options
     * opts (consumed; "size" when in_bs is NULL), holding the data of
     * in_bs (may be NULL; read-only).  Not in coroutine context.
     * -ENOENT: an option the format does not know.
     */
    int (*bdrv_measure)(json_t *opts, BlockDriverState *in_bs,
                        BlockMeasureInfo *info, Error **errp);
    int coroutine_fn (*bdrv_co_change_backing_file)(BlockDriverState *bs,
                                                    const char *backing_file,
                                                    const char *backing_fmt);
    int coroutine_fn (*bdrv_co_make_empty)(BlockDriverState *bs);
    int coroutine_fn (*bdrv_co_amend)(BlockDriverState *bs, json_t *opts,
                                      bool force, Error **errp);

    /* permissions; see the file comment */
    void (*bdrv_child_perm)(BlockDriverState *bs, BdrvChild *c,
                            unsigned role, uint64_t parent_perm,
                            uint64_t parent_shared, uint64_t *nperm,
                            uint64_t *nshared);
    int (*bdrv_check_perm)(BlockDriverState *bs, uint64_t perm,
                           uint64_t shared, Error **errp);
    void (*bdrv_set_perm)(BlockDriverState *bs, uint64_t perm,
                          uint64_t shared);
    void (*bdrv_abort_perm_update)(BlockDriverState *bs);

    /* blkdebug hooks */
    void (*bdrv_debug_event)(BlockDriverState *bs, BlkdebugEvent event);
    int (*bdrv_debug_breakpoint)(BlockDriverState *bs, const char *event,
                                 const char *tag);
    int (*bdrv_debug_remove_breakpoint)(BlockDriverState *bs,
                                        const char *tag);
    int (*bdrv_debug_resume)(BlockDriverState *bs, const char *tag);
    bool (*bdrv_debug_is_suspended)(BlockDriverState *bs, const char *tag);

    /* drain: called when the first drained section begins / last ends */
    void (*bdrv_drain_begin)(BlockDriverState *bs);
    void (*bdrv_drain_end)(BlockDriverState *bs);

    /* strong_runtime_opts etc. are not modelled; "info" output hook */
    void (*bdrv_dump_info)(BlockDriverState *bs, GString *out);

    /* flags the driver handles natively */
    BdrvRequestFlags supported_write_flags;
    BdrvRequestFlags supported_zero_flags;
};

/* ---- children ---- */
struct BdrvChild {
    BlockDriverState *bs;         /* the child node */
    char *name;                   /* "file", "backing", "image", "target"... */
    unsigned role;                /* BDRV_CHILD_* */
    /*
     * Parent: a node (parent_bs) or an opaque user (BlockBackend, job):
     * then parent_bs is NULL and parent_desc describes it in errors.
     */
    BlockDriverState *parent_bs;
    void *opaque;
    char *parent_desc;            /* e.g. "block device 'drive0'" */
    uint64_t perm;
    uint64_t shared_perm;
    /* pending values during a permission update */
    uint64_t new_perm, new_shared;
    bool perm_update_pending;
    /* BlockBackend root children: quiesce new requests while drained */
    void (*drained_begin)(BdrvChild *c);
    void (*drained_end)(BdrvChild *c);
};

/* ---- tracked requests ---- */
typedef enum BdrvTrackedRequestType {
    BDRV_TRACKED_READ,
    BDRV_TRACKED_WRITE,
    BDRV_TRACKED_DISCARD,
    BDRV_TRACKED_TRUNCATE,
} BdrvTrackedRequestType;

struct BdrvTrackedRequest {
    BlockDriverState *bs;
    int64_t offset;              /* request range as issued */
    int64_t bytes;
    BdrvTrackedRequestType type;
    BdrvRequestFlags flags;
    bool serialising;
    /* range that conflicts are checked on (widened for serialising) */
    int64_t overlap_offset;
    int64_t overlap_bytes;
    Coroutine *co;
    CoQueue wait_queue;          /* requests waiting for this one */
    BdrvTrackedRequest *waiting_for;
    GList link;                  /* in bs->tracked_requests (data = this) */
};

typedef struct BdrvWriteHook {
    BdrvWriteHookFunc *cb;
    void *opaque;
} BdrvWriteHook;

typedef enum BlockdevDetectZeroes {
    BLOCKDEV_DETECT_ZEROES_OFF,
    BLOCKDEV_DETECT_ZEROES_ON,
    BLOCKDEV_DETECT_ZEROES_UNMAP,
} BlockdevDetectZeroes;

/* ---- the node ---- */
struct BlockDriverState {
    BlockDriver *drv;
    void *opaque;                 /* drv->instance_size bytes */
    char node_name[128];
    bool implicit_name;           /* "#blockNNN" */
    int refcnt;
    bool monitor_owned;           /* blockdev-add reference */
    bool closing;
    int open_flags;               /* BDRV_O_* */
    bool read_only;
    BlockdevDetectZeroes detect_zeroes;

    /* filename of this node ("" for non-file nodes) */
    char filename[4096];
    /* from the format header: backing file name and format ("" if none) */
    char backing_file[4096];
    char backing_format[16];

    int64_t total_size;           /* cached size in bytes, -1 unknown */

    BdrvChild *file;              /* "file" child (format drivers) */
    BdrvChild *backing;           /* "backing" child */
    GList *children;              /* of BdrvChild *, including file/backing */
    GList *parents;               /* of BdrvChild * pointing at this node */

    BlockLimits bl;
    BdrvRequestFlags supported_write_flags;
    BdrvRequestFlags supported_zero_flags;

    /* request path state */
    GQueue tracked_requests;      /* of BdrvTrackedRequest (link) */
    unsigned serialising_in_flight;
    unsigned in_flight;
    int quiesce_counter;          /* > 0 while drained */
    NotifierWithReturnList before_write_notifiers;
    GArray *write_hooks;          /* of BdrvWriteHook */
    uint64_t write_gen;           /* incremented by every write */
    uint64_t flushed_gen;         /* write_gen at the last flush */

    GSList *op_blockers[BLOCK_OP_TYPE_MAX]; /* of Error * (not owned) */

    /* permissions currently applied to this node (cumulative of parents) */
    uint64_t cur_perm, cur_shared;
};

/* ---- helpers for drivers ---- */

/*
 * Open the child `name` of parent from options[name] (object, node-name
 * string, or for "file" a filename string with the "file" driver) and
 * attach it with role.  allow_none: return NULL without error if absent.
 * Removes options[name].
 */
BdrvChild *bdrv_open_child(BlockDriverState *parent, json_t *options,
                           const char *name, unsigned role, bool allow_none,
                           Error **errp);

/* Default child permissions (QEMU's bdrv_default_perms) */
void bdrv_default_perms(BlockDriverState *bs, BdrvChild *c, unsigned role,
                        uint64_t perm, uint64_t shared,
                        uint64_t *nperm, uint64_t *nshared);
/* Re-apply permissions after e.g. a change of read_only */
int bdrv_refresh_perms(BlockDriverState *bs, Error **errp);
/*
 * Attach a non-node parent (BlockBackend, job) to bs with given perms.
 * parent_desc names it in errors.  Returns NULL (errp set) on conflict.
 */
BdrvChild *bdrv_root_attach_child(BlockDriverState *child_bs,
                                  const char *child_name,
                                  const char *parent_desc, unsigned role,
                                  uint64_t perm, uint64_t shared,
                                  void *opaque, Error **errp);
void bdrv_root_unref_child(BdrvChild *child);
/* Change the permissions of one child edge (tries; rolls back on error) */
int bdrv_child_try_set_perm(BdrvChild *c, uint64_t perm, uint64_t shared,
                            Error **errp);
void bdrv_refresh_limits(BlockDriverState *bs, Error **errp);

/*
 * Typed option getters over a jansson object (keyval strings or typed
 * JSON).  Keys may be dotted ("cache.direct"): both the flat form and the
 * nested object form are accepted.  The key is removed when found.  Return
 * false with errp set on a bad value; *present (may be NULL) says whether
 * the key was there; *value keeps its default otherwise.
 */
bool bdrv_opt_get_str(json_t *opts, const char *key, char **value,
                      bool *present, Error **errp);
bool bdrv_opt_get_bool(json_t *opts, const char *key, bool *value,
                       bool *present, Error **errp);
bool bdrv_opt_get_int(json_t *opts, const char *key, int64_t *value,
                      bool *present, Error **errp);
bool bdrv_opt_get_uint(json_t *opts, const char *key, uint64_t *value,
                       bool *present, Error **errp);
/* size: string with suffix (keyval) or integer (JSON) */
bool bdrv_opt_get_size(json_t *opts, const char *key, uint64_t *value,
                       bool *present, Error **errp);
/* enum: *value is the index in names[] (NULL-terminated) */
bool bdrv_opt_get_enum(json_t *opts, const char *key,
                       const char *const *names, int *value, bool *present,
                       Error **errp);
/* Remove and return the raw json value (new reference), or NULL */
json_t *bdrv_opt_take(json_t *opts, const char *key);
/*
 * Fail on any option left in opts: "Block format '%s' does not support
 * the option '%s'" (protocols: "Block protocol '%s' doesn't support the
 * option '%s'").
 */
bool bdrv_opt_check_empty(BlockDriverState *bs, json_t *opts, Error **errp);

/* request path internals shared with drivers */
void bdrv_mark_request_serialising(BdrvTrackedRequest *req, uint64_t align);
/* Widen req to align and wait for overlapping requests (CBW path) */
bool coroutine_fn bdrv_make_request_serialising(BdrvTrackedRequest *req,
                                                uint64_t align);
/* The tracked request of the current coroutine on bs, or NULL */
BdrvTrackedRequest *bdrv_find_tracked_request(BlockDriverState *bs,
                                              Coroutine *co);
/* Begin/end a tracked request (for jobs that need one around I/O) */
void bdrv_tracked_request_begin(BdrvTrackedRequest *req,
                                BlockDriverState *bs, int64_t offset,
                                int64_t bytes, BdrvTrackedRequestType type,
                                BdrvRequestFlags flags);
void bdrv_tracked_request_end(BdrvTrackedRequest *req);
/* Wait for serialising conflicts of req (true if it waited) */
bool coroutine_fn bdrv_wait_serialising_requests(BdrvTrackedRequest *req);

/*
 * Copy offload steps for drivers: _from is called on the source side
 * (forwarded down the source graph), _to on the destination side.
 */
int coroutine_fn bdrv_co_copy_range_from(BdrvChild *src, int64_t src_offset,
                                         BdrvChild *dst, int64_t dst_offset,
                                         int64_t bytes,
                                         BdrvRequestFlags read_flags,
                                         BdrvRequestFlags write_flags);
int coroutine_fn bdrv_co_copy_range_to(BdrvChild *src, int64_t src_offset,
                                       BdrvChild *dst, int64_t dst_offset,
                                       int64_t bytes,
                                       BdrvRequestFlags read_flags,
                                       BdrvRequestFlags write_flags);

/* Called by io.c around driver writes; calls write hooks */
void bdrv_run_write_hooks(BlockDriverState *bs, int64_t offset,
                          int64_t bytes);

/* image creation through a driver (blockd-img create) */
int bdrv_create(BlockDriver *drv, const char *filename, json_t *options,
                Error **errp);
/* Create a raw/"file" image of size bytes (truncate) */
int bdrv_create_file(const char *filename, json_t *options, Error **errp);

/* built-in drivers */
extern BlockDriver bdrv_file;
extern BlockDriver bdrv_raw;
extern BlockDriver bdrv_null_co;
extern BlockDriver bdrv_blkdebug;
extern BlockDriver bdrv_qcow2;
/* nbd: one table per URI scheme (nbd, nbd+tcp, nbd+unix) */
extern BlockDriver bdrv_nbd;
extern BlockDriver bdrv_nbd_tcp;
extern BlockDriver bdrv_nbd_unix;

#endif /* BLOCK_BLOCK_INT_H */
