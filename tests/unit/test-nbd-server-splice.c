/*
 * NBD server: zero-copy READ replies (sendfile from the image file into
 * the socket, nbd/server.c).  The server runs in-process; the wire client
 * is the byte-level one in nbd-wire-client.h (shared with test-nbd-server.c).
 *
 * Image: "disk.raw" is a sparse file of an odd size (DISK_FILE_SIZE) with
 * random data in three extents, the last one up to EOF (so the final
 * partial sector is data), holes elsewhere.  It is exported raw-on-file
 * ("disk", sendfile), and through qcow2 ("q", a copy), blkdebug and a raw
 * offset window, which must not use sendfile.  Every read is compared
 * with the file's bytes read back with pread (zeroes past EOF), and the
 * export's splice_bytes counter says which path served it.
 */
#include "qemu/osdep.h"
#include "qapi-types.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/qcow2.h"
#include "block/nbd.h"
#include "block/export.h"
#include "nbd/nbd-internal.h"
#include "qemu/co-channel.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"
#include "qapi-commands.h"
#include <check.h>
#include <signal.h>
#include <sys/socket.h>

#define DISK_FILE_SIZE (40 * MiB + 1000)
#define BIG_READ       (32 * MiB)

static char *tmpdir;
static AioContext *ctx;
static BlockDriverState *disk_bs, *extra_bs;
static uint8_t *file_data;       /* the file, zero-padded to disk_size */
static uint64_t disk_size;       /* size of the export being tested */
static const uint8_t *expect;    /* what the export reads as */

/* data extents of disk.raw */
static const struct {
    uint64_t off, len;
} extents[] = {
    { 0, 1 * MiB },
    { 3 * MiB + 123, 2 * MiB - 123 },
    { 36 * MiB, DISK_FILE_SIZE - 36 * MiB },
};

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockDriverState *open_node(const char *fmt, ...)
{
    g_autofree char *json = NULL;
    g_autoptr(json_t) opts = NULL;
    json_error_t jerr;
    Error *err = NULL;
    BlockDriverState *bs;
    va_list ap;

    va_start(ap, fmt);
    json = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    opts = json_loads(json, 0, &jerr);
    ck_assert_ptr_nonnull(opts);
    bs = bdrv_open_flags(opts, BDRV_O_RDWR, &err);
    if (!bs) {
        error_report_err(err);
    }
    ck_assert_ptr_nonnull(bs);
    return bs;
}

static void make_disk(void)
{
    g_autofree char *disk = tpath("disk.raw");
    GRand *rand = g_rand_new_with_seed(42);
    int64_t len;
    size_t i, k;
    int fd;

    fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_FILE_SIZE), 0);
    file_data = g_malloc0(DISK_FILE_SIZE + 4096);
    for (i = 0; i < G_N_ELEMENTS(extents); i++) {
        uint8_t *p = file_data + extents[i].off;

        for (k = 0; k < extents[i].len; k++) {
            p[k] = g_rand_int(rand) | 1;  /* never zero */
        }
        ck_assert_int_eq(pwrite(fd, p, extents[i].len, extents[i].off),
                         extents[i].len);
    }
    close(fd);
    g_rand_free(rand);
    disk_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"disk\", "
                        "\"file\": {\"driver\": \"file\", "
                        "\"filename\": \"%s\"}}", disk);
    len = bdrv_getlength(disk_bs);
    ck_assert_int_ge(len, DISK_FILE_SIZE);
    ck_assert_int_le(len, DISK_FILE_SIZE + 4096);
    disk_size = len;
    expect = file_data;
}

static void start_server(void)
{
    g_autofree char *sock = tpath("nbd.sock");
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };

    addr.u.q_unix.path = sock;
    ck_assert(nbd_server_start(&addr, NULL, NULL, 0, 10, &error_abort));
}

