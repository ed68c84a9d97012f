/*
 * test_admin.c - unit tests for the admin server's request parser and
 * query parsing (core/admin.c) and the escaping helpers of core/metrics.c.
 * Pure functions: no thread, no socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

static struct sockaddr_storage addr(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return ss;
}

static bool auth_ok(const char *host, const char *ip, unsigned port)
{
    struct sockaddr_storage ss = addr(ip, port);

    return admin_authority_ok(host, strlen(host), (struct sockaddr *)&ss);
}

static void test_authority(void **state)
{
    (void)state;
    /* The address itself, and on loopback the usual names of loopback. */
    assert_true(auth_ok("127.0.0.1:9100", "127.0.0.1", 9100));
    assert_true(auth_ok("localhost:9100", "127.0.0.1", 9100));
    assert_true(auth_ok("LocalHost:9100", "127.0.0.1", 9100));
    assert_true(auth_ok("[::1]:9100", "127.0.0.1", 9100));
    assert_true(auth_ok("127.0.0.2:9100", "127.0.0.2", 9100));
    assert_true(auth_ok("127.0.0.1:9100", "127.0.0.2", 9100));
    assert_true(auth_ok("[::1]:9100", "::1", 9100));
    assert_true(auth_ok("localhost:9100", "::1", 9100));
    assert_true(auth_ok("127.0.0.1:9100", "::1", 9100));
    assert_true(auth_ok("[0:0::1]:9100", "::1", 9100));
    assert_true(auth_ok("10.1.2.3:9100", "10.1.2.3", 9100));
    assert_true(auth_ok("[2001:db8::1]:9100", "2001:db8::1", 9100));
    assert_true(auth_ok("10.1.2.3:9100", "::ffff:10.1.2.3", 9100));
    /* No port is port 80. */
    assert_true(auth_ok("localhost", "127.0.0.1", 80));
    assert_true(auth_ok("10.1.2.3", "10.1.2.3", 80));
    assert_false(auth_ok("localhost", "127.0.0.1", 9100));
    assert_false(auth_ok("127.0.0.1", "127.0.0.1", 9100));

    /* Names (DNS rebinding), other addresses and ports, and junk. */
    assert_false(auth_ok("evil.example:9100", "127.0.0.1", 9100));
    assert_false(auth_ok("evil.example", "127.0.0.1", 80));
    assert_false(auth_ok("localhost.:9100", "127.0.0.1", 9100));
    assert_false(auth_ok("localhost:9100", "10.1.2.3", 9100));
    assert_false(auth_ok("127.0.0.1:9100", "10.1.2.3", 9100));
    assert_false(auth_ok("[::1]:9100", "10.1.2.3", 9100));
    assert_false(auth_ok("10.1.2.4:9100", "10.1.2.3", 9100));
    assert_false(auth_ok("127.0.0.1:9101", "127.0.0.1", 9100));
    assert_false(auth_ok("127.0.0.1:09100", "127.0.0.1", 9100));
    assert_false(auth_ok("127.0.0.1:", "127.0.0.1", 9100));
    assert_false(auth_ok("127.0.0.1:9100:1", "127.0.0.1", 9100));
    assert_false(auth_ok("127.0.0.1:+9100", "127.0.0.1", 9100));
    assert_false(auth_ok("127.1:9100", "127.0.0.1", 9100));
    assert_false(auth_ok("0x7f.0.0.1:9100", "127.0.0.1", 9100));
    assert_false(auth_ok("[::1:9100", "::1", 9100));
    assert_false(auth_ok("[::1]9100", "::1", 9100));
    assert_false(auth_ok("[]:9100", "::1", 9100));
    assert_false(auth_ok("::1:9100", "::1", 9100));
    assert_false(auth_ok("[fe80::1%25lo]:9100", "::1", 9100));
    assert_false(auth_ok("user@127.0.0.1:9100", "127.0.0.1", 9100));
    assert_false(auth_ok("", "127.0.0.1", 80));
    assert_false(auth_ok(":9100", "127.0.0.1", 9100));
}

