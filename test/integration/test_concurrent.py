#!/usr/bin/env python3
"""200 concurrent connections through ringlb, each echoing its own random data.

All 200 are connected (and have made a first round trip through the backend)
before any bulk data moves, so they really are open at the same time; sizes
vary from a few bytes to 1 MiB. Every connection must get back exactly the
bytes it sent, in order: nothing lost, duplicated, reordered or crossed
between connections.
"""
import os
import random
import time

import lbtest
from lbtest import check

N = 200
MAX = 1 << 20


def sizes(rng):
    # Log-uniform between 1 byte and 1 MiB, plus a few at the edges.
    out = [int(2 ** rng.uniform(0, 20)) for _ in range(N)]
    out[0], out[1], out[2], out[3] = 1, MAX, MAX, 65536
    return out


def main(t):
    echo = t.backend("echo")
    lb = t.ringlb(servers=[echo])
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    lens = sizes(rng)
    lbtest.log(f"  seed {seed}, {sum(lens)} bytes over {N} connections")

    socks = []
    for i in range(N):
        socks.append(lbtest.connect(lb.addr, timeout=10))
    # One small round trip on each: all N are now proxied end to end.
    hello = [lbtest.Stream(s, f"hello {i}\n".encode()) for i, s in enumerate(socks)]
    left = lbtest.pump(hello, timeout=20)
    check(not left, f"all {N} connections open and echoing at once ({len(left)} stuck)")
    bad = [i for i, st in enumerate(hello)
           if st.error or bytes(st.received) != f"hello {i}\n".encode()]
    check(not bad, f"first round trip correct on every connection (bad: {bad[:10]})")

    payloads = [rng.randbytes(n) for n in lens]
    streams = [lbtest.Stream(s, p, chunk=64 * 1024) for s, p in zip(socks, payloads)]
    t0 = time.monotonic()
    left = lbtest.pump(streams, timeout=45)
    dt = time.monotonic() - t0
    check(not left, f"all {N} transfers finished within 45s ({dt:.2f}s, {len(left)} stuck)")
    errs = [(i, st.error) for i, st in enumerate(streams) if st.error]
    check(not errs, f"no connection saw an error or reset (got {errs[:5]})")
    eofs = [i for i, st in enumerate(streams) if st.eof]
    check(not eofs, f"no connection closed early (early EOF on {eofs[:10]})")
    wrong = []
    for i, (st, p) in enumerate(zip(streams, payloads)):
        if bytes(st.received) != p:
            got = bytes(st.received)
            at = next((k for k in range(min(len(got), len(p))) if got[k] != p[k]),
                      min(len(got), len(p)))
            wrong.append(f"#{i}: sent {len(p)} got {len(got)}, first difference at {at}")
    check(not wrong, "every connection got back exactly its own bytes in order"
          + ("" if not wrong else f": {wrong[:5]}"))

    # Orderly close of all N: each half-closes and must see EOF.
    closes = [lbtest.Stream(st.sock, b"", half_close=True, until_eof=True) for st in streams]
    left = lbtest.pump(closes, timeout=20)
    check(not left and not any(c.error for c in closes) and all(c.nrecv == 0 for c in closes),
          f"all {N} connections closed cleanly after half-close")
    for s in socks:
        s.close()
    check(lb.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
