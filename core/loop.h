/*
 * loop.h - the per-worker event loop: a completion interface with two backends.
 *
 * Callers submit operations and get one callback per completion (STYLE point
 * 5): loop_uring.c maps them to io_uring SQEs, loop_epoll.c performs the
 * same operations on edge-triggered epoll readiness. The connection code
 * above never knows which backend runs it.
 *
 * Rules shared by both backends:
 *  - A struct loop_op is owned by the caller and must stay alive until its
 *    final completion (one without LOOP_F_MORE) has been delivered.
 *  - A callback never runs inside a loop_submit_*() call; it runs from
 *    loop_run_once(). This keeps the connection state machine free of
 *    re-entrancy.
 *  - Multishot operations (accept, recv) stay armed while completions carry
 *    LOOP_F_MORE; a completion without it is final, and the op may be
 *    submitted again.
 *  - loop_cancel() asks for the op to stop; its final completion follows
 *    later (with -ECANCELED or its real result if it had already finished).
 *  - A loop belongs to one thread, the one that created it (io_uring's
 *    SINGLE_ISSUER requires it); other threads wake it through the eventfd
 *    given in struct loop_params.
 *
 * Receive buffers: the loop owns a pool of fixed-size buffers (an io_uring
 * provided-buffer ring, or a free list under epoll). A recv completion with
 * LOOP_F_BUF hands buffer <op->bid> to the caller, who returns it with
 * loop_buf_put() once its bytes are sent. Idle connections hold no buffer.
 */
#ifndef LB_LOOP_H
#define LB_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "timer.h"

struct loop;
struct loop_op;

/* Completion flags. */
#define LOOP_F_MORE (1u << 0) /* a multishot op stays armed */
#define LOOP_F_BUF  (1u << 1) /* <op->bid> holds <res> received bytes */

typedef void (*loop_cb)(struct loop_op *op, int res, unsigned flags);

enum loop_op_kind {
    LOOP_OP_NONE = 0,
    LOOP_OP_ACCEPT,
    LOOP_OP_CONNECT,
    LOOP_OP_RECV,
    LOOP_OP_SEND,
    LOOP_OP_SPLICE,
    LOOP_OP_POLL,
    LOOP_OP_SENDMSG,
    LOOP_OP_WAKE, /* internal: the cross-thread wake-up eventfd */
};

struct loop_op {
    loop_cb cb;
    int fd;
    uint8_t kind;     /* enum loop_op_kind */
    uint8_t inflight; /* set by submit, cleared before the final callback */
    uint8_t cancelled;
    uint8_t out;          /* splice: the socket is fd_out; poll: wait for output */
    uint8_t notify_nobuf; /* recv: report waits for buffers (loop_submit_recv) */
    uint16_t bid;         /* recv: buffer of the completion */
    uint8_t bstate;       /* backend-private: where the op waits */
    int32_t res;          /* backend-private: a result waiting to be delivered */
    union {
        struct {
            const void *buf;
            uint32_t len;
            uint32_t done; /* epoll backend: bytes already sent */
        } send;
        struct {
            int fd_out;
            uint32_t len;
        } splice;
        struct msghdr *msg; /* sendmsg */
        struct {
            const struct sockaddr *addr;
            socklen_t len;
            uint8_t started; /* epoll backend: connect(2) already called */
        } connect;
        struct {
            uint8_t once; /* loop_submit_accept_one: final after one client */
        } accept;
    } u;
    struct loop_op *next; /* backend-private queue link */
};

enum loop_backend { LOOP_URING = 1, LOOP_EPOLL = 2 };

struct loop_params {
    uint32_t buf_size;  /* bytes per receive buffer */
    uint32_t buf_count; /* buffers in the pool, power of two <= 32768 */
    uint32_t entries;   /* io_uring SQ entries */
    int wake_fd;        /* an eventfd owned by the caller: writing to it, from
                           any thread, ends the loop's current wait */
};

/*
 * Probes whether io_uring can run here with the features ringlb needs.
 * Returns 0 or -errno, and a human reason in <why> on failure (ENOSYS:
 * kernel without io_uring or seccomp; EPERM: kernel.io_uring_disabled).
 */
int loop_uring_probe(const char **why);

/* Creates a loop of <backend> for the calling thread. Returns 0 or -errno. */
int loop_create(enum loop_backend backend, const struct loop_params *p, struct loop **out);
void loop_destroy(struct loop *loop);

/*
 * Runs one turn: submits what is queued, waits until at least one event or
 * the nearest timer (never longer than <max_wait_ms>), dispatches
 * completions and expired timers. Returns 0 or -errno on a fatal error.
 */
int loop_run_once(struct loop *loop, uint32_t max_wait_ms);

/* Monotonic milliseconds, cached once per turn. */
uint64_t loop_now(const struct loop *loop);
struct timer_heap *loop_timers(struct loop *loop);
enum loop_backend loop_backend(const struct loop *loop);

