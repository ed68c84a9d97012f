/*
 * loop_uring.c - the io_uring backend of the event loop.
 *
 * One ring per worker, created by the worker thread itself so that
 * SINGLE_ISSUER and DEFER_TASKRUN apply (task work then runs only when this
 * thread asks for completions, which keeps completions in batches). Receives
 * are multishot into one provided-buffer ring (buffer group 0); accepts are
 * multishot. Every SQE's user_data is the struct loop_op pointer, or 0 for
 * requests whose completion we ignore (cancellations); completions are
 * dispatched from one switch on the op kind.
 *
 * Splice is not issued as IORING_OP_SPLICE: the kernel runs those in io-wq
 * threads, and a splice from an empty socket would park a kernel thread per
 * idle flow. A splice op instead calls splice(2) with SPLICE_F_NONBLOCK from
 * this thread (outside the CQ walk, so callbacks never nest), and callers
 * wait for the socket with a poll op (IORING_OP_POLL_ADD) on -EAGAIN.
 */
#include "loop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "uring_compat.h"

#define BGID 0

/* ThreadSanitizer tracks descriptors and cannot see a close done by the
 * kernel for the ring: when another thread later gets the same number
 * (the admin listing /proc/self/fd, say), it reports a race that is not
 * there. Under TSan, closes are plain close(2). */
#if defined(__SANITIZE_THREAD__)
#define LOOP_CLOSE_SYSCALL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOOP_CLOSE_SYSCALL 1
#endif
#endif
#ifndef LOOP_CLOSE_SYSCALL
#define LOOP_CLOSE_SYSCALL 0
#endif

/* op->bstate: what a deferred op is waiting for, or that a send waits for
 * POLLOUT before it is issued again. */
enum { BS_NONE = 0, BS_FINAL, BS_WAIT_OUT };
#define UD_IGNORE 0ULL

struct loop_uring {
    struct loop base;
    struct io_uring ring;
    bool ring_ok;
    bool skip_success; /* IORING_FEAT_CQE_SKIP */
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint32_t br_mask;
    /* Ops to run outside the CQ walk: splice attempts and completions that
     * must not be delivered from inside a submit call. */
    struct loop_op *deferred, **deferred_tail;
    /* Multishot receives stopped by -ENOBUFS, re-armed when buffers return. */
    struct loop_op *nobuf;
    bool bufs_returned;
};

static struct io_uring_sqe *get_sqe(struct loop_uring *lu)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&lu->ring);

    if (!sqe) {
        /* SQ full: flush it to the kernel and take a fresh slot. */
        io_uring_submit(&lu->ring);
        sqe = io_uring_get_sqe(&lu->ring);
    }
    return sqe;
}

/* Queues a request whose result nobody waits for: with CQE_SKIP_SUCCESS
 * (Linux 5.17+) a success posts no completion at all. */
