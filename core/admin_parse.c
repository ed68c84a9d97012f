/*
 * admin_parse.c - the admin server's HTTP/1.x request parser (see admin.h).
 *
 * Pure functions over a byte buffer, apart from the server so that the unit
 * tests and the fuzzer (test/fuzz/fuzz_admin.c) reach them without a thread,
 * a socket or the backend table. The server calls admin_parse_request on
 * everything read so far after each read, so the parser must give the same
 * answer for a request however it was split.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../config/values.h"

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* A byte that may appear in a request line or a header value. */
static bool is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Finds the end of the line starting at <p> (before <end>): the '\n'. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* The request line "METHOD SP TARGET SP HTTP/1.x" of <n> bytes (no CRLF). */
static int parse_request_line(const char *s, size_t n, struct admin_req *r)
{
    const char *sp1 = memchr(s, ' ', n), *sp2, *q;
    size_t mlen, tlen;

    if (!sp1)
        return -400;
    mlen = (size_t)(sp1 - s);
    if (mlen == 0 || mlen >= sizeof(r->method))
        return -400;
    for (size_t i = 0; i < mlen; i++) {
        if (s[i] < 'A' || s[i] > 'Z')
            return -400;
    }
    sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
    if (!sp2)
        return -400;
    tlen = (size_t)(sp2 - sp1 - 1);
    if (tlen == 0 || sp1[1] != '/')
        return -400;
    if (tlen >= sizeof(r->path))
        return -414;
    for (size_t i = 0; i < tlen; i++) {
        if ((unsigned char)sp1[1 + i] <= 0x20 || sp1[1 + i] == 0x7f)
            return -400;
    }
    /* "HTTP/D.D" exactly; only 1.0 and 1.1 are ours to speak. */
    if (n - (size_t)(sp2 + 1 - s) != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' ||
        sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
        return -400;
    if (sp2[6] != '1' || (sp2[8] != '0' && sp2[8] != '1'))
        return -505;
    r->minor = sp2[8] - '0';
    memcpy(r->method, s, mlen);
    r->method[mlen] = '\0';
    q = memchr(sp1 + 1, '?', tlen);
    if (q) {
        memcpy(r->path, sp1 + 1, (size_t)(q - sp1 - 1));
        r->path[q - sp1 - 1] = '\0';
        memcpy(r->query, q + 1, (size_t)(sp2 - q - 1));
        r->query[sp2 - q - 1] = '\0';
    } else {
        memcpy(r->path, sp1 + 1, tlen);
        r->path[tlen] = '\0';
        r->query[0] = '\0';
    }
    return 0;
}

/* Whether the header name <s> (<n> bytes) is <name>, in any case. */
static bool name_is(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

/*
 * Keeps the value <v>..<end> of a header the server acts on in <*slot>.
 * Such a header may appear once: two Hosts (RFC 9112 3.2) or two
 * Content-Lengths (6.3), even equal ones, mean that something between the
 * client and us may have read the request otherwise, which is how request
 * smuggling starts; two Origins or Content-Types would make the checks of
 * admin_check_request depend on which one they read.
 */
static int header_once(struct admin_hdr *slot, const char *v, const char *end)
{
    if (slot->p)
        return -400;
    slot->p = v;
    slot->len = (size_t)(end - v);
    return 0;
}

/* One "Name: value" header line of <n> bytes (no CRLF). */
static int parse_header(const char *s, size_t n, struct admin_req *r)
{
    const char *colon = memchr(s, ':', n);
    const char *v, *end = s + n;
    size_t nlen;
    uint64_t cl = 0;

    if (!colon || colon == s)
        return -400;
    nlen = (size_t)(colon - s);
    for (const char *c = s; c < colon; c++) {
        if (!is_tchar(*c))
            return -400;
    }
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (name_is(s, nlen, "Transfer-Encoding")) {
        /* Framing by both is a smuggling attempt (RFC 9112 6.3); alone it
         * is a coding this server does not speak. Whichever comes first
         * decides, so the answer never waits for the rest of the head. */
        return r->length.p ? -400 : -501;
    }
    if (name_is(s, nlen, "Content-Length")) {
        if (header_once(&r->length, v, end) < 0 || v == end)
            return -400;
        /* 1*DIGIT and nothing else: no sign, no list ("5, 5"), no spaces. */
        for (const char *c = v; c < end; c++) {
            if (*c < '0' || *c > '9')
                return -400;
            cl = cl * 10 + (uint64_t)(*c - '0');
            if (cl > ADMIN_BODY_MAX)
                return -413;
        }
        r->body_len = (size_t)cl;
        return 0;
    }
    if (name_is(s, nlen, "Host"))
        return header_once(&r->host, v, end);
    if (name_is(s, nlen, "Origin"))
        return header_once(&r->origin, v, end);
    if (name_is(s, nlen, "Authorization"))
        return header_once(&r->auth, v, end);
    if (name_is(s, nlen, "Content-Type"))
        return header_once(&r->ctype, v, end);
    return 0;
}

int admin_parse_request(const char *buf, size_t len, struct admin_req *r)
{
    const char *p = buf, *end = buf + len, *nl;
    unsigned nheaders = 0;
    int ret;

    memset(r, 0, sizeof(*r));
    /* Lines are checked as they complete, so garbage is answered at once
     * rather than when the head limit or the deadline is reached. */
    for (bool first = true;; first = false) {
        size_t n;

        nl = line_end(p, end);
        if (!nl) {
            for (const char *c = p; c < end; c++) {
                if (!is_text((unsigned char)*c) && !(*c == '\r' && c + 1 == end))
                    return -400;
            }
            if (first && end - p >= 5 && memcmp(p, "HTTP/", 5) != 0) {
                const char *sp = memchr(p, ' ', (size_t)(end - p));

                /* A method longer than any we know is not worth waiting for. */
                if ((sp ? sp - p : end - p) >= (ptrdiff_t)sizeof(r->method))
                    return -400;
            }
            return len >= ADMIN_HEAD_MAX ? -431 : 0;
        }
        n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if ((size_t)(nl + 1 - buf) > ADMIN_HEAD_MAX)
            return -431;
        for (size_t i = 0; i < n; i++) {
            if (!is_text((unsigned char)p[i]))
                return -400;
        }
        if (first) {
            ret = parse_request_line(p, n, r);
        } else if (n == 0) {
            r->head_len = (size_t)(nl + 1 - buf);
            return 1;
        } else if (++nheaders > ADMIN_MAX_HEADERS) {
            ret = -431;
        } else if (*p == ' ' || *p == '\t') {
            ret = -400; /* obsolete line folding (RFC 9112 5.2) */
        } else {
            ret = parse_header(p, n, r);
        }
        if (ret < 0)
            return ret;
        p = nl + 1;
    }
}

int admin_query_uint(const char *q, const char *key, uint32_t max, uint32_t *out)
{
    size_t klen = strlen(key);

    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);

        if (n > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
            /* The value is a slice of the query: the shared parser wants a
             * string of its own. Longer than any uint32_t is not a value. */
            char num[16];
            size_t len = n - klen - 1;
            uint32_t v;

            if (len == 0 || len >= sizeof(num))
                return -EINVAL;
            memcpy(num, q + klen + 1, len);
            num[len] = '\0';
            if (cfg_parse_uint(num, &v) < 0 || v > max)
                return -EINVAL;
            *out = v;
            return 0;
        }
        q += n + (amp ? 1 : 0);
    }
    return -EINVAL;
}

