/*
 * file: the POSIX file protocol driver (regular files and block devices).
 *
 * I/O engines (option aio=threads|native|io_uring):
 * - io_uring (the default when the kernel allows it) for reads/writes;
 * - native = linux-aio; requires cache.direct=on as in QEMU, and is the
 *   default for cache.direct=on;
 * - threads: preadv/pwritev in the thread pool.  Everything that has no
 *   asynchronous form (flush, fallocate, ftruncate, copy_file_range,
 *   FICLONERANGE) always goes to the thread pool.
 *
 * Copy offload (bdrv_co_copy_range): copy_file_range, or with
 * BDRV_REQ_CLONE only FICLONERANGE, which shares the source's extents
 * with the target (XFS reflink=1, btrfs) and never copies data: whatever
 * the filesystem cannot clone (no reflink, another filesystem, a range
 * not aligned to its block size) is -ENOTSUP, and the caller copies.
 *
 * Block status (lseek SEEK_DATA/SEEK_HOLE) is the exception: as in QEMU it
 * runs directly on the block-layer thread.  It only consults the file's
 * extent map, which costs microseconds, while a hop to a pool worker and
 * back (futex wake, context switches, completion BH) costs far more; it
 * dominated the NBD server's NBD_CMD_BLOCK_STATUS replies (`nbdcopy` of an
 * export spent a third of its samples in pool workers).
 *
 * O_DIRECT (cache.direct=on): request and buffer alignment are probed by
 * trying reads of increasing alignment (512..4096; EINVAL means "too
 * small").  Buffers that are not aligned are copied through an aligned
 * bounce buffer.
 *
 * Image locking (locking=auto|on|off, auto = on) is QEMU-compatible, so
 * blockd and qemu-img/qemu-io/QEMU see each other's locks: OFD locks
 * (F_OFD_SETLK) on single bytes, a shared lock on byte 100+i while we hold
 * permission bit i, and on byte 200+i while we do NOT share bit i.  Taking
 * permission i conflicts with anyone holding 200+i; not sharing i
 * conflicts with anyone holding 100+i (tested with F_OFD_GETLK for an
 * exclusive lock).  Locks of one open file description never conflict
 * with each other, so re-checking our own locks is harmless, while other
 * descriptors (other users in this process, other processes) do conflict.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qemu/memalign.h"
#include "qemu/trace.h"
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <linux/fs.h>

#define RAW_LOCK_PERM_BASE   100
#define RAW_LOCK_SHARED_BASE 200

typedef enum RawAioMode {
    RAW_AIO_THREADS,
    RAW_AIO_NATIVE,
    RAW_AIO_IO_URING,
} RawAioMode;

static const char *const aio_mode_names[] = {
    "threads", "native", "io_uring", NULL,
};
static const char *const locking_names[] = { "auto", "on", "off", NULL };

typedef struct BDRVRawState {
    int fd;
    bool is_block_dev;
    bool use_lock;
    RawAioMode aio;
    int open_flags;            /* O_* */
    size_t buf_align;
    /* lock state: bits of perm/~shared currently locked */
    uint64_t locked_perm, locked_shared_perm;
    /* values before a pending check_perm (for abort) */
    uint64_t old_locked_perm, old_locked_shared_perm;
    bool perm_change_pending;
    bool has_discard, has_write_zeroes;
} BDRVRawState;

/* ---------------------------- locking ---------------------------- */

static int raw_lock_byte(int fd, int64_t byte, int type)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = type,
    };

    if (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
        return -errno;
    }
    return 0;
}

/* 0 if nobody else holds a lock on byte, -EAGAIN if someone does */
static int raw_test_byte(int fd, int64_t byte)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = F_WRLCK,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) == -1) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

static const char *raw_perm_name(int bit)
{
    static const char *const names[BLK_PERM_BITS] = {
        "consistent read", "write", "write unchanged", "resize",
    };
    return names[bit];
}

/*
 * Make the locks of fd exactly (perm, ~shared): lock what is newly needed,
 * unlock what is no longer needed.  With check, fail if others hold
 * conflicting locks.
 */
