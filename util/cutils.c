/*
 * Number and size parsing, size printing, string helpers and aligned
 * allocation.  The contracts are documented in include/qemu/cutils.h and
 * include/qemu/memalign.h.
 *
 * Size parsing (qemu_strtosz) is done without floating point: the integer
 * part is a uint64_t, the fraction a 0.64 fixed-point number built from
 * the decimal digits, and the product with the unit is computed in 128
 * bits, so "1.5M" is exact and overflow is detected precisely.  (QEMU
 * goes through a double; the results agree except that we keep more than
 * 53 bits of the fraction.)
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"

#include <math.h>

/* ---- integer parsing ----------------------------------------------------- */

/*
 * Common tail of the qemu_strto*() functions: turn strto*()'s results into
 * our return value and *endptr.  @ep is where the libc parser stopped and
 * @libc_errno the errno it left.  Returns 0, -EINVAL or -ERANGE.
 */
static int strtox_finish(const char *nptr, const char *ep,
                         const char **endptr, int libc_errno)
{
    int ret = 0;

    if (ep == nptr) {
        /* Nothing was parsed. */
        if (endptr) {
            *endptr = nptr;
        }
        return -EINVAL;
    }
    if (libc_errno == ERANGE) {
        ret = -ERANGE;
    }
    if (endptr) {
        *endptr = ep;
    } else if (*ep) {
        ret = -EINVAL;
    }
    return ret;
}

static bool strtox_null(const char *nptr, const char **endptr)
{
    if (nptr) {
        return false;
    }
    if (endptr) {
        *endptr = NULL;
    }
    return true;
}

/* Does the text (after optional white space) start with a minus sign? */
static bool starts_negative(const char *nptr)
{
    while (g_ascii_isspace(*nptr)) {
        nptr++;
    }
    return *nptr == '-';
}

/* Signed parse into [min, max], clamping and reporting -ERANGE. */
static int parse_signed(const char *nptr, const char **endptr, int base,
                        int64_t min, int64_t max, int64_t *result)
{
    char *ep;
    long long val;
    int ret;

    if (strtox_null(nptr, endptr)) {
        *result = 0;
        return -EINVAL;
    }
    errno = 0;
    val = strtoll(nptr, &ep, base);
    ret = strtox_finish(nptr, ep, endptr, errno);
    if (ret == 0 || ret == -ERANGE) {
        if (val > max) {
            val = max;
            ret = -ERANGE;
        } else if (val < min) {
            val = min;
            ret = -ERANGE;
        }
    }
    if (ret == -EINVAL) {
        val = 0;
    }
    *result = val;
    return ret;
}

/*
 * Unsigned parse into [0, max].  A negative input wraps modulo max + 1
 * when its magnitude fits, as strtoul() does for its own type.
 */
static int parse_unsigned(const char *nptr, const char **endptr, int base,
                          uint64_t max, uint64_t *result)
{
    char *ep;
    unsigned long long val;
    int ret;

    if (strtox_null(nptr, endptr)) {
        *result = 0;
        return -EINVAL;
    }
    errno = 0;
    val = strtoull(nptr, &ep, base);
    ret = strtox_finish(nptr, ep, endptr, errno);
    if (ret == -ERANGE) {
        val = max;
    } else if (ret == 0) {
        if (ep != nptr && starts_negative(nptr)) {
            uint64_t magnitude = -(uint64_t)val;

            if (magnitude > max) {
                val = max;
                ret = -ERANGE;
            } else {
                val = (max - magnitude + 1) & max;
            }
        } else if (val > max) {
            val = max;
            ret = -ERANGE;
        }
    }
    if (ret == -EINVAL) {
        val = 0;
    }
    *result = val;
    return ret;
}

int qemu_strtoi(const char *nptr, const char **endptr, int base,
                int *result)
{
    int64_t v;
    int ret = parse_signed(nptr, endptr, base, INT_MIN, INT_MAX, &v);

    *result = v;
    return ret;
}

int qemu_strtoui(const char *nptr, const char **endptr, int base,
                 unsigned int *result)
{
    uint64_t v;
    int ret = parse_unsigned(nptr, endptr, base, UINT_MAX, &v);

    *result = v;
    return ret;
}

int qemu_strtol(const char *nptr, const char **endptr, int base,
                long *result)
{
    int64_t v;
    int ret = parse_signed(nptr, endptr, base, LONG_MIN, LONG_MAX, &v);

    *result = v;
    return ret;
}

