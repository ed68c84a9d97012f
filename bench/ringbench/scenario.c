/*
 * scenario.c - the scenario parser, the lb.ini template expansion, the
 * /metrics sample reader and the judging of assertions (see scenario.h).
 *
 * Every loop here is bounded by the input's length; nothing allocates
 * except the one histogram a latency judgement merges into.
 */
#include "scenario.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../config/values.h"
#include "args.h"

#define SEC_NS 1000000000ULL

static const char *const act_names[] = {"fault add", "fault remove", "fault clear", "kill", "stop",
                                        "cont",      "restart",      "reload",      "hook"};

const char *rb_scn_act_name(enum rb_scn_act a)
{
    return (unsigned)a < sizeof(act_names) / sizeof(act_names[0]) ? act_names[a] : "?";
}

void rb_scn_step_str(const struct rb_scn *s, const struct rb_scn_step *st, char *buf, size_t len)
{
    switch (st->act) {
    case RB_ACT_FAULT_ADD:
    case RB_ACT_FAULT_REMOVE:
        snprintf(buf, len, "%s %s", rb_scn_act_name(st->act), st->name);
        break;
    case RB_ACT_KILL:
    case RB_ACT_STOP:
    case RB_ACT_CONT:
    case RB_ACT_RESTART:
        snprintf(buf, len, "%s %s", rb_scn_act_name(st->act), s->backends[st->backend].name);
        break;
    case RB_ACT_HOOK:
        snprintf(buf, len, "hook %.60s%s", st->text, strlen(st->text) > 60 ? "..." : "");
        break;
    default:
        snprintf(buf, len, "%s", rb_scn_act_name(st->act));
        break;
    }
}

/* ------------------------------------------------------------ the parser */

struct ps {
    struct rb_scn *s;
    int line;
    char *err;
    size_t errlen;
    bool have_load, have_duration;
};

static int perr(struct ps *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(struct ps *p, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->s->path, p->line);

    if (n < 0 || (size_t)n >= p->errlen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next word of <*pp> into <w> (<wlen> bytes); "" at the end of the
 * line, NULL (with the error set) when the word does not fit. */
static const char *word(struct ps *ps, const char **pp, char *w, size_t wlen)
{
    const char *p = *pp;
    size_t n = 0;

    while (is_blank(*p))
        p++;
    while (*p && !is_blank(*p)) {
        if (n + 1 >= wlen) {
            w[0] = 0;
            perr(ps, "'%.20s...': a word longer than %zu bytes", *pp, wlen - 1);
            return NULL;
        }
        w[n++] = *p++;
    }
    w[n] = 0;
    while (is_blank(*p))
        p++;
    *pp = p;
    return w;
}

static bool valid_name(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len >= RB_SCN_MAX_NAME)
        return false;
    for (; *n; n++) {
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == '-' || *n == '.'))
            return false;
    }
    return true;
}

/* A time in the scenario: a duration, a multiple of one tick (100 ms). */
static int parse_time(struct ps *p, const char *w, const char *what, uint64_t *ns)
{
    int r = rb_parse_duration_ns(w, ns);

    if (r == -EINVAL || !*w)
        return perr(p, "%s: '%s' is not a time (e.g. 500ms, 4s, 1m)", what, w);
    if (r < 0 || *ns > RB_SCN_MAX_DUR_NS)
        return perr(p, "%s: '%s' is out of range (at most 600s)", what, w);
    if (*ns % RB_SCN_TICK_NS)
        return perr(p, "%s: '%s' is not a multiple of 100ms (counts are kept per 100 ms)", what, w);
    return 0;
}

/* "A-B": a window of whole seconds (latencies are kept per second). */
static int parse_window(struct ps *p, const char *w, uint64_t *from, uint64_t *to)
{
    char a[32], b[32];
    const char *dash = strchr(w, '-');
    size_t la;

    if (!dash || (la = (size_t)(dash - w)) == 0 || la >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
        return perr(p, "during: '%s' is not a window START-END (e.g. 4s-8s)", w);
    memcpy(a, w, la);
    a[la] = 0;
    strcpy(b, dash + 1);
    if (parse_time(p, a, "during", from) < 0 || parse_time(p, b, "during", to) < 0)
        return -EINVAL;
    if (*from % SEC_NS || *to % SEC_NS)
        return perr(p, "during: '%s': a window starts and ends on whole seconds", w);
    if (*from >= *to)
        return perr(p, "during: '%s' ends before it starts", w);
    return 0;
}

static int parse_cmp(struct ps *p, const char *w, enum rb_scn_cmp *c)
{
    static const char *const ops[] = {"<", "<=", ">", ">="};

    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(w, ops[i]) == 0) {
            *c = (enum rb_scn_cmp)i;
            return 0;
        }
    }
    return perr(p, "'%s': expected one of < <= > >=", w);
}

