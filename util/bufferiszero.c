/*
 * buffer_is_zero(): is a buffer all zero bytes?
 *
 * Backup calls this on every cluster it copies (a zero cluster becomes a
 * cheap write_zeroes on the target), so it is on the hot path and worth
 * some care:
 *
 * - Most non-zero data is non-zero near its start, its end or its middle,
 *   so those three bytes are checked first; a typical data cluster is
 *   rejected after three loads.
 * - Short buffers (< 64 bytes) are handled with overlapping unaligned
 *   8-byte (or 4-byte) loads: no per-byte loop, no alignment fix-up.
 * - Long buffers are scanned with the widest vectors the CPU has: one
 *   unaligned vector at each end, aligned vectors in between (so loads
 *   never cross a page boundary more than necessary), four vectors OR-ed
 *   together per iteration with one test per iteration.  Every load stays
 *   inside [buf, buf + len), which keeps AddressSanitizer quiet.
 *
 * The implementation is picked once from the CPU features (AVX2, SSE2 or
 * portable 64-bit words); tests force each one with
 * buffer_is_zero_set_accel() and compare against a naive byte loop.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BUFZERO_X86 1
#endif

typedef bool (*BufferZeroFn)(const unsigned char *buf, size_t len);

/* Unaligned loads, done through memcpy so that any address is valid. */
static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t load32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* 4 <= len: overlapping word loads, no alignment needed. */
static bool buffer_is_zero_small(const unsigned char *buf, size_t len)
{
    uint64_t t;
    size_t i;

    if (len < 8) {
        return (load32(buf) | load32(buf + len - 4)) == 0;
    }
    t = load64(buf + len - 8);
    for (i = 0; i + 8 <= len; i += 8) {
        t |= load64(buf + i);
    }
    return t == 0;
}

/* Portable: len >= 64.  Aligned 64-bit words, eight per iteration. */
static bool buffer_zero_int(const unsigned char *buf, size_t len)
{
    typedef uint64_t __attribute__((may_alias)) u64a;
    const unsigned char *end = buf + len;
    const u64a *p = QEMU_ALIGN_PTR_UP((const u64a *)buf, 8);
    const u64a *e = QEMU_ALIGN_PTR_DOWN((const u64a *)end, 8);
    uint64_t t = load64(buf) | load64(end - 8);

    /* p <= e: the unaligned head/tail were covered by the loads above. */
    for (; p + 8 <= e; p += 8) {
        if (t) {
            return false;
        }
        t = p[0] | p[1] | p[2] | p[3] | p[4] | p[5] | p[6] | p[7];
    }
    for (; p < e; p++) {
        t |= *p;
    }
    return t == 0;
}

#ifdef BUFZERO_X86

/* len >= 64.  Needs SSE2, always present on x86_64. */
static bool __attribute__((target("sse2")))
buffer_zero_sse2(const unsigned char *buf, size_t len)
{
    const unsigned char *end = buf + len;
    const __m128i *p = QEMU_ALIGN_PTR_UP((const __m128i *)buf, 16);
    const __m128i *e = QEMU_ALIGN_PTR_DOWN((const __m128i *)end, 16);
    const __m128i zero = _mm_setzero_si128();
    __m128i t = _mm_or_si128(_mm_loadu_si128((const __m128i *)buf),
                             _mm_loadu_si128((const __m128i *)(end - 16)));

    for (; p + 4 <= e; p += 4) {
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(t, zero)) != 0xffff) {
            return false;
        }
        t = _mm_or_si128(_mm_or_si128(p[0], p[1]),
                         _mm_or_si128(p[2], p[3]));
    }
    for (; p < e; p++) {
        t = _mm_or_si128(t, *p);
    }
    return _mm_movemask_epi8(_mm_cmpeq_epi8(t, zero)) == 0xffff;
}

/* len >= 64.  Needs AVX2 (checked at run time). */
static bool __attribute__((target("avx2")))
buffer_zero_avx2(const unsigned char *buf, size_t len)
{
    const unsigned char *end = buf + len;
    const __m256i *p = QEMU_ALIGN_PTR_UP((const __m256i *)buf, 32);
    const __m256i *e = QEMU_ALIGN_PTR_DOWN((const __m256i *)end, 32);
    __m256i t = _mm256_or_si256(
        _mm256_loadu_si256((const __m256i *)buf),
        _mm256_loadu_si256((const __m256i *)(end - 32)));

    for (; p + 4 <= e; p += 4) {
        if (!_mm256_testz_si256(t, t)) {
            return false;
        }
        t = _mm256_or_si256(_mm256_or_si256(p[0], p[1]),
                            _mm256_or_si256(p[2], p[3]));
    }
    for (; p < e; p++) {
        t = _mm256_or_si256(t, *p);
    }
    return _mm256_testz_si256(t, t);
}

static bool cpu_has(BufferZeroAccel accel)
{
    __builtin_cpu_init();
    switch (accel) {
    case BUFFER_ZERO_ACCEL_SSE2:
        return __builtin_cpu_supports("sse2");
    case BUFFER_ZERO_ACCEL_AVX2:
        return __builtin_cpu_supports("avx2");
    default:
        return false;
    }
}

#endif /* BUFZERO_X86 */

static BufferZeroFn accel_fn(BufferZeroAccel accel)
{
    switch (accel) {
    case BUFFER_ZERO_ACCEL_INT:
        return buffer_zero_int;
#ifdef BUFZERO_X86
    case BUFFER_ZERO_ACCEL_SSE2:
        return cpu_has(accel) ? buffer_zero_sse2 : NULL;
    case BUFFER_ZERO_ACCEL_AVX2:
        return cpu_has(accel) ? buffer_zero_avx2 : NULL;
#endif
    default:
        return NULL;
    }
}

static BufferZeroFn best_accel(void)
{
    static const BufferZeroAccel order[] = {
        BUFFER_ZERO_ACCEL_AVX2, BUFFER_ZERO_ACCEL_SSE2, BUFFER_ZERO_ACCEL_INT,
    };

    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        BufferZeroFn fn = accel_fn(order[i]);

        if (fn) {
            return fn;
        }
    }
    g_assert_not_reached();
}

/*
 * The chosen implementation.  Written once at startup (or by tests);
 * concurrent first calls may both compute it, which is harmless.
 */
static BufferZeroFn buffer_zero_fn;

bool buffer_is_zero_set_accel(BufferZeroAccel accel)
{
    BufferZeroFn fn;

    if (accel == BUFFER_ZERO_ACCEL_AUTO) {
        fn = best_accel();
    } else if (accel >= BUFFER_ZERO_ACCEL__MAX) {
        return false;
    } else {
        fn = accel_fn(accel);
    }
    if (!fn) {
        return false;
    }
    __atomic_store_n(&buffer_zero_fn, fn, __ATOMIC_RELAXED);
    return true;
}

bool buffer_is_zero(const void *vbuf, size_t len)
{
    const unsigned char *buf = vbuf;
    BufferZeroFn fn;

    if (len == 0) {
        return true;
    }
    /* Cheap early exits: data is rarely zero at its ends and middle. */
    if (buf[0] || buf[len - 1] || buf[len / 2]) {
        return false;
    }
    if (len <= 3) {
        return true;
    }
    if (len < 64) {
        return buffer_is_zero_small(buf, len);
    }
    fn = __atomic_load_n(&buffer_zero_fn, __ATOMIC_RELAXED);
    if (unlikely(!fn)) {
        fn = best_accel();
        __atomic_store_n(&buffer_zero_fn, fn, __ATOMIC_RELAXED);
    }
    return fn(buf, len);
}
