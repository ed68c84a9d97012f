/*
 * worker.h - per-core worker threads.
 *
 * A worker owns one event loop, one listening socket per bind (SO_REUSEPORT
 * siblings of the other workers' sockets), and every connection it accepts,
 * from accept to close. Workers share only the backend table (read through
 * its snapshot pointer), the per-server atomics and the global connection
 * count that enforces max_conns.
 */
#ifndef LB_WORKER_H
#define LB_WORKER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../config/config.h"
#include "loop.h"
#include "timer.h"

struct worker;
struct conn;

/* Settings and shared state of the running process; read-only once the
 * workers run, except the atomics. */
struct lb_runtime {
    const struct config *cfg;
    enum loop_backend backend;
    enum fwd_mode forward;
    uint32_t max_conns;
    _Atomic uint32_t active; /* proxied connections, all workers */
    /* Bumped by the health checker when a server with on_down_close goes
     * down: each worker then closes its connections to such servers. */
    _Atomic uint32_t close_gen;
};

extern struct lb_runtime lb_rt;

struct wlistener {
    struct worker *w;
    int fd;
    uint32_t frontend; /* index into cfg->frontends */
    bool owned;        /* closed by this worker (else shared, closed by main) */
    bool armed;        /* accept op in flight */
    struct loop_op op;
    struct timer backoff;
};

struct held_client {
    int fd;
    uint32_t listener; /* index into worker.ls */
};

struct pipe_pair {
    int rd, wr;
};

struct worker {
    uint32_t id;
    int cpu; /* -1: not pinned */
    pthread_t thread;
    bool started;
    sem_t ready; /* posted once the loop exists (or failed to) */
    int wake_fd; /* eventfd: main writes to it to wake the worker */
    struct loop *loop;
    struct wlistener *ls;
    uint32_t nls;

    struct conn *conns;   /* live connections (doubly linked) */
    struct conn *closing; /* closed, waiting for their last completions */
    struct conn *free_conns;
    uint32_t nconns;
    uint32_t nfree_conns;

    /* Accepted while max_conns was reached: served when a slot frees up. */
    struct held_client *held;
    uint32_t nheld, held_cap;
    bool accept_paused;

    struct pipe_pair *pipes; /* idle pipes kept for splice */
    uint32_t npipes;

    _Atomic bool stop; /* set by main on SIGTERM/SIGINT */
    _Atomic bool done; /* set by the worker when its thread ends */
    bool stopping;
    uint64_t stop_deadline;
    struct timer tick;
    uint64_t rng;
    int qsbr_slot;
    int exit_code;
    uint32_t close_gen; /* lb_rt.close_gen last acted on */

    _Atomic uint64_t accepted;
    _Atomic uint64_t loops;
    _Atomic uint32_t nconns_pub; /* nconns as of the last loop turn, for /metrics */
};

/*
 * Creates <n> workers and their listening sockets for <cfg> (main thread,
 * before any worker runs, so that a bind error stops start-up). Returns 0 or
 * -errno with the reason logged.
 */
int workers_create(const struct config *cfg, uint32_t n, struct worker **out);
/* Starts the threads. Returns 0 or -errno (threads already started keep going). */
int workers_start(struct worker *ws, uint32_t n);
/* Asks every worker to stop accepting and drain its connections. */
void workers_stop(struct worker *ws, uint32_t n);
/* Joins and frees the workers; returns non-zero if one failed. */
int workers_join(struct worker *ws, uint32_t n);

/* Called by conn.c when a connection of <w> has closed. */
void worker__conn_closed(struct worker *w);

/* Pipes for splice, recycled per worker. Returns 0 or -errno. */
int worker__pipe_get(struct worker *w, struct pipe_pair *p);
/* Returns a pipe; <empty> false means it may hold bytes and is closed. */
void worker__pipe_put(struct worker *w, struct pipe_pair *p, bool empty);

#endif
