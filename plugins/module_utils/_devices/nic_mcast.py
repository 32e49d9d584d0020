# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: mcast — QEMU's socket netdev on a UDP multicast group (IPv4 only): a bus any number of VMs join."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicBackend, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc


class McastNic(NicBackend):
    name = "mcast"
    fields = ("mcast", "localaddr")

    def validate(self, nic, where):
        if not nic.mcast:
            raise ParameterError(where("mcast"), "backend mcast needs mcast: GROUP:PORT, e.g. 230.0.0.1:1234")
        group = _addr.hostport(nic.mcast, where("mcast"), allow_empty_host=False)
        if group.bracketed:
            raise ParameterError(where("mcast"), "%r: QEMU's mcast backend is IPv4 only" % (nic.mcast,))
        if not _addr.ip(group.host, where("mcast")).is_multicast:
            raise ParameterError(where("mcast"), "%s is not a multicast group address" % group.host)
        if nic.localaddr:
            _addr.ip(nic.localaddr, where("localaddr"), version=4, what="QEMU's mcast backend")

    def netdev(self, nic, index, tap):
        value = "socket,id=%s,mcast=%s" % (netdev_id(index), esc(nic.mcast))
        if nic.localaddr:
            value += ",localaddr=%s" % esc(nic.localaddr)
        return value

    def host_problem(self, nic, ip, where):
        # Without localaddr QEMU joins the group on the interface of the route to it, and exits with 'No such
        # device' when there is none.
        if nic.localaddr:
            return None
        group = _addr.hostport(nic.mcast, "mcast").host
        try:
            ip.run(["route", "get", group])
        except QemuInitError:
            namespace = "network namespace %s" % ip.netns if ip.netns else "the host's network namespace"
            return ("%s has no route to the multicast group %s, so QEMU could not join it ('No such device'); set "
                    "%s (127.0.0.1 for a bus between VMs on this host) or add a multicast route "
                    "(ip route add 224.0.0.0/4 dev IFACE)" % (namespace, group, where("localaddr")))
        return None
