/*
 * http_probe.c - the client side of the admin-server comparison: the same
 * requests, sent the same way, to ringlb's admin server (core/admin.c) and
 * to mhd_admin (libmicrohttpd); run.sh starts both.
 *
 *   http_probe wait PORT              until PORT accepts (10 s at most)
 *   http_probe rps PORT CLIENTS SECS  GET /nothing (404), a connection each
 *                                     (Connection: close, as ringlb
 *                                     answers), CLIENTS threads: req/s
 *   http_probe abuse PORT             slowloris, oversized head, ambiguous
 *                                     framing: what each server answers
 *
 * Every socket has a receive timeout, so a server that never answers shows
 * as "no answer" instead of hanging the probe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static char host[64]; /* "Host: 127.0.0.1:PORT", which ringlb requires */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/*
 * Reads what the server sends until it closes or stays silent for
 * <idle_ms>; returns the bytes read (up to <cap> kept) or -1 on a reset.
 */
static ssize_t read_answer(int fd, char *buf, size_t cap, int idle_ms)
{
    size_t len = 0;
    char tmp[16384];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (poll(&p, 1, idle_ms) <= 0)
            break;
        r = recv(fd, tmp, sizeof(tmp), 0);
        if (r < 0)
            return len ? (ssize_t)len : -1;
        if (r == 0)
            break;
        if (len < cap) {
            size_t n = (size_t)r < cap - len ? (size_t)r : cap - len;

            memcpy(buf + len, tmp, n);
            len += n;
        }
    }
    if (len < cap)
        buf[len] = '\0';
    else
        buf[cap - 1] = '\0';
    return (ssize_t)len;
}

/* Content-Length of the response head at <h> (up to <end>), 0 if none. */
static size_t head_length(const char *h, const char *end)
{
    for (const char *p = h; p < end; p++)
        if (p[0] == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0)
            return (size_t)strtoul(p + 16, NULL, 10);
    return 0;
}

/* "400", or "400, then 1 more response(s)": the first status, and whether
 * more responses followed (each skipped by its Content-Length), which means
 * the server read part of a body as a request of its own. */
static void describe(const char *buf, ssize_t n, char *out, size_t cap)
{
    const char *p = buf, *end = buf + (n > 0 ? n : 0);
    int responses = 0, status = 0;

    if (n < 0) {
        snprintf(out, cap, "reset");
        return;
    }
    while (p < end && strncmp(p, "HTTP/1.", 7) == 0) {
        const char *eoh = strstr(p, "\r\n\r\n");

        if (responses++ == 0)
            status = atoi(p + 9);
        if (!eoh)
            break;
        p = eoh + 4 + head_length(p, eoh);
    }
    if (!responses)
        snprintf(out, cap, n ? "garbage" : "no answer");
    else if (responses == 1)
        snprintf(out, cap, "%d", status);
    else
        snprintf(out, cap, "%d, then %d more response(s)", status, responses - 1);
}

static int get_status(double *secs)
{
    char req[256], buf[256];
    double t0 = now_s();
    int fd = dial(), st = 0;
    ssize_t n;

    if (fd < 0)
        return -1;
    /* A path neither serves: the 404 measures the server's own work, not a
     * page renderer's (ringlb renders /metrics afresh for each request). */
    snprintf(req, sizeof(req), "GET /nothing HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n", host);
    if (send_all(fd, req, strlen(req))) {
        n = read_answer(fd, buf, sizeof(buf), 10000);
        if (n > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
            st = atoi(buf + 9);
    }
    close(fd);
    if (secs)
        *secs = now_s() - t0;
    return st;
}

/* ---- requests per second ---- */

static atomic_ulong ok_count, connect_fail, no_answer, not_ok;
static atomic_int other_status; /* the last status but 404 */
static double deadline;

static void *rps_client(void *arg)
{
    (void)arg;
    while (now_s() < deadline) {
        int st = get_status(NULL);

        if (st == 404)
            atomic_fetch_add(&ok_count, 1);
        else if (st < 0)
            atomic_fetch_add(&connect_fail, 1);
        else if (st == 0)
            atomic_fetch_add(&no_answer, 1);
        else {
            atomic_fetch_add(&not_ok, 1);
            atomic_store(&other_status, st);
        }
    }
    return NULL;
}

/* Prints "REQ_PER_S CONNECT_FAILED NO_ANSWER NOT_404 LAST_STATUS". */
static int run_rps(int clients, double secs)
{
    pthread_t th[256];
    double t0 = now_s();

    if (clients > 256)
        clients = 256;
    deadline = t0 + secs;
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, rps_client, NULL);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    printf("%.0f %lu %lu %lu %d\n", (double)atomic_load(&ok_count) / (now_s() - t0),
           atomic_load(&connect_fail), atomic_load(&no_answer), atomic_load(&not_ok),
           atomic_load(&other_status));
    return 0;
}

