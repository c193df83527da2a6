/*
 * qcow2 measure (qemu-img measure -O qcow2): the file size a new image
 * would need, computed exactly as QEMU 7.2 does so the numbers match.
 *
 * "fully allocated" is the size with every cluster of the (cluster
 * aligned) virtual size allocated: one header cluster, L2 tables for all
 * clusters, the L1 table rounded up to whole clusters, and refcount
 * blocks and table for all of that, found as the fixed point where they
 * cover themselves too.  "required" replaces the data part by the
 * clusters the input image actually allocates with data (whole clusters;
 * zero ranges need nothing), or the whole virtual size when a backing
 * file is given (the new backing file may share nothing with the input)
 * or the data is preallocated (falloc/full).  Metadata stays counted in
 * full, as in QEMU.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

/* the creation options qemu-img measure accepts for qcow2 (and file) */
static const char *const measure_keys[] = {
    "size", "cluster_size", "extended_l2", "compat", "refcount_bits",
    "preallocation", "backing_file", "backing_fmt", "lazy_refcounts",
    "compression_type", "data_file", "data_file_raw", "encryption",
    "encrypt.format", "nocow", "extent_size_hint", NULL
};

static const char *const prealloc_names[] = {
    "off", "metadata", "falloc", "full", NULL
};

/* refcount blocks and table (bytes) covering clusters and themselves */
static int64_t refcount_metadata_size(int64_t clusters, int64_t cluster_size,
                                      int refcount_order)
{
    int64_t per_table_cluster = cluster_size / 8;
    int64_t per_block = cluster_size * 8 / (1 << refcount_order);
    int64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cluster_size;
}

static int64_t prealloc_size(int64_t total, int64_t cluster_size,
                             int refcount_order, int l2e_size)
{
    int64_t aligned = QEMU_ALIGN_UP(total, cluster_size);
    int64_t meta = cluster_size;          /* header */
    uint64_t nl1e, nl2e;

    nl2e = QEMU_ALIGN_UP(aligned / cluster_size, cluster_size / l2e_size);
    meta += nl2e * l2e_size;
    nl1e = QEMU_ALIGN_UP(nl2e * l2e_size / cluster_size, cluster_size / 8);
    meta += nl1e * 8;
    meta += refcount_metadata_size((meta + aligned) / cluster_size,
                                   cluster_size, refcount_order);
    return meta + aligned;
}

/* data clusters of in_bs (whole chain) holding data, in bytes */
static int input_data_size(BlockDriverState *in_bs, int64_t ssize,
                           int64_t cluster_size, uint64_t *required,
                           Error **errp)
{
    int64_t offset, pnum = 0;

    for (offset = 0; offset < ssize; offset += pnum) {
        int ret = bdrv_block_status_above(in_bs, NULL, offset,
                                          ssize - offset, &pnum, NULL, NULL,
                                          NULL);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "Unable to get block status");
            return ret;
        }
        if (ret & BDRV_BLOCK_ZERO) {
            /* nothing to store */
        } else if ((ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) ==
                   (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) {
            /* count up to the end of the cluster */
            pnum = QEMU_ALIGN_UP(offset + pnum, cluster_size) - offset;
            *required += offset % cluster_size + pnum;
        }
    }
    return 0;
}

int qcow2_measure(json_t *opts, BlockDriverState *in_bs,
                  BlockMeasureInfo *info, Error **errp)
{
    g_autofree char *compat = NULL;
    g_autofree char *backing = NULL;
    uint64_t cluster_size = QCOW2_DEFAULT_CLUSTER_SIZE, refcount_bits = 16;
    uint64_t virtual_size = 0, required = 0, l2_tables;
    bool extended_l2 = false;
    int version = 3, prealloc = 0, l2e_size;
    const char *key;
    json_t *v;

    json_object_foreach(opts, key, v) {
        if (!g_strv_contains(measure_keys, key)) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return -ENOENT;
        }
    }
    if (!bdrv_opt_get_bool(opts, "extended_l2", &extended_l2, NULL, errp) ||
        !bdrv_opt_get_size(opts, BLOCK_OPT_CLUSTER_SIZE, &cluster_size, NULL,
                           errp) ||
        !bdrv_opt_get_str(opts, "compat", &compat, NULL, errp) ||
        !bdrv_opt_get_uint(opts, "refcount_bits", &refcount_bits, NULL,
                           errp) ||
        !bdrv_opt_get_enum(opts, "preallocation", prealloc_names, &prealloc,
                           NULL, errp) ||
        !bdrv_opt_get_str(opts, BLOCK_OPT_BACKING_FILE, &backing, NULL,
                          errp) ||
        !bdrv_opt_get_size(opts, BLOCK_OPT_SIZE, &virtual_size, NULL,
                           errp)) {
        return -EINVAL;
    }
    if (cluster_size < (1 << QCOW_MIN_CLUSTER_BITS) ||
        cluster_size > (1 << QCOW_MAX_CLUSTER_BITS) ||
        (cluster_size & (cluster_size - 1))) {
        error_setg(errp, "Cluster size must be a power of two between %d "
                   "and %dk", 1 << QCOW_MIN_CLUSTER_BITS,
                   1 << (QCOW_MAX_CLUSTER_BITS - 10));
        return -EINVAL;
    }
    if (extended_l2 && cluster_size < 16 * KiB) {
        error_setg(errp, "Extended L2 entries are only supported with "
                   "cluster sizes of at least 16384 bytes");
        return -EINVAL;
    }
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
            version = 2;
        } else if (strcmp(compat, "1.1") && strcmp(compat, "v3")) {
            error_setg(errp, "Invalid compatibility level: '%s'", compat);
            return -EINVAL;
        }
    }
    if (!refcount_bits || refcount_bits > 64 ||
        (refcount_bits & (refcount_bits - 1))) {
        error_setg(errp, "Refcount width must be a power of two and may not "
                   "exceed 64 bits");
        return -EINVAL;
    }
    if (version < 3 && refcount_bits != 16) {
        error_setg(errp, "Different refcount widths than 16 bits require "
                   "compatibility level 1.1 or above (use compat=1.1 or "
                   "greater)");
        return -EINVAL;
    }

    l2e_size = extended_l2 ? 16 : 8;
    virtual_size = QEMU_ALIGN_UP(virtual_size, cluster_size);
    l2_tables = DIV_ROUND_UP(virtual_size / cluster_size,
                             cluster_size / l2e_size);
    if (l2_tables * 8 > QCOW_MAX_L1_SIZE) {
        error_setg(errp, "The image size is too large (try using a larger "
                   "cluster size)");
        return -EFBIG;
    }
    if (in_bs) {
        int64_t ssize = bdrv_getlength(in_bs);
        int ret;

        if (ssize < 0) {
            error_setg_errno(errp, -ssize, "Unable to get image "
                             "virtual_size");
            return ssize;
        }
        virtual_size = QEMU_ALIGN_UP(ssize, cluster_size);
        if (backing) {
            required = virtual_size;
        } else {
            ret = input_data_size(in_bs, ssize, cluster_size, &required,
                                  errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (prealloc >= 2) {
        required = virtual_size;
    }
    info->fully_allocated = prealloc_size(virtual_size, cluster_size,
                                          ctz64(refcount_bits), l2e_size);
    info->required = info->fully_allocated - virtual_size + required;
    /* persistent bitmaps of a qcow2 input (blockd keeps none) */
    info->has_bitmaps = version >= 3 && in_bs && in_bs->drv == &bdrv_qcow2;
    info->bitmaps = 0;
    return 0;
}
