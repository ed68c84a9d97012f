/*
 * client.c - latency (request/response ping-pong, open or closed loop),
 * connrate (connect, one exchange, close) and throughput (bulk streams
 * whose bytes are checked) on the worker runtime.
 *
 * Connections are spread over the workers round-robin; each worker records
 * into its own histogram and counters, merged by the main thread after the
 * run, so the hot path shares nothing.
 */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/alloc.h"
#include "../../core/net.h"
#include "pattern.h"
#include "rt.h"
#include "sched.h"

#define TP_CHUNK (1u << 20)
#define RETRY_NS (10ULL * 1000000)
/* Open loop: the first request of every connection goes out this long
 * after the run starts, leaving time for the connects. */
#define START_DELAY_NS (20ULL * 1000000)

struct cli_cfg {
    const struct rb_opts *o;
    uint64_t t0; /* open loop: the schedule's origin */
};

struct cli {
    struct rb_worker *w;
    const struct cli_cfg *cfg;
    struct rb_conns conns;
    struct rb_hist hist;
    uint64_t count, errors, bytes;
    bool measuring, stopping, bad_data;
    struct timer retry; /* connrate: restarts after a failure */
    uint32_t pending;   /* connrate: connections waiting for <retry> */
    uint32_t assigned;  /* latency, throughput: connections this worker took on */
    uint64_t backlog;   /* open loop: requests due by the end and never sent */
    uint64_t due;       /* open loop: requests the schedule holds in the window */
    char first_error[160];
};

/* One client connection of any of the three kinds. */
struct cconn {
    struct rb_conn base;
    struct cli *cl;
    struct loop_op cop, rx, tx;
    uint32_t idx;
    /* latency, connrate */
    struct rb_sched s;
    uint64_t intended; /* when the request in flight should have left */
    uint32_t got;      /* reply bytes received */
    bool busy;         /* a request is in flight */
    /* throughput */
    uint64_t sent, rcvd;
    bool shut, eof, verified;
    uint32_t rlen;
    char report[64];
};

