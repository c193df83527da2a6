/*
 * NBD client: the transmission phase.
 *
 * A request runs in its caller's coroutine: it takes one of the
 * NBD_MAX_REQUESTS slots (waiting on free_slots when all are busy), sends
 * its header and payload under send_lock, and yields until its reply is
 * complete.  One reader coroutine owns the read side of the socket for
 * the connection's whole life: it reads each reply header, finds the slot
 * by handle and consumes the payload itself -- READ data goes straight
 * into the caller's QEMUIOVector, holes are zero-filled, BLOCK_STATUS
 * keeps the first extent of each context, error chunks record the first
 * error -- and wakes the requester when the reply is done (simple reply,
 * or a chunk with NBD_REPLY_FLAG_DONE).  Because the reader never waits
 * for a requester, a slow caller cannot stall the others.
 *
 * Anything the reader cannot make sense of (bad magic, unknown handle,
 * chunk outside the request, structured reply that was not negotiated)
 * breaks the connection, like EOF or an I/O error does: the socket is
 * shut down, every pending request fails with -EIO and so does every
 * later one.  Nothing is freed until nbd_conn_close(), which waits for the
 * reader to finish.
 */
#include "qemu/osdep.h"
#include "nbd/nbd-internal.h"
#include "qemu/iov.h"
#include "qemu/sockets.h"
#include "qemu/trace.h"

typedef struct NBDClientRequest {
    bool in_use;
    bool done;
    uint64_t handle;
    uint16_t type;
    uint64_t offset;
    uint32_t length;
    QEMUIOVector *qiov;          /* READ: destination */
    size_t qiov_offset;
    Coroutine *co;               /* yielded waiting for the reply */
    int ret;                     /* first error of the reply */
    uint64_t received;           /* READ: bytes of data/holes received */
    NBDExtent base;
    NBDExtent depth;
} NBDClientRequest;

struct NBDConn {
    CoChannel *ch;
    AioContext *ctx;
    NBDExportInfo info;
    CoMutex send_lock;
    CoQueue free_slots;
    NBDClientRequest reqs[NBD_MAX_REQUESTS];
    unsigned in_flight;
    uint64_t next_handle;
    bool reader_running;
    Coroutine *close_waiter;
    bool broken;
};

const NBDExportInfo *nbd_conn_info(NBDConn *conn)
{
    return &conn->info;
}

bool nbd_conn_is_broken(NBDConn *conn)
{
    return conn->broken;
}

unsigned nbd_conn_in_flight(NBDConn *conn)
{
    return conn->in_flight;
}

/* ---- the reader ---- */

static void nbd_conn_complete(NBDClientRequest *req)
{
    req->done = true;
    if (req->co) {
        Coroutine *co = req->co;

        req->co = NULL;
        aio_co_wake(co);
    }
}

/* Mark the connection dead and fail every request still waiting */
static void nbd_conn_set_broken(NBDConn *conn)
{
    int i;

    if (!conn->broken) {
        trace(nbd_client_broken, "conn %p in flight %u", conn,
              conn->in_flight);
    }
    conn->broken = true;
    co_channel_shutdown(conn->ch);
    for (i = 0; i < NBD_MAX_REQUESTS; i++) {
        NBDClientRequest *req = &conn->reqs[i];

        if (req->in_use && !req->done) {
            req->ret = -EIO;
            nbd_conn_complete(req);
        }
    }
    qemu_co_queue_restart_all(&conn->free_slots);
}

static NBDClientRequest *nbd_conn_find(NBDConn *conn, uint64_t handle)
{
    int i;

    for (i = 0; i < NBD_MAX_REQUESTS; i++) {
        NBDClientRequest *req = &conn->reqs[i];

        if (req->in_use && !req->done && req->handle == handle) {
            return req;
        }
    }
    return NULL;
}

/* Read @len bytes into @qiov at @offset */
static int coroutine_fn nbd_read_qiov(CoChannel *ch, QEMUIOVector *qiov,
                                      size_t offset, size_t len,
                                      Error **errp)
{
    int i;

    for (i = 0; i < qiov->niov && len; i++) {
        struct iovec *v = &qiov->iov[i];
        size_t n;

        if (offset >= v->iov_len) {
            offset -= v->iov_len;
            continue;
        }
        n = MIN(len, v->iov_len - offset);
        if (co_channel_read_all(ch, (uint8_t *)v->iov_base + offset, n,
                                errp) < 0) {
            return -1;
        }
        offset = 0;
        len -= n;
    }
    assert(len == 0);
    return 0;
}

