/*
 * blockd-img bench: a simple I/O benchmark, like qemu-img 7.2:
 *
 *   bench [-c count] [-d depth] [-f fmt] [--flush-interval=flushes]
 *         [--no-drain] [-i aio] [-n] [-o offset] [--pattern=pattern]
 *         [-q] [-s buffer_size] [-S step_size] [-t cache] [-U] [-w]
 *         filename
 *
 * count requests of buffer_size bytes (read, or written with -w filled
 * with the pattern byte) are kept depth at a time in flight through the
 * BlockBackend's asynchronous interface, from offset on in steps of
 * step_size (default: buffer_size), wrapping at the end of the image.
 * With --flush-interval a flush follows every that many requests; the
 * queue is drained before it unless --no-drain.  The time is printed at
 * the end.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "tools/blockd-img.h"
#include <getopt.h>
#include <sys/time.h>

enum {
    OPTION_FLUSH_INTERVAL = 256,
    OPTION_NO_DRAIN,
    OPTION_PATTERN,
    OPTION_IMAGE_OPTS,
};

typedef struct BenchData {
    BlockBackend *blk;
    uint64_t image_size;
    bool write;
    int bufsize;
    int step;
    int nrreq;
    int n;
    int flush_interval;
    bool drain_on_flush;
    uint8_t *buf;
    QEMUIOVector qiov;
    int in_flight;
    bool in_flush;
    uint64_t offset;
} BenchData;

static void bench_undrained_flush_cb(void *opaque, int ret)
{
    if (ret < 0) {
        error_report("Failed flush request: %s", strerror(-ret));
        exit(EXIT_FAILURE);
    }
}

/* A request (or a drained flush) completed: issue what may follow */
static void bench_cb(void *opaque, int ret)
{
    BenchData *b = opaque;

    if (ret < 0) {
        error_report("Failed request: %s", strerror(-ret));
        exit(EXIT_FAILURE);
    }
    if (b->in_flush) {
        /* a flush with a drained queue is done: go on */
        assert(b->in_flight == 0);
        b->in_flush = false;
    } else if (b->in_flight > 0) {
        int remaining = b->n - b->in_flight;

        b->n--;
        b->in_flight--;
        if (b->flush_interval && remaining % b->flush_interval == 0) {
            if (!b->in_flight || !b->drain_on_flush) {
                if (b->drain_on_flush) {
                    b->in_flush = true;
                    blk_aio_flush(b->blk, bench_cb, b);
                } else {
                    blk_aio_flush(b->blk, bench_undrained_flush_cb, b);
                }
            }
            if (b->drain_on_flush) {
                return;
            }
        }
    }
    while (b->n > b->in_flight && b->in_flight < b->nrreq) {
        int64_t offset = b->offset;
        QEMUIOVector *qiov = &b->qiov;   /* all requests: same pattern */

        /* completions may run inside the call: count it first */
        b->in_flight++;
        b->offset += b->step;
        b->offset %= b->image_size;
        if (b->write) {
            blk_aio_pwritev(b->blk, offset, qiov, 0, bench_cb, b);
        } else {
            blk_aio_preadv(b->blk, offset, qiov, 0, bench_cb, b);
        }
    }
}

/* qemu_strtoul() into [0, INT_MAX]; false if invalid */
static bool parse_uint(const char *arg, unsigned long max, int *value)
{
    unsigned long res;

    if (qemu_strtoul(arg, NULL, 0, &res) < 0 || res > max) {
        return false;
    }
    *value = res;
    return true;
}

int img_cmd_bench(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "flush-interval", required_argument, NULL, OPTION_FLUSH_INTERVAL },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "pattern", required_argument, NULL, OPTION_PATTERN },
        { "no-drain", no_argument, NULL, OPTION_NO_DRAIN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *filename;
    bool is_write = false, force_share = false;
    int count = 75000, depth = 64, pattern = 0, flush_interval = 0;
    int64_t offset = 0, bufsize = 4096, step = 0, image_size;
    BenchData data = { 0 };
    BlockBackend *blk;
    struct timeval t1, t2;
    int flags = 0, c;

    data.drain_on_flush = true;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'c':
            if (!parse_uint(optarg, INT_MAX, &count)) {
                error_report("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            if (!parse_uint(optarg, INT_MAX, &depth)) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'n':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            flags &= ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING);
            if (!strcmp(optarg, "native")) {
                flags |= BDRV_O_NATIVE_AIO;
            } else if (!strcmp(optarg, "io_uring")) {
                flags |= BDRV_O_IO_URING;
            } else if (strcmp(optarg, "threads")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            offset = img_cvtnum_full("offset", optarg, 0, INT64_MAX);
            if (offset < 0) {
                return 1;
            }
            break;
        case 'q':
            /* qemu-img bench prints its lines even with -q */
            break;
        case 's':
            bufsize = img_cvtnum_full("buffer size", optarg, 0, INT_MAX);
            if (bufsize < 0) {
                return 1;
            }
            break;
        case 'S':
            step = img_cvtnum_full("step_size", optarg, 0, INT_MAX);
            if (step < 0) {
                return 1;
            }
            break;
        case 't':
            if (img_parse_cache(optarg, &flags) < 0) {
                error_report("Invalid cache mode");
                return 1;
            }
            break;
        case 'w':
            flags |= BDRV_O_RDWR;
            is_write = true;
            break;
        case 'U':
            force_share = true;
            break;
        case OPTION_PATTERN:
            if (!parse_uint(optarg, 0xff, &pattern)) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            break;
        case OPTION_FLUSH_INTERVAL:
            if (!parse_uint(optarg, INT_MAX, &flush_interval)) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPTION_NO_DRAIN:
            data.drain_on_flush = false;
            break;
        case OPTION_IMAGE_OPTS:
            error_report("--image-opts is not supported");
            return 1;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    filename = argv[argc - 1];
    if (!is_write && flush_interval) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (flush_interval && flush_interval < depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    blk = img_open(filename, fmt, flags, force_share);
    if (!blk) {
        return 1;
    }
    image_size = blk_getlength(blk);
    if (image_size <= 0) {
        blk_unref(blk);
        return 1;
    }
    data.blk = blk;
    data.image_size = image_size;
    data.bufsize = bufsize;
    data.step = step ? step : bufsize;
    data.nrreq = depth;
    data.n = count;
    data.offset = offset;
    data.write = is_write;
    data.flush_interval = flush_interval;

    printf("Sending %d %s requests, %d bytes each, %d in parallel "
           "(starting at offset %" PRId64 ", step size %d)\n",
           data.n, data.write ? "write" : "read", data.bufsize, data.nrreq,
           offset, data.step);
    if (flush_interval) {
        printf("Sending flush every %d requests\n", flush_interval);
    }
    fflush(stdout);

    data.buf = qemu_blockalign(blk_bs(blk), MAX(bufsize, 1));
    memset(data.buf, pattern, bufsize);
    qemu_iovec_init_buf(&data.qiov, data.buf, bufsize);

    gettimeofday(&t1, NULL);
    bench_cb(&data, 0);
    while (data.n > 0) {
        aio_poll(qemu_get_aio_context(), true);
    }
    gettimeofday(&t2, NULL);
    printf("Run completed in %3.3f seconds.\n",
           (t2.tv_sec - t1.tv_sec) +
           ((double)(t2.tv_usec - t1.tv_usec) / 1000000));

    qemu_vfree(data.buf);
    blk_unref(blk);
    return 0;
}
