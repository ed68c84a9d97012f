/*
 * worker.c - worker threads: listeners, accept, max_conns, shutdown.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "backend.h"
#include "compiler.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "qsbr.h"

#define TICK_MS           100
#define ACCEPT_BACKOFF_MS 100
/* Longest wait in the loop: also bounds how late QSBR sees us quiescent. */
#define MAX_WAIT_MS 500

struct listen_update {
    struct wlistener **ls; /* kept and new ones; becomes worker.ls */
    uint32_t *frontend;    /* the frontend slot of each */
    bool *fresh;           /* opened by this plan */
    uint32_t nls;
};

/* Reserves a global connection slot; false when max_conns is reached. */
static bool slot_take(void)
{
    uint32_t cur = atomic_load_explicit(&lb_rt.active, memory_order_relaxed);
    uint32_t max = atomic_load_explicit(&lb_rt.max_conns, memory_order_relaxed);

    do {
        if (cur >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&lb_rt.active, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

static int hold(struct worker *w, int fd, uint32_t frontend)
{
    if (w->nheld == w->held_cap) {
        uint32_t cap = w->held_cap ? w->held_cap * 2 : 64;
        struct held_client *v = lb_realloc(w->held, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        w->held = v;
        w->held_cap = cap;
    }
    w->held[w->nheld].fd = fd;
    w->held[w->nheld].frontend = frontend;
    w->nheld++;
    return 0;
}

/*
 * What the worker wants from its listeners now (accept_fsm.h): nothing
 * while it stops, holds clients or max_conns is reached; one client per
 * accept when fewer free slots are left than multishot accepts could take
 * at once (each may empty its listen backlog before we see the first
 * client), so that clients over max_conns wait in the kernel's backlog
 * rather than in ours; multishot otherwise.
 */
static enum accept_want accept_want(const struct worker *w)
{
    uint32_t active = atomic_load_explicit(&lb_rt.active, memory_order_relaxed);
    uint32_t max = atomic_load_explicit(&lb_rt.max_conns, memory_order_relaxed);
    uint64_t burst = (uint64_t)NET_BACKLOG * (w->nls ? w->nls : 1) * w->nworkers;

    if (w->stopping || w->nheld || active >= max)
        return ACC_WANT_NONE;
    return max - active <= burst ? ACC_WANT_ONE : ACC_WANT_MULTI;
}

static void listener_step(struct wlistener *l, enum accept_event ev)
{
    struct worker *w = l->w;
    enum accept_want want = accept_want(w);

    if (want != w->acc_want) {
        if (want == ACC_WANT_NONE && !w->stopping)
            log_debug("worker %u: max_conns %u reached, pausing accept", w->id,
                      atomic_load_explicit(&lb_rt.max_conns, memory_order_relaxed));
        else if (w->acc_want == ACC_WANT_NONE)
            log_debug("worker %u: below max_conns, accepting again", w->id);
        w->acc_want = (uint8_t)want;
    }
    switch (accept_fsm_step(&l->acc, ev, want)) {
    case ACC_ACT_SUBMIT_ONE:
        loop_submit_accept_one(w->loop, &l->op, l->fd);
        break;
    case ACC_ACT_SUBMIT_MULTI:
        loop_submit_accept(w->loop, &l->op, l->fd);
        break;
    case ACC_ACT_CANCEL:
        loop_cancel(w->loop, &l->op);
        break;
    case ACC_ACT_ARM_TIMER:
        if (timer_arm(loop_timers(w->loop), &l->backoff, loop_now(w->loop) + ACCEPT_BACKOFF_MS) < 0)
            listener_step(l, ACC_EV_TIMER);
        break;
    case ACC_ACT_DISARM_TIMER:
        timer_disarm(loop_timers(w->loop), &l->backoff);
        break;
    case ACC_ACT_NONE:
        break;
    }
}

/* Tells every listener of <w> what is wanted now. */
static void accept_sync(struct worker *w)
{
    for (uint32_t i = 0; i < w->nls; i++)
        listener_step(w->ls[i], ACC_EV_SYNC);
}

/* Serves held clients, oldest first, while slots are free. */
static void accept_resume(struct worker *w)
{
    if (w->stopping)
        return;
    /* One at a time: conn_accept() may close the client at once, and that
     * comes back here, so the list must be consistent at each call. */
    while (w->nheld && slot_take()) {
        struct held_client h = w->held[0];

        w->nheld--;
        memmove(w->held, w->held + 1, w->nheld * sizeof(*w->held));
        conn_accept(&w->cs, h.fd, h.frontend);
    }
    accept_sync(w);
}

/* conn.c's hook: a connection of <set> has closed and its slot is free. */
static void on_conn_closed(struct conn_set *set)
{
    struct worker *w = container_of(set, struct worker, cs);

    atomic_fetch_sub_explicit(&lb_rt.active, 1, memory_order_relaxed);
    if (w->acc_want != ACC_WANT_MULTI)
        accept_resume(w);
}

static void on_backoff(struct timer *t, uint64_t now)
{
    struct wlistener *l = container_of(t, struct wlistener, backoff);

    (void)now;
    listener_step(l, ACC_EV_TIMER);
}

/*
 * Serves client <fd> of <frontend> even over max_conns: a stopping worker
 * of a hand-over has no later moment to serve a client it holds, and the
 * client was as good as queued in the backlog the new process took.
 */
static void serve_anyway(struct worker *w, int fd, uint32_t frontend)
{
    atomic_fetch_add_explicit(&lb_rt.active, 1, memory_order_relaxed);
    conn_accept(&w->cs, fd, frontend);
}

/* A client accepted on <l>: served, held until a slot frees, or closed. */
static void accept_client(struct wlistener *l, int fd)
{
    struct worker *w = l->w;

    atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&backend_table_get()->frontends[l->frontend].stats->accepted, 1,
                              memory_order_relaxed);
    if (w->stopping) {
        /* On a hand-over the client came off a backlog that the new
         * process accepts from now: serve it, unless the loop is over
         * (only the cancellations are being collected). */
        if (!w->leaving && atomic_load_explicit(&w->hand_over, memory_order_relaxed))
            serve_anyway(w, fd, l->frontend);
        else
            close(fd);
    } else if (!w->nheld && slot_take()) {
        conn_accept(&w->cs, fd, l->frontend);
    } else if (hold(w, fd, l->frontend) < 0) {
        /* The kernel handed us more than max_conns allows (a multishot
         * accept, or a reload that lowered max_conns): keep it unserved,
         * like the backlog would, rather than drop it, unless out of
         * memory. */
        log_warn_rl("worker %u: cannot hold client over max_conns, closing it", w->id);
        close(fd);
    }
}

/* The event of a final completion with <res>, logging a failure. */
static enum accept_event accept_final_event(struct wlistener *l, int res)
{
    struct worker *w = l->w;

    if (res >= 0 || res == -ECANCELED || w->stopping || l->acc.state == ACC_CLOSED)
        return ACC_EV_FINAL;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)
        /* Retrying at once would spin: give closing connections time to
         * free descriptors, and say so (once per backoff period). */
        log_warn("worker %u: accept on %s: %s, pausing %d ms", w->id,
                 backend_table_get()->frontends[l->frontend].name, strerror(-res),
                 ACCEPT_BACKOFF_MS);
    else
        log_error("worker %u: accept on %s: %s, retrying in %d ms", w->id,
                  backend_table_get()->frontends[l->frontend].name, strerror(-res),
                  ACCEPT_BACKOFF_MS);
    return ACC_EV_FINAL_ERROR;
}

static void on_accept(struct loop_op *op, int res, unsigned flags)
{
    struct wlistener *l = container_of(op, struct wlistener, op);
    struct worker *w = l->w;

    if (res >= 0)
        accept_client(l, res);
    if (!(flags & LOOP_F_MORE))
        listener_step(l, accept_final_event(l, res));
    /* What is wanted may have changed with this client (max_conns near or
     * reached, a client held): tell every listener. */
    if (res >= 0)
        accept_sync(w);
}

/* Stops accepting on <l>. A shared listener stays open: main closes it. */
static void listener_close(struct worker *w, struct wlistener *l)
{
    listener_step(l, ACC_EV_CLOSE);
    if (l->fd < 0)
        return;
    if (l->owned) {
        loop_close(w->loop, l->fd);
        l->fd = -1;
    } else {
        /* Main closes it once every worker has let go (workers_plan_apply). */
        loop_forget(w->loop, l->fd);
    }
}

/* Whether an accept of <w>'s listeners is still in flight. */
static bool listeners_busy(const struct worker *w)
{
    for (uint32_t j = 0; j < w->nls; j++) {
        if (w->ls[j]->op.inflight)
            return true;
    }
    return false;
}

/* What workers_sweep() asks for: every client waiting in a backlog of
 * <w>'s listeners, taken now (bounded: the backlog's size per listener). */
static void listeners_sweep(struct worker *w)
{
    for (uint32_t i = 0; i < w->nls && !w->stopping; i++) {
        struct wlistener *l = w->ls[i];

        for (int k = 0; k < NET_BACKLOG && l->fd >= 0; k++) {
            int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

            if (fd < 0)
                break;
            accept_client(l, fd);
        }
    }
    accept_sync(w);
}

static void listeners_close(struct worker *w)
{
    for (uint32_t i = 0; i < w->nls; i++)
        listener_close(w, w->ls[i]);
}

/* Installs the listeners a reload handed over (worker thread). */
static void listeners_update(struct worker *w, struct listen_update *u)
{
    for (uint32_t i = 0; i < w->nls; i++) {
        struct wlistener *l = w->ls[i];
        bool kept = false;

        for (uint32_t j = 0; j < u->nls && !kept; j++)
            kept = u->ls[j] == l;
        if (kept)
            continue;
        listener_close(w, l);
        /* Its accept may still complete (cancelled, or with a client that
         * is then served): freed once nothing is in flight. */
        l->fd = -1;
        l->next = w->closed_ls;
        w->closed_ls = l;
    }
    lb_free(w->ls);
    w->ls = u->ls;
    w->nls = u->nls;
    for (uint32_t i = 0; i < w->nls; i++)
        w->ls[i]->frontend = u->frontend[i];
    accept_sync(w);
}

/* Frees the closed listeners whose last completion has arrived. */
static void listeners_reap(struct worker *w)
{
    for (struct wlistener **pp = &w->closed_ls; *pp;) {
        struct wlistener *l = *pp;

        if (l->op.inflight) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        lb_free(l);
    }
}

static void on_tick(struct timer *t, uint64_t now)
{
    struct worker *w = container_of(t, struct worker, tick);

    /* Other workers free and take slots without telling us: look again
     * (this also moves a multishot accept to single ones near max_conns). */
    accept_resume(w);
    /* The checker marked a server with on_down_close down: one scan of our
     * connections, only then, so the common tick costs one load. */
    if (atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire) != w->close_gen) {
        w->close_gen = atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire);
        conn_close_downed(&w->cs);
    }
    if (timer_arm(loop_timers(w->loop), &w->tick, now + TICK_MS) < 0)
        log_warn("worker %u: cannot re-arm its tick", w->id);
}

