"""lbtest.py - helpers for ringlb's integration tests (stdlib only).

A test script does

    import lbtest
    def main(t):            # t is an lbtest.Test
        be = t.backend("echo")
        lb = t.ringlb(servers=[be])
        ...
    lbtest.run(main)

and run() takes care of the rest: the mode from argv (copy, splice, epoll,
or none for tests that do not start a data path), a hard timeout
(signal.alarm), skipping with exit 77 when the kernel lacks what the mode
needs, stopping every process the test started (even on failure or on
SIGTERM from the runner), and printing ringlb's log when the test fails.

Exit codes: 0 pass, 1 fail, 77 skip.

Environment:
  RINGLB          path of the daemon (default build/ringlb, from the repo root)
  LBTEST_DIR      where configs and logs go (default: a fresh temp dir,
                  removed on success)
  LBTEST_TIMEOUT  seconds before a test is failed as hung (default 90)
"""

import ctypes
import errno
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RINGLB = os.path.abspath(os.path.join(REPO, os.environ.get("RINGLB", "build/ringlb")))
BACKEND_PY = os.path.join(REPO, "bench", "backend.py")

# mode -> ([global] io, [global] forward)
MODES = {
    "copy": ("uring", "copy"),
    "splice": ("uring", "splice"),
    "epoll": ("epoll", "copy"),
    # The default: copy, with bulk flows moving to splice mid-stream.
    "auto": ("uring", "auto"),
}

SKIP = 77


class Fail(Exception):
    """The behaviour under test is wrong."""


class Skip(Exception):
    """The machine cannot run this test (missing kernel feature)."""


class Timeout(BaseException):
    """The per-test alarm fired (BaseException so `except Exception` in a
    test's helper threads or loops cannot swallow it)."""


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    """Fails the test with <msg> unless <cond>; prints what was checked."""
    if not cond:
        raise Fail(msg)
    log(f"  ok: {msg}")


# ---------------------------------------------------------------- kernel probes

_io_uring_probe = None


def io_uring_available():
    """Returns (bool, why): whether io_uring_setup(2) works for this process.

    ENOSYS means seccomp or an old kernel, EPERM kernel.io_uring_disabled.
    """
    global _io_uring_probe
    if _io_uring_probe is not None:
        return _io_uring_probe
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                _io_uring_probe = (False, "kernel.io_uring_disabled = 2")
                return _io_uring_probe
    except OSError:
        pass
    nr = 425  # io_uring_setup: same number on every architecture (unified table)
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(nr, 4, params)
    if fd < 0:
        err = ctypes.get_errno()
        _io_uring_probe = (False, f"io_uring_setup: {os.strerror(err)}")
    else:
        os.close(fd)
        _io_uring_probe = (True, "io_uring_setup works")
    return _io_uring_probe


# Log lines by which ringlb says it could not use what the mode asked for:
# io_uring given up for epoll, splice given up for copying. Lines that only
# say an optional io_uring feature is missing do not match.
_URING_FALLBACK_RE = re.compile(
    r"epoll.*(fall|instead|unavailable|disabled|not supported|unsupported|ENOSYS|EPERM)"
    r"|(fall|instead|unavailable|disabled|not supported|unsupported|ENOSYS|EPERM).*epoll"
    r"|\bio\b[:= ]+epoll",
    re.IGNORECASE)
_SPLICE_FALLBACK_RE = re.compile(
    r"splice.*(fall ?back|falling back|instead|unavailable|not supported|unsupported)",
    re.IGNORECASE)
# When ringlb exits at start-up in a uring mode, a line like this means the
# kernel refused io_uring (or a feature ringlb needs) rather than a bug.
_URING_REFUSED_RE = re.compile(
    r"(io_uring|uring).*(ENOSYS|EPERM|EOPNOTSUPP|not permitted|not implemented|"
    r"unavailable|not supported|unsupported)",
    re.IGNORECASE)


# ---------------------------------------------------------------- sockets

def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_reserved = []


def free_port(host="127.0.0.1"):
    """Returns a loopback port nobody uses right now (the kernel picks it
    for a socket that is closed at once). A port handed out by this process
    is never handed out twice; another process could still take it before
    ringlb binds it, which on a test machine is rare enough."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _reserved:
            _reserved.append(port)
            return port
    raise RuntimeError("no free port")


def closed_port():
    """Returns (sock, port): a port bound but not listening, so every connect
    to it is refused (RST) and no other process can take it meanwhile. Keep
    <sock> open for as long as the port must stay refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def connect(addr, timeout=5.0):
    """Connects to "host:port", "[v6]:port" or "unix:/path"."""
    fam, sa = parse_addr(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sa)
    except BaseException:
        s.close()
        raise
    return s


def parse_addr(text):
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = text.rpartition(":")
    return socket.AF_INET, (host, int(port))


