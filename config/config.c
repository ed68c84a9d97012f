/*
 * config.c - lb.ini into struct config, in two phases (STYLE point 12).
 *
 * Phase 1 runs inih over our own line reader. The reader is the one place
 * that sees raw lines, so it counts them (libinih 55 passes no line number to
 * the handler), rejects lines longer than inih's buffer instead of letting
 * inih cut them in two, strips leading blanks (so an indented line is never
 * taken as an inih continuation line) and handles [section] headers itself:
 * inih reports no section start, and we need the header line and empty
 * sections. Every key = value pair goes through one table of
 * section/key/parser entries.
 *
 * Phase 2 (validate) checks what needs the whole file: references between
 * sections, duplicate names, required keys, the balancer and its options.
 *
 * Runs on whatever thread loads the config (main, at start and on SIGHUP);
 * it keeps no state between calls.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/alloc.h"
#include "../health/dbwire.h"
#include "../core/sni.h"

#define CFG_NAME_MAX 63          /* frontend, backend and server names */
#define CFG_FILE_MAX (16u << 20) /* a bigger lb.ini is a mistake */

enum sect_kind { SECT_NONE = 0, SECT_GLOBAL, SECT_FRONTEND, SECT_BACKEND };

struct parser;
struct key_def;

typedef int (*key_parse_fn)(struct parser *p, const struct key_def *k, void *obj, const char *val);

#define KEY_REPEAT (1u << 0) /* may be given more than once (bind, server) */
#define KEY_AUTO   (1u << 1) /* numbers: "auto" stores 0 */
#define KEY_POW2   (1u << 2) /* numbers: a power of two */
/* [global] only: a running process cannot change it, so a reload keeps
 * the running value and warns (config_keep_restart_only). */
#define KEY_RESTART (1u << 3)

struct key_def {
    enum sect_kind sect;
    const char *name;
    key_parse_fn parse;
    size_t off, size; /* field in the section's struct; size 0 when there is none */
    uint32_t min, max;
    const char *const *words; /* keyword values, indexed by their enum value */
    unsigned flags;
};

/* Lines that validation reports and struct cfg_backend does not keep. */
struct be_lines {
    int balance;
    int hash_key;
    int health_expect;
    int health_send;
    int health_port;
    int role;
    int health_user;
    int health_password;
    int health_db;
};

struct parser {
    struct config *cfg;
    const char *pos; /* reader position in the NUL-terminated text */
    int lineno;      /* line last handed to inih */
    enum sect_kind sect;
    size_t idx;          /* current frontend or backend */
    uint64_t seen;       /* keys of the current section given so far */
    int key_line[64];    /* where each of them was given */
    int global_line;     /* line of [global], 0 if none yet */
    struct be_lines *be; /* parallel to cfg->backends */
    bool failed;
    int err_line;
    char *err;
    size_t errlen;
};

/* ---- errors ---- */

/*
 * Records the first error as "FILE:LINE: KEY: reason" and returns -1.
 * Control characters (from file names or values) become '?', so the
 * message is always exactly one line.
 */
__attribute__((format(printf, 4, 5))) static int perr(struct parser *p, int line, const char *key,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed)
        return -1;
    p->failed = true;
    p->err_line = line;
    if (!p->err || !p->errlen)
        return -1;
    n = snprintf(p->err, p->errlen, "%s:%d: %s: ", p->cfg->path, line, key);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    for (char *c = p->err; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
    return -1;
}

static const char *sect_name(enum sect_kind k)
{
    return k == SECT_FRONTEND ? "frontend" : k == SECT_BACKEND ? "backend" : "global";
}

/* ---- small parsers ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool name_ok(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
              c == '.' || c == '-'))
            return false;
    }
    return n >= 1 && n <= CFG_NAME_MAX;
}

/* ---- growing arrays ---- */

/*
 * Makes room for element <n> of the array at <*(T **)arrp>. The capacity is
 * not stored: it is the next power of two at or above <n>, so the array is
 * full exactly when <n> is zero or a power of two.
 */
static int grow(void *arrp, size_t n, size_t elem)
{
    void *arr, *q;
    size_t cap;

    if (n & (n - 1))
        return 0;
    cap = n ? 2 * n : 1;
    if (cap > SIZE_MAX / elem)
        return -ENOMEM;
    memcpy(&arr, arrp, sizeof(arr));
    q = lb_realloc(arr, cap * elem);
    if (!q)
        return -ENOMEM;
    memcpy(arrp, &q, sizeof(q));
    return 0;
}

static int oom(struct parser *p, const char *key)
{
    return perr(p, p->lineno, key, "out of memory");
}

/* ---- key parsers ---- */

static void *field(void *obj, const struct key_def *k)
{
    return (char *)obj + k->off;
}

/* rate_per_source = N/s (or N): N new connections a second, in bursts of N. */
static int key_rate(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    size_t n = strlen(val);
    char num[32];
    uint32_t v;

    if (n > 2 && strcmp(val + n - 2, "/s") == 0)
        n -= 2;
    if (n == 0 || n >= sizeof(num))
        return perr(p, p->lineno, k->name, "expected N/s (new connections a second), got '%.64s'",
                    val);
    memcpy(num, val, n);
    num[n] = '\0';
    if (cfg_parse_uint(num, &v) != 0 || v > k->max)
        return perr(p, p->lineno, k->name, "expected N/s with N from 0 (off) to %u, got '%.64s'",
                    k->max, val);
    *(uint32_t *)field(obj, k) = v;
    return 0;
}

static int key_u32(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    uint32_t v;

    if ((k->flags & KEY_AUTO) && strcmp(val, "auto") == 0) {
        v = 0;
    } else if (cfg_parse_uint(val, &v) != 0 || v < k->min || v > k->max) {
        return perr(p, p->lineno, k->name, "expected %sa number from %u to %u, got '%.64s'",
                    k->flags & KEY_AUTO ? "auto or " : "", k->min, k->max, val);
    }
    if ((k->flags & KEY_POW2) && (v & (v - 1)))
        return perr(p, p->lineno, k->name,
                    "expected a power of two (..., 512, 1024, 2048, ...), "
                    "got %u",
                    v);
    *(uint32_t *)field(obj, k) = v;
    return 0;
}

static int key_duration(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    uint32_t ms;
    int r = cfg_parse_duration(val, &ms);

    if (r == -ERANGE)
        return perr(p, p->lineno, k->name, "duration too long (at most %ums, about 49 days)",
                    UINT32_MAX);
    if (r < 0)
        return perr(p, p->lineno, k->name,
                    "bad duration '%.64s' (expected a number and ms, s, m or h, e.g. 500ms)", val);
    if (ms < k->min)
        return perr(p, p->lineno, k->name, "must be greater than 0");
    *(uint32_t *)field(obj, k) = ms;
    return 0;
}

/*
 * A duration the kernel takes in whole seconds (TCP_KEEPIDLE, TCP_KEEPINTVL),
 * from k->min to k->max seconds; stored in seconds, so that nothing is
 * rounded behind the operator's back.
 */
static int key_seconds(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    uint32_t ms;
    int r = cfg_parse_duration(val, &ms);

    if (r < 0 || ms % 1000 || ms / 1000 < k->min || ms / 1000 > k->max)
        return perr(p, p->lineno, k->name,
                    "expected whole seconds from %us to %us (e.g. 30s, 2m), got '%.64s'", k->min,
                    k->max, val);
    *(uint32_t *)field(obj, k) = ms / 1000;
    return 0;
}

_Static_assert(sizeof(enum io_mode) == sizeof(unsigned), "enum io_mode stored as unsigned");
_Static_assert(sizeof(enum fwd_mode) == sizeof(unsigned), "enum fwd_mode stored as unsigned");
_Static_assert(sizeof(enum health_kind) == sizeof(unsigned), "enum health_kind stored as unsigned");
_Static_assert(sizeof(enum hash_key) == sizeof(unsigned), "enum hash_key stored as unsigned");
_Static_assert(sizeof(enum backend_role) == sizeof(unsigned),
               "enum backend_role stored as unsigned");
_Static_assert(sizeof(enum log_target) == sizeof(unsigned), "enum log_target stored as unsigned");
_Static_assert(sizeof(enum proxy_version) == sizeof(unsigned),
               "enum proxy_version stored as unsigned");

