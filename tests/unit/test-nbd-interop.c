/*
 * NBD interoperability: the server runs in this process on a unix socket
 * and real clients nobody here wrote (libnbd's nbdinfo and nbdcopy,
 * QEMU's qemu-img and qemu-io) run as child processes while this process
 * drives its event loop until they exit.  A test whose tool is missing
 * is skipped with a message (it passes without checking anything only in
 * that case, and says so on stderr).
 */
#include "qemu/osdep.h"
#include "qapi-types.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/nbd.h"
#include "block/export.h"
#include <check.h>
#include <sys/wait.h>

#define DISK_SIZE (4 * MiB)

static char *tmpdir;
static char *sock;
static char *disk;
static AioContext *ctx;
static BlockDriverState *bs;

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void setup(void)
{
    g_autofree char *json = NULL;
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    json_error_t jerr;
    json_t *opts;
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_UNIX };
    BlockExportOptions *o;
    int fd;

    qemu_init_main_loop();
    bdrv_init();
    ctx = qemu_get_aio_context();
    tmpdir = g_dir_make_tmp("test-nbd-interop-XXXXXX", NULL);
    sock = tpath("nbd.sock");
    disk = tpath("disk.raw");

    /* sparse: 0x5a at [0, 64k) and [1M, 1M + 64k) */
    fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    memset(buf, 0x5a, 64 * KiB);
    ck_assert_int_eq(pwrite(fd, buf, 64 * KiB, 0), 64 * KiB);
    ck_assert_int_eq(pwrite(fd, buf, 64 * KiB, 1 * MiB), 64 * KiB);
    close(fd);

    json = g_strdup_printf("{\"driver\": \"raw\", \"node-name\": \"disk\", "
                           "\"file\": {\"driver\": \"file\", "
                           "\"filename\": \"%s\"}}", disk);
    opts = json_loads(json, 0, &jerr);
    bs = bdrv_open_flags(opts, BDRV_O_RDWR, &error_abort);
    json_decref(opts);

    addr.u.q_unix.path = sock;
    ck_assert(nbd_server_start(&addr, NULL, NULL, 0, 10, &error_abort));
    o = g_new0(BlockExportOptions, 1);
    o->type = BLOCK_EXPORT_TYPE_NBD;
    o->id = g_strdup("e0");
    o->node_name = g_strdup("disk");
    o->has_writable = true;
    o->writable = true;
    o->u.nbd.name = g_strdup("disk");
    o->u.nbd.description = g_strdup("interop disk");
    o->u.nbd.has_allocation_depth = true;
    o->u.nbd.allocation_depth = true;
    ck_assert_ptr_nonnull(blk_exp_add(o, &error_abort));
    qapi_free_BlockExportOptions(o);
}

static void teardown(void)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    nbd_server_shutdown();
    while (aio_poll(ctx, false)) {
    }
    ck_assert_uint_eq(nbd_client_count(), 0);
    bdrv_unref(bs);
    dir = g_dir_open(tmpdir, 0, NULL);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = tpath(name);
        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    g_free(sock);
    g_free(disk);
}

static bool have(const char *tool)
{
    g_autofree char *p = g_find_program_in_path(tool);

    if (!p) {
        fprintf(stderr, "SKIP: %s not installed\n", tool);
    }
    return p != NULL;
}

static bool child_exited;
static int child_status;

static void child_watch(GPid pid, gint status, gpointer opaque)
{
    child_status = status;
    child_exited = true;
    g_spawn_close_pid(pid);
}

/*
 * Run a shell command while serving NBD; returns its exit code, output
 * (stdout + stderr) in *out.
 */
static int run(char **out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int run(char **out, const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    g_autofree char *outfile = tpath("out.txt");
    g_autofree char *full = NULL;
    const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
    GPid pid;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    full = g_strdup_printf("(%s) >'%s' 2>&1", cmd, outfile);
    argv[2] = full;
    child_exited = false;
    ck_assert(g_spawn_async(NULL, (char **)argv, NULL,
                            G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                            NULL));
    g_child_watch_add(pid, child_watch, NULL);
    while (!child_exited) {
        g_main_context_iteration(NULL, TRUE);
    }
    ck_assert(g_file_get_contents(outfile, out, NULL, NULL));
    return WIFEXITED(child_status) ? WEXITSTATUS(child_status) : -1;
}

static char *uri(const char *export)
{
    return g_strdup_printf("nbd+unix:///%s?socket=%s", export, sock);
}

START_TEST(test_nbdinfo)
{
    g_autofree char *u = uri("disk");
    g_autofree char *out = NULL;

    if (!have("nbdinfo")) {
        return;
    }
    ck_assert_int_eq(run(&out, "nbdinfo --size '%s'", u), 0);
    ck_assert_str_eq(g_strstrip(out), "4194304");
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --json '%s'", u), 0);
    ck_assert_msg(strstr(out, "\"export-name\": \"disk\""), "%s", out);
    ck_assert_msg(strstr(out, "\"description\": \"interop disk\""), "%s",
                  out);
    ck_assert_msg(strstr(out, "\"is_read_only\": false"), "%s", out);
    ck_assert_msg(strstr(out, "\"can_fua\": true"), "%s", out);
    ck_assert_msg(strstr(out, "\"can_df\": true"), "%s", out);
    ck_assert_msg(strstr(out, "\"can_fast_zero\": true"), "%s", out);
    ck_assert_msg(strstr(out, "\"base:allocation\""), "%s", out);
    ck_assert_msg(strstr(out, "\"qemu:allocation-depth\""), "%s", out);
    ck_assert_msg(strstr(out, "\"block_size_preferred\": 4096"), "%s", out);
    ck_assert_msg(strstr(out, "\"block_size_maximum\": 33554432"), "%s",
                  out);
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --can trim '%s'", u), 0);
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --can multi-conn '%s'", u), 2);
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --list 'nbd+unix://?socket=%s'",
                         sock), 0);
    ck_assert_msg(strstr(out, "export=\"disk\""), "%s", out);
    g_free(out);
    /* an unknown export is refused cleanly */
    g_free(u);
    u = uri("nope");
    ck_assert_int_ne(run(&out, "nbdinfo '%s'", u), 0);
}
END_TEST

