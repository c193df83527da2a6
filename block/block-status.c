/*
 * Block status: what backs a range of a node (data, zeroes, allocated in
 * this layer, where on the host), and through backing chains.
 *
 * Layering: a driver answers for its own node (bdrv_co_block_status
 * callback); BDRV_BLOCK_RAW forwards the question to another node at an
 * offset (raw format, filters).  A range that a COW-capable format leaves
 * unallocated (no ALLOCATED bit) reads from the backing file, which
 * block_status_above consults next; past the end of a shorter backing
 * file the data reads as zeroes, "allocated" at that layer (QEMU's rule).
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/trace.h"

int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, bool want_zero,
                                      int64_t offset, int64_t bytes,
                                      int64_t *pnum, int64_t *map,
                                      BlockDriverState **file)
{
    int64_t total, local_map = 0, aligned_offset, aligned_bytes;
    BlockDriverState *local_file = NULL;
    uint32_t align;
    int ret;

    *pnum = 0;
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    total = bdrv_getlength(bs);
    if (total < 0) {
        return total;
    }
    if (offset < 0 || bytes < 0) {
        return -EINVAL;
    }
    if (offset >= total) {
        return BDRV_BLOCK_EOF;
    }
    if (!bytes) {
        return 0;
    }
    bytes = MIN(bytes, total - offset);

    if (!bs->drv->bdrv_co_block_status) {
        BdrvChild *f = bdrv_filter_child(bs);

        *pnum = bytes;
        local_map = offset;
        if (f) {
            local_file = f->bs;
            ret = BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
        } else {
            local_file = bs;
            ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED |
                  BDRV_BLOCK_OFFSET_VALID;
        }
        goto out;
    }

    align = bs->bl.request_alignment;
    aligned_offset = QEMU_ALIGN_DOWN(offset, (int64_t)align);
    aligned_bytes = QEMU_ALIGN_UP(offset + bytes, (int64_t)align) -
                    aligned_offset;
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_block_status(bs, want_zero, aligned_offset,
                                        aligned_bytes, pnum, &local_map,
                                        &local_file);
    bdrv_dec_in_flight(bs);
    if (ret < 0) {
        *pnum = 0;
        return ret;
    }
    assert(*pnum > 0 && *pnum <= aligned_bytes);
    /* trim to the caller's range */
    *pnum -= offset - aligned_offset;
    if (*pnum > bytes) {
        *pnum = bytes;
    }
    if (ret & BDRV_BLOCK_OFFSET_VALID) {
        local_map += offset - aligned_offset;
    }

    if (ret & BDRV_BLOCK_RAW) {
        assert((ret & BDRV_BLOCK_OFFSET_VALID) && local_file);
        ret = bdrv_co_block_status(local_file, want_zero, local_map, *pnum,
                                   pnum, &local_map, &local_file);
        if (ret < 0) {
            return ret;
        }
        /* the forwarded node's answer is ours (EOF of it is not ours) */
        ret &= ~BDRV_BLOCK_EOF;
        goto out;
    }

    if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
        ret |= BDRV_BLOCK_ALLOCATED;
    } else if (want_zero && bs->drv->supports_backing) {
        BlockDriverState *backing = bdrv_backing_bs(bs);

        if (!backing) {
            ret |= BDRV_BLOCK_ZERO;
        } else {
            int64_t blen = bdrv_getlength(backing);

            if (blen >= 0 && offset >= blen) {
                ret |= BDRV_BLOCK_ZERO;
            }
        }
    }

    if (want_zero && (ret & BDRV_BLOCK_RECURSE) &&
        (ret & BDRV_BLOCK_OFFSET_VALID) && local_file && local_file != bs &&
        (ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
        int64_t file_pnum;
        int ret2 = bdrv_co_block_status(local_file, want_zero, local_map,
                                        *pnum, &file_pnum, NULL, NULL);

        if (ret2 >= 0) {
            if (ret2 & BDRV_BLOCK_EOF &&
                (!file_pnum || ret2 & BDRV_BLOCK_ZERO)) {
                /* reads past the end of the file are zero */
                ret |= BDRV_BLOCK_ZERO;
            } else {
                *pnum = file_pnum;
                ret |= (ret2 & BDRV_BLOCK_ZERO);
            }
        }
    }
    ret &= ~BDRV_BLOCK_RECURSE;

out:
    if (offset + *pnum == total) {
        ret |= BDRV_BLOCK_EOF;
    }
    if (map) {
        *map = local_map;
    }
    if (file) {
        *file = local_file;
    }
    trace(bdrv_co_block_status, "bs %s offset %" PRId64 " bytes %" PRId64
          " ret 0x%x pnum %" PRId64, bs->node_name, offset, bytes, ret,
          *pnum);
    return ret;
}

