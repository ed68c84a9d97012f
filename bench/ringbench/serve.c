/*
 * serve.c - `ringbench serve`: echo, sink, http, name and source backends.
 *
 * Each worker owns its SO_REUSEPORT listener (the same address; the kernel
 * spreads connections), a multishot accept, and every connection it accepts,
 * exactly like ringlb's workers, so the backend is never what a benchmark
 * measures. Modes:
 *   echo    returns every byte; on the client's EOF it finishes echoing and
 *           shuts down its write side.
 *   sink    reads; on EOF writes "<bytes> ok\n", or "<bytes> mismatch@OFF\n"
 *           when the bytes were not ringbench's throughput pattern, and closes.
 *   http    answers each request (a header block ending in an empty line;
 *           bodies are not expected) with a small 200, keep-alive.
 *   name    writes "<name>\n", shuts down its write side, closes on EOF.
 *   source  sends the throughput pattern until the client goes away.
 *   sockperf  echo for `sockperf ping-pong --tcp`: its messages start with a
 *           14-byte header (8-byte sequence, 2-byte flags, 4-byte length,
 *           network order) and its client drops a reply whose "client" flag
 *           is still set; `sockperf server` clears it, so this mode does too
 *           and changes nothing else.
 * --delay holds every response (echoed bytes, http answers, the name) for a
 * fixed time after the bytes that asked for it arrived.
 *
 * A dry buffer pool never stops the server: echo connections keep what they
 * received in pool buffers until the client reads its echo, so a few clients
 * that send and never read can hold every buffer of a worker, and a receive
 * that finds the pool empty would wait for one until they go away. Each
 * connection's receive is in one of three states (enum rx_state): RX_POOL,
 * a multishot receive into pool buffers; RX_PAUSED, stopped because more
 * than HIGH_WATER waits to be echoed (backpressure, bounding what one
 * connection holds); RX_DRY, entered when the receive reports the pool
 * empty (notify_nobuf): the multishot receive is cancelled and the
 * connection reads with a poll and a plain recv(2) into its own DRY_BUF
 * bytes, allocated then, and reads nothing more until those are echoed;
 * then it goes back to the pool. A connection whose client does not read
 * holds at most HIGH_WATER of the pool plus DRY_BUF of its own, and a new
 * client is always read, from the pool or, when it is dry, the slow way.
 */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../core/alloc.h"
#include "../../core/log.h"
#include "../../core/net.h"
#include "pattern.h"
#include "rt.h"

#define HIGH_WATER        (1u << 20)
#define LOW_WATER         (256u * 1024)
#define SOURCE_CHUNK      (256u * 1024)
#define HTTP_BATCH        64
#define MARKS             32
#define ACCEPT_BACKOFF_NS (100ULL * 1000000)
#define DRY_BUF           (16u * 1024)
/* sockperf's message header (src/message.h): the low byte of the flags,
 * bit 0 MASK_CLIENT, and the big-endian message length. */
#define SP_HDR         14
#define SP_FLAGS_LO    9
#define SP_LEN_AT      10
#define SP_MASK_CLIENT 1u

static const char http_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                "Content-Type: text/plain\r\n\r\nok\n";
#define HTTP_RESP_LEN (sizeof(http_resp) - 1)

struct serve_cfg {
    const struct rb_opts *o;
    int *lfds; /* one listener per worker */
    char *name_line;
    size_t name_len;
    char *http_block; /* HTTP_BATCH responses back to back */
};

struct srv {
    struct rb_worker *w;
    const struct serve_cfg *cfg;
    struct rb_conns conns;
    struct loop_op acc;
    struct timer backoff;
    int lfd;
};

/* A response that may not leave before <ready>: <units> is the running
 * total (bytes for echo, requests for http) it releases. */
struct mark {
    uint64_t units;
    uint64_t ready;
};

/* How a connection receives: see the top of this file. */
enum rx_state { RX_POOL = 0, RX_PAUSED, RX_DRY };

