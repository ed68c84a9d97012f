#!/usr/bin/env python3
"""lb.ini replaced by a FIFO (issue #19, item 1).

Reading a FIFO blocks until someone writes to it; ringlb used to open the
config path in the main thread, which then blocked in open() on SIGHUP and
never got to SIGTERM. Checked:

1. ringlb -t -c FIFO and ringlb -c FIFO exit 1 at once (no writer ever
   comes) with "FIFO: cannot read: a FIFO, not a regular file".
2. A running ringlb whose config path becomes a FIFO logs a rejected
   reload on SIGHUP, keeps serving with the old config, and exits 0 soon
   after SIGTERM.
"""
import os
import signal
import subprocess

import lbtest
from lbtest import check



def main(t):
    t.require_mode()
    fifo = os.path.join(t.dir, "fifo.ini")
    os.mkfifo(fifo)
    for args in (["-t", "-c", fifo], ["-c", fifo]):
        try:
            r = subprocess.run([lbtest.RINGLB, *args], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=10)
            rc, err = r.returncode, r.stderr.strip()
        except subprocess.TimeoutExpired:
            rc, err = "still running after 10s (blocked on the FIFO)", ""
        check(rc == 1 and f"{fifo}: cannot read: a FIFO, not a regular file" in err,
              f"ringlb {' '.join(args[:-2])} -c FIFO exits 1 with a clear error "
              f"(exit {rc}, {err!r})")

    echo = t.backend("echo")
    lb = t.ringlb(servers=[echo])
    check(lbtest.echoes(lb.addr), "ringlb serves")
    with open(lb.cfgpath) as f:
        text = f.read()
    os.unlink(lb.cfgpath)
    os.mkfifo(lb.cfgpath)
    try:
        lb.signal(signal.SIGHUP)
        _, line = lbtest.wait_log(lb, r"reload rejected: .*a FIFO, not a regular file", 10)
        check(True, f"SIGHUP on a FIFO config is rejected: {line.split(' ', 2)[-1]}")
        check(lb.alive() and lbtest.echoes(lb.addr), "the running config keeps serving")
        lb.signal(signal.SIGTERM)
        rc = lb.wait_exit(10)
        check(rc == 0, f"ringlb exits 0 on SIGTERM after the rejected reload (exit {rc})")
    finally:
        # A regular file again, so that printing the config on failure
        # does not block this test on the FIFO as it blocked ringlb.
        os.unlink(lb.cfgpath)
        with open(lb.cfgpath, "w") as f:
            f.write(text)


if __name__ == "__main__":
    lbtest.run(main)
