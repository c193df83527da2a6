/*
 * HBitmap: hierarchical bitmap.
 *
 * Design
 * ------
 * The bitmap proper is the LAST level, levels[HBITMAP_LEVELS - 1]: one bit
 * per granule (2^granularity items), packed into 64-bit words.  Above it
 * sit HBITMAP_LEVELS - 1 summary levels forming a 64-ary tree:
 *
 *     bit j of level i is set  <=>  word j of level i + 1 is non-zero
 *
 * So level i has ceil(words(i + 1) / 64) words, and level 0 is always one
 * word.  With at most 2^41 bits (HBITMAP_LOG_MAX_SIZE) the levels have at
 * most 2^35, 2^29, 2^23, 2^17, 2^11, 2^5 and 1 word, and the level-0 word
 * uses at most 32 bits.  Its most significant bit is a permanent SENTINEL:
 * an iterator climbing the tree in search of a non-zero word always finds
 * one at level 0 at the latest, so the climb needs no bounds check, and
 * finding only the sentinel there means the iteration is over.
 *
 * Invariants kept by every operation (except between deserialize_part and
 * deserialize_finish): the summary rule above; bits of the last level at or
 * past hb->size are zero; hb->count is the number of set bits of the last
 * level.
 *
 * Costs
 * -----
 * - get: O(1), one word of the last level.
 * - set/reset of a range: the words of the last level that the range
 *   touches are each updated once (whole words are simply overwritten, with
 *   a popcount to keep the count exact), and the range of words that
 *   changed between zero and non-zero is propagated one level up, where it
 *   is 64 times smaller.  Propagation stops as soon as no word changed
 *   state, so setting a bit next to a set bit is O(1); the worst case is
 *   O(words touched + HBITMAP_LEVELS), i.e. O(log64 n) per word touched.
 * - iteration: each hbitmap_iter_next() is O(1) within a word; moving to
 *   the next non-zero word climbs only as many levels as needed, so an
 *   empty region of 64^k granules is skipped in O(k) steps.  next_dirty
 *   and next_dirty_area build on this; next_zero scans last-level words.
 * - count: O(1) (kept incrementally).  merge: O(words) when granularities
 *   match, otherwise one set per dirty run of the sources.
 *
 * Memory
 * ------
 * size/2^granularity bits, rounded up to 64-bit words, for the last level,
 * plus about 1/63 of that for all summary levels together (each level is
 * 1/64 of the one below), plus a few words: a 1 TiB disk tracked in bytes at
 * 64 KiB granularity has 2^24 bits, i.e. 2 MiB + 33 KiB.
 *
 * The iterator snapshots, per level, the bits it has not visited yet and
 * ANDs them with the live bitmap whenever it reads them, so bits reset
 * behind or ahead of it are never reported (the backup job resets each
 * cluster it copies while walking the copy bitmap).
 */
#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/hbitmap.h"
#include "qemu/trace.h"

#define HB_WORD_BITS    64
#define HB_WORD_MASK    (HB_WORD_BITS - 1)
#define HB_LAST         (HBITMAP_LEVELS - 1)
#define HB_SENTINEL     (UINT64_C(1) << (HB_WORD_BITS - 1))
#define HB_MAX_BITS     (UINT64_C(1) << HBITMAP_LOG_MAX_SIZE)

QEMU_BUILD_BUG_ON(HB_WORD_BITS != 1 << HBITMAP_BITS_PER_LEVEL);
/* Level 0 must leave its top bit free for the sentinel. */
QEMU_BUILD_BUG_ON(HBITMAP_LOG_MAX_SIZE >
                  HBITMAP_BITS_PER_LEVEL * HBITMAP_LEVELS - 1);

struct HBitmap {
    uint64_t orig_size;     /* items */
    uint64_t size;          /* bits in the last level (granules) */
    uint64_t count;         /* set bits in the last level */
    int granularity;
    uint64_t sizes[HBITMAP_LEVELS];     /* words per level */
    uint64_t *levels[HBITMAP_LEVELS];
};

