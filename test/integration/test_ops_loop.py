#!/usr/bin/env python3
"""A server that is ringlb's own frontend is refused (issue #19, item 4).

Such a config used to pass `ringlb -t`; then one client was proxied back
into ringlb again and again until max_conns was spent. test_cli checks
`-t`; here:

1. ringlb -c with such a config exits 1 without listening, naming the
   server's line and the frontend.
2. a reload to such a config (the server moved onto the frontend's
   address) is rejected, and the running config serves on.
"""
import signal
import subprocess

import lbtest
from lbtest import check



def main(t):
    t.require_mode()
    port = lbtest.free_port()
    path, _ = t.config(servers=[f"127.0.0.1:{port}"], binds=[f"0.0.0.0:{port}"])
    try:
        r = subprocess.run([lbtest.RINGLB, "-c", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
        rc, err = r.returncode, r.stderr.strip()
    except subprocess.TimeoutExpired:
        rc, err = "still running after 10s", ""
    check(rc == 1 and "server: s0 127.0.0.1:" in err and "frontend fe0's own bind" in err,
          f"start-up with a server behind its own wildcard bind exits 1 ({rc}, {err!r})")

    echo = t.backend("echo")
    lb = t.ringlb(servers=[echo])
    loop_path, _ = t.config(servers=[echo, lb.addr], binds=[lb.addr])
    with open(loop_path) as f:
        text = f.read()
    line = text.splitlines().index(f"server = s1 {lb.addr}") + 1
    with open(lb.cfgpath, "w") as f:
        f.write(text)
    lb.signal(signal.SIGHUP)
    _, got = lbtest.wait_log(lb, r"reload rejected", 10)
    check(f"{lb.cfgpath}:{line}: server: s1 {lb.addr} is frontend fe0's own bind" in got,
          f"a reload onto its own bind is rejected naming line {line}: {got.split(' ', 2)[-1]}")
    check(lbtest.echoes(lb.addr), "the running config serves on")


if __name__ == "__main__":
    lbtest.run(main)
