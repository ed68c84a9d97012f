/*
 * common.h - what the nine balancers share (module internals, lb__ prefix).
 *
 * Every algorithm keeps a struct lb__base in pool->lb: the pool's servers
 * split into primaries and backups (config order), a shared round-robin
 * cursor on its own cache line, and an optional read-only table (sequence,
 * alias table, ring, Maglev lookup) built off the hot path from the servers'
 * effective weights and published through an atomic pointer.
 *
 * leastconn's table is the exception: an index of the servers' loads that
 * workers write in place (see leastconn.c), never rebuilt after init.
 *
 * The policy every algorithm honours lives here once:
 *  - a server can take a new connection only when server_usable() says so
 *    (up, weight > 0, below max_conns);
 *  - backups are tried only when no primary can serve;
 *  - the <avoid> server is chosen only when no other server can serve;
 *  - a table entry whose server cannot serve is skipped by walking forward
 *    deterministically (LB__WALK_MAX entries, then a scan in config order),
 *    so every worker and every instance with the same config agrees.
 */
#ifndef LB_COMMON_H
#define LB_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb.h"

/* Table entries tried before a pick falls back to a linear scan. */
#define LB__WALK_MAX 64

/* Weighted random draws tried before a pick falls back to a linear scan. */
#define LB__SAMPLE_TRIES 8

/*
 * Primaries from which leastconn keeps an index of loads instead of scanning
 * them all at each pick (see leastconn.c and bench/README.md: below this
 * the scan is about as fast, exact, and costs take/put nothing).
 */
#define LB__LC_INDEX_MIN 64

/*
 * For tests: 1 when leastconn's index of <pool> holds exactly its servers'
 * loads (every leaf its server's, every node the least below it), 0 when
 * not, -1 when the pool keeps no index (small, or not leastconn). Exact
 * only while no take, put or state change runs.
 */
int lb__lc_verify(const struct pool *pool);

/* For tests: picks of <pool> that fell back to leastconn's scan (the server
 * to avoid was the lightest, nothing usable, or the index kept moving). */
uint64_t lb__lc_scans(const struct pool *pool);

/* Upper bound on the slots of a weight-expanded table (sequence, buckets). */
#define LB__MAX_SLOTS (1u << 20)

enum lb__class { LB__PRIMARY = 0, LB__BACKUP = 1 };

/* Where the scan over backups starts: rotating, by client key, or at random. */
enum lb__spread { LB__SPREAD_CURSOR = 0, LB__SPREAD_KEY, LB__SPREAD_RANDOM };

/* Header of every published table: one lb_malloc'd block each. */
struct lb__tab {
    uint32_t len; /* entries */
};

/* A table of primary indices: a sequence, a bucket list or a lookup table. */
struct lb__slots {
    struct lb__tab hdr;
    uint32_t slot[];
};

/* Vose alias table over the primaries, for O(1) weighted sampling. */
struct lb__alias_slot {
    uint32_t thr; /* keep this primary when the 32-bit coin is below thr */
    uint32_t alias;
};

struct lb__alias {
    struct lb__tab hdr;
    struct lb__alias_slot slot[];
};

struct lb__base;

/*
 * Builds an algorithm's table from the primaries of <b> and their weights
 * <w> (indexed like b->cls[LB__PRIMARY]). Runs off the hot path; returns a
 * single lb_malloc'd block starting with struct lb__tab, or NULL on ENOMEM.
 */
typedef struct lb__tab *(*lb__build_fn)(const struct lb__base *b, const uint32_t *w);

struct lb__base {
    struct server **cls[2]; /* primaries, backups; config order */
    uint32_t n[2];
    _Atomic(struct lb__tab *) tab; /* current table, NULL when <build> is */
    lb__build_fn build;
    uint32_t *wbuilt; /* primary weights the current table was built from */
    /* Shared by all workers: keep it off the read-mostly line above. */
    _Atomic uint64_t cursor __attribute__((aligned(64)));
    _Atomic uint64_t bcursor; /* rotates over the backups */
};

/* Chooses among the primaries; NULL when none can serve. */
typedef struct server *(*lb__choose_fn)(const struct lb__base *b, const struct lb_pick_ctx *ctx);

/*
 * Builds pool->lb: splits the servers, snapshots the primaries' weights and,
 * when <build> is not NULL, builds and publishes the first table. Clears
 * the servers' lb_index (an algorithm that keeps an index sets it again
 * after). Main or checker thread. Returns 0 or -ENOMEM.
 */
int lb__init(struct pool *pool, lb__build_fn build);

/*
 * Rebuilds and republishes the table when a primary's effective weight no
 * longer matches the one it was built from. State changes need nothing: the
 * pick path skips servers that cannot serve. Calls must be serialized by the
 * caller (checker or admin thread), never made from a worker. The replaced
 * table goes to qsbr_retire(): a worker may be reading it in this loop turn.
 */
void lb__server_state(struct pool *pool, struct server *s);

/* Frees pool->lb and its current table. No pick may be running on <pool>. */
void lb__destroy(struct pool *pool);

/* The first server of class <c> from position <start> (mod n) that can serve. */
struct server *lb__scan(const struct lb__base *b, enum lb__class c, uint64_t start,
                        const struct server *avoid);

/*
 * Walks the <len> primary indices of <slot> from <pos> for a server that can
 * serve (LB__WALK_MAX entries), then scans the primaries in config order.
 */
struct server *lb__walk(const struct lb__base *b, const uint32_t *slot, uint32_t len, uint32_t pos,
                        const struct server *avoid);

