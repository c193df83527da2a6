/*
 * NBD client: the handshake (doc/proto.md, "Fixed newstyle negotiation").
 *
 * Order of business, each step optional when the server cannot do it:
 *
 *   1. NBDMAGIC + IHAVEOPT + handshake flags; we answer FIXED_NEWSTYLE
 *      (and NO_ZEROES when offered).  An oldstyle server is refused; a
 *      newstyle server without FIXED_NEWSTYLE only gets EXPORT_NAME,
 *      because it may drop the connection on any other option.
 *   2. NBD_OPT_STRUCTURED_REPLY (ACK or ERR_UNSUP).
 *   3. NBD_OPT_SET_META_CONTEXT for base:allocation (and
 *      qemu:allocation-depth) on the export; only with structured replies,
 *      as the protocol requires.  ERR_UNSUP just means "no contexts".
 *   4. NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE (we honour the
 *      constraints: nbd/client-io.c rejects misaligned requests and the
 *      block driver sets its limits from them).  ERR_UNSUP -> step 5.
 *   5. NBD_OPT_EXPORT_NAME: the old way, size and flags come back in a
 *      fixed-size reply; an unknown export makes the server hang up.
 *
 * Error replies from the server are turned into messages worded as QEMU's
 * client words them ("Requested export not available", ...), with the
 * server's own text appended.
 */
#include "qemu/osdep.h"
#include "nbd/nbd-internal.h"
#include "qemu/trace.h"

/* A parsed option reply header */
typedef struct NBDOptReply {
    uint32_t opt;
    uint32_t type;
    uint32_t length;
} NBDOptReply;

void nbd_export_info_clear(NBDExportInfo *info)
{
    g_free(info->name);
    g_free(info->description);
    memset(info, 0, sizeof(*info));
}

static int coroutine_fn nbd_send_opt(CoChannel *ch, uint32_t opt,
                                     const void *data, uint32_t len,
                                     Error **errp)
{
    uint8_t hdr[16];
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)data, .iov_len = len },
    };

    trace(nbd_client_send_opt, "opt %" PRIu32 " (%s) len %" PRIu32, opt,
          nbd_opt_lookup(opt), len);
    stq_be(hdr, NBD_OPTS_MAGIC);
    stl_be(hdr + 8, opt);
    stl_be(hdr + 12, len);
    if (co_channel_writev_all(ch, iov, len ? 2 : 1, errp) < 0) {
        error_prepend(errp, "Failed to send option request %s: ",
                      nbd_opt_lookup(opt));
        return -1;
    }
    return 0;
}

static int coroutine_fn nbd_receive_rep(CoChannel *ch, uint32_t opt,
                                        NBDOptReply *rep, Error **errp)
{
    uint8_t hdr[20];

    if (co_channel_read_all(ch, hdr, sizeof(hdr), errp) < 0) {
        error_prepend(errp, "Failed to read option reply: ");
        return -1;
    }
    if (ldq_be(hdr) != NBD_REP_MAGIC) {
        error_setg(errp, "Unexpected option reply magic");
        return -1;
    }
    rep->opt = ldl_be(hdr + 8);
    rep->type = ldl_be(hdr + 12);
    rep->length = ldl_be(hdr + 16);
    trace(nbd_client_receive_rep, "opt %" PRIu32 " (%s) type %" PRIu32
          " (%s) len %" PRIu32, rep->opt, nbd_opt_lookup(rep->opt),
          rep->type, nbd_rep_lookup(rep->type), rep->length);
    if (rep->opt != opt) {
        error_setg(errp, "Unexpected option type %" PRIu32 " (%s), "
                   "expected %" PRIu32 " (%s)", rep->opt,
                   nbd_opt_lookup(rep->opt), opt, nbd_opt_lookup(opt));
        return -1;
    }
    if (rep->length > NBD_MAX_OPTION_SIZE) {
        error_setg(errp, "Option reply %" PRIu32 " (%s) too large: %" PRIu32,
                   rep->type, nbd_rep_lookup(rep->type), rep->length);
        return -1;
    }
    return 0;
}

