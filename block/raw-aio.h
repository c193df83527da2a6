/*
 * Asynchronous I/O backends of the file driver (file-posix.c).
 *
 * Both backends keep one instance per AioContext (we have one: the main
 * one), created on first use, whose completion eventfd is registered with
 * aio_set_fd_handler.  The coroutine that submits yields until its request
 * completes and is re-entered from the completion handler.
 *
 * io_uring: requests are queued in the submission ring and submitted in a
 * batch from a bottom half (all requests issued in one loop iteration go
 * in one io_uring_submit); short reads/writes are resubmitted for the
 * remainder, a short read at EOF is zero-filled.
 * linux-aio: io_submit per request (O_DIRECT only: buffered linux-aio
 * blocks), completions reaped with io_getevents on the eventfd.
 */
#ifndef BLOCK_RAW_AIO_H
#define BLOCK_RAW_AIO_H

#include "qemu/osdep.h"
#include "qemu/iov.h"

typedef enum RawAioType {
    RAW_AIO_READ,
    RAW_AIO_WRITE,
    RAW_AIO_FLUSH,
} RawAioType;

/* 0 or -errno (e.g. -ENOSYS/-EPERM when the kernel refuses io_uring) */
int luring_init(void);
bool luring_available(void);
/* Read/write qiov at offset of fd; returns 0 or -errno */
int coroutine_fn luring_co_submit(int fd, int64_t offset, QEMUIOVector *qiov,
                                  RawAioType type);
/* Number of io_uring submissions (batches) so far (tests) */
uint64_t luring_submit_count(void);

/*
 * The descriptor of a node of the "file" driver (file-posix.c), -1 for a
 * node of any other driver or a closed one.  For callers that move data
 * with the descriptor directly (sendfile); they must keep the node in
 * flight (bdrv_inc_in_flight) while they use it.
 */
struct BlockDriverState;
int raw_file_fd(struct BlockDriverState *bs);

int laio_init(void);
bool laio_available(void);
int coroutine_fn laio_co_submit(int fd, int64_t offset, QEMUIOVector *qiov,
                                RawAioType type);

#endif /* BLOCK_RAW_AIO_H */
