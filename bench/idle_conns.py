#!/usr/bin/env python3
"""Idle-connection memory probe for bench/compare.sh (stdlib only).

Two sub-commands:

  serve   --port P
      A backend that accepts connections, echoes what it reads and otherwise
      just holds every socket open until the peer closes it.

  measure --port P --pid PID -n N [--warm W] [--warm-rounds R] [--settle S]
      Opens W connections through the proxy listening on P, each doing R
      (--warm-rounds) echo round trips, and closes them: a warm-up, so pools
      that are touched lazily (a receive-buffer ring, allocator arenas, thread
      stacks) are charged to the baseline, not to the connections. Then reads
      VmRSS of PID, then opens N connections, sends a few bytes on
      each and waits for the echo (so the proxy has set up both sides), lets
      the proxy settle, reads VmRSS again and prints one line:

        n=N rss_fresh_kib=F rss0_kib=A rssn_kib=B kib_per_conn=(B-A)/N

      (F: before the warm-up, A: after it, B: with N idle connections)

      then closes everything. Exit status 1 with a message on any failure
      (connect refused, missing echo, PID gone).

Both raise their soft RLIMIT_NOFILE to the hard limit.
"""

import argparse
import os
import resource
import selectors
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if need and soft < need:
        sys.exit(f"idle_conns: need {need} fds, RLIMIT_NOFILE hard limit is {hard}")


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    sys.exit(f"idle_conns: process {pid} is gone")


def serve(port):
    raise_nofile(0)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:  # EMFILE: drop this round, retry later
                        print(f"idle_conns serve: accept: {e}", file=sys.stderr)
                        time.sleep(0.05)
                        break
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, 1)
            else:
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    try:
                        c.send(data)
                    except OSError:
                        pass
                else:
                    sel.unregister(c)
                    c.close()


def open_conns(port, n, rounds=1, timeout=10.0):
    socks = []
    msg = b"hold\n"
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", port))
            for _ in range(rounds):
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    if not chunk:
                        raise OSError("closed by proxy before the echo came back")
                    got += chunk
                if got != msg:
                    raise OSError(f"echo came back as {got!r}, sent {msg!r}")
        except OSError as e:
            s.close()
            raise ConnFailed(f"connection {i + 1}/{n} through port {port}: {e}", socks) from e
        socks.append(s)
    return socks


class ConnFailed(Exception):
    def __init__(self, msg, socks):
        super().__init__(msg)
        self.socks = socks


def fd_summary(pid):
    """'F fds, P pipes' open in process <pid> (read while our sockets still exist)."""
    fds = pipes = 0
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            fds += 1
            try:
                if os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:"):
                    pipes += 1
            except OSError:
                pass
    except OSError:
        return "fds unknown"
    return f"{fds} fds open, {pipes} of them pipes"


def open_or_exit(port, pid, n, rounds=1):
    try:
        return open_conns(port, n, rounds)
    except ConnFailed as e:
        summary = fd_summary(pid)
        for t in e.socks:
            t.close()
        sys.exit(f"idle_conns: {e} (proxy pid {pid} at that moment: {summary})")


def measure(port, pid, n, warm, warm_rounds, settle):
    raise_nofile(n + 64)
    fresh = vmrss_kib(pid)
    for s in open_or_exit(port, pid, warm, warm_rounds):
        s.close()
    time.sleep(settle)
    rss0 = vmrss_kib(pid)
    socks = open_or_exit(port, pid, n)
    time.sleep(settle)
    rssn = vmrss_kib(pid)
    # Every socket must still be open end to end: nothing readable (EOF would be).
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(timeout=0))
    sel.close()
    for s in socks:
        s.close()
    if closed:
        sys.exit(f"idle_conns: {closed} of {n} idle connections were closed by the proxy")
    print(f"n={n} rss_fresh_kib={fresh} rss0_kib={rss0} rssn_kib={rssn} kib_per_conn={(rssn - rss0) / n:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--port", type=int, required=True)
    mp = sub.add_parser("measure")
    mp.add_argument("--port", type=int, required=True)
    mp.add_argument("--pid", type=int, required=True)
    mp.add_argument("-n", type=int, default=9000)
    mp.add_argument("--warm", type=int, default=200)
    mp.add_argument("--warm-rounds", type=int, default=20)
    mp.add_argument("--settle", type=float, default=1.0)
    a = ap.parse_args()
    if a.cmd == "serve":
        try:
            serve(a.port)
        except KeyboardInterrupt:
            pass
    else:
        measure(a.port, a.pid, a.n, a.warm, a.warm_rounds, a.settle)


if __name__ == "__main__":
    main()
