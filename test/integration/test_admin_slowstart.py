#!/usr/bin/env python3
"""A weight set through the admin API during a slow start is where the ramp
ends (issue #6), as HAProxy's `set weight` is: slow start scales the weight
the operator asked for, it does not put lb.ini's back.

Two http backends (health = http, interval 100 ms, rise 2, fall 2,
slow_start = 2s). s1 turns 503 and is marked down; it recovers and ramps up;
half-way through the ramp the API sets its weight to 3. The ramp goes on
below 3 (so the API did not end it), and once it is over s1's weight is 3,
not lb.ini's 1.
"""
import signal
import time

import lbtest
from lbtest import check

OPTS = {"health": "http", "health_interval": "100ms", "health_timeout": "200ms",
        "rise": "2", "fall": "2", "slow_start": "2s"}


def weight(adm, name):
    for s in lbtest.admin_json(adm)["backends"][0]["servers"]:
        if s["name"] == name:
            return s["weight"], s["state"]
    raise lbtest.Fail(f"no server {name}")


def main(t):
    bes = [t.backend("http", name=f"b{i}") for i in range(2)]
    lb, adm = lbtest.admin_ringlb(t, servers=bes, backend_opts=OPTS)
    lbtest.wait_log(lb, r"health: checking 2 server", 5)

    t_sick = time.time()
    bes[1].proc.send_signal(signal.SIGUSR1)
    lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_sick)
    t_well = time.time()
    bes[1].proc.send_signal(signal.SIGUSR2)
    t_up, line = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_well)
    check("slow start" in line, "s1 comes back with a slow start")
    time.sleep(max(0.0, t_up + 0.8 - time.time()))
    w, _ = weight(adm, "s1")
    check(0 < w < 1, f"s1 is ramping 0.8 s into a 2 s slow start (weight {w})")
    lbtest.admin_post(adm, "be0", "s1", "weight?value=3")
    # The API sets the weight at once; the next ramp step (every 125 ms)
    # brings it back on the ramp, now towards 3.
    deadline = time.monotonic() + 0.8
    while weight(adm, "s1")[0] >= 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    w, _ = weight(adm, "s1")
    check(1 < w < 3, f"the ramp goes on towards the new weight (weight {w})")
    time.sleep(max(0.0, t_up + 2.6 - time.time()))
    w, st = weight(adm, "s1")
    check(w == 3 and st == "up", f"after the slow start s1 has the API's weight 3 ({w}, {st})")
    check(weight(adm, "s0")[0] == 1, "s0 keeps lb.ini's weight 1")


lbtest.run(main)