/*
 * The payload of an error reply is a message; read it and describe the
 * error.  Returns 0 if the error is one the caller may shrug off
 * (ERR_UNSUP: *unsup set), -1 otherwise (errp set, also on I/O errors).
 */
static int coroutine_fn nbd_handle_rep_err(CoChannel *ch, NBDOptReply *rep,
                                           bool *unsup, Error **errp)
{
    g_autofree char *msg = NULL;
    const char *name = nbd_opt_lookup(rep->opt);

    *unsup = false;
    if (rep->length) {
        if (rep->length > NBD_MAX_STRING_SIZE) {
            error_setg(errp, "server error %" PRIu32 " (%s) message is too "
                       "long", rep->type, nbd_rep_lookup(rep->type));
            return -1;
        }
        msg = g_malloc0(rep->length + 1);
        if (co_channel_read_all(ch, msg, rep->length, errp) < 0) {
            error_prepend(errp, "Failed to read option error %" PRIu32
                          " (%s) message: ", rep->type,
                          nbd_rep_lookup(rep->type));
            return -1;
        }
    }
    switch (rep->type) {
    case NBD_REP_ERR_UNSUP:
        trace(nbd_client_opt_unsup, "opt %s", name);
        *unsup = true;
        return 0;
    case NBD_REP_ERR_POLICY:
        error_setg(errp, "Denied by server for option %" PRIu32 " (%s)",
                   rep->opt, name);
        break;
    case NBD_REP_ERR_INVALID:
        error_setg(errp, "Invalid parameters for option %" PRIu32 " (%s)",
                   rep->opt, name);
        break;
    case NBD_REP_ERR_PLATFORM:
        error_setg(errp, "Server lacks support for option %" PRIu32 " (%s)",
                   rep->opt, name);
        break;
    case NBD_REP_ERR_TLS_REQD:
        error_setg(errp, "TLS negotiation required before option %" PRIu32
                   " (%s)", rep->opt, name);
        break;
    case NBD_REP_ERR_UNKNOWN:
        error_setg(errp, "Requested export not available");
        break;
    case NBD_REP_ERR_SHUTDOWN:
        error_setg(errp, "Server shutting down before option %" PRIu32
                   " (%s)", rep->opt, name);
        break;
    case NBD_REP_ERR_BLOCK_SIZE_REQD:
        error_setg(errp, "Server requires INFO_BLOCK_SIZE for option %"
                   PRIu32 " (%s)", rep->opt, name);
        break;
    case NBD_REP_ERR_TOO_BIG:
        error_setg(errp, "Option %" PRIu32 " (%s) was too big", rep->opt,
                   name);
        break;
    default:
        error_setg(errp, "Unknown error code when asking for option %"
                   PRIu32 " (%s)", rep->opt, name);
        break;
    }
    if (msg && *msg) {
        error_append_hint(errp, "server reported: %s\n", msg);
    }
    return -1;
}

/* Send @opt without payload and expect ACK; 1 = ACK, 0 = unsupported */
static int coroutine_fn nbd_request_simple_option(CoChannel *ch,
                                                  uint32_t opt,
                                                  Error **errp)
{
    NBDOptReply rep;
    bool unsup;

    if (nbd_send_opt(ch, opt, NULL, 0, errp) < 0 ||
        nbd_receive_rep(ch, opt, &rep, errp) < 0) {
        return -1;
    }
    if (rep.type & NBD_REP_FLAG_ERROR) {
        if (nbd_handle_rep_err(ch, &rep, &unsup, errp) < 0) {
            return -1;
        }
        return 0;
    }
    if (rep.type != NBD_REP_ACK || rep.length != 0) {
        error_setg(errp, "Server answered option %" PRIu32 " (%s) with "
                   "unexpected reply %" PRIu32 " (%s)", opt,
                   nbd_opt_lookup(opt), rep.type, nbd_rep_lookup(rep.type));
        return -1;
    }
    return 1;
}

