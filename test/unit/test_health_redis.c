/*
 * test_health_redis.c - unit tests for health/redis.c: the request of a
 * Redis role check and the parser of its replies (master, replica with its
 * link up or down, sentinel, unknown roles, error replies, truncated,
 * malformed and oversized input), and that every split of a reply gives
 * the same verdict. Pure functions: no socket, no thread.
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

#include "../../health/redis.h"

/* What a server sends for PING, ROLE and QUIT. */
#define PONG "+PONG\r\n"
#define QUIT "+OK\r\n"
/* ROLE of a master with two replicas (their ports and offsets are bulk
 * strings, as Redis sends them). */
#define ROLE_MASTER                                                                                \
    "*3\r\n$6\r\nmaster\r\n:3129659\r\n*2\r\n"                                                     \
    "*3\r\n$9\r\n127.0.0.1\r\n$4\r\n9001\r\n$7\r\n3129242\r\n"                                     \
    "*3\r\n$9\r\n127.0.0.1\r\n$4\r\n9002\r\n$7\r\n3129543\r\n"
#define ROLE_MASTER_ALONE "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
#define ROLE_SLAVE(state, len)                                                                     \
    "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9000\r\n$" len "\r\n" state "\r\n:3167038\r\n"
#define ROLE_SLAVE_CONNECTED ROLE_SLAVE("connected", "9")
#define ROLE_SLAVE_CONNECTING                                                                      \
    "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9000\r\n$10\r\nconnecting\r\n:-1\r\n"
#define ROLE_SENTINEL "*2\r\n$8\r\nsentinel\r\n*2\r\n$13\r\nresque-master\r\n$6\r\ncache1\r\n"

/* Feeds <s> whole to a fresh parser. */
static enum redis_verdict parse(struct redis_parse *p, bool auth, const char *s, size_t n)
{
    redis_parse_init(p, auth);
    return redis_feed(p, s, n);
}

#define PARSE(p, auth, lit) parse(p, auth, lit, sizeof(lit) - 1)

static bool str_same(const struct redis_str *a, const struct redis_str *b)
{
    return a->len == b->len && a->cut == b->cut && memcmp(a->s, b->s, a->len) == 0;
}

/* Whether two parsers came to the same verdict with the same results. */
static bool same_result(const struct redis_parse *a, const struct redis_parse *b)
{
    return a->verdict == b->verdict && a->cmd == b->cmd && a->consumed == b->consumed &&
           a->role == b->role && a->master_port == b->master_port && str_same(&a->text, &b->text) &&
           str_same(&a->role_s, &b->role_s) && str_same(&a->master, &b->master) &&
           str_same(&a->link, &b->link);
}

/* The verdict <p> gives for <want>, with its reason in <why>. */
static bool judge(const struct redis_parse *p, enum redis_want want, char *why)
{
    return redis_judge(p, want, why, 160);
}

/* ---- the request ---- */

#define AUTH1 "*2\r\n$4\r\nAUTH\r\n$9\r\ns3 cr\r\net\r\n"

static void test_request(void **state)
{
    static const char plain[] = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nROLE\r\n*1\r\n$4\r\nQUIT\r\n";
    char out[256];
    size_t n;

    (void)state;
    n = redis_request(out, sizeof(out), NULL, NULL);
    assert_int_equal(n, sizeof(plain) - 1);
    assert_memory_equal(out, plain, n);

    /* Any byte may be in a password: it goes as a bulk string. */
    n = redis_request(out, sizeof(out), NULL, "s3 cr\r\net");
    assert_int_equal(n, strlen(AUTH1) + sizeof(plain) - 1);
    assert_memory_equal(out, AUTH1, strlen(AUTH1));
    assert_memory_equal(out + strlen(AUTH1), plain, sizeof(plain) - 1);

    n = redis_request(out, sizeof(out), "probe", "pw");
    assert_memory_equal(out, "*3\r\n$4\r\nAUTH\r\n$5\r\nprobe\r\n$2\r\npw\r\n", 33);
    assert_memory_equal(out + 33, plain, sizeof(plain) - 1);
    assert_int_equal(n, 33 + sizeof(plain) - 1);

    /* Sizing without a buffer, and a buffer too small is not written past. */
    assert_int_equal(redis_request(NULL, 0, "probe", "pw"), n);
    memset(out, 'x', sizeof(out));
    assert_int_equal(redis_request(out, 10, "probe", "pw"), n);
    assert_int_equal(out[10], 'x');
}