static void fire_and_forget(struct loop_uring *lu, struct io_uring_sqe *sqe)
{
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    if (lu->skip_success)
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void defer(struct loop_uring *lu, struct loop_op *op)
{
    op->next = NULL;
    *lu->deferred_tail = op;
    lu->deferred_tail = &op->next;
}

/* Delivers <res> as the final completion of <op> on the next deferred pass. */
static void defer_final(struct loop_uring *lu, struct loop_op *op, int res)
{
    op->res = res;
    op->bstate = BS_FINAL;
    defer(lu, op);
}

static void prep_recv(struct loop_uring *lu, struct loop_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(lu);

    io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data(sqe, op);
}

static void prep_send(struct loop_uring *lu, struct loop_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(lu);

    io_uring_prep_send(sqe, op->fd, (const char *)op->u.send.buf + op->u.send.done,
                       op->u.send.len - op->u.send.done, MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, op);
}

static void prep_poll_fd(struct loop_uring *lu, struct loop_op *op, int fd, unsigned events)
{
    struct io_uring_sqe *sqe = get_sqe(lu);

    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data(sqe, op);
}

static void prep_poll(struct loop_uring *lu, struct loop_op *op)
{
    prep_poll_fd(lu, op, op->fd, op->out ? POLLOUT : POLLIN);
}

static void prep_sendmsg(struct loop_uring *lu, struct loop_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(lu);

    io_uring_prep_sendmsg(sqe, op->fd, op->u.msg, MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, op);
}

/* (Re)issues a send or sendmsg op. */
static void prep_out(struct loop_uring *lu, struct loop_op *op)
{
    if (op->kind == LOOP_OP_SEND)
        prep_send(lu, op);
    else
        prep_sendmsg(lu, op);
}

static void prep_wake(struct loop_uring *lu)
{
    struct io_uring_sqe *sqe = get_sqe(lu);

    io_uring_prep_read(sqe, lu->base.wake_fd, &lu->base.wake_val, sizeof(lu->base.wake_val), 0);
    io_uring_sqe_set_data(sqe, &lu->base.wake_op);
}

static void uring_submit(struct loop *loop, struct loop_op *op)
{
    struct loop_uring *lu = (struct loop_uring *)loop;
    struct io_uring_sqe *sqe;

    switch (op->kind) {
    case LOOP_OP_ACCEPT:
        sqe = get_sqe(lu);
        if (op->u.accept.once)
            io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else
            io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data(sqe, op);
        break;
    case LOOP_OP_CONNECT:
        sqe = get_sqe(lu);
        io_uring_prep_connect(sqe, op->fd, op->u.connect.addr, op->u.connect.len);
        io_uring_sqe_set_data(sqe, op);
        break;
    case LOOP_OP_RECV:
        prep_recv(lu, op);
        break;
    case LOOP_OP_SEND:
        prep_send(lu, op);
        break;
    case LOOP_OP_SPLICE:
        defer(lu, op);
        break;
    case LOOP_OP_POLL:
        prep_poll(lu, op);
        break;
    case LOOP_OP_SENDMSG:
        prep_sendmsg(lu, op);
        break;
    default:
        break;
    }
}

static void uring_cancel(struct loop *loop, struct loop_op *op)
{
    struct loop_uring *lu = (struct loop_uring *)loop;
    struct io_uring_sqe *sqe;

    /* A parked receive or a pending splice attempt is not in the kernel. */
    for (struct loop_op **pp = &lu->nobuf; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            defer_final(lu, op, -ECANCELED);
            return;
        }
    }
    for (struct loop_op *o = lu->deferred; o; o = o->next) {
        if (o == op)
            return; /* the deferred pass sees op->cancelled */
    }
    sqe = get_sqe(lu);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    fire_and_forget(lu, sqe);
}

static void uring_buf_put(struct loop *loop, uint16_t bid)
{
    struct loop_uring *lu = (struct loop_uring *)loop;

    io_uring_buf_ring_add(lu->br, loop_buf(loop, bid), loop->buf_size, bid, lu->br_mask, 0);
    io_uring_buf_ring_advance(lu->br, 1);
    lu->bufs_returned = true;
}

