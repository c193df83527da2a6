/*
 * blockd-io: a qemu-io compatible I/O exerciser.
 *
 *   blockd-io [-f fmt] [-r] [-n] [-U] [-t cache] [-i aio] [-d discard]
 *             [--image-opts] [-c CMD]... [FILE]
 *
 * Opens FILE (format probed unless -f; --image-opts takes keyval/JSON
 * options instead of a file name) through a BlockBackend that takes write
 * permission unless -r and, unless -U, shares only reading with other
 * users, so image locks behave like qemu-io's.  Runs each -c command in
 * order (see tools/qemu-io-cmds.c), or reads commands from stdin when no
 * -c is given.  Exit status 1 if opening or any command failed.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/qemu-io.h"
#include "qemu/keyval.h"
#include "qemu/trace.h"
#include <getopt.h>

static BlockBackend *qemuio_blk;

static void usage(const char *name)
{
    printf("Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
           "BlockD Disk exerciser (qemu-io compatible)\n"
           "\n"
           "  --image-opts             treat file as option string\n"
           "  -c, --cmd STRING         execute command with its arguments\n"
           "                           from the given string\n"
           "  -f, --format FMT         specifies the block driver to use\n"
           "  -r, --read-only          export read-only\n"
           "  -n, --nocache            disable host cache, short for -t none\n"
           "  -U, --force-share        force shared permissions\n"
           "  -k, --native-aio         use kernel AIO implementation\n"
           "  -i, --aio=MODE           use AIO mode (threads, native or "
           "io_uring)\n"
           "  -t, --cache=MODE         use the given cache mode for the "
           "image\n"
           "  -d, --discard=MODE       use the given discard mode for the "
           "image\n"
           "  -T, --trace PATTERN      enable trace events\n"
           "  -h, --help               display this help and exit\n"
           "  -V, --version            output version information and exit\n"
           "\n"
           "See '%s -c help' for information on available commands.\n",
           name, name);
}

/* cache=writethrough and directsync: every write is FUA (as QEMU) */
static bool writethrough;

static int parse_cache_mode(const char *mode, int *flags)
{
    *flags &= ~(BDRV_O_NOCACHE | BDRV_O_NO_FLUSH);
    writethrough = false;
    if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        *flags |= BDRV_O_NOCACHE;
    } else if (!strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE;
        writethrough = true;
    } else if (!strcmp(mode, "writethrough")) {
        writethrough = true;
    } else if (!strcmp(mode, "writeback")) {
        /* the default */
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
    } else {
        return -1;
    }
    return 0;
}

