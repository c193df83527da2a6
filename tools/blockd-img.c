/*
 * blockd-img: a qemu-img compatible image tool.
 *
 *   blockd-img COMMAND [OPTIONS] ...
 *
 * Commands (same syntax, text output, JSON shapes and exit codes as
 * qemu-img 7.2): create, info, check, compare, map, convert, resize,
 * dd, commit, rebase, measure, amend, bench.
 * This file holds the entry point, create, info and resize; the other
 * commands live in tools/img-*.c (linked from libblockd.a).  Error
 * messages are single lines prefixed with the program's base name
 * ("blockd-img: "; "qemu-img: " for a copy named qemu-img) as QEMU's.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/keyval.h"
#include "block/qcow2.h"
#include "tools/blockd-img.h"
#include <getopt.h>

/* ---- create ---- */

/* qemu-img prints the create options in its option list order */
static const char *const qcow2_print_order[] = {
    "cluster_size", "extended_l2", "preallocation", "compression_type",
    "size", "backing_file", "backing_fmt", "compat", "data_file",
    "data_file_raw", "lazy_refcounts", "refcount_bits", NULL,
};
static const char *const raw_print_order[] = {
    "size", "preallocation", NULL,
};
static const char *const size_opts[] = { "size", "cluster_size", NULL };

static bool is_size_opt(const char *key)
{
    return g_strv_contains(size_opts, key);
}

static void print_formatting(const char *filename, const char *fmt,
                             json_t *opts)
{
    const char *const *order = strcmp(fmt, "qcow2") ? raw_print_order
                                                    : qcow2_print_order;
    g_autoptr(GString) line = g_string_new(NULL);
    g_autoptr(json_t) shown = json_deep_copy(opts);
    const char *key;
    json_t *v;
    int i;

    if (!strcmp(fmt, "qcow2")) {
        /* defaults qemu-img always prints */
        static const char *const defs[][2] = {
            { "cluster_size", "65536" }, { "extended_l2", "off" },
            { "compression_type", "zlib" }, { "lazy_refcounts", "off" },
            { "refcount_bits", "16" },
        };
        for (i = 0; i < (int)G_N_ELEMENTS(defs); i++) {
            if (!json_object_get(shown, defs[i][0])) {
                json_object_set_new(shown, defs[i][0],
                                    json_string(defs[i][1]));
            }
        }
    }
    g_string_append_printf(line, "Formatting '%s', fmt=%s", filename, fmt);
    for (i = 0; order[i]; i++) {
        v = json_object_get(shown, order[i]);
        if (v) {
            g_string_append_printf(line, " %s=%s", order[i],
                                   json_string_value(v));
            json_object_del(shown, order[i]);
        }
    }
    json_object_foreach(shown, key, v) {
        g_string_append_printf(line, " %s=%s", key, json_string_value(v));
    }
    printf("%s\n", line->str);
}

static int64_t backing_size(const char *filename, const char *backing,
                            const char *backing_fmt, Error **errp)
{
    g_autofree char *path = img_full_backing_name(filename, backing);
    BlockDriverState *bs;
    int64_t len;

    bs = bdrv_open_file(path, backing_fmt, NULL,
                        BDRV_O_NO_BACKING | BDRV_O_FORCE_SHARE, errp);
    if (!bs) {
        return -EINVAL;
    }
    len = bdrv_getlength(bs);
    bdrv_unref(bs);
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the backing file size");
    }
    return len;
}

/* The image creation options blockd implements, per format. */
typedef struct CreateOptionHelp {
    const char *name, *type, *help;
} CreateOptionHelp;