/* ---- who may ask what (admin_check_request) ---- */

/* Whether the IPv4 address <a4> is the one of <local> (IPv4, or IPv4-mapped
 * on an IPv6 socket). */
static bool v4_is_local(const struct in_addr *a4, const struct sockaddr *local)
{
    if (local->sa_family == AF_INET)
        return ((const struct sockaddr_in *)local)->sin_addr.s_addr == a4->s_addr;
    if (local->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)local)->sin6_addr;

        return IN6_IS_ADDR_V4MAPPED(a) && memcmp(&a->s6_addr[12], &a4->s_addr, 4) == 0;
    }
    return false;
}

bool admin_authority_ok(const char *s, size_t n, const struct sockaddr *local)
{
    const char *end = s + n, *hs = s, *he, *port = NULL;
    char host[INET6_ADDRSTRLEN];
    unsigned want, got = 0;
    bool v6 = n > 0 && s[0] == '[';
    size_t hl;

    if (local->sa_family == AF_INET)
        want = ntohs(((const struct sockaddr_in *)local)->sin_port);
    else if (local->sa_family == AF_INET6)
        want = ntohs(((const struct sockaddr_in6 *)local)->sin6_port);
    else
        return false;
    if (v6) {
        he = memchr(s, ']', n);
        if (!he)
            return false;
        hs = s + 1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return false;
            port = he + 2;
        }
    } else {
        he = memchr(s, ':', n);
        if (he)
            port = he + 1;
        else
            he = end;
    }
    /* No port means 80, as in a URL (RFC 9110 4.2.1); a port is written as
     * browsers write it, without leading zeros. */
    if (port) {
        if (port == end || end - port > 5 || (port[0] == '0' && end - port > 1))
            return false;
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9')
                return false;
            got = got * 10 + (unsigned)(*c - '0');
        }
    } else {
        got = 80;
    }
    if (got != want)
        return false;
    hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(host))
        return false;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (v6) {
        struct in6_addr a6;

        if (inet_pton(AF_INET6, host, &a6) != 1)
            return false;
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return cfg_sockaddr_loopback(local);
        return local->sa_family == AF_INET6 &&
               memcmp(&((const struct sockaddr_in6 *)local)->sin6_addr, &a6, sizeof(a6)) == 0;
    } else {
        struct in_addr a4;

        /* A name other than "localhost" is what DNS rebinding gives: refused. */
        if (strcasecmp(host, "localhost") == 0)
            return cfg_sockaddr_loopback(local);
        if (inet_pton(AF_INET, host, &a4) != 1)
            return false;
        if (a4.s_addr == htonl(INADDR_LOOPBACK) && cfg_sockaddr_loopback(local))
            return true;
        return v4_is_local(&a4, local);
    }
}

