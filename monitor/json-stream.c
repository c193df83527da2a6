/*
 * Streaming JSON reader: lexer + message splitter (see json-stream.h).
 *
 * The lexer is a byte-at-a-time state machine, so a message may be split
 * anywhere, even inside a string escape or a UTF-8 sequence.  Numbers and
 * keywords have no closing delimiter: like QEMU's lexer we only know that
 * "12" is complete when the next byte arrives (or at flush), and that
 * byte is then lexed again from the start state ("lookahead").
 *
 * The splitter collects tokens and counts {} and [] outside strings.  A
 * message is complete when both counts are back to zero (or either went
 * negative, which the parser then reports); a lone scalar is a message by
 * itself.  This mirrors QEMU's json-streamer, including its limits and
 * the way it resets after every error.
 */
#include "qemu/osdep.h"
#include "monitor/json-stream.h"

typedef enum LexState {
    LEX_START,
    LEX_STRING,         /* inside quotes; js->quote is ' or " */
    LEX_STRING_ESC,     /* after a backslash */
    LEX_NEG,            /* after '-' */
    LEX_ZERO,           /* "0" or "-0" */
    LEX_INT,
    LEX_FRAC0,          /* after '.' */
    LEX_FRAC,
    LEX_EXP0,           /* after 'e' */
    LEX_EXP_SIGN,       /* after 'e+' */
    LEX_EXP,
    LEX_KEYWORD,
    LEX_RECOVERY,       /* after an error: skip to a resync point */
} LexState;

struct JsonStream {
    JsonStreamEmit *emit;
    void *opaque;
    size_t max_size;
    unsigned max_nesting;

    /* lexer */
    LexState state;
    char quote;
    GString *tok;

    /* splitter */
    GPtrArray *tokens;          /* JsonToken * */
    size_t tokens_size;
    int brace_count;
    int bracket_count;
};

static void free_token(gpointer p)
{
    g_free(p);
}

JsonStream *json_stream_new(JsonStreamEmit *emit, void *opaque)
{
    JsonStream *js = g_new0(JsonStream, 1);

    js->emit = emit;
    js->opaque = opaque;
    js->max_size = JSON_MAX_TOKEN_SIZE;
    js->max_nesting = JSON_MAX_NESTING;
    js->state = LEX_START;
    js->tok = g_string_new(NULL);
    js->tokens = g_ptr_array_new_with_free_func(free_token);
    return js;
}

void json_stream_free(JsonStream *js)
{
    if (!js) {
        return;
    }
    g_string_free(js->tok, true);
    g_ptr_array_free(js->tokens, true);
    g_free(js);
}

void json_stream_set_limits(JsonStream *js, size_t max_size,
                            unsigned max_nesting)
{
    if (max_size) {
        js->max_size = max_size;
    }
    if (max_nesting) {
        js->max_nesting = max_nesting;
    }
}

static void splitter_reset(JsonStream *js)
{
    g_ptr_array_set_size(js->tokens, 0);
    js->tokens_size = 0;
    js->brace_count = 0;
    js->bracket_count = 0;
}

static void splitter_error(JsonStream *js, Error *err)
{
    splitter_reset(js);
    js->emit(js->opaque, NULL, err);
}

static void splitter_parse(JsonStream *js)
{
    Error *err = NULL;
    json_t *value;

    value = json_parse_tokens((JsonToken **)js->tokens->pdata,
                              js->tokens->len, &err);
    splitter_reset(js);
    js->emit(js->opaque, value, err);
}

