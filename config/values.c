/*
 * values.c - the value syntaxes of values.h, shared by lb.ini
 * (config/config.c), ringbench's command line and the admin API.
 *
 * Numbers are parsed by hand rather than with strtoul()/strtod(): those
 * skip leading blanks, take signs, hex and locale-dependent forms, and
 * round in binary, and every caller here wants exactly what it documents.
 */
#include "values.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "../core/alloc.h"

#define CFG_HOST_MAX 253

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- numbers ---- */

int cfg_parse_uint(const char *s, uint32_t *out)
{
    uint64_t v = 0;

    if (!is_digit(*s))
        return -EINVAL;
    for (; is_digit(*s); s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -ERANGE;
    }
    if (*s)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * The number at the start of <s> as <*m> times ten to the power <*exp10>,
 * keeping in <*m> as many leading digits as 64 bits hold (19 or 20);
 * <*lost> tells whether a non-zero digit did not fit. Returns where the number ends, or NULL when
 * <s> does not start with one.
 */
static const char *scan_decimal(const char *s, unsigned flags, uint64_t *m, int *exp10, bool *lost)
{
    bool any = false, point = false;

    *m = 0;
    *exp10 = 0;
    *lost = false;
    for (;; s++) {
        if (*s == '.' && !point && (flags & CFG_NUM_FRACTION)) {
            point = true;
            continue;
        }
        if (!is_digit(*s))
            break;
        any = true;
        if (*m < UINT64_MAX / 10 || (*m == UINT64_MAX / 10 && *s - '0' <= (int)(UINT64_MAX % 10))) {
            *m = *m * 10 + (uint64_t)(*s - '0');
            *exp10 -= point;
        } else {
            /* Past 64 bits: an integer digit still scales the value. */
            *lost |= *s != '0';
            *exp10 += !point;
        }
    }
    if (!any)
        return NULL;
    if ((flags & CFG_NUM_FRACTION) && (*s == 'e' || *s == 'E')) {
        const char *e = s + 1;
        int sign = 1, v = 0;

        if (*e == '+' || *e == '-')
            sign = *e++ == '-' ? -1 : 1;
        if (is_digit(*e)) {
            /* Beyond 9999 only zero or an overflow can come out. */
            for (; is_digit(*e); e++)
                v = v < 10000 ? v * 10 + (*e - '0') : v;
            *exp10 += sign * v;
            s = e;
        }
    }
    return s;
}

int cfg_parse_scaled(const char *s, const struct cfg_unit *units, unsigned flags, uint64_t *out)
{
    const struct cfg_unit *u;
    unsigned __int128 v;
    unsigned last = 0;
    uint64_t m;
    int exp10;
    bool inexact;

    if (!s)
        return -EINVAL;
    s = scan_decimal(s, flags, &m, &exp10, &inexact);
    if (!s)
        return -EINVAL;
    for (u = units; u->name; u++) {
        if (strcmp(s, u->name) == 0)
            break;
    }
    if (!u->name)
        return -EINVAL;
    /* A digit lost to the left of the units digit: m was full, so the
     * number is past 64 bits whatever its last digits. */
    if (inexact && exp10 > 0 && m)
        return -ERANGE;
    /* m and the scale are each below 2^64: their product fits. */
    v = (unsigned __int128)m * u->scale;
    for (; exp10 > 0 && v; exp10--) {
        v *= 10;
        if (v > UINT64_MAX)
            return -ERANGE;
    }
    /* The last digit dropped is the most significant one: it rounds. */
    for (; exp10 < 0; exp10++) {
        if (!v) {
            last = 0;
            break;
        }
        last = (unsigned)(v % 10);
        inexact |= last != 0;
        v /= 10;
    }
    if (v > UINT64_MAX)
        return -ERANGE;
    if (inexact && !(flags & CFG_NUM_ROUND))
        return -EINVAL;
    if (last >= 5 && ++v > UINT64_MAX)
        return -ERANGE;
    *out = (uint64_t)v;
    return 0;
}

int cfg_parse_duration(const char *s, uint32_t *ms)
{
    static const struct cfg_unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0}};
    uint64_t v;
    int r = cfg_parse_scaled(s, units, 0, &v);

    if (r == -EINVAL && s && is_digit(*s) && strspn(s, "0") == strlen(s)) {
        /* Only zero may go without a unit. */
        *ms = 0;
        return 0;
    }
    if (r < 0)
        return r;
    if (v > UINT32_MAX)
        return -ERANGE;
    *ms = (uint32_t)v;
    return 0;
}