/*
 * Lets go of the clients held over max_conns as the worker stops: closed on
 * SIGTERM, like the backlog the listeners close with; served on a
 * hand-over, because the backlog they came from lives on in the new
 * process and they were as good as queued there (over max_conns for as
 * long as they last).
 */
static void held_drop(struct worker *w)
{
    bool serve = atomic_load_explicit(&w->hand_over, memory_order_relaxed);
    uint32_t n = w->nheld;

    /* conn_accept() may close a client at once, which comes back through
     * on_conn_closed(): the list is empty before the first call. */
    w->nheld = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!serve) {
            close(w->held[i].fd);
            continue;
        }
        serve_anyway(w, w->held[i].fd, w->held[i].frontend);
    }
}

static void begin_stop(struct worker *w)
{
    w->stopping = true;
    w->stop_deadline =
        loop_now(w->loop) + atomic_load_explicit(&lb_rt.shutdown_grace_ms, memory_order_relaxed);
    /* On a hand-over this closes only our descriptors: the new process
     * holds the same sockets, and what waits in their backlogs is its to
     * accept. A client that an accept already in flight brings after this
     * was taken off the backlog: accept_client() serves it. */
    listeners_close(w);
    held_drop(w);
    if (w->cs.nlive)
        log_info("worker %u: stopping, waiting for %u connection(s)", w->id, w->cs.nlive);
}

