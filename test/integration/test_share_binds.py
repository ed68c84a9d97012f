#!/usr/bin/env python3
"""Sharing a bind with another process must be deliberate.

1. ringlb A listens on a port; a second ringlb B with another config (its
   own backend) on the same bind exits 1 at start-up with an error that
   names the bind and share_binds, and A keeps answering alone.
2. A plain listener of another program on a port: ringlb refuses it too.
3. With share_binds = yes in both, A and B both start on the same bind and
   both serve: connections reach A's backend and B's. When the kernel
   would drop the queue of a dying instance (net.ipv4.tcp_migrate_req = 0)
   the start-up log says so.
4. A VIP this host does not hold (192.0.2.1, TEST-NET-1): `ringlb -t` warns
   that it is not local and names freebind; with `bind = ... freebind`
   ringlb starts and listens on it.
5. Same-host active-active: two instances with share_binds = yes and
   net.ipv4.tcp_migrate_req = 1, in a network namespace of the test's own
   (unshare -n: the sysctl is per namespace, so other tests on the host
   are not touched; it is restored anyway). Under a steady load of new
   connections, instance A is stopped (SIGSTOP) until clients are queued
   in its accept queues, then killed with SIGKILL: 0 new connections
   fail (the kernel moves A's queued clients to B, which serves them),
   and the connections established on A are lost (TCP ends at the
   balancer): counted and reported.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import lbtest
from lbtest import check


def joined(t, backend, bind, g):
    """Starts a second instance on <bind>, which the first one serves
    already, and waits until its own workers run (its sockets are in the
    group then): a connection to <bind> cannot tell the two apart."""
    lb = t.ringlb(servers=[backend], binds=[bind], global_opts=g)
    # Logged once the workers run, after every socket was bound.
    lbtest.wait_log(lb, r"health: ", 20)
    return lb


def migrate_req():
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            return f.read().strip()
    except OSError:
        return None


MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


class NamedLoad:
    """New connections from <threads> threads: each reads the name of the
    backend that answered, echoes a line, closes. <busy[i]> is when thread
    i's current connection began (None between connections), <port[i]>
    its local port. A connection that fails after A had accepted it
    (<accepted_by_a>: client ports) was established on A, and is counted
    apart (<lost_on_a>): at L4 nothing can carry it over."""

    def __init__(self, addr, threads=3):
        self.addr = addr
        self.ok = 0
        self.names = {}
        self.failed = []
        self.lost_on_a = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.busy = [None] * threads
        self.name = [None] * threads
        self.port = [None] * threads
        self.accepted_by_a = set()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for th in self.threads:
            th.start()

    def _one(self, i, n):
        msg = b"new %d.%d\n" % (i, n)
        with lbtest.connect(self.addr, timeout=30) as s:
            s.settimeout(30)
            self.port[i] = s.getsockname()[1]
            name = b""
            while not name.endswith(b"\n"):
                b = s.recv(1)
                if not b:
                    raise ConnectionError(f"EOF before the name ({name!r})")
                name += b
            self.name[i] = name
            s.sendall(msg)
            got = lbtest.recv_exact(s, len(msg))
            if got != msg:
                raise ConnectionError(f"echoed {got!r}")
            return name.decode().strip()

    def _run(self, i):
        n = 0
        while not self.stop.is_set() and n < 1000000:
            n += 1
            self.busy[i] = time.monotonic()
            self.name[i] = None
            self.port[i] = None
            try:
                name = self._one(i, n)
                with self.lock:
                    self.ok += 1
                    self.names[name] = self.names.get(name, 0) + 1
            except (OSError, lbtest.Fail) as e:
                with self.lock:
                    if self.name[i] == b"a\n" or self.port[i] in self.accepted_by_a:
                        self.lost_on_a.append(f"{i}.{n}: {e!r}")
                    else:
                        self.failed.append(f"{i}.{n}: {e!r}")
            self.busy[i] = None
            self.stop.wait(0.002)

    def stuck(self, age):
        """Whether every thread waits on a connection older than <age> s."""
        now = time.monotonic()
        return all(b is not None and now - b > age for b in self.busy)

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(40)


def pair(t):
    """Part 5, inside the namespace (see the docstring)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open(MIGRATE) as f:
        old = f.read().strip()
    try:
        with open(MIGRATE, "w") as f:
            f.write("1")
        pair_kill(t)
    finally:
        with open(MIGRATE, "w") as f:
            f.write(old)


