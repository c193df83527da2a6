/*
 * NBD server: exports, client lifecycle, transmission phase.
 *
 * Lifecycle of a client (see nbd-internal.h): nbd_client_new() schedules
 * the client's main coroutine.  It runs the handshake (bounded by the
 * handshake timer, which shuts the channel down when it fires), then the
 * request loop.  The loop reads a request header and, for WRITE, its
 * payload, then validates it: the payload is always consumed first, so a
 * rejected request leaves the stream in sync and gets an error reply
 * instead of a disconnect.  Only a bad request magic, a read error/EOF or
 * NBD_CMD_DISC end the loop.
 *
 * Each valid (or error-carrying) request runs in its own coroutine; at
 * most NBD_MAX_REQUESTS run at once (the loop waits for a slot).  A
 * reply is written whole under send_lock.  In structured mode READ
 * answers with OFFSET_DATA/OFFSET_HOLE chunks (holes only where block
 * status says zero AND the data read is zero, so the reply always
 * matches what was read; DF asks for one data chunk), errors with
 * ERROR/ERROR_OFFSET chunks that carry a message, every other command
 * with a NONE chunk.
 *
 * Zero-copy READ data: when the export's node is a file (driver "file",
 * or "raw" without an offset/size window directly over one), opened
 * without O_DIRECT and not the target of a backup job (whose captured
 * clusters must be read from the job), the data of READ replies is not
 * read into a buffer: after the header goes out through the channel, a
 * thread-pool worker sendfile()s the range from the image's descriptor
 * into the socket, which since Linux 6.5 passes page-cache pages by
 * reference (no copy in the server at all).  Holes still become
 * OFFSET_HOLE chunks, decided from block status alone (file holes are
 * exact).  The worker blocks on the file and polls the non-blocking
 * socket for at most NBD_SPLICE_POLL_MS at a time; whatever it did not
 * send (stalled client, file error, EOF) is read through the block layer
 * and written from a buffer, so the stream stays in sync; if that fails
 * too, the client is closed (the header is already out).  The request
 * keeps both nodes in flight, so drain and export removal wait for it
 * and the descriptor stays open.  exp->splice_bytes counts the bytes.
 *
 * Exports: an NBDExport is a BlockExport (block/export.c keeps the id,
 * the BlockBackend and the refcount).  Each client in transmission holds
 * a reference.  request_shutdown takes the export off the name table and
 * closes its clients; the last reference frees it.
 */
#include "qemu/osdep.h"
#include "nbd/nbd-internal.h"
#include "qemu/memalign.h"
#include "qemu/cutils.h"
#include "qemu/trace.h"
#include "block/block_int.h"
#include "block/block-copy.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/sendfile.h>

typedef struct NBDRequestData {
    NBDClient *client;
    uint16_t type;
    uint16_t flags;
    uint64_t cookie;
    uint64_t from;
    uint32_t len;
    void *data;              /* READ/WRITE buffer (qemu_vfree) */
    int error;               /* wire error decided at receive time */
    char *errmsg;
} NBDRequestData;

static GList *nbd_exports;   /* live NBDExports, by name */
static GList *nbd_clients;   /* every NBDClient alive */

/* ---- exports ---- */

GList *nbd_export_list(void)
{
    return nbd_exports;
}

NBDExport *nbd_export_find(const char *name)
{
    GList *l;

    for (l = nbd_exports; l; l = l->next) {
        NBDExport *exp = l->data;
        if (strcmp(exp->name, name) == 0 && !exp->shutting_down) {
            return exp;
        }
    }
    return NULL;
}

BlockExport *nbd_export_get_blockexport(NBDExport *exp)
{
    return &exp->common;
}

unsigned nbd_export_client_count(NBDExport *exp)
{
    return g_list_length(exp->clients);
}

int64_t nbd_export_size(NBDExport *exp)
{
    return exp->size;
}

static int nbd_export_create(BlockExport *blk_exp, BlockExportOptions *opts,
                             Error **errp)
{
    NBDExport *exp = container_of(blk_exp, NBDExport, common);
    BlockExportOptionsNbd *arg = &opts->u.nbd;
    const char *name = arg->name ? arg->name : opts->node_name;
    BlockBackend *blk = blk_exp->blk;
    bool writable = opts->has_writable && opts->writable;
    int64_t size;

    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return -EINVAL;
    }
    if (strlen(name) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "export name '%s' too long", name);
        return -EINVAL;
    }
    if (arg->description && strlen(arg->description) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "description '%s' too long", arg->description);
        return -EINVAL;
    }
    if (nbd_export_find(name)) {
        error_setg(errp, "NBD server already has export named '%s'", name);
        return -EEXIST;
    }
    size = blk_getlength(blk);
    if (size < 0) {
        error_setg_errno(errp, -size,
                         "Failed to determine the NBD export's length");
        return size;
    }

    exp->name = g_strdup(name);
    exp->description = g_strdup(arg->description);
    exp->size = size;
    exp->allocation_depth = arg->has_allocation_depth &&
                            arg->allocation_depth;
    exp->writethrough = opts->has_writethrough && opts->writethrough;
    exp->nbdflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_CACHE;
    if (writable) {
        exp->nbdflags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                         NBD_FLAG_SEND_FAST_ZERO;
    } else {
        exp->nbdflags |= NBD_FLAG_READ_ONLY | NBD_FLAG_CAN_MULTI_CONN;
    }
    if (!nbd_export_bitmaps_setup(exp, blk_bs(blk), arg->bitmaps, errp)) {
        if (exp->nr_bitmaps) {
            nbd_export_bitmaps_release(exp);
        }
        g_free(exp->name);
        g_free(exp->description);
        g_free(exp->bitmaps);
        return -EINVAL;
    }
    nbd_exports = g_list_append(nbd_exports, exp);
    trace(nbd_export_create, "name %s size %" PRId64 " flags 0x%x",
          exp->name, size, exp->nbdflags);
    return 0;
}

