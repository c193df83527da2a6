/*
 * Output visitor: C objects -> jansson tree.
 */
#ifndef QAPI_QOBJECT_OUTPUT_VISITOR_H
#define QAPI_QOBJECT_OUTPUT_VISITOR_H

#include "qapi/visitor.h"

/*
 * After the visit, visit_complete(v, result) stores a new reference to the
 * built tree in *result (json_t **).
 */
Visitor *qobject_output_visitor_new(json_t **result);

#endif
