/*
 * health.c - the checker thread: scheduling, the rise/fall state machine,
 * publishing state changes, passive health, slow_start and the hooks that a
 * state change starts (see health.h).
 *
 * A state change is one call to server_set_state(): every algorithm skips a
 * server that cannot serve, so nothing is rebuilt on the way down or up (see
 * core/backend.h). slow_start changes the effective weight in steps through
 * server_set_weight(), which lets weight-driven algorithms rebuild their
 * table here, off the hot path; the replaced tables are retired through
 * QSBR, and this thread polls QSBR until they are freed.
 */
#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../core/alloc.h"
#include "../core/backend.h"
#include "../core/compiler.h"
#include "../core/log.h"
#include "../core/qsbr.h"
#include "../core/runtime.h"
#include "health_int.h"

/* Longest wait of the loop; also bounds how late QSBR sees us quiescent. */
#define HC_MAX_WAIT_MS 500
/* Delay before looking again at a server whose last probe is still closing. */
#define HC_BUSY_RETRY_MS 10
/*
 * Probe start times are rounded up to this grain, so the thread wakes at
 * most this often however many servers it checks, and handles the probes
 * due in one wake-up together: with a thousand servers, a hundred wake-ups
 * a second instead of two thousand (context switches were most of the
 * checker's own CPU time).
 */
#define HC_TICK_MS 10
/* slow_start moves the weight in about this many steps... */
#define HC_RAMP_STEPS 16
/* ...but no more often than this: each step may rebuild a balancer table. */
#define HC_RAMP_MIN_STEP_MS 100

static struct hc *checker;
static _Atomic int kick_fd = -1;
static _Atomic bool kicked;

/* ---- the state machine ---- */

enum hc_change hc_fsm_step(struct hc_fsm *f, bool ok, uint32_t rise, uint32_t fall)
{
    if (f->checking && f->first) {
        f->checking = f->first = false;
        f->up = ok;
        f->ok = f->fail = 0;
        if (!ok)
            f->fail = 1;
        return ok ? HC_WENT_UP : HC_WENT_DOWN;
    }
    if (f->checking) {
        if (ok) {
            f->fail = 0;
            if (++f->ok < rise)
                return HC_SAME;
            f->checking = false;
            f->up = true;
            return HC_WENT_UP;
        }
        f->ok = 0;
        if (++f->fail < fall)
            return HC_SAME;
        f->checking = false;
        return HC_WENT_DOWN;
    }
    if (ok) {
        f->fail = 0;
        if (f->up)
            return HC_SAME;
        if (++f->ok < rise)
            return HC_SAME;
        f->up = true;
        return HC_WENT_UP;
    }
    f->ok = 0;
    if (!f->up)
        return HC_SAME;
    if (++f->fail < fall)
        return HC_SAME;
    f->up = false;
    return HC_WENT_DOWN;
}

enum hc_change hc_fsm_passive(struct hc_fsm *f, uint32_t passive, uint32_t fall)
{
    if (!f->up || passive == 0 || f->fail + passive < fall)
        return HC_SAME;
    f->up = false;
    f->fail += passive;
    return HC_WENT_DOWN;
}

/* ---- scheduling ---- */

