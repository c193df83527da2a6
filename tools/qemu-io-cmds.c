/*
 * qemu-io compatible commands: read, readv, write, writev, aio_read,
 * aio_write, aio_flush, discard, flush, truncate, map, length, info, sleep,
 * break, remove_break, resume, wait_break, help.
 *
 * Output lines and number formats follow qemu-io exactly ("wrote
 * 65536/65536 bytes at offset 0", "64 KiB, 1 ops; 00.00 sec (...)"), so
 * iotests filters and golden files written for qemu-io apply unchanged.
 * Options are parsed per command with getopt, like qemu-io.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/qemu-io.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include <getopt.h>

/*
 * Where output goes: stdout/stderr (blockd-io), or the FILE the daemon's
 * human-monitor-command set with qemuio_set_output() to capture it.
 */
static FILE *qemuio_out;

static FILE *qio_out(void)
{
    return qemuio_out ? qemuio_out : stdout;
}

static FILE *qio_err(void)
{
    return qemuio_out ? qemuio_out : stderr;
}

static void G_GNUC_PRINTF(1, 2) qio_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(qio_out(), fmt, ap);
    va_end(ap);
}

FILE *qemuio_set_output(FILE *out)
{
    FILE *old = qemuio_out;

    qemuio_out = out;
    return old;
}

/* ---- number and time formatting (qemu-io's cvtstr/timestr) ---- */

static void cvtstr(double value, char *str, size_t size)
{
    static const char *const suffixes[] = {
        " EiB", " PiB", " TiB", " GiB", " MiB", " KiB",
    };
    const char *suffix = " bytes";
    char *trim;
    int i;

    for (i = 0; i < 6; i++) {
        double unit = (double)(1ULL << (10 * (6 - i)));

        if (value >= unit) {
            value /= unit;
            suffix = suffixes[i];
            break;
        }
    }
    snprintf(str, size - 6, "%f", value);
    trim = strstr(str, ".000");
    if (trim) {
        *trim = '\0';
    }
    g_strlcat(str, suffix, size);
}

static void timestr(int64_t ns, char *ts, size_t size, bool fixed)
{
    double secs = ns / 1e9;
    unsigned whole = ns / NANOSECONDS_PER_SECOND;

    if (fixed || whole) {
        snprintf(ts, size, "%u:%02u:%05.2f", whole / 3600, (whole / 60) % 60,
                 secs - (whole / 60) * 60.0);
    } else {
        snprintf(ts, size, "%05.2f sec", secs);
    }
}

static double tdiv(double value, int64_t ns)
{
    return value / (ns / 1e9);
}

static void print_report(const char *op, int64_t ns, int64_t offset,
                         int64_t count, int64_t total, int cnt, bool cflag)
{
    char s1[64], s2[64], ts[64];

    timestr(ns, ts, sizeof(ts), cflag);
    if (!cflag) {
        cvtstr((double)total, s1, sizeof(s1));
        cvtstr(tdiv((double)total, ns), s2, sizeof(s2));
        qio_printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
               op, total, count, offset);
        qio_printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt, ts, s2,
               tdiv((double)cnt, ns));
    } else {
        qio_printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
               tdiv((double)total, ns), tdiv((double)cnt, ns));
    }
}

static void dump_buffer(const uint8_t *buf, int64_t offset, int64_t len)
{
    int64_t i, j;

    for (i = 0; i < len; i += 16) {
        qio_printf("%08" PRIx64 ":  ", offset + i);
        for (j = 0; j < 16 && i + j < len; j++) {
            qio_printf("%02x ", buf[i + j]);
        }
        qio_printf(" ");
        for (j = 0; j < 16 && i + j < len; j++) {
            uint8_t c = buf[i + j];

            qio_printf("%c", c >= ' ' && c <= '~' ? c : '.');
        }
        qio_printf("\n");
    }
}

static int64_t cvtnum(const char *s)
{
    uint64_t v;
    int ret = qemu_strtosz(s, NULL, &v);

    if (ret < 0) {
        return ret;
    }
    if (v > INT64_MAX) {
        return -ERANGE;
    }
    return v;
}

