/*
 * qcow2 image creation (blockd-img create, drive-backup targets).
 *
 * Options (QEMU's qcow2 create options, typed JSON or keyval strings):
 *   size, cluster_size (64k), backing_file, backing_fmt,
 *   compat ("0.10"/"v2" or "1.1"/"v3", default 1.1), refcount_bits (16),
 *   lazy_refcounts (off), preallocation (off|metadata),
 *   extended_l2 (off only), compression_type (zlib only).
 * Without size, the size of the backing file is used.
 *
 * The fresh image is laid out as: header cluster (with the backing format
 * and feature name table extensions and the backing file name), refcount
 * table, refcount blocks describing all of these, then the L1 table.
 * Everything is written in one request after truncating the file, so a
 * crash during creation leaves either nothing valid or a complete image.
 * preallocation=metadata then opens the image and allocates every L2
 * table and data cluster through the normal allocation path.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"
#include "block/block-backend.h"

typedef struct Qcow2CreateOpts {
    uint64_t size;
    bool has_size;
    uint64_t cluster_size;
    char *backing_file;
    char *backing_fmt;
    int version;
    uint64_t refcount_bits;
    bool lazy_refcounts;
    bool prealloc_metadata;
} Qcow2CreateOpts;

static const char *const prealloc_names[] = {
    "off", "metadata", "falloc", "full", NULL
};

static bool parse_create_opts(json_t *opts, Qcow2CreateOpts *o, Error **errp)
{
    g_autofree char *compat = NULL;
    g_autofree char *ctype = NULL;
    g_autofree char *data_file = NULL;
    bool extended_l2 = false;
    int prealloc = 0;
    const char *key;
    json_t *value;

    o->cluster_size = QCOW2_DEFAULT_CLUSTER_SIZE;
    o->refcount_bits = 16;
    o->version = 3;
    if (!bdrv_opt_get_size(opts, BLOCK_OPT_SIZE, &o->size, &o->has_size,
                           errp) ||
        !bdrv_opt_get_size(opts, BLOCK_OPT_CLUSTER_SIZE, &o->cluster_size,
                           NULL, errp) ||
        !bdrv_opt_get_str(opts, BLOCK_OPT_BACKING_FILE, &o->backing_file,
                          NULL, errp) ||
        !bdrv_opt_get_str(opts, BLOCK_OPT_BACKING_FMT, &o->backing_fmt,
                          NULL, errp) ||
        !bdrv_opt_get_str(opts, "compat", &compat, NULL, errp) ||
        !bdrv_opt_get_uint(opts, "refcount_bits", &o->refcount_bits, NULL,
                           errp) ||
        !bdrv_opt_get_bool(opts, "lazy_refcounts", &o->lazy_refcounts, NULL,
                           errp) ||
        !bdrv_opt_get_enum(opts, "preallocation", prealloc_names, &prealloc,
                           NULL, errp) ||
        !bdrv_opt_get_bool(opts, "extended_l2", &extended_l2, NULL, errp) ||
        !bdrv_opt_get_str(opts, "compression_type", &ctype, NULL, errp) ||
        !bdrv_opt_get_str(opts, "data_file", &data_file, NULL, errp)) {
        return false;
    }
    json_object_foreach(opts, key, value) {
        error_setg(errp, "Invalid parameter '%s'", key);
        return false;
    }
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
            o->version = 2;
        } else if (!strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
            o->version = 3;
        } else {
            error_setg(errp, "Parameter 'version' does not accept value "
                       "'%s'", compat);
            return false;
        }
    }
    if (o->cluster_size < (1 << QCOW_MIN_CLUSTER_BITS) ||
        o->cluster_size > (1 << QCOW_MAX_CLUSTER_BITS) ||
        (o->cluster_size & (o->cluster_size - 1))) {
        error_setg(errp, "Cluster size must be a power of two between %d "
                   "and %dk", 1 << QCOW_MIN_CLUSTER_BITS,
                   1 << (QCOW_MAX_CLUSTER_BITS - 10));
        return false;
    }
    if (!o->refcount_bits || o->refcount_bits > 64 ||
        (o->refcount_bits & (o->refcount_bits - 1))) {
        error_setg(errp, "Refcount width must be a power of two and may not "
                   "exceed 64 bits");
        return false;
    }
    if (o->version < 3 && o->refcount_bits != 16) {
        error_setg(errp, "Different refcount widths than 16 bits require "
                   "compatibility level 1.1 or above (use compat=1.1 or "
                   "greater)");
        return false;
    }
    if (o->version < 3 && o->lazy_refcounts) {
        error_setg(errp, "Lazy refcounts only supported with compatibility "
                   "level 1.1 and above (use compat=1.1 or greater)");
        return false;
    }
    if (prealloc > 1) {
        error_setg(errp, "Unsupported preallocation mode '%s' (qcow2 "
                   "supports off and metadata)", prealloc_names[prealloc]);
        return false;
    }
    o->prealloc_metadata = prealloc == 1;
    if (extended_l2) {
        error_setg(errp, "Extended L2 entries are not supported");
        return false;
    }
    if (ctype && strcmp(ctype, "zlib")) {
        error_setg(errp, "Unsupported compression type '%s' (only zlib is "
                   "supported)", ctype);
        return false;
    }
    if (data_file) {
        error_setg(errp, "External data files are not supported");
        return false;
    }
    if (o->backing_fmt && !o->backing_file) {
        error_setg(errp, "Backing format cannot be used without backing "
                   "file");
        return false;
    }
    if (o->backing_file && o->prealloc_metadata) {
        error_setg(errp, "Backing file and preallocation cannot be used at "
                   "the same time");
        return false;
    }
    if (o->backing_file && strlen(o->backing_file) > QCOW_MAX_BACKING_NAME) {
        error_setg(errp, "Backing file name too long");
        return false;
    }
    if (o->backing_fmt && strlen(o->backing_fmt) >= 16) {
        error_setg(errp, "Backing format name too long");
        return false;
    }
    return true;
}

static bool size_from_backing(const char *filename, Qcow2CreateOpts *o,
                              Error **errp)
{
    g_autofree char *path = NULL;
    BlockDriverState *bbs;
    int64_t len;

    if (g_path_is_absolute(o->backing_file) ||
        strstr(o->backing_file, "://")) {
        path = g_strdup(o->backing_file);
    } else {
        g_autofree char *dir = g_path_get_dirname(filename);

        path = g_build_filename(dir, o->backing_file, NULL);
    }
    bbs = bdrv_open_file(path, o->backing_fmt, NULL,
                         BDRV_O_NO_BACKING | BDRV_O_FORCE_SHARE, errp);
    if (!bbs) {
        error_prepend(errp, "Could not open backing file: ");
        return false;
    }
    len = bdrv_getlength(bbs);
    bdrv_unref(bbs);
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the backing file size");
        return false;
    }
    o->size = len;
    return true;
}

static size_t put_ext(uint8_t *p, uint32_t magic, const void *data,
                      uint32_t len)
{
    q2_st32(p, magic);
    q2_st32(p + 4, len);
    memcpy(p + 8, data, len);
    return 8 + QEMU_ALIGN_UP(len, 8);
}

static const struct {
    uint8_t type, bit;
    const char *name;
} feature_names[] = {
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, 0, "dirty bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, 1, "corrupt bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, 2, "external data file" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, 3, "compression type" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, 4, "extended L2 entries" },
    { QCOW2_FEAT_TYPE_COMPATIBLE, 0, "lazy refcounts" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, 0, "bitmaps" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, 1, "raw external data" },
};

/* Build the initial metadata (n_clusters clusters) into *image */
static bool build_image(const Qcow2CreateOpts *o, uint8_t **image,
                        uint64_t *n_clusters, Error **errp)
{
    int cluster_bits = ctz64(o->cluster_size);
    uint64_t cs = o->cluster_size;
    int refcount_order = ctz64(o->refcount_bits);
    uint64_t per = (cs * 8) >> refcount_order;
    uint64_t l1_size = qcow2_l1_entries_for(cluster_bits, o->size);
    uint64_t l1_clusters = DIV_ROUND_UP(l1_size * 8, cs);
    uint64_t t = 1, b = 1, n, i;
    uint8_t table[sizeof(feature_names) / sizeof(feature_names[0]) * 48];
    uint8_t *img, *p;
    size_t off, need;
    bool with_table;

    if (o->size > BDRV_MAX_LENGTH || l1_size * 8 > QCOW_MAX_L1_SIZE) {
        error_setg(errp, "The image size is too large for file format "
                   "'qcow2' (try using a larger cluster size)");
        return false;
    }
    for (;;) {
        uint64_t nb, nt;

        n = 1 + t + b + l1_clusters;
        nb = DIV_ROUND_UP(n, per);
        nt = DIV_ROUND_UP(nb * 8, cs);
        if (nb == b && nt == t) {
            break;
        }
        b = MAX(b, nb);
        t = MAX(t, nt);
    }
    img = g_try_malloc0(n * cs);
    if (!img) {
        error_setg(errp, "Could not allocate the image metadata");
        return false;
    }
    /* header */
    q2_st32(img + QCOW2_HDR_MAGIC, QCOW_MAGIC);
    q2_st32(img + QCOW2_HDR_VERSION, o->version);
    q2_st32(img + QCOW2_HDR_CLUSTER_BITS, cluster_bits);
    q2_st64(img + QCOW2_HDR_SIZE, o->size);
    q2_st32(img + QCOW2_HDR_L1_SIZE, l1_size);
    q2_st64(img + QCOW2_HDR_L1_OFFSET, (1 + t + b) * cs);
    q2_st64(img + QCOW2_HDR_REFTABLE_OFFSET, cs);
    q2_st32(img + QCOW2_HDR_REFTABLE_CLUSTERS, t);
    if (o->version >= 3) {
        q2_st64(img + QCOW2_HDR_COMPAT,
                o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        q2_st32(img + QCOW2_HDR_REFCOUNT_ORDER, refcount_order);
        q2_st32(img + QCOW2_HDR_HEADER_LENGTH, QCOW2_HEADER_SIZE);
        off = QCOW2_HEADER_SIZE;
    } else {
        off = QCOW2_V2_HEADER_SIZE;
    }
    /* extensions; the feature name table is optional, left out if the
     * header would not fit in one cluster otherwise */
    need = off + 8 + (o->backing_fmt ? 8 + QEMU_ALIGN_UP(
                          strlen(o->backing_fmt), 8) : 0) +
           (o->backing_file ? strlen(o->backing_file) : 0);
    with_table = o->version >= 3 && need + 8 + sizeof(table) <= cs;
    if (need > cs) {
        g_free(img);
        error_setg(errp, "Header does not fit in one cluster; use a larger "
                   "cluster size or a shorter backing file name");
        return false;
    }
    if (o->backing_fmt) {
        off += put_ext(img + off, QCOW2_EXT_MAGIC_BACKING_FORMAT,
                       o->backing_fmt, strlen(o->backing_fmt));
    }
    if (with_table) {
        memset(table, 0, sizeof(table));
        for (i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]);
             i++) {
            table[i * 48] = feature_names[i].type;
            table[i * 48 + 1] = feature_names[i].bit;
            memcpy(table + i * 48 + 2, feature_names[i].name,
                   strlen(feature_names[i].name));
        }
        off += put_ext(img + off, QCOW2_EXT_MAGIC_FEATURE_TABLE, table,
                       sizeof(table));
    }
    off += 8;   /* end of extensions (zeroes) */
    if (o->backing_file) {
        size_t len = strlen(o->backing_file);

        q2_st64(img + QCOW2_HDR_BACKING_OFFSET, off);
        q2_st32(img + QCOW2_HDR_BACKING_SIZE, len);
        memcpy(img + off, o->backing_file, len);
    }
    /* refcount table and blocks: every metadata cluster has refcount 1 */
    for (i = 0; i < b; i++) {
        q2_st64(img + cs + i * 8, (1 + t + i) * cs);
    }
    p = img + (1 + t) * cs;
    for (i = 0; i < n; i++) {
        uint64_t bit = i << refcount_order;

        switch (refcount_order) {
        case 0:
        case 1:
        case 2:
            p[bit / 8] |= 1 << (bit % 8);
            break;
        case 3:
            p[i] = 1;
            break;
        case 4:
            q2_st16(p + i * 2, 1);
            break;
        case 5:
            q2_st32(p + i * 4, 1);
            break;
        default:
            q2_st64(p + i * 8, 1);
            break;
        }
    }
    *image = img;
    *n_clusters = n;
    return true;
}