/* "backend/server" of ringlb's config. */
static int parse_server(struct ps *p, const char *w, struct rb_scn_assert *a)
{
    const char *slash = strchr(w, '/');
    size_t lb;

    if (!slash || (lb = (size_t)(slash - w)) == 0 || lb >= RB_SCN_MAX_NAME)
        return perr(p, "'%s' is not BACKEND/SERVER as ringlb's config names them", w);
    memcpy(a->backend, w, lb);
    a->backend[lb] = 0;
    if (!valid_name(a->backend) || !valid_name(slash + 1))
        return perr(p, "'%s' is not BACKEND/SERVER as ringlb's config names them", w);
    strcpy(a->server, slash + 1);
    return 0;
}

static int find_backend(const struct rb_scn *s, const char *name)
{
    for (unsigned i = 0; i < s->nbackends; i++) {
        if (strcmp(s->backends[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int copy_rest(struct ps *p, const char *key, const char *rest, char *dst, size_t len);

/* The names the runner gives the template itself. */
static bool reserved_var(const char *n)
{
    static const char *const names[] = {"servers", "frontend", "admin", "dir", "work", "ringbench"};

    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(n, names[i]) == 0)
            return true;
    }
    return false;
}

static int d_backend(struct ps *p, const char *rest)
{
    struct rb_scn *s = p->s;
    struct rb_scn_backend *b;
    char w[RB_SCN_MAX_TEXT];
    bool reserved = false;

    if (s->nbackends == RB_SCN_MAX_BACKENDS)
        return perr(p, "backend: at most %d backends", RB_SCN_MAX_BACKENDS);
    b = &s->backends[s->nbackends];
    if (!word(p, &rest, w, sizeof(w)) || !valid_name(w))
        return perr(p, "backend: '%s' is not a name (letters, digits, _ - ., up to 31)",
                    w[0] ? w : "(none)");
    if (find_backend(s, w) >= 0)
        return perr(p, "backend: '%s' is defined twice", w);
    for (unsigned i = 0; i < s->nvars; i++) {
        if (strcmp(s->vars[i].name, w) == 0)
            reserved = true;
    }
    if (reserved || reserved_var(w))
        return perr(p, "backend: '%s' is a name the template uses for something else", w);
    strcpy(b->name, w);
    strcpy(b->listen, "127.0.0.1:0");
    b->line = p->line;
    while (*rest) {
        char v[RB_SCN_MAX_TEXT];

        if (!word(p, &rest, w, sizeof(w)) || !word(p, &rest, v, sizeof(v)) || !*v)
            return perr(p, "backend %s: expected KEY VALUE pairs (listen ADDR, delay D)", b->name);
        if (strcmp(w, "listen") == 0) {
            struct cfg_addr a;
            const char *why = "bad address";
            char tmp[sizeof(b->listen)];
            size_t n = strlen(v);

            /* Port 0 (the kernel picks) is what cfg_parse_addr refuses. */
            if (n >= sizeof(tmp))
                return perr(p, "backend %s: listen: '%s' is too long", b->name, v);
            memcpy(tmp, v, n + 1);
            if (n >= 2 && strcmp(tmp + n - 2, ":0") == 0)
                tmp[n - 1] = '1';
            if (cfg_parse_addr(tmp, 0, &a, &why) < 0)
                return perr(p, "backend %s: listen: '%s': %s", b->name, v, why);
            strcpy(b->listen, v);
        } else if (strcmp(w, "delay") == 0) {
            if (rb_parse_duration_ns(v, &b->delay_ns) < 0 || b->delay_ns > 60 * SEC_NS)
                return perr(p, "backend %s: delay: '%s' is not a duration up to 60s", b->name, v);
        } else {
            return perr(p, "backend %s: unknown key '%s' (listen, delay)", b->name, w);
        }
    }
    s->nbackends++;
    return 0;
}

static int d_var(struct ps *p, const char *rest)
{
    struct rb_scn *s = p->s;
    struct rb_scn_setvar *v;
    char w[RB_SCN_MAX_TEXT];

    if (s->nvars == RB_SCN_MAX_VARS)
        return perr(p, "var: at most %d variables", RB_SCN_MAX_VARS);
    v = &s->vars[s->nvars];
    if (!word(p, &rest, w, sizeof(w)) || !valid_name(w))
        return perr(p, "var: '%s' is not a name (letters, digits, _ - ., up to 31)",
                    w[0] ? w : "(none)");
    if (reserved_var(w) || find_backend(s, w) >= 0)
        return perr(p,
                    "var: ${%s} is the runner's (a backend or one of servers, frontend, admin, "
                    "dir, work, ringbench)",
                    w);
    for (unsigned i = 0; i < s->nvars; i++) {
        if (strcmp(s->vars[i].name, w) == 0)
            return perr(p, "var: '%s' is set twice", w);
    }
    strcpy(v->name, w);
    s->nvars++;
    return copy_rest(p, "var", rest, v->value, sizeof(v->value));
}

static int d_load(struct ps *p, const char *rest)
{
    struct rb_scn_load *l = &p->s->load;
    char w[64], v[64];
    bool have_rate = false, have_conns = false;

    if (p->have_load)
        return perr(p, "load: given twice");
    p->have_load = true;
    if (!word(p, &rest, w, sizeof(w)) || (strcmp(w, "latency") != 0 && strcmp(w, "connrate") != 0))
        return perr(p, "load: '%s': expected latency or connrate", w);
    l->kind = w[0] == 'l' ? RB_LOAD_LATENCY : RB_LOAD_CONNRATE;
    l->conns = 1;
    l->size = 64;
    l->timeout_ns = SEC_NS;
    l->workers = 1;
    while (*rest) {
        uint64_t u;
        uint32_t u32;

        if (!word(p, &rest, w, sizeof(w)) || !word(p, &rest, v, sizeof(v)) || !*v)
            return perr(p, "load: expected KEY VALUE pairs (rate, conns, size, timeout, workers)");
        if (strcmp(w, "rate") == 0) {
            if (rb_parse_rate(v, &l->rate) < 0 || l->rate > 1e6)
                return perr(p, "load: rate: '%s' is not a rate in 1..1000000 per second", v);
            have_rate = true;
        } else if (strcmp(w, "conns") == 0 && l->kind == RB_LOAD_LATENCY) {
            if (cfg_parse_uint(v, &u32) < 0 || u32 < 1 || u32 > 1000)
                return perr(p, "load: conns: '%s' is not a number in 1..1000", v);
            l->conns = u32;
            have_conns = true;
        } else if (strcmp(w, "size") == 0) {
            if (rb_parse_size(v, &u) < 0 || u < 1 || u > 65536)
                return perr(p, "load: size: '%s' is not a size in 1..64k", v);
            l->size = (uint32_t)u;
        } else if (strcmp(w, "timeout") == 0) {
            if (rb_parse_duration_ns(v, &l->timeout_ns) < 0 || l->timeout_ns < SEC_NS / 100 ||
                l->timeout_ns > 60 * SEC_NS)
                return perr(p, "load: timeout: '%s' is not a duration in 10ms..60s", v);
        } else if (strcmp(w, "workers") == 0) {
            /* Each keeps a histogram a second: 4 x 600 x 35 KB at most. */
            if (cfg_parse_uint(v, &u32) < 0 || u32 < 1 || u32 > 4)
                return perr(p, "load: workers: '%s' is not a number in 1..4", v);
            l->workers = u32;
        } else {
            return perr(p, "load %s: unknown key '%s' (rate, %ssize, timeout, workers)",
                        l->kind == RB_LOAD_LATENCY ? "latency" : "connrate", w,
                        l->kind == RB_LOAD_LATENCY ? "conns, " : "");
        }
    }
    if (!have_rate)
        return perr(p, "load: rate R is required");
    if (l->kind == RB_LOAD_LATENCY && !have_conns)
        return perr(p, "load latency: conns N is required");
    return 0;
}

static int d_at(struct ps *p, const char *rest)
{
    struct rb_scn *s = p->s;
    struct rb_scn_step *st;
    char w[RB_SCN_MAX_TEXT];
    unsigned i;

    if (s->nsteps == RB_SCN_MAX_STEPS)
        return perr(p, "at: at most %d steps", RB_SCN_MAX_STEPS);
    st = &s->steps[s->nsteps];
    memset(st, 0, sizeof(*st));
    st->line = p->line;
    if (!word(p, &rest, w, sizeof(w)) || parse_time(p, w, "at", &st->at_ns) < 0)
        return -EINVAL;
    if (!word(p, &rest, w, sizeof(w)) || !*w)
        return perr(p, "at: expected an action (fault, kill, stop, cont, restart, reload, hook)");
    if (strcmp(w, "fault") == 0) {
        if (!word(p, &rest, w, sizeof(w)))
            return perr(p, "fault: expected add, remove or clear");
        if (strcmp(w, "clear") == 0) {
            st->act = RB_ACT_FAULT_CLEAR;
        } else if (strcmp(w, "add") == 0 || strcmp(w, "remove") == 0) {
            st->act = w[0] == 'a' ? RB_ACT_FAULT_ADD : RB_ACT_FAULT_REMOVE;
            if (!word(p, &rest, w, sizeof(w)) || !valid_name(w))
                return perr(p, "fault %s: expected a fault name (letters, digits, _ - ., up to 31)",
                            rb_scn_act_name(st->act) + 6);
            strcpy(st->name, w);
            if (st->act == RB_ACT_FAULT_ADD) {
                size_t n = strlen(rest);

                /* The body goes to ringlb as is (ringlb parses it with
                 * jansson and answers 400 with a reason); the name is the
                 * word before it, so that remove and the plot can use it. */
                if (n < 2 || rest[0] != '{' || rest[n - 1] != '}')
                    return perr(p, "fault add %s: expected a JSON object {...} after the name",
                                st->name);
                if (strstr(rest, "\"name\""))
                    return perr(p,
                                "fault add %s: leave \"name\" out of the body: the word after "
                                "'fault add' is the fault's name",
                                st->name);
                if (n >= RB_SCN_MAX_TEXT - RB_SCN_MAX_NAME - 16)
                    return perr(p, "fault add %s: the body is longer than %d bytes", st->name,
                                RB_SCN_MAX_TEXT - RB_SCN_MAX_NAME - 17);
                memcpy(st->text, rest, n + 1);
                rest += n;
            }
        } else {
            return perr(p, "fault: '%s': expected add, remove or clear", w);
        }
    } else if (strcmp(w, "hook") == 0) {
        size_t n = strlen(rest);

        st->act = RB_ACT_HOOK;
        if (!n)
            return perr(p, "hook: expected a shell command");
        if (n >= RB_SCN_MAX_TEXT)
            return perr(p, "hook: the command is longer than %d bytes", RB_SCN_MAX_TEXT - 1);
        memcpy(st->text, rest, n + 1);
        rest += n;
    } else if (strcmp(w, "reload") == 0) {
        st->act = RB_ACT_RELOAD;
    } else {
        for (i = RB_ACT_KILL; i <= RB_ACT_RESTART; i++) {
            if (strcmp(w, act_names[i]) == 0)
                break;
        }
        if (i > RB_ACT_RESTART)
            return perr(p,
                        "at: '%s' is not an action (fault, kill, stop, cont, restart, reload, "
                        "hook)",
                        w);
        st->act = (enum rb_scn_act)i;
        if (!word(p, &rest, w, sizeof(w)) || (st->backend = find_backend(s, w)) < 0)
            return perr(p, "%s: '%s' is not a backend defined above", act_names[i],
                        w[0] ? w : "(none)");
    }
    if (*rest)
        return perr(p, "%s: unexpected '%s' at the end of the line", rb_scn_act_name(st->act),
                    rest);
    s->nsteps++;
    return 0;
}

static int d_assert(struct ps *p, const char *rest)
{
    struct rb_scn *s = p->s;
    struct rb_scn_assert *a;
    char w[64], v[64];

    if (s->nasserts == RB_SCN_MAX_ASSERTS)
        return perr(p, "assert: at most %d assertions", RB_SCN_MAX_ASSERTS);
    a = &s->asserts[s->nasserts];
    memset(a, 0, sizeof(*a));
    a->line = p->line;
    a->to_ns = UINT64_MAX;
    snprintf(a->text, sizeof(a->text), "%s", rest);
    if (!word(p, &rest, w, sizeof(w)) || !*w)
        return perr(p, "assert: expected failed, recovered, p50..max, share or serving");
    if (strcmp(w, "recovered") == 0 || strcmp(w, "serving") == 0) {
        a->check = w[0] == 'r' ? RB_CHK_RECOVERED : RB_CHK_SERVING;
        a->cmp = RB_CMP_LE;
        if (a->check == RB_CHK_SERVING &&
            (!word(p, &rest, v, sizeof(v)) || parse_server(p, v, a) < 0))
            return -EINVAL;
        if (!word(p, &rest, v, sizeof(v)) || strcmp(v, "within") != 0 ||
            !word(p, &rest, v, sizeof(v)) || parse_time(p, v, "within", &a->within_ns) < 0)
            return p->err[0] ? -EINVAL : perr(p, "%s: expected 'within T after S'", w);
        if (!word(p, &rest, v, sizeof(v)) || strcmp(v, "after") != 0 ||
            !word(p, &rest, v, sizeof(v)) || parse_time(p, v, "after", &a->from_ns) < 0)
            return p->err[0] ? -EINVAL : perr(p, "%s: expected 'within T after S'", w);
        a->limit = (double)a->within_ns / 1e9;
        if (a->check == RB_CHK_RECOVERED && *rest) {
            if (!word(p, &rest, v, sizeof(v)) || strcmp(v, "until") != 0 ||
                !word(p, &rest, v, sizeof(v)) || parse_time(p, v, "until", &a->to_ns) < 0)
                return p->err[0] ? -EINVAL : perr(p, "recovered: expected 'until T' at the end");
            if (a->to_ns <= a->from_ns)
                return perr(p, "recovered: until %s is not after %.1fs", v, a->from_ns / 1e9);
        }
    } else {
        if (strcmp(w, "failed") == 0) {
            a->check = RB_CHK_FAILED;
        } else if (strcmp(w, "share") == 0) {
            a->check = RB_CHK_SHARE;
            if (!word(p, &rest, v, sizeof(v)) || parse_server(p, v, a) < 0)
                return -EINVAL;
        } else {
            static const struct {
                const char *name;
                double pct;
            } pcts[] = {{"p50", 50},     {"p90", 90},    {"p99", 99},
                        {"p99.9", 99.9}, {"p999", 99.9}, {"max", 100}};
            unsigned i;

            for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
                if (strcmp(w, pcts[i].name) == 0)
                    break;
            }
            if (i == sizeof(pcts) / sizeof(pcts[0]))
                return perr(p,
                            "assert: '%s': expected failed, recovered, p50, p90, p99, p99.9, "
                            "max, share or serving",
                            w);
            a->check = RB_CHK_LATENCY;
            a->pct = pcts[i].pct;
        }
        if (!word(p, &rest, v, sizeof(v)) || parse_cmp(p, v, &a->cmp) < 0)
            return -EINVAL;
        if (!word(p, &rest, v, sizeof(v)) || !*v)
            return perr(p, "%s: expected a value after the comparison", w);
        if (a->check == RB_CHK_FAILED) {
            uint32_t n;

            if (cfg_parse_uint(v, &n) < 0)
                return perr(p, "failed: '%s' is not a count", v);
            a->limit = n;
        } else if (a->check == RB_CHK_SHARE) {
            char *end;

            a->limit = strtod(v, &end);
            if (*end || end == v || !(a->limit >= 0 && a->limit <= 1))
                return perr(p, "share: '%s' is not a fraction in 0..1", v);
        } else {
            uint64_t ns;

            if (rb_parse_duration_ns(v, &ns) < 0 ||
                (v[0] >= '0' && v[0] <= '9' && !strpbrk(v, "smh")))
                return perr(p, "%s: '%s' is not a latency with its unit (e.g. 800us, 50ms, 1s)", w,
                            v);
            a->limit = (double)ns / 1e6; /* judged in ms, as reported */
        }
        if (*rest) {
            if (!word(p, &rest, v, sizeof(v)) || strcmp(v, "during") != 0 ||
                !word(p, &rest, v, sizeof(v)) || parse_window(p, v, &a->from_ns, &a->to_ns) < 0)
                return p->err[0] ? -EINVAL
                                 : perr(p, "%s: expected 'during START-END' at the end", w);
        } else if (a->check == RB_CHK_SHARE) {
            return perr(p, "share: expected 'during START-END' (e.g. during 6s-10s)");
        }
    }
    if (*rest)
        return perr(p, "assert: unexpected '%s' at the end of the line", rest);
    s->nasserts++;
    return 0;
}

static int copy_rest(struct ps *p, const char *key, const char *rest, char *dst, size_t len)
{
    size_t n = strlen(rest);

    if (!n)
        return perr(p, "%s: expected a value", key);
    if (n >= len)
        return perr(p, "%s: longer than %zu bytes", key, len - 1);
    memcpy(dst, rest, n + 1);
    return 0;
}

static int addr_value(struct ps *p, const char *key, const char *rest, char *dst, size_t len)
{
    struct cfg_addr a;
    const char *why = "bad address";

    if (copy_rest(p, key, rest, dst, len) < 0)
        return -EINVAL;
    if (cfg_parse_addr(dst, CFG_ADDR_UNIX, &a, &why) < 0)
        return perr(p, "%s: '%s': %s", key, dst, why);
    return 0;
}

static int directive(struct ps *p, const char *line)
{
    struct rb_scn *s = p->s;
    const char *rest = line;
    char key[16];

    if (!word(p, &rest, key, sizeof(key)))
        return perr(p, "'%.20s...': not a directive", line);
    if (strcmp(key, "title") == 0)
        return copy_rest(p, key, rest, s->title, sizeof(s->title));
    if (strcmp(key, "ringlb") == 0)
        return copy_rest(p, key, rest, s->ringlb, sizeof(s->ringlb));
    if (strcmp(key, "target") == 0)
        return addr_value(p, key, rest, s->target, sizeof(s->target));
    if (strcmp(key, "admin") == 0)
        return addr_value(p, key, rest, s->admin, sizeof(s->admin));
    if (strcmp(key, "backend") == 0)
        return d_backend(p, rest);
    if (strcmp(key, "var") == 0)
        return d_var(p, rest);
    if (strcmp(key, "load") == 0)
        return d_load(p, rest);
    if (strcmp(key, "at") == 0)
        return d_at(p, rest);
    if (strcmp(key, "assert") == 0)
        return d_assert(p, rest);
    if (strcmp(key, "duration") == 0) {
        char w[64];

        if (p->have_duration)
            return perr(p, "duration: given twice");
        p->have_duration = true;
        if (!word(p, &rest, w, sizeof(w)) || *rest)
            return perr(p, "duration: expected one time");
        if (parse_time(p, w, "duration", &s->duration_ns) < 0)
            return -EINVAL;
        if (s->duration_ns < SEC_NS || s->duration_ns % SEC_NS)
            return perr(p, "duration: '%s' is not a whole number of seconds, at least 1s", w);
        return 0;
    }
    return perr(p,
                "'%s' is not a directive (title, ringlb, target, admin, backend, load, "
                "duration, at, assert)",
                key);
}

/* What only the whole file can tell. */
static int check_whole(struct ps *p)
{
    struct rb_scn *s = p->s;

    p->line = 0;
    if (!s->ringlb[0] && !s->target[0])
        return perr(p, "name what to test: 'ringlb FILE' (started by the runner) or 'target "
                       "ADDR' (one already running)");
    if (s->ringlb[0] && (s->target[0] || s->admin[0]))
        return perr(p, "'ringlb' starts its own ringlb: 'target' and 'admin' are for one "
                       "already running");
    if (!p->have_load)
        return perr(p, "'load latency|connrate rate R ...' is required");
    if (!p->have_duration)
        return perr(p, "'duration D' is required");
    for (unsigned i = 0; i < s->nsteps; i++) {
        const struct rb_scn_step *st = &s->steps[i];

        p->line = st->line;
        if (st->at_ns >= s->duration_ns)
            return perr(p, "at %.1fs: after the end of the run (duration %.0fs)", st->at_ns / 1e9,
                        s->duration_ns / 1e9);
        if (st->act == RB_ACT_RELOAD && !s->ringlb[0])
            return perr(p,
                        "reload: only a ringlb the runner started (ringlb FILE) can be reloaded");
        if (st->act <= RB_ACT_FAULT_CLEAR && !s->ringlb[0] && !s->admin[0])
            return perr(p, "%s: needs ringlb's admin API ('admin ADDR' with 'target')",
                        rb_scn_act_name(st->act));
    }
    for (unsigned i = 0; i < s->nasserts; i++) {
        const struct rb_scn_assert *a = &s->asserts[i];

        p->line = a->line;
        if (a->from_ns >= s->duration_ns || (a->to_ns != UINT64_MAX && a->to_ns > s->duration_ns))
            return perr(p, "assert %s: the window lies past the end of the run (duration %.0fs)",
                        a->text, s->duration_ns / 1e9);
        if ((a->check == RB_CHK_SHARE || a->check == RB_CHK_SERVING) && !s->ringlb[0] &&
            !s->admin[0])
            return perr(p, "assert %s: needs ringlb's /metrics ('admin ADDR' with 'target')",
                        a->text);
    }
    /* Steps run in time order; a stable sort keeps two at the same time
     * in the order written. */
    for (unsigned i = 1; i < s->nsteps; i++) {
        struct rb_scn_step tmp = s->steps[i];
        unsigned j = i;

        while (j > 0 && s->steps[j - 1].at_ns > tmp.at_ns) {
            s->steps[j] = s->steps[j - 1];
            j--;
        }
        s->steps[j] = tmp;
    }
    return 0;
}

int rb_scn_parse(const char *text, size_t len, const char *path, struct rb_scn *s, char *err,
                 size_t errlen)
{
    struct ps p = {.s = s, .err = err, .errlen = errlen};
    char line[RB_SCN_MAX_LINE];
    size_t off = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", path);
    if (!errlen)
        return -EINVAL;
    err[0] = 0;
    if (len > RB_SCN_MAX_BYTES)
        return perr(&p, "longer than %d bytes", RB_SCN_MAX_BYTES);
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
        char *b = line, *e;

        p.line++;
        if (n >= sizeof(line))
            return perr(&p, "line longer than %d bytes", RB_SCN_MAX_LINE - 1);
        memcpy(line, text + off, n);
        line[n] = 0;
        off += n + 1;
        if (strlen(line) != n)
            return perr(&p, "a NUL byte in the line");
        while (is_blank(*b))
            b++;
        e = b + strlen(b);
        while (e > b && (is_blank(e[-1]) || e[-1] == '\r'))
            *--e = 0;
        if (!*b || *b == '#')
            continue;
        for (const char *c = b; *c; c++) {
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return perr(&p, "a control character (0x%02x) in the line", (unsigned char)*c);
        }
        if (directive(&p, b) < 0) {
            if (!err[0])
                perr(&p, "malformed line");
            return -EINVAL;
        }
    }
    if (!s->title[0]) {
        const char *base = strrchr(path, '/');

        snprintf(s->title, sizeof(s->title), "%s", base ? base + 1 : path);
    }
    return check_whole(&p);
}

/* ------------------------------------------------------------ template */

int rb_scn_expand(const char *tpl, size_t len, const char *path, const struct rb_scn_var *vars,
                  unsigned nvars, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t o = 0;
    int line = 1;

    if (outlen == 0)
        return -E2BIG;
    for (size_t i = 0; i < len; i++) {
        const char *ins = NULL;
        char one = tpl[i];
        size_t n = 1;

        if (one == '\0') {
            snprintf(err, errlen, "%s:%d: a NUL byte", path, line);
            return -EINVAL;
        }
        if (one == '\n')
            line++;
        if (one == '$' && i + 1 < len && tpl[i + 1] == '$') {
            i++;
        } else if (one == '$' && i + 1 < len && tpl[i + 1] == '{') {
            size_t j = i + 2, nl;
            unsigned k;

            while (j < len && j - i < RB_SCN_MAX_NAME + 2 && tpl[j] != '}' && tpl[j] != '\n')
                j++;
            if (j >= len || tpl[j] != '}') {
                snprintf(err, errlen, "%s:%d: '${' without a '}' closing a short name", path, line);
                return -EINVAL;
            }
            nl = j - (i + 2);
            for (k = 0; k < nvars; k++) {
                if (strlen(vars[k].name) == nl && memcmp(vars[k].name, tpl + i + 2, nl) == 0)
                    break;
            }
            if (k == nvars) {
                snprintf(err, errlen,
                         "%s:%d: ${%.*s}: unknown (the scenario's backends and vars, servers, "
                         "frontend, admin, dir, work, ringbench)",
                         path, line, (int)nl, tpl + i + 2);
                return -EINVAL;
            }
            ins = vars[k].value;
            n = strlen(ins);
            i = j;
        }
        if (o + n >= outlen)
            return -E2BIG;
        memcpy(out + o, ins ? ins : &one, n);
        o += n;
    }
    out[o] = 0;
    return (int)o;
}

/* ------------------------------------------------------------ /metrics */

/* Reads one label value starting after its opening quote at <*pp> (< end)
 * into <val> (unescaped, cut at <vlen> - 1 and then marked as too long).
 * Returns false on a malformed value. */
static bool label_value(const char **pp, const char *end, char *val, size_t vlen, bool *too_long)
{
    const char *p = *pp;
    size_t n = 0;

    *too_long = false;
    while (p < end && *p != '"') {
        char c = *p++;

        if (c == '\\') {
            if (p >= end)
                return false;
            c = *p == 'n' ? '\n' : *p;
            p++;
        }
        if (n + 1 < vlen)
            val[n++] = c;
        else
            *too_long = true;
    }
    if (p >= end)
        return false;
    val[n] = 0;
    *pp = p + 1;
    return true;
}

/* One sample line [p, end): whether it matches, and its value. */
static bool sample_line(const char *p, const char *end, const char *name, const char *backend,
                        const char *server, double *value)
{
    size_t nl = strlen(name);
    bool b_ok = false, s_ok = server == NULL;
    char num[64], *e;
    size_t n = 0;

    if ((size_t)(end - p) <= nl || memcmp(p, name, nl) != 0)
        return false;
    p += nl;
    if (*p == '{') {
        p++;
        while (p < end && *p != '}') {
            const char *k = p;
            char val[RB_SCN_MAX_NAME + 1];
            bool too_long;
            size_t kl;

            while (p < end && *p != '=' && *p != '}' && *p != ',')
                p++;
            if (p + 1 >= end || *p != '=' || p[1] != '"')
                return false;
            kl = (size_t)(p - k);
            p += 2;
            if (!label_value(&p, end, val, sizeof(val), &too_long))
                return false;
            if (!too_long && kl == 7 && memcmp(k, "backend", 7) == 0)
                b_ok = strcmp(val, backend) == 0;
            else if (!too_long && server && kl == 6 && memcmp(k, "server", 6) == 0)
                s_ok = strcmp(val, server) == 0;
            if (p < end && *p == ',')
                p++;
        }
        if (p >= end)
            return false;
        p++;
    }
    if (p >= end || *p != ' ')
        return false;
    while (p < end && *p == ' ')
        p++;
    while (p < end && *p != ' ' && n + 1 < sizeof(num))
        num[n++] = *p++;
    num[n] = 0;
    *value = strtod(num, &e);
    return b_ok && s_ok && n > 0 && *e == 0 && isfinite(*value);
}

unsigned rb_scn_metric_sum(const char *text, size_t len, const char *name, const char *backend,
                           const char *server, double *sum)
{
    const char *p = text, *end = text + len;
    unsigned hits = 0;

    *sum = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        double v;

        if (*p != '#' && sample_line(p, le, name, backend, server, &v)) {
            *sum += v;
            hits++;
        }
        p = le + (nl ? 1 : 0);
    }
    return hits;
}

