#!/usr/bin/env python3
"""Source access control (issue #17): allow/deny prefixes and
max_conns_per_source, checked at accept, counted, reloadable.

Clients bind their socket to different loopback sources (127.0.0.2,
127.0.0.3, ...; ::1 when the host has IPv6 loopback) before connecting.

 1. Frontend "acl": allow = 127.0.0.0/30 (::1), deny = 127.0.0.3. Allowed
    sources echo; 127.0.0.3 (denied) and 127.0.0.5 (not allowed) are closed
    without data, the server never sees them, and
    ringlb_frontend_rejected_total{reason="deny"} counts each.
 2. Frontend "lim": max_conns_per_source = 2. A third concurrent connection
    from one source is refused (reason="source_conns") while another source
    is served; once one of the first two closes, the source is served again.
 3. Frontend "rate": rate_per_source = 5/s. 30 connections from one source
    as fast as the client can open them: the first 5 (the burst) are
    served, and no more than the bucket refilled during the run
    (5 + 5/s x elapsed); the others are refused (reason="source_rate")
    while another source is served; once the bucket refills, the source is
    served again.
 4. A reload that denies 127.0.0.2 (and ::1): new connections from it are
    refused, the connections it had keep flowing; and rate_per_source
    raised to 1000/s lets the same 30 connections through.
"""
import signal
import socket
import time

import lbtest
from lbtest import check


def echo_handler(s, info):
    while True:
        b = s.recv(65536)
        if not b:
            return
        s.sendall(b)


