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
 * Latency against percentile, one line per histogram, both axes
 * logarithmic (the x axis is 1/(1-p): 90%, 99%, 99.9% ... equally spaced,
 * as HdrHistogram plots them). Returns 0 or -errno.
 */
int rb_svg_percentiles(FILE *f, const char *title, const char *const *names,
                       const struct rb_hist *const *hists, unsigned n);

#endif
