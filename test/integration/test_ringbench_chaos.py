#!/usr/bin/env python3
# run-once: what is checked is the runner's (steps, timeline, reports, exit status, processes stopped), the same whatever ringlb's io mode
"""ringbench chaos (issue 13): the resilience runner against the ringlb under
test (run once, with lb.ini's default io and forward; another mode, when
given, goes into the lb.ini template).

- A tiny scenario (4 s): two echo backends, a connection-rate load, a
  hook step at 1 s (it writes $CHAOS_FRONTEND to a file), backend a
  killed at 1.5 s. ringbench chaos exits 0; its JSON has one timeline
  entry per second that adds up to the totals, the kill step ran and was
  ok, a shaded window "a killed" from 1.5 s to the end, every assertion
  measured (the failure counts equal the timeline's) and passed; the
  markdown and the SVG (with the window shaded) are written next to it.
  The assertions are ones ringlb always meets (this checks the runner,
  not ringlb's speed on a loaded machine: bench/chaos does that).
- The same with an impossible assertion (p99 under 1 us) and a hook that
  exits 3: exit 1, the JSON says fail, names the assertion that failed
  with what it measured, and the hook's step as failed ("exited 3").
- A malformed scenario: exit 2 and a FILE:LINE error.
- SIGINT in the middle of a run: exit 1, "interrupted" in the JSON.
- After each run no process the runner started is left: this test makes
  itself a child subreaper, so anything the runner leaked (a backend,
  ringlb) would become its child; none may remain.
"""
import ctypes
import json
import os
import re
import signal
import subprocess
import time

import lbtest
from lbtest import check

PR_SET_CHILD_SUBREAPER = 36

TEMPLATE = """; written by test_ringbench_chaos.py
[global]
workers = 2
io = {io}
forward = {fwd}
admin = ${{admin}}
shutdown_grace = 1s

[frontend web]
bind = ${{frontend}}
backend = app

[backend app]
balance = roundrobin
connect_timeout = 500ms
retries = 2
health = send_expect
health_send = ping\\n
health_expect = ping
health_interval = 300ms
health_timeout = 300ms
rise = 2
fall = 2
${{servers}}
"""

SCENARIO = """# a tiny scenario: a backend killed under load
title     tiny kill
ringlb    lb.tpl
backend   a
backend   b
load      connrate rate 100 size 64 timeout 5s
duration  4s
at 1s     hook echo "$CHAOS_FRONTEND" > {hook_out}
at 1.5s   kill a
assert    failed <= 1000 during 0s-1s
assert    recovered within 2500ms after 1.5s
assert    failed <= 1000
assert    p99 < 10s
"""


