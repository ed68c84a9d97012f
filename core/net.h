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

/* How a listener is made (net_listen_flags, net_bind). */
#define NET_REUSEPORT (1u << 0) /* TCP: SO_REUSEPORT, one socket per worker */
#define NET_FREEBIND  (1u << 1) /* IP: IP_FREEBIND/IPV6_FREEBIND, a VIP not held yet */

/*
 * Creates a non-blocking listening socket on <addr>. With NET_REUSEPORT
 * (TCP only) several sockets can share the address and the kernel spreads
 * new connections across them; with NET_FREEBIND the address need not be
 * one of the host's yet (a VIP that keepalived moves here later). A TCP
 * listener gets the keepalive of net_set_keepalive(), which Linux copies
 * to every socket it accepts.
 *
 * A unix path that exists is taken over only when it is a socket nobody
 * listens on (connect() is refused): a live socket of another process, or
 * anything that is not a socket, is left alone and refused (-EADDRINUSE),
 * with the reason logged. Returns the fd or -errno.
 */
int net_listen_flags(const struct sockaddr *addr, socklen_t len, unsigned flags);

/* net_listen_flags() with NET_REUSEPORT when <reuseport> (ringbench's). */
int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport);

/*
 * The socket net_listen_flags() makes, with all its options, bound to
 * <addr> but not listening (so no client can queue on it). For a unix path
 * it does not make way for the new socket first. Returns the fd or -errno.
 */
int net_bind(const struct sockaddr *addr, socklen_t len, unsigned flags);

/*
 * Gives the listening socket <fd>, made by another process (a hot upgrade
 * hands them over), the options net_listen_flags() would have given it
 * under <flags> and the current keepalive, which is what accepted sockets
 * inherit. SO_REUSEPORT and the address are the socket's already.
 * Returns 0 or -errno.
 */
int net_adopt_listener(int fd, int family, unsigned flags);

/*
 * Whether another socket listens on TCP address <addr> already: binds a
 * probe without SO_REUSEPORT (SO_REUSEADDR only, so that connections in
 * TIME_WAIT do not count), which fails with EADDRINUSE exactly when a
 * listener holds the address. Returns 0 when free, -EADDRINUSE when taken,
 * or another -errno from the probe (EADDRNOTAVAIL: not a local address).
 */
int net_probe_in_use(const struct sockaddr *addr, socklen_t len, unsigned flags);

/*
 * net.ipv4.tcp_migrate_req: 1 when the kernel moves the connections queued
 * on a listener that closes (or a process that dies) to another listener of
 * its SO_REUSEPORT group, 0 when they are reset; -errno when unknown (an
 * older kernel has no such sysctl).
 */
int net_tcp_migrate_req(void);

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
