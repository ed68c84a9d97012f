#!/usr/bin/env python3
"""PROXY protocol (issue #15): send_proxy to servers, accept_proxy from
clients, in every io and forward mode.

Servers are recorders: they keep every byte up to a line "END" and answer
"ok". So what ringlb sent, header included, is compared byte for byte.

 1. send_proxy = v1 (backend key) and send_proxy=v2 (server option): the
    exact header for a client from 127.0.0.2 (and from ::1 when the host
    has IPv6 loopback), then its bytes; a unix-socket client gets v1
    "PROXY UNKNOWN" / v2 AF_UNSPEC; 1 MiB after the header arrives whole
    (splice and auto move it after the header).
 2. accept_proxy = any, server with send_proxy = v1: a v1 header and a v2
    (TCP6) header from the client come out as v1 headers carrying the
    addresses received, sent one byte at a time too. A deny rule matching
    the PROXY address refuses it (reason="deny"); max_conns_per_source = 1
    counts the PROXY address, not the real one (all clients are
    127.0.0.1); the connection log names the PROXY client.
 3. accept_proxy = v2 with proxy_trusted = 127.0.0.2 and proxy_timeout =
    1s, server without send_proxy: the header is stripped; a v1 header, a
    malformed one, no header, a silent client and an untrusted sender are
    closed and counted (reason="proxy").
 4. balance = source behind accept_proxy: the PROXY address is what is
    hashed (one address, many real ports: one server; many addresses: both).
 5. A reload that turns accept_proxy off on "ap2": bytes pass unchanged,
    a PROXY header included (it is data now).
 6. Real peers end to end: client (from 127.0.0.2) -> HAProxy
    (`send-proxy-v2`) -> ringlb (accept_proxy = v2, send_proxy = v1) ->
    nginx (`listen ... proxy_protocol`, answering $proxy_protocol_addr):
    the client's address arrives. Left out, with a note, where haproxy or
    nginx is not installed (CI installs both and fails without them).
"""
import os
import shutil
import signal
import socket
import subprocess
import struct
import time

import lbtest
from lbtest import check

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def recorder(s, info):
    data = b""
    while not data.endswith(b"END\n"):
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
    info["data"] = data
    s.sendall(b"ok\n")


def has_v6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def exchange(addr, payload, src="127.0.0.1", bytewise=False):
    """Sends <payload> to <addr> from <src>; returns (reply, client port).
    A refused client gets a reset, which on loopback may come before
    connect() returns: that is an empty reply."""
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((src, 0))
    port = None
    with s:
        s.settimeout(10)
        try:
            if addr.startswith("unix:"):
                s.connect(addr[5:])
            else:
                host, p = addr.rsplit(":", 1)
                s.connect((host.strip("[]"), int(p)))
                port = s.getsockname()[1]
            for i in range(0, len(payload), 1 if bytewise else len(payload)):
                s.sendall(payload[i:i + 1] if bytewise else payload)
            reply = lbtest.recv_until_eof(s)
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
    return reply, port


def last_data(be, n_before):
    """The bytes the recorder <be> got on the connection after <n_before>."""
    lbtest.wait_until(lambda: len(be.conns) > n_before and "closed" in be.conns[n_before],
                      "the server got the connection")
    return be.conns[n_before].get("data")


def rejected(adm, fe, reason):
    return lbtest.metric_sum(adm, "ringlb_frontend_rejected_total", frontend=fe, reason=reason)


def v2_tcp4(src, dst, sport, dport):
    return (SIG + b"\x21\x11\x00\x0c" + socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack(">HH", sport, dport))


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start(t, name, argv, port):
    """A server process of this test, stopped at the end, listening on <port>."""
    log = open(os.path.join(t.dir, f"{name}.log"), "wb")
    proc = lbtest._spawn(argv, subprocess.DEVNULL, log)

    class Proc:
        def stop(self):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()
    t.backends.append(Proc())
    lbtest.wait_until(lambda: proc.poll() is None and port_open(port),
                      f"{name} listens on {port}")
    return proc