/* ---- addresses ---- */

static int parse_port(const char *s, uint16_t *port, const char **why)
{
    uint32_t v;
    int r;

    if (!*s) {
        *why = "missing port";
        return -EINVAL;
    }
    r = cfg_parse_uint(s, &v);
    if (r == -EINVAL) {
        *why = "bad port (expected a number 1-65535)";
        return -EINVAL;
    }
    if (r < 0 || v == 0 || v > 65535) {
        *why = "port out of range (1-65535)";
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static int parse_unix(const char *path, unsigned flags, struct cfg_addr *out, const char **why)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);

    if (!(flags & CFG_ADDR_UNIX)) {
        *why = "unix sockets are not allowed here";
        return -EINVAL;
    }
    if (n == 0) {
        *why = "missing unix socket path";
        return -EINVAL;
    }
    if (n >= sizeof(un->sun_path)) {
        *why = "unix socket path too long";
        return -EINVAL;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

void cfg_addr_in4(struct cfg_addr *out, const struct in_addr *a, uint16_t port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;

    in->sin_family = AF_INET;
    in->sin_addr = *a;
    in->sin_port = htons(port);
    out->len = sizeof(*in);
}

void cfg_addr_in6(struct cfg_addr *out, const struct in6_addr *a, uint16_t port)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

    in6->sin6_family = AF_INET6;
    in6->sin6_addr = *a;
    in6->sin6_port = htons(port);
    out->len = sizeof(*in6);
}

static bool host_syntax_ok(const char *h)
{
    bool only_num = true;

    for (const char *c = h; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || is_digit(*c) || *c == '-' ||
              *c == '.' || *c == '_'))
            return false;
        if (!is_digit(*c) && *c != '.')
            only_num = false;
    }
    /* "1.2.3" is not a host name; getaddrinfo would take it as inet_aton does. */
    return !only_num;
}

static int resolve(const char *host, uint16_t port, struct cfg_addr *out, const char **why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int r = -EINVAL;

    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
        *why = "host name does not resolve";
        return -EINVAL;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
            cfg_addr_in4(out, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, port);
            r = 0;
            break;
        }
        if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            cfg_addr_in6(out, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, port);
            r = 0;
            break;
        }
    }
    freeaddrinfo(res);
    if (r < 0)
        *why = "host name has no IPv4 or IPv6 address";
    return r;
}

