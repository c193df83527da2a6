/*
 * qcow2 header rewrites: changing the backing file (qemu-img rebase),
 * emptying the image (qemu-img commit) and amending options (qemu-img
 * amend: compat, lazy_refcounts; the size is changed by the caller
 * through the generic truncate).
 *
 * The header cluster is rebuilt as a whole: the fixed fields, then the
 * backing format extension (if any), then every other extension found in
 * the current header, in their order and unchanged (feature table,
 * bitmaps, extensions we do not know), the end marker and the backing
 * file name.  The cluster is written in one request followed by a flush,
 * so a crash leaves either the old or the new header.  Nothing but the
 * header lives in the first cluster, which makes the rewrite safe.
 *
 * Downgrading to compat=0.10 (version 2, which has no zero flag) first
 * turns every zero cluster into something version 2 can express: an
 * unallocated cluster when no backing file can show through, else a data
 * cluster filled with zeroes.  Changing refcount_bits (rebuilding the
 * refcount structures) is not implemented.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

/* An extension of the current header other than the backing format */
static int coroutine_fn read_kept_extensions(BlockDriverState *bs,
                                             GByteArray *out)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *hdr = g_malloc0(s->cluster_size);
    uint64_t off = s->header_length, end;
    int ret;

    ret = bdrv_co_pread(bs->file, 0, s->cluster_size, hdr, 0);
    if (ret < 0) {
        return ret;
    }
    end = q2_ld64(hdr + QCOW2_HDR_BACKING_OFFSET);
    if (!end || end > (uint64_t)s->cluster_size) {
        end = s->cluster_size;
    }
    while (off + 8 <= end) {
        uint32_t magic = q2_ld32(hdr + off);
        uint32_t len = q2_ld32(hdr + off + 4);
        uint64_t total = 8 + QEMU_ALIGN_UP((uint64_t)len, 8);

        if (magic == QCOW2_EXT_MAGIC_END || total > end - off) {
            break;
        }
        if (magic != QCOW2_EXT_MAGIC_BACKING_FORMAT) {
            g_byte_array_append(out, hdr + off, total);
        }
        off += total;
    }
    return 0;
}

/*
 * Write the header from the state in s (version, features, size...), with
 * the given backing file name and format (NULL: none).  Caller holds
 * s->lock or has the node to itself.
 */
static int coroutine_fn qcow2_write_header(BlockDriverState *bs,
                                           const char *backing_file,
                                           const char *backing_fmt)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GByteArray) exts = g_byte_array_new();
    g_autofree uint8_t *buf = g_malloc0(s->cluster_size);
    size_t blen = backing_file ? strlen(backing_file) : 0;
    size_t flen = backing_fmt ? strlen(backing_fmt) : 0;
    uint32_t hlen = s->qcow_version >= 3 ? QCOW2_HEADER_SIZE :
                                           QCOW2_V2_HEADER_SIZE;
    uint64_t off;
    int ret;

    ret = read_kept_extensions(bs, exts);
    if (ret < 0) {
        return ret;
    }
    /* the fixed fields we do not track stay as they are on disk */
    ret = bdrv_co_pread(bs->file, 0, QCOW2_V2_HEADER_SIZE, buf, 0);
    if (ret < 0) {
        return ret;
    }
    off = hlen + (flen ? 8 + QEMU_ALIGN_UP(flen, 8) : 0) + exts->len + 8;
    if (off + blen > (uint64_t)s->cluster_size) {
        return -ENOSPC;
    }
    q2_st32(buf + QCOW2_HDR_VERSION, s->qcow_version);
    q2_st64(buf + QCOW2_HDR_SIZE, s->size);
    q2_st64(buf + QCOW2_HDR_BACKING_OFFSET, blen ? off : 0);
    q2_st32(buf + QCOW2_HDR_BACKING_SIZE, blen);
    if (s->qcow_version >= 3) {
        q2_st64(buf + QCOW2_HDR_INCOMPAT, s->incompatible_features);
        q2_st64(buf + QCOW2_HDR_COMPAT, s->compatible_features);
        q2_st64(buf + QCOW2_HDR_AUTOCLEAR, s->autoclear_features);
        q2_st32(buf + QCOW2_HDR_REFCOUNT_ORDER, s->refcount_order);
        q2_st32(buf + QCOW2_HDR_HEADER_LENGTH, hlen);
        buf[QCOW2_HDR_COMPRESSION_TYPE] = s->compression_type;
    }
    off = hlen;
    if (flen) {
        q2_st32(buf + off, QCOW2_EXT_MAGIC_BACKING_FORMAT);
        q2_st32(buf + off + 4, flen);
        memcpy(buf + off + 8, backing_fmt, flen);
        off += 8 + QEMU_ALIGN_UP(flen, 8);
    }
    if (exts->len) {
        memcpy(buf + off, exts->data, exts->len);
    }
    off += exts->len + 8;
    if (blen) {
        memcpy(buf + off, backing_file, blen);
    }

    ret = bdrv_co_pwrite(bs->file, 0, s->cluster_size, buf, 0);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        return ret;
    }
    s->header_length = hlen;
    return 0;
}

