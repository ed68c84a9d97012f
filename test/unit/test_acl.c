/*
 * test_acl.c - unit tests for core/acl.c: allow/deny verdicts (IPv4, IPv6,
 * v4-mapped clients, overlaps, /0, deny over allow, no allow = allow all),
 * the merged ranges against a plain list scan on random prefixes, and the
 * per-source connection table (limit, reclaiming, a full table, IPv6
 * grouping, several threads).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/acl.h"

/* Adds "ADDR/LEN" (or a bare address) to <a>. */
static void add(struct acl *a, bool deny, const char *cidr)
{
    char host[64];
    const char *slash = strchr(cidr, '/');
    size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
    uint8_t addr[16];
    int family = strchr(cidr, ':') ? AF_INET6 : AF_INET;
    unsigned len = family == AF_INET ? 32 : 128;

    memcpy(host, cidr, n);
    host[n] = '\0';
    assert_int_equal(inet_pton(family, host, addr), 1);
    if (slash)
        len = (unsigned)atoi(slash + 1);
    assert_int_equal(acl_add(a, deny, family, addr, len), 0);
}

/* The verdict for the address text <ip>, looked up as a socket address. */
static enum acl_verdict check(const struct acl *a, const char *ip)
{
    struct sockaddr_storage ss = {0};

    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return acl_check(a, (struct sockaddr *)&ss);
}

static struct acl *built(const char *const *allow, const char *const *deny)
{
    struct acl *a = acl_new();

    assert_non_null(a);
    for (; allow && *allow; allow++)
        add(a, false, *allow);
    for (; deny && *deny; deny++)
        add(a, true, *deny);
    assert_int_equal(acl_build(a), 0);
    return a;
}

static void test_empty_allows_all(void **state)
{
    struct acl *a = built(NULL, NULL);

    (void)state;
    assert_false(acl_has_allow(a));
    assert_int_equal(check(a, "1.2.3.4"), ACL_ALLOW);
    assert_int_equal(check(a, "2001:db8::1"), ACL_ALLOW);
    acl_unref(a);
}

static void test_deny_only(void **state)
{
    const char *deny[] = {"10.0.0.0/8", "192.168.1.7", NULL};
    struct acl *a = built(NULL, deny);

    (void)state;
    assert_int_equal(check(a, "10.255.255.255"), ACL_DENY);
    assert_int_equal(check(a, "10.0.0.0"), ACL_DENY);
    assert_int_equal(check(a, "11.0.0.0"), ACL_ALLOW);
    assert_int_equal(check(a, "9.255.255.255"), ACL_ALLOW);
    assert_int_equal(check(a, "192.168.1.7"), ACL_DENY);
    assert_int_equal(check(a, "192.168.1.8"), ACL_ALLOW);
    assert_int_equal(check(a, "192.168.1.6"), ACL_ALLOW);
    assert_int_equal(check(a, "::1"), ACL_ALLOW);
    acl_unref(a);
}

static void test_allow_list_and_deny_wins(void **state)
{
    const char *allow[] = {"127.0.0.0/30", "2001:db8::/32", NULL};
    const char *deny[] = {"127.0.0.3", "2001:db8:bad::/48", NULL};
    struct acl *a = built(allow, deny);

    (void)state;
    assert_true(acl_has_allow(a));
    assert_int_equal(check(a, "127.0.0.1"), ACL_ALLOW);
    assert_int_equal(check(a, "127.0.0.2"), ACL_ALLOW);
    assert_int_equal(check(a, "127.0.0.3"), ACL_DENY);
    assert_int_equal(check(a, "127.0.0.4"), ACL_NOT_ALLOWED);
    assert_int_equal(check(a, "2001:db8:1::5"), ACL_ALLOW);
    assert_int_equal(check(a, "2001:db8:bad::5"), ACL_DENY);
    assert_int_equal(check(a, "2001:db9::"), ACL_NOT_ALLOWED);
    /* An allow list of one family refuses the other family. */
    assert_int_equal(check(a, "::1"), ACL_NOT_ALLOWED);
    acl_unref(a);
}

