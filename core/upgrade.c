/*
 * upgrade.c - the hot upgrade's two sides (see upgrade.h for the
 * conversation; upgrade_msg.c for the messages and state machines).
 *
 * Both sides run on their main thread. The new process is starting up and
 * has nothing else to do, so it waits for each message (bounded by
 * UPG_WAIT_MS). The old one serves meanwhile: main polls the control
 * socket with its signals, and upgrade_srv_step() reads whatever has come
 * without blocking, so a new process that hangs never stalls it, and a
 * deadline per phase ends a conversation that does not move.
 *
 * Descriptors travel with SCM_RIGHTS on the first byte of their SOCKET
 * frame. Linux never merges two sends that carry descriptors into one
 * read, and delivers a send's descriptors with its first byte, so by the
 * time a SOCKET frame is complete its descriptor is queued: the receiver
 * pairs them in order.
 */
#include "upgrade.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "alloc.h"
#include "backend.h"
#include "log.h"
#include "net.h"
#include "qsbr.h"
#include "version.h"
#include "worker.h"

/* New process: the longest wait for each answer of the old one. */
#define UPG_WAIT_MS 10000
/* Old process: from connect to HELLO, and from the offer to SERVING (the
 * new process builds its tables, opens new binds and starts its threads). */
#define UPG_HELLO_MS   5000
#define UPG_SERVING_MS 60000
/* A send that the peer does not read for this long ends the conversation. */
#define UPG_SEND_TIMEOUT_S 5
/* Bounds on what a new process accepts: listeners are workers (up to 1024)
 * times binds; more is not an old ringlb talking. */
#define UPG_SOCKS_MAX   65536
#define UPG_SERVERS_MAX 65536

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- one end of the conversation ---- */

struct upg_conn {
    int fd;
    struct upg_parser parser;
    uint8_t in[4096];
    size_t in_off, in_len;
    /* Descriptors received, in order; SOCKET frames take them from <head>. */
    int *fds;
    uint32_t nfds, cap, head;
};

static void conn_init(struct upg_conn *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
}

static void conn_close(struct upg_conn *c)
{
    for (uint32_t i = c->head; i < c->nfds; i++)
        close(c->fds[i]);
    lb_free(c->fds);
    if (c->fd >= 0)
        close(c->fd);
    conn_init(c, -1);
}

static int fds_push(struct upg_conn *c, int fd)
{
    if (c->nfds == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        int *v;

        if (cap > UPG_SOCKS_MAX)
            return -EMSGSIZE;
        v = lb_realloc(c->fds, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->fds = v;
        c->cap = cap;
    }
    c->fds[c->nfds++] = fd;
    return 0;
}

/* One read, keeping the descriptors that came with it. Returns the bytes
 * read, 0 at EOF, or -errno (-EAGAIN: nothing yet, with MSG_DONTWAIT). */
static ssize_t conn_read(struct upg_conn *c, int flags)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(8 * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = c->in, .iov_len = sizeof(c->in)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(c->fd, &mh, flags | MSG_CMSG_CLOEXEC);
    int ret = 0;

    if (n < 0)
        return -errno;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
        size_t k;

        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
            if (ret < 0 || (ret = fds_push(c, fd)) < 0)
                close(fd);
        }
    }
    if (ret < 0)
        return ret;
    /* Descriptors cut off for want of room would pair the wrong sockets
     * with the frames that follow. */
    if (mh.msg_flags & MSG_CTRUNC)
        return -EPROTO;
    return n;
}

/*
 * The next message, with the descriptor of a SOCKET in <*fd>. <deadline>
 * 0: only what has arrived (returns 0 when no message is complete); else
 * waits until then (CLOCK_MONOTONIC ms). Returns 1, 0, or -errno:
 * -ECONNRESET when the peer closed, -EBADMSG for a malformed frame,
 * -EPROTO for a SOCKET without its descriptor, -ETIMEDOUT.
 */
