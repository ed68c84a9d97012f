/*
 * sched.h - the send schedule of the open-loop (constant-rate) sender.
 *
 * Like wrk2, the latency client decides when each request *should* go out
 * before the run starts: connection <idx> of <n> sends its k-th request at
 *   start + idx * T / n + k * T,   T = n / rate,
 * so the n connections together send <rate> requests a second, evenly
 * interleaved. Latency is measured from that intended time, not from when
 * the request actually left: a request delayed because the server stalled
 * is charged the stall (coordinated-omission correction). Times are
 * nanoseconds of CLOCK_MONOTONIC. Pure arithmetic: no clock is read here.
 */
#ifndef RB_SCHED_H
#define RB_SCHED_H

#include <stdint.h>

struct rb_sched {
    uint64_t start_ns; /* intended time of request 0 of this connection */
    double period_ns;  /* T */
    uint64_t k;        /* index of the next request */
};

/* Sets up connection <idx> of <nconns> for <rate> requests/s in total.
 * Returns 0, or -EINVAL for a rate <= 0 or idx >= nconns. */
int rb_sched_init(struct rb_sched *s, double rate, uint32_t nconns, uint32_t idx,
                  uint64_t start_ns);

/* Intended time of request <k>. */
uint64_t rb_sched_at(const struct rb_sched *s, uint64_t k);

/* Intended time of the next request, without consuming it. */
static inline uint64_t rb_sched_peek(const struct rb_sched *s)
{
    return rb_sched_at(s, s->k);
}

/* Consumes the next request and returns its intended time. */
static inline uint64_t rb_sched_next(struct rb_sched *s)
{
    return rb_sched_at(s, s->k++);
}

/* Requests of this connection intended strictly before <t_ns>. */
uint64_t rb_sched_due_before(const struct rb_sched *s, uint64_t t_ns);

#endif
