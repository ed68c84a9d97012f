/*
 * test_health.c - unit tests for health/: the rise/fall state machine,
 * passive failures, the HTTP status-line parser (partial, oversized and
 * malformed replies), send/expect matching, log escaping and hook argument
 * substitution. All pure functions: no thread, socket or loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../health/health.h"
#include "../../health/hook.h"
#include "../../health/probe.h"

/* ---- rise / fall ---- */

static void test_fsm_fall(void **state)
{
    struct hc_fsm f = {.up = true};

    (void)state;
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    /* A success in between restarts the count. */
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_SAME);
    assert_int_equal(f.fail, 0);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_true(f.up);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_WENT_DOWN);
    assert_false(f.up);
    assert_int_equal(f.fail, 3);
    /* Further failures change nothing: the change is reported once. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_false(f.up);
}

static void test_fsm_rise(void **state)
{
    struct hc_fsm f = {.up = false};

    (void)state;
    assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 3, 2), HC_SAME);
    assert_int_equal(f.ok, 0);
    assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_WENT_UP);
    assert_true(f.up);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hc_fsm_step(&f, true, 3, 2), HC_SAME);
    /* Down again needs `fall` failures counted from zero. */
    assert_int_equal(hc_fsm_step(&f, false, 3, 2), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 3, 2), HC_WENT_DOWN);
}

static void test_fsm_checking(void **state)
{
    struct hc_fsm f = {.checking = true};

    (void)state;
    /* Up after `rise` successes in a row; a failure restarts the count. */
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(f.ok, 0);
    assert_true(f.checking);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_WENT_UP);
    assert_true(f.up);
    assert_false(f.checking);
    /* Down after `fall` failures in a row, reported once, then the usual
     * rise rule. */
    f = (struct hc_fsm){.checking = true};
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_WENT_DOWN);
    assert_false(f.up);
    assert_false(f.checking);
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_WENT_UP);
    /* Passive failures cannot judge a server that takes no traffic. */
    f = (struct hc_fsm){.checking = true};
    assert_int_equal(hc_fsm_passive(&f, 5, 3), HC_SAME);
    assert_true(f.checking);
}

/* At start-up the first verdict decides either way; then the usual
 * rise/fall rules apply. */
static void test_fsm_first(void **state)
{
    struct hc_fsm f = {.checking = true, .first = true};

    (void)state;
    assert_int_equal(hc_fsm_step(&f, true, 3, 3), HC_WENT_UP);
    assert_true(f.up);
    assert_false(f.checking || f.first);
    assert_int_equal(hc_fsm_step(&f, false, 3, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 3, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, false, 3, 3), HC_WENT_DOWN);
    f = (struct hc_fsm){.checking = true, .first = true};
    assert_int_equal(hc_fsm_step(&f, false, 3, 3), HC_WENT_DOWN);
    assert_false(f.up || f.checking || f.first);
    assert_int_equal(hc_fsm_step(&f, true, 3, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 3, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 3, 3), HC_WENT_UP);
}

static void test_fsm_one(void **state)
{
    struct hc_fsm f = {.up = true};

    (void)state;
    /* rise = fall = 1: every result flips. */
    assert_int_equal(hc_fsm_step(&f, false, 1, 1), HC_WENT_DOWN);
    assert_int_equal(hc_fsm_step(&f, true, 1, 1), HC_WENT_UP);
    assert_int_equal(hc_fsm_step(&f, false, 1, 1), HC_WENT_DOWN);
    assert_int_equal(hc_fsm_step(&f, false, 1, 1), HC_SAME);
}