/* ------------------------------------------------------------ judging */

uint64_t rb_scn_next_step_after(const struct rb_scn *s, uint64_t from_ns)
{
    for (unsigned i = 0; i < s->nsteps; i++) {
        if (s->steps[i].at_ns > from_ns)
            return s->steps[i].at_ns;
    }
    return s->duration_ns;
}

static bool compare(enum rb_scn_cmp c, double v, double limit)
{
    switch (c) {
    case RB_CMP_LT:
        return v < limit;
    case RB_CMP_LE:
        return v <= limit;
    case RB_CMP_GT:
        return v > limit;
    default:
        return v >= limit;
    }
}

static uint64_t window_end(const struct rb_scn *s, const struct rb_scn_assert *a)
{
    return a->to_ns == UINT64_MAX ? s->duration_ns : a->to_ns;
}

static void judge_failed(const struct rb_scn *s, const struct rb_scn_assert *a,
                         const struct rb_scn_record *r, struct rb_scn_verdict *v)
{
    uint64_t n = 0, end = window_end(s, a) / RB_SCN_TICK_NS;

    for (uint64_t t = a->from_ns / RB_SCN_TICK_NS; t < end && t < r->nticks; t++)
        n += r->tick_failed[t];
    v->measured = true;
    v->value = (double)n;
    snprintf(v->shown, sizeof(v->shown), "%llu", (unsigned long long)n);
}

