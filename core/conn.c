/*
 * conn.c - the forwarding state machine, shared by both loop backends.
 *
 * Each direction ("half") moves bytes from a source socket to a destination
 * socket in one of two ways:
 *
 *  - copy: a multishot receive fills pool buffers, which queue on the half
 *    and go out with one send at a time. Backpressure: when the queue holds
 *    HIGH_WATER bytes the receive is cancelled, and it is re-armed once the
 *    queue is back under LOW_WATER, so a slow reader costs at most about
 *    HIGH_WATER plus one batch of completions per direction.
 *
 *  - splice: socket -> pipe -> socket, alternating, so the pipe is either
 *    empty (then EAGAIN from the source means the socket is empty) or being
 *    drained (then EAGAIN means the destination is full). The pipe bounds
 *    the bytes in flight. A half takes a pipe from the worker's pool only
 *    while bytes move and returns it, empty, before it waits for input, so
 *    idle connections cost two descriptors, not six.
 *
 * The pool is shared by the worker's connections, so it can run dry: every
 * buffer queued for a destination that does not read. If those
 * destinations wait for this worker to read from them first (an echo, any
 * peer that stops reading while it cannot write), waiting for a buffer
 * would wait forever. A direction whose receive finds the pool empty
 * therefore moves to splice, whose pipe is its own (half_starved). When it
 * goes idle it comes back to copy if the pool has buffers again, and
 * otherwise waits for input with a poll: a receive armed on a dry pool
 * fails at once, even on an idle socket, so going straight back would spin.
 *
 * Each half is in one forwarding mode at a time (half_mode.h holds the
 * modes and the table of allowed transitions), changed only through
 * half_set_mode().
 *
 * A FIN from the source is forwarded as shutdown(SHUT_WR) on the destination
 * once everything queued has been sent; the other half keeps flowing. The
 * connection ends when both halves have forwarded their FIN, on any error,
 * on a timeout, or at the end of the shutdown grace period.
 *
 * Preamble: a frontend with accept_proxy or sni = rules reads the client
 * before it picks a backend (state CS_PREAMBLE, bounded by proxy_timeout
 * and sni_timeout): the bytes are copied out of pool buffers as they
 * arrive (a hello sent a byte at a time must not hold a buffer per byte),
 * a PROXY header is read and stripped, a ClientHello is read and kept,
 * and the parsers (proxy_proto.c, sni.c) decide. What the connection
 * holds then goes to the server before anything else, together with a
 * PROXY header of its own when the server has send_proxy: the
 * client->server half is in mode PREFIX for that (see the "preamble"
 * section below).
 *
 * Lifetime: conn_close() cancels every operation in flight, closes the
 * sockets and moves the connection to its set's closing list;
 * conn_reap() recycles it between loop turns once the last operation has
 * delivered its final completion (io_uring may still write into it), so no
 * code path ever touches a freed connection.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "../health/health.h"
#include "acl.h"
#include "alloc.h"
#include "backend.h"
#include "compiler.h"
#include "fault.h"
#include "half_mode.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "proxy_proto.h"
#include "runtime.h"
#include "sni.h"

#define HIGH_WATER     (256u * 1024)
#define LOW_WATER      (64u * 1024)
#define PIPE_CHUNK     (64u * 1024)
#define CONN_CACHE_MAX 1024
#define PIPE_CACHE_MAX 64
/* forward = auto: this many full buffers in a row make a flow "bulk". */
#define BULK_READS 8
/* Buffers gathered into one send: bulk flows then cost one operation per
 * 128 KiB instead of one per 16 KiB buffer. */
#define SEND_IOV 8
/* Bytes reach the server's counters as they move, once a connection has
 * moved this many or this long after the last time (one shared atomic per
 * 64 KiB, not per receive): a connection that lives for hours still shows
 * in the throughput graphs, at most 64 KiB or a second behind. */
#define COUNT_BYTES    (64u * 1024)
#define COUNT_BYTES_MS 1000
/* A direction held by a fault looks this often whether the fault is still
 * there (removed, expired): a fault that holds bytes forever (timeout 0)
 * must let go soon after a DELETE. */
#define FAULT_POLL_MS 100

enum conn_state { CS_CONNECTING = 0, CS_ESTABLISHED, CS_CLOSING, CS_PREAMBLE };
enum half_dir { DIR_C2B = 0, DIR_B2C };

struct half {
    struct loop_op rx;
    struct loop_op tx;
    struct buf_queue q;
    struct msghdr msg; /* copy: several queued buffers go out in one sendmsg */
    struct iovec iov[SEND_IOV];
    struct pipe_pair pipe; /* splice only; rd == -1 when none */
    uint32_t in_pipe;
    uint8_t dir;              /* enum half_dir */
    uint8_t mode;             /* enum half_mode, set by half_set_mode() */
    uint8_t eof;              /* the source sent its FIN */
    uint8_t shut;             /* the FIN went on to the destination */
    uint8_t rx_wait;          /* splice: the source had nothing, poll before splicing */
    uint8_t full_reads;       /* consecutive receives that filled a buffer */
    uint64_t bytes;           /* received from the source */
    uint64_t counted;         /* of <bytes>, added to the server's counter */
    struct half_fault *fault; /* mode SHAPED only: the fault that shapes it */
};

/* A fault shaping one direction: allocated only while one does, so a
 * connection without a fault pays one NULL pointer per direction. */
struct half_fault {
    struct fault *f; /* a reference (fault_put) */
    struct half *h;
    struct shaper s;
    struct timer timer; /* when the shaper lets bytes go, or the next look at <f> */
};

struct conn {
    struct conn_set *set;
    struct conn *prev, *next; /* on one of the set's lists (conn.h) */
    int cfd, bfd;
    uint8_t state;
    uint8_t connect_timed_out;
    uint8_t retries_left;
    uint8_t connect_delayed; /* fault connect_delay: the connect waits for the timer */
    uint8_t forward;         /* enum fwd_mode */
    bool log;                /* log_connections */
    uint32_t pool_idx;       /* backend slot (core/backend.h): stable across reloads */
    uint32_t idle_ms;
    uint32_t connect_ms;
    uint64_t key;
    uint64_t last_active;
    uint64_t counted_at;       /* loop time bytes were last added to the server's counters */
    uint64_t connect_deadline; /* with connect_delayed: when connect_timeout runs out */
    struct server *srv;
    uint32_t srv_gen; /* srv->down_gen when it was picked */
    uint32_t fe_idx;  /* frontend slot that accepted it, for metrics and logs */
    uint64_t t_start; /* loop time of the accept */
    const char *end;  /* why it ended, for the connection log; NULL: both FINs */
    int end_err;      /* with it, -errno or 0 */
    /* The client address, only with log_connections: IPv4 or IPv6 (unix
     * clients have none worth logging), the largest being 28 bytes. */
    struct sockaddr_in6 peer;
    /* The per-source table this connection is counted in (NULL: none)
     * and its key there, given back in conn_close(). */
    struct acl_src *src;
    struct acl_src_key src_key;
    struct loop_op conn_op;
    struct timer timer;
    /* What is read before the backend is picked and sent before the
     * client's other bytes (the preamble section); NULL when nothing. */
    struct conn_pre *pre;
    struct half c2b, b2c;
};

/* The preamble (see its section below). */
enum pre_stage { PRE_PROXY = 0, PRE_SNI, PRE_DONE };

/* What a preamble holds at most: a PROXY header and a hello still
 * undecided, plus the rest of the receive buffer that completed them. */
#define PRE_MAX(loop) (PP_MAX_LEN + SNI_MAX_INPUT + loop_buf_size(loop))

