/*
 * NBD server internals shared by nbd/server*.c.
 *
 * An NBDClient lives from accept to disconnect.  Its main coroutine
 * (nbd_client_co_main) runs the handshake and then the request loop: it
 * reads one request (and a WRITE's payload), validates it, and hands it
 * to a new request coroutine, so up to NBD_MAX_REQUESTS requests run
 * concurrently.  Replies are written under send_lock, one whole reply at
 * a time, so chunks of different requests never interleave.  When the
 * loop ends (EOF, error, bad magic, DISC, shutdown), the main coroutine
 * waits for the request coroutines still running, then tears the client
 * down; nothing else frees a client.
 */
#ifndef NBD_INTERNAL_H
#define NBD_INTERNAL_H

#include "qemu/osdep.h"
#include "block/nbd.h"
#include "qemu/co-channel.h"
#include "qemu/coroutine.h"

/* Context ids we hand out */
#define NBD_META_ID_BASE_ALLOCATION  0
#define NBD_META_ID_ALLOCATION_DEPTH 1
#define NBD_META_ID_DIRTY_BITMAP     2  /* + index of the bitmap */

typedef struct NBDExportBitmap {
    void *handle;            /* from NBDDirtyBitmapOps.acquire */
    char *context;           /* "qemu:dirty-bitmap:NAME" */
} NBDExportBitmap;

struct NBDExport {
    BlockExport common;
    char *name;
    char *description;
    int64_t size;
    uint16_t nbdflags;
    bool allocation_depth;
    bool writethrough;
    NBDExportBitmap *bitmaps;
    size_t nr_bitmaps;
    GList *clients;          /* NBDClient in transmission on this export */
    bool shutting_down;
    uint64_t splice_bytes;   /* READ data sent by sendfile (server.c) */
};

/* Selected meta contexts (tied to the export they were selected for) */
typedef struct NBDMetaContexts {
    NBDExport *exp;
    size_t count;
    bool base_allocation;
    bool allocation_depth;
    bool *bitmaps;           /* exp->nr_bitmaps entries */
} NBDMetaContexts;

struct NBDClient {
    CoChannel *ch;
    AioContext *ctx;
    void (*close_fn)(NBDClient *, bool);
    void *owner;
    Coroutine *main_co;
    QEMUTimer *handshake_timer;

    /* negotiation */
    bool structured_reply;
    bool no_zeroes;
    uint32_t opt;            /* option being processed */
    uint32_t optlen;         /* payload bytes of it not yet read */
    NBDMetaContexts contexts;
    bool negotiated;
    bool check_align;        /* client asked for INFO_BLOCK_SIZE */

    /* transmission */
    NBDExport *exp;
    CoMutex send_lock;
    unsigned nb_requests;
    /* main_co yielded until a request finishes (slot free / drained) */
    bool waiting_for_requests;
    bool closing;
    bool disc;               /* NBD_CMD_DISC received */
};

/* server.c */
int64_t nbd_export_size(NBDExport *exp);
GList *nbd_export_list(void);

/* server-handshake.c: 0 = go to transmission, -1 = drop (errp set) */
int coroutine_fn nbd_negotiate(NBDClient *client, Error **errp);
uint16_t nbd_export_flags_for(NBDClient *client, NBDExport *exp);

/* server-block-status.c */
void nbd_meta_contexts_clear(NBDMetaContexts *ctxs);
/*
 * Handle NBD_OPT_LIST/SET_META_CONTEXT (payload still unread):
 * 0 = done (replies sent), -1 = I/O error (drop).
 */
int coroutine_fn nbd_negotiate_meta_queries(NBDClient *client,
                                            Error **errp);
bool nbd_export_bitmaps_setup(NBDExport *exp, BlockDriverState *bs,
                              BlockDirtyBitmapOrStrList *bitmaps,
                              Error **errp);
void nbd_export_bitmaps_release(NBDExport *exp);
/*
 * Build the BLOCK_STATUS reply of a request (chunks for every selected
 * context) into @iov/@buffers; returns 0 or -errno for an error reply.
 */
typedef struct NBDBlockStatusReply {
    uint32_t context_id;
    uint32_t *descs;         /* big-endian (length, flags) pairs */
    size_t nr_extents;
} NBDBlockStatusReply;
int coroutine_fn nbd_co_block_status(NBDClient *client, uint64_t offset,
                                     uint32_t length, bool req_one,
                                     NBDBlockStatusReply **replies,
                                     size_t *nr_replies);
/* Whether [offset, offset + *pnum) reads as zeroes (sparse READ) */
int coroutine_fn nbd_co_zero_status(NBDExport *exp, int64_t offset,
                                    int64_t bytes, int64_t *pnum,
                                    bool *is_zero);

/* Wire helpers (server-handshake.c) */
int coroutine_fn nbd_opt_read(NBDClient *client, void *buf, uint32_t len,
                              Error **errp);
int coroutine_fn nbd_opt_drop(NBDClient *client, Error **errp);
int coroutine_fn nbd_send_rep(NBDClient *client, uint32_t type,
                              const void *data, uint32_t len, Error **errp);
int coroutine_fn nbd_send_rep_err(NBDClient *client, uint32_t type,
                                  Error **errp, const char *fmt, ...)
    QEMU_PRINTF(4, 5);
/* Drop the rest of the option and reply with an error */
int coroutine_fn nbd_opt_invalid(NBDClient *client, uint32_t type,
                                 Error **errp, const char *fmt, ...)
    QEMU_PRINTF(4, 5);

static inline void stw_be(void *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, 2);
}

static inline void stl_be(void *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static inline void stq_be(void *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static inline uint16_t ldw_be(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return GUINT16_FROM_BE(v);
}

static inline uint32_t ldl_be(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static inline uint64_t ldq_be(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

#endif /* NBD_INTERNAL_H */
