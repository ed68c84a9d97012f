#!/usr/bin/env python3
"""Admin API hardening (issue #19): what an adversarial trial found.

- CSRF and DNS rebinding: a request whose Host is not the admin server's
  own address gets 421 (reads too), a foreign Origin 403, and a write
  without Content-Type: application/json 415; none of them changes a server.
- Framing: two Content-Lengths, or one with Transfer-Encoding, get 400.
- 200 idle connections do not keep GET /metrics out (the oldest idle one
  makes room).
- (A non-loopback `admin =` needs a token: test_admin_token.py.)
- Out of file descriptors (EMFILE), the admin thread backs off instead of
  spinning on its level-triggered listener: its CPU stays low, the log
  holds a few accept warnings rather than millions, and once descriptors
  are free again /metrics answers.
"""
import socket
import time

import lbtest
from lbtest import check


def raw(adm, method, path, headers=(), body=b"", host=None):
    """<method> <path> with Host <host> (default: <adm>) and <headers> on a
    fresh connection; returns (status or None, raw answer)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {adm if host is None else host}"]
    lines += list(headers)
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    st, out, _ = lbtest.admin_raw(adm, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return st, out


JSON = "Content-Type: application/json"


def state(adm, name="s0"):
    for s in lbtest.admin_json(adm)["backends"][0]["servers"]:
        if s["name"] == name:
            return s["state"], s["weight"]
    raise lbtest.Fail(f"no server {name}")


def csrf_and_rebinding(adm):
    port = adm.rpartition(":")[2]
    drain = "/api/backends/be0/servers/s0/drain"
    # The request of the trial: a page on evil.example posting as text/plain.
    st, out = raw(adm, "POST", drain, ["Origin: http://evil.example", "Content-Type: text/plain"],
                  host="evil.example")
    check(st == 421, f"cross-site POST with Host evil.example is 421 ({out[:40]!r})")
    # The same page after rebinding evil.example to 127.0.0.1: Host is its name.
    st, _ = raw(adm, "POST", drain, ["Origin: http://evil.example:" + port, JSON],
                host="evil.example:" + port)
    check(st == 421, "a rebound POST (Host evil.example:PORT) is 421")
    st, out = raw(adm, "GET", "/api/backends", host="evil.example:" + port)
    check(st == 421 and b'"s0"' not in out, "a rebound GET /api/backends is 421 and shows nothing")
    st, _ = raw(adm, "GET", "/metrics", host="evil.example:" + port)
    check(st == 421, "a rebound GET /metrics is 421")
    st, _ = raw(adm, "POST", drain, ["Origin: http://evil.example", JSON])
    check(st == 403, "a POST with our Host but a foreign Origin is 403")
    st, _ = raw(adm, "POST", drain, ["Origin: null", JSON])
    check(st == 403, "a POST with Origin: null is 403")
    st, _ = raw(adm, "POST", drain, ["Content-Type: text/plain"])
    check(st == 415, "a POST as text/plain is 415")
    st, _ = raw(adm, "POST", drain, ["Content-Type: application/x-www-form-urlencoded"], b"a=b")
    check(st == 415, "a POST as a form is 415")
    st, _ = raw(adm, "POST", drain)
    check(st == 415, "a POST without Content-Type is 415")
    st, _ = raw(adm, "GET", "/metrics", host="")
    check(st == 421, "an empty Host is 421")
    st, _, _ = lbtest.admin_raw(adm, b"GET /metrics HTTP/1.1\r\n\r\n")
    check(st == 400, "HTTP/1.1 without Host is 400")
    check(state(adm) == ("up", 1), "no refused request changed s0")

    # What an operator's tools send still works.
    st, _ = raw(adm, "GET", "/metrics", host=f"localhost:{port}")
    check(st == 200, "GET with Host localhost:PORT is 200 on a loopback admin")
    st, _, _ = lbtest.admin_raw(adm, b"GET /metrics HTTP/1.0\r\n\r\n")
    check(st == 200, "HTTP/1.0 without Host is 200")
    st, _ = raw(adm, "POST", drain, [JSON, f"Origin: http://{adm}"])
    check(st == 200 and state(adm)[0] == "drain", "a POST as JSON with our own Origin drains s0")
    st, _ = raw(adm, "POST", "/api/backends/be0/servers/s0/enable",
                ["Content-Type: application/json; charset=utf-8"], b"{}")
    check(st == 200 and state(adm)[0] == "up", "a POST as JSON with a body enables s0")


def framing(adm):
    drain = "/api/backends/be0/servers/s0/drain"
    head = f"POST {drain} HTTP/1.1\r\nHost: {adm}\r\n{JSON}\r\n".encode()
    for extra, what in [
        (b"Content-Length: 5\r\nContent-Length: 0\r\n\r\nhello", "two Content-Lengths (5, 0)"),
        (b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n", "two equal Content-Lengths"),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "Content-Length and Transfer-Encoding"),
        (b"Content-Length: 1, 1\r\n\r\nx", "a Content-Length list"),
        (b"Content-Length: +1\r\n\r\nx", "a signed Content-Length"),
    ]:
        st, out, _ = lbtest.admin_raw(adm, head + extra)
        check(st == 400, f"{what}: 400 (got {st}, {out[:30]!r})")
    check(state(adm) == ("up", 1), "no badly framed request changed s0")


def idle_flood(adm):
    idle = [lbtest.connect(adm) for _ in range(200)]
    try:
        for i in range(3):
            st, _, _ = lbtest.admin_request(adm, "GET", "/metrics", timeout=20)
            check(st == 200, f"GET /metrics answers 200 with 200 idle connections open ({i + 1})")
    finally:
        for s in idle:
            s.close()


def wait_metrics(adm, timeout):
    """GET /metrics until it answers 200 or <timeout> seconds passed;
    returns the last status (None: no answer)."""
    deadline = time.monotonic() + timeout
    st = None
    while True:
        try:
            st, _, _ = lbtest.admin_request(adm, "GET", "/metrics", timeout=5)
        except OSError:
            st = None
        if st == 200 or time.monotonic() > deadline:
            return st
        time.sleep(0.05)





def emfile(t):
    be = t.inproc_backend(lbtest.named_handler("a"))
    port = lbtest.free_port()
    adm = f"127.0.0.1:{port}"
    nofile = 64
    lb = t.ringlb(servers=[be], global_opts={"admin": adm}, nofile=nofile)
    pid = lb.proc.pid
    lbtest.wait_log(lb, r"admin: listening", 5)
    # Every descriptor ringlb may open, taken by connections through it
    # (two each: client and server); the last one is closed, or waits in
    # the backlog once a worker's accept failed (which it logs).
    held = []
    for _ in range(nofile):
        s = lbtest.connect(lb.addr, timeout=2)
        s.settimeout(0.05)

        def outcome():
            try:
                return "served" if s.recv(2) == b"a\n" else "closed"
            except socket.timeout:
                pass
            except OSError:
                return "closed"
            return lbtest.log_events(lb, r"worker \d+: accept on .*: Too many open files") and \
                "waiting"
        if lbtest.wait_until(outcome, "the client served, closed or left waiting", 10) != "served":
            s.close()
            break
        held.append(s)
    check(len(held) < nofile, f"{len(held)} connections through ringlb use up its descriptors")
    # Clients of the admin server now wait in its backlog; accept fails.
    waiting = [lbtest.connect(adm) for _ in range(4)]
    lbtest.wait_log(lb, r"admin: accept: ", 10)
    c0, t0 = lbtest.thread_cpu(pid, "ringlb-admin"), time.monotonic()
    deadline = t0 + 2.0
    while time.monotonic() < deadline:
        time.sleep(deadline - time.monotonic())
    cpu = (lbtest.thread_cpu(pid, "ringlb-admin") - c0) / (time.monotonic() - t0)
    check(cpu < 0.2, f"the admin thread does not spin on EMFILE ({cpu:.0%} of a core over 2 s)")
    n = len(lbtest.log_events(lb, r"admin: accept: "))
    check(n <= 5, f"a handful of accept warnings, not one per try ({n})")
    for s in held + waiting:
        s.close()
    st = wait_metrics(adm, 15)
    check(st == 200, "GET /metrics answers 200 once descriptors are free again")
    check(lbtest.log_events(lb, r"admin: accepting again"),
          "the admin server logs that it accepts again")

def main(t):
    be = t.backend("name", name="a")
    lb, adm = lbtest.admin_ringlb(t, servers=[be])
    check(not lbtest.log_events(lb, r"not a loopback"), "admin on 127.0.0.1 is not warned about")
    csrf_and_rebinding(adm)
    framing(adm)
    idle_flood(adm)
    check(lbtest.connect(lb.addr).recv(8) == b"a\n", "the data path still works")
    emfile(t)


if __name__ == "__main__":
    lbtest.run(main)
