#!/usr/bin/env python3
# run-once: ringbench against its own backends; no ringlb, so no io mode, in the path
"""ringbench (issue 5) on its own, against its own backends.

- latency, open loop: the request count is the offered rate x the measured
  window (never above what the schedule allows: warm-up + window), no
  errors, percentiles ordered.
- latency, closed loop, and connrate: requests/connections counted, no
  errors; --hist writes a histogram whose total is the JSON request count.
- throughput both (echo), up (sink) and down (source): every byte checked
  (checksum_ok).
- a relay that flips one byte: throughput must fail (exit 1, checksum_ok
  false) - the proof that the check can fail.
- serve --mode sockperf clears only the client flag of each sockperf
  header, also when headers straddle TCP segments.
- ringbench serve exits 0 on SIGTERM (a sanitizer report would not).
- `ringbench SUBCOMMAND --help` (and -h) prints that subcommand's flags on
  stdout and exits 0; `ringbench --help` the overview; an unknown flag is
  named on stderr and exits 2.
- latency --rate that the target cannot keep up with (a 20 ms backend, one
  connection, 5,000 req/s asked) says BEHIND SCHEDULE on stderr, exits 3
  and sets behind_schedule in the JSON; a rate the same backend can carry
  (100 req/s on 4 connections, a third of its capacity) exits 0.
- compare --md with one target on a closed port: that target's cells read
  "failed: ... Connection refused" (never 0.00 and a 0.00x ratio), the
  report carries the workload line, the load average and an "added us
  over direct" column, and compare exits 1.

Every run is bounded (1-2 s measured, each command under a 60 s timeout);
no assertion is about speed, so a loaded machine only makes it slower.
"""
import socket
import struct
import subprocess
import threading
import time

import lbtest
from lbtest import check


class CorruptingRelay:
    """Forwards one connection at a time to <backend>, flipping the byte at
    offset <at> of the backend->client direction."""

    def __init__(self, t, backend, at=3_000_000):
        self.backend = backend
        self.at = at
        self.flipped = 0
        self.inner = t.inproc_backend(self.handle)
        self.addr = self.inner.addr

    def flip(self, seen, b):
        if seen <= self.at < seen + len(b):
            b = bytearray(b)
            b[self.at - seen] ^= 0x20
            self.flipped += 1
        return b

    def handle(self, client, info):
        up = lbtest.connect(self.backend)
        up.settimeout(None)
        client.settimeout(None)

        def c2b():
            try:
                lbtest.forward(client, up)
            except OSError:
                pass

        th = threading.Thread(target=c2b, daemon=True)
        th.start()
        try:
            lbtest.forward(up, client, self.flip)
        except OSError:
            pass
        th.join(5)
        up.close()