static void test_v4_mapped_clients_use_v4_rules(void **state)
{
    const char *allow[] = {"127.0.0.0/8", NULL};
    const char *deny[] = {"127.0.0.3", "::ffff:127.0.0.9", "::ffff:10.0.0.0/104", NULL};
    struct acl *a = built(allow, deny);

    (void)state;
    assert_int_equal(check(a, "::ffff:127.0.0.1"), ACL_ALLOW);
    assert_int_equal(check(a, "::ffff:127.0.0.3"), ACL_DENY);
    assert_int_equal(check(a, "::ffff:128.0.0.1"), ACL_NOT_ALLOWED);
    /* A v4-mapped rule is an IPv4 rule: it matches plain IPv4 clients. */
    assert_int_equal(check(a, "127.0.0.9"), ACL_DENY);
    assert_int_equal(check(a, "10.1.2.3"), ACL_DENY);
    assert_int_equal(check(a, "::ffff:10.1.2.3"), ACL_DENY);
    acl_unref(a);
}

static void test_zero_prefixes(void **state)
{
    const char *allow4[] = {"0.0.0.0/0", NULL};
    const char *deny6[] = {"::/0", NULL};
    struct acl *a = built(allow4, NULL);
    struct acl *b = built(NULL, deny6);

    (void)state;
    assert_int_equal(check(a, "0.0.0.0"), ACL_ALLOW);
    assert_int_equal(check(a, "255.255.255.255"), ACL_ALLOW);
    assert_int_equal(check(a, "::1"), ACL_NOT_ALLOWED);
    /* ::/0 contains the v4-mapped block, so it covers IPv4 clients too. */
    assert_int_equal(check(b, "1.2.3.4"), ACL_DENY);
    assert_int_equal(check(b, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ACL_DENY);
    assert_int_equal(check(b, "::"), ACL_DENY);
    acl_unref(a);
    acl_unref(b);
}

static void test_overlaps_merge(void **state)
{
    /* Nested, overlapping and touching prefixes: 10.0.0.0/24 and
     * 10.0.1.0/24 touch, the /25 and the single address sit inside. */
    const char *allow[] = {
        "10.0.0.0/24",        "10.0.1.0/24", "10.0.0.128/25", "10.0.0.5",  "10.0.3.0/24",
        "255.255.255.255/32", "fe80::/10",   "fe80::/64",     "ffff::/16", NULL};
    struct acl *a = built(allow, NULL);

    (void)state;
    assert_int_equal(acl_nranges(a), 5);
    assert_int_equal(check(a, "10.0.1.255"), ACL_ALLOW);
    assert_int_equal(check(a, "10.0.2.0"), ACL_NOT_ALLOWED);
    assert_int_equal(check(a, "10.0.3.0"), ACL_ALLOW);
    assert_int_equal(check(a, "255.255.255.255"), ACL_ALLOW);
    assert_int_equal(check(a, "255.255.255.254"), ACL_NOT_ALLOWED);
    assert_int_equal(check(a, "febf:ffff::1"), ACL_ALLOW);
    assert_int_equal(check(a, "fec0::"), ACL_NOT_ALLOWED);
    assert_int_equal(check(a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ACL_ALLOW);
    acl_unref(a);
}

static void test_bad_input(void **state)
{
    struct acl *a = acl_new();
    uint8_t addr[16] = {0};

    (void)state;
    assert_int_equal(acl_add(a, false, AF_INET, addr, 33), -EINVAL);
    assert_int_equal(acl_add(a, false, AF_INET6, addr, 129), -EINVAL);
    assert_int_equal(acl_add(a, false, AF_UNIX, addr, 0), -EINVAL);
    assert_int_equal(acl_build(a), 0);
    assert_int_equal(acl_add(a, false, AF_INET, addr, 8), -EINVAL);
    acl_unref(a);
}

static uint64_t rng_state = 0x12345678abcdefull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Random IPv4 prefixes against a plain scan of the same rules. */
static void test_matches_list_scan(void **state)
{
    enum { N = 500, PROBES = 20000 };
    static uint32_t net[N], mask[N];
    static bool deny[N];
    struct acl *a = acl_new();

    (void)state;
    for (int i = 0; i < N; i++) {
        unsigned len = 8 + rnd() % 25;
        uint8_t b[4];

        mask[i] = ~0u << (32 - len);
        /* Cluster the prefixes in 10.0.0.0/12 so that they overlap. */
        net[i] = (0x0a000000u | (rnd() & 0x000fffffu)) & mask[i];
        deny[i] = rnd() % 3 == 0;
        b[0] = (uint8_t)(net[i] >> 24);
        b[1] = (uint8_t)(net[i] >> 16);
        b[2] = (uint8_t)(net[i] >> 8);
        b[3] = (uint8_t)net[i];
        assert_int_equal(acl_add(a, deny[i], AF_INET, b, len), 0);
    }
    assert_int_equal(acl_build(a), 0);
    for (int p = 0; p < PROBES; p++) {
        uint32_t x = p % 2 ? 0x0a000000u | (rnd() & 0x000fffffu) : rnd();
        bool in_deny = false, in_allow = false, any_allow = false;
        enum acl_verdict want;

        for (int i = 0; i < N; i++) {
            any_allow |= !deny[i];
            if ((x & mask[i]) == net[i])
                *(deny[i] ? &in_deny : &in_allow) = true;
        }
        want = in_deny ? ACL_DENY : any_allow && !in_allow ? ACL_NOT_ALLOWED : ACL_ALLOW;
        assert_int_equal(acl_check_v4(a, x), want);
    }
    acl_unref(a);
}

/* ---- per-source table ---- */

static struct acl_src_key key4(const char *ip)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    struct acl_src_key k;

    assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
    assert_true(acl_src_key((struct sockaddr *)&s, 64, &k));
    return k;
}

static struct acl_src_key key6(const char *ip, unsigned prefix)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6};
    struct acl_src_key k;

    assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
    assert_true(acl_src_key((struct sockaddr *)&s, prefix, &k));
    return k;
}

