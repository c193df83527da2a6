/*
 * Socket chardevs (see include/monitor/chardev.h).
 *
 * Each chardev owns one listening socket.  The listening fd is polled
 * only while the chardev has a frontend and no connected client, which is
 * how QEMU's socket chardev serves one client at a time: a second client
 * can connect (the kernel completes the handshake into the backlog) but
 * is not accepted, and sees no greeting, until the first one leaves.
 */
#include "qemu/osdep.h"
#include "monitor/chardev.h"
#include "qemu/keyval.h"
#include "qemu/cutils.h"
#include "block/aio.h"
#include "qemu/trace.h"
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>

struct Chardev {
    char *id;
    char *path;         /* unix socket path, or NULL for TCP */
    char *address;
    int port;
    int listen_fd;
    bool connected;
    ChardevConnectFunc *connect;
    void *opaque;
};

static GList *chardevs;      /* Chardev *, creation order */

Chardev *qemu_chr_find(const char *id)
{
    GList *l;

    for (l = chardevs; l; l = l->next) {
        Chardev *chr = l->data;

        if (!strcmp(chr->id, id)) {
            return chr;
        }
    }
    return NULL;
}

const char *qemu_chr_get_id(Chardev *chr)
{
    return chr->id;
}

const char *qemu_chr_get_address(Chardev *chr)
{
    return chr->address;
}

int qemu_chr_get_port(Chardev *chr)
{
    return chr->port;
}

