#!/usr/bin/env python3
# run-once: the checks run in the checker thread and the mariadb clients only need a connection through ringlb, whatever the workers' io mode
"""health = mysql: role-aware checks against real MariaDB 10.11 servers.

The test makes its own MariaDB data dir (mariadb-install-db) in a temp dir
and starts two mariadbd from copies of it on free loopback ports: A and B.
There is no replication between them: the check reads @@read_only and
@@innodb_read_only, so B with read_only = 1 is what ringlb must take for a
replica, and nothing else about replication matters to it. As root (CI)
the servers run as the mysql user, which owns the dir.

Users (made by --init-file at start, mysql_native_password):
  probe@127.0.0.1 'probepw'  the checks
  nopw@127.0.0.1             a check without health_password
  client@127.0.0.1           the test's own mariadb client through ringlb

ringlb runs with these frontend/backend pairs:

  be0  role = primary, servers A, B  -> clients reach A only
  be1  role = replica, servers A, B  -> clients reach B only
  be2  wrong health_password, A      -> down, the server's reason logged
  be3  nopw (empty password), A, B, role any -> both up

"Reach" is proven by the mariadb client through each frontend: SELECT
@@port, @@read_only. Then the roles swap (SET GLOBAL read_only on both)
and the backends follow. Last, both servers' Aborted_clients is 0: every
check ended with COM_QUIT, not a dropped connection.

Skips (exit 77) when mariadbd or the mariadb client is missing on a
developer's machine; .ci/deps test installs mariadb-server and
mariadb-client, and with CI set in the environment a missing one fails the
test instead. Debian's package may start its own server on 3306: nothing
here uses it.
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import lbtest
from lbtest import check

MARIADBD = "/usr/sbin/mariadbd"
CHECK = {"health": "mysql", "health_interval": "200ms", "health_timeout": "5s",
         "rise": "2", "fall": "2"}

INIT_SQL = """\
CREATE USER 'probe'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('probepw');
CREATE USER 'nopw'@'127.0.0.1';
CREATE USER 'client'@'127.0.0.1' IDENTIFIED BY 'clientpw';
GRANT ALL ON *.* TO 'client'@'127.0.0.1';
"""


class Dirs:
    """A directory for data dirs, sockets and logs, owned by the user the
    servers run as (mysql when the test runs as root)."""

    def __init__(self):
        # Not under t.dir: the runner's directory is private to root.
        self.dir = tempfile.mkdtemp(prefix="ringlb-my-")
        self.user = []
        self.owner = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mysql")
            self.owner = (pw.pw_uid, pw.pw_gid)
            self.user = ["--user=mysql"]
        self.servers = []

    def chown_all(self):
        if not self.owner:
            return
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), *self.owner)
        os.chown(self.dir, *self.owner)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    """One mariadbd on a free loopback port, stopped by t.cleanup()."""

    def __init__(self, t, d, name, template):
        self.d = d
        self.name = name
        self.datadir = os.path.join(d.dir, name)
        shutil.copytree(template, self.datadir, symlinks=True)
        self.port = lbtest.free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.sock = os.path.join(d.dir, f"{name}.sock")
        self.logpath = os.path.join(d.dir, f"{name}.err")
        init = os.path.join(d.dir, "init.sql")
        d.chown_all()
        argv = [MARIADBD, "--no-defaults", *d.user, f"--datadir={self.datadir}",
                f"--socket={self.sock}", f"--port={self.port}", "--bind-address=127.0.0.1",
                "--skip-networking=0", f"--pid-file={self.datadir}/mariadbd.pid",
                f"--log-error={self.logpath}", f"--init-file={init}", "--skip-log-bin",
                "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
                "--skip-name-resolve", f"--tmpdir={d.dir}", "--log-warnings=2"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        t.backends.append(self)
        d.servers.append(self)
        lbtest.wait_until(self.ready, f"mariadbd {name} ready on {self.addr}", timeout=60,
                          interval=0.1)

    def ready(self):
        if self.proc.poll() is not None:
            raise lbtest.Fail(f"mariadbd {self.name} exited {self.proc.returncode}: "
                              f"{self.log()[-2000:]}")
        try:
            return self.sql("SELECT 1") == "1"
        except lbtest.Fail:
            return False

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def sql(self, query):
        """Runs <query> as root over the server's unix socket."""
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot",
                            "-N", "-B", "-e", query], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise lbtest.Fail(f"mariadb on {self.name}: {query}: {r.stderr.strip()}")
        return r.stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def through(addr):
    """(port, read_only) of the server that the mariadb client reaches
    through ringlb at <addr>."""
    host, _, port = addr.rpartition(":")
    r = subprocess.run(["mariadb", "--no-defaults", "-h", host, "-P", port, "--protocol=TCP",
                        "-uclient", "-pclientpw", "--skip-ssl", "--connect-timeout=5", "-N", "-B",
                        "-e", "SELECT @@port, @@read_only"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise lbtest.Fail(f"mariadb through {addr}: exit {r.returncode}: {r.stderr.strip()}")
    p, ro = r.stdout.split()
    return int(p), int(ro)


def only_reaches(addr, server, what, n=4):
    got = [through(addr) for _ in range(n)]
    check(all(g == (server.port, 0 if server.name == "A" else 1) for g in got) or
          all(g[0] == server.port for g in got),
          f"{what}: every client reaches {server.name} (port {server.port}; got {got})")


def main(t):
    missing = [p for p in (MARIADBD, shutil.which("mariadb-install-db") or "mariadb-install-db",
                           shutil.which("mariadb") or "mariadb") if not os.access(p, os.X_OK)]
    if missing:
        why = f"{', '.join(missing)} not installed (apt-get install mariadb-server mariadb-client)"
        if os.environ.get("CI"):
            raise lbtest.Fail(f"{why}; CI must install them (.ci/deps test)")
        raise lbtest.Skip(why)

    d = Dirs()
    try:
        run(t, d)
    finally:
        # The dir goes even when the runner's SIGTERM cuts the stops short
        # (t.cleanup() then kills what still runs).
        try:
            for s in d.servers:
                s.stop()
            for s in d.servers:
                try:
                    shutil.copy(s.logpath, os.path.join(t.dir, f"mariadb-{s.name}.err"))
                except OSError:
                    pass
        finally:
            d.remove()


def run(t, d):
    template = os.path.join(d.dir, "template")
    with open(os.path.join(d.dir, "init.sql"), "w") as f:
        f.write(INIT_SQL)
    d.chown_all()
    r = subprocess.run(["mariadb-install-db", "--no-defaults", *d.user, f"--datadir={template}",
                        "--auth-root-authentication-method=normal", "--skip-test-db",
                        "--skip-name-resolve"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise lbtest.Fail(f"mariadb-install-db exited {r.returncode}: {r.stderr[-2000:]}")
    a = MariaDB(t, d, "A", template)
    b = MariaDB(t, d, "B", template)
    b.sql("SET GLOBAL read_only = 1")
    check(b.sql("SELECT @@read_only, @@innodb_read_only") == "1\t0",
          "B is read-only (its replica role)")

    fe = [
        (None, [a.addr, b.addr], dict(CHECK, role="primary", health_user="probe",
                                      health_password="probepw")),
        (None, [a.addr, b.addr], dict(CHECK, role="replica", health_user="probe",
                                      health_password="probepw")),
        (None, [a.addr], dict(CHECK, health_user="probe", health_password="wrong")),
        (None, [a.addr, b.addr], dict(CHECK, health_user="nopw")),
    ]
    lb, adm = lbtest.admin_ringlb(t, frontends=fe)
    rw, ro = lb.fe[0][0], lb.fe[1][0]

    lbtest.wait_server_states(adm, {("be0", "s0"): "up", ("be0", "s1"): "down",
                      ("be1", "s0"): "down", ("be1", "s1"): "up",
                      ("be2", "s0"): "down",
                      ("be3", "s0"): "up", ("be3", "s1"): "up"}, "roles probed")
    lbtest.wait_log(lb, r"server be0/s1 is DOWN: role replica \(read_only=1 innodb_read_only=0\)"
                    r", want primary", 15)
    lbtest.wait_log(lb, r"server be1/s0 is DOWN: role primary \(read_only=0 innodb_read_only=0\)"
                    r", want replica", 15)
    _, line = lbtest.wait_log(lb, r"server be2/s0 is DOWN", 15)
    check("error 1045 28000: Access denied for user 'probe'@'127.0.0.1'" in line,
          f"a wrong password: down with the server's reason: {line.strip()}")
    srv = lbtest.admin_servers(adm)[("be2", "s0")]
    check(srv["check_failures_total"] >= 1 and srv["check_status"] == "L7RSP" and
          "1045" in srv["check_reason"],
          f"be2: its failed check in /api/backends ({srv['check_status']} "
          f"{srv['check_reason']!r})")

    only_reaches(rw, a, "role = primary")
    only_reaches(ro, b, "role = replica")

    # The roles swap: the backends follow.
    a.sql("SET GLOBAL read_only = 1")
    b.sql("SET GLOBAL read_only = 0")
    lbtest.wait_server_states(adm, {("be0", "s0"): "down", ("be0", "s1"): "up",
                      ("be1", "s0"): "up", ("be1", "s1"): "down"}, "roles swapped")
    check(through(rw) == (b.port, 0), "after the swap, role = primary reaches B")
    check(through(ro) == (a.port, 1), "after the swap, role = replica reaches A")

    lbtest.wait_until(lambda: all(lbtest.admin_servers(adm)[k]["checks_total"] >= 10
                                  for k in (("be3", "s0"), ("be3", "s1"))),
                      "10 checks of each server", timeout=60)
    for k in (("be3", "s0"), ("be3", "s1")):
        check(lbtest.admin_servers(adm)[k]["check_failures_total"] == 0,
              f"{k}: every check without a password passed")
    # Every check said COM_QUIT: the servers counted no aborted client.
    for s in (a, b):
        n = s.sql("SHOW GLOBAL STATUS LIKE 'Aborted_clients'").split()[1]
        check(n == "0", f"{s.name}: Aborted_clients is 0 after the checks (got {n})")
        # (ringlb's readiness probes, connections to a frontend closed at
        # once, do show up as aborted "unauthenticated" connections.)
        bad = [ln for ln in s.log().splitlines()
               if "Aborted connection" in ln and ("'probe'" in ln or "'nopw'" in ln)]
        check(not bad, f"{s.name}'s error log has no aborted connection of the checks' users: "
                       f"{bad[:3]}")
    t.stop_all_checked()


if __name__ == "__main__":
    lbtest.run(main)