def recv_until_eof(sock, limit=1 << 30):
    """Reads until EOF; returns bytes. A reset raises ConnectionResetError."""
    chunks = []
    n = 0
    while True:
        b = sock.recv(1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        n += len(b)
        if n > limit:
            raise Fail(f"more than {limit} bytes received")


def forward(src, dst, edit=None):
    """Copies <src> to <dst> until EOF, then shuts down <dst>'s write side,
    as a proxy forwards a FIN. <edit>(offset, chunk) may return a changed
    chunk. Returns the byte count; socket errors propagate."""
    n = 0
    while True:
        b = src.recv(1 << 16)
        if not b:
            dst.shutdown(socket.SHUT_WR)
            return n
        if edit:
            b = edit(n, b)
        dst.sendall(b)
        n += len(b)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(min(1 << 20, n - len(buf)))
        if not b:
            raise Fail(f"EOF after {len(buf)} of {n} bytes")
        buf += b
    return bytes(buf)


class Stream:
    """One connection driven by pump(): sends <payload> (then SHUT_WR when
    <half_close>), and receives until <expect> bytes arrived (or EOF when
    <until_eof>). Received bytes are hashed, and kept when <keep>."""

    def __init__(self, sock, payload, expect=None, half_close=False, until_eof=False,
                 keep=True, chunk=256 * 1024):
        self.sock = sock
        self.payload = memoryview(payload)
        self.sent = 0
        self.expect = len(payload) if expect is None else expect
        self.half_close = half_close
        self.until_eof = until_eof
        self.keep = keep
        self.chunk = chunk
        self.received = bytearray() if keep else None
        self.nrecv = 0
        self.hash = hashlib.sha256()
        self.eof = False
        self.error = None
        self.shut = False
        self.done_at = None
        sock.setblocking(False)

    def want_write(self):
        return self.sent < len(self.payload) or (self.half_close and not self.shut)

    def want_read(self):
        if self.error or self.eof:
            return False
        return self.until_eof or self.nrecv < self.expect

    def finished(self):
        return self.error is not None or (not self.want_write() and not self.want_read())


def pump(streams, timeout):
    """Drives every Stream concurrently from one thread until each has
    finished or <timeout> seconds passed. Returns the streams not finished."""
    sel = selectors.DefaultSelector()
    regs = {}

    def update(st):
        ev = 0
        if st.error is None:
            if st.want_read():
                ev |= selectors.EVENT_READ
            if st.want_write():
                ev |= selectors.EVENT_WRITE
        old = regs.get(st)
        if old == ev:
            return
        if old:
            if ev:
                sel.modify(st.sock, ev, st)
            else:
                sel.unregister(st.sock)
        elif ev:
            sel.register(st.sock, ev, st)
        regs[st] = ev
        if not ev and st.done_at is None:
            st.done_at = time.monotonic()

    for st in streams:
        update(st)
    deadline = time.monotonic() + timeout
    live = sum(1 for st in streams if regs.get(st))
    while live:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, ev in sel.select(min(left, 1.0)):
            st = key.data
            if ev & selectors.EVENT_WRITE:
                try:
                    if st.sent < len(st.payload):
                        st.sent += st.sock.send(st.payload[st.sent:st.sent + st.chunk])
                    elif st.half_close and not st.shut:
                        st.sock.shutdown(socket.SHUT_WR)
                        st.shut = True
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    st.error = e
            if ev & selectors.EVENT_READ and st.error is None:
                try:
                    b = st.sock.recv(1 << 20)
                    if not b:
                        st.eof = True
                    else:
                        st.nrecv += len(b)
                        st.hash.update(b)
                        if st.keep:
                            st.received += b
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    st.error = e
            update(st)
        live = sum(1 for st in streams if regs.get(st))
    sel.close()
    return [st for st in streams if regs.get(st)]


# ---------------------------------------------------------------- processes

def _spawn(argv, stdout, stderr, nofile=None):
    """Starts <argv> so that it dies with this process even if we are killed
    with SIGKILL (PR_SET_PDEATHSIG through setpriv, when present), with its
    open-files limit (soft and hard) set to <nofile> if given."""
    if nofile is not None:
        prlimit = shutil.which("prlimit")
        if not prlimit:
            raise Fail("prlimit (util-linux) is needed to set an open-files limit")
        argv = [prlimit, f"--nofile={nofile}:{nofile}", "--"] + argv
    setpriv = shutil.which("setpriv")
    if setpriv:
        argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            close_fds=True)


class Backend:
    """A bench/backend.py process; <addr> is "127.0.0.1:PORT"."""

    def __init__(self, t, mode, name, listen):
        self._start(t, [sys.executable, BACKEND_PY, "--listen", listen, "--mode", mode,
                        "--name", name], mode, name, f"backend-{name}.log",
                    f"backend {name}", RuntimeError)

    def _start(self, t, argv, mode, name, logname, what, error):
        """Spawns <argv> and reads the "listening on ADDR" line it prints
        once ready; raises <error> naming <what> if it never comes."""
        self.mode = mode
        self.name = name
        self.errpath = os.path.join(t.dir, logname)
        self.err = open(self.errpath, "wb")
        self.proc = _spawn(argv, subprocess.PIPE, self.err)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            self.proc.wait(5)
            with open(self.errpath, "rb") as f:
                msg = f.read().decode(errors="replace")
            raise error(f"{what} did not start: {line!r} {msg}")
        self.addr = m.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