static const CreateOptionHelp qcow2_create_options[] = {
    { "backing_file", "str", "File name of a base image" },
    { "backing_fmt", "str", "Image format of the base image" },
    { "cluster_size", "size", "qcow2 cluster size" },
    { "compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "lazy_refcounts", "bool (on/off)", "Postpone refcount updates" },
    { "preallocation", "str",
      "Preallocation mode (allowed values: off, metadata)" },
    { "refcount_bits", "num", "Width of a reference count entry in bits" },
    { "size", "size", "Virtual disk size" },
    { NULL }
};

static const CreateOptionHelp raw_create_options[] = {
    { "size", "size", "Virtual disk size" },
    { NULL }
};

/* `create -f FMT -o help`, in qemu-img's layout. */
static int print_create_options(const char *fmt)
{
    const CreateOptionHelp *opts;

    if (!strcmp(fmt, "qcow2")) {
        opts = qcow2_create_options;
    } else if (!strcmp(fmt, "raw")) {
        opts = raw_create_options;
    } else {
        error_report("Unknown file format '%s'", fmt);
        return 1;
    }
    printf("Supported %s options:\n", fmt);
    for (; opts->name; opts++) {
        g_autofree char *lhs = g_strdup_printf("%s=<%s>", opts->name,
                                               opts->type);
        printf("  %-22s - %s\n", lhs, opts->help);
    }
    printf("\nThe protocol level may support further options.\n"
           "Specify the target filename to include those options.\n");
    return 0;
}

int img_cmd_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL;
    const char *filename;
    g_autoptr(GString) optstr = g_string_new(NULL);
    g_autoptr(json_t) opts = NULL;
    bool unsafe = false, quiet = false;
    Error *err = NULL;
    BlockDriver *drv;
    const char *key;
    uint64_t rounded;
    json_t *v;
    int c, ret;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'F':
            backing_fmt = optarg;
            break;
        case 'b':
            backing = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            if (!strcmp(optarg, "help") || !strcmp(optarg, "?")) {
                return print_create_options(fmt);
            }
            if (optstr->len) {
                g_string_append_c(optstr, ',');
            }
            g_string_append(optstr, optarg);
            break;
        case 'q':
            quiet = true;
            break;
        case 'u':
            unsafe = true;
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
    if (optind >= argc) {
        return img_usage_error("Expecting image file name");
    }
    filename = argv[optind++];
    drv = bdrv_find_format(fmt);
    if (!drv) {
        error_report("%s: Unknown file format '%s'", filename, fmt);
        return 1;
    }
    if (!drv->bdrv_co_create_opts) {
        error_report("%s: Format driver '%s' does not support image "
                     "creation", filename, fmt);
        return 1;
    }
    opts = keyval_parse(optstr->str, NULL, NULL, &err);
    if (!opts) {
        error_report_err(err);
        return 1;
    }
    /* normalise values to the strings qemu-img prints */
    json_object_foreach(opts, key, v) {
        if (!json_is_string(v)) {
            error_report("Invalid parameter '%s'", key);
            return 1;
        }
        if (is_size_opt(key)) {
            uint64_t sz;

            if (qemu_strtosz(json_string_value(v), NULL, &sz) < 0) {
                error_report("%s: Parameter '%s' expects a non-negative "
                             "number below 2^64", filename, key);
                fprintf(stderr, "Optional suffix k, M, G, T, P or E means "
                        "kilo-, mega-, giga-, tera-, peta-\nand exabytes, "
                        "respectively.\n");
                return 1;
            }
            json_object_set_new(opts, key,
                                json_sprintf("%" PRIu64, sz));
        }
    }
    if (backing) {
        json_object_set_new(opts, BLOCK_OPT_BACKING_FILE,
                            json_string(backing));
    }
    if (backing_fmt) {
        json_object_set_new(opts, BLOCK_OPT_BACKING_FMT,
                            json_string(backing_fmt));
    }
    if (optind < argc) {
        int64_t size;

        if (json_object_get(opts, BLOCK_OPT_SIZE)) {
            error_report("%s: The image size must be specified only once",
                         filename);
            return 1;
        }
        if (!img_parse_size(argv[optind], &size)) {
            error_report("Invalid image size specified. You may use k, M, "
                         "G, T, P or E suffixes for");
            error_report("kilobytes, megabytes, gigabytes, terabytes, "
                         "petabytes and exabytes.");
            return 1;
        }
        json_object_set_new(opts, BLOCK_OPT_SIZE,
                            json_sprintf("%" PRId64, size));
        optind++;
    }
    if (optind != argc) {
        return img_usage_error("Unexpected argument: %s", argv[optind]);
    }
    key = json_string_value(json_object_get(opts, BLOCK_OPT_BACKING_FILE));
    if (key && !json_object_get(opts, BLOCK_OPT_BACKING_FMT)) {
        g_autofree char *path = img_full_backing_name(filename, key);
        BlockDriverState *bbs = bdrv_open_file(path, NULL, NULL,
                                               BDRV_O_NO_BACKING |
                                               BDRV_O_FORCE_SHARE, NULL);

        error_report("%s: Backing file specified without backing format",
                     filename);
        if (bbs) {
            fprintf(stderr, "Detected format of %s.\n",
                    bdrv_get_format_name(bbs));
            bdrv_unref(bbs);
        }
        return 1;
    }
    if (key && !unsafe) {
        const char *bfmt = json_string_value(json_object_get(
                                             opts, BLOCK_OPT_BACKING_FMT));
        int64_t len = backing_size(filename, key, bfmt, &err);

        if (len < 0) {
            error_report("%s: Could not open backing image: %s", filename,
                         error_get_pretty(err));
            error_free(err);
            return 1;
        }
        if (!json_object_get(opts, BLOCK_OPT_SIZE)) {
            json_object_set_new(opts, BLOCK_OPT_SIZE,
                                json_sprintf("%" PRId64, len));
        }
    }
    if (!json_object_get(opts, BLOCK_OPT_SIZE)) {
        error_report("%s: Image creation needs a size parameter", filename);
        return 1;
    }
    if (!quiet) {
        print_formatting(filename, fmt, opts);
        fflush(stdout);
    }
    /* images are whole sectors: qemu-img's create drivers round up */
    if (qemu_strtosz(json_string_value(json_object_get(opts, BLOCK_OPT_SIZE)),
                     NULL, &rounded) == 0) {
        json_object_set_new(opts, BLOCK_OPT_SIZE,
                            json_sprintf("%" PRIu64, (uint64_t)
                                         ROUND_UP(rounded, BDRV_SECTOR_SIZE)));
    }
    ret = bdrv_create(drv, filename, opts, &err);
    if (ret < 0) {
        error_report("%s: %s", filename, error_get_pretty(err));
        error_free(err);
        return 1;
    }
    return 0;
}

