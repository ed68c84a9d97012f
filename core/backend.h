/*
 * backend.h - the shared backend table that workers read without locks.
 *
 * Two kinds of data live here:
 *
 *  - struct server: one per configured server. Its identity (name, address,
 *    configured weight, flags) never changes after load; its hot state (up /
 *    down / drain, effective weight, active connections, counters) is a set
 *    of atomics written by workers and by the health checker. A server
 *    outlives snapshots, so counters and health survive table swaps.
 *
 *  - struct lb_table: an immutable snapshot {pools[], per-algorithm tables}
 *    published through one atomic pointer (release on store, acquire on
 *    load). Workers call backend_table_get() at each pick and hold the
 *    pointer only until their loop turn ends; a replaced snapshot is freed
 *    by QSBR (core/qsbr.h) once every worker has passed a quiescent point.
 *
 * A reload (SIGHUP, core/reload.c) builds a new snapshot from the new lb.ini
 * and swaps it the same way. Frontends and backends keep a slot per name for
 * the life of the process: pools[] and frontends[] are indexed by slot, a
 * name the new lb.ini drops stays as a "gone" entry, so the slot numbers a
 * connection holds keep naming the same thing across reloads. Servers that
 * stay (same backend, name, address and backup flag) are the same struct
 * server in the new snapshot, so counters and health carry over; a removed
 * server is simply absent from the new pools (it takes no new connections,
 * its live ones finish) and is kept in memory until exit, because
 * connections, log lines and in-flight probes may still point at it.
 *
 * Health changes do not swap the snapshot: every algorithm skips a server
 * that server_usable() rejects, walking its table forward deterministically,
 * so a server going down or up is one atomic store and the hashing tables
 * stay as they are (keys of live servers never move). Only a change of
 * effective weight (slow_start) makes an algorithm rebuild its own table,
 * off the hot path in the thread that changed it, retired through QSBR.
 */
#ifndef LB_BACKEND_H
#define LB_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h" /* enum hash_key */
#include "acl.h"

struct lb_ops;
struct acl;
struct acl_src;
struct sni_routes;
struct config;
struct cfg_backend;
struct metrics_fe;
struct metrics_be;

enum srv_state {
    SRV_UP = 0,       /* takes new connections */
    SRV_DOWN = 1,     /* failed health checks: takes none */
    SRV_DRAIN = 2,    /* takes no new connections, live ones finish */
    SRV_MAINT = 3,    /* disabled through the admin API: takes none, not checked into use */
    SRV_CHECKING = 4, /* added by a reload: takes none until it passes `rise` checks */
};

/* What an operator asked for through the admin API (core/admin.c). */
enum srv_admin {
    SRV_ADMIN_NONE = 0,  /* health decides */
    SRV_ADMIN_DRAIN = 1, /* no new connections while it stays so */
    SRV_ADMIN_MAINT = 2, /* disabled: no new connections whatever health says */
};

/*
 * Effective weights are lb.ini weights times this, as HAProxy does, so that
 * slow_start can ramp a server of weight 1 in steps. Every algorithm uses
 * weights only as ratios (reduced by their common divisor), so the scale
 * changes no table. Whoever sets a weight at run time multiplies by it.
 */
#define SRV_WEIGHT_SCALE 16

struct server {
    /* Identity: written once at load, read-only afterwards. */
    char *name;
    char *addr_text; /* as written in lb.ini, for logs */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool backup;
    uint32_t pool_slot; /* its backend's slot in lb_table.pools[]: a server stays in one */
    /* From lb.ini; a reload that changes them stores the new values. */
    _Atomic uint32_t cfg_weight; /* weight from lb.ini (see SRV_WEIGHT_SCALE) */
    _Atomic uint32_t max_conns;  /* 0 = unlimited */
    _Atomic uint32_t send_proxy; /* enum proxy_version: a PROXY header first (off, v1, v2) */

