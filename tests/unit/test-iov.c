/*
 * Unit tests for util/iov.c.  Vectors with random layouts (random piece
 * sizes, empty pieces, gaps between pieces in memory) are compared with a
 * flat buffer holding what the vector's bytes should be.
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"
#include <check.h>

/* A scattered vector over `store` and the flat oracle of its contents. */
typedef struct Layout {
    QEMUIOVector qiov;
    unsigned char *store;   /* pieces live here, with gaps between them */
    size_t store_size;
    unsigned char *flat;    /* expected contents, qiov.size bytes */
} Layout;

/* Build a vector of @size bytes in random pieces, filled with random data. */
static void layout_init(Layout *l, GRand *rand, size_t size)
{
    size_t pos = 0, spos = 0;

    l->store_size = 3 * size + 64;
    l->store = g_malloc(l->store_size);
    memset(l->store, 0xee, l->store_size);
    l->flat = g_malloc(size + 1);
    qemu_iovec_init(&l->qiov, 1);

    while (pos < size) {
        size_t len;

        /* sometimes an empty piece, sometimes a 1-byte one */
        switch (g_rand_int_range(rand, 0, 6)) {
        case 0:
            len = 0;
            break;
        case 1:
            len = 1;
            break;
        default:
            len = g_rand_int_range(rand, 1, MAX(2, size / 3));
            break;
        }
        len = MIN(len, size - pos);
        /* a gap, if there is room left for the rest of the data */
        if (spos + 2 + (size - pos) <= l->store_size) {
            spos += g_rand_int_range(rand, 0, 3);
        }
        g_assert(spos + len <= l->store_size);
        for (size_t i = 0; i < len; i++) {
            l->store[spos + i] = l->flat[pos + i] = g_rand_int(rand);
        }
        qemu_iovec_add(&l->qiov, l->store + spos, len);
        pos += len;
        spos += len;
    }
    ck_assert_uint_eq(l->qiov.size, size);
}

static void layout_destroy(Layout *l)
{
    qemu_iovec_destroy(&l->qiov);
    g_free(l->store);
    g_free(l->flat);
}

/* The vector's bytes equal the oracle, and the gaps are untouched. */
static void layout_check(Layout *l)
{
    g_autofree unsigned char *got = g_malloc(l->qiov.size + 1);
    size_t gaps = 0;

    ck_assert_uint_eq(qemu_iovec_to_buf(&l->qiov, 0, got, l->qiov.size),
                      l->qiov.size);
    ck_assert(memcmp(got, l->flat, l->qiov.size) == 0);
    for (size_t i = 0; i < l->store_size; i++) {
        gaps += l->store[i] == 0xee;
    }
    /* gap bytes stay 0xee; data bytes may be 0xee by chance, so >= */
    ck_assert_uint_ge(gaps, l->store_size - l->qiov.size);
}

static void random_range(GRand *rand, size_t size, size_t *off, size_t *len)
{
    *off = g_rand_int_range(rand, 0, size + 1);
    *len = g_rand_int_range(rand, 0, size - *off + 1);
}

START_TEST(test_to_from_buf_memset)
{
    GRand *rand = g_rand_new_with_seed(42);

    for (int iter = 0; iter < 300; iter++) {
        Layout l;
        size_t size = g_rand_int_range(rand, 1, 600);
        size_t off, len, n;
        g_autofree unsigned char *buf = g_malloc(size + 16);

        layout_init(&l, rand, size);
        layout_check(&l);

        /* to_buf at a random range */
        random_range(rand, size, &off, &len);
        memset(buf, 0x5a, size + 16);
        n = qemu_iovec_to_buf(&l.qiov, off, buf, len);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(buf, l.flat + off, len) == 0);
        ck_assert_int_eq(buf[len], 0x5a);

        /* asking for more than there is copies what there is */
        n = qemu_iovec_to_buf(&l.qiov, off, buf, size + 16);
        ck_assert_uint_eq(n, size - off);

        /* from_buf at a random range */
        random_range(rand, size, &off, &len);
        for (size_t i = 0; i < len; i++) {
            buf[i] = g_rand_int(rand);
        }
        n = qemu_iovec_from_buf(&l.qiov, off, buf, len);
        ck_assert_uint_eq(n, len);
        memcpy(l.flat + off, buf, len);
        layout_check(&l);

        /* memset at a random range */
        random_range(rand, size, &off, &len);
        n = qemu_iovec_memset(&l.qiov, off, 0x33, len);
        ck_assert_uint_eq(n, len);
        memset(l.flat + off, 0x33, len);
        layout_check(&l);

        /* the plain iovec helpers agree */
        ck_assert_uint_eq(iov_size(l.qiov.iov, l.qiov.niov), size);
        random_range(rand, size, &off, &len);
        n = iov_memset(l.qiov.iov, l.qiov.niov, off, 0, len);
        ck_assert_uint_eq(n, len);
        memset(l.flat + off, 0, len);
        layout_check(&l);

        layout_destroy(&l);
    }
    g_rand_free(rand);
}
END_TEST