static int conn_next(struct upg_conn *c, struct upg_msg *m, int *fd, uint64_t deadline)
{
    for (;;) {
        ssize_t n;

        if (c->in_off < c->in_len) {
            size_t used;
            int r = upg_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &used, m);

            c->in_off += used;
            if (r < 0)
                return r;
            if (r == 1) {
                *fd = -1;
                if (m->type == UPG_SOCKET) {
                    if (c->head == c->nfds)
                        return -EPROTO;
                    *fd = c->fds[c->head++];
                }
                return 1;
            }
        }
        c->in_off = c->in_len = 0;
        if (deadline) {
            uint64_t now = now_ms();
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int r;

            if (now >= deadline)
                return -ETIMEDOUT;
            r = poll(&p, 1, (int)(deadline - now));
            if (r < 0 && errno != EINTR)
                return -errno;
            if (r <= 0)
                continue;
        }
        n = conn_read(c, deadline ? 0 : MSG_DONTWAIT);
        if (n == -EAGAIN || n == -EINTR) {
            if (!deadline)
                return 0;
            continue;
        }
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ECONNRESET;
        c->in_len = (size_t)n;
    }
}

/* Sends <m>, with descriptor <fd> attached when >= 0. Returns 0 or -errno. */
static int conn_send(struct upg_conn *c, const struct upg_msg *m, int fd)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    uint8_t frame[UPG_HDR + UPG_PAYLOAD_MAX];
    size_t len = upg_encode(m, frame, sizeof(frame)), off = 0;

    if (!len)
        return -EINVAL;
    while (off < len) {
        struct iovec iov = {.iov_base = frame + off, .iov_len = len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        if (fd >= 0 && off == 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = sizeof(ctl.buf);
            ctl.h.cmsg_level = SOL_SOCKET;
            ctl.h.cmsg_type = SCM_RIGHTS;
            ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(&ctl.h), &fd, sizeof(fd));
        }
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        off += (size_t)n;
    }
    return 0;
}