static void print_cvtnum_err(int64_t rc, const char *arg)
{
    switch (rc) {
    case -EINVAL:
        qio_printf("Parsing error: non-numeric argument, or extraneous/"
               "unrecognized suffix -- %s\n", arg);
        break;
    case -ERANGE:
        qio_printf("Parsing error: argument too large -- %s\n", arg);
        break;
    default:
        qio_printf("Parsing error: %s\n", arg);
    }
}

static int parse_pattern(const char *arg)
{
    char *end;
    long p = strtol(arg, &end, 0);

    if (p < 0 || p > 255 || *end != '\0' || end == arg) {
        qio_printf("%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return p;
}

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

/* ---- command table ---- */

typedef int CmdFunc(BlockBackend *blk, int argc, char **argv);

typedef struct IoCmd {
    const char *name;
    const char *altname;
    CmdFunc *func;
    int argmin, argmax;     /* argmax -1: unlimited */
    bool needs_blk;
    const char *args;
    const char *oneline;
} IoCmd;

static const IoCmd *find_cmd(const char *name);

static int command_usage(const IoCmd *ct)
{
    qio_printf("%s %s -- %s\n", ct->name, ct->args, ct->oneline);
    return -EINVAL;
}

/* Parse "offset len" style arguments, printing qemu-io's errors */
static bool get_num(const char *arg, int64_t *v)
{
    *v = cvtnum(arg);
    if (*v < 0) {
        print_cvtnum_err(*v, arg);
        return false;
    }
    return true;
}

/* ---- read / write ---- */

/* vmstate: read/write -b, the VM state area instead of the disk */
static int do_rw(BlockBackend *blk, bool write, int64_t offset,
                 QEMUIOVector *qiov, BdrvRequestFlags flags, bool vmstate)
{
    if (vmstate) {
        return blk_rw_vmstate(blk, qiov, offset, !write);
    }
    if (write) {
        if (flags & BDRV_REQ_ZERO_WRITE) {
            return blk_pwrite_zeroes(blk, offset, qiov->size,
                                     flags & ~BDRV_REQ_ZERO_WRITE);
        }
        return blk_pwritev(blk, offset, qiov->size, qiov, flags);
    }
    return blk_preadv(blk, offset, qiov->size, qiov, flags);
}

/* Build a qiov of several lengths (readv/writev/aio_*) */
static uint8_t *build_qiov(BlockBackend *blk, QEMUIOVector *qiov, int argc,
                           char **argv, int pattern)
{
    int64_t total = 0, len;
    uint8_t *buf, *p;
    int i;

    for (i = 0; i < argc; i++) {
        if (!get_num(argv[i], &len)) {
            return NULL;
        }
        if (len > BDRV_REQUEST_MAX_BYTES) {
            qio_printf("Argument '%s' exceeds maximum size %" PRIu64 "\n",
                   argv[i], (uint64_t)BDRV_REQUEST_MAX_BYTES);
            return NULL;
        }
        total += len;
    }
    buf = qemu_blockalign(blk_bs(blk), MAX(total, 1));
    memset(buf, pattern, total);
    qemu_iovec_init(qiov, argc);
    for (i = 0, p = buf; i < argc; i++) {
        len = cvtnum(argv[i]);
        qemu_iovec_add(qiov, p, len);
        p += len;
    }
    return buf;
}

static int read_common(BlockBackend *blk, int argc, char **argv, bool vec)
{
    bool cflag = false, qflag = false, vflag = false, pflag = false;
    bool sflag = false, lflag = false, bflag = false;
    int pattern = 0, c, ret;
    int64_t offset, count, pattern_offset = 0, pattern_count = 0, t0;
    QEMUIOVector qiov;
    uint8_t *buf;

    optind = 0;
    while ((c = getopt(argc, argv, vec ? "CP:qv" : "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'p':
            break;
        case 'C':
            cflag = true;
            break;
        case 'l':
            lflag = true;
            if (!get_num(optarg, &pattern_count)) {
                return -EINVAL;
            }
            break;
        case 'P':
            pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            if (!get_num(optarg, &pattern_offset)) {
                return -EINVAL;
            }
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return command_usage(find_cmd(vec ? "readv" : "read"));
        }
    }
    if (optind > argc - 2 || (!vec && optind != argc - 2)) {
        return command_usage(find_cmd(vec ? "readv" : "read"));
    }
    if (!get_num(argv[optind], &offset)) {
        return -EINVAL;
    }
    optind++;
    buf = build_qiov(blk, &qiov, argc - optind, argv + optind, 0xab);
    if (!buf) {
        return -EINVAL;
    }
    count = qiov.size;
    if (!pflag && (lflag || sflag)) {
        qio_printf("-l and -s require -P\n");
        ret = -EINVAL;
        goto out;
    }
    if (!lflag) {
        pattern_count = count - pattern_offset;
    }
    if (pattern_offset + pattern_count > count) {
        qio_printf("pattern verification range exceeds end of read data\n");
        ret = -EINVAL;
        goto out;
    }
    t0 = now_ns();
    ret = do_rw(blk, false, offset, &qiov, 0, bflag);
    t0 = now_ns() - t0;
    if (ret < 0) {
        qio_printf("read failed: %s\n", strerror(-ret));
        goto out;
    }
    if (pflag) {
        int64_t i;

        for (i = 0; i < pattern_count; i++) {
            if (buf[pattern_offset + i] != pattern) {
                qio_printf("Pattern verification failed at offset %" PRId64
                       ", %" PRId64 " bytes\n", offset + pattern_offset,
                       pattern_count);
                ret = -EINVAL;
                break;
            }
        }
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        dump_buffer(buf, offset, count);
    }
    print_report("read", t0, offset, count, count, 1, cflag);
out:
    qemu_iovec_destroy(&qiov);
    qemu_vfree(buf);
    return ret;
}

static int read_f(BlockBackend *blk, int argc, char **argv)
{
    return read_common(blk, argc, argv, false);
}

static int readv_f(BlockBackend *blk, int argc, char **argv)
{
    return read_common(blk, argc, argv, true);
}

static int write_common(BlockBackend *blk, int argc, char **argv, bool vec)
{
    bool cflag = false, qflag = false, zflag = false, uflag = false;
    bool compress = false, nflag = false, bflag = false;
    BdrvRequestFlags flags = 0;
    int pattern = 0xcd, c, ret;
    int64_t offset, t0;
    QEMUIOVector qiov;
    uint8_t *buf;

    optind = 0;
    while ((c = getopt(argc, argv, vec ? "CfqP:" : "bcCfnpP:quz")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'p':
            break;
        case 'c':
            compress = true;
            break;
        case 'C':
            cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'n':
            nflag = true;
            break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 'u':
            uflag = true;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            return command_usage(find_cmd(vec ? "writev" : "write"));
        }
    }
    if (optind > argc - 2 || (!vec && optind != argc - 2)) {
        return command_usage(find_cmd(vec ? "writev" : "write"));
    }
    if (zflag && compress) {
        qio_printf("-z and -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if (uflag && !zflag) {
        qio_printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (nflag && !zflag) {
        qio_printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if (!get_num(argv[optind], &offset)) {
        return -EINVAL;
    }
    optind++;
    buf = build_qiov(blk, &qiov, argc - optind, argv + optind, pattern);
    if (!buf) {
        return -EINVAL;
    }
    if (zflag) {
        flags |= BDRV_REQ_ZERO_WRITE;
        if (uflag) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        if (nflag) {
            flags |= BDRV_REQ_NO_FALLBACK;
        }
    }
    if (compress) {
        flags |= BDRV_REQ_WRITE_COMPRESSED;
    }
    t0 = now_ns();
    ret = do_rw(blk, true, offset, &qiov, flags, bflag);
    t0 = now_ns() - t0;
    if (ret < 0) {
        qio_printf("write failed: %s\n", strerror(-ret));
    } else if (!qflag) {
        print_report("wrote", t0, offset, qiov.size, qiov.size, 1, cflag);
    }
    qemu_iovec_destroy(&qiov);
    qemu_vfree(buf);
    return ret;
}

static int write_f(BlockBackend *blk, int argc, char **argv)
{
    return write_common(blk, argc, argv, false);
}

static int writev_f(BlockBackend *blk, int argc, char **argv)
{
    return write_common(blk, argc, argv, true);
}

/* ---- aio ---- */

typedef struct AioCtx {
    BlockBackend *blk;
    QEMUIOVector qiov;
    uint8_t *buf;
    int64_t offset, t0;
    bool write, qflag, cflag, vflag, pflag;
    int pattern;
} AioCtx;

static int aio_failures;

static void aio_done(void *opaque, int ret)
{
    AioCtx *ctx = opaque;
    int64_t t = now_ns() - ctx->t0;

    if (ret < 0) {
        qio_printf("%s failed: %s\n", ctx->write ? "aio_write" : "aio_read",
               strerror(-ret));
        aio_failures++;
    } else {
        if (ctx->pflag) {
            size_t i;

            for (i = 0; i < ctx->qiov.size; i++) {
                if (ctx->buf[i] != ctx->pattern) {
                    qio_printf("Pattern verification failed at offset %" PRId64
                           ", %zu bytes\n", ctx->offset, ctx->qiov.size);
                    aio_failures++;
                    break;
                }
            }
        }
        if (!ctx->qflag) {
            if (ctx->vflag) {
                dump_buffer(ctx->buf, ctx->offset, ctx->qiov.size);
            }
            print_report(ctx->write ? "wrote" : "read", t, ctx->offset,
                         ctx->qiov.size, ctx->qiov.size, 1, ctx->cflag);
        }
    }
    if (qemuio_out) {
        fflush(qemuio_out);
    }
    qemu_iovec_destroy(&ctx->qiov);
    qemu_vfree(ctx->buf);
    g_free(ctx);
}

static int aio_common(BlockBackend *blk, int argc, char **argv, bool write)
{
    AioCtx *ctx = g_new0(AioCtx, 1);
    int c;

    ctx->blk = blk;
    ctx->write = write;
    ctx->pattern = write ? 0xcd : 0;
    optind = 0;
    while ((c = getopt(argc, argv, write ? "CfqP:uzi:" : "CP:qvi:")) != -1) {
        switch (c) {
        case 'C':
            ctx->cflag = true;
            break;
        case 'q':
            ctx->qflag = true;
            break;
        case 'v':
            ctx->vflag = true;
            break;
        case 'P':
            ctx->pflag = !write;
            ctx->pattern = parse_pattern(optarg);
            if (ctx->pattern < 0) {
                g_free(ctx);
                return -EINVAL;
            }
            break;
        case 'f':
        case 'u':
        case 'z':
        case 'i':
            break;
        default:
            g_free(ctx);
            return command_usage(find_cmd(write ? "aio_write" : "aio_read"));
        }
    }
    if (optind > argc - 2) {
        g_free(ctx);
        return command_usage(find_cmd(write ? "aio_write" : "aio_read"));
    }
    if (!get_num(argv[optind], &ctx->offset)) {
        g_free(ctx);
        return -EINVAL;
    }
    optind++;
    ctx->buf = build_qiov(blk, &ctx->qiov, argc - optind, argv + optind,
                          write ? ctx->pattern : 0xab);
    if (!ctx->buf) {
        g_free(ctx);
        return -EINVAL;
    }
    ctx->t0 = now_ns();
    if (write) {
        blk_aio_pwritev(blk, ctx->offset, &ctx->qiov, 0, aio_done, ctx);
    } else {
        blk_aio_preadv(blk, ctx->offset, &ctx->qiov, 0, aio_done, ctx);
    }
    return 0;
}

static int aio_read_f(BlockBackend *blk, int argc, char **argv)
{
    return aio_common(blk, argc, argv, false);
}

static int aio_write_f(BlockBackend *blk, int argc, char **argv)
{
    return aio_common(blk, argc, argv, true);
}

static int aio_flush_f(BlockBackend *blk, int argc, char **argv)
{
    int failures;

    while (blk_aio_in_flight(blk)) {
        aio_poll(qemu_get_aio_context(), true);
    }
    failures = aio_failures;
    aio_failures = 0;
    if (blk_flush(blk) < 0 || failures) {
        return -EIO;
    }
    return 0;
}

/* ---- discard, flush, truncate, length, info, map ---- */

static int discard_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false;
    int64_t offset, bytes, t0;
    int c, ret;

    optind = 0;
    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C':
            cflag = true;
            break;
        case 'q':
            qflag = true;
            break;
        default:
            return command_usage(find_cmd("discard"));
        }
    }
    if (optind != argc - 2) {
        return command_usage(find_cmd("discard"));
    }
    if (!get_num(argv[optind], &offset) ||
        !get_num(argv[optind + 1], &bytes)) {
        return -EINVAL;
    }
    if (bytes > BDRV_REQUEST_MAX_BYTES) {
        qio_printf("length cannot exceed %" PRIu64 ", given %s\n",
               (uint64_t)BDRV_REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    t0 = now_ns();
    ret = blk_pdiscard(blk, offset, bytes);
    t0 = now_ns() - t0;
    if (ret < 0) {
        qio_printf("discard failed: %s\n", strerror(-ret));
        return ret;
    }
    if (!qflag) {
        print_report("discard", t0, offset, bytes, bytes, 1, cflag);
    }
    return 0;
}

static int flush_f(BlockBackend *blk, int argc, char **argv)
{
    int ret = blk_flush(blk);

    if (ret < 0) {
        qio_printf("flush failed: %s\n", strerror(-ret));
    }
    return ret;
}

static int truncate_f(BlockBackend *blk, int argc, char **argv)
{
    Error *err = NULL;
    int64_t offset;
    int ret;

    if (!get_num(argv[1], &offset)) {
        return -EINVAL;
    }
    ret = blk_truncate(blk, offset, false, &err);
    if (ret < 0) {
        error_report_err(err);
    }
    return ret;
}

static int length_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t size = blk_getlength(blk);
    char s1[64];

    if (size < 0) {
        qio_printf("getlength: %s\n", strerror(-size));
        return size;
    }
    cvtstr(size, s1, sizeof(s1));
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
    ret = bdrv_get_info(bs, &bdi);
    if (ret) {
        return ret;
    }
    cvtstr(bdi.cluster_size, s1, sizeof(s1));
    cvtstr(bdi.vm_state_offset, s2, sizeof(s2));
    qio_printf("cluster size: %s\n", s1);
    qio_printf("vm state offset: %s\n", s2);
    return 0;
}

static int map_is_allocated(BlockDriverState *bs, int64_t offset,
                            int64_t bytes, int64_t *pnum)
{
    int64_t num;
    int ret, first;

    ret = bdrv_is_allocated_above(bs, NULL, false, offset, bytes, &num);
    if (ret < 0) {
        return ret;
    }
    first = !!ret;
    *pnum = num;
    /* merge following ranges with the same status */
    while (bytes > num && num) {
        int64_t more;

        offset += num;
        bytes -= num;
        ret = bdrv_is_allocated_above(bs, NULL, false, offset, bytes, &more);
        if (ret < 0 || !!ret != first || !more) {
            break;
        }
        *pnum += more;
        num = more;
    }
    return first;
}

static int map_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t offset = 0, bytes = blk_getlength(blk), num;
    char s1[64], s2[64];
    int ret;

    if (bytes < 0) {
        error_report("could not get image length: %s", strerror(-bytes));
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
        cvtstr(num, s1, sizeof(s1));
        cvtstr(offset, s2, sizeof(s2));
        qio_printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
               s1, num, ret ? "    allocated" : "not allocated", s2, offset);
        offset += num;
        bytes -= num;
    }
    return 0;
}

/* ---- sleep and blkdebug ---- */

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

static int help_f(BlockBackend *blk, int argc, char **argv);

static const IoCmd cmdtab[] = {
    { "aio_flush", NULL, aio_flush_f, 0, 0, true, "",
      "completes all outstanding aio requests" },
    { "aio_read", NULL, aio_read_f, 2, -1, true,
      "[-Cqv] [-P pattern] off len [len..]",
      "asynchronously reads a number of bytes" },
    { "aio_write", NULL, aio_write_f, 2, -1, true,
      "[-Cfquz] [-P pattern] off len [len..]",
      "asynchronously writes a number of bytes" },
    { "break", NULL, break_f, 2, 2, true, "event tag",
      "sets a breakpoint on event and tags the stopped request as tag" },
    { "discard", "d", discard_f, 2, -1, true, "[-Cq] off len",
      "discards a number of bytes at a specified offset" },
    { "flush", "f", flush_f, 0, 0, true, "",
      "flush all in-core file state to disk" },
    { "help", "?", help_f, 0, 1, false, "[command]",
      "help for one or all commands" },
    { "info", "i", info_f, 0, 0, true, "",
      "prints information about the current file" },
    { "length", "l", length_f, 0, 0, true, "",
      "gets the length of the current file" },
    { "map", NULL, map_f, 0, 0, true, "",
      "prints the allocated areas of a file" },
    { "read", "r", read_f, 2, -1, true,
      "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset" },
    { "readv", NULL, readv_f, 2, -1, true,
      "[-Cqv] [-P pattern] off len [len..]",
      "reads a number of bytes at a specified offset" },
    { "remove_break", "rb", remove_break_f, 1, 1, true, "tag",
      "remove a breakpoint by tag" },
    { "resume", "r", resume_f, 1, 1, true, "tag",
      "resumes the request tagged as tag" },
    { "sleep", NULL, sleep_f, 1, 1, false, "milliseconds",
      "waits for the given value in milliseconds" },
    { "truncate", "t", truncate_f, 1, 1, true, "off",
      "truncates the current file at the given offset" },
    { "wait_break", NULL, wait_break_f, 1, 1, true, "tag",
      "waits for the suspension of a request" },
    { "write", "w", write_f, 2, -1, true,
      "[-bcCfnquz] [-P pattern] off len",
      "writes a number of bytes at a specified offset" },
    { "writev", NULL, writev_f, 2, -1, true,
      "[-Cfq] [-P pattern] off len [len..]",
      "writes a number of bytes at a specified offset" },
};

static const IoCmd *find_cmd(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cmdtab); i++) {
        if (!strcmp(cmdtab[i].name, name)) {
            return &cmdtab[i];
        }
    }
    for (i = 0; i < ARRAY_SIZE(cmdtab); i++) {
        if (cmdtab[i].altname && !strcmp(cmdtab[i].altname, name)) {
            return &cmdtab[i];
        }
    }
    return NULL;
}

