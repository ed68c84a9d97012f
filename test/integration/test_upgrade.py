#!/usr/bin/env python3
"""Hot binary upgrade: ringlb -c FILE -x PATH takes over the listening
sockets of the ringlb whose upgrade_socket is PATH.

1. Failed upgrades leave the running process serving, and the new one
   exits 1 with a clear message: a bad lb.ini, a wrong socket path, and an
   lb.ini whose extra bind is taken (it fails after the sockets were handed
   over: the old process must notice the new one going away). A client
   speaking another upgrade protocol version gets an ERROR saying so, and
   one sending garbage is disconnected; the old process serves on.
2. 20 upgrades in a row under load: a client thread opens short
   connections in a loop (connect, echo, close) for the whole run, and a
   long-lived stream is opened before each upgrade and keeps echoing across
   the next three upgrades, so that streams live on old processes while
   they drain. Checks: 0 failed short connections (refused, reset or
   wrong data), every stream completes intact (all bytes echoed, clean
   EOF), every old process exits 0 once its streams are done, and each new
   process answers on the admin listener it took over (/healthz 200, which
   the old one, draining, would answer 503) and on a unix bind (the same
   socket and file, which no old process removes as it exits).
   Under systemd: the first new process sends MAINPID=<its pid> and
   READY=1 over $NOTIFY_SOCKET, and the old one, handed over, does not send
   STOPPING=1 (systemd would take the service for stopping).
3. A server that was down in the old process starts down in the new one
   (no client is sent to it before its checks pass): the new process logs
   it and counts no connect failure to it.
"""
import os
import random
import socket
import struct
import subprocess
import threading
import time

import lbtest
from lbtest import check

UPGRADES = 20
T0 = time.monotonic()
STREAM_SPAN = 3  # upgrades a long-lived stream lives across


class Upgraded(lbtest.Ringlb):
    """A ringlb started with -x PATH (takes over from the running one)."""

    def __init__(self, t, cfgpath, fe, name, sock):
        self.t = t
        self.cfgpath = cfgpath
        self.fe = fe
        self.addrs = [a for binds in fe for a in binds]
        self.addr = self.addrs[0]
        self.logpath = os.path.join(t.dir, f"{name}.log")
        self.logf = open(self.logpath, "wb")
        self.proc = lbtest._spawn([lbtest.RINGLB, "-c", cfgpath, "-x", sock],
                                  subprocess.DEVNULL, self.logf)
        self.exit_code = None


class ShortLoad:
    """New connections in a loop, from <threads> client threads: connect,
    send a line, read it back, close. Several at once keep the accept
    queues from running empty, so hand-overs happen with clients queued."""

    def __init__(self, addr, threads=3):
        self.addr = addr
        self.ok = 0
        self.failed = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def _run(self, i):
        n = 0
        while not self.stop.is_set() and n < 1000000:
            n += 1
            msg = b"short %d.%d\n" % (i, n)
            # A refused, reset or short-changed client is what an upgrade
            # must not cause; a slow one on a loaded machine is not, so the
            # timeout is long.
            try:
                with lbtest.connect(self.addr, timeout=30) as s:
                    s.settimeout(30)
                    s.sendall(msg)
                    got = lbtest.recv_exact(s, len(msg))
                with self.lock:
                    if got != msg:
                        self.failed.append(f"{i}.{n}: echoed {got!r}")
                    else:
                        self.ok += 1
            except OSError as e:
                with self.lock:
                    self.failed.append(f"{i}.{n} at {time.monotonic() - T0:.3f}s: {e!r}")
            # Steady, and still gentle on a shared machine.
            self.stop.wait(0.002)

    def start(self):
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(30)


class LongStream:
    """One connection that keeps echoing random chunks until told to end,
    then half-closes and expects a clean EOF."""

    def __init__(self, addr, k):
        self.k = k
        self.sock = lbtest.connect(addr, timeout=10)
        self.sock.settimeout(10)
        self.rng = random.Random(k)
        self.sent = 0
        self.error = None
        self.done = False
        self.end = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.end.is_set():
                chunk = self.rng.randbytes(self.rng.randint(1, 8192))
                self.sock.sendall(chunk)
                got = lbtest.recv_exact(self.sock, len(chunk))
                if got != chunk:
                    raise RuntimeError(f"stream {self.k}: wrong bytes after {self.sent}")
                self.sent += len(chunk)
                self.end.wait(0.01)
            self.sock.shutdown(socket.SHUT_WR)
            rest = self.sock.recv(1)
            if rest != b"":
                raise RuntimeError(f"stream {self.k}: {rest!r} after the half-close")
            self.done = True
        except Exception as e:  # recorded, checked by the test
            self.error = e
        finally:
            self.sock.close()

    def finish(self):
        self.end.set()
        self.thread.join(30)
        return self.done and self.error is None


