/*
 * CoChannel: coroutine I/O on a non-blocking stream socket.
 *
 * The read/write functions loop until the whole buffer is transferred.
 * When the socket would block they register an fd handler with the
 * channel's AioContext and yield; the handler re-enters the coroutine.
 * At most one coroutine may read and one may write at a time (callers
 * serialise writers with a CoMutex).
 *
 * co_channel_shutdown() (callable from anywhere on the channel's thread,
 * including outside coroutines and from timers) stops all further I/O:
 * it shuts the socket down in both directions and wakes a blocked reader
 * and writer, whose calls then fail.  This is how a server cancels a
 * reader blocked on a silent client (handshake timeout, export removal).
 *
 * Results:
 *   co_channel_read_all_eof: 1 = done, 0 = clean EOF before the first
 *     byte, -1 = error (errp set; EOF in the middle is an error).
 *   co_channel_read_all, co_channel_write(v)_all: 0 = done, -1 = error
 *     (EOF, peer gone, I/O error, or channel shut down).
 * Writes use MSG_NOSIGNAL: a vanished peer gives EPIPE, not SIGPIPE.
 */
#ifndef QEMU_CO_CHANNEL_H
#define QEMU_CO_CHANNEL_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/aio.h"
#include "qemu/coroutine.h"

typedef struct CoChannel CoChannel;

/* Takes ownership of @fd (made non-blocking); closed by co_channel_free */
CoChannel *co_channel_new(int fd, AioContext *ctx);
/* Close the fd and free; no coroutine may be blocked on the channel. */
void co_channel_free(CoChannel *ch);
int co_channel_fd(CoChannel *ch);

int coroutine_fn co_channel_read_all_eof(CoChannel *ch, void *buf,
                                         size_t len, Error **errp);
int coroutine_fn co_channel_read_all(CoChannel *ch, void *buf, size_t len,
                                     Error **errp);
/* Read and drop @len bytes */
int coroutine_fn co_channel_skip(CoChannel *ch, uint64_t len, Error **errp);
int coroutine_fn co_channel_writev_all(CoChannel *ch,
                                       const struct iovec *iov, int niov,
                                       Error **errp);
int coroutine_fn co_channel_write_all(CoChannel *ch, const void *buf,
                                      size_t len, Error **errp);

void co_channel_shutdown(CoChannel *ch);
bool co_channel_is_shutdown(CoChannel *ch);

#endif /* QEMU_CO_CHANNEL_H */
