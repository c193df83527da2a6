/*
 * NBD client unit tests.
 *
 * Three kinds of peer:
 * - blockd's own server, in-process, over a socketpair (handshake
 *   variants, every command, structured vs simple replies, server-side
 *   errors through blkdebug, many concurrent requests);
 * - a scripted fake server (a coroutine on the other end of a socketpair)
 *   that sends exactly the chunks a test needs: out-of-order data and
 *   holes, error chunks, short reads, unknown handles, chunks outside the
 *   request, a hang-up with requests in flight, no OPT_GO, block size
 *   constraints;
 * - qemu-storage-daemon as a child process (skipped when not installed),
 *   to prove the client speaks to QEMU's server too.
 * The "nbd" block driver is tested through URIs and option dictionaries.
 */
#include "qemu/osdep.h"
#include "qapi-types.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/nbd.h"
#include "nbd/nbd-internal.h"
#include "block/export.h"
#include "qemu/co-channel.h"
#include "qemu/iov.h"
#include "qemu/sockets.h"
#include <check.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DISK_SIZE   (1 * MiB)

static char *tmpdir;
static AioContext *ctx;
static BlockDriverState *disk_bs, *bad_bs;

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockDriverState *open_node(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static BlockDriverState *open_node(const char *fmt, ...)
{
    g_autofree char *json = NULL;
    g_autoptr(json_t) opts = NULL;
    json_error_t jerr;
    BlockDriverState *bs;
    va_list ap;

    va_start(ap, fmt);
    json = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    opts = json_loads(json, 0, &jerr);
    ck_assert_ptr_nonnull(opts);
    bs = bdrv_open_flags(opts, BDRV_O_RDWR, &error_abort);
    ck_assert_ptr_nonnull(bs);
    return bs;
}

static void add_export(const char *id, const char *node, const char *name,
                       bool writable)
{
    BlockExportOptions *o = g_new0(BlockExportOptions, 1);

    o->type = BLOCK_EXPORT_TYPE_NBD;
    o->id = g_strdup(id);
    o->node_name = g_strdup(node);
    o->has_writable = true;
    o->writable = writable;
    o->u.nbd.name = g_strdup(name);
    o->u.nbd.description = g_strdup("test export");
    o->u.nbd.has_allocation_depth = true;
    o->u.nbd.allocation_depth = true;
    ck_assert_ptr_nonnull(blk_exp_add(o, &error_abort));
    qapi_free_BlockExportOptions(o);
}

static void setup(void)
{
    g_autofree char *disk = NULL;
    g_autofree char *sock = NULL;
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };
    int fd;

    qemu_init_main_loop();
    bdrv_init();
    ctx = qemu_get_aio_context();
    tmpdir = g_dir_make_tmp("test-nbd-client-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
    disk = tpath("disk.raw");
    sock = tpath("nbd.sock");

    /* 1 MiB sparse, 0xaa in [0, 64k) */
    fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    memset(buf, 0xaa, 64 * KiB);
    ck_assert_int_eq(pwrite(fd, buf, 64 * KiB, 0), 64 * KiB);
    close(fd);
    disk_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"disk\", "
                        "\"discard\": \"unmap\", "
                        "\"file\": {\"driver\": \"file\", "
                        "\"filename\": \"%s\"}}", disk);
    /* every read of "bad" fails with EIO */
    bad_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"bad\", "
                       "\"file\": {\"driver\": \"blkdebug\", "
                       "\"inject-error\": [{\"event\": \"read_aio\", "
                       "\"errno\": \"5\", \"iotype\": [\"read\"]}], "
                       "\"image\": {\"driver\": "
                       "\"file\", \"filename\": \"%s\"}}}", disk);
    addr.u.q_unix.path = sock;
    ck_assert(nbd_server_start(&addr, NULL, NULL, 0, 10, &error_abort));
    add_export("e-disk", "disk", "disk", true);
    add_export("e-ro", "disk", "ro", false);
    add_export("e-bad", "bad", "bad", true);
}

static void teardown(void)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    nbd_server_shutdown();
    while (aio_poll(ctx, false)) {
    }
    ck_assert_uint_eq(nbd_client_count(), 0);
    bdrv_unref(disk_bs);
    bdrv_unref(bad_bs);
    dir = g_dir_open(tmpdir, 0, NULL);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = tpath(name);
        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
}

/* A client connection to the in-process server over a socketpair */
static NBDConn *connect_local(const NBDClientOptions *opts, Error **errp)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    nbd_client_new(sv[0], 10, NULL, NULL);
    return nbd_conn_new(sv[1], ctx, opts, errp);
}

static void close_conn(NBDConn *conn)
{
    nbd_conn_close(conn);
    while (aio_poll(ctx, false)) {
    }
}

/* Run @fn(@opaque) in a coroutine until it returns */
static void co_run(CoroutineEntry *fn, void *opaque)
{
    qemu_co_run_sync(fn, opaque);
}

static int coroutine_fn read_buf(NBDConn *conn, uint64_t off, uint32_t len,
                                 void *buf)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, len);

    return nbd_conn_co_read(conn, off, len, &qiov, 0, 0);
}

static int coroutine_fn write_buf(NBDConn *conn, uint64_t off, uint32_t len,
                                  const void *buf, uint16_t flags)
{
    QEMUIOVector qiov = QEMU_IOVEC_INIT_BUF(qiov, buf, len);

    return nbd_conn_co_write(conn, off, len, &qiov, 0, flags);
}

static bool all_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != v) {
            return false;
        }
    }
    return true;
}

/* ---- against blockd's server ---- */

START_TEST(test_handshake)
{
    NBDClientOptions o = { .export_name = "disk", .base_allocation = true,
                           .allocation_depth = true };
    NBDConn *conn = connect_local(&o, &error_abort);
    const NBDExportInfo *info = nbd_conn_info(conn);

    ck_assert_str_eq(info->name, "disk");
    ck_assert_str_eq(info->description, "test export");
    ck_assert_uint_eq(info->size, DISK_SIZE);
    ck_assert(info->structured_reply);
    ck_assert(!info->used_export_name);
    ck_assert(info->base_allocation);
    ck_assert(info->allocation_depth);
    ck_assert_uint_ne(info->base_allocation_id, info->allocation_depth_id);
    ck_assert(info->flags & NBD_FLAG_HAS_FLAGS);
    ck_assert(info->flags & NBD_FLAG_SEND_FLUSH);
    ck_assert(info->flags & NBD_FLAG_SEND_FUA);
    ck_assert(info->flags & NBD_FLAG_SEND_TRIM);
    ck_assert(info->flags & NBD_FLAG_SEND_WRITE_ZEROES);
    ck_assert(info->flags & NBD_FLAG_SEND_DF);
    ck_assert(!(info->flags & NBD_FLAG_READ_ONLY));
    ck_assert_uint_ge(info->min_block, 1);
    ck_assert_uint_eq(info->opt_block, 4096);
    ck_assert_uint_eq(info->max_block, NBD_MAX_BUFFER_SIZE);
    ck_assert(!nbd_conn_is_broken(conn));
    close_conn(conn);
    /* the server saw NBD_CMD_DISC and let the client go */
    ck_assert_uint_eq(nbd_client_count(), 0);
}
END_TEST

