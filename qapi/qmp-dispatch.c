/*
 * QMP dispatch: command registry, request validation and response
 * building.
 *
 * A request is checked the way QEMU's qmp_dispatch() does, with the same
 * messages ("QMP input lacks member 'execute'", "QMP input member 'foo' is
 * unexpected", ...), because clients and test suites match on them.  The
 * response echoes the request's "id" (any JSON value) whenever the request
 * was an object, including on errors.
 */
#include "qemu/osdep.h"
#include "qapi/qmp-dispatch.h"
#include "qapi/util.h"

static bool reject_deprecated;

void qmp_set_reject_deprecated(bool reject)
{
    reject_deprecated = reject;
}

static QmpCommand *find_cmd(const QmpCommandList *cmds, const char *name)
{
    QmpCommand *cmd;

    for (cmd = cmds->head; cmd; cmd = cmd->next) {
        if (!strcmp(cmd->name, name)) {
            return cmd;
        }
    }
    return NULL;
}

void qmp_register_command(QmpCommandList *cmds, const char *name,
                          QmpCommandFunc *fn, QmpCommandOptions options,
                          unsigned special_features)
{
    QmpCommand *cmd;

    assert(!find_cmd(cmds, name));
    cmd = g_new0(QmpCommand, 1);
    cmd->name = name;
    cmd->fn = fn;
    cmd->options = options;
    cmd->special_features = special_features;
    cmd->enabled = true;
    if (cmds->tail) {
        cmds->tail->next = cmd;
    } else {
        cmds->head = cmd;
    }
    cmds->tail = cmd;
}

void qmp_unregister_command(QmpCommandList *cmds, const char *name)
{
    QmpCommand **link = &cmds->head;
    QmpCommand *prev = NULL;

    while (*link) {
        QmpCommand *cmd = *link;

        if (!strcmp(cmd->name, name)) {
            *link = cmd->next;
            if (cmds->tail == cmd) {
                cmds->tail = prev;
            }
            g_free(cmd->disable_reason);
            g_free(cmd);
            return;
        }
        prev = cmd;
        link = &cmd->next;
    }
}

const QmpCommand *qmp_find_command(const QmpCommandList *cmds,
                                   const char *name)
{
    return find_cmd(cmds, name);
}

void qmp_disable_command(QmpCommandList *cmds, const char *name,
                         const char *reason)
{
    QmpCommand *cmd = find_cmd(cmds, name);

    if (cmd) {
        cmd->enabled = false;
        g_free(cmd->disable_reason);
        cmd->disable_reason = g_strdup(reason);
    }
}

void qmp_enable_command(QmpCommandList *cmds, const char *name)
{
    QmpCommand *cmd = find_cmd(cmds, name);

    if (cmd) {
        cmd->enabled = true;
        g_free(cmd->disable_reason);
        cmd->disable_reason = NULL;
    }
}

void qmp_for_each_command(const QmpCommandList *cmds,
                          void (*fn)(const QmpCommand *cmd, void *opaque),
                          void *opaque)
{
    const QmpCommand *cmd;

    for (cmd = cmds->head; cmd; cmd = cmd->next) {
        fn(cmd, opaque);
    }
}

void qmp_command_list_destroy(QmpCommandList *cmds)
{
    QmpCommand *cmd = cmds->head;

    while (cmd) {
        QmpCommand *next = cmd->next;

        g_free(cmd->disable_reason);
        g_free(cmd);
        cmd = next;
    }
    cmds->head = cmds->tail = NULL;
}

json_t *qmp_error_response(Error *err)
{
    json_t *resp;

    resp = json_pack("{s:{s:s, s:s}}", "error",
                     "class", error_class_name(error_get_class(err)),
                     "desc", error_get_pretty(err));
    error_free(err);
    return resp;
}

/* Check the request's members; returns the command name or NULL. */
static const char *check_request(json_t *request, Error **errp)
{
    const char *key;
    json_t *value;
    const char *exec = NULL;

    if (!json_is_object(request)) {
        error_setg(errp, "QMP input must be a JSON object");
        return NULL;
    }
    json_object_foreach(request, key, value) {
        if (!strcmp(key, "execute")) {
            if (!json_is_string(value)) {
                error_setg(errp, "QMP input member 'execute' must be a "
                           "string");
                return NULL;
            }
            exec = json_string_value(value);
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(value)) {
                error_setg(errp, "QMP input member 'arguments' must be an "
                           "object");
                return NULL;
            }
        } else if (!strcmp(key, "exec-oob")) {
            /* Out-of-band execution is not supported by blockd */
            error_setg(errp, "QMP input member 'exec-oob' is unexpected");
            return NULL;
        } else if (strcmp(key, "id")) {
            error_setg(errp, "QMP input member '%s' is unexpected", key);
            return NULL;
        }
    }
    if (!exec) {
        error_setg(errp, "QMP input lacks member 'execute'");
        return NULL;
    }
    return exec;
}

static json_t *do_dispatch(const QmpCommandList *cmds, json_t *request,
                           bool negotiated, Error **errp)
{
    const char *name;
    const QmpCommand *cmd;
    json_t *args;
    g_autoptr(json_t) own_args = NULL;
    json_t *ret = NULL;
    Error *err = NULL;

    name = check_request(request, errp);
    if (!name) {
        return NULL;
    }
    if (!negotiated && strcmp(name, "qmp_capabilities")) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Expecting capabilities negotiation with "
                  "'qmp_capabilities'");
        return NULL;
    }
    if (negotiated && !strcmp(name, "qmp_capabilities")) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Capabilities negotiation is already complete, command "
                  "ignored");
        return NULL;
    }
    cmd = find_cmd(cmds, name);
    if (!cmd) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "The command %s has not been found", name);
        return NULL;
    }
    if (!cmd->enabled) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Command %s has been disabled%s%s", name,
                  cmd->disable_reason ? ": " : "",
                  cmd->disable_reason ? cmd->disable_reason : "");
        return NULL;
    }
    if (reject_deprecated &&
        (cmd->special_features & QAPI_FEAT_DEPRECATED)) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Deprecated command %s disabled by policy", name);
        return NULL;
    }

    args = json_object_get(request, "arguments");
    if (!args) {
        args = own_args = json_object();
    }
    cmd->fn(args, &ret, &err);
    if (err) {
        assert(!ret);
        error_propagate(errp, err);
        return NULL;
    }
    if (cmd->options & QCO_NO_SUCCESS_RESP) {
        assert(!ret);
        return NULL;
    }
    if (!ret) {
        ret = json_object();
    }
    return json_pack("{s:o}", "return", ret);
}

json_t *qmp_dispatch(const QmpCommandList *cmds, json_t *request,
                     bool negotiated)
{
    Error *err = NULL;
    json_t *resp;
    json_t *id;

    resp = do_dispatch(cmds, request, negotiated, &err);
    if (err) {
        resp = qmp_error_response(err);
    } else if (!resp) {
        return NULL;
    }
    id = json_is_object(request) ? json_object_get(request, "id") : NULL;
    if (id) {
        json_object_set(resp, "id", id);
    }
    return resp;
}
