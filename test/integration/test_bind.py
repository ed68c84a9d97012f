#!/usr/bin/env python3
"""Every bind form and server address form carries traffic.

One frontend binds 127.0.0.1:PORT, [::1]:PORT and unix:/path; its backend
has one server given as [::1]:PORT (an IPv6 echo backend). A second
frontend's server is given by host name (localhost). A 256 KiB echo must
round-trip through each bind. After SIGTERM, a restart with the same config
must bind the same unix path again (a stale socket file must not stop it).
"""
import os
import signal
import socket

import lbtest
from lbtest import check


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def roundtrip(addr, n=256 * 1024):
    data = os.urandom(n)
    st = lbtest.Stream(lbtest.connect(addr), data, half_close=True, until_eof=True)
    left = lbtest.pump([st], 20)
    st.sock.close()
    return not left and st.error is None and bytes(st.received) == data


def main(t):
    if not have_ipv6():
        raise lbtest.Skip("no IPv6 loopback (::1) here")
    echo6 = t.backend("echo", listen="[::1]:0")
    echo4 = t.backend("echo")
    port4 = echo4.addr.rsplit(":", 1)[1]
    sock_path = os.path.join(t.dir, "fe.sock")
    binds = [f"127.0.0.1:{lbtest.free_port()}", f"[::1]:{lbtest.free_port('::1')}",
             f"unix:{sock_path}"]
    lb = t.ringlb(frontends=[(binds, [echo6], None),
                             (None, [f"localhost:{port4}"], None)])
    for b in binds:
        check(roundtrip(b), f"256 KiB echoed through bind {b} to server {echo6.addr}")
    check(roundtrip(lb.fe[1][0]), f"256 KiB echoed to a server given as localhost:{port4}")

    lb.signal(signal.SIGTERM)
    rc = lb.wait_exit(5)
    check(rc == 0, f"ringlb exited 0 on SIGTERM (exit {rc})")
    lb2 = t.ringlb(frontends=[(binds, [echo6], None),
                              (None, [f"localhost:{port4}"], None)])
    check(roundtrip(f"unix:{sock_path}"), "restart binds the same unix path again and serves it")
    check(lb2.alive(), "ringlb still running")


if __name__ == "__main__":
    lbtest.run(main)