START_TEST(test_handshake_variants)
{
    NBDClientOptions simple = { .export_name = "disk",
                                .no_structured_reply = true,
                                .base_allocation = true };
    NBDClientOptions old = { .export_name = "disk",
                             .force_export_name = true };
    NBDClientOptions dflt = { 0 };
    NBDConn *conn;
    Error *err = NULL;

    /* no structured replies: no contexts either, no DF */
    conn = connect_local(&simple, &error_abort);
    ck_assert(!nbd_conn_info(conn)->structured_reply);
    ck_assert(!nbd_conn_info(conn)->base_allocation);
    ck_assert(!(nbd_conn_info(conn)->flags & NBD_FLAG_SEND_DF));
    close_conn(conn);

    /* NBD_OPT_EXPORT_NAME */
    conn = connect_local(&old, &error_abort);
    ck_assert(nbd_conn_info(conn)->used_export_name);
    ck_assert_uint_eq(nbd_conn_info(conn)->size, DISK_SIZE);
    ck_assert_uint_eq(nbd_conn_info(conn)->min_block, 1);
    close_conn(conn);

    /* unknown exports: GO says so, EXPORT_NAME gets hung up on */
    conn = connect_local(&dflt, &err);
    ck_assert_ptr_null(conn);
    ck_assert_msg(strstr(error_get_pretty(err),
                         "Requested export not available"), "%s",
                  error_get_pretty(err));
    g_clear_pointer(&err, error_free);
    old.export_name = "nope";
    conn = connect_local(&old, &err);
    ck_assert_ptr_null(conn);
    ck_assert_msg(strstr(error_get_pretty(err), "'nope' not available"),
                  "%s", error_get_pretty(err));
    g_clear_pointer(&err, error_free);
    while (aio_poll(ctx, false)) {
    }
    ck_assert_uint_eq(nbd_client_count(), 0);
}
END_TEST

typedef struct IOTest {
    NBDConn *conn;
    bool simple;
} IOTest;

static void coroutine_fn io_entry(void *opaque)
{
    IOTest *t = opaque;
    NBDConn *conn = t->conn;
    g_autofree uint8_t *buf = g_malloc(128 * KiB);
    g_autofree uint8_t *out = g_malloc(128 * KiB);
    NBDExtent base = { 0 }, depth = { 0 };
    struct iovec iov[3];
    QEMUIOVector qiov;

    /* the image's data, and a hole that reads as zeroes */
    ck_assert_int_eq(read_buf(conn, 0, 128 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 64 * KiB, 0xaa));
    ck_assert(all_bytes(buf + 64 * KiB, 64 * KiB, 0));

    /* write with FUA, read back through a scattered vector */
    memset(out, 0x5c, 128 * KiB);
    ck_assert_int_eq(write_buf(conn, 256 * KiB, 128 * KiB, out,
                               NBD_CMD_FLAG_FUA), 0);
    memset(buf, 0, 128 * KiB);
    iov[0] = (struct iovec) { buf, 1000 };
    iov[1] = (struct iovec) { buf + 1000, 3096 };
    iov[2] = (struct iovec) { buf + 4096, 124 * KiB };
    qemu_iovec_init_external(&qiov, iov, 3);
    ck_assert_int_eq(nbd_conn_co_read(conn, 256 * KiB, 128 * KiB, &qiov, 0,
                                      0), 0);
    ck_assert(all_bytes(buf, 128 * KiB, 0x5c));
    /* a read into the middle of a vector */
    memset(buf, 0, 128 * KiB);
    ck_assert_int_eq(nbd_conn_co_read(conn, 256 * KiB, 4 * KiB, &qiov, 500,
                                      0), 0);
    ck_assert(all_bytes(buf, 500, 0));
    ck_assert(all_bytes(buf + 500, 4 * KiB, 0x5c));
    ck_assert(all_bytes(buf + 500 + 4 * KiB, 4 * KiB, 0));

    /* write zeroes (allocating, then punching), trim, flush */
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 256 * KiB, 64 * KiB,
                                              NBD_CMD_FLAG_NO_HOLE), 0);
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 320 * KiB, 64 * KiB, 0),
                     0);
    ck_assert_int_eq(read_buf(conn, 256 * KiB, 128 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 128 * KiB, 0));
    ck_assert_int_eq(nbd_conn_co_trim(conn, 0, 64 * KiB, 0), 0);
    ck_assert_int_eq(nbd_conn_co_flush(conn), 0);

    if (t->simple) {
        ck_assert_int_eq(nbd_conn_co_block_status(conn, 0, 4096, &base,
                                                  NULL), -ENOTSUP);
        return;
    }
    /* block status: data at 512k after a write, a hole after punching */
    ck_assert_int_eq(write_buf(conn, 512 * KiB, 64 * KiB, out, 0), 0);
    ck_assert_int_eq(nbd_conn_co_block_status(conn, 512 * KiB, 512 * KiB,
                                              &base, &depth), 0);
    ck_assert_uint_eq(base.flags, 0);
    ck_assert_uint_ge(base.length, 64 * KiB);
    ck_assert_uint_le(base.length, 512 * KiB);
    ck_assert_uint_eq(depth.flags, 1);
    ck_assert_uint_gt(depth.length, 0);
    ck_assert_int_eq(nbd_conn_co_block_status(conn, 320 * KiB, 64 * KiB,
                                              &base, NULL), 0);
    ck_assert_uint_eq(base.flags, NBD_STATE_HOLE | NBD_STATE_ZERO);
    ck_assert_uint_eq(base.length, 64 * KiB);
}