static uint64_t hc_rand(struct hc *hc)
{
    uint64_t z = (hc->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void on_due(struct timer *t, uint64_t now)
{
    struct hc_srv *h = container_of(t, struct hc_srv, timer);

    /* The final completions of the previous probe may still be on their
     * way; its loop_ops cannot be reused before they arrive. */
    if (hc__probe_busy(h)) {
        /* Out of memory would say this for every server every retry. */
        if (timer_arm(loop_timers(h->hc->loop), t, now + HC_BUSY_RETRY_MS) < 0)
            log_warn_rl("health: cannot re-arm a probe timer");
        return;
    }
    hc__probe_start(h);
}

uint64_t hc__tick(uint64_t t)
{
    return (t + HC_TICK_MS - 1) / HC_TICK_MS * HC_TICK_MS;
}

/* Arms the next probe of <h> health_interval +/- 10% from now. */
static void schedule(struct hc_srv *h)
{
    struct hc *hc = h->hc;
    uint64_t iv = h->cb->health_interval_ms;
    uint64_t delay = iv - iv / 10 + hc_rand(hc) % (iv / 5 + 1);

    h->timer.cb = on_due;
    if (timer_arm(loop_timers(hc->loop), &h->timer, hc__tick(loop_now(hc->loop) + delay)) < 0)
        log_error("health: out of memory: %s/%s is no longer checked", h->cb->name, h->s->name);
}

/* ---- state changes ---- */

/* Where a slow start of <s> ends: the weight lb.ini or the admin API asked
 * for, read at each step since either may change it meanwhile. */
static uint32_t full_weight(const struct server *s)
{
    return atomic_load_explicit(&s->user_weight, memory_order_relaxed);
}

/* The effective weight <elapsed> ms into a slow start: from 1 up to full. */
static uint32_t ramp_weight(const struct hc_srv *h, uint64_t elapsed)
{
    uint64_t full = full_weight(h->s);
    uint64_t w;

    if (elapsed >= h->cb->slow_start_ms)
        return (uint32_t)full;
    w = full * elapsed / h->cb->slow_start_ms;
    return w ? (uint32_t)w : 1;
}

static uint32_t ramp_step_ms(const struct hc_srv *h)
{
    uint32_t step = h->cb->slow_start_ms / HC_RAMP_STEPS;

    return step < HC_RAMP_MIN_STEP_MS ? HC_RAMP_MIN_STEP_MS : step;
}

static void set_weight(struct hc_srv *h, uint32_t w)
{
    server_set_weight(h->pool_idx, h->s, w);
    /* An algorithm may have retired a table: free it once workers moved on. */
    h->hc->retire_pending = true;
}

static void on_ramp(struct timer *t, uint64_t now)
{
    struct hc_srv *h = container_of(t, struct hc_srv, ramp);
    uint32_t w = ramp_weight(h, now - h->up_at);

    set_weight(h, w);
    if (w < full_weight(h->s) && timer_arm(loop_timers(h->hc->loop), t, now + ramp_step_ms(h)) < 0)
        set_weight(h, full_weight(h->s));
}

static void went_down(struct hc_srv *h, const char *why, uint32_t passive)
{
    struct server *s = h->s;
    const struct cfg_backend *cb = h->cb;

    timer_disarm(loop_timers(h->hc->loop), &h->ramp);
    server_set_state(h->pool_idx, s, SRV_DOWN);
    atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
    if (cb->on_down_close) {
        /* Workers compare it on their tick and close what was picked before. */
        atomic_fetch_add_explicit(&s->down_gen, 1, memory_order_release);
        atomic_fetch_add_explicit(&lb_rt.close_gen, 1, memory_order_release);
    }
    if (passive && passive < h->fsm.fail)
        log_warn("server %s/%s is DOWN: %s (%u/%u failed, %u of them client connects)", cb->name,
                 s->name, why, h->fsm.fail, cb->fall, passive);
    else
        log_warn("server %s/%s is DOWN: %s (%u/%u failed)", cb->name, s->name, why, h->fsm.fail,
                 cb->fall);
    hc__hook_run(h->hc, &cb->on_down, "on_down", h);
}

static void went_up(struct hc_srv *h, const char *why)
{
    struct server *s = h->s;
    const struct cfg_backend *cb = h->cb;
    struct loop *loop = h->hc->loop;

    /* The low weight first: the server must not take a full share even for
     * the moment between the two stores. */
    bool slow = cb->slow_start_ms && full_weight(s);

    if (slow) {
        h->up_at = loop_now(loop);
        set_weight(h, ramp_weight(h, 0));
        if (timer_arm(loop_timers(loop), &h->ramp, h->up_at + ramp_step_ms(h)) < 0)
            set_weight(h, full_weight(s));
    }
    server_set_state(h->pool_idx, s, SRV_UP);
    log_info("server %s/%s is UP: %s (%u/%u passed)%s", cb->name, s->name, why, cb->rise, cb->rise,
             slow ? ", slow start" : "");
    hc__hook_run(h->hc, &cb->on_up, "on_up", h);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hc__probe_started(struct hc_srv *h)
{
    h->started_ns = mono_ns();
    h->ended_in = HC_CONNECT; /* a probe that fails before it connects */
}

/*
 * The verdict as HAProxy's check status names it, so that an operator
 * reads L4TOUT or L7STS as on a HAProxy stats page: layer 4 when the probe
 * ended while connecting, layer 7 once it had connected.
 */
static const char *check_status(const struct hc_srv *h, bool ok, const char *why)
{
    bool l4 = h->ended_in == HC_CONNECT, tout = strstr(why, "timeout") != NULL;

    if (ok)
        return l4 ? "L4OK" : "L7OK";
    if (l4)
        return tout ? "L4TOUT" : "L4CON";
    if (tout)
        return "L7TOUT";
    if (h->cb->health == HEALTH_HTTP && strncmp(why, "http status ", 12) == 0)
        return "L7STS";
    return "L7RSP";
}

void hc__result(struct hc_srv *h, bool ok, const char *why)
{
    struct server *s = h->s;
    uint64_t us = (mono_ns() - h->started_ns) / 1000;
    uint32_t passive = 0;
    enum hc_change ch;
    bool first;

    atomic_store_explicit(&s->check_us, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&s->checks, 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&s->check_fails, 1, memory_order_relaxed);
    server_note_check(s, check_status(h, ok, why), why);

    if (ok && atomic_load_explicit(&s->fails, memory_order_relaxed))
        atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
    first = h->fsm.first;
    ch = hc_fsm_step(&h->fsm, ok, h->cb->rise, h->cb->fall);
    if (ch == HC_SAME && !ok) {
        passive = atomic_load_explicit(&s->fails, memory_order_relaxed);
        ch = hc_fsm_passive(&h->fsm, passive, h->cb->fall);
    }
    if (ch == HC_WENT_DOWN)
        went_down(h, why, passive);
    else if (ch == HC_WENT_UP)
        went_up(h, why);
    else if (!ok)
        log_debug("server %s/%s: check failed: %s (%s)", h->cb->name, s->name, why,
                  h->fsm.up ? "still up" : "down");
    /* Only once the verdict is published: main starts the workers when the
     * last one is in, and they must find the server's new state. */
    if (first && !h->fsm.first && --h->hc->first_left == 0)
        sem_post(&h->hc->first_round);
    schedule(h);
}

/* A worker saw a server reach `fall` failed connects: mark it down now
 * rather than at its next probe. */
static void passive_scan(struct hc *hc)
{
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        struct hc_srv *h = hc->srvs[i];
        uint32_t n = atomic_load_explicit(&h->s->fails, memory_order_relaxed);

        if (n && hc_fsm_passive(&h->fsm, n, h->cb->fall) == HC_WENT_DOWN)
            went_down(h, "connects from clients failed", n);
    }
}

/* ---- the server list: built by main, installed by the checker ---- */

struct hc_update {
    struct hc_srv **srvs;
    const struct cfg_backend **cbs; /* the backend settings of each */
    bool *fresh;                    /* built for this update: not yet scheduled */
    uint32_t n;
};

static void srv_free(struct hc_srv *h)
{
    lb_free(h->req);
    lb_free(h->db);
    lb_free(h);
}

static void update_free(struct hc_update *u, bool with_fresh)
{
    if (!u)
        return;
    for (uint32_t i = 0; with_fresh && i < u->n; i++) {
        if (u->fresh[i])
            srv_free(u->srvs[i]);
    }
    lb_free(u->srvs);
    lb_free(u->cbs);
    lb_free(u->fresh);
    lb_free(u);
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* True when a probe built for <a> is also the probe of <b>. */
static bool probe_same(const struct cfg_backend *a, const struct cfg_backend *b)
{
    return a->health == b->health && str_eq(a->health_path, b->health_path) &&
           a->health_expect == b->health_expect && a->health_timeout_ms == b->health_timeout_ms &&
           a->health_expect_len == b->health_expect_len &&
           (!a->health_expect_len ||
            memcmp(a->health_expect_str, b->health_expect_str, a->health_expect_len) == 0) &&
           a->health_send_len == b->health_send_len &&
           (!a->health_send_len ||
            memcmp(a->health_send, b->health_send, a->health_send_len) == 0) &&
           a->health_port == b->health_port && a->role == b->role &&
           str_eq(a->health_user, b->health_user) &&
           str_eq(a->health_password, b->health_password) && str_eq(a->health_db, b->health_db);
}

static int pool_slot(const struct lb_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->npools; i++) {
        if (!t->pools[i].gone && strcmp(t->pools[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * The servers of <cfg> to check, reusing the entries of <hc> (NULL at
 * start) for servers that stay with the same probe. Main thread: it reads
 * hc->srvs, which only an update it hands over itself can change.
 */
static int update_build(const struct config *cfg, const struct hc *hc, struct hc_update **out)
{
    const struct lb_table *t = backend_table_get();
    struct hc_update *u = lb_calloc(1, sizeof(*u));
    uint32_t n = 0;

    if (!u)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if (cfg->backends[i].health != HEALTH_NONE)
            n += (uint32_t)cfg->backends[i].nservers;
    }
    u->srvs = lb_calloc(n ? n : 1, sizeof(*u->srvs));
    u->cbs = lb_calloc(n ? n : 1, sizeof(*u->cbs));
    u->fresh = lb_calloc(n ? n : 1, sizeof(*u->fresh));
    if (!u->srvs || !u->cbs || !u->fresh)
        goto err;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *cb = &cfg->backends[i];
        int slot = pool_slot(t, cb->name);

        if (cb->health == HEALTH_NONE || slot < 0)
            continue;
        /* The pool was built from this very section: servers[j] is the
         * server of cb->servers[j]. */
        for (uint32_t j = 0; j < t->pools[slot].nservers; j++) {
            struct server *s = t->pools[slot].servers[j];
            struct hc_srv *old = NULL, *h;

            for (uint32_t k = 0; hc && k < hc->nsrvs && !old; k++)
                old = hc->srvs[k]->s == s ? hc->srvs[k] : NULL;
            u->cbs[u->n] = cb;
            if (old && probe_same(old->cb, cb)) {
                u->srvs[u->n++] = old;
                continue;
            }
            h = lb_calloc(1, sizeof(*h));
            if (!h)
                goto err;
            h->s = s;
            h->cb = cb;
            h->pool_idx = (uint32_t)slot;
            if (old) {
                h->fsm = old->fsm;
            } else {
                uint32_t st = atomic_load(&s->health);

                h->fsm.up = st == SRV_UP;
                h->fsm.checking = st == SRV_CHECKING;
                /* At start-up (no checker yet) the first probe decides. */
                h->fsm.first = h->fsm.checking && !hc;
            }
            u->srvs[u->n] = h;
            u->fresh[u->n++] = true;
            if (hc__probe_init(h) < 0)
                goto err;
        }
    }
    *out = u;
    return 0;
err:
    update_free(u, true);
    return -ENOMEM;
}

/* Arms the first probe of a new entry within <spread> ms. */
static void first_probe(struct hc *hc, struct hc_srv *h, uint64_t spread)
{
    h->hc = hc;
    timer_init(&h->timer, on_due);
    timer_init(&h->ramp, on_ramp);
    if (timer_arm(loop_timers(hc->loop), &h->timer,
                  hc__tick(loop_now(hc->loop) + 1 + hc_rand(hc) % (spread ? spread : 1))) < 0)
        log_error("health: out of memory: %s/%s is not checked", h->cb->name, h->s->name);
}

/* Installs <u> (checker thread). */
static void update_install(struct hc *hc, struct hc_update *u)
{
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        struct hc_srv *h = hc->srvs[i];
        bool kept = false;

        for (uint32_t k = 0; k < u->n && !kept; k++)
            kept = u->srvs[k] == h;
        if (kept)
            continue;
        hc__probe_abort(h);
        timer_disarm(loop_timers(hc->loop), &h->timer);
        timer_disarm(loop_timers(hc->loop), &h->ramp);
        h->next = hc->retired;
        hc->retired = h;
    }
    lb_free(hc->srvs);
    hc->srvs = u->srvs;
    hc->nsrvs = u->n;
    for (uint32_t k = 0; k < u->n; k++) {
        struct hc_srv *h = u->srvs[k];

        h->cb = u->cbs[k];
        /* Added servers wait for their verdict: check them soon. */
        if (u->fresh[k])
            first_probe(hc, h, h->fsm.checking ? 1000 : h->cb->health_interval_ms);
    }
    u->srvs = NULL;
    update_free(u, false);
}

/* Frees retired entries whose last completion has arrived. */
static void retired_reap(struct hc *hc)
{
    for (struct hc_srv **pp = &hc->retired; *pp;) {
        struct hc_srv *h = *pp;

        if (hc__probe_busy(h)) {
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        srv_free(h);
    }
}

/* ---- the thread ---- */

static void *hc_main(void *arg)
{
    struct hc *hc = arg;
    struct loop_params lp = {
        .buf_size = 4096, .buf_count = 256, .entries = 512, .wake_fd = hc->wake_fd};
    struct hc_update *u;
    int ret;

    /* Named, so that top -H and /proc show what the checker costs. */
    pthread_setname_np(pthread_self(), "ringlb-health");
    ret = loop_create(lb_rt.backend, &lp, &hc->loop);
    hc->start_err = ret;
    sem_post(&hc->ready);
    if (ret < 0)
        return NULL;
    hc->qsbr_slot = qsbr_register();
    /* The first probes spread over one interval, not all at once, but a
     * starting server's goes now: ringlb accepts once they are in. */
    for (uint32_t i = 0; i < hc->nsrvs; i++)
        first_probe(hc, hc->srvs[i],
                    hc->srvs[i]->fsm.first ? 0 : hc->srvs[i]->cb->health_interval_ms);
    while (!atomic_load_explicit(&hc->stop, memory_order_acquire)) {
        u = atomic_exchange_explicit(&hc->update, NULL, memory_order_acquire);
        if (u) {
            update_install(hc, u);
            sem_post(&hc->reloaded);
        }
        ret = loop_run_once(hc->loop, HC_MAX_WAIT_MS);
        if (ret < 0) {
            log_error("health: event loop failed: %s; servers keep their last state",
                      strerror(-ret));
            break;
        }
        if (atomic_exchange_explicit(&kicked, false, memory_order_acquire))
            passive_scan(hc);
        if (hc->retired)
            retired_reap(hc);
        if (hc->qsbr_slot >= 0)
            qsbr_quiescent(hc->qsbr_slot);
        if (hc->retire_pending)
            hc->retire_pending = qsbr_poll() > 0;
    }
    for (uint32_t i = 0; i < hc->nsrvs; i++)
        hc__probe_abort(hc->srvs[i]);
    /* Let the cancellations complete before the loop and the ops go away. */
    for (int turn = 0; turn < 100; turn++) {
        bool busy = false;

        for (uint32_t i = 0; i < hc->nsrvs && !busy; i++)
            busy = hc__probe_busy(hc->srvs[i]);
        retired_reap(hc);
        if (!busy && !hc->retired)
            break;
        loop_run_once(hc->loop, 10);
    }
    hc__hooks_fini(hc);
    if (hc->qsbr_slot >= 0)
        qsbr_unregister(hc->qsbr_slot);
    /* A ring is torn down by the thread that owns it. */
    loop_destroy(hc->loop);
    hc->loop = NULL;
    /* The checker stopped: nobody takes an update any more. */
    update_free(atomic_exchange(&hc->update, NULL), true);
    atomic_store_explicit(&hc->exited, true, memory_order_release);
    return NULL;
}

static void hc_free(struct hc *hc)
{
    if (!hc)
        return;
    for (uint32_t i = 0; i < hc->nsrvs; i++)
        srv_free(hc->srvs[i]);
    lb_free(hc->srvs);
    while (hc->retired) {
        struct hc_srv *h = hc->retired;

        hc->retired = h->next;
        srv_free(h);
    }
    if (hc->loop)
        loop_destroy(hc->loop);
    if (hc->wake_fd >= 0)
        close(hc->wake_fd);
    sem_destroy(&hc->ready);
    sem_destroy(&hc->reloaded);
    sem_destroy(&hc->first_round);
    lb_free(hc);
}

int hc_start(const struct config *cfg)
{
    struct hc_update *u = NULL;
    struct timespec ts;
    struct hc *hc;
    int ret;

    ret = update_build(cfg, NULL, &u);
    if (ret < 0)
        goto err_log;
    if (!u->n) {
        update_free(u, true);
        log_info("health: no backend has health checks");
        return 0;
    }
    ret = -ENOMEM;
    hc = lb_calloc(1, sizeof(*hc));
    if (!hc) {
        update_free(u, true);
        goto err_log;
    }
    hc->wake_fd = -1;
    hc->qsbr_slot = -1;
    sem_init(&hc->ready, 0, 0);
    sem_init(&hc->reloaded, 0, 0);
    sem_init(&hc->first_round, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    hc->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    /* Taken over whole: the thread schedules the first probes. */
    hc->srvs = u->srvs;
    hc->nsrvs = u->n;
    for (uint32_t i = 0; i < u->n; i++) {
        u->srvs[i]->hc = hc;
        hc->first_left += u->srvs[i]->fsm.first;
    }
    if (!hc->first_left)
        sem_post(&hc->first_round);
    u->srvs = NULL;
    update_free(u, false);
    hc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hc->wake_fd < 0) {
        ret = -errno;
        goto err;
    }
    ret = pthread_create(&hc->thread, NULL, hc_main, hc);
    if (ret != 0) {
        ret = -ret;
        goto err;
    }
    while (sem_wait(&hc->ready) < 0 && errno == EINTR)
        ;
    if (hc->start_err < 0) {
        ret = hc->start_err;
        pthread_join(hc->thread, NULL);
        goto err;
    }
    checker = hc;
    atomic_store_explicit(&kick_fd, hc->wake_fd, memory_order_release);
    log_info("health: checking %u server(s) in their own thread (%s)", hc->nsrvs,
             lb_rt.backend == LOOP_URING ? "io_uring" : "epoll");
    return 0;
err:
    hc_free(hc);
err_log:
    log_error("health: cannot start the checker: %s", strerror(-ret));
    return ret;
}

int hc_reload(const struct config *cfg)
{
    struct hc *hc = checker;
    struct hc_update *u;
    uint64_t one = 1;
    int ret;

    if (!hc)
        return hc_start(cfg);
    ret = update_build(cfg, hc, &u);
    if (ret < 0) {
        log_error("health: cannot take the new servers: %s", strerror(-ret));
        return ret;
    }
    atomic_store_explicit(&hc->update, u, memory_order_release);
    if (write(hc->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("health: cannot wake the checker: %s", strerror(errno));
    /* The checker takes it within one loop turn (HC_MAX_WAIT_MS), unless
     * its loop failed: then it has stopped and frees it itself. */
    for (;;) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (sem_timedwait(&hc->reloaded, &ts) == 0)
            break;
        if (atomic_load_explicit(&hc->exited, memory_order_acquire))
            break;
    }
    log_info("health: checking %u server(s)", hc->nsrvs);
    return 0;
}

uint32_t hc_wait_first_round(const struct config *cfg)
{
    struct hc *hc = checker;
    uint32_t wait_ms = 0, left = 0;
    struct timespec until;
    uint64_t t0;

    if (!hc)
        return 0;
    for (size_t i = 0; i < cfg->nbackends; i++)
        if (cfg->backends[i].health != HEALTH_NONE && cfg->backends[i].health_timeout_ms > wait_ms)
            wait_ms = cfg->backends[i].health_timeout_ms;
    /* The probe's own deadline, plus room for the checker to be scheduled
     * and a hook-free verdict to be recorded. */
    wait_ms += 500;
    t0 = mono_ns();
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (sem_timedwait(&hc->first_round, &until) < 0 && errno == EINTR)
        ;
    for (uint32_t i = 0; i < hc->nsrvs; i++)
        left += atomic_load_explicit(&hc->srvs[i]->s->health, memory_order_relaxed) == SRV_CHECKING;
    if (left)
        log_warn("health: %u server(s) still checking after %u ms: they take clients once a "
                 "probe passes",
                 left, wait_ms);
    else
        log_info("health: first probe round done in %ld ms", (long)((mono_ns() - t0) / 1000000));
    return left;
}

void hc_stop(void)
{
    struct hc *hc = checker;
    uint64_t one = 1;

    if (!hc)
        return;
    atomic_store_explicit(&kick_fd, -1, memory_order_release);
    atomic_store_explicit(&hc->stop, true, memory_order_release);
    if (write(hc->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("health: cannot wake the checker: %s", strerror(errno));
    pthread_join(hc->thread, NULL);
    checker = NULL;
    hc_free(hc);
}

void hc_kick(void)
{
    int fd = atomic_load_explicit(&kick_fd, memory_order_acquire);
    uint64_t one = 1;

    atomic_store_explicit(&kicked, true, memory_order_release);
    /* EAGAIN: the counter is already non-zero, the checker will wake. */
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("health: cannot wake the checker: %s", strerror(errno));
}
