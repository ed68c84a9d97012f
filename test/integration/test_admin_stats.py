#!/usr/bin/env python3
# run-once: /stats as Chromium renders it comes from the admin thread, whatever the io mode
"""Admin API (issue #6): GET /stats renders in a real browser.

Headless Chromium (Debian's `chromium`) loads /stats: its DOM dump must
hold a row per server with the state as its class, and its screenshot must
be a real page, not a blank one: many colours, and the state colours of the
page (green for up, grey for a server disabled through the API) present.
Skips (exit 77) where chromium is not installed; .ci/deps does not install
it (it is large), so CI runs this test only where someone did. The page
comes from the admin thread and the backend table, the same in every io
mode, so it runs once; its 9 connections through ringlb only give the page
counters to show.
"""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

import lbtest
from lbtest import check

UP_RGB = (0x7C, 0xCF, 0x7C)     # tr.up td.st in core/stats_page.c
MAINT_RGB = (0xB0, 0xB0, 0xB0)  # tr.maint td.st


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def run_chromium(exe, url, profile, extra, timeout=60):
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}"] + extra + [url]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def png_pixels(path):
    """Decodes an 8-bit RGB or RGBA non-interlaced PNG (what Chromium
    writes) with the standard library; returns (width, height, set of
    (r, g, b) colours, count of pixels per colour)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise lbtest.Fail(f"{path} is not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise lbtest.Fail(f"unexpected PNG format depth={depth} type={ctype}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    counts = {}
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = (line[x], line[x + 1], line[x + 2])
            counts[px] = counts.get(px, 0) + 1
        prev = line
    return w, h, counts


def main(t):
    exe = chromium()
    if not exe:
        raise lbtest.Skip("chromium is not installed (apt-get install chromium)")
    bes = [t.backend("name", name=n) for n in ("alpha", "beta", "gamma")]
    lb, adm = lbtest.admin_ringlb(t, servers=bes)
    for _ in range(9):
        lbtest.connect(lb.addr).recv(16)
    lbtest.admin_post(adm, "be0", "s2", "disable")

    st, hdr, body = lbtest.admin_request(adm, "GET", "/stats")
    html = body.decode()
    check(st == 200 and hdr["content-type"].startswith("text/html"), "GET /stats is HTML")
    check(not re.search(r"""(src|href)=["']?(https?:)?//""", html),
          "the page loads nothing from elsewhere (self-contained)")
    check('http-equiv=refresh' in html, "the page refreshes itself")

    url = f"http://{adm}/stats"
    profile = tempfile.mkdtemp(prefix="ringlb-chromium-", dir=t.dir)
    rc, dom, err = run_chromium(exe, url, profile, ["--dump-dom"])
    check(rc == 0, f"chromium --dump-dom exits 0 ({rc}: {err.strip()[-300:]})")
    for s, state in (("s0", "up"), ("s1", "up"), ("s2", "maint")):
        check(re.search(rf'<tr class="{state}" id="srv-be0-{s}">', dom),
              f"the rendered DOM has a row for be0/{s} in state {state}")
    check("127.0.0.1:" in dom and "fe0" in dom, "the DOM shows addresses and the frontend")

    png = os.path.join(t.dir, "stats.png")
    rc, _, err = run_chromium(exe, url, profile, ["--window-size=1280,800",
                                                  "--hide-scrollbars", f"--screenshot={png}"])
    check(rc == 0 and os.path.exists(png), f"chromium --screenshot wrote {png} ({rc})")
    w, h, counts = png_pixels(png)
    check((w, h) == (1280, 800), f"screenshot is 1280x800 ({w}x{h})")
    top, n = max(counts.items(), key=lambda kv: kv[1])
    check(len(counts) > 20 and n < w * h * 0.98,
          f"screenshot is not blank: {len(counts)} colours, the commonest covers "
          f"{100 * n / (w * h):.1f}%")
    check(counts.get(UP_RGB, 0) > 200, f"green 'up' cells are painted ({counts.get(UP_RGB, 0)} px)")
    check(counts.get(MAINT_RGB, 0) > 100,
          f"grey 'maint' cell is painted ({counts.get(MAINT_RGB, 0)} px)")
    shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    lbtest.run(main)
