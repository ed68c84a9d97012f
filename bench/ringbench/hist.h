/*
 * hist.h - a log-linear latency histogram in the style of HdrHistogram.
 *
 * Values are nanoseconds. Below 256 ns every value has its own bucket; above,
 * each power of two is split into 128 equal buckets, so a bucket is never
 * wider than 1/128 of its lower bound and a reported value (the middle of its
 * bucket, clamped to the exact min and max seen) is within 0.4% of the truth
 * from 1 ns to RB_HIST_MAX_NS (about 18 minutes, well past the 60 s the
 * harness needs). Recording is a shift, a count-leading-zeros and an add, so
 * a worker can record every request without thinking about it.
 *
 * A histogram belongs to one thread while it records; histograms of several
 * workers are combined with rb_hist_merge() once the workers have stopped.
 */
#ifndef RB_HIST_H
#define RB_HIST_H

#include <stdint.h>
#include <stdio.h>

#define RB_HIST_SUB_BITS 8 /* 256 sub-buckets: 128 per power of two above 256 */
#define RB_HIST_TOP_BITS 40
#define RB_HIST_MAX_NS   ((1ULL << RB_HIST_TOP_BITS) - 1)
#define RB_HIST_BUCKETS                                                                            \
    (((RB_HIST_TOP_BITS - RB_HIST_SUB_BITS + 1) << (RB_HIST_SUB_BITS - 1)) +                       \
     (1u << (RB_HIST_SUB_BITS - 1)))

struct rb_hist {
    uint64_t count;
    uint64_t min;      /* exact, UINT64_MAX when empty */
    uint64_t max;      /* exact */
    double sum;        /* for the mean */
    uint64_t overflow; /* values above RB_HIST_MAX_NS, counted in the top bucket */
    uint64_t *counts;  /* RB_HIST_BUCKETS */
};

/* Allocates the buckets. Returns 0 or -ENOMEM. */
int rb_hist_init(struct rb_hist *h);
void rb_hist_free(struct rb_hist *h);
/* Forgets every value (the end of a warm-up). */
void rb_hist_reset(struct rb_hist *h);

/* Bucket index of <v> ns, and the range [lo, lo + width) that bucket holds. */
uint32_t rb_hist_index(uint64_t v);
uint64_t rb_hist_bucket_lo(uint32_t idx);
uint64_t rb_hist_bucket_width(uint32_t idx);

static inline void rb_hist_record(struct rb_hist *h, uint64_t v)
{
    if (v > RB_HIST_MAX_NS) {
        h->overflow++;
        h->counts[RB_HIST_BUCKETS - 1]++;
    } else {
        h->counts[rb_hist_index(v)]++;
    }
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* Adds every value of <src> into <dst>. */
void rb_hist_merge(struct rb_hist *dst, const struct rb_hist *src);

/*
 * The value at percentile <p> (0..100): the smallest recorded value such that
 * at least p% of the values are at or below it, within the bucket error.
 * Returns 0 for an empty histogram.
 */
uint64_t rb_hist_percentile(const struct rb_hist *h, double p);
double rb_hist_mean(const struct rb_hist *h);

/*
 * Writes the whole distribution in HdrHistogram's percentile-distribution
 * text format (the .hgrm files its plotter reads), one line per non-empty
 * bucket, values in microseconds. Returns 0 or -errno.
 */
int rb_hist_write(const struct rb_hist *h, FILE *f);

#endif