int qemu_strtoul(const char *nptr, const char **endptr, int base,
                 unsigned long *result)
{
    uint64_t v;
    int ret = parse_unsigned(nptr, endptr, base, ULONG_MAX, &v);

    *result = v;
    return ret;
}

int qemu_strtoi64(const char *nptr, const char **endptr, int base,
                  int64_t *result)
{
    return parse_signed(nptr, endptr, base, INT64_MIN, INT64_MAX, result);
}

int qemu_strtou64(const char *nptr, const char **endptr, int base,
                  uint64_t *result)
{
    return parse_unsigned(nptr, endptr, base, UINT64_MAX, result);
}

int qemu_strtod(const char *nptr, const char **endptr, double *result)
{
    char *ep;
    double val;
    int ret;

    if (strtox_null(nptr, endptr)) {
        *result = 0.0;
        return -EINVAL;
    }
    errno = 0;
    val = strtod(nptr, &ep);
    ret = strtox_finish(nptr, ep, endptr, errno);
    *result = ret == -EINVAL ? 0.0 : val;
    return ret;
}

int qemu_strtod_finite(const char *nptr, const char **endptr, double *result)
{
    const char *ep;
    double val;
    int ret;

    ret = qemu_strtod(nptr, &ep, &val);
    if (ret == 0 && !isfinite(val)) {
        /* "inf", "nan": a number, but not one we accept */
        ep = nptr;
        val = 0.0;
        ret = -EINVAL;
    }
    if (endptr) {
        *endptr = ep;
    } else if (ret == 0 && *ep) {
        val = 0.0;
        ret = -EINVAL;
    }
    *result = val;
    return ret;
}

/* ---- sizes --------------------------------------------------------------- */

/* Multiplier for a size suffix character, or 0 if @c is not a suffix. */
static uint64_t suffix_mul(char c, uint64_t unit)
{
    static const char suffixes[] = "BKMGTPE";
    const char *p;
    uint64_t mul = 1;

    if (!c) {
        return 0;
    }
    p = strchr(suffixes, g_ascii_toupper(c));
    if (!p) {
        return 0;
    }
    for (ptrdiff_t i = 0; i < p - suffixes; i++) {
        mul *= unit;
    }
    return mul;
}

static int do_strtosz(const char *nptr, const char **end,
                      char default_suffix, uint64_t unit, uint64_t *result)
{
    const char *p = nptr;
    uint64_t ival = 0;
    uint64_t frac = 0;           /* 0.64 fixed point */
    uint64_t mul;
    bool digits = false;
    int ret = 0;

    if (!nptr) {
        if (end) {
            *end = NULL;
        }
        *result = 0;
        return -EINVAL;
    }
    while (g_ascii_isspace(*p)) {
        p++;
    }

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        g_ascii_isxdigit(p[2])) {
        /* Hex: an integer, no fraction, no suffix. */
        for (p += 2; g_ascii_isxdigit(*p); p++) {
            if (ival >> 60) {
                ret = -ERANGE;
            }
            ival = (ival << 4) | g_ascii_xdigit_value(*p);
        }
        if (ret) {
            goto out;
        }
        if (*p == '.' || suffix_mul(*p, unit)) {
            ret = -EINVAL;
            goto out;
        }
        digits = true;
    } else {
        for (; g_ascii_isdigit(*p); p++) {
            unsigned d = *p - '0';

            digits = true;
            if (ival > (UINT64_MAX - d) / 10) {
                ret = -ERANGE;
            }
            ival = ival * 10 + d;
        }
        if (ret) {
            goto out;
        }
        if (*p == '.') {
            const char *first = ++p;
            bool nonzero = false;

            while (g_ascii_isdigit(*p)) {
                digits = true;
                nonzero |= *p != '0';
                p++;
            }
            /*
             * frac = floor(0.d1d2...dn * 2^64), exactly, for any number of
             * digits: Horner's rule from the last digit, dividing by ten
             * at each step (nested floors of the divisions are the floor
             * of the whole).
             */
            for (const char *q = p; q > first; q--) {
                unsigned __int128 t =
                    ((unsigned __int128)(q[-1] - '0') << 64) | frac;

                frac = (uint64_t)(t / 10);
            }
            if (frac == 0 && nonzero) {
                frac = 1;   /* below 2^-64, but still not a whole number */
            }
        }
    }
    if (!digits) {
        ret = -EINVAL;
        goto out;
    }

    mul = suffix_mul(*p, unit);
    if (mul) {
        p++;
    } else {
        mul = suffix_mul(default_suffix, unit);
        assert(mul);
    }
    if (mul == 1 && frac) {
        /* A fraction of a byte makes no sense. */
        ret = -EINVAL;
        goto out;
    }
    {
        unsigned __int128 r = (unsigned __int128)ival * mul;

        /* Add frac * mul, rounded half up. */
        r += ((unsigned __int128)frac * mul + (UINT64_C(1) << 63)) >> 64;
        if (r > UINT64_MAX) {
            ret = -ERANGE;
            goto out;
        }
        ival = (uint64_t)r;
    }

