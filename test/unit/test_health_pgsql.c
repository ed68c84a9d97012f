/*
 * test_health_pgsql.c - unit tests for health/pgsql.c: the StartupMessage,
 * trust, cleartext, md5 and SCRAM-SHA-256 logins (RFC 7677's example
 * exchange byte for byte, a forged server signature, a nonce the server
 * did not extend, the PBKDF2 cache), the role from in_hot_standby or from
 * SELECT pg_is_in_recovery(), Terminate, ErrorResponse before and after the
 * login, unsupported methods, truncated, malformed and oversized input,
 * and that every split of a conversation gives the same verdict and sends
 * the same bytes. Pure functions: no socket, no thread.
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

#include "../../health/pgsql.h"

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

static void add_be32(struct blob *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

    add(b, x, 4);
}

/* A message of <type> with <n> bytes of <body>. */
static void msg(struct blob *b, char type, const void *body, size_t n)
{
    add(b, &type, 1);
    add_be32(b, (uint32_t)n + 4);
    add(b, body, n);
}

/* An authentication request <code> with <n> bytes of data after it. */
static void auth(struct blob *b, uint32_t code, const void *data, size_t n)
{
    uint8_t body[512];

    assert_true(n + 4 <= sizeof(body));
    body[0] = (uint8_t)(code >> 24);
    body[1] = (uint8_t)(code >> 16);
    body[2] = (uint8_t)(code >> 8);
    body[3] = (uint8_t)code;
    if (n)
        memcpy(body + 4, data, n);
    msg(b, 'R', body, n + 4);
}

static void param(struct blob *b, const char *name, const char *value)
{
    uint8_t body[256];
    size_t n = strlen(name) + 1, m = strlen(value) + 1;

    memcpy(body, name, n);
    memcpy(body + n, value, m);
    msg(b, 'S', body, n + m);
}

/* What PostgreSQL sends once the login succeeded, up to ReadyForQuery;
 * <hot>: the in_hot_standby value, NULL for a server before 14. */
static void session(struct blob *b, const char *hot)
{
    static const uint8_t key[8] = {0, 0, 0x12, 0x34, 1, 2, 3, 4};

    auth(b, 0, NULL, 0);
    param(b, "application_name", "ringlb-health");
    param(b, "server_version", hot ? "15.5" : "13.9");
    if (hot)
        param(b, "in_hot_standby", hot);
    param(b, "TimeZone", "Etc/UTC");
    msg(b, 'K', key, sizeof(key));
    msg(b, 'Z', "I", 1);
}

/* The answer to SELECT pg_is_in_recovery(): <v> "t" or "f". */
static void recovery_rows(struct blob *b, const char *v)
{
    static const uint8_t desc[] = "\0\1pg_is_in_recovery\0\0\0\0\0\0\0\0\0\0\0\0\x10\0\1\0\0\0\0";
    uint8_t row[7] = {0, 1, 0, 0, 0, 1, (uint8_t)v[0]};

    msg(b, 'T', desc, sizeof(desc) - 1);
    msg(b, 'D', row, sizeof(row));
    msg(b, 'C', "SELECT 1", 9);
    msg(b, 'Z', "I", 1);
}

/* An ErrorResponse. */
static void error(struct blob *b, const char *sev, const char *code, const char *text)
{
    char body[1024];
    int n =
        snprintf(body, sizeof(body), "S%s%cV%s%cC%s%cM%s%c%c", sev, 0, sev, 0, code, 0, text, 0, 0);

    assert_true(n > 0 && (size_t)n < sizeof(body));
    msg(b, 'E', body, (size_t)n);
}

/* ---- running a check ---- */

static const struct pg_params plain = {.user = "probe", .db = "postgres"};

static enum dbw_verdict run(struct pg_check *c, const struct pg_params *par, const struct blob *b)
{
    pg_check_init(c, par);
    return pg_feed(c, b->b, b->len);
}

static bool judge(const struct pg_check *c, enum dbw_want want, char *why)
{
    return pg_judge(c, want, why, DBW_WHY_MAX);
}

/* Whether the out buffer ends with Terminate. */
static bool ends_with_terminate(const struct pg_check *c)
{
    return c->out.len >= 5 && memcmp(c->out.b + c->out.len - 5, "X\0\0\0\4", 5) == 0;
}

/* Finds message <type> whose body starts with <start> in c->out (after
 * the StartupMessage); returns its body and length, or NULL. */
