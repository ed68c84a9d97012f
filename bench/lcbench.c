/*
 * lcbench.c - micro-benchmark of leastconn under load: ns per pick, and per
 * connection (pick + server_take + server_put), at 10, 64, 100 and 1,000
 * servers.
 *
 * Unlike lbbench, the pools come from a config and a real snapshot
 * (backend_table_init), so server_take/server_put reach the balancer the
 * way they do in ringlb. Each figure is the best of several rounds of
 * thread CPU time, one thread (or -t N threads on one shared pool, each
 * figure per thread), since this machine is shared and noisy. Rows:
 *
 *   pick, idle      every server at 0 connections, picks without takes
 *   pick, loaded    <hold> connections held (-c, per server), picks only
 *   pick+take+put   a connection opened per pick while the oldest closes
 *   take+put        the same server, no pick: what a connection costs the
 *                   balancer beyond its pick (roundrobin for comparison)
 *
 *   build/lcbench [-w] [-c CONNS_PER_SERVER] [-n PICKS] [-r ROUNDS] [-t THREADS]
 *
 * Not a test: numbers depend on the machine; see bench/README.md.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "../core/backend.h"

static const uint32_t sizes[] = {10, 64, 100, 1000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static bool weighted;
static uint32_t hold = 4; /* connections held per server in the loaded rows */
static long picks = 1000000;
static int rounds = 5, nthreads = 1;

/* The thread's CPU time: on a shared machine, time spent preempted would
 * count against whichever row was running. */
static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Builds the snapshot: backend 0 is <algo> over <n> servers. */
static struct config *table_up(const char *algo, uint32_t n)
{
    size_t cap = 256 + (size_t)n * 64, len;
    char *t = malloc(cap), err[512];
    struct config *cfg = NULL;

    if (!t)
        abort();
    len = (size_t)snprintf(t, cap,
                           "[frontend f]\nbind = 127.0.0.1:18080\nbackend = b\n"
                           "[backend b]\nbalance = %s\nhealth = none\n",
                           algo);
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(t + len, cap - len, "server = s%u 127.0.0.1:%u weight=%u\n", i,
                                20000 + i, weighted ? 1 + i % 4 : 1);
    if (config_load_string(t, NULL, &cfg, err, sizeof(err)) != 0 || backend_table_init(cfg) < 0) {
        fprintf(stderr, "lcbench: %s\n", err);
        exit(1);
    }
    free(t);
    return cfg;
}

static void table_down(struct config *cfg)
{
    backend_table_destroy();
    config_free(cfg);
}

enum row { ROW_IDLE, ROW_LOADED, ROW_CYCLE, ROW_TAKEPUT, NROWS };

static const char *const row_name[NROWS] = {"pick, idle", "pick, loaded", "pick+take+put",
                                            "take+put"};

struct run {
    struct pool *pool;
    enum row row;
    double ns; /* out: ns per operation */
};

/* One thread's timed loop for <r->row>. */
static void *run_one(void *arg)
{
    struct run *r = arg;
    struct pool *p = r->pool;
    uint64_t rng = 0x1234567, sink = 0;
    struct lb_pick_ctx ctx = {.rng = &rng};
    /* The loaded rows keep a ring of held connections: the oldest closes
     * as a new one opens, so counts vary across servers as in a proxy. */
    uint32_t nheld = r->row == ROW_CYCLE ? hold * p->nservers : 0, pos = 0;
    struct server **held = calloc(nheld ? nheld : 1, sizeof(*held));
    double t0;

    if (!held)
        abort();
    for (uint32_t i = 0; i < nheld; i++) {
        held[i] = p->ops->pick(p, &ctx);
        if (!held[i] || !server_take(held[i]))
            abort();
    }
    t0 = now_ns();
    for (long i = 0; i < picks; i++) {
        struct server *s;

        switch (r->row) {
        case ROW_TAKEPUT:
            s = p->servers[i & 7];
            server_take(s);
            server_put(s);
            break;
        case ROW_CYCLE:
            s = p->ops->pick(p, &ctx);
            if (!s || !server_take(s))
                abort();
            server_put(held[pos]);
            held[pos] = s;
            if (++pos == nheld)
                pos = 0;
            break;
        default:
            sink += (uintptr_t)p->ops->pick(p, &ctx);
            break;
        }
    }
    r->ns = (now_ns() - t0) / picks;
    for (uint32_t i = 0; i < nheld; i++)
        server_put(held[i]);
    free(held);
    if (sink == 42) /* keep the picks */
        puts("");
    return NULL;
}

