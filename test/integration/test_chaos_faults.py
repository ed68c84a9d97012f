#!/usr/bin/env python3
"""Chaos (issue #13): each fault type, measured from outside.

One echo server behind ringlb with chaos = on. For each type a fault is
added through POST /api/faults, a fresh client connection measures what it
does, and DELETE takes it away again:

 - latency 100 ms (downstream, frontend scope; upstream, server scope):
   a round trip takes 100..200 ms more than without; after DELETE a new
   connection is fast again, and so is one opened while the fault was on
   (it lets go of a removed fault);
 - bandwidth 100 KB/s: 400 KB echoed back take 3.5..6 s, every byte intact;
 - reset_peer 200 ms: the client's read fails with ECONNRESET;
 - limit_data 1000 bytes: exactly the first 1000 bytes, then EOF;
 - slicer (average 100 bytes, 2 ms apart): the same bytes in many reads;
 - slow_close 800 ms: the echo comes at once, the EOF 0.8 s later;
 - timeout 0: nothing comes back while the fault is on; after DELETE the
   held bytes arrive; timeout 300 ms: the connection is closed.

The bounds come from the fault's own numbers; the upper ones have room for
a loaded machine (they are the issue's tolerances).
"""
import json
import socket
import threading
import time

import lbtest
from lbtest import check


def add(adm, **fault):
    if "server" not in fault:
        fault["frontend"] = "fe0"
    st, _, body = lbtest.admin_request(adm, "POST", "/api/faults", body=json.dumps(fault))
    check(st == 201, f"fault {fault['name']} added ({st}: {body!r})")


def delete(adm, name):
    st, _, body = lbtest.admin_request(adm, "DELETE", f"/api/faults/{name}")
    check(st == 200, f"fault {name} deleted ({st}: {body!r})")


def rtt(sock, msg=b"ping\n"):
    t0 = time.monotonic()
    sock.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = sock.recv(65536)
        if not b:
            raise lbtest.Fail(f"EOF after {got!r}")
        got += b
    check(got == msg, f"echo of {msg!r}")
    return time.monotonic() - t0


def fresh_rtt(addr):
    with lbtest.connect(addr) as s:
        return rtt(s)


def best_rtt(addr, n=3):
    """The fastest of <n> fresh connections' round trips: a fault's delay
    shows in every one, a loaded machine's only in some."""
    return min(fresh_rtt(addr) for _ in range(n))


def echo_all(addr, payload, timeout=20.0):
    """Sends <payload> from a thread, reads until EOF or len(payload) bytes;
    returns (data, number of reads, seconds, error)."""
    s = lbtest.connect(addr, timeout=timeout)
    threading.Thread(target=lambda: s.sendall(payload), daemon=True).start()
    got, reads, err = bytearray(), 0, None
    t0 = time.monotonic()
    try:
        while len(got) < len(payload):
            b = s.recv(65536)
            if not b:
                break
            got += b
            reads += 1
    except OSError as e:
        err = e
    secs = time.monotonic() - t0
    s.close()
    return bytes(got), reads, secs, err


