/*
 * json_bench.c - GET /api/backends rendered by hand (core/metrics.c,
 * metrics_render_json) against the same document built with jansson
 * (json_t tree + json_dumps), for a table of 1,000 servers; and what
 * jansson costs to parse a POST /api/faults body (core/fault_json.c, which
 * already uses it; there is no hand-written parser to compare with, and
 * STYLE.md rule 20 wants none).
 *
 * Both renderers read the same real backend table (config_load_string +
 * backend_table_init, as test_metrics.c does). Before timing, both outputs
 * are parsed back with jansson and compared value by value (numbers within
 * the hand renderer's rounding), so the comparison is of equal documents;
 * a difference is printed and makes the run fail (the jansson side below
 * must follow metrics.c when fields are added).
 *
 * Allocations are counted by wrapping malloc and friends (this binary is
 * linked without jemalloc for that reason).
 *
 *   json_bench time [ROUNDS]     ns and allocations per render/parse
 *   json_bench callgrind         one of each, for valgrind --tool=callgrind
 */
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../balancers/lb.h"
#include "../../config/config.h"
#include "../../core/backend.h"
#include "../../core/fault.h"
#include "../../core/metrics.h"
#include "../../core/runtime.h"
#include "../../core/version.h"

#define NPOOLS       10
#define SRV_PER_POOL 100

/* ---- allocation counting ---- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static unsigned long nallocs;

void *malloc(size_t n)
{
    nallocs++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    nallocs++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    nallocs++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

/* ---- the table ---- */

static struct config *cfg;

