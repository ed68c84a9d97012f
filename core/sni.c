/*
 * sni.c - the ClientHello reader and the sni = routing rules (see sni.h).
 *
 * Wire format (RFC 8446 section 5.1 and 4.1.2, RFC 6066 section 3):
 *
 *   record:     type(1)=22 version(2)=3.x length(2)<=16384 payload
 *   handshake:  type(1)=1 length(3) body, split over as many records as
 *               the client likes (never interleaved with other records)
 *   body:       version(2) random(32) session_id<0..32>
 *               cipher_suites<2..2^16-2> compression<1..2^8-1>
 *               [extensions<0..2^16-1>]
 *   extension:  type(2) data<0..2^16-1>; server_name is type 0:
 *               list<1..2^16-1> of name_type(1)=0 host_name<1..2^16-1>
 *
 * Every decision is taken as early as the bytes allow and looks only at
 * bytes before the point where it is taken, which is what makes an answer
 * final: a longer prefix walks the same bytes to the same decision.
 */
#include "sni.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "compiler.h"

#define TLS_REC_HANDSHAKE   22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_REC_HDR         5
#define TLS_REC_MAX         16384
#define TLS_HS_HDR          4

static const char *const status_names[SNI_STATUS_COUNT] = {
    [SNI_NEED_MORE] = "need-more",
    [SNI_FOUND] = "found",
    [SNI_NO_NAME] = "no-name",
    [SNI_ERR_NOT_TLS] = "not-tls",
    [SNI_ERR_NOT_HELLO] = "not-client-hello",
    [SNI_ERR_MALFORMED] = "malformed",
    [SNI_ERR_TOO_BIG] = "too-big",
};

const char *sni_status_name(enum sni_status s)
{
    return (unsigned)s < SNI_STATUS_COUNT ? status_names[s] : "?";
}

/* A bounds-checked reader over the gathered hello body. */
struct rd {
    const uint8_t *p, *end;
};

static bool rd_u8(struct rd *r, size_t *v)
{
    if (r->end - r->p < 1)
        return false;
    *v = r->p[0];
    r->p += 1;
    return true;
}

static bool rd_u16(struct rd *r, size_t *v)
{
    if (r->end - r->p < 2)
        return false;
    *v = (size_t)r->p[0] << 8 | r->p[1];
    r->p += 2;
    return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    r->p += n;
    return true;
}

/* A vector with a 1- or 2-byte length: its contents become <*sub>. */
static bool rd_vec(struct rd *r, int lenbytes, struct rd *sub)
{
    size_t n = 0; /* set by rd_u8/rd_u16 when they succeed; gcc -O1 cannot tell */

    if (!(lenbytes == 1 ? rd_u8(r, &n) : rd_u16(r, &n)))
        return false;
    sub->p = r->p;
    if (!rd_skip(r, n))
        return false;
    sub->end = r->p;
    return true;
}

/* The server_name extension's data: the first host_name, validated and
 * lower-cased into <out>. Returns false when the extension is malformed. */
