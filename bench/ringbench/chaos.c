/*
 * chaos.c - `ringbench chaos` (see chaos.h): processes, the load, the
 * timeline, and the reports.
 *
 * Threads: the load runs on ringbench's worker runtime (rt.h), one loop per
 * worker, recording into per-worker arrays (counts per 100 ms tick, one
 * histogram per second) that the main thread merges after the run. The
 * main thread alone starts and signals processes, talks to the admin API
 * and plays the steps, waiting in sigtimedwait() for the next due time,
 * SIGCHLD, SIGINT or SIGTERM (all blocked in every thread).
 */
#include "chaos.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/alloc.h"
#include "../../core/net.h"
#include "pattern.h"
#include "report.h"
#include "rt.h"
#include "scenario.h"
#include "sched.h"

#define SEC_NS        1000000000ULL
#define MS_NS         1000000ULL
#define TICKS_PER_SEC (SEC_NS / RB_SCN_TICK_NS)
/* The load starts this long after its workers, leaving time for connects. */
#define START_DELAY_NS (100 * MS_NS)
/* A latency connection that failed is opened again after this pause, so a
 * target that is down costs a few failures, not a busy loop. */
#define RECONNECT_NS    (10 * MS_NS)
#define READY_NS        (15 * SEC_NS) /* ringlb and backends must be up by then */
#define HTTP_TIMEOUT_MS 2000
#define METRICS_MAX     (1u << 20)
#define MAX_WINDOWS     64
#define DESC_MAX        1200
/* /metrics is read this often when an assertion needs it. */
#define SAMPLE_NS (250 * MS_NS)
#define WORK_MAX  512 /* the work folder: short, so that paths in it always fit */

/* ================================================================ the load */

struct ld_cfg {
    const struct rb_scn_load *l;
    struct cfg_addr target;
    uint64_t t0;     /* the schedule's origin: second 0 of the timeline */
    uint32_t nticks; /* ticks recorded, the last one also takes what comes late */
};

enum lc_state { LC_CONNECTING = 0, LC_IDLE, LC_WAITING };

/* Failures counted by what went wrong, the first few kinds by name. */
#define NREASONS 6
struct reasons {
    char what[NREASONS][96];
    uint64_t n[NREASONS];
    uint64_t other;
};

static void reasons_add(struct reasons *r, const char *what, uint64_t n)
{
    for (unsigned i = 0; i < NREASONS; i++) {
        if (!r->what[i][0])
            snprintf(r->what[i], sizeof(r->what[i]), "%s", what);
        if (strcmp(r->what[i], what) == 0) {
            r->n[i] += n;
            return;
        }
    }
    r->other += n;
}

struct ld;
struct slot;

/* One client connection of the load. */
struct lconn {
    struct rb_conn base;
    struct ld *ld;
    struct slot *slot; /* latency: the slot it serves; NULL for connrate */
    struct loop_op cop, rx, tx;
    enum lc_state st;
    uint64_t intended; /* when the request in flight should have left */
    uint32_t got;      /* reply bytes received */
};

/* Latency: one of the load's connections, with its own send schedule that
 * outlives the connection (a request due while it reconnects goes out late
 * on the next one and is charged from when it was due). */
struct slot {
    struct ld *ld;
    struct rb_sched s;
    struct lconn *c;
    struct timer reopen;
};

struct ld {
    struct rb_worker *w;
    const struct ld_cfg *cfg;
    struct rb_conns conns;
    uint64_t *ok, *failed; /* per tick */
    struct rb_hist *hist;  /* per second; buckets allocated when first used */
    struct slot *slots;
    uint32_t nslots;
    struct rb_sched s;    /* connrate: this worker's share of the start schedule */
    struct timer start_t; /* connrate: the next start */
    bool stopping;
    char first_error[160];
    struct reasons why;
};

static uint32_t tick_of(const struct ld *ld, uint64_t now)
{
    uint64_t t = now > ld->cfg->t0 ? (now - ld->cfg->t0) / RB_SCN_TICK_NS : 0;

    return t < ld->cfg->nticks ? (uint32_t)t : ld->cfg->nticks - 1;
}

static void ld_ok(struct ld *ld, uint64_t now, uint64_t lat)
{
    uint32_t t = tick_of(ld, now);
    struct rb_hist *h = &ld->hist[t / TICKS_PER_SEC];

    ld->ok[t]++;
    atomic_fetch_add_explicit(&ld->w->p_count, 1, memory_order_relaxed);
    if (!h->counts && rb_hist_init(h) < 0)
        return; /* the count stands; this second's percentiles lack it */
    rb_hist_record(h, lat);
}

static void ld_fail(struct ld *ld, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ld_fail(struct ld *ld, uint64_t now, const char *fmt, ...)
{
    va_list ap;
    char what[96];

    ld->failed[tick_of(ld, now)]++;
    atomic_fetch_add_explicit(&ld->w->p_errors, 1, memory_order_relaxed);
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    reasons_add(&ld->why, what, 1);
    if (!ld->first_error[0])
        snprintf(ld->first_error, sizeof(ld->first_error), "%.1f s: %s",
                 now > ld->cfg->t0 ? (double)(now - ld->cfg->t0) / 1e9 : 0.0, what);
}

static struct lconn *lc_of(struct loop_op *op, size_t off)
{
    return (struct lconn *)((char *)op - off);
}

static void lc_free(struct rb_conn *b)
{
    lb_free(b);
}

static void slot_schedule_reopen(struct slot *sl, uint64_t now)
{
    if (!sl->ld->stopping && rb_timer_arm(sl->ld->w, &sl->reopen, now + RECONNECT_NS) < 0)
        ld_fail(sl->ld, now, "out of memory");
}

/* Closes <c>; a latency slot opens a new connection shortly. */
static void lc_close(struct lconn *c, uint64_t now)
{
    struct slot *sl = c->slot;

    rb_conn_close(c->ld->w, &c->ld->conns, &c->base);
    if (sl) {
        sl->c = NULL;
        c->slot = NULL;
        slot_schedule_reopen(sl, now);
    }
}

static void lc_fail(struct lconn *c, uint64_t now, const char *what, int err)
{
    if (err)
        ld_fail(c->ld, now, "%s: %s", what, strerror(err));
    else
        ld_fail(c->ld, now, "%s", what);
    lc_close(c, now);
}

static void lc_arm(struct lconn *c, uint64_t deadline)
{
    if (rb_timer_arm(c->ld->w, &c->base.t, deadline) < 0)
        lc_fail(c, rb_now_ns(), "out of memory", 0);
}

/* Sends a request (see client.c's send_request: a non-blocking send(2)
 * takes it whole in the common case; the loop finishes the rest). */
static void lc_send(struct lconn *c, uint64_t intended, uint64_t now)
{
    uint32_t size = c->ld->cfg->l->size;
    const uint8_t *req = rb_pattern_at(0);
    ssize_t n;

    c->intended = intended;
    c->got = 0;
    c->st = LC_WAITING;
    do {
        n = send(c->base.fd, req, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
        lc_fail(c, now, "send", errno);
        return;
    }
    if (n < (ssize_t)size) {
        n = n < 0 ? 0 : n;
        loop_submit_send(c->ld->w->loop, &c->tx, c->base.fd, req + n, size - (uint32_t)n);
    }
    lc_arm(c, now + c->ld->cfg->l->timeout_ns);
}

/* Latency: sends the next request when it is due, else waits for it. */
static void lat_maybe_send(struct lconn *c, uint64_t now)
{
    struct rb_sched *s = &c->slot->s;
    uint64_t due;

    if (c->base.closing || c->st != LC_IDLE || c->ld->stopping)
        return;
    due = rb_sched_peek(s);
    if (due <= now)
        lc_send(c, rb_sched_next(s), now);
    else
        lc_arm(c, due);
}

static void lc_on_timer(struct timer *t, uint64_t now)
{
    struct lconn *c = (struct lconn *)((char *)t - offsetof(struct lconn, base.t));

    switch (c->st) {
    case LC_CONNECTING:
        lc_fail(c, now, "connect: no answer within the load's timeout", 0);
        break;
    case LC_WAITING:
        lc_fail(c, now, "no reply within the load's timeout", 0);
        break;
    case LC_IDLE:
        lat_maybe_send(c, now);
        break;
    }
}

static void lc_on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct lconn *c = lc_of(op, offsetof(struct lconn, rx));
    struct loop *loop = c->ld->w->loop;
    uint32_t size = c->ld->cfg->l->size;
    uint64_t now = rb_now_ns();
    long bad;

    if (!(flags & LOOP_F_BUF)) {
        if (c->base.closing)
            return;
        /* The end of an idle connection is no failed request: the next
         * one goes out on a new connection. */
        if (c->st != LC_WAITING)
            lc_close(c, now);
        else if (res == 0)
            lc_fail(c, now, "connection closed before the reply was complete", 0);
        else
            lc_fail(c, now, "receive", -res);
        return;
    }
    if (c->base.closing || res <= 0) {
        loop_buf_put(loop, op->bid);
        return;
    }
    if (c->st != LC_WAITING || c->got + (uint32_t)res > size) {
        loop_buf_put(loop, op->bid);
        lc_fail(c, now, "the target sent more bytes than the request had", 0);
        return;
    }
    bad = rb_pattern_check(c->got, loop_buf(loop, op->bid), (size_t)res);
    loop_buf_put(loop, op->bid);
    if (bad >= 0) {
        lc_fail(c, now, "a reply byte differs from the request", 0);
        return;
    }
    c->got += (uint32_t)res;
    if (!(flags & LOOP_F_MORE) && (c->slot || c->got < size))
        loop_submit_recv(loop, &c->rx, c->base.fd);
    if (c->got < size)
        return;
    ld_ok(c->ld, now, now - c->intended);
    if (!c->slot) {
        rb_conn_close(c->ld->w, &c->ld->conns, &c->base); /* connrate: one exchange */
        return;
    }
    c->st = LC_IDLE;
    rb_timer_disarm(c->ld->w, &c->base.t);
    lat_maybe_send(c, now);
}

static void lc_on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct lconn *c = lc_of(op, offsetof(struct lconn, tx));

    (void)flags;
    if (!c->base.closing && res < 0)
        lc_fail(c, rb_now_ns(), "send", -res);
}

