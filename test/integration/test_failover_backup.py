#!/usr/bin/env python3
"""A backup server takes the clients only while every primary is down.

s0 and s1 are primaries, s2 a backup (health = http, interval 300 ms,
rise 2, fall 3), clients at 100/s. b0 is killed, then b1: the backup serves
once both are down, and no client fails on the way (connects to a dead
primary are retried with it avoided; the last primary's failure moves the
retry to the backup). The only clients allowed to fail are those a dying
server had already accepted when it was killed (nothing can replay them).
b0 is restarted: once it is up, the backup gets no new client. Each phase
lasts until PHASE clients have run through it.
"""
import signal
import time

import lbtest
from lbtest import check

SLACK = 0.5
PHASE = 30
HC = {"health": "http", "health_interval": "300ms", "health_timeout": "200ms",
      "rise": "2", "fall": "3", "retries": "2"}


def main(t):
    bes, lb = lbtest.http_pool(t, 3, HC, backups=1)
    load = lbtest.HttpLoad(lb.addr, rate=100).start()
    load.wait(PHASE, "served by the primaries", pred=lbtest.served)
    port = bes[0].addr
    t_k0 = time.time()
    bes[0].proc.send_signal(signal.SIGKILL)
    bes[0].proc.wait()
    kills = [(t_k0, time.time())]
    t_d0, _ = lbtest.wait_log(lb, r"server be0/s0 is DOWN", 5, after=t_k0)
    load.wait(PHASE, "started with s1 the only primary up", since=t_d0)
    t_k1 = time.time()
    bes[1].proc.send_signal(signal.SIGKILL)
    bes[1].proc.wait()
    kills.append((t_k1, time.time()))
    t_d1, _ = lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_k1)
    load.wait(PHASE, "started with both primaries down", since=t_d1 + SLACK)
    t_back, t_up = lbtest.restart_backend(t, lb, port, 0)
    load.wait(PHASE, "started once s0 is up again", since=t_up + SLACK)
    res = load.stop()

    failed, lost = lbtest.failed_clients(res, kills)
    check(not failed, f"zero failed client connections out of {len(res)} ({failed[:3]}; "
                      f"{len(lost)} already on a server when it was killed)")
    early = [r for r in res if r["name"] == "b2" and r["t0"] < t_k1]
    check(not early, f"the backup took no client while a primary was up ({len(early)})")
    mid = [r["name"] for r in res if t_d1 + SLACK < r["t0"] < t_back]
    check(mid and set(mid) == {"b2"}, f"all {len(mid)} clients went to the backup "
                                      f"while both primaries were down")
    late = [r for r in res if r["name"] == "b2" and r["t0"] > t_up + SLACK]
    check(not late, f"the backup got no new client once s0 was up ({len(late)})")
    check(any(r["name"] == "b0" for r in res if r["t0"] > t_up),
          "the restarted primary serves again")


if __name__ == "__main__":
    lbtest.run(main)
