/*
 * report.c - text and JSON results, exit status, SVG percentile plot.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static double us(const struct rb_hist *h, double p)
{
    return (double)rb_hist_percentile(h, p) / 1e3;
}

static void describe(const struct rb_opts *o, const struct rb_result *r, FILE *f)
{
    double warm = (double)o->warmup_ns / 1e9;

    switch (o->cmd) {
    case RB_CMD_LATENCY:
        if (o->closed)
            fprintf(f, "latency %s: closed loop, %u conns, %u B requests", o->target_text, o->conns,
                    o->size);
        else
            fprintf(f, "latency %s: open loop at %.0f req/s, %u conns, %u B requests",
                    o->target_text, o->rate, o->conns, o->size);
        break;
    case RB_CMD_CONNRATE:
        fprintf(f, "connrate %s: %u concurrent, %u B exchange per connection", o->target_text,
                o->conns, o->size);
        break;
    default:
        fprintf(f, "throughput %s: %u streams, direction %s", o->target_text, o->streams,
                rb_dir_name(o->direction));
        break;
    }
    fprintf(f, ", %.1f s measured (after %.1f s warm-up), %u workers%s\n", r->secs, warm,
            r->workers, r->interrupted ? ", INTERRUPTED" : "");
}

void rb_report_text(const struct rb_opts *o, const struct rb_result *r, FILE *f)
{
    const struct rb_hist *h = &r->hist;

    describe(o, r, f);
    switch (o->cmd) {
    case RB_CMD_LATENCY:
    case RB_CMD_CONNRATE:
        fprintf(f, "  %s %llu  errors %llu  %.1f %s\n",
                o->cmd == RB_CMD_LATENCY ? "requests" : "connections", (unsigned long long)r->count,
                (unsigned long long)r->errors, r->rate,
                o->cmd == RB_CMD_LATENCY ? "req/s" : "conn/s");
        fprintf(f,
                "  latency (us)  min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
                "p99.99 %.1f  max %.1f\n",
                h->count ? (double)h->min / 1e3 : 0.0, us(h, 50), us(h, 90), us(h, 99), us(h, 99.9),
                us(h, 99.99), (double)h->max / 1e3);
        if (r->behind)
            fprintf(f, "  BEHIND SCHEDULE: %.0f of %.0f req/s, %llu requests never sent\n", r->rate,
                    o->rate, (unsigned long long)r->backlog);
        if (o->cmd == RB_CMD_LATENCY && o->closed)
            fprintf(f, "  note: closed loop: each connection waits for its reply before the "
                       "next request, so a stall delays the requests that would have queued "
                       "behind it instead of measuring them (coordinated omission). Use --rate "
                       "for latency under a fixed offered load.\n");
        break;
    default:
        fprintf(f, "  bytes %llu  %.2f Gbit/s  data check %s  errors %llu\n",
                (unsigned long long)r->bytes, r->gbps, r->checksum_ok ? "ok" : "FAILED",
                (unsigned long long)r->errors);
        break;
    }
    if (r->first_error[0])
        fprintf(f, "  first error: %s\n", r->first_error);
}

void rb_report_json(const struct rb_opts *o, const struct rb_result *r, FILE *f)
{
    const struct rb_hist *h = &r->hist;

    switch (o->cmd) {
    case RB_CMD_LATENCY:
        fprintf(f,
                "{\"requests\": %llu, \"errors\": %llu, \"rps\": %.1f, \"p50_us\": %.2f, "
                "\"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"p9999_us\": %.2f, "
                "\"max_us\": %.2f, \"min_us\": %.2f, \"mean_us\": %.2f, \"mode\": \"%s\", "
                "\"rate\": %.1f, \"conns\": %u, \"size\": %u",
                (unsigned long long)r->count, (unsigned long long)r->errors, r->rate, us(h, 50),
                us(h, 90), us(h, 99), us(h, 99.9), us(h, 99.99), (double)h->max / 1e3,
                h->count ? (double)h->min / 1e3 : 0.0, rb_hist_mean(h) / 1e3,
                o->closed ? "closed" : "open", o->closed ? 0.0 : o->rate, o->conns, o->size);
        if (!o->closed)
            fprintf(f, ", \"behind_schedule\": %s, \"backlog\": %llu", r->behind ? "true" : "false",
                    (unsigned long long)r->backlog);
        break;
    case RB_CMD_CONNRATE:
        fprintf(f,
                "{\"connections\": %llu, \"errors\": %llu, \"cps\": %.1f, \"p50_us\": %.2f, "
                "\"p90_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f, \"conns\": %u",
                (unsigned long long)r->count, (unsigned long long)r->errors, r->rate, us(h, 50),
                us(h, 90), us(h, 99), (double)h->max / 1e3, o->conns);
        break;
    default:
        fprintf(f,
                "{\"bytes\": %llu, \"gbps\": %.3f, \"checksum_ok\": %s, \"errors\": %llu, "
                "\"streams\": %u, \"direction\": \"%s\"",
                (unsigned long long)r->bytes, r->gbps, r->checksum_ok ? "true" : "false",
                (unsigned long long)r->errors, o->streams, rb_dir_name(o->direction));
        break;
    }
    fprintf(f, ", \"duration_s\": %.3f, \"workers\": %u, \"interrupted\": %s", r->secs, r->workers,
            r->interrupted ? "true" : "false");
    if (r->first_error[0]) {
        fputs(", \"first_error\": \"", f);
        for (const char *p = r->first_error; *p; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', f);
            fputc((unsigned char)*p >= 0x20 ? *p : ' ', f);
        }
        fputc('"', f);
    }
    fputs("}\n", f);
}

void rb_report_behind(const struct rb_opts *o, const struct rb_result *r, FILE *f)
{
    if (!r->behind)
        return;
    fprintf(f,
            "ringbench latency: BEHIND SCHEDULE: asked for %.0f req/s, achieved %.0f req/s "
            "(%.1f%%), %llu requests due and never sent at the end.\n"
            "  These latencies measure ringbench's own queue, not the target. Use more "
            "--conns (one request in flight each) or a lower --rate.\n",
            o->rate, r->rate, o->rate > 0 ? 100.0 * r->rate / o->rate : 0.0,
            (unsigned long long)r->backlog);
}

int rb_report_status(const struct rb_opts *o, const struct rb_result *r)
{
    if (r->errors)
        return 1;
    if (r->behind)
        return 3;
    if (o->cmd == RB_CMD_THROUGHPUT)
        return r->checksum_ok && r->bytes ? 0 : 1;
    return r->count ? 0 : 1;
}

/* ---------------------------------------------------------------- SVG */