def pair_kill(t):
    ba = t.inproc_backend(lbtest.named_handler("a"))
    bb = t.inproc_backend(lbtest.named_handler("b"))
    bind = f"127.0.0.1:{lbtest.free_port()}"
    g = {"share_binds": "yes"}
    a = t.ringlb(servers=[ba], binds=[bind], global_opts=g)
    b = joined(t, bb, bind, g)
    check("tcp_migrate_req = 0" not in b.log_text(), "no warning with tcp_migrate_req = 1")
    longs = [lbtest.who(bind) for _ in range(16)]
    on_a = [s for s, n in longs if n == "a"]
    on_b = [s for s, n in longs if n == "b"]
    check(on_a and on_b, f"long-lived connections on both ({len(on_a)} on A, {len(on_b)} on B)")
    load = NamedLoad(bind)
    lbtest.wait_until(lambda: load.ok >= 50, "new connections flow through the pair")
    port = bind.rsplit(":", 1)[1]
    # Stop A until a client waits in one of its accept queues. The client
    # threads may all be stuck on connections A had accepted just before
    # the stop instead (established on A, nothing queued): then let A run
    # again and stop it anew, a bounded number of times.
    for attempt in range(6):
        a.proc.send_signal(signal.SIGSTOP)
        # About half the new connections hash to A's listeners: soon every
        # client thread waits on one, queued where A no longer accepts.
        lbtest.wait_until(lambda: load.stuck(0.5), "clients queued on the stopped instance")
        # Which of the waiting clients A had accepted already (it was
        # stopped in the middle of serving them: established on A, lost
        # with it) and which wait in an accept queue, accepted by no
        # process yet.
        r = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                           capture_output=True, text=True, check=True)
        queued = 0
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) < 4:
                continue
            peer = int(f[3].rsplit(":", 1)[1])
            if f"pid={a.proc.pid}," in line:
                load.accepted_by_a.add(peer)
            elif "pid=" not in line and peer in load.port:
                queued += 1
        if queued:
            break
        lbtest.log(f"  stop {attempt + 1}: no client queued yet, A runs again")
        a.proc.send_signal(signal.SIGCONT)
        before = load.ok
        lbtest.wait_until(lambda: load.ok >= before + 20, "new connections flow again")
    check(queued > 0, f"some clients wait in an accept queue ({queued}; "
          f"{len(load.accepted_by_a)} accepted by A)")
    a.proc.kill()
    a.proc.wait()
    lbtest.log(f"  killed A (SIGKILL) with {queued} client(s) waiting in its accept queues")
    # Clients of A that the kernel had handed to no process yet are moved
    # to B's listeners (tcp_migrate_req = 1) and served there.
    before = load.ok
    lbtest.wait_until(lambda: load.ok >= before + 100, "new connections go on through B", 30)
    load.finish()
    check(not load.failed, f"0 of {load.ok + len(load.failed)} new connections failed across the "
          f"kill (failures: {load.failed[:5]})")
    lost = 0
    for s in on_a:
        if not lbtest.echoes(s, timeout=5):
            lost += 1
        s.close()
    check(all(lbtest.echoes(s) for s in on_b), f"the {len(on_b)} connections on B live on")
    check(lost == len(on_a), f"the {len(on_a)} connections established on A are lost ({lost})")
    lbtest.log(f"  pair: {load.ok} new connections, 0 failed; {queued} queued on A were served by "
               f"B; lost with A: {lost} of {len(longs)} long-lived connections (those on A) and "
               f"{len(load.lost_on_a)} short one(s) A had already accepted")


