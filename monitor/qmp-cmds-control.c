/*
 * Handlers of qapi/control.json: qmp_capabilities, query-version,
 * query-commands, quit.  (query-qmp-schema is generated.)
 */
#include "qemu/osdep.h"
#include "monitor/monitor.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi-visit.h"
#include "qapi-commands.h"

/*
 * The dispatcher only lets qmp_capabilities through in negotiation mode;
 * the monitor switches the client to command mode when this succeeds.
 * Every capability must have been offered in the greeting; blockd offers
 * none (no out-of-band execution), so enable: ["oob"] fails as QEMU fails
 * for a capability its monitor did not offer.
 */
void qmp_qmp_capabilities(QMPCapabilityList *enable, Error **errp)
{
    QmpClient *client = monitor_cur_client();
    g_autoptr(GString) unavailable = NULL;
    QMPCapabilityList *l;

    for (l = enable; l; l = l->next) {
        const char *name = QMPCapability_str(l->value);

        if (client && monitor_client_cap_offered(client, name)) {
            continue;
        }
        if (!unavailable) {
            unavailable = g_string_new(name);
        } else {
            g_string_append_printf(unavailable, ", %s", name);
        }
    }
    if (unavailable) {
        error_setg(errp, "Capability %s not available", unavailable->str);
    }
}

VersionInfo *qmp_query_version(Error **errp)
{
    g_autoptr(json_t) v = monitor_version_json();
    VersionInfo *info = NULL;
    Visitor *iv = qobject_input_visitor_new(v);

    visit_type_VersionInfo(iv, NULL, &info, &error_abort);
    visit_free(iv);
    return info;
}

static void add_command(const QmpCommand *cmd, void *opaque)
{
    CommandInfoList ***tail = opaque;
    CommandInfoList *e;

    if (!cmd->enabled) {
        return;
    }
    e = g_new0(CommandInfoList, 1);
    e->value = g_new0(CommandInfo, 1);
    e->value->name = g_strdup(cmd->name);
    **tail = e;
    *tail = &e->next;
}

/* Only what is registered: an unimplemented command is not listed. */
CommandInfoList *qmp_query_commands(Error **errp)
{
    CommandInfoList *head = NULL, **tail = &head;

    qmp_for_each_command(monitor_qmp_commands(), add_command, &tail);
    return head;
}

void qmp_quit(Error **errp)
{
    monitor_request_shutdown();
}