static int raw_apply_lock_bytes(BDRVRawState *s, const char *filename,
                                uint64_t perm, uint64_t shared, bool check,
                                Error **errp)
{
    int i, ret;

    for (i = 0; i < BLK_PERM_BITS; i++) {
        uint64_t bit = 1ULL << i;
        int64_t pbyte = RAW_LOCK_PERM_BASE + i;
        int64_t sbyte = RAW_LOCK_SHARED_BASE + i;

        if ((perm & bit) && !(s->locked_perm & bit)) {
            ret = raw_lock_byte(s->fd, pbyte, F_RDLCK);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to lock byte %" PRId64,
                                 pbyte);
                return ret;
            }
            s->locked_perm |= bit;
        } else if (!(perm & bit) && (s->locked_perm & bit)) {
            raw_lock_byte(s->fd, pbyte, F_UNLCK);
            s->locked_perm &= ~bit;
        }
        if (!(shared & bit) && !(s->locked_shared_perm & bit)) {
            ret = raw_lock_byte(s->fd, sbyte, F_RDLCK);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to lock byte %" PRId64,
                                 sbyte);
                return ret;
            }
            s->locked_shared_perm |= bit;
        } else if ((shared & bit) && (s->locked_shared_perm & bit)) {
            raw_lock_byte(s->fd, sbyte, F_UNLCK);
            s->locked_shared_perm &= ~bit;
        }
    }
    if (!check) {
        return 0;
    }
    for (i = 0; i < BLK_PERM_BITS; i++) {
        uint64_t bit = 1ULL << i;

        if ((perm & bit) &&
            raw_test_byte(s->fd, RAW_LOCK_SHARED_BASE + i) < 0) {
            error_setg(errp, "Failed to get \"%s\" lock", raw_perm_name(i));
            error_append_hint(errp, "Is another process using the image "
                              "[%s]?\n", filename);
            return -EAGAIN;
        }
        if (!(shared & bit) &&
            raw_test_byte(s->fd, RAW_LOCK_PERM_BASE + i) < 0) {
            error_setg(errp, "Failed to get shared \"%s\" lock",
                       raw_perm_name(i));
            error_append_hint(errp, "Is another process using the image "
                              "[%s]?\n", filename);
            return -EAGAIN;
        }
    }
    return 0;
}

static int raw_check_perm(BlockDriverState *bs, uint64_t perm,
                          uint64_t shared, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    if (!s->use_lock) {
        return 0;
    }
    if (!s->perm_change_pending) {
        s->old_locked_perm = s->locked_perm;
        s->old_locked_shared_perm = s->locked_shared_perm;
        s->perm_change_pending = true;
    }
    /* hold the union of old and new while checking, like QEMU */
    ret = raw_apply_lock_bytes(s, bs->filename,
                               s->old_locked_perm | perm,
                               ~s->old_locked_shared_perm & shared, true,
                               errp);
    if (ret < 0) {
        raw_apply_lock_bytes(s, bs->filename, s->old_locked_perm,
                             ~s->old_locked_shared_perm, false, NULL);
        s->perm_change_pending = false;
    }
    trace(file_check_perm, "file %s perm 0x%" PRIx64 " shared 0x%" PRIx64
          " ret %d", bs->filename, perm, shared, ret);
    return ret;
}

static void raw_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared)
{
    BDRVRawState *s = bs->opaque;

    if (!s->use_lock) {
        return;
    }
    raw_apply_lock_bytes(s, bs->filename, perm, shared, false, NULL);
    s->perm_change_pending = false;
}

static void raw_abort_perm_update(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (!s->use_lock || !s->perm_change_pending) {
        return;
    }
    raw_apply_lock_bytes(s, bs->filename, s->old_locked_perm,
                         ~s->old_locked_shared_perm, false, NULL);
    s->perm_change_pending = false;
}

/* ---------------------------- open ---------------------------- */

static bool raw_is_io_aligned(int fd, void *buf, size_t len)
{
    ssize_t ret = pread(fd, buf, len, 0);

    if (ret >= 0) {
        return true;
    }
    /* EINVAL means misaligned; any other error says nothing */
    return errno != EINVAL;
}

