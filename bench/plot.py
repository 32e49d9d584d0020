# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/run.sh's curve as an SVG (standard library only): fleet up against the fleet's size, ours and the script.

    python3 bench/plot.py RESULTS OUT.svg [MACHINE]

Reads the results file of bench/run.sh (`ROUND KEY VALUE` lines; the curve's keys are c<N>_script, c<N>_up,
c<N>_rerun, c<N>_empty, c<N>_up_hwm) and draws, against N, the median over the rounds of: the serial
script's fleet up, the role's fleet up (one play), the role's idempotent re-run, and the empty play run right
after it; each point with a bar from the rounds' min to max. The largest fleet's module peak RSS goes in the caption. MACHINE (bench/run.sh's
machine file) adds its first line to the caption.
"""

import collections
import statistics
import sys
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 820, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 50, 96
SERIES = [
    # key, legend lines, colour, dash
    ("script", ("serial script", "(ip, qemu-system-x86_64,", "one VM after the other)"), "#555555", "6,4"),
    ("up", ("ours: the vms role", "(one play, fleet up)"), "#1f77b4", ""),
    ("rerun", ("ours: re-run", "(nothing to change)"), "#2ca02c", ""),
    ("empty", ("empty play", "(Ansible's start-up)"), "#d62728", "2,3"),
]
CAPTION_CHARS = 120


def load(path):
    rounds = collections.defaultdict(dict)
    with open(path) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3:
                try:
                    rounds[parts[0]][parts[1]] = float(parts[2])
                except ValueError:
                    pass
    return list(rounds.values())


def nice_step(span):
    for step in (0.5, 1, 2, 5, 10, 20, 50):
        if span / step <= 8:
            return step
    return 100


def main():
    rounds = load(sys.argv[1])
    caption = ""
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as handle:
            caption = handle.readline().strip()
    sizes = sorted(set(int(k[1:-len("_script")]) for r in rounds for k in r if k.startswith("c") and k.endswith("_script")))
    if not sizes:
        raise SystemExit("no curve in %s" % sys.argv[1])
    points = {}
    for key, _label, _colour, _dash in SERIES:
        for n in sizes:
            name = "c%d_%s" % (n, key)
            values = [r[name] for r in rounds if name in r]
            if values:
                points[key, n] = (min(values), statistics.median(values), max(values))
    ymax = max(v[2] for v in points.values()) * 1.08
    step = nice_step(ymax)
    ymax = step * int(ymax / step + 0.999)
    xmax = sizes[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(n):
        return LEFT + plot_w * n / float(xmax)

    def y(v):
        return TOP + plot_h * (1 - v / float(ymax))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (WIDTH, HEIGHT, WIDTH, HEIGHT),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="15" font-weight="bold">Fleet up: N VMs x 2 NICs (-S), %d round%s, '
           'median and min-max</text>' % (LEFT, len(rounds), "" if len(rounds) == 1 else "s")]
    # Axes and grid.
    tick = 0.0
    while tick <= ymax + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>' % (LEFT, y(tick), LEFT + plot_w, y(tick)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (LEFT - 6, y(tick) + 4, tick))
        tick += step
    for n in sizes:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999"/>' % (x(n), TOP + plot_h, x(n), TOP + plot_h + 5))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(n), TOP + plot_h + 18, n))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (LEFT, TOP, LEFT, TOP + plot_h))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">N (VMs in the fleet)</text>' % (LEFT + plot_w / 2.0, TOP + plot_h + 38))
    out.append('<text transform="translate(18,%.1f) rotate(-90)" text-anchor="middle">seconds (whole play or script)</text>'
               % (TOP + plot_h / 2.0))
    # The series.
    legend_y = TOP + 10
    for key, legend, colour, dash in SERIES:
        label = " ".join(legend)
        pts = [(n, points[key, n]) for n in sizes if (key, n) in points]
        if not pts:
            continue
        dash_attr = ' stroke-dasharray="%s"' % dash if dash else ""
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                   % (colour, dash_attr, " ".join("%.1f,%.1f" % (x(n), y(v[1])) for n, v in pts)))
        for n, (lo, mid, hi) in pts:
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>' % (x(n), y(lo), x(n), y(hi), colour))
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, N=%d: %.2f s (%.2f-%.2f)</title></circle>'
                       % (x(n), y(mid), colour, escape(label), n, mid, lo, hi))
        lx = LEFT + plot_w + 12
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (lx, legend_y, lx + 24, legend_y, colour, dash_attr))
        for i, text in enumerate(legend):
            out.append('<text x="%d" y="%d"%s>%s</text>' % (lx + 30, legend_y + 4 + 14 * i, "" if i == 0 else ' fill="#555555"', escape(text)))
        legend_y += 14 * len(legend) + 14
    # Caption: the module's peak RSS at the largest N, and the machine.
    hwm = [r["c%d_up_hwm" % xmax] for r in rounds if "c%d_up_hwm" % xmax in r]
    lines = []
    if hwm:
        lines.append("module process peak RSS (VmHWM) at N=%d, fleet up: %.1f MiB (median of %d)"
                     % (xmax, statistics.median(hwm) / 1024.0, len(hwm)))
    while caption:
        cut = len(caption) if len(caption) <= CAPTION_CHARS else caption.rfind(", ", 0, CAPTION_CHARS) + 1
        if cut <= 0:
            cut = CAPTION_CHARS
        lines.append(caption[:cut].strip())
        caption = caption[cut:].strip()
    for i, text in enumerate(lines):
        out.append('<text x="%d" y="%d" font-size="11" fill="#333333">%s</text>' % (LEFT, TOP + plot_h + 58 + 14 * i, escape(text)))
    out.append("</svg>")
    with open(sys.argv[2], "w") as handle:
        handle.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
