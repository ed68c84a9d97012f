/*
 * sched.c - open-loop send schedule (see sched.h).
 */
#include "sched.h"

#include <errno.h>
#include <math.h>

int rb_sched_init(struct rb_sched *s, double rate, uint32_t nconns, uint32_t idx, uint64_t start_ns)
{
    if (!(rate > 0) || nconns == 0 || idx >= nconns)
        return -EINVAL;
    s->period_ns = 1e9 * (double)nconns / rate;
    /* The phase spreads connections over one period, so n connections at
     * rate r do not all fire in the same instant. */
    s->start_ns = start_ns + (uint64_t)(s->period_ns * idx / nconns);
    s->k = 0;
    return 0;
}

uint64_t rb_sched_at(const struct rb_sched *s, uint64_t k)
{
    /* Multiplying, never adding up periods, so rounding never drifts. */
    return s->start_ns + (uint64_t)((double)k * s->period_ns);
}

uint64_t rb_sched_due_before(const struct rb_sched *s, uint64_t t_ns)
{
    uint64_t k;

    if (t_ns <= s->start_ns)
        return 0;
    k = (uint64_t)ceil((double)(t_ns - s->start_ns) / s->period_ns);
    /* Floating point may land one off either way; settle on the exact k. */
    while (k > 0 && rb_sched_at(s, k - 1) >= t_ns)
        k--;
    while (rb_sched_at(s, k) < t_ns)
        k++;
    return k;
}
