# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: stream — the modern TCP or unix stream netdev (QEMU 7.2+), IPv6 and unix sockets included."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import needed, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_listen_connect import ListenConnectNic, address_options


class StreamNic(ListenConnectNic):
    name = "stream"
    connected_prefixes = ("tcp:", "unix:")

    def netdev(self, nic, index, tap):
        address = needed(nic.listen or nic.connect, "listen or connect", index, self.name)
        return "stream,id=%s,server=%s,%s" % (netdev_id(index), "on" if nic.listen else "off", address_options("addr", address))
