/*
 * hist.c - log-linear histogram: bucket arithmetic, percentiles, merging
 * and the .hgrm dump.
 */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "../../core/alloc.h"

#define HALF (1u << (RB_HIST_SUB_BITS - 1))

int rb_hist_init(struct rb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->counts = lb_calloc(RB_HIST_BUCKETS, sizeof(*h->counts));
    if (!h->counts)
        return -ENOMEM;
    h->min = UINT64_MAX;
    return 0;
}

void rb_hist_free(struct rb_hist *h)
{
    lb_free(h->counts);
    h->counts = NULL;
}

void rb_hist_reset(struct rb_hist *h)
{
    memset(h->counts, 0, RB_HIST_BUCKETS * sizeof(*h->counts));
    h->count = h->overflow = h->max = 0;
    h->sum = 0;
    h->min = UINT64_MAX;
}

/*
 * Below 2 * HALF the index is the value itself. Above, <shift> drops all but
 * the top RB_HIST_SUB_BITS bits, which then lie in [HALF, 2 * HALF); each
 * shift step adds HALF buckets, so indexes stay dense and increasing.
 */
uint32_t rb_hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < 2 * HALF)
        return (uint32_t)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - (RB_HIST_SUB_BITS - 1);
    return shift * HALF + (uint32_t)(v >> shift);
}

static unsigned index_shift(uint32_t idx)
{
    return idx < 2 * HALF ? 0 : idx / HALF - 1;
}

uint64_t rb_hist_bucket_lo(uint32_t idx)
{
    unsigned shift = index_shift(idx);

    return (uint64_t)(idx - shift * HALF) << shift;
}

uint64_t rb_hist_bucket_width(uint32_t idx)
{
    return 1ULL << index_shift(idx);
}

void rb_hist_merge(struct rb_hist *dst, const struct rb_hist *src)
{
    for (uint32_t i = 0; i < RB_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->overflow += src->overflow;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* The value a bucket stands for: its middle, kept inside what was seen. */
static uint64_t bucket_value(const struct rb_hist *h, uint32_t idx)
{
    uint64_t v = rb_hist_bucket_lo(idx) + rb_hist_bucket_width(idx) / 2;

    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    return v;
}

uint64_t rb_hist_percentile(const struct rb_hist *h, double p)
{
    uint64_t want, seen = 0;

    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* The rank of the p-th percentile, rounded up: p50 of 1..100 is 50. */
    want = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (want == 0)
        want = 1;
    for (uint32_t i = 0; i < RB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want)
            return bucket_value(h, i);
    }
    return h->max;
}

double rb_hist_mean(const struct rb_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}

int rb_hist_write(const struct rb_hist *h, FILE *f)
{
    uint64_t seen = 0;
    double sq = 0, mean = rb_hist_mean(h);

    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    for (uint32_t i = 0; i < RB_HIST_BUCKETS && h->count; i++) {
        double pct, d;

        if (!h->counts[i])
            continue;
        seen += h->counts[i];
        pct = (double)seen / (double)h->count;
        d = (double)bucket_value(h, i) - mean;
        sq += d * d * (double)h->counts[i];
        if (seen < h->count)
            fprintf(f, "%12.3f %14.12f %10llu %14.2f\n", (double)bucket_value(h, i) / 1e3, pct,
                    (unsigned long long)seen, 1.0 / (1.0 - pct));
        else
            fprintf(f, "%12.3f %14.12f %10llu %14s\n", (double)bucket_value(h, i) / 1e3, pct,
                    (unsigned long long)seen, "inf");
    }
    fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean / 1e3,
            h->count ? sqrt(sq / (double)h->count) / 1e3 : 0.0);
    fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n", (double)h->max / 1e3,
            (unsigned long long)h->count);
    fprintf(f, "#[Buckets = %12u, SubBuckets     = %12u]\n", RB_HIST_BUCKETS, 2 * HALF);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
