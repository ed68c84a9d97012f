/*
 * chaos.h - `ringbench chaos --scenario FILE`: the resilience runner.
 *
 * Starts what a scenario names (ringlb on an lb.ini template, `ringbench
 * serve` echo backends), runs an open-loop load against ringlb while the
 * main thread plays the scenario's timeline (faults through ringlb's admin
 * API, kill -9 / SIGSTOP / SIGCONT / restart of a backend, SIGHUP to
 * ringlb, shell hooks), records a per-second timeline, judges the
 * assertions and writes JSON, markdown and an SVG plot. Every process it
 * started is stopped before it returns, on failure and on SIGINT too; as
 * a child subreaper it also stops what those processes left behind (a
 * backend an on_down hook started).
 */
#ifndef RB_CHAOS_H
#define RB_CHAOS_H

#include "args.h"

/* Returns the exit status: 0 every step and assertion passed; 1 one
 * failed, ringlb died or the run was interrupted; 2 a bad scenario. */
int rb_chaos_main(const struct rb_opts *o);

#endif