/* Multishot accept of non-blocking, close-on-exec sockets; res is the fd. */
void loop_submit_accept(struct loop *loop, struct loop_op *op, int fd);
/*
 * Accepts one client, then completes for good (no LOOP_F_MORE). A multishot
 * accept may take the whole listen backlog before its owner can stop it;
 * this one leaves every other client in the kernel's queue.
 */
void loop_submit_accept_one(struct loop *loop, struct loop_op *op, int fd);
/* Non-blocking connect of <fd> (created SOCK_NONBLOCK); res 0 or -errno. */
void loop_submit_connect(struct loop *loop, struct loop_op *op, int fd, const struct sockaddr *addr,
                         socklen_t len);
/*
 * Multishot receive into pool buffers; res > 0 bytes, 0 EOF, or -errno.
 * When the pool is empty the receive waits, still armed, until buffers
 * come back; with <op->notify_nobuf> set it says so first with one
 * completion of -ENOBUFS and LOOP_F_MORE, so that its owner may cancel it
 * and move the bytes another way.
 */
void loop_submit_recv(struct loop *loop, struct loop_op *op, int fd);
/* Sends all <len> bytes unless an error stops it; res is bytes sent or -errno. */
void loop_submit_send(struct loop *loop, struct loop_op *op, int fd, const void *buf, uint32_t len);
/*
 * Sends the iovecs of <msg>, which must stay untouched until completion.
 * res is the bytes sent (at least one, possibly fewer than asked when the
 * socket buffer filled up: send the rest with a new op) or -errno.
 */
void loop_submit_sendmsg(struct loop *loop, struct loop_op *op, int fd, struct msghdr *msg);
/*
 * Moves up to <len> bytes from <fd_in> to <fd_out> with splice(2), one of
 * them a pipe, <sock_out> telling which side is the socket. Never waits:
 * res > 0 bytes moved, 0 end of input, -EAGAIN when the socket side is not
 * ready (wait for it with loop_submit_poll), or -errno. The caller must know
 * the pipe side is ready (room or data), so -EAGAIN is never ambiguous.
 */
void loop_submit_splice(struct loop *loop, struct loop_op *op, int fd_in, int fd_out, uint32_t len,
                        bool sock_out);
/* Completes (res >= 0) once <fd> is readable, or writable with <out>, or in error. */
void loop_submit_poll(struct loop *loop, struct loop_op *op, int fd, bool out);
/* Requests cancellation of an in-flight <op>; no-op when not in flight. */
void loop_cancel(struct loop *loop, struct loop_op *op);
/* shutdown(fd, SHUT_WR): forwards a FIN. Queued, like the ops; errors are
 * ignored (the peer may be gone already). */
void loop_shutdown_wr(struct loop *loop, int fd);
/*
 * Closes <fd>. Every op on it must have been cancelled first (their final
 * completions may still be pending: io_uring holds its own file reference).
 */
void loop_close(struct loop *loop, int fd);
/*
 * Lets go of <fd> without closing it: another thread owns and closes it (a
 * listener shared by several workers). After this the loop keeps no state
 * about the fd number, so a socket that reuses it later starts afresh. Ops
 * on <fd> must have been cancelled first.
 */
void loop_forget(struct loop *loop, int fd);

/* Receive buffer pool. */
void *loop_buf(struct loop *loop, uint16_t bid);
uint32_t loop_buf_size(const struct loop *loop);
void loop_buf_put(struct loop *loop, uint16_t bid);
/* Buffers in the pool now, not handed out with a receive. */
uint32_t loop_buf_avail(const struct loop *loop);

/*
 * A FIFO of received buffers, linked through the pool's per-buffer metadata
 * so that queueing never allocates: each buffer is owned by one queue at a
 * time.
 */
struct buf_queue {
    int32_t head; /* -1 when empty */
    int32_t tail;
    uint32_t bytes; /* unsent bytes in the queue */
    uint32_t off;   /* bytes of the head buffer already sent */
};

void loop_bufq_init(struct buf_queue *q);
void loop_bufq_push(struct loop *loop, struct buf_queue *q, uint16_t bid, uint32_t len);
/* The unsent part of the head buffer; returns its length, 0 when empty. */
uint32_t loop_bufq_peek(struct loop *loop, const struct buf_queue *q, const void **data);
/* Fills up to <max> iovecs with the unsent bytes of <q>; returns how many. */
int loop_bufq_iov(struct loop *loop, const struct buf_queue *q, struct iovec *iov, int max);
/* Marks <n> bytes of the head as sent, releasing buffers that are done. */
void loop_bufq_consume(struct loop *loop, struct buf_queue *q, uint32_t n);
/* Returns every queued buffer to the pool. */
void loop_bufq_clear(struct loop *loop, struct buf_queue *q);

#endif
