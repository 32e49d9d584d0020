# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The curve's fleet as static extra vars for bench/fleet.yml (`-e @FILE`): what a user's inventory holds.

    python3 bench/fleet_vars.py COUNT NETNS > FILE.json

Prints {"qemu_vms": [...]} (the vms role's variable): COUNT VMs qb101.. as bench/fleet.yml builds them with fleet_nic=tap,
fleet_paused=true, fleet_macs=indexed (64 MiB, TCG, -S, bridge qi-bbr in NETNS, two e1000 tap NICs with the
explicit MACs DE:AD:BE:<nic>:<i / 256>:<i % 256> that bench/fleet.sh's MACS=indexed gives the script's QEMUs).
Given as data, the list costs the play no templating: building 200 specs in Jinja, as fleet.yml otherwise
does, costs ~0.1 s each time a task reads them, which is the benchmark's doing, not the collection's.
"""

import json
import sys


def main():
    count, netns = int(sys.argv[1]), sys.argv[2]
    vms = []
    for i in range(1, count + 1):
        vms.append({
            "name": "qb%d" % (100 + i), "memory": 64, "accel": "tcg", "netns": netns, "bridge": "qi-bbr",
            "extra_args": ["-S"],
            "nics": [{"model": "e1000", "backend": "tap", "mac": "DE:AD:BE:%02X:%02X:%02X" % (nic, i // 256, i % 256)}
                     for nic in (1, 2)],
        })
    json.dump({"qemu_vms": vms}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
