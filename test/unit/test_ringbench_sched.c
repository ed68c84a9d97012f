/*
 * test_ringbench_sched.c - the open-loop sender's schedule (evenly spaced,
 * interleaved connections, no drift over long runs, exact due counts) and
 * the throughput pattern check (a flipped byte and a dropped block are
 * found at the right offset).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/pattern.h"
#include "../../bench/ringbench/sched.h"

#define SEC 1000000000ULL

static void test_rejects_bad_input(void **state)
{
    struct rb_sched s;

    (void)state;
    assert_int_equal(rb_sched_init(&s, 0, 1, 0, 0), -EINVAL);
    assert_int_equal(rb_sched_init(&s, -5, 1, 0, 0), -EINVAL);
    assert_int_equal(rb_sched_init(&s, 100, 0, 0, 0), -EINVAL);
    assert_int_equal(rb_sched_init(&s, 100, 4, 4, 0), -EINVAL);
}

static void test_single_connection_even_spacing(void **state)
{
    struct rb_sched s;
    uint64_t prev;

    (void)state;
    assert_int_equal(rb_sched_init(&s, 10000, 1, 0, 5 * SEC), 0);
    prev = rb_sched_next(&s);
    assert_int_equal(prev, 5 * SEC);
    for (int i = 0; i < 100000; i++) {
        uint64_t t = rb_sched_next(&s);

        assert_in_range(t - prev, 99999, 100001); /* 100 us apart */
        prev = t;
    }
    /* After 10 s of schedule the k-th send is exactly k periods on: the
     * schedule multiplies, it never accumulates rounding. */
    assert_int_equal(rb_sched_at(&s, 100000), 5 * SEC + 10 * SEC);
}

/* n connections at a total rate r: merged, the sends are r per second and
 * evenly interleaved (no two connections fire together). */
static void test_connections_interleave(void **state)
{
    enum { CONNS = 8, PER = 1000 };
    struct rb_sched s[CONNS];
    uint64_t all[CONNS * PER];
    size_t n = 0;

    (void)state;
    for (uint32_t i = 0; i < CONNS; i++) {
        assert_int_equal(rb_sched_init(&s[i], 80000, CONNS, i, SEC), 0);
        for (int k = 0; k < PER; k++)
            all[n++] = rb_sched_next(&s[i]);
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && all[j - 1] > all[j]; j--) {
            uint64_t t = all[j];

            all[j] = all[j - 1];
            all[j - 1] = t;
        }
    }
    /* 80k/s in total: 12.5 us between consecutive sends of any connection. */
    for (size_t i = 1; i < n; i++)
        assert_in_range(all[i] - all[i - 1], 12499, 12501);
}

static void test_due_before_counts_exactly(void **state)
{
    struct rb_sched s;

    (void)state;
    assert_int_equal(rb_sched_init(&s, 3000, 3, 1, SEC), 0);
    /* Connection 1 of 3 at 3000/s: period 1 ms, phase 1/3 ms. */
    assert_int_equal(rb_sched_due_before(&s, SEC), 0);
    assert_int_equal(rb_sched_due_before(&s, SEC + 333333), 0);
    assert_int_equal(rb_sched_due_before(&s, SEC + 333334), 1);
    assert_int_equal(rb_sched_due_before(&s, 2 * SEC), 1000);
    assert_int_equal(rb_sched_due_before(&s, 11 * SEC), 10000);
    for (uint64_t k = 0; k < 50; k++) {
        uint64_t t = rb_sched_at(&s, k);

        assert_int_equal(rb_sched_due_before(&s, t), k);
        assert_int_equal(rb_sched_due_before(&s, t + 1), k + 1);
    }
}

static void test_pattern_detects_corruption(void **state)
{
    enum { LEN = 200000 };
    uint8_t *buf = malloc(LEN);
    uint64_t off = 3 * RB_PATTERN_PERIOD - 1000;

    (void)state;
    assert_int_equal(rb_pattern_init(), 0);
    assert_non_null(buf);
    /* Any window is one contiguous, periodic slice. */
    assert_memory_equal(rb_pattern_at(5), rb_pattern_at(5 + RB_PATTERN_PERIOD), 4096);
    memcpy(buf, rb_pattern_at(off), LEN);
    assert_int_equal(rb_pattern_check(off, buf, LEN), -1);
    buf[123456] ^= 0x01;
    assert_int_equal(rb_pattern_check(off, buf, LEN), 123456);
    /* A relay that drops 64 KiB shifts the stream: caught at once. */
    memcpy(buf, rb_pattern_at(off + 65536), LEN);
    assert_true(rb_pattern_check(off, buf, LEN) >= 0);
    assert_true(rb_pattern_check(off, buf, LEN) < 16);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_single_connection_even_spacing),
        cmocka_unit_test(test_connections_interleave),
        cmocka_unit_test(test_due_before_counts_exactly),
        cmocka_unit_test(test_pattern_detects_corruption),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