static const uint8_t *sent(const struct pg_check *c, char type, size_t *len)
{
    uint32_t pos = (uint32_t)c->out.b[0] << 24 | c->out.b[1] << 16 | c->out.b[2] << 8 | c->out.b[3];

    while (pos + 5 <= c->out.len) {
        const uint8_t *m = c->out.b + pos;
        uint32_t n = (uint32_t)m[1] << 24 | m[2] << 16 | m[3] << 8 | m[4];

        if (m[0] == type) {
            *len = n - 4;
            return m + 5;
        }
        pos += 1 + n;
    }
    return NULL;
}

/* ---- tests ---- */

static void test_startup(void **state)
{
    static const char want[] = "\0\0\0\x45\0\3\0\0user\0probe\0database\0postgres\0"
                               "application_name\0ringlb-health\0\0";
    static const struct pg_params nodb = {.user = "probe"};
    struct pg_check c;

    (void)state;
    pg_check_init(&c, &plain);
    assert_int_equal(c.res.verdict, DBW_MORE);
    assert_int_equal(c.out.len, sizeof(want) - 1);
    assert_memory_equal(c.out.b, want, sizeof(want) - 1);
    /* health_db defaults to the user's name, as with libpq. */
    pg_check_init(&c, &nodb);
    assert_non_null(memmem(c.out.b, c.out.len, "database\0probe\0", 15));
}

static void test_trust_hot_standby(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    char why[DBW_WHY_MAX];

    (void)state;
    session(&b, "off");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_PRIMARY);
    assert_true(c.res.quit);
    assert_true(ends_with_terminate(&c));
    assert_int_equal(c.res.consumed, b.len);
    assert_true(judge(&c, DBW_WANT_PRIMARY, why));
    assert_string_equal(why, "role primary (in_hot_standby off)");
    assert_true(judge(&c, DBW_WANT_ANY, why));
    assert_false(judge(&c, DBW_WANT_REPLICA, why));
    assert_string_equal(why, "role primary (in_hot_standby off), want replica");

    b.len = 0;
    session(&b, "on");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);
    assert_true(judge(&c, DBW_WANT_REPLICA, why));
    assert_false(judge(&c, DBW_WANT_PRIMARY, why));
    assert_string_equal(why, "role replica (in_hot_standby on), want primary");

    b.len = 0;
    session(&b, "maybe");
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_true(c.res.quit);
}

static void test_query_path(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    const uint8_t *q;
    size_t n;
    char why[DBW_WHY_MAX];

    (void)state;
    /* A server before 14 reports no in_hot_standby: the check asks. */
    session(&b, NULL);
    assert_int_equal(run(&c, &plain, &b), DBW_MORE);
    q = sent(&c, 'Q', &n);
    assert_non_null(q);
    assert_int_equal(n, sizeof("SELECT pg_is_in_recovery()"));
    assert_memory_equal(q, "SELECT pg_is_in_recovery()", n);
    assert_false(ends_with_terminate(&c));
    recovery_rows(&b, "t");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);
    assert_true(ends_with_terminate(&c));
    assert_true(judge(&c, DBW_WANT_REPLICA, why));
    assert_string_equal(why, "role replica (pg_is_in_recovery() true)");

    b.len = 0;
    session(&b, NULL);
    recovery_rows(&b, "f");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_PRIMARY);

    /* Something but t or f; no row at all; the query fails. */
    b.len = 0;
    session(&b, NULL);
    recovery_rows(&b, "x");
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_true(c.res.quit && ends_with_terminate(&c));
    b.len = 0;
    session(&b, NULL);
    msg(&b, 'C', "SELECT 0", 9);
    msg(&b, 'Z', "I", 1);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "pg_is_in_recovery() returned 0 rows");
    b.len = 0;
    session(&b, NULL);
    error(&b, "ERROR", "42883", "function pg_is_in_recovery() does not exist");
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "error 42883: function pg_is_in_recovery() does not exist");
    /* An ERROR leaves the session open: the check says goodbye. */
    assert_true(c.res.quit && ends_with_terminate(&c));
}

