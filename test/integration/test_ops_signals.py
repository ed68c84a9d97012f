#!/usr/bin/env python3
"""Signals ringlb has no use for (issue #19, item 2).

SIGUSR1, SIGUSR2 and SIGALRM kill a process by default; a stray
`kill -USR1` (log rotation scripts send it) must not take the load balancer
down. Each is sent to a running ringlb with a connection open: ringlb logs
"SIGNAME: ignored", the live connection and new ones keep flowing, and a
SIGTERM afterwards still stops it with exit 0.
"""
import signal
import time

import lbtest
from lbtest import check



def main(t):
    echo = t.backend("echo")
    lb = t.ringlb(servers=[echo])
    live = lbtest.connect(lb.addr, timeout=5)
    check(lbtest.echoes(live, b"before\n"), "a live connection flows")
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
        name = sig.name
        lb.signal(sig)
        deadline = time.monotonic() + 10
        while not (lines := lbtest.log_events(lb, rf"\b{name}: ignored")):
            if not lb.alive():
                raise lbtest.Fail(f"{name} killed ringlb (exit {lb.proc.returncode})")
            if time.monotonic() > deadline:
                raise lbtest.Fail(f"no '{name}: ignored' in the log within 10s")
            time.sleep(0.05)
        check(lb.alive(), f"{name}: ringlb still runs and logged {lines[0][1].split(' ', 2)[-1]!r}")
        check(lbtest.echoes(live, f"{name}\n".encode()), f"{name}: the live connection still flows")
        with lbtest.connect(lb.addr, timeout=5) as s:
            check(lbtest.echoes(s, f"{name}\n".encode()), f"{name}: a new connection is served")
    live.close()
    lb.signal(signal.SIGTERM)
    rc = lb.wait_exit(10)
    check(rc == 0, f"SIGTERM afterwards: exit {rc}")


if __name__ == "__main__":
    lbtest.run(main)
