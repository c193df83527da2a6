/*
 * blockd-img check: run the format driver's bdrv_co_check and report like
 * qemu-img 7.2.  After a repair that fixed anything the image is checked
 * again and that second result is reported (with the counts of what was
 * fixed), so "No errors" after "-r" means the repaired image is clean.
 *
 * Exit status: 0 clean, 1 check failed / internal errors, 2 corruptions,
 * 3 leaks only, 63 the format has no check.
 *
 * A qcow2 image marked corrupt (or dirty) can only be opened read-write
 * for repair: check -r passes the driver option "x-check" for qcow2, which
 * the driver accepts only for that purpose.
 */
#include "qemu/osdep.h"
#include "tools/blockd-img.h"
#include <getopt.h>

typedef struct CheckCo {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    int ret;
} CheckCo;

static void coroutine_fn check_entry(void *opaque)
{
    CheckCo *cc = opaque;

    memset(cc->res, 0, sizeof(*cc->res));
    cc->ret = cc->bs->drv->bdrv_co_check(cc->bs, cc->res, cc->fix);
}

static int run_check(BlockDriverState *bs, BdrvCheckResult *res,
                     BdrvCheckMode fix)
{
    CheckCo cc = { bs, res, fix, -EINPROGRESS };

    if (!bs->drv || !bs->drv->bdrv_co_check) {
        return -ENOTSUP;
    }
    img_run_co(check_entry, &cc);
    return cc.ret;
}

static void dump_human(const BdrvCheckResult *r)
{
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image "
                   "may corrupt it.\n", r->corruptions);
        }
        if (r->leaks) {
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   r->leaks);
        }
        if (r->check_errors) {
            printf("\n%d internal errors have occurred during the check.\n",
                   r->check_errors);
        }
    }
    if (r->total_clusters != 0 && r->allocated_clusters != 0) {
        printf("%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

static void dump_json(const BdrvCheckResult *r, const char *filename,
                      const char *format)
{
    g_autoptr(json_t) o = json_object();

#define SET_IF(key, v) \
    do { \
        if (v) { \
            json_object_set_new(o, key, json_integer(v)); \
        } \
    } while (0)

    json_object_set_new(o, "filename", json_string(filename));
    json_object_set_new(o, "format", json_string(format));
    json_object_set_new(o, "check-errors", json_integer(r->check_errors));
    SET_IF("image-end-offset", r->image_end_offset);
    SET_IF("corruptions", r->corruptions);
    SET_IF("leaks", r->leaks);
    SET_IF("corruptions-fixed", r->corruptions_fixed);
    SET_IF("leaks-fixed", r->leaks_fixed);
    SET_IF("total-clusters", r->total_clusters);
    SET_IF("allocated-clusters", r->allocated_clusters);
    SET_IF("fragmented-clusters", r->fragmented_clusters);
    SET_IF("compressed-clusters", r->compressed_clusters);
#undef SET_IF
    img_print_json(o);
}

/* Format of filename as it will be opened: the magic says qcow2? */
static bool is_qcow2_file(const char *filename)
{
    uint8_t magic[4] = { 0 };
    FILE *f = fopen(filename, "rb");
    bool ret;

    if (!f) {
        return false;
    }
    ret = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "QFI\xfb", 4);
    fclose(f);
    return ret;
}

int img_cmd_check(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, 'O' },
        { "force-share", no_argument, NULL, 'U' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ImgOutputFormat ofmt = IMG_OFORMAT_HUMAN;
    const char *fmt = NULL, *filename;
    bool quiet = false, force_share = false;
    BdrvCheckMode fix = 0;
    BdrvCheckResult res;
    g_autoptr(json_t) opts = NULL;
    BlockBackend *blk;
    BlockDriverState *bs;
    int c, ret, flags = BDRV_O_NO_BACKING;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:r:qU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'r':
            flags |= BDRV_O_RDWR;
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                return img_usage_error("Unknown option value for -r "
                                       "(expecting 'leaks' or 'all'): %s",
                                       optarg);
            }
            break;
        case 'O':
            if (!img_parse_output(optarg, &ofmt)) {
                return 1;
            }
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
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    filename = argv[optind];
    if (fix && (fmt ? !strcmp(fmt, "qcow2") : is_qcow2_file(filename))) {
        opts = json_pack("{s:b}", "x-check", 1);
        fmt = "qcow2";
    }
    /* -r opens read-write, which -U refuses */
    blk = img_open_opts(filename, fmt, opts, flags, force_share);
    if (!blk) {
        return 1;
    }
    bs = blk_bs(blk);
    ret = run_check(bs, &res, fix);
    if (ret == -ENOTSUP) {
        error_report("This image format does not support checks");
        blk_unref(blk);
        return 63;
    }
    if (res.corruptions_fixed || res.leaks_fixed) {
        int cfixed = res.corruptions_fixed, lfixed = res.leaks_fixed;

        if (ofmt == IMG_OFORMAT_HUMAN && !quiet) {
            printf("The following inconsistencies were found and repaired:"
                   "\n\n    %d leaked clusters\n    %d corruptions\n\n"
                   "Double checking the fixed image now...\n", lfixed,
                   cfixed);
        }
        ret = run_check(bs, &res, 0);
        res.corruptions_fixed = cfixed;
        res.leaks_fixed = lfixed;
    }
    if (!ret && !quiet) {
        if (ofmt == IMG_OFORMAT_JSON) {
            dump_json(&res, filename, bdrv_get_format_name(bs));
        } else {
            dump_human(&res);
        }
    }
    blk_unref(blk);
    if (ret || res.check_errors) {
        if (ret) {
            error_report("Check failed: %s", strerror(-ret));
        } else {
            error_report("Check failed");
        }
        return 1;
    }
    if (res.corruptions) {
        return 2;
    }
    return res.leaks ? 3 : 0;
}
