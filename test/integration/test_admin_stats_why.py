#!/usr/bin/env python3
# run-once: the page, its actions and the CSV come from the admin thread, whatever the io mode
"""Admin API (issue #18): the stats page says why and since when, and acts.

Servers s0 (up) and s1 (up) answer a tcp check; s2's port is closed, so
its checks fail with a connection refused. Checked:

 - /api/backends: each server's last check status as HAProxy names it
   (L4OK, L4CON) with its reason, time in its state, total downtime (s2's
   grows while it is down; s0 has none);
 - /api/backends.csv: the same servers and values, parsed by Python's csv;
 - /metrics: ringlb_server_downtime_seconds_total and
   ringlb_server_state_duration_seconds;
 - in headless Chromium, driven over the DevTools protocol (a pipe, so no
   extra package): the page shows the check statuses; clicking "drain" on
   s1 drains it (seen in /api/backends), and with admin_token_file set a
   click without the token shows the 401 on the page and changes nothing,
   and one with the token typed into the page works.

Skips (exit 77) without chromium on a developer's machine; .ci/deps test
installs it.
"""
import csv
import io
import json
import os
import tempfile

import lbtest
from lbtest import check

HC = {"health": "tcp", "health_interval": "100ms", "health_timeout": "500ms", "rise": "1",
      "fall": "1"}
TOKEN = "stats-page-token-0123456789"


def servers(adm, headers=None):
    st, _, body = lbtest.admin_request(adm, "GET", "/api/backends", headers=headers)
    return {s["name"]: s for s in json.loads(body)["backends"][0]["servers"]}


def page_has(b, text):
    return b.eval(f"document.readyState == 'complete' && "
                  f"document.body.innerText.indexOf({json.dumps(text)}) >= 0")


def click(b, server, action):
    check(b.eval(f"(function(){{var e = document.querySelector("
                 f"'button[data-a={action}][data-s={server}]'); if (!e) return false; e.click(); "
                 f"return true}})()"), f"the page has a {action} button for {server}")


def main(t):
    exe = lbtest.chromium()
    if not exe:
        raise lbtest.Skip("chromium is not installed (apt-get install chromium)")
    bes = [t.backend("echo"), t.backend("echo"), t.refused_addr()]
    lb, adm = lbtest.admin_ringlb(t, servers=bes, backend_opts=HC)
    lbtest.wait_until(lambda: servers(adm)["s2"]["state"] == "down", "s2 is marked down")
    lbtest.wait_until(lambda: servers(adm)["s2"]["downtime_seconds_total"] >= 0.3,
                      "s2's downtime grows while it is down")
    s = servers(adm)
    check(s["s0"]["check_status"] == "L4OK" and s["s0"]["check_reason"] == "connected",
          f"s0: last check L4OK connected ({s['s0']['check_status']} {s['s0']['check_reason']})")
    check(s["s2"]["check_status"] == "L4CON" and "refused" in s["s2"]["check_reason"],
          f"s2: last check L4CON ({s['s2']['check_status']} {s['s2']['check_reason']})")
    check(s["s0"]["downtime_seconds_total"] == 0 and s["s0"]["state_seconds"] > 0,
          f"s0: no downtime, {s['s0']['state_seconds']} s in its state")
    check(s["s2"]["state_seconds"] <= s["s2"]["downtime_seconds_total"] + 0.5,
          "s2's downtime covers its time in state down")

    st, hdr, body = lbtest.admin_request(adm, "GET", "/api/backends.csv")
    check(st == 200 and hdr["content-type"].startswith("text/csv"), "GET /api/backends.csv")
    rows = {r["server"]: r for r in csv.DictReader(io.StringIO(body.decode()))}
    check(sorted(rows) == ["s0", "s1", "s2"] and rows["s2"]["state"] == "down" and
          rows["s2"]["check_status"] == "L4CON" and rows["s0"]["backend"] == "be0",
          f"the CSV has every server with its state and check ({list(rows)})")

    m = lbtest.admin_metrics(adm)
    check(lbtest.metric(m, "ringlb_server_downtime_seconds_total", backend="be0", server="s2") > 0,
          "ringlb_server_downtime_seconds_total of s2 > 0")
    check(lbtest.metric(m, "ringlb_server_state_duration_seconds", backend="be0", server="s0") > 0,
          "ringlb_server_state_duration_seconds of s0 > 0")

    profile = tempfile.mkdtemp(prefix="ringlb-chromium-", dir=t.dir)
    b = lbtest.Browser(exe, f"http://{adm}/stats", profile)
    try:
        b.attach()
        lbtest.wait_until(lambda: page_has(b, "L4CON"), "the page shows s2's L4CON", timeout=30)
        check(page_has(b, "L4OK") and page_has(b, "downtime total"), "and s0's L4OK, downtime")
        click(b, "s1", "drain")
        lbtest.wait_until(lambda: servers(adm)["s1"]["admin"] == "drain",
                          "clicking drain on the page drained s1")
    finally:
        b.close()

    # With a token, the page's actions need it.
    tokfile = os.path.join(t.dir, "token")
    with open(tokfile, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tokfile, 0o600)
    lb2, adm2 = lbtest.admin_ringlb(t, servers=bes[:2], backend_opts=HC,
                                    global_opts={"admin_token_file": tokfile})
    b = lbtest.Browser(exe, f"http://{adm2}/stats", tempfile.mkdtemp(prefix="ringlb-chromium-",
                                                              dir=t.dir))
    try:
        b.attach()
        lbtest.wait_until(lambda: page_has(b, "L4OK"), "the page loads", timeout=30)
        click(b, "s0", "disable")
        lbtest.wait_until(lambda: "401" in (b.eval("document.getElementById('msg').textContent")
                                           or ""), "a click without the token shows the 401")
        check(servers(adm2)["s0"]["admin"] == "none", "and changed nothing")
        b.eval(f"document.getElementById('tok').value = {json.dumps(TOKEN)}; settok(); 1")
        click(b, "s0", "disable")
        lbtest.wait_until(lambda: servers(adm2)["s0"]["admin"] == "disabled",
                          "with the token typed into the page, disable works")
    finally:
        b.close()


if __name__ == "__main__":
    lbtest.run(main)
