/*
 * Unit tests of the QMP monitor core (monitor/qmp.c) over socketpairs,
 * without the daemon: greeting, negotiation, dispatch of hand-registered
 * commands, id echo, events only to negotiated clients, requests queued
 * (not nested, not reordered) while a command runs a nested event loop,
 * a client hanging up while its command runs, the request queue limit.
 * The loop is driven with aio_poll(); no sleeping.
 */
#include "qemu/osdep.h"
#include "monitor/monitor.h"
#include "qapi/qmp-event.h"
#include "block/aio.h"
#include <check.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static QmpCommandList cmds;
static int nested_runs;
static int running;
static int max_running;
static bool hangup_during;
static int peer_fd = -1;

/* qmp_capabilities stand-in: any capability is refused */
static void cmd_caps(json_t *args, json_t **ret, Error **errp)
{
    if (json_object_get(args, "enable")) {
        error_setg(errp, "Capability oob not available");
    }
}

static void cmd_echo(json_t *args, json_t **ret, Error **errp)
{
    *ret = json_deep_copy(args);
}

/* Runs the event loop while "running", as a synchronous I/O would */
static void cmd_slow(json_t *args, json_t **ret, Error **errp)
{
    int i;

    running++;
    max_running = MAX(max_running, running);
    if (hangup_during) {
        close(peer_fd);
        peer_fd = -1;
    }
    for (i = 0; i < 20; i++) {
        aio_poll(qemu_get_aio_context(), false);
    }
    nested_runs++;
    running--;
    *ret = json_pack("{s:i}", "runs", nested_runs);
}

static void setup(void)
{
    qemu_init_main_loop();
    memset(&cmds, 0, sizeof(cmds));
    qmp_register_command(&cmds, "qmp_capabilities", cmd_caps, 0, 0);
    qmp_register_command(&cmds, "echo", cmd_echo, 0, 0);
    qmp_register_command(&cmds, "slow", cmd_slow, 0, 0);
    monitor_init_qmp(&cmds);
    nested_runs = running = max_running = 0;
    hangup_during = false;
}

static void teardown(void)
{
    monitor_cleanup();
    qmp_command_list_destroy(&cmds);
    if (peer_fd >= 0) {
        close(peer_fd);
        peer_fd = -1;
    }
}

/* A connected client: returns our end */
static int connect_client(bool pretty)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    monitor_new_qmp_fd(sv[1], pretty);
    return sv[0];
}

static void drain(void)
{
    while (aio_poll(qemu_get_aio_context(), false)) {
    }
}

static void send_str(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Read what has arrived (after driving the loop); "" if nothing */
static char *recv_all(int fd)
{
    GString *out = g_string_new(NULL);
    char buf[4096];
    ssize_t n;

    drain();
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(out, buf, n);
    }
    return g_string_free(out, false);
}

static char *roundtrip(int fd, const char *req)
{
    send_str(fd, req);
    return recv_all(fd);
}

#define CHECK_RT(fd, req, expect) do {              \
        g_autofree char *r_ = roundtrip(fd, req);   \
        ck_assert_str_eq(r_, expect);               \
    } while (0)

START_TEST(test_greeting_negotiation)
{
    int fd;
    g_autofree char *greeting = NULL;

    setup();
    fd = connect_client(false);
    greeting = recv_all(fd);
    ck_assert(g_str_has_prefix(greeting, "{\"QMP\": {\"version\": "
                               "{\"qemu\": {\"major\": "));
    ck_assert(g_str_has_suffix(greeting, "\"capabilities\": []}}\r\n"));
    ck_assert_uint_eq(monitor_client_count(), 1);

    CHECK_RT(fd, "{\"execute\": \"echo\", \"id\": 1}",
             "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
             "\"Expecting capabilities negotiation with "
             "'qmp_capabilities'\"}, \"id\": 1}\r\n");
    /* a failed qmp_capabilities leaves the client in negotiation mode */
    CHECK_RT(fd, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
             "{\"enable\": [\"oob\"]}}",
             "{\"error\": {\"class\": \"GenericError\", \"desc\": "
             "\"Capability oob not available\"}}\r\n");
    CHECK_RT(fd, "{\"execute\": \"echo\"}",
             "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
             "\"Expecting capabilities negotiation with "
             "'qmp_capabilities'\"}}\r\n");
    CHECK_RT(fd, "{\"execute\": \"qmp_capabilities\"}",
             "{\"return\": {}}\r\n");
    CHECK_RT(fd, "{\"execute\": \"echo\", \"arguments\": {\"a\": [1]}, "
             "\"id\": \"x\"}",
             "{\"return\": {\"a\": [1]}, \"id\": \"x\"}\r\n");
    CHECK_RT(fd, "{\"execute\": \"qmp_capabilities\"}",
             "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
             "\"Capabilities negotiation is already complete, command "
             "ignored\"}}\r\n");
    close(fd);
    drain();
    ck_assert_uint_eq(monitor_client_count(), 0);
    teardown();
}
END_TEST