/* Check that a data/hole chunk lies inside the READ request */
static bool nbd_chunk_in_request(NBDClientRequest *req, uint64_t offset,
                                 uint64_t len, Error **errp)
{
    if (offset < req->offset || len > req->length ||
        offset - req->offset > req->length - len) {
        error_setg(errp, "Protocol error: server sent chunk [%" PRIu64
                   ", +%" PRIu64 ") outside the request [%" PRIu64
                   ", +%" PRIu32 ")", offset, len, req->offset,
                   req->length);
        return false;
    }
    return true;
}

static int coroutine_fn nbd_reply_error_chunk(NBDConn *conn,
                                              NBDClientRequest *req,
                                              uint16_t type, uint32_t len,
                                              Error **errp)
{
    uint8_t hdr[6];
    g_autofree char *msg = NULL;
    uint32_t err;
    uint16_t msglen;
    uint64_t rest;

    if (len < sizeof(hdr)) {
        error_setg(errp, "Protocol error: error chunk too short");
        return -1;
    }
    if (co_channel_read_all(conn->ch, hdr, sizeof(hdr), errp) < 0) {
        return -1;
    }
    err = ldl_be(hdr);
    msglen = ldw_be(hdr + 4);
    if (msglen > len - sizeof(hdr)) {
        error_setg(errp, "Protocol error: error message too long");
        return -1;
    }
    msg = g_malloc0(msglen + 1);
    if (co_channel_read_all(conn->ch, msg, msglen, errp) < 0) {
        return -1;
    }
    rest = len - sizeof(hdr) - msglen;
    if (type == NBD_REPLY_TYPE_ERROR_OFFSET && rest != 8) {
        error_setg(errp, "Protocol error: bad error offset chunk");
        return -1;
    }
    if (co_channel_skip(conn->ch, rest, errp) < 0) {
        return -1;
    }
    if (err == 0) {
        error_setg(errp, "Protocol error: error chunk without an error");
        return -1;
    }
    trace(nbd_client_error_chunk, "handle %" PRIu64 " type %s err %"
          PRIu32 " (%s) '%s'", req->handle, nbd_reply_type_lookup(type),
          err, nbd_err_lookup(err), msg);
    if (req->ret == 0) {
        req->ret = -nbd_wire_to_errno(err);
    }
    return 0;
}

static int coroutine_fn nbd_reply_block_status(NBDConn *conn,
                                               NBDClientRequest *req,
                                               uint32_t len, Error **errp)
{
    uint8_t buf[12];
    uint32_t id;
    NBDExtent *ext = NULL;

    if (req->type != NBD_CMD_BLOCK_STATUS || len < 12 || (len - 4) % 8) {
        error_setg(errp, "Protocol error: unexpected block status chunk");
        return -1;
    }
    if (co_channel_read_all(conn->ch, buf, 12, errp) < 0 ||
        co_channel_skip(conn->ch, len - 12, errp) < 0) {
        return -1;
    }
    id = ldl_be(buf);
    if (conn->info.base_allocation && id == conn->info.base_allocation_id) {
        ext = &req->base;
    } else if (conn->info.allocation_depth &&
               id == conn->info.allocation_depth_id) {
        ext = &req->depth;
    } else {
        error_setg(errp, "Protocol error: block status for unknown context "
                   "%" PRIu32, id);
        return -1;
    }
    if (ext->length) {
        error_setg(errp, "Protocol error: duplicate block status for "
                   "context %" PRIu32, id);
        return -1;
    }
    ext->length = ldl_be(buf + 4);
    ext->flags = ldl_be(buf + 8);
    if (ext->length == 0) {
        error_setg(errp, "Protocol error: zero-length extent");
        return -1;
    }
    /* a server may describe a little more than asked; clamp */
    ext->length = MIN(ext->length, req->length);
    return 0;
}

