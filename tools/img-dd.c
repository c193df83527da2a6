/*
 * blockd-img dd: copy an image into a new one block by block, with
 * dd(1)-style operands, like qemu-img 7.2:
 *
 *   dd [-f fmt] [-O output_fmt] [-U] [bs=block_size] [count=blocks]
 *      [skip=blocks] if=input of=output
 *
 * The output image is always created (size: the input size from the skip
 * offset on, at most count blocks), then written with bs-sized requests;
 * every byte is written, holes included.  A skip past the end of the input
 * gives an empty output image and an error line, but exit status 0, as
 * dd(1) and qemu-img do.
 */
#include "qemu/osdep.h"
#include "tools/blockd-img.h"
#include <getopt.h>

typedef struct DdArgs {
    int64_t bsz;
    int64_t count;             /* -1: no count= */
    int64_t skip;              /* -1: no skip= */
    const char *in;
    const char *out;
} DdArgs;

/* One "name=value" operand; false (error printed) if invalid */
static bool dd_operand(const char *arg, DdArgs *dd)
{
    const char *eq = strchr(arg, '=');
    g_autofree char *name = NULL;
    const char *val;

    if (!eq) {
        error_report("unrecognized operand %s", arg);
        return false;
    }
    name = g_strndup(arg, eq - arg);
    val = eq + 1;
    if (!strcmp(name, "bs")) {
        dd->bsz = img_cvtnum_full("bs", val, 1, INT_MAX);
        return dd->bsz >= 0;
    } else if (!strcmp(name, "count")) {
        dd->count = img_cvtnum_full("count", val, 0, INT64_MAX);
        return dd->count >= 0;
    } else if (!strcmp(name, "skip")) {
        dd->skip = img_cvtnum_full("skip", val, 0, INT64_MAX);
        return dd->skip >= 0;
    } else if (!strcmp(name, "if")) {
        dd->in = val;
        return true;
    } else if (!strcmp(name, "of")) {
        dd->out = val;
        return true;
    }
    error_report("unrecognized operand %s", name);
    return false;
}

static int dd_copy(BlockBackend *in, BlockBackend *out, int64_t in_pos,
                   int64_t size, int64_t bsz)
{
    g_autofree uint8_t *buf = g_malloc(bsz);
    int64_t out_pos = 0;
    int ret;

    while (in_pos < size) {
        int64_t bytes = MIN(bsz, size - in_pos);

        ret = blk_pread(in, in_pos, bytes, buf, 0);
        if (ret < 0) {
            error_report("error while reading from input image file: %s",
                         strerror(-ret));
            return ret;
        }
        in_pos += bytes;
        ret = blk_pwrite(out, out_pos, bytes, buf, 0);
        if (ret < 0) {
            error_report("error while writing to output image file: %s",
                         strerror(-ret));
            return ret;
        }
        out_pos += bytes;
    }
    return 0;
}

int img_cmd_dd(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    DdArgs dd = { .bsz = 512, .count = -1, .skip = -1 };
    const char *fmt = NULL, *out_fmt = "raw";
    g_autoptr(json_t) opts = NULL;
    BlockBackend *in = NULL, *out = NULL;
    bool force_share = false, skip_past_end;
    BlockDriver *drv;
    Error *err = NULL;
    int64_t size, in_pos;
    int c, i, ret = 1;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:O:U", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'O':
            out_fmt = optarg;
            break;
        case 'U':
            force_share = true;
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    for (i = optind; i < argc; i++) {
        if (!dd_operand(argv[i], &dd)) {
            return 1;
        }
    }
    if (!dd.in || !dd.out) {
        error_report("Must specify both input and output files");
        return 1;
    }
    in = img_open(dd.in, fmt, 0, force_share);
    if (!in) {
        return 1;
    }
    drv = bdrv_find_format(out_fmt);
    if (!drv) {
        error_report("Unknown file format");
        goto out;
    }
    if (!drv->bdrv_co_create_opts) {
        error_report("Format driver '%s' does not support image creation",
                     out_fmt);
        goto out;
    }
    size = blk_getlength(in);
    if (size < 0) {
        error_report("Failed to get size for '%s'", dd.in);
        goto out;
    }
    if (dd.count >= 0 && dd.count <= INT64_MAX / dd.bsz &&
        dd.count * dd.bsz < size) {
        size = dd.count * dd.bsz;
    }
    skip_past_end = dd.skip >= 0 && (dd.skip > INT64_MAX / dd.bsz ||
                                     size < dd.skip * dd.bsz);
    in_pos = skip_past_end ? size : dd.skip >= 0 ? dd.skip * dd.bsz : 0;

    opts = json_pack("{s:I}", BLOCK_OPT_SIZE, (json_int_t)(size - in_pos));
    if (bdrv_create(drv, dd.out, opts, &err) < 0) {
        error_report("%s: error while creating output image: %s", dd.out,
                     error_get_pretty(err));
        error_free(err);
        goto out;
    }
    out = img_open(dd.out, out_fmt, BDRV_O_RDWR, false);
    if (!out) {
        goto out;
    }
    if (skip_past_end) {
        error_report("%s: cannot skip to specified offset", dd.in);
    }
    ret = dd_copy(in, out, in_pos, size, dd.bsz) < 0 ? 1 : 0;
out:
    if (out) {
        blk_unref(out);
    }
    blk_unref(in);
    return ret;
}
