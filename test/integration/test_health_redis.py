#!/usr/bin/env python3
"""health = redis: role-aware checks against real redis-server processes.

The test starts its own Redis servers on free loopback ports: A (primary),
B (replica of A) and C (standalone, --requirepass, plus an ACL user that may
only PING and ROLE). ringlb runs with five frontend/backend pairs:

  be0  role = primary  servers A, B     -> clients reach A only
  be1  role = replica  servers A, B     -> clients reach B only
  be2  wrong health_password, server C  -> down, the -WRONGPASS reason logged
  be3  role = replica, server A with health_port = B's port: the probe asks
       B (a replica) while traffic goes to A; were health_port ignored, A's
       "role master, want replica" would take it down
  be4  role = primary, health_user + health_password (ACL user), server C

Then a failover: REPLICAOF NO ONE on B, REPLICAOF B on A; be0 must come to
send clients to B only and be1 to A only (waited on /api/backends states).
Last, B stops: A, a replica whose link to its master is down, must leave be1.
Which server a client reached is what INFO server says its tcp_port is,
asked through ringlb; redis-cli asks INFO replication through ringlb too.

Skips (exit 77) when redis-server or redis-cli is missing on a developer's
machine; .ci/deps test installs redis-server and redis-tools, and with CI
set in the environment a missing one fails the test instead.
"""
import os
import shutil
import socket
import subprocess
import time

import lbtest
from lbtest import check

CHECK = {"health": "redis", "health_interval": "100ms", "health_timeout": "500ms",
         "rise": "2", "fall": "2"}


