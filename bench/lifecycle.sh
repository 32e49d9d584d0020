#!/usr/bin/env bash
# Start and graceful-stop times of one tiny guest, N rounds (default 7):
#   bash bench/lifecycle.sh [ROUNDS]
# Prints min/median/max of each figure and the module's own stop overhead: the stop task minus
# the no-op task (Ansible's per-task cost, measured in the same round) minus the guest's own
# shutdown (stop_seconds: first power-button press to QEMU's exit).
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

rounds="${1:-7}"
bash "$QI_REPO/tools/bootstrap.sh"
export QI_GUEST_DIR="${QI_GUEST_DIR:-$QI_REPO/.cache/guest}"
bash "$QI_REPO/tools/build-guest.sh" "$QI_GUEST_DIR" >&2
root="$QI_BUILD_DIR/bench"
qi_layout "$root/ansible_collections/qemu_init/qemu"
export PATH="$QI_VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$root" ANSIBLE_HOME="$root/ansible-home"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= rounds; i++)); do
    ansible-playbook -i localhost, "$QI_REPO/bench/lifecycle.yml" | grep -o 'BENCH [^"]*' >>"$out"
done
"$QI_VENV/bin/python" - "$out" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\w.]+)", line)) for line in open(sys.argv[1])]
print("%d rounds, one guest (TCG), seconds" % len(rows))
print("%-24s %7s %7s %7s" % ("figure", "min", "median", "max"))
def show(label, values):
    values = sorted(values)
    print("%-24s %7.3f %7.3f %7.3f" % (label, values[0], statistics.median(values), values[-1]))
for key in ("noop_task", "start_task", "launch", "stop_task", "guest_stop"):
    show(key, [float(r[key]) for r in rows])
show("start over no-op task", [float(r["start_task"]) - float(r["noop_task"]) for r in rows])
show("stop overhead", [float(r["stop_task"]) - float(r["noop_task"]) - float(r["guest_stop"]) for r in rows])
print("stop methods: %s" % ", ".join(sorted(set(r["method"] for r in rows))))
PY