/* Granules needed for @items items. */
static uint64_t hb_bits_for(uint64_t items, int granularity)
{
    uint64_t bits = items >> granularity;

    if (items & ((UINT64_C(1) << granularity) - 1)) {
        bits++;
    }
    return bits;
}

static void hb_level_sizes(uint64_t bits, uint64_t sizes[HBITMAP_LEVELS])
{
    for (int i = HB_LAST; i >= 0; i--) {
        bits = MAX(DIV_ROUND_UP(bits, HB_WORD_BITS), 1);
        sizes[i] = bits;
    }
    assert(sizes[0] == 1);
}

/* Bits lo..hi (inclusive, 0 <= lo <= hi < 64) of a word. */
static inline uint64_t hb_mask(unsigned lo, unsigned hi)
{
    return (UINT64_MAX << lo) & (UINT64_MAX >> (HB_WORD_MASK - hi));
}

/* The bits of [first, last] (first <= last) in the word holding bit first */
static inline uint64_t hb_first_word_mask(uint64_t first, uint64_t last)
{
    bool one_word = first >> HBITMAP_BITS_PER_LEVEL ==
                    last >> HBITMAP_BITS_PER_LEVEL;

    return hb_mask(first & HB_WORD_MASK,
                   one_word ? last & HB_WORD_MASK : HB_WORD_MASK);
}

/*
 * Set bits [first, last] of level @lev and propagate upwards the words that
 * went from zero to non-zero.
 */
static void hb_set_bits(HBitmap *hb, int lev, uint64_t first, uint64_t last)
{
    for (;;) {
        uint64_t *words = hb->levels[lev];
        uint64_t pos = first >> HBITMAP_BITS_PER_LEVEL;
        uint64_t lastpos = last >> HBITMAP_BITS_PER_LEVEL;
        uint64_t added = 0;
        bool woke = false;
        uint64_t old, mask;

        mask = hb_first_word_mask(first, last);
        old = words[pos];
        words[pos] = old | mask;
        added += ctpop64(mask & ~old);
        woke |= !old;

        if (pos != lastpos) {
            for (uint64_t w = pos + 1; w < lastpos; w++) {
                old = words[w];
                words[w] = UINT64_MAX;
                added += HB_WORD_BITS - ctpop64(old);
                woke |= !old;
            }
            mask = hb_mask(0, last & HB_WORD_MASK);
            old = words[lastpos];
            words[lastpos] = old | mask;
            added += ctpop64(mask & ~old);
            woke |= !old;
        }

        if (lev == HB_LAST) {
            hb->count += added;
        }
        /* If no word was zero before, the parent bits are all set already. */
        if (!woke || lev == 0) {
            return;
        }
        lev--;
        first = pos;
        last = lastpos;
    }
}

/*
 * Clear bits [first, last] of level @lev and clear upwards the parent bits
 * of the words that became zero.
 */
static void hb_reset_bits(HBitmap *hb, int lev, uint64_t first, uint64_t last)
{
    for (;;) {
        uint64_t *words = hb->levels[lev];
        uint64_t pos = first >> HBITMAP_BITS_PER_LEVEL;
        uint64_t lastpos = last >> HBITMAP_BITS_PER_LEVEL;
        uint64_t removed = 0;
        bool emptied = false;
        uint64_t old, mask;

        mask = hb_first_word_mask(first, last);
        old = words[pos];
        words[pos] = old & ~mask;
        removed += ctpop64(old & mask);
        emptied |= old && !words[pos];

        if (pos != lastpos) {
            for (uint64_t w = pos + 1; w < lastpos; w++) {
                old = words[w];
                words[w] = 0;
                removed += ctpop64(old);
                emptied |= old != 0;
            }
            mask = hb_mask(0, last & HB_WORD_MASK);
            old = words[lastpos];
            words[lastpos] = old & ~mask;
            removed += ctpop64(old & mask);
            emptied |= old && !words[lastpos];
        }

        if (lev == HB_LAST) {
            assert(hb->count >= removed);
            hb->count -= removed;
        }
        if (!emptied || lev == 0) {
            return;
        }
        /*
         * Every word strictly inside [pos, lastpos] is zero now; the end
         * words only if they were wholly covered or became empty.  Some word
         * became empty, so the resulting range is not empty.
         */
        first = words[pos] ? pos + 1 : pos;
        last = words[lastpos] ? lastpos - 1 : lastpos;
        assert(first <= last);
        lev--;
    }
}

