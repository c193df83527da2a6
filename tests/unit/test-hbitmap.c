/*
 * Unit tests for HBitmap (util/hbitmap.c) and the flat bitmap helpers
 * (util/bitops.c).
 *
 * The core of the suite compares HBitmap with a naive oracle: one byte per
 * granule, every query answered by a linear scan.  Randomized operation
 * sequences (set, reset, reset_all, truncate, merge, copy, serialization
 * round trips) run over many sizes and granularities, and after every step
 * every observable result (get, count, empty, iteration, next_dirty,
 * next_zero, next_dirty_area, status) is compared with the oracle's.
 * Focused tests cover the cases worth spelling out: level boundaries,
 * resetting while iterating, the partial last granule, the serialized
 * layout, assertions, and the memory footprint.
 */
#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/hbitmap.h"
#include "qemu/trace.h"
#include <check.h>
#include <signal.h>

/*
 * Check's ck_assert_* record a mark point (a write to a pipe) on every
 * success, which is far too slow for the millions of comparisons of the
 * randomized tests; this only costs a compare.
 */
#define CHECK_EQ(got, want, what)                                          \
    do {                                                                   \
        int64_t got_ = (int64_t)(got), want_ = (int64_t)(want);            \
        if (got_ != want_) {                                               \
            ck_abort_msg("%s: got %" PRId64 ", oracle says %" PRId64       \
                         " (%s)", what, got_, want_, ctx_desc);            \
        }                                                                  \
    } while (0)

/* Describes the current randomized step in failure messages. */
static char ctx_desc[256];

/* ---- the oracle ---------------------------------------------------------- */

typedef struct Oracle {
    uint64_t size;      /* items */
    int gran;
    uint64_t nbits;     /* granules */
    uint8_t *bits;      /* 0 or 1 per granule */
} Oracle;

static uint64_t or_nbits(uint64_t size, int gran)
{
    return (size + (UINT64_C(1) << gran) - 1) >> gran;
}

static void or_init(Oracle *o, uint64_t size, int gran)
{
    o->size = size;
    o->gran = gran;
    o->nbits = or_nbits(size, gran);
    o->bits = g_malloc0(o->nbits + 1);
}

static void or_free(Oracle *o)
{
    g_free(o->bits);
    o->bits = NULL;
}

/* Items [start, end) of granule b. */
static uint64_t or_gstart(const Oracle *o, uint64_t b)
{
    return b << o->gran;
}

static uint64_t or_gend(const Oracle *o, uint64_t b)
{
    return MIN(o->size, (b + 1) << o->gran);
}

static bool or_get(const Oracle *o, uint64_t item)
{
    g_assert(item < o->size);
    return o->bits[item >> o->gran];
}

/* Granules touched by items [start, start + count) get value v. */
static void or_fill(Oracle *o, uint64_t start, uint64_t count, uint8_t v)
{
    uint64_t b0, b1;

    if (!count) {
        return;
    }
    b0 = start >> o->gran;
    b1 = (start + count - 1) >> o->gran;
    g_assert(b1 < o->nbits);
    memset(o->bits + b0, v, b1 - b0 + 1);
}

/* First granule >= b whose value is v, or nbits. */
static uint64_t or_find(const Oracle *o, uint64_t b, uint8_t v)
{
    const uint8_t *p;

    if (b >= o->nbits) {
        return o->nbits;
    }
    p = memchr(o->bits + b, v, o->nbits - b);
    return p ? (uint64_t)(p - o->bits) : o->nbits;
}

/* Items in set granules: the sum of the lengths of the runs of ones. */
static uint64_t or_count(const Oracle *o)
{
    uint64_t n = 0, b = 0;

    for (;;) {
        uint64_t b0 = or_find(o, b, 1), b1;

        if (b0 == o->nbits) {
            return n;
        }
        b1 = or_find(o, b0, 0);
        n += or_gend(o, b1 - 1) - or_gstart(o, b0);
        b = b1;
    }
}

/* End of the clipped query range [start, start + count). */
static uint64_t or_end(const Oracle *o, uint64_t start, uint64_t count)
{
    return count > o->size - start ? o->size : start + count;
}

/* First item in [start, start + count) whose value is v, or -1. */
static int64_t or_next(const Oracle *o, uint64_t start, uint64_t count,
                       uint8_t v)
{
    uint64_t end, b, item;

    if (start >= o->size || !count) {
        return -1;
    }
    end = or_end(o, start, count);
    b = or_find(o, start >> o->gran, v);
    if (b == o->nbits) {
        return -1;
    }
    item = MAX(start, or_gstart(o, b));
    return item < end ? (int64_t)item : -1;
}

/* Length of the run of items equal to get(start) from start, up to lim. */
static uint64_t or_run(const Oracle *o, uint64_t start, uint64_t lim)
{
    uint8_t v = or_get(o, start);
    uint64_t b = or_find(o, start >> o->gran, !v);
    uint64_t end = b == o->nbits ? o->size : or_gstart(o, b);

    return MIN(end, lim) - start;
}

static bool or_next_dirty_area(const Oracle *o, uint64_t start, uint64_t end,
                               uint64_t max, int64_t *ds, int64_t *dc)
{
    int64_t d;
    uint64_t lim;

    end = MIN(end, o->size);
    if (start >= end) {
        return false;
    }
    d = or_next(o, start, end - start, 1);
    if (d < 0) {
        return false;
    }
    lim = d + MIN(end - d, max);
    *ds = d;
    *dc = or_run(o, d, lim);
    return true;
}

/* r |= src, item by item, at r's granularity. */
static void or_merge_into(Oracle *r, const Oracle *src)
{
    g_assert(r->size == src->size);
    for (uint64_t b = 0; b < src->nbits; b++) {
        if (src->bits[b]) {
            uint64_t s = or_gstart(src, b), e = or_gend(src, b);

            or_fill(r, s, e - s, 1);
        }
    }
}

static void or_truncate(Oracle *o, uint64_t size)
{
    uint64_t nbits = or_nbits(size, o->gran);

    o->bits = g_realloc(o->bits, nbits + 1);
    if (nbits > o->nbits) {
        memset(o->bits + o->nbits, 0, nbits - o->nbits);
    }
    o->size = size;
    o->nbits = nbits;
}

/* ---- random choices ------------------------------------------------------ */

static uint64_t rand64(GRand *r)
{
    return ((uint64_t)g_rand_int(r) << 32) | g_rand_int(r);
}

/* A number in [0, n), n > 0. */
static uint64_t rand_below(GRand *r, uint64_t n)
{
    return rand64(r) % n;
}

