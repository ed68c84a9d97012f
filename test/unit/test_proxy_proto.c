/*
 * test_proxy_proto.c - the PROXY protocol reader and writer
 * (core/proxy_proto.c): v1 and v2 headers of each family fed whole and one
 * byte at a time, LOCAL, AF_UNSPEC, TLVs skipped, every malformed case,
 * versions not accepted, and the exact bytes pp_build() writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "../../core/proxy_proto.h"

#define ANY (PP_ACCEPT_V1 | PP_ACCEPT_V2)
#define SIG "\r\n\r\n\0\r\nQUIT\n"

/* Every proper prefix of the header needs more; <len> bytes (and more
 * after them) give <st>. */
static void expect_at(const void *data, size_t len, size_t extra, unsigned acc, enum pp_status st,
                      struct pp_header *h)
{
    for (size_t i = 0; i < len; i++) {
        if (pp_parse(data, i, acc, h) != PP_NEED_MORE)
            fail_msg("prefix %zu of %zu: %s", i, len, pp_status_name(h->status));
    }
    assert_int_equal(pp_parse(data, len + extra, acc, h), st);
    if (st == PP_OK)
        assert_int_equal(h->len, len);
}

static void expect_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    char buf[INET_ADDRSTRLEN];

    assert_int_equal(sin->sin_family, AF_INET);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void expect_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    char buf[INET6_ADDRSTRLEN];

    assert_int_equal(sin6->sin6_family, AF_INET6);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void test_v1(void **state)
{
    static const char t4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.0\r\n";
    static const char t6[] = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    struct pp_header h;

    (void)state;
    expect_at(t4, 45, sizeof(t4) - 1 - 45, ANY, PP_OK, &h);
    assert_int_equal(h.version, 1);
    assert_true(h.has_addr);
    expect_v4(&h.src, "192.0.2.1", 56324);
    expect_v4(&h.dst, "198.51.100.2", 443);
    expect_at(t6, sizeof(t6) - 1, 0, PP_ACCEPT_V1, PP_OK, &h);
    expect_v6(&h.src, "2001:db8::1", 1);
    expect_v6(&h.dst, "::1", 65535);
    expect_at("PROXY UNKNOWN\r\n", 15, 0, ANY, PP_OK, &h);
    assert_false(h.has_addr);
    expect_at("PROXY UNKNOWN ::1 ::2 1 2\r\n", 27, 0, ANY, PP_OK, &h);
    assert_false(h.has_addr);
}

static void test_v1_malformed(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", /* two spaces */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 -2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",                  /* family and address disagree */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",     /* a word missing */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", /* one too many */
        "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", /* a bare LF */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",
        "PROXY UNKNOWNX\r\n",
    };
    char longline[200];
    struct pp_header h;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pp_parse((const uint8_t *)bad[i], strlen(bad[i]), ANY, &h) != PP_ERR_MALFORMED)
            fail_msg("'%s': %s", bad[i], pp_status_name(h.status));
    }
    /* No CRLF within 107 bytes: refused at the 107th, not later. */
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY UNKNOWN ", 14);
    assert_int_equal(pp_parse((uint8_t *)longline, PP_V1_MAX - 1, ANY, &h), PP_NEED_MORE);
    assert_int_equal(pp_parse((uint8_t *)longline, PP_V1_MAX, ANY, &h), PP_ERR_MALFORMED);
}

static void test_not_proxy(void **state)
{
    struct pp_header h;

    (void)state;
    assert_int_equal(pp_parse((const uint8_t *)"GET /", 5, ANY, &h), PP_ERR_NOT_PROXY);
    assert_int_equal(pp_parse((const uint8_t *)"PROXZ", 5, ANY, &h), PP_ERR_NOT_PROXY);
    assert_int_equal(pp_parse((const uint8_t *)"PRO", 3, ANY, &h), PP_NEED_MORE);
    assert_int_equal(pp_parse((const uint8_t *)"\r\n\r\n\0\r\nQUIX", 12, ANY, &h),
                     PP_ERR_NOT_PROXY);
    /* A version the frontend does not take is no PROXY header to it. */
    assert_int_equal(pp_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, PP_ACCEPT_V2, &h),
                     PP_ERR_NOT_PROXY);
    assert_int_equal(pp_parse((const uint8_t *)SIG "\x20\x00\x00\x00", 16, PP_ACCEPT_V1, &h),
                     PP_ERR_NOT_PROXY);
    /* A TLS ClientHello on a frontend that expects a header. */
    assert_int_equal(pp_parse((const uint8_t *)"\x16\x03\x01", 3, ANY, &h), PP_ERR_NOT_PROXY);
}

