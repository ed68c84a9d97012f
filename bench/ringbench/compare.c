/*
 * compare.c - `ringbench compare --config FILE`.
 *
 * The config names targets and workloads:
 *
 *   rounds = 3               ; interleaved rounds (at least 3 unless QUICK)
 *   baseline = direct        ; ratios are to this target (default: the first)
 *   plot = lat               ; the workload drawn by --svg (default: the
 *                            ; first latency workload)
 *   [target direct]
 *   addr = 127.0.0.1:9000
 *   [workload lat]
 *   run = latency --conns 8 --rate 10k --duration 5s
 *
 * Each workload's `run` is an ordinary ringbench command line without
 * --target; it is checked when the file is read, with FILE:LINE errors.
 * Every round runs every workload against every target in turn
 * (A B C A B C ...), so drift and other load on the machine hit all
 * targets alike; the table shows medians over the rounds, and latency
 * histograms of all rounds are merged per target for the plot.
 */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/alloc.h"
#include "client.h"
#include "hist.h"
#include "report.h"
#include "rt.h"

#define MAX_TARGETS   8
#define MAX_WORKLOADS 8
#define MAX_ROUNDS    50
#define MAX_ARGV      48
#define NMETRICS      6

struct target {
    char *name;
    char *addr;
    int line;
};

struct workload {
    char *name;
    char *run; /* the command line, split in place into argv */
    int argc;
    char *argv[MAX_ARGV];
    int line;
    enum rb_cmd cmd;
    char what[160]; /* the workload line of the report: rate, conns, size, duration */
    /* [target][round][metric]; NAN where that run failed */
    double v[MAX_TARGETS][MAX_ROUNDS][NMETRICS];
    char why[MAX_TARGETS][160]; /* the first failure of each target, "" when none */
    struct rb_hist hist[MAX_TARGETS];
};

struct cmp {
    const char *path;
    unsigned rounds;
    char *baseline, *plot;
    struct target t[MAX_TARGETS];
    unsigned nt;
    struct workload *w[MAX_WORKLOADS];
    unsigned nw;
    unsigned errors;
    char load_start[64], load_end[64]; /* /proc/loadavg's first three fields */
};

/* The metrics a workload kind reports, and whether lower is better. */
static const struct {
    const char *label;
    bool lower_better;
} metrics[][NMETRICS] = {
    [RB_CMD_LATENCY] = {{"req/s", false},
                        {"p50 us", true},
                        {"p90 us", true},
                        {"p99 us", true},
                        {"p99.9 us", true},
                        {"max us", true}},
    [RB_CMD_CONNRATE] = {{"conn/s", false}, {"p50 us", true}, {"p99 us", true}},
    [RB_CMD_THROUGHPUT] = {{"Gbit/s", false}},
};

