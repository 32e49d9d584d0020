# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is a VM started at boot? Its systemd instance qemu-init@NAME.service enabled, the way `systemctl enable` does it.

`systemctl enable qemu-init@web1` makes one symlink, <systemd_dir>/qemu-init.target.wants/qemu-init@web1.service
-> <systemd_dir>/qemu-init@.service (the [Install] section says WantedBy=qemu-init.target). Making the same link
needs no running systemd, so it works in containers and image builds, and reads back as `enabled`. A host without
<systemd_dir> (OpenRC) has no link; its init script starts the VMs whose cfg says AUTOSTART="yes".
"""

from __future__ import annotations

import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

DEFAULT_SYSTEMD_DIR = "/etc/systemd/system"
TEMPLATE_UNIT = "qemu-init@.service"
TARGET_WANTS = "qemu-init.target.wants"


class AutostartLink:
    def __init__(self, systemd_dir: str, name: str) -> None:
        self.systemd_dir = systemd_dir
        self.path = os.path.join(systemd_dir, TARGET_WANTS, "qemu-init@%s.service" % name)
        self.target = os.path.join(systemd_dir, TEMPLATE_UNIT)

    def managed(self) -> bool:
        """Only a host with a systemd unit directory gets links."""
        return os.path.isdir(self.systemd_dir)

    def enabled(self) -> bool:
        return os.path.islink(self.path) and os.readlink(self.path) == self.target

    def set(self, enabled: bool) -> None:
        try:
            if enabled:
                os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
                if os.path.lexists(self.path):
                    os.unlink(self.path)
                os.symlink(self.target, self.path)
            elif os.path.lexists(self.path):
                os.unlink(self.path)
        except OSError as exc:
            action = "making" if enabled else "removing"
            raise QemuInitError("%s the boot link %s failed: %s" % (action, self.path, exc.strerror or exc)) from exc

    def line(self, enabled: bool) -> str:
        """The link as a diff shows it."""
        return "%s -> %s\n" % (self.path, self.target) if enabled else ""