def resp_cmd(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Reader:
    """A minimal RESP2 reader over a socket, for the test's own checks."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise lbtest.Fail("connection closed in a RESP reply")
            self.buf += b
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            b = self.sock.recv(65536)
            if not b:
                raise lbtest.Fail("connection closed in a RESP bulk string")
            self.buf += b
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise lbtest.Fail(f"not RESP: {line!r}")


def command(addr, *args, timeout=5.0):
    """Sends one command to <addr> ("host:port") on a new connection."""
    with lbtest.connect(addr, timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(resp_cmd(*args))
        return Reader(s).reply()


def served_port(addr):
    """The tcp_port of the Redis server a new connection to <addr> reaches."""
    info = command(addr, "INFO", "server")
    if isinstance(info, Exception) or not isinstance(info, str):
        raise lbtest.Fail(f"INFO server through {addr}: {info!r}")
    for line in info.splitlines():
        if line.startswith("tcp_port:"):
            return int(line.split(":", 1)[1])
    raise lbtest.Fail(f"no tcp_port in INFO server through {addr}")


class Redis:
    """One redis-server on a free loopback port, stopped by t.cleanup()."""

    def __init__(self, t, name, *extra):
        self.name = name
        self.port = lbtest.free_port()
        self.addr = f"127.0.0.1:{self.port}"
        d = os.path.join(t.dir, name)
        os.makedirs(d, exist_ok=True)
        self.errpath = os.path.join(t.dir, f"{name}.log")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", d,
                # A replica's full sync starts at once, not after the
                # default 5 s wait for more replicas.
                "--repl-diskless-sync-delay", "0", *extra]
        with open(self.errpath, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        t.backends.append(self)
        lbtest.wait_until(self.listening, f"redis-server {name} listening on {self.addr}")

    def listening(self):
        if self.proc.poll() is not None:
            raise lbtest.Fail(f"redis-server {self.name} exited {self.proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def cmd(self, *args, password=None):
        with lbtest.connect(self.addr) as s:
            s.settimeout(5)
            r = Reader(s)
            if password:
                s.sendall(resp_cmd("AUTH", password))
                check(r.reply() == "OK", f"AUTH on {self.name}")
            s.sendall(resp_cmd(*args))
            return r.reply()

    def link_up(self):
        role = self.cmd("ROLE")
        return role[0] == "slave" and role[3] == "connected"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def states(adm):
    """{(backend, server): state} from /api/backends."""
    return {(b["name"], s["name"]): s["state"]
            for b in lbtest.admin_json(adm)["backends"] for s in b["servers"]}


def checks(adm, be, srv):
    for b in lbtest.admin_json(adm)["backends"]:
        for s in b["servers"]:
            if b["name"] == be and s["name"] == srv:
                return s["checks_total"], s["check_failures_total"]
    raise lbtest.Fail(f"no server {be}/{srv} in /api/backends")


def wait_states(adm, want, what, timeout=20):
    """Waits until every (backend, server) of <want> has its state."""
    last = {}

    def ok():
        last.update(states(adm))
        return all(last.get(k) == v for k, v in want.items())
    try:
        lbtest.wait_until(ok, what, timeout=timeout, interval=0.05)
    except lbtest.Fail:
        raise lbtest.Fail(f"{what}: states {last}, wanted {want}")


def only_reaches(addr, port, what, n=6):
    """<n> new connections through <addr> all reach the server on <port>."""
    got = [served_port(addr) for _ in range(n)]
    check(all(p == port for p in got), f"{what}: every client reaches port {port} (got {got})")


def main(t):
    missing = [p for p in ("redis-server", "redis-cli") if not shutil.which(p)]
    if missing:
        why = f"{' and '.join(missing)} not installed (apt-get install redis-server redis-tools)"
        if os.environ.get("CI"):
            raise lbtest.Fail(f"{why}; CI must install them (.ci/deps test)")
        raise lbtest.Skip(why)

    a = Redis(t, "A")
    b = Redis(t, "B", "--replicaof", "127.0.0.1", str(a.port))
    c = Redis(t, "C", "--requirepass", "sekret",
              "--user", "probe", "on", ">probepw", "+ping", "+role")
    lbtest.wait_until(b.link_up, "replica B connected to A", timeout=20)

    fe = [
        (None, [a, b], dict(CHECK, role="primary")),
        (None, [a, b], dict(CHECK, role="replica")),
        (None, [c], dict(CHECK, health_password="wrong")),
        (None, [a], dict(CHECK, role="replica", health_port=str(b.port))),
        (None, [c], dict(CHECK, role="primary", health_user="probe",
                         health_password="probepw")),
    ]
    lb, adm = lbtest.admin_ringlb(t, frontends=fe)
    rw, ro, hp = lb.fe[0][0], lb.fe[1][0], lb.fe[3][0]

    # Servers count as up until their first probes: wait for the verdicts.
    wait_states(adm, {("be0", "s0"): "up", ("be0", "s1"): "down",
                      ("be1", "s0"): "down", ("be1", "s1"): "up",
                      ("be2", "s0"): "down"}, "roles probed")
    # The state is published just before the line is logged.
    lbtest.wait_log(lb, r"server be0/s1 is DOWN: role slave, want primary", 5)
    lbtest.wait_log(lb, r"server be1/s0 is DOWN: role master, want replica", 5)
    lbtest.wait_log(lb, r"server be2/s0 is DOWN: AUTH replied -WRONGPASS", 5)

    only_reaches(rw, a.port, "role = primary")
    only_reaches(ro, b.port, "role = replica")
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", rw.rsplit(":", 1)[1],
                          "INFO", "replication"], capture_output=True, timeout=10, text=True)
    check("role:master" in out.stdout, f"redis-cli INFO replication through rw: {out.stdout!r}")
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", ro.rsplit(":", 1)[1],
                          "INFO", "replication"], capture_output=True, timeout=10, text=True)
    check("role:slave" in out.stdout and "master_link_status:up" in out.stdout,
          f"redis-cli INFO replication through ro: {out.stdout!r}")

    # health_port: probes go to B (a replica), traffic to A. Several
    # passing checks, none failed, is the probe asking B.
    lbtest.wait_until(lambda: checks(adm, "be3", "s0")[0] >= 4, "be3 probed 4 times")
    check(checks(adm, "be3", "s0")[1] == 0 and states(adm)[("be3", "s0")] == "up",
          "a role = replica check on health_port (the replica) passes for server A")
    only_reaches(hp, a.port, "traffic goes to the server's own port, not health_port", n=2)

    # An ACL user allowed only PING and ROLE passes the check.
    lbtest.wait_until(lambda: checks(adm, "be4", "s0")[0] >= 4, "be4 probed 4 times")
    check(checks(adm, "be4", "s0")[1] == 0 and states(adm)[("be4", "s0")] == "up",
          "AUTH probe probepw (an ACL user) passes")

    # Failover: B becomes the primary, A its replica.
    t_fo = time.time()
    check(b.cmd("REPLICAOF", "NO", "ONE") == "OK", "REPLICAOF NO ONE on B")
    check(a.cmd("REPLICAOF", "127.0.0.1", str(b.port)) == "OK", "REPLICAOF B on A")
    wait_states(adm, {("be0", "s0"): "down", ("be0", "s1"): "up",
                      ("be1", "s0"): "up", ("be1", "s1"): "down"}, "roles flipped")
    lbtest.log(f"  roles flipped in ringlb {time.time() - t_fo:.2f}s after REPLICAOF")
    only_reaches(rw, b.port, "after the failover, role = primary")
    only_reaches(ro, a.port, "after the failover, role = replica")
    _, line = lbtest.wait_log(lb, r"server be0/s0 is DOWN", 5, after=t_fo)
    check("role slave, want primary" in line, f"the demoted primary's reason: {line}")

    # The new primary dies: its replica A still answers, but its link is
    # down, so it leaves the replica backend (and stays in none).
    t_kill = time.time()
    b.stop()
    wait_states(adm, {("be1", "s0"): "down", ("be0", "s1"): "down"}, "B gone, A cut off")
    _, line = lbtest.wait_log(lb, r"server be1/s0 is DOWN", 5, after=t_kill)
    check(f"role slave, link to 127.0.0.1:{b.port} is conn" in line,
          f"a replica cut off from its master is down for role = replica: {line}")


if __name__ == "__main__":
    lbtest.run(main)
