/*
 * admin.c - the admin HTTP server (see admin.h).
 *
 * One thread, one level-triggered epoll set: the listener, a stop eventfd
 * and up to ADMIN_MAX_CLIENTS clients. A client moves through three phases:
 * READ (the request head, then its body, into a fixed buffer), WRITE (the
 * whole response, rendered at once into a growing buffer) and LINGER (our
 * side shut, reading and discarding what the client still sends for a
 * moment before close, so that a client that sent more than we read does
 * not get a reset in place of its 400). Every phase has a deadline; the
 * thread never blocks on a client, and one request at a time per
 * connection (Connection: close) keeps the state this small.
 *
 * Why a third event loop, a plain epoll, rather than the workers' loop
 * (core/loop.h): the admin server must answer when the data path is in
 * trouble (a worker spinning or stalled is when an operator scrapes
 * /metrics or drains a server), so it shares no thread and no ring with
 * it; it serves a few requests a second, so io_uring would buy nothing;
 * and a level-triggered readiness loop over whole-buffer reads and writes
 * is the simplest correct server for that load, with no buffer pool to
 * share. The health checker runs on core/loop.h because it holds hundreds
 * of probes at once; this thread does not.
 *
 * The thread is a QSBR reader (it reads the backend table) and a writer of
 * server state (through server_set_admin / server_set_user_weight, serialized
 * with the health checker by backend.c); a weight change may retire a
 * balancer table, which this thread frees through qsbr_poll().
 *
 * Why hand-written and not libmicrohttpd (measured, see
 * bench/libs/README.md): MHD answers more requests per second with many
 * clients, but under slowloris it makes a real client wait for its
 * connection timeout where this server evicts the idle one at once, it
 * accepts several ambiguous
 * framings that this one refuses (Content-Length with Transfer-Encoding:
 * read as a second request), its handler thread has no loop turn to
 * announce QSBR quiescence from, and Debian's build links GnuTLS and 8
 * more libraries. The same measurement found this server evicting (408)
 * clients whose request was still in flight under 48+ concurrent ones
 * (client_slot/pick_victim): to fix here, not a reason to switch.
 */
#include "admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "alloc.h"
#include "backend.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "qsbr.h"
#include "runtime.h"
#include "stats_page.h"

#define ADMIN_WRITE_TIMEOUT_MS 10000
#define ADMIN_LINGER_MS        1000
#define ADMIN_BUF              (ADMIN_HEAD_MAX + ADMIN_BODY_MAX)
/* Longest epoll wait: bounds how late QSBR sees this thread quiescent. */
#define ADMIN_MAX_WAIT_MS 500
/* How often server connection rates are sampled for /stats. */
#define ADMIN_RATE_MS 1000
/* Out of descriptors, how long the listener is not watched (as workers do). */
#define ADMIN_ACCEPT_BACKOFF_MS 100
/* At most one accept warning per this long, however many backoffs. */
#define ADMIN_ACCEPT_WARN_MS 10000

enum cl_phase { CL_FREE = 0, CL_READ, CL_WRITE, CL_LINGER };

/*
 * The listener: watched by epoll (ACCEPTING), or out of the epoll set for
 * ADMIN_ACCEPT_BACKOFF_MS after accept failed for want of a resource
 * (PAUSED). The listener is level-triggered, so a failing accept left in
 * the set would be reported ready again at once and spin the thread.
 * HANDED_OVER is final: a hot upgrade's new process accepts on the same
 * socket now, and this thread only finishes the requests it has.
 */
enum ls_state { LS_ACCEPTING = 0, LS_PAUSED, LS_HANDED_OVER };

struct client {
    int fd;
    uint8_t phase;  /* enum cl_phase */
    uint64_t since; /* when the phase began: the oldest idle client makes room */
    uint64_t deadline;
    size_t len; /* bytes in buf */
    struct metrics_buf out;
    size_t out_off;
    char buf[ADMIN_BUF];
};

