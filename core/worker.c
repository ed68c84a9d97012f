/*
 * worker.c - worker threads: listeners, accept, max_conns, shutdown.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "qsbr.h"

#define TICK_MS           100
#define ACCEPT_BACKOFF_MS 100
#define PIPE_CACHE_MAX    64
/* Longest wait in the loop: also bounds how late QSBR sees us quiescent. */
#define MAX_WAIT_MS 500

struct lb_runtime lb_rt;

static void accept_arm(struct wlistener *l)
{
    if (l->armed || l->fd < 0 || l->w->stopping || l->w->accept_paused || timer_armed(&l->backoff))
        return;
    l->armed = true;
    loop_submit_accept(l->w->loop, &l->op, l->fd);
}

static void accept_pause(struct worker *w)
{
    if (w->accept_paused)
        return;
    w->accept_paused = true;
    log_debug("worker %u: max_conns %u reached, pausing accept", w->id, lb_rt.max_conns);
    for (uint32_t i = 0; i < w->nls; i++)
        loop_cancel(w->loop, &w->ls[i].op);
}

/* Reserves a global connection slot; false when max_conns is reached. */
static bool slot_take(void)
{
    uint32_t cur = atomic_load_explicit(&lb_rt.active, memory_order_relaxed);

    do {
        if (cur >= lb_rt.max_conns)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&lb_rt.active, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

static int hold(struct worker *w, int fd, uint32_t listener)
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
    w->held[w->nheld].listener = listener;
    w->nheld++;
    return 0;
}

/* Serves held clients and resumes accepting when slots are free again. */
static void accept_resume(struct worker *w)
{
    if (w->stopping)
        return;
    while (w->nheld && slot_take()) {
        struct held_client h = w->held[0];

        memmove(w->held, w->held + 1, (w->nheld - 1) * sizeof(*w->held));
        w->nheld--;
        conn_accept(w, h.fd, &w->ls[h.listener]);
    }
    if (w->nheld || !w->accept_paused)
        return;
    if (atomic_load_explicit(&lb_rt.active, memory_order_relaxed) >= lb_rt.max_conns)
        return;
    w->accept_paused = false;
    log_debug("worker %u: below max_conns, accepting again", w->id);
    for (uint32_t i = 0; i < w->nls; i++)
        accept_arm(&w->ls[i]);
}

void worker__conn_closed(struct worker *w)
{
    atomic_fetch_sub_explicit(&lb_rt.active, 1, memory_order_relaxed);
    if (w->nheld || w->accept_paused)
        accept_resume(w);
}

static void on_backoff(struct timer *t, uint64_t now)
{
    struct wlistener *l = (struct wlistener *)((char *)t - offsetof(struct wlistener, backoff));

    (void)now;
    accept_arm(l);
}

static void on_accept(struct loop_op *op, int res, unsigned flags)
{
    struct wlistener *l = (struct wlistener *)((char *)op - offsetof(struct wlistener, op));
    struct worker *w = l->w;

    if (!(flags & LOOP_F_MORE))
        l->armed = false;
    if (res >= 0) {
        atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&metrics_fes[l->frontend].accepted, 1, memory_order_relaxed);
        if (w->stopping) {
            close(res);
        } else if (slot_take()) {
            conn_accept(w, res, l);
        } else {
            /* The kernel handed us one more than max_conns allows: keep it
             * unserved, like the backlog would, rather than drop it. */
            if (hold(w, res, (uint32_t)(l - w->ls)) < 0) {
                log_warn("worker %u: cannot hold client over max_conns, closing it", w->id);
                close(res);
            }
            accept_pause(w);
        }
        if (!l->armed)
            accept_arm(l);
        return;
    }
    if (res == -ECANCELED || w->stopping)
        return;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        /* Retrying at once would spin: give closing connections time to
         * free descriptors, and say so (once per backoff period). */
        log_warn("worker %u: accept on %s: %s, pausing %d ms", w->id,
                 lb_rt.cfg->frontends[l->frontend].name, strerror(-res), ACCEPT_BACKOFF_MS);
    } else {
        log_error("worker %u: accept on %s: %s", w->id, lb_rt.cfg->frontends[l->frontend].name,
                  strerror(-res));
    }
    if (timer_arm(loop_timers(w->loop), &l->backoff, loop_now(w->loop) + ACCEPT_BACKOFF_MS) < 0)
        accept_arm(l);
}

static void listeners_close(struct worker *w)
{
    for (uint32_t i = 0; i < w->nls; i++) {
        struct wlistener *l = &w->ls[i];

        timer_disarm(loop_timers(w->loop), &l->backoff);
        loop_cancel(w->loop, &l->op);
        if (l->owned && l->fd >= 0)
            loop_close(w->loop, l->fd);
        l->fd = -1;
    }
}