    /* Hot state, on its own cache lines: written by workers and checker. */
    _Atomic uint32_t state __attribute__((aligned(64))); /* enum srv_state */
    _Atomic uint32_t weight;                             /* effective weight, 0 = no new conns */
    /* The weight asked for, on the same scale: lb.ini's, or the admin
     * API's once it set one. slow_start ramps <weight> up to it. */
    _Atomic uint32_t user_weight;
    _Atomic uint32_t active; /* live connections */
    /* Set by the balancer of the server's pool when it keeps an index of
     * loads (leastconn on large pools): its position there + 1, or 0 when
     * the algorithm needs no word of connections coming and going. Read by
     * server_take/server_put, beside <active>, so 0 costs them nothing. */
    _Atomic uint32_t lb_index;
    _Atomic uint64_t conns_total;
    _Atomic uint64_t connect_fail;
    _Atomic uint64_t bytes_in;  /* client -> server */
    _Atomic uint64_t bytes_out; /* server -> client */
    /* Passive health: consecutive connects from traffic that failed. Workers
     * add, a successful connect or probe resets, the checker reads. */
    _Atomic uint32_t fails;
    /* Bumped by the checker when the server goes down with on_down_close:
     * workers close established connections picked under an older value. */
    _Atomic uint32_t down_gen;
    /* <state> is derived from these two (see server_set_admin): what the
     * admin API asked for (enum srv_admin) and the last health verdict
     * (SRV_UP or SRV_DOWN), so an operator's disable survives probes. */
    _Atomic uint32_t admin;
    _Atomic uint32_t health;        /* SRV_UP, SRV_DOWN or SRV_CHECKING */
    _Atomic uint64_t state_changes; /* of <state>, for /metrics */
    /* Written by the checker after each probe, read by the admin thread. */
    _Atomic uint64_t checks;      /* probes that finished */
    _Atomic uint64_t check_fails; /* of them, failed */
    _Atomic uint32_t check_us;    /* how long the last one took */
    /* Under the state lock (see server_set_admin), read with server_view():
     * when <state> last changed (monotonic ms), the time spent down before
     * that, and the last check's verdict: a status as HAProxy names them
     * (L4OK, L4CON, L4TOUT, L7OK, L7TOUT, L7RSP, L7STS) and its reason. */
    uint64_t state_since;
    uint64_t down_ms;
    char check_status[8];
    char check_reason[96];
    /* Owned by the admin thread: the connection rate shown by /stats. */
    uint64_t rate_total; /* conns_total at the last sample */
    double rate;         /* new connections per second since the one before */
    bool rate_sampled;   /* rate_total is set */
};

/*
 * A pool is one [backend] section as the workers see it: the servers, the
 * algorithm and its private tables, and the per-backend connection settings.
 */
struct pool {
    char *name;
    bool gone;                /* dropped by a reload: no servers, picks nothing */
    struct metrics_be *stats; /* counters of the backend, kept across reloads */
    const struct lb_ops *ops;
    void *lb; /* algorithm state, built by ops->init off the hot path */
    struct server **servers;
    uint32_t nservers;
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t retries;
    enum hash_key hash_key;
    uint32_t fall; /* failed connects that mark a server down; 0 = health none */
    /* Some server sends a PROXY header: the client's first bytes then wait
     * for the connect (core/conn.c) instead of splicing at once. */
    bool send_proxy_any;
};

/* frontend.pool of a frontend without a default backend (sni rules only). */
#define FRONTEND_NO_POOL UINT32_MAX

/* A [frontend] section as the workers see it. */
struct frontend {
    char *name;
    bool gone;     /* dropped by a reload: its listeners are closing */
    uint32_t pool; /* slot of its backend in pools[] */
    char **binds;  /* addresses as written, for the admin API */
    uint32_t nbinds;
    struct metrics_fe *stats; /* counters of the frontend, kept across reloads */
    /* Source rules (allow =, deny =): NULL when there are none. Read-only
     * and shared by reference between snapshots (acl_ref), so a reload
     * swaps them with the snapshot and a retired snapshot drops its hold. */
    struct acl *acl;
    /* Connections per source, with max_conns_per_source or
     * rate_per_source; NULL when both are 0. The table belongs to the
     * frontend's slot and lives as long as the process: a connection gives
     * its count back to the table it took it from, whatever reloads
     * happened since. */
    struct acl_src *src;
    struct acl_src_limits src_limits; /* max_conns_per_source, rate_per_source */
    uint32_t source_prefix_v6;
    /* What a connection reads before it picks a backend (core/conn.c's
     * preamble): a PROXY header (accept_proxy, enum proxy_version, only
     * from <proxy_trusted> sources when not NULL), then a TLS ClientHello
     * routed by <sni> (NULL: no rules). Shared by reference like <acl>. */
    struct sni_routes *sni;
    uint32_t sni_timeout_ms;
    uint8_t accept_proxy;
    uint32_t proxy_timeout_ms;
    struct acl *proxy_trusted;
};

struct lb_table {
    struct pool *pools; /* indexed by backend slot */
    uint32_t npools;
    struct frontend *frontends; /* indexed by frontend slot */
    uint32_t nfrontends;
    uint64_t generation; /* 1 at start, +1 per reload */
};

/* The name of <fe>'s default backend, "-" when it has none. */
static inline const char *frontend_backend_name(const struct lb_table *t, const struct frontend *fe)
{
    return fe->pool == FRONTEND_NO_POOL ? "-" : t->pools[fe->pool].name;
}

/* True when <s> may take a new connection right now (state, weight, max_conns). */
static inline bool server_usable(const struct server *s)
{
    uint32_t mc = atomic_load_explicit(&s->max_conns, memory_order_relaxed);

    return atomic_load_explicit(&s->state, memory_order_relaxed) == SRV_UP &&
           atomic_load_explicit(&s->weight, memory_order_relaxed) > 0 &&
           (mc == 0 || atomic_load_explicit(&s->active, memory_order_relaxed) < mc);
}

/*
 * Tells the algorithm of <s>'s pool in the current snapshot that <s>'s
 * active count changed (ops->active_changed). Worker threads, from
 * server_take/server_put, only when <s>->lb_index says the algorithm
 * asked; the snapshot is the caller's until its next quiescent point.
 * Weak: a program without snapshots (balancer unit tests, lbbench) links
 * no backend.c, and there take/put tell nobody.
 */