static void run_io(bool simple)
{
    NBDClientOptions o = { .export_name = "disk", .base_allocation = true,
                           .allocation_depth = true,
                           .no_structured_reply = simple };
    IOTest t = { .simple = simple };

    t.conn = connect_local(&o, &error_abort);
    co_run(io_entry, &t);
    ck_assert(!nbd_conn_is_broken(t.conn));
    ck_assert_uint_eq(nbd_conn_in_flight(t.conn), 0);
    close_conn(t.conn);
}

START_TEST(test_io_structured)
{
    run_io(false);
}
END_TEST

START_TEST(test_io_simple)
{
    run_io(true);
}
END_TEST

static void coroutine_fn checks_entry(void *opaque)
{
    NBDConn *conn = opaque;
    uint8_t buf[4096] = { 0 };

    /* outside the export: refused before anything is sent */
    ck_assert_int_eq(read_buf(conn, DISK_SIZE, 4096, buf), -EINVAL);
    ck_assert_int_eq(read_buf(conn, DISK_SIZE - 512, 4096, buf), -EINVAL);
    /* a read-only export takes no writes */
    ck_assert_int_eq(write_buf(conn, 0, 4096, buf, 0), -EACCES);
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 0, 4096, 0), -EACCES);
    ck_assert_int_eq(nbd_conn_co_trim(conn, 0, 4096, 0), -EACCES);
    ck_assert_int_eq(read_buf(conn, 0, 4096, buf), 0);
    ck_assert(all_bytes(buf, 4096, 0xaa));
}

START_TEST(test_readonly_and_ranges)
{
    NBDClientOptions o = { .export_name = "ro" };
    NBDConn *conn = connect_local(&o, &error_abort);

    ck_assert(nbd_conn_info(conn)->flags & NBD_FLAG_READ_ONLY);
    co_run(checks_entry, conn);
    close_conn(conn);
}
END_TEST

static void coroutine_fn server_error_entry(void *opaque)
{
    NBDConn *conn = opaque;
    uint8_t buf[4096];

    ck_assert_int_eq(read_buf(conn, 0, 4096, buf), -EIO);
    /* an error reply does not break the connection */
    ck_assert(!nbd_conn_is_broken(conn));
    memset(buf, 0x42, sizeof(buf));
    ck_assert_int_eq(write_buf(conn, 8192, 4096, buf, 0), 0);
    ck_assert_int_eq(read_buf(conn, 0, 4096, buf), -EIO);
}

START_TEST(test_server_errors)
{
    NBDClientOptions structured = { .export_name = "bad" };
    NBDClientOptions simple = { .export_name = "bad",
                                .no_structured_reply = true };
    NBDConn *conn;

    conn = connect_local(&structured, &error_abort);
    co_run(server_error_entry, conn);
    close_conn(conn);
    conn = connect_local(&simple, &error_abort);
    co_run(server_error_entry, conn);
    close_conn(conn);
}
END_TEST

#define NR_PARALLEL 40

typedef struct ParallelTest {
    NBDConn *conn;
    unsigned running;
    unsigned max_in_flight;
    int failures;
} ParallelTest;

typedef struct ParallelReq {
    ParallelTest *t;
    int idx;
} ParallelReq;

static void coroutine_fn parallel_entry(void *opaque)
{
    ParallelReq *r = opaque;
    ParallelTest *t = r->t;
    uint8_t buf[8192], got[8192];
    uint64_t off = 128 * KiB + r->idx * sizeof(buf);

    memset(buf, r->idx + 1, sizeof(buf));
    if (write_buf(t->conn, off, sizeof(buf), buf, 0) < 0) {
        t->failures++;
    }
    t->max_in_flight = MAX(t->max_in_flight, nbd_conn_in_flight(t->conn));
    if (read_buf(t->conn, off, sizeof(got), got) < 0 ||
        memcmp(buf, got, sizeof(buf)) != 0) {
        t->failures++;
    }
    t->running--;
}

START_TEST(test_parallel)
{
    NBDClientOptions o = { .export_name = "disk" };
    ParallelTest t = { 0 };
    ParallelReq reqs[NR_PARALLEL];
    int i;

    t.conn = connect_local(&o, &error_abort);
    for (i = 0; i < NR_PARALLEL; i++) {
        reqs[i] = (ParallelReq) { &t, i };
        t.running++;
        qemu_coroutine_enter(qemu_coroutine_create(parallel_entry,
                                                   &reqs[i]));
    }
    /* all 16 slots are taken before the first reply */
    ck_assert_uint_eq(nbd_conn_in_flight(t.conn), NBD_MAX_REQUESTS);
    while (t.running) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(t.failures, 0);
    ck_assert_uint_le(t.max_in_flight, NBD_MAX_REQUESTS);
    ck_assert_uint_eq(nbd_conn_in_flight(t.conn), 0);
    close_conn(t.conn);
}
END_TEST

/* ---- against a scripted fake server ---- */

typedef struct FakeServer FakeServer;
typedef void coroutine_fn FakeScript(FakeServer *fs);

struct FakeServer {
    CoChannel *ch;
    /* handshake knobs */
    bool no_structured;
    bool go_unsup;
    uint32_t min_block;
    uint16_t eflags;
    FakeScript *script;
    bool done;
    /* requests seen */
    unsigned nr_requests;
};

typedef struct FakeReq {
    uint16_t flags, type;
    uint64_t handle, offset;
    uint32_t len;
} FakeReq;

static void coroutine_fn fs_read(FakeServer *fs, void *buf, size_t len)
{
    ck_assert_int_eq(co_channel_read_all(fs->ch, buf, len, NULL), 0);
}

static void coroutine_fn fs_write(FakeServer *fs, const void *buf,
                                  size_t len)
{
    co_channel_write_all(fs->ch, buf, len, NULL);
}

static void coroutine_fn fs_rep(FakeServer *fs, uint32_t opt, uint32_t type,
                                const void *data, uint32_t len)
{
    uint8_t hdr[20];

    stq_be(hdr, NBD_REP_MAGIC);
    stl_be(hdr + 8, opt);
    stl_be(hdr + 12, type);
    stl_be(hdr + 16, len);
    fs_write(fs, hdr, 20);
    if (len) {
        fs_write(fs, data, len);
    }
}