static void on_tick(struct timer *t, uint64_t now)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, tick));

    /* Other workers free slots without telling us: look again. */
    if (w->nheld || w->accept_paused)
        accept_resume(w);
    /* The checker marked a server with on_down_close down: one scan of our
     * connections, only then, so the common tick costs one load. */
    if (atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire) != w->close_gen) {
        w->close_gen = atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire);
        conn_close_downed(w);
    }
    if (timer_arm(loop_timers(w->loop), &w->tick, now + TICK_MS) < 0)
        log_warn("worker %u: cannot re-arm its tick", w->id);
}

static void begin_stop(struct worker *w)
{
    w->stopping = true;
    w->stop_deadline = loop_now(w->loop) + lb_rt.cfg->global.shutdown_grace_ms;
    listeners_close(w);
    for (uint32_t i = 0; i < w->nheld; i++)
        close(w->held[i].fd);
    w->nheld = 0;
    if (w->nconns)
        log_info("worker %u: stopping, waiting for %u connection(s)", w->id, w->nconns);
}

static void pin(struct worker *w)
{
    cpu_set_t set;

    if (w->cpu < 0 || getenv("RINGLB_NOPIN"))
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
        .buf_size = 16384, .buf_count = 1024, .entries = 1024, .wake_fd = w->wake_fd};
    int ret;

    pin(w);
    ret = loop_create(lb_rt.backend, &lp, &w->loop);
    if (ret < 0) {
        log_error("worker %u: cannot create its event loop: %s", w->id, strerror(-ret));
        w->exit_code = 1;
        atomic_store_explicit(&w->done, true, memory_order_release);
        sem_post(&w->ready);
        return NULL;
    }
    sem_post(&w->ready);
    w->qsbr_slot = qsbr_register();
    w->close_gen = atomic_load_explicit(&lb_rt.close_gen, memory_order_acquire);
    timer_init(&w->tick, on_tick);
    timer_arm(loop_timers(w->loop), &w->tick, loop_now(w->loop) + TICK_MS);
    for (uint32_t i = 0; i < w->nls; i++)
        accept_arm(&w->ls[i]);
    for (;;) {
        if (!w->stopping && atomic_load_explicit(&w->stop, memory_order_acquire))
            begin_stop(w);
        if (w->stopping) {
            if (w->nconns && loop_now(w->loop) >= w->stop_deadline) {
                log_warn("worker %u: shutdown grace over, closing %u connection(s)", w->id,
                         w->nconns);
                conn_abort_all(w);
            }
            if (!w->nconns && !w->closing)
                break;
        }
        ret = loop_run_once(w->loop, MAX_WAIT_MS);
        if (ret < 0) {
            log_error("worker %u: event loop failed: %s", w->id, strerror(-ret));
            w->exit_code = 1;
            conn_abort_all(w);
            break;
        }
        conn_reap(w);
        atomic_fetch_add_explicit(&w->loops, 1, memory_order_relaxed);
        atomic_store_explicit(&w->nconns_pub, w->nconns, memory_order_relaxed);
        if (w->qsbr_slot >= 0)
            qsbr_quiescent(w->qsbr_slot);
    }
    /* Drain the cancellations issued above before the loop goes away. */
    for (int i = 0; i < 100 && (w->closing || w->nls); i++) {
        bool busy = false;

        for (uint32_t j = 0; j < w->nls; j++)
            busy |= w->ls[j].op.inflight;
        if (!busy && !w->closing)
            break;
        loop_run_once(w->loop, 10);
        conn_reap(w);
    }
    if (w->qsbr_slot >= 0)
        qsbr_unregister(w->qsbr_slot);
    loop_destroy(w->loop);
    w->loop = NULL;
    atomic_store_explicit(&w->done, true, memory_order_release);
    return NULL;
}

