/*
 * qemu-io compatible commands, part 1: the command table and dispatcher,
 * output and number formatting, and the data commands read, readv, write,
 * writev, aio_read, aio_write and aio_flush.  The other commands are in
 * tools/qemu-io-misc.c; blockd-io adds open, close and quit.
 *
 * Output lines and number formats follow qemu-io exactly ("wrote
 * 65536/65536 bytes at offset 0", "63.453 KiB, 1 ops; 00.00 sec (...)"),
 * so iotests filters and golden files written for qemu-io apply
 * unchanged.  Options are parsed per command with getopt, like qemu-io.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "tools/qemu-io-int.h"
#include <getopt.h>

/*
 * Where output goes: stdout/stderr (blockd-io), or the FILE the daemon's
 * human-monitor-command set with qemuio_set_output() to capture it.
 */
static FILE *qemuio_out;
static bool qemuio_misalign;

#define MISALIGN_OFFSET 16

FILE *qio_out(void)
{
    return qemuio_out ? qemuio_out : stdout;
}

FILE *qio_err(void)
{
    return qemuio_out ? qemuio_out : stderr;
}

void qio_printf(const char *fmt, ...)
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

void qemuio_set_misalign(bool misalign)
{
    qemuio_misalign = misalign;
}

/* ---- number and time formatting (qemu-io's cvtstr/timestr) ---- */

void qemuio_cvtstr(double value, char *str, size_t size)
{
    static const char *const suffixes[] = {
        " EiB", " PiB", " TiB", " GiB", " MiB", " KiB",
    };
    const char *suffix = " bytes";
    char *trim;
    int i;

    /* units of KiB and above with three decimals, bytes with six */
    snprintf(str, size - 6, "%f", value);
    for (i = 0; i < 6; i++) {
        double unit = (double)(1ULL << (10 * (6 - i)));

        if (value >= unit) {
            snprintf(str, size - 4, "%.3f", value / unit);
            suffix = suffixes[i];
            break;
        }
    }
    trim = strstr(str, ".000");
    if (trim) {
        *trim = '\0';
    }
    g_strlcat(str, suffix, size);
}

static void timestr(int64_t ns, char *ts, size_t size, bool fixed)
{
    unsigned whole = ns / NANOSECONDS_PER_SECOND;
    double frac = (ns % NANOSECONDS_PER_SECOND) / 1e9;

    if (fixed || whole) {
        snprintf(ts, size, "%u:%02u:%05.2f", whole / 3600,
                 (whole % 3600) / 60, (whole % 60) + frac);
    } else {
        snprintf(ts, size, "%05.2f sec", frac);
    }
}

static double tdiv(double value, int64_t ns)
{
    return value / (ns / 1e9);
}

void qio_print_report(const char *op, int64_t ns, int64_t offset,
                      int64_t count, int64_t total, int cnt, bool cflag)
{
    char s1[64], s2[64], ts[64];

    timestr(ns, ts, sizeof(ts), cflag);
    if (!cflag) {
        qemuio_cvtstr((double)total, s1, sizeof(s1));
        qemuio_cvtstr(tdiv((double)total, ns), s2, sizeof(s2));
        qio_printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64
                   "\n", op, total, count, offset);
        qio_printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt,
                   ts, s2, tdiv((double)cnt, ns));
    } else {
        /* bytes,ops,time,bytes/sec,ops/sec */
        qio_printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
                   tdiv((double)total, ns), tdiv((double)cnt, ns));
    }
}

int64_t qio_now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
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

            qio_printf("%c", g_ascii_isalnum(c) ? c : '.');
        }
        qio_printf("\n");
    }
}

int64_t qio_cvtnum(const char *s)
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

void qio_print_cvtnum_err(int64_t rc, const char *arg)
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

