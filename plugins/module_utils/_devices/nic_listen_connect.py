# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the socket, stream and dgram backends share: a listen and/or a connect address, and the check that
QEMU really connected a client NIC (it keeps running with a dead one and never retries)."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicBackend, netdev_described
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc


class ListenConnectNic(NicBackend):
    fields = ("listen", "connect")
    unix_ok = True  # the address may be unix:/PATH

    def address(self, value, where, allow_empty_host):
        if self.unix_ok:
            return _addr.stream_address(value, where, allow_empty_host)
        return _addr.hostport(value, where, allow_empty_host)

    def validate(self, nic, where):
        if bool(nic.listen) == bool(nic.connect):
            raise ParameterError(where("listen"), "backend %s needs exactly one of listen or connect" % self.name)
        for fname, allow_empty in (("listen", True), ("connect", False)):
            if getattr(nic, fname):
                self.address(getattr(nic, fname), where(fname), allow_empty)

    def listened_tcp_ports(self, nic):
        if not nic.listen or _addr.is_unix(nic.listen):
            return []
        return [_addr.hostport(nic.listen, "listen").port]

    def listens(self, nic):
        return bool(nic.listen)

    def connects(self, nic):
        return bool(nic.connect)

    def connected(self, nic, info_network, index):
        # QEMU 7.2 shows a connected socket client as 'socket: connect to H:P' and a connected stream client as
        # 'tcp:H:P' or 'unix:PATH'; a failed one as an empty description or 'connection error'.
        described = netdev_described(info_network, index - 1)
        return described is not None and described.startswith(self.connected_prefixes)

    connected_prefixes: tuple[str, ...] = ()


def address_options(prefix: str, value: str) -> str:
    """A stream/dgram address as QEMU's dotted options (addr.type=inet,addr.host=...,addr.port=...)."""
    if _addr.is_unix(value):
        return "%s.type=unix,%s.path=%s" % (prefix, prefix, esc(value[5:]))
    address = _addr.hostport(value, prefix)
    return "%s.type=inet,%s.host=%s,%s.port=%d" % (prefix, prefix, esc(address.host_or("127.0.0.1")), prefix, address.port)
