# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/run.sh's table: reads its results file (`ROUND KEY VALUE` lines) and the machine lines, prints markdown.

Ratios are taken within each round (both sides measured minutes apart at most), then min/median/max over the
rounds. A target is checked on the medians. Exit status 1 when the re-run of the curve was not idempotent
(changed != 0) at some fleet size.
"""

import collections
import re
import statistics
import sys

KIB_PER_MIB = 1024.0


def load(path):
    rounds = collections.defaultdict(dict)
    with open(path) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) != 3:
                continue
            try:
                rounds[int(parts[0])][parts[1]] = float(parts[2])
            except ValueError:
                rounds[int(parts[0])][parts[1]] = parts[2]
    return [rounds[r] for r in sorted(rounds)]


def series(rounds, fn):
    out = []
    for r in rounds:
        try:
            out.append(fn(r))
        except (KeyError, TypeError, ZeroDivisionError):
            pass
    return out


def sizes(rounds, pattern):
    """The numbers N of the keys matching pattern (one group), sorted."""
    return sorted(set(int(m.group(1)) for r in rounds for k in r for m in [re.match(pattern, k)] if m))


def median_or_none(values):
    return statistics.median(values) if values else None


def main():
    rounds = load(sys.argv[1])
    with open(sys.argv[2]) as handle:
        machine = handle.read().strip()
    rows = []

    def row(label, values, unit, fmt, target=None, verdict=None):
        if not values:
            return
        values = sorted(values)
        cells = [fmt % v for v in (values[0], statistics.median(values), values[-1])]
        rows.append((label, unit, len(values), cells, target or "", "" if verdict is None else ("yes" if verdict else "NO")))

    def med(fn):
        return median_or_none(series(rounds, fn))

    # P1, P2 and the curve: c<N>_script, c<N>_up, c<N>_rerun, c<N>_down, c<N>_<play>_calls, c<N>_rerun_changed.
    curve = sizes(rounds, r"c(\d+)_script$")
    for n in curve:
        script, up = "c%d_script" % n, "c%d_up" % n
        row("P1 fleet up, N=%d: script" % n, series(rounds, lambda r: r[script]), "s", "%.2f")
        row("P1 fleet up, N=%d: ours (the role, one play)" % n, series(rounds, lambda r: r[up]), "s", "%.2f")
        ratio = series(rounds, lambda r: r[up] / r[script])
        target = verdict = None
        if n == 100:
            target = "<= 1.0x script"
            verdict = statistics.median(ratio) <= 1.0 if ratio else None
        elif n == 10:
            ours, base = med(lambda r: r[up]), med(lambda r: r[script])
            target = "ours <= 1.5x script + 0.5 s"
            verdict = None if ours is None or base is None else ours <= 1.5 * base + 0.5
        row("P1 fleet up, N=%d: ours / script" % n, ratio, "x", "%.2f", target, verdict)
    changed = [(n, c) for n in curve for c in series(rounds, lambda r: int(r["c%d_rerun_changed" % n]))]
    if curve:
        n = 100 if 100 in curve else curve[-1]
        rerun = "c%d_rerun" % n
        row("P2 re-run, N=%d: ours" % n, series(rounds, lambda r: r[rerun]), "s", "%.2f")
        row("P2 empty play (right after the re-run)", series(rounds, lambda r: r["c%d_empty" % n]), "s", "%.2f")
        row("P2 re-run, N=%d: changed" % n, series(rounds, lambda r: r[rerun + "_changed"]), "", "%d", "0",
            all(c == 0 for m, c in changed if m == n) if changed else None)
        calls = series(rounds, lambda r: r[rerun + "_calls"])
        row("P2 re-run, N=%d: module calls" % n, calls, "", "%d", "1", all(c == 1 for c in calls) if calls else None)
        extra = series(rounds, lambda r: r[rerun] - r["c%d_empty" % n])
        row("P2 re-run - empty play, N=%d" % n, extra, "s", "%.2f", "<= 0.6 s",
            statistics.median(extra) <= 0.6 if extra else None)
    # The module processes of the largest fleet, watched by bench/modproc.py.
    for n in sizes(rounds, r"c(\d+)_up_hwm$"):
        for play in ("up", "rerun", "down"):
            key = "c%d_%s" % (n, play)
            row("module process, N=%d %s: peak RSS (VmHWM)" % (n, play),
                series(rounds, lambda r: r[key + "_hwm"] / KIB_PER_MIB), "MiB", "%.1f")
        row("module process, N=%d up: ru_maxrss (with its reaped children)" % n,
            series(rounds, lambda r: r["c%d_up_maxrss" % n] / KIB_PER_MIB), "MiB", "%.1f")
        for play in ("up", "rerun", "down"):
            key = "c%d_%s" % (n, play)
            row("module process, N=%d %s: wall time (of the play's)" % (n, play),
                series(rounds, lambda r: r[key + "_wall"]), "s", "%.2f")

    # P3: stop1_* from bench/stop.yml, stop1_{noop,stop}_wall from bench/modproc.py.
    row("P3 stop 1 guest: task", series(rounds, lambda r: r["stop1_stop_task"]), "s", "%.3f")
    row("P3 guest's own shutdown", series(rounds, lambda r: r["stop1_guest_stop"]), "s", "%.3f")
    row("P3 no-op task (Ansible per task)", series(rounds, lambda r: r["stop1_noop_task"]), "s", "%.3f")
    overhead = series(rounds, lambda r: 1000 * (r["stop1_stop_task"] - r["stop1_noop_task"] - r["stop1_guest_stop"]))
    row("P3 stop overhead (task - no-op - guest)", overhead, "ms", "%.0f", "<= 50 ms median",
        statistics.median(overhead) <= 50 if overhead else None)
    row("P3 stop overhead, module processes (stop - no-op - guest)",
        series(rounds, lambda r: 1000 * (r["stop1_stop_wall"] - r["stop1_noop_wall"] - r["stop1_guest_stop"])), "ms", "%.0f")
    # P4: N guests in one call against the floor guest_stop_cpu.py measured in the same round (floor<N>_*).
    for c in [c for c in sizes(rounds, r"stop(\d+)_stop_task$") if c != 1]:
        s, f = "stop%d_" % c, "floor%d_" % c
        row("P4 stop %d: task" % c, series(rounds, lambda r: r[s + "stop_task"]), "s", "%.3f")
        row("P4 stop %d: no-op task" % c, series(rounds, lambda r: r[s + "noop_task"]), "s", "%.3f")

        def own(r, s=s):
            return r[s + "stop_wall"] - r[s + "noop_wall"]
        row("P4 stop %d: the stop's own time (module processes: stop - no-op)" % c, series(rounds, own), "s", "%.3f")
        row("P4 stop %d: slowest guest's own shutdown (stop_seconds)" % c, series(rounds, lambda r: r[s + "guest_stop"]), "s", "%.3f")
        row("P4 %d guests: CPU floor (guest_stop_cpu.py)" % c, series(rounds, lambda r: r[f + "floor"]), "s", "%.3f")
        row("P4 %d guests: plain QEMUs pressed at once, last exit" % c, series(rounds, lambda r: r[f + "slowest_exit"]), "s", "%.3f")
        row("P4 %d guests: plain QEMUs / floor" % c, series(rounds, lambda r: r[f + "slowest_exit"] / r[f + "floor"]), "x", "%.2f")
        row("P4 stop %d: (task - no-op task) / floor" % c,
            series(rounds, lambda r: (r[s + "stop_task"] - r[s + "noop_task"]) / r[f + "floor"]), "x", "%.2f")
        ratio = series(rounds, lambda r: own(r) / r[f + "floor"])
        row("P4 stop %d: own time / floor" % c, ratio, "x", "%.2f", "<= 1.2x",
            statistics.median(ratio) <= 1.2 if ratio else None)
    # P5
    row("P5 up: ours", series(rounds, lambda r: r["p5_ours_up"]), "s", "%.2f")
    row("P5 down: ours", series(rounds, lambda r: r["p5_ours_down"]), "s", "%.2f")
    row("P5 up: libvirt (virt)", series(rounds, lambda r: r["p5_lv_up"]), "s", "%.2f")
    row("P5 down: libvirt (virt)", series(rounds, lambda r: r["p5_lv_down"]), "s", "%.2f")
    ratio = series(rounds, lambda r: (r["p5_ours_up"] + r["p5_ours_down"]) / (r["p5_lv_up"] + r["p5_lv_down"]))
    row("P5 ours / libvirt (up + down)", ratio, "x", "%.2f", "<= 0.33x", statistics.median(ratio) <= 0.33 if ratio else None)
    # P6
    row("P6 fleet up (one run)", series(rounds, lambda r: r["p6_up"]), "s", "%.2f")
    info = series(rounds, lambda r: r["info_task"])
    row("P6 vm_info, all VMs: task", info, "s", "%.3f", "< 1.5 s", statistics.median(info) < 1.5 if info else None)
    row("P6 fleet down (one run)", series(rounds, lambda r: r["p6_down"]), "s", "%.2f")
    scaling = series(rounds, lambda r: r["reg_ratio"])
    row("P6 registry: 10x the VMs costs", scaling, "x", "%.1f", "~10x (O(n)), not ~100x",
        scaling[0] < 20 if scaling else None)

    print(machine)
    print("rounds: %d" % len(rounds))
    print()
    print("| figure | unit | n | min | median | max | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for label, unit, count, cells, target, verdict in rows:
        print("| %s | %s | %d | %s | %s | %s | %s | %s |" % ((label, unit, count) + tuple(cells) + (target, verdict)))
    if curve:
        # The curve's medians in one place (bench/plot.py draws them).
        print()
        print("| N | script | ours up | ours / script | ours re-run | re-run - empty play | ours down | module calls up / re-run / down |")
        print("|---|---|---|---|---|---|---|---|")
        for n in curve:
            k = "c%d_" % n

            def cell(fn, fmt="%.2f"):
                value = med(fn)
                return "-" if value is None else fmt % value
            print("| %d | %s | %s | %s | %s | %s | %s | %s / %s / %s |" % (
                n, cell(lambda r: r[k + "script"]), cell(lambda r: r[k + "up"]),
                cell(lambda r: r[k + "up"] / r[k + "script"]), cell(lambda r: r[k + "rerun"]),
                cell(lambda r: r[k + "rerun"] - r[k + "empty"]), cell(lambda r: r[k + "down"]),
                cell(lambda r: r[k + "up_calls"], "%g"), cell(lambda r: r[k + "rerun_calls"], "%g"),
                cell(lambda r: r[k + "down_calls"], "%g")))
    if any(c for m, c in changed):
        print("\nRE-RUN NOT IDEMPOTENT: changed=%s" % ", ".join("%d at N=%d" % (c, m) for m, c in changed if c))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
