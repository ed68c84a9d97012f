/*
 * test_ringbench_rt.c - the worker runtime's start-up contract: when a
 * role's start() runs, run->nworkers is already the final worker count, so
 * the `i = id; i < n; i += nworkers` split that latency, connrate and
 * throughput use hands every connection to exactly one worker.
 *
 * Regression: the count used to grow while workers were already starting;
 * worker 0 then saw 0 (and opened connection 0 over and over) or 1 (and
 * opened every connection), so open-loop runs sent several times the
 * scheduled rate and throughput ran hundreds of duplicate streams.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/args.h"
#include "../../bench/ringbench/rt.h"

#define WORKERS 16
#define CONNS   100
/* A wrong step (0) would loop for ever: stop it and let the count fail. */
#define MAX_STEPS 1000

struct split {
    _Atomic uint32_t owners[CONNS]; /* how many workers took connection i */
    _Atomic uint32_t seen[WORKERS]; /* run->nworkers as each start() saw it */
};

static int split_start(struct rb_worker *w)
{
    struct split *sp = w->run->arg;
    uint32_t steps = 0;

    atomic_store(&sp->seen[w->id], w->run->nworkers);
    for (uint32_t i = w->id; i < CONNS && steps < MAX_STEPS; i += w->run->nworkers, steps++)
        atomic_fetch_add(&sp->owners[i], 1);
    return 0;
}

static void split_phase(struct rb_worker *w, enum rb_phase ph)
{
    (void)w;
    (void)ph;
}

static bool split_done(struct rb_worker *w)
{
    (void)w;
    return true;
}

static void split_fini(struct rb_worker *w)
{
    (void)w;
}

static void test_every_connection_has_one_worker(void **state)
{
    static const struct rb_role role = {
        .start = split_start,
        .phase = split_phase,
        .done = split_done,
        .fini = split_fini,
        .buf_size = 4096,
        .buf_count = 16,
    };
    struct rb_opts o;
    struct rb_run run;
    char err[256];
    char *argv[] = {"latency", "--target", "127.0.0.1:1", "--closed"};

    (void)state;
    /* Several rounds: the old bug was a race and did not hit every time. */
    for (int round = 0; round < 5; round++) {
        struct split sp;

        memset(&sp, 0, sizeof(sp));
        memset(&run, 0, sizeof(run));
        assert_int_equal(rb_args_parse(4, argv, &o, false, err, sizeof(err)), 0);
        assert_int_equal(rb_run_start(&run, &o, &role, WORKERS, &sp), 0);
        assert_int_equal(run.nworkers, WORKERS);
        rb_run_join(&run);
        rb_run_free(&run);
        for (int i = 0; i < WORKERS; i++)
            assert_int_equal(atomic_load(&sp.seen[i]), WORKERS);
        for (int i = 0; i < CONNS; i++)
            assert_int_equal(atomic_load(&sp.owners[i]), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_connection_has_one_worker),
    };

    rb_signals_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
