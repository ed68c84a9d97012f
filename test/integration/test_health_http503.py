#!/usr/bin/env python3
"""A server that answers its health check with HTTP 503 stops getting clients.

Three http backends (health = http, interval 300 ms, timeout 200 ms, rise 2,
fall 3) under continuous new client connections (100/s). After 2 s backend
b1 starts answering 503 to everything (SIGUSR1 to bench/backend.py): it
still accepts connections, so only the health checker can take it out. 3 s
later it answers 200 again (SIGUSR2). Checked:

 - every client connection gets a full HTTP answer (a 503 from b1 before it
   is marked down is an answer, not a failed connection);
 - ringlb logs "server be0/s1 is DOWN: http status 503 (3/3 failed)" and no
   client reaches b1 later than fall x interval (+10% jitter) + timeout
   after the switch;
 - once b1 answers 200 again, clients reach it within rise x interval.
"""
import signal
import time

import lbtest
from lbtest import check

INTERVAL, TIMEOUT, RISE, FALL = 0.3, 0.2, 2, 3
SLACK = 1.5
HC = {"health": "http", "health_path": "/healthz", "health_expect": "200",
      "health_interval": "300ms", "health_timeout": "200ms", "rise": str(RISE),
      "fall": str(FALL), "retries": "2"}


def main(t):
    bes, lb = lbtest.http_pool(t, 3, HC)
    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    time.sleep(2)
    t_sick = time.time()
    bes[1].proc.send_signal(signal.SIGUSR1)
    t_down, line = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_sick)
    lbtest.log(f"  {line.split(': ', 1)[1]} ({t_down - t_sick:.2f}s after the switch)")
    check("http status 503 (3/3 failed)" in line, "the log names the status and the count")
    time.sleep(max(0.0, t_sick + 3 - time.time()))
    t_well = time.time()
    bes[1].proc.send_signal(signal.SIGUSR2)
    t_up, line = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_well)
    time.sleep(max(0.0, t_well + 2 - time.time()))
    res = load.stop()

    failed = [r for r in res if r["err"]]
    check(not failed, f"{len(res)} clients, every one got a full answer ({failed[:3]})")
    sick = [r for r in res if r["status"] == 503]
    bound = FALL * INTERVAL * 1.1 + TIMEOUT
    late = [round(r["t0"] - t_sick, 2) for r in res
            if r["name"] == "b1" and t_sick + bound + SLACK < r["t0"] < t_well]
    check(not late, f"no client reached b1 later than {bound:.2f}s after it turned 503 "
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
