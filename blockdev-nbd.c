/*
 * The NBD server socket and the nbd-server-* QMP commands.
 *
 * One server at a time (nbd-server-start / --nbd-server).  The listener
 * is an fd handler on the main AioContext that accepts clients and hands
 * them to nbd_client_new().  With max-connections, the listener is
 * unregistered while the limit is reached (new connections wait in the
 * kernel backlog) and registered again when a client leaves.
 *
 * nbd-server-add/-remove are the deprecated forms of block-export-add/
 * -del, mapped onto them as QEMU does (export id = NBD name; name
 * defaults to the device name; a read-only device is silently exported
 * read-only).
 */
#include "qemu/osdep.h"
#include "block/nbd.h"
#include "block/export.h"
#include "qemu/sockets.h"
#include "qemu/trace.h"
#include "qapi-commands.h"
#include "qapi-visit.h"
#include "qapi/qobject-input-visitor.h"
#include "qemu/keyval.h"

#include <sys/socket.h>

typedef struct NBDServerData {
    int listen_fd;
    SocketAddress *addr;
    AioContext *ctx;
    uint32_t max_connections;
    uint32_t handshake_max_secs;
    uint32_t connections;
    bool listening;
} NBDServerData;

static NBDServerData *nbd_server;

static void nbd_accept(void *opaque);

static void nbd_update_listener(NBDServerData *s)
{
    bool want = !s->max_connections || s->connections < s->max_connections;

    if (want != s->listening) {
        aio_set_fd_handler(s->ctx, s->listen_fd, want ? nbd_accept : NULL,
                           NULL, s);
        s->listening = want;
    }
}

static void nbd_blockdev_client_closed(NBDClient *client, bool ignored)
{
    NBDServerData *s = nbd_client_owner(client);

    assert(s == nbd_server);
    assert(s->connections > 0);
    s->connections--;
    nbd_update_listener(s);
}

static void nbd_accept(void *opaque)
{
    NBDServerData *s = opaque;
    int fd;

    fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED) {
            trace(nbd_accept_fail, "errno %d", errno);
        }
        return;
    }
    trace(nbd_accept, "fd %d connections %" PRIu32, fd, s->connections);
    s->connections++;
    nbd_update_listener(s);
    nbd_client_new(fd, s->handshake_max_secs, nbd_blockdev_client_closed, s);
}

bool nbd_server_is_running(void)
{
    return nbd_server != NULL;
}

int nbd_server_listen_fd(void)
{
    return nbd_server ? nbd_server->listen_fd : -1;
}

static void nbd_server_free(NBDServerData *s)
{
    if (s->listening) {
        aio_set_fd_handler(s->ctx, s->listen_fd, NULL, NULL, NULL);
    }
    socket_listen_cleanup(s->listen_fd, s->addr);
    qapi_free_SocketAddress(s->addr);
    g_free(s);
}

bool nbd_server_start(SocketAddress *addr, const char *tls_creds,
                      const char *tls_authz, uint32_t max_connections,
                      uint32_t handshake_max_secs, Error **errp)
{
    NBDServerData *s;
    int fd;

    if (nbd_server) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (tls_creds || tls_authz) {
        error_setg(errp, "TLS is not supported by blockd's NBD server");
        return false;
    }
    fd = socket_listen(addr, max_connections ? max_connections : SOMAXCONN,
                       errp);
    if (fd < 0) {
        return false;
    }
    s = g_new0(NBDServerData, 1);
    s->listen_fd = fd;
    s->addr = socket_address_copy(addr);
    s->ctx = qemu_get_aio_context();
    s->max_connections = max_connections;
    s->handshake_max_secs = handshake_max_secs;
    nbd_server = s;
    nbd_update_listener(s);
    trace(nbd_server_start, "fd %d max-connections %" PRIu32
          " handshake-max-seconds %" PRIu32, fd, max_connections,
          handshake_max_secs);
    return true;
}

bool nbd_server_start_options(NbdServerOptions *arg, Error **errp)
{
    return nbd_server_start(arg->addr, arg->tls_creds, arg->tls_authz,
                            arg->has_max_connections ?
                            arg->max_connections : 0,
                            arg->has_handshake_max_seconds ?
                            arg->handshake_max_seconds :
                            NBD_DEFAULT_HANDSHAKE_MAX_SECS, errp);
}