static void cl_error(struct cli *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cl_error(struct cli *cl, const char *fmt, ...)
{
    va_list ap;

    cl->errors++;
    atomic_fetch_add_explicit(&cl->w->p_errors, 1, memory_order_relaxed);
    if (cl->first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(cl->first_error, sizeof(cl->first_error), fmt, ap);
    va_end(ap);
}

static void cconn_free(struct rb_conn *base)
{
    lb_free(base);
}

static struct cconn *cconn_of(struct loop_op *op, size_t off)
{
    return (struct cconn *)((char *)op - off);
}

static void cconn_close(struct cconn *c)
{
    rb_conn_close(c->cl->w, &c->cl->conns, &c->base);
}

/* Opens a connection; its callbacks are set by the caller. NULL on failure
 * (counted as an error). */
static struct cconn *cconn_open(struct cli *cl, uint32_t idx, loop_cb on_conn, loop_cb on_rx,
                                loop_cb on_tx)
{
    const struct cfg_addr *a = &cl->cfg->o->target;
    struct cconn *c = lb_calloc(1, sizeof(*c));
    int fd;

    if (!c) {
        cl_error(cl, "out of memory");
        return NULL;
    }
    fd = net_connect_socket((const struct sockaddr *)&a->ss);
    if (fd < 0) {
        cl_error(cl, "socket: %s", strerror(-fd));
        lb_free(c);
        return NULL;
    }
    c->cl = cl;
    c->idx = idx;
    c->base.fd = fd;
    c->base.ops[0] = &c->cop;
    c->base.ops[1] = &c->rx;
    c->base.ops[2] = &c->tx;
    c->cop.cb = on_conn;
    c->rx.cb = on_rx;
    c->tx.cb = on_tx;
    timer_init(&c->base.t, NULL); /* armed only by latency, which sets its callback */
    rb_conns_add(&cl->conns, &c->base);
    loop_submit_connect(cl->w->loop, &c->cop, fd, (const struct sockaddr *)&a->ss, a->len);
    return c;
}

static void record(struct cli *cl, uint64_t lat_ns)
{
    atomic_fetch_add_explicit(&cl->w->p_count, 1, memory_order_relaxed);
    if (!cl->measuring)
        return;
    cl->count++;
    rb_hist_record(&cl->hist, lat_ns);
}

/* Checks reply bytes against the request (an echo), counts them; false
 * and the connection closed when they are wrong. */
static bool reply_bytes(struct cconn *c, int res, unsigned flags)
{
    struct cli *cl = c->cl;
    struct loop *loop = cl->w->loop;
    long bad;

    if (!(flags & LOOP_F_BUF)) {
        if (res == 0)
            cl_error(cl, "connection closed by the target before the reply was complete");
        else if (res != -ECANCELED)
            cl_error(cl, "receive: %s", strerror(-res));
        if (res != -ECANCELED || !c->base.closing)
            cconn_close(c);
        return false;
    }
    if (c->base.closing || res <= 0) {
        loop_buf_put(loop, c->rx.bid);
        return false;
    }
    if (!c->busy || c->got + (uint32_t)res > cl->cfg->o->size) {
        loop_buf_put(loop, c->rx.bid);
        cl_error(cl, "the target sent more bytes than the request had");
        cconn_close(c);
        return false;
    }
    bad = rb_pattern_check(c->got, loop_buf(loop, c->rx.bid), (size_t)res);
    loop_buf_put(loop, c->rx.bid);
    if (bad >= 0) {
        cl_error(cl, "reply byte %" PRIu64 " differs from the request", c->got + (uint64_t)bad);
        cconn_close(c);
        return false;
    }
    c->got += (uint32_t)res;
    if (!(flags & LOOP_F_MORE) && c->got < cl->cfg->o->size)
        loop_submit_recv(loop, &c->rx, c->base.fd);
    return c->got == cl->cfg->o->size;
}

/*
 * Sends a request. With one request in flight per connection the socket
 * buffer always has room for it, so a non-blocking send(2) right here sends
 * it whole: the reply is then the only completion, and the only wake-up,
 * of the exchange. Through the ring the send's own completion costs a
 * second io_uring_enter per request, which made ringbench's round trip
 * ~15% longer than sockperf's blocking send/recv on one CPU. Whatever
 * send(2) does not take (a full buffer, an error) goes through the loop,
 * which finishes it or reports the error in the usual callback.
 */
static void send_request(struct cconn *c, uint64_t intended)
{
    struct cli *cl = c->cl;
    const uint8_t *req = rb_pattern_at(0);
    uint32_t size = cl->cfg->o->size;
    ssize_t n;

    c->intended = intended;
    c->got = 0;
    c->busy = true;
    do {
        n = send(c->base.fd, req, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)size)
        return;
    if (n < 0)
        n = 0;
    loop_submit_send(cl->w->loop, &c->tx, c->base.fd, req + n, size - (uint32_t)n);
}

/* ---------------------------------------------------------------- latency */

/* Sends the next request if it is due and the connection is free. <now>
 * is the caller's clock reading (one per completion is enough), or 0. */
static void lat_maybe_send(struct cconn *c, uint64_t now)
{
    struct cli *cl = c->cl;
    uint64_t due;

    if (c->base.closing || c->busy || c->tx.inflight || cl->stopping)
        return;
    if (!now)
        now = rb_now_ns();
    if (cl->cfg->o->closed) {
        send_request(c, now);
        return;
    }
    due = rb_sched_peek(&c->s);
    if (due <= now) {
        /* Late requests go out at once, still charged from <due>. */
        send_request(c, rb_sched_next(&c->s));
        return;
    }
    if (rb_timer_arm(cl->w, &c->base.t, due) < 0) {
        cl_error(cl, "out of memory");
        cconn_close(c);
    }
}

static void lat_on_timer(struct timer *t, uint64_t now)
{
    (void)now; /* read before the other due timers ran: take a fresh one */
    lat_maybe_send((struct cconn *)((char *)t - offsetof(struct cconn, base.t)), 0);
}

static void lat_on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, rx));
    uint64_t now;

    if (!reply_bytes(c, res, flags))
        return;
    now = rb_now_ns();
    c->busy = false;
    record(c->cl, now - c->intended);
    lat_maybe_send(c, now);
}

static void lat_on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, tx));

    (void)flags;
    if (c->base.closing)
        return;
    if (res < 0) {
        cl_error(c->cl, "send: %s", strerror(-res));
        cconn_close(c);
        return;
    }
    lat_maybe_send(c, 0);
}

/* A connect completed: the connection, receiving, or NULL when it failed
 * (counted and closed) or is closing already. */