static bool read_server_name(struct rd ext, struct sni_result *out)
{
    struct rd list, name;
    size_t type;

    if (!rd_vec(&ext, 2, &list) || ext.p != ext.end || list.p == list.end)
        return false;
    while (list.p < list.end) {
        if (!rd_u8(&list, &type) || !rd_vec(&list, 2, &name))
            return false;
        if (type != 0 || out->status == SNI_FOUND)
            continue;
        size_t n = (size_t)(name.end - name.p);

        if (n == 0 || n > SNI_NAME_MAX)
            return false;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = name.p[i];

            if (!sni_name_char(c))
                return false;
            out->name[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        out->name[n] = '\0';
        out->len = (uint16_t)n;
        out->status = SNI_FOUND;
    }
    return true;
}

static enum sni_status read_hello(const uint8_t *body, size_t len, struct sni_result *out)
{
    struct rd r = {body, body + len}, v, exts, data;
    size_t type, seen_sni = 0;

    /* legacy_version, random, session_id, cipher_suites, compression */
    if (!rd_skip(&r, 2 + 32) || !rd_vec(&r, 1, &v) || v.end - v.p > 32 || !rd_vec(&r, 2, &v) ||
        v.p == v.end || (v.end - v.p) % 2 || !rd_vec(&r, 1, &v) || v.p == v.end)
        return SNI_ERR_MALFORMED;
    if (r.p == r.end)
        return SNI_NO_NAME; /* no extensions at all (TLS 1.0 era) */
    if (!rd_vec(&r, 2, &exts) || r.p != r.end)
        return SNI_ERR_MALFORMED;
    out->status = SNI_NO_NAME;
    while (exts.p < exts.end) {
        if (!rd_u16(&exts, &type) || !rd_vec(&exts, 2, &data))
            return SNI_ERR_MALFORMED;
        if (type != TLS_EXT_SERVER_NAME)
            continue;
        /* RFC 8446 4.2: no extension type twice in one message. */
        if (seen_sni++ || !read_server_name(data, out))
            return SNI_ERR_MALFORMED;
    }
    return out->status;
}

/* sni_parse() over at most SNI_MAX_INPUT bytes. */
static enum sni_status parse(const uint8_t *buf, size_t len, struct sni_result *out)
{
    /* The handshake bytes, gathered from as many records as carry them. */
    uint8_t hs[SNI_MAX_HELLO];
    size_t have = 0, need = TLS_HS_HDR, off = 0;

    out->want = (uint32_t)len + 1;
    while (have < need) {
        size_t rlen, take;

        if (off >= len)
            return SNI_NEED_MORE;
        /* Only the first record decides that this is not TLS at all; a
         * later one of another kind breaks a hello that started well. */
        if (buf[off] != TLS_REC_HANDSHAKE)
            return off == 0 ? SNI_ERR_NOT_TLS : SNI_ERR_MALFORMED;
        if (off + 1 >= len)
            return SNI_NEED_MORE;
        if (buf[off + 1] != 3)
            return off == 0 ? SNI_ERR_NOT_TLS : SNI_ERR_MALFORMED;
        if (len - off < TLS_REC_HDR)
            return SNI_NEED_MORE;
        rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
        if (rlen == 0 || rlen > TLS_REC_MAX)
            return SNI_ERR_MALFORMED;
        off += TLS_REC_HDR;
        while (rlen && have < need) {
            if (off >= len) {
                /* Nothing can be decided before the hello is complete, or
                 * before the next record's first byte; the type of the
                 * message is decided at its first byte. */
                size_t more = need - have < rlen + 1 ? need - have : rlen + 1;

                out->want = (uint32_t)(len + (have ? more : 1));
                return SNI_NEED_MORE;
            }
            take = rlen;
            if (take > need - have)
                take = need - have;
            if (take > len - off)
                take = len - off;
            memcpy(hs + have, buf + off, take);
            if (have == 0 && hs[0] != TLS_HS_CLIENT_HELLO)
                return SNI_ERR_NOT_HELLO;
            have += take;
            off += take;
            rlen -= take;
            if (have == TLS_HS_HDR && need == TLS_HS_HDR) {
                need += (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
                if (need > SNI_MAX_HELLO)
                    return SNI_ERR_TOO_BIG;
            }
        }
    }
    out->consumed = (uint32_t)off;
    return read_hello(hs + TLS_HS_HDR, need - TLS_HS_HDR, out);
}

enum sni_status sni_parse(const uint8_t *buf, size_t len, struct sni_result *out)
{
    size_t n = len < SNI_MAX_INPUT ? len : SNI_MAX_INPUT;
    enum sni_status st;

    out->status = SNI_NEED_MORE;
    out->len = 0;
    out->name[0] = '\0';
    out->consumed = 0;
    out->want = 0;
    st = parse(buf, n, out);
    if (st == SNI_NEED_MORE && len >= SNI_MAX_INPUT)
        st = SNI_ERR_TOO_BIG;
    if (st != SNI_NEED_MORE)
        out->want = 0;
    else if (out->want > SNI_MAX_INPUT)
        out->want = SNI_MAX_INPUT; /* where it becomes SNI_ERR_TOO_BIG */
    if (st != SNI_FOUND) {
        out->len = 0;
        out->name[0] = '\0';
    }
    if (st == SNI_NEED_MORE || st == SNI_ERR_TOO_BIG)
        out->consumed = 0;
    out->status = st;
    return st;
}

/* ---- routing rules ---- */

struct sni_rule {
    char *name; /* exact: the name; wildcard: the suffix with its dot (".example.com") */
    uint16_t len;
    uint32_t target;
};

struct sni_routes {
    _Atomic uint32_t refs;
    struct sni_rule *exact, *wild;
    size_t nexact, nwild, cap_exact, cap_wild;
};

struct sni_routes *sni_routes_new(void)
{
    struct sni_routes *r = lb_calloc(1, sizeof(*r));

    if (r)
        atomic_init(&r->refs, 1);
    return r;
}

/* Whether <s> (<n> bytes) is a host name: labels of name characters
 * separated by single dots. */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > SNI_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!sni_name_char((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

int sni_routes_add(struct sni_routes *r, const char *pattern, uint32_t target)
{
    bool wild = pattern[0] == '*';
    const char *s = wild ? pattern + 1 : pattern; /* a wildcard keeps its dot */
    size_t n = strlen(s);
    struct sni_rule **v = wild ? &r->wild : &r->exact;
    size_t *nv = wild ? &r->nwild : &r->nexact, *cap = wild ? &r->cap_wild : &r->cap_exact;
    char *copy;

    if ((wild && (s[0] != '.' || !name_ok(s + 1, n - 1))) || (!wild && !name_ok(s, n)))
        return -EINVAL;
    if (*nv == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct sni_rule *nvv = lb_realloc(*v, nc * sizeof(**v));

        if (!nvv)
            return -ENOMEM;
        *v = nvv;
        *cap = nc;
    }
    copy = lb_malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    (*v)[*nv] = (struct sni_rule){.name = copy, .len = (uint16_t)n, .target = target};
    (*nv)++;
    return 0;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c ? c : (alen > blen) - (alen < blen);
}

static int rule_cmp(const void *a, const void *b)
{
    const struct sni_rule *x = a, *y = b;

    return cmp_bytes(x->name, x->len, y->name, y->len);
}

int sni_routes_build(struct sni_routes *r)
{
    if (r->nexact)
        qsort(r->exact, r->nexact, sizeof(*r->exact), rule_cmp);
    if (r->nwild)
        qsort(r->wild, r->nwild, sizeof(*r->wild), rule_cmp);
    return 0;
}

static const struct sni_rule *rule_find(const struct sni_rule *v, size_t n, const char *name,
                                        size_t len)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_bytes(name, len, v[mid].name, v[mid].len);

        if (c == 0)
            return &v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool sni_routes_find(const struct sni_routes *r, const char *name, size_t len, uint32_t *target)
{
    const struct sni_rule *hit;

    if (!r)
        return false;
    hit = rule_find(r->exact, r->nexact, name, len);
    /* Wildcards from the longest suffix: "*.b.example.com" before
     * "*.example.com" for a.b.example.com. A suffix needs a label before
     * its dot, so "*.example.com" does not match "example.com". */
    for (size_t i = 1; !hit && r->nwild && i < len; i++) {
        if (name[i] == '.')
            hit = rule_find(r->wild, r->nwild, name + i, len - i);
    }
    if (!hit)
        return false;
    *target = hit->target;
    return true;
}

struct sni_routes *sni_routes_ref(struct sni_routes *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void sni_routes_unref(struct sni_routes *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < r->nexact; i++)
        lb_free(r->exact[i].name);
    for (size_t i = 0; i < r->nwild; i++)
        lb_free(r->wild[i].name);
    lb_free(r->exact);
    lb_free(r->wild);
    lb_free(r);
}