START_TEST(test_slice_concat)
{
    GRand *rand = g_rand_new_with_seed(7);

    for (int iter = 0; iter < 300; iter++) {
        Layout l;
        size_t size = g_rand_int_range(rand, 1, 500);
        size_t off, len, off2, len2;
        QEMUIOVector slice, cat;
        g_autofree unsigned char *buf = g_malloc(size);

        layout_init(&l, rand, size);

        /* a slice shares the data of its range */
        random_range(rand, size, &off, &len);
        qemu_iovec_init_slice(&slice, &l.qiov, off, len);
        ck_assert_uint_eq(slice.size, len);
        ck_assert_uint_eq(qemu_iovec_to_buf(&slice, 0, buf, len), len);
        ck_assert(memcmp(buf, l.flat + off, len) == 0);
        /* writes through the slice land in the original */
        qemu_iovec_memset(&slice, 0, 0xc4, len);
        memset(l.flat + off, 0xc4, len);
        layout_check(&l);

        /* concat two ranges: contents are the two ranges back to back */
        random_range(rand, size, &off2, &len2);
        qemu_iovec_init(&cat, 0);
        qemu_iovec_concat(&cat, &l.qiov, off, len);
        qemu_iovec_concat(&cat, &slice, 0, len);
        qemu_iovec_concat(&cat, &l.qiov, off2, len2);
        ck_assert_uint_eq(cat.size, 2 * len + len2);
        {
            g_autofree unsigned char *c = g_malloc(cat.size + 1);

            qemu_iovec_to_buf(&cat, 0, c, cat.size);
            ck_assert(memcmp(c, l.flat + off, len) == 0);
            ck_assert(memcmp(c + len, l.flat + off, len) == 0);
            ck_assert(memcmp(c + 2 * len, l.flat + off2, len2) == 0);
        }
        /* no zero-length entries are added */
        for (int i = 0; i < cat.niov; i++) {
            ck_assert_uint_gt(cat.iov[i].iov_len, 0);
        }

        /* iov_copy describes the same bytes */
        {
            struct iovec dst[64];
            unsigned int cnt;
            QEMUIOVector ext;
            g_autofree unsigned char *c = g_malloc(len2 + 1);

            cnt = iov_copy(dst, ARRAY_SIZE(dst), l.qiov.iov, l.qiov.niov,
                           off2, len2);
            qemu_iovec_init_external(&ext, dst, cnt);
            if (cnt < ARRAY_SIZE(dst)) {
                ck_assert_uint_eq(ext.size, len2);
            }
            ck_assert_uint_eq(iov_to_buf(dst, cnt, 0, c, ext.size),
                              ext.size);
            ck_assert(memcmp(c, l.flat + off2, ext.size) == 0);
            qemu_iovec_destroy(&ext);
        }

        qemu_iovec_reset(&cat);
        ck_assert_int_eq(cat.niov, 0);
        ck_assert_uint_eq(cat.size, 0);
        qemu_iovec_destroy(&cat);
        qemu_iovec_destroy(&slice);
        layout_destroy(&l);
    }
    g_rand_free(rand);
}
END_TEST