/* One of k->words; the enum value is the word's index. */
static int key_word(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    char list[128];
    size_t n = 0;

    for (unsigned i = 0; k->words[i]; i++) {
        if (strcmp(val, k->words[i]) == 0) {
            *(unsigned *)field(obj, k) = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (unsigned i = 0; k->words[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", k->words[i]);
    return perr(p, p->lineno, k->name, "expected one of %s, got '%.64s'", list, val);
}

static int key_log_level(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_global *g = obj;

    if (log_parse_level(val, &g->log_level) < 0)
        return perr(p, p->lineno, k->name, "expected one of error, warn, info, debug, got '%.64s'",
                    val);
    return 0;
}

static int key_admin(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_global *g = obj;
    const char *why = "bad address";

    if (!*val) {
        g->has_admin = false;
        return 0;
    }
    if (cfg_parse_addr(val, CFG_ADDR_UNIX | CFG_ADDR_RESOLVE | CFG_ADDR_PASSIVE, &g->admin, &why) <
        0)
        return perr(p, p->lineno, k->name, "%s: '%.64s'", why, val);
    g->has_admin = true;
    g->admin_line = p->lineno;
    return 0;
}

/* admin_token_file = PATH (empty: none). The file is read by
 * config_load_file() (config_read_admin_token), not here: a config given
 * as a string names no file of ours. */
static int key_token_file(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_global *g = obj;
    char *s = NULL;

    if (*val && val[0] != '/')
        return perr(p, p->lineno, k->name, "expected an absolute path, got '%.64s'", val);
    if (*val && !(s = lb_strdup(val)))
        return oom(p, k->name);
    lb_free(g->admin_token_file);
    g->admin_token_file = s;
    g->admin_token_line = p->lineno;
    return 0;
}

/* upgrade_socket = PATH: an absolute path that fits a unix socket address
 * (empty: off). */
static int key_upgrade_socket(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_global *g = obj;
    char *s = NULL;

    if (*val && val[0] != '/')
        return perr(p, p->lineno, k->name, "expected an absolute path, got '%.64s'", val);
    if (strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return perr(p, p->lineno, k->name, "path too long for a unix socket: '%.64s'", val);
    if (*val && !(s = lb_strdup(val)))
        return oom(p, k->name);
    lb_free(g->upgrade_socket);
    g->upgrade_socket = s;
    return 0;
}

/*
 * user = / group =: a name as useradd accepts it, or a numeric id. Only its
 * shape is checked here, so that config/ stays free of the host's account
 * database: `ringlb -t` and start-up look it up with the same function
 * (core/privdrop.c privdrop_resolve), which reports the line kept here.
 */
static int key_account(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_global *g = obj;
    char **dst = field(obj, k);
    size_t n = strlen(val);
    char *s;

    if (n == 0 || n > 32 || val[0] == '-')
        return perr(p, p->lineno, k->name, "expected a name of 1-32 characters, got '%.64s'", val);
    for (const char *c = val; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || is_digit(*c) || *c == '_' ||
              *c == '-' || *c == '.' || (*c == '$' && !c[1])))
            return perr(p, p->lineno, k->name, "bad character in '%.64s'", val);
    }
    s = lb_strdup(val);
    if (!s)
        return oom(p, k->name);
    lb_free(*dst);
    *dst = s;
    if (dst == &g->user)
        g->user_line = p->lineno;
    else
        g->group_line = p->lineno;
    return 0;
}

/* The words a bind may carry after its address (CFG_BIND_*). */
static const struct {
    const char *word;
    uint32_t flag;
} bind_words[] = {
    {"freebind", CFG_BIND_FREEBIND},
};

/* bind = ADDRESS [OPTION...]: the address, then options separated by blanks. */
static int key_bind(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_frontend *fe = obj;
    const char *why = "bad address", *opt;
    char addr[INI_MAX_LINE + 1];
    struct cfg_addr a;
    uint32_t opts = 0;
    size_t n = strcspn(val, " \t");
    char *text;

    if (n >= sizeof(addr))
        return perr(p, p->lineno, k->name, "address too long: '%.64s'", val);
    memcpy(addr, val, n);
    addr[n] = '\0';
    if (cfg_parse_addr(addr, CFG_ADDR_UNIX | CFG_ADDR_RESOLVE | CFG_ADDR_PASSIVE, &a, &why) < 0)
        return perr(p, p->lineno, k->name, "%s: '%.64s'", why, addr);
    for (opt = val + n; *opt;) {
        size_t w, i;

        opt += strspn(opt, " \t");
        w = strcspn(opt, " \t");
        if (!w)
            break;
        for (i = 0; i < sizeof(bind_words) / sizeof(bind_words[0]); i++) {
            if (strlen(bind_words[i].word) == w && memcmp(bind_words[i].word, opt, w) == 0)
                break;
        }
        if (i == sizeof(bind_words) / sizeof(bind_words[0]))
            return perr(p, p->lineno, k->name, "unknown option '%.*s' (known: freebind)",
                        (int)(w < 64 ? w : 64), opt);
        opts |= bind_words[i].flag;
        opt += w;
    }
    if ((opts & CFG_BIND_FREEBIND) && a.ss.ss_family == AF_UNIX)
        return perr(p, p->lineno, k->name, "freebind is for IP addresses, not '%.64s'", addr);
    if (grow(&fe->binds, fe->nbinds, sizeof(*fe->binds)) < 0 ||
        grow(&fe->bind_texts, fe->nbinds, sizeof(*fe->bind_texts)) < 0 ||
        grow(&fe->bind_lines, fe->nbinds, sizeof(*fe->bind_lines)) < 0 ||
        grow(&fe->bind_opts, fe->nbinds, sizeof(*fe->bind_opts)) < 0)
        return oom(p, k->name);
    /* The address alone: logs and errors name the bind as they always did. */
    text = lb_strdup(addr);
    if (!text)
        return oom(p, k->name);
    fe->binds[fe->nbinds] = a;
    fe->bind_texts[fe->nbinds] = text;
    fe->bind_lines[fe->nbinds] = p->lineno;
    fe->bind_opts[fe->nbinds] = opts;
    fe->nbinds++;
    return 0;
}

static int key_fe_backend(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_frontend *fe = obj;

    if (!name_ok(val))
        return perr(p, p->lineno, k->name, "bad backend name '%.64s' (1-63 of A-Z a-z 0-9 _ . -)",
                    val);
    fe->backend = lb_strdup(val);
    if (!fe->backend)
        return oom(p, k->name);
    fe->backend_line = p->lineno;
    return 0;
}

/*
 * allow = / deny =: one or more prefixes separated by blanks, appended to
 * the frontend's list (the key's name says which). At most CFG_CIDR_MAX in
 * all per frontend, so that a runaway generated file fails here with a
 * line number rather than later as memory.
 */
#define CFG_CIDR_MAX 1000000

static int key_cidrs(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_frontend *fe = obj;
    bool deny = strcmp(k->name, "deny") == 0, trusted = strcmp(k->name, "proxy_trusted") == 0;
    struct cfg_cidr **v = trusted ? &fe->proxy_trusted : deny ? &fe->deny : &fe->allow;
    size_t *n = trusted ? &fe->nproxy_trusted : deny ? &fe->ndeny : &fe->nallow;
    const char *s = val;
    size_t words = 0;

    for (;;) {
        char word[INET6_ADDRSTRLEN + 8];
        const char *why = "bad address";
        struct cfg_cidr c;
        size_t len;

        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        len = strcspn(s, " \t");
        if (len >= sizeof(word))
            return perr(p, p->lineno, k->name, "bad address '%.64s'", s);
        memcpy(word, s, len);
        word[len] = '\0';
        s += len;
        if (cfg_parse_cidr(word, &c, &why) < 0)
            return perr(p, p->lineno, k->name, "%s: '%s'", why, word);
        if (fe->nallow + fe->ndeny + fe->nproxy_trusted >= CFG_CIDR_MAX)
            return perr(p, p->lineno, k->name, "more than %u prefixes in frontend %s", CFG_CIDR_MAX,
                        fe->name);
        if (grow(v, *n, sizeof(**v)) < 0)
            return oom(p, k->name);
        (*v)[(*n)++] = c;
        words++;
    }
    if (!words)
        return perr(p, p->lineno, k->name, "expected one or more addresses or CIDR prefixes");
    return 0;
}

/*
 * sni = HOST BACKEND: HOST an exact name or "*.domain", stored lower case
 * (names compare without regard to case). At most CFG_SNI_MAX a frontend.
 */
#define CFG_SNI_MAX 100000

static bool host_ok(const char *s, size_t n)
{
    if (n == 0 || n > SNI_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!sni_name_char((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

static int key_sni(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_frontend *fe = obj;
    char host[SNI_NAME_MAX + 3], be[CFG_NAME_MAX + 2];
    struct cfg_sni r = {.line = p->lineno};
    size_t hl = strcspn(val, " \t"), bl;
    const char *b = val + hl;

    while (*b == ' ' || *b == '\t')
        b++;
    bl = strcspn(b, " \t");
    if (!hl || !bl || b[bl])
        return perr(p, p->lineno, k->name, "expected HOSTNAME BACKEND, got '%.64s'", val);
    if (hl >= sizeof(host) ||
        !(val[0] == '*' ? hl > 2 && val[1] == '.' && host_ok(val + 2, hl - 2) : host_ok(val, hl)))
        return perr(p, p->lineno, k->name,
                    "bad host name '%.*s' (a name like www.example.com or a wildcard like "
                    "*.example.com)",
                    (int)(hl > 64 ? 64 : hl), val);
    if (bl >= sizeof(be))
        return perr(p, p->lineno, k->name, "bad backend name '%.64s'", b);
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)(val[i] >= 'A' && val[i] <= 'Z' ? val[i] + ('a' - 'A') : val[i]);
    host[hl] = '\0';
    memcpy(be, b, bl);
    be[bl] = '\0';
    if (!name_ok(be))
        return perr(p, p->lineno, k->name, "bad backend name '%.64s' (1-63 of A-Z a-z 0-9 _ . -)",
                    be);
    for (size_t i = 0; i < fe->nsni; i++) {
        if (strcmp(fe->sni[i].host, host) == 0)
            return perr(p, p->lineno, k->name, "%s given twice (first at line %d)", host,
                        fe->sni[i].line);
    }
    if (fe->nsni >= CFG_SNI_MAX)
        return perr(p, p->lineno, k->name, "more than %u rules in frontend %s", CFG_SNI_MAX,
                    fe->name);
    if (grow(&fe->sni, fe->nsni, sizeof(*fe->sni)) < 0)
        return oom(p, k->name);
    r.host = lb_strdup(host);
    r.backend = lb_strdup(be);
    if (!r.host || !r.backend) {
        lb_free(r.host);
        lb_free(r.backend);
        return oom(p, k->name);
    }
    fe->sni[fe->nsni++] = r;
    return 0;
}

/* accept_proxy = off | v1 | v2 | any, and yes / no for any / off (the
 * words of issue #15's first draft). */
static int key_accept_proxy(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_frontend *fe = obj;

    if (strcmp(val, "yes") == 0)
        val = "any";
    else if (strcmp(val, "no") == 0)
        val = "off";
    return key_word(p, k, fe, val);
}

static int key_balance(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    char *s;

    /* Checked against the algorithms by validate(), which also needs hash_key. */
    if (!*val)
        return perr(p, p->lineno, k->name, "missing algorithm (known: %s)", config_algo_names());
    s = lb_strdup(val);
    if (!s)
        return oom(p, k->name);
    lb_free(be->balance);
    be->balance = s;
    p->be[p->idx].balance = p->lineno;
    return 0;
}

static int key_hash_key(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;

    if (key_word(p, k, obj, val) < 0)
        return -1;
    be->hash_key_set = true;
    p->be[p->idx].hash_key = p->lineno;
    return 0;
}

static int key_health_path(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    char *s;

    if (val[0] != '/')
        return perr(p, p->lineno, k->name, "must start with '/', got '%.64s'", val);
    /* It goes into an HTTP request line as is. */
    for (const char *c = val; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return perr(p, p->lineno, k->name, "must not contain spaces or control characters");
    }
    s = lb_strdup(val);
    if (!s)
        return oom(p, k->name);
    lb_free(be->health_path);
    be->health_path = s;
    return 0;
}

/*
 * health_expect means a status code for http and bytes for send_expect, and
 * `health` may come after it: keep the text, validate() decides.
 */
static int key_health_expect(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    char *s;

    (void)k;
    s = lb_strdup(val);
    if (!s)
        return oom(p, k->name);
    lb_free(be->health_expect_str);
    be->health_expect_str = s;
    p->be[p->idx].health_expect = p->lineno;
    return 0;
}

static int key_health_send(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    const char *why = "bad escape";
    char *s = lb_strdup(val);
    int n;

    if (!s)
        return oom(p, k->name);
    n = cfg_unescape(s, &why);
    if (n < 0) {
        lb_free(s);
        return perr(p, p->lineno, k->name, "%s in '%.64s'", why, val);
    }
    lb_free(be->health_send);
    be->health_send = s;
    be->health_send_len = (size_t)n;
    p->be[p->idx].health_send = p->lineno;
    return 0;
}

/* role = any | primary | replica; whether `health` can tell is for validate(). */
static int key_role(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    if (key_word(p, k, obj, val) < 0)
        return -1;
    p->be[p->idx].role = p->lineno;
    return 0;
}

static int key_health_port(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    if (key_u32(p, k, obj, val) < 0)
        return -1;
    p->be[p->idx].health_port = p->lineno;
    return 0;
}

/*
 * health_user / health_password / health_db: sent to the server as they
 * are written (a RESP bulk string carries any byte, the database protocols
 * any but NUL, which an INI value cannot hold), so only emptiness is
 * refused here; the line limit (CFG_LINE_MAX) bounds their length, and
 * check_health() the database checks'. They are secrets: no error message
 * quotes them.
 */
static int key_cred(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    bool user = strcmp(k->name, "health_user") == 0;
    bool db = strcmp(k->name, "health_db") == 0;
    char **dst = user ? &be->health_user : db ? &be->health_db : &be->health_password;
    char *s;

    if (!*val)
        return perr(p, p->lineno, k->name, "must not be empty (leave the key out for none)");
    s = lb_strdup(val);
    if (!s)
        return oom(p, k->name);
    lb_free(*dst);
    *dst = s;
    if (user)
        p->be[p->idx].health_user = p->lineno;
    else if (db)
        p->be[p->idx].health_db = p->lineno;
    else
        p->be[p->idx].health_password = p->lineno;
    return 0;
}

static int key_bool(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    if (cfg_parse_bool(val, field(obj, k)) < 0)
        return perr(p, p->lineno, k->name, "expected yes or no, got '%.64s'", val);
    return 0;
}

/* chaos = on|off, remembering where it was said for check_chaos(). */
static int key_chaos(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    p->cfg->global.chaos_line = p->lineno;
    return key_bool(p, k, obj, val);
}

static int key_command(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_command *c = field(obj, k), nc;
    const char *why = "bad command";
    int r = cfg_parse_command(val, &nc, &why);

    if (r == -ENOMEM)
        return oom(p, k->name);
    if (r < 0)
        return perr(p, p->lineno, k->name, "%s", why);
    cfg_command_free(c);
    *c = nc;
    return 0;
}

/* "weight=N" / "max_conns=N" on a server line. */
static int server_opt(struct parser *p, const char *tok, const char *opt, uint32_t max,
                      uint32_t *out, bool *given)
{
    size_t n = strlen(opt);

    if (*given)
        return perr(p, p->lineno, "server", "%s given twice", opt);
    if (cfg_parse_uint(tok + n + 1, out) != 0 || *out > max)
        return perr(p, p->lineno, "server", "%s: expected a number from 0 to %u, got '%.64s'", opt,
                    max, tok + n + 1);
    *given = true;
    return 0;
}

/* server = NAME ADDR [weight=N] [max_conns=N] [backup] */
static int key_server(struct parser *p, const struct key_def *k, void *obj, const char *val)
{
    struct cfg_backend *be = obj;
    struct cfg_server s = {.weight = 1, .line = p->lineno};
    bool has_weight = false, has_max = false;
    char buf[CFG_LINE_MAX + 1];
    char *tok[8], *save = NULL, *t;
    const char *why = "bad address";
    size_t ntok = 0;

    if (strlen(val) >= sizeof(buf))
        return perr(p, p->lineno, k->name, "line too long");
    strcpy(buf, val);
    for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (ntok == sizeof(tok) / sizeof(tok[0]))
            return perr(p, p->lineno, k->name, "too many words");
        tok[ntok++] = t;
    }
    if (ntok < 2)
        return perr(p, p->lineno, k->name, "expected NAME ADDR [weight=N] [max_conns=N] [backup]");
    if (!name_ok(tok[0]))
        return perr(p, p->lineno, k->name, "bad server name '%.64s' (1-63 of A-Z a-z 0-9 _ . -)",
                    tok[0]);
    if (cfg_parse_addr(tok[1], CFG_ADDR_UNIX | CFG_ADDR_RESOLVE, &s.addr, &why) < 0)
        return perr(p, p->lineno, k->name, "%s: '%.64s'", why, tok[1]);
    for (size_t i = 2; i < ntok; i++) {
        int r;

        if (strncmp(tok[i], "weight=", 7) == 0) {
            r = server_opt(p, tok[i], "weight", 1000, &s.weight, &has_weight);
        } else if (strncmp(tok[i], "max_conns=", 10) == 0) {
            r = server_opt(p, tok[i], "max_conns", 10000000, &s.max_conns, &has_max);
        } else if (strncmp(tok[i], "send_proxy=", 11) == 0) {
            const char *v = tok[i] + 11;

            r = 0;
            if (s.send_proxy_set)
                r = perr(p, p->lineno, k->name, "send_proxy given twice");
            else if (strcmp(v, "off") == 0)
                s.send_proxy = PROXY_OFF;
            else if (strcmp(v, "v1") == 0)
                s.send_proxy = PROXY_V1;
            else if (strcmp(v, "v2") == 0)
                s.send_proxy = PROXY_V2;
            else
                r = perr(p, p->lineno, k->name,
                         "send_proxy: expected one of off, v1, v2, got '%.64s'", v);
            s.send_proxy_set = true;
        } else if (strcmp(tok[i], "backup") == 0) {
            r = s.backup ? perr(p, p->lineno, k->name, "backup given twice") : 0;
            s.backup = true;
        } else {
            r = perr(p, p->lineno, k->name,
                     "unknown option '%.64s' (expected weight=N, max_conns=N, send_proxy=V or "
                     "backup)",
                     tok[i]);
        }
        if (r < 0)
            return -1;
    }
    if (grow(&be->servers, be->nservers, sizeof(*be->servers)) < 0)
        return oom(p, k->name);
    s.name = lb_strdup(tok[0]);
    s.addr_text = lb_strdup(tok[1]);
    if (!s.name || !s.addr_text) {
        lb_free(s.name);
        lb_free(s.addr_text);
        return oom(p, k->name);
    }
    be->servers[be->nservers++] = s;
    return 0;
}

/* ---- the key table ---- */

static const char *const io_words[] = {"auto", "uring", "epoll", NULL};
static const char *const fwd_words[] = {"auto", "copy", "splice", NULL};
static const char *const health_words[] = {"none",  "tcp",   "http",  "send_expect",
                                           "redis", "pgsql", "mysql", NULL};
static const char *const role_words[] = {"any", "primary", "replica", NULL};
static const char *const hash_words[] = {"src_ip", "src_ip_port", NULL};
static const char *const log_words[] = {"stderr", "syslog", NULL};
static const char *const accept_proxy_words[] = {"off", "v1", "v2", "any", NULL};
static const char *const send_proxy_words[] = {"off", "v1", "v2", NULL};

/* A field of the section's struct: its offset and size. */
#define G(f)    offsetof(struct cfg_global, f), sizeof(((struct cfg_global *)0)->f)
#define F(f)    offsetof(struct cfg_frontend, f), sizeof(((struct cfg_frontend *)0)->f)
#define B(f)    offsetof(struct cfg_backend, f), sizeof(((struct cfg_backend *)0)->f)
#define NOFIELD 0, 0 /* the parser knows where its value goes */
#define R       KEY_RESTART

/*
 * Every key lb.ini knows. A [global] key is either restart-only (R) or
 * applied by a reload (core/reload.c settings_apply); test_config fails
 * until a new one is put on one side or the other.
 */
static const struct key_def keys[] = {
    {SECT_GLOBAL, "workers", key_u32, G(workers), 1, 1024, NULL, KEY_AUTO | R},
    {SECT_GLOBAL, "io", key_word, G(io), 0, 0, io_words, R},
    {SECT_GLOBAL, "forward", key_word, G(forward), 0, 0, fwd_words, 0},
    {SECT_GLOBAL, "max_conns", key_u32, G(max_conns), 1, 10000000, NULL, KEY_AUTO},
    {SECT_GLOBAL, "buffers", key_u32, G(buffers), 16, 32768, NULL, KEY_POW2 | R},
    {SECT_GLOBAL, "pin_workers", key_bool, G(pin_workers), 0, 0, NULL, R},
    {SECT_GLOBAL, "log_level", key_log_level, G(log_level), 0, 0, NULL, 0},
    {SECT_GLOBAL, "admin", key_admin, G(admin), 0, 0, NULL, R},
    {SECT_GLOBAL, "admin_token_file", key_token_file, G(admin_token_file), 0, 0, NULL, 0},
    {SECT_GLOBAL, "admin_read_token", key_bool, G(admin_read_token), 0, 0, NULL, 0},
    {SECT_GLOBAL, "chaos", key_chaos, G(chaos), 0, 0, NULL, R},
    {SECT_GLOBAL, "shutdown_grace", key_duration, G(shutdown_grace_ms), 0, 0, NULL, 0},
    {SECT_GLOBAL, "log_connections", key_bool, G(log_connections), 0, 0, NULL, 0},
    {SECT_GLOBAL, "log", key_word, G(log_to), 0, 0, log_words, R},
    {SECT_GLOBAL, "user", key_account, G(user), 0, 0, NULL, R},
    {SECT_GLOBAL, "group", key_account, G(group), 0, 0, NULL, R},
    /* The kernel's limits: TCP_KEEPIDLE and TCP_KEEPINTVL 1..32767 s,
     * TCP_KEEPCNT 1..127. Restart-only: listeners hand their keepalive to
     * the clients they accept, and a kept listener keeps what it was given
     * at start-up, so client and server sides could disagree. */
    {SECT_GLOBAL, "tcp_keepalive", key_bool, G(tcp_keepalive), 0, 0, NULL, R},
    {SECT_GLOBAL, "tcp_keepalive_idle", key_seconds, G(tcp_keepalive_idle_s), 1, 32767, NULL, R},
    {SECT_GLOBAL, "tcp_keepalive_interval", key_seconds, G(tcp_keepalive_intvl_s), 1, 32767, NULL,
     R},
    {SECT_GLOBAL, "tcp_keepalive_count", key_u32, G(tcp_keepalive_count), 1, 127, NULL, R},
    /* Both decide how listeners are opened, which only start-up does. */
    {SECT_GLOBAL, "share_binds", key_bool, G(share_binds), 0, 0, NULL, R},
    {SECT_GLOBAL, "upgrade_socket", key_upgrade_socket, G(upgrade_socket), 0, 0, NULL, R},

    {SECT_FRONTEND, "bind", key_bind, NOFIELD, 0, 0, NULL, KEY_REPEAT},
    {SECT_FRONTEND, "backend", key_fe_backend, NOFIELD, 0, 0, NULL, 0},
    {SECT_FRONTEND, "allow", key_cidrs, NOFIELD, 0, 0, NULL, KEY_REPEAT},
    {SECT_FRONTEND, "deny", key_cidrs, NOFIELD, 0, 0, NULL, KEY_REPEAT},
    {SECT_FRONTEND, "max_conns_per_source", key_u32, F(max_conns_per_source), 0, 10000000, NULL, 0},
    {SECT_FRONTEND, "rate_per_source", key_rate, F(rate_per_source), 0, 1000000, NULL, 0},
    {SECT_FRONTEND, "source_prefix_v6", key_u32, F(source_prefix_v6), 1, 128, NULL, 0},
    {SECT_FRONTEND, "sni", key_sni, NOFIELD, 0, 0, NULL, KEY_REPEAT},
    {SECT_FRONTEND, "sni_timeout", key_duration, F(sni_timeout_ms), 1, 0, NULL, 0},
    {SECT_FRONTEND, "accept_proxy", key_accept_proxy, F(accept_proxy), 0, 0, accept_proxy_words, 0},
    {SECT_FRONTEND, "proxy_timeout", key_duration, F(proxy_timeout_ms), 1, 0, NULL, 0},
    {SECT_FRONTEND, "proxy_trusted", key_cidrs, NOFIELD, 0, 0, NULL, KEY_REPEAT},

    {SECT_BACKEND, "balance", key_balance, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "hash_key", key_hash_key, B(hash_key), 0, 0, hash_words, 0},
    {SECT_BACKEND, "connect_timeout", key_duration, B(connect_timeout_ms), 1, 0, NULL, 0},
    {SECT_BACKEND, "idle_timeout", key_duration, B(idle_timeout_ms), 0, 0, NULL, 0},
    {SECT_BACKEND, "retries", key_u32, B(retries), 0, 16, NULL, 0},
    {SECT_BACKEND, "health", key_word, B(health), 0, 0, health_words, 0},
    {SECT_BACKEND, "health_path", key_health_path, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "health_expect", key_health_expect, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "health_send", key_health_send, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "health_interval", key_duration, B(health_interval_ms), 1, 0, NULL, 0},
    {SECT_BACKEND, "health_timeout", key_duration, B(health_timeout_ms), 1, 0, NULL, 0},
    {SECT_BACKEND, "health_port", key_health_port, B(health_port), 1, 65535, NULL, 0},
    {SECT_BACKEND, "role", key_role, B(role), 0, 0, role_words, 0},
    {SECT_BACKEND, "health_user", key_cred, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "health_password", key_cred, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "health_db", key_cred, NOFIELD, 0, 0, NULL, 0},
    {SECT_BACKEND, "rise", key_u32, B(rise), 1, 100, NULL, 0},
    {SECT_BACKEND, "fall", key_u32, B(fall), 1, 100, NULL, 0},
    {SECT_BACKEND, "slow_start", key_duration, B(slow_start_ms), 0, 0, NULL, 0},
    {SECT_BACKEND, "on_down", key_command, B(on_down), 0, 0, NULL, 0},
    {SECT_BACKEND, "on_up", key_command, B(on_up), 0, 0, NULL, 0},
    {SECT_BACKEND, "on_down_close", key_bool, B(on_down_close), 0, 0, NULL, 0},
    {SECT_BACKEND, "send_proxy", key_word, B(send_proxy), 0, 0, send_proxy_words, 0},
    {SECT_BACKEND, "server", key_server, NOFIELD, 0, 0, NULL, KEY_REPEAT},
};
#undef R

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= 64, "parser.seen is a 64-bit mask");

/* ---- algorithms ---- */

#define W CFG_CAP_WEIGHT
#define H CFG_CAP_HASH_KEY

/* In the order of config_algo_names(). */
static const struct cfg_algo algos[] = {
    {"roundrobin", W}, {"weighted", W},   {"leastconn", W},  {"random", W},   {"p2c", W},
    {"source", H | W}, {"ketama", H | W}, {"maglev", H | W}, {"jump", H | W},
};
#undef W
#undef H

const struct cfg_algo *config_algo_find(const char *name)
{
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
        if (strcmp(algos[i].name, name) == 0)
            return &algos[i];
    }
    return NULL;
}

const char *config_algo_names(void)
{
    return "roundrobin weighted leastconn random p2c source ketama maglev jump";
}

/* ---- restart-only keys ---- */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * Whether the restart-only key <k> has the same value in <a> and <b>. The
 * parser that fills a field decides its type: strings and the admin
 * address (with has_admin) are compared as such, every other field is a
 * scalar (number, enum, bool) compared as bytes. A restart-only key whose
 * field is neither needs its case here; test_restart_only_kept fails until
 * it has one (the same file loaded twice would differ).
 */
static bool global_same(const struct key_def *k, const struct cfg_global *a,
                        const struct cfg_global *b)
{
    const char *x = (const char *)a + k->off, *y = (const char *)b + k->off;

    if (k->parse == key_account || k->parse == key_upgrade_socket)
        return str_eq(*(char *const *)x, *(char *const *)y);
    if (k->parse == key_admin)
        return a->has_admin == b->has_admin &&
               (!a->has_admin || (a->admin.len == b->admin.len &&
                                  memcmp(&a->admin.ss, &b->admin.ss, a->admin.len) == 0));
    return memcmp(x, y, k->size) == 0;
}

/* Gives <g> the value of the restart-only key <k> in <o>. Returns 0 or -ENOMEM. */
static int global_keep(const struct key_def *k, struct cfg_global *g, const struct cfg_global *o)
{
    char *x = (char *)g + k->off;
    const char *y = (const char *)o + k->off;

    if (k->parse == key_account || k->parse == key_upgrade_socket) {
        const char *src = *(char *const *)y;
        char *copy = src ? lb_strdup(src) : NULL;

        if (src && !copy)
            return -ENOMEM;
        lb_free(*(char **)x);
        *(char **)x = copy;
        return 0;
    }
    if (k->parse == key_admin) {
        g->has_admin = o->has_admin;
        g->admin = o->admin;
        return 0;
    }
    memcpy(x, y, k->size);
    return 0;
}

int config_keep_restart_only(const struct config *old, struct config *cfg,
                             void (*changed)(const char *key, void *arg), void *arg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *k = &keys[i];

        if (k->sect != SECT_GLOBAL || !(k->flags & KEY_RESTART) ||
            global_same(k, &cfg->global, &old->global))
            continue;
        if (changed)
            changed(k->name, arg);
        if (global_keep(k, &cfg->global, &old->global) < 0)
            return -ENOMEM;
    }
    return 0;
}

const char *config_global_key(size_t i, bool *restart_only)
{
    size_t n = 0;

    for (size_t j = 0; j < NKEYS; j++) {
        if (keys[j].sect != SECT_GLOBAL || n++ != i)
            continue;
        *restart_only = keys[j].flags & KEY_RESTART;
        return keys[j].name;
    }
    return NULL;
}

/* ---- sections ---- */

static int new_frontend(struct parser *p, const char *name)
{
    struct config *cfg = p->cfg;
    struct cfg_frontend *fe;

    if (grow(&cfg->frontends, cfg->nfrontends, sizeof(*fe)) < 0)
        return oom(p, "frontend");
    fe = &cfg->frontends[cfg->nfrontends];
    memset(fe, 0, sizeof(*fe));
    cfg->nfrontends++; /* counted at once, so config_free sees a half-built one */
    fe->line = p->lineno;
    fe->source_prefix_v6 = 64;
    fe->sni_timeout_ms = 5000;
    fe->proxy_timeout_ms = 3000;
    fe->name = lb_strdup(name);
    if (!fe->name)
        return oom(p, "frontend");
    p->idx = cfg->nfrontends - 1;
    return 0;
}

static int new_backend(struct parser *p, const char *name)
{
    struct config *cfg = p->cfg;
    struct cfg_backend *be;

    if (grow(&cfg->backends, cfg->nbackends, sizeof(*be)) < 0 ||
        grow(&p->be, cfg->nbackends, sizeof(*p->be)) < 0)
        return oom(p, "backend");
    be = &cfg->backends[cfg->nbackends];
    memset(be, 0, sizeof(*be));
    memset(&p->be[cfg->nbackends], 0, sizeof(*p->be));
    cfg->nbackends++;
    be->line = p->lineno;
    be->hash_key = HASH_SRC_IP;
    be->connect_timeout_ms = 2000;
    be->idle_timeout_ms = 3600000;
    be->retries = 2;
    be->health = HEALTH_TCP;
    be->health_expect = 200;
    be->health_interval_ms = 1000;
    be->health_timeout_ms = 500;
    be->rise = 2;
    be->fall = 3;
    be->name = lb_strdup(name);
    be->balance = lb_strdup("roundrobin");
    be->health_path = lb_strdup("/healthz");
    if (!be->name || !be->balance || !be->health_path)
        return oom(p, "backend");
    p->idx = cfg->nbackends - 1;
    return 0;
}

/* <hdr> is the text between '[' and ']', writable. */
static int begin_section(struct parser *p, char *hdr)
{
    char *kind = hdr, *name, *end;

    while (*kind == ' ' || *kind == '\t')
        kind++;
    end = kind + strlen(kind);
    while (end > kind && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    name = kind + strcspn(kind, " \t");
    if (*name) {
        *name++ = '\0';
        while (*name == ' ' || *name == '\t')
            name++;
    }
    p->seen = 0;
    memset(p->key_line, 0, sizeof(p->key_line));

    if (strcmp(kind, "global") == 0) {
        if (*name)
            return perr(p, p->lineno, "global", "takes no name");
        if (p->global_line)
            return perr(p, p->lineno, "global", "section given twice (first at line %d)",
                        p->global_line);
        p->global_line = p->lineno;
        p->sect = SECT_GLOBAL;
        return 0;
    }
    if (strcmp(kind, "frontend") == 0 || strcmp(kind, "backend") == 0) {
        if (!*name)
            return perr(p, p->lineno, kind, "missing name ([%s NAME])", kind);
        if (!name_ok(name))
            return perr(p, p->lineno, kind, "bad name '%.64s' (1-63 of A-Z a-z 0-9 _ . -)", name);
        if (kind[0] == 'f') {
            p->sect = SECT_FRONTEND;
            return new_frontend(p, name);
        }
        p->sect = SECT_BACKEND;
        return new_backend(p, name);
    }
    if (*name)
        name[-1] = ' ';
    return perr(p, p->lineno, *kind ? kind : "[]",
                "unknown section (expected [global], [frontend NAME] or [backend NAME])");
}

/* ---- phase 1: the reader and the inih handler ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A [header] line: begins the section and hands inih an empty line. */
static char *header_line(struct parser *p, char *buf, const char *s, size_t len)
{
    const char *close = memchr(s, ']', len);
    char name[CFG_LINE_MAX + 1]; /* <buf> is inih's, shorter than a long line */
    const char *rest;
    size_t n;

    if (!close) {
        perr(p, p->lineno, "syntax error", "missing ']'");
        return NULL;
    }
    for (rest = close + 1; rest < s + len && is_blank(*rest); rest++)
        ;
    if (rest < s + len && *rest != ';' && *rest != '#') {
        perr(p, p->lineno, "syntax error", "text after ']'");
        return NULL;
    }
    n = (size_t)(close - s - 1);
    memcpy(name, s + 1, n);
    name[n] = '\0';
    if (memchr(name, '[', n)) {
        perr(p, p->lineno, "syntax error", "'[' inside a section header");
        return NULL;
    }
    if (begin_section(p, name) < 0)
        return NULL;
    buf[0] = '\0';
    return buf;
}

static int handle_pair(struct parser *p, const char *name, const char *value);

/*
 * Splits "key = value" as inih does (Debian's build: '=' or ':' ends the
 * key, ';' after a blank starts an inline comment, blanks around both are
 * trimmed), for lines too long for inih's buffer (read_line). <s> holds
 * the line, terminated, and is cut in place. Returns false when it has no
 * '=' or ':' (inih's syntax error).
 */
static bool split_pair(char *s, char **key, char **value)
{
    bool was_space = false;
    char *k = s, *v, *end;

    while (*s && *s != '=' && *s != ':' && !(was_space && *s == ';')) {
        was_space = is_blank(*s);
        s++;
    }
    if (*s != '=' && *s != ':')
        return false;
    *s = '\0';
    for (v = s + 1, s = v, was_space = false; *s && !(was_space && *s == ';'); s++)
        was_space = is_blank(*s);
    *s = '\0';
    while (is_blank(*v))
        v++;
    for (end = v + strlen(v); end > v && is_blank(end[-1]);)
        *--end = '\0';
    for (end = k + strlen(k); end > k && is_blank(end[-1]);)
        *--end = '\0';
    *key = k;
    *value = v;
    return true;
}

/*
 * A line longer than inih's buffer (Debian builds libinih with 200-byte
 * lines) and up to CFG_LINE_MAX: a long allow list, health_send, a hook
 * command. It is parsed here and handed to inih as an empty line, so the
 * limit an operator meets is CFG_LINE_MAX, whatever inih was built with.
 */
static char *long_line(struct parser *p, char *buf, const char *s, size_t len)
{
    char line[CFG_LINE_MAX + 1], *key, *value;

    memcpy(line, s, len);
    line[len] = '\0';
    buf[0] = '\0';
    if (line[0] == ';' || line[0] == '#')
        return buf;
    if (!split_pair(line, &key, &value)) {
        perr(p, p->lineno, "syntax error", "expected KEY = VALUE, [SECTION] or a ; comment");
        return NULL;
    }
    return handle_pair(p, key, value) == 0 ? buf : NULL;
}

/*
 * The ini_reader: hands inih one line at a time from p->pos, counting lines.
 * Returning NULL ends the parse, which is how the first error stops it.
 */
static char *read_line(char *buf, int num, void *stream)
{
    struct parser *p = stream;
    const char *s = p->pos, *nl;
    size_t len;

    if (p->failed || !*s || num < 2)
        return NULL;
    nl = strchr(s, '\n');
    len = nl ? (size_t)(nl - s) : strlen(s);
    p->pos = nl ? nl + 1 : s + len;
    p->lineno++;
    if (len && s[len - 1] == '\r')
        len--;
    if (p->lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        len -= 3;
    }
    /* No leading blanks, so inih never takes a line as a continuation. */
    while (len && is_blank(*s)) {
        s++;
        len--;
    }
    if (len > CFG_LINE_MAX) {
        perr(p, p->lineno, "syntax error", "line longer than %d characters", CFG_LINE_MAX);
        return NULL;
    }
    if (len && *s == '[')
        return header_line(p, buf, s, len);
    if (len > (size_t)num - 1)
        return long_line(p, buf, s, len);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

static void *section_obj(struct parser *p)
{
    switch (p->sect) {
    case SECT_GLOBAL:
        return &p->cfg->global;
    case SECT_FRONTEND:
        return &p->cfg->frontends[p->idx];
    case SECT_BACKEND:
        return &p->cfg->backends[p->idx];
    default:
        return NULL;
    }
}

/* One key = value pair of the current section. Returns 0 or -1. */
static int handle_pair(struct parser *p, const char *name, const char *value)
{
    const struct key_def *k = NULL;
    size_t i;

    if (!*name)
        return perr(p, p->lineno, "syntax error", "missing key before '='");
    if (p->sect == SECT_NONE)
        return perr(p, p->lineno, name, "key outside any section");
    for (i = 0; i < NKEYS; i++) {
        if (keys[i].sect == p->sect && strcmp(keys[i].name, name) == 0) {
            k = &keys[i];
            break;
        }
    }
    if (!k && p->sect == SECT_GLOBAL)
        return perr(p, p->lineno, name, "unknown key in [global]");
    if (!k)
        return perr(p, p->lineno, name, "unknown key in [%s %s]", sect_name(p->sect),
                    p->sect == SECT_FRONTEND ? p->cfg->frontends[p->idx].name
                                             : p->cfg->backends[p->idx].name);
    if (!(k->flags & KEY_REPEAT) && (p->seen & (1ull << i)))
        return perr(p, p->lineno, name, "given twice (first at line %d)", p->key_line[i]);
    p->seen |= 1ull << i;
    p->key_line[i] = p->lineno;
    return k->parse(p, k, section_obj(p), value);
}

/* The ini_handler; <section> is always "": the reader keeps headers from inih. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct parser *p = user;

    (void)section;
    if (p->failed)
        return 0;
    return handle_pair(p, name, value) == 0;
}

/* ---- phase 2: validation ---- */

struct named {
    const char *name;
    int line;
};

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * Finds the duplicate that comes first in the file among the <n> entries of
 * <v> (sorted in place): its line in <*line>, the first occurrence in
 * <*first>. Returns true when there is one. O(n log n), so that a large
 * generated config does not take quadratic time.
 */
static bool find_dup(struct named *v, size_t n, int *line, int *first, const char **name)
{
    size_t start = 0;

    *line = 0;
    if (n < 2)
        return false;
    qsort(v, n, sizeof(*v), named_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i].name, v[start].name) != 0) {
            start = i;
            continue;
        }
        if (i == start + 1 && (!*line || v[i].line < *line)) {
            *line = v[i].line;
            *first = v[start].line;
            *name = v[i].name;
        }
    }
    return *line != 0;
}

static int check_dup_sections(struct parser *p, enum sect_kind kind)
{
    struct config *cfg = p->cfg;
    size_t n = kind == SECT_FRONTEND ? cfg->nfrontends : cfg->nbackends;
    struct named *v = lb_calloc(n ? n : 1, sizeof(*v));
    const char *name = NULL;
    int line, first = 0, r = 0;
    char key[80];

    if (!v)
        return perr(p, 0, sect_name(kind), "out of memory");
    for (size_t i = 0; i < n; i++) {
        v[i].name = kind == SECT_FRONTEND ? cfg->frontends[i].name : cfg->backends[i].name;
        v[i].line = kind == SECT_FRONTEND ? cfg->frontends[i].line : cfg->backends[i].line;
    }
    if (find_dup(v, n, &line, &first, &name)) {
        snprintf(key, sizeof(key), "%s %s", sect_name(kind), name);
        r = perr(p, line, key, "duplicate %s name (first at line %d)", sect_name(kind), first);
    }
    lb_free(v);
    return r;
}

/* The health keys whose meaning depends on `health`. */
static int check_health(struct parser *p, size_t i)
{
    struct cfg_backend *be = &p->cfg->backends[i];
    const struct be_lines *bl = &p->be[i];
    const char *why = "bad escape";
    bool database = be->health == HEALTH_PGSQL || be->health == HEALTH_MYSQL;
    bool role_aware = database || be->health == HEALTH_REDIS;
    int n;

    if (be->health_send && be->health != HEALTH_SEND_EXPECT)
        return perr(p, bl->health_send, "health_send", "only for health = send_expect");
    /* Only a check that asks the server can tell its role: elsewhere the
     * key would be silently ignored and a replica take writes. */
    if (bl->role && !role_aware)
        return perr(p, bl->role, "role",
                    "only for health = redis, pgsql or mysql (a check that asks the role)");
    if (be->health_password && !role_aware)
        return perr(p, bl->health_password, "health_password",
                    "only for health = redis, pgsql or mysql");
    if (be->health_user && !role_aware)
        return perr(p, bl->health_user, "health_user", "only for health = redis, pgsql or mysql");
    if (be->health_db && !database)
        return perr(p, bl->health_db, "health_db", "only for health = pgsql or mysql");
    if (be->health_user && !be->health_password && be->health == HEALTH_REDIS)
        return perr(p, bl->health_user, "health_user",
                    "needs health_password (AUTH takes a user and a password)");
    if (database) {
        char key[80];

        snprintf(key, sizeof(key), "backend %s", be->name);
        if (!be->health_user)
            return perr(p, be->line, key,
                        "health = %s needs health_user (who the check logs in as)",
                        be->health == HEALTH_PGSQL ? "pgsql" : "mysql");
        /* The checks' buffers hold credentials up to this long. */
        if (strlen(be->health_user) > DBW_CRED_MAX)
            return perr(p, bl->health_user, "health_user", "longer than %d bytes", DBW_CRED_MAX);
        if (be->health_password && strlen(be->health_password) > DBW_CRED_MAX)
            return perr(p, bl->health_password, "health_password", "longer than %d bytes",
                        DBW_CRED_MAX);
        if (be->health_db && strlen(be->health_db) > DBW_CRED_MAX)
            return perr(p, bl->health_db, "health_db", "longer than %d bytes", DBW_CRED_MAX);
    }
    if (be->health_port && be->health == HEALTH_NONE)
        return perr(p, bl->health_port, "health_port", "health = none probes nothing");
    for (size_t j = 0; be->health_port && j < be->nservers; j++) {
        if (be->servers[j].addr.ss.ss_family == AF_UNIX)
            return perr(p, bl->health_port, "health_port",
                        "server %s is a unix socket: it has no port to replace",
                        be->servers[j].name);
    }
    if (be->health == HEALTH_SEND_EXPECT) {
        char key[80];

        snprintf(key, sizeof(key), "backend %s", be->name);
        if (!be->health_expect_str)
            return perr(p, be->line, key,
                        "health = send_expect needs health_expect (the reply to wait for)");
        n = cfg_unescape(be->health_expect_str, &why);
        if (n < 0)
            return perr(p, bl->health_expect, "health_expect", "%s", why);
        if (n == 0)
            return perr(p, bl->health_expect, "health_expect", "must not be empty");
        be->health_expect_len = (size_t)n;
        return 0;
    }
    if (be->health_expect_str) {
        uint32_t v;

        if (cfg_parse_uint(be->health_expect_str, &v) != 0 || v < 100 || v > 599)
            return perr(p, bl->health_expect, "health_expect",
                        "expected a number from 100 to 599 (an HTTP status), got '%.64s'",
                        be->health_expect_str);
        be->health_expect = v;
    }
    return 0;
}

static int check_backend(struct parser *p, size_t i)
{
    struct cfg_backend *be = &p->cfg->backends[i];
    const struct be_lines *bl = &p->be[i];
    const char *name = NULL;
    struct named *v;
    int line, first = 0, r = 0;
    char key[80];

    be->algo = config_algo_find(be->balance);
    if (!be->algo)
        return perr(p, bl->balance ? bl->balance : be->line, "balance",
                    "unknown algorithm '%.64s' (known: %s)", be->balance, config_algo_names());
    if (be->hash_key_set && !(be->algo->caps & CFG_CAP_HASH_KEY))
        return perr(p, bl->hash_key, "hash_key", "balance = %s does not hash client addresses",
                    be->balance);
    if (check_health(p, i) < 0)
        return -1;
    for (size_t j = 0; j < be->nservers; j++) {
        if (!be->servers[j].send_proxy_set)
            be->servers[j].send_proxy = be->send_proxy;
    }
    snprintf(key, sizeof(key), "backend %s", be->name);
    if (be->nservers == 0)
        return perr(p, be->line, key, "no servers (add server = NAME ADDR)");
    v = lb_calloc(be->nservers, sizeof(*v));
    if (!v)
        return perr(p, be->line, key, "out of memory");
    for (size_t j = 0; j < be->nservers; j++) {
        v[j].name = be->servers[j].name;
        v[j].line = be->servers[j].line;
    }
    if (find_dup(v, be->nservers, &line, &first, &name))
        r = perr(p, line, "server", "duplicate server name '%s' in backend %s (first at line %d)",
                 name, be->name, first);
    lb_free(v);
    return r;
}

/* The index of [backend <name>] in <cfg>, or -1. */
static ssize_t backend_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if (strcmp(cfg->backends[i].name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static int check_frontend(struct parser *p, struct cfg_frontend *fe)
{
    struct config *cfg = p->cfg;
    char key[80];
    ssize_t b;

    snprintf(key, sizeof(key), "frontend %s", fe->name);
    if (fe->nbinds == 0)
        return perr(p, fe->line, key, "no bind (add bind = HOST:PORT)");
    /* With sni rules the default backend may be left out: a hello that
     * no rule routes is then closed. */
    if (!fe->backend && !fe->nsni)
        return perr(p, fe->line, key, "no backend (add backend = NAME)");
    for (size_t i = 0; i < fe->nsni; i++) {
        b = backend_find(cfg, fe->sni[i].backend);
        if (b < 0)
            return perr(p, fe->sni[i].line, "sni", "no [backend %s] section", fe->sni[i].backend);
        fe->sni[i].backend_idx = (size_t)b;
    }
    if (!fe->backend) {
        fe->backend_idx = SIZE_MAX;
        return 0;
    }
    b = backend_find(cfg, fe->backend);
    if (b < 0)
        return perr(p, fe->backend_line, "backend", "no [backend %s] section", fe->backend);
    fe->backend_idx = (size_t)b;
    return 0;
}

/*
 * The same address bound twice would not fail at start: with SO_REUSEPORT
 * the kernel would quietly spread connections over both frontends.
 */
static int check_dup_binds(struct parser *p)
{
    struct config *cfg = p->cfg;
    typedef char addr_text[128];
    addr_text *texts;
    struct named *v;
    const char *name = NULL;
    size_t n = 0, k = 0;
    int line, first = 0, r = 0;

    for (size_t i = 0; i < cfg->nfrontends; i++)
        n += cfg->frontends[i].nbinds;
    v = lb_calloc(n ? n : 1, sizeof(*v));
    texts = lb_calloc(n ? n : 1, sizeof(*texts));
    if (!v || !texts) {
        r = perr(p, 0, "bind", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        const struct cfg_frontend *fe = &cfg->frontends[i];

        for (size_t j = 0; j < fe->nbinds; j++, k++) {
            v[k].name = cfg_addr_str(&fe->binds[j], texts[k], sizeof(texts[k]));
            v[k].line = fe->bind_lines[j];
        }
    }
    if (find_dup(v, n, &line, &first, &name))
        r = perr(p, line, "bind", "%s is already bound at line %d", name, first);
out:
    lb_free(texts);
    lb_free(v);
    return r;
}

/* ---- servers that are ringlb itself ---- */

/*
 * <a> as the kernel will take it: a v4-mapped IPv6 address as the IPv4
 * address it maps and, for a <server> (a connect() destination), the
 * unspecified address as loopback, which is where Linux connects it.
 */
static void addr_norm(const struct cfg_addr *a, bool server, struct cfg_addr *out)
{
    *out = *a;
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;

        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            struct in_addr v4;

            memcpy(&v4, &in6->sin6_addr.s6_addr[12], sizeof(v4));
            cfg_addr_in4(out, &v4, ntohs(in6->sin6_port));
        } else if (server && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
            cfg_addr_in6(out, &in6addr_loopback, ntohs(in6->sin6_port));
        }
    } else if (a->ss.ss_family == AF_INET && server) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;

        if (in->sin_addr.s_addr == htonl(INADDR_ANY)) {
            struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};

            cfg_addr_in4(out, &lo, ntohs(in->sin_port));
        }
    }
}

