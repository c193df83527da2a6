/*
 * AioContext fd handlers and aio_poll() (poll(2)-based).
 *
 * Handlers live in ctx->handlers; each owns a GPollFD that is also
 * registered with the context's GSource, so the same registration serves
 * a GLib main loop and the standalone aio_poll().  Either way the poll
 * result ends up in handler->pfd.revents and aio_dispatch_handlers() calls
 * the handlers whose fd is ready (level-triggered).
 *
 * Handlers may be unregistered from any callback, including their own:
 * while the list is being walked (walking_handlers > 0, possibly by nested
 * aio_poll()s) an unregistered handler is only marked deleted and is freed
 * when the outermost walk finishes.
 *
 * aio_poll(ctx, false) makes no syscall at all when no fd handler is
 * registered and nothing notified the context; otherwise one ppoll().
 */
#include "qemu/osdep.h"
#include "util/aio-int.h"

#include <poll.h>

void aio_handlers_init(AioContext *ctx)
{
    g_queue_init(&ctx->handlers);
    ctx->pollfds = g_array_new(false, false, sizeof(struct pollfd));
}

void aio_handlers_cleanup(AioContext *ctx)
{
    AioHandler *node;

    assert(ctx->walking_handlers == 0);
    while ((node = g_queue_pop_head(&ctx->handlers))) {
        if (!node->deleted) {
            g_source_remove_poll(&ctx->source, &node->pfd);
        }
        g_free(node);
    }
    g_array_free(ctx->pollfds, true);
    ctx->pollfds = NULL;
}

static AioHandler *find_handler(AioContext *ctx, int fd)
{
    for (GList *l = ctx->handlers.head; l; l = l->next) {
        AioHandler *node = l->data;

        if (node->pfd.fd == fd && !node->deleted) {
            return node;
        }
    }
    return NULL;
}

static void handlers_sweep(AioContext *ctx)
{
    GList *l = ctx->handlers.head;

    if (ctx->walking_handlers || !ctx->handlers_deleted) {
        return;
    }
    while (l) {
        GList *next = l->next;
        AioHandler *node = l->data;

        if (node->deleted) {
            g_queue_delete_link(&ctx->handlers, l);
            g_free(node);
        }
        l = next;
    }
    ctx->handlers_deleted = false;
}

void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, void *opaque)
{
    AioHandler *node = find_handler(ctx, fd);

    if (!io_read && !io_write) {
        if (!node) {
            return;
        }
        g_source_remove_poll(&ctx->source, &node->pfd);
        node->pfd.revents = 0;
        if (ctx->walking_handlers) {
            node->deleted = true;
            ctx->handlers_deleted = true;
        } else {
            g_queue_remove(&ctx->handlers, node);
            g_free(node);
        }
    } else {
        if (!node) {
            node = g_new0(AioHandler, 1);
            node->pfd.fd = fd;
            g_queue_push_tail(&ctx->handlers, node);
            g_source_add_poll(&ctx->source, &node->pfd);
        }
        node->io_read = io_read;
        node->io_write = io_write;
        node->opaque = opaque;
        node->pfd.events = (io_read ? G_IO_IN | G_IO_HUP | G_IO_ERR : 0) |
                           (io_write ? G_IO_OUT | G_IO_ERR : 0);
    }
    aio_notify(ctx);
}

bool aio_handlers_ready(AioContext *ctx)
{
    for (GList *l = ctx->handlers.head; l; l = l->next) {
        AioHandler *node = l->data;

        if (!node->deleted && (node->pfd.revents & node->pfd.events)) {
            return true;
        }
    }
    return false;
}

bool aio_dispatch_handlers(AioContext *ctx)
{
    bool progress = false;

    ctx->walking_handlers++;
    for (GList *l = ctx->handlers.head; l; l = l->next) {
        AioHandler *node = l->data;
        int revents = node->pfd.revents & node->pfd.events;

        node->pfd.revents = 0;
        if (node->deleted || !revents) {
            continue;
        }
        if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && node->io_read) {
            node->io_read(node->opaque);
            progress = true;
        }
        if (!node->deleted && (revents & (G_IO_OUT | G_IO_ERR)) &&
            node->io_write) {
            node->io_write(node->opaque);
            progress = true;
        }
    }
    ctx->walking_handlers--;
    handlers_sweep(ctx);
    return progress;
}

/* One poll(2) over the handlers (and the notifier when blocking). */
static void aio_poll_fds(AioContext *ctx, int64_t timeout_ns, bool blocking)
{
    GArray *fds = ctx->pollfds;
    struct timespec ts, *tsp = NULL;
    struct pollfd pfd;
    unsigned i = 0;
    int ret;

    g_array_set_size(fds, 0);
    pfd.fd = ctx->notify_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    g_array_append_val(fds, pfd);
    for (GList *l = ctx->handlers.head; l; l = l->next) {
        AioHandler *node = l->data;

        if (node->deleted || !node->pfd.events) {
            continue;
        }
        pfd.fd = node->pfd.fd;
        pfd.events = node->pfd.events;
        g_array_append_val(fds, pfd);
    }
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NANOSECONDS_PER_SECOND;
        ts.tv_nsec = timeout_ns % NANOSECONDS_PER_SECOND;
        tsp = &ts;
    }
    do {
        ret = ppoll((struct pollfd *)fds->data, fds->len, tsp, NULL);
    } while (ret < 0 && errno == EINTR && !blocking);
    if (ret <= 0) {
        return;
    }

    /* Same order as above: copy the results back. */
    i = 1;
    for (GList *l = ctx->handlers.head; l; l = l->next) {
        AioHandler *node = l->data;

        if (node->deleted || !node->pfd.events) {
            continue;
        }
        node->pfd.revents = g_array_index(fds, struct pollfd, i).revents;
        i++;
    }
}

bool aio_poll(AioContext *ctx, bool blocking)
{
    AioContext *prev = aio_push_current(ctx);
    bool progress = false;

    do {
        int64_t timeout = 0;

        if (blocking) {
            __atomic_fetch_add(&ctx->notify_me, 1, __ATOMIC_SEQ_CST);
            timeout = aio_bh_pending(ctx) ? 0 : aio_timers_deadline_ns(ctx);
        }
        if (timeout != 0 || ctx->handlers.length ||
            __atomic_load_n(&ctx->notified, __ATOMIC_RELAXED)) {
            aio_poll_fds(ctx, timeout, blocking);
        }
        if (blocking) {
            __atomic_fetch_sub(&ctx->notify_me, 1, __ATOMIC_SEQ_CST);
        }
        aio_notify_accept(ctx);

        progress |= aio_bh_poll(ctx);
        progress |= aio_dispatch_handlers(ctx);
        progress |= aio_timers_run(ctx);
        /*
         * Blocking: a wake-up that had nothing behind it (a notification
         * whose work another poller already did) is not progress; wait
         * again.
         */
    } while (blocking && !progress);

    aio_pop_current(prev);
    return progress;
}