START_TEST(test_is_zero_compare)
{
    GRand *rand = g_rand_new_with_seed(99);

    for (int iter = 0; iter < 300; iter++) {
        Layout a, b;
        size_t size = g_rand_int_range(rand, 1, 400);
        size_t off, len;
        ssize_t diff;

        layout_init(&a, rand, size);
        layout_init(&b, rand, size);

        /* make b's contents equal to a's, then differ at one place */
        qemu_iovec_from_buf(&b.qiov, 0, a.flat, size);
        memcpy(b.flat, a.flat, size);
        ck_assert_int_eq(qemu_iovec_compare(&a.qiov, &b.qiov), -1);
        off = g_rand_int_range(rand, 0, size);
        b.flat[off] ^= 0x10;
        qemu_iovec_from_buf(&b.qiov, off, b.flat + off, 1);
        diff = qemu_iovec_compare(&a.qiov, &b.qiov);
        ck_assert_int_eq(diff, off);
        diff = qemu_iovec_compare(&b.qiov, &a.qiov);
        ck_assert_int_eq(diff, off);

        /* is_zero over a random range, against the oracle */
        qemu_iovec_memset(&a.qiov, 0, 0, size);
        memset(a.flat, 0, size);
        random_range(rand, size, &off, &len);
        ck_assert(qemu_iovec_is_zero(&a.qiov, off, len));
        if (len) {
            size_t pos = off + g_rand_int_range(rand, 0, len);

            qemu_iovec_memset(&a.qiov, pos, 7, 1);
            ck_assert(!qemu_iovec_is_zero(&a.qiov, off, len));
            /* outside the range it does not matter */
            if (pos > off) {
                ck_assert(qemu_iovec_is_zero(&a.qiov, off, pos - off));
            }
            ck_assert(qemu_iovec_is_zero(&a.qiov, pos + 1,
                                         size - pos - 1));
        }

        layout_destroy(&a);
        layout_destroy(&b);
    }
    g_rand_free(rand);
}
END_TEST

START_TEST(test_init_buf)
{
    unsigned char data[100];
    unsigned char out[100];
    QEMUIOVector q1 = QEMU_IOVEC_INIT_BUF(q1, data, sizeof(data));
    QEMUIOVector q2;

    memset(data, 0xab, sizeof(data));
    ck_assert_int_eq(q1.niov, 1);
    ck_assert_uint_eq(q1.size, 100);
    ck_assert_ptr_eq(q1.iov, &q1.local_iov);
    ck_assert_ptr_eq(q1.iov[0].iov_base, data);
    ck_assert_int_eq(q1.nalloc, -1);

    qemu_iovec_init_buf(&q2, data + 10, 50);
    ck_assert_ptr_eq(q2.iov, &q2.local_iov);
    ck_assert_uint_eq(q2.size, 50);
    qemu_iovec_memset(&q2, 0, 0, 50);
    ck_assert_uint_eq(qemu_iovec_to_buf(&q1, 0, out, sizeof(out)), 100);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(out[i], (i >= 10 && i < 60) ? 0 : 0xab);
    }
    ck_assert(qemu_iovec_is_zero(&q2, 0, 50));
    ck_assert(!qemu_iovec_is_zero(&q1, 0, 100));
    ck_assert_int_eq(qemu_iovec_compare(&q1, &q2), 0);
    /* destroying an external vector frees nothing */
    qemu_iovec_destroy(&q1);
    qemu_iovec_destroy(&q2);
    ck_assert_int_eq(data[0], 0xab);
}
END_TEST

START_TEST(test_add_grows)
{
    QEMUIOVector q;
    unsigned char byte[1000];

    qemu_iovec_init(&q, 0);
    for (int i = 0; i < 1000; i++) {
        byte[i] = i & 0xff;
        qemu_iovec_add(&q, &byte[i], 1);
    }
    ck_assert_int_eq(q.niov, 1000);
    ck_assert_int_ge(q.nalloc, 1000);
    ck_assert_uint_eq(q.size, 1000);
    for (int i = 0; i < 1000; i++) {
        unsigned char c;

        ck_assert_uint_eq(qemu_iovec_to_buf(&q, i, &c, 1), 1);
        ck_assert_int_eq(c, i & 0xff);
    }
    /* reading past the end copies nothing */
    ck_assert_uint_eq(qemu_iovec_to_buf(&q, 1000, byte, 1), 0);
    qemu_iovec_destroy(&q);
}
END_TEST

START_TEST(test_add_to_external_aborts)
{
    char buf[8];
    QEMUIOVector q;

    qemu_iovec_init_buf(&q, buf, sizeof(buf));
    qemu_iovec_add(&q, buf, 1);
}
END_TEST

static Suite *iov_suite(void)
{
    Suite *s = suite_create("iov");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_to_from_buf_memset);
    tcase_add_test(tc, test_slice_concat);
    tcase_add_test(tc, test_is_zero_compare);
    tcase_add_test(tc, test_init_buf);
    tcase_add_test(tc, test_add_grows);
    tcase_add_test_raise_signal(tc, test_add_to_external_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(iov_suite());
    int nfailed;

    srunner_run_all(sr, CK_ENV);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
