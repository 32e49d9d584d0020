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
    """The run-time files of one VM: <run_dir>/<name>/..."""

    def __init__(self, run_dir: str, name: str) -> None:
        self.dir = os.path.join(run_dir, name)
        self.pidfile = os.path.join(self.dir, "qemu.pid")
        self.qmp = os.path.join(self.dir, "qmp.sock")
        self.serial_log = os.path.join(self.dir, "serial.log")
        self.console = os.path.join(self.dir, "console.sock")
        self.launch_record = os.path.join(self.dir, "launch.json")
