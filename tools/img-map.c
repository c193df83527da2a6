/*
 * blockd-img map and compare: both walk an image (with its backing chain)
 * by block status, as qemu-img 7.2 does.
 *
 * map: for each range, the first layer from the top whose block status
 * says DATA or ZERO defines it (depth = how many backing steps down, 0 =
 * the top); when no layer does, the range is reported at the depth of the
 * last layer with "present": false.  Neighbouring entries that agree on
 * every field (and whose host offsets are contiguous) are merged.
 *
 * compare: walks both images; ranges zero in both are skipped, ranges
 * allocated in both are read and compared, and where only one side is
 * allocated its data must read as zeroes.  With different sizes the part
 * past the smaller image must be zero unless -s (strict), where sizes and
 * block status must match exactly.  Mismatches are reported at 512-byte
 * sector granularity, as qemu-img does.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "tools/blockd-img.h"
#include <getopt.h>

#define IMG_IO_BUF_SIZE (2 * MiB)

typedef struct MapEntry {
    int64_t start;
    int64_t length;
    int64_t offset;
    int depth;
    bool present, zero, data, has_offset;
    const char *filename;
} MapEntry;

static int get_block_status(BlockDriverState *bs, int64_t offset,
                            int64_t bytes, MapEntry *e)
{
    int64_t map = 0;
    BlockDriverState *file = NULL;
    int depth = 0, ret;

    for (;;) {
        bs = bdrv_skip_filters(bs);
        ret = bdrv_block_status(bs, offset, bytes, &bytes, &map, &file);
        if (ret < 0) {
            return ret;
        }
        assert(bytes);
        if (ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA)) {
            break;
        }
        bs = bdrv_backing_bs(bs);
        if (!bs) {
            ret = 0;
            break;
        }
        depth++;
    }
    *e = (MapEntry) {
        .start = offset,
        .length = bytes,
        .data = !!(ret & BDRV_BLOCK_DATA),
        .zero = !!(ret & BDRV_BLOCK_ZERO),
        .offset = map,
        .has_offset = !!(ret & BDRV_BLOCK_OFFSET_VALID),
        .depth = depth,
        .present = !!(ret & BDRV_BLOCK_ALLOCATED),
        .filename = file ? file->filename : NULL,
    };
    return 0;
}

static bool entry_mergeable(const MapEntry *curr, const MapEntry *next)
{
    if (curr->length == 0) {
        return false;
    }
    if (curr->zero != next->zero || curr->data != next->data ||
        curr->depth != next->depth || curr->present != next->present ||
        !curr->filename != !next->filename ||
        curr->has_offset != next->has_offset) {
        return false;
    }
    if (curr->filename && strcmp(curr->filename, next->filename)) {
        return false;
    }
    if (curr->has_offset && curr->offset + curr->length != next->offset) {
        return false;
    }
    return true;
}

static int dump_map_entry(ImgOutputFormat ofmt, const MapEntry *e,
                          bool last)
{
    if (ofmt == IMG_OFORMAT_HUMAN) {
        if (e->data && !e->has_offset) {
            error_report("File contains external, encrypted or compressed "
                         "clusters.");
            return -1;
        }
        if (e->data && !e->zero) {
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   e->start, e->length, e->has_offset ? e->offset : 0,
                   e->filename ? e->filename : "");
        }
        return 0;
    }
    printf("{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %d,"
           " \"present\": %s, \"zero\": %s, \"data\": %s", e->start,
           e->length, e->depth, e->present ? "true" : "false",
           e->zero ? "true" : "false", e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    putchar('}');
    if (!last) {
        puts(",");
    }
    return 0;
}

static bool parse_offset_arg(const char *arg, int64_t *v)
{
    uint64_t u;

    if (qemu_strtosz(arg, NULL, &u) < 0 || u > INT64_MAX) {
        error_report("Invalid %s specified.", "offset");
        return false;
    }
    *v = u;
    return true;
}

int img_cmd_map(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'O' },
        { "start-offset", required_argument, NULL, 's' },
        { "max-length", required_argument, NULL, 'l' },
        { "force-share", no_argument, NULL, 'U' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ImgOutputFormat ofmt = IMG_OFORMAT_HUMAN;
    const char *fmt = NULL;
    bool force_share = false;
    int64_t start = 0, max_length = -1, length, offset;
    MapEntry curr = { .length = 0 }, next;
    BlockBackend *blk;
    BlockDriverState *bs;
    int c, ret = 0;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":f:hU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'O':
            if (!img_parse_output(optarg, &ofmt)) {
                return 1;
            }
            break;
        case 's':
            if (!parse_offset_arg(optarg, &start)) {
                return 1;
            }
            break;
        case 'l':
            if (!parse_offset_arg(optarg, &max_length)) {
                return 1;
            }
            break;
        case 'U':
            force_share = true;
            break;
        case IMG_OPT_OBJECT:
        case IMG_OPT_IMAGE_OPTS:
            if (!img_common_option(c, optarg)) {
                return 1;
            }
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    blk = img_open(argv[optind], fmt, 0, force_share);
    if (!blk) {
        return 1;
    }
    bs = blk_bs(blk);
    length = blk_getlength(blk);
    if (length < 0) {
        error_report("Failed to get size for '%s'", argv[optind]);
        blk_unref(blk);
        return 1;
    }
    if (max_length != -1) {
        length = MIN(start + max_length, length);
    }
    if (ofmt == IMG_OFORMAT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
               "File");
    } else {
        putchar('[');
    }
    for (offset = start; offset < length; offset += next.length) {
        int64_t n = MIN(1 * GiB, length - offset);

        ret = get_block_status(bs, offset, n, &next);
        if (ret < 0) {
            error_report("Could not read file metadata: %s", strerror(-ret));
            goto out;
        }
        if (entry_mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length > 0) {
            ret = dump_map_entry(ofmt, &curr, false);
            if (ret < 0) {
                goto out;
            }
        }
        curr = next;
    }
    ret = curr.length ? dump_map_entry(ofmt, &curr, true) : 0;
    if (ofmt == IMG_OFORMAT_JSON) {
        printf("]\n");
    }
out:
    blk_unref(blk);
    return ret < 0 ? 1 : 0;
}

/* ---- compare ---- */