/* Names the worker thread and pins it to its CPU, if it has one. */
static void thread_setup(struct worker *w)
{
    cpu_set_t set;
    char name[16];

    /* Visible in top -H, ps -L and /proc: "ringlb-w0", "ringlb-w1", ... */
    snprintf(name, sizeof(name), "ringlb-w%u", w->id);
    pthread_setname_np(pthread_self(), name);
    if (w->cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        log_warn("worker %u: cannot pin to CPU %d", w->id, w->cpu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct loop_params lp = {
        .buf_size = 16384, .buf_count = w->buffers, .entries = 1024, .wake_fd = w->wake_fd};
    int ret;

    thread_setup(w);
    ret = loop_create(lb_rt.backend, &lp, &w->loop);
    if (ret < 0) {
        log_error("worker %u: cannot create its event loop: %s", w->id, strerror(-ret));
        w->exit_code = 1;
        atomic_store_explicit(&w->done, true, memory_order_release);
        sem_post(&w->ready);
        return NULL;
    }
    w->cs.loop = w->loop;
    sem_post(&w->ready);
    w->qsbr_slot = qsbr_register();
    w->close_gen = atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire);
    timer_init(&w->tick, on_tick);
    timer_arm(loop_timers(w->loop), &w->tick, loop_now(w->loop) + TICK_MS);
    accept_sync(w);
    for (;;) {
        if (!w->stopping && atomic_load_explicit(&w->stop, memory_order_acquire))
            begin_stop(w);
        if (w->stopping) {
            if (w->cs.nlive && loop_now(w->loop) >= w->stop_deadline) {
                log_warn("worker %u: shutdown grace over, closing %u connection(s)", w->id,
                         w->cs.nlive);
                conn_abort_all(&w->cs);
            }
            /* An accept still in flight on a hand-over may yet bring a
             * client to serve: wait for its cancellation, within the
             * grace. */
            if (conn_set_empty(&w->cs) &&
                (!listeners_busy(w) || loop_now(w->loop) >= w->stop_deadline))
                break;
        }
        if (w->stopping && !listeners_busy(w))
            atomic_store_explicit(&w->released, true, memory_order_release);
        if (atomic_load_explicit(&w->sweep, memory_order_relaxed) &&
            atomic_exchange_explicit(&w->sweep, false, memory_order_acquire))
            listeners_sweep(w);
        if (atomic_load_explicit(&w->update, memory_order_relaxed) && !w->stopping) {
            listeners_update(w, atomic_exchange_explicit(&w->update, NULL, memory_order_acquire));
            sem_post(&w->updated);
        }
        ret = loop_run_once(w->loop, MAX_WAIT_MS);
        if (ret < 0) {
            log_error("worker %u: event loop failed: %s", w->id, strerror(-ret));
            w->exit_code = 1;
            conn_abort_all(&w->cs);
            break;
        }
        conn_reap(&w->cs);
        if (w->closed_ls)
            listeners_reap(w);
        atomic_fetch_add_explicit(&w->loops, 1, memory_order_relaxed);
        atomic_store_explicit(&w->nconns_pub, w->cs.nlive, memory_order_relaxed);
        atomic_store_explicit(&w->bufs_free_pub, loop_buf_avail(w->loop), memory_order_relaxed);
        if (w->qsbr_slot >= 0)
            qsbr_quiescent(w->qsbr_slot);
    }
    /* Drain the cancellations issued above before the loop goes away. */
    w->leaving = true;
    for (int i = 0; i < 100 && (w->cs.closing || w->nls || w->closed_ls); i++) {
        if (!listeners_busy(w) && !w->cs.closing && !w->closed_ls)
            break;
        loop_run_once(w->loop, 10);
        conn_reap(&w->cs);
        listeners_reap(w);
    }
    if (w->qsbr_slot >= 0)
        qsbr_unregister(w->qsbr_slot);
    loop_destroy(w->loop);
    w->loop = w->cs.loop = NULL;
    atomic_store_explicit(&w->done, true, memory_order_release);
    return NULL;
}

/* ---- listeners: built by main, at start-up and on reload ---- */

struct listen_plan {
    struct listen_update *u; /* one per worker */
    /* Shared (unix) listeners the new config drops: closed and unlinked by
     * main once every worker has let go of them. */
    int *drop_fd;
    struct cfg_addr *drop_addr;
    uint32_t ndrop;
};

static bool addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static struct wlistener *listener_find(const struct worker *w, const struct cfg_addr *a)
{
    for (uint32_t i = 0; i < w->nls; i++) {
        if (addr_equal(&w->ls[i]->addr, a))
            return w->ls[i];
    }
    return NULL;
}

int workers_listener_fd(const struct worker *w, const struct cfg_addr *a)
{
    const struct wlistener *l = listener_find(w, a);

    return l ? l->fd : -1;
}

static void plan_free(struct listen_plan *p, uint32_t n, bool with_ls)
{
    for (uint32_t i = 0; p->u && i < n; i++) {
        if (with_ls)
            lb_free(p->u[i].ls);
        lb_free(p->u[i].frontend);
        lb_free(p->u[i].fresh);
    }
    lb_free(p->u);
    lb_free(p->drop_fd);
    lb_free(p->drop_addr);
    lb_free(p);
}

void workers_plan_abort(struct listen_plan *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct listen_update *u = &p->u[i];

        for (uint32_t k = 0; k < u->nls; k++) {
            struct wlistener *l = u->ls[k];

            if (!u->fresh[k])
                continue;
            /* A shared socket is worker 0's to close, once; the path of
             * one handed over stays, for the process still serving it. */
            if (l->owned || i == 0) {
                close(l->fd);
                if (!l->adopted)
                    net_unlink_unix((const struct sockaddr *)&l->addr.ss);
            }
            lb_free(l);
        }
    }
    plan_free(p, n, true);
}