static struct cconn *connected(struct loop_op *op, int res)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, cop));

    if (c->base.closing)
        return NULL;
    if (res < 0) {
        cl_error(c->cl, "connect to %s: %s", c->cl->cfg->o->target_text, strerror(-res));
        cconn_close(c);
        return NULL;
    }
    loop_submit_recv(c->cl->w->loop, &c->rx, c->base.fd);
    return c;
}

static void lat_on_conn(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = connected(op, res);

    (void)flags;
    if (c)
        lat_maybe_send(c, 0);
}

static int lat_start(struct cli *cl)
{
    const struct rb_opts *o = cl->cfg->o;

    for (uint32_t i = cl->w->id; i < o->conns; i += cl->w->run->nworkers) {
        struct cconn *c = cconn_open(cl, i, lat_on_conn, lat_on_rx, lat_on_tx);

        cl->assigned++; /* a failed open is an error of its own */
        if (!c)
            continue;
        timer_init(&c->base.t, lat_on_timer);
        if (!o->closed) {
            int ret = rb_sched_init(&c->s, o->rate, o->conns, i, cl->cfg->t0);

            /* A zeroed schedule would make every request due at once: a
             * closed loop in disguise. The parser rules this out; never
             * run with one anyway. */
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

/*
 * How far the sender is behind its schedule when the window closes: the
 * requests intended before <t_stop> that never left. A sender that keeps
 * up has none (one per connection at most, by rounding); one that cannot
 * (too few connections for the rate, a slow target) piles them up, and
 * its latencies then measure that queue instead of the target.
 */
static void lat_count_backlog(struct cli *cl, uint64_t t_measure, uint64_t t_stop)
{
    for (struct rb_conn *b = cl->conns.live.next; b != &cl->conns.live; b = b->next) {
        struct cconn *c = (struct cconn *)b;
        uint64_t due = rb_sched_due_before(&c->s, t_stop);

        if (due > c->s.k)
            cl->backlog += due - c->s.k;
        /* Counted, not rate x window: without a warm-up the schedule
         * starts a little after the window does. */
        cl->due += due - rb_sched_due_before(&c->s, t_measure);
    }
}

/* ---------------------------------------------------------------- connrate */

static void cr_start_one(struct cli *cl);

static void cr_failed(struct cconn *c)
{
    struct cli *cl = c->cl;

    cconn_close(c);
    /* A refused or failed connection is retried after a pause: a target
     * that is down must not turn the client into a busy loop. */
    cl->pending++;
    if (!timer_armed(&cl->retry))
        rb_timer_arm(cl->w, &cl->retry, rb_now_ns() + RETRY_NS);
}

static void cr_on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, rx));
    struct cli *cl = c->cl;

    if (!reply_bytes(c, res, flags)) {
        if (c->base.closing && !cl->stopping && res != -ECANCELED && !c->verified) {
            c->verified = true; /* only one restart per connection */
            cl->pending++;
            if (!timer_armed(&cl->retry))
                rb_timer_arm(cl->w, &cl->retry, rb_now_ns() + RETRY_NS);
        }
        return;
    }
    c->busy = false;
    record(cl, rb_now_ns() - c->intended);
    c->verified = true;
    cconn_close(c);
    if (!cl->stopping)
        cr_start_one(cl);
}

static void cr_on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, tx));

    (void)flags;
    if (c->base.closing || res >= 0)
        return;
    cl_error(c->cl, "send: %s", strerror(-res));
    c->verified = true;
    cr_failed(c);
}

static void cr_on_conn(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, cop));

    (void)flags;
    if (c->base.closing)
        return;
    if (res < 0) {
        cl_error(c->cl, "connect to %s: %s", c->cl->cfg->o->target_text, strerror(-res));
        c->verified = true;
        cr_failed(c);
        return;
    }
    loop_submit_recv(c->cl->w->loop, &c->rx, c->base.fd);
    send_request(c, c->intended);
}

static void cr_start_one(struct cli *cl)
{
    uint64_t t0 = rb_now_ns();
    struct cconn *c = cconn_open(cl, 0, cr_on_conn, cr_on_rx, cr_on_tx);

    if (!c) {
        cl->pending++;
        if (!timer_armed(&cl->retry))
            rb_timer_arm(cl->w, &cl->retry, rb_now_ns() + RETRY_NS);
        return;
    }
    /* The exchange is timed from before socket(2) to the last reply byte. */
    c->intended = t0;
}

static void cr_on_retry(struct timer *t, uint64_t now)
{
    struct cli *cl = (struct cli *)((char *)t - offsetof(struct cli, retry));
    uint32_t n = cl->pending;

    (void)now;
    cl->pending = 0;
    while (n-- > 0 && !cl->stopping)
        cr_start_one(cl);
}

