/*
 * Internals shared by the qemu-io command files: tools/qemu-io-cmds.c
 * (command table, dispatch, output helpers, read/write/aio commands) and
 * tools/qemu-io-misc.c (the other commands).
 */
#ifndef TOOLS_QEMU_IO_INT_H
#define TOOLS_QEMU_IO_INT_H

#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/qemu-io.h"

/* Where output goes (stdout, or the FILE given to qemuio_set_output) */
FILE *qio_out(void);
FILE *qio_err(void);
void qio_printf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* qemu-io's number parser (size suffixes); -EINVAL / -ERANGE on error */
int64_t qio_cvtnum(const char *s);
/* "Parsing error: ..." for a qio_cvtnum() error */
void qio_print_cvtnum_err(int64_t rc, const char *arg);
/* Parse arg with qio_cvtnum, printing the error; false on error */
bool qio_get_num(const char *arg, int64_t *v);

/* "OP TOTAL/COUNT bytes at offset OFF" + rate line (-C: one CSV line) */
void qio_print_report(const char *op, int64_t ns, int64_t offset,
                      int64_t count, int64_t total, int cnt, bool cflag);
int64_t qio_now_ns(void);

/* The commands of tools/qemu-io-misc.c */
extern const QemuIoCmd qio_misc_cmds[];
extern const size_t qio_n_misc_cmds;

#endif /* TOOLS_QEMU_IO_INT_H */
