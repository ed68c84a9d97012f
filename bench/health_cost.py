#!/usr/bin/env python3
"""health_cost.py - what the health checker costs, and how fast it notices.

  bench/health_cost.py [--servers 1000] [--interval 1s] [--health tcp|http]
                       [--seconds 20] [--ringlb build/ringlb]

Starts one process listening on N loopback ports (it accepts, answers
"HTTP/1.0 200" to http probes and closes), ringlb with one backend of those
N servers (workers = 1, no client traffic), and reads the CPU time of
ringlb's "ringlb-health" thread from /proc over --seconds: that is the
checker's added cost. Then it measures detection time: a separate backend
on its own port is killed (SIGKILL) and the time to ringlb's "is DOWN" log
line is reported, over 5 kills, with the defaults fall = 3, interval 1s,
timeout 500ms and no traffic (only probes notice). stdlib only.
"""
import argparse
import datetime
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def serve_ports(n, ready_w):
    """Child: listens on n ports, prints them, serves probes forever."""
    sel = selectors.DefaultSelector()
    ports = []
    for _ in range(n):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, "listen")
        ports.append(ls.getsockname()[1])
    os.write(ready_w, (" ".join(map(str, ports)) + "\n").encode())
    while True:
        for key, _ in sel.select():
            if key.data == "listen":
                try:
                    c, _ = key.fileobj.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, "conn")
            else:
                c = key.fileobj
                try:
                    data = c.recv(4096)
                    if data:
                        c.send(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass
                sel.unregister(c)
                c.close()


def thread_cpu(pid, name):
    """CPU seconds used so far by the thread of <pid> called <name>, from
    schedstat (exact run time; utime/stime are sampled at the clock tick,
    which a thread that wakes on a 10 ms grain aliases with)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                return int(f.read().split()[0]) / 1e9
        except OSError:
            continue
    raise RuntimeError(f"no thread {name} in {pid}")


def log_time(line):
    stamp = line.split(" ", 1)[0]
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--health", default="tcp", choices=["tcp", "http"])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--io", default="auto", choices=["auto", "uring", "epoll"])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--ringlb", default=os.path.join(REPO, "build", "ringlb"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="health-cost-")
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        serve_ports(args.servers, w)
        os._exit(0)
    os.close(w)
    ports = os.fdopen(r).readline().split()
    victim = subprocess.Popen([sys.executable, os.path.join(HERE, "backend.py"), "--listen",
                               "127.0.0.1:0", "--mode", "http", "--name", "victim"],
                              stdout=subprocess.PIPE)
    vaddr = re.search(r"listening on (\S+)", victim.stdout.readline().decode()).group(1)
    fe = socket.socket()
    fe.bind(("127.0.0.1", 0))
    feport = fe.getsockname()[1]
    fe.close()
    cfg = os.path.join(work, "lb.ini")
    with open(cfg, "w") as f:
        f.write(f"[global]\nworkers = 1\nio = {args.io}\nadmin =\n"
                f"[frontend fe]\nbind = 127.0.0.1:{feport}\nbackend = many\n"
                f"[backend many]\nhealth = {args.health}\nhealth_interval = {args.interval}\n")
        f.writelines(f"server = s{i} 127.0.0.1:{p}\n" for i, p in enumerate(ports))
        f.write(f"[frontend fe2]\nbind = 127.0.0.1:{feport + 1 if feport < 65535 else 1}\n"
                f"backend = one\n[backend one]\nhealth = {args.health}\n"
                f"server = victim {vaddr}\n")
    logp = os.path.join(work, "ringlb.log")
    lb = subprocess.Popen([args.ringlb, "-c", cfg], stderr=open(logp, "wb"))
    try:
        time.sleep(3)  # first probes spread over one interval
        c0, t0 = thread_cpu(lb.pid, "ringlb-health"), time.monotonic()
        time.sleep(args.seconds)
        c1, t1 = thread_cpu(lb.pid, "ringlb-health"), time.monotonic()
        downs = open(logp).read().count("is DOWN")
        print(f"checker CPU, {args.servers + 1} servers, health = {args.health}, interval "
              f"{args.interval}, io {args.io}: {100 * (c1 - c0) / (t1 - t0):.2f}% of one core "
              f"over {t1 - t0:.0f}s ({downs} servers marked down)")
        delays = []
        for _ in range(args.kills):
            t_kill = time.time()
            victim.kill()
            victim.wait()
            while True:
                lines = [ln for ln in open(logp).read().splitlines() if "one/victim is DOWN" in ln]
                if lines and log_time(lines[-1]) >= t_kill:
                    delays.append(log_time(lines[-1]) - t_kill)
                    break
                time.sleep(0.02)
            victim = subprocess.Popen([sys.executable, os.path.join(HERE, "backend.py"),
                                       "--listen", vaddr, "--mode", "http", "--name", "victim"],
                                      stdout=subprocess.PIPE)
            victim.stdout.readline()
            while True:
                lines = [ln for ln in open(logp).read().splitlines() if "one/victim is UP" in ln]
                if lines and log_time(lines[-1]) >= t_kill:
                    break
                time.sleep(0.05)
        if delays:
            print(f"detection (kill -> DOWN, no traffic, fall 3, interval 1s, timeout 500ms): "
                  f"min {min(delays):.2f}s, mean {sum(delays) / len(delays):.2f}s, "
                  f"max {max(delays):.2f}s over {len(delays)} kills")
    finally:
        lb.send_signal(signal.SIGTERM)
        lb.wait()
        victim.kill()
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
