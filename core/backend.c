/*
 * backend.c - builds the servers and snapshots of the backend table and
 * publishes them (see backend.h for the reading rules).
 */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "alloc.h"
#include "log.h"
#include "qsbr.h"

static _Atomic(struct lb_table *) current;
/* Every server ever built, for destroy: servers outlive snapshots. */
static struct server **all_servers;
static size_t nall_servers;

const struct lb_table *backend_table_get(void)
{
    return atomic_load_explicit(&current, memory_order_acquire);
}

static void server_free(struct server *s)
{
    if (!s)
        return;
    lb_free(s->name);
    lb_free(s->addr_text);
    lb_free(s);
}

static struct server *server_new(const struct cfg_server *cs, uint32_t index)
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
    s->cfg_weight = cs->weight;
    s->max_conns = cs->max_conns;
    s->backup = cs->backup;
    s->index = index;
    atomic_init(&s->state, SRV_UP);
    atomic_init(&s->weight, cs->weight * SRV_WEIGHT_SCALE);
    return s;
}

static void table_free(void *p)
{
    struct lb_table *t = p;

    if (!t)
        return;
    for (uint32_t i = 0; i < t->npools; i++) {
        struct pool *pool = &t->pools[i];

        if (pool->ops && pool->ops->destroy && pool->lb)
            pool->ops->destroy(pool);
        lb_free(pool->servers);
        lb_free(pool->name);
    }
    lb_free(t->pools);
    lb_free(t);
}

int backend_table_init(const struct config *cfg)
{
    struct lb_table *t = lb_calloc(1, sizeof(*t));
    size_t total = 0;
    int ret = -ENOMEM;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nbackends; i++)
        total += cfg->backends[i].nservers;
    all_servers = lb_calloc(total ? total : 1, sizeof(*all_servers));
    t->pools = lb_calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*t->pools));
    if (!all_servers || !t->pools)
        goto err;
    t->npools = (uint32_t)cfg->nbackends;
    t->generation = 1;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *cb = &cfg->backends[i];
        struct pool *pool = &t->pools[i];

        pool->name = lb_strdup(cb->name);
        pool->servers = lb_calloc(cb->nservers ? cb->nservers : 1, sizeof(*pool->servers));
        if (!pool->name || !pool->servers)
            goto err;
        pool->ops = cb->ops;
        pool->connect_timeout_ms = cb->connect_timeout_ms;
        pool->idle_timeout_ms = cb->idle_timeout_ms;
        pool->retries = cb->retries;
        pool->hash_key = cb->hash_key;
        pool->fall = cb->health == HEALTH_NONE ? 0 : cb->fall;
        for (size_t j = 0; j < cb->nservers; j++) {
            struct server *s = server_new(&cb->servers[j], (uint32_t)j);

            if (!s)
                goto err;
            all_servers[nall_servers++] = s;
            pool->servers[pool->nservers++] = s;
        }
        ret = pool->ops->init(pool);
        if (ret < 0) {
            log_error("backend %s: cannot build %s tables: %s", pool->name, pool->ops->name,
                      strerror(-ret));
            goto err;
        }
    }
    atomic_store_explicit(&current, t, memory_order_release);
    return 0;
err:
    table_free(t);
    backend_table_destroy();
    return ret < 0 ? ret : -ENOMEM;
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
    nall_servers = 0;
}

/* The checker and the admin thread both change servers; balancer hooks
 * rebuild tables and must not run twice at once. */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

/* Publishes the state that <s>'s admin and health fields add up to. */
static void state_publish(struct pool *pool, struct server *s)
{
    uint32_t a = atomic_load_explicit(&s->admin, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&s->health, memory_order_relaxed);
    uint32_t st = a == SRV_ADMIN_MAINT   ? SRV_MAINT
                  : h == SRV_DOWN        ? SRV_DOWN
                  : a == SRV_ADMIN_DRAIN ? SRV_DRAIN
                                         : SRV_UP;

    if (atomic_exchange_explicit(&s->state, st, memory_order_release) != st)
        atomic_fetch_add_explicit(&s->state_changes, 1, memory_order_relaxed);
    if (pool->ops->server_state)
        pool->ops->server_state(pool, s);
}

void server_set_state(struct pool *pool, struct server *s, enum srv_state st)
{
    pthread_mutex_lock(&set_lock);
    atomic_store_explicit(&s->health, st == SRV_DOWN ? SRV_DOWN : SRV_UP, memory_order_relaxed);
    state_publish(pool, s);
    pthread_mutex_unlock(&set_lock);
}

void server_set_admin(struct pool *pool, struct server *s, enum srv_admin a)
{
    pthread_mutex_lock(&set_lock);
    atomic_store_explicit(&s->admin, a, memory_order_relaxed);
    state_publish(pool, s);
    pthread_mutex_unlock(&set_lock);
}

void server_set_weight(struct pool *pool, struct server *s, uint32_t weight)
{
    pthread_mutex_lock(&set_lock);
    if (atomic_load_explicit(&s->weight, memory_order_relaxed) != weight) {
        atomic_store_explicit(&s->weight, weight, memory_order_release);
        if (pool->ops->server_state)
            pool->ops->server_state(pool, s);
    }
    pthread_mutex_unlock(&set_lock);
}