static void nbd_export_request_shutdown(BlockExport *blk_exp)
{
    NBDExport *exp = container_of(blk_exp, NBDExport, common);
    g_autoptr(GList) clients = g_list_copy(exp->clients);
    GList *l;

    trace(nbd_export_request_shutdown, "name %s", exp->name);
    exp->shutting_down = true;
    nbd_exports = g_list_remove(nbd_exports, exp);
    /* Selections made for this export in handshakes become void */
    for (l = nbd_clients; l; l = l->next) {
        NBDClient *client = l->data;
        if (client->contexts.exp == exp) {
            nbd_meta_contexts_clear(&client->contexts);
        }
    }
    for (l = clients; l; l = l->next) {
        nbd_client_close(l->data);
    }
}

static void nbd_export_delete(BlockExport *blk_exp)
{
    NBDExport *exp = container_of(blk_exp, NBDExport, common);

    assert(!exp->clients);
    nbd_exports = g_list_remove(nbd_exports, exp);
    if (exp->nr_bitmaps) {
        nbd_export_bitmaps_release(exp);
    }
    g_free(exp->bitmaps);
    g_free(exp->name);
    g_free(exp->description);
}

const BlockExportDriver blk_exp_nbd = {
    .type = BLOCK_EXPORT_TYPE_NBD,
    .instance_size = sizeof(NBDExport),
    .create = nbd_export_create,
    .delete = nbd_export_delete,
    .request_shutdown = nbd_export_request_shutdown,
};

/* ---- replies ---- */

/* Write a whole reply; on failure the client is closed */
/*
 * READ/WRITE buffers.  Allocating a fresh buffer per request costs a
 * page fault and page clearing per 4 KiB (large allocations are fresh
 * mmaps), which showed up as a quarter of the daemon's time under
 * nbdcopy; recently freed buffers are kept for reuse instead.  All are
 * NBD_BUF_ALIGN-aligned, enough for any node whose preferred memory
 * alignment is not larger (others get a private allocation).
 */
#define NBD_BUF_ALIGN           4096
#define NBD_BUF_CACHE_MAX       32
#define NBD_BUF_CACHE_MAX_SIZE  (4 * MiB)
#define NBD_BUF_CACHE_MAX_BYTES (32 * MiB)

typedef struct NBDBuf {
    void *buf;
    size_t size;
} NBDBuf;

static NBDBuf nbd_buf_cache[NBD_BUF_CACHE_MAX];
static unsigned nbd_buf_cached;
static size_t nbd_buf_cached_bytes;

static void *nbd_buf_get(BlockDriverState *bs, size_t size)
{
    unsigned i;

    if (bdrv_opt_mem_align(bs) > NBD_BUF_ALIGN ||
        size > NBD_BUF_CACHE_MAX_SIZE) {
        return qemu_try_blockalign(bs, size);
    }
    for (i = 0; i < nbd_buf_cached; i++) {
        if (nbd_buf_cache[i].size == size) {
            void *buf = nbd_buf_cache[i].buf;

            nbd_buf_cached_bytes -= size;
            nbd_buf_cache[i] = nbd_buf_cache[--nbd_buf_cached];
            return buf;
        }
    }
    return qemu_try_memalign(NBD_BUF_ALIGN, size);
}

static void nbd_buf_put(void *buf, size_t size)
{
    if (!buf) {
        return;
    }
    if (size > NBD_BUF_CACHE_MAX_SIZE) {
        qemu_vfree(buf);
        return;
    }
    while (nbd_buf_cached == NBD_BUF_CACHE_MAX ||
           (nbd_buf_cached &&
            nbd_buf_cached_bytes + size > NBD_BUF_CACHE_MAX_BYTES)) {
        /* drop the oldest entry */
        nbd_buf_cached_bytes -= nbd_buf_cache[0].size;
        qemu_vfree(nbd_buf_cache[0].buf);
        memmove(nbd_buf_cache, nbd_buf_cache + 1,
                sizeof(NBDBuf) * (nbd_buf_cached - 1));
        nbd_buf_cached--;
    }
    nbd_buf_cache[nbd_buf_cached++] = (NBDBuf) { buf, size };
    nbd_buf_cached_bytes += size;
}

static int coroutine_fn nbd_co_send_iov(NBDClient *client,
                                        struct iovec *iov, int niov)
{
    Error *err = NULL;
    int ret;

