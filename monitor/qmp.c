/*
 * QMP monitors: connections, greeting, negotiation, dispatch, events.
 *
 * Life of a client: the chardev accepts a connection and hands us the fd
 * (monitor_qmp_connect); we send the greeting and poll the fd.  Bytes
 * read go through the client's JsonStream, which emits complete messages
 * (or parse errors) into the client's request queue.  monitor_run_queue()
 * then executes queued requests one at a time across all clients.
 *
 * Ordering and re-entrancy: a handler may run nested aio_poll() loops
 * (synchronous block I/O in blockdev-add, flushes...).  Our fd handlers
 * may then run inside the handler; they only read and queue.  The global
 * `dispatching` flag makes monitor_run_queue() a no-op while a request is
 * executing, and the outermost loop picks the queued requests up after
 * the handler returns, so requests never run nested or out of order.
 *
 * Start-up: the daemon creates monitors while it processes its command
 * line, in order, and later options (--blockdev of a qcow2...) may poll
 * the event loop.  It holds dispatch meanwhile (monitor_hold_dispatch), as
 * QEMU runs no monitor command before its main loop: a client that
 * connects early gets its greeting, but its commands wait until start-up
 * is complete (monitor_release_dispatch).
 *
 * Memory: a client is reference counted.  The fd handler and a running
 * request each hold a reference, so a client that hangs up mid-command is
 * closed at once (fd closed, queue dropped, chardev accepting again) but
 * freed only when the command returns.
 *
 * Output is buffered per client and written without blocking; a client
 * that does not read its responses makes its own buffer grow, nobody
 * else waits.  Write errors (EPIPE) close the client.
 */
#include "qemu/osdep.h"
#include "monitor/monitor.h"
#include "monitor/json-stream.h"
#include "qapi/qmp-event.h"
#include "qemu/keyval.h"
#include "qemu/trace.h"
#include "block/aio.h"
#include "config-host.h"
#include <sys/socket.h>

struct MonitorQMP {
    Chardev *chr;           /* NULL for monitor_new_qmp_fd() */
    bool pretty;
    QmpClient *client;      /* the connected client, if any */
};

typedef struct QmpRequest {
    json_t *req;            /* parsed message, or NULL */
    Error *err;             /* or the parse error */
} QmpRequest;

struct QmpClient {
    MonitorQMP *mon;
    int fd;
    int refcnt;
    bool closed;
    bool negotiated;
    bool reading;           /* read handler installed */
    JsonStream *js;
    GQueue requests;        /* QmpRequest * */
    GString *outbuf;
};

static QmpCommandList *qmp_cmds;
static GList *monitors;             /* MonitorQMP * */
static GList *clients;              /* QmpClient *, open ones */
static bool dispatching;
/* > 0 while the daemon is starting up: requests are read and queued only. */
static unsigned dispatch_hold;
static QmpClient *cur_client;
static void (*shutdown_fn)(void *opaque);
static void *shutdown_opaque;

static void client_update_handlers(QmpClient *c);
static void monitor_run_queue(void);

/* ---- reference counting and teardown ---- */

static void client_ref(QmpClient *c)
{
    c->refcnt++;
}

static void request_free(QmpRequest *r)
{
    json_decref(r->req);
    error_free(r->err);
    g_free(r);
}

static void client_unref(QmpClient *c)
{
    assert(c->refcnt > 0);
    if (--c->refcnt) {
        return;
    }
    assert(c->closed);
    json_stream_free(c->js);
    g_queue_clear_full(&c->requests, (GDestroyNotify)request_free);
    g_string_free(c->outbuf, true);
    g_free(c);
}

static void client_close(QmpClient *c)
{
    if (c->closed) {
        return;
    }
    trace(monitor_qmp_client_close, "client %p fd %d", c, c->fd);
    c->closed = true;
    aio_set_fd_handler(qemu_get_aio_context(), c->fd, NULL, NULL, NULL);
    close(c->fd);
    c->fd = -1;
    g_queue_clear_full(&c->requests, (GDestroyNotify)request_free);
    g_string_truncate(c->outbuf, 0);
    clients = g_list_remove(clients, c);
    if (c->mon->client == c) {
        c->mon->client = NULL;
        if (c->mon->chr) {
            qemu_chr_client_closed(c->mon->chr);
        }
    }
    client_unref(c);        /* the connection's reference */
}

/* ---- output ---- */

static void client_write_ready(void *opaque);

static void client_flush(QmpClient *c)
{
    while (!c->closed && c->outbuf->len) {
        ssize_t n = send(c->fd, c->outbuf->str, c->outbuf->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            client_close(c);
            return;
        }
        g_string_erase(c->outbuf, 0, n);
    }
    if (!c->closed) {
        client_update_handlers(c);
    }
}

static void client_write_ready(void *opaque)
{
    QmpClient *c = opaque;

    client_ref(c);
    client_flush(c);
    client_unref(c);
}