struct conn_pre {
    uint8_t stage;   /* enum pre_stage */
    bool have_addrs; /* <src>, <dst> came in a PROXY header */
    uint32_t len;    /* bytes of the client held in <buf> */
    uint32_t cap;
    uint32_t sni_want; /* bytes of <buf> before sni_parse() can answer */
    uint32_t hdr_len;  /* of <hdr>, the PROXY header to send */
    uint32_t sent;     /* of <hdr> then <buf>, in mode PREFIX */
    uint8_t *buf;
    struct sockaddr_storage src, dst;
    uint8_t hdr[PP_BUILD_MAX];
};

static void conn_close(struct conn *c);
static void half_pump(struct conn *c, struct half *h);
static void splice_pump(struct conn *c, struct half *h);
static void connect_next(struct conn *c, const struct server *avoid);
static void connect_failed(struct conn *c, int res);
static void half_fault_detach(struct conn *c, struct half *h);
static void pre_free(struct conn *c);
static void preamble_step(struct conn *c);
static void preamble_take(struct conn *c, uint16_t bid, uint32_t len);
static void preamble_timeout(struct conn *c);
static void prefix_start(struct conn *c);
static void prefix_send(struct conn *c, struct half *h);
static void prefix_sent(struct conn *c, struct half *h, uint32_t n);

static struct conn *half_conn(struct half *h)
{
    return h->dir == DIR_C2B ? container_of(h, struct conn, c2b)
                             : container_of(h, struct conn, b2c);
}

static int half_src(const struct conn *c, const struct half *h)
{
    return h->dir == DIR_C2B ? c->cfd : c->bfd;
}

static int half_dst(const struct conn *c, const struct half *h)
{
    return h->dir == DIR_C2B ? c->bfd : c->cfd;
}

static bool half_splices(const struct half *h)
{
    return half_mode_splices(h->mode);
}

/* Whether the copy path is being drained for a switch to splice. */
static bool half_draining(const struct half *h)
{
    return half_mode_draining(h->mode);
}

/* The one place a half changes mode; a transition the table does not
 * allow is a bug, logged and refused. */
static bool half_set_mode(struct conn *c, struct half *h, enum half_mode to)
{
    if (!half_mode_allowed(h->mode, to)) {
        log_error("conn %d<->%d: %s: no transition from %s to %s", c->cfd, c->bfd,
                  h->dir == DIR_C2B ? "client->server" : "server->client", half_mode_name(h->mode),
                  half_mode_name(to));
        return false;
    }
    log_debug("conn %d<->%d: %s: %s -> %s", c->cfd, c->bfd,
              h->dir == DIR_C2B ? "client->server" : "server->client", half_mode_name(h->mode),
              half_mode_name(to));
    h->mode = (uint8_t)to;
    return true;
}

static bool conn_busy(const struct conn *c)
{
    return c->conn_op.inflight || c->c2b.rx.inflight || c->c2b.tx.inflight || c->b2c.rx.inflight ||
           c->b2c.tx.inflight;
}