struct admin {
    pthread_t thread;
    int lfd, efd, stop_fd;
    struct cfg_addr addr;
    char addr_text[128];
    int qsbr_slot;
    bool retire_pending;
    struct client *cl;  /* ADMIN_MAX_CLIENTS */
    uint64_t rate_at;   /* when server rates were last sampled */
    uint8_t ls_state;   /* enum ls_state */
    uint64_t ls_resume; /* PAUSED: when to watch the listener again */
    bool ls_failing;    /* accept failed and has not succeeded since */
    /* Set by main (admin_hand_over) before it wakes the thread through
     * <stop_fd>: stop accepting, leave the socket and its path alone. */
    _Atomic bool hand_over, stop;
};

static struct admin *adm;

/* The token settings: written by main (admin_set_access, on start-up and
 * reload), read by the admin thread for each request; a mutex, because a
 * request costs far more than taking it. */
static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;
static struct admin_access access_now;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Starts the WRITE phase of <c> with <status> and the rendered <body>. */
static void respond(struct client *c, int status, const char *ctype, const char *extra,
                    struct metrics_buf *body, bool head_only)
{
    struct metrics_buf *o = &c->out;

    if (body->oom) {
        metrics_buf_free(body);
        status = 500;
        ctype = "text/plain; charset=utf-8";
        extra = "";
    }
    metrics_buf_free(o);
    metrics_buf_printf(o,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                       status, reason(status), ctype, body->len, extra);
    if (!head_only && body->len)
        metrics_buf_put(o, body->p, body->len);
    metrics_buf_free(body);
    c->out_off = 0;
    c->phase = CL_WRITE;
    c->deadline = now_ms() + ADMIN_WRITE_TIMEOUT_MS;
}

static void respond_error(struct client *c, int status, const char *msg, const char *extra)
{
    struct metrics_buf body = {0};

    metrics_buf_printf(&body, "%d %s%s%s\n", status, reason(status), msg ? ": " : "",
                       msg ? msg : "");
    respond(c, status, "text/plain; charset=utf-8", extra ? extra : "", &body, false);
}

/* ---- actions ---- */

/* The server <sname> of backend <bname>, with the backend's pool and its
 * slot, both from the one snapshot it was found in. */
static struct server *find_server(const char *bname, size_t blen, const char *sname, size_t slen,
                                  struct pool **pool_out, uint32_t *slot_out)
{
    const struct lb_table *t = backend_table_get();

    for (uint32_t i = 0; i < t->npools; i++) {
        struct pool *p = &t->pools[i];

        if (p->gone || strlen(p->name) != blen || memcmp(p->name, bname, blen) != 0)
            continue;
        *pool_out = p;
        *slot_out = i;
        for (uint32_t j = 0; j < p->nservers; j++) {
            if (strlen(p->servers[j]->name) == slen &&
                memcmp(p->servers[j]->name, sname, slen) == 0)
                return p->servers[j];
        }
        return NULL;
    }
    *pool_out = NULL;
    return NULL;
}

