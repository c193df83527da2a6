/*
 * qcow2 compressed clusters: raw deflate streams (no zlib header), as
 * QEMU writes them with a 4 KiB window (windowBits -12).  Decompression
 * accepts any window size and stops once the cluster is complete, since
 * the stored length is rounded up to whole sectors and may include
 * trailing bytes of the next compressed cluster.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"
#include <zlib.h>

ssize_t qcow2_compress(void *dst, size_t dst_size, const void *src,
                       size_t src_size)
{
    z_stream strm = { 0 };
    ssize_t ret;

    if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return -EIO;
    }
    strm.next_in = (Bytef *)src;
    strm.avail_in = src_size;
    strm.next_out = dst;
    strm.avail_out = dst_size;
    ret = deflate(&strm, Z_FINISH);
    if (ret == Z_STREAM_END) {
        ret = dst_size - strm.avail_out;
    } else if (ret == Z_OK || ret == Z_BUF_ERROR) {
        /* did not fit: not worth compressing */
        ret = -ENOSPC;
    } else {
        ret = -EIO;
    }
    deflateEnd(&strm);
    return ret;
}

int qcow2_decompress(void *dst, size_t dst_size, const void *src,
                     size_t src_size)
{
    z_stream strm = { 0 };
    int ret;

    if (inflateInit2(&strm, -15) != Z_OK) {
        return -EIO;
    }
    strm.next_in = (Bytef *)src;
    strm.avail_in = src_size;
    strm.next_out = dst;
    strm.avail_out = dst_size;
    ret = inflate(&strm, Z_FINISH);
    if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && strm.avail_out == 0) {
        ret = 0;
    } else {
        ret = -EIO;
    }
    inflateEnd(&strm);
    return ret;
}