/* acl_src_take() with a connection limit only, at a fixed time. */
static enum acl_src_result take(struct acl_src *t, const struct acl_src_key *k, uint32_t limit)
{
    struct acl_src_limits l = {.limit = limit};

    return acl_src_take(t, k, &l, 1);
}

/* rate_per_source = 5/s: five at once, then one per 200 ms; a refusal
 * spends no token; other sources are not held back. */
static void test_src_rate(void **state)
{
    struct acl_src *t = acl_src_new(1024);
    struct acl_src_key a = key4("10.0.0.1"), b = key4("10.0.0.2");
    struct acl_src_limits l = {.rate = 5};
    uint64_t now = 1000000;

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(acl_src_take(t, &a, &l, now), ACL_SRC_TAKEN);
    assert_int_equal(acl_src_take(t, &a, &l, now), ACL_SRC_RATE);
    assert_int_equal(acl_src_take(t, &a, &l, now + 199999), ACL_SRC_RATE);
    assert_int_equal(acl_src_take(t, &b, &l, now), ACL_SRC_TAKEN);
    assert_int_equal(acl_src_take(t, &a, &l, now + 200000), ACL_SRC_TAKEN);
    assert_int_equal(acl_src_take(t, &a, &l, now + 200000), ACL_SRC_RATE);
    assert_int_equal(acl_src_count(t, &a), 6);
    /* The last connection gone, the entry stays: its rate is remembered. */
    for (int i = 0; i < 6; i++)
        acl_src_put(t, &a);
    assert_int_equal(acl_src_count(t, &a), 0);
    assert_int_equal(acl_src_take(t, &a, &l, now + 300000), ACL_SRC_RATE);
    /* A full second of quiet refills the bucket. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(acl_src_take(t, &a, &l, now + 1400000), ACL_SRC_TAKEN);
    assert_int_equal(acl_src_take(t, &a, &l, now + 1400000), ACL_SRC_RATE);
    /* Both limits: the connection count is checked first. */
    l.limit = 5;
    assert_int_equal(acl_src_take(t, &a, &l, now + 9000000), ACL_SRC_LIMIT);
    acl_src_free(t);
}

