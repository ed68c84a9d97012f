/*
 * backend.c - builds the servers and snapshots of the backend table and
 * publishes them, at start-up and on reload (see backend.h for the reading
 * rules).
 */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "acl.h"
#include "sni.h"
#include "alloc.h"
#include "log.h"
#include "metrics.h"
#include "qsbr.h"

static _Atomic(struct lb_table *) current;

/* Every server ever built, for destroy: servers outlive snapshots. */
static struct server **all_servers;
static size_t nall_servers, all_cap;

/*
 * One slot per frontend or backend name the process has seen, with the
 * counters that belong to the name. Main thread only; the counters are
 * reached by everyone else through the snapshots.
 */
struct slot {
    char *name;
    void *stats;
    struct acl_src *src; /* frontends with max_conns_per_source: made on first use */
};

struct slots {
    struct slot *v;
    uint32_t n, cap;
    size_t stats_size;
};

static struct slots fe_slots = {.stats_size = sizeof(struct metrics_fe)};
static struct slots be_slots = {.stats_size = sizeof(struct metrics_be)};

/*
 * Serializes every change of server state, weight and snapshot: balancer
 * hooks rebuild tables and must not run twice at once, and a reload must
 * not build a pool from weights a hook is changing.
 */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

const struct lb_table *backend_table_get(void)
{
    return atomic_load_explicit(&current, memory_order_acquire);
}

/* ---- slots ---- */