static void table_setup(void)
{
    size_t cap = 1 << 20, len = 0;
    char *ini = __libc_malloc(cap), err[512];

    for (int p = 0; p < NPOOLS; p++) {
        len += (size_t)snprintf(ini + len, cap - len,
                                "[frontend fe%d]\nbind = 127.0.0.1:%d\nbackend = be%d\n"
                                "[backend be%d]\nhealth = none\n",
                                p, 20000 + p, p, p);
        for (int s = 0; s < SRV_PER_POOL; s++)
            len += (size_t)snprintf(ini + len, cap - len, "server = srv-%03d 10.%d.%d.%d:%d%s\n", s,
                                    p, s / 250, s % 250 + 1, 8000 + s,
                                    s % 10 == 9 ? " backup" : " weight=3");
    }
    if (config_load_string(ini, "bench.ini", &cfg, err, sizeof(err)) != 0 ||
        backend_table_init(cfg) != 0) {
        fprintf(stderr, "json_bench: config: %s\n", err);
        exit(1);
    }
    __libc_free(ini);
    metrics_init();
    /* Counters that are not all zero, so numbers have their real widths. */
    const struct lb_table *t = backend_table_get();

    for (uint32_t i = 0; i < t->npools; i++)
        for (uint32_t j = 0; j < t->pools[i].nservers; j++) {
            struct server *s = t->pools[i].servers[j];

            atomic_store(&s->conns_total, 1234567u + j);
            atomic_store(&s->bytes_in, 987654321012u * (j + 1));
            atomic_store(&s->bytes_out, 123456789u * (j + 1));
            atomic_store(&s->checks, 86400u + j);
            atomic_store(&s->check_us, 1234u + j);
            s->rate = 12.5 * j;
        }
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* ---- the same document with jansson ---- */

static const char *admin_name(uint32_t a)
{
    return a == SRV_ADMIN_MAINT ? "disabled" : a == SRV_ADMIN_DRAIN ? "drain" : "none";
}

static char *render_jansson(void)
{
    const struct lb_table *t = backend_table_get();
    json_t *root = json_object(), *fes = json_array(), *bes = json_array();
    char *out;

    json_object_set_new(root, "version", json_string(RINGLB_VERSION));
    json_object_set_new(root, "io",
                        json_string(lb_rt.backend == LOOP_URING ? "io_uring" : "epoll"));
    json_object_set_new(root, "forward", json_string(metrics_forward_name(LD(lb_rt.forward))));
    json_object_set_new(root, "uptime", json_real(metrics_uptime()));
    json_object_set_new(root, "active", json_integer(LD(lb_rt.active)));
    json_object_set_new(root, "max_conns", json_integer(LD(lb_rt.max_conns)));
    json_object_set_new(root, "generation", json_integer((json_int_t)t->generation));
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        const struct frontend *fe = &t->frontends[i];
        json_t *o, *binds;

        if (fe->gone)
            continue;
        o = json_object();
        binds = json_array();
        json_object_set_new(o, "name", json_string(fe->name));
        json_object_set_new(o, "backend", json_string(t->pools[fe->pool].name));
        for (uint32_t j = 0; j < fe->nbinds; j++)
            json_array_append_new(binds, json_string(fe->binds[j]));
        json_object_set_new(o, "binds", binds);
        json_object_set_new(o, "accepted_total", json_integer((json_int_t)LD(fe->stats->accepted)));
        json_object_set_new(o, "active", json_integer((json_int_t)LD(fe->stats->active)));
        json_object_set_new(o, "rejected_total", json_integer((json_int_t)LD(fe->stats->rejected)));
        json_array_append_new(fes, o);
    }
    json_object_set_new(root, "frontends", fes);
    for (uint32_t i = 0; i < t->npools; i++) {
        const struct pool *p = &t->pools[i];
        json_t *o, *srvs;

        if (p->gone)
            continue;
        o = json_object();
        srvs = json_array();
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "balance", json_string(p->ops->name));
        json_object_set_new(o, "retries_total", json_integer((json_int_t)LD(p->stats->retries)));
        json_object_set_new(o, "no_server_total",
                            json_integer((json_int_t)LD(p->stats->no_server)));
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *s = p->servers[j];
            struct server_view v;
            json_t *so = json_object();

            server_view(s, &v);
            json_object_set_new(so, "name", json_string(s->name));
            json_object_set_new(so, "addr", json_string(s->addr_text));
            json_object_set_new(so, "state", json_string(metrics_state_name(LD(s->state))));
            json_object_set_new(so, "health", json_string(metrics_health_name(LD(s->health))));
            json_object_set_new(so, "admin", json_string(admin_name(LD(s->admin))));
            json_object_set_new(so, "backup", json_boolean(s->backup));
            json_object_set_new(so, "weight", json_real((double)LD(s->weight) / SRV_WEIGHT_SCALE));
            json_object_set_new(so, "config_weight", json_integer(LD(s->cfg_weight)));
            json_object_set_new(so, "active", json_integer(LD(s->active)));
            json_object_set_new(so, "max_conns", json_integer(LD(s->max_conns)));
            json_object_set_new(so, "connections_total",
                                json_integer((json_int_t)LD(s->conns_total)));
            json_object_set_new(so, "connect_failures_total",
                                json_integer((json_int_t)LD(s->connect_fail)));
            json_object_set_new(so, "bytes_in_total", json_integer((json_int_t)LD(s->bytes_in)));
            json_object_set_new(so, "bytes_out_total", json_integer((json_int_t)LD(s->bytes_out)));
            json_object_set_new(so, "state_changes_total",
                                json_integer((json_int_t)LD(s->state_changes)));
            json_object_set_new(so, "checks_total", json_integer((json_int_t)LD(s->checks)));
            json_object_set_new(so, "check_failures_total",
                                json_integer((json_int_t)LD(s->check_fails)));
            json_object_set_new(so, "check_ms", json_real((double)LD(s->check_us) / 1000.0));
            json_object_set_new(so, "rate", json_real(s->rate));
            json_object_set_new(so, "state_seconds", json_real((double)v.state_ms / 1000.0));
            json_object_set_new(so, "downtime_seconds_total",
                                json_real((double)v.down_ms / 1000.0));
            json_object_set_new(so, "check_status", json_string(v.check_status));
            json_object_set_new(so, "check_reason", json_string(v.check_reason));
            json_array_append_new(srvs, so);
        }
        json_object_set_new(o, "servers", srvs);
        json_array_append_new(bes, o);
    }
    json_object_set_new(root, "backends", bes);
    /* Keys in insertion order, compact: the hand renderer's layout. */
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(root);
    return out;
}

static char *render_hand(size_t *len)
{
    struct metrics_buf b = {0};

    metrics_render_json(&b);
    *len = b.len;
    return b.p;
}

/* ---- do the two documents say the same? ---- */

