/*
 * blockd-img rebase: give an image another backing file, like qemu-img
 * 7.2:
 *
 *   rebase [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] [-U]
 *          -b backing_file [-F backing_fmt] filename
 *
 * Safe mode (default): every range the image does not allocate itself is
 * read from the old and from the new backing file (zeroes past the end of
 * either, and for -b "" which removes the backing file); where they
 * differ, the old content is written into the image, so what the guest
 * sees does not change.  When the new backing file is in the old backing
 * chain, ranges nothing between the two allocates are skipped.  Then the
 * backing file name and format in the image header are changed.
 *
 * Unsafe mode (-u) only changes the header; the old backing file is not
 * even opened (it may be gone or renamed).
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "tools/blockd-img.h"
#include <getopt.h>

#define REBASE_BUF_SIZE (2 * MiB)

typedef struct RebaseState {
    BlockBackend *blk;
    BlockDriverState *old_backing;   /* NULL: none */
    BlockBackend *new_backing;       /* NULL: none (-b "") */
    BlockDriverState *prefix;        /* new backing inside the old chain */
    const char *filename;
    const char *new_name;
    int ret;
} RebaseState;

/*
 * Whether the first 512-byte sector of a and b differ, and in *pnum the
 * number of bytes from the start that have the same answer.
 */
static bool compare_sectors(const uint8_t *a, const uint8_t *b,
                            int64_t bytes, int64_t *pnum)
{
    int64_t n = MIN(BDRV_SECTOR_SIZE, bytes);
    bool differ = memcmp(a, b, n) != 0;

    while (n < bytes) {
        int64_t m = MIN(BDRV_SECTOR_SIZE, bytes - n);

        if ((memcmp(a + n, b + n, m) != 0) != differ) {
            break;
        }
        n += m;
    }
    *pnum = n;
    return differ;
}

/* n bytes at offset of a backing file of size bytes (zeroes past it) */
static int coroutine_fn read_backing(BlockBackend *blk, BdrvChild *child,
                                     int64_t size, int64_t offset,
                                     int64_t *n, uint8_t *buf)
{
    if (offset >= size) {
        memset(buf, 0, *n);
        return 0;
    }
    *n = MIN(*n, size - offset);
    return blk ? blk_co_pread(blk, offset, *n, buf, 0)
               : bdrv_co_pread(child, offset, *n, buf, 0);
}

static void coroutine_fn rebase_entry(void *opaque)
{
    RebaseState *r = opaque;
    BlockDriverState *bs = blk_bs(r->blk);
    int64_t size = blk_getlength(r->blk), old_size = 0, new_size = 0;
    uint8_t *buf_old = qemu_blockalign(bs, REBASE_BUF_SIZE);
    uint8_t *buf_new = qemu_blockalign(bs, REBASE_BUF_SIZE);
    float step = 0;
    int64_t offset, n;
    int ret = 0;

    if (size < 0) {
        error_report("Could not get size of '%s': %s", r->filename,
                     strerror(-size));
        ret = size;
        goto out;
    }
    if (r->old_backing) {
        old_size = bdrv_getlength(r->old_backing);
        if (old_size < 0) {
            error_report("Could not get size of '%s': %s", bs->backing_file,
                         strerror(-old_size));
            ret = old_size;
            goto out;
        }
    }
    if (r->new_backing) {
        new_size = blk_getlength(r->new_backing);
        if (new_size < 0) {
            error_report("Could not get size of '%s': %s", r->new_name,
                         strerror(-new_size));
            ret = new_size;
            goto out;
        }
    }
    if (size) {
        step = 100.0f / (size / MIN(size, REBASE_BUF_SIZE));
    }
    for (offset = 0; offset < size; offset += n) {
        bool old_is_zero = offset >= old_size;
        int64_t done = 0;

        n = MIN(REBASE_BUF_SIZE, size - offset);
        ret = bdrv_co_is_allocated(bs, offset, n, &n);
        if (ret < 0) {
            error_report("error while reading image metadata: %s",
                         strerror(-ret));
            goto out;
        }
        if (ret) {
            continue;
        }
        if (r->prefix && offset < old_size) {
            /* past the end of the old backing file: compare */
            ret = bdrv_co_is_allocated_above(r->old_backing, r->prefix,
                                             false, offset, n, &n);
            if (ret < 0) {
                error_report("error while reading image metadata: %s",
                             strerror(-ret));
                goto out;
            }
            if (!ret) {
                continue;
            }
        }
        ret = read_backing(NULL, bs->backing, old_size, offset, &n,
                           buf_old);
        if (ret < 0) {
            error_report("error while reading from old backing file");
            goto out;
        }
        ret = read_backing(r->new_backing, NULL, new_size, offset, &n,
                           buf_new);
        if (ret < 0) {
            error_report("error while reading from new backing file");
            goto out;
        }
        while (done < n) {
            int64_t pnum;

            if (compare_sectors(buf_old + done, buf_new + done, n - done,
                                &pnum)) {
                if (old_is_zero) {
                    ret = blk_co_pwrite_zeroes(r->blk, offset + done, pnum,
                                               0);
                } else {
                    ret = blk_co_pwrite(r->blk, offset + done, pnum,
                                        buf_old + done, 0);
                }
                if (ret < 0) {
                    error_report("Error while writing to COW image: %s",
                                 strerror(-ret));
                    goto out;
                }
            }
            done += pnum;
        }
        img_progress_add(step);
    }
    ret = 0;
out:
    qemu_vfree(buf_old);
    qemu_vfree(buf_new);
    r->ret = ret;
}

