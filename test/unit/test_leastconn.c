/*
 * test_leastconn.c - leastconn's index of loads (balancers/leastconn.c).
 *
 * Pools come from a real config and snapshot (core/backend.c), so that
 * server_take/server_put, server_set_state/_weight/_admin and reloads reach
 * the index the way they do in ringlb. Every pick is compared with a brute
 * force scan written here (the lightest (active + 1) / weight, first at or
 * after the cursor the pick used), and lb__lc_verify() checks that every
 * leaf and node of the index is exact whenever nothing runs concurrently.
 * test_balancers.c covers leastconn's behaviour on the small pools it scans.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../balancers/common.h"
#include "../../config/config.h"
#include "../../core/backend.h"
#include "../../core/qsbr.h"

/* ---- fixtures ---------------------------------------------------------- */

struct lbtest {
    struct config *cfg;
    uint32_t n; /* primaries */
};

static struct config *load(const char *text)
{
    struct config *cfg = NULL;
    char err[512];
    int r = config_load_string(text, NULL, &cfg, err, sizeof(err));

    if (r != 0)
        print_error("config: %s\n", err);
    assert_int_equal(r, 0);
    return cfg;
}

/*
 * The config text of backend "app" (balance <algo>) with primaries s<i> for
 * i in [first, first + n), weights 1 + (i * wmul) % 7, then <nbackup>
 * backups. <port_shift> moves every server's address: they become other
 * servers to a reload.
 */
static char *ini(const char *algo, uint32_t first, uint32_t n, uint32_t wmul, uint32_t nbackup,
                 uint32_t port_shift)
{
    size_t cap = 256 + (size_t)(n + nbackup) * 64, len;
    char *t = malloc(cap);

    assert_non_null(t);
    len = (size_t)snprintf(t, cap,
                           "[frontend web]\nbind = 127.0.0.1:18080\nbackend = app\n"
                           "[backend app]\nbalance = %s\nhealth = none\n",
                           algo);
    for (uint32_t i = first; i < first + n; i++)
        len += (size_t)snprintf(t + len, cap - len, "server = s%u 127.0.0.1:%u weight=%u\n", i,
                                20000 + i + port_shift, 1 + (i * wmul) % 7);
    for (uint32_t i = 0; i < nbackup; i++)
        len += (size_t)snprintf(t + len, cap - len, "server = b%u 127.0.0.1:%u backup\n", i,
                                10000 + i + port_shift);
    assert_true(len < cap);
    return t;
}

static struct pool *app(void)
{
    return &backend_table_get()->pools[0];
}

static void start(struct lbtest *lt, const char *algo, uint32_t n, uint32_t wmul, uint32_t nbackup)
{
    char *text = ini(algo, 0, n, wmul, nbackup, 0);

    lt->cfg = load(text);
    free(text);
    lt->n = n;
    assert_int_equal(backend_table_init(lt->cfg), 0);
}

static void stop(struct lbtest *lt)
{
    backend_table_destroy();
    config_free(lt->cfg);
    lt->cfg = NULL;
}

/* Reloads with <text>, the way SIGHUP does, and frees the old snapshot
 * (no reader is registered, so the grace period is over at once). */
static void reload(struct lbtest *lt, char *text)
{
    struct config *cfg = load(text);
    struct backend_diff d;

    free(text);
    assert_int_equal(backend_table_reload(cfg, &d), 0);
    qsbr_poll();
    config_free(lt->cfg);
    lt->cfg = cfg;
}

/* The brute force: the first of the lightest primaries at or after
 * <start>, skipping <avoid> and those that cannot serve. */
static struct server *oracle(const struct pool *p, uint64_t start, const struct server *avoid)
{
    const struct lb__base *b = p->lb;
    uint32_t n = b->n[LB__PRIMARY];
    struct server *best = NULL;
    uint64_t ba = 0, bw = 1;

