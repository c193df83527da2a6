/*
 * A tiny NBD client for the NBD server unit tests (test-nbd-server.c,
 * test-nbd-server-splice.c): a coroutine on the other end of a socketpair
 * whose server side is handed to nbd_client_new(), speaking the wire
 * protocol byte by byte (handshake, options, requests, simple and
 * structured replies).
 *
 * Included by the test files only, after their own includes; it uses the
 * includer's AioContext *ctx.  run() drives a scenario (a function run
 * in a coroutine) until it returns.  Not a public header.
 */
#ifndef TESTS_UNIT_NBD_WIRE_CLIENT_H
#define TESTS_UNIT_NBD_WIRE_CLIENT_H

typedef struct TC {
    CoChannel *ch;
    int fd;
} TC;

static TC *tc_new(void)
{
    TC *tc = g_new0(TC, 1);
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    nbd_client_new(sv[0], 10, NULL, NULL);
    tc->fd = sv[1];
    tc->ch = co_channel_new(sv[1], ctx);
    return tc;
}

static void tc_free(TC *tc)
{
    co_channel_free(tc->ch);
    g_free(tc);
}

static void coroutine_fn tc_read(TC *tc, void *buf, size_t len)
{
    Error *err = NULL;

    if (co_channel_read_all(tc->ch, buf, len, &err) < 0) {
        ck_abort_msg("read: %s", error_get_pretty(err));
    }
}

/* true if the server hung up */
static bool coroutine_fn tc_closed(TC *tc)
{
    uint8_t b;

    return co_channel_read_all_eof(tc->ch, &b, 1, NULL) <= 0;
}

static void coroutine_fn tc_write(TC *tc, const void *buf, size_t len)
{
    ck_assert_int_eq(co_channel_write_all(tc->ch, buf, len, NULL), 0);
}

static void put16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return GUINT16_FROM_BE(v);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

