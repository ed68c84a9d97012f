/*
 * test_qsbr.c - unit tests for quiescent-state-based reclamation
 * (core/qsbr.c). One thread plays every reader in turn: a reader slot is
 * only a counter, so the grace-period rules can be checked step by step,
 * deterministically, without threads. Each test leaves no reader
 * registered and nothing retired, since QSBR state is process-wide.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../core/qsbr.h"

/* What the free callback saw, in order. */
static int freed[64];
static unsigned nfreed;

static void fake_free(void *p)
{
    assert_true(nfreed < sizeof(freed) / sizeof(freed[0]));
    freed[nfreed++] = *(int *)p;
}

static bool was_freed(int id)
{
    for (unsigned i = 0; i < nfreed; i++) {
        if (freed[i] == id)
            return true;
    }
    return false;
}

static int setup(void **state)
{
    (void)state;
    nfreed = 0;
    /* Nothing may be left over from an earlier test. */
    assert_int_equal(qsbr_poll(), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(qsbr_poll(), 0);
    return 0;
}

static void test_register_slots(void **state)
{
    static int slot[QSBR_MAX_READERS];

    (void)state;
    for (int i = 0; i < QSBR_MAX_READERS; i++) {
        slot[i] = qsbr_register();
        assert_true(slot[i] >= 0 && slot[i] < QSBR_MAX_READERS);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(slot[i], slot[j]);
    }
    /* Every slot taken: the next reader is refused, not given a shared one. */
    assert_int_equal(qsbr_register(), -ENOSPC);
    /* A slot given back is handed out again. */
    qsbr_unregister(slot[7]);
    assert_int_equal(qsbr_register(), slot[7]);
    for (int i = 0; i < QSBR_MAX_READERS; i++)
        qsbr_unregister(slot[i]);
}

static void test_no_reader_frees_at_once(void **state)
{
    int a = 1;

    (void)state;
    qsbr_retire(&a, fake_free);
    assert_int_equal(nfreed, 0); /* retire never frees by itself */
    assert_int_equal(qsbr_poll(), 0);
    assert_int_equal(nfreed, 1);
    assert_true(was_freed(1));
}

static void test_every_reader_must_pass(void **state)
{
    int a = 1;
    int r1 = qsbr_register(), r2 = qsbr_register(), r3 = qsbr_register();

    (void)state;
    assert_true(r1 >= 0 && r2 >= 0 && r3 >= 0);
    qsbr_retire(&a, fake_free);
    assert_int_equal(qsbr_poll(), 1);
    qsbr_quiescent(r1);
    assert_int_equal(qsbr_poll(), 1);
    qsbr_quiescent(r3);
    /* The same reader passing twice does not stand in for another. */
    qsbr_quiescent(r1);
    assert_int_equal(qsbr_poll(), 1);
    assert_int_equal(nfreed, 0);
    qsbr_quiescent(r2);
    assert_int_equal(qsbr_poll(), 0);
    assert_int_equal(nfreed, 1);
    assert_true(was_freed(1));
    /* Freed once only. */
    assert_int_equal(qsbr_poll(), 0);
    assert_int_equal(nfreed, 1);
    qsbr_unregister(r1);
    qsbr_unregister(r2);
    qsbr_unregister(r3);
}

static void test_quiescent_before_retire_does_not_count(void **state)
{
    int a = 1;
    int r = qsbr_register();

    (void)state;
    assert_true(r >= 0);
    /* A quiescent point before the retirement says nothing about a
     * pointer the reader may have loaded after it. */
    qsbr_quiescent(r);
    qsbr_retire(&a, fake_free);
    assert_int_equal(qsbr_poll(), 1);
    assert_int_equal(nfreed, 0);
    qsbr_quiescent(r);
    assert_int_equal(qsbr_poll(), 0);
    assert_true(was_freed(1));
    qsbr_unregister(r);
}

static void test_unregistered_reader_does_not_block(void **state)
{
    int a = 1;
    int r1 = qsbr_register(), r2 = qsbr_register();

    (void)state;
    assert_true(r1 >= 0 && r2 >= 0);
    qsbr_retire(&a, fake_free);
    qsbr_quiescent(r1);
    assert_int_equal(qsbr_poll(), 1);
    /* r2 exits without ever passing a quiescent point again. */
    qsbr_unregister(r2);
    assert_int_equal(qsbr_poll(), 0);
    assert_true(was_freed(1));
    qsbr_unregister(r1);
}

static void test_late_reader_does_not_block(void **state)
{
    int a = 1;
    int r1 = qsbr_register(), r2;

    (void)state;
    assert_true(r1 >= 0);
    qsbr_retire(&a, fake_free);
    /* A reader that registers after the retirement can only have loaded
     * the new snapshot, so it is not waited for. */
    r2 = qsbr_register();
    assert_true(r2 >= 0);
    assert_int_equal(qsbr_poll(), 1);
    qsbr_quiescent(r1);
    assert_int_equal(qsbr_poll(), 0);
    assert_true(was_freed(1));
    qsbr_unregister(r1);
    qsbr_unregister(r2);
}

static void test_grace_periods_in_order(void **state)
{
    int a = 1, b = 2, c = 3;
    int r1 = qsbr_register(), r2 = qsbr_register();

    (void)state;
    assert_true(r1 >= 0 && r2 >= 0);
    qsbr_retire(&a, fake_free);
    qsbr_quiescent(r1);
    qsbr_retire(&b, fake_free);
    qsbr_quiescent(r2);
    /* r2 passed after both retirements, r1 only after a's. */
    assert_int_equal(qsbr_poll(), 1);
    assert_int_equal(nfreed, 1);
    assert_true(was_freed(1));
    assert_false(was_freed(2));
    qsbr_retire(&c, fake_free);
    qsbr_quiescent(r1);
    /* r1 passed after b and c, r2 not after c. */
    assert_int_equal(qsbr_poll(), 1);
    assert_true(was_freed(2));
    assert_false(was_freed(3));
    qsbr_quiescent(r2);
    assert_int_equal(qsbr_poll(), 0);
    assert_int_equal(nfreed, 3);
    assert_true(was_freed(3));
    qsbr_unregister(r1);
    qsbr_unregister(r2);
}

static void test_drain(void **state)
{
    int a = 1, b = 2;
    int r = qsbr_register();

    (void)state;
    assert_true(r >= 0);
    qsbr_retire(&a, fake_free);
    qsbr_retire(&b, fake_free);
    assert_int_equal(qsbr_poll(), 2);
    qsbr_unregister(r);
    /* Once no reader runs, drain frees all without waiting. */
    qsbr_retire(&a, fake_free);
    qsbr_drain();
    assert_int_equal(nfreed, 3);
    assert_true(was_freed(1) && was_freed(2));
    assert_int_equal(qsbr_poll(), 0);
    assert_int_equal(nfreed, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_reader_frees_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_reader_must_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiescent_before_retire_does_not_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_reader_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_reader_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_periods_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