/* An item of a non-empty oracle, often near a 64^k granule boundary. */
static uint64_t pick_item(GRand *r, const Oracle *o)
{
    uint64_t item;

    switch (g_rand_int_range(r, 0, 5)) {
    case 0: {
        int k = g_rand_int_range(r, 1, 5);
        uint64_t unit = UINT64_C(1) << (6 * k + o->gran);
        uint64_t base = rand_below(r, o->size / unit + 1) * unit;
        int64_t delta = g_rand_int_range(r, -2, 3) * ((int64_t)1 << o->gran) +
                        g_rand_int_range(r, -1, 2);

        item = base + delta;
        if ((int64_t)item < 0) {
            item = 0;
        }
        break;
    }
    case 1:
        item = o->size - 1 - rand_below(r, MIN(o->size, 3u << o->gran));
        break;
    case 2:
        item = rand_below(r, MIN(o->size, 3u << o->gran));
        break;
    default:
        item = rand_below(r, o->size);
        break;
    }
    return MIN(item, o->size - 1);
}

/* A count in [1, max] (max >= 1), log-uniformly spread. */
static uint64_t pick_count(GRand *r, uint64_t max)
{
    int b = g_rand_int_range(r, 0, 65 - clz64(max));
    uint64_t lim = b >= 64 ? max : MIN(max, UINT64_C(1) << b);

    return 1 + rand_below(r, lim);
}

/* ---- comparing an HBitmap with its oracle -------------------------------- */

/* Compare up to max results of an iterator started at first. */
static void check_iter(const HBitmap *hb, const Oracle *o, uint64_t first,
                       uint64_t max)
{
    HBitmapIter hbi;
    uint64_t b = first >> o->gran;

    hbitmap_iter_init(&hbi, hb, first);
    for (uint64_t n = 0; n < max; n++) {
        int64_t got = hbitmap_iter_next(&hbi);

        b = or_find(o, b, 1);
        if (b == o->nbits) {
            CHECK_EQ(got, -1, "iter end");
            /* And it stays exhausted. */
            CHECK_EQ(hbitmap_iter_next(&hbi), -1, "iter after end");
            return;
        }
        CHECK_EQ(got, or_gstart(o, b), "iter next");
        b++;
    }
}

static void check_queries_at(const HBitmap *hb, const Oracle *o, GRand *r,
                             uint64_t item)
{
    uint64_t rem = o->size - item;
    uint64_t count = g_rand_int_range(r, 0, 8) == 0 ? INT64_MAX
                     : pick_count(r, rem + rem / 4 + 1);
    uint64_t end, max, scount;
    int64_t ds = -2, dc = -2, wds = -3, wdc = -3, pnum = -1;
    bool got, want;

    CHECK_EQ(hbitmap_get(hb, item), or_get(o, item), "get");
    CHECK_EQ(hbitmap_next_dirty(hb, item, count), or_next(o, item, count, 1),
             "next_dirty");
    CHECK_EQ(hbitmap_next_zero(hb, item, count), or_next(o, item, count, 0),
             "next_zero");

    end = item + pick_count(r, rem + 2);
    max = g_rand_int_range(r, 0, 3) == 0 ? INT64_MAX
          : pick_count(r, o->size + 1);
    got = hbitmap_next_dirty_area(hb, item, end, max, &ds, &dc);
    want = or_next_dirty_area(o, item, end, max, &wds, &wdc);
    CHECK_EQ(got, want, "next_dirty_area found");
    if (want) {
        CHECK_EQ(ds, wds, "next_dirty_area start");
        CHECK_EQ(dc, wdc, "next_dirty_area count");
    }

    scount = pick_count(r, rem);
    got = hbitmap_status(hb, item, scount, &pnum);
    CHECK_EQ(got, or_get(o, item), "status dirty");
    CHECK_EQ(pnum, or_run(o, item, item + scount), "status pnum");

    check_iter(hb, o, item, 4);
}

/* Compare everything observable; @full adds a complete iteration. */
static void check_state(const HBitmap *hb, const Oracle *o, GRand *r,
                        bool full)
{
    uint64_t count = or_count(o);

    CHECK_EQ(hbitmap_size(hb), o->size, "size");
    CHECK_EQ(hbitmap_granularity(hb), o->gran, "granularity");
    CHECK_EQ(hbitmap_count(hb), count, "count");
    CHECK_EQ(hbitmap_empty(hb), count == 0, "empty");
    if (full) {
        check_iter(hb, o, 0, UINT64_MAX);
    }
    if (o->size == 0) {
        CHECK_EQ(hbitmap_next_dirty(hb, 0, 1), -1, "next_dirty size 0");
        CHECK_EQ(hbitmap_next_zero(hb, 0, INT64_MAX), -1, "next_zero size 0");
        check_iter(hb, o, 0, 2);
        return;
    }
    /* Past the end. */
    CHECK_EQ(hbitmap_next_dirty(hb, o->size, 10), -1, "next_dirty past end");
    CHECK_EQ(hbitmap_next_zero(hb, o->size, 10), -1, "next_zero past end");
    check_iter(hb, o, o->nbits << o->gran, 2);
    for (int i = 0; i < 12; i++) {
        check_queries_at(hb, o, r, pick_item(r, o));
    }
}

/* ---- randomized operation sequences -------------------------------------- */

typedef struct RandomConfig {
    uint64_t size;
    int gran;
    int steps;
    int full_every;     /* complete iteration every N steps */
    uint64_t max_size;  /* truncate stays within this */
} RandomConfig;

/* Fill a bitmap and its oracle with a few random ranges. */
static void random_fill(HBitmap *hb, Oracle *o, GRand *r, int ranges)
{
    for (int i = 0; i < ranges && o->size; i++) {
        uint64_t start = pick_item(r, o);
        uint64_t count = pick_count(r, o->size - start);

        hbitmap_set(hb, start, count);
        or_fill(o, start, count, 1);
    }
}

static void op_merge(HBitmap **phb, Oracle *o, GRand *r)
{
    HBitmap *hb = *phb;
    int g2 = MAX(o->gran - 2, 0) + g_rand_int_range(r, 0, 5);
    g_autoptr(HBitmap) other = hbitmap_alloc(o->size, g2);
    Oracle oo;
    int mode = g_rand_int_range(r, 0, 3);

    or_init(&oo, o->size, g2);
    random_fill(other, &oo, r, g_rand_int_range(r, 0, 4));
    check_state(other, &oo, r, true);

    if (mode == 0) {
        /* result aliases a */
        ck_assert(hbitmap_merge(hb, other, hb));
        or_merge_into(o, &oo);
    } else if (mode == 1) {
        /* result aliases b */
        ck_assert(hbitmap_merge(other, hb, hb));
        or_merge_into(o, &oo);
    } else {
        /* a separate result (stale contents), which then replaces hb */
        g_autoptr(HBitmap) res = hbitmap_alloc(o->size, o->gran);

        hbitmap_set(res, 0, o->size); /* must be overwritten */
        ck_assert(hbitmap_merge(hb, other, res));
        or_merge_into(o, &oo);
        check_state(other, &oo, r, true);   /* sources untouched */
        hbitmap_free(hb);
        *phb = g_steal_pointer(&res);
    }
    or_free(&oo);
}

/*
 * Serialize in random aligned chunks, check the layout against the oracle
 * bit by bit, deserialize into a fresh bitmap (all-zero and all-one chunks
 * through the fill helpers) which then replaces the original.
 */
