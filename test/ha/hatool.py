#!/usr/bin/env python3
"""hatool.py - the measuring side of the test/ha topologies (stdlib only).

The shell scripts build the namespaces and start the daemons; this tool
does what needs a clock or a socket, so that every time it reports comes
from one monotonic clock (CLOCK_MONOTONIC is the same for every process on
the host, whatever namespace it runs in):

  serve    a backend that answers each connection with "NAME PEER\\n" and
           closes: the client learns which backend answered and which
           balancer address connected to it.
  who      from each of several source addresses, K new connections to a
           target; checks that each source always reaches one backend (and
           the one of an earlier --map-out, with --expect-map), through the
           balancer(s) expected; prints what it saw.
  loop     new connections at a fixed rate (each with a short timeout), an
           event command run after N successes (a kill -9), a mark command
           polled until its output matches (the VIP moved, the route was
           withdrawn); stops once M requests in a row succeeded after the
           mark, or at --max-seconds. Prints a JSON summary (--json: with
           every request; --vars: as shell variables), and exits 1 when an
           --expect-* check fails.
  hold     one long-lived connection to an echo server, a round trip every
           100 ms until a stop file appears: says whether it stayed intact.
  adverts  counts VRRP advertisements from one router (raw socket, root).

Every loop here is bounded in count and in time.
"""

import argparse
import asyncio
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time


def hostport(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


# ---- serve -------------------------------------------------------------------


def cmd_serve(args):
    name = args.name

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                self.request.sendall(f"{name} {self.client_address[0]}\n".encode())
            except OSError:
                pass  # a client that left early is not the backend's problem

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 1024

    with Server(hostport(args.listen), Handler) as srv:
        print(f"serve {name} listening on {args.listen}", flush=True)
        srv.serve_forever()


# ---- one request ---------------------------------------------------------------


async def ask(target, source, timeout):
    """One new connection from <source> to <target>: the backend's
    "NAME PEER" line, or raises (timeout, refused, reset, short answer)."""

    async def once():
        reader, writer = await asyncio.open_connection(
            *target, local_addr=(source, 0) if source else None)
        try:
            line = await reader.readline()
        finally:
            writer.close()
        words = line.decode().split()
        if len(words) != 2:
            raise ConnectionError(f"bad answer {line!r}")
        return words

    return await asyncio.wait_for(once(), timeout)


def err_name(e):
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    return type(e).__name__


# ---- who -----------------------------------------------------------------------


async def who(target, sources, per_source, timeout):
    out = {}
    for src in sources:
        answers = []
        for _ in range(per_source):
            try:
                answers.append(await ask(target, src, timeout))
            except Exception as e:  # noqa: BLE001 - any failure is reported as such
                answers.append(["FAILED", err_name(e)])
        out[src] = answers
    return out


def cmd_who(args):
    res = asyncio.run(who(hostport(args.target), args.sources.split(","), args.per_source,
                          args.timeout))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f)
    problems = []
    want = {}
    if args.expect_map:
        with open(args.expect_map) as f:
            want = json.load(f)
    backends, balancers, got = {}, {}, {}
    for src, answers in res.items():
        for backend, balancer in answers:
            if backend == "FAILED":
                problems.append(f"a request from {src} failed: {balancer}")
                continue
            backends[backend] = backends.get(backend, 0) + 1
            balancers[balancer] = balancers.get(balancer, 0) + 1
            if got.setdefault(src, backend) != backend:
                problems.append(f"{src} reached {got[src]} and {backend}")
            if src in want and want[src] != backend:
                problems.append(f"{src} reached {backend} via {balancer}, before {want[src]}")
            if args.expect_balancer and balancer != args.expect_balancer:
                problems.append(f"{src} went through {balancer}, not {args.expect_balancer}")
    if args.min_backends and len(backends) < args.min_backends:
        problems.append(f"only backends {sorted(backends)}: the sources do not spread")
    if args.min_balancers and len(balancers) < args.min_balancers:
        problems.append(f"only balancers {sorted(balancers)}")
    if args.map_out:
        with open(args.map_out, "w") as f:
            json.dump(got, f)
    print(f"who: {len(res)} sources x {args.per_source}: backends {json.dumps(backends)}, "
          f"balancers {json.dumps(balancers)}" + (", as before" if want else ""))
    for p in problems[:10]:
        print(f"who: {p}", file=sys.stderr)
    return 1 if problems else 0