static void conn_unlink(struct conn *c)
{
    struct conn_set *set = c->set;

    if (c->prev)
        c->prev->next = c->next;
    else
        set->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* A pipe for splice from the set's cache, or a new one. Returns 0 or -errno. */
static int pipe_get(struct conn_set *set, struct pipe_pair *p)
{
    int fds[2];

    if (set->npipes) {
        *p = set->pipes[--set->npipes];
        return 0;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

/* Gives a pipe back; one that may hold bytes (<empty> false) is closed. */
static void pipe_put(struct conn_set *set, struct pipe_pair *p, bool empty)
{
    if (empty && set->npipes < PIPE_CACHE_MAX) {
        set->pipes[set->npipes++] = *p;
        return;
    }
    close(p->rd);
    close(p->wr);
}

static void half_pipe_release(struct conn *c, struct half *h)
{
    if (h->pipe.rd < 0)
        return;
    pipe_put(c->set, &h->pipe, h->in_pipe == 0 && !h->rx.inflight && !h->tx.inflight);
    h->pipe.rd = h->pipe.wr = -1;
}

static void half_release(struct conn *c, struct half *h)
{
    loop_bufq_clear(c->set->loop, &h->q);
    half_pipe_release(c, h);
}

/*
 * One line per closed connection (log_connections = yes). The client
 * address was taken at accept: once both sides have closed, getpeername()
 * fails with ENOTCONN.
 */
static void conn_log(const struct conn *c)
{
    const struct lb_table *t = backend_table_get();
    struct cfg_addr peer = {.len = sizeof(c->peer)};
    char addr[128] = "-";

    memcpy(&peer.ss, &c->peer, sizeof(c->peer));
    if (c->peer.sin6_family == AF_INET || c->peer.sin6_family == AF_INET6)
        cfg_addr_str(&peer, addr, sizeof(addr));
    log_conn("client=%s frontend=%s backend=%s server=%s in=%llu out=%llu duration_ms=%llu "
             "end=%s%s%s%s",
             addr, t->frontends[c->fe_idx].name,
             c->pool_idx == FRONTEND_NO_POOL ? "-" : t->pools[c->pool_idx].name,
             c->srv ? c->srv->name : "-", (unsigned long long)c->c2b.bytes,
             (unsigned long long)c->b2c.bytes,
             (unsigned long long)(loop_now(c->set->loop) - c->t_start), c->end ? c->end : "closed",
             c->end_err ? "(" : "", c->end_err ? strerror(-c->end_err) : "", c->end_err ? ")" : "");
}

/* Adds the bytes moved since the last call to the server's counters. */
static void conn_count_bytes(struct conn *c)
{
    uint64_t in = c->c2b.bytes - c->c2b.counted, out = c->b2c.bytes - c->b2c.counted;

    if (in)
        atomic_fetch_add_explicit(&c->srv->bytes_in, in, memory_order_relaxed);
    if (out)
        atomic_fetch_add_explicit(&c->srv->bytes_out, out, memory_order_relaxed);
    c->c2b.counted = c->c2b.bytes;
    c->b2c.counted = c->b2c.bytes;
    c->counted_at = loop_now(c->set->loop);
}

static void conn_close(struct conn *c)
{
    struct loop *loop = c->set->loop;
    struct loop_op *ops[] = {&c->conn_op, &c->c2b.rx, &c->c2b.tx, &c->b2c.rx, &c->b2c.tx};
    struct metrics_fe *fe_stats;

    if (c->state == CS_CLOSING)
        return;
    fe_stats = backend_table_get()->frontends[c->fe_idx].stats;
    if (c->state != CS_ESTABLISHED)
        atomic_fetch_add_explicit(&fe_stats->rejected, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&fe_stats->active, 1, memory_order_relaxed);
    if (c->log)
        conn_log(c);
    c->state = CS_CLOSING;
    timer_disarm(loop_timers(loop), &c->timer);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        loop_cancel(loop, ops[i]);
    loop_close(loop, c->cfd);
    loop_close(loop, c->bfd);
    c->cfd = c->bfd = -1;
    half_release(c, &c->c2b);
    half_release(c, &c->b2c);
    half_fault_detach(c, &c->c2b);
    half_fault_detach(c, &c->b2c);
    if (c->srv) {
        conn_count_bytes(c);
        server_put(c->srv);
        c->srv = NULL;
    }
    if (c->src) {
        acl_src_put(c->src, &c->src_key);
        c->src = NULL;
    }
    /* Freed by conn_reap() at the end of the loop turn, once no operation
     * can complete into it: callers up the stack may still hold <c>. */
    conn_unlink(c);
    c->next = c->set->closing;
    c->set->closing = c;
    c->set->nlive--;
    c->set->closed(c->set);
}

/* Ends the connection when both directions have forwarded their FIN. */
static void conn_check_done(struct conn *c)
{
    if (c->c2b.shut && c->b2c.shut)
        conn_close(c);
}

/*
 * Whether <h> may move from copy to a splicing mode. The bytes a
 * connection holds (c->pre: what its preamble read, a PROXY header to
 * send) go to the server before anything queued, through mode PREFIX,
 * which only copy leads to: until they have gone, the client->server half
 * stays on the copy path (a receive that finds the pool dry then waits
 * for a buffer).
 */
static bool half_may_leave_copy(const struct conn *c, const struct half *h)
{
    return h->mode == HM_COPY && !(h->dir == DIR_C2B && c->pre);
}

/*
 * forward = auto, HAProxy's splice-auto idea: a flow starts with copy, which
 * wins for small messages, and moves to splice once it has filled
 * BULK_READS buffers in a row. The switch waits until the multishot
 * receive has stopped and the queue is empty, so no byte is reordered.
 */
static void copy_note_read(struct conn *c, struct half *h, uint32_t len)
{
    if (c->forward != FWD_AUTO || !half_may_leave_copy(c, h))
        return;
    if (len < loop_buf_size(c->set->loop)) {
        h->full_reads = 0;
        return;
    }
    if (++h->full_reads >= BULK_READS && half_set_mode(c, h, HM_TO_SPLICE))
        loop_cancel(c->set->loop, &h->rx);
}

/*
 * The receive of <h> waits for a pool buffer (see the top of the file).
 * Moving to splice reorders nothing: the switch in copy_pump waits until
 * the receive has stopped and what is queued has been sent.
 */
static void half_starved(struct conn *c, struct half *h)
{
    if (!half_may_leave_copy(c, h))
        return;
    atomic_fetch_add_explicit(&c->set->starved, 1, memory_order_relaxed);
    half_set_mode(c, h, HM_TO_STARVED);
    loop_cancel(c->set->loop, &h->rx);
}

static void half_forward_fin(struct conn *c, struct half *h)
{
    if (h->shut || c->state != CS_ESTABLISHED)
        return;
    h->shut = 1;
    loop_shutdown_wr(c->set->loop, half_dst(c, h));
}

/* Cuts the <*n> buffers of <iov> to at most <limit> bytes in all. */
static void iov_trim(struct iovec *iov, size_t *n, uint32_t limit)
{
    for (size_t i = 0; i < *n; i++) {
        if (iov[i].iov_len >= limit) {
            iov[i].iov_len = limit;
            *n = i + 1;
            return;
        }
        limit -= (uint32_t)iov[i].iov_len;
    }
}

/* ---- faults (chaos, core/fault.h) ----
 *
 * A fault takes a direction when the connection starts (frontend scope) or
 * when its server connection is up (server scope); one fault per direction,
 * the first in the list that applies. The direction then moves to SHAPED:
 * still copy, so every byte passes through a buffer the shaper can hold,
 * but each send is cut to what the shaper allows now, and when that is
 * nothing the half's fault timer wakes it. Receives keep their watermarks,
 * so a held direction stops reading at HIGH_WATER like a slow reader, and
 * other connections of the worker are not slowed.
 */
static void conn_set_abortive(struct conn *c);

/* Arms one of <c>'s timers; without memory for it the connection ends. */
static void conn_arm_timer_for(struct conn *c, struct timer *t, uint64_t deadline)
{
    if (timer_arm(loop_timers(c->set->loop), t, deadline) < 0) {
        log_warn_rl("out of memory for a timer: closing connection");
        conn_close(c);
    }
}

static void fault_arm(struct conn *c, struct half *h, uint64_t wake)
{
    struct half_fault *hf = h->fault;
    uint64_t now = loop_now(c->set->loop), at = now + FAULT_POLL_MS, end = shaper_deadline(&hf->s);

    if (wake < at)
        at = wake;
    if (end < at)
        at = end;
    conn_arm_timer_for(c, &hf->timer, at);
}

static void on_fault_timer(struct timer *t, uint64_t now)
{
    struct half_fault *hf = container_of(t, struct half_fault, timer);
    struct half *h = hf->h;
    struct conn *c = half_conn(h);

    if (c->state == CS_CLOSING)
        return;
    if (fault_gone(hf->f, now)) {
        half_fault_detach(c, h);
        half_pump(c, h);
        return;
    }
    if (now >= shaper_deadline(&hf->s)) {
        if (hf->s.type == FT_RESET_PEER) {
            c->end = "fault-reset-peer";
            conn_set_abortive(c);
        } else {
            c->end = "fault-timeout";
        }
        conn_close(c);
        return;
    }
    half_pump(c, h);
    if (c->state != CS_CLOSING && h->fault && !timer_armed(&hf->timer))
        fault_arm(c, h, SHAPE_NEVER);
}

/*
 * The time a fault stamps an arrival with: read now and rounded up, where
 * loop_now() is the start of the loop turn, rounded down. Timers fire on
 * the loop's clock, so a stamp from this one is never early: a 100 ms
 * latency holds bytes at least 100 ms. Faulted directions only.
 */
static uint64_t fault_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ((uint64_t)ts.tv_nsec + 999999) / 1000000;
}

/*
 * Lets a fault of <fe> (frontend scope) or of server <srv> of backend
 * <be> take direction <h>, if one applies and the direction is plain copy
 * (a splicing direction is left alone: a fault must see every byte).
 */
static void half_fault_attach(struct conn *c, struct half *h, const char *fe, const char *be,
                              const char *srv)
{
    uint64_t now = loop_now(c->set->loop);
    struct half_fault *hf;
    struct fault *f;

    /* A direction that sends a prefix first (a PROXY header, the bytes a
     * preamble read) is left alone: PREFIX and SHAPED are modes of their
     * own, and the prefix must go out as it is. */
    if (h->fault || h->mode != HM_COPY || (h->dir == DIR_C2B && c->pre))
        return;
    f = fault_take(fe, be, srv, false, h->dir == DIR_C2B ? FS_UPSTREAM : FS_DOWNSTREAM, now);
    if (!f)
        return;
    hf = lb_malloc(sizeof(*hf));
    if (!hf) {
        log_warn_rl("chaos: out of memory: fault %s not applied", f->spec.name);
        fault_put(f);
        return;
    }
    hf->f = f;
    hf->h = h;
    timer_init(&hf->timer, on_fault_timer);
    /* The fault's own clock (reset_peer's and timeout's deadlines) starts
     * on the loop's; bytes already queued arrive now, stamped as on_rx
     * stamps them. */
    shaper_init(&hf->s, f->spec.type, &f->spec.p, now, 0,
                f->spec.seed ^ (uint64_t)(uintptr_t)h ^ now);
    if (h->q.bytes)
        shaper_recv(&hf->s, h->q.bytes, fault_clock());
    if (h->eof)
        shaper_eof(&hf->s, fault_clock());
    h->fault = hf;
    half_set_mode(c, h, HM_SHAPED);
    fault_arm(c, h, SHAPE_NEVER);
}

static void half_fault_detach(struct conn *c, struct half *h)
{
    struct half_fault *hf = h->fault;

    if (!hf)
        return;
    timer_disarm(loop_timers(c->set->loop), &hf->timer);
    fault_put(hf->f);
    lb_free(hf);
    h->fault = NULL;
    half_set_mode(c, h, HM_COPY);
}

/* How many queued bytes a shaped direction may send now; when none, its
 * timer is set for when it may. */
static uint32_t fault_allow(struct conn *c, struct half *h)
{
    uint64_t wake, n = shaper_allow(&h->fault->s, h->q.bytes, loop_now(c->set->loop), &wake);

    if (n == 0)
        fault_arm(c, h, wake);
    return (uint32_t)n;
}

/* Whether a shaped direction may forward its FIN now (slow_close holds it). */
static bool fault_fin_ok(struct conn *c, struct half *h)
{
    uint64_t wake;

    if (shaper_fin_ok(&h->fault->s, loop_now(c->set->loop), &wake))
        return true;
    fault_arm(c, h, wake);
    return false;
}

/* limit_data: the direction delivered its bytes; the connection ends with
 * a FIN to that destination, as Toxiproxy's limit_data closes it. */
static bool fault_limit_reached(struct conn *c, struct half *h)
{
    if (!shaper_exhausted(&h->fault->s))
        return false;
    c->end = "fault-limit-data";
    half_forward_fin(c, h);
    conn_close(c);
    return true;
}

/*
 * The sends of a direction in a mode of its own, kept out of copy_pump so
 * that the common path pays one compare: PREFIX sends what the connection
 * holds first; SHAPED sends what its fault allows now (fault_allow) and
 * the FIN when it allows (slow_close), and ends the connection once
 * limit_data's bytes are out.
 */
static __attribute__((noinline)) void copy_send_special(struct conn *c, struct half *h)
{
    struct loop *loop = c->set->loop;
    const void *data;
    uint32_t limit, len;

    if (h->mode == HM_PREFIX) {
        prefix_send(c, h);
        return;
    }
    if (fault_limit_reached(c, h))
        return;
    if (!h->q.bytes) {
        if (h->eof && fault_fin_ok(c, h)) {
            half_forward_fin(c, h);
            conn_check_done(c);
        }
        return;
    }
    limit = fault_allow(c, h);
    if (limit == 0)
        return;
    len = loop_bufq_peek(loop, &h->q, &data);
    if (len >= limit || len == h->q.bytes) {
        loop_submit_send(loop, &h->tx, half_dst(c, h), data, len < limit ? len : limit);
        return;
    }
    h->msg.msg_iov = h->iov;
    h->msg.msg_iovlen = (size_t)loop_bufq_iov(loop, &h->q, h->iov, SEND_IOV);
    iov_trim(h->iov, &h->msg.msg_iovlen, limit);
    loop_submit_sendmsg(loop, &h->tx, half_dst(c, h), &h->msg);
}

static void copy_pump(struct conn *c, struct half *h)
{
    struct loop *loop = c->set->loop;

    if (half_draining(h) && !h->rx.inflight && !h->tx.inflight && !h->q.bytes && !h->eof) {
        half_set_mode(c, h, h->mode == HM_TO_SPLICE ? HM_SPLICE : HM_STARVED);
        splice_pump(c, h);
        return;
    }
    if (h->rx.inflight) {
        if (!h->rx.cancelled && h->q.bytes >= HIGH_WATER)
            loop_cancel(loop, &h->rx);
    } else if (!h->eof && !half_draining(h) && h->q.bytes <= LOW_WATER) {
        loop_submit_recv(loop, &h->rx, half_src(c, h));
    }
    if (h->tx.inflight || c->state != CS_ESTABLISHED)
        return;
    if (unlikely(half_mode_special(h->mode))) {
        copy_send_special(c, h);
        return;
    }
    if (h->q.bytes) {
        const void *data;
        uint32_t len = loop_bufq_peek(loop, &h->q, &data);

        if (len == h->q.bytes) {
            loop_submit_send(loop, &h->tx, half_dst(c, h), data, len);
            return;
        }
        h->msg.msg_iov = h->iov;
        h->msg.msg_iovlen = (size_t)loop_bufq_iov(loop, &h->q, h->iov, SEND_IOV);
        loop_submit_sendmsg(loop, &h->tx, half_dst(c, h), &h->msg);
    } else if (h->eof) {
        half_forward_fin(c, h);
        conn_check_done(c);
    }
}

static void splice_pump(struct conn *c, struct half *h)
{
    struct loop *loop = c->set->loop;

    if (h->rx.inflight || h->tx.inflight)
        return;
    if (h->in_pipe) {
        if (c->state == CS_ESTABLISHED)
            loop_submit_splice(loop, &h->tx, h->pipe.rd, half_dst(c, h), h->in_pipe, true);
    } else if (h->eof) {
        half_forward_fin(c, h);
        conn_check_done(c);
    } else if (h->rx_wait) {
        loop_submit_poll(loop, &h->rx, half_src(c, h), false);
    } else if (h->pipe.rd >= 0 || pipe_get(c->set, &h->pipe) == 0) {
        loop_submit_splice(loop, &h->rx, half_src(c, h), h->pipe.wr, PIPE_CHUNK, false);
    } else {
        /* Out of pipes or descriptors: copying still works, only slower.
         * The pipe is empty and nothing is in flight, so no byte reorders. */
        half_set_mode(c, h, HM_COPY);
        copy_pump(c, h);
    }
}

static void half_pump(struct conn *c, struct half *h)
{
    if (c->state == CS_CLOSING)
        return;
    if (half_splices(h))
        splice_pump(c, h);
    else
        copy_pump(c, h);
}

/*
 * Makes the close of both sockets abortive (an RST, not a FIN): after an
 * error the stream is truncated, and a FIN would tell the peer it ended
 * well (a client could take a cut-off reply for a complete one).
 */
static void conn_set_abortive(struct conn *c)
{
    static const struct linger rst = {.l_onoff = 1, .l_linger = 0};

    if (c->cfd >= 0)
        (void)setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
    if (c->bfd >= 0 && c->state == CS_ESTABLISHED)
        (void)setsockopt(c->bfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
}

/* A receive error or reset ends both directions: nothing more can flow,
 * and each peer is told so with a reset (conn_set_abortive). */
static void half_fail(struct conn *c, struct half *h, int err)
{
    /* The direction, not the side: a failed send and a failed receive of
     * one direction are on different sockets. */
    c->end = h->dir == DIR_C2B ? "error-client-to-server" : "error-server-to-client";
    c->end_err = err;
    log_debug("conn %d<->%d: %s %s: %s", c->cfd, c->bfd,
              h->dir == DIR_C2B ? "client->server" : "server->client",
              err == -ETIMEDOUT ? "timeout" : "error", strerror(-err));
    conn_set_abortive(c);
    conn_close(c);
}

/*
 * A starved half with nothing in its pipe: back to copy if the pool has a
 * buffer again; otherwise it stays on splice, waiting for input with a
 * poll (rx_wait), because a receive armed on a dry pool fails at once.
 */
static void half_unstarve(struct conn *c, struct half *h)
{
    if (h->mode != HM_STARVED || h->in_pipe || h->pipe.rd >= 0 || !loop_buf_avail(c->set->loop))
        return;
    h->rx_wait = 0;
    half_set_mode(c, h, HM_COPY);
}

static void on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct half *h = container_of(op, struct half, rx);
    struct conn *c = half_conn(h);

    if (c->state == CS_CLOSING) {
        if (flags & LOOP_F_BUF)
            loop_buf_put(c->set->loop, op->bid);
        return;
    }
    if (op->kind == LOOP_OP_POLL) {
        if (res < 0 && res != -ECANCELED) {
            half_fail(c, h, res);
            return;
        }
        h->rx_wait = 0;
        half_unstarve(c, h);
    } else if (res == -EAGAIN && half_splices(h)) {
        /* Nothing to read: give the (empty) pipe back while we wait. */
        half_pipe_release(c, h);
        h->rx_wait = 1;
        half_unstarve(c, h);
    } else if (res == -ENOBUFS) {
        /* Still armed, waiting for a buffer. */
        half_starved(c, h);
        return;
    } else if (res > 0) {
        if ((flags & LOOP_F_BUF) && c->state == CS_PREAMBLE) {
            preamble_take(c, op->bid, (uint32_t)res);
        } else if (flags & LOOP_F_BUF) {
            loop_bufq_push(c->set->loop, &h->q, op->bid, (uint32_t)res);
            copy_note_read(c, h, (uint32_t)res);
            if (unlikely(h->fault != NULL))
                shaper_recv(&h->fault->s, (uint32_t)res, fault_clock());
        } else
            h->in_pipe += (uint32_t)res;
        h->bytes += (uint64_t)res;
        c->last_active = loop_now(c->set->loop);
        if (c->state == CS_ESTABLISHED && (h->bytes - h->counted >= COUNT_BYTES ||
                                           c->last_active - c->counted_at >= COUNT_BYTES_MS))
            conn_count_bytes(c);
    } else if (res == 0) {
        h->eof = 1;
        if (h->fault)
            shaper_eof(&h->fault->s, fault_clock());
    } else if (res != -ECANCELED) {
        half_fail(c, h, res);
        return;
    }
    if (c->state == CS_PREAMBLE) {
        preamble_step(c);
        if (c->state == CS_CLOSING)
            return;
    }
    /* A multishot receive that is still armed needs nothing more. */
    if (flags & LOOP_F_MORE) {
        if (!h->tx.inflight)
            half_pump(c, h);
        else if (!h->rx.cancelled && h->q.bytes >= HIGH_WATER)
            loop_cancel(c->set->loop, &h->rx);
        return;
    }
    half_pump(c, h);
}

/* What a send of a PREFIX or SHAPED direction took (see copy_send_special). */
static __attribute__((noinline)) void tx_sent_special(struct conn *c, struct half *h, uint32_t n)
{
    if (h->mode == HM_PREFIX) {
        prefix_sent(c, h, n);
        return;
    }
    loop_bufq_consume(c->set->loop, &h->q, n);
    shaper_sent(&h->fault->s, n, loop_now(c->set->loop));
}

static void on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct half *h = container_of(op, struct half, tx);
    struct conn *c = half_conn(h);

    (void)flags;
    if (c->state == CS_CLOSING)
        return;
    if (op->kind == LOOP_OP_POLL && res >= 0) {
        half_pump(c, h);
        return;
    }
    if (res == -EAGAIN && half_splices(h)) {
        loop_submit_poll(c->set->loop, &h->tx, half_dst(c, h), true);
        return;
    }
    if (res <= 0) {
        half_fail(c, h, res < 0 ? res : -EPIPE);
        return;
    }
    if (unlikely(half_mode_special(h->mode)))
        tx_sent_special(c, h, (uint32_t)res);
    else if (half_splices(h))
        h->in_pipe -= (uint32_t)res;
    else
        loop_bufq_consume(c->set->loop, &h->q, (uint32_t)res);
    half_pump(c, h);
}

static void conn_arm_timer(struct conn *c, uint64_t deadline)
{
    conn_arm_timer_for(c, &c->timer, deadline);
}

static void on_timer(struct timer *t, uint64_t now)
{
    struct conn *c = container_of(t, struct conn, timer);

    if (c->state == CS_PREAMBLE) {
        preamble_timeout(c);
        return;
    }
    if (c->state == CS_CONNECTING && c->connect_delayed) {
        /* Fault connect_delay: the connect goes out now, unless
         * connect_timeout ran out first (a delay longer than it). */
        c->connect_delayed = 0;
        if (now >= c->connect_deadline) {
            connect_failed(c, -ETIMEDOUT);
            return;
        }
        loop_submit_connect(c->set->loop, &c->conn_op, c->bfd,
                            (const struct sockaddr *)&c->srv->addr, c->srv->addrlen);
        conn_arm_timer(c, c->connect_deadline);
        return;
    }
    if (c->state == CS_CONNECTING) {
        /* The connect completion sees the cancellation and retries. */
        c->connect_timed_out = 1;
        loop_cancel(c->set->loop, &c->conn_op);
        return;
    }
    if (c->state != CS_ESTABLISHED || c->idle_ms == 0)
        return;
    if (now >= c->last_active + c->idle_ms) {
        log_debug("conn %d<->%d: idle for %u ms, closing", c->cfd, c->bfd, c->idle_ms);
        c->end = "idle-timeout";
        conn_close(c);
        return;
    }
    conn_arm_timer(c, c->last_active + c->idle_ms);
}

static void on_connect(struct loop_op *op, int res, unsigned flags)
{
    struct conn *c = container_of(op, struct conn, conn_op);

    (void)flags;
    if (c->state == CS_CLOSING)
        return;
    if (res == 0 && !c->connect_timed_out) {
        server_note_ok(c->srv);
        c->state = CS_ESTABLISHED;
        c->last_active = loop_now(c->set->loop);
        if (c->idle_ms)
            conn_arm_timer(c, c->last_active + c->idle_ms);
        else
            timer_disarm(loop_timers(c->set->loop), &c->timer);
        if (c->state == CS_CLOSING)
            return;
        if (c->pre)
            prefix_start(c);
        if (fault_any()) {
            const char *be = backend_table_get()->pools[c->pool_idx].name;

            half_fault_attach(c, &c->c2b, NULL, be, c->srv->name);
            half_fault_attach(c, &c->b2c, NULL, be, c->srv->name);
            if (c->state == CS_CLOSING)
                return;
        }
        if (c->forward == FWD_SPLICE && !c->b2c.fault)
            half_set_mode(c, &c->b2c, HM_SPLICE);
        half_pump(c, &c->b2c);
        half_pump(c, &c->c2b);
        return;
    }
    if (c->connect_timed_out)
        res = -ETIMEDOUT;
    c->connect_timed_out = 0;
    connect_failed(c, res);
}

/* The connect to c->srv failed with <res>: counted, told to passive
 * health, and tried again on another server while retries are left. */
static void connect_failed(struct conn *c, int res)
{
    struct server *failed = c->srv;

    atomic_fetch_add_explicit(&failed->connect_fail, 1, memory_order_relaxed);
    /* Passive health: the checker marks the server down once `fall`
     * connects in a row failed, without waiting for its next probe. */
    if (server_note_fail(&backend_table_get()->pools[c->pool_idx], failed))
        hc_kick();
    log_warn_rl("connect to %s (%s) failed: %s%s", failed->name, failed->addr_text, strerror(-res),
                c->retries_left ? ", retrying" : "");
    server_put(failed);
    c->srv = NULL;
    if (c->bfd >= 0)
        loop_close(c->set->loop, c->bfd);
    c->bfd = -1;
    if (c->retries_left == 0) {
        c->end = "connect-failed";
        c->end_err = res;
        conn_close(c);
        return;
    }
    c->retries_left--;
    atomic_fetch_add_explicit(&backend_table_get()->pools[c->pool_idx].stats->retries, 1,
                              memory_order_relaxed);
    connect_next(c, failed);
}

/*
 * The faults of a connect attempt to <s>: refuse fails it at once, as a
 * closed port would, so that passive health and retries react as they do
 * to a dead server; connect_delay holds it for <*delay> ms, which count
 * against connect_timeout. Returns true when the attempt is over.
 */
static bool connect_fault(struct conn *c, const struct pool *pool, const struct server *s,
                          uint32_t *delay)
{
    const char *fe = backend_table_get()->frontends[c->fe_idx].name;
    struct fault *f =
        fault_take(fe, pool->name, s->name, true, FS_DOWNSTREAM, loop_now(c->set->loop));
    enum fault_type type;

    if (!f)
        return false;
    type = f->spec.type;
    if (type == FT_CONNECT_DELAY)
        *delay = f->spec.p.delay_ms;
    fault_put(f);
    if (type != FT_REFUSE)
        return false;
    connect_failed(c, -ECONNREFUSED);
    return true;
}

/* Picks a server (avoiding <avoid> if another can serve) and connects. */
static void connect_next(struct conn *c, const struct server *avoid)
{
    const struct lb_table *t = backend_table_get();
    struct pool *pool = &t->pools[c->pool_idx];
    struct lb_pick_ctx ctx = {.key = c->key, .avoid = avoid, .rng = &c->set->rng};
    struct server *s = NULL;
    uint32_t delay = 0;
    int fd;

    /* A server can fill up between the pick and the reservation when
     * several workers race for its last slot; pick again a few times. */
    for (int i = 0; i < 4; i++) {
        s = pool->ops->pick(pool, &ctx);
        if (!s || server_take(s))
            break;
        ctx.avoid = s;
        s = NULL;
    }
    if (!s) {
        log_warn_rl("backend %s: no server available", pool->name);
        atomic_fetch_add_explicit(&pool->stats->no_server, 1, memory_order_relaxed);
        c->end = "no-server";
        conn_close(c);
        return;
    }
    c->srv = s;
    c->srv_gen = atomic_load_explicit(&s->down_gen, memory_order_relaxed);
    c->state = CS_CONNECTING;
    c->connect_deadline = loop_now(c->set->loop) + c->connect_ms;
    if (fault_any() && connect_fault(c, pool, s, &delay))
        return;
    fd = net_connect_socket((const struct sockaddr *)&s->addr);
    if (fd < 0) {
        log_warn_rl("backend %s: cannot create socket: %s", pool->name, strerror(-fd));
        server_put(s);
        c->srv = NULL;
        conn_close(c);
        return;
    }
    c->bfd = fd;
    if (delay) {
        uint64_t at = loop_now(c->set->loop) + delay;

        c->connect_delayed = 1;
        conn_arm_timer(c, at < c->connect_deadline ? at : c->connect_deadline);
        return;
    }
    loop_submit_connect(c->set->loop, &c->conn_op, fd, (const struct sockaddr *)&s->addr,
                        s->addrlen);
    conn_arm_timer(c, c->connect_deadline);
}

static struct conn *conn_alloc(struct conn_set *set)
{
    struct conn *c = set->free;

    if (c) {
        set->free = c->next;
        set->nfree--;
    } else {
        c = lb_malloc(sizeof(*c));
        if (!c)
            return NULL;
    }
    memset(c, 0, sizeof(*c));
    return c;
}

static void half_init(struct half *h, enum half_dir dir)
{
    h->dir = (uint8_t)dir;
    h->rx.cb = on_rx;
    h->rx.notify_nobuf = 1;
    h->tx.cb = on_tx;
    h->pipe.rd = h->pipe.wr = -1;
    loop_bufq_init(&h->q);
}

/* Counts a refusal under its reason and says so in a rate-limited line. */
static void refuse_note(const struct frontend *fe, const struct sockaddr_storage *ss,
                        socklen_t sslen, _Atomic uint64_t *counter, const char *why)
{
    struct cfg_addr peer = {.len = sslen};
    char addr[128] = "?";

    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
        memcpy(&peer.ss, ss, sslen <= sizeof(peer.ss) ? sslen : sizeof(peer.ss));
        cfg_addr_str(&peer, addr, sizeof(addr));
    }
    log_info_rl("frontend %s: refused client %s (%s)", fe->name, addr, why);
}