static void setup(void)
{
    qemu_init_main_loop();
    bdrv_init();
    ctx = qemu_get_aio_context();
    tmpdir = g_dir_make_tmp("test-nbd-splice-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
    make_disk();
    start_server();
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
    if (extra_bs) {
        bdrv_unref(extra_bs);
        extra_bs = NULL;
    }
    dir = g_dir_open(tmpdir, 0, NULL);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = tpath(name);
        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    g_free(file_data);
}

static void add_export(const char *id, const char *node, const char *name)
{
    BlockExportOptions *o = g_new0(BlockExportOptions, 1);
    Error *err = NULL;

    o->type = BLOCK_EXPORT_TYPE_NBD;
    o->id = g_strdup(id);
    o->node_name = g_strdup(node);
    o->has_writable = true;
    o->writable = false;
    o->u.nbd.name = g_strdup(name);
    if (!blk_exp_add(o, &err)) {
        error_report_err(err);
        ck_abort();
    }
    qapi_free_BlockExportOptions(o);
}

static uint64_t splice_bytes(const char *name)
{
    NBDExport *exp = nbd_export_find(name);

    ck_assert_ptr_nonnull(exp);
    return exp->splice_bytes;
}

/* ---- the test client ---- */

#include "nbd-wire-client.h"

/* Connect, structured replies on, GO to @name */
static TC *coroutine_fn tc_open(const char *name, bool structured,
                                uint16_t *flags)
{
    return tc_connect(name, structured, disk_size, flags);
}


/* ---- reads ---- */

static const char *cur_export = "disk";
static bool cur_structured = true;

/* READ [from, from + len) and check it against expect[] */
static void coroutine_fn check_read(TC *tc, uint64_t cookie, uint64_t from,
                                    uint32_t len, uint16_t flags,
                                    int *ndata, int *nholes)
{
    g_autofree uint8_t *buf = g_malloc(len + 1);
    int d = 0, h = 0;

    memset(buf, 0x55, len + 1);
    tc_req(tc, flags, NBD_CMD_READ, cookie, from, len, NULL);
    if (cur_structured) {
        ck_assert_uint_eq(tc_sread(tc, cookie, from, len, buf, &d, &h, NULL),
                          0);
    } else {
        ck_assert_uint_eq(tc_simple(tc, cookie, buf, len), 0);
    }
    ck_assert_msg(memcmp(buf, expect + from, len) == 0,
                  "%s: read of %" PRIu64 "+%" PRIu32 " differs", cur_export,
                  from, len);
    if (ndata) {
        *ndata = d;
        *nholes = h;
    }
}

static const struct {
    uint64_t from;
    uint32_t len;
} ranges[] = {
    { 0, 4096 },                          /* data */
    { 1 * MiB, 1 * MiB },                 /* hole */
    { 1 * MiB - 1000, 2 * MiB + 1007 },   /* data, hole, data: unaligned */
    { 3 * MiB + 100, 50 },                /* hole + data, odd */
    { 5, 1 },
    { 4 * MiB + 1, 3 * MiB - 3 },
    { 36 * MiB - 333, 4 * MiB + 1333 },   /* up to EOF (partial sector) */
    { 40 * MiB + 999, 1 },                /* the very last byte */
    { 0, BIG_READ },                      /* big, mixed */
    { 6 * MiB, BIG_READ },                /* big, through the last extent */
};

static void coroutine_fn sc_ranges(void)
{
    TC *tc = tc_open(cur_export, cur_structured, NULL);
    size_t i;
    int d, h;

    for (i = 0; i < G_N_ELEMENTS(ranges); i++) {
        if (ranges[i].from + ranges[i].len > disk_size) {
            continue;   /* a window is smaller */
        }
        check_read(tc, 100 + i, ranges[i].from, ranges[i].len, 0, &d, &h);
        if (cur_structured && i == 2 && expect == file_data) {
            /* data, hole, data */
            ck_assert_int_eq(d, 2);
            ck_assert_int_eq(h, 1);
        }
        if (cur_structured) {
            /* DF: one data chunk */
            check_read(tc, 200 + i, ranges[i].from, ranges[i].len,
                       NBD_CMD_FLAG_DF, &d, &h);
            ck_assert_int_eq(d, 1);
            ck_assert_int_eq(h, 0);
        }
    }
    /* size: the last partial sector reads as zeroes past the file's EOF */
    if (disk_size > DISK_FILE_SIZE) {
        check_read(tc, 300, DISK_FILE_SIZE - 10, disk_size - DISK_FILE_SIZE
                   + 10, 0, NULL, NULL);
    }
    tc_disc(tc);
}

/* Bytes of data (not holes) READ of ranges[] asks for, structured or not */
static uint64_t ranges_data_bytes(bool structured)
{
    uint64_t total = 0;
    size_t i, k;

    for (i = 0; i < G_N_ELEMENTS(ranges); i++) {
        for (k = 0; k < G_N_ELEMENTS(extents); k++) {
            uint64_t s = MAX(ranges[i].from, extents[k].off);
            uint64_t e = MIN(ranges[i].from + ranges[i].len,
                             extents[k].off + extents[k].len);
            total += e > s ? e - s : 0;
        }
    }
    return total;
}

START_TEST(test_ranges)
{
    uint64_t sent;

    cur_structured = _i == 0;
    add_export("e0", "disk", "disk");
    run(sc_ranges);
    sent = splice_bytes("disk");
    /* all data bytes went by sendfile: at least the data extents read */
    ck_assert_uint_ge(sent, ranges_data_bytes(cur_structured));
    if (!cur_structured) {
        uint64_t total = 0;
        size_t i;

        for (i = 0; i < G_N_ELEMENTS(ranges); i++) {
            total += ranges[i].len;
        }
        if (disk_size > DISK_FILE_SIZE) {
            total += disk_size - DISK_FILE_SIZE + 10;
        }
        /* whole ranges, less what lies past the file's EOF */
        ck_assert_uint_eq(sent, total - (disk_size - DISK_FILE_SIZE));
    }
}
END_TEST

/* ---- other node types: the buffer path, same bytes ---- */

static void make_qcow2_copy(void)
{
    g_autofree char *path = tpath("copy.qcow2");
    g_autofree char *opts = g_strdup_printf("{\"size\": %" PRIu64 "}",
                                            disk_size);
    json_error_t jerr;
    json_t *o = json_loads(opts, 0, &jerr);
    Error *err = NULL;
    BlockBackend *blk;
    size_t i;

    ck_assert_int_eq(bdrv_create(&bdrv_qcow2, path, o, &err), 0);
    json_decref(o);
    blk = blk_new_open(path, "qcow2", NULL, BDRV_O_RDWR, &error_abort);
    for (i = 0; i < G_N_ELEMENTS(extents); i++) {
        ck_assert_int_eq(blk_pwrite(blk, extents[i].off, extents[i].len,
                                    file_data + extents[i].off, 0), 0);
    }
    blk_unref(blk);
    extra_bs = open_node("{\"driver\": \"qcow2\", \"node-name\": \"q\", "
                         "\"file\": {\"driver\": \"file\", "
                         "\"filename\": \"%s\"}}", path);
}

START_TEST(test_not_eligible)
{
    g_autofree char *disk = tpath("disk.raw");
    uint64_t full_size = disk_size;

    switch (_i) {
    case 0:
        make_qcow2_copy();
        break;
    case 1:
        extra_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"q\", "
                             "\"file\": {\"driver\": \"blkdebug\", "
                             "\"image\": {\"driver\": \"file\", "
                             "\"filename\": \"%s\"}}}", disk);
        break;
    case 2:
        /* a window: offset 1 MiB - 512, the rest of the file */
        extra_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"q\", "
                             "\"offset\": %d, \"file\": {\"driver\": "
                             "\"file\", \"filename\": \"%s\"}}",
                             (int)(1 * MiB - 512), disk);
        break;
    case 3:
        /* O_DIRECT */
        extra_bs = open_node("{\"driver\": \"raw\", \"node-name\": \"q\", "
                             "\"file\": {\"driver\": \"file\", "
                             "\"cache\": {\"direct\": true}, "
                             "\"filename\": \"%s\"}}", disk);
        break;
    }
    disk_size = bdrv_getlength(extra_bs);
    if (_i == 2) {
        expect = file_data + 1 * MiB - 512;
        ck_assert_uint_eq(disk_size, full_size - (1 * MiB - 512));
    }
    add_export("e0", "disk", "disk");
    add_export("e1", "q", "q");
    cur_export = "q";
    cur_structured = true;
    run(sc_ranges);
    ck_assert_uint_eq(splice_bytes("q"), 0);
    cur_export = "disk";
    disk_size = full_size;
    expect = file_data;
    run(sc_ranges);
    ck_assert_uint_gt(splice_bytes("disk"), 0);
}
END_TEST