static void client_send(QmpClient *c, json_t *msg)
{
    g_autofree char *text = NULL;

    if (c->closed) {
        return;
    }
    if (c->mon->pretty) {
        char *p;

        text = json_dumps(msg, JSON_INDENT(4) | JSON_ENSURE_ASCII |
                          JSON_ENCODE_ANY);
        for (p = text; *p; p++) {
            if (*p == '\n') {
                g_string_append(c->outbuf, "\r\n");
            } else {
                g_string_append_c(c->outbuf, *p);
            }
        }
    } else {
        text = json_dumps(msg, JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        g_string_append(c->outbuf, text);
    }
    g_string_append(c->outbuf, "\r\n");
    client_flush(c);
}

/* ---- input ---- */

static void client_read_ready(void *opaque);

static void client_update_handlers(QmpClient *c)
{
    c->reading = g_queue_get_length(&c->requests) < QMP_REQ_QUEUE_LEN_MAX;
    aio_set_fd_handler(qemu_get_aio_context(), c->fd,
                       c->reading ? client_read_ready : NULL,
                       c->outbuf->len ? client_write_ready : NULL, c);
}

static void client_json_emit(void *opaque, json_t *value, Error *err)
{
    QmpClient *c = opaque;
    QmpRequest *r = g_new0(QmpRequest, 1);

    r->req = value;
    r->err = err;
    g_queue_push_tail(&c->requests, r);
}

static void client_read_ready(void *opaque)
{
    QmpClient *c = opaque;
    char buf[4096];
    ssize_t n;

    n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN ||
                  errno == EWOULDBLOCK)) {
        return;
    }
    client_ref(c);
    if (n <= 0) {
        /* EOF or error: anything queued dies with the connection */
        client_close(c);
    } else {
        json_stream_feed(c->js, buf, n);
        client_update_handlers(c);
        monitor_run_queue();
    }
    client_unref(c);
}

/* ---- dispatch ---- */

static void client_handle(QmpClient *c, QmpRequest *r)
{
    g_autoptr(json_t) resp = NULL;

    if (r->err) {
        resp = qmp_error_response(r->err);
        r->err = NULL;
    } else {
        const char *exec = NULL;

        if (json_is_object(r->req)) {
            exec = json_string_value(json_object_get(r->req, "execute"));
        }
        trace(monitor_qmp_cmd_in_band, "client %p execute %s", c,
              exec ? exec : "(none)");
        cur_client = c;
        resp = qmp_dispatch(qmp_cmds, r->req, c->negotiated);
        cur_client = NULL;
        if (!c->negotiated && exec && !strcmp(exec, "qmp_capabilities") &&
            resp && json_object_get(resp, "return")) {
            c->negotiated = true;
        }
    }
    if (resp) {
        client_send(c, resp);
    }
}

static QmpClient *next_client_with_request(void)
{
    GList *l;

    for (l = clients; l; l = l->next) {
        QmpClient *c = l->data;

        if (!g_queue_is_empty(&c->requests)) {
            return c;
        }
    }
    return NULL;
}

static void monitor_run_queue(void)
{
    QmpClient *c;

    if (dispatching || dispatch_hold) {
        return;     /* the outer invocation (or the release) gets to it */
    }
    dispatching = true;
    while ((c = next_client_with_request())) {
        QmpRequest *r = g_queue_pop_head(&c->requests);

        client_ref(c);
        client_handle(c, r);
        request_free(r);
        if (!c->closed) {
            client_update_handlers(c);
        }
        client_unref(c);
        /* round robin: the next client with work goes first */
        if (!c->closed && g_list_find(clients, c)) {
            clients = g_list_remove(clients, c);
            clients = g_list_append(clients, c);
        }
    }
    dispatching = false;
}

void monitor_hold_dispatch(void)
{
    dispatch_hold++;
}

void monitor_release_dispatch(void)
{
    GList *l;

    assert(dispatch_hold > 0);
    if (--dispatch_hold) {
        return;
    }
    /* a client over its queue limit stopped being read: resume it */
    for (l = clients; l; l = l->next) {
        client_update_handlers(l->data);
    }
    monitor_run_queue();
}

QmpClient *monitor_cur_client(void)
{
    return cur_client;
}

bool monitor_client_cap_offered(QmpClient *client, const char *cap)
{
    /* blockd offers no capability: out-of-band execution is not there */
    return false;
}

/* ---- events ---- */

static void monitor_emit_event(const char *name, json_t *event)
{
    GList *l, *next;

    trace(monitor_qmp_event, "event %s", name);
    for (l = clients; l; l = next) {
        QmpClient *c = l->data;

        next = l->next;     /* client_send may close c on EPIPE */
        if (c->negotiated) {
            client_send(c, event);
        }
    }
}

/* ---- monitors ---- */

json_t *monitor_version_json(void)
{
    int64_t v[3] = { 0, 0, 0 };
    g_auto(GStrv) parts = g_strsplit(BLOCKD_VERSION, ".", 3);
    int i;

    for (i = 0; i < 3 && parts[i]; i++) {
        v[i] = g_ascii_strtoll(parts[i], NULL, 10);
    }
    return json_pack("{s:{s:I, s:I, s:I}, s:s}", "qemu",
                     "major", (json_int_t)v[0], "minor", (json_int_t)v[1],
                     "micro", (json_int_t)v[2], "package", "");
}

