/*
 * Typed option getters for block nodes.
 *
 * Options reach bdrv_open as a jansson tree from two sources:
 * - keyval (--blockdev driver=file,filename=x,cache.direct=on): every
 *   scalar is a JSON string, nested keys are nested objects;
 * - JSON (--blockdev '{...}', QMP blockdev-add): scalars are typed.
 * QEMU's QAPI input visitor accepts the string form only in keyval mode
 * and the typed form only in JSON mode; we cannot tell them apart once
 * parsed, so a getter accepts either: the typed value, or a string that
 * parses (then errors use the keyval wording "Parameter '%s' expects
 * ...", typed mismatches the JSON wording "Invalid parameter type for
 * '%s', expected: ...").
 *
 * Keys may be dotted: "cache.direct" is looked up as the flat key first
 * (a caller may have flattened), then as opts["cache"]["direct"].  A found
 * key is removed; an object left empty by that is removed too, so that
 * what remains at the end of bdrv_open is exactly the unsupported options.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"

/* Find key; returns the value (borrowed) and the object holding it */
static json_t *opt_lookup(json_t *opts, const char *key, json_t **holder,
                          const char **leaf, json_t **parent_obj,
                          char **parent_key)
{
    json_t *v = json_object_get(opts, key);
    const char *dot;

    *parent_obj = NULL;
    *parent_key = NULL;
    if (v) {
        *holder = opts;
        *leaf = key;
        return v;
    }
    dot = strchr(key, '.');
    if (!dot) {
        return NULL;
    }
    {
        g_autofree char *head = g_strndup(key, dot - key);
        json_t *sub = json_object_get(opts, head);
        json_t *r;
        json_t *pobj;
        char *pkey;

        if (!json_is_object(sub)) {
            return NULL;
        }
        r = opt_lookup(sub, dot + 1, holder, leaf, &pobj, &pkey);
        if (r) {
            if (pobj) {
                /* deeper nesting: keep the innermost parent */
                *parent_obj = pobj;
                *parent_key = pkey;
            } else {
                *parent_obj = opts;
                *parent_key = g_steal_pointer(&head);
            }
        }
        return r;
    }
}

static void opt_remove(json_t *holder, const char *leaf, json_t *parent_obj,
                       char *parent_key)
{
    json_object_del(holder, leaf);
    if (parent_obj && json_object_size(holder) == 0) {
        json_object_del(parent_obj, parent_key);
    }
    g_free(parent_key);
}

json_t *bdrv_opt_take(json_t *opts, const char *key)
{
    json_t *holder, *parent_obj, *v;
    const char *leaf;
    char *parent_key;

    if (!opts) {
        return NULL;
    }
    v = opt_lookup(opts, key, &holder, &leaf, &parent_obj, &parent_key);
    if (!v) {
        return NULL;
    }
    json_incref(v);
    opt_remove(holder, leaf, parent_obj, parent_key);
    return v;
}

/* bdrv_opt_take(), and tell @present (if non-NULL) whether @key was there */
static json_t *opt_take_present(json_t *opts, const char *key, bool *present)
{
    json_t *v = bdrv_opt_take(opts, key);

    if (present) {
        *present = v != NULL;
    }
    return v;
}

bool bdrv_opt_get_str(json_t *opts, const char *key, char **value,
                      bool *present, Error **errp)
{
    json_t *v = opt_take_present(opts, key, present);

    if (!v) {
        return true;
    }
    if (!json_is_string(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: string",
                   key);
        json_decref(v);
        return false;
    }
    g_free(*value);
    *value = g_strdup(json_string_value(v));
    json_decref(v);
    return true;
}

bool bdrv_opt_get_bool(json_t *opts, const char *key, bool *value,
                       bool *present, Error **errp)
{
    json_t *v = opt_take_present(opts, key, present);
    bool ok = true;

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *value = json_is_true(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);

        if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "yes")) {
            *value = true;
        } else if (!strcmp(s, "off") || !strcmp(s, "false") ||
                   !strcmp(s, "no")) {
            *value = false;
        } else {
            error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
            ok = false;
        }
    } else {
        error_setg(errp, "Invalid parameter type for '%s', expected: boolean",
                   key);
        ok = false;
    }
    json_decref(v);
    return ok;
}

