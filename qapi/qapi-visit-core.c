/*
 * QAPI visitor core: the visit_* entry points used by generated code.
 *
 * Each entry point forwards to the Visitor's callback; the integer types
 * narrower than 64 bits are visited as int64/uint64 and range-checked here
 * on input ("Parameter 'x' expects int8"), as QEMU does.  Enums travel as
 * strings through type_str.
 */
#include "qemu/osdep.h"
#include "qapi/visitor-impl.h"

QNull *qnull_new(void)
{
    return g_new0(QNull, 1);
}

void qnull_free(QNull *obj)
{
    g_free(obj);
}

void visit_complete(Visitor *v, void *opaque)
{
    assert(v->type != VISITOR_OUTPUT || v->complete);
    if (v->complete) {
        v->complete(v, opaque);
    }
}

void visit_free(Visitor *v)
{
    if (v) {
        v->free(v);
    }
}

bool visit_is_input(Visitor *v)
{
    return v->type == VISITOR_INPUT;
}

bool visit_is_dealloc(Visitor *v)
{
    return v->type == VISITOR_DEALLOC;
}

bool visit_start_struct(Visitor *v, const char *name, void **obj,
                        size_t size, Error **errp)
{
    bool ok;

    assert(!obj || size);
    if (obj && v->type == VISITOR_OUTPUT) {
        assert(*obj);
    }
    ok = v->start_struct(v, name, obj, size, errp);
    if (obj && v->type == VISITOR_INPUT) {
        assert(ok != !*obj);
    }
    return ok;
}

bool visit_check_struct(Visitor *v, Error **errp)
{
    return v->check_struct ? v->check_struct(v, errp) : true;
}

void visit_end_struct(Visitor *v, void **obj)
{
    v->end_struct(v, obj);
}

bool visit_start_list(Visitor *v, const char *name, GenericList **list,
                      size_t size, Error **errp)
{
    assert(!list || size >= sizeof(GenericList));
    return v->start_list(v, name, list, size, errp);
}

GenericList *visit_next_list(Visitor *v, GenericList *tail, size_t size)
{
    assert(tail && size >= sizeof(GenericList));
    return v->next_list(v, tail, size);
}

bool visit_check_list(Visitor *v, Error **errp)
{
    return v->check_list ? v->check_list(v, errp) : true;
}

void visit_end_list(Visitor *v, void **obj)
{
    v->end_list(v, obj);
}

bool visit_start_alternate(Visitor *v, const char *name,
                           GenericAlternate **obj, size_t size,
                           Error **errp)
{
    assert(obj && size >= sizeof(GenericAlternate));
    assert(v->type != VISITOR_OUTPUT || *obj);
    if (!v->start_alternate) {
        assert(v->type != VISITOR_INPUT);
        return true;
    }
    return v->start_alternate(v, name, obj, size, errp);
}

void visit_end_alternate(Visitor *v, void **obj)
{
    if (v->end_alternate) {
        v->end_alternate(v, obj);
    }
}

bool visit_optional(Visitor *v, const char *name, bool *present)
{
    if (v->optional) {
        v->optional(v, name, present);
    }
    return *present;
}

bool visit_type_int(Visitor *v, const char *name, int64_t *obj,
                    Error **errp)
{
    return v->type_int64(v, name, obj, errp);
}

bool visit_type_int64(Visitor *v, const char *name, int64_t *obj,
                      Error **errp)
{
    return v->type_int64(v, name, obj, errp);
}

bool visit_type_uint64(Visitor *v, const char *name, uint64_t *obj,
                       Error **errp)
{
    return v->type_uint64(v, name, obj, errp);
}

static bool visit_type_intN(Visitor *v, int64_t *obj, const char *name,
                            int64_t min, int64_t max, const char *type,
                            Error **errp)
{
    int64_t value = *obj;

    if (!v->type_int64(v, name, &value, errp)) {
        return false;
    }
    if (value < min || value > max) {
        assert(v->type == VISITOR_INPUT);
        error_setg(errp, "Parameter '%s' expects %s",
                   name ? name : "null", type);
        return false;
    }
    *obj = value;
    return true;
}