/*
 * Refuses to join, by accident, the SO_REUSEPORT group of another process
 * on bind <b> of <fe> (main thread, before its first socket is opened):
 * the kernel would split the clients between the two. Probing without
 * SO_REUSEPORT tells whether anyone listens there. With share_binds the
 * pair is meant (same-host active-active), and then the clients queued on
 * the other process's listeners survive its death only with
 * net.ipv4.tcp_migrate_req = 1. Returns 0 or -EADDRINUSE with the reason
 * logged; other probe errors are left for the real bind to report.
 */
static int bind_check_shared(const struct config *cfg, const struct cfg_frontend *fe, size_t b)
{
    const struct cfg_addr *a = &fe->binds[b];
    int r;

    if (a->ss.ss_family == AF_UNIX)
        return 0; /* net_listen_flags() refuses a live unix socket itself */
    r = net_probe_in_use((const struct sockaddr *)&a->ss, a->len, workers_bind_flags(fe, b));
    if (r != -EADDRINUSE)
        return 0;
    if (!cfg->global.share_binds) {
        log_error("frontend %s: %s (%s:%d) is already in use by another process; not joining it "
                  "(the kernel would split the clients between the two): stop that process, or "
                  "set share_binds = yes in [global] to run both on purpose",
                  fe->name, fe->bind_texts[b], cfg->path, fe->bind_lines[b]);
        return -EADDRINUSE;
    }
    log_info("frontend %s: sharing %s with another process (share_binds = yes)", fe->name,
             fe->bind_texts[b]);
    if (net_tcp_migrate_req() == 0)
        log_warn("frontend %s: %s is shared but net.ipv4.tcp_migrate_req = 0: clients waiting in "
                 "one process's accept queue are reset if it dies or stops; set it to 1 "
                 "(sysctl -w net.ipv4.tcp_migrate_req=1) so that the kernel moves them to the "
                 "other",
                 fe->name, fe->bind_texts[b]);
    return 0;
}

