/*
 * qemu-io compatible commands, part 2: discard, flush, truncate, length,
 * info, alloc, map, sleep, sigraise, abort and the blkdebug breakpoint
 * commands (break, remove_break, resume, wait_break).  The table is merged
 * into tools/qemu-io-cmds.c's; messages are qemu-io's.
 */
#include "qemu/osdep.h"
#include "tools/qemu-io-int.h"
#include <getopt.h>
#include <signal.h>

static int discard_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false;
    int64_t offset, bytes, t0;
    int c, ret;

    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C':
            cflag = true;
            break;
        case 'q':
            qflag = true;
            break;
        default:
            qemuio_command_usage(&qio_misc_cmds[0]);
            return -EINVAL;
        }
    }
    if (optind != argc - 2) {
        qemuio_command_usage(&qio_misc_cmds[0]);
        return -EINVAL;
    }
    if (!qio_get_num(argv[optind], &offset) ||
        !qio_get_num(argv[optind + 1], &bytes)) {
        return -EINVAL;
    }
    if (bytes > BDRV_REQUEST_MAX_BYTES) {
        qio_printf("length cannot exceed %" PRIu64 ", given %s\n",
                   (uint64_t)BDRV_REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    t0 = qio_now_ns();
    ret = blk_pdiscard(blk, offset, bytes);
    t0 = qio_now_ns() - t0;
    if (ret < 0) {
        qio_printf("discard failed: %s\n", strerror(-ret));
        return ret;
    }
    if (!qflag) {
        qio_print_report("discard", t0, offset, bytes, bytes, 1, cflag);
    }
    return 0;
}

static int flush_f(BlockBackend *blk, int argc, char **argv)
{
    return blk_flush(blk);
}

static const char *const prealloc_modes[] = {
    "off", "metadata", "falloc", "full", NULL,
};

static int truncate_f(BlockBackend *blk, int argc, char **argv)
{
    Error *err = NULL;
    int64_t offset;
    int c, ret;
    const char *prealloc = "off";

    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            if (!g_strv_contains(prealloc_modes, optarg)) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            prealloc = optarg;
            break;
        default:
            qemuio_command_usage(&qio_misc_cmds[2]);
            return -EINVAL;
        }
    }
    if (optind >= argc) {
        qemuio_command_usage(&qio_misc_cmds[2]);
        return -EINVAL;
    }
    offset = qio_cvtnum(argv[optind]);
    if (offset < 0) {
        qio_print_cvtnum_err(offset, argv[1]);
        return offset;
    }
    if (strcmp(prealloc, "off") != 0) {
        error_report("Unsupported preallocation mode '%s'", prealloc);
        return -ENOTSUP;
    }
    ret = blk_truncate(blk, offset, false, &err);
    if (ret < 0) {
        error_report_err(err);
        return ret;
    }
    return 0;
}

static int length_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t size = blk_getlength(blk);
    char s1[64];

    if (size < 0) {
        qio_printf("getlength: %s\n", strerror(-size));
        return size;
    }
    qemuio_cvtstr(size, s1, sizeof(s1));
    qio_printf("%s\n", s1);
    return 0;
}

static int info_f(BlockBackend *blk, int argc, char **argv)
{
    BlockDriverState *bs = blk_bs(blk);
    BlockDriverInfo bdi;
    char s1[64], s2[64];
    int ret;

    if (bs->drv && bs->drv->format_name) {
        qio_printf("format name: %s\n", bs->drv->format_name);
    }
    if (bs->drv && bs->drv->protocol_name) {
        qio_printf("format name: %s\n", bs->drv->protocol_name);
    }
    ret = bdrv_get_info(bs, &bdi);
    if (ret) {
        return ret;
    }
    qemuio_cvtstr(bdi.cluster_size, s1, sizeof(s1));
    qemuio_cvtstr(bdi.vm_state_offset, s2, sizeof(s2));
    qio_printf("cluster size: %s\n", s1);
    qio_printf("vm state offset: %s\n", s2);
    return 0;
}

static int alloc_f(BlockBackend *blk, int argc, char **argv)
{
    BlockDriverState *bs = blk_bs(blk);
    int64_t offset, start, remaining, count, num, sum_alloc = 0;
    char s1[64];
    int ret;

    if (!qio_get_num(argv[1], &offset)) {
        return -EINVAL;
    }
    start = offset;
    count = BDRV_SECTOR_SIZE;
    if (argc == 3 && !qio_get_num(argv[2], &count)) {
        return -EINVAL;
    }
    remaining = count;
    while (remaining) {
        ret = bdrv_is_allocated(bs, offset, remaining, &num);
        if (ret < 0) {
            qio_printf("is_allocated failed: %s\n", strerror(-ret));
            return ret;
        }
        offset += num;
        remaining -= num;
        if (ret) {
            sum_alloc += num;
        }
        if (num == 0) {
            count -= remaining;
            remaining = 0;
        }
    }
    qemuio_cvtstr(start, s1, sizeof(s1));
    qio_printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
               sum_alloc, count, s1);
    return 0;
}

/* Allocation status of the top layer only, merged over equal runs */
static int map_is_allocated(BlockDriverState *bs, int64_t offset,
                            int64_t bytes, int64_t *pnum)
{
    int64_t num;
    int ret, firstret;

    ret = bdrv_is_allocated(bs, offset, bytes, &num);
    if (ret < 0) {
        return ret;
    }
    firstret = ret;
    *pnum = num;
    while (bytes > 0 && ret == firstret) {
        offset += num;
        bytes -= num;
        ret = bdrv_is_allocated(bs, offset, bytes, &num);
        if (ret == firstret && num) {
            *pnum += num;
        } else {
            break;
        }
    }
    return firstret;
}

