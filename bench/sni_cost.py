#!/usr/bin/env python3
"""bench/sni_cost.py - what reading the ClientHello costs ringlb per new
TLS connection: proxy CPU per connection (user+system ticks of the ringlb
process over the run / connections, bench/compare.sh's "proxy CPU µs per
new connection"), for one frontend with `sni` rules and one without, both
in one ringlb, rounds interleaved.

Each connection sends a real ClientHello (made by Python's ssl through a
memory BIO, so the client spends no time on crypto) and waits for the
backend, which reads it and closes. ringlb does the same work on both
frontends (accept, connect, forward, close) except the peek.

Usage: bench/sni_cost.py [RINGLB] (default build/ringlb); N=20000 per
round, ROUNDS=5, CONC=8 from the environment.

CALLGRIND=1: instead, user-space instructions per connection counted by
callgrind (as bench/instr_per_request.sh does: one worker, io = epoll,
counting from once ringlb listens), one ringlb per frontend kind, N
connections (default 2000) one at a time: repeatable on a noisy machine,
but blind to the kernel's share (the syscalls).
"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGLB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "ringlb")
N = int(os.environ.get("N", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
CONC = int(os.environ.get("CONC", "8"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hello(name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def backend():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)

    def serve():
        while True:
            s, _ = ls.accept()
            threading.Thread(target=one, args=(s,), daemon=True).start()

    def one(s):
        with s:
            s.recv(65536)
    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def load(port, data, n):
    left = [n]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(data)
                while s.recv(4096):
                    pass
    ts = [threading.Thread(target=worker) for _ in range(CONC)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def callgrind(be, data):
    n = int(os.environ.get("N", "2000"))
    res = {}
    for kind in ("plain", "sni", "plain", "sni"):
        port = free_port()
        rules = "\n".join(f"sni = host{i}.example.com be" for i in range(20))
        ini = f"""[global]
workers = 1
io = epoll
forward = copy
log_level = warn
[frontend f]
bind = 127.0.0.1:{port}
{rules if kind == "sni" else ""}
backend = be
[backend be]
health = none
server = a 127.0.0.1:{be}
"""
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "lb.ini")
            out = os.path.join(d, "cg.out")
            with open(cfg, "w") as f:
                f.write(ini)
            lb = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                   f"--callgrind-out-file={out}", RINGLB, "-c", cfg],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            subprocess.run(["callgrind_control", "-i", "on", str(lb.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            CONC_SAVE = globals()["CONC"]
            globals()["CONC"] = 1
            load(port, data, n)
            globals()["CONC"] = CONC_SAVE
            lb.send_signal(2)
            lb.wait()
            ann = subprocess.run(["callgrind_annotate", out], stdout=subprocess.PIPE,
                                 text=True).stdout
            ir = next(int(line.split()[0].replace(",", "")) for line in ann.splitlines()
                      if "PROGRAM TOTALS" in line)
        res.setdefault(kind, []).append(ir / n)
        print(f"{kind:5s}: {ir / n:.0f} instructions per connection", file=sys.stderr)
    p, s_ = min(res["plain"]), min(res["sni"])
    print(f"hello {len(data)} bytes, {n} connections one at a time, callgrind, io = epoll")
    print(f"plain: {p:.0f} instructions per connection (user space); sni: {s_:.0f}; "
          f"peek: {s_ - p:+.0f} ({(s_ - p) / p * 100:+.1f}%)")


def main():
    be = backend()
    if os.environ.get("CALLGRIND") == "1":
        callgrind(be, hello("www.example.com"))
        return
    fe = {"plain": free_port(), "sni": free_port()}
    rules = "\n".join(f"sni = host{i}.example.com be" for i in range(20))
    ini = f"""[global]
workers = 2
log_level = warn
[frontend plain]
bind = 127.0.0.1:{fe['plain']}
backend = be
[frontend sni]
bind = 127.0.0.1:{fe['sni']}
{rules}
sni = *.example.net be
sni = www.example.com be
backend = be
[backend be]
health = none
server = a 127.0.0.1:{be}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(ini)
    lb = subprocess.Popen([RINGLB, "-c", f.name], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        for p in fe.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p)).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        data = hello("www.example.com")
        res = {k: [] for k in fe}
        for r in range(ROUNDS):
            for k in ("plain", "sni") if r % 2 == 0 else ("sni", "plain"):
                t0 = ticks(lb.pid)
                load(fe[k], data, N)
                us = (ticks(lb.pid) - t0) * 10000 / N
                res[k].append(us)
                print(f"round {r}: {k:5s} {us:.2f} us/conn", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"hello {len(data)} bytes, {N} connections x {ROUNDS} rounds, {CONC} at a time")
        for k in ("plain", "sni"):
            print(f"{k:5s}: median {med[k]:.2f} us CPU per connection "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in res[k])})")
        print(f"sni peek: {med['sni'] - med['plain']:+.2f} us per connection")
    finally:
        lb.terminate()
        lb.wait()
        os.unlink(f.name)


main()