struct sconn {
    struct rb_conn base;
    struct srv *s;
    struct loop_op rx, tx;
    struct buf_queue q;
    uint64_t in_units;   /* bytes (echo, sink) or requests (http) received */
    uint64_t allowed;    /* units released by --delay */
    uint64_t out_units;  /* units sent */
    uint32_t tx_units;   /* units in the send in flight */
    uint32_t http_match; /* bytes of "\r\n\r\n" matched so far */
    long bad_at;         /* sink: first byte off the pattern, -1 if none */
    uint32_t sp_off;     /* sockperf: offset in the current message */
    uint32_t sp_len;     /* sockperf: its length, once the header is in */
    uint8_t sp_hdr[SP_HDR];
    struct mark marks[MARKS];
    uint8_t mhead, mlen;
    enum rx_state rx_state;
    bool eof, shut, finishing;
    bool tx_dry;      /* the send in flight is from <dry> */
    uint8_t *dry;     /* RX_DRY's buffer, allocated the first time */
    uint32_t dry_len; /* bytes in <dry> */
    uint32_t dry_off; /* of them already echoed */
    char report[64];
};

static void sconn_pump(struct sconn *c);

/*
 * One line on stderr, through <rl>: what a client can make happen once per
 * connection (a dry pool, accept out of descriptors) must not flood the
 * log of a benchmark. Any worker.
 */
static void serve_warn(struct log_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void serve_warn(struct log_ratelimit *rl, const char *fmt, ...)
{
    char line[256];
    uint32_t missed;
    va_list ap;
    int n;

    if (!log_ratelimit_allow(rl, rb_now_ns() / 1000000, &missed))
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n >= 0 && missed && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, " (%u similar messages suppressed)", missed);
    fprintf(stderr, "ringbench serve: %s\n", line);
}

static void sconn_close(struct sconn *c)
{
    struct srv *s = c->s;

    loop_bufq_clear(s->w->loop, &c->q);
    rb_conn_close(s->w, &s->conns, &c->base);
}

static void sconn_free(struct rb_conn *base)
{
    struct sconn *c = (struct sconn *)base;

    lb_free(c->dry);
    lb_free(c);
}

/* Modes that send back what they receive (and so queue it). */
static bool echoes(enum rb_mode m)
{
    return m == RB_MODE_ECHO || m == RB_MODE_SOCKPERF;
}

static bool delayed(const struct sconn *c)
{
    return c->s->cfg->o->delay_ns > 0;
}

/* Records that <units> (a running total) may go out --delay from now. */
static void mark_push(struct sconn *c, uint64_t units)
{
    uint64_t ready = rb_now_ns() + c->s->cfg->o->delay_ns;

    if (c->mlen == MARKS) {
        /* Full: fold into the newest mark, which only ever makes a
         * response later than asked, never earlier. */
        struct mark *m = &c->marks[(c->mhead + MARKS - 1) % MARKS];

        m->units = units;
        m->ready = ready;
        return;
    }
    c->marks[(c->mhead + c->mlen) % MARKS] = (struct mark){units, ready};
    c->mlen++;
}

/* Releases the marks that are due; arms the timer for the next one. */
static void marks_release(struct sconn *c)
{
    uint64_t now = rb_now_ns();

    while (c->mlen && c->marks[c->mhead].ready <= now) {
        c->allowed = c->marks[c->mhead].units;
        c->mhead = (uint8_t)((c->mhead + 1) % MARKS);
        c->mlen--;
    }
    if (c->mlen)
        rb_timer_arm(c->s->w, &c->base.t, c->marks[c->mhead].ready);
}

static void on_delay(struct timer *t, uint64_t now)
{
    struct sconn *c = (struct sconn *)((char *)t - offsetof(struct sconn, base.t));

    (void)now;
    marks_release(c);
    sconn_pump(c);
}

static uint64_t sendable(struct sconn *c)
{
    uint64_t limit = delayed(c) ? c->allowed : c->in_units;

    return limit > c->out_units ? limit - c->out_units : 0;
}

static void send_report(struct sconn *c)
{
    int n;

    if (c->bad_at < 0)
        n = snprintf(c->report, sizeof(c->report), "%" PRIu64 " ok\n", c->in_units);
    else
        n = snprintf(c->report, sizeof(c->report), "%" PRIu64 " mismatch@%ld\n", c->in_units,
                     c->bad_at);
    c->finishing = true;
    loop_submit_send(c->s->w->loop, &c->tx, c->base.fd, c->report, (uint32_t)n);
}