static void test_fsm_passive(void **state)
{
    struct hc_fsm f = {.up = true};

    (void)state;
    assert_int_equal(hc_fsm_passive(&f, 0, 3), HC_SAME);
    assert_int_equal(hc_fsm_passive(&f, 2, 3), HC_SAME);
    assert_true(f.up);
    /* One failed probe plus two failed client connects make three. */
    assert_int_equal(hc_fsm_step(&f, false, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_passive(&f, 2, 3), HC_WENT_DOWN);
    assert_false(f.up);
    assert_int_equal(f.fail, 3);
    /* Passive failures never bring a server up nor take a down one down again. */
    assert_int_equal(hc_fsm_passive(&f, 10, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_SAME);
    assert_int_equal(hc_fsm_step(&f, true, 2, 3), HC_WENT_UP);
    assert_int_equal(hc_fsm_passive(&f, 3, 3), HC_WENT_DOWN);
}

/* ---- HTTP status line ---- */

static int status_of(const char *s, int *status)
{
    return hc_http_status(s, strlen(s), status);
}

static void test_http_complete(void **state)
{
    static const struct {
        const char *s;
        int status;
    } ok[] = {
        {"HTTP/1.1 200 OK\r\n", 200},
        {"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 503},
        {"HTTP/1.1 204\r\n", 204},
        {"HTTP/1.1 404 \r\n", 404},
        {"HTTP/1.1 301 Moved\n", 301},
        {"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody", 200},
        {"HTTP/1.1 599 a\treason\r\n", 599},
        {"HTTP/2.0 100 Continue\r\n", 100},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int st = -1;

        assert_int_equal(status_of(ok[i].s, &st), 1);
        assert_int_equal(st, ok[i].status);
    }
}

/* Every strict prefix of a good status line asks for more, byte by byte. */
static void test_http_partial(void **state)
{
    const char *line = "HTTP/1.1 200 OK\r\n";
    size_t n = strlen(line);
    int st = -1;

    (void)state;
    for (size_t len = 0; len < n; len++)
        assert_int_equal(hc_http_status(line, len, &st), 0);
    assert_int_equal(hc_http_status(line, n, &st), 1);
    assert_int_equal(st, 200);
}

static void test_http_malformed(void **state)
{
    static const char *const bad[] = {
        "http/1.1 200 OK\r\n",
        "HTTP/1.1 20 OK\r\n",
        "HTTP/1.1 2000 OK\r\n",
        "HTTP/1.1 2x0 OK\r\n",
        "HTTP/11 200 OK\r\n",
        "HTTP/1.1  200 OK\r\n",
        "HTTP/1.1 200OK\r\n",
        "HTTP/1.1 099 Low\r\n",
        "HTTP/1.1 200 O\x01K\r\n",
        "HTTP/1.1 200 OK\r\r\n",
        "HTTP/1.1\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
        "+PONG\r\n",
        "\r\n",
        "\n",
        "H\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = -1;

        if (status_of(bad[i], &st) != -EINVAL)
            print_error("accepted: '%s'\n", bad[i]);
        assert_int_equal(status_of(bad[i], &st), -EINVAL);
    }
    /* Garbage is rejected from its first byte, without waiting for more. */
    {
        int st;

        assert_int_equal(hc_http_status("X", 1, &st), -EINVAL);
        assert_int_equal(hc_http_status("HTTP/1.1 2", 10, &st), 0);
        assert_int_equal(hc_http_status("HTTP/1.1 2a", 11, &st), -EINVAL);
        /* NUL bytes in the reply are not a line end. */
        assert_int_equal(hc_http_status("HTTP/1.1 200 \0K\r\n", 17, &st), -EINVAL);
    }
}

static void test_http_oversized(void **state)
{
    char buf[2 * HC_STATUS_LINE_MAX];
    int st = -1;

    (void)state;
    memcpy(buf, "HTTP/1.1 200 ", 13);
    memset(buf + 13, 'x', sizeof(buf) - 13);
    assert_int_equal(hc_http_status(buf, HC_STATUS_LINE_MAX - 1, &st), 0);
    assert_int_equal(hc_http_status(buf, HC_STATUS_LINE_MAX, &st), -E2BIG);
    assert_int_equal(hc_http_status(buf, sizeof(buf), &st), -E2BIG);
    /* A line end beyond the limit does not count. */
    buf[HC_STATUS_LINE_MAX + 10] = '\n';
    assert_int_equal(hc_http_status(buf, sizeof(buf), &st), -E2BIG);
    /* Just within the limit is fine. */
    buf[HC_STATUS_LINE_MAX - 2] = '\r';
    buf[HC_STATUS_LINE_MAX - 1] = '\n';
    assert_int_equal(hc_http_status(buf, sizeof(buf), &st), 1);
    assert_int_equal(st, 200);
}

/* ---- send / expect ---- */

static void test_expect(void **state)
{
    const char *pong = "+PONG\r\n";

    (void)state;
    assert_int_equal(hc_expect_match("", 0, pong, 7), 0);
    assert_int_equal(hc_expect_match("+PO", 3, pong, 7), 0);
    assert_int_equal(hc_expect_match("+PONG\r", 6, pong, 7), 0);
    assert_int_equal(hc_expect_match("+PONG\r\n", 7, pong, 7), 1);
    assert_int_equal(hc_expect_match("+PONG\r\nextra", 12, pong, 7), 1);
    assert_int_equal(hc_expect_match("-ERR", 4, pong, 7), -EINVAL);
    assert_int_equal(hc_expect_match("+PANG\r\n", 7, pong, 7), -EINVAL);
    assert_int_equal(hc_expect_match("+pong\r\n", 7, pong, 7), -EINVAL);
    /* Binary expectations, NUL bytes included. */
    assert_int_equal(hc_expect_match("\0\1\2", 3, "\0\1\2", 3), 1);
    assert_int_equal(hc_expect_match("\0\1", 2, "\0\1\2", 3), 0);
    assert_int_equal(hc_expect_match("\0\2", 2, "\0\1\2", 3), -EINVAL);
}

static void test_printable(void **state)
{
    char out[64], tiny[6];

    (void)state;
    assert_string_equal(hc_printable("-ERR x\r\n", 8, out, sizeof(out)), "-ERR x\\r\\n");
    assert_string_equal(hc_printable("a\0b\x7f\\", 5, out, sizeof(out)), "a\\x00b\\x7f\\x5c");
    /* Cut at a whole escape, always terminated. */
    assert_string_equal(hc_printable("ab\r\ncd", 6, tiny, sizeof(tiny)), "ab\\r");
    assert_string_equal(hc_printable("", 0, out, sizeof(out)), "");
}

/* ---- hook arguments ---- */

static void test_hook_expand(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(hc_hook_expand("%b/%s@%a", "app", "b", "127.0.0.1:9002", out, sizeof(out)),
                     strlen("app/b@127.0.0.1:9002"));
    assert_string_equal(out, "app/b@127.0.0.1:9002");
    assert_int_equal(hc_hook_expand("100%%", "x", "y", "z", out, sizeof(out)), 4);
    assert_string_equal(out, "100%");
    assert_int_equal(hc_hook_expand("plain", "x", "y", "z", out, sizeof(out)), 5);
    assert_string_equal(out, "plain");
    assert_int_equal(hc_hook_expand("", "x", "y", "z", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* A value is one argument whatever it holds: no re-splitting. */
    assert_int_equal(hc_hook_expand("--name=%s", "x", "a b;rm -rf /", "z", out, sizeof(out)),
                     strlen("--name=a b;rm -rf /"));
    assert_string_equal(out, "--name=a b;rm -rf /");
    /* A substituted value is not expanded again. */
    assert_int_equal(hc_hook_expand("%s", "B", "%b", "z", out, sizeof(out)), 2);
    assert_string_equal(out, "%b");
    /* Unknown or cut sequences. */
    assert_int_equal(hc_hook_expand("%x", "x", "y", "z", out, sizeof(out)), -EINVAL);
    assert_int_equal(hc_hook_expand("50%", "x", "y", "z", out, sizeof(out)), -EINVAL);
    /* Too long for <out>. */
    assert_int_equal(hc_hook_expand("%a", "x", "y", "0123456789", out, 10), -E2BIG);
    assert_int_equal(hc_hook_expand("%a", "x", "y", "012345678", out, 10), 9);
    assert_int_equal(hc_hook_expand("0123456789", "x", "y", "z", out, 10), -E2BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fsm_fall),       cmocka_unit_test(test_fsm_rise),
        cmocka_unit_test(test_fsm_one),        cmocka_unit_test(test_fsm_passive),
        cmocka_unit_test(test_fsm_checking),   cmocka_unit_test(test_fsm_first),
        cmocka_unit_test(test_http_complete),  cmocka_unit_test(test_http_partial),
        cmocka_unit_test(test_http_malformed), cmocka_unit_test(test_http_oversized),
        cmocka_unit_test(test_expect),         cmocka_unit_test(test_printable),
        cmocka_unit_test(test_hook_expand),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