/* One structured chunk; 0 = consumed, -1 = protocol/I/O error */
static int coroutine_fn nbd_reply_chunk(NBDConn *conn, Error **errp)
{
    uint8_t hdr[NBD_STRUCTURED_HDR_SIZE - 4];
    uint16_t flags, type;
    uint64_t handle;
    uint32_t len;
    NBDClientRequest *req;

    if (co_channel_read_all(conn->ch, hdr, sizeof(hdr), errp) < 0) {
        return -1;
    }
    flags = ldw_be(hdr);
    type = ldw_be(hdr + 2);
    handle = ldq_be(hdr + 4);
    len = ldl_be(hdr + 12);
    trace(nbd_client_chunk, "handle %" PRIu64 " flags 0x%x type %u (%s) "
          "len %" PRIu32, handle, flags, type, nbd_reply_type_lookup(type),
          len);
    if (!conn->info.structured_reply) {
        error_setg(errp, "Protocol error: structured reply without "
                   "negotiation");
        return -1;
    }
    req = nbd_conn_find(conn, handle);
    if (!req) {
        error_setg(errp, "Protocol error: reply for unknown handle %"
                   PRIu64, handle);
        return -1;
    }

    switch (type) {
    case NBD_REPLY_TYPE_NONE:
        if (len || !(flags & NBD_REPLY_FLAG_DONE)) {
            error_setg(errp, "Protocol error: bad NONE chunk");
            return -1;
        }
        break;
    case NBD_REPLY_TYPE_OFFSET_DATA: {
        uint8_t off[8];
        uint64_t offset;

        if (req->type != NBD_CMD_READ || len <= 8) {
            error_setg(errp, "Protocol error: unexpected data chunk");
            return -1;
        }
        if (co_channel_read_all(conn->ch, off, 8, errp) < 0) {
            return -1;
        }
        offset = ldq_be(off);
        if (!nbd_chunk_in_request(req, offset, len - 8, errp) ||
            nbd_read_qiov(conn->ch, req->qiov,
                          req->qiov_offset + (offset - req->offset),
                          len - 8, errp) < 0) {
            return -1;
        }
        req->received += len - 8;
        break;
    }
    case NBD_REPLY_TYPE_OFFSET_HOLE: {
        uint8_t buf[12];
        uint64_t offset;
        uint32_t hole;

        if (req->type != NBD_CMD_READ || len != 12) {
            error_setg(errp, "Protocol error: unexpected hole chunk");
            return -1;
        }
        if (co_channel_read_all(conn->ch, buf, 12, errp) < 0) {
            return -1;
        }
        offset = ldq_be(buf);
        hole = ldl_be(buf + 8);
        if (!hole || !nbd_chunk_in_request(req, offset, hole, errp)) {
            if (!hole) {
                error_setg(errp, "Protocol error: empty hole chunk");
            }
            return -1;
        }
        qemu_iovec_memset(req->qiov, req->qiov_offset +
                          (offset - req->offset), 0, hole);
        req->received += hole;
        break;
    }
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (nbd_reply_block_status(conn, req, len, errp) < 0) {
            return -1;
        }
        break;
    default:
        if (!(type & NBD_REPLY_ERR(0))) {
            error_setg(errp, "Protocol error: unknown chunk type %u", type);
            return -1;
        }
        if (nbd_reply_error_chunk(conn, req, type, len, errp) < 0) {
            return -1;
        }
        break;
    }

    if (flags & NBD_REPLY_FLAG_DONE) {
        if (req->ret == 0 && req->type == NBD_CMD_READ &&
            req->received < req->length) {
            error_setg(errp, "Protocol error: server sent %" PRIu64
                       " of %" PRIu32 " bytes of a read", req->received,
                       req->length);
            return -1;
        }
        if (req->ret == 0 && req->type == NBD_CMD_BLOCK_STATUS &&
            !req->base.length && !req->depth.length) {
            error_setg(errp, "Protocol error: no block status in reply");
            return -1;
        }
        nbd_conn_complete(req);
    }
    return 0;
}

