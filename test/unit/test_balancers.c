/*
 * test_balancers.c - the nine balancers as pure functions.
 *
 * Pools and servers are built by hand (no sockets, no snapshot); each
 * behaviour test runs once per algorithm, named "<behaviour>/<algorithm>".
 * Random draws and keys come from fixed seeds, so every run makes the same
 * picks and a failure reproduces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "../../balancers/common.h"
#include "../../core/qsbr.h"

#define NPICKS 100000
#define LIVE   4000 /* connections held open in the load simulation */

static const char *const algos[] = {"roundrobin", "weighted", "leastconn", "random", "p2c",
                                    "source",     "ketama",   "maglev",    "jump"};
#define NALGOS (sizeof(algos) / sizeof(algos[0]))

/* Fake of core/qsbr.c: a single-threaded test has no reader to wait for. */
void qsbr_retire(void *ptr, void (*fn)(void *))
{
    fn(ptr);
}

/* ---- fixtures ---------------------------------------------------------- */

/* A test server and its position in pool_new()'s order, for counting picks. */
struct tsrv {
    struct server s; /* first: a picked server is its tsrv */
    uint32_t index;
};
#define IDX(sp) (((const struct tsrv *)(sp))->index)

/* A pool of <n> primaries named s0.. with weights <w> (NULL: all 1), then
 * <nbackup> backups named b0.., as config validation would build it. */
static struct pool *pool_new(const char *algo, uint32_t n, const uint32_t *w, uint32_t nbackup)
{
    struct pool *p = calloc(1, sizeof(*p));
    uint32_t total = n + nbackup;

    assert_non_null(p);
    p->name = strdup("test");
    p->ops = lb_registry_find(algo);
    assert_non_null(p->ops);
    p->servers = calloc(total ? total : 1, sizeof(*p->servers));
    assert_non_null(p->servers);
    p->nservers = total;
    for (uint32_t i = 0; i < total; i++) {
        struct tsrv *ts = aligned_alloc(64, (sizeof(*ts) + 63) / 64 * 64);
        struct server *s = &ts->s;
        char name[32];

        assert_non_null(ts);
        memset(ts, 0, sizeof(*ts));
        ts->index = i;
        if (i < n)
            snprintf(name, sizeof(name), "s%u", i);
        else
            snprintf(name, sizeof(name), "b%u", i - n);
        s->name = strdup(name);
        s->backup = i >= n;
        atomic_init(&s->cfg_weight, (i < n && w) ? w[i] : 1);
        atomic_init(&s->state, SRV_UP);
        atomic_init(&s->weight, atomic_load(&s->cfg_weight));
        atomic_init(&s->active, 0);
        atomic_init(&s->conns_total, 0);
        atomic_init(&s->connect_fail, 0);
        atomic_init(&s->bytes_in, 0);
        atomic_init(&s->bytes_out, 0);
        p->servers[i] = s;
    }
    assert_int_equal(p->ops->init(p), 0);
    return p;
}

static void pool_free(struct pool *p)
{
    if (p->ops->destroy)
        p->ops->destroy(p);
    for (uint32_t i = 0; i < p->nservers; i++) {
        free(p->servers[i]->name);
        free(p->servers[i]);
    }
    free(p->servers);
    free(p->name);
    free(p);
}

/* Renames server <s> to s<i>, as another line of the config would name it. */
static void rename_server(struct server *s, uint32_t i)
{
    char name[32];

    snprintf(name, sizeof(name), "s%u", i);
    free(s->name);
    s->name = strdup(name);
}

/* Rebuilds <p> after its servers were renamed, as a reload would. */
static void rebuild(struct pool *p)
{
    p->ops->destroy(p);
    assert_int_equal(p->ops->init(p), 0);
}

/* Changes a server's state or weight the way server_set_state would. */
static void set_state(struct pool *p, struct server *s, enum srv_state st)
{
    atomic_store(&s->state, st);
    if (p->ops->server_state)
        p->ops->server_state(p, s);
}

