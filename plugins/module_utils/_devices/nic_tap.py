# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: tap — a tap device on the host, on a bridge; the vm module makes both before launch."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicBackend, NicSpec, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_ifname


class TapNic(NicBackend):
    name = "tap"
    fields = ("bridge", "tap")

    def validate(self, nic, where):
        if nic.bridge is not None:
            check_ifname(nic.bridge, where("bridge"))
        if nic.tap is not None:
            check_ifname(nic.tap, where("tap"))

    def netdev(self, nic, index, tap):
        # The vm module creates and enslaves the tap before launch: QEMU runs no scripts.
        return "tap,id=%s,ifname=%s,script=no,downscript=no" % (netdev_id(index), esc(tap))

    def tap(self, nic: NicSpec, index: int, short_name: str) -> str:
        """Explicit, else <short_name>-n<index>."""
        return nic.tap or "%s-n%d" % (short_name, index)

    def bridge(self, nic: NicSpec, vm_bridge: str) -> str:
        return nic.bridge or vm_bridge
