/*
 * blockd-img amend: change format options of an existing image, like
 * qemu-img 7.2:
 *
 *   amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename
 *
 * The driver's bdrv_co_amend does the work (qcow2: compat, lazy_refcounts;
 * backing_file/backing_fmt only to their current values); size is
 * changed afterwards through the generic truncate, as QEMU's qcow2 amend
 * does last.  -o help lists the amend options of the format.
 */
#include "qemu/osdep.h"
#include "qemu/keyval.h"
#include "tools/blockd-img.h"
#include <getopt.h>

enum {
    OPTION_FORCE = 256,
};

typedef struct AmendOptionHelp {
    const char *name, *type, *help;
} AmendOptionHelp;

/* qemu-img's list for qcow2, in its order */
static const AmendOptionHelp qcow2_amend_options[] = {
    { "backing_file", "str", "File name of a base image" },
    { "backing_fmt", "str", "Image format of the base image" },
    { "compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "data_file", "str", "File name of an external data file" },
    { "data_file_raw", "bool (on/off)",
      "The external data file must stay valid as a raw image" },
    { "encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds" },
    { "encrypt.keyslot", "num",
      "Select a single keyslot to modify explicitly" },
    { "encrypt.new-secret", "str", "New secret to set in the matching "
      "keyslots. Empty string to erase" },
    { "encrypt.old-secret", "str",
      "Select all keyslots that match this password" },
    { "encrypt.state", "str",
      "Select new state of affected keyslots (active/inactive)" },
    { "lazy_refcounts", "bool (on/off)", "Postpone refcount updates" },
    { "refcount_bits", "num", "Width of a reference count entry in bits" },
    { "size", "size", "Virtual disk size" },
    { NULL }
};

/* creation-only options of qcow2 (for the hint) */
static const char *const qcow2_create_only[] = {
    "cluster_size", "extended_l2", "preallocation", "compression_type",
    "encryption", "encrypt.format", "encrypt.key-secret",
    "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.ivgen-alg",
    "encrypt.ivgen-hash-alg", "encrypt.hash-alg", NULL
};

static int print_amend_help(const char *fmt)
{
    const AmendOptionHelp *o;
    BlockDriver *drv = bdrv_find_format(fmt);

    if (!drv) {
        error_report("Unknown file format '%s'", fmt);
        return 1;
    }
    if (!drv->bdrv_co_amend) {
        error_report("Format driver '%s' does not support option amendment",
                     fmt);
        return 1;
    }
    printf("Amend options for '%s':\n", fmt);
    for (o = qcow2_amend_options; o->name; o++) {
        g_autofree char *lhs = g_strdup_printf("%s=<%s>", o->name, o->type);

        printf("  %-22s - %s\n", lhs, o->help);
    }
    return 0;
}

/* Every key an amend option of qcow2; false (error printed) if not */
static bool check_amend_keys(json_t *opts)
{
    const char *key;
    json_t *v;

    json_object_foreach(opts, key, v) {
        const AmendOptionHelp *o;

        if (!strcmp(key, "encrypt") && json_is_object(v)) {
            continue;           /* encrypt.*: the driver says no */
        }

        for (o = qcow2_amend_options; o->name; o++) {
            if (!strcmp(o->name, key)) {
                break;
            }
        }
        if (o->name) {
            continue;
        }
        error_report("Invalid parameter '%s'", key);
        if (g_strv_contains(qcow2_create_only, key)) {
            fprintf(stderr, "This option is only supported for image "
                    "creation\n");
        }
        return false;
    }
    return true;
}

typedef struct AmendCo {
    BlockDriverState *bs;
    json_t *opts;
    bool force;
    Error *err;
    int ret;
} AmendCo;

static void coroutine_fn amend_entry(void *opaque)
{
    AmendCo *a = opaque;

    a->ret = a->bs->drv->bdrv_co_amend(a->bs, a->opts, a->force, &a->err);
    if (a->ret == 0) {
        a->ret = bdrv_co_flush(a->bs);
        if (a->ret < 0) {
            error_setg_errno(&a->err, -a->ret, "Could not flush the image");
        }
    }
}

int img_cmd_amend(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force", no_argument, NULL, OPTION_FORCE },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *cache = "writeback", *filename;
    g_autoptr(GString) optstr = NULL;
    g_autoptr(json_t) opts = NULL;
    bool quiet = false, progress = false, force = false;
    BlockBackend *blk = NULL;
    AmendCo a = { 0 };
    uint64_t size = 0;
    bool has_size = false;
    int flags = BDRV_O_RDWR | BDRV_O_RESIZE;
    int c, ret = 1;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'o':
            if (!optstr) {
                optstr = g_string_new(NULL);
            }
            if (!img_accumulate_options(optstr, optarg)) {
                return 1;
            }
            break;
        case 'f':
            fmt = optarg;
            break;
        case 't':
            cache = optarg;
            break;
        case 'p':
            progress = true;
            break;
        case 'q':
            quiet = true;
            break;
        case OPTION_FORCE:
            force = true;
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (!optstr) {
        return img_usage_error("Must specify options (-o)");
    }
    if (quiet) {
        progress = false;
    }
    img_progress_init(progress, 1.0f);
    filename = optind == argc - 1 ? argv[argc - 1] : NULL;
    if (fmt && img_has_help_option(optstr->str)) {
        ret = print_amend_help(fmt);
        goto out;
    }
    if (!filename) {
        error_report("Expecting one image file name");
        goto out;
    }
    if (img_parse_cache(cache, &flags) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    blk = img_open(filename, fmt, flags, false);
    if (!blk) {
        goto out;
    }
    a.bs = blk_bs(blk);
    fmt = bdrv_get_format_name(a.bs);
    if (img_has_help_option(optstr->str)) {
        ret = print_amend_help(fmt);
        goto out;
    }
    if (!a.bs->drv->bdrv_co_amend) {
        error_report("Format driver '%s' does not support option amendment",
                     fmt);
        goto out;
    }
    opts = keyval_parse(optstr->str, NULL, NULL, &a.err);
    if (!opts || !check_amend_keys(opts)) {
        if (a.err) {
            error_report_err(a.err);
        }
        goto out;
    }
    if (!bdrv_opt_get_size(opts, BLOCK_OPT_SIZE, &size, &has_size,
                           &a.err)) {
        error_report_err(a.err);
        goto out;
    }
    img_progress_print(0);
    a.opts = opts;
    a.force = force;
    img_run_co(amend_entry, &a);
    if (a.ret == 0 && has_size) {
        a.ret = blk_truncate(blk, size, true, &a.err);
    }
    img_progress_print(100);
    if (a.ret < 0) {
        error_report_err(a.err);
        goto out;
    }
    ret = 0;
out:
    img_progress_end();
    if (blk) {
        blk_unref(blk);
    }
    return ret;
}
