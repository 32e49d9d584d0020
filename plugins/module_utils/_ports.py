# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which TCP ports are already listened on, read from /proc (no ss/netstat needed).

/proc/net is the network namespace of the process reading it: the module's own for the host's ports, a
`cat` run by ``ip netns exec NS`` for a namespace's (a VM with ``netns`` listens there, not on the host).
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

_TCP_LISTEN = "0A"
_TABLES = ("tcp", "tcp6")
# Where `ip netns add` puts a namespace's handle (iproute2's NETNS_RUN_DIR).
NETNS_RUN_DIR = "/var/run/netns"


def netns_exists(netns: str, netns_dir: str = NETNS_RUN_DIR) -> bool:
    """Is there a network namespace netns (the handle `ip netns add` made)?"""
    return os.path.exists(os.path.join(netns_dir, netns))


def parse_tcp_tables(text: str | None) -> set[int]:
    """Local ports in LISTEN state in /proc/net/tcp or tcp6 text (several tables one after the other too)."""
    ports: set[int] = set()
    for line in (text or "").splitlines():
        fields = line.split()
        # fields: sl local_address rem_address st ...; a header line has "st" where the state goes.
        if len(fields) > 3 and fields[3] == _TCP_LISTEN:
            try:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
            except (IndexError, ValueError):
                continue
    return ports


def listening_tcp_ports(proc_net: str = "/proc/net") -> set[int]:
    """Set of local TCP ports in LISTEN state, IPv4 and IPv6, in this process's network namespace."""
    ports: set[int] = set()
    for table in _TABLES:
        try:
            with open("%s/%s" % (proc_net, table), "r") as handle:
                ports |= parse_tcp_tables(handle.read())
        except FileNotFoundError:
            continue  # no IPv6 in this kernel/namespace
    return ports


class ListeningPorts:
    """The TCP ports listened on per network namespace (None: the module's own), each read once.

    One instance per module call: a batch of new VMs in one namespace costs one read.
    """

    def __init__(self, module: t.Any, proc_net: str = "/proc/net", netns_dir: str = NETNS_RUN_DIR) -> None:
        self.module = module
        self.proc_net = proc_net
        self.netns_dir = netns_dir
        self._seen: dict[str | None, frozenset[int]] = {}

    def get(self, netns: str | None = None) -> frozenset[int]:
        """frozenset of the ports listened on in netns (None or '': the module's own namespace)."""
        netns = netns or None
        if netns not in self._seen:
            self._seen[netns] = frozenset(self._read(netns))
        return self._seen[netns]

    def _read(self, netns: str | None) -> set[int]:
        if netns is None:
            return listening_tcp_ports(self.proc_net)
        if not netns_exists(netns, self.netns_dir):
            # Nothing listens in a namespace not made yet (vm_config may run before it is); the VM's
            # launch needs it and fails naming it.
            return set()
        # IPv6 is in the kernel or not: a table missing here is missing in every namespace.
        tables = ["%s/%s" % (self.proc_net, t) for t in _TABLES if os.path.exists("%s/%s" % (self.proc_net, t))]
        cmd = [self.module.get_bin_path("ip", required=True), "netns", "exec", netns,
               self.module.get_bin_path("cat", required=True)] + tables
        rc, out, err = self.module.run_command(cmd, check_rc=False)
        if rc != 0:
            why = next((line.strip() for line in (err or "").splitlines() if line.strip()), "exit status %d" % rc)
            raise QemuInitError("reading the TCP ports listened on in network namespace %s (%s) failed: %s"
                                % (netns, " ".join(cmd), why), rc=rc, stderr=err, cmd=cmd)
        return parse_tcp_tables(out)
