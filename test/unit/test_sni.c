/*
 * test_sni.c - the ClientHello reader and the sni = rules (core/sni.c):
 * a real hello from openssl s_client, hellos built here with a name, a
 * size and a number of records, fed whole, one byte at a time and in
 * records of every cut; each error reason; and the routing rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/sni.h"

/* openssl s_client -servername a.example.org (OpenSSL 3.0, test/fuzz/corpus/sni). */
static const uint8_t real_hello[] = {
    0x16, 0x03, 0x01, 0x01, 0x3a, 0x01, 0x00, 0x01, 0x36, 0x03, 0x03, 0x07, 0x41, 0x6d, 0x20, 0x7f,
    0xef, 0x18, 0xe8, 0xf5, 0x11, 0x6f, 0x59, 0x2b, 0x79, 0x8b, 0x49, 0xcd, 0xba, 0x96, 0x82, 0xa7,
    0x97, 0xad, 0x7d, 0x10, 0x2f, 0xcb, 0xa2, 0x4a, 0x02, 0x84, 0xaa, 0x20, 0x83, 0x49, 0x9a, 0x84,
    0xa3, 0xca, 0x18, 0xec, 0xf8, 0x39, 0x31, 0xea, 0xbc, 0xbd, 0x4a, 0x55, 0x69, 0xcf, 0x77, 0x51,
    0x5f, 0xed, 0x33, 0xa8, 0xfd, 0x2a, 0xb7, 0x5c, 0xf2, 0x32, 0xd7, 0x8c, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xaf,
    0x00, 0x00, 0x00, 0x12, 0x00, 0x10, 0x00, 0x00, 0x0d, 0x61, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a,
    0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00,
    0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
    0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06,
    0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02,
    0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00,
    0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x0c,
    0xf7, 0xf3, 0x7f, 0x9d, 0x21, 0x39, 0xee, 0xf3, 0x96, 0x42, 0xf1, 0xb6, 0x9d, 0x24, 0x15, 0x65,
    0x6b, 0x4c, 0x33, 0xc8, 0x25, 0xb0, 0xb0, 0x69, 0xa8, 0x1e, 0x33, 0xf4, 0x75, 0x10, 0x28};

static size_t put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

/*
 * A ClientHello handshake message naming <name> (none when NULL), with a
 * padding extension of <pad> bytes. Returns its length.
 */
static size_t build_hs(uint8_t *out, const char *name, size_t pad)
{
    uint8_t *p = out + 4, *ext;
    size_t n;

    p += put16(p, 0x0303);
    memset(p, 0xab, 32);
    p += 32;
    *p++ = 0;         /* session id */
    p += put16(p, 2); /* cipher suites */
    p += put16(p, 0x1301);
    *p++ = 1; /* compression */
    *p++ = 0;
    ext = p;
    p += 2;
    if (name) {
        n = strlen(name);
        p += put16(p, 0); /* server_name */
        p += put16(p, n + 5);
        p += put16(p, n + 3);
        *p++ = 0;
        p += put16(p, n);
        memcpy(p, name, n);
        p += n;
    }
    p += put16(p, 0x002b); /* supported_versions: TLS 1.3 */
    p += put16(p, 3);
    *p++ = 2;
    p += put16(p, 0x0304);
    if (pad) {
        p += put16(p, 0x0015);
        p += put16(p, pad);
        memset(p, 0, pad);
        p += pad;
    }
    put16(ext, (size_t)(p - ext - 2));
    n = (size_t)(p - out);
    out[0] = 1;
    out[1] = (uint8_t)((n - 4) >> 16);
    out[2] = (uint8_t)((n - 4) >> 8);
    out[3] = (uint8_t)(n - 4);
    return n;
}

/* The handshake bytes <hs> wrapped in records of at most <rec> bytes. */
static size_t wrap(uint8_t *out, const uint8_t *hs, size_t n, size_t rec)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i += rec) {
        size_t k = n - i < rec ? n - i : rec;

        out[o++] = 22;
        out[o++] = 3;
        out[o++] = 1;
        o += put16(out + o, k);
        memcpy(out + o, hs + i, k);
        o += k;
    }
    return o;
}

/* Every proper prefix needs more; the whole gives <st> (and <name>). */
static void expect_only_at_end(const uint8_t *buf, size_t len, enum sni_status st, const char *name)
{
    struct sni_result r;

    for (size_t i = 0; i < len; i++) {
        if (sni_parse(buf, i, &r) != SNI_NEED_MORE)
            fail_msg("prefix %zu of %zu: %s", i, len, sni_status_name(r.status));
    }
    assert_int_equal(sni_parse(buf, len, &r), st);
    assert_int_equal(r.consumed, st == SNI_FOUND || st == SNI_NO_NAME ? len : r.consumed);
    if (name) {
        assert_string_equal(r.name, name);
        assert_int_equal(r.len, strlen(name));
    }
}

