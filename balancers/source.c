/*
 * source.c - the client address hash picks the server (HAProxy "source").
 *
 * The key (lb_hash_addr of the client IP, or IP and port with
 * hash_key = src_ip_port) indexes a table in which every server holds slots
 * in proportion to its weight, at least SOURCE_SLOTS per server, shuffled
 * with a fixed seed. A server that cannot serve is skipped by walking to the
 * next slots, which belong to varied servers, so its clients spread over
 * the others, and all workers and instances with the same config agree. This is a map-based hash: a
 * weight change or a new server remaps most keys; use ketama, maglev or jump to keep them.
 */
#include "common.h"

#define SOURCE_SLOTS 64

static struct lb__tab *src_build(const struct lb__base *b, const uint32_t *w)
{
    struct lb__slots *t = lb__build_blocks(b, w, (uint64_t)SOURCE_SLOTS * b->n[LB__PRIMARY]);
    uint64_t rng = 0x736f75726365ULL; /* fixed: every instance shuffles alike */

    if (!t)
        return NULL;
    for (uint32_t i = t->hdr.len; i > 1; i--) {
        uint32_t j = lb__reduce(lb__rand(&rng), i), tmp = t->slot[i - 1];

        t->slot[i - 1] = t->slot[j];
        t->slot[j] = tmp;
    }
    return &t->hdr;
}

static int source_init(struct pool *pool)
{
    return lb__init(pool, src_build);
}

static struct server *source_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lb__choose_key, LB__SPREAD_KEY);
}

const struct lb_ops lb_source_ops = {
    .name = "source",
    .caps = LB_CAP_HASH_KEY | LB_CAP_WEIGHT,
    .init = source_init,
    .pick = source_pick,
    .server_state = lb__server_state,
    .destroy = lb__destroy,
};
