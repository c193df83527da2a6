/*
 * QAPI events: generated qapi_event_send_FOO() functions build the event
 * data and call qapi_event_emit(), which wraps it as QMP does,
 *   {"timestamp": {"seconds": S, "microseconds": US},
 *    "event": "NAME", "data": {...}}
 * and hands it to the emitter the program registered (the monitor sends it
 * to every client that negotiated capabilities).  Without an emitter,
 * events are dropped.
 */
#ifndef QAPI_QMP_EVENT_H
#define QAPI_QMP_EVENT_H

#include "qemu/osdep.h"
#include <jansson.h>

/* @event is borrowed: json_incref() it to keep it past the call. */
typedef void (*QapiEventEmitter)(const char *name, json_t *event);

/* Register the emitter (NULL: drop events).  Returns the previous one. */
QapiEventEmitter qapi_event_set_emitter(QapiEventEmitter emit);

/*
 * Emit event @name.  Steals the reference to @data (may be NULL for an
 * event without data, which then has no "data" member).
 */
void qapi_event_emit(const char *name, json_t *data);

#endif /* QAPI_QMP_EVENT_H */
