/*
 * fault.h - chaos engineering: faults injected on purpose, scoped to one
 * frontend or one server, with Toxiproxy's types and attribute names
 * (fault_shape.h has the types and their arithmetic).
 *
 * The admin thread adds and removes faults (POST/DELETE /api/faults) and
 * expires them (every fault has a ttl); the main thread prunes those whose
 * scope a reload removed. Writers serialize on a mutex and publish an
 * immutable list; workers and the checker read it without a lock, as they
 * read the backend table, and an old list is freed through QSBR.
 *
 * A worker considers the list once per new connection (accept, connect,
 * established). Each fault applies to a fraction <toxicity> of the
 * connections it could apply to, drawn from the fault's own seeded
 * sequence, so a rerun with the same seed and the same order of
 * connections hits the same ones. A connection that takes a fault holds a
 * reference to it, and lets go when the fault is removed or expires
 * (fault_gone) or the connection ends.
 *
 * With [global] chaos = off (the default) the list stays empty for the
 * life of the process: the data path pays one relaxed load of a NULL
 * pointer per connection.
 */
#ifndef LB_FAULT_H
#define LB_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault_shape.h"

struct metrics_buf;

#define FAULT_NAME_MAX       63
#define FAULT_SCOPE_MAX      63
#define FAULT_MAX            64                       /* active at once */
#define FAULT_TTL_DEFAULT_MS (10u * 60 * 1000)        /* a forgotten fault ends */
#define FAULT_TTL_MAX_MS     (24ull * 60 * 60 * 1000) /* ttl over a day is refused */

enum fault_stream { FS_UPSTREAM = 0, FS_DOWNSTREAM };

/* A fault as a POST body describes it, validated (fault_json.c). */
struct fault_spec {
    char name[FAULT_NAME_MAX + 1];
    enum fault_type type;
    enum fault_stream stream;
    double toxicity; /* 0..1 */
    uint64_t seed;
    struct fault_params p;
    /* Health probes of the server see the fault too (server scope, types
     * refuse, timeout and reset_peer): the server is marked down as a
     * dead one would be. */
    bool probes;
    /* Scope: a frontend, or a server of a backend (exactly one). */
    char frontend[FAULT_SCOPE_MAX + 1];
    char backend[FAULT_SCOPE_MAX + 1];
    char server[FAULT_SCOPE_MAX + 1];
    uint64_t ttl_ms;
};

struct fault {
    struct fault_spec spec;
    uint64_t threshold;        /* toxicity as a fraction of 2^64; UINT64_MAX: every one */
    uint64_t expires;          /* monotonic ms */
    _Atomic uint64_t draws;    /* connections it was drawn for */
    _Atomic uint64_t affected; /* connections (or probes) it applied to */
    _Atomic uint32_t refs;     /* lists that hold it + connections that took it */
    _Atomic bool removed;      /* deleted or expired: holders let go */
};

struct fault_list {
    uint32_t n;
    struct fault *f[];
};

/* NULL while no fault is active (always, with chaos = off). */
extern _Atomic(struct fault_list *) fault_current;

/* ---- workers (inside a QSBR read-side turn) ---- */

/* Whether any fault is active: the one check the data path pays. */
static inline bool fault_any(void)
{
    return atomic_load_explicit(&fault_current, memory_order_relaxed) != NULL;
}

/*
 * The first active fault that applies to a connection of frontend <fe>
 * now, drawn against its toxicity, with a reference taken (fault_put).
 * <srv_backend>/<srv_name> (both or neither) add the faults scoped to that
 * server. <connect> selects the types that act on a connect attempt
 * (refuse, connect_delay), else the shaping types of direction <stream>.
 * NULL when none.
 */
struct fault *fault_take(const char *fe, const char *srv_backend, const char *srv_name,
                         bool connect, enum fault_stream stream, uint64_t now);
void fault_put(struct fault *f);
/* Whether a connection holding <f> should let go of it. */
static inline bool fault_gone(const struct fault *f, uint64_t now)
{
    return atomic_load_explicit(&f->removed, memory_order_relaxed) || now >= f->expires;
}

/* ---- the checker ---- */

/*
 * Whether a probe of server <name> of backend <backend> fails because of
 * a fault with probes on; writes why into <why>. Checker thread.
 */
bool fault_probe_fails(const char *backend, const char *name, uint64_t now, char *why,
                       size_t whylen);

/* ---- the admin thread and the main thread ---- */

/* chaos = on: faults may be added. Main thread, at start-up. */
void fault_enable(bool on);
bool fault_enabled(void);

/*
 * Adds the fault <s> (already validated by fault_spec_parse) at <now>.
 * Returns 0, or -EEXIST (its name is taken), -ENOENT (its scope names no
 * frontend or server of the running config), -ENOSPC (FAULT_MAX active),
 * -ENOMEM, with a one-line reason in <err>.
 */
int fault_add(const struct fault_spec *s, uint64_t now, char *err, size_t errlen);
/* Removes the fault <name>; -ENOENT when there is none. */
int fault_remove(const char *name);
/* Removes every fault; returns how many there were. */
unsigned fault_remove_all(void);
/* Removes the faults whose ttl ran out by <now>, logging each. */
void fault_expire(uint64_t now);
/* After a reload: removes the faults whose scope is gone, logging each. */
void fault_prune(void);
/* Removes everything at exit, once no reader runs. */
void fault_fini(void);

/* {"faults":[...]} for GET /api/faults. */
void fault_render_json(struct metrics_buf *b, uint64_t now);
/* ringlb_faults_active and ringlb_fault_connections_affected_total. */
void fault_render_prom(struct metrics_buf *b);
/* The /stats banner while any fault is active (HTML), nothing otherwise. */
void fault_render_banner(struct metrics_buf *b);

/* ---- bodies (fault_json.c) ---- */

/*
 * Parses and validates a POST /api/faults body (JSON, see README "Chaos")
 * into <out>. Returns 0, or -1 with a one-line reason in <err>. Bounded
 * and total: any bytes give one or the other.
 */
int fault_spec_parse(const char *body, size_t len, struct fault_spec *out, char *err,
                     size_t errlen);

const char *fault_type_name(enum fault_type t);
const char *fault_stream_name(enum fault_stream s);

#endif
