#!/usr/bin/env python3
"""A dry buffer pool costs no CPU while connections are idle.

workers = 1, buffers = 16 (256 KiB). A client asks the server for a large
answer and never reads it: once the socket buffers on the way are full,
the answer queues in ringlb up to the 256 KiB high-water mark, which holds
every buffer of the pool (ringlb_worker_buffers_free reaches 0). Ten more
connections then open and sit idle. A receive armed on a dry pool fails at
once, even on an idle socket, and each idle direction opened then used to bounce
between copy and splice forever: one core at 100%, the starved counter up
by millions. Now a starved direction waits for input with a poll. Checked
from outside: the worker's CPU time over two seconds (from
/proc/<pid>/task/*/stat) stays a small fraction of a core, the starved
counter barely moves, and a new client is still echoed while the pool is
dry.
"""
import socket
import time

import lbtest
from lbtest import check

IDLE = 10
WINDOW = 2.0




def starved(adm):
    return lbtest.metric_sum(adm, "ringlb_worker_buffer_starved_total")


def server(s, info):
    """PUSH: more than every socket buffer on the way can hold (so that the
    rest waits in ringlb's pool), for a client that will not read it, at a
    pace that lets ringlb send each buffer on before the next arrives:
    its queue then grows only once the client's side is full, and stays
    (a burst could instead find the pool dry while its sends still move,
    and splice from then on); anything else: echo."""
    f = s.makefile("rb")
    first = f.readline()
    if first == b"PUSH\n":
        chunk = b"p" * 16384
        try:
            for _ in range(4096):
                s.sendall(chunk)
                time.sleep(0.0005)  # pacing the traffic, not waiting for an event
        except OSError:
            pass
        f.read()
        return
    s.sendall(first)
    lbtest.forward(s, s)


def main(t):
    be = t.inproc_backend(server)
    lb, adm = lbtest.admin_ringlb(t, servers=[be],
                                  global_opts={"workers": "1", "buffers": "16"})
    copy = lbtest.MODES[t.mode][1] == "copy"
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = lb.addr.rsplit(":", 1)
    hog.connect((host, int(port)))
    hog.sendall(b"PUSH\n")
    deadline = time.monotonic() + 30
    while copy and lbtest.metric_sum(adm, "ringlb_worker_buffers_free") > 0:
        check(time.monotonic() < deadline, "a client not reading holds every buffer")
        time.sleep(0.05)
    # Opened on a dry pool: the first receive of each direction finds no
    # buffer, and stays on splice, waiting for input. (epoll knows the
    # server side has nothing to read before it takes a buffer: there only
    # the client side starves.)
    n = starved(adm)
    idle = [lbtest.connect(lb.addr) for _ in range(IDLE)]
    want = IDLE if t.mode == "epoll" else 2 * IDLE
    deadline = time.monotonic() + 10
    while copy and starved(adm) < n + want:
        check(time.monotonic() < deadline, f"the idle connections found the pool dry "
                                           f"({starved(adm) - n:.0f} of {want} directions)")
        time.sleep(0.05)
    n0, t0 = starved(adm), lbtest.thread_cpu(lb.proc.pid, "ringlb-w0")
    time.sleep(WINDOW)  # the measurement window itself, not a wait for an event
    n1, t1 = starved(adm), lbtest.thread_cpu(lb.proc.pid, "ringlb-w0")
    cpu = (t1 - t0) / WINDOW
    check(cpu < 0.25, f"worker CPU while the pool is dry and {IDLE} connections idle: "
                      f"{cpu:.0%} of a core (spinning was 100%)")
    check(n1 - n0 < 1000, f"starved receives in {WINDOW:.0f} s: {n1 - n0:.0f} (was millions)")
    # Data still flows: a new client and an idle one are echoed.
    for s in (lbtest.connect(lb.addr), idle[0]):
        s.settimeout(10)
        s.sendall(b"still here\n")
        got = b""
        while len(got) < 11:
            b = s.recv(64)
            check(b, "echo arrives while the pool is dry")
            got += b
        check(got == b"still here\n", f"echoed intact: {got!r}")
    for s in idle + [hog]:
        s.close()


if __name__ == "__main__":
    lbtest.run(main)