static uint64_t hb_count_last_level(const HBitmap *hb)
{
    const uint64_t *words = hb->levels[HB_LAST];
    uint64_t n = 0;

    for (uint64_t i = 0; i < hb->sizes[HB_LAST]; i++) {
        n += ctpop64(words[i]);
    }
    return n;
}

HBitmap *hbitmap_alloc(uint64_t size, int granularity)
{
    HBitmap *hb;

    assert(granularity >= 0 && granularity < HB_WORD_BITS);
    assert(size <= INT64_MAX);

    hb = g_new0(HBitmap, 1);
    hb->orig_size = size;
    hb->granularity = granularity;
    hb->size = hb_bits_for(size, granularity);
    assert(hb->size <= HB_MAX_BITS);
    hb_level_sizes(hb->size, hb->sizes);
    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        hb->levels[i] = g_new0(uint64_t, hb->sizes[i]);
    }
    hb->levels[0][0] = HB_SENTINEL;
    return hb;
}

void hbitmap_free(HBitmap *hb)
{
    if (!hb) {
        return;
    }
    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        g_free(hb->levels[i]);
    }
    g_free(hb);
}

HBitmap *hbitmap_copy(const HBitmap *src)
{
    HBitmap *hb = g_memdup2(src, sizeof(*src));

    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        hb->levels[i] = g_memdup2(src->levels[i],
                                  src->sizes[i] * sizeof(uint64_t));
    }
    return hb;
}

uint64_t hbitmap_size(const HBitmap *hb)
{
    return hb->orig_size;
}

int hbitmap_granularity(const HBitmap *hb)
{
    return hb->granularity;
}

uint64_t hbitmap_count(const HBitmap *hb)
{
    uint64_t items = hb->count << hb->granularity;
    uint64_t last = hb->size - 1;

    /* The partial last granule holds fewer than 2^granularity items. */
    if (hb->count && (hb->levels[HB_LAST][last >> HBITMAP_BITS_PER_LEVEL] &
                      (UINT64_C(1) << (last & HB_WORD_MASK)))) {
        items -= (hb->size << hb->granularity) - hb->orig_size;
    }
    return items;
}

bool hbitmap_empty(const HBitmap *hb)
{
    return hb->count == 0;
}

size_t hbitmap_memory_usage(const HBitmap *hb)
{
    size_t bytes = sizeof(*hb);

    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        bytes += hb->sizes[i] * sizeof(uint64_t);
    }
    return bytes;
}

void hbitmap_set(HBitmap *hb, uint64_t start, uint64_t count)
{
    uint64_t last;

    if (!count) {
        return;
    }
    last = start + count - 1;
    assert(last >= start);
    assert((last >> hb->granularity) < hb->size);
    trace(hbitmap_set, "hb %p items %" PRIu64 ",%" PRIu64 " bits %" PRIu64
          "..%" PRIu64, hb, start, count, start >> hb->granularity,
          last >> hb->granularity);
    hb_set_bits(hb, HB_LAST, start >> hb->granularity,
                last >> hb->granularity);
}