static void set_weight(struct pool *p, struct server *s, uint32_t w)
{
    atomic_store(&s->weight, w);
    if (p->ops->server_state)
        p->ops->server_state(p, s);
}

static struct server *pick(struct pool *p, uint64_t key, const struct server *avoid, uint64_t *rng)
{
    struct lb_pick_ctx ctx = {.key = key, .avoid = avoid, .rng = rng};

    return p->ops->pick(p, &ctx);
}

/* The i-th test key: well spread, as lb_hash_addr makes them. */
static uint64_t key_of(uint64_t i)
{
    return lb__mix64(i * 0x9e3779b97f4a7c15ULL + 12345);
}

/*
 * Picks <k> times with a fresh key each time, holding the last <hold>
 * connections open (the oldest closes as a new one opens) so that leastconn
 * and p2c see load, and counts picks per server index. Every pick must be
 * able to take its connection (max_conns honoured).
 */
static void picks(struct pool *p, uint32_t k, const struct server *avoid, uint32_t hold,
                  uint32_t *count)
{
    struct server **live = calloc(hold, sizeof(*live));
    uint64_t rng = 42;

    assert_non_null(live);
    memset(count, 0, p->nservers * sizeof(*count));
    for (uint32_t i = 0; i < k; i++) {
        struct server *s = pick(p, key_of(i), avoid, &rng);

        assert_non_null(s);
        count[IDX(s)]++;
        if (live[i % hold])
            server_put(live[i % hold]);
        assert_true(server_take(s));
        live[i % hold] = s;
    }
    for (uint32_t i = 0; i < hold; i++) {
        if (live[i])
            server_put(live[i]);
    }
    free(live);
}

/* A short run with a few connections held, for behaviour tests. */
static void sample(struct pool *p, uint32_t k, const struct server *avoid, uint32_t *count)
{
    picks(p, k, avoid, 8, count);
}

/* ---- distribution ------------------------------------------------------ */

/*
 * Each server's share of the picks must be within <tol> (a fraction of all
 * picks: 0.02 is the 2%) of its weighted share, and, so that small
 * shares are checked too, within <rel> of it relative to the share.
 */
static void check_distribution(const char *algo, uint32_t n, const uint32_t *w, double tol,
                               double rel)
{
    struct pool *p = pool_new(algo, n, w, 0);
    uint32_t *count = calloc(n, sizeof(*count));
    double wsum = 0, worst = 0;

    assert_non_null(count);
    for (uint32_t i = 0; i < n; i++)
        wsum += w ? w[i] : 1;
    picks(p, NPICKS, NULL, LIVE, count);
    for (uint32_t i = 0; i < n; i++) {
        double want = (w ? w[i] : 1) / wsum, got = (double)count[i] / NPICKS;
        double err = got > want ? got - want : want - got;

        if (err / want > worst)
            worst = err / want;
        if (err > tol || err > rel * want)
            fail_msg("%s n=%u %s: s%u got %.4f of picks, want %.4f", algo, n,
                     w ? "unequal" : "equal", i, got, want);
    }
    if (getenv("LB_TEST_VERBOSE"))
        print_message("%s n=%u %s: worst relative error %.4f\n", algo, n, w ? "unequal" : "equal",
                      worst);
    free(count);
    pool_free(p);
}

static void test_distribution(void **state)
{
    const char *algo = *state;
    static const uint32_t w2[] = {1, 3};
    uint32_t w5[5], w50[50];
    /* Maglev: the paper's 1% for M > 100 N. The relative bound is about
     * five standard deviations of 100,000 draws at the smallest share
     * (0.67% of the picks), with ketama's ring spread inside it. */
    double tol = strcmp(algo, "maglev") == 0 ? 0.01 : 0.02;
    double rel = 0.20;

    for (uint32_t i = 0; i < 50; i++) {
        if (i < 5)
            w5[i] = i + 1;
        w50[i] = 1 + i % 5;
    }
    check_distribution(algo, 2, NULL, tol, rel);
    check_distribution(algo, 2, w2, tol, rel);
    check_distribution(algo, 5, NULL, tol, rel);
    check_distribution(algo, 5, w5, tol, rel);
    check_distribution(algo, 50, NULL, tol, rel);
    check_distribution(algo, 50, w50, tol, rel);
}

