#!/usr/bin/env python3
"""64 MiB of random bytes each way through ringlb to an echo backend.

The client sends and receives concurrently (one non-blocking loop), so
neither side can deadlock on full buffers; what comes back must have the
same length and SHA-256 as what went out. A second, smaller transfer goes
through a sink backend, which reports what it received, so the upstream
direction is checked on its own too.
"""
import hashlib
import os
import time

import lbtest
from lbtest import check

SIZE = 64 << 20


def main(t):
    echo = t.backend("echo")
    sink = t.backend("sink")
    lb = t.ringlb(frontends=[(None, [echo], None), (None, [sink], None)])
    data = os.urandom(SIZE)
    want = hashlib.sha256(data).hexdigest()

    t0 = time.monotonic()
    st = lbtest.Stream(lbtest.connect(lb.addr), data, half_close=True, until_eof=True,
                       keep=False)
    left = lbtest.pump([st], timeout=60)
    dt = time.monotonic() - t0
    check(not left, f"64 MiB echo finished within 60s ({dt:.2f}s)")
    check(st.error is None, f"no socket error on the echo stream ({st.error})")
    check(st.sent == SIZE, f"sent all {SIZE} bytes (sent {st.sent})")
    check(st.nrecv == SIZE, f"received {SIZE} bytes back (got {st.nrecv})")
    check(st.hash.hexdigest() == want, "SHA-256 of the echoed bytes matches what was sent")
    check(st.eof, "EOF after the echo (half-close forwarded both ways)")
    st.sock.close()
    lbtest.log(f"  64 MiB each way in {dt:.2f}s ({2 * SIZE / dt / 1e6:.0f} MB/s both directions)")

    # Upstream on its own: the sink hashes what it got and reports on EOF.
    st = lbtest.Stream(lbtest.connect(lb.fe[1][0]), data[:16 << 20], expect=0, half_close=True,
                       until_eof=True)
    left = lbtest.pump([st], timeout=30)
    check(not left and st.error is None, f"16 MiB to a sink finished ({st.error})")
    report = bytes(st.received).decode(errors="replace").split()
    check(report == [str(16 << 20), hashlib.sha256(data[:16 << 20]).hexdigest()],
          f"sink backend received exactly the 16 MiB sent (reported {report})")


if __name__ == "__main__":
    lbtest.run(main)
