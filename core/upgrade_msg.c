/*
 * upgrade_msg.c - the hot upgrade's messages and state machines (see
 * upgrade.h): pure functions, shared by both sides, the unit tests and
 * the fuzzer (test/fuzz/fuzz_upgrade.c).
 *
 * Payloads, big-endian, strings as a length byte and that many bytes:
 *   HELLO    proto u16, pid u32, version str
 *   WELCOME  proto u16, pid u32, workers u32, version str
 *   ERROR    reason str
 *   SOCKET   kind u8, index u16, group u16, flags u32, addr str (a
 *            sockaddr of its family's size), name str
 *   SERVER   health u8, admin u8, backend str, server str
 *   END, SERVING, RELEASED: empty
 * A payload is exactly its fields: a byte more or less is malformed.
 */
#include "upgrade.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

/* ---- writing ---- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool bad;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->bad || n > w->cap - w->len) {
        w->bad = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    put(w, b, 2);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

    put(w, b, 4);
}

static void put_str(struct wbuf *w, const void *s, size_t n, size_t max)
{
    if (n > max) {
        w->bad = true;
        return;
    }
    put_u8(w, (uint8_t)n);
    put(w, s, n);
}

size_t upg_encode(const struct upg_msg *m, uint8_t *out, size_t cap)
{
    struct wbuf w = {.p = out, .cap = cap};
    size_t plen;

    if (cap < UPG_HDR)
        return 0;
    w.len = UPG_HDR;
    switch (m->type) {
    case UPG_HELLO:
    case UPG_WELCOME:
        put_u16(&w, m->proto);
        put_u32(&w, m->pid);
        if (m->type == UPG_WELCOME)
            put_u32(&w, m->workers);
        put_str(&w, m->text, strnlen(m->text, sizeof(m->text)), UPG_TEXT_MAX);
        break;
    case UPG_ERROR:
        put_str(&w, m->text, strnlen(m->text, sizeof(m->text)), UPG_TEXT_MAX);
        break;
    case UPG_SOCKET:
        put_u8(&w, m->kind);
        put_u16(&w, m->index);
        put_u16(&w, m->group);
        put_u32(&w, m->flags);
        put_str(&w, &m->addr.ss, m->addr.len, sizeof(m->addr.ss));
        put_str(&w, m->name, strnlen(m->name, sizeof(m->name)), UPG_NAME_MAX);
        break;
    case UPG_SERVER:
        put_u8(&w, m->health);
        put_u8(&w, m->admin);
        put_str(&w, m->name, strnlen(m->name, sizeof(m->name)), UPG_NAME_MAX);
        put_str(&w, m->server, strnlen(m->server, sizeof(m->server)), UPG_NAME_MAX);
        break;
    case UPG_END:
    case UPG_SERVING:
    case UPG_RELEASED:
        break;
    default:
        return 0;
    }
    plen = w.len - UPG_HDR;
    if (w.bad || plen > UPG_PAYLOAD_MAX)
        return 0;
    out[0] = m->type;
    out[1] = 0;
    out[2] = (uint8_t)(plen >> 8);
    out[3] = (uint8_t)plen;
    return w.len;
}

/* ---- reading ---- */

struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static const uint8_t *take(struct rbuf *r, size_t n)
{
    const uint8_t *q;

    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    q = r->p + r->off;
    r->off += n;
    return q;
}

static uint8_t get_u8(struct rbuf *r)
{
    const uint8_t *q = take(r, 1);

    return q ? q[0] : 0;
}

static uint16_t get_u16(struct rbuf *r)
{
    const uint8_t *q = take(r, 2);

    return q ? (uint16_t)(q[0] << 8 | q[1]) : 0;
}

static uint32_t get_u32(struct rbuf *r)
{
    const uint8_t *q = take(r, 4);

    return q ? (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3] : 0;
}

/* A string of printable ASCII (no blank, no control), at most <max> bytes,
 * terminated in <out>; empty only when <empty_ok>. */
static void get_text(struct rbuf *r, char *out, size_t max, bool empty_ok, bool spaces)
{
    size_t n = get_u8(r);
    const uint8_t *q;

    out[0] = '\0';
    if (n > max || (!n && !empty_ok)) {
        r->bad = true;
        return;
    }
    q = take(r, n);
    if (!q)
        return;
    for (size_t i = 0; i < n; i++) {
        if (q[i] > 0x7e || q[i] < (spaces ? 0x20 : 0x21)) {
            r->bad = true;
            return;
        }
    }
    memcpy(out, q, n);
    out[n] = '\0';
}

/* A socket address: its family's size exactly (a unix path: at least one
 * byte, within sun_path). */
static void get_addr(struct rbuf *r, struct cfg_addr *a)
{
    size_t n = get_u8(r);
    const uint8_t *q = take(r, n);
    sa_family_t fam;

    memset(a, 0, sizeof(*a));
    if (!q || n < sizeof(sa_family_t) || n > sizeof(a->ss)) {
        r->bad = true;
        return;
    }
    memcpy(&a->ss, q, n);
    a->len = (socklen_t)n;
    fam = a->ss.ss_family;
    if ((fam == AF_INET && n == sizeof(struct sockaddr_in)) ||
        (fam == AF_INET6 && n == sizeof(struct sockaddr_in6)))
        return;
    if (fam == AF_UNIX && n > offsetof(struct sockaddr_un, sun_path) + 1 &&
        n <= sizeof(struct sockaddr_un))
        return;
    r->bad = true;
}