void qemuio_help(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cmdtab); i++) {
        qio_printf("%s %s -- %s\n", cmdtab[i].name, cmdtab[i].args,
               cmdtab[i].oneline);
    }
    qio_printf("\nUse 'help commandname' for extended help.\n");
}

static int help_f(BlockBackend *blk, int argc, char **argv)
{
    const IoCmd *ct;

    if (argc == 1) {
        qemuio_help();
        return 0;
    }
    ct = find_cmd(argv[1]);
    if (!ct) {
        qio_printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    qio_printf("%s %s -- %s\n", ct->name, ct->args, ct->oneline);
    return 0;
}

int qemuio_command(BlockBackend *blk, const char *cmd)
{
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) gerr = NULL;
    const IoCmd *ct;
    int argc, ret;

    if (!g_shell_parse_argv(cmd, &argc, &argv, &gerr)) {
        /* empty line */
        return 0;
    }
    ct = find_cmd(argv[0]);
    if (!ct) {
        fprintf(qio_err(), "command \"%s\" not found\n", argv[0]);
        return -EINVAL;
    }
    if (ct->needs_blk && !blk) {
        fprintf(qio_err(), "no file open, try 'help open'\n");
        return -EINVAL;
    }
    if (argc - 1 < ct->argmin || (ct->argmax >= 0 && argc - 1 > ct->argmax)) {
        fprintf(qio_err(), "bad argument count %d to %s, expected ", argc - 1,
                ct->name);
        if (ct->argmax == -1) {
            fprintf(qio_err(), "at least %d arguments\n", ct->argmin);
        } else if (ct->argmin == ct->argmax) {
            fprintf(qio_err(), "%d arguments\n", ct->argmin);
        } else {
            fprintf(qio_err(), "between %d and %d arguments\n", ct->argmin,
                    ct->argmax);
        }
        return -EINVAL;
    }
    ret = ct->func(blk, argc, argv);
    if (qemuio_out) {
        /* the monitor reads the stream after each command */
        fflush(qemuio_out);
    }
    return ret;
}
