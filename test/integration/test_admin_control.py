#!/usr/bin/env python3
"""Admin API (issue #6): disable, drain, enable and weight change where new
connections go, at once, and never touch live ones.

Three servers a, b, c behind roundrobin (exact: any run of picks is even
over the weights). Each server writes its name, then echoes until the
client closes, so one connection both tells who answered and stays open
as long as the test wants. Bad requests to the API get 400/404/405/415.
"""

import lbtest
from lbtest import check


def main(t):
    bes = [t.inproc_backend(lbtest.named_handler(n)) for n in "abc"]
    lb, adm = lbtest.admin_ringlb(t, servers=bes)
    fe = lb.addr
    st = lambda name: [x for x in lbtest.admin_json(adm)["backends"][0]["servers"]
                       if x["name"] == name][0]

    c = lbtest.spread(fe, 30)
    check(c == {"a": 10, "b": 10, "c": 10}, f"even spread at first: {dict(c)}")

    lbtest.admin_post(adm, "be0", "s1", "disable")
    check(st("s1")["state"] == "maint", "disabled s1 shows as maint")
    c = lbtest.spread(fe, 30)
    check(c["b"] == 0 and c["a"] + c["c"] == 30, f"disabled b takes no connection: {dict(c)}")
    lbtest.admin_post(adm, "be0", "s1", "enable")
    check(st("s1")["state"] == "up", "enabled s1 is up again")
    c = lbtest.spread(fe, 30)
    check(c == {"a": 10, "b": 10, "c": 10}, f"even again after enable: {dict(c)}")

    # A live connection to c, then drain c: it keeps working, no new ones come.
    for _ in range(6):
        live, name = lbtest.who(fe)
        if name == "c":
            break
        live.close()
    check(name == "c", "holding a live connection to c")
    lbtest.admin_post(adm, "be0", "s2", "drain")
    check(st("s2")["state"] == "drain" and st("s2")["active"] == 1,
          "drained s2 shows drain with its 1 live connection")
    c = lbtest.spread(fe, 30)
    check(c["c"] == 0 and c["a"] + c["b"] == 30, f"drained c takes no new connection: {dict(c)}")
    live.sendall(b"still there?\n")
    check(lbtest.recv_exact(live, 13) == b"still there?\n",
          "the live connection to drained c still flows")
    live.close()
    lbtest.admin_post(adm, "be0", "s2", "enable")

    lbtest.admin_post(adm, "be0", "s0", "weight?value=3")
    check(st("s0")["weight"] == 3, "s0 weight is 3")
    c = lbtest.spread(fe, 50)
    check(abs(c["a"] - 30) <= 3 and abs(c["b"] - 10) <= 3 and abs(c["c"] - 10) <= 3,
          f"weights 3:1:1 give about 30/10/10 of 50: {dict(c)}")
    lbtest.admin_post(adm, "be0", "s1", "weight?value=0")
    c = lbtest.spread(fe, 40)
    check(c["b"] == 0, f"weight 0 takes no new connection: {dict(c)}")
    lbtest.admin_post(adm, "be0", "s1", "weight?value=1")
    lbtest.admin_post(adm, "be0", "s0", "weight?value=1")
    c = lbtest.spread(fe, 30)
    check(c == {"a": 10, "b": 10, "c": 10}, f"even again with weights 1:1:1: {dict(c)}")

    lbtest.admin_post(adm, "be0", "nope", "disable", expect=404)
    lbtest.admin_post(adm, "nope", "s0", "disable", expect=404)
    lbtest.admin_post(adm, "be0", "s0", "explode", expect=404)
    for q in ("weight", "weight?value=", "weight?value=abc", "weight?value=1001",
              "weight?value=-1", "weight?other=2"):
        lbtest.admin_post(adm, "be0", "s0", q, expect=400)
    stt, hdr, _ = lbtest.admin_request(adm, "GET", "/api/backends/be0/servers/s0/disable")
    check(stt == 405 and hdr.get("allow") == "POST", "GET on an action is 405 with Allow: POST")
    stt, _, _ = lbtest.admin_raw(adm, f"POST /metrics HTTP/1.1\r\nHost: {adm}\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"
                                 .encode())
    check(stt == 405, "POST /metrics is 405")
    stt, _, _ = lbtest.admin_request(adm, "POST", "/api/backends/be0/servers/s0/disable",
                                     headers={"Content-Type": "text/plain"})
    check(stt == 415, "a POST without Content-Type: application/json is 415")
    check(st("s0")["state"] == "up" and st("s0")["weight"] == 1,
          "rejected requests changed nothing")
    check(st("s1")["state_changes_total"] == 2, "s1 changed state twice (disable, enable)")


if __name__ == "__main__":
    lbtest.run(main)
