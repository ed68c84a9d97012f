/*
 * serve.h - `ringbench serve`: test backends on the worker runtime.
 */
#ifndef RB_SERVE_H
#define RB_SERVE_H

#include "args.h"

/* Runs the server until SIGINT/SIGTERM. Returns the exit status (0, or 1
 * when it could not start). */
int rb_serve_main(const struct rb_opts *o);

#endif
