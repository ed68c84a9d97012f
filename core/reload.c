/*
 * reload.c - applies a new lb.ini to the running process (see reload.h
 * for the order of the steps and core/backend.h for what stays the same
 * across a reload: slots, servers, counters).
 */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "../config/config.h"
#include "../health/health.h"
#include "admin.h"
#include "backend.h"
#include "fault.h"
#include "log.h"
#include "net.h"
#include "sdnotify.h"
#include "runtime.h"
#include "worker.h"

/* The <changed> of config_keep_restart_only(): which keys those are is
 * marked in config.c's key table, so none is listed here. */
static void restart_only(const char *key, void *arg)
{
    (void)arg;
    log_warn("reload: %s changed; it takes effect only after a restart (keeping the running value)",
             key);
}

/* Publishes the settings a connection reads when it starts. */
static void settings_apply(const struct config *cfg)
{
    log_set_level(cfg->global.log_level);
    atomic_store_explicit(&lb_rt.max_conns, net_max_conns(cfg->global.max_conns),
                          memory_order_relaxed);
    atomic_store_explicit(&lb_rt.forward, cfg->global.forward, memory_order_relaxed);
    atomic_store_explicit(&lb_rt.shutdown_grace_ms, cfg->global.shutdown_grace_ms,
                          memory_order_relaxed);
    atomic_store_explicit(&lb_rt.log_connections, cfg->global.log_connections,
                          memory_order_relaxed);
    admin_set_access(cfg);
}

static int reject(struct config *cfg, const char *why)
{
    config_free(cfg);
    atomic_fetch_add_explicit(&lb_rt.reload_failures, 1, memory_order_relaxed);
    atomic_store_explicit(&lb_rt.reload_ok, false, memory_order_relaxed);
    log_error("reload rejected: %s; the running configuration stays", why);
    sdnotify_send("READY=1\nSTATUS=serving (last reload rejected, see the log)");
    return -1;
}

int reload_config(const char *path, struct worker *ws, uint32_t n)
{
    const struct config *old = lb_rt.cfg;
    struct listen_plan *plan;
    struct backend_diff d;
    struct config *cfg = NULL;
    char err[512];
    int ret;

    atomic_fetch_add_explicit(&lb_rt.reloads, 1, memory_order_relaxed);
    sdnotify_send("RELOADING=1");
    log_info("SIGHUP: reloading %s", path);
    if (config_load_file(path, &cfg, err, sizeof(err)) != 0)
        return reject(NULL, err);
    if (config_keep_restart_only(old, cfg, restart_only, NULL) < 0)
        return reject(cfg, "out of memory");
    /* Binds first: a port in use or a path that cannot be created is the
     * likeliest failure, and it must leave everything as it was. */
    if (workers_plan(ws, n, cfg, &plan) < 0)
        return reject(cfg, "cannot listen on a new bind");
    ret = backend_table_reload(cfg, &d);
    if (ret < 0) {
        workers_plan_abort(plan, n);
        snprintf(err, sizeof(err), "cannot build the backend table: %s", strerror(-ret));
        return reject(cfg, err);
    }
    workers_plan_apply(plan, ws, n);
    /* Faults follow their scope: one whose frontend or server left the
     * config goes with it. */
    fault_prune();
    /* A checker that cannot take the new servers leaves them unchecked in
     * their current state; the reload itself has happened. */
    (void)hc_reload(cfg);
    settings_apply(cfg);
    lb_rt.cfg = cfg;
    config_free((struct config *)old);
    atomic_store_explicit(&lb_rt.reload_ok, true, memory_order_relaxed);
    log_info("reload: %s is in use (generation %llu): %u server(s) kept (%u with a new weight or "
             "max_conns), %u added, %u removed; %zu frontend(s), %zu backend(s)",
             path, (unsigned long long)backend_table_get()->generation, d.kept, d.changed, d.added,
             d.removed, cfg->nfrontends, cfg->nbackends);
    sdnotify_send("READY=1\nSTATUS=serving");
    return 0;
}
