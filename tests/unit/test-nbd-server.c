/*
 * NBD server unit tests: the server runs in-process; a tiny NBD client
 * (nbd-wire-client.h plus the command helpers here: a coroutine on the
 * other end of a socketpair) speaks the wire protocol byte by byte, so
 * every handshake variant, option error, command, flag and hostile input
 * can be checked exactly.
 *
 * Images: "disk" is a 1 MiB sparse raw file whose first 64 KiB hold 0xaa;
 * "top" is a qcow2 over a qcow2 "base" (for qemu:allocation-depth).
 */
#include "qemu/osdep.h"
#include "qapi-types.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "block/nbd.h"
#include "block/export.h"
#include "qemu/co-channel.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"
#include "qapi/qmp-event.h"
#include "qapi-commands.h"
#include <check.h>
#include <sys/socket.h>

#define DISK_SIZE   (1 * MiB)

static char *tmpdir;
static AioContext *ctx;
static GPtrArray *events;
static BlockDriverState *disk_bs, *top_bs;

static void capture_event(const char *name, json_t *ev)
{
    json_t *data = json_object_get(ev, "data");
    json_t *id = data ? json_object_get(data, "id") : NULL;

    g_ptr_array_add(events, g_strdup_printf("%s:%s", name,
                                            id ? json_string_value(id) : ""));
}

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockDriverState *open_node(const char *json)
{
    json_error_t jerr;
    g_autoptr(json_t) opts = json_loads(json, 0, &jerr);
    Error *err = NULL;
    BlockDriverState *bs;

    ck_assert_ptr_nonnull(opts);
    bs = bdrv_open_flags(opts, BDRV_O_RDWR, &err);
    if (!bs) {
        error_report_err(err);
    }
    ck_assert_ptr_nonnull(bs);
    return bs;
}

static void make_images(void)
{
    g_autofree char *disk = tpath("disk.raw");
    g_autofree char *base = tpath("base.qcow2");
    g_autofree char *top = tpath("top.qcow2");
    g_autofree char *json = NULL;
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    json_error_t jerr;
    Error *err = NULL;
    BlockBackend *blk;
    json_t *o;
    int fd;

    fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    memset(buf, 0xaa, 64 * KiB);
    ck_assert_int_eq(pwrite(fd, buf, 64 * KiB, 0), 64 * KiB);
    close(fd);
    json = g_strdup_printf("{\"driver\": \"raw\", \"node-name\": \"disk\", "
                           "\"file\": {\"driver\": \"file\", "
                           "\"filename\": \"%s\"}}", disk);
    disk_bs = open_node(json);
    g_clear_pointer(&json, g_free);

    o = json_loads("{\"size\": 1048576}", 0, &jerr);
    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, base, o, &err), 0);
    json_decref(o);
    /* base: data at [0, 64k); top: data at [128k, 192k) */
    blk = blk_new_open(base, "qcow2", NULL, BDRV_O_RDWR, &error_abort);
    memset(buf, 0x11, 64 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 0, 64 * KiB, buf, 0), 0);
    blk_unref(blk);
    o = json_loads("{\"size\": 1048576, \"backing_file\": \"base.qcow2\", "
                   "\"backing_fmt\": \"qcow2\"}", 0, &jerr);
    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, top, o, &err), 0);
    json_decref(o);
    blk = blk_new_open(top, "qcow2", NULL, BDRV_O_RDWR, &error_abort);
    memset(buf, 0x22, 64 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 128 * KiB, 64 * KiB, buf, 0), 0);
    blk_unref(blk);
    json = g_strdup_printf("{\"driver\": \"qcow2\", \"node-name\": \"top\", "
                           "\"file\": {\"driver\": \"file\", "
                           "\"filename\": \"%s\"}}", top);
    top_bs = open_node(json);
}

static void start_server(uint32_t max_conn)
{
    g_autofree char *sock = tpath("nbd.sock");
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };

    addr.u.q_unix.path = sock;
    ck_assert(nbd_server_start(&addr, NULL, NULL, max_conn, 10,
                               &error_abort));
}

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    ctx = qemu_get_aio_context();
    tmpdir = g_dir_make_tmp("test-nbd-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
    events = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_emitter(capture_event);
    make_images();
    start_server(0);
}

static void teardown(void)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    nbd_server_shutdown();
    while (aio_poll(ctx, false)) {
    }
    ck_assert_uint_eq(nbd_client_count(), 0);
    ck_assert_uint_eq(blk_exp_count(), 0);
    bdrv_unref(disk_bs);
    bdrv_unref(top_bs);
    dir = g_dir_open(tmpdir, 0, NULL);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = tpath(name);
        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    g_ptr_array_free(events, true);
}

static void add_export(const char *id, const char *node, const char *name,
                       bool writable, bool depth, const char *desc)
{
    BlockExportOptions *o = g_new0(BlockExportOptions, 1);
    Error *err = NULL;

    o->type = BLOCK_EXPORT_TYPE_NBD;
    o->id = g_strdup(id);
    o->node_name = g_strdup(node);
    o->has_writable = true;
    o->writable = writable;
    o->u.nbd.name = g_strdup(name);
    o->u.nbd.description = g_strdup(desc);
    o->u.nbd.has_allocation_depth = depth;
    o->u.nbd.allocation_depth = depth;
    if (!blk_exp_add(o, &err)) {
        error_report_err(err);
        ck_abort();
    }
    qapi_free_BlockExportOptions(o);
}

/* ---- the test client ---- */

#include "nbd-wire-client.h"

