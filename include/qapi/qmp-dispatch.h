/*
 * QMP command registry and dispatcher.
 *
 * Generated code (qapi-commands.c) registers one marshaler per schema
 * command with qmp_init_marshal(&cmds) (or PREFIXqmp_init_marshal() for a
 * prefixed schema).  A program may also register commands by hand.  The
 * monitor hands each request object to qmp_dispatch(), which checks the
 * request shape with QEMU's wording, runs the marshaler and builds the
 * response object.
 */
#ifndef QAPI_QMP_DISPATCH_H
#define QAPI_QMP_DISPATCH_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <jansson.h>

/*
 * A marshaler: @args is the "arguments" object (never NULL; borrowed).
 * On success stores a new reference in *ret ({} when the command returns
 * nothing); on failure sets @errp.
 */
typedef void QmpCommandFunc(json_t *args, json_t **ret, Error **errp);

typedef enum QmpCommandOptions {
    QCO_NO_OPTIONS = 0,
    QCO_NO_SUCCESS_RESP = 1 << 0,
    QCO_ALLOW_OOB = 1 << 1,
    QCO_ALLOW_PRECONFIG = 1 << 2,
    QCO_COROUTINE = 1 << 3,
} QmpCommandOptions;

typedef struct QmpCommand {
    const char *name;
    QmpCommandFunc *fn;
    QmpCommandOptions options;
    unsigned special_features;      /* QAPI_FEAT_DEPRECATED, ... */
    bool enabled;
    char *disable_reason;
    struct QmpCommand *next;
} QmpCommand;

/* Zero-initialised is an empty list. */
typedef struct QmpCommandList {
    QmpCommand *head;
    QmpCommand *tail;
} QmpCommandList;

void qmp_register_command(QmpCommandList *cmds, const char *name,
                          QmpCommandFunc *fn, QmpCommandOptions options,
                          unsigned special_features);
/* Drop a registered command (the monitor replaces placeholders). */
void qmp_unregister_command(QmpCommandList *cmds, const char *name);
const QmpCommand *qmp_find_command(const QmpCommandList *cmds,
                                   const char *name);
/* A disabled command answers "Command %s has been disabled[: reason]". */
void qmp_disable_command(QmpCommandList *cmds, const char *name,
                         const char *reason);
void qmp_enable_command(QmpCommandList *cmds, const char *name);
/* Visit commands in registration order. */
void qmp_for_each_command(const QmpCommandList *cmds,
                          void (*fn)(const QmpCommand *cmd, void *opaque),
                          void *opaque);
void qmp_command_list_destroy(QmpCommandList *cmds);

/*
 * Reject commands with the 'deprecated' feature
 * (-compat deprecated-input=reject): "Deprecated command %s disabled by
 * policy".  Default: accept.
 */
void qmp_set_reject_deprecated(bool reject);

/*
 * Handle one request object (borrowed).  Returns the response object
 * (new reference): {"return": ...} or {"error": {"class", "desc"}}, with
 * the request's "id" echoed whatever it is.  Returns NULL only for a
 * successful QCO_NO_SUCCESS_RESP command.
 *
 * @negotiated: false while the client is in capabilities-negotiation mode,
 * where only "qmp_capabilities" may run (others get CommandNotFound
 * "Expecting capabilities negotiation with 'qmp_capabilities'"); when true,
 * "qmp_capabilities" gets CommandNotFound "Capabilities negotiation is
 * already complete, command ignored".  The caller switches its client to
 * command mode when a qmp_capabilities response carries "return".
 */
json_t *qmp_dispatch(const QmpCommandList *cmds, json_t *request,
                     bool negotiated);

/* {"error": {"class": ..., "desc": ...}}; frees @err. */
json_t *qmp_error_response(Error *err);

#endif /* QAPI_QMP_DISPATCH_H */
