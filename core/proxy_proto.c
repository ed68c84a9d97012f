/*
 * proxy_proto.c - PROXY protocol v1/v2 reader and writer (see proxy_proto.h).
 *
 * v1:  "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n",
 *      at most 107 bytes, single spaces, decimal ports.
 * v2:  sig(12) = \r\n\r\n\0\r\nQUIT\n, ver_cmd(1) = 0x20 LOCAL | 0x21 PROXY,
 *      fam(1) = family << 4 | transport, len(2), then the addresses
 *      (12 bytes INET, 36 INET6, 216 UNIX) and TLVs type(1) len(2) value
 *      filling the rest, which are walked to check their framing and
 *      otherwise skipped.
 *
 * Decisions are taken in stream order and each looks only at bytes before
 * the point where it is taken, so an answer is final (see sni.c).
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define V2_HDR 16

static const char *const status_names[PP_STATUS_COUNT] = {
    [PP_NEED_MORE] = "need-more",     [PP_OK] = "ok",
    [PP_ERR_NOT_PROXY] = "not-proxy", [PP_ERR_MALFORMED] = "malformed",
    [PP_ERR_TOO_BIG] = "too-big",
};

const char *pp_status_name(enum pp_status s)
{
    return (unsigned)s < PP_STATUS_COUNT ? status_names[s] : "?";
}

/* Whether the first <len> bytes agree with the signature <sig>. */
static bool sig_prefix(const uint8_t *buf, size_t len, const void *sig, size_t siglen)
{
    return memcmp(buf, sig, len < siglen ? len : siglen) == 0;
}

static void set_in(struct sockaddr_storage *ss, const void *addr, uint16_t port_be)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4);
    sin->sin_port = port_be;
}

static void set_in6(struct sockaddr_storage *ss, const void *addr, uint16_t port_be)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
    sin6->sin6_port = port_be;
}

/* A decimal port of 1 to 5 digits, at most 65535. */
static bool v1_port(const char *s, size_t n, uint16_t *out)
{
    uint32_t v = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Splits the <n> bytes of <s> at single spaces into at most <max> words. */
static size_t v1_words(const char *s, size_t n, const char **w, size_t *wl, size_t max)
{
    size_t k = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (k == max)
            return max + 1;
        w[k] = s + start;
        wl[k++] = i - start;
        start = i + 1;
    }
    return k;
}

/* The line between "PROXY " and CRLF (<n> bytes). */
static enum pp_status v1_line(const char *s, size_t n, struct pp_header *out)
{
    const char *w[6];
    size_t wl[6], k;
    char a[2][INET6_ADDRSTRLEN];
    uint8_t bin[2][16];
    uint16_t port[2];
    int af;

    if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (n == 7 || s[7] == ' '))
        return PP_OK; /* the rest of the line is to be ignored */
    k = v1_words(s, n, w, wl, 5);
    if (k != 5)
        return PP_ERR_MALFORMED;
    if (wl[0] == 4 && memcmp(w[0], "TCP4", 4) == 0)
        af = AF_INET;
    else if (wl[0] == 4 && memcmp(w[0], "TCP6", 4) == 0)
        af = AF_INET6;
    else
        return PP_ERR_MALFORMED;
    for (int i = 0; i < 2; i++) {
        if (wl[1 + i] == 0 || wl[1 + i] >= sizeof(a[i]))
            return PP_ERR_MALFORMED;
        memcpy(a[i], w[1 + i], wl[1 + i]);
        a[i][wl[1 + i]] = '\0';
        if (inet_pton(af, a[i], bin[i]) != 1 || !v1_port(w[3 + i], wl[3 + i], &port[i]))
            return PP_ERR_MALFORMED;
    }
    for (int i = 0; i < 2; i++) {
        struct sockaddr_storage *ss = i ? &out->dst : &out->src;

        if (af == AF_INET)
            set_in(ss, bin[i], htons(port[i]));
        else
            set_in6(ss, bin[i], htons(port[i]));
    }
    out->addrlen = af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    out->has_addr = true;
    return PP_OK;
}