/* Append a 32-bit length-prefixed string to @buf */
static void nbd_buf_add_string(GByteArray *buf, const char *str)
{
    uint8_t len[4];

    stl_be(len, strlen(str));
    g_byte_array_append(buf, len, 4);
    g_byte_array_append(buf, (const uint8_t *)str, strlen(str));
}

static int coroutine_fn nbd_negotiate_meta(CoChannel *ch,
                                           const NBDClientOptions *opts,
                                           NBDExportInfo *info,
                                           Error **errp)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    const char *queries[2];
    uint8_t nr[4];
    uint32_t n = 0, i;

    if (opts->base_allocation) {
        queries[n++] = NBD_META_BASE_ALLOCATION;
    }
    if (opts->allocation_depth) {
        queries[n++] = NBD_META_ALLOCATION_DEPTH;
    }
    nbd_buf_add_string(buf, info->name);
    stl_be(nr, n);
    g_byte_array_append(buf, nr, 4);
    for (i = 0; i < n; i++) {
        nbd_buf_add_string(buf, queries[i]);
    }
    if (nbd_send_opt(ch, NBD_OPT_SET_META_CONTEXT, buf->data, buf->len,
                     errp) < 0) {
        return -1;
    }
    for (;;) {
        NBDOptReply rep;
        g_autofree char *name = NULL;
        uint8_t id[4];
        bool unsup;

        if (nbd_receive_rep(ch, NBD_OPT_SET_META_CONTEXT, &rep, errp) < 0) {
            return -1;
        }
        if (rep.type & NBD_REP_FLAG_ERROR) {
            return nbd_handle_rep_err(ch, &rep, &unsup, errp);
        }
        if (rep.type == NBD_REP_ACK) {
            if (rep.length) {
                error_setg(errp, "Unexpected length to ACK response");
                return -1;
            }
            return 0;
        }
        if (rep.type != NBD_REP_META_CONTEXT || rep.length < 4 ||
            rep.length > 4 + NBD_MAX_STRING_SIZE) {
            error_setg(errp, "Unexpected reply type %" PRIu32 " (%s) with "
                       "length %" PRIu32 " to SET_META_CONTEXT", rep.type,
                       nbd_rep_lookup(rep.type), rep.length);
            return -1;
        }
        name = g_malloc0(rep.length - 4 + 1);
        if (co_channel_read_all(ch, id, 4, errp) < 0 ||
            co_channel_read_all(ch, name, rep.length - 4, errp) < 0) {
            error_prepend(errp, "Failed to read meta context reply: ");
            return -1;
        }
        trace(nbd_client_meta_context, "'%s' id %" PRIu32, name,
              ldl_be(id));
        if (opts->base_allocation &&
            !strcmp(name, NBD_META_BASE_ALLOCATION)) {
            info->base_allocation = true;
            info->base_allocation_id = ldl_be(id);
        } else if (opts->allocation_depth &&
                   !strcmp(name, NBD_META_ALLOCATION_DEPTH)) {
            info->allocation_depth = true;
            info->allocation_depth_id = ldl_be(id);
        } else {
            error_setg(errp, "Unexpected context name '%s' from server",
                       name);
            return -1;
        }
    }
}

