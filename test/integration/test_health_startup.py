#!/usr/bin/env python3
# run-once: the checker and the start-up order decide it; the io mode does not
"""Start-up (issue #15): no client reaches a down server before its first check.

Three servers behind roundrobin with health = http and a long interval
(5 s): b0 answers every request with 503 from before ringlb starts, b1 is
healthy, and the third address refuses connections. ringlb starts its
servers in state checking, probes them at once and accepts only when the
first round has its verdicts, so:

 - from the very first client ringlb accepts, every client is answered by
   b1 (200): none by b0 (a 503) and none fails on the closed port, although
   roundrobin would otherwise alternate over all three and the next probe
   is 5 s away;
 - /api/backends says s0 is down with L7STS (http status 503), s2 down
   with L4CON, s1 up;
 - the log says the first probe round is done.

Before, servers counted as up until their first probe, so for up to an
interval a third of the clients got the 503 and a third a failed connect
(retried, and slower).
"""
import signal

import lbtest
from lbtest import check

HC = {"health": "http", "health_path": "/healthz", "health_expect": "200",
      "health_interval": "5s", "health_timeout": "1s", "rise": "3", "fall": "3",
      "retries": "0"}


def main(t):
    bes = [t.backend("http", name="b0"), t.backend("http", name="b1")]
    bes[0].proc.send_signal(signal.SIGUSR1)
    lbtest.wait_until(lambda: lbtest.http_get_name(bes[0].addr)[0] == 503,
                      "b0 answers 503 before ringlb starts")
    lb, adm = lbtest.admin_ringlb(t, servers=bes + [t.refused_addr()], backend_opts=HC)
    got = [lbtest.http_get_name(lb.addr) for _ in range(30)]
    check(all(g == (200, "b1") for g in got),
          f"every client from the first one is answered by b1 ({sorted(set(got))})")
    srv = {s["name"]: s for s in lbtest.admin_json(adm)["backends"][0]["servers"]}
    check(srv["s0"]["state"] == "down" and srv["s0"]["check_status"] == "L7STS",
          f"s0 down with L7STS ({srv['s0']['state']}, {srv['s0']['check_status']})")
    check(srv["s2"]["state"] == "down" and srv["s2"]["check_status"] == "L4CON",
          f"s2 down with L4CON ({srv['s2']['state']}, {srv['s2']['check_status']})")
    check(srv["s1"]["state"] == "up", "s1 up")
    lbtest.wait_log(lb, r"health: first probe round done", 5)


if __name__ == "__main__":
    lbtest.run(main)