/* LIST/SET_META_CONTEXT; returns "id=name,..." of the replies */
static char *coroutine_fn tc_meta(TC *tc, uint32_t opt, const char *name,
                                  const char *const *queries, int n,
                                  uint32_t *final_type)
{
    GString *out = g_string_new("");
    size_t nl = strlen(name), total = 4 + nl + 4;
    g_autofree uint8_t *p = NULL;
    size_t off;
    Rep r = { 0 };
    int i;

    for (i = 0; i < n; i++) {
        total += 4 + strlen(queries[i]);
    }
    p = g_malloc(total);
    put32(p, nl);
    memcpy(p + 4, name, nl);
    put32(p + 4 + nl, n);
    off = 8 + nl;
    for (i = 0; i < n; i++) {
        put32(p + off, strlen(queries[i]));
        memcpy(p + off + 4, queries[i], strlen(queries[i]));
        off += 4 + strlen(queries[i]);
    }
    tc_opt(tc, opt, p, total);
    for (;;) {
        tc_rep(tc, &r);
        if (r.type != NBD_REP_META_CONTEXT) {
            break;
        }
        g_string_append_printf(out, "%s%u=%s", out->len ? "," : "",
                               get32(r.data), (char *)r.data + 4);
    }
    *final_type = r.type;
    g_free(r.data);
    return g_string_free(out, false);
}

/* Structured reply without data: returns the error */
static uint32_t coroutine_fn tc_sresult(TC *tc, uint64_t cookie, char **msg)
{
    int d, h;

    return tc_sread(tc, cookie, 0, 0, NULL, &d, &h, msg);
}

/* Connect, structured replies on, GO to @name */
static TC *coroutine_fn tc_open(const char *name, bool structured,
                                uint16_t *flags)
{
    return tc_connect(name, structured, DISK_SIZE, flags);
}

/* ---- handshake ---- */

static void coroutine_fn sc_go_info(void)
{
    TC *tc = tc_new();
    static const uint16_t reqs[] = {
        NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, 999,
    };
    uint32_t len;
    g_autofree uint8_t *p = info_payload("exp", reqs, 4, &len);
    uint8_t buf[16];
    Rep r = { 0 };
    int seen = 0;

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    /* INFO first: stays in haggling */
    tc_opt(tc, NBD_OPT_INFO, p, len);
    do {
        tc_rep(tc, &r);
        ck_assert_uint_eq(r.opt, NBD_OPT_INFO);
    } while (r.type != NBD_REP_ACK);
    tc_opt(tc, NBD_OPT_GO, p, len);
    for (;;) {
        tc_rep(tc, &r);
        ck_assert_uint_eq(r.opt, NBD_OPT_GO);
        if (r.type == NBD_REP_ACK) {
            break;
        }
        ck_assert_uint_eq(r.type, NBD_REP_INFO);
        switch (get16(r.data)) {
        case NBD_INFO_NAME:
            ck_assert_str_eq((char *)r.data + 2, "exp");
            seen |= 1;
            break;
        case NBD_INFO_DESCRIPTION:
            ck_assert_str_eq((char *)r.data + 2, "a disk");
            seen |= 2;
            break;
        case NBD_INFO_BLOCK_SIZE:
            ck_assert_uint_eq(r.len, 14);
            ck_assert_uint_ge(get32(r.data + 2), 1);
            ck_assert_uint_eq(get32(r.data + 6), 4096);
            ck_assert_uint_eq(get32(r.data + 10), 32 * MiB);
            seen |= 4;
            break;
        case NBD_INFO_EXPORT:
            ck_assert_uint_eq(get64(r.data + 2), DISK_SIZE);
            ck_assert_uint_eq(get16(r.data + 10),
                              NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY |
                              NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                              NBD_FLAG_CAN_MULTI_CONN |
                              NBD_FLAG_SEND_CACHE);
            seen |= 8;
            break;
        default:
            ck_abort_msg("unexpected info %u", get16(r.data));
        }
    }
    ck_assert_int_eq(seen, 15);
    g_free(r.data);
    /* transmission with simple replies */
    tc_req(tc, 0, NBD_CMD_READ, 7, 0, 16, NULL);
    ck_assert_uint_eq(tc_simple(tc, 7, buf, 16), 0);
    ck_assert_uint_eq(buf[0], 0xaa);
    ck_assert_uint_eq(buf[15], 0xaa);
    tc_disc(tc);
}

START_TEST(test_go_info)
{
    add_export("e0", "disk", "exp", false, false, "a disk");
    run(sc_go_info);
}
END_TEST

static bool no_zeroes;

static void coroutine_fn sc_export_name(void)
{
    TC *tc = tc_new();
    uint8_t buf[134];

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE |
                (no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
    tc_opt(tc, NBD_OPT_EXPORT_NAME, "exp", 3);
    tc_read(tc, buf, no_zeroes ? 10 : 134);
    ck_assert_uint_eq(get64(buf), DISK_SIZE);
    ck_assert(get16(buf + 8) & NBD_FLAG_READ_ONLY);
    ck_assert(!(get16(buf + 8) & NBD_FLAG_SEND_DF));
    if (!no_zeroes) {
        ck_assert(buffer_is_zero(buf + 10, 124));
    }
    /* the next bytes are a reply, not padding */
    tc_req(tc, 0, NBD_CMD_READ, 1, 65536 - 8, 16, NULL);
    ck_assert_uint_eq(tc_simple(tc, 1, buf, 16), 0);
    ck_assert_uint_eq(buf[7], 0xaa);
    ck_assert_uint_eq(buf[8], 0);
    tc_disc(tc);
}

START_TEST(test_export_name)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    no_zeroes = _i;
    run(sc_export_name);
}
END_TEST