/* ---- behaviour every algorithm honours --------------------------------- */

static void test_backup(void **state)
{
    struct pool *p = pool_new(*state, 3, NULL, 2);
    uint32_t count[5];

    sample(p, 2000, NULL, count);
    assert_int_equal(count[3] + count[4], 0);
    for (int i = 0; i < 3; i++)
        set_state(p, p->servers[i], SRV_DOWN);
    sample(p, 2000, NULL, count);
    assert_int_equal(count[3] + count[4], 2000);
    assert_true(count[3] > 0 && count[4] > 0);
    /* One primary back: the backups leave at once. */
    set_state(p, p->servers[1], SRV_UP);
    sample(p, 2000, NULL, count);
    assert_int_equal(count[1], 2000);
    /* Backups down too: nothing can serve. */
    set_state(p, p->servers[1], SRV_DOWN);
    set_state(p, p->servers[3], SRV_DOWN);
    set_state(p, p->servers[4], SRV_DOWN);
    assert_null(pick(p, 1, NULL, &(uint64_t){1}));
    pool_free(p);
}

static void test_weight_zero(void **state)
{
    static const uint32_t w[] = {0, 1, 2, 1};
    struct pool *p = pool_new(*state, 4, w, 0);
    uint32_t count[4];

    sample(p, 4000, NULL, count);
    assert_int_equal(count[0], 0);
    assert_true(count[1] > 0 && count[2] > 0 && count[3] > 0);
    /* Set at run time (admin or slow start), then back. */
    set_weight(p, p->servers[2], 0);
    sample(p, 4000, NULL, count);
    assert_int_equal(count[0] + count[2], 0);
    set_weight(p, p->servers[0], 1);
    set_weight(p, p->servers[2], 1);
    sample(p, 4000, NULL, count);
    for (int i = 0; i < 4; i++)
        assert_true(count[i] > 0);
    /* Every weight 0: nothing takes new connections. */
    for (int i = 0; i < 4; i++)
        set_weight(p, p->servers[i], 0);
    assert_null(pick(p, 1, NULL, &(uint64_t){1}));
    pool_free(p);
}

static void test_drain_down(void **state)
{
    struct pool *p = pool_new(*state, 4, NULL, 0);
    uint32_t count[4];

    set_state(p, p->servers[1], SRV_DRAIN);
    set_state(p, p->servers[2], SRV_DOWN);
    sample(p, 4000, NULL, count);
    assert_int_equal(count[1] + count[2], 0);
    assert_true(count[0] > 0 && count[3] > 0);
    set_state(p, p->servers[1], SRV_UP);
    sample(p, 4000, NULL, count);
    assert_true(count[1] > 0);
    assert_int_equal(count[2], 0);
    pool_free(p);
}

static void test_max_conns(void **state)
{
    struct pool *p = pool_new(*state, 3, NULL, 0);
    struct server *full = p->servers[1];
    uint32_t count[3];

    atomic_store(&full->max_conns, 2);
    atomic_store(&full->active, 2);
    sample(p, 3000, NULL, count);
    assert_int_equal(count[1], 0);
    assert_false(server_take(full));
    /* A connection closes: it takes new ones again. */
    server_put(full);
    sample(p, 3000, NULL, count);
    assert_true(count[1] > 0);
    pool_free(p);
}

static void test_avoid(void **state)
{
    struct pool *p = pool_new(*state, 4, NULL, 1);
    struct server *bad = p->servers[2];
    uint64_t rng = 3;
    uint32_t count[5];

    sample(p, 4000, bad, count);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[4], 0);
    /* The avoided server is the only primary: the backup serves. */
    set_state(p, p->servers[0], SRV_DOWN);
    set_state(p, p->servers[1], SRV_DOWN);
    set_state(p, p->servers[3], SRV_DOWN);
    assert_ptr_equal(pick(p, 5, bad, &rng), p->servers[4]);
    /* Nothing else can serve: the avoided server beats refusing. */
    set_state(p, p->servers[4], SRV_DOWN);
    assert_ptr_equal(pick(p, 5, bad, &rng), bad);
    set_state(p, bad, SRV_DOWN);
    assert_null(pick(p, 5, bad, &rng));
    pool_free(p);
}