    for (uint32_t k = 0; k < n; k++) {
        struct server *s = b->cls[LB__PRIMARY][(start + k) % n];
        uint64_t a = atomic_load(&s->active) + 1, w = atomic_load(&s->weight);

        if (s == avoid || !server_usable(s))
            continue;
        if (!best || a * bw < ba * w) {
            best = s;
            ba = a;
            bw = w;
        }
    }
    return best;
}

/* One pick, checked against the oracle at the same cursor position. */
static struct server *pick_checked(struct pool *p, const struct server *avoid)
{
    struct lb__base *b = p->lb;
    uint64_t c = atomic_load(&b->cursor);
    uint64_t rng = 1;
    struct lb_pick_ctx ctx = {.avoid = avoid, .rng = &rng};
    struct server *want = oracle(p, c % b->n[LB__PRIMARY], avoid);
    struct server *s = p->ops->pick(p, &ctx);

    if (want)
        assert_ptr_equal(s, want);
    return s;
}

static void assert_exact(const struct pool *p)
{
    assert_int_equal(lb__lc_verify(p), 1);
}

/* splitmix64, so every run does the same sequence. */
static uint64_t rnd(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Connections held open by a test: closed (server_put) at random. */
struct live {
    struct server **v;
    uint32_t n, cap;
};

static void live_add(struct live *l, struct server *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n++] = s;
}

static void live_close(struct live *l, uint32_t i)
{
    server_put(l->v[i]);
    l->v[i] = l->v[--l->n];
}

static void live_close_all(struct live *l)
{
    while (l->n)
        live_close(l, l->n - 1);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Picks, checked, and opens the connection as a worker would. */
static struct server *open_one(struct pool *p, struct live *l)
{
    struct server *s = pick_checked(p, NULL);

    assert_non_null(s);
    assert_true(server_take(s));
    live_add(l, s);
    return s;
}

/*
 * <steps> random steps on a pool: open a connection (pick + take), close a
 * random one (put), and, when <churn>, sometimes change a random server's
 * weight or state through the functions the checker and admin API use.
 * The index must be exact after every step and every pick must be the
 * oracle's.
 */
static void random_walk(struct lbtest *lt, uint32_t steps, uint64_t seed, bool churn,
                        struct live *l)
{
    struct pool *p = app();

    for (uint32_t k = 0; k < steps; k++) {
        uint64_t r = rnd(&seed);
        uint32_t what = r % 100;

        if (what < 55 || l->n == 0) {
            if (oracle(p, 0, NULL))
                open_one(p, l);
        } else if (what < 95 || !churn) {
            live_close(l, (uint32_t)((r >> 8) % l->n));
        } else {
            struct server *s = p->servers[(r >> 8) % lt->n];

            if (what < 97)
                server_set_weight(0, s, (uint32_t)(r >> 40) % 5 * SRV_WEIGHT_SCALE);
            else if (what < 98)
                server_set_state(0, s, SRV_DOWN);
            else if (what < 99)
                server_set_state(0, s, SRV_UP);
            else
                server_set_admin(0, s, (r >> 40) & 1 ? SRV_ADMIN_DRAIN : SRV_ADMIN_NONE);
        }
        /* Exact when indexed (a pool a reload shrank is scanned). */
        assert_int_not_equal(lb__lc_verify(p), 0);
    }
}

/* ---- tests ------------------------------------------------------------- */

/* Small pools are scanned, from LB__LC_INDEX_MIN primaries on indexed. */
static void test_threshold(void **state)
{
    struct lbtest lt;

    (void)state;
    start(&lt, "leastconn", LB__LC_INDEX_MIN - 1, 1, 0);
    assert_int_equal(lb__lc_verify(app()), -1);
    assert_int_equal(atomic_load(&app()->servers[0]->lb_index), 0);
    stop(&lt);
    start(&lt, "leastconn", LB__LC_INDEX_MIN, 1, 0);
    assert_exact(app());
    stop(&lt);
}

/* Random take/put sequences at several sizes and weights, against the oracle. */
static void test_random_take_put(void **state)
{
    static const uint32_t sizes[] = {LB__LC_INDEX_MIN, 100, 1000};

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (uint32_t wmul = 0; wmul < 2; wmul++) { /* all weight 1, then 1..7 */
            struct lbtest lt;
            struct live l = {0};

            start(&lt, "leastconn", sizes[i], wmul ? 3 : 0, 0);
            random_walk(&lt, 20000, 7 + i * 2 + wmul, false, &l);
            live_close_all(&l);
            assert_exact(app());
            /* Every pick came from the index, none from the scan. */
            assert_int_equal(lb__lc_scans(app()), 0);
            stop(&lt);
        }
    }
}

