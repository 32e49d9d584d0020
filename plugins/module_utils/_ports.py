# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which TCP ports are already listened on, read from /proc (no ss/netstat needed)."""

from __future__ import annotations

_TCP_LISTEN = "0A"


def listening_tcp_ports(proc_net: str = "/proc/net") -> set[int]:
    """Set of local TCP ports in LISTEN state, IPv4 and IPv6, in this process's network namespace."""
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("%s/%s" % (proc_net, table), "r") as handle:
                next(handle, None)  # header
                for line in handle:
                    fields = line.split()
                    # fields: sl local_address rem_address st ...
                    if len(fields) > 3 and fields[3] == _TCP_LISTEN:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue  # no IPv6 in this kernel/namespace
    return ports
