/*
 * Streaming JSON reader for QMP.
 *
 * A QMP connection carries a stream of JSON texts with no framing: a
 * message may arrive split over many reads, and one read may carry
 * several messages.  JsonStream cuts the byte stream into tokens (a lexer
 * with QEMU's token grammar: double- and single-quoted strings, numbers,
 * lower-case keywords, the six structural characters), tracks the nesting
 * of {} and [] and, whenever a top-level value is complete, parses that
 * message and hands it to the emit callback.
 *
 * Errors follow QEMU's json-streamer and json-parser so that clients see
 * the same GenericError texts ("JSON parse error, expecting value",
 * "JSON parse error, stray '@'", "JSON nesting depth limit exceeded",
 * ...).  After an error the stream resynchronises the way QEMU's does
 * (a lexer error skips input up to the next structural or control
 * character) and later messages are processed normally.
 */
#ifndef MONITOR_JSON_STREAM_H
#define MONITOR_JSON_STREAM_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <jansson.h>

/* g_autoptr(json_t) drops a reference at scope exit (shared guard). */
#ifndef QAPI_JSON_AUTOPTR_DEFINED
#define QAPI_JSON_AUTOPTR_DEFINED
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)
#endif

/* QEMU's limits (qobject/json-streamer.c) */
#define JSON_MAX_TOKEN_SIZE   (64ULL << 20)  /* bytes in one message */
#define JSON_MAX_TOKEN_COUNT  (2ULL << 20)   /* tokens in one message */
#define JSON_MAX_NESTING      (1 << 10)      /* {} + [] depth */

typedef enum JsonTokenType {
    JSON_TOK_LCURLY,
    JSON_TOK_RCURLY,
    JSON_TOK_LSQUARE,
    JSON_TOK_RSQUARE,
    JSON_TOK_COLON,
    JSON_TOK_COMMA,
    JSON_TOK_STRING,    /* text includes the quotes ('...' or "...") */
    JSON_TOK_INTEGER,
    JSON_TOK_FLOAT,
    JSON_TOK_KEYWORD,   /* [a-z]+; the parser knows true/false/null */
} JsonTokenType;

typedef struct JsonToken {
    JsonTokenType type;
    size_t len;
    char text[];        /* NUL-terminated */
} JsonToken;

/*
 * Called once per message: exactly one of @value (a new reference the
 * callee owns) and @err (the callee must free it) is non-NULL.
 */
typedef void JsonStreamEmit(void *opaque, json_t *value, Error *err);

typedef struct JsonStream JsonStream;

JsonStream *json_stream_new(JsonStreamEmit *emit, void *opaque);
void json_stream_free(JsonStream *js);

/* Lower the limits (tests); 0 keeps the default. */
void json_stream_set_limits(JsonStream *js, size_t max_size,
                            unsigned max_nesting);

/* Feed bytes; emit runs for every message completed by them. */
void json_stream_feed(JsonStream *js, const char *buf, size_t len);

/*
 * End of input: a pending number or keyword is terminated, and an
 * unfinished message is reported ("JSON parse error, premature EOI").
 */
void json_stream_flush(JsonStream *js);

/*
 * Parse one complete message given as tokens (json-parser.c).  Returns a
 * new reference, or NULL with @errp set ("JSON parse error, ...").
 */
json_t *json_parse_tokens(JsonToken **tokens, size_t n, Error **errp);

/*
 * Parse a whole string holding exactly one JSON value (command-line
 * options), with the same syntax and error texts as the QMP stream.
 */
json_t *json_parse_string(const char *str, Error **errp);

#endif /* MONITOR_JSON_STREAM_H */
