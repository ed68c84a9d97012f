/*
 * test_health_mysql.c - unit tests for health/mysql.c: the handshake
 * response byte for byte, mysql_native_password and caching_sha2_password
 * scrambles (values from Python's hashlib), an auth switch, the
 * caching_sha2 fast path and its full authentication with the password
 * encrypted to an RSA key made here (and decrypted again to check it), the
 * role from @@read_only / @@innodb_read_only, COM_QUIT, ERR packets before
 * and after the login, unsupported plugins, sequence errors, truncated,
 * malformed and oversized input, and that every split of a conversation
 * gives the same verdict and sends the same bytes. No socket, no thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../../health/mysql.h"

/* ---- building what a server says ---- */

struct blob {
    size_t len;
    uint8_t b[8192];
};

static void add(struct blob *b, const void *p, size_t n)
{
    assert_true(b->len + n <= sizeof(b->b));
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

/* A packet with sequence id <seq>. */
static void pkt(struct blob *b, uint8_t seq, const void *payload, size_t n)
{
    uint8_t h[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), seq};

    add(b, h, 4);
    add(b, payload, n);
}

#define PKT(b, seq, lit) pkt(b, seq, lit, sizeof(lit) - 1)

static const uint8_t scramble[20] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                     11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

/* A MariaDB 10.11 handshake offering <plugin>. */
static void greeting(struct blob *b, const char *plugin)
{
    uint8_t p[256];
    size_t n = 0;
    uint32_t caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000;
    static const char version[] = "5.5.5-10.11.19-MariaDB-0+deb12u1";

    p[n++] = 10;
    memcpy(p + n, version, sizeof(version));
    n += sizeof(version);
    memcpy(p + n, "\x2a\0\0\0", 4); /* connection id */
    n += 4;
    memcpy(p + n, scramble, 8);
    n += 8;
    p[n++] = 0;
    p[n++] = (uint8_t)caps;
    p[n++] = (uint8_t)(caps >> 8);
    p[n++] = 45;
    p[n++] = 2;
    p[n++] = 0;
    p[n++] = (uint8_t)(caps >> 16);
    p[n++] = (uint8_t)(caps >> 24);
    p[n++] = 21;
    memset(p + n, 0, 10);
    n += 10;
    memcpy(p + n, scramble + 8, 12);
    n += 12;
    p[n++] = 0;
    memcpy(p + n, plugin, strlen(plugin) + 1);
    n += strlen(plugin) + 1;
    pkt(b, 0, p, n);
}

#define OK_PACKET "\0\0\0\2\0\0\0"

/* The result of SELECT @@read_only, @@innodb_read_only: <row> is the row
 * packet's payload. */
static void result(struct blob *b, const void *row, size_t n)
{
    PKT(b, 1, "\2");
    PKT(b, 2, "\3def\0\0\0\x0b@@read_only\0\x0c\x3f\0\1\0\0\0\x08\x80\0\0\0\0");
    PKT(b, 3, "\3def\0\0\0\x12@@innodb_read_only\0\x0c\x3f\0\1\0\0\0\x08\x80\0\0\0\0");
    PKT(b, 4, "\xfe\0\0\2\0");
    pkt(b, 5, row, n);
    PKT(b, 6, "\xfe\0\0\2\0");
}

#define ROW(b, lit) result(b, lit, sizeof(lit) - 1)

static const struct my_params probe = {.user = "probe", .password = "probepw"};

static enum dbw_verdict run(struct my_check *c, const struct my_params *par, const struct blob *b)
{
    my_check_init(c, par);
    return my_feed(c, b->b, b->len);
}

static bool judge(const struct my_check *c, enum dbw_want want, char *why)
{
    return my_judge(c, want, why, DBW_WHY_MAX);
}

static bool ends_with_quit(const struct my_check *c)
{
    return c->out.len >= 5 && memcmp(c->out.b + c->out.len - 5, "\1\0\0\0\1", 5) == 0;
}

/* The <k>th packet the check sent (0-based): payload, length, seq; the
 * test fails when there is none. */
