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

LB__DEFINE_OPS(lb_random_ops, "random", LB_CAP_WEIGHT, lb__build_alias, rnd_choose,
               LB__SPREAD_RANDOM);