static void test_real_hello(void **state)
{
    (void)state;
    expect_only_at_end(real_hello, sizeof(real_hello), SNI_FOUND, "a.example.org");
}

static void test_records_of_every_size(void **state)
{
    static uint8_t hs[4096], buf[4096 * 6];
    size_t n = build_hs(hs, "Www.Example.COM", 0), len;

    (void)state;
    /* 1-byte records: even the 4-byte handshake header is cut up. */
    for (size_t rec = 1; rec <= n; rec += (rec < 8 ? 1 : 37)) {
        len = wrap(buf, hs, n, rec);
        expect_only_at_end(buf, len, SNI_FOUND, "www.example.com");
    }
}

/* A 2.5 KB hello (the size post-quantum key shares give) in two records,
 * more than one TCP segment of a 1500-byte MTU. */
static void test_big_hello_two_records(void **state)
{
    static uint8_t hs[4096], buf[8192];
    size_t n = build_hs(hs, "pq.example.net", 2400), len = wrap(buf, hs, n, 1400);
    struct sni_result r;

    (void)state;
    assert_true(n > 2400);
    expect_only_at_end(buf, len, SNI_FOUND, "pq.example.net");
    /* Once the lengths are known, a caller may wait for the rest: the end
     * of the first record (then the next header's first byte decides),
     * and in the second record the end of the hello. */
    assert_int_equal(sni_parse(buf, 3, &r), SNI_NEED_MORE);
    assert_int_equal(r.want, 4);
    assert_int_equal(sni_parse(buf, 20, &r), SNI_NEED_MORE);
    assert_int_equal(r.want, 5 + 1400 + 1);
    assert_int_equal(sni_parse(buf, 5 + 1400 + 5 + 10, &r), SNI_NEED_MORE);
    assert_int_equal(r.want, len);
    /* Bytes after the hello (early data, the next record) change nothing. */
    memset(buf + len, 0x17, 100);
    assert_int_equal(sni_parse(buf, len + 100, &r), SNI_FOUND);
    assert_int_equal(r.consumed, len);
}

static void test_no_name(void **state)
{
    static uint8_t hs[512], buf[1024];
    size_t len = wrap(buf, hs, build_hs(hs, NULL, 10), 16384);

    (void)state;
    expect_only_at_end(buf, len, SNI_NO_NAME, "");
}

static void test_not_tls(void **state)
{
    struct sni_result r;

    (void)state;
    assert_int_equal(sni_parse((const uint8_t *)"G", 1, &r), SNI_ERR_NOT_TLS);
    assert_int_equal(sni_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &r), SNI_ERR_NOT_TLS);
    /* SSLv2-style and a handshake record of another major version. */
    assert_int_equal(sni_parse((const uint8_t *)"\x80\x2e\x01", 3, &r), SNI_ERR_NOT_TLS);
    assert_int_equal(sni_parse((const uint8_t *)"\x16\x02", 2, &r), SNI_ERR_NOT_TLS);
    assert_int_equal(sni_parse((const uint8_t *)"\x16", 1, &r), SNI_NEED_MORE);
    assert_int_equal(sni_parse(NULL, 0, &r), SNI_NEED_MORE);
}

static void test_not_hello(void **state)
{
    struct sni_result r;

    (void)state;
    /* A ServerHello (type 2) decides on its first handshake byte. */
    assert_int_equal(sni_parse((const uint8_t *)"\x16\x03\x03\x00\x04\x02", 6, &r),
                     SNI_ERR_NOT_HELLO);
}

static void test_too_big(void **state)
{
    static uint8_t buf[SNI_MAX_INPUT + 16];
    struct sni_result r;
    size_t o = 0;

    (void)state;
    /* Announced: a 65 KB hello is refused once its length is read. */
    assert_int_equal(sni_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x01\x00\x00", 9, &r),
                     SNI_ERR_TOO_BIG);
    /* Used: 1-byte records of a 16 KB hello carry more than SNI_MAX_INPUT. */
    buf[o++] = 22, buf[o++] = 3, buf[o++] = 1, o += put16(buf + o, 4);
    buf[o++] = 1, buf[o++] = 0, buf[o++] = 0x3f, buf[o++] = 0xf0;
    while (o + 6 <= sizeof(buf)) {
        buf[o++] = 22, buf[o++] = 3, buf[o++] = 1, o += put16(buf + o, 1);
        buf[o++] = 0;
    }
    assert_int_equal(sni_parse(buf, SNI_MAX_INPUT - 1, &r), SNI_NEED_MORE);
    assert_int_equal(sni_parse(buf, SNI_MAX_INPUT, &r), SNI_ERR_TOO_BIG);
    assert_int_equal(sni_parse(buf, o, &r), SNI_ERR_TOO_BIG);
}

