/*
 * runtime.h - the settings and shared state of the running process.
 *
 * One instance, lb_rt, read by every thread. <cfg> and <backend> are the
 * main thread's (others read <backend> only, which never changes after
 * start-up); the settings a reload may change are atomics that workers
 * read when they use them, so no worker ever holds a pointer into a config
 * that a reload frees.
 */
#ifndef LB_RUNTIME_H
#define LB_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

struct config;

struct lb_runtime {
    const struct config *cfg; /* main thread only */
    enum loop_backend backend;
    _Atomic uint32_t forward; /* enum fwd_mode, for new connections */
    _Atomic uint32_t max_conns;
    _Atomic uint32_t shutdown_grace_ms;
    _Atomic bool log_connections;
    _Atomic uint32_t active; /* proxied connections, all workers */
    /* Bumped by the health checker when a server with on_down_close goes
     * down: each worker then closes its connections to such servers. */
    _Atomic uint32_t close_gen;
    /* Reloads (SIGHUP), for /metrics. */
    _Atomic uint64_t reloads, reload_failures;
    _Atomic bool reload_ok;
    /* Set by main once SIGTERM/SIGINT arrived or a hot upgrade took the
     * listeners over, before the listeners stop accepting: /healthz then
     * answers 503 "draining" for the rest of the shutdown grace, so that
     * keepalived, cloud balancers and Kubernetes probes move traffic away. */
    _Atomic bool draining;
};

extern struct lb_runtime lb_rt;

#endif
