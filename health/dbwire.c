/*
 * dbwire.c - the output buffer, results, texts and role verdict the
 * database checks share (see dbwire.h).
 */
#include "dbwire.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* ---- output ---- */

void dbw_out_reset(struct dbw_out *o)
{
    o->len = 0;
    o->over = false;
}

void dbw_put(struct dbw_out *o, const void *p, size_t n)
{
    if (o->over || n > sizeof(o->b) - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->b + o->len, p, n);
    o->len += (uint32_t)n;
}

void dbw_put_u8(struct dbw_out *o, uint8_t v)
{
    dbw_put(o, &v, 1);
}

void dbw_put_str0(struct dbw_out *o, const char *s)
{
    dbw_put(o, s, strlen(s) + 1);
}

void dbw_put_be32(struct dbw_out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

    dbw_put(o, b, 4);
}

void dbw_put_le(struct dbw_out *o, uint32_t v, unsigned bytes)
{
    uint8_t b[4];

    for (unsigned i = 0; i < bytes && i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    dbw_put(o, b, bytes);
}

void dbw_set_be32(struct dbw_out *o, uint32_t at, uint32_t v)
{
    if (o->over || at + 4 > o->len)
        return;
    for (unsigned i = 0; i < 4; i++)
        o->b[at + i] = (uint8_t)(v >> (24 - 8 * i));
}

void dbw_set_le(struct dbw_out *o, uint32_t at, uint32_t v, unsigned bytes)
{
    if (o->over || at + bytes > o->len)
        return;
    for (unsigned i = 0; i < bytes; i++)
        o->b[at + i] = (uint8_t)(v >> (8 * i));
}

/* ---- results ---- */

void dbw_result_reset(struct dbw_result *r)
{
    memset(r, 0, sizeof(*r));
}

void dbw_fail(struct dbw_result *r, const char *fmt, ...)
{
    va_list ap;

    if (r->verdict != DBW_MORE)
        return;
    r->verdict = DBW_FAIL;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

void dbw_role(struct dbw_result *r, enum dbw_role role, const char *fmt, ...)
{
    va_list ap;

    if (r->verdict != DBW_MORE)
        return;
    r->verdict = DBW_ROLE;
    r->role = role;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

void dbw_text_set(struct dbw_text *t, const void *p, size_t n)
{
    const unsigned char *b = p;

    t->len = 0;
    t->cut = false;
    for (size_t i = 0; i < n && b[i]; i++) {
        if (t->len == DBW_TEXT_MAX) {
            t->cut = true;
            break;
        }
        t->s[t->len++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
    }
    t->s[t->len] = '\0';
}

const char *dbw_text_cut(const struct dbw_text *t)
{
    return t->cut ? "..." : "";
}

bool dbw_judge(const struct dbw_result *r, enum dbw_want want, const char *phase, char *why,
               size_t whylen)
{
    static const char *const role_name[] = {"unknown", "primary", "replica"};
    static const char *const want_name[] = {"any", "primary", "replica"};

    switch (r->verdict) {
    case DBW_MORE:
        snprintf(why, whylen, "closed during %s", phase);
        return false;
    case DBW_FAIL:
        snprintf(why, whylen, "%s", r->why);
        return false;
    case DBW_ROLE:
        break;
    }
    if (want != DBW_WANT_ANY && (int)want != (int)r->role) {
        snprintf(why, whylen, "role %s (%s), want %s", role_name[r->role], r->why, want_name[want]);
        return false;
    }
    snprintf(why, whylen, "role %s (%s)", role_name[r->role], r->why);
    return true;
}

/* ---- base64 ---- */

size_t dbw_b64_encode(const void *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int dbw_b64_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
    size_t pad = 0;
    int got;

    /* EVP_DecodeBlock skips blanks and wants a multiple of four: accept
     * only the strict form, and count the padding it decodes as zeros. */
    if (n == 0 || n % 4 || n / 4 * 3 > outlen || n > (size_t)1 << 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (c == '=' && i >= n - 2 && (i == n - 1 || in[n - 1] == '='))
            pad++;
        else if (!alnum && c != '+' && c != '/')
            return -1;
    }
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad)
        return -1;
    return got - (int)pad;
}