static void set_send_timeout(int fd)
{
    struct timeval tv = {.tv_sec = UPG_SEND_TIMEOUT_S};

    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static const char *conn_err(int err)
{
    switch (err) {
    case -ECONNRESET:
        return "the other process closed the connection";
    case -EBADMSG:
        return "a malformed message";
    case -EPROTO:
        return "a listening socket sent without its descriptor";
    case -ETIMEDOUT:
        return "no answer in time";
    default:
        return strerror(-err);
    }
}

static bool addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* ---- the new process ---- */

struct upg_sock {
    struct upg_msg m; /* the SOCKET that brought it */
    int fd;           /* -1 once taken */
};

struct upg_server {
    char backend[UPG_NAME_MAX + 1], server[UPG_NAME_MAX + 1];
    uint8_t health, admin;
};

struct upgrade {
    struct upg_conn c;
    enum upg_new_state st;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint32_t old_pid, old_workers;
    char old_version[UPG_TEXT_MAX + 1];
    struct upg_sock *socks;
    uint32_t nsocks, scap;
    struct upg_server *srvs;
    uint32_t nsrvs, vcap;
    struct listen_inherit inh;
};

static int grow(void **v, uint32_t n, uint32_t *cap, size_t elem, uint32_t max)
{
    uint32_t c;
    void *p;

    if (n < *cap)
        return 0;
    c = *cap ? *cap * 2 : 16;
    if (n >= max)
        return -EMSGSIZE;
    p = lb_realloc(*v, c * elem);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

/* Keeps what a message of the offer brings. Returns 0 or -errno. */
static int offer_keep(struct upgrade *u, const struct upg_msg *m, int fd)
{
    int ret;

    if (m->type == UPG_SOCKET) {
        ret = grow((void **)&u->socks, u->nsocks, &u->scap, sizeof(*u->socks), UPG_SOCKS_MAX);
        if (ret < 0) {
            close(fd);
            return ret;
        }
        u->socks[u->nsocks].m = *m;
        u->socks[u->nsocks++].fd = fd;
        return 0;
    }
    ret = grow((void **)&u->srvs, u->nsrvs, &u->vcap, sizeof(*u->srvs), UPG_SERVERS_MAX);
    if (ret < 0)
        return ret;
    copy_str(u->srvs[u->nsrvs].backend, sizeof(u->srvs[0].backend), m->name);
    copy_str(u->srvs[u->nsrvs].server, sizeof(u->srvs[0].server), m->server);
    u->srvs[u->nsrvs].health = m->health;
    u->srvs[u->nsrvs++].admin = m->admin;
    return 0;
}

static enum upg_new_event new_event(const struct upg_msg *m)
{
    switch (m->type) {
    case UPG_WELCOME:
        return UPG_NEW_EV_WELCOME;
    case UPG_SOCKET:
        return UPG_NEW_EV_SOCKET;
    case UPG_SERVER:
        return UPG_NEW_EV_SERVER;
    case UPG_END:
        return UPG_NEW_EV_END;
    case UPG_RELEASED:
        return UPG_NEW_EV_RELEASED;
    default:
        return UPG_NEW_EV_OTHER;
    }
}

/*
 * Waits for the next message and moves the state machine with it. Returns
 * 0, or -errno with the reason logged (state FAILED).
 */
static int new_step(struct upgrade *u, struct upg_msg *m)
{
    enum upg_new_state was = u->st;
    int fd = -1, ret = conn_next(&u->c, m, &fd, now_ms() + UPG_WAIT_MS);

    if (ret < 0) {
        u->st = upg_new_next(u->st, UPG_NEW_EV_FAIL);
        log_error("upgrade: %s: %s", u->path, conn_err(ret));
        return ret;
    }
    u->st = upg_new_next(u->st, new_event(m));
    if (u->st == UPG_NEW_FAILED) {
        if (fd >= 0)
            close(fd);
        if (m->type == UPG_ERROR)
            log_error("upgrade: the running ringlb refused: %s", m->text);
        else
            log_error("upgrade: %s: unexpected message %u (state %d)", u->path, m->type, was);
        return -EPROTO;
    }
    if (m->type == UPG_WELCOME && m->proto != UPG_PROTO) {
        u->st = UPG_NEW_FAILED;
        log_error("upgrade: the running ringlb %s speaks upgrade protocol %u, this one (%s) %u: "
                  "restart instead",
                  m->text, m->proto, RINGLB_VERSION, UPG_PROTO);
        return -EPROTO;
    }
    if (m->type == UPG_SOCKET || m->type == UPG_SERVER) {
        ret = offer_keep(u, m, fd);
        if (ret < 0) {
            u->st = UPG_NEW_FAILED;
            log_error("upgrade: cannot keep what the running ringlb sent: %s", strerror(-ret));
        }
    }
    return ret;
}

static int take_listener(void *arg, const struct cfg_addr *a, uint32_t index)
{
    struct upgrade *u = arg;

    for (uint32_t i = 0; i < u->nsocks; i++) {
        struct upg_sock *s = &u->socks[i];

        if (s->fd >= 0 && s->m.kind == UPG_SOCK_FRONTEND && s->m.index == index &&
            addr_equal(&s->m.addr, a)) {
            int fd = s->fd;

            s->fd = -1;
            return fd;
        }
    }
    return -1;
}

int upgrade_begin(const char *path, struct upgrade **out)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct upgrade *u;
    struct upg_msg m = {.type = UPG_HELLO, .proto = UPG_PROTO};
    int fd, ret;

    if (strlen(path) >= sizeof(un.sun_path)) {
        log_error("upgrade: %s: path too long for a unix socket", path);
        return -ENAMETOOLONG;
    }
    u = lb_calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    conn_init(&u->c, -1);
    copy_str(u->path, sizeof(u->path), path);
    u->inh.take = take_listener;
    u->inh.arg = u;
    memcpy(un.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        log_error("upgrade: socket: %s", strerror(-ret));
        goto err;
    }
    u->c.fd = fd;
    /* Bounds connect() too: a process that does not accept (stopped,
     * stuck) leaves it waiting on a full backlog otherwise. */
    set_send_timeout(fd);
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        ret = -errno;
        log_error("upgrade: cannot reach the running ringlb at %s: %s%s", path, strerror(-ret),
                  ret == -ENOENT         ? " (is upgrade_socket set in its lb.ini?)"
                  : ret == -ECONNREFUSED ? " (nothing listens there: is it running?)"
                                         : "");
        goto err;
    }
    m.pid = (uint32_t)getpid();
    copy_str(m.text, sizeof(m.text), RINGLB_VERSION);
    ret = conn_send(&u->c, &m, -1);
    if (ret < 0) {
        log_error("upgrade: %s: cannot send: %s", path, conn_err(ret));
        goto err;
    }
    while (u->st != UPG_NEW_STARTING) {
        ret = new_step(u, &m);
        if (ret < 0)
            goto err;
        if (m.type == UPG_WELCOME) {
            u->old_pid = m.pid;
            u->old_workers = m.workers;
            copy_str(u->old_version, sizeof(u->old_version), m.text);
        }
    }
    log_info("upgrade: ringlb %s (pid %u, %u worker(s)) handed over %u listening socket(s) and "
             "the state of %u server(s)",
             u->old_version, u->old_pid, u->old_workers, u->nsocks, u->nsrvs);
    *out = u;
    return 0;
err:
    upgrade_end(u);
    return ret;
}