class InProcBackend:
    """A listener served by threads of this process, for behaviour
    backend.py has no mode for. <handler(sock, info)> runs per connection;
    <info> is a dict the handler may fill (kept in self.conns)."""

    def __init__(self, handler, host="127.0.0.1"):
        self.handler = handler
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, 0))
        self.ls.listen(1024)
        self.addr = f"{host}:{self.ls.getsockname()[1]}"
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            info = {"opened": time.monotonic()}
            with self.lock:
                self.conns.append(info)
            threading.Thread(target=self._run, args=(s, info), daemon=True).start()

    def _run(self, s, info):
        try:
            self.handler(s, info)
        except Exception as e:  # recorded for the test to look at
            info["error"] = e
        finally:
            info["closed"] = time.monotonic()
            s.close()

    def stop(self):
        self.stopping = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()


def _probe_done(s, bound=0.3):
    """Half-closes probe connection <s> and reads until ringlb closes it,
    then closes it. The probe made ringlb pick a server, possibly on
    another worker a moment later; once ringlb has closed the client side
    (the server echoed the FIN back, or refused, or none was up) that pick
    has happened, so it cannot interleave with the picks a test counts.
    A server that never closes (a hang backend, one that does not answer
    the connect) is not waited for past <bound> seconds: its pick happened
    long before."""
    try:
        s.shutdown(socket.SHUT_WR)
        s.settimeout(bound)
        while s.recv(65536):
            pass
    except OSError:
        pass  # a reset is a close too; a timeout is the bound
    finally:
        s.close()


class Ringlb:
    """A running build/ringlb. <fe[i]> lists the bind addresses of frontend
    i; <addr> is the first frontend's first bind."""

    def __init__(self, t, cfgpath, fe, name, nofile=None):
        self.t = t
        self.cfgpath = cfgpath
        self.fe = fe
        self.addrs = [a for binds in fe for a in binds]
        self.addr = self.addrs[0]
        self.logpath = os.path.join(t.dir, f"{name}.log")
        self.logf = open(self.logpath, "wb")
        self.proc = _spawn([RINGLB, "-c", cfgpath], subprocess.DEVNULL, self.logf, nofile)
        self.exit_code = None

    def log_text(self):
        self.logf.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=10.0):
        """Waits until every bind address accepts a connection, and until
        ringlb is done with each of those probe connections (see
        _probe_done)."""
        deadline = time.monotonic() + timeout
        pending = list(self.addrs)
        while pending:
            rc = self.proc.poll()
            if rc is not None:
                self.t.check_fallback(self)
                raise Fail(f"ringlb exited with {rc} before accepting on {pending[0]}")
            try:
                s = connect(pending[0], timeout=1.0)
            except OSError:
                if time.monotonic() > deadline:
                    raise Fail(f"ringlb not accepting on {pending[0]} after {timeout}s")
                time.sleep(0.02)
                continue
            _probe_done(s)
            pending.pop(0)
        self.t.check_fallback(self)

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Returns ringlb's exit code, or None if it still runs after <timeout>."""
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def _run_once(path):
    """Whether the test file <path> carries run.sh's run-once marker."""
    try:
        with open(path) as f:
            head = [next(f, "") for _ in range(20)]
    except OSError:
        return False
    return any(re.match(r"# run-once( [a-z]+)?: .", line) for line in head)


