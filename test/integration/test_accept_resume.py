#!/usr/bin/env python3
"""A worker always accepts again after a max_conns pause, and max_conns
bounds what ringlb takes off the kernel's accept queue.

1. Churn (workers = 2, max_conns = 5): 120 clients open, echo and close
   short connections as fast as they can, so that accepts are paused and
   resumed many times, often while a cancellation is still in flight. Then
   30 probes, one at a time, each from its own source port (SO_REUSEPORT
   spreads them over both workers' listeners): every one is echoed. Before
   the accept state machine, a resume that beat the cancellation left one
   worker's listener unarmed for good and about half the probes hung.
2. Burst (max_conns = 200): 2,000 idle clients connect at once. ringlb
   serves 200 and leaves the rest in the listen backlog (seen in the
   listeners' Recv-Q): it holds at most a few accepted clients beyond
   max_conns, so its descriptors stay near 2 x 200. Multishot accepts used
   to drain the whole backlog into an unbounded list (about 1,800 clients
   held, 2,200 descriptors). Then all close, and 40 probes are echoed
   (under epoll no worker accepted again after such a burst).
"""
import os
import selectors
import socket
import subprocess
import threading
import time

import lbtest
from lbtest import check

CHURNERS, CHURN_EACH, PROBES = 120, 40, 30
BURST, BURST_MAX, AFTER_PROBES = 2000, 200, 40



def probe_all(addr, n, what):
    """<n> probes, each on its own connection; all must be echoed (one that
    waits 10 s for its echo counts as hung)."""
    bad = []

    def one(i):
        if not lbtest.echoes(addr, f"probe {i}\n".encode(), timeout=10):
            bad.append(i)

    ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(15)
    check(not bad, f"{what}: all {n} probes echoed ({len(bad)} failed or hung: {sorted(bad)})")


def churn(addr, stop_at):
    def one(i):
        for k in range(CHURN_EACH):
            if time.monotonic() > stop_at:
                return
            try:
                if (i + k) % 2:
                    lbtest.echoes(addr, b"x" * 64, timeout=3)
                else:
                    # Gone at once: its slot frees while accepts may be
                    # pausing for the next client.
                    with lbtest.connect(addr, timeout=3) as s:
                        s.sendall(b"x" * 64)
            except OSError:
                pass  # the load is the point; probes check the outcome

    ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(CHURNERS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(max(0.1, stop_at - time.monotonic()) + 5)


def listen_queue(port):
    """Clients waiting in the accept queues of every listener on <port>."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line.strip())


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))




def active(adm):
    # Polled every 100 ms, not 20: each scrape is parsed in full, and the
    # CPU it takes is the churn's and ringlb's.
    return lbtest.metric_sum(adm, "ringlb_frontend_connections_active")


def main(t):
    echo = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[echo],
                                  global_opts={"workers": "2", "max_conns": "5"})
    churn(lb.addr, time.monotonic() + 10)
    probe_all(lb.addr, PROBES, "after churning at max_conns 5")

    lb2, adm2 = lbtest.admin_ringlb(t, servers=[echo],
                                    global_opts={"workers": "2", "max_conns": str(BURST_MAX)})
    port = int(lb2.addr.rsplit(":", 1)[1])
    lbtest.wait_until(lambda: active(adm2) == 0, "the readiness probes to close", 10, interval=0.1)
    base = nfds(lb2.proc.pid)
    sel = selectors.DefaultSelector()
    socks = []
    try:
        host = lb2.addr.rsplit(":", 1)[0]
        for _ in range(BURST):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        pending = len(socks)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                sel.unregister(key.fileobj)
                pending -= 1
        check(not pending, f"all {BURST} clients connected ({pending} still connecting)")
        lbtest.wait_until(lambda: active(adm2) == BURST_MAX, f"{BURST_MAX} connections served", 20,
                          interval=0.1)
        # A few may be held (one per listener per worker); the rest must
        # wait in the kernel, not in ringlb.
        want_queued = BURST - BURST_MAX - 8
        try:
            lbtest.wait_until(lambda: listen_queue(port) >= want_queued,
                     f"at least {want_queued} clients left in the listen backlog", 10)
        except lbtest.Fail:
            raise lbtest.Fail(f"only {listen_queue(port)} clients wait in the backlog: ringlb "
                              f"took the rest ({nfds(lb2.proc.pid)} descriptors open)")
        fds = nfds(lb2.proc.pid)
        check(fds <= base + 2 * BURST_MAX + 16,
              f"descriptors stay near 2 x max_conns: {fds} open, {base} before the burst")
    finally:
        for s in socks:
            s.close()
        sel.close()
    lbtest.wait_until(lambda: active(adm2) == 0, "every burst connection to close", 30,
                      interval=0.1)
    probe_all(lb2.addr, AFTER_PROBES, f"after a burst of {BURST} at max_conns {BURST_MAX}")
    m = lbtest.admin_metrics(adm2)
    per_worker = {dict(lbl)["worker"]: v for (name, lbl), v in m.items()
                  if name == "ringlb_worker_connections_accepted_total"}
    check(len(per_worker) == 2 and all(v > 0 for v in per_worker.values()),
          f"both workers accepted clients: {per_worker}")


if __name__ == "__main__":
    lbtest.run(main)
