/*
 * rt.c - worker threads, nanosecond timers, run phases and the progress line.
 */
#include "rt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../core/alloc.h"

/* How long a worker may take, after the stop, to close its connections
 * (throughput waits here for echoed bytes still in flight). */
#define STOP_GRACE_NS (10ULL * 1000000000ULL)
/* A sleeping worker still looks at the phase this often. */
#define MAX_WAIT_MS 100

uint64_t rb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void rb_signals_init(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int rb_timer_arm(struct rb_worker *w, struct timer *t, uint64_t deadline_ns)
{
    return timer_arm(&w->ft, t, deadline_ns);
}

void rb_timer_disarm(struct rb_worker *w, struct timer *t)
{
    timer_disarm(&w->ft, t);
}

static void on_tfd(struct loop_op *op, int res, unsigned flags)
{
    struct rb_worker *w = (struct rb_worker *)((char *)op - offsetof(struct rb_worker, tfd_op));
    uint64_t n;

    (void)res;
    (void)flags;
    /* A one-shot absolute timer that fired is disarmed; clear its count. */
    if (read(w->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        w->err = -errno;
    w->tfd_armed = 0;
}

/*
 * Runs due timers, then points the timerfd at the next deadline. Called
 * once per loop turn; a timerfd_settime only when the earliest deadline
 * changed, so a steady schedule costs one system call per wake-up.
 */
static void timers_service(struct rb_worker *w, bool busy)
{
    struct itimerspec its;
    uint64_t next;

    if (!w->ft.n)
        return;
    timer_run(&w->ft, rb_now_ns());
    next = timer_next(&w->ft);
    if (next == TIMER_NONE || busy || w->seen == RB_PH_STOP)
        return;
    if (next != w->tfd_armed) {
        memset(&its, 0, sizeof(its));
        its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
        its.it_value.tv_nsec = (long)(next % 1000000000ULL);
        if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
            w->tfd_armed = next;
    }
    if (!w->tfd_op.inflight)
        loop_submit_poll(w->loop, &w->tfd_op, w->tfd, false);
}

static int worker_setup(struct rb_worker *w)
{
    const struct rb_opts *o = w->run->o;
    struct loop_params lp = {.buf_size = w->run->role->buf_size,
                             .buf_count = o->buffers ? o->buffers : w->run->role->buf_count,
                             .entries = 1024,
                             .wake_fd = w->wake_fd};
    enum loop_backend b = o->io == RB_IO_EPOLL ? LOOP_EPOLL : LOOP_URING;
    const char *why = "";
    int ret;

    /* The default 50 us of timer slack would blur a microsecond schedule. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (b == LOOP_URING && loop_uring_probe(&why) < 0) {
        if (o->io == RB_IO_URING) {
            fprintf(stderr, "ringbench: io_uring unavailable: %s\n", why);
            return -ENOTSUP;
        }
        b = LOOP_EPOLL;
    }
    ret = loop_create(b, &lp, &w->loop);
    if (ret < 0) {
        fprintf(stderr, "ringbench: worker %u: cannot create its loop: %s\n", w->id,
                strerror(-ret));
        return ret;
    }
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tfd < 0)
        return -errno;
    w->tfd_op.cb = on_tfd;
    return w->run->role->start(w);
}

static void *worker_main(void *arg)
{
    struct rb_worker *w = arg;
    struct rb_run *r = w->run;
    bool busy = r->o->busy_poll;
    uint64_t stop_deadline = 0;

    timer_heap_init(&w->ft);
    w->err = worker_setup(w);
    atomic_fetch_add(&r->started, 1);
    if (w->err < 0)
        goto out;
    for (;;) {
        enum rb_phase ph = (enum rb_phase)atomic_load_explicit(&r->phase, memory_order_acquire);
        int ret;

        if (ph != w->seen) {
            w->seen = ph;
            r->role->phase(w, ph);
            if (ph == RB_PH_STOP)
                stop_deadline = rb_now_ns() + STOP_GRACE_NS;
        }
        if (w->seen == RB_PH_STOP && r->role->done(w))
            break;
        if (stop_deadline && rb_now_ns() > stop_deadline) {
            w->timed_out = true;
            break;
        }
        ret = loop_run_once(w->loop, busy ? 0 : MAX_WAIT_MS);
        if (ret < 0) {
            fprintf(stderr, "ringbench: worker %u: loop failed: %s\n", w->id, strerror(-ret));
            w->err = ret;
            break;
        }
        timers_service(w, busy);
        if (r->role->turn)
            r->role->turn(w);
    }
out:
    if (w->loop) {
        uint64_t end = rb_now_ns() + 1000000000ULL;

        loop_cancel(w->loop, &w->tfd_op);
        while (w->tfd_op.inflight && rb_now_ns() < end)
            loop_run_once(w->loop, 10);
        if (w->tfd >= 0)
            loop_close(w->loop, w->tfd);
        /* Submits the queued closes before the ring goes away. */
        loop_run_once(w->loop, 0);
        loop_destroy(w->loop);
        w->loop = NULL;
    } else if (w->tfd >= 0) {
        close(w->tfd);
    }
    w->tfd = -1;
    timer_heap_free(&w->ft);
    return NULL;
}

uint32_t rb_workers_for(const struct rb_opts *o, uint32_t want)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (o->workers)
        return o->workers;
    if (n < 1)
        n = 1;
    return want < (uint32_t)n ? (want ? want : 1) : (uint32_t)n;
}

static void wake_all(struct rb_run *r)
{
    uint64_t one = 1;

    for (uint32_t i = 0; i < r->nworkers; i++) {
        if (r->w[i].wake_fd >= 0 && write(r->w[i].wake_fd, &one, sizeof(one)) < 0 &&
            errno != EAGAIN)
            perror("ringbench: eventfd write");
    }
}

static void set_phase(struct rb_run *r, enum rb_phase ph)
{
    atomic_store_explicit(&r->phase, ph, memory_order_release);
    wake_all(r);
}

int rb_run_start(struct rb_run *r, const struct rb_opts *o, const struct rb_role *role,
                 uint32_t nworkers, void *arg)
{
    int ret = 0;
    uint32_t n;

    r->o = o;
    r->role = role;
    r->arg = arg;
    r->nworkers = 0;
    r->nthreads = 0;
    r->interrupted = false;
    atomic_store(&r->phase, RB_PH_WARMUP);
    atomic_store(&r->started, 0);
    r->w = lb_calloc(nworkers, sizeof(*r->w));
    if (!r->w)
        return -ENOMEM;
    /*
     * Every field a worker reads is final before the first thread starts
     * (pthread_create orders these writes before the thread's first
     * instruction). A role's start() spreads connections with
     * `i += run->nworkers`: counting workers up while they already run
     * let worker 0 see 0 (opening connection 0 again and again until the
     * count moved) or 1 (opening every connection, duplicating worker 1's).
     */
    r->nworkers = nworkers;
    for (n = 0; n < nworkers; n++) {
        r->w[n].id = n;
        r->w[n].run = r;
        r->w[n].tfd = -1;
        r->w[n].wake_fd = -1;
    }
    for (n = 0; n < nworkers; n++) {
        r->w[n].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (r->w[n].wake_fd < 0) {
            ret = -errno;
            goto err;
        }
    }
    for (n = 0; n < nworkers; n++) {
        ret = -pthread_create(&r->w[n].th, NULL, worker_main, &r->w[n]);
        if (ret < 0)
            goto err;
        r->nthreads++;
    }
    while (atomic_load(&r->started) < nworkers)
        usleep(1000);
    for (n = 0; n < nworkers; n++) {
        if (r->w[n].err < 0) {
            ret = r->w[n].err;
            goto err;
        }
    }
    r->t_start = rb_now_ns();
    return 0;
err:
    rb_run_join(r);
    rb_run_free(r);
    return ret;
}

/* Sleeps until <deadline> or a signal; returns false on a signal. */
static bool sleep_until(struct rb_run *r, uint64_t deadline)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        uint64_t now = rb_now_ns();
        struct timespec ts;

        if (now >= deadline)
            return true;
        ts.tv_sec = (time_t)((deadline - now) / 1000000000ULL);
        ts.tv_nsec = (long)((deadline - now) % 1000000000ULL);
        if (sigtimedwait(&set, NULL, &ts) > 0) {
            r->interrupted = true;
            return false;
        }
    }
}

