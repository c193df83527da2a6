/*
 * Output visitor: builds a jansson tree from C objects.  Containers being
 * filled are kept on a stack; each scalar is added to the top container
 * under its member name (objects) or appended (arrays).
 */
#include "qemu/osdep.h"
#include "qapi/qobject-output-visitor.h"
#include "qapi/visitor-impl.h"

typedef struct OutputFrame {
    json_t *value;              /* object or array being filled */
    void *qapi;
    struct OutputFrame *up;
} OutputFrame;

typedef struct QObjectOutputVisitor {
    Visitor visitor;
    OutputFrame *tos;
    json_t *root;
    json_t **result;
} QObjectOutputVisitor;

static QObjectOutputVisitor *to_qov(Visitor *v)
{
    return container_of(v, QObjectOutputVisitor, visitor);
}

/* Add @value (stolen) to the current container, or make it the root. */
static void qov_add(QObjectOutputVisitor *qov, const char *name,
                    json_t *value)
{
    OutputFrame *tos = qov->tos;

    assert(value);
    if (!tos) {
        /* Only one root value per visit */
        assert(!qov->root);
        qov->root = value;
    } else if (json_is_object(tos->value)) {
        assert(name);
        json_object_set_new(tos->value, name, value);
    } else {
        assert(json_is_array(tos->value) && !name);
        json_array_append_new(tos->value, value);
    }
}

static void qov_push(QObjectOutputVisitor *qov, json_t *value, void *qapi)
{
    OutputFrame *f = g_new0(OutputFrame, 1);

    f->value = value;
    f->qapi = qapi;
    f->up = qov->tos;
    qov->tos = f;
}

static void qov_pop(QObjectOutputVisitor *qov, void *qapi)
{
    OutputFrame *f = qov->tos;

    assert(f && f->qapi == qapi);
    qov->tos = f->up;
    g_free(f);
}

static bool qov_start_struct(Visitor *v, const char *name, void **obj,
                             size_t size, Error **errp)
{
    QObjectOutputVisitor *qov = to_qov(v);
    json_t *dict = json_object();

    qov_add(qov, name, dict);
    qov_push(qov, dict, obj);
    return true;
}

static void qov_end_struct(Visitor *v, void **obj)
{
    QObjectOutputVisitor *qov = to_qov(v);

    assert(json_is_object(qov->tos->value));
    qov_pop(qov, obj);
}

static bool qov_start_list(Visitor *v, const char *name, GenericList **list,
                           size_t size, Error **errp)
{
    QObjectOutputVisitor *qov = to_qov(v);
    json_t *arr = json_array();

    qov_add(qov, name, arr);
    qov_push(qov, arr, list);
    return true;
}

static GenericList *qov_next_list(Visitor *v, GenericList *tail, size_t size)
{
    return tail->next;
}

static void qov_end_list(Visitor *v, void **obj)
{
    QObjectOutputVisitor *qov = to_qov(v);

    assert(json_is_array(qov->tos->value));
    qov_pop(qov, obj);
}

static bool qov_type_int64(Visitor *v, const char *name, int64_t *obj,
                           Error **errp)
{
    qov_add(to_qov(v), name, json_integer(*obj));
    return true;
}

static bool qov_type_uint64(Visitor *v, const char *name, uint64_t *obj,
                            Error **errp)
{
    /*
     * jansson stores int64; values above INT64_MAX are emitted as reals
     * (QEMU would print them exactly; they do not occur in blockd's
     * replies, which are sizes and offsets below 2^63).
     */
    if (*obj > INT64_MAX) {
        qov_add(to_qov(v), name, json_real((double)*obj));
    } else {
        qov_add(to_qov(v), name, json_integer((json_int_t)*obj));
    }
    return true;
}

static bool qov_type_bool(Visitor *v, const char *name, bool *obj,
                          Error **errp)
{
    qov_add(to_qov(v), name, json_boolean(*obj));
    return true;
}

static bool qov_type_str(Visitor *v, const char *name, char **obj,
                         Error **errp)
{
    qov_add(to_qov(v), name, json_string(*obj ? *obj : ""));
    return true;
}

static bool qov_type_number(Visitor *v, const char *name, double *obj,
                            Error **errp)
{
    qov_add(to_qov(v), name, json_real(*obj));
    return true;
}

static bool qov_type_any(Visitor *v, const char *name, json_t **obj,
                         Error **errp)
{
    qov_add(to_qov(v), name, json_incref(*obj));
    return true;
}

static bool qov_type_null(Visitor *v, const char *name, QNull **obj,
                          Error **errp)
{
    qov_add(to_qov(v), name, json_null());
    return true;
}

static void qov_complete(Visitor *v, void *opaque)
{
    QObjectOutputVisitor *qov = to_qov(v);

    /* A visit must be complete: stack empty, one root */
    assert(opaque == qov->result);
    assert(!qov->tos && qov->root);
    *qov->result = json_incref(qov->root);
}

static void qov_free(Visitor *v)
{
    QObjectOutputVisitor *qov = to_qov(v);

    while (qov->tos) {
        OutputFrame *f = qov->tos;

        qov->tos = f->up;
        g_free(f);
    }
    json_decref(qov->root);
    g_free(qov);
}

Visitor *qobject_output_visitor_new(json_t **result)
{
    QObjectOutputVisitor *qov = g_new0(QObjectOutputVisitor, 1);

    qov->visitor.type = VISITOR_OUTPUT;
    qov->visitor.start_struct = qov_start_struct;
    qov->visitor.end_struct = qov_end_struct;
    qov->visitor.start_list = qov_start_list;
    qov->visitor.next_list = qov_next_list;
    qov->visitor.end_list = qov_end_list;
    qov->visitor.type_int64 = qov_type_int64;
    qov->visitor.type_uint64 = qov_type_uint64;
    qov->visitor.type_bool = qov_type_bool;
    qov->visitor.type_str = qov_type_str;
    qov->visitor.type_number = qov_type_number;
    qov->visitor.type_any = qov_type_any;
    qov->visitor.type_null = qov_type_null;
    qov->visitor.complete = qov_complete;
    qov->visitor.free = qov_free;
    *result = NULL;
    qov->result = result;
    return &qov->visitor;
}