/* ---- info ---- */

static json_t *qcow2_specific(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    json_t *data = json_object();
    json_t *spec = json_object();

    json_object_set_new(data, "compat", json_string(s->qcow_version >= 3 ?
                                                    "1.1" : "0.10"));
    json_object_set_new(data, "compression-type", json_string("zlib"));
    if (s->qcow_version >= 3) {
        json_object_set_new(data, "lazy-refcounts", json_boolean(
            s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS));
    }
    json_object_set_new(data, "refcount-bits",
                        json_integer(s->refcount_bits));
    if (s->qcow_version >= 3) {
        json_object_set_new(data, "corrupt", json_boolean(
            s->incompatible_features & QCOW2_INCOMPAT_CORRUPT));
        json_object_set_new(data, "extended-l2", json_false());
    }
    json_object_set_new(spec, "type", json_string("qcow2"));
    json_object_set_new(spec, "data", data);
    return spec;
}

/* ImageInfo of one image (opened without its backing file) */
static json_t *collect_info(const char *filename, const char *fmt,
                            bool force_share)
{
    BlockBackend *blk = img_open(filename, fmt, BDRV_O_NO_BACKING,
                                 force_share);
    BlockDriverState *bs;
    BlockDriverInfo bdi = { 0 };
    json_t *info;
    int64_t size, actual;

    if (!blk) {
        return NULL;
    }
    bs = blk_bs(blk);
    size = blk_getlength(blk);
    if (size < 0) {
        error_report("Can't get image size '%s': %s", filename,
                     strerror(-size));
        blk_unref(blk);
        return NULL;
    }
    info = json_object();
    json_object_set_new(info, "virtual-size", json_integer(size));
    /* an option string names no file: show the node's, as qemu-img */
    json_object_set_new(info, "filename",
                        json_string(img_image_opts ? bdrv_get_filename(bs)
                                                   : filename));
    if (bs->drv == &bdrv_qcow2 && bdrv_get_info(bs, &bdi) == 0 &&
        bdi.cluster_size > 0) {
        json_object_set_new(info, "cluster-size",
                            json_integer(bdi.cluster_size));
    }
    json_object_set_new(info, "format",
                        json_string(bdrv_get_format_name(bs)));
    actual = img_allocated_file_size(bs);
    if (actual >= 0) {
        json_object_set_new(info, "actual-size", json_integer(actual));
    }
    if (bs->drv == &bdrv_qcow2) {
        json_object_set_new(info, "format-specific", qcow2_specific(bs));
    }
    json_object_set_new(info, "dirty-flag", json_boolean(bdi.is_dirty));
    if (bs->backing_file[0]) {
        g_autofree char *full = img_full_backing_name(filename,
                                                      bs->backing_file);

        json_object_set_new(info, "backing-filename",
                            json_string(bs->backing_file));
        json_object_set_new(info, "full-backing-filename",
                            json_string(full));
        if (bs->backing_format[0]) {
            json_object_set_new(info, "backing-filename-format",
                                json_string(bs->backing_format));
        }
    }
    blk_unref(blk);
    return info;
}