static void coroutine_fn tc_greeting(TC *tc, uint32_t cflags)
{
    uint8_t buf[18];

    tc_read(tc, buf, 18);
    ck_assert_uint_eq(get64(buf), NBD_INIT_MAGIC);
    ck_assert_uint_eq(get64(buf + 8), NBD_OPTS_MAGIC);
    ck_assert_uint_eq(get16(buf + 16),
                      NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    put32(buf, cflags);
    tc_write(tc, buf, 4);
}

static void coroutine_fn tc_opt(TC *tc, uint32_t opt, const void *data,
                                uint32_t len)
{
    uint8_t hdr[16];

    put64(hdr, NBD_OPTS_MAGIC);
    put32(hdr + 8, opt);
    put32(hdr + 12, len);
    tc_write(tc, hdr, 16);
    if (len) {
        tc_write(tc, data, len);
    }
}

typedef struct Rep {
    uint32_t opt, type, len;
    uint8_t *data;
} Rep;

static void coroutine_fn tc_rep(TC *tc, Rep *r)
{
    uint8_t hdr[20];

    g_free(r->data);
    tc_read(tc, hdr, 20);
    ck_assert_uint_eq(get64(hdr), NBD_REP_MAGIC);
    r->opt = get32(hdr + 8);
    r->type = get32(hdr + 12);
    r->len = get32(hdr + 16);
    r->data = g_malloc0(r->len + 1);
    tc_read(tc, r->data, r->len);
}

/* Build an INFO/GO payload */
static uint8_t *info_payload(const char *name, const uint16_t *req, int n,
                             uint32_t *len)
{
    size_t nl = strlen(name);
    uint8_t *p = g_malloc(4 + nl + 2 + 2 * n);
    int i;

    put32(p, nl);
    memcpy(p + 4, name, nl);
    put16(p + 4 + nl, n);
    for (i = 0; i < n; i++) {
        put16(p + 6 + nl + 2 * i, req[i]);
    }
    *len = 4 + nl + 2 + 2 * n;
    return p;
}

/* GO to @name; returns the transmission flags, checks the size */
static uint16_t coroutine_fn tc_go(TC *tc, const char *name,
                                   uint64_t size)
{
    uint32_t len;
    g_autofree uint8_t *p = info_payload(name, NULL, 0, &len);
    Rep r = { 0 };
    uint16_t flags = 0;
    bool got_export = false;

    tc_opt(tc, NBD_OPT_GO, p, len);
    for (;;) {
        tc_rep(tc, &r);
        ck_assert_uint_eq(r.opt, NBD_OPT_GO);
        if (r.type == NBD_REP_ACK) {
            break;
        }
        ck_assert_uint_eq(r.type, NBD_REP_INFO);
        if (get16(r.data) == NBD_INFO_EXPORT) {
            ck_assert_uint_eq(r.len, 12);
            ck_assert_uint_eq(get64(r.data + 2), size);
            flags = get16(r.data + 10);
            got_export = true;
        }
    }
    ck_assert(got_export);
    g_free(r.data);
    return flags;
}

static void coroutine_fn tc_structured(TC *tc)
{
    Rep r = { 0 };

    tc_opt(tc, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ACK);
    g_free(r.data);
}

static void coroutine_fn tc_req(TC *tc, uint16_t flags, uint16_t type,
                                uint64_t cookie, uint64_t from, uint32_t len,
                                const void *payload)
{
    uint8_t hdr[28];

    put32(hdr, NBD_REQUEST_MAGIC);
    put16(hdr + 4, flags);
    put16(hdr + 6, type);
    put64(hdr + 8, cookie);
    put64(hdr + 16, from);
    put32(hdr + 24, len);
    tc_write(tc, hdr, 28);
    if (payload) {
        tc_write(tc, payload, len);
    }
}

/* Simple reply: returns the error; reads @len bytes of data on success */
static uint32_t coroutine_fn tc_simple(TC *tc, uint64_t cookie, void *data,
                                       uint32_t len)
{
    uint8_t hdr[16];
    uint32_t err;

    tc_read(tc, hdr, 16);
    ck_assert_uint_eq(get32(hdr), NBD_SIMPLE_REPLY_MAGIC);
    err = get32(hdr + 4);
    ck_assert_uint_eq(get64(hdr + 8), cookie);
    if (!err && len) {
        tc_read(tc, data, len);
    }
    return err;
}

typedef struct Chunk {
    uint16_t flags, type;
    uint64_t cookie;
    uint32_t len;
    uint8_t *payload;
} Chunk;

static void coroutine_fn tc_chunk(TC *tc, Chunk *c)
{
    uint8_t hdr[20];

    g_free(c->payload);
    tc_read(tc, hdr, 20);
    ck_assert_uint_eq(get32(hdr), NBD_STRUCTURED_REPLY_MAGIC);
    c->flags = get16(hdr + 4);
    c->type = get16(hdr + 6);
    c->cookie = get64(hdr + 8);
    c->len = get32(hdr + 16);
    c->payload = g_malloc0(c->len + 1);
    tc_read(tc, c->payload, c->len);
}

/*
 * Structured reply to a READ of [from, from + len) into buf: returns the
 * error (0 on success); counts data and hole chunks; *msg gets an error
 * message.
 */
static uint32_t coroutine_fn tc_sread(TC *tc, uint64_t cookie, uint64_t from,
                                      uint32_t len, uint8_t *buf,
                                      int *ndata, int *nholes, char **msg)
{
    Chunk c = { 0 };
    uint32_t err = 0;

    *ndata = *nholes = 0;
    do {
        tc_chunk(tc, &c);
        ck_assert_uint_eq(c.cookie, cookie);
        switch (c.type) {
        case NBD_REPLY_TYPE_OFFSET_DATA: {
            uint64_t off = get64(c.payload);
            ck_assert_uint_ge(off, from);
            ck_assert_uint_le(off + c.len - 8, from + len);
            memcpy(buf + off - from, c.payload + 8, c.len - 8);
            (*ndata)++;
            break;
        }
        case NBD_REPLY_TYPE_OFFSET_HOLE: {
            uint64_t off = get64(c.payload);
            uint32_t hl = get32(c.payload + 8);
            ck_assert_uint_eq(c.len, 12);
            ck_assert_uint_le(off + hl, from + len);
            memset(buf + off - from, 0, hl);
            (*nholes)++;
            break;
        }
        case NBD_REPLY_TYPE_ERROR:
        case NBD_REPLY_TYPE_ERROR_OFFSET:
            err = get32(c.payload);
            if (msg) {
                *msg = g_strndup((char *)c.payload + 6, get16(c.payload + 4));
            }
            break;
        case NBD_REPLY_TYPE_NONE:
            ck_assert_uint_eq(c.len, 0);
            break;
        default:
            ck_abort_msg("unexpected chunk type %u", c.type);
        }
    } while (!(c.flags & NBD_REPLY_FLAG_DONE));
    g_free(c.payload);
    return err;
}

/* Connect, structured replies on if asked, GO to @name of @size bytes */
static TC *coroutine_fn tc_connect(const char *name, bool structured,
                                   uint64_t size, uint16_t *flags)
{
    TC *tc = tc_new();
    uint16_t f;

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    if (structured) {
        tc_structured(tc);
    }
    f = tc_go(tc, name, size);
    if (flags) {
        *flags = f;
    }
    return tc;
}

static void coroutine_fn tc_disc(TC *tc)
{
    tc_req(tc, 0, NBD_CMD_DISC, 0, 0, 0, NULL);
    ck_assert(tc_closed(tc));
    tc_free(tc);
}

/* ---- scenario runner ---- */

static bool scenario_done;

static void coroutine_fn scenario_entry(void *opaque)
{
    void (*fn)(void) = opaque;

    fn();
    scenario_done = true;
}

static void run(void (*fn)(void))
{
    Coroutine *co = qemu_coroutine_create(scenario_entry, fn);

    scenario_done = false;
    qemu_coroutine_enter(co);
    while (!scenario_done) {
        aio_poll(ctx, true);
    }
    /* let the server side finish tearing down */
    while (aio_poll(ctx, false)) {
    }
}

#endif
