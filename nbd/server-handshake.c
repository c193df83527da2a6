/*
 * NBD server: the fixed newstyle handshake and option haggling.
 *
 * Only fixed newstyle is spoken: a client that does not set
 * NBD_FLAG_C_FIXED_NEWSTYLE (an oldstyle or plain newstyle client), sets
 * unknown flags, sends a bad option magic, or announces an option payload
 * longer than NBD_MAX_OPTION_SIZE is dropped at once.  Every other
 * problem with an option is answered with the matching NBD_REP_ERR_* and
 * the haggling continues, as proto.md asks: the rest of the option's
 * payload is read and dropped first (client->optlen tracks it), so the
 * stream stays in sync.
 */
#include "qemu/osdep.h"
#include "nbd/nbd-internal.h"
#include "qemu/trace.h"

/* ---- option payload and replies ---- */

int coroutine_fn nbd_opt_read(NBDClient *client, void *buf, uint32_t len,
                              Error **errp)
{
    assert(len <= client->optlen);
    if (co_channel_read_all(client->ch, buf, len, errp) < 0) {
        return -1;
    }
    client->optlen -= len;
    return 0;
}

int coroutine_fn nbd_opt_drop(NBDClient *client, Error **errp)
{
    uint32_t len = client->optlen;

    client->optlen = 0;
    return co_channel_skip(client->ch, len, errp);
}

int coroutine_fn nbd_send_rep(NBDClient *client, uint32_t type,
                              const void *data, uint32_t len, Error **errp)
{
    uint8_t hdr[20];
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)data, .iov_len = len },
    };

    trace(nbd_send_rep, "opt %" PRIu32 " (%s) type %" PRIu32 " (%s) "
          "len %" PRIu32, client->opt, nbd_opt_lookup(client->opt), type,
          nbd_rep_lookup(type), len);
    stq_be(hdr, NBD_REP_MAGIC);
    stl_be(hdr + 8, client->opt);
    stl_be(hdr + 12, type);
    stl_be(hdr + 16, len);
    return co_channel_writev_all(client->ch, iov, len ? 2 : 1, errp);
}

static int coroutine_fn nbd_send_rep_err_va(NBDClient *client,
                                            uint32_t type, Error **errp,
                                            const char *fmt, va_list ap)
    QEMU_PRINTF(4, 0);

static int coroutine_fn nbd_send_rep_err_va(NBDClient *client,
                                            uint32_t type, Error **errp,
                                            const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    size_t len = MIN(strlen(msg), NBD_MAX_STRING_SIZE);

    assert(type & NBD_REP_FLAG_ERROR);
    trace(nbd_send_rep_err, "opt %" PRIu32 " err %s msg '%s'", client->opt,
          nbd_rep_lookup(type), msg);
    return nbd_send_rep(client, type, msg, len, errp);
}

int coroutine_fn nbd_send_rep_err(NBDClient *client, uint32_t type,
                                  Error **errp, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = nbd_send_rep_err_va(client, type, errp, fmt, ap);
    va_end(ap);
    return ret;
}

int coroutine_fn nbd_opt_invalid(NBDClient *client, uint32_t type,
                                 Error **errp, const char *fmt, ...)
{
    va_list ap;
    int ret;

    if (nbd_opt_drop(client, errp) < 0) {
        return -1;
    }
    va_start(ap, fmt);
    ret = nbd_send_rep_err_va(client, type, errp, fmt, ap);
    va_end(ap);
    return ret;
}

/* ---- exports as seen by a client ---- */

uint16_t nbd_export_flags_for(NBDClient *client, NBDExport *exp)
{
    uint16_t flags = exp->nbdflags;

    if (client->structured_reply) {
        flags |= NBD_FLAG_SEND_DF;
    }
    return flags;
}

/* Read a name of @len bytes (the option payload holds them) */
static int coroutine_fn nbd_opt_read_name(NBDClient *client, uint32_t len,
                                          char **name, Error **errp)
{
    g_autofree char *buf = g_malloc(len + 1);

    if (nbd_opt_read(client, buf, len, errp) < 0) {
        return -1;
    }
    buf[len] = '\0';
    *name = g_steal_pointer(&buf);
    return 0;
}

/* ---- NBD_OPT_EXPORT_NAME ---- */

static int coroutine_fn nbd_negotiate_export_name(NBDClient *client,
                                                  Error **errp)
{
    g_autofree char *name = NULL;
    NBDExport *exp;
    uint8_t buf[10 + 124] = { 0 };
    size_t len;

    if (client->optlen > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "Bad length received");
        return -1;
    }
    if (nbd_opt_read_name(client, client->optlen, &name, errp) < 0) {
        return -1;
    }
    exp = nbd_export_find(name);
    if (!exp) {
        /* No way to report an error: the only answer is to hang up */
        error_setg(errp, "export not found");
        return -1;
    }
    stq_be(buf, exp->size);
    stw_be(buf + 8, nbd_export_flags_for(client, exp));
    len = client->no_zeroes ? 10 : sizeof(buf);
    /* The client's reference for the transmission phase */
    blk_exp_ref(&exp->common);
    client->exp = exp;
    return co_channel_write_all(client->ch, buf, len, errp);
}