static int coroutine_fn nbd_reply_simple(NBDConn *conn, Error **errp)
{
    uint8_t hdr[NBD_SIMPLE_REPLY_SIZE - 4];
    uint32_t err;
    uint64_t handle;
    NBDClientRequest *req;

    if (co_channel_read_all(conn->ch, hdr, sizeof(hdr), errp) < 0) {
        return -1;
    }
    err = ldl_be(hdr);
    handle = ldq_be(hdr + 4);
    trace(nbd_client_simple_reply, "handle %" PRIu64 " err %" PRIu32,
          handle, err);
    req = nbd_conn_find(conn, handle);
    if (!req) {
        error_setg(errp, "Protocol error: reply for unknown handle %"
                   PRIu64, handle);
        return -1;
    }
    if (err) {
        req->ret = -nbd_wire_to_errno(err);
    } else if (req->type == NBD_CMD_BLOCK_STATUS) {
        error_setg(errp, "Protocol error: simple reply to block status");
        return -1;
    } else if (req->type == NBD_CMD_READ) {
        if (conn->info.structured_reply) {
            error_setg(errp, "Protocol error: simple reply to a read with "
                       "structured replies negotiated");
            return -1;
        }
        if (nbd_read_qiov(conn->ch, req->qiov, req->qiov_offset,
                          req->length, errp) < 0) {
            return -1;
        }
    }
    nbd_conn_complete(req);
    return 0;
}

static void coroutine_fn nbd_conn_reader(void *opaque)
{
    NBDConn *conn = opaque;
    Error *err = NULL;
    Coroutine *waiter;

    while (!conn->broken) {
        uint8_t magic[4];
        int ret = co_channel_read_all_eof(conn->ch, magic, 4, &err);

        if (ret <= 0) {
            break;
        }
        switch (ldl_be(magic)) {
        case NBD_SIMPLE_REPLY_MAGIC:
            ret = nbd_reply_simple(conn, &err);
            break;
        case NBD_STRUCTURED_REPLY_MAGIC:
            ret = nbd_reply_chunk(conn, &err);
            break;
        default:
            error_setg(&err, "Protocol error: invalid reply magic 0x%"
                       PRIx32, ldl_be(magic));
            ret = -1;
            break;
        }
        if (ret < 0) {
            break;
        }
    }
    if (err) {
        trace(nbd_client_reader_error, "conn %p: %s", conn,
              error_get_pretty(err));
        error_free(err);
    }
    nbd_conn_set_broken(conn);
    conn->reader_running = false;
    waiter = conn->close_waiter;
    conn->close_waiter = NULL;
    if (waiter) {
        aio_co_wake(waiter);
    }
}

/* ---- requests ---- */

static int coroutine_fn nbd_conn_co_request(NBDConn *conn, uint16_t type,
                                            uint16_t flags, uint64_t offset,
                                            uint32_t length,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            NBDClientRequest *result)
{
    NBDClientRequest *req = NULL;
    uint8_t hdr[NBD_REQUEST_SIZE];
    QEMUIOVector out;
    int i, ret;

    while (!conn->broken && conn->in_flight >= NBD_MAX_REQUESTS) {
        qemu_co_queue_wait(&conn->free_slots, NULL);
    }
    if (conn->broken) {
        return -EIO;
    }
    for (i = 0; i < NBD_MAX_REQUESTS; i++) {
        if (!conn->reqs[i].in_use) {
            req = &conn->reqs[i];
            break;
        }
    }
    assert(req);
    *req = (NBDClientRequest) {
        .in_use = true,
        .handle = ++conn->next_handle,
        .type = type,
        .offset = offset,
        .length = length,
        .qiov = type == NBD_CMD_READ ? qiov : NULL,
        .qiov_offset = qiov_offset,
    };
    conn->in_flight++;
    trace(nbd_client_request, "handle %" PRIu64 " %s flags 0x%x offset %"
          PRIu64 " len %" PRIu32, req->handle, nbd_cmd_lookup(type), flags,
          offset, length);

    stl_be(hdr, NBD_REQUEST_MAGIC);
    stw_be(hdr + 4, flags);
    stw_be(hdr + 6, type);
    stq_be(hdr + 8, req->handle);
    stq_be(hdr + 16, offset);
    stl_be(hdr + 24, length);
    qemu_iovec_init(&out, 2 + (qiov ? qiov->niov : 0));
    qemu_iovec_add(&out, hdr, sizeof(hdr));
    if (type == NBD_CMD_WRITE) {
        qemu_iovec_concat(&out, qiov, qiov_offset, length);
    }
    qemu_co_mutex_lock(&conn->send_lock);
    if (conn->broken) {
        ret = -1;
    } else {
        ret = co_channel_writev_all(conn->ch, out.iov, out.niov, NULL);
    }
    qemu_co_mutex_unlock(&conn->send_lock);
    qemu_iovec_destroy(&out);
    if (ret < 0) {
        nbd_conn_set_broken(conn);
    }

    while (!req->done) {
        req->co = qemu_coroutine_self();
        qemu_coroutine_yield();
    }
    ret = req->ret;
    if (result) {
        *result = *req;
    }
    trace(nbd_client_request_done, "handle %" PRIu64 " ret %d", req->handle,
          ret);
    req->in_use = false;
    conn->in_flight--;
    qemu_co_queue_next(&conn->free_slots);
    return ret;
}