/* Starts the next send if one is due, or ends the connection once done. */
static void sconn_pump(struct sconn *c)
{
    struct loop *loop = c->s->w->loop;
    const struct serve_cfg *cfg = c->s->cfg;
    const void *data;
    uint64_t n;

    if (c->base.closing || c->tx.inflight)
        return;
    switch (cfg->o->mode) {
    case RB_MODE_ECHO:
    case RB_MODE_SOCKPERF:
        /* <dry> holds bytes only while the queue receives nothing more,
         * and they came after every byte queued: the queue goes first. */
        c->tx_dry = !c->q.bytes && c->dry_off < c->dry_len;
        if (c->tx_dry) {
            data = c->dry + c->dry_off;
            n = c->dry_len - c->dry_off;
        } else {
            n = loop_bufq_peek(loop, &c->q, &data);
        }
        if (n > sendable(c))
            n = sendable(c);
        if (n) {
            c->tx_units = (uint32_t)n;
            loop_submit_send(loop, &c->tx, c->base.fd, data, (uint32_t)n);
        } else if (c->eof && !c->q.bytes && c->dry_off == c->dry_len) {
            loop_shutdown_wr(loop, c->base.fd);
            sconn_close(c);
        }
        break;
    case RB_MODE_HTTP:
        n = sendable(c);
        if (n > HTTP_BATCH)
            n = HTTP_BATCH;
        if (n) {
            c->tx_units = (uint32_t)n;
            loop_submit_send(loop, &c->tx, c->base.fd, cfg->http_block,
                             (uint32_t)(n * HTTP_RESP_LEN));
        } else if (c->eof && c->out_units == c->in_units) {
            sconn_close(c);
        }
        break;
    case RB_MODE_NAME:
        if (!c->shut && sendable(c)) {
            c->tx_units = 1;
            loop_submit_send(loop, &c->tx, c->base.fd, cfg->name_line, (uint32_t)cfg->name_len);
        } else if (c->shut && c->eof) {
            sconn_close(c);
        }
        break;
    case RB_MODE_SINK:
        if (c->finishing)
            sconn_close(c); /* the report is out */
        else if (c->eof)
            send_report(c);
        break;
    case RB_MODE_SOURCE:
        if (c->eof) {
            sconn_close(c);
            break;
        }
        c->tx_units = SOURCE_CHUNK;
        loop_submit_send(loop, &c->tx, c->base.fd, rb_pattern_at(c->out_units), SOURCE_CHUNK);
        break;
    }
}

/*
 * sockperf mode: clears the client flag of every message header in <p>,
 * which continues the stream where the last chunk stopped. Headers may be
 * split across chunks; a length shorter than a header (not sockperf) is
 * treated as one header per message, so the stream is still echoed.
 */
static void sockperf_mark(struct sconn *c, uint8_t *p, uint32_t n)
{
    while (n > 0) {
        uint32_t take;

        if (c->sp_off < SP_HDR) {
            take = SP_HDR - c->sp_off < n ? SP_HDR - c->sp_off : n;
            memcpy(c->sp_hdr + c->sp_off, p, take);
            if (c->sp_off <= SP_FLAGS_LO && SP_FLAGS_LO < c->sp_off + take)
                p[SP_FLAGS_LO - c->sp_off] &= (uint8_t)~SP_MASK_CLIENT;
            if (c->sp_off + take == SP_HDR) {
                const uint8_t *l = c->sp_hdr + SP_LEN_AT;

                c->sp_len =
                    (uint32_t)l[0] << 24 | (uint32_t)l[1] << 16 | (uint32_t)l[2] << 8 | l[3];
                if (c->sp_len < SP_HDR)
                    c->sp_len = SP_HDR;
            }
        } else {
            take = c->sp_len - c->sp_off < n ? c->sp_len - c->sp_off : n;
        }
        c->sp_off += take;
        p += take;
        n -= take;
        if (c->sp_off >= SP_HDR && c->sp_off == c->sp_len)
            c->sp_off = 0;
    }
}

/* Counts complete requests: header blocks ending in CRLF CRLF. */
static uint64_t http_count(struct sconn *c, const char *p, uint32_t len)
{
    static const char end[] = "\r\n\r\n";
    uint64_t reqs = 0;

    for (uint32_t i = 0; i < len; i++) {
        if (p[i] == end[c->http_match]) {
            if (++c->http_match == 4) {
                reqs++;
                c->http_match = 0;
            }
        } else {
            c->http_match = p[i] == '\r' ? 1 : 0;
        }
    }
    return reqs;
}

/*
 * Takes <n> received bytes at <p>: a pool buffer <bid>, or <c->dry> when
 * <bid> is negative. Echo modes keep them until they are sent; the others
 * are done with them on return.
 */
