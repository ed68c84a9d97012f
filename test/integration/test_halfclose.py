#!/usr/bin/env python3
"""Half-close is forwarded in both directions.

1. Client -> backend: the client sends 1 MiB, shuts down its write side and
   must still receive the whole echo, then EOF (the echo backend shuts down
   only after it saw the forwarded FIN).
2. Delayed reply: the backend reads until EOF, waits 300 ms, then answers
   with a digest of what it got. A proxy that closes the connection on the
   client's FIN instead of forwarding it loses this reply.
3. Backend -> client: the backend sends a greeting and shuts down its write
   side first; the client sees the greeting then EOF, and can still send
   512 KiB that the backend receives in full, followed by EOF.
"""
import hashlib
import os
import socket
import time

import lbtest
from lbtest import check


def delayed_reply(sock, info):
    data = lbtest.recv_until_eof(sock)
    info["got"] = len(data)
    # The scenario, not a wait: a reply that comes well after the client's
    # FIN, which a proxy that closes on that FIN would lose.
    time.sleep(0.3)
    sock.sendall(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode() + data[:4096])
    sock.shutdown(socket.SHUT_WR)


def greet_first(sock, info):
    sock.sendall(b"greetings\n")
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(20)
    data = lbtest.recv_until_eof(sock)
    info["got"] = data
    info["eof"] = time.monotonic()


def main(t):
    echo = t.backend("echo")
    delayed = t.inproc_backend(delayed_reply)
    greet = t.inproc_backend(greet_first)
    lb = t.ringlb(frontends=[(None, [echo], None), (None, [delayed], None),
                             (None, [greet], None)])

    # 1. client half-closes, echo keeps flowing back.
    data = os.urandom((1 << 20) + 12345)
    s = lbtest.connect(lb.fe[0][0], timeout=20)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = lbtest.recv_until_eof(s)
    s.close()
    check(len(got) == len(data), f"after SHUT_WR the whole echo came back ({len(got)} of "
                                 f"{len(data)} bytes) followed by EOF")
    check(got == data, "echoed bytes identical to those sent")

    # 2. reply produced only after the backend saw EOF.
    data = os.urandom(300000)
    s = lbtest.connect(lb.fe[1][0], timeout=20)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = lbtest.recv_until_eof(s)
    s.close()
    line, _, rest = got.partition(b"\n")
    check(line.decode(errors="replace") == f"{len(data)} {hashlib.sha256(data).hexdigest()}",
          "backend saw the client's FIN and all its bytes; its late reply reached the client "
          f"(reply line {line[:80]!r})")
    check(rest == data[:4096], "late reply body intact, then EOF")

    # 3. backend half-closes first; client keeps sending.
    s = lbtest.connect(lb.fe[2][0], timeout=20)
    got = lbtest.recv_until_eof(s)
    check(got == b"greetings\n", f"backend's greeting then EOF reached the client ({got!r})")
    data = os.urandom(512 * 1024)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    try:
        tail = lbtest.recv_until_eof(s)
        err = None
    except OSError as e:
        tail, err = b"", e
    s.close()
    lbtest.wait_until(lambda: greet.conns and "closed" in greet.conns[-1],
                      "the greeting backend's connection closed", timeout=10)
    info = greet.conns[-1] if greet.conns else {}
    check("error" not in info, f"backend read without error ({info.get('error')})")
    check(info.get("got") == data, "after its own SHUT_WR the backend still received all "
                                   f"{len(data)} bytes from the client "
                                   f"(got {len(info.get('got') or b'')}), then EOF")
    check(tail == b"" and err is None, f"client then saw a clean EOF (extra {tail[:40]!r}, "
                                       f"error {err})")
    check(lb.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