/*
 * Turns a client away at accept (access control): no connection object,
 * no server work. SO_LINGER 0 makes close() send an RST, so the client
 * learns at once (ECONNRESET) instead of after a FIN handshake, and no
 * TIME_WAIT state is left on our side by a source that keeps retrying.
 * <counter> is the reason's; <why> names it in the rate-limited log line.
 */
static void conn_refuse(struct conn_set *set, int fd, const struct frontend *fe,
                        const struct sockaddr_storage *ss, socklen_t sslen,
                        _Atomic uint64_t *counter, const char *why)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    refuse_note(fe, ss, sslen, counter, why);
    atomic_fetch_add_explicit(&fe->stats->rejected, 1, memory_order_relaxed);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    set->closed(set);
}

/*
 * The frontend's access rules for a client from <ss>: allow/deny, then its
 * share of max_conns_per_source (taken into <*src>/<*key>, given back when
 * the connection ends). Returns NULL when the client is admitted, else the
 * counter of the reason it is refused for, with <*why> naming it.
 */
static _Atomic uint64_t *conn_admit(const struct frontend *fe, const struct sockaddr_storage *ss,
                                    uint64_t now_ms, struct acl_src **src, struct acl_src_key *key,
                                    const char **why)
{
    /* A client whose address cannot be read (it reset already) is not let
     * past rules that could not be checked. */
    if (ss->ss_family == AF_UNSPEC) {
        *why = "no address";
        return &fe->stats->rejected_deny;
    }
    if (fe->acl && acl_check(fe->acl, (const struct sockaddr *)ss) != ACL_ALLOW) {
        *why = "deny";
        return &fe->stats->rejected_deny;
    }
    if (!fe->src || !acl_src_key((const struct sockaddr *)ss, fe->source_prefix_v6, key))
        return NULL;
    switch (acl_src_take(fe->src, key, &fe->src_limits, now_ms * 1000)) {
    case ACL_SRC_TAKEN:
        *src = fe->src;
        break;
    case ACL_SRC_LIMIT:
        *why = "max_conns_per_source";
        return &fe->stats->rejected_source_conns;
    case ACL_SRC_RATE:
        *why = "rate_per_source";
        return &fe->stats->rejected_source_rate;
    case ACL_SRC_UNTRACKED:
        atomic_fetch_add_explicit(&fe->stats->source_untracked, 1, memory_order_relaxed);
        log_warn_rl("frontend %s: per-source table full, serving a new source uncounted", fe->name);
        break;
    }
    return NULL;
}

