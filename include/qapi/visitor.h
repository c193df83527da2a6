/*
 * The QAPI visitor interface.
 *
 * Generated code (visit_type_FOO()) walks a C object graph and calls these
 * functions once per member; a Visitor implementation decides what that
 * means.  Three implementations exist:
 *
 * - input  (qobject-input-visitor.h): builds C objects from a jansson tree,
 *   strictly checking types, missing and unexpected members; optionally in
 *   keyval mode, where every scalar is a string converted per schema type.
 * - output (qobject-output-visitor.h): builds a jansson tree from C objects.
 * - dealloc (dealloc-visitor.h): frees a C object graph (qapi_free_FOO()).
 *
 * The calling sequence is QEMU's: visit_start_struct() ... members ...
 * visit_check_struct() visit_end_struct(); visit_start_list() then
 * visit_next_list() per element, visit_check_list() visit_end_list();
 * visit_start_alternate() picks a branch by JSON type; optional members are
 * guarded with visit_optional().  Every visit_* function that can fail
 * returns false and sets @errp; on input failure the partially built object
 * is left for the caller to free with the dealloc visitor.
 */
#ifndef QAPI_VISITOR_H
#define QAPI_VISITOR_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/util.h"
#include <jansson.h>

typedef struct Visitor Visitor;

/* Any generated FOOList has this layout. */
typedef struct GenericList {
    struct GenericList *next;
    char padding[];
} GenericList;

/* Any generated alternate starts with this. */
typedef struct GenericAlternate {
    QType type;
    char padding[];
} GenericAlternate;

/* The C type of the schema's 'null' (a JSON null); allocated by visits. */
typedef struct QNull {
    int unused;
} QNull;

QNull *qnull_new(void);
void qnull_free(QNull *obj);

void visit_complete(Visitor *v, void *opaque);
void visit_free(Visitor *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Visitor, visit_free)

bool visit_start_struct(Visitor *v, const char *name, void **obj,
                        size_t size, Error **errp);
bool visit_check_struct(Visitor *v, Error **errp);
void visit_end_struct(Visitor *v, void **obj);

bool visit_start_list(Visitor *v, const char *name, GenericList **list,
                      size_t size, Error **errp);
GenericList *visit_next_list(Visitor *v, GenericList *tail, size_t size);
bool visit_check_list(Visitor *v, Error **errp);
void visit_end_list(Visitor *v, void **list);

bool visit_start_alternate(Visitor *v, const char *name,
                           GenericAlternate **obj, size_t size, Error **errp);
void visit_end_alternate(Visitor *v, void **obj);

/* Whether optional member @name is present; sets *present on input. */
bool visit_optional(Visitor *v, const char *name, bool *present);

bool visit_is_input(Visitor *v);
bool visit_is_dealloc(Visitor *v);

bool visit_type_int(Visitor *v, const char *name, int64_t *obj,
                    Error **errp);
bool visit_type_int8(Visitor *v, const char *name, int8_t *obj,
                     Error **errp);
bool visit_type_int16(Visitor *v, const char *name, int16_t *obj,
                      Error **errp);
bool visit_type_int32(Visitor *v, const char *name, int32_t *obj,
                      Error **errp);
bool visit_type_int64(Visitor *v, const char *name, int64_t *obj,
                      Error **errp);
bool visit_type_uint8(Visitor *v, const char *name, uint8_t *obj,
                      Error **errp);
bool visit_type_uint16(Visitor *v, const char *name, uint16_t *obj,
                       Error **errp);
bool visit_type_uint32(Visitor *v, const char *name, uint32_t *obj,
                       Error **errp);
bool visit_type_uint64(Visitor *v, const char *name, uint64_t *obj,
                       Error **errp);
bool visit_type_size(Visitor *v, const char *name, uint64_t *obj,
                     Error **errp);
bool visit_type_bool(Visitor *v, const char *name, bool *obj, Error **errp);
bool visit_type_str(Visitor *v, const char *name, char **obj, Error **errp);
bool visit_type_number(Visitor *v, const char *name, double *obj,
                       Error **errp);
/* 'any': a new reference to the JSON value (json_decref() to free). */
bool visit_type_any(Visitor *v, const char *name, json_t **obj,
                    Error **errp);
bool visit_type_null(Visitor *v, const char *name, QNull **obj,
                     Error **errp);
/*
 * Enum members travel as strings.  Input error:
 * "Parameter '%s' does not accept value '%s'".
 */
bool visit_type_enum(Visitor *v, const char *name, int *obj,
                     const QEnumLookup *lookup, Error **errp);

#endif /* QAPI_VISITOR_H */
