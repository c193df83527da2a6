/*
 * Unit tests for util/qemu-sockets.c (listen/connect for the SocketAddress
 * types) and util/co-channel.c (coroutine I/O on non-blocking sockets).
 */
#include "qemu/osdep.h"
#include "qemu/sockets.h"
#include "qemu/co-channel.h"
#include <check.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char *tmpdir;
static AioContext *ctx;

static void setup(void)
{
    qemu_init_main_loop();
    ctx = qemu_get_aio_context();
    tmpdir = g_dir_make_tmp("test-sockets-XXXXXX", NULL);
    ck_assert_ptr_nonnull(tmpdir);
}

static void teardown(void)
{
    g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(tmpdir, name, NULL);
        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
}

static SocketAddress *unix_addr(const char *path)
{
    SocketAddress *a = g_new0(SocketAddress, 1);

    a->type = SOCKET_ADDRESS_TYPE_UNIX;
    a->u.q_unix.path = g_strdup(path);
    return a;
}

START_TEST(test_unix_listen)
{
    g_autofree char *path = g_build_filename(tmpdir, "s.sock", NULL);
    g_autoptr(SocketAddress) addr = unix_addr(path);
    struct stat st;
    int lfd, cfd, afd;
    char c = 'x';

    /* a stale file at the path is replaced */
    g_file_set_contents(path, "stale", -1, NULL);
    lfd = socket_listen(addr, 1, &error_abort);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);

    cfd = socket_connect(addr, &error_abort);
    ck_assert_int_ge(cfd, 0);
    ck_assert(!(fcntl(cfd, F_GETFL) & O_NONBLOCK));
    afd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(afd, 0);
    ck_assert_int_eq(write(cfd, &c, 1), 1);
    c = 0;
    ck_assert_int_eq(read(afd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    close(afd);
    close(cfd);

    socket_listen_cleanup(lfd, addr);
    ck_assert_int_ne(stat(path, &st), 0);
}
END_TEST

START_TEST(test_unix_errors)
{
    g_autofree char *longp = g_strnfill(200, 'a');
    g_autoptr(SocketAddress) a1 = unix_addr(longp);
    g_autoptr(SocketAddress) a2 = unix_addr("/nonexistent-dir/x.sock");
    Error *err = NULL;

    ck_assert_int_lt(socket_listen(a1, 1, &err), 0);
    ck_assert(strstr(error_get_pretty(err), "too long"));
    error_free(err);
    err = NULL;
    ck_assert_int_lt(socket_listen(a2, 1, &err), 0);
    ck_assert(strstr(error_get_pretty(err), "/nonexistent-dir/x.sock"));
    error_free(err);
    err = NULL;
    ck_assert_int_lt(socket_connect(a2, &err), 0);
    ck_assert(strstr(error_get_pretty(err), "Failed to connect"));
    error_free(err);
}
END_TEST

START_TEST(test_unix_abstract)
{
    g_autofree char *name = g_strdup_printf("blockd-test-%d", getpid());
    g_autoptr(SocketAddress) addr = unix_addr(name);
    int lfd, cfd;

    addr->u.q_unix.has_abstract = true;
    addr->u.q_unix.abstract = true;
    lfd = socket_listen(addr, 1, &error_abort);
    ck_assert_int_ge(lfd, 0);
    ck_assert(!g_file_test(name, G_FILE_TEST_EXISTS));
    cfd = socket_connect(addr, &error_abort);
    ck_assert_int_ge(cfd, 0);
    close(cfd);
    socket_listen_cleanup(lfd, addr);
}
END_TEST

static void inet_roundtrip(const char *host, bool v6)
{
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_INET };
    g_autofree char *port = NULL;
    Error *err = NULL;
    int lfd, cfd, afd, p;

    addr.u.inet.host = (char *)host;
    addr.u.inet.port = (char *)"0";
    addr.u.inet.has_numeric = true;
    addr.u.inet.numeric = true;
    lfd = socket_listen(&addr, 1, &err);
    if (lfd < 0 && v6) {
        /* no IPv6 on this machine */
        error_free(err);
        return;
    }
    ck_assert_int_ge(lfd, 0);
    p = socket_local_port(lfd);
    ck_assert_int_gt(p, 0);
    port = g_strdup_printf("%d", p);
    addr.u.inet.port = port;
    cfd = socket_connect(&addr, &error_abort);
    ck_assert_int_ge(cfd, 0);
    afd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(afd, 0);
    /* the port is taken now: a second listener on it fails... */
    ck_assert_int_lt(socket_listen(&addr, 1, &err), 0);
    error_free(err);
    err = NULL;
    close(afd);
    close(cfd);
    close(lfd);
}