/* The best over the rounds of the per-thread time of <row>. */
static double measure(struct pool *p, enum row row)
{
    double best = 1e18;

    for (int k = 0; k < rounds; k++) {
        pthread_t th[64];
        struct run r[64];
        double sum = 0;

        for (int t = 0; t < nthreads; t++) {
            r[t] = (struct run){.pool = p, .row = row};
            if (pthread_create(&th[t], NULL, run_one, &r[t]) != 0)
                abort();
        }
        for (int t = 0; t < nthreads; t++) {
            pthread_join(th[t], NULL);
            sum += r[t].ns;
        }
        if (sum / nthreads < best)
            best = sum / nthreads;
    }
    return best;
}

static void report(const char *algo, enum row row)
{
    printf("%-11s %-14s", algo, row_name[row]);
    for (size_t k = 0; k < NSIZES; k++) {
        struct config *cfg = table_up(algo, sizes[k]);
        struct pool *p = &((struct lb_table *)backend_table_get())->pools[0];
        uint32_t pre = row == ROW_LOADED ? hold * sizes[k] : 0;
        struct server **held = calloc(pre ? pre : 1, sizeof(*held));
        uint64_t rng = 1;
        struct lb_pick_ctx ctx = {.rng = &rng};

        /* The loaded pick row: connections opened by leastconn itself, then
         * one in three closed, so that counts differ from server to server. */
        for (uint32_t i = 0; held && i < pre; i++) {
            held[i] = p->ops->pick(p, &ctx);
            if (!held[i] || !server_take(held[i]))
                abort();
        }
        for (uint32_t i = 0; held && i < pre; i += 3)
            server_put(held[i]);
        printf(" %10.1f", measure(p, row));
        fflush(stdout);
        for (uint32_t i = 0; held && i < pre; i++) {
            if (i % 3)
                server_put(held[i]);
        }
        free(held);
        table_down(cfg);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    int opt;

    while ((opt = getopt(argc, argv, "wc:n:r:t:")) != -1) {
        if (opt == 'w') {
            weighted = true;
        } else if (opt == 'c') {
            hold = (uint32_t)atoi(optarg);
        } else if (opt == 'n') {
            picks = atol(optarg);
        } else if (opt == 'r') {
            rounds = atoi(optarg);
        } else if (opt == 't') {
            nthreads = atoi(optarg);
        } else {
            fprintf(stderr,
                    "usage: %s [-w] [-c CONNS_PER_SERVER] [-n PICKS] [-r ROUNDS] "
                    "[-t THREADS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (picks < 1 || rounds < 1 || nthreads < 1 || nthreads > 64 || hold < 1) {
        fprintf(stderr, "lcbench: -n, -r, -c must be >= 1 and -t 1..64\n");
        return 2;
    }
    printf("ns per operation, best of %d rounds, %d thread(s), weights %s, %u conns/server held\n",
           rounds, nthreads, weighted ? "1..4" : "all 1", hold);
    printf("%-11s %-14s %10s %10s %10s %10s\n", "algorithm", "operation", "10 srv", "64 srv",
           "100 srv", "1000 srv");
    for (enum row row = ROW_IDLE; row < NROWS; row++)
        report("leastconn", row);
    report("roundrobin", ROW_TAKEPUT);
    return 0;
}
