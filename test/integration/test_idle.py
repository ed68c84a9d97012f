#!/usr/bin/env python3
"""idle_timeout closes idle connections, on both sides, and only idle ones.

With idle_timeout = 1s: a connection that made one round trip and then goes
quiet must be closed by ringlb (client sees EOF or reset) within about 1-3 s
(failed past 4 s), and the backend's side of it must be closed too. At the
same time a connection that sends a message every 300 ms (each echoed) must
stay open throughout, and so must one whose only traffic is the backend
talking every 300 ms: both talk until the idle connection has been closed
and for at least 2.4 s (more than twice idle_timeout), at most 6 s.
"""
import socket
import threading
import time

import lbtest
from lbtest import check

LIMIT = 4.0
MIN_TICKS, MAX_TICKS = 8, 20  # messages 300 ms apart on the busy connections
idle_closed = threading.Event()


def talking(i):
    """Whether a busy connection sends message <i>."""
    return i < MAX_TICKS and (i < MIN_TICKS or not idle_closed.is_set())


def echo_handler(sock, info):
    sock.settimeout(30)
    while True:
        b = sock.recv(65536)
        info.setdefault("first", b)
        if not b:
            info["how"] = "EOF"
            return
        if b.startswith(b"TICK"):
            # Backend-driven traffic: ticks 300 ms apart, then "done" and
            # echo again.
            i = 0
            while talking(i):
                time.sleep(0.3)
                sock.sendall(f"tick {i}\n".encode())
                i += 1
            sock.sendall(f"done {i}\n".encode())
            continue
        sock.sendall(b)


def wait_closed(sock, limit):
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        b = sock.recv(100)
        how = "EOF" if not b else f"data {b!r}"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = None
    return how, time.monotonic() - t0


def main(t):
    be = t.inproc_backend(echo_handler)
    lb = t.ringlb(servers=[be], backend_opts={"idle_timeout": "1s"})
    idle = lbtest.connect(lb.addr, timeout=5)
    active = lbtest.connect(lb.addr, timeout=5)
    pushed = lbtest.connect(lb.addr, timeout=5)
    for s, hello in ((idle, b"idle"), (active, b"act!")):
        s.sendall(hello)
        check(lbtest.recv_exact(s, 4) == hello, f"round trip on {hello.decode()} connection")
    pushed.sendall(b"TICK")

    active_err, pings = [], []

    def keep_talking():
        try:
            i = 0
            while talking(i):
                time.sleep(0.3)
                msg = f"ping {i}".encode()
                active.sendall(msg)
                if lbtest.recv_exact(active, len(msg)) != msg:
                    active_err.append(f"wrong echo at {i}")
                    return
                i += 1
            pings.append(i)
        except Exception as e:
            active_err.append(f"{type(e).__name__}: {e} at ping {i}")

    th = threading.Thread(target=keep_talking, daemon=True)
    th.start()
    t_idle0 = time.monotonic()
    how, dt = wait_closed(idle, LIMIT + 1)
    check(how in ("EOF", "reset"), f"idle connection closed by ringlb ({how}, {dt:.2f}s after "
                                   "its last byte)")
    check(dt <= LIMIT, f"closed within {LIMIT}s of going idle ({dt:.2f}s; idle_timeout 1s)")
    check(dt >= 0.5, f"not closed long before idle_timeout ({dt:.2f}s)")
    idle_closed.set()
    idle.close()

    th.join(10)
    check(not th.is_alive() and pings, "active client finished its pings")
    check(not active_err, f"connection sending every 300 ms stayed open past the idle one's "
                          f"close ({active_err or f'all {pings[0]} echoed'})")

    pushed.settimeout(5)
    got = b""
    try:
        while b"done" not in got:
            b = pushed.recv(4096)
            if not b:
                break
            got += b
        err = None
    except OSError as e:
        err = e
    ticks = got.count(b"tick ")
    check(err is None and got.endswith(f"done {ticks}\n".encode()) and ticks >= MIN_TICKS,
          f"connection where only the backend talks every 300 ms stayed open past the idle "
          f"one's close ({ticks} ticks, error {err})")

    # Backend side of the idle connection (by now it was closed long ago).
    mine = [c for c in be.conns if c.get("first") == b"idle"]
    check(len(mine) == 1, "backend saw the idle connection")
    info = mine[0]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "closed" not in info:
        time.sleep(0.05)
    if "closed" in info:
        what = f"{info.get('how') or info.get('error')}, {info['closed'] - t_idle0:.2f}s"
    else:
        what = "still open"
    check("closed" in info, f"backend side of the idle connection was closed too ({what})")

    # Now idle, the other two must be closed as well.
    for s, name in ((active, "active"), (pushed, "backend-driven")):
        how, dt = wait_closed(s, LIMIT + 1)
        check(how in ("EOF", "reset") and dt <= LIMIT,
              f"{name} connection closed once it went idle ({how}, {dt:.2f}s)")
        s.close()
    check(lb.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
