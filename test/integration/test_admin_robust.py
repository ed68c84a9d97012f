#!/usr/bin/env python3
# run-once: the admin server runs its own epoll loop, whatever the workers' io mode
"""Admin API (issue #6): malformed, oversized and slow requests get their
error status and a close, and the admin server keeps answering others
meanwhile; ringlb survives random bytes.

The request deadline is ADMIN_REQ_TIMEOUT_MS (5 s): a slowloris client
gets 408 after it, and the slots it held are free again. That deadline is
most of the test's time; the admin server does not use the workers' event
loop, so the test runs once (its one connection through ringlb only checks
that the data path survived).
"""
import random
import re
import select
import threading

import lbtest
from lbtest import check

H = b"Host: ADMIN\r\n"  # replaced by the admin address: every HTTP/1.1 request needs it
J = b"Content-Type: application/json\r\n"  # and every write this (issue #19)

CASES = [
    (b"\x00\x01\x02\x03garbage\r\n\r\n", 400, "binary garbage"),
    (b"hello\r\n\r\n", 400, "a line that is no request"),
    (b"GET / FOO\r\n\r\n", 400, "a bad version field"),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 in a request line"),
    (b"get /metrics HTTP/1.1\r\n\r\n", 400, "a lower-case method"),
    (b"GET metrics HTTP/1.1\r\n\r\n", 400, "a target without '/'"),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 414, "a 2000-byte target"),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"x" * 20000 + b"\r\n\r\n", 431, "a 20 KB header"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431, "100 headers"),
    (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "a header name with a space"),
    (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "a header without ':'"),
    (b"POST /api/backends/be0/servers/s0/drain HTTP/1.1\r\nContent-Length: 999999\r\n\r\n",
     413, "a 999999-byte body"),
    (b"POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400, "a bad Content-Length"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "chunked"),
    (b"GET /nothing-here HTTP/1.1\r\n" + H + b"\r\n", 404, "an unknown path"),
    (b"DELETE /metrics HTTP/1.1\r\n" + H + J + b"\r\n", 405, "DELETE /metrics"),
    (b"GET /metrics HTTP/1.0\r\n\r\n", 200, "a plain HTTP/1.0 GET"),
    (b"HEAD /stats HTTP/1.1\r\n" + H + b"\r\n", 200, "HEAD /stats"),
    (b"HEAD /stats HTTP/1.1\r\nHost: x\r\n\r\n", 421, "HEAD /stats with a foreign Host"),
    (b"POST /api/backends/be0/servers/s0/enable HTTP/1.1\r\n" + H + J +
     b"Content-Length: 5\r\n\r\nhello", 200, "a POST with a small body"),
]


def main(t):
    be = t.backend("name", name="a")
    lb, adm = lbtest.admin_ringlb(t, servers=[be])

    for data, want, what in CASES:
        st, out, _ = lbtest.admin_raw(adm, data.replace(b"Host: ADMIN", b"Host: " + adm.encode()))
        check(st == want, f"{what}: {want} (got {st}, {out[:40]!r})")
    st, out, _ = lbtest.admin_raw(adm, b"HEAD /stats HTTP/1.1\r\nHost: " + adm.encode() +
                                  b"\r\n\r\n")
    check(out.endswith(b"\r\n\r\n"), "HEAD gets headers only")

    # Slowloris: one byte every 0.2 s, a request that would take some 46 s
    # to send, far past the 5 s deadline.
    slow_req = (b"GET /metrics HTTP/1.1\r\nHost: " + adm.encode() + b"\r\nX-Slow: " +
                b"a" * 200)
    res = {"sent": 0}

    def slow():
        s = lbtest.connect(adm, timeout=30)
        out = b""
        try:
            for i in range(len(slow_req)):
                s.sendall(slow_req[i:i + 1])
                res["sent"] = i + 1
                # Paces the bytes; stops sending once the server answers.
                if select.select([s], [], [], 0.2)[0]:
                    break
        except OSError:
            pass  # the server answered and closed between two bytes
        res["sent_at_answer"] = res["sent"]
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except OSError:
            pass  # a reset after the answer
        finally:
            s.close()
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
        res["slow"] = int(m.group(1)) if m else None

    th = threading.Thread(target=slow, daemon=True)
    th.start()
    lbtest.wait_until(lambda: res["sent"] >= 5, "the slowloris client sending its first bytes", 10)
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics")
    # Were the admin server stuck on the slow client, this answer would come
    # only after the slow client's own.
    check(st == 200 and "slow" not in res,
          "a normal scrape is answered while the slowloris client still trickles")
    # 70 idle clients: 64 take every slot, and each one after that makes the
    # longest idle one make room (408 and a close; issue #19).
    idle = []
    for _ in range(70):
        idle.append(lbtest.connect(adm))
    th.join(60)
    check(res.get("slow") == 408, f"slowloris gets 408 ({res.get('slow')})")
    check(res.get("sent_at_answer", len(slow_req)) < len(slow_req),
          f"the 408 came at the deadline, before the slow request was all sent "
          f"({res.get('sent_at_answer')} of {len(slow_req)} bytes)")
    # Past their deadline every idle client was answered 408 and let go.
    answered = 0
    for s in idle:
        s.settimeout(15)
        try:
            b = s.recv(64)
            answered += b.startswith(b"HTTP/1.1 408") or b.startswith(b"HTTP/1.1 503") or b == b""
        except OSError:
            pass
        s.close()
    check(answered == 70, f"70 idle clients were each answered 408/503 or closed ({answered})")
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics")
    check(st == 200, "the admin server answers after the idle flood")

    # Random bytes, half-sent requests and early closes.
    rng = random.Random(6)
    for i in range(150):
        n = rng.randrange(1, 300)
        data = bytes(rng.randrange(256) for _ in range(n))
        if i % 3 == 0:
            data = b"GET /" + data + b"\r\n\r\n"
        s = lbtest.connect(adm)
        try:
            s.sendall(data)
            if i % 5 == 0:
                s.close()  # gone before the answer
                continue
            s.settimeout(8)
            ans = s.recv(64)
            if ans and not ans.startswith(b"HTTP/1.1 "):
                raise lbtest.Fail(f"random input {data[:30]!r} got {ans!r}")
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()
    check(lb.alive(), "ringlb survived 150 random requests")
    st, _, body = lbtest.admin_request(adm, "GET", "/api/backends")
    check(st == 200 and b'"s0"' in body, "the admin server still answers")
    check(lbtest.connect(lb.addr).recv(8) == b"a\n", "the data path still works")


if __name__ == "__main__":
    lbtest.run(main)