/* admin_check_request of <req> arriving at <ip>:<port> (NULL: a unix
 * socket) under <acc> (NULL: no token). */
static int check_acc(const char *req, const char *ip, unsigned port, const struct admin_access *acc)
{
    struct sockaddr_storage ss;
    struct admin_req r;

    assert_int_equal(parse(req, &r), 1);
    if (!ip)
        return admin_check_request(&r, NULL, acc);
    ss = addr(ip, port);
    return admin_check_request(&r, (struct sockaddr *)&ss, acc);
}

static int check(const char *req, const char *ip, unsigned port)
{
    return check_acc(req, ip, port, NULL);
}

/* With admin_token_file: the bearer token, and only it, opens writes (and
 * reads with admin_read_token); Host and Origin are checked as before. */
static void test_token(void **state)
{
    static const char tok[] = "s3cret-token-0123456789";
    struct admin_access acc = {.len = sizeof(tok) - 1};
    const char *post = "POST /api/backends/b/servers/s/drain HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n";
    const char *get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n";
    char req[512];
    static const struct {
        const char *auth; /* the Authorization header line, "" for none */
        int want_write, want_read;
    } cases[] = {
        {"", -401, 0},
        {"Authorization: Bearer s3cret-token-0123456789\r\n", 0, 0},
        {"Authorization: bearer  s3cret-token-0123456789\r\n", 0, 0},
        {"Authorization: Bearer s3cret-token-012345678\r\n", -401, 0},
        {"Authorization: Bearer s3cret-token-01234567890\r\n", -401, 0},
        {"Authorization: Bearer S3cret-token-0123456789\r\n", -401, 0},
        {"Authorization: Basic czNjcmV0\r\n", -401, 0},
        {"Authorization: s3cret-token-0123456789\r\n", -401, 0},
        {"Authorization: Bearer\r\n", -401, 0},
        {"Authorization: Bearer x\r\nAuthorization: Bearer x\r\n", 0, 0}, /* parse: 400 */
    };

    (void)state;
    memcpy(acc.token, tok, sizeof(tok));
    for (size_t i = 0; i + 1 < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req), "%s%s\r\n", post, cases[i].auth);
        acc.read = false;
        if (check_acc(req, "127.0.0.1", 9100, &acc) != cases[i].want_write)
            fail_msg("case %zu: write", i);
        snprintf(req, sizeof(req), "%s%s\r\n", get, cases[i].auth);
        if (check_acc(req, "127.0.0.1", 9100, &acc) != cases[i].want_read)
            fail_msg("case %zu: read", i);
        acc.read = true;
        if (check_acc(req, "127.0.0.1", 9100, &acc) != cases[i].want_write)
            fail_msg("case %zu: read with admin_read_token", i);
    }
    /* The token replaces the content-type proof, not the Host check. */
    assert_int_equal(check_acc("POST /x HTTP/1.1\r\nHost: evil.example:9100\r\nAuthorization: "
                               "Bearer s3cret-token-0123456789\r\n\r\n",
                               "127.0.0.1", 9100, &acc),
                     -421);
    /* Two Authorization headers are malformed. */
    {
        struct admin_req r;

        snprintf(req, sizeof(req), "%s%s\r\n", post, cases[9].auth);
        assert_int_equal(admin_parse_request(req, strlen(req), &r), -400);
    }
}

