/*
 * random.c - weighted random choice.
 *
 * An alias table built off the hot path turns one 64-bit random number
 * (the worker's own splitmix64 state, no shared cache line) into a
 * weighted draw. A server that cannot serve is rejected and drawn again, so
 * the choice stays weighted among the servers that can.
 */
#include "common.h"

static struct server *rnd_choose(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    struct server *s = lb__sample(b, ctx);

    return s ? s : lb__scan(b, LB__PRIMARY, lb__rand(ctx->rng) >> 32, ctx->avoid);
}

static int random_init(struct pool *pool)
{
    return lb__init(pool, lb__build_alias);
}

static struct server *random_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, rnd_choose, LB__SPREAD_RANDOM);
}

const struct lb_ops lb_random_ops = {
    .name = "random",
    .caps = LB_CAP_WEIGHT,
    .init = random_init,
    .pick = random_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
