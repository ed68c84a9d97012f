/*
 * test_loop.c - the event-loop contract, run against both backends: every
 * test body runs once on io_uring (skipped when the kernel lacks it, and
 * reported as skipped) and once on epoll.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../core/loop.h"

struct ctx {
    struct loop *loop;
    int wake_fd;
};

struct rec {
    struct loop_op op;
    int calls;
    int last_res;
    unsigned last_flags;
    int finals;
    size_t bytes;
    unsigned char data[1 << 20];
};

static void rec_cb(struct loop_op *op, int res, unsigned flags)
{
    struct rec *r = (struct rec *)((char *)op - offsetof(struct rec, op));

    r->calls++;
    r->last_res = res;
    r->last_flags = flags;
    if (!(flags & LOOP_F_MORE))
        r->finals++;
}

static struct loop *g_loop;

static void recv_cb(struct loop_op *op, int res, unsigned flags)
{
    struct rec *r = (struct rec *)((char *)op - offsetof(struct rec, op));

    rec_cb(op, res, flags);
    if (res > 0 && (flags & LOOP_F_BUF)) {
        if (r->bytes + (size_t)res <= sizeof(r->data))
            memcpy(r->data + r->bytes, loop_buf(g_loop, op->bid), (size_t)res);
        r->bytes += (size_t)res;
        loop_buf_put(g_loop, op->bid);
    }
}

static int setup(void **state, enum loop_backend b)
{
    static struct ctx c;
    struct loop_params p = {.buf_size = 4096, .buf_count = 64, .entries = 64};
    const char *why;

    *state = NULL;
    if (b == LOOP_URING && loop_uring_probe(&why) != 0) {
        /* The test body reports the skip. */
        print_message("io_uring unavailable: %s\n", why);
        return 0;
    }
    c.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p.wake_fd = c.wake_fd;
    if (loop_create(b, &p, &c.loop) != 0)
        return -1;
    g_loop = c.loop;
    *state = &c;
    return 0;
}

static int setup_uring(void **state)
{
    return setup(state, LOOP_URING);
}

static int setup_epoll(void **state)
{
    return setup(state, LOOP_EPOLL);
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    if (!c)
        return 0;
    loop_destroy(c->loop);
    close(c->wake_fd);
    return 0;
}

/* The test's loop, or a cmocka skip when its backend cannot run here. */
static struct ctx *ctx_or_skip(void **state)
{
    if (!*state)
        skip();
    return *state;
}

/* Runs the loop until <cond> holds or 200 turns (about 2 s) pass. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int _i = 0; _i < 200 && !(cond); _i++)                                                \
            assert_int_equal(loop_run_once(loop, 10), 0);                                          \
        assert_true(cond);                                                                         \
    } while (0)

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void test_recv_multishot_eof(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec r;
    int sv[2];

    memset(&r, 0, sizeof(r));
    pair(sv);
    r.op.cb = recv_cb;
    loop_submit_recv(c->loop, &r.op, sv[0]);
    assert_int_equal(r.calls, 0); /* never called back from inside submit */
    assert_int_equal(write(sv[1], "hello", 5), 5);
    RUN_UNTIL(c->loop, r.bytes == 5);
    assert_memory_equal(r.data, "hello", 5);
    assert_true(r.last_flags & LOOP_F_BUF);
    assert_int_equal(r.finals, 0);
    assert_int_equal(write(sv[1], " world", 6), 6);
    shutdown(sv[1], SHUT_WR);
    RUN_UNTIL(c->loop, r.finals == 1);
    assert_int_equal(r.bytes, 11);
    assert_memory_equal(r.data, "hello world", 11);
    assert_int_equal(r.last_res, 0);
    assert_false(r.op.inflight);
    loop_close(c->loop, sv[0]);
    close(sv[1]);
}

