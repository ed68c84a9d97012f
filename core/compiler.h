/*
 * compiler.h - small language helpers shared by every module.
 */
#ifndef LB_COMPILER_H
#define LB_COMPILER_H

#include <stddef.h>

/* The struct of type <type> whose member <member> is at <p> (completions and
 * timers carry a pointer to the op or timer embedded in their owner). */
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A branch the data path almost never takes (a fault, a prefix to send):
 * the compiler keeps it out of the straight line. */
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
