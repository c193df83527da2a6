/*
 * blockd-img helpers shared by the subcommands: option errors, opening
 * images with qemu-img's locking, and qemu-img's JSON output.
 *
 * qemu-img prints its JSON from QEMU's QDict, whose iteration order is the
 * order of the key hashes (QDict's bucket index, tdb_hash() modulo 512),
 * not the insertion order.  Scripts compare that text, so
 * img_qdict_order() reproduces it: keys are sorted by bucket, and keys in
 * the same bucket come newest first as in QDict's bucket lists.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/keyval.h"
#include "qemu/user-object.h"
#include "tools/blockd-img.h"

bool img_image_opts;

bool img_common_option(int c, const char *arg)
{
    Error *err = NULL;

    if (c == IMG_OPT_IMAGE_OPTS) {
        img_image_opts = true;
    } else if (!user_object_check_cmdline(arg, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

void img_help(void)
{
    const char *name = error_get_progname();

    printf("%s version " BLOCKD_VERSION "\n"
           "usage: %s [standard options] command [command options]\n"
           "BlockD disk image utility (qemu-img compatible)\n"
           "\n"
           "Command syntax:\n"
           "  amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options "
           "filename\n"
           "  bench [-c count] [-d depth] [-f fmt] "
           "[--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] "
           "[-o offset] [--pattern=pattern] [-q] [-s buffer_size] "
           "[-S step_size] [-t cache] [-U] [-w] filename\n"
           "  check [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-U] "
           "filename\n"
           "  commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] "
           "[-p] filename\n"
           "  compare [-f fmt] [-F fmt] [-p] [-q] [-s] [-U] filename1 "
           "filename2\n"
           "  convert [-c] [-p] [-q] [-n] [-f fmt] [-O output_fmt] "
           "[-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] "
           "[-m num_coroutines] [-W] filename [filename2 [...]] "
           "output_filename\n"
           "  create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] "
           "[-o options] filename [size]\n"
           "  dd [-f fmt] [-O output_fmt] [-U] [bs=block_size] "
           "[count=blocks] [skip=blocks] if=input of=output\n"
           "  info [-f fmt] [--output=ofmt] [--backing-chain] [-U] "
           "filename\n"
           "  map [-f fmt] [--output=ofmt] [--start-offset=OFFSET] "
           "[--max-length=LEN] [-U] filename\n"
           "  measure [--output=ofmt] [-O output_fmt] [-o options] "
           "[--size N | [-f fmt] [-l snapshot_param] [-U] filename]\n"
           "  rebase [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] [-U] "
           "-b backing_file [-F backing_fmt] filename\n"
           "  resize [-f fmt] [--shrink] [-q] filename [+ | -]size\n"
           "\n"
           "Supported formats: raw qcow2\n", name, name);
}

int img_usage_error(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("%s", msg);
    fprintf(stderr, "Try '%s --help' for more information\n",
            error_get_progname());
    return 1;
}

int img_bad_option(int c, char **argv)
{
    if (c == ':') {
        return img_usage_error("missing argument for option '%s'",
                               argv[optind - 1]);
    }
    return img_usage_error("unrecognized option '%s'", argv[optind - 1]);
}

bool img_parse_output(const char *arg, ImgOutputFormat *fmt)
{
    if (!strcmp(arg, "json")) {
        *fmt = IMG_OFORMAT_JSON;
    } else if (!strcmp(arg, "human")) {
        *fmt = IMG_OFORMAT_HUMAN;
    } else {
        error_report("--output must be used with human or json as argument.");
        return false;
    }
    return true;
}

BlockBackend *img_open(const char *filename, const char *fmt, int flags,
                       bool force_share)
{
    return img_open_opts(filename, fmt, NULL, flags, force_share);
}

BlockBackend *img_open_opts(const char *filename, const char *fmt,
                            json_t *opts, int flags, bool force_share)
{
    Error *err = NULL;
    BlockBackend *blk;

    if (force_share) {
        if (flags & BDRV_O_RDWR) {
            error_report("Could not open '%s': force-share=on can only be "
                         "used with read-only images", filename);
            return NULL;
        }
        flags |= BDRV_O_FORCE_SHARE;
    } else {
        flags |= BDRV_O_NO_SHARE;
    }
    if (img_image_opts) {
        g_autoptr(json_t) iopts = NULL;

        if (fmt) {
            error_report("--image-opts and --format are mutually exclusive");
            return NULL;
        }
        iopts = keyval_or_json_parse(filename, NULL, &err);
        if (iopts && opts && !keyval_merge(iopts, opts, &err)) {
            g_clear_pointer(&iopts, json_decref);
        }
        if (!iopts) {
            error_report_err(err);
            return NULL;
        }
        blk = blk_new_open(NULL, NULL, iopts, flags, &err);
    } else {
        blk = blk_new_open(filename, fmt, opts, flags, &err);
    }
    if (!blk) {
        error_report("Could not open '%s': %s", filename,
                     error_get_pretty(err));
        error_free(err);
        return NULL;
    }
    return blk;
}

/* ---- JSON ---- */

