/*
 * blockd: the storage daemon (qemu-storage-daemon compatible CLI).
 *
 *   blockd [options]
 *     --blockdev [driver=]DRIVER,node-name=N,...   or a JSON object
 *     --chardev socket,id=ID,path=PATH|host=H,port=P,server=on,wait=off
 *     --monitor [chardev=]ID[,mode=control][,pretty=on|off]
 *     --object help
 *     --pidfile PATH
 *     --daemonize
 *     -T, --trace [[enable=]PATTERN][,events=FILE][,file=FILE]
 *     -h, --help    -V, --version
 *
 * As in qemu-storage-daemon, the items are processed in command-line
 * order (a --monitor must follow its --chardev, a --blockdev may refer to
 * an earlier one), after a first pass that handles --help, --version,
 * --trace and --daemonize.  Once everything exists the pidfile is
 * written (under an fcntl lock), so its presence means the sockets are
 * listening; with --daemonize the parent process exits only then, with
 * the child's start-up status.
 *
 * Any error during start-up prints one line "blockd: OPTION ARG: message"
 * and exits with status 1.
 *
 * SIGINT, SIGTERM, SIGHUP and the QMP command quit shut down cleanly:
 * jobs are cancelled synchronously (their events reach the monitors),
 * monitors closed, nodes flushed and closed, sockets and pidfile removed,
 * exit status 0.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/blockdev.h"
#include "block/export.h"
#include "block/nbd.h"
#include "block/aio.h"
#include "monitor/monitor.h"
#include "monitor/chardev.h"
#include "monitor/json-stream.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi-visit.h"
#include "qapi-commands.h"
#include "qemu/job.h"
#include "qemu/keyval.h"
#include "qemu/trace.h"
#include "config-host.h"
#include <getopt.h>
#include <glib-unix.h>
#include <sys/file.h>

enum {
    OPTION_BLOCKDEV = 256,
    OPTION_CHARDEV,
    OPTION_DAEMONIZE,
    OPTION_EXPORT,
    OPTION_MONITOR,
    OPTION_NBD_SERVER,
    OPTION_OBJECT,
    OPTION_PIDFILE,
};

static const struct option long_options[] = {
    { "blockdev", required_argument, NULL, OPTION_BLOCKDEV },
    { "chardev", required_argument, NULL, OPTION_CHARDEV },
    { "daemonize", no_argument, NULL, OPTION_DAEMONIZE },
    { "export", required_argument, NULL, OPTION_EXPORT },
    { "help", no_argument, NULL, 'h' },
    { "monitor", required_argument, NULL, OPTION_MONITOR },
    { "nbd-server", required_argument, NULL, OPTION_NBD_SERVER },
    { "object", required_argument, NULL, OPTION_OBJECT },
    { "pidfile", required_argument, NULL, OPTION_PIDFILE },
    { "trace", required_argument, NULL, 'T' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

static const char *progname = "blockd";
static QmpCommandList qmp_commands;
static bool exit_requested;
static char *pidfile_path;
static int pidfile_fd = -1;
static int daemon_pipe = -1;

static void help(void)
{
    printf(
"Usage: %s [options]\n"
"blockd " BLOCKD_VERSION " - block job storage daemon\n"
"(command line compatible with qemu-storage-daemon)\n"
"\n"
"  -h, --help             display this help and exit\n"
"  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
"                         specify tracing options\n"
"  -V, --version          output version information and exit\n"
"\n"
"  --blockdev [driver=]<driver>[,node-name=<N>][,discard=ignore|unmap]\n"
"             [,cache.direct=on|off][,cache.no-flush=on|off]\n"
"             [,read-only=on|off][,auto-read-only=on|off]\n"
"             [,force-share=on|off][,detect-zeroes=on|off|unmap]\n"
"             [,driver specific parameters...]\n"
"                         configure a block backend (keyval or JSON)\n"
"\n"
"  --chardev socket,id=<id>,path=<path>,server=on,wait=off\n"
"  --chardev socket,id=<id>,host=<host>,port=<port>,server=on,wait=off\n"
"                         configure a character device (a listening\n"
"                         socket serving one client at a time)\n"
"\n"
"  --export [type=]nbd,id=<id>,node-name=<node-name>[,name=<export-name>]\n"
"           [,writable=on|off][,bitmap=<name>][,description=<text>]\n"
"           [,allocation-depth=on|off]\n"
"                         export the specified block node over NBD\n"
"                         (requires --nbd-server)\n"
"\n"
"  --monitor [chardev=]<name>[,mode=control][,pretty=on|off]\n"
"                         configure a QMP monitor\n"
"\n"
"  --nbd-server addr.type=inet,addr.host=<host>,addr.port=<port>\n"
"               [,max-connections=<n>][,handshake-max-seconds=<n>]\n"
"  --nbd-server addr.type=unix,addr.path=<path>\n"
"               [,max-connections=<n>][,handshake-max-seconds=<n>]\n"
"                         start an NBD server for exporting block nodes\n"
"\n"
"  --object help          list object types that can be added\n"
"\n"
"  --pidfile <path>       write process ID to a file after startup\n"
"  --daemonize            daemonize the process, and have the parent exit\n"
"                         once startup is complete\n"
"\n"
"Report bugs to the blockd issue tracker.\n",
           progname);
}

/* One line "blockd: --opt arg: message" and exit 1 */
static void G_GNUC_NORETURN option_error(const char *opt, const char *arg,
                                         Error *err)
{
    if (arg) {
        fprintf(stderr, "%s: %s %s: %s\n", progname, opt, arg,
                error_get_pretty(err));
    } else {
        fprintf(stderr, "%s: %s\n", progname, error_get_pretty(err));
    }
    error_free(err);
    exit(EXIT_FAILURE);
}