static const uint8_t *sent(const struct my_check *c, int k, size_t *len, uint8_t *seq)
{
    uint32_t pos = 0;

    *len = 0;
    *seq = 0;
    while (pos + 4 <= c->out.len) {
        uint32_t n = c->out.b[pos] | c->out.b[pos + 1] << 8 | c->out.b[pos + 2] << 16;

        if (k-- == 0) {
            *len = n;
            *seq = c->out.b[pos + 3];
            return c->out.b + pos + 4;
        }
        pos += 4 + n;
    }
    fail_msg("the check sent no packet %d", k);
    return c->out.b;
}

/* ---- tests ---- */

static const uint8_t native_probepw[20] = {0xd7, 0x1a, 0x75, 0xce, 0xf6, 0xd8, 0x4e,
                                           0x89, 0xe3, 0xc9, 0x46, 0x69, 0x93, 0x9a,
                                           0xd6, 0x9c, 0xbf, 0x21, 0x23, 0x8b};
static const uint8_t sha2_probepw[32] = {
    0x19, 0x6a, 0x5d, 0xa2, 0x4e, 0xe7, 0x8f, 0x5d, 0x14, 0x66, 0x43, 0x65, 0x0d, 0x45, 0xe5, 0xa8,
    0x98, 0x74, 0x7b, 0x61, 0x72, 0x98, 0x12, 0x3e, 0x18, 0x58, 0x11, 0x76, 0xe2, 0x7f, 0xe4, 0x7f};

static void test_scrambles(void **state)
{
    uint8_t out[32];

    (void)state;
    assert_int_equal(my_scramble(false, "probepw", scramble, out), 20);
    assert_memory_equal(out, native_probepw, 20);
    assert_int_equal(my_scramble(true, "probepw", scramble, out), 32);
    assert_memory_equal(out, sha2_probepw, 32);
    assert_int_equal(my_scramble(false, "", scramble, out), 0);
    assert_int_equal(my_scramble(true, NULL, scramble, out), 0);
}

static void test_login_native(void **state)
{
    static const uint8_t head[] = {0x05, 0xa2, 0x08, 0x00, 0, 0, 0, 1, 45};
    struct my_check c;
    struct blob b = {0};
    const uint8_t *p;
    size_t n;
    uint8_t seq;

    (void)state;
    greeting(&b, "mysql_native_password");
    assert_int_equal(run(&c, &probe, &b), DBW_MORE);
    assert_string_equal(c.version.s, "5.5.5-10.11.19-MariaDB-0+deb12u1");
    p = sent(&c, 0, &n, &seq);
    assert_non_null(p);
    assert_int_equal(seq, 1);
    /* capabilities, max packet, charset, 23 zeros, user, scramble, plugin */
    assert_int_equal(n, sizeof(head) + 23 + 6 + 21 + 22);
    assert_memory_equal(p, head, sizeof(head));
    for (int i = 0; i < 23; i++)
        assert_int_equal(p[sizeof(head) + i], 0);
    p += sizeof(head) + 23;
    assert_memory_equal(p, "probe\0\x14", 7);
    assert_memory_equal(p + 7, native_probepw, 20);
    assert_memory_equal(p + 27, "mysql_native_password", 22);

    /* OK: the query goes out as a new command (sequence 0). */
    PKT(&b, 2, OK_PACKET);
    assert_int_equal(run(&c, &probe, &b), DBW_MORE);
    p = sent(&c, 1, &n, &seq);
    assert_non_null(p);
    assert_int_equal(seq, 0);
    assert_int_equal(n, 1 + strlen("SELECT @@read_only, @@innodb_read_only"));
    assert_memory_equal(p, "\3SELECT @@read_only, @@innodb_read_only", n);
    assert_false(ends_with_quit(&c));

    /* An empty password is sent empty; a database with CONNECT_WITH_DB. */
    {
        static const struct my_params nopw = {.user = "nopw", .db = "app"};
        struct blob g = {0};

        greeting(&g, "mysql_native_password");
        run(&c, &nopw, &g);
        p = sent(&c, 0, &n, &seq);
        assert_int_equal(p[0] & 0x08, 0x08);
        assert_memory_equal(p + sizeof(head) + 23, "nopw\0\0app\0mysql_native_password", 31);
    }
}