int cfg_parse_cidr(const char *s, struct cfg_cidr *out, const char **why)
{
    const char *dummy, *slash = strchr(s, '/');
    char h[INET6_ADDRSTRLEN];
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    struct cfg_cidr c = {0};
    uint32_t len, max;

    if (!why)
        why = &dummy;
    if (hlen == 0 || hlen >= sizeof(h)) {
        *why = "bad address";
        return -EINVAL;
    }
    memcpy(h, s, hlen);
    h[hlen] = '\0';
    if (inet_pton(AF_INET, h, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, h, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        *why = "bad address (expected an IPv4 or IPv6 address, optionally /LEN)";
        return -EINVAL;
    }
    len = max;
    if (slash && (cfg_parse_uint(slash + 1, &len) < 0 || len > max)) {
        *why = c.family == AF_INET ? "bad prefix length (expected /0 to /32)"
                                   : "bad prefix length (expected /0 to /128)";
        return -EINVAL;
    }
    for (uint32_t bit = len; bit < max; bit++) {
        if (c.addr[bit / 8] & (0x80u >> (bit % 8))) {
            *why = "address has bits set past the prefix length";
            return -EINVAL;
        }
    }
    c.len = (uint8_t)len;
    *out = c;
    return 0;
}

const char *cfg_cidr_str(const struct cfg_cidr *c, char *buf, size_t len)
{
    char h[INET6_ADDRSTRLEN];

    if (!inet_ntop(c->family, c->addr, h, sizeof(h)))
        snprintf(h, sizeof(h), "?");
    snprintf(buf, len, "%s/%u", h, (unsigned)c->len);
    return buf;
}

int cfg_parse_addr(const char *s, unsigned flags, struct cfg_addr *out, const char **why)
{
    const char *dummy, *host, *colon;
    char h[CFG_HOST_MAX + 1];
    struct in_addr a4;
    struct in6_addr a6;
    size_t hlen;
    uint16_t port;

    if (!why)
        why = &dummy;
    memset(out, 0, sizeof(*out));
    if (strncmp(s, "unix:", 5) == 0)
        return parse_unix(s + 5, flags, out, why);

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (!close) {
            *why = "missing ']' after IPv6 address";
            return -EINVAL;
        }
        if (close[1] != ':') {
            *why = close[1] ? "expected ':' after ']'" : "missing port";
            return -EINVAL;
        }
        if (parse_port(close + 2, &port, why) < 0)
            return -EINVAL;
        hlen = (size_t)(close - s - 1);
        if (hlen >= INET6_ADDRSTRLEN) {
            *why = "bad IPv6 address";
            return -EINVAL;
        }
        memcpy(h, s + 1, hlen);
        h[hlen] = '\0';
        if (inet_pton(AF_INET6, h, &a6) != 1) {
            *why = "bad IPv6 address";
            return -EINVAL;
        }
        cfg_addr_in6(out, &a6, port);
        return 0;
    }

    colon = strrchr(s, ':');
    if (!colon) {
        *why = "missing port (expected HOST:PORT)";
        return -EINVAL;
    }
    host = s;
    hlen = (size_t)(colon - s);
    if (memchr(host, ':', hlen)) {
        *why = "IPv6 addresses need brackets ([ADDR]:PORT)";
        return -EINVAL;
    }
    if (parse_port(colon + 1, &port, why) < 0)
        return -EINVAL;
    if (hlen == 0 || (hlen == 1 && host[0] == '*')) {
        if (!(flags & CFG_ADDR_PASSIVE)) {
            *why = "missing host";
            return -EINVAL;
        }
        a4.s_addr = htonl(INADDR_ANY);
        cfg_addr_in4(out, &a4, port);
        return 0;
    }
    if (hlen > CFG_HOST_MAX) {
        *why = "host name too long";
        return -EINVAL;
    }
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (inet_pton(AF_INET, h, &a4) == 1) {
        cfg_addr_in4(out, &a4, port);
        return 0;
    }
    if (!host_syntax_ok(h)) {
        *why = "bad address or host name";
        return -EINVAL;
    }
    if (!(flags & CFG_ADDR_RESOLVE)) {
        *why = "host names are not allowed here (use an IP address)";
        return -EINVAL;
    }
    return resolve(h, port, out, why);
}

const char *cfg_addr_str(const struct cfg_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (!len)
        return buf;
    switch (a->ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;

        snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, sizeof(un->sun_path)),
                 un->sun_path);
        break;
    }
    default:
        snprintf(buf, len, "(none)");
        break;
    }
    return buf;
}

