/*
 * NBD: protocol constants and the server's public interface.
 *
 * Protocol: NetworkBlockDevice doc/proto.md (fixed newstyle handshake,
 * structured replies, meta contexts) and QEMU's docs/interop/nbd.rst
 * (qemu:allocation-depth, qemu:dirty-bitmap:NAME).  All integers on the
 * wire are big-endian.
 *
 * Server pieces:
 *   nbd/common.c               names of options, replies, commands, errors
 *   nbd/server-handshake.c     option haggling until GO/EXPORT_NAME
 *   nbd/server.c               exports, clients, transmission phase
 *   nbd/server-block-status.c  meta contexts and BLOCK_STATUS extents
 *   blockdev-nbd.c             the listening socket and the QMP commands
 *   block/export.c             the export registry (block-export-*)
 *
 * Client pieces (the "nbd" block driver and tests use them):
 *   nbd/client.c               the client side of the handshake
 *   nbd/client-io.c            transmission: request coroutines, one
 *                              reply reader, structured chunk parsing
 *   block/nbd.c                the "nbd" block driver over NBDConn
 */
#ifndef BLOCK_NBD_H
#define BLOCK_NBD_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block.h"
#include "block/export.h"
#include "qemu/co-channel.h"

/* ---- handshake ---- */
#define NBD_INIT_MAGIC          0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC          0x49484156454F5054ULL /* "IHAVEOPT" */
#define NBD_CLIENT_MAGIC        0x0000420281861253ULL /* oldstyle */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL

/* handshake flags (server, 16 bits) and client flags (32 bits) */
#define NBD_FLAG_FIXED_NEWSTYLE   (1 << 0)
#define NBD_FLAG_NO_ZEROES        (1 << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES      NBD_FLAG_NO_ZEROES

/* transmission flags (16 bits) */
#define NBD_FLAG_HAS_FLAGS          (1 << 0)
#define NBD_FLAG_READ_ONLY          (1 << 1)
#define NBD_FLAG_SEND_FLUSH         (1 << 2)
#define NBD_FLAG_SEND_FUA           (1 << 3)
#define NBD_FLAG_ROTATIONAL         (1 << 4)
#define NBD_FLAG_SEND_TRIM          (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES  (1 << 6)
#define NBD_FLAG_SEND_DF            (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN     (1 << 8)
#define NBD_FLAG_SEND_RESIZE        (1 << 9)
#define NBD_FLAG_SEND_CACHE         (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO     (1 << 11)

/* options */
#define NBD_OPT_EXPORT_NAME         1
#define NBD_OPT_ABORT               2
#define NBD_OPT_LIST                3
#define NBD_OPT_STARTTLS            5
#define NBD_OPT_INFO                6
#define NBD_OPT_GO                  7
#define NBD_OPT_STRUCTURED_REPLY    8
#define NBD_OPT_LIST_META_CONTEXT   9
#define NBD_OPT_SET_META_CONTEXT    10

/* option replies */
#define NBD_REP_ACK                 1
#define NBD_REP_SERVER              2
#define NBD_REP_INFO                3
#define NBD_REP_META_CONTEXT        4
#define NBD_REP_FLAG_ERROR          (1U << 31)
#define NBD_REP_ERR_UNSUP           (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY          (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID         (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM        (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD        (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN         (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN        (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG         (NBD_REP_FLAG_ERROR | 9)

/* NBD_OPT_INFO / NBD_OPT_GO information types */
#define NBD_INFO_EXPORT             0
#define NBD_INFO_NAME               1
#define NBD_INFO_DESCRIPTION        2
#define NBD_INFO_BLOCK_SIZE         3

/* ---- transmission ---- */
#define NBD_REQUEST_MAGIC           0x25609513
#define NBD_SIMPLE_REPLY_MAGIC      0x67446698
#define NBD_STRUCTURED_REPLY_MAGIC  0x668e33ef

#define NBD_REQUEST_SIZE            28
#define NBD_SIMPLE_REPLY_SIZE       16
#define NBD_STRUCTURED_HDR_SIZE     20

#define NBD_CMD_READ                0
#define NBD_CMD_WRITE               1
#define NBD_CMD_DISC                2
#define NBD_CMD_FLUSH               3
#define NBD_CMD_TRIM                4
#define NBD_CMD_CACHE               5
#define NBD_CMD_WRITE_ZEROES        6
#define NBD_CMD_BLOCK_STATUS        7

#define NBD_CMD_FLAG_FUA            (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE        (1 << 1)
#define NBD_CMD_FLAG_DF             (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE        (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO      (1 << 4)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE         (1 << 0)
#define NBD_REPLY_TYPE_NONE         0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_ERR(v)            ((1 << 15) | (v))
#define NBD_REPLY_TYPE_ERROR        NBD_REPLY_ERR(1)
#define NBD_REPLY_TYPE_ERROR_OFFSET NBD_REPLY_ERR(2)

/* base:allocation and qemu: context flags */
#define NBD_STATE_HOLE              (1 << 0)
#define NBD_STATE_ZERO              (1 << 1)
#define NBD_STATE_DIRTY             (1 << 0)