static void test_cleartext_md5(void **state)
{
    static const struct pg_params md5 = {.user = "postgres", .password = "secret"};
    static const uint8_t salt[4] = {1, 2, 3, 4};
    struct pg_check c;
    struct blob b = {0};
    const uint8_t *p;
    size_t n;
    char why[DBW_WHY_MAX];

    (void)state;
    auth(&b, 3, NULL, 0);
    assert_int_equal(run(&c, &md5, &b), DBW_MORE);
    p = sent(&c, 'p', &n);
    assert_non_null(p);
    assert_int_equal(n, 7);
    assert_memory_equal(p, "secret", 7);

    /* md5(md5(password + user) in hex + salt), as libpq computes it
     * (value from Python's hashlib). */
    b.len = 0;
    auth(&b, 5, salt, 4);
    assert_int_equal(run(&c, &md5, &b), DBW_MORE);
    p = sent(&c, 'p', &n);
    assert_non_null(p);
    assert_int_equal(n, 36);
    assert_memory_equal(p, "md5bb41a296aab6baccb36ff243a562abff", 36);
    session(&b, "off");
    assert_int_equal(run(&c, &md5, &b), DBW_ROLE);
    assert_true(judge(&c, DBW_WANT_ANY, why));

    /* A salt that is not 4 bytes; a password asked for twice (the first
     * was refused); no health_password to give. */
    b.len = 0;
    auth(&b, 5, salt, 3);
    assert_int_equal(run(&c, &md5, &b), DBW_FAIL);
    b.len = 0;
    auth(&b, 3, NULL, 0);
    auth(&b, 3, NULL, 0);
    assert_int_equal(run(&c, &md5, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "the server asks for a password again (password)");
    b.len = 0;
    auth(&b, 5, salt, 4);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_string_equal(c.res.why,
                        "the server asks for a password (md5) and health_password is not set");
    assert_false(c.res.quit);
}

/* RFC 7677 section 3: user "user", password "pencil". */
#define RFC_NONCE  "rOprNGfwEbeRWgbNEkqO"
#define RFC_SFIRST RFC_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CFINAL                                                                                 \
    "c=biws,r=" RFC_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                                        \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static struct pg_scram_cache rfc_cache;
static const struct pg_params rfc = {
    .user = "user", .password = "pencil", .nonce = RFC_NONCE, .cache = &rfc_cache};

/* The RFC exchange as PostgreSQL frames it, up to <upto> server messages
 * (1: the SASL offer, 2: server-first, 3: server-final). */
static void rfc_server(struct blob *b, int upto, const char *sfinal)
{
    static const char mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";

    auth(b, 10, mechs, sizeof(mechs));
    if (upto >= 2)
        auth(b, 11, "r=" RFC_SFIRST, strlen("r=" RFC_SFIRST));
    if (upto >= 3)
        auth(b, 12, sfinal, strlen(sfinal));
}

static void test_scram_rfc7677(void **state)
{
    static const char first[] = "SCRAM-SHA-256\0\0\0\0\x20n,,n=user,r=" RFC_NONCE;
    struct pg_check c;
    struct blob b = {0};
    const uint8_t *p;
    size_t n;
    char why[DBW_WHY_MAX];

    (void)state;
    memset(&rfc_cache, 0, sizeof(rfc_cache));
    rfc_server(&b, 1, NULL);
    assert_int_equal(run(&c, &rfc, &b), DBW_MORE);
    p = sent(&c, 'p', &n);
    assert_non_null(p);
    assert_int_equal(n, sizeof(first) - 1);
    assert_memory_equal(p, first, n);

    b.len = 0;
    rfc_server(&b, 2, NULL);
    assert_int_equal(run(&c, &rfc, &b), DBW_MORE);
    /* The second 'p' message is the client-final-message. */
    p = memmem(c.out.b, c.out.len, "c=biws", 6);
    assert_non_null(p);
    assert_int_equal(c.out.b + c.out.len - p, strlen(RFC_CFINAL));
    assert_memory_equal(p, RFC_CFINAL, strlen(RFC_CFINAL));
    assert_int_equal(rfc_cache.iter, 4096);

    b.len = 0;
    rfc_server(&b, 3, RFC_SFINAL);
    session(&b, "on");
    run(&c, &rfc, &b);
    assert_string_equal(c.res.why, "in_hot_standby on");
    assert_int_equal(c.res.verdict, DBW_ROLE);
    assert_true(judge(&c, DBW_WANT_REPLICA, why));
    assert_true(ends_with_terminate(&c));

    /* Again from the cache (salt and count unchanged): the same bytes. */
    {
        struct pg_check again;

        assert_int_equal(run(&again, &rfc, &b), DBW_ROLE);
        assert_int_equal(again.out.len, c.out.len);
        assert_memory_equal(again.out.b, c.out.b, c.out.len);
    }
    /* A stale cache (another salt) is not used. */
    rfc_cache.salt[0] ^= 1;
    memset(rfc_cache.salted, 0, sizeof(rfc_cache.salted));
    assert_int_equal(run(&c, &rfc, &b), DBW_ROLE);
}

static void test_scram_refused(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    static const struct pg_params nopw = {.user = "user", .nonce = RFC_NONCE};

    (void)state;
    /* A forged server signature: the server does not know the password. */
    rfc_server(&b, 3, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "signature does not match"));
    assert_false(c.res.quit);
    b.len = 0;
    rfc_server(&b, 3, "e=invalid-proof");
    assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "SCRAM error from the server: invalid-proof");
    b.len = 0;
    rfc_server(&b, 3, "v=short");
    assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
    /* AuthenticationOk without the server's signature. */
    b.len = 0;
    rfc_server(&b, 2, NULL);
    auth(&b, 0, NULL, 0);
    assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
    /* No password; only SCRAM-SHA-256-PLUS (channel binding) offered. */
    b.len = 0;
    rfc_server(&b, 1, NULL);
    assert_int_equal(run(&c, &nopw, &b), DBW_FAIL);
    b.len = 0;
    auth(&b, 10, "SCRAM-SHA-256-PLUS\0", 20);
    assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "no SASL mechanism"));
}

