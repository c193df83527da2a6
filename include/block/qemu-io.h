/*
 * The qemu-io compatible command interpreter (tools/qemu-io-cmds.c), in
 * the library so that blockd-io and the daemon (human-monitor-command
 * "qemu-io NODE CMD") share it.  Output goes to stdout (error messages
 * about the command line to stderr) in qemu-io's exact format, or all of
 * it to the FILE set with qemuio_set_output().
 */
#ifndef BLOCK_QEMU_IO_H
#define BLOCK_QEMU_IO_H

#include "block/block-backend.h"

/*
 * Run one command line ("write -P 0x5a 0 64k") against blk (may be NULL
 * for commands that need no image).  Returns 0, or a negative errno if
 * the command failed (qemu-io then exits with status 1).
 */
int qemuio_command(BlockBackend *blk, const char *cmd);
/*
 * Send all output (including command-line errors) to @out instead of
 * stdout/stderr; NULL restores them.  Returns the previous setting.
 * human-monitor-command captures a command's output this way.
 */
FILE *qemuio_set_output(FILE *out);
/* Print the command list ("help") */
void qemuio_help(void);

#endif /* BLOCK_QEMU_IO_H */
