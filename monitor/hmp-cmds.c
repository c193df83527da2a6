/*
 * human-monitor-command (qapi/misc.json).
 *
 * blockd has no human monitor; the one HMP command it implements is the
 * one test suites drive through QMP to act as a guest:
 *
 *   qemu-io [-d] DEVICE "COMMAND"
 *
 * DEVICE is a BlockBackend name (a device; -d insists on that) or a node
 * name.  COMMAND is a blockd-io/qemu-io command line; its output is
 * returned as the command's result with "\r\n" line ends, as QEMU's
 * monitor produces it.  Any other command line gives QEMU's
 * "unknown command: 'x'" text (as output, like QEMU; not a QMP error).
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qemu-io.h"
#include "qapi-commands.h"

/* One HMP argument: a word, or a "quoted string" with backslash escapes */
static char *hmp_get_arg(const char **p)
{
    const char *s = *p;
    GString *out;

    while (g_ascii_isspace(*s)) {
        s++;
    }
    if (!*s) {
        *p = s;
        return NULL;
    }
    out = g_string_new(NULL);
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) {
                s++;
                switch (*s) {
                case 'n':
                    g_string_append_c(out, '\n');
                    break;
                case 'r':
                    g_string_append_c(out, '\r');
                    break;
                default:
                    g_string_append_c(out, *s);
                    break;
                }
            } else {
                g_string_append_c(out, *s);
            }
            s++;
        }
        if (*s == '"') {
            s++;
        }
    } else {
        while (*s && !g_ascii_isspace(*s)) {
            g_string_append_c(out, *s++);
        }
    }
    *p = s;
    return g_string_free(out, false);
}

/* Run qemu-io; output (and "Error: ..." lines) go to @out. */
static void hmp_qemu_io(const char *args, FILE *out)
{
    g_autofree char *device = NULL;
    g_autofree char *command = NULL;
    bool qdev = false;
    BlockBackend *blk, *local_blk = NULL;
    Error *err = NULL;
    FILE *old;

    device = hmp_get_arg(&args);
    if (device && !strcmp(device, "-d")) {
        qdev = true;
        g_free(device);
        device = hmp_get_arg(&args);
    }
    command = device ? hmp_get_arg(&args) : NULL;
    if (!device || !command) {
        fprintf(out, "Error: Parameter '%s' is missing\n",
                device ? "command" : "device");
        return;
    }

    blk = blk_by_name(device);
    if (!blk && qdev) {
        fprintf(out, "Error: Device '%s' not found\n", device);
        return;
    }
    if (!blk) {
        BlockDriverState *bs = bdrv_lookup_bs(NULL, device, &err);
        uint64_t perms[3] = {
            BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
            BLK_PERM_CONSISTENT_READ,
            0,
        };
        int i;

        if (!bs) {
            fprintf(out, "Error: %s\n", error_get_pretty(err));
            error_free(err);
            return;
        }
        /*
         * Like QEMU, qemu-io through the monitor is a debugging tool: it
         * takes what permissions it can get rather than failing.
         */
        for (i = 0; i < 3 && !local_blk; i++) {
            if (bdrv_is_read_only(bs) && (perms[i] & BLK_PERM_WRITE)) {
                continue;
            }
            local_blk = blk_new(perms[i], BLK_PERM_ALL);
            if (!blk_insert_bs(local_blk, bs, NULL)) {
                blk_unref(local_blk);
                local_blk = NULL;
            }
        }
        if (!local_blk) {
            fprintf(out, "Error: Node '%s' cannot be used by qemu-io\n",
                    device);
            return;
        }
        blk = local_blk;
    }

    old = qemuio_set_output(out);
    qemuio_command(blk, command);
    qemuio_set_output(old);
    if (local_blk) {
        /* asynchronous requests (aio_write) keep running on their blk */
        while (blk_aio_in_flight(local_blk)) {
            aio_poll(qemu_get_aio_context(), true);
        }
        blk_unref(local_blk);
    }
}

char *qmp_human_monitor_command(const char *command_line, bool has_cpu_index,
                                int64_t cpu_index, Error **errp)
{
    g_autofree char *name = NULL;
    g_autofree char *raw = NULL;
    const char *args = command_line;
    size_t raw_len = 0;
    GString *res;
    FILE *out;
    const char *p;

    name = hmp_get_arg(&args);
    if (!name) {
        return g_strdup("");
    }
    out = open_memstream(&raw, &raw_len);
    if (!out) {
        error_setg_errno(errp, errno, "Could not capture monitor output");
        return NULL;
    }
    if (!strcmp(name, "qemu-io")) {
        hmp_qemu_io(args, out);
    } else {
        fprintf(out, "unknown command: '%s'\n", name);
    }
    fclose(out);

    /* the monitor's line ends */
    res = g_string_sized_new(raw_len + 16);
    for (p = raw; p < raw + raw_len; p++) {
        if (*p == '\n') {
            g_string_append_c(res, '\r');
        }
        g_string_append_c(res, *p);
    }
    return g_string_free(res, false);
}
