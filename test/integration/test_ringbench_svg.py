#!/usr/bin/env python3
# run-once: the SVG is ringbench's; ringlb's io mode does not change the picture
"""ringbench compare --svg (issue #18): the plot, as a browser draws it.

`ringbench compare` runs a short latency workload against two echo servers
(ringbench serve) and writes --svg. Headless Chromium loads the file over
the DevTools pipe and measures what it drew:

 - every text (title, tick labels, axis names, legend) lies inside the
   picture and no two overlap: the y-axis name once overlapped the
   "1000 us" tick;
 - each target's curve is drawn, inside the plot area;
 - the x axis ends at the first decade past the data: the last tick is
   past the rightmost point, the one before it is not (the axis once ran
   to 99.9999% where the data ended near 99.99%).

Skips (exit 77) without chromium on a developer's machine; .ci/deps test
installs it.
"""
import os
import subprocess
import tempfile

import lbtest
from lbtest import check

MEASURE = """(function () {
  var svg = document.querySelector('svg'), r = svg.getBoundingClientRect();
  var texts = Array.prototype.map.call(document.querySelectorAll('text'), function (t) {
    var b = t.getBoundingClientRect();
    return {s: t.textContent, x0: b.left, y0: b.top, x1: b.right, y1: b.bottom};
  });
  var lines = Array.prototype.map.call(document.querySelectorAll('polyline'), function (p) {
    var xs = [], ys = [];
    for (var i = 0; i < p.points.numberOfItems; i++) {
      xs.push(p.points.getItem(i).x); ys.push(p.points.getItem(i).y);
    }
    return {n: xs.length, xmin: Math.min.apply(null, xs), xmax: Math.max.apply(null, xs),
            ymin: Math.min.apply(null, ys), ymax: Math.max.apply(null, ys)};
  });
  return {w: r.width, h: r.height, texts: texts, lines: lines};
})()"""


def overlap(a, b):
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


def main(t):
    exe = lbtest.chromium()
    if not exe:
        raise lbtest.Skip("chromium is not installed (apt-get install chromium)")
    a, b = lbtest.ringbench_backend(t, "echo"), lbtest.ringbench_backend(t, "echo")
    cfg, svg = os.path.join(t.dir, "cmp.ini"), os.path.join(t.dir, "plot.svg")
    with open(cfg, "w") as f:
        f.write(f"rounds = 1\nplot = lat\n[target one]\naddr = {a.addr}\n"
                f"[target two]\naddr = {b.addr}\n"
                "[workload lat]\nrun = latency --rate 300 --conns 4 --duration 1s "
                "--warmup 200ms\n")
    p = subprocess.run([lbtest.RINGBENCH, "compare", "--config", cfg, "--svg", svg],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 0 and os.path.getsize(svg) > 0,
          f"ringbench compare --svg wrote {svg} ({p.returncode}: {p.stderr[-200:]!r})")

    br = lbtest.Browser(exe, "file://" + svg, tempfile.mkdtemp(prefix="ringlb-chromium-",
                                                               dir=t.dir))
    try:
        br.attach()
        lbtest.wait_until(lambda: br.eval("document.readyState") == "complete" and
                          br.eval("document.querySelectorAll('polyline').length") == 2,
                          "chromium drew the SVG", timeout=30)
        m = br.eval(MEASURE)
    finally:
        br.close()

    texts = m["texts"]
    check(len(texts) >= 8, f"{len(texts)} texts drawn")
    for x in texts:
        check(x["x0"] >= 0 and x["y0"] >= 0 and x["x1"] <= m["w"] and x["y1"] <= m["h"],
              f"{x['s']!r} lies inside the {m['w']:.0f}x{m['h']:.0f} picture")
    clashes = [(x["s"], y["s"]) for i, x in enumerate(texts) for y in texts[i + 1:]
               if overlap(x, y)]
    check(not clashes, f"no two texts overlap ({clashes})")
    lines = m["lines"]
    check(len(lines) == 2 and all(ln["n"] >= 10 for ln in lines),
          f"two curves drawn ({[ln['n'] for ln in lines]} points)")
    ticks = sorted((x["x0"] + x["x1"]) / 2 for x in texts if x["s"].endswith("%"))
    right = max(ln["xmax"] for ln in lines)
    check(len(ticks) >= 3, f"x ticks {ticks}")
    check(ticks[-2] < right <= ticks[-1] + 1,
          f"the x axis ends at the first decade past the data (point at {right:.0f}, ticks "
          f"{ticks[-2]:.0f} and {ticks[-1]:.0f})")


if __name__ == "__main__":
    lbtest.run(main)