static bool same(json_t *a, json_t *b, const char *path)
{
    char sub[512];

    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);

        /* Times in seconds come from the clock at each rendering, which
         * under valgrind on a loaded machine can be seconds apart: only
         * their being numbers is compared. The rest within the hand
         * renderer's rounding (%.3f, %.4g). */
        if (strstr(path, "uptime") || strstr(path, "seconds"))
            return true;
        if (fabs(x - y) <= 0.0006 + 1e-3 * fabs(x))
            return true;
    } else if (json_typeof(a) == json_typeof(b)) {
        const char *k;
        json_t *v;
        size_t i;

        switch (json_typeof(a)) {
        case JSON_OBJECT:
            if (json_object_size(a) != json_object_size(b))
                break;
            json_object_foreach(a, k, v)
            {
                snprintf(sub, sizeof(sub), "%s.%s", path, k);
                if (!json_object_get(b, k) || !same(v, json_object_get(b, k), sub))
                    return false;
            }
            return true;
        case JSON_ARRAY:
            if (json_array_size(a) != json_array_size(b))
                break;
            json_array_foreach(a, i, v)
            {
                snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
                if (!same(v, json_array_get(b, i), sub))
                    return false;
            }
            return true;
        default:
            if (json_equal(a, b))
                return true;
        }
    }
    {
        char *x = json_dumps(a, JSON_ENCODE_ANY), *y = json_dumps(b, JSON_ENCODE_ANY);

        fprintf(stderr, "json_bench: the documents differ at %s: %.80s vs %.80s\n", path,
                x ? x : "?", y ? y : "?");
        free(x);
        free(y);
    }
    return false;
}

static bool check_equal(void)
{
    size_t hlen;
    char *h = render_hand(&hlen), *j = render_jansson();
    json_error_t e;
    json_t *ha = json_loads(h, 0, &e), *ja = json_loads(j, 0, &e);
    bool ok = ha && ja && same(ha, ja, "$");

    printf("output: hand %zu bytes, jansson %zu bytes, same document: %s\n\n", hlen, strlen(j),
           ok ? "yes" : "NO");
    json_decref(ha);
    json_decref(ja);
    free(h);
    free(j);
    return ok;
}

/* ---- a fault body ---- */

static const char fault_body[] =
    "{\"name\":\"slow-db\",\"type\":\"latency\",\"stream\":\"downstream\",\"toxicity\":1.0,"
    "\"attributes\":{\"latency\":100,\"jitter\":10},\"server\":\"be1/srv-001\",\"ttl\":\"60s\","
    "\"seed\":7}";

static void parse_fault(void)
{
    struct fault_spec spec;
    char err[256];

    if (fault_spec_parse(fault_body, sizeof(fault_body) - 1, &spec, err, sizeof(err)) != 0) {
        fprintf(stderr, "json_bench: fault body refused: %s\n", err);
        exit(1);
    }
}

/* ---- measuring ---- */

static double now_ns(void)
{
    struct timespec ts;

    /* CPU time of this thread: on a shared machine, wall time mostly
     * measures the neighbours. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void __attribute__((noinline)) one_hand(void)
{
    size_t n;

    free(render_hand(&n));
}

static void __attribute__((noinline)) one_jansson(void)
{
    free(render_jansson());
}

static void __attribute__((noinline)) one_fault(void)
{
    parse_fault();
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int run_time(int rounds)
{
    static void (*const fn[])(void) = {one_hand, one_jansson, one_fault};
    static const char *const names[] = {"render /api/backends, hand (metrics.c)",
                                        "render /api/backends, jansson",
                                        "parse a POST /api/faults body (jansson)"};
    static const int reps[] = {20, 20, 2000};
    double ns[3][64];
    unsigned long allocs[3];

    if (rounds > 64)
        rounds = 64;
    for (int k = 0; k < 3; k++) {
        unsigned long a0 = nallocs;

        fn[k]();
        allocs[k] = nallocs - a0;
    }
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 3; i++) {
            int k = (i + r) % 3;
            double t0 = now_ns();

            for (int n = 0; n < reps[k]; n++)
                fn[k]();
            ns[k][r] = (now_ns() - t0) / reps[k];
        }
    printf("| what (%d servers) | us per call, median of %d rounds | allocations per call |\n",
           NPOOLS * SRV_PER_POOL, rounds);
    printf("| --- | ---: | ---: |\n");
    for (int k = 0; k < 3; k++) {
        qsort(ns[k], (size_t)rounds, sizeof(double), cmp_d);
        printf("| %s | %.1f | %lu |\n", names[k], ns[k][rounds / 2] / 1000.0, allocs[k]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    table_setup();
    if (!check_equal())
        return 1;
    if (strcmp(mode, "time") == 0)
        return run_time(argc > 2 ? atoi(argv[2]) : 15);
    if (strcmp(mode, "callgrind") == 0) {
        one_hand();
        one_jansson();
        one_fault();
        return 0;
    }
    fprintf(stderr, "usage: json_bench time [ROUNDS] | callgrind\n");
    return 2;
}