    ret = co_channel_writev_all(client->ch, iov, niov, &err);
    if (ret < 0) {
        trace(nbd_co_send_fail, "client %p: %s", client,
              error_get_pretty(err));
        error_free(err);
        nbd_client_close(client);
        return -EIO;
    }
    return 0;
}

static void nbd_chunk_header(uint8_t *hdr, NBDRequestData *req,
                             uint16_t flags, uint16_t type, uint32_t len)
{
    stl_be(hdr, NBD_STRUCTURED_REPLY_MAGIC);
    stw_be(hdr + 4, flags);
    stw_be(hdr + 6, type);
    stq_be(hdr + 8, req->cookie);
    stl_be(hdr + 16, len);
}

/* Caller holds send_lock */
static int coroutine_fn nbd_co_send_simple(NBDRequestData *req, int error,
                                           void *data, uint32_t len)
{
    uint8_t hdr[NBD_SIMPLE_REPLY_SIZE];
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = data, .iov_len = len },
    };

    trace(nbd_co_send_simple_reply, "cookie %" PRIu64 " error %d len %"
          PRIu32, req->cookie, error, len);
    stl_be(hdr, NBD_SIMPLE_REPLY_MAGIC);
    stl_be(hdr + 4, error);
    stq_be(hdr + 8, req->cookie);
    return nbd_co_send_iov(req->client, iov, len ? 2 : 1);
}

/* Caller holds send_lock */
static int coroutine_fn nbd_co_send_chunk(NBDRequestData *req,
                                          uint16_t flags, uint16_t type,
                                          const void *payload,
                                          uint32_t payload_len,
                                          void *data, uint32_t data_len)
{
    uint8_t hdr[NBD_STRUCTURED_HDR_SIZE];
    struct iovec iov[3] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)payload, .iov_len = payload_len },
        { .iov_base = data, .iov_len = data_len },
    };

    trace(nbd_co_send_chunk, "cookie %" PRIu64 " type %s flags %u len %"
          PRIu32, req->cookie, nbd_reply_type_lookup(type), flags,
          payload_len + data_len);
    nbd_chunk_header(hdr, req, flags, type, payload_len + data_len);
    return nbd_co_send_iov(req->client, iov, 3);
}

/*
 * Caller holds send_lock: the header and payload of a chunk whose
 * @data_len bytes of data the caller sends next.
 */
static int coroutine_fn nbd_co_send_chunk_head(NBDRequestData *req,
                                               uint16_t flags, uint16_t type,
                                               const void *payload,
                                               uint32_t payload_len,
                                               uint32_t data_len)
{
    uint8_t hdr[NBD_STRUCTURED_HDR_SIZE];
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)payload, .iov_len = payload_len },
    };

    trace(nbd_co_send_chunk, "cookie %" PRIu64 " type %s flags %u len %"
          PRIu32, req->cookie, nbd_reply_type_lookup(type), flags,
          payload_len + data_len);
    nbd_chunk_header(hdr, req, flags, type, payload_len + data_len);
    return nbd_co_send_iov(req->client, iov, 2);
}

/* Caller holds send_lock: ERROR (or ERROR_OFFSET) chunk, final */
static int coroutine_fn nbd_co_send_chunk_error(NBDRequestData *req,
                                                int error, const char *msg,
                                                bool with_offset,
                                                uint64_t offset)
{
    size_t mlen = msg ? MIN(strlen(msg), NBD_MAX_STRING_SIZE) : 0;
    g_autofree uint8_t *payload = g_malloc(6 + mlen + 8);
    uint32_t plen = 6 + mlen;

    stl_be(payload, error);
    stw_be(payload + 4, mlen);
    memcpy(payload + 6, msg, mlen);
    if (with_offset) {
        stq_be(payload + 6 + mlen, offset);
        plen += 8;
    }
    trace(nbd_co_send_chunk_error, "cookie %" PRIu64 " error %s msg '%s'",
          req->cookie, nbd_err_lookup(error), msg ? msg : "");
    return nbd_co_send_chunk(req, NBD_REPLY_FLAG_DONE,
                             with_offset ? NBD_REPLY_TYPE_ERROR_OFFSET
                                         : NBD_REPLY_TYPE_ERROR,
                             payload, plen, NULL, 0);
}

/* A reply for a request without data: success or an error */
static int coroutine_fn nbd_co_send_result(NBDRequestData *req, int error,
                                           const char *msg)
{
    NBDClient *client = req->client;
    int ret;

    qemu_co_mutex_lock(&client->send_lock);
    if (!client->structured_reply) {
        ret = nbd_co_send_simple(req, error, NULL, 0);
    } else if (error) {
        ret = nbd_co_send_chunk_error(req, error, msg, false, 0);
    } else {
        ret = nbd_co_send_chunk(req, NBD_REPLY_FLAG_DONE,
                                NBD_REPLY_TYPE_NONE, NULL, 0, NULL, 0);
    }
    qemu_co_mutex_unlock(&client->send_lock);
    return ret;
}

/* ---- zero-copy READ data ---- */

/* How long a sendfile worker waits for a full socket before giving up */
#define NBD_SPLICE_POLL_MS 1000