static void test_roles(void **state)
{
    struct my_check c;
    struct blob b = {0};
    char why[DBW_WHY_MAX];

    (void)state;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0010\0010");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_PRIMARY);
    assert_true(c.res.quit && ends_with_quit(&c));
    assert_int_equal(c.res.consumed, b.len);
    assert_true(judge(&c, DBW_WANT_PRIMARY, why));
    assert_string_equal(why, "role primary (read_only=0 innodb_read_only=0)");
    assert_false(judge(&c, DBW_WANT_REPLICA, why));
    assert_string_equal(why, "role primary (read_only=0 innodb_read_only=0), want replica");

    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0011\0010");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);
    assert_false(judge(&c, DBW_WANT_PRIMARY, why));
    assert_string_equal(why, "role replica (read_only=1 innodb_read_only=0), want primary");

    /* innodb_read_only alone makes a replica; NULL (no InnoDB) does not. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0010\0011");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0010\xfb");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_PRIMARY);
    assert_string_equal(c.res.why, "read_only=0 innodb_read_only=NULL");

    /* Not 0 or 1; three columns; no row; an error. */
    static const char *const bad[] = {"\0012\0010", "\002on\0010", "\0010", "\0010\0010\0010"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b.len = 0;
        greeting(&b, "mysql_native_password");
        PKT(&b, 2, OK_PACKET);
        result(&b, bad[i], strlen(bad[i]));
        assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
        assert_true(c.res.quit && ends_with_quit(&c));
    }
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    PKT(&b, 1, "\3");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_true(c.res.quit);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    PKT(&b, 1, "\2");
    PKT(&b, 2, "\3def");
    PKT(&b, 3, "\3def");
    PKT(&b, 4, "\xfe\0\0\2\0");
    PKT(&b, 5, "\xfe\0\0\2\0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "the query returned 0 rows");
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    PKT(&b, 1, "\xff\x93\x04#HY000Unknown system variable 'innodb_read_only'");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "error 1171 HY000: Unknown system variable 'innodb_read_only'");
    assert_true(c.res.quit && ends_with_quit(&c));
}

static void test_errors(void **state)
{
    struct my_check c;
    struct blob b = {0};
    char why[DBW_WHY_MAX];

    (void)state;
    /* Refused before the handshake (no SQLSTATE there). */
    PKT(&b, 0, "\xff\x10\x04Too many connections");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_false(c.res.quit);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "error 1040: Too many connections");
    /* A wrong password. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2,
        "\xff\x15\x04#28000Access denied for user 'probe'@'127.0.0.1' (using password: "
        "YES)");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_false(c.res.quit);
    assert_string_equal(c.res.why, "error 1045 28000: Access denied for user "
                                   "'probe'@'127.0.0.1' (using password: YES)");
    /* Cut short: the reason names the phase. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    assert_int_equal(run(&c, &probe, &b), DBW_MORE);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "closed during the login");
    b.len = 0;
    assert_int_equal(run(&c, &probe, &b), DBW_MORE);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "closed during the handshake");
}

static void test_auth_switch(void **state)
{
    struct my_check c;
    struct blob b = {0};
    uint8_t sw[64];
    const uint8_t *p;
    size_t n;
    uint8_t seq;

    (void)state;
    /* To caching_sha2_password with a new scramble (here: the same), then
     * the fast path: 0x01 0x03, OK. */
    greeting(&b, "mysql_native_password");
    memcpy(sw,
           "\xfe"
           "caching_sha2_password\0",
           23);
    memcpy(sw + 23, scramble, 20);
    sw[43] = 0;
    pkt(&b, 2, sw, 44);
    assert_int_equal(run(&c, &probe, &b), DBW_MORE);
    p = sent(&c, 1, &n, &seq);
    assert_non_null(p);
    assert_int_equal(seq, 3);
    assert_int_equal(n, 32);
    assert_memory_equal(p, sha2_probepw, 32);
    PKT(&b, 4, "\1\3");
    PKT(&b, 5, OK_PACKET);
    ROW(&b, "\0010\0010");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);

    /* To a plugin the check does not speak. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2,
        "\xfe"
        "client_ed25519\0abcdefghijklmnopqrstuvwxyz\0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "auth plugin 'client_ed25519' is not supported "
                                   "(mysql_native_password, caching_sha2_password are)");
    /* To the pre-4.1 hash; without a scramble; once too often. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, "\xfe");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, "\xfemysql_native_password\0short");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    memcpy(sw,
           "\xfe"
           "mysql_native_password\0",
           23);
    for (int i = 0; i < 3; i++)
        pkt(&b, (uint8_t)(2 + 2 * i), sw, 44);
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "more than 2 auth switch requests");
    /* A greeting offering an unknown plugin: answered as native. */
    b.len = 0;
    greeting(&b, "auth_gssapi_client");
    run(&c, &probe, &b);
    p = sent(&c, 0, &n, &seq);
    assert_memory_equal(p + n - 22, "mysql_native_password", 22);
}

