/*
 * fault.c - the registry of active faults (see fault.h for who reads and
 * who writes it).
 *
 * Lifetime: a list holds one reference on each of its faults, and a
 * connection that takes a fault one more. A writer builds a new list,
 * publishes it, and retires the old one through QSBR; the old list drops
 * its references only after a grace period, when no reader can still be
 * looking at it, so a reader that found a fault in the list it loaded can
 * always take a reference. The last reference frees the fault, on
 * whichever thread lets go of it.
 */
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "backend.h"
#include "log.h"
#include "metrics.h"
#include "qsbr.h"

_Atomic(struct fault_list *) fault_current;

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled;

void fault_enable(bool on)
{
    enabled = on;
}

bool fault_enabled(void)
{
    return enabled;
}

void fault_put(struct fault *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        lb_free(f);
}

static void list_free(void *p)
{
    struct fault_list *l = p;

    for (uint32_t i = 0; i < l->n; i++)
        fault_put(l->f[i]);
    lb_free(l);
}

/*
 * Publishes the current faults minus <drop> (NULL: none) plus <add> (NULL:
 * none) as the new list. Returns 0 or -ENOMEM (nothing changed). Called
 * with write_lock held.
 */
static int publish(const struct fault *drop, struct fault *add)
{
    struct fault_list *old = atomic_load_explicit(&fault_current, memory_order_relaxed), *nl;
    uint32_t n = 0, cap = (old ? old->n : 0) + (add ? 1 : 0);

    nl = cap ? lb_malloc(sizeof(*nl) + cap * sizeof(nl->f[0])) : NULL;
    if (cap && !nl)
        return -ENOMEM;
    for (uint32_t i = 0; old && i < old->n; i++) {
        if (old->f[i] == drop)
            continue;
        atomic_fetch_add_explicit(&old->f[i]->refs, 1, memory_order_relaxed);
        nl->f[n++] = old->f[i];
    }
    if (add) {
        atomic_fetch_add_explicit(&add->refs, 1, memory_order_relaxed);
        nl->f[n++] = add;
    }
    if (nl && n == 0) {
        lb_free(nl);
        nl = NULL;
    } else if (nl) {
        nl->n = n;
    }
    atomic_store_explicit(&fault_current, nl, memory_order_release);
    if (old)
        qsbr_retire(old, list_free);
    return 0;
}

static bool scope_match(const struct fault_spec *s, const char *fe, const char *backend,
                        const char *server)
{
    if (s->frontend[0])
        return fe && strcmp(s->frontend, fe) == 0;
    return backend && server && strcmp(s->backend, backend) == 0 && strcmp(s->server, server) == 0;
}

/* Whether the next connection <f> is drawn for is one it applies to. */
static bool draw(struct fault *f)
{
    uint64_t n = atomic_fetch_add_explicit(&f->draws, 1, memory_order_relaxed);

    return f->threshold == UINT64_MAX ||
           fault_mix64(f->spec.seed + n * 0x9e3779b97f4a7c15ull) < f->threshold;
}

struct fault *fault_take(const char *fe, const char *srv_backend, const char *srv_name,
                         bool connect, enum fault_stream stream, uint64_t now)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_acquire);

    for (uint32_t i = 0; l && i < l->n; i++) {
        struct fault *f = l->f[i];
        bool shapes = fault_type_shapes(f->spec.type);

        if (fault_gone(f, now) || shapes == connect || (shapes && f->spec.stream != stream) ||
            !scope_match(&f->spec, fe, srv_backend, srv_name) || !draw(f))
            continue;
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->affected, 1, memory_order_relaxed);
        return f;
    }
    return NULL;
}

bool fault_probe_fails(const char *backend, const char *name, uint64_t now, char *why,
                       size_t whylen)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_acquire);

    for (uint32_t i = 0; l && i < l->n; i++) {
        struct fault *f = l->f[i];

        if (!f->spec.probes || fault_gone(f, now) || !scope_match(&f->spec, NULL, backend, name) ||
            !draw(f))
            continue;
        atomic_fetch_add_explicit(&f->affected, 1, memory_order_relaxed);
        snprintf(why, whylen, "%s (injected by fault %s)",
                 f->spec.type == FT_REFUSE    ? "connect: Connection refused"
                 : f->spec.type == FT_TIMEOUT ? "timeout"
                                              : "reset by peer",
                 f->spec.name);
        return true;
    }
    return false;
}

static struct fault *find(const char *name)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_relaxed);

    for (uint32_t i = 0; l && i < l->n; i++)
        if (strcmp(l->f[i]->spec.name, name) == 0)
            return l->f[i];
    return NULL;
}