static void test_cancel_recv(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec r;
    int sv[2];

    memset(&r, 0, sizeof(r));
    pair(sv);
    r.op.cb = recv_cb;
    loop_submit_recv(c->loop, &r.op, sv[0]);
    loop_run_once(c->loop, 0);
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 1);
    assert_int_equal(r.last_res, -ECANCELED);
    assert_false(r.op.inflight);
    /* After a cancel the op can be submitted again and works. */
    loop_submit_recv(c->loop, &r.op, sv[0]);
    assert_int_equal(write(sv[1], "x", 1), 1);
    RUN_UNTIL(c->loop, r.bytes == 1);
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 2);
    loop_close(c->loop, sv[0]);
    close(sv[1]);
}

static void test_buffers_run_dry_and_recover(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec r;
    static unsigned char big[64 * 4096 * 2];
    uint16_t held[64];
    int nheld = 0, sv[2];
    size_t sent = 0;

    memset(&r, 0, sizeof(r));
    pair(sv);
    /* Hold every buffer: the receive must wait, not fail or lose data. */
    r.op.cb = rec_cb;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7);
    loop_submit_recv(c->loop, &r.op, sv[0]);
    for (int turn = 0; turn < 400 && r.calls < 64; turn++) {
        ssize_t n = sent < sizeof(big) ? write(sv[1], big + sent, sizeof(big) - sent) : 0;
        int before = r.calls;

        if (n > 0)
            sent += (size_t)n;
        loop_run_once(c->loop, 5);
        /* rec_cb does not return buffers; remember them. */
        for (int k = before; k < r.calls && nheld < 64; k++)
            held[nheld++] = r.op.bid;
    }
    assert_int_equal(r.finals, 0);
    assert_true(r.op.inflight);
    assert_int_equal(loop_buf_avail(c->loop), 64 - nheld);
    /* Hand them back; the receive resumes by itself. */
    for (int k = 0; k < nheld; k++)
        loop_buf_put(c->loop, held[k]);
    assert_int_equal(loop_buf_avail(c->loop), 64);
    r.op.cb = recv_cb;
    r.bytes = 0;
    RUN_UNTIL(c->loop, r.bytes > 0);
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 1);
    loop_close(c->loop, sv[0]);
    close(sv[1]);
}

static void test_send_all(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec w, r;
    static unsigned char payload[1 << 20];
    int sv[2];

    memset(&w, 0, sizeof(w));
    memset(&r, 0, sizeof(r));
    pair(sv);
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)(i * 31 + 7);
    w.op.cb = rec_cb;
    r.op.cb = recv_cb;
    /* 1 MiB is far more than the socket buffer: the send must complete
     * whole while the reader drains the other end. */
    loop_submit_send(c->loop, &w.op, sv[0], payload, sizeof(payload));
    loop_submit_recv(c->loop, &r.op, sv[1]);
    RUN_UNTIL(c->loop, w.finals == 1 && r.bytes == sizeof(payload));
    assert_int_equal(w.last_res, (int)sizeof(payload));
    assert_memory_equal(r.data, payload, sizeof(payload));
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 1);
    loop_close(c->loop, sv[0]);
    loop_close(c->loop, sv[1]);
}

static void test_sendmsg_gathers(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec w, r;
    static unsigned char payload[3][300000];
    struct iovec iov[3];
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
    size_t sent = 0, total = sizeof(payload);
    int sv[2];

    memset(&w, 0, sizeof(w));
    memset(&r, 0, sizeof(r));
    pair(sv);
    for (size_t i = 0; i < total; i++)
        ((unsigned char *)payload)[i] = (unsigned char)(i * 13 + 5);
    w.op.cb = rec_cb;
    r.op.cb = recv_cb;
    loop_submit_recv(c->loop, &r.op, sv[1]);
    /* A sendmsg may be short when the socket fills: resubmit the rest,
     * as conn.c does, until everything is out. */
    while (sent < total) {
        size_t skip = sent;
        int n = 0;

        for (int k = 0; k < 3; k++) {
            size_t len = sizeof(payload[k]);

            if (skip >= len) {
                skip -= len;
                continue;
            }
            iov[n].iov_base = payload[k] + skip;
            iov[n].iov_len = len - skip;
            skip = 0;
            n++;
        }
        msg.msg_iovlen = (size_t)n;
        loop_submit_sendmsg(c->loop, &w.op, sv[0], &msg);
        RUN_UNTIL(c->loop, !w.op.inflight);
        assert_true(w.last_res > 0);
        sent += (size_t)w.last_res;
    }
    RUN_UNTIL(c->loop, r.bytes == total);
    assert_memory_equal(r.data, payload, sizeof(r.data) < total ? sizeof(r.data) : total);
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 1);
    loop_close(c->loop, sv[0]);
    loop_close(c->loop, sv[1]);
}