static unsigned qdict_bucket(const char *name)
{
    uint32_t value = 0x238F13AFu * (uint32_t)strlen(name);
    unsigned i;

    for (i = 0; name[i]; i++) {
        value += (uint32_t)(unsigned char)name[i] << (i * 5 % 24);
    }
    return (1103515243u * value + 12345u) % 512;
}

typedef struct KeyOrder {
    const char *key;
    unsigned bucket;
    size_t seq;
} KeyOrder;

static int key_order_cmp(const void *a, const void *b)
{
    const KeyOrder *ka = a, *kb = b;

    if (ka->bucket != kb->bucket) {
        return ka->bucket < kb->bucket ? -1 : 1;
    }
    /* QDict inserts at the head of a bucket: newest first */
    return ka->seq > kb->seq ? -1 : ka->seq < kb->seq;
}

json_t *img_qdict_order(json_t *obj)
{
    json_t *out, *v;
    const char *key;
    size_t n = json_object_size(obj), i = 0;
    g_autofree KeyOrder *keys = g_new0(KeyOrder, MAX(n, 1));

    json_object_foreach(obj, key, v) {
        keys[i].key = key;
        keys[i].bucket = qdict_bucket(key);
        keys[i].seq = i;
        i++;
    }
    qsort(keys, n, sizeof(*keys), key_order_cmp);
    out = json_object();
    for (i = 0; i < n; i++) {
        json_t *child = json_object_get(obj, keys[i].key);

        if (json_is_object(child)) {
            child = img_qdict_order(child);
        } else if (json_is_array(child)) {
            json_t *arr = json_array(), *elem;
            size_t j;

            json_array_foreach(json_object_get(obj, keys[i].key), j, elem) {
                json_array_append_new(arr, json_is_object(elem) ?
                                      img_qdict_order(elem) :
                                      json_incref(elem));
            }
            child = arr;
        } else {
            json_incref(child);
        }
        json_object_set_new(out, keys[i].key, child);
    }
    return out;
}

void img_print_json(json_t *value)
{
    g_autoptr(json_t) ordered = json_is_object(value) ?
                                img_qdict_order(value) : NULL;
    g_autofree char *text = NULL;

    if (!ordered && json_is_array(value)) {
        json_t *elem;
        size_t i;

        ordered = json_array();
        json_array_foreach(value, i, elem) {
            json_array_append_new(ordered, json_is_object(elem) ?
                                  img_qdict_order(elem) : json_incref(elem));
        }
    }
    text = json_dumps(ordered ? ordered : value,
                      JSON_INDENT(4) | JSON_PRESERVE_ORDER |
                      JSON_ENCODE_ANY);
    printf("%s\n", text ? text : "null");
}

char *img_full_backing_name(const char *image, const char *backing)
{
    const char *slash;

    if (g_path_is_absolute(backing) || strstr(backing, "://") ||
        !(slash = strrchr(image, '/'))) {
        return g_strdup(backing);
    }
    return g_strdup_printf("%.*s/%s", (int)(slash - image), image, backing);
}

typedef struct AllocSizeCo {
    BlockDriverState *bs;
    int64_t ret;
} AllocSizeCo;

static void coroutine_fn alloc_size_entry(void *opaque)
{
    AllocSizeCo *a = opaque;
    BlockDriverState *bs = a->bs;

    while (bs && bs->drv && !bs->drv->bdrv_co_get_allocated_file_size) {
        bs = bs->file ? bs->file->bs : NULL;
    }
    a->ret = (bs && bs->drv) ? bs->drv->bdrv_co_get_allocated_file_size(bs)
                             : -ENOTSUP;
}

int64_t img_allocated_file_size(BlockDriverState *bs)
{
    AllocSizeCo a = { bs, -EINPROGRESS };

    qemu_co_run_sync(alloc_size_entry, &a);
    return a.ret;
}

bool img_parse_size(const char *arg, int64_t *size)
{
    uint64_t v;
    int ret;

    if (!*arg || *arg == '-' || *arg == '+') {
        return false;
    }
    ret = qemu_strtosz(arg, NULL, &v);
    if (ret < 0 || v > INT64_MAX) {
        return false;
    }
    *size = v;
    return true;
}

void img_run_co(CoroutineEntry *fn, void *opaque)
{
    qemu_co_run_sync(fn, opaque);
}

