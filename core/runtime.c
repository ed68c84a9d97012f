/*
 * runtime.c - the process's one struct lb_runtime (see runtime.h).
 */
#include "runtime.h"

struct lb_runtime lb_rt;