static void coroutine_fn fs_handshake(FakeServer *fs)
{
    uint8_t buf[18];
    uint32_t cflags;

    stq_be(buf, NBD_INIT_MAGIC);
    stq_be(buf + 8, NBD_OPTS_MAGIC);
    stw_be(buf + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    fs_write(fs, buf, 18);
    fs_read(fs, buf, 4);
    cflags = ldl_be(buf);
    ck_assert_uint_eq(cflags, NBD_FLAG_C_FIXED_NEWSTYLE |
                      NBD_FLAG_C_NO_ZEROES);
    for (;;) {
        uint8_t hdr[16];
        g_autofree uint8_t *data = NULL;
        uint32_t opt, len;

        fs_read(fs, hdr, 16);
        ck_assert_uint_eq(ldq_be(hdr), NBD_OPTS_MAGIC);
        opt = ldl_be(hdr + 8);
        len = ldl_be(hdr + 12);
        data = g_malloc(len + 1);
        fs_read(fs, data, len);
        switch (opt) {
        case NBD_OPT_STRUCTURED_REPLY:
            if (fs->no_structured) {
                fs_rep(fs, opt, NBD_REP_ERR_UNSUP, NULL, 0);
            } else {
                fs_rep(fs, opt, NBD_REP_ACK, NULL, 0);
            }
            break;
        case NBD_OPT_SET_META_CONTEXT: {
            uint8_t ctx_rep[4 + 15];

            stl_be(ctx_rep, 7);
            memcpy(ctx_rep + 4, "base:allocation", 15);
            fs_rep(fs, opt, NBD_REP_META_CONTEXT, ctx_rep, sizeof(ctx_rep));
            fs_rep(fs, opt, NBD_REP_ACK, NULL, 0);
            break;
        }
        case NBD_OPT_GO: {
            uint8_t info[14];

            if (fs->go_unsup) {
                fs_rep(fs, opt, NBD_REP_ERR_UNSUP, "no GO here", 10);
                break;
            }
            stw_be(info, NBD_INFO_BLOCK_SIZE);
            stl_be(info + 2, fs->min_block ? fs->min_block : 1);
            stl_be(info + 6, 4096);
            stl_be(info + 10, 64 * KiB);
            fs_rep(fs, opt, NBD_REP_INFO, info, 14);
            stw_be(info, NBD_INFO_EXPORT);
            stq_be(info + 2, DISK_SIZE);
            stw_be(info + 10, NBD_FLAG_HAS_FLAGS | fs->eflags);
            fs_rep(fs, opt, NBD_REP_INFO, info, 12);
            fs_rep(fs, opt, NBD_REP_ACK, NULL, 0);
            return;
        }
        case NBD_OPT_EXPORT_NAME:
            stq_be(buf, DISK_SIZE);
            stw_be(buf + 8, NBD_FLAG_HAS_FLAGS | fs->eflags);
            fs_write(fs, buf, 10);
            return;
        default:
            fs_rep(fs, opt, NBD_REP_ERR_UNSUP, NULL, 0);
            break;
        }
    }
}

/* Read one request (and drop a write's payload); false on EOF */
static bool coroutine_fn fs_request(FakeServer *fs, FakeReq *r)
{
    uint8_t hdr[28];

    if (co_channel_read_all(fs->ch, hdr, 28, NULL) < 0) {
        return false;
    }
    ck_assert_uint_eq(ldl_be(hdr), NBD_REQUEST_MAGIC);
    r->flags = ldw_be(hdr + 4);
    r->type = ldw_be(hdr + 6);
    r->handle = ldq_be(hdr + 8);
    r->offset = ldq_be(hdr + 16);
    r->len = ldl_be(hdr + 24);
    if (r->type == NBD_CMD_WRITE) {
        co_channel_skip(fs->ch, r->len, NULL);
    }
    fs->nr_requests++;
    return true;
}

static void coroutine_fn fs_chunk(FakeServer *fs, uint16_t flags,
                                  uint16_t type, uint64_t handle,
                                  const void *payload, uint32_t len)
{
    uint8_t hdr[20];

    stl_be(hdr, NBD_STRUCTURED_REPLY_MAGIC);
    stw_be(hdr + 4, flags);
    stw_be(hdr + 6, type);
    stq_be(hdr + 8, handle);
    stl_be(hdr + 16, len);
    fs_write(fs, hdr, 20);
    if (len) {
        fs_write(fs, payload, len);
    }
}

static void coroutine_fn fs_data(FakeServer *fs, uint16_t flags,
                                 uint64_t handle, uint64_t offset,
                                 uint32_t len, uint8_t fill)
{
    g_autofree uint8_t *p = g_malloc(8 + len);

    stq_be(p, offset);
    memset(p + 8, fill, len);
    fs_chunk(fs, flags, NBD_REPLY_TYPE_OFFSET_DATA, handle, p, 8 + len);
}

static void coroutine_fn fs_hole(FakeServer *fs, uint16_t flags,
                                 uint64_t handle, uint64_t offset,
                                 uint32_t len)
{
    uint8_t p[12];

    stq_be(p, offset);
    stl_be(p + 8, len);
    fs_chunk(fs, flags, NBD_REPLY_TYPE_OFFSET_HOLE, handle, p, 12);
}

static void coroutine_fn fs_error(FakeServer *fs, uint16_t flags,
                                  uint16_t type, uint64_t handle,
                                  uint32_t err, const char *msg)
{
    size_t ml = strlen(msg);
    g_autofree uint8_t *p = g_malloc(6 + ml + 8);
    uint32_t len = 6 + ml;

    stl_be(p, err);
    stw_be(p + 4, ml);
    memcpy(p + 6, msg, ml);
    if (type == NBD_REPLY_TYPE_ERROR_OFFSET) {
        stq_be(p + len, 0);
        len += 8;
    }
    fs_chunk(fs, flags, type, handle, p, len);
}

static void coroutine_fn fs_simple(FakeServer *fs, uint32_t err,
                                   uint64_t handle)
{
    uint8_t p[16];

    stl_be(p, NBD_SIMPLE_REPLY_MAGIC);
    stl_be(p + 4, err);
    stq_be(p + 8, handle);
    fs_write(fs, p, 16);
}

static void coroutine_fn fs_entry(void *opaque)
{
    FakeServer *fs = opaque;

    fs_handshake(fs);
    fs->script(fs);
    fs->done = true;
}

typedef struct FakeTest {
    FakeServer fs;
    NBDConn *conn;
} FakeTest;

static void fake_start(FakeTest *t, FakeScript *script)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    t->fs.ch = co_channel_new(sv[0], ctx);
    t->fs.script = script;
    qemu_coroutine_enter(qemu_coroutine_create(fs_entry, &t->fs));
    t->conn = nbd_conn_new(sv[1], ctx, &(NBDClientOptions) {
                               .base_allocation = true }, &error_abort);
}

