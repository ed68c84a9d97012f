/*
 * probe.c - one health probe: connect, send, read the reply, decide.
 *
 *  - tcp: the connect succeeds within health_timeout.
 *  - http: "GET health_path HTTP/1.1" with a Host header; the status line
 *    must carry health_expect. Only the status line is read (at most
 *    HC_STATUS_LINE_MAX bytes): headers and body never matter.
 *  - send_expect: health_send goes out (if any), and the reply must start
 *    with health_expect (Redis PING / +PONG, SMTP banners, ...).
 *  - redis: [AUTH] PING ROLE QUIT go out in one send (pipelined: one round
 *    trip), the replies are parsed as they arrive (redis.c) and the role
 *    must be the backend's. The replies are not kept, only parsed.
 *  - pgsql, mysql: a conversation (pgsql.c, mysql.c): the check's state
 *    machine is fed what arrives and says what to send next (a password,
 *    a query), until it knows the role. Once logged in it ends with the
 *    protocol's goodbye and waits for the server to close (HC_QUIT),
 *    within the same deadline, so that the server logs no lost client.
 *
 * health_port sends every kind of probe to that port of the server's
 * address instead of its own (a Patroni REST API next to PostgreSQL).
 *
 * Probe sockets close with SO_LINGER 0 (a reset, as HAProxy does): a
 * thousand probes a second would otherwise leave sixty thousand TIME_WAIT
 * sockets on the checker's side. The deadline timer and every completion
 * funnel into finish(), which cancels what is in flight, closes the socket
 * and reports once; completions that arrive after it only return buffers.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/alloc.h"
#include "../core/backend.h"
#include "../core/compiler.h"
#include "../core/fault.h"
#include "health_int.h"
#include "mysql.h"
#include "pgsql.h"
#include "redis.h"

/* A database check's state, kept from one probe of a server to the next
 * (the SCRAM cache) or reset at each start (the rest). */
struct hc_db {
    union {
        struct pg_check pg;
        struct my_check my;
    };
    union {
        struct pg_params pgp;
        struct my_params myp;
    };
    struct pg_scram_cache cache;
    uint32_t sent; /* bytes of out handed to a send */
    bool ok;       /* HC_QUIT: the verdict, reported once the server closed */
    char why[160];
};

/* ---- parsers ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int hc_http_status(const char *buf, size_t len, int *status)
{
    /* "HTTP/" DIGIT "." DIGIT SP 3DIGIT (SP reason)? CRLF; a bare LF is
     * tolerated, as most clients do. Position i must match pattern[i]:
     * 'd' a digit, anything else itself. */
    static const char pattern[] = "HTTP/d.d ddd";
    const size_t plen = sizeof(pattern) - 1;
    const char *eol;

    for (size_t i = 0; i < len && i < plen; i++) {
        if (pattern[i] == 'd' ? !is_digit(buf[i]) : buf[i] != pattern[i])
            return -EINVAL;
    }
    if (len > plen && buf[plen] != ' ' && buf[plen] != '\r' && buf[plen] != '\n')
        return -EINVAL;
    eol = memchr(buf, '\n', len < HC_STATUS_LINE_MAX ? len : HC_STATUS_LINE_MAX);
    if (!eol)
        return len >= HC_STATUS_LINE_MAX ? -E2BIG : 0;
    if ((size_t)(eol - buf) < plen)
        return -EINVAL;
    /* The reason phrase is text: no control bytes but the final CR. */
    for (const char *c = buf + plen; c < eol; c++) {
        if (((unsigned char)*c < 0x20 && *c != '\t' && !(*c == '\r' && c + 1 == eol)) || *c == 0x7f)
            return -EINVAL;
    }
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (*status < 100)
        return -EINVAL;
    return 1;
}

int hc_expect_match(const char *buf, size_t len, const char *exp, size_t elen)
{
    size_t n = len < elen ? len : elen;

    if (memcmp(buf, exp, n) != 0)
        return -EINVAL;
    return len >= elen ? 1 : 0;
}

