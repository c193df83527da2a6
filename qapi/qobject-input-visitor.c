/*
 * Input visitor over a jansson tree.
 *
 * A stack of containers (objects and arrays) being visited is kept; each
 * object frame remembers which keys are still unvisited so that
 * visit_check_struct() can report "Parameter 'x' is unexpected".  Error
 * messages name the member by its full path, built from the stack:
 * "a.b" for object members, "list[2]" for array elements ("list.2" in
 * keyval mode, which is how the command line spells it).
 *
 * In keyval mode every scalar leaf must be a string (that is what
 * keyval parsing of "driver=file,cache.direct=on" produces) and is
 * converted according to the schema type being visited, with the shared
 * qemu_strto*() parsers of util/cutils.c (sizes take K/M/G/T/P/E
 * suffixes).
 */
#include "qemu/osdep.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi/visitor-impl.h"
#include "qemu/cutils.h"

typedef struct StackObject {
    const char *name;           /* name of @obj in its parent, may be NULL */
    json_t *obj;                /* object or array being visited */
    void *qapi;                 /* C pointer the caller visits into */
    GHashTable *unvisited;      /* object: keys not visited yet */
    size_t next;                /* array: index of the next element */
    long index;                 /* array: index of the last consumed one */
    struct StackObject *up;
} StackObject;

typedef struct QObjectInputVisitor {
    Visitor visitor;
    json_t *root;
    bool keyval;
    StackObject *tos;
    GString *errname;
} QObjectInputVisitor;

static QObjectInputVisitor *to_qiv(Visitor *v)
{
    return container_of(v, QObjectInputVisitor, visitor);
}

/*
 * Full name of member @name of the container @n levels below the top of
 * the stack (n == 0: the current container).
 */
static const char *full_name_nth(QObjectInputVisitor *qiv, const char *name,
                                 int n)
{
    StackObject *so;
    char buf[32];

    if (!qiv->errname) {
        qiv->errname = g_string_new("");
    }
    g_string_truncate(qiv->errname, 0);

    for (so = qiv->tos; so; so = so->up) {
        if (n) {
            n--;
        } else if (json_is_object(so->obj)) {
            g_string_prepend(qiv->errname, name ? name : "<anonymous>");
            g_string_prepend_c(qiv->errname, '.');
        } else {
            snprintf(buf, sizeof(buf), qiv->keyval ? ".%ld" : "[%ld]",
                     so->index);
            g_string_prepend(qiv->errname, buf);
        }
        name = so->name;
    }
    assert(!n);

    if (name) {
        g_string_prepend(qiv->errname, name);
    } else if (qiv->errname->str[0] == '.') {
        g_string_erase(qiv->errname, 0, 1);
    } else if (!qiv->errname->str[0]) {
        return "<anonymous>";
    }
    return qiv->errname->str;
}

static const char *full_name(QObjectInputVisitor *qiv, const char *name)
{
    return full_name_nth(qiv, name, 0);
}

static json_t *try_get_object(QObjectInputVisitor *qiv, const char *name,
                              bool consume)
{
    StackObject *tos = qiv->tos;
    json_t *ret;

    if (!tos) {
        return qiv->root;
    }
    if (json_is_object(tos->obj)) {
        assert(name);
        ret = json_object_get(tos->obj, name);
        if (ret && consume) {
            g_hash_table_remove(tos->unvisited, name);
        }
        return ret;
    }
    assert(json_is_array(tos->obj));
    ret = json_array_get(tos->obj, tos->next);
    if (consume) {
        if (ret) {
            tos->next++;
        }
        tos->index++;
    }
    return ret;
}

static json_t *get_object(QObjectInputVisitor *qiv, const char *name,
                          bool consume, Error **errp)
{
    json_t *obj = try_get_object(qiv, name, consume);

    if (!obj) {
        error_setg(errp, "Parameter '%s' is missing", full_name(qiv, name));
    }
    return obj;
}

static void invalid_type(QObjectInputVisitor *qiv, const char *name,
                         const char *expected, Error **errp)
{
    error_setg(errp, "Invalid parameter type for '%s', expected: %s",
               full_name(qiv, name), expected);
}

static void invalid_value(QObjectInputVisitor *qiv, const char *name,
                          const char *expected, Error **errp)
{
    error_setg(errp, "Parameter '%s' expects %s", full_name(qiv, name),
               expected);
}

