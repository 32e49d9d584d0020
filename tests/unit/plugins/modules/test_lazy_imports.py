# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A module loads only what it uses: what only making links, waiting for guests, talking to a guest agent, asking
QEMU for its devices, making disks, cloud-init, TPMs or UEFI need is imported where it is used, so that an idempotent run of the fleet modules does not
compile it (AnsiballZ imports our module_utils from the payload's zip, from source: ~0.5 ms per KiB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

MU = "ansible_collections.qemu_init.qemu.plugins.module_utils."
# Loaded by a start (_iproute), a removal (_iproute), a wait (_ready, and through it _qga), an agent stop (_qga), a
# cfg that changes (_qemu_help), a disk to make (_disk_plan), cloud-init (_seed, _fat), a TPM (_swtpm) or UEFI
# (_firmware); none of it by loading a module.
LAZY = ("_iproute", "_qga", "_ready", "_qemu_help", "_disk_plan", "_seed", "_fat", "_swtpm", "_firmware")


@pytest.mark.parametrize("module", ["vms", "vm", "vm_config", "vm_info"])
def test_loading_a_module_leaves_the_situational_machinery_unloaded(module):
    code = ("import json, sys; import ansible_collections.qemu_init.qemu.plugins.modules.%s; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(%r))))" % (module, MU))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                       text=True).stdout)
    assert MU + "_common" in loaded and MU + "_vmspec" in loaded  # the test sees the module's imports at all
    assert [m for m in loaded if m[len(MU):] in LAZY] == []