START_TEST(test_inet)
{
    inet_roundtrip("127.0.0.1", false);
    inet_roundtrip("::1", true);
}
END_TEST

START_TEST(test_inet_port_range)
{
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_INET };
    g_autofree char *port = NULL;
    int l1, l2, p;

    addr.u.inet.host = (char *)"127.0.0.1";
    addr.u.inet.port = (char *)"0";
    l1 = socket_listen(&addr, 1, &error_abort);
    p = socket_local_port(l1);
    port = g_strdup_printf("%d", p);
    /* busy port with a range: the next free one is used */
    addr.u.inet.port = port;
    addr.u.inet.has_to = true;
    addr.u.inet.to = MIN(p + 20, 65535);
    l2 = socket_listen(&addr, 1, &error_abort);
    ck_assert_int_gt(socket_local_port(l2), p);
    close(l1);
    close(l2);
}
END_TEST

START_TEST(test_fd_and_addresses)
{
    g_autofree char *path = g_build_filename(tmpdir, "f.sock", NULL);
    g_autoptr(SocketAddress) ua = unix_addr(path);
    g_autoptr(SocketAddress) fa = g_new0(SocketAddress, 1);
    g_autoptr(SocketAddress) copy = NULL;
    g_autofree char *str = NULL;
    SocketAddressLegacy legacy = { .type = SOCKET_ADDRESS_TYPE_UNIX };
    UnixSocketAddress u = { .path = path };
    g_autoptr(SocketAddress) flat = NULL;
    Error *err = NULL;
    int raw, lfd, cfd;

    raw = socket(AF_UNIX, SOCK_STREAM, 0);
    {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        g_strlcpy(un.sun_path, path, sizeof(un.sun_path));
        ck_assert_int_eq(bind(raw, (struct sockaddr *)&un, sizeof(un)), 0);
    }
    fa->type = SOCKET_ADDRESS_TYPE_FD;
    fa->u.fd.str = g_strdup_printf("%d", raw);
    lfd = socket_listen(fa, 1, &error_abort);
    ck_assert_int_eq(lfd, raw);
    cfd = socket_connect(ua, &error_abort);
    ck_assert_int_ge(cfd, 0);
    close(cfd);
    close(lfd);

    g_free(fa->u.fd.str);
    fa->u.fd.str = g_strdup("notanumber");
    ck_assert_int_lt(socket_listen(fa, 1, &err), 0);
    error_free(err);
    err = NULL;
    copy = socket_address_copy(ua);
    ck_assert_str_eq(copy->u.q_unix.path, path);
    ck_assert_ptr_ne(copy->u.q_unix.path, ua->u.q_unix.path);
    str = socket_address_to_string(copy);
    ck_assert(g_str_has_prefix(str, "unix:"));
    legacy.u.q_unix.data = &u;
    flat = socket_address_flatten(&legacy);
    ck_assert_int_eq(flat->type, SOCKET_ADDRESS_TYPE_UNIX);
    ck_assert_str_eq(flat->u.q_unix.path, path);
}
END_TEST

/* ---- co-channel ---- */

typedef struct Pair {
    CoChannel *a, *b;
    size_t len;
    uint8_t *src, *dst;
    int rret, wret;
    bool rdone, wdone;
} Pair;

static void make_pair(Pair *p)
{
    int sv[2];

    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->a = co_channel_new(sv[0], ctx);
    p->b = co_channel_new(sv[1], ctx);
}

static void coroutine_fn co_writer(void *opaque)
{
    Pair *p = opaque;

    p->wret = co_channel_write_all(p->a, p->src, p->len, NULL);
    p->wdone = true;
}

