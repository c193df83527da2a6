/*
 * QAPI runtime helpers: enum tables and the string parsers behind the
 * keyval input visitor.
 *
 * The size/integer parsers are private to qapi/ on purpose: they implement
 * exactly the keyval conversions (whole string, base 0 integers, binary
 * size suffixes) and do not depend on util/ being finished.
 */
#include "qemu/osdep.h"
#include "qapi/util.h"
#include <math.h>

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

int qapi_parse_int64(const char *str, int64_t *result)
{
    char *end;
    long long val;

    if (!str || !*str || g_ascii_isspace(*str)) {
        return -EINVAL;
    }
    errno = 0;
    val = strtoll(str, &end, 0);
    if (*end) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *result = val;
    return 0;
}

int qapi_parse_uint64(const char *str, uint64_t *result)
{
    char *end;
    unsigned long long val;
    const char *p = str;

    if (!str || !*str || g_ascii_isspace(*str)) {
        return -EINVAL;
    }
    /* Like qemu_strtou64: "-1" is accepted only as a wrapped value */
    errno = 0;
    val = strtoull(p, &end, 0);
    if (*end) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *result = val;
    return 0;
}

int qapi_parse_double(const char *str, double *result)
{
    char *end;
    double val;

    if (!str || !*str || g_ascii_isspace(*str)) {
        return -EINVAL;
    }
    errno = 0;
    val = strtod(str, &end);
    if (*end) {
        return -EINVAL;
    }
    if (errno == ERANGE || !isfinite(val)) {
        return -ERANGE;
    }
    *result = val;
    return 0;
}

static int size_suffix_shift(char c)
{
    switch (g_ascii_toupper(c)) {
    case 'B':
        return 0;
    case 'K':
        return 10;
    case 'M':
        return 20;
    case 'G':
        return 30;
    case 'T':
        return 40;
    case 'P':
        return 50;
    case 'E':
        return 60;
    default:
        return -1;
    }
}

int qapi_parse_size(const char *str, uint64_t *result)
{
    const char *p = str;
    const char *frac;
    char *end;
    uint64_t whole;
    double fraction = 0;
    int shift = 0;

    if (!str || !g_ascii_isdigit(*p)) {
        return -EINVAL;
    }
    /* The integer part is parsed exactly; hex is allowed without suffix */
    errno = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        whole = strtoull(p, &end, 16);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (*end) {
            return -EINVAL;
        }
        *result = whole;
        return 0;
    }
    whole = strtoull(p, &end, 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (*end == '.') {
        frac = end;
        fraction = strtod(frac, &end);
        if (end == frac + 1) {
            return -EINVAL;
        }
    }
    if (*end) {
        shift = size_suffix_shift(*end);
        if (shift < 0 || end[1]) {
            return -EINVAL;
        }
    } else if (fraction != 0) {
        /* "1.5" without a suffix is not a whole number of bytes */
        return -EINVAL;
    }
    if (shift && whole > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    whole <<= shift;
    if (fraction != 0) {
        double extra = fraction * (double)(UINT64_C(1) << shift);

        if ((double)(UINT64_MAX - whole) < extra) {
            return -ERANGE;
        }
        whole += (uint64_t)extra;
    }
    *result = whole;
    return 0;
}