uint32_t upgrade_group_size(const struct upgrade *u)
{
    uint32_t g = 0;

    for (uint32_t i = 0; u && i < u->nsocks; i++) {
        if (u->socks[i].m.kind == UPG_SOCK_FRONTEND && u->socks[i].m.group > g)
            g = u->socks[i].m.group;
    }
    return g;
}

const struct listen_inherit *upgrade_inherit(struct upgrade *u)
{
    return u ? &u->inh : NULL;
}

int upgrade_take(struct upgrade *u, enum upg_sock_kind kind, const struct cfg_addr *a)
{
    for (uint32_t i = 0; u && i < u->nsocks; i++) {
        struct upg_sock *s = &u->socks[i];

        if (s->fd >= 0 && s->m.kind == kind && addr_equal(&s->m.addr, a)) {
            int fd = s->fd;

            s->fd = -1;
            return fd;
        }
    }
    return -1;
}

void upgrade_apply_servers(const struct upgrade *u)
{
    uint32_t down = 0, admin = 0;

    for (uint32_t i = 0; u && i < u->nsrvs; i++) {
        const struct upg_server *v = &u->srvs[i];
        const struct lb_table *t = backend_table_get();

        for (uint32_t p = 0; p < t->npools; p++) {
            struct pool *pool = &t->pools[p];

            if (pool->gone || strcmp(pool->name, v->backend) != 0)
                continue;
            for (uint32_t k = 0; k < pool->nservers; k++) {
                struct server *s = pool->servers[k];

                if (strcmp(s->name, v->server) != 0)
                    continue;
                if (v->admin != SRV_ADMIN_NONE) {
                    server_set_admin(p, s, (enum srv_admin)v->admin);
                    admin++;
                }
                /* Without checks nothing would ever bring it back up. */
                if (v->health == UPG_HEALTH_DOWN && pool->fall) {
                    server_set_state(p, s, SRV_DOWN);
                    down++;
                }
            }
        }
    }
    /* No reader runs yet: what the state changes retired can go now. */
    qsbr_poll();
    if (down || admin)
        log_info("upgrade: %u server(s) start down as they were in the old process (their "
                 "checks bring them up), %u keep an admin disable or drain",
                 down, admin);
}

