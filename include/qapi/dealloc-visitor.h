/*
 * Dealloc visitor: frees a C object graph built by the input visitor or by
 * hand.  Used by every generated qapi_free_FOO().
 */
#ifndef QAPI_DEALLOC_VISITOR_H
#define QAPI_DEALLOC_VISITOR_H

#include "qapi/visitor.h"

Visitor *qapi_dealloc_visitor_new(void);

#endif