def real_peers(t):
    """Section 6 (see the top of the file)."""
    if not shutil.which("haproxy") or not shutil.which("nginx"):
        why = "haproxy or nginx not installed (apt-get install haproxy nginx-light)"
        if os.environ.get("CI"):
            raise lbtest.Fail(f"{why}; CI must install them (.ci/deps test)")
        lbtest.log(f"  note: {why}: the real-peer chain (section 6) is not tested here")
        return
    p_ng, p_lb, p_ha = (lbtest.free_port() for _ in range(3))
    conf = os.path.join(t.dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
pid {t.dir}/nginx.pid;
error_log stderr;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {t.dir}; proxy_temp_path {t.dir}; fastcgi_temp_path {t.dir};
    uwsgi_temp_path {t.dir}; scgi_temp_path {t.dir};
    server {{
        listen 127.0.0.1:{p_ng} proxy_protocol;
        location / {{ return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\\n"; }}
    }}
}}
""")
    start(t, "nginx", ["nginx", "-p", t.dir, "-c", conf], p_ng)
    io, fwd = lbtest.MODES[t.mode]
    path, _ = t.config(text="\n".join([
        "[global]", "workers = 1", f"io = {io}", f"forward = {fwd}", "admin =",
        "[frontend fromha]", f"bind = 127.0.0.1:{p_lb}", "accept_proxy = v2",
        "proxy_trusted = 127.0.0.1", "backend = ng",
        "[backend ng]", "health = none", "send_proxy = v1", f"server = n 127.0.0.1:{p_ng}"]) + "\n")
    lb = lbtest.Ringlb(t, path, [[f"127.0.0.1:{p_lb}"]], "ringlb-chain")
    t.lbs.append(lb)
    # No wait_ready: its probes would be refused (no header); wait for the
    # log line instead.
    lbtest.wait_log(lb, "frontend fromha: listening", 10)
    hcfg = os.path.join(t.dir, "haproxy.cfg")
    with open(hcfg, "w") as f:
        f.write(f"""global
    log stderr format raw local0 err
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend in
    bind 127.0.0.1:{p_ha}
    default_backend out
backend out
    server lb 127.0.0.1:{p_lb} send-proxy-v2
""")
    start(t, "haproxy", ["haproxy", "-db", "-f", hcfg], p_ha)
    reply, cport = exchange(f"127.0.0.1:{p_ha}",
                            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", src="127.0.0.2")
    want = b"client=127.0.0.2:%d" % cport
    check(want in reply, f"haproxy -> ringlb -> nginx: nginx saw {want!r} ({reply[-60:]!r})")


def main(t):
    t.require_mode()
    rec = [t.inproc_backend(recorder) for _ in range(5)]
    adm = f"127.0.0.1:{lbtest.free_port()}"
    port = {n: lbtest.free_port() for n in ("send", "send2", "ap", "ap2", "hash")}
    fe = {n: f"127.0.0.1:{p}" for n, p in port.items()}
    usock = os.path.join(t.dir, "send.sock")
    usock2 = os.path.join(t.dir, "send2.sock")
    v6 = has_v6_loopback()
    fe6 = f"[::1]:{lbtest.free_port('::1')}" if v6 else None
    io, fwd = lbtest.MODES[t.mode]
    ini = ["[global]", "workers = 2", f"io = {io}", f"forward = {fwd}", "log_level = info",
           f"admin = {adm}", "log_connections = yes",
           "", "[frontend send]", f"bind = {fe['send']}", f"bind = unix:{usock}",
           *([f"bind = {fe6}"] if v6 else []),
           "backend = v1",
           "", "[frontend send2]", f"bind = {fe['send2']}", f"bind = unix:{usock2}",
           "backend = v2",
           "", "[frontend ap]", f"bind = {fe['ap']}", "accept_proxy = any", "backend = v1",
           "deny = 192.0.2.66", "max_conns_per_source = 1",
           "", "[frontend ap2]", f"bind = {fe['ap2']}", "accept_proxy = v2",
           "proxy_trusted = 127.0.0.2", "proxy_timeout = 1s", "backend = plain",
           "", "[frontend hash]", f"bind = {fe['hash']}", "accept_proxy = v1", "backend = two",
           "", "[backend v1]", "health = none", "send_proxy = v1", f"server = r0 {rec[0].addr}",
           "", "[backend v2]", "health = none", f"server = r1 {rec[1].addr} send_proxy=v2",
           "", "[backend plain]", "health = none", f"server = r2 {rec[2].addr}",
           "", "[backend two]", "health = none", "balance = source",
           f"server = r3 {rec[3].addr}", f"server = r4 {rec[4].addr}"]
    path, _ = t.config(text="\n".join(ini) + "\n")
    lb = lbtest.Ringlb(t, path, [[fe["send"], f"unix:{usock}"] + ([fe6] if v6 else []),
                                 [fe["send2"], f"unix:{usock2}"], [fe["ap"]],
                                 [fe["ap2"]], [fe["hash"]]], "ringlb0")
    t.lbs.append(lb)
    lb.wait_ready()
    # wait_ready's probe connections (no header, closed) on the three
    # accept_proxy frontends: each a rejection for reason=proxy. Those on
    # "send" and "send2" reached r0 and r1 (empty).
    # (At least one each: on a loaded machine a probe that timed out in
    # connect() is retried, and the first may still be accepted.)
    lbtest.wait_until(lambda: all(rejected(adm, f, "proxy") >= 1 for f in ("ap", "ap2", "hash")),
                      "the start-up probes are counted")
    lbtest.wait_until(lambda: len(rec[0].conns) >= (3 if v6 else 2) and len(rec[1].conns) >= 2 and
                      all("closed" in c for r in rec[:2] for c in r.conns),
                      "the start-up probes reached the send_proxy servers")

    # 1. send_proxy
    msg = b"hello\nEND\n"
    n = len(rec[0].conns)
    reply, cport = exchange(fe["send"], msg, src="127.0.0.2")
    check(reply == b"ok\n", "send_proxy v1: the server answered")
    want = b"PROXY TCP4 127.0.0.2 127.0.0.1 %d %d\r\n" % (cport, port["send"]) + msg
    got = last_data(rec[0], n)
    check(got == want, f"send_proxy v1: the server got {got!r}, want {want!r}")
    n = len(rec[1].conns)
    reply, cport = exchange(fe["send2"], msg, src="127.0.0.2")
    want = v2_tcp4("127.0.0.2", "127.0.0.1", cport, port["send2"]) + msg
    got = last_data(rec[1], n)
    check(got == want, f"send_proxy=v2: the server got {got!r}, want {want!r}")
    n = len(rec[0].conns)
    exchange(f"unix:{usock}", msg)
    got = last_data(rec[0], n)
    check(got == b"PROXY UNKNOWN\r\n" + msg, f"a unix client: PROXY UNKNOWN ({got!r})")
    n = len(rec[1].conns)
    exchange(f"unix:{usock2}", msg)
    got = last_data(rec[1], n)
    check(got == SIG + b"\x21\x00\x00\x00" + msg, f"a unix client: v2 AF_UNSPEC ({got!r})")
    if v6:
        n = len(rec[0].conns)
        reply, cport = exchange(fe6, msg, src="::1")
        want = b"PROXY TCP6 ::1 ::1 %d %d\r\n" % (cport, int(fe6.rsplit(":", 1)[1])) + msg
        got = last_data(rec[0], n)
        check(got == want, f"send_proxy v1 from ::1: {got!r}")
    bulk = b"x" * (1 << 20) + b"END\n"
    n = len(rec[0].conns)
    reply, cport = exchange(fe["send"], bulk)
    got = last_data(rec[0], n)
    hdr = b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (cport, port["send"])
    check(reply == b"ok\n" and got == hdr + bulk,
          f"1 MiB after the header arrives whole ({len(got or b'')} of {len(hdr + bulk)} bytes)")

    # 2. accept_proxy = any, passed on as v1
    # Each connection from its own PROXY source (IPv6: its own /64):
    # max_conns_per_source = 1 would refuse one whose predecessor ringlb
    # has not yet seen close.
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    for how, header, want in (
            ("v1", b"PROXY TCP4 198.51.100.7 192.0.2.1 4000 443\r\n",
             b"PROXY TCP4 198.51.100.7 192.0.2.1 4000 443\r\n"),
            ("v1 byte by byte", b"PROXY TCP4 198.51.100.8 192.0.2.1 4000 443\r\n",
             b"PROXY TCP4 198.51.100.8 192.0.2.1 4000 443\r\n"),
            ("v2 TCP6", SIG + b"\x21\x21\x00\x24" +
             socket.inet_pton(socket.AF_INET6, "2001:db8::5") + v6 + struct.pack(">HH", 4001, 443),
             b"PROXY TCP6 2001:db8::5 2001:db8::1 4001 443\r\n"),
            ("v2 TCP6 byte by byte", SIG + b"\x21\x21\x00\x24" +
             socket.inet_pton(socket.AF_INET6, "2001:db8:2::6") + v6 + struct.pack(">HH", 4001, 443),
             b"PROXY TCP6 2001:db8:2::6 2001:db8::1 4001 443\r\n")):
        n = len(rec[0].conns)
        reply, _ = exchange(fe["ap"], header + msg, bytewise="byte" in how)
        got = last_data(rec[0], n)
        check(reply == b"ok\n" and got == want + msg,
              f"accept_proxy {how} -> send_proxy v1: {got!r}")
    check("client=198.51.100.7:4000 frontend=ap" in lb.log_text(),
          "the connection log names the PROXY client")
    n = len(rec[0].conns)
    denied = rejected(adm, "ap", "deny")
    reply, _ = exchange(fe["ap"], b"PROXY TCP4 192.0.2.66 192.0.2.1 4000 443\r\n" + msg)
    check(reply == b"", "a PROXY address that a deny rule matches is closed")
    lbtest.wait_until(lambda: rejected(adm, "ap", "deny") == denied + 1,
                      "the denied PROXY address counts as reason=deny")
    check(len(rec[0].conns) == n, "the denied client never reached the server")
    # max_conns_per_source = 1: the PROXY address is the source.
    hold = socket.create_connection(("127.0.0.1", port["ap"]), timeout=10)
    hold.sendall(b"PROXY TCP4 198.51.100.9 192.0.2.1 5000 443\r\nheld\n")
    lbtest.wait_until(lambda: len(rec[0].conns) == n + 1, "the held connection reached r0")
    limited = rejected(adm, "ap", "source_conns")
    reply, _ = exchange(fe["ap"], b"PROXY TCP4 198.51.100.9 192.0.2.1 5001 443\r\n" + msg)
    check(reply == b"", "a second connection of the PROXY source is refused")
    lbtest.wait_until(lambda: rejected(adm, "ap", "source_conns") == limited + 1,
                      "it counts as reason=source_conns")
    reply, _ = exchange(fe["ap"], b"PROXY TCP4 198.51.100.10 192.0.2.1 5002 443\r\n" + msg)
    check(reply == b"ok\n", "another PROXY source from the same real address is served")
    hold.sendall(b"END\n")
    check(lbtest.recv_until_eof(hold) == b"ok\n", "the held connection ends well")
    hold.close()

    # 3. accept_proxy = v2, trusted 127.0.0.2 only, header stripped
    n = len(rec[2].conns)
    v2 = v2_tcp4("203.0.113.1", "203.0.113.2", 1, 2)
    for bytewise in (False, True):
        reply, _ = exchange(fe["ap2"], v2 + msg, src="127.0.0.2", bytewise=bytewise)
        check(reply == b"ok\n", "accept_proxy v2 from a trusted source is served")
        got = last_data(rec[2], n)
        check(got == msg, f"the header is stripped ({got!r})")
        n += 1
    base = rejected(adm, "ap2", "proxy")
    for what, payload, src in (
            ("a v1 header on a v2 frontend", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + msg,
             "127.0.0.2"),
            ("a v2 header of version 3", SIG + b"\x31\x11\x00\x0c" + bytes(12) + msg,
             "127.0.0.2"),
            ("a v2 header with a TLV past its end",
             SIG + b"\x21\x11\x00\x0f" + bytes(12) + b"\x02\x00\x09" + msg, "127.0.0.2"),
            ("no header", b"GET / HTTP/1.0\r\n\r\n", "127.0.0.2"),
            ("an untrusted sender", v2 + msg, "127.0.0.3")):
        reply, _ = exchange(fe["ap2"], payload, src=src)
        check(reply == b"", f"{what} is closed without an answer")
    with socket.create_connection(("127.0.0.1", port["ap2"]), timeout=10,
                                  source_address=("127.0.0.2", 0)) as s:
        t0 = time.monotonic()
        try:
            got = s.recv(10)
        except ConnectionResetError:
            got = b""
        waited = time.monotonic() - t0
        check(got == b"" and waited >= 0.9,
              f"a trusted client that sends nothing is closed after proxy_timeout ({waited:.2f}s)")
    lbtest.wait_until(lambda: rejected(adm, "ap2", "proxy") == base + 6,
                      "the six refusals count as reason=proxy")
    check(len(rec[2].conns) == n, "no refused client reached the server")

    # 4. source hashing sees the PROXY address
    before = [len(rec[3].conns), len(rec[4].conns)]
    for i in range(8):
        exchange(fe["hash"], b"PROXY TCP4 203.0.113.77 192.0.2.1 %d 443\r\n" % (6000 + i) + msg)
    lbtest.wait_until(lambda: len(rec[3].conns) + len(rec[4].conns) == sum(before) + 8,
                      "the 8 connections reached the servers")
    got = [len(rec[3].conns) - before[0], len(rec[4].conns) - before[1]]
    check(sorted(got) == [0, 8], f"one PROXY address, many real ports: one server ({got})")
    for i in range(16):
        exchange(fe["hash"], b"PROXY TCP4 203.0.113.%d 192.0.2.1 7000 443\r\n" % (i + 1) + msg)
    lbtest.wait_until(lambda: len(rec[3].conns) + len(rec[4].conns) == sum(before) + 24,
                      "the 16 connections reached the servers")
    check(len(rec[3].conns) > before[0] + got[0] and len(rec[4].conns) > before[1] + got[1],
          "16 PROXY addresses spread over both servers")
    check(lb.alive(), "ringlb still runs")

    # 5. Reload: accept_proxy off on ap2.
    with open(path, "w") as f:
        f.write("\n".join(ini).replace("accept_proxy = v2", "accept_proxy = off") + "\n")
    lb.signal(signal.SIGHUP)
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_config_generation") == 2,
                      "the reload is in use (generation 2)")
    n = len(rec[2].conns)
    reply, _ = exchange(fe["ap2"], v2 + msg, src="127.0.0.3")
    got = last_data(rec[2], n)
    check(reply == b"ok\n" and got == v2 + msg,
          f"after the reload ap2 forwards a PROXY header as data, from anyone ({got!r})")

    real_peers(t)


lbtest.run(main)
