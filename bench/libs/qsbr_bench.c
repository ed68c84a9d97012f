/*
 * qsbr_bench.c - ringlb's QSBR (core/qsbr.c) against liburcu's qsbr flavour
 * (urcu/urcu-qsbr.h), on the two costs that matter to ringlb:
 *
 *  reader  what a worker pays per loop turn to announce a quiescent state,
 *          alone (no grace period pending, the common case) and while a
 *          writer keeps grace periods pending (liburcu then takes its slow
 *          path with memory barriers);
 *  writer  how long a retired snapshot waits before it is freed (the
 *          grace period), with 2 and 8 reader threads, and what the readers'
 *          turn rate is meanwhile. ringlb's writer never blocks: it retires
 *          and polls (qsbr_retire + qsbr_poll, as the checker does); liburcu
 *          is measured both ways it offers, synchronize_rcu() (blocks the
 *          writer) and call_rcu() (a helper thread frees).
 *
 * Readers either spin (a busy data path) or are "idle": each turn waits
 * 1 ms, as a worker waits in io_uring_enter or epoll_wait. ringlb's slot
 * has no offline state, so an idle reader delays a grace period until it
 * wakes (bounded by the loop's longest wait); liburcu's readers go offline
 * around the wait (rcu_thread_offline/online), which is what ringlb would
 * have to do with it, and that costs barriers on every turn.
 *
 * Every reader checks the snapshot it holds against a magic number that the
 * free callback poisons first, so a reclamation bug shows as an abort, not
 * as a fast number.
 *
 *   qsbr_bench reader [TURNS]          reader cost, ns per turn
 *   qsbr_bench writer ROUNDS           grace periods, interleaved rounds
 *   qsbr_bench callgrind               fixed work for valgrind --tool=callgrind
 */
#define _LGPL_SOURCE /* liburcu's fast paths inline, as a user would build */
#include <urcu-qsbr.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/qsbr.h"

#define MAGIC  0x5eedf00dcafe1234ULL
#define POISON 0xdeaddeaddeaddeadULL

struct snap {
    uint64_t magic;
    uint64_t gen;
    struct rcu_head rcu;
};

enum impl { IMPL_RINGLB, IMPL_URCU_SYNC, IMPL_URCU_CALL, IMPL_N };
static const char *const impl_names[] = {"ringlb qsbr.c", "liburcu synchronize_rcu",
                                         "liburcu call_rcu"};

static _Atomic(struct snap *) current;
static atomic_bool stop;
static atomic_ullong turns_total;
static atomic_ullong freed_gen;
static bool idle_readers;
static volatile uint64_t sink_out; /* keeps the work from being optimized out */

static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Grace periods are waits: wall time. */
static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* The reader loop is work: CPU time of the thread, which the neighbours on a
 * shared machine do not inflate. */
static uint64_t cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static struct snap *snap_new(uint64_t gen)
{
    struct snap *s = malloc(sizeof(*s));

    if (!s)
        abort();
    s->magic = MAGIC;
    s->gen = gen;
    return s;
}

static void snap_free(void *p)
{
    struct snap *s = p;

    atomic_store(&freed_gen, s->gen);
    s->magic = POISON;
    free(s);
}

static void snap_free_rcu(struct rcu_head *h)
{
    snap_free(caa_container_of(h, struct snap, rcu));
}

