# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The MAC rule: one function for the modules and the filter plugins.

NIC x (1-based) of VM NAME with OS gets DE:AD:BE:EF:hh:ll, where hhll are the first two bytes of
sha256("NAME:OS:x"). DE has the locally-administered bit set and the multicast bit clear, so
every derived address is a valid unicast MAC.
"""

from __future__ import annotations

import hashlib
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError

MAC_PREFIX = "DE:AD:BE:EF"
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")


def derive_mac(name: str, os_name: str, index: int) -> str:
    """Return the MAC of NIC `index` (1-based) of the VM `name` running `os_name`."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        raise ParameterError("index", "NIC number must be an integer >= 1, got %r" % (index,))
    digest = hashlib.sha256(("%s:%s:%d" % (name, os_name, index)).encode("utf-8")).digest()
    return "%s:%02X:%02X" % (MAC_PREFIX, digest[0], digest[1])


def normalize_mac(value: t.Any, param: str = "mac") -> str:
    """Validate a user-given MAC (6 octets, ':' or '-' separated, unicast, not all-zero) and upper-case it."""
    if not isinstance(value, str) or not _MAC_RE.match(value.strip()):
        raise ParameterError(param, "%r is not a MAC address of 6 hex octets like DE:AD:BE:EF:00:01" % (value,))
    octets = [int(part, 16) for part in re.split(r"[:-]", value.strip())]
    if not any(octets):
        raise ParameterError(param, "%s is the all-zero address, which no NIC may use" % (value,))
    if octets[0] & 0x01:
        raise ParameterError(param, "%s is a multicast address (lowest bit of the first octet set); a NIC needs a unicast one" % (value,))
    return ":".join("%02X" % o for o in octets)


def find_duplicate_macs(vm_macs: t.Iterable[tuple[str, t.Iterable[str]]]) -> list[tuple[str, list[str]]]:
    """Find MACs used more than once.

    `vm_macs` is an iterable of (vm_name, [mac, ...]). Returns a sorted list of
    (mac, [owner, ...]) where each owner is "vm" or "vm NIC<n>"; empty when all are distinct.
    """
    owners: dict[str, list[str]] = {}
    for vm_name, macs in vm_macs:
        for index, mac in enumerate(macs, start=1):
            key = normalize_mac(mac, param="%s NIC%d mac" % (vm_name, index))
            owners.setdefault(key, []).append("%s NIC%d" % (vm_name, index))
    return sorted((mac, who) for mac, who in owners.items() if len(who) > 1)