static void splice_attempt(struct loop_op *op)
{
    ssize_t n;

    if (op->cancelled) {
        loop__complete(op, -ECANCELED, 0);
        return;
    }
    do {
        n = splice(op->fd, NULL, op->u.splice.fd_out, NULL, op->u.splice.len,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (n < 0 && errno == EINTR);
    loop__complete(op, n < 0 ? -errno : (int)n, 0);
}

static void run_deferred(struct loop_uring *lu)
{
    while (lu->deferred) {
        struct loop_op *op = lu->deferred;

        lu->deferred = op->next;
        if (!lu->deferred)
            lu->deferred_tail = &lu->deferred;
        if (op->bstate == BS_FINAL) {
            op->bstate = BS_NONE;
            loop__complete(op, op->res, 0);
        } else {
            splice_attempt(op);
        }
    }
}

static void rearm_nobuf(struct loop_uring *lu)
{
    struct loop_op *list = lu->nobuf;

    lu->nobuf = NULL;
    lu->bufs_returned = false;
    while (list) {
        struct loop_op *op = list;

        list = op->next;
        prep_recv(lu, op);
    }
}

static void dispatch(struct loop_uring *lu, struct loop_op *op, int res, unsigned cflags)
{
    unsigned more = (cflags & IORING_CQE_F_MORE) ? LOOP_F_MORE : 0;

    switch (op->kind) {
    case LOOP_OP_ACCEPT:
        loop__complete(op, res, res >= 0 ? more : 0);
        break;
    case LOOP_OP_RECV:
        if (cflags & IORING_CQE_F_BUFFER) {
            op->bid = (uint16_t)(cflags >> IORING_CQE_BUFFER_SHIFT);
            lu->base.buf_out++;
            loop__complete(op, res, more | LOOP_F_BUF);
        } else if (res == -ENOBUFS || res == -EAGAIN || res == -EINTR) {
            /* Transient: the pool ran dry (wait for buffers), or the io-wq
             * corner described for sends below (ask again). For a receive
             * being cancelled either simply means it ended. */
            if (op->cancelled) {
                loop__complete(op, -ECANCELED, 0);
            } else if (res == -ENOBUFS) {
                op->next = lu->nobuf;
                lu->nobuf = op;
                if (op->notify_nobuf)
                    loop__complete(op, -ENOBUFS, LOOP_F_MORE);
            } else {
                prep_recv(lu, op);
            }
        } else {
            loop__complete(op, res, more);
        }
        break;
    case LOOP_OP_SEND:
    case LOOP_OP_SENDMSG:
        if (op->bstate == BS_WAIT_OUT) {
            /* The POLLOUT armed below completed: issue the send again. */
            op->bstate = BS_NONE;
            if (res < 0 || op->cancelled)
                loop__complete(op, op->cancelled ? -ECANCELED : res, 0);
            else
                prep_out(lu, op);
            break;
        }
        if (res == -EAGAIN && !op->cancelled) {
            /* When a send has been polled once and still cannot finish,
             * the kernel hands it to io-wq, where an O_NONBLOCK socket
             * (which splice(2) needs) answers EAGAIN instead of waiting. */
            op->bstate = BS_WAIT_OUT;
            prep_poll_fd(lu, op, op->fd, POLLOUT);
            break;
        }
        /* MSG_WAITALL sends everything unless an error or a signal stops
         * it; resume a short plain send so the caller sees all-or-error
         * (a short sendmsg is reported as is, see loop.h). */
        if (op->kind == LOOP_OP_SEND && res > 0 && !op->cancelled &&
            op->u.send.done + (uint32_t)res < op->u.send.len) {
            op->u.send.done += (uint32_t)res;
            prep_send(lu, op);
            break;
        }
        if (op->kind == LOOP_OP_SEND && res >= 0)
            res = (int)(op->u.send.done + (uint32_t)res);
        loop__complete(op, res, 0);
        break;
    case LOOP_OP_CONNECT:
        loop__complete(op, res, 0);
        break;
    case LOOP_OP_POLL:
        loop__complete(op, res, 0);
        break;
    case LOOP_OP_WAKE:
        prep_wake(lu);
        break;
    default:
        break;
    }
}

static int uring_run_once(struct loop *loop, int timeout_ms)
{
    struct loop_uring *lu = (struct loop_uring *)loop;
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    int ret;

    run_deferred(lu);
    if (lu->bufs_returned && lu->nobuf)
        rearm_nobuf(lu);
    if (lu->deferred)
        timeout_ms = 0;
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    ret = io_uring_submit_and_wait_timeout(&lu->ring, &cqe, 1, &ts, NULL);
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
        return ret;
    loop__update_now(loop);
    for (unsigned n = 0; n < 4096; n++) {
        uint64_t ud;
        int res;
        unsigned flags;

        if (io_uring_peek_cqe(&lu->ring, &cqe) != 0)
            break;
        ud = cqe->user_data;
        res = cqe->res;
        flags = cqe->flags;
        io_uring_cqe_seen(&lu->ring, cqe);
        if (ud != UD_IGNORE)
            dispatch(lu, (struct loop_op *)(uintptr_t)ud, res, flags);
    }
    run_deferred(lu);
    return 0;
}

static void uring_destroy(struct loop *loop)
{
    struct loop_uring *lu = (struct loop_uring *)loop;

    if (lu->ring_ok) {
        if (lu->br)
            io_uring_unregister_buf_ring(&lu->ring, BGID);
        io_uring_queue_exit(&lu->ring);
    }
    if (lu->br)
        munmap(lu->br, lu->br_bytes);
    loop__fini(loop);
    lb_free(lu);
}

/* A close rides along with the next submission instead of costing a system
 * call: at tens of thousands of connections per second that is two fewer
 * calls per connection. IORING_OP_CLOSE runs inline at submission for
 * sockets (no ->flush), so the fd number is gone before any later socket(2)
 * or accept can reuse it. */
static void uring_close(struct loop *loop, int fd)
{
    struct loop_uring *lu = (struct loop_uring *)loop;
    struct io_uring_sqe *sqe;

    if (LOOP_CLOSE_SYSCALL) {
        close(fd);
        return;
    }
    sqe = get_sqe(lu);
    io_uring_prep_close(sqe, fd);
    fire_and_forget(lu, sqe);
}

/*
 * Not IORING_OP_SHUTDOWN: the kernel forces it to io-wq, which looks the fd
 * number up only when the work runs, possibly after our close of that fd
 * and its reuse by a new connection, whose socket it would then shut down.
 */
static void uring_shutdown_wr(struct loop *loop, int fd)
{
    (void)loop;
    /* ENOTCONN means the peer is gone: nothing left to tell it. */
    (void)shutdown(fd, SHUT_WR);
}

static const struct loop_vtbl uring_vtbl = {
    .run_once = uring_run_once,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .buf_put = uring_buf_put,
    .close = uring_close,
    .shutdown_wr = uring_shutdown_wr,
    .destroy = uring_destroy,
};

/* Sets up the ring, preferring the cheapest task-work mode the kernel has. */
static int ring_init(struct io_uring *ring, unsigned entries)
{
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int ret = -EINVAL;

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct io_uring_params p;

        memset(&p, 0, sizeof(p));
        p.flags = modes[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 8;
        ret = io_uring_queue_init_params(entries, ring, &p);
        if (ret != -EINVAL)
            return ret;
    }
    return ret;
}

static int setup_buf_ring(struct loop_uring *lu)
{
    struct io_uring_buf_reg reg;
    uint32_t count = lu->base.buf_count;
    int ret;

    lu->br_bytes = count * sizeof(struct io_uring_buf);
    lu->br = mmap(NULL, lu->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (lu->br == MAP_FAILED) {
        lu->br = NULL;
        return -errno;
    }
    io_uring_buf_ring_init(lu->br);
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)lu->br;
    reg.ring_entries = count;
    reg.bgid = BGID;
    ret = io_uring_register_buf_ring(&lu->ring, &reg, 0);
    if (ret < 0) {
        munmap(lu->br, lu->br_bytes);
        lu->br = NULL;
        return ret;
    }
    lu->br_mask = io_uring_buf_ring_mask(count);
    for (uint32_t i = 0; i < count; i++)
        io_uring_buf_ring_add(lu->br, loop_buf(&lu->base, (uint16_t)i), lu->base.buf_size,
                              (uint16_t)i, lu->br_mask, (int)i);
    io_uring_buf_ring_advance(lu->br, (int)count);
    return 0;
}

int loop__uring_create(const struct loop_params *p, struct loop **out)
{
    struct loop_uring *lu = lb_calloc(1, sizeof(*lu));
    int ret;

    if (!lu)
        return -ENOMEM;
    lu->deferred_tail = &lu->deferred;
    ret = loop__init(&lu->base, LOOP_URING, &uring_vtbl, p);
    if (ret < 0)
        goto err;
    ret = ring_init(&lu->ring, p->entries);
    if (ret < 0)
        goto err;
    lu->ring_ok = true;
    lu->skip_success = lu->ring.features & IORING_FEAT_CQE_SKIP;
    ret = setup_buf_ring(lu);
    if (ret < 0)
        goto err;
    lu->base.wake_op.kind = LOOP_OP_WAKE;
    lu->base.wake_op.inflight = 1;
    prep_wake(lu);
    *out = &lu->base;
    return 0;
err:
    uring_destroy(&lu->base);
    return ret;
}

/*
 * Asks the kernel for what ringlb relies on beyond the opcodes: a provided-
 * buffer ring (Linux 5.19) and a multishot receive into it (6.0), which
 * has no opcode of its own. A receive that stays armed after its first
 * bytes (IORING_CQE_F_MORE) is the proof; an old kernel answers -EINVAL.
 * Distribution kernels backport features, so this asks rather than
 * comparing version numbers.
 */
static int probe_multishot_recv(struct io_uring *ring, const char **why)
{
    static char bufs[2][64];
    struct io_uring_buf_reg reg;
    struct io_uring_buf_ring *br;
    struct io_uring_cqe *cqe;
    struct io_uring_sqe *sqe;
    size_t br_bytes = 2 * sizeof(struct io_uring_buf);
    int sv[2], ret;

    br = mmap(NULL, br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED) {
        *why = "cannot map a buffer ring";
        return -errno;
    }
    io_uring_buf_ring_init(br);
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = 2;
    reg.bgid = BGID;
    ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret < 0) {
        *why = "kernel lacks provided-buffer rings (Linux 5.19)";
        munmap(br, br_bytes);
        return ret;
    }
    for (int i = 0; i < 2; i++)
        io_uring_buf_ring_add(br, bufs[i], sizeof(bufs[i]), (unsigned short)i,
                              io_uring_buf_ring_mask(2), i);
    io_uring_buf_ring_advance(br, 2);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        ret = -errno;
        *why = "cannot make a socket pair to probe with";
        goto out_ring;
    }
    ret = -ENOTSUP;
    *why = "kernel lacks multishot receive (Linux 6.0)";
    if (write(sv[1], "x", 1) != 1)
        goto out;
    sqe = io_uring_get_sqe(ring);
    if (!sqe)
        goto out;
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    if (io_uring_submit_and_wait(ring, 1) < 0 || io_uring_peek_cqe(ring, &cqe) != 0)
        goto out;
    if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER))
        ret = 0;
    io_uring_cqe_seen(ring, cqe);
