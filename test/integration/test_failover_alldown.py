#!/usr/bin/env python3
"""Every server down: clients are closed promptly, and served again as soon
as one server is back.

Two http backends, health = tcp (interval 300 ms, timeout
200 ms, rise 2, fall 2), clients at 50/s. Both backends are SIGKILLed; while
none can serve, each client must be closed (EOF or reset) within PROMPT
seconds, never left hanging. Then b0 is restarted on its port: clients
succeed again within rise x interval (+10% jitter) and, once it is up,
every client succeeds. Each phase lasts until PHASE clients have run
through it.
"""
import signal
import time

import lbtest
from lbtest import check

INTERVAL, RISE = 0.3, 2
SLACK = 1.5
PROMPT = 2.0
PHASE = 20
HC = {"health": "tcp", "health_interval": "300ms", "health_timeout": "200ms",
      "rise": str(RISE), "fall": "2", "retries": "2", "connect_timeout": "1s"}


def main(t):
    bes, lb = lbtest.http_pool(t, 2, HC)
    load = lbtest.HttpLoad(lb.addr, rate=50, timeout=5.0).start()
    load.wait(PHASE, "served before the kill", pred=lbtest.served)
    port = bes[0].addr
    t_kill = time.time()
    for b in bes:
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
    t_d0, _ = lbtest.wait_log(lb, r"server be0/s0 is DOWN", 5, after=t_kill)
    t_d1, _ = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_kill)
    load.wait(PHASE, "closed while both servers are down", since=max(t_d0, t_d1))
    t_back, t_up = lbtest.restart_backend(t, lb, port, 0)
    load.wait(PHASE, "started once s0 is up", since=t_up + 0.1)
    res = load.stop()

    before = [r for r in res if r["t0"] < t_kill - 0.1]
    check(before and all(not r["err"] for r in before),
          f"all {len(before)} clients before the kill were served")
    outage = [r for r in res if t_kill + 0.1 < r["t0"] < t_back]
    slow = [round(r["t1"] - r["t0"], 2) for r in outage if r["t1"] - r["t0"] > PROMPT]
    check(outage and all(r["err"] for r in outage),
          f"{len(outage)} clients during the outage were refused (no server can serve)")
    check(not slow, f"each was closed within {PROMPT}s (slower: {slow[:5]})")
    ok = [r["t0"] - t_back for r in res if r["t0"] > t_back and not r["err"]]
    rbound = RISE * INTERVAL * 1.1
    check(ok and min(ok) <= rbound + SLACK,
          f"clients succeed again {min(ok) if ok else None}s after b0 came back "
          f"(rise x interval = {rbound:.2f}s)")
    after = [r for r in res if r["t0"] > t_up + 0.1]
    check(after and all(not r["err"] and r["name"] == "b0" for r in after),
          f"all {len(after)} clients after s0 is up are served by b0")


if __name__ == "__main__":
    lbtest.run(main)