/* 64-bit finalizer (murmur3 fmix64): spreads neighbouring inputs apart.
 * Inline, like lb__fnv1a: both run on every hashed pick, and the registry
 * hashes client addresses with them without calling into this file. */
static inline uint64_t lb__mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* FNV-1a over <n> bytes continuing from <h>. */
static inline uint64_t lb__fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Stable hash of a server name with a <seed>, for rings and permutations. */
uint64_t lb__hash_name(const char *name, uint64_t seed);

/*
 * Reduces weights <w> to <out> by their common divisor and, when their sum
 * exceeds <cap>, scales them down (a non-zero weight stays >= 1). Returns
 * the new sum.
 */
uint64_t lb__norm_weights(const uint32_t *w, uint32_t n, uint64_t cap, uint32_t *out);

/*
 * Replays the slots table from the shared cursor (roundrobin, weighted); a
 * server that cannot serve passes its turn to the next entry.
 */
struct server *lb__choose_cursor(const struct lb__base *b, const struct lb_pick_ctx *ctx);

/*
 * Reads the slots table at the client key (source, maglev); a server that
 * cannot serve falls through to the next entries.
 */
struct server *lb__choose_key(const struct lb__base *b, const struct lb_pick_ctx *ctx);

/*
 * Draws primaries from the alias table with <ctx->rng> until one can serve,
 * at most LB__SAMPLE_TRIES times: rejection keeps the draw weighted among
 * the servers that can serve. NULL when every try failed.
 */
struct server *lb__sample(const struct lb__base *b, const struct lb_pick_ctx *ctx);

/*
 * The primary indices of <b> sorted by server name (lb_malloc'd, NULL on
 * ENOMEM): tables built in this order do not depend on the order of the
 * server lines in lb.ini.
 */
uint32_t *lb__by_name(const struct lb__base *b);

/* An uninitialised slots table of <len> entries; NULL on ENOMEM. */
struct lb__slots *lb__slots_new(uint32_t len);

/*
 * A table in which each primary holds a block of consecutive slots in
 * proportion to its weight, repeated so that the table has at least
 * <min_len> slots (bounded by LB__MAX_SLOTS). NULL on ENOMEM.
 */
struct lb__slots *lb__build_blocks(const struct lb__base *b, const uint32_t *w, uint64_t min_len);

/* The smooth weighted round robin sequence of nginx over <w>. */

/* A Vose alias table over <w>. */
struct lb__tab *lb__build_alias(const struct lb__base *b, const uint32_t *w);

static inline const struct lb__tab *lb__table(const struct lb__base *b)
{
    return atomic_load_explicit(&((struct lb__base *)b)->tab, memory_order_acquire);
}

static inline uint32_t lb__weight(const struct server *s)
{
    return atomic_load_explicit(&s->weight, memory_order_relaxed);
}

static inline bool lb__eligible(const struct server *s, const struct server *avoid)
{
    return s != avoid && server_usable(s);
}

/* splitmix64: any state is valid, and one add plus a mix per number. */
static inline uint64_t lb__rand(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Maps the high 32 bits of <x> onto [0, n) without a division (Lemire). */
static inline uint32_t lb__reduce(uint64_t x, uint32_t n)
{
    return (uint32_t)(((x >> 32) * (uint64_t)n) >> 32);
}

/* A weighted sample of a primary index from an alias table. */
static inline uint32_t lb__alias_sample(const struct lb__alias *t, uint64_t r)
{
    const struct lb__alias_slot *sl = &t->slot[lb__reduce(r, t->hdr.len)];

    return (uint32_t)r < sl->thr ? (uint32_t)(sl - t->slot) : sl->alias;
}

/*
 * True when <active> connections at weight <w> is a lighter load than
 * <bactive> at <bw>: (active + 1) / w < (bactive + 1) / bw, in integers. The
 * +1 sends the first connections of idle servers by weight, as HAProxy does.
 */
static inline bool lb__lighter(uint32_t active, uint32_t w, uint32_t bactive, uint32_t bw)
{
    return ((uint64_t)active + 1) * bw < ((uint64_t)bactive + 1) * w;
}

/*
 * The pick every algorithm shares: <choose> among the primaries, then a scan
 * of the backups spread by <how>, then the avoided server if it can still
 * serve (better than refusing the client). Lock-free; inlined so that
 * <choose> is a direct call.
 */
static inline struct server *lb__pick(struct pool *pool, const struct lb_pick_ctx *ctx,
                                      lb__choose_fn choose, enum lb__spread how)
{
    const struct lb__base *b = pool->lb;
    struct server *s = NULL;
    uint64_t start;

    if (b->n[LB__PRIMARY])
        s = choose(b, ctx);
    if (s)
        return s;
    if (b->n[LB__BACKUP]) {
        if (how == LB__SPREAD_KEY)
            start = ctx->key >> 32;
        else if (how == LB__SPREAD_RANDOM)
            start = lb__rand(ctx->rng) >> 32;
        else
            start = atomic_fetch_add_explicit(&((struct lb__base *)b)->bcursor, 1,
                                              memory_order_relaxed);
        s = lb__scan(b, LB__BACKUP, start, ctx->avoid);
        if (s)
            return s;
    }
    if (ctx->avoid && server_usable(ctx->avoid))
        return (struct server *)ctx->avoid;
    return NULL;
}

/*
 * An algorithm file ends with its `const struct lb_ops`, spelled out (so
 * that grep finds it): init is lb__init() with the file's table builder
 * (NULL: none), pick is lb__pick() with its choice among the primaries and
 * how backups are spread, and server_state/destroy are the common ones.
 * The file holds only what differs: its table and its choice.
 */

#endif