out:
    close(sv[0]);
    close(sv[1]);
out_ring:
    /* io_uring_queue_exit() cancels the receive still armed. */
    io_uring_unregister_buf_ring(ring, BGID);
    munmap(br, br_bytes);
    return ret;
}

static int probe_once(const char **why)
{
    struct io_uring ring;
    struct io_uring_probe *probe;
    static const int ops[] = {IORING_OP_ACCEPT,      IORING_OP_CONNECT,  IORING_OP_RECV,
                              IORING_OP_SEND,        IORING_OP_POLL_ADD, IORING_OP_READ,
                              IORING_OP_ASYNC_CANCEL};
    int ret;

    ret = io_uring_queue_init(8, &ring, 0);
    if (ret == -ENOSYS) {
        *why = "io_uring_setup is not available (kernel without io_uring, or seccomp)";
        return ret;
    }
    if (ret == -EPERM) {
        *why = "io_uring is disabled (sysctl kernel.io_uring_disabled)";
        return ret;
    }
    if (ret < 0) {
        *why = strerror(-ret);
        return ret;
    }
    probe = io_uring_get_probe_ring(&ring);
    ret = 0;
    if (!probe) {
        *why = "cannot probe io_uring opcodes";
        ret = -ENOTSUP;
    } else {
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            if (!io_uring_opcode_supported(probe, ops[i])) {
                *why = "kernel lacks a needed io_uring opcode";
                ret = -ENOTSUP;
                break;
            }
        }
        io_uring_free_probe(probe);
    }
    if (ret == 0)
        ret = probe_multishot_recv(&ring, why);
    io_uring_queue_exit(&ring);
    return ret;
}

/*
 * The kernel does not change under a running process: probe once, however
 * many threads ask (ringbench's workers each do). Besides saving the rings,
 * this keeps two threads from mapping and unmapping probe rings at the same
 * addresses at the same time, which ThreadSanitizer cannot tell from a race.
 */
static pthread_once_t probe_ran = PTHREAD_ONCE_INIT;
static int probe_ret;
static const char *probe_why;

static void probe_run(void)
{
    probe_ret = probe_once(&probe_why);
}

int loop_uring_probe(const char **why)
{
    pthread_once(&probe_ran, probe_run);
    if (probe_ret < 0)
        *why = probe_why;
    return probe_ret;
}