static void op_serialize(HBitmap **phb, Oracle *o, GRand *r)
{
    HBitmap *hb = *phb;
    uint64_t align = hbitmap_serialization_align(hb);
    g_autoptr(HBitmap) copy = hbitmap_alloc(o->size, o->gran);
    g_autofree char *sum1 = NULL, *sum2 = NULL;
    uint64_t start = 0;

    ck_assert(hbitmap_is_serializable(hb));
    /* Garbage that the deserialized chunks must replace. */
    hbitmap_set(copy, 0, o->size);
    while (start < o->size) {
        uint64_t count = align * (1 + rand_below(r, 4));
        uint64_t len, word0;
        g_autofree uint8_t *buf = NULL;
        bool zero = true, ones = true, last;

        if (g_rand_int_range(r, 0, 3) == 0 || count > o->size - start) {
            count = o->size - start;
        }
        last = start + count == o->size;
        len = hbitmap_serialization_size(hb, start, count);
        CHECK_EQ(len, DIV_ROUND_UP(DIV_ROUND_UP(count, 1ULL << o->gran), 64)
                 * 8, "serialization_size");
        buf = g_malloc(len);
        hbitmap_serialize_part(hb, buf, start, count);

        word0 = (start >> o->gran) / 64;
        for (uint64_t j = 0; j < len / 8; j++) {
            uint64_t b0 = (word0 + j) * 64;
            uint64_t n = MIN(64, o->nbits - b0);
            const uint8_t *w = buf + j * 8;
            uint8_t w_or = 0, w_and = 0xff;

            for (int k = 0; k < 8; k++) {
                w_or |= w[k];
                w_and &= w[k];
            }
            /* Fast path for uniform words: the oracle agrees on all 64. */
            if (n == 64 && !w_or && !memchr(o->bits + b0, 1, 64)) {
                ones = false;
                continue;
            }
            if (n == 64 && w_and == 0xff && !memchr(o->bits + b0, 0, 64)) {
                zero = false;
                continue;
            }
            for (uint64_t i = 0; i < 64; i++) {
                bool bit = (w[i / 8] >> (i % 8)) & 1;

                CHECK_EQ(bit, i < n && o->bits[b0 + i], "serialized bit");
                if (i < n) {
                    zero &= !bit;
                    ones &= bit;
                }
            }
        }
        if (zero && g_rand_boolean(r)) {
            hbitmap_deserialize_zeroes(copy, start, count, last);
        } else if (ones && g_rand_boolean(r)) {
            hbitmap_deserialize_ones(copy, start, count, last);
        } else {
            hbitmap_deserialize_part(copy, buf, start, count, last);
        }
        start += count;
    }
    if (!o->size) {
        hbitmap_deserialize_finish(copy);
    }
    sum1 = hbitmap_sha256(hb, NULL);
    sum2 = hbitmap_sha256(copy, NULL);
    ck_assert_str_eq(sum1, sum2);
    hbitmap_free(hb);
    *phb = g_steal_pointer(&copy);
}

/*
 * Walk an iterator while resetting granules it returned, ranges ahead of
 * it, and setting granules behind it: it must still return exactly the
 * set granules ahead of its position, in order.
 */
static void op_walk(HBitmap *hb, Oracle *o, GRand *r)
{
    uint64_t first = pick_item(r, o);
    uint64_t b = first >> o->gran;
    HBitmapIter hbi;

    hbitmap_iter_init(&hbi, hb, first);
    for (int n = 0; n < 200; n++) {
        int64_t got = hbitmap_iter_next(&hbi);

        b = or_find(o, b, 1);
        if (b == o->nbits) {
            CHECK_EQ(got, -1, "walk end");
            return;
        }
        CHECK_EQ(got, or_gstart(o, b), "walk next");
        switch (g_rand_int_range(r, 0, 4)) {
        case 0: {
            /* the backup loop: done with this granule */
            uint64_t s = or_gstart(o, b);

            hbitmap_reset(hb, s, or_gend(o, b) - s);
            or_fill(o, s, or_gend(o, b) - s, 0);
            break;
        }
        case 1:
            if (b + 1 < o->nbits) {
                uint64_t nb = pick_count(r, o->nbits - b - 1);
                uint64_t s = or_gstart(o, b + 1);
                uint64_t e = or_gend(o, b + nb);

                hbitmap_reset(hb, s, e - s);
                or_fill(o, s, e - s, 0);
            }
            break;
        case 2: {
            uint64_t behind = rand_below(r, b + 1);

            hbitmap_set(hb, or_gstart(o, behind), 1);
            or_fill(o, or_gstart(o, behind), 1, 1);
            break;
        }
        default:
            break;
        }
        b++;
    }
}

static void run_random(const RandomConfig *cfg, uint32_t seed)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    HBitmap *hb = hbitmap_alloc(cfg->size, cfg->gran);
    Oracle o;

    or_init(&o, cfg->size, cfg->gran);
    check_state(hb, &o, r, true);
    for (int step = 0; step < cfg->steps; step++) {
        int op = g_rand_int_range(r, 0, 22);
        uint64_t start = 0, count = 0;

        if (o.size == 0 && (op < 10 || op >= 20)) {
            op = 12;    /* only truncate makes sense; grow it */
        }
        snprintf(ctx_desc, sizeof(ctx_desc),
                 "size %" PRIu64 " gran %d seed %u step %d op %d",
                 o.size, o.gran, seed, step, op);
        if (op < 5) {
            start = pick_item(r, &o);
            count = pick_count(r, o.size - start);
            hbitmap_set(hb, start, count);
            or_fill(&o, start, count, 1);
        } else if (op < 9) {
            /* reset whole granules; the last one may be partial */
            uint64_t b0 = pick_item(r, &o) >> o.gran;
            uint64_t nb = pick_count(r, o.nbits - b0);

            start = or_gstart(&o, b0);
            count = or_gend(&o, b0 + nb - 1) - start;
            hbitmap_reset(hb, start, count);
            or_fill(&o, start, count, 0);
        } else if (op == 9) {
            if (g_rand_int_range(r, 0, 4) == 0) {
                hbitmap_reset_all(hb);
                memset(o.bits, 0, o.nbits);
            } else {
                /* empty ranges are no-ops */
                hbitmap_set(hb, pick_item(r, &o), 0);
                hbitmap_reset(hb, 0, 0);
            }
        } else if (op < 13) {
            uint64_t size;

            switch (g_rand_int_range(r, 0, 4)) {
            case 0:
                size = rand_below(r, cfg->max_size + 1);
                break;
            case 1:
                size = o.size + rand_below(r, 3u << o.gran);
                break;
            case 2:
                size = o.size - rand_below(r, MIN(o.size, 3u << o.gran) + 1);
                break;
            default:
                size = o.size / 2 + rand_below(r, o.size + 1);
                break;
            }
            size = MIN(size, cfg->max_size);
            hbitmap_truncate(hb, size);
            or_truncate(&o, size);
        } else if (op < 15) {
            op_merge(&hb, &o, r);
        } else if (op < 17) {
            op_serialize(&hb, &o, r);
        } else if (op == 17) {
            HBitmap *copy = hbitmap_copy(hb);

            hbitmap_free(hb);
            hb = copy;
        } else if (op < 20) {
            /* several small sets: exercises the cheap propagation path */
            random_fill(hb, &o, r, 8);
        } else {
            op_walk(hb, &o, r);
        }
        check_state(hb, &o, r, step % cfg->full_every == 0);
    }
    check_state(hb, &o, r, true);
    hbitmap_free(hb);
    or_free(&o);
}