static void test_empty(void **state)
{
    struct pool *p = pool_new(*state, 0, NULL, 0);

    assert_null(pick(p, 1, NULL, &(uint64_t){1}));
    pool_free(p);
    /* Only backups. */
    p = pool_new(*state, 0, NULL, 2);
    assert_non_null(pick(p, 1, NULL, &(uint64_t){1}));
    pool_free(p);
}

/* A weight change reaches the next pick through server_state. */
static void test_weight_change(void **state)
{
    struct pool *p = pool_new(*state, 2, NULL, 0);
    uint32_t count[2];

    set_weight(p, p->servers[0], 4);
    picks(p, NPICKS, NULL, LIVE, count);
    if (count[0] < NPICKS * 0.75 || count[0] > NPICKS * 0.85)
        fail_msg("%s: s0 at weight 4 of 5 got %u of %u picks", (char *)*state, count[0], NPICKS);
    pool_free(p);
}

/* ---- hashing algorithms ------------------------------------------------ */

static bool is_hashing(const char *algo)
{
    return lb_registry_find(algo)->caps & LB_CAP_HASH_KEY;
}

/* Maps NPICKS keys to server indices. */
static void map_keys(struct pool *p, uint32_t *out)
{
    uint64_t rng = 9;

    for (uint32_t i = 0; i < NPICKS; i++) {
        struct server *s = pick(p, key_of(i), NULL, &rng);

        assert_non_null(s);
        out[i] = IDX(s);
    }
}

/* Same config, independent builds: every key lands on the same server. */
static void test_same_key(void **state)
{
    static const uint32_t w[] = {3, 1, 2, 5, 1, 1, 4};
    struct pool *a, *b;
    uint32_t *ma = calloc(NPICKS, sizeof(*ma)), *mb = calloc(NPICKS, sizeof(*mb));

    assert_non_null(ma);
    assert_non_null(mb);
    a = pool_new(*state, 7, w, 0);
    b = pool_new(*state, 7, w, 0);
    map_keys(a, ma);
    map_keys(b, mb);
    assert_memory_equal(ma, mb, NPICKS * sizeof(*ma));
    pool_free(a);
    pool_free(b);
    free(ma);
    free(mb);
}

/* Ketama and maglev hash server names: the order of server lines is free. */
static void test_order_free(void **state)
{
    static const uint32_t w[] = {3, 1, 2, 5, 1};
    static const uint32_t wr[] = {1, 5, 2, 1, 3};
    struct pool *a = pool_new(*state, 5, w, 0), *b = pool_new(*state, 5, wr, 0);
    uint64_t rng = 1;

    /* Reverse b's names (and weights above) so that b is a permuted a. */
    for (uint32_t i = 0; i < 5; i++)
        rename_server(b->servers[i], 4 - i);
    rebuild(b);
    for (uint32_t i = 0; i < NPICKS; i++) {
        struct server *x = pick(a, key_of(i), NULL, &rng), *y = pick(b, key_of(i), NULL, &rng);

        if (strcmp(x->name, y->name) != 0)
            fail_msg("key %u: %s vs %s", i, x->name, y->name);
    }
    pool_free(a);
    pool_free(b);
}

/*
 * A server going down is skipped without a rebuild: keys of the others do
 * not move, its keys spread deterministically over several servers, and
 * they come back to it when it is up again.
 */
