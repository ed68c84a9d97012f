/*
 * compare.h - `ringbench compare`: one workload set, several targets,
 * interleaved rounds, a table of medians and ratios to the baseline.
 */
#ifndef RB_COMPARE_H
#define RB_COMPARE_H

#include "args.h"

/* Returns the exit status: 0, 1 when a run had errors, 2 for a bad config. */
int rb_compare_main(const struct rb_opts *o);

#endif