void hbitmap_reset(HBitmap *hb, uint64_t start, uint64_t count)
{
    uint64_t gran = UINT64_C(1) << hb->granularity;
    uint64_t last;

    if (!count) {
        return;
    }
    last = start + count - 1;
    assert(last >= start);
    assert(QEMU_IS_ALIGNED(start, gran));
    assert(QEMU_IS_ALIGNED(count, gran) || start + count == hb->orig_size);
    assert((last >> hb->granularity) < hb->size);
    trace(hbitmap_reset, "hb %p items %" PRIu64 ",%" PRIu64 " bits %" PRIu64
          "..%" PRIu64, hb, start, count, start >> hb->granularity,
          last >> hb->granularity);
    hb_reset_bits(hb, HB_LAST, start >> hb->granularity,
                  last >> hb->granularity);
}

void hbitmap_reset_all(HBitmap *hb)
{
    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        memset(hb->levels[i], 0, hb->sizes[i] * sizeof(uint64_t));
    }
    hb->levels[0][0] = HB_SENTINEL;
    hb->count = 0;
}

bool hbitmap_get(const HBitmap *hb, uint64_t item)
{
    uint64_t bit = item >> hb->granularity;

    assert(bit < hb->size);
    return (hb->levels[HB_LAST][bit >> HBITMAP_BITS_PER_LEVEL] >>
            (bit & HB_WORD_MASK)) & 1;
}

/* ---- iteration ---------------------------------------------------------- */

void hbitmap_iter_init(HBitmapIter *hbi, const HBitmap *hb, uint64_t first)
{
    uint64_t pos = first >> hb->granularity;

    hbi->hb = hb;
    hbi->granularity = hb->granularity;
    if (pos >= hb->size) {
        /* Nothing left but the sentinel: the first next() returns -1. */
        memset(hbi->cur, 0, sizeof(hbi->cur));
        hbi->cur[0] = HB_SENTINEL;
        hbi->pos = 0;
        return;
    }

    hbi->pos = pos >> HBITMAP_BITS_PER_LEVEL;
    for (int i = HB_LAST; i >= 0; i--) {
        unsigned bit = pos & HB_WORD_MASK;
        uint64_t cur;

        pos >>= HBITMAP_BITS_PER_LEVEL;
        /* Drop the bits before @first... */
        cur = hb->levels[i][pos] & (UINT64_MAX << bit);
        /*
         * ...and on summary levels the bit of the word we start in: that
         * word is what the level below is iterating already.
         */
        if (i != HB_LAST) {
            cur &= ~(UINT64_C(1) << bit);
        }
        hbi->cur[i] = cur;
    }
}

/*
 * The current last-level word is used up: find the next non-zero one by
 * climbing to the first level with unvisited set bits and descending along
 * the lowest of them.  Returns that word (and updates hbi->pos), or 0 at
 * the end.
 */
static uint64_t hb_iter_skip_words(HBitmapIter *hbi)
{
    const HBitmap *hb = hbi->hb;
    uint64_t pos = hbi->pos;
    uint64_t cur;
    int i = HB_LAST;

    /* Terminates: level 0 always has the sentinel in both words. */
    do {
        i--;
        pos >>= HBITMAP_BITS_PER_LEVEL;
        cur = hbi->cur[i] & hb->levels[i][pos];
    } while (!cur);

    if (i == 0 && cur == HB_SENTINEL) {
        return 0;
    }

    for (; i < HB_LAST; i++) {
        pos = (pos << HBITMAP_BITS_PER_LEVEL) + ctz64(cur);
        hbi->cur[i] = cur & (cur - 1);
        cur = hb->levels[i + 1][pos];
        /* The summary bit was set, so the word below is not empty. */
        assert(cur);
    }
    hbi->pos = pos;
    return cur;
}

int64_t hbitmap_iter_next(HBitmapIter *hbi)
{
    uint64_t cur = hbi->cur[HB_LAST] & hbi->hb->levels[HB_LAST][hbi->pos];
    uint64_t bit;

    if (!cur) {
        cur = hb_iter_skip_words(hbi);
        if (!cur) {
            return -1;
        }
    }
    hbi->cur[HB_LAST] = cur & (cur - 1);
    bit = (hbi->pos << HBITMAP_BITS_PER_LEVEL) + ctz64(cur);
    return (int64_t)(bit << hbi->granularity);
}