/*
 * The file node whose descriptor the READ data of @exp can be sent from
 * with sendfile(), or NULL: the export's node is that file node, or a
 * "raw" node without an offset/size window (then its file child is a
 * filter child) directly over it; the file is opened without O_DIRECT;
 * neither node is the target of a backup job (a job may hold the
 * snapshot's data in memory, readers must go through it).  Anything else
 * (qcow2, blkdebug, nbd, filters, fleecing targets) reads into a buffer.
 * Decided per request: the graph, open flags and jobs change while an
 * export lives.
 */
static BlockDriverState *nbd_export_splice_node(NBDExport *exp)
{
    BlockDriverState *bs = blk_bs(exp->common.blk);
    BlockDriverState *file = bs;

    if (!bs || !bs->drv) {
        return NULL;
    }
    if (bs->drv == &bdrv_raw) {
        if (!bs->file || !(bs->file->role & BDRV_CHILD_FILTERED) ||
            block_copy_find_by_target(bs)) {
            return NULL;
        }
        file = bs->file->bs;
    }
    if (!file || file->drv != &bdrv_file ||
        (file->open_flags & BDRV_O_NOCACHE) || raw_file_fd(file) < 0 ||
        block_copy_find_by_target(file)) {
        return NULL;
    }
    return file;
}

typedef struct NBDSplice {
    int sockfd;
    int filefd;
    off_t offset;            /* file offset, advanced by sendfile */
    size_t len;
    size_t done;             /* bytes that went into the socket */
    int err;                 /* errno that stopped the worker, or 0 */
    bool eof;                /* the file ended before len */
} NBDSplice;

/*
 * Thread-pool worker: sendfile() until done, EOF, an error, or the socket
 * stays full for NBD_SPLICE_POLL_MS.  sendfile has no MSG_NOSIGNAL: a
 * SIGPIPE it raises is blocked in this thread and consumed, so the server
 * does not depend on the program ignoring SIGPIPE.
 */
static int nbd_splice_worker(void *opaque)
{
    NBDSplice *sp = opaque;
    sigset_t pipe_set, old_set, pending;
    bool was_pending;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);

    while (sp->done < sp->len) {
        ssize_t n = sendfile(sp->sockfd, sp->filefd, &sp->offset,
                             sp->len - sp->done);

        if (n > 0) {
            sp->done += n;
        } else if (n == 0) {
            sp->eof = true;
            break;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = { .fd = sp->sockfd, .events = POLLOUT };
            int r = poll(&pfd, 1, NBD_SPLICE_POLL_MS);

            if (r < 0 && errno != EINTR) {
                sp->err = errno;
                break;
            } else if (r == 0) {
                sp->err = ETIMEDOUT;
                break;
            } else if (r > 0 && !(pfd.revents & POLLOUT)) {
                sp->err = EPIPE;
                break;
            }
        } else if (errno != EINTR) {
            sp->err = errno;
            break;
        }
    }

    if (!was_pending) {
        struct timespec zero = { 0, 0 };

        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    return 0;
}

/*
 * Caller holds send_lock and has sent a header that announces @len data
 * bytes at @offset: send them from @file's descriptor.  What sendfile did
 * not send is read through the block layer and sent from a buffer; if
 * that fails the client is closed.  0 or -EIO.
 */
static int coroutine_fn nbd_co_splice_data(NBDRequestData *req,
                                           BlockDriverState *file,
                                           uint64_t offset, uint32_t len)
{
    NBDClient *client = req->client;
    NBDExport *exp = client->exp;
    NBDSplice sp = {
        .sockfd = co_channel_fd(client->ch),
        .filefd = raw_file_fd(file),
        .offset = offset,
        .len = len,
    };
    uint32_t rest;
    struct iovec iov;
    void *buf;
    int ret;

    if (co_channel_is_shutdown(client->ch)) {
        return -EIO;
    }
    thread_pool_submit_co(nbd_splice_worker, &sp);
    exp->splice_bytes += sp.done;
    trace(nbd_co_send_read_splice, "cookie %" PRIu64 " offset %" PRIu64
          " len %" PRIu32 " sent %zu err %d eof %d", req->cookie, offset,
          len, sp.done, sp.err, sp.eof);
    if (sp.done == len) {
        return 0;
    }
    if (co_channel_is_shutdown(client->ch) || sp.err == EPIPE ||
        sp.err == ECONNRESET || sp.err == ENOTCONN) {
        nbd_client_close(client);
        return -EIO;
    }

    /* Stalled client, file error or EOF: the rest from a buffer */
    rest = len - sp.done;
    buf = nbd_buf_get(blk_bs(exp->common.blk), rest);
    ret = buf ? blk_co_pread(exp->common.blk, offset + sp.done, rest, buf, 0)
              : -ENOMEM;
    if (ret < 0) {
        trace(nbd_co_send_read_splice_fail, "cookie %" PRIu64 " offset %"
              PRIu64 ": %s", req->cookie, offset + sp.done,
              g_strerror(-ret));
        nbd_buf_put(buf, rest);
        nbd_client_close(client);
        return -EIO;
    }
    iov = (struct iovec) { .iov_base = buf, .iov_len = rest };
    ret = nbd_co_send_iov(client, &iov, 1);
    nbd_buf_put(buf, rest);
    return ret;
}