static void print_specific_human(json_t *spec)
{
    json_t *data = json_object_get(spec, "data");
    static const struct {
        const char *key, *label;
    } fields[] = {
        { "compat", "compat" },
        { "compression-type", "compression type" },
        { "lazy-refcounts", "lazy refcounts" },
        { "refcount-bits", "refcount bits" },
        { "corrupt", "corrupt" },
        { "extended-l2", "extended l2" },
    };
    size_t i;

    printf("Format specific information:\n");
    for (i = 0; i < G_N_ELEMENTS(fields); i++) {
        json_t *v = json_object_get(data, fields[i].key);

        if (!v) {
            continue;
        }
        if (json_is_string(v)) {
            printf("    %s: %s\n", fields[i].label, json_string_value(v));
        } else if (json_is_integer(v)) {
            printf("    %s: %" JSON_INTEGER_FORMAT "\n", fields[i].label,
                   json_integer_value(v));
        } else {
            printf("    %s: %s\n", fields[i].label,
                   json_is_true(v) ? "true" : "false");
        }
    }
}

static void print_info_human(json_t *info)
{
    const char *bf = json_string_value(json_object_get(info,
                                                       "backing-filename"));
    const char *full = json_string_value(json_object_get(
                                         info, "full-backing-filename"));
    const char *bfmt = json_string_value(json_object_get(
                                         info, "backing-filename-format"));
    json_t *cs = json_object_get(info, "cluster-size");
    json_t *actual = json_object_get(info, "actual-size");
    json_t *spec = json_object_get(info, "format-specific");
    int64_t vsize = json_integer_value(json_object_get(info,
                                                       "virtual-size"));
    g_autofree char *vs = size_to_str(vsize);
    g_autofree char *ds = actual ? size_to_str(json_integer_value(actual))
                                 : g_strdup("unavailable");

    printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRId64
           " bytes)\ndisk size: %s\n",
           json_string_value(json_object_get(info, "filename")),
           json_string_value(json_object_get(info, "format")), vs, vsize, ds);
    if (cs) {
        printf("cluster_size: %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(cs));
    }
    if (json_is_true(json_object_get(info, "dirty-flag"))) {
        printf("cleanly shut down: no\n");
    }
    if (bf) {
        printf("backing file: %s", bf);
        if (full && strcmp(bf, full)) {
            printf(" (actual path: %s)", full);
        }
        printf("\n");
    }
    if (bfmt) {
        printf("backing file format: %s\n", bfmt);
    }
    if (spec) {
        print_specific_human(spec);
    }
}

int img_cmd_info(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'O' },
        { "backing-chain", no_argument, NULL, 'B' },
        { "force-share", no_argument, NULL, 'U' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ImgOutputFormat ofmt = IMG_OFORMAT_HUMAN;
    const char *fmt = NULL;
    bool chain = false, force_share = false;
    g_autoptr(json_t) list = json_array();
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal,
                                                       g_free, NULL);
    g_autofree char *name = NULL;
    size_t i;
    int c;

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
        case 'B':
            chain = true;
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
    name = g_strdup(argv[optind]);
    for (;;) {
        json_t *info;
        const char *next, *nfmt;

        if (g_hash_table_contains(seen, name)) {
            error_report("Backing file '%s' creates an infinite loop.",
                         name);
            return 1;
        }
        g_hash_table_add(seen, g_strdup(name));
        info = collect_info(name, fmt, force_share);
        if (!info) {
            return 1;
        }
        json_array_append_new(list, info);
        next = json_string_value(json_object_get(info,
                                                 "full-backing-filename"));
        if (!chain || !next) {
            break;
        }
        nfmt = json_string_value(json_object_get(info,
                                                 "backing-filename-format"));
        fmt = nfmt;
        g_free(name);
        name = g_strdup(next);
    }
    if (ofmt == IMG_OFORMAT_JSON) {
        img_print_json(chain ? list : json_array_get(list, 0));
        return 0;
    }
    for (i = 0; i < json_array_size(list); i++) {
        if (i) {
            printf("\n");
        }
        print_info_human(json_array_get(list, i));
    }
    return 0;
}

