#!/usr/bin/env python3
"""TCP keepalive on both sides (issue #19, item 5).

A client that vanishes without a FIN or RST (its host powered off, a
firewall dropping its state) used to hold its connection and server
socket until idle_timeout, an hour by default. The client here lives in a
network namespace behind a veth pair whose host end is then taken down, so
nothing it sent can arrive and nothing comes back.

1. tcp_keepalive_idle = 1s, _interval = 1s, _count = 2: `ss -o` shows the
   keepalive timer on ringlb's client-side socket (inherited from the
   listener) and on its server-side socket; once the link is down, ringlb
   drops the connection (frontend active connections back to 0 in
   /metrics) within 20 s, far below idle_timeout (1h), and logs its end.
2. tcp_keepalive = off: neither socket has a keepalive timer.
3. a reload that turns it on keeps the running value (restart-only) and
   logs a warning.

Needs root and `ip netns` (skipped otherwise). The namespace and the veth
pair are removed whatever happens.
"""
import os
import re
import signal
import subprocess
import sys
import time

import lbtest
from lbtest import check

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"hello\n")
got = b""
while len(got) < 6:
    b = s.recv(6 - len(got))
    if not b:
        break
    got += b
print("connected" if got == b"hello\n" else f"bad echo {got!r}", flush=True)
sys.stdin.read()  # hold the connection until the test closes stdin
"""

KEEPALIVE = {"tcp_keepalive_idle": "1s", "tcp_keepalive_interval": "1s",
             "tcp_keepalive_count": "2", "log_connections": "yes"}


def ip(*args, ns=None, check_rc=True):
    argv = ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if check_rc and r.returncode != 0:
        raise lbtest.Fail(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


class Netns:
    """A namespace <ns> holding <peer_ip> on one end of a veth pair whose
    other end, <host_if>, holds <host_ip> here."""

    def __init__(self):
        pid = os.getpid()
        self.ns = f"rlbka{pid}"
        self.host_if, self.peer_if = f"rka{pid}h", f"rka{pid}n"
        net = f"10.{200 + pid % 50}.{(pid // 50) % 256}"
        self.host_ip, self.peer_ip = f"{net}.1", f"{net}.2"
        self.procs = []

    def __enter__(self):
        if os.geteuid() != 0:
            raise lbtest.Skip("needs root for ip netns")
        r = ip("netns", "add", self.ns, check_rc=False)
        if r.returncode != 0:
            raise lbtest.Skip(f"ip netns add: {r.stderr.strip()}")
        try:
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
            ip("link", "set", self.peer_if, "netns", self.ns)
            ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            ip("addr", "add", f"{self.peer_ip}/30", "dev", self.peer_if, ns=self.ns)
            ip("link", "set", self.peer_if, "up", ns=self.ns)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def client(self, addr):
        """Starts CLIENT in the namespace against <addr>; returns once it
        has had one echo back."""
        host, _, port = addr.rpartition(":")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", CLIENT,
                              host, port], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline().strip()
        if line != "connected":
            raise lbtest.Fail(f"client in {self.ns}: {line!r} {p.stderr.read() if p.poll() else ''}")
        return p

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        ip("netns", "del", self.ns, check_rc=False)
        # Gone with the namespace's end; removed here in case it was not.
        ip("link", "del", self.host_if, check_rc=False)


def timers(filt):
    """The `ss -o` timer fields of established TCP sockets matching <filt>."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", filt], capture_output=True,
                         text=True, timeout=10).stdout
    lines = [l for l in out.splitlines() if l.strip()]
    return lines, [m.group(1) for l in lines for m in [re.search(r"timer:\((\w+)", l)] if m]


def sockets_show(port, echo_port, want_keepalive):
    """Checks ringlb's sockets of the one connection: accepted (local port
    <port>) and to the backend (remote port <echo_port>)."""
    for side, filt in (("client-side", f"( sport = :{port} )"),
                       ("server-side", f"( dport = :{echo_port} )")):
        lines, ts = timers(filt)
        check(len(lines) == 1, f"one {side} socket of ringlb ({lines})")
        if want_keepalive:
            check(ts == ["keepalive"], f"{side} socket has a keepalive timer: {lines[0].split()[-1]}")
        else:
            check(ts == [], f"{side} socket has no keepalive timer: {lines[0].split()[-1]}")


def active(adm):
    """ringlb_frontend_connections_active of fe0 (polled: parsed here
    without admin_metrics()'s log line per call)."""
    st, _, body = lbtest.admin_request(adm, "GET", "/metrics")
    m = re.search(rb'^ringlb_frontend_connections_active\{frontend="fe0"\} (\S+)$', body, re.M)
    if st != 200 or not m:
        raise lbtest.Fail(f"/metrics: {st}, no active connections of fe0")
    return float(m.group(1))


def main(t):
    t.require_mode()
    echo = t.backend("echo")
    echo_port = echo.addr.rpartition(":")[2]
    with Netns() as n:
        # 1. on, small values
        bind = f"{n.host_ip}:{lbtest.free_port(n.host_ip)}"
        lb, adm = lbtest.admin_ringlb(t, servers=[echo], global_opts=KEEPALIVE,
                                      frontends=[([bind], [echo], None)])
        n.client(bind)
        check(active(adm) == 1, "the client in the namespace is connected")
        sockets_show(bind.rpartition(":")[2], echo_port, True)
        ip("link", "set", n.host_if, "down")
        t0 = time.monotonic()
        lbtest.wait_until(lambda: active(adm) == 0, "the vanished client's connection closed",
                          20, interval=0.05)
        check(True, f"the vanished client is dropped {time.monotonic() - t0:.1f}s after its "
                    "link went down (idle_timeout 1h)")
        _, line = lbtest.wait_log(lb, rf"conn: client={re.escape(n.peer_ip)}:", 5)
        check("in=6 out=6" in line, f"its log line: {line.split(' ', 2)[-1]}")
        lb.signal(signal.SIGTERM)
        check(lb.wait_exit(10) == 0, "ringlb exits 0")

        # 2. off
        ip("link", "set", n.host_if, "up")
        bind = f"{n.host_ip}:{lbtest.free_port(n.host_ip)}"
        lb, adm = lbtest.admin_ringlb(t, servers=[echo],
                                      global_opts=dict(KEEPALIVE, tcp_keepalive="off"),
                                      frontends=[([bind], [echo], None)])
        n.client(bind)
        check(active(adm) == 1, "tcp_keepalive = off: the client is connected")
        sockets_show(bind.rpartition(":")[2], echo_port, False)

        # 3. restart-only: a reload keeps the running value, saying so
        with open(lb.cfgpath) as f:
            text = f.read()
        with open(lb.cfgpath, "w") as f:
            f.write(text.replace("tcp_keepalive = off", "tcp_keepalive = on"))
        lb.signal(signal.SIGHUP)
        _, line = lbtest.wait_log(lb, r"tcp_keepalive changed; it takes effect only after a "
                                      r"restart", 10)
        check(True, f"a reload that turns keepalive on warns: {line.split(' ', 2)[-1]}")
        lbtest.wait_log(lb, r"reload: .* is in use", 10)
        check(active(adm) == 1, "the connection is still there after the reload")


if __name__ == "__main__":
    lbtest.run(main)