/* offset of the first non-zero 512-byte sector in buf, or -1 */
static int64_t find_nonzero(const uint8_t *buf, int64_t n)
{
    int64_t i;

    for (i = 0; i < n; i += BDRV_SECTOR_SIZE) {
        if (!buffer_is_zero(buf + i, MIN(n - i, BDRV_SECTOR_SIZE))) {
            return i;
        }
    }
    return -1;
}

/* length of the prefix (whole sectors) that is equal / different as the
 * first sector; returns whether the first sector differs */
static bool compare_buffers(const uint8_t *b1, const uint8_t *b2,
                            int64_t bytes, int64_t *pnum)
{
    int64_t i = MIN(bytes, BDRV_SECTOR_SIZE);
    bool res = memcmp(b1, b2, i) != 0;

    while (i < bytes) {
        int64_t len = MIN(bytes - i, BDRV_SECTOR_SIZE);

        if ((memcmp(b1 + i, b2 + i, len) != 0) != res) {
            break;
        }
        i += len;
    }
    *pnum = i;
    return res;
}

static int check_empty(BlockBackend *blk, int64_t offset, int64_t bytes,
                       const char *filename, uint8_t *buf, bool quiet)
{
    int64_t idx;
    int ret = blk_pread(blk, offset, bytes, buf, 0);

    if (ret < 0) {
        error_report("Error while reading offset %" PRId64 " of %s: %s",
                     offset, filename, strerror(-ret));
        return 4;
    }
    idx = find_nonzero(buf, bytes);
    if (idx >= 0) {
        if (!quiet) {
            printf("Content mismatch at offset %" PRId64 "!\n", offset + idx);
        }
        return 1;
    }
    return 0;
}

#define STATUS_CMP_MASK (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO | \
                         BDRV_BLOCK_ALLOCATED)