/* ---- escapes and commands ---- */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cfg_unescape(char *s, const char **why)
{
    const char *dummy;
    char *out = s;

    if (!why)
        why = &dummy;
    for (const char *c = s; *c; c++) {
        int hi, lo;

        if (*c != '\\') {
            *out++ = *c;
            continue;
        }
        switch (*++c) {
        case 'r':
            *out++ = '\r';
            break;
        case 'n':
            *out++ = '\n';
            break;
        case 't':
            *out++ = '\t';
            break;
        case '\\':
            *out++ = '\\';
            break;
        case 'x':
            hi = hex_val(c[1]);
            lo = hi < 0 ? -1 : hex_val(c[2]);
            if (lo < 0) {
                *why = "\\x needs two hex digits";
                return -EINVAL;
            }
            *out++ = (char)(hi << 4 | lo);
            c += 2;
            break;
        case '\0':
            *why = "'\\' at the end";
            return -EINVAL;
        default:
            *why = "unknown escape (known: \\r \\n \\t \\\\ \\xHH)";
            return -EINVAL;
        }
    }
    *out = '\0';
    return (int)(out - s);
}

void cfg_command_free(struct cfg_command *c)
{
    if (c->argv) {
        for (size_t i = 0; i < c->argc; i++)
            lb_free(c->argv[i]);
    }
    lb_free(c->argv);
    lb_free(c->text);
    memset(c, 0, sizeof(*c));
}

/* The % sequences the checker knows how to substitute. */
static bool percent_ok(const char *w, const char **why)
{
    for (const char *c = w; *c; c++) {
        if (*c != '%')
            continue;
        c++;
        if (*c != 'b' && *c != 's' && *c != 'a' && *c != '%') {
            *why = "unknown % sequence (known: %b backend, %s server, %a address, %% a %)";
            return false;
        }
    }
    return true;
}

/*
 * Shell-like word splitting with no shell: blanks separate words, '...'
 * keeps everything literally, "..." and a backslash outside quotes escape
 * one character. Nothing is expanded: no variables, globs or redirections.
 */
int cfg_parse_command(const char *s, struct cfg_command *out, const char **why)
{
    size_t len = strlen(s);
    char *word = lb_malloc(len + 1);
    const char *c = s;
    char **argv;
    int r = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!word)
        return -ENOMEM;
    for (;;) {
        size_t n = 0;
        char quote = 0;

        while (*c == ' ' || *c == '\t')
            c++;
        if (!*c)
            break;
        for (; *c && (quote || (*c != ' ' && *c != '\t')); c++) {
            if (quote == '\'') {
                if (*c == '\'')
                    quote = 0;
                else
                    word[n++] = *c;
            } else if (*c == '\\') {
                if (!c[1]) {
                    *why = "'\\' at the end";
                    goto err;
                }
                word[n++] = *++c;
            } else if (quote == '"' && *c == '"') {
                quote = 0;
            } else if (!quote && (*c == '\'' || *c == '"')) {
                quote = *c;
            } else {
                word[n++] = *c;
            }
        }
        if (quote) {
            *why = quote == '"' ? "missing closing '\"'" : "missing closing \"'\"";
            goto err;
        }
        word[n] = '\0';
        if (!percent_ok(word, why))
            goto err;
        r = -ENOMEM;
        /* Room for this word and the NULL after it; a command is a few
         * words, parsed once per load. */
        argv = lb_realloc(out->argv, (out->argc + 2) * sizeof(*out->argv));
        if (!argv)
            goto err;
        out->argv = argv;
        out->argv[out->argc] = lb_strdup(word);
        if (!out->argv[out->argc])
            goto err;
        out->argc++;
        out->argv[out->argc] = NULL;
        r = -EINVAL;
    }
    if (!out->argc) {
        *why = "empty command";
        goto err;
    }
    out->text = lb_strdup(s);
    if (!out->text) {
        r = -ENOMEM;
        goto err;
    }
    lb_free(word);
    return 0;
err:
    lb_free(word);
    cfg_command_free(out);
    return r;
}

bool cfg_sockaddr_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

bool cfg_addr_is_loopback(const struct cfg_addr *a)
{
    return a->ss.ss_family == AF_UNIX || cfg_sockaddr_loopback((const struct sockaddr *)&a->ss);
}