bool qio_get_num(const char *arg, int64_t *v)
{
    *v = qio_cvtnum(arg);
    if (*v < 0) {
        qio_print_cvtnum_err(*v, arg);
        return false;
    }
    return true;
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

static uint8_t *qio_alloc(BlockBackend *blk, size_t len, int pattern)
{
    size_t extra = qemuio_misalign ? MISALIGN_OFFSET : 0;
    uint8_t *buf = qemu_blockalign(blk_bs(blk), MAX(len + extra, 1));

    memset(buf, pattern, len + extra);
    return buf + extra;
}

static void qio_free(uint8_t *buf)
{
    if (buf) {
        qemu_vfree(buf - (qemuio_misalign ? MISALIGN_OFFSET : 0));
    }
}

/* ---- command table ---- */

static const QemuIoCmd *find_cmd(const char *name);

void qemuio_command_usage(const QemuIoCmd *ct)
{
    qio_printf("%s %s -- %s\n", ct->name, ct->args ? ct->args : "",
               ct->oneline);
}

static int usage_of(const char *name)
{
    qemuio_command_usage(find_cmd(name));
    return -EINVAL;
}

/* ---- read / write ---- */

/* A buffer of len bytes filled from file_name, repeated (write -s) */
static uint8_t *alloc_from_file(BlockBackend *blk, size_t len,
                                const char *file_name)
{
    FILE *f = fopen(file_name, "r");
    uint8_t *buf;
    size_t n, done;

    if (!f) {
        fprintf(qio_err(), "%s: %s\n", file_name, strerror(errno));
        return NULL;
    }
    buf = qio_alloc(blk, len, 0);
    n = fread(buf, 1, len, f);
    if (ferror(f)) {
        fprintf(qio_err(), "%s: %s\n", file_name, strerror(errno));
        fclose(f);
        qio_free(buf);
        return NULL;
    }
    fclose(f);
    if (n == 0) {
        fprintf(qio_err(), "%s: file is empty\n", file_name);
        qio_free(buf);
        return NULL;
    }
    for (done = n; done < len; done += MIN(n, len - done)) {
        memcpy(buf + done, buf, MIN(n, len - done));
    }
    return buf;
}

/* A qiov over one buffer holding the lengths argv[0..argc-1] */
static uint8_t *build_qiov(BlockBackend *blk, QEMUIOVector *qiov, int argc,
                           char **argv, int pattern)
{
    g_autofree int64_t *sizes = g_new0(int64_t, MAX(argc, 1));
    int64_t total = 0;
    uint8_t *buf, *p;
    int i;

    for (i = 0; i < argc; i++) {
        if (!qio_get_num(argv[i], &sizes[i])) {
            return NULL;
        }
        if (sizes[i] > BDRV_REQUEST_MAX_BYTES) {
            qio_printf("Argument '%s' exceeds maximum size %" PRIu64 "\n",
                       argv[i], (uint64_t)BDRV_REQUEST_MAX_BYTES);
            return NULL;
        }
        if (total > BDRV_REQUEST_MAX_BYTES - sizes[i]) {
            qio_printf("The total number of bytes exceed the maximum size %"
                       PRIu64 "\n", (uint64_t)BDRV_REQUEST_MAX_BYTES);
            return NULL;
        }
        total += sizes[i];
    }
    buf = p = qio_alloc(blk, total, pattern);
    qemu_iovec_init(qiov, argc);
    for (i = 0; i < argc; i++) {
        qemu_iovec_add(qiov, p, sizes[i]);
        p += sizes[i];
    }
    return buf;
}

/* -P check of a read buffer; prints qemu-io's message */
static bool verify_pattern(const uint8_t *buf, int pattern, int64_t offset,
                           int64_t len)
{
    int64_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            qio_printf("Pattern verification failed at offset %" PRId64
                       ", %" PRId64 " bytes\n", offset, len);
            return false;
        }
    }
    return true;
}

static bool check_sector_aligned(int64_t offset, int64_t count)
{
    if (!QEMU_IS_ALIGNED(offset, BDRV_SECTOR_SIZE)) {
        qio_printf("%" PRId64 " is not a sector-aligned value for 'offset'\n",
                   offset);
        return false;
    }
    if (!QEMU_IS_ALIGNED(count, BDRV_SECTOR_SIZE)) {
        qio_printf("%" PRId64 " is not a sector-aligned value for 'count'\n",
                   count);
        return false;
    }
    return true;
}

/* read: the disk, or with -b the VM state area */
static int qio_read(BlockBackend *blk, int64_t offset, int64_t count,
                    uint8_t *buf, bool vmstate)
{
    if (vmstate) {
        QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, count);

        return blk_rw_vmstate(blk, &qiov, offset, true);
    }
    return blk_pread(blk, offset, count, buf, 0);
}

