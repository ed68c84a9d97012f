#!/usr/bin/env python3
"""TLS passthrough routed on the ClientHello's server name (issue #17).

Three `openssl s_server` backends, each with its own self-signed
certificate (made here with `openssl req`), behind frontend "tls":

    sni = alpha.test alpha        exact
    sni = *.beta.test beta        wildcard
    backend = dflt                no name, or a name no rule matches
    sni_timeout = 1s

and frontend "strict" with the alpha rule only (no default backend). The
certificate a client receives proves where ringlb sent it; TLS is never
terminated, so a handshake that completes proves the hello reached the
server byte for byte.

 1. Python ssl and `openssl s_client -servername`: exact (any case),
    wildcard (one and two labels), a name without a label before the
    wildcard's dot, an unknown name and no name go where they should.
 2. A real hello (Python's ssl through a memory BIO) sent one byte at a
    time; the same hello re-cut into two TLS records; a 2.5 KB hello (a
    long ALPN list: OpenSSL 3.0 cannot make post-quantum key shares) in
    two records sent as two writes. Each handshake completes.
 3. Garbage, plain HTTP, and a client that sends nothing are closed (the
    last after sni_timeout) and counted in
    ringlb_frontend_rejected_total{reason="sni"}; an unknown name on
    "strict" too.
 4. Frontend "both": accept_proxy = v1 then the same sni rules: a PROXY
    header, then a hello, each possibly cut up, route by the name; the
    header is stripped (the handshake completes) and a hello without a
    header is refused as reason="proxy".
 5. A reload that sends alpha.test to beta and drops the default backend:
    new hellos follow the new rules, and a connection made before the
    reload keeps its server.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import lbtest
from lbtest import check

NAMES = ("alpha", "beta", "dflt")


def make_cert(t, name):
    key = os.path.join(t.dir, f"{name}.key")
    crt = os.path.join(t.dir, f"{name}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", f"/CN={name}.backend"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(crt) as f:
        return key, crt, ssl.PEM_cert_to_DER_cert(f.read())


class TlsServer:
    """openssl s_server with its own certificate on a free port."""

    def __init__(self, t, name):
        self.name = name
        key, crt, self.der = make_cert(t, name)
        self.errpath = os.path.join(t.dir, f"s_server-{name}.log")
        self.err = open(self.errpath, "wb")
        port = lbtest.free_port()
        self.addr = f"127.0.0.1:{port}"
        self.proc = lbtest._spawn(["openssl", "s_server", "-accept", self.addr, "-cert", crt,
                                   "-key", key, "-www"], subprocess.PIPE, self.err)
        # It says ACCEPT once listening (after a line about DH parameters).
        seen = b""
        for _ in range(5):
            line = self.proc.stdout.readline()
            seen += line
            if not line or b"ACCEPT" in line:
                break
        check(b"ACCEPT" in seen, f"s_server {name} listens on {self.addr} ({seen!r})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def client_ctx(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def cert_via_python(addr, name):
    """The DER certificate a Python ssl client gets through <addr>."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with client_ctx().wrap_socket(raw, server_hostname=name) as s:
            return s.getpeercert(binary_form=True)


def cert_via_s_client(addr, name):
    """The subject line `openssl s_client -servername <name>` prints."""
    out = subprocess.run(["openssl", "s_client", "-connect", addr, "-servername", name],
                         input=b"", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=10).stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("subject="):
            return line
    return out[-300:]


