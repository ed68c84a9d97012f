/*
 * leastconn.c - the server with the fewest active connections per weight.
 *
 * The lightest primary is the one with the smallest (active + 1) / weight;
 * among equals, the first at or after a shared rotating cursor, so ties go
 * round robin and workers picking at once from idle servers (all at 0, or
 * just after a reload) spread instead of herding onto one.
 *
 * Small pools (fewer than LB__LC_INDEX_MIN primaries) are scanned: the scan
 * reads every primary's atomics, costs a few ns per server and is exact
 * whatever changed the counts. Larger pools keep an index of the loads, a
 * tournament tree (HAProxy keeps an ebtree under a lock; this one has no
 * lock): each leaf holds a primary's load as a 48-bit key, each inner node
 * the smallest key of its 8 children (one cache line). A pick reads the
 * root and walks to the first leaf at or after the cursor that holds that
 * key: a few lines per level, 4 levels at 1,000 servers, against n server
 * lines for a scan.
 *
 * Who writes it: server_take/server_put (through ops->active_changed, on
 * the worker) and server_state (checker, admin) recompute the server's leaf
 * from its atomics and carry the change up. Every word is a key plus a
 * 16-bit version, written only by compare-and-swap; each node is recomputed
 * from its children and swapped in, twice at most (Jayanti's refresh, as
 * in lock-free f-arrays): if both swaps lose, the winner read the children
 * after this change and carries it up itself. A walk stops where a node's
 * key comes out unchanged, so with many ties most updates touch a level or
 * two (without ties they climb further: see bench/README.md). The version
 * keeps a refresher that read the children before another's swap from
 * swapping its older view in; only one delayed across 65,536 swaps of the
 * same node could, and the pick's checks below repair what that leaves.
 *
 * What that guarantees: once take/put/state calls stop, the tree is exact
 * (quiescent consistency). While they run, a pick sees each server's load
 * as of some recent moment, like the scan, which also reads n counters at
 * different times. Three things keep a stale leaf from doing harm: a pick
 * recomputes the chosen server's load and, if it moved, repairs that leaf
 * and picks again (so two workers racing do not send a burst to a server
 * whose count already rose); each pick also re-reads one leaf, at the
 * cursor, so a change the index missed (a reload's build window, when
 * counts are fed to the old pool) is found within n picks; and a pick that
 * finds nothing usable, or only the server to avoid, falls back to the
 * exact scan. The index trusts that only server_take/server_put change
 * <active> (what the core does); tests that store counts directly use small
 * pools, which the scan serves.
 */
#include <errno.h>

#include "../core/alloc.h"
#include "common.h"

#define LC_VER_BITS 16
#define LC_VER_MASK ((UINT64_C(1) << LC_VER_BITS) - 1)
/* The key of a server that cannot take a connection (and of padding). */
#define LC_KEY_NONE ((UINT64_C(1) << (64 - LC_VER_BITS)) - 1)
/* Keys are (active + 1) / weight in fixed point with this many bits. */
#define LC_SHIFT 28
/* The largest effective weight: lb.ini and the admin API take 0..1000. */
#define LC_WEIGHT_MAX (1000u * SRV_WEIGHT_SCALE)
/*
 * Two different loads a/w and b/v differ by at least 1/(w v), more than
 * 2^-LC_SHIFT when both weights are at most LC_WEIGHT_MAX: their keys then
 * differ and compare as lb__lighter() compares the fractions, equal loads
 * get equal keys. Keys saturate just below LC_KEY_NONE, at 2^20
 * connections per unit of effective weight (lb.ini's weight 1 is 16
 * units): past that, servers tie.
 */
_Static_assert(LC_WEIGHT_MAX < (1u << (LC_SHIFT / 2)), /* so w v < 2^LC_SHIFT */
               "leastconn keys would not order every pair of weights exactly");

/* Picks that find the index stale and repair it before the scan takes over. */
#define LC_PICK_TRIES 4

