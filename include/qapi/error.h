/*
 * QEMU-style error reporting for the control path.
 *
 * Conventions (as in QEMU's include/qapi/error.h):
 * - A function that can fail takes `Error **errp` as its LAST parameter and
 *   also returns a success indicator (bool true, non-NULL pointer, >= 0).
 * - On failure it sets *errp exactly once with error_setg() and friends.
 * - errp may be NULL (ignore errors), &error_abort (abort on error, printing
 *   the message) or &error_fatal (print and exit(1)).
 * - To look at an error, use a local `Error *local_err = NULL` or
 *   ERRP_GUARD() and then check *errp.
 * - Messages are one phrase, no trailing punctuation or newline, naming the
 *   object concerned: "Bitmap '%s' could not be found".
 *
 * The I/O path never uses Error; it returns -errno.
 */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H

#include "qemu/osdep.h"

/* QEMU's QMP error classes (qapi/error.json QapiErrorClass). */
typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR = 0,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_KVM_MISSING_CAP,
    ERROR_CLASS__MAX,
} ErrorClass;

/* "GenericError", "CommandNotFound", ... as sent on the wire. */
const char *error_class_name(ErrorClass cls);

typedef struct Error Error;

extern Error *error_abort;
extern Error *error_fatal;

/* Create an error of class GenericError with a printf-style message. */
#define error_setg(errp, fmt, ...) \
    error_setg_internal((errp), __FILE__, __LINE__, __func__, (fmt), ##__VA_ARGS__)
void error_setg_internal(Error **errp, const char *src, int line,
                         const char *func, const char *fmt, ...)
    QEMU_PRINTF(5, 6);

/* Like error_setg(), appending ": " and strerror(os_errno). */
#define error_setg_errno(errp, os_errno, fmt, ...) \
    error_setg_errno_internal((errp), __FILE__, __LINE__, __func__, \
                              (os_errno), (fmt), ##__VA_ARGS__)
void error_setg_errno_internal(Error **errp, const char *src, int line,
                               const char *func, int os_errno,
                               const char *fmt, ...) QEMU_PRINTF(6, 7);

/* Create an error of a specific class. */
void error_set(Error **errp, ErrorClass err_class, const char *fmt, ...)
    QEMU_PRINTF(3, 4);

/* Prefix the message of *errp (if set) with a printf-style string. */
void error_prepend(Error **errp, const char *fmt, ...) QEMU_PRINTF(2, 3);
/* Append a hint shown by error_report_err() (not sent over QMP). */
void error_append_hint(Error **errp, const char *fmt, ...) QEMU_PRINTF(2, 3);

/*
 * Move local_err into *dst_errp.  If dst_errp is NULL, free local_err.
 * If dst_errp is &error_abort/&error_fatal, act on it.  If *dst_errp is
 * already set, local_err is freed (the first error wins).
 */
void error_propagate(Error **dst_errp, Error *local_err);
void error_propagate_prepend(Error **dst_errp, Error *local_err,
                             const char *fmt, ...) QEMU_PRINTF(3, 4);

const char *error_get_pretty(const Error *err);
ErrorClass error_get_class(const Error *err);
Error *error_copy(const Error *err);
void error_free(Error *err);
void error_free_or_abort(Error **errp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

/* Print "blockd: <msg>\n" (plus hint) to stderr and free the error. */
void error_report_err(Error *err);
void warn_report_err(Error *err);
/* Print a message to stderr prefixed by the program name. */
void error_report(const char *fmt, ...) QEMU_PRINTF(1, 2);
void warn_report(const char *fmt, ...) QEMU_PRINTF(1, 2);
void info_report(const char *fmt, ...) QEMU_PRINTF(1, 2);
/* Program name used as prefix by error_report() (default "blockd"). */
void error_set_progname(const char *name);
const char *error_get_progname(void);
/*
 * Tools: the program name is the base name of argv0, as QEMU's
 * error_init(argv[0]) (so a copy named qemu-img prints "qemu-img: ...").
 */
void error_init_progname(const char *argv0);

/*
 * ERRP_GUARD(): put at the top of a function taking Error **errp when the
 * function needs to dereference errp (*errp) after calling another function.
 * Makes errp point to a local Error * if it was NULL/&error_abort/&error_fatal
 * and propagates on return.
 */
typedef struct ErrorPropagator {
    Error *local_err;
    Error **errp;
} ErrorPropagator;

static inline void error_propagator_cleanup(ErrorPropagator *prop)
{
    error_propagate(prop->errp, prop->local_err);
}

#define ERRP_GUARD()                                                    \
    g_auto(ErrorPropagator) _auto_errp_prop = {.errp = errp};           \
    do {                                                                \
        if (!errp || errp == &error_fatal) {                           \
            errp = &_auto_errp_prop.local_err;                          \
        }                                                               \
    } while (0)

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ErrorPropagator, error_propagator_cleanup)

#endif /* QAPI_ERROR_H */