/*
 * Seeds are fixed so runs are reproducible; HBITMAP_TEST_SEED=N shifts
 * them all, to explore further (failure messages name the seed).
 */
static uint32_t seed_offset(void)
{
    const char *env = g_getenv("HBITMAP_TEST_SEED");

    return env ? (uint32_t)g_ascii_strtoull(env, NULL, 0) : 0;
}

static const RandomConfig small_configs[] = {
    { 0, 0, 40, 1, 300 },
    { 1, 0, 60, 1, 200 },
    { 63, 0, 80, 1, 200 },
    { 64, 0, 80, 1, 200 },
    { 65, 0, 80, 1, 200 },
    { 65, 1, 80, 1, 200 },
    { 100, 4, 80, 1, 400 },
    { 4097, 0, 80, 1, 9000 },
    { 4097, 2, 80, 1, 9000 },
    { 4097, 6, 80, 1, 9000 },
    { 64 * 64 * 64 + 1, 0, 60, 1, 600000 },
    { 64 * 64 * 64 + 1, 3, 60, 1, 600000 },
    { 1000003, 9, 60, 1, 3000000 },
    { 1000003, 16, 60, 1, 3000000 },
};

START_TEST(test_random_small)
{
    const RandomConfig *cfg = &small_configs[_i / 3];

    run_random(cfg, 0x5eed0000u + _i + seed_offset());
}
END_TEST

/*
 * Large sparse bitmaps: 1 TiB of bytes at 64 KiB granularity (2^24 bits)
 * and an odd size with a partial last granule.
 */
static const RandomConfig large_configs[] = {
    { UINT64_C(1) << 40, 16, 40, 10, (UINT64_C(1) << 40) + (1 << 20) },
    { (UINT64_C(1) << 40) - 12345, 16, 40, 10, UINT64_C(1) << 40 },
    { UINT64_C(1) << 34, 10, 40, 10, UINT64_C(1) << 35 },
};

START_TEST(test_random_large)
{
    run_random(&large_configs[_i], 0xb16b0000u + _i + seed_offset());
}
END_TEST

/* ---- focused tests ------------------------------------------------------- */

START_TEST(test_empty_and_size_zero)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(0, 0);
    HBitmapIter hbi;
    int64_t ds, dc;

    ck_assert_uint_eq(hbitmap_size(hb), 0);
    ck_assert_uint_eq(hbitmap_count(hb), 0);
    ck_assert(hbitmap_empty(hb));
    hbitmap_iter_init(&hbi, hb, 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
    ck_assert_int_eq(hbitmap_next_dirty(hb, 0, 100), -1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 100), -1);
    ck_assert(!hbitmap_next_dirty_area(hb, 0, 100, 10, &ds, &dc));
    hbitmap_set(hb, 0, 0);
    hbitmap_reset(hb, 0, 0);
    ck_assert_uint_eq(hbitmap_serialization_size(hb, 0, 0), 0);

    hbitmap_truncate(hb, 100);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 100), 0);
    hbitmap_set(hb, 99, 1);
    ck_assert_uint_eq(hbitmap_count(hb), 1);
    hbitmap_truncate(hb, 0);
    ck_assert_uint_eq(hbitmap_count(hb), 0);
    hbitmap_truncate(hb, 100);
    ck_assert(!hbitmap_get(hb, 99));
}
END_TEST

/* Each position sits on one side of a 64^k boundary. */
static const uint64_t boundary_bits[] = {
    0, 1, 62, 63, 64, 65, 4095, 4096, 4097, 262143, 262144,
    64 * 64 * 64 * 64 - 1, 64 * 64 * 64 * 64, 64 * 64 * 64 * 64 + 5,
};

START_TEST(test_iter_level_boundaries)
{
    int gran = _i;
    uint64_t nbits = 64 * 64 * 64 * 64 + 6;
    g_autoptr(HBitmap) hb = hbitmap_alloc(nbits << gran, gran);
    size_t n = ARRAY_SIZE(boundary_bits);
    HBitmapIter hbi;

    for (size_t i = 0; i < n; i++) {
        /* set one item in the middle of the granule */
        hbitmap_set(hb, (boundary_bits[i] << gran) + (1 << gran) / 2, 1);
    }
    ck_assert_uint_eq(hbitmap_count(hb), n << gran);

    hbitmap_iter_init(&hbi, hb, 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(hbitmap_iter_next(&hbi), boundary_bits[i] << gran);
    }
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);

    for (size_t i = 0; i < n; i++) {
        uint64_t item = boundary_bits[i] << gran;

        /* Starting inside a set granule returns that granule... */
        hbitmap_iter_init(&hbi, hb, item + (1 << gran) - 1);
        ck_assert_int_eq(hbitmap_iter_next(&hbi), item);
        /* ...and starting just after it, the next one. */
        hbitmap_iter_init(&hbi, hb, item + (1 << gran));
        ck_assert_int_eq(hbitmap_iter_next(&hbi),
                         i + 1 < n ? (int64_t)(boundary_bits[i + 1] << gran)
                                   : -1);
        ck_assert_int_eq(hbitmap_next_dirty(hb, item + 1, INT64_MAX),
                         gran ? item + 1
                              : (i + 1 < n ? boundary_bits[i + 1] : -1));
        if (i > 0) {
            ck_assert_int_eq(hbitmap_next_dirty(hb, (boundary_bits[i - 1] + 1)
                                                << gran, INT64_MAX), item);
        }
    }

    /* Clearing them one by one empties every level again. */
    for (size_t i = 0; i < n; i++) {
        hbitmap_reset(hb, boundary_bits[i] << gran, 1 << gran);
    }
    ck_assert(hbitmap_empty(hb));
    hbitmap_iter_init(&hbi, hb, 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
}
END_TEST

