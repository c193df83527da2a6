/*
 * HBitmap: a hierarchical bitmap with fast iteration over set bits.
 *
 * An HBitmap tracks @size items, one bit per 2^granularity items.  Like
 * QEMU, users make items bytes of the disk and the granularity log2 of the
 * tracking unit: a dirty bitmap with 64 KiB granularity on a 1 TiB disk is
 * hbitmap_alloc(1 TiB, 16) and uses 2^24 bits, about 2 MiB.
 * Setting or resetting any item of a granule affects the whole granule:
 * hbitmap_get() of every item in a set granule is true.  The last granule
 * may be partial; it still counts only the items that exist
 * (hbitmap_count()).
 *
 * The structure and its costs are described at the top of util/hbitmap.c.
 *
 * Offsets and counts are in items.  Functions that return an item or -1
 * take int64_t like QEMU's; the size of a bitmap is at most INT64_MAX items
 * and at most 2^HBITMAP_LOG_MAX_SIZE bits.
 *
 * Not thread-safe: like the rest of the block layer, an HBitmap belongs to
 * one AioContext's thread.
 */
#ifndef QEMU_HBITMAP_H
#define QEMU_HBITMAP_H

#include "qemu/osdep.h"
#include "qapi/error.h"

/* Each level is a 64-ary tree layer: one bit per 64-bit word below. */
#define HBITMAP_BITS_PER_LEVEL  6
/* log2 of the largest number of bits (granules) in an HBitmap. */
#define HBITMAP_LOG_MAX_SIZE    41
/*
 * Levels needed so that level 0 is a single word with its top bit free for
 * the iteration sentinel: 2^41 bits need 2^35, 2^29, ..., 2^5 words on
 * levels 6..1, and 32 bits in the level-0 word.
 */
#define HBITMAP_LEVELS \
    (HBITMAP_LOG_MAX_SIZE / HBITMAP_BITS_PER_LEVEL + 1)

typedef struct HBitmap HBitmap;

/*
 * Iterator over set granules.  Plain data: may live on the stack, needs no
 * cleanup.  It remains valid (returns each granule at most once, in
 * increasing order, never one that is clear when returned) while bits are
 * reset anywhere in the bitmap; bits set after hbitmap_iter_init() may or
 * may not be returned.  It does not survive hbitmap_truncate(),
 * hbitmap_deserialize_*() or hbitmap_free() of its bitmap.
 */
typedef struct HBitmapIter {
    const HBitmap *hb;
    int granularity;
    /* Index of the current word in the last level. */
    uint64_t pos;
    /* Per level: bits of the current word not yet visited. */
    uint64_t cur[HBITMAP_LEVELS];
} HBitmapIter;

/*
 * Allocate an empty bitmap of @size items, one bit per 2^@granularity
 * items (0 <= granularity <= 63).  Aborts if the bitmap would have more
 * than 2^HBITMAP_LOG_MAX_SIZE bits or @size exceeds INT64_MAX.
 * A size of 0 is allowed: such a bitmap is always empty.
 */
HBitmap *hbitmap_alloc(uint64_t size, int granularity);
void hbitmap_free(HBitmap *hb);
/* A new bitmap with the same size, granularity and contents as @src. */
HBitmap *hbitmap_copy(const HBitmap *src);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HBitmap, hbitmap_free)

/*
 * Change the size to @size items (same limits as hbitmap_alloc).  Growing
 * adds clear granules; shrinking drops the granules past the new end, so
 * growing again does not bring them back.  A granule that becomes (or
 * stops being) the partial last one keeps its bit.
 */
void hbitmap_truncate(HBitmap *hb, uint64_t size);

/* Number of items and log2 of items per bit. */
uint64_t hbitmap_size(const HBitmap *hb);
int hbitmap_granularity(const HBitmap *hb);

/*
 * Number of items in set granules, O(1).  A set partial last granule counts
 * only its existing items, so the result never exceeds hbitmap_size().
 */
uint64_t hbitmap_count(const HBitmap *hb);
bool hbitmap_empty(const HBitmap *hb);

/* Bytes of memory the bitmap uses: its struct plus all level arrays. */
size_t hbitmap_memory_usage(const HBitmap *hb);

/*
 * Mark items [start, start + count) (and so every granule they touch) as
 * set.  The range must lie within the last granule's end.
 */
void hbitmap_set(HBitmap *hb, uint64_t start, uint64_t count);