class Notes:
    """sd_notify datagrams, as a stand-in $NOTIFY_SOCKET receives them."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.got = []

    def all(self):
        """Every datagram received so far."""
        while True:
            try:
                self.got.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.got

    def has(self, text):
        return any(text in n.split("\n") for n in self.all())


def healthz(adm):
    try:
        return lbtest.admin_request(adm, "GET", "/healthz", timeout=3)[0]
    except OSError:
        return None


def upgrade(t, path, fe, sock, name):
    lb = Upgraded(t, path, fe, name, sock)
    t.lbs.append(lb)
    return lb


def failed_upgrades(t, cur, path, fe, sock, adm, echo):
    # a bad lb.ini: refused before the running process is even asked
    bad = os.path.join(t.dir, "bad.ini")
    with open(bad, "w") as f:
        f.write("[global]\nworkers = 2\n[frontend x]\nbind = 127.0.0.1:1\n")
    r = subprocess.run([lbtest.RINGLB, "-c", bad, "-x", sock], capture_output=True, text=True,
                       timeout=20)
    check(r.returncode == 1 and "bad.ini" in r.stderr,
          f"an upgrade with a bad lb.ini exits 1 naming it ({r.stderr.strip()[-200:]})")
    # a wrong socket path
    nope = os.path.join(t.dir, "nope.sock")
    r = subprocess.run([lbtest.RINGLB, "-c", path, "-x", nope], capture_output=True, text=True,
                       timeout=20)
    check(r.returncode == 1 and "cannot reach the running ringlb" in r.stderr and nope in r.stderr,
          f"an upgrade to a wrong socket path exits 1 naming it ({r.stderr.strip()[-300:]})")
    # a config that fails after the hand-over began: an extra bind that
    # another program holds
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    taken = f"127.0.0.1:{other.getsockname()[1]}"
    g = {"upgrade_socket": sock, "admin": adm, "shutdown_grace": "60s"}
    p2, _ = t.config(servers=[echo], binds=fe[0] + [taken], global_opts=g)
    r = subprocess.run([lbtest.RINGLB, "-c", p2, "-x", sock], capture_output=True, text=True,
                       timeout=30)
    other.close()
    check(r.returncode == 1 and taken in r.stderr,
          f"an upgrade that cannot bind {taken} exits 1 naming it ({r.stderr.strip()[-300:]})")
    lbtest.wait_log(cur, r"upgrade: the new process went away.*keeps serving", 10)
    # a client of another upgrade protocol version is told so and refused
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(sock)
        version = b"9.9.9"
        payload = struct.pack(">HI", 99, os.getpid()) + bytes([len(version)]) + version
        c.sendall(bytes([1, 0]) + struct.pack(">H", len(payload)) + payload)
        answer = lbtest.recv_until_eof(c)
    check(answer[:1] == b"\x03" and b"protocol version mismatch" in answer,
          f"a HELLO of protocol 99 gets an ERROR that says why ({answer!r})")
    # and garbage ends the conversation
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(sock)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        check(lbtest.recv_until_eof(c) == b"", "a malformed message is answered by a close")
    lbtest.wait_log(cur, r"malformed message; this process keeps serving", 10)
    check(cur.alive(), "after five failed upgrades the running ringlb still runs")
    check(lbtest.echoes(cur.addr), "and still serves")
    check(healthz(adm) == 200, "and its admin server says serving")


def main(t):
    echo = t.backend("echo")
    sock = os.path.join(t.dir, "upgrade.sock")
    adm = f"127.0.0.1:{lbtest.free_port()}"
    dead = t.refused_addr()
    g = {"upgrade_socket": sock, "admin": adm, "shutdown_grace": "60s"}
    bopts = {"health": "tcp", "health_interval": "200ms", "fall": "1", "rise": "1"}
    unix_bind = "unix:" + os.path.join(t.dir, "web.sock")
    path, fe = t.config(servers=[echo, dead], backend_opts=bopts, global_opts=g,
                        binds=[f"127.0.0.1:{lbtest.free_port()}", unix_bind])
    ns = Notes(os.path.join(t.dir, "notify.sock"))
    t.held.append(ns.sock)
    os.environ["NOTIFY_SOCKET"] = os.path.join(t.dir, "notify.sock")
    cur = lbtest.Ringlb(t, path, fe, "ringlb0")
    t.lbs.append(cur)
    cur.wait_ready()
    lbtest.wait_until(lambda: ns.has("READY=1"), "the first process sends READY=1")
    check(oct(os.stat(sock).st_mode & 0o777) == "0o600", "upgrade_socket is owner-only")
    lbtest.wait_log(cur, r"s1.*(down|DOWN)", 10)

    failed_upgrades(t, cur, path, fe, sock, adm, echo)
    check(len([n for n in ns.all() if "READY=1" in n]) == 1,
          "none of the failed upgrades said READY=1")
    ns.got = []

    load = ShortLoad(cur.addr)
    load.start()
    lbtest.wait_until(lambda: load.ok >= 20, "short connections flow before the upgrades")
    streams = []  # (stream, process it was opened on, upgrade that ends it)
    olds = []
    for j in range(1, UPGRADES + 1):
        streams.append((LongStream(cur.addr, j), cur, j + STREAM_SPAN))
        lbtest.wait_until(lambda: streams[-1][0].sent > 0 or streams[-1][0].error,
                          f"stream {j} echoes")
        before = load.ok
        new = upgrade(t, path, fe, sock, f"ringlb{j}")
        lbtest.wait_log(new, r"upgrade: the old process .* stopped accepting", 30)
        lbtest.wait_log(cur, r"upgrade: handed over", 10)
        check(new.alive(), f"upgrade {j}: the new process runs")
        # The old process answers 503 from now on: 200 is the new one, on
        # the admin socket it took over.
        check(f"admin: took over the listener on {adm}" in new.log_text(),
              f"upgrade {j}: the new process took the admin listener over")
        check(healthz(adm) == 200, f"upgrade {j}: /healthz on the taken-over admin socket is 200")
        check(lbtest.echoes(unix_bind), f"upgrade {j}: the unix listener it took over serves")
        lbtest.wait_until(lambda: load.ok > before + 20, f"upgrade {j}: short connections go on")
        if j == 1:
            del os.environ["NOTIFY_SOCKET"]  # the first two processes only
            lbtest.wait_until(lambda: ns.has(f"MAINPID={new.proc.pid}") and ns.has("READY=1"),
                              f"the new process sends MAINPID={new.proc.pid} and READY=1")
        olds.append(cur)
        cur = new
        for st, owner, end in streams:
            if end == j:
                check(st.finish(), f"stream {st.k} (opened before upgrade {st.k}) completed intact "
                      f"after {STREAM_SPAN} more upgrades ({st.sent} bytes, {st.error})")
        lbtest.log(f"  upgrade {j}: ok ({load.ok} short connections, {len(load.failed)} failed)")
    load.finish()
    for st, owner, end in streams:
        if end > UPGRADES:
            check(st.finish(), f"stream {st.k} completed intact ({st.sent} bytes, {st.error})")
    check(not load.failed, f"0 of {load.ok + len(load.failed)} short connections failed across "
          f"{UPGRADES} upgrades (failures: {load.failed[:5]})")
    lbtest.log(f"  {load.ok} short connections, 0 failed, across {UPGRADES} upgrades; "
               f"{len(streams)} long-lived streams intact, "
               f"{sum(st.sent for st, _, _ in streams)} bytes each way")
    for k, old in enumerate(olds):
        rc = old.wait_exit(30)
        check(rc == 0, f"old process {k} exited 0 once its streams were done (exit {rc})")
    check(not ns.has("STOPPING=1"),
          f"the handed-over processes did not tell systemd they stop ({ns.all()})")
    # 3. the dead server came over down
    check("1 server(s) start down" in cur.log_text(),
          "the server that was down in the old process starts down in the new one")
    m = lbtest.admin_metrics(adm)
    check(lbtest.metric(m, "ringlb_server_connect_failures_total", backend="be0",
                        server="s1") == 0,
          "the new process never tried the server the old one knew was down")
    check(lbtest.echoes(cur.addr), "the last process serves")


if __name__ == "__main__":
    lbtest.run(main)