static bool visit_type_uintN(Visitor *v, uint64_t *obj, const char *name,
                             uint64_t max, const char *type, Error **errp)
{
    uint64_t value = *obj;

    if (!v->type_uint64(v, name, &value, errp)) {
        return false;
    }
    if (value > max) {
        assert(v->type == VISITOR_INPUT);
        error_setg(errp, "Parameter '%s' expects %s",
                   name ? name : "null", type);
        return false;
    }
    *obj = value;
    return true;
}

#define DEFINE_VISIT_INTN(bits)                                          \
bool visit_type_int##bits(Visitor *v, const char *name,                  \
                          int##bits##_t *obj, Error **errp)              \
{                                                                        \
    int64_t value = *obj;                                                \
    if (!visit_type_intN(v, &value, name, INT##bits##_MIN,               \
                         INT##bits##_MAX, "int" #bits, errp)) {          \
        return false;                                                    \
    }                                                                    \
    *obj = value;                                                        \
    return true;                                                         \
}                                                                        \
bool visit_type_uint##bits(Visitor *v, const char *name,                 \
                           uint##bits##_t *obj, Error **errp)            \
{                                                                        \
    uint64_t value = *obj;                                               \
    if (!visit_type_uintN(v, &value, name, UINT##bits##_MAX,             \
                          "uint" #bits, errp)) {                         \
        return false;                                                    \
    }                                                                    \
    *obj = value;                                                        \
    return true;                                                         \
}

DEFINE_VISIT_INTN(8)
DEFINE_VISIT_INTN(16)
DEFINE_VISIT_INTN(32)

bool visit_type_size(Visitor *v, const char *name, uint64_t *obj,
                     Error **errp)
{
    if (v->type_size) {
        return v->type_size(v, name, obj, errp);
    }
    return v->type_uint64(v, name, obj, errp);
}

bool visit_type_bool(Visitor *v, const char *name, bool *obj, Error **errp)
{
    return v->type_bool(v, name, obj, errp);
}

bool visit_type_str(Visitor *v, const char *name, char **obj, Error **errp)
{
    assert(obj);
    return v->type_str(v, name, obj, errp);
}

bool visit_type_number(Visitor *v, const char *name, double *obj,
                       Error **errp)
{
    return v->type_number(v, name, obj, errp);
}

bool visit_type_any(Visitor *v, const char *name, json_t **obj,
                    Error **errp)
{
    assert(obj);
    return v->type_any(v, name, obj, errp);
}

bool visit_type_null(Visitor *v, const char *name, QNull **obj,
                     Error **errp)
{
    return v->type_null(v, name, obj, errp);
}

static bool output_type_enum(Visitor *v, const char *name, int *obj,
                             const QEnumLookup *lookup, Error **errp)
{
    char *enum_str;

    assert(*obj >= 0 && *obj < lookup->size);
    enum_str = (char *)qapi_enum_lookup(lookup, *obj);
    return visit_type_str(v, name, &enum_str, errp);
}

static bool input_type_enum(Visitor *v, const char *name, int *obj,
                            const QEnumLookup *lookup, Error **errp)
{
    g_autofree char *enum_str = NULL;
    int value;

    if (!visit_type_str(v, name, &enum_str, errp)) {
        return false;
    }
    value = qapi_enum_parse(lookup, enum_str, -1, NULL);
    if (value < 0) {
        error_setg(errp, "Parameter '%s' does not accept value '%s'",
                   name ? name : "null", enum_str);
        return false;
    }
    *obj = value;
    return true;
}

bool visit_type_enum(Visitor *v, const char *name, int *obj,
                     const QEnumLookup *lookup, Error **errp)
{
    assert(obj && lookup);
    switch (v->type) {
    case VISITOR_INPUT:
        return input_type_enum(v, name, obj, lookup, errp);
    case VISITOR_OUTPUT:
        return output_type_enum(v, name, obj, lookup, errp);
    case VISITOR_DEALLOC:
        return true;
    }
    g_assert_not_reached();
}