START_TEST(test_iter_reset_while_iterating)
{
    const uint64_t size = 20000;
    g_autoptr(HBitmap) hb = hbitmap_alloc(size, 0);
    g_autofree bool *expect = g_new0(bool, size);
    g_autofree bool *behind = g_new0(bool, size);
    HBitmapIter hbi;
    int64_t item, prev = -1;
    uint64_t seen = 0, nbehind = 0;

    hbitmap_set(hb, 0, size);
    hbitmap_reset(hb, 5000, 5000);
    for (uint64_t i = 0; i < size; i++) {
        expect[i] = i < 5000 || i >= 10000;
    }

    hbitmap_iter_init(&hbi, hb, 0);
    while ((item = hbitmap_iter_next(&hbi)) >= 0) {
        ck_assert_int_gt(item, prev);
        ck_assert_msg(expect[item], "item %" PRId64 " was reset", item);
        expect[item] = false;
        seen++;
        prev = item;
        /* Reset what we just visited, like the backup loop does. */
        hbitmap_reset(hb, item, 1);
        /* Setting bits behind the iterator does not make it go back. */
        if (item % 3 == 0 && item > 0) {
            hbitmap_set(hb, item - 1, 1);
            behind[item - 1] = true;
        }
        /* Resetting ahead, within the word and across words and levels. */
        if (item % 31 == 0) {
            uint64_t n = MIN(item % 5 == 0 ? 3000 : 40, size - item - 1);

            hbitmap_reset(hb, item + 1, n);
            memset(expect + item + 1, 0, n * sizeof(bool));
        }
    }
    ck_assert_uint_gt(seen, 100);
    for (uint64_t i = 0; i < size; i++) {
        ck_assert_msg(!expect[i], "item %" PRIu64 " was never returned", i);
        ck_assert(hbitmap_get(hb, i) == behind[i]);
        nbehind += behind[i];
    }
    /* Only the bits set behind remain. */
    ck_assert_uint_gt(nbehind, 10);
    ck_assert_uint_eq(hbitmap_count(hb), nbehind);
}
END_TEST

START_TEST(test_iter_reset_all_mid_way)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1 << 20, 0);
    HBitmapIter hbi;

    hbitmap_set(hb, 10, 1);
    hbitmap_set(hb, 100000, 1);
    hbitmap_set(hb, 900000, 1);
    hbitmap_iter_init(&hbi, hb, 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), 10);
    hbitmap_reset_all(hb);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
}
END_TEST

/* The backup job's pattern: walk a cluster bitmap, copy, reset each cluster. */
START_TEST(test_iter_backup_pattern)
{
    const int cluster_bits = 16;
    const uint64_t disk = GiB + 3 * 4096;    /* partial last cluster */
    g_autoptr(HBitmap) hb = hbitmap_alloc(disk, cluster_bits);
    HBitmapIter hbi;
    int64_t off;
    uint64_t clusters = 0, copied = 0;

    hbitmap_set(hb, 0, disk);
    ck_assert_uint_eq(hbitmap_count(hb), disk);
    hbitmap_iter_init(&hbi, hb, 0);
    while ((off = hbitmap_iter_next(&hbi)) >= 0) {
        uint64_t len = MIN(disk - off, 1u << cluster_bits);

        ck_assert_int_eq(off, clusters << cluster_bits);
        hbitmap_reset(hb, off, len);
        copied += len;
        clusters++;
        ck_assert_uint_eq(hbitmap_count(hb), disk - copied);
    }
    ck_assert_uint_eq(clusters, (GiB >> cluster_bits) + 1);
    ck_assert_uint_eq(copied, disk);
    ck_assert(hbitmap_empty(hb));
}
END_TEST

START_TEST(test_count_partial_granule)
{
    /* 100 items, granules of 16: 6 full granules and one of 4 items. */
    g_autoptr(HBitmap) hb = hbitmap_alloc(100, 4);
    int64_t pnum;

    hbitmap_set(hb, 99, 1);
    ck_assert_uint_eq(hbitmap_count(hb), 4);
    for (int i = 96; i < 100; i++) {
        ck_assert(hbitmap_get(hb, i));
    }
    ck_assert(!hbitmap_get(hb, 95));
    ck_assert_int_eq(hbitmap_next_dirty(hb, 0, 100), 96);
    ck_assert_int_eq(hbitmap_next_dirty(hb, 97, 100), 97);
    ck_assert(hbitmap_status(hb, 98, 2, &pnum));
    ck_assert_int_eq(pnum, 2);

    hbitmap_set(hb, 0, 1);
    ck_assert_uint_eq(hbitmap_count(hb), 20);
    hbitmap_set(hb, 0, 100);
    ck_assert_uint_eq(hbitmap_count(hb), 100);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, INT64_MAX), -1);

    /* A reset may end unaligned exactly at the end of the bitmap. */
    hbitmap_reset(hb, 96, 4);
    ck_assert_uint_eq(hbitmap_count(hb), 96);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 100), 96);

    /* Shrink into granule 5 (80..95): it becomes the partial last one. */
    hbitmap_truncate(hb, 90);
    ck_assert_uint_eq(hbitmap_count(hb), 90);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, INT64_MAX), -1);
    /* Grow back: granule 5 is whole again and still set, 6 is new. */
    hbitmap_truncate(hb, 100);
    ck_assert_uint_eq(hbitmap_count(hb), 96);
    ck_assert(hbitmap_get(hb, 95));
    ck_assert(!hbitmap_get(hb, 96));
    ck_assert(!hbitmap_status(hb, 96, 4, &pnum));
    ck_assert_int_eq(pnum, 4);
    ck_assert(hbitmap_status(hb, 3, 97, &pnum));
    ck_assert_int_eq(pnum, 93);
}
END_TEST

START_TEST(test_granularity_63)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(100, 63);
    HBitmapIter hbi;

    hbitmap_set(hb, 5, 1);
    ck_assert_uint_eq(hbitmap_count(hb), 100);
    ck_assert(hbitmap_get(hb, 0));
    ck_assert(hbitmap_get(hb, 99));
    hbitmap_iter_init(&hbi, hb, 50);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
    ck_assert_int_eq(hbitmap_next_dirty(hb, 50, 10), 50);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 100), -1);
    ck_assert(!hbitmap_is_serializable(hb));
    hbitmap_reset(hb, 0, 100);
    ck_assert(hbitmap_empty(hb));
}
END_TEST

/* The largest items: the very end of an INT64_MAX-item bitmap. */
START_TEST(test_huge_item_offsets)
{
    const int gran = 40;
    g_autoptr(HBitmap) hb = hbitmap_alloc(INT64_MAX, gran);
    int64_t last_granule = (int64_t)((UINT64_C(1) << 23) - 1) << gran;
    HBitmapIter hbi;
    int64_t ds, dc;

    hbitmap_set(hb, INT64_MAX - 1, 1);
    ck_assert(hbitmap_get(hb, INT64_MAX - 1));
    ck_assert(hbitmap_get(hb, last_granule));
    ck_assert(!hbitmap_get(hb, last_granule - 1));
    ck_assert_uint_eq(hbitmap_count(hb), INT64_MAX - last_granule);
    hbitmap_iter_init(&hbi, hb, 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), last_granule);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
    ck_assert_int_eq(hbitmap_next_dirty(hb, 0, INT64_MAX), last_granule);
    ck_assert_int_eq(hbitmap_next_zero(hb, last_granule, INT64_MAX), -1);
    ck_assert(hbitmap_next_dirty_area(hb, 0, INT64_MAX, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, last_granule);
    ck_assert_int_eq(dc, INT64_MAX - last_granule);
    hbitmap_reset(hb, last_granule, INT64_MAX - last_granule);
    ck_assert(hbitmap_empty(hb));
}
END_TEST

