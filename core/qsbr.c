/*
 * qsbr.c - quiescent-state-based reclamation (see qsbr.h).
 *
 * A global epoch counts retirements. Each reader slot records the epoch it
 * last saw at a quiescent point; 0 marks a free slot. Something retired at
 * epoch E is safe once every active slot has recorded an epoch >= E.
 *
 * Why hand-written and not liburcu's qsbr flavour (measured, see
 * bench/libs/README.md): liburcu's announcement is ~1 ns cheaper per loop
 * turn, below anything a turn with I/O can see, but it ends grace periods
 * early only for threads that go offline around every wait (~90 ns a turn
 * with its barriers), and its writer either blocks (synchronize_rcu) or
 * hands frees to a call_rcu thread. Here writers never block: they retire
 * and poll on their own loop turns, and free on their own thread.
 */
#include "qsbr.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "alloc.h"

struct slot {
    _Atomic uint64_t seen;
    _Atomic bool used;
} __attribute__((aligned(64)));

struct retired {
    struct retired *next;
    void *ptr;
    void (*fn)(void *);
    uint64_t epoch;
};

static struct slot slots[QSBR_MAX_READERS];
static _Atomic uint64_t global_epoch = 1;
static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;
static struct retired *retired_list;

int qsbr_register(void)
{
    for (int i = 0; i < QSBR_MAX_READERS; i++) {
        bool expect = false;

        if (atomic_compare_exchange_strong(&slots[i].used, &expect, true)) {
            atomic_store(&slots[i].seen, atomic_load(&global_epoch));
            return i;
        }
    }
    return -ENOSPC;
}

void qsbr_quiescent(int slot)
{
    atomic_store_explicit(&slots[slot].seen,
                          atomic_load_explicit(&global_epoch, memory_order_acquire),
                          memory_order_release);
}

void qsbr_unregister(int slot)
{
    atomic_store(&slots[slot].used, false);
}

void qsbr_retire(void *ptr, void (*fn)(void *))
{
    struct retired *r = lb_malloc(sizeof(*r));

    if (!r) {
        /* Without memory to queue it, leaking is the only safe choice. */
        return;
    }
    r->ptr = ptr;
    r->fn = fn;
    /* The new snapshot was published before this increment (seq_cst), so a
     * reader that records the new epoch has also seen the new pointer. */
    r->epoch = atomic_fetch_add(&global_epoch, 1) + 1;
    pthread_mutex_lock(&retire_lock);
    r->next = retired_list;
    retired_list = r;
    pthread_mutex_unlock(&retire_lock);
}

static uint64_t min_seen(void)
{
    uint64_t min = UINT64_MAX;

    for (int i = 0; i < QSBR_MAX_READERS; i++) {
        if (atomic_load(&slots[i].used)) {
            uint64_t s = atomic_load(&slots[i].seen);

            if (s < min)
                min = s;
        }
    }
    return min;
}

unsigned qsbr_poll(void)
{
    struct retired *ready = NULL, **pp;
    unsigned waiting = 0;
    uint64_t safe;

    pthread_mutex_lock(&retire_lock);
    safe = min_seen();
    for (pp = &retired_list; *pp;) {
        struct retired *r = *pp;

        if (r->epoch <= safe) {
            *pp = r->next;
            r->next = ready;
            ready = r;
        } else {
            waiting++;
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&retire_lock);
    while (ready) {
        struct retired *r = ready;

        ready = r->next;
        r->fn(r->ptr);
        lb_free(r);
    }
    return waiting;
}

void qsbr_drain(void)
{
    pthread_mutex_lock(&retire_lock);
    while (retired_list) {
        struct retired *r = retired_list;

        retired_list = r->next;
        r->fn(r->ptr);
        lb_free(r);
    }
    pthread_mutex_unlock(&retire_lock);
}