/* While dispatch is held (daemon start-up) requests queue, in order. */
START_TEST(test_hold_dispatch)
{
    int fd;
    g_autofree char *greeting = NULL;
    g_autofree char *held = NULL;
    g_autofree char *still_held = NULL;
    g_autofree char *released = NULL;

    setup();
    monitor_hold_dispatch();
    fd = connect_client(false);
    greeting = recv_all(fd);
    ck_assert(g_str_has_prefix(greeting, "{\"QMP\": "));
    send_str(fd, "{\"execute\": \"qmp_capabilities\"}"
             "{\"execute\": \"echo\", \"arguments\": {\"n\": 1}}");
    held = recv_all(fd);
    ck_assert_str_eq(held, "");
    monitor_hold_dispatch();        /* holds nest */
    monitor_release_dispatch();
    still_held = recv_all(fd);
    ck_assert_str_eq(still_held, "");
    monitor_release_dispatch();
    released = recv_all(fd);
    ck_assert_str_eq(released, "{\"return\": {}}\r\n"
                     "{\"return\": {\"n\": 1}}\r\n");
    close(fd);
    drain();
    teardown();
}
END_TEST

START_TEST(test_parse_errors_and_joined)
{
    int fd;
    g_autofree char *g = NULL;

    setup();
    fd = connect_client(false);
    g = recv_all(fd);
    CHECK_RT(fd, "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"echo\","
             " \"arguments\": {\"n\": 1}}[1 2]{\"execute\": \"echo\"",
             "{\"return\": {}}\r\n{\"return\": {\"n\": 1}}\r\n"
             "{\"error\": {\"class\": \"GenericError\", \"desc\": "
             "\"JSON parse error, expected separator in list\"}}\r\n");
    /* the rest of the split message */
    CHECK_RT(fd, ", \"id\": 2}\n\"str\"\n",
             "{\"return\": {}, \"id\": 2}\r\n"
             "{\"error\": {\"class\": \"GenericError\", \"desc\": "
             "\"QMP input must be a JSON object\"}}\r\n");
    CHECK_RT(fd, "{\"execute\": \"nope\"}",
             "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
             "\"The command nope has not been found\"}}\r\n");
    close(fd);
    teardown();
}
END_TEST

START_TEST(test_events)
{
    int a, b;
    g_autofree char *ga = NULL;
    g_autofree char *gb = NULL;
    g_autofree char *ra = NULL;
    g_autofree char *rb = NULL;
    g_autofree char *r = NULL;
    g_autoptr(json_t) ev = NULL;

    setup();
    a = connect_client(false);
    b = connect_client(false);
    ga = recv_all(a);
    gb = recv_all(b);
    r = roundtrip(a, "{\"execute\": \"qmp_capabilities\"}");
    qapi_event_emit("TEST_EVENT", json_pack("{s:s}", "id", "job0"));
    ra = recv_all(a);
    rb = recv_all(b);
    /* only the negotiated client gets it, with a timestamp */
    ck_assert_str_eq(rb, "");
    ev = json_loads(ra, 0, NULL);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")),
                     "TEST_EVENT");
    ck_assert(json_is_integer(json_object_get(
                  json_object_get(ev, "timestamp"), "seconds")));
    ck_assert(json_is_integer(json_object_get(
                  json_object_get(ev, "timestamp"), "microseconds")));
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "data"), "id")), "job0");
    ck_assert(g_str_has_suffix(ra, "}\r\n"));
    close(a);
    close(b);
    teardown();
}
END_TEST

/*
 * While "slow" runs its nested event loop, further requests from the same
 * and from another client arrive: they must wait and run afterwards, in
 * order, never nested.
 */
START_TEST(test_no_nesting_or_reordering)
{
    int a, b;
    g_autofree char *ga = NULL;
    g_autofree char *gb = NULL;
    g_autofree char *r1 = NULL;
    g_autofree char *r2 = NULL;
    g_autofree char *ra = NULL;
    g_autofree char *rb = NULL;

    setup();
    a = connect_client(false);
    b = connect_client(false);
    ga = recv_all(a);
    gb = recv_all(b);
    r1 = roundtrip(a, "{\"execute\": \"qmp_capabilities\"}");
    r2 = roundtrip(b, "{\"execute\": \"qmp_capabilities\"}");
    /* all in the socket buffers before the loop runs */
    send_str(a, "{\"execute\": \"slow\", \"id\": 1}");
    send_str(b, "{\"execute\": \"slow\", \"id\": \"b\"}");
    send_str(a, "{\"execute\": \"slow\", \"id\": 2}"
             "{\"execute\": \"echo\", \"id\": 3}");
    ra = recv_all(a);
    rb = recv_all(b);
    ck_assert_int_eq(max_running, 1);
    ck_assert_int_eq(nested_runs, 3);
    ck_assert_str_eq(ra, "{\"return\": {\"runs\": 1}, \"id\": 1}\r\n"
                     "{\"return\": {\"runs\": 3}, \"id\": 2}\r\n"
                     "{\"return\": {}, \"id\": 3}\r\n");
    ck_assert_str_eq(rb, "{\"return\": {\"runs\": 2}, \"id\": \"b\"}\r\n");
    close(a);
    close(b);
    teardown();
}
END_TEST