static uint32_t bad_cflags;

static void coroutine_fn sc_bad_cflags(void)
{
    TC *tc = tc_new();

    tc_greeting(tc, bad_cflags);
    ck_assert(tc_closed(tc));
    tc_free(tc);
}

START_TEST(test_reject_non_fixed)
{
    static const uint32_t flags[] = { 0, NBD_FLAG_C_NO_ZEROES,
                                      NBD_FLAG_C_FIXED_NEWSTYLE | 0x100 };
    bad_cflags = flags[_i];
    run(sc_bad_cflags);
}
END_TEST

static void coroutine_fn sc_option_errors(void)
{
    TC *tc = tc_new();
    Rep r = { 0 };
    uint8_t junk[10] = { 0 };
    uint32_t len;
    g_autofree uint8_t *p = info_payload("nope", NULL, 0, &len);
    g_autofree char *res = NULL;
    uint32_t type;

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE);
    /* unknown option, with a payload: dropped, UNSUP, still connected */
    tc_opt(tc, 42, junk, sizeof(junk));
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.opt, 42);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_UNSUP);
    ck_assert(strstr((char *)r.data, "Unsupported option"));
    /* LIST with a payload */
    tc_opt(tc, NBD_OPT_LIST, junk, 3);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    /* INFO of an unknown export */
    tc_opt(tc, NBD_OPT_INFO, p, len);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_UNKNOWN);
    ck_assert_str_eq((char *)r.data, "export 'nope' not present");
    /* GO whose name length runs past the payload */
    put32(p, 1000);
    tc_opt(tc, NBD_OPT_GO, p, len);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    /* GO whose request count does not match */
    put32(p, 4);
    put16(p + 8, 5);
    tc_opt(tc, NBD_OPT_GO, p, len);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    /* GO too short */
    tc_opt(tc, NBD_OPT_GO, junk, 3);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    /* meta contexts need structured replies */
    res = tc_meta(tc, NBD_OPT_SET_META_CONTEXT, "exp", NULL, 0, &type);
    ck_assert_uint_eq(type, NBD_REP_ERR_INVALID);
    /* STARTTLS: no TLS here */
    tc_opt(tc, NBD_OPT_STARTTLS, NULL, 0);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_POLICY);
    /* STRUCTURED_REPLY: with payload, then twice */
    tc_opt(tc, NBD_OPT_STRUCTURED_REPLY, junk, 1);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    tc_structured(tc);
    tc_opt(tc, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    tc_rep(tc, &r);
    ck_assert_uint_eq(r.type, NBD_REP_ERR_INVALID);
    /* after all that, GO still works */
    ck_assert(tc_go(tc, "exp", DISK_SIZE) & NBD_FLAG_SEND_DF);
    g_free(r.data);
    tc_disc(tc);
}

START_TEST(test_option_errors)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    run(sc_option_errors);
}
END_TEST

static int hostile_case;

static void coroutine_fn sc_option_hostile(void)
{
    TC *tc = tc_new();
    uint8_t hdr[16];
    Rep r = { 0 };

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE);
    switch (hostile_case) {
    case 0: /* bad option magic */
        put64(hdr, 0x1122334455667788ULL);
        put32(hdr + 8, NBD_OPT_LIST);
        put32(hdr + 12, 0);
        tc_write(tc, hdr, 16);
        break;
    case 1: /* absurd option length */
        put64(hdr, NBD_OPTS_MAGIC);
        put32(hdr + 8, NBD_OPT_GO);
        put32(hdr + 12, 0xfffffff0);
        tc_write(tc, hdr, 16);
        break;
    case 2: /* ABORT: acked, then closed */
        tc_opt(tc, NBD_OPT_ABORT, NULL, 0);
        tc_rep(tc, &r);
        ck_assert_uint_eq(r.type, NBD_REP_ACK);
        break;
    case 3: /* EXPORT_NAME of an unknown export: nothing but a hangup */
        tc_opt(tc, NBD_OPT_EXPORT_NAME, "nope", 4);
        break;
    case 4: /* truncated option, then the client vanishes */
        put64(hdr, NBD_OPTS_MAGIC);
        put32(hdr + 8, NBD_OPT_GO);
        put32(hdr + 12, 100);
        tc_write(tc, hdr, 16);
        tc_write(tc, hdr, 5);
        shutdown(tc->fd, SHUT_WR);
        break;
    }
    ck_assert(tc_closed(tc));
    g_free(r.data);
    tc_free(tc);
}

START_TEST(test_option_hostile)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    hostile_case = _i;
    run(sc_option_hostile);
    ck_assert_uint_eq(nbd_client_count(), 0);
}
END_TEST

static void coroutine_fn sc_list(void)
{
    TC *tc = tc_new();
    Rep r = { 0 };
    GString *names = g_string_new("");

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE);
    tc_opt(tc, NBD_OPT_LIST, NULL, 0);
    for (;;) {
        tc_rep(tc, &r);
        if (r.type == NBD_REP_ACK) {
            break;
        }
        ck_assert_uint_eq(r.type, NBD_REP_SERVER);
        g_string_append_printf(names, "[%.*s|%s]", (int)get32(r.data),
                               (char *)r.data + 4,
                               (char *)r.data + 4 + get32(r.data));
    }
    ck_assert_str_eq(names->str, "[exp|a disk][disk|]");
    g_string_free(names, true);
    g_free(r.data);
    tc_opt(tc, NBD_OPT_ABORT, NULL, 0);
    ck_assert(!tc_closed(tc));  /* the ACK */
    tc_free(tc);
}

