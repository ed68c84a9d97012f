/*
 * loop_epoll.c - the epoll backend of the event loop, for kernels or
 * sandboxes without io_uring.
 *
 * It offers the same completion interface as loop_uring.c by performing
 * each operation itself when its file descriptor is ready: every fd is
 * registered once, edge-triggered, for input and output; a per-fd record
 * remembers whether the fd is known to be drained (read) or full (write) and
 * which op waits on each side. An op is first attempted from the run queue;
 * on EAGAIN it parks on its fd until the next edge. Receives use the same
 * fixed buffer pool as io_uring (a LIFO free list here, which keeps recently
 * used buffers hot in cache).
 */
#include "loop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "alloc.h"

/* Attempts per op per turn, so one busy socket cannot starve the others. */
#define BUDGET     16
#define MAX_EVENTS 256

/* op->bstate */
enum { ES_IDLE = 0, ES_QUEUED, ES_PARKED, ES_NOBUF, ES_RUNNING };

struct efd {
    struct loop_op *rd; /* op waiting for input readiness */
    struct loop_op *wr; /* op waiting for output readiness */
    uint8_t registered;
    uint8_t rd_ready; /* not known to be drained */
    uint8_t wr_ready; /* not known to be full */
    uint8_t rdhup;    /* peer shut down its side: read until EOF */
};

struct loop_epoll {
    struct loop base;
    int epfd;
    struct efd *fds;
    uint32_t nfds;
    struct loop_op *runq, **runq_tail;
    struct loop_op *nobuf;
    uint16_t *free_bufs; /* stack of free buffer ids */
    uint32_t nfree;
};

static struct efd *efd_get(struct loop_epoll *le, int fd)
{
    if ((uint32_t)fd >= le->nfds) {
        uint32_t n = le->nfds ? le->nfds : 1024;
        struct efd *v;

        while (n <= (uint32_t)fd)
            n *= 2;
        v = lb_realloc(le->fds, (size_t)n * sizeof(*v));
        if (!v)
            return NULL;
        memset(v + le->nfds, 0, (size_t)(n - le->nfds) * sizeof(*v));
        le->fds = v;
        le->nfds = n;
    }
    return &le->fds[fd];
}

static void runq_push(struct loop_epoll *le, struct loop_op *op)
{
    op->bstate = ES_QUEUED;
    op->next = NULL;
    *le->runq_tail = op;
    le->runq_tail = &op->next;
}

/* The fd an op waits on, and whether it waits for output. */
static int wait_fd(const struct loop_op *op, bool *out)
{
    switch (op->kind) {
    case LOOP_OP_CONNECT:
    case LOOP_OP_SEND:
    case LOOP_OP_SENDMSG:
        *out = true;
        return op->fd;
    case LOOP_OP_SPLICE:
        *out = op->out;
        return op->out ? op->u.splice.fd_out : op->fd;
    case LOOP_OP_POLL:
        *out = op->out;
        return op->fd;
    default:
        *out = false;
        return op->fd;
    }
}

/* Parks <op> until its fd's next edge. Returns false if that is impossible. */
static bool park(struct loop_epoll *le, struct loop_op *op)
{
    bool out;
    int fd = wait_fd(op, &out);
    struct efd *e = efd_get(le, fd);

    if (!e)
        return false;
    if (!e->registered) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.fd = fd};

        if (epoll_ctl(le->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return false;
        e->registered = 1;
    }
    if (out) {
        e->wr_ready = 0;
        e->wr = op;
    } else {
        e->rd_ready = 0;
        e->rd = op;
    }
    op->bstate = ES_PARKED;
    return true;
}

static void park_or_fail(struct loop_epoll *le, struct loop_op *op)
{
    if (!park(le, op))
        loop__complete(op, errno ? -errno : -ENOMEM, 0);
}

/* Whether the fd of <op> is known not to be ready, so parking is free. */
static bool known_blocked(struct loop_epoll *le, const struct loop_op *op)
{
    bool out;
    int fd = wait_fd(op, &out);
    const struct efd *e;

    if ((uint32_t)fd >= le->nfds)
        return false;
    e = &le->fds[fd];
    return e->registered && (out ? !e->wr_ready : !e->rd_ready);
}