/* ---- NBD_OPT_LIST ---- */

static int coroutine_fn nbd_negotiate_list(NBDClient *client, Error **errp)
{
    GList *l;

    if (client->optlen) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "no payload expected in option %s",
                               nbd_opt_lookup(client->opt));
    }
    for (l = nbd_export_list(); l; l = l->next) {
        NBDExport *exp = l->data;
        size_t nlen = strlen(exp->name);
        size_t dlen = exp->description ? strlen(exp->description) : 0;
        g_autofree uint8_t *buf = g_malloc(4 + nlen + dlen);

        if (exp->shutting_down) {
            continue;
        }
        stl_be(buf, nlen);
        memcpy(buf + 4, exp->name, nlen);
        if (dlen) {
            memcpy(buf + 4 + nlen, exp->description, dlen);
        }
        if (nbd_send_rep(client, NBD_REP_SERVER, buf, 4 + nlen + dlen,
                         errp) < 0) {
            return -1;
        }
    }
    return nbd_send_rep(client, NBD_REP_ACK, NULL, 0, errp);
}

/* ---- NBD_OPT_INFO / NBD_OPT_GO ---- */

static int coroutine_fn nbd_send_info(NBDClient *client, uint16_t info,
                                      const void *data, uint32_t len,
                                      Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(2 + len);

    trace(nbd_send_info, "info %s len %" PRIu32, nbd_info_lookup(info),
          len);
    stw_be(buf, info);
    memcpy(buf + 2, data, len);
    return nbd_send_rep(client, NBD_REP_INFO, buf, 2 + len, errp);
}

static int coroutine_fn nbd_send_export_info(NBDClient *client,
                                             NBDExport *exp, bool send_name,
                                             bool send_desc, bool blocksize,
                                             Error **errp)
{
    uint8_t buf[8 + 2];
    uint32_t sizes[3];
    uint32_t align;
    int i;

    if (send_name &&
        nbd_send_info(client, NBD_INFO_NAME, exp->name, strlen(exp->name),
                      errp) < 0) {
        return -1;
    }
    if (send_desc && exp->description &&
        nbd_send_info(client, NBD_INFO_DESCRIPTION, exp->description,
                      strlen(exp->description), errp) < 0) {
        return -1;
    }

    /*
     * Always send the block sizes; the minimum is the node's request
     * alignment only for clients that said they honour it (others may
     * send any alignment and get read-modify-write).
     */
    align = bdrv_get_request_alignment(blk_bs(exp->common.blk));
    if (align == 0) {
        align = 1;
    }
    sizes[0] = (client->opt == NBD_OPT_INFO || blocksize) ? align : 1;
    sizes[1] = MAX(NBD_PREFERRED_BLOCK_SIZE, sizes[0]);
    sizes[2] = NBD_MAX_BUFFER_SIZE;
    for (i = 0; i < 3; i++) {
        sizes[i] = GUINT32_TO_BE(sizes[i]);
    }
    if (nbd_send_info(client, NBD_INFO_BLOCK_SIZE, sizes, sizeof(sizes),
                      errp) < 0) {
        return -1;
    }

    stq_be(buf, exp->size);
    stw_be(buf + 8, nbd_export_flags_for(client, exp));
    if (nbd_send_info(client, NBD_INFO_EXPORT, buf, 10, errp) < 0) {
        return -1;
    }
    return nbd_send_rep(client, NBD_REP_ACK, NULL, 0, errp);
}

/* 1: GO succeeded (transmission), 0: continue haggling, -1: drop */
static int coroutine_fn nbd_negotiate_info(NBDClient *client, Error **errp)
{
    g_autofree char *name = NULL;
    g_autofree uint16_t *requests = NULL;
    uint32_t namelen;
    uint16_t nrequests;
    uint8_t buf[4];
    bool send_name = false, send_desc = false, blocksize = false;
    NBDExport *exp;
    int i;

    if (client->optlen < 4 + 2) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "overall request too short");
    }
    if (nbd_opt_read(client, buf, 4, errp) < 0) {
        return -1;
    }
    namelen = ldl_be(buf);
    if (namelen > client->optlen - 2) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "name length is incorrect");
    }
    if (namelen > NBD_MAX_STRING_SIZE) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "name too long for qemu");
    }
    if (nbd_opt_read_name(client, namelen, &name, errp) < 0 ||
        nbd_opt_read(client, buf, 2, errp) < 0) {
        return -1;
    }
    nrequests = ldw_be(buf);
    if ((uint32_t)nrequests * 2 != client->optlen) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "request data has incorrect length");
    }
    requests = g_new0(uint16_t, nrequests + 1);
    if (nbd_opt_read(client, requests, nrequests * 2, errp) < 0) {
        return -1;
    }
    for (i = 0; i < nrequests; i++) {
        switch (GUINT16_FROM_BE(requests[i])) {
        case NBD_INFO_NAME:
            send_name = true;
            break;
        case NBD_INFO_DESCRIPTION:
            send_desc = true;
            break;
        case NBD_INFO_BLOCK_SIZE:
            blocksize = true;
            break;
        default:
            /* Unknown requests are ignored, as the spec asks */
            break;
        }
    }

    exp = nbd_export_find(name);
    if (!exp) {
        return nbd_send_rep_err(client, NBD_REP_ERR_UNKNOWN, errp,
                                "export '%s' not present", name);
    }
    /* Sending yields: keep exp alive; GO hands the reference on */
    blk_exp_ref(&exp->common);
    if (nbd_send_export_info(client, exp, send_name, send_desc, blocksize,
                             errp) < 0) {
        blk_exp_unref(&exp->common);
        return -1;
    }
    if (client->opt == NBD_OPT_GO) {
        client->exp = exp;
        client->check_align = blocksize;
        return 1;
    }
    blk_exp_unref(&exp->common);
    return 0;
}