/* POST /api/backends/{b}/servers/{s}/{action}: <rest> is what follows "/api/backends/". */
static void server_action(struct client *c, const struct admin_req *r, const char *rest)
{
    const char *b = rest, *slash = strchr(b, '/'), *s, *act;
    struct metrics_buf body = {0};
    struct server *srv;
    struct pool *pool;
    uint32_t slot;
    uint32_t w = 0;

    if (!slash || strncmp(slash, "/servers/", 9) != 0) {
        respond_error(c, 404, "no such resource", NULL);
        return;
    }
    s = slash + 9;
    act = strchr(s, '/');
    if (!act || strchr(act + 1, '/')) {
        respond_error(c, 404, "no such resource", NULL);
        return;
    }
    act++;
    if (strcmp(act, "enable") != 0 && strcmp(act, "disable") != 0 && strcmp(act, "drain") != 0 &&
        strcmp(act, "weight") != 0) {
        respond_error(c, 404, "unknown action (enable, disable, drain, weight?value=N)", NULL);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        respond_error(c, 405, "use POST", "Allow: POST\r\n");
        return;
    }
    srv = find_server(b, (size_t)(slash - b), s, (size_t)(act - 1 - s), &pool, &slot);
    if (!srv) {
        respond_error(c, 404, pool ? "no such server" : "no such backend", NULL);
        return;
    }
    if (strcmp(act, "weight") == 0) {
        if (admin_query_uint(r->query, "value", 1000, &w) < 0) {
            respond_error(c, 400, "weight needs ?value=N with N from 0 to 1000", NULL);
            return;
        }
        server_set_user_weight(slot, srv, w * SRV_WEIGHT_SCALE);
        /* The balancer may have retired a table: free it once workers moved on. */
        adm->retire_pending = true;
        log_info("admin: server %s/%s weight set to %u", pool->name, srv->name, w);
    } else {
        enum srv_admin a = act[0] == 'e'   ? SRV_ADMIN_NONE
                           : act[1] == 'i' ? SRV_ADMIN_MAINT
                                           : SRV_ADMIN_DRAIN;

        server_set_admin(slot, srv, a);
        log_info("admin: server %s/%s %s (now %s)", pool->name, srv->name,
                 a == SRV_ADMIN_NONE    ? "enabled"
                 : a == SRV_ADMIN_MAINT ? "disabled"
                                        : "draining",
                 metrics_state_name(atomic_load(&srv->state)));
    }
    metrics_buf_put(&body, "{\"backend\":", 11);
    metrics_json_str(&body, pool->name);
    metrics_buf_put(&body, ",\"server\":", 10);
    metrics_json_str(&body, srv->name);
    metrics_buf_printf(&body, ",\"state\":\"%s\",\"weight\":%.4g,\"active\":%u}\n",
                       metrics_state_name(atomic_load(&srv->state)),
                       (double)atomic_load(&srv->weight) / SRV_WEIGHT_SCALE,
                       atomic_load(&srv->active));
    respond(c, 200, "application/json", "", &body, false);
}

/*
 * /api/faults (chaos, core/fault.h): GET lists, POST adds (a JSON body),
 * DELETE removes all, DELETE /api/faults/NAME one. Every refusal says why
 * in one line and changes nothing.
 */
static void fault_api(struct client *c, const struct admin_req *r, const char *name)
{
    struct metrics_buf body = {0};
    struct fault_spec spec;
    char err[256];
    int ret;

    if (!fault_enabled()) {
        respond_error(c, 403, "chaos is off (set [global] chaos = on to inject faults)", NULL);
        return;
    }
    if (*name) {
        if (strcmp(r->method, "DELETE") != 0) {
            respond_error(c, 405, "use DELETE", "Allow: DELETE\r\n");
            return;
        }
        if (fault_remove(name) < 0) {
            respond_error(c, 404, "no such fault", NULL);
            return;
        }
        adm->retire_pending = true;
        metrics_buf_printf(&body, "{\"removed\":1}\n");
        respond(c, 200, "application/json", "", &body, false);
        return;
    }
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
        fault_render_json(&body, now_ms());
        respond(c, 200, "application/json", "", &body, r->method[0] == 'H');
    } else if (strcmp(r->method, "DELETE") == 0) {
        metrics_buf_printf(&body, "{\"removed\":%u}\n", fault_remove_all());
        adm->retire_pending = true;
        respond(c, 200, "application/json", "", &body, false);
    } else if (strcmp(r->method, "POST") == 0) {
        if (fault_spec_parse(c->buf + r->head_len, r->body_len, &spec, err, sizeof(err)) < 0) {
            respond_error(c, 400, err, NULL);
            return;
        }
        ret = fault_add(&spec, now_ms(), err, sizeof(err));
        if (ret < 0) {
            respond_error(c, ret == -EEXIST ? 409 : ret == -ENOMEM ? 500 : 400, err, NULL);
            return;
        }
        adm->retire_pending = true;
        metrics_buf_printf(&body, "{\"added\":\"%s\"}\n", spec.name);
        respond(c, 201, "application/json", "", &body, false);
    } else {
        respond_error(c, 405, "use GET, POST or DELETE", "Allow: GET, HEAD, POST, DELETE\r\n");
    }
}