class Test:
    """Per-test state: mode, work dir, and everything to stop at the end."""

    def __init__(self, name, mode):
        self.name = name
        self.mode = mode
        d = os.environ.get("LBTEST_DIR")
        if d:
            os.makedirs(d, exist_ok=True)
            self.dir = d
            self.keep_dir = True
        else:
            self.dir = tempfile.mkdtemp(prefix=f"lbtest-{name}-")
            self.keep_dir = False
        self.backends = []
        self.lbs = []
        self.held = []  # sockets kept open (closed ports)
        self.ncfg = 0
        # A run-once test (see run.sh) runs ringlb as lb.ini's defaults have
        # it (io = auto, forward = auto), so that a machine without
        # io_uring runs it on epoll instead of skipping it.
        self.once = _run_once(sys.argv[0])

    # -- processes

    def backend(self, mode, name=None, listen="127.0.0.1:0"):
        name = name or f"{mode}{len(self.backends)}"
        b = Backend(self, mode, name, listen)
        self.backends.append(b)
        return b

    def inproc_backend(self, handler):
        b = InProcBackend(handler)
        self.backends.append(b)
        return b

    def refused_addr(self):
        """A "127.0.0.1:PORT" where connections are refused."""
        s, port = closed_port()
        self.held.append(s)
        return f"127.0.0.1:{port}"

    def config(self, servers=None, backend_opts=None, global_opts=None, binds=None,
               frontends=None, text=None):
        """Writes an lb.ini for this mode and returns (path, fe) where fe[i]
        lists the bind addresses of frontend i.

        <servers>: list of Backend/addresses for one frontend "fe" -> "be".
        <frontends>: instead, a list of (binds, servers, backend_opts) for
        several frontend/backend pairs. <text>: raw text, used as is.
        """
        self.ncfg += 1
        path = os.path.join(self.dir, f"lb{self.ncfg}.ini")
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
            return path, [binds or []]
        if frontends is None:
            frontends = [(binds, servers, backend_opts)]
        io, fwd = ("auto", "auto") if self.once else MODES.get(self.mode, ("auto", "auto"))
        g = {"workers": "2", "io": io, "forward": fwd, "max_conns": "10000",
             "log_level": "info", "admin": "", "shutdown_grace": "30s"}
        g.update(global_opts or {})
        out = ["; written by test/integration/lbtest.py", "[global]"]
        out += [f"{k} = {v}".rstrip() for k, v in g.items()]
        fe = []
        for i, (fb, srv, bopts) in enumerate(frontends):
            fb = fb or [f"127.0.0.1:{free_port()}"]
            fe.append(fb)
            out += ["", f"[frontend fe{i}]"]
            out += [f"bind = {b}" for b in fb]
            out += [f"backend = be{i}"]
            o = {"balance": "roundrobin", "connect_timeout": "2s", "idle_timeout": "1h",
                 "retries": "2", "health": "none"}
            o.update(bopts or {})
            out += ["", f"[backend be{i}]"]
            out += [f"{k} = {v}" for k, v in o.items()]
            for j, s in enumerate(srv or []):
                addr = s if isinstance(s, str) else s.addr
                out.append(f"server = s{j} {addr}")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path, fe

    def ringlb(self, servers=None, backend_opts=None, global_opts=None, binds=None,
               frontends=None, wait=True, nofile=None):
        """Writes a config (see config()), starts ringlb -c on it (with its
        open-files limit set to <nofile> if given) and, unless <wait> is
        false, waits until it accepts."""
        self.require_mode()
        path, fe = self.config(servers, backend_opts, global_opts, binds, frontends)
        lb = Ringlb(self, path, fe, f"ringlb{len(self.lbs)}", nofile)
        self.lbs.append(lb)
        log(f"  started ringlb ({self.mode}) on {', '.join(lb.addrs)}, config {path}")
        if wait:
            lb.wait_ready()
        return lb

    # -- checks

    def require_mode(self):
        if self.mode not in MODES:
            raise Fail(f"test needs a mode ({', '.join(MODES)}), got {self.mode!r}")
        if not os.access(RINGLB, os.X_OK):
            raise Fail(f"{RINGLB} does not exist or is not executable (run make)")
        if MODES[self.mode][0] == "uring" and not self.once:
            ok, why = io_uring_available()
            if not ok:
                raise Skip(f"io_uring unavailable here ({why})")

    def check_fallback(self, lb):
        """Skips a uring/splice mode whose ringlb logged that it could not
        use io_uring or splice and fell back: that run tests something else."""
        if self.mode not in MODES or self.mode == "epoll" or self.once:
            return
        exited = lb.proc.poll() not in (None, 0)
        for line in lb.log_text().splitlines():
            if _URING_FALLBACK_RE.search(line):
                why = "fell back from io_uring"
            elif self.mode == "splice" and _SPLICE_FALLBACK_RE.search(line):
                why = "fell back from splice"
            elif exited and _URING_REFUSED_RE.search(line):
                why = "could not start io_uring"
            else:
                continue
            raise Skip(f"ringlb {why} (mode {self.mode} not tested): {line.strip()}")

    # -- teardown

    def stop_all_checked(self):
        """Stops every ringlb still running with SIGTERM, as a user would,
        and fails unless it exits 0: a crash or a sanitizer report on the
        way out (ASan leak checks run at exit) fails the test."""
        for lb in self.lbs:
            if not lb.alive():
                continue
            lb.signal(signal.SIGTERM)
            rc = lb.wait_exit(10)
            if rc is None:
                log("  note: ringlb still running 10s after SIGTERM (connections open?)")
                continue
            if rc != 0:
                raise Fail(f"ringlb exited {rc} on SIGTERM at the end of the test")
            log("  ok: ringlb exited 0 on SIGTERM at the end")


    def cleanup(self):
        for lb in self.lbs:
            try:
                lb.stop()
            except Exception:
                pass
        for b in self.backends:
            try:
                b.stop()
            except Exception:
                pass
        for s in self.held:
            s.close()

    def dump_logs(self):
        for lb in self.lbs:
            try:
                text = lb.log_text()
            except Exception as e:
                text = f"(cannot read: {e})"
            rc = lb.proc.poll()
            print(f"---- {lb.logpath} (ringlb -c {lb.cfgpath}, "
                  f"{'running' if rc is None else f'exit {rc}'}) ----", file=sys.stderr)
            print(text.rstrip()[-20000:] or "(empty)", file=sys.stderr)
            try:
                with open(lb.cfgpath) as f:
                    print(f"---- {lb.cfgpath} ----\n{f.read().rstrip()}", file=sys.stderr)
            except OSError:
                pass
        for b in self.backends:
            if isinstance(b, Backend):
                try:
                    with open(b.errpath, "rb") as f:
                        text = f.read().decode(errors="replace").strip()
                except OSError:
                    text = ""
                if text:
                    print(f"---- {b.errpath} ----\n{text}", file=sys.stderr)
        sys.stderr.flush()