/* ---- roles ---- */

static void test_master(void **state)
{
    struct redis_parse p;
    char why[160];

    (void)state;
    assert_int_equal(PARSE(&p, false, PONG ROLE_MASTER QUIT), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_MASTER);
    /* QUIT's +OK after the verdict is not taken. */
    assert_int_equal(p.consumed, strlen(PONG ROLE_MASTER));
    assert_true(judge(&p, REDIS_WANT_PRIMARY, why));
    assert_string_equal(why, "role master");
    assert_true(judge(&p, REDIS_WANT_ANY, why));
    assert_false(judge(&p, REDIS_WANT_REPLICA, why));
    assert_string_equal(why, "role master, want replica");

    assert_int_equal(PARSE(&p, false, PONG ROLE_MASTER_ALONE), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_MASTER);
}

static void test_slave_connected(void **state)
{
    struct redis_parse p;
    char why[160];

    (void)state;
    assert_int_equal(PARSE(&p, false, PONG ROLE_SLAVE_CONNECTED QUIT), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_SLAVE);
    assert_string_equal(p.master.s, "127.0.0.1");
    assert_int_equal(p.master_port, 9000);
    assert_string_equal(p.link.s, "connected");
    assert_true(judge(&p, REDIS_WANT_REPLICA, why));
    assert_string_equal(why, "role slave, link to 127.0.0.1:9000 connected");
    assert_true(judge(&p, REDIS_WANT_ANY, why));
    assert_false(judge(&p, REDIS_WANT_PRIMARY, why));
    assert_string_equal(why, "role slave, want primary");
}

static void test_slave_link_down(void **state)
{
    static const char *const states[] = {"connect", "connecting", "handshake", "sync", "none"};
    struct redis_parse p;
    char why[160], buf[200];

    (void)state;
    assert_int_equal(PARSE(&p, false, PONG ROLE_SLAVE_CONNECTING), REDIS_ROLE);
    assert_string_equal(p.link.s, "connecting");
    assert_false(judge(&p, REDIS_WANT_REPLICA, why));
    assert_string_equal(why, "role slave, link to 127.0.0.1:9000 is connecting");
    /* A replica that lost its master still answers: up for role = any. */
    assert_true(judge(&p, REDIS_WANT_ANY, why));
    assert_false(judge(&p, REDIS_WANT_PRIMARY, why));

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        int n = snprintf(buf, sizeof(buf),
                         "+PONG\r\n*5\r\n$5\r\nslave\r\n$4\r\nhost\r\n:1\r\n$%zu\r\n%s\r\n:0\r\n",
                         strlen(states[i]), states[i]);

        assert_int_equal(parse(&p, false, buf, (size_t)n), REDIS_ROLE);
        assert_false(judge(&p, REDIS_WANT_REPLICA, why));
        assert_non_null(strstr(why, states[i]));
    }
    /* A replica reply without its state is not a connected replica. */
    assert_int_equal(PARSE(&p, false, PONG "*2\r\n$5\r\nslave\r\n$4\r\nhost\r\n"), REDIS_ROLE);
    assert_false(judge(&p, REDIS_WANT_REPLICA, why));
    /* Nor one whose state only starts with "connected". */
    assert_int_equal(PARSE(&p, false, PONG ROLE_SLAVE("connectedX", "10")), REDIS_ROLE);
    assert_false(judge(&p, REDIS_WANT_REPLICA, why));
}