static void raw_probe_alignment(BlockDriverState *bs, BDRVRawState *s)
{
    size_t max_align = MAX(4096, (size_t)getpagesize());
    uint8_t *buf = qemu_memalign(max_align, 2 * max_align);
    size_t align;
    unsigned int sector = 0;

    bs->bl.request_alignment = 0;
    s->buf_align = 0;
    if (s->is_block_dev && ioctl(s->fd, BLKSSZGET, &sector) == 0 && sector) {
        bs->bl.request_alignment = sector;
    }
    if (!bs->bl.request_alignment) {
        for (align = 512; align <= max_align; align <<= 1) {
            if (raw_is_io_aligned(s->fd, buf, align)) {
                bs->bl.request_alignment = align;
                break;
            }
        }
    }
    for (align = 512; align <= max_align; align <<= 1) {
        if (raw_is_io_aligned(s->fd, buf + align, max_align)) {
            s->buf_align = align;
            break;
        }
    }
    qemu_vfree(buf);
    if (!bs->bl.request_alignment) {
        bs->bl.request_alignment = 4096;
    }
    if (!s->buf_align) {
        s->buf_align = 4096;
    }
}

static void raw_parse_filename(const char *filename, json_t *options,
                               Error **errp)
{
    /* "file:PATH" names PATH */
    if (g_str_has_prefix(filename, "file:")) {
        filename += strlen("file:");
    }
    json_object_set_new(options, "filename", json_string(filename));
}

/*
 * The io_uring or linux-aio backend @name started with @init_ret (its
 * memoised *_init() result, 0 or -errno).  If it failed: an error when the
 * user asked for it (@asked), else fall back to the thread pool.
 */
static bool raw_aio_usable(int *aio, int init_ret, bool asked,
                           const char *name, Error **errp)
{
    if (init_ret == 0) {
        return true;
    }
    if (asked) {
        error_setg(errp, "Unable to use %s: %s", name, strerror(-init_ret));
        return false;
    }
    *aio = RAW_AIO_THREADS;
    return true;
}

static int raw_open(BlockDriverState *bs, json_t *options, int flags,
                    Error **errp)
{
    BDRVRawState *s = bs->opaque;
    g_autofree char *filename = NULL;
    bool has_aio = false;
    int aio = RAW_AIO_IO_URING, locking = 0;
    uint64_t aio_max_batch = 0;
    struct stat st;
    int ret;

    if (!bdrv_opt_get_str(options, "filename", &filename, NULL, errp) ||
        !bdrv_opt_get_enum(options, "aio", aio_mode_names, &aio, &has_aio,
                           errp) ||
        !bdrv_opt_get_uint(options, "aio-max-batch", &aio_max_batch, NULL,
                           errp) ||
        !bdrv_opt_get_enum(options, "locking", locking_names, &locking, NULL,
                           errp)) {
        return -EINVAL;
    }
    if (!filename) {
        error_setg(errp, "Parameter 'filename' is missing");
        return -EINVAL;
    }
    if (!has_aio) {
        if (flags & BDRV_O_NATIVE_AIO) {
            aio = RAW_AIO_NATIVE;
        } else if (flags & BDRV_O_IO_URING) {
            aio = RAW_AIO_IO_URING;
        } else if (flags & BDRV_O_NOCACHE) {
            aio = RAW_AIO_NATIVE;
        } else {
            aio = RAW_AIO_IO_URING;
        }
    }
    if (aio == RAW_AIO_NATIVE && !(flags & BDRV_O_NOCACHE)) {
        if (has_aio || (flags & BDRV_O_NATIVE_AIO)) {
            error_setg(errp, "aio=native was specified, but it requires "
                       "cache.direct=on, which was not specified.");
            return -EINVAL;
        }
        aio = RAW_AIO_THREADS;
    }
    if (aio == RAW_AIO_IO_URING &&
        !raw_aio_usable(&aio, luring_init(),
                        has_aio || (flags & BDRV_O_IO_URING), "io_uring",
                        errp)) {
        return -EINVAL;
    }
    if (aio == RAW_AIO_NATIVE &&
        !raw_aio_usable(&aio, laio_init(),
                        has_aio || (flags & BDRV_O_NATIVE_AIO), "native AIO",
                        errp)) {
        return -EINVAL;
    }
    s->aio = aio;
    s->use_lock = locking != 2;
    g_strlcpy(bs->filename, filename, sizeof(bs->filename));

    s->open_flags = O_CLOEXEC | (bs->read_only ? O_RDONLY : O_RDWR);
    if (flags & BDRV_O_NOCACHE) {
        s->open_flags |= O_DIRECT;
    }
    s->fd = open(filename, s->open_flags);
    if (s->fd < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not open '%s'", filename);
        return ret;
    }
    if (fstat(s->fd, &st) < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not stat file");
        close(s->fd);
        return ret;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        error_setg(errp, "'%s' is not a regular file or a block device",
                   filename);
        close(s->fd);
        return -EINVAL;
    }
    s->is_block_dev = S_ISBLK(st.st_mode);
    s->has_discard = true;
    s->has_write_zeroes = true;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    trace(file_open, "file %s fd %d aio %s direct %d lock %d", filename,
          s->fd, aio_mode_names[aio], !!(flags & BDRV_O_NOCACHE),
          s->use_lock);
    return 0;
}