static int read_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false, vflag = false, pflag = false;
    bool sflag = false, lflag = false, bflag = false;
    int pattern = 0, c, ret;
    int64_t offset, count, pattern_offset = 0, pattern_count = 0, t0;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'C':
            cflag = true;
            break;
        case 'l':
            lflag = true;
            if (!qio_get_num(optarg, &pattern_count)) {
                return -EINVAL;
            }
            break;
        case 'p':
            /* ignored for compatibility, as qemu-io */
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
            if (!qio_get_num(optarg, &pattern_offset)) {
                return -EINVAL;
            }
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return usage_of("read");
        }
    }
    if (optind != argc - 2) {
        return usage_of("read");
    }
    if (!qio_get_num(argv[optind], &offset) ||
        !qio_get_num(argv[optind + 1], &count)) {
        return -EINVAL;
    }
    if (count > BDRV_REQUEST_MAX_BYTES) {
        qio_printf("length cannot exceed %" PRIu64 ", given %s\n",
                   (uint64_t)BDRV_REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    if (!pflag && (lflag || sflag)) {
        return usage_of("read");
    }
    if (!lflag) {
        pattern_count = count - pattern_offset;
    }
    if (pattern_count < 0 || pattern_count + pattern_offset > count) {
        qio_printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }
    if (bflag && !check_sector_aligned(offset, count)) {
        return -EINVAL;
    }
    buf = qio_alloc(blk, count, 0xab);
    t0 = qio_now_ns();
    ret = qio_read(blk, offset, count, buf, bflag);
    t0 = qio_now_ns() - t0;
    if (ret < 0) {
        qio_printf("read failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (pflag && !verify_pattern(buf + pattern_offset, pattern,
                                 offset + pattern_offset, pattern_count)) {
        ret = -EINVAL;
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        dump_buffer(buf, offset, count);
    }
    qio_print_report("read", t0, offset, count, count, 1, cflag);
out:
    qio_free(buf);
    return ret;
}

static int readv_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false, vflag = false, pflag = false;
    int pattern = 0, c, ret;
    int64_t offset, t0;
    QEMUIOVector qiov;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "CP:qv")) != -1) {
        switch (c) {
        case 'C':
            cflag = true;
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
        case 'v':
            vflag = true;
            break;
        default:
            return usage_of("readv");
        }
    }
    if (optind > argc - 2) {
        return usage_of("readv");
    }
    if (!qio_get_num(argv[optind], &offset)) {
        return -EINVAL;
    }
    optind++;
    buf = build_qiov(blk, &qiov, argc - optind, argv + optind, 0xab);
    if (!buf) {
        return -EINVAL;
    }
    t0 = qio_now_ns();
    ret = blk_preadv(blk, offset, qiov.size, &qiov, 0);
    t0 = qio_now_ns() - t0;
    if (ret < 0) {
        qio_printf("readv failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (pflag && !verify_pattern(buf, pattern, offset, qiov.size)) {
        ret = -EINVAL;
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        dump_buffer(buf, offset, qiov.size);
    }
    qio_print_report("read", t0, offset, qiov.size, qiov.size, 1, cflag);
out:
    qemu_iovec_destroy(&qiov);
    qio_free(buf);
    return ret;
}