START_TEST(test_list)
{
    add_export("e0", "disk", "exp", false, false, "a disk");
    /* name defaults to the node name */
    add_export("e1", "disk", NULL, false, false, NULL);
    run(sc_list);
}
END_TEST

static void coroutine_fn sc_meta_contexts(void)
{
    TC *tc = tc_new();
    static const char *const q_all[] = { "base:", "qemu:" };
    static const char *const q_set[] = {
        "qemu:allocation-depth", "foo:bar", "base:allocation", "qemu:",
    };
    static const char *const q_bitmap[] = { "qemu:dirty-bitmap:" };
    uint32_t type;
    char *s;

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE);
    tc_structured(tc);
    s = tc_meta(tc, NBD_OPT_LIST_META_CONTEXT, "top", NULL, 0, &type);
    ck_assert_uint_eq(type, NBD_REP_ACK);
    ck_assert_str_eq(s, "0=base:allocation,1=qemu:allocation-depth");
    g_free(s);
    s = tc_meta(tc, NBD_OPT_LIST_META_CONTEXT, "top", q_all + 1, 1, &type);
    ck_assert_str_eq(s, "1=qemu:allocation-depth");
    g_free(s);
    s = tc_meta(tc, NBD_OPT_LIST_META_CONTEXT, "top", q_bitmap, 1, &type);
    ck_assert_str_eq(s, "");
    g_free(s);
    /* an export without allocation-depth offers only base:allocation */
    s = tc_meta(tc, NBD_OPT_LIST_META_CONTEXT, "exp", q_all, 2, &type);
    ck_assert_str_eq(s, "0=base:allocation");
    g_free(s);
    s = tc_meta(tc, NBD_OPT_LIST_META_CONTEXT, "nope", NULL, 0, &type);
    ck_assert_uint_eq(type, NBD_REP_ERR_UNKNOWN);
    g_free(s);
    /* SET: exact names only; namespaces and unknowns select nothing */
    s = tc_meta(tc, NBD_OPT_SET_META_CONTEXT, "top", q_set, 4, &type);
    ck_assert_uint_eq(type, NBD_REP_ACK);
    ck_assert_str_eq(s, "0=base:allocation,1=qemu:allocation-depth");
    g_free(s);
    tc_go(tc, "top", DISK_SIZE);
    tc_disc(tc);
}

START_TEST(test_meta_contexts)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    add_export("e1", "top", "top", false, true, NULL);
    run(sc_meta_contexts);
}
END_TEST

/* ---- transmission ---- */

static void coroutine_fn sc_io(void)
{
    uint16_t flags;
    TC *tc = tc_open("exp", true, &flags);
    g_autofree uint8_t *buf = g_malloc(256 * KiB);
    g_autofree uint8_t *rd = g_malloc(256 * KiB);
    int nd, nh;

    ck_assert_uint_eq(flags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                      NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_CACHE |
                      NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                      NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_DF);
    /* sparse read: data [0, 64k), then a hole */
    tc_req(tc, 0, NBD_CMD_READ, 1, 0, 256 * KiB, NULL);
    ck_assert_uint_eq(tc_sread(tc, 1, 0, 256 * KiB, rd, &nd, &nh, NULL), 0);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(nh, 1);
    ck_assert_uint_eq(rd[64 * KiB - 1], 0xaa);
    ck_assert(buffer_is_zero(rd + 64 * KiB, 192 * KiB));
    /* DF: one data chunk */
    tc_req(tc, NBD_CMD_FLAG_DF, NBD_CMD_READ, 2, 0, 256 * KiB, NULL);
    ck_assert_uint_eq(tc_sread(tc, 2, 0, 256 * KiB, rd, &nd, &nh, NULL), 0);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(nh, 0);
    /* write (FUA) and read back */
    memset(buf, 0x5a, 256 * KiB);
    tc_req(tc, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 3, 300 * KiB, 256 * KiB, buf);
    ck_assert_uint_eq(tc_sresult(tc, 3, NULL), 0);
    tc_req(tc, 0, NBD_CMD_READ, 4, 300 * KiB, 256 * KiB, NULL);
    ck_assert_uint_eq(tc_sread(tc, 4, 300 * KiB, 256 * KiB, rd, &nd, &nh,
                               NULL), 0);
    ck_assert_int_eq(memcmp(rd, buf, 256 * KiB), 0);
    /* write zeroes, trim, flush, cache */
    tc_req(tc, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 5, 300 * KiB,
           4 * KiB, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 5, NULL), 0);
    tc_req(tc, NBD_CMD_FLAG_FUA, NBD_CMD_TRIM, 6, 400 * KiB, 64 * KiB, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 6, NULL), 0);
    tc_req(tc, 0, NBD_CMD_FLUSH, 7, 0, 0, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 7, NULL), 0);
    tc_req(tc, 0, NBD_CMD_CACHE, 8, 0, DISK_SIZE, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 8, NULL), 0);
    tc_req(tc, NBD_CMD_FLAG_DF, NBD_CMD_READ, 9, 300 * KiB, 8 * KiB, NULL);
    ck_assert_uint_eq(tc_sread(tc, 9, 300 * KiB, 8 * KiB, rd, &nd, &nh,
                               NULL), 0);
    ck_assert(buffer_is_zero(rd, 4 * KiB));
    ck_assert_uint_eq(rd[4 * KiB], 0x5a);
    tc_disc(tc);
}