/* ---- many reads at once: replies never interleave ---- */

#define NCONC 48

static void coroutine_fn sc_concurrent(void)
{
    TC *tc = tc_open("disk", true, NULL);
    GRand *rand = g_rand_new_with_seed(7);
    uint64_t from[NCONC];
    uint32_t len[NCONC];
    bool seen[NCONC] = { false };
    g_autofree uint8_t *buf = g_malloc(4 * MiB);
    int i, d, h;

    for (i = 0; i < NCONC; i++) {
        len[i] = g_rand_int_range(rand, 1, 4 * MiB);
        from[i] = g_rand_int_range(rand, 0, DISK_FILE_SIZE - len[i]);
        tc_req(tc, i % 3 == 0 ? NBD_CMD_FLAG_DF : 0, NBD_CMD_READ, 1000 + i,
               from[i], len[i], NULL);
    }
    /* one complete reply per request, in any order */
    for (i = 0; i < NCONC; i++) {
        Chunk c = { 0 };
        uint64_t k;

        /* peek the cookie of the first chunk, then read the reply */
        tc_chunk(tc, &c);
        k = c.cookie - 1000;
        ck_assert_uint_lt(k, NCONC);
        ck_assert(!seen[k]);
        seen[k] = true;
        memset(buf, 0x55, len[k]);
        d = h = 0;
        for (;;) {
            uint64_t off = get64(c.payload);

            ck_assert_uint_eq(c.cookie, 1000 + k);
            if (c.type == NBD_REPLY_TYPE_OFFSET_DATA) {
                memcpy(buf + off - from[k], c.payload + 8, c.len - 8);
                d++;
            } else {
                ck_assert_uint_eq(c.type, NBD_REPLY_TYPE_OFFSET_HOLE);
                memset(buf + off - from[k], 0, get32(c.payload + 8));
                h++;
            }
            if (c.flags & NBD_REPLY_FLAG_DONE) {
                break;
            }
            tc_chunk(tc, &c);
        }
        g_free(c.payload);
        ck_assert(memcmp(buf, file_data + from[k], len[k]) == 0);
        if (k % 3 == 0) {
            ck_assert_int_eq(d + h, 1);
        }
    }
    g_rand_free(rand);
    check_read(tc, 1, 0, 64 * KiB, 0, NULL, NULL);
    tc_disc(tc);
}