/* Children per node: 8 keys fill one cache line, so a node is recomputed
 * from one line and 1,000 servers need 4 levels (a binary tree: 10).
 * -DLC_FAN_BITS=1 builds the binary tree, to compare (bench/README.md). */
#ifndef LC_FAN_BITS
#define LC_FAN_BITS 3
#endif
#define LC_FAN (1u << LC_FAN_BITS)

struct lc_index {
    struct lb__tab hdr;     /* hdr.len: leaves, a power of LC_FAN >= the primaries */
    _Atomic uint64_t scans; /* picks that fell back to the scan (tests read it) */
    /* node[1] is the root; node[j]'s children are node[LC_FAN j] to
     * node[LC_FAN j + LC_FAN - 1], one aligned line; leaf i (primary i, or
     * padding past the primaries) is node[len + i]. Level d holds
     * node[LC_FAN^d] to node[2 LC_FAN^d - 1]: the words between levels
     * are not used. */
    _Atomic uint64_t node[] __attribute__((aligned(64)));
};

static inline uint64_t lc_key(uint64_t word)
{
    return word >> LC_VER_BITS;
}

/* True when node[j] belongs to a level (see struct lc_index). */
static inline bool lc_used(uint32_t j)
{
    return (31 - __builtin_clz(j)) % LC_FAN_BITS == 0;
}

static const struct lc_index *lc_index(const struct lb__base *b)
{
    return (const struct lc_index *)lb__table(b);
}

/* The key of <s>'s load now: what its leaf should hold. */
static uint64_t lc_load(const struct server *s)
{
    uint64_t k;

    if (!server_usable(s))
        return LC_KEY_NONE;
    k = (((uint64_t)atomic_load_explicit(&s->active, memory_order_relaxed) + 1) << LC_SHIFT) /
        lb__weight(s);
    return k < LC_KEY_NONE ? k : LC_KEY_NONE - 1;
}

/* What node <j> should hold: its server's load for a leaf, else the
 * least of its children's keys. */
static uint64_t lc_want(const struct lb__base *b, struct lc_index *x, uint32_t j)
{
    uint64_t min = LC_KEY_NONE;

    if (j >= x->hdr.len) {
        j -= x->hdr.len;
        return j < b->n[LB__PRIMARY] ? lc_load(b->cls[LB__PRIMARY][j]) : LC_KEY_NONE;
    }
    for (uint32_t c = LC_FAN * j; c < LC_FAN * j + LC_FAN; c++) {
        uint64_t k = lc_key(atomic_load(&x->node[c]));

        min = k < min ? k : min;
    }
    return min;
}

/*
 * Brings node <j> and its ancestors up to date after what lies under <j>
 * (for a leaf: its server's atomics) changed. Any thread; lock-free.
 * Sequentially consistent, so that a refresher that reads a node after
 * this one swapped it also reads the children this one read or newer.
 */
static void lc_fix(const struct lb__base *b, struct lc_index *x, uint32_t j)
{
    atomic_thread_fence(memory_order_seq_cst); /* the caller's store to <active> first */
    for (; j; j /= LC_FAN) {
        uint64_t old = 0, want = 0;
        int tries;

        for (tries = 0; tries < 2; tries++) {
            old = atomic_load(&x->node[j]);
            want = lc_want(b, x, j);
            /* The version changes even when the key does not, so a
             * refresher that read the children before this one cannot
             * swap its older view in over it. */
            if (atomic_compare_exchange_strong(&x->node[j], &old,
                                               want << LC_VER_BITS | ((old + 1) & LC_VER_MASK)))
                break;
        }
        /* Both swaps lost: the winner of the second read the children
         * after this change, and carries it up. */
        if (tries == 2)
            return;
        /* Unchanged: nothing above depends on what changed here. */
        if (want == lc_key(old))
            return;
    }
}