typedef struct ChangeBackingCo {
    BlockDriverState *bs;
    const char *file, *fmt;
    int ret;
} ChangeBackingCo;

static void coroutine_fn change_backing_entry(void *opaque)
{
    ChangeBackingCo *c = opaque;
    BlockDriver *drv = c->bs->drv;

    if (c->file && !c->fmt) {
        c->ret = -EINVAL;      /* qemu-img requires the format now */
    } else if (drv->bdrv_co_change_backing_file) {
        c->ret = drv->bdrv_co_change_backing_file(c->bs, c->file, c->fmt);
    } else {
        c->ret = -ENOTSUP;
    }
    if (c->ret == 0) {
        c->ret = bdrv_co_flush(c->bs);
    }
}

/* Open the new backing file for the comparison (safe mode) */
static bool open_new_backing(RebaseState *r, const char *fmt,
                             int src_flags, bool force_share)
{
    BlockDriverState *bs = blk_bs(r->blk), *parent;
    g_autofree char *path = img_full_backing_name(r->filename, r->new_name);
    g_autoptr(json_t) opts = json_object();
    Error *err = NULL;

    r->prefix = img_find_backing_image(bs, path, &parent);
    if (force_share) {
        json_object_set_new(opts, "force-share", json_true());
        src_flags |= BDRV_O_FORCE_SHARE;
    }
    r->new_backing = blk_new_open(path, fmt, opts, src_flags, &err);
    if (!r->new_backing) {
        error_report("Could not open new backing file '%s': %s",
                     r->new_name, error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

int img_cmd_rebase(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *cache = "writeback", *src_cache = "writeback";
    const char *base = NULL, *base_fmt = NULL;
    bool unsafe = false, progress = false, quiet = false;
    bool force_share = false;
    RebaseState r = { 0 };
    ChangeBackingCo cb = { 0 };
    int flags, src_flags = 0, c, ret = 1;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            img_help();
            return 0;
        case 'f':
            fmt = optarg;
            break;
        case 'F':
            base_fmt = optarg;
            break;
        case 'b':
            base = optarg;
            break;
        case 'u':
            unsafe = true;
            break;
        case 'p':
            progress = true;
            break;
        case 't':
            cache = optarg;
            break;
        case 'T':
            src_cache = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'U':
            force_share = true;
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (quiet) {
        progress = false;
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (!unsafe && !base) {
        return img_usage_error("Must specify backing file (-b) or use "
                               "unsafe mode (-u)");
    }
    r.filename = argv[optind];
    r.new_name = base;
    img_progress_init(progress, 2.0f);
    img_progress_print(0);

    flags = BDRV_O_RDWR | (unsafe ? BDRV_O_NO_BACKING : 0);
    if (img_parse_cache(cache, &flags) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    if (img_parse_cache(src_cache, &src_flags) < 0) {
        error_report("Invalid source cache option: %s", src_cache);
        goto out;
    }
    r.blk = img_open(r.filename, fmt, flags, false);
    if (!r.blk) {
        goto out;
    }
    if (base_fmt && !bdrv_find_format(base_fmt)) {
        error_report("Invalid format name: '%s'", base_fmt);
        goto out;
    }
    if (!unsafe) {
        r.old_backing = bdrv_backing_bs(blk_bs(r.blk));
        if (base[0] && !open_new_backing(&r, base_fmt, src_flags,
                                         force_share)) {
            goto out;
        }
        img_run_co(rebase_entry, &r);
        if (r.ret < 0) {
            goto out;
        }
    }

    cb.bs = blk_bs(r.blk);
    cb.file = base && base[0] ? base : NULL;
    cb.fmt = cb.file ? base_fmt : NULL;
    img_run_co(change_backing_entry, &cb);
    if (cb.ret == -ENOSPC) {
        error_report("Could not change the backing file to '%s': No space "
                     "left in the file header", base);
    } else if (cb.ret == -EINVAL && cb.file && !base_fmt) {
        error_report("Could not change the backing file to '%s': backing "
                     "format must be specified", base);
    } else if (cb.ret < 0) {
        error_report("Could not change the backing file to '%s': %s",
                     base, strerror(-cb.ret));
    }
    img_progress_print(100);
    ret = cb.ret < 0 ? 1 : 0;
out:
    img_progress_end();
    if (r.new_backing) {
        blk_unref(r.new_backing);
    }
    if (r.blk) {
        blk_unref(r.blk);
    }
    return ret;
}
