/*
 * lb.h - the interface every balancing algorithm implements.
 *
 * A balancer is one file exporting one `const struct lb_ops` (STYLE point
 * 3). The core never switches on the algorithm: it calls ops->pick.
 *
 * Threads: init/destroy/server_state run off the hot path (main or checker
 * thread) while building or retiring a snapshot; pick and active_changed run
 * on every worker concurrently, must not block, allocate or take a lock, and
 * must only read the pool plus the per-server atomics (and read or write the
 * algorithm's own atomics).
 */
#ifndef LB_LB_H
#define LB_LB_H

#include <stdint.h>

#include "../config/config.h"
#include "../core/backend.h"

/* Capability flags: what an algorithm can use. They are config's own
 * (config/config.h), whose table of algorithms lets the validator reject
 * options that would be silently ignored without linking this code. */
#define LB_CAP_HASH_KEY CFG_CAP_HASH_KEY /* uses lb_pick_ctx.key (hash_key = ...) */
#define LB_CAP_WEIGHT   CFG_CAP_WEIGHT   /* honours server weights */

struct lb_pick_ctx {
    uint64_t key;               /* hash of the client address, per pool->hash_key */
    const struct server *avoid; /* a server that just failed; NULL if none */
    uint64_t *rng;              /* per-worker PRNG state, for random/p2c */
};

struct lb_ops {
    const char *name;
    unsigned caps;
    /* Builds pool->lb from pool->servers. Returns 0 or -errno. */
    int (*init)(struct pool *pool);
    /* Picks a usable server, or NULL when none can serve. */
    struct server *(*pick)(struct pool *pool, const struct lb_pick_ctx *ctx);
    /* Told when a server's state or weight changed; may be NULL. */
    void (*server_state)(struct pool *pool, struct server *s);
    /*
     * Told, on the worker that called server_take or server_put, that
     * <s>'s active count changed; only for servers whose lb_index the
     * algorithm set. May be NULL. Runs concurrently on every worker and
     * with server_state: must not block, allocate or take a lock.
     */
    void (*active_changed)(struct pool *pool, struct server *s);
    /* Frees pool->lb; may be NULL. */
    void (*destroy)(struct pool *pool);
};

/* Looks an algorithm up by its lb.ini name; NULL when unknown. */
const struct lb_ops *lb_registry_find(const char *name);

/* A space-separated list of the known names, for error messages. */
const char *lb_registry_names(void);

/* The key a hashing algorithm receives for a client address. */
uint64_t lb_hash_addr(const struct sockaddr *sa, enum hash_key how);

#endif
