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
"""
import socket
import subprocess

import lbtest
from lbtest import check


def migrate_req():
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            return f.read().strip()
    except OSError:
        return None


def main(t):
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
    b = t.ringlb(servers=[bb], binds=[bind], global_opts=g)
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


if __name__ == "__main__":
    lbtest.run(main)