/*
 * Sends a routed connection to its backend in slot <pool_idx>: the
 * backend's settings, the hash of the client's address, the connect, and
 * the client's bytes start to flow (those of a preamble after the connect).
 */
static void conn_route(struct conn *c, uint32_t pool_idx)
{
    struct pool *pool = &backend_table_get()->pools[pool_idx];

    c->pool_idx = pool_idx;
    c->idle_ms = pool->idle_timeout_ms;
    c->connect_ms = pool->connect_timeout_ms;
    c->retries_left = (uint8_t)(pool->retries > 255 ? 255 : pool->retries);
    if ((pool->ops->caps & LB_CAP_HASH_KEY) &&
        (c->peer.sin6_family == AF_INET || c->peer.sin6_family == AF_INET6))
        c->key = lb_hash_addr((struct sockaddr *)&c->peer, pool->hash_key);
    if (pool->send_proxy_any && !c->pre && !(c->pre = lb_calloc(1, sizeof(*c->pre)))) {
        log_warn_rl("out of memory: refusing a client");
        conn_close(c);
        return;
    }
    if (fault_any()) {
        const char *fe = backend_table_get()->frontends[c->fe_idx].name;

        half_fault_attach(c, &c->c2b, fe, NULL, NULL);
        half_fault_attach(c, &c->b2c, fe, NULL, NULL);
        if (c->state == CS_CLOSING)
            return;
    }
    connect_next(c, NULL);
    if (c->state == CS_CLOSING)
        return;
    /* Read the client while the backend connect is in flight: its first
     * bytes then leave as soon as the connection is up. */
    if (c->forward == FWD_SPLICE && !c->pre)
        half_set_mode(c, &c->c2b, HM_SPLICE);
    half_pump(c, &c->c2b);
}