static void test_other_roles(void **state)
{
    struct redis_parse p;
    char why[160];

    (void)state;
    assert_int_equal(PARSE(&p, false, PONG ROLE_SENTINEL), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_SENTINEL);
    for (int w = REDIS_WANT_ANY; w <= REDIS_WANT_REPLICA; w++)
        assert_false(judge(&p, (enum redis_want)w, why));
    assert_non_null(strstr(why, "role sentinel"));

    assert_int_equal(PARSE(&p, false, PONG "*1\r\n$7\r\nprimary\r\n"), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_UNKNOWN);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "unknown role 'primary', want any");
    /* Case matters: Redis writes the role in lower case. */
    assert_int_equal(PARSE(&p, false, PONG "*1\r\n$6\r\nMASTER\r\n"), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_UNKNOWN);
    /* A role as a simple string is still read. */
    assert_int_equal(PARSE(&p, false, PONG "*1\r\n+master\r\n"), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_MASTER);
    /* A role given as an integer or a null names none. */
    assert_int_equal(PARSE(&p, false, PONG "*1\r\n:1\r\n"), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_UNKNOWN);
    assert_int_equal(PARSE(&p, false, PONG "*1\r\n$-1\r\n"), REDIS_ROLE);
    assert_int_equal(p.role, REDIS_ROLE_UNKNOWN);
}

/* ---- AUTH and error replies ---- */

static void test_auth(void **state)
{
    struct redis_parse p;
    char why[160];

    (void)state;
    assert_int_equal(PARSE(&p, true, "+OK\r\n" PONG ROLE_MASTER QUIT), REDIS_ROLE);
    assert_true(judge(&p, REDIS_WANT_PRIMARY, why));

    /* A wrong password: the pipelined PING and ROLE fail too, but the
     * first error decides. */
    assert_int_equal(PARSE(&p, true,
                           "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                           "-NOAUTH Authentication required.\r\n"),
                     REDIS_ERR_REPLY);
    assert_int_equal(p.cmd, REDIS_CMD_AUTH);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(
        why, "AUTH replied -WRONGPASS invalid username-password pair or user is disabled.");

    /* No password configured, one required. */
    assert_int_equal(PARSE(&p, false, "-NOAUTH Authentication required.\r\n"), REDIS_ERR_REPLY);
    assert_int_equal(p.cmd, REDIS_CMD_PING);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "PING replied -NOAUTH Authentication required.");

    /* An error to ROLE (a proxy that does not know it). */
    assert_int_equal(PARSE(&p, false, PONG "-ERR unknown command 'ROLE'\r\n"), REDIS_ERR_REPLY);
    assert_int_equal(p.cmd, REDIS_CMD_ROLE);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "ROLE replied -ERR unknown command 'ROLE'");

    /* AUTH answered with something else than +OK. */
    assert_int_equal(PARSE(&p, true, "+QUEUED\r\n"), REDIS_UNEXPECTED);
    assert_int_equal(p.cmd, REDIS_CMD_AUTH);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "AUTH replied +QUEUED");
    /* Without AUTH sent, its +OK would be an odd PING reply. */
    assert_int_equal(PARSE(&p, false, "+OK\r\n" PONG), REDIS_UNEXPECTED);
    assert_int_equal(p.cmd, REDIS_CMD_PING);
}

static void test_unexpected(void **state)
{
    struct redis_parse p;
    char why[160];

    (void)state;
    assert_int_equal(PARSE(&p, false, "+PANG\r\n"), REDIS_UNEXPECTED);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "PING replied +PANG");
    assert_int_equal(PARSE(&p, false, "+PONGS\r\n"), REDIS_UNEXPECTED);
    assert_int_equal(PARSE(&p, false, ":1\r\n"), REDIS_UNEXPECTED);
    judge(&p, REDIS_WANT_ANY, why);
    assert_string_equal(why, "PING replied an integer");
    /* PING with an argument answers a bulk string: not what we sent. */
    assert_int_equal(PARSE(&p, false, "$4\r\nPONG\r\n"), REDIS_UNEXPECTED);
    assert_int_equal(PARSE(&p, false, PONG "$6\r\nmaster\r\n"), REDIS_UNEXPECTED);
    judge(&p, REDIS_WANT_ANY, why);
    assert_string_equal(why, "ROLE replied a bulk string");
    assert_int_equal(PARSE(&p, false, PONG "*0\r\n"), REDIS_UNEXPECTED);
    assert_int_equal(PARSE(&p, false, PONG "*-1\r\n"), REDIS_UNEXPECTED);
    judge(&p, REDIS_WANT_ANY, why);
    assert_string_equal(why, "ROLE replied an empty or null array");

    /* A long error is cut and quoted without its control bytes. */
    char buf[400];
    int n = snprintf(buf, sizeof(buf), "-ERR %0200d\x01\r\n", 7);
    assert_int_equal(parse(&p, false, buf, (size_t)n), REDIS_ERR_REPLY);
    assert_true(p.text.cut);
    assert_int_equal(p.text.len, REDIS_TEXT_MAX);
    judge(&p, REDIS_WANT_ANY, why);
    assert_non_null(strstr(why, "..."));
    assert_int_equal(PARSE(&p, false, "-ERR \x1b[31mred\r\n"), REDIS_ERR_REPLY);
    assert_string_equal(p.text.s, "ERR ?[31mred");
}