/* Whether <a> and <b> (same family, IPv4 or IPv6) hold the same address. */
static bool same_ip(const struct cfg_addr *a, const struct cfg_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                  &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static uint16_t addr_port(const struct cfg_addr *a)
{
    return a->ss.ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)&a->ss)->sin_port)
                                      : ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* A wildcard bind: 0.0.0.0 or :: (IPV6_V6ONLY, so :: takes IPv6 only). */
static bool is_any(const struct cfg_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/* An address of this host: loopback (all of 127/8, ::1) or one in <local>. */
static bool is_local(const struct cfg_addr *a, const struct cfg_addr *local, size_t nlocal)
{
    if (cfg_sockaddr_loopback((const struct sockaddr *)&a->ss))
        return true;
    for (size_t i = 0; i < nlocal; i++) {
        if (same_ip(a, &local[i]))
            return true;
    }
    return false;
}

/* Whether a connect() to <server> reaches a socket bound to <bind>. */
static bool reaches_bind(const struct cfg_addr *server, const struct cfg_addr *bind,
                         const struct cfg_addr *local, size_t nlocal)
{
    struct cfg_addr s, b;

    addr_norm(server, true, &s);
    addr_norm(bind, false, &b);
    if (s.ss.ss_family != b.ss.ss_family)
        return false;
    if (s.ss.ss_family == AF_UNIX)
        return strncmp(((const struct sockaddr_un *)&s.ss)->sun_path,
                       ((const struct sockaddr_un *)&b.ss)->sun_path,
                       sizeof(((struct sockaddr_un *)0)->sun_path)) == 0;
    if (addr_port(&s) != addr_port(&b))
        return false;
    return same_ip(&s, &b) || (is_any(&b) && is_local(&s, local, nlocal));
}

/*
 * A server that is one of ringlb's own binds passes every other check, and
 * then each client is proxied back into ringlb, again and again, until
 * max_conns is spent. Servers on another host that point back here cannot
 * be seen from the config; these can.
 */
static int check_loops(struct parser *p, const struct cfg_addr *local, size_t nlocal)
{
    const struct config *cfg = p->cfg;

    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *be = &cfg->backends[i];

        for (size_t j = 0; j < be->nservers; j++) {
            const struct cfg_server *sv = &be->servers[j];

            for (size_t f = 0; f < cfg->nfrontends; f++) {
                const struct cfg_frontend *fe = &cfg->frontends[f];

                for (size_t b = 0; b < fe->nbinds; b++) {
                    if (!reaches_bind(&sv->addr, &fe->binds[b], local, nlocal))
                        continue;
                    return perr(p, sv->line, "server",
                                "%s %.128s is frontend %s's own bind %.128s (line %d): clients "
                                "would be proxied back into ringlb",
                                sv->name, sv->addr_text, fe->name, fe->bind_texts[b],
                                fe->bind_lines[b]);
                }
            }
        }
    }
    return 0;
}

