/*
 * jump.c - jump consistent hash (Lamping and Veach, 2014).
 *
 * The key jumps to one of B buckets in O(ln B) steps and no memory beyond a
 * bucket-to-server list, in which each primary holds as many consecutive
 * buckets as its weight (reduced by the weights' common divisor). Growing
 * or shrinking the pool at its end moves only the keys of the servers added
 * or removed; removing a server in the middle renumbers the ones after it
 * (use ketama or maglev where servers leave from anywhere). A bucket whose
 * server cannot serve rehashes the key and jumps again, a few times, so its
 * keys spread over the others and every worker and instance agrees.
 */
#include "common.h"

/* Rehashes tried when the bucket's server cannot serve. */
#define JUMP_TRIES 8

static struct lb__tab *jump_build(const struct lb__base *b, const uint32_t *w)
{
    struct lb__slots *t = lb__build_blocks(b, w, 0);

    return t ? &t->hdr : NULL;
}

/* The reference algorithm: a linear congruential walk over the buckets. */
static uint32_t jump_hash(uint64_t key, uint32_t nbuckets)
{
    int64_t b = -1, j = 0;

    while (j < (int64_t)nbuckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

static struct server *jump_choose(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    const struct lb__slots *t = (const struct lb__slots *)lb__table(b);
    uint64_t key = ctx->key;
    uint32_t first = 0;

    if (t->hdr.len == 0)
        return lb__scan(b, LB__PRIMARY, 0, ctx->avoid);
    for (int k = 0; k < JUMP_TRIES; k++) {
        uint32_t i = t->slot[jump_hash(key, t->hdr.len)];
        struct server *s = b->cls[LB__PRIMARY][i];

        if (lb__eligible(s, ctx->avoid))
            return s;
        if (k == 0)
            first = i;
        key = lb__mix64(key + 0x9e3779b97f4a7c15ULL);
    }
    return lb__scan(b, LB__PRIMARY, first, ctx->avoid);
}

static int jump_init(struct pool *pool)
{
    return lb__init(pool, jump_build);
}

static struct server *jump_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, jump_choose, LB__SPREAD_KEY);
}

const struct lb_ops lb_jump_ops = {
    .name = "jump",
    .caps = LB_CAP_HASH_KEY | LB_CAP_WEIGHT,
    .init = jump_init,
    .pick = jump_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