const char *hc_printable(const char *buf, size_t len, char *out, size_t outlen)
{
    size_t o = 0;

    if (!outlen)
        return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        char tmp[5];
        size_t n;

        if (c == '\r')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\r");
        else if (c == '\n')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
        else if (c < 0x20 || c >= 0x7f || c == '\\')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        else
            n = (size_t)snprintf(tmp, sizeof(tmp), "%c", c);
        if (o + n >= outlen)
            break;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

/* ---- probe I/O ---- */

bool hc__probe_busy(const struct hc_srv *h)
{
    return h->conn_op.inflight || h->tx.inflight || h->rx.inflight;
}

/* Cancels what is in flight and closes the socket; the probe is over. */
static void probe_end(struct hc_srv *h)
{
    struct loop *loop = h->hc->loop;

    h->ended_in = h->phase;
    h->phase = HC_IDLE;
    timer_disarm(loop_timers(loop), &h->timer);
    loop_cancel(loop, &h->conn_op);
    loop_cancel(loop, &h->tx);
    loop_cancel(loop, &h->rx);
    loop_close(loop, h->fd);
    h->fd = -1;
}

__attribute__((format(printf, 3, 4))) static void finish(struct hc_srv *h, bool ok, const char *fmt,
                                                         ...)
{
    char why[160];
    va_list ap;

    probe_end(h);
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    hc__result(h, ok, why);
}

void hc__probe_abort(struct hc_srv *h)
{
    if (h->phase != HC_IDLE)
        probe_end(h);
}

static struct dbw_out *db_out(struct hc_srv *h)
{
    return h->cb->health == HEALTH_PGSQL ? &h->db->pg.out : &h->db->my.out;
}

static const struct dbw_result *db_res(struct hc_srv *h)
{
    return h->cb->health == HEALTH_PGSQL ? &h->db->pg.res : &h->db->my.res;
}

/* Sends what the check appended since the last send; one send at a time,
 * on_tx() sends what came meanwhile. */
static void db_flush(struct hc_srv *h)
{
    struct dbw_out *o = db_out(h);
    struct hc_db *db = h->db;

    /* An overflowing out ends in a partial message: the check failed. */
    if (o->over || h->tx.inflight || db->sent >= o->len)
        return;
    loop_submit_send(h->hc->loop, &h->tx, h->fd, o->b + db->sent, o->len - db->sent);
    db->sent = o->len;
}

/* A database check reached a verdict, or the server closed (<eof>). */
static void db_evaluate(struct hc_srv *h, bool eof)
{
    static const enum dbw_want want[] = {
        [ROLE_ANY] = DBW_WANT_ANY,
        [ROLE_PRIMARY] = DBW_WANT_PRIMARY,
        [ROLE_REPLICA] = DBW_WANT_REPLICA,
    };
    const struct dbw_result *r = db_res(h);
    struct hc_db *db = h->db;

    if (r->verdict == DBW_MORE && !eof)
        return;
    if (h->cb->health == HEALTH_PGSQL)
        db->ok = pg_judge(&db->pg, want[h->cb->role], db->why, sizeof(db->why));
    else
        db->ok = my_judge(&db->my, want[h->cb->role], db->why, sizeof(db->why));
    if (r->quit && !eof) {
        h->phase = HC_QUIT;
        return;
    }
    finish(h, db->ok, "%s", db->why);
}

/* Decides on what has been received; <eof>: the server closed. */
static void evaluate(struct hc_srv *h, bool eof)
{
    const struct cfg_backend *cb = h->cb;
    char text[96];
    int r, status = 0;

    if (h->db) {
        db_evaluate(h, eof);
        return;
    }
    if (cb->health == HEALTH_REDIS) {
        static const enum redis_want want[] = {
            [ROLE_ANY] = REDIS_WANT_ANY,
            [ROLE_PRIMARY] = REDIS_WANT_PRIMARY,
            [ROLE_REPLICA] = REDIS_WANT_REPLICA,
        };
        char why[160];

        if (h->redis.verdict != REDIS_MORE || eof) {
            bool ok = redis_judge(&h->redis, want[cb->role], why, sizeof(why));

            finish(h, ok, "%s", why);
        }
        return;
    }
    if (cb->health == HEALTH_HTTP) {
        r = hc_http_status(h->resp, h->resp_len, &status);
        if (r == 1 && (uint32_t)status == cb->health_expect)
            finish(h, true, "http status %d", status);
        else if (r == 1)
            finish(h, false, "http status %d", status);
        else if (r == -E2BIG)
            finish(h, false, "http status line longer than %d bytes", HC_STATUS_LINE_MAX);
        else if (r < 0)
            finish(h, false, "not an http status line: '%s'",
                   hc_printable(h->resp, h->resp_len < 40 ? h->resp_len : 40, text, sizeof(text)));
        else if (eof)
            finish(h, false, "closed before the http status line (%u bytes)", h->resp_len);
        return;
    }
    r = hc_expect_match(h->resp, h->resp_len, cb->health_expect_str, cb->health_expect_len);
    if (r == 1)
        finish(h, true, "reply matched");
    else if (r < 0)
        finish(h, false, "unexpected reply '%s'",
               hc_printable(h->resp, h->resp_len < 40 ? h->resp_len : 40, text, sizeof(text)));
    else if (eof)
        finish(h, false, "closed after %u bytes of the expected reply", h->resp_len);
}

static void on_rx(struct loop_op *op, int res, unsigned flags)
{
    struct hc_srv *h = container_of(op, struct hc_srv, rx);
    struct loop *loop = h->hc->loop;

    if (flags & LOOP_F_BUF) {
        if (h->phase == HC_IO && h->db) {
            if (h->cb->health == HEALTH_PGSQL)
                pg_feed(&h->db->pg, loop_buf(loop, op->bid), (size_t)res);
            else
                my_feed(&h->db->my, loop_buf(loop, op->bid), (size_t)res);
            db_flush(h);
        } else if (h->phase == HC_IO && h->cb->health == HEALTH_REDIS) {
            redis_feed(&h->redis, loop_buf(loop, op->bid), (size_t)res);
        } else if (h->phase == HC_IO) {
            uint32_t n = (uint32_t)res;

            if (n > HC_RESP_MAX - h->resp_len)
                n = HC_RESP_MAX - h->resp_len;
            memcpy(h->resp + h->resp_len, loop_buf(loop, op->bid), n);
            h->resp_len += n;
        }
        loop_buf_put(loop, op->bid);
    }
    if (h->phase == HC_QUIT) {
        /* Whatever the server says after the goodbye does not matter; its
         * close (or a reset) ends the probe with the verdict. */
        if (res <= 0)
            finish(h, h->db->ok, "%s", h->db->why);
        else if (!(flags & LOOP_F_MORE))
            loop_submit_recv(loop, &h->rx, h->fd);
        return;
    }
    if (h->phase != HC_IO)
        return;
    if (res > 0)
        evaluate(h, false);
    else if (res == 0)
        evaluate(h, true);
    else
        finish(h, false, "recv: %s", strerror(-res));
    /* A multishot receive that stopped without an answer (or, after the
     * goodbye, before the server closed): arm it again. */
    if ((h->phase == HC_IO || h->phase == HC_QUIT) && !(flags & LOOP_F_MORE))
        loop_submit_recv(loop, &h->rx, h->fd);
}

static void on_tx(struct loop_op *op, int res, unsigned flags)
{
    struct hc_srv *h = container_of(op, struct hc_srv, tx);

    (void)flags;
    if ((h->phase == HC_IO || h->phase == HC_QUIT) && res < 0)
        finish(h, false, "send: %s", strerror(-res));
    else if ((h->phase == HC_IO || h->phase == HC_QUIT) && h->db)
        db_flush(h); /* what the check added meanwhile, the goodbye included */
}

/* Starts the conversation of a database check: fresh state, parameters
 * from the backend settings in force (a reload may have replaced them). */
static void db_start(struct hc_srv *h)
{
    const struct cfg_backend *cb = h->cb;
    struct hc_db *db = h->db;

    db->sent = 0;
    if (cb->health == HEALTH_PGSQL) {
        db->pgp = (struct pg_params){.user = cb->health_user,
                                     .db = cb->health_db,
                                     .password = cb->health_password,
                                     .cache = &db->cache};
        pg_check_init(&db->pg, &db->pgp);
    } else {
        db->myp = (struct my_params){
            .user = cb->health_user, .password = cb->health_password, .db = cb->health_db};
        my_check_init(&db->my, &db->myp);
    }
}

static void on_connect(struct loop_op *op, int res, unsigned flags)
{
    struct hc_srv *h = container_of(op, struct hc_srv, conn_op);
    struct loop *loop = h->hc->loop;

    (void)flags;
    if (h->phase != HC_CONNECT)
        return;
    if (res < 0) {
        if (h->cb->health_port)
            finish(h, false, "connect to health_port %u: %s", h->cb->health_port, strerror(-res));
        else
            finish(h, false, "connect: %s", strerror(-res));
        return;
    }
    if (h->cb->health == HEALTH_TCP) {
        finish(h, true, "connected");
        return;
    }
    h->phase = HC_IO;
    if (h->db) {
        db_start(h);
        if (db_res(h)->verdict != DBW_MORE) {
            db_evaluate(h, false);
            return;
        }
        db_flush(h);
    } else if (h->req_len)
        loop_submit_send(loop, &h->tx, h->fd, h->req, h->req_len);
    loop_submit_recv(loop, &h->rx, h->fd);
}

static void on_deadline(struct timer *t, uint64_t now);

void hc__probe_start(struct hc_srv *h)
{
    static const struct linger rst = {.l_onoff = 1, .l_linger = 0};
    struct loop *loop = h->hc->loop;
    int fd;

    hc__probe_started(h);
    /* A fault with probes on (chaos) fails the probe as a dead server
     * would, so the server is marked down the way a real one is. */
    if (fault_any()) {
        char why[160];

        if (fault_probe_fails(backend_table_get()->pools[h->pool_idx].name, h->s->name,
                              loop_now(loop), why, sizeof(why))) {
            hc__result(h, false, why);
            return;
        }
    }
    fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        hc__result(h, false, strerror(errno));
        return;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
    h->fd = fd;
    h->phase = HC_CONNECT;
    h->resp_len = 0;
    if (h->cb->health == HEALTH_REDIS)
        redis_parse_init(&h->redis, h->cb->health_password != NULL);
    h->timer.cb = on_deadline;
    loop_submit_connect(loop, &h->conn_op, fd, (const struct sockaddr *)&h->addr, h->addrlen);
    if (timer_arm(loop_timers(loop), &h->timer,
                  hc__tick(loop_now(loop) + h->cb->health_timeout_ms)) < 0)
        finish(h, false, "out of memory for a timer");
}

static void on_deadline(struct timer *t, uint64_t now)
{
    struct hc_srv *h = container_of(t, struct hc_srv, timer);

    (void)now;
    /* The verdict stands when only the server's close is late. */
    if (h->phase == HC_QUIT)
        finish(h, h->db->ok, "%s", h->db->why);
    else if (h->phase != HC_IDLE)
        finish(h, false, "timeout after %u ms%s", h->cb->health_timeout_ms,
               h->phase == HC_CONNECT ? " (connect)" : "");
}

/* Where the probes of <h> go: the server's address, on health_port if the
 * backend sets one (config refuses it for unix-socket servers). */
static void probe_addr(struct hc_srv *h)
{
    const struct server *s = h->s;
    uint16_t port = htons((uint16_t)h->cb->health_port);

    memcpy(&h->addr, &s->addr, s->addrlen);
    h->addrlen = s->addrlen;
    if (!h->cb->health_port)
        return;
    if (h->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&h->addr)->sin_port = port;
    else if (h->addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&h->addr)->sin6_port = port;
}

int hc__probe_init(struct hc_srv *h)
{
    const struct cfg_backend *cb = h->cb;
    const char *host = h->s->addr.ss_family == AF_UNIX ? "localhost" : h->s->addr_text;
    int n;

    h->fd = -1;
    h->conn_op.cb = on_connect;
    h->tx.cb = on_tx;
    h->rx.cb = on_rx;
    probe_addr(h);
    if (cb->health == HEALTH_HTTP) {
        static const char fmt[] = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringlb-health\r\n"
                                  "Accept: */*\r\nConnection: close\r\n\r\n";

        n = snprintf(NULL, 0, fmt, cb->health_path, host);
        h->req = lb_malloc((size_t)n + 1);
        if (!h->req)
            return -ENOMEM;
        snprintf(h->req, (size_t)n + 1, fmt, cb->health_path, host);
        h->req_len = (uint32_t)n;
    } else if (cb->health == HEALTH_SEND_EXPECT && cb->health_send_len) {
        h->req = lb_malloc(cb->health_send_len);
        if (!h->req)
            return -ENOMEM;
        memcpy(h->req, cb->health_send, cb->health_send_len);
        h->req_len = (uint32_t)cb->health_send_len;
    } else if (cb->health == HEALTH_REDIS) {
        size_t len = redis_request(NULL, 0, cb->health_user, cb->health_password);

        h->req = lb_malloc(len);
        if (!h->req)
            return -ENOMEM;
        redis_request(h->req, len, cb->health_user, cb->health_password);
        h->req_len = (uint32_t)len;
    } else if (cb->health == HEALTH_PGSQL || cb->health == HEALTH_MYSQL) {
        h->db = lb_calloc(1, sizeof(*h->db));
        if (!h->db)
            return -ENOMEM;
    }
    return 0;
}