/*
 * If READ data of req can go by sendfile, the file node to send it from,
 * with it and the export's node counted in flight (nbd_splice_end()).
 */
static BlockDriverState *coroutine_fn nbd_co_splice_begin(NBDRequestData *req)
{
    NBDExport *exp = req->client->exp;
    BlockDriverState *file;

    if (!req->len || !nbd_export_splice_node(exp)) {
        return NULL;
    }
    /* Wait while the node is drained, as a read through it would */
    if (blk_co_pread(exp->common.blk, req->from, 0, NULL, 0) < 0) {
        return NULL;
    }
    file = nbd_export_splice_node(exp);
    if (file) {
        bdrv_inc_in_flight(blk_bs(exp->common.blk));
        if (file != blk_bs(exp->common.blk)) {
            bdrv_inc_in_flight(file);
        }
    }
    return file;
}

static void nbd_splice_end(NBDRequestData *req, BlockDriverState *file)
{
    BlockDriverState *bs = blk_bs(req->client->exp->common.blk);

    if (file != bs) {
        bdrv_dec_in_flight(file);
    }
    bdrv_dec_in_flight(bs);
}

/* ---- commands ---- */

typedef struct NBDReadChunk {
    bool hole;
    uint64_t offset;
    uint32_t len;
} NBDReadChunk;

/* READ reply; with @splice, its data go by sendfile from that node */
static int coroutine_fn nbd_co_send_read_reply(NBDRequestData *req,
                                               BlockDriverState *splice)
{
    NBDClient *client = req->client;
    NBDExport *exp = client->exp;
    g_autofree NBDReadChunk *chunks = NULL;
    size_t nchunks = 0, alloc = 0, i;
    uint64_t off, end = req->from + req->len;
    int ret = 0;

    if (!splice && req->len) {
        if (!req->data) {
            req->data = nbd_buf_get(blk_bs(exp->common.blk), req->len);
        }
        ret = req->data ? blk_co_pread(exp->common.blk, req->from, req->len,
                                       req->data, 0)
                        : -ENOMEM;
    }
    if (ret < 0) {
        g_autofree char *msg = g_strdup_printf("reading from file failed: "
                                               "%s", g_strerror(-ret));
        int err = nbd_errno_to_wire(ret);

        qemu_co_mutex_lock(&client->send_lock);
        if (client->structured_reply) {
            ret = nbd_co_send_chunk_error(req, err, msg, true, req->from);
        } else {
            ret = nbd_co_send_simple(req, err, NULL, 0);
        }
        qemu_co_mutex_unlock(&client->send_lock);
        return ret;
    }
    if (!client->structured_reply) {
        qemu_co_mutex_lock(&client->send_lock);
        if (splice) {
            ret = nbd_co_send_simple(req, 0, NULL, 0);
            if (ret == 0) {
                ret = nbd_co_splice_data(req, splice, req->from, req->len);
            }
        } else {
            ret = nbd_co_send_simple(req, 0, req->data, req->len);
        }
        qemu_co_mutex_unlock(&client->send_lock);
        return ret;
    }
    if (req->len == 0) {
        return nbd_co_send_result(req, 0, NULL);
    }

    /*
     * Split into data and hole chunks unless the client said DF.  With a
     * buffer, a hole must also read as zero (block status of some
     * drivers is only a hint); file holes are exact.
     */
    for (off = req->from; off < end;) {
        int64_t pnum = end - off;
        bool zero = false;

        if (!(req->flags & NBD_CMD_FLAG_DF) &&
            nbd_co_zero_status(exp, off, end - off, &pnum, &zero) < 0) {
            pnum = end - off;
            zero = false;
        }
        if (pnum <= 0) {
            pnum = end - off;
            zero = false;
        }
        pnum = MIN((uint64_t)pnum, end - off);
        if (!splice) {
            zero = zero && buffer_is_zero((uint8_t *)req->data +
                                          (off - req->from), pnum);
        }
        if (nchunks && chunks[nchunks - 1].hole == zero) {
            chunks[nchunks - 1].len += pnum;
        } else {
            if (nchunks == alloc) {
                alloc = alloc ? alloc * 2 : 8;
                chunks = g_renew(NBDReadChunk, chunks, alloc);
            }
            chunks[nchunks++] = (NBDReadChunk) {
                .hole = zero, .offset = off, .len = pnum,
            };
        }
        off += pnum;
    }

    qemu_co_mutex_lock(&client->send_lock);
    for (i = 0; i < nchunks && ret == 0; i++) {
        uint8_t payload[12];
        uint16_t flags = i + 1 == nchunks ? NBD_REPLY_FLAG_DONE : 0;

        stq_be(payload, chunks[i].offset);
        if (chunks[i].hole) {
            stl_be(payload + 8, chunks[i].len);
            ret = nbd_co_send_chunk(req, flags, NBD_REPLY_TYPE_OFFSET_HOLE,
                                    payload, 12, NULL, 0);
        } else if (splice) {
            ret = nbd_co_send_chunk_head(req, flags,
                                         NBD_REPLY_TYPE_OFFSET_DATA,
                                         payload, 8, chunks[i].len);
            if (ret == 0) {
                ret = nbd_co_splice_data(req, splice, chunks[i].offset,
                                         chunks[i].len);
            }
        } else {
            ret = nbd_co_send_chunk(req, flags, NBD_REPLY_TYPE_OFFSET_DATA,
                                    payload, 8, (uint8_t *)req->data +
                                    (chunks[i].offset - req->from),
                                    chunks[i].len);
        }
    }
    qemu_co_mutex_unlock(&client->send_lock);
    return ret;
}