static void test_splice_through_pipe(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec in, out;
    int sv[2], pfd[2];
    char buf[16];

    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
    pair(sv);
    assert_int_equal(pipe2(pfd, O_NONBLOCK), 0);
    in.op.cb = rec_cb;
    out.op.cb = rec_cb;
    /* Empty socket: the splice says so instead of waiting... */
    loop_submit_splice(c->loop, &in.op, sv[0], pfd[1], 65536, false);
    assert_int_equal(in.calls, 0);
    RUN_UNTIL(c->loop, in.finals == 1);
    assert_int_equal(in.last_res, -EAGAIN);
    /* ...and a poll waits for the data. */
    loop_submit_poll(c->loop, &in.op, sv[0], false);
    for (int i = 0; i < 3; i++)
        loop_run_once(c->loop, 0);
    assert_int_equal(in.finals, 1);
    assert_int_equal(write(sv[1], "spliced", 7), 7);
    RUN_UNTIL(c->loop, in.finals == 2);
    assert_true(in.last_res >= 0);
    loop_submit_splice(c->loop, &in.op, sv[0], pfd[1], 65536, false);
    RUN_UNTIL(c->loop, in.finals == 3);
    assert_int_equal(in.last_res, 7);
    loop_submit_splice(c->loop, &out.op, pfd[0], sv[0], 7, true);
    RUN_UNTIL(c->loop, out.finals == 1);
    assert_int_equal(out.last_res, 7);
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "spliced", 7);
    /* Cancel of a waiting poll (after an -EAGAIN: a poll may complete
     * spuriously while the backend still believes the socket readable). */
    loop_submit_splice(c->loop, &in.op, sv[0], pfd[1], 65536, false);
    RUN_UNTIL(c->loop, in.finals == 4);
    assert_int_equal(in.last_res, -EAGAIN);
    loop_submit_poll(c->loop, &in.op, sv[0], false);
    loop_run_once(c->loop, 0);
    loop_run_once(c->loop, 0);
    assert_int_equal(in.finals, 4);
    loop_cancel(c->loop, &in.op);
    RUN_UNTIL(c->loop, in.finals == 5);
    assert_int_equal(in.last_res, -ECANCELED);
    /* EOF: a poll completes and the splice reads 0. */
    shutdown(sv[1], SHUT_WR);
    loop_submit_poll(c->loop, &in.op, sv[0], false);
    RUN_UNTIL(c->loop, in.finals == 6);
    loop_submit_splice(c->loop, &in.op, sv[0], pfd[1], 65536, false);
    RUN_UNTIL(c->loop, in.finals == 7);
    assert_int_equal(in.last_res, 0);
    close(pfd[0]);
    close(pfd[1]);
    loop_close(c->loop, sv[0]);
    close(sv[1]);
}

static void test_accept_connect(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec acc, con;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    memset(&acc, 0, sizeof(acc));
    memset(&con, 0, sizeof(con));
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    acc.op.cb = rec_cb;
    con.op.cb = rec_cb;
    loop_submit_accept(c->loop, &acc.op, lfd);
    loop_submit_connect(c->loop, &con.op, cfd, (struct sockaddr *)&sa, sizeof(sa));
    RUN_UNTIL(c->loop, con.finals == 1 && acc.calls == 1);
    assert_int_equal(con.last_res, 0);
    assert_true(acc.last_res >= 0);
    assert_true(acc.last_flags & LOOP_F_MORE); /* multishot stays armed */
    close(acc.last_res);
    loop_cancel(c->loop, &acc.op);
    RUN_UNTIL(c->loop, acc.finals == 1);
    loop_close(c->loop, lfd);
    loop_close(c->loop, cfd);
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port, in <sa>. */
static int listen_any(struct sockaddr_in *sa)
{
    socklen_t len = sizeof(*sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)sa, &len), 0);
    return lfd;
}

