#!/usr/bin/env python3
"""Admin API (issue #6): /metrics parses and moves as traffic flows, the
JSON of /api/backends agrees, and connection log lines are written.

Three frontends: fe0 -> two `name` servers; fe1 -> a refused server and a
good one with retries = 2 (every connect to the refused one is retried);
fe2 -> only a refused server with retries = 0 (its clients are rejected).
/metrics goes through prometheus_client's parser, so a malformed exposition
fails the test. The process_* families are checked against /proc, and the
counters of /api/backends against the names of /metrics (_total).
"""
import os
import re
import socket
import time

import lbtest
from lbtest import check, metric


def fetch(addr):
    s = lbtest.connect(addr)
    data = lbtest.recv_until_eof(s)
    s.close()
    return data


# Counters of /api/backends (issue #18): each key ends in _total and names
# a Prometheus counter family; the old names, which read like the lb.ini
# settings (retries = 2), are gone. Frontend families say "connections_".
OLD_NAMES = {"accepted", "rejected", "retries", "no_server", "connections", "connect_failures",
             "bytes_in", "bytes_out", "state_changes", "checks", "check_failures"}
FAMILY = {"frontend": "ringlb_frontend_connections_", "backend": "ringlb_backend_",
          "server": "ringlb_server_"}


def check_counter_names(j, m):
    types = {k[0] for k in m}
    objs = [("frontend", x) for x in j["frontends"]] + [("backend", x) for x in j["backends"]]
    objs += [("server", s) for b in j["backends"] for s in b["servers"]]
    bad = []
    for kind, o in objs:
        bad += [f"{kind} {o['name']}: {k} reads like a setting" for k in OLD_NAMES & o.keys()]
        bad += [f"{kind} {o['name']}: {k} has no counter {FAMILY[kind] + k} in /metrics"
                for k in o if k.endswith("_total") and FAMILY[kind] + k not in types]
    check(not bad, f"every counter of /api/backends ({len(objs)} objects) ends in _total and "
                   f"is a counter of /metrics" + "".join(f"\n    {x}" for x in bad))
    srv = j["backends"][0]["servers"][0]
    want = {"connections_total", "connect_failures_total", "bytes_in_total", "bytes_out_total",
            "state_changes_total", "checks_total", "check_failures_total"}
    check(want <= srv.keys(), f"a server's counters end in _total ({sorted(srv.keys())})")
    check({"retries_total", "no_server_total"} <= j["backends"][0].keys() and
          {"accepted_total", "rejected_total"} <= j["frontends"][0].keys(),
          "backend and frontend counters end in _total")


