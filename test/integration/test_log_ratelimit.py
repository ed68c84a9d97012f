#!/usr/bin/env python3
"""Per-client warnings are rate-limited; the counters keep exact numbers.

300 clients in a row against a backend whose only server refuses
connections (health = none, retries = 0): each one used to log its own
"connect to ... failed" line. Then the same against a backend whose
server is marked down by its health check: "no server available" per
client. The log must hold at most one burst of each (10 per 5 s, plus
the line that reports what was suppressed), while
ringlb_server_connect_failures_total and ringlb_backend_no_server_total
count every client.
"""
import socket

import lbtest
from lbtest import check

N, BURST = 300, 10


def hit(addr, n):
    for _ in range(n):
        try:
            with lbtest.connect(addr, timeout=5) as s:
                s.settimeout(5)
                s.sendall(b"x")
                s.recv(16)  # closed (or reset) by ringlb at once
        except (ConnectionResetError, BrokenPipeError):
            pass
        except socket.timeout:
            raise lbtest.Fail("a client was not closed promptly")



def main(t):
    dead = t.refused_addr()
    lb, adm = lbtest.admin_ringlb(t, frontends=[
        (None, [dead], {"retries": "0"}),
        (None, [dead], {"health": "tcp", "health_interval": "100ms", "health_timeout": "100ms",
                        "rise": "1", "fall": "1"}),
    ])
    before = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", backend="be0")
    hit(lb.addrs[0], N)
    fails = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", backend="be0") - before
    check(fails == N, f"every failed connect counted ({fails:.0f} of {N})")
    lines = lbtest.log_events(lb, r"connect to s0 .* failed")
    check(1 <= len(lines) <= BURST + 1,
          f"{len(lines)} 'connect ... failed' lines for {N} clients (at most {BURST + 1})")

    lbtest.wait_log(lb, r"server be1/s0 is DOWN", 10)
    before = lbtest.metric_sum(adm, "ringlb_backend_no_server_total", backend="be1")
    hit(lb.addrs[1], N)
    no_server = lbtest.metric_sum(adm, "ringlb_backend_no_server_total", backend="be1") - before
    check(no_server == N, f"every client without a server counted ({no_server:.0f} of {N})")
    lines = lbtest.log_events(lb, r"backend be1: no server available")
    check(1 <= len(lines) <= BURST + 1,
          f"{len(lines)} 'no server available' lines for {N} clients (at most {BURST + 1})")


if __name__ == "__main__":
    lbtest.run(main)
