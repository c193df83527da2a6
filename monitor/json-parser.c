/*
 * JSON parser for QMP: tokens of one complete message -> jansson value.
 *
 * A recursive-descent parser over the lexer's tokens (json-stream.c) that
 * builds jansson values and reports errors with QEMU's json-parser
 * wording ("expecting value", "missing : in object pair", "duplicate
 * key", ...), prefixed "JSON parse error, ".  The first error wins.
 *
 * QEMU extensions kept for compatibility: single-quoted strings, the
 * escape \' in either kind of string, and \u0000 (jansson strings carry
 * an explicit length).  Integers outside int64 become doubles (QEMU keeps
 * values up to UINT64_MAX exact; jansson cannot represent them).
 */
#include "qemu/osdep.h"
#include "monitor/json-stream.h"

typedef struct JsonParser {
    JsonToken **tokens;
    size_t n;
    size_t pos;
    Error *err;
} JsonParser;

static void G_GNUC_PRINTF(2, 3) parse_error(JsonParser *p,
                                             const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (p->err) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(&p->err, "JSON parse error, %s", msg);
}

static JsonToken *peek_token(JsonParser *p)
{
    return p->pos < p->n ? p->tokens[p->pos] : NULL;
}

static JsonToken *pop_token(JsonParser *p)
{
    return p->pos < p->n ? p->tokens[p->pos++] : NULL;
}

static int hex4(const char *s)
{
    int v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        if (!g_ascii_isxdigit(s[i])) {
            return -1;
        }
        v = v * 16 + g_ascii_xdigit_value(s[i]);
    }
    return v;
}

static json_t *parse_string(JsonParser *p, JsonToken *tok)
{
    const char *ptr = tok->text + 1;
    const char *end = tok->text + tok->len - 1;   /* the closing quote */
    g_autoptr(GString) s = g_string_sized_new(tok->len);

    while (ptr < end) {
        if (*ptr == '\\') {
            const char *beg = ptr;
            gunichar cp;
            char utf8[6];

            ptr++;
            switch (*ptr++) {
            case '"':
                g_string_append_c(s, '"');
                break;
            case '\'':
                g_string_append_c(s, '\'');
                break;
            case '\\':
                g_string_append_c(s, '\\');
                break;
            case '/':
                g_string_append_c(s, '/');
                break;
            case 'b':
                g_string_append_c(s, '\b');
                break;
            case 'f':
                g_string_append_c(s, '\f');
                break;
            case 'n':
                g_string_append_c(s, '\n');
                break;
            case 'r':
                g_string_append_c(s, '\r');
                break;
            case 't':
                g_string_append_c(s, '\t');
                break;
            case 'u': {
                int v = end - ptr >= 4 ? hex4(ptr) : -1;
                size_t adv = MIN(4, (size_t)(tok->text + tok->len - ptr));

                ptr += adv;
                if (v >= 0xd800 && v <= 0xdbff && end - ptr >= 6 &&
                    ptr[0] == '\\' && ptr[1] == 'u') {
                    int lo = hex4(ptr + 2);

                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
                        ptr += 6;
                    }
                }
                if (v < 0 || (v >= 0xd800 && v <= 0xdfff)) {
                    parse_error(p, "%.*s is not a valid Unicode character",
                                (int)(ptr - beg), beg);
                    return NULL;
                }
                cp = v;
                g_string_append_len(s, utf8, g_unichar_to_utf8(cp, utf8));
                break;
            }
            default:
                parse_error(p, "invalid escape sequence in string");
                return NULL;
            }
        } else {
            gunichar cp = g_utf8_get_char_validated(ptr, end - ptr);

            if (cp == (gunichar)-1 || cp == (gunichar)-2) {
                parse_error(p, "invalid UTF-8 sequence in string");
                return NULL;
            }
            {
                const char *next = g_utf8_next_char(ptr);

                g_string_append_len(s, ptr, next - ptr);
                ptr = next;
            }
        }
    }
    return json_stringn(s->str, s->len);
}

static json_t *parse_number(JsonParser *p, JsonToken *tok)
{
    if (tok->type == JSON_TOK_INTEGER) {
        char *endp;
        long long v;

        errno = 0;
        v = strtoll(tok->text, &endp, 10);
        if (!errno && !*endp) {
            return json_integer(v);
        }
        /* out of range: a double, as QEMU does beyond UINT64_MAX */
    }
    return json_real(g_ascii_strtod(tok->text, NULL));
}

static json_t *parse_value(JsonParser *p);

