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
 * ADMIN_REQ_TIMEOUT_MS 408, garbage 400; at most ADMIN_MAX_CLIENTS at once.
 * Every socket is non-blocking, so no client can stall the thread.
 */
#ifndef LB_ADMIN_H
#define LB_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct config;

#define ADMIN_HEAD_MAX       8192
#define ADMIN_BODY_MAX       4096
#define ADMIN_TARGET_MAX     1024
#define ADMIN_MAX_HEADERS    64
#define ADMIN_MAX_CLIENTS    64
#define ADMIN_REQ_TIMEOUT_MS 5000

/*
 * Binds `admin =` of <cfg> and starts the admin thread (main thread, with
 * the signals it handles blocked, after backend_table_init and
 * metrics_init). Does nothing when admin is off. Returns 0 or -errno with
 * the reason logged: a bind error stops start-up, as for a frontend.
 */
int admin_start(const struct config *cfg);

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
 * Parses "value=N" (N from 0 to <max>) out of the query string <q>.
 * Returns 0 or -EINVAL.
 */
int admin_query_uint(const char *q, const char *key, uint32_t max, uint32_t *out);

#endif