static void judge_recovered(const struct rb_scn *s, const struct rb_scn_assert *a,
                            const struct rb_scn_record *r, struct rb_scn_verdict *v)
{
    uint64_t end = (a->to_ns == UINT64_MAX ? rb_scn_next_step_after(s, a->from_ns) : a->to_ns) /
                   RB_SCN_TICK_NS;
    uint64_t start = a->from_ns / RB_SCN_TICK_NS, last = 0;
    uint64_t failed = 0;

    for (uint64_t t = start; t < end && t < r->nticks; t++) {
        if (r->tick_failed[t]) {
            last = t + 1;
            failed += r->tick_failed[t];
        }
    }
    v->measured = true;
    v->value = last ? (double)((last - start) * RB_SCN_TICK_NS) / 1e9 : 0.0;
    snprintf(v->shown, sizeof(v->shown), "%.1f s (%llu failed, last at %.1f s)", v->value,
             (unsigned long long)failed, last ? (double)(last * RB_SCN_TICK_NS) / 1e9 : 0.0);
    if (!last)
        snprintf(v->shown, sizeof(v->shown), "0 s (no failure)");
}

static void judge_latency(const struct rb_scn *s, const struct rb_scn_assert *a,
                          const struct rb_scn_record *r, struct rb_scn_verdict *v)
{
    struct rb_hist h;
    uint64_t end = window_end(s, a) / SEC_NS;

    if (rb_hist_init(&h) < 0) {
        snprintf(v->shown, sizeof(v->shown), "out of memory");
        return;
    }
    for (uint64_t i = a->from_ns / SEC_NS; i < end && i < r->nsecs; i++) {
        if (r->secs[i].hist)
            rb_hist_merge(&h, r->secs[i].hist);
    }
    if (h.count) {
        uint64_t ns = a->pct >= 100 ? h.max : rb_hist_percentile(&h, a->pct);

        v->measured = true;
        v->value = (double)ns / 1e6;
        snprintf(v->shown, sizeof(v->shown), "%.2f ms (%llu requests)", (double)ns / 1e6,
                 (unsigned long long)h.count);
    } else {
        snprintf(v->shown, sizeof(v->shown), "no request completed in the window");
    }
    rb_hist_free(&h);
}