static void test_check(void **state)
{
    static const struct {
        const char *req;
        const char *ip;
        int want;
    } cases[] = {
        /* Reads: Host must be ours; HTTP/1.0 may omit it. */
        {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n", "127.0.0.1", 0},
        {"GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\n\r\n", "127.0.0.1", 0},
        {"GET /metrics HTTP/1.0\r\n\r\n", "127.0.0.1", 0},
        {"GET /metrics HTTP/1.1\r\n\r\n", "127.0.0.1", -400},
        {"GET /api/backends HTTP/1.1\r\nHost: evil.example:9100\r\n\r\n", "127.0.0.1", -421},
        {"GET /api/backends HTTP/1.0\r\nHost: evil.example:9100\r\n\r\n", "127.0.0.1", -421},
        {"HEAD /stats HTTP/1.1\r\nHost: 127.0.0.1:9101\r\n\r\n", "127.0.0.1", -421},
        {"GET / HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nOrigin: http://127.0.0.1:9100\r\n\r\n",
         "127.0.0.1", 0},
        {"GET / HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nOrigin: http://evil.example\r\n\r\n",
         "127.0.0.1", -403},
        /* Writes: also Content-Type: application/json, and a foreign
         * Origin is refused even with the right Host (CSRF). */
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/json\r\n\r\n",
         "127.0.0.1", 0},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n"
         "Content-Type: Application/JSON; charset=utf-8\r\n\r\n",
         "127.0.0.1", 0},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/json\r\n"
         "Origin: http://localhost:9100\r\n\r\n",
         "127.0.0.1", 0},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n", "127.0.0.1", -415},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: text/plain\r\n\r\n",
         "127.0.0.1", -415},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/jsonx\r\n\r\n",
         "127.0.0.1", -415},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/json\r\n"
         "Origin: http://evil.example\r\n\r\n",
         "127.0.0.1", -403},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/json\r\n"
         "Origin: null\r\n\r\n",
         "127.0.0.1", -403},
        {"POST /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nContent-Type: application/json\r\n"
         "Origin: https://127.0.0.1:9100\r\n\r\n",
         "127.0.0.1", -403},
        /* The request issue #19 found draining a server. */
        {"POST /api/backends/be0/servers/s0/drain HTTP/1.1\r\nHost: evil.example\r\n"
         "Origin: http://evil.example\r\nContent-Type: text/plain\r\n\r\n",
         "127.0.0.1", -421},
        {"DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n", "127.0.0.1", -415},
        {"PUT /x HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n", "127.0.0.1", -415},
        {"POST /x HTTP/1.0\r\nContent-Type: application/json\r\n\r\n", "127.0.0.1", 0},
        /* A wildcard bind: the address the client reached. */
        {"GET / HTTP/1.1\r\nHost: 10.1.2.3:9100\r\n\r\n", "10.1.2.3", 0},
        {"GET / HTTP/1.1\r\nHost: localhost:9100\r\n\r\n", "10.1.2.3", -421},
        /* A unix socket: Host is free, Origin never ours, writes need JSON. */
        {"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", NULL, 0},
        {"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", NULL, 0},
        {"GET / HTTP/1.1\r\n\r\n", NULL, -400},
        {"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n", NULL, 0},
        {"POST /x HTTP/1.1\r\nHost: x\r\n\r\n", NULL, -415},
        {"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Origin: http://x\r\n\r\n",
         NULL, -403},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = check(cases[i].req, cases[i].ip, 9100);

        if (got != cases[i].want)
            print_error("case %zu: got %d, want %d\n", i, got, cases[i].want);
        assert_int_equal(got, cases[i].want);
    }
    assert_true(admin_method_safe("GET"));
    assert_true(admin_method_safe("HEAD"));
    assert_false(admin_method_safe("OPTIONS"));
}

static void test_loopback(void **state)
{
    static const struct {
        const char *ip;
        bool want;
    } cases[] = {
        {"127.0.0.1", true}, {"127.255.0.9", true}, {"::1", true},       {"::ffff:127.0.0.1", true},
        {"0.0.0.0", false},  {"::", false},         {"10.0.0.1", false}, {"::ffff:10.0.0.1", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = addr(cases[i].ip, 9100);

        assert_int_equal(cfg_sockaddr_loopback((struct sockaddr *)&ss), cases[i].want);
    }
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
        cmocka_unit_test(test_good),      cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_bad),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_query),     cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_authority), cmocka_unit_test(test_check),
        cmocka_unit_test(test_token),     cmocka_unit_test(test_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