static void lc_on_conn(struct loop_op *op, int res, unsigned flags)
{
    struct lconn *c = lc_of(op, offsetof(struct lconn, cop));
    uint64_t now = rb_now_ns();

    (void)flags;
    if (c->base.closing)
        return;
    if (res < 0) {
        lc_fail(c, now, "connect", -res);
        return;
    }
    loop_submit_recv(c->ld->w->loop, &c->rx, c->base.fd);
    if (c->slot) {
        c->st = LC_IDLE;
        rb_timer_disarm(c->ld->w, &c->base.t);
        lat_maybe_send(c, now);
    } else {
        lc_send(c, c->intended, now);
    }
}

/* Opens a connection for <sl> (latency) or for one exchange started at
 * <intended> (connrate). NULL when no socket could be made (counted). */
static struct lconn *lc_open(struct ld *ld, struct slot *sl, uint64_t intended, uint64_t now)
{
    const struct cfg_addr *a = &ld->cfg->target;
    struct lconn *c = lb_calloc(1, sizeof(*c));
    int fd;

    if (!c) {
        ld_fail(ld, now, "out of memory");
        return NULL;
    }
    fd = net_connect_socket((const struct sockaddr *)&a->ss);
    if (fd < 0) {
        ld_fail(ld, now, "socket: %s", strerror(-fd));
        lb_free(c);
        return NULL;
    }
    c->ld = ld;
    c->slot = sl;
    c->intended = intended;
    c->st = LC_CONNECTING;
    c->base.fd = fd;
    c->base.ops[0] = &c->cop;
    c->base.ops[1] = &c->rx;
    c->base.ops[2] = &c->tx;
    c->cop.cb = lc_on_conn;
    c->rx.cb = lc_on_rx;
    c->tx.cb = lc_on_tx;
    timer_init(&c->base.t, lc_on_timer);
    rb_conns_add(&ld->conns, &c->base);
    loop_submit_connect(ld->w->loop, &c->cop, fd, (const struct sockaddr *)&a->ss, a->len);
    lc_arm(c, now + ld->cfg->l->timeout_ns);
    return c;
}

static void slot_on_reopen(struct timer *t, uint64_t now)
{
    struct slot *sl = (struct slot *)((char *)t - offsetof(struct slot, reopen));

    if (sl->ld->stopping || sl->c)
        return;
    sl->c = lc_open(sl->ld, sl, 0, now);
    if (!sl->c)
        slot_schedule_reopen(sl, now);
}

static void cr_on_start(struct timer *t, uint64_t now)
{
    struct ld *ld = (struct ld *)((char *)t - offsetof(struct ld, start_t));

    if (ld->stopping)
        return;
    while (rb_sched_peek(&ld->s) <= now) {
        uint64_t intended = rb_sched_next(&ld->s);

        if (ld->conns.nlive >= RB_SCN_MAX_INFLIGHT)
            ld_fail(ld, now, "more than %d connections in flight", RB_SCN_MAX_INFLIGHT);
        else
            lc_open(ld, NULL, intended, now);
    }
    if (rb_timer_arm(ld->w, &ld->start_t, rb_sched_peek(&ld->s)) < 0)
        ld_fail(ld, now, "out of memory");
}

static int ld_start(struct rb_worker *w)
{
    const struct ld_cfg *cfg = w->run->arg;
    const struct rb_scn_load *l = cfg->l;
    uint32_t nsecs = cfg->nticks / TICKS_PER_SEC + 1, nw = w->run->nworkers;
    struct ld *ld = lb_calloc(1, sizeof(*ld));
    uint64_t now = rb_now_ns();

    if (!ld)
        return -ENOMEM;
    w->ctx = ld;
    ld->w = w;
    ld->cfg = cfg;
    rb_conns_init(&ld->conns, lc_free);
    timer_init(&ld->start_t, cr_on_start);
    ld->ok = lb_calloc(cfg->nticks, sizeof(*ld->ok));
    ld->failed = lb_calloc(cfg->nticks, sizeof(*ld->failed));
    ld->hist = lb_calloc(nsecs, sizeof(*ld->hist));
    if (!ld->ok || !ld->failed || !ld->hist)
        return -ENOMEM;
    if (l->kind == RB_LOAD_CONNRATE) {
        int ret = rb_sched_init(&ld->s, l->rate, nw, w->id, cfg->t0);

        if (ret < 0)
            return ret;
        return rb_timer_arm(w, &ld->start_t, rb_sched_peek(&ld->s));
    }
    ld->nslots = w->id < l->conns ? (l->conns - w->id + nw - 1) / nw : 0;
    ld->slots = lb_calloc(ld->nslots ? ld->nslots : 1, sizeof(*ld->slots));
    if (!ld->slots)
        return -ENOMEM;
    for (uint32_t k = 0; k < ld->nslots; k++) {
        struct slot *sl = &ld->slots[k];
        int ret = rb_sched_init(&sl->s, l->rate, l->conns, w->id + k * nw, cfg->t0);

        if (ret < 0)
            return ret;
        sl->ld = ld;
        timer_init(&sl->reopen, slot_on_reopen);
        sl->c = lc_open(ld, sl, 0, now);
        if (!sl->c)
            slot_schedule_reopen(sl, now);
    }
    return 0;
}

static void ld_phase(struct rb_worker *w, enum rb_phase ph)
{
    struct ld *ld = w->ctx;

    if (ph != RB_PH_STOP || !ld)
        return;
    ld->stopping = true;
    rb_timer_disarm(w, &ld->start_t);
    for (uint32_t k = 0; k < ld->nslots; k++)
        rb_timer_disarm(w, &ld->slots[k].reopen);
    rb_conns_close_all(w, &ld->conns);
}

static void ld_turn(struct rb_worker *w)
{
    struct ld *ld = w->ctx;

    rb_conns_reap(&ld->conns);
}

static bool ld_done(struct rb_worker *w)
{
    struct ld *ld = w->ctx;

    if (!ld)
        return true;
    rb_conns_reap(&ld->conns);
    return rb_conns_empty(&ld->conns);
}

static void ld_fini(struct rb_worker *w)
{
    struct ld *ld = w->ctx;

    if (!ld)
        return;
    rb_conns_drop(&ld->conns);
    for (uint32_t i = 0; ld->hist && i < ld->cfg->nticks / TICKS_PER_SEC + 1; i++)
        rb_hist_free(&ld->hist[i]);
    lb_free(ld->hist);
    lb_free(ld->ok);
    lb_free(ld->failed);
    lb_free(ld->slots);
    lb_free(ld);
    w->ctx = NULL;
}

static const struct rb_role load_role = {
    .start = ld_start,
    .phase = ld_phase,
    .turn = ld_turn,
    .done = ld_done,
    .fini = ld_fini,
    .buf_size = 16 * 1024,
    .buf_count = 1024,
};

/* ================================================================ the runner */

enum proc_state { PS_NONE = 0, PS_RUNNING, PS_STOPPED, PS_EXITED };

struct proc {
    enum proc_state state;
    pid_t pid;
    int status;    /* wait status once exited */
    bool expected; /* the runner ended it */
    char name[48];
    char log[WORK_MAX + 64];
    char addr[64]; /* backend: where it listens */
};

struct step_result {
    bool done, ok;
    uint64_t ran_ns;
    int hook; /* index into hooks[], -1 */
    char error[200];
};

struct window {
    char label[64];
    uint64_t from_ns, to_ns; /* to_ns = UINT64_MAX while open */
};

struct chaos {
    const struct rb_opts *o;
    struct rb_scn *s;
    char desc[DESC_MAX]; /* the scenario's leading comment */
    char dir[PATH_MAX], name[128], work[WORK_MAX], self[PATH_MAX], ringlb_bin[PATH_MAX];
    char frontend[64], admin[64], target[128];
    bool have_admin;
    struct proc ringlb;
    struct proc backends[RB_SCN_MAX_BACKENDS];
    struct proc hooks[RB_SCN_MAX_STEPS];
    unsigned nhooks;
    struct step_result res[RB_SCN_MAX_STEPS];
    struct window win[MAX_WINDOWS];
    unsigned nwin;
    uint64_t t0;
    bool interrupted;
    char fatal[300]; /* why the run failed besides its assertions */
    /* /metrics scrapes, one array per assertion that reads them */
    struct rb_scn_sample *samples[RB_SCN_MAX_ASSERTS];
    unsigned nsamples[RB_SCN_MAX_ASSERTS], sample_cap;
    char *mbuf;
    /* the merged record */
    uint64_t *tick_ok, *tick_failed;
    unsigned nticks;
    struct rb_scn_second *secs;
    unsigned nsecs;
    uint64_t total_ok, total_failed;
    char first_error[160];
    struct reasons why;
    struct rb_scn_verdict verdicts[RB_SCN_MAX_ASSERTS];
    bool pass;
};