/*
 * The first leaf at or after <from> whose key is at most <min>: searches the
 * rest of the leaf's line, then the lines to the right one level up, and so
 * on (nodes of one level are in leaf order), then goes down to the first
 * child holding such a key at each level. -1 when there is none (or when a
 * concurrent update moved it).
 */
static int64_t lc_first(const struct lc_index *x, uint32_t from, uint64_t min)
{
    struct lc_index *w = (struct lc_index *)x;
    uint32_t len = x->hdr.len, j = len + from;

    for (;;) {
        do {
            if (lc_key(atomic_load_explicit(&w->node[j], memory_order_relaxed)) <= min)
                goto down;
        } while (++j % LC_FAN);
        /* Up from the line just searched, to its parent's right; a parent
         * last in its own line sends the search one more level up. */
        do {
            j = (j - 1) / LC_FAN;
            if (j == 1)
                return -1;
        } while (++j % LC_FAN == 0);
    }
down:
    while (j < len) {
        uint32_t end = LC_FAN * j + LC_FAN;

        for (j = LC_FAN * j; j < end; j++) {
            if (lc_key(atomic_load_explicit(&w->node[j], memory_order_relaxed)) <= min)
                break;
        }
        if (j == end)
            return -1;
    }
    return (int64_t)(j - len);
}

/* The exact pick: every primary from <start> on, the first of the lightest. */
static struct server *lc_scan(const struct lb__base *b, const struct lb_pick_ctx *ctx,
                              uint32_t start)
{
    uint32_t n = b->n[LB__PRIMARY], ba = 0, bw = 1;
    uint32_t i = start;
    struct server *best = NULL;

    for (uint32_t k = 0; k < n; k++) {
        struct server *s = b->cls[LB__PRIMARY][i];

        if (++i == n)
            i = 0;
        if (lb__eligible(s, ctx->avoid)) {
            uint32_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
            uint32_t w = lb__weight(s);

            if (!best || lb__lighter(a, w, ba, bw)) {
                best = s;
                ba = a;
                bw = w;
            }
        }
    }
    return best;
}

/* Repairs leaf <i> if it no longer holds its server's load. True if it did. */
static bool lc_check(const struct lb__base *b, struct lc_index *x, uint32_t i)
{
    uint32_t j = x->hdr.len + i;

    if (lc_key(atomic_load_explicit(&x->node[j], memory_order_relaxed)) ==
        lc_load(b->cls[LB__PRIMARY][i]))
        return false;
    lc_fix(b, x, j);
    return true;
}

static struct server *lc_choose(const struct lb__base *b, const struct lb_pick_ctx *ctx)
{
    struct lc_index *x = (struct lc_index *)lc_index(b);
    uint32_t n = b->n[LB__PRIMARY];
    uint64_t c =
        atomic_fetch_add_explicit(&((struct lb__base *)b)->cursor, 1, memory_order_relaxed);
    uint32_t start = (uint32_t)(c % n);

    if (!x)
        return lc_scan(b, ctx, start);
    lc_check(b, x, start);
    for (int t = 0; t < LC_PICK_TRIES; t++) {
        uint64_t min = lc_key(atomic_load_explicit(&x->node[1], memory_order_relaxed));
        int64_t i;

        if (min == LC_KEY_NONE)
            break; /* none usable, or a stale index: the scan tells */
        i = lc_first(x, start, min);
        if (i < 0)
            i = lc_first(x, 0, min);
        if (i < 0 || i >= n || lc_check(b, x, (uint32_t)i))
            continue; /* moved while we looked, or its count changed: again */
        if (b->cls[LB__PRIMARY][i] == ctx->avoid)
            break;
        return b->cls[LB__PRIMARY][i];
    }
    atomic_fetch_add_explicit(&x->scans, 1, memory_order_relaxed);
    return lc_scan(b, ctx, start);
}