/* A single accept takes one client and leaves the next in the backlog. */
static void test_accept_one(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec acc;
    struct sockaddr_in sa;
    int lfd = listen_any(&sa), cl[2], left;

    memset(&acc, 0, sizeof(acc));
    for (int i = 0; i < 2; i++) {
        cl[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(cl[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    acc.op.cb = rec_cb;
    loop_submit_accept_one(c->loop, &acc.op, lfd);
    RUN_UNTIL(c->loop, acc.finals == 1);
    for (int i = 0; i < 5; i++)
        loop_run_once(c->loop, 1);
    assert_int_equal(acc.calls, 1);
    assert_true(acc.last_res >= 0);
    assert_false(acc.last_flags & LOOP_F_MORE);
    close(acc.last_res);
    left = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    assert_true(left >= 0); /* the second client waited in the backlog */
    close(left);
    /* Submitted again, it waits for the next client. */
    loop_submit_accept_one(c->loop, &acc.op, lfd);
    loop_run_once(c->loop, 1);
    assert_int_equal(acc.finals, 1);
    loop_cancel(c->loop, &acc.op);
    RUN_UNTIL(c->loop, acc.finals == 2);
    assert_int_equal(acc.last_res, -ECANCELED);
    for (int i = 0; i < 2; i++)
        close(cl[i]);
    loop_close(c->loop, lfd);
}

/*
 * A listener shared with other threads is let go with loop_forget() and
 * closed elsewhere; a socket that then gets the same fd number must be
 * watched afresh (epoll once kept the old record and never woke it).
 */
static void test_forget_fd(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec acc, r;
    struct sockaddr_in sa;
    int lfd = listen_any(&sa), sv[2], num;

    memset(&acc, 0, sizeof(acc));
    memset(&r, 0, sizeof(r));
    acc.op.cb = rec_cb;
    loop_submit_accept(c->loop, &acc.op, lfd);
    loop_run_once(c->loop, 1); /* parked on the listener */
    loop_cancel(c->loop, &acc.op);
    RUN_UNTIL(c->loop, acc.finals == 1);
    loop_forget(c->loop, lfd);
    num = lfd;
    close(lfd);
    pair(sv);
    if (sv[0] != num) {
        assert_int_equal(dup2(sv[0], num), num);
        close(sv[0]);
        sv[0] = num;
    }
    r.op.cb = recv_cb;
    loop_submit_recv(c->loop, &r.op, sv[0]);
    loop_run_once(c->loop, 1);
    assert_int_equal(write(sv[1], "ping", 4), 4);
    RUN_UNTIL(c->loop, r.bytes == 4);
    loop_cancel(c->loop, &r.op);
    RUN_UNTIL(c->loop, r.finals == 1);
    loop_close(c->loop, sv[0]);
    close(sv[1]);
}

static void test_connect_refused(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec con;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    memset(&con, 0, sizeof(con));
    /* A port that was just free: bound, then closed without listening. */
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &len), 0);
    close(probe);
    con.op.cb = rec_cb;
    loop_submit_connect(c->loop, &con.op, cfd, (struct sockaddr *)&sa, sizeof(sa));
    RUN_UNTIL(c->loop, con.finals == 1);
    assert_int_equal(con.last_res, -ECONNREFUSED);
    loop_close(c->loop, cfd);
}

static void timer_fired(struct timer *t, uint64_t now)
{
    (void)now;
    t->cb = NULL;
}

static void test_timer_wakes_loop(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    struct timer t;
    uint64_t start = loop_now(c->loop);

    timer_init(&t, timer_fired);
    assert_int_equal(timer_arm(loop_timers(c->loop), &t, start + 30), 0);
    RUN_UNTIL(c->loop, t.cb == NULL);
    assert_true(loop_now(c->loop) >= start + 30);
}

/*
 * A wait armed for a far deadline, then given an earlier one, must wake at
 * the earlier one. A backend that kept its first deadline (say, one timer
 * armed across waits and never moved) would sleep until the far one (1 s),
 * which the last assertion catches.
 */
static void test_timer_earlier_deadline(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    struct timer far, near;
    uint64_t start = loop_now(c->loop);

    timer_init(&far, timer_fired);
    timer_init(&near, timer_fired);
    assert_int_equal(timer_arm(loop_timers(c->loop), &far, start + 1000), 0);
    assert_int_equal(eventfd_write(c->wake_fd, 1), 0);
    assert_int_equal(loop_run_once(c->loop, 2000), 0); /* ends on the wake */
    assert_true(loop_now(c->loop) < start + 1000);
    timer_disarm(loop_timers(c->loop), &far);
    assert_int_equal(timer_arm(loop_timers(c->loop), &near, loop_now(c->loop) + 30), 0);
    for (int i = 0; i < 5 && near.cb; i++)
        assert_int_equal(loop_run_once(c->loop, 2000), 0);
    assert_null(near.cb);
    assert_true(loop_now(c->loop) < start + 1000);
}

/* A completion that arms a timer earlier than any armed before the wait. */
static struct timer arm_near, arm_far;
static struct loop *arm_loop;

static void arm_on_send(struct loop_op *op, int res, unsigned flags)
{
    rec_cb(op, res, flags);
    assert_int_equal(timer_arm(loop_timers(arm_loop), &arm_near, loop_now(arm_loop) + 20), 0);
}

/*
 * The timers a completion arms count for the wait that follows it: a send
 * that completes at once (the epoll backend runs it from its queue right
 * before epoll_wait) arms a timer 20 ms away while another waits 1 s. The
 * loop must wake for the near one and leave the far one armed; one that
 * computed its wait before running the queue slept the full second and
 * fired both at once (a chaos fault's paced sends then ran at half speed).
 */
static void test_timer_armed_by_completion(void **state)
{
    struct ctx *c = ctx_or_skip(state);
    static struct rec w;
    int sv[2];

    memset(&w, 0, sizeof(w));
    pair(sv);
    /* A first send makes the socket known to the backend, and the events
     * its registration raises are consumed, so nothing but the timer can
     * end the wait below. */
    w.op.cb = rec_cb;
    loop_submit_send(c->loop, &w.op, sv[0], "x", 1);
    RUN_UNTIL(c->loop, w.finals == 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(loop_run_once(c->loop, 0), 0);
    arm_loop = c->loop;
    timer_init(&arm_near, timer_fired);
    timer_init(&arm_far, timer_fired);
    assert_int_equal(timer_arm(loop_timers(c->loop), &arm_far, loop_now(c->loop) + 1000), 0);
    w.op.cb = arm_on_send;
    loop_submit_send(c->loop, &w.op, sv[0], "y", 1);
    for (int i = 0; i < 20 && arm_near.cb; i++)
        assert_int_equal(loop_run_once(c->loop, 2000), 0);
    assert_null(arm_near.cb);
    assert_non_null(arm_far.cb); /* woken for the near timer, not the far one */
    timer_disarm(loop_timers(c->loop), &arm_far);
    loop_close(c->loop, sv[0]);
    loop_close(c->loop, sv[1]);
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_setup_teardown(fn, setup_uring, teardown),                                    \
        cmocka_unit_test_setup_teardown(fn, setup_epoll, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_recv_multishot_eof),
        BOTH(test_cancel_recv),
        BOTH(test_buffers_run_dry_and_recover),
        BOTH(test_send_all),
        BOTH(test_sendmsg_gathers),
        BOTH(test_splice_through_pipe),
        BOTH(test_accept_connect),
        BOTH(test_accept_one),
        BOTH(test_forget_fd),
        BOTH(test_connect_refused),
        BOTH(test_timer_wakes_loop),
        BOTH(test_timer_earlier_deadline),
        BOTH(test_timer_armed_by_completion),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