/*
 * Consume member @name, which must have one of the jansson types in
 * @types (a mask of 1u << JSON_*); else NULL, and an error that says
 * @expected for the wrong type.
 */
static json_t *get_typed(QObjectInputVisitor *qiv, const char *name,
                         unsigned types, const char *expected, Error **errp)
{
    json_t *obj = get_object(qiv, name, true, errp);

    if (obj && !(types & (1u << json_typeof(obj)))) {
        invalid_type(qiv, name, expected, errp);
        return NULL;
    }
    return obj;
}

/* Keyval mode: the string of scalar @name. */
static const char *get_keyval(QObjectInputVisitor *qiv, const char *name,
                              Error **errp)
{
    json_t *obj = get_object(qiv, name, true, errp);

    if (!obj) {
        return NULL;
    }
    if (!json_is_string(obj)) {
        if (json_is_object(obj) || json_is_array(obj)) {
            error_setg(errp, "Parameters '%s.*' are unexpected",
                       full_name(qiv, name));
        } else {
            invalid_type(qiv, name, "string", errp);
        }
        return NULL;
    }
    return json_string_value(obj);
}

static void push(QObjectInputVisitor *qiv, const char *name, json_t *obj,
                 void *qapi)
{
    StackObject *so = g_new0(StackObject, 1);

    so->name = name;
    so->obj = obj;
    so->qapi = qapi;
    so->index = -1;
    if (json_is_object(obj)) {
        const char *key;
        json_t *value;

        so->unvisited = g_hash_table_new(g_str_hash, g_str_equal);
        json_object_foreach(obj, key, value) {
            g_hash_table_add(so->unvisited, (gpointer)key);
        }
    }
    so->up = qiv->tos;
    qiv->tos = so;
}

static void stack_object_free(StackObject *so)
{
    if (so->unvisited) {
        g_hash_table_unref(so->unvisited);
    }
    g_free(so);
}

static void pop(QObjectInputVisitor *qiv, void **obj)
{
    StackObject *so = qiv->tos;

    assert(so && so->qapi == obj);
    qiv->tos = so->up;
    stack_object_free(so);
}

static bool qiv_start_struct(Visitor *v, const char *name, void **obj,
                             size_t size, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    json_t *qobj = get_typed(qiv, name, 1u << JSON_OBJECT, "object", errp);

    if (obj) {
        *obj = NULL;
    }
    if (!qobj) {
        return false;
    }
    push(qiv, name, qobj, obj);
    if (obj) {
        *obj = g_malloc0(size);
    }
    return true;
}

static bool qiv_check_struct(Visitor *v, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    StackObject *tos = qiv->tos;
    const char *key;
    json_t *value;

    assert(tos && json_is_object(tos->obj));
    /* Report the first unexpected key in input order (deterministic) */
    json_object_foreach(tos->obj, key, value) {
        if (g_hash_table_contains(tos->unvisited, key)) {
            error_setg(errp, "Parameter '%s' is unexpected",
                       full_name(qiv, key));
            return false;
        }
    }
    return true;
}

static void qiv_end_struct(Visitor *v, void **obj)
{
    QObjectInputVisitor *qiv = to_qiv(v);

    assert(qiv->tos && json_is_object(qiv->tos->obj));
    pop(qiv, obj);
}

static bool qiv_start_list(Visitor *v, const char *name, GenericList **list,
                           size_t size, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    json_t *qobj = get_typed(qiv, name, 1u << JSON_ARRAY, "array", errp);

    if (list) {
        *list = NULL;
    }
    if (!qobj) {
        return false;
    }
    push(qiv, name, qobj, list);
    if (list && json_array_size(qobj)) {
        *list = g_malloc0(size);
    }
    return true;
}

static GenericList *qiv_next_list(Visitor *v, GenericList *tail, size_t size)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    StackObject *tos = qiv->tos;

    assert(tos && json_is_array(tos->obj));
    if (tos->next >= json_array_size(tos->obj)) {
        return NULL;
    }
    tail->next = g_malloc0(size);
    return tail->next;
}

static bool qiv_check_list(Visitor *v, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    StackObject *tos = qiv->tos;

    assert(tos && json_is_array(tos->obj));
    if (tos->next < json_array_size(tos->obj)) {
        error_setg(errp, "Only %ld list elements expected in %s",
                   tos->index + 1, full_name_nth(qiv, NULL, 1));
        return false;
    }
    return true;
}