/* A complete token (text in js->tok) reaches the splitter. */
static void splitter_token(JsonStream *js, JsonTokenType type)
{
    JsonToken *t;
    Error *err = NULL;

    switch (type) {
    case JSON_TOK_LCURLY:
        js->brace_count++;
        break;
    case JSON_TOK_RCURLY:
        js->brace_count--;
        break;
    case JSON_TOK_LSQUARE:
        js->bracket_count++;
        break;
    case JSON_TOK_RSQUARE:
        js->bracket_count--;
        break;
    default:
        break;
    }

    if (js->tokens_size + js->tok->len + 1 > js->max_size) {
        error_setg(&err, "JSON token size limit exceeded");
    } else if (js->tokens->len + 1 > JSON_MAX_TOKEN_COUNT) {
        error_setg(&err, "JSON token count limit exceeded");
    } else if (js->brace_count + js->bracket_count >
               (int)js->max_nesting) {
        error_setg(&err, "JSON nesting depth limit exceeded");
    }
    if (err) {
        splitter_error(js, err);
        return;
    }

    t = g_malloc(sizeof(*t) + js->tok->len + 1);
    t->type = type;
    t->len = js->tok->len;
    memcpy(t->text, js->tok->str, js->tok->len + 1);
    g_ptr_array_add(js->tokens, t);
    js->tokens_size += t->len;

    if ((js->brace_count > 0 || js->bracket_count > 0) &&
        js->brace_count >= 0 && js->bracket_count >= 0) {
        return;         /* message not complete yet */
    }
    splitter_parse(js);
}

static void lex_emit(JsonStream *js, JsonTokenType type)
{
    splitter_token(js, type);
    g_string_truncate(js->tok, 0);
    js->state = LEX_START;
}

/* js->tok holds the offending text, including the byte that broke it. */
static void lex_error(JsonStream *js)
{
    Error *err = NULL;

    error_setg(&err, "JSON parse error, stray '%s'", js->tok->str);
    g_string_truncate(js->tok, 0);
    js->state = LEX_RECOVERY;
    splitter_error(js, err);
}

static bool is_structural(unsigned char c)
{
    return c == '{' || c == '}' || c == '[' || c == ']' || c == ':' ||
           c == ',';
}

static JsonTokenType structural_type(unsigned char c)
{
    switch (c) {
    case '{':
        return JSON_TOK_LCURLY;
    case '}':
        return JSON_TOK_RCURLY;
    case '[':
        return JSON_TOK_LSQUARE;
    case ']':
        return JSON_TOK_RSQUARE;
    case ':':
        return JSON_TOK_COLON;
    default:
        return JSON_TOK_COMMA;
    }
}

/*
 * Lex one byte.  Returns false if the byte must be lexed again (it
 * terminated a number or keyword, or ended error recovery).
 */
static bool lex_byte(JsonStream *js, unsigned char c)
{
    switch (js->state) {
    case LEX_START:
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            return true;
        }
        g_string_append_c(js->tok, c);
        if (is_structural(c)) {
            lex_emit(js, structural_type(c));
        } else if (c == '"' || c == '\'') {
            js->quote = c;
            js->state = LEX_STRING;
        } else if (c == '-') {
            js->state = LEX_NEG;
        } else if (c == '0') {
            js->state = LEX_ZERO;
        } else if (c >= '1' && c <= '9') {
            js->state = LEX_INT;
        } else if (c >= 'a' && c <= 'z') {
            js->state = LEX_KEYWORD;
        } else {
            lex_error(js);
        }
        return true;

    case LEX_STRING:
        g_string_append_c(js->tok, c);
        if (c == js->quote) {
            lex_emit(js, JSON_TOK_STRING);
        } else if (c == '\\') {
            js->state = LEX_STRING_ESC;
        } else if (c < 0x20) {
            lex_error(js);
        }
        return true;

    case LEX_STRING_ESC:
        /* the parser validates escapes; the lexer only skips one byte */
        g_string_append_c(js->tok, c);
        if (c < 0x20) {
            lex_error(js);
        } else {
            js->state = LEX_STRING;
        }
        return true;

    case LEX_NEG:
    case LEX_ZERO:
    case LEX_INT:
    case LEX_FRAC0:
    case LEX_FRAC:
    case LEX_EXP0:
    case LEX_EXP_SIGN:
    case LEX_EXP: {
        bool digit = c >= '0' && c <= '9';
        LexState next = LEX_RECOVERY;   /* means: error */
        JsonTokenType done = JSON_TOK_INTEGER;
        bool can_end = false;

        switch (js->state) {
        case LEX_NEG:
            next = c == '0' ? LEX_ZERO : digit ? LEX_INT : LEX_RECOVERY;
            break;
        case LEX_ZERO:
            next = c == '.' ? LEX_FRAC0 :
                   (c == 'e' || c == 'E') ? LEX_EXP0 : LEX_RECOVERY;
            can_end = !digit;
            break;
        case LEX_INT:
            next = digit ? LEX_INT : c == '.' ? LEX_FRAC0 :
                   (c == 'e' || c == 'E') ? LEX_EXP0 : LEX_RECOVERY;
            can_end = true;
            break;
        case LEX_FRAC0:
            next = digit ? LEX_FRAC : LEX_RECOVERY;
            break;
        case LEX_FRAC:
            next = digit ? LEX_FRAC :
                   (c == 'e' || c == 'E') ? LEX_EXP0 : LEX_RECOVERY;
            done = JSON_TOK_FLOAT;
            can_end = true;
            break;
        case LEX_EXP0:
            next = digit ? LEX_EXP :
                   (c == '+' || c == '-') ? LEX_EXP_SIGN : LEX_RECOVERY;
            break;
        case LEX_EXP_SIGN:
            next = digit ? LEX_EXP : LEX_RECOVERY;
            break;
        default: /* LEX_EXP */
            next = digit ? LEX_EXP : LEX_RECOVERY;
            done = JSON_TOK_FLOAT;
            can_end = true;
            break;
        }
        if (next != LEX_RECOVERY) {
            g_string_append_c(js->tok, c);
            js->state = next;
            return true;
        }
        if (can_end) {
            lex_emit(js, done);
            return false;
        }
        g_string_append_c(js->tok, c);
        lex_error(js);
        return true;
    }

    case LEX_KEYWORD:
        if (c >= 'a' && c <= 'z') {
            g_string_append_c(js->tok, c);
            return true;
        }
        lex_emit(js, JSON_TOK_KEYWORD);
        return false;

    case LEX_RECOVERY:
        /*
         * Skip to a structural character, a control character other
         * than tab, or one of the bytes that never occur in UTF-8; a
         * client can send such a byte to resynchronise (QMP spec).
         */
        if (is_structural(c) || (c < 0x20 && c != '\t') || c >= 0xfe) {
            js->state = LEX_START;
            return false;
        }
        return true;
    }
    g_assert_not_reached();
}

