/*
 * conn.h - proxied connections and the forwarding state machine.
 *
 * A connection is a client socket, a backend socket and two directions
 * (halves) that move bytes independently: client -> backend and backend ->
 * client. A worker owns one struct conn_set, and with it every connection
 * it accepted, from accept to close; the set's lists and caches belong to
 * conn.c alone. The worker calls in; conn.c calls back only through the
 * set's <closed> hook.
 */
#ifndef LB_CONN_H
#define LB_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct conn;

struct pipe_pair {
    int rd, wr;
};

struct conn_set {
    struct loop *loop;
    uint32_t id; /* the owning worker's, for logs */
    /* Called after each connection of the set closes (its slot of
     * lb_rt.active is the caller's to give back). */
    void (*closed)(struct conn_set *set);
    /* Every connection is on exactly one of these, through its <next>:
     * live (doubly linked with <prev>), closing (closed, waiting for its
     * last completions), free (a cache of unused objects). */
    struct conn *live, *closing, *free;
    uint32_t nlive, nfree;
    struct pipe_pair *pipes; /* idle, empty pipes kept for splice */
    uint32_t npipes;
    uint64_t rng;             /* for balancers that pick at random */
    _Atomic uint64_t starved; /* receives that found the buffer pool empty */
};

/* Prepares <set> for connections on <loop>. Returns 0 or -ENOMEM. */
int conn_set_init(struct conn_set *set, struct loop *loop, uint32_t id, uint64_t seed,
                  void (*closed)(struct conn_set *set));
/* Frees the cached connections and pipes; every connection must be gone. */
void conn_set_fini(struct conn_set *set);

/* Whether the set has no connection, live or still closing. */
static inline bool conn_set_empty(const struct conn_set *set)
{
    return !set->live && !set->closing;
}

/*
 * Takes ownership of the client socket <fd> accepted for the frontend in
 * slot <frontend> of the backend table: picks a server, connects, and
 * starts forwarding. On failure the client is closed. The caller has
 * already counted the connection in lb_rt.active.
 */
void conn_accept(struct conn_set *set, int fd, uint32_t frontend);

/*
 * Closes the established connections of <set> whose server went down with
 * on_down_close since they were made (see server.down_gen). Worker thread.
 */
void conn_close_downed(struct conn_set *set);

/* Closes every live connection of <set> at once (shutdown grace expired). */
void conn_abort_all(struct conn_set *set);

/* Recycles closed connections that no operation references any more; the
 * worker calls it once per loop turn. */
void conn_reap(struct conn_set *set);

#endif
