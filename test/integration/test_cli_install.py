#!/usr/bin/env python3
# run-once none: make install and the files it installs; no data path
"""`make install PREFIX=...` (issue #6): binaries, the systemd unit with
its paths filled in, the man pages ringlb(8), ringlb.ini(5) and
ringbench(1) (which groff formats without a warning, and which never send
the reader to README.md, which is not installed; ringbench(1) names every
flag that `ringbench COMMAND --help` lists) and the sample config, which
the installed ringlb accepts; a second install keeps an edited lb.ini.
"""
import re
import os
import shutil
import subprocess

import lbtest
from lbtest import check


def main(t):
    prefix = os.path.join(t.dir, "prefix")
    build = os.path.relpath(os.path.dirname(lbtest.RINGLB), lbtest.REPO)
    make = ["make", "-s", "-C", lbtest.REPO, f"BUILD={build}", f"PREFIX={prefix}", "install"]
    p = subprocess.run(make, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    check(p.returncode == 0, f"make install PREFIX={prefix} ({p.stdout.decode()[-500:]})")
    want = ["sbin/ringlb", "bin/ringbench", "share/man/man8/ringlb.8",
            "share/man/man5/ringlb.ini.5", "share/man/man1/ringbench.1",
            "lib/systemd/system/ringlb.service",
            "etc/ringlb/lb.ini", "etc/ringlb/lb.ini.sample"]
    for f in want:
        check(os.path.isfile(os.path.join(prefix, f)), f"installed {f}")
    check(os.access(os.path.join(prefix, "sbin/ringlb"), os.X_OK), "ringlb is executable")
    with open(os.path.join(prefix, "lib/systemd/system/ringlb.service")) as f:
        unit = f.read()
    check("@" not in unit.replace("$MAINPID", ""), "no @PLACEHOLDER@ left in the unit")
    check(f"ExecStart={prefix}/sbin/ringlb -c {prefix}/etc/ringlb/lb.ini" in unit,
          "the unit runs the installed ringlb on the installed config")
    check("Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit,
          "Type=notify and ExecReload in the unit")
    # systemd runs ExecReload= lines in order and stops at the first that
    # fails: the config is checked before the running process is told.
    reload = [ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("ExecReload=")]
    check(reload == [f"{prefix}/sbin/ringlb -t -c {prefix}/etc/ringlb/lb.ini",
                     "/bin/kill -HUP $MAINPID"],
          f"ExecReload checks the installed config with ringlb -t, then sends SIGHUP ({reload})")
    r = subprocess.run([os.path.join(prefix, "sbin/ringlb"), "-t", "-c",
                        os.path.join(prefix, "etc/ringlb/lb.ini")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    check(r.returncode == 0, f"the installed ringlb accepts the sample config "
                             f"({r.stdout.decode().strip()})")
    pages = ("share/man/man8/ringlb.8", "share/man/man5/ringlb.ini.5",
             "share/man/man1/ringbench.1")
    for page in pages:
        with open(os.path.join(prefix, page)) as f:
            check("README" not in f.read(), f"{page} does not point to README.md")
    with open(os.path.join(prefix, "share/man/man1/ringbench.1")) as f:
        man = f.read().replace("\\-", "-")
    for cmd in ("serve", "latency", "connrate", "throughput", "compare"):
        h = subprocess.run([os.path.join(prefix, "bin/ringbench"), cmd, "--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        flags = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", h.stdout.decode())))
        missing = [f for f in flags if f not in man]
        check(h.returncode == 0 and flags and not missing,
              f"ringbench(1) has every flag of ringbench {cmd} --help (missing: {missing})")
    if shutil.which("groff"):
        for page in pages:
            g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                                os.path.join(prefix, page)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            check(g.returncode == 0 and not g.stdout, f"groff formats {page} without a warning "
                                                      f"{g.stdout.decode()[:200]!r}")
    else:
        lbtest.log("  note: groff not installed: man page formatting not checked")
    cfg = os.path.join(prefix, "etc/ringlb/lb.ini")
    with open(cfg, "a") as f:
        f.write("; edited by the operator\n")
    p = subprocess.run(make, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    with open(cfg) as f:
        check(p.returncode == 0 and "edited by the operator" in f.read(),
              "a second install keeps the operator's lb.ini")


if __name__ == "__main__":
    lbtest.run(main, need_mode=False)
