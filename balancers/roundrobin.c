/*
 * roundrobin.c - plain round robin over usable servers.
 *
 * One shared atomic cursor per pool, so that the order is exactly even
 * across all workers (a per-worker cursor drifts with how the kernel spreads
 * accepts). Backup servers are used only when no primary can serve.
 */
#include <errno.h>

#include "../core/alloc.h"
#include "lb.h"

struct rr_state {
    _Atomic uint64_t cursor;
};

static int rr_init(struct pool *pool)
{
    struct rr_state *st = lb_aligned_alloc(64, 64);

    if (!st)
        return -ENOMEM;
    atomic_init(&st->cursor, 0);
    pool->lb = st;
    return 0;
}

/* Scans from the cursor for a usable server in the <backup> class. */
static struct server *rr_scan(struct pool *pool, uint64_t start, bool backup,
                              const struct server *avoid, struct server **avoided)
{
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = pool->servers[(start + i) % pool->nservers];

        if (s->backup != backup || !server_usable(s))
            continue;
        if (s == avoid) {
            *avoided = s;
            continue;
        }
        return s;
    }
    return NULL;
}

static struct server *rr_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    struct rr_state *st = pool->lb;
    struct server *avoided = NULL, *s;
    uint64_t start;

    if (pool->nservers == 0)
        return NULL;
    start = atomic_fetch_add_explicit(&st->cursor, 1, memory_order_relaxed);
    s = rr_scan(pool, start, false, ctx->avoid, &avoided);
    if (!s && !avoided)
        s = rr_scan(pool, start, true, ctx->avoid, &avoided);
    /* The avoided server is still better than refusing the client. */
    return s ? s : avoided;
}

static void rr_destroy(struct pool *pool)
{
    lb_free(pool->lb);
    pool->lb = NULL;
}

const struct lb_ops lb_roundrobin_ops = {
    .name = "roundrobin",
    .caps = 0,
    .init = rr_init,
    .pick = rr_pick,
    .server_state = NULL,
    .destroy = rr_destroy,
};