static void raw_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    if (s->open_flags & O_DIRECT) {
        raw_probe_alignment(bs, s);
        bs->bl.min_mem_alignment = s->buf_align;
        bs->bl.opt_mem_alignment = MAX(s->buf_align, (size_t)getpagesize());
    } else {
        bs->bl.request_alignment = 1;
        bs->bl.min_mem_alignment = 1;
        bs->bl.opt_mem_alignment = getpagesize();
    }
    bs->bl.max_iov = IOV_MAX;
}

static void raw_close(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->fd >= 0) {
        /* closing the descriptor drops its OFD locks */
        close(s->fd);
        s->fd = -1;
    }
}

int raw_file_fd(BlockDriverState *bs)
{
    BDRVRawState *s;

    if (!bs || bs->drv != &bdrv_file) {
        return -1;
    }
    s = bs->opaque;
    return s->fd;
}

/* ------------------------- thread-pool work ------------------------- */

typedef struct RawPoolReq {
    int fd;
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    bool write;
    int mode;               /* fallocate mode */
    /* copy_file_range, FICLONERANGE */
    int dst_fd;
    int64_t dst_offset;
} RawPoolReq;

static int raw_pool_rw(void *opaque)
{
    RawPoolReq *r = opaque;
    size_t done = 0, total = r->qiov->size;

    while (done < total) {
        QEMUIOVector slice;
        ssize_t n;

        qemu_iovec_init_slice(&slice, r->qiov, done, total - done);
        if (r->write) {
            n = pwritev(r->fd, slice.iov, slice.niov, r->offset + done);
        } else {
            n = preadv(r->fd, slice.iov, slice.niov, r->offset + done);
        }
        qemu_iovec_destroy(&slice);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            if (r->write) {
                return -ENOSPC;
            }
            /* EOF: zero the rest */
            qemu_iovec_memset(r->qiov, done, 0, total - done);
            break;
        }
        done += n;
    }
    return 0;
}

static int raw_pool_flush(void *opaque)
{
    RawPoolReq *r = opaque;

    return fdatasync(r->fd) < 0 ? -errno : 0;
}

static int raw_pool_fallocate(void *opaque)
{
    RawPoolReq *r = opaque;

    if (fallocate(r->fd, r->mode, r->offset, r->bytes) < 0) {
        return -errno;
    }
    return 0;
}

static int raw_pool_truncate(void *opaque)
{
    RawPoolReq *r = opaque;

    return ftruncate(r->fd, r->offset) < 0 ? -errno : 0;
}