START_TEST(test_concurrent)
{
    add_export("e0", "disk", "disk");
    run(sc_concurrent);
    ck_assert_uint_gt(splice_bytes("disk"), 0);
}
END_TEST

/* ---- client gone in the middle of a big read; export removed ---- */

static TC *held;

/* Start a big read and wait until its data are flowing */
static void coroutine_fn sc_start_big_read(void)
{
    uint8_t hdr[20 + 8 + 4096];

    held = tc_open("disk", true, NULL);
    tc_req(held, NBD_CMD_FLAG_DF, NBD_CMD_READ, 9, 0, BIG_READ, NULL);
    tc_read(held, hdr, sizeof(hdr));
    ck_assert_uint_eq(get32(hdr), NBD_STRUCTURED_REPLY_MAGIC);
    ck_assert_uint_eq(get16(hdr + 6), NBD_REPLY_TYPE_OFFSET_DATA);
    ck_assert(memcmp(hdr + 28, file_data, 4096) == 0);
}

static void coroutine_fn sc_other_client(void)
{
    TC *tc = tc_open("disk", true, NULL);

    check_read(tc, 1, 3 * MiB, 2 * MiB, 0, NULL, NULL);
    tc_disc(tc);
}

static void coroutine_fn sc_drain_until_closed(void)
{
    g_autofree uint8_t *buf = g_malloc(64 * KiB);

    while (co_channel_read_all_eof(held->ch, buf, 1, NULL) > 0) {
    }
    tc_free(held);
    held = NULL;
}