static void rx_data(struct sconn *c, uint8_t *p, uint32_t n, int bid)
{
    struct loop *loop = c->s->w->loop;
    enum rb_mode mode = c->s->cfg->o->mode;
    uint64_t before = c->in_units;

    switch (mode) {
    case RB_MODE_SOCKPERF:
        sockperf_mark(c, p, n);
        /* otherwise an echo */
        __attribute__((fallthrough));
    case RB_MODE_ECHO:
        if (bid >= 0)
            loop_bufq_push(loop, &c->q, (uint16_t)bid, n);
        else
            c->dry_len = n;
        c->in_units += n;
        bid = -1;
        break;
    case RB_MODE_HTTP:
        c->in_units += http_count(c, (const char *)p, n);
        break;
    case RB_MODE_SINK:
        if (c->bad_at < 0) {
            long bad = rb_pattern_check(c->in_units, p, n);

            if (bad >= 0)
                c->bad_at = (long)c->in_units + bad;
        }
        c->in_units += n;
        break;
    default:
        break;
    }
    if (bid >= 0)
        loop_buf_put(loop, (uint16_t)bid);
    if (delayed(c) && c->in_units != before && (echoes(mode) || mode == RB_MODE_HTTP)) {
        mark_push(c, c->in_units);
        marks_release(c);
    }
}

/* Arms the next receive once the previous one has ended (no LOOP_F_MORE). */
static void rx_next(struct sconn *c)
{
    struct loop *loop = c->s->w->loop;

    if (c->eof || c->base.closing || c->rx.inflight)
        return;
    if (c->rx_state == RX_DRY) {
        /* With bytes still to echo, on_tx comes back here once they are. */
        if (c->dry_off == c->dry_len)
            loop_submit_poll(loop, &c->rx, c->base.fd, false);
    } else if (echoes(c->s->cfg->o->mode) && c->q.bytes >= HIGH_WATER) {
        c->rx_state = RX_PAUSED;
    } else {
        c->rx_state = RX_POOL;
        loop_submit_recv(loop, &c->rx, c->base.fd);
    }
}

/* The pool is empty: read this connection the slow way (see the top). */
static void rx_pool_dry(struct sconn *c)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RL_INTERVAL_MS, 1);

    if (c->rx_state != RX_POOL || c->q.bytes >= HIGH_WATER)
        return; /* being paused anyway */
    if (!c->dry) {
        c->dry = lb_malloc(DRY_BUF);
        if (!c->dry)
            return; /* the receive stays armed and waits for a buffer */
    }
    /* Tests wait for this line to know the pool is held by their clients. */
    serve_warn(&rl, "worker %u: receive buffers ran dry: reading without them", c->s->w->id);
    c->rx_state = RX_DRY;
    loop_cancel(c->s->w->loop, &c->rx);
}

/* RX_DRY: the socket is readable (the poll on c->rx completed). */
static void rx_dry_ready(struct sconn *c, int res)
{
    ssize_t n;

    if (res < 0) {
        if (res != -ECANCELED)
            sconn_close(c);
        return;
    }
    n = recv(c->base.fd, c->dry, DRY_BUF, MSG_DONTWAIT);
    if (n > 0) {
        rx_data(c, c->dry, (uint32_t)n, -1);
        /* Not an echo: the bytes are used up, the pool may have refilled. */
        if (c->dry_len == 0)
            c->rx_state = RX_POOL;
    } else if (n == 0) {
        c->eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
        sconn_close(c);
        return;
    }
    rx_next(c);
    sconn_pump(c);
}

static void on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct sconn *c = (struct sconn *)((char *)op - offsetof(struct sconn, rx));
    struct loop *loop = c->s->w->loop;

    if (c->base.closing) {
        if (flags & LOOP_F_BUF)
            loop_buf_put(loop, op->bid);
        return;
    }
    if (op->kind == LOOP_OP_POLL) {
        rx_dry_ready(c, res);
        return;
    }
    if (res > 0 && (flags & LOOP_F_BUF)) {
        /* Also after rx_pool_dry(): buffers may have come back before the
         * cancel did; these bytes still come before any read into <dry>. */
        rx_data(c, loop_buf(loop, op->bid), (uint32_t)res, op->bid);
    } else if (res == -ENOBUFS) {
        rx_pool_dry(c);
    } else if (res == 0) {
        c->eof = true;
    } else if (res < 0 && res != -ECANCELED) {
        sconn_close(c);
        return;
    }
    if (!(flags & LOOP_F_MORE)) {
        rx_next(c);
    } else if (echoes(c->s->cfg->o->mode) && c->q.bytes >= HIGH_WATER) {
        /* A client that does not read its echo: stop reading from it
         * rather than buffering without bound. */
        loop_cancel(loop, &c->rx);
    }
    sconn_pump(c);
}

