#!/usr/bin/env python3
"""SIGHUP reload (issue #6): lb.ini changes in place, under load, without
dropping a live connection or failing a new one.

Servers say their name, then echo until the client closes, so a connection
tells who answered and stays open as long as the test wants. A load thread
opens a new connection every few milliseconds for the whole test and counts
every one that fails. The reloads:

 1. server b removed, c added, a second frontend with a new bind: the live
    connection to b keeps flowing, c takes nothing until health checks pass
    ("checking"), then a and c share new connections; a's counters carry on.
 2. an invalid lb.ini: rejected, logged, the running config serves on.
 3. a new bind whose port is taken: rejected, nothing changed.
 4. the second frontend removed: its port refuses new clients, the client
    accepted there earlier keeps flowing.
"""
import signal
import socket
import threading
import time

import lbtest
from lbtest import check


def echoes(s, what):
    msg = f"{what} still there?\n".encode()
    s.sendall(msg)
    check(lbtest.recv_exact(s, len(msg)) == msg, f"the live connection {what} still flows")


class Load:
    """New connections to <addr> back to back (bounded in count and time),
    each checked: name from <names>, then one echo."""

    def __init__(self, addr, names):
        self.addr, self.names = addr, names
        self.ok, self.failed = 0, []
        self.by = {}  # connections served, by server name
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline and self.ok < 20000:
            try:
                s, name = lbtest.who(self.addr)
                with s:
                    s.sendall(b"ping\n")
                    got = lbtest.recv_exact(s, 5)
                if name not in self.names() or got != b"ping\n":
                    self.failed.append(f"{name!r} answered {got!r}")
                else:
                    self.ok += 1
                    self.by[name] = self.by.get(name, 0) + 1
            except (OSError, lbtest.Fail) as e:
                self.failed.append(repr(e))
            time.sleep(0.003)

    def finish(self):
        self.stop.set()
        self.th.join(10)
        return self.ok, self.failed


def ini(adm, frontends, servers, extra_global=""):
    """lb.ini text: <frontends> is [(name, [binds])], all to backend app;
    <servers> is [(name, addr)]."""
    io, fwd = lbtest.MODES[T.mode]
    out = ["[global]", "workers = 2", f"io = {io}", f"forward = {fwd}", "max_conns = 10000",
           "log_level = info", f"admin = {adm}", "shutdown_grace = 30s", extra_global]
    for name, binds in frontends:
        out += ["", f"[frontend {name}]"] + [f"bind = {b}" for b in binds] + ["backend = app"]
    out += ["", "[backend app]", "balance = roundrobin", "health = tcp",
            "health_interval = 200ms", "health_timeout = 500ms", "rise = 2", "fall = 2"]
    out += [f"server = {n} {a}" for n, a in servers]
    return "\n".join(out) + "\n"


def reload(lb, text, expect_ok=True):
    pattern = r"reload: .* is in use|reload rejected"
    before = len(lbtest.log_events(lb, pattern))
    with open(lb.cfgpath, "w") as f:
        f.write(text)
    lb.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while len(lbtest.log_events(lb, pattern)) == before:
        check(time.monotonic() < deadline, "ringlb logged the reload's outcome within 10 s")
        time.sleep(0.02)
    line = lbtest.log_events(lb, pattern)[before][1]
    if expect_ok:
        check("is in use" in line, f"reload accepted: {line.strip()}")
    else:
        check("rejected" in line, f"reload rejected: {line.strip()}")
    check(lb.alive(), "ringlb still runs after the reload")
    return line


def servers_of(adm):
    return {s["name"]: s for s in lbtest.admin_json(adm)["backends"][0]["servers"]}


def wait_state(adm, name, state, timeout=10):
    import json
    deadline = time.monotonic() + timeout
    while True:
        body = lbtest.admin_request(adm, "GET", "/api/backends")[2]
        st = {s["name"]: s["state"] for s in json.loads(body)["backends"][0]["servers"]}.get(name)
        if st == state:
            return
        if time.monotonic() > deadline:
            raise lbtest.Fail(f"server {name} is {st!r}, not {state!r}, after {timeout}s")
        time.sleep(0.02)


def metric(adm, name):
    return lbtest.admin_metrics(adm)[(name, frozenset())]