int config_check_loops(const struct config *cfg, const struct cfg_addr *local, size_t nlocal,
                       char *err, size_t errlen)
{
    struct parser p = {.cfg = (struct config *)cfg, .err = err, .errlen = errlen};

    if (err && errlen)
        err[0] = '\0';
    return check_loops(&p, local, nlocal);
}

int config_local_addrs(struct cfg_addr **out, size_t *n)
{
    struct ifaddrs *ifa = NULL;
    struct cfg_addr *v = NULL;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (getifaddrs(&ifa) < 0)
        return -errno;
    for (const struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        const struct sockaddr *sa = i->ifa_addr;

        if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
            continue;
        if (grow(&v, k, sizeof(*v)) < 0) {
            freeifaddrs(ifa);
            lb_free(v);
            return -ENOMEM;
        }
        memset(&v[k], 0, sizeof(v[k]));
        if (sa->sa_family == AF_INET)
            cfg_addr_in4(&v[k], &((const struct sockaddr_in *)sa)->sin_addr, 0);
        else
            cfg_addr_in6(&v[k], &((const struct sockaddr_in6 *)sa)->sin6_addr, 0);
        k++;
    }
    freeifaddrs(ifa);
    *out = v;
    *n = k;
    return 0;
}

/*
 * The admin API changes server state for whoever reaches it. On loopback
 * or a unix socket that is the host's own users; anywhere else it is the
 * network, so a token is required (admin_token_file), as HAProxy's
 * stats socket is never opened to the network without a level.
 */
