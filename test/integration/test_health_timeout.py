#!/usr/bin/env python3
"""A server that accepts but never answers is taken out by the probe timeout.

Three http backends (health = http, interval 300 ms, timeout 200 ms, rise 2,
fall 3) under continuous new client connections (50/s, 2 s client timeout).
Backend b1 is stopped (SIGSTOP) once it has served clients: the kernel
still completes handshakes into its backlog, but nothing answers, so
connects succeed and only the probe timeout can tell. It is resumed
(SIGCONT) once PHASE clients ran with it marked down. Checked:

 - ringlb logs "is DOWN: timeout after 200 ms" within fall x interval
   (+10% jitter) + timeout;
 - clients that started after that line all get their answer (at L4 a
   client already forwarded to the stopped server waits for it: those are
   the only ones allowed to time out);
 - after SIGCONT, b1 serves clients again within rise x interval.
"""
import signal
import time

import lbtest
from lbtest import check

INTERVAL, TIMEOUT, RISE, FALL = 0.3, 0.2, 2, 3
SLACK = 1.5
PHASE = 30
HC = {"health": "http", "health_interval": "300ms", "health_timeout": "200ms",
      "rise": str(RISE), "fall": str(FALL), "retries": "2"}


def main(t):
    bes, lb = lbtest.http_pool(t, 3, HC)
    load = lbtest.HttpLoad(lb.addr, rate=50, timeout=2.0).start()
    load.wait(PHASE // 3, "served by b1", pred=lambda r: r["name"] == "b1")
    t_stop = time.time()
    bes[1].proc.send_signal(signal.SIGSTOP)
    try:
        t_down, line = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_stop)
        lbtest.log(f"  {line.split(': ', 1)[1]} ({t_down - t_stop:.2f}s after SIGSTOP)")
        # The state is published before the line is logged; 50 ms covers
        # the log's millisecond stamp. Clients stuck on b1 hold up to 4
        # load threads for their 2 s timeout, hence the longer wait.
        load.wait(PHASE, "started with s1 down", since=t_down + 0.05, timeout=20)
    finally:
        t_cont = time.time()
        bes[1].proc.send_signal(signal.SIGCONT)
    t_up, _ = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_cont)
    load.wait(PHASE, "started with s1 up again", since=t_up)
    load.wait(1, "served by b1 again", since=t_cont, pred=lambda r: r["name"] == "b1")
    res = load.stop()

    bound = FALL * INTERVAL * 1.1 + TIMEOUT
    check("timeout after 200 ms" in line, "the log says the probe timed out")
    check(t_down - t_stop <= bound + SLACK,
          f"marked down {t_down - t_stop:.2f}s after SIGSTOP (bound {bound:.2f}s)")
    stalled = [r for r in res if r["err"]]
    late = [round(r["t0"] - t_stop, 2) for r in stalled if r["t0"] > t_down + 0.05]
    check(not late, f"no client that started after s1 was marked down failed "
                    f"({len(stalled)} of {len(res)} stalled on the stopped server before; "
                    f"late: {late[:5]})")
    early = [r for r in stalled if r["t0"] < t_stop - 0.2]
    check(not early, f"no client failed before the server stopped ({early[:3]})")
    back = [r["t0"] - t_cont for r in res if r["name"] == "b1" and r["t0"] > t_cont]
    rbound = RISE * INTERVAL * 1.1
    check(back and min(back) <= rbound + SLACK,
          f"b1 serves clients again {min(back) if back else None}s after SIGCONT")


if __name__ == "__main__":
    lbtest.run(main)