/* Builds the index of <b>'s primaries and tells them their leaf. */
static int lc_index_build(struct lb__base *b)
{
    uint32_t n = b->n[LB__PRIMARY], len;
    struct lc_index *x;

    /* At least one level under the root: lc_first never searches the
     * root's line. */
    for (len = LC_FAN; len < n;)
        len *= LC_FAN;
    x = lb_aligned_alloc(64, sizeof(*x) + 2 * (size_t)len * sizeof(x->node[0]));
    if (!x)
        return -ENOMEM;
    x->hdr.len = len;
    atomic_init(&x->scans, 0);
    atomic_init(&x->node[0], 0); /* unused: the root is node[1] */
    for (uint32_t i = 0; i < n; i++)
        atomic_store_explicit(&b->cls[LB__PRIMARY][i]->lb_index, i + 1, memory_order_relaxed);
    /* Until this snapshot is published, take/put feed the pool it
     * replaces, not this one: counts that move before then are caught by
     * lc_choose's checks. */
    for (uint32_t j = 2 * len - 1; j >= 1; j--)
        atomic_init(&x->node[j], lc_used(j) ? lc_want(b, x, j) << LC_VER_BITS : 0);
    atomic_store_explicit(&b->tab, &x->hdr, memory_order_release);
    return 0;
}

static int leastconn_init(struct pool *pool)
{
    int ret = lb__init(pool, NULL);
    struct lb__base *b;

    if (ret < 0 || ((struct lb__base *)pool->lb)->n[LB__PRIMARY] < LB__LC_INDEX_MIN)
        return ret;
    b = pool->lb;
    ret = lc_index_build(b);
    if (ret < 0)
        lb__destroy(pool);
    return ret;
}

static struct server *leastconn_pick(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    return lb__pick(pool, ctx, lc_choose, LB__SPREAD_CURSOR);
}

/* Recomputes <s>'s leaf, if <s> is a primary of this pool's index. */
static void lc_update(struct pool *pool, struct server *s)
{
    const struct lb__base *b = pool->lb;
    struct lc_index *x = (struct lc_index *)lc_index(b);
    uint32_t i = atomic_load_explicit(&s->lb_index, memory_order_relaxed);

    /* A reload may have given <s> a leaf in the pool that replaces this one. */
    if (!x || i == 0 || i > b->n[LB__PRIMARY] || b->cls[LB__PRIMARY][i - 1] != s)
        return;
    lc_fix(b, x, x->hdr.len + i - 1);
}

extern const struct lb_ops lb_leastconn_ops;

/* <pool>'s index; NULL when it keeps none, or is not leastconn's. */
static struct lc_index *lc_index_of(const struct pool *pool)
{
    return pool->ops == &lb_leastconn_ops ? (struct lc_index *)lc_index(pool->lb) : NULL;
}

int lb__lc_verify(const struct pool *pool)
{
    const struct lb__base *b = pool->lb;
    struct lc_index *x = lc_index_of(pool);

    if (!x)
        return -1;
    for (uint32_t i = 0; i < b->n[LB__PRIMARY]; i++) {
        if (atomic_load(&b->cls[LB__PRIMARY][i]->lb_index) != i + 1)
            return 0;
    }
    for (uint32_t j = 2 * x->hdr.len - 1; j >= 1; j--) {
        if (lc_used(j) && lc_key(atomic_load(&x->node[j])) != lc_want(b, x, j))
            return 0;
    }
    return 1;
}

uint64_t lb__lc_scans(const struct pool *pool)
{
    const struct lc_index *x = lc_index_of(pool);

    return x ? atomic_load_explicit(&x->scans, memory_order_relaxed) : 0;
}

const struct lb_ops lb_leastconn_ops = {
    .name = "leastconn",
    .caps = LB_CAP_WEIGHT,
    .init = leastconn_init,
    .pick = leastconn_pick,
    .server_state = lc_update,
    .active_changed = lc_update,
    .destroy = lb__destroy,
};