static int cr_start(struct cli *cl)
{
    const struct rb_opts *o = cl->cfg->o;

    for (uint32_t i = cl->w->id; i < o->conns; i += cl->w->run->nworkers)
        cr_start_one(cl);
    return 0;
}

/* ---------------------------------------------------------------- throughput */

static void tp_send_more(struct cconn *c)
{
    struct cli *cl = c->cl;

    if (c->base.closing || c->tx.inflight || c->shut)
        return;
    if (cl->stopping) {
        /* Everything sent is out: the FIN tells the echo (or the sink)
         * that the stream is complete. */
        c->shut = true;
        loop_shutdown_wr(cl->w->loop, c->base.fd);
        return;
    }
    loop_submit_send(cl->w->loop, &c->tx, c->base.fd, rb_pattern_at(c->sent), TP_CHUNK);
}

/* Up: the sink's "<bytes> ok" line; true when it vouches for every byte. */
static bool tp_report_ok(struct cconn *c)
{
    char *end;
    unsigned long long n;

    c->report[c->rlen < sizeof(c->report) ? c->rlen : sizeof(c->report) - 1] = 0;
    n = strtoull(c->report, &end, 10);
    return end != c->report && n == c->sent && strcmp(end, " ok\n") == 0;
}

static void tp_finish(struct cconn *c)
{
    struct cli *cl = c->cl;
    enum rb_dir d = cl->cfg->o->direction;

    if (d == RB_DIR_UP && !tp_report_ok(c)) {
        cl->bad_data = true;
        cl_error(cl, "stream %u: the sink reported '%.*s' for %" PRIu64 " bytes sent", c->idx,
                 (int)strcspn(c->report, "\n"), c->report, c->sent);
    } else if (d == RB_DIR_BOTH && c->rcvd != c->sent) {
        cl->bad_data = true;
        cl_error(cl, "stream %u: %" PRIu64 " bytes sent but %" PRIu64 " came back", c->idx, c->sent,
                 c->rcvd);
    } else {
        c->verified = true;
    }
    cconn_close(c);
}

static void tp_on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, rx));
    struct cli *cl = c->cl;
    struct loop *loop = cl->w->loop;

    if (flags & LOOP_F_BUF) {
        const uint8_t *p = loop_buf(loop, op->bid);

        if (c->base.closing) {
            loop_buf_put(loop, op->bid);
            return;
        }
        if (cl->cfg->o->direction == RB_DIR_UP) {
            uint32_t room = sizeof(c->report) - 1 - c->rlen;
            uint32_t n = (uint32_t)res < room ? (uint32_t)res : room;

            memcpy(c->report + c->rlen, p, n);
            c->rlen += n;
        } else {
            long bad = rb_pattern_check(c->rcvd, p, (size_t)res);

            if (bad >= 0) {
                loop_buf_put(loop, op->bid);
                cl->bad_data = true;
                cl_error(cl, "stream %u: byte %" PRIu64 " differs from what was sent", c->idx,
                         c->rcvd + (uint64_t)bad);
                cconn_close(c);
                return;
            }
            c->rcvd += (uint64_t)res;
            atomic_fetch_add_explicit(&cl->w->p_bytes, (uint64_t)res, memory_order_relaxed);
            if (cl->measuring)
                cl->bytes += (uint64_t)res;
        }
        loop_buf_put(loop, op->bid);
    } else if (res == 0) {
        c->eof = true;
    } else if (!c->base.closing && res != -ECANCELED) {
        cl_error(cl, "stream %u: receive: %s", c->idx, strerror(-res));
        cconn_close(c);
        return;
    }
    if (c->base.closing)
        return;
    if (c->eof) {
        if (!cl->stopping) {
            cl_error(cl, "stream %u: the target closed the stream early", c->idx);
            cconn_close(c);
        } else {
            tp_finish(c);
        }
        return;
    }
    if (!(flags & LOOP_F_MORE))
        loop_submit_recv(loop, &c->rx, c->base.fd);
}