START_TEST(test_io)
{
    uint8_t buf[4];

    add_export("e0", "disk", "exp", true, false, NULL);
    run(sc_io);
    /* the data reached the node */
    ck_assert_int_eq(bdrv_pread(disk_bs->file, 300 * KiB + 4 * KiB, 4, buf,
                                0), 0);
    ck_assert_uint_eq(buf[0], 0x5a);
}
END_TEST

static void coroutine_fn sc_io_simple(void)
{
    TC *tc = tc_open("exp", false, NULL);
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    g_autofree uint8_t *rd = g_malloc(64 * KiB);

    memset(buf, 0x3c, 64 * KiB);
    tc_req(tc, 0, NBD_CMD_WRITE, 1, 512 * KiB, 64 * KiB, buf);
    ck_assert_uint_eq(tc_simple(tc, 1, NULL, 0), 0);
    tc_req(tc, 0, NBD_CMD_READ, 2, 512 * KiB, 64 * KiB, NULL);
    ck_assert_uint_eq(tc_simple(tc, 2, rd, 64 * KiB), 0);
    ck_assert_int_eq(memcmp(rd, buf, 64 * KiB), 0);
    /* DF is not valid without structured replies */
    tc_req(tc, NBD_CMD_FLAG_DF, NBD_CMD_READ, 3, 0, 512, NULL);
    ck_assert_uint_eq(tc_simple(tc, 3, NULL, 0), NBD_EINVAL);
    /* nor is BLOCK_STATUS */
    tc_req(tc, 0, NBD_CMD_BLOCK_STATUS, 4, 0, 512, NULL);
    ck_assert_uint_eq(tc_simple(tc, 4, NULL, 0), NBD_EINVAL);
    /* errors keep the connection */
    tc_req(tc, 0, NBD_CMD_READ, 5, DISK_SIZE, 512, NULL);
    ck_assert_uint_eq(tc_simple(tc, 5, NULL, 0), NBD_EINVAL);
    tc_req(tc, 0, NBD_CMD_READ, 6, 0, 64 * MiB, NULL);
    ck_assert_uint_eq(tc_simple(tc, 6, NULL, 0), NBD_EOVERFLOW);
    tc_req(tc, 0, NBD_CMD_WRITE_ZEROES, 7, DISK_SIZE - 512, 1024, NULL);
    ck_assert_uint_eq(tc_simple(tc, 7, NULL, 0), NBD_EINVAL);
    tc_disc(tc);
}

START_TEST(test_io_simple)
{
    add_export("e0", "disk", "exp", true, false, NULL);
    run(sc_io_simple);
}
END_TEST

static void coroutine_fn sc_request_errors(void)
{
    uint16_t flags;
    TC *tc = tc_open("exp", true, &flags);
    g_autofree uint8_t *buf = g_malloc0(64 * KiB);
    char *msg = NULL;

    ck_assert(flags & NBD_FLAG_READ_ONLY);
    ck_assert(flags & NBD_FLAG_CAN_MULTI_CONN);
    /* writes to a read-only export: EPERM, payload consumed */
    tc_req(tc, 0, NBD_CMD_WRITE, 1, 0, 64 * KiB, buf);
    ck_assert_uint_eq(tc_sresult(tc, 1, &msg), NBD_EPERM);
    ck_assert_str_eq(msg, "export is read-only");
    g_free(msg);
    tc_req(tc, 0, NBD_CMD_TRIM, 2, 0, 4096, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 2, NULL), NBD_EPERM);
    tc_req(tc, 0, NBD_CMD_WRITE_ZEROES, 3, 0, 4096, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 3, NULL), NBD_EPERM);
    /* past EOF */
    tc_req(tc, 0, NBD_CMD_READ, 4, DISK_SIZE - 100, 200, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 4, &msg), NBD_EINVAL);
    ck_assert(strstr(msg, "past EOF"));
    g_free(msg);
    tc_req(tc, 0, NBD_CMD_CACHE, 5, UINT64_MAX - 10, 200, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 5, NULL), NBD_EINVAL);
    /* oversize read */
    tc_req(tc, 0, NBD_CMD_READ, 6, 0, 32 * MiB + 1, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 6, NULL), NBD_EOVERFLOW);
    /* bad flags, unknown command */
    tc_req(tc, NBD_CMD_FLAG_REQ_ONE, NBD_CMD_READ, 7, 0, 512, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 7, NULL), NBD_EINVAL);
    tc_req(tc, 0x8000, NBD_CMD_FLUSH, 8, 0, 0, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 8, NULL), NBD_EINVAL);
    tc_req(tc, 0, 77, 9, 0, 0, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 9, NULL), NBD_EINVAL);
    /* block status without contexts */
    tc_req(tc, 0, NBD_CMD_BLOCK_STATUS, 10, 0, 4096, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 10, NULL), NBD_EINVAL);
    /* still alive */
    tc_req(tc, 0, NBD_CMD_FLUSH, 11, 0, 0, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 11, NULL), 0);
    tc_disc(tc);
}

START_TEST(test_request_errors)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    run(sc_request_errors);
}
END_TEST

static void coroutine_fn sc_oversize_write(void)
{
    TC *tc = tc_open("exp", false, NULL);
    size_t len = 32 * MiB + 4096;
    g_autofree uint8_t *buf = g_malloc0(len);

    /* payload is read and dropped: the stream stays in sync */
    tc_req(tc, 0, NBD_CMD_WRITE, 1, 0, len, buf);
    ck_assert_uint_eq(tc_simple(tc, 1, NULL, 0), NBD_EOVERFLOW);
    tc_req(tc, 0, NBD_CMD_FLUSH, 2, 0, 0, NULL);
    ck_assert_uint_eq(tc_simple(tc, 2, NULL, 0), 0);
    tc_disc(tc);
}