def main(t):
    global T
    T = t
    t.require_mode()
    a, b, c = (t.inproc_backend(lbtest.named_handler(n)) for n in "abc")
    adm = f"127.0.0.1:{lbtest.free_port()}"
    fe_a = f"127.0.0.1:{lbtest.free_port()}"
    fe_b = f"127.0.0.1:{lbtest.free_port()}"
    path, _ = t.config(text=ini(adm, [("main", [fe_a])], [("a", a.addr), ("b", b.addr)]))
    lb = lbtest.Ringlb(t, path, [[fe_a]], "ringlb0")
    t.lbs.append(lb)
    lb.wait_ready()
    lbtest.wait_log(lb, r"admin: listening", 5)

    check(lbtest.spread(fe_a, 10) == {"a": 5, "b": 5}, "a and b share new connections at first")
    live = {}
    while len(live) < 2:
        s, name = lbtest.who(fe_a)
        if name in live:
            s.close()
        else:
            live[name] = s
    total_a = servers_of(adm)["a"]["connections_total"]

    allowed = {"a", "b"}
    load = Load(fe_a, lambda: allowed)
    lbtest.wait_until(lambda: load.ok >= 20, "the load runs before the reload")

    # 1. b out, c in, a new frontend. c may answer only once it is up.
    allowed = {"a", "b", "c"}
    reload(lb, ini(adm, [("main", [fe_a]), ("extra", [fe_b])], [("a", a.addr), ("c", c.addr)],
                   "log_connections = yes"))
    srv = servers_of(adm)
    check(set(srv) == {"a", "c"}, f"the API lists a and c after the reload: {sorted(srv)}")
    check(srv["c"]["state"] in ("checking", "up"), f"c starts checking: {srv['c']['state']}")
    check(srv["a"]["state"] == "up" and srv["a"]["connections_total"] >= total_a,
          f"a kept its state and counters ({srv['a']['connections_total']} >= {total_a})")
    wait_state(adm, "c", "up", timeout=5)
    lbtest.wait_until(lambda: load.by.get("c", 0) >= 10, "the load reaches c once it is up")
    ok, failed = load.finish()
    check(not failed, f"no new connection failed across the reload ({len(failed)} of "
          f"{ok + len(failed)}: {failed[:3]})")
    check(ok >= 20, f"the load kept running through the reload ({ok} connections)")
    lbtest.log(f"  ok: {ok} new connections across the reload, none failed")
    echoes(live["b"], "to removed server b")
    echoes(live["a"], "to kept server a")
    check(lbtest.spread(fe_a, 10) == {"a": 5, "c": 5}, "a and c share new connections")
    s, name = lbtest.who(fe_b)
    check(name in ("a", "c"), f"the new bind {fe_b} serves ({name})")
    live["fe_b"] = s
    m = lbtest.admin_metrics(adm)
    check(m[("ringlb_config_generation", frozenset())] == 2, "generation 2 after one reload")
    check(m[("ringlb_config_last_reload_successful", frozenset())] == 1, "last reload successful")
    check(("ringlb_frontend_connections_accepted_total", frozenset({("frontend", "extra")})) in m,
          "the new frontend has metrics")
    lab = frozenset({("backend", "app"), ("server", "c")})
    checks = m[("ringlb_server_checks_total", lab)]
    dur = m[("ringlb_server_check_duration_seconds", lab)]
    check(checks >= 2 and m[("ringlb_server_check_failures_total", lab)] == 0,
          f"c's health checks are counted ({checks:.0f}, none failed)")
    check(0 < dur < 0.5, f"c's last check took {dur * 1e3:.2f} ms (exported, within the timeout)")
    # log_connections = yes took effect: one short connection on the new
    # frontend leaves its line.
    lbtest.who(fe_b)[0].close()
    lbtest.wait_log(lb, r"conn: .*frontend=extra", 5)

    # 2. An invalid lb.ini is rejected, the running config serves on.
    good = ini(adm, [("main", [fe_a]), ("extra", [fe_b])], [("a", a.addr), ("c", c.addr)])
    reload(lb, good.replace("balance = roundrobin", "balance = nonsense"), expect_ok=False)
    check(lbtest.wait_log(lb, r"balance", 1)[1], "the error names the bad key")
    check(metric(adm, "ringlb_config_last_reload_successful") == 0, "metrics show the failure")
    check(metric(adm, "ringlb_config_reload_failures_total") == 1, "one failed reload counted")
    check(lbtest.spread(fe_a, 4) == {"a": 2, "c": 2}, "the old config still serves")

    # 3. A new bind that cannot be opened rejects the whole reload.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = f"127.0.0.1:{taken.getsockname()[1]}"
    reload(lb, ini(adm, [("main", [fe_a]), ("extra", [fe_b]), ("more", [busy])],
                   [("a", a.addr)]), expect_ok=False)
    taken.close()
    check(set(servers_of(adm)) == {"a", "c"}, "a rejected reload changed no server")
    check(metric(adm, "ringlb_config_generation") == 2, "still generation 2")

    # 4. The extra frontend goes: its port refuses, its live client flows.
    reload(lb, ini(adm, [("main", [fe_a])], [("a", a.addr), ("c", c.addr)]))
    deadline = time.monotonic() + 5
    while True:
        try:
            lbtest.connect(fe_b, timeout=1).close()
        except ConnectionRefusedError:
            break
        check(time.monotonic() < deadline, f"{fe_b} still accepts 5 s after its removal")
        time.sleep(0.05)
    echoes(live["fe_b"], "accepted by the removed frontend")
    echoes(live["b"], "to removed server b, after two more reloads")
    check(lbtest.spread(fe_a, 4) == {"a": 2, "c": 2}, "the main frontend serves on")
    check(metric(adm, "ringlb_config_generation") == 3, "generation 3")

    # 5. Keys only a restart changes are named in a warning and keep their
    # running values; the rest of the reload happens.
    t0 = time.time()
    reload(lb, ini(adm, [("main", [fe_a])], [("a", a.addr), ("c", c.addr)], "pin_workers = no")
           .replace("workers = 2", "workers = 3"))
    for key in ("workers", "pin_workers"):
        check(lbtest.wait_log(lb, rf"reload: {key} changed; .*keeping the running value", 2,
                              after=t0)[1], f"the reload warns that {key} needs a restart")
    ws = lbtest.worker_threads(lb.proc.pid)
    check(len(ws) == 2 and all(len(c) == 1 for c in ws.values()),
          f"still 2 workers, each pinned: {ws}")
    check(metric(adm, "ringlb_config_generation") == 4, "generation 4")
    check(lbtest.spread(fe_a, 4) == {"a": 2, "c": 2}, "it serves on")
    for s in live.values():
        s.close()


T = None
lbtest.run(main)
