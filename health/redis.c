/*
 * redis.c - the RESP reply parser and the verdict of health = redis (see
 * redis.h).
 *
 * The parser is a byte-at-a-time state machine (enum redis_state, one
 * transition function, step()), so that nothing depends on where a recv
 * ended: a verdict is reached at one byte of the stream, the same byte
 * however the stream was cut. It keeps no copy of the replies: of each item
 * it keeps only what the verdict or a log line needs (an error's text,
 * ROLE's role, master address and link state), chosen when the item's type
 * byte arrives.
 *
 * RESP2 only (no HELLO is sent): "+simple\r\n", "-error\r\n", ":int\r\n",
 * "$len\r\n<len bytes>\r\n" ($-1 null), "*count\r\n<items>" (*-1 null).
 */
#include "redis.h"

#include <stdio.h>
#include <string.h>

enum redis_state {
    RS_TYPE = 0, /* expecting the type byte of an item */
    RS_LINE,     /* in the line after it: text or a number */
    RS_LINE_LF,  /* the line's CR came, its LF must follow */
    RS_BULK,     /* in a bulk string's data */
    RS_BULK_CR,  /* the data is complete, its CR must follow */
    RS_BULK_LF,  /* and then its LF */
};

/* Where the bytes of the item being read are kept. */
enum redis_cap { CAP_NONE = 0, CAP_TEXT, CAP_ROLE, CAP_MASTER, CAP_LINK };

/* Larger numbers are not RESP a server sends (lengths are < 512 MiB, and
 * integers fit in 64 bits); refusing them keeps the arithmetic exact. */
#define REDIS_NUM_MAX 999999999999999999ULL

/* ---- strings kept from replies ---- */

static void str_reset(struct redis_str *s)
{
    s->len = 0;
    s->cut = false;
    s->s[0] = '\0';
}