/*
 * An option argument starting with '{' is JSON (parsed like QMP input,
 * with QEMU's error texts), anything else keyval with @implied_key.
 */
static json_t *parse_option_arg(const char *arg, const char *implied_key,
                                bool *is_json, Error **errp)
{
    json_t *obj;

    *is_json = arg[0] == '{';
    if (!*is_json) {
        return keyval_parse(arg, implied_key, NULL, errp);
    }
    obj = json_parse_string(arg, errp);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        error_setg(errp, "Invalid parameter type, expected: object");
        return NULL;
    }
    return obj;
}

/* --blockdev: the same path as blockdev-add */
static bool add_blockdev(const char *arg, Error **errp)
{
    bool is_json = false;
    g_autoptr(json_t) opts = parse_option_arg(arg, "driver", &is_json, errp);
    BlockdevOptions *options = NULL;
    Visitor *v;
    bool ok;

    if (!opts) {
        return false;
    }
    v = is_json ? qobject_input_visitor_new(opts)
                : qobject_input_visitor_new_keyval(opts);
    ok = visit_type_BlockdevOptions(v, NULL, &options, errp);
    visit_free(v);
    ok = ok && blockdev_add(options, errp);
    qapi_free_BlockdevOptions(options);
    return ok;
}

/* --object: only "help" (blockd has no user-creatable objects yet) */
static bool add_object(const char *arg, bool *help_printed, Error **errp)
{
    bool help_req = false;
    g_autoptr(json_t) opts = keyval_parse(arg, "qom-type", &help_req, errp);
    const char *type;

    if (!opts) {
        return false;
    }
    type = json_string_value(json_object_get(opts, "qom-type"));
    if (help_req || (type && !strcmp(type, "help"))) {
        printf("List of user creatable objects:\n");
        *help_printed = true;
        return true;
    }
    if (!type) {
        error_setg(errp, "Parameter 'qom-type' is missing");
    } else {
        error_setg(errp, "Parameter 'qom-type' does not accept value '%s'",
                   type);
    }
    return false;
}

static bool add_monitor(const char *arg, Error **errp)
{
    bool is_json;
    g_autoptr(json_t) opts = parse_option_arg(arg, "chardev", &is_json, errp);

    return opts && monitor_new_from_opts(opts, errp);
}