void conn_accept(struct conn_set *set, int fd, uint32_t frontend)
{
    const struct lb_table *t = backend_table_get();
    const struct frontend *fe = &t->frontends[frontend];
    const struct pool *pool = fe->pool == FRONTEND_NO_POOL ? NULL : &t->pools[fe->pool];
    bool log = atomic_load_explicit(&lb_rt.log_connections, memory_order_relaxed);
    bool pre = fe->accept_proxy != PROXY_OFF || fe->sni;
    bool hash = pool && (pool->ops->caps & LB_CAP_HASH_KEY);
    struct sockaddr_storage ss = {.ss_family = AF_UNSPEC};
    socklen_t sslen = sizeof(ss);
    struct acl_src *src = NULL;
    struct acl_src_key src_key = {0};
    _Atomic uint64_t *refused = NULL;
    const char *why = NULL;
    struct conn *c;

    /* One getpeername() serves the rules, the per-source count, the hash,
     * a PROXY header to send and the connection log. A preamble may route
     * to a hashing backend. */
    if ((fe->acl || fe->src || hash || log || pre || fe->proxy_trusted ||
         (pool && pool->send_proxy_any)) &&
        getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        ss.ss_family = AF_UNSPEC;
        sslen = 0;
    }
    /* With accept_proxy the rules see the address in the PROXY header
     * (preamble_proxy); here only whether the sender may send one. */
    if (fe->accept_proxy != PROXY_OFF) {
        if (fe->proxy_trusted &&
            (ss.ss_family == AF_UNSPEC ||
             acl_check(fe->proxy_trusted, (const struct sockaddr *)&ss) != ACL_ALLOW)) {
            refused = &fe->stats->rejected_proxy;
            why = "PROXY header from an untrusted source";
        }
    } else if (fe->acl || fe->src) {
        refused = conn_admit(fe, &ss, loop_now(set->loop), &src, &src_key, &why);
    }
    if (refused) {
        conn_refuse(set, fd, fe, &ss, sslen, refused, why);
        return;
    }
    c = conn_alloc(set);
    if (c && pre && !(c->pre = lb_calloc(1, sizeof(*c->pre)))) {
        c->next = set->free; /* back to the cache, unused */
        set->free = c;
        set->nfree++;
        c = NULL;
    }
    if (!c) {
        if (src)
            acl_src_put(src, &src_key);
        log_warn_rl("out of memory: refusing a client");
        atomic_fetch_add_explicit(&fe->stats->rejected, 1, memory_order_relaxed);
        close(fd);
        set->closed(set);
        return;
    }
    c->set = set;
    c->cfd = fd;
    c->bfd = -1;
    c->fe_idx = frontend;
    c->src = src;
    c->src_key = src_key;
    /* Settings a reload may change are read once: a connection keeps
     * what it started with. */
    c->log = log;
    c->forward = (uint8_t)atomic_load_explicit(&lb_rt.forward, memory_order_relaxed);
    /* While faults are active, a connection starts on copy even with
     * forward = splice: a fault that takes it later must see its bytes. */
    if (c->forward == FWD_SPLICE && fault_any())
        c->forward = FWD_COPY;
    c->t_start = loop_now(set->loop);
    atomic_fetch_add_explicit(&fe->stats->active, 1, memory_order_relaxed);
    c->pool_idx = fe->pool;
    c->conn_op.cb = on_connect;
    timer_init(&c->timer, on_timer);
    half_init(&c->c2b, DIR_C2B);
    half_init(&c->b2c, DIR_B2C);
    c->next = set->live;
    if (set->live)
        set->live->prev = c;
    set->live = c;
    set->nlive++;
    /* A unix client's family is kept too (its path is not): a PROXY header
     * then says UNKNOWN, and the rules let it through. */
    if (ss.ss_family != AF_UNSPEC && sslen <= sizeof(c->peer))
        memcpy(&c->peer, &ss, sslen);
    else if (ss.ss_family == AF_UNIX)
        c->peer.sin6_family = AF_UNIX;
    if (pre) {
        c->pre->stage = fe->accept_proxy != PROXY_OFF ? PRE_PROXY : PRE_SNI;
        c->state = CS_PREAMBLE;
        conn_arm_timer(c, c->t_start + (c->pre->stage == PRE_PROXY ? fe->proxy_timeout_ms
                                                                   : fe->sni_timeout_ms));
        half_pump(c, &c->c2b);
        return;
    }
    conn_route(c, fe->pool);
}