static int do_compare(BlockBackend *blk1, BlockBackend *blk2,
                      const char *f1, const char *f2, bool strict,
                      bool quiet)
{
    BlockDriverState *bs1 = blk_bs(blk1), *bs2 = blk_bs(blk2);
    g_autofree uint8_t *buf1 = qemu_blockalign(bs1, IMG_IO_BUF_SIZE);
    g_autofree uint8_t *buf2 = qemu_blockalign(bs2, IMG_IO_BUF_SIZE);
    int64_t size1 = blk_getlength(blk1), size2 = blk_getlength(blk2);
    int64_t total, progress_base, offset = 0;
    int ret;

    if (size1 < 0 || size2 < 0) {
        error_report("Can't get size of %s: %s", size1 < 0 ? f1 : f2,
                     strerror(-(size1 < 0 ? size1 : size2)));
        return 4;
    }
    total = MIN(size1, size2);
    progress_base = MAX(size1, size2);
    if (strict && size1 != size2) {
        if (!quiet) {
            printf("Strict mode: Image size mismatch!\n");
        }
        return 1;
    }
    while (offset < total) {
        int64_t pnum1, pnum2, chunk;
        int st1, st2;
        bool alloc1, alloc2;

        st1 = bdrv_block_status_above(bs1, NULL, offset, size1 - offset,
                                      &pnum1, NULL, NULL, NULL);
        if (st1 < 0) {
            error_report("Sector allocation test failed for %s", f1);
            return 3;
        }
        st2 = bdrv_block_status_above(bs2, NULL, offset, size2 - offset,
                                      &pnum2, NULL, NULL, NULL);
        if (st2 < 0) {
            error_report("Sector allocation test failed for %s", f2);
            return 3;
        }
        alloc1 = st1 & BDRV_BLOCK_ALLOCATED;
        alloc2 = st2 & BDRV_BLOCK_ALLOCATED;
        assert(pnum1 && pnum2);
        chunk = MIN(MIN(pnum1, pnum2), total - offset);
        if (strict && (st1 & STATUS_CMP_MASK) != (st2 & STATUS_CMP_MASK)) {
            if (!quiet) {
                printf("Strict mode: Offset %" PRId64
                       " block status mismatch!\n", offset);
            }
            return 1;
        }
        if ((st1 & BDRV_BLOCK_ZERO) && (st2 & BDRV_BLOCK_ZERO)) {
            /* both read as zeroes */
        } else if (alloc1 == alloc2) {
            if (alloc1) {
                int64_t pnum;
                bool diff;

                chunk = MIN(chunk, IMG_IO_BUF_SIZE);
                ret = blk_pread(blk1, offset, chunk, buf1, 0);
                if (ret < 0) {
                    error_report("Error while reading offset %" PRId64
                                 " of %s: %s", offset, f1, strerror(-ret));
                    return 4;
                }
                ret = blk_pread(blk2, offset, chunk, buf2, 0);
                if (ret < 0) {
                    error_report("Error while reading offset %" PRId64
                                 " of %s: %s", offset, f2, strerror(-ret));
                    return 4;
                }
                diff = compare_buffers(buf1, buf2, chunk, &pnum);
                if (diff || pnum != chunk) {
                    if (!quiet) {
                        printf("Content mismatch at offset %" PRId64 "!\n",
                               offset + (diff ? 0 : pnum));
                    }
                    return 1;
                }
            }
        } else {
            chunk = MIN(chunk, IMG_IO_BUF_SIZE);
            ret = alloc1 ? check_empty(blk1, offset, chunk, f1, buf1, quiet)
                         : check_empty(blk2, offset, chunk, f2, buf1, quiet);
            if (ret) {
                return ret;
            }
        }
        offset += chunk;
    }

    if (size1 != size2) {
        BlockBackend *over = size1 > size2 ? blk1 : blk2;
        const char *fover = size1 > size2 ? f1 : f2;

        if (!quiet) {
            printf("Warning: Image size mismatch!\n");
        }
        while (offset < progress_base) {
            int64_t chunk;
            int st = bdrv_block_status_above(blk_bs(over), NULL, offset,
                                             progress_base - offset, &chunk,
                                             NULL, NULL, NULL);

            if (st < 0) {
                error_report("Sector allocation test failed for %s", fover);
                return 3;
            }
            if ((st & BDRV_BLOCK_ALLOCATED) && !(st & BDRV_BLOCK_ZERO)) {
                chunk = MIN(chunk, IMG_IO_BUF_SIZE);
                ret = check_empty(over, offset, chunk, fover, buf1, quiet);
                if (ret) {
                    return ret;
                }
            }
            offset += chunk;
        }
    }
    if (!quiet) {
        printf("Images are identical.\n");
    }
    return 0;
}

int img_cmd_compare(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool strict = false, quiet = false, force_share = false;
    BlockBackend *blk1, *blk2;
    int c, ret;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:F:spqU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt1 = optarg;
            break;
        case 'F':
            fmt2 = optarg;
            break;
        case 's':
            strict = true;
            break;
        case 'p':
            break;
        case 'q':
            quiet = true;
            break;
        case 'U':
            force_share = true;
            break;
        case IMG_OPT_OBJECT:
        case IMG_OPT_IMAGE_OPTS:
            if (!img_common_option(c, optarg)) {
                return 1;
            }
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 2) {
        return img_usage_error("Expecting two image file names");
    }
    blk1 = img_open(argv[optind], fmt1, 0, force_share);
    if (!blk1) {
        return 2;
    }
    blk2 = img_open(argv[optind + 1], fmt2, 0, force_share);
    if (!blk2) {
        blk_unref(blk1);
        return 2;
    }
    ret = do_compare(blk1, blk2, argv[optind], argv[optind + 1], strict,
                     quiet);
    blk_unref(blk2);
    blk_unref(blk1);
    return ret;
}