int upgrade_commit(struct upgrade *u)
{
    struct upg_msg m = {.type = UPG_SERVING};
    int ret = conn_send(&u->c, &m, -1);

    if (ret < 0) {
        u->st = UPG_NEW_FAILED;
        log_warn("upgrade: cannot tell the old process we serve: %s", conn_err(ret));
        return ret;
    }
    u->st = upg_new_next(u->st, UPG_NEW_EV_STARTED);
    ret = new_step(u, &m);
    if (ret < 0) {
        log_warn("upgrade: the old process (pid %u) did not confirm that it stopped accepting; "
                 "serving anyway",
                 u->old_pid);
        return ret;
    }
    log_info("upgrade: the old process (pid %u) stopped accepting and drains its connections",
             u->old_pid);
    return 0;
}

void upgrade_end(struct upgrade *u)
{
    uint32_t unused = 0;

    if (!u)
        return;
    for (uint32_t i = 0; i < u->nsocks; i++) {
        if (u->socks[i].fd >= 0) {
            close(u->socks[i].fd);
            unused++;
        }
    }
    if (unused && u->st == UPG_NEW_DONE)
        log_info("upgrade: closed %u handed-over listening socket(s) that lb.ini no longer binds",
                 unused);
    conn_close(&u->c);
    lb_free(u->socks);
    lb_free(u->srvs);
    lb_free(u);
}

/* ---- the old process ---- */

struct upgrade_srv {
    int lfd;
    struct cfg_addr addr;
    const char *path; /* in addr */
    bool keep_path;   /* handed over: the new process listens there */
    enum upg_old_state st;
    struct upg_conn c;
    uint64_t deadline;
};

int upgrade_listen(const struct config *cfg, int fd, struct upgrade_srv **out)
{
    const char *path = cfg->global.upgrade_socket;
    struct sockaddr_un *un;
    struct upgrade_srv *u;
    mode_t old_mask;
    int ret;

    *out = NULL;
    if (!path) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    u = lb_calloc(1, sizeof(*u));
    if (!u) {
        if (fd >= 0)
            close(fd);
        return -ENOMEM;
    }
    conn_init(&u->c, -1);
    un = (struct sockaddr_un *)&u->addr.ss;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, strlen(path) + 1);
    u->addr.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    u->path = un->sun_path;
    if (fd >= 0) {
        u->lfd = fd;
        log_info("upgrade: took over %s (ringlb -x %s upgrades this process)", path, path);
    } else {
        /* Owner-only from the start: whoever connects gets every listening
         * socket. Main thread, before any other thread runs. */
        old_mask = umask(0177);
        u->lfd = net_listen_flags((const struct sockaddr *)&u->addr.ss, u->addr.len, 0);
        umask(old_mask);
        if (u->lfd < 0) {
            ret = u->lfd;
            log_error("upgrade: cannot listen on %s: %s", path, strerror(-ret));
            lb_free(u);
            return ret;
        }
        if (chmod(path, 0600) < 0) {
            ret = -errno;
            log_error("upgrade: cannot make %s owner-only: %s", path, strerror(-ret));
            upgrade_srv_close(u, false);
            return ret;
        }
        log_info("upgrade: listening on %s (ringlb -x %s upgrades this process)", path, path);
    }
    *out = u;
    return 0;
}

int upgrade_srv_fd(const struct upgrade_srv *u)
{
    if (!u)
        return -1;
    if (u->st == UPG_OLD_IDLE)
        return u->lfd;
    return u->st == UPG_OLD_HANDED_OVER ? -1 : u->c.fd;
}

int upgrade_srv_timeout(const struct upgrade_srv *u)
{
    uint64_t now = now_ms();

    if (!u || (u->st != UPG_OLD_GREETING && u->st != UPG_OLD_OFFERED))
        return -1;
    return u->deadline > now ? (int)(u->deadline - now) : 0;
}

/* Ends the conversation: nothing was changed, the next one may come. */
static void srv_fail(struct upgrade_srv *u, const char *why)
{
    u->st = upg_old_next(u->st, UPG_OLD_EV_FAIL);
    log_warn("upgrade: %s; this process keeps serving", why);
    conn_close(&u->c);
    u->st = UPG_OLD_IDLE;
}

