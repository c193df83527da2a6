/*
 * Flat bitmap helpers: word-at-a-time searches and range updates.
 * See include/qemu/bitops.h for the layout.
 */
#include "qemu/osdep.h"
#include "qemu/bitops.h"

unsigned long find_next_bit(const unsigned long *addr, unsigned long size,
                            unsigned long offset)
{
    unsigned long idx, tmp;

    if (offset >= size) {
        return size;
    }
    idx = BIT_WORD(offset);
    tmp = addr[idx] & BITMAP_FIRST_WORD_MASK(offset);
    while (!tmp) {
        idx++;
        if (idx * BITS_PER_LONG >= size) {
            return size;
        }
        tmp = addr[idx];
    }
    return MIN(idx * BITS_PER_LONG + ctzl(tmp), size);
}

unsigned long find_next_zero_bit(const unsigned long *addr,
                                 unsigned long size, unsigned long offset)
{
    unsigned long idx, tmp;

    if (offset >= size) {
        return size;
    }
    idx = BIT_WORD(offset);
    tmp = ~addr[idx] & BITMAP_FIRST_WORD_MASK(offset);
    while (!tmp) {
        idx++;
        if (idx * BITS_PER_LONG >= size) {
            return size;
        }
        tmp = ~addr[idx];
    }
    return MIN(idx * BITS_PER_LONG + ctzl(tmp), size);
}

unsigned long find_last_bit(const unsigned long *addr, unsigned long size)
{
    unsigned long idx;

    if (!size) {
        return size;
    }
    idx = BIT_WORD(size - 1);
    for (;;) {
        unsigned long tmp = addr[idx];

        if (idx == BIT_WORD(size - 1)) {
            tmp &= BITMAP_LAST_WORD_MASK(size);
        }
        if (tmp) {
            return idx * BITS_PER_LONG + BITS_PER_LONG - 1 - clzl(tmp);
        }
        if (idx == 0) {
            return size;
        }
        idx--;
    }
}

/* Apply @set (true) or clear to bits [start, start + nr). */
static void bitmap_update(unsigned long *map, long start, long nr, bool set)
{
    unsigned long *p;
    unsigned long mask;
    long end;

    assert(start >= 0 && nr >= 0);
    if (!nr) {
        return;
    }
    end = start + nr;
    p = map + BIT_WORD(start);
    mask = BITMAP_FIRST_WORD_MASK(start);
    if (BIT_WORD(start) == BIT_WORD(end - 1)) {
        mask &= BITMAP_LAST_WORD_MASK(end);
        *p = set ? *p | mask : *p & ~mask;
        return;
    }
    *p = set ? *p | mask : *p & ~mask;
    p++;
    /* Whole words in the middle. */
    for (long w = BIT_WORD(start) + 1; w < (long)BIT_WORD(end - 1); w++) {
        *p++ = set ? ~0UL : 0;
    }
    mask = BITMAP_LAST_WORD_MASK(end);
    *p = set ? *p | mask : *p & ~mask;
}

void bitmap_set(unsigned long *map, long start, long nr)
{
    bitmap_update(map, start, nr, true);
}

void bitmap_clear(unsigned long *map, long start, long nr)
{
    bitmap_update(map, start, nr, false);
}

long bitmap_count_one(const unsigned long *map, long nbits)
{
    long full = nbits / BITS_PER_LONG;
    long count = 0;

    for (long i = 0; i < full; i++) {
        count += ctpopl(map[i]);
    }
    if (nbits % BITS_PER_LONG) {
        count += ctpopl(map[full] & BITMAP_LAST_WORD_MASK(nbits));
    }
    return count;
}

bool bitmap_empty(const unsigned long *map, long nbits)
{
    return find_first_bit(map, nbits) == (unsigned long)nbits;
}

bool bitmap_full(const unsigned long *map, long nbits)
{
    return find_first_zero_bit(map, nbits) == (unsigned long)nbits;
}