static void coroutine_fn co_reader(void *opaque)
{
    Pair *p = opaque;

    p->rret = co_channel_read_all_eof(p->b, p->dst, p->len, NULL);
    p->rdone = true;
}

START_TEST(test_channel_big_transfer)
{
    Pair p;
    size_t i;

    make_pair(&p);
    p.len = 8 * MiB;    /* far beyond the socket buffers: both yield */
    p.src = g_malloc(p.len);
    p.dst = g_malloc0(p.len);
    for (i = 0; i < p.len; i++) {
        p.src[i] = i * 7;
    }
    qemu_coroutine_enter(qemu_coroutine_create(co_writer, &p));
    ck_assert(!p.wdone);
    qemu_coroutine_enter(qemu_coroutine_create(co_reader, &p));
    while (!p.rdone || !p.wdone) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.wret, 0);
    ck_assert_int_eq(p.rret, 1);
    ck_assert_int_eq(memcmp(p.src, p.dst, p.len), 0);
    co_channel_free(p.a);
    co_channel_free(p.b);
    g_free(p.src);
    g_free(p.dst);
}
END_TEST

static void coroutine_fn co_short_writer(void *opaque)
{
    Pair *p = opaque;

    /* half the data, then hang up */
    p->wret = co_channel_write_all(p->a, p->src, p->len / 2, NULL);
    shutdown(co_channel_fd(p->a), SHUT_WR);
    p->wdone = true;
}

START_TEST(test_channel_eof)
{
    Pair p;
    uint8_t src[100] = { 1 }, dst[100];

    /* EOF before any byte: 0 */
    make_pair(&p);
    p.len = 100;
    p.src = src;
    p.dst = dst;
    shutdown(co_channel_fd(p.a), SHUT_WR);
    qemu_coroutine_enter(qemu_coroutine_create(co_reader, &p));
    while (!p.rdone) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.rret, 0);
    co_channel_free(p.a);
    co_channel_free(p.b);

    /* EOF in the middle: an error */
    make_pair(&p);
    p.len = 100;
    p.src = src;
    p.dst = dst;
    qemu_coroutine_enter(qemu_coroutine_create(co_reader, &p));
    qemu_coroutine_enter(qemu_coroutine_create(co_short_writer, &p));
    while (!p.rdone) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.rret, -1);
    co_channel_free(p.a);
    co_channel_free(p.b);
}
END_TEST

START_TEST(test_channel_shutdown_cancels)
{
    Pair p;
    uint8_t buf[10];

    make_pair(&p);
    p.len = 10;
    p.dst = buf;
    qemu_coroutine_enter(qemu_coroutine_create(co_reader, &p));
    while (aio_poll(ctx, false)) {
    }
    ck_assert(!p.rdone);        /* blocked: the peer says nothing */
    co_channel_shutdown(p.b);
    ck_assert(co_channel_is_shutdown(p.b));
    while (!p.rdone) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.rret, -1);
    co_channel_free(p.a);
    co_channel_free(p.b);
}
END_TEST

START_TEST(test_channel_peer_gone)
{
    Pair p;
    g_autofree uint8_t *src = g_malloc0(4 * MiB);

    /* writing to a closed peer: an error, not SIGPIPE */
    make_pair(&p);
    p.len = 4 * MiB;
    p.src = src;
    co_channel_free(p.b);
    qemu_coroutine_enter(qemu_coroutine_create(co_writer, &p));
    while (!p.wdone) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.wret, -1);
    co_channel_free(p.a);
}
END_TEST

static Suite *sockets_suite(void)
{
    Suite *s = suite_create("sockets");
    TCase *tc = tcase_create("sockets");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_unix_listen);
    tcase_add_test(tc, test_unix_errors);
    tcase_add_test(tc, test_unix_abstract);
    tcase_add_test(tc, test_inet);
    tcase_add_test(tc, test_inet_port_range);
    tcase_add_test(tc, test_fd_and_addresses);
    tcase_add_test(tc, test_channel_big_transfer);
    tcase_add_test(tc, test_channel_eof);
    tcase_add_test(tc, test_channel_shutdown_cancels);
    tcase_add_test(tc, test_channel_peer_gone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sockets_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
