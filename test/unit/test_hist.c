/*
 * test_hist.c - ringbench's log-linear histogram: bucket layout, recording,
 * percentiles within the stated error bound, merging per-thread histograms,
 * and the .hgrm dump.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/hist.h"

#define N 200000

static uint64_t rng = 88172645463325252ULL;

static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The exact p-th percentile of sorted <v>, by the same rank rule. */
static uint64_t exact(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999999);

    if (rank == 0)
        rank = 1;
    return v[rank - 1];
}

static void test_buckets_dense_and_bounded(void **state)
{
    (void)state;
    /* Every value lands in the bucket whose range holds it, and no bucket
     * is wider than 1/128 of its lower bound (the 1% promise with room). */
    for (uint64_t v = 1; v < RB_HIST_MAX_NS; v = v * 3 / 2 + 1) {
        uint32_t i = rb_hist_index(v);

        assert_true(i < RB_HIST_BUCKETS);
        assert_true(rb_hist_bucket_lo(i) <= v);
        assert_true(v < rb_hist_bucket_lo(i) + rb_hist_bucket_width(i));
        if (v >= 256)
            assert_true(rb_hist_bucket_width(i) * 128 <= rb_hist_bucket_lo(i));
    }
    /* Indexes are contiguous: each bucket starts where the previous ends. */
    for (uint32_t i = 1; i < RB_HIST_BUCKETS; i++)
        assert_int_equal(rb_hist_bucket_lo(i),
                         rb_hist_bucket_lo(i - 1) + rb_hist_bucket_width(i - 1));
    assert_int_equal(rb_hist_index(RB_HIST_MAX_NS), RB_HIST_BUCKETS - 1);
}

static void test_record_counts_min_max(void **state)
{
    struct rb_hist h;

    (void)state;
    assert_int_equal(rb_hist_init(&h), 0);
    assert_int_equal(rb_hist_percentile(&h, 50), 0);
    rb_hist_record(&h, 1000);
    rb_hist_record(&h, 5);
    rb_hist_record(&h, 60ULL * 1000000000ULL);
    rb_hist_record(&h, RB_HIST_MAX_NS + 12345);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.min, 5);
    assert_int_equal(h.max, RB_HIST_MAX_NS + 12345);
    assert_int_equal(h.overflow, 1);
    assert_int_equal(rb_hist_percentile(&h, 0), 5);
    assert_int_equal(rb_hist_percentile(&h, 100), RB_HIST_MAX_NS + 12345);
    assert_int_equal(rb_hist_percentile(&h, 25), 5);
    /* 1000 ns shares a 4 ns bucket: reported as its middle, within 0.4%. */
    assert_in_range(rb_hist_percentile(&h, 50), 1000, 1004);
    rb_hist_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(rb_hist_percentile(&h, 99), 0);
    rb_hist_free(&h);
}

/* Log-uniform values from 1 us to 60 s: every percentile within 1%. */
static void test_percentiles_within_one_percent(void **state)
{
    static uint64_t v[N];
    static const double ps[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999};
    struct rb_hist h;

    (void)state;
    assert_int_equal(rb_hist_init(&h), 0);
    for (size_t i = 0; i < N; i++) {
        double e = (double)(xorshift() % 1000000) / 1000000.0 * 7.78; /* 10^7.78 = 60 s in us */

        v[i] = (uint64_t)(1000.0 * __builtin_pow(10.0, e));
        rb_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        double want = (double)exact(v, N, ps[k]);
        double got = (double)rb_hist_percentile(&h, ps[k]);

        if (got < want * 0.99 || got > want * 1.01)
            fail_msg("p%g: got %.0f, exact %.0f (more than 1%% off)", ps[k], got, want);
    }
    assert_int_equal(rb_hist_percentile(&h, 100), v[N - 1]);
    rb_hist_free(&h);
}

/* Per-worker histograms merged equal one histogram of all values. */
static void test_merge_equals_single(void **state)
{
    struct rb_hist all, part[4], merged;

    (void)state;
    assert_int_equal(rb_hist_init(&all), 0);
    assert_int_equal(rb_hist_init(&merged), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rb_hist_init(&part[i]), 0);
    for (int i = 0; i < 40000; i++) {
        /* Each "thread" sees a different range, as busy and idle workers do. */
        uint64_t x = (xorshift() % 100000) * (uint64_t)(i % 4 + 1) + 300;

        rb_hist_record(&all, x);
        rb_hist_record(&part[i % 4], x);
    }
    for (int i = 0; i < 4; i++)
        rb_hist_merge(&merged, &part[i]);
    assert_int_equal(merged.count, all.count);
    assert_int_equal(merged.min, all.min);
    assert_int_equal(merged.max, all.max);
    assert_memory_equal(merged.counts, all.counts, RB_HIST_BUCKETS * sizeof(uint64_t));
    for (double p = 1; p < 100; p += 7.3)
        assert_int_equal(rb_hist_percentile(&merged, p), rb_hist_percentile(&all, p));
    for (int i = 0; i < 4; i++)
        rb_hist_free(&part[i]);
    rb_hist_free(&all);
    rb_hist_free(&merged);
}

static void test_write_hgrm(void **state)
{
    struct rb_hist h;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    assert_int_equal(rb_hist_init(&h), 0);
    for (uint64_t i = 1; i <= 1000; i++)
        rb_hist_record(&h, i * 1000);
    assert_int_equal(rb_hist_write(&h, f), 0);
    fclose(f);
    assert_non_null(strstr(text, "Value     Percentile"));
    assert_non_null(strstr(text, "Total count    =         1000"));
    /* The last line before the footer is the maximum at percentile 1. */
    assert_non_null(strstr(text, "1000.000 1.000000000000       1000"));
    free(text);
    rb_hist_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_dense_and_bounded),
        cmocka_unit_test(test_record_counts_min_max),
        cmocka_unit_test(test_percentiles_within_one_percent),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_write_hgrm),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