/* Whether the Origin <h> is this server: "http://" and an authority that
 * admin_authority_ok takes. "null" (a sandboxed or privacy-stripped origin)
 * and anything on a unix socket (<local> NULL: no page is served from one)
 * are not. */
static bool origin_ok(const struct admin_hdr *h, const struct sockaddr *local)
{
    return local && h->len > 7 && strncasecmp(h->p, "http://", 7) == 0 &&
           admin_authority_ok(h->p + 7, h->len - 7, local);
}

/* Whether the media type of Content-Type <h> is <want>; parameters such as
 * "; charset=utf-8" are allowed. */
static bool media_type_is(const struct admin_hdr *h, const char *want)
{
    size_t n = 0, wl = strlen(want);

    while (n < h->len && h->p[n] != ';' && h->p[n] != ' ' && h->p[n] != '\t')
        n++;
    return n == wl && strncasecmp(h->p, want, wl) == 0;
}

/*
 * What proves that a write was not sent by a web page behind the
 * operator's back. A page may POST cross-site without asking only with a
 * "simple" Content-Type (text/plain, a form); application/json makes the
 * browser ask first (a CORS preflight, OPTIONS), and this server never says
 * yes. When admin_token_file comes, a valid "Authorization: Bearer" is the
 * proof instead (a browser never adds one by itself): this is the one
 * place to change.
 */
static int write_proof(const struct admin_req *r)
{
    if (!r->ctype.p || !media_type_is(&r->ctype, "application/json"))
        return -415;
    return 0;
}

/*
 * Whether <h> is "Bearer <token>" with the token of <acc>. The scheme is
 * case-insensitive (RFC 9110 11.1); the token is compared in time that
 * does not depend on where it differs, so that timing cannot reveal it a
 * byte at a time (only its length, which is not secret enough to matter).
 */
static bool bearer_ok(const struct admin_hdr *h, const struct admin_access *acc)
{
    const char *t;
    size_t n;
    unsigned char diff = 0;

    if (!h->p || h->len < 7 || strncasecmp(h->p, "Bearer ", 7) != 0)
        return false;
    t = h->p + 7;
    n = h->len - 7;
    while (n && *t == ' ') {
        t++;
        n--;
    }
    if (n != acc->len)
        return false;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(t[i] ^ acc->token[i]);
    return diff == 0;
}

bool admin_method_safe(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

int admin_check_request(const struct admin_req *r, const struct sockaddr *local,
                        const struct admin_access *acc)
{
    bool write = !admin_method_safe(r->method);

    if (!r->host.p) {
        /* HTTP/1.1 requires Host (RFC 9112 3.2); a browser always sends it,
         * so an HTTP/1.0 request without one is no rebinding attempt. */
        if (r->minor >= 1)
            return -400;
    } else if (local && !admin_authority_ok(r->host.p, r->host.len, local)) {
        return -421;
    }
    if (r->origin.p && !origin_ok(&r->origin, local))
        return -403;
    if (acc && acc->len) {
        if ((write || acc->read) && !bearer_ok(&r->auth, acc))
            return -401;
        return 0;
    }
    return write ? write_proof(r) : 0;
}
