#!/usr/bin/env python3
"""A server that answers its health check with HTTP 503 stops getting clients.

Three http backends (health = http, interval 300 ms, timeout 200 ms, rise 2,
fall 3) under continuous new client connections (100/s). Backend b1 then
starts answering 503 to everything (SIGUSR1 to bench/backend.py): it still
accepts connections, so only the health checker can take it out. Then it
answers 200 again (SIGUSR2). Checked:

 - every client connection gets a full HTTP answer (a 503 from b1 before it
   is marked down is an answer, not a failed connection);
 - ringlb logs "server be0/s1 is DOWN: http status 503 (3/3 failed)"
   within fall x interval (+10% jitter) + timeout after the switch, and no
   client that starts after that line reaches b1 (PHASE clients are run
   with it down);
 - once b1 answers 200 again, clients reach it within rise x interval.

b1 turns 503 once it has served clients, and back to 200 once PHASE
clients ran with it down; the load runs until PHASE clients started after
it is up again.
"""
import signal
import time

import lbtest
from lbtest import check

INTERVAL, TIMEOUT, RISE, FALL = 0.3, 0.2, 2, 3
SLACK = 1.5
PHASE = 50
HC = {"health": "http", "health_path": "/healthz", "health_expect": "200",
      "health_interval": "300ms", "health_timeout": "200ms", "rise": str(RISE),
      "fall": str(FALL), "retries": "2"}


def main(t):
    bes, lb = lbtest.http_pool(t, 3, HC)
    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    load.wait(PHASE // 3, "served by b1", pred=lambda r: r["name"] == "b1")
    t_sick = time.time()
    bes[1].proc.send_signal(signal.SIGUSR1)
    t_down, line = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_sick)
    lbtest.log(f"  {line.split(': ', 1)[1]} ({t_down - t_sick:.2f}s after the switch)")
    check("http status 503 (3/3 failed)" in line, "the log names the status and the count")
    # The state is published before the line is logged; 50 ms covers the
    # log's millisecond stamp.
    load.wait(PHASE, "started with s1 down", since=t_down + 0.05)
    t_well = time.time()
    bes[1].proc.send_signal(signal.SIGUSR2)
    t_up, line = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_well)
    load.wait(PHASE, "started with s1 up again", since=t_up)
    res = load.stop()

    failed = [r for r in res if r["err"]]
    check(not failed, f"{len(res)} clients, every one got a full answer ({failed[:3]})")
    sick = [r for r in res if r["status"] == 503]
    bound = FALL * INTERVAL * 1.1 + TIMEOUT
    late = [round(r["t0"] - t_sick, 2) for r in res
            if r["name"] == "b1" and t_down + 0.05 < r["t0"] < t_well]
    check(not late, f"no client reached b1 once it was marked down "
                    f"({len(sick)} got a 503 before; late: {late[:5]})")
    check(t_down - t_sick <= bound + SLACK, f"marked down {t_down - t_sick:.2f}s after the switch")
    back = [r["t0"] - t_well for r in res if r["name"] == "b1" and r["t0"] > t_well
            and r["status"] == 200]
    rbound = RISE * INTERVAL * 1.1
    check(back and min(back) <= rbound + SLACK,
          f"b1 serves clients again {min(back) if back else None}s after it recovered "
          f"(rise x interval = {rbound:.2f}s)")
    check(len(lbtest.log_events(lb, r"server be0/s1 is DOWN")) == 1,
          "the state change was logged once")


if __name__ == "__main__":
    lbtest.run(main)
