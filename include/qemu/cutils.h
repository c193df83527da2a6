/*
 * Small C utilities: number and size parsing, size printing, zero
 * detection, safe string copies.
 *
 * Number parsing follows QEMU's util/cutils.c contract, which command-line
 * and QMP parsing everywhere depend on:
 *
 * - Every qemu_strto*() returns 0 on success, -EINVAL when the input is not
 *   a number (NULL, empty, no digits, or -- when @endptr is NULL -- any
 *   trailing characters), and -ERANGE when the number does not fit.
 * - On -ERANGE, *result is clamped to the nearest representable value
 *   (e.g. INT_MAX / INT_MIN / UINT64_MAX); on -EINVAL it is 0.
 * - If @endptr is non-NULL it receives the first unparsed character, and
 *   trailing characters are the caller's business.  On -EINVAL caused by
 *   "no digits at all" it is set to @nptr.
 * - Leading whitespace is skipped, as strtol() does.
 * - @base is passed to strtol(): 0 means auto-detect 0x (hex) and 0 (octal).
 * - The unsigned variants accept a leading '-' the way strtoul() does, i.e.
 *   "-1" parses to the maximum value (wraps modulo 2^N), but a negative
 *   number whose magnitude does not fit is -ERANGE.
 */
#ifndef QEMU_CUTILS_H
#define QEMU_CUTILS_H

#include "qemu/osdep.h"
#include "qemu/memalign.h"

int qemu_strtoi(const char *nptr, const char **endptr, int base,
                int *result);
int qemu_strtoui(const char *nptr, const char **endptr, int base,
                 unsigned int *result);
int qemu_strtol(const char *nptr, const char **endptr, int base,
                long *result);
int qemu_strtoul(const char *nptr, const char **endptr, int base,
                 unsigned long *result);
int qemu_strtoi64(const char *nptr, const char **endptr, int base,
                  int64_t *result);
int qemu_strtou64(const char *nptr, const char **endptr, int base,
                  uint64_t *result);
/*
 * Parse a double with strtod().  -ERANGE on overflow (result +-HUGE_VAL) or
 * underflow (result is the tiny/zero value strtod() returned).
 */
int qemu_strtod(const char *nptr, const char **endptr, double *result);
/* Like qemu_strtod(), but "inf"/"nan" are -EINVAL and overflow is -ERANGE. */
int qemu_strtod_finite(const char *nptr, const char **endptr, double *result);

/*
 * Parse a size with an optional binary suffix (QEMU's qemu_strtosz):
 *   [0-9]+[.[0-9]*][BKMGTPE]   (suffix case-insensitive, K = 1024 ...)
 * - No suffix means bytes (qemu_strtosz) or MiB (qemu_strtosz_MiB).
 * - A fraction needs a suffix larger than B ("1.5M" ok, "1.5" and "1.5B"
 *   are -EINVAL); the result is rounded to the nearest byte (half up).
 * - Hex ("0x1000") is accepted without fraction or suffix.
 * - Negative numbers are -EINVAL, results >= 2^64 are -ERANGE.
 * - @end as for qemu_strtoul(): NULL means trailing junk is an error.
 *   On any error *result is 0; *end (if given) is @nptr on -EINVAL and
 *   just past the number on -ERANGE.
 */
int qemu_strtosz(const char *nptr, const char **end, uint64_t *result);
int qemu_strtosz_MiB(const char *nptr, const char **end, uint64_t *result);
/* As qemu_strtosz(), but suffixes are powers of 1000 (k = 1000). */
int qemu_strtosz_metric(const char *nptr, const char **end,
                        uint64_t *result);

/*
 * Human-readable size as qemu-img prints it: three significant digits and
 * a binary unit, switching to the next unit at 1000 of the current one:
 * "0 B", "999 B", "0.977 KiB", "64 KiB", "1.5 MiB", "1 GiB".  g_free() it.
 */
char *size_to_str(uint64_t val);

/*
 * True if the @len bytes at @buf are all zero.  Any alignment and length
 * (len 0 is true).  Uses SSE2 / AVX2 when the CPU has them.
 */
bool buffer_is_zero(const void *buf, size_t len);

/* Implementations of buffer_is_zero(), for tests and benchmarks. */
typedef enum BufferZeroAccel {
    BUFFER_ZERO_ACCEL_AUTO = 0, /* best the CPU supports */
    BUFFER_ZERO_ACCEL_INT,      /* portable 64-bit words */
    BUFFER_ZERO_ACCEL_SSE2,
    BUFFER_ZERO_ACCEL_AVX2,
    BUFFER_ZERO_ACCEL__MAX,
} BufferZeroAccel;

/*
 * Force the implementation buffer_is_zero() uses.  Returns false (and
 * changes nothing) if this build or CPU does not support @accel.
 */
bool buffer_is_zero_set_accel(BufferZeroAccel accel);

/*
 * Copy @str into @buf of @buf_size bytes, truncating and always
 * NUL-terminating when buf_size > 0 (QEMU's pstrcpy()).
 */
void pstrcpy(char *buf, int buf_size, const char *str);

/*
 * If @str starts with @prefix, store the rest in *ptr (if ptr is non-NULL)
 * and return true; else return false.
 */
bool strstart(const char *str, const char *prefix, const char **ptr);

#endif /* QEMU_CUTILS_H */
