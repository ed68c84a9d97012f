/*
 * test_admin.c - unit tests for the admin server's request parser and
 * query parsing (core/admin.c) and the escaping helpers of core/metrics.c.
 * Pure functions: no thread, no socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/admin.h"
#include "../../core/metrics.h"

static int parse(const char *s, struct admin_req *r)
{
    return admin_parse_request(s, strlen(s), r);
}

static void test_good(void **state)
{
    struct admin_req r;
    const char *req = "POST /api/backends/app/servers/a/weight?value=5 HTTP/1.1\r\n"
                      "Host: x\r\nContent-Length: 3\r\n\r\nabc";

    (void)state;
    assert_int_equal(parse(req, &r), 1);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/api/backends/app/servers/a/weight");
    assert_string_equal(r.query, "value=5");
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.body_len, 3);
    assert_int_equal(r.head_len, strlen(req) - 3);
    assert_int_equal(r.host.len, 1);
    assert_memory_equal(r.host.p, "x", 1);
    assert_null(r.origin.p);
    assert_null(r.ctype.p);

    /* Header values are kept without the spaces around them; an empty one
     * is present (non-NULL) with length 0. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nhost:  a:1 \t\r\nContent-Type: application/json\r\n"
                           "ORIGIN:\r\nContent-Length: 007\r\n\r\n",
                           &r),
                     1);
    assert_int_equal(r.host.len, 3);
    assert_memory_equal(r.host.p, "a:1", 3);
    assert_int_equal(r.ctype.len, 16);
    assert_non_null(r.origin.p);
    assert_int_equal(r.origin.len, 0);
    assert_int_equal(r.body_len, 7);

    /* Bare LF line ends and HTTP/1.0 are accepted. */
    assert_int_equal(parse("GET /metrics HTTP/1.0\n\n", &r), 1);
    assert_string_equal(r.path, "/metrics");
    assert_string_equal(r.query, "");
    assert_int_equal(r.minor, 0);
}

static void test_incomplete(void **state)
{
    struct admin_req r;
    const char *full = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";

    (void)state;
    /* Every proper prefix of a valid request asks for more. */
    for (size_t n = 0; n < strlen(full); n++)
        assert_int_equal(admin_parse_request(full, n, &r), 0);
    assert_int_equal(admin_parse_request(full, strlen(full), &r), 1);
}

static void test_bad(void **state)
{
    static const struct {
        const char *req;
        int want;
    } cases[] = {
        {"\x01\x02", -400},
        {"hello\r\n\r\n", -400},
        {"VERYLONGMETHOD", -400},
        {"get / HTTP/1.1\r\n\r\n", -400},
        {"GET x HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {"GET /  HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.2\r\n\r\n", -505},
        {"GET / FTP/1.1\r\n\r\n", -400},
        {"GET /\x7f HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", -413},
        {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", -413},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", -501},
        /* Framing that two readers could take differently (issue #19). */
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", -400},
        /* Headers the policy checks read may not appear twice either. */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nOrigin: http://a\r\nOrigin: http://a\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-type: application/json\r\n"
         "\r\n",
         -400},
    };
    struct admin_req r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = parse(cases[i].req, &r);

        if (got != cases[i].want)
            print_error("case %zu: got %d, want %d\n", i, got, cases[i].want);
        assert_int_equal(got, cases[i].want);
    }
}

static void test_limits(void **state)
{
    static char buf[3 * ADMIN_HEAD_MAX];
    struct admin_req r;
    size_t n;

    (void)state;
    /* A target of ADMIN_TARGET_MAX bytes is too long. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', ADMIN_TARGET_MAX);
    n += ADMIN_TARGET_MAX;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\n\r\n");
    assert_int_equal(admin_parse_request(buf, n, &r), -414);

    /* A head that never ends within ADMIN_HEAD_MAX bytes. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
    memset(buf + n, 'x', ADMIN_HEAD_MAX);
    assert_int_equal(admin_parse_request(buf, ADMIN_HEAD_MAX - 1, &r), 0);
    assert_int_equal(admin_parse_request(buf, ADMIN_HEAD_MAX, &r), -431);

    /* Too many header lines, each small. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= ADMIN_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "A: b\r\n");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    assert_int_equal(admin_parse_request(buf, n, &r), -431);
}

static void test_query(void **state)
{
    uint32_t v = 77;

    (void)state;
    assert_int_equal(admin_query_uint("value=5", "value", 1000, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(admin_query_uint("a=1&value=1000&b=2", "value", 1000, &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(admin_query_uint("value=0", "value", 1000, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(admin_query_uint("value=1001", "value", 1000, &v), -EINVAL);
    assert_int_equal(admin_query_uint("value=", "value", 1000, &v), -EINVAL);
    assert_int_equal(admin_query_uint("value=1x", "value", 1000, &v), -EINVAL);
    assert_int_equal(admin_query_uint("values=1", "value", 1000, &v), -EINVAL);
    assert_int_equal(admin_query_uint("", "value", 1000, &v), -EINVAL);
    assert_int_equal(admin_query_uint("value=99999999999999999999", "value", 1000, &v), -EINVAL);
}

static void test_escapes(void **state)
{
    struct metrics_buf b = {0};

    (void)state;
    metrics_prom_label(&b, "a\"b\\c\nd");
    assert_string_equal(b.p, "a\\\"b\\\\c\\nd");
    metrics_buf_free(&b);
    metrics_json_str(&b, "q\"\\\x01");
    assert_string_equal(b.p, "\"q\\\"\\\\\\u0001\"");
    metrics_buf_free(&b);
    metrics_html(&b, "<a href='x'>&\"");
    assert_string_equal(b.p, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
    metrics_buf_free(&b);
    for (int i = 0; i < 10000; i++)
        metrics_buf_printf(&b, "%d,", i);
    assert_false(b.oom);
    assert_int_equal(strlen(b.p), b.len);
    metrics_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),  cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_bad),   cmocka_unit_test(test_limits),
        cmocka_unit_test(test_query), cmocka_unit_test(test_escapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