static int check_admin(struct parser *p)
{
    const struct cfg_global *g = &p->cfg->global;
    char text[128];

    if (!g->has_admin || g->admin_token_file || cfg_addr_is_loopback(&g->admin))
        return 0;
    cfg_addr_str(&g->admin, text, sizeof(text));
    return perr(p, g->admin_line ? g->admin_line : 1, "admin",
                "%s is not a loopback address: set admin_token_file (anyone who can reach it "
                "could drain, disable or reweight servers), or bind the admin API to "
                "127.0.0.1, [::1] or a unix: socket",
                text);
}

/* Faults are added and removed only through the admin API. */
static int check_chaos(struct parser *p)
{
    const struct cfg_global *g = &p->cfg->global;

    if (!g->chaos || g->has_admin)
        return 0;
    return perr(p, g->chaos_line, "chaos",
                "chaos = on needs the admin API (admin = 127.0.0.1:PORT): faults are added and "
                "removed through it");
}

static int validate(struct parser *p)
{
    struct config *cfg = p->cfg;

    if (cfg->nfrontends == 0)
        return perr(p, p->lineno ? p->lineno : 1, "frontend",
                    "no [frontend NAME] section (at least one is required)");
    if (check_dup_sections(p, SECT_BACKEND) < 0 || check_dup_sections(p, SECT_FRONTEND) < 0)
        return -1;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if (check_backend(p, i) < 0)
            return -1;
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        if (check_frontend(p, &cfg->frontends[i]) < 0)
            return -1;
    }
    if (check_dup_binds(p) < 0)
        return -1;
    if (check_admin(p) < 0 || check_chaos(p) < 0)
        return -1;
    /* The host's other addresses are config_load_file()'s to add. */
    return check_loops(p, NULL, 0);
}

