/*
 * Listening and connecting sockets for the QAPI SocketAddress types.
 *
 * socket_listen() and socket_connect() take the flat SocketAddress
 * (unix, inet, fd; vsock is refused).  Every descriptor returned is
 * close-on-exec.  Listening sockets are non-blocking (they are polled by
 * the event loop); connected sockets are blocking (callers that poll them
 * call qemu_socket_set_nonblock()).
 *
 * Unix sockets: an existing file at the path is unlinked before bind (as
 * QEMU does, so a stale socket of a crashed daemon does not block a
 * restart), the socket file is made mode 0600, and
 * socket_listen_cleanup() unlinks it again when the listener is closed.
 * Abstract sockets (@abstract) have no file; @tight (default true) uses
 * only the bytes of the name in the address.
 *
 * Inet sockets: SO_REUSEADDR; every address getaddrinfo() returns is tried
 * in turn (IPv4 and IPv6, restricted by @ipv4/@ipv6), and each port from
 * @port up to @to when the port is busy.  An IPv6 listener restricted to
 * IPv6 sets IPV6_V6ONLY.
 */
#ifndef QEMU_SOCKETS_H
#define QEMU_SOCKETS_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi-types.h"

/* Listen on @addr with a backlog of @num; returns the fd or -1. */
int socket_listen(SocketAddress *addr, int num, Error **errp);
/* Close a listener made by socket_listen(@addr), unlinking a unix path. */
void socket_listen_cleanup(int fd, SocketAddress *addr);
/* Connect to @addr (blocking); returns the fd or -1. */
int socket_connect(SocketAddress *addr, Error **errp);

/* A deep copy of the flat address behind a legacy (wrapped) one. */
SocketAddress *socket_address_flatten(SocketAddressLegacy *addr);
/* A deep copy of @addr. */
SocketAddress *socket_address_copy(const SocketAddress *addr);
/* Human-readable form ("unix:/path", "inet:host:port", "fd:3"). */
char *socket_address_to_string(const SocketAddress *addr);

/* The TCP/UDP port a bound socket listens on, or -1 (errno set). */
int socket_local_port(int fd);

/* Resolve a SocketAddress fd name (a decimal fd number) to an fd. */
int socket_get_fd(const char *fdstr, Error **errp);

int qemu_socket_set_nonblock(int fd);
int qemu_socket_set_block(int fd);

#endif /* QEMU_SOCKETS_H */
