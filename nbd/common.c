/*
 * NBD names and error mapping shared by the server and clients.
 */
#include "qemu/osdep.h"
#include "block/nbd.h"

const char *nbd_opt_lookup(uint32_t opt)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME: return "export_name";
    case NBD_OPT_ABORT: return "abort";
    case NBD_OPT_LIST: return "list";
    case NBD_OPT_STARTTLS: return "starttls";
    case NBD_OPT_INFO: return "info";
    case NBD_OPT_GO: return "go";
    case NBD_OPT_STRUCTURED_REPLY: return "structured_reply";
    case NBD_OPT_LIST_META_CONTEXT: return "list_meta_context";
    case NBD_OPT_SET_META_CONTEXT: return "set_meta_context";
    default: return "<unknown>";
    }
}

const char *nbd_rep_lookup(uint32_t rep)
{
    switch (rep) {
    case NBD_REP_ACK: return "ack";
    case NBD_REP_SERVER: return "server";
    case NBD_REP_INFO: return "info";
    case NBD_REP_META_CONTEXT: return "meta_context";
    case NBD_REP_ERR_UNSUP: return "unsupported";
    case NBD_REP_ERR_POLICY: return "denied by policy";
    case NBD_REP_ERR_INVALID: return "invalid";
    case NBD_REP_ERR_PLATFORM: return "platform lacks support";
    case NBD_REP_ERR_TLS_REQD: return "TLS required";
    case NBD_REP_ERR_UNKNOWN: return "export unknown";
    case NBD_REP_ERR_SHUTDOWN: return "server shutting down";
    case NBD_REP_ERR_BLOCK_SIZE_REQD: return "block size required";
    case NBD_REP_ERR_TOO_BIG: return "option too big";
    default: return "<unknown>";
    }
}

const char *nbd_info_lookup(uint16_t info)
{
    switch (info) {
    case NBD_INFO_EXPORT: return "export";
    case NBD_INFO_NAME: return "name";
    case NBD_INFO_DESCRIPTION: return "description";
    case NBD_INFO_BLOCK_SIZE: return "block size";
    default: return "<unknown>";
    }
}

const char *nbd_cmd_lookup(uint16_t cmd)
{
    switch (cmd) {
    case NBD_CMD_READ: return "read";
    case NBD_CMD_WRITE: return "write";
    case NBD_CMD_DISC: return "disconnect";
    case NBD_CMD_FLUSH: return "flush";
    case NBD_CMD_TRIM: return "trim";
    case NBD_CMD_CACHE: return "cache";
    case NBD_CMD_WRITE_ZEROES: return "write zeroes";
    case NBD_CMD_BLOCK_STATUS: return "block status";
    default: return "<unknown>";
    }
}

const char *nbd_reply_type_lookup(uint16_t type)
{
    switch (type) {
    case NBD_REPLY_TYPE_NONE: return "none";
    case NBD_REPLY_TYPE_OFFSET_DATA: return "data";
    case NBD_REPLY_TYPE_OFFSET_HOLE: return "hole";
    case NBD_REPLY_TYPE_BLOCK_STATUS: return "block status";
    case NBD_REPLY_TYPE_ERROR: return "generic error";
    case NBD_REPLY_TYPE_ERROR_OFFSET: return "error at offset";
    default: return "<unknown>";
    }
}

const char *nbd_err_lookup(int err)
{
    switch (err) {
    case NBD_SUCCESS: return "success";
    case NBD_EPERM: return "EPERM";
    case NBD_EIO: return "EIO";
    case NBD_ENOMEM: return "ENOMEM";
    case NBD_EINVAL: return "EINVAL";
    case NBD_ENOSPC: return "ENOSPC";
    case NBD_EOVERFLOW: return "EOVERFLOW";
    case NBD_ENOTSUP: return "ENOTSUP";
    case NBD_ESHUTDOWN: return "ESHUTDOWN";
    default: return "<unknown>";
    }
}

int nbd_errno_to_wire(int err)
{
    if (err < 0) {
        err = -err;
    }
    switch (err) {
    case 0:
        return NBD_SUCCESS;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case EIO:
        return NBD_EIO;
    case ENOMEM:
        return NBD_ENOMEM;
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG:
    case ENOSPC:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    case EINVAL:
    default:
        return NBD_EINVAL;
    }
}

int nbd_wire_to_errno(uint32_t err)
{
    switch (err) {
    case NBD_SUCCESS: return 0;
    case NBD_EPERM: return EPERM;
    case NBD_EIO: return EIO;
    case NBD_ENOMEM: return ENOMEM;
    case NBD_ENOSPC: return ENOSPC;
    case NBD_EOVERFLOW: return EOVERFLOW;
    case NBD_ENOTSUP: return ENOTSUP;
    case NBD_ESHUTDOWN: return ESHUTDOWN;
    case NBD_EINVAL:
    default:
        return EINVAL;
    }
}
