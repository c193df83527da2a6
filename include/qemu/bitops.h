/*
 * Bit operations on words and on flat bitmaps (arrays of unsigned long).
 *
 * Bit @nr of a flat bitmap lives in word BIT_WORD(nr) at position
 * nr % BITS_PER_LONG, the same layout the Linux kernel and QEMU use.  The
 * single-bit operations here are not atomic: blockd's block layer runs on
 * one thread (see DESIGN.md), so plain read-modify-write is enough.
 *
 * The find_* and bitmap_* range helpers live in util/bitops.c; they work a
 * word at a time, never a bit at a time.
 */
#ifndef QEMU_BITOPS_H
#define QEMU_BITOPS_H

#include "qemu/osdep.h"

#define BIT(nr)                 (1UL << (nr))
#define BIT_ULL(nr)             (1ULL << (nr))
#define BIT_MASK(nr)            (1UL << ((nr) % BITS_PER_LONG))
#define BIT_WORD(nr)            ((nr) / BITS_PER_LONG)
#define BITS_TO_LONGS(nr)       DIV_ROUND_UP(nr, BITS_PER_LONG)

/* A 64-bit mask of @length ones starting at bit @shift (length 1..64). */
#define MAKE_64BIT_MASK(shift, length) \
    (((~0ULL) >> (64 - (length))) << (shift))

/* Mask of the bits of the first / last word touched by a range. */
#define BITMAP_FIRST_WORD_MASK(start) (~0UL << ((start) & (BITS_PER_LONG - 1)))
#define BITMAP_LAST_WORD_MASK(nbits)  (~0UL >> (-(nbits) & (BITS_PER_LONG - 1)))

/* Count trailing/leading zeros and set bits; 0 gives the word width. */
static inline int ctz32(uint32_t val)
{
    return val ? __builtin_ctz(val) : 32;
}

static inline int clz32(uint32_t val)
{
    return val ? __builtin_clz(val) : 32;
}

static inline int ctzl(unsigned long val)
{
    return val ? __builtin_ctzl(val) : (int)BITS_PER_LONG;
}

static inline int clzl(unsigned long val)
{
    return val ? __builtin_clzl(val) : (int)BITS_PER_LONG;
}

/* Count trailing ones. */
static inline int ctol(unsigned long val)
{
    return ctzl(~val);
}

static inline int ctpop32(uint32_t val)
{
    return __builtin_popcount(val);
}

static inline int ctpop64(uint64_t val)
{
    return __builtin_popcountll(val);
}

static inline int ctpopl(unsigned long val)
{
    return __builtin_popcountl(val);
}

static inline void set_bit(long nr, unsigned long *addr)
{
    addr[BIT_WORD(nr)] |= BIT_MASK(nr);
}

static inline void clear_bit(long nr, unsigned long *addr)
{
    addr[BIT_WORD(nr)] &= ~BIT_MASK(nr);
}

static inline void change_bit(long nr, unsigned long *addr)
{
    addr[BIT_WORD(nr)] ^= BIT_MASK(nr);
}

static inline bool test_bit(long nr, const unsigned long *addr)
{
    return (addr[BIT_WORD(nr)] & BIT_MASK(nr)) != 0;
}

/* Set/clear bit @nr and return its previous value. */
static inline bool test_and_set_bit(long nr, unsigned long *addr)
{
    unsigned long *p = addr + BIT_WORD(nr);
    unsigned long old = *p;

    *p = old | BIT_MASK(nr);
    return (old & BIT_MASK(nr)) != 0;
}

static inline bool test_and_clear_bit(long nr, unsigned long *addr)
{
    unsigned long *p = addr + BIT_WORD(nr);
    unsigned long old = *p;

    *p = old & ~BIT_MASK(nr);
    return (old & BIT_MASK(nr)) != 0;
}

/*
 * Index of the first set (find_next_bit) or clear (find_next_zero_bit) bit
 * at or after @offset and below @size; @size if there is none.
 */
unsigned long find_next_bit(const unsigned long *addr, unsigned long size,
                            unsigned long offset);
unsigned long find_next_zero_bit(const unsigned long *addr,
                                 unsigned long size, unsigned long offset);
/* Index of the last set bit below @size; @size if none is set. */
unsigned long find_last_bit(const unsigned long *addr, unsigned long size);

static inline unsigned long find_first_bit(const unsigned long *addr,
                                           unsigned long size)
{
    return find_next_bit(addr, size, 0);
}

static inline unsigned long find_first_zero_bit(const unsigned long *addr,
                                                unsigned long size)
{
    return find_next_zero_bit(addr, size, 0);
}

/* Flat bitmaps of @nbits bits. */
static inline unsigned long *bitmap_new(long nbits)
{
    return g_new0(unsigned long, MAX(BITS_TO_LONGS(nbits), 1));
}

/* Set/clear bits [start, start + nr). */
void bitmap_set(unsigned long *map, long start, long nr);
void bitmap_clear(unsigned long *map, long start, long nr);
/* Number of set bits among the first @nbits. */
long bitmap_count_one(const unsigned long *map, long nbits);
/* Whether none / all of the first @nbits bits are set. */
bool bitmap_empty(const unsigned long *map, long nbits);
bool bitmap_full(const unsigned long *map, long nbits);

/* Bit-field extraction and deposit (start + length <= width). */
static inline uint32_t extract32(uint32_t value, int start, int length)
{
    assert(start >= 0 && length > 0 && length <= 32 - start);
    return (value >> start) & (~0U >> (32 - length));
}

static inline uint64_t extract64(uint64_t value, int start, int length)
{
    assert(start >= 0 && length > 0 && length <= 64 - start);
    return (value >> start) & (~0ULL >> (64 - length));
}

static inline uint32_t deposit32(uint32_t value, int start, int length,
                                 uint32_t fieldval)
{
    uint32_t mask;

    assert(start >= 0 && length > 0 && length <= 32 - start);
    mask = (~0U >> (32 - length)) << start;
    return (value & ~mask) | ((fieldval << start) & mask);
}

static inline uint64_t deposit64(uint64_t value, int start, int length,
                                 uint64_t fieldval)
{
    uint64_t mask;

    assert(start >= 0 && length > 0 && length <= 64 - start);
    mask = (~0ULL >> (64 - length)) << start;
    return (value & ~mask) | ((fieldval << start) & mask);
}

#endif /* QEMU_BITOPS_H */
