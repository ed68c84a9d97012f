/*
 * p2c.c - power of two random choices on active connections per weight.
 *
 * Two weighted random draws (the alias table of `random`), and the one with
 * the lighter load, (active + 1) / weight, wins. This tracks load almost as
 * well as leastconn at the cost of two server reads instead of a scan, and
 * workers do not herd onto the same idle server (Mitzenmacher).
 */
#include "common.h"

static struct server *p2c_choose(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    struct server *x = lb__sample(b, ctx), *y;

    if (!x)
        return lb__scan(b, LB__PRIMARY, lb__rand(ctx->rng) >> 32, ctx->avoid);
    y = lb__sample(b, ctx);
    if (!y || y == x)
        return x;
    if (lb__lighter(atomic_load_explicit(&y->active, memory_order_relaxed), lb__weight(y),
                    atomic_load_explicit(&x->active, memory_order_relaxed), lb__weight(x)))
        return y;
    return x;
}

static int p2c_init(struct pool *pool)
{
    return lb__init(pool, lb__build_alias);
}

static struct server *p2c_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, p2c_choose, LB__SPREAD_RANDOM);
}

const struct lb_ops lb_p2c_ops = {
    .name = "p2c",
    .caps = LB_CAP_WEIGHT,
    .init = p2c_init,
    .pick = p2c_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