/* ---- loading ---- */

static void global_defaults(struct cfg_global *g)
{
    memset(g, 0, sizeof(*g));
    g->workers = 0;
    g->io = IO_AUTO;
    g->forward = FWD_AUTO;
    g->max_conns = 0; /* auto: what the open-files limit holds (net_max_conns) */
    g->buffers = 1024;
    g->pin_workers = true;
    g->log_level = LOG_INFO;
    /* Off unless lb.ini names it: a default port would collide with some
     * exporter's (9100-9999 are all taken), and a listener nobody asked
     * for is one more thing to secure. */
    g->has_admin = false;
    g->shutdown_grace_ms = 30000;
    /* A dead client or server is dropped after 60 s idle + 6 probes 10 s
     * apart = 2 minutes, instead of idle_timeout (1 h) or, with that off,
     * never. */
    g->tcp_keepalive = true;
    g->tcp_keepalive_idle_s = 60;
    g->tcp_keepalive_intvl_s = 10;
    g->tcp_keepalive_count = 6;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *c = err; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
}

int config_load_string(const char *text, const char *name, struct config **out, char *err,
                       size_t errlen)
{
    struct parser p = {.pos = text, .err = err, .errlen = errlen};
    int r;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!name)
        name = "<string>";
    p.cfg = lb_calloc(1, sizeof(*p.cfg));
    if (!p.cfg)
        goto err_nomem;
    p.cfg->path = lb_strdup(name);
    if (!p.cfg->path)
        goto err_nomem;
    global_defaults(&p.cfg->global);

    r = ini_parse_stream(read_line, &p, on_pair, &p);
    if (r > 0 && (!p.failed || r < p.err_line)) {
        /* inih found a line that is neither a comment nor key = value. */
        p.failed = false;
        perr(&p, r, "syntax error", "expected KEY = VALUE, [SECTION] or a ; comment");
        goto err;
    }
    if (r < 0 && !p.failed)
        goto err_nomem;
    if (p.failed || validate(&p) < 0)
        goto err;
    lb_free(p.be);
    *out = p.cfg;
    return 0;

