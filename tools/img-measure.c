/*
 * blockd-img measure: how big a new image would be, like qemu-img 7.2:
 *
 *   measure [--output=ofmt] [-O output_fmt] [-o options]
 *           [--size N | [-f fmt] [-l snapshot_param] [-U] filename]
 *
 * The output format's driver computes it (bdrv_measure) from the creation
 * options and, if given, the data the input image holds.  Human output:
 * "required size", "fully allocated size" and, for a qcow2 input and
 * qcow2 v3 output, "bitmaps size"; JSON: QEMU's BlockMeasureInfo.
 */
#include "qemu/osdep.h"
#include "qemu/keyval.h"
#include "tools/blockd-img.h"
#include <getopt.h>

enum {
    OPTION_OUTPUT = 256,
    OPTION_SIZE,
    OPTION_IMAGE_OPTS,
};

/* -l snapshot.id=...,snapshot.name=... or a plain name; false on error */
static bool check_snapshot_param(const char *arg)
{
    g_auto(GStrv) items = NULL;
    int i;

    if (!g_str_has_prefix(arg, "snapshot.")) {
        return true;
    }
    items = g_strsplit(arg, ",", -1);
    for (i = 0; items[i]; i++) {
        g_autofree char *key = g_strndup(items[i], strcspn(items[i], "="));

        if (strcmp(key, "snapshot.id") && strcmp(key, "snapshot.name")) {
            error_report("Invalid parameter '%s'", key);
            error_report("Failed in parsing snapshot param '%s'", arg);
            return false;
        }
    }
    return true;
}

int img_cmd_measure(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "size", required_argument, NULL, OPTION_SIZE },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    ImgOutputFormat ofmt = IMG_OFORMAT_HUMAN;
    const char *fmt = NULL, *out_fmt = "raw", *filename = NULL;
    const char *snapshot = NULL;
    g_autoptr(GString) optstr = g_string_new(NULL);
    g_autoptr(json_t) opts = NULL;
    bool force_share = false, image_opts = false;
    int64_t img_size = -1;
    BlockMeasureInfo info = { 0 };
    BlockBackend *in = NULL;
    BlockDriver *drv;
    Error *err = NULL;
    int c, ret = 1;

    optind = 0;
    while ((c = getopt_long(argc, argv, "hf:O:o:l:U", long_options,
                            NULL)) != -1) {
        switch (c) {
        case '?':
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'O':
            out_fmt = optarg;
            break;
        case 'o':
            if (!img_accumulate_options(optstr, optarg)) {
                return 1;
            }
            break;
        case 'l':
            if (!check_snapshot_param(optarg)) {
                return 1;
            }
            snapshot = optarg;
            break;
        case 'U':
            force_share = true;
            break;
        case OPTION_IMAGE_OPTS:
            image_opts = true;
            break;
        case OPTION_OUTPUT:
            if (!img_parse_output(optarg, &ofmt)) {
                return 1;
            }
            break;
        case OPTION_SIZE:
            img_size = img_cvtnum_full("image size", optarg, 0, INT64_MAX);
            if (img_size < 0) {
                return 1;
            }
            break;
        }
    }
    if (argc - optind > 1) {
        error_report("At most one filename argument is allowed.");
        return 1;
    } else if (argc - optind == 1) {
        filename = argv[optind];
    }
    if (!filename && (image_opts || fmt || snapshot)) {
        error_report("--image-opts, -f, and -l require a filename "
                     "argument.");
        return 1;
    }
    if (filename && img_size >= 0) {
        error_report("--size N cannot be used together with a filename.");
        return 1;
    }
    if (!filename && img_size < 0) {
        error_report("Either --size N or one filename must be specified.");
        return 1;
    }
    if (image_opts) {
        error_report("--image-opts is not supported");
        return 1;
    }
    if (filename) {
        in = img_open(filename, fmt, 0, force_share);
        if (!in) {
            return 1;
        }
        if (snapshot) {
            /* internal snapshots cannot be read (yet) */
            error_report("Failed to load snapshot: Can't find snapshot");
            goto out;
        }
    }
    drv = bdrv_find_format(out_fmt);
    if (!drv) {
        error_report("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (!drv->bdrv_measure) {
        error_report("Format driver '%s' does not support image creation",
                     out_fmt);
        goto out;
    }
    opts = keyval_parse(optstr->str, NULL, NULL, &err);
    if (!opts) {
        error_report_err(err);
        error_report("Invalid options for file format '%s'", out_fmt);
        goto out;
    }
    if (img_size >= 0) {
        json_object_set_new(opts, BLOCK_OPT_SIZE,
                            json_sprintf("%" PRId64, img_size));
    }
    ret = drv->bdrv_measure(opts, in ? blk_bs(in) : NULL, &info, &err);
    if (ret < 0) {
        error_report_err(err);
        if (ret == -ENOENT) {
            error_report("Invalid options for file format '%s'", out_fmt);
        }
        ret = 1;
        goto out;
    }
    if (ofmt == IMG_OFORMAT_HUMAN) {
        printf("required size: %" PRIu64 "\n", info.required);
        printf("fully allocated size: %" PRIu64 "\n", info.fully_allocated);
        if (info.has_bitmaps) {
            printf("bitmaps size: %" PRIu64 "\n", info.bitmaps);
        }
    } else {
        g_autoptr(json_t) o = json_object();

        json_object_set_new(o, "required", json_integer(info.required));
        json_object_set_new(o, "fully-allocated",
                            json_integer(info.fully_allocated));
        if (info.has_bitmaps) {
            json_object_set_new(o, "bitmaps", json_integer(info.bitmaps));
        }
        img_print_json(o);
    }
    ret = 0;
out:
    if (in) {
        blk_unref(in);
    }
    return ret;
}
