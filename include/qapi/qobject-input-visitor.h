/*
 * Input visitor: jansson tree -> C objects.
 */
#ifndef QAPI_QOBJECT_INPUT_VISITOR_H
#define QAPI_QOBJECT_INPUT_VISITOR_H

#include "qapi/visitor.h"

/*
 * Strict JSON input (QMP arguments).  Takes a new reference to @obj.
 * Error wording is QEMU's: "Parameter 'x' is missing",
 * "Invalid parameter type for 'x', expected: integer",
 * "Parameter 'x' is unexpected"; nested members are named by path
 * ("x-perf.max-workers", "list[2]").
 */
Visitor *qobject_input_visitor_new(json_t *obj);

/*
 * Keyval input (command line --blockdev/--export/--nbd-server): every scalar
 * in @obj is a JSON string converted per schema type.  Integers accept
 * 0x/0 prefixes, sizes accept K/M/G/T/P/E suffixes, booleans
 * on/off/yes/no/true/false, null the empty string.  List indices in error
 * paths print as "list.0".
 */
Visitor *qobject_input_visitor_new_keyval(json_t *obj);

#endif
