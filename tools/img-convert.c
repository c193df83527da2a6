/*
 * blockd-img convert: copy one or more source images (concatenated) into
 * a new or existing (-n) target, sparse-aware, like qemu-img 7.2.
 *
 * Work is split into chunks of IMG_CONVERT_CHUNK (2 MiB, at least one
 * target cluster, so every chunk starts on a target cluster), handed out
 * in order to -m worker coroutines (default 8); a chunk may span the end
 * of one source and the start of the next.  A worker asks block status
 * for its chunk (the whole source chain, or only the top layer with -B,
 * where unallocated ranges are left to the target's backing file), reads
 * the data pieces, then waits for its turn (unless -W) and writes:
 *   - zero ranges are skipped on targets that read as zeroes (a fresh
 *     image without backing file), else written as write_zeroes;
 *   - data is scanned for zero runs of at least -S bytes (default 4 KiB),
 *     which are treated as zero ranges;
 *   - with -c the chunk is written by whole target clusters (compressed
 *     writes must be; the last one may be partial at the image end): a
 *     cluster holding any data is written compressed with its zero parts
 *     filled in, unless it is all zeroes;
 *   - raw -> raw copies use copy offload (copy_file_range) when possible.
 * Reads therefore overlap with each other and with the (ordered) writes,
 * which keeps a sequential target layout for qcow2.
 *
 * The target is opened with cache=unsafe by default, as qemu-img does
 * (-t changes it); its metadata is written when it is closed.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/keyval.h"
#include "qemu/memalign.h"
#include "tools/blockd-img.h"
#include <getopt.h>

#define IMG_CONVERT_CHUNK (2 * MiB)
#define IMG_CONVERT_MAX_COROUTINES 16

typedef enum PieceKind {
    PIECE_DATA,
    PIECE_ZERO,
    PIECE_BACKING,     /* leave to the target's backing file */
} PieceKind;

typedef struct ConvertState {
    BlockBackend **src;
    int64_t *src_size;
    int nsrc;
    int64_t total;
    BlockBackend *target;
    int64_t target_size;

    int64_t next_offset;       /* next chunk to hand out */
    uint64_t next_seq;         /* its sequence number */
    uint64_t write_seq;        /* whose turn it is to write */
    CoQueue write_queue;

    int64_t chunk;
    int64_t min_sparse;
    int64_t cluster_size;
    bool compressed;
    bool has_zero_init;
    bool target_has_backing;
    int64_t target_backing_size;  /* -1: no backing file */
    bool copy_range;
    bool in_order;
    bool progress;
    int running;
    int ret;
} ConvertState;

typedef struct Piece {
    int64_t offset;            /* in the target */
    int64_t bytes;
    PieceKind kind;
} Piece;

#define MAX_PIECES 64

/* Which source holds target offset, and where in it */
static int src_index(ConvertState *s, int64_t offset, int64_t *src_off,
                     int64_t *src_end)
{
    int i;

    for (i = 0; i < s->nsrc; i++) {
        if (offset < s->src_size[i]) {
            *src_off = offset;
            *src_end = s->src_size[i];
            return i;
        }
        offset -= s->src_size[i];
    }
    g_assert_not_reached();
}

static int coroutine_fn piece_status(ConvertState *s, BlockDriverState *bs,
                                     int64_t offset, int64_t src_off,
                                     int64_t bytes, int64_t *pnum,
                                     PieceKind *kind)
{
    /* past the end of a new target's backing file it reads zeroes */
    bool post_backing_zero = s->target_backing_size >= 0 &&
                             offset >= s->target_backing_size &&
                             s->has_zero_init;
    int ret;

    if (s->target_backing_size > offset) {
        bytes = MIN(bytes, s->target_backing_size - offset);
    }

    if (s->target_has_backing) {
        ret = bdrv_co_block_status(bs, true, src_off, bytes, pnum, NULL,
                                   NULL);
    } else {
        ret = bdrv_co_block_status_above(bs, NULL, true, src_off, bytes,
                                         pnum, NULL, NULL, NULL);
    }
    if (ret < 0) {
        return ret;
    }
    if (ret & BDRV_BLOCK_ZERO) {
        *kind = post_backing_zero ? PIECE_BACKING : PIECE_ZERO;
    } else if (ret & BDRV_BLOCK_DATA) {
        *kind = PIECE_DATA;
    } else {
        *kind = s->target_has_backing ? PIECE_BACKING : PIECE_DATA;
    }
    return 0;
}

