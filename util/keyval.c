/*
 * keyval option parsing into a jansson tree; the syntax and semantics are
 * documented in include/qemu/keyval.h.
 *
 * Parsing is two passes, like QEMU's:
 * 1. Each "key=value" element is split into key fragments and stored into
 *    a tree of JSON objects; the value is always a JSON string.  Index
 *    fragments ("0", "1", ...) are stored as ordinary object keys.
 * 2. keyval_listify() walks the finished tree bottom-up and turns every
 *    object whose keys are all indices into an array, checking that the
 *    indices are 0..n-1.  Doing this at the end lets "a.1=y,a.0=x" work in
 *    any order.
 * Error messages name keys by their full dotted path; the path is kept in
 * a GString while descending.
 */
#include "qemu/osdep.h"
#include "qemu/keyval.h"
#include "qemu/cutils.h"

/* QEMU's limit: key fragments must be shorter than this. */
#define KEYVAL_FRAG_MAX 128

static void json_decref_ptr(json_t **p)
{
    if (*p) {
        json_decref(*p);
    }
}
#define g_auto_json __attribute__((cleanup(json_decref_ptr)))

static bool is_key_char(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

static bool is_help_option(const char *s, size_t len)
{
    return (len == 4 && !strncmp(s, "help", 4)) ||
           (len == 1 && s[0] == '?');
}

/*
 * If @key (NUL-terminated) is an index, i.e. all decimal digits, return
 * true and store its value (saturated to UINT_MAX) in *index.
 */
static bool key_to_index(const char *key, unsigned int *index)
{
    unsigned int v;
    int ret;

    if (!*key) {
        return false;
    }
    for (const char *p = key; *p; p++) {
        if (!g_ascii_isdigit(*p)) {
            return false;
        }
    }
    ret = qemu_strtoui(key, NULL, 10, &v);
    assert(ret == 0 || ret == -ERANGE);
    *index = v;
    return true;
}

/*
 * Check the syntax of the dotted key [@key, @key_end): non-empty fragments
 * of key characters, each shorter than KEYVAL_FRAG_MAX, the first one not
 * an index (the top level is an object, never a list).
 */
static bool keyval_check_key(const char *key, const char *key_end,
                             Error **errp)
{
    const char *s = key;

    for (;;) {
        const char *frag = s;
        size_t len;

        while (s < key_end && is_key_char(*s)) {
            s++;
        }
        len = s - frag;
        if (len == 0 || (s < key_end && *s != '.')) {
            error_setg(errp, "Invalid parameter '%.*s'",
                       (int)(key_end - key), key);
            return false;
        }
        if (len >= KEYVAL_FRAG_MAX) {
            if (frag == key && s == key_end) {
                error_setg(errp, "Parameter '%.*s' is too long",
                           (int)len, frag);
            } else {
                error_setg(errp, "Parameter fragment '%.*s' is too long",
                           (int)len, frag);
            }
            return false;
        }
        if (frag == key && strspn(frag, "0123456789") >= len) {
            error_setg(errp, "Invalid parameter '%.*s'",
                       (int)(key_end - key), key);
            return false;
        }
        if (s == key_end) {
            return true;
        }
        s++;            /* skip '.'; an empty fragment follows if at end */
    }
}

/*
 * Store @value (a new JSON string, stolen) at the dotted key
 * [@key, @key_end) in @root, creating intermediate objects.  The key must
 * have passed keyval_check_key().
 */
static bool keyval_put(json_t *root, const char *key, const char *key_end,
                       json_t *value, Error **errp)
{
    g_auto_json json_t *val = value;
    json_t *cur = root;
    const char *s = key;

    for (;;) {
        size_t len = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "abcdefghijklmnopqrstuvwxyz0123456789-_");
        char name[KEYVAL_FRAG_MAX];
        json_t *old;

        len = MIN(len, (size_t)(key_end - s));
        assert(len > 0 && len < KEYVAL_FRAG_MAX);
        memcpy(name, s, len);
        name[len] = '\0';
        s += len;
        old = json_object_get(cur, name);

        if (s == key_end) {
            /* Last fragment: the scalar goes here. */
            if (old && !json_is_string(old)) {
                error_setg(errp, "Parameters '%.*s.*' used inconsistently",
                           (int)(key_end - key), key);
                return false;
            }
            json_object_set_new(cur, name, g_steal_pointer(&val));
            return true;
        }
        if (!old) {
            old = json_object();
            json_object_set_new(cur, name, old);
        } else if (!json_is_object(old)) {
            error_setg(errp, "Parameters '%.*s.*' used inconsistently",
                       (int)(s - key), key);
            return false;
        }
        cur = old;
        s++;            /* skip '.' */
    }
}