/* Sums the workers' progress counters. */
static void progress_sum(struct rb_run *r, uint64_t *count, uint64_t *bytes, uint64_t *errors)
{
    *count = *bytes = *errors = 0;
    for (uint32_t i = 0; i < r->nworkers; i++) {
        *count += atomic_load_explicit(&r->w[i].p_count, memory_order_relaxed);
        *bytes += atomic_load_explicit(&r->w[i].p_bytes, memory_order_relaxed);
        *errors += atomic_load_explicit(&r->w[i].p_errors, memory_order_relaxed);
    }
}

/*
 * One line on stderr, rewritten in place at most once a second, only on a
 * terminal: a log file or a pipe gets nothing, so --json output and CI logs
 * stay clean.
 */
static void sleep_with_progress(struct rb_run *r, uint64_t deadline, const char *what,
                                uint64_t total_ns)
{
    bool tty = !r->o->quiet && isatty(STDERR_FILENO);
    uint64_t begin = rb_now_ns(), last_c = 0, last_b = 0, last_t = begin;

    if (tty)
        progress_sum(r, &last_c, &last_b, &(uint64_t){0});
    while (rb_now_ns() < deadline) {
        uint64_t next = rb_now_ns() + 1000000000ULL, c, b, e, now;
        double dt;

        if (!sleep_until(r, next < deadline ? next : deadline))
            break;
        if (!tty)
            continue;
        progress_sum(r, &c, &b, &e);
        now = rb_now_ns();
        dt = (double)(now - last_t) / 1e9;
        if (strcmp(r->unit, "Gbit/s") == 0)
            fprintf(stderr, "\r%-8s %5.1f/%.0fs  %8.2f Gbit/s  errors %llu   ", what,
                    (double)(now - begin) / 1e9, (double)total_ns / 1e9,
                    (double)(b - last_b) * 8 / dt / 1e9, (unsigned long long)e);
        else
            fprintf(stderr, "\r%-8s %5.1f/%.0fs  %10.0f %s  errors %llu   ", what,
                    (double)(now - begin) / 1e9, (double)total_ns / 1e9, (double)(c - last_c) / dt,
                    r->unit, (unsigned long long)e);
        last_c = c;
        last_b = b;
        last_t = now;
    }
    if (tty)
        fprintf(stderr, "\r%70s\r", "");
}