/* ---- preamble: what a connection reads before its backend is picked,
 * and sends before the client's other bytes ----
 *
 * Stages: PRE_PROXY (accept_proxy: a PROXY header, stripped), then PRE_SNI
 * (sni rules: a ClientHello, kept), then PRE_DONE: conn_route(). Each
 * stage is bounded by a timer and by what its parser reads at most. The
 * client's bytes are copied into <buf> and their pool buffers given back
 * at once. At connect, prefix_start() puts the PROXY header the server
 * wants (send_proxy) in <hdr> and the client->server half sends <hdr>,
 * then <buf>, in mode PREFIX, before the bytes queued since.
 */

static void pre_free(struct conn *c)
{
    if (!c->pre)
        return;
    lb_free(c->pre->buf);
    lb_free(c->pre);
    c->pre = NULL;
}

/* Closes a connection its preamble refuses: counted under <counter>,
 * logged with <why>, the client reset (conn_set_abortive). */
static void preamble_reject(struct conn *c, _Atomic uint64_t *counter, const char *why)
{
    const struct frontend *fe = &backend_table_get()->frontends[c->fe_idx];
    struct sockaddr_storage ss = {0};

    memcpy(&ss, &c->peer, sizeof(c->peer));
    refuse_note(fe, &ss, sizeof(c->peer), counter, why);
    c->end = counter == &fe->stats->rejected_sni     ? "rejected-sni"
             : counter == &fe->stats->rejected_proxy ? "rejected-proxy"
                                                     : "rejected";
    conn_set_abortive(c);
    conn_close(c);
}

static void preamble_timeout(struct conn *c)
{
    const struct frontend *fe = &backend_table_get()->frontends[c->fe_idx];

    if (c->pre->stage == PRE_PROXY)
        preamble_reject(c, &fe->stats->rejected_proxy, "no PROXY header within proxy_timeout");
    else
        preamble_reject(c, &fe->stats->rejected_sni, "no ClientHello within sni_timeout");
}

/* Received bytes in pool buffer <bid>: copied, and the buffer given back. */
static void preamble_take(struct conn *c, uint16_t bid, uint32_t len)
{
    struct loop *loop = c->set->loop;
    struct conn_pre *p = c->pre;

    if (p->len + len > p->cap && p->len + len <= PRE_MAX(loop)) {
        uint32_t cap = p->cap ? p->cap : 2048;
        uint8_t *nb;

        while (cap < p->len + len)
            cap *= 2;
        nb = lb_realloc(p->buf, cap);
        if (nb) {
            p->buf = nb;
            p->cap = cap;
        }
    }
    /* Nothing undecided is ever that long (PRE_MAX): only memory fails. */
    bool fits = p->len + len <= p->cap;

    if (fits) {
        memcpy(p->buf + p->len, loop_buf(loop, bid), len);
        p->len += len;
    }
    loop_buf_put(loop, bid);
    if (!fits) {
        log_warn_rl("out of memory for a client's first bytes: closing it");
        c->end = "out-of-memory";
        conn_close(c);
    }
}