/* A flood of distinct sources under a rate limit: the table stays at its
 * size (new sources untracked when full), and entries whose bucket has
 * refilled make room for new sources again. */
static void test_src_rate_entries_expire(void **state)
{
    struct acl_src *t = acl_src_new(64);
    struct acl_src_limits l = {.rate = 10};
    uint32_t untracked = 0, cap;

    (void)state;
    for (uint32_t i = 0; i < 100000; i++) {
        struct acl_src_key k = {.hi = 0, .lo = 0xffff00000000ull | i};

        if (acl_src_take(t, &k, &l, 1000000) == ACL_SRC_UNTRACKED)
            untracked++;
        else
            acl_src_put(t, &k);
    }
    cap = acl_src_entries(t);
    assert_true(untracked > 0 && cap < 100000 && cap + untracked == 100000);
    /* A second later every bucket is full again: new sources find room
     * (200: a quarter of the room, so that no stripe fills up with them). */
    for (uint32_t i = 0; i < 200; i++) {
        struct acl_src_key k = {.hi = 1, .lo = i};

        assert_int_equal(acl_src_take(t, &k, &l, 2000001), ACL_SRC_TAKEN);
        acl_src_put(t, &k);
    }
    assert_true(acl_src_entries(t) <= cap);
    acl_src_free(t);
}

static void test_src_limit_and_reclaim(void **state)
{
    struct acl_src *t = acl_src_new(1024);
    struct acl_src_key a = key4("127.0.0.2"), b = key4("127.0.0.3");

    (void)state;
    assert_non_null(t);
    assert_int_equal(take(t, &a, 2), ACL_SRC_TAKEN);
    assert_int_equal(take(t, &a, 2), ACL_SRC_TAKEN);
    assert_int_equal(take(t, &a, 2), ACL_SRC_LIMIT);
    assert_int_equal(take(t, &b, 2), ACL_SRC_TAKEN);
    assert_int_equal(acl_src_count(t, &a), 2);
    assert_int_equal(acl_src_entries(t), 2);
    acl_src_put(t, &a);
    assert_int_equal(take(t, &a, 2), ACL_SRC_TAKEN);
    acl_src_put(t, &a);
    acl_src_put(t, &a);
    acl_src_put(t, &b);
    assert_int_equal(acl_src_entries(t), 0);
    assert_int_equal(acl_src_count(t, &a), 0);
    acl_src_free(t);
}

static void test_src_v6_grouping_and_mapped(void **state)
{
    struct acl_src_key a = key6("2001:db8:1:2:aaaa::1", 64), b = key6("2001:db8:1:2:bbbb::9", 64);
    struct acl_src_key c = key6("2001:db8:1:3::1", 64), d = key6("2001:db8:1:2:aaaa::1", 128);
    struct acl_src_key m = key6("::ffff:127.0.0.2", 64), v4 = key4("127.0.0.2");
    struct sockaddr un = {.sa_family = AF_UNIX};
    struct acl_src_key k;

    (void)state;
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_not_equal(&a, &c, sizeof(a));
    assert_memory_not_equal(&a, &d, sizeof(a));
    assert_memory_equal(&m, &v4, sizeof(m));
    assert_false(acl_src_key(&un, 64, &k));
}

/* Many distinct sources: the table stops at its bound, admits the rest
 * untracked, and takes new sources again once entries are reclaimed. */
