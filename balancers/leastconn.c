/*
 * leastconn.c - the server with the fewest active connections per weight.
 *
 * Each pick scans the primaries once, reading the per-server atomics, and
 * keeps the lightest (active + 1) / weight. The scan starts at a shared
 * rotating cursor and keeps the first of equals, so ties go round robin.
 * There is no index to maintain: connections come and go in the core
 * (server_take / server_put) without telling the balancer, and a scan is
 * exact under any interleaving. Its cost grows with the pool (see README
 * for the numbers); p2c is the constant-time alternative.
 */
#include "common.h"

static struct server *lc_choose(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    uint32_t n = b->n[LB__PRIMARY], ba = 0, bw = 1;
    uint64_t c =
        atomic_fetch_add_explicit(&((struct lb__base *)b)->cursor, 1, memory_order_relaxed);
    uint32_t i = (uint32_t)(c % n);
    struct server *best = NULL;

    for (uint32_t k = 0; k < n; k++) {
        struct server *s = b->cls[LB__PRIMARY][i];

        if (++i == n)
            i = 0;
        if (lb__eligible(s, ctx->avoid)) {
            uint32_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
            uint32_t w = lb__weight(s);

            if (!best || lb__lighter(a, w, ba, bw)) {
                best = s;
                ba = a;
                bw = w;
            }
        }
    }
    return best;
}

static int leastconn_init(struct pool *pool)
{
    return lb__init(pool, NULL);
}

static struct server *leastconn_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lc_choose, LB__SPREAD_CURSOR);
}

const struct lb_ops lb_leastconn_ops = {
    .name = "leastconn",
    .caps = LB_CAP_WEIGHT,
    .init = leastconn_init,
    .pick = leastconn_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