static int raw_pool_copy_range(void *opaque)
{
    RawPoolReq *r = opaque;
    loff_t in = r->offset, out = r->dst_offset;
    int64_t left = r->bytes;

    while (left > 0) {
        ssize_t n = copy_file_range(r->fd, &in, r->dst_fd, &out, left, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ENOSYS || errno == EXDEV || errno == EINVAL ||
                errno == EOPNOTSUPP) {
                return -ENOTSUP;
            }
            return -errno;
        }
        if (n == 0) {
            /* source EOF: nothing more to copy; reads there are zeroes */
            return -ENOTSUP;
        }
        left -= n;
    }
    return 0;
}

/*
 * The filesystem block size that FICLONERANGE needs offsets and lengths
 * aligned to (statfs f_bsize: the allocation unit on XFS and btrfs).
 */
static int64_t raw_clone_block_size(int fd)
{
    struct statfs sfs;

    if (fstatfs(fd, &sfs) < 0 || sfs.f_bsize <= 0) {
        return -1;
    }
    return sfs.f_bsize;
}

/*
 * Share the extents of [offset, offset + bytes) of fd with dst_fd at
 * dst_offset (FICLONERANGE: XFS with reflink, btrfs, ...).  The kernel
 * wants both offsets and the length aligned to the filesystem block,
 * except for a length that ends at the source's EOF, and it must never
 * put that partial EOF block before the destination's EOF.  Anything the
 * kernel or these rules refuse is -ENOTSUP (the caller copies instead);
 * real I/O errors (EIO, ENOSPC, ...) come back as they are.
 */
static int raw_pool_clone_range(void *opaque)
{
    RawPoolReq *r = opaque;
    struct file_clone_range fcr = {
        .src_fd = r->fd,
        .src_offset = r->offset,
        .src_length = r->bytes,
        .dest_offset = r->dst_offset,
    };
    int64_t align = MAX(raw_clone_block_size(r->fd),
                        raw_clone_block_size(r->dst_fd));
    struct stat sst, dst;

    if (align <= 0 || r->bytes <= 0 ||
        !QEMU_IS_ALIGNED(r->offset | r->dst_offset, align)) {
        return -ENOTSUP;
    }
    if (!QEMU_IS_ALIGNED(r->bytes, align)) {
        /* only the partial block at the source's EOF, onto the dest's */
        if (fstat(r->fd, &sst) < 0 || fstat(r->dst_fd, &dst) < 0) {
            return -errno;
        }
        if (r->offset + r->bytes != sst.st_size ||
            r->dst_offset + r->bytes < dst.st_size) {
            return -ENOTSUP;
        }
    }
    while (ioctl(r->dst_fd, FICLONERANGE, &fcr) < 0) {
        switch (errno) {
        case EINTR:
            continue;
        case EOPNOTSUPP:        /* filesystem without reflink */
        case EXDEV:             /* different filesystems (mounts) */
        case EINVAL:            /* alignment, not regular files, ... */
        case ENOTTY:            /* no such ioctl here */
        case ENOSYS:
        case EBADF:             /* e.g. target opened O_APPEND */
        case ETXTBSY:           /* swap file, active executable */
            return -ENOTSUP;
        default:
            return -errno;
        }
    }
    return 0;
}

/* ---------------------------- I/O ---------------------------- */

static bool raw_qiov_aligned(BDRVRawState *s, QEMUIOVector *qiov)
{
    int i;

    if (!(s->open_flags & O_DIRECT)) {
        return true;
    }
    for (i = 0; i < qiov->niov; i++) {
        if (!QEMU_PTR_IS_ALIGNED(qiov->iov[i].iov_base, s->buf_align) ||
            !QEMU_IS_ALIGNED(qiov->iov[i].iov_len, s->buf_align)) {
            return false;
        }
    }
    return true;
}