/* Decodes the payload of <type> (<len> bytes at <p>) into <m>. */
static int decode(uint8_t type, const uint8_t *p, size_t len, struct upg_msg *m)
{
    struct rbuf r = {.p = p, .len = len};

    memset(m, 0, sizeof(*m));
    m->type = type;
    switch (type) {
    case UPG_HELLO:
    case UPG_WELCOME:
        m->proto = get_u16(&r);
        m->pid = get_u32(&r);
        if (type == UPG_WELCOME)
            m->workers = get_u32(&r);
        get_text(&r, m->text, UPG_TEXT_MAX, false, false);
        break;
    case UPG_ERROR:
        get_text(&r, m->text, UPG_TEXT_MAX, false, true);
        break;
    case UPG_SOCKET:
        m->kind = get_u8(&r);
        m->index = get_u16(&r);
        m->group = get_u16(&r);
        m->flags = get_u32(&r);
        get_addr(&r, &m->addr);
        get_text(&r, m->name, UPG_NAME_MAX, m->kind != UPG_SOCK_FRONTEND, false);
        if (m->kind < UPG_SOCK_FRONTEND || m->kind > UPG_SOCK_CONTROL || m->group == 0 ||
            m->index >= m->group || (m->flags & ~(uint32_t)CFG_BIND_FREEBIND))
            r.bad = true;
        break;
    case UPG_SERVER:
        m->health = get_u8(&r);
        m->admin = get_u8(&r);
        get_text(&r, m->name, UPG_NAME_MAX, false, false);
        get_text(&r, m->server, UPG_NAME_MAX, false, false);
        if (m->health > UPG_HEALTH_DOWN || m->admin > 2)
            r.bad = true;
        break;
    case UPG_END:
    case UPG_SERVING:
    case UPG_RELEASED:
        break;
    default:
        return -EBADMSG;
    }
    return r.bad || r.off != r.len ? -EBADMSG : 1;
}

int upg_parse(struct upg_parser *p, const uint8_t *data, size_t len, size_t *used,
              struct upg_msg *m)
{
    size_t off = 0, need, n;
    int ret;

    *used = 0;
    for (;;) {
        need = UPG_HDR;
        if (p->have >= UPG_HDR) {
            size_t plen = (size_t)p->buf[2] << 8 | p->buf[3];

            /* Judged as soon as the header is in: nothing past it is read. */
            if (p->buf[0] < UPG_HELLO || p->buf[0] > UPG_TYPE_MAX || p->buf[1] != 0 ||
                plen > UPG_PAYLOAD_MAX) {
                p->have = 0;
                *used = off;
                return -EBADMSG;
            }
            need = UPG_HDR + plen;
        }
        if (p->have == need) {
            ret = decode(p->buf[0], p->buf + UPG_HDR, need - UPG_HDR, m);
            p->have = 0;
            *used = off;
            return ret;
        }
        if (off == len) {
            *used = off;
            return 0;
        }
        n = need - p->have < len - off ? need - p->have : len - off;
        memcpy(p->buf + p->have, data + off, n);
        p->have += n;
        off += n;
    }
}

/* ---- state machines ---- */

enum upg_old_state upg_old_next(enum upg_old_state s, enum upg_old_event e)
{
    switch (s) {
    case UPG_OLD_IDLE:
        return e == UPG_OLD_EV_CONNECT ? UPG_OLD_GREETING : UPG_OLD_FAILED;
    case UPG_OLD_GREETING:
        return e == UPG_OLD_EV_HELLO ? UPG_OLD_OFFERED : UPG_OLD_FAILED;
    case UPG_OLD_OFFERED:
        return e == UPG_OLD_EV_SERVING ? UPG_OLD_HANDING : UPG_OLD_FAILED;
    case UPG_OLD_HANDING:
        /* Past SERVING the new process serves: whatever it says now, we
         * stop accepting (main does), so nothing takes us back. */
        return e == UPG_OLD_EV_RELEASED ? UPG_OLD_HANDED_OVER : UPG_OLD_HANDING;
    case UPG_OLD_HANDED_OVER:
        return UPG_OLD_HANDED_OVER;
    case UPG_OLD_FAILED:
        break;
    }
    return UPG_OLD_FAILED;
}

enum upg_new_state upg_new_next(enum upg_new_state s, enum upg_new_event e)
{
    switch (s) {
    case UPG_NEW_GREETING:
        return e == UPG_NEW_EV_WELCOME ? UPG_NEW_RECEIVING : UPG_NEW_FAILED;
    case UPG_NEW_RECEIVING:
        if (e == UPG_NEW_EV_SOCKET || e == UPG_NEW_EV_SERVER)
            return UPG_NEW_RECEIVING;
        return e == UPG_NEW_EV_END ? UPG_NEW_STARTING : UPG_NEW_FAILED;
    case UPG_NEW_STARTING:
        return e == UPG_NEW_EV_STARTED ? UPG_NEW_COMMITTING : UPG_NEW_FAILED;
    case UPG_NEW_COMMITTING:
        return e == UPG_NEW_EV_RELEASED ? UPG_NEW_DONE : UPG_NEW_FAILED;
    case UPG_NEW_DONE:
        return UPG_NEW_DONE;
    case UPG_NEW_FAILED:
        break;
    }
    return UPG_NEW_FAILED;
}
