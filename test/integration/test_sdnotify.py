#!/usr/bin/env python3
"""systemd integration (issue #6): READY=1 over $NOTIFY_SOCKET once ringlb
serves, STOPPING=1 on SIGTERM; with `user = nobody` (when the test runs as
root) every thread runs as nobody after binding, and ringlb still serves.
"""
import os
import pwd
import signal
import shutil
import socket
import tempfile

import lbtest
from lbtest import check


def recv_notify(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return None


def ids(pid):
    """[(uids, gids, groups)] of every thread of <pid>."""
    return [(d["Uid"].split(), d["Gid"].split(), d["Groups"].split())
            for d in lbtest.thread_status(pid)]


def main(t):
    # Its own directory under /tmp: the test's may be private (0700), and
    # ringlb sends after dropping root.
    sdir = tempfile.mkdtemp(prefix="ringlb-notify-")
    os.chmod(sdir, 0o755)
    path = os.path.join(sdir, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    os.chmod(path, 0o777)  # as systemd's: ringlb sends after dropping root
    t.held.append(ns)
    os.environ["NOTIFY_SOCKET"] = path
    be = t.backend("name", name="a")
    opts = {}
    root = os.geteuid() == 0
    if root:
        nobody = pwd.getpwnam("nobody")
        opts = {"user": "nobody"}
    lb, adm = lbtest.admin_ringlb(t, servers=[be], global_opts=opts)
    del os.environ["NOTIFY_SOCKET"]
    msg = recv_notify(ns, 5)
    check(msg is not None and "READY=1" in msg.split("\n"), f"READY=1 sent ({msg!r})")
    check(lbtest.connect(lb.addr).recv(8) == b"a\n", "ringlb serves")
    if root:
        tids = ids(lb.proc.pid)
        want = str(nobody.pw_uid)
        check(len(tids) >= 4 and all(u == [want] * 4 for u, _, _ in tids),
              f"all {len(tids)} threads run as uid {want} (real, effective, saved, fs)")
        check(all(g == [str(nobody.pw_gid)] * 4 for _, g, _ in tids),
              f"all threads run as nobody's gid {nobody.pw_gid}")
        check(all("0" not in grp for _, _, grp in tids), "no thread keeps root's group 0")
        st, _, _ = lbtest.admin_request(adm, "GET", "/metrics")
        check(st == 200, "the admin server serves after the privilege drop")
    else:
        lbtest.log("  note: not root: the user = nobody part is not tested")
    lb.signal(signal.SIGTERM)
    msg = recv_notify(ns, 5)
    check(msg == "STOPPING=1", f"STOPPING=1 sent on SIGTERM ({msg!r})")
    check(lb.wait_exit(10) == 0, "ringlb exits 0")
    shutil.rmtree(sdir, ignore_errors=True)


if __name__ == "__main__":
    lbtest.run(main)