static int coroutine_fn raw_co_rw(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes, QEMUIOVector *qiov,
                                  bool write)
{
    BDRVRawState *s = bs->opaque;
    QEMUIOVector bounce_qiov, *q = qiov;
    void *bounce = NULL;
    int ret;

    if (s->fd < 0) {
        return -EBADF;
    }
    if (!raw_qiov_aligned(s, qiov)) {
        /* O_DIRECT needs aligned memory: copy through a bounce buffer */
        bounce = qemu_try_blockalign_buf(s->buf_align, bytes);
        if (!bounce) {
            return -ENOMEM;
        }
        if (write) {
            qemu_iovec_to_buf(qiov, 0, bounce, bytes);
        }
        qemu_iovec_init_buf(&bounce_qiov, bounce, bytes);
        q = &bounce_qiov;
    }

    switch (s->aio) {
    case RAW_AIO_IO_URING:
        ret = luring_co_submit(s->fd, offset, q,
                               write ? RAW_AIO_WRITE : RAW_AIO_READ);
        break;
    case RAW_AIO_NATIVE:
        ret = laio_co_submit(s->fd, offset, q,
                             write ? RAW_AIO_WRITE : RAW_AIO_READ);
        break;
    default: {
        RawPoolReq r = { .fd = s->fd, .offset = offset, .bytes = bytes,
                         .qiov = q, .write = write };

        ret = thread_pool_submit_co(raw_pool_rw, &r);
        break;
    }
    }
    if (bounce) {
        if (!write && ret == 0) {
            qemu_iovec_from_buf(qiov, 0, bounce, bytes);
        }
        qemu_vfree(bounce);
    }
    return ret;
}

static int coroutine_fn raw_co_preadv(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      BdrvRequestFlags flags)
{
    return raw_co_rw(bs, offset, bytes, qiov, false);
}

static int coroutine_fn raw_co_pwritev(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    return raw_co_rw(bs, offset, bytes, qiov, true);
}

static int coroutine_fn raw_co_flush_to_disk(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    RawPoolReq r = { .fd = s->fd };

    if (s->fd < 0) {
        return -EBADF;
    }
    return thread_pool_submit_co(raw_pool_flush, &r);
}

static int64_t raw_fd_size(BDRVRawState *s)
{
    struct stat st;

    if (s->is_block_dev) {
        off_t end = lseek(s->fd, 0, SEEK_END);

        return end < 0 ? -errno : end;
    }
    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return st.st_size;
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    RawPoolReq r = { .fd = s->fd, .offset = offset, .bytes = bytes,
                     .mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };
    int ret;

    if (!s->has_discard) {
        return -ENOTSUP;
    }
    ret = thread_pool_submit_co(raw_pool_fallocate, &r);
    if (ret == -EOPNOTSUPP || ret == -ENOTSUP || ret == -EINVAL) {
        s->has_discard = false;
        ret = -ENOTSUP;
    }
    trace(file_discard, "file %s offset %" PRId64 " bytes %" PRId64
          " ret %d", bs->filename, offset, bytes, ret);
    return ret;
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    RawPoolReq r = { .fd = s->fd, .offset = offset, .bytes = bytes };
    int64_t size = raw_fd_size(s);
    int ret = -ENOTSUP;

    if (size < 0) {
        return size;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && s->has_discard && !s->is_block_dev) {
        /* punch the part inside the file, grow for the rest */
        if (offset < size) {
            r.bytes = MIN(bytes, size - offset);
            r.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
            ret = thread_pool_submit_co(raw_pool_fallocate, &r);
        } else {
            ret = 0;
        }
        if (ret == 0 && offset + bytes > size) {
            r.offset = offset + bytes;
            ret = thread_pool_submit_co(raw_pool_truncate, &r);
        }
        if (ret == 0) {
            trace(file_zero_punch, "offset %" PRId64 " bytes %" PRId64,
                  offset, bytes);
            return 0;
        }
        r.offset = offset;
        r.bytes = bytes;
    }
    if (s->has_write_zeroes) {
        r.mode = FALLOC_FL_ZERO_RANGE;
        ret = thread_pool_submit_co(raw_pool_fallocate, &r);
        if (ret == -EOPNOTSUPP || ret == -ENOTSUP || ret == -EINVAL) {
            s->has_write_zeroes = false;
            ret = -ENOTSUP;
        }
    }
    if (ret == -ENOTSUP && offset >= size && !s->is_block_dev) {
        /* entirely past EOF: growing the file makes zeroes */
        r.offset = offset + bytes;
        ret = thread_pool_submit_co(raw_pool_truncate, &r);
    }
    trace(file_zero_range, "offset %" PRId64 " bytes %" PRId64 " ret %d",
          offset, bytes, ret);
    return ret;
}