err_nomem:
    set_err(err, errlen, "%s: out of memory", name);
err:
    lb_free(p.be);
    config_free(p.cfg);
    return -1;
}

/* Reads all of <f> into a NUL-terminated buffer. Returns 0 or -errno. */
static int slurp(FILE *f, char **out, size_t *outlen)
{
    size_t len = 0, cap = 0, n;
    char *buf = NULL, *q;

    for (;;) {
        if (cap - len < 4096) {
            if (cap >= CFG_FILE_MAX) {
                lb_free(buf);
                return -EFBIG;
            }
            cap = cap ? cap * 2 : 8192;
            q = lb_realloc(buf, cap + 1);
            if (!q) {
                lb_free(buf);
                return -ENOMEM;
            }
            buf = q;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;

        lb_free(buf);
        return -e;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m)   ? "a FIFO"
           : S_ISDIR(m)  ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/*
 * Opens <path> for reading only if it is a regular file. O_NONBLOCK keeps
 * open() itself from waiting for a writer when <path> is a FIFO; fstat()
 * of the opened descriptor (not stat() of the name) is what is read.
 */
static FILE *open_regular(const char *path, char *err, size_t errlen, int *ret)
{
    struct stat st;
    FILE *f;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        *ret = -errno;
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(-*ret));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        *ret = -errno;
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(-*ret));
        goto err;
    }
    if (!S_ISREG(st.st_mode)) {
        *ret = -EINVAL;
        set_err(err, errlen, "%s: cannot read: %s, not a regular file", path,
                file_kind(st.st_mode));
        goto err;
    }
    f = fdopen(fd, "rb");
    if (!f) {
        *ret = -errno;
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(-*ret));
        goto err;
    }
    return f;