/* ---- truncated, malformed, oversized ---- */

static void test_truncated(void **state)
{
    static const char *const full[] = {PONG ROLE_MASTER, PONG ROLE_SLAVE_CONNECTED,
                                       PONG ROLE_SENTINEL};
    struct redis_parse p;
    char why[160];

    (void)state;
    for (size_t k = 0; k < sizeof(full) / sizeof(full[0]); k++) {
        size_t len = strlen(full[k]);

        /* Every proper prefix leaves the verdict open. */
        for (size_t n = 0; n < len; n++) {
            assert_int_equal(parse(&p, false, full[k], n), REDIS_MORE);
            assert_false(judge(&p, REDIS_WANT_ANY, why));
        }
        assert_int_equal(parse(&p, false, full[k], len), REDIS_ROLE);
    }
    assert_int_equal(PARSE(&p, false, PONG "*5\r\n$5\r\nslave\r\n"), REDIS_MORE);
    judge(&p, REDIS_WANT_ANY, why);
    assert_string_equal(why, "closed before the ROLE reply was complete");
    assert_int_equal(PARSE(&p, true, "+O"), REDIS_MORE);
    judge(&p, REDIS_WANT_ANY, why);
    assert_string_equal(why, "closed before the AUTH reply was complete");
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "PONG\r\n",                       /* no type byte */
        "+PONG\n",                        /* bare LF */
        "+PONG\rx",                       /* CR without LF */
        "\r\n",                           /* empty line */
        PONG ":\r\n",                     /* a number without digits */
        PONG ":12a\r\n",                  /* not a number */
        PONG ":1-2\r\n",                  /* a sign inside */
        PONG ":--1\r\n",                  /* two signs */
        PONG "$-2\r\n",                   /* negative length but null */
        PONG "*-0\r\n",                   /* same for counts */
        PONG "$3\r\nabcX\r\n",            /* bulk longer than its length */
        PONG "$3\r\nabc\rX",              /* bulk end without LF */
        PONG "*1\r\n%1\r\n",              /* RESP3 map: not sent to RESP2 clients */
        PONG ":99999999999999999999\r\n", /* 20 digits */
        PONG "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n", /* too deep */
    };
    struct redis_parse p;
    char why[160];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(&p, false, bad[i], strlen(bad[i])), REDIS_MALFORMED);
        assert_false(judge(&p, REDIS_WANT_ANY, why));
        assert_non_null(strstr(why, "not a RESP reply"));
    }
    /* The depth limit itself is fine. */
    assert_int_equal(
        PARSE(&p, false, PONG "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),
        REDIS_ROLE);
    /* So are 18 digits and a null bulk. */
    assert_int_equal(PARSE(&p, false, PONG "*2\r\n$-1\r\n:-999999999999999999\r\n"), REDIS_ROLE);
}