static void note(const struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(const struct chaos *c, const char *fmt, ...)
{
    va_list ap;

    if (c->o->quiet)
        return;
    va_start(ap, fmt);
    fputs("ringbench chaos: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void set_fatal(struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_fatal(struct chaos *c, const char *fmt, ...)
{
    va_list ap;

    if (c->fatal[0])
        return;
    va_start(ap, fmt);
    vsnprintf(c->fatal, sizeof(c->fatal), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ringbench chaos: %s\n", c->fatal);
}

static uint64_t since_t0(const struct chaos *c, uint64_t now)
{
    return c->t0 && now > c->t0 ? now - c->t0 : 0;
}

/* SIGINT or SIGTERM arrived (both blocked: taken here, not by a handler). */
static bool take_interrupt(struct chaos *c, uint64_t wait_ns)
{
    sigset_t set;
    struct timespec ts = {.tv_sec = (time_t)(wait_ns / SEC_NS),
                          .tv_nsec = (long)(wait_ns % SEC_NS)};
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sig = sigtimedwait(&set, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
        if (!c->interrupted)
            fprintf(stderr, "ringbench chaos: interrupted: stopping everything\n");
        c->interrupted = true;
    }
    return c->interrupted;
}

/* ---------------------------------------------------------------- processes */

static struct proc *proc_by_pid(struct chaos *c, pid_t pid)
{
    if (c->ringlb.state != PS_NONE && c->ringlb.pid == pid)
        return &c->ringlb;
    for (unsigned i = 0; i < c->s->nbackends; i++) {
        if (c->backends[i].state != PS_NONE && c->backends[i].pid == pid)
            return &c->backends[i];
    }
    for (unsigned i = 0; i < c->nhooks; i++) {
        if (c->hooks[i].pid == pid)
            return &c->hooks[i];
    }
    return NULL;
}

static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, len, "status %#x", st);
}

/* Collects every child that ended (and, as a subreaper, every orphan). */
static void reap(struct chaos *c)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        struct proc *p = proc_by_pid(c, pid);
        char how[64];

        if (!p || p->state == PS_EXITED)
            continue;
        p->state = PS_EXITED;
        p->status = st;
        if (p->expected)
            continue;
        describe_status(st, how, sizeof(how));
        if (p == &c->ringlb)
            set_fatal(c, "ringlb (pid %d) %s during the run; its log: %s", (int)pid, how, p->log);
        else if (p >= c->backends && p < c->backends + RB_SCN_MAX_BACKENDS)
            note(c, "backend %s (pid %d) %s by itself", p->name, (int)pid, how);
    }
}

static bool wait_gone(struct chaos *c, struct proc *p, uint64_t ns)
{
    uint64_t end = rb_now_ns() + ns;

    for (;;) {
        reap(c);
        if (p->state == PS_EXITED || p->state == PS_NONE)
            return true;
        if (rb_now_ns() >= end)
            return false;
        usleep(5000);
    }
}

/*
 * Starts <argv> with stdout on a pipe (*<out>, when given) or <log>, and
 * stderr on <log>. The child gets an empty signal mask and SIGPIPE back
 * (both are inherited through exec), its own process group (a Ctrl-C on
 * the terminal reaches the runner, which stops everything in order) and
 * SIGKILL when the runner dies. Between fork and exec it calls only
 * async-signal-safe functions: the load's threads are running.
 */
static int spawn(struct proc *p, char *const argv[], char *const envp[], int *out)
{
    extern char **environ;
    int pfd[2] = {-1, -1}, logfd;
    pid_t parent = getpid(), pid;
    sigset_t none;

    sigemptyset(&none);
    logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -errno;
    if (out && pipe2(pfd, O_CLOEXEC) < 0) {
        int e = errno;

        close(logfd);
        return -e;
    }
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);

        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(out ? pfd[1] : logfd, 1);
        dup2(logfd, 2);
        execve(argv[0], argv, envp ? envp : environ);
        (void)!write(2, "ringbench chaos: cannot execute ", 32);
        (void)!write(2, argv[0], strlen(argv[0]));
        (void)!write(2, "\n", 1);
        _exit(127);
    }
    close(logfd);
    if (out)
        close(pfd[1]);
    if (pid < 0) {
        int e = errno;

        if (out)
            close(pfd[0]);
        return -e;
    }
    if (out)
        *out = pfd[0];
    p->pid = pid;
    p->state = PS_RUNNING;
    p->expected = false;
    return 0;
}

/* The last lines of a log, for an error message. */
static void log_tail(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    long size;
    size_t n;

    buf[0] = 0;
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)len - 1 ? size - (long)len + 1 : 0, SEEK_SET);
    n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
}

static int backend_start(struct chaos *c, unsigned i, const char *listen)
{
    const struct rb_scn_backend *b = &c->s->backends[i];
    struct proc *p = &c->backends[i];
    char delay[32], line[256] = "", tail[600];
    char *argv[16];
    int n = 0, fd = -1, ret;
    size_t len = 0;
    uint64_t end = rb_now_ns() + 5 * SEC_NS;
    const char *at;

    snprintf(p->name, sizeof(p->name), "%s", b->name);
    snprintf(p->log, sizeof(p->log), "%s/backend-%s.log", c->work, b->name);
    snprintf(delay, sizeof(delay), "%" PRIu64 "us", b->delay_ns / 1000);
    argv[n++] = c->self;
    argv[n++] = "serve";
    argv[n++] = "--listen";
    argv[n++] = (char *)listen;
    argv[n++] = "--mode";
    argv[n++] = "echo";
    argv[n++] = "--workers";
    argv[n++] = "1";
    argv[n++] = "--name";
    argv[n++] = p->name;
    if (b->delay_ns) {
        argv[n++] = "--delay";
        argv[n++] = delay;
    }
    argv[n] = NULL;
    ret = spawn(p, argv, NULL, &fd);
    if (ret < 0) {
        set_fatal(c, "backend %s: cannot start: %s", b->name, strerror(-ret));
        return ret;
    }
    /* It prints "ringbench serve echo listening on ADDR (1 workers)". */
    while (len + 1 < sizeof(line) && !strchr(line, '\n')) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        uint64_t now = rb_now_ns();
        ssize_t r;

        if (now >= end || poll(&pf, 1, (int)((end - now) / MS_NS) + 1) <= 0)
            break;
        r = read(fd, line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = 0;
    }
    close(fd);
    at = strstr(line, "listening on ");
    if (!at || sscanf(at + 13, "%63s", p->addr) != 1) {
        p->expected = true;
        kill(p->pid, SIGKILL);
        wait_gone(c, p, SEC_NS);
        log_tail(p->log, tail, sizeof(tail));
        set_fatal(c, "backend %s did not start on %s: %s", b->name, listen, tail);
        return -EIO;
    }
    return 0;
}

/* ---------------------------------------------------------------- admin HTTP */

/*
 * One request to ringlb's admin server, Connection: close, within
 * HTTP_TIMEOUT_MS per read or write. The answer's body goes to <out>
 * (NUL-terminated); returns the HTTP status, or -errno (-E2BIG for an
 * answer over <outlen> - 1 bytes).
 */
static int http(const char *addr, const char *method, const char *path, const char *body, char *out,
                size_t outlen)
{
    struct cfg_addr a;
    const char *why, *host = strncmp(addr, "unix:", 5) == 0 ? "localhost" : addr;
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_MS / 1000,
                         .tv_usec = (HTTP_TIMEOUT_MS % 1000) * 1000};
    char head[512], *sep;
    size_t got = 0, blen = body ? strlen(body) : 0;
    int fd, n, status = -EPROTO, ret;

    if (cfg_parse_addr(addr, CFG_ADDR_UNIX, &a, &why) < 0)
        return -EINVAL;
    fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        ret = -errno;
        goto out;
    }
    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 method, path, host, blen);
    if (n < 0 || (size_t)n >= sizeof(head) || send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
        (blen && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen)) {
        ret = -EIO;
        goto out;
    }
    for (;;) {
        ssize_t r;

        if (got + 1 >= outlen) {
            ret = -E2BIG;
            goto out;
        }
        r = recv(fd, out + got, outlen - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0) {
            ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
            goto out;
        }
        got += (size_t)r;
    }
    out[got] = 0;
    if (sscanf(out, "HTTP/1.%*c %d", &status) != 1 || status < 100 || status > 599) {
        ret = -EPROTO;
        goto out;
    }
    sep = strstr(out, "\r\n\r\n");
    if (sep)
        memmove(out, sep + 4, strlen(sep + 4) + 1);
    else
        out[0] = 0;
    ret = status;
out:
    close(fd);
    return ret;
}

/* ---------------------------------------------------------------- ringlb */

static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f)
        return -errno;
    n = fread(buf, 1, cap, f);
    if (ferror(f)) {
        fclose(f);
        return -EIO;
    }
    fclose(f);
    if (n == cap)
        return -EFBIG;
    *len = n;
    return 0;
}

static int free_port(char *buf, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = 0;

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        ret = -errno;
    close(fd);
    snprintf(buf, len, "127.0.0.1:%u", ntohs(sa.sin_port));
    return ret;
}

static bool tcp_accepts(const char *addr)
{
    struct cfg_addr a;
    const char *why;
    int fd, ok;

    if (cfg_parse_addr(addr, CFG_ADDR_UNIX, &a, &why) < 0)
        return false;
    fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ok = connect(fd, (struct sockaddr *)&a.ss, a.len) == 0;
    close(fd);
    return ok;
}

/* Writes the expanded template to WORK/lb.ini. Returns 0, -EINVAL for a
 * bad template (the scenario's fault: exit 2), or another -errno. */
