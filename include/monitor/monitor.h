/*
 * QMP monitors.
 *
 * A monitor sits on a chardev (include/monitor/chardev.h) and talks QMP
 * (docs/interop/qmp-spec.rst in QEMU) with whichever client is connected:
 *
 *   server: {"QMP": {"version": {...}, "capabilities": []}}
 *   client: {"execute": "qmp_capabilities"}        (negotiation mode)
 *   server: {"return": {}}                         (command mode now)
 *   client: {"execute": "query-version", "id": 1}
 *   server: {"return": {...}, "id": 1}
 *   server: {"timestamp": {...}, "event": "JOB_STATUS_CHANGE", ...}
 *
 * Every message the server sends is one line ending in "\r\n" ("pretty"
 * monitors indent, with "\r\n" line ends, as QEMU).  Input is a stream of
 * JSON texts split or joined arbitrarily (monitor/json-stream.c).
 *
 * Commands from all clients of all monitors run one at a time, in the
 * order each client sent them, on the main loop.  A command handler may
 * run nested event loops (synchronous block I/O); input that arrives
 * meanwhile is queued, never dispatched out of order, and a client sending
 * more than QMP_REQ_QUEUE_LEN_MAX requests ahead is no longer read until
 * its queue drains.  A client that disconnects while its command runs is
 * freed once the command returns; the response is dropped.
 *
 * Events (qapi_event_emit) go to every client, of every monitor, that has
 * completed capabilities negotiation.
 *
 * Out-of-band execution is not implemented, so the greeting advertises no
 * capabilities and qmp_capabilities refuses enable: ["oob"] the way QEMU
 * does for a capability it did not offer.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp-dispatch.h"
#include "monitor/chardev.h"
#include <jansson.h>

#ifndef QAPI_JSON_AUTOPTR_DEFINED
#define QAPI_JSON_AUTOPTR_DEFINED
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)
#endif

#define QMP_REQ_QUEUE_LEN_MAX 8

typedef struct MonitorQMP MonitorQMP;

/*
 * The command table every QMP monitor dispatches to (borrowed; must live
 * until monitor_cleanup()).  Also installs the monitor's event emitter.
 */
void monitor_init_qmp(QmpCommandList *cmds);
const QmpCommandList *monitor_qmp_commands(void);

/*
 * Hold command dispatch (nesting): requests are still read and queued,
 * and run in order once the last hold is released.  The daemon holds
 * dispatch while it processes its command line.
 */
void monitor_hold_dispatch(void);
void monitor_release_dispatch(void);

/* A QMP monitor on chardev @chr ("Device 'x' is in use" if taken). */
MonitorQMP *monitor_new_qmp(Chardev *chr, bool pretty, Error **errp);

/*
 * --monitor [chardev=]ID[,mode=control][,pretty=on|off][,id=NAME]:
 * QEMU's wording for errors ('chardev "x" not found', "Only QMP is
 * supported").
 */
bool monitor_new_from_opts(json_t *opts, Error **errp);
bool monitor_new_from_str(const char *optarg, Error **errp);

/*
 * A QMP monitor without a chardev, serving the already connected @fd
 * (tests: one end of a socketpair).  The monitor owns @fd.
 */
MonitorQMP *monitor_new_qmp_fd(int fd, bool pretty);

/* Number of clients currently connected (tests, shutdown). */
unsigned monitor_client_count(void);

/*
 * Close all clients and monitors (their chardevs stay; see
 * qemu_chr_cleanup()).  Must not be called from a command handler.
 */
void monitor_cleanup(void);

/*
 * The greeting's version and query-version (filled from BLOCKD_VERSION).
 * New reference: {"qemu": {"major", "minor", "micro"}, "package": ""}.
 */
json_t *monitor_version_json(void);

/*
 * quit: the program registers what a shutdown request does (the daemon
 * leaves its main loop); the response to quit is sent first.
 */
void monitor_set_shutdown_handler(void (*fn)(void *opaque), void *opaque);
void monitor_request_shutdown(void);

/* The client whose command is running (qmp_capabilities); NULL if none. */
typedef struct QmpClient QmpClient;
QmpClient *monitor_cur_client(void);
/* Capabilities the current client's monitor offered (none: no OOB). */
bool monitor_client_cap_offered(QmpClient *client, const char *cap);

#endif /* MONITOR_MONITOR_H */