/* Range and alignment checks common to data commands */
static int nbd_conn_check(NBDConn *conn, uint64_t offset, uint64_t bytes,
                          bool needs_write)
{
    NBDExportInfo *info = &conn->info;

    if (conn->broken) {
        return -EIO;
    }
    if (needs_write && (info->flags & NBD_FLAG_READ_ONLY)) {
        return -EACCES;
    }
    if ((offset | bytes) % info->min_block) {
        return -EINVAL;
    }
    if (offset > info->size || bytes > info->size - offset) {
        return -EINVAL;
    }
    return 0;
}

int coroutine_fn nbd_conn_co_read(NBDConn *conn, uint64_t offset,
                                  uint32_t bytes, QEMUIOVector *qiov,
                                  size_t qiov_offset, uint16_t flags)
{
    int ret = nbd_conn_check(conn, offset, bytes, false);

    if (ret < 0) {
        return ret;
    }
    if (bytes > conn->info.max_block) {
        return -EINVAL;
    }
    if (!bytes) {
        return 0;
    }
    assert(qiov_offset + bytes <= qiov->size);
    if (!conn->info.structured_reply) {
        flags &= ~NBD_CMD_FLAG_DF;
    }
    return nbd_conn_co_request(conn, NBD_CMD_READ, flags, offset, bytes,
                               qiov, qiov_offset, NULL);
}

int coroutine_fn nbd_conn_co_write(NBDConn *conn, uint64_t offset,
                                   uint32_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, uint16_t flags)
{
    int ret = nbd_conn_check(conn, offset, bytes, true);

    if (ret < 0) {
        return ret;
    }
    if (bytes > conn->info.max_block) {
        return -EINVAL;
    }
    if ((flags & NBD_CMD_FLAG_FUA) &&
        !(conn->info.flags & NBD_FLAG_SEND_FUA)) {
        return -ENOTSUP;
    }
    if (!bytes) {
        return 0;
    }
    assert(qiov_offset + bytes <= qiov->size);
    return nbd_conn_co_request(conn, NBD_CMD_WRITE, flags, offset, bytes,
                               qiov, qiov_offset, NULL);
}

int coroutine_fn nbd_conn_co_write_zeroes(NBDConn *conn, uint64_t offset,
                                          uint32_t bytes, uint16_t flags)
{
    uint16_t eflags = conn->info.flags;
    int ret = nbd_conn_check(conn, offset, bytes, true);

    if (ret < 0) {
        return ret;
    }
    if (!(eflags & NBD_FLAG_SEND_WRITE_ZEROES) ||
        ((flags & NBD_CMD_FLAG_FUA) && !(eflags & NBD_FLAG_SEND_FUA)) ||
        ((flags & NBD_CMD_FLAG_FAST_ZERO) &&
         !(eflags & NBD_FLAG_SEND_FAST_ZERO))) {
        return -ENOTSUP;
    }
    if (!bytes) {
        return 0;
    }
    return nbd_conn_co_request(conn, NBD_CMD_WRITE_ZEROES, flags, offset,
                               bytes, NULL, 0, NULL);
}

int coroutine_fn nbd_conn_co_trim(NBDConn *conn, uint64_t offset,
                                  uint32_t bytes, uint16_t flags)
{
    int ret = nbd_conn_check(conn, offset, bytes, true);

    if (ret < 0) {
        return ret;
    }
    if (!(conn->info.flags & NBD_FLAG_SEND_TRIM) ||
        ((flags & NBD_CMD_FLAG_FUA) &&
         !(conn->info.flags & NBD_FLAG_SEND_FUA))) {
        return -ENOTSUP;
    }
    if (!bytes) {
        return 0;
    }
    return nbd_conn_co_request(conn, NBD_CMD_TRIM, flags, offset, bytes,
                               NULL, 0, NULL);
}