START_TEST(test_oversize_write)
{
    add_export("e0", "disk", "exp", true, false, NULL);
    run(sc_oversize_write);
}
END_TEST

static void coroutine_fn sc_bad_magic(void)
{
    TC *tc = tc_open("exp", true, NULL);
    uint8_t hdr[28] = { 0x12, 0x34 };

    tc_write(tc, hdr, sizeof(hdr));
    ck_assert(tc_closed(tc));
    tc_free(tc);
}

START_TEST(test_bad_magic)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    run(sc_bad_magic);
    ck_assert_uint_eq(nbd_client_count(), 0);
}
END_TEST

/* Block status as "len:flags,..." for one chunk */
static char *coroutine_fn tc_block_status(TC *tc, uint64_t cookie,
                                          uint16_t flags, uint64_t from,
                                          uint32_t len, uint32_t *ids,
                                          int nids, char **out)
{
    Chunk c = { 0 };
    int i = 0;

    tc_req(tc, flags, NBD_CMD_BLOCK_STATUS, cookie, from, len, NULL);
    do {
        GString *s = g_string_new("");
        uint64_t total = 0;
        uint32_t j;

        tc_chunk(tc, &c);
        ck_assert_uint_eq(c.type, NBD_REPLY_TYPE_BLOCK_STATUS);
        ck_assert_int_lt(i, nids);
        ids[i] = get32(c.payload);
        ck_assert_uint_ge(c.len, 12);
        for (j = 4; j < c.len; j += 8) {
            g_string_append_printf(s, "%s%u:%u", s->len ? "," : "",
                                   get32(c.payload + j),
                                   get32(c.payload + j + 4));
            total += get32(c.payload + j);
        }
        ck_assert_uint_le(total, len);
        out[i++] = g_string_free(s, false);
    } while (!(c.flags & NBD_REPLY_FLAG_DONE));
    ck_assert_int_eq(i, nids);
    g_free(c.payload);
    return NULL;
}

static void coroutine_fn sc_block_status(void)
{
    TC *tc = tc_new();
    static const char *const q[] = { "base:allocation",
                                     "qemu:allocation-depth" };
    uint32_t type, ids[2];
    char *out[2];
    char *s;

    tc_greeting(tc, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    tc_structured(tc);
    s = tc_meta(tc, NBD_OPT_SET_META_CONTEXT, "top", q, 2, &type);
    g_free(s);
    tc_go(tc, "top", DISK_SIZE);

    tc_block_status(tc, 1, 0, 0, DISK_SIZE, ids, 2, out);
    ck_assert_uint_eq(ids[0], 0);
    ck_assert_uint_eq(ids[1], 1);
    /* base:allocation: data, zero-hole, data, zero-hole */
    ck_assert_str_eq(out[0], "65536:0,65536:3,65536:0,851968:3");
    /* depth: base, none, top, none */
    ck_assert_str_eq(out[1], "65536:2,65536:0,65536:1,851968:0");
    g_free(out[0]);
    g_free(out[1]);

    /* REQ_ONE: one extent each, capped at the request */
    tc_block_status(tc, 2, NBD_CMD_FLAG_REQ_ONE, 4096, 512 * KiB, ids, 2,
                    out);
    ck_assert_str_eq(out[0], "61440:0");
    ck_assert_str_eq(out[1], "61440:2");
    g_free(out[0]);
    g_free(out[1]);
    /* a short request inside one extent */
    tc_block_status(tc, 3, 0, 130 * KiB, 1000, ids, 2, out);
    ck_assert_str_eq(out[0], "1000:0");
    ck_assert_str_eq(out[1], "1000:1");
    g_free(out[0]);
    g_free(out[1]);
    /* errors: zero length, past EOF */
    tc_req(tc, 0, NBD_CMD_BLOCK_STATUS, 4, 0, 0, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 4, NULL), NBD_EINVAL);
    tc_req(tc, 0, NBD_CMD_BLOCK_STATUS, 5, DISK_SIZE - 512, 1024, NULL);
    ck_assert_uint_eq(tc_sresult(tc, 5, NULL), NBD_EINVAL);
    tc_disc(tc);
}

START_TEST(test_block_status)
{
    add_export("e1", "top", "top", false, true, NULL);
    run(sc_block_status);
}
END_TEST

static void coroutine_fn sc_concurrent(void)
{
    TC *tc = tc_open("exp", true, NULL);
    g_autofree uint8_t *rd = g_malloc(64 * KiB);
    bool seen[64] = { false };
    int i, nd, nh;

    /* more requests than the server runs at once, all sent up front */
    for (i = 0; i < 64; i++) {
        tc_req(tc, NBD_CMD_FLAG_DF, NBD_CMD_READ, 1000 + i, i * 4096, 4096,
               NULL);
    }
    for (i = 0; i < 64; i++) {
        Chunk c = { 0 };
        uint64_t cookie;

        tc_chunk(tc, &c);
        ck_assert_uint_eq(c.type, NBD_REPLY_TYPE_OFFSET_DATA);
        ck_assert(c.flags & NBD_REPLY_FLAG_DONE);
        cookie = c.cookie;
        ck_assert_uint_ge(cookie, 1000);
        ck_assert_uint_lt(cookie, 1064);
        ck_assert(!seen[cookie - 1000]);
        seen[cookie - 1000] = true;
        ck_assert_uint_eq(get64(c.payload), (cookie - 1000) * 4096);
        ck_assert_uint_eq(c.payload[8], (cookie - 1000) < 16 ? 0xaa : 0);
        g_free(c.payload);
    }
    tc_req(tc, 0, NBD_CMD_READ, 1, 0, 64 * KiB, NULL);
    ck_assert_uint_eq(tc_sread(tc, 1, 0, 64 * KiB, rd, &nd, &nh, NULL), 0);
    tc_disc(tc);
}