bool nbd_server_start_cmdline(const char *arg, Error **errp)
{
    bool is_json = false;
    g_autoptr(json_t) opts = keyval_or_json_parse_full(arg, NULL, &is_json,
                                                       errp);
    NbdServerOptions *options = NULL;
    Visitor *v;
    bool ok;

    if (!opts) {
        return false;
    }
    v = is_json ? qobject_input_visitor_new(opts)
                : qobject_input_visitor_new_keyval(opts);
    ok = visit_type_NbdServerOptions(v, NULL, &options, errp);
    visit_free(v);
    ok = ok && nbd_server_start_options(options, errp);
    qapi_free_NbdServerOptions(options);
    return ok;
}

void nbd_server_shutdown(void)
{
    NBDServerData *s = nbd_server;

    if (!s) {
        return;
    }
    blk_exp_close_all_type(BLOCK_EXPORT_TYPE_NBD);
    /* Clients still in the handshake */
    nbd_client_close_owned(s);
    nbd_server = NULL;
    nbd_server_free(s);
}

/* ---- QMP ---- */

void qmp_nbd_server_start(SocketAddressLegacy *addr, const char *tls_creds,
                          const char *tls_authz, bool has_max_connections,
                          uint32_t max_connections,
                          bool has_handshake_max_seconds,
                          uint32_t handshake_max_seconds, Error **errp)
{
    g_autoptr(SocketAddress) flat = socket_address_flatten(addr);

    nbd_server_start(flat, tls_creds, tls_authz,
                     has_max_connections ? max_connections : 0,
                     has_handshake_max_seconds ? handshake_max_seconds :
                     NBD_DEFAULT_HANDSHAKE_MAX_SECS, errp);
}

void qmp_nbd_server_stop(Error **errp)
{
    if (!nbd_server) {
        error_setg(errp, "NBD server not running");
        return;
    }
    nbd_server_shutdown();
}

void qmp_nbd_server_add(NbdServerAddOptions *arg, Error **errp)
{
    BlockExportOptions *opts;
    BlockDriverState *bs;
    BlockExport *exp;

    if (!nbd_server) {
        error_setg(errp, "NBD server not running");
        return;
    }
    bs = bdrv_lookup_bs(arg->device, arg->device, errp);
    if (!bs) {
        return;
    }
    opts = g_new0(BlockExportOptions, 1);
    opts->type = BLOCK_EXPORT_TYPE_NBD;
    opts->id = g_strdup(arg->name ? arg->name : arg->device);
    opts->node_name = g_strdup(bdrv_get_node_name(bs));
    opts->has_writable = arg->has_writable;
    opts->writable = arg->writable;
    opts->u.nbd.name = g_strdup(arg->name ? arg->name : arg->device);
    opts->u.nbd.description = g_strdup(arg->description);
    if (arg->bitmap) {
        BlockDirtyBitmapOrStr *b = g_new0(BlockDirtyBitmapOrStr, 1);

        b->type = QTYPE_QSTRING;
        b->u.local = g_strdup(arg->bitmap);
        opts->u.nbd.bitmaps = g_new0(BlockDirtyBitmapOrStrList, 1);
        opts->u.nbd.bitmaps->value = b;
    }
    /* nbd-server-add quietly downgrades read-only devices */
    if (bdrv_is_read_only(bs)) {
        opts->has_writable = true;
        opts->writable = false;
    }
    exp = blk_exp_add(opts, errp);
    qapi_free_BlockExportOptions(opts);
    (void)exp;
}

void qmp_nbd_server_remove(const char *name, bool has_mode,
                           BlockExportRemoveMode mode, Error **errp)
{
    BlockExport *exp = blk_exp_find(name);

    if (exp && exp->drv->type != BLOCK_EXPORT_TYPE_NBD) {
        error_setg(errp, "Block export '%s' is not an NBD export", name);
        return;
    }
    qmp_block_export_del(name, has_mode, mode, errp);
}