int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs,
                                              const char *backing_file,
                                              const char *backing_fmt)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (backing_file && !*backing_file) {
        backing_file = NULL;
    }
    if (!backing_file) {
        backing_fmt = NULL;
    }
    if ((backing_file && strlen(backing_file) > QCOW_MAX_BACKING_NAME) ||
        (backing_fmt && strlen(backing_fmt) >= sizeof(bs->backing_format))) {
        return -EINVAL;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_write_header(bs, backing_file, backing_fmt);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    g_strlcpy(bs->backing_file, backing_file ? backing_file : "",
              sizeof(bs->backing_file));
    g_strlcpy(bs->backing_format, backing_fmt ? backing_fmt : "",
              sizeof(bs->backing_format));
    return 0;
}

int coroutine_fn qcow2_co_make_empty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, 0, UINT64_MAX);
    ret = qcow2_cluster_discard(bs, 0, QEMU_ALIGN_UP(s->size,
                                                     s->cluster_size),
                                true);
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/* ---- amend ---- */

/*
 * Turn the zero clusters of [start, end) in one L2 table into version 2
 * entries.  Caller holds s->lock.
 */
static int coroutine_fn expand_zero_run(BlockDriverState *bs,
                                        uint64_t start, uint64_t end)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *table;
    int index, i, n, ret;

    ret = qcow2_get_l2_for_write(bs, start, &table, &index);
    if (ret < 0) {
        return ret;
    }
    n = (end - start) >> s->cluster_bits;
    for (i = 0; i < n && ret == 0; i++) {
        uint64_t e = GUINT64_FROM_BE(table[index + i]);
        Qcow2ClusterType type = qcow2_get_cluster_type(s, e);
        int64_t host;

        if (type != QCOW2_CLUSTER_ZERO_PLAIN &&
            type != QCOW2_CLUSTER_ZERO_ALLOC) {
            continue;
        }
        if (type == QCOW2_CLUSTER_ZERO_ALLOC && (e & QCOW_OFLAG_COPIED)) {
            host = e & L2E_OFFSET_MASK;
        } else if (!bs->backing && type == QCOW2_CLUSTER_ZERO_PLAIN) {
            table[index + i] = 0;
            qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
            continue;
        } else {
            host = qcow2_alloc_clusters(bs, 1);
            if (host < 0) {
                ret = host;
                break;
            }
            ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                             s->refcount_block_cache);
            if (ret == 0 && type == QCOW2_CLUSTER_ZERO_ALLOC) {
                ret = qcow2_free_any_cluster(bs, e);
            }
        }
        if (ret == 0) {
            ret = bdrv_co_pwrite_zeroes(bs->file, host, s->cluster_size, 0);
        }
        if (ret == 0) {
            table[index + i] = GUINT64_TO_BE(host | QCOW_OFLAG_COPIED);
            qcow2_cache_entry_mark_dirty(s->l2_table_cache, table);
        }
    }
    qcow2_cache_put(s->l2_table_cache, (void **)&table);
    return ret;
}

