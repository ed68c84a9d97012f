#!/usr/bin/env python3
"""ringbench (issue 5) through ringlb in this test's mode, and a ringbench
backend whose buffer pool runs dry in this mode's event loop.

- latency, open loop: the request count is the offered rate x the measured
  window (never above what the schedule allows: warm-up + window), no
  errors, percentiles ordered.
- throughput both (echo), up (sink) and down (source): every byte checked
  (checksum_ok); connrate counted, no errors.
- ringbench serve exits 0 on SIGTERM (a sanitizer report would not).
- serve --mode echo with a dry buffer pool (issue 19): clients that send
  and never read hold every buffer of a 16-buffer pool; 20 new clients
  must still get their echo (they used to get nothing). The io_uring loop
  in the uring modes, the epoll loop in epoll mode.

ringbench on its own (flags, schedule, reports, direct runs, the check
that can fail) is test_ringbench_tool.py, run once.

Every run is bounded (1-2 s measured, each command under a 60 s timeout);
no assertion is about speed, so a loaded machine only makes it slower.
"""
import socket
import threading
import time

import lbtest
from lbtest import check


def dry_pool(t):
    io = lbtest.MODES[t.mode][0]
    if io == "uring" and not lbtest.io_uring_available()[0]:
        io = "epoll"
    srv = lbtest.ringbench_backend(t, "echo", extra=["--workers", "1", "--buffers", "16",
                                                     "--io", io])
    family, where = lbtest.parse_addr(srv.addr)
    hogs = []

    def hog(s):
        chunk = b"x" * (1 << 20)
        try:
            while True:
                s.sendall(chunk)
        except OSError:
            pass  # shut down below

    for _ in range(4):
        s = socket.socket(family, socket.SOCK_STREAM)
        # A small receive buffer: the echo backs up into the server at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(where)
        hogs.append(s)
        threading.Thread(target=hog, args=(s,), daemon=True).start()
    # The server says when a receive found the pool empty; the hogs never
    # read, so from then on their echoes hold the buffers.
    deadline = time.monotonic() + 30
    while True:
        with open(srv.errpath, "rb") as f:
            dry = b"receive buffers ran dry" in f.read()
        if dry or time.monotonic() > deadline or srv.proc.poll() is not None:
            break
        time.sleep(0.05)
    check(dry, f"{io}: 4 clients that never read drain the 16-buffer pool (the server says so)")
    clients = []
    for i in range(20):
        c = lbtest.connect(srv.addr, timeout=10)
        c.sendall(b"hello %d\n" % i)
        clients.append(c)
    answered = 0
    deadline = time.monotonic() + 20  # for all of them: a stuck server costs 20 s, not 20 x 20
    for i, c in enumerate(clients):
        want = b"hello %d\n" % i
        c.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            got = lbtest.recv_exact(c, len(want))
        except (OSError, lbtest.Fail):
            got = b""
        answered += got == want
        c.close()
    check(answered == 20, f"{io}: with the pool dry, {answered} of 20 new clients get their echo")
    for s in hogs:
        s.shutdown(socket.SHUT_RDWR)
        s.close()
    check(srv.stop() == 0, "ringbench serve echo with a dry pool exits 0 on SIGTERM")


def main(t):
    dry_pool(t)
    echo = lbtest.ringbench_backend(t, "echo")
    sink = lbtest.ringbench_backend(t, "sink")
    source = lbtest.ringbench_backend(t, "source")
    lb = t.ringlb(frontends=[(None, [echo], None), (None, [sink], None),
                             (None, [source], None)])
    lbtest.ringbench_latency_open(lb.addr, "ringlb")
    lbtest.ringbench_throughput(lb.addr, "both", "ringlb")
    lbtest.ringbench_throughput(lb.fe[1][0], "up", "ringlb")
    lbtest.ringbench_throughput(lb.fe[2][0], "down", "ringlb")
    rc, d, err = lbtest.ringbench_run(["connrate", "--target", lb.addr, "--conns", "4",
                                       "--duration", "1s", "--warmup", "0"])
    check(rc == 0 and d["connections"] > 50 and d["errors"] == 0,
          f"ringlb: connrate {d['connections']} connections, {d['cps']:.0f}/s, no errors")

    for b in (echo, sink, source):
        check(b.stop() == 0, f"ringbench serve {b.mode} exits 0 on SIGTERM")


if __name__ == "__main__":
    lbtest.run(main)
