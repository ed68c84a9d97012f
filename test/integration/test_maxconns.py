#!/usr/bin/env python3
"""max_conns holds extra clients in the backlog, never drops them.

workers = 1, max_conns = 4. Ten clients connect and each sends one line:
at most 4 are answered while the first ones stay open, none is reset; as
the answered ones close, the waiting ones are served, until all ten have
had their echo.
"""
import socket
import time

import lbtest
from lbtest import check

N, MAX = 10, 4


def answered(socks, pending, wait):
    """Returns the indices in <pending> whose echo arrived within <wait> s."""
    got = []
    deadline = time.monotonic() + wait
    for i in list(pending):
        s = socks[i]
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            b = s.recv(100)
        except socket.timeout:
            continue
        except ConnectionResetError:
            raise lbtest.Fail(f"client {i} was reset while waiting")
        if not b:
            raise lbtest.Fail(f"client {i} got EOF instead of waiting for a slot")
        if b != f"c{i}\n".encode():
            raise lbtest.Fail(f"client {i} got {b!r}")
        got.append(i)
    return got


def main(t):
    echo = t.backend("echo")
    lb = t.ringlb(servers=[echo], global_opts={"workers": "1", "max_conns": str(MAX)})
    time.sleep(0.3)  # let the readiness probe's connection close
    socks = []
    for i in range(N):
        s = lbtest.connect(lb.addr, timeout=5)
        s.sendall(f"c{i}\n".encode())
        socks.append(s)
    pending = set(range(N))
    first = answered(socks, sorted(pending), 1.5)
    check(1 <= len(first) <= MAX, f"{len(first)} of {N} clients served at once "
                                  f"(max_conns {MAX})")
    pending -= set(first)
    rounds = 0
    while pending and rounds < N:
        rounds += 1
        for i in first:
            socks[i].close()
        first = answered(socks, sorted(pending), 3.0)
        if not first:
            break
        check(len(first) <= MAX, f"after closes, {len(first)} more served (<= {MAX})")
        pending -= set(first)
    check(not pending, f"every client was served eventually, none dropped "
                       f"(waiting: {sorted(pending)})")
    for s in socks:
        s.close()
    check(lb.alive(), "ringlb still running")
    check(not lbtest.log_events(lb, r"open-files limit is"),
          f"no open-files warning for max_conns {MAX}")

    # A max_conns the open-files limit cannot hold is named at start-up,
    # with the connection count where accepts will pause instead.
    big = t.ringlb(servers=[echo], global_opts={"max_conns": "5000"}, nofile=1000)
    line = lbtest.wait_log(big, r"max_conns 5000 needs .* open-files limit is 1000", 5)[1]
    check(line and "about 468 connections" in line,
          f"the open-files limit is reported against max_conns: {line and line.strip()}")
    check(big.alive(), "ringlb runs on under the lower limit")


if __name__ == "__main__":
    lbtest.run(main)