static int coroutine_fn expand_zero_clusters(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t offset = 0, l2_span = (uint64_t)s->cluster_size << s->l2_bits;

    while (offset < s->size) {
        uint64_t table_end = MIN(QEMU_ALIGN_UP(offset + 1, l2_span),
                                 QEMU_ALIGN_UP(s->size, s->cluster_size));
        uint64_t pos = offset, first_zero = UINT64_MAX, last_zero = 0;
        int ret;

        /* look first: shared L2 tables without zero entries stay shared */
        while (pos < table_end) {
            uint64_t bytes = table_end - pos, host, entry;
            Qcow2ClusterType type;

            ret = qcow2_get_host_offset(bs, pos, &bytes, &host, &type,
                                        &entry);
            if (ret < 0) {
                return ret;
            }
            if (type == QCOW2_CLUSTER_ZERO_PLAIN ||
                type == QCOW2_CLUSTER_ZERO_ALLOC) {
                first_zero = MIN(first_zero, pos);
                last_zero = pos + bytes;
            }
            pos += bytes;
        }
        if (first_zero != UINT64_MAX) {
            ret = expand_zero_run(bs, first_zero,
                                  QEMU_ALIGN_UP(last_zero, s->cluster_size));
            if (ret < 0) {
                return ret;
            }
        }
        offset = table_end;
    }
    return 0;
}

typedef struct Qcow2AmendOpts {
    int version;
    bool lazy;
    uint64_t refcount_bits;
    char *backing_file;
    char *backing_fmt;
    bool has_backing_file, has_backing_fmt;
} Qcow2AmendOpts;

static bool parse_amend_opts(BlockDriverState *bs, json_t *opts,
                             Qcow2AmendOpts *o, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *compat = NULL;
    g_autofree char *data_file = NULL;
    bool data_file_raw = false;
    const char *key;
    json_t *v;

    json_object_foreach(opts, key, v) {
        if (g_str_has_prefix(key, "encrypt.") || !strcmp(key, "encrypt")) {
            error_setg(errp, "Can't amend encryption options - encryption "
                       "not present");
            return false;
        }
    }
    o->version = s->qcow_version;
    o->lazy = s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
    o->refcount_bits = s->refcount_bits;
    if (!bdrv_opt_get_str(opts, "compat", &compat, NULL, errp) ||
        !bdrv_opt_get_str(opts, BLOCK_OPT_BACKING_FILE, &o->backing_file,
                          &o->has_backing_file, errp) ||
        !bdrv_opt_get_str(opts, BLOCK_OPT_BACKING_FMT, &o->backing_fmt,
                          &o->has_backing_fmt, errp) ||
        !bdrv_opt_get_bool(opts, "lazy_refcounts", &o->lazy, NULL, errp) ||
        !bdrv_opt_get_uint(opts, "refcount_bits", &o->refcount_bits, NULL,
                           errp) ||
        !bdrv_opt_get_str(opts, "data_file", &data_file, NULL, errp) ||
        !bdrv_opt_get_bool(opts, "data_file_raw", &data_file_raw, NULL,
                           errp)) {
        return false;
    }
    if (data_file) {
        error_setg(errp, "data-file can only be set for images that use an "
                   "external data file");
        return false;
    }
    if (data_file_raw) {
        error_setg(errp, "data-file-raw cannot be set on existing images");
        return false;
    }
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
            o->version = 2;
        } else if (!strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
            o->version = 3;
        } else {
            error_setg(errp, "Unknown compatibility level %s", compat);
            return false;
        }
    }
    if (!o->refcount_bits || o->refcount_bits > 64 ||
        (o->refcount_bits & (o->refcount_bits - 1))) {
        error_setg(errp, "Refcount width must be a power of two and may not "
                   "exceed 64 bits");
        return false;
    }
    return true;
}

