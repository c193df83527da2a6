/*
 * osdep.h: the first include of every blockd .c file.
 *
 * Pulls in the C library, GLib and the build configuration, and defines the
 * small macros the whole tree uses (alignment, container_of, coroutine_fn).
 */
#ifndef QEMU_OSDEP_H
#define QEMU_OSDEP_H

#include "config-host.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib.h>

/* Marks functions that may only be called from coroutine context. */
#define coroutine_fn
/* Marks functions that may be called from coroutine or non-coroutine context. */
#define coroutine_mixed_fn

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#ifndef container_of
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define QEMU_BUILD_BUG_ON(x) _Static_assert(!(x), "QEMU_BUILD_BUG_ON(" #x ")")
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

#define QEMU_PACKED __attribute__((packed))
#define QEMU_NORETURN __attribute__((noreturn))
#define QEMU_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#define QEMU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define QEMU_FALLTHROUGH __attribute__((fallthrough))

/* Round number down to multiple */
#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
/* Round number up to multiple. Safe when m is not a power of 2 */
#define QEMU_ALIGN_UP(n, m) QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)
/* n-byte align pointer down / up (m must be a power of 2) */
#define QEMU_ALIGN_PTR_DOWN(p, n) ((__typeof__(p))QEMU_ALIGN_DOWN((uintptr_t)(p), (n)))
#define QEMU_ALIGN_PTR_UP(p, n) ((__typeof__(p))QEMU_ALIGN_UP((uintptr_t)(p), (n)))
#define QEMU_PTR_IS_ALIGNED(p, n) QEMU_IS_ALIGNED((uintptr_t)(p), (n))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_UP(n, d) QEMU_ALIGN_UP(n, d)

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)
#define TiB (INT64_C(1) << 40)

#define BITS_PER_BYTE 8
#define BITS_PER_LONG (sizeof(unsigned long) * BITS_PER_BYTE)

static inline bool is_power_of_2(uint64_t value)
{
    return value && !(value & (value - 1));
}

/* Round up to the next power of two (value must be <= 2^63). */
static inline uint64_t pow2ceil(uint64_t value)
{
    int n = value <= 1 ? 0 : 64 - __builtin_clzll(value - 1);
    return UINT64_C(1) << n;
}

static inline int ctz64(uint64_t val)
{
    return val ? __builtin_ctzll(val) : 64;
}

static inline int clz64(uint64_t val)
{
    return val ? __builtin_clzll(val) : 64;
}

/* Sanitizer support, used by the coroutine backend. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONFIG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CONFIG_ASAN)
#define CONFIG_ASAN 1
#endif

#endif /* QEMU_OSDEP_H */