static int write_config(struct chaos *c, char *cfg_path, size_t cfg_len)
{
    struct rb_scn_var vars[RB_SCN_MAX_BACKENDS + RB_SCN_MAX_VARS + 7];
    char servers[RB_SCN_MAX_BACKENDS * 128] = "";
    size_t sl = 0;
    char tpl_path[PATH_MAX + RB_SCN_MAX_TEXT + 2], err[512];
    char *tpl = lb_malloc(RB_SCN_MAX_BYTES + 1), *out = lb_malloc(4 * RB_SCN_MAX_BYTES);
    unsigned nv = 0;
    size_t len = 0;
    int ret;
    FILE *f;

    if (!tpl || !out) {
        ret = -ENOMEM;
        goto done;
    }
    if (c->s->ringlb[0] == '/')
        snprintf(tpl_path, sizeof(tpl_path), "%s", c->s->ringlb);
    else
        snprintf(tpl_path, sizeof(tpl_path), "%s/%s", c->dir, c->s->ringlb);
    ret = read_file(tpl_path, tpl, RB_SCN_MAX_BYTES + 1, &len);
    if (ret < 0) {
        fprintf(stderr, "%s: ringlb %s: %s\n", c->s->path, tpl_path,
                ret == -EFBIG ? "larger than 64 KiB" : strerror(-ret));
        ret = -EINVAL;
        goto done;
    }
    if (!memmem(tpl, len, "${frontend}", 11)) {
        fprintf(stderr, "%s: the frontend the load goes to must bind ${frontend}\n", tpl_path);
        ret = -EINVAL;
        goto done;
    }
    c->have_admin = memmem(tpl, len, "${admin}", 8) != NULL;
    for (unsigned i = 0; i < c->s->nbackends; i++) {
        vars[nv++] = (struct rb_scn_var){c->s->backends[i].name, c->backends[i].addr};
        sl += (size_t)snprintf(servers + sl, sizeof(servers) - sl, "%sserver = %s %s",
                               i ? "\n" : "", c->s->backends[i].name, c->backends[i].addr);
    }
    for (unsigned i = 0; i < c->s->nvars; i++)
        vars[nv++] = (struct rb_scn_var){c->s->vars[i].name, c->s->vars[i].value};
    vars[nv++] = (struct rb_scn_var){"servers", servers};
    vars[nv++] = (struct rb_scn_var){"frontend", c->frontend};
    vars[nv++] = (struct rb_scn_var){"admin", c->admin};
    vars[nv++] = (struct rb_scn_var){"dir", c->dir};
    vars[nv++] = (struct rb_scn_var){"work", c->work};
    vars[nv++] = (struct rb_scn_var){"ringbench", c->self};
    ret = rb_scn_expand(tpl, len, tpl_path, vars, nv, out, 4 * RB_SCN_MAX_BYTES, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "%s\n", ret == -E2BIG ? "the expanded template is too large" : err);
        ret = -EINVAL;
        goto done;
    }
    snprintf(cfg_path, cfg_len, "%s/lb.ini", c->work);
    f = fopen(cfg_path, "w");
    if (!f || fputs(out, f) < 0 || fclose(f) != 0) {
        ret = -errno ? -errno : -EIO;
        goto done;
    }
    ret = 0;
done:
    lb_free(tpl);
    lb_free(out);
    return ret;
}

/* Starts ringlb. Returns 0, -EINVAL when its config is bad (exit 2), or
 * another -errno (with c->fatal set). */
