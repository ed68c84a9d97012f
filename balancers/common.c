/*
 * common.c - the server classes, table publication, the skip-and-walk
 * fallback and the weight helpers shared by every balancer (see common.h).
 */
#include <errno.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/log.h"
#include "../core/qsbr.h"
#include "common.h"

/* Reads the primaries' effective weights into <w>. */
static void read_weights(const struct lb__base *b, uint32_t *w)
{
    for (uint32_t i = 0; i < b->n[LB__PRIMARY]; i++)
        w[i] = lb__weight(b->cls[LB__PRIMARY][i]);
}

static void tab_free(void *t)
{
    lb_free(t);
}

/* Publishes <t>; the table it replaces is freed once no worker can hold it. */
static void publish(struct lb__base *b, struct lb__tab *t)
{
    struct lb__tab *old = atomic_exchange_explicit(&b->tab, t, memory_order_acq_rel);

    if (old)
        qsbr_retire(old, tab_free);
}

int lb__init(struct pool *pool, lb__build_fn build)
{
    struct lb__base *b = lb_aligned_alloc(64, sizeof(*b));
    uint32_t n = pool->nservers;
    struct lb__tab *t;

    if (!b)
        return -ENOMEM;
    memset(b, 0, sizeof(*b));
    atomic_init(&b->tab, NULL);
    atomic_init(&b->cursor, 0);
    atomic_init(&b->bcursor, 0);
    b->build = build;
    /* One array holds both classes: primaries from the front, backups after. */
    b->cls[LB__PRIMARY] = lb_calloc(n ? n : 1, sizeof(struct server *));
    b->wbuilt = lb_calloc(n ? n : 1, sizeof(uint32_t));
    if (!b->cls[LB__PRIMARY] || !b->wbuilt)
        goto err;
    for (uint32_t i = 0; i < n; i++) {
        /* Whatever index the server was in belongs to the pool this one
         * replaces: server_take/put stop feeding it (leastconn.c). */
        atomic_store_explicit(&pool->servers[i]->lb_index, 0, memory_order_relaxed);
        if (!pool->servers[i]->backup)
            b->cls[LB__PRIMARY][b->n[LB__PRIMARY]++] = pool->servers[i];
    }
    b->cls[LB__BACKUP] = b->cls[LB__PRIMARY] + b->n[LB__PRIMARY];
    for (uint32_t i = 0; i < n; i++) {
        if (pool->servers[i]->backup)
            b->cls[LB__BACKUP][b->n[LB__BACKUP]++] = pool->servers[i];
    }
    if (build) {
        read_weights(b, b->wbuilt);
        t = build(b, b->wbuilt);
        if (!t)
            goto err;
        atomic_store_explicit(&b->tab, t, memory_order_release);
    }
    pool->lb = b;
    return 0;
err:
    lb_free(b->cls[LB__PRIMARY]);
    lb_free(b->wbuilt);
    lb_free(b);
    return -ENOMEM;
}

void lb__server_state(struct pool *pool, struct server *s)
{
    struct lb__base *b = pool->lb;
    uint32_t n = b->n[LB__PRIMARY];
    struct lb__tab *t;
    uint32_t *w;

    if (!b->build || s->backup || n == 0)
        return;
    w = lb_calloc(n, sizeof(*w));
    if (!w) {
        log_warn("backend %s: no memory to rebuild the balancer table", pool->name);
        return;
    }
    read_weights(b, w);
    if (memcmp(w, b->wbuilt, n * sizeof(*w)) == 0) {
        lb_free(w);
        return;
    }
    t = b->build(b, w);
    if (!t) {
        log_warn("backend %s: no memory to rebuild the balancer table, keeping weights",
                 pool->name);
        lb_free(w);
        return;
    }
    publish(b, t);
    lb_free(b->wbuilt);
    b->wbuilt = w;
}

void lb__destroy(struct pool *pool)
{
    struct lb__base *b = pool->lb;

    if (!b)
        return;
    lb_free(atomic_load_explicit(&b->tab, memory_order_relaxed));
    lb_free(b->cls[LB__PRIMARY]);
    lb_free(b->wbuilt);
    lb_free(b);
    pool->lb = NULL;
}

struct server *lb__scan(const struct lb__base *b, enum lb__class c, uint64_t start,
                        const struct server *avoid)
{
    uint32_t n = b->n[c];
    uint32_t i = n ? (uint32_t)(start % n) : 0;

    for (uint32_t k = 0; k < n; k++) {
        struct server *s = b->cls[c][i];

        if (lb__eligible(s, avoid))
            return s;
        if (++i == n)
            i = 0;
    }
    return NULL;
}

struct server *lb__walk(const struct lb__base *b, const uint32_t *slot, uint32_t len, uint32_t pos,
                        const struct server *avoid)
{
    uint32_t steps = len < LB__WALK_MAX ? len : LB__WALK_MAX;

    if (len == 0)
        return lb__scan(b, LB__PRIMARY, 0, avoid);
    for (uint32_t k = 0; k < steps; k++) {
        struct server *s = b->cls[LB__PRIMARY][slot[pos]];

        if (lb__eligible(s, avoid))
            return s;
        if (++pos == len)
            pos = 0;
    }
    return lb__scan(b, LB__PRIMARY, slot[pos], avoid);
}