def children():
    """Processes whose parent is this test (itself a subreaper)."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.append((int(d), cmd.strip()))
    return out


def no_leftovers(what):
    # Orphans reach us as they are reparented; give a killed one a moment
    # to be reaped by the runner before it exits (the runner waits for
    # them: anything here is a leak).
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    left = [c for c in children() if "ringbench" in c[1] or "ringlb" in c[1]]
    check(not left, f"{what}: no process of the run left behind ({left})")


def chaos(t, scn_text, name, extra=(), interrupt=False):
    """Writes scenario <name>.scn and runs ringbench chaos on it; returns
    (exit status, parsed JSON or None, stderr)."""
    scn = os.path.join(t.dir, f"{name}.scn")
    with open(scn, "w") as f:
        f.write(scn_text)
    out = os.path.join(t.dir, "out")
    errpath = os.path.join(t.dir, f"{name}.stderr")
    argv = [lbtest.RINGBENCH, "chaos", "--scenario", scn, "--ringlb", lbtest.RINGLB,
            "--out", out] + list(extra)
    with open(errpath, "wb") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err, env=dict(os.environ, TMPDIR=t.dir))
        if interrupt:
            # The runner says "load on ADDR" once ringlb and the backends
            # are up and the load starts.
            lbtest.wait_until(lambda: "load on" in open(errpath, errors="replace").read(),
                              "the chaos run to start its load", timeout=20)
            p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise lbtest.Fail(f"ringbench chaos {name} still running after 60 s")
    with open(errpath, errors="replace") as f:
        err = f.read()
    data = None
    jpath = os.path.join(out, f"{name}.json")
    if os.path.exists(jpath):
        with open(jpath) as f:
            data = json.load(f)
        os.rename(jpath, jpath + ".seen")
    return rc, data, err


def main(t):
    t.require_mode()
    if not os.access(lbtest.RINGBENCH, os.X_OK):
        raise lbtest.Fail(f"{lbtest.RINGBENCH} is missing (run make)")
    libc = ctypes.CDLL(None, use_errno=True)
    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "this test is a child subreaper")
    io, fwd = ("auto", "auto") if t.once else lbtest.MODES[t.mode]
    with open(os.path.join(t.dir, "lb.tpl"), "w") as f:
        f.write(TEMPLATE.format(io=io, fwd=fwd))

    hook_out = os.path.join(t.dir, "hook.out")
    rc, d, err = chaos(t, SCENARIO.format(hook_out=hook_out), "tiny")
    check(rc == 0 and d is not None,
          f"tiny kill scenario exits 0 (rc {rc}, {err.strip()[-600:]}, "
          f"{d and [a for a in d['assertions'] if not a['pass']]}, {d and d['fatal']})")
    check(d["result"] == "pass" and d["fatal"] is None and not d["interrupted"],
          "the JSON says pass")
    tl = d["timeline"]
    check([e["t"] for e in tl] == [0, 1, 2, 3], f"one timeline entry per second ({len(tl)})")
    check(sum(e["rps"] for e in tl) > 0, f"requests per second {[e['rps'] for e in tl]}")
    check(all(e["p50_ms"] <= e["p99_ms"] <= e["max_ms"] for e in tl if e["rps"]),
          "p50 <= p99 <= max in every second with requests")
    check(sum(e["rps"] for e in tl) == d["requests"]
          and sum(e["failed"] for e in tl) == d["failed"],
          f"the timeline adds up to the totals ({d['requests']} ok, {d['failed']} failed)")
    st = d["steps"]
    check(len(st) == 2 and st[1]["step"] == "kill a" and st[1]["ok"]
          and 1.5 <= st[1]["ran_s"] < 3.0, f"the kill ran at {st[1]['ran_s']} s, ok")
    with open(hook_out) as f:
        told = f.read().strip()
    check(st[0]["ok"] and told == d["load"]["target"],
          f"the hook step ran, told where the frontend is ({told!r})")
    check(d["windows"] and d["windows"][0]["label"] == "a killed"
          and d["windows"][0]["from_s"] >= 1.5, f"a shaded window from the kill {d['windows']}")
    check(len(d["assertions"]) == 4 and all(a["pass"] for a in d["assertions"]),
          f"every assertion passed: {[(a['assert'], a['measured']) for a in d['assertions']]}")
    check(d["assertions"][0]["value"] == tl[0]["failed"]
          and d["assertions"][2]["value"] == d["failed"]
          and d["assertions"][1]["value"] <= 2.5,
          "the failure counts measured are the timeline's")
    with open(os.path.join(t.dir, "out", "tiny.svg")) as f:
        svg = f.read()
    check(svg.startswith("<svg") and "fill-opacity" in svg and "a killed" in svg
          and svg.count("<polyline") >= 3, "the SVG plots the timeline with the kill shaded")
    with open(os.path.join(t.dir, "out", "tiny.md")) as f:
        md = f.read()
    check("| kill a |" in md and "PASS" in md and "tiny.svg" in md,
          "the markdown summary lists the step, the verdicts and the plot")
    no_leftovers("tiny kill")

    impossible = SCENARIO.replace("assert    p99 < 10s", "assert    p99 < 1us").format(
        hook_out="/dev/null; exit 3")
    rc, d, err = chaos(t, impossible, "impossible")
    check(rc == 1, f"an impossible assertion exits 1 (rc {rc})")
    bad = [a for a in d["assertions"] if not a["pass"]]
    check(d["result"] == "fail" and len(bad) == 1 and bad[0]["assert"] == "p99 < 1us"
          and "ms" in bad[0]["measured"], f"the JSON names it with what it measured ({bad})")
    check(not d["steps"][0]["ok"] and "exited 3" in d["steps"][0]["error"],
          f"a hook that exits 3 fails its step ({d['steps'][0]['error']})")
    no_leftovers("impossible assertion")

    rc, d, err = chaos(t, SCENARIO.replace("kill a", "kill z").format(hook_out="/dev/null"),
                       "bad")
    check(rc == 2 and d is None and re.search(r"bad\.scn:9: kill: 'z' is not a backend", err),
          f"a malformed scenario exits 2 with FILE:LINE ({rc}, {err.strip()[:200]})")

    long = SCENARIO.replace("duration  4s", "duration  30s").format(hook_out="/dev/null")
    t0 = time.monotonic()
    rc, d, err = chaos(t, long, "sigint", interrupt=True)
    check(rc == 1 and d and d["interrupted"] and time.monotonic() - t0 < 25,
          f"SIGINT stops a 30 s run early, exit 1, interrupted ({rc}, "
          f"{time.monotonic() - t0:.1f} s)")
    no_leftovers("SIGINT")


if __name__ == "__main__":
    lbtest.run(main)