static int send_socket(struct upgrade_srv *u, enum upg_sock_kind kind, int fd, uint32_t index,
                       uint32_t group, uint32_t flags, const struct cfg_addr *a, const char *name)
{
    struct upg_msg m = {.type = UPG_SOCKET,
                        .kind = (uint8_t)kind,
                        .index = (uint16_t)index,
                        .group = (uint16_t)group,
                        .flags = flags,
                        .addr = *a};

    if (fd < 0)
        return 0;
    copy_str(m.name, sizeof(m.name), name);
    return conn_send(&u->c, &m, fd);
}

/* WELCOME, every listening socket, the servers that take no clients, END. */
static int send_offer(struct upgrade_srv *u, struct worker *ws, uint32_t n)
{
    const struct config *cfg = lb_rt.cfg;
    const struct lb_table *t = backend_table_get();
    struct upg_msg m = {.type = UPG_WELCOME, .proto = UPG_PROTO, .workers = n};
    struct cfg_addr admin_addr;
    uint32_t nsocks = 0;
    int ret, fd;

    m.pid = (uint32_t)getpid();
    copy_str(m.text, sizeof(m.text), RINGLB_VERSION);
    ret = conn_send(&u->c, &m, -1);
    for (size_t f = 0; ret == 0 && f < cfg->nfrontends; f++) {
        const struct cfg_frontend *fe = &cfg->frontends[f];

        for (size_t b = 0; ret == 0 && b < fe->nbinds; b++) {
            /* Every worker's member of the group: each is an accept queue
             * of its own, which only the same socket keeps. A unix
             * listener is one socket that all workers share. */
            uint32_t group = fe->binds[b].ss.ss_family == AF_UNIX ? 1 : n;

            for (uint32_t i = 0; ret == 0 && i < group; i++) {
                fd = workers_listener_fd(&ws[i], &fe->binds[b]);
                ret = send_socket(u, UPG_SOCK_FRONTEND, fd, i, group, fe->bind_opts[b],
                                  &fe->binds[b], fe->name);
                nsocks += fd >= 0;
            }
        }
    }
    fd = admin_listener_fd(&admin_addr);
    if (ret == 0 && fd >= 0) {
        ret = send_socket(u, UPG_SOCK_ADMIN, fd, 0, 1, 0, &admin_addr, "");
        nsocks++;
    }
    if (ret == 0) {
        ret = send_socket(u, UPG_SOCK_CONTROL, u->lfd, 0, 1, 0, &u->addr, "");
        nsocks++;
    }
    for (uint32_t p = 0; ret == 0 && p < t->npools; p++) {
        const struct pool *pool = &t->pools[p];

        for (uint32_t k = 0; ret == 0 && !pool->gone && k < pool->nservers; k++) {
            const struct server *s = pool->servers[k];
            uint32_t health = atomic_load_explicit(&s->health, memory_order_relaxed);
            uint32_t adm = atomic_load_explicit(&s->admin, memory_order_relaxed);
            struct upg_msg v = {.type = UPG_SERVER,
                                .health = health == SRV_UP ? UPG_HEALTH_UP : UPG_HEALTH_DOWN,
                                .admin = (uint8_t)adm};

            if (health == SRV_UP && adm == SRV_ADMIN_NONE)
                continue;
            copy_str(v.name, sizeof(v.name), pool->name);
            copy_str(v.server, sizeof(v.server), s->name);
            ret = conn_send(&u->c, &v, -1);
        }
    }
    if (ret == 0) {
        m.type = UPG_END;
        ret = conn_send(&u->c, &m, -1);
    }
    if (ret == 0)
        log_info("upgrade: sent %u listening socket(s); waiting for the new process to serve",
                 nsocks);
    return ret;
}

