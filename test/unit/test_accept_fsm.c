/*
 * test_accept_fsm.c - the accept state of a listener (core/accept_fsm.h):
 * one test per transition, and the two orders in which a resume and the
 * final completion of a cancelled accept can arrive (the first order once
 * left a worker that never accepted again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../core/accept_fsm.h"

static struct accept_fsm in(enum accept_state s, int multi)
{
    struct accept_fsm f = {.state = (uint8_t)s, .multi = (uint8_t)multi};

    return f;
}

#define STEP(f, ev, want, act, to)                                                                 \
    do {                                                                                           \
        assert_int_equal(accept_fsm_step(&(f), (ev), (want)), (act));                              \
        assert_int_equal((f).state, (to));                                                         \
    } while (0)

static void test_idle(void **state)
{
    struct accept_fsm f = in(ACC_IDLE, 0);

    (void)state;
    STEP(f, ACC_EV_SYNC, ACC_WANT_NONE, ACC_ACT_NONE, ACC_IDLE);
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
    assert_int_equal(f.multi, 1);
    f = in(ACC_IDLE, 1);
    STEP(f, ACC_EV_SYNC, ACC_WANT_ONE, ACC_ACT_SUBMIT_ONE, ACC_ARMED);
    assert_int_equal(f.multi, 0);
    /* A stray timer does not arm an idle listener twice. */
    f = in(ACC_IDLE, 0);
    STEP(f, ACC_EV_TIMER, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_IDLE);
    STEP(f, ACC_EV_CLOSE, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CLOSED);
}

static void test_armed(void **state)
{
    struct accept_fsm f = in(ACC_ARMED, 1);

    (void)state;
    /* Still wanted as it is: nothing to do. */
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_ARMED);
    /* max_conns reached: stop it. */
    STEP(f, ACC_EV_SYNC, ACC_WANT_NONE, ACC_ACT_CANCEL, ACC_CANCELLING);
    /* Near max_conns, a multishot op is stopped to take one at a time... */
    f = in(ACC_ARMED, 1);
    STEP(f, ACC_EV_SYNC, ACC_WANT_ONE, ACC_ACT_CANCEL, ACC_CANCELLING);
    /* ...and a single one wanted multishot just ends by itself. */
    f = in(ACC_ARMED, 0);
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_ARMED);
    STEP(f, ACC_EV_SYNC, ACC_WANT_ONE, ACC_ACT_NONE, ACC_ARMED);
    /* The final completion re-arms with what is wanted now. */
    STEP(f, ACC_EV_FINAL, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
    STEP(f, ACC_EV_FINAL, ACC_WANT_ONE, ACC_ACT_SUBMIT_ONE, ACC_ARMED);
    STEP(f, ACC_EV_FINAL, ACC_WANT_NONE, ACC_ACT_NONE, ACC_IDLE);
    /* An error backs off. */
    f = in(ACC_ARMED, 1);
    STEP(f, ACC_EV_FINAL_ERROR, ACC_WANT_MULTI, ACC_ACT_ARM_TIMER, ACC_BACKOFF);
    /* Closing cancels the op in flight. */
    f = in(ACC_ARMED, 1);
    STEP(f, ACC_EV_CLOSE, ACC_WANT_MULTI, ACC_ACT_CANCEL, ACC_CLOSED);
}

static void test_cancelling(void **state)
{
    struct accept_fsm f = in(ACC_CANCELLING, 1);

    (void)state;
    /* Whatever is wanted, the op is still in flight: wait for its end. */
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CANCELLING);
    STEP(f, ACC_EV_SYNC, ACC_WANT_NONE, ACC_ACT_NONE, ACC_CANCELLING);
    STEP(f, ACC_EV_TIMER, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CANCELLING);
    STEP(f, ACC_EV_FINAL, ACC_WANT_NONE, ACC_ACT_NONE, ACC_IDLE);
    f = in(ACC_CANCELLING, 1);
    STEP(f, ACC_EV_FINAL, ACC_WANT_ONE, ACC_ACT_SUBMIT_ONE, ACC_ARMED);
    f = in(ACC_CANCELLING, 1);
    STEP(f, ACC_EV_FINAL_ERROR, ACC_WANT_ONE, ACC_ACT_ARM_TIMER, ACC_BACKOFF);
    /* Already cancelled: closing has nothing more to cancel. */
    f = in(ACC_CANCELLING, 1);
    STEP(f, ACC_EV_CLOSE, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CLOSED);
}

static void test_backoff(void **state)
{
    struct accept_fsm f = in(ACC_BACKOFF, 1);

    (void)state;
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_BACKOFF);
    STEP(f, ACC_EV_FINAL, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_BACKOFF);
    STEP(f, ACC_EV_TIMER, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
    f = in(ACC_BACKOFF, 1);
    STEP(f, ACC_EV_TIMER, ACC_WANT_NONE, ACC_ACT_NONE, ACC_IDLE);
    f = in(ACC_BACKOFF, 1);
    STEP(f, ACC_EV_CLOSE, ACC_WANT_MULTI, ACC_ACT_DISARM_TIMER, ACC_CLOSED);
}

static void test_closed_absorbs(void **state)
{
    static const enum accept_event evs[] = {ACC_EV_SYNC, ACC_EV_FINAL, ACC_EV_FINAL_ERROR,
                                            ACC_EV_TIMER, ACC_EV_CLOSE};
    struct accept_fsm f = in(ACC_CLOSED, 1);

    (void)state;
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        STEP(f, evs[i], ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CLOSED);
}

/*
 * max_conns reached, the accept is cancelled, and a slot frees up before
 * the cancellation completes: the resume finds the op still in flight, so
 * the final completion must be what re-arms it.
 */
static void test_resume_before_cancel_completes(void **state)
{
    struct accept_fsm f = in(ACC_IDLE, 0);

    (void)state;
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
    STEP(f, ACC_EV_SYNC, ACC_WANT_NONE, ACC_ACT_CANCEL, ACC_CANCELLING);
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_NONE, ACC_CANCELLING); /* resume */
    STEP(f, ACC_EV_FINAL, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
}

/* The other order: the cancellation completes, then the slot frees up. */
static void test_cancel_completes_before_resume(void **state)
{
    struct accept_fsm f = in(ACC_IDLE, 0);

    (void)state;
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED);
    STEP(f, ACC_EV_SYNC, ACC_WANT_NONE, ACC_ACT_CANCEL, ACC_CANCELLING);
    STEP(f, ACC_EV_FINAL, ACC_WANT_NONE, ACC_ACT_NONE, ACC_IDLE);
    STEP(f, ACC_EV_SYNC, ACC_WANT_MULTI, ACC_ACT_SUBMIT_MULTI, ACC_ARMED); /* resume */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_armed),
        cmocka_unit_test(test_cancelling),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_closed_absorbs),
        cmocka_unit_test(test_resume_before_cancel_completes),
        cmocka_unit_test(test_cancel_completes_before_resume),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
