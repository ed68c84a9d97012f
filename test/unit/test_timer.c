/*
 * test_timer.c - the per-worker timer heap: ordering, moves, removal, and
 * callbacks that re-arm themselves (the lazy idle-timeout pattern).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../../core/timer.h"

#define N 1000

static uint64_t fired_at[N];
static unsigned fired_order[N];
static unsigned nfired;
static struct timer timers[N];

static void record(struct timer *t, uint64_t now)
{
    unsigned idx = (unsigned)(t - timers);

    fired_at[idx] = now;
    fired_order[nfired++] = idx;
}

static void test_fires_in_deadline_order(void **state)
{
    struct timer_heap h;
    uint64_t seed = 42;

    (void)state;
    timer_heap_init(&h);
    nfired = 0;
    for (unsigned i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        timer_init(&timers[i], record);
        assert_int_equal(timer_arm(&h, &timers[i], 1 + (seed >> 33) % 5000), 0);
    }
    assert_int_equal(timer_run(&h, 0), 0);
    assert_int_equal(timer_run(&h, 10000), N);
    assert_int_equal(nfired, N);
    for (unsigned i = 1; i < N; i++)
        assert_true(timers[fired_order[i - 1]].deadline <= timers[fired_order[i]].deadline);
    assert_int_equal(timer_next(&h), TIMER_NONE);
    timer_heap_free(&h);
}

static void test_move_and_disarm(void **state)
{
    struct timer_heap h;

    (void)state;
    timer_heap_init(&h);
    nfired = 0;
    for (unsigned i = 0; i < 100; i++) {
        timer_init(&timers[i], record);
        assert_int_equal(timer_arm(&h, &timers[i], 100 + i), 0);
    }
    /* Move the last one to the front and the first one to the back. */
    assert_int_equal(timer_arm(&h, &timers[99], 10), 0);
    assert_int_equal(timer_arm(&h, &timers[0], 1000), 0);
    assert_int_equal(timer_next(&h), 10);
    /* Disarm every even timer but 0. */
    for (unsigned i = 2; i < 100; i += 2)
        timer_disarm(&h, &timers[i]);
    timer_disarm(&h, &timers[2]); /* twice: harmless */
    assert_false(timer_armed(&timers[2]));
    assert_int_equal(timer_run(&h, 999), 50);
    assert_int_equal(fired_order[0], 99);
    for (unsigned i = 0; i < nfired; i++)
        assert_true(fired_order[i] % 2 == 1);
    assert_int_equal(timer_next(&h), 1000);
    assert_int_equal(timer_run(&h, 1000), 1);
    assert_int_equal(fired_order[nfired - 1], 0);
    timer_heap_free(&h);
}

static unsigned rearms;

static struct timer_heap *self_heap;

static void rearm_cb(struct timer *t, uint64_t now)
{
    if (rearms++ < 2)
        assert_int_equal(timer_arm(self_heap, t, now + 50), 0);
}

static void test_callback_rearms(void **state)
{
    struct timer_heap h;
    struct timer t;

    (void)state;
    timer_heap_init(&h);
    self_heap = &h;
    rearms = 0;
    timer_init(&t, rearm_cb);
    assert_int_equal(timer_arm(&h, &t, 100), 0);
    assert_int_equal(timer_run(&h, 100), 1);
    assert_true(timer_armed(&t));
    assert_int_equal(t.deadline, 150);
    assert_int_equal(timer_run(&h, 149), 0);
    assert_int_equal(timer_run(&h, 150), 1);
    assert_int_equal(timer_run(&h, 200), 1);
    assert_false(timer_armed(&t));
    assert_int_equal(rearms, 3);
    timer_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_deadline_order),
        cmocka_unit_test(test_move_and_disarm),
        cmocka_unit_test(test_callback_rearms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
