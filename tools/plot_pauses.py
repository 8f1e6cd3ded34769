#!/usr/bin/env python3
"""Plots stop-the-world pause against live heap size from shoal_pause_bench's CSV.

    build/release/bench/shoal_pause_bench --csv pauses.csv
    tools/plot_pauses.py pauses.csv [-o docs/pause_vs_heap.svg]

Writes a self-contained SVG (drawn by hand: no matplotlib needed). x = live heap size (MB,
log scale), y = pause (us, log scale). Series: Shoal p99, Shoal max, Boehm max and
Boehm-incremental max (any other collector in the CSV gets a max series too). Each point
is the worst over the thread counts measured at that size; the marker shape says which
thread count it came from (circle: 1 thread, square: 2 or more); p99 markers are hollow. Dashed horizontal lines
mark the targets: p99 <= 100 us and max <= 1 ms. Rows that failed (ok = 0) are skipped and
listed under the plot.
"""

import argparse
import csv
import math
import sys
from collections import defaultdict

WIDTH, HEIGHT = 780, 520
LEFT, RIGHT, TOP, BOTTOM = 80, 210, 56, 86

COLORS = {
    ("shoal", "p99"): "#1f77b4",
    ("shoal", "max"): "#0b3d91",
    ("shoal-stw", "max"): "#17becf",
    ("boehm", "max"): "#d62728",
    ("boehm-incremental", "max"): "#ff7f0e",
    ("boehm-generational", "max"): "#8c564b",
}
LABELS = {
    "shoal": "Shoal",
    "shoal-stw": "Shoal (stop-the-world)",
    "boehm": "Boehm",
    "boehm-incremental": "Boehm incremental",
    "boehm-generational": "Boehm generational",
}
ORDER = ["shoal", "shoal-stw", "boehm", "boehm-incremental", "boehm-generational"]


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def read_rows(path):
    rows, failed = [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("ok", "1") != "1":
                failed.append(r)
                continue
            rows.append(r)
    return rows, failed


def build_series(rows):
    """{(collector, stat): [(live_mb, pause_us, threads)]}, worst over thread counts."""
    worst = defaultdict(dict)  # (collector, stat) -> live -> (pause, threads)
    for r in rows:
        collector = r["collector"]
        live = float(r["live_mb"])
        threads = int(r["threads"])
        stats = ["max"] + (["p99"] if collector == "shoal" else [])
        for stat in stats:
            value = float(r[stat + "_us"])
            if value <= 0:
                continue
            cur = worst[(collector, stat)].get(live)
            if cur is None or value > cur[0]:
                worst[(collector, stat)][live] = (value, threads)
    series = {}
    for key, by_live in worst.items():
        series[key] = sorted((live, p, t) for live, (p, t) in by_live.items())
    return series


def decades(lo, hi):
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if a == b:
        b += 1
    return a, b


def fmt_us(v):
    if v >= 1e6:
        return "%gs" % (v / 1e6)
    if v >= 1e3:
        return "%gms" % (v / 1e3)
    return "%gµs" % v


def fmt_mb(v):
    return "%g GB" % (v / 1024) if v >= 1024 else "%g MB" % v


def plot(series, failed, title, subtitle=""):
    xs = [p[0] for pts in series.values() for p in pts] or [100, 4096]
    ys = [p[1] for pts in series.values() for p in pts] + [100, 1000]
    x0, x1 = decades(min(xs) / 1.5, max(xs) * 1.5)
    y0, y1 = decades(min(ys) / 2, max(ys) * 1.2)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def X(v):
        return LEFT + (math.log10(v) - x0) / (x1 - x0) * pw

    def Y(v):
        return TOP + ph - (math.log10(v) - y0) / (y1 - y0) * ph

    out = []
    add = out.append
    add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="sans-serif" font-size="12">' % (WIDTH, HEIGHT, WIDTH, HEIGHT))
    add('<rect width="100%" height="100%" fill="white"/>')
    add('<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>' % (LEFT, esc(title)))
    if subtitle:
        add('<text x="%d" y="39" font-size="11" fill="#444">%s</text>' % (LEFT, esc(subtitle)))
    # Grid and ticks.
    for d in range(y0, y1 + 1):
        for m in (1, 2, 5) if d < y1 else (1,):
            v = m * 10 ** d
            y = Y(v)
            add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>'
                % (LEFT, y, LEFT + pw, y, "#ccc" if m == 1 else "#eee"))
            if m == 1:
                add('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>'
                    % (LEFT - 6, y, fmt_us(v)))
    for d in range(x0, x1 + 1):
        for m in (1, 2, 5) if d < x1 else (1,):
            v = m * 10 ** d
            x = X(v)
            add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>'
                % (x, TOP, x, TOP + ph, "#ccc" if m == 1 else "#eee"))
    for live in sorted(set(xs)):
        add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (X(live), TOP + ph + 18, fmt_mb(live)))
    add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (LEFT, TOP, pw, ph))
    add('<text x="%.1f" y="%d" text-anchor="middle">live heap (log scale)</text>' % (LEFT + pw / 2, TOP + ph + 38))
    add('<text transform="translate(18,%.1f) rotate(-90)" text-anchor="middle">'
        'stop-the-world pause (log scale)</text>' % (TOP + ph / 2))
    # Targets.
    for v, label in ((100, "target p99 100 µs"), (1000, "target max 1 ms")):
        y = Y(v)
        add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2ca02c" stroke-width="1.5" '
            'stroke-dasharray="6,4"/>' % (LEFT, y, LEFT + pw, y))
        add('<text x="%d" y="%.1f" fill="#2ca02c" font-size="11">%s</text>' % (LEFT + 4, y - 4, label))
    # Series.
    keys = sorted(series, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1] != "p99"))
    legend_y = TOP + 10
    for key in keys:
        collector, stat = key
        color = COLORS.get(key, "#7f7f7f")
        pts = series[key]
        dash = ' stroke-dasharray="2,3"' if stat == "p99" else ""
        if len(pts) > 1:
            path = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", X(p[0]), Y(p[1])) for i, p in enumerate(pts))
            add('<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (path, color, dash))
        for live, pause, threads in pts:
            x, y = X(live), Y(pause)
            tip = "%s %s, %s, %d thread(s): %s" % (LABELS.get(collector, collector), stat, fmt_mb(live), threads,
                                                    fmt_us(round(pause, 1)))
            # p99 points are hollow and larger, so that they stay visible where p99 = max.
            fill = 'fill="none" stroke="%s" stroke-width="1.5"' % color if stat == "p99" else 'fill="%s"' % color
            r = 7 if stat == "p99" else 4
            if threads <= 1:
                add('<circle cx="%.1f" cy="%.1f" r="%d" %s><title>%s</title></circle>' % (x, y, r, fill, esc(tip)))
            else:
                add('<rect x="%.1f" y="%.1f" width="%d" height="%d" %s><title>%s</title></rect>'
                    % (x - r, y - r, 2 * r, 2 * r, fill, esc(tip)))
        lx = LEFT + pw + 14
        add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
            % (lx, legend_y, lx + 24, legend_y, color, dash))
        add('<text x="%d" y="%d" dominant-baseline="middle">%s %s</text>'
            % (lx + 30, legend_y, esc(LABELS.get(collector, collector)), stat))
        legend_y += 20
    legend_y += 8
    lx = LEFT + pw + 14
    add('<circle cx="%d" cy="%d" r="4" fill="#555"/>' % (lx + 12, legend_y))
    add('<text x="%d" y="%d" dominant-baseline="middle">worst at 1 thread</text>' % (lx + 30, legend_y))
    legend_y += 18
    add('<rect x="%d" y="%d" width="8" height="8" fill="#555"/>' % (lx + 8, legend_y - 4))
    add('<text x="%d" y="%d" dominant-baseline="middle">worst at 2+ threads</text>' % (lx + 30, legend_y))
    if failed:
        groups = defaultdict(list)  # (collector, note) -> sizes
        for r in failed:
            key = (r["collector"], r.get("note", "") or "no result")
            size = fmt_mb(float(r["live_mb"]))
            if size not in groups[key]:
                groups[key].append(size)
        note_y = HEIGHT - 6 - 13 * (len(groups) - 1)
        for (collector, note), sizes in groups.items():
            add('<text x="%d" y="%d" font-size="10" fill="#a00">no result: %s at %s (%s)</text>'
                % (LEFT, note_y, esc(LABELS.get(collector, collector)), esc(", ".join(sizes)), esc(note)))
            note_y += 13
    add("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="CSV written by shoal_pause_bench --csv")
    ap.add_argument("-o", "--output", default="docs/pause_vs_heap.svg")
    ap.add_argument("--title", default="Stop-the-world pause vs live heap (shoal_pause_bench)")
    ap.add_argument("--subtitle", default="", help="a second, smaller line under the title")
    args = ap.parse_args()
    rows, failed = read_rows(args.csv)
    if not rows:
        sys.exit("no successful rows in %s" % args.csv)
    svg = plot(build_series(rows), failed, args.title, args.subtitle)
    with open(args.output, "w") as f:
        f.write(svg)
    print("wrote %s (%d rows, %d failed)" % (args.output, len(rows), len(failed)))


if __name__ == "__main__":
    main()
