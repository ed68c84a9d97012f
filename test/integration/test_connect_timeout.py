#!/usr/bin/env python3
"""connect_timeout bounds a connect that never completes.

The server's port has a listener with a full accept queue that never
accepts, so the kernel drops further SYNs and the connect just hangs.
With connect_timeout = 1s and retries = 1 the client must be closed (EOF or
reset) after about 2 s; we allow up to 6 s. A second server that works
is not configured, so nothing else can answer.
"""
import socket
import time

import lbtest
from lbtest import check


def blackhole(t):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    addr = ls.getsockname()
    fillers = []
    # Fill the accept queue (backlog 0 holds one) so later SYNs are dropped.
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(addr)
        except BlockingIOError:
            pass
        fillers.append(c)
        time.sleep(0.05)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(addr)
        hangs = False
    except (socket.timeout, OSError):
        hangs = True
    probe.close()
    t.held += [ls] + fillers
    return f"127.0.0.1:{addr[1]}", hangs


def main(t):
    addr, hangs = blackhole(t)
    if not hangs:
        raise lbtest.Skip("cannot make a loopback port whose connects hang here")
    lbtest.log(f"  {addr}: connects hang (accept queue full)")
    lb = t.ringlb(servers=[addr], backend_opts={"connect_timeout": "1s", "retries": "1"})
    # The readiness probe itself started a connect that will time out.
    s = lbtest.connect(lb.addr)
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        b = s.recv(100)
        how = "EOF" if not b else f"data {b!r}"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = "nothing"
    dt = time.monotonic() - t0
    s.close()
    check(how in ("EOF", "reset"), f"client closed after connect timeouts: {how} after {dt:.2f}s")
    check(dt <= 6.0, f"closed within 6s of connecting ({dt:.2f}s; connect_timeout 1s x 2 tries)")
    check(dt >= 0.5, f"not closed before the connect timeout could fire ({dt:.2f}s)")
    check(lb.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