static void test_v2(void **state)
{
    static const uint8_t t4[] = SIG "\x21\x11\x00\x0c"
                                    "\xc0\x00\x02\x01\x7f\x00\x00\x01\x04\xd2\x00\x50"
                                    "payload";
    /* TCP4 with an authority TLV and an empty NOOP TLV after the addresses. */
    static const uint8_t tlv[] = SIG "\x21\x11\x00\x1a"
                                     "\x0a\x01\x02\x03\x0a\x00\x00\x01\x9c\x40\x01\xbb"
                                     "\x02\x00\x08proxy.me"
                                     "\x04\x00\x00";
    static const uint8_t t6[] = SIG "\x21\x21\x00\x24"
                                    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"
                                    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
                                    "\x00\x05\x00\x06";
    static const uint8_t local[] = SIG "\x20\x11\x00\x0c"
                                       "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    static const uint8_t unspec[] = SIG "\x21\x00\x00\x03xyz";
    struct pp_header h;

    (void)state;
    expect_at(t4, 28, 7, ANY, PP_OK, &h);
    assert_int_equal(h.version, 2);
    expect_v4(&h.src, "192.0.2.1", 1234);
    expect_v4(&h.dst, "127.0.0.1", 80);
    expect_at(tlv, sizeof(tlv) - 1, 0, PP_ACCEPT_V2, PP_OK, &h);
    expect_v4(&h.src, "10.1.2.3", 40000);
    expect_at(t6, sizeof(t6) - 1, 0, ANY, PP_OK, &h);
    expect_v6(&h.src, "2001:db8::7", 5);
    expect_v6(&h.dst, "::1", 6);
    /* LOCAL (a health probe of the proxy in front) and AF_UNSPEC carry no
     * address to use: the connection's own stand. */
    expect_at(local, sizeof(local) - 1, 0, ANY, PP_OK, &h);
    assert_false(h.has_addr);
    expect_at(unspec, sizeof(unspec) - 1, 0, ANY, PP_OK, &h);
    assert_false(h.has_addr);
}

static void test_v2_malformed(void **state)
{
    static const struct {
        const char *what;
        const uint8_t *data;
        size_t len;
        enum pp_status st;
    } bad[] = {
#define B(what, s, st) {what, (const uint8_t *)(s), sizeof(s) - 1, st}
        B("version 1 in a v2 header", SIG "\x11\x11\x00\x00", PP_ERR_MALFORMED),
        B("command 2", SIG "\x22\x11\x00\x00", PP_ERR_MALFORMED),
        B("family 4", SIG "\x21\x41\x00\x00", PP_ERR_MALFORMED),
        B("transport 3", SIG "\x21\x13\x00\x00", PP_ERR_MALFORMED),
        B("TCP4 too short", SIG "\x21\x11\x00\x04\x01\x02\x03\x04", PP_ERR_MALFORMED),
        B("a TLV past the end",
          SIG "\x21\x11\x00\x0f"
              "12345678abcd\x02\x00\x05",
          PP_ERR_MALFORMED),
        B("half a TLV header",
          SIG "\x21\x11\x00\x0e"
              "12345678abcd\x02\x00",
          PP_ERR_MALFORMED),
        B("over PP_MAX_LEN", SIG "\x21\x11\xff\xff", PP_ERR_TOO_BIG),
#undef B
    };
    struct pp_header h;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pp_parse(bad[i].data, bad[i].len, ANY, &h) != bad[i].st)
            fail_msg("%s: %s", bad[i].what, pp_status_name(h.status));
    }
}

static void test_build(void **state)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(1234)};
    struct sockaddr_in d4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(5)};
    struct sockaddr_in6 d6 = {.sin6_family = AF_INET6, .sin6_port = htons(6)};
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/x"};
    uint8_t buf[PP_BUILD_MAX];
    size_t n;

    (void)state;
    inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &d4.sin_addr);
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    inet_pton(AF_INET6, "::1", &d6.sin6_addr);
    n = pp_build(buf, 1, (struct sockaddr *)&s4, (struct sockaddr *)&d4);
    assert_int_equal(n, 40);
    assert_memory_equal(buf, "PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n", n);
    n = pp_build(buf, 2, (struct sockaddr *)&s4, (struct sockaddr *)&d4);
    assert_int_equal(n, 28);
    assert_memory_equal(buf, SIG "\x21\x11\x00\x0c\xc0\x00\x02\x01\x7f\x00\x00\x01\x04\xd2\x00\x50",
                        n);
    n = pp_build(buf, 1, (struct sockaddr *)&s6, (struct sockaddr *)&d6);
    assert_memory_equal(buf, "PROXY TCP6 2001:db8::7 ::1 5 6\r\n", n);
    n = pp_build(buf, 2, (struct sockaddr *)&s6, (struct sockaddr *)&d6);
    assert_int_equal(n, 52);
    assert_memory_equal(buf, SIG "\x21\x21\x00\x24", 16);
    assert_memory_equal(buf + 48, "\x00\x05\x00\x06", 4);
    /* A client on an IPv6 socket with a v4-mapped address, and the other
     * side IPv4: both IPv4. One real IPv6 side makes both IPv6. */
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6.sin6_addr);
    n = pp_build(buf, 1, (struct sockaddr *)&s6, (struct sockaddr *)&d4);
    assert_memory_equal(buf, "PROXY TCP4 192.0.2.9 127.0.0.1 5 80\r\n", n);
    n = pp_build(buf, 1, (struct sockaddr *)&s4, (struct sockaddr *)&d6);
    assert_memory_equal(buf, "PROXY TCP6 ::ffff:192.0.2.1 ::1 1234 6\r\n", n);
    /* Unix clients: UNKNOWN / AF_UNSPEC. */
    n = pp_build(buf, 1, (struct sockaddr *)&un, (struct sockaddr *)&d4);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", n);
    n = pp_build(buf, 2, (struct sockaddr *)&un, NULL);
    assert_int_equal(n, 16);
    assert_memory_equal(buf, SIG "\x21\x00\x00\x00", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1),           cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_not_proxy),    cmocka_unit_test(test_v2),
        cmocka_unit_test(test_v2_malformed), cmocka_unit_test(test_build),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