static int coroutine_fn write_zeroes(ConvertState *s, int64_t offset,
                                     int64_t bytes)
{
    if (s->has_zero_init && !s->target_has_backing) {
        return 0;
    }
    return blk_co_pwrite_zeroes(s->target, offset, bytes,
                                BDRV_REQ_MAY_UNMAP);
}

/*
 * Write target clusters [offset, offset + bytes) (offset cluster aligned,
 * bytes too unless the range ends the image) compressed; buf holds the
 * data pieces of pieces[0..n), whose zero pieces are filled in here for
 * the clusters that also hold data.
 */
static int coroutine_fn write_compressed(ConvertState *s, int64_t offset,
                                         int64_t bytes, uint8_t *buf,
                                         const Piece *pieces, int n)
{
    int64_t end = offset + bytes, c, zero_start = -1;
    int first = 0, ret = 0;

    assert(offset % s->cluster_size == 0);
    for (c = offset; c < end && ret == 0; c += s->cluster_size) {
        int64_t cend = MIN(c + s->cluster_size, end);
        /* the last one reaches the target's end (zero padded) if it can */
        int64_t wend = cend == s->total && s->target_size > cend &&
                       s->target_size - c <= s->cluster_size ?
                       s->target_size : cend;
        uint8_t *cbuf = buf + (c - offset);
        bool data = false;
        int i;

        while (first < n &&
               pieces[first].offset + pieces[first].bytes <= c) {
            first++;
        }
        for (i = first; i < n && pieces[i].offset < cend; i++) {
            data |= pieces[i].kind == PIECE_DATA;
        }
        if (data) {
            for (i = first; i < n && pieces[i].offset < cend; i++) {
                int64_t a = MAX(pieces[i].offset, c);
                int64_t b = MIN(pieces[i].offset + pieces[i].bytes, cend);

                if (pieces[i].kind != PIECE_DATA) {
                    memset(buf + (a - offset), 0, b - a);
                }
            }
            memset(buf + (cend - offset), 0, wend - cend);
            data = !s->min_sparse || !buffer_is_zero(cbuf, wend - c);
        }
        if (!data) {
            /* zero clusters are written (or skipped) as one range */
            zero_start = zero_start < 0 ? c : zero_start;
            continue;
        }
        if (zero_start >= 0) {
            ret = write_zeroes(s, zero_start, c - zero_start);
            zero_start = -1;
        }
        if (ret == 0) {
            ret = blk_co_pwrite(s->target, c, wend - c, cbuf,
                                BDRV_REQ_WRITE_COMPRESSED);
        }
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s", c,
                         strerror(-ret));
            return ret;
        }
    }
    if (zero_start >= 0) {
        ret = write_zeroes(s, zero_start, end - zero_start);
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s",
                         zero_start, strerror(-ret));
        }
    }
    return ret;
}