def pair_in_netns(t):
    """Runs pair() in a network namespace of its own; returns what to log
    when it cannot."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "-n", "true"],
                                           capture_output=True).returncode != 0:
        return "unshare -n is not permitted here: the same-host pair part did not run"
    env = dict(os.environ, LBTEST_PAIR="1", LBTEST_DIR=os.path.join(t.dir, "pair"),
               LBTEST_TIMEOUT="60")
    r = subprocess.run(["unshare", "-n", "--", sys.executable, os.path.abspath(__file__),
                        t.mode], env=env, capture_output=True, text=True, timeout=90)
    lbtest.log(r.stdout.rstrip())
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        raise lbtest.Fail(f"the same-host pair part failed (exit {r.returncode})")
    return None


def main(t):
    if os.environ.get("LBTEST_PAIR"):
        pair(t)
        return
    ba = t.inproc_backend(lbtest.named_handler("a"))
    bb = t.inproc_backend(lbtest.named_handler("b"))
    bind = f"127.0.0.1:{lbtest.free_port()}"

    # 1. a second instance with another config is refused
    a = t.ringlb(servers=[ba], binds=[bind])
    b = t.ringlb(servers=[bb], binds=[bind], wait=False)
    rc = b.wait_exit(10)
    check(rc == 1, f"a second ringlb on the same bind exits 1 (exit {rc})")
    log = b.log_text()
    check(bind in log and "already in use by another process" in log and "share_binds" in log,
          "its error names the bind, and share_binds")
    names = lbtest.spread(a.addr, 32)
    check(set(names) == {"a"}, f"the first instance still answers alone ({dict(names)})")

    # 2. another program's listener is refused the same way
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    taken = f"127.0.0.1:{other.getsockname()[1]}"
    c = t.ringlb(servers=[bb], binds=[taken], wait=False)
    rc = c.wait_exit(10)
    other.close()
    check(rc == 1 and taken in c.log_text(),
          f"a port another program listens on is refused, naming it (exit {rc})")
    a.signal(15)
    check(a.wait_exit(10) == 0, "the first instance stops")

    # 3. share_binds = yes: both serve
    g = {"share_binds": "yes"}
    a = t.ringlb(servers=[ba], binds=[bind], global_opts=g)
    b = joined(t, bb, bind, g)
    names = lbtest.spread(bind, 64)
    check(names["a"] > 0 and names["b"] > 0,
          f"with share_binds = yes both instances serve the bind ({dict(names)})")
    warned = "tcp_migrate_req = 0" in b.log_text()
    check("sharing" in b.log_text(), "the second instance logs that it shares the bind")
    if migrate_req() == "0":
        check(warned, "with net.ipv4.tcp_migrate_req = 0 the sharing instance warns")
    else:
        check(not warned, f"no warning with tcp_migrate_req = {migrate_req()}")

    # 4. freebind
    vip = f"192.0.2.1:{lbtest.free_port()}"
    path, _ = t.config(servers=[ba], binds=[vip])
    r = subprocess.run([lbtest.RINGLB, "-t", "-c", path], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 0 and "not an address of this host" in r.stderr
          and "freebind" in r.stderr, f"ringlb -t says the VIP is not local ({r.stderr.strip()})")
    own = f"127.0.0.1:{lbtest.free_port()}"
    path, fe = t.config(servers=[ba], binds=[f"{vip} freebind", own])
    r = subprocess.run([lbtest.RINGLB, "-t", "-c", path], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 0 and "warning" not in r.stderr,
          f"with freebind ringlb -t has nothing to say ({r.stderr.strip()})")
    lb = lbtest.Ringlb(t, path, [[own]], "ringlb-freebind")
    t.lbs.append(lb)
    lb.wait_ready()
    check("listening on 192.0.2.1" in lb.log_text(), "with freebind ringlb listens on the VIP")

    # 5. same-host active-active, kill -9 one
    note = pair_in_netns(t)
    if note:
        lbtest.log(f"  note: {note}")


if __name__ == "__main__":
    lbtest.run(main)
