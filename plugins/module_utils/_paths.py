# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a VM's files live, under config_dir and run_dir."""

from __future__ import annotations

import os

CFG_SUFFIX = "-qemu.cfg"


def vms_dir(config_dir: str) -> str:
    return os.path.join(config_dir, "vms")


def cfg_path(config_dir: str, name: str) -> str:
    return os.path.join(vms_dir(config_dir), name + CFG_SUFFIX)


class RunPaths:
    """The run-time files of one VM: <run_dir>/<name>/...

    QEMU serves one client at a time per monitor socket, so a VM has two QMP monitors: `qmp` for lifecycle
    control (the stop ladder holds it while it waits for the exit) and `observe` for everything that only
    looks or sends one command (probe, vm_info, monitor), each holding it for one short exchange.
    `stop_lock` is flock()ed by the call that stops the VM: a second call waits for that stop instead.
    """

    def __init__(self, run_dir: str, name: str) -> None:
        self.name = name
        self.root = run_dir
        self.dir = os.path.join(run_dir, name)
        self.pidfile = os.path.join(self.dir, "qemu.pid")
        self.qmp = os.path.join(self.dir, "qmp.sock")
        self.observe = os.path.join(self.dir, "observe.sock")
        self.stop_lock = os.path.join(self.dir, "stop.lock")
        self.serial_log = os.path.join(self.dir, "serial.log")
        self.console = os.path.join(self.dir, "console.sock")
        self.launch_record = os.path.join(self.dir, "launch.json")
        self.links_record = os.path.join(self.dir, "links.json")  # the taps the collection made for the VM, and where
        self.qga = os.path.join(self.dir, "qga.sock")  # the guest agent's channel (guest_agent: true)
        self.vnc = os.path.join(self.dir, "vnc.sock")  # the display with vnc_listen: unix


class StatePaths:
    """What one VM keeps across reboots: <state_dir>/<name>/... (0700): UEFI variables, TPM state, the cloud-init
    seed, the VNC password and the disks given by a relative file. `absent` removes the directory (disks only with remove_disks)."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.name = name
        self.root = state_dir
        self.dir = os.path.join(state_dir, name)
        self.efi_vars = os.path.join(self.dir, "efi-vars.fd")
        self.efi_vars_record = os.path.join(self.dir, "efi-vars.json")  # which template efi_vars was copied from
        self.seed = os.path.join(self.dir, "cidata.img")
        self.vnc_password = os.path.join(self.dir, "vnc-password")  # read by QEMU's secret object (vnc_password)
        self.made = os.path.join(self.dir, "made.json")  # the disks the collection created (remove_disks)