static int open_image(const char *name, const char *fmt, bool image_opts,
                      int flags, bool force_share)
{
    Error *err = NULL;
    g_autoptr(json_t) opts = NULL;

    if (qemuio_blk) {
        error_report("file open already, try 'help close'");
        return 1;
    }
    if (force_share) {
        flags |= BDRV_O_FORCE_SHARE;
        flags &= ~BDRV_O_NO_SHARE;
        if (flags & BDRV_O_RDWR) {
            error_report("can't open device %s: force-share=on can only be "
                         "used with read-only images", name);
            return 1;
        }
    }
    if (image_opts) {
        if (fmt) {
            error_report("--image-opts and --format are mutually exclusive");
            return 1;
        }
        opts = keyval_or_json_parse(name, NULL, &err);
        if (!opts) {
            error_report_err(err);
            return 1;
        }
        qemuio_blk = blk_new_open(NULL, NULL, opts, flags, &err);
    } else {
        qemuio_blk = blk_new_open(name, fmt, NULL, flags, &err);
    }
    if (!qemuio_blk) {
        error_prepend(&err, "can't open device %s: ", name);
        error_report_err(err);
        return 1;
    }
    blk_set_enable_write_cache(qemuio_blk, !writethrough);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "nocache", no_argument, NULL, 'n' },
        { "native-aio", no_argument, NULL, 'k' },
        { "aio", required_argument, NULL, 'i' },
        { "discard", required_argument, NULL, 'd' },
        { "cache", required_argument, NULL, 't' },
        { "trace", required_argument, NULL, 'T' },
        { "force-share", no_argument, NULL, 'U' },
        { "image-opts", no_argument, NULL, 'O' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    const char *fmt = NULL;
    bool readonly = false, image_opts = false, force_share = false;
    int flags = BDRV_O_UNMAP;
    int c, ret = 0;
    guint i;

    error_set_progname("blockd-io");
    while ((c = getopt_long(argc, argv, "+hVc:f:rnki:d:t:T:U", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(argv[0]);
            return 0;
        case 'V':
            printf("%s version " BLOCKD_VERSION "\n", argv[0]);
            return 0;
        case 'c':
            g_ptr_array_add(cmds, optarg);
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'r':
            readonly = true;
            break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            break;
        case 'k':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            flags &= ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING);
            if (!strcmp(optarg, "native")) {
                flags |= BDRV_O_NATIVE_AIO;
            } else if (!strcmp(optarg, "io_uring")) {
                flags |= BDRV_O_IO_URING;
            } else if (strcmp(optarg, "threads") != 0) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'd':
            if (!strcmp(optarg, "unmap") || !strcmp(optarg, "on")) {
                flags |= BDRV_O_UNMAP;
            } else if (!strcmp(optarg, "ignore") || !strcmp(optarg, "off")) {
                flags &= ~BDRV_O_UNMAP;
            } else {
                error_report("Invalid discard option: %s", optarg);
                return 1;
            }
            break;
        case 't':
            if (parse_cache_mode(optarg, &flags) < 0) {
                error_report("Invalid cache option: %s", optarg);
                return 1;
            }
            break;
        case 'T': {
            Error *err = NULL;

            if (!trace_opt_parse(optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        }
        case 'U':
            force_share = true;
            break;
        case 'O':
            image_opts = true;
            break;
        default:
            usage(argv[0]);
            return 1;
        }
    }
    if (optind < argc - 1) {
        error_report("extra arguments after image name");
        return 1;
    }
    if (!readonly) {
        flags |= BDRV_O_RDWR;
    }
    /*
     * Commands from -c write to a pipe or file fully buffered, as qemu-io
     * does: messages on stderr (an image found corrupt, a cache that
     * failed to flush on close) then come before the command output, in
     * the order QEMU's test output records.  A terminal, and commands
     * read from stdin, get line buffering.
     */
    if (cmds->len == 0 || isatty(STDOUT_FILENO)) {
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    qemu_init_main_loop();
    bdrv_init();

    if (optind == argc - 1) {
        if (open_image(argv[optind], fmt, image_opts, flags, force_share)) {
            return 1;
        }
    }
    if (cmds->len == 0) {
        /* interactive / piped: one command per line */
        char line[4096];

        while (fgets(line, sizeof(line), stdin)) {
            g_strchomp(line);
            if (!strcmp(line, "quit") || !strcmp(line, "q")) {
                break;
            }
            if (qemuio_command(qemuio_blk, line) < 0) {
                ret = 1;
            }
        }
    }
    for (i = 0; i < cmds->len; i++) {
        const char *cmd = g_ptr_array_index(cmds, i);

        if (!strcmp(cmd, "quit") || !strcmp(cmd, "q")) {
            break;
        }
        if (!strcmp(cmd, "close")) {
            blk_unref(qemuio_blk);
            qemuio_blk = NULL;
            continue;
        }
        if (g_str_has_prefix(cmd, "open ")) {
            g_auto(GStrv) av = g_strsplit(cmd + 5, " ", -1);
            const char *name = av[0] ? av[g_strv_length(av) - 1] : "";

            if (open_image(name, fmt, image_opts, flags, force_share)) {
                ret = 1;
            }
            continue;
        }
        if (qemuio_command(qemuio_blk, cmd) < 0) {
            ret = 1;
        }
    }
    if (qemuio_blk) {
        while (blk_aio_in_flight(qemuio_blk)) {
            aio_poll(qemu_get_aio_context(), true);
        }
        blk_unref(qemuio_blk);
    }
    bdrv_drain_all();
    return ret;
}
