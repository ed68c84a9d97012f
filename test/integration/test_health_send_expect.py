#!/usr/bin/env python3
"""health = send_expect probes a line protocol (Redis PING / +PONG).

An in-process server answers "PING\\r\\n" with "+PONG\\r\\n" while healthy and
"-LOADING\\r\\n" while not. ringlb checks it with health_send = PING\\r\\n
and health_expect = +PONG\\r\\n (interval 200 ms, rise 2, fall 2): it must
stay up, go down with the unexpected reply in the log, and come back.
"""
import threading
import time

import lbtest
from lbtest import check

healthy = threading.Event()
healthy.set()
pings = []  # one entry per PING answered, appended by the server threads


def redis_like(sock, info):
    buf = b""
    while True:
        b = sock.recv(4096)
        if not b:
            return
        buf += b
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line == b"PING":
                sock.sendall(b"+PONG\r\n" if healthy.is_set() else b"-LOADING\r\n")
                pings.append(healthy.is_set())


def main(t):
    srv = t.inproc_backend(redis_like)
    opts = {"health": "send_expect", "health_send": "PING\\r\\n",
            "health_expect": "+PONG\\r\\n", "health_interval": "200ms",
            "health_timeout": "200ms", "rise": "2", "fall": "2"}
    lb = t.ringlb(servers=[srv], backend_opts=opts)
    lbtest.wait_log(lb, r"health: checking 1 server", 5)
    # Stays up over more probes than fall (2), all answered +PONG.
    lbtest.wait_until(lambda: len(pings) >= 5, "5 probes answered +PONG", timeout=10)
    check(not lbtest.log_events(lb, r"is DOWN"), "a server answering +PONG stays up")
    t_sick = time.time()
    healthy.clear()
    _, line = lbtest.wait_log(lb, r"server be0/s0 is DOWN", 5, after=t_sick)
    check("unexpected reply '-LOADING\\r\\n'" in line, f"the reply is in the log: {line}")
    t_well = time.time()
    healthy.set()
    _, line = lbtest.wait_log(lb, r"server be0/s0 is UP", 5, after=t_well)
    check("reply matched" in line, "up again once it answers +PONG")
    s = lbtest.connect(lb.addr)
    s.sendall(b"PING\r\n")
    check(lbtest.recv_exact(s, 7) == b"+PONG\r\n", "clients are served through ringlb")
    s.close()


if __name__ == "__main__":
    lbtest.run(main)