void rb_run_timed(struct rb_run *r)
{
    const struct rb_opts *o = r->o;
    uint64_t now = rb_now_ns();

    if (o->warmup_ns)
        sleep_with_progress(r, now + o->warmup_ns, "warm-up", o->warmup_ns);
    r->t_measure = rb_now_ns();
    if (!r->interrupted) {
        set_phase(r, RB_PH_MEASURE);
        sleep_with_progress(r, r->t_measure + o->duration_ns, "measure", o->duration_ns);
    }
    r->t_stop = rb_now_ns();
    set_phase(r, RB_PH_STOP);
}

void rb_run_until_signal(struct rb_run *r)
{
    set_phase(r, RB_PH_MEASURE);
    sleep_until(r, UINT64_MAX);
    r->t_stop = rb_now_ns();
}

void rb_run_join(struct rb_run *r)
{
    if (!r->w)
        return;
    set_phase(r, RB_PH_STOP);
    for (uint32_t i = 0; i < r->nthreads; i++)
        pthread_join(r->w[i].th, NULL);
    r->nthreads = 0;
    for (uint32_t i = 0; i < r->nworkers; i++) {
        if (r->w[i].wake_fd >= 0)
            close(r->w[i].wake_fd);
        r->w[i].wake_fd = -1;
    }
}

void rb_run_free(struct rb_run *r)
{
    for (uint32_t i = 0; r->w && i < r->nworkers; i++)
        r->role->fini(&r->w[i]);
    lb_free(r->w);
    r->w = NULL;
    r->nworkers = 0;
}

void rb_conns_init(struct rb_conns *l, void (*free_fn)(struct rb_conn *c))
{
    l->live.next = l->live.prev = &l->live;
    l->zombies = NULL;
    l->nlive = 0;
    l->free_fn = free_fn;
}

void rb_conns_add(struct rb_conns *l, struct rb_conn *c)
{
    c->next = l->live.next;
    c->prev = &l->live;
    l->live.next->prev = c;
    l->live.next = c;
    l->nlive++;
}

void rb_conn_close(struct rb_worker *w, struct rb_conns *l, struct rb_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    rb_timer_disarm(w, &c->t);
    for (int i = 0; i < RB_CONN_OPS; i++) {
        if (c->ops[i])
            loop_cancel(w->loop, c->ops[i]);
    }
    loop_close(w->loop, c->fd);
    c->fd = -1;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    l->nlive--;
    c->next = l->zombies;
    l->zombies = c;
}

void rb_conns_close_all(struct rb_worker *w, struct rb_conns *l)
{
    while (l->live.next != &l->live)
        rb_conn_close(w, l, l->live.next);
}

static bool conn_busy(const struct rb_conn *c)
{
    for (int i = 0; i < RB_CONN_OPS; i++) {
        if (c->ops[i] && c->ops[i]->inflight)
            return true;
    }
    return false;
}

void rb_conns_reap(struct rb_conns *l)
{
    struct rb_conn **pp = &l->zombies;

    while (*pp) {
        struct rb_conn *c = *pp;

        if (conn_busy(c)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        l->free_fn(c);
    }
}

void rb_conns_drop(struct rb_conns *l)
{
    while (l->live.next != &l->live) {
        struct rb_conn *c = l->live.next;

        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (c->fd >= 0)
            close(c->fd);
        l->free_fn(c);
    }
    l->nlive = 0;
    while (l->zombies) {
        struct rb_conn *c = l->zombies;

        l->zombies = c->next;
        l->free_fn(c);
    }
}

bool rb_conns_empty(const struct rb_conns *l)
{
    return l->nlive == 0 && !l->zombies;
}
