/*
 * test_half_mode.c - the forwarding modes of a direction (core/half_mode.h):
 * every allowed transition, and every other pair refused, so that a change
 * to the table is a change to this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/half_mode.h"

static const struct {
    enum half_mode from, to;
} allowed[] = {
    {HM_COPY, HM_TO_SPLICE},                           /* proved bulk under forward = auto */
    {HM_COPY, HM_TO_STARVED},                          /* a receive found the pool dry */
    {HM_COPY, HM_SPLICE},                              /* forward = splice, at connect */
    {HM_TO_SPLICE, HM_SPLICE},                         /* drained */
    {HM_TO_STARVED, HM_STARVED}, {HM_SPLICE, HM_COPY}, /* no pipe could be had */
    {HM_STARVED, HM_COPY},                             /* idle with buffers again, or no pipe */
    {HM_COPY, HM_SHAPED},        {HM_SHAPED, HM_COPY}, /* a fault took the direction, let go */
    {HM_COPY, HM_PREFIX}, /* connected: a PROXY header / the preamble's bytes go first */
    {HM_PREFIX, HM_COPY}, /* they have gone */
};

static int is_allowed(enum half_mode from, enum half_mode to)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (allowed[i].from == from && allowed[i].to == to)
            return 1;
    }
    return 0;
}

static void test_each_pair(void **state)
{
    (void)state;
    for (int from = 0; from < HM_COUNT; from++) {
        for (int to = 0; to < HM_COUNT; to++) {
            if (half_mode_allowed(from, to) != is_allowed(from, to))
                fail_msg("%s -> %s: table says %d", half_mode_name(from), half_mode_name(to),
                         half_mode_allowed(from, to));
        }
    }
}

/* A draining mode leads only to its splice mode: nothing may copy again
 * (or start another switch) while queued bytes are on their way. */
static void test_draining_only_forward(void **state)
{
    (void)state;
    for (int to = 0; to < HM_COUNT; to++) {
        assert_int_equal(half_mode_allowed(HM_TO_SPLICE, to), to == HM_SPLICE);
        assert_int_equal(half_mode_allowed(HM_TO_STARVED, to), to == HM_STARVED);
    }
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_false(half_mode_allowed(HM_COUNT, HM_COPY));
    assert_false(half_mode_allowed(HM_COPY, HM_COUNT));
    assert_string_equal(half_mode_name(HM_COUNT), "?");
}

static void test_predicates_and_names(void **state)
{
    static const char *const want[HM_COUNT] = {"copy",    "to-splice", "splice", "to-starved",
                                               "starved", "shaped",    "prefix"};

    (void)state;
    for (int m = 0; m < HM_COUNT; m++) {
        assert_string_equal(half_mode_name(m), want[m]);
        assert_int_equal(half_mode_splices(m), m == HM_SPLICE || m == HM_STARVED);
        assert_int_equal(half_mode_draining(m), m == HM_TO_SPLICE || m == HM_TO_STARVED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_pair),
        cmocka_unit_test(test_draining_only_forward),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_predicates_and_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
