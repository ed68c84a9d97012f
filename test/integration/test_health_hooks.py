#!/usr/bin/env python3
"""on_down / on_up hooks, on_down_close and slow_start, end to end.

Two http backends (health = http, interval 200 ms, rise 2, fall 2,
on_down_close = yes, slow_start = 2s). The hooks append their arguments to a
file through `/bin/sh -c '...' %b %s %a`, so the test sees that %b %s %a
arrive substituted, each as one argument, and on_up also prints and exits 3.

 - Keep-alive client connections are opened; b1 turns 503 (SIGUSR1): s1 is
   marked down, on_down runs with "be0 s1 ADDR", its exit status is logged,
   and the connections to b1 are closed by ringlb while those to b0 keep
   working.
 - b1 recovers (SIGUSR2): on_up runs, its output and exit status 3 are
   logged; under 100 clients/s, b1 takes a small share in the first
   quarter of its slow start and about half once the ramp is over (the
   load runs until PHASE clients started after the ramp).
"""
import os
import re
import signal
import socket
import time

import lbtest
from lbtest import check

SLOW_START = 2.0
RAMPED = SLOW_START + 0.3  # clients that start later see the full weight
PHASE = 40


def ka_request(s):
    """One keep-alive GET on <s>; returns the backend name, or None on EOF."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(4096)
        if not b:
            return None
        data += b
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < n:
        b = s.recv(4096)
        if not b:
            return None
        body += b
    return body.split()[1].decode()


def closed_within(s, limit):
    s.settimeout(limit)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main(t):
    out = os.path.join(t.dir, "hooks.txt")
    opts = {"health": "http", "health_interval": "200ms", "health_timeout": "200ms",
            "rise": "2", "fall": "2", "on_down_close": "yes", "slow_start": f"{SLOW_START:g}s",
            "on_down": f"/bin/sh -c 'echo \"down $0 $1 $2\" >> {out}' %b %s %a",
            "on_up": f"/bin/sh -c 'echo \"up $0 $1 $2\" >> {out}; echo hello from on_up; "
                     f"exit 3' %b %s %a"}
    bes, lb = lbtest.http_pool(t, 2, opts)

    conns = {"b0": [], "b1": []}
    for _ in range(6):
        s = lbtest.connect(lb.addr)
        conns[ka_request(s)].append(s)
    check(len(conns["b0"]) == 3 and len(conns["b1"]) == 3, "6 keep-alive clients, 3 per server")

    t_sick = time.time()
    bes[1].proc.send_signal(signal.SIGUSR1)
    lbtest.wait_log(lb, r"server be0/s1 is DOWN: http status 503", 5, after=t_sick)
    check(all(closed_within(s, 3.0) for s in conns["b1"]),
          "on_down_close: ringlb closed the connections to s1")
    check(all(ka_request(s) == "b0" for s in conns["b0"]),
          "connections to s0 stay and keep working")
    _, line = lbtest.wait_log(lb, r"on_down hook for be0/s1 \(pid \d+\) exited 0", 5)
    with open(out) as f:
        text = f.read()
    check(f"down be0 s1 {bes[1].addr}\n" in text, f"on_down got %b %s %a as arguments: {text!r}")

    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    load.wait(PHASE // 4, "served by b0 while b1 is down", pred=lbtest.served)
    t_well = time.time()
    bes[1].proc.send_signal(signal.SIGUSR2)
    t_up, line = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_well)
    check("slow start" in line, "s1 comes back with a slow start")
    _, line = lbtest.wait_log(lb, r"on_up hook for be0/s1 \(pid \d+\) exited 3", 5)
    check("hello from on_up" in line, f"the hook's output and exit status are logged: {line}")
    load.wait(PHASE, "started once the slow start is over", since=t_up + RAMPED)
    res = load.stop()
    for s in conns["b0"]:
        s.close()
    with open(out) as f:
        text = f.read()
    check(f"up be0 s1 {bes[1].addr}\n" in text, "on_up ran with its arguments")

    check(all(not r["err"] for r in res), f"all {len(res)} clients served during the ramp")
    first = [r["name"] for r in res if t_up < r["t0"] < t_up + SLOW_START / 4]
    last = [r["name"] for r in res if r["t0"] > t_up + RAMPED]
    share1 = first.count("b1") / max(1, len(first))
    share2 = last.count("b1") / max(1, len(last))
    check(share1 < 0.3, f"b1 took {share1:.0%} of the {len(first)} clients in the first "
                        f"{SLOW_START / 4:.1f}s of its slow start")
    check(share2 > 0.35, f"and {share2:.0%} of {len(last)} once slow_start was over")


if __name__ == "__main__":
    lbtest.run(main)