/* Margins of the percentile plot: left, right, top, bottom. The left one
 * holds "1000000 us" and, clear of it, the rotated y label at x = 16. */
#define W         800
#define H         460
#define ML        110
#define MR        170
#define MT        40
#define MB        50
#define MAX_NINES 6 /* x axis at most up to 99.9999% */

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                     "#9467bd", "#8c564b", "#e377c2", "#17becf"};

const char *rb_svg_color(unsigned i)
{
    return colors[i % (sizeof(colors) / sizeof(colors[0]))];
}

void rb_svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

void rb_svg_begin(FILE *f, int w, int h, int title_x, const char *title)
{
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"22\" font-size=\"15\">",
            w, h, title_x);
    rb_svg_text(f, title);
    fputs("</text>\n", f);
}

int rb_svg_end(FILE *f)
{
    fputs("</svg>\n", f);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}

void rb_svg_legend(FILE *f, int x, int y, const char *color, const char *name)
{
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
            "<text x=\"%d\" y=\"%d\">",
            x, y, x + 24, y, color, x + 30, y + 4);
    rb_svg_text(f, name);
    fputs("</text>\n", f);
}

void rb_svg_log_range(double *lo, double *hi)
{
    if (*hi <= 0) {
        *lo = 1;
        *hi = 10;
    }
    /* Whole decades, so the grid lines are 1, 10, 100 ... us. */
    *lo = pow(10, floor(log10(*lo > 0.1 ? *lo : 0.1)));
    *hi = pow(10, ceil(log10(*hi > *lo * 10 ? *hi : *lo * 10)));
}