/* Samples server connection totals once per ADMIN_RATE_MS for /stats. The
 * samples live in the servers, so they follow them across reloads. */
static void rates_sample(struct admin *a, uint64_t now)
{
    const struct lb_table *t = backend_table_get();
    double dt = (double)(now - a->rate_at) / 1000.0;

    for (uint32_t i = 0; i < t->npools; i++) {
        for (uint32_t j = 0; j < t->pools[i].nservers; j++) {
            struct server *s = t->pools[i].servers[j];
            uint64_t tot = atomic_load_explicit(&s->conns_total, memory_order_relaxed);

            /* A server added since the last sample has no rate yet. */
            s->rate = s->rate_sampled ? (double)(tot - s->rate_total) / dt : 0.0;
            s->rate_total = tot;
            s->rate_sampled = true;
        }
    }
    a->rate_at = now;
}

static void route(struct client *c, const struct admin_req *r)
{
    bool get = strcmp(r->method, "GET") == 0, head = strcmp(r->method, "HEAD") == 0;
    struct metrics_buf body = {0};

    if (strncmp(r->path, "/api/backends/", 14) == 0) {
        server_action(c, r, r->path + 14);
        return;
    }
    if (strcmp(r->path, "/api/faults") == 0 || strncmp(r->path, "/api/faults/", 12) == 0) {
        fault_api(c, r, r->path[11] ? r->path + 12 : "");
        return;
    }
    if (strcmp(r->path, "/metrics") != 0 && strcmp(r->path, "/api/backends") != 0 &&
        strcmp(r->path, "/api/backends.csv") != 0 && strcmp(r->path, "/stats") != 0 &&
        strcmp(r->path, "/healthz") != 0 && strcmp(r->path, "/") != 0) {
        respond_error(c, 404, "try /stats, /metrics, /healthz, /api/backends or /api/faults", NULL);
        return;
    }
    if (!get && !head) {
        respond_error(c, 405, "use GET", "Allow: GET, HEAD\r\n");
        return;
    }
    if (strcmp(r->path, "/metrics") == 0) {
        metrics_render_prom(&body);
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", "", &body, head);
    } else if (strcmp(r->path, "/api/backends") == 0) {
        metrics_render_json(&body);
        respond(c, 200, "application/json", "", &body, head);
    } else if (strcmp(r->path, "/api/backends.csv") == 0) {
        metrics_render_csv(&body);
        respond(c, 200, "text/csv; charset=utf-8; header=present",
                "Content-Disposition: inline; filename=\"ringlb-backends.csv\"\r\n", &body, head);
    } else if (strcmp(r->path, "/stats") == 0) {
        stats_page_render(&body);
        respond(c, 200, "text/html; charset=utf-8", "", &body, head);
    } else if (strcmp(r->path, "/healthz") == 0) {
        /* For the process, not its servers: a load balancer in front of
         * ringlb (keepalived, a cloud balancer, a Kubernetes probe) stops
         * sending to a draining process while its listeners still accept. */
        bool draining = atomic_load_explicit(&lb_rt.draining, memory_order_relaxed);

        metrics_buf_printf(&body, "%s\n", draining ? "draining" : "serving");
        respond(c, draining ? 503 : 200, "text/plain; charset=utf-8", "", &body, head);
    } else {
        metrics_buf_printf(&body,
                           "ringlb admin: GET /stats, /metrics, /healthz, /api/backends; POST "
                           "/api/backends/B/servers/S/{enable,disable,drain,weight?value=N} with "
                           "Content-Type: application/json; GET, POST, DELETE /api/faults "
                           "(chaos = on)\n");
        respond(c, 200, "text/plain; charset=utf-8", "", &body, head);
    }
}

/* ---- clients ---- */