static int slot_find(const struct slots *sl, const char *name)
{
    for (uint32_t i = 0; i < sl->n; i++) {
        if (strcmp(sl->v[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int slot_get(struct slots *sl, const char *name)
{
    int i = slot_find(sl, name);
    struct slot *s;

    if (i >= 0)
        return i;
    if (sl->n == sl->cap) {
        uint32_t cap = sl->cap ? sl->cap * 2 : 8;
        struct slot *v = lb_realloc(sl->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        sl->v = v;
        sl->cap = cap;
    }
    s = &sl->v[sl->n];
    s->name = lb_strdup(name);
    s->src = NULL;
    s->stats = lb_aligned_alloc(64, sl->stats_size);
    if (!s->name || !s->stats) {
        lb_free(s->name);
        lb_free(s->stats);
        return -ENOMEM;
    }
    memset(s->stats, 0, sl->stats_size);
    return (int)sl->n++;
}

static void slots_free(struct slots *sl)
{
    for (uint32_t i = 0; i < sl->n; i++) {
        lb_free(sl->v[i].name);
        lb_free(sl->v[i].stats);
        acl_src_free(sl->v[i].src);
    }
    lb_free(sl->v);
    sl->v = NULL;
    sl->n = sl->cap = 0;
}

int backend_frontend_slot(const char *name)
{
    return slot_get(&fe_slots, name);
}

/* ---- servers ---- */

static void server_free(struct server *s)
{
    if (!s)
        return;
    lb_free(s->name);
    lb_free(s->addr_text);
    lb_free(s);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct server *server_new(const struct cfg_server *cs, enum srv_state st)
{
    struct server *s = lb_aligned_alloc(64, sizeof(*s));

    if (!s)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->name = lb_strdup(cs->name);
    s->addr_text = lb_strdup(cs->addr_text);
    if (!s->name || !s->addr_text) {
        server_free(s);
        return NULL;
    }
    memcpy(&s->addr, &cs->addr.ss, sizeof(s->addr));
    s->addrlen = cs->addr.len;
    s->backup = cs->backup;
    atomic_init(&s->cfg_weight, cs->weight);
    atomic_init(&s->max_conns, cs->max_conns);
    atomic_init(&s->send_proxy, cs->send_proxy);
    atomic_init(&s->state, st);
    atomic_init(&s->health, st == SRV_CHECKING ? SRV_CHECKING : SRV_UP);
    atomic_init(&s->weight, cs->weight * SRV_WEIGHT_SCALE);
    atomic_init(&s->user_weight, cs->weight * SRV_WEIGHT_SCALE);
    s->state_since = mono_ms();
    return s;
}

/* The server of <old> that <cs> describes, if it is the same one: same
 * name, same address, same class (primary or backup). */
static struct server *server_match(const struct pool *old, const struct cfg_server *cs)
{
    for (uint32_t i = 0; old && i < old->nservers; i++) {
        struct server *s = old->servers[i];

        if (strcmp(s->name, cs->name) == 0)
            return s->addrlen == cs->addr.len && memcmp(&s->addr, &cs->addr.ss, s->addrlen) == 0 &&
                           s->backup == cs->backup
                       ? s
                       : NULL;
    }
    return NULL;
}

/* Brings a server that stays up to date with <cs>. Returns true if it changed. */
static bool server_update(struct server *s, const struct cfg_server *cs)
{
    bool changed = false;

    if (atomic_load_explicit(&s->max_conns, memory_order_relaxed) != cs->max_conns) {
        atomic_store_explicit(&s->max_conns, cs->max_conns, memory_order_relaxed);
        changed = true;
    }
    if (atomic_load_explicit(&s->send_proxy, memory_order_relaxed) != cs->send_proxy) {
        atomic_store_explicit(&s->send_proxy, cs->send_proxy, memory_order_relaxed);
        changed = true;
    }
    /* A weight set through the admin API survives a reload, unless lb.ini
     * changed the weight: then the file is what the operator means now. */
    if (atomic_load_explicit(&s->cfg_weight, memory_order_relaxed) != cs->weight) {
        atomic_store_explicit(&s->cfg_weight, cs->weight, memory_order_relaxed);
        atomic_store_explicit(&s->user_weight, cs->weight * SRV_WEIGHT_SCALE, memory_order_relaxed);
        atomic_store_explicit(&s->weight, cs->weight * SRV_WEIGHT_SCALE, memory_order_release);
        changed = true;
    }
    return changed;
}

/* ---- snapshots ---- */

static struct server *pick_none(struct pool *pool, const struct lb_pick_ctx *ctx)
{
    (void)pool;
    (void)ctx;
    return NULL;
}

/* What a backend dropped by a reload runs: connections that were waiting
 * for it (a retry, a frontend not yet closed) find no server. */
static const struct lb_ops gone_ops = {.name = "none", .pick = pick_none};

static void table_free(void *p)
{
    struct lb_table *t = p;

    if (!t)
        return;
    for (uint32_t i = 0; t->pools && i < t->npools; i++) {
        struct pool *pool = &t->pools[i];

        if (pool->ops && pool->ops->destroy && pool->lb)
            pool->ops->destroy(pool);
        lb_free(pool->servers);
        lb_free(pool->name);
    }
    for (uint32_t i = 0; t->frontends && i < t->nfrontends; i++) {
        struct frontend *f = &t->frontends[i];

        for (uint32_t j = 0; f->binds && j < f->nbinds; j++)
            lb_free(f->binds[j]);
        lb_free(f->binds);
        lb_free(f->name);
        acl_unref(f->acl);
        acl_unref(f->proxy_trusted);
        sni_routes_unref(f->sni);
    }
    lb_free(t->pools);
    lb_free(t->frontends);
    lb_free(t);
}

/* Servers a table build created, kept aside until the build succeeds. */
struct fresh {
    struct server **v;
    size_t n;
};

static int pool_fill(struct pool *pool, uint32_t slot, const struct cfg_backend *cb,
                     const struct pool *old, struct fresh *fresh, struct backend_diff *d)
{
    /* config/ names the algorithms without linking them: validation checked
     * the name against config_algo_find(), and test_config checks that the
     * registry knows every name config does. */
    const struct lb_ops *ops = lb_registry_find(cb->balance);

    if (!ops)
        return -EINVAL;
    pool->servers = lb_calloc(cb->nservers ? cb->nservers : 1, sizeof(*pool->servers));
    if (!pool->servers)
        return -ENOMEM;
    pool->gone = false;
    pool->ops = ops;
    pool->connect_timeout_ms = cb->connect_timeout_ms;
    pool->idle_timeout_ms = cb->idle_timeout_ms;
    pool->retries = cb->retries;
    pool->hash_key = cb->hash_key;
    pool->fall = cb->health == HEALTH_NONE ? 0 : cb->fall;
    for (size_t j = 0; j < cb->nservers; j++) {
        const struct cfg_server *cs = &cb->servers[j];
        struct server *s = server_match(old, cs);

        if (s) {
            d->kept++;
            d->changed += server_update(s, cs);
        } else {
            /* A server of a backend with health checks is checked before
             * it takes a client: at start-up ringlb waits for that first
             * verdict before it accepts (hc_wait_first_round), so no
             * client reaches a down or wrong-role server. */
            s = server_new(cs, cb->health != HEALTH_NONE ? SRV_CHECKING : SRV_UP);
            if (!s)
                return -ENOMEM;
            /* A server that stays keeps its backend, hence its slot. */
            s->pool_slot = slot;
            fresh->v[fresh->n++] = s;
            d->added++;
        }
        pool->servers[pool->nservers++] = s;
        pool->send_proxy_any |= cs->send_proxy != PROXY_OFF;
    }
    return 0;
}

/* Allow rules <allow> and deny rules <deny> as a lookup structure; NULL
 * in <*out> when there are none. Returns 0 or -ENOMEM. */
static int frontend_acl(const struct cfg_cidr *allow, size_t nallow, const struct cfg_cidr *deny,
                        size_t ndeny, struct acl **out)
{
    struct acl *a;

    *out = NULL;
    if (!nallow && !ndeny)
        return 0;
    a = acl_new();
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < nallow; i++) {
        if (acl_add(a, false, allow[i].family, allow[i].addr, allow[i].len) < 0)
            goto err;
    }
    for (size_t i = 0; i < ndeny; i++) {
        if (acl_add(a, true, deny[i].family, deny[i].addr, deny[i].len) < 0)
            goto err;
    }
    if (acl_build(a) < 0)
        goto err;
    *out = a;
    return 0;
err:
    acl_unref(a);
    return -ENOMEM;
}

/* The sni = rules of <cf>, targets being backend slots; NULL when none. */
static int frontend_sni(const struct cfg_frontend *cf, const struct config *cfg,
                        struct sni_routes **out)
{
    struct sni_routes *r;

    *out = NULL;
    if (!cf->nsni)
        return 0;
    r = sni_routes_new();
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < cf->nsni; i++) {
        int slot = slot_find(&be_slots, cfg->backends[cf->sni[i].backend_idx].name);

        /* Validation checked the pattern: only memory can fail here. */
        if (sni_routes_add(r, cf->sni[i].host, (uint32_t)slot) < 0) {
            sni_routes_unref(r);
            return -ENOMEM;
        }
    }
    sni_routes_build(r);
    *out = r;
    return 0;
}

static int frontend_fill(struct frontend *f, struct slot *fs, const struct cfg_frontend *cf,
                         const struct config *cfg)
{
    int ret;

    f->gone = false;
    f->pool = cf->backend_idx == SIZE_MAX
                  ? FRONTEND_NO_POOL
                  : (uint32_t)slot_find(&be_slots, cfg->backends[cf->backend_idx].name);
    f->binds = lb_calloc(cf->nbinds ? cf->nbinds : 1, sizeof(*f->binds));
    if (!f->binds)
        return -ENOMEM;
    for (size_t b = 0; b < cf->nbinds; b++) {
        f->binds[b] = lb_strdup(cf->bind_texts[b]);
        if (!f->binds[b])
            return -ENOMEM;
        f->nbinds++;
    }
    acl_unref(f->acl); /* what a gone entry inherited, if anything */
    acl_unref(f->proxy_trusted);
    sni_routes_unref(f->sni);
    f->acl = f->proxy_trusted = NULL;
    f->sni = NULL;
    ret = frontend_acl(cf->allow, cf->nallow, cf->deny, cf->ndeny, &f->acl);
    if (ret == 0)
        ret = frontend_acl(cf->proxy_trusted, cf->nproxy_trusted, NULL, 0, &f->proxy_trusted);
    if (ret == 0)
        ret = frontend_sni(cf, cfg, &f->sni);
    if (ret < 0)
        return ret;
    f->src_limits.limit = cf->max_conns_per_source;
    f->src_limits.rate = cf->rate_per_source;
    f->sni_timeout_ms = cf->sni_timeout_ms;
    f->accept_proxy = (uint8_t)cf->accept_proxy;
    f->proxy_timeout_ms = cf->proxy_timeout_ms;
    f->source_prefix_v6 = cf->source_prefix_v6;
    f->src = NULL;
    if (cf->max_conns_per_source || cf->rate_per_source) {
        if (!fs->src)
            fs->src = acl_src_new(FRONTEND_SRC_CAPACITY);
        if (!fs->src)
            return -ENOMEM;
        f->src = fs->src;
    }
    return 0;
}

/*
 * Builds the snapshot of <cfg>. <old> (NULL at start-up) gives the servers
 * to reuse and, for names that are gone, what their slots last were. Runs
 * under set_lock, so no server changes weight while pools are built.
 */
static int table_build(const struct config *cfg, const struct lb_table *old, struct lb_table **out,
                       struct backend_diff *d)
{
    struct lb_table *t = lb_calloc(1, sizeof(*t));
    struct fresh fresh = {0};
    size_t total = 0;
    int ret = -ENOMEM;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        total += cfg->backends[i].nservers;
        if (slot_get(&be_slots, cfg->backends[i].name) < 0)
            goto err;
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        if (slot_get(&fe_slots, cfg->frontends[i].name) < 0)
            goto err;
    }
    fresh.v = lb_calloc(total ? total : 1, sizeof(*fresh.v));
    t->pools = lb_calloc(be_slots.n ? be_slots.n : 1, sizeof(*t->pools));
    t->frontends = lb_calloc(fe_slots.n ? fe_slots.n : 1, sizeof(*t->frontends));
    if (!fresh.v || !t->pools || !t->frontends)
        goto err;
    t->generation = old ? old->generation + 1 : 1;
    for (t->npools = 0; t->npools < be_slots.n; t->npools++) {
        struct pool *pool = &t->pools[t->npools];

        pool->name = lb_strdup(be_slots.v[t->npools].name);
        if (!pool->name)
            goto err;
        pool->stats = be_slots.v[t->npools].stats;
        pool->gone = true;
        pool->ops = &gone_ops;
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *cb = &cfg->backends[i];
        int slot = slot_find(&be_slots, cb->name);
        struct pool *pool = &t->pools[slot];
        const struct pool *op = old && (uint32_t)slot < old->npools ? &old->pools[slot] : NULL;

        ret = pool_fill(pool, (uint32_t)slot, cb, op, &fresh, d);
        if (ret < 0)
            goto err;
        ret = pool->ops->init(pool);
        if (ret < 0) {
            log_error("backend %s: cannot build %s tables: %s", pool->name, pool->ops->name,
                      strerror(-ret));
            pool->ops = &gone_ops; /* nothing to destroy */
            goto err;
        }
    }
    for (t->nfrontends = 0; t->nfrontends < fe_slots.n; t->nfrontends++) {
        struct frontend *f = &t->frontends[t->nfrontends];
        uint32_t k = t->nfrontends;

        f->name = lb_strdup(fe_slots.v[k].name);
        if (!f->name)
            goto err;
        f->stats = fe_slots.v[k].stats;
        f->gone = true;
        /* Until its listeners close, a dropped frontend keeps sending
         * clients where it did. */
        f->pool = old && k < old->nfrontends ? old->frontends[k].pool : 0;
        /* And the rules and limits it had: closing is no reason to let
         * in the sources it refused. */
        if (old && k < old->nfrontends) {
            const struct frontend *of = &old->frontends[k];

            f->acl = acl_ref(of->acl);
            f->proxy_trusted = acl_ref(of->proxy_trusted);
            f->sni = sni_routes_ref(of->sni);
            f->sni_timeout_ms = of->sni_timeout_ms;
            f->accept_proxy = of->accept_proxy;
            f->proxy_timeout_ms = of->proxy_timeout_ms;
            f->src = old->frontends[k].src;
            f->src_limits = old->frontends[k].src_limits;
            f->source_prefix_v6 = old->frontends[k].source_prefix_v6;
        }
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        int k = slot_find(&fe_slots, cfg->frontends[i].name);

        ret = frontend_fill(&t->frontends[k], &fe_slots.v[k], &cfg->frontends[i], cfg);
        if (ret < 0)
            goto err;
    }
    /* Only now can the new servers join the list freed at exit. */
    if (nall_servers + fresh.n > all_cap) {
        size_t cap = (nall_servers + fresh.n) * 2;
        struct server **v = lb_realloc(all_servers, cap * sizeof(*v));

        ret = -ENOMEM;
        if (!v)
            goto err;
        all_servers = v;
        all_cap = cap;
    }
    memcpy(all_servers + nall_servers, fresh.v, fresh.n * sizeof(*fresh.v));
    nall_servers += fresh.n;
    lb_free(fresh.v);
    *out = t;
    return 0;
err:
    table_free(t);
    for (size_t i = 0; i < fresh.n; i++)
        server_free(fresh.v[i]);
    lb_free(fresh.v);
    return ret < 0 ? ret : -ENOMEM;
}

int backend_table_init(const struct config *cfg)
{
    struct backend_diff d = {0};
    struct lb_table *t;
    int ret = table_build(cfg, NULL, &t, &d);

    if (ret < 0) {
        backend_table_destroy();
        return ret;
    }
    atomic_store_explicit(&current, t, memory_order_release);
    return 0;
}

int backend_table_reload(const struct config *cfg, struct backend_diff *d)
{
    struct lb_table *old = atomic_load_explicit(&current, memory_order_relaxed), *t;
    uint32_t before = 0;
    int ret;

    memset(d, 0, sizeof(*d));
    for (uint32_t i = 0; i < old->npools; i++)
        before += old->pools[i].nservers;
    pthread_mutex_lock(&set_lock);
    ret = table_build(cfg, old, &t, d);
    if (ret == 0)
        atomic_store_explicit(&current, t, memory_order_release);
    pthread_mutex_unlock(&set_lock);
    if (ret < 0)
        return ret;
    d->removed = before - d->kept;
    qsbr_retire(old, table_free);
    return 0;
}

void backend_table_destroy(void)
{
    struct lb_table *t = atomic_exchange(&current, NULL);

    table_free(t);
    qsbr_drain();
    for (size_t i = 0; i < nall_servers; i++)
        server_free(all_servers[i]);
    lb_free(all_servers);
    all_servers = NULL;
    nall_servers = all_cap = 0;
    slots_free(&fe_slots);
    slots_free(&be_slots);
}

/* ---- state changes ---- */

void server_active_changed(struct server *s)
{
    const struct lb_table *t = backend_table_get();
    struct pool *pool;

    /* No snapshot: a tool or test driving a pool of its own. */
    if (!t || s->pool_slot >= t->npools)
        return;
    pool = &t->pools[s->pool_slot];
    if (pool->ops->active_changed)
        pool->ops->active_changed(pool, s);
}

/* Publishes the state that <s>'s admin and health fields add up to, and
 * tells the algorithm of the pool in <slot> (when it still exists). */
static void state_publish(uint32_t slot, struct server *s)
{
    const struct lb_table *t = backend_table_get();
    uint32_t a = atomic_load_explicit(&s->admin, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&s->health, memory_order_relaxed);
    uint32_t st = a == SRV_ADMIN_MAINT   ? SRV_MAINT
                  : h != SRV_UP          ? h
                  : a == SRV_ADMIN_DRAIN ? SRV_DRAIN
                                         : SRV_UP;

    uint32_t was = atomic_exchange_explicit(&s->state, st, memory_order_release);

    if (was != st) {
        uint64_t now = mono_ms();

        atomic_fetch_add_explicit(&s->state_changes, 1, memory_order_relaxed);
        if (was == SRV_DOWN)
            s->down_ms += now - s->state_since;
        s->state_since = now;
    }
    if (slot < t->npools && t->pools[slot].ops->server_state)
        t->pools[slot].ops->server_state(&t->pools[slot], s);
}

void server_set_state(uint32_t pool, struct server *s, enum srv_state st)
{
    pthread_mutex_lock(&set_lock);
    atomic_store_explicit(&s->health, st == SRV_DOWN ? SRV_DOWN : SRV_UP, memory_order_relaxed);
    state_publish(pool, s);
    pthread_mutex_unlock(&set_lock);
}

void server_set_admin(uint32_t pool, struct server *s, enum srv_admin a)
{
    pthread_mutex_lock(&set_lock);
    atomic_store_explicit(&s->admin, a, memory_order_relaxed);
    state_publish(pool, s);
    pthread_mutex_unlock(&set_lock);
}

void server_note_check(struct server *s, const char *status, const char *reason)
{
    pthread_mutex_lock(&set_lock);
    snprintf(s->check_status, sizeof(s->check_status), "%s", status);
    snprintf(s->check_reason, sizeof(s->check_reason), "%s", reason);
    pthread_mutex_unlock(&set_lock);
}

void server_view(const struct server *s, struct server_view *v)
{
    uint64_t now = mono_ms();

    pthread_mutex_lock(&set_lock);
    v->state_ms = now - s->state_since;
    v->down_ms = s->down_ms;
    if (atomic_load_explicit(&s->state, memory_order_relaxed) == SRV_DOWN)
        v->down_ms += v->state_ms;
    memcpy(v->check_status, s->check_status, sizeof(v->check_status));
    memcpy(v->check_reason, s->check_reason, sizeof(v->check_reason));
    pthread_mutex_unlock(&set_lock);
}

static void weight_publish(uint32_t pool, struct server *s, uint32_t weight)
{
    if (atomic_load_explicit(&s->weight, memory_order_relaxed) != weight) {
        const struct lb_table *t = backend_table_get();

        atomic_store_explicit(&s->weight, weight, memory_order_release);
        if (pool < t->npools && t->pools[pool].ops->server_state)
            t->pools[pool].ops->server_state(&t->pools[pool], s);
    }
}

void server_set_weight(uint32_t pool, struct server *s, uint32_t weight)
{
    pthread_mutex_lock(&set_lock);
    weight_publish(pool, s, weight);
    pthread_mutex_unlock(&set_lock);
}

void server_set_user_weight(uint32_t pool, struct server *s, uint32_t weight)
{
    pthread_mutex_lock(&set_lock);
    atomic_store_explicit(&s->user_weight, weight, memory_order_relaxed);
    weight_publish(pool, s, weight);
    pthread_mutex_unlock(&set_lock);
}
