/*
 * timer.c - binary min-heap of deadlines with O(log n) arm/move/disarm.
 */
#include "timer.h"

#include <errno.h>

#include "alloc.h"

void timer_heap_init(struct timer_heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void timer_heap_free(struct timer_heap *h)
{
    lb_free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static void heap_set(struct timer_heap *h, uint32_t i, struct timer *t)
{
    h->v[i] = t;
    t->idx = i;
}

static void sift_up(struct timer_heap *h, uint32_t i)
{
    struct timer *t = h->v[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;

        if (h->v[parent]->deadline <= t->deadline)
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, t);
}

static void sift_down(struct timer_heap *h, uint32_t i)
{
    struct timer *t = h->v[i];

    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        uint64_t md = t->deadline;

        if (l < h->n && h->v[l]->deadline < md) {
            m = l;
            md = h->v[l]->deadline;
        }
        if (l + 1 < h->n && h->v[l + 1]->deadline < md)
            m = l + 1;
        if (m == i)
            break;
        heap_set(h, i, h->v[m]);
        i = m;
    }
    heap_set(h, i, t);
}

int timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline)
{
    if (timer_armed(t)) {
        uint64_t old = t->deadline;

        t->deadline = deadline;
        if (deadline < old)
            sift_up(h, t->idx);
        else
            sift_down(h, t->idx);
        return 0;
    }
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 256;
        struct timer **v = lb_realloc(h->v, (size_t)cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->deadline = deadline;
    heap_set(h, h->n++, t);
    sift_up(h, h->n - 1);
    return 0;
}

void timer_disarm(struct timer_heap *h, struct timer *t)
{
    uint32_t i = t->idx;

    if (i == TIMER_IDX_NONE)
        return;
    t->idx = TIMER_IDX_NONE;
    if (--h->n == i)
        return;
    /* Move the last element into the hole, then restore heap order. */
    heap_set(h, i, h->v[h->n]);
    if (i > 0 && h->v[i]->deadline < h->v[(i - 1) / 2]->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

unsigned timer_run(struct timer_heap *h, uint64_t now)
{
    unsigned fired = 0;

    while (h->n && h->v[0]->deadline <= now) {
        struct timer *t = h->v[0];

        timer_disarm(h, t);
        fired++;
        t->cb(t, now);
    }
    return fired;
}
