# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a device kind may look at when it writes argv or prepares the host: one VM's paths, names and tools."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

    from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths
    from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import VmSpec


class DeviceContext(t.NamedTuple):
    spec: VmSpec
    run: RunPaths
    state: StatePaths
    short_name: str
    module: AnsibleModule | None = None  # None where only argv is computed (restart_required)
