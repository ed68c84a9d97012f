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

/*
 * Creates a non-blocking listening socket on <addr>. With <reuseport>
 * (TCP only) several sockets can share the address and the kernel spreads
 * new connections across them.
 *
 * A unix path that exists is taken over only when it is a socket nobody
 * listens on (connect() is refused): a live socket of another process, or
 * anything that is not a socket, is left alone and refused (-EADDRINUSE),
 * with the reason logged. Returns the fd or -errno.
 */
int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport);

/*
 * Creates a non-blocking socket for connecting to <addr>: TCP_NODELAY, and
 * IP_BIND_ADDRESS_NO_PORT so that a future source-address bind does not
 * reserve a port before connect() picks one. Returns the fd or -errno.
 */
int net_connect_socket(const struct sockaddr *addr);

/* Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new limit. */
long net_raise_nofile(void);

/* Logs a warning when <max_conns> cannot be reached under the open-files
 * limit, saying where accepts will start to pause instead. */
void net_warn_fd_budget(uint32_t max_conns);

/*
 * Removes the file of the unix socket <addr> ringlb listened on (a no-op
 * for other families). A failure other than "already gone" is logged: after
 * `user =` dropped root, the directory may not be writable any more.
 */
void net_unlink_unix(const struct sockaddr *addr);

#endif
