/*
 * loop.c - backend selection, timers, and the receive-buffer queues shared
 * by loop_uring.c and loop_epoll.c.
 */
#include "loop_int.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

int loop_create(enum loop_backend backend, const struct loop_params *p, struct loop **out)
{
    if (p->buf_count == 0 || p->buf_count > 32768 || (p->buf_count & (p->buf_count - 1)))
        return -EINVAL;
    if (backend == LOOP_URING)
        return loop__uring_create(p, out);
    return loop__epoll_create(p, out);
}

void loop_destroy(struct loop *loop)
{
    if (loop)
        loop->vt->destroy(loop);
}

int loop__init(struct loop *loop, enum loop_backend backend, const struct loop_vtbl *vt,
               const struct loop_params *p)
{
    size_t bytes = (size_t)p->buf_size * p->buf_count;

    loop->vt = vt;
    loop->backend = backend;
    timer_heap_init(&loop->timers);
    loop->buf_size = p->buf_size;
    loop->buf_count = p->buf_count;
    loop->wake_fd = -1;
    /* mmap rather than malloc: the pages are touched only as buffers are
     * first used, and the region is page-aligned for the kernel. */
    loop->buf_mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (loop->buf_mem == MAP_FAILED) {
        loop->buf_mem = NULL;
        return -errno;
    }
    loop->meta = lb_calloc(p->buf_count, sizeof(*loop->meta));
    if (!loop->meta)
        return -ENOMEM;
    loop->wake_fd = p->wake_fd;
    loop__update_now(loop);
    return 0;
}

void loop__fini(struct loop *loop)
{
    if (loop->buf_mem)
        munmap(loop->buf_mem, (size_t)loop->buf_size * loop->buf_count);
    loop->buf_mem = NULL;
    lb_free(loop->meta);
    loop->meta = NULL;
    timer_heap_free(&loop->timers);
}

void loop__update_now(struct loop *loop)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_run_once(struct loop *loop, uint32_t max_wait_ms)
{
    int ret = loop->vt->run_once(loop, loop__timeout(loop, max_wait_ms));

    loop__update_now(loop);
    timer_run(&loop->timers, loop->now);
    return ret;
}

uint64_t loop_now(const struct loop *loop)
{
    return loop->now;
}

struct timer_heap *loop_timers(struct loop *loop)
{
    return &loop->timers;
}

enum loop_backend loop_backend(const struct loop *loop)
{
    return loop->backend;
}

static void submit(struct loop *loop, struct loop_op *op, uint8_t kind, int fd)
{
    op->kind = kind;
    op->fd = fd;
    op->inflight = 1;
    op->cancelled = 0;
    op->bstate = 0;
    loop->vt->submit(loop, op);
}

void loop_submit_accept(struct loop *loop, struct loop_op *op, int fd)
{
    op->u.accept.once = 0;
    submit(loop, op, LOOP_OP_ACCEPT, fd);
}

void loop_submit_accept_one(struct loop *loop, struct loop_op *op, int fd)
{
    op->u.accept.once = 1;
    submit(loop, op, LOOP_OP_ACCEPT, fd);
}

void loop_submit_connect(struct loop *loop, struct loop_op *op, int fd, const struct sockaddr *addr,
                         socklen_t len)
{
    op->u.connect.addr = addr;
    op->u.connect.len = len;
    op->u.connect.started = 0;
    submit(loop, op, LOOP_OP_CONNECT, fd);
}

void loop_submit_recv(struct loop *loop, struct loop_op *op, int fd)
{
    submit(loop, op, LOOP_OP_RECV, fd);
}

void loop_submit_send(struct loop *loop, struct loop_op *op, int fd, const void *buf, uint32_t len)
{
    op->u.send.buf = buf;
    op->u.send.len = len;
    op->u.send.done = 0;
    submit(loop, op, LOOP_OP_SEND, fd);
}

void loop_submit_sendmsg(struct loop *loop, struct loop_op *op, int fd, struct msghdr *msg)
{
    op->u.msg = msg;
    submit(loop, op, LOOP_OP_SENDMSG, fd);
}

void loop_submit_splice(struct loop *loop, struct loop_op *op, int fd_in, int fd_out, uint32_t len,
                        bool sock_out)
{
    op->u.splice.fd_out = fd_out;
    op->u.splice.len = len;
    op->out = sock_out;
    submit(loop, op, LOOP_OP_SPLICE, fd_in);
}

void loop_submit_poll(struct loop *loop, struct loop_op *op, int fd, bool out)
{
    op->out = out;
    submit(loop, op, LOOP_OP_POLL, fd);
}

void loop_cancel(struct loop *loop, struct loop_op *op)
{
    if (!op->inflight || op->cancelled)
        return;
    op->cancelled = 1;
    loop->vt->cancel(loop, op);
}

void loop_close(struct loop *loop, int fd)
{
    if (fd >= 0)
        loop->vt->close(loop, fd);
}

void loop_forget(struct loop *loop, int fd)
{
    if (fd >= 0 && loop->vt->forget)
        loop->vt->forget(loop, fd);
}

void loop_shutdown_wr(struct loop *loop, int fd)
{
    loop->vt->shutdown_wr(loop, fd);
}

void *loop_buf(struct loop *loop, uint16_t bid)
{
    return loop->buf_mem + (size_t)bid * loop->buf_size;
}

uint32_t loop_buf_size(const struct loop *loop)
{
    return loop->buf_size;
}

void loop_buf_put(struct loop *loop, uint16_t bid)
{
    loop->buf_out--;
    loop->vt->buf_put(loop, bid);
}

uint32_t loop_buf_avail(const struct loop *loop)
{
    return loop->buf_count - loop->buf_out;
}

void loop_bufq_init(struct buf_queue *q)
{
    q->head = q->tail = -1;
    q->bytes = 0;
    q->off = 0;
}

void loop_bufq_push(struct loop *loop, struct buf_queue *q, uint16_t bid, uint32_t len)
{
    loop->meta[bid].next = -1;
    loop->meta[bid].len = len;
    if (q->tail >= 0)
        loop->meta[q->tail].next = bid;
    else
        q->head = bid;
    q->tail = bid;
    q->bytes += len;
}

uint32_t loop_bufq_peek(struct loop *loop, const struct buf_queue *q, const void **data)
{
    if (q->head < 0)
        return 0;
    *data = (const char *)loop_buf(loop, (uint16_t)q->head) + q->off;
    return loop->meta[q->head].len - q->off;
}

int loop_bufq_iov(struct loop *loop, const struct buf_queue *q, struct iovec *iov, int max)
{
    int n = 0;
    uint32_t off = q->off;

    for (int32_t bid = q->head; bid >= 0 && n < max; bid = loop->meta[bid].next) {
        iov[n].iov_base = (char *)loop_buf(loop, (uint16_t)bid) + off;
        iov[n].iov_len = loop->meta[bid].len - off;
        off = 0;
        n++;
    }
    return n;
}

void loop_bufq_consume(struct loop *loop, struct buf_queue *q, uint32_t n)
{
    q->bytes -= n;
    while (n > 0 && q->head >= 0) {
        uint16_t bid = (uint16_t)q->head;
        uint32_t left = loop->meta[bid].len - q->off;

        if (n < left) {
            q->off += n;
            return;
        }
        n -= left;
        q->off = 0;
        q->head = loop->meta[bid].next;
        if (q->head < 0)
            q->tail = -1;
        loop_buf_put(loop, bid);
    }
}

void loop_bufq_clear(struct loop *loop, struct buf_queue *q)
{
    loop_bufq_consume(loop, q, q->bytes);
    loop_bufq_init(q);
}