err:
    close(fd);
    return NULL;
}

int config_read_admin_token(struct config *cfg, char *err, size_t errlen)
{
    struct cfg_global *g = &cfg->global;
    const char *path = g->admin_token_file;
    char buf[CFG_TOKEN_MAX + 2], ferr[256];
    struct stat st;
    size_t n;
    FILE *f;
    int r;

    lb_free(g->admin_token);
    g->admin_token = NULL;
    if (!path)
        return 0;
    f = open_regular(path, ferr, sizeof(ferr), &r);
    if (!f)
        goto fail;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IRWXO)) {
        fclose(f);
        snprintf(ferr, sizeof(ferr), "%s: others may read or write it (mode %04o): chmod o-rwx",
                 path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The first line is the token; a trailing newline is not part of it. */
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    if (n > CFG_TOKEN_MAX) {
        snprintf(ferr, sizeof(ferr), "%s: the token is longer than %d characters", path,
                 CFG_TOKEN_MAX);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (buf[i] < 0x21 || buf[i] > 0x7e) {
            snprintf(ferr, sizeof(ferr),
                     "%s: the token has a character other than printable ASCII at %zu", path,
                     i + 1);
            goto fail;
        }
    }
    if (n < CFG_TOKEN_MIN) {
        snprintf(ferr, sizeof(ferr), "%s: the token has %zu characters, at least %d are needed",
                 path, n, CFG_TOKEN_MIN);
        goto fail;
    }
    g->admin_token = lb_strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    if (!g->admin_token) {
        snprintf(ferr, sizeof(ferr), "out of memory");
        goto fail;
    }
    return 0;
fail:
    explicit_bzero(buf, sizeof(buf));
    set_err(err, errlen, "%s:%d: admin_token_file: %s", cfg->path, g->admin_token_line, ferr);
    return -1;
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    struct cfg_addr *local = NULL;
    size_t nlocal = 0;
    FILE *f;
    char *text = NULL;
    const char *nul;
    size_t len = 0;
    int r;

    *out = NULL;
    f = open_regular(path, err, errlen, &r);
    if (!f)
        return r;
    errno = 0;
    r = slurp(f, &text, &len);
    fclose(f);
    if (r < 0) {
        set_err(err, errlen, "%s: cannot read: %s", path,
                r == -EFBIG ? "file larger than 16 MiB" : strerror(-r));
        return r;
    }
    nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;

        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        set_err(err, errlen, "%s:%d: syntax error: NUL byte", path, line);
        lb_free(text);
        return -1;
    }
    r = config_load_string(text, path, out, err, errlen);
    lb_free(text);
    if (r < 0)
        return r;
    /* Without the host's address list, loopback and the binds themselves
     * have still been checked. */
    (void)config_local_addrs(&local, &nlocal);
    if (config_check_loops(*out, local, nlocal, err, errlen) < 0 ||
        config_read_admin_token(*out, err, errlen) < 0) {
        config_free(*out);
        *out = NULL;
        r = -1;
    }
    lb_free(local);
    return r;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        struct cfg_frontend *fe = &cfg->frontends[i];

        for (size_t j = 0; j < fe->nbinds; j++)
            lb_free(fe->bind_texts[j]);
        lb_free(fe->binds);
        lb_free(fe->bind_texts);
        lb_free(fe->bind_lines);
        lb_free(fe->bind_opts);
        lb_free(fe->allow);
        lb_free(fe->deny);
        lb_free(fe->proxy_trusted);
        for (size_t j = 0; j < fe->nsni; j++) {
            lb_free(fe->sni[j].host);
            lb_free(fe->sni[j].backend);
        }
        lb_free(fe->sni);
        lb_free(fe->name);
        lb_free(fe->backend);
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        struct cfg_backend *be = &cfg->backends[i];

        for (size_t j = 0; j < be->nservers; j++) {
            lb_free(be->servers[j].name);
            lb_free(be->servers[j].addr_text);
        }
        lb_free(be->servers);
        lb_free(be->name);
        lb_free(be->balance);
        lb_free(be->health_path);
        lb_free(be->health_expect_str);
        lb_free(be->health_send);
        lb_free(be->health_user);
        lb_free(be->health_password);
        lb_free(be->health_db);
        cfg_command_free(&be->on_down);
        cfg_command_free(&be->on_up);
    }
    lb_free(cfg->frontends);
    lb_free(cfg->backends);
    lb_free(cfg->global.user);
    lb_free(cfg->global.group);
    lb_free(cfg->global.admin_token_file);
    lb_free(cfg->global.admin_token);
    lb_free(cfg->global.upgrade_socket);
    lb_free(cfg->path);
    lb_free(cfg);
}
