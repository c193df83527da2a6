/*
 * null-co: a protocol driver without storage.  Writes are discarded;
 * reads return zeroes only with read-zeroes=on (QEMU's default is off:
 * the buffer is left untouched, which is faster for benchmarks).
 * Options as QEMU: size (default 1 GiB), latency-ns (each request sleeps
 * that long), read-zeroes.  Block status reports data, or zero with
 * read-zeroes=on.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

typedef struct BDRVNullState {
    uint64_t length;
    uint64_t latency_ns;
    bool read_zeroes;
} BDRVNullState;

static void null_parse_filename(const char *filename, json_t *options,
                                Error **errp)
{
    /* QEMU accepts "null-co://" and nothing after it */
    if (strcmp(filename, "null-co://") != 0) {
        error_setg(errp, "The only allowed filename for this driver is "
                   "'null-co://'");
    }
}

static int null_open(BlockDriverState *bs, json_t *options, int flags,
                     Error **errp)
{
    BDRVNullState *s = bs->opaque;
    g_autofree char *filename = NULL;
    bool has_fn = false;

    s->length = 1 * GiB;
    if (!bdrv_opt_get_str(options, "filename", &filename, &has_fn, errp) ||
        !bdrv_opt_get_size(options, "size", &s->length, NULL, errp) ||
        !bdrv_opt_get_uint(options, "latency-ns", &s->latency_ns, NULL,
                           errp) ||
        !bdrv_opt_get_bool(options, "read-zeroes", &s->read_zeroes, NULL,
                           errp)) {
        return -EINVAL;
    }
    if (has_fn && strcmp(filename, "null-co://") != 0) {
        error_setg(errp, "The only allowed filename for this driver is "
                   "'null-co://'");
        return -EINVAL;
    }
    if (s->latency_ns > INT64_MAX) {
        error_setg(errp, "latency-ns is invalid");
        return -EINVAL;
    }
    bs->supported_write_flags = BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_FUA | BDRV_REQ_MAY_UNMAP |
                               BDRV_REQ_NO_FALLBACK;
    return 0;
}

static int coroutine_fn null_co_common(BlockDriverState *bs)
{
    BDRVNullState *s = bs->opaque;

    if (s->latency_ns) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, s->latency_ns);
    }
    return 0;
}

static int coroutine_fn null_co_preadv(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    BDRVNullState *s = bs->opaque;

    if (s->read_zeroes) {
        qemu_iovec_memset(qiov, 0, 0, bytes);
    }
    return null_co_common(bs);
}

static int coroutine_fn null_co_pwritev(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_pwrite_zeroes(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_pdiscard(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_flush(BlockDriverState *bs)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_block_status(BlockDriverState *bs,
                                             bool want_zero, int64_t offset,
                                             int64_t bytes, int64_t *pnum,
                                             int64_t *map,
                                             BlockDriverState **file)
{
    BDRVNullState *s = bs->opaque;
    int ret = BDRV_BLOCK_OFFSET_VALID;

    *pnum = bytes;
    *map = offset;
    *file = bs;
    if (s->read_zeroes) {
        ret |= BDRV_BLOCK_ZERO;
    }
    return ret;
}

static int64_t coroutine_fn null_co_getlength(BlockDriverState *bs)
{
    BDRVNullState *s = bs->opaque;

    return s->length;
}

static void null_dump_info(BlockDriverState *bs, GString *out)
{
    BDRVNullState *s = bs->opaque;

    g_string_append_printf(out, "read-zeroes: %s\n",
                           s->read_zeroes ? "on" : "off");
}

BlockDriver bdrv_null_co = {
    .format_name = "null-co",
    .protocol_name = "null-co",
    .instance_size = sizeof(BDRVNullState),
    .bdrv_parse_filename = null_parse_filename,
    .bdrv_open = null_open,
    .bdrv_co_preadv = null_co_preadv,
    .bdrv_co_pwritev = null_co_pwritev,
    .bdrv_co_pwrite_zeroes = null_co_pwrite_zeroes,
    .bdrv_co_pdiscard = null_co_pdiscard,
    .bdrv_co_flush_to_disk = null_co_flush,
    .bdrv_co_block_status = null_co_block_status,
    .bdrv_co_getlength = null_co_getlength,
    .bdrv_dump_info = null_dump_info,
};