static int ringlb_start(struct chaos *c)
{
    struct proc *p = &c->ringlb;
    char cfg[PATH_MAX], tail[1500];
    char *argv[5];
    struct proc check = {0};
    uint64_t end;
    int ret;

    if (c->o->ringlb_path) {
        snprintf(c->ringlb_bin, sizeof(c->ringlb_bin), "%s", c->o->ringlb_path);
    } else {
        char *slash;

        snprintf(c->ringlb_bin, sizeof(c->ringlb_bin), "%s", c->self);
        slash = strrchr(c->ringlb_bin, '/');
        snprintf(slash + 1, sizeof(c->ringlb_bin) - (size_t)(slash + 1 - c->ringlb_bin), "ringlb");
    }
    if (access(c->ringlb_bin, X_OK) < 0) {
        set_fatal(c, "%s: %s (--ringlb PATH names the daemon)", c->ringlb_bin, strerror(errno));
        return -ENOENT;
    }
    if (free_port(c->frontend, sizeof(c->frontend)) < 0 ||
        free_port(c->admin, sizeof(c->admin)) < 0) {
        set_fatal(c, "no free loopback port");
        return -EADDRINUSE;
    }
    ret = write_config(c, cfg, sizeof(cfg));
    if (ret < 0) {
        if (ret != -EINVAL)
            set_fatal(c, "cannot write %s/lb.ini: %s", c->work, strerror(-ret));
        return ret;
    }
    /* ringlb -t first: a config ringlb refuses is the scenario's fault. */
    argv[0] = c->ringlb_bin;
    argv[1] = "-t";
    argv[2] = "-c";
    argv[3] = cfg;
    argv[4] = NULL;
    snprintf(check.log, sizeof(check.log), "%s/ringlb-check.log", c->work);
    ret = spawn(&check, argv, NULL, NULL);
    if (ret == 0) {
        int st;

        while (waitpid(check.pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            log_tail(check.log, tail, sizeof(tail));
            fprintf(stderr, "%s: ringlb -t refuses the expanded config %s:\n%s", c->s->path, cfg,
                    tail);
            return -EINVAL;
        }
    }
    snprintf(p->name, sizeof(p->name), "ringlb");
    snprintf(p->log, sizeof(p->log), "%s/ringlb.log", c->work);
    argv[1] = "-c";
    argv[2] = cfg;
    argv[3] = NULL;
    ret = spawn(p, argv, NULL, NULL);
    if (ret < 0) {
        set_fatal(c, "cannot start %s: %s", c->ringlb_bin, strerror(-ret));
        return ret;
    }
    end = rb_now_ns() + READY_NS;
    for (;;) {
        reap(c);
        if (p->state == PS_EXITED) {
            log_tail(p->log, tail, sizeof(tail));
            set_fatal(c, "ringlb exited at start-up: %s", tail);
            return -EIO;
        }
        if (tcp_accepts(c->frontend) && (!c->have_admin || http(c->admin, "GET", "/metrics", NULL,
                                                                c->mbuf, METRICS_MAX) == 200))
            return 0;
        if (rb_now_ns() >= end || take_interrupt(c, 20 * MS_NS)) {
            set_fatal(c, "ringlb did not accept on %s within %llu s", c->frontend,
                      (unsigned long long)(READY_NS / SEC_NS));
            return -ETIMEDOUT;
        }
    }
}

/* ---------------------------------------------------------------- windows */

static void window_open(struct chaos *c, const char *label, uint64_t at)
{
    if (c->nwin == MAX_WINDOWS)
        return;
    snprintf(c->win[c->nwin].label, sizeof(c->win[0].label), "%s", label);
    c->win[c->nwin].from_ns = at;
    c->win[c->nwin].to_ns = UINT64_MAX;
    c->nwin++;
}

/* Closes the open windows whose label starts with <prefix> (all with ""). */
static void window_close(struct chaos *c, const char *prefix, uint64_t at)
{
    for (unsigned i = 0; i < c->nwin; i++) {
        if (c->win[i].to_ns == UINT64_MAX && strncmp(c->win[i].label, prefix, strlen(prefix)) == 0)
            c->win[i].to_ns = at;
    }
}

/* ---------------------------------------------------------------- steps */

static int signal_backend(struct chaos *c, struct step_result *r, unsigned b, int sig)
{
    struct proc *p = &c->backends[b];

    reap(c);
    if (p->state == PS_EXITED || p->state == PS_NONE) {
        snprintf(r->error, sizeof(r->error), "backend %s is not running", p->name);
        return -ESRCH;
    }
    if (sig == SIGKILL)
        p->expected = true;
    if (kill(p->pid, sig) < 0) {
        snprintf(r->error, sizeof(r->error), "kill %s: %s", p->name, strerror(errno));
        return -errno;
    }
    if (sig == SIGKILL && !wait_gone(c, p, 5 * SEC_NS)) {
        snprintf(r->error, sizeof(r->error), "backend %s still there 5 s after SIGKILL", p->name);
        return -ETIMEDOUT;
    }
    if (sig == SIGSTOP)
        p->state = PS_STOPPED;
    else if (sig == SIGCONT)
        p->state = PS_RUNNING;
    return 0;
}

static void run_hook(struct chaos *c, unsigned i, struct step_result *r)
{
    static char env[6][PATH_MAX + 32];
    char *envp[8], *argv[4];
    struct proc *p;
    int n = 0, ret;

    if (c->nhooks == RB_SCN_MAX_STEPS)
        return;
    p = &c->hooks[c->nhooks];
    snprintf(p->name, sizeof(p->name), "hook at line %d", c->s->steps[i].line);
    snprintf(p->log, sizeof(p->log), "%s/hook-%u.log", c->work, i);
    /* What a hook may want: where things are. */
    snprintf(env[0], sizeof(env[0]), "CHAOS_FRONTEND=%s", c->target);
    snprintf(env[1], sizeof(env[1]), "CHAOS_ADMIN=%s", c->admin);
    snprintf(env[2], sizeof(env[2]), "CHAOS_WORK=%s", c->work);
    snprintf(env[3], sizeof(env[3]), "CHAOS_DIR=%s", c->dir);
    snprintf(env[4], sizeof(env[4]), "RINGBENCH=%s", c->self);
    snprintf(env[5], sizeof(env[5]), "RINGLB_PID=%d",
             c->ringlb.state == PS_RUNNING ? (int)c->ringlb.pid : 0);
    for (n = 0; n < 6; n++)
        envp[n] = env[n];
    envp[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    envp[n] = NULL;
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = c->s->steps[i].text;
    argv[3] = NULL;
    ret = spawn(p, argv, envp, NULL);
    if (ret < 0) {
        snprintf(r->error, sizeof(r->error), "cannot start /bin/sh: %s", strerror(-ret));
        return;
    }
    r->hook = (int)c->nhooks++;
    r->ok = true; /* until it exits otherwise (see hooks_settle) */
}

/* Hooks run on their own; their exit status decides their step. */
static void hooks_settle(struct chaos *c, bool final)
{
    for (unsigned i = 0; i < c->s->nsteps; i++) {
        struct step_result *r = &c->res[i];
        struct proc *p;
        char how[64], msg[sizeof(r->error)];

        if (!r->done || r->hook < 0)
            continue;
        p = &c->hooks[r->hook];
        if (p->state == PS_EXITED && !(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0) &&
            !r->error[0]) {
            describe_status(p->status, how, sizeof(how));
            r->ok = false;
            /* Through a copy: gcc cannot tell r->error and p->log apart. */
            snprintf(msg, sizeof(msg), "hook %s (log %s)", how, p->log);
            memcpy(r->error, msg, sizeof(msg));
        } else if (final && p->state == PS_RUNNING && !r->error[0]) {
            r->ok = false;
            snprintf(r->error, sizeof(r->error), "hook still running at the end (killed)");
        }
    }
}

static void run_step(struct chaos *c, unsigned i, uint64_t now)
{
    const struct rb_scn_step *st = &c->s->steps[i];
    struct step_result *r = &c->res[i];
    uint64_t at = since_t0(c, now);
    char what[96], path[96], body[RB_SCN_MAX_TEXT + 64], label[64];
    const char *bname =
        st->act >= RB_ACT_KILL && st->act <= RB_ACT_RESTART ? c->s->backends[st->backend].name : "";
    int ret = 0;

    r->done = true;
    r->ran_ns = at;
    r->hook = -1;
    rb_scn_step_str(c->s, st, what, sizeof(what));
    switch (st->act) {
    case RB_ACT_FAULT_ADD:
        /* The name goes first in the body (the parser made sure the body
         * holds no other). */
        snprintf(body, sizeof(body), "{\"name\":\"%s\"%s%s", st->name,
                 strcmp(st->text, "{}") == 0 ? "" : ",", st->text + 1);
        ret = http(c->admin, "POST", "/api/faults", body, c->mbuf, METRICS_MAX);
        snprintf(label, sizeof(label), "fault %s", st->name);
        if (ret >= 200 && ret < 300)
            window_open(c, label, at);
        break;
    case RB_ACT_FAULT_REMOVE:
        snprintf(path, sizeof(path), "/api/faults/%s", st->name);
        ret = http(c->admin, "DELETE", path, NULL, c->mbuf, METRICS_MAX);
        snprintf(label, sizeof(label), "fault %s", st->name);
        window_close(c, label, at);
        break;
    case RB_ACT_FAULT_CLEAR:
        ret = http(c->admin, "DELETE", "/api/faults", NULL, c->mbuf, METRICS_MAX);
        window_close(c, "fault ", at);
        break;
    case RB_ACT_KILL:
    case RB_ACT_STOP:
    case RB_ACT_CONT:
        snprintf(label, sizeof(label), "%s ", bname);
        window_close(c, label, at);
        ret = signal_backend(c, r, (unsigned)st->backend,
                             st->act == RB_ACT_KILL   ? SIGKILL
                             : st->act == RB_ACT_STOP ? SIGSTOP
                                                      : SIGCONT);
        snprintf(label, sizeof(label), "%s %s", bname,
                 st->act == RB_ACT_KILL ? "killed" : "stopped");
        if (ret == 0 && st->act != RB_ACT_CONT)
            window_open(c, label, at);
        break;
    case RB_ACT_RESTART: {
        struct proc *p = &c->backends[st->backend];
        char addr[sizeof(p->addr)];

        snprintf(label, sizeof(label), "%s ", bname);
        window_close(c, label, at);
        reap(c);
        if (p->state == PS_RUNNING || p->state == PS_STOPPED)
            ret = signal_backend(c, r, (unsigned)st->backend, SIGKILL);
        memcpy(addr, p->addr, sizeof(addr));
        if (ret == 0 && backend_start(c, (unsigned)st->backend, addr) < 0) {
            snprintf(r->error, sizeof(r->error), "%.190s", c->fatal);
            c->fatal[0] = 0; /* a failed step, not a failed run setup */
            ret = -EIO;
        }
        break;
    }
    case RB_ACT_RELOAD:
        reap(c);
        if (c->ringlb.state != PS_RUNNING || kill(c->ringlb.pid, SIGHUP) < 0) {
            snprintf(r->error, sizeof(r->error), "ringlb is not running");
            ret = -ESRCH;
        }
        break;
    case RB_ACT_HOOK:
        run_hook(c, i, r);
        note(c, "%5.1f s  %s: started", (double)at / 1e9, what);
        return;
    }
    if (st->act <= RB_ACT_FAULT_CLEAR) {
        if (ret < 0)
            snprintf(r->error, sizeof(r->error), "admin %s: %s", c->admin, strerror(-ret));
        else if (ret < 200 || ret >= 300)
            snprintf(r->error, sizeof(r->error), "HTTP %d: %.150s", ret, c->mbuf);
        r->ok = ret >= 200 && ret < 300;
    } else {
        r->ok = ret == 0;
    }
    note(c, "%5.1f s  %s: %s", (double)at / 1e9, what, r->ok ? "ok" : r->error);
}

/* ---------------------------------------------------------------- /metrics */

static bool needs_samples(const struct rb_scn_assert *a)
{
    return a->check == RB_CHK_SHARE || a->check == RB_CHK_SERVING;
}

static void sample(struct chaos *c, uint64_t now)
{
    bool any = false, ok;
    size_t len;

    for (unsigned i = 0; i < c->s->nasserts; i++)
        any |= needs_samples(&c->s->asserts[i]);
    if (!any || !c->admin[0])
        return;
    ok = http(c->admin, "GET", "/metrics", NULL, c->mbuf, METRICS_MAX) == 200;
    len = ok ? strlen(c->mbuf) : 0;
    for (unsigned i = 0; i < c->s->nasserts; i++) {
        const struct rb_scn_assert *a = &c->s->asserts[i];
        struct rb_scn_sample *sm;
        double up = 0;

        if (!needs_samples(a) || c->nsamples[i] == c->sample_cap)
            continue;
        sm = &c->samples[i][c->nsamples[i]++];
        sm->t_ns = since_t0(c, now);
        sm->ok = ok && rb_scn_metric_sum(c->mbuf, len, "ringlb_server_connections_total",
                                         a->backend, a->server, &sm->server_conns) == 1;
        sm->ok = sm->ok && rb_scn_metric_sum(c->mbuf, len, "ringlb_server_connections_total",
                                             a->backend, NULL, &sm->backend_conns) > 0;
        sm->ok = sm->ok && rb_scn_metric_sum(c->mbuf, len, "ringlb_server_up", a->backend,
                                             a->server, &up) == 1;
        sm->ok = sm->ok && rb_scn_metric_sum(c->mbuf, len, "ringlb_server_state_changes_total",
                                             a->backend, a->server, &sm->changes) == 1;
        sm->up = up > 0.5;
    }
}

/* ---------------------------------------------------------------- the run */

static void progress(struct chaos *c, struct rb_run *run, uint64_t now, uint64_t *last_c,
                     uint64_t *last_e)
{
    uint64_t n = 0, e = 0;

    if (c->o->quiet || !isatty(STDERR_FILENO))
        return;
    for (uint32_t i = 0; i < run->nworkers; i++) {
        n += atomic_load_explicit(&run->w[i].p_count, memory_order_relaxed);
        e += atomic_load_explicit(&run->w[i].p_errors, memory_order_relaxed);
    }
    fprintf(stderr, "\r%5.1f/%.0f s  %8llu ok/s  %6llu failed/s   ", (double)since_t0(c, now) / 1e9,
            (double)c->s->duration_ns / 1e9, (unsigned long long)(n - *last_c),
            (unsigned long long)(e - *last_e));
    *last_c = n;
    *last_e = e;
}

/* Plays the timeline while the load runs; returns when the run is over. */
static void play(struct chaos *c, struct rb_run *run)
{
    uint64_t end = c->t0 + c->s->duration_ns, next_sample = c->t0, next_prog = c->t0 + SEC_NS;
    uint64_t last_c = 0, last_e = 0;
    unsigned next = 0;

    for (;;) {
        uint64_t now = rb_now_ns(), due = end;

        reap(c);
        hooks_settle(c, false);
        if (c->fatal[0] || c->interrupted)
            break;
        while (next < c->s->nsteps && c->t0 + c->s->steps[next].at_ns <= now)
            run_step(c, next++, now);
        if (now >= next_sample && next_sample < end) {
            sample(c, now);
            next_sample += SAMPLE_NS;
        }
        if (now >= next_prog) {
            progress(c, run, now, &last_c, &last_e);
            next_prog += SEC_NS;
        }
        now = rb_now_ns();
        if (now >= end)
            break;
        if (next < c->s->nsteps && c->t0 + c->s->steps[next].at_ns < due)
            due = c->t0 + c->s->steps[next].at_ns;
        if (next_sample < due)
            due = next_sample;
        if (next_prog < due)
            due = next_prog;
        if (due > now)
            take_interrupt(c, due - now);
    }
    sample(c, rb_now_ns()); /* the last one closes windows that run to the end */
    if (!c->o->quiet && isatty(STDERR_FILENO))
        fprintf(stderr, "\r%70s\r", "");
    window_close(c, "", since_t0(c, rb_now_ns()));
}

/* Merges the workers' records into the run's timeline. */
static int merge(struct chaos *c, struct rb_run *run, const struct ld_cfg *cfg)
{
    c->nticks = cfg->nticks;
    c->nsecs = (unsigned)(c->s->duration_ns / SEC_NS);
    c->tick_ok = lb_calloc(c->nticks, sizeof(uint64_t));
    c->tick_failed = lb_calloc(c->nticks, sizeof(uint64_t));
    c->secs = lb_calloc(c->nsecs + 1, sizeof(*c->secs));
    if (!c->tick_ok || !c->tick_failed || !c->secs)
        return -ENOMEM;
    for (uint32_t w = 0; w < run->nworkers; w++) {
        struct ld *ld = run->w[w].ctx;

        if (run->w[w].timed_out)
            set_fatal(c, "load worker %u did not stop within 10 s", w);
        if (!ld)
            continue;
        /* What completes after the end (in the spare last tick) is not
         * part of the run: the totals are the timeline's. */
        for (unsigned t = 0; t < c->nticks; t++) {
            c->tick_ok[t] += ld->ok[t];
            c->tick_failed[t] += ld->failed[t];
            if (t < c->nsecs * TICKS_PER_SEC) {
                c->total_ok += ld->ok[t];
                c->total_failed += ld->failed[t];
            }
        }
        for (unsigned s = 0; s <= c->nsecs; s++) {
            struct rb_scn_second *sec = &c->secs[s];

            if (!ld->hist[s].counts)
                continue;
            if (!sec->hist) {
                sec->hist = lb_calloc(1, sizeof(*sec->hist));
                if (!sec->hist || rb_hist_init(sec->hist) < 0)
                    return -ENOMEM;
            }
            rb_hist_merge(sec->hist, &ld->hist[s]);
        }
        if (ld->first_error[0] && !c->first_error[0])
            memcpy(c->first_error, ld->first_error, sizeof(c->first_error));
        for (unsigned i = 0; i < NREASONS && ld->why.what[i][0]; i++)
            reasons_add(&c->why, ld->why.what[i], ld->why.n[i]);
        c->why.other += ld->why.other;
    }
    for (unsigned t = 0; t < c->nticks; t++) {
        c->secs[t / TICKS_PER_SEC].ok += c->tick_ok[t];
        c->secs[t / TICKS_PER_SEC].failed += c->tick_failed[t];
    }
    return 0;
}

static int run_load(struct chaos *c)
{
    struct rb_opts lo = *c->o;
    struct ld_cfg cfg = {.l = &c->s->load};
    struct rb_run run = {.unit = "req/s"};
    const char *why = "bad address";
    int ret;

    if (cfg_parse_addr(c->target, CFG_ADDR_UNIX, &cfg.target, &why) < 0) {
        set_fatal(c, "target %s: %s", c->target, why);
        return -EINVAL;
    }
    lo.buffers = 0;
    lo.busy_poll = false;
    lo.quiet = true;
    /* One spare tick takes what completes after the end. */
    cfg.nticks = (uint32_t)(c->s->duration_ns / RB_SCN_TICK_NS) + 1;
    c->t0 = rb_now_ns() + START_DELAY_NS;
    cfg.t0 = c->t0;
    ret = rb_run_start(&run, &lo, &load_role, c->s->load.workers, &cfg);
    if (ret < 0) {
        set_fatal(c, "the load cannot start: %s", strerror(-ret));
        return ret;
    }
    play(c, &run);
    rb_run_join(&run);
    ret = merge(c, &run, &cfg);
    rb_run_free(&run);
    if (ret < 0)
        set_fatal(c, "out of memory");
    return ret;
}

/* ---------------------------------------------------------------- teardown */

/* Sends <sig> to every child of this process (orphans we adopted as a
 * subreaper included), found in /proc. Returns how many there were. */
static unsigned signal_children(int sig)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    unsigned n = 0;
    pid_t self = getpid();

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], *rp;
        int ppid;
        FILE *f;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        buf[0] = 0;
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = 0;
        fclose(f);
        rp = strrchr(buf, ')'); /* the command name may hold anything */
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == self) {
            kill((pid_t)atoi(e->d_name), sig);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void stop_proc(struct chaos *c, struct proc *p, uint64_t grace)
{
    reap(c);
    if (p->state != PS_RUNNING && p->state != PS_STOPPED)
        return;
    p->expected = true;
    kill(p->pid, SIGTERM);
    kill(p->pid, SIGCONT); /* a stopped process acts on SIGTERM only once continued */
    if (!wait_gone(c, p, grace)) {
        kill(p->pid, SIGKILL);
        wait_gone(c, p, 5 * SEC_NS);
    }
}

/* Stops everything the run started: hooks, then ringlb (before its
 * backends, so that their end runs no on_down hook), the backends, and
 * whatever else is left among its children. */
static void teardown(struct chaos *c)
{
    uint64_t end;

    for (unsigned i = 0; i < c->nhooks; i++) {
        reap(c);
        if (c->hooks[i].state == PS_RUNNING) {
            c->hooks[i].expected = true;
            kill(-c->hooks[i].pid, SIGKILL);
            kill(c->hooks[i].pid, SIGKILL);
            wait_gone(c, &c->hooks[i], 2 * SEC_NS);
        }
    }
    hooks_settle(c, true);
    if (c->ringlb.state == PS_RUNNING || c->ringlb.state == PS_STOPPED) {
        bool was_up = c->ringlb.state == PS_RUNNING && !c->fatal[0];

        stop_proc(c, &c->ringlb, 10 * SEC_NS);
        if (was_up && !(WIFEXITED(c->ringlb.status) && WEXITSTATUS(c->ringlb.status) == 0)) {
            char how[64];

            describe_status(c->ringlb.status, how, sizeof(how));
            set_fatal(c, "ringlb %s on SIGTERM at the end (log %s)", how, c->ringlb.log);
        }
    }
    for (unsigned i = 0; i < c->s->nbackends; i++)
        stop_proc(c, &c->backends[i], 3 * SEC_NS);
    /* Orphans: an on_down hook's backend, a hook's children. */
    end = rb_now_ns() + 5 * SEC_NS;
    while (signal_children(SIGKILL) && rb_now_ns() < end) {
        reap(c);
        usleep(10000);
    }
    reap(c);
}

static void remove_work(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ---------------------------------------------------------------- reports */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double pct_ms(const struct rb_scn_second *s, double p)
{
    if (!s->hist || !s->hist->count)
        return NAN;
    return (double)(p >= 100 ? s->hist->max : rb_hist_percentile(s->hist, p)) / 1e6;
}

static void json_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("null", f);
    else
        fprintf(f, "%.3f", v);
}

static void load_line(const struct chaos *c, char *buf, size_t len)
{
    const struct rb_scn_load *l = &c->s->load;

    if (l->kind == RB_LOAD_LATENCY)
        snprintf(buf, len,
                 "latency, open loop: %.0f requests/s over %u connections, %u B each, timeout "
                 "%.0f ms",
                 l->rate, l->conns, l->size, (double)l->timeout_ns / 1e6);
    else
        snprintf(buf, len,
                 "connrate, open loop: %.0f new connections/s, one %u B exchange each, timeout "
                 "%.0f ms",
                 l->rate, l->size, (double)l->timeout_ns / 1e6);
}

/* The sample of <a> nearest second <t> (within half a sampling period),
 * or NULL. */
static const struct rb_scn_sample *sample_at(const struct chaos *c, unsigned a, unsigned t)
{
    const struct rb_scn_sample *best = NULL;
    uint64_t at = (uint64_t)t * SEC_NS, best_d = SAMPLE_NS / 2 + 1;

    for (unsigned i = 0; i < c->nsamples[a]; i++) {
        uint64_t st = c->samples[a][i].t_ns, d = st > at ? st - at : at - st;

        if (c->samples[a][i].ok && d < best_d) {
            best = &c->samples[a][i];
            best_d = d;
        }
    }
    return best;
}

/* The first assertion of each server its samples stand for. */
static bool first_of_server(const struct chaos *c, unsigned a)
{
    for (unsigned j = 0; j < a; j++) {
        if (needs_samples(&c->s->asserts[j]) &&
            strcmp(c->s->asserts[j].backend, c->s->asserts[a].backend) == 0 &&
            strcmp(c->s->asserts[j].server, c->s->asserts[a].server) == 0)
            return false;
    }
    return true;
}

static void write_json(const struct chaos *c, FILE *f)
{
    char buf[300];

    fputs("{\"scenario\": ", f);
    json_str(f, c->name);
    fputs(", \"title\": ", f);
    json_str(f, c->s->title);
    fputs(", \"file\": ", f);
    json_str(f, c->s->path);
    fputs(", \"description\": ", f);
    json_str(f, c->desc);
    fprintf(f, ", \"duration_s\": %.1f, \"result\": \"%s\", \"interrupted\": %s, \"fatal\": ",
            (double)c->s->duration_ns / 1e9, c->pass ? "pass" : "fail",
            c->interrupted ? "true" : "false");
    if (c->fatal[0])
        json_str(f, c->fatal);
    else
        fputs("null", f);
    load_line(c, buf, sizeof(buf));
    fputs(",\n \"load\": {\"what\": ", f);
    json_str(f, buf);
    fprintf(f,
            ", \"kind\": \"%s\", \"rate\": %.1f, \"conns\": %u, \"size\": %u, \"timeout_ms\": "
            "%.0f, \"target\": ",
            c->s->load.kind == RB_LOAD_LATENCY ? "latency" : "connrate", c->s->load.rate,
            c->s->load.conns, c->s->load.size, (double)c->s->load.timeout_ns / 1e6);
    json_str(f, c->target);
    fprintf(f, "},\n \"requests\": %llu, \"failed\": %llu, \"first_error\": ",
            (unsigned long long)c->total_ok, (unsigned long long)c->total_failed);
    if (c->first_error[0])
        json_str(f, c->first_error);
    else
        fputs("null", f);
    fputs(", \"failures\": {", f);
    for (unsigned i = 0; i < NREASONS && c->why.what[i][0]; i++) {
        fputs(i ? ", " : "", f);
        json_str(f, c->why.what[i]);
        fprintf(f, ": %llu", (unsigned long long)c->why.n[i]);
    }
    if (c->why.other)
        fprintf(f, "%s\"other\": %llu", c->why.what[0][0] ? ", " : "",
                (unsigned long long)c->why.other);
    fputc('}', f);
    fputs(",\n \"steps\": [", f);
    for (unsigned i = 0; i < c->s->nsteps; i++) {
        const struct step_result *r = &c->res[i];

        rb_scn_step_str(c->s, &c->s->steps[i], buf, sizeof(buf));
        fprintf(f, "%s\n  {\"at_s\": %.1f, \"step\": ", i ? "," : "",
                (double)c->s->steps[i].at_ns / 1e9);
        json_str(f, buf);
        if (r->done)
            fprintf(f, ", \"ran_s\": %.3f, \"ok\": %s, \"error\": ", (double)r->ran_ns / 1e9,
                    r->ok ? "true" : "false");
        else
            fputs(", \"ran_s\": null, \"ok\": false, \"error\": ", f);
        if (r->error[0] || !r->done)
            json_str(f, r->done ? r->error : "not reached");
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs("],\n \"windows\": [", f);
    for (unsigned i = 0; i < c->nwin; i++) {
        fprintf(f, "%s{\"label\": ", i ? ", " : "");
        json_str(f, c->win[i].label);
        fprintf(f, ", \"from_s\": %.3f, \"to_s\": %.3f}", (double)c->win[i].from_ns / 1e9,
                (double)c->win[i].to_ns / 1e9);
    }
    fputs("],\n \"assertions\": [", f);
    for (unsigned i = 0; i < c->s->nasserts; i++) {
        const struct rb_scn_verdict *v = &c->verdicts[i];

        fprintf(f, "%s\n  {\"assert\": ", i ? "," : "");
        json_str(f, c->s->asserts[i].text);
        fprintf(f, ", \"line\": %d, \"measured\": ", c->s->asserts[i].line);
        json_str(f, v->shown);
        fputs(", \"value\": ", f);
        json_num(f, v->measured ? v->value : NAN);
        fprintf(f, ", \"pass\": %s}", v->pass ? "true" : "false");
    }
    fputs("],\n \"timeline\": [", f);
    for (unsigned t = 0; t < c->nsecs; t++) {
        const struct rb_scn_second *s = &c->secs[t];
        bool first = true;

        fprintf(f, "%s\n  {\"t\": %u, \"rps\": %llu, \"failed\": %llu, \"p50_ms\": ", t ? "," : "",
                t, (unsigned long long)s->ok, (unsigned long long)s->failed);
        json_num(f, pct_ms(s, 50));
        fputs(", \"p99_ms\": ", f);
        json_num(f, pct_ms(s, 99));
        fputs(", \"max_ms\": ", f);
        json_num(f, pct_ms(s, 100));
        for (unsigned a = 0; a < c->s->nasserts; a++) {
            const struct rb_scn_sample *s0, *s1;

            if (!needs_samples(&c->s->asserts[a]) || !first_of_server(c, a))
                continue;
            s0 = sample_at(c, a, t);
            s1 = sample_at(c, a, t + 1);
            fprintf(f, "%s\"%s/%s\": ", first ? ", \"servers\": {" : ", ", c->s->asserts[a].backend,
                    c->s->asserts[a].server);
            first = false;
            if (s0 && s1)
                fprintf(f, "{\"conns\": %.0f, \"of\": %.0f, \"up\": %s}",
                        s1->server_conns - s0->server_conns, s1->backend_conns - s0->backend_conns,
                        s1->up ? "true" : "false");
            else
                fputs("null", f);
        }
        fputs(first ? "}" : "}}", f);
    }
    fputs("]}\n", f);
}

static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void write_md(const struct chaos *c, FILE *f, const char *svg_name)
{
    char buf[300];

    fprintf(f, "### %s: %s\n\n", c->name, c->s->title);
    if (c->desc[0]) {
        fputs("> ", f);
        for (const char *p = c->desc; *p; p++) {
            fputc(*p, f);
            if (*p == '\n' && p[1])
                fputs("> ", f);
        }
        fputs("\n\n", f);
    }
    load_line(c, buf, sizeof(buf));
    fprintf(f, "- scenario: `%s`, %.0f s\n- load: %s, against %s%s\n", c->s->path,
            (double)c->s->duration_ns / 1e9, buf, c->s->ringlb[0] ? "ringlb " : "", c->target);
    fprintf(f, "- requests: %llu ok, %llu failed", (unsigned long long)c->total_ok,
            (unsigned long long)c->total_failed);
    if (c->first_error[0]) {
        fputs(" (first: ", f);
        md_cell(f, c->first_error);
        fputs(")\n- failures by kind:", f);
        for (unsigned i = 0; i < NREASONS && c->why.what[i][0]; i++) {
            fprintf(f, "%s %llu × ", i ? ";" : "", (unsigned long long)c->why.n[i]);
            md_cell(f, c->why.what[i]);
        }
        if (c->why.other)
            fprintf(f, "; %llu of other kinds", (unsigned long long)c->why.other);
    }
    fprintf(f, "\n- result: **%s**", c->pass ? "PASS" : "FAIL");
    if (c->fatal[0]) {
        fputs(": ", f);
        md_cell(f, c->fatal);
    } else if (c->interrupted) {
        fputs(": interrupted", f);
    }
    fputs("\n\n", f);
    if (c->s->nsteps) {
        fputs("| at | step | ran at | result |\n|---:|---|---:|---|\n", f);
        for (unsigned i = 0; i < c->s->nsteps; i++) {
            const struct step_result *r = &c->res[i];

            rb_scn_step_str(c->s, &c->s->steps[i], buf, sizeof(buf));
            fprintf(f, "| %.1f s | ", (double)c->s->steps[i].at_ns / 1e9);
            md_cell(f, buf);
            if (!r->done) {
                fputs(" | | not reached |\n", f);
                continue;
            }
            fprintf(f, " | %.2f s | %s", (double)r->ran_ns / 1e9, r->ok ? "ok" : "FAILED: ");
            md_cell(f, r->ok ? "" : r->error);
            fputs(" |\n", f);
        }
        fputc('\n', f);
    }
    if (c->s->nasserts) {
        fputs("| assertion | measured | result |\n|---|---|---|\n", f);
        for (unsigned i = 0; i < c->s->nasserts; i++) {
            fputs("| ", f);
            md_cell(f, c->s->asserts[i].text);
            fputs(" | ", f);
            md_cell(f, c->verdicts[i].shown);
            fprintf(f, " | %s |\n", c->verdicts[i].pass ? "PASS" : "**FAIL**");
        }
        fputc('\n', f);
    }
    if (svg_name)
        fprintf(f, "![%s timeline](%s)\n\n", c->name, svg_name);
}

/* The timeline plot: latency (p50, p99; log) above, requests and failures
 * per second below, the fault and process windows shaded across both. */
#define TW  900
#define TH  540
#define TML 110
#define TMR 150
static void write_svg(const struct chaos *c, FILE *f)
{
    const struct rb_svg_area top = {TML, 50, TW - TMR, 290}, bot = {TML, 330, TW - TMR, TH - 50};
    static const char *const shades[] = {"#ffbb78", "#aec7e8", "#98df8a", "#ff9896", "#c5b0d5"};
    double lo = 1e300, hi = 0, most = 1, xs = (top.x1 - top.x0) / (double)(c->nsecs ? c->nsecs : 1);
    unsigned step = 1;
    char title[320];

    for (unsigned t = 0; t < c->nsecs; t++) {
        const struct rb_scn_second *s = &c->secs[t];

        if (s->hist && s->hist->count) {
            lo = fmin(lo, (double)rb_hist_percentile(s->hist, 50) / 1e3);
            hi = fmax(hi, (double)rb_hist_percentile(s->hist, 99) / 1e3);
        }
        most = fmax(most, (double)(s->ok > s->failed ? s->ok : s->failed));
    }
    rb_svg_log_range(&lo, &hi);
    /* The axis ends at 1, 2 or 5 times a power of ten, in five steps. */
    for (double p = pow(10, floor(log10(most * 1.05))), m = 1;; m = m == 1 ? 2 : m == 2 ? 5 : 10) {
        if (m * p >= most * 1.05) {
            most = m * p;
            break;
        }
    }
    snprintf(title, sizeof(title), "%s: %s (%s)", c->name, c->s->title, c->pass ? "PASS" : "FAIL");
    rb_svg_begin(f, TW, TH, TML, title);
    for (unsigned i = 0; i < c->nwin; i++) {
        double x0 = top.x0 + xs * (double)c->win[i].from_ns / 1e9;
        double x1 = top.x0 + xs * fmin((double)c->win[i].to_ns / 1e9, (double)c->nsecs);

        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\" "
                "fill-opacity=\"0.45\"/>\n<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\">",
                x0, top.y0, fmax(x1 - x0, 1.0), bot.y1 - top.y0, shades[i % 5], x0 + 3,
                top.y0 + 12 + 13 * (i % 4));
        rb_svg_text(f, c->win[i].label);
        fputs("</text>\n", f);
    }
    rb_svg_ylog_grid(f, &top, lo, hi);
    for (int k = 0; k <= 5; k++) {
        double y = bot.y1 - (bot.y1 - bot.y0) * k / 5;

        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                bot.x0, y, bot.x1, y, bot.x0 - 6, y + 4, most * k / 5);
    }
    while (c->nsecs / step > 15)
        step = step < 5 ? 5 : step * 2;
    for (unsigned t = 0; t <= c->nsecs; t += step) {
        double x = top.x0 + xs * t;

        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%u</text>\n",
                x, top.y0, x, bot.y1, x, bot.y1 + 16, t);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">seconds</text>\n"
            "<text x=\"16\" y=\"%.0f\" transform=\"rotate(-90 16 %.0f)\" "
            "text-anchor=\"middle\">latency (us, log)</text>\n"
            "<text x=\"16\" y=\"%.0f\" transform=\"rotate(-90 16 %.0f)\" "
            "text-anchor=\"middle\">per second</text>\n",
            (top.x0 + top.x1) / 2, TH - 14, (top.y0 + top.y1) / 2, (top.y0 + top.y1) / 2,
            (bot.y0 + bot.y1) / 2, (bot.y0 + bot.y1) / 2);
    for (unsigned line = 0; line < 4; line++) {
        static const char *const names[] = {"p50", "p99", "ok req/s", "failed/s"};
        static const unsigned col[] = {0, 3, 2, 1};
        bool open = false;

        for (unsigned t = 0; t < c->nsecs; t++) {
            const struct rb_scn_second *s = &c->secs[t];
            double x = top.x0 + xs * (t + 0.5), y;

            if (line < 2) {
                double v = pct_ms(s, line ? 99 : 50);

                if (isnan(v)) {
                    if (open)
                        fputs("\"/>\n", f);
                    open = false;
                    continue;
                }
                y = rb_svg_ylog(&top, v * 1e3, lo, hi);
            } else {
                y = bot.y1 - (bot.y1 - bot.y0) * (double)(line == 2 ? s->ok : s->failed) / most;
            }
            if (!open)
                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                        rb_svg_color(col[line]));
            open = true;
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        if (open)
            fputs("\"/>\n", f);
        rb_svg_legend(f, TW - TMR + 12,
                      (int)(line < 2 ? top.y0 : bot.y0) + 10 + 20 * (int)(line % 2),
                      rb_svg_color(col[line]), names[line]);
    }
}