START_TEST(test_nbdinfo_map)
{
    g_autofree char *u = uri("disk");
    g_autofree char *out = NULL;

    if (!have("nbdinfo")) {
        return;
    }
    ck_assert_int_eq(run(&out, "nbdinfo --map --totals '%s'", u), 0);
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --map '%s' | tr -s ' \\n' ' '", u),
                     0);
    ck_assert_str_eq(g_strstrip(out),
                     "0 65536 0 data 65536 983040 3 hole,zero "
                     "1048576 65536 0 data 1114112 3080192 3 hole,zero");
    g_free(out);
    ck_assert_int_eq(run(&out, "nbdinfo --map=qemu:allocation-depth '%s' | "
                         "tr -s ' \\n' ' '", u), 0);
    /* a raw file node allocates everything itself: depth 1 */
    ck_assert_str_eq(g_strstrip(out), "0 4194304 1 local");
}
END_TEST

START_TEST(test_qemu_tools)
{
    g_autofree char *u = uri("disk");
    g_autofree char *out = NULL;

    if (!have("qemu-img") || !have("qemu-io")) {
        return;
    }
    ck_assert_int_eq(run(&out, "qemu-img info '%s'", u), 0);
    ck_assert_msg(strstr(out, "virtual size: 4 MiB"), "%s", out);
    g_free(out);
    ck_assert_int_eq(run(&out, "qemu-io -f raw -c 'write -P 0x6b 2M 128k' "
                         "-c 'read -P 0x6b 2M 128k' -c 'read -P 0x5a 0 64k' "
                         "-c 'read -P 0 64k 64k' -c 'aio_write -P 0x11 3M 4k' "
                         "-c 'aio_flush' -c 'write -z 3M 4k' "
                         "-c 'read -P 0 3M 4k' -c 'discard 3M 64k' '%s'",
                         u), 0);
    ck_assert_msg(!strstr(out, "Pattern verification failed"), "%s", out);
    g_free(out);
    /* the image behind the export holds the same bytes */
    ck_assert_int_eq(run(&out, "qemu-img compare -f raw -F raw '%s' '%s'",
                         disk, u), 0);
    g_free(out);
    ck_assert_int_eq(run(&out, "qemu-img convert -f raw -O raw '%s' '%s/c.raw' "
                         "&& qemu-img compare -f raw -F raw '%s/c.raw' '%s'",
                         u, tmpdir, tmpdir, disk), 0);
}
END_TEST

START_TEST(test_nbdcopy)
{
    g_autofree char *u = uri("disk");
    g_autofree char *out = NULL;

    if (!have("nbdcopy") || !have("qemu-img")) {
        return;
    }
    /* export -> file */
    ck_assert_int_eq(run(&out, "nbdcopy '%s' '%s/copy.raw' && "
                         "cmp '%s/copy.raw' '%s'", u, tmpdir, tmpdir, disk),
                     0);
    g_free(out);
    /* file -> export */
    ck_assert_int_eq(run(&out, "qemu-img create -f raw '%s/src.raw' 4M && "
                         "qemu-io -f raw -c 'write -P 0x77 100k 300k' "
                         "'%s/src.raw' && nbdcopy '%s/src.raw' '%s' && "
                         "qemu-img compare -f raw -F raw '%s/src.raw' '%s'",
                         tmpdir, tmpdir, tmpdir, u, tmpdir, disk), 0);
    g_free(out);
    /* parallel connections of a read-write export still agree */
    ck_assert_int_eq(run(&out, "nbdcopy --connections=4 '%s' null:", u), 0);
}
END_TEST

static Suite *interop_suite(void)
{
    Suite *s = suite_create("nbd-interop");
    TCase *tc = tcase_create("interop");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_nbdinfo);
    tcase_add_test(tc, test_nbdinfo_map);
    tcase_add_test(tc, test_qemu_tools);
    tcase_add_test(tc, test_nbdcopy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(interop_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
