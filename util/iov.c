/*
 * iovec helpers and QEMUIOVector; see include/qemu/iov.h.
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/cutils.h"

size_t iov_size(const struct iovec *iov, unsigned int iov_cnt)
{
    size_t len = 0;

    for (unsigned int i = 0; i < iov_cnt; i++) {
        len += iov[i].iov_len;
    }
    return len;
}

/*
 * Walk @bytes bytes of the vector from @offset, calling @fn on each
 * contiguous piece with its position in the flat byte stream.  Returns the
 * number of bytes visited (less than @bytes if the vector ends first).
 * A false return from @fn stops the walk early.
 */
typedef bool IovPieceFn(void *base, size_t len, size_t pos, void *opaque);

static size_t iov_walk(const struct iovec *iov, unsigned int iov_cnt,
                       size_t offset, size_t bytes, IovPieceFn *fn,
                       void *opaque)
{
    size_t done = 0;

    for (unsigned int i = 0; i < iov_cnt && done < bytes; i++) {
        size_t len;

        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        len = MIN(iov[i].iov_len - offset, bytes - done);
        if (!fn((char *)iov[i].iov_base + offset, len, done, opaque)) {
            return done;
        }
        done += len;
        offset = 0;
    }
    return done;
}

static bool piece_from_buf(void *base, size_t len, size_t pos, void *opaque)
{
    memcpy(base, (const char *)opaque + pos, len);
    return true;
}

static bool piece_to_buf(void *base, size_t len, size_t pos, void *opaque)
{
    memcpy((char *)opaque + pos, base, len);
    return true;
}

static bool piece_memset(void *base, size_t len, size_t pos, void *opaque)
{
    memset(base, *(const int *)opaque, len);
    return true;
}

static bool piece_is_zero(void *base, size_t len, size_t pos, void *opaque)
{
    return buffer_is_zero(base, len);
}

size_t iov_from_buf(const struct iovec *iov, unsigned int iov_cnt,
                    size_t offset, const void *buf, size_t bytes)
{
    return iov_walk(iov, iov_cnt, offset, bytes, piece_from_buf, (void *)buf);
}

size_t iov_to_buf(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, void *buf, size_t bytes)
{
    return iov_walk(iov, iov_cnt, offset, bytes, piece_to_buf, buf);
}

size_t iov_memset(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes)
{
    return iov_walk(iov, iov_cnt, offset, bytes, piece_memset, &fillc);
}

unsigned int iov_copy(struct iovec *dst_iov, unsigned int dst_iov_cnt,
                      const struct iovec *src_iov, unsigned int src_iov_cnt,
                      size_t offset, size_t bytes)
{
    unsigned int j = 0;

    for (unsigned int i = 0; i < src_iov_cnt && bytes && j < dst_iov_cnt;
         i++) {
        size_t len;

        if (offset >= src_iov[i].iov_len) {
            offset -= src_iov[i].iov_len;
            continue;
        }
        len = MIN(src_iov[i].iov_len - offset, bytes);
        dst_iov[j].iov_base = (char *)src_iov[i].iov_base + offset;
        dst_iov[j].iov_len = len;
        j++;
        bytes -= len;
        offset = 0;
    }
    return j;
}

/* ---- QEMUIOVector -------------------------------------------------------- */

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint)
{
    if (alloc_hint < 1) {
        alloc_hint = 1;
    }
    qiov->iov = g_new(struct iovec, alloc_hint);
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->size = 0;
    memset(&qiov->local_iov, 0, sizeof(qiov->local_iov));
}

void qemu_iovec_init_buf(QEMUIOVector *qiov, void *buf, size_t len)
{
    *qiov = (QEMUIOVector) QEMU_IOVEC_INIT_BUF(*qiov, buf, len);
}

void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov)
{
    qiov->iov = iov;
    qiov->niov = niov;
    qiov->nalloc = -1;
    qiov->size = iov_size(iov, niov);
    memset(&qiov->local_iov, 0, sizeof(qiov->local_iov));
}

void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len)
{
    assert(qiov->nalloc != -1);

    if (qiov->niov == qiov->nalloc) {
        qiov->nalloc = 2 * qiov->nalloc + 1;
        qiov->iov = g_renew(struct iovec, qiov->iov, qiov->nalloc);
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->size += len;
    qiov->niov++;
}

void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t bytes)
{
    assert(soffset <= src->size && bytes <= src->size - soffset);

    for (int i = 0; i < src->niov && bytes; i++) {
        size_t len;

        if (soffset >= src->iov[i].iov_len) {
            soffset -= src->iov[i].iov_len;
            continue;
        }
        len = MIN(src->iov[i].iov_len - soffset, bytes);
        qemu_iovec_add(dst, (char *)src->iov[i].iov_base + soffset, len);
        bytes -= len;
        soffset = 0;
    }
    assert(bytes == 0);
}

void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len)
{
    assert(offset <= source->size && len <= source->size - offset);

    qemu_iovec_init(qiov, MIN(source->niov, 16));
    qemu_iovec_concat(qiov, source, offset, len);
}

void qemu_iovec_reset(QEMUIOVector *qiov)
{
    assert(qiov->nalloc != -1);

    qiov->niov = 0;
    qiov->size = 0;
}

void qemu_iovec_destroy(QEMUIOVector *qiov)
{
    if (qiov->nalloc != -1) {
        g_free(qiov->iov);
    }
    memset(qiov, 0, sizeof(*qiov));
}

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes)
{
    return iov_to_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes)
{
    return iov_from_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes)
{
    return iov_memset(qiov->iov, qiov->niov, offset, fillc, bytes);
}

bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t offset, size_t bytes)
{
    assert(offset <= qiov->size && bytes <= qiov->size - offset);

    return iov_walk(qiov->iov, qiov->niov, offset, bytes, piece_is_zero,
                    NULL) == bytes;
}

ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b)
{
    size_t total = MIN(a->size, b->size);
    size_t pos = 0;
    int ia = 0, ib = 0;
    size_t oa = 0, ob = 0;     /* offsets inside a->iov[ia], b->iov[ib] */

    while (pos < total) {
        const unsigned char *pa, *pb;
        size_t len;

        /* Skip exhausted (or empty) entries. */
        if (oa == a->iov[ia].iov_len) {
            ia++;
            oa = 0;
            continue;
        }
        if (ob == b->iov[ib].iov_len) {
            ib++;
            ob = 0;
            continue;
        }
        pa = (const unsigned char *)a->iov[ia].iov_base + oa;
        pb = (const unsigned char *)b->iov[ib].iov_base + ob;
        len = MIN(a->iov[ia].iov_len - oa, b->iov[ib].iov_len - ob);
        len = MIN(len, total - pos);
        if (memcmp(pa, pb, len) != 0) {
            for (size_t i = 0; i < len; i++) {
                if (pa[i] != pb[i]) {
                    return pos + i;
                }
            }
        }
        pos += len;
        oa += len;
        ob += len;
    }
    return -1;
}
