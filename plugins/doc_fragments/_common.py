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
      - It also holds C(.qemu-devices.json), the NIC models each QEMU binary lists for C(-device help), kept per
        binary (its path, inode, size, mtime and ctime) so that a cfg change does not start QEMU to ask again; a new
        or rebuilt binary is asked again, and removing the file is always safe.
    type: path
    default: /run/qemu-init
  state_dir:
    description:
      - Directory for what must outlive a reboot, one sub-directory per VM; the collection keeps there the VM's
        UEFI variables, TPM state and cloud-init seed, and disks given by a relative file
        (O(qemu_init.qemu.vm_config#module:disks[].file)).
      - Set it for all modules at once with C(module_defaults) and C(group/qemu_init.qemu.all).
    type: path
    default: /var/lib/qemu-init
    version_added: 0.1.0
"""

    # The lifecycle options of the vm and vms modules that wait for guests and remove what VMs kept.
    LIFECYCLE = r"""
options:
  wait_for:
    description:
      - After starting (and for VMs already running), wait until each guest is ready, all VMs of the call in
        parallel under one O(wait_timeout).
      - V(agent) the QEMU guest agent answers (needs C(guest_agent=true)); V(ssh) an SSH server sends its
        C(SSH-) banner, through a user NIC's host forward of guest port 22 (C(hostfwd=[tcp:127.0.0.1:PORT-:22])),
        else on an address the guest agent reports; V(serial) the regular expression O(wait_pattern) appears in
        the serial log.
      - A VM not ready in time fails the task, naming it; it keeps running.
    type: str
    choices: [none, agent, ssh, serial]
    default: none
    version_added: 0.1.0
  wait_timeout:
    description:
      - Seconds to wait for every guest to be ready (O(wait_for)), from V(0) to V(2147483647); a value outside is
        refused before anything is started.
    type: int
    default: 300
    version_added: 0.1.0
  wait_pattern:
    description: With O(wait_for=serial), the regular expression (Python syntax, multi-line) to find in the serial log.
    type: str
    version_added: 0.1.0
  remove_disks:
    description:
      - With state V(absent), also remove the disks, that is the files under the VM's directory in O(state_dir) and
        the disks the collection created elsewhere (overlays and blank disks it made). Without it only the UEFI
        variables, TPM state and cloud-init seed go; disks stay.
    type: bool
    default: false
    version_added: 0.1.0
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