static enum pp_status parse_v1(const uint8_t *buf, size_t len, struct pp_header *out)
{
    size_t n = len < PP_V1_MAX ? len : PP_V1_MAX;

    if (len < sizeof(v1_sig) - 1)
        return PP_NEED_MORE;
    for (size_t i = sizeof(v1_sig) - 1; i < n; i++) {
        if (buf[i] == '\n')
            return PP_ERR_MALFORMED; /* a bare LF */
        if (buf[i] != '\r')
            continue;
        if (i + 2 > PP_V1_MAX)
            return PP_ERR_MALFORMED;
        if (i + 1 >= len)
            return PP_NEED_MORE;
        if (buf[i + 1] != '\n')
            return PP_ERR_MALFORMED;
        out->len = (uint32_t)(i + 2);
        return v1_line((const char *)buf + sizeof(v1_sig) - 1, i - (sizeof(v1_sig) - 1), out);
    }
    return len >= PP_V1_MAX ? PP_ERR_MALFORMED : PP_NEED_MORE;
}

/* Two bytes in network order, kept so (a sin_port). */
static uint16_t be16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, 2);
    return v;
}

/* The TLVs after the addresses fill the rest exactly. */
static bool v2_tlvs_ok(const uint8_t *p, size_t n)
{
    while (n) {
        size_t l;

        if (n < 3)
            return false;
        l = (size_t)p[1] << 8 | p[2];
        if (n - 3 < l)
            return false;
        p += 3 + l;
        n -= 3 + l;
    }
    return true;
}

static enum pp_status parse_v2(const uint8_t *buf, size_t len, struct pp_header *out)
{
    unsigned ver, cmd, fam, proto;
    size_t body, alen;
    const uint8_t *a;

    if (len < 13)
        return PP_NEED_MORE;
    ver = buf[12] >> 4;
    cmd = buf[12] & 0xf;
    if (ver != 2 || cmd > 1)
        return PP_ERR_MALFORMED;
    if (len < 14)
        return PP_NEED_MORE;
    fam = buf[13] >> 4;
    proto = buf[13] & 0xf;
    if (fam > 3 || proto > 2)
        return PP_ERR_MALFORMED;
    if (len < V2_HDR)
        return PP_NEED_MORE;
    body = (size_t)buf[14] << 8 | buf[15];
    if (V2_HDR + body > PP_MAX_LEN)
        return PP_ERR_TOO_BIG;
    if (len < V2_HDR + body)
        return PP_NEED_MORE;
    out->len = (uint32_t)(V2_HDR + body);
    a = buf + V2_HDR;
    alen = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (fam == 0)
        return PP_OK; /* AF_UNSPEC: the block has no defined layout; skip it */
    if (body < alen || !v2_tlvs_ok(a + alen, body - alen))
        return PP_ERR_MALFORMED;
    if (cmd == 0 || fam == 3)
        return PP_OK; /* LOCAL (a health probe) or a unix client: no IP to use */
    if (fam == 1) {
        set_in(&out->src, a, be16(a + 8));
        set_in(&out->dst, a + 4, be16(a + 10));
        out->addrlen = sizeof(struct sockaddr_in);
    } else {
        set_in6(&out->src, a, be16(a + 32));
        set_in6(&out->dst, a + 16, be16(a + 34));
        out->addrlen = sizeof(struct sockaddr_in6);
    }
    out->has_addr = true;
    return PP_OK;
}

