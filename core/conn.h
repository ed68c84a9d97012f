/*
 * conn.h - proxied connections and the forwarding state machine.
 *
 * A connection is a client socket, a backend socket and two directions
 * (halves) that move bytes independently: client -> backend and backend ->
 * client. All of it runs on the worker that accepted the client.
 */
#ifndef LB_CONN_H
#define LB_CONN_H

#include <stdint.h>

struct worker;

/*
 * Takes ownership of the client socket <fd> accepted for the frontend in
 * slot <frontend> of the backend table: picks
 * a server, connects, and starts forwarding. On failure the client is
 * closed. The caller has already counted the connection in lb_rt.active.
 */
void conn_accept(struct worker *w, int fd, uint32_t frontend);

/*
 * Closes the established connections of <w> whose server went down with
 * on_down_close since they were made (see server.down_gen). Worker thread.
 */
void conn_close_downed(struct worker *w);

/* Closes every live connection of <w> at once (shutdown grace expired). */
void conn_abort_all(struct worker *w);

/* Recycles closed connections that no operation references any more; the
 * worker calls it once per loop turn. */
void conn_reap(struct worker *w);

/* Frees the worker's cache of unused connection objects. */
void conn_free_cache(struct worker *w);

#endif