def _on_alarm(signum, frame):
    raise Timeout()


def _on_term(signum, frame):
    raise Timeout()


def run(fn, modes=tuple(MODES), need_mode=True):
    """Runs test function <fn(t)> for the mode in argv[1] and exits 0/1/77.

    <need_mode>: false for tests that do not start a data path (CLI); they
    accept no argument or "none".
    """
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    mode = sys.argv[1] if len(sys.argv) > 1 else ("none" if not need_mode else "")
    if need_mode and mode not in modes:
        print(f"usage: {sys.argv[0]} {'|'.join(modes)}", file=sys.stderr)
        sys.exit(2)
    limit = max(1, int(os.environ.get("LBTEST_TIMEOUT", "90")))
    raise_nofile()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    t = Test(name, mode)
    log(f"{name} [{mode}]")
    rc = 1
    t0 = time.monotonic()
    signal.alarm(limit)
    try:
        fn(t)
        for lb in t.lbs:
            t.check_fallback(lb)
        t.stop_all_checked()
        rc = 0
    except Skip as e:
        log(f"SKIP {name} [{mode}]: {e}")
        rc = SKIP
    except Fail as e:
        print(f"FAIL {name} [{mode}]: {e}", file=sys.stderr)
    except Timeout:
        print(f"FAIL {name} [{mode}]: timed out after {time.monotonic() - t0:.1f}s "
              f"(limit {limit}s)", file=sys.stderr)
        traceback.print_exc()
    except Exception:
        print(f"FAIL {name} [{mode}]: unexpected exception", file=sys.stderr)
        traceback.print_exc()
    finally:
        signal.alarm(0)
        if rc == 1:
            t.dump_logs()
        t.cleanup()
        if not t.keep_dir and rc != 1:
            shutil.rmtree(t.dir, ignore_errors=True)
    if rc == 0:
        log(f"PASS {name} [{mode}] in {time.monotonic() - t0:.1f}s")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # helper threads may still block in recv; do not wait for them