def has_v6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def client(addr, src):
    """A connection to <addr> ("host:port" or "[v6]:port") from source address <src>."""
    fam, sa = lbtest.parse_addr(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.bind((src, 0))
        s.connect(sa)
    except BaseException:
        s.close()
        raise
    return s


def served(addr, src):
    """An open connection from <src> that echoed once (the caller closes it)."""
    s = client(addr, src)
    msg = f"hello from {src}\n".encode()
    s.sendall(msg)
    check(lbtest.recv_exact(s, len(msg)) == msg, f"{src} -> {addr} is served")
    return s


def refused(addr, src):
    """A connection from <src> is closed by ringlb without a byte of data.
    ringlb resets it (SO_LINGER 0), which on loopback can arrive before
    connect() even returns."""
    try:
        with client(addr, src) as s:
            s.sendall(b"anyone there?\n")
            got = s.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    check(got == b"", f"{src} -> {addr} is closed with no data")


def try_served(addr, src):
    """Whether one connection from <src> gets its echo."""
    try:
        with client(addr, src) as s:
            s.sendall(b"x")
            return s.recv(1) == b"x"
    except OSError:
        return False


def burst(addr, n):
    """Opens <n> connections from 127.0.0.4 one after another, each asking
    for one echo; returns (how many were served, seconds it took)."""
    t0 = time.monotonic()
    ok = sum(try_served(addr, "127.0.0.4") for _ in range(n))
    return ok, time.monotonic() - t0


def ini(adm, fe_acl, fe_lim, server, acl_rules, fe_rate, rate):
    io, fwd = lbtest.MODES[T.mode]
    out = ["[global]", "workers = 2", f"io = {io}", f"forward = {fwd}", "max_conns = 10000",
           "log_level = info", f"admin = {adm}", "shutdown_grace = 30s",
           "", "[frontend acl]"] + [f"bind = {b}" for b in fe_acl] + ["backend = app"]
    out += acl_rules
    out += ["", "[frontend lim]", f"bind = {fe_lim}", "backend = app",
            "max_conns_per_source = 2"]
    out += ["", "[frontend rate]", f"bind = {fe_rate}", "backend = app",
            f"rate_per_source = {rate}"]
    out += ["", "[backend app]", "health = none", f"server = a {server}"]
    return "\n".join(out) + "\n"


def rejected(adm, fe, reason):
    return lbtest.metric_sum(adm, "ringlb_frontend_rejected_total", frontend=fe, reason=reason)


def server_conns(adm):
    return lbtest.metric_sum(adm, "ringlb_server_connections_total")


def main(t):
    global T
    T = t
    t.require_mode()
    v6 = has_v6_loopback()
    be = t.inproc_backend(echo_handler)
    adm = f"127.0.0.1:{lbtest.free_port()}"
    fe_acl = [f"127.0.0.1:{lbtest.free_port()}"]
    if v6:
        fe_acl.append(f"[::1]:{lbtest.free_port('::1')}")
    fe_lim = f"127.0.0.1:{lbtest.free_port()}"
    fe_rate = f"127.0.0.1:{lbtest.free_port()}"
    rules = ["allow = 127.0.0.0/30" + (" ::1" if v6 else ""), "deny = 127.0.0.3"]
    path, _ = t.config(text=ini(adm, fe_acl, fe_lim, be.addr, rules, fe_rate, "5/s"))
    lb = lbtest.Ringlb(t, path, [fe_acl, [fe_lim], [fe_rate]], "ringlb0")
    t.lbs.append(lb)
    lb.wait_ready()
    lbtest.wait_until(lambda: lbtest.admin_request(adm, "GET", "/")[0] == 200,
                      "the admin server answers")

    # 1. allow / deny
    base = server_conns(adm)
    live = [served(fe_acl[0], "127.0.0.1"), served(fe_acl[0], "127.0.0.2")]
    if v6:
        live.append(served(fe_acl[1], "::1"))
    refused(fe_acl[0], "127.0.0.3")
    refused(fe_acl[0], "127.0.0.5")
    lbtest.wait_until(lambda: rejected(adm, "acl", "deny") == 2,
                      "ringlb_frontend_rejected_total{frontend=acl,reason=deny} reaches 2")
    check(server_conns(adm) - base == len(live),
          f"the server saw only the {len(live)} allowed clients")
    check(len([c for c in be.conns]) >= len(live), "the backend accepted the allowed clients")
    check(rejected(adm, "acl", "source_conns") == 0, "no source_conns rejection on acl")
    check(lbtest.metric_sum(adm, "ringlb_frontend_connections_rejected_total", frontend="acl")
          == 2, "the frontend's rejected total counts both refusals")
    for s in live:
        s.close()

    # 2. max_conns_per_source = 2
    first = served(fe_lim, "127.0.0.2")
    second = served(fe_lim, "127.0.0.2")
    before = server_conns(adm)
    refused(fe_lim, "127.0.0.2")
    lbtest.wait_until(lambda: rejected(adm, "lim", "source_conns") == 1,
                      "ringlb_frontend_rejected_total{frontend=lim,reason=source_conns} reaches 1")
    check(server_conns(adm) == before, "the refused third connection never reached the server")
    other = served(fe_lim, "127.0.0.3")
    check(lbtest.echoes(second), "the source's second connection still flows")
    first.close()
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_frontend_connections_active",
                                                frontend="lim") == 2,
                      "the first connection's close is seen (2 active on lim)")
    third = served(fe_lim, "127.0.0.2")
    check(rejected(adm, "lim", "source_conns") == 1, "no further source_conns rejection")
    check(rejected(adm, "lim", "deny") == 0, "no deny rejection on lim")
    for s in (second, other, third):
        s.close()

    # 3. rate_per_source = 5/s
    ok, elapsed = burst(fe_rate, 30)
    check(5 <= ok <= 5 + 5 * elapsed + 1,
          f"5/s: {ok} of 30 served in {elapsed:.2f} s (burst 5, +5/s)")
    check(elapsed >= 4 or ok < 30, "and some refused (the run took under 4 s)")
    lbtest.wait_until(lambda: rejected(adm, "rate", "source_rate") == 30 - ok,
                      f"ringlb_frontend_rejected_total{{frontend=rate,reason=source_rate}} "
                      f"reaches {30 - ok}")
    served(fe_rate, "127.0.0.3").close()
    lbtest.wait_until(lambda: try_served(fe_rate, "127.0.0.4"),
                      "the source is served again once its bucket refills")

    # 4. reload: 127.0.0.2 (and ::1) become denied; their live connections stay.
    keep = [served(fe_acl[0], "127.0.0.2")]
    if v6:
        keep.append(served(fe_acl[1], "::1"))
    denied_before = rejected(adm, "acl", "deny")
    with open(path, "w") as f:
        f.write(ini(adm, fe_acl, fe_lim, be.addr,
                    rules + ["deny = 127.0.0.2" + (" ::1" if v6 else "")], fe_rate, "1000/s"))
    lb.signal(signal.SIGHUP)
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_config_generation") == 2,
                      "the reload is in use (generation 2)")
    refused(fe_acl[0], "127.0.0.2")
    want = denied_before + 1
    if v6:
        refused(fe_acl[1], "::1")
        want += 1
    served(fe_acl[0], "127.0.0.1").close()
    lbtest.wait_until(lambda: rejected(adm, "acl", "deny") == want,
                      f"the newly denied sources are counted ({want} deny in all)")
    for s in keep:
        check(lbtest.echoes(s), "a connection made before the reload keeps flowing")
        s.close()
    ok, elapsed = burst(fe_rate, 30)
    check(ok == 30, f"rate_per_source raised to 1000/s by the reload: {ok} of 30 served")
    check(lb.alive(), "ringlb still runs")


lbtest.run(main)