# ---- loop ----------------------------------------------------------------------


class Mark(threading.Thread):
    """Polls <cmd> every 20 ms from start() until its output matches <regex>;
    records the monotonic time it first did (at most <limit> seconds)."""

    def __init__(self, cmd, regex, limit):
        super().__init__(daemon=True)
        self.cmd, self.regex, self.limit = cmd, re.compile(regex, re.M), limit
        self.when = None

    def run(self):
        end = time.monotonic() + self.limit
        while time.monotonic() < end:
            out = subprocess.run(self.cmd, shell=True, capture_output=True, text=True).stdout
            if self.regex.search(out):
                self.when = time.monotonic()
                return
            time.sleep(0.02)


async def run_loop(args):
    target = hostport(args.target)
    sources = args.sources.split(",") if args.sources else [None]
    period = 1.0 / args.rate
    records = []  # [t_start, t_end, source, ok, backend-or-error, balancer]
    t0 = time.monotonic()
    t_event = None
    mark = None
    ok_since_mark = 0
    tasks = set()

    async def one(src):
        t = time.monotonic()
        try:
            backend, balancer = await ask(target, src, args.timeout)
            records.append([t, time.monotonic(), src, True, backend, balancer])
        except Exception as e:  # noqa: BLE001 - every failure counts, with its kind
            records.append([t, time.monotonic(), src, False, err_name(e), None])

    def event_cmd():
        subprocess.run(args.event_cmd, shell=True, check=False)

    i = 0
    while True:
        now = time.monotonic()
        if now - t0 > args.max_seconds:
            break
        if args.stop_file and os.path.exists(args.stop_file):
            break
        oks = sum(1 for r in records if r[3])
        if args.event_cmd and t_event is None and oks >= args.after_ok:
            t_event = time.monotonic()
            threading.Thread(target=event_cmd, daemon=True).start()
            if args.mark_cmd:
                mark = Mark(args.mark_cmd, args.mark_regex, args.max_seconds)
                mark.start()
        if args.count and i >= args.count:
            break
        if mark is not None and mark.when is not None:
            # Requests that started after the mark, in start order, all done.
            after = sorted((r for r in records if r[0] >= mark.when), key=lambda r: r[0])
            ok_since_mark = 0
            for r in after:
                ok_since_mark = ok_since_mark + 1 if r[3] else 0
            if ok_since_mark >= args.settle_ok:
                break
        task = asyncio.ensure_future(one(sources[i % len(sources)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        await asyncio.sleep(max(0.0, t0 + i * period - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=args.timeout + 1)
    records.sort(key=lambda r: r[0])
    return records, t0, t_event, (mark.when if mark else None)


def summarize(args, records, t0, t_event, t_mark):
    fails = [r for r in records if not r[3]]
    s = {
        "requests": len(records),
        "failed": len(fails),
        "duration_s": round(records[-1][1] - t0, 3) if records else 0,
        "errors": {},
        "backends": sorted({r[4] for r in records if r[3]}),
        "balancers": sorted({r[5] for r in records if r[3]}),
    }
    for r in fails:
        s["errors"][r[4]] = s["errors"].get(r[4], 0) + 1
    if fails:
        # When the failures happened, in seconds from the loop's start.
        s["failures_from_to_s"] = [round(fails[0][0] - t0, 3), round(fails[-1][0] - t0, 3)]
    problems = []
    if t_event is not None:
        # A request in flight at the kill dies with the balancer (TCP ends
        # there): it belongs to the outage, not before it.
        s["failed_before_event"] = sum(1 for r in fails if r[1] < t_event)
        if t_mark is not None:
            s["mark_s"] = round(t_mark - t_event, 3)
        last_fail = max((r[0] for r in fails if r[0] >= t_event), default=None)
        if last_fail is None:
            s["outage_s"] = 0.0
        else:
            # The service gap: from the kill until the first request that
            # started after the last failed one and succeeded.
            nxt = next((r for r in records if r[0] > last_fail and r[3]), None)
            s["outage_s"] = round(nxt[0] - t_event, 3) if nxt else None
            s["last_failure_s"] = round(last_fail - t_event, 3)
        if s["failed_before_event"]:
            problems.append(f"{s['failed_before_event']} requests failed before the event")
        if args.mark_cmd and t_mark is None:
            problems.append(f"the mark never matched: {args.mark_cmd!r} ~ /{args.mark_regex}/")
        if args.expect_outage_under is not None and (
                s.get("outage_s") is None or s["outage_s"] >= args.expect_outage_under):
            problems.append(f"outage {s.get('outage_s')} s, expected under "
                            f"{args.expect_outage_under} s")
        if t_mark is not None:
            # Nothing else fails: once the mark was seen (plus one request
            # timeout for requests already on their way), every request works.
            late = [r for r in fails if r[0] > t_mark + args.timeout]
            s["failed_after_mark"] = len(late)
            if late:
                problems.append(f"{len(late)} requests failed after the mark "
                                f"(first at +{late[0][0] - t_event:.3f} s: {late[0][4]})")
    if args.expect_no_failures and fails:
        problems.append(f"{len(fails)} requests failed ({s['errors']})")
    if args.expect_map:
        with open(args.expect_map) as f:
            want = json.load(f)
        wrong = [r for r in records if r[3] and r[2] in want and r[4] != want[r[2]]]
        s["backend_mismatches"] = len(wrong)
        if wrong:
            r = wrong[0]
            problems.append(f"{len(wrong)} answers from another backend than before "
                            f"(source {r[2]}: {r[4]} via {r[5]}, expected {want[r[2]]})")
    if args.expect_balancer_after_mark and t_mark is not None:
        others = {r[5] for r in records if r[3] and r[0] > t_mark + args.timeout}
        others.discard(args.expect_balancer_after_mark)
        if others:
            problems.append(f"after the mark answers still came through {sorted(others)}")
    if args.min_requests and len(records) < args.min_requests:
        problems.append(f"only {len(records)} requests, wanted at least {args.min_requests}")
    s["problems"] = problems
    return s


def write_vars(path, summary):
    """The summary as shell assignments s_KEY='VALUE', for the scripts'
    result tables (`. FILE`)."""
    with open(path, "w") as f:
        for k, v in summary.items():
            if isinstance(v, dict):
                v = " ".join(f"{a}:{b}" for a, b in v.items()) or "none"
            elif isinstance(v, list):
                v = "; ".join(str(x) for x in v) or "none"
            elif v is None:
                v = "-"
            f.write(f"s_{k}='{str(v).replace(chr(39), '')}'\n")


def cmd_loop(args):
    records, t0, t_event, t_mark = asyncio.run(run_loop(args))
    s = summarize(args, records, t0, t_event, t_mark)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": s, "t0": t0, "t_event": t_event, "t_mark": t_mark,
                       "records": records}, f)
    if args.vars:
        write_vars(args.vars, s)
    print(f"loop {args.label}: " + json.dumps(s), flush=True)
    return 1 if s["problems"] else 0


# ---- hold ----------------------------------------------------------------------


def cmd_hold(args):
    """One echo connection kept busy until <stop_file> appears."""
    end = time.monotonic() + args.max_seconds
    res = {"round_trips": 0, "intact": False, "error": None}
    try:
        sock = socket.create_connection(hostport(args.target), timeout=2)
        sock.settimeout(2)
        while True:
            msg = f"ping {res['round_trips']}\n".encode()
            sock.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = sock.recv(len(msg) - len(got))
                if not chunk:
                    raise ConnectionError("closed by the peer")
                got += chunk
            if got != msg:
                raise ConnectionError(f"echo mismatch {got!r}")
            res["round_trips"] += 1
            if res["round_trips"] == 1 and args.ready_file:
                open(args.ready_file, "w").close()
            if os.path.exists(args.stop_file):
                res["intact"] = True
                break
            if time.monotonic() > end:
                res["error"] = "no stop file before --max-seconds"
                break
            time.sleep(0.1)
        sock.close()
    except Exception as e:  # noqa: BLE001 - the kind of failure is the result
        res["error"] = err_name(e) + (f": {e}" if str(e) else "")
    # One line for the shell: "intact (N round trips)" or "broken after N
    # round trips: WHY".
    n = res["round_trips"]
    line = (f"intact ({n} round trips)" if res["intact"] else
            f"broken after {n} round trips: {res['error']}")
    with open(args.result + ".tmp", "w") as f:
        f.write(line + "\n")
    os.rename(args.result + ".tmp", args.result)
    return 0


# ---- adverts -------------------------------------------------------------------


def cmd_adverts(args):
    """Waits for <count> VRRP adverts with priority > 0 from <src>."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    end = time.monotonic() + args.timeout
    seen = 0
    while seen < args.count:
        left = end - time.monotonic()
        if left <= 0:
            print(f"adverts: {seen} of {args.count} from {args.src} in {args.timeout} s",
                  file=sys.stderr)
            return 1
        s.settimeout(left)
        try:
            pkt, (addr, _) = s.recvfrom(2048)
        except socket.timeout:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        vrrp = pkt[ihl:]
        if addr == args.src and len(vrrp) >= 3 and vrrp[1] == args.vrid and vrrp[2] > 0:
            seen += 1
    print(f"adverts: {seen} from {args.src} (vrid {args.vrid})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="sub", required=True)

    p = sub.add_parser("serve")
    p.add_argument("--listen", required=True)
    p.add_argument("--name", required=True)

    p = sub.add_parser("who")
    p.add_argument("--target", required=True)
    p.add_argument("--sources", required=True)
    p.add_argument("--per-source", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--json")
    p.add_argument("--map-out")
    p.add_argument("--expect-map")
    p.add_argument("--expect-balancer")
    p.add_argument("--min-backends", type=int, default=0)
    p.add_argument("--min-balancers", type=int, default=0)

    p = sub.add_parser("loop")
    p.add_argument("--label", default="")
    p.add_argument("--target", required=True)
    p.add_argument("--sources", default="")
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--timeout", type=float, default=0.5)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=20)
    p.add_argument("--stop-file")
    p.add_argument("--after-ok", type=int, default=25)
    p.add_argument("--event-cmd")
    p.add_argument("--mark-cmd")
    p.add_argument("--mark-regex", default=".")
    p.add_argument("--settle-ok", type=int, default=50)
    p.add_argument("--json")
    p.add_argument("--vars")
    p.add_argument("--expect-outage-under", type=float)
    p.add_argument("--expect-no-failures", action="store_true")
    p.add_argument("--expect-map")
    p.add_argument("--expect-balancer-after-mark")
    p.add_argument("--min-requests", type=int, default=0)

    p = sub.add_parser("hold")
    p.add_argument("--target", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--ready-file")
    p.add_argument("--result", required=True)
    p.add_argument("--max-seconds", type=float, default=60)

    p = sub.add_parser("adverts")
    p.add_argument("--src", required=True)
    p.add_argument("--vrid", type=int, required=True)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--timeout", type=float, default=10)

    args = ap.parse_args()
    return {"serve": cmd_serve, "who": cmd_who, "loop": cmd_loop, "hold": cmd_hold,
            "adverts": cmd_adverts}[args.sub](args)


if __name__ == "__main__":
    sys.exit(main())