def soft_nofile(pid):
    """The soft "Max open files" limit of process <pid>, from /proc."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3]
                return float("inf") if v == "unlimited" else int(v)
    raise lbtest.Fail(f"no Max open files line in /proc/{pid}/limits")


def check_process_metrics(t0, pid, adm):
    """The process_* families (issue #18), as every Prometheus exporter has
    them, read by ringlb from /proc/self at scrape time."""
    m = lbtest.admin_metrics(adm)
    m2 = lbtest.admin_metrics(adm)
    now = time.time()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_max_fds", "process_start_time_seconds",
                 "process_virtual_memory_bytes"):
        check((name, frozenset()) in m, f"/metrics has {name}")
    cpu, cpu2 = metric(m, "process_cpu_seconds_total"), metric(m2, "process_cpu_seconds_total")
    check(0 <= cpu <= cpu2, f"process_cpu_seconds_total counts up ({cpu} then {cpu2})")
    rss = metric(m, "process_resident_memory_bytes")
    check(0 < rss <= metric(m, "process_virtual_memory_bytes"),
          f"process_resident_memory_bytes is positive and within virtual memory ({rss:.0f})")
    fds = metric(m, "process_open_fds")
    # What we see in /proc differs from ringlb's count only by health
    # probes in flight (one socket each, six servers at most here).
    seen = len(os.listdir(f"/proc/{pid}/fd"))
    check(0 < fds and abs(fds - seen) <= 8,
          f"process_open_fds is positive and agrees with /proc/{pid}/fd ({fds:.0f}, {seen})")
    limit = soft_nofile(pid)
    check(metric(m, "process_max_fds") == limit,
          f"process_max_fds is the soft RLIMIT_NOFILE of /proc/{pid}/limits "
          f"({metric(m, 'process_max_fds'):.0f}, {limit})")
    # starttime is in clock ticks (1/100 s), truncated, and printed with
    # two decimals: the start may read up to 0.02 s early, never later.
    start = metric(m, "process_start_time_seconds")
    check(t0 - 0.02 <= start <= now,
          f"process_start_time_seconds lies within this test's lifetime "
          f"({start:.2f} in [{t0:.2f}, {now:.2f}])")
    check(start <= metric(m, "ringlb_process_start_time_seconds") + 0.02,
          "the process started before its metrics were set up")


def main(t):
    t0 = time.time()
    a, b, g = t.backend("name", name="a"), t.backend("name", name="b"), t.backend("name", name="g")
    dead = t.refused_addr()
    lb, adm = lbtest.admin_ringlb(t, frontends=[
        (None, [a, b], {}),
        (None, [dead, g], {"retries": "2"}),
        (None, [dead], {"retries": "0"}),
    ], global_opts={"log_connections": "yes"})
    fe0, fe1, fe2 = lb.fe[0][0], lb.fe[1][0], lb.fe[2][0]

    m0 = lbtest.admin_metrics(adm)
    io = "epoll" if t.mode == "epoll" else "io_uring"
    check(any(k[0] == "ringlb_build_info" and ("io", io) in k[1] for k in m0),
          f"ringlb_build_info carries io=\"{io}\"")
    check(metric(m0, "ringlb_uptime_seconds") > 0, "uptime is positive")
    check(metric(m0, "ringlb_server_up", backend="be0", server="s0") == 1, "be0/s0 is up")
    check(metric(m0, "ringlb_server_state", backend="be0", server="s0", state="up") == 1,
          "state{state=up} is 1 for be0/s0")

    for _ in range(20):
        check(fetch(fe0) in (b"a\n", b"b\n"), "fe0 answers") if _ == 0 else fetch(fe0)
    for _ in range(10):
        if fetch(fe1) != b"g\n":
            raise lbtest.Fail("fe1 did not reach the good server")
    for _ in range(3):
        fetch(fe2)  # closed at once: nobody to connect to

    m1 = lbtest.admin_metrics(adm)
    d = lambda name, **kw: metric(m1, name, **kw) - metric(m0, name, **kw)
    check(d("ringlb_frontend_connections_accepted_total", frontend="fe0") == 20,
          "fe0 accepted 20 more connections")
    tot = sum(d("ringlb_server_connections_total", backend="be0", server=s) for s in ("s0", "s1"))
    check(tot == 20, f"be0 servers were picked 20 times ({tot})")
    check(d("ringlb_server_connections_total", backend="be0", server="s0") == 10,
          "roundrobin: s0 got 10 of them")
    check(metric(m1, "ringlb_server_bytes_out_total", backend="be0", server="s0") >= 20,
          "bytes server->client counted for be0/s0 (10 x 'a\\n')")
    check(metric(m1, "ringlb_frontend_connections_active", frontend="fe0") == 0,
          "no connection of fe0 is active any more")
    fails = d("ringlb_server_connect_failures_total", backend="be1", server="s0")
    check(5 <= fails <= 10, f"be1/s0 (refused) failed some of the 10 connects ({fails})")
    check(d("ringlb_backend_retries_total", backend="be1") == fails,
          "be1 retried each failed connect")
    check(d("ringlb_frontend_connections_rejected_total", frontend="fe1") == 0,
          "fe1 rejected nobody (retries saved them)")
    check(d("ringlb_frontend_connections_rejected_total", frontend="fe2") == 3,
          "fe2 rejected its 3 clients")
    loops = sum(v for k, v in m1.items() if k[0] == "ringlb_worker_loop_iterations_total")
    acc = sum(v for k, v in m1.items() if k[0] == "ringlb_worker_connections_accepted_total")
    check(loops > 0 and acc >= 33, f"per-worker counters move (loops {loops}, accepted {acc})")

    # A live connection shows as active on its frontend and server.
    e = t.backend("echo", name="e")
    s = lbtest.connect(fe0)
    s.recv(16)  # name servers answer, then wait for our FIN
    m2 = lbtest.admin_metrics(adm)
    act = sum(metric(m2, "ringlb_server_connections_active", backend="be0", server=x)
              for x in ("s0", "s1"))
    check(metric(m2, "ringlb_frontend_connections_active", frontend="fe0") == 1 and act == 1,
          "an open connection is active on fe0 and on one be0 server")
    s.close()
    e.stop()

    j = lbtest.admin_json(adm)
    be0 = [x for x in j["backends"] if x["name"] == "be0"][0]
    check([x["name"] for x in be0["servers"]] == ["s0", "s1"], "JSON lists be0's servers")
    check(sum(x["connections_total"] for x in be0["servers"]) >= 20, "JSON counts the connections")
    check(j["frontends"][2]["rejected_total"] ==
          metric(m1, "ringlb_frontend_connections_rejected_total", frontend="fe2"),
          "JSON and /metrics agree on fe2's rejections")
    check_counter_names(j, lbtest.admin_metrics(adm))

    check_process_metrics(t0, lb.proc.pid, adm)

    log = lb.log_text()
    ok = re.findall(r"conn: client=127\.0\.0\.1:\d+ frontend=fe0 backend=be0 server=s[01] "
                    r"in=\d+ out=2 duration_ms=\d+ end=closed", log)
    check(len(ok) >= 20, f"one connection log line per fe0 connection ({len(ok)})")
    bad = re.findall(r"conn: client=127\.0\.0\.1:\d+ frontend=fe2 backend=be2 server=- in=0 "
                     r"out=0 duration_ms=\d+ end=connect-failed\(Connection refused\)", log)
    check(len(bad) == 4, f"fe2's 3 rejected clients and the readiness probe are logged as "
                         f"connect-failed ({len(bad)})")


if __name__ == "__main__":
    lbtest.run(main)
