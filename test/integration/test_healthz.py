#!/usr/bin/env python3
"""GET /healthz on the admin server: the process's own state, for whatever
sits in front of ringlb (keepalived, a cloud balancer, a Kubernetes probe).

1. While ringlb accepts: 200 "serving" (HEAD too, with no body).
2. SIGTERM with a client connection open (shutdown_grace 30 s): the
   frontend stops accepting, /healthz answers 503 "draining" while the
   process drains, the open connection still echoes, and ringlb exits 0
   once it closes.
"""
import signal

import lbtest
from lbtest import check


def main(t):
    echo = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[echo], global_opts={"shutdown_grace": "30s"})

    st, hdrs, body = lbtest.admin_request(adm, "GET", "/healthz")
    check(st == 200 and body == b"serving\n", f"/healthz while accepting: {st} {body!r}")
    check(hdrs.get("cache-control") == "no-store", "/healthz is not cached")
    st, _, body = lbtest.admin_request(adm, "HEAD", "/healthz")
    check(st == 200 and body == b"", f"HEAD /healthz: {st} {body!r}")

    s = lbtest.connect(lb.addr, timeout=10)
    check(lbtest.echoes(s), "a client connection is live before SIGTERM")
    lb.signal(signal.SIGTERM)
    lbtest.log("  sent SIGTERM")

    def draining():
        st, _, body = lbtest.admin_request(adm, "GET", "/healthz")
        return st == 503 and body == b"draining\n"

    lbtest.wait_until(draining, "/healthz answers 503 draining after SIGTERM", timeout=5)
    check(lb.alive(), "ringlb still runs (draining) while a connection is open")
    check(lbtest.echoes(s), "the open connection still echoes while /healthz says draining")
    check(draining(), "/healthz still says draining during the shutdown grace")
    s.close()
    rc = lb.wait_exit(10)
    check(rc == 0, f"ringlb exited 0 once the last connection closed (exit {rc})")


if __name__ == "__main__":
    lbtest.run(main)