out:
    if (end) {
        *end = ret == -EINVAL ? nptr : p;
    } else if (ret == 0 && *p) {
        ret = -EINVAL;
    }
    *result = ret ? 0 : ival;
    return ret;
}

int qemu_strtosz(const char *nptr, const char **end, uint64_t *result)
{
    return do_strtosz(nptr, end, 'B', 1024, result);
}

int qemu_strtosz_MiB(const char *nptr, const char **end, uint64_t *result)
{
    return do_strtosz(nptr, end, 'M', 1024, result);
}

int qemu_strtosz_metric(const char *nptr, const char **end,
                        uint64_t *result)
{
    return do_strtosz(nptr, end, 'B', 1000, result);
}

char *size_to_str(uint64_t val)
{
    static const char *const units[] = {
        "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
    };
    int i = 0;

    /*
     * Move to the next unit once the value reaches 1000 of the current
     * one, so that at most three integer digits are printed.
     */
    while (i < (int)ARRAY_SIZE(units) - 1 &&
           val >= (UINT64_C(1000) << (10 * i))) {
        i++;
    }
    return g_strdup_printf("%0.3g %s",
                           (double)val / (double)(UINT64_C(1) << (10 * i)),
                           units[i]);
}

/* ---- strings ------------------------------------------------------------- */

void pstrcpy(char *buf, int buf_size, const char *str)
{
    if (buf_size <= 0) {
        return;
    }
    g_strlcpy(buf, str, buf_size);
}

bool strstart(const char *str, const char *prefix, const char **ptr)
{
    size_t len = strlen(prefix);

    if (strncmp(str, prefix, len) != 0) {
        return false;
    }
    if (ptr) {
        *ptr = str + len;
    }
    return true;
}

/* ---- aligned memory ------------------------------------------------------ */

void *qemu_try_memalign(size_t alignment, size_t size)
{
    void *ptr;

    assert(is_power_of_2(alignment));
    if (alignment < sizeof(void *)) {
        alignment = sizeof(void *);
    }
    if (size == 0) {
        /* posix_memalign may return NULL for 0; we want a unique pointer */
        size = 1;
    }
    if (posix_memalign(&ptr, alignment, size) != 0) {
        return NULL;
    }
    return ptr;
}

void *qemu_memalign(size_t alignment, size_t size)
{
    void *ptr = qemu_try_memalign(alignment, size);

    if (!ptr) {
        fprintf(stderr, "blockd: failed to allocate %zu bytes aligned to "
                "%zu: %s\n", size, alignment, strerror(ENOMEM));
        abort();
    }
    return ptr;
}

void qemu_vfree(void *ptr)
{
    free(ptr);
}

void *qemu_try_blockalign_buf(size_t align, size_t size)
{
    if (align == 0) {
        align = QEMU_DEFAULT_IO_ALIGN;
    }
    if (size > SIZE_MAX - align) {
        return NULL;
    }
    size = QEMU_ALIGN_UP(size ? size : 1, align);
    return qemu_try_memalign(align, size);
}

void *qemu_blockalign_buf(size_t align, size_t size)
{
    void *ptr = qemu_try_blockalign_buf(align, size);

    if (!ptr) {
        fprintf(stderr, "blockd: failed to allocate a %zu byte I/O buffer\n",
                size);
        abort();
    }
    return ptr;
}

void *qemu_try_blockalign0_buf(size_t align, size_t size)
{
    void *ptr = qemu_try_blockalign_buf(align, size);

    if (ptr) {
        memset(ptr, 0, size);
    }
    return ptr;
}