static void do_accept(struct loop_epoll *le, struct loop_op *op)
{
    for (int i = 0; i < BUDGET * 4; i++) {
        int fd = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN)
                park_or_fail(le, op);
            else
                loop__complete(op, -errno, 0);
            return;
        }
        if (op->u.accept.once) {
            loop__complete(op, fd, 0);
            return;
        }
        loop__complete(op, fd, LOOP_F_MORE);
        if (op->cancelled)
            break;
    }
    runq_push(le, op);
}

static void do_recv(struct loop_epoll *le, struct loop_op *op)
{
    uint32_t size = le->base.buf_size;

    for (int i = 0; i < BUDGET; i++) {
        struct efd *e;
        uint16_t bid;
        ssize_t n;

        if (op->cancelled)
            break;
        if (le->nfree == 0) {
            op->bstate = ES_NOBUF;
            op->next = le->nobuf;
            le->nobuf = op;
            if (op->notify_nobuf)
                loop__complete(op, -ENOBUFS, LOOP_F_MORE);
            return;
        }
        bid = le->free_bufs[--le->nfree];
        n = recv(op->fd, loop_buf(&le->base, bid), size, 0);
        if (n <= 0) {
            le->free_bufs[le->nfree++] = bid;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                park_or_fail(le, op);
                return;
            }
            loop__complete(op, n < 0 ? -errno : 0, 0);
            return;
        }
        op->bid = bid;
        le->base.buf_out++;
        e = efd_get(le, op->fd);
        loop__complete(op, (int)n, LOOP_F_MORE | LOOP_F_BUF);
        /* A short read drained the socket; the next edge says when more
         * arrives (unless the peer closed, then read on to see the EOF). */
        if ((size_t)n < size && e && e->registered && !e->rdhup) {
            if (!op->cancelled)
                park_or_fail(le, op);
            break;
        }
    }
    if (op->cancelled)
        loop__complete(op, -ECANCELED, 0);
    else if (op->bstate == ES_RUNNING)
        runq_push(le, op);
}

static void do_send(struct loop_epoll *le, struct loop_op *op)
{
    while (op->u.send.done < op->u.send.len) {
        ssize_t n = send(op->fd, (const char *)op->u.send.buf + op->u.send.done,
                         op->u.send.len - op->u.send.done, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                park_or_fail(le, op);
                return;
            }
            loop__complete(op, -errno, 0);
            return;
        }
        op->u.send.done += (uint32_t)n;
    }
    loop__complete(op, (int)op->u.send.done, 0);
}

