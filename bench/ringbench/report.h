/*
 * report.h - what ringbench prints: the human summary, the --json object,
 * and the SVG percentile plot of `compare`.
 */
#ifndef RB_REPORT_H
#define RB_REPORT_H

#include <stdio.h>

#include "args.h"
#include "client.h"

/* The human-readable summary of one run. */
void rb_report_text(const struct rb_opts *o, const struct rb_result *r, FILE *f);
/* One JSON object on one line (keys in bench/README.md). */
void rb_report_json(const struct rb_opts *o, const struct rb_result *r, FILE *f);
/* The loud warning of an open-loop run that fell behind its schedule
 * (nothing when it kept up). */
void rb_report_behind(const struct rb_opts *o, const struct rb_result *r, FILE *f);
/* Exit status of a measuring run: 0; 1 on any error, a failed check or
 * nothing measured; 3 when an open-loop latency run fell behind. */
int rb_report_status(const struct rb_opts *o, const struct rb_result *r);

/*
 * SVG pieces shared by the plots (the percentile plot below and the chaos
 * timeline of chaos.c): a document with a title, escaped text, the line
 * colours, a legend entry, and a logarithmic y axis of microseconds in a
 * plot area.
 */
struct rb_svg_area {
    double x0, y0, x1, y1; /* left, top, right, bottom */
};

void rb_svg_begin(FILE *f, int w, int h, int title_x, const char *title);
/* Returns 0, or -EIO when anything written to <f> failed. */
int rb_svg_end(FILE *f);
void rb_svg_text(FILE *f, const char *s);
const char *rb_svg_color(unsigned i);
void rb_svg_legend(FILE *f, int x, int y, const char *color, const char *name);
/* Widens [lo, hi] (us) to whole decades, at least one, from 0.1 us up. */
void rb_svg_log_range(double *lo, double *hi);
/* The y of <v> us on a log axis from <lo> (bottom of <a>) to <hi> (top). */
double rb_svg_ylog(const struct rb_svg_area *a, double v, double lo, double hi);
/* One grid line and "N us" label per decade of [lo, hi]. */
void rb_svg_ylog_grid(FILE *f, const struct rb_svg_area *a, double lo, double hi);

/*
 * Latency against percentile, one line per histogram, both axes
 * logarithmic (the x axis is 1/(1-p): 90%, 99%, 99.9% ... equally spaced,
 * as HdrHistogram plots them). Returns 0 or -errno.
 */
int rb_svg_percentiles(FILE *f, const char *title, const char *const *names,
                       const struct rb_hist *const *hists, unsigned n);

#endif