/* ---- searches ------------------------------------------------------------ */

int64_t hbitmap_next_dirty(const HBitmap *hb, int64_t start, int64_t count)
{
    HBitmapIter hbi;
    uint64_t end;
    int64_t dirty;

    assert(start >= 0 && count >= 0);
    if ((uint64_t)start >= hb->orig_size || !count) {
        return -1;
    }
    end = (uint64_t)count > hb->orig_size - start ? hb->orig_size
                                                   : (uint64_t)(start + count);

    hbitmap_iter_init(&hbi, hb, start);
    dirty = hbitmap_iter_next(&hbi);
    if (dirty < 0 || (uint64_t)dirty >= end) {
        return -1;
    }
    /* The granule of @start itself may be the dirty one. */
    return MAX(start, dirty);
}

int64_t hbitmap_next_zero(const HBitmap *hb, int64_t start, int64_t count)
{
    const uint64_t *words = hb->levels[HB_LAST];
    uint64_t end, first_bit, end_bit, pos, lastpos, cur, bit;
    int64_t item;

    assert(start >= 0 && count >= 0);
    if ((uint64_t)start >= hb->orig_size || !count) {
        return -1;
    }
    end = (uint64_t)count > hb->orig_size - start ? hb->orig_size
                                                   : (uint64_t)(start + count);
    first_bit = (uint64_t)start >> hb->granularity;
    end_bit = ((end - 1) >> hb->granularity) + 1;

    pos = first_bit >> HBITMAP_BITS_PER_LEVEL;
    lastpos = (end_bit - 1) >> HBITMAP_BITS_PER_LEVEL;
    /* Look for set bits in the complement, ignoring those before start. */
    cur = ~words[pos] & (UINT64_MAX << (first_bit & HB_WORD_MASK));
    while (!cur) {
        if (++pos > lastpos) {
            return -1;
        }
        cur = ~words[pos];
    }
    bit = (pos << HBITMAP_BITS_PER_LEVEL) + ctz64(cur);
    if (bit >= end_bit) {
        return -1;
    }
    item = (int64_t)(bit << hb->granularity);
    return MAX(start, item);
}

bool hbitmap_next_dirty_area(const HBitmap *hb, int64_t start, int64_t end,
                             int64_t max_dirty_count,
                             int64_t *dirty_start, int64_t *dirty_count)
{
    int64_t zero;

    assert(start >= 0 && end >= 0 && max_dirty_count > 0);
    end = MIN((uint64_t)end, hb->orig_size);
    if (start >= end) {
        return false;
    }
    start = hbitmap_next_dirty(hb, start, end - start);
    if (start < 0) {
        return false;
    }
    end = start + MIN(end - start, max_dirty_count);
    zero = hbitmap_next_zero(hb, start, end - start);
    if (zero >= 0) {
        end = zero;
    }
    *dirty_start = start;
    *dirty_count = end - start;
    return true;
}

bool hbitmap_status(const HBitmap *hb, int64_t start, int64_t count,
                    int64_t *pnum)
{
    int64_t dirty, zero;

    assert(start >= 0 && count > 0);
    assert((uint64_t)start + count <= hb->orig_size);

    dirty = hbitmap_next_dirty(hb, start, count);
    if (dirty < 0) {
        *pnum = count;
        return false;
    }
    if (dirty > start) {
        *pnum = dirty - start;
        return false;
    }
    zero = hbitmap_next_zero(hb, start, count);
    *pnum = zero < 0 ? count : zero - start;
    return true;
}

/* ---- resize and merge ---------------------------------------------------- */

