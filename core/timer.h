/*
 * timer.h - per-worker timers on a binary min-heap.
 *
 * Each connection embeds one struct timer. Idle timeouts are re-armed
 * lazily: traffic only updates the connection's last-activity time, and the
 * expiry callback pushes the deadline forward when it finds activity, so the
 * heap is touched once per timeout period rather than once per packet (the
 * same trade HAProxy makes with its expiration dates).
 *
 * A heap belongs to one thread; nothing here locks.
 */
#ifndef LB_TIMER_H
#define LB_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_NONE     UINT64_MAX
#define TIMER_IDX_NONE UINT32_MAX

struct timer;
typedef void (*timer_cb)(struct timer *t, uint64_t now);

struct timer {
    uint64_t deadline; /* monotonic ms */
    uint32_t idx;      /* position in the heap, TIMER_IDX_NONE when disarmed */
    timer_cb cb;
};

struct timer_heap {
    struct timer **v;
    uint32_t n;
    uint32_t cap;
};

static inline void timer_init(struct timer *t, timer_cb cb)
{
    t->deadline = TIMER_NONE;
    t->idx = TIMER_IDX_NONE;
    t->cb = cb;
}

static inline bool timer_armed(const struct timer *t)
{
    return t->idx != TIMER_IDX_NONE;
}

void timer_heap_init(struct timer_heap *h);
void timer_heap_free(struct timer_heap *h);

/* Arms <t> at <deadline>, or moves it there if armed. Returns 0 or -ENOMEM. */
int timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline);
void timer_disarm(struct timer_heap *h, struct timer *t);

/* The earliest deadline, or TIMER_NONE (inline: every loop turn asks). */
static inline uint64_t timer_next(const struct timer_heap *h)
{
    return h->n ? h->v[0]->deadline : TIMER_NONE;
}

/*
 * Runs the callbacks of timers due at <now>; each is disarmed before its
 * callback, which may re-arm it. Returns how many fired.
 */
unsigned timer_run(struct timer_heap *h, uint64_t now);

#endif