static int coroutine_fn nbd_co_send_read(NBDRequestData *req)
{
    BlockDriverState *splice = nbd_co_splice_begin(req);
    int ret = nbd_co_send_read_reply(req, splice);

    if (splice) {
        nbd_splice_end(req, splice);
    }
    return ret;
}

static int coroutine_fn nbd_co_send_block_status(NBDRequestData *req)
{
    NBDClient *client = req->client;
    NBDBlockStatusReply *replies = NULL;
    size_t n = 0, i;
    int ret;

    ret = nbd_co_block_status(client, req->from, req->len,
                              req->flags & NBD_CMD_FLAG_REQ_ONE,
                              &replies, &n);
    if (ret < 0) {
        g_autofree char *msg = g_strdup_printf("can't get block status: %s",
                                               g_strerror(-ret));
        return nbd_co_send_result(req, nbd_errno_to_wire(ret), msg);
    }
    qemu_co_mutex_lock(&client->send_lock);
    for (i = 0; i < n && ret == 0; i++) {
        uint8_t id[4];

        stl_be(id, replies[i].context_id);
        ret = nbd_co_send_chunk(req, i + 1 == n ? NBD_REPLY_FLAG_DONE : 0,
                                NBD_REPLY_TYPE_BLOCK_STATUS, id, 4,
                                replies[i].descs,
                                replies[i].nr_extents * 8);
    }
    qemu_co_mutex_unlock(&client->send_lock);
    for (i = 0; i < n; i++) {
        g_free(replies[i].descs);
    }
    g_free(replies);
    return ret;
}