static FILE *open_out(const char *dir, const char *name, const char *ext, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/%s.%s", dir, name, ext);
    f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "ringbench chaos: %s: %s\n", path, strerror(errno));
    return f;
}

static int write_reports(struct chaos *c)
{
    const char *dir = c->o->out_dir;
    char path[PATH_MAX], svg_name[200];
    int ret = 0;
    FILE *f;

    if (c->o->json)
        write_json(c, stdout);
    else
        write_md(c, stdout, NULL);
    fflush(stdout);
    if (!dir)
        return 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ringbench chaos: --out %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    snprintf(svg_name, sizeof(svg_name), "%s.svg", c->name);
    f = open_out(dir, c->name, "json", path, sizeof(path));
    if (!f)
        return -EIO;
    write_json(c, f);
    ret |= fclose(f);
    f = open_out(dir, c->name, "md", path, sizeof(path));
    if (!f)
        return -EIO;
    write_md(c, f, svg_name);
    ret |= fclose(f);
    f = open_out(dir, c->name, "svg", path, sizeof(path));
    if (!f)
        return -EIO;
    write_svg(c, f);
    ret |= rb_svg_end(f);
    ret |= fclose(f);
    return ret ? -EIO : 0;
}

/* ---------------------------------------------------------------- main */

/* The comment block at the top of the scenario: what ringlb should do. */
static void leading_comment(const char *text, size_t len, char *out, size_t outlen)
{
    size_t o = 0, i = 0;

    out[0] = 0;
    while (i < len && text[i] == '#') {
        size_t j = i + 1;

        if (j < len && text[j] == ' ')
            j++;
        while (j < len && text[j] != '\n') {
            if (o + 2 < outlen)
                out[o++] = text[j];
            j++;
        }
        if (o + 2 < outlen)
            out[o++] = '\n';
        i = j + 1;
    }
    while (o && out[o - 1] == '\n')
        o--;
    out[o] = 0;
}