/* ---- resize ---- */

int img_cmd_resize(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "shrink", no_argument, NULL, 'S' },
        { "preallocation", required_argument, NULL, 'P' },
        IMG_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    static const char *const prealloc_modes[] = {
        "off", "metadata", "falloc", "full", NULL,
    };
    const char *fmt = NULL, *filename, *sizearg, *prealloc = "off";
    bool shrink = false, quiet = false;
    int64_t cur, size, n;
    BlockBackend *blk;
    Error *err = NULL;
    int c, rel = 0, ret;

    /* "-1G" is a size, not an option: take it off before getopt */
    if (argc > 1 && argv[argc - 1][0] == '-' && argv[argc - 1][1] &&
        g_ascii_isdigit(argv[argc - 1][1])) {
        argc--;
        sizearg = argv[argc];
    } else {
        sizearg = NULL;
    }
    optind = 0;
    while ((c = getopt_long(argc, argv, ":f:hq", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'S':
            shrink = true;
            break;
        case 'P':
            if (!g_strv_contains(prealloc_modes, optarg)) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            prealloc = optarg;
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
    if (!sizearg) {
        if (optind + 2 != argc) {
            return img_usage_error("Not enough arguments");
        }
        sizearg = argv[argc - 1];
    } else if (optind + 1 != argc) {
        return img_usage_error("Not enough arguments");
    }
    filename = argv[optind];
    if (*sizearg == '+' || *sizearg == '-') {
        rel = *sizearg == '+' ? 1 : -1;
        sizearg++;
    }
    if (!img_parse_size(sizearg, &n)) {
        error_report("Invalid image size specified. You may use k, M, G, T, "
                     "P or E suffixes for");
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                     "and exabytes.");
        return 1;
    }
    blk = img_open(filename, fmt, BDRV_O_RDWR | BDRV_O_RESIZE, false);
    if (!blk) {
        return 1;
    }
    cur = blk_getlength(blk);
    if (cur < 0) {
        error_report("Failed to inquire current image length: %s",
                     strerror(-cur));
        blk_unref(blk);
        return 1;
    }
    size = rel > 0 ? cur + n : rel < 0 ? cur - n : n;
    if (size <= 0) {
        error_report("New image size must be positive");
        blk_unref(blk);
        return 1;
    }
    if (size <= cur && strcmp(prealloc, "off") != 0) {
        error_report("Preallocation can only be used for growing images");
        blk_unref(blk);
        return 1;
    }
    if (size < cur && !shrink) {
        error_report("Use the --shrink option to perform a shrink "
                     "operation.");
        warn_report("Shrinking an image will delete all data beyond the "
                    "shrunken image's end. Before performing such an "
                    "operation, make sure there is no important data "
                    "there.");
        blk_unref(blk);
        return 1;
    }
    ret = blk_truncate(blk, size, false, &err);
    if (ret == 0) {
        ret = img_preallocate(blk, cur, size, prealloc, &err);
    }
    blk_unref(blk);
    if (ret < 0) {
        error_report_err(err);
        return 1;
    }
    if (!quiet) {
        printf("Image resized.\n");
    }
    return 0;
}

/* ---- main ---- */

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    { "amend", img_cmd_amend },
    { "bench", img_cmd_bench },
    { "check", img_cmd_check },
    { "commit", img_cmd_commit },
    { "compare", img_cmd_compare },
    { "convert", img_cmd_convert },
    { "create", img_cmd_create },
    { "dd", img_cmd_dd },
    { "info", img_cmd_info },
    { "map", img_cmd_map },
    { "measure", img_cmd_measure },
    { "rebase", img_cmd_rebase },
    { "resize", img_cmd_resize },
};

int main(int argc, char **argv)
{
    const char *cmd;
    size_t i;
    int ret;

    error_init_progname(argv[0]);
    if (argc < 2) {
        return img_usage_error("Not enough arguments");
    }
    cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        img_help();
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("%s version " BLOCKD_VERSION "\n", error_get_progname());
        return 0;
    }
    qemu_init_main_loop();
    bdrv_init();
    for (i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (!strcmp(cmd, commands[i].name)) {
            fflush(stdout);
            ret = commands[i].fn(argc - 1, argv + 1);
            bdrv_drain_all();
            return ret;
        }
    }
    return img_usage_error("Command not found: %s", cmd);
}