static void client_close(struct admin *a, struct client *c)
{
    epoll_ctl(a->efd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    metrics_buf_free(&c->out);
    c->fd = -1;
    c->phase = CL_FREE;
}

static void client_events(struct admin *a, struct client *c, uint32_t events)
{
    struct epoll_event ev = {.data.ptr = c};

    ev.events = events;
    if (epoll_ctl(a->efd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        client_close(a, c);
}

/* After WRITE: our FIN goes out, and the client's last bytes are read. */
static void client_linger(struct admin *a, struct client *c)
{
    shutdown(c->fd, SHUT_WR);
    metrics_buf_free(&c->out);
    c->phase = CL_LINGER;
    c->since = now_ms();
    c->deadline = c->since + ADMIN_LINGER_MS;
    client_events(a, c, EPOLLIN | EPOLLRDHUP);
}

static void client_write(struct admin *a, struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            client_events(a, c, EPOLLOUT);
            return;
        }
        if (n <= 0) {
            client_close(a, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    client_linger(a, c);
}

/* Moves <c> to WRITE: the response is rendered now and sent as the socket allows. */
static void client_respond_now(struct admin *a, struct client *c)
{
    client_events(a, c, EPOLLOUT);
    if (c->phase != CL_FREE)
        client_write(a, c);
}

/* admin_check_request for <r> on <c>, with the connection's own address
 * (on a wildcard bind, the one the client reached). */
static int check_request(struct client *c, const struct admin_req *r)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct admin_access acc;
    int ret;

    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0)
        return -500;
    pthread_mutex_lock(&access_lock);
    acc = access_now;
    pthread_mutex_unlock(&access_lock);
    ret = admin_check_request(r, ss.ss_family == AF_UNIX ? NULL : (struct sockaddr *)&ss, &acc);
    explicit_bzero(&acc, sizeof(acc));
    return ret;
}

void admin_set_access(const struct config *cfg)
{
    const char *t = cfg->global.admin_token;

    pthread_mutex_lock(&access_lock);
    explicit_bzero(&access_now, sizeof(access_now));
    if (t) {
        access_now.len = strlen(t);
        memcpy(access_now.token, t, access_now.len);
    }
    access_now.read = t && cfg->global.admin_read_token;
    pthread_mutex_unlock(&access_lock);
}

/* What a refusal by admin_check_request tells the client (see admin.h). */
static const char *check_message(int status)
{
    switch (status) {
    case 400:
        return "HTTP/1.1 needs one Host header";
    case 401:
        return "this API needs Authorization: Bearer TOKEN (the token of admin_token_file)";
    case 403:
        return "Origin is not this admin server";
    case 415:
        return "writes need Content-Type: application/json";
    case 421:
        return "Host must be this admin server's address and port (or localhost:PORT on "
               "loopback)";
    default:
        return NULL;
    }
}

static void client_read(struct admin *a, struct client *c)
{
    struct admin_req r;
    ssize_t n;
    int ret;

    if (c->phase == CL_LINGER) {
        char sink[4096];

        n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            client_close(a, c);
        return;
    }
    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* Gone before a full request (or reset): nobody to answer. */
        client_close(a, c);
        return;
    }
    c->len += (size_t)n;
    ret = admin_parse_request(c->buf, c->len, &r);
    if (ret == 0)
        return;
    if (ret < 0) {
        respond_error(c, -ret, NULL, NULL);
    } else if (c->len < r.head_len + r.body_len) {
        return; /* the body is still coming; it fits: ADMIN_BUF is head + body max */
    } else if ((ret = check_request(c, &r)) < 0) {
        respond_error(c, -ret, check_message(-ret),
                      ret == -401 ? "WWW-Authenticate: Bearer realm=\"ringlb\"\r\n" : NULL);
    } else {
        route(c, &r);
    }
    client_respond_now(a, c);
}

/* ---- the listener ---- */

/*
 * Moves the listener to <to> (see enum ls_state): the one place that adds
 * it to or takes it out of the epoll set. A listener that cannot be added
 * back stays PAUSED and is tried again a backoff later.
 */
static void listener_set(struct admin *a, enum ls_state to, uint64_t now)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    if (to == a->ls_state || a->ls_state == LS_HANDED_OVER)
        return;
    if (to == LS_PAUSED || to == LS_HANDED_OVER) {
        if (a->ls_state == LS_ACCEPTING)
            epoll_ctl(a->efd, EPOLL_CTL_DEL, a->lfd, NULL);
        a->ls_resume = now + ADMIN_ACCEPT_BACKOFF_MS;
        a->ls_state = (uint8_t)to;
        if (to == LS_HANDED_OVER) {
            /* Only our descriptor: the new process holds the socket. */
            close(a->lfd);
            a->lfd = -1;
        }
        return;
    }
    if (epoll_ctl(a->efd, EPOLL_CTL_ADD, a->lfd, &ev) < 0) {
        log_warn("admin: cannot watch the listener again: %s", strerror(errno));
        a->ls_resume = now + ADMIN_ACCEPT_BACKOFF_MS;
        return;
    }
    a->ls_state = LS_ACCEPTING;
}