double rb_svg_ylog(const struct rb_svg_area *a, double v, double lo, double hi)
{
    double t = (log10(v > lo ? v : lo) - log10(lo)) / (log10(hi) - log10(lo));

    return a->y1 - (a->y1 - a->y0) * t;
}

void rb_svg_ylog_grid(FILE *f, const struct rb_svg_area *a, double lo, double hi)
{
    for (double d = lo; d <= hi * 1.001; d *= 10) {
        double y = rb_svg_ylog(a, d, lo, hi);

        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.*f us</text>\n",
                a->x0, y, a->x1, y, a->x0 - 6, y + 4, d < 1 ? 1 : 0, d); /* 0.1, 1 ... 1000000 */
    }
}

/* Nines of percentile the data supports: n samples reach p = 1 - 1/n. */
static double data_nines(const struct rb_hist *h)
{
    double n = h->count > 1 ? log10((double)h->count) : 1;

    return n > MAX_NINES ? MAX_NINES : n;
}

static double xpos(double nines, int axis_nines)
{
    return ML + (W - ML - MR) * nines / axis_nines;
}

int rb_svg_percentiles(FILE *f, const char *title, const char *const *names,
                       const struct rb_hist *const *hists, unsigned n)
{
    const struct rb_svg_area area = {ML, MT, W - MR, H - MB};
    double lo = 1e300, hi = 0, most = 1;
    int axis;

    for (unsigned i = 0; i < n; i++) {
        if (hists[i]->count && data_nines(hists[i]) > most)
            most = data_nines(hists[i]);
        if (!hists[i]->count)
            continue;
        if ((double)hists[i]->min / 1e3 < lo)
            lo = (double)hists[i]->min / 1e3;
        if ((double)hists[i]->max / 1e3 > hi)
            hi = (double)hists[i]->max / 1e3;
    }
    /* The x axis ends at the first tick at or past where the longest line
     * ends (a twentieth of a decade short counts as there), not at
     * 99.9999% whatever the sample size: 10,000 requests end near 99.99%. */
    axis = (int)ceil(most - 0.05);
    if (axis < 1)
        axis = 1;
    rb_svg_log_range(&lo, &hi);
    rb_svg_begin(f, W, H, ML, title);
    rb_svg_ylog_grid(f, &area, lo, hi);
    for (int k = 0; k <= axis; k++) {
        static const char *const lab[] = {"0%",     "90%",     "99%",     "99.9%",
                                          "99.99%", "99.999%", "99.9999%"};
        double x = xpos(k, axis);

        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                /* 20 below the axis: at 16 the first one touched the
                 * lowest y label, which sits 4 below its own line. */
                x, MT, x, H - MB, x, H - MB + 20, lab[k]);
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n"
            "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
            "text-anchor=\"middle\">latency (us, log)</text>\n",
            (ML + W - MR) / 2, H - 12, (MT + H - MB) / 2, (MT + H - MB) / 2);
    for (unsigned i = 0; i < n; i++) {
        const char *col = rb_svg_color(i);
        const struct rb_hist *h = hists[i];
        double maxn = data_nines(h) < axis ? data_nines(h) : axis;

        if (h->count) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
            /* 40 points a decade of 1/(1-p), up to what the count supports. */
            for (double nines = 0; nines <= maxn + 1e-9; nines += 0.025) {
                double p = 100.0 * (1.0 - pow(10, -nines));
                double v = (double)rb_hist_percentile(h, p) / 1e3;

                fprintf(f, "%.1f,%.1f ", xpos(nines, axis), rb_svg_ylog(&area, v, lo, hi));
            }
            fputs("\"/>\n", f);
        }
        rb_svg_legend(f, W - MR + 12, MT + 10 + 20 * (int)i, col, names[i]);
    }
    return rb_svg_end(f);
}
