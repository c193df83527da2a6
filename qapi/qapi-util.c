/*
 * QAPI runtime helpers: enum tables and the keyval boolean parser.
 * (Keyval numbers and sizes are parsed with util/cutils.c.)
 */
#include "qemu/osdep.h"
#include "qapi/util.h"

static const char *const QType_names[] = {
    [QTYPE_NONE] = "none",
    [QTYPE_QNULL] = "qnull",
    [QTYPE_QNUM] = "qnum",
    [QTYPE_QSTRING] = "qstring",
    [QTYPE_QDICT] = "qdict",
    [QTYPE_QLIST] = "qlist",
    [QTYPE_QBOOL] = "qbool",
};

const QEnumLookup QType_lookup = {
    .array = QType_names,
    .size = QTYPE__MAX,
};

const char *qapi_enum_lookup(const QEnumLookup *lookup, int val)
{
    assert(val >= 0 && val < lookup->size);
    return lookup->array[val];
}

int qapi_enum_parse(const QEnumLookup *lookup, const char *buf,
                    int def, Error **errp)
{
    int i;

    if (!buf) {
        return def;
    }
    for (i = 0; i < lookup->size; i++) {
        if (!strcmp(buf, lookup->array[i])) {
            return i;
        }
    }
    error_setg(errp, "Invalid parameter '%s'", buf);
    return def;
}

bool qapi_bool_parse(const char *name, const char *value, bool *obj,
                     Error **errp)
{
    if (!strcmp(value, "on") || !strcmp(value, "yes") ||
        !strcmp(value, "true") || !strcmp(value, "y")) {
        *obj = true;
        return true;
    }
    if (!strcmp(value, "off") || !strcmp(value, "no") ||
        !strcmp(value, "false") || !strcmp(value, "n")) {
        *obj = false;
        return true;
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
    return false;
}