/* <hs> with byte <at> set to <v>, in one record, parsed. */
static enum sni_status poke(const uint8_t *hs, size_t n, size_t at, uint8_t v)
{
    static uint8_t copy[4096], buf[4096 + 5];
    struct sni_result r;

    memcpy(copy, hs, n);
    copy[at] = v;
    return sni_parse(buf, wrap(buf, copy, n, 16384), &r);
}

static void test_malformed(void **state)
{
    static uint8_t hs[512], buf[1024];
    /* Where the server_name extension starts: header, version, random,
     * session id, cipher suites, compression, extensions length. */
    size_t n = build_hs(hs, "ab.example", 0), sni_at = 4 + 2 + 32 + 1 + 4 + 2 + 2;
    struct sni_result r;
    size_t len;

    (void)state;
    assert_int_equal(poke(hs, n, 0, 1), SNI_FOUND);               /* unchanged: the baseline */
    assert_int_equal(poke(hs, n, 4 + 34, 33), SNI_ERR_MALFORMED); /* session id > 32 */
    assert_int_equal(poke(hs, n, 4 + 34 + 1 + 1, 3), SNI_ERR_MALFORMED); /* odd cipher list */
    assert_int_equal(poke(hs, n, sni_at - 1, 9), SNI_ERR_MALFORMED);     /* extensions length */
    assert_int_equal(poke(hs, n, sni_at + 10, '/'), SNI_ERR_MALFORMED);  /* a bad name byte */
    assert_int_equal(poke(hs, n, sni_at + 5, 2), SNI_ERR_MALFORMED);     /* list length */
    assert_int_equal(poke(hs, n, sni_at + 8, 0), SNI_ERR_MALFORMED);     /* empty host_name */
    /* supported_versions turned into a second server_name extension. */
    assert_int_equal(poke(hs, n, sni_at + 4 + 5 + 10 + 1, 0), SNI_ERR_MALFORMED);
    /* A zero-length record, and an alert between two parts of the hello. */
    assert_int_equal(sni_parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, &r), SNI_ERR_MALFORMED);
    len = wrap(buf, hs, 10, 16384);
    memcpy(buf + len, "\x15\x03\x01\x00\x02\x02\x28", 7);
    assert_int_equal(sni_parse(buf, len + 7, &r), SNI_ERR_MALFORMED);
    assert_int_equal(sni_parse(buf, len, &r), SNI_NEED_MORE);
}

static void test_routes(void **state)
{
    struct sni_routes *r = sni_routes_new();
    uint32_t t = 0;

    (void)state;
    assert_non_null(r);
    assert_int_equal(sni_routes_add(r, "*.example.com", 1), 0);
    assert_int_equal(sni_routes_add(r, "WWW.example.com", 2), 0);
    assert_int_equal(sni_routes_add(r, "*.b.example.com", 3), 0);
    assert_int_equal(sni_routes_add(r, "other.org", 4), 0);
    assert_int_equal(sni_routes_add(r, "*example.com", 9), -EINVAL);
    assert_int_equal(sni_routes_add(r, "a..b", 9), -EINVAL);
    assert_int_equal(sni_routes_add(r, "*.", 9), -EINVAL);
    assert_int_equal(sni_routes_add(r, "a b", 9), -EINVAL);
    assert_int_equal(sni_routes_build(r), 0);
#define FIND(name) (t = 0, sni_routes_find(r, name, strlen(name), &t) ? (int)t : -1)
    assert_int_equal(FIND("www.example.com"), 2); /* exact beats wildcard */
    assert_int_equal(FIND("api.example.com"), 1);
    assert_int_equal(FIND("x.y.example.com"), 1); /* several labels */
    assert_int_equal(FIND("a.b.example.com"), 3); /* the longest wildcard */
    assert_int_equal(FIND("example.com"), -1);    /* a wildcard needs a label */
    assert_int_equal(FIND("other.org"), 4);
    assert_int_equal(FIND("x.other.org"), -1);
    assert_int_equal(FIND("wexample.com"), -1);
#undef FIND
    assert_false(sni_routes_find(NULL, "a", 1, &t));
    assert_ptr_equal(sni_routes_ref(r), r);
    sni_routes_unref(r);
    sni_routes_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_hello),
        cmocka_unit_test(test_records_of_every_size),
        cmocka_unit_test(test_big_hello_two_records),
        cmocka_unit_test(test_no_name),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_not_hello),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_routes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