static void test_down_fallthrough(void **state)
{
    const uint32_t n = 10, gone = 4;
    struct pool *p = pool_new(*state, n, NULL, 0);
    uint32_t *before = calloc(NPICKS, sizeof(*before)), *after = calloc(NPICKS, sizeof(*after));
    uint32_t spread[10] = {0}, targets = 0;

    assert_non_null(before);
    assert_non_null(after);
    map_keys(p, before);
    set_state(p, p->servers[gone], SRV_DOWN);
    map_keys(p, after);
    for (uint32_t i = 0; i < NPICKS; i++) {
        if (before[i] != gone)
            assert_int_equal(after[i], before[i]);
        else
            spread[after[i]]++;
    }
    assert_int_equal(spread[gone], 0);
    for (uint32_t i = 0; i < n; i++)
        targets += spread[i] > 0;
    if (targets < 3)
        fail_msg("%s: the keys of a down server went to %u servers", (char *)*state, targets);
    set_state(p, p->servers[gone], SRV_UP);
    map_keys(p, after);
    assert_memory_equal(before, after, NPICKS * sizeof(*before));
    free(before);
    free(after);
    pool_free(p);
}

/*
 * Removing one of <n> servers from the config (a rebuilt table) moves at
 * most <max_moved> of the keys that were not on it. <gone> is the index
 * removed; the rest keep their names.
 */
static void check_removal(const char *algo, uint32_t n, uint32_t gone, double max_moved)
{
    struct pool *a = pool_new(algo, n, NULL, 0), *b = pool_new(algo, n - 1, NULL, 0);
    uint32_t *ma = calloc(NPICKS, sizeof(*ma)), *mb = calloc(NPICKS, sizeof(*mb));
    uint32_t kept = 0, moved = 0;

    assert_non_null(ma);
    assert_non_null(mb);
    /* b is a without server <gone>: same names for the others. */
    for (uint32_t i = gone; i < n - 1; i++)
        rename_server(b->servers[i], i + 1);
    rebuild(b);
    map_keys(a, ma);
    map_keys(b, mb);
    for (uint32_t i = 0; i < NPICKS; i++) {
        if (ma[i] == gone)
            continue;
        kept++;
        if (strcmp(a->servers[ma[i]]->name, b->servers[mb[i]]->name) != 0)
            moved++;
    }
    if (getenv("LB_TEST_VERBOSE"))
        print_message("%s n=%u remove s%u: %u of %u other keys moved\n", algo, n, gone, moved,
                      kept);
    if (moved > max_moved * kept)
        fail_msg("%s n=%u: removing s%u moved %u of %u keys it did not own", algo, n, gone, moved,
                 kept);
    pool_free(a);
    pool_free(b);
    free(ma);
    free(mb);
}

/*
 * Ketama: no other key moves. Jump: none either when the last server goes
 * (jump numbers buckets; see jump.c). Maglev: the documented small fraction;
 * we measure 0.1-0.4% with M > 100 N and allow 1%.
 */
static void test_removal(void **state)
{
    const char *algo = *state;
    double max_moved = strcmp(algo, "maglev") == 0 ? 0.01 : 0.0;

    check_removal(algo, 5, strcmp(algo, "jump") == 0 ? 4 : 2, max_moved);
    check_removal(algo, 50, strcmp(algo, "jump") == 0 ? 49 : 17, max_moved);
}

/* ---- algorithm-specific ------------------------------------------------ */

static void expect_sequence(const char *algo, const uint32_t *w, uint32_t n, const char *want)
{
    struct pool *p = pool_new(algo, n, w, 0);
    char got[64] = "";
    uint64_t rng = 1;

    for (size_t i = 0; i < strlen(want); i++)
        got[i] = (char)('a' + IDX(pick(p, 0, NULL, &rng)));
    assert_string_equal(got, want);
    pool_free(p);
}

static void test_smooth_sequence(void **state)
{
    static const uint32_t w511[] = {5, 1, 1};
    static const uint32_t w111[] = {1, 1, 1};

    (void)state;
    /* nginx: weights 5,1,1 -> a a b a c a a, cycle after cycle. */
    expect_sequence("weighted", w511, 3, "aabacaaaabacaa");
    expect_sequence("weighted", w111, 3, "abcabc");
    /* Classic weighted round robin gives the same shares with a burst. */
    expect_sequence("roundrobin", w511, 3, "aaaaabcaaaaabc");
    expect_sequence("roundrobin", w111, 3, "abcabc");
}

