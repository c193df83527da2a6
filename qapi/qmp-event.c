/*
 * QAPI event emission: wraps event data in QMP's event envelope and hands
 * it to the registered emitter.
 */
#include "qemu/osdep.h"
#include "qapi/qmp-event.h"
#include "qapi/util.h"

static QapiEventEmitter event_emitter;

QapiEventEmitter qapi_event_set_emitter(QapiEventEmitter emit)
{
    QapiEventEmitter old = event_emitter;

    event_emitter = emit;
    return old;
}

void qapi_event_emit(const char *name, json_t *data)
{
    g_autoptr(json_t) event = NULL;
    int64_t now = g_get_real_time();

    if (!event_emitter) {
        json_decref(data);
        return;
    }
    event = json_pack("{s:{s:I, s:I}, s:s}", "timestamp",
                      "seconds", (json_int_t)(now / G_USEC_PER_SEC),
                      "microseconds", (json_int_t)(now % G_USEC_PER_SEC),
                      "event", name);
    if (data) {
        json_object_set_new(event, "data", data);
    }
    event_emitter(name, event);
}