START_TEST(test_next_dirty_area_cases)
{
    /* granules of 4 items; set 8..15 (granules 2,3) and 40..43 (10) */
    g_autoptr(HBitmap) hb = hbitmap_alloc(50, 2);
    int64_t ds = -1, dc = -1;

    hbitmap_set(hb, 9, 6);
    hbitmap_set(hb, 41, 1);

    ck_assert(hbitmap_next_dirty_area(hb, 0, 50, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 8);
    ck_assert_int_eq(dc, 8);
    ck_assert(hbitmap_next_dirty_area(hb, 10, 50, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 10);
    ck_assert_int_eq(dc, 6);
    ck_assert(hbitmap_next_dirty_area(hb, 0, 50, 3, &ds, &dc));
    ck_assert_int_eq(ds, 8);
    ck_assert_int_eq(dc, 3);
    ck_assert(hbitmap_next_dirty_area(hb, 0, 13, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 8);
    ck_assert_int_eq(dc, 5);
    ck_assert(hbitmap_next_dirty_area(hb, 16, 1000, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 40);
    ck_assert_int_eq(dc, 4);
    ds = dc = -7;
    ck_assert(!hbitmap_next_dirty_area(hb, 16, 40, INT64_MAX, &ds, &dc));
    ck_assert(!hbitmap_next_dirty_area(hb, 44, 50, 1, &ds, &dc));
    ck_assert(!hbitmap_next_dirty_area(hb, 60, 70, 1, &ds, &dc));
    ck_assert(!hbitmap_next_dirty_area(hb, 8, 8, 1, &ds, &dc));
    ck_assert_int_eq(ds, -7);
    ck_assert_int_eq(dc, -7);
}
END_TEST

START_TEST(test_next_zero_cases)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(10000, 0);

    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 10000), 0);
    hbitmap_set(hb, 0, 10000);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 10000), -1);
    hbitmap_reset(hb, 9999, 1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 10000), 9999);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, 9999), -1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 9999, 1), 9999);
    hbitmap_reset(hb, 4096, 1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 1, INT64_MAX), 4096);
    ck_assert_int_eq(hbitmap_next_zero(hb, 4096, 0), -1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 4097, 5000), -1);
    ck_assert_int_eq(hbitmap_next_zero(hb, 4097, 5903), 9999);
}
END_TEST

START_TEST(test_serialize_layout)
{
    /* 1000 items at granularity 2: 250 bits in 4 words. */
    g_autoptr(HBitmap) hb = hbitmap_alloc(1000, 2);
    g_autoptr(HBitmap) hb2 = hbitmap_alloc(1000, 2);
    static const uint64_t bits[] = { 0, 1, 63, 64, 127, 249 };
    uint8_t buf[32], want[32] = { 0 };
    uint8_t ones[8];
    HBitmapIter hbi;

    ck_assert(hbitmap_is_serializable(hb));
    ck_assert_uint_eq(hbitmap_serialization_align(hb), 256);
    for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
        hbitmap_set(hb, bits[i] << 2, 1);
    }
    ck_assert_uint_eq(hbitmap_serialization_size(hb, 0, 1000), 32);
    ck_assert_uint_eq(hbitmap_serialization_size(hb, 256, 256), 8);
    ck_assert_uint_eq(hbitmap_serialization_size(hb, 768, 232), 8);

    hbitmap_serialize_part(hb, buf, 0, 1000);
    /* bit i of little-endian word j is granule j * 64 + i */
    want[0] = 0x03;         /* granules 0, 1 */
    want[7] = 0x80;         /* granule 63 */
    want[8] = 0x01;         /* granule 64 */
    want[15] = 0x80;        /* granule 127 */
    want[31] = 0x02;        /* granule 249 = 3 * 64 + 57 */
    ck_assert_mem_eq(buf, want, sizeof(want));

    memset(buf, 0xaa, sizeof(buf));
    hbitmap_serialize_part(hb, buf, 256, 256);
    ck_assert_mem_eq(buf, want + 8, 8);
    ck_assert_uint_eq(buf[8], 0xaa);

    /* Round trip in two chunks, the second one ending unaligned. */
    hbitmap_deserialize_part(hb2, want, 0, 512, false);
    hbitmap_deserialize_part(hb2, want + 16, 512, 488, true);
    ck_assert_uint_eq(hbitmap_count(hb2), 6 * 4);
    hbitmap_iter_init(&hbi, hb2, 0);
    for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
        ck_assert_int_eq(hbitmap_iter_next(&hbi), bits[i] << 2);
    }
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);

    /* Bits past the end in the input are ignored. */
    memset(ones, 0xff, sizeof(ones));
    hbitmap_deserialize_part(hb2, ones, 768, 232, true);
    ck_assert_uint_eq(hbitmap_count(hb2), 5 * 4 + 232);
    hbitmap_deserialize_ones(hb2, 0, 1000, true);
    ck_assert_uint_eq(hbitmap_count(hb2), 1000);
    hbitmap_iter_init(&hbi, hb2, 996);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), 996);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
    hbitmap_deserialize_zeroes(hb2, 256, 512, true);
    ck_assert_uint_eq(hbitmap_count(hb2), 1000 - 512);
    ck_assert_int_eq(hbitmap_next_zero(hb2, 0, 1000), 256);
    ck_assert_int_eq(hbitmap_next_dirty(hb2, 256, 1000), 768);

}
END_TEST

START_TEST(test_serializable_granularity)
{
    g_autoptr(HBitmap) g57 = hbitmap_alloc(INT64_MAX, 57);
    g_autoptr(HBitmap) g58 = hbitmap_alloc(INT64_MAX, 58);

    ck_assert(hbitmap_is_serializable(g57));
    ck_assert_uint_eq(hbitmap_serialization_align(g57), UINT64_C(1) << 63);
    ck_assert(!hbitmap_is_serializable(g58));
}
END_TEST

START_TEST(test_sha256)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(128, 0);
    g_autofree char *empty = hbitmap_sha256(hb, NULL);
    g_autofree char *some = NULL;

    /* sha256 of 16 zero bytes, and of 01 00.. 80 00.. (bits 0 and 71) */
    ck_assert_str_eq(empty, "374708fff7719dd5979ec875d56cd228"
                            "6f6d3cf7ec317a3b25632aab28ec37bb");
    hbitmap_set(hb, 0, 1);
    hbitmap_set(hb, 71, 1);
    some = hbitmap_sha256(hb, NULL);
    ck_assert_str_eq(some, "9688df69e238c5a4eee026f9ca7ad280"
                           "bc85d1616d53374be3cb5cb62512b188");
}
END_TEST

