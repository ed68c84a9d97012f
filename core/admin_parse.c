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

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
            uint64_t v = 0;
            size_t i = klen + 1;

            if (i == n)
                return -EINVAL;
            for (; i < n; i++) {
                if (q[i] < '0' || q[i] > '9')
                    return -EINVAL;
                v = v * 10 + (uint64_t)(q[i] - '0');
                if (v > max)
                    return -EINVAL;
            }
            *out = (uint32_t)v;
            return 0;
        }
        q += n + (amp ? 1 : 0);
    }
    return -EINVAL;
}