/* The socket of listener <l> of worker <w> for bind <b> of <fe>: the unix
 * socket worker 0 opened (<shared_fd> >= 0), the one <inh> hands over, or a
 * new one. Returns the fd or -errno. */
static int listener_socket(struct worker *w, struct wlistener *l, const struct config *cfg,
                           const struct cfg_frontend *fe, size_t b, int shared_fd,
                           const struct listen_inherit *inh)
{
    const struct cfg_addr *a = &fe->binds[b];
    unsigned flags = workers_bind_flags(fe, b);
    int fd, ret;

    if (shared_fd >= 0)
        return shared_fd;
    fd = inh ? inh->take(inh->arg, a, a->ss.ss_family == AF_UNIX ? 0 : w->id) : -1;
    if (fd >= 0) {
        l->adopted = true;
        ret = net_adopt_listener(fd, a->ss.ss_family, flags);
        if (ret < 0)
            close(fd);
        return ret < 0 ? ret : fd;
    }
    /* Worker 0 opens a bind first: the one time to ask who else has it. A
     * bind the old process of an upgrade handed over is ours already, and
     * the sockets added to its group are not the first. */
    if (w->id == 0 && (ret = bind_check_shared(cfg, fe, b)) < 0)
        return ret;
    return net_listen_flags((const struct sockaddr *)&a->ss, a->len, flags);
}

