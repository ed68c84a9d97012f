#!/usr/bin/env python3
"""max_conns holds extra clients in the backlog, never drops them.

workers = 1, max_conns = 4. Ten clients connect and each sends one line:
exactly 4 are answered while the first ones stay open (ringlb holds 4, as
/metrics shows, and no fifth client has an answer), none is reset; as
the answered ones close, the waiting ones are served, until all ten have
had their echo.
"""
import select
import time

import lbtest
from lbtest import check

N, MAX = 10, 4


def served(socks, pending, want, timeout=30.0):
    """Waits until <want> of the clients in <pending> had their echo and
    returns their indices; fails on a reset, an EOF or a wrong echo. Then
    checks that no other client of <pending> has an answer at that moment:
    ringlb serves no more than max_conns at once."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise lbtest.Fail(f"{len(got)} of the {want} clients max_conns lets in were "
                              f"answered within {timeout}s")
        ready, _, _ = select.select([socks[i] for i in pending if i not in got], [], [], left)
        for s in ready:
            i = socks.index(s)
            read_echo(s, i)
            got.append(i)
    rest = [socks[i] for i in pending if i not in got]
    extra = select.select(rest, [], [], 0)[0] if rest else []
    if extra:
        i = socks.index(extra[0])
        read_echo(extra[0], i)  # fails with the reason if it is a reset or EOF
        raise lbtest.Fail(f"client {i} was served beyond max_conns {MAX}")
    return got


def read_echo(s, i):
    try:
        b = s.recv(100)
    except ConnectionResetError:
        raise lbtest.Fail(f"client {i} was reset while waiting")
    if not b:
        raise lbtest.Fail(f"client {i} got EOF instead of waiting for a slot")
    if b != f"c{i}\n".encode():
        raise lbtest.Fail(f"client {i} got {b!r}")


def main(t):
    echo = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[echo],
                                  global_opts={"workers": "1", "max_conns": str(MAX)})
    # The readiness probe's connection must have closed, or it would hold
    # one of the MAX slots: wait until ringlb counts none.
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_connections_active") == 0 and
                      lbtest.metric_sum(adm, "ringlb_frontend_connections_active") == 0,
                      "no connection left from the readiness probe", 10)
    socks = []
    for i in range(N):
        s = lbtest.connect(lb.addr, timeout=5)
        s.sendall(f"c{i}\n".encode())
        socks.append(s)
    pending = set(range(N))
    first = served(socks, sorted(pending), MAX)
    active = lbtest.metric_sum(adm, "ringlb_connections_active")
    check(len(first) == MAX and active == MAX,
          f"{len(first)} of {N} clients served at once, ringlb holds {active:.0f} "
          f"(max_conns {MAX})")
    pending -= set(first)
    while pending:
        for i in first:
            socks[i].close()
        want = min(MAX, len(pending))
        first = served(socks, sorted(pending), want)
        active = lbtest.metric_sum(adm, "ringlb_connections_active")
        check(active <= MAX, f"after closes, {len(first)} more served, ringlb holds "
                             f"{active:.0f} (<= {MAX})")
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
