#!/usr/bin/env python3
"""Killing a server under load costs no client, and it comes back.

Three http backends behind ringlb (health = http, interval 300 ms, timeout
200 ms, rise 2, fall 3, retries 2) under continuous new client connections
at a bounded rate (100/s). Backend b1 is SIGKILLed once it has served
clients, and restarted on the same port once PHASE clients ran with it
marked down; the load runs until PHASE clients ran after it is up again.
Checked from outside:

 - zero failed client connections: every client gets its full answer
   (failed connects to the dead server are retried on another one), except
   one that b1 had already accepted at the instant of SIGKILL: that
   connection dies with the process and nothing at L4 can replay it;
 - ringlb marks s1 down within fall x interval (+10% jitter) + timeout
   after the kill, and tries no connect to it once it is down (counted by
   /metrics over PHASE clients that started after the down);
 - the restarted server answers clients again within rise x interval
   (+10% jitter) of listening.

SLACK covers scheduling on a loaded 2-core machine (sanitizer builds); the
bounds themselves come from the configuration.
"""
import signal
import time

import lbtest
from lbtest import check

INTERVAL, TIMEOUT, RISE, FALL = 0.3, 0.2, 2, 3
SLACK = 1.5
PHASE = 50
HC = {"health": "http", "health_interval": "300ms", "health_timeout": "200ms",
      "rise": str(RISE), "fall": str(FALL), "retries": "2", "connect_timeout": "1s"}



def main(t):
    adm = f"127.0.0.1:{lbtest.free_port()}"
    bes, lb = lbtest.http_pool(t, 3, HC, global_opts={"admin": adm})
    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    load.wait(PHASE // 3, "served by b1 before the kill", pred=lambda r: r["name"] == "b1")
    port = bes[1].addr
    t_kill = time.time()
    bes[1].proc.send_signal(signal.SIGKILL)
    bes[1].proc.wait()
    kills = [(t_kill, time.time())]
    t_down, line = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_kill)
    lbtest.log(f"  {line.split(': ', 1)[1]} ({t_down - t_kill:.2f}s after the kill)")
    bound = FALL * INTERVAL * 1.1 + TIMEOUT
    # Connects already under way when s1 went down may still fail: read the
    # counter once clients that started after the down have finished, then
    # again after PHASE more.
    load.wait(PHASE // 5, "started after s1 went down", since=t_down + 0.05)
    t_then = time.time()
    fails_then = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", server="s1")
    load.wait(PHASE, "started with s1 down", since=t_then)
    fails_before_restart = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", server="s1")
    t_back, t_up = lbtest.restart_backend(t, lb, port, 1)
    lbtest.log(f"  s1 is UP {t_up - t_back:.2f}s after restart")
    load.wait(PHASE, "started once s1 is up again", since=t_up)
    res = load.stop()

    failed, lost = lbtest.failed_clients(res, kills)
    during = [r for r in res if t_kill < r["t0"] < t_down]
    check(during, f"{len(during)} clients started while s1 was dead but not yet marked down")
    check(not failed, f"zero failed client connections ({len(failed)} failed: {failed[:3]}; "
                      f"{len(lost)} were already on b1 when it was killed)")
    check(t_down - t_kill <= bound + SLACK,
          f"s1 marked down {t_down - t_kill:.2f}s after the kill "
          f"(fall x interval + timeout = {bound:.2f}s)")
    # Counted by the metric, not the log: repeated connect warnings are
    # rate-limited.
    check(fails_then > 0 and fails_before_restart == fails_then,
          f"no connect to the dead s1 once it was down ({fails_then:.0f} failed connects "
          f"retried before, {fails_before_restart - fails_then:.0f} after)")
    served = [r["t0"] for r in res if r["name"] == "b1" and r["t0"] > t_back]
    first = min(served) - t_back if served else None
    rbound = RISE * INTERVAL * 1.1
    check(first is not None and first <= rbound + SLACK,
          f"restarted s1 serves clients again {first}s after listening "
          f"(rise x interval = {rbound:.2f}s)")


if __name__ == "__main__":
    lbtest.run(main)