static void qiv_end_list(Visitor *v, void **obj)
{
    QObjectInputVisitor *qiv = to_qiv(v);

    assert(qiv->tos && json_is_array(qiv->tos->obj));
    pop(qiv, obj);
}

static QType json_qtype(json_t *obj)
{
    switch (json_typeof(obj)) {
    case JSON_OBJECT:
        return QTYPE_QDICT;
    case JSON_ARRAY:
        return QTYPE_QLIST;
    case JSON_STRING:
        return QTYPE_QSTRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return QTYPE_QNUM;
    case JSON_TRUE:
    case JSON_FALSE:
        return QTYPE_QBOOL;
    case JSON_NULL:
        return QTYPE_QNULL;
    }
    return QTYPE_NONE;
}

static bool qiv_start_alternate(Visitor *v, const char *name,
                                GenericAlternate **obj, size_t size,
                                Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    json_t *qobj = get_object(qiv, name, false, errp);

    if (!qobj) {
        *obj = NULL;
        return false;
    }
    *obj = g_malloc0(size);
    (*obj)->type = json_qtype(qobj);
    return true;
}

static bool qiv_type_int64(Visitor *v, const char *name, int64_t *obj,
                           Error **errp)
{
    json_t *qobj = get_typed(to_qiv(v), name, 1u << JSON_INTEGER, "integer",
                             errp);

    if (!qobj) {
        return false;
    }
    *obj = json_integer_value(qobj);
    return true;
}

static bool qiv_type_int64_keyval(Visitor *v, const char *name,
                                  int64_t *obj, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    const char *str = get_keyval(qiv, name, errp);

    if (!str) {
        return false;
    }
    if (qemu_strtoi64(str, NULL, 0, obj) < 0) {
        invalid_value(qiv, name, "integer", errp);
        return false;
    }
    return true;
}

static bool qiv_type_uint64(Visitor *v, const char *name, uint64_t *obj,
                            Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    json_t *qobj = get_object(qiv, name, true, errp);

    if (!qobj) {
        return false;
    }
    /*
     * jansson integers are int64; QEMU accepts negative values here for
     * backward compatibility (they wrap), and so do we.
     */
    if (!json_is_integer(qobj)) {
        invalid_value(qiv, name, "uint64", errp);
        return false;
    }
    *obj = (uint64_t)json_integer_value(qobj);
    return true;
}

/* Keyval mode: a uint64, or with @is_size a size with optional suffix */
static bool keyval_unsigned(Visitor *v, const char *name, bool is_size,
                            uint64_t *obj, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    const char *str = get_keyval(qiv, name, errp);

    if (!str) {
        return false;
    }
    if ((is_size ? qemu_strtosz(str, NULL, obj)
                 : qemu_strtou64(str, NULL, 0, obj)) < 0) {
        invalid_value(qiv, name, is_size ? "size" : "integer", errp);
        return false;
    }
    return true;
}

static bool qiv_type_uint64_keyval(Visitor *v, const char *name,
                                   uint64_t *obj, Error **errp)
{
    return keyval_unsigned(v, name, false, obj, errp);
}

static bool qiv_type_size_keyval(Visitor *v, const char *name,
                                 uint64_t *obj, Error **errp)
{
    return keyval_unsigned(v, name, true, obj, errp);
}

static bool qiv_type_bool(Visitor *v, const char *name, bool *obj,
                          Error **errp)
{
    json_t *qobj = get_typed(to_qiv(v), name,
                             (1u << JSON_TRUE) | (1u << JSON_FALSE),
                             "boolean", errp);

    if (!qobj) {
        return false;
    }
    *obj = json_is_true(qobj);
    return true;
}

static bool qiv_type_bool_keyval(Visitor *v, const char *name, bool *obj,
                                 Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    const char *str = get_keyval(qiv, name, errp);

    if (!str) {
        return false;
    }
    return qapi_bool_parse(full_name(qiv, name), str, obj, errp);
}

static bool qiv_type_str(Visitor *v, const char *name, char **obj,
                         Error **errp)
{
    json_t *qobj = get_typed(to_qiv(v), name, 1u << JSON_STRING, "string",
                             errp);

    *obj = NULL;
    if (!qobj) {
        return false;
    }
    *obj = g_strdup(json_string_value(qobj));
    return true;
}

