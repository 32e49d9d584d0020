# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""P6's O(n) check: plan a batch of N new VMs in one registry (what vm_config vms: does under the lock),
render it, parse it back and resolve every name (what the vm and vm_info modules do), for N and 10*N.

    PYTHONPATH=<dir holding ansible_collections> python3 bench/registry_scaling.py [N]

Prints one line: `BENCH reg_n=N reg_small=SECONDS reg_large=SECONDS reg_ratio=LARGE/SMALL` (O(n): ratio near 10; O(n^2): near 100).
"""

import sys
import time

from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import RegistryState


def one_batch(n):
    names = ["vm%d" % i for i in range(n)]
    # Two distinct MACs per VM. Not the derived ones: 16 bits of hash clash by the birthday bound in a
    # registry this size (that is the rule's limit, not what this measures).
    macs = ["DE:AD:BE:%02X:%02X:%02X" % (n2 >> 16, (n2 >> 8) & 255, n2 & 255) for n2 in range(2 * n)]
    t0 = time.perf_counter()
    state = RegistryState("reg", 30320, [])
    listening = frozenset([22, 5901])  # a few ports other programs listen on, as on a real host
    for i, name in enumerate(names):
        state.put(state.plan_register(name, None, macs[2 * i:2 * i + 2], listening))
    again = RegistryState.parse("reg", state.render(), 30320)
    assert all(again.resolve(name) is not None for name in names)
    return time.perf_counter() - t0


def best_of(n, rounds=5):
    return min(one_batch(n) for _round in range(rounds))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    small, large = best_of(n), best_of(10 * n)
    print("BENCH reg_n=%d reg_small=%.4f reg_large=%.4f reg_ratio=%.1f" % (n, small, large, large / small))


if __name__ == "__main__":
    main()
