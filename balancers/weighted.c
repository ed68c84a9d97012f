/*
 * weighted.c - smooth weighted round robin, nginx's algorithm.
 *
 * Each server gets exactly its weighted share per cycle and the heaviest
 * server never receives a burst: weights 5,1,1 give a a b a c a a. The
 * sequence is computed off the hot path (lb__build_smooth) and replayed by
 * one shared atomic cursor, so a pick is a fetch-add and a table read.
 */
#include "common.h"

LB__DEFINE_OPS(lb_weighted_ops, "weighted", LB_CAP_WEIGHT, lb__build_smooth, lb__choose_cursor,
               LB__SPREAD_CURSOR);
