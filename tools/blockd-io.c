/*
 * blockd-io: a qemu-io compatible I/O exerciser.
 *
 *   blockd-io [-f fmt] [-r] [-s] [-n] [-U] [-m] [-t cache] [-i aio]
 *             [-d discard] [--object OBJDEF] [--image-opts] [-c CMD]...
 *             [FILE]
 *
 * Options and the image name may come in any order (GNU getopt
 * permutation, as qemu-io).  Opens FILE (format probed unless -f;
 * --image-opts takes keyval/JSON options instead of a file name; "json:"
 * names work as in QEMU) through a BlockBackend that takes write
 * permission unless -r and shares everything, as qemu-io's (the format
 * drivers restrict sharing themselves: qcow2 never shares write); -U
 * (force-share) is for read-only opens.  -s puts a temporary qcow2
 * overlay on top (writes are discarded at exit).  Runs each -c command in
 * order (see tools/qemu-io-cmds.c), or reads commands from stdin when no
 * -c is given.  Exit status 1 if opening or any command failed.
 *
 * Messages are prefixed with the program's base name, as QEMU's.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/qemu-io.h"
#include "qemu/keyval.h"
#include "qemu/trace.h"
#include "qemu/user-object.h"
#include <getopt.h>

static BlockBackend *qemuio_blk;
static bool quit_qemu_io;
static bool image_opts;

static void usage(const char *name)
{
    printf("Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
           "BlockD Disk exerciser (qemu-io compatible)\n"
           "\n"
           "  --object OBJECTDEF   define an object such as 'secret' for\n"
           "                       passwords and/or encryption keys\n"
           "  --image-opts         treat file as option string\n"
           "  -c, --cmd STRING     execute command with its arguments\n"
           "                       from the given string\n"
           "  -f, --format FMT     specifies the block driver to use\n"
           "  -r, --read-only      export read-only\n"
           "  -s, --snapshot       use snapshot file\n"
           "  -n, --nocache        disable host cache, short for -t none\n"
           "  -C, --copy-on-read   enable copy-on-read\n"
           "  -m, --misalign       misalign allocations for O_DIRECT\n"
           "  -k, --native-aio     use kernel AIO implementation\n"
           "                       (Linux only, prefer use of -i)\n"
           "  -i, --aio=MODE       use AIO mode (threads, native or "
           "io_uring)\n"
           "  -t, --cache=MODE     use the given cache mode for the image\n"
           "  -d, --discard=MODE   use the given discard mode for the "
           "image\n"
           "  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
           "                       specify tracing options\n"
           "  -U, --force-share    force shared permissions\n"
           "  -h, --help           display this help and exit\n"
           "  -V, --version        output version information and exit\n"
           "\n"
           "See '%s -c help' for information on available commands.\n",
           name, name);
}

/* QEMU's cache modes: host page cache (flags) and write cache */
static int parse_cache_mode(const char *mode, int *flags, bool *writethrough)
{
    *flags &= ~(BDRV_O_NOCACHE | BDRV_O_NO_FLUSH);
    if (!strcmp(mode, "off") || !strcmp(mode, "none")) {
        *flags |= BDRV_O_NOCACHE;
        *writethrough = false;
    } else if (!strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE;
        *writethrough = true;
    } else if (!strcmp(mode, "writeback")) {
        *writethrough = false;
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
        *writethrough = false;
    } else if (!strcmp(mode, "writethrough")) {
        *writethrough = true;
    } else {
        return -1;
    }
    return 0;
}

static int parse_aio(const char *mode, int *flags)
{
    *flags &= ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING);
    if (!strcmp(mode, "native")) {
        *flags |= BDRV_O_NATIVE_AIO;
    } else if (!strcmp(mode, "io_uring")) {
        *flags |= BDRV_O_IO_URING;
    } else if (strcmp(mode, "threads") != 0) {
        return -1;
    }
    return 0;
}

static int parse_discard(const char *mode, int *flags)
{
    if (!strcmp(mode, "off") || !strcmp(mode, "ignore")) {
        *flags &= ~BDRV_O_UNMAP;
    } else if (!strcmp(mode, "on") || !strcmp(mode, "unmap")) {
        *flags |= BDRV_O_UNMAP;
    } else {
        return -1;
    }
    return 0;
}