/*
 * accept failed with <err> for want of a resource (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) or for a reason nobody expects: retrying at once would find the
 * same, so stop watching the listener for a while; clients wait in the
 * backlog meanwhile. Said at most once per ADMIN_ACCEPT_WARN_MS (the log's
 * rate limiter counts the pauses in between): under descriptor exhaustion
 * a line per backoff would flood the log too.
 */
static void accept_backoff(struct admin *a, int err)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(ADMIN_ACCEPT_WARN_MS, 1);

    log_msg_ratelimited(&rl, LOG_WARN,
                        "admin: accept: %s; not accepting for %d ms at a time until it works",
                        strerror(err), ADMIN_ACCEPT_BACKOFF_MS);
    a->ls_failing = true;
    listener_set(a, LS_PAUSED, now_ms());
}

/* Sends <msg> if the socket takes it now, and closes <fd>; never waits. */
static void close_with(int fd, const char *msg, size_t len)
{
    if (send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("admin: client closed without an answer: %s", strerror(errno));
    close(fd);
}

/* Whether <c> has bytes waiting that this thread has not read yet. */
static bool client_has_input(const struct client *c)
{
    char b;

    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/*
 * Every slot is taken and a client waits: which one makes room. Idle
 * connections cost a client nothing to open, so they must not be able to
 * keep a scrape out until the request deadline. Like nginx reusing its
 * keep-alive connections, the one idle the longest goes first: a client in
 * READ that sent nothing (and has nothing waiting); else the oldest in
 * READ (a request trickling in) or LINGER (answered already). A client in
 * WRITE is being answered and keeps its slot. NULL when all are in WRITE.
 */
static struct client *pick_victim(struct admin *a)
{
    struct client *idle = NULL, *old = NULL;

    for (int k = 0; k < ADMIN_MAX_CLIENTS; k++) {
        struct client *c = &a->cl[k];

        if (c->phase == CL_READ && c->len == 0 && (!idle || c->since < idle->since) &&
            !client_has_input(c))
            idle = c;
        else if ((c->phase == CL_READ || c->phase == CL_LINGER) && (!old || c->since < old->since))
            old = c;
    }
    return idle ? idle : old;
}

/* Closes <c> to make room; a client still in READ hears why. */
static void client_evict(struct admin *a, struct client *c)
{
    static const char msg[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";

    if (c->phase == CL_READ && send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("admin: evicted client got no answer: %s", strerror(errno));
    client_close(a, c);
}

static struct client *client_slot(struct admin *a)
{
    struct client *c;

    for (int k = 0; k < ADMIN_MAX_CLIENTS; k++) {
        if (a->cl[k].phase == CL_FREE)
            return &a->cl[k];
    }
    c = pick_victim(a);
    if (c)
        client_evict(a, c);
    return c;
}

static void on_accept(struct admin *a)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c = NULL;
        struct epoll_event ev = {.events = EPOLLIN};

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_backoff(a, errno);
            return;
        }
        if (a->ls_failing) {
            log_info("admin: accepting again");
            a->ls_failing = false;
        }
        c = client_slot(a);
        if (!c) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";

            /* Every slot is answering: the client gets a 503 or a close. */
            close_with(fd, busy, sizeof(busy) - 1);
            continue;
        }
        memset(&c->out, 0, sizeof(c->out));
        c->fd = fd;
        c->len = 0;
        c->phase = CL_READ;
        c->since = now_ms();
        c->deadline = c->since + ADMIN_REQ_TIMEOUT_MS;
        ev.data.ptr = c;
        if (epoll_ctl(a->efd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            c->phase = CL_FREE;
            c->fd = -1;
        }
    }
}

static void check_deadlines(struct admin *a, uint64_t now)
{
    for (int k = 0; k < ADMIN_MAX_CLIENTS; k++) {
        struct client *c = &a->cl[k];

        if (c->phase == CL_FREE || now < c->deadline)
            continue;
        if (c->phase == CL_READ) {
            /* Slowloris and idle clients: answer, then close. */
            respond_error(c, 408, "request not complete in time", NULL);
            client_respond_now(a, c);
        } else {
            client_close(a, c);
        }
    }
}

static void *admin_main(void *arg)
{
    struct admin *a = arg;
    struct epoll_event evs[32];

    pthread_setname_np(pthread_self(), "ringlb-admin");
    a->qsbr_slot = qsbr_register();
    rates_sample(a, now_ms());
    for (;;) {
        uint64_t now = now_ms();
        int wait = ADMIN_MAX_WAIT_MS;
        int n;

        if (a->ls_state == LS_PAUSED)
            wait = a->ls_resume <= now                      ? 0
                   : a->ls_resume - now < ADMIN_MAX_WAIT_MS ? (int)(a->ls_resume - now)
                                                            : ADMIN_MAX_WAIT_MS;
        n = epoll_wait(a->efd, evs, 32, wait);
        if (n < 0 && errno != EINTR) {
            log_error("admin: epoll_wait: %s; admin server stopped", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;

            if (c == NULL) {
                on_accept(a);
            } else if ((void *)c == (void *)a) {
                uint64_t v;

                if (read(a->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    log_warn("admin: reading its wake-up: %s", strerror(errno));
                if (atomic_load_explicit(&a->stop, memory_order_acquire))
                    goto out;
                if (atomic_load_explicit(&a->hand_over, memory_order_acquire)) {
                    listener_set(a, LS_HANDED_OVER, now);
                    log_info("admin: the new process took the listener over");
                }
            } else if (c->phase == CL_WRITE)
                client_write(a, c);
            else if (c->phase != CL_FREE)
                client_read(a, c);
        }
        now = now_ms();
        if (a->ls_state == LS_PAUSED && now >= a->ls_resume)
            listener_set(a, LS_ACCEPTING, now);
        check_deadlines(a, now);
        if (now >= a->rate_at + ADMIN_RATE_MS)
            rates_sample(a, now);
        if (fault_any()) {
            fault_expire(now);
            a->retire_pending = true;
        }
        if (a->qsbr_slot >= 0)
            qsbr_quiescent(a->qsbr_slot);
        if (a->retire_pending)
            a->retire_pending = qsbr_poll() > 0;
    }
out:
    for (int k = 0; k < ADMIN_MAX_CLIENTS; k++) {
        if (a->cl[k].phase != CL_FREE)
            client_close(a, &a->cl[k]);
    }
    if (a->qsbr_slot >= 0)
        qsbr_unregister(a->qsbr_slot);
    return NULL;
}

static void admin_free(struct admin *a)
{
    if (!a)
        return;
    if (a->lfd >= 0)
        close(a->lfd);
    /* Handed over, the path is the new process's (the thread may have
     * stopped before it closed the listener itself). */
    if (!atomic_load_explicit(&a->hand_over, memory_order_acquire))
        net_unlink_unix((const struct sockaddr *)&a->addr.ss);
    if (a->efd >= 0)
        close(a->efd);
    if (a->stop_fd >= 0)
        close(a->stop_fd);
    lb_free(a->cl);
    lb_free(a);
}

int admin_start(const struct config *cfg, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    struct admin *a;
    int ret = -ENOMEM;

    if (!cfg->global.has_admin) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    a = lb_calloc(1, sizeof(*a));
    if (!a) {
        if (fd >= 0)
            close(fd);
        goto err_log;
    }
    a->lfd = a->efd = a->stop_fd = -1;
    a->qsbr_slot = -1;
    a->addr = cfg->global.admin;
    cfg_addr_str(&a->addr, a->addr_text, sizeof(a->addr_text));
    a->cl = lb_calloc(ADMIN_MAX_CLIENTS, sizeof(*a->cl));
    if (!a->cl)
        goto err;
    for (int k = 0; k < ADMIN_MAX_CLIENTS; k++)
        a->cl[k].fd = -1;
    /* A listener handed over by a hot upgrade: the same socket, so that
     * requests queued on it are answered. */
    a->lfd = fd >= 0 ? fd : net_listen((const struct sockaddr *)&a->addr.ss, a->addr.len, false);
    if (a->lfd < 0) {
        ret = a->lfd;
        log_error("admin: cannot listen on %s: %s", a->addr_text, strerror(-ret));
        a->lfd = -1;
        admin_free(a);
        return ret;
    }
    /* The API is the host's own users' (a token guards it otherwise: see
     * config.c check_admin): a unix socket is the owner's alone. */
    if (a->addr.ss.ss_family == AF_UNIX &&
        chmod(((const struct sockaddr_un *)&a->addr.ss)->sun_path, 0600) < 0) {
        ret = -errno;
        log_error("admin: cannot make %s owner-only: %s", a->addr_text, strerror(-ret));
        goto err;
    }
    if (!cfg_addr_is_loopback(&a->addr) && !cfg->global.admin_read_token)
        log_warn("admin: %s is not a loopback address: writes need the token, but anyone who "
                 "can reach it can read /metrics, /stats and /api/backends (admin_read_token = "
                 "yes guards them too)",
                 a->addr_text);
    admin_set_access(cfg);
    a->efd = epoll_create1(EPOLL_CLOEXEC);
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0 || a->stop_fd < 0) {
        ret = -errno;
        goto err;
    }
    ev.data.ptr = NULL;
    if (epoll_ctl(a->efd, EPOLL_CTL_ADD, a->lfd, &ev) < 0) {
        ret = -errno;
        goto err;
    }
    ev.data.ptr = a;
    if (epoll_ctl(a->efd, EPOLL_CTL_ADD, a->stop_fd, &ev) < 0) {
        ret = -errno;
        goto err;
    }
    adm = a;
    ret = pthread_create(&a->thread, NULL, admin_main, a);
    if (ret != 0) {
        adm = NULL;
        ret = -ret;
        goto err;
    }
    log_info("admin: %s %s (/stats, /metrics, /healthz, /api/backends)",
             fd >= 0 ? "took over the listener on" : "listening on", a->addr_text);
    return 0;
err:
    admin_free(a);
err_log:
    log_error("admin: cannot start: %s", strerror(-ret));
    return ret;
}

int admin_listener_fd(struct cfg_addr *addr)
{
    if (!adm || atomic_load_explicit(&adm->hand_over, memory_order_relaxed))
        return -1;
    *addr = adm->addr;
    return adm->lfd;
}

/* Wakes the admin thread to look at its flags. */
static void admin_wake(struct admin *a)
{
    uint64_t one = 1;

    if (write(a->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("admin: cannot wake the admin thread: %s", strerror(errno));
}

void admin_hand_over(void)
{
    if (!adm)
        return;
    atomic_store_explicit(&adm->hand_over, true, memory_order_release);
    admin_wake(adm);
}

void admin_stop(void)
{
    struct admin *a = adm;

    if (!a)
        return;
    atomic_store_explicit(&a->stop, true, memory_order_release);
    admin_wake(a);
    pthread_join(a->thread, NULL);
    adm = NULL;
    admin_free(a);
}
