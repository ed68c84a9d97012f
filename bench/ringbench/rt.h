/*
 * rt.h - ringbench's worker runtime: one thread, one event loop (core/loop.h)
 * and one nanosecond timer heap per worker, and the main thread that drives
 * the phases of a run (warm-up, measure, stop) and the progress line.
 *
 * A role (serve, latency, connrate, throughput) fills struct rb_role; its
 * callbacks run on the worker thread that owns the loop, never elsewhere,
 * so a role's per-worker state needs no lock. The only cross-thread data
 * are the phase (written by the main thread, read once per loop turn), the
 * wake-up eventfds and the relaxed progress counters.
 */
#ifndef RB_RT_H
#define RB_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../core/loop.h"
#include "../../core/timer.h"
#include "args.h"

enum rb_phase { RB_PH_WARMUP = 0, RB_PH_MEASURE, RB_PH_STOP };

struct rb_worker;

struct rb_role {
    /* On the worker thread, once its loop exists. Returns 0 or -errno. */
    int (*start)(struct rb_worker *w);
    /* The worker saw the phase change to <ph>. */
    void (*phase)(struct rb_worker *w, enum rb_phase ph);
    /* After every loop turn, outside any callback: the one safe place to
     * free connections whose operations have all completed. May be NULL. */
    void (*turn)(struct rb_worker *w);
    /* After RB_PH_STOP: true once every connection is gone. */
    bool (*done)(struct rb_worker *w);
    /* Main thread, from rb_run_free(): frees w->ctx (may be NULL). */
    void (*fini)(struct rb_worker *w);
    uint32_t buf_size, buf_count; /* receive pool of each worker */
};

struct rb_worker {
    uint32_t id;
    struct rb_run *run;
    pthread_t th;
    struct loop *loop;
    int wake_fd;
    /* Nanosecond timers: a heap of CLOCK_MONOTONIC deadlines and a timerfd,
     * watched with a poll op, that is armed to the earliest one. The loop's
     * own timers tick in milliseconds, too coarse for a send schedule. */
    struct timer_heap ft;
    int tfd;
    struct loop_op tfd_op;
    uint64_t tfd_armed;
    enum rb_phase seen;
    bool timed_out; /* did not finish within the stop grace */
    int err;        /* start-up failure */
    void *ctx;      /* the role's per-worker state, set by start(); the main
                       thread reads and frees it after rb_run_join() */
    /* Progress, read by the main thread for the progress line. */
    _Atomic uint64_t p_count, p_bytes, p_errors;
};

struct rb_run {
    const struct rb_opts *o;
    const struct rb_role *role;
    uint32_t nworkers; /* fixed before any worker starts: roles read it */
    uint32_t nthreads; /* worker threads created (main thread only) */
    struct rb_worker *w;
    _Atomic int phase;
    _Atomic uint32_t started;
    uint64_t t_start, t_measure, t_stop; /* ns, set by the main thread */
    bool interrupted;                    /* SIGINT/SIGTERM ended it early */
    const char *unit;                    /* progress line: "req/s", "conn/s", "Gbit/s" */
    void *arg;                           /* the role's shared, read-only set-up */
};

/*
 * The part every role's connection starts with: list links, the socket, up
 * to four ops and one nanosecond timer. A connection is closed once, by
 * rb_conn_close(), and freed by rb_conns_reap() (from the role's turn hook)
 * only when none of its ops is in flight any more, so a completion never
 * lands in freed memory.
 */
#define RB_CONN_OPS 4
struct rb_conn {
    struct rb_conn *prev, *next;
    int fd;
    bool closing;
    struct loop_op *ops[RB_CONN_OPS]; /* the ops to cancel on close */
    struct timer t;
};

struct rb_conns {
    struct rb_conn live; /* list head */
    struct rb_conn *zombies;
    uint32_t nlive;
    void (*free_fn)(struct rb_conn *c);
};

void rb_conns_init(struct rb_conns *l, void (*free_fn)(struct rb_conn *c));
void rb_conns_add(struct rb_conns *l, struct rb_conn *c);
/* Cancels every op of <c>, disarms its timer, closes its socket. */
void rb_conn_close(struct rb_worker *w, struct rb_conns *l, struct rb_conn *c);
void rb_conns_close_all(struct rb_worker *w, struct rb_conns *l);
/* Frees closed connections none of whose ops is still in flight. */
void rb_conns_reap(struct rb_conns *l);
/* Frees every connection, live or closed, ops in flight or not: only for
 * after the worker's loop is destroyed (a worker that timed out). */
void rb_conns_drop(struct rb_conns *l);
/* No live and no closed-but-unfreed connection left. */
bool rb_conns_empty(const struct rb_conns *l);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rb_now_ns(void);

/* Blocks SIGINT/SIGTERM (the main thread takes them with sigtimedwait) and
 * ignores SIGPIPE. Call before any thread starts. */
void rb_signals_init(void);

/* Arms the nanosecond timer <t> of worker <w> at <deadline_ns>. 0 or -ENOMEM. */
int rb_timer_arm(struct rb_worker *w, struct timer *t, uint64_t deadline_ns);
void rb_timer_disarm(struct rb_worker *w, struct timer *t);

/*
 * Starts <nworkers> workers running <role> and waits until all have started.
 * Returns 0, or -errno (workers already started are stopped and joined).
 */
int rb_run_start(struct rb_run *r, const struct rb_opts *o, const struct rb_role *role,
                 uint32_t nworkers, void *arg);

/*
 * Main thread: runs the warm-up and the measurement for the durations in
 * <o>, printing a progress line on a terminal, then stops the workers.
 * Returns early (interrupted = true) on SIGINT/SIGTERM.
 */
void rb_run_timed(struct rb_run *r);

/* Main thread (serve): waits for SIGINT/SIGTERM. */
void rb_run_until_signal(struct rb_run *r);

/* Main thread: asks the workers to stop and joins them. Their loops are
 * gone; w[i].ctx is left for the caller to read and free. */
void rb_run_join(struct rb_run *r);
/* Frees every worker's ctx (the role's fini) and the workers array. */
void rb_run_free(struct rb_run *r);

/* How many workers to use: --workers, else min(<want>, online CPUs). */
uint32_t rb_workers_for(const struct rb_opts *o, uint32_t want);

#endif
