/*
 * net.c - socket set-up for listeners and outgoing connections.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const int one = 1;

/* Written by main before the workers start (see net.h), read by all. */
static struct net_keepalive keepalive;
static atomic_bool keepalive_warned;

void net_set_keepalive(const struct net_keepalive *ka)
{
    keepalive = *ka;
}

/* Gives TCP socket <fd> the configured keepalive. Returns 0 or -errno. */
static int set_keepalive(int fd)
{
    const struct net_keepalive ka = keepalive;
    const int idle = (int)ka.idle_s, intvl = (int)ka.intvl_s, cnt = (int)ka.count;

    if (!ka.on)
        return 0;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
        return -errno;
    return 0;
}

/*
 * Makes way for a unix listener at <un>: nothing there, or a socket file
 * left by a process that is gone, which is removed. Only ECONNREFUSED says
 * that nobody listens; a connect that is accepted (or queued, EAGAIN) means
 * a live process whose file must not be unlinked under it. Returns 0 or
 * -errno with the reason logged.
 */
static int unix_make_way(const struct sockaddr_un *un, socklen_t len)
{
    const char *path = un->sun_path;
    struct stat st;
    int fd, r, err;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        log_error("unix:%s: the path exists and is not a socket; not replacing it", path);
        return -EADDRINUSE;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    r = connect(fd, (const struct sockaddr *)un, len);
    err = r < 0 ? errno : 0;
    close(fd);
    switch (err) {
    case ECONNREFUSED:
        if (unlink(path) < 0 && errno != ENOENT) {
            err = errno;
            log_error("unix:%s: cannot remove the stale socket file: %s", path, strerror(err));
            return -err;
        }
        return 0;
    case ENOENT: /* gone meanwhile */
        return 0;
    case 0:
    case EAGAIN:
    case EINPROGRESS:
        log_error("unix:%s: another process is listening there", path);
        return -EADDRINUSE;
    default:
        /* EPROTOTYPE (a datagram socket, say), EACCES...: whoever owns it
         * may be alive. */
        log_error("unix:%s: a socket file that may be in use (connect: %s); not replacing it", path,
                  strerror(err));
        return -EADDRINUSE;
    }
}

/* The options every TCP listener gets, on a fresh socket or one handed over. */
static int listener_options(int fd, int family, unsigned flags)
{
    if (flags & NET_FREEBIND) {
        int r = family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one))
                                   : setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
        if (r < 0)
            return -errno;
    }
    /* Accepted sockets inherit TCP_NODELAY from the listener, which saves a
     * system call per client. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return -errno;
    /* Inherited by accepted sockets too (SO_KEEPALIVE and the three
     * TCP_KEEP* values), so that clients need no call of their own. */
    return set_keepalive(fd);
}

int net_bind(const struct sockaddr *addr, socklen_t len, unsigned flags)
{
    int fd, err;

    fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (addr->sa_family != AF_UNIX) {
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
            goto err;
        if ((flags & NET_REUSEPORT) &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
            goto err;
        if (addr->sa_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
            goto err;
        err = listener_options(fd, addr->sa_family, flags);
        if (err < 0) {
            errno = -err;
            goto err;
        }
    }
    if (bind(fd, addr, len) < 0)
        goto err;
    return fd;
err:
    err = errno;
    close(fd);
    return -err;
}

int net_adopt_listener(int fd, int family, unsigned flags)
{
    if (family == AF_UNIX)
        return 0;
    return listener_options(fd, family, flags);
}

int net_probe_in_use(const struct sockaddr *addr, socklen_t len, unsigned flags)
{
    int fd = net_bind(addr, len, flags & ~NET_REUSEPORT);

    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

int net_tcp_migrate_req(void)
{
    char c = 0;
    int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC), err;
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, &c, 1);
    err = errno;
    close(fd);
    if (n != 1)
        return n < 0 ? -err : -EIO;
    return c == '1';
}

int net_listen_flags(const struct sockaddr *addr, socklen_t len, unsigned flags)
{
    int fd, err;

    if (addr->sa_family == AF_UNIX) {
        err = unix_make_way((const struct sockaddr_un *)addr, len);
        if (err < 0)
            return err;
    }
    fd = net_bind(addr, len, flags);
    if (fd < 0)
        return fd;
    if (listen(fd, NET_BACKLOG) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport)
{
    return net_listen_flags(addr, len, reuseport ? NET_REUSEPORT : 0);
}

int net_connect_socket(const struct sockaddr *addr)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (addr->sa_family != AF_UNIX) {
        /* Both are optimisations: failing to set them is not an error. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        /* Not fatal either: without it a vanished server is still found
         * out by idle_timeout. Said once, not once per connection. */
        if (set_keepalive(fd) < 0 && !atomic_exchange(&keepalive_warned, true))
            log_warn("cannot set TCP keepalive on server sockets: %s", strerror(errno));
    }
    return fd;
}

long net_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -errno;
    }
    return (long)rl.rlim_cur;
}

/* Descriptors that are not per connection: listeners, rings, eventfds, the
 * admin server, the checker's probes, logs. A rough allowance: the warning
 * says "about". */
#define NET_FD_RESERVE 64

/*
 * A connection holds two sockets, and a pipe pair per direction while it
 * splices. Past the limit accept fails with EMFILE and the worker backs off
 * until connections close, so a max_conns the limit cannot hold is not an
 * error, but an operator should hear that the real ceiling is lower
 * (ringlb.service raises LimitNOFILE for that reason).
 */
uint32_t net_max_conns(uint32_t configured)
{
    struct rlimit rl;
    uint64_t need = (uint64_t)configured * 2 + NET_FD_RESERVE, fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return configured ? configured : NET_MAX_CONNS_AUTO_CAP;
    fit = rl.rlim_cur > NET_FD_RESERVE + 2 ? (rl.rlim_cur - NET_FD_RESERVE) / 2 : 1;
    if (!configured) {
        /* auto: what the limit holds, so the default never warns. */
        if (fit > NET_MAX_CONNS_AUTO_CAP)
            fit = NET_MAX_CONNS_AUTO_CAP;
        log_info("max_conns auto: %llu (open-files limit %llu, 2 per connection)",
                 (unsigned long long)fit, (unsigned long long)rl.rlim_cur);
        return (uint32_t)fit;
    }
    if (need > rl.rlim_cur)
        log_warn("max_conns %u needs over %llu open files (2 per connection, 6 while it "
                 "splices) but the open-files limit is %llu: accepts will pause at about %llu "
                 "connections (raise the limit, e.g. LimitNOFILE=, or lower max_conns)",
                 configured, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)fit);
    return configured;
}

void net_unlink_unix(const struct sockaddr *addr)
{
    const char *path = ((const struct sockaddr_un *)addr)->sun_path;

    if (addr->sa_family == AF_UNIX && unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove the socket file %s: %s", path, strerror(errno));
}
