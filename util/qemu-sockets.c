/*
 * Listening and connecting sockets for the QAPI SocketAddress types.
 * See include/qemu/sockets.h for the contract.
 */
#include "qemu/osdep.h"
#include "qemu/sockets.h"
#include "qemu/cutils.h"
#include "qemu/trace.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int qemu_socket_set_nonblock(int fd)
{
    int f = fcntl(fd, F_GETFL);

    if (f < 0 || fcntl(fd, F_SETFL, f | O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

int qemu_socket_set_block(int fd)
{
    int f = fcntl(fd, F_GETFL);

    if (f < 0 || fcntl(fd, F_SETFL, f & ~O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

/* ---- addresses ---- */

static InetSocketAddress *inet_copy(const InetSocketAddress *in)
{
    InetSocketAddress *out = g_new0(InetSocketAddress, 1);

    *out = *in;
    out->host = g_strdup(in->host);
    out->port = g_strdup(in->port);
    return out;
}

static void socket_address_copy_into(SocketAddress *dst,
                                     SocketAddressType type,
                                     const InetSocketAddress *inet,
                                     const UnixSocketAddress *un,
                                     const VsockSocketAddress *vsock,
                                     const FdSocketAddress *fd)
{
    dst->type = type;
    switch (type) {
    case SOCKET_ADDRESS_TYPE_INET: {
        InetSocketAddress *c = inet_copy(inet);
        dst->u.inet = *c;
        g_free(c);
        break;
    }
    case SOCKET_ADDRESS_TYPE_UNIX:
        dst->u.q_unix = *un;
        dst->u.q_unix.path = g_strdup(un->path);
        break;
    case SOCKET_ADDRESS_TYPE_VSOCK:
        dst->u.vsock.cid = g_strdup(vsock->cid);
        dst->u.vsock.port = g_strdup(vsock->port);
        break;
    case SOCKET_ADDRESS_TYPE_FD:
        dst->u.fd.str = g_strdup(fd->str);
        break;
    default:
        g_assert_not_reached();
    }
}

SocketAddress *socket_address_flatten(SocketAddressLegacy *addr)
{
    SocketAddress *sa = g_new0(SocketAddress, 1);

    socket_address_copy_into(sa, addr->type,
                             addr->type == SOCKET_ADDRESS_TYPE_INET ?
                             addr->u.inet.data : NULL,
                             addr->type == SOCKET_ADDRESS_TYPE_UNIX ?
                             addr->u.q_unix.data : NULL,
                             addr->type == SOCKET_ADDRESS_TYPE_VSOCK ?
                             addr->u.vsock.data : NULL,
                             addr->type == SOCKET_ADDRESS_TYPE_FD ?
                             addr->u.fd.data : NULL);
    return sa;
}

SocketAddress *socket_address_copy(const SocketAddress *addr)
{
    SocketAddress *sa = g_new0(SocketAddress, 1);

    socket_address_copy_into(sa, addr->type, &addr->u.inet,
                             &addr->u.q_unix, &addr->u.vsock, &addr->u.fd);
    return sa;
}

char *socket_address_to_string(const SocketAddress *addr)
{
    switch (addr->type) {
    case SOCKET_ADDRESS_TYPE_INET:
        if (strchr(addr->u.inet.host, ':')) {
            return g_strdup_printf("inet:[%s]:%s", addr->u.inet.host,
                                   addr->u.inet.port);
        }
        return g_strdup_printf("inet:%s:%s", addr->u.inet.host,
                               addr->u.inet.port);
    case SOCKET_ADDRESS_TYPE_UNIX:
        return g_strdup_printf("unix:%s", addr->u.q_unix.path);
    case SOCKET_ADDRESS_TYPE_VSOCK:
        return g_strdup_printf("vsock:%s:%s", addr->u.vsock.cid,
                               addr->u.vsock.port);
    case SOCKET_ADDRESS_TYPE_FD:
        return g_strdup_printf("fd:%s", addr->u.fd.str);
    default:
        g_assert_not_reached();
    }
}

int socket_get_fd(const char *fdstr, Error **errp)
{
    int fd;
    int type;
    socklen_t len = sizeof(type);

    if (qemu_strtoi(fdstr, NULL, 10, &fd) < 0 || fd < 0) {
        error_setg(errp, "File descriptor named '%s' has not been found",
                   fdstr);
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        error_setg_errno(errp, errno, "File descriptor '%s' is not a socket",
                         fdstr);
        return -1;
    }
    return fd;
}

int socket_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    errno = EAFNOSUPPORT;
    return -1;
}

/* ---- unix ---- */

static bool unix_fill_addr(UnixSocketAddress *saddr, struct sockaddr_un *un,
                           socklen_t *len, Error **errp)
{
    size_t pathlen = strlen(saddr->path);
    bool abstract = saddr->has_abstract && saddr->abstract;
    bool tight = !saddr->has_tight || saddr->tight;

    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    if (pathlen == 0 && !abstract) {
        error_setg(errp, "UNIX socket path must not be empty");
        return false;
    }
    if (pathlen + (abstract ? 1 : 0) > sizeof(un->sun_path) - 1) {
        error_setg(errp, "UNIX socket path '%s' is too long", saddr->path);
        error_append_hint(errp, "Path must be less than %zu bytes\n",
                          sizeof(un->sun_path) - (abstract ? 1 : 0));
        return false;
    }
    if (abstract) {
        memcpy(un->sun_path + 1, saddr->path, pathlen);
        *len = tight ? offsetof(struct sockaddr_un, sun_path) + 1 + pathlen
                     : sizeof(*un);
    } else {
        memcpy(un->sun_path, saddr->path, pathlen);
        *len = sizeof(*un);
    }
    return true;
}

static int unix_listen(UnixSocketAddress *saddr, int num, Error **errp)
{
    struct sockaddr_un un;
    socklen_t len;
    bool abstract = saddr->has_abstract && saddr->abstract;
    int fd;

    if (!unix_fill_addr(saddr, &un, &len, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create Unix socket");
        return -1;
    }
    if (!abstract && unlink(saddr->path) < 0 && errno != ENOENT) {
        error_setg_errno(errp, errno, "Failed to unlink socket %s",
                         saddr->path);
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&un, len) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s",
                         saddr->path);
        goto fail;
    }
    /* Nobody can connect before listen(): tighten the mode first */
    if (!abstract && chmod(saddr->path, 0600) < 0) {
        error_setg_errno(errp, errno, "Failed to set mode of socket %s",
                         saddr->path);
        unlink(saddr->path);
        goto fail;
    }
    if (listen(fd, num) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on socket");
        if (!abstract) {
            unlink(saddr->path);
        }
        goto fail;
    }
    trace(socket_listen_unix, "fd %d path %s", fd, saddr->path);
    return fd;

fail:
    close(fd);
    return -1;
}

static int unix_connect(UnixSocketAddress *saddr, Error **errp)
{
    struct sockaddr_un un;
    socklen_t len;
    int fd;

    if (!unix_fill_addr(saddr, &un, &len, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    while (connect(fd, (struct sockaddr *)&un, len) < 0) {
        if (errno != EINTR) {
            error_setg_errno(errp, errno, "Failed to connect to '%s'",
                             saddr->path);
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* ---- inet ---- */

static int inet_ai_family(InetSocketAddress *saddr, Error **errp)
{
    bool v4 = saddr->has_ipv4 && saddr->ipv4;
    bool v6 = saddr->has_ipv6 && saddr->ipv6;
    bool no4 = saddr->has_ipv4 && !saddr->ipv4;
    bool no6 = saddr->has_ipv6 && !saddr->ipv6;

    if ((v4 && no4) || (no4 && no6)) {
        error_setg(errp, "Cannot disable IPv4 and IPv6 at the same time");
        return -1;
    }
    if ((v4 && !v6) || no6) {
        return AF_INET;
    }
    if ((v6 && !v4) || no4) {
        return AF_INET6;
    }
    return AF_UNSPEC;
}

static struct addrinfo *inet_resolve(InetSocketAddress *saddr, bool passive,
                                     const char *port, Error **errp)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    const char *host = saddr->host;
    int family = inet_ai_family(saddr, errp);
    int rc;

    if (family < 0) {
        return NULL;
    }
    hints.ai_family = family;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_ADDRCONFIG;
    if (saddr->has_numeric && saddr->numeric) {
        hints.ai_flags |= AI_NUMERICHOST;
    }
    if (host && !*host) {
        host = NULL;
    }
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_BADFLAGS || (rc != 0 && (hints.ai_flags & AI_ADDRCONFIG))) {
        /* AI_ADDRCONFIG hides loopback-only setups: retry without it */
        hints.ai_flags &= ~AI_ADDRCONFIG;
        rc = getaddrinfo(host, port, &hints, &res);
    }
    if (rc != 0) {
        error_setg(errp, "address resolution failed for %s:%s: %s",
                   saddr->host, port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

static int inet_listen_one(struct addrinfo *ai, InetSocketAddress *saddr,
                           int num, int *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, ai->ai_protocol);
    int on = 1;

    if (fd < 0) {
        *err = errno;
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ai->ai_family == AF_INET6) {
        int v6only = saddr->has_ipv4 && !saddr->ipv4;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, num) < 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static int inet_listen(InetSocketAddress *saddr, int num, Error **errp)
{
    unsigned long port_min, port_max, p;
    int err = 0;

    if (qemu_strtoul(saddr->port, NULL, 10, &port_min) < 0 ||
        port_min > 65535) {
        /* A service name: resolve it as is, no range */
        struct addrinfo *res = inet_resolve(saddr, true, saddr->port, errp);
        struct addrinfo *ai;

        if (!res) {
            return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
            int fd = inet_listen_one(ai, saddr, num, &err);
            if (fd >= 0) {
                freeaddrinfo(res);
                return fd;
            }
        }
        freeaddrinfo(res);
        error_setg_errno(errp, err, "Failed to bind socket");
        return -1;
    }
    port_max = saddr->has_to ? saddr->to : port_min;
    if (port_max < port_min) {
        port_max = port_min;
    }
    for (p = port_min; p <= port_max; p++) {
        g_autofree char *port = g_strdup_printf("%lu", p);
        struct addrinfo *res = inet_resolve(saddr, true, port, errp);
        struct addrinfo *ai;

        if (!res) {
            return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
            int fd = inet_listen_one(ai, saddr, num, &err);
            if (fd >= 0) {
                freeaddrinfo(res);
                trace(socket_listen_inet, "fd %d host %s port %lu", fd,
                      saddr->host, p);
                return fd;
            }
        }
        freeaddrinfo(res);
        if (err != EADDRINUSE) {
            break;
        }
    }
    error_setg_errno(errp, err, "Failed to bind socket");
    return -1;
}

static int inet_connect(InetSocketAddress *saddr, Error **errp)
{
    struct addrinfo *res = inet_resolve(saddr, false, saddr->port, errp);
    struct addrinfo *ai;
    int err = 0;

    if (!res) {
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                        ai->ai_protocol);
        int rc;

        if (fd < 0) {
            err = errno;
            continue;
        }
        do {
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            int on = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
            if (saddr->has_keep_alive && saddr->keep_alive) {
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
            }
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    error_setg_errno(errp, err, "Failed to connect to '%s:%s'", saddr->host,
                     saddr->port);
    return -1;
}

/* ---- entry points ---- */

int socket_listen(SocketAddress *addr, int num, Error **errp)
{
    int fd;

    switch (addr->type) {
    case SOCKET_ADDRESS_TYPE_INET:
        return inet_listen(&addr->u.inet, num, errp);
    case SOCKET_ADDRESS_TYPE_UNIX:
        return unix_listen(&addr->u.q_unix, num, errp);
    case SOCKET_ADDRESS_TYPE_FD:
        fd = socket_get_fd(addr->u.fd.str, errp);
        if (fd < 0) {
            return -1;
        }
        if (listen(fd, num) < 0) {
            error_setg_errno(errp, errno, "Failed to listen on fd socket");
            return -1;
        }
        qemu_socket_set_nonblock(fd);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    case SOCKET_ADDRESS_TYPE_VSOCK:
    default:
        error_setg(errp, "socket family '%s' is not supported",
                   SocketAddressType_str(addr->type));
        return -1;
    }
}

void socket_listen_cleanup(int fd, SocketAddress *addr)
{
    if (fd < 0) {
        return;
    }
    if (addr->type == SOCKET_ADDRESS_TYPE_UNIX &&
        !(addr->u.q_unix.has_abstract && addr->u.q_unix.abstract)) {
        struct stat st;

        /* Leave alone whatever replaced the socket file meanwhile */
        if (stat(addr->u.q_unix.path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(addr->u.q_unix.path);
        }
    }
    close(fd);
}

int socket_connect(SocketAddress *addr, Error **errp)
{
    int fd;

    switch (addr->type) {
    case SOCKET_ADDRESS_TYPE_INET:
        return inet_connect(&addr->u.inet, errp);
    case SOCKET_ADDRESS_TYPE_UNIX:
        return unix_connect(&addr->u.q_unix, errp);
    case SOCKET_ADDRESS_TYPE_FD:
        fd = socket_get_fd(addr->u.fd.str, errp);
        if (fd >= 0) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        return fd;
    case SOCKET_ADDRESS_TYPE_VSOCK:
    default:
        error_setg(errp, "socket family '%s' is not supported",
                   SocketAddressType_str(addr->type));
        return -1;
    }
}