/*
 * Write our pid under an fcntl lock held for the daemon's lifetime, so a
 * second daemon with the same pidfile fails instead of overwriting it.
 */
static bool write_pidfile(const char *path, Error **errp)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    g_autofree char *content = g_strdup_printf("%d\n", (int)getpid());
    int fd;

    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", path);
        return false;
    }
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        error_setg_errno(errp, errno, "Cannot lock pid file '%s'", path);
        close(fd);
        return false;
    }
    if (ftruncate(fd, 0) < 0 ||
        write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
        error_setg_errno(errp, errno, "Failed to write pid file '%s'", path);
        unlink(path);
        close(fd);
        return false;
    }
    pidfile_fd = fd;
    return true;
}

static void remove_pidfile(void)
{
    if (pidfile_fd >= 0) {
        unlink(pidfile_path);
        close(pidfile_fd);
        pidfile_fd = -1;
    }
}

/*
 * --daemonize: fork now; the parent waits for one status byte from the
 * child (0 = started) and exits with it.  If the child dies during
 * start-up the pipe closes and the parent exits with status 1.
 */
static void daemonize_start(void)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        fprintf(stderr, "%s: cannot create pipe: %s\n", progname,
                strerror(errno));
        exit(EXIT_FAILURE);
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot fork: %s\n", progname, strerror(errno));
        exit(EXIT_FAILURE);
    }
    if (pid > 0) {
        uint8_t status = 1;
        ssize_t n;

        close(fds[1]);
        do {
            n = read(fds[0], &status, 1);
        } while (n < 0 && errno == EINTR);
        _exit(n == 1 ? status : EXIT_FAILURE);
    }
    close(fds[0]);
    setsid();
    daemon_pipe = fds[1];
}

static void daemonize_finish(void)
{
    uint8_t ok = 0;
    int fd;

    if (daemon_pipe < 0) {
        return;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    if (write(daemon_pipe, &ok, 1) != 1) {
        /* the parent is gone; nothing to report to */
    }
    close(daemon_pipe);
    daemon_pipe = -1;
}

static void request_exit(void *opaque)
{
    exit_requested = true;
    g_main_context_wakeup(NULL);
}

static gboolean on_signal(gpointer data)
{
    trace(blockd_signal, "signal %d", GPOINTER_TO_INT(data));
    request_exit(NULL);
    return G_SOURCE_CONTINUE;
}

static void process_options(int argc, char *argv[], bool pre_pass)
{
    int c;
    Error *err = NULL;

    optind = 1;
    opterr = pre_pass;      /* getopt reports unknown options once */
    while ((c = getopt_long(argc, argv, "-hT:V", long_options, NULL)) != -1) {
        switch (c) {
        case '?':
            /* getopt printed "unrecognized option" */
            exit(EXIT_FAILURE);
        case 'h':
            if (pre_pass) {
                help();
                exit(EXIT_SUCCESS);
            }
            break;
        case 'V':
            if (pre_pass) {
                printf("blockd version " BLOCKD_VERSION "\n");
                exit(EXIT_SUCCESS);
            }
            break;
        case 'T':
            if (pre_pass && !trace_opt_parse(optarg, &err)) {
                /* name the option as it was typed: -T or --trace */
                option_error(optind >= 2 && argv[optind - 1] == optarg ?
                             argv[optind - 2] : "-T", optarg, err);
            }
            break;
        case OPTION_DAEMONIZE:
            break;
        case OPTION_PIDFILE:
            if (pre_pass) {
                g_free(pidfile_path);
                pidfile_path = g_strdup(optarg);
            }
            break;
        case 1:
            fprintf(stderr, "%s: %s: Unexpected argument\n", progname, optarg);
            exit(EXIT_FAILURE);
        default:
            if (pre_pass) {
                break;
            }
            switch (c) {
            case OPTION_BLOCKDEV:
                if (!add_blockdev(optarg, &err)) {
                    option_error("--blockdev", optarg, err);
                }
                break;
            case OPTION_CHARDEV:
                if (!qemu_chr_new_from_str(optarg, &err)) {
                    option_error("--chardev", optarg, err);
                }
                break;
            case OPTION_MONITOR:
                if (!add_monitor(optarg, &err)) {
                    option_error("--monitor", optarg, err);
                }
                break;
            case OPTION_NBD_SERVER:
                if (!nbd_server_start_cmdline(optarg, &err)) {
                    option_error("--nbd-server", optarg, err);
                }
                break;
            case OPTION_EXPORT:
                if (!blk_exp_add_cmdline(optarg, &err)) {
                    option_error("--export", optarg, err);
                }
                break;
            case OPTION_OBJECT: {
                bool help_printed = false;

                if (!add_object(optarg, &help_printed, &err)) {
                    option_error("--object", optarg, err);
                }
                if (help_printed) {
                    exit(EXIT_SUCCESS);
                }
                break;
            }
            default:
                g_assert_not_reached();
            }
        }
    }
}

static bool wants_daemonize(int argc, char *argv[])
{
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--daemonize") || !strcmp(argv[i], "-daemonize")) {
            return true;
        }
        if (!strcmp(argv[i], "--")) {
            break;
        }
    }
    return false;
}

