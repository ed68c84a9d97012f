#!/usr/bin/env python3
"""The admin API with a key (admin_token_file).

- `admin = 0.0.0.0:P` without admin_token_file is a config error naming
  the key (`ringlb -t` exits 1, start-up too); a token file others may
  read is refused the same way.
- With a token, every write needs `Authorization: Bearer TOKEN`: none, a
  wrong one or another scheme gets 401 with WWW-Authenticate and changes
  nothing; the right one drains a server (no Content-Type needed: a
  browser never adds the header by itself). Reads stay open, with a
  warning at start-up, and Host is still checked (DNS rebinding).
- A reload reads the file again: the old token stops working, the new one
  works, and admin_read_token = yes puts /metrics behind it too.
- A unix: admin socket is created owner-only (0600).
"""
import os
import stat
import subprocess

import lbtest
from lbtest import check

TOKEN1 = "first-token-0123456789abcdef"
TOKEN2 = "second-token-9876543210fedcba"


def write_token(path, token, mode=0o600):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, mode)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def drained(adm, token=None):
    st, _, _ = lbtest.admin_request(adm, "GET", "/api/backends",
                                    headers=bearer(token) if token else None)
    check(st == 200, "GET /api/backends answers")
    return lbtest.admin_json(adm)["backends"][0]["servers"][0]["state"] == "drain"


def refused(t, global_opts, want):
    """ringlb -t and ringlb -c both refuse the config, naming <want>."""
    path, _ = t.config(servers=["127.0.0.1:1"], global_opts=global_opts)
    for args in (["-t", "-c", path], ["-c", path]):
        r = subprocess.run([lbtest.RINGLB] + args, capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and want in r.stderr,
              f"ringlb {args[0]}: exit {r.returncode}, says {want!r}: {r.stderr.strip()[-300:]}")


def main(t):
    tok = os.path.join(t.dir, "admin.token")
    port = lbtest.free_port()
    wild = {"admin": f"0.0.0.0:{port}"}
    refused(t, wild, "set admin_token_file")
    write_token(tok, TOKEN1, 0o644)
    refused(t, dict(wild, admin_token_file=tok), "others may read or write it")

    write_token(tok, TOKEN1)
    be = t.backend("name", name="a")
    lb = t.ringlb(servers=[be], global_opts=dict(wild, admin_token_file=tok))
    adm = f"127.0.0.1:{port}"
    lbtest.wait_log(lb, rf"admin: 0\.0\.0\.0:{port} is not a loopback address: writes need the "
                        rf"token", 5)
    lbtest.wait_until(lambda: lbtest.admin_request(adm, "GET", "/metrics")[0] == 200,
                      "GET /metrics without a token while reads are open", 10)
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics", headers={"Host": f"localhost:{port}"})
    check(st == 200, "on 0.0.0.0, localhost:PORT is 200 when the client reached 127.0.0.1")
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics",
                                    headers={"Host": f"evil.example:{port}"})
    check(st == 421, "a foreign Host is still 421")

    drain = "/api/backends/be0/servers/s0/drain"
    for what, hdr in (("no Authorization", {}), ("a wrong token", bearer(TOKEN2)),
                      ("Basic", {"Authorization": "Basic Zmlyc3Q="}),
                      ("the token without a scheme", {"Authorization": TOKEN1})):
        st, h, _ = lbtest.admin_request(adm, "POST", drain, headers=hdr)
        check(st == 401 and h.get("www-authenticate", "").startswith("Bearer"),
              f"a write with {what}: {st}, WWW-Authenticate {h.get('www-authenticate')!r}")
    check(not drained(adm), "refused writes changed nothing")
    st, _, body = lbtest.admin_request(adm, "POST", drain,
                                       headers=dict(bearer(TOKEN1), **{"Content-Type": "text/plain"}))
    check(st == 200, f"the right token drains the server, any Content-Type ({st} {body!r})")
    check(drained(adm), "s0 is draining")

    # Reload: a new token, and reads behind it too.
    write_token(tok, TOKEN2)
    with open(lb.cfgpath) as f:
        text = f.read()
    with open(lb.cfgpath, "w") as f:
        f.write(text.replace("[global]\n", "[global]\nadmin_read_token = yes\n", 1))
    before = len(lbtest.log_events(lb, r"reload: .* is in use"))
    lb.signal(__import__("signal").SIGHUP)
    lbtest.wait_until(lambda: len(lbtest.log_events(lb, r"reload: .* is in use")) > before,
                      "the reload", 10)
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics")
    check(st == 401, f"admin_read_token: GET /metrics without the token is {st}")
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics", headers=bearer(TOKEN1))
    check(st == 401, f"the old token no longer opens it ({st})")
    st, _, _ = lbtest.admin_request(adm, "GET", "/metrics", headers=bearer(TOKEN2))
    check(st == 200, f"the new token does ({st})")
    st, _, _ = lbtest.admin_request(adm, "POST", "/api/backends/be0/servers/s0/enable",
                                    headers=bearer(TOKEN2))
    check(st == 200, f"and writes with it ({st})")

    # A unix admin socket: the owner's alone.
    sock = os.path.join(t.dir, "admin.sock")
    t.ringlb(servers=[be], global_opts={"admin": f"unix:{sock}"})
    lbtest.wait_until(lambda: os.path.exists(sock), "the admin socket", 10)
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    check(mode == 0o600, f"unix admin socket mode {mode:04o}")


if __name__ == "__main__":
    lbtest.run(main)
