#!/usr/bin/env python3
"""Killing a server under load costs no client, and it comes back.

Three http backends behind ringlb (health = http, interval 300 ms, timeout
200 ms, rise 2, fall 3, retries 2) under 10 s of continuous new client
connections at a bounded rate (100/s). Backend b1 is SIGKILLed after 2.5 s
and restarted on the same port 3.5 s later. Checked from outside:

 - zero failed client connections: every client gets its full answer
   (failed connects to the dead server are retried on another one), except
   one that b1 had already accepted at the instant of SIGKILL: that
   connection dies with the process and nothing at L4 can replay it;
 - ringlb marks s1 down, and tries no connect to it later than
   fall x interval (+10% jitter) + timeout after the kill;
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
HC = {"health": "http", "health_interval": "300ms", "health_timeout": "200ms",
      "rise": str(RISE), "fall": str(FALL), "retries": "2", "connect_timeout": "1s"}



def main(t):
    adm = f"127.0.0.1:{lbtest.free_port()}"
    bes, lb = lbtest.http_pool(t, 3, HC, global_opts={"admin": adm})
    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    time.sleep(2.5)
    port = bes[1].addr
    t_kill = time.time()
    bes[1].proc.send_signal(signal.SIGKILL)
    bes[1].proc.wait()
    kills = [(t_kill, time.time())]
    t_down, line = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_kill)
    lbtest.log(f"  {line.split(': ', 1)[1]} ({t_down - t_kill:.2f}s after the kill)")
    bound = FALL * INTERVAL * 1.1 + TIMEOUT
    time.sleep(max(0.0, t_kill + bound + SLACK - time.time()))
    fails_then = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", server="s1")
    time.sleep(max(0.0, t_kill + 3.5 - time.time()))
    fails_before_restart = lbtest.metric_sum(adm, "ringlb_server_connect_failures_total", server="s1")
    t_back, t_up = lbtest.restart_backend(t, lb, port, 1)
    lbtest.log(f"  s1 is UP {t_up - t_back:.2f}s after restart")
    time.sleep(max(0.0, t_kill + 7.5 - time.time()))
    res = load.stop()

    failed, lost = lbtest.failed_clients(res, kills)
    check(len(res) > 600, f"{len(res)} client connections in 10 s")
    check(not failed, f"zero failed client connections ({len(failed)} failed: {failed[:3]}; "
                      f"{len(lost)} were already on b1 when it was killed)")
    check(t_down - t_kill <= bound + SLACK,
          f"s1 marked down {t_down - t_kill:.2f}s after the kill "
          f"(fall x interval + timeout = {bound:.2f}s)")
    # Counted by the metric, not the log: repeated connect warnings are
    # rate-limited.
    check(fails_then > 0 and fails_before_restart == fails_then,
          f"no connect to the dead s1 after {bound + SLACK:.2f}s ({fails_then:.0f} failed "
          f"connects retried before, {fails_before_restart - fails_then:.0f} after)")
    served = [r["t0"] for r in res if r["name"] == "b1" and r["t0"] > t_back]
    first = min(served) - t_back if served else None
    rbound = RISE * INTERVAL * 1.1
    check(first is not None and first <= rbound + SLACK,
          f"restarted s1 serves clients again {first}s after listening "
          f"(rise x interval = {rbound:.2f}s)")


if __name__ == "__main__":
    lbtest.run(main)
