/*
 * health_int.h - what health.c, probe.c and hook.c share (module internals,
 * hc__ prefix). Everything here runs on the checker thread only.
 */
#ifndef LB_HEALTH_INT_H
#define LB_HEALTH_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h"
#include "../core/loop.h"
#include "../core/timer.h"
#include "health.h"
#include "redis.h"

/* Bytes of a reply kept for matching: a status line or an expect string. */
#define HC_RESP_MAX 512

/* HC_QUIT: a database check has its verdict and said goodbye (Terminate,
 * COM_QUIT); it waits for the server to close first, so that the server
 * logs no client lost mid-session. */
enum hc_phase { HC_IDLE = 0, HC_CONNECT, HC_IO, HC_QUIT };

struct hc;
/* The conversation of a database check (pgsql, mysql; probe.c). */
struct hc_db;

/* One probed server. */
struct hc_srv {
    struct hc *hc;
    struct server *s;
    const struct cfg_backend *cb;
    uint32_t pool_idx;
    struct hc_fsm fsm;
    int fd;        /* probe socket, -1 between probes */
    uint8_t phase; /* enum hc_phase */
    /* The phase the last probe ended in: a verdict in HC_CONNECT is about
     * layer 4 (L4CON, L4TOUT), in HC_IO about the protocol (L7...). */
    uint8_t ended_in;
    struct loop_op conn_op, tx, rx;
    struct timer timer; /* next probe (idle) or probe deadline (running) */
    struct timer ramp;  /* slow_start steps */
    uint64_t up_at;     /* when slow_start began */
    char *req;          /* what a probe sends: HTTP request, health_send, Redis commands */
    uint32_t req_len;
    /* Where probes go: the server's address, with health_port if set. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t resp_len;
    uint64_t started_ns;      /* CLOCK_MONOTONIC at the probe's start, for its duration */
    struct hc_srv *next;      /* on the list of retired servers (reload) */
    char resp[HC_RESP_MAX];   /* http, send_expect: the reply so far */
    struct redis_parse redis; /* redis: the replies, parsed as they come */
    struct hc_db *db;         /* pgsql, mysql: allocated by hc__probe_init(); else NULL */
};

/* The servers to check after a reload (health.c). */
struct hc_update;

struct hc_hook;

struct hc {
    struct loop *loop;
    int wake_fd;
    pthread_t thread;
    sem_t ready;
    int start_err;
    /* Servers still waiting for their first verdict at start-up; the
     * last one posts <first_round> (hc_wait_first_round). */
    uint32_t first_left;
    sem_t first_round;
    _Atomic bool stop;
    struct hc_srv **srvs;
    uint32_t nsrvs;
    struct hc_srv *retired; /* no longer checked, freed once their ops are back */
    /* Set by main during a reload; installed at the next loop turn, which
     * then posts <reloaded>. */
    _Atomic(struct hc_update *) update;
    sem_t reloaded;
    _Atomic bool exited; /* the thread has ended (its loop failed, or stop) */
    uint64_t rng;
    int qsbr_slot;
    bool retire_pending;   /* a weight change retired a balancer table */
    struct hc_hook *hooks; /* running on_down/on_up commands */
    uint32_t nhooks;
    struct timer hook_timer; /* reaps hooks while any runs */
};

/* Notes the start of a probe of <h>, for the duration hc__result() records. */
void hc__probe_started(struct hc_srv *h);

/* Starts a probe of <h> (probe.c); its result goes to hc__result(). */
void hc__probe_start(struct hc_srv *h);
/* Ends a running probe of <h> without a result (shutdown). */
void hc__probe_abort(struct hc_srv *h);
/* True while an operation of <h> awaits its final completion. */
bool hc__probe_busy(const struct hc_srv *h);
/* Builds h->req from the backend settings. Returns 0 or -ENOMEM. */
int hc__probe_init(struct hc_srv *h);

/* <t> rounded up to the checker's timer grain (health.c), so that timers of
 * many servers fire in one wake-up. */
uint64_t hc__tick(uint64_t t);

/* A probe of <h> ended (health.c): <ok>, and why, for the logs. */
void hc__result(struct hc_srv *h, bool ok, const char *why);

/*
 * Runs <cmd> for <event> ("on_down"/"on_up") of <h> without waiting for it
 * (hook.c): output and exit status are logged when it ends.
 */
void hc__hook_run(struct hc *hc, const struct cfg_command *cmd, const char *event,
                  const struct hc_srv *h);
/* Forgets the running hooks (shutdown): they finish on their own. */
void hc__hooks_fini(struct hc *hc);

#endif
