#!/usr/bin/env python3
"""A reload that drops a unix: bind leaves nothing behind in the workers.

The unix listener is shared by the workers and closed by the main thread
once they have let go of it. Under epoll the workers used to keep it in
their epoll sets and records, so the next socket to get its descriptor
number was taken for registered when it was not: that connection hung
until idle_timeout (1 in 200 here), and held up shutdown for the whole
grace period. After the reload, 200 echo connections in a row through
the TCP bind must each be answered, the unix path must refuse clients,
and ringlb must stop within a few seconds of SIGTERM.
"""
import os
import signal
import socket
import time

import lbtest
from lbtest import check

N = 200



def main(t):
    echo = t.backend("echo")
    path = os.path.join(t.dir, "fe.sock")
    tcp = f"127.0.0.1:{lbtest.free_port()}"
    lb = t.ringlb(servers=[echo], binds=[tcp, f"unix:{path}"],
                  global_opts={"shutdown_grace": "30s"})
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    u.close()
    with open(lb.cfgpath) as f:
        text = f.read()
    with open(lb.cfgpath, "w") as f:
        f.write(text.replace(f"bind = unix:{path}\n", ""))
    lb.signal(signal.SIGHUP)
    lbtest.wait_log(lb, r"reload: .* is in use", 10)
    check(not os.path.exists(path), "the dropped unix socket file is removed")
    bad = [i for i in range(N) if not lbtest.echoes(tcp, f"hello {i}\n".encode())]
    check(not bad, f"all {N} connections after the reload answered (failed or hung: {bad[:10]})")
    t0 = time.monotonic()
    lb.signal(signal.SIGTERM)
    rc = lb.wait_exit(15)
    check(rc == 0, f"ringlb exited 0 on SIGTERM ({rc}) in {time.monotonic() - t0:.1f} s, "
                   f"not after the 30 s grace")


if __name__ == "__main__":
    lbtest.run(main)