def echoes(where, msg=b"ping\n", timeout=5.0):
    """Whether <msg> sent on a new connection to <where> (an address) or on
    the socket <where> comes back whole, within <timeout> s a read; False
    on EOF, a reset or a timeout."""
    try:
        if isinstance(where, str):
            with connect(where, timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(msg)
                return recv_exact(s, len(msg)) == msg
        where.sendall(msg)
        return recv_exact(where, len(msg)) == msg
    except (OSError, Fail):
        return False


def metric_sum(adm, name, **labels):
    """The sum of the samples of <name> in /metrics whose labels include
    <labels>."""
    return sum(v for (n, lbl), v in admin_metrics(adm).items()
               if n == name and all(dict(lbl).get(k) == want for k, want in labels.items()))


def thread_cpu(pid, name):
    """CPU seconds (user + system) the thread called <name> of <pid> used."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == name:
            fields = stat[stat.rindex(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise Fail(f"no thread {name} in process {pid}")


def thread_status(pid):
    """[{field: value}] from /proc/<pid>/task/*/status, one dict a thread."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            out.append({k: v.strip() for k, _, v in (line.partition(":") for line in f)})
    return out


def cpu_list(text):
    """'0-2,5' -> {0, 1, 2, 5}"""
    cpus = set()
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def worker_threads(pid):
    """{thread name: CPUs it may run on} of the ringlb-wN threads of <pid>."""
    return {d["Name"]: cpu_list(d["Cpus_allowed_list"])
            for d in thread_status(pid) if d["Name"].startswith("ringlb-w")}


# ---------------------------------------------------------------- named servers

def named_handler(name):
    """An InProcBackend handler that writes <name> and a newline, then
    echoes until the client closes: one connection tells who answered and
    stays usable as long as a test wants."""
    def handler(s, info):
        s.sendall(name.encode() + b"\n")
        while True:
            b = s.recv(4096)
            if not b:
                return
            s.sendall(b)
    return handler


def who(addr):
    """Connects to <addr>; returns (socket, name of the named server that
    answered)."""
    s = connect(addr)
    name = b""
    while not name.endswith(b"\n"):
        b = s.recv(64)
        if not b:
            raise Fail(f"connection closed before the server said its name ({name!r})")
        name += b
    return s, name.decode().strip()


def spread(addr, n):
    """Opens and closes <n> connections; returns a Counter of who answered."""
    import collections
    c = collections.Counter()
    for _ in range(n):
        s, name = who(addr)
        s.close()
        c[name] += 1
    return c


# ---------------------------------------------------------------- health (issue #4)

def log_events(lb, pattern):
    """Returns [(epoch seconds, line)] for ringlb log lines matching the
    regex <pattern>, timed by the log's own UTC timestamp."""
    import datetime
    rx = re.compile(pattern)
    out = []
    for line in lb.log_text().splitlines():
        if not rx.search(line):
            continue
        stamp = line.split(" ", 1)[0]
        try:
            ts = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
        out.append((ts, line))
    return out


def wait_until(cond, what, timeout=10.0, interval=0.02):
    """Polls <cond>() until it returns a true value, and returns that value;
    fails the test with "<what>" after <timeout> seconds. What a test waits
    for is a condition, never a fixed sleep: <timeout> only bounds how long
    a broken build makes the test hang, so make it generous."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not reached within {timeout}s")
        time.sleep(interval)


def wait_log(lb, pattern, timeout, after=0.0):
    """Waits for a log line matching <pattern> stamped at or after <after>
    (epoch seconds); returns (time, line) or raises Fail after <timeout>."""
    deadline = time.monotonic() + timeout
    while True:
        for ts, line in log_events(lb, pattern):
            if ts >= after - 0.005:
                return ts, line
        if time.monotonic() > deadline:
            raise Fail(f"no log line matching {pattern!r} within {timeout}s")
        time.sleep(0.05)


class HttpLoad:
    """Continuous new client connections through ringlb at a bounded rate.

    Each connection sends one "GET / HTTP/1.0" and reads to EOF; bench/
    backend.py in http mode answers with a body naming itself, so every
    result records which server answered: a dict with t0/t1 (epoch seconds),
    name (or None), status (or None) and err (None when a full HTTP answer
    came). <threads> workers share <rate> connections per second.
    """

    def __init__(self, addr, rate=100, threads=4, timeout=3.0):
        self.addr = addr
        self.rate = rate
        self.nthreads = threads
        self.timeout = timeout
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def _one(self):
        r = {"t0": time.time(), "name": None, "status": None, "err": None}
        try:
            s = connect(self.addr, timeout=self.timeout)
            try:
                s.sendall(b"GET / HTTP/1.0\r\nHost: lbtest\r\n\r\n")
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            finally:
                s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
            n = re.match(rb"backend (\S+)", body)
            if not m or not n:
                r["err"] = f"bad answer {data[:60]!r}"
            else:
                r["status"] = int(m.group(1))
                r["name"] = n.group(1).decode()
        except OSError as e:
            r["err"] = repr(e)
        r["t1"] = time.time()
        with self.lock:
            self.results.append(r)

    def _run(self, k):
        period = self.nthreads / self.rate
        nxt = time.monotonic() + k * period / self.nthreads
        while not self.stopping.is_set():
            self._one()
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            else:
                nxt = time.monotonic()

    def start(self):
        for k in range(self.nthreads):
            th = threading.Thread(target=self._run, args=(k,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join(self.timeout + 2)
        with self.lock:
            return list(self.results)

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def wait(self, n, what, since=0.0, pred=None, timeout=15.0):
        """Waits until at least <n> clients that started after <since>
        (epoch seconds) and satisfy <pred>(result) have finished; returns
        them. A phase of a test ends on this, not on a fixed sleep: it
        lasts as long as the machine needs to run <n> clients through the
        state under test, and fails after <timeout> if they never finish."""
        def done():
            got = [r for r in self.snapshot() if r["t0"] > since and (pred is None or pred(r))]
            return got if len(got) >= n else None
        return wait_until(done, f"{n} clients {what}", timeout=timeout, interval=0.02)


def served(r):
    """An HttpLoad result that got a full 200 answer."""
    return not r["err"] and r["status"] == 200


def http_get_name(addr, timeout=3.0):
    """One HTTP/1.0 GET through ringlb: returns (status, backend name)."""
    load = HttpLoad(addr, timeout=timeout)
    load._one()
    r = load.results[0]
    if r["err"]:
        raise Fail(f"GET through {addr}: {r['err']}")
    return r["status"], r["name"]


def http_pool(t, n, backend_opts, backups=0, global_opts=None):
    """Starts <n> http backends b0..b<n-1> (the last <backups> of them as
    backup servers s<i>) and ringlb with <backend_opts> (and <global_opts>);
    returns (backends, ringlb) once the health checker runs."""
    bes = [t.backend("http", name=f"b{i}") for i in range(n)]
    servers = [b if i < n - backups else f"{b.addr} backup" for i, b in enumerate(bes)]
    lb = t.ringlb(servers=servers, backend_opts=backend_opts, global_opts=global_opts)
    wait_log(lb, rf"health: checking {n} server", 5)
    return bes, lb


def restart_backend(t, lb, addr, i, up_timeout=5):
    """Starts http backend b<i> again on <addr>; returns (time it listens,
    time ringlb logged server s<i> UP)."""
    t_back = time.time()
    t.backend("http", name=f"b{i}", listen=addr)
    t_up, _ = wait_log(lb, rf"server be0/s{i} is UP", up_timeout, after=t_back)
    return t_back, t_up


# ---------------------------------------------------------------- ringbench (issue 5)

# build/ringbench next to the ringlb under test (build-asan/ringbench for an
# ASan run), unless RINGBENCH names one.
RINGBENCH = os.path.abspath(os.environ.get("RINGBENCH") or
                            os.path.join(os.path.dirname(RINGLB), "ringbench"))


class RingbenchServe(Backend):
    """A `ringbench serve` process; <addr> is "127.0.0.1:PORT" from the line
    it prints once listening. Stopped (SIGTERM, then SIGKILL) by cleanup."""

    def __init__(self, t, mode, name, listen, extra):
        self._start(t, [RINGBENCH, "serve", "--listen", listen, "--mode", mode, "--name", name]
                    + list(extra), mode, name, f"ringbench-{name}.log",
                    f"ringbench serve {mode}", Fail)

    def stop(self):
        """SIGTERM; returns the exit status (a sanitizer report makes it
        non-zero)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        return self.proc.returncode


def ringbench_backend(t, mode, name=None, listen="127.0.0.1:0", extra=()):
    """Starts `ringbench serve --mode <mode>` as a backend of test <t>."""
    if not os.access(RINGBENCH, os.X_OK):
        raise Fail(f"{RINGBENCH} does not exist or is not executable (run make)")
    b = RingbenchServe(t, mode, name or f"rb-{mode}{len(t.backends)}", listen, extra)
    t.backends.append(b)
    return b


def ringbench_run(args, timeout=60):
    """Runs a ringbench client command with --json; returns (exit status,
    parsed JSON or None, stderr text)."""
    import json
    p = subprocess.run([RINGBENCH] + list(args) + ["--json"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode(errors="replace").strip()
    try:
        data = json.loads(out) if out else None
    except ValueError:
        raise Fail(f"ringbench {args[0]} printed no JSON: {out!r}")
    return p.returncode, data, p.stderr.decode(errors="replace")


# ringbench_latency_open's schedule: 2,000 req/s on 4 connections for 2 s
# after 0.5 s of warm-up.
RB_RATE, RB_DUR, RB_WARMUP, RB_CONNS = 2000, 2.0, 0.5, 4


def ringbench_latency_open(target, label):
    """An open-loop `ringbench latency` run against <target>, checked (see
    the comments); returns its JSON."""
    rc, d, err = ringbench_run(["latency", "--target", target, "--rate", str(RB_RATE),
                                "--conns", str(RB_CONNS), "--size", "100",
                                "--duration", f"{RB_DUR}s", "--warmup", f"{RB_WARMUP}s"])
    check(rc == 0 and d is not None, f"{label}: latency exits 0 ({rc}, {err.strip()[:200]})")
    want = RB_RATE * d["duration_s"]
    # Requests scheduled in the warm-up but delayed past its end (a stall)
    # are still sent, late, in the window: never more than the schedule
    # holds for warm-up + window (+1 per connection for rounding). A
    # connection counted twice, or sending off its schedule, breaks this.
    most = RB_RATE * (d["duration_s"] + RB_WARMUP) + RB_CONNS
    # Below: a stall at the very end of the window leaves its requests
    # uncounted; 20% is far more than a loaded machine loses, far less
    # than a stuck connection (25% each) costs.
    check(want * 0.8 <= d["requests"] <= most,
          f"{label}: open loop sent {d['requests']} requests, {RB_RATE}/s x "
          f"{d['duration_s']:.3f}s = {want:.0f} (-20%, at most {most:.0f})")
    check(d["errors"] == 0, f"{label}: no errors")
    check(0 < d["p50_us"] <= d["p90_us"] <= d["p99_us"] <= d["p999_us"] <= d["p9999_us"]
          <= d["max_us"], f"{label}: percentiles ordered ({d['p50_us']} .. {d['max_us']} us)")
    return d


def ringbench_throughput(target, direction, label, expect_ok=True):
    """A `ringbench throughput` run (2 streams, 1 s); checked unless
    <expect_ok> is false. Returns (exit status, JSON)."""
    rc, d, err = ringbench_run(["throughput", "--target", target, "--streams", "2",
                                "--direction", direction, "--duration", "1s",
                                "--warmup", "200ms"])
    if expect_ok:
        check(rc == 0 and d and d["checksum_ok"] and d["errors"] == 0,
              f"{label}: throughput {direction}: {d and d['gbps']} Gbit/s, every byte checked "
              f"(rc {rc}, {d and d.get('first_error')})")
        check(d["bytes"] > 0, f"{label}: throughput {direction} moved {d['bytes']} bytes")
    return rc, d


# ---------------------------------------------------------------- admin API (issue 6)

def admin_ringlb(t, servers=None, backend_opts=None, global_opts=None, frontends=None):
    """Starts ringlb with the admin server on a free loopback port; returns
    (ringlb, admin address) once both the frontends and the admin server
    answer."""
    addr = f"127.0.0.1:{free_port()}"
    g = {"admin": addr}
    g.update(global_opts or {})
    lb = t.ringlb(servers=servers, backend_opts=backend_opts, global_opts=g,
                  frontends=frontends)
    deadline = time.monotonic() + 10
    while True:
        try:
            if admin_request(addr, "GET", "/")[0] == 200:
                return lb, addr
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Fail(f"admin server not answering on {addr}")
        time.sleep(0.05)


def admin_request(addr, method, path, timeout=5.0, headers=None, body=None):
    """One request to the admin server: returns (status, headers, body).
    A write (any method but GET and HEAD) carries Content-Type:
    application/json, as the admin API requires of every write (a browser
    cannot send that cross-origin without asking first); <headers> adds to
    or replaces what is sent; <body> (bytes or str) is the write's body."""
    import http.client
    host, _, port = addr.rpartition(":")
    h = {} if method in ("GET", "HEAD") else {"Content-Type": "application/json"}
    h.update(headers or {})
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        c.request(method, path, body=None if method in ("GET", "HEAD") else (body or b""),
                  headers=h)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def admin_raw(addr, data, timeout=10.0, pace=None):
    """Sends <data> (bytes; with <pace> seconds between bytes) on a fresh
    connection and reads until the server closes. Returns (status or None,
    raw answer, seconds until the answer was complete)."""
    s = connect(addr, timeout=timeout)
    t0 = time.monotonic()
    try:
        try:
            if pace is None:
                s.sendall(data)
            else:
                for i in range(len(data)):
                    s.sendall(data[i:i + 1])
                    time.sleep(pace)
        except OSError:
            pass  # the server may answer and close before we are done
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
    return (int(m.group(1)) if m else None), out, time.monotonic() - t0


def admin_metrics(addr):
    """GET /metrics parsed by prometheus_client's text parser (Debian's
    python3-prometheus-client; .ci/deps installs it). Returns {(name,
    frozenset(labels.items())): value} for every sample, and fails the test
    when the exposition does not parse."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        # A python3 other than Debian's (pyenv, venv) does not see the
        # package; it is pure Python, so its directory can be borrowed.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            raise Fail("python3-prometheus-client is missing (make deps installs it)")
    st, hdr, body = admin_request(addr, "GET", "/metrics")
    check(st == 200, "GET /metrics answers 200")
    if not hdr.get("content-type", "").startswith("text/plain; version=0.0.4"):
        raise Fail(f"/metrics content type {hdr.get('content-type')!r}")
    out = {}
    try:
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
    except Exception as e:
        raise Fail(f"/metrics does not parse: {e!r}\n{body.decode()[:2000]}")
    return out


def metric(m, name, **labels):
    """The value of sample <name>{labels} in admin_metrics() output."""
    key = (name, frozenset(labels.items()))
    if key not in m:
        raise Fail(f"no sample {name}{labels} in /metrics")
    return m[key]


def admin_json(addr):
    import json
    st, _, body = admin_request(addr, "GET", "/api/backends")
    check(st == 200, "GET /api/backends answers 200")
    return json.loads(body)


def admin_servers(adm):
    """{(backend, server): server dict} from /api/backends (read quietly:
    admin_json() logs every call, and this is polled)."""
    status, _, body = admin_request(adm, "GET", "/api/backends")
    if status != 200:
        raise Fail(f"GET /api/backends answered {status}")
    return {(b["name"], s["name"]): s
            for b in json.loads(body)["backends"] for s in b["servers"]}


def wait_server_states(adm, want, what, timeout=60):
    """Waits until /api/backends shows every (backend, server) of <want>
    in its state; on a timeout, says what the states were."""
    last = {}

    def ok():
        last.clear()
        last.update({k: s["state"] for k, s in admin_servers(adm).items()})
        return all(last.get(k) == v for k, v in want.items())
    try:
        wait_until(ok, what, timeout=timeout, interval=0.2)
    except Fail:
        raise Fail(f"{what}: states {last}, wanted {want}")


def admin_post(addr, backend, server, action, expect=200):
    st, _, body = admin_request(addr, "POST",
                                f"/api/backends/{backend}/servers/{server}/{action}")
    if st != expect:
        raise Fail(f"POST {backend}/{server}/{action}: {st} {body!r}, expected {expect}")
    return body


def failed_clients(res, kills=()):
    """Returns (failed, in_flight): HttpLoad results without a 200 answer,
    and among those the ones that were in flight while a backend was being
    killed (<kills>: (time of the kill, time it was reaped) pairs). A
    connection the dying server had already accepted dies with it: at L4
    nothing can replay it, so tests allow those and report them."""
    bad = [r for r in res if r["err"] or r["status"] != 200]
    hit = [r for r in bad if any(r["t0"] <= dead + 0.01 and r["t1"] >= kill
                                 for kill, dead in kills)]
    return [r for r in bad if r not in hit], hit


def chromium():
    """The headless browser the page tests use (Debian's chromium), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """Headless Chromium driven over --remote-debugging-pipe: DevTools
    protocol messages are JSON terminated by NUL on fds 3 (to it) and 4
    (from it)."""

    def __init__(self, exe, url, profile):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", url]

        def fds():
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_r, 65536)
                if not chunk:
                    raise Fail(f"chromium closed the pipe during {method}")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Fail(f"{method}: {reply['error']}")
                return reply["result"]

    def attach(self):
        def page():
            pages = [t for t in self.call("Target.getTargets", session=False)["targetInfos"]
                     if t["type"] == "page"]
            return pages[0] if pages else None
        wait_until(page, "chromium opened the page")
        r = self.call("Target.attachToTarget", {"targetId": page()["targetId"], "flatten": True},
                      session=False)
        self.session = r["sessionId"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        return r["result"].get("value")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)
