/*
 * The "nbd" protocol driver: a block node backed by an NBD export.
 *
 * Options (QAPI BlockdevOptionsNbd): server (SocketAddress: unix path,
 * inet host/port, fd), export (default ""), reconnect-delay and
 * open-timeout (accepted for compatibility: this client neither retries
 * the first connection nor reconnects -- a lost connection fails the
 * pending and all later requests with EIO at once, which is what QEMU
 * does with the default reconnect-delay of 0), tls-creds, tls-hostname
 * and x-dirty-bitmap (refused: blockd has no TLS credentials objects,
 * so tls-creds fails as QEMU fails for an unknown object id; there is no
 * bitmap-as-allocation mode).
 *
 * Filenames, as QEMU spells them:
 *   nbd://HOST[:PORT]/EXPORT          (also nbd+tcp://)
 *   nbd+unix:///EXPORT?socket=PATH
 *   nbd:HOST:PORT[:exportname=EXPORT]
 *   nbd:unix:PATH[:exportname=EXPORT]
 * An empty EXPORT is the default export "".
 *
 * The connection (nbd/client*.c) negotiates structured replies and
 * base:allocation; the node's limits come from the server's block size
 * constraints, so every request the generic layer passes down is aligned
 * to the export's minimum block size and no larger than its maximum.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/nbd.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"
#include "qemu/trace.h"

/* Requests without payload carry a 32-bit length */
#define NBD_MAX_NOPAYLOAD_REQUEST   (2 * GiB)

typedef struct BDRVNBDState {
    NBDConn *conn;
    SocketAddress *saddr;
    char *export;
    uint32_t reconnect_delay;
    uint32_t open_timeout;
} BDRVNBDState;

/* ---- filenames ---- */

static bool nbd_parse_uri(const char *filename, json_t *options,
                          Error **errp)
{
    g_autoptr(GUri) uri = NULL;
    g_autoptr(GHashTable) params = NULL;
    const char *scheme, *path, *query, *host;
    json_t *server = json_object();
    bool is_unix;
    GError *gerr = NULL;

    json_object_set_new(options, "server", server);
    uri = g_uri_parse(filename, G_URI_FLAGS_ENCODED_PATH |
                      G_URI_FLAGS_ENCODED_QUERY, &gerr);
    if (!uri) {
        error_setg(errp, "Invalid NBD URI '%s': %s", filename,
                   gerr->message);
        g_error_free(gerr);
        return false;
    }
    scheme = g_uri_get_scheme(uri);
    if (!strcmp(scheme, "nbd") || !strcmp(scheme, "nbd+tcp")) {
        is_unix = false;
    } else if (!strcmp(scheme, "nbd+unix")) {
        is_unix = true;
    } else {
        error_setg(errp, "Invalid NBD URI scheme '%s'", scheme);
        return false;
    }

    path = g_uri_get_path(uri);
    if (path && *path) {
        g_autofree char *export = NULL;

        if (path[0] != '/') {
            error_setg(errp, "Invalid NBD URI '%s': bad export", filename);
            return false;
        }
        export = g_uri_unescape_string(path + 1, NULL);
        if (!export) {
            error_setg(errp, "Invalid NBD URI '%s': bad export", filename);
            return false;
        }
        if (*export) {
            json_object_set_new(options, "export", json_string(export));
        }
    }

    query = g_uri_get_query(uri);
    host = g_uri_get_host(uri);
    if (is_unix) {
        const char *sock;

        if (host && *host) {
            error_setg(errp, "Invalid NBD URI '%s': nbd+unix takes no host",
                       filename);
            return false;
        }
        params = query ? g_uri_parse_params(query, -1, "&",
                                            G_URI_PARAMS_NONE, NULL)
                       : NULL;
        sock = params ? g_hash_table_lookup(params, "socket") : NULL;
        if (!sock || g_hash_table_size(params) != 1) {
            error_setg(errp, "Invalid NBD URI '%s': nbd+unix needs exactly "
                       "the parameter 'socket'", filename);
            return false;
        }
        json_object_set_new(server, "type", json_string("unix"));
        json_object_set_new(server, "path", json_string(sock));
    } else {
        g_autofree char *port = NULL;

        if (query) {
            error_setg(errp, "Invalid NBD URI '%s': no parameters allowed",
                       filename);
            return false;
        }
        if (!host || !*host) {
            host = "localhost";
        }
        port = g_strdup_printf("%d", g_uri_get_port(uri) > 0
                               ? g_uri_get_port(uri) : NBD_DEFAULT_PORT);
        json_object_set_new(server, "type", json_string("inet"));
        json_object_set_new(server, "host", json_string(host));
        json_object_set_new(server, "port", json_string(port));
    }
    return true;
}

