/*
 * loop_int.h - what loop.c shares with its two backends. Not for callers of
 * the loop: they use loop.h.
 */
#ifndef LB_LOOP_INT_H
#define LB_LOOP_INT_H

#include "loop.h"

struct loop_bufmeta {
    int32_t next; /* next buffer in a buf_queue, -1 at the tail */
    uint32_t len; /* valid bytes */
};

struct loop_vtbl {
    int (*run_once)(struct loop *loop, int timeout_ms);
    void (*submit)(struct loop *loop, struct loop_op *op);
    void (*cancel)(struct loop *loop, struct loop_op *op);
    void (*buf_put)(struct loop *loop, uint16_t bid);
    void (*close)(struct loop *loop, int fd);
    void (*forget)(struct loop *loop, int fd); /* NULL: nothing to forget */
    void (*shutdown_wr)(struct loop *loop, int fd);
    void (*destroy)(struct loop *loop);
};

/* The part of a loop common to both backends; each backend embeds it first. */
struct loop {
    const struct loop_vtbl *vt;
    enum loop_backend backend;
    uint64_t now;
    struct timer_heap timers;
    char *buf_mem;
    uint32_t buf_size;
    uint32_t buf_count;
    uint32_t buf_out; /* handed to callers by receives, not yet put back */
    struct loop_bufmeta *meta;
    int wake_fd; /* eventfd, owned by the loop's creator */
    struct loop_op wake_op;
    uint64_t wake_val;
};

/* Sets up the common part (buffers, timers, eventfd). Returns 0 or -errno. */
int loop__init(struct loop *loop, enum loop_backend backend, const struct loop_vtbl *vt,
               const struct loop_params *p);
void loop__fini(struct loop *loop);
void loop__update_now(struct loop *loop);
/* Milliseconds until the next timer, capped at <max_ms>; 0 if one is due
 * (inline: asked once or twice per loop turn). */
static inline int loop__timeout(struct loop *loop, uint32_t max_ms)
{
    uint64_t next = timer_next(&loop->timers);

    if (next == TIMER_NONE)
        return (int)max_ms;
    if (next <= loop->now)
        return 0;
    return next - loop->now < max_ms ? (int)(next - loop->now) : (int)max_ms;
}

int loop__uring_create(const struct loop_params *p, struct loop **out);
int loop__epoll_create(const struct loop_params *p, struct loop **out);

/* Completes <op>: clears inflight unless LOOP_F_MORE, then calls back. */
static inline void loop__complete(struct loop_op *op, int res, unsigned flags)
{
    if (!(flags & LOOP_F_MORE))
        op->inflight = 0;
    op->cb(op, res, flags);
}

#endif