static void test_oversized(void **state)
{
    struct redis_parse p;
    char why[160];
    size_t len = REDIS_REPLY_MAX + 64;
    char *big = malloc(len);

    (void)state;
    assert_non_null(big);
    /* Declared too big: refused at once. */
    assert_int_equal(PARSE(&p, false, PONG "$20000\r\n"), REDIS_TOO_BIG);
    assert_false(judge(&p, REDIS_WANT_ANY, why));
    assert_string_equal(why, "ROLE reply longer than 16384 bytes");
    assert_int_equal(PARSE(&p, false, PONG "*10000\r\n"), REDIS_TOO_BIG);

    /* A simple string without an end: refused at its 16385th byte. */
    memset(big, 'a', len);
    big[0] = '+';
    assert_int_equal(parse(&p, false, big, len), REDIS_TOO_BIG);
    assert_int_equal(p.consumed, REDIS_REPLY_MAX + 1);
    assert_string_equal(redis_cmd_name(p.cmd), "PING");

    /* A ROLE of a master with many replicas, each item small. */
    size_t n = 0;
    n += (size_t)snprintf(big + n, len - n, PONG "*3\r\n$6\r\nmaster\r\n:0\r\n*2000\r\n");
    while (n + 16 < len)
        n += (size_t)snprintf(big + n, len - n, "*1\r\n$1\r\nx\r\n");
    assert_int_equal(parse(&p, false, big, n), REDIS_TOO_BIG);
    assert_int_equal(p.consumed, strlen(PONG) + REDIS_REPLY_MAX + 1);

    /* Exactly REDIS_REPLY_MAX bytes is fine: the bound is per reply. */
    memset(big, 'a', len);
    memcpy(big, PONG, strlen(PONG));
    big[strlen(PONG)] = '+';
    big[strlen(PONG) + REDIS_REPLY_MAX - 2] = '\r';
    big[strlen(PONG) + REDIS_REPLY_MAX - 1] = '\n';
    assert_int_equal(parse(&p, false, big, strlen(PONG) + REDIS_REPLY_MAX), REDIS_UNEXPECTED);
    assert_int_equal(p.cmd, REDIS_CMD_ROLE);
    free(big);
}

/* ---- split invariance ---- */

static void check_splits(const char *s, size_t len, bool auth)
{
    struct redis_parse whole, part;

    parse(&whole, auth, s, len);
    /* Byte at a time. */
    redis_parse_init(&part, auth);
    for (size_t i = 0; i < len; i++)
        redis_feed(&part, s + i, 1);
    assert_true(same_result(&whole, &part));
    /* Every cut in two and in three pieces (empty pieces included). */
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            redis_parse_init(&part, auth);
            redis_feed(&part, s, i);
            redis_feed(&part, s + i, j - i);
            redis_feed(&part, s + j, len - j);
            assert_true(same_result(&whole, &part));
        }
    }
}

static void test_splits(void **state)
{
    static const char *const replies[] = {
        PONG ROLE_MASTER QUIT,
        PONG ROLE_SLAVE_CONNECTED QUIT,
        PONG ROLE_SLAVE_CONNECTING,
        PONG ROLE_SENTINEL,
        "-NOAUTH Authentication required.\r\n",
        PONG "-ERR unknown command\r\n",
        PONG "*5\r\n$5\r\nslave\r\n$9\r\n127.0.",
        PONG ":12a\r\n",
        PONG "$-2\r\n",
    };
    static const char *const auth[] = {
        "+OK\r\n" PONG ROLE_SLAVE_CONNECTED QUIT,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
        check_splits(replies[i], strlen(replies[i]), false);
    for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++)
        check_splits(auth[i], strlen(auth[i]), true);
}

/* After a verdict, more bytes change nothing. */
static void test_after_verdict(void **state)
{
    struct redis_parse p;

    (void)state;
    assert_int_equal(PARSE(&p, false, PONG ROLE_MASTER), REDIS_ROLE);
    assert_int_equal(redis_feed(&p, "garbage", 7), REDIS_ROLE);
    assert_int_equal(p.consumed, strlen(PONG ROLE_MASTER));
    assert_int_equal(PARSE(&p, false, "x"), REDIS_MALFORMED);
    assert_int_equal(redis_feed(&p, PONG ROLE_MASTER, strlen(PONG ROLE_MASTER)), REDIS_MALFORMED);
    assert_int_equal(p.consumed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),         cmocka_unit_test(test_master),
        cmocka_unit_test(test_slave_connected), cmocka_unit_test(test_slave_link_down),
        cmocka_unit_test(test_other_roles),     cmocka_unit_test(test_auth),
        cmocka_unit_test(test_unexpected),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_splits),          cmocka_unit_test(test_after_verdict),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