/* Read target range [offset, offset + bytes) from the sources holding it */
static int coroutine_fn read_sources(ConvertState *s, int64_t offset,
                                     int64_t bytes, uint8_t *buf)
{
    while (bytes > 0) {
        int64_t src_off, src_end, n;
        int si = src_index(s, offset, &src_off, &src_end);
        int ret;

        n = MIN(bytes, src_end - src_off);
        ret = blk_co_pread(s->src[si], src_off, n, buf, 0);
        if (ret < 0) {
            error_report("error while reading at byte %" PRId64 ": %s",
                         src_off, strerror(-ret));
            return ret;
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return 0;
}

/*
 * Copy target range [offset, offset + bytes) from the (raw) sources by
 * copy offload; -ENOTSUP where that is unavailable (the caller then reads
 * and writes the whole range)
 */
static int coroutine_fn copy_sources(ConvertState *s, int64_t offset,
                                     int64_t bytes)
{
    while (bytes > 0) {
        int64_t src_off, src_end, n;
        int si = src_index(s, offset, &src_off, &src_end);
        int ret;

        n = MIN(bytes, src_end - src_off);
        ret = blk_co_copy_range(s->src[si], src_off, s->target, offset, n,
                                0, 0);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* write data, treating zero runs of at least min_sparse as zero ranges */
static int coroutine_fn write_sparse(ConvertState *s, int64_t offset,
                                     int64_t bytes, uint8_t *buf)
{
    int64_t unit = s->min_sparse;
    int64_t done = 0;
    int ret;

    if (!unit) {
        return blk_co_pwrite(s->target, offset, bytes, buf, 0);
    }
    while (done < bytes) {
        int64_t start = done;
        bool zero = buffer_is_zero(buf + done, MIN(unit, bytes - done));

        while (done < bytes &&
               buffer_is_zero(buf + done, MIN(unit, bytes - done)) == zero) {
            done += MIN(unit, bytes - done);
        }
        if (zero) {
            ret = write_zeroes(s, offset + start, done - start);
        } else {
            ret = blk_co_pwrite(s->target, offset + start, done - start,
                                buf + start, 0);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static void coroutine_fn convert_worker(void *opaque)
{
    ConvertState *s = opaque;
    uint8_t *buf = qemu_try_blockalign(blk_bs(s->target), s->chunk);
    Piece pieces[MAX_PIECES];

    if (!buf) {
        s->ret = s->ret ? s->ret : -ENOMEM;
    }
    while (s->ret == 0 && s->next_offset < s->total) {
        int64_t offset = s->next_offset, len, done;
        uint64_t seq = s->next_seq++;
        bool use_copy = s->copy_range;
        int i, n = 0, ret = 0;

        len = MIN(s->chunk - offset % s->chunk, s->total - offset);
        s->next_offset = offset + len;

        /* block status and reads: in parallel with other workers */
        for (done = 0; done < len && n < MAX_PIECES; ) {
            int64_t pnum, src_off, src_end;
            int si = src_index(s, offset + done, &src_off, &src_end);
            PieceKind kind;

            ret = piece_status(s, blk_bs(s->src[si]), offset + done, src_off,
                               MIN(len - done, src_end - src_off), &pnum,
                               &kind);
            if (ret < 0) {
                error_report("error while reading block status at offset "
                             "%" PRId64 ": %s", src_off, strerror(-ret));
                break;
            }
            pnum = MIN(pnum, MIN(len - done, src_end - src_off));
            if (n && pieces[n - 1].kind == kind) {
                pieces[n - 1].bytes += pnum;
            } else {
                pieces[n++] = (Piece) { offset + done, pnum, kind };
            }
            done += pnum;
        }
        if (ret == 0 && done < len) {
            /* too fragmented: the rest of the chunk is read as data */
            pieces[n - 1].bytes += len - done;
            pieces[n - 1].kind = PIECE_DATA;
        }
        for (i = 0; ret == 0 && i < n; i++) {
            if (pieces[i].kind != PIECE_DATA || use_copy) {
                continue;
            }
            ret = read_sources(s, pieces[i].offset, pieces[i].bytes,
                               buf + (pieces[i].offset - offset));
        }

        /* writes: in chunk order unless -W */
        while (s->in_order && s->write_seq != seq && s->ret == 0) {
            qemu_co_queue_wait(&s->write_queue, NULL);
        }
        if (ret == 0 && s->ret == 0 && s->compressed) {
            /* no backing pieces: -c refuses a backing file */
            ret = write_compressed(s, offset, len, buf, pieces, n);
            n = 0;
        }
        for (i = 0; ret == 0 && s->ret == 0 && i < n; i++) {
            Piece *p = &pieces[i];
            uint8_t *pbuf = buf + (p->offset - offset);

            if (p->kind == PIECE_ZERO && !s->min_sparse) {
                /* -S 0: a fully allocated target, zeroes written as data */
                memset(pbuf, 0, p->bytes);
                ret = blk_co_pwrite(s->target, p->offset, p->bytes, pbuf, 0);
            } else if (p->kind == PIECE_ZERO) {
                ret = write_zeroes(s, p->offset, p->bytes);
            } else if (p->kind == PIECE_BACKING) {
                continue;
            } else if (use_copy) {
                ret = copy_sources(s, p->offset, p->bytes);
                if (ret == -ENOTSUP) {
                    /* no offload here: read and write from now on */
                    s->copy_range = false;
                    ret = read_sources(s, p->offset, p->bytes, pbuf);
                    if (ret < 0) {
                        break;
                    }
                    ret = write_sparse(s, p->offset, p->bytes, pbuf);
                }
            } else {
                ret = write_sparse(s, p->offset, p->bytes, pbuf);
            }
            if (ret < 0) {
                error_report("error while writing at byte %" PRId64 ": %s",
                             p->offset, strerror(-ret));
            }
        }
        if (ret < 0 && s->ret == 0) {
            s->ret = ret;
        }
        s->write_seq++;
        qemu_co_queue_restart_all(&s->write_queue);
        if (s->progress) {
            printf("    (%3.2f/100%%)\r", (double)MIN(s->write_seq *
                   s->chunk, s->total) * 100 / MAX(s->total, 1));
            fflush(stdout);
        }
    }
    qemu_vfree(buf);
    s->running--;
    qemu_co_queue_restart_all(&s->write_queue);
}

static bool is_raw_file(BlockBackend *blk)
{
    BlockDriverState *bs = blk_bs(blk);

    return bs->drv == &bdrv_raw && bs->file && bs->file->bs->drv == &bdrv_file;
}

static int parse_cache(const char *mode, int *flags)
{
    *flags &= ~(BDRV_O_NOCACHE | BDRV_O_NO_FLUSH);
    if (!strcmp(mode, "none") || !strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE;
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
    } else if (strcmp(mode, "writeback") && strcmp(mode, "writethrough")) {
        error_report("Invalid cache option: %s", mode);
        return -1;
    }
    return 0;
}

static int create_target(const char *out, const char *ofmt, GString *optstr,
                         const char *backing, const char *backing_fmt,
                         int64_t size, bool compressed)
{
    BlockDriver *drv = bdrv_find_format(ofmt);
    g_autoptr(json_t) opts = NULL;
    Error *err = NULL;

    if (!drv || !drv->bdrv_co_create_opts) {
        error_report("Unknown file format '%s'", ofmt);
        return -1;
    }
    if (compressed && drv != &bdrv_qcow2) {
        error_report("Compression not supported for this file format");
        return -1;
    }
    opts = keyval_parse(optstr->str, NULL, NULL, &err);
    if (!opts) {
        error_report_err(err);
        return -1;
    }
    json_object_set_new(opts, BLOCK_OPT_SIZE, json_integer(size));
    if (backing) {
        json_object_set_new(opts, BLOCK_OPT_BACKING_FILE,
                            json_string(backing));
        if (backing_fmt) {
            json_object_set_new(opts, BLOCK_OPT_BACKING_FMT,
                                json_string(backing_fmt));
        }
    }
    if (bdrv_create(drv, out, opts, &err) < 0) {
        error_report("%s: error while converting %s: %s", out, ofmt,
                     error_get_pretty(err));
        error_free(err);
        return -1;
    }
    return 0;
}

int img_cmd_convert(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *ofmt = "raw", *backing = NULL;
    const char *backing_fmt = NULL, *cache = "unsafe", *out;
    g_autoptr(GString) optstr = g_string_new(NULL);
    bool skip_create = false, quiet = false, force_share = false;
    ConvertState s = { .min_sparse = 8 * BDRV_SECTOR_SIZE,
                       .in_order = true };
    int64_t num_co = 8, sparse;
    int tflags = BDRV_O_RDWR | BDRV_O_NO_BACKING;
    BlockDriverInfo bdi = { 0 };
    Coroutine *co[IMG_CONVERT_MAX_COROUTINES];
    int c, i, ret = 1;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:O:B:Cco:l:S:pt:T:qnm:WUF:r:",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'O':
            ofmt = optarg;
            break;
        case 'B':
            backing = optarg;
            break;
        case 'F':
            backing_fmt = optarg;
            break;
        case 'c':
            s.compressed = true;
            break;
        case 'C':
            s.copy_range = true;
            break;
        case 'o':
            if (optstr->len) {
                g_string_append_c(optstr, ',');
            }
            g_string_append(optstr, optarg);
            break;
        case 'S':
            if (!img_parse_size(optarg, &sparse) ||
                sparse % BDRV_SECTOR_SIZE || sparse > 2 * MiB) {
                error_report("Invalid buffer size for sparse output "
                             "specified. Valid sizes are multiples of 512 "
                             "up to 2 MiB.");
                return 1;
            }
            s.min_sparse = sparse;
            break;
        case 'p':
            s.progress = true;
            break;
        case 't':
            cache = optarg;
            break;
        case 'T':
        case 'r':
        case 'l':
            break;
        case 'q':
            quiet = true;
            break;
        case 'n':
            skip_create = true;
            break;
        case 'm':
            if (qemu_strtoi64(optarg, NULL, 0, &num_co) < 0 || num_co < 1 ||
                num_co > IMG_CONVERT_MAX_COROUTINES) {
                error_report("Invalid number of coroutines. Allowed number "
                             "of coroutines is between 1 and %d",
                             IMG_CONVERT_MAX_COROUTINES);
                return 1;
            }
            break;
        case 'W':
            s.in_order = false;
            break;
        case 'U':
            force_share = true;
            break;
        case IMG_OPT_OBJECT:
            if (!img_common_option(c, optarg)) {
                return 1;
            }
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (quiet) {
        s.progress = false;
    }
    if (optind > argc - 2) {
        error_report("Must specify image file name");
        return 1;
    }
    if (backing_fmt && !backing) {
        error_report("Specifying backing image format requires a backing "
                     "image");
        return 1;
    }
    if (backing && skip_create) {
        error_report("Specifying a backing file makes no sense when "
                     "skipping image creation");
        return 1;
    }
    if (s.compressed && backing) {
        error_report("Cannot compress to an image with a backing file");
        return 1;
    }
    if (parse_cache(cache, &tflags) < 0) {
        return 1;
    }
    out = argv[argc - 1];
    s.nsrc = argc - 1 - optind;
    s.src = g_new0(BlockBackend *, s.nsrc);
    s.src_size = g_new0(int64_t, s.nsrc);
    for (i = 0; i < s.nsrc; i++) {
        s.src[i] = img_open(argv[optind + i], fmt, 0, force_share);
        if (!s.src[i]) {
            goto out;
        }
        s.src_size[i] = blk_getlength(s.src[i]);
        if (s.src_size[i] < 0) {
            error_report("Could not get size of %s: %s", argv[optind + i],
                         strerror(-s.src_size[i]));
            goto out;
        }
        s.total += s.src_size[i];
    }

    if (!skip_create) {
        if (create_target(out, ofmt, optstr, backing, backing_fmt, s.total,
                          s.compressed) < 0) {
            goto out;
        }
    }
    s.target = img_open(out, skip_create ? NULL : ofmt, tflags, false);
    if (!s.target) {
        goto out;
    }
    if (skip_create && blk_getlength(s.target) < s.total) {
        error_report("Output image is too small (%" PRId64 " < %" PRId64
                     ")", blk_getlength(s.target), s.total);
        goto out;
    }
    s.target_size = blk_getlength(s.target);
    if (s.compressed && blk_bs(s.target)->drv != &bdrv_qcow2) {
        error_report("Compression not supported for this file format");
        goto out;
    }
    s.target_has_backing = backing != NULL;
    s.target_backing_size = -1;
    if (backing) {
        g_autofree char *path = img_full_backing_name(out, backing);
        BlockDriverState *bbs = bdrv_open_file(path, backing_fmt, NULL,
                                               BDRV_O_FORCE_SHARE, NULL);

        if (bbs) {
            s.target_backing_size = bdrv_getlength(bbs);
            bdrv_unref(bbs);
        }
    }
    /* a fresh image reads as zeroes (qcow2: no backing; raw: truncated) */
    s.has_zero_init = !skip_create;
    s.cluster_size = 512;
    if (bdrv_get_info(blk_bs(s.target), &bdi) == 0 && bdi.cluster_size > 0) {
        s.cluster_size = bdi.cluster_size;
    }
    s.chunk = MAX(IMG_CONVERT_CHUNK, s.cluster_size);
    if (s.copy_range || (!s.compressed && s.nsrc >= 1 && is_raw_file(
                             s.target))) {
        bool all_raw = true;

        for (i = 0; i < s.nsrc; i++) {
            all_raw &= is_raw_file(s.src[i]);
        }
        /* offload only raw -> raw (qcow2 sources need their mapping) */
        s.copy_range = all_raw && is_raw_file(s.target) && !s.compressed;
    }
    qemu_co_queue_init(&s.write_queue);

    for (i = 0; i < num_co; i++) {
        co[i] = qemu_coroutine_create(convert_worker, &s);
        s.running++;
    }
    for (i = 0; i < num_co; i++) {
        qemu_coroutine_enter(co[i]);
    }
    while (s.running > 0) {
        aio_poll(qemu_get_aio_context(), true);
    }
    if (s.progress) {
        printf("    (100.00/100%%)\n");
    }
    if (s.ret == 0) {
        s.ret = blk_flush(s.target);
        if (s.ret < 0) {
            error_report("error while flushing the target: %s",
                         strerror(-s.ret));
        }
    }
    ret = s.ret < 0 ? 1 : 0;
out:
    if (s.target) {
        blk_unref(s.target);
    }
    for (i = 0; i < s.nsrc; i++) {
        if (s.src[i]) {
            blk_unref(s.src[i]);
        }
    }
    g_free(s.src);
    g_free(s.src_size);
    return ret;
}