static void tp_on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = cconn_of(op, offsetof(struct cconn, tx));
    struct cli *cl = c->cl;

    (void)flags;
    if (c->base.closing)
        return;
    if (res <= 0) {
        cl_error(cl, "stream %u: send: %s", c->idx, strerror(res < 0 ? -res : EPIPE));
        cconn_close(c);
        return;
    }
    c->sent += (uint64_t)res;
    if (cl->cfg->o->direction == RB_DIR_UP) {
        atomic_fetch_add_explicit(&cl->w->p_bytes, (uint64_t)res, memory_order_relaxed);
        if (cl->measuring)
            cl->bytes += (uint64_t)res;
    }
    tp_send_more(c);
}

static void tp_on_conn(struct loop_op *op, int res, unsigned flags)
{
    struct cconn *c = connected(op, res);

    (void)flags;
    if (c && c->cl->cfg->o->direction != RB_DIR_DOWN)
        tp_send_more(c);
}

static int tp_start(struct cli *cl)
{
    const struct rb_opts *o = cl->cfg->o;

    for (uint32_t i = cl->w->id; i < o->streams; i += cl->w->run->nworkers) {
        cconn_open(cl, i, tp_on_conn, tp_on_rx, tp_on_tx);
        cl->assigned++;
    }
    return 0;
}

static void tp_stop(struct cli *cl)
{
    struct rb_conn *b, *next;

    for (b = cl->conns.live.next; b != &cl->conns.live; b = next) {
        struct cconn *c = (struct cconn *)b;

        next = b->next;
        if (cl->cfg->o->direction == RB_DIR_DOWN || c->cop.inflight) {
            /* A source never ends by itself: all it sent was checked. */
            c->verified = !c->cop.inflight;
            cconn_close(c);
        } else {
            tp_send_more(c);
        }
    }
}

/* ---------------------------------------------------------------- role */

static int cli_start(struct rb_worker *w)
{
    const struct cli_cfg *cfg = w->run->arg;
    struct cli *cl = lb_calloc(1, sizeof(*cl));

    if (!cl)
        return -ENOMEM;
    w->ctx = cl;
    cl->w = w;
    cl->cfg = cfg;
    rb_conns_init(&cl->conns, cconn_free);
    timer_init(&cl->retry, cr_on_retry);
    if (rb_hist_init(&cl->hist) < 0)
        return -ENOMEM;
    switch (cfg->o->cmd) {
    case RB_CMD_LATENCY:
        return lat_start(cl);
    case RB_CMD_CONNRATE:
        return cr_start(cl);
    default:
        return tp_start(cl);
    }
}

static void cli_phase(struct rb_worker *w, enum rb_phase ph)
{
    struct cli *cl = w->ctx;

    if (ph == RB_PH_MEASURE) {
        rb_hist_reset(&cl->hist);
        cl->count = cl->bytes = 0;
        cl->measuring = true;
        return;
    }
    if (ph != RB_PH_STOP)
        return;
    cl->measuring = false;
    cl->stopping = true;
    rb_timer_disarm(w, &cl->retry);
    if (cl->cfg->o->cmd == RB_CMD_LATENCY && !cl->cfg->o->closed)
        lat_count_backlog(cl, w->run->t_measure, w->run->t_stop);
    if (cl->cfg->o->cmd == RB_CMD_THROUGHPUT)
        tp_stop(cl);
    else
        rb_conns_close_all(w, &cl->conns);
}

static void cli_turn(struct rb_worker *w)
{
    struct cli *cl = w->ctx;

    rb_conns_reap(&cl->conns);
}

static bool cli_done(struct rb_worker *w)
{
    struct cli *cl = w->ctx;

    rb_conns_reap(&cl->conns);
    return rb_conns_empty(&cl->conns);
}

static void cli_fini(struct rb_worker *w)
{
    struct cli *cl = w->ctx;

    if (!cl)
        return;
    /* Connections left by a worker that timed out: its loop is gone, so
     * no completion can reach them any more. */
    rb_conns_drop(&cl->conns);
    rb_hist_free(&cl->hist);
    lb_free(cl);
    w->ctx = NULL;
}

/* Connections worker <w> takes on at the start: its share of the split. */
static uint32_t share_of(const struct rb_opts *o, const struct rb_worker *w)
{
    uint32_t n = o->cmd == RB_CMD_THROUGHPUT ? o->streams : o->conns;

    if (o->cmd == RB_CMD_CONNRATE)
        return 0; /* connrate opens and closes all the time: not counted */
    return w->id < n ? (n - w->id + w->run->nworkers - 1) / w->run->nworkers : 0;
}

/* The error for a worker whose connections outlived the stop grace: what
 * the first one still waits for, so a hang can be told from a slow drain. */