/* Whether the scope of <s> names something in the running config. */
static bool scope_exists(const struct fault_spec *s)
{
    const struct lb_table *t = backend_table_get();

    if (s->frontend[0]) {
        for (uint32_t i = 0; i < t->nfrontends; i++)
            if (!t->frontends[i].gone && strcmp(t->frontends[i].name, s->frontend) == 0)
                return true;
        return false;
    }
    for (uint32_t i = 0; i < t->npools; i++) {
        const struct pool *p = &t->pools[i];

        if (p->gone || strcmp(p->name, s->backend) != 0)
            continue;
        for (uint32_t j = 0; j < p->nservers; j++)
            if (strcmp(p->servers[j]->name, s->server) == 0)
                return true;
    }
    return false;
}

static void scope_str(const struct fault_spec *s, char *buf, size_t len)
{
    if (s->frontend[0])
        snprintf(buf, len, "frontend %s", s->frontend);
    else
        snprintf(buf, len, "server %s/%s", s->backend, s->server);
}

int fault_add(const struct fault_spec *s, uint64_t now, char *err, size_t errlen)
{
    struct fault_list *l;
    struct fault *f;
    char scope[160];
    int ret;

    scope_str(s, scope, sizeof(scope));
    pthread_mutex_lock(&write_lock);
    l = atomic_load_explicit(&fault_current, memory_order_relaxed);
    if (find(s->name)) {
        ret = -EEXIST;
        snprintf(err, errlen, "a fault named %s exists (DELETE it first)", s->name);
    } else if (l && l->n >= FAULT_MAX) {
        ret = -ENOSPC;
        snprintf(err, errlen, "%d faults are active, the most there can be", FAULT_MAX);
    } else if (!scope_exists(s)) {
        ret = -ENOENT;
        snprintf(err, errlen, "no %s in the running config", scope);
    } else if (!(f = lb_calloc(1, sizeof(*f)))) {
        ret = -ENOMEM;
        snprintf(err, errlen, "out of memory");
    } else {
        f->spec = *s;
        f->expires = now + s->ttl_ms;
        /* 2^64 * toxicity without overflow at 1.0. */
        f->threshold =
            s->toxicity >= 1.0 ? UINT64_MAX : (uint64_t)(s->toxicity * 18446744073709551616.0);
        atomic_init(&f->refs, 0);
        ret = publish(NULL, f);
        if (ret < 0) {
            lb_free(f);
            snprintf(err, errlen, "out of memory");
        } else {
            log_warn("chaos: fault %s added: %s %s on %s, toxicity %.3g, ttl %llu ms", s->name,
                     fault_type_name(s->type), fault_stream_name(s->stream), scope, s->toxicity,
                     (unsigned long long)s->ttl_ms);
        }
    }
    pthread_mutex_unlock(&write_lock);
    return ret;
}

/* Takes <f> out of the list (write_lock held); <why> for the log. */
static int drop(struct fault *f, const char *why)
{
    int ret = publish(f, NULL);

    if (ret < 0)
        return ret;
    /* Holders let go at their next look (fault_gone). */
    atomic_store_explicit(&f->removed, true, memory_order_relaxed);
    log_warn("chaos: fault %s %s (%llu connections affected)", f->spec.name, why,
             (unsigned long long)atomic_load_explicit(&f->affected, memory_order_relaxed));
    return 0;
}

int fault_remove(const char *name)
{
    struct fault *f;
    int ret = -ENOENT;

    pthread_mutex_lock(&write_lock);
    if ((f = find(name)))
        ret = drop(f, "removed");
    pthread_mutex_unlock(&write_lock);
    return ret;
}

/* Drops every fault for which <pred> holds; returns how many. */
static unsigned drop_if(bool (*pred)(const struct fault *f, uint64_t now), uint64_t now,
                        const char *why)
{
    struct fault_list *l;
    unsigned n = 0;

    pthread_mutex_lock(&write_lock);
    /* Each drop publishes a new list; take the next from the new one. */
    for (;;) {
        struct fault *hit = NULL;

        l = atomic_load_explicit(&fault_current, memory_order_relaxed);
        for (uint32_t i = 0; l && i < l->n && !hit; i++)
            if (pred(l->f[i], now))
                hit = l->f[i];
        if (!hit || drop(hit, why) < 0)
            break;
        n++;
    }
    pthread_mutex_unlock(&write_lock);
    return n;
}

static bool any(const struct fault *f, uint64_t now)
{
    (void)f;
    (void)now;
    return true;
}

static bool expired(const struct fault *f, uint64_t now)
{
    return now >= f->expires;
}

static bool orphaned(const struct fault *f, uint64_t now)
{
    (void)now;
    return !scope_exists(&f->spec);
}

unsigned fault_remove_all(void)
{
    return drop_if(any, 0, "removed");
}

void fault_expire(uint64_t now)
{
    if (atomic_load_explicit(&fault_current, memory_order_relaxed))
        drop_if(expired, now, "expired (ttl)");
}

void fault_prune(void)
{
    if (atomic_load_explicit(&fault_current, memory_order_relaxed))
        drop_if(orphaned, 0, "removed: its scope left the config on reload");
}

void fault_fini(void)
{
    struct fault_list *l = atomic_exchange(&fault_current, NULL);

    if (l)
        list_free(l);
}

/* ---- renderings (admin thread) ---- */

