#!/usr/bin/env python3
"""Worker threads: named ringlb-w0, ringlb-w1, ...; with pin_workers = yes
(the default) worker i may run only on the i-th CPU of ringlb's affinity
mask, with pin_workers = no on all of them. Both serve.
"""
import os

import lbtest
from lbtest import check



def main(t):
    allowed = os.sched_getaffinity(0)  # ringlb inherits it
    cpus = sorted(allowed)
    echo = t.backend("echo")

    lb = t.ringlb(servers=[echo], global_opts={"workers": "3"})
    # ringlb accepts as soon as one worker listens; the others may still be
    # starting (and naming themselves) under load.
    def pinned():
        ws = lbtest.worker_threads(lb.proc.pid)
        return all(ws.get(f"ringlb-w{i}") == {cpus[i % len(cpus)]} for i in range(3))
    try:
        lbtest.wait_until(pinned, "three pinned worker threads run")
    except lbtest.Fail:
        pass  # the checks below say what is wrong
    ws = lbtest.worker_threads(lb.proc.pid)
    check(sorted(ws) == ["ringlb-w0", "ringlb-w1", "ringlb-w2"],
          f"three named worker threads: {sorted(ws)}")
    for i in range(3):
        want = {cpus[i % len(cpus)]}
        check(ws.get(f"ringlb-w{i}") == want,
              f"pinned: ringlb-w{i} runs on CPU {want} ({ws.get(f'ringlb-w{i}')})")
    check(lbtest.echoes(lb.addr), "the pinned workers serve")

    lb2 = t.ringlb(servers=[echo], global_opts={"workers": "3", "pin_workers": "no"})
    try:
        lbtest.wait_until(lambda: len(lbtest.worker_threads(lb2.proc.pid)) == 3 and all(
            a == allowed for a in lbtest.worker_threads(lb2.proc.pid).values()),
                          "three unpinned worker threads run")
    except lbtest.Fail:
        pass  # the check below says what is wrong
    ws = lbtest.worker_threads(lb2.proc.pid)
    check(len(ws) == 3 and all(a == allowed for a in ws.values()),
          f"pin_workers = no: every worker may run on all of {cpus} ({ws})")
    check(lbtest.echoes(lb2.addr), "the unpinned workers serve")


if __name__ == "__main__":
    lbtest.run(main)
