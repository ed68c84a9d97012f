/*
 * admin.h - the admin HTTP server on `admin =`: GET /metrics (Prometheus),
 * GET /api/backends (JSON), GET /stats (HTML), and
 * POST /api/backends/{b}/servers/{s}/{enable|disable|drain|weight?value=N}.
 *
 * It runs in a thread of its own with a small epoll loop, never on a
 * worker: a scrape renders text and takes the server-state mutex, neither
 * of which belongs on the data path. It accepts only well-formed, bounded
 * HTTP/1.x requests: a request head over ADMIN_HEAD_MAX bytes gets 431, a
 * body over ADMIN_BODY_MAX 413, a request not complete within
 * ADMIN_REQ_TIMEOUT_MS 408, garbage or ambiguous framing 400, and one that
 * a browser could have been made to send (admin_check_request) 421, 403
 * or 415. At most ADMIN_MAX_CLIENTS at once: when all are taken, the one
 * idle longest makes room for a new one. Every socket is non-blocking,
 * and an accept that fails (EMFILE) pauses the listener, so no client and
 * no shortage can stall or spin the thread. A non-loopback address is
 * warned about at start-up: there is no authentication yet.
 */
#ifndef LB_ADMIN_H
#define LB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

struct config;
struct sockaddr;

#define ADMIN_HEAD_MAX       8192
#define ADMIN_BODY_MAX       4096
#define ADMIN_TARGET_MAX     1024
#define ADMIN_MAX_HEADERS    64
#define ADMIN_MAX_CLIENTS    64
#define ADMIN_REQ_TIMEOUT_MS 5000

/*
 * Binds `admin =` of <cfg> and starts the admin thread (main thread, with
 * the signals it handles blocked, after backend_table_init and
 * metrics_init); <fd> >= 0 is the listener a hot upgrade handed over for
 * that address, used instead of a new one (and closed when admin is off).
 * Does nothing when admin is off. Returns 0 or -errno with the reason
 * logged: a bind error stops start-up, as for a frontend.
 */
int admin_start(const struct config *cfg, int fd);

/* The admin listener and its address, for a hot upgrade to hand over; -1
 * when there is none. Main thread. */
int admin_listener_fd(struct cfg_addr *addr);

/*
 * A hot upgrade's new process serves: the admin thread stops accepting
 * (it finishes the requests it has) and closes its descriptor, but the
 * socket and its unix path stay, the new process's now. Main thread.
 */
void admin_hand_over(void);

/* Takes the token settings of <cfg> (at start-up and on every reload); the
 * next request is checked against them. Main thread. */
void admin_set_access(const struct config *cfg);

/* Stops and joins the admin thread; before the backend table is destroyed. */
void admin_stop(void);

/* ---- the request parser (admin_parse.c), for the server, tests, fuzzer ---- */

/* A header value inside the parsed buffer (not terminated); p is NULL when
 * the header is absent, and non-NULL with len 0 when it is present but empty. */
struct admin_hdr {
    const char *p;
    size_t len;
};

struct admin_req {
    char method[8];
    char path[ADMIN_TARGET_MAX];  /* target up to '?' */
    char query[ADMIN_TARGET_MAX]; /* after '?', "" when none */
    size_t head_len;              /* bytes of the head, blank line included */
    size_t body_len;              /* Content-Length */
    int minor;                    /* HTTP/1.<minor> */
    /* The headers the server acts on, each allowed once; they point into
     * the buffer given to admin_parse_request and live as long as it. */
    struct admin_hdr length; /* Content-Length (its value is body_len) */
    struct admin_hdr host;
    struct admin_hdr origin;
    struct admin_hdr ctype; /* Content-Type */
    struct admin_hdr auth;  /* Authorization */
};

/* Who may use the API: the token of admin_token_file, if any. */
struct admin_access {
    char token[CFG_TOKEN_MAX + 1]; /* "": no token */
    size_t len;
    bool read; /* admin_read_token: reads need the token too */
};

/*
 * Parses the request head at the start of <buf> (<len> bytes). Returns 1
 * when the head is complete and valid (<r> filled), 0 when more bytes are
 * needed and nothing seen so far is wrong, or -STATUS: -400 malformed
 * (also: Host, Content-Length, Origin or Content-Type twice; Content-Length
 * not 1*DIGIT; Transfer-Encoding after a Content-Length), -413 body too
 * large, -414 target too long, -431 head too large, -501
 * Transfer-Encoding, -505 not HTTP/1.x. Pure function; any thread.
 */
int admin_parse_request(const char *buf, size_t len, struct admin_req *r);

/*
 * Decides whether the parsed request <r>, which arrived on a connection
 * whose local address is <local> (NULL for a unix socket), may be served
 * under <acc>.
 * The admin server does what it is told by whoever reaches it, so it must
 * tell a request sent on purpose from one a web page made a browser send:
 *  - Host must name this server (admin_authority_ok): a page that rebinds
 *    its own DNS name to 127.0.0.1 reaches us with its name in Host
 *    (DNS rebinding, which would let it read /api and /metrics), so a
 *    foreign Host is refused on every request: -421 (Misdirected
 *    Request). HTTP/1.1 without Host: -400; HTTP/1.0 may omit it. On a
 *    unix socket, which no browser reaches, Host is not checked.
 *  - Origin, when present, must be http:// and such a Host: -403. A page
 *    elsewhere that makes the browser send a request (CSRF) cannot hide
 *    its Origin on a POST. On a unix socket any Origin is refused.
 *  - With a token (admin_token_file), a write, and with acc->read any
 *    request, must carry "Authorization: Bearer <token>": -401 otherwise.
 *    A browser never adds that header by itself, so it also proves the
 *    request was meant.
 *  - Without a token, a write (any method but GET and HEAD) must carry
 *    Content-Type: application/json, which no page can send cross-site
 *    without a CORS preflight that this server refuses: -415 otherwise.
 * Returns 0 or -STATUS. Pure function; any thread.
 */
int admin_check_request(const struct admin_req *r, const struct sockaddr *local,
                        const struct admin_access *acc);

/*
 * Whether the authority <s> (<n> bytes, "host" or "host:port", as in Host
 * and Origin) names <local>, an AF_INET or AF_INET6 address: an IP literal
 * equal to <local> ("[v6]" in brackets) with <local>'s port (no port means
 * 80). When <local> is a loopback address, "localhost", "127.0.0.1" and
 * "[::1]" with that port name it too. Names other than localhost never do:
 * ringlb cannot know which names are its own.
 */
bool admin_authority_ok(const char *s, size_t n, const struct sockaddr *local);

/* GET and HEAD change nothing; every other method is a write. */
bool admin_method_safe(const char *method);

/*
 * Parses "value=N" (N from 0 to <max>) out of the query string <q>.
 * Returns 0 or -EINVAL.
 */
int admin_query_uint(const char *q, const char *key, uint32_t max, uint32_t *out);

#endif