def main(t):
    be = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[be], global_opts={"chaos": "on"})
    fe = lb.addr
    base = best_rtt(fe, 5)
    lbtest.log(f"  round trip without faults: {base * 1000:.1f} ms at best")

    # latency, downstream, frontend scope.
    add(adm, name="lat", type="latency", stream="downstream", attributes={"latency": 100})
    held = lbtest.connect(fe)
    rtts = [fresh_rtt(fe) for _ in range(3)]
    check(min(rtts) >= 0.100 and min(rtts) <= 0.200 + base,
          f"latency 100 ms: round trips {[round(x * 1000) for x in rtts]} ms")
    d = rtt(held)
    check(d >= 0.100, f"a connection opened under the fault is slowed ({d * 1000:.0f} ms)")
    delete(adm, "lat")
    d = best_rtt(fe)
    check(d < 0.100, f"after DELETE a new connection is fast again ({d * 1000:.0f} ms)")
    lbtest.wait_until(lambda: min(rtt(held) for _ in range(3)) < 0.100,
                      "the connection opened under the fault lets go of it")
    held.close()

    # latency, upstream, server scope: applied once the server connection is up.
    add(adm, name="lat-up", type="latency", stream="upstream", attributes={"latency": 100},
        server="be0/s0")
    rtts = [fresh_rtt(fe) for _ in range(3)]
    check(min(rtts) >= 0.100 and min(rtts) <= 0.200 + base,
          f"upstream latency on be0/s0: round trips {[round(x * 1000) for x in rtts]} ms")
    delete(adm, "lat-up")

    # bandwidth: 400 KB at 100 KB/s.
    payload = bytes(range(256)) * 1600  # 409,600 bytes
    add(adm, name="bw", type="bandwidth", attributes={"rate": 100})
    data, _, secs, err = echo_all(fe, payload)
    delete(adm, "bw")
    check(err is None and data == payload, f"bandwidth: every byte back ({len(data)}, {err})")
    check(3.5 <= secs * 409600 / 400000 <= 6.0,
          f"bandwidth 100 KB/s: 400 KB in {secs * 400000 / 409600:.2f} s")

    # reset_peer: ECONNRESET after 200 ms.
    add(adm, name="rst", type="reset_peer", attributes={"timeout": 200})
    s = lbtest.connect(fe)
    rtt(s)
    try:
        b = s.recv(100)
        check(False, f"reset_peer: expected ECONNRESET, got {b!r}")
    except ConnectionResetError:
        lbtest.log("  reset_peer: ECONNRESET")
    s.close()
    delete(adm, "rst")

    # limit_data: exactly 1000 bytes, then EOF.
    add(adm, name="lim", type="limit_data", attributes={"bytes": 1000})
    payload = bytes(range(256)) * 20
    data, _, _, err = echo_all(fe, payload)
    delete(adm, "lim")
    check(err is None and data == payload[:1000],
          f"limit_data 1000: got {len(data)} bytes then EOF ({err}), the first 1000 sent")

    # slicer: same bytes, many reads.
    add(adm, name="sl", type="slicer",
        attributes={"average_size": 100, "size_variation": 20, "delay": 2000})
    payload = bytes(range(256)) * 20  # 5,120 bytes: 43..64 slices
    data, reads, _, err = echo_all(fe, payload)
    delete(adm, "sl")
    check(err is None and data == payload, f"slicer: every byte in order ({len(data)}, {err})")
    check(reads >= 20, f"slicer: 5,120 bytes arrived in {reads} reads")

    # slow_close: the data at once, the FIN 800 ms later.
    add(adm, name="sc", type="slow_close", attributes={"delay": 800})
    s = lbtest.connect(fe)
    t0 = time.monotonic()
    s.sendall(b"bye\n")
    s.shutdown(socket.SHUT_WR)
    got = s.recv(100)
    t_data = time.monotonic() - t0
    rest = s.recv(100)
    t_eof = time.monotonic() - t0
    s.close()
    delete(adm, "sc")
    check(got == b"bye\n" and rest == b"", f"slow_close: data then EOF ({got!r}, {rest!r})")
    check(t_eof >= 0.8 and t_eof - t_data >= 0.5,
          f"slow_close 800 ms: data after {t_data * 1000:.0f} ms, EOF after {t_eof * 1000:.0f} ms")

    # timeout 0: held until the fault goes.
    add(adm, name="hold", type="timeout", attributes={"timeout": 0})
    s = lbtest.connect(fe, timeout=1.0)
    s.sendall(b"held\n")
    try:
        b = s.recv(100)
        check(False, f"timeout 0 holds the data, got {b!r}")
    except socket.timeout:
        lbtest.log("  timeout 0: nothing for 1 s")
    delete(adm, "hold")
    s.settimeout(5.0)
    check(s.recv(100) == b"held\n", "after DELETE the held bytes arrive")
    s.close()

    # timeout 300 ms: the connection is closed.
    add(adm, name="to", type="timeout", attributes={"timeout": 300})
    s = lbtest.connect(fe, timeout=5.0)
    s.sendall(b"x\n")
    t0 = time.monotonic()
    try:
        b = s.recv(100)
    except ConnectionResetError:
        b = b""
    d = time.monotonic() - t0
    s.close()
    delete(adm, "to")
    check(b == b"" and d >= 0.25, f"timeout 300 ms closes the connection ({b!r} after {d:.2f} s)")

    st, _, body = lbtest.admin_request(adm, "GET", "/api/faults")
    check(json.loads(body)["faults"] == [], "no fault left")
    check(best_rtt(fe) < 0.100, "clean round trip at the end")


if __name__ == "__main__":
    lbtest.run(main)
