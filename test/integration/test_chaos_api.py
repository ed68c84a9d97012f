#!/usr/bin/env python3
"""Chaos (issue #13): the fault API, and the faults that act on connects.

 - chaos off (the default): /api/faults answers 403 to every method;
 - every bad body answers 400 with a one-line reason and changes nothing
   (the list stays as it was); a duplicate name answers 409, a scope the
   config does not have 400, an unknown fault 404 on DELETE;
 - GET /api/faults lists a fault with its time left and the connections it
   affected; /metrics has ringlb_faults_active and
   ringlb_fault_connections_affected_total; /stats shows the banner;
 - toxicity 0.5 over 400 connections (reset_peer at once, seed 7) resets
   140..260 of them, and the affected counter is the number the clients saw;
 - ttl: a fault with ttl 300ms is gone by itself (and logged as expired);
 - connect_delay 3 s on s0 with connect_timeout 300 ms: every client is
   served (its connect to s0 times out and is retried on s1), and the
   retries are counted;
 - refuse on s0 with probes: the checker marks s0 down with the fault named
   as the reason, and no client fails while s1 is up; DELETE brings s0 back;
 - a reload keeps the faults whose scope is still there and drops the
   one whose server left the config.
"""
import json
import re
import signal
import socket

import lbtest
from lbtest import check

HC = {"health": "tcp", "health_interval": "100ms", "health_timeout": "500ms", "rise": "1",
      "fall": "2", "retries": "2", "connect_timeout": "300ms"}


def faults(adm):
    st, _, body = lbtest.admin_request(adm, "GET", "/api/faults")
    check(st == 200, f"GET /api/faults ({st})")
    return json.loads(body)["faults"]


def post(adm, body):
    st, _, out = lbtest.admin_request(adm, "POST", "/api/faults",
                                      body=body if isinstance(body, str) else json.dumps(body))
    return st, out.decode(errors="replace")


def server(adm, name):
    return [s for s in lbtest.admin_json(adm)["backends"][0]["servers"] if s["name"] == name][0]


def served(addr):
    """Whether one fresh client gets its echo back."""
    try:
        with lbtest.connect(addr, timeout=5.0) as s:
            s.sendall(b"ping\n")
            return s.recv(100) == b"ping\n"
    except OSError:
        return False


def chaos_off(t):
    be = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[be])
    for method in ("GET", "POST", "DELETE"):
        st, _, body = lbtest.admin_request(adm, method, "/api/faults", body="{}")
        check(st == 403 and b"chaos = on" in body, f"chaos off: {method} /api/faults is 403 ({st})")
    st, _, _ = lbtest.admin_request(adm, "DELETE", "/api/faults/x")
    check(st == 403, f"chaos off: DELETE /api/faults/x is 403 ({st})")


def bad_bodies(adm):
    check(post(adm, {"name": "keep", "type": "latency", "attributes": {"latency": 1},
                     "frontend": "fe0"})[0] == 201, "a first fault is added")
    before = faults(adm)
    bad = [
        ("not json", 400), ("{}", 400), ('{"name":"x","type":"latnecy","frontend":"fe0"}', 400),
        ('{"name":"x","type":"latency","frontend":"fe0"}', 400),
        ('{"name":"x","type":"latency","attributes":{"latency":-5},"frontend":"fe0"}', 400),
        ('{"name":"x","type":"bandwidth","attributes":{"rate":0},"frontend":"fe0"}', 400),
        ('{"name":"x","type":"refuse","toxicity":2,"frontend":"fe0"}', 400),
        ('{"name":"x","type":"refuse","frontend":"nosuch"}', 400),
        ('{"name":"x","type":"refuse","server":"be0/nosuch"}', 400),
        ('{"name":"x","type":"refuse","server":"nosuch/s0"}', 400),
        ('{"name":"x","type":"refuse","frontend":"fe0","ttl":"forever"}', 400),
        ('{"name":"x","type":"refuse","frontend":"fe0","extra":1}', 400),
        ('{"name":"keep","type":"refuse","frontend":"fe0"}', 409),
        ('{"name":"x\\ny","type":"refuse","frontend":"fe0"}', 400),
    ]
    for body, want in bad:
        st, out = post(adm, body)
        check(st == want and out.count("\n") == 1, f"{body[:60]!r} -> {st} {out.strip()!r}")
    after = faults(adm)
    for f in before + after:
        f.pop("ttl_left_ms")
    check(after == before, "bad bodies changed nothing")
    st, _, _ = lbtest.admin_request(adm, "DELETE", "/api/faults/nosuch")
    check(st == 404, f"DELETE of an unknown fault is 404 ({st})")
    st, _, _ = lbtest.admin_request(adm, "PUT", "/api/faults")
    check(st == 405, f"PUT /api/faults is 405 ({st})")
    st, _, body = lbtest.admin_request(adm, "DELETE", "/api/faults")
    check(st == 200 and json.loads(body)["removed"] == 1, f"DELETE /api/faults removes all ({body!r})")