/* Close every monitor-owned node, flushing it first. */
static void close_all_nodes(void)
{
    BlockDriverState *bs;

    bdrv_drain_all();
    while ((bs = bdrv_next_monitor_owned(NULL))) {
        bdrv_flush(bs);
        if (!bdrv_delete_node(bs, NULL)) {
            /* still referenced by something: drop the monitor's ref */
            bs->monitor_owned = false;
            bdrv_unref(bs);
        }
    }
}

static void sig_fatal_to_exit(void)
{
    g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGINT));
    g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
    g_unix_signal_add(SIGHUP, on_signal, GINT_TO_POINTER(SIGHUP));
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char *argv[])
{
    Error *err = NULL;

    error_set_progname(progname);
    process_options(argc, argv, true);

    if (wants_daemonize(argc, argv)) {
        daemonize_start();
    }

    qemu_init_main_loop();
    bdrv_init();
    sig_fatal_to_exit();

    /* Register exactly the schema modules whose handlers all exist. */
    qmp_init_marshal_control(&qmp_commands);
    qmp_init_marshal_block_core(&qmp_commands);
    qmp_init_marshal_misc(&qmp_commands);
    qmp_init_marshal_job(&qmp_commands);
    qmp_init_marshal_block_job(&qmp_commands);
    qmp_init_marshal_block_export(&qmp_commands);
    qmp_init_marshal_backup(&qmp_commands);
    qmp_init_marshal_transaction(&qmp_commands);
    monitor_init_qmp(&qmp_commands);
    monitor_set_shutdown_handler(request_exit, NULL);

    /*
     * No QMP command runs before start-up is complete: options may poll
     * the event loop (opening images), and a command run there would
     * interleave with option processing (qemu-io's getopt would even
     * restart our own argv scan).
     */
    monitor_hold_dispatch();
    process_options(argc, argv, false);

    if (pidfile_path && !write_pidfile(pidfile_path, &err)) {
        error_prepend(&err, "cannot create PID file: ");
        option_error(NULL, NULL, err);
    }
    daemonize_finish();
    monitor_release_dispatch();

    /*
     * The main AioContext is a GSource of the default GMainContext; so
     * are the signal sources: run both.
     */
    while (!exit_requested) {
        g_main_context_iteration(NULL, TRUE);
    }

    /* Clean shutdown: jobs first (their events still reach clients) */
    job_cancel_sync_all();
    nbd_server_shutdown();
    blk_exp_close_all();
    monitor_cleanup();
    close_all_nodes();
    qemu_chr_cleanup();
    qmp_command_list_destroy(&qmp_commands);
    remove_pidfile();
    g_free(pidfile_path);
    return EXIT_SUCCESS;
}