static void judge_share(const struct rb_scn *s, const struct rb_scn_assert *a,
                        const struct rb_scn_record *r, unsigned idx, struct rb_scn_verdict *v)
{
    const struct rb_scn_sample *sm = r->samples ? r->samples[idx] : NULL;
    unsigned n = r->nsamples ? r->nsamples[idx] : 0;
    const struct rb_scn_sample *first = NULL, *last = NULL;
    uint64_t end = window_end(s, a);

    for (unsigned i = 0; i < n; i++) {
        if (!sm[i].ok || sm[i].t_ns + RB_SCN_TICK_NS < a->from_ns || sm[i].t_ns > end)
            continue;
        if (!first)
            first = &sm[i];
        last = &sm[i];
    }
    if (!first || first == last || last->backend_conns <= first->backend_conns) {
        snprintf(v->shown, sizeof(v->shown), "no connections counted in the window");
        return;
    }
    v->measured = true;
    v->value =
        (last->server_conns - first->server_conns) / (last->backend_conns - first->backend_conns);
    snprintf(v->shown, sizeof(v->shown), "%.3f (%.0f of %.0f connections)", v->value,
             last->server_conns - first->server_conns, last->backend_conns - first->backend_conns);
}

static void judge_serving(const struct rb_scn_assert *a, const struct rb_scn_record *r,
                          unsigned idx, struct rb_scn_verdict *v)
{
    const struct rb_scn_sample *sm = r->samples ? r->samples[idx] : NULL;
    unsigned n = r->nsamples ? r->nsamples[idx] : 0;
    const struct rb_scn_sample *prev = NULL;
    bool seen_down = false;

    /*
     * Down is seen in a sample, or told by a state change counted between
     * two samples (a server can go down and come back between scrapes).
     * Serving again: up in two samples in a row with no state change
     * between them and more connections in the second; its time is an
     * upper bound, within one scrape interval.
     */
    for (unsigned i = 0; i < n; i++) {
        bool changed;

        if (!sm[i].ok)
            continue;
        changed = prev && sm[i].changes > prev->changes;
        if (sm[i].t_ns >= a->from_ns) {
            if (!sm[i].up || changed)
                seen_down = true;
            else if (seen_down && prev && prev->up && sm[i].server_conns > prev->server_conns) {
                v->measured = true;
                v->value = (double)(sm[i].t_ns - a->from_ns) / 1e9;
                snprintf(v->shown, sizeof(v->shown), "%.2f s", v->value);
                return;
            }
        }
        prev = &sm[i];
    }
    snprintf(v->shown, sizeof(v->shown), "%s",
             seen_down ? "never up and taking connections again" : "never seen down");
}

void rb_scn_judge(const struct rb_scn *s, const struct rb_scn_assert *a,
                  const struct rb_scn_record *r, unsigned idx, struct rb_scn_verdict *v)
{
    memset(v, 0, sizeof(*v));
    switch (a->check) {
    case RB_CHK_FAILED:
        judge_failed(s, a, r, v);
        break;
    case RB_CHK_RECOVERED:
        judge_recovered(s, a, r, v);
        break;
    case RB_CHK_LATENCY:
        judge_latency(s, a, r, v);
        break;
    case RB_CHK_SHARE:
        judge_share(s, a, r, idx, v);
        break;
    case RB_CHK_SERVING:
        judge_serving(a, r, idx, v);
        break;
    }
    v->pass = v->measured && compare(a->cmp, v->value, a->limit);
}