/* nbd:unix:PATH[:exportname=E] and nbd:HOST:PORT[:exportname=E] */
static bool nbd_parse_legacy(const char *filename, json_t *options,
                             Error **errp)
{
    g_autofree char *spec = g_strdup(filename + strlen("nbd:"));
    json_t *server = json_object();
    char *export = strstr(spec, ":exportname=");

    json_object_set_new(options, "server", server);
    if (export) {
        *export = '\0';
        export += strlen(":exportname=");
        json_object_set_new(options, "export", json_string(export));
    }
    if (g_str_has_prefix(spec, "unix:")) {
        json_object_set_new(server, "type", json_string("unix"));
        json_object_set_new(server, "path",
                            json_string(spec + strlen("unix:")));
    } else {
        char *colon = strrchr(spec, ':');

        if (!colon || colon == spec || !colon[1]) {
            error_setg(errp, "No valid URL specified");
            return false;
        }
        *colon = '\0';
        json_object_set_new(server, "type", json_string("inet"));
        json_object_set_new(server, "host", json_string(spec));
        json_object_set_new(server, "port", json_string(colon + 1));
    }
    return true;
}

static bool nbd_parse_name(const char *filename, json_t *options,
                           Error **errp)
{
    if (strstr(filename, "://")) {
        return nbd_parse_uri(filename, options, errp);
    }
    if (g_str_has_prefix(filename, "nbd:")) {
        return nbd_parse_legacy(filename, options, errp);
    }
    error_setg(errp, "No valid URL specified");
    return false;
}

static void nbd_parse_filename(const char *filename, json_t *options,
                               Error **errp)
{
    nbd_parse_name(filename, options, errp);
}

/* ---- open/close ---- */

static void nbd_close(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    nbd_conn_close(s->conn);
    s->conn = NULL;
    qapi_free_SocketAddress(s->saddr);
    s->saddr = NULL;
    g_clear_pointer(&s->export, g_free);
}

static SocketAddress *nbd_get_server(json_t *options, Error **errp)
{
    static const char *const types[] = { "inet", "unix", "vsock", "fd",
                                         NULL };
    g_autoptr(SocketAddress) addr = g_new0(SocketAddress, 1);
    bool present;
    int type = -1;

    if (!bdrv_opt_get_enum(options, "server.type", types, &type, &present,
                           errp)) {
        return NULL;
    }
    if (!present) {
        error_setg(errp, "Parameter 'server.type' is missing");
        return NULL;
    }
    switch (type) {
    case 0:
        addr->type = SOCKET_ADDRESS_TYPE_INET;
        if (!bdrv_opt_get_str(options, "server.host", &addr->u.inet.host,
                              NULL, errp) ||
            !bdrv_opt_get_str(options, "server.port", &addr->u.inet.port,
                              NULL, errp)) {
            return NULL;
        }
        if (!addr->u.inet.host) {
            error_setg(errp, "Parameter 'server.host' is missing");
            return NULL;
        }
        if (!addr->u.inet.port) {
            addr->u.inet.port = g_strdup_printf("%d", NBD_DEFAULT_PORT);
        }
        break;
    case 1:
        addr->type = SOCKET_ADDRESS_TYPE_UNIX;
        if (!bdrv_opt_get_str(options, "server.path", &addr->u.q_unix.path,
                              NULL, errp)) {
            return NULL;
        }
        if (!addr->u.q_unix.path) {
            error_setg(errp, "Parameter 'server.path' is missing");
            return NULL;
        }
        break;
    case 3:
        addr->type = SOCKET_ADDRESS_TYPE_FD;
        if (!bdrv_opt_get_str(options, "server.str", &addr->u.fd.str, NULL,
                              errp)) {
            return NULL;
        }
        if (!addr->u.fd.str) {
            error_setg(errp, "Parameter 'server.str' is missing");
            return NULL;
        }
        break;
    default:
        error_setg(errp, "Socket address type 'vsock' is not supported");
        return NULL;
    }
    return g_steal_pointer(&addr);
}