/*
 * Parse one element at @params into @root.  Returns the start of the next
 * element (after the separating comma), or NULL on error.
 */
static const char *keyval_parse_one(json_t *root, const char *params,
                                    const char *implied_key, bool *help,
                                    Error **errp)
{
    size_t len = strcspn(params, "=,");
    const char *key, *key_end, *s;
    g_autoptr(GString) val = NULL;

    if (len && params[len] != '=' && help && is_help_option(params, len)) {
        *help = true;
        s = params + len;
        return *s == ',' ? s + 1 : s;
    }

    if (len && params[len] != '=' && implied_key) {
        key = implied_key;
        key_end = implied_key + strlen(implied_key);
        s = params;
    } else {
        key = params;
        key_end = params + len;
        s = key_end;
        /* A bad key is reported before a missing '='. */
        if (!keyval_check_key(key, key_end, errp)) {
            return NULL;
        }
        if (*s != '=') {
            error_setg(errp, "Expected '=' after parameter '%.*s'",
                       (int)len, key);
            return NULL;
        }
        s++;
    }
    if (key == implied_key && !keyval_check_key(key, key_end, errp)) {
        return NULL;
    }

    val = g_string_new(NULL);
    while (*s) {
        if (*s == ',') {
            if (s[1] != ',') {
                s++;
                break;
            }
            s++;        /* ",," is an escaped comma */
        }
        g_string_append_c(val, *s);
        s++;
    }

    /* jansson strings are UTF-8; say so rather than drop the value. */
    if (!g_utf8_validate(val->str, val->len, NULL)) {
        error_setg(errp, "Parameter '%.*s' is not valid UTF-8",
                   (int)(key_end - key), key);
        return NULL;
    }
    if (!keyval_put(root, key, key_end, json_string(val->str), errp)) {
        return NULL;
    }
    return s;
}

/*
 * Turn index-keyed objects below (and including) @obj into arrays.
 * @path is the dotted path of @obj with a trailing '.' (or empty for the
 * root).  Returns a new reference to the replacement value for @obj (an
 * array, or @obj itself), or NULL on error.
 */
static json_t *keyval_listify(json_t *obj, GString *path, Error **errp)
{
    size_t n = json_object_size(obj);
    size_t path_len = path->len;
    bool has_index = false, has_member = false;
    const char *key;
    json_t *value;
    void *iter;
    g_autofree json_t **elt = NULL;
    json_t *list;

    /* Children first.  Replacing a member's value keeps the iterator valid. */
    for (iter = json_object_iter(obj); iter;
         iter = json_object_iter_next(obj, iter)) {
        unsigned int index;
        json_t *repl;

        key = json_object_iter_key(iter);
        value = json_object_iter_value(iter);
        if (key_to_index(key, &index)) {
            has_index = true;
        } else {
            has_member = true;
        }
        if (!json_is_object(value)) {
            continue;
        }
        g_string_append_printf(path, "%s.", key);
        repl = keyval_listify(value, path, errp);
        g_string_truncate(path, path_len);
        if (!repl) {
            return NULL;
        }
        if (repl != value) {
            json_object_iter_set_new(obj, iter, repl);
        } else {
            json_decref(repl);
        }
    }

    if (has_index && has_member) {
        error_setg(errp, "Parameters '%s*' used inconsistently", path->str);
        return NULL;
    }
    if (!has_index) {
        return json_incref(obj);
    }

    /* All keys are indices: they must be exactly 0..n-1. */
    elt = g_new0(json_t *, n);
    json_object_foreach(obj, key, value) {
        unsigned int index;

        key_to_index(key, &index);
        if (index >= n) {
            continue;           /* reported as a gap below */
        }
        if (elt[index]) {
            /* "a.1" and "a.01" */
            error_setg(errp, "Parameter '%s%u' used inconsistently",
                       path->str, index);
            return NULL;
        }
        elt[index] = value;
    }
    list = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!elt[i]) {
            error_setg(errp, "Parameter '%s%zu' missing", path->str, i);
            json_decref(list);
            return NULL;
        }
        json_array_append(list, elt[i]);
    }
    return list;
}

