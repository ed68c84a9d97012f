/*
 * maglev.c - Maglev consistent hashing (Eisenbud et al., NSDI 2016).
 *
 * A lookup table of M entries (M prime, 65537, or the first prime above
 * 100 x primaries for large pools) is filled by letting the primaries take
 * turns claiming the next free entry of their own permutation
 * (offset + k * skip mod M, both from the server name). Turns are weighted:
 * a server of weight w claims w entries for every wmax of the heaviest, so
 * entries, and keys, follow the weights within M / N of a slot. A pick is
 * one table read; an entry whose server cannot serve falls through to the
 * next entries, the same on every worker and instance. Removing a server
 * moves its own keys plus a small fraction of the others (the paper's
 * "minimal disruption"; the unit test bounds it).
 *
 * Servers take turns in name order, so the table depends only on the names
 * and weights, not on the order of the server lines in lb.ini.
 */
#include <string.h>

#include "../core/alloc.h"
#include "common.h"

#define MAGLEV_DEFAULT_SIZE 65537u
#define MAGLEV_EMPTY        UINT32_MAX

struct mg_srv {
    uint32_t idx;  /* primary index */
    uint32_t pos;  /* next entry of its permutation */
    uint32_t skip; /* permutation step, 1..M-1 */
    uint32_t w;
};

static bool is_prime(uint32_t m)
{
    if (m < 2)
        return false;
    for (uint32_t d = 2; (uint64_t)d * d <= m; d++) {
        if (m % d == 0)
            return false;
    }
    return true;
}

/* The table size for <n> primaries: prime and more than 100 entries each. */
static uint32_t mg_size(uint32_t n)
{
    uint32_t m = 100 * n + 1;

    if (m <= MAGLEV_DEFAULT_SIZE)
        return MAGLEV_DEFAULT_SIZE;
    while (!is_prime(m))
        m++;
    return m;
}

static struct lb__tab *mg_build(const struct lb__base *b, const uint32_t *w)
{
    uint32_t n = b->n[LB__PRIMARY], m = mg_size(n), wmax = 0, filled = 0;
    struct mg_srv *srv = lb_calloc(n ? n : 1, sizeof(*srv));
    uint32_t *order = lb__by_name(b);
    struct lb__slots *t = NULL;

    if (!srv || !order)
        goto out;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = order[j];
        const char *name = b->cls[LB__PRIMARY][i]->name;

        srv[j].idx = i;
        srv[j].pos = (uint32_t)(lb__hash_name(name, 0x6d61676c6576ULL) % m);
        srv[j].skip = (uint32_t)(lb__hash_name(name, 0x736b6970ULL) % (m - 1)) + 1;
        srv[j].w = w[i];
        wmax = w[i] > wmax ? w[i] : wmax;
    }
    /* No weight at all: an empty table, and picks scan (and find nothing). */
    t = lb__slots_new(wmax ? m : 0);
    if (!t)
        goto out;
    memset(t->slot, 0xff, (size_t)t->hdr.len * sizeof(t->slot[0]));
    for (uint64_t r = 1; filled < t->hdr.len; r++) {
        for (uint32_t j = 0; j < n && filled < t->hdr.len; j++) {
            struct mg_srv *s = &srv[j];

            /* Weighted turns: s claims in round r when r * w / wmax steps. */
            if ((r * s->w) / wmax == ((r - 1) * s->w) / wmax)
                continue;
            while (t->slot[s->pos] != MAGLEV_EMPTY) {
                s->pos += s->skip;
                if (s->pos >= m)
                    s->pos -= m;
            }
            t->slot[s->pos] = s->idx;
            filled++;
        }
    }
out:
    lb_free(order);
    lb_free(srv);
    return t ? &t->hdr : NULL;
}

static int maglev_init(struct pool *pool)
{
    return lb__init(pool, mg_build);
}

static struct server *maglev_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lb__choose_key, LB__SPREAD_KEY);
}

const struct lb_ops lb_maglev_ops = {
    .name = "maglev",
    .caps = LB_CAP_HASH_KEY | LB_CAP_WEIGHT,
    .init = maglev_init,
    .pick = maglev_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