static int coroutine_fn qcow2_downgrade(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->refcount_order != 4) {
        error_setg(errp, "compat=0.10 requires refcount_bits=16");
        return -ENOTSUP;
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        /* the driver keeps refcounts exact: the flag is stale */
        s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    }
    if (s->incompatible_features & ~QCOW2_INCOMPAT_COMPRESSION) {
        error_setg(errp, "Cannot downgrade an image with incompatible "
                   "features 0x%" PRIx64 " set",
                   s->incompatible_features & ~QCOW2_INCOMPAT_COMPRESSION);
        return -ENOTSUP;
    }
    s->compatible_features = 0;
    s->autoclear_features = 0;
    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, 0, UINT64_MAX);
    ret = expand_zero_clusters(bs);
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to turn zero into data "
                         "clusters");
        return ret;
    }
    s->qcow_version = 2;
    return 0;
}

static int coroutine_fn update_header(BlockDriverState *bs, Error **errp)
{
    int ret;

    ret = qcow2_write_header(bs, bs->backing_file[0] ? bs->backing_file
                                                     : NULL,
                             bs->backing_format[0] ? bs->backing_format
                                                   : NULL);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to update the image header");
    }
    return ret;
}

int coroutine_fn qcow2_co_amend(BlockDriverState *bs, json_t *opts,
                                bool force, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2AmendOpts o = { 0 };
    int old_version = s->qcow_version;
    bool old_lazy = s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
    int ret = -EINVAL;

    (void)force;
    if (!parse_amend_opts(bs, opts, &o, errp)) {
        goto out;
    }
    if (o.version > old_version) {
        s->qcow_version = o.version;
        s->refcount_order = 4;
        s->incompatible_features = 0;
        s->compatible_features = 0;
        s->autoclear_features = 0;
        ret = update_header(bs, errp);
        if (ret < 0) {
            s->qcow_version = old_version;
            goto out;
        }
    }
    if ((uint64_t)s->refcount_bits != o.refcount_bits) {
        if (o.version < 3 && o.refcount_bits != 16) {
            error_setg(errp, "Refcount widths other than 16 bits require "
                       "compatibility level 1.1 or above (use compat=1.1 or "
                       "greater)");
            ret = -EINVAL;
            goto out;
        }
        error_setg(errp, "Changing the refcount width is not supported");
        ret = -ENOTSUP;
        goto out;
    }
    ret = update_header(bs, errp);
    if (ret < 0) {
        goto out;
    }
    if ((o.has_backing_file || o.has_backing_fmt) &&
        (g_strcmp0(o.backing_file, bs->backing_file[0] ? bs->backing_file
                                                       : NULL) ||
         g_strcmp0(o.backing_fmt, bs->backing_format[0] ?
                   bs->backing_format : NULL))) {
        error_setg(errp, "Cannot amend the backing file");
        error_append_hint(errp, "You can use 'qemu-img rebase' instead.\n");
        ret = -EINVAL;
        goto out;
    }
    if (o.lazy != old_lazy) {
        if (o.lazy && o.version < 3) {
            error_setg(errp, "Lazy refcounts only supported with "
                       "compatibility level 1.1 and above (use compat=1.1 "
                       "or greater)");
            ret = -EINVAL;
            goto out;
        }
        if (o.lazy) {
            s->compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        } else {
            s->compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
            s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        }
        ret = update_header(bs, errp);
        if (ret < 0) {
            goto out;
        }
    }
    /* downgrade last, once nothing needs version 3 any more */
    if (o.version < old_version) {
        ret = qcow2_downgrade(bs, errp);
        if (ret < 0) {
            goto out;
        }
        ret = update_header(bs, errp);
        if (ret < 0) {
            goto out;
        }
    }
    ret = 0;
out:
    bs->supported_zero_flags = s->qcow_version >= 3 ?
                               (BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK) :
                               0;
    g_free(o.backing_file);
    g_free(o.backing_fmt);
    return ret;
}
