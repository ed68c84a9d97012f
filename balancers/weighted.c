/*
 * weighted.c - smooth weighted round robin, nginx's algorithm.
 *
 * Each server gets exactly its weighted share per cycle and the heaviest
 * server never receives a burst: weights 5,1,1 give a a b a c a a. The
 * sequence is computed off the hot path (smooth_build) and replayed by
 * one shared atomic cursor, so a pick is a fetch-add and a table read.
 */
#include "common.h"

#include "../core/alloc.h"

/*
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): at each
 * step every server gains its weight, the largest current weight wins (the
 * first on a tie) and pays back the total. The sequence repeats after the
 * sum of weights, so it is computed once and replayed with a cursor. The sum
 * is capped so the O(sum x n) build stays within a few milliseconds.
 */
static struct lb__tab *smooth_build(const struct lb__base *b, const uint32_t *w)
{
    uint32_t n = b->n[LB__PRIMARY];
    uint64_t cap = n ? (1u << 25) / n : 0;
    uint32_t *nw = lb_calloc(n ? n : 1, sizeof(*nw));
    int64_t *cur = lb_calloc(n ? n : 1, sizeof(*cur));
    struct lb__slots *t = NULL;
    uint64_t total;

    if (!nw || !cur)
        goto out;
    if (cap < n)
        cap = n;
    if (cap > LB__MAX_SLOTS)
        cap = LB__MAX_SLOTS;
    total = lb__norm_weights(w, n, cap, nw);
    t = lb__slots_new((uint32_t)total);
    if (!t)
        goto out;
    for (uint32_t k = 0; k < t->hdr.len; k++) {
        uint32_t best = 0;

        for (uint32_t i = 0; i < n; i++) {
            cur[i] += nw[i];
            if (cur[i] > cur[best])
                best = i;
        }
        cur[best] -= (int64_t)total;
        t->slot[k] = best;
    }
out:
    lb_free(nw);
    lb_free(cur);
    return t ? &t->hdr : NULL;
}

static int weighted_init(struct pool *pool)
{
    return lb__init(pool, smooth_build);
}

static struct server *weighted_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lb__choose_cursor, LB__SPREAD_CURSOR);
}

const struct lb_ops lb_weighted_ops = {
    .name = "weighted",
    .caps = LB_CAP_WEIGHT,
    .init = weighted_init,
    .pick = weighted_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