struct server *lb__choose_cursor(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    const struct lb__slots *t = (const struct lb__slots *)lb__table(b);
    uint64_t c =
        atomic_fetch_add_explicit(&((struct lb__base *)b)->cursor, 1, memory_order_relaxed);

    return lb__walk(b, t->slot, t->hdr.len, t->hdr.len ? (uint32_t)(c % t->hdr.len) : 0,
                    ctx->avoid);
}

struct server *lb__choose_key(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    const struct lb__slots *t = (const struct lb__slots *)lb__table(b);

    return lb__walk(b, t->slot, t->hdr.len, lb__reduce(ctx->key, t->hdr.len), ctx->avoid);
}

struct server *lb__sample(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    const struct lb__alias *t = (const struct lb__alias *)lb__table(b);

    for (int k = 0; k < LB__SAMPLE_TRIES; k++) {
        struct server *s = b->cls[LB__PRIMARY][lb__alias_sample(t, lb__rand(ctx->rng))];

        if (lb__eligible(s, ctx->avoid))
            return s;
    }
    return NULL;
}

uint64_t lb__hash_name(const char *name, uint64_t seed)
{
    uint64_t h = lb__fnv1a(0xcbf29ce484222325ULL, &seed, sizeof(seed));

    return lb__mix64(lb__fnv1a(h, name, strlen(name)));
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t r = a % b;

        a = b;
        b = r;
    }
    return a;
}

uint64_t lb__norm_weights(const uint32_t *w, uint32_t n, uint64_t cap, uint32_t *out)
{
    uint64_t sum = 0, scaled = 0;
    uint32_t g = 0;

    for (uint32_t i = 0; i < n; i++)
        g = gcd32(g, w[i]);
    for (uint32_t i = 0; i < n; i++) {
        out[i] = g ? w[i] / g : 0;
        sum += out[i];
    }
    if (sum <= cap)
        return sum;
    for (uint32_t i = 0; i < n; i++) {
        if (out[i]) {
            uint64_t v = out[i] * cap / sum;

            out[i] = v ? (uint32_t)v : 1;
        }
        scaled += out[i];
    }
    return scaled;
}

static int by_name(const void *x, const void *y, void *arg)
{
    struct server *const *srv = arg;

    return strcmp(srv[*(const uint32_t *)x]->name, srv[*(const uint32_t *)y]->name);
}

uint32_t *lb__by_name(const struct lb__base *b)
{
    uint32_t n = b->n[LB__PRIMARY];
    uint32_t *order = lb_calloc(n ? n : 1, sizeof(*order));

    if (!order)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), by_name, b->cls[LB__PRIMARY]);
    return order;
}

struct lb__slots *lb__slots_new(uint32_t len)
{
    struct lb__slots *t = lb_malloc(sizeof(*t) + (size_t)len * sizeof(t->slot[0]));

    if (!t)
        return NULL;
    t->hdr.len = len;
    return t;
}

struct lb__slots *lb__build_blocks(const struct lb__base *b, const uint32_t *w, uint64_t min_len)
{
    uint32_t n = b->n[LB__PRIMARY], pos = 0;
    uint32_t *nw = lb_calloc(n ? n : 1, sizeof(*nw));
    struct lb__slots *t = NULL;
    uint64_t sum, rep = 1;

    if (!nw)
        return NULL;
    sum = lb__norm_weights(w, n, LB__MAX_SLOTS, nw);
    if (sum && min_len > sum)
        rep = (min_len + sum - 1) / sum;
    if (sum * rep > LB__MAX_SLOTS)
        rep = LB__MAX_SLOTS / sum;
    t = lb__slots_new((uint32_t)(sum * rep));
    if (!t)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t k = 0; k < nw[i] * rep; k++)
            t->slot[pos++] = i;
    }
out:
    lb_free(nw);
    return t;
}

/*
 * Vose's alias method in integers, so that every build of the same weights
 * yields the same table. Column i keeps i with probability thr/2^32 and
 * gives the rest to alias; weight-0 servers end up with no probability.
 */
struct lb__tab *lb__build_alias(const struct lb__base *b, const uint32_t *w)
{
    uint32_t n = b->n[LB__PRIMARY];
    struct lb__alias *t = lb_malloc(sizeof(*t) + (size_t)n * sizeof(t->slot[0]));
    uint64_t *p = lb_calloc(n ? n : 1, sizeof(*p));
    uint32_t *small = lb_calloc(n ? n : 1, sizeof(*small));
    uint32_t *large = lb_calloc(n ? n : 1, sizeof(*large));
    uint32_t ns = 0, nl = 0;
    uint64_t total;

    if (!t || !p || !small || !large) {
        lb_free(t);
        t = NULL;
        goto out;
    }
    t->hdr.len = n;
    /* Small weights keep p << 32 below 2^64; <small> is scratch here. */
    total = lb__norm_weights(w, n, 1u << 24, small);
    for (uint32_t i = 0; i < n; i++) {
        /* Every weight 0: sample uniformly; pick skips them anyway. */
        p[i] = total ? (uint64_t)small[i] * n : 1;
        t->slot[i].thr = UINT32_MAX;
        t->slot[i].alias = i;
    }
    if (!total)
        total = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < total)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];

        t->slot[s].thr = (uint32_t)((p[s] << 32) / total);
        t->slot[s].alias = l;
        p[l] -= total - p[s];
        if (p[l] < total) {
            nl--;
            small[ns++] = l;
        }
    }
out:
    lb_free(p);
    lb_free(small);
    lb_free(large);
    return t ? &t->hdr : NULL;
}