/* ---- the haggling loop ---- */

/* 1: enter transmission, 0: next option, -1: drop */
static int coroutine_fn nbd_handle_option(NBDClient *client, Error **errp)
{
    int ret;

    switch (client->opt) {
    case NBD_OPT_EXPORT_NAME:
        return nbd_negotiate_export_name(client, errp) < 0 ? -1 : 1;

    case NBD_OPT_ABORT:
        if (nbd_opt_drop(client, errp) < 0) {
            return -1;
        }
        /* The ACK is a courtesy: the client may be gone already */
        nbd_send_rep(client, NBD_REP_ACK, NULL, 0, NULL);
        error_setg(errp, "client sent NBD_OPT_ABORT");
        return -1;

    case NBD_OPT_LIST:
        return nbd_negotiate_list(client, errp) < 0 ? -1 : 0;

    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return nbd_negotiate_info(client, errp);

    case NBD_OPT_STRUCTURED_REPLY:
        if (client->optlen) {
            ret = nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                                  "no payload expected in option %s",
                                  nbd_opt_lookup(client->opt));
        } else if (client->structured_reply) {
            ret = nbd_send_rep_err(client, NBD_REP_ERR_INVALID, errp,
                                   "structured reply already negotiated");
        } else {
            ret = nbd_send_rep(client, NBD_REP_ACK, NULL, 0, errp);
            client->structured_reply = true;
        }
        return ret < 0 ? -1 : 0;

    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        return nbd_negotiate_meta_queries(client, errp) < 0 ? -1 : 0;

    case NBD_OPT_STARTTLS:
        return nbd_opt_invalid(client, NBD_REP_ERR_POLICY, errp,
                               "TLS not configured") < 0 ? -1 : 0;

    default:
        return nbd_opt_invalid(client, NBD_REP_ERR_UNSUP, errp,
                               "Unsupported option %" PRIu32 " (%s)",
                               client->opt,
                               nbd_opt_lookup(client->opt)) < 0 ? -1 : 0;
    }
}

int coroutine_fn nbd_negotiate(NBDClient *client, Error **errp)
{
    uint8_t buf[18];
    uint32_t cflags;
    int ret;

    stq_be(buf, NBD_INIT_MAGIC);
    stq_be(buf + 8, NBD_OPTS_MAGIC);
    stw_be(buf + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if (co_channel_write_all(client->ch, buf, 18, errp) < 0) {
        return -1;
    }
    if (co_channel_read_all(client->ch, buf, 4, errp) < 0) {
        error_prepend(errp, "read failed: ");
        return -1;
    }
    cflags = ldl_be(buf);
    trace(nbd_negotiate_client_flags, "flags 0x%" PRIx32, cflags);
    if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE)) {
        error_setg(errp, "Client does not support fixed newstyle");
        return -1;
    }
    if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        error_setg(errp, "Unknown client flags 0x%" PRIx32 " received",
                   cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE |
                              NBD_FLAG_C_NO_ZEROES));
        return -1;
    }
    client->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    for (;;) {
        uint8_t hdr[16];

        if (co_channel_read_all(client->ch, hdr, sizeof(hdr), errp) < 0) {
            error_prepend(errp, "read failed: ");
            return -1;
        }
        if (ldq_be(hdr) != NBD_OPTS_MAGIC) {
            error_setg(errp, "Bad option magic received: 0x%" PRIx64,
                       ldq_be(hdr));
            return -1;
        }
        client->opt = ldl_be(hdr + 8);
        client->optlen = ldl_be(hdr + 12);
        trace(nbd_negotiate_option, "opt %" PRIu32 " (%s) len %" PRIu32,
              client->opt, nbd_opt_lookup(client->opt), client->optlen);
        if (client->optlen > NBD_MAX_OPTION_SIZE) {
            error_setg(errp, "len (%" PRIu32 ") is larger than max len "
                       "(%u)", client->optlen,
                       (unsigned)NBD_MAX_OPTION_SIZE);
            return -1;
        }
        ret = nbd_handle_option(client, errp);
        if (ret < 0) {
            return -1;
        }
        assert(ret > 0 || client->optlen == 0);
        if (ret > 0) {
            return 0;
        }
    }
}