static void on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct sconn *c = (struct sconn *)((char *)op - offsetof(struct sconn, tx));
    struct loop *loop = c->s->w->loop;

    (void)flags;
    if (c->base.closing)
        return;
    if (res <= 0) {
        sconn_close(c);
        return;
    }
    switch (c->s->cfg->o->mode) {
    case RB_MODE_ECHO:
    case RB_MODE_SOCKPERF:
        c->out_units += (uint64_t)res;
        if (c->tx_dry) {
            c->dry_off += (uint32_t)res;
            if (c->dry_off == c->dry_len) {
                /* Echoed: try the pool again (it says if still dry). */
                c->dry_off = c->dry_len = 0;
                c->rx_state = RX_POOL;
                rx_next(c);
            }
        } else {
            loop_bufq_consume(loop, &c->q, (uint32_t)res);
            if (c->rx_state == RX_PAUSED && c->q.bytes <= LOW_WATER) {
                c->rx_state = RX_POOL;
                rx_next(c);
            }
        }
        break;
    case RB_MODE_NAME:
        c->out_units++;
        c->shut = true;
        loop_shutdown_wr(loop, c->base.fd);
        break;
    default:
        c->out_units += c->tx_units;
        break;
    }
    sconn_pump(c);
}

static void srv_accept_again(struct srv *s)
{
    loop_submit_accept(s->w->loop, &s->acc, s->lfd);
}

static void on_backoff(struct timer *t, uint64_t now)
{
    struct srv *s = (struct srv *)((char *)t - offsetof(struct srv, backoff));

    (void)now;
    if (s->w->seen != RB_PH_STOP && !s->acc.inflight)
        srv_accept_again(s);
}

static void on_accept(struct loop_op *op, int res, unsigned flags)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RL_INTERVAL_MS, LOG_RL_BURST);
    struct srv *s = (struct srv *)((char *)op - offsetof(struct srv, acc));
    struct sconn *c;

    if (res >= 0 && s->w->seen == RB_PH_STOP) {
        close(res);
    } else if (res >= 0) {
        c = lb_calloc(1, sizeof(*c));
        if (!c) {
            close(res);
        } else {
            c->s = s;
            c->base.fd = res;
            c->base.ops[0] = &c->rx;
            c->base.ops[1] = &c->tx;
            c->rx.cb = on_rx;
            c->rx.notify_nobuf = 1;
            c->tx.cb = on_tx;
            c->bad_at = -1;
            timer_init(&c->base.t, on_delay);
            loop_bufq_init(&c->q);
            rb_conns_add(&s->conns, &c->base);
            loop_submit_recv(s->w->loop, &c->rx, res);
            if (s->cfg->o->mode == RB_MODE_NAME) {
                c->in_units = 1;
                if (delayed(c)) {
                    mark_push(c, 1);
                    marks_release(c);
                }
            }
            sconn_pump(c);
        }
    }
    if (flags & LOOP_F_MORE || s->w->seen == RB_PH_STOP)
        return;
    if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
        /* Out of descriptors: wait for connections to close, never spin. */
        serve_warn(&rl, "accept: %s; retrying in 100 ms", strerror(-res));
        rb_timer_arm(s->w, &s->backoff, rb_now_ns() + ACCEPT_BACKOFF_NS);
        return;
    }
    if (res < 0 && res != -ECANCELED && res != -EINTR && res != -ECONNABORTED)
        serve_warn(&rl, "accept: %s", strerror(-res));
    srv_accept_again(s);
}

static int srv_start(struct rb_worker *w)
{
    const struct serve_cfg *cfg = w->run->arg;
    struct srv *s = lb_calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    w->ctx = s;
    s->w = w;
    s->cfg = cfg;
    s->lfd = cfg->lfds[w->id];
    rb_conns_init(&s->conns, sconn_free);
    timer_init(&s->backoff, on_backoff);
    s->acc.cb = on_accept;
    srv_accept_again(s);
    return 0;
}