/* The listener of worker <w> for bind <b> of <fe>: the one it has, or a new
 * one (see listener_socket). NULL with <*err>. */
static struct wlistener *plan_listener(struct worker *w, const struct config *cfg,
                                       const struct cfg_frontend *fe, size_t b, int shared_fd,
                                       const struct listen_inherit *inh, bool *fresh, int *err)
{
    const struct cfg_addr *a = &fe->binds[b];
    struct wlistener *l = listener_find(w, a);
    bool shared = a->ss.ss_family == AF_UNIX;

    *fresh = l == NULL;
    if (l)
        return l;
    l = lb_calloc(1, sizeof(*l));
    if (!l) {
        *err = -ENOMEM;
        return NULL;
    }
    /* SO_REUSEPORT siblings, one per worker, so the kernel spreads clients
     * over workers; a unix socket cannot be, and is shared instead. */
    l->fd = listener_socket(w, l, cfg, fe, b, shared_fd, inh);
    if (l->fd < 0) {
        *err = l->fd;
        lb_free(l);
        return NULL;
    }
    l->w = w;
    l->owned = !shared;
    l->addr = *a;
    l->op.cb = on_accept;
    timer_init(&l->backoff, on_backoff);
    return l;
}

static int plan_build(struct worker *ws, uint32_t n, const struct config *cfg,
                      const struct listen_inherit *inh, struct listen_plan **out)
{
    struct listen_plan *p = lb_calloc(1, sizeof(*p));
    uint32_t nls = 0;
    int ret = -ENOMEM;

    if (!p)
        return -ENOMEM;
    for (size_t f = 0; f < cfg->nfrontends; f++)
        nls += (uint32_t)cfg->frontends[f].nbinds;
    p->u = lb_calloc(n, sizeof(*p->u));
    p->drop_fd = lb_calloc(ws[0].nls ? ws[0].nls : 1, sizeof(*p->drop_fd));
    p->drop_addr = lb_calloc(ws[0].nls ? ws[0].nls : 1, sizeof(*p->drop_addr));
    if (!p->u || !p->drop_fd || !p->drop_addr)
        goto err;
    for (uint32_t i = 0; i < n; i++) {
        p->u[i].ls = lb_calloc(nls ? nls : 1, sizeof(*p->u[i].ls));
        p->u[i].frontend = lb_calloc(nls ? nls : 1, sizeof(*p->u[i].frontend));
        p->u[i].fresh = lb_calloc(nls ? nls : 1, sizeof(*p->u[i].fresh));
        if (!p->u[i].ls || !p->u[i].frontend || !p->u[i].fresh)
            goto err;
    }
    for (size_t f = 0, k = 0; f < cfg->nfrontends; f++) {
        const struct cfg_frontend *fe = &cfg->frontends[f];
        int slot = backend_frontend_slot(fe->name);

        if (slot < 0)
            goto err;
        for (size_t b = 0; b < fe->nbinds; b++, k++) {
            bool opened = false, adopted = false;
            int shared_fd = -1;

            for (uint32_t i = 0; i < n; i++) {
                struct listen_update *u = &p->u[i];
                struct wlistener *l =
                    plan_listener(&ws[i], cfg, fe, b, shared_fd, inh, &u->fresh[k], &ret);

                if (!l) {
                    log_error("frontend %s: cannot listen on %s: %s", fe->name, fe->bind_texts[b],
                              strerror(-ret));
                    goto err;
                }
                if (!l->owned)
                    shared_fd = l->fd;
                opened |= u->fresh[k];
                adopted |= u->fresh[k] && l->adopted;
                u->ls[k] = l;
                u->frontend[k] = (uint32_t)slot;
                u->nls = (uint32_t)k + 1;
            }
            if (opened)
                log_info("frontend %s: %s %s", fe->name,
                         adopted ? "took over the listeners on" : "listening on",
                         fe->bind_texts[b]);
        }
    }
    for (uint32_t j = 0; j < ws[0].nls; j++) {
        const struct wlistener *l = ws[0].ls[j];
        bool kept = false;

        for (uint32_t k = 0; k < p->u[0].nls && !kept; k++)
            kept = p->u[0].ls[k] == l;
        if (!kept && !l->owned) {
            p->drop_fd[p->ndrop] = l->fd;
            p->drop_addr[p->ndrop++] = l->addr;
        }
    }
    *out = p;
    return 0;
err:
    workers_plan_abort(p, n);
    return ret < 0 ? ret : -ENOMEM;
}