def toxicity(adm, fe):
    check(post(adm, {"name": "half", "type": "reset_peer", "toxicity": 0.5, "seed": 7,
                     "attributes": {"timeout": 0}, "frontend": "fe0"})[0] == 201, "toxicity 0.5 fault")
    f = faults(adm)[0]
    check(f["name"] == "half" and 0 < f["ttl_left_ms"] <= 600000, f"listed with its ttl: {f}")
    reset = sum(not served(fe) for _ in range(400))
    f = faults(adm)[0]
    check(140 <= reset <= 260, f"toxicity 0.5: {reset} of 400 connections reset")
    check(f["connections_affected_total"] == reset and f["connections_drawn_total"] == 400,
          f"counted: {f['connections_affected_total']} affected of {f['connections_drawn_total']}")
    m = lbtest.admin_metrics(adm)
    check(lbtest.metric(m, "ringlb_faults_active") == 1, "ringlb_faults_active 1")
    check(lbtest.metric(m, "ringlb_fault_connections_affected_total", fault="half",
                        type="reset_peer") == reset,
          "ringlb_fault_connections_affected_total{fault=half}")
    st, _, page = lbtest.admin_request(adm, "GET", "/stats")
    check(b"Chaos: 1 fault active" in page and b"half: reset_peer" in page, "/stats banner")
    lbtest.admin_request(adm, "DELETE", "/api/faults/half")
    st, _, page = lbtest.admin_request(adm, "GET", "/stats")
    check(b"Chaos:" not in page, "no banner without faults")


def ttl(lb, adm):
    check(post(adm, {"name": "brief", "type": "latency", "attributes": {"latency": 5},
                     "frontend": "fe0", "ttl": "300ms"})[0] == 201, "ttl 300ms fault")
    lbtest.wait_until(lambda: faults(adm) == [], "the fault expires by itself", timeout=10)
    lbtest.wait_log(lb, r"chaos: fault brief expired", 5)


def connect_delay(adm, fe):
    r0 = lbtest.metric_sum(adm, "ringlb_backend_retries_total")
    check(post(adm, {"name": "slow-syn", "type": "connect_delay", "attributes": {"delay": 3000},
                     "server": "be0/s0"})[0] == 201, "connect_delay on s0")
    ok = sum(served(fe) for _ in range(10))
    check(ok == 10, f"connect_delay past connect_timeout: {ok} of 10 clients served")
    retries = lbtest.metric_sum(adm, "ringlb_backend_retries_total") - r0
    check(retries >= 1, f"connects delayed past connect_timeout were retried ({retries})")
    lbtest.admin_request(adm, "DELETE", "/api/faults/slow-syn")


def refuse_with_probes(lb, adm, fe):
    check(post(adm, {"name": "dead", "type": "refuse", "server": "be0/s0"})[0] == 201,
          "refuse on s0 (probes on by default)")
    # No client yet: only the probes can see the fault.
    lbtest.wait_log(lb, r"server be0/s0 is DOWN: .*injected by fault dead", 10)
    check(server(adm, "s0")["state"] == "down", "s0 is down in /api/backends")
    ok = sum(served(fe) for _ in range(20))
    check(ok == 20, f"no client failed while s1 was up ({ok} of 20 served)")
    lbtest.admin_request(adm, "DELETE", "/api/faults/dead")
    lbtest.wait_until(lambda: server(adm, "s0")["state"] == "up", "s0 up again after DELETE")
    # Without probes, only clients see it: passive health takes s0 down
    # (fall = 2 failed connects), and retries still serve every client.
    check(post(adm, {"name": "quiet", "type": "refuse", "server": "be0/s0",
                     "attributes": {"probes": False}})[0] == 201, "refuse on s0, probes off")
    ok = sum(served(fe) for _ in range(20))
    check(ok == 20, f"refuse without probes: retries served {ok} of 20 clients")
    lbtest.wait_log(lb, r"server be0/s0 is DOWN: connects from clients failed", 10)
    lbtest.admin_request(adm, "DELETE", "/api/faults/quiet")
    lbtest.wait_until(lambda: server(adm, "s0")["state"] == "up", "s0 up again")


def reload_keeps(t, lb, adm, bes):
    for f in ({"name": "on-fe", "type": "latency", "attributes": {"latency": 1}, "frontend": "fe0"},
              {"name": "on-s1", "type": "latency", "attributes": {"latency": 1},
               "server": "be0/s1"}):
        check(post(adm, f)[0] == 201, f"fault {f['name']}")
    text = open(lb.cfgpath).read()
    text = re.sub(r"^server = s1 .*\n", "", text, flags=re.M)
    with open(lb.cfgpath, "w") as f:
        f.write(text)
    lb.signal(signal.SIGHUP)
    lbtest.wait_log(lb, r"reload: .* is in use \(generation 2\)", 10)
    names = [f["name"] for f in faults(adm)]
    check(names == ["on-fe"], f"the reload kept on-fe and dropped on-s1: {names}")
    lbtest.wait_log(lb, r"fault on-s1 removed: its scope left the config", 5)


def main(t):
    chaos_off(t)
    bes = [t.backend("echo"), t.backend("echo")]
    lb, adm = lbtest.admin_ringlb(t, servers=bes, backend_opts=HC, global_opts={"chaos": "on"})
    fe = lb.addr
    bad_bodies(adm)
    toxicity(adm, fe)
    ttl(lb, adm)
    connect_delay(adm, fe)
    refuse_with_probes(lb, adm, fe)
    reload_keeps(t, lb, adm, bes)


if __name__ == "__main__":
    lbtest.run(main)