/* Weights, down/up, drain and maintenance changed among the takes and puts. */
static void test_state_and_weight(void **state)
{
    struct lbtest lt;
    struct live l = {0};

    (void)state;
    start(&lt, "leastconn", 200, 3, 2);
    random_walk(&lt, 30000, 99, true, &l);
    live_close_all(&l);
    assert_exact(app());
    stop(&lt);
}

/* Weighted: at equal loads per weight, a server of weight 3 holds three
 * times the connections of one of weight 1. */
static void test_weights(void **state)
{
    struct lbtest lt;
    struct live l = {0};
    struct pool *p;
    uint32_t per[7] = {0}, nper[7] = {0};

    (void)state;
    start(&lt, "leastconn", 70, 1, 0); /* weights 1..7 in turn */
    p = app();
    /* 28 connections per unit of weight: every server ends exactly full. */
    for (uint32_t k = 0; k < 28 * 280; k++)
        open_one(p, &l);
    assert_exact(p);
    for (uint32_t i = 0; i < 70; i++) {
        uint32_t w = 1 + i % 7;

        per[w - 1] += atomic_load(&p->servers[i]->active);
        nper[w - 1]++;
    }
    for (uint32_t w = 1; w <= 7; w++)
        assert_int_equal(per[w - 1], 28 * w * nper[w - 1]);
    assert_int_equal(lb__lc_scans(p), 0);
    live_close_all(&l);
    stop(&lt);
}

/* All at 0 (and all at 1): a round of picks without takes visits every
 * server once, in order, like the scan; no two workers herd onto one. */
static void test_ties_rotate(void **state)
{
    struct lbtest lt;
    struct live l = {0};
    struct pool *p;

    (void)state;
    start(&lt, "leastconn", 1000, 0, 0);
    p = app();
    for (uint32_t round = 0; round < 2; round++) {
        for (uint32_t k = 0; k < 1000; k++)
            assert_ptr_equal(pick_checked(p, NULL), p->servers[k]);
        /* One connection each: all tied again, one load higher. */
        for (uint32_t k = 0; k < 1000; k++)
            open_one(p, &l);
    }
    /* And after a reload, which starts the cursor again. */
    reload(&lt, ini("leastconn", 0, 1000, 0, 0, 0));
    p = app();
    assert_exact(p);
    for (uint32_t k = 0; k < 1000; k++)
        assert_ptr_equal(pick_checked(p, NULL), p->servers[k]);
    assert_int_equal(lb__lc_scans(p), 0);
    live_close_all(&l);
    stop(&lt);
}

/* The server to avoid is skipped for the next lightest; the full one
 * (max_conns) is not picked until a connection closes. */
static void test_avoid_and_full(void **state)
{
    struct lbtest lt;
    struct live l = {0};
    struct pool *p;
    struct server *s, *t;
    bool again = false;

    (void)state;
    start(&lt, "leastconn", 100, 0, 0);
    p = app();
    for (uint32_t k = 0; k < 250; k++)
        open_one(p, &l);
    s = pick_checked(p, NULL);
    t = pick_checked(p, s);
    assert_non_null(t);
    assert_ptr_not_equal(s, t);
    /* s full: the index leaves it out, told only by the take. */
    atomic_store(&s->max_conns, atomic_load(&s->active) + 1);
    assert_true(server_take(s));
    assert_false(server_take(s));
    assert_exact(p);
    for (uint32_t k = 0; k < 500; k++)
        assert_ptr_not_equal(open_one(p, &l), s);
    /* One of its connections closes: it is the lightest again. */
    server_put(s);
    assert_exact(p);
    for (uint32_t k = 0; k < 100 && !again; k++)
        again = open_one(p, &l) == s;
    assert_true(again);
    atomic_store(&s->max_conns, 0);
    live_close_all(&l);
    stop(&lt);
}

