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
#include "accept_fsm.h"
#include "conn.h"
#include "loop.h"
#include "net.h"
#include "runtime.h"
#include "timer.h"

struct worker;

/*
 * One listening socket of one worker. Its identity is the address it is
 * bound to: a reload keeps the listener (and the clients in its backlog) of
 * every address the new lb.ini still binds, even if another frontend now
 * owns it, opens the new ones and closes the rest.
 */
struct wlistener {
    struct worker *w;
    int fd;
    uint32_t frontend; /* frontend slot (core/backend.h); set by its worker */
    bool owned;        /* closed by this worker (else shared, closed by main) */
    bool adopted;      /* handed over by the process a hot upgrade replaced */
    struct accept_fsm acc;
    struct cfg_addr addr;
    struct loop_op op;
    struct timer backoff;
    struct wlistener *next; /* on the worker's list of closed listeners */
};

struct held_client {
    int fd;
    uint32_t frontend; /* slot of the frontend that accepted it */
};

/* A worker's new set of listeners, handed over by a reload (worker.c). */
struct listen_update;

struct worker {
    uint32_t id;
    int cpu;          /* -1: not pinned */
    uint32_t buffers; /* receive buffers of its pool */
    pthread_t thread;
    bool started;
    sem_t ready; /* posted once the loop exists (or failed to) */
    int wake_fd; /* eventfd: main writes to it to wake the worker */
    struct loop *loop;
    struct wlistener **ls;
    uint32_t nls;
    struct wlistener *closed_ls; /* dropped by a reload, freed once idle */
    /* Set by main during a reload; the worker installs it at its next
     * loop turn and posts <updated>. */
    _Atomic(struct listen_update *) update;
    sem_t updated;

    struct conn_set cs; /* its connections (conn.c) */

    /* Accepted while max_conns was reached: served when a slot frees up.
     * Near max_conns listeners take one client per accept (accept_fsm.h),
     * so this holds at most about one client per listener. */
    struct held_client *held;
    uint32_t nheld, held_cap;
    uint8_t acc_want; /* enum accept_want, as last computed */
    uint32_t nworkers;

    _Atomic bool stop;      /* set by main on SIGTERM/SIGINT */
    _Atomic bool hand_over; /* with stop: a new process took the listeners over */
    _Atomic bool released;  /* stopping, and no accept of ours is in flight any more */
    _Atomic bool sweep;     /* set by main: accept what waits in our backlogs now */
    _Atomic bool done;      /* set by the worker when its thread ends */
    bool stopping;
    bool leaving; /* its loop has ended: only cancellations are collected */
    uint64_t stop_deadline;
    struct timer tick;
    int qsbr_slot;
    int exit_code;
    uint32_t close_gen; /* lb_rt.close_gen last acted on */

    _Atomic uint64_t accepted;
    _Atomic uint64_t loops;
    _Atomic uint64_t starved;       /* receives that found the buffer pool empty */
    _Atomic uint32_t nconns_pub;    /* nconns as of the last loop turn, for /metrics */
    _Atomic uint32_t bufs_free_pub; /* loop_buf_avail() as of the last loop turn */
};

/* The net.h flags (NET_REUSEPORT, NET_FREEBIND) of bind <j> of <fe>. */
static inline unsigned workers_bind_flags(const struct cfg_frontend *fe, size_t j)
{
    unsigned flags = fe->binds[j].ss.ss_family == AF_UNIX ? 0 : NET_REUSEPORT;

    if (fe->bind_opts[j] & CFG_BIND_FREEBIND)
        flags |= NET_FREEBIND;
    return flags;
}

/*
 * Listening sockets that a hot upgrade inherited (core/upgrade.c). <take>
 * returns the socket of member <index> of the listeners bound to <a> (the
 * <index>-th of its SO_REUSEPORT group, one per worker; 0 for the one
 * shared unix socket), which then belongs to the caller, or -1 if none.
 */
struct listen_inherit {
    int (*take)(void *arg, const struct cfg_addr *a, uint32_t index);
    void *arg;
};

/*
 * Creates <n> workers and their listening sockets for <cfg> (main thread,
 * before any worker runs, so that a bind error stops start-up), taking
 * those <inh> has (NULL: none) before opening any. A TCP bind that another
 * process listens on already is refused unless share_binds is set.
 * Returns 0 or -errno with the reason logged.
 */
int workers_create(const struct config *cfg, uint32_t n, const struct listen_inherit *inh,
                   struct worker **out);
/*
 * What a reload changes in the listeners: for every worker, the listeners
 * of <cfg>'s binds, those already open reused, the others opened here (main
 * thread) so that a bind error rejects the reload before anything changed.
 */
struct listen_plan;

/* Builds the plan, or returns -errno with the reason logged (nothing changed). */
int workers_plan(struct worker *ws, uint32_t n, const struct config *cfg, struct listen_plan **out);
/* Drops a plan that will not be applied, closing the sockets it opened. */
void workers_plan_abort(struct listen_plan *p, uint32_t n);
/* Hands every worker its new listeners and waits until each has installed
 * them (a worker closes those it no longer has); then closes shared
 * listeners that are gone. Frees the plan. */
void workers_plan_apply(struct listen_plan *p, struct worker *ws, uint32_t n);

/*
 * The descriptor of <w>'s listener bound to <a>, or -1 (main thread, which
 * is the only one that changes the listener sets: a hot upgrade hands
 * these over).
 */
int workers_listener_fd(const struct worker *w, const struct cfg_addr *a);

/* Starts the threads. Returns 0 or -errno (threads already started keep going). */
int workers_start(struct worker *ws, uint32_t n);
/* Asks every worker to stop accepting and drain its connections. */
void workers_stop(struct worker *ws, uint32_t n);
/*
 * workers_stop() for a hot upgrade whose new process holds the listening
 * sockets now: the workers stop accepting and close their descriptors,
 * but the sockets (another process holds them) and their unix paths stay,
 * and a client a cancelled accept still brings is served, not closed.
 */
void workers_hand_over(struct worker *ws, uint32_t n);

/* Whether every worker stopping after workers_hand_over() has no accept
 * in flight any more (or has ended). Main thread. */
bool workers_released(struct worker *ws, uint32_t n);

/*
 * Asks every worker to accept at once whatever waits in its listeners'
 * backlogs, without waiting for a wake-up. A hot upgrade's new process
 * does it once the old one has released the sockets: io_uring arms an
 * accept as an exclusive waiter, so a wake-up that went to the old
 * process's accept as it was being cancelled wakes nobody else, and the
 * client would wait for the next one to arrive.
 */
void workers_sweep(struct worker *ws, uint32_t n);
/* Joins the workers and closes what is left of their listeners; returns
 * non-zero if one failed. */
int workers_join(struct worker *ws, uint32_t n);
/* Frees the joined workers; the admin thread, which reports their counters,
 * must have stopped. NULL is fine. */
void workers_destroy(struct worker *ws, uint32_t n);

#endif
