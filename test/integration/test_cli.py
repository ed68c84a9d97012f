#!/usr/bin/env python3
# run-once none: ringlb -t/-V/-h and configs refused at start-up; no data path
"""ringlb's command line: -t, -V, -h, --version, --help, unknown flags, bad
configs; and the man pages stand on their own (no pointer to README.md).

-t -c on a good config (ours, and the sample lb.ini) exits 0; on each kind
of bad config it exits 1 and names FILE:LINE (and the key) of the problem;
-c with a bad config exits 1 without ever listening; -V and -h exit 0; an
unknown flag prints usage and exits 2. A server that is ringlb's own
frontend (same address, or a local one behind a wildcard bind, this host's
interface addresses included) is a config error on the server's line,
naming the frontend. -t also looks up `user =` and `group =` as start-up
does (an unknown one is FILE:LINE: KEY: no such ...), and warns, without
failing, about a TCP bind it cannot bind now.
"""
import grp
import os
import pwd
import socket
import subprocess

import lbtest
from lbtest import check

GOOD = """\
; a config using every form the contract allows
[global]
workers = 2
io = auto
forward = auto
max_conns = 1000
log_level = warn
admin =
shutdown_grace = 2s

[frontend web]
bind = 127.0.0.1:{p1}
bind = [::1]:{p2}
bind = unix:{dir}/fe.sock
backend = app

[backend app]
balance = roundrobin
connect_timeout = 500ms
idle_timeout = 1m
retries = 1
health = none
server = a 127.0.0.1:9001 weight=10
server = b localhost:9002 weight=5 max_conns=100
server = c [::1]:9003 backup
"""

BASE = """\
[global]
workers = 1
admin =

[frontend web]
bind = 127.0.0.1:18080
backend = app

[backend app]
health = none
server = a 127.0.0.1:9001
"""


def bad(old, new, *more):
    """BASE with line <old> (1-based) replaced by <new> (may hold newlines);
    <more> gives further (line, text) pairs, lines numbered as in BASE."""
    lines = BASE.splitlines()
    for n, text in ((old, new),) + more:
        lines[n - 1] = text
    return "\n".join(lines) + "\n"


