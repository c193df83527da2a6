/*
 * Scatter/gather I/O vectors.
 *
 * Two layers, as in QEMU:
 * - plain helpers on (struct iovec *, unsigned int iov_cnt) arrays:
 *   iov_size(), iov_to_buf(), iov_from_buf(), iov_memset(), iov_copy();
 * - QEMUIOVector, the request payload passed down the block layer: an
 *   iovec array plus its element count and total byte size.
 *
 * A QEMUIOVector is in one of two modes:
 * - allocated (qemu_iovec_init()): `iov` is a g_new array of `nalloc`
 *   entries that grows with qemu_iovec_add(); free with
 *   qemu_iovec_destroy();
 * - external (qemu_iovec_init_buf(), QEMU_IOVEC_INIT_BUF): one buffer
 *   described by the embedded `local_iov`, nalloc == -1, no allocation at
 *   all; qemu_iovec_destroy() is a no-op and qemu_iovec_add() is not
 *   allowed.
 * Byte offsets and lengths are size_t; an out-of-range offset is a
 * programming error (assert), not an I/O error.
 */
#ifndef QEMU_IOV_H
#define QEMU_IOV_H

#include "qemu/osdep.h"

/* Total number of bytes described by iov[0..iov_cnt). */
size_t iov_size(const struct iovec *iov, unsigned int iov_cnt);

/*
 * Copy @bytes bytes between the iovec data (starting @offset bytes in) and
 * the flat buffer @buf.  Copies less if the vector ends first; returns the
 * number of bytes copied.
 */
size_t iov_from_buf(const struct iovec *iov, unsigned int iov_cnt,
                    size_t offset, const void *buf, size_t bytes);
size_t iov_to_buf(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, void *buf, size_t bytes);
/* Fill @bytes bytes from @offset with @fillc; returns bytes filled. */
size_t iov_memset(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes);
/*
 * Describe @bytes bytes of @src_iov from @offset in @dst_iov (at most
 * @dst_iov_cnt entries; no data is copied, only iovec entries).
 * Returns the number of entries used.
 */
unsigned int iov_copy(struct iovec *dst_iov, unsigned int dst_iov_cnt,
                      const struct iovec *src_iov, unsigned int src_iov_cnt,
                      size_t offset, size_t bytes);

typedef struct QEMUIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;           /* -1: external (local_iov or caller's array) */
    size_t size;
    struct iovec local_iov;
} QEMUIOVector;

/*
 * Initializer for a single-buffer vector:
 *     QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, len);
 */
#define QEMU_IOVEC_INIT_BUF(self, buf, len)              \
{                                                        \
    .iov = &(self).local_iov,                            \
    .niov = 1,                                           \
    .nalloc = -1,                                        \
    .size = (len),                                       \
    .local_iov = {                                       \
        .iov_base = (void *)(buf), /* cast away const */ \
        .iov_len = (len),                                \
    },                                                   \
}

/* Start an empty, growable vector with room for @alloc_hint entries. */
void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);
/* Describe one buffer without allocating (external mode). */
void qemu_iovec_init_buf(QEMUIOVector *qiov, void *buf, size_t len);
/* Wrap a caller-owned iovec array (external mode; not copied). */
void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov);
/*
 * Describe @len bytes of @source starting at @offset (allocated mode; the
 * data is shared, not copied).
 */
void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len);
/* Append a buffer (allocated mode only). */
void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);
/* Append @bytes bytes of @src from @soffset (entries, not data). */
void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t bytes);
/* Drop all entries but keep the allocation. */
void qemu_iovec_reset(QEMUIOVector *qiov);
/* Free the entry array (no-op for external vectors). */
void qemu_iovec_destroy(QEMUIOVector *qiov);

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes);
size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes);
size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes);
/* True if @bytes bytes from @offset are all zero. */
bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t offset, size_t bytes);
/*
 * Compare the contents of two vectors over MIN(a->size, b->size) bytes.
 * Returns the offset of the first differing byte, or -1 if equal.
 */
ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b);

#endif /* QEMU_IOV_H */
