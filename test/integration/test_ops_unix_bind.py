#!/usr/bin/env python3
"""A unix: bind never takes the socket file of a live process (issue #19,
item 3).

ringlb used to unlink any socket file at its bind path, so a second ringlb
(or a typo in lb.ini) silently cut another server off from its clients.
A leftover file may only be removed when connect() to it is refused.
Checked, with a live unix listener of this test at the path:

1. start-up with `bind = unix:PATH` exits 1 with "unix:PATH: another
   process is listening there"; the listener's file is still there and it
   still accepts clients.
2. a reload that adds that bind to a running ringlb is rejected with the
   same reason; the listener still accepts, ringlb serves on.
3. a path that is a regular file is refused and left as it was.
4. a stale socket file (bound, then its socket closed) is taken over:
   ringlb starts and serves on it.
"""
import os
import signal
import socket

import lbtest
from lbtest import check



def still_ours(ls, path):
    """Whether <ls> still owns <path>: a client connecting there is accepted
    by it."""
    if not os.path.exists(path):
        return False
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect(path)
        ls.settimeout(5)
        a, _ = ls.accept()
        a.close()
        return True
    except OSError:
        return False
    finally:
        c.close()


def main(t):
    t.require_mode()
    echo = t.backend("echo")
    path = os.path.join(t.dir, "live.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(16)
    t.held.append(ls)

    # 1. start-up
    lb = t.ringlb(servers=[echo], binds=[f"unix:{path}"], wait=False)
    rc = lb.wait_exit(10)
    check(rc == 1, f"start-up on a live listener's path exits 1 (exit {rc})")
    lbtest.wait_log(lb, rf"unix:{path}: another process is listening there", 1)
    check(True, "start-up logs 'unix:PATH: another process is listening there'")
    check(still_ours(ls, path), "the other process's socket file is intact and accepts")

    # 2. reload
    lb = t.ringlb(servers=[echo])
    text_path, _ = t.config(servers=[echo], binds=[lb.addr, f"unix:{path}"])
    with open(text_path) as f:
        text = f.read()
    with open(lb.cfgpath, "w") as f:
        f.write(text)
    lb.signal(signal.SIGHUP)
    lbtest.wait_log(lb, r"reload rejected", 10)
    check(True, "a reload adding the bind is rejected")
    check(f"unix:{path}: another process is listening there" in lb.log_text(),
          "the reload logs 'unix:PATH: another process is listening there'")
    check(still_ours(ls, path), "the other process's socket file is intact and accepts")
    check(lbtest.echoes(lb.addr), "ringlb serves on with the running config")

    # 3. a regular file
    plain = os.path.join(t.dir, "plain")
    with open(plain, "w") as f:
        f.write("keep me\n")
    lb2 = t.ringlb(servers=[echo], binds=[f"unix:{plain}"], wait=False)
    rc = lb2.wait_exit(10)
    check(rc == 1 and "is not a socket" in lb2.log_text(),
          f"a regular file at the path is refused (exit {rc})")
    with open(plain) as f:
        check(f.read() == "keep me\n", "the regular file is left as it was")

    # 4. a stale socket file
    stale = os.path.join(t.dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    check(os.path.exists(stale), "a stale socket file is left behind")
    lb3 = t.ringlb(servers=[echo], binds=[f"unix:{stale}"])
    check(lbtest.echoes(f"unix:{stale}"), "ringlb takes over a stale socket file and serves on it")


if __name__ == "__main__":
    lbtest.run(main)