/* The next layer below p for block_status_above: backing or filtered child */
static BlockDriverState *bdrv_cow_or_filtered(BlockDriverState *p,
                                              bool *is_cow)
{
    BdrvChild *f = bdrv_filter_child(p);

    if (p->backing) {
        *is_cow = true;
        return p->backing->bs;
    }
    *is_cow = false;
    return f ? f->bs : NULL;
}

int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs,
                                            BlockDriverState *base,
                                            bool want_zero,
                                            int64_t offset, int64_t bytes,
                                            int64_t *pnum, int64_t *map,
                                            BlockDriverState **file,
                                            int *depth)
{
    BlockDriverState *p;
    int d = 1, ret = 0;
    bool first = true;

    if (depth) {
        *depth = 0;
    }
    *pnum = 0;
    if (bs == base) {
        return 0;
    }
    for (p = bs; p && p != base;) {
        int64_t n;
        bool is_cow;
        BlockDriverState *next;

        ret = bdrv_co_block_status(p, want_zero, offset, bytes, &n, map,
                                   file);
        if (ret < 0) {
            return ret;
        }
        if (n == 0 && !first) {
            /*
             * The layers above deferred to this one, and it is shorter:
             * reads return zeroes, as if allocated here.
             */
            assert(ret & BDRV_BLOCK_EOF);
            *pnum = bytes;
            if (file) {
                *file = p;
            }
            if (depth) {
                *depth = d;
            }
            return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
        }
        if (n == 0) {
            /* offset past the end of the top layer */
            return ret;
        }
        *pnum = n;
        if (ret & BDRV_BLOCK_ALLOCATED) {
            if (depth) {
                *depth = d;
            }
            return ret;
        }
        bytes = n;
        next = bdrv_cow_or_filtered(p, &is_cow);
        if (is_cow) {
            d++;
        }
        p = next;
        first = false;
    }
    /* unallocated down to base */
    return ret;
}

int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum)
{
    int64_t dummy;
    int ret = bdrv_co_block_status_above(bs, bdrv_backing_bs(bs), false,
                                         offset, bytes,
                                         pnum ? pnum : &dummy, NULL, NULL,
                                         NULL);

    if (ret < 0) {
        return ret;
    }
    return !!(ret & BDRV_BLOCK_ALLOCATED);
}

int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *top,
                                            BlockDriverState *base,
                                            bool include_base, int64_t offset,
                                            int64_t bytes, int64_t *pnum)
{
    BlockDriverState *p = top;
    int64_t n = bytes;
    int depth = 1;

    assert(!include_base || base);
    while (p && (include_base || p != base)) {
        int64_t pnum_inter, size_inter;
        int ret = bdrv_co_is_allocated(p, offset, n, &pnum_inter);
        bool is_cow;

        if (ret < 0) {
            return ret;
        }
        if (ret) {
            *pnum = pnum_inter;
            return depth;
        }
        size_inter = bdrv_getlength(p);
        if (size_inter < 0) {
            return size_inter;
        }
        if (n > pnum_inter &&
            (p == top || offset + pnum_inter < size_inter)) {
            n = pnum_inter;
        }
        if (p == base) {
            break;
        }
        p = bdrv_cow_or_filtered(p, &is_cow);
        if (is_cow) {
            depth++;
        }
    }
    *pnum = n;
    return 0;
}