static void test_scram_server_first(void **state)
{
    static const char *const bad[] = {
        "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",   /* not our nonce */
        "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* not extended */
        "r=" RFC_NONCE "x,s=!!!!,i=4096",                    /* salt not base64 */
        "r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100001",
        "r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999",
        "r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=12a",
        "r=" RFC_NONCE "x,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",  /* out of order */
        "r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==",         /* no count */
        "r=" RFC_NONCE "x\x01,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", /* not printable */
        "",
    };
    struct pg_check c;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct blob b = {0};

        rfc_server(&b, 1, NULL);
        auth(&b, 11, bad[i], strlen(bad[i]));
        assert_int_equal(run(&c, &rfc, &b), DBW_FAIL);
        assert_false(c.res.quit);
    }
}

static void test_errors(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    char why[DBW_WHY_MAX];

    (void)state;
    /* A refused login: FATAL, the server closes by itself. */
    error(&b, "FATAL", "28P01", "password authentication failed for user \"probe\"");
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_false(c.res.quit);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "error 28P01: password authentication failed for user \"probe\"");
    /* After AuthenticationOk: a missing database is FATAL too. */
    b.len = 0;
    auth(&b, 0, NULL, 0);
    error(&b, "FATAL", "3D000", "database \"nope\" does not exist");
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_false(c.res.quit);
    assert_false(ends_with_terminate(&c));
    /* An error message longer than what is kept is cut, marked "...". */
    b.len = 0;
    {
        char text[600];

        memset(text, 'e', sizeof(text) - 1);
        text[sizeof(text) - 1] = '\0';
        error(&b, "FATAL", "53300", text);
    }
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "eee..."));
    /* Methods the check does not speak. */
    b.len = 0;
    auth(&b, 7, NULL, 0);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "authentication method GSSAPI (7) is not supported");
    /* A notice and a NegotiateProtocolVersion are taken in stride. */
    b.len = 0;
    msg(&b, 'N', "SNOTICE\0Mhello\0\0", 16);
    msg(&b, 'v', "\0\0\0\0\0\0\0\0", 8);
    session(&b, "off");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
}

static void test_malformed(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    char why[DBW_WHY_MAX];

    (void)state;
    /* Not PostgreSQL: an HTTP server, a length under 4. */
    add(&b, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "not a PostgreSQL server"));
    b.len = 0;
    add(&b, "R\0\0\0\3", 5);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_int_equal(c.res.consumed, 5);
    /* Messages out of place: ReadyForQuery before the login, a DataRow
     * with no query, an authentication request after it. */
    b.len = 0;
    msg(&b, 'Z', "I", 1);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_string_equal(c.res.why, "unexpected message 'Z' during the login");
    b.len = 0;
    auth(&b, 0, NULL, 0);
    msg(&b, 'D', "\0\1\0\0\0\1t", 7);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_true(c.res.quit);
    b.len = 0;
    session(&b, NULL);
    auth(&b, 3, NULL, 0);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    b.len = 0;
    auth(&b, 0, NULL, 0);
    auth(&b, 0, NULL, 0);
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    /* Cut short: the reason names the phase. */
    b.len = 0;
    session(&b, NULL);
    b.len -= 3;
    assert_int_equal(run(&c, &plain, &b), DBW_MORE);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "closed during the start of the session");
    b.len = 0;
    rfc_server(&b, 1, NULL);
    assert_int_equal(run(&c, &rfc, &b), DBW_MORE);
    assert_false(judge(&c, DBW_WANT_ANY, why));
    assert_string_equal(why, "closed during SCRAM authentication");
}

