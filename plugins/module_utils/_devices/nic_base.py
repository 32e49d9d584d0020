# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every NIC backend answers (NicBackend), and the spec of one NIC (NicSpec).

A backend knows its own fields only: which optional NIC fields it uses, how they are checked, the -netdev value
they become, the TCP ports it listens on, whether it must start after a listener, what the host must offer
before launch and whether QEMU really connected it after. The generic parts of a NIC (model, MAC, cfg keys)
are in nic.py.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

if t.TYPE_CHECKING:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand

DEFAULT_NIC_MODEL = "e1000"
DEFAULT_NIC_BACKEND = "tap"
# Every optional NIC field, in the order the cfg file lists them (NICx_<FIELD>).
OPTIONAL_FIELDS = ("bridge", "tap", "listen", "connect", "mcast", "localaddr", "hub", "hostfwd", "restrict")

Where = t.Callable[[str], str]  # names a NIC field the way the input spells it (nics[0].listen, NIC1_LISTEN)


@dataclass
class NicSpec:
    model: str = DEFAULT_NIC_MODEL
    backend: str = DEFAULT_NIC_BACKEND
    bridge: str | None = None
    tap: str | None = None
    listen: str | None = None
    connect: str | None = None
    mcast: str | None = None
    localaddr: str | None = None
    hub: int | None = None
    hostfwd: list[str] = field(default_factory=list)
    restrict: bool = False  # user: the guest reaches only slirp's own services and its host forwards
    mac: str | None = None  # explicit MAC; None means derived from NAME, OS and the NIC number


class NicBackend:
    """A -netdev backend. Subclasses override what their backend has; the defaults are 'nothing'."""

    name = ""
    fields: tuple[str, ...] = ()  # the optional NIC fields this backend uses

    def validate(self, nic: NicSpec, where: Where) -> None:
        """Check (and normalise) the backend's own fields; ParameterError(where(field), ...) on a bad one."""

    def netdev(self, nic: NicSpec, index: int, tap: str | None) -> str:
        """The -netdev value of NIC `index` (1-based; its id is net<index-1>); `tap` is tap()'s answer."""
        raise NotImplementedError

    def tap(self, nic: NicSpec, index: int, short_name: str) -> str | None:
        """The tap device the NIC needs on the host, if any."""
        return None

    def bridge(self, nic: NicSpec, vm_bridge: str) -> str | None:
        """The bridge that tap goes on."""
        return None

    def listened_tcp_ports(self, nic: NicSpec) -> list[int]:
        """TCP ports QEMU will listen on for this NIC (kept out of the VM slots' port ranges)."""
        return []

    def listens(self, nic: NicSpec) -> bool:
        return False

    def connects(self, nic: NicSpec) -> bool:
        """Does the NIC connect to a listener (so it launches after the listeners of the same call)?"""
        return False

    def host_problem(self, nic: NicSpec, ip: IpCommand, where: Where) -> str | None:
        """Why QEMU would fail to open this NIC in ip's namespace, checked before launch; None when fine."""
        return None

    def host_forward(self, nic: NicSpec, guest_port: int) -> tuple[str, int] | None:
        """(host address, host port) where the host reaches the guest's TCP guest_port through this NIC, if it can."""
        return None

    def connected(self, nic: NicSpec, info_network: str, index: int) -> bool:
        """After launch: did QEMU connect the NIC (HMP `info network`)? Only asked when connects() is true."""
        return True


def netdev_id(index: int) -> str:
    return "net%d" % (index - 1)


def needed(value: t.Any, fname: str, index: int, backend: str) -> t.Any:
    # Validation guarantees these fields; a spec built some other way gets an error, not a TypeError.
    if value is None:
        raise QemuInitError("NIC%d: backend %s needs %s" % (index, backend, fname))
    return value


def netdev_described(info_network: str, index: int) -> str | None:
    """From HMP `info network`: the description of netdev net<index>, or None when it is not listed."""
    match = re.search(r"^[ \t\\]*net%d: index=\d+,type=(\w+),(.*)$" % index, info_network, re.MULTILINE)
    return match.group(2).strip() if match else None
