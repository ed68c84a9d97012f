#!/usr/bin/env python3
"""A weight set through the admin API during a slow start is where the ramp
ends (issue #6), as HAProxy's `set weight` is: slow start scales the weight
the operator asked for, it does not put lb.ini's back.

Two http backends (health = http, interval 100 ms, rise 2, fall 2,
slow_start = 4s). s1 turns 503 and is marked down; it recovers and ramps up;
while it ramps (its weight seen strictly between 0 and 1) the API sets its
weight to 3. The ramp goes on below 3 (so the API did not end it), climbing
past lb.ini's 1 without ever going down, and once it is over s1's weight is
3, not lb.ini's 1. Everything is asserted on the weights the admin API
shows, sampled as the ramp goes, never on when they are seen.
"""
import signal
import time

import lbtest
from lbtest import check

OPTS = {"health": "http", "health_interval": "100ms", "health_timeout": "200ms",
        "rise": "2", "fall": "2", "slow_start": "4s"}


def weight(adm, name):
    for s in lbtest.admin_json(adm)["backends"][0]["servers"]:
        if s["name"] == name:
            return s["weight"], s["state"]
    raise lbtest.Fail(f"no server {name}")


def steps(samples):
    """The weights of <samples> ((weight, state) pairs), repeats dropped."""
    out = []
    for w, _ in samples:
        if not out or out[-1] != w:
            out.append(w)
    return out


def main(t):
    bes = [t.backend("http", name=f"b{i}") for i in range(2)]
    lb, adm = lbtest.admin_ringlb(t, servers=bes, backend_opts=OPTS)
    lbtest.wait_log(lb, r"health: checking 2 server", 5)

    t_sick = time.time()
    bes[1].proc.send_signal(signal.SIGUSR1)
    lbtest.wait_log(lb, r"server be0/s1 is DOWN", 5, after=t_sick)
    t_well = time.time()
    bes[1].proc.send_signal(signal.SIGUSR2)
    _, line = lbtest.wait_log(lb, r"server be0/s1 is UP", 5, after=t_well)
    check("slow start" in line, "s1 comes back with a slow start")

    # The first ramp, towards lb.ini's weight 1.
    ramp = []

    def ramping():
        w, st = weight(adm, "s1")
        ramp.append((w, st))
        return 0 < w < 1

    lbtest.wait_until(ramping, "s1's weight strictly between 0 and 1 during its slow start", 10)
    ws = [w for w, _ in ramp]
    check(all(st == "up" for _, st in ramp), f"s1 is up while it ramps ({set(st for _, st in ramp)})")
    check(ws == sorted(ws), f"the ramp only goes up ({steps(ramp)})")
    lbtest.admin_post(adm, "be0", "s1", "weight?value=3")

    # The API sets the weight at once; the next ramp step (every 250 ms)
    # brings it back on the ramp, now towards 3.
    after = []

    def below_3():
        w, st = weight(adm, "s1")
        after.append((w, st))
        return w < 3

    lbtest.wait_until(below_3, "the ramp going on below the API's weight 3", 10)
    ramp = after[-1:]

    def ramp_over():
        w, st = weight(adm, "s1")
        ramp.append((w, st))
        return w >= 3

    lbtest.wait_until(ramp_over, "the end of the slow start", 15)
    ws = [w for w, _ in ramp]
    check(all(st == "up" for _, st in ramp), f"s1 stays up while it ramps on ({set(st for _, st in ramp)})")
    check(ws == sorted(ws), f"the ramp towards 3 only goes up ({steps(ramp)})")
    check(any(1 < w < 3 for w in ws),
          f"the ramp goes on towards the new weight, past lb.ini's 1 ({steps(ramp)})")
    w, st = weight(adm, "s1")
    check(w == 3 and st == "up", f"after the slow start s1 has the API's weight 3 ({w}, {st})")
    check(weight(adm, "s0")[0] == 1, "s0 keeps lb.ini's weight 1")

lbtest.run(main)
