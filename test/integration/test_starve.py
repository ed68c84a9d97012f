#!/usr/bin/env python3
"""A worker's buffer pool running dry never stalls a connection.

Copying shares one pool of receive buffers per worker. Echo traffic is the
case that used to hang for good: every buffer queued towards an echo server
that has stopped reading because it cannot write its answers back, while
the receives that would take those answers wait for a buffer. ringlb runs
with `buffers = 16` (256 KiB per worker, one direction's worth); eight
clients each push 16 MiB through a plain echo server (a thread per
connection with small socket buffers, so it reads only while its writes go
through) and read the echo at the same time. Every byte must come back
intact, and /metrics must show that the pool did run dry (the receives that
found it empty splice until idle). In splice mode the pool is not used: the
transfer must still complete.
"""
import hashlib
import os
import socket

import lbtest
from lbtest import check

CONNS, SIZE = 8, 16 << 20


def echo(s, info):
    # Small socket buffers: the echo's kernel side fills at once, so what
    # ringlb sends it waits in ringlb's queues, as with a busy server.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
    lbtest.forward(s, s)


def main(t):
    t.require_mode()
    be = t.inproc_backend(echo)
    lb, adm = lbtest.admin_ringlb(t, servers=[be], global_opts={"buffers": "16", "workers": "1"})
    data = os.urandom(SIZE)
    digest = hashlib.sha256(data).hexdigest()
    streams = [lbtest.Stream(lbtest.connect(lb.addr), data, half_close=True, until_eof=True,
                             keep=False) for _ in range(CONNS)]
    left = lbtest.pump(streams, timeout=60)
    check(not left, f"{CONNS} clients echoing {SIZE >> 20} MiB each through a 16-buffer pool all "
          f"finish ({len(left)} stalled, at {[st.nrecv for st in left]} bytes back)")
    for i, st in enumerate(streams):
        check(st.error is None and st.nrecv == SIZE and st.hash.hexdigest() == digest,
              f"client {i}: all {SIZE} bytes echoed back intact ({st.nrecv}, {st.error})")
    m = lbtest.admin_metrics(adm)
    starved = sum(v for (name, _), v in m.items() if name == "ringlb_worker_buffer_starved_total")
    if lbtest.MODES[t.mode][1] == "splice":
        lbtest.log(f"  splice mode: the pool ran dry {starved:.0f} times")
    else:
        check(starved > 0, f"the pool ran dry and was worked around ({starved:.0f} times)")


lbtest.run(main)
