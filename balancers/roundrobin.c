/*
 * roundrobin.c - classic weighted round robin (LVS "wrr").
 *
 * The sequence is built once per weight set: pass k (from the largest
 * weight down to 1) visits, in config order, every server whose weight is
 * at least k. Equal weights give a plain rotation; unequal weights give each
 * server exactly its share per cycle, with bursts to the heaviest servers at
 * the start of a cycle (`weighted` is the smooth variant). One shared atomic
 * cursor per pool replays it, so the order is exactly even across workers (a
 * per-worker cursor drifts with how the kernel spreads accepts).
 */
#include "../core/alloc.h"
#include "common.h"

static struct lb__tab *rr_build(const struct lb__base *b, const uint32_t *w)
{
    uint32_t n = b->n[LB__PRIMARY], wmax = 0, k, pos = 0;
    uint32_t *nw = lb_calloc(n ? n : 1, sizeof(*nw));
    struct lb__slots *t = NULL;

    if (!nw)
        return NULL;
    t = lb__slots_new((uint32_t)lb__norm_weights(w, n, LB__MAX_SLOTS, nw));
    if (!t)
        goto out;
    for (uint32_t i = 0; i < n; i++)
        wmax = nw[i] > wmax ? nw[i] : wmax;
    for (k = wmax; k > 0; k--) {
        for (uint32_t i = 0; i < n; i++) {
            if (nw[i] >= k)
                t->slot[pos++] = i;
        }
    }
out:
    lb_free(nw);
    return t ? &t->hdr : NULL;
}

static int roundrobin_init(struct pool *pool)
{
    return lb__init(pool, rr_build);
}

static struct server *roundrobin_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lb__choose_cursor, LB__SPREAD_CURSOR);
}

const struct lb_ops lb_roundrobin_ops = {
    .name = "roundrobin",
    .caps = LB_CAP_WEIGHT,
    .init = roundrobin_init,
    .pick = roundrobin_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