/*
 * lseek(@whence) from @offset on the calling thread (see the top of the
 * file for why not in the pool): the new offset, or -errno.  The file
 * position it moves is never used, all I/O is positional.
 */
static int64_t raw_seek(BDRVRawState *s, int64_t offset, int whence)
{
    off_t off = lseek(s->fd, offset, whence);

    return off < 0 ? -errno : off;
}

static int coroutine_fn raw_co_block_status(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;
    uint32_t align = bs->bl.request_alignment;
    int64_t data, hole;

    *map = offset;
    *file = bs;
    *pnum = bytes;
    if (!want_zero || s->is_block_dev) {
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    data = raw_seek(s, offset, SEEK_DATA);
    if (data == -ENXIO) {
        /* no data after offset: a hole up to EOF */
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
    }
    if (data < 0) {
        /* SEEK_DATA unsupported: everything is data */
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    if (data > offset) {
        /* in a hole up to data */
        *pnum = MIN(bytes, data - offset);
        if (align > 1 && !QEMU_IS_ALIGNED(*pnum, align)) {
            *pnum = QEMU_ALIGN_DOWN(*pnum, align);
            if (!*pnum) {
                *pnum = MIN(bytes, (int64_t)align);
                return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
            }
        }
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
    }
    hole = raw_seek(s, offset, SEEK_HOLE);
    if (hole <= offset) {
        /* also -errno: fall back to "all data" */
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    *pnum = MIN(bytes, hole - offset);
    if (align > 1 && !QEMU_IS_ALIGNED(*pnum, align) && *pnum < bytes) {
        *pnum = MIN(bytes, QEMU_ALIGN_UP(*pnum, (int64_t)align));
    }
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t coroutine_fn raw_co_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->fd < 0) {
        return -EBADF;
    }
    return raw_fd_size(s);
}

static int64_t coroutine_fn raw_co_get_allocated_file_size(
    BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    RawPoolReq r = { .fd = s->fd, .offset = offset };
    int ret;

    if (s->is_block_dev) {
        int64_t size = raw_fd_size(s);

        if (offset > size || (exact && offset != size)) {
            error_setg(errp, "Cannot grow device files");
            return -EINVAL;
        }
        return 0;
    }
    ret = thread_pool_submit_co(raw_pool_truncate, &r);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to resize file");
    }
    return ret;
}

static int coroutine_fn raw_co_copy_range_from(BlockDriverState *bs,
                                               BdrvChild *src,
                                               int64_t src_offset,
                                               BdrvChild *dst,
                                               int64_t dst_offset,
                                               int64_t bytes,
                                               BdrvRequestFlags read_flags,
                                               BdrvRequestFlags write_flags)
{
    return bdrv_co_copy_range_to(src, src_offset, dst, dst_offset, bytes,
                                 read_flags, write_flags);
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
    BDRVRawState *d = bs->opaque, *sr;
    RawPoolReq r;
    int ret;

    if (src->bs->drv != bs->drv) {
        return -ENOTSUP;
    }
    sr = src->bs->opaque;
    r = (RawPoolReq) { .fd = sr->fd, .offset = src_offset, .bytes = bytes,
                       .dst_fd = d->fd, .dst_offset = dst_offset };
    if ((read_flags | write_flags) & BDRV_REQ_CLONE) {
        if (d->is_block_dev || sr->is_block_dev) {
            return -ENOTSUP;
        }
        ret = thread_pool_submit_co(raw_pool_clone_range, &r);
        trace(file_clone_range, "src %s dst %s offset %" PRId64 " bytes %"
              PRId64 " ret %d", src->bs->filename, bs->filename, src_offset,
              bytes, ret);
    } else {
        ret = thread_pool_submit_co(raw_pool_copy_range, &r);
        trace(file_copy_range, "src %s dst %s bytes %" PRId64 " ret %d",
              src->bs->filename, bs->filename, bytes, ret);
    }
    if (ret == 0 && (write_flags & BDRV_REQ_FUA)) {
        ret = raw_co_flush_to_disk(bs);
    }
    return ret;
}

static int coroutine_fn raw_co_create_opts(BlockDriver *drv,
                                           const char *filename,
                                           json_t *options, Error **errp)
{
    uint64_t size = 0;
    g_autofree char *prealloc = NULL;
    int fd, ret = 0;

    if (!bdrv_opt_get_size(options, BLOCK_OPT_SIZE, &size, NULL, errp) ||
        !bdrv_opt_get_str(options, "preallocation", &prealloc, NULL, errp)) {
        return -EINVAL;
    }
    if (prealloc && strcmp(prealloc, "off") != 0 &&
        strcmp(prealloc, "falloc") != 0 && strcmp(prealloc, "full") != 0) {
        error_setg(errp, "Invalid preallocation mode: '%s'", prealloc);
        return -EINVAL;
    }
    fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC | O_TRUNC, 0644);
    if (fd < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not create '%s'", filename);
        return ret;
    }
    if (ftruncate(fd, size) < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not resize file");
    } else if ((!prealloc || !strcmp(prealloc, "off")) && size) {
        /*
         * As QEMU (allocate_first_block): the first block of a new sparse
         * file is allocated, so that alignment probing of O_DIRECT opens
         * finds data; `map` shows it as data.  Failures are ignored.
         */
        static const uint8_t zeroes[4096];
        size_t n = size < sizeof(zeroes) ? BDRV_SECTOR_SIZE : sizeof(zeroes);

        if (pwrite(fd, zeroes, MIN(n, size), 0) < 0) {
            /* only an optimisation */
        }
    } else if (prealloc && size &&
               (!strcmp(prealloc, "falloc") || !strcmp(prealloc, "full"))) {
        if (posix_fallocate(fd, 0, size) != 0) {
            ret = -ENOSPC;
            error_setg(errp, "Could not preallocate data for the new file");
        }
    }
    close(fd);
    return ret;
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    /* no clusters, no VM state: an all-zero answer (as QEMU) */
    return 0;
}