/* ---- abuse ---- */

/* <n> connections that send half a head and then nothing; then a real
 * client. Prints how long the real one waited and what it got. */
static void slowloris(int n)
{
    int *fds = calloc((size_t)n, sizeof(int)), held = 0, st;
    double secs;

    for (int i = 0; i < n; i++) {
        fds[i] = dial();
        if (fds[i] >= 0 && send_all(fds[i], "GET /metrics HTTP/1.1\r\nX-a: b\r\n", 31))
            held++;
    }
    st = get_status(&secs);
    printf("| slowloris: %d connections hold half a head, then one GET | %d held; the GET got "
           "%d after %.0f ms |\n",
           n, held, st, secs * 1000);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static void one_case(const char *what, const char *req, size_t len)
{
    char buf[65536], d[96];
    int fd = dial();
    ssize_t n = -1;

    if (fd >= 0) {
        if (send_all(fd, req, len))
            n = read_answer(fd, buf, sizeof(buf), 1500);
        close(fd);
    }
    describe(buf, n, d, sizeof(d));
    printf("| %s | %s |\n", what, d);
}

static void framing(void)
{
    /* POST to a path neither serves: a well-framed request gets 404 (or
     * 415/403 from ringlb's browser checks), a badly framed one 400. A
     * second response means the server read part of the body as a second
     * request (request smuggling). */
    static const struct {
        const char *what, *head, *tail;
    } cases[] = {
        {"Content-Length twice, different", "Content-Length: 5\r\nContent-Length: 12\r\n", "hello"},
        {"Content-Length and Transfer-Encoding: chunked",
         "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n",
         "0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"Transfer-Encoding: chunked (a chunked body)", "Transfer-Encoding: chunked\r\n",
         "5\r\nhello\r\n0\r\n\r\n"},
        {"Content-Length: +5", "Content-Length: +5\r\n", "hello"},
        {"Content-Length: 5, 5", "Content-Length: 5, 5\r\n", "hello"},
        {"space before the colon", "Content-Length : 5\r\n", "hello"},
        {"obs-fold (continuation line)", "X-a: b\r\n c\r\nContent-Length: 5\r\n", "hello"},
        {"bare LF line ends", NULL, NULL},
        {"HTTP/1.1 without Host", NULL, NULL},
        {"HTTP/2.0 request line", NULL, NULL},
    };
    char req[4096];
    int n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].head)
            n = snprintf(req, sizeof(req),
                         "POST /api/nothing HTTP/1.1\r\n%s\r\nContent-Type: application/json\r\n"
                         "%s\r\n%s",
                         host, cases[i].head, cases[i].tail);
        else if (i == 7)
            n = snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\n%s\nConnection: close\n\n",
                         host);
        else if (i == 8)
            n = snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
        else
            n = snprintf(req, sizeof(req), "GET /metrics HTTP/2.0\r\n%s\r\n\r\n", host);
        one_case(cases[i].what, req, (size_t)n);
    }
}

static void oversized(void)
{
    size_t cap = 70000;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "GET /metrics HTTP/1.1\r\n%s\r\nX-Big: ", host);

    memset(req + n, 'a', 65536);
    n += 65536;
    n += snprintf(req + n, cap - (size_t)n, "\r\nConnection: close\r\n\r\n");
    one_case("a 64 KiB header line", req, (size_t)n);
    n = snprintf(req, cap, "GET /metrics HTTP/1.1\r\n%s\r\n", host);
    for (int i = 0; i < 200; i++)
        n += snprintf(req + n, cap - (size_t)n, "X-h%d: v\r\n", i);
    n += snprintf(req + n, cap - (size_t)n, "Connection: close\r\n\r\n");
    one_case("200 small header lines", req, (size_t)n);
    n = snprintf(req, cap, "GET /%04000d HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n", 0, host);
    one_case("a 4,000-byte target", req, (size_t)n);
    free(req);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: http_probe wait|rps|abuse PORT [CLIENTS SECS]\n");
        return 2;
    }
    port = atoi(argv[2]);
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%d", port);
    if (strcmp(argv[1], "wait") == 0) {
        for (int i = 0; i < 1000; i++) {
            int fd = dial();

            if (fd >= 0) {
                close(fd);
                return 0;
            }
            usleep(10000);
        }
        return 1;
    }
    if (strcmp(argv[1], "rps") == 0 && argc == 5)
        return run_rps(atoi(argv[3]), atof(argv[4]));
    if (strcmp(argv[1], "abuse") == 0) {
        printf("| request | answer |\n| --- | --- |\n");
        slowloris(64);
        slowloris(200);
        oversized();
        framing();
        return 0;
    }
    return 2;
}