/* Every primary down: the backups serve; one back up: only it. */
static void test_all_down(void **state)
{
    struct lbtest lt;
    struct pool *p;
    uint64_t rng = 1;
    struct lb_pick_ctx ctx = {.rng = &rng};
    struct server *s;

    (void)state;
    start(&lt, "leastconn", 64, 0, 2);
    p = app();
    for (uint32_t i = 0; i < 64; i++)
        server_set_state(0, p->servers[i], SRV_DOWN);
    assert_exact(p);
    s = p->ops->pick(p, &ctx);
    assert_non_null(s);
    assert_true(s->backup);
    server_set_state(0, p->servers[17], SRV_UP);
    assert_exact(p);
    for (int k = 0; k < 10; k++)
        assert_ptr_equal(pick_checked(p, NULL), p->servers[17]);
    stop(&lt);
}

/*
 * Reloads: a kept server keeps its count in the new index; connections to
 * removed servers close without touching it; a pool that shrinks below
 * the threshold is scanned, one that changes algorithm feeds nothing, and
 * back to leastconn the index starts from the live counts.
 */
static void test_reload(void **state)
{
    struct lbtest lt;
    struct live l = {0};
    struct pool *p;

    (void)state;
    start(&lt, "leastconn", 300, 3, 0);
    random_walk(&lt, 5000, 5, false, &l);
    /* s0..s149 go, s150..s299 stay (with other weights), s300..s449 come. */
    reload(&lt, ini("leastconn", 150, 300, 5, 0, 0));
    p = app();
    assert_exact(p);
    random_walk(&lt, 5000, 6, false, &l); /* closes some of the removed ones too */
    /* The same servers listed at other addresses: all new, all at 0. */
    reload(&lt, ini("leastconn", 150, 300, 5, 0, 1000));
    assert_exact(app());
    random_walk(&lt, 3000, 8, false, &l);
    reload(&lt, ini("roundrobin", 150, 300, 5, 0, 1000));
    assert_int_equal(atomic_load(&app()->servers[0]->lb_index), 0);
    assert_int_equal(lb__lc_verify(app()), -1);
    for (uint32_t k = 0; k < 2000; k++) {
        struct server *s = app()->servers[k % 300];

        if (k % 2 && l.n) {
            live_close(&l, k % l.n);
        } else {
            assert_true(server_take(s));
            live_add(&l, s);
        }
    }
    reload(&lt, ini("leastconn", 150, 300, 5, 0, 1000));
    assert_exact(app());
    random_walk(&lt, 3000, 9, false, &l);
    reload(&lt, ini("leastconn", 150, 10, 5, 0, 1000));
    assert_int_equal(lb__lc_verify(app()), -1);
    random_walk(&lt, 1000, 10, false, &l);
    live_close_all(&l);
    stop(&lt);
}

/*
 * Counts that move while a snapshot is being built are fed to the old pool;
 * stored here behind the index's back, they are found by the pick's checks
 * (the leaf at the cursor each pick, and the chosen server) and the index
 * is exact again within one round of the cursor.
 */