/* One loop turn's use of the table: load, check, a little work. */
static inline uint64_t use_snapshot(void)
{
    struct snap *s = atomic_load_explicit(&current, memory_order_acquire);
    uint64_t x = s->gen;

    if (s->magic != MAGIC) {
        fprintf(stderr, "qsbr_bench: reader saw a freed snapshot\n");
        abort();
    }
    for (int i = 0; i < 8; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

static void idle_wait(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

struct reader_arg {
    enum impl impl;
    pthread_barrier_t *ready;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    unsigned long long n = 0;
    uint64_t sink = 0;
    int slot = -1;

    if (a->impl == IMPL_RINGLB)
        slot = qsbr_register();
    else
        rcu_register_thread();
    pthread_barrier_wait(a->ready);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        sink += use_snapshot();
        if (a->impl == IMPL_RINGLB) {
            qsbr_quiescent(slot);
            if (idle_readers)
                idle_wait();
        } else if (idle_readers) {
            rcu_thread_offline();
            idle_wait();
            rcu_thread_online();
        } else {
            rcu_quiescent_state();
        }
        n++;
    }
    if (a->impl == IMPL_RINGLB)
        qsbr_unregister(slot);
    else
        rcu_unregister_thread();
    sink_out += sink;
    atomic_fetch_add(&turns_total, n);
    return NULL;
}

/* Publishes generation <gen> and returns how long the old one took to go. */
static uint64_t one_grace_period(enum impl impl, uint64_t gen)
{
    struct snap *old = atomic_exchange(&current, snap_new(gen));
    uint64_t t0 = now_ns();

    switch (impl) {
    case IMPL_RINGLB:
        qsbr_retire(old, snap_free);
        while (qsbr_poll() > 0)
            sched_yield();
        break;
    case IMPL_URCU_SYNC:
        synchronize_rcu();
        snap_free(old);
        break;
    case IMPL_URCU_CALL: {
        uint64_t old_gen = old->gen; /* <old> is gone once the callback ran */

        call_rcu(&old->rcu, snap_free_rcu);
        while (atomic_load(&freed_gen) != old_gen)
            sched_yield();
        break;
    }
    default:
        abort();
    }
    return now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

struct gp_result {
    double p50_us, p99_us, turns_per_s;
};

static struct gp_result writer_round(enum impl impl, int nreaders, int ngp)
{
    pthread_t th[16];
    struct reader_arg arg;
    pthread_barrier_t ready;
    uint64_t *lat = calloc((size_t)ngp, sizeof(*lat)), t0, dt;
    struct gp_result r;

    if (!lat || nreaders > 16)
        abort();
    pthread_barrier_init(&ready, NULL, (unsigned)nreaders + 1);
    arg.impl = impl;
    arg.ready = &ready;
    atomic_store(&stop, false);
    atomic_store(&turns_total, 0);
    atomic_store(&current, snap_new(0));
    for (int i = 0; i < nreaders; i++)
        pthread_create(&th[i], NULL, reader, &arg);
    pthread_barrier_wait(&ready);
    t0 = now_ns();
    for (int i = 0; i < ngp; i++)
        lat[i] = one_grace_period(impl, (uint64_t)i + 1);
    dt = now_ns() - t0;
    atomic_store(&stop, true);
    for (int i = 0; i < nreaders; i++)
        pthread_join(th[i], NULL);
    snap_free(atomic_load(&current));
    pthread_barrier_destroy(&ready);
    qsort(lat, (size_t)ngp, sizeof(*lat), cmp_u64);
    r.p50_us = (double)lat[ngp / 2] / 1000.0;
    r.p99_us = (double)lat[ngp * 99 / 100] / 1000.0;
    r.turns_per_s = (double)atomic_load(&turns_total) * 1e9 / (double)dt;
    free(lat);
    return r;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];

            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

static int run_writer(int rounds)
{
    static const int readers[] = {2, 8};

    printf("## writer: grace period (retire -> freed), medians of %d interleaved rounds\n\n",
           rounds);
    printf(
        "| readers | reader turns | implementation | GP p50 us | GP p99 us | reader turns/s |\n");
    printf("| --- | --- | --- | ---: | ---: | ---: |\n");
    for (int idle = 0; idle < 2; idle++) {
        idle_readers = idle;
        for (unsigned ri = 0; ri < sizeof(readers) / sizeof(readers[0]); ri++) {
            int ngp = idle ? 100 : 200;
            double p50[IMPL_N][64], p99[IMPL_N][64], tps[IMPL_N][64];

            if (rounds > 64)
                rounds = 64;
            for (int r = 0; r < rounds; r++)
                for (int k = 0; k < IMPL_N; k++) {
                    /* Alternate the order so neither goes first every round. */
                    enum impl impl = (enum impl)((k + r) % IMPL_N);
                    struct gp_result g = writer_round(impl, readers[ri], ngp);

                    p50[impl][r] = g.p50_us;
                    p99[impl][r] = g.p99_us;
                    tps[impl][r] = g.turns_per_s;
                }
            for (int k = 0; k < IMPL_N; k++)
                printf("| %d | %s | %s | %.1f | %.1f | %.3g |\n", readers[ri],
                       idle ? "1 ms wait" : "busy", impl_names[k], median(p50[k], rounds),
                       median(p99[k], rounds), median(tps[k], rounds));
        }
    }
    return 0;
}

/* ---- reader cost, one thread ---- */

static uint64_t __attribute__((noinline)) reader_loop_none(long turns)
{
    uint64_t sink = 0;

    for (long i = 0; i < turns; i++)
        sink += use_snapshot();
    return sink;
}

static uint64_t __attribute__((noinline)) reader_loop_ringlb(long turns, int slot)
{
    uint64_t sink = 0;

    for (long i = 0; i < turns; i++) {
        sink += use_snapshot();
        qsbr_quiescent(slot);
    }
    return sink;
}

static uint64_t __attribute__((noinline)) reader_loop_urcu(long turns)
{
    uint64_t sink = 0;

    for (long i = 0; i < turns; i++) {
        sink += use_snapshot();
        rcu_quiescent_state();
    }
    return sink;
}

/* What an idle-capable worker would do with liburcu: offline around waits. */
static uint64_t __attribute__((noinline)) reader_loop_urcu_offline(long turns)
{
    uint64_t sink = 0;

    for (long i = 0; i < turns; i++) {
        sink += use_snapshot();
        rcu_thread_offline();
        rcu_thread_online();
    }
    return sink;
}

static int run_reader(long turns, int rounds)
{
    double ns[4][64];
    int slot;

    if (rounds > 64)
        rounds = 64;
    atomic_store(&current, snap_new(1));
    slot = qsbr_register();
    rcu_register_thread();
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 4; k++) {
            int v = (k + r) % 4;
            uint64_t t0 = cpu_ns();

            switch (v) {
            case 0:
                sink_out += reader_loop_none(turns);
                break;
            case 1:
                sink_out += reader_loop_ringlb(turns, slot);
                break;
            case 2:
                sink_out += reader_loop_urcu(turns);
                break;
            default:
                sink_out += reader_loop_urcu_offline(turns);
                break;
            }
            ns[v][r] = (double)(cpu_ns() - t0) / (double)turns;
        }
    }
    {
        double base = median(ns[0], rounds);

        printf("## reader: ns per loop turn, no grace period pending, one thread, median of %d "
               "interleaved rounds of %ld turns\n\n",
               rounds, turns);
        printf("| loop turn | ns/turn | announcement ns (minus bare turn) |\n| --- | ---: | ---: "
               "|\n");
        printf("| bare (load + check + work) | %.2f | - |\n", base);
        printf("| + qsbr_quiescent (ringlb) | %.2f | %.2f |\n", median(ns[1], rounds),
               median(ns[1], rounds) - base);
        printf("| + rcu_quiescent_state (liburcu) | %.2f | %.2f |\n", median(ns[2], rounds),
               median(ns[2], rounds) - base);
        printf("| + rcu_thread_offline/online (liburcu, idle-capable worker) | %.2f | %.2f |\n\n",
               median(ns[3], rounds), median(ns[3], rounds) - base);
    }
    rcu_unregister_thread();
    qsbr_unregister(slot);
    snap_free(atomic_load(&current));
    return 0;
}

/* Fixed work for callgrind: 100,000 turns of each loop, one thread. */
static int run_callgrind(void)
{
    const long turns = 100000;
    int slot;

    atomic_store(&current, snap_new(1));
    slot = qsbr_register();
    rcu_register_thread();
    sink_out += reader_loop_none(turns);
    sink_out += reader_loop_ringlb(turns, slot);
    sink_out += reader_loop_urcu(turns);
    sink_out += reader_loop_urcu_offline(turns);
    rcu_unregister_thread();
    qsbr_unregister(slot);
    snap_free(atomic_load(&current));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    if (strcmp(mode, "reader") == 0)
        return run_reader(argc > 2 ? atol(argv[2]) : 20000000, 9);
    if (strcmp(mode, "writer") == 0)
        return run_writer(argc > 2 ? atoi(argv[2]) : 5);
    if (strcmp(mode, "callgrind") == 0)
        return run_callgrind();
    fprintf(stderr, "usage: qsbr_bench reader [TURNS] | writer [ROUNDS] | callgrind\n");
    return 2;
}