static unsigned nmetrics(enum rb_cmd c)
{
    return c == RB_CMD_LATENCY ? 6 : c == RB_CMD_CONNRATE ? 3 : 1;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

static int cfg_err(struct cmp *c, int line, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s:%d: ", c->path, line);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return -EINVAL;
}

static int set_key(struct cmp *c, const char *sect, char *name, char *key, char *val, int line)
{
    if (!*sect) {
        if (strcmp(key, "rounds") == 0) {
            char *end;
            long n = strtol(val, &end, 10);

            if (*end || n < 1 || n > MAX_ROUNDS)
                return cfg_err(c, line, "rounds: '%s' is not a number of rounds (1..50)%s", val,
                               "");
            c->rounds = (unsigned)n;
        } else if (strcmp(key, "baseline") == 0 || strcmp(key, "plot") == 0) {
            char **dst = key[0] == 'b' ? &c->baseline : &c->plot;

            lb_free(*dst);
            *dst = lb_strdup(val);
        } else {
            return cfg_err(c, line, "%s: unknown key (rounds, baseline, plot)%s", key, "");
        }
        return 0;
    }
    if (strcmp(sect, "target") == 0) {
        struct target *t = &c->t[c->nt - 1];

        if (strcmp(key, "addr") != 0)
            return cfg_err(c, line, "%s: unknown key in [target %s] (addr)", key, name);
        lb_free(t->addr);
        t->addr = lb_strdup(val);
        return 0;
    }
    if (strcmp(key, "run") != 0)
        return cfg_err(c, line, "%s: unknown key in [workload %s] (run)", key, name);
    lb_free(c->w[c->nw - 1]->run);
    c->w[c->nw - 1]->run = lb_strdup(val);
    c->w[c->nw - 1]->line = line;
    return 0;
}

static int open_section(struct cmp *c, char *hdr, char *sect, size_t slen, int line)
{
    char *sp = strchr(hdr, ' ');
    char *name = sp ? trim(sp + 1) : NULL;

    if (sp)
        *sp = 0;
    if (!name || !*name || (strcmp(hdr, "target") != 0 && strcmp(hdr, "workload") != 0))
        return cfg_err(c, line, "[%s]: sections are [target NAME] and [workload NAME]%s", hdr, "");
    snprintf(sect, slen, "%s", hdr);
    if (hdr[0] == 't') {
        if (c->nt == MAX_TARGETS)
            return cfg_err(c, line, "[target %s]: at most 8 targets%s", name, "");
        c->t[c->nt].name = lb_strdup(name);
        c->t[c->nt].line = line;
        c->nt++;
    } else {
        struct workload *w;

        if (c->nw == MAX_WORKLOADS)
            return cfg_err(c, line, "[workload %s]: at most 8 workloads%s", name, "");
        w = lb_calloc(1, sizeof(*w));
        if (!w)
            return -ENOMEM;
        w->name = lb_strdup(name);
        w->line = line;
        c->w[c->nw++] = w;
    }
    return 0;
}

static int load(struct cmp *c)
{
    FILE *f = fopen(c->path, "r");
    char buf[1024], sect[16] = "", name[128] = "";
    int line = 0, ret = 0;

    if (!f) {
        fprintf(stderr, "ringbench compare: %s: %s\n", c->path, strerror(errno));
        return -errno;
    }
    while (ret == 0 && fgets(buf, sizeof(buf), f)) {
        char *s = trim(buf), *eq;

        line++;
        if (!*s || *s == ';' || *s == '#')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');

            if (!end) {
                ret = cfg_err(c, line, "missing ']' in '%s'%s", s, "");
                break;
            }
            *end = 0;
            ret = open_section(c, trim(s + 1), sect, sizeof(sect), line);
            if (ret == 0)
                snprintf(name, sizeof(name), "%s",
                         sect[0] == 't' ? c->t[c->nt - 1].name : c->w[c->nw - 1]->name);
            continue;
        }
        eq = strchr(s, '=');
        if (!eq) {
            ret = cfg_err(c, line, "'%s': expected KEY = VALUE%s", s, "");
            break;
        }
        *eq = 0;
        /* A comment after the value, as in lb.ini. */
        if (strstr(eq + 1, " ;"))
            *strstr(eq + 1, " ;") = 0;
        ret = set_key(c, sect, name, trim(s), trim(eq + 1), line);
    }
    fclose(f);
    return ret;
}

/* The workload line of the report, from its parsed command line. */
static void describe_workload(struct workload *w, const struct rb_opts *o)
{
    char load[64];
    double dur = (double)o->duration_ns / 1e9, warm = (double)o->warmup_ns / 1e9;

    if (o->cmd == RB_CMD_LATENCY && o->closed)
        snprintf(load, sizeof(load), "closed loop, %u conns, %u B", o->conns, o->size);
    else if (o->cmd == RB_CMD_LATENCY)
        snprintf(load, sizeof(load), "open loop %.0f req/s, %u conns, %u B", o->rate, o->conns,
                 o->size);
    else if (o->cmd == RB_CMD_CONNRATE)
        snprintf(load, sizeof(load), "%u concurrent, %u B per connection", o->conns, o->size);
    else
        snprintf(load, sizeof(load), "%u streams, direction %s", o->streams,
                 rb_dir_name(o->direction));
    snprintf(w->what, sizeof(w->what), "%s: %s, %g s measured after %g s warm-up",
             rb_cmd_name(o->cmd), load, dur, warm);
}

/* /proc/loadavg's 1, 5 and 15 minute averages: other work on the machine
 * skews whichever target it overlaps, so the report says how busy it was. */
static void read_loadavg(char *buf, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a, b, c;

    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(buf, len, "unknown");
    if (f)
        fclose(f);
}

