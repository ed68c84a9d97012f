#!/usr/bin/env python3
"""SIGTERM (and SIGINT) stop ringlb gracefully.

1. A connection is live (first 4 MiB echoed) when ringlb gets SIGTERM.
   Within 3 s new connections must be refused; the live connection then
   carries 16 MiB more each way intact; ringlb is still running while it is
   open; after the client half-closes (EOF comes back) ringlb exits 0 within
   5 s.
2. shutdown_grace = 1s with an idle connection open: ringlb closes it and
   exits 0 after about the grace (within 6 s), not the 30 s default.
3. SIGINT with no connections: exit 0 within 5 s.
"""
import hashlib
import os
import signal
import socket
import time

import lbtest
from lbtest import check


# A stopping worker looks for its last connection on its tick (core/worker.c
# TICK_MS): a check that ringlb stays up lasts several ticks.
TICKS = 0.35


def refused_soon(addr, limit):
    """Polls connects to <addr> until one is refused; returns seconds or None."""
    t0 = time.monotonic()

    def refused():
        try:
            s = lbtest.connect(addr, timeout=1)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        s.close()
        return False
    try:
        lbtest.wait_until(refused, "refused", timeout=limit)
    except lbtest.Fail:
        return None
    return time.monotonic() - t0


def main(t):
    echo = t.backend("echo")

    # 1. live connection finishes after SIGTERM
    lb = t.ringlb(servers=[echo], global_opts={"shutdown_grace": "30s"})
    s = lbtest.connect(lb.addr, timeout=20)
    first = os.urandom(4 << 20)
    st = lbtest.Stream(s, first)
    check(not lbtest.pump([st], 20) and bytes(st.received) == first,
          "live connection echoed 4 MiB before SIGTERM")
    lb.signal(signal.SIGTERM)
    lbtest.log("  sent SIGTERM")
    dt = refused_soon(lb.addr, 3.0)
    check(dt is not None, "new connections refused after SIGTERM"
          + (f" ({dt:.2f}s after)" if dt is not None else " (still accepted after 3s)"))
    check(lb.alive(), "ringlb still running while a connection is live")
    rest = os.urandom(16 << 20)
    st = lbtest.Stream(s, rest, keep=False)
    left = lbtest.pump([st], 30)
    check(not left and st.error is None, f"transfer after SIGTERM finished ({st.error})")
    check(st.nrecv == len(rest) and st.hash.hexdigest() == hashlib.sha256(rest).hexdigest(),
          f"16 MiB after SIGTERM echoed intact ({st.nrecv} bytes)")
    # Round trips on the open connection for several worker ticks: ringlb
    # must neither exit nor close it while it is open and quiet between them.
    s.settimeout(10)
    t0 = time.monotonic()
    while time.monotonic() - t0 < TICKS:
        s.sendall(b"?")
        check(lbtest.recv_exact(s, 1) == b"?", "the open connection still echoes")
        time.sleep(0.05)  # quiet between round trips, as an idle client is
    check(lb.alive(), "ringlb still running while the connection stays open")
    st = lbtest.Stream(s, b"", half_close=True, until_eof=True)
    left = lbtest.pump([st], 10)
    check(not left and st.error is None and st.nrecv == 0,
          f"client half-close answered with a clean EOF ({st.error})")
    s.close()
    rc = lb.wait_exit(5)
    check(rc == 0, f"ringlb exited 0 within 5s of the last connection closing (exit {rc})")

    # 2. grace expires
    lb = t.ringlb(servers=[echo], global_opts={"shutdown_grace": "1s"})
    s = lbtest.connect(lb.addr, timeout=10)
    s.sendall(b"x")
    check(lbtest.recv_exact(s, 1) == b"x", "idle connection open before SIGTERM")
    t0 = time.monotonic()
    lb.signal(signal.SIGTERM)
    rc = lb.wait_exit(6)
    dt = time.monotonic() - t0
    check(rc == 0, f"with shutdown_grace = 1s ringlb exited 0 despite an open connection "
                   f"(exit {rc} after {dt:.2f}s)")
    check(dt >= 0.5, f"it waited for the grace period first ({dt:.2f}s)")
    s.settimeout(2)
    try:
        b = s.recv(10)
        how = "EOF" if not b else f"data {b!r}"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = "nothing (still open)"
    s.close()
    check(how in ("EOF", "reset"), f"the open connection was closed ({how})")

    # 3. SIGINT, nothing open
    lb = t.ringlb(servers=[echo])
    lb.signal(signal.SIGINT)
    rc = lb.wait_exit(5)
    check(rc == 0, f"SIGINT with no connections: exit 0 within 5s (exit {rc})")


if __name__ == "__main__":
    lbtest.run(main)
