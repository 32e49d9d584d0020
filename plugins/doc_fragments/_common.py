# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options every module accepts, so that module_defaults for group/qemu_init.qemu.all works.
    DOCUMENTATION = r"""
options:
  config_dir:
    description:
      - Directory holding C(monitor.conf), the registry C(qemu-init.reg) and the VMs' cfg files in C(vms/).
      - Set it for all modules at once with C(module_defaults) and C(group/qemu_init.qemu.all).
    type: path
    default: /etc/qemu
  run_dir:
    description:
      - Directory for runtime state, one sub-directory per VM (pidfile, QMP socket, serial log, launch record).
    type: path
    default: /run/qemu-init
"""

    NETNS = r"""
options:
  netns:
    description:
      - Name of a network namespace (as listed by C(ip netns list)) to work in.
      - The namespace must exist already; a missing namespace is an error.
      - When not set, the host's own network namespace is used.
    type: str
"""

    # Attributes of an *_info module: read-only in every mode.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This action does not modify state.
  diff_mode:
    support: N/A
    details: This action does not modify state.
  idempotent:
    support: full
"""

    # Attributes the modules declare; each module sets its own support level.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
  action_group:
    description: Use C(group/qemu_init.qemu.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - qemu_init.qemu.all
"""
