#!/usr/bin/env python3
"""Servers flip up and down continuously while workers pick at full speed.

The check for races between the health checker and the workers (run it
against the TSan build: make BUILD=build-tsan SAN=thread OPT=-O1
build-tsan/ringlb, then RINGLB=build-tsan/ringlb). balance = maglev, so
that slow_start's weight steps rebuild the Maglev table in the checker and
retire the old one through QSBR while workers read it; health = http with
interval 50 ms and rise = fall = 1, so every flip of a backend between 200
and 503 (SIGUSR1/SIGUSR2 every 120 ms) changes server state. Clients run
at 400/s until 2000 were answered. Checked: every client gets a full answer (200 or 503),
there were many state changes, no sanitizer report, and ringlb exits 0.
"""
import random
import signal
import threading

import lbtest
from lbtest import check


def main(t):
    bes = [t.backend("http", name=f"b{i}") for i in range(4)]
    # The flips come from the backends' 200/503 answers; a generous probe
    # timeout keeps a loaded machine (tests run in parallel, sanitizer
    # builds) from timing every probe out at once, which would leave no
    # server and fail clients for a reason this test is not about.
    opts = {"balance": "maglev", "health": "http", "health_interval": "50ms",
            "health_timeout": "2s", "rise": "1", "fall": "1", "slow_start": "400ms",
            "retries": "2"}
    lb = t.ringlb(servers=bes, backend_opts=opts)
    lbtest.wait_log(lb, r"health: checking 4 server", 5)
    stop = threading.Event()

    def flipper():
        rnd = random.Random(4)
        while not stop.is_set():
            b = bes[rnd.randrange(1, 4)]
            b.proc.send_signal(rnd.choice([signal.SIGUSR1, signal.SIGUSR2]))
            stop.wait(0.12)
        for b in bes:
            b.proc.send_signal(signal.SIGUSR2)

    th = threading.Thread(target=flipper, daemon=True)
    load = lbtest.HttpLoad(lb.addr, rate=400, threads=8).start()
    th.start()
    # Until 2000 clients were answered (5 s at 400/s on an idle machine)
    # and the flips made enough state changes, not for a fixed time: a
    # loaded machine (or the TSan build) takes longer, it does not fail.
    lbtest.wait_until(lambda: len(load.snapshot()) >= 2000 and
                      len(lbtest.log_events(lb, r"is DOWN")) >= 10 and
                      len(lbtest.log_events(lb, r"is UP")) >= 5,
                      "2000 clients, 10 DOWN and 5 UP changes", 60, interval=0.2)
    stop.set()
    th.join()
    res = load.stop()

    failed = [r for r in res if r["err"]]
    check(len(res) > 1000, f"{len(res)} clients")
    check(not failed, f"every client got a full answer ({len(failed)} failed: {failed[:3]})")
    downs = lbtest.log_events(lb, r"is DOWN")
    ups = lbtest.log_events(lb, r"is UP")
    check(len(downs) >= 10 and len(ups) >= 5, f"{len(downs)} DOWN and {len(ups)} UP changes")
    check(any(r["name"] == "b0" for r in res[-50:]), "the never-flipped server still serves")
    t.stop_all_checked()
    text = lb.log_text()
    check("Sanitizer" not in text and "data race" not in text, "no sanitizer report")


if __name__ == "__main__":
    lbtest.run(main)