/* QemuOpts booleans: on/off, yes/no, true/false */
static bool parse_bool_opt(json_t *opts, const char *name, bool def,
                           bool *val, Error **errp)
{
    json_t *v = json_object_get(opts, name);
    const char *s;

    if (!v) {
        *val = def;
        return true;
    }
    if (json_is_boolean(v)) {
        *val = json_is_true(v);
        return true;
    }
    s = json_string_value(v);
    if (s && (!strcmp(s, "on") || !strcmp(s, "yes") ||
              !strcmp(s, "true"))) {
        *val = true;
        return true;
    }
    if (s && (!strcmp(s, "off") || !strcmp(s, "no") ||
              !strcmp(s, "false"))) {
        *val = false;
        return true;
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
    return false;
}

static const char *str_opt(json_t *opts, const char *name, Error **errp)
{
    json_t *v = json_object_get(opts, name);

    if (v && !json_is_string(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: string",
                   name);
        return NULL;
    }
    return v ? json_string_value(v) : "";
}

static void chr_accept(void *opaque);

static void chr_update_handler(Chardev *chr)
{
    bool poll = chr->connect && !chr->connected && chr->listen_fd >= 0;

    aio_set_fd_handler(qemu_get_aio_context(), chr->listen_fd,
                       poll ? chr_accept : NULL, NULL, chr);
}

static void chr_accept(void *opaque)
{
    Chardev *chr = opaque;
    int fd;

    fd = accept4(chr->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        /* EAGAIN (client went away), EMFILE...: try again later */
        return;
    }
    trace(chardev_accept, "id %s fd %d", chr->id, fd);
    chr->connected = true;
    chr_update_handler(chr);
    chr->connect(chr->opaque, fd);
}

void qemu_chr_client_closed(Chardev *chr)
{
    trace(chardev_client_closed, "id %s", chr->id);
    chr->connected = false;
    chr_update_handler(chr);
}

bool qemu_chr_set_frontend(Chardev *chr, ChardevConnectFunc *connect,
                           void *opaque, Error **errp)
{
    if (chr->connect) {
        error_setg(errp, "Device '%s' is in use", chr->id);
        return false;
    }
    chr->connect = connect;
    chr->opaque = opaque;
    chr_update_handler(chr);
    return true;
}

static int listen_unix(const char *path, Error **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    mode_t old_umask;
    int fd, ret;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create Unix socket");
        return -1;
    }
    /* a stale socket from an earlier run would make bind fail */
    {
        struct stat st;

        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(path);
        }
    }
    /* Only the owner may talk to the monitor */
    old_umask = umask(0177);
    ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old_umask);
    if (ret < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
        close(fd);
        return -1;
    }
    if (chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on socket %s", path);
        unlink(path);
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_inet(const char *host, const char *port, int *bound_port,
                       Error **errp)
{
    struct addrinfo hints = {
        .ai_flags = AI_PASSIVE | AI_ADDRCONFIG,
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    struct addrinfo *res, *ai;
    int fd = -1, err, saved_errno = 0;
    uint64_t portnum;

    if (qemu_strtou64(port, NULL, 10, &portnum) < 0 || portnum > 65535) {
        error_setg(errp, "Parameter 'port' expects a port number (0-65535)");
        return -1;
    }
    err = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (err) {
        error_setg(errp, "address resolution failed for %s:%s: %s",
                   host, port, gai_strerror(err));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, 8) == 0) {
            break;
        }
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, saved_errno, "Failed to bind socket");
        return -1;
    }
    {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        getsockname(fd, (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET6) {
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    return fd;
}

static const char *const socket_keys[] = {
    "backend", "id", "path", "host", "port", "server", "wait", NULL
};

Chardev *qemu_chr_new_from_opts(json_t *opts, Error **errp)
{
    const char *key;
    json_t *val;
    const char *backend, *id, *path, *host, *port;
    bool server, wait;
    Chardev *chr;
    int fd, bound_port = 0;

    backend = str_opt(opts, "backend", errp);
    if (!backend) {
        return NULL;
    }
    if (!*backend) {
        error_setg(errp, "chardev: \"backend\" missing");
        return NULL;
    }
    if (strcmp(backend, "socket")) {
        error_setg(errp, "'%s' is not a valid char driver name", backend);
        return NULL;
    }
    json_object_foreach(opts, key, val) {
        int i;

        for (i = 0; socket_keys[i]; i++) {
            if (!strcmp(key, socket_keys[i])) {
                break;
            }
        }
        if (!socket_keys[i]) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return NULL;
        }
    }
    id = str_opt(opts, "id", errp);
    path = id ? str_opt(opts, "path", errp) : NULL;
    host = path ? str_opt(opts, "host", errp) : NULL;
    port = host ? str_opt(opts, "port", errp) : NULL;
    if (!port) {
        return NULL;
    }
    if (!*id) {
        error_setg(errp, "chardev: no id specified");
        return NULL;
    }
    if (qemu_chr_find(id)) {
        error_setg(errp, "attempt to add duplicate property '%s' to "
                   "object (type 'container')", id);
        return NULL;
    }
    if (!parse_bool_opt(opts, "server", false, &server, errp) ||
        !parse_bool_opt(opts, "wait", true, &wait, errp)) {
        return NULL;
    }
    if (*path && (*host || *port)) {
        error_setg(errp, "chardev: socket: 'path' and 'host'/'port' are "
                   "mutually exclusive");
        return NULL;
    }
    if (!*path && !*port) {
        error_setg(errp, "chardev: socket: no local address given "
                   "(use path=PATH or host=HOST,port=PORT)");
        return NULL;
    }
    if (!server) {
        error_setg(errp, "chardev: socket: client mode (server=off) is not "
                   "supported; use server=on,wait=off");
        return NULL;
    }
    if (wait) {
        error_setg(errp, "chardev: socket: 'wait=on' is not supported; "
                   "use server=on,wait=off");
        return NULL;
    }

    if (*path) {
        fd = listen_unix(path, errp);
    } else {
        fd = listen_inet(host, port, &bound_port, errp);
    }
    if (fd < 0) {
        return NULL;
    }

    chr = g_new0(Chardev, 1);
    chr->id = g_strdup(id);
    chr->listen_fd = fd;
    if (*path) {
        chr->path = g_strdup(path);
        chr->address = g_strdup_printf("unix:%s", path);
    } else {
        chr->port = bound_port;
        chr->address = g_strdup_printf("tcp:%s:%d", host, bound_port);
    }
    chardevs = g_list_append(chardevs, chr);
    trace(chardev_new, "id %s address %s", chr->id, chr->address);
    return chr;
}

Chardev *qemu_chr_new_from_str(const char *optarg, Error **errp)
{
    g_autoptr(json_t) opts = keyval_parse(optarg, "backend", NULL, errp);

    if (!opts) {
        return NULL;
    }
    return qemu_chr_new_from_opts(opts, errp);
}

void qemu_chr_delete(Chardev *chr)
{
    chardevs = g_list_remove(chardevs, chr);
    if (chr->listen_fd >= 0) {
        aio_set_fd_handler(qemu_get_aio_context(), chr->listen_fd,
                           NULL, NULL, NULL);
        close(chr->listen_fd);
    }
    if (chr->path) {
        unlink(chr->path);
    }
    g_free(chr->id);
    g_free(chr->path);
    g_free(chr->address);
    g_free(chr);
}

void qemu_chr_cleanup(void)
{
    while (chardevs) {
        qemu_chr_delete(chardevs->data);
    }
}