/* Parse one NBD_REP_INFO payload (already read into @data) */
static int nbd_parse_info(NBDExportInfo *info, const uint8_t *data,
                          uint32_t len, bool *have_export, Error **errp)
{
    uint16_t type = ldw_be(data);

    data += 2;
    len -= 2;
    switch (type) {
    case NBD_INFO_EXPORT:
        if (len != 10) {
            error_setg(errp, "remaining export info len %" PRIu32
                       " is unexpected size", len);
            return -1;
        }
        info->size = ldq_be(data);
        info->flags = ldw_be(data + 8);
        *have_export = true;
        trace(nbd_client_info_export, "size %" PRIu64 " flags 0x%x",
              info->size, info->flags);
        return 0;
    case NBD_INFO_DESCRIPTION:
        g_free(info->description);
        info->description = g_strndup((const char *)data, len);
        return 0;
    case NBD_INFO_BLOCK_SIZE:
        if (len != 12) {
            error_setg(errp, "remaining export info len %" PRIu32
                       " is unexpected size", len);
            return -1;
        }
        info->min_block = ldl_be(data);
        info->opt_block = ldl_be(data + 4);
        info->max_block = ldl_be(data + 8);
        if (!info->min_block || !is_power_of_2(info->min_block) ||
            info->min_block > 64 * KiB) {
            error_setg(errp, "server minimum block size %" PRIu32
                       " is not valid", info->min_block);
            return -1;
        }
        if (!is_power_of_2(info->opt_block) ||
            info->opt_block < info->min_block) {
            error_setg(errp, "server preferred block size %" PRIu32
                       " is not valid", info->opt_block);
            return -1;
        }
        if (info->max_block < info->min_block ||
            (info->max_block % info->min_block)) {
            error_setg(errp, "server maximum block size %" PRIu32
                       " is not valid", info->max_block);
            return -1;
        }
        trace(nbd_client_info_block_size, "min %" PRIu32 " opt %" PRIu32
              " max %" PRIu32, info->min_block, info->opt_block,
              info->max_block);
        return 0;
    default:
        /* NBD_INFO_NAME and unknown types are ignored, as proto.md says */
        trace(nbd_client_info_ignored, "type %u (%s)", type,
              nbd_info_lookup(type));
        return 0;
    }
}

/* OPT_GO: 1 = in transmission, 0 = unsupported (try EXPORT_NAME) */
static int coroutine_fn nbd_opt_go(CoChannel *ch, NBDExportInfo *info,
                                   Error **errp)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    uint8_t req[6];
    bool have_export = false;

    nbd_buf_add_string(buf, info->name);
    stw_be(req, 2);
    stw_be(req + 2, NBD_INFO_BLOCK_SIZE);
    stw_be(req + 4, NBD_INFO_DESCRIPTION);
    g_byte_array_append(buf, req, 6);
    if (nbd_send_opt(ch, NBD_OPT_GO, buf->data, buf->len, errp) < 0) {
        return -1;
    }
    for (;;) {
        NBDOptReply rep;
        g_autofree uint8_t *data = NULL;
        bool unsup;

        if (nbd_receive_rep(ch, NBD_OPT_GO, &rep, errp) < 0) {
            return -1;
        }
        if (rep.type & NBD_REP_FLAG_ERROR) {
            if (nbd_handle_rep_err(ch, &rep, &unsup, errp) < 0) {
                return -1;
            }
            return 0;
        }
        if (rep.type == NBD_REP_ACK) {
            if (rep.length) {
                error_setg(errp, "Unexpected length to ACK response");
                return -1;
            }
            if (!have_export) {
                error_setg(errp, "broken server omitted NBD_INFO_EXPORT");
                return -1;
            }
            return 1;
        }
        if (rep.type != NBD_REP_INFO || rep.length < 2) {
            error_setg(errp, "unexpected reply type %" PRIu32 " (%s), "
                       "expected %u", rep.type, nbd_rep_lookup(rep.type),
                       NBD_REP_INFO);
            return -1;
        }
        data = g_malloc(rep.length);
        if (co_channel_read_all(ch, data, rep.length, errp) < 0) {
            error_prepend(errp, "Failed to read info: ");
            return -1;
        }
        if (nbd_parse_info(info, data, rep.length, &have_export, errp) < 0) {
            return -1;
        }
    }
}