START_TEST(test_disconnect_mid_read)
{
    uint64_t before;

    add_export("e0", "disk", "disk");
    run(sc_start_big_read);
    /* a second client is served while the big read is stuck */
    run(sc_other_client);
    before = splice_bytes("disk");
    tc_free(held);
    held = NULL;
    while (nbd_client_count()) {
        aio_poll(ctx, true);
    }
    ck_assert_uint_lt(splice_bytes("disk"), before + BIG_READ);
    ck_assert_uint_eq(bdrv_get_in_flight(disk_bs), 0);
    run(sc_other_client);
}
END_TEST

START_TEST(test_export_del_in_flight)
{
    add_export("e0", "disk", "disk");
    run(sc_start_big_read);
    ck_assert_uint_gt(bdrv_get_in_flight(disk_bs), 0);
    qmp_block_export_del("e0", true, BLOCK_EXPORT_REMOVE_MODE_HARD,
                         &error_abort);
    run(sc_drain_until_closed);
    while (nbd_client_count() || blk_exp_count()) {
        aio_poll(ctx, true);
    }
    ck_assert_uint_eq(bdrv_get_in_flight(disk_bs), 0);
    /* the node is still fine */
    add_export("e0", "disk", "disk");
    run(sc_other_client);
}
END_TEST

/* ---- sendfile stops short: the rest goes from a buffer ---- */

static int short_case;

static void coroutine_fn sc_short(void)
{
    TC *tc = tc_open("disk", true, NULL);
    g_autofree uint8_t *buf = g_malloc(BIG_READ);
    int d, h;

    if (short_case == 0) {
        /*
         * A client that does not read for longer than a worker waits for
         * the socket: the worker gives up, the coroutine sends the rest.
         */
        tc_req(tc, NBD_CMD_FLAG_DF, NBD_CMD_READ, 5, 0, BIG_READ, NULL);
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 1500 * SCALE_MS);
        ck_assert_uint_eq(tc_sread(tc, 5, 0, BIG_READ, buf, &d, &h, NULL),
                          0);
        ck_assert(memcmp(buf, file_data, BIG_READ) == 0);
    } else {
        /* The file shrank under the export: EOF reads as zeroes */
        g_autofree char *disk = tpath("disk.raw");

        ck_assert_int_eq(truncate(disk, 37 * MiB), 0);
        memset(file_data + 37 * MiB, 0, DISK_FILE_SIZE - 37 * MiB);
        check_read(tc, 6, 36 * MiB, 4 * MiB, NBD_CMD_FLAG_DF, &d, &h);
        ck_assert_int_eq(d, 1);
        cur_structured = false;
        tc_disc(tc);
        tc = tc_open("disk", false, NULL);
        check_read(tc, 7, 36 * MiB + 5, 4 * MiB, 0, NULL, NULL);
        cur_structured = true;
    }
    tc_disc(tc);
}

START_TEST(test_short_send)
{
    uint64_t sent;

    short_case = _i;
    add_export("e0", "disk", "disk");
    run(sc_short);
    sent = splice_bytes("disk");
    ck_assert_uint_gt(sent, 0);
    if (_i == 0) {
        ck_assert_uint_lt(sent, BIG_READ);
    } else {
        /* sendfile sent what the file had: 1 MiB per read, less 5 */
        ck_assert_uint_eq(sent, 2 * MiB - 5);
    }
}
END_TEST

static Suite *nbd_splice_suite(void)
{
    Suite *s = suite_create("nbd-server-splice");
    TCase *tc = tcase_create("splice");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ranges, 0, 2);
    tcase_add_loop_test(tc, test_not_eligible, 0, 4);
    tcase_add_test(tc, test_concurrent);
    tcase_add_test(tc, test_disconnect_mid_read);
    tcase_add_test(tc, test_export_del_in_flight);
    tcase_add_loop_test(tc, test_short_send, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    /* as the daemon does: a client gone mid-reply is an EPIPE, not death */
    signal(SIGPIPE, SIG_IGN);
    sr = srunner_create(nbd_splice_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