static bool qiv_type_str_keyval(Visitor *v, const char *name, char **obj,
                                Error **errp)
{
    const char *str = get_keyval(to_qiv(v), name, errp);

    *obj = g_strdup(str);
    return str != NULL;
}

static bool qiv_type_number(Visitor *v, const char *name, double *obj,
                            Error **errp)
{
    json_t *qobj = get_typed(to_qiv(v), name,
                             (1u << JSON_INTEGER) | (1u << JSON_REAL),
                             "number", errp);

    if (!qobj) {
        return false;
    }
    *obj = json_number_value(qobj);
    return true;
}

static bool qiv_type_number_keyval(Visitor *v, const char *name,
                                   double *obj, Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    const char *str = get_keyval(qiv, name, errp);

    if (!str) {
        return false;
    }
    if (qemu_strtod_finite(str, NULL, obj) < 0) {
        invalid_type(qiv, name, "number", errp);
        return false;
    }
    return true;
}

static bool qiv_type_any(Visitor *v, const char *name, json_t **obj,
                         Error **errp)
{
    json_t *qobj = get_object(to_qiv(v), name, true, errp);

    *obj = NULL;
    if (!qobj) {
        return false;
    }
    *obj = json_incref(qobj);
    return true;
}

static bool qiv_type_null(Visitor *v, const char *name, QNull **obj,
                          Error **errp)
{
    QObjectInputVisitor *qiv = to_qiv(v);
    json_t *qobj = get_object(qiv, name, true, errp);

    *obj = NULL;
    if (!qobj) {
        return false;
    }
    /* keyval spells null as the empty string */
    if (!json_is_null(qobj) &&
        !(qiv->keyval && json_is_string(qobj) &&
          !*json_string_value(qobj))) {
        invalid_type(qiv, name, "null", errp);
        return false;
    }
    *obj = qnull_new();
    return true;
}

static void qiv_optional(Visitor *v, const char *name, bool *present)
{
    *present = try_get_object(to_qiv(v), name, false) != NULL;
}

static void qiv_free(Visitor *v)
{
    QObjectInputVisitor *qiv = to_qiv(v);

    while (qiv->tos) {
        StackObject *so = qiv->tos;

        qiv->tos = so->up;
        stack_object_free(so);
    }
    json_decref(qiv->root);
    if (qiv->errname) {
        g_string_free(qiv->errname, TRUE);
    }
    g_free(qiv);
}

static QObjectInputVisitor *qiv_base_new(json_t *obj)
{
    QObjectInputVisitor *qiv = g_new0(QObjectInputVisitor, 1);

    assert(obj);
    qiv->visitor.type = VISITOR_INPUT;
    qiv->visitor.start_struct = qiv_start_struct;
    qiv->visitor.check_struct = qiv_check_struct;
    qiv->visitor.end_struct = qiv_end_struct;
    qiv->visitor.start_list = qiv_start_list;
    qiv->visitor.next_list = qiv_next_list;
    qiv->visitor.check_list = qiv_check_list;
    qiv->visitor.end_list = qiv_end_list;
    qiv->visitor.start_alternate = qiv_start_alternate;
    qiv->visitor.optional = qiv_optional;
    qiv->visitor.free = qiv_free;
    qiv->visitor.type_any = qiv_type_any;
    qiv->visitor.type_null = qiv_type_null;
    qiv->root = json_incref(obj);
    return qiv;
}

Visitor *qobject_input_visitor_new(json_t *obj)
{
    QObjectInputVisitor *qiv = qiv_base_new(obj);

    qiv->visitor.type_int64 = qiv_type_int64;
    qiv->visitor.type_uint64 = qiv_type_uint64;
    qiv->visitor.type_bool = qiv_type_bool;
    qiv->visitor.type_str = qiv_type_str;
    qiv->visitor.type_number = qiv_type_number;
    return &qiv->visitor;
}

Visitor *qobject_input_visitor_new_keyval(json_t *obj)
{
    QObjectInputVisitor *qiv = qiv_base_new(obj);

    qiv->visitor.type_int64 = qiv_type_int64_keyval;
    qiv->visitor.type_uint64 = qiv_type_uint64_keyval;
    qiv->visitor.type_size = qiv_type_size_keyval;
    qiv->visitor.type_bool = qiv_type_bool_keyval;
    qiv->visitor.type_str = qiv_type_str_keyval;
    qiv->visitor.type_number = qiv_type_number_keyval;
    qiv->keyval = true;
    return &qiv->visitor;
}
