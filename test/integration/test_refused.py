#!/usr/bin/env python3
"""A backend refusing connections gives the client a prompt close, not a hang.

Backend "dead" has two servers on ports where nothing listens (bound, not
listening: every connect gets RST). A client of that frontend must see EOF
or a reset within a few seconds (connect retries), whether it sent data first
or not, one at a time or 20 at once. Afterwards ringlb still serves a second
frontend whose backend works, and a backend with one dead and one live
server still serves every client (retries skip the dead one).
"""
import socket
import time

import lbtest
from lbtest import check

PROMPT = 5.0  # seconds: retries=2 against refusing ports take milliseconds


def closed_within(sock, limit):
    """Waits for EOF or reset; returns (how, seconds) or (None, limit)."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return "EOF", time.monotonic() - t0
            return f"unexpected data {b[:40]!r}", time.monotonic() - t0
    except ConnectionResetError:
        return "reset", time.monotonic() - t0
    except socket.timeout:
        return None, limit


def main(t):
    dead1, dead2 = t.refused_addr(), t.refused_addr()
    echo = t.backend("echo")
    opts = {"retries": "2", "connect_timeout": "2s"}
    lb = t.ringlb(frontends=[(None, [dead1, dead2], opts), (None, [echo], opts),
                             (None, [dead1, echo], opts)])
    dead_fe, live_fe, mixed_fe = lb.fe[0][0], lb.fe[1][0], lb.fe[2][0]

    s = lbtest.connect(dead_fe)
    how, dt = closed_within(s, PROMPT)
    s.close()
    check(how in ("EOF", "reset"), f"silent client closed by ringlb: {how} after {dt:.2f}s "
                                   f"(limit {PROMPT}s)")

    s = lbtest.connect(dead_fe)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    how, dt = closed_within(s, PROMPT)
    s.close()
    check(how in ("EOF", "reset"), f"client that sent a request closed: {how} after {dt:.2f}s")

    socks = [lbtest.connect(dead_fe) for _ in range(20)]
    t0 = time.monotonic()
    results = [closed_within(s, max(0.1, PROMPT - (time.monotonic() - t0))) for s in socks]
    for s in socks:
        s.close()
    hung = [i for i, (how, _) in enumerate(results) if how not in ("EOF", "reset")]
    check(not hung, f"20 concurrent clients all closed within {PROMPT}s "
                    f"(slowest {max(d for _, d in results):.2f}s, hung/odd: {hung})")

    s = lbtest.connect(live_fe)
    s.sendall(b"still alive")
    got = lbtest.recv_exact(s, 11)
    s.close()
    check(got == b"still alive", "ringlb still forwards on another frontend afterwards")

    # Many short connections in a row: closes and retries recycle descriptor
    # numbers quickly, which once exposed a shutdown hitting a reused fd.
    ok = 0
    for i in range(100):
        s = lbtest.connect(mixed_fe)
        msg = f"try {i}".encode()
        s.sendall(msg)
        try:
            if lbtest.recv_exact(s, len(msg)) == msg:
                ok += 1
        except (OSError, lbtest.Fail):
            pass
        s.close()
    check(ok == 100, f"with one dead and one live server, every client was served ({ok}/100)")
    check(lb.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