/* Round robin over equal servers is exactly even. */
static void test_roundrobin_even(void **state)
{
    struct pool *p = pool_new("roundrobin", 4, NULL, 0);
    uint32_t count[4];

    (void)state;
    sample(p, 400, NULL, count);
    for (int i = 0; i < 4; i++)
        assert_int_equal(count[i], 100);
    pool_free(p);
}

static void test_leastconn_fewest(void **state)
{
    static const uint32_t w[] = {1, 1, 1, 2};
    struct pool *p = pool_new("leastconn", 4, w, 0);
    uint64_t rng = 1;
    uint32_t count[4];

    (void)state;
    atomic_store(&p->servers[0]->active, 5);
    atomic_store(&p->servers[1]->active, 2);
    atomic_store(&p->servers[2]->active, 3);
    atomic_store(&p->servers[3]->active, 6); /* (6+1)/2 = 3.5: heavier than s1's 3 */
    assert_ptr_equal(pick(p, 0, NULL, &rng), p->servers[1]);
    atomic_store(&p->servers[3]->active, 4); /* 2.5: now the lightest */
    assert_ptr_equal(pick(p, 0, NULL, &rng), p->servers[3]);
    /* Ties go round robin. */
    for (int i = 0; i < 3; i++)
        atomic_store(&p->servers[i]->active, 0);
    atomic_store(&p->servers[3]->active, 1);
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 300; i++)
        count[IDX(pick(p, 0, NULL, &rng))]++;
    for (int i = 0; i < 4; i++)
        assert_int_equal(count[i], 75);
    pool_free(p);
}

/* With ten servers and one loaded, p2c picks it only when both draws hit it. */
static void test_p2c_load(void **state)
{
    struct pool *p = pool_new("p2c", 10, NULL, 0);
    uint32_t count[10];

    (void)state;
    atomic_store(&p->servers[6]->active, 1000);
    sample(p, NPICKS, NULL, count);
    /* (1/10)^2 = 1%; random would give 10%. */
    if (count[6] > NPICKS * 0.015 || count[6] < NPICKS * 0.005)
        fail_msg("p2c picked the loaded server %u times in %u", count[6], NPICKS);
    pool_free(p);
}

/* Maglev table sizes: 65537 up to 655 primaries, then a prime > 100 N. */
static void test_maglev_size(void **state)
{
    struct pool *p = pool_new("maglev", 1000, NULL, 0);
    const struct lb__slots *t = (const void *)lb__table(p->lb);

    (void)state;
    assert_int_equal(t->hdr.len, 100003);
    pool_free(p);
    p = pool_new("maglev", 3, NULL, 0);
    t = (const void *)lb__table(p->lb);
    assert_int_equal(t->hdr.len, 65537);
    pool_free(p);
}

static void test_registry(void **state)
{
    const char *names = lb_registry_names();

    (void)state;
    for (size_t i = 0; i < NALGOS; i++) {
        const struct lb_ops *ops = lb_registry_find(algos[i]);
        bool hashing = strcmp(algos[i], "source") == 0 || strcmp(algos[i], "ketama") == 0 ||
                       strcmp(algos[i], "maglev") == 0 || strcmp(algos[i], "jump") == 0;

        assert_non_null(ops);
        assert_string_equal(ops->name, algos[i]);
        assert_non_null(ops->init);
        assert_non_null(ops->pick);
        assert_non_null(ops->destroy);
        assert_int_equal(!!(ops->caps & LB_CAP_HASH_KEY), hashing);
        assert_true(ops->caps & LB_CAP_WEIGHT);
        assert_non_null(strstr(names, algos[i]));
    }
    assert_null(lb_registry_find("roundrobin2"));
    assert_null(lb_registry_find(""));
}

