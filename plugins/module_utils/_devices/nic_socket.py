# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: socket — QEMU's original TCP socket netdev (IPv4 only), one end listens, the other connects."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_listen_connect import ListenConnectNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc


class SocketNic(ListenConnectNic):
    name = "socket"
    unix_ok = False
    connected_prefixes = ("socket: connect to",)

    def address(self, value, where, allow_empty_host):
        address = super().address(value, where, allow_empty_host)
        if address.bracketed:
            # QEMU's socket netdev resolves IPv4 only ("can't resolve host address '['").
            raise ParameterError(where, "%r: backend socket is IPv4 only; use backend stream for IPv6" % (value,))
        return address

    def netdev(self, nic, index, tap):
        if nic.listen:
            # An empty host would listen on every address; loopback unless the user names one.
            address = _addr.hostport(nic.listen, "listen")
            return "socket,id=%s,listen=%s:%d" % (netdev_id(index), esc(address.host_or("127.0.0.1")), address.port)
        return "socket,id=%s,connect=%s" % (netdev_id(index), esc(nic.connect))