def sockperf_mode(t):
    """sockperf's header: u64 sequence, u16 flags (bit 0: from the client),
    u32 length, big-endian. The reply must be the same bytes with bit 0 of
    every message's flags cleared, as `sockperf server` answers."""
    sp = lbtest.ringbench_backend(t, "sockperf")
    sizes = [64, 14, 100, 64]
    msgs = [struct.pack(">QHI", i, 0x3, n) + bytes((i + j) & 0xFF for j in range(n - 14))
            for i, n in enumerate(sizes)]
    want = b"".join(m[:8] + struct.pack(">H", 0x2) + m[10:] for m in msgs)
    s = lbtest.connect(sp.addr, timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = b"".join(msgs)
    # Odd-sized pieces, paced, so the server sees headers cut in two.
    for i in range(0, len(stream), 5):
        s.sendall(stream[i:i + 5])
        time.sleep(0.001)
    got = lbtest.recv_exact(s, len(want))
    s.close()
    check(got == want, f"serve --mode sockperf clears the client flag of {len(sizes)} headers "
          f"sent in 5-byte pieces and echoes every other byte")
    return sp


def run_plain(args, timeout=30):
    p = subprocess.run([lbtest.RINGBENCH] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def help_and_bad_flags():
    per_cmd = {"serve": ["--listen", "--mode", "--delay", "--buffers"],
               "latency": ["--target", "--rate", "--closed", "--conns", "--hist"],
               "connrate": ["--target", "--conns", "--size"],
               "throughput": ["--streams", "--direction"],
               "compare": ["--config", "--md", "--svg"]}
    for cmd, flags in per_cmd.items():
        for h in ("--help", "-h"):
            rc, out, err = run_plain([cmd, h])
            check(rc == 0 and out.startswith(f"usage: ringbench {cmd} ")
                  and all(f in out for f in flags),
                  f"ringbench {cmd} {h}: exit {rc}, its flags on stdout ({out[:60]!r})")
    rc, out, err = run_plain(["--help"])
    check(rc == 0 and all(c in out for c in per_cmd), f"ringbench --help: the overview ({rc})")
    for args in (["latency", "--target", "127.0.0.1:1", "--rate", "10", "--frobnicate"],
                 ["--frobnicate"]):
        rc, out, err = run_plain(args)
        check(rc == 2 and "'--frobnicate'" in err and not out,
              f"ringbench {' '.join(args)}: exit {rc}, names the flag ({err.strip()[:80]!r})")


def behind_schedule(t):
    slow = lbtest.ringbench_backend(t, "echo", extra=["--delay", "20ms"])
    rc, d, err = lbtest.ringbench_run(["latency", "--target", slow.addr, "--conns", "1",
                                       "--rate", "5000", "--duration", "1s", "--warmup", "0"])
    check(rc == 3 and d is not None and d["behind_schedule"] is True and d["backlog"] > 0,
          f"5000 req/s on 1 connection to a 20 ms echo: exit {rc}, behind_schedule "
          f"{d and d.get('behind_schedule')}, {d and d['rps']:.0f} req/s, backlog "
          f"{d and d.get('backlog')}")
    check("BEHIND SCHEDULE" in err and "5000 req/s" in err,
          f"and says so on stderr ({err.strip()[:120]!r})")
    # One connection carries 50 req/s of a 20 ms echo; 4 carry 200.
    rc, d, err = lbtest.ringbench_run(["latency", "--target", slow.addr, "--conns", "4",
                                       "--rate", "100", "--duration", "2s", "--warmup", "200ms"])
    check(rc == 0 and d["behind_schedule"] is False and "BEHIND" not in err,
          f"100 req/s on 4 connections to the same echo keeps up: exit {rc}, "
          f"{d and d['rps']:.0f} req/s, backlog {d and d.get('backlog')}")
    check(slow.stop() == 0, "the slow echo exits 0 on SIGTERM")


def compare_failed_target(t, echo):
    closed = f"127.0.0.1:{lbtest.free_port()}"
    cfg, md = f"{t.dir}/cmp.ini", f"{t.dir}/cmp.md"
    with open(cfg, "w") as f:
        f.write(f"rounds = 1\n[target direct]\naddr = {echo.addr}\n"
                f"[target closed]\naddr = {closed}\n"
                "[workload lat]\nrun = latency --rate 200 --conns 2 --duration 300ms "
                "--warmup 100ms\n")
    rc, out, err = run_plain(["compare", "--config", cfg, "--md", md], timeout=60)
    check(rc == 1, f"compare with a target on a closed port exits 1 ({rc}, {err.strip()[-200:]!r})")
    with open(md) as f:
        text = f.read()
    rows = [ln for ln in text.splitlines() if ln.startswith("| lat | req/s |")]
    check(len(rows) == 1, f"the table has the lat req/s row ({text[:300]!r})")
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    # workload, metric, direct, closed, closed / direct, added us.
    check(cells[3].startswith("failed: ") and "Connection refused" in cells[3],
          f"the closed target reads failed with the reason ({cells[3]!r})")
    check(cells[4] == "—" and "0.00" not in rows[0].split("|", 4)[4],
          f"no 0.00 value or 0.00x ratio for it ({rows[0]!r})")
    check("- lat: latency: open loop 200 req/s, 2 conns, 64 B, 0.3 s measured after 0.1 s "
          "warm-up" in text, "the report has the workload line")
    check("1 round, interleaved" in text and "load average (1 5 15 min)" in text,
          "and the rounds and the load average")
    check("| closed: added us over direct |" in text, "and an added-us-over-direct column")
    check(text == out, "stdout carries the same report as --md")


def main(t):
    help_and_bad_flags()
    behind_schedule(t)
    echo = lbtest.ringbench_backend(t, "echo")
    sink = lbtest.ringbench_backend(t, "sink")
    source = lbtest.ringbench_backend(t, "source")
    sp = sockperf_mode(t)

    compare_failed_target(t, echo)

    lbtest.ringbench_latency_open(echo.addr, "direct")
    rc, d, err = lbtest.ringbench_run(["latency", "--target", echo.addr, "--closed", "--conns",
                                       "2", "--duration", "1s", "--warmup", "0",
                                       "--hist", f"{t.dir}/lat.hgrm"])
    check(rc == 0 and d["requests"] > 100 and d["errors"] == 0,
          f"direct: closed loop {d['requests']} requests, {d['rps']:.0f}/s, no errors")
    with open(f"{t.dir}/lat.hgrm") as f:
        text = f.read()
    check(f"Total count    = {d['requests']:12d}" in text,
          "--hist file holds every measured request")
    rc, d, err = lbtest.ringbench_run(["connrate", "--target", echo.addr, "--conns", "4",
                                       "--duration", "1s", "--warmup", "0"])
    check(rc == 0 and d["connections"] > 50 and d["errors"] == 0,
          f"direct: connrate {d['connections']} connections, {d['cps']:.0f}/s, no errors")
    lbtest.ringbench_throughput(echo.addr, "both", "direct")
    lbtest.ringbench_throughput(sink.addr, "up", "direct")
    lbtest.ringbench_throughput(source.addr, "down", "direct")

    # The check must be able to fail: one flipped byte in 3 MB.
    relay = CorruptingRelay(t, echo.addr)
    rc, d = lbtest.ringbench_throughput(relay.addr, "both", "relay", expect_ok=False)
    check(relay.flipped >= 1, f"the relay flipped a byte ({relay.flipped} times)")
    check(rc == 1 and d is not None and d["checksum_ok"] is False,
          f"throughput through a corrupting relay fails: exit {rc}, checksum_ok "
          f"{d and d['checksum_ok']}, '{d and d.get('first_error')}'")

    for b in (echo, sink, source, sp):
        check(b.stop() == 0, f"ringbench serve {b.mode} exits 0 on SIGTERM")


if __name__ == "__main__":
    lbtest.run(main)