START_TEST(test_concurrent)
{
    add_export("e0", "disk", "exp", false, false, NULL);
    run(sc_concurrent);
}
END_TEST

static void coroutine_fn sc_vanish(void)
{
    TC *tc = tc_open("exp", true, NULL);
    g_autofree uint8_t *buf = g_malloc0(64 * KiB);
    int i;

    if (hostile_case == 0) {
        /* half a WRITE payload, then gone */
        tc_req(tc, 0, NBD_CMD_WRITE, 1, 0, 64 * KiB, NULL);
        tc_write(tc, buf, 1000);
    } else {
        /* many requests in flight, then gone before any reply is read */
        for (i = 0; i < 40; i++) {
            tc_req(tc, 0, NBD_CMD_READ, i, 0, 64 * KiB, NULL);
        }
    }
    tc_free(tc);
}

START_TEST(test_vanish_mid_request)
{
    add_export("e0", "disk", "exp", true, false, NULL);
    hostile_case = _i;
    run(sc_vanish);
    while (nbd_client_count()) {
        aio_poll(ctx, true);
    }
    /* and the next client is served */
    run(sc_io_simple);
}
END_TEST

/* ---- export removal, timeouts, limits ---- */

static TC *held;

static void coroutine_fn sc_hold(void)
{
    held = tc_open("exp", true, NULL);
}

static void coroutine_fn sc_expect_closed(void)
{
    ck_assert(tc_closed(held));
    tc_free(held);
    held = NULL;
}

START_TEST(test_export_del)
{
    Error *err = NULL;
    BlockExportInfoList *list;

    add_export("e0", "disk", "exp", false, false, NULL);
    run(sc_hold);
    qmp_block_export_del("e0", false, 0, &err);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), "export 'e0' still in use");
    error_free(err);
    err = NULL;
    qmp_block_export_del("nope", false, 0, &err);
    ck_assert_str_eq(error_get_pretty(err), "Export 'nope' is not found");
    error_free(err);
    err = NULL;
    ck_assert_uint_eq(events->len, 0);

    qmp_block_export_del("e0", true, BLOCK_EXPORT_REMOVE_MODE_HARD,
                         &error_abort);
    list = qmp_query_block_exports(&error_abort);
    /* still listed until its last client has gone */
    ck_assert_ptr_nonnull(list);
    ck_assert(list->value->shutting_down);
    qapi_free_BlockExportInfoList(list);
    qmp_block_export_del("e0", false, 0, &err);
    ck_assert_str_eq(error_get_pretty(err),
                     "Export 'e0' is already shutting down");
    error_free(err);
    run(sc_expect_closed);
    ck_assert_uint_eq(events->len, 1);
    ck_assert_str_eq(g_ptr_array_index(events, 0),
                     "BLOCK_EXPORT_DELETED:e0");
    ck_assert_ptr_null(qmp_query_block_exports(&error_abort));
    /* the name is free again */
    add_export("e0", "disk", "exp", false, false, NULL);
}
END_TEST