void json_stream_feed(JsonStream *js, const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (lex_byte(js, (unsigned char)buf[i])) {
            i++;
        }
        /* Don't let a single token grow without bound. */
        if (js->tok->len > js->max_size) {
            Error *err = NULL;

            g_string_truncate(js->tok, 0);
            js->state = LEX_START;
            error_setg(&err, "JSON token size limit exceeded");
            splitter_error(js, err);
        }
    }
}

void json_stream_flush(JsonStream *js)
{
    switch (js->state) {
    case LEX_ZERO:
    case LEX_INT:
        lex_emit(js, JSON_TOK_INTEGER);
        break;
    case LEX_FRAC:
    case LEX_EXP:
        lex_emit(js, JSON_TOK_FLOAT);
        break;
    case LEX_KEYWORD:
        lex_emit(js, JSON_TOK_KEYWORD);
        break;
    case LEX_START:
    case LEX_RECOVERY:
        break;
    default:
        /* an unterminated string or number */
        lex_error(js);
        break;
    }
    js->state = LEX_START;
    g_string_truncate(js->tok, 0);
    if (js->tokens->len) {
        splitter_parse(js);
    }
}

typedef struct ParseOne {
    json_t *value;
    Error *err;
    unsigned count;
} ParseOne;

static void parse_one_emit(void *opaque, json_t *value, Error *err)
{
    ParseOne *p = opaque;

    if (p->count++ || p->err) {
        /* keep the first result; more than one value is an error */
        json_decref(value);
        error_free(err);
        return;
    }
    p->value = value;
    p->err = err;
}

json_t *json_parse_string(const char *str, Error **errp)
{
    ParseOne p = { 0 };
    JsonStream *js = json_stream_new(parse_one_emit, &p);

    json_stream_feed(js, str, strlen(str));
    json_stream_flush(js);
    json_stream_free(js);
    if (!p.err && p.count != 1) {
        json_decref(p.value);
        p.value = NULL;
        error_setg(&p.err, p.count ? "JSON parse error, expecting end of "
                   "input" : "JSON parse error, premature EOI");
    }
    if (p.err) {
        error_propagate(errp, p.err);
        return NULL;
    }
    return p.value;
}