static void test_src_full_table(void **state)
{
    enum { N = 20000 };
    struct acl_src *t = acl_src_new(1024);
    uint32_t taken = 0, untracked = 0;
    struct acl_src_key k;

    (void)state;
    for (uint32_t i = 0; i < N; i++) {
        k.hi = 0;
        k.lo = 0xffff0a000000ull + i;
        switch (take(t, &k, 1)) {
        case ACL_SRC_TAKEN:
            taken++;
            break;
        case ACL_SRC_UNTRACKED:
            untracked++;
            break;
        default:
            fail();
        }
    }
    assert_int_equal(taken + untracked, N);
    assert_true(taken <= 1024);
    assert_true(taken >= 512);
    assert_int_equal(acl_src_entries(t), taken);
    /* Reclaim all, in an order unlike the insertion order, through the
     * backward shifts of the deletions. */
    for (uint32_t i = N; i-- > 0;) {
        k.hi = 0;
        k.lo = 0xffff0a000000ull + i;
        if (acl_src_count(t, &k))
            acl_src_put(t, &k);
    }
    assert_int_equal(acl_src_entries(t), 0);
    k.lo = 0xffff0b000001ull;
    assert_int_equal(take(t, &k, 1), ACL_SRC_TAKEN);
    acl_src_put(t, &k);
    acl_src_free(t);
}

/* Backward-shift deletion under churn keeps every live entry reachable. */
static void test_src_churn(void **state)
{
    enum { KEYS = 600, ROUNDS = 100000 };
    static uint32_t model[KEYS];
    struct acl_src *t = acl_src_new(2048);

    (void)state;
    for (int r = 0; r < ROUNDS; r++) {
        uint32_t i = rnd() % KEYS;
        struct acl_src_key k = {.hi = i * 7919ull, .lo = i};

        if (model[i] && rnd() % 2) {
            acl_src_put(t, &k);
            model[i]--;
        } else if (take(t, &k, 3) == ACL_SRC_TAKEN) {
            model[i]++;
        } else {
            assert_int_equal(model[i], 3);
        }
        if (r % 997 == 0) {
            uint32_t live = 0;

            for (uint32_t j = 0; j < KEYS; j++) {
                struct acl_src_key q = {.hi = j * 7919ull, .lo = j};

                assert_int_equal(acl_src_count(t, &q), model[j]);
                live += model[j] != 0;
            }
            assert_int_equal(acl_src_entries(t), live);
        }
    }
    acl_src_free(t);
}

struct thr_arg {
    struct acl_src *t;
    uint32_t limit;
    uint32_t ok;
};

static void *taker(void *p)
{
    struct thr_arg *a = p;
    struct acl_src_key k = {.hi = 0, .lo = 42};

    for (int i = 0; i < 1000; i++) {
        if (take(a->t, &k, a->limit) == ACL_SRC_TAKEN)
            a->ok++;
    }
    return NULL;
}

/* Workers race for one source's slots: exactly <limit> of them win. */
static void test_src_threads(void **state)
{
    enum { T = 4 };
    struct acl_src *t = acl_src_new(64);
    struct thr_arg args[T];
    pthread_t th[T];
    uint32_t ok = 0;

    (void)state;
    for (int i = 0; i < T; i++) {
        args[i] = (struct thr_arg){.t = t, .limit = 100};
        assert_int_equal(pthread_create(&th[i], NULL, taker, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    assert_int_equal(ok, 100);
    acl_src_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_allows_all),
        cmocka_unit_test(test_deny_only),
        cmocka_unit_test(test_allow_list_and_deny_wins),
        cmocka_unit_test(test_v4_mapped_clients_use_v4_rules),
        cmocka_unit_test(test_zero_prefixes),
        cmocka_unit_test(test_overlaps_merge),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_matches_list_scan),
        cmocka_unit_test(test_src_limit_and_reclaim),
        cmocka_unit_test(test_src_rate),
        cmocka_unit_test(test_src_rate_entries_expire),
        cmocka_unit_test(test_src_v6_grouping_and_mapped),
        cmocka_unit_test(test_src_full_table),
        cmocka_unit_test(test_src_churn),
        cmocka_unit_test(test_src_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