static int setup_paths(struct chaos *c)
{
    const char *base = strrchr(c->o->scenario_path, '/');
    char tmp[PATH_MAX], *dot;
    const char *tmpdir = getenv("TMPDIR");
    ssize_t n = readlink("/proc/self/exe", c->self, sizeof(c->self) - 1);

    if (n <= 0)
        return -errno;
    c->self[n] = 0;
    snprintf(tmp, sizeof(tmp), "%s", c->o->scenario_path);
    if (base) {
        tmp[base - c->o->scenario_path] = 0;
        if (!realpath(tmp[0] ? tmp : "/", c->dir))
            return -errno;
    } else if (!getcwd(c->dir, sizeof(c->dir))) {
        return -errno;
    }
    snprintf(c->name, sizeof(c->name), "%s", base ? base + 1 : c->o->scenario_path);
    dot = strrchr(c->name, '.');
    if (dot && dot != c->name)
        *dot = 0;
    snprintf(c->work, sizeof(c->work), "%s/ringbench-chaos-%s.XXXXXX",
             tmpdir && *tmpdir ? tmpdir : "/tmp", c->name);
    if (!mkdtemp(c->work))
        return -errno;
    return 0;
}

static void chaos_free(struct chaos *c)
{
    for (unsigned i = 0; i <= c->nsecs && c->secs; i++) {
        if (c->secs[i].hist) {
            rb_hist_free(c->secs[i].hist);
            lb_free(c->secs[i].hist);
        }
    }
    for (unsigned i = 0; i < RB_SCN_MAX_ASSERTS; i++)
        lb_free(c->samples[i]);
    lb_free(c->secs);
    lb_free(c->tick_ok);
    lb_free(c->tick_failed);
    lb_free(c->mbuf);
    lb_free(c->s);
}

