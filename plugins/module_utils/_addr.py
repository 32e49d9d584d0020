# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one parser of the network addresses users write: HOST:PORT, [V6]:PORT, unix:PATH and host forwards.

Validation (with the parameter's name in the error), QEMU argv and the port registry all read an address
through here, so they cannot disagree on where the host ends and the port begins.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_absolute_path

_HOSTPORT_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})$")
_HOSTFWD_RE = re.compile(r"^(?P<proto>tcp|udp):(?P<haddr>[0-9.]*):(?P<hport>\d{1,5})-(?P<gaddr>[0-9.]*):(?P<gport>\d{1,5})$")


class HostPort(t.NamedTuple):
    host: str  # without brackets; '' when the user left it out
    port: int
    bracketed: bool  # written as [V6]:PORT

    def host_or(self, default: str) -> str:
        return self.host or default


class Forward(t.NamedTuple):
    """A user NIC's host forward, PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT."""
    proto: str
    host_addr: str
    host_port: int
    guest_addr: str
    guest_port: int

    def render(self) -> str:
        return "%s:%s:%d-%s:%d" % (self.proto, self.host_addr, self.host_port, self.guest_addr, self.guest_port)


def hostport(value: t.Any, where: str, allow_empty_host: bool = True) -> HostPort:
    """HOST:PORT or [V6]:PORT, port 1..65535; an empty host only where listening on it means 'the default'."""
    match = _HOSTPORT_RE.match(value if isinstance(value, str) else "")
    if not match:
        raise ParameterError(where, "%r is not HOST:PORT" % (value,))
    port = int(match.group("port"))
    if not 1 <= port <= 65535:
        raise ParameterError(where, "port %d is not between 1 and 65535" % port)
    host = match.group("host")
    if not host and not allow_empty_host:
        raise ParameterError(where, "%r needs a host to connect to, e.g. 127.0.0.1:%d" % (value, port))
    return HostPort(host.strip("[]"), port, host.startswith("["))


def is_unix(value: str) -> bool:
    return value.startswith("unix:")


def stream_address(value: t.Any, where: str, allow_empty_host: bool = True) -> HostPort | str:
    """unix:/ABS/PATH (returned as the path) or HOST:PORT (a HostPort)."""
    if isinstance(value, str) and is_unix(value):
        return check_absolute_path(value[5:], where)
    return hostport(value, where, allow_empty_host)


def forward(value: t.Any, where: str) -> Forward:
    match = _HOSTFWD_RE.match(value if isinstance(value, str) else "")
    if not match:
        raise ParameterError(where, "%r is not PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" % (value,))
    return Forward(match.group("proto"), match.group("haddr"), int(match.group("hport")),
                   match.group("gaddr"), int(match.group("gport")))


def ip(value: t.Any, where: str, version: int | None = None, what: str = "") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address; `version` 4 refuses IPv6 with `what` saying whose limit it is."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ParameterError(where, "%r is not an IP address" % (value,)) from None
    if version is not None and address.version != version:
        raise ParameterError(where, "%r: %s is IPv%d only" % (value, what or "this", version))
    return address


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets and a %zone allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
