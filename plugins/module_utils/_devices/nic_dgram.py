# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: dgram — UDP (or unix datagram) between a local and a remote address; nothing connects."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import needed, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_listen_connect import ListenConnectNic, address_options


class DgramNic(ListenConnectNic):
    name = "dgram"

    def validate(self, nic, where):
        if not (nic.listen and nic.connect):
            raise ParameterError(where("listen"), "backend dgram needs listen (local address) and connect (remote address)")
        self.address(nic.listen, where("listen"), True)
        self.address(nic.connect, where("connect"), False)

    def listened_tcp_ports(self, nic):
        return []  # UDP

    def connects(self, nic):
        return False  # a datagram peer need not be up first

    def netdev(self, nic, index, tap):
        local = needed(nic.listen, "listen", index, self.name)
        remote = needed(nic.connect, "connect", index, self.name)
        return "dgram,id=%s,%s,%s" % (netdev_id(index), address_options("local", local), address_options("remote", remote))
