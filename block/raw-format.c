/*
 * raw format driver: the image is the file, optionally a window of it
 * ("offset" and "size" options, for partitions or images embedded in a
 * bigger file).  Without a window raw is a pure filter (its file child is
 * FILTERED), so permissions and block status pass straight through.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

typedef struct BDRVRawState {
    uint64_t offset;
    uint64_t size;
    bool has_size;
} BDRVRawState;

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    /* the fallback: anything is a raw image */
    return 1;
}

static int raw_open(BlockDriverState *bs, json_t *options, int flags,
                    Error **errp)
{
    BDRVRawState *s = bs->opaque;
    bool has_offset = false;
    int64_t file_len;
    unsigned role;

    if (!bdrv_opt_get_size(options, "offset", &s->offset, &has_offset,
                           errp) ||
        !bdrv_opt_get_size(options, "size", &s->size, &s->has_size, errp)) {
        return -EINVAL;
    }
    role = (has_offset || s->has_size) ?
           (BDRV_CHILD_DATA | BDRV_CHILD_PRIMARY) :
           (BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY);
    if (!bdrv_open_child(bs, options, "file", role, false, errp)) {
        return -EINVAL;
    }
    file_len = bdrv_getlength(bs->file->bs);
    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get image size");
        return file_len;
    }
    if (s->offset > (uint64_t)file_len) {
        error_setg(errp, "The sum of offset (%" PRIu64 ") and size (%" PRIu64
                   ") has to be smaller or equal to the  actual size of the "
                   "containing file (%" PRId64 ")", s->offset, s->size,
                   file_len);
        return -EINVAL;
    }
    if (s->has_size && s->offset + s->size > (uint64_t)file_len) {
        error_setg(errp, "The sum of offset (%" PRIu64 ") and size (%" PRIu64
                   ") has to be smaller or equal to the  actual size of the "
                   "containing file (%" PRId64 ")", s->offset, s->size,
                   file_len);
        return -EINVAL;
    }
    if (s->has_size && !QEMU_IS_ALIGNED(s->size, BDRV_SECTOR_SIZE)) {
        error_setg(errp, "Specified size is not multiple of %llu",
                   BDRV_SECTOR_SIZE);
        return -EINVAL;
    }
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_FUA |
        (bs->file->bs->supported_write_flags & BDRV_REQ_FUA);
    bs->supported_zero_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_FUA |
                               BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    return 0;
}

static int raw_check_range(BlockDriverState *bs, int64_t offset,
                           int64_t bytes)
{
    BDRVRawState *s = bs->opaque;

    if (s->has_size && (offset > (int64_t)s->size ||
                        bytes > (int64_t)s->size - offset)) {
        return -ENOSPC;
    }
    return 0;
}

static int coroutine_fn raw_co_preadv(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_READ_AIO);
    return bdrv_co_preadv(bs->file, offset + s->offset, bytes, qiov, flags);
}

static int coroutine_fn raw_co_pwritev(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    BLKDBG_EVENT(bs->file, BLKDBG_WRITE_AIO);
    return bdrv_co_pwritev(bs->file, offset + s->offset, bytes, qiov, flags);
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_pwrite_zeroes(bs->file, offset + s->offset, bytes, flags);
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_pdiscard(bs->file, offset + s->offset, bytes);
}

static int coroutine_fn raw_co_block_status(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;

    *pnum = bytes;
    *file = bs->file->bs;
    *map = offset + s->offset;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t coroutine_fn raw_co_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    int64_t len;

    if (s->has_size) {
        return s->size;
    }
    len = bdrv_getlength(bs->file->bs);
    if (len < 0) {
        return len;
    }
    return MAX(0, len - (int64_t)s->offset);
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    if (s->has_size) {
        error_setg(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    return bdrv_co_truncate(bs->file, offset + s->offset, exact, errp);
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bs->file->bs, bdi);
}

/*
 * Copy offload passes through with the window's offset added; the flags
 * (BDRV_REQ_CLONE included) go down unchanged.  The file node judges
 * clone alignment on the shifted file offsets, and the partial block at
 * EOF only when the window ends at the file's end, so an unaligned
 * window makes clones -ENOTSUP (the caller copies), never wrong.
 */
static int coroutine_fn raw_co_copy_range_from(BlockDriverState *bs,
                                               BdrvChild *src,
                                               int64_t src_offset,
                                               BdrvChild *dst,
                                               int64_t dst_offset,
                                               int64_t bytes,
                                               BdrvRequestFlags read_flags,
                                               BdrvRequestFlags write_flags)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, src_offset, bytes);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_copy_range_from(bs->file, src_offset + s->offset, dst,
                                   dst_offset, bytes, read_flags,
                                   write_flags);
}

static int coroutine_fn raw_co_copy_range_to(BlockDriverState *bs,
                                             BdrvChild *src,
                                             int64_t src_offset,
                                             BdrvChild *dst,
                                             int64_t dst_offset,
                                             int64_t bytes,
                                             BdrvRequestFlags read_flags,
                                             BdrvRequestFlags write_flags)
{
    BDRVRawState *s = bs->opaque;
    int ret = raw_check_range(bs, dst_offset, bytes);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_copy_range_to(src, src_offset, bs->file,
                                 dst_offset + s->offset, bytes, read_flags,
                                 write_flags);
}

static int coroutine_fn raw_co_create_opts(BlockDriver *drv,
                                           const char *filename,
                                           json_t *options, Error **errp)
{
    return bdrv_create_file(filename, options, errp);
}

static int raw_measure(json_t *opts, BlockDriverState *in_bs,
                       BlockMeasureInfo *info, Error **errp)
{
    static const char *const keys[] = {
        "size", "preallocation", "nocow", "extent_size_hint", NULL
    };
    uint64_t size = 0;
    const char *key;
    json_t *v;
    int64_t len;

    json_object_foreach(opts, key, v) {
        if (!g_strv_contains(keys, key)) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return -ENOENT;
        }
    }
    if (!bdrv_opt_get_size(opts, BLOCK_OPT_SIZE, &size, NULL, errp)) {
        return -EINVAL;
    }
    if (in_bs) {
        len = bdrv_getlength(in_bs);
        if (len < 0) {
            error_setg_errno(errp, -len, "Unable to get image size");
            return len;
        }
        size = len;
    } else {
        size = QEMU_ALIGN_UP(size, BDRV_SECTOR_SIZE);
    }
    /* unallocated sectors count towards the file size of raw images */
    info->required = info->fully_allocated = size;
    return 0;
}

BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = sizeof(BDRVRawState),
    .is_format = true,
    .bdrv_probe = raw_probe,
    .bdrv_open = raw_open,
    .bdrv_co_preadv = raw_co_preadv,
    .bdrv_co_pwritev = raw_co_pwritev,
    .bdrv_co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .bdrv_co_pdiscard = raw_co_pdiscard,
    .bdrv_co_block_status = raw_co_block_status,
    .bdrv_co_getlength = raw_co_getlength,
    .bdrv_co_truncate = raw_co_truncate,
    .bdrv_get_info = raw_get_info,
    .bdrv_co_copy_range_from = raw_co_copy_range_from,
    .bdrv_co_copy_range_to = raw_co_copy_range_to,
    .bdrv_co_create_opts = raw_co_create_opts,
    .bdrv_measure = raw_measure,
};
