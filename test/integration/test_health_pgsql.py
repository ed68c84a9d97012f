#!/usr/bin/env python3
# run-once: the checks run in the checker thread and the psql clients only need a connection through ringlb, whatever the workers' io mode
"""health = pgsql: role-aware checks against real PostgreSQL 15 servers.

The test makes its own cluster in a temp dir on free loopback ports: P, a
primary (initdb), and R, a streaming replica of it (pg_basebackup -R). As
root (CI) the servers run as the postgres user, which owns the dir. The
roles the checks log in as, and how pg_hba.conf lets them in:

  scram   scram-sha-256 (password stored as SCRAM)
  md5     md5 (password stored as MD5, else PostgreSQL upgrades to SCRAM)
  trusty  trust (no password asked)
  postgres trust: the test's own psql, directly and through ringlb

ringlb runs with these frontend/backend pairs:

  be0  role = primary, scram, servers P, R  -> clients reach P only
  be1  role = replica, md5,   servers P, R  -> clients reach R only
  be2  trusty, servers P, R (role any)      -> both up
  be3  scram with a wrong password, P       -> down, the server's reason
  be4  health_db of a database that does not exist, P -> down

"Reach" is proven by psql through each frontend: SELECT
pg_is_in_recovery() says f through be0's and t through be1's. Then the
server logs must show no "unexpected EOF" (nor any lost client) from the
checks, which end with Terminate and wait for the server to close.

PostgreSQL 15 reports in_hot_standby at login, so the checks here take the
role from it; the pg_is_in_recovery() query path of older servers is
covered by test/unit/test_health_pgsql.c.

Skips (exit 77) when PostgreSQL 15 or psql is missing on a developer's
machine; .ci/deps test installs postgresql and postgresql-client, and with
CI set in the environment a missing one fails the test instead. Debian's
package may start its own cluster on 5432: nothing here uses it.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import lbtest
from lbtest import check

PGBIN = "/usr/lib/postgresql/15/bin"
# Every check forks a PostgreSQL backend: a 250 ms interval keeps eight
# servers' checks light on a loaded 2-core CI machine, and a generous
# timeout keeps a slow fork from reading as a failure.
CHECK = {"health": "pgsql", "health_db": "postgres", "health_interval": "250ms",
         "health_timeout": "5s", "rise": "2", "fall": "2"}


class Cluster:
    """A directory for PostgreSQL data dirs, sockets and logs, owned by the
    user the servers run as (postgres when the test runs as root)."""

    def __init__(self, t):
        self.t = t
        # Not under t.dir: the runner's directory is private to root.
        self.dir = tempfile.mkdtemp(prefix="ringlb-pg-")
        self.argv0 = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.argv0 = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                          "--clear-groups", "--"]
        self.servers = []

    def run(self, *argv, timeout=60):
        """Runs a PostgreSQL tool as the servers' user; fails on error."""
        argv = self.argv0 + [os.path.join(PGBIN, argv[0])] + list(argv[1:])
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise lbtest.Fail(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """One postgres on a free loopback port, stopped by t.cleanup()."""

    def __init__(self, t, cl, name, datadir):
        self.t = t
        self.cl = cl
        self.name = name
        self.datadir = datadir
        self.port = lbtest.free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.logpath = os.path.join(cl.dir, f"{name}.log")
        opts = {"port": self.port, "listen_addresses": "127.0.0.1",
                "unix_socket_directories": cl.dir, "logging_collector": "off",
                "log_min_messages": "info", "shared_buffers": "16MB", "max_connections": "40",
                "fsync": "off", "max_wal_senders": "4"}
        argv = cl.argv0 + [os.path.join(PGBIN, "postgres"), "-D", datadir]
        for k, v in opts.items():
            argv += ["-c", f"{k}={v}"]
        with open(self.logpath, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=cl.dir)
        t.backends.append(self)
        cl.servers.append(self)
        lbtest.wait_until(self.ready, f"postgres {name} accepting on {self.addr}", timeout=30,
                          interval=0.2)

    def ready(self):
        if self.proc.poll() is not None:
            raise lbtest.Fail(f"postgres {self.name} exited {self.proc.returncode}: "
                              f"{self.log()[-2000:]}")
        r = subprocess.run([os.path.join(PGBIN, "pg_isready"), "-q", "-h", "127.0.0.1",
                            "-p", str(self.port)], capture_output=True, timeout=10)
        return r.returncode == 0

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def sql(self, query, user="postgres"):
        """Runs <query> with psql over the server's unix socket."""
        return self.cl.run("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.cl.dir,
                           "-p", str(self.port), "-U", user, "-d", "postgres", "-c", query)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def psql_through(addr, query):
    """Runs <query> with psql as postgres through ringlb at <addr>."""
    host, _, port = addr.rpartition(":")
    r = subprocess.run(["psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "postgres",
                        "-d", "postgres", "-c", query], capture_output=True, text=True,
                       timeout=20, env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    if r.returncode != 0:
        raise lbtest.Fail(f"psql through {addr}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip()


HBA = """\
# written by test_health_pgsql.py
local   all          all                      trust
host    replication  postgres   127.0.0.1/32  trust
host    all          postgres   127.0.0.1/32  trust
host    all          trusty     127.0.0.1/32  trust
host    all          md5        127.0.0.1/32  md5
host    all          all        127.0.0.1/32  scram-sha-256
"""


def main(t):
    missing = [p for p in (os.path.join(PGBIN, "initdb"), os.path.join(PGBIN, "postgres"),
                           shutil.which("psql") or "psql", "/usr/bin/setpriv")
               if not os.access(p, os.X_OK)]
    if missing:
        why = (f"{', '.join(missing)} not installed "
               "(apt-get install postgresql postgresql-client)")
        if os.environ.get("CI"):
            raise lbtest.Fail(f"{why}; CI must install them (.ci/deps test)")
        raise lbtest.Skip(why)

    cl = Cluster(t)
    try:
        run(t, cl)
    finally:
        # The dir goes even when the runner's SIGTERM cuts the stops short
        # (t.cleanup() then kills what still runs).
        try:
            for s in cl.servers:
                s.stop()
            # Keep the servers' logs next to ringlb's for a failed run.
            for s in cl.servers:
                try:
                    shutil.copy(s.logpath, os.path.join(t.dir, f"postgres-{s.name}.log"))
                except OSError:
                    pass
        finally:
            cl.remove()


def run(t, cl):
    t0 = time.monotonic()
    pdata = os.path.join(cl.dir, "primary")
    cl.run("initdb", "-D", pdata, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
           timeout=120)
    with open(os.path.join(pdata, "pg_hba.conf"), "w") as f:
        f.write(HBA)
    p = Postgres(t, cl, "P", pdata)
    p.sql("SET password_encryption = 'scram-sha-256'; "
          "CREATE ROLE scram LOGIN PASSWORD 'scr,am=pw'")
    p.sql("SET password_encryption = 'md5'; CREATE ROLE md5 LOGIN PASSWORD 'md5pw'")
    p.sql("CREATE ROLE trusty LOGIN")
    check(p.sql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                "WHERE rolname = 'scram'").strip() == "t", "scram's password is stored as SCRAM")
    check(p.sql("SELECT rolpassword LIKE 'md5%' FROM pg_authid "
                "WHERE rolname = 'md5'").strip() == "t", "md5's password is stored as MD5")

    rdata = os.path.join(cl.dir, "replica")
    cl.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(p.port), "-U", "postgres", "-D", rdata,
           "-R", "-X", "stream", "--no-sync", "--checkpoint=fast", timeout=120)
    r = Postgres(t, cl, "R", rdata)
    lbtest.wait_until(lambda: p.sql("SELECT count(*) FROM pg_stat_replication "
                                    "WHERE state = 'streaming'").strip() == "1",
                      "R streaming from P", timeout=30, interval=0.1)
    check(r.sql("SELECT pg_is_in_recovery()").strip() == "t", "R is a standby")

    fe = [
        (None, [p.addr, r.addr], dict(CHECK, role="primary", health_user="scram",
                                      health_password="scr,am=pw")),
        (None, [p.addr, r.addr], dict(CHECK, role="replica", health_user="md5",
                                      health_password="md5pw")),
        (None, [p.addr, r.addr], dict(CHECK, health_user="trusty")),
        (None, [p.addr], dict(CHECK, health_user="scram", health_password="wrong")),
        # health_db defaults to the user's name, as with libpq: give one
        # that does not exist.
        (None, [p.addr], dict(CHECK, health_user="trusty", health_db="nope")),
    ]
    lbtest.log(f"  cluster ready in {time.monotonic() - t0:.1f}s")
    lb, adm = lbtest.admin_ringlb(t, frontends=fe)
    rw, ro = lb.fe[0][0], lb.fe[1][0]

    lbtest.wait_server_states(adm, {("be0", "s0"): "up", ("be0", "s1"): "down",
                      ("be1", "s0"): "down", ("be1", "s1"): "up",
                      ("be2", "s0"): "up", ("be2", "s1"): "up",
                      ("be3", "s0"): "down", ("be4", "s0"): "down"}, "roles probed")
    lbtest.wait_log(lb, r"server be0/s1 is DOWN: role replica \(in_hot_standby on\), "
                    r"want primary", 15)
    lbtest.wait_log(lb, r"server be1/s0 is DOWN: role primary \(in_hot_standby off\), "
                    r"want replica", 15)
    _, line = lbtest.wait_log(lb, r"server be3/s0 is DOWN", 15)
    check('error 28P01: password authentication failed for user "scram"' in line,
          f"a wrong password: down with the server's reason: {line.strip()}")
    _, line = lbtest.wait_log(lb, r"server be4/s0 is DOWN", 15)
    check('error 3D000: database "nope" does not exist' in line,
          f"a missing health_db: down with the server's reason: {line.strip()}")
    # /api/backends has the state (waited on above), the failure count and
    # the last check's status and reason (at start-up the first verdict
    # decides, so one failed check is enough to be down).
    for k, why in ((("be3", "s0"), "28P01"), (("be4", "s0"), "3D000")):
        srv = lbtest.admin_servers(adm)[k]
        check(srv["check_failures_total"] >= 1 and srv["check_status"] == "L7RSP" and
              why in srv["check_reason"],
              f"{k}: its failed check in /api/backends ({srv['check_status']} "
              f"{srv['check_reason']!r})")

    # Clients through each frontend reach the server of its role.
    for _ in range(2):
        check(psql_through(rw, "SELECT pg_is_in_recovery()") == "f",
              "psql through role = primary: pg_is_in_recovery() is f (P)")
        check(psql_through(ro, "SELECT pg_is_in_recovery()") == "t",
              "psql through role = replica: pg_is_in_recovery() is t (R)")
    psql_through(rw, "CREATE TABLE IF NOT EXISTS w (x int); INSERT INTO w VALUES (1)")
    check(psql_through(ro, "SELECT 1") == "1", "read-only queries work through ro")

    # Every scram, md5 and trust check has run several times by now.
    lbtest.wait_until(lambda: all(lbtest.admin_servers(adm)[k]["checks_total"] >= 10
                                  for k in (("be0", "s0"), ("be1", "s1"), ("be2", "s1"))),
                      "10 checks of each server", timeout=60)
    for k in (("be0", "s0"), ("be1", "s1"), ("be2", "s0"), ("be2", "s1")):
        check(lbtest.admin_servers(adm)[k]["check_failures_total"] == 0,
              f"{k}: every check passed ({lbtest.admin_servers(adm)[k]['checks_total']} checks)")
    # The checks end with Terminate: no lost client in either server's log.
    for s in (p, r):
        text = s.log()
        bad = [ln for ln in text.splitlines()
               if "unexpected EOF" in ln or "could not receive data from client" in ln
               or "connection reset" in ln.lower()]
        check(not bad, f"{s.name}'s log has no unexpected EOF from the checks "
                       f"({len(text.splitlines())} lines; bad: {bad[:3]})")
    t.stop_all_checked()


if __name__ == "__main__":
    lbtest.run(main)