void server_active_changed(struct server *s) __attribute__((weak));

/*
 * Reserves one connection slot on <s>, honouring max_conns exactly even when
 * several workers race for the last slot. Returns false when the server is
 * full; the caller then picks again with <s> as the server to avoid.
 */
static inline bool server_take(struct server *s)
{
    uint32_t cur = atomic_load_explicit(&s->active, memory_order_relaxed);
    uint32_t mc = atomic_load_explicit(&s->max_conns, memory_order_relaxed);

    do {
        if (mc && cur >= mc)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&s->active, &cur, cur + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&s->conns_total, 1, memory_order_relaxed);
    if (atomic_load_explicit(&s->lb_index, memory_order_relaxed) && server_active_changed)
        server_active_changed(s);
    return true;
}

static inline void server_put(struct server *s)
{
    atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
    if (atomic_load_explicit(&s->lb_index, memory_order_relaxed) && server_active_changed)
        server_active_changed(s);
}

/*
 * Builds the servers and the first snapshot from a validated config and
 * publishes it. Called once by the main thread before workers start.
 * Returns 0 or -errno.
 */
int backend_table_init(const struct config *cfg);

/* What backend_table_reload() changed, for its log line. */
struct backend_diff {
    uint32_t added, removed, kept, changed; /* servers; changed: weight or max_conns */
};

/*
 * Builds a snapshot of <cfg> that reuses the servers that stay, publishes
 * it and retires the old one through QSBR (main thread, workers running).
 * Added servers start SRV_CHECKING in backends with health checks, else
 * SRV_UP. Returns 0 or -errno; on error nothing changed.
 */
int backend_table_reload(const struct config *cfg, struct backend_diff *diff);

/*
 * The slot of the frontend called <name>, given one if the process never
 * saw that name (main thread; a reload asks before building the table).
 * Returns the slot or -ENOMEM.
 */
int backend_frontend_slot(const char *name);

/*
 * Sources with live connections that one frontend's per-source table
 * tracks. Past it (about three quarters of it, per stripe) new sources are
 * served without being counted: see metrics_fe.src_untracked.
 */
#define FRONTEND_SRC_CAPACITY 65536

/* Frees the current snapshot and all servers. Workers must have stopped. */
void backend_table_destroy(void);

/* The current snapshot (acquire). Valid until the caller's next quiescent point. */
const struct lb_table *backend_table_get(void);

/*
 * Changes a server's state and tells the algorithm of the pool in slot
 * <pool> of the current snapshot (STYLE point 4). Taking a slot, not a
 * pool, lets these look the pool up under their lock, so a reload that
 * swaps the snapshot between a caller's lookup and the call cannot make
 * the change reach a retired pool only. Called by the health checker
 * (<st> is its verdict, SRV_UP or SRV_DOWN; see server_set_admin for how it
 * combines with the admin API), never by a worker: the algorithm's
 * server_state hook may rebuild and retire a table. The caller must be a
 * registered QSBR reader.
 */
void server_set_state(uint32_t pool, struct server *s, enum srv_state st);

/* Sets a server's effective weight (slow_start) and tells the algorithm,
 * which rebuilds its table if it depends on weights. Same caller rules. */
void server_set_weight(uint32_t pool, struct server *s, uint32_t weight);

/*
 * The admin API's weight: sets both <s>'s user weight and its effective
 * weight. A slow start under way goes on towards the new user weight.
 */
void server_set_user_weight(uint32_t pool, struct server *s, uint32_t weight);

/*
 * Records what the admin API asked for <s> and publishes the resulting
 * state: MAINT when disabled, else DOWN or CHECKING when health says so,
 * else DRAIN when drained, else UP. server_set_state() records the health verdict the
 * same way, so neither overrides the other. server_set_state, _weight and
 * _admin are serialized by one mutex, so the checker and the admin thread
 * may both call them; workers never do.
 */
void server_set_admin(uint32_t pool, struct server *s, enum srv_admin a);

/* Records the verdict of the last health check of <s>. Checker thread. */
void server_note_check(struct server *s, const char *status, const char *reason);

/* What /stats and /api/backends say about a server's history, as of now. */
struct server_view {
    uint64_t state_ms;    /* time in the current state */
    uint64_t down_ms;     /* total time in state down, the current spell included */
    char check_status[8]; /* "" before the first check */
    char check_reason[96];
};
void server_view(const struct server *s, struct server_view *v);

/*
 * Passive health, called by a worker when a connect to <s> failed. Returns
 * true exactly once per run of failures, when they reach pool->fall: the
 * caller then wakes the checker, which marks the server down.
 */
static inline bool server_note_fail(const struct pool *pool, struct server *s)
{
    if (!pool->fall)
        return false;
    return atomic_fetch_add_explicit(&s->fails, 1, memory_order_relaxed) + 1 == pool->fall;
}

/* A connect to <s> succeeded: its run of failures is over. Reads first, so
 * the common case writes nothing to the shared cache line. */
static inline void server_note_ok(struct server *s)
{
    if (atomic_load_explicit(&s->fails, memory_order_relaxed))
        atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
}

#endif