/* Takes a waiting connection, if its peer is us (or root). */
static void srv_accept(struct upgrade_srv *u)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = accept4(u->lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("upgrade: accept on %s: %s", u->path, strerror(errno));
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        log_warn("upgrade: refused a connection on %s from uid %d: only root or this process's "
                 "user may upgrade it",
                 u->path, (int)cred.uid);
        close(fd);
        return;
    }
    set_send_timeout(fd);
    conn_init(&u->c, fd);
    u->st = upg_old_next(u->st, UPG_OLD_EV_CONNECT);
    u->deadline = now_ms() + UPG_HELLO_MS;
    log_info("upgrade: a new ringlb (pid %d) connected on %s", (int)cred.pid, u->path);
}

bool upgrade_srv_step(struct upgrade_srv *u, struct worker *ws, uint32_t n)
{
    char why[256];

    if (!u)
        return false;
    if (u->st == UPG_OLD_IDLE)
        srv_accept(u);
    while (u->st == UPG_OLD_GREETING || u->st == UPG_OLD_OFFERED) {
        struct upg_msg m;
        int fd, ret = conn_next(&u->c, &m, &fd, 0);

        if (ret == 0) {
            if (now_ms() >= u->deadline)
                srv_fail(u, u->st == UPG_OLD_GREETING ? "the new process said nothing in time"
                                                      : "the new process did not start serving "
                                                        "in time");
            return false;
        }
        if (ret < 0) {
            snprintf(why, sizeof(why), "the new process went away: %s", conn_err(ret));
            srv_fail(u, why);
            return false;
        }
        if (fd >= 0)
            close(fd); /* the old process is sent no sockets */
        if (u->st == UPG_OLD_GREETING && m.type == UPG_HELLO && m.proto != UPG_PROTO) {
            struct upg_msg e = {.type = UPG_ERROR};

            snprintf(e.text, sizeof(e.text),
                     "upgrade protocol version mismatch: ringlb %s speaks %u, %.40s speaks %u",
                     RINGLB_VERSION, UPG_PROTO, m.text, m.proto);
            (void)conn_send(&u->c, &e, -1);
            srv_fail(u, e.text);
            return false;
        }
        if (u->st == UPG_OLD_GREETING && m.type == UPG_HELLO) {
            log_info("upgrade: ringlb %s (pid %u) asks for the listening sockets", m.text, m.pid);
            ret = send_offer(u, ws, n);
            if (ret < 0) {
                snprintf(why, sizeof(why), "cannot send the listening sockets: %s", conn_err(ret));
                srv_fail(u, why);
                return false;
            }
            u->st = upg_old_next(u->st, UPG_OLD_EV_HELLO);
            u->deadline = now_ms() + UPG_SERVING_MS;
            continue;
        }
        u->st = upg_old_next(u->st, m.type == UPG_SERVING ? UPG_OLD_EV_SERVING : UPG_OLD_EV_OTHER);
        if (u->st == UPG_OLD_FAILED) {
            snprintf(why, sizeof(why), "unexpected message %u from the new process", m.type);
            srv_fail(u, why);
            return false;
        }
    }
    return u->st == UPG_OLD_HANDING;
}

void upgrade_srv_released(struct upgrade_srv *u)
{
    struct upg_msg m = {.type = UPG_RELEASED};
    int ret = conn_send(&u->c, &m, -1);

    if (ret < 0)
        log_warn("upgrade: cannot tell the new process that we stopped accepting: %s",
                 conn_err(ret));
    u->st = upg_old_next(u->st, UPG_OLD_EV_RELEASED);
    conn_close(&u->c);
    /* The new process holds the control socket too (or made its own): our
     * descriptor goes, the path stays. */
    u->keep_path = true;
    close(u->lfd);
    u->lfd = -1;
    log_info("upgrade: handed over; draining");
}

void upgrade_srv_close(struct upgrade_srv *u, bool keep_path)
{
    if (!u)
        return;
    conn_close(&u->c);
    if (u->lfd >= 0)
        close(u->lfd);
    if (!u->keep_path && !keep_path)
        net_unlink_unix((const struct sockaddr *)&u->addr.ss);
    lb_free(u);
}