static int write_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false, bflag = false, pflag = false;
    bool zflag = false, compress = false, sflag = false;
    BdrvRequestFlags flags = 0;
    const char *file_name = NULL;
    int pattern = 0xcd, c, ret;
    int64_t offset, count, t0;
    uint8_t *buf = NULL;

    while ((c = getopt(argc, argv, "bcCfnpP:qs:uz")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
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
            flags |= BDRV_REQ_NO_FALLBACK;
            break;
        case 'p':
            /* ignored for compatibility, as qemu-io */
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
            file_name = optarg;
            break;
        case 'u':
            flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            return usage_of("write");
        }
    }
    if (optind != argc - 2) {
        return usage_of("write");
    }
    if (bflag && zflag) {
        qio_printf("-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_FUA) && (bflag || compress)) {
        qio_printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_NO_FALLBACK) && !zflag) {
        qio_printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        qio_printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag + pflag + sflag > 1) {
        qio_printf("Only one of -z, -P, and -s can be specified at the same "
                   "time\n");
        return -EINVAL;
    }
    if (!qio_get_num(argv[optind], &offset) ||
        !qio_get_num(argv[optind + 1], &count)) {
        return -EINVAL;
    }
    if (count > BDRV_REQUEST_MAX_BYTES && !(flags & BDRV_REQ_NO_FALLBACK)) {
        qio_printf("length cannot exceed %" PRIu64 " without -n, given %s\n",
                   (uint64_t)BDRV_REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    if ((bflag || compress) && !check_sector_aligned(offset, count)) {
        return -EINVAL;
    }
    if (!zflag) {
        buf = sflag ? alloc_from_file(blk, count, file_name)
                    : qio_alloc(blk, count, pattern);
        if (!buf) {
            return -EINVAL;
        }
    }
    if (compress) {
        flags |= BDRV_REQ_WRITE_COMPRESSED;
    }
    t0 = qio_now_ns();
    if (zflag) {
        ret = blk_pwrite_zeroes(blk, offset, count, flags);
    } else if (bflag) {
        /* the VM state area (qcow2: behind the disk), as qemu-io -b */
        QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, count);

        ret = blk_rw_vmstate(blk, &qiov, offset, false);
    } else {
        ret = blk_pwrite(blk, offset, count, buf, flags);
    }
    t0 = qio_now_ns() - t0;
    if (ret < 0) {
        qio_printf("write failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        qio_print_report("wrote", t0, offset, count, count, 1, cflag);
    }
out:
    qio_free(buf);
    return ret;
}

static int writev_f(BlockBackend *blk, int argc, char **argv)
{
    bool cflag = false, qflag = false;
    BdrvRequestFlags flags = 0;
    int pattern = 0xcd, c, ret;
    int64_t offset, t0;
    QEMUIOVector qiov;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "CfqP:")) != -1) {
        switch (c) {
        case 'C':
            cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'q':
            qflag = true;
            break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        default:
            return usage_of("writev");
        }
    }
    if (optind > argc - 2) {
        return usage_of("writev");
    }
    if (!qio_get_num(argv[optind], &offset)) {
        return -EINVAL;
    }
    optind++;
    buf = build_qiov(blk, &qiov, argc - optind, argv + optind, pattern);
    if (!buf) {
        return -EINVAL;
    }
    t0 = qio_now_ns();
    ret = blk_pwritev(blk, offset, qiov.size, &qiov, flags);
    t0 = qio_now_ns() - t0;
    if (ret < 0) {
        qio_printf("writev failed: %s\n", strerror(-ret));
    } else {
        ret = 0;
        if (!qflag) {
            qio_print_report("wrote", t0, offset, qiov.size, qiov.size, 1,
                             cflag);
        }
    }
    qemu_iovec_destroy(&qiov);
    qio_free(buf);
    return ret;
}

/* ---- aio ---- */

typedef struct AioCtx {
    QEMUIOVector qiov;
    uint8_t *buf;
    int64_t offset, t0;
    bool write, qflag, cflag, vflag, pflag;
    int pattern;
} AioCtx;

static void aio_done(void *opaque, int ret)
{
    AioCtx *ctx = opaque;
    int64_t t = qio_now_ns() - ctx->t0;

    if (ret < 0) {
        qio_printf("%s failed: %s\n", ctx->write ? "aio_write" : "readv",
                   strerror(-ret));
        goto out;
    }
    if (ctx->pflag) {
        verify_pattern(ctx->buf, ctx->pattern, ctx->offset, ctx->qiov.size);
    }
    if (ctx->qflag) {
        goto out;
    }
    if (ctx->vflag) {
        dump_buffer(ctx->buf, ctx->offset, ctx->qiov.size);
    }
    qio_print_report(ctx->write ? "wrote" : "read", t, ctx->offset,
                     ctx->qiov.size, ctx->qiov.size, 1, ctx->cflag);
out:
    if (qemuio_out) {
        fflush(qemuio_out);
    }
    qemu_iovec_destroy(&ctx->qiov);
    qio_free(ctx->buf);
    g_free(ctx);
}