START_TEST(test_merge_cases)
{
    g_autoptr(HBitmap) a = hbitmap_alloc(1000, 0);
    g_autoptr(HBitmap) b = hbitmap_alloc(1000, 3);
    g_autoptr(HBitmap) c = hbitmap_alloc(999, 0);
    g_autoptr(HBitmap) r = hbitmap_alloc(1000, 5);
    int64_t ds, dc;

    hbitmap_set(a, 10, 1);
    hbitmap_set(b, 100, 1);     /* granule 96..103 */
    hbitmap_set(c, 500, 1);

    ck_assert(!hbitmap_can_merge(a, c));
    ck_assert(!hbitmap_merge(a, c, a));
    ck_assert(!hbitmap_merge(a, b, c));
    ck_assert_uint_eq(hbitmap_count(a), 1);
    ck_assert_uint_eq(hbitmap_count(c), 1);

    ck_assert(hbitmap_can_merge(a, b));
    hbitmap_set(r, 900, 1);    /* stale contents of the result vanish */
    ck_assert(hbitmap_merge(a, b, r));
    /* granularity 5: 0..31 and 96..127 */
    ck_assert_uint_eq(hbitmap_count(r), 64);
    ck_assert(hbitmap_next_dirty_area(r, 0, 1000, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 0);
    ck_assert_int_eq(dc, 32);
    ck_assert(hbitmap_next_dirty_area(r, 32, 1000, INT64_MAX, &ds, &dc));
    ck_assert_int_eq(ds, 96);
    ck_assert_int_eq(dc, 32);

    /* Into a finer bitmap: a gets b's 8-item granule. */
    ck_assert(hbitmap_merge(a, b, a));
    ck_assert_uint_eq(hbitmap_count(a), 9);
    ck_assert(hbitmap_get(a, 96) && hbitmap_get(a, 103));
    ck_assert(!hbitmap_get(a, 104));
    ck_assert_uint_eq(hbitmap_count(b), 8);

    /* Same granularity, all aliased. */
    ck_assert(hbitmap_merge(a, a, a));
    ck_assert_uint_eq(hbitmap_count(a), 9);
}
END_TEST

START_TEST(test_copy_is_independent)
{
    g_autoptr(HBitmap) a = hbitmap_alloc(5000, 1);
    g_autoptr(HBitmap) b = NULL;

    hbitmap_set(a, 100, 1000);
    b = hbitmap_copy(a);
    hbitmap_reset(a, 100, 1000);
    ck_assert(hbitmap_empty(a));
    ck_assert_uint_eq(hbitmap_count(b), 1000);
    ck_assert_int_eq(hbitmap_next_dirty(b, 0, 5000), 100);
    hbitmap_truncate(b, 10000);
    hbitmap_set(b, 9999, 1);
    ck_assert_uint_eq(hbitmap_count(b), 1002);
    ck_assert_uint_eq(hbitmap_size(a), 5000);
}
END_TEST

/* Word-at-a-time range updates: 2^28 bits set and cleared whole. */
START_TEST(test_large_ranges)
{
    const uint64_t size = UINT64_C(1) << 28;
    g_autoptr(HBitmap) hb = hbitmap_alloc(size, 0);
    HBitmapIter hbi;

    hbitmap_set(hb, 0, size);
    ck_assert_uint_eq(hbitmap_count(hb), size);
    ck_assert_int_eq(hbitmap_next_zero(hb, 0, INT64_MAX), -1);
    hbitmap_reset(hb, 64 * 64 * 64, size - 2 * 64 * 64 * 64);
    ck_assert_uint_eq(hbitmap_count(hb), 2 * 64 * 64 * 64);
    hbitmap_iter_init(&hbi, hb, 64 * 64 * 64 - 1);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), 64 * 64 * 64 - 1);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), size - 64 * 64 * 64);
    hbitmap_set(hb, 1, size - 2);
    ck_assert_uint_eq(hbitmap_count(hb), size);
    hbitmap_reset(hb, 0, size);
    ck_assert(hbitmap_empty(hb));
    hbitmap_iter_init(&hbi, hb, 0);
    ck_assert_int_eq(hbitmap_iter_next(&hbi), -1);
}
END_TEST

START_TEST(test_trace_points)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1000, 2);
    FILE *f = tmpfile();
    char line[256];
    int n = 0;

    ck_assert_ptr_nonnull(f);
    trace_set_output(f);
    trace_enable_events("hbitmap_*");
    hbitmap_set(hb, 5, 10);
    hbitmap_reset(hb, 4, 12);
    hbitmap_truncate(hb, 2000);
    trace_enable_events("-hbitmap_*");
    hbitmap_set(hb, 0, 1);      /* disabled again: not traced */
    fflush(f);
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        n++;
        if (n == 1) {
            ck_assert_ptr_nonnull(strstr(line, "hbitmap_set "));
            ck_assert_ptr_nonnull(strstr(line, "items 5,10 bits 1..3"));
        } else if (n == 2) {
            ck_assert_ptr_nonnull(strstr(line, "hbitmap_reset "));
            ck_assert_ptr_nonnull(strstr(line, "items 4,12 bits 1..3"));
        } else {
            ck_assert_ptr_nonnull(strstr(line, "hbitmap_truncate "));
            ck_assert_ptr_nonnull(strstr(line, "size 1000 -> 2000"));
        }
    }
    ck_assert_int_eq(n, 3);
    trace_set_output(stderr);
    fclose(f);
}
END_TEST

START_TEST(test_memory_usage)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1 << 24, 0);
    /* A 1 TiB disk, bytes as items, 64 KiB granularity (like QEMU). */
    g_autoptr(HBitmap) disk = hbitmap_alloc(TiB, 16);
    g_autoptr(HBitmap) disk2 = hbitmap_alloc(2 * TiB, 16);
    size_t mem = hbitmap_memory_usage(hb);
    size_t bottom = (1 << 24) / 8;

    printf("hbitmap: 2^24 bits at granularity 0 use %zu bytes\n", mem);
    /* The last level is exactly one bit per granule... */
    ck_assert_uint_ge(mem, bottom);
    /* ...and the summaries cost about 1/63 more: 2 MiB + 33 KiB. */
    ck_assert_uint_le(mem, bottom + bottom / 63 + 4096);
    ck_assert_uint_le(mem, 2.1 * MiB);

    /* 2^40 / 2^16 = 2^24 bits again: the same 2 MiB + 1/63. */
    printf("hbitmap: 1 TiB at 64 KiB granularity uses %zu bytes\n",
           hbitmap_memory_usage(disk));
    ck_assert_uint_eq(hbitmap_memory_usage(disk), mem);
    /* docs/interop/bitmaps.rst: a 2 TiB disk at 64 KiB needs ~4 MiB. */
    ck_assert_uint_le(hbitmap_memory_usage(disk2), 4.2 * MiB);
    ck_assert_uint_ge(hbitmap_memory_usage(disk2), 4 * MiB);

    /* Growing and shrinking keeps the accounting exact. */
    hbitmap_truncate(hb, 1 << 12);
    ck_assert_uint_le(hbitmap_memory_usage(hb), 1024);
}
END_TEST

/*
 * The tests below must die on an assertion (they run in a forked child);
 * keep the expected assertion message out of the test log.
 */
static void expect_abort(void)
{
    int fd = open("/dev/null", O_WRONLY);

    g_assert(fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

START_TEST(test_reset_unaligned_start_aborts)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1000, 3);

    expect_abort();
    hbitmap_reset(hb, 4, 8);
}
END_TEST