def local_ipv4():
    """A non-loopback IPv4 address of this host, or None."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


# (what, text, line, key or None when the error is about a whole section)
BAD = [
    ("unknown key", bad(2, "workers = 1\nbogus = 1"), 3, "bogus"),
    ("bad duration", bad(10, "health = none\nconnect_timeout = 2x"), 11, "connect_timeout"),
    ("bad io value", bad(2, "workers = 1\nio = kqueue"), 3, "io"),
    ("bad workers", bad(2, "workers = -3"), 2, "workers"),
    ("bad bind port", bad(6, "bind = 127.0.0.1:99999"), 6, "bind"),
    ("bad bind address", bad(6, "bind = 127.0.0.300:80"), 6, "bind"),
    ("missing backend", bad(7, "backend = nope"), 7, "backend"),
    ("server without address", bad(11, "server = a"), 11, "server"),
    ("bad server weight", bad(11, "server = a 127.0.0.1:9001 weight=abc"), 11, "server"),
    ("unresolvable server", bad(11, "server = a no-such-host.invalid:9001"), 11, "server"),
    ("duplicate server", bad(11, "server = a 127.0.0.1:9001\nserver = a 127.0.0.1:9002"), 12,
     "server"),
    ("unknown balance", bad(10, "health = none\nbalance = nosuchalgo"), 11, "balance"),
    ("bad health", bad(10, "health = maybe"), 10, "health"),
    ("unknown section", BASE + "\n[bogus]\nx = 1\n", 13, None),
    ("backend with no servers", BASE + "\n[backend empty]\nhealth = none\n", 13, None),
    ("frontend without bind", bad(6, "; no bind"), 5, None),
    ("duplicate backend", BASE + "\n[backend app]\nserver = z 127.0.0.1:9009\n", 13, None),
]

# A server that is ringlb's own frontend (issue #19): the error names the
# server's line and the frontend.
LOOPS = [
    ("server at its own bind", bad(11, "server = a 127.0.0.1:18080"), 11, "server"),
    ("server behind a wildcard bind", bad(6, "bind = 0.0.0.0:18080",
                                          (11, "server = a 127.0.0.1:18080")), 11, "server"),
    ("server behind a [::] bind", bad(6, "bind = [::]:18080", (11, "server = a [::1]:18080")),
     11, "server"),
    ("second server at a bind", bad(11, "server = a 127.0.0.1:9001\nserver = b 127.0.0.1:18080"),
     12, "server"),
]


def absent(lookup, name):
    try:
        lookup(name)
        return False
    except KeyError:
        return True


def check_startup_findings(t):
    """-t finds what start-up would (issue #18): accounts that do not exist
    are errors naming FILE:LINE: KEY, under -t and at start-up alike; a TCP
    bind that cannot be bound now is only a warning under -t; unix binds
    are not tried."""
    for key, name, lookup in (("user", "nosuchuser", pwd.getpwnam),
                              ("group", "nosuchgroup", grp.getgrnam)):
        if not absent(lookup, name):
            lbtest.log(f"  note: {key} {name} exists here; that case is not run")
            continue
        path, _ = t.config(text=bad(2, f"workers = 1\n{key} = {name}"))
        want = f"{path}:3: {key}: no such {key}"
        r = ringlb("-t", "-c", path)
        check(r.returncode == 1 and want in r.stderr,
              f"-t with {key} = {name} exits 1 with {want!r} (exit {r.returncode}, "
              f"{r.stderr.strip()[:300]!r})")
        try:
            r = ringlb("-c", path, timeout=10)
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = "still running after 10s", ""
        check(rc == 1 and want in err,
              f"start-up with {key} = {name} exits 1 with the same {want!r} "
              f"(exit {rc}, {err.strip()[-300:]!r})")

    # A port another program listens on: -t passes and warns, naming the line.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    path, _ = t.config(text=bad(6, f"bind = 127.0.0.1:{port}"))
    r = ringlb("-t", "-c", path)
    holder.close()
    want = f"{path}:6: bind: warning: 127.0.0.1:{port}"
    check(r.returncode == 0 and want in r.stderr and "in use" in r.stderr,
          f"-t on a taken port exits 0 and warns {want!r} (exit {r.returncode}, "
          f"{r.stderr.strip()[:300]!r})")

    # Held with SO_REUSEPORT by this user, as the running ringlb holds its
    # binds when `systemctl reload` checks the file: start-up would join it.
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    path, _ = t.config(text=bad(6, f"bind = 127.0.0.1:{port}"))
    r = ringlb("-t", "-c", path)
    holder.close()
    check(r.returncode == 0 and "warning" not in r.stderr,
          f"-t on a port a ringlb of the same user could share passes quietly "
          f"(exit {r.returncode}, {r.stderr.strip()[:300]!r})")

    # Unix binds are not tried, so a path ringlb could not create yet passes.
    sock = os.path.join(t.dir, "no-such-dir", "fe.sock")
    path, _ = t.config(text=bad(6, f"bind = unix:{sock}"))
    r = ringlb("-t", "-c", path)
    check(r.returncode == 0 and "warning" not in r.stderr,
          f"-t does not try unix binds (exit {r.returncode}, {r.stderr.strip()[:300]!r})")


def ringlb(*args, timeout=20):
    return subprocess.run([lbtest.RINGLB, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def main(t):
    if not os.access(lbtest.RINGLB, os.X_OK):
        raise lbtest.Fail(f"{lbtest.RINGLB} does not exist or is not executable (run make)")

    path, _ = t.config(text=GOOD.format(p1=lbtest.free_port(), p2=lbtest.free_port(),
                                        dir=t.dir))
    r = ringlb("-t", "-c", path)
    check(r.returncode == 0, f"-t on a good config exits 0 (exit {r.returncode}, "
                             f"stderr {r.stderr.strip()[:300]!r})")

    sample = os.path.join(lbtest.REPO, "lb.ini")
    r = ringlb("-t", "-c", sample)
    check(r.returncode == 0, f"-t on the sample lb.ini exits 0 (exit {r.returncode}, "
                             f"stderr {r.stderr.strip()[:300]!r})")

    failures = []
    for what, text, line, key in BAD:
        path, _ = t.config(text=text)
        r = ringlb("-t", "-c", path)
        out = r.stdout + r.stderr
        want = f"{path}:{line}:" + (f" {key}:" if key else "")
        if r.returncode != 1 or want not in out:
            failures.append(f"{what}: exit {r.returncode}, wanted {want!r} in "
                            f"{out.strip()[:300]!r}")
        else:
            lbtest.log(f"  ok: {what}: exit 1, {out.strip().splitlines()[0]}")
    check(not failures, f"-t on {len(BAD)} bad configs exits 1 naming file:line: key"
          + ("".join(f"\n    {f}" for f in failures)))

    loops = list(LOOPS)
    ip = local_ipv4()
    if ip:
        loops.append((f"server on this host's {ip} behind a wildcard bind",
                      bad(6, "bind = 0.0.0.0:18080", (11, f"server = a {ip}:18080")), 11,
                      "server"))
    else:
        lbtest.log("  note: no non-loopback IPv4 address here; getifaddrs case not run")
    for what, text, line, key in loops:
        path, _ = t.config(text=text)
        r = ringlb("-t", "-c", path)
        out = r.stdout + r.stderr
        want = f"{path}:{line}: {key}:"
        if r.returncode != 1 or want not in out or "frontend web's own bind" not in out:
            failures.append(f"{what}: exit {r.returncode}, wanted {want!r} naming frontend "
                            f"web in {out.strip()[:300]!r}")
        else:
            lbtest.log(f"  ok: {what}: exit 1, {out.strip().splitlines()[0]}")
    check(not failures, f"-t on {len(loops)} configs whose server is ringlb's own frontend "
          "exits 1 naming the server's line and the frontend"
          + ("".join(f"\n    {f}" for f in failures)))

    check_startup_findings(t)

    missing = os.path.join(t.dir, "does-not-exist.ini")
    r = ringlb("-t", "-c", missing)
    check(r.returncode == 1 and missing in r.stderr,
          f"-t on a missing file exits 1 naming it (exit {r.returncode}, {r.stderr.strip()!r})")

    port = lbtest.free_port()
    path, _ = t.config(text=bad(6, f"bind = 127.0.0.1:{port}").replace(
        "workers = 1", "workers = 1\nbogus = 1"))
    try:
        r = ringlb("-c", path, timeout=10)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = "still running after 10s"
    check(rc == 1, f"-c (no -t) on a bad config exits 1 without starting (exit {rc})")

    r = ringlb("-V")
    check(r.returncode == 0 and "ringlb" in (r.stdout + r.stderr),
          f"-V exits 0 and prints the version ({(r.stdout + r.stderr).strip()!r})")
    r = ringlb("-h")
    check(r.returncode == 0 and "-c" in (r.stdout + r.stderr),
          f"-h exits 0 and prints usage (exit {r.returncode})")
    # Long options (issue #18): --help and --version do what -h and -V do.
    h, v = ringlb("-h"), ringlb("-V")
    r = ringlb("--help")
    check(r.returncode == 0 and r.stdout == h.stdout and "--help" in r.stdout
          and "--version" in r.stdout and not r.stderr,
          f"--help exits 0 and prints the usage of -h, naming both long options "
          f"(exit {r.returncode}, {r.stdout.strip()[:200]!r})")
    r = ringlb("--version")
    check(r.returncode == 0 and r.stdout == v.stdout and r.stdout.startswith("ringlb "),
          f"--version exits 0 and prints what -V prints ({r.stdout.strip()!r})")
    r = ringlb("--help=x")
    check(r.returncode == 2 and "take no argument" in r.stderr,
          f"--help=x exits 2 saying it takes no argument (exit {r.returncode})")
    r = ringlb("--no-such-flag")
    check(r.returncode == 2 and "usage" in r.stderr.lower() and "--no-such-flag" in r.stderr,
          f"unknown flag prints usage on stderr, naming it, and exits 2 (exit {r.returncode})")
    # The man pages are installed and README.md is not: they must not send
    # the reader there.
    for page in sorted(os.listdir(os.path.join(lbtest.REPO, "man"))):
        with open(os.path.join(lbtest.REPO, "man", page)) as f:
            check("README" not in f.read(), f"man/{page} does not point to README")
    r = ringlb("-Z")
    check(r.returncode == 2, f"unknown short flag -Z exits 2 (exit {r.returncode})")


if __name__ == "__main__":
    lbtest.run(main, need_mode=False)