json_t *keyval_parse(const char *params, const char *implied_key,
                     bool *help, Error **errp)
{
    g_auto_json json_t *root = json_object();
    g_auto_json json_t *listified = NULL;
    g_autoptr(GString) path = g_string_new(NULL);
    const char *s = params;

    if (help) {
        *help = false;
    }
    while (*s) {
        s = keyval_parse_one(root, s, implied_key, help, errp);
        if (!s) {
            return NULL;
        }
        implied_key = NULL;     /* only for the first element */
    }

    listified = keyval_listify(root, path, errp);
    if (!listified) {
        return NULL;
    }
    /* Top-level keys are never indices, so the root stays an object. */
    assert(listified == root);
    return g_steal_pointer(&root);
}

static bool keyval_merge_at(json_t *dest, const json_t *src, GString *path,
                            Error **errp)
{
    size_t path_len = path->len;
    const char *key;
    json_t *value;

    /* jansson's iteration API takes non-const objects, but only reads. */
    json_object_foreach((json_t *)src, key, value) {
        json_t *old = json_object_get(dest, key);

        if (old && (json_is_object(old) != json_is_object(value) ||
                    json_is_array(old) != json_is_array(value))) {
            error_setg(errp, "Parameter '%s%s' used inconsistently",
                       path->str, key);
            return false;
        }
        if (old && json_is_object(old)) {
            bool ok;

            g_string_append_printf(path, "%s.", key);
            ok = keyval_merge_at(old, value, path, errp);
            g_string_truncate(path, path_len);
            if (!ok) {
                return false;
            }
        } else if (old && json_is_array(old)) {
            size_t i;
            json_t *elem;

            json_array_foreach(value, i, elem) {
                json_array_append_new(old, json_deep_copy(elem));
            }
        } else {
            json_object_set_new(dest, key, json_deep_copy(value));
        }
    }
    return true;
}

bool keyval_merge(json_t *dest, const json_t *src, Error **errp)
{
    g_autoptr(GString) path = g_string_new(NULL);

    assert(json_is_object(dest) && json_is_object(src));
    return keyval_merge_at(dest, src, path, errp);
}

json_t *keyval_or_json_parse_full(const char *arg, const char *implied_key,
                                  bool *is_json, Error **errp)
{
    json_error_t jerr;
    json_t *obj;

    if (arg[0] != '{') {
        if (is_json) {
            *is_json = false;
        }
        return keyval_parse(arg, implied_key, NULL, errp);
    }
    if (is_json) {
        *is_json = true;
    }
    obj = json_loads(arg, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        error_setg(errp, "JSON parse error, %s", jerr.text);
        return NULL;
    }
    /* Starts with '{' and parsed: jansson only returns an object here. */
    assert(json_is_object(obj));
    return obj;
}

json_t *keyval_or_json_parse(const char *arg, const char *implied_key,
                             Error **errp)
{
    return keyval_or_json_parse_full(arg, implied_key, NULL, errp);
}