bool bdrv_opt_get_int(json_t *opts, const char *key, int64_t *value,
                      bool *present, Error **errp)
{
    json_t *v = opt_take_present(opts, key, present);
    bool ok = true;

    if (!v) {
        return true;
    }
    if (json_is_integer(v)) {
        *value = json_integer_value(v);
    } else if (json_is_string(v)) {
        int64_t r;

        if (qemu_strtoi64(json_string_value(v), NULL, 0, &r) < 0) {
            error_setg(errp, "Parameter '%s' expects integer", key);
            ok = false;
        } else {
            *value = r;
        }
    } else {
        error_setg(errp, "Invalid parameter type for '%s', expected: integer",
                   key);
        ok = false;
    }
    json_decref(v);
    return ok;
}

/*
 * Shared body of bdrv_opt_get_uint() and bdrv_opt_get_size(): a
 * non-negative integer, or a string parsed as a uint64 (no leading '-')
 * or, with @is_size, as a size with an optional suffix.
 */
static bool opt_get_unsigned(json_t *opts, const char *key, bool is_size,
                             uint64_t *value, bool *present, Error **errp)
{
    json_t *v = opt_take_present(opts, key, present);
    bool ok = true;

    if (!v) {
        return true;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *value = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        uint64_t r;
        int ret = is_size ? qemu_strtosz(s, NULL, &r)
                          : qemu_strtou64(s, NULL, 0, &r);

        if (ret < 0 || (!is_size && s[0] == '-')) {
            error_setg(errp, "Parameter '%s' expects %s", key,
                       is_size ? "size" : "uint64");
            ok = false;
        } else {
            *value = r;
        }
    } else if (json_is_integer(v)) {
        error_setg(errp, "Parameter '%s' expects uint64", key);
        ok = false;
    } else {
        error_setg(errp, "Invalid parameter type for '%s', expected: integer",
                   key);
        ok = false;
    }
    json_decref(v);
    return ok;
}

bool bdrv_opt_get_uint(json_t *opts, const char *key, uint64_t *value,
                       bool *present, Error **errp)
{
    return opt_get_unsigned(opts, key, false, value, present, errp);
}

bool bdrv_opt_get_size(json_t *opts, const char *key, uint64_t *value,
                       bool *present, Error **errp)
{
    return opt_get_unsigned(opts, key, true, value, present, errp);
}

bool bdrv_opt_get_enum(json_t *opts, const char *key,
                       const char *const *names, int *value, bool *present,
                       Error **errp)
{
    g_autofree char *s = NULL;
    bool here = false;
    int i;

    if (!bdrv_opt_get_str(opts, key, &s, &here, errp)) {
        return false;
    }
    if (present) {
        *present = here;
    }
    if (!here) {
        return true;
    }
    for (i = 0; names[i]; i++) {
        if (!strcmp(names[i], s)) {
            *value = i;
            return true;
        }
    }
    error_setg(errp, "Parameter '%s' does not accept value '%s'", key, s);
    return false;
}

/* First leaf key of opts, dotted ("cache.foo") */
static char *first_leaf_key(json_t *opts)
{
    const char *k;
    json_t *v;

    json_object_foreach(opts, k, v) {
        if (json_is_object(v) && json_object_size(v) > 0) {
            g_autofree char *sub = first_leaf_key(v);

            return g_strdup_printf("%s.%s", k, sub);
        }
        return g_strdup(k);
    }
    return NULL;
}

bool bdrv_opt_check_empty(BlockDriverState *bs, json_t *opts, Error **errp)
{
    g_autofree char *key = NULL;

    if (!opts || json_object_size(opts) == 0) {
        return true;
    }
    key = first_leaf_key(opts);
    if (bs->drv && !bs->drv->is_format && !bs->drv->is_filter) {
        error_setg(errp, "Block protocol '%s' doesn't support the option '%s'",
                   bs->drv->format_name, key);
    } else {
        error_setg(errp, "Block format '%s' does not support the option '%s'",
                   bs->drv ? bs->drv->format_name : "?", key);
    }
    return false;
}