/*
 * -s: put a temporary qcow2 overlay over bs (which becomes its backing
 * node) so that writes never reach the image.  The overlay file is
 * unlinked as soon as it is open.  Returns the overlay (new reference).
 */
static BlockDriverState *append_temp_snapshot(BlockDriverState *bs,
                                              int flags, Error **errp)
{
    g_autoptr(json_t) copts = json_object();
    g_autoptr(json_t) opts = json_object();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *tmp = NULL;
    BlockDriverState *top;
    int64_t size = bdrv_getlength(bs);
    int fd;

    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get image size");
        return NULL;
    }
    fd = g_file_open_tmp("vl.XXXXXX", &tmp, &gerr);
    if (fd < 0) {
        error_setg(errp, "Could not get temporary filename: %s",
                   gerr->message);
        return NULL;
    }
    close(fd);
    json_object_set_new(copts, BLOCK_OPT_SIZE,
                        json_sprintf("%" PRId64, size));
    if (bdrv_create(&bdrv_qcow2, tmp, copts, errp) < 0) {
        unlink(tmp);
        return NULL;
    }
    json_object_set_new(opts, "driver", json_string("qcow2"));
    json_object_set_new(opts, "file", json_pack("{s:s, s:s}", "driver",
                                                "file", "filename", tmp));
    json_object_set_new(opts, "backing", json_string(bs->node_name));
    top = bdrv_open_flags(opts, flags | BDRV_O_RDWR, errp);
    unlink(tmp);
    return top;
}

static BlockBackend *open_snapshot(const char *name, const char *fmt,
                                   json_t *opts, int flags, Error **errp)
{
    uint64_t perm = BLK_PERM_CONSISTENT_READ;
    BlockDriverState *bs, *top;
    BlockBackend *blk;

    if (flags & BDRV_O_RDWR) {
        perm |= BLK_PERM_WRITE;
    }
    /* the image itself is only read */
    flags &= ~BDRV_O_RDWR;
    if (name || fmt) {
        bs = bdrv_open_file(name, fmt, opts, flags, errp);
    } else {
        bs = bdrv_open_flags(opts, flags, errp);
    }
    if (!bs) {
        return NULL;
    }
    top = append_temp_snapshot(bs, flags, errp);
    bdrv_unref(bs);
    if (!top) {
        return NULL;
    }
    blk = blk_new(perm, BLK_PERM_ALL);
    if (!blk_insert_bs(blk, top, errp)) {
        blk_unref(blk);
        bdrv_unref(top);
        return NULL;
    }
    bdrv_unref(top);
    return blk;
}

static int openfile(const char *name, const char *fmt, json_t *opts,
                    int flags, bool snapshot, bool writethrough,
                    bool force_share)
{
    Error *err = NULL;

    if (qemuio_blk) {
        error_report("file open already, try 'help close'");
        return 1;
    }
    if (force_share) {
        json_t *fs = opts ? json_object_get(opts, "force-share") : NULL;

        if (fs && !json_is_true(fs) &&
            g_strcmp0(json_string_value(fs), "on")) {
            error_report("-U conflicts with image options");
            return 1;
        }
        flags |= BDRV_O_FORCE_SHARE;
    }
    if ((flags & BDRV_O_FORCE_SHARE) && (flags & BDRV_O_RDWR) &&
        !snapshot) {
        error_setg(&err, "force-share=on can only be used with read-only "
                   "images");
    } else if (snapshot) {
        qemuio_blk = open_snapshot(name, fmt, opts, flags, &err);
    } else if (name || fmt) {
        qemuio_blk = blk_new_open(name, fmt, opts, flags, &err);
    } else {
        qemuio_blk = blk_new_open(NULL, NULL, opts, flags, &err);
    }
    if (!qemuio_blk) {
        error_prepend(&err, "can't open%s%s: ", name ? " device " : "",
                      name ? name : "");
        error_report_err(err);
        return 1;
    }
    blk_set_enable_write_cache(qemuio_blk, !writethrough);
    return 0;
}

/* ---- open, close, quit: the commands that change the open file ---- */

/* blk_unref() completes the outstanding aio requests (their callbacks print) */
static int close_f(BlockBackend *blk, int argc, char **argv)
{
    blk_unref(qemuio_blk);
    qemuio_blk = NULL;
    return 0;
}

