# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: user — QEMU's user-mode network (slirp): no host links, outbound NAT, host forwards into the guest."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicBackend, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc


class UserNic(NicBackend):
    name = "user"
    fields = ("hostfwd", "restrict")

    def validate(self, nic, where):
        forwards = []
        for rule in nic.hostfwd:
            forward = _addr.forward(rule, where("hostfwd"))
            # An empty host address would listen on every interface; bind to loopback unless asked.
            forwards.append(forward._replace(host_addr=forward.host_addr or "127.0.0.1").render())
        nic.hostfwd = forwards
        if not isinstance(nic.restrict, bool):
            raise ParameterError(where("restrict"), "%r is not true or false" % (nic.restrict,))

    def netdev(self, nic, index, tap):
        options = ["user,id=%s" % netdev_id(index)] + (["restrict=on"] if nic.restrict else [])
        return ",".join(options + ["hostfwd=%s" % esc(rule) for rule in nic.hostfwd])

    def listened_tcp_ports(self, nic):
        return [forward.host_port for forward in self.forwards(nic) if forward.proto == "tcp"]

    def host_forward(self, nic, guest_port):
        for forward in self.forwards(nic):
            if forward.proto == "tcp" and forward.guest_port == guest_port:
                return forward.host_addr or "127.0.0.1", forward.host_port
        return None

    @staticmethod
    def forwards(nic) -> list[_addr.Forward]:
        return [_addr.forward(rule, "hostfwd") for rule in nic.hostfwd]