static void render_attrs(struct metrics_buf *b, const struct fault_spec *s)
{
    const struct fault_params *p = &s->p;

    switch (s->type) {
    case FT_LATENCY:
        metrics_buf_printf(b, "{\"latency\":%u,\"jitter\":%u}", p->latency_ms, p->jitter_ms);
        break;
    case FT_BANDWIDTH:
        metrics_buf_printf(b, "{\"rate\":%u}", p->rate_kbs);
        break;
    case FT_SLOW_CLOSE:
    case FT_CONNECT_DELAY:
        metrics_buf_printf(b, "{\"delay\":%u}", p->delay_ms);
        break;
    case FT_TIMEOUT:
    case FT_RESET_PEER:
        metrics_buf_printf(b, "{\"timeout\":%u,\"probes\":%s}", p->timeout_ms,
                           s->probes ? "true" : "false");
        break;
    case FT_SLICER:
        metrics_buf_printf(b, "{\"average_size\":%u,\"size_variation\":%u,\"delay\":%u}",
                           p->average_size, p->size_variation, p->delay_us);
        break;
    case FT_LIMIT_DATA:
        metrics_buf_printf(b, "{\"bytes\":%llu}", (unsigned long long)p->bytes);
        break;
    case FT_REFUSE:
        metrics_buf_printf(b, "{\"probes\":%s}", s->probes ? "true" : "false");
        break;
    default:
        metrics_buf_put(b, "{}", 2);
    }
}

void fault_render_json(struct metrics_buf *b, uint64_t now)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_acquire);

    metrics_buf_printf(b, "{\"chaos\":%s,\"faults\":[", enabled ? "true" : "false");
    for (uint32_t i = 0; l && i < l->n; i++) {
        const struct fault *f = l->f[i];
        const struct fault_spec *s = &f->spec;

        metrics_buf_printf(b,
                           "%s{\"name\":\"%s\",\"type\":\"%s\",\"stream\":\"%s\","
                           "\"toxicity\":%.6g,\"attributes\":",
                           i ? "," : "", s->name, fault_type_name(s->type),
                           fault_stream_name(s->stream), s->toxicity);
        render_attrs(b, s);
        if (s->frontend[0])
            metrics_buf_printf(b, ",\"frontend\":\"%s\"", s->frontend);
        else
            metrics_buf_printf(b, ",\"server\":\"%s/%s\"", s->backend, s->server);
        metrics_buf_printf(b,
                           ",\"seed\":%llu,\"ttl_left_ms\":%llu,\"connections_drawn_total\":%llu,"
                           "\"connections_affected_total\":%llu}",
                           (unsigned long long)s->seed,
                           (unsigned long long)(f->expires > now ? f->expires - now : 0),
                           (unsigned long long)atomic_load(&f->draws),
                           (unsigned long long)atomic_load(&f->affected));
    }
    metrics_buf_put(b, "]}\n", 3);
}

void fault_render_prom(struct metrics_buf *b)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_acquire);

    metrics_buf_printf(b,
                       "# HELP ringlb_faults_active Faults injected now (chaos).\n"
                       "# TYPE ringlb_faults_active gauge\nringlb_faults_active %u\n",
                       l ? l->n : 0);
    if (!l)
        return;
    metrics_buf_printf(b, "# HELP ringlb_fault_connections_affected_total Connections (and "
                          "probes) a fault applied to.\n"
                          "# TYPE ringlb_fault_connections_affected_total counter\n");
    for (uint32_t i = 0; i < l->n; i++)
        metrics_buf_printf(
            b, "ringlb_fault_connections_affected_total{fault=\"%s\",type=\"%s\"} %llu\n",
            l->f[i]->spec.name, fault_type_name(l->f[i]->spec.type),
            (unsigned long long)atomic_load(&l->f[i]->affected));
}

void fault_render_banner(struct metrics_buf *b)
{
    struct fault_list *l = atomic_load_explicit(&fault_current, memory_order_acquire);
    struct timespec ts;
    char scope[160];
    uint64_t now;

    if (!l)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    metrics_buf_printf(b, "<div class=\"chaos\" id=\"chaos\"><b>Chaos: %u fault%s active</b><ul>",
                       l->n, l->n == 1 ? "" : "s");
    /* Names and scopes are restricted to [A-Za-z0-9._-] (fault_json.c):
     * nothing to escape. */
    for (uint32_t i = 0; i < l->n; i++) {
        const struct fault *f = l->f[i];

        scope_str(&f->spec, scope, sizeof(scope));
        metrics_buf_printf(b, "<li>%s: %s %s on %s, %llu connections affected, %llu s left</li>",
                           f->spec.name, fault_type_name(f->spec.type),
                           fault_stream_name(f->spec.stream), scope,
                           (unsigned long long)atomic_load(&f->affected),
                           (unsigned long long)(f->expires > now ? (f->expires - now) / 1000 : 0));
    }
    metrics_buf_put(b, "</ul></div>", 11);
}