static void open_help(void)
{
    printf("\n"
           " opens a new file in the requested mode\n"
           "\n"
           " Example:\n"
           " 'open -n -o driver=raw /tmp/data' - opens raw data file "
           "read-write, uncached\n"
           "\n"
           " Opens a file for subsequent use by all of the other qemu-io "
           "commands.\n"
           " -r, -- open file read-only\n"
           " -s, -- use snapshot file\n"
           " -C, -- use copy-on-read\n"
           " -n, -- disable host cache, short for -t none\n"
           " -U, -- force shared permissions\n"
           " -k, -- use kernel AIO implementation (Linux only, prefer use "
           "of -i)\n"
           " -i, -- use AIO mode (threads, native or io_uring)\n"
           " -t, -- use the given cache mode for the image\n"
           " -d, -- use the given discard mode for the image\n"
           " -o, -- options to be given to the block driver\n");
}

static int open_f(BlockBackend *blk, int argc, char **argv);

static const QemuIoCmd open_cmd = {
    "open", "o", open_f, 1, -1, QEMUIO_CMD_NOFILE_OK, 0,
    "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
    "open the file specified by path", open_help,
};

/* Merge one "-o" (or --image-opts) keyval string into *opts */
static bool add_opts(json_t **opts, const char *str)
{
    Error *err = NULL;
    g_autoptr(json_t) o = keyval_parse(str, NULL, NULL, &err);

    if (!o) {
        error_report_err(err);
        return false;
    }
    if (!*opts) {
        *opts = json_object();
    }
    if (!keyval_merge(*opts, o, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

static bool copy_on_read_unsupported(void)
{
    error_report("copy-on-read is not supported by blockd");
    return false;
}

static int open_f(BlockBackend *blk, int argc, char **argv)
{
    g_autoptr(json_t) opts = NULL;
    int flags = BDRV_O_UNMAP;
    bool readonly = false, writethrough = true, force_share = false;
    bool snapshot = false;
    int c;

    while ((c = getopt(argc, argv, "snCro:ki:t:d:U")) != -1) {
        switch (c) {
        case 's':
            snapshot = true;
            break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            writethrough = false;
            break;
        case 'C':
            copy_on_read_unsupported();
            return -ENOTSUP;
        case 'r':
            readonly = true;
            break;
        case 'k':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 't':
            if (parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache option: %s", optarg);
                return -EINVAL;
            }
            break;
        case 'd':
            if (parse_discard(optarg, &flags) < 0) {
                error_report("Invalid discard option: %s", optarg);
                return -EINVAL;
            }
            break;
        case 'i':
            if (parse_aio(optarg, &flags) < 0) {
                error_report("Invalid aio option: %s", optarg);
                return -EINVAL;
            }
            break;
        case 'o':
            if (image_opts) {
                printf("--image-opts and 'open -o' are mutually exclusive\n");
                return -EINVAL;
            }
            if (!add_opts(&opts, optarg)) {
                return -EINVAL;
            }
            break;
        case 'U':
            force_share = true;
            break;
        default:
            qemuio_command_usage(&open_cmd);
            return -EINVAL;
        }
    }
    if (!readonly) {
        flags |= BDRV_O_RDWR;
    }
    if (image_opts && optind == argc - 1) {
        if (!add_opts(&opts, argv[optind])) {
            return -EINVAL;
        }
        optind++;
    }
    if (optind == argc - 1) {
        return openfile(argv[optind], NULL, opts, flags, snapshot,
                        writethrough, force_share) ? -EINVAL : 0;
    } else if (optind == argc) {
        return openfile(NULL, NULL, opts, flags, snapshot, writethrough,
                        force_share) ? -EINVAL : 0;
    }
    qemuio_command_usage(&open_cmd);
    return -EINVAL;
}

static int quit_f(BlockBackend *blk, int argc, char **argv)
{
    quit_qemu_io = true;
    return 0;
}

static const QemuIoCmd close_cmd = {
    "close", "c", close_f, 0, 0, 0, 0, NULL, "close the current open file",
};

static const QemuIoCmd quit_cmd = {
    "quit", "q", quit_f, -1, -1, QEMUIO_CMD_GLOBAL, 0, NULL,
    "exit the program",
};

/* ---- main ---- */

static int command_loop(GPtrArray *cmds)
{
    int last_error = 0;
    guint i;

    for (i = 0; !quit_qemu_io && i < cmds->len; i++) {
        int ret = qemuio_command(qemuio_blk, g_ptr_array_index(cmds, i));

        if (ret < 0) {
            last_error = ret;
        }
    }
    if (cmds->len) {
        return last_error;
    }
    while (!quit_qemu_io) {
        char line[4096];
        int ret;

        /* the prompt, as qemu-io prints it (iotests filter it) */
        printf("%s> ", error_get_progname());
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            break;
        }
        g_strchomp(line);
        ret = qemuio_command(qemuio_blk, line);
        if (ret < 0) {
            last_error = ret;
        }
    }
    return last_error;
}

int main(int argc, char **argv)
{
    enum { OPTION_OBJECT = 256, OPTION_IMAGE_OPTS };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "snapshot", no_argument, NULL, 's' },
        { "nocache", no_argument, NULL, 'n' },
        { "copy-on-read", no_argument, NULL, 'C' },
        { "misalign", no_argument, NULL, 'm' },
        { "native-aio", no_argument, NULL, 'k' },
        { "aio", required_argument, NULL, 'i' },
        { "discard", required_argument, NULL, 'd' },
        { "cache", required_argument, NULL, 't' },
        { "trace", required_argument, NULL, 'T' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    const char *fmt = NULL, *prog;
    bool readonly = false, force_share = false, writethrough = true;
    bool snapshot = false;
    int flags = BDRV_O_UNMAP;
    Error *err = NULL;
    int c, ret = 0;

    signal(SIGPIPE, SIG_IGN);
    error_init_progname(argv[0]);
    prog = error_get_progname();
    /*
     * stdout keeps stdio's default buffering, as qemu-io: piped output is
     * flushed at each prompt and at exit, so error messages (stderr) come
     * first where scripts capture both.
     */
    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:U",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 's':
            snapshot = true;
            break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            writethrough = false;
            break;
        case 'C':
            copy_on_read_unsupported();
            return 1;
        case 'd':
            if (parse_discard(optarg, &flags) < 0) {
                error_report("Invalid discard option: %s", optarg);
                return 1;
            }
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'c':
            g_ptr_array_add(cmds, optarg);
            break;
        case 'r':
            readonly = true;
            break;
        case 'm':
            qemuio_set_misalign(true);
            break;
        case 'k':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            if (parse_aio(optarg, &flags) < 0) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 't':
            if (parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache option: %s", optarg);
                return 1;
            }
            break;
        case 'T':
            if (!trace_opt_parse(optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        case 'V':
            printf("%s version " BLOCKD_VERSION "\n", prog);
            return 0;
        case 'h':
            usage(prog);
            return 0;
        case 'U':
            force_share = true;
            break;
        case OPTION_OBJECT:
            if (!user_object_check_cmdline(optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        case OPTION_IMAGE_OPTS:
            image_opts = true;
            break;
        default:
            usage(prog);
            return 1;
        }
    }
    if (argc - optind > 1) {
        usage(prog);
        return 1;
    }
    if (fmt && image_opts) {
        error_report("--image-opts and -f are mutually exclusive");
        return 1;
    }
    qemu_init_main_loop();
    bdrv_init();
    qemuio_add_command(&quit_cmd);
    qemuio_add_command(&open_cmd);
    qemuio_add_command(&close_cmd);
    if (!readonly) {
        flags |= BDRV_O_RDWR;
    }
    if (argc - optind == 1) {
        g_autoptr(json_t) opts = NULL;
        const char *name = argv[optind];

        if (image_opts) {
            opts = keyval_or_json_parse(argv[optind], NULL, &err);
            if (!opts) {
                error_report_err(err);
                return 1;
            }
            name = NULL;
        }
        if (openfile(name, fmt, opts, flags, snapshot, writethrough,
                     force_share)) {
            return 1;
        }
    }
    ret = command_loop(cmds);
    /* every outstanding request completes (in blk_unref) before the exit */
    blk_unref(qemuio_blk);
    bdrv_drain_all();
    return ret < 0 ? 1 : 0;
}
