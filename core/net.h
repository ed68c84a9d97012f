/*
 * net.h - socket set-up: listeners and outgoing connections.
 *
 * Plain blocking-free system calls, used by the main thread (listeners,
 * before workers start) and by workers (outgoing sockets).
 */
#ifndef LB_NET_H
#define LB_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_BACKLOG 4096

/* TCP keepalive for the sockets net.c creates (struct cfg_global's keys). */
struct net_keepalive {
    bool on;
    uint32_t idle_s;  /* TCP_KEEPIDLE */
    uint32_t intvl_s; /* TCP_KEEPINTVL */
    uint32_t count;   /* TCP_KEEPCNT */
};

/*
 * Sets the keepalive that later net_listen() and net_connect_socket() calls
 * give TCP sockets (off until called). Main thread, before any worker
 * starts: workers read the settings unlocked, which is why a reload keeps
 * the running values (core/reload.c).
 */
void net_set_keepalive(const struct net_keepalive *ka);

/*
 * Creates a non-blocking listening socket on <addr>. With <reuseport>
 * (TCP only) several sockets can share the address and the kernel spreads
 * new connections across them. A TCP listener gets the keepalive of
 * net_set_keepalive(), which Linux copies to every socket it accepts.
 *
 * A unix path that exists is taken over only when it is a socket nobody
 * listens on (connect() is refused): a live socket of another process, or
 * anything that is not a socket, is left alone and refused (-EADDRINUSE),
 * with the reason logged. Returns the fd or -errno.
 */
int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport);

/*
 * The socket net_listen() makes, with all its options, bound to <addr> but
 * not listening (so no client can queue on it). For a unix path it does
 * not make way for the new socket first. Returns the fd or -errno.
 */
int net_bind(const struct sockaddr *addr, socklen_t len, bool reuseport);

/*
 * Creates a non-blocking socket for connecting to <addr>: TCP_NODELAY,
 * IP_BIND_ADDRESS_NO_PORT so that a future source-address bind does not
 * reserve a port before connect() picks one, and the keepalive of
 * net_set_keepalive(). Returns the fd or -errno.
 */
int net_connect_socket(const struct sockaddr *addr);

/* Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new limit. */
long net_raise_nofile(void);

/* max_conns = auto never goes above this (lb.ini's own maximum is 10^7). */
#define NET_MAX_CONNS_AUTO_CAP 1000000u

/*
 * The max_conns to enforce for lb.ini's <configured> value (0 = auto):
 * auto is what the open-files limit holds (2 descriptors per connection,
 * less a reserve), said once at info level; a configured value is kept,
 * with a warning when the limit cannot hold it (accepts then pause near
 * where the limit runs out). Main thread, after net_raise_nofile(), at
 * start-up and on reload.
 */
uint32_t net_max_conns(uint32_t configured);

/*
 * Removes the file of the unix socket <addr> ringlb listened on (a no-op
 * for other families). A failure other than "already gone" is logged: after
 * `user =` dropped root, the directory may not be writable any more.
 */
void net_unlink_unix(const struct sockaddr *addr);

#endif
