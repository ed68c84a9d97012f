/*
 * lbbench.c - micro-benchmark of the balancers: nanoseconds per pick.
 *
 * For each algorithm, a pool of 10 and of 1,000 up servers of weight 1
 * (pass -w for weights 1..4), one thread picking with a fresh client key
 * each time, as a worker does; then the time init() takes to build each
 * algorithm's table for 1,000 servers (maglev and ketama are the ones the
 * targets name). Not a test: numbers depend on the machine; see README.
 *
 *   build/lbbench [-w] [-n PICKS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../balancers/lb.h"

static const char *const algos[] = {"roundrobin", "weighted", "leastconn", "random", "p2c",
                                    "source",     "ketama",   "maglev",    "jump"};

#define NKEYS 4096 /* keys cycled through: more than a cache's worth of table */

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One aligned block of <n> servers, as backend.c would build them. */
static struct pool *bench_pool(const char *algo, uint32_t n, bool weighted)
{
    struct pool *p = calloc(1, sizeof(*p));
    struct server *srv = aligned_alloc(64, (sizeof(*srv) * n + 63) / 64 * 64);

    if (!p || !srv)
        abort();
    memset(srv, 0, sizeof(*srv) * n);
    p->name = "bench";
    p->ops = lb_registry_find(algo);
    p->nservers = n;
    p->servers = calloc(n, sizeof(*p->servers));
    if (!p->ops || !p->servers)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &srv[i];

        s->name = malloc(16);
        if (!s->name)
            abort();
        snprintf(s->name, 16, "srv%u", i);
        atomic_init(&s->cfg_weight, weighted ? 1 + i % 4 : 1);
        atomic_init(&s->weight, atomic_load(&s->cfg_weight));
        atomic_init(&s->state, SRV_UP);
        p->servers[i] = s;
    }
    return p;
}

static void bench_pool_free(struct pool *p)
{
    struct server *srv = p->servers[0];

    for (uint32_t i = 0; i < p->nservers; i++)
        free(p->servers[i]->name);
    free(srv);
    free(p->servers);
    free(p);
}

static double ns_per_pick(struct pool *p, const uint64_t *keys, long picks)
{
    uint64_t rng = 0x1234567, sink = 0;
    struct lb_pick_ctx ctx = {.rng = &rng};
    double t0;

    for (long i = 0; i < picks / 10; i++) { /* warm the caches */
        ctx.key = keys[i % NKEYS];
        sink += (uintptr_t)p->ops->pick(p, &ctx);
    }
    t0 = now_ns();
    for (long i = 0; i < picks; i++) {
        ctx.key = keys[i % NKEYS];
        sink += (uintptr_t)p->ops->pick(p, &ctx);
    }
    t0 = now_ns() - t0;
    if (sink == 42) /* keep the picks */
        puts("");
    return t0 / picks;
}

int main(int argc, char **argv)
{
    static const uint32_t sizes[] = {10, 1000};
    uint64_t keys[NKEYS], x = 88172645463325252ULL;
    bool weighted = false;
    long picks = 2000000;
    int opt;

    while ((opt = getopt(argc, argv, "wn:")) != -1) {
        if (opt == 'w') {
            weighted = true;
        } else if (opt == 'n') {
            picks = atol(optarg);
        } else {
            fprintf(stderr, "usage: %s [-w] [-n PICKS]\n", argv[0]);
            return 2;
        }
    }
    for (int i = 0; i < NKEYS; i++) { /* xorshift64: stand-ins for hashed client addresses */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys[i] = x;
    }
    printf("ns per pick, one thread, weights %s\n", weighted ? "1..4" : "all 1");
    printf("%-12s %10s %10s\n", "algorithm", "10 srv", "1000 srv");
    for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
        printf("%-12s", algos[a]);
        for (size_t k = 0; k < 2; k++) {
            struct pool *p = bench_pool(algos[a], sizes[k], weighted);

            if (p->ops->init(p) < 0)
                abort();
            printf(" %10.1f", ns_per_pick(p, keys, picks));
            p->ops->destroy(p);
            bench_pool_free(p);
        }
        printf("\n");
    }
    printf("\ninit (table build) with 1000 servers, ms (best of 5)\n");
    for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
        struct pool *p = bench_pool(algos[a], 1000, weighted);
        double best = 1e18;

        for (int r = 0; r < 5; r++) {
            double t0 = now_ns();

            if (p->ops->init(p) < 0)
                abort();
            t0 = now_ns() - t0;
            best = t0 < best ? t0 : best;
            p->ops->destroy(p);
        }
        printf("%-12s %10.3f\n", algos[a], best / 1e6);
        bench_pool_free(p);
    }
    return 0;
}