static void test_sha2_full_auth(void **state)
{
    static const struct my_params sha2 = {.user = "probe", .password = "probepw"};
    EVP_PKEY *key = EVP_RSA_gen(2048);
    EVP_PKEY_CTX *ctx;
    BIO *bio = BIO_new(BIO_s_mem());
    struct my_check c;
    struct blob b = {0};
    uint8_t keypkt[1024], plain[512];
    const uint8_t *p;
    char *pem;
    long pemlen;
    size_t n, plen = sizeof(plain);
    uint8_t seq;

    (void)state;
    assert_non_null(key);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    pemlen = BIO_get_mem_data(bio, &pem);
    assert_true(pemlen > 0 && (size_t)pemlen < sizeof(keypkt) - 1);

    greeting(&b, "caching_sha2_password");
    assert_int_equal(run(&c, &sha2, &b), DBW_MORE);
    p = sent(&c, 0, &n, &seq);
    assert_memory_equal(p + n - 22, "caching_sha2_password", 22);
    assert_memory_equal(p + n - 22 - 32, sha2_probepw, 32);
    /* Full authentication: the check asks for the public key... */
    PKT(&b, 2, "\1\4");
    assert_int_equal(run(&c, &sha2, &b), DBW_MORE);
    p = sent(&c, 1, &n, &seq);
    assert_int_equal(n, 1);
    assert_int_equal(p[0], 2);
    assert_int_equal(seq, 3);
    /* ...and sends the password XOR the scramble, encrypted to it. */
    keypkt[0] = 1;
    memcpy(keypkt + 1, pem, (size_t)pemlen);
    pkt(&b, 4, keypkt, (size_t)pemlen + 1);
    assert_int_equal(run(&c, &sha2, &b), DBW_MORE);
    p = sent(&c, 2, &n, &seq);
    assert_non_null(p);
    assert_int_equal(seq, 5);
    assert_int_equal(n, 256);
    ctx = EVP_PKEY_CTX_new(key, NULL);
    assert_true(EVP_PKEY_decrypt_init(ctx) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0);
    assert_true(EVP_PKEY_decrypt(ctx, plain, &plen, p, n) > 0);
    assert_int_equal(plen, 8);
    for (size_t i = 0; i < plen; i++)
        plain[i] ^= scramble[i % 20];
    assert_memory_equal(plain, "probepw", 8);
    PKT(&b, 6, OK_PACKET);
    ROW(&b, "\0011\0011");
    assert_int_equal(run(&c, &sha2, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);

    /* Not a key. */
    b.len = 0;
    greeting(&b, "caching_sha2_password");
    PKT(&b, 2, "\1\4");
    PKT(&b, 4, "\1-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n");
    assert_int_equal(run(&c, &sha2, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "not PEM"));
    /* 0x01 data without caching_sha2 in use. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, "\1\4");
    assert_int_equal(run(&c, &sha2, &b), DBW_FAIL);

    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    BIO_free(bio);
}

static void test_malformed(void **state)
{
    struct my_check c;
    struct blob b = {0};

    (void)state;
    /* Not MySQL: protocol 9, an HTTP server, a greeting cut short. */
    PKT(&b, 0,
        "\x09"
        "4.0\0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "not a MySQL server (protocol version 9, not 10)");
    b.len = 0;
    add(&b, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    b.len = 0;
    PKT(&b, 0,
        "\x0a"
        "8.0\0\1\2\3\4abcdefgh\0\xff\xf7");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    b.len = 0;
    PKT(&b, 0,
        "\x0a"
        "8.0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    /* Without the 4.1 protocol. */
    b.len = 0;
    PKT(&b, 0,
        "\x0a"
        "3.23\0\1\2\3\4abcdefgh\0\0\0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "no 4.1 protocol"));
    /* Out of sequence, empty, oversized. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 3, OK_PACKET);
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "packet out of sequence (3, expected 2) during the login");
    b.len = 0;
    pkt(&b, 0, "", 0);
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    b.len = 0;
    add(&b, "\x01\x10\0\0", 4); /* 4097 bytes */
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_int_equal(c.res.consumed, 4);
    b.len = 0;
    add(&b, "\xff\xff\xff\0", 4);
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    /* An unexpected packet after the login. */
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    PKT(&b, 1, "\2");
    PKT(&b, 2, "\3def");
    PKT(&b, 3, "\3def");
    PKT(&b, 4, "\0\0\0");
    assert_int_equal(run(&c, &probe, &b), DBW_FAIL);
    assert_true(c.res.quit);
    /* Credentials over DBW_CRED_MAX fail at once. */
    {
        static char longname[DBW_CRED_MAX + 2];
        struct my_params p = {.user = longname};

        memset(longname, 'u', sizeof(longname) - 1);
        my_check_init(&c, &p);
        assert_int_equal(c.res.verdict, DBW_FAIL);
    }
}

/* Every way of cutting <b> in two, and one byte at a time, gives the
 * verdict, the bytes to send and the reason that the whole gives. */
static void check_splits(const struct my_params *par, const struct blob *b)
{
    static struct my_check whole, part;

    run(&whole, par, b);
    for (size_t cut = 0; cut <= b->len; cut++) {
        my_check_init(&part, par);
        my_feed(&part, b->b, cut);
        my_feed(&part, b->b + cut, b->len - cut);
        assert_int_equal(part.res.verdict, whole.res.verdict);
        assert_int_equal(part.res.consumed, whole.res.consumed);
        assert_int_equal(part.out.len, whole.out.len);
        assert_memory_equal(part.out.b, whole.out.b, whole.out.len);
        assert_string_equal(part.res.why, whole.res.why);
    }
    my_check_init(&part, par);
    for (size_t i = 0; i < b->len; i++)
        my_feed(&part, b->b + i, 1);
    assert_int_equal(part.res.verdict, whole.res.verdict);
    assert_int_equal(part.out.len, whole.out.len);
    assert_memory_equal(part.out.b, whole.out.b, whole.out.len);
    assert_string_equal(part.res.why, whole.res.why);
}

static void test_splits(void **state)
{
    struct blob b = {0};
    uint8_t sw[44];

    (void)state;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0011\0010");
    check_splits(&probe, &b);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    memcpy(sw,
           "\xfe"
           "caching_sha2_password\0",
           23);
    memcpy(sw + 23, scramble, 20);
    sw[43] = 0;
    pkt(&b, 2, sw, 44);
    PKT(&b, 4, "\1\3");
    PKT(&b, 5, OK_PACKET);
    ROW(&b, "\0010\0010");
    check_splits(&probe, &b);
    b.len = 0;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, "\xff\x15\x04#28000Access denied");
    check_splits(&probe, &b);
}

static void test_after_verdict(void **state)
{
    struct my_check c;
    struct blob b = {0};
    uint32_t len;

    (void)state;
    greeting(&b, "mysql_native_password");
    PKT(&b, 2, OK_PACKET);
    ROW(&b, "\0010\0010");
    assert_int_equal(run(&c, &probe, &b), DBW_ROLE);
    len = c.out.len;
    assert_int_equal(my_feed(&c, "\xff\xff\xff\xffgarbage", 11), DBW_ROLE);
    assert_int_equal(c.res.consumed, b.len);
    assert_int_equal(c.out.len, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrambles),     cmocka_unit_test(test_login_native),
        cmocka_unit_test(test_roles),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_auth_switch),   cmocka_unit_test(test_sha2_full_auth),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_splits),
        cmocka_unit_test(test_after_verdict),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
