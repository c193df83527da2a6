/*
 * QAPI runtime helpers shared by generated code: enum lookup tables,
 * QType (the JSON type of a value, used to pick an alternate's branch),
 * and the string parsers used by the keyval input visitor.
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

/*
 * Parse a byte size with an optional suffix (B, K/k, M, G, T, P, E;
 * powers of 1024), as qemu_strtosz: "64k", "1.5M", "4096".  The whole
 * string must be consumed.  Returns 0 or -EINVAL/-ERANGE.
 */
int qapi_parse_size(const char *str, uint64_t *result);

/* Whole-string integer parsers, base 0 (decimal, 0x hex, 0 octal). */
int qapi_parse_int64(const char *str, int64_t *result);
int qapi_parse_uint64(const char *str, uint64_t *result);
/* Whole-string finite double parser. */
int qapi_parse_double(const char *str, double *result);

#endif /* QAPI_UTIL_H */