int coroutine_fn qcow2_co_create_opts(BlockDriver *drv, const char *filename,
                                      json_t *options, Error **errp)
{
    Qcow2CreateOpts o = { 0 };
    g_autofree uint8_t *image = NULL;
    g_autoptr(json_t) file_opts = json_object();
    BlockBackend *blk;
    uint64_t n;
    int ret;

    if (!parse_create_opts(options, &o, errp)) {
        ret = -EINVAL;
        goto out;
    }
    if (!o.has_size) {
        if (!o.backing_file) {
            error_setg(errp, "Image creation needs a size parameter");
            ret = -EINVAL;
            goto out;
        }
        if (!size_from_backing(filename, &o, errp)) {
            ret = -EINVAL;
            goto out;
        }
    }
    o.size = QEMU_ALIGN_UP(o.size, BDRV_SECTOR_SIZE);
    if (!build_image(&o, &image, &n, errp)) {
        ret = -EINVAL;
        goto out;
    }

    ret = bdrv_create_file(filename, file_opts, errp);
    if (ret < 0) {
        goto out;
    }
    blk = blk_new_open(filename, "file", NULL, BDRV_O_RDWR | BDRV_O_RESIZE,
                       errp);
    if (!blk) {
        ret = -EIO;
        goto out;
    }
    blk_set_allow_write_beyond_eof(blk, true);
    ret = blk_co_truncate(blk, 0, true, errp);
    if (ret == 0) {
        ret = blk_co_pwrite(blk, 0, n * o.cluster_size, image, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write qcow2 header");
        }
    }
    if (ret == 0) {
        ret = blk_co_flush(blk);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not flush the new image");
        }
    }
    blk_unref(blk);
    if (ret < 0) {
        goto out;
    }

    if (o.prealloc_metadata && o.size) {
        BlockDriverState *bs = bdrv_open_file(filename, "qcow2", NULL,
                                              BDRV_O_RDWR | BDRV_O_NO_BACKING,
                                              errp);
        BDRVQcow2State *s;

        if (!bs) {
            ret = -EIO;
            goto out;
        }
        s = bs->opaque;
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_preallocate_metadata(bs, 0, o.size);
        if (ret == 0) {
            ret = qcow2_cache_flush(bs, s->l2_table_cache);
        }
        if (ret == 0) {
            ret = qcow2_cache_flush(bs, s->refcount_block_cache);
        }
        qemu_co_mutex_unlock(&s->lock);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not preallocate metadata");
        }
        bdrv_unref(bs);
    }

out:
    g_free(o.backing_file);
    g_free(o.backing_fmt);
    return ret;
}