static void describe_stuck(uint32_t wid, struct cli *cl, char *buf, size_t len)
{
    struct cconn *c;

    if (!cl || cl->conns.live.next == &cl->conns.live) {
        snprintf(buf, len, "worker %u: connections still open 10 s after the end", wid);
        return;
    }
    c = (struct cconn *)cl->conns.live.next;
    snprintf(buf, len,
             "worker %u: %u connections still open 10 s after the end (#%u: sent %" PRIu64
             " B, received %" PRIu64 " B, %s)",
             wid, cl->conns.nlive, c->idx, c->sent, c->rcvd,
             c->tx.inflight ? "a send still in flight"
             : c->shut      ? "waiting for the end of the echo"
                            : "busy");
}

int rb_client_run(const struct rb_opts *o, struct rb_result *res)
{
    struct rb_role role = {
        .start = cli_start,
        .phase = cli_phase,
        .turn = cli_turn,
        .done = cli_done,
        .fini = cli_fini,
        .buf_size = o->cmd == RB_CMD_THROUGHPUT ? 64 * 1024 : 16 * 1024,
        .buf_count = o->cmd == RB_CMD_THROUGHPUT ? 512 : 1024,
    };
    struct cli_cfg cfg = {.o = o};
    struct rb_run run = {.unit = o->cmd == RB_CMD_LATENCY    ? "req/s"
                                 : o->cmd == RB_CMD_CONNRATE ? "conn/s"
                                                             : "Gbit/s"};
    uint32_t want = o->cmd == RB_CMD_THROUGHPUT ? o->streams : o->conns;
    int ret;

    memset(res, 0, sizeof(*res));
    res->cmd = o->cmd;
    ret = rb_hist_init(&res->hist);
    if (ret < 0 || rb_pattern_init() < 0) {
        fprintf(stderr, "ringbench: out of memory\n");
        return -ENOMEM;
    }
    net_raise_nofile();
    res->workers = rb_workers_for(o, want);
    cfg.t0 = rb_now_ns() + START_DELAY_NS;
    ret = rb_run_start(&run, o, &role, res->workers, &cfg);
    if (ret < 0) {
        fprintf(stderr, "ringbench %s: cannot start: %s\n", rb_cmd_name(o->cmd), strerror(-ret));
        return ret;
    }
    rb_run_timed(&run);
    rb_run_join(&run);
    res->checksum_ok = true;
    for (uint32_t i = 0; i < run.nworkers; i++) {
        struct rb_worker *w = &run.w[i];
        struct cli *cl = w->ctx;

        if (w->timed_out) {
            res->errors++;
            if (!res->first_error[0])
                describe_stuck(i, cl, res->first_error, sizeof(res->first_error));
        }
        if (!cl)
            continue;
        if (cl->assigned != share_of(o, w)) {
            /* Each connection belongs to exactly one worker; anything else
             * multiplies the offered load behind the user's back. */
            res->errors++;
            snprintf(res->first_error, sizeof(res->first_error),
                     "internal: worker %u took on %u connections instead of %u", i, cl->assigned,
                     share_of(o, w));
        }
        rb_hist_merge(&res->hist, &cl->hist);
        res->count += cl->count;
        res->errors += cl->errors;
        res->bytes += cl->bytes;
        res->backlog += cl->backlog;
        res->due += cl->due;
        if (cl->bad_data)
            res->checksum_ok = false;
        if (cl->first_error[0] && !res->first_error[0])
            memcpy(res->first_error, cl->first_error, sizeof(res->first_error));
    }
    res->interrupted = run.interrupted;
    res->secs = (double)(run.t_stop - run.t_measure) / 1e9;
    if (res->secs > 0) {
        res->rate = (double)res->count / res->secs;
        res->gbps = (double)res->bytes * 8 / res->secs / 1e9;
    }
    if (o->cmd == RB_CMD_LATENCY && !o->closed) {
        /* The replies of up to one request per connection may still be on
         * their way when the window closes, and as many came in at its
         * start for requests sent before it: <conns> of slack. */
        double due = (double)res->due, slack = o->conns;

        res->behind = (double)res->count + slack < (1.0 - RB_BEHIND_FRACTION) * due ||
                      (double)res->backlog > RB_BEHIND_FRACTION * due + slack;
    }
    if (o->cmd == RB_CMD_THROUGHPUT && (res->errors || res->bytes == 0))
        res->checksum_ok = false;
    rb_run_free(&run);
    return 0;
}