static int nbd_do_open(BlockDriverState *bs, json_t *options, int flags,
                       Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    NBDClientOptions copts = { .base_allocation = true };
    g_autofree char *filename = NULL;
    g_autofree char *tls = NULL;
    g_autofree char *tls_host = NULL;
    g_autofree char *bitmap = NULL;
    uint64_t reconnect = 0, open_timeout = 0;
    bool has_fn = false;
    const NBDExportInfo *info;

    if (!bdrv_opt_get_str(options, "filename", &filename, &has_fn, errp)) {
        return -EINVAL;
    }
    if (has_fn) {
        if (json_object_get(options, "server") ||
            json_object_get(options, "export")) {
            error_setg(errp, "No 'server' or 'export' options may be given "
                       "together with a filename");
            return -EINVAL;
        }
        if (!nbd_parse_name(filename, options, errp)) {
            return -EINVAL;
        }
    }
    if (!bdrv_opt_get_str(options, "export", &s->export, NULL, errp) ||
        !bdrv_opt_get_str(options, "tls-creds", &tls, NULL, errp) ||
        !bdrv_opt_get_str(options, "tls-hostname", &tls_host, NULL, errp) ||
        !bdrv_opt_get_str(options, "x-dirty-bitmap", &bitmap, NULL, errp) ||
        !bdrv_opt_get_uint(options, "reconnect-delay", &reconnect, NULL,
                           errp) ||
        !bdrv_opt_get_uint(options, "open-timeout", &open_timeout, NULL,
                           errp)) {
        return -EINVAL;
    }
    if (tls) {
        /* blockd has no TLS credentials objects, so none can be found */
        error_setg(errp, "No TLS credentials with id '%s'", tls);
        return -ENOTSUP;
    }
    if (tls_host) {
        error_setg(errp, "tls-hostname is not supported by the blockd NBD "
                   "client");
        return -ENOTSUP;
    }
    if (bitmap) {
        error_setg(errp, "x-dirty-bitmap is not supported by the blockd NBD "
                   "client");
        return -ENOTSUP;
    }
    if (reconnect > UINT32_MAX || open_timeout > UINT32_MAX) {
        error_setg(errp, "Parameter '%s' expects uint32_t",
                   reconnect > UINT32_MAX ? "reconnect-delay"
                                          : "open-timeout");
        return -EINVAL;
    }
    s->reconnect_delay = reconnect;
    s->open_timeout = open_timeout;
    s->saddr = nbd_get_server(options, errp);
    if (!s->saddr) {
        return -EINVAL;
    }
    /* leftovers such as server.foo are reported by the generic layer */

    copts.export_name = s->export;
    s->conn = nbd_conn_connect(s->saddr, qemu_get_aio_context(), &copts,
                               errp);
    if (!s->conn) {
        return -EIO;
    }
    info = nbd_conn_info(s->conn);
    if ((info->flags & NBD_FLAG_READ_ONLY) && (flags & BDRV_O_RDWR)) {
        /* worded as qemu-io reports a read-only NBD export */
        error_setg_errno(errp, EACCES, "Could not open image");
        return -EACCES;
    }
    if (info->flags & NBD_FLAG_SEND_FUA) {
        bs->supported_write_flags = BDRV_REQ_FUA;
        bs->supported_zero_flags |= BDRV_REQ_FUA;
    }
    if (info->flags & NBD_FLAG_SEND_WRITE_ZEROES) {
        bs->supported_zero_flags |= BDRV_REQ_MAY_UNMAP;
        if (info->flags & NBD_FLAG_SEND_FAST_ZERO) {
            bs->supported_zero_flags |= BDRV_REQ_NO_FALLBACK;
        }
    }
    trace(nbd_open, "bs %p export '%s' size %" PRIu64 " flags 0x%x", bs,
          info->name, info->size, info->flags);
    return 0;
}

