#!/usr/bin/env python3
"""Defaults that fit the machine: an lb.ini that names neither max_conns
nor admin starts without a warning.

- max_conns defaults to auto: what the open-files limit holds, 2
  descriptors per connection after a reserve of 64, said once at info
  level (under a 1,000-file limit: 468); no "open-files limit is" warning,
  which the old default of 100,000 printed on every start.
- The admin API is off unless lb.ini names it: no admin listener.
"""
import lbtest
from lbtest import check


def main(t):
    echo = t.backend("echo")
    io, fwd = lbtest.MODES[t.mode]
    text = (f"[global]\nio = {io}\nforward = {fwd}\nworkers = 2\n\n[frontend f]\n"
            f"bind = 127.0.0.1:{lbtest.free_port()}\nbackend = b\n\n[backend b]\nhealth = none\n"
            f"server = s {echo.addr}\n")
    path, _ = t.config(text=text)
    bind = text.split("bind = ")[1].split("\n")[0]
    lb = lbtest.Ringlb(t, path, [[bind]], "ringlb0", 1000)
    t.lbs.append(lb)
    lb.wait_ready()
    check(lbtest.echoes(lb.addr), "it serves")
    line = lbtest.wait_log(lb, r"max_conns auto: ", 5)[1]
    check("max_conns auto: 468 (open-files limit 1000" in line, f"auto max_conns: {line.strip()}")
    check(not lbtest.log_events(lb, r"open-files limit is"), "no open-files warning")
    check(not lbtest.log_events(lb, r"admin: listening"), "no admin listener unless named")
    check(lbtest.wait_log(lb, r"max_conns 468$", 5)[1], "the start-up line says 468")


if __name__ == "__main__":
    lbtest.run(main)
