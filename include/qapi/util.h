/*
 * QAPI runtime helpers shared by generated code: enum lookup tables,
 * QType (the JSON type of a value, used to pick an alternate's branch),
 * and the keyval boolean parser.
 */
#ifndef QAPI_UTIL_H
#define QAPI_UTIL_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <jansson.h>

/* g_autoptr(json_t) drops a reference at scope exit. */
#ifndef QAPI_JSON_AUTOPTR_DEFINED
#define QAPI_JSON_AUTOPTR_DEFINED
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)
#endif

/* Mirrors QEMU's QType: which JSON type a value has. */
typedef enum QType {
    QTYPE_NONE,
    QTYPE_QNULL,
    QTYPE_QNUM,
    QTYPE_QSTRING,
    QTYPE_QDICT,
    QTYPE_QLIST,
    QTYPE_QBOOL,
    QTYPE__MAX,
} QType;

typedef struct QEnumLookup {
    const char *const *array;
    /* Special features (QAPI_ENUM_FEAT_*) of each value, may be NULL */
    const unsigned char *special_features;
    const int size;
} QEnumLookup;

/* Special features of a member, command or enum value. */
enum {
    QAPI_FEAT_DEPRECATED = 1 << 0,
    QAPI_FEAT_UNSTABLE = 1 << 1,
};

extern const QEnumLookup QType_lookup;

/* Name of @val in @lookup; @val must be in range. */
const char *qapi_enum_lookup(const QEnumLookup *lookup, int val);

/*
 * Value of @buf in @lookup.  A NULL @buf returns @def silently; an unknown
 * string returns @def and sets "Invalid parameter '%s'".
 */
int qapi_enum_parse(const QEnumLookup *lookup, const char *buf,
                    int def, Error **errp);

/*
 * Parse a keyval boolean: on/yes/true/y and off/no/false/n.
 * Error: "Parameter '%s' expects 'on' or 'off'".
 */
bool qapi_bool_parse(const char *name, const char *value, bool *obj,
                     Error **errp);

#endif /* QAPI_UTIL_H */