static void test_oversized(void **state)
{
    static uint8_t big[PG_MSG_MAX + 1];
    struct pg_check c;
    struct blob b = {0};

    (void)state;
    /* An authentication request longer than PG_MSG_MAX. */
    msg(&b, 'R', big, sizeof(big));
    assert_int_equal(run(&c, &plain, &b), DBW_FAIL);
    assert_non_null(strstr(c.res.why, "longer than"));
    /* A long ParameterStatus or notice is skipped, not kept. */
    b.len = 0;
    auth(&b, 0, NULL, 0);
    memcpy(big, "in_hot_standby", 15);
    msg(&b, 'S', big, sizeof(big));
    msg(&b, 'N', big, sizeof(big));
    param(&b, "in_hot_standby", "on");
    msg(&b, 'Z', "I", 1);
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    assert_int_equal(c.res.role, DBW_ROLE_REPLICA);
    /* A length field of 1 GiB: refused when the conversation passes
     * PG_TOTAL_MAX, without buffering it. */
    {
        static uint8_t flood[PG_TOTAL_MAX + 16];

        memcpy(flood, "N\x3f\xff\xff\xff", 5);
        pg_check_init(&c, &plain);
        assert_int_equal(pg_feed(&c, flood, sizeof(flood)), DBW_FAIL);
        assert_int_equal(c.res.consumed, PG_TOTAL_MAX + 1);
        memcpy(flood, "N\x7f\xff\xff\xff", 5);
        pg_check_init(&c, &plain);
        assert_int_equal(pg_feed(&c, flood, 5), DBW_FAIL);
    }
    /* Credentials over DBW_CRED_MAX fail before anything is sent. */
    {
        static char longname[DBW_CRED_MAX + 2];
        struct pg_params p = {.user = longname};

        memset(longname, 'u', sizeof(longname) - 1);
        pg_check_init(&c, &p);
        assert_int_equal(c.res.verdict, DBW_FAIL);
    }
}

/* Every way of cutting <b> in two, and one byte at a time, gives the
 * verdict, the bytes to send and the reason that the whole gives. */
static void check_splits(const struct pg_params *par, const struct blob *b)
{
    struct pg_check whole, part;

    run(&whole, par, b);
    for (size_t cut = 0; cut <= b->len; cut++) {
        pg_check_init(&part, par);
        pg_feed(&part, b->b, cut);
        pg_feed(&part, b->b + cut, b->len - cut);
        assert_int_equal(part.res.verdict, whole.res.verdict);
        assert_int_equal(part.res.consumed, whole.res.consumed);
        assert_int_equal(part.out.len, whole.out.len);
        assert_memory_equal(part.out.b, whole.out.b, whole.out.len);
        assert_string_equal(part.res.why, whole.res.why);
    }
    pg_check_init(&part, par);
    for (size_t i = 0; i < b->len; i++)
        pg_feed(&part, b->b + i, 1);
    assert_int_equal(part.res.verdict, whole.res.verdict);
    assert_int_equal(part.out.len, whole.out.len);
    assert_memory_equal(part.out.b, whole.out.b, whole.out.len);
    assert_string_equal(part.res.why, whole.res.why);
}

static void test_splits(void **state)
{
    static const struct pg_params md5 = {.user = "postgres", .password = "secret"};
    static const uint8_t salt[4] = {9, 8, 7, 6};
    struct blob b = {0};

    (void)state;
    session(&b, "off");
    check_splits(&plain, &b);
    b.len = 0;
    session(&b, NULL);
    recovery_rows(&b, "t");
    check_splits(&plain, &b);
    b.len = 0;
    auth(&b, 5, salt, 4);
    session(&b, "on");
    check_splits(&md5, &b);
    b.len = 0;
    rfc_server(&b, 3, RFC_SFINAL);
    session(&b, "on");
    check_splits(&rfc, &b);
    b.len = 0;
    error(&b, "FATAL", "28P01", "password authentication failed");
    check_splits(&plain, &b);
    b.len = 0;
    add(&b, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    check_splits(&plain, &b);
}

static void test_after_verdict(void **state)
{
    struct pg_check c;
    struct blob b = {0};
    uint32_t len;

    (void)state;
    session(&b, "off");
    assert_int_equal(run(&c, &plain, &b), DBW_ROLE);
    len = c.out.len;
    /* What the server says after the verdict changes nothing. */
    assert_int_equal(pg_feed(&c, "E\0\0\0\4garbage", 12), DBW_ROLE);
    assert_int_equal(c.res.consumed, b.len);
    assert_int_equal(c.out.len, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup),
        cmocka_unit_test(test_trust_hot_standby),
        cmocka_unit_test(test_query_path),
        cmocka_unit_test(test_cleartext_md5),
        cmocka_unit_test(test_scram_rfc7677),
        cmocka_unit_test(test_scram_refused),
        cmocka_unit_test(test_scram_server_first),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_after_verdict),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