int img_preallocate(BlockBackend *blk, int64_t from, int64_t to,
                    const char *mode, Error **errp)
{
    BlockDriverState *bs = blk_bs(blk);
    int64_t chunk = 1 << 20, off;
    g_autofree uint8_t *zeroes = NULL;
    int ret = 0;

    if (!strcmp(mode, "off")) {
        return 0;
    }
    if (bs->drv != &bdrv_raw ||
        (strcmp(mode, "falloc") != 0 && strcmp(mode, "full") != 0)) {
        error_setg(errp, "Unsupported preallocation mode '%s'", mode);
        return -ENOTSUP;
    }
    if (!strcmp(mode, "falloc")) {
        /* zero writes that may not unmap allocate (fallocate) */
        for (off = from; off < to && ret >= 0; off += chunk) {
            ret = blk_pwrite_zeroes(blk, off, MIN(chunk, to - off), 0);
        }
    } else {
        zeroes = g_malloc0(chunk);
        for (off = from; off < to && ret >= 0; off += chunk) {
            ret = blk_pwrite(blk, off, MIN(chunk, to - off), zeroes, 0);
        }
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not preallocate new data");
        return ret;
    }
    return 0;
}

int64_t img_cvtnum_full(const char *name, const char *value, int64_t min,
                        int64_t max)
{
    uint64_t res;
    int err = qemu_strtosz(value, NULL, &res);

    if (err < 0 && err != -ERANGE) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E "
                     "suffixes for", name);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                     "and exabytes.");
        return err;
    }
    if (err == -ERANGE || res > (uint64_t)max || res < (uint64_t)min) {
        error_report("Invalid %s specified. Must be between %" PRId64
                     " and %" PRId64 ".", name, min, max);
        return -ERANGE;
    }
    return res;
}

int img_parse_cache(const char *mode, int *flags)
{
    *flags &= ~(BDRV_O_NOCACHE | BDRV_O_NO_FLUSH);
    if (!strcmp(mode, "none") || !strcmp(mode, "off") ||
        !strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE;
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
    } else if (strcmp(mode, "writeback") && strcmp(mode, "writethrough")) {
        return -1;
    }
    return 0;
}

/* ---- progress (-p), as QEMU's qemu-progress.c prints it ---- */

static struct {
    bool enabled;
    float min_skip;
    float current;
    float last_print;
} img_progress;

void img_progress_init(bool enabled, float min_skip)
{
    img_progress.enabled = enabled;
    img_progress.min_skip = min_skip;
    img_progress.current = 0;
    img_progress.last_print = 0;
}

void img_progress_print(float percent)
{
    float cur = MIN(percent, 100);

    img_progress.current = cur;
    if (cur > img_progress.last_print + img_progress.min_skip ||
        cur < img_progress.last_print - img_progress.min_skip ||
        cur == 0 || cur == 100) {
        img_progress.last_print = cur;
        if (img_progress.enabled) {
            printf("    (%3.2f/100%%)\r", cur);
            fflush(stdout);
        }
    }
}

void img_progress_add(float delta)
{
    img_progress_print(img_progress.current + delta);
}

void img_progress_end(void)
{
    if (img_progress.enabled) {
        printf("\n");
    }
}

/* ---- backing chains ---- */

static bool same_file(const char *a, const char *b)
{
    g_autofree char *ra = realpath(a, NULL);
    g_autofree char *rb = realpath(b, NULL);

    return ra && rb && !strcmp(ra, rb);
}

BlockDriverState *img_find_backing_image(BlockDriverState *bs,
                                         const char *name,
                                         BlockDriverState **parent)
{
    for (; bdrv_backing_bs(bs); bs = bdrv_backing_bs(bs)) {
        BlockDriverState *b = bdrv_backing_bs(bs);
        g_autofree char *rel = img_full_backing_name(bdrv_get_filename(bs),
                                                     name);

        if (!strcmp(name, bs->backing_file) ||
            same_file(name, bdrv_get_filename(b)) ||
            same_file(rel, bdrv_get_filename(b))) {
            *parent = bs;
            return b;
        }
    }
    return NULL;
}

bool img_accumulate_options(GString *options, const char *arg)
{
    size_t len = strlen(arg), i;

    /* qemu-img's is_valid_option_list(): no empty item at either end */
    for (i = len; i > 0 && arg[i - 1] == ','; i--) {
        /* trailing commas: an even number is an escaped comma */
    }
    if (!arg[0] || arg[0] == ',' || (len - i) % 2) {
        error_report("Invalid option list: %s", arg);
        return false;
    }
    if (options->len) {
        g_string_append_c(options, ',');
    }
    g_string_append(options, arg);
    return true;
}

bool img_has_help_option(const char *options)
{
    g_auto(GStrv) items = g_strsplit(options, ",", -1);
    int i;

    for (i = 0; items[i]; i++) {
        if (!strcmp(items[i], "help") || !strcmp(items[i], "?")) {
            return true;
        }
    }
    return false;
}