static void do_sendmsg(struct loop_epoll *le, struct loop_op *op)
{
    ssize_t n;

    do {
        n = sendmsg(op->fd, op->u.msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        park_or_fail(le, op);
    else
        loop__complete(op, n < 0 ? -errno : (int)n, 0);
}

static void do_connect(struct loop_epoll *le, struct loop_op *op)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (!op->u.connect.started) {
        op->u.connect.started = 1;
        if (connect(op->fd, op->u.connect.addr, op->u.connect.len) == 0) {
            loop__complete(op, 0, 0);
        } else if (errno == EINPROGRESS || errno == EINTR) {
            park_or_fail(le, op);
        } else {
            loop__complete(op, -errno, 0);
        }
        return;
    }
    if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    loop__complete(op, -err, 0);
}

static void do_splice(struct loop_epoll *le, struct loop_op *op)
{
    ssize_t n;

    do {
        n = splice(op->fd, NULL, op->u.splice.fd_out, NULL, op->u.splice.len,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        /* The socket side is drained or full: remember it, so that the
         * caller's poll op parks until the next edge. */
        bool out;
        int fd = wait_fd(op, &out);

        if ((uint32_t)fd < le->nfds) {
            if (out)
                le->fds[fd].wr_ready = 0;
            else
                le->fds[fd].rd_ready = 0;
        }
    }
    loop__complete(op, n < 0 ? -errno : (int)n, 0);
}

/*
 * A poll op parks until the next edge unless the fd is ready now. The
 * "ready" flags can be stale for fds that other code reads directly (a
 * timerfd, say), so a set flag is confirmed with poll(2) before completing:
 * otherwise a poll op on such an fd would complete forever and spin.
 */
static void do_poll(struct loop_epoll *le, struct loop_op *op)
{
    bool out;
    int fd = wait_fd(op, &out);
    struct efd *e = efd_get(le, fd);
    struct pollfd p = {.fd = fd, .events = out ? POLLOUT : POLLIN};

    if (e && e->registered && poll(&p, 1, 0) == 0) {
        if (out)
            e->wr_ready = 0;
        else
            e->rd_ready = 0;
    }
    if (!e || !e->registered || (out ? !e->wr_ready : !e->rd_ready)) {
        /* Registering reports the current state as a first edge. */
        park_or_fail(le, op);
        return;
    }
    loop__complete(op, 0, 0);
}

static void attempt(struct loop_epoll *le, struct loop_op *op)
{
    if (op->cancelled) {
        op->bstate = ES_IDLE;
        loop__complete(op, -ECANCELED, 0);
        return;
    }
    /* A splice never waits, and a first connect(2) must be issued. */
    if (op->kind != LOOP_OP_SPLICE && !(op->kind == LOOP_OP_CONNECT && !op->u.connect.started) &&
        known_blocked(le, op)) {
        park_or_fail(le, op);
        return;
    }
    op->bstate = ES_RUNNING;
    switch (op->kind) {
    case LOOP_OP_ACCEPT:
        do_accept(le, op);
        break;
    case LOOP_OP_RECV:
        do_recv(le, op);
        break;
    case LOOP_OP_SEND:
        do_send(le, op);
        break;
    case LOOP_OP_SENDMSG:
        do_sendmsg(le, op);
        break;
    case LOOP_OP_CONNECT:
        do_connect(le, op);
        break;
    case LOOP_OP_SPLICE:
        do_splice(le, op);
        break;
    case LOOP_OP_POLL:
        do_poll(le, op);
        break;
    default:
        break;
    }
    if (op->bstate == ES_RUNNING)
        op->bstate = ES_IDLE;
}

static void epoll_submit(struct loop *loop, struct loop_op *op)
{
    runq_push((struct loop_epoll *)loop, op);
}

static void unpark(struct loop_epoll *le, struct loop_op *op)
{
    bool out;
    int fd = wait_fd(op, &out);
    struct efd *e = &le->fds[fd];

    if (out && e->wr == op)
        e->wr = NULL;
    else if (!out && e->rd == op)
        e->rd = NULL;
}

static void epoll_cancel(struct loop *loop, struct loop_op *op)
{
    struct loop_epoll *le = (struct loop_epoll *)loop;

    /* Queued and running ops notice op->cancelled themselves. */
    if (op->bstate == ES_PARKED) {
        unpark(le, op);
        runq_push(le, op);
    } else if (op->bstate == ES_NOBUF) {
        for (struct loop_op **pp = &le->nobuf; *pp; pp = &(*pp)->next) {
            if (*pp == op) {
                *pp = op->next;
                break;
            }
        }
        runq_push(le, op);
    }
}

/* Drops what the loop knows about <fd>: parked ops (a caller bug, failed
 * rather than left to a reused fd number) and the registration. */
static void efd_reset(struct loop_epoll *le, int fd)
{
    if ((uint32_t)fd < le->nfds) {
        struct efd *e = &le->fds[fd];

        /* Ops still parked here are a caller bug; fail them rather than
         * leave them to a reused fd number. */
        if (e->rd) {
            e->rd->cancelled = 1;
            runq_push(le, e->rd);
        }
        if (e->wr) {
            e->wr->cancelled = 1;
            runq_push(le, e->wr);
        }
        memset(e, 0, sizeof(*e));
    }
}

static void epoll_close(struct loop *loop, int fd)
{
    efd_reset((struct loop_epoll *)loop, fd);
    close(fd);
}

/*
 * The fd stays open in another thread, so closing it here would not take it
 * out of our epoll set: delete it explicitly, or the kernel would report
 * its events under a number that a later socket of ours may reuse, and the
 * record would claim that socket registered when it is not.
 */
static void epoll_forget(struct loop *loop, int fd)
{
    struct loop_epoll *le = (struct loop_epoll *)loop;

    if ((uint32_t)fd < le->nfds && le->fds[fd].registered)
        (void)epoll_ctl(le->epfd, EPOLL_CTL_DEL, fd, NULL);
    efd_reset(le, fd);
}

static void epoll_shutdown_wr(struct loop *loop, int fd)
{
    (void)loop;
    /* ENOTCONN means the peer is gone: nothing left to tell it. */
    (void)shutdown(fd, SHUT_WR);
}

static void epoll_buf_put(struct loop *loop, uint16_t bid)
{
    struct loop_epoll *le = (struct loop_epoll *)loop;

    le->free_bufs[le->nfree++] = bid;
    while (le->nobuf) {
        struct loop_op *op = le->nobuf;

        le->nobuf = op->next;
        runq_push(le, op);
    }
}

static void on_event(struct loop_epoll *le, const struct epoll_event *ev)
{
    int fd = ev->data.fd;
    struct efd *e;

    if (fd == le->base.wake_fd) {
        uint64_t v;

        while (read(fd, &v, sizeof(v)) > 0)
            ;
        return;
    }
    if ((uint32_t)fd >= le->nfds)
        return;
    e = &le->fds[fd];
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        e->rd_ready = 1;
        if (ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            e->rdhup = 1;
        if (e->rd) {
            struct loop_op *op = e->rd;

            e->rd = NULL;
            runq_push(le, op);
        }
    }
    if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        e->wr_ready = 1;
        if (e->wr) {
            struct loop_op *op = e->wr;

            e->wr = NULL;
            runq_push(le, op);
        }
    }
}

static void run_queue(struct loop_epoll *le)
{
    /* Only what is queued now: ops re-queued by their own attempt wait for
     * the next turn, after the poller has had its say. */
    struct loop_op *list = le->runq;

    le->runq = NULL;
    le->runq_tail = &le->runq;
    while (list) {
        struct loop_op *op = list;

        list = op->next;
        attempt(le, op);
    }
}

static int epoll_run_once(struct loop *loop, int timeout_ms)
{
    struct loop_epoll *le = (struct loop_epoll *)loop;
    struct epoll_event evs[MAX_EVENTS];
    int n;

    run_queue(le);
    /* The queue's completions may have armed a timer earlier than the one
     * <timeout_ms> was computed for (a fault's next send, milliseconds
     * away): sleeping past it would stretch every such wait. */
    if (timeout_ms > 0)
        timeout_ms = loop__timeout(loop, (uint32_t)timeout_ms);
    n = epoll_wait(le->epfd, evs, MAX_EVENTS, le->runq ? 0 : timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    loop__update_now(loop);
    for (int i = 0; i < n; i++)
        on_event(le, &evs[i]);
    run_queue(le);
    return 0;
}

static void epoll_destroy(struct loop *loop)
{
    struct loop_epoll *le = (struct loop_epoll *)loop;

    if (le->epfd >= 0)
        close(le->epfd);
    lb_free(le->fds);
    lb_free(le->free_bufs);
    loop__fini(loop);
    lb_free(le);
}

static const struct loop_vtbl epoll_vtbl = {
    .run_once = epoll_run_once,
    .submit = epoll_submit,
    .cancel = epoll_cancel,
    .buf_put = epoll_buf_put,
    .close = epoll_close,
    .forget = epoll_forget,
    .shutdown_wr = epoll_shutdown_wr,
    .destroy = epoll_destroy,
};

int loop__epoll_create(const struct loop_params *p, struct loop **out)
{
    struct loop_epoll *le = lb_calloc(1, sizeof(*le));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    int ret;

    if (!le)
        return -ENOMEM;
    le->epfd = -1;
    le->runq_tail = &le->runq;
    ret = loop__init(&le->base, LOOP_EPOLL, &epoll_vtbl, p);
    if (ret < 0)
        goto err;
    le->free_bufs = lb_malloc(p->buf_count * sizeof(*le->free_bufs));
    if (!le->free_bufs) {
        ret = -ENOMEM;
        goto err;
    }
    /* Pushed in reverse so that buffer 0 is handed out first. */
    for (uint32_t i = 0; i < p->buf_count; i++)
        le->free_bufs[i] = (uint16_t)(p->buf_count - 1 - i);
    le->nfree = p->buf_count;
    le->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (le->epfd < 0) {
        ret = -errno;
        goto err;
    }
    ev.data.fd = le->base.wake_fd;
    if (epoll_ctl(le->epfd, EPOLL_CTL_ADD, le->base.wake_fd, &ev) < 0) {
        ret = -errno;
        goto err;
    }
    *out = &le->base;
    return 0;
err:
    epoll_destroy(&le->base);
    return ret;
}