/* The PROXY header stage; returns false when it is not over. */
static bool preamble_proxy(struct conn *c, const struct frontend *fe)
{
    static const unsigned acc[] = {[PROXY_V1] = PP_ACCEPT_V1,
                                   [PROXY_V2] = PP_ACCEPT_V2,
                                   [PROXY_ANY] = PP_ACCEPT_V1 | PP_ACCEPT_V2};
    struct conn_pre *p = c->pre;
    _Atomic uint64_t *refused;
    struct sockaddr_storage ss = {0};
    struct pp_header h;
    const char *why;

    switch (pp_parse(p->buf, p->len, acc[fe->accept_proxy], &h)) {
    case PP_NEED_MORE:
        if (c->c2b.eof)
            preamble_reject(c, &fe->stats->rejected_proxy, "PROXY header cut short");
        return false;
    case PP_OK:
        break;
    default:
        preamble_reject(c, &fe->stats->rejected_proxy,
                        h.status == PP_ERR_NOT_PROXY ? "no PROXY header"
                        : h.status == PP_ERR_TOO_BIG ? "PROXY header too big"
                                                     : "malformed PROXY header");
        return false;
    }
    p->len -= h.len;
    memmove(p->buf, p->buf + h.len, p->len);
    /* The address in the header is the client from now on: the rules,
     * the hash, the log and a header sent on see it. */
    if (h.has_addr) {
        p->have_addrs = true;
        p->src = h.src;
        p->dst = h.dst;
        memset(&c->peer, 0, sizeof(c->peer));
        memcpy(&c->peer, &h.src, h.addrlen);
    }
    memcpy(&ss, &c->peer, sizeof(c->peer));
    if (fe->acl || fe->src) {
        refused = conn_admit(fe, &ss, loop_now(c->set->loop), &c->src, &c->src_key, &why);
        if (refused) {
            preamble_reject(c, refused, why);
            return false;
        }
    }
    p->stage = fe->sni ? PRE_SNI : PRE_DONE;
    if (p->stage == PRE_SNI)
        conn_arm_timer(c, loop_now(c->set->loop) + fe->sni_timeout_ms);
    return c->state != CS_CLOSING;
}

/* The ClientHello stage: the backend slot in <*pool>, or false. */
static bool preamble_sni(struct conn *c, const struct frontend *fe, uint32_t *pool)
{
    struct conn_pre *p = c->pre;
    struct sni_result r;
    char why[SNI_NAME_MAX + 40];

    /* A hello sent a byte at a time is parsed once, not once a byte. */
    if (p->len < p->sni_want && !c->c2b.eof)
        return false;
    switch (sni_parse(p->buf, p->len, &r)) {
    case SNI_NEED_MORE:
        p->sni_want = r.want;
        if (c->c2b.eof)
            preamble_reject(c, &fe->stats->rejected_sni, "ClientHello cut short");
        return false;
    case SNI_FOUND:
    case SNI_NO_NAME:
        /* No rule for the name: the default backend, if there is one. */
        if (r.status == SNI_FOUND && sni_routes_find(fe->sni, r.name, r.len, pool))
            return true;
        *pool = fe->pool;
        if (*pool != FRONTEND_NO_POOL)
            return true;
        snprintf(why, sizeof(why), "no backend for server name '%s'",
                 r.status == SNI_FOUND ? r.name : "(none)");
        preamble_reject(c, &fe->stats->rejected_sni, why);
        return false;
    default:
        snprintf(why, sizeof(why), "not a usable ClientHello: %s", sni_status_name(r.status));
        preamble_reject(c, &fe->stats->rejected_sni, why);
        return false;
    }
}

/* After each read of the preamble: the next stage, or the route. */
static void preamble_step(struct conn *c)
{
    const struct frontend *fe = &backend_table_get()->frontends[c->fe_idx];
    uint32_t pool = fe->pool;

    if (c->pre->stage == PRE_PROXY && !preamble_proxy(c, fe))
        return;
    if (c->pre->stage == PRE_SNI && !preamble_sni(c, fe, &pool))
        return;
    c->pre->stage = PRE_DONE;
    conn_route(c, pool);
}

/* Connected: what goes before the client's queued bytes, if anything. */
static void prefix_start(struct conn *c)
{
    struct conn_pre *p = c->pre;
    uint32_t v = atomic_load_explicit(&c->srv->send_proxy, memory_order_relaxed);

    p->hdr_len = 0;
    p->sent = 0;
    if (v != PROXY_OFF) {
        struct sockaddr_storage src = {0}, dst = {0};
        socklen_t dlen = sizeof(dst);

        if (!p->have_addrs) {
            memcpy(&src, &c->peer, sizeof(c->peer));
            if (getsockname(c->cfd, (struct sockaddr *)&dst, &dlen) < 0)
                dst.ss_family = AF_UNSPEC;
        }
        p->hdr_len = (uint32_t)pp_build(p->hdr, v == PROXY_V1 ? 1 : 2,
                                        (struct sockaddr *)(p->have_addrs ? &p->src : &src),
                                        (struct sockaddr *)(p->have_addrs ? &p->dst : &dst));
    }
    if (p->hdr_len + p->len == 0) {
        prefix_sent(c, &c->c2b, 0);
        return;
    }
    half_set_mode(c, &c->c2b, HM_PREFIX);
}

/* One send of what is left of <hdr> then <buf>. */
static void prefix_send(struct conn *c, struct half *h)
{
    struct conn_pre *p = c->pre;
    int n = 0;

    if (p->sent < p->hdr_len)
        h->iov[n++] = (struct iovec){p->hdr + p->sent, p->hdr_len - p->sent};
    if (p->sent < p->hdr_len + p->len) {
        uint32_t off = p->sent > p->hdr_len ? p->sent - p->hdr_len : 0;

        h->iov[n++] = (struct iovec){p->buf + off, p->len - off};
    }
    h->msg.msg_iov = h->iov;
    h->msg.msg_iovlen = (size_t)n;
    loop_submit_sendmsg(c->set->loop, &h->tx, half_dst(c, h), &h->msg);
}

/* <n> bytes of the prefix went out; once all have, the half copies (or
 * drains towards splice, with forward = splice) like any other. */
static void prefix_sent(struct conn *c, struct half *h, uint32_t n)
{
    struct conn_pre *p = c->pre;

    p->sent += n;
    if (p->sent < p->hdr_len + p->len)
        return;
    pre_free(c);
    if (h->mode == HM_PREFIX)
        half_set_mode(c, h, HM_COPY);
    if (c->forward == FWD_SPLICE && half_set_mode(c, h, HM_TO_SPLICE))
        loop_cancel(c->set->loop, &h->rx);
}

void conn_close_downed(struct conn_set *set)
{
    struct conn *next;
    uint32_t n = 0;

    for (struct conn *c = set->live; c; c = next) {
        next = c->next;
        if (c->state == CS_ESTABLISHED && c->srv &&
            atomic_load_explicit(&c->srv->down_gen, memory_order_relaxed) != c->srv_gen) {
            c->end = "server-down";
            conn_close(c);
            n++;
        }
    }
    if (n)
        log_info("worker %u: closed %u connection(s) to servers marked down (on_down_close)",
                 set->id, n);
}

void conn_abort_all(struct conn_set *set)
{
    struct conn *next;

    for (struct conn *c = set->live; c; c = next) {
        next = c->next;
        c->end = "shutdown";
        conn_close(c);
    }
}

void conn_reap(struct conn_set *set)
{
    struct conn **pp = &set->closing;

    while (*pp) {
        struct conn *c = *pp;

        if (conn_busy(c)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        /* Only now: a send of the prefix may have been in flight. */
        pre_free(c);
        if (set->nfree < CONN_CACHE_MAX) {
            c->next = set->free;
            set->free = c;
            set->nfree++;
        } else {
            lb_free(c);
        }
    }
}

int conn_set_init(struct conn_set *set, struct loop *loop, uint32_t id, uint64_t seed,
                  void (*closed)(struct conn_set *set))
{
    memset(set, 0, sizeof(*set));
    set->pipes = lb_calloc(PIPE_CACHE_MAX, sizeof(*set->pipes));
    if (!set->pipes)
        return -ENOMEM;
    set->loop = loop;
    set->id = id;
    set->rng = seed;
    set->closed = closed;
    return 0;
}

void conn_set_fini(struct conn_set *set)
{
    while (set->free) {
        struct conn *c = set->free;

        set->free = c->next;
        lb_free(c);
    }
    set->nfree = 0;
    for (uint32_t i = 0; i < set->npipes; i++) {
        close(set->pipes[i].rd);
        close(set->pipes[i].wr);
    }
    set->npipes = 0;
    lb_free(set->pipes);
    set->pipes = NULL;
}
