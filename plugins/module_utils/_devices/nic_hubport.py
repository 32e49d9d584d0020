# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backend: hubport — a port on a QEMU hub (the old -net "VLAN"); a hub reaches a bridge through an uplink tap
(hubs: [{id, bridge, tap}]), which is also this file's."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicBackend, needed, netdev_id
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_ifname


def _hub_number(value):
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= 65535


class HubportNic(NicBackend):
    name = "hubport"
    fields = ("hub",)

    def validate(self, nic, where):
        if nic.hub is None:
            raise ParameterError(where("hub"), "backend hubport needs hub: N (the hub number)")
        if not _hub_number(nic.hub):
            raise ParameterError(where("hub"), "%r is not a hub number 0 .. 65535" % (nic.hub,))

    def netdev(self, nic, index, tap):
        return "hubport,id=%s,hubid=%d" % (netdev_id(index), needed(nic.hub, "hub", index, self.name))


@dataclass
class HubSpec:
    """A tap uplink joining QEMU hub `id` to a bridge."""
    id: int
    bridge: str | None = None
    tap: str | None = None

    def tap_name(self, short_name):
        """Explicit, else <short_name>-h<id>."""
        return self.tap or "%s-h%d" % (short_name, self.id)

    def bridge_name(self, vm_bridge):
        return self.bridge or vm_bridge

    def argv(self, short_name):
        # The uplink: a tap netdev with no guest device, plugged into the hub by a hubport.
        uplink = "hub%dup" % self.id
        return ["-netdev", "tap,id=%s,ifname=%s,script=no,downscript=no" % (uplink, esc(self.tap_name(short_name))),
                "-netdev", "hubport,id=hub%dport,hubid=%d,netdev=%s" % (self.id, self.id, uplink)]


def build_hubs(hubs, nics, where):
    """The uplinks from hubs[] items; where(i, field) names a field of item i (1-based)."""
    seen: dict[int, int] = {}
    used = set(nic.hub for nic in nics if nic.backend == "hubport")
    built = []
    for i, h in enumerate(hubs, start=1):
        hub_id = h.get("id")
        if not _hub_number(hub_id):
            raise ParameterError(where(i, "id"), "%r is not a hub number 0 .. 65535" % (hub_id,))
        if hub_id in seen:
            raise ParameterError(where(i, "id"), "hub %d already has an uplink (hubs[%d])" % (hub_id, seen[hub_id] - 1))
        if hub_id not in used:
            raise ParameterError(where(i, "id"), "no NIC is on hub %d (add a NIC with backend: hubport, hub: %d)" % (hub_id, hub_id))
        seen[hub_id] = i
        hub = HubSpec(id=hub_id, bridge=h.get("bridge") or None, tap=h.get("tap") or None)
        if hub.bridge is not None:
            check_ifname(hub.bridge, where(i, "bridge"))
        if hub.tap is not None:
            check_ifname(hub.tap, where(i, "tap"))
            if any(nic.tap == hub.tap for nic in nics):
                raise ParameterError(where(i, "tap"), "%s is already the tap of a NIC of this VM" % hub.tap)
        built.append(hub)
    return built


def hub_cfg_items(hubs):
    items = []
    for i, hub in enumerate(hubs, start=1):
        items.append(("HUB%d" % i, str(hub.id)))
        if hub.bridge is not None:
            items.append(("HUB%d_BRIDGE" % i, hub.bridge))
        if hub.tap is not None:
            items.append(("HUB%d_TAP" % i, hub.tap))
    return items