static void test_hash_addr(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1000)};
    struct sockaddr_in b = a;
    struct sockaddr_in6 c = {.sin6_family = AF_INET6, .sin6_port = htons(1000)};

    (void)state;
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    b = a;
    b.sin_port = htons(2000);
    inet_pton(AF_INET6, "::1", &c.sin6_addr);
    assert_true(lb_hash_addr((void *)&a, HASH_SRC_IP) == lb_hash_addr((void *)&b, HASH_SRC_IP));
    assert_true(lb_hash_addr((void *)&a, HASH_SRC_IP_PORT) !=
                lb_hash_addr((void *)&b, HASH_SRC_IP_PORT));
    assert_true(lb_hash_addr((void *)&a, HASH_SRC_IP) != lb_hash_addr((void *)&c, HASH_SRC_IP));
    inet_pton(AF_INET, "127.0.0.3", &b.sin_addr);
    assert_true(lb_hash_addr((void *)&a, HASH_SRC_IP) != lb_hash_addr((void *)&b, HASH_SRC_IP));
}

/* `source`: one client IP, many ports -> one server. */
static void test_source_sticky(void **state)
{
    struct pool *p = pool_new("source", 4, NULL, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct server *first = NULL;
    uint64_t rng = 1;

    (void)state;
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    for (int port = 1024; port < 1424; port++) {
        struct server *s;

        a.sin_port = htons((uint16_t)port);
        s = pick(p, lb_hash_addr((void *)&a, p->hash_key), NULL, &rng);
        if (!first)
            first = s;
        assert_ptr_equal(s, first);
    }
    pool_free(p);
}

/* ---- main -------------------------------------------------------------- */

struct per_algo {
    const char *name;
    CMUnitTestFunction fn;
    bool hashing_only;
};

static const struct per_algo per_algo[] = {
    {"distribution", test_distribution, false},
    {"backup", test_backup, false},
    {"weight_zero", test_weight_zero, false},
    {"drain_down", test_drain_down, false},
    {"max_conns", test_max_conns, false},
    {"avoid", test_avoid, false},
    {"empty", test_empty, false},
    {"weight_change", test_weight_change, false},
    {"same_key", test_same_key, true},
    {"down_fallthrough", test_down_fallthrough, true},
};

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_registry),         cmocka_unit_test(test_hash_addr),
        cmocka_unit_test(test_smooth_sequence),  cmocka_unit_test(test_roundrobin_even),
        cmocka_unit_test(test_leastconn_fewest), cmocka_unit_test(test_p2c_load),
        cmocka_unit_test(test_maglev_size),      cmocka_unit_test(test_source_sticky),
    };
    static const char *const consistent[] = {"ketama", "maglev", "jump"};
    size_t max = sizeof(fixed) / sizeof(fixed[0]) +
                 NALGOS * (sizeof(per_algo) / sizeof(per_algo[0])) + 2 * 3;
    struct CMUnitTest *t = calloc(max, sizeof(*t));
    char(*names)[64] = calloc(max, sizeof(*names));
    size_t n = 0;
    int rc;

    if (!t || !names)
        return 1;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        t[n++] = fixed[i];
    for (size_t k = 0; k < sizeof(per_algo) / sizeof(per_algo[0]); k++) {
        for (size_t a = 0; a < NALGOS; a++) {
            if (per_algo[k].hashing_only && !is_hashing(algos[a]))
                continue;
            snprintf(names[n], sizeof(names[n]), "%s/%s", per_algo[k].name, algos[a]);
            t[n] = (struct CMUnitTest){names[n], per_algo[k].fn, NULL, NULL, (void *)algos[a]};
            n++;
        }
    }
    for (size_t a = 0; a < 3; a++) {
        snprintf(names[n], sizeof(names[n]), "removal/%s", consistent[a]);
        t[n] = (struct CMUnitTest){names[n], test_removal, NULL, NULL, (void *)consistent[a]};
        n++;
        if (a == 2)
            break; /* jump numbers buckets: not free of order */
        snprintf(names[n], sizeof(names[n]), "order_free/%s", consistent[a]);
        t[n] = (struct CMUnitTest){names[n], test_order_free, NULL, NULL, (void *)consistent[a]};
        n++;
    }
    rc = _cmocka_run_group_tests("balancers", t, n, NULL, NULL);
    free(t);
    free(names);
    return rc;
}