/* Checks every workload's command line against every target address. */
static int validate(struct cmp *c)
{
    char err[256];

    if (!c->nt || !c->nw) {
        fprintf(stderr, "%s: needs at least one [target NAME] and one [workload NAME]\n", c->path);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->nt; i++) {
        if (!c->t[i].addr)
            return cfg_err(c, c->t[i].line, "[target %s]: addr is required%s", c->t[i].name, "");
    }
    if (!c->baseline)
        c->baseline = lb_strdup(c->t[0].name);
    for (unsigned i = 0; i < c->nw; i++) {
        struct workload *w = c->w[i];
        struct rb_opts o;
        char *save = NULL, *tok;

        if (!w->run)
            return cfg_err(c, w->line, "[workload %s]: run is required%s", w->name, "");
        for (tok = strtok_r(w->run, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            if (w->argc == MAX_ARGV - 4)
                return cfg_err(c, w->line, "run: too many words%s%s", "", "");
            w->argv[w->argc++] = tok;
        }
        w->argv[w->argc] = "--target";
        w->argv[w->argc + 2] = "--quiet";
        for (unsigned t = 0; t < c->nt; t++) {
            w->argv[w->argc + 1] = c->t[t].addr;
            if (rb_args_parse(w->argc + 3, w->argv, &o, true, err, sizeof(err)) < 0)
                return cfg_err(c, w->line, "run: %s%s", err, "");
            if (o.cmd == RB_CMD_SERVE || o.cmd == RB_CMD_COMPARE || o.hist_path || o.json || o.help)
                return cfg_err(c, w->line, "run: use latency, connrate or throughput%s%s", "",
                               " (without --json/--hist/--help)");
        }
        w->cmd = o.cmd;
        describe_workload(w, &o);
        for (unsigned t = 0; t < c->nt; t++) {
            if (rb_hist_init(&w->hist[t]) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static unsigned base_index(const struct cmp *c)
{
    for (unsigned i = 0; i < c->nt; i++) {
        if (strcmp(c->t[i].name, c->baseline) == 0)
            return i;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const struct cmp *c, const struct workload *w, unsigned t, unsigned m)
{
    double v[MAX_ROUNDS];
    unsigned n = 0;

    for (unsigned r = 0; r < c->rounds; r++) {
        if (!isnan(w->v[t][r][m]))
            v[n++] = w->v[t][r][m];
    }
    if (!n)
        return NAN;
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void run_one(struct cmp *c, struct workload *w, unsigned t, unsigned round)
{
    struct rb_opts o;
    struct rb_result res;
    char err[256];

    w->argv[w->argc + 1] = c->t[t].addr;
    for (unsigned m = 0; m < NMETRICS; m++)
        w->v[t][round][m] = NAN;
    /* Validated already; parsed again because rb_opts points into argv. */
    if (rb_args_parse(w->argc + 3, w->argv, &o, true, err, sizeof(err)) < 0)
        return;
    fprintf(stderr, "round %u/%u  %-12s %-16s ...", round + 1, c->rounds, w->name, c->t[t].name);
    fflush(stderr);
    if (rb_client_run(&o, &res) < 0) {
        c->errors++;
        fprintf(stderr, " failed to start\n");
        if (!w->why[t][0])
            snprintf(w->why[t], sizeof(w->why[t]), "could not start");
        return;
    }
    if (rb_report_status(&o, &res) != 0) {
        char why[sizeof(w->why[t])];

        /* A run with errors, or one that measured its own queue, is no
         * number to put beside the others: its cells stay empty (NAN) and
         * the table says why instead of showing 0. */
        c->errors++;
        if (res.errors)
            snprintf(why, sizeof(why), "%llu errors, first: %.100s", (unsigned long long)res.errors,
                     res.first_error[0] ? res.first_error : "?");
        else if (res.behind)
            snprintf(why, sizeof(why), "behind schedule: %.0f of %.0f req/s", res.rate, o.rate);
        else
            snprintf(why, sizeof(why), "%s",
                     w->cmd == RB_CMD_THROUGHPUT ? "data check failed" : "nothing measured");
        fprintf(stderr, " failed: %s\n", why);
        if (!w->why[t][0])
            memcpy(w->why[t], why, sizeof(why));
        rb_hist_free(&res.hist);
        return;
    }
    switch (w->cmd) {
    case RB_CMD_LATENCY:
        w->v[t][round][0] = res.rate;
        w->v[t][round][1] = (double)rb_hist_percentile(&res.hist, 50) / 1e3;
        w->v[t][round][2] = (double)rb_hist_percentile(&res.hist, 90) / 1e3;
        w->v[t][round][3] = (double)rb_hist_percentile(&res.hist, 99) / 1e3;
        w->v[t][round][4] = (double)rb_hist_percentile(&res.hist, 99.9) / 1e3;
        w->v[t][round][5] = (double)res.hist.max / 1e3;
        fprintf(stderr, " %.0f req/s p50 %.1f us p99 %.1f us\n", res.rate, w->v[t][round][1],
                w->v[t][round][3]);
        break;
    case RB_CMD_CONNRATE:
        w->v[t][round][0] = res.rate;
        w->v[t][round][1] = (double)rb_hist_percentile(&res.hist, 50) / 1e3;
        w->v[t][round][2] = (double)rb_hist_percentile(&res.hist, 99) / 1e3;
        fprintf(stderr, " %.0f conn/s\n", res.rate);
        break;
    default:
        w->v[t][round][0] = res.checksum_ok ? res.gbps : NAN;
        fprintf(stderr, " %.2f Gbit/s, data %s\n", res.gbps, res.checksum_ok ? "ok" : "FAILED");
        break;
    }
    rb_hist_merge(&w->hist[t], &res.hist);
    rb_hist_free(&res.hist);
}

/* Text inside a table cell: a '|' would end the cell. */
static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void print_value(FILE *f, double v)
{
    fprintf(f, v >= 100 ? " %.0f |" : " %.2f |", v);
}

static void print_table(const struct cmp *c, FILE *f)
{
    unsigned b = base_index(c);

    fprintf(f,
            "%u round%s, interleaved; medians; baseline %s; load average (1 5 15 min) %s at the "
            "start, %s at the end\n\n",
            c->rounds, c->rounds == 1 ? "" : "s", c->t[b].name, c->load_start, c->load_end);
    for (unsigned i = 0; i < c->nw; i++)
        fprintf(f, "- %s: %s\n", c->w[i]->name, c->w[i]->what);
    fprintf(f, "\n| workload | metric |");
    for (unsigned t = 0; t < c->nt; t++)
        fprintf(f, " %s |", c->t[t].name);
    for (unsigned t = 0; t < c->nt; t++) {
        if (t != b)
            fprintf(f, " %s / %s |", c->t[t].name, c->t[b].name);
    }
    for (unsigned t = 0; t < c->nt; t++) {
        if (t != b)
            fprintf(f, " %s: added us over %s |", c->t[t].name, c->t[b].name);
    }
    fprintf(f, "\n|---|---|");
    for (unsigned t = 0; t < 3 * c->nt - 2; t++)
        fprintf(f, "---:|");
    fputc('\n', f);
    for (unsigned i = 0; i < c->nw; i++) {
        const struct workload *w = c->w[i];

        for (unsigned m = 0; m < nmetrics(w->cmd); m++) {
            double base = median(c, w, b, m);
            bool is_us = strstr(metrics[w->cmd][m].label, " us") != NULL;

            fprintf(f, "| %s | %s |", m ? "" : w->name, metrics[w->cmd][m].label);
            for (unsigned t = 0; t < c->nt; t++) {
                double v = median(c, w, t, m);

                if (!isnan(v)) {
                    print_value(f, v);
                } else if (m == 0 && w->why[t][0]) {
                    fputs(" failed: ", f);
                    md_text(f, w->why[t]);
                    fputs(" |", f);
                } else {
                    fputs(" failed |", f);
                }
            }
            for (unsigned t = 0; t < c->nt; t++) {
                double v = median(c, w, t, m);

                if (t == b)
                    continue;
                if (isnan(v) || isnan(base) || base == 0)
                    fprintf(f, " — |");
                else
                    fprintf(f, " %.2f× |", v / base);
            }
            for (unsigned t = 0; t < c->nt; t++) {
                double v = median(c, w, t, m);

                if (t == b)
                    continue;
                if (!is_us || isnan(v) || isnan(base))
                    fprintf(f, " — |");
                else
                    fprintf(f, " %+.1f |", v - base);
            }
            fputc('\n', f);
        }
    }
    /* The medians hide how noisy the rounds were: if one column's rounds
     * spread more than the gap between two columns, the ratio means nothing. */
    fprintf(f, "\nPer round (first metric of each workload):\n\n| workload | target |");
    for (unsigned r = 0; r < c->rounds; r++)
        fprintf(f, " %u |", r + 1);
    fprintf(f, "\n|---|---|");
    for (unsigned r = 0; r < c->rounds; r++)
        fprintf(f, "---:|");
    fputc('\n', f);
    for (unsigned i = 0; i < c->nw; i++) {
        const struct workload *w = c->w[i];

        for (unsigned t = 0; t < c->nt; t++) {
            fprintf(f, "| %s | %s |", t ? "" : w->name, c->t[t].name);
            for (unsigned r = 0; r < c->rounds; r++) {
                if (isnan(w->v[t][r][0]))
                    fputs(" failed |", f);
                else
                    print_value(f, w->v[t][r][0]);
            }
            fputc('\n', f);
        }
    }
}

static void print_json(const struct cmp *c, FILE *f)
{
    fprintf(f, "{\"rounds\": %u, \"baseline\": \"%s\", \"workloads\": {", c->rounds, c->baseline);
    for (unsigned i = 0; i < c->nw; i++) {
        const struct workload *w = c->w[i];

        fprintf(f, "%s\"%s\": {", i ? ", " : "", w->name);
        for (unsigned t = 0; t < c->nt; t++) {
            fprintf(f, "%s\"%s\": {", t ? ", " : "", c->t[t].name);
            for (unsigned m = 0; m < nmetrics(w->cmd); m++) {
                double v = median(c, w, t, m);

                fprintf(f, "%s\"%s\": ", m ? ", " : "", metrics[w->cmd][m].label);
                if (isnan(v))
                    fputs("null", f);
                else
                    fprintf(f, "%.3f", v);
            }
            fputc('}', f);
        }
        fputc('}', f);
    }
    fprintf(f, "}, \"errors\": %u}\n", c->errors);
}

static int write_svg(const struct cmp *c, const char *path)
{
    const struct workload *w = NULL;
    const char *names[MAX_TARGETS];
    const struct rb_hist *hists[MAX_TARGETS];
    char title[256];
    FILE *f;
    int ret;

    for (unsigned i = 0; i < c->nw && !w; i++) {
        if (c->plot ? strcmp(c->w[i]->name, c->plot) == 0 : c->w[i]->cmd == RB_CMD_LATENCY)
            w = c->w[i];
    }
    if (!w || w->cmd == RB_CMD_THROUGHPUT) {
        fprintf(stderr, "ringbench compare: no latency workload to plot\n");
        return -EINVAL;
    }
    for (unsigned t = 0; t < c->nt; t++) {
        names[t] = c->t[t].name;
        hists[t] = &w->hist[t];
    }
    snprintf(title, sizeof(title), "%s: latency by percentile, %u round%s merged", w->name,
             c->rounds, c->rounds == 1 ? "" : "s");
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ringbench compare: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    ret = rb_svg_percentiles(f, title, names, hists, c->nt);
    if (fclose(f) != 0 && ret == 0)
        ret = -errno;
    return ret;
}

static void cmp_free(struct cmp *c)
{
    for (unsigned i = 0; i < c->nt; i++) {
        lb_free(c->t[i].name);
        lb_free(c->t[i].addr);
    }
    for (unsigned i = 0; i < c->nw; i++) {
        for (unsigned t = 0; t < MAX_TARGETS; t++)
            rb_hist_free(&c->w[i]->hist[t]);
        lb_free(c->w[i]->name);
        lb_free(c->w[i]->run);
        lb_free(c->w[i]);
    }
    lb_free(c->baseline);
    lb_free(c->plot);
}

int rb_compare_main(const struct rb_opts *o)
{
    struct cmp c = {.path = o->config_path, .rounds = 3};
    int rc = 2;

    if (load(&c) < 0 || validate(&c) < 0)
        goto out;
    fprintf(stderr, "ringbench compare: %u targets x %u workloads x %u rounds, interleaved\n", c.nt,
            c.nw, c.rounds);
    read_loadavg(c.load_start, sizeof(c.load_start));
    for (unsigned r = 0; r < c.rounds; r++) {
        for (unsigned i = 0; i < c.nw; i++) {
            for (unsigned t = 0; t < c.nt; t++)
                run_one(&c, c.w[i], t, r);
        }
    }
    read_loadavg(c.load_end, sizeof(c.load_end));
    if (o->json)
        print_json(&c, stdout);
    else
        print_table(&c, stdout);
    if (o->md_path) {
        FILE *f = fopen(o->md_path, "w");

        if (!f) {
            fprintf(stderr, "ringbench compare: %s: %s\n", o->md_path, strerror(errno));
        } else {
            print_table(&c, f);
            fclose(f);
        }
    }
    rc = c.errors ? 1 : 0;
    if (o->svg_path && write_svg(&c, o->svg_path) < 0)
        rc = 1;
out:
    cmp_free(&c);
    return rc;
}