static void srv_phase(struct rb_worker *w, enum rb_phase ph)
{
    struct srv *s = w->ctx;

    if (ph != RB_PH_STOP)
        return;
    rb_timer_disarm(w, &s->backoff);
    loop_cancel(w->loop, &s->acc);
    rb_conns_close_all(w, &s->conns);
}

static void srv_turn(struct rb_worker *w)
{
    struct srv *s = w->ctx;

    rb_conns_reap(&s->conns);
}

static bool srv_done(struct rb_worker *w)
{
    struct srv *s = w->ctx;

    rb_conns_reap(&s->conns);
    return !s->acc.inflight && rb_conns_empty(&s->conns);
}

static void srv_fini(struct rb_worker *w)
{
    struct srv *s = w->ctx;

    if (s)
        rb_conns_drop(&s->conns); /* left by a worker that timed out */
    lb_free(w->ctx);
    w->ctx = NULL;
}

static const struct rb_role serve_role = {
    .start = srv_start,
    .phase = srv_phase,
    .turn = srv_turn,
    .done = srv_done,
    .fini = srv_fini,
    .buf_size = 64 * 1024,
    .buf_count = 1024,
};

/* Opens one listener per worker on the same address. With port 0 the first
 * one's port is reused, so every worker serves the port that is printed. */
static int open_listeners(const struct rb_opts *o, int *lfds, uint32_t n, char *shown, size_t len)
{
    struct cfg_addr a = o->listen;
    bool unix_sock = a.ss.ss_family == AF_UNIX;
    uint32_t i;

    for (i = 0; i < n; i++) {
        lfds[i] = -1;
        if (unix_sock && i > 0) {
            /* No SO_REUSEPORT for unix sockets: the workers share one. */
            lfds[i] = dup(lfds[0]);
            if (lfds[i] < 0)
                goto err;
            continue;
        }
        lfds[i] = net_listen((struct sockaddr *)&a.ss, a.len, !unix_sock);
        if (lfds[i] < 0) {
            errno = -lfds[i];
            goto err;
        }
        if (i == 0 && !unix_sock) {
            a.len = sizeof(a.ss);
            if (getsockname(lfds[0], (struct sockaddr *)&a.ss, &a.len) < 0)
                goto err;
        }
    }
    cfg_addr_str(&a, shown, len);
    return 0;
err:
    fprintf(stderr, "ringbench serve: cannot listen on %s: %s\n", o->listen_text, strerror(errno));
    while (i-- > 0)
        close(lfds[i]);
    return -1;
}

int rb_serve_main(const struct rb_opts *o)
{
    struct serve_cfg cfg = {.o = o};
    struct rb_run run = {.unit = "conn"};
    uint32_t n = rb_workers_for(o, UINT32_MAX);
    char shown[128];
    int rc = 1;

    net_raise_nofile();
    cfg.lfds = lb_calloc(n, sizeof(int));
    cfg.name_len = strlen(o->name) + 1;
    cfg.name_line = lb_malloc(cfg.name_len + 1);
    cfg.http_block = lb_malloc(HTTP_BATCH * HTTP_RESP_LEN);
    if (!cfg.lfds || !cfg.name_line || !cfg.http_block || rb_pattern_init() < 0) {
        fprintf(stderr, "ringbench serve: out of memory\n");
        goto out;
    }
    snprintf(cfg.name_line, cfg.name_len + 1, "%s\n", o->name);
    for (int i = 0; i < HTTP_BATCH; i++)
        memcpy(cfg.http_block + (size_t)i * HTTP_RESP_LEN, http_resp, HTTP_RESP_LEN);
    if (open_listeners(o, cfg.lfds, n, shown, sizeof(shown)) < 0)
        goto out;
    if (rb_run_start(&run, o, &serve_role, n, &cfg) < 0) {
        fprintf(stderr, "ringbench serve: cannot start %u workers\n", n);
        goto close_out;
    }
    /* Tests and scripts read this line to learn the port. */
    printf("ringbench serve %s listening on %s (%u workers)\n", rb_mode_name(o->mode), shown, n);
    fflush(stdout);
    rb_run_until_signal(&run);
    rb_run_join(&run);
    rb_run_free(&run);
    rc = 0;
close_out:
    for (uint32_t i = 0; i < n; i++)
        close(cfg.lfds[i]);
out:
    lb_free(cfg.lfds);
    lb_free(cfg.name_line);
    lb_free(cfg.http_block);
    return rc;
}