static int aio_common(BlockBackend *blk, int argc, char **argv, bool write)
{
    g_autofree AioCtx *ctx = g_new0(AioCtx, 1);
    AioCtx *req;
    const char *name = write ? "aio_write" : "aio_read";
    BdrvRequestFlags flags = 0;
    bool zflag = false;
    int c;

    ctx->write = write;
    ctx->pattern = write ? 0xcd : 0;
    while ((c = getopt(argc, argv, write ? "CfiqP:uz" : "CP:iqv")) != -1) {
        switch (c) {
        case 'C':
            ctx->cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'q':
            ctx->qflag = true;
            break;
        case 'v':
            ctx->vflag = true;
            break;
        case 'P':
            ctx->pflag = true;
            ctx->pattern = parse_pattern(optarg);
            if (ctx->pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'i':
            qio_printf("injecting invalid %s request\n",
                       write ? "write" : "read");
            return 0;
        case 'u':
            flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            return usage_of(name);
        }
    }
    if (optind > argc - 2) {
        return usage_of(name);
    }
    if (zflag && optind != argc - 2) {
        qio_printf("-z supports only a single length parameter\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        qio_printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag && ctx->pflag) {
        qio_printf("-z and -P cannot be specified at the same time\n");
        return -EINVAL;
    }
    if (!qio_get_num(argv[optind], &ctx->offset)) {
        return -EINVAL;
    }
    optind++;
    ctx->buf = build_qiov(blk, &ctx->qiov, argc - optind, argv + optind,
                          write ? ctx->pattern : 0xab);
    if (!ctx->buf) {
        return -EINVAL;
    }
    if (write) {
        /* a write pattern is not a read check */
        ctx->pflag = false;
    }
    if (zflag) {
        flags |= BDRV_REQ_ZERO_WRITE;
    }
    ctx->t0 = qio_now_ns();
    /* aio_done() frees the context */
    req = g_steal_pointer(&ctx);
    if (write) {
        blk_aio_pwritev(blk, req->offset, &req->qiov, flags, aio_done, req);
    } else {
        blk_aio_preadv(blk, req->offset, &req->qiov, 0, aio_done, req);
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
    /* completes every outstanding request (qemu-io: blk_drain_all) */
    while (blk_aio_in_flight(blk)) {
        aio_poll(qemu_get_aio_context(), true);
    }
    bdrv_drain_all();
    return 0;
}

/* ---- the command table and dispatcher ---- */

static const QemuIoCmd rw_cmds[] = {
    { "aio_flush", NULL, aio_flush_f, 0, 0, 0, 0, NULL,
      "completes all outstanding aio requests" },
    { "aio_read", NULL, aio_read_f, 2, -1, 0, 0,
      "[-Ciqv] [-P pattern] off len [len..]",
      "asynchronously reads a number of bytes" },
    { "aio_write", NULL, aio_write_f, 2, -1, 0, BLK_PERM_WRITE,
      "[-Cfiquz] [-P pattern] off len [len..]",
      "asynchronously writes a number of bytes" },
    { "read", "r", read_f, 2, -1, 0, 0,
      "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset" },
    { "readv", NULL, readv_f, 2, -1, 0, 0,
      "[-Cqv] [-P pattern] off len [len..]",
      "reads a number of bytes at a specified offset" },
    { "write", "w", write_f, 2, -1, 0, BLK_PERM_WRITE,
      "[-bcCfnquz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset" },
    { "writev", NULL, writev_f, 2, -1, 0, BLK_PERM_WRITE,
      "[-Cfq] [-P pattern] off len [len..]",
      "writes a number of bytes at a specified offset" },
};

static int help_f(BlockBackend *blk, int argc, char **argv);

static const QemuIoCmd help_cmd = {
    "help", "?", help_f, 0, 1, QEMUIO_CMD_GLOBAL, 0, "[command]",
    "help for one or all commands",
};

/* All commands, sorted by name as qemu-io lists them */
static GPtrArray *cmdtab;

static gint cmd_cmp(gconstpointer a, gconstpointer b)
{
    const QemuIoCmd *ca = *(const QemuIoCmd *const *)a;
    const QemuIoCmd *cb = *(const QemuIoCmd *const *)b;

    return strcmp(ca->name, cb->name);
}

static void init_cmdtab(void)
{
    size_t i;

    if (cmdtab) {
        return;
    }
    cmdtab = g_ptr_array_new();
    for (i = 0; i < G_N_ELEMENTS(rw_cmds); i++) {
        g_ptr_array_add(cmdtab, (gpointer)&rw_cmds[i]);
    }
    for (i = 0; i < qio_n_misc_cmds; i++) {
        g_ptr_array_add(cmdtab, (gpointer)&qio_misc_cmds[i]);
    }
    g_ptr_array_add(cmdtab, (gpointer)&help_cmd);
    g_ptr_array_sort(cmdtab, cmd_cmp);
}

void qemuio_add_command(const QemuIoCmd *cmd)
{
    init_cmdtab();
    g_ptr_array_add(cmdtab, (gpointer)cmd);
    g_ptr_array_sort(cmdtab, cmd_cmp);
}

static const QemuIoCmd *find_cmd(const char *name)
{
    guint i;

    init_cmdtab();
    for (i = 0; i < cmdtab->len; i++) {
        const QemuIoCmd *ct = g_ptr_array_index(cmdtab, i);

        if (!strcmp(ct->name, name) ||
            (ct->altname && !strcmp(ct->altname, name))) {
            return ct;
        }
    }
    return NULL;
}

static void help_oneline(const char *name, const QemuIoCmd *ct)
{
    qio_printf("%s ", name);
    if (ct->args) {
        qio_printf("%s ", ct->args);
    }
    qio_printf("-- %s\n", ct->oneline);
}

void qemuio_help(void)
{
    guint i;

    init_cmdtab();
    for (i = 0; i < cmdtab->len; i++) {
        const QemuIoCmd *ct = g_ptr_array_index(cmdtab, i);

        help_oneline(ct->name, ct);
    }
    qio_printf("\nUse 'help commandname' for extended help.\n");
}

static int help_f(BlockBackend *blk, int argc, char **argv)
{
    const QemuIoCmd *ct;

    if (argc < 2) {
        qemuio_help();
        return 0;
    }
    ct = find_cmd(argv[1]);
    if (!ct) {
        qio_printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    help_oneline(argv[1], ct);
    if (ct->help) {
        fflush(qio_out());
        ct->help();
    }
    return 0;
}

/* Check the argument count and take the command's permissions */
static bool prepare_cmd(BlockBackend *blk, const QemuIoCmd *ct, int argc)
{
    int n = argc - 1;

    if (!(ct->flags & (QEMUIO_CMD_GLOBAL | QEMUIO_CMD_NOFILE_OK)) && !blk) {
        fprintf(qio_err(), "no file open, try 'help open'\n");
        return false;
    }
    if (n < ct->argmin || (ct->argmax != -1 && n > ct->argmax)) {
        if (ct->argmax == -1) {
            fprintf(qio_err(), "bad argument count %d to %s, expected at "
                    "least %d arguments\n", n, ct->name, ct->argmin);
        } else if (ct->argmin == ct->argmax) {
            fprintf(qio_err(), "bad argument count %d to %s, expected %d "
                    "arguments\n", n, ct->name, ct->argmin);
        } else {
            fprintf(qio_err(), "bad argument count %d to %s, expected "
                    "between %d and %d arguments\n", n, ct->name,
                    ct->argmin, ct->argmax);
        }
        return false;
    }
    if (ct->perm && blk && blk_bs(blk)) {
        uint64_t perm, shared;
        Error *err = NULL;

        blk_get_perm(blk, &perm, &shared);
        if ((ct->perm & ~perm) &&
            !blk_set_perm(blk, perm | ct->perm, shared, &err)) {
            error_report_err(err);
            return false;
        }
    }
    return true;
}

int qemuio_command(BlockBackend *blk, const char *cmd)
{
    g_autofree char *input = g_strdup(cmd);
    g_autofree char **argv = g_new0(char *, 1);
    char *p, *rest = input;
    const QemuIoCmd *ct;
    int argc = 0, ret;

    /* words are separated by spaces, as qemu-io's breakline() */
    while ((p = strsep(&rest, " ")) != NULL) {
        if (*p) {
            argv = g_renew(char *, argv, argc + 2);
            argv[argc++] = p;
            argv[argc] = NULL;
        }
    }
    if (!argc) {
        return 0;
    }
    ct = find_cmd(argv[0]);
    if (!ct) {
        fprintf(qio_err(), "command \"%s\" not found\n", argv[0]);
        return -EINVAL;
    }
    if (!prepare_cmd(blk, ct, argc)) {
        return -EINVAL;
    }
    optind = 0;
    ret = ct->func(blk, argc, argv);
    if (qemuio_out) {
        fflush(qemuio_out);
    }
    return ret;
}