static void fake_finish(FakeTest *t)
{
    nbd_conn_close(t->conn);
    while (!t->fs.done) {
        aio_poll(ctx, true);
    }
    co_channel_free(t->fs.ch);
}

/* Data and holes out of order, a zero-length-free mix, then DONE */
static void coroutine_fn script_chunks(FakeServer *fs)
{
    FakeReq r;

    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_READ);
    fs_data(fs, 0, r.handle, r.offset + 4096, 4096, 0x11);
    fs_hole(fs, 0, r.handle, r.offset, 4096);
    fs_data(fs, NBD_REPLY_FLAG_DONE, r.handle, r.offset + 8192, 4096, 0x22);
    /* block status: one extent, then NONE with DONE */
    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_BLOCK_STATUS);
    ck_assert_uint_eq(r.flags, NBD_CMD_FLAG_REQ_ONE);
    {
        uint8_t p[12];

        stl_be(p, 7);
        stl_be(p + 4, 8192);
        stl_be(p + 8, NBD_STATE_HOLE | NBD_STATE_ZERO);
        fs_chunk(fs, 0, NBD_REPLY_TYPE_BLOCK_STATUS, r.handle, p, 12);
        fs_chunk(fs, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r.handle,
                 NULL, 0);
    }
    /* an error chunk, then more data, then DONE: the error wins */
    ck_assert(fs_request(fs, &r));
    fs_error(fs, 0, NBD_REPLY_TYPE_ERROR_OFFSET, r.handle, NBD_ENOSPC,
             "disk full");
    fs_data(fs, NBD_REPLY_FLAG_DONE, r.handle, r.offset, r.len, 0x33);
    /* simple error replies map to errno */
    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_FLUSH);
    fs_simple(fs, NBD_EPERM, r.handle);
    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_TRIM);
    fs_error(fs, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r.handle,
             NBD_EOVERFLOW, "");
    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_WRITE_ZEROES);
    ck_assert_uint_eq(r.flags, NBD_CMD_FLAG_FAST_ZERO);
    fs_simple(fs, NBD_ENOTSUP, r.handle);
    ck_assert(fs_request(fs, &r));
    ck_assert_uint_eq(r.type, NBD_CMD_DISC);
}

static void coroutine_fn chunks_entry(void *opaque)
{
    NBDConn *conn = opaque;
    uint8_t buf[12288];
    NBDExtent ext = { 0 };

    memset(buf, 0xff, sizeof(buf));
    ck_assert_int_eq(read_buf(conn, 65536, sizeof(buf), buf), 0);
    ck_assert(all_bytes(buf, 4096, 0));
    ck_assert(all_bytes(buf + 4096, 4096, 0x11));
    ck_assert(all_bytes(buf + 8192, 4096, 0x22));
    ck_assert_int_eq(nbd_conn_co_block_status(conn, 0, 65536, &ext, NULL),
                     0);
    ck_assert_uint_eq(ext.length, 8192);
    ck_assert_uint_eq(ext.flags, NBD_STATE_HOLE | NBD_STATE_ZERO);
    ck_assert_int_eq(read_buf(conn, 0, 4096, buf), -ENOSPC);
    ck_assert_int_eq(nbd_conn_co_flush(conn), -EPERM);
    ck_assert_int_eq(nbd_conn_co_trim(conn, 0, 4096, 0), -EOVERFLOW);
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 0, 4096,
                                              NBD_CMD_FLAG_FAST_ZERO),
                     -ENOTSUP);
    ck_assert(!nbd_conn_is_broken(conn));
}

START_TEST(test_fake_chunks)
{
    FakeTest t = { .fs = { .eflags = NBD_FLAG_SEND_FLUSH |
                           NBD_FLAG_SEND_TRIM |
                           NBD_FLAG_SEND_WRITE_ZEROES |
                           NBD_FLAG_SEND_FAST_ZERO } };

    fake_start(&t, script_chunks);
    ck_assert(nbd_conn_info(t.conn)->base_allocation);
    ck_assert_uint_eq(nbd_conn_info(t.conn)->base_allocation_id, 7);
    co_run(chunks_entry, t.conn);
    fake_finish(&t);
    ck_assert_uint_eq(t.fs.nr_requests, 7);
}
END_TEST

/* Protocol violations break the connection; each script ends on EOF */
static void coroutine_fn script_short_read(FakeServer *fs)
{
    FakeReq r;

    ck_assert(fs_request(fs, &r));
    fs_data(fs, NBD_REPLY_FLAG_DONE, r.handle, r.offset, r.len / 2, 1);
    ck_assert(!fs_request(fs, &r));
}

static void coroutine_fn script_bad_handle(FakeServer *fs)
{
    FakeReq r;

    ck_assert(fs_request(fs, &r));
    fs_simple(fs, 0, r.handle + 1000);
    ck_assert(!fs_request(fs, &r));
}

static void coroutine_fn script_outside(FakeServer *fs)
{
    FakeReq r;

    ck_assert(fs_request(fs, &r));
    fs_data(fs, NBD_REPLY_FLAG_DONE, r.handle, r.offset + 4096, r.len, 1);
    ck_assert(!fs_request(fs, &r));
}

static void coroutine_fn script_bad_magic(FakeServer *fs)
{
    FakeReq r;
    uint8_t junk[16] = { 0xde, 0xad };

    ck_assert(fs_request(fs, &r));
    fs_write(fs, junk, sizeof(junk));
    ck_assert(!fs_request(fs, &r));
}

static void coroutine_fn script_simple_read_when_structured(FakeServer *fs)
{
    FakeReq r;

    ck_assert(fs_request(fs, &r));
    fs_simple(fs, 0, r.handle);
    ck_assert(!fs_request(fs, &r));
}

static void coroutine_fn broken_entry(void *opaque)
{
    NBDConn *conn = opaque;
    uint8_t buf[8192];

    ck_assert_int_eq(read_buf(conn, 0, sizeof(buf), buf), -EIO);
    ck_assert(nbd_conn_is_broken(conn));
    /* later requests fail at once */
    ck_assert_int_eq(read_buf(conn, 0, 4096, buf), -EIO);
    ck_assert_int_eq(nbd_conn_co_flush(conn), -EIO);
}