START_TEST(test_export_add_errors)
{
    BlockExportOptions o = {
        .type = BLOCK_EXPORT_TYPE_NBD, .id = (char *)"e0",
        .node_name = (char *)"disk",
    };
    Error *err = NULL;

    add_export("e0", "disk", "exp", false, false, NULL);
    ck_assert_ptr_null(blk_exp_add(&o, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Block export id 'e0' is already in use");
    error_free(err);
    err = NULL;
    o.id = (char *)"e1";
    o.u.nbd.name = (char *)"exp";
    ck_assert_ptr_null(blk_exp_add(&o, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "NBD server already has export named 'exp'");
    error_free(err);
    err = NULL;
    o.node_name = (char *)"nonode";
    o.u.nbd.name = NULL;
    ck_assert_ptr_null(blk_exp_add(&o, &err));
    ck_assert(strstr(error_get_pretty(err), "nonode"));
    error_free(err);
    err = NULL;
    nbd_server_shutdown();
    ck_assert_uint_eq(blk_exp_count(), 0);
    o.node_name = (char *)"disk";
    ck_assert_ptr_null(blk_exp_add(&o, &err));
    ck_assert_str_eq(error_get_pretty(err), "NBD server not running");
    error_free(err);
}
END_TEST

START_TEST(test_nbd_server_qmp)
{
    NbdServerAddOptions add = { .device = (char *)"disk" };
    Error *err = NULL;
    BlockExportInfoList *list;

    qmp_nbd_server_add(&add, &error_abort);
    list = qmp_query_block_exports(&error_abort);
    ck_assert_str_eq(list->value->id, "disk");
    ck_assert_str_eq(list->value->node_name, "disk");
    ck_assert_ptr_null(list->next);
    qapi_free_BlockExportInfoList(list);
    ck_assert_ptr_nonnull(nbd_export_find("disk"));
    qmp_nbd_server_remove("disk", false, 0, &error_abort);
    while (aio_poll(ctx, false)) {
    }
    ck_assert_ptr_null(nbd_export_find("disk"));
    ck_assert_uint_eq(events->len, 1);

    {
        UnixSocketAddress u = { .path = (char *)"/nonexistent/x.sock" };
        UnixSocketAddressWrapper w = { .data = &u };
        SocketAddressLegacy la = { .type = SOCKET_ADDRESS_TYPE_UNIX };

        la.u.q_unix = w;
        qmp_nbd_server_start(&la, NULL, NULL, false, 0, false, 0, &err);
        ck_assert_str_eq(error_get_pretty(err), "NBD server already running");
        error_free(err);
        err = NULL;
        qmp_nbd_server_stop(&error_abort);
        qmp_nbd_server_stop(&err);
        ck_assert_str_eq(error_get_pretty(err), "NBD server not running");
        error_free(err);
        err = NULL;
        qmp_nbd_server_start(&la, NULL, NULL, false, 0, false, 0, &err);
        ck_assert(strstr(error_get_pretty(err), "/nonexistent/x.sock"));
        error_free(err);
        err = NULL;
        qmp_nbd_server_add(&add, &err);
        ck_assert_str_eq(error_get_pretty(err), "NBD server not running");
        error_free(err);
    }
}
END_TEST

START_TEST(test_handshake_timeout_fires)
{
    TC *tc;
    int sv[2];
    uint8_t buf[18];
    int64_t start = g_get_monotonic_time();

    add_export("e0", "disk", "exp", false, false, NULL);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    nbd_client_new(sv[0], 1, NULL, NULL);
    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(read(sv[1], buf, 18), 18);
    /* silent client: dropped after ~1 s */
    while (nbd_client_count()) {
        aio_poll(ctx, true);
    }
    ck_assert_int_ge(g_get_monotonic_time() - start, 900 * 1000);
    ck_assert_int_eq(read(sv[1], buf, 1), 0);
    close(sv[1]);
    (void)tc;
}
END_TEST

START_TEST(test_max_connections)
{
    g_autofree char *sock = tpath("nbd.sock");
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };
    uint8_t buf[18];
    int c1, c2, i;

    nbd_server_shutdown();
    start_server(1);
    addr.u.q_unix.path = sock;
    c1 = socket_connect(&addr, &error_abort);
    c2 = socket_connect(&addr, &error_abort);
    for (i = 0; i < 50 && nbd_client_count() < 1; i++) {
        aio_poll(ctx, true);
    }
    while (aio_poll(ctx, false)) {
    }
    ck_assert_uint_eq(nbd_client_count(), 1);
    ck_assert_int_eq(read(c1, buf, 18), 18);
    /* the second waits in the backlog */
    qemu_socket_set_nonblock(c2);
    ck_assert_int_eq(read(c2, buf, 18), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(c1);
    while (nbd_client_count() != 1 || read(c2, buf, 18) != 18) {
        aio_poll(ctx, true);
    }
    close(c2);
    while (nbd_client_count()) {
        aio_poll(ctx, true);
    }
}
END_TEST

START_TEST(test_cmdline)
{
    g_autofree char *arg = g_strdup_printf("addr.type=unix,addr.path=%s/c.sock,"
                                           "max-connections=2", tmpdir);
    Error *err = NULL;
    NBDExport *exp;

    ck_assert(!nbd_server_start_cmdline(arg, &err));
    ck_assert_str_eq(error_get_pretty(err), "NBD server already running");
    error_free(err);
    err = NULL;
    nbd_server_shutdown();
    ck_assert(nbd_server_start_cmdline(arg, &error_abort));
    ck_assert(blk_exp_add_cmdline("nbd,id=x,node-name=disk,name=foo,"
                                  "writable=on,description=d",
                                  &error_abort));
    exp = nbd_export_find("foo");
    ck_assert_ptr_nonnull(exp);
    ck_assert_str_eq(nbd_export_get_blockexport(exp)->id, "x");
    ck_assert(blk_exp_add_cmdline("{\"type\": \"nbd\", \"id\": \"y\", "
                                  "\"node-name\": \"top\", "
                                  "\"allocation-depth\": true}",
                                  &error_abort));
    ck_assert_ptr_nonnull(nbd_export_find("top"));
    ck_assert(!blk_exp_add_cmdline("nbd,id=z", &err));
    ck_assert(strstr(error_get_pretty(err), "node-name"));
    error_free(err);
    err = NULL;
    ck_assert(!blk_exp_add_cmdline("nbd,id=z,node-name=disk,bogus=1", &err));
    error_free(err);
}
END_TEST

static Suite *nbd_server_suite(void)
{
    Suite *s = suite_create("nbd-server");
    TCase *tc = tcase_create("server");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_go_info);
    tcase_add_loop_test(tc, test_export_name, 0, 2);
    tcase_add_loop_test(tc, test_reject_non_fixed, 0, 3);
    tcase_add_test(tc, test_option_errors);
    tcase_add_loop_test(tc, test_option_hostile, 0, 5);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_meta_contexts);
    tcase_add_test(tc, test_io);
    tcase_add_test(tc, test_io_simple);
    tcase_add_test(tc, test_request_errors);
    tcase_add_test(tc, test_oversize_write);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_block_status);
    tcase_add_test(tc, test_concurrent);
    tcase_add_loop_test(tc, test_vanish_mid_request, 0, 2);
    tcase_add_test(tc, test_export_del);
    tcase_add_test(tc, test_export_add_errors);
    tcase_add_test(tc, test_nbd_server_qmp);
    tcase_add_test(tc, test_handshake_timeout_fires);
    tcase_add_test(tc, test_max_connections);
    tcase_add_test(tc, test_cmdline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nbd_server_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