static void str_add(struct redis_str *s, unsigned char c)
{
    if (s->len == REDIS_TEXT_MAX) {
        s->cut = true;
        return;
    }
    s->s[s->len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    s->s[s->len] = '\0';
}

static bool str_is(const struct redis_str *s, const char *word)
{
    return !s->cut && strcmp(s->s, word) == 0;
}

static struct redis_str *cap_str(struct redis_parse *p)
{
    switch (p->cap) {
    case CAP_TEXT:
        return &p->text;
    case CAP_ROLE:
        return &p->role_s;
    case CAP_MASTER:
        return &p->master;
    case CAP_LINK:
        return &p->link;
    default:
        return NULL;
    }
}

/*
 * Which string the item starting now goes to. The top item of a reply
 * keeps its line (errors and +OK/+PONG); inside ROLE's array, element 0 is
 * the role, and for a replica 1 the master's host, 2 its port, 3 the link
 * state (ROLE's reply: "slave", host, port, state, offset).
 */
static enum redis_cap cap_for(const struct redis_parse *p)
{
    if (p->depth == 0)
        return p->type == '+' || p->type == '-' ? CAP_TEXT : CAP_NONE;
    if (p->cmd != REDIS_CMD_ROLE || p->depth != 1 || p->rtype != '*')
        return CAP_NONE;
    if (p->type != '$' && p->type != '+')
        return CAP_NONE;
    switch (p->elem) {
    case 0:
        return CAP_ROLE;
    case 1:
        return CAP_MASTER;
    case 3:
        return CAP_LINK;
    default:
        return CAP_NONE;
    }
}

/* ---- the state machine ---- */

void redis_parse_init(struct redis_parse *p, bool auth)
{
    memset(p, 0, sizeof(*p));
    p->state = RS_TYPE;
    p->cmd = auth ? REDIS_CMD_AUTH : REDIS_CMD_PING;
    p->verdict = REDIS_MORE;
}

static enum redis_role role_of(const struct redis_str *s)
{
    if (str_is(s, "master"))
        return REDIS_ROLE_MASTER;
    if (str_is(s, "slave"))
        return REDIS_ROLE_SLAVE;
    if (str_is(s, "sentinel"))
        return REDIS_ROLE_SENTINEL;
    return REDIS_ROLE_UNKNOWN;
}

/* The top item of the current reply is complete. */
static enum redis_verdict reply_done(struct redis_parse *p)
{
    if (p->rtype == '-')
        return REDIS_ERR_REPLY;
    switch (p->cmd) {
    case REDIS_CMD_AUTH:
        if (p->rtype != '+' || !str_is(&p->text, "OK"))
            return REDIS_UNEXPECTED;
        break;
    case REDIS_CMD_PING:
        if (p->rtype != '+' || !str_is(&p->text, "PONG"))
            return REDIS_UNEXPECTED;
        break;
    case REDIS_CMD_ROLE:
        /* A null or empty array names no role. */
        if (p->rtype != '*' || p->elem == 0)
            return REDIS_UNEXPECTED;
        p->role = role_of(&p->role_s);
        return REDIS_ROLE;
    }
    /* On to the next command's reply. */
    p->cmd++;
    p->total = 0;
    str_reset(&p->text);
    p->state = RS_TYPE;
    return REDIS_MORE;
}

/* An item is complete: count it in the arrays around it, closing those it
 * filled, which are items of their own. */
static enum redis_verdict item_done(struct redis_parse *p)
{
    for (;;) {
        if (p->depth == 0)
            return reply_done(p);
        if (p->depth == 1)
            p->elem++;
        if (--p->left[p->depth - 1] > 0)
            break;
        p->depth--;
    }
    p->state = RS_TYPE;
    return REDIS_MORE;
}

/* The CRLF of a line came: what the line said. */
static enum redis_verdict line_done(struct redis_parse *p)
{
    bool num = p->type == ':' || p->type == '$' || p->type == '*';

    if (num && !p->digits)
        return REDIS_MALFORMED;
    /* Lengths and counts are never negative but for -1 (null). */
    if ((p->type == '$' || p->type == '*') && p->neg && p->num != 1)
        return REDIS_MALFORMED;
    switch (p->type) {
    case ':':
        if (p->cmd == REDIS_CMD_ROLE && p->depth == 1 && p->elem == 2 && !p->neg && p->num <= 65535)
            p->master_port = (uint32_t)p->num;
        return item_done(p);
    case '$':
        if (p->neg)
            return item_done(p);
        if (p->num > REDIS_REPLY_MAX)
            return REDIS_TOO_BIG;
        p->bulk_left = (uint32_t)p->num;
        p->state = p->bulk_left ? RS_BULK : RS_BULK_CR;
        return REDIS_MORE;
    case '*':
        if (p->neg || p->num == 0)
            return item_done(p);
        /* Every item takes at least three bytes. */
        if (p->num > REDIS_REPLY_MAX / 3)
            return REDIS_TOO_BIG;
        if (p->depth == REDIS_DEPTH_MAX)
            return REDIS_MALFORMED;
        p->left[p->depth++] = (uint32_t)p->num;
        if (p->depth == 1)
            p->elem = 0;
        p->state = RS_TYPE;
        return REDIS_MORE;
    default: /* + and - */
        return item_done(p);
    }
}

/* The transition function: takes byte <c> in the current state. */
static enum redis_verdict step(struct redis_parse *p, unsigned char c)
{
    struct redis_str *s;

    if (++p->total > REDIS_REPLY_MAX)
        return REDIS_TOO_BIG;
    switch ((enum redis_state)p->state) {
    case RS_TYPE:
        if (c != '+' && c != '-' && c != ':' && c != '$' && c != '*')
            return REDIS_MALFORMED;
        p->type = c;
        if (p->depth == 0)
            p->rtype = c;
        p->num = 0;
        p->neg = false;
        p->digits = false;
        p->cap = (uint8_t)cap_for(p);
        if ((s = cap_str(p)))
            str_reset(s);
        p->state = RS_LINE;
        return REDIS_MORE;
    case RS_LINE:
        if (c == '\r') {
            p->state = RS_LINE_LF;
            return REDIS_MORE;
        }
        if (c == '\n')
            return REDIS_MALFORMED;
        if (p->type == '+' || p->type == '-') {
            if ((s = cap_str(p)))
                str_add(s, c);
            return REDIS_MORE;
        }
        if (c == '-' && !p->neg && !p->digits) {
            p->neg = true;
            return REDIS_MORE;
        }
        if (c < '0' || c > '9' || p->num > (REDIS_NUM_MAX - (c - '0')) / 10)
            return REDIS_MALFORMED;
        p->num = p->num * 10 + (uint64_t)(c - '0');
        p->digits = true;
        return REDIS_MORE;
    case RS_LINE_LF:
        return c == '\n' ? line_done(p) : REDIS_MALFORMED;
    case RS_BULK:
        if ((s = cap_str(p)))
            str_add(s, c);
        if (--p->bulk_left == 0)
            p->state = RS_BULK_CR;
        return REDIS_MORE;
    case RS_BULK_CR:
        if (c != '\r')
            return REDIS_MALFORMED;
        p->state = RS_BULK_LF;
        return REDIS_MORE;
    case RS_BULK_LF:
        return c == '\n' ? item_done(p) : REDIS_MALFORMED;
    }
    return REDIS_MALFORMED;
}

enum redis_verdict redis_feed(struct redis_parse *p, const void *buf, size_t len)
{
    const unsigned char *b = buf;

    for (size_t i = 0; i < len && p->verdict == REDIS_MORE; i++) {
        p->consumed++;
        p->verdict = step(p, b[i]);
    }
    return p->verdict;
}

/* ---- the verdict ---- */

const char *redis_cmd_name(enum redis_cmd cmd)
{
    return cmd == REDIS_CMD_AUTH ? "AUTH" : cmd == REDIS_CMD_PING ? "PING" : "ROLE";
}

static const char *type_name(uint8_t t)
{
    switch (t) {
    case ':':
        return "an integer";
    case '$':
        return "a bulk string";
    case '*':
        return "an array";
    default:
        return "a simple string";
    }
}

static const char *cut_mark(const struct redis_str *s)
{
    return s->cut ? "..." : "";
}

bool redis_judge(const struct redis_parse *p, enum redis_want want, char *why, size_t whylen)
{
    const char *cmd = redis_cmd_name(p->cmd);
    static const char *const want_name[] = {"any", "primary", "replica"};
    bool connected = str_is(&p->link, "connected");

    switch (p->verdict) {
    case REDIS_MORE:
        snprintf(why, whylen, "closed before the %s reply was complete", cmd);
        return false;
    case REDIS_ERR_REPLY:
        snprintf(why, whylen, "%s replied -%s%s", cmd, p->text.s, cut_mark(&p->text));
        return false;
    case REDIS_UNEXPECTED:
        if (p->rtype == '+')
            snprintf(why, whylen, "%s replied +%s%s", cmd, p->text.s, cut_mark(&p->text));
        else if (p->rtype == '*' && p->cmd == REDIS_CMD_ROLE)
            snprintf(why, whylen, "ROLE replied an empty or null array");
        else
            snprintf(why, whylen, "%s replied %s", cmd, type_name(p->rtype));
        return false;
    case REDIS_MALFORMED:
        snprintf(why, whylen, "not a RESP reply to %s (byte %llu)", cmd,
                 (unsigned long long)p->consumed);
        return false;
    case REDIS_TOO_BIG:
        snprintf(why, whylen, "%s reply longer than %d bytes", cmd, REDIS_REPLY_MAX);
        return false;
    case REDIS_ROLE:
        break;
    }
    switch (p->role) {
    case REDIS_ROLE_MASTER:
        if (want == REDIS_WANT_REPLICA) {
            snprintf(why, whylen, "role master, want replica");
            return false;
        }
        snprintf(why, whylen, "role master");
        return true;
    case REDIS_ROLE_SLAVE:
        if (want == REDIS_WANT_PRIMARY) {
            snprintf(why, whylen, "role slave, want primary");
            return false;
        }
        snprintf(why, whylen, "role slave, link to %s%s:%u %s%s%s", p->master.s,
                 cut_mark(&p->master), p->master_port, connected ? "" : "is ",
                 p->link.len ? p->link.s : "(no state)", cut_mark(&p->link));
        /* A replica cut off from its master serves stale data: fine for
         * role = any (what a PING would say), not for a replica backend. */
        return connected || want == REDIS_WANT_ANY;
    case REDIS_ROLE_SENTINEL:
        snprintf(why, whylen, "role sentinel, want %s (a sentinel holds no data)", want_name[want]);
        return false;
    case REDIS_ROLE_UNKNOWN:
        break;
    }
    snprintf(why, whylen, "unknown role '%s%s', want %s", p->role_s.s, cut_mark(&p->role_s),
             want_name[want]);
    return false;
}

/* ---- the request ---- */

/* Appends <n> bytes of <s> at <*pos> of <out> if they fit. */
static void put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
    if (*pos <= outlen && n <= outlen - *pos)
        memcpy(out + *pos, s, n);
    *pos += n;
}

/* Appends a RESP bulk string. */
static void put_bulk(char *out, size_t outlen, size_t *pos, const char *s)
{
    char hdr[32];
    size_t n = strlen(s);
    int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);

    put(out, outlen, pos, hdr, (size_t)h);
    put(out, outlen, pos, s, n);
    put(out, outlen, pos, "\r\n", 2);
}

size_t redis_request(char *out, size_t outlen, const char *user, const char *pass)
{
    static const char tail[] = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nROLE\r\n*1\r\n$4\r\nQUIT\r\n";
    size_t pos = 0;

    if (pass) {
        put(out, outlen, &pos, user ? "*3\r\n" : "*2\r\n", 4);
        put_bulk(out, outlen, &pos, "AUTH");
        if (user)
            put_bulk(out, outlen, &pos, user);
        put_bulk(out, outlen, &pos, pass);
    }
    put(out, outlen, &pos, tail, sizeof(tail) - 1);
    return pos;
}