/* The client goes away while its command runs: no crash, no leak (ASan) */
START_TEST(test_hangup_mid_command)
{
    int a, b;
    g_autofree char *ga = NULL;
    g_autofree char *gb = NULL;
    g_autofree char *r = NULL;
    g_autofree char *rb = NULL;

    setup();
    a = connect_client(false);
    b = connect_client(false);
    ga = recv_all(a);
    gb = recv_all(b);
    r = roundtrip(a, "{\"execute\": \"qmp_capabilities\"}");
    peer_fd = a;
    hangup_during = true;
    send_str(a, "{\"execute\": \"slow\"}{\"execute\": \"slow\"}");
    drain();
    /* the first ran, the queued one died with the connection */
    ck_assert_int_eq(nested_runs, 1);
    ck_assert_uint_eq(monitor_client_count(), 1);
    hangup_during = false;
    rb = roundtrip(b, "{\"execute\": \"qmp_capabilities\"}");
    ck_assert_str_eq(rb, "{\"return\": {}}\r\n");
    close(b);
    teardown();
}
END_TEST

START_TEST(test_pretty)
{
    int fd;
    g_autofree char *g = NULL;

    setup();
    fd = connect_client(true);
    g = recv_all(fd);
    ck_assert(g_str_has_prefix(g, "{\r\n    \"QMP\": {\r\n"));
    CHECK_RT(fd, "{\"execute\": \"qmp_capabilities\", \"id\": 1}",
             "{\r\n    \"return\": {},\r\n    \"id\": 1\r\n}\r\n");
    close(fd);
    teardown();
}
END_TEST

/* A socket chardev: one client at a time, mode 0600, unlinked */
START_TEST(test_chardev_socket)
{
    g_autofree char *dir = g_dir_make_tmp("test-monitor-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "m.sock", NULL);
    g_autofree char *opt = g_strdup_printf("socket,path=%s,server=on,"
                                           "wait=off,id=m", path);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    Error *err = NULL;
    Chardev *chr;
    struct stat st;
    int c1, c2;
    g_autofree char *g1 = NULL;
    g_autofree char *g2 = NULL;
    g_autofree char *g3 = NULL;

    setup();
    chr = qemu_chr_new_from_str("socket,path=/x,server=on,id=w", &err);
    ck_assert_ptr_null(chr);
    ck_assert(strstr(error_get_pretty(err), "'wait=on' is not supported"));
    error_free(err);
    err = NULL;
    chr = qemu_chr_new_from_str(opt, &error_abort);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_ptr_nonnull(monitor_new_qmp(chr, false, &error_abort));
    ck_assert_ptr_null(monitor_new_qmp(chr, false, &err));
    ck_assert_str_eq(error_get_pretty(err), "Device 'm' is in use");
    error_free(err);

    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c1, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(connect(c2, (struct sockaddr *)&sun, sizeof(sun)), 0);
    fcntl(c1, F_SETFL, O_NONBLOCK);
    fcntl(c2, F_SETFL, O_NONBLOCK);
    g1 = recv_all(c1);
    g2 = recv_all(c2);
    ck_assert(g_str_has_prefix(g1, "{\"QMP\""));
    ck_assert_str_eq(g2, "");          /* waits in the backlog */
    close(c1);
    drain();
    g3 = recv_all(c2);
    ck_assert(g_str_has_prefix(g3, "{\"QMP\""));
    close(c2);
    drain();
    teardown();
    qemu_chr_cleanup();
    ck_assert_int_ne(stat(path, &st), 0);   /* unlinked */
    rmdir(dir);
}
END_TEST

static Suite *monitor_suite(void)
{
    Suite *s = suite_create("monitor-qmp");
    TCase *tc = tcase_create("qmp");

    tcase_add_test(tc, test_greeting_negotiation);
    tcase_add_test(tc, test_hold_dispatch);
    tcase_add_test(tc, test_parse_errors_and_joined);
    tcase_add_test(tc, test_events);
    tcase_add_test(tc, test_no_nesting_or_reordering);
    tcase_add_test(tc, test_hangup_mid_command);
    tcase_add_test(tc, test_pretty);
    tcase_add_test(tc, test_chardev_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(monitor_suite());
    int failed;

    signal(SIGPIPE, SIG_IGN);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