static int coroutine_fn nbd_co_cache(NBDRequestData *req)
{
    BlockBackend *blk = req->client->exp->common.blk;
    uint64_t off = req->from, end = req->from + req->len;
    size_t bufsize = MIN(req->len, 1 * MiB);
    void *buf;
    int ret = 0;

    if (!req->len) {
        return 0;
    }
    buf = qemu_try_blockalign(blk_bs(blk), bufsize);
    if (!buf) {
        return -ENOMEM;
    }
    while (off < end && ret >= 0) {
        uint64_t n = MIN(end - off, bufsize);
        ret = blk_co_pread(blk, off, n, buf, 0);
        off += n;
    }
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

static void coroutine_fn nbd_co_handle_request(NBDRequestData *req)
{
    NBDClient *client = req->client;
    NBDExport *exp = client->exp;
    BlockBackend *blk = exp->common.blk;
    BdrvRequestFlags flags = 0;
    const char *what = NULL;
    int ret;

    if (req->error) {
        nbd_co_send_result(req, req->error, req->errmsg);
        return;
    }
    if ((req->flags & NBD_CMD_FLAG_FUA) || exp->writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    switch (req->type) {
    case NBD_CMD_READ:
        nbd_co_send_read(req);
        return;
    case NBD_CMD_BLOCK_STATUS:
        nbd_co_send_block_status(req);
        return;
    case NBD_CMD_WRITE:
        ret = req->len ? blk_co_pwrite(blk, req->from, req->len, req->data,
                                       flags) : 0;
        what = "writing to file failed";
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (!(req->flags & NBD_CMD_FLAG_NO_HOLE)) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        if (req->flags & NBD_CMD_FLAG_FAST_ZERO) {
            flags |= BDRV_REQ_NO_FALLBACK;
        }
        ret = req->len ? blk_co_pwrite_zeroes(blk, req->from, req->len,
                                              flags) : 0;
        what = "writing to file failed";
        break;
    case NBD_CMD_TRIM:
        ret = req->len ? blk_co_pdiscard(blk, req->from, req->len) : 0;
        if (ret >= 0 && (flags & BDRV_REQ_FUA)) {
            ret = blk_co_flush(blk);
        }
        what = "discard failed";
        break;
    case NBD_CMD_FLUSH:
        ret = blk_co_flush(blk);
        what = "flush failed";
        break;
    case NBD_CMD_CACHE:
        ret = nbd_co_cache(req);
        what = "caching data failed";
        break;
    default:
        g_assert_not_reached();
    }
    if (ret < 0) {
        g_autofree char *msg = g_strdup_printf("%s: %s", what,
                                               g_strerror(-ret));
        nbd_co_send_result(req, nbd_errno_to_wire(ret), msg);
    } else {
        nbd_co_send_result(req, 0, NULL);
    }
}

static void nbd_client_wake_main(NBDClient *client)
{
    if (client->waiting_for_requests) {
        client->waiting_for_requests = false;
        aio_co_schedule(client->ctx, client->main_co);
    }
}

static void coroutine_fn nbd_co_request_entry(void *opaque)
{
    NBDRequestData *req = opaque;
    NBDClient *client = req->client;

    trace(nbd_co_request, "cookie %" PRIu64 " %s flags 0x%x from %" PRIu64
          " len %" PRIu32, req->cookie, nbd_cmd_lookup(req->type),
          req->flags, req->from, req->len);
    nbd_co_handle_request(req);
    nbd_buf_put(req->data, req->len);
    g_free(req->errmsg);
    g_free(req);
    client->nb_requests--;
    nbd_client_wake_main(client);
}

/* ---- receiving requests ---- */

static void nbd_req_fail(NBDRequestData *req, int error, const char *fmt,
                         ...) QEMU_PRINTF(3, 4);

static void nbd_req_fail(NBDRequestData *req, int error, const char *fmt,
                         ...)
{
    va_list ap;

    if (req->error) {
        return;         /* the first problem found is reported */
    }
    req->error = error;
    va_start(ap, fmt);
    req->errmsg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace(nbd_request_invalid, "cookie %" PRIu64 " %s: %s", req->cookie,
          nbd_err_lookup(error), req->errmsg);
}

static void nbd_validate_request(NBDClient *client, NBDRequestData *req)
{
    NBDExport *exp = client->exp;
    uint16_t valid = NBD_CMD_FLAG_FUA;
    bool write_type = false, ranged = true;

    switch (req->type) {
    case NBD_CMD_READ:
        if (client->structured_reply) {
            valid |= NBD_CMD_FLAG_DF;
        }
        break;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
        write_type = true;
        break;
    case NBD_CMD_WRITE_ZEROES:
        valid |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
        write_type = true;
        break;
    case NBD_CMD_FLUSH:
        ranged = false;
        break;
    case NBD_CMD_CACHE:
        break;
    case NBD_CMD_BLOCK_STATUS:
        valid |= NBD_CMD_FLAG_REQ_ONE;
        if (!client->structured_reply) {
            nbd_req_fail(req, NBD_EINVAL, "block status requires "
                         "structured replies");
        } else if (client->contexts.count == 0) {
            nbd_req_fail(req, NBD_EINVAL, "no meta contexts negotiated");
        } else if (req->len == 0) {
            nbd_req_fail(req, NBD_EINVAL, "block status of zero bytes");
        }
        break;
    default:
        nbd_req_fail(req, NBD_EINVAL, "invalid request type (%" PRIu16
                     ") received", req->type);
        return;
    }
    if (req->flags & ~valid) {
        nbd_req_fail(req, NBD_EINVAL, "unsupported flags 0x%x for %s "
                     "(got 0x%x)", req->flags & ~valid,
                     nbd_cmd_lookup(req->type), req->flags);
    }
    if (write_type && (exp->nbdflags & NBD_FLAG_READ_ONLY)) {
        nbd_req_fail(req, NBD_EPERM, "export is read-only");
    }
    if (ranged && (req->from > (uint64_t)exp->size ||
                   req->len > (uint64_t)exp->size - req->from)) {
        nbd_req_fail(req, NBD_EINVAL, "operation past EOF; from: %" PRIu64
                     ", len: %" PRIu32 ", size: %" PRId64, req->from,
                     req->len, exp->size);
    }
}

/*
 * Read the next request: 0 = a request to run (possibly with an error to
 * report), 1 = NBD_CMD_DISC, -1 = drop the connection.
 */
static int coroutine_fn nbd_co_receive_request(NBDClient *client,
                                               NBDRequestData *req,
                                               Error **errp)
{
    uint8_t buf[NBD_REQUEST_SIZE];
    uint32_t magic;
    int ret;

    ret = co_channel_read_all_eof(client->ch, buf, sizeof(buf), errp);
    if (ret <= 0) {
        if (ret == 0) {
            error_setg(errp, "client closed the connection");
        }
        return -1;
    }
    magic = ldl_be(buf);
    if (magic != NBD_REQUEST_MAGIC) {
        error_setg(errp, "invalid magic (got 0x%" PRIx32 ")", magic);
        return -1;
    }
    req->flags = ldw_be(buf + 4);
    req->type = ldw_be(buf + 6);
    req->cookie = ldq_be(buf + 8);
    req->from = ldq_be(buf + 16);
    req->len = ldl_be(buf + 24);
    trace(nbd_co_receive_request, "cookie %" PRIu64 " type %s flags 0x%x "
          "from %" PRIu64 " len %" PRIu32, req->cookie,
          nbd_cmd_lookup(req->type), req->flags, req->from, req->len);

    if (req->type == NBD_CMD_DISC) {
        return 1;
    }
    if (req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) {
        if (req->len > NBD_MAX_BUFFER_SIZE) {
            nbd_req_fail(req, NBD_EOVERFLOW, "len (%" PRIu32 ") is larger "
                         "than max len (%u)", req->len,
                         (unsigned)NBD_MAX_BUFFER_SIZE);
        } else if (req->type == NBD_CMD_READ &&
                   nbd_export_splice_node(client->exp)) {
            /* sendfile likely: allocated when the reply needs one */
        } else {
            req->data = nbd_buf_get(blk_bs(client->exp->common.blk),
                                    req->len);
            if (!req->data) {
                nbd_req_fail(req, NBD_ENOMEM, "out of memory");
            }
        }
    }
    if (req->type == NBD_CMD_WRITE) {
        /* Consume the payload whatever happens next: stay in sync */
        if (req->data) {
            if (co_channel_read_all(client->ch, req->data, req->len,
                                    errp) < 0) {
                error_prepend(errp, "reading from socket failed: ");
                return -1;
            }
        } else if (co_channel_skip(client->ch, req->len, errp) < 0) {
            return -1;
        }
    }
    nbd_validate_request(client, req);
    return 0;
}

/* ---- clients ---- */

static void nbd_handshake_timeout(void *opaque)
{
    NBDClient *client = opaque;

    trace(nbd_handshake_timeout, "client %p", client);
    co_channel_shutdown(client->ch);
}

void nbd_client_close(NBDClient *client)
{
    if (client->closing) {
        return;
    }
    trace(nbd_client_close, "client %p", client);
    client->closing = true;
    co_channel_shutdown(client->ch);
    nbd_client_wake_main(client);
}

static void coroutine_fn nbd_client_request_loop(NBDClient *client)
{
    while (!client->closing) {
        g_autoptr(Error) err = NULL;
        NBDRequestData *req;
        Coroutine *co;
        int ret;

        if (client->nb_requests >= NBD_MAX_REQUESTS) {
            client->waiting_for_requests = true;
            qemu_coroutine_yield();
            continue;
        }
        req = g_new0(NBDRequestData, 1);
        req->client = client;
        ret = nbd_co_receive_request(client, req, &err);
        if (ret != 0) {
            if (ret < 0) {
                trace(nbd_client_drop, "client %p: %s", client,
                      error_get_pretty(err));
            } else {
                client->disc = true;
            }
            nbd_buf_put(req->data, req->len);
            g_free(req->errmsg);
            g_free(req);
            return;
        }
        client->nb_requests++;
        co = qemu_coroutine_create(nbd_co_request_entry, req);
        aio_co_enter(client->ctx, co);
    }
}

static void coroutine_fn nbd_client_co_main(void *opaque)
{
    NBDClient *client = opaque;
    g_autoptr(Error) err = NULL;
    NBDExport *exp;

    if (nbd_negotiate(client, &err) < 0) {
        trace(nbd_negotiate_fail, "client %p: %s", client,
              error_get_pretty(err));
        goto out;
    }
    timer_del(client->handshake_timer);
    exp = client->exp;
    if (client->closing || exp->shutting_down) {
        goto out;
    }
    client->negotiated = true;
    if (client->contexts.exp != exp) {
        nbd_meta_contexts_clear(&client->contexts);
    }
    exp->clients = g_list_append(exp->clients, client);
    trace(nbd_client_transmission, "client %p export %s", client,
          exp->name);
    nbd_client_request_loop(client);

out:
    /* After DISC, let requests in flight answer; otherwise hang up now */
    if (!client->disc) {
        nbd_client_close(client);
    }
    client->closing = true;
    while (client->nb_requests > 0) {
        client->waiting_for_requests = true;
        qemu_coroutine_yield();
    }
    co_channel_shutdown(client->ch);
    timer_free(client->handshake_timer);
    client->handshake_timer = NULL;
    if (client->exp) {
        client->exp->clients = g_list_remove(client->exp->clients, client);
        blk_exp_unref(&client->exp->common);
        client->exp = NULL;
    }
    nbd_meta_contexts_clear(&client->contexts);
    nbd_clients = g_list_remove(nbd_clients, client);
    trace(nbd_client_gone, "client %p", client);
    if (client->close_fn) {
        client->close_fn(client, client->negotiated);
    }
    co_channel_free(client->ch);
    g_free(client);
}

NBDClient *nbd_client_new(int fd, uint32_t handshake_max_secs,
                          void (*close_fn)(NBDClient *, bool),
                          void *owner)
{
    NBDClient *client = g_new0(NBDClient, 1);

    client->ctx = qemu_get_aio_context();
    client->ch = co_channel_new(fd, client->ctx);
    client->close_fn = close_fn;
    client->owner = owner;
    qemu_co_mutex_init(&client->send_lock);
    client->handshake_timer = aio_timer_new(client->ctx, QEMU_CLOCK_REALTIME,
                                            SCALE_NS, nbd_handshake_timeout,
                                            client);
    if (handshake_max_secs) {
        timer_mod(client->handshake_timer,
                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                  handshake_max_secs * NANOSECONDS_PER_SECOND);
    }
    nbd_clients = g_list_prepend(nbd_clients, client);
    client->main_co = qemu_coroutine_create(nbd_client_co_main, client);
    trace(nbd_client_new, "client %p fd %d", client, fd);
    aio_co_schedule(client->ctx, client->main_co);
    return client;
}

void nbd_client_close_owned(void *owner)
{
    g_autoptr(GList) clients = g_list_copy(nbd_clients);
    GList *l;

    for (l = clients; l; l = l->next) {
        NBDClient *client = l->data;
        if (client->owner == owner) {
            client->owner = NULL;
            client->close_fn = NULL;
            nbd_client_close(client);
        }
    }
}

void *nbd_client_owner(NBDClient *client)
{
    return client->owner;
}

unsigned nbd_client_count(void)
{
    return g_list_length(nbd_clients);
}