int worker__pipe_get(struct worker *w, struct pipe_pair *p)
{
    int fds[2];

    if (w->npipes) {
        *p = w->pipes[--w->npipes];
        return 0;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

void worker__pipe_put(struct worker *w, struct pipe_pair *p, bool empty)
{
    if (empty && w->npipes < PIPE_CACHE_MAX) {
        w->pipes[w->npipes++] = *p;
        return;
    }
    close(p->rd);
    close(p->wr);
}

/* Listening sockets: one per worker and bind with SO_REUSEPORT, so the
 * kernel spreads clients over workers; a unix socket is shared instead. */
static int listeners_create(const struct config *cfg, struct worker *ws, uint32_t n)
{
    uint32_t nls = 0;

    for (size_t f = 0; f < cfg->nfrontends; f++)
        nls += (uint32_t)cfg->frontends[f].nbinds;
    for (uint32_t i = 0; i < n; i++) {
        ws[i].ls = lb_calloc(nls, sizeof(*ws[i].ls));
        if (!ws[i].ls)
            return -ENOMEM;
        ws[i].nls = nls;
    }
    for (size_t f = 0, k = 0; f < cfg->nfrontends; f++) {
        const struct cfg_frontend *fe = &cfg->frontends[f];

        for (size_t b = 0; b < fe->nbinds; b++, k++) {
            const struct cfg_addr *a = &fe->binds[b];
            bool shared = a->ss.ss_family == AF_UNIX;
            int shared_fd = -1;

            for (uint32_t i = 0; i < n; i++) {
                struct wlistener *l = &ws[i].ls[k];
                int fd = shared && i > 0
                             ? shared_fd
                             : net_listen((const struct sockaddr *)&a->ss, a->len, !shared);

                if (fd < 0) {
                    log_error("frontend %s: cannot listen on %s: %s", fe->name, fe->bind_texts[b],
                              strerror(-fd));
                    return fd;
                }
                shared_fd = fd;
                l->w = &ws[i];
                l->fd = fd;
                l->frontend = (uint32_t)f;
                l->owned = !shared;
                l->op.cb = on_accept;
                timer_init(&l->backoff, on_backoff);
            }
            log_info("frontend %s: listening on %s", fe->name, fe->bind_texts[b]);
        }
    }
    return 0;
}

/* Closes sockets the workers did not close themselves: shared unix
 * listeners, and everything when start-up failed. */
static void listeners_destroy(struct worker *ws, uint32_t n, bool all)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < ws[i].nls; k++) {
            struct wlistener *l = &ws[i].ls[k];

            if (l->fd >= 0 && (all ? (l->owned || i == 0) : (!l->owned && i == 0)))
                close(l->fd);
            l->fd = -1;
        }
    }
}

/* Removes the files of unix listeners. */
static void unix_paths_remove(const struct config *cfg)
{
    for (size_t f = 0; f < cfg->nfrontends; f++) {
        for (size_t b = 0; b < cfg->frontends[f].nbinds; b++) {
            const struct cfg_addr *a = &cfg->frontends[f].binds[b];

            if (a->ss.ss_family == AF_UNIX)
                unlink(((const struct sockaddr_un *)&a->ss)->sun_path);
        }
    }
}

static void workers_free(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        conn_free_cache(&ws[i]);
        for (uint32_t p = 0; p < ws[i].npipes; p++) {
            close(ws[i].pipes[p].rd);
            close(ws[i].pipes[p].wr);
        }
        lb_free(ws[i].pipes);
        lb_free(ws[i].ls);
        lb_free(ws[i].held);
        if (ws[i].wake_fd >= 0)
            close(ws[i].wake_fd);
        sem_destroy(&ws[i].ready);
    }
    lb_free(ws);
}

int workers_create(const struct config *cfg, uint32_t n, struct worker **out)
{
    struct worker *ws = lb_calloc(n, sizeof(*ws));
    cpu_set_t allowed;
    int cpus[CPU_SETSIZE], ncpus = 0, ret;

    if (!ws)
        return -ENOMEM;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &allowed))
                cpus[ncpus++] = c;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        ws[i].wake_fd = -1;
    for (uint32_t i = 0; i < n; i++) {
        ws[i].id = i;
        ws[i].cpu = ncpus ? cpus[i % (uint32_t)ncpus] : -1;
        ws[i].qsbr_slot = -1;
        ws[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
        sem_init(&ws[i].ready, 0, 0);
        ws[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ws[i].wake_fd < 0) {
            ret = -errno;
            goto err;
        }
        ws[i].pipes = lb_calloc(PIPE_CACHE_MAX, sizeof(*ws[i].pipes));
        if (!ws[i].pipes) {
            ret = -ENOMEM;
            goto err;
        }
    }
    ret = listeners_create(cfg, ws, n);
    if (ret < 0)
        goto err;
    *out = ws;
    return 0;
err:
    listeners_destroy(ws, n, true);
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
        uint64_t one = 1;

        /* EAGAIN: the counter is already non-zero, the worker will wake. */
        if (write(ws[i].wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_warn("cannot wake worker %u: %s", i, strerror(errno));
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
    listeners_destroy(ws, n, false);
    unix_paths_remove(lb_rt.cfg);
    workers_free(ws, n);
    return failed;
}