START_TEST(test_fake_protocol_errors)
{
    FakeScript *scripts[] = { script_short_read, script_bad_handle,
                              script_outside, script_bad_magic,
                              script_simple_read_when_structured };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(scripts); i++) {
        FakeTest t = { .fs = { .eflags = NBD_FLAG_SEND_FLUSH } };

        fake_start(&t, scripts[i]);
        co_run(broken_entry, t.conn);
        fake_finish(&t);
        ck_assert_uint_eq(t.fs.nr_requests, 1);
    }
}
END_TEST

/* Take three requests, answer one, hang up on the other two */
static void coroutine_fn script_hangup(FakeServer *fs)
{
    FakeReq r[3];
    int i;

    for (i = 0; i < 3; i++) {
        ck_assert(fs_request(fs, &r[i]));
    }
    fs_simple(fs, 0, r[1].handle);
    co_channel_shutdown(fs->ch);
}

typedef struct HangupReq {
    NBDConn *conn;
    int ret;
    bool done;
} HangupReq;

static void coroutine_fn hangup_entry(void *opaque)
{
    HangupReq *h = opaque;

    h->ret = nbd_conn_co_flush(h->conn);
    h->done = true;
}

START_TEST(test_fake_hangup)
{
    FakeTest t = { .fs = { .eflags = NBD_FLAG_SEND_FLUSH } };
    HangupReq h[3];
    int i;

    fake_start(&t, script_hangup);
    for (i = 0; i < 3; i++) {
        h[i] = (HangupReq) { .conn = t.conn };
        qemu_coroutine_enter(qemu_coroutine_create(hangup_entry, &h[i]));
    }
    while (!h[0].done || !h[1].done || !h[2].done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(h[0].ret, -EIO);
    ck_assert_int_eq(h[1].ret, 0);
    ck_assert_int_eq(h[2].ret, -EIO);
    ck_assert(nbd_conn_is_broken(t.conn));
    ck_assert_uint_eq(nbd_conn_in_flight(t.conn), 0);
    fake_finish(&t);
}
END_TEST

static void coroutine_fn script_echo_reads(FakeServer *fs)
{
    FakeReq r;

    while (fs_request(fs, &r)) {
        if (r.type == NBD_CMD_DISC) {
            break;
        }
        ck_assert_uint_eq(r.type, NBD_CMD_READ);
        if (fs->no_structured) {
            g_autofree uint8_t *p = g_malloc(r.len);

            memset(p, 0x77, r.len);
            fs_simple(fs, 0, r.handle);
            fs_write(fs, p, r.len);
        } else {
            fs_data(fs, NBD_REPLY_FLAG_DONE, r.handle, r.offset, r.len,
                    0x77);
        }
    }
}

static void coroutine_fn limits_entry(void *opaque)
{
    NBDConn *conn = opaque;
    g_autofree uint8_t *buf = g_malloc(128 * KiB);

    /* min_block 512: unaligned requests are refused locally */
    ck_assert_int_eq(read_buf(conn, 100, 512, buf), -EINVAL);
    ck_assert_int_eq(read_buf(conn, 0, 1000, buf), -EINVAL);
    /* max_block 64k */
    ck_assert_int_eq(read_buf(conn, 0, 128 * KiB, buf), -EINVAL);
    ck_assert_int_eq(read_buf(conn, 512, 64 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 64 * KiB, 0x77));
    /* no WRITE_ZEROES/TRIM/FLUSH flags: nothing is sent */
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 0, 512, 0), -ENOTSUP);
    ck_assert_int_eq(nbd_conn_co_trim(conn, 0, 512, 0), -ENOTSUP);
    ck_assert_int_eq(nbd_conn_co_flush(conn), 0);
    ck_assert_int_eq(write_buf(conn, 0, 512, buf, NBD_CMD_FLAG_FUA),
                     -ENOTSUP);
}

static void coroutine_fn simple_read_entry(void *opaque)
{
    NBDConn *conn = opaque;
    uint8_t buf[4096] = { 0 };

    ck_assert_int_eq(read_buf(conn, 4096, sizeof(buf), buf), 0);
    ck_assert(all_bytes(buf, sizeof(buf), 0x77));
}

START_TEST(test_fake_limits_and_fallback)
{
    FakeTest t = { .fs = { .min_block = 512 } };
    FakeTest old = { .fs = { .go_unsup = true, .no_structured = true } };

    fake_start(&t, script_echo_reads);
    ck_assert_uint_eq(nbd_conn_info(t.conn)->min_block, 512);
    ck_assert_uint_eq(nbd_conn_info(t.conn)->max_block, 64 * KiB);
    co_run(limits_entry, t.conn);
    fake_finish(&t);
    ck_assert_uint_eq(t.fs.nr_requests, 2);

    /* no OPT_GO: EXPORT_NAME, simple replies, default block sizes */
    fake_start(&old, script_echo_reads);
    ck_assert(nbd_conn_info(old.conn)->used_export_name);
    ck_assert(!nbd_conn_info(old.conn)->structured_reply);
    ck_assert(!nbd_conn_info(old.conn)->base_allocation);
    ck_assert_uint_eq(nbd_conn_info(old.conn)->size, DISK_SIZE);
    ck_assert_uint_eq(nbd_conn_info(old.conn)->min_block, 1);
    co_run(simple_read_entry, old.conn);
    fake_finish(&old);
    ck_assert_uint_eq(old.fs.nr_requests, 2);
}
END_TEST

/* ---- the block driver ---- */

static char *uri(const char *export)
{
    g_autofree char *sock = tpath("nbd.sock");

    return g_strdup_printf("nbd+unix:///%s?socket=%s", export, sock);
}

