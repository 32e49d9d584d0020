# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/run.sh's table: reads its results file (`ROUND KEY VALUE` lines) and the machine lines, prints markdown.

Ratios are taken within each round (both sides measured minutes apart at most), then min/median/max over the
rounds. A target is checked on the medians. Exit status 1 when P2 was not idempotent (changed != 0).
"""

import collections
import re
import statistics
import sys


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
        values = series(rounds, fn)
        return statistics.median(values) if values else None

    # P1
    row("P1 fleet up: script", series(rounds, lambda r: r["p1_script"]), "s", "%.2f")
    row("P1 fleet up: ours", series(rounds, lambda r: r["p1_ours"]), "s", "%.2f")
    ours, script = med(lambda r: r["p1_ours"]), med(lambda r: r["p1_script"])
    row("P1 ours / script", series(rounds, lambda r: r["p1_ours"] / r["p1_script"]), "x", "%.2f",
        "<= 1.5x script + 1 s", None if ours is None else ours <= 1.5 * script + 1)
    # P2
    row("P2 re-run (changed=0): ours", series(rounds, lambda r: r["p2_ours"]), "s", "%.2f")
    row("P2 empty play", series(rounds, lambda r: r["p2_empty"]), "s", "%.2f")
    rerun, empty = med(lambda r: r["p2_ours"]), med(lambda r: r["p2_empty"])
    changed = series(rounds, lambda r: int(r["p2_changed"]))
    row("P2 re-run / empty play", series(rounds, lambda r: r["p2_ours"] / r["p2_empty"]), "x", "%.2f",
        "<= 1.2x empty + 1 s", None if rerun is None else (rerun <= 1.2 * empty + 1 and not any(changed)))
    # P3
    row("P3 stop 1 guest: task", series(rounds, lambda r: r["stop1_stop_task"]), "s", "%.3f")
    row("P3 guest's own shutdown", series(rounds, lambda r: r["stop1_guest_stop"]), "s", "%.3f")
    row("P3 no-op task (Ansible per task)", series(rounds, lambda r: r["stop1_noop_task"]), "s", "%.3f")
    overhead = series(rounds, lambda r: 1000 * (r["stop1_stop_task"] - r["stop1_noop_task"] - r["stop1_guest_stop"]))
    row("P3 stop overhead (task - no-op - guest)", overhead, "ms", "%.0f", "<= 50 ms median",
        statistics.median(overhead) <= 50 if overhead else None)
    # P4
    counts = sorted(set(int(k[4:k.index("_")]) for r in rounds for k in r if re.match(r"stop\d+_stop_task$", k)))
    n = "stop%d" % counts[-1] if counts else None
    if n and n != "stop1":
        row("P4 stop %s guests: task" % n[4:], series(rounds, lambda r: r[n + "_stop_task"]), "s", "%.3f")
        row("P4 slowest guest's own shutdown", series(rounds, lambda r: r[n + "_guest_stop"]), "s", "%.3f")
        ratio = series(rounds, lambda r: r[n + "_stop_task"] / r["stop1_stop_task"])
        row("P4 stop %s / stop 1" % n[4:], ratio, "x", "%.2f", "<= 1.3x", statistics.median(ratio) <= 1.3 if ratio else None)
    for c in counts[1:-1]:
        # As many guests as cores: the same parallel stop without the guests queueing for CPU (no target).
        m = "stop%d" % c
        row("P4 stop %d guests (one per core): task" % c, series(rounds, lambda r: r[m + "_stop_task"]), "s", "%.3f")
        row("P4 stop %d guests: slowest guest's own shutdown" % c, series(rounds, lambda r: r[m + "_guest_stop"]), "s", "%.3f")
        row("P4 stop %d / stop 1" % c, series(rounds, lambda r: r[m + "_stop_task"] / r["stop1_stop_task"]), "x", "%.2f")
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
    if any(changed):
        print("\nP2 FAILED: the re-run reported changed=%s" % ",".join(str(c) for c in changed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