static int map_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t offset = 0, bytes = blk_getlength(blk), num;
    char s1[64], s2[64];
    int ret;

    if (bytes < 0) {
        error_report("Failed to query image length: %s", strerror(-bytes));
        return bytes;
    }
    while (bytes) {
        ret = map_is_allocated(blk_bs(blk), offset, bytes, &num);
        if (ret < 0) {
            error_report("Failed to get allocation status: %s",
                         strerror(-ret));
            return ret;
        } else if (!num) {
            error_report("Unexpected end of image");
            return -EIO;
        }
        qemuio_cvtstr(num, s1, sizeof(s1));
        qemuio_cvtstr(offset, s2, sizeof(s2));
        qio_printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64
                   ")\n", s1, num, ret ? "    allocated" : "not allocated",
                   s2, offset);
        offset += num;
        bytes -= num;
    }
    return 0;
}

/* ---- sleep, signals and blkdebug ---- */

static void sleep_done(void *opaque)
{
    *(bool *)opaque = true;
}

static int sleep_f(BlockBackend *blk, int argc, char **argv)
{
    char *end;
    long ms = strtol(argv[1], &end, 10);
    bool done = false;
    QEMUTimer *t;

    if (ms < 0 || *end) {
        qio_printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    t = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME, SCALE_NS,
                      sleep_done, &done);
    timer_mod(t, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + ms * SCALE_MS);
    while (!done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    timer_free(t);
    return 0;
}

static void sigraise_help(void)
{
    qio_printf("\n"
               " raises the given signal\n"
               "\n"
               " Example:\n"
               " 'sigraise %i' - raises SIGTERM\n"
               "\n"
               " Invokes raise(signal), where \"signal\" is the mandatory "
               "integer argument\n"
               " given to sigraise.\n"
               "\n", SIGTERM);
}

static int sigraise_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t sig = qio_cvtnum(argv[1]);

    if (sig < 0) {
        qio_print_cvtnum_err(sig, argv[1]);
        return sig;
    } else if (sig > NSIG) {
        qio_printf("signal argument '%s' is too large to be a valid "
                   "signal\n", argv[1]);
        return -EINVAL;
    }
    /* raise() need not flush stdio: do it, as qemu-io */
    fflush(stdout);
    fflush(stderr);
    fflush(qio_out());
    raise(sig);
    return 0;
}

static int abort_f(BlockBackend *blk, int argc, char **argv)
{
    abort();
}

static int break_f(BlockBackend *blk, int argc, char **argv)
{
    int ret = bdrv_debug_breakpoint(blk_bs(blk), argv[1], argv[2]);

    if (ret < 0) {
        qio_printf("Could not set breakpoint: %s\n", strerror(-ret));
    }
    return ret;
}

static int remove_break_f(BlockBackend *blk, int argc, char **argv)
{
    int ret = bdrv_debug_remove_breakpoint(blk_bs(blk), argv[1]);

    if (ret < 0) {
        qio_printf("Could not remove breakpoint %s: %s\n", argv[1],
                   strerror(-ret));
    }
    return ret;
}

static int resume_f(BlockBackend *blk, int argc, char **argv)
{
    int ret = bdrv_debug_resume(blk_bs(blk), argv[1]);

    if (ret < 0) {
        qio_printf("Could not resume request: %s\n", strerror(-ret));
    }
    return ret;
}

static int wait_break_f(BlockBackend *blk, int argc, char **argv)
{
    while (!bdrv_debug_is_suspended(blk_bs(blk), argv[1])) {
        aio_poll(qemu_get_aio_context(), true);
    }
    return 0;
}

/* discard and truncate come first: their usage messages index this */
const QemuIoCmd qio_misc_cmds[] = {
    { "discard", "d", discard_f, 2, -1, 0, BLK_PERM_WRITE, "[-Cq] off len",
      "discards a number of bytes at a specified offset" },
    { "flush", "f", flush_f, 0, 0, 0, 0, NULL,
      "flush all in-core file state to disk" },
    { "truncate", "t", truncate_f, 1, 3, 0,
      BLK_PERM_WRITE | BLK_PERM_RESIZE, "[-m prealloc_mode] off",
      "truncates the current file at the given offset" },
    { "length", "l", length_f, 0, 0, 0, 0, NULL,
      "gets the length of the current file" },
    { "info", "i", info_f, 0, 0, 0, 0, NULL,
      "prints information about the current file" },
    { "alloc", "a", alloc_f, 1, 2, 0, 0, "offset [count]",
      "checks if offset is allocated in the file" },
    { "map", NULL, map_f, 0, 0, 0, 0, "",
      "prints the allocated areas of a file" },
    { "sleep", NULL, sleep_f, 1, 1, QEMUIO_CMD_NOFILE_OK, 0, NULL,
      "waits for the given value in milliseconds" },
    { "sigraise", NULL, sigraise_f, 1, 1, QEMUIO_CMD_NOFILE_OK, 0, "signal",
      "raises a signal", sigraise_help },
    { "abort", NULL, abort_f, 0, 0, QEMUIO_CMD_NOFILE_OK, 0, NULL,
      "simulate a program crash using abort(3)" },
    { "break", NULL, break_f, 2, 2, 0, 0, "event tag",
      "sets a breakpoint on event and tags the stopped request as tag" },
    { "remove_break", NULL, remove_break_f, 1, 1, 0, 0, "tag",
      "remove a breakpoint by tag" },
    { "resume", NULL, resume_f, 1, 1, 0, 0, "tag",
      "resumes the request tagged as tag" },
    { "wait_break", NULL, wait_break_f, 1, 1, 0, 0, "tag",
      "waits for the suspension of a request" },
};

const size_t qio_n_misc_cmds = G_N_ELEMENTS(qio_misc_cmds);