START_TEST(test_driver_uri)
{
    g_autofree char *u = uri("disk");
    g_autofree uint8_t *buf = g_malloc(128 * KiB);
    BlockBackend *blk;
    BlockDriverState *bs;
    int64_t pnum, map;
    BlockDriverState *file;
    int ret;

    /* probed: raw over nbd */
    blk = blk_new_open(u, NULL, NULL, BDRV_O_RDWR, &error_abort);
    bs = blk_bs(blk);
    ck_assert_str_eq(bs->drv->format_name, "raw");
    ck_assert_int_eq(blk_getlength(blk), DISK_SIZE);
    ck_assert_int_eq(blk_pread(blk, 0, 4096, buf, 0), 0);
    ck_assert(all_bytes(buf, 4096, 0xaa));
    /* unaligned write: the generic layer does RMW if needed */
    memset(buf, 0x3c, 128 * KiB);
    ck_assert_int_eq(blk_pwrite(blk, 100 * KiB + 7, 100 * KiB, buf,
                                BDRV_REQ_FUA), 0);
    memset(buf, 0, 128 * KiB);
    ck_assert_int_eq(blk_pread(blk, 100 * KiB + 7, 100 * KiB, buf, 0), 0);
    ck_assert(all_bytes(buf, 100 * KiB, 0x3c));
    ck_assert_int_eq(blk_pwrite_zeroes(blk, 512 * KiB, 64 * KiB,
                                       BDRV_REQ_MAY_UNMAP), 0);
    ck_assert_int_eq(blk_pdiscard(blk, 256 * KiB, 64 * KiB), 0);
    ck_assert_int_eq(blk_flush(blk), 0);
    /* block status through base:allocation */
    ret = bdrv_block_status(bs, 512 * KiB, 64 * KiB, &pnum, &map, &file);
    ck_assert_int_ge(ret, 0);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert(!(ret & BDRV_BLOCK_DATA));
    ck_assert_int_eq(pnum, 64 * KiB);
    ret = bdrv_block_status(bs, 0, 64 * KiB, &pnum, &map, &file);
    ck_assert_int_ge(ret, 0);
    ck_assert(ret & BDRV_BLOCK_DATA);
    blk_unref(blk);

    /* the data really is in the image behind the export */
    {
        g_autofree char *disk = tpath("disk.raw");
        int fd = open(disk, O_RDONLY);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, buf, 4096, 100 * KiB + 7), 4096);
        close(fd);
        ck_assert(all_bytes(buf, 4096, 0x3c));
    }
}
END_TEST

static BlockDriverState *open_opts(const char *json, int flags, Error **errp)
{
    json_error_t jerr;
    g_autoptr(json_t) opts = json_loads(json, 0, &jerr);

    ck_assert_ptr_nonnull(opts);
    return bdrv_open_flags(opts, flags, errp);
}

