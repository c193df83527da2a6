/*
 * keyval: QEMU's "key=value,..." option syntax, parsed into a jansson tree.
 *
 * This is the syntax of qemu-storage-daemon's --blockdev, --export,
 * --nbd-server, --object ... (and qemu-img's --image-opts):
 *
 *   key-vals  = [ key-val { ',' key-val } [ ',' ] ]
 *   key-val   = key '=' val | help
 *   key       = key-frag { '.' key-frag }
 *   key-frag  = / [A-Za-z0-9_-]+ /          (shorter than 128 characters)
 *   val       = { / [^,] / | ',,' }         (",," stands for one ',')
 *   help      = 'help' | '?'
 *
 * - Dotted keys build nested objects: "a=1,b.c=x" -> {"a":"1","b":{"c":"x"}}.
 * - EVERY scalar value is a JSON string.  Types come later: the QAPI input
 *   visitor in keyval mode converts "on", "64k", "42" according to the
 *   schema (QEMU's qobject_input_visitor_new_keyval model).
 * - An object whose keys are all decimal integers becomes a list:
 *   "a.0=x,a.1=y" -> {"a":["x","y"]}.  The indices must be exactly
 *   0..n-1 ("Parameter 'a.1' missing"); mixing index and name keys in one
 *   object is an error ("Parameters 'a.*' used inconsistently").
 * - A repeated key: the last value wins.  A key used both as a scalar and
 *   as an object is an error ("Parameters 'a.*' used inconsistently").
 * - The implied key: if the FIRST element has no '=' (e.g. "qcow2,file=f"
 *   with implied key "driver"), the whole element is the value of the
 *   implied key.  Later elements without '=' are errors
 *   ("Expected '=' after parameter 'x'").  The caller picks the implied
 *   key per option, as qemu-storage-daemon does (e.g. "type" for --export,
 *   "qom-type" for --object).
 * - Help: if @help is non-NULL, an element "help" or "?" sets *help to
 *   true (and is otherwise ignored).  If @help is NULL, "help" is an
 *   ordinary element (so it may be the implied key's value).
 *
 * - Values must be valid UTF-8 (JSON strings are): "Parameter 'a' is not
 *   valid UTF-8" otherwise.
 *
 * Error messages use QEMU's wording: "Invalid parameter '%s'",
 * "Expected '=' after parameter '%s'", "Parameters '%s.*' used
 * inconsistently", "Parameter '%s' missing", "Parameter '%s' is too long".
 */
#ifndef QEMU_KEYVAL_H
#define QEMU_KEYVAL_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <jansson.h>

/*
 * Parse @params.  Returns a new reference to a JSON object (possibly
 * empty), or NULL with *errp set.  @implied_key may be NULL.  If @help is
 * non-NULL it is set to whether help was requested.
 */
json_t *keyval_parse(const char *params, const char *implied_key,
                     bool *help, Error **errp);

/*
 * Merge @src into @dest (both objects, as keyval_parse() returns them):
 * nested objects merge recursively, lists are appended, scalars from @src
 * replace those in @dest.  A key that is an object/list on one side and
 * something else on the other is an error ("Parameter 'a.b' used
 * inconsistently"); @dest may then be partially merged.
 */
bool keyval_merge(json_t *dest, const json_t *src, Error **errp);

/*
 * What qemu-storage-daemon does with an option argument: if @arg starts
 * with '{' it is JSON (scalars keep their JSON types; a syntax error
 * gives "JSON parse error, <jansson message>"); otherwise it is keyval
 * with @implied_key and no help.  Returns a new reference to an object,
 * or NULL with *errp set.
 */
json_t *keyval_or_json_parse(const char *arg, const char *implied_key,
                             Error **errp);

/*
 * As keyval_or_json_parse(), also reporting in *is_json which syntax was
 * used (the caller must know whether scalars are typed JSON values or
 * keyval strings).
 */
json_t *keyval_or_json_parse_full(const char *arg, const char *implied_key,
                                  bool *is_json, Error **errp);

#endif /* QEMU_KEYVAL_H */