/* Runs a parsed scenario; returns the exit status. */
static int run_scenario(struct chaos *c)
{
    sigset_t set;
    bool setup_ok = true;
    int rc, ret;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Orphans of what we start (a backend an on_down hook put in the
     * background) become our children, so that they are stopped too. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    net_raise_nofile();
    c->mbuf = lb_malloc(METRICS_MAX);
    c->sample_cap = (unsigned)(c->s->duration_ns / SAMPLE_NS) + 8;
    for (unsigned i = 0; i < c->s->nasserts; i++) {
        if (needs_samples(&c->s->asserts[i]))
            c->samples[i] = lb_calloc(c->sample_cap, sizeof(struct rb_scn_sample));
        if (needs_samples(&c->s->asserts[i]) && !c->samples[i])
            c->mbuf = NULL;
    }
    if (!c->mbuf || rb_pattern_init() < 0) {
        fprintf(stderr, "ringbench chaos: out of memory\n");
        return 1;
    }
    note(c, "%s: %s (work folder %s)", c->name, c->s->title, c->work);
    for (unsigned i = 0; i < c->s->nbackends && setup_ok; i++)
        setup_ok = backend_start(c, i, c->s->backends[i].listen) == 0 && !c->interrupted;
    if (setup_ok && c->s->ringlb[0]) {
        ret = ringlb_start(c);
        if (ret == -EINVAL) {
            teardown(c);
            fprintf(stderr, "ringbench chaos: %s: bad scenario; what it wrote is in %s\n", c->name,
                    c->work);
            return 2;
        }
        setup_ok = ret == 0;
        snprintf(c->target, sizeof(c->target), "%s", c->frontend);
    } else if (setup_ok) {
        snprintf(c->target, sizeof(c->target), "%s", c->s->target);
        snprintf(c->admin, sizeof(c->admin), "%s", c->s->admin);
    }
    if (setup_ok && !c->interrupted) {
        note(c, "load on %s for %.0f s", c->target, (double)c->s->duration_ns / 1e9);
        run_load(c);
    }
    teardown(c);
    c->pass = !c->fatal[0] && !c->interrupted && c->secs && c->total_ok > 0;
    if (c->secs) {
        struct rb_scn_record r = {.secs = c->secs,
                                  .nsecs = c->nsecs,
                                  .tick_failed = c->tick_failed,
                                  .nticks = c->nticks,
                                  .samples = (const struct rb_scn_sample *const *)c->samples,
                                  .nsamples = c->nsamples};

        for (unsigned i = 0; i < c->s->nasserts; i++) {
            rb_scn_judge(c->s, &c->s->asserts[i], &r, i, &c->verdicts[i]);
            c->pass &= c->verdicts[i].pass;
        }
    } else {
        for (unsigned i = 0; i < c->s->nasserts; i++)
            snprintf(c->verdicts[i].shown, sizeof(c->verdicts[i].shown), "not run");
    }
    if (c->secs && c->total_ok == 0)
        set_fatal(c, "no request succeeded in the whole run");
    for (unsigned i = 0; i < c->s->nsteps; i++)
        c->pass &= c->res[i].done && c->res[i].ok;
    rc = c->pass ? 0 : 1;
    if (write_reports(c) < 0)
        rc = 1;
    if (c->pass) {
        remove_work(c->work);
    } else {
        fprintf(stderr, "ringbench chaos: %s: FAIL; logs and the expanded config in %s\n", c->name,
                c->work);
    }
    return rc;
}

int rb_chaos_main(const struct rb_opts *o)
{
    struct chaos c = {.o = o};
    char err[512];
    char *text = lb_malloc(RB_SCN_MAX_BYTES + 1);
    size_t len = 0;
    int ret, rc;

    c.s = lb_calloc(1, sizeof(*c.s));
    if (!text || !c.s) {
        lb_free(text);
        lb_free(c.s);
        fprintf(stderr, "ringbench chaos: out of memory\n");
        return 1;
    }
    ret = read_file(o->scenario_path, text, RB_SCN_MAX_BYTES + 1, &len);
    if (ret < 0) {
        fprintf(stderr, "ringbench chaos: %s: %s\n", o->scenario_path,
                ret == -EFBIG ? "larger than 64 KiB" : strerror(-ret));
        lb_free(text);
        lb_free(c.s);
        return 2;
    }
    if (rb_scn_parse(text, len, o->scenario_path, c.s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        lb_free(text);
        lb_free(c.s);
        return 2;
    }
    leading_comment(text, len, c.desc, sizeof(c.desc));
    lb_free(text);
    ret = setup_paths(&c);
    if (ret < 0) {
        fprintf(stderr, "ringbench chaos: %s: %s\n", o->scenario_path, strerror(-ret));
        lb_free(c.s);
        return 1;
    }
    rc = run_scenario(&c);
    chaos_free(&c);
    return rc;
}