/* The generic layer calls .bdrv_close only after a successful open */
static int nbd_open(BlockDriverState *bs, json_t *options, int flags,
                    Error **errp)
{
    int ret = nbd_do_open(bs, options, flags, errp);

    if (ret < 0) {
        nbd_close(bs);
    }
    return ret;
}


static void nbd_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    const NBDExportInfo *info = nbd_conn_info(s->conn);
    uint32_t min = info->min_block;
    int64_t max_nopayload = QEMU_ALIGN_DOWN(NBD_MAX_NOPAYLOAD_REQUEST - 1,
                                            (int64_t)min);

    bs->bl.request_alignment = min;
    bs->bl.max_transfer = QEMU_ALIGN_DOWN(MIN(info->max_block,
                                              NBD_MAX_BUFFER_SIZE), min);
    bs->bl.opt_transfer = info->opt_block;
    bs->bl.max_pwrite_zeroes = max_nopayload;
    bs->bl.max_pdiscard = max_nopayload;
    bs->bl.pwrite_zeroes_alignment = min;
    bs->bl.pdiscard_alignment = min;
}

/* ---- I/O ---- */

static int coroutine_fn nbd_co_preadv(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      BdrvRequestFlags flags)
{
    BDRVNBDState *s = bs->opaque;
    size_t done = 0;

    while (done < bytes) {
        uint32_t n = MIN(bytes - done, (uint64_t)bs->bl.max_transfer);
        int ret = nbd_conn_co_read(s->conn, offset + done, n, qiov, done, 0);

        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int coroutine_fn nbd_co_pwritev(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    BDRVNBDState *s = bs->opaque;
    uint16_t nflags = (flags & BDRV_REQ_FUA) ? NBD_CMD_FLAG_FUA : 0;
    size_t done = 0;

    while (done < bytes) {
        uint32_t n = MIN(bytes - done, (uint64_t)bs->bl.max_transfer);
        int ret = nbd_conn_co_write(s->conn, offset + done, n, qiov, done,
                                    nflags);

        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int coroutine_fn nbd_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVNBDState *s = bs->opaque;
    uint16_t eflags = nbd_conn_info(s->conn)->flags;
    uint16_t nflags = 0;

    if (!(eflags & NBD_FLAG_SEND_WRITE_ZEROES)) {
        return -ENOTSUP;
    }
    if (flags & BDRV_REQ_FUA) {
        nflags |= NBD_CMD_FLAG_FUA;
    }
    if (!(flags & BDRV_REQ_MAY_UNMAP)) {
        nflags |= NBD_CMD_FLAG_NO_HOLE;
    }
    if (flags & BDRV_REQ_NO_FALLBACK) {
        if (!(eflags & NBD_FLAG_SEND_FAST_ZERO)) {
            return -ENOTSUP;
        }
        nflags |= NBD_CMD_FLAG_FAST_ZERO;
    }
    assert(bytes <= bs->bl.max_pwrite_zeroes);
    return nbd_conn_co_write_zeroes(s->conn, offset, bytes, nflags);
}

static int coroutine_fn nbd_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVNBDState *s = bs->opaque;

    if (!(nbd_conn_info(s->conn)->flags & NBD_FLAG_SEND_TRIM)) {
        return -ENOTSUP;
    }
    assert(bytes <= bs->bl.max_pdiscard);
    return nbd_conn_co_trim(s->conn, offset, bytes, 0);
}

static int coroutine_fn nbd_co_flush(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    return nbd_conn_co_flush(s->conn);
}

static int coroutine_fn nbd_co_block_status(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVNBDState *s = bs->opaque;
    const NBDExportInfo *info = nbd_conn_info(s->conn);
    NBDExtent ext = { 0 };
    int64_t len;
    int ret;

    *map = offset;
    *file = bs;
    if (!info->base_allocation) {
        /* no block status from this server: all data */
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    len = MIN(bytes, bs->bl.max_pdiscard);
    if (offset + len > (int64_t)info->size) {
        len = info->size - offset;
    }
    ret = nbd_conn_co_block_status(s->conn, offset, len, &ext, NULL);
    if (ret < 0) {
        return ret;
    }
    if (!ext.length) {
        return -EIO;
    }
    *pnum = MIN((int64_t)ext.length, len);
    if (*pnum < len && *pnum > info->min_block) {
        /* keep the answer aligned, as the generic layer expects */
        *pnum = QEMU_ALIGN_DOWN(*pnum, (int64_t)info->min_block);
    }
    return ((ext.flags & NBD_STATE_HOLE) ? 0 : BDRV_BLOCK_DATA) |
           ((ext.flags & NBD_STATE_ZERO) ? BDRV_BLOCK_ZERO : 0) |
           BDRV_BLOCK_OFFSET_VALID;
}

static int64_t coroutine_fn nbd_co_getlength(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    return nbd_conn_info(s->conn)->size;
}

static void nbd_dump_info(BlockDriverState *bs, GString *out)
{
    BDRVNBDState *s = bs->opaque;
    const NBDExportInfo *info = nbd_conn_info(s->conn);
    g_autofree char *addr = socket_address_to_string(s->saddr);

    g_string_append_printf(out, "server: %s\nexport: '%s'\n"
                           "structured replies: %s\n"
                           "block status: %s\n", addr, info->name,
                           info->structured_reply ? "on" : "off",
                           info->base_allocation ? "on" : "off");
}

/*
 * One driver per URI scheme (the generic layer matches "PROTO:" prefixes);
 * all are the "nbd" format, which bdrv_find_format() finds first.
 */
#define NBD_DRIVER_COMMON                                       \
    .format_name = "nbd",                                       \
    .instance_size = sizeof(BDRVNBDState),                      \
    .bdrv_parse_filename = nbd_parse_filename,                  \
    .bdrv_open = nbd_open,                                      \
    .bdrv_close = nbd_close,                                    \
    .bdrv_refresh_limits = nbd_refresh_limits,                  \
    .bdrv_co_preadv = nbd_co_preadv,                            \
    .bdrv_co_pwritev = nbd_co_pwritev,                          \
    .bdrv_co_pwrite_zeroes = nbd_co_pwrite_zeroes,              \
    .bdrv_co_pdiscard = nbd_co_pdiscard,                        \
    .bdrv_co_flush_to_disk = nbd_co_flush,                      \
    .bdrv_co_block_status = nbd_co_block_status,                \
    .bdrv_co_getlength = nbd_co_getlength,                      \
    .bdrv_dump_info = nbd_dump_info

BlockDriver bdrv_nbd = {
    NBD_DRIVER_COMMON,
    .protocol_name = "nbd",
};

BlockDriver bdrv_nbd_tcp = {
    NBD_DRIVER_COMMON,
    .protocol_name = "nbd+tcp",
};

BlockDriver bdrv_nbd_unix = {
    NBD_DRIVER_COMMON,
    .protocol_name = "nbd+unix",
};