static void monitor_qmp_connect(void *opaque, int fd)
{
    MonitorQMP *mon = opaque;
    QmpClient *c = g_new0(QmpClient, 1);
    g_autoptr(json_t) greeting = NULL;

    c->mon = mon;
    c->fd = fd;
    c->refcnt = 1;
    c->js = json_stream_new(client_json_emit, c);
    g_queue_init(&c->requests);
    c->outbuf = g_string_new(NULL);
    mon->client = c;
    clients = g_list_append(clients, c);
    trace(monitor_qmp_client_new, "client %p fd %d", c, fd);

    greeting = json_pack("{s:{s:o, s:[]}}", "QMP",
                         "version", monitor_version_json(),
                         "capabilities");
    client_send(c, greeting);
    if (!c->closed) {
        client_update_handlers(c);
    }
}

void monitor_init_qmp(QmpCommandList *cmds)
{
    qmp_cmds = cmds;
    qapi_event_set_emitter(monitor_emit_event);
}

const QmpCommandList *monitor_qmp_commands(void)
{
    return qmp_cmds;
}

static MonitorQMP *monitor_alloc(Chardev *chr, bool pretty)
{
    MonitorQMP *mon = g_new0(MonitorQMP, 1);

    mon->chr = chr;
    mon->pretty = pretty;
    monitors = g_list_append(monitors, mon);
    return mon;
}

MonitorQMP *monitor_new_qmp(Chardev *chr, bool pretty, Error **errp)
{
    MonitorQMP *mon;

    assert(qmp_cmds);
    mon = monitor_alloc(chr, pretty);
    if (!qemu_chr_set_frontend(chr, monitor_qmp_connect, mon, errp)) {
        monitors = g_list_remove(monitors, mon);
        g_free(mon);
        return NULL;
    }
    return mon;
}

MonitorQMP *monitor_new_qmp_fd(int fd, bool pretty)
{
    MonitorQMP *mon;

    assert(qmp_cmds);
    mon = monitor_alloc(NULL, pretty);
    monitor_qmp_connect(mon, fd);
    return mon;
}

bool monitor_new_from_opts(json_t *opts, Error **errp)
{
    const char *key;
    json_t *val;
    const char *chardev = NULL, *mode = "control";
    bool pretty = false;
    Chardev *chr;

    json_object_foreach(opts, key, val) {
        const char *s = json_string_value(val);

        if (!json_is_string(val) && !json_is_boolean(val)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                       key, strcmp(key, "pretty") ? "string" : "boolean");
            return false;
        }
        if (!strcmp(key, "chardev") || !strcmp(key, "mode") ||
            !strcmp(key, "id")) {
            if (!s) {
                error_setg(errp, "Invalid parameter type for '%s', "
                           "expected: string", key);
                return false;
            }
            if (!strcmp(key, "chardev")) {
                chardev = s;
            } else if (!strcmp(key, "mode")) {
                mode = s;
            }
        } else if (!strcmp(key, "pretty")) {
            if (json_is_boolean(val)) {
                pretty = json_is_true(val);
            } else if (!strcmp(s, "on")) {
                pretty = true;
            } else if (!strcmp(s, "off")) {
                pretty = false;
            } else {
                error_setg(errp, "Parameter 'pretty' expects 'on' or 'off'");
                return false;
            }
        } else {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return false;
        }
    }
    if (!chardev) {
        error_setg(errp, "Parameter 'chardev' is missing");
        return false;
    }
    if (!strcmp(mode, "readline")) {
        error_setg(errp, "Only QMP is supported");
        return false;
    }
    if (strcmp(mode, "control")) {
        error_setg(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return false;
    }
    chr = qemu_chr_find(chardev);
    if (!chr) {
        error_setg(errp, "chardev \"%s\" not found", chardev);
        return false;
    }
    return monitor_new_qmp(chr, pretty, errp) != NULL;
}

bool monitor_new_from_str(const char *optarg, Error **errp)
{
    g_autoptr(json_t) opts = keyval_or_json_parse(optarg, "chardev", errp);

    return opts && monitor_new_from_opts(opts, errp);
}

unsigned monitor_client_count(void)
{
    return g_list_length(clients);
}

void monitor_cleanup(void)
{
    assert(!dispatching);
    while (clients) {
        client_close(clients->data);
    }
    while (monitors) {
        g_free(monitors->data);
        monitors = g_list_delete_link(monitors, monitors);
    }
    qapi_event_set_emitter(NULL);
    qmp_cmds = NULL;
}

void monitor_set_shutdown_handler(void (*fn)(void *opaque), void *opaque)
{
    shutdown_fn = fn;
    shutdown_opaque = opaque;
}

void monitor_request_shutdown(void)
{
    if (shutdown_fn) {
        shutdown_fn(shutdown_opaque);
    }
}
