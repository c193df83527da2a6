/*
 * Character devices for the monitor: the subset of QEMU's -chardev that
 * qemu-storage-daemon users put in front of a QMP monitor.
 *
 *   --chardev socket,id=ID,path=PATH,server=on,wait=off
 *   --chardev socket,id=ID,host=HOST,port=PORT,server=on,wait=off
 *
 * A socket chardev is a listening socket that serves ONE client at a
 * time, as QEMU's does: while a client is connected the listening socket
 * is not polled, so further connections wait in the kernel's backlog
 * until the current client disconnects.  Unix sockets are created with
 * mode 0600 and unlinked when the chardev is closed.  Client mode
 * (server=off) and server=on,wait=on (block until a client connects)
 * are not supported and rejected with a clear message.
 */
#ifndef MONITOR_CHARDEV_H
#define MONITOR_CHARDEV_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <jansson.h>

#ifndef QAPI_JSON_AUTOPTR_DEFINED
#define QAPI_JSON_AUTOPTR_DEFINED
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)
#endif

typedef struct Chardev Chardev;

/*
 * A client connected: @fd (non-blocking) now belongs to the frontend,
 * which must call qemu_chr_client_closed() once it has closed it.
 */
typedef void ChardevConnectFunc(void *opaque, int fd);

/* Create a chardev from parsed options (keyval tree, implied "backend"). */
Chardev *qemu_chr_new_from_opts(json_t *opts, Error **errp);
/* Parse "socket,id=...,path=..." and create the chardev. */
Chardev *qemu_chr_new_from_str(const char *optarg, Error **errp);

Chardev *qemu_chr_find(const char *id);
const char *qemu_chr_get_id(Chardev *chr);
/* The bound address ("unix:PATH" or "tcp:HOST:PORT"; port resolved). */
const char *qemu_chr_get_address(Chardev *chr);
/* For TCP chardevs, the bound port (useful with port=0). */
int qemu_chr_get_port(Chardev *chr);

/*
 * Attach the (single) frontend; fails with "Device '%s' is in use" if one
 * is attached already.  Accepting starts now.
 */
bool qemu_chr_set_frontend(Chardev *chr, ChardevConnectFunc *connect,
                           void *opaque, Error **errp);
/* The frontend closed its client's fd: accept the next connection. */
void qemu_chr_client_closed(Chardev *chr);

/* Close one chardev (listening socket closed, unix path unlinked). */
void qemu_chr_delete(Chardev *chr);
/* Close all chardevs (at exit). */
void qemu_chr_cleanup(void);

#endif /* MONITOR_CHARDEV_H */