def hello_bio(name, alpn=None):
    """A client TLS object on memory BIOs and the ClientHello it sends."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(alpn).wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, out, out.read()


def records(hello, cut):
    """The handshake bytes of the one-record <hello> re-cut into two
    records, the first carrying <cut> bytes."""
    check(hello[0] == 22 and len(hello) == 5 + int.from_bytes(hello[3:5], "big"),
          "the hello is one handshake record")
    hs = hello[5:]

    def rec(b):
        return hello[:3] + len(b).to_bytes(2, "big") + b
    return rec(hs[:cut]) + rec(hs[cut:])


def finish(sock, obj, inc, out):
    """Completes the handshake of <obj> over <sock>; returns the server's
    certificate (DER)."""
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                sock.sendall(pending)
            data = sock.recv(65536)
            check(data, "the server answers the hello")
            inc.write(data)
    pending = out.read()
    if pending:
        sock.sendall(pending)
    return obj.getpeercert(binary_form=True)


def raw_conn(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_without_data(s, timeout=10.0):
    """Whether ringlb closes <s> (EOF or reset) without sending a byte."""
    s.settimeout(timeout)
    try:
        got = s.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    s.close()
    return got == b""


def rejected(adm, fe):
    return lbtest.metric_sum(adm, "ringlb_frontend_rejected_total", frontend=fe, reason="sni")


def main(t):
    t.require_mode()
    if not shutil.which("openssl"):
        why = "openssl (the command) is not installed (apt-get install openssl)"
        if os.environ.get("CI"):
            raise lbtest.Fail(f"{why}; CI must install it (.ci/deps test)")
        raise lbtest.Skip(why)
    srv = {n: TlsServer(t, n) for n in NAMES}
    t.backends.extend(srv.values())
    adm = f"127.0.0.1:{lbtest.free_port()}"
    fe_tls = f"127.0.0.1:{lbtest.free_port()}"
    fe_strict = f"127.0.0.1:{lbtest.free_port()}"
    fe_both = f"127.0.0.1:{lbtest.free_port()}"
    io, fwd = lbtest.MODES[t.mode]

    def ini(alpha_to="alpha", default="backend = dflt"):
        out = ["[global]", "workers = 2", f"io = {io}", f"forward = {fwd}", "log_level = info",
               f"admin = {adm}",
               "", "[frontend tls]", f"bind = {fe_tls}", f"sni = alpha.test {alpha_to}",
               "sni = *.beta.test beta", default, "sni_timeout = 1s",
               "", "[frontend strict]", f"bind = {fe_strict}", "sni = ALPHA.test alpha",
               "sni_timeout = 1s",
               "", "[frontend both]", f"bind = {fe_both}", "accept_proxy = v1",
               "sni = alpha.test alpha", "sni = *.beta.test beta", "backend = dflt"]
        for n in NAMES:
            out += ["", f"[backend {n}]", "health = none", f"server = {n} {srv[n].addr}"]
        return "\n".join(out) + "\n"
    path, _ = t.config(text=ini())
    lb = lbtest.Ringlb(t, path, [[fe_tls], [fe_strict], [fe_both]], "ringlb0")
    t.lbs.append(lb)
    lb.wait_ready()
    # wait_ready's probes connected and closed without a byte: each is a
    # ClientHello cut short. (At least one each: on a loaded machine a probe
    # that timed out in connect() is retried, and the first may still be
    # accepted.)
    lbtest.wait_until(lambda: rejected(adm, "tls") >= 1 and rejected(adm, "strict") >= 1,
                      "the start-up probes are counted as sni rejections")

    # 1. Routing by name, Python's ssl and openssl s_client.
    for name, want in (("alpha.test", "alpha"), ("ALPHA.Test", "alpha"),
                       ("x.beta.test", "beta"), ("a.b.beta.test", "beta"),
                       ("beta.test", "dflt"), ("other.test", "dflt"), (None, "dflt")):
        got = cert_via_python(fe_tls, name)
        check(got == srv[want].der, f"python ssl, server_hostname={name!r}: {want}'s cert")
    for name, want in (("alpha.test", "alpha"), ("www.beta.test", "beta"),
                       ("nothing.example", "dflt")):
        subj = cert_via_s_client(fe_tls, name)
        check(f"CN = {want}.backend" in subj,
              f"openssl s_client -servername {name}: {want}'s cert ({subj})")
    check(cert_via_python(fe_strict, "alpha.test") == srv["alpha"].der,
          "strict: alpha.test reaches alpha")

    # 2. Hellos cut up: one byte a write, two records, a big one.
    obj, inc, out, hello = hello_bio("alpha.test")
    with raw_conn(fe_tls) as s:
        for i in range(len(hello)):
            s.sendall(hello[i:i + 1])
        check(finish(s, obj, inc, out) == srv["alpha"].der,
              f"a {len(hello)}-byte hello sent one byte at a time reaches alpha")
    for cut in (100, 2):
        obj, inc, out, hello = hello_bio("two.beta.test")
        with raw_conn(fe_tls) as s:
            s.sendall(records(hello, cut))
            check(finish(s, obj, inc, out) == srv["beta"].der,
                  f"a hello in two TLS records (the first of {cut} bytes) reaches beta")
    alpn = [f"proto-{i:03d}-" + "x" * 16 for i in range(100)]
    obj, inc, out, hello = hello_bio("alpha.test", alpn)
    check(len(hello) > 2400, f"the big hello is {len(hello)} bytes")
    split = records(hello, 1400)
    with raw_conn(fe_tls) as s:
        s.sendall(split[:1405])
        s.sendall(split[1405:])
        check(finish(s, obj, inc, out) == srv["alpha"].der,
              f"a {len(hello)}-byte hello in two records and two writes reaches alpha")

    # 3. Not TLS, not in time, no backend: closed and counted.
    base = rejected(adm, "tls")
    with raw_conn(fe_tls) as s:
        s.sendall(bytes(range(256)) * 4)
        check(closed_without_data(s), "garbage is closed without an answer")
    with raw_conn(fe_tls) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        check(closed_without_data(s), "plain HTTP is closed without an answer")
    t0 = time.monotonic()
    with raw_conn(fe_tls) as s:
        check(closed_without_data(s, timeout=15), "a silent client is closed")
        waited = time.monotonic() - t0
    check(waited >= 0.9, f"the silent client was closed after sni_timeout ({waited:.2f}s)")
    lbtest.wait_until(lambda: rejected(adm, "tls") == base + 3,
                      "garbage, HTTP and the silent client count as reason=sni")
    base_strict = rejected(adm, "strict")
    with raw_conn(fe_strict) as s:
        obj, inc, out, hello = hello_bio("other.test")
        s.sendall(hello)
        check(closed_without_data(s), "strict: a name without a rule is closed")
    lbtest.wait_until(lambda: rejected(adm, "strict") == base_strict + 1,
                      "strict: the unknown name counts as reason=sni")
    log = lb.log_text()
    check("not a usable ClientHello: not-tls" in log, "the log says why garbage was refused")
    check("no backend for server name 'other.test'" in log,
          "the log names the server name without a backend")
    # Everything still works after the rejections.
    check(cert_via_python(fe_tls, "x.beta.test") == srv["beta"].der, "beta still reachable")

    # 4. A PROXY header, then the hello.
    proxy = b"PROXY TCP4 192.0.2.7 192.0.2.1 5555 443\r\n"
    for name, want, cut in (("alpha.test", "alpha", None), ("y.beta.test", "beta", 20),
                            ("zzz.test", "dflt", 1)):
        obj, inc, out, hello = hello_bio(name)
        data = proxy + hello
        with raw_conn(fe_both) as s:
            step = cut or len(data)
            for i in range(0, len(data), step):
                s.sendall(data[i:i + step])
            check(finish(s, obj, inc, out) == srv[want].der,
                  f"PROXY header + hello for {name} (pieces of {step}) reaches {want}")
    proxy_refused = lbtest.metric_sum(adm, "ringlb_frontend_rejected_total", frontend="both",
                                      reason="proxy")
    with raw_conn(fe_both) as s:
        s.sendall(hello_bio("alpha.test")[3])
        check(closed_without_data(s), "a hello without the PROXY header is closed")
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_frontend_rejected_total",
                                                frontend="both", reason="proxy")
                      == proxy_refused + 1, "and counted as reason=proxy")

    # 5. Reload: alpha.test -> beta, no default backend any more.
    host, port = fe_tls.rsplit(":", 1)
    # (alpha's s_server serves nobody else while this one is open.)
    before = client_ctx().wrap_socket(socket.create_connection((host, int(port)), timeout=5),
                                      server_hostname="alpha.test")
    check(before.getpeercert(binary_form=True) == srv["alpha"].der, "before the reload: alpha")
    with open(path, "w") as f:
        f.write(ini(alpha_to="beta", default=""))
    lb.signal(signal.SIGHUP)
    lbtest.wait_until(lambda: lbtest.metric_sum(adm, "ringlb_config_generation") == 2,
                      "the reload is in use (generation 2)")
    check(cert_via_python(fe_tls, "alpha.test") == srv["beta"].der,
          "after the reload alpha.test reaches beta")
    base = rejected(adm, "tls")
    with raw_conn(fe_tls) as s:
        obj, inc, out, hello = hello_bio("other.test")
        s.sendall(hello)
        check(closed_without_data(s), "after the reload an unknown name is closed (no default)")
    lbtest.wait_until(lambda: rejected(adm, "tls") == base + 1, "and counted as reason=sni")
    before.sendall(b"GET / HTTP/1.0\r\n\r\n")
    page = b""
    while True:
        b = before.recv(65536)
        if not b:
            break
        page += b
    before.close()
    check(page.startswith(b"HTTP/1.0 200"),
          f"the connection made before the reload still talks to alpha ({page[:40]!r})")
    check(lb.alive(), "ringlb still runs")


lbtest.run(main)