/* wire errors */
#define NBD_SUCCESS     0
#define NBD_EPERM       1
#define NBD_EIO         5
#define NBD_ENOMEM      12
#define NBD_EINVAL      22
#define NBD_ENOSPC      28
#define NBD_EOVERFLOW   75
#define NBD_ENOTSUP     95
#define NBD_ESHUTDOWN   108

/* ---- limits ---- */
#define NBD_DEFAULT_PORT            10809
/* largest READ/WRITE payload (and INFO_BLOCK_SIZE maximum) */
#define NBD_MAX_BUFFER_SIZE         (32 * MiB)
/* longest name or context query; also the longest error message */
#define NBD_MAX_STRING_SIZE         4096
/* longest option payload accepted; longer ones drop the connection */
#define NBD_MAX_OPTION_SIZE         (64 * KiB)
/* the preferred block size advertised in INFO_BLOCK_SIZE */
#define NBD_PREFERRED_BLOCK_SIZE    4096
/* concurrent requests per client */
#define NBD_MAX_REQUESTS            16
#define NBD_DEFAULT_HANDSHAKE_MAX_SECS 10

#define NBD_META_BASE_ALLOCATION    "base:allocation"
#define NBD_META_ALLOCATION_DEPTH   "qemu:allocation-depth"
#define NBD_META_DIRTY_BITMAP       "qemu:dirty-bitmap:"

/* ---- names (nbd/common.c) ---- */
const char *nbd_opt_lookup(uint32_t opt);
const char *nbd_rep_lookup(uint32_t rep);
const char *nbd_info_lookup(uint16_t info);
const char *nbd_cmd_lookup(uint16_t cmd);
const char *nbd_reply_type_lookup(uint16_t type);
const char *nbd_err_lookup(int err);
/* -errno (or errno) to the NBD wire error, as QEMU maps it */
int nbd_errno_to_wire(int err);
/* NBD wire error to a positive errno (client side) */
int nbd_wire_to_errno(uint32_t err);

/* ---- server ---- */
typedef struct NBDExport NBDExport;
typedef struct NBDClient NBDClient;

/* The NBD block export driver, for block/export.c */
extern const BlockExportDriver blk_exp_nbd;

/* Live export by NBD name, NULL if none (or shutting down) */
NBDExport *nbd_export_find(const char *name);
BlockExport *nbd_export_get_blockexport(NBDExport *exp);
unsigned nbd_export_client_count(NBDExport *exp);

/*
 * Serve a connected socket @fd (ownership taken).  The handshake must
 * finish within @handshake_max_secs seconds (0: no limit).  When the
 * client is gone, close_fn(client, negotiated) runs (negotiated: the
 * handshake had succeeded).  @owner is returned by nbd_client_owner().
 */
NBDClient *nbd_client_new(int fd, uint32_t handshake_max_secs,
                          void (*close_fn)(NBDClient *, bool),
                          void *owner);
void *nbd_client_owner(NBDClient *client);
/* Start disconnecting a client (idempotent). */
void nbd_client_close(NBDClient *client);
/* Disconnect every client of @owner; their close_fn will not run */
void nbd_client_close_owned(void *owner);
/* Clients currently alive (handshaking or transmitting); for tests */
unsigned nbd_client_count(void);

/*
 * Dirty bitmap contexts ("qemu:dirty-bitmap:NAME"), provided by the dirty
 * bitmap code through this hook.  Until ops are registered, exports that
 * ask for bitmaps fail to be created.
 */
typedef struct NBDDirtyBitmapOps {
    /*
     * Find bitmap @name on node @node_name (NULL: on @bs or a node below
     * it) and pin it for the export's lifetime; returns a handle or NULL
     * with errp set.  *@export_name receives the name to publish (usually
     * @name; caller frees).
     */
    void *(*acquire)(BlockDriverState *bs, const char *node_name,
                     const char *name, char **export_name, Error **errp);
    void (*release)(void *bitmap);
    /*
     * Dirtiness at @offset: returns true if dirty; *pnum (<= @bytes, > 0)
     * bytes from @offset share that state.  Must not yield.
     */
    bool (*status)(void *bitmap, int64_t offset, int64_t bytes,
                   int64_t *pnum);
} NBDDirtyBitmapOps;

void nbd_set_dirty_bitmap_ops(const NBDDirtyBitmapOps *ops);

/* ---- the server socket (blockdev-nbd.c) ---- */
bool nbd_server_is_running(void);
/* Listen on @addr; @max_connections 0 = unlimited */
bool nbd_server_start(SocketAddress *addr, const char *tls_creds,
                      const char *tls_authz, uint32_t max_connections,
                      uint32_t handshake_max_secs, Error **errp);
/* The --nbd-server path: same as nbd-server-start */
bool nbd_server_start_options(NbdServerOptions *arg, Error **errp);
/* --nbd-server ARG (keyval or JSON), the same path */
bool nbd_server_start_cmdline(const char *arg, Error **errp);
/* Close all NBD exports and the listener (no-op if not running) */
void nbd_server_shutdown(void);
/* The listening fd, for tests (-1 if not running) */
int nbd_server_listen_fd(void);

