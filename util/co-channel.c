/*
 * CoChannel: coroutine I/O on a non-blocking stream socket.
 *
 * A blocked reader (writer) is recorded in ch->read_co (ch->write_co) and
 * the fd handler for that direction is registered; the handler clears the
 * registration and re-enters the coroutine, which retries the syscall.
 * Registration is recomputed from both fields each time, because
 * aio_set_fd_handler replaces the previous handlers of the fd.
 */
#include "qemu/osdep.h"
#include "qemu/co-channel.h"
#include "qemu/sockets.h"
#include "qemu/trace.h"

#include <sys/socket.h>
#include <sys/uio.h>

struct CoChannel {
    int fd;
    AioContext *ctx;
    Coroutine *read_co;
    Coroutine *write_co;
    bool shutdown;
};

CoChannel *co_channel_new(int fd, AioContext *ctx)
{
    CoChannel *ch = g_new0(CoChannel, 1);

    ch->fd = fd;
    ch->ctx = ctx;
    qemu_socket_set_nonblock(fd);
    return ch;
}

void co_channel_free(CoChannel *ch)
{
    if (!ch) {
        return;
    }
    assert(!ch->read_co && !ch->write_co);
    aio_set_fd_handler(ch->ctx, ch->fd, NULL, NULL, NULL);
    close(ch->fd);
    g_free(ch);
}

int co_channel_fd(CoChannel *ch)
{
    return ch->fd;
}

static void co_channel_update_handlers(CoChannel *ch);

static void co_channel_readable(void *opaque)
{
    CoChannel *ch = opaque;
    Coroutine *co = ch->read_co;

    ch->read_co = NULL;
    co_channel_update_handlers(ch);
    if (co) {
        aio_co_wake(co);
    }
}

static void co_channel_writable(void *opaque)
{
    CoChannel *ch = opaque;
    Coroutine *co = ch->write_co;

    ch->write_co = NULL;
    co_channel_update_handlers(ch);
    if (co) {
        aio_co_wake(co);
    }
}

static void co_channel_update_handlers(CoChannel *ch)
{
    aio_set_fd_handler(ch->ctx, ch->fd,
                       ch->read_co ? co_channel_readable : NULL,
                       ch->write_co ? co_channel_writable : NULL, ch);
}

static void coroutine_fn co_channel_wait(CoChannel *ch, bool write)
{
    if (write) {
        assert(!ch->write_co);
        ch->write_co = qemu_coroutine_self();
    } else {
        assert(!ch->read_co);
        ch->read_co = qemu_coroutine_self();
    }
    co_channel_update_handlers(ch);
    qemu_coroutine_yield();
}

/* 1: done, 0: EOF at the first byte, -1: error */
int coroutine_fn co_channel_read_all_eof(CoChannel *ch, void *buf,
                                         size_t len, Error **errp)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n;

        if (ch->shutdown) {
            error_setg(errp, "Channel was shut down");
            return -1;
        }
        n = recv(ch->fd, (char *)buf + done, len - done, 0);
        if (n < 0 && errno == ENOTSOCK) {
            n = read(ch->fd, (char *)buf + done, len - done);
        }
        if (n > 0) {
            done += n;
        } else if (n == 0) {
            if (done == 0 && !ch->shutdown) {
                return 0;
            }
            error_setg(errp, "Unexpected end-of-file before all data were "
                       "read");
            return -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            co_channel_wait(ch, false);
        } else if (errno != EINTR) {
            error_setg_errno(errp, errno, "Unable to read from socket");
            return -1;
        }
    }
    return 1;
}

int coroutine_fn co_channel_read_all(CoChannel *ch, void *buf, size_t len,
                                     Error **errp)
{
    int ret = co_channel_read_all_eof(ch, buf, len, errp);

    if (ret == 0) {
        error_setg(errp, "Unexpected end-of-file before all data were read");
    }
    return ret > 0 ? 0 : -1;
}

int coroutine_fn co_channel_skip(CoChannel *ch, uint64_t len, Error **errp)
{
    g_autofree char *buf = g_malloc(MIN(len, 64 * KiB) + 1);

    while (len) {
        size_t chunk = MIN(len, 64 * KiB);

        if (co_channel_read_all(ch, buf, chunk, errp) < 0) {
            return -1;
        }
        len -= chunk;
    }
    return 0;
}

int coroutine_fn co_channel_writev_all(CoChannel *ch,
                                       const struct iovec *iov, int niov,
                                       Error **errp)
{
    g_autofree struct iovec *local = g_memdup2(iov, sizeof(*iov) * niov);
    struct iovec *cur = local;
    int left = niov;

    while (left > 0) {
        struct msghdr msg = { .msg_iov = cur, .msg_iovlen = left };
        ssize_t n;

        if (ch->shutdown) {
            error_setg(errp, "Channel was shut down");
            return -1;
        }
        if (cur->iov_len == 0) {
            cur++;
            left--;
            continue;
        }
        n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK) {
            n = writev(ch->fd, cur, left);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                co_channel_wait(ch, true);
                continue;
            }
            if (errno == EINTR) {
                continue;
            }
            error_setg_errno(errp, errno, "Unable to write to socket");
            return -1;
        }
        while (n > 0 && left > 0) {
            if ((size_t)n >= cur->iov_len) {
                n -= cur->iov_len;
                cur++;
                left--;
            } else {
                cur->iov_base = (char *)cur->iov_base + n;
                cur->iov_len -= n;
                n = 0;
            }
        }
    }
    return 0;
}

int coroutine_fn co_channel_write_all(CoChannel *ch, const void *buf,
                                      size_t len, Error **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return co_channel_writev_all(ch, &iov, 1, errp);
}

void co_channel_shutdown(CoChannel *ch)
{
    Coroutine *r = ch->read_co;
    Coroutine *w = ch->write_co;

    if (ch->shutdown) {
        return;
    }
    trace(co_channel_shutdown, "fd %d", ch->fd);
    ch->shutdown = true;
    shutdown(ch->fd, SHUT_RDWR);
    ch->read_co = NULL;
    ch->write_co = NULL;
    co_channel_update_handlers(ch);
    /* Deferred: the caller may be about to free what the waiters use */
    if (r) {
        aio_co_schedule(ch->ctx, r);
    }
    if (w) {
        aio_co_schedule(ch->ctx, w);
    }
}

bool co_channel_is_shutdown(CoChannel *ch)
{
    return ch->shutdown;
}
