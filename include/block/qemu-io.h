/*
 * The qemu-io compatible command interpreter (tools/qemu-io-cmds.c and
 * tools/qemu-io-misc.c), in the library so that blockd-io and the daemon
 * (human-monitor-command "qemu-io NODE CMD") share it.  Output goes to
 * stdout (error messages about the command line to stderr) in qemu-io's
 * exact format, or all of it to the FILE set with qemuio_set_output().
 *
 * A command line is split at spaces (no quoting, as qemu-io); the first
 * word names a command (or its one-letter alias).  Before the command
 * runs, its argument count is checked and the BlockBackend is given the
 * extra permissions the command declares (write: BLK_PERM_WRITE,
 * truncate: also BLK_PERM_RESIZE), which fails on a read-only image.
 */
#ifndef BLOCK_QEMU_IO_H
#define BLOCK_QEMU_IO_H

#include "block/block-backend.h"

typedef int QemuIoCmdFunc(BlockBackend *blk, int argc, char **argv);

enum {
    QEMUIO_CMD_GLOBAL = 0x1,    /* runs whether or not a file is open */
    QEMUIO_CMD_NOFILE_OK = 0x2, /* may run without a file open */
};

typedef struct QemuIoCmd {
    const char *name;
    const char *altname;        /* one-letter alias, or NULL */
    QemuIoCmdFunc *func;
    int argmin, argmax;         /* argmax -1: unlimited */
    int flags;                  /* QEMUIO_CMD_* */
    uint64_t perm;              /* BLK_PERM_* taken before running */
    const char *args;           /* synopsis of the options; NULL: none */
    const char *oneline;
    void (*help)(void);         /* extended help ("help CMD"), or NULL */
} QemuIoCmd;

/*
 * Run one command line ("write -P 0x5a 0 64k") against blk (may be NULL
 * for commands that need no image).  Returns 0, or a negative errno if
 * the command failed (qemu-io then exits with status 1).
 */
int qemuio_command(BlockBackend *blk, const char *cmd);
/* Add a command (blockd-io adds open, close and quit); cmd is borrowed */
void qemuio_add_command(const QemuIoCmd *cmd);
/* "CMD ARGS -- ONELINE" for a command's bad usage */
void qemuio_command_usage(const QemuIoCmd *cmd);
/*
 * Send all output (including command-line errors) to @out instead of
 * stdout/stderr; NULL restores them.  Returns the previous setting.
 * human-monitor-command captures a command's output this way.
 */
FILE *qemuio_set_output(FILE *out);
/* Print the command list ("help") */
void qemuio_help(void);
/* Allocate I/O buffers misaligned (blockd-io -m) */
void qemuio_set_misalign(bool misalign);

/*
 * qemu-io's size format: "512 bytes", "1.500 KiB", "64 KiB" (three
 * decimals for units of KiB and above, dropped when they are ".000").
 */
void qemuio_cvtstr(double value, char *str, size_t size);

#endif /* BLOCK_QEMU_IO_H */
