/*
 * reload.h - SIGHUP: lb.ini reloaded in place, without dropping a
 * connection.
 */
#ifndef LB_RELOAD_H
#define LB_RELOAD_H

#include <stdint.h>

struct worker;

/*
 * Loads <path> again and switches the running process to it (main thread,
 * workers running). The order makes every failure leave the old config
 * whole: parse and validate, open the new binds, build and publish the new
 * backend table (the point of no return), then hand the workers their
 * listeners and the checker its servers, and only then free the old config.
 *
 * Settings that cannot change in a running process (the keys config.c's
 * key table marks restart-only: workers, io, admin, user, tcp_keepalive...)
 * keep their running values, with a warning naming each. A file that is not a regular file (a FIFO)
 * is rejected without being read, so the main thread never blocks here. Returns 0, or -1 when the
 * new config was rejected (its error is logged).
 */
int reload_config(const char *path, struct worker *ws, uint32_t n);

#endif