START_TEST(test_driver_options)
{
    g_autofree char *sock = tpath("nbd.sock");
    g_autofree char *json = NULL;
    g_autofree char *legacy = g_strdup_printf("nbd:unix:%s:exportname=ro",
                                              sock);
    BlockDriverState *bs;
    BlockBackend *blk;
    Error *err = NULL;
    static const struct {
        const char *tail;
        const char *msg;
    } bad[] = {
        { ", \"tls-creds\": \"tls0\"",
          "No TLS credentials with id 'tls0'" },
        { ", \"tls-hostname\": \"h\"", "tls-hostname is not supported" },
        { ", \"x-dirty-bitmap\": \"b\"", "x-dirty-bitmap is not supported" },
        { ", \"export\": \"disk\", \"bogus\": 1",
          "doesn't support the option 'bogus'" },
        { ", \"export\": \"nope\"", "Requested export not available" },
    };
    size_t i;

    json = g_strdup_printf("{\"driver\": \"nbd\", \"node-name\": \"n0\", "
                           "\"server\": {\"type\": \"unix\", \"path\": "
                           "\"%s\"}, \"export\": \"disk\", "
                           "\"reconnect-delay\": 5, \"open-timeout\": 1}",
                           sock);
    bs = open_opts(json, BDRV_O_RDWR, &error_abort);
    ck_assert_str_eq(bs->drv->format_name, "nbd");
    ck_assert_int_eq(bdrv_getlength(bs), DISK_SIZE);
    bdrv_unref(bs);

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_free(json);
        json = g_strdup_printf("{\"driver\": \"nbd\", \"server\": "
                               "{\"type\": \"unix\", \"path\": \"%s\"}%s}",
                               sock, bad[i].tail);
        ck_assert_ptr_null(open_opts(json, 0, &err));
        ck_assert_msg(strstr(error_get_pretty(err), bad[i].msg), "%s",
                      error_get_pretty(err));
        g_clear_pointer(&err, error_free);
    }
    ck_assert_ptr_null(open_opts("{\"driver\": \"nbd\"}", 0, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Parameter 'server.type' is missing");
    g_clear_pointer(&err, error_free);

    /* read-only exports need read-only nodes */
    g_free(json);
    json = uri("ro");
    ck_assert_ptr_null(blk_new_open(json, "raw", NULL, BDRV_O_RDWR, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Could not open image: Permission denied");
    g_clear_pointer(&err, error_free);
    blk = blk_new_open(legacy, "raw", NULL, 0, &error_abort);
    ck_assert_int_eq(blk_getlength(blk), DISK_SIZE);
    blk_unref(blk);

    /* URI syntax */
    ck_assert_ptr_null(blk_new_open("nbd+unix:///disk", "raw", NULL, 0,
                                    &err));
    ck_assert_msg(strstr(error_get_pretty(err), "'socket'"), "%s",
                  error_get_pretty(err));
    g_clear_pointer(&err, error_free);
    ck_assert_ptr_null(blk_new_open("nbd://localhost/disk?socket=x", "raw",
                                    NULL, 0, &err));
    ck_assert_msg(strstr(error_get_pretty(err), "no parameters"), "%s",
                  error_get_pretty(err));
    g_clear_pointer(&err, error_free);
    /* -f nbd with a file name goes through the same parser */
    g_free(json);
    json = uri("disk");
    bs = bdrv_open_file(json, "nbd", NULL, 0, &error_abort);
    ck_assert_str_eq(bs->drv->format_name, "nbd");
    bdrv_unref(bs);
    while (aio_poll(ctx, false)) {
    }
}
END_TEST

START_TEST(test_driver_inet)
{
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_INET };
    g_autofree char *u = NULL;
    g_autofree char *legacy = NULL;
    g_autofree uint8_t *buf = g_malloc(4096);
    BlockBackend *blk;
    int port;

    /* the same export, now on TCP with an ephemeral port */
    nbd_server_shutdown();
    addr.u.inet.host = (char *)"127.0.0.1";
    addr.u.inet.port = (char *)"0";
    ck_assert(nbd_server_start(&addr, NULL, NULL, 0, 10, &error_abort));
    add_export("e-disk", "disk", "disk", true);
    port = socket_local_port(nbd_server_listen_fd());
    ck_assert_int_gt(port, 0);

    u = g_strdup_printf("nbd://127.0.0.1:%d/disk", port);
    blk = blk_new_open(u, "raw", NULL, BDRV_O_RDWR, &error_abort);
    memset(buf, 0x19, 4096);
    ck_assert_int_eq(blk_pwrite(blk, 8192, 4096, buf, 0), 0);
    blk_unref(blk);
    legacy = g_strdup_printf("nbd:127.0.0.1:%d:exportname=disk", port);
    blk = blk_new_open(legacy, "raw", NULL, 0, &error_abort);
    memset(buf, 0, 4096);
    ck_assert_int_eq(blk_pread(blk, 8192, 4096, buf, 0), 0);
    ck_assert(all_bytes(buf, 4096, 0x19));
    blk_unref(blk);
    g_free(u);
    u = g_strdup_printf("nbd+tcp://127.0.0.1:%d", port);
    /* no export in the URI: the default export "" does not exist */
    ck_assert_ptr_null(blk_new_open(u, "raw", NULL, 0, NULL));
    while (aio_poll(ctx, false)) {
    }
}
END_TEST

/* ---- qemu-storage-daemon as the server ---- */

#define QSD "/usr/bin/qemu-storage-daemon"

static void coroutine_fn qsd_entry(void *opaque)
{
    NBDConn *conn = opaque;
    g_autofree uint8_t *buf = g_malloc(256 * KiB);
    NBDExtent base = { 0 }, depth = { 0 };

    memset(buf, 0x6e, 256 * KiB);
    ck_assert_int_eq(write_buf(conn, 1 * MiB, 256 * KiB, buf,
                               NBD_CMD_FLAG_FUA), 0);
    memset(buf, 0, 256 * KiB);
    ck_assert_int_eq(read_buf(conn, 1 * MiB, 256 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 256 * KiB, 0x6e));
    ck_assert_int_eq(read_buf(conn, 0, 64 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 64 * KiB, 0));
    ck_assert_int_eq(nbd_conn_co_block_status(conn, 1 * MiB, 1 * MiB, &base,
                                              &depth), 0);
    ck_assert_uint_eq(base.flags, 0);
    ck_assert_uint_ge(base.length, 256 * KiB);
    ck_assert_uint_eq(depth.flags, 1);
    ck_assert_int_eq(nbd_conn_co_write_zeroes(conn, 1 * MiB, 64 * KiB, 0),
                     0);
    ck_assert_int_eq(nbd_conn_co_trim(conn, 1 * MiB + 64 * KiB, 64 * KiB,
                                      0), 0);
    ck_assert_int_eq(nbd_conn_co_flush(conn), 0);
    /* (trim is advisory: QSD's node has discard=ignore) */
    ck_assert_int_eq(read_buf(conn, 1 * MiB, 64 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 64 * KiB, 0));
    ck_assert_int_eq(read_buf(conn, 1 * MiB + 128 * KiB, 128 * KiB, buf), 0);
    ck_assert(all_bytes(buf, 128 * KiB, 0x6e));
    ck_assert_int_eq(nbd_conn_co_block_status(conn, 1 * MiB, 64 * KiB, &base,
                                              NULL), 0);
    ck_assert(base.flags & NBD_STATE_ZERO);
}

START_TEST(test_qsd_interop)
{
    g_autofree char *img = tpath("qsd.raw");
    g_autofree char *qsock = tpath("qsd.sock");
    g_autofree char *bd = NULL;
    g_autofree char *srv = NULL;
    g_autofree char *u = NULL;
    NBDClientOptions o = { .export_name = "q", .base_allocation = true,
                           .allocation_depth = true };
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    NBDConn *conn;
    BlockBackend *blk;
    GPid pid;
    int fd, i, status;

    if (access(QSD, X_OK) != 0) {
        fprintf(stderr, "SKIP: %s not installed\n", QSD);
        return;
    }
    fd = open(img, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4 * MiB), 0);
    close(fd);
    bd = g_strdup_printf("driver=file,filename=%s,node-name=n", img);
    srv = g_strdup_printf("addr.type=unix,addr.path=%s", qsock);
    {
        const char *argv[] = {
            QSD, "--blockdev", bd, "--nbd-server", srv, "--export",
            "type=nbd,id=e,node-name=n,name=q,writable=on,"
            "allocation-depth=on", NULL,
        };

        ck_assert(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                &pid, NULL));
    }
    /* an external process: wait (bounded) for its socket to appear */
    for (i = 0; i < 500 && access(qsock, F_OK) != 0; i++) {
        g_usleep(10 * 1000);
    }
    ck_assert_msg(access(qsock, F_OK) == 0, "qemu-storage-daemon did not "
                  "start");
    addr.u.q_unix.path = qsock;
    conn = nbd_conn_connect(&addr, ctx, &o, &error_abort);
    ck_assert(nbd_conn_info(conn)->structured_reply);
    ck_assert(nbd_conn_info(conn)->base_allocation);
    ck_assert(nbd_conn_info(conn)->allocation_depth);
    ck_assert_uint_eq(nbd_conn_info(conn)->size, 4 * MiB);
    co_run(qsd_entry, conn);
    ck_assert(!nbd_conn_is_broken(conn));
    nbd_conn_close(conn);

    /* and the block driver through a URI */
    u = g_strdup_printf("nbd+unix:///q?socket=%s", qsock);
    blk = blk_new_open(u, "raw", NULL, BDRV_O_RDWR, &error_abort);
    ck_assert_int_eq(blk_getlength(blk), 4 * MiB);
    ck_assert_int_eq(blk_pread(blk, 1 * MiB + 128 * KiB, 64 * KiB, buf, 0),
                     0);
    ck_assert(all_bytes(buf, 64 * KiB, 0x6e));
    blk_unref(blk);

    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    g_spawn_close_pid(pid);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("nbd-client");
    TCase *tc = tcase_create("client");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_handshake);
    tcase_add_test(tc, test_handshake_variants);
    tcase_add_test(tc, test_io_structured);
    tcase_add_test(tc, test_io_simple);
    tcase_add_test(tc, test_readonly_and_ranges);
    tcase_add_test(tc, test_server_errors);
    tcase_add_test(tc, test_parallel);
    tcase_add_test(tc, test_fake_chunks);
    tcase_add_test(tc, test_fake_protocol_errors);
    tcase_add_test(tc, test_fake_hangup);
    tcase_add_test(tc, test_fake_limits_and_fallback);
    tcase_add_test(tc, test_driver_uri);
    tcase_add_test(tc, test_driver_options);
    tcase_add_test(tc, test_driver_inet);
    tcase_add_test(tc, test_qsd_interop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