/*
 * Clear items [start, start + count).  Because a granule is all-or-nothing,
 * @start must be aligned to the granularity, and so must @count unless the
 * range reaches the end of the bitmap (asserted).
 */
void hbitmap_reset(HBitmap *hb, uint64_t start, uint64_t count);
void hbitmap_reset_all(HBitmap *hb);

/* Whether @item's granule is set (@item < hbitmap_size()). */
bool hbitmap_get(const HBitmap *hb, uint64_t item);

/*
 * Iterate over set granules starting from the one containing @first.
 * Any @first is accepted; past the end the iterator is simply exhausted.
 */
void hbitmap_iter_init(HBitmapIter *hbi, const HBitmap *hb, uint64_t first);
/*
 * First item of the next set granule (so possibly below @first for the
 * first result), or -1 when there is none left.
 */
int64_t hbitmap_iter_next(HBitmapIter *hbi);

/*
 * First set item in [start, start + count), clipped to the bitmap size, or
 * -1.  Returns @start itself when @start's granule is set.
 */
int64_t hbitmap_next_dirty(const HBitmap *hb, int64_t start, int64_t count);
/* First clear item in [start, start + count) (clipped), or -1. */
int64_t hbitmap_next_zero(const HBitmap *hb, int64_t start, int64_t count);

/*
 * Find the first run of set items within [start, end) (end clipped to the
 * size): on success store its start and its length, at most
 * @max_dirty_count (> 0), and return true; return false if there is none.
 */
bool hbitmap_next_dirty_area(const HBitmap *hb, int64_t start, int64_t end,
                             int64_t max_dirty_count,
                             int64_t *dirty_start, int64_t *dirty_count);

/*
 * Whether item @start is set; *pnum receives the number of items from
 * @start (at most @count, > 0) that share that state.  The range must lie
 * within the bitmap.
 */
bool hbitmap_status(const HBitmap *hb, int64_t start, int64_t count,
                    int64_t *pnum);

/* Whether a and b have the same size in items and so can be merged. */
bool hbitmap_can_merge(const HBitmap *a, const HBitmap *b);
/*
 * result := a | b, item by item.  Any of the three may alias; they may have
 * different granularities (then each set run of a and b is set in result
 * at result's granularity).  Returns false, touching nothing, when the
 * sizes differ.
 */
bool hbitmap_merge(const HBitmap *a, const HBitmap *b, HBitmap *result);

/*
 * Serialization: the last level only, as little-endian 64-bit words in
 * which bit i of word j is granule j * 64 + i, i.e. items starting at
 * (j * 64 + i) << granularity.  Chunks start at a multiple of
 * hbitmap_serialization_align() items, and their length is a multiple of
 * it unless the chunk reaches the end of the bitmap.
 */
/* Whether the bitmap can be serialized (granularity < 58). */
bool hbitmap_is_serializable(const HBitmap *hb);
/* Items per serialized word: 64 << granularity. */
uint64_t hbitmap_serialization_align(const HBitmap *hb);
/* Bytes needed to serialize items [start, start + count). */
uint64_t hbitmap_serialization_size(const HBitmap *hb,
                                    uint64_t start, uint64_t count);
void hbitmap_serialize_part(const HBitmap *hb, uint8_t *buf,
                            uint64_t start, uint64_t count);
/*
 * Load a chunk (bits past the end of the bitmap in @buf are ignored), or
 * fill it with zeroes / ones.  The upper levels and the count are stale
 * until hbitmap_deserialize_finish() (or @finish = true on the last
 * chunk); only further deserialize calls are allowed until then.
 */
void hbitmap_deserialize_part(HBitmap *hb, const uint8_t *buf,
                              uint64_t start, uint64_t count, bool finish);
void hbitmap_deserialize_zeroes(HBitmap *hb, uint64_t start, uint64_t count,
                                bool finish);
void hbitmap_deserialize_ones(HBitmap *hb, uint64_t start, uint64_t count,
                              bool finish);
void hbitmap_deserialize_finish(HBitmap *hb);

/*
 * SHA-256 (lowercase hex, g_free it) of the whole serialized last level;
 * what QEMU's x-debug-block-dirty-bitmap-sha256 reports on a little-endian
 * 64-bit host.  Never fails; @errp is for interface compatibility.
 */
char *hbitmap_sha256(const HBitmap *hb, Error **errp);

#endif /* QEMU_HBITMAP_H */
