#!/usr/bin/env python3
"""An abortive close on one side reaches the other side as an abortive close.

1. The server sends 50,000 bytes, then resets the connection (SO_LINGER 0)
   once they have left its socket: the client must get the bytes ringlb
   had and then ECONNRESET, never a clean EOF, which would make a
   truncated reply look complete (a FIN is what it used to get).
2. The client resets after its request reached the server: the server
   must see ECONNRESET, not EOF.
"""
import fcntl
import socket
import struct
import termios
import threading
import time

import lbtest
from lbtest import check

SIZE = 50000
RST = struct.pack("ii", 1, 0)
seen = {}  # what the server saw in case 2
done = threading.Event()


def unsent(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def server(s, info):
    first = s.recv(16)
    if first == b"RESETME":
        s.sendall(b"r" * SIZE)
        deadline = time.monotonic() + 10
        while unsent(s) and time.monotonic() < deadline:
            time.sleep(0.01)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
        s.close()
        return
    if first != b"hello":
        return  # ringlb's readiness probe, or another client
    s.sendall(b"ok")
    try:
        while True:
            b = s.recv(4096)
            if not b:
                seen["end"] = "EOF"
                break
    except ConnectionResetError:
        seen["end"] = "reset"
    except OSError as e:
        seen["end"] = repr(e)
    done.set()


def main(t):
    be = t.inproc_backend(server)
    lb = t.ringlb(servers=[be])

    c = lbtest.connect(lb.addr, timeout=10)
    c.sendall(b"RESETME")
    got, end = 0, None
    try:
        while True:
            b = c.recv(65536)
            if not b:
                end = "EOF"
                break
            got += len(b)
    except ConnectionResetError:
        end = "reset"
    c.close()
    check(end == "reset", f"server reset after {SIZE} bytes: the client got {got} bytes, "
                          f"then {end} (a reset, not a clean EOF)")

    c = lbtest.connect(lb.addr, timeout=10)
    c.sendall(b"hello")
    check(c.recv(2) == b"ok", "the request reached the server")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
    c.close()
    check(done.wait(10), "the server saw the connection end")
    check(seen.get("end") == "reset", f"client reset: the server saw {seen.get('end')}")


if __name__ == "__main__":
    lbtest.run(main)
