#!/usr/bin/env python3
"""Balancing through a real ringlb (issue #3).

Four `name` backends answer with their own name and close. roundrobin: 400
connections after the readiness probe land exactly 100 on each (the cursor
is shared by all workers, so any 400 consecutive picks are exactly even).
source: clients bound to 127.0.0.2 ... 127.0.0.9 each make 10 connections;
every connection of one client address reaches the same backend, and the
eight addresses do not all collapse onto one backend.
"""
import collections
import socket

import lbtest
from lbtest import check


def fetch_name(addr, source_ip=None):
    fam, sa = lbtest.parse_addr(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    if source_ip:
        s.bind((source_ip, 0))
    s.connect(sa)
    name = lbtest.recv_until_eof(s).decode().strip()
    s.close()
    return name


def main(t):
    names = ["a", "b", "c", "d"]
    backends = [t.backend("name", name=n) for n in names]

    lb = t.ringlb(frontends=[(None, backends, {"balance": "roundrobin"}),
                             (None, backends, {"balance": "source"})])
    rr_fe, src_fe = lb.fe[0][0], lb.fe[1][0]
    counts = collections.Counter(fetch_name(rr_fe) for _ in range(400))
    check(set(counts) == set(names), f"roundrobin reached every backend: {dict(counts)}")
    check(all(counts[n] == 100 for n in names),
          f"roundrobin is exactly even over 400 connections: {dict(counts)}")
    per_ip = {}
    for i in range(2, 10):
        ip = f"127.0.0.{i}"
        got = {fetch_name(src_fe, ip) for _ in range(10)}
        check(len(got) == 1, f"source: all 10 connections from {ip} reached one backend ({got})")
        per_ip[ip] = got.pop()
    spread = set(per_ip.values())
    check(len(spread) >= 2, f"source: 8 client addresses spread over {len(spread)} backends "
                            f"({per_ip})")


if __name__ == "__main__":
    lbtest.run(main)