int workers_plan(struct worker *ws, uint32_t n, const struct config *cfg, struct listen_plan **out)
{
    return plan_build(ws, n, cfg, NULL, out);
}

static void worker_wake(struct worker *w)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is already non-zero, the worker will wake. */
    if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("cannot wake worker %u: %s", w->id, strerror(errno));
}

void workers_plan_apply(struct listen_plan *p, struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        atomic_store_explicit(&ws[i].update, &p->u[i], memory_order_release);
        worker_wake(&ws[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        /* A worker takes it within one loop turn (at most MAX_WAIT_MS);
         * one that has died never will. */
        while (!atomic_load_explicit(&ws[i].done, memory_order_acquire)) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (sem_timedwait(&ws[i].updated, &ts) == 0)
                break;
        }
    }
    for (uint32_t j = 0; j < p->ndrop; j++) {
        close(p->drop_fd[j]);
        net_unlink_unix((const struct sockaddr *)&p->drop_addr[j].ss);
    }
    /* The ls arrays now belong to the workers. */
    plan_free(p, n, false);
}

/* Installs a start-up plan directly: no worker runs yet. */
static void plan_install(struct listen_plan *p, struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        ws[i].ls = p->u[i].ls;
        ws[i].nls = p->u[i].nls;
        for (uint32_t k = 0; k < ws[i].nls; k++)
            ws[i].ls[k]->frontend = p->u[i].frontend[k];
    }
    plan_free(p, n, false);
}

/* Closes the sockets workers did not close themselves: shared unix
 * listeners, and everything of workers that never ran. */
static void listeners_destroy(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < ws[i].nls; k++) {
            struct wlistener *l = ws[i].ls[k];

            if (l->fd >= 0 && (l->owned || i == 0))
                close(l->fd);
            l->fd = -1;
        }
    }
}