/* ---- client (nbd/client.c, nbd/client-io.c) ---- */

/* What the client asks for during the handshake */
typedef struct NBDClientOptions {
    const char *export_name;     /* NULL: "" (the default export) */
    bool no_structured_reply;    /* do not ask for structured replies */
    bool base_allocation;        /* SET_META_CONTEXT base:allocation */
    bool allocation_depth;       /* ... and qemu:allocation-depth */
    bool force_export_name;      /* skip OPT_GO: act as an old client */
} NBDClientOptions;

/* What the handshake found out */
typedef struct NBDExportInfo {
    char *name;                  /* the export name that was asked for */
    char *description;           /* NBD_INFO_DESCRIPTION, or NULL */
    uint64_t size;
    uint16_t flags;              /* transmission flags */
    /* block size constraints (defaults 1, 4096, 32 MiB when not sent) */
    uint32_t min_block;
    uint32_t opt_block;
    uint32_t max_block;
    bool structured_reply;
    bool used_export_name;       /* fell back to NBD_OPT_EXPORT_NAME */
    bool base_allocation;
    uint32_t base_allocation_id;
    bool allocation_depth;
    uint32_t allocation_depth_id;
} NBDExportInfo;

void nbd_export_info_clear(NBDExportInfo *info);

/*
 * Client handshake on the connected socket @ch (fixed newstyle with
 * NO_ZEROES; OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT and OPT_GO with
 * INFO_BLOCK_SIZE; NBD_OPT_EXPORT_NAME when the server has no OPT_GO or
 * is not fixed newstyle).  0 on success (info filled), -1 with errp set.
 */
int coroutine_fn nbd_receive_negotiate(CoChannel *ch,
                                       const NBDClientOptions *opts,
                                       NBDExportInfo *info, Error **errp);

/* One extent from a BLOCK_STATUS reply */
typedef struct NBDExtent {
    uint64_t length;             /* 0: the context did not answer */
    uint32_t flags;
} NBDExtent;

/*
 * A client connection in transmission phase.  Requests run in the
 * callers' coroutines (at most NBD_MAX_REQUESTS at once; more wait for a
 * free slot); one reader coroutine reads every reply and completes the
 * request whose handle it carries.  I/O functions return 0 or -errno:
 * the server's error mapped to errno, -EIO once the connection is broken
 * (server gone, protocol violation), -EINVAL for requests the export's
 * flags or block sizes do not allow.
 */
typedef struct NBDConn NBDConn;

/* Handshake over @fd (ownership taken, also on failure) and start */
NBDConn *coroutine_fn nbd_conn_co_new(int fd, AioContext *ctx,
                                      const NBDClientOptions *opts,
                                      Error **errp);
/* Same from outside a coroutine (runs the loop until done) */
NBDConn *nbd_conn_new(int fd, AioContext *ctx, const NBDClientOptions *opts,
                      Error **errp);
/* Connect to @addr, then nbd_conn_new() */
NBDConn *nbd_conn_connect(SocketAddress *addr, AioContext *ctx,
                          const NBDClientOptions *opts, Error **errp);
/*
 * Send NBD_CMD_DISC (if still connected), wait for the reader to stop and
 * free.  No request may be in flight.  Callable inside or outside a
 * coroutine.
 */
void nbd_conn_close(NBDConn *conn);

const NBDExportInfo *nbd_conn_info(NBDConn *conn);
/* The connection is dead: every request fails with -EIO from now on */
bool nbd_conn_is_broken(NBDConn *conn);
/* Requests waiting for their reply (tests) */
unsigned nbd_conn_in_flight(NBDConn *conn);

int coroutine_fn nbd_conn_co_read(NBDConn *conn, uint64_t offset,
                                  uint32_t bytes, QEMUIOVector *qiov,
                                  size_t qiov_offset, uint16_t flags);
/* @flags: NBD_CMD_FLAG_FUA */
int coroutine_fn nbd_conn_co_write(NBDConn *conn, uint64_t offset,
                                   uint32_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, uint16_t flags);
/* @flags: NBD_CMD_FLAG_FUA, NO_HOLE, FAST_ZERO */
int coroutine_fn nbd_conn_co_write_zeroes(NBDConn *conn, uint64_t offset,
                                          uint32_t bytes, uint16_t flags);
int coroutine_fn nbd_conn_co_trim(NBDConn *conn, uint64_t offset,
                                  uint32_t bytes, uint16_t flags);
int coroutine_fn nbd_conn_co_flush(NBDConn *conn);
/*
 * BLOCK_STATUS (REQ_ONE) of [offset, offset + bytes): the first extent of
 * base:allocation in *@base and of qemu:allocation-depth in *@depth (each
 * may be NULL; length 0 when that context was not negotiated).
 */
int coroutine_fn nbd_conn_co_block_status(NBDConn *conn, uint64_t offset,
                                          uint32_t bytes, NBDExtent *base,
                                          NBDExtent *depth);

#endif /* BLOCK_NBD_H */