int coroutine_fn nbd_conn_co_flush(NBDConn *conn)
{
    if (conn->broken) {
        return -EIO;
    }
    if (!(conn->info.flags & NBD_FLAG_SEND_FLUSH)) {
        /* the server has nothing to flush */
        return 0;
    }
    return nbd_conn_co_request(conn, NBD_CMD_FLUSH, 0, 0, 0, NULL, 0, NULL);
}

int coroutine_fn nbd_conn_co_block_status(NBDConn *conn, uint64_t offset,
                                          uint32_t bytes, NBDExtent *base,
                                          NBDExtent *depth)
{
    NBDClientRequest result;
    int ret = nbd_conn_check(conn, offset, bytes, false);

    if (ret < 0) {
        return ret;
    }
    if (!conn->info.base_allocation && !conn->info.allocation_depth) {
        return -ENOTSUP;
    }
    if (!bytes) {
        return -EINVAL;
    }
    ret = nbd_conn_co_request(conn, NBD_CMD_BLOCK_STATUS,
                              NBD_CMD_FLAG_REQ_ONE, offset, bytes, NULL, 0,
                              &result);
    if (ret < 0) {
        return ret;
    }
    if (base) {
        *base = result.base;
    }
    if (depth) {
        *depth = result.depth;
    }
    return 0;
}

/* ---- lifecycle ---- */

NBDConn *coroutine_fn nbd_conn_co_new(int fd, AioContext *ctx,
                                      const NBDClientOptions *opts,
                                      Error **errp)
{
    CoChannel *ch = co_channel_new(fd, ctx);
    NBDConn *conn = g_new0(NBDConn, 1);
    Coroutine *reader;

    if (nbd_receive_negotiate(ch, opts, &conn->info, errp) < 0) {
        nbd_export_info_clear(&conn->info);
        co_channel_free(ch);
        g_free(conn);
        return NULL;
    }
    conn->ch = ch;
    conn->ctx = ctx;
    qemu_co_mutex_init(&conn->send_lock);
    qemu_co_queue_init(&conn->free_slots);
    conn->reader_running = true;
    reader = qemu_coroutine_create(nbd_conn_reader, conn);
    aio_co_enter(ctx, reader);
    return conn;
}

typedef struct NBDConnNewCo {
    int fd;
    AioContext *ctx;
    const NBDClientOptions *opts;
    Error **errp;
    NBDConn *conn;
} NBDConnNewCo;

static void coroutine_fn nbd_conn_new_entry(void *opaque)
{
    NBDConnNewCo *s = opaque;

    s->conn = nbd_conn_co_new(s->fd, s->ctx, s->opts, s->errp);
}

NBDConn *nbd_conn_new(int fd, AioContext *ctx, const NBDClientOptions *opts,
                      Error **errp)
{
    NBDConnNewCo s = { .fd = fd, .ctx = ctx, .opts = opts, .errp = errp };

    qemu_co_run_sync(nbd_conn_new_entry, &s);
    return s.conn;
}

NBDConn *nbd_conn_connect(SocketAddress *addr, AioContext *ctx,
                          const NBDClientOptions *opts, Error **errp)
{
    int fd = socket_connect(addr, errp);

    if (fd < 0) {
        return NULL;
    }
    return nbd_conn_new(fd, ctx, opts, errp);
}

static void coroutine_fn nbd_conn_close_entry(void *opaque)
{
    NBDConn *conn = opaque;

    assert(conn->in_flight == 0);
    if (!conn->broken) {
        uint8_t hdr[NBD_REQUEST_SIZE] = { 0 };

        trace(nbd_client_disconnect, "conn %p", conn);
        stl_be(hdr, NBD_REQUEST_MAGIC);
        stw_be(hdr + 6, NBD_CMD_DISC);
        stq_be(hdr + 8, ++conn->next_handle);
        qemu_co_mutex_lock(&conn->send_lock);
        co_channel_write_all(conn->ch, hdr, sizeof(hdr), NULL);
        qemu_co_mutex_unlock(&conn->send_lock);
    }
    co_channel_shutdown(conn->ch);
    while (conn->reader_running) {
        conn->close_waiter = qemu_coroutine_self();
        qemu_coroutine_yield();
    }
}

void nbd_conn_close(NBDConn *conn)
{
    if (!conn) {
        return;
    }
    qemu_co_run_sync(nbd_conn_close_entry, conn);
    co_channel_free(conn->ch);
    nbd_export_info_clear(&conn->info);
    g_free(conn);
}
