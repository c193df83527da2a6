/*
 * blockd-img commit: write the data of an image (and of the images
 * between it and -b base) into its backing file, like qemu-img 7.2:
 *
 *   commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p]
 *          filename
 *
 * Without -b the base is the immediate backing file.  Every range
 * allocated above the base (data or zeroes) is copied into it; a base
 * shorter than the image is grown first.  Then, unless -d or -b, the
 * image itself is emptied (every cluster unallocated), so it reads as
 * the base now does.
 *
 * The copy runs in-process on the image's own backing chain: the base is
 * taken out of the chain (it was opened read-only there) and opened again
 * read-write, locked like any image qemu-img writes.  Nothing reads the
 * base through the chain meanwhile: only ranges allocated above it are
 * read.
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "tools/blockd-img.h"
#include <getopt.h>

#define COMMIT_CHUNK (2 * MiB)

typedef struct CommitState {
    BlockBackend *top;
    BlockBackend *base;
    int64_t len;
    int ret;
    const char *err;           /* what failed, for the error message */
} CommitState;

static void coroutine_fn commit_entry(void *opaque)
{
    CommitState *c = opaque;
    BlockDriverState *bs = blk_bs(c->top);
    int64_t base_len = blk_getlength(c->base), offset = 0;
    uint8_t *buf = qemu_blockalign(bs, COMMIT_CHUNK);
    int ret = 0;

    if (base_len < 0) {
        ret = base_len;
    } else if (base_len < c->len) {
        ret = blk_co_truncate(c->base, c->len, false, NULL);
    }
    img_progress_print(0);
    while (ret == 0 && offset < c->len) {
        int64_t pnum;
        int depth;

        ret = bdrv_co_block_status_above(bs, NULL, true, offset,
                                         MIN(COMMIT_CHUNK, c->len - offset),
                                         &pnum, NULL, NULL, &depth);
        if (ret < 0) {
            break;
        }
        if (depth == 0) {
            ret = 0;
        } else if (ret & BDRV_BLOCK_ZERO) {
            ret = blk_co_pwrite_zeroes(c->base, offset, pnum,
                                       BDRV_REQ_MAY_UNMAP);
        } else {
            ret = blk_co_pread(c->top, offset, pnum, buf, 0);
            if (ret == 0) {
                ret = blk_co_pwrite(c->base, offset, pnum, buf, 0);
            }
        }
        offset += pnum;
        img_progress_print((float)offset * 100 / c->len);
    }
    if (ret == 0) {
        ret = blk_co_flush(c->base);
    }
    qemu_vfree(buf);
    c->ret = ret;
}

static void coroutine_fn make_empty_entry(void *opaque)
{
    CommitState *c = opaque;
    BlockDriverState *bs = blk_bs(c->top);

    c->ret = bs->drv->bdrv_co_make_empty ? bs->drv->bdrv_co_make_empty(bs)
                                         : -ENOTSUP;
    if (c->ret == 0) {
        c->ret = blk_co_flush(c->top);
    }
}

int img_cmd_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *cache = "writeback", *base = NULL, *filename;
    bool progress = false, quiet = false, drop = false;
    g_autofree char *base_name = NULL;
    g_autofree char *base_fmt = NULL;
    BlockDriverState *bs, *base_bs, *parent = NULL;
    CommitState c = { 0 };
    Error *err = NULL;
    int flags = BDRV_O_RDWR | BDRV_O_UNMAP;
    int ch, ret = 1;

    optind = 0;
    while ((ch = getopt_long(argc, argv, ":f:ht:b:dpqr:", long_options,
                             NULL)) != -1) {
        switch (ch) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 't':
            cache = optarg;
            break;
        case 'b':
            base = optarg;
            drop = true;        /* -b implies -d */
            break;
        case 'd':
            drop = true;
            break;
        case 'p':
            progress = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'r':
            /* accepted; the copy is not throttled */
            if (img_cvtnum_full("rate limit", optarg, 0, INT64_MAX) < 0) {
                return 1;
            }
            break;
        default:
            return img_bad_option(ch, argv);
        }
    }
    if (quiet) {
        progress = false;
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    filename = argv[optind];
    if (img_parse_cache(cache, &flags) < 0) {
        error_report("Invalid cache option: %s", cache);
        return 1;
    }
    c.top = img_open(filename, fmt, flags, false);
    if (!c.top) {
        return 1;
    }
    bs = blk_bs(c.top);
    img_progress_init(progress, 1.0f);
    img_progress_print(0);

    if (base) {
        base_bs = img_find_backing_image(bs, base, &parent);
        if (!base_bs) {
            error_setg(&err, "Did not find '%s' in the backing chain of '%s'",
                       base, filename);
            goto done;
        }
    } else {
        base_bs = bdrv_backing_bs(bs);
        parent = bs;
        if (!base_bs) {
            error_setg(&err, "Image does not have a backing file");
            goto done;
        }
    }
    c.len = blk_getlength(c.top);
    if (c.len < 0) {
        error_setg_errno(&err, -c.len, "Could not get the image size");
        goto done;
    }
    base_name = g_strdup(bdrv_get_filename(base_bs));
    base_fmt = g_strdup(bdrv_get_format_name(base_bs));
    /* reopen the base read-write, out of the chain */
    if (!bdrv_set_backing_hd(parent, NULL, &err)) {
        goto done;
    }
    c.base = img_open(base_name, base_fmt, flags | BDRV_O_RESIZE, false);
    if (!c.base) {
        goto done;
    }
    img_run_co(commit_entry, &c);
    if (c.ret < 0) {
        error_setg_errno(&err, -c.ret, "Block job failed");
        goto done;
    }
    img_progress_print(100);
    if (!drop) {
        img_run_co(make_empty_entry, &c);
        if (c.ret < 0 && c.ret != -ENOTSUP) {
            error_setg_errno(&err, -c.ret, "Failed to make '%s' empty",
                             filename);
            goto done;
        }
    }
    ret = 0;
done:
    img_progress_end();
    if (c.base) {
        blk_unref(c.base);
    }
    blk_unref(c.top);
    if (err) {
        error_report_err(err);
        return 1;
    }
    if (ret == 0 && !quiet) {
        printf("Image committed.\n");
    }
    return ret;
}