enum pp_status pp_parse(const uint8_t *buf, size_t len, unsigned accept, struct pp_header *out)
{
    enum pp_status st = PP_NEED_MORE;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        out->status = PP_NEED_MORE;
        return PP_NEED_MORE;
    }
    if ((accept & PP_ACCEPT_V1) && buf[0] == 'P') {
        out->version = 1;
        st = sig_prefix(buf, len, v1_sig, sizeof(v1_sig) - 1) ? parse_v1(buf, len, out)
                                                              : PP_ERR_NOT_PROXY;
    } else if ((accept & PP_ACCEPT_V2) && buf[0] == v2_sig[0]) {
        out->version = 2;
        st = sig_prefix(buf, len, v2_sig, sizeof(v2_sig)) ? parse_v2(buf, len, out)
                                                          : PP_ERR_NOT_PROXY;
    } else {
        st = PP_ERR_NOT_PROXY;
    }
    if (st != PP_OK) {
        out->has_addr = false;
        out->len = 0;
        if (st == PP_ERR_NOT_PROXY)
            out->version = 0;
    }
    out->status = st;
    return st;
}

/* ---- building ---- */

/* <sa> as an IPv4 address (AF_INET, or v4-mapped AF_INET6) into <a4>/<port>. */
static bool as_v4(const struct sockaddr *sa, uint8_t a4[4], uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        memcpy(a4, &sin->sin_addr, 4);
        *port = sin->sin_port;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            return false;
        memcpy(a4, sin6->sin6_addr.s6_addr + 12, 4);
        *port = sin6->sin6_port;
        return true;
    }
    return false;
}

/* <sa> as an IPv6 address (an IPv4 one v4-mapped). */
static void as_v6(const struct sockaddr *sa, uint8_t a6[16], uint16_t *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        memcpy(a6, &sin6->sin6_addr, 16);
        *port = sin6->sin6_port;
        return;
    }
    memset(a6, 0, 10);
    a6[10] = a6[11] = 0xff;
    as_v4(sa, a6 + 12, port);
}

static bool is_ip(const struct sockaddr *sa)
{
    return sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

size_t pp_build(uint8_t *buf, int version, const struct sockaddr *src, const struct sockaddr *dst)
{
    uint8_t s[16], d[16];
    uint16_t sp = 0, dp = 0;
    int af = 0;

    if (is_ip(src) && is_ip(dst)) {
        if (as_v4(src, s, &sp) && as_v4(dst, d, &dp)) {
            af = AF_INET;
        } else {
            af = AF_INET6;
            as_v6(src, s, &sp);
            as_v6(dst, d, &dp);
        }
    }
    if (version == 1) {
        char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
        int n;

        if (!af) {
            memcpy(buf, "PROXY UNKNOWN\r\n", 15);
            return 15;
        }
        inet_ntop(af, s, sa, sizeof(sa));
        inet_ntop(af, d, da, sizeof(da));
        n = snprintf((char *)buf, PP_BUILD_MAX + 1, "PROXY %s %s %s %u %u\r\n",
                     af == AF_INET ? "TCP4" : "TCP6", sa, da, ntohs(sp), ntohs(dp));
        return n > 0 && n <= PP_BUILD_MAX ? (size_t)n : 0;
    }
    memcpy(buf, v2_sig, sizeof(v2_sig));
    buf[12] = 0x21; /* version 2, PROXY */
    if (!af) {
        buf[13] = 0x00;
        buf[14] = buf[15] = 0;
        return V2_HDR;
    }
    if (af == AF_INET) {
        buf[13] = 0x11; /* AF_INET, STREAM */
        buf[14] = 0;
        buf[15] = 12;
        memcpy(buf + 16, s, 4);
        memcpy(buf + 20, d, 4);
        memcpy(buf + 24, &sp, 2);
        memcpy(buf + 26, &dp, 2);
        return V2_HDR + 12;
    }
    buf[13] = 0x21; /* AF_INET6, STREAM */
    buf[14] = 0;
    buf[15] = 36;
    memcpy(buf + 16, s, 16);
    memcpy(buf + 32, d, 16);
    memcpy(buf + 48, &sp, 2);
    memcpy(buf + 50, &dp, 2);
    return V2_HDR + 36;
}