/* Removes the files of unix listeners. */
static void unix_paths_remove(const struct config *cfg)
{
    for (size_t f = 0; f < cfg->nfrontends; f++) {
        for (size_t b = 0; b < cfg->frontends[f].nbinds; b++)
            net_unlink_unix((const struct sockaddr *)&cfg->frontends[f].binds[b].ss);
    }
}

static void workers_free(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        conn_set_fini(&ws[i].cs);
        for (uint32_t k = 0; k < ws[i].nls; k++)
            lb_free(ws[i].ls[k]);
        lb_free(ws[i].ls);
        while (ws[i].closed_ls) {
            struct wlistener *l = ws[i].closed_ls;

            ws[i].closed_ls = l->next;
            lb_free(l);
        }
        lb_free(ws[i].held);
        if (ws[i].wake_fd >= 0)
            close(ws[i].wake_fd);
        sem_destroy(&ws[i].ready);
        sem_destroy(&ws[i].updated);
    }
    lb_free(ws);
}

int workers_create(const struct config *cfg, uint32_t n, const struct listen_inherit *inh,
                   struct worker **out)
{
    struct worker *ws = lb_calloc(n, sizeof(*ws));
    cpu_set_t allowed;
    struct listen_plan *plan;
    int cpus[CPU_SETSIZE], ncpus = 0, ret;

    if (!ws)
        return -ENOMEM;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &allowed))
                cpus[ncpus++] = c;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        ws[i].wake_fd = -1;
        sem_init(&ws[i].ready, 0, 0);
        sem_init(&ws[i].updated, 0, 0);
    }
    for (uint32_t i = 0; i < n; i++) {
        ws[i].id = i;
        ws[i].cpu = ncpus && cfg->global.pin_workers ? cpus[i % (uint32_t)ncpus] : -1;
        ws[i].qsbr_slot = -1;
        ws[i].buffers = cfg->global.buffers;
        ws[i].nworkers = n;
        ws[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ws[i].wake_fd < 0) {
            ret = -errno;
            goto err;
        }
        /* The loop is the worker thread's and set once it runs. */
        ret = conn_set_init(&ws[i].cs, NULL, i, 0x9e3779b97f4a7c15ULL * (i + 1), on_conn_closed);
        if (ret < 0)
            goto err;
    }
    ret = plan_build(ws, n, cfg, inh, &plan);
    if (ret < 0)
        goto err;
    plan_install(plan, ws, n);
    *out = ws;
    return 0;
err:
    workers_free(ws, n);
    return ret;
}

int workers_start(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        int ret = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);

        if (ret != 0) {
            log_error("cannot start worker %u: %s", i, strerror(ret));
            return -ret;
        }
        ws[i].started = true;
        /* After this, ws[i].loop is set (or the worker failed) and main may
         * call loop_wake() on it. */
        while (sem_wait(&ws[i].ready) < 0 && errno == EINTR)
            ;
        if (ws[i].exit_code)
            return -EIO;
    }
    return 0;
}

void workers_stop(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        atomic_store_explicit(&ws[i].stop, true, memory_order_release);
        worker_wake(&ws[i]);
    }
}

void workers_hand_over(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        atomic_store_explicit(&ws[i].hand_over, true, memory_order_relaxed);
    workers_stop(ws, n);
}

bool workers_released(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!atomic_load_explicit(&ws[i].released, memory_order_acquire) &&
            !atomic_load_explicit(&ws[i].done, memory_order_acquire))
            return false;
    }
    return true;
}

void workers_sweep(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        atomic_store_explicit(&ws[i].sweep, true, memory_order_release);
        worker_wake(&ws[i]);
    }
}

int workers_join(struct worker *ws, uint32_t n)
{
    int failed = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        failed |= ws[i].exit_code;
    }
    listeners_destroy(ws, n);
    /* After a hand-over the new process listens on those paths. */
    if (!n || !atomic_load_explicit(&ws[0].hand_over, memory_order_relaxed))
        unix_paths_remove(lb_rt.cfg);
    return failed;
}

void workers_destroy(struct worker *ws, uint32_t n)
{
    if (ws)
        workers_free(ws, n);
}