static bool parse_pair(JsonParser *p, json_t *obj)
{
    g_autoptr(json_t) key = NULL;
    g_autoptr(json_t) value = NULL;
    JsonToken *tok;

    if (!peek_token(p)) {
        parse_error(p, "premature EOI");
        return false;
    }
    key = parse_value(p);
    if (!key || !json_is_string(key)) {
        parse_error(p, "key is not a string in object");
        return false;
    }
    tok = pop_token(p);
    if (!tok) {
        parse_error(p, "premature EOI");
        return false;
    }
    if (tok->type != JSON_TOK_COLON) {
        parse_error(p, "missing : in object pair");
        return false;
    }
    value = parse_value(p);
    if (!value) {
        parse_error(p, "Missing value in dict");
        return false;
    }
    /* keys with embedded NULs cannot be jansson keys */
    if (strlen(json_string_value(key)) != json_string_length(key)) {
        parse_error(p, "key with NUL character in object");
        return false;
    }
    if (json_object_get(obj, json_string_value(key))) {
        parse_error(p, "duplicate key");
        return false;
    }
    json_object_set(obj, json_string_value(key), value);
    return true;
}

static json_t *parse_object(JsonParser *p)
{
    g_autoptr(json_t) obj = json_object();
    JsonToken *tok;

    pop_token(p);       /* '{' */
    tok = peek_token(p);
    if (!tok) {
        parse_error(p, "premature EOI");
        return NULL;
    }
    if (tok->type == JSON_TOK_RCURLY) {
        pop_token(p);
        return g_steal_pointer(&obj);
    }
    if (!parse_pair(p, obj)) {
        return NULL;
    }
    for (;;) {
        tok = pop_token(p);
        if (!tok) {
            parse_error(p, "premature EOI");
            return NULL;
        }
        if (tok->type == JSON_TOK_RCURLY) {
            return g_steal_pointer(&obj);
        }
        if (tok->type != JSON_TOK_COMMA) {
            parse_error(p, "expected separator in dict");
            return NULL;
        }
        if (!parse_pair(p, obj)) {
            return NULL;
        }
    }
}

static json_t *parse_array(JsonParser *p)
{
    g_autoptr(json_t) arr = json_array();
    JsonToken *tok;
    json_t *elem;

    pop_token(p);       /* '[' */
    tok = peek_token(p);
    if (!tok) {
        parse_error(p, "premature EOI");
        return NULL;
    }
    if (tok->type == JSON_TOK_RSQUARE) {
        pop_token(p);
        return g_steal_pointer(&arr);
    }
    for (;;) {
        elem = parse_value(p);
        if (!elem) {
            parse_error(p, "expecting value");
            return NULL;
        }
        json_array_append_new(arr, elem);
        tok = pop_token(p);
        if (!tok) {
            parse_error(p, "premature EOI");
            return NULL;
        }
        if (tok->type == JSON_TOK_RSQUARE) {
            return g_steal_pointer(&arr);
        }
        if (tok->type != JSON_TOK_COMMA) {
            parse_error(p, "expected separator in list");
            return NULL;
        }
    }
}

static json_t *parse_value(JsonParser *p)
{
    JsonToken *tok = peek_token(p);

    if (!tok) {
        parse_error(p, "premature EOI");
        return NULL;
    }
    switch (tok->type) {
    case JSON_TOK_LCURLY:
        return parse_object(p);
    case JSON_TOK_LSQUARE:
        return parse_array(p);
    case JSON_TOK_STRING:
        pop_token(p);
        return parse_string(p, tok);
    case JSON_TOK_INTEGER:
    case JSON_TOK_FLOAT:
        pop_token(p);
        return parse_number(p, tok);
    case JSON_TOK_KEYWORD:
        pop_token(p);
        if (!strcmp(tok->text, "true")) {
            return json_true();
        } else if (!strcmp(tok->text, "false")) {
            return json_false();
        } else if (!strcmp(tok->text, "null")) {
            return json_null();
        }
        parse_error(p, "invalid keyword '%s'", tok->text);
        return NULL;
    default:
        parse_error(p, "expecting value");
        return NULL;
    }
}

json_t *json_parse_tokens(JsonToken **tokens, size_t n, Error **errp)
{
    JsonParser p = { .tokens = tokens, .n = n };
    json_t *value;

    value = parse_value(&p);
    if (p.err) {
        json_decref(value);
        error_propagate(errp, p.err);
        return NULL;
    }
    /* the splitter hands over exactly one value; be defensive anyway */
    if (p.pos != p.n) {
        json_decref(value);
        error_setg(errp, "JSON parse error, expecting end of input");
        return NULL;
    }
    return value;
}