static void raw_dump_info(BlockDriverState *bs, GString *out)
{
    BDRVRawState *s = bs->opaque;

    g_string_append_printf(out, "aio: %s\ndirect: %s\nlocking: %s\n",
                           aio_mode_names[s->aio],
                           (s->open_flags & O_DIRECT) ? "on" : "off",
                           s->use_lock ? "on" : "off");
}

BlockDriver bdrv_file = {
    .format_name = "file",
    .protocol_name = "file",
    .instance_size = sizeof(BDRVRawState),
    .bdrv_parse_filename = raw_parse_filename,
    .bdrv_open = raw_open,
    .bdrv_close = raw_close,
    .bdrv_refresh_limits = raw_refresh_limits,
    .bdrv_co_preadv = raw_co_preadv,
    .bdrv_co_pwritev = raw_co_pwritev,
    .bdrv_co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .bdrv_co_pdiscard = raw_co_pdiscard,
    .bdrv_co_flush_to_disk = raw_co_flush_to_disk,
    .bdrv_co_block_status = raw_co_block_status,
    .bdrv_co_getlength = raw_co_getlength,
    .bdrv_co_get_allocated_file_size = raw_co_get_allocated_file_size,
    .bdrv_co_truncate = raw_co_truncate,
    .bdrv_co_copy_range_from = raw_co_copy_range_from,
    .bdrv_co_copy_range_to = raw_co_copy_range_to,
    .bdrv_co_create_opts = raw_co_create_opts,
    .bdrv_check_perm = raw_check_perm,
    .bdrv_set_perm = raw_set_perm,
    .bdrv_abort_perm_update = raw_abort_perm_update,
    .bdrv_get_info = raw_get_info,
    .bdrv_dump_info = raw_dump_info,
};