static int coroutine_fn nbd_opt_export_name(CoChannel *ch,
                                            NBDExportInfo *info,
                                            bool no_zeroes, Error **errp)
{
    uint8_t buf[8 + 2 + 124];
    size_t len = no_zeroes ? 10 : sizeof(buf);

    if (nbd_send_opt(ch, NBD_OPT_EXPORT_NAME, info->name,
                     strlen(info->name), errp) < 0) {
        return -1;
    }
    if (co_channel_read_all(ch, buf, len, NULL) < 0) {
        /* the server closes the connection on an unknown export */
        error_setg(errp, "Failed to read export length: the server "
                   "closed the connection (export '%s' not available?)",
                   info->name);
        return -1;
    }
    info->size = ldq_be(buf);
    info->flags = ldw_be(buf + 8);
    info->used_export_name = true;
    trace(nbd_client_export_name, "size %" PRIu64 " flags 0x%x", info->size,
          info->flags);
    return 0;
}

int coroutine_fn nbd_receive_negotiate(CoChannel *ch,
                                       const NBDClientOptions *opts,
                                       NBDExportInfo *info, Error **errp)
{
    uint8_t hello[18];
    uint16_t hflags;
    uint8_t cflags[4];
    bool fixed, no_zeroes;
    uint32_t client_flags = 0;
    int ret;

    memset(info, 0, sizeof(*info));
    info->name = g_strdup(opts->export_name ? opts->export_name : "");
    if (strlen(info->name) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "export name '%s' is too long", info->name);
        return -1;
    }
    info->min_block = 1;
    info->opt_block = NBD_PREFERRED_BLOCK_SIZE;
    info->max_block = NBD_MAX_BUFFER_SIZE;

    if (co_channel_read_all(ch, hello, 16, errp) < 0) {
        error_prepend(errp, "Failed to read initial magic: ");
        return -1;
    }
    if (ldq_be(hello) != NBD_INIT_MAGIC) {
        error_setg(errp, "Invalid magic received");
        return -1;
    }
    if (ldq_be(hello + 8) == NBD_CLIENT_MAGIC) {
        error_setg(errp, "Server uses the oldstyle protocol, which is not "
                   "supported");
        return -1;
    }
    if (ldq_be(hello + 8) != NBD_OPTS_MAGIC) {
        error_setg(errp, "Bad server magic received: 0x%" PRIx64,
                   ldq_be(hello + 8));
        return -1;
    }
    if (co_channel_read_all(ch, hello + 16, 2, errp) < 0) {
        error_prepend(errp, "Failed to read server flags: ");
        return -1;
    }
    hflags = ldw_be(hello + 16);
    fixed = hflags & NBD_FLAG_FIXED_NEWSTYLE;
    no_zeroes = hflags & NBD_FLAG_NO_ZEROES;
    trace(nbd_client_hello, "server flags 0x%x", hflags);
    if (fixed) {
        client_flags |= NBD_FLAG_C_FIXED_NEWSTYLE;
    }
    if (no_zeroes) {
        client_flags |= NBD_FLAG_C_NO_ZEROES;
    }
    stl_be(cflags, client_flags);
    if (co_channel_write_all(ch, cflags, 4, errp) < 0) {
        error_prepend(errp, "Failed to send client flags: ");
        return -1;
    }

    if (fixed) {
        if (!opts->no_structured_reply) {
            ret = nbd_request_simple_option(ch, NBD_OPT_STRUCTURED_REPLY,
                                            errp);
            if (ret < 0) {
                return -1;
            }
            info->structured_reply = ret > 0;
        }
        if (info->structured_reply &&
            (opts->base_allocation || opts->allocation_depth) &&
            nbd_negotiate_meta(ch, opts, info, errp) < 0) {
            return -1;
        }
        if (!opts->force_export_name) {
            ret = nbd_opt_go(ch, info, errp);
            if (ret < 0) {
                return -1;
            }
            if (ret > 0) {
                return 0;
            }
        }
        /* an old server: contexts it may have acked are meaningless */
        info->base_allocation = false;
        info->allocation_depth = false;
    }
    return nbd_opt_export_name(ch, info, no_zeroes, errp);
}