void hbitmap_truncate(HBitmap *hb, uint64_t size)
{
    uint64_t bits, sizes[HBITMAP_LEVELS];

    assert(size <= INT64_MAX);
    bits = hb_bits_for(size, hb->granularity);
    assert(bits <= HB_MAX_BITS);
    trace(hbitmap_truncate, "hb %p size %" PRIu64 " -> %" PRIu64 " bits %"
          PRIu64 " -> %" PRIu64, hb, hb->orig_size, size, hb->size, bits);
    hb->orig_size = size;
    if (bits == hb->size) {
        return;
    }

    /*
     * Clear the granules that go away first, while the summary levels still
     * describe them, so the count and the summaries stay exact.
     */
    if (bits < hb->size) {
        hb_reset_bits(hb, HB_LAST, bits, hb->size - 1);
    }
    hb_level_sizes(bits, sizes);
    for (int i = 0; i < HBITMAP_LEVELS; i++) {
        uint64_t old = hb->sizes[i];

        if (sizes[i] == old) {
            continue;
        }
        hb->levels[i] = g_renew(uint64_t, hb->levels[i], sizes[i]);
        if (sizes[i] > old) {
            memset(&hb->levels[i][old], 0,
                   (sizes[i] - old) * sizeof(uint64_t));
        }
        hb->sizes[i] = sizes[i];
    }
    hb->size = bits;
}

bool hbitmap_can_merge(const HBitmap *a, const HBitmap *b)
{
    return a->orig_size == b->orig_size;
}

/* dst |= src for bitmaps of equal size and any granularities. */
static void hb_sparse_merge(HBitmap *dst, const HBitmap *src)
{
    int64_t pos = 0, start, count;

    while (hbitmap_next_dirty_area(src, pos, src->orig_size, INT64_MAX,
                                   &start, &count)) {
        hbitmap_set(dst, start, count);
        pos = start + count;
    }
}

bool hbitmap_merge(const HBitmap *a, const HBitmap *b, HBitmap *result)
{
    if (!hbitmap_can_merge(a, b) || !hbitmap_can_merge(a, result)) {
        return false;
    }

    if (a->granularity == b->granularity &&
        a->granularity == result->granularity) {
        /* Same geometry: OR every level, summaries included. */
        for (int i = 0; i < HBITMAP_LEVELS; i++) {
            for (uint64_t j = 0; j < a->sizes[i]; j++) {
                result->levels[i][j] = a->levels[i][j] | b->levels[i][j];
            }
        }
        result->count = hb_count_last_level(result);
        return true;
    }

    if (result != a && result != b) {
        hbitmap_reset_all(result);
    }
    if (result != a) {
        hb_sparse_merge(result, a);
    }
    if (result != b) {
        hb_sparse_merge(result, b);
    }
    return true;
}

/* ---- serialization ------------------------------------------------------- */

bool hbitmap_is_serializable(const HBitmap *hb)
{
    /* hbitmap_serialization_align() must fit in 64 bits. */
    return hb->granularity < HB_WORD_BITS - HBITMAP_BITS_PER_LEVEL;
}

uint64_t hbitmap_serialization_align(const HBitmap *hb)
{
    assert(hbitmap_is_serializable(hb));
    return (uint64_t)HB_WORD_BITS << hb->granularity;
}

/*
 * Words of the last level that hold items [start, start + count), which
 * must obey the chunk alignment rules.
 */
static void hb_serialization_chunk(const HBitmap *hb, uint64_t start,
                                   uint64_t count, uint64_t *first_word,
                                   uint64_t *nwords)
{
    uint64_t align = hbitmap_serialization_align(hb);
    uint64_t last = start + count - 1;
    uint64_t last_bit = last >> hb->granularity;

    assert(count && last >= start);
    assert(QEMU_IS_ALIGNED(start, align));
    assert(last_bit < hb->size);
    if (last_bit != hb->size - 1) {
        assert(QEMU_IS_ALIGNED(count, align));
    }
    *first_word = (start >> hb->granularity) >> HBITMAP_BITS_PER_LEVEL;
    *nwords = (last_bit >> HBITMAP_BITS_PER_LEVEL) - *first_word + 1;
}