static void test_self_repair(void **state)
{
    struct lbtest lt;
    struct pool *p;

    (void)state;
    start(&lt, "leastconn", 128, 0, 0);
    p = app();
    for (uint32_t i = 0; i < 128; i++)
        atomic_store(&p->servers[i]->active, (uint32_t)(i * 37 % 11));
    assert_int_equal(lb__lc_verify(p), 0);
    /* Counts that rose: a pick that lands on one repairs it and looks
     * again, so even these picks are the scan's. */
    for (uint32_t k = 0; k < 128; k++)
        assert_non_null(pick_checked(p, NULL));
    assert_exact(p);
    /* Counts that fell: found as the cursor passes them. */
    for (uint32_t i = 0; i < 128; i += 3)
        atomic_store(&p->servers[i]->active, 0);
    assert_int_equal(lb__lc_verify(p), 0);
    for (uint32_t k = 0; k < 128; k++)
        assert_non_null(p->ops->pick(p, &(struct lb_pick_ctx){.rng = &(uint64_t){1}}));
    assert_exact(p);
    for (uint32_t i = 0; i < 128; i++)
        atomic_store(&p->servers[i]->active, 0);
    stop(&lt);
}

/* ---- concurrency ------------------------------------------------------- */

#define THREADS 4
#define OPS     200000

struct worker_arg {
    struct pool *pool;
    uint64_t seed;
    uint32_t nconns;
};

/* A worker: picks and takes, or puts one of its connections, at random. */
static void *worker(void *arg)
{
    struct worker_arg *a = arg;
    struct server **mine = calloc(4096, sizeof(*mine));
    uint64_t rng = a->seed;
    uint32_t n = 0;

    if (!mine)
        return NULL;
    for (uint32_t k = 0; k < OPS; k++) {
        uint64_t r = rnd(&a->seed);

        if ((r % 100 < 52 && n < 4096) || n == 0) {
            struct lb_pick_ctx ctx = {.rng = &rng};
            struct server *s = a->pool->ops->pick(a->pool, &ctx);

            if (s && server_take(s))
                mine[n++] = s;
        } else {
            uint32_t i = (uint32_t)((r >> 8) % n);

            server_put(mine[i]);
            mine[i] = mine[--n];
        }
    }
    a->nconns = n;
    for (uint32_t i = 0; i < n; i++)
        server_put(mine[i]);
    free(mine);
    return NULL;
}

/* A checker: flips weights and states while the workers run. */
static void *checker(void *arg)
{
    struct worker_arg *a = arg;

    for (uint32_t k = 0; k < 2000; k++) {
        uint64_t r = rnd(&a->seed);
        struct server *s = a->pool->servers[(r >> 8) % a->pool->nservers];

        if (r % 3 == 0)
            server_set_weight(0, s, (1 + (uint32_t)(r >> 40) % 4) * SRV_WEIGHT_SCALE);
        else
            server_set_state(0, s, r % 3 == 1 ? SRV_DOWN : SRV_UP);
    }
    return NULL;
}

/*
 * Several workers take and put at once while a checker changes states:
 * once they have all stopped, the index must be exact (quiescent
 * consistency), and every count back to 0.
 */
static void test_concurrent(void **state)
{
    struct lbtest lt;
    struct pool *p;
    pthread_t th[THREADS + 1];
    struct worker_arg arg[THREADS + 1];

    (void)state;
    start(&lt, "leastconn", 100, 0, 0);
    p = app();
    for (int i = 0; i <= THREADS; i++) {
        arg[i] = (struct worker_arg){.pool = p, .seed = 1000 + (uint64_t)i};
        assert_int_equal(pthread_create(&th[i], NULL, i < THREADS ? worker : checker, &arg[i]), 0);
    }
    for (int i = 0; i <= THREADS; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < lt.n; i++)
        assert_int_equal(atomic_load(&p->servers[i]->active), 0);
    assert_exact(p);
    stop(&lt);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold),        cmocka_unit_test(test_random_take_put),
        cmocka_unit_test(test_state_and_weight), cmocka_unit_test(test_weights),
        cmocka_unit_test(test_ties_rotate),      cmocka_unit_test(test_avoid_and_full),
        cmocka_unit_test(test_all_down),         cmocka_unit_test(test_reload),
        cmocka_unit_test(test_self_repair),      cmocka_unit_test(test_concurrent),
    };

    return cmocka_run_group_tests_name("leastconn", tests, NULL, NULL);
}
