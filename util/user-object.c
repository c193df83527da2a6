/*
 * --object checking for the tools: see include/qemu/user-object.h.
 */
#include "qemu/osdep.h"
#include "qemu/keyval.h"
#include "qemu/user-object.h"

static bool check_object(json_t *obj, Error **errp)
{
    static const char *const known[] = { "secret", "secret_keyring", NULL };
    const char *type = json_string_value(json_object_get(obj, "qom-type"));

    if (!type) {
        error_setg(errp, "Parameter 'qom-type' is missing");
        return false;
    }
    if (!g_strv_contains(known, type)) {
        error_setg(errp, "Parameter 'qom-type' does not accept value '%s'",
                   type);
        return false;
    }
    if (!json_object_get(obj, "id")) {
        error_setg(errp, "Parameter 'id' is missing");
        return false;
    }
    return true;
}

bool user_object_check_cmdline(const char *def, Error **errp)
{
    json_t *obj = keyval_parse(def, "qom-type", NULL, errp);
    bool ok;

    if (!obj) {
        return false;
    }
    ok = check_object(obj, errp);
    json_decref(obj);
    return ok;
}