/* Keep bits past the end of the bitmap clear after a raw load. */
static void hb_clear_tail(HBitmap *hb)
{
    unsigned used = hb->size & HB_WORD_MASK;

    if (used) {
        hb->levels[HB_LAST][hb->sizes[HB_LAST] - 1] &= hb_mask(0, used - 1);
    }
}

uint64_t hbitmap_serialization_size(const HBitmap *hb,
                                    uint64_t start, uint64_t count)
{
    uint64_t first, n;

    if (!count) {
        return 0;
    }
    hb_serialization_chunk(hb, start, count, &first, &n);
    return n * sizeof(uint64_t);
}

void hbitmap_serialize_part(const HBitmap *hb, uint8_t *buf,
                            uint64_t start, uint64_t count)
{
    uint64_t first, n;

    if (!count) {
        return;
    }
    hb_serialization_chunk(hb, start, count, &first, &n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t le = GUINT64_TO_LE(hb->levels[HB_LAST][first + i]);

        memcpy(buf + i * sizeof(le), &le, sizeof(le));
    }
}

void hbitmap_deserialize_part(HBitmap *hb, const uint8_t *buf,
                              uint64_t start, uint64_t count, bool finish)
{
    uint64_t first, n;

    if (!count) {
        return;
    }
    hb_serialization_chunk(hb, start, count, &first, &n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t le;

        memcpy(&le, buf + i * sizeof(le), sizeof(le));
        hb->levels[HB_LAST][first + i] = GUINT64_FROM_LE(le);
    }
    hb_clear_tail(hb);
    if (finish) {
        hbitmap_deserialize_finish(hb);
    }
}

static void hb_deserialize_fill(HBitmap *hb, uint64_t start, uint64_t count,
                                bool finish, int byte)
{
    uint64_t first, n;

    if (!count) {
        return;
    }
    hb_serialization_chunk(hb, start, count, &first, &n);
    memset(&hb->levels[HB_LAST][first], byte, n * sizeof(uint64_t));
    hb_clear_tail(hb);
    if (finish) {
        hbitmap_deserialize_finish(hb);
    }
}

void hbitmap_deserialize_zeroes(HBitmap *hb, uint64_t start, uint64_t count,
                                bool finish)
{
    hb_deserialize_fill(hb, start, count, finish, 0);
}

void hbitmap_deserialize_ones(HBitmap *hb, uint64_t start, uint64_t count,
                              bool finish)
{
    hb_deserialize_fill(hb, start, count, finish, 0xff);
}

void hbitmap_deserialize_finish(HBitmap *hb)
{
    /* Rebuild every summary level from the one below, bottom up. */
    for (int lev = HB_LAST - 1; lev >= 0; lev--) {
        uint64_t *up = hb->levels[lev];
        const uint64_t *down = hb->levels[lev + 1];

        memset(up, 0, hb->sizes[lev] * sizeof(uint64_t));
        for (uint64_t j = 0; j < hb->sizes[lev + 1]; j++) {
            if (down[j]) {
                up[j >> HBITMAP_BITS_PER_LEVEL] |=
                    UINT64_C(1) << (j & HB_WORD_MASK);
            }
        }
    }
    hb->levels[0][0] |= HB_SENTINEL;
    hb->count = hb_count_last_level(hb);
}

char *hbitmap_sha256(const HBitmap *hb, Error **errp)
{
    uint64_t n = hb->sizes[HB_LAST];
    g_autofree uint8_t *buf = g_new(uint8_t, n * sizeof(uint64_t));

    for (uint64_t i = 0; i < n; i++) {
        uint64_t le = GUINT64_TO_LE(hb->levels[HB_LAST][i]);

        memcpy(buf + i * sizeof(le), &le, sizeof(le));
    }
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf,
                                       n * sizeof(uint64_t));
}