START_TEST(test_reset_unaligned_count_aborts)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1000, 3);

    expect_abort();
    hbitmap_reset(hb, 8, 9);
}
END_TEST

START_TEST(test_set_past_end_aborts)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(1000, 0);

    expect_abort();
    hbitmap_set(hb, 999, 2);
}
END_TEST

START_TEST(test_alloc_too_big_aborts)
{
    expect_abort();
    hbitmap_alloc((UINT64_C(1) << HBITMAP_LOG_MAX_SIZE) + 1, 0);
}
END_TEST

START_TEST(test_alloc_bad_granularity_aborts)
{
    expect_abort();
    hbitmap_alloc(100, 64);
}
END_TEST

START_TEST(test_serialize_unaligned_aborts)
{
    g_autoptr(HBitmap) hb = hbitmap_alloc(100000, 0);
    uint8_t buf[64];

    expect_abort();
    hbitmap_serialize_part(hb, buf, 32, 64);
}
END_TEST

/* ---- bitops -------------------------------------------------------------- */

START_TEST(test_bitops_vs_naive)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(77);
    const long nbits = 300;
    g_autofree unsigned long *map = bitmap_new(nbits);
    bool naive[300] = { false };

    ck_assert(bitmap_empty(map, nbits));
    for (int step = 0; step < 2000; step++) {
        long start = g_rand_int_range(r, 0, nbits);
        long nr = g_rand_int_range(r, 0, nbits - start + 1);
        bool set = g_rand_boolean(r);
        long off = g_rand_int_range(r, 0, nbits + 2);
        long want, cnt = 0, last = nbits;

        if (set) {
            bitmap_set(map, start, nr);
        } else {
            bitmap_clear(map, start, nr);
        }
        for (long i = start; i < start + nr; i++) {
            naive[i] = set;
        }
        if (step % 13 == 0) {
            change_bit(start, map);
            naive[start] = !naive[start];
        }

        for (long i = 0; i < nbits; i++) {
            if (test_bit(i, map) != naive[i]) {
                ck_abort_msg("bit %ld differs at step %d", i, step);
            }
            cnt += naive[i];
            if (naive[i]) {
                last = i;
            }
        }
        if (bitmap_count_one(map, nbits) != cnt ||
            find_last_bit(map, nbits) != (unsigned long)last ||
            bitmap_empty(map, nbits) != (cnt == 0) ||
            bitmap_full(map, nbits) != (cnt == nbits)) {
            ck_abort_msg("count/last/empty/full differ at step %d", step);
        }
        for (want = off; want < nbits && !naive[want]; want++) {
            /* naive scan */
        }
        if (find_next_bit(map, nbits, off) != (unsigned long)MIN(want, nbits)) {
            ck_abort_msg("find_next_bit(%ld) differs at step %d", off, step);
        }
        for (want = off; want < nbits && naive[want]; want++) {
            /* naive scan */
        }
        if (find_next_zero_bit(map, nbits, off) !=
            (unsigned long)MIN(want, nbits)) {
            ck_abort_msg("find_next_zero_bit(%ld) differs at step %d",
                         off, step);
        }
    }
}
END_TEST

START_TEST(test_bitops_words)
{
    unsigned long w[2] = { 0, 0 };

    ck_assert(!test_and_set_bit(70, w));
    ck_assert(test_and_set_bit(70, w));
    ck_assert_uint_eq(w[1], 1ul << 6);
    ck_assert(test_and_clear_bit(70, w));
    ck_assert(!test_and_clear_bit(70, w));
    set_bit(3, w);
    clear_bit(3, w);
    ck_assert_uint_eq(w[0], 0);
    ck_assert_int_eq(ctzl(0), 64);
    ck_assert_int_eq(clzl(1), 63);
    ck_assert_int_eq(ctol(0x17), 3);
    ck_assert_int_eq(ctpop64(0xf0f0), 8);
    ck_assert_int_eq(ctz32(0), 32);
    ck_assert_uint_eq(extract64(0xabcd0000ull, 16, 8), 0xcd);
    ck_assert_uint_eq(deposit64(0xffff, 4, 8, 0), 0xf00f);
    ck_assert_uint_eq(extract32(0x80000000u, 31, 1), 1);
    ck_assert_uint_eq(deposit32(0, 28, 4, 0xff), 0xf0000000u);
    ck_assert_uint_eq(MAKE_64BIT_MASK(4, 4), 0xf0);
    ck_assert_uint_eq(BITS_TO_LONGS(65), 2);
    ck_assert_uint_eq(find_first_bit(w, 128), 128);
    ck_assert_uint_eq(find_first_zero_bit(w, 128), 0);
}
END_TEST

static Suite *hbitmap_suite(void)
{
    Suite *s = suite_create("hbitmap");
    TCase *tc = tcase_create("focused");
    TCase *tr = tcase_create("random");
    TCase *ta = tcase_create("asserts");
    TCase *tb = tcase_create("bitops");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_empty_and_size_zero);
    tcase_add_loop_test(tc, test_iter_level_boundaries, 0, 3);
    tcase_add_test(tc, test_iter_reset_while_iterating);
    tcase_add_test(tc, test_iter_reset_all_mid_way);
    tcase_add_test(tc, test_iter_backup_pattern);
    tcase_add_test(tc, test_count_partial_granule);
    tcase_add_test(tc, test_granularity_63);
    tcase_add_test(tc, test_huge_item_offsets);
    tcase_add_test(tc, test_next_dirty_area_cases);
    tcase_add_test(tc, test_next_zero_cases);
    tcase_add_test(tc, test_serialize_layout);
    tcase_add_test(tc, test_serializable_granularity);
    tcase_add_test(tc, test_sha256);
    tcase_add_test(tc, test_merge_cases);
    tcase_add_test(tc, test_copy_is_independent);
    tcase_add_test(tc, test_large_ranges);
    tcase_add_test(tc, test_memory_usage);
    tcase_add_test(tc, test_trace_points);
    suite_add_tcase(s, tc);

    tcase_set_timeout(tr, 120);
    tcase_add_loop_test(tr, test_random_small, 0,
                        3 * ARRAY_SIZE(small_configs));
    tcase_add_loop_test(tr, test_random_large, 0, ARRAY_SIZE(large_configs));
    suite_add_tcase(s, tr);

    tcase_add_test_raise_signal(ta, test_reset_unaligned_start_aborts,
                                SIGABRT);
    tcase_add_test_raise_signal(ta, test_reset_unaligned_count_aborts,
                                SIGABRT);
    tcase_add_test_raise_signal(ta, test_set_past_end_aborts, SIGABRT);
    tcase_add_test_raise_signal(ta, test_alloc_too_big_aborts, SIGABRT);
    tcase_add_test_raise_signal(ta, test_alloc_bad_granularity_aborts,
                                SIGABRT);
    tcase_add_test_raise_signal(ta, test_serialize_unaligned_aborts, SIGABRT);
    suite_add_tcase(s, ta);

    tcase_add_test(tb, test_bitops_vs_naive);
    tcase_add_test(tb, test_bitops_words);
    suite_add_tcase(s, tb);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hbitmap_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
