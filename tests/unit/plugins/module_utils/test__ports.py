# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of _ports: /proc/net/tcp parsing, and reading a network namespace's listeners through
`ip netns exec NS cat` once per namespace (run_command is the only fake; tables are real text)."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import ListeningPorts, listening_tcp_ports, parse_tcp_tables
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import FakeRun

# As the kernel prints them (trailing columns shortened): 127.0.0.1:30321 and 0.0.0.0:5900 listen,
# one connection to 30321 does not; then tcp6 with [::1]:30421 listening.
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7671 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1081 1 0 100 0 0 10 0
   1: 00000000:170C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1082 1 0 100 0 0 10 0
   2: 0100007F:9C40 0100007F:7671 01 00000000:00000000 00:00000000 00000000     0        0 1083 1 0 20 4 30 10 -1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:76D5 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0
"""


class Module:
    """What ListeningPorts uses of AnsibleModule; run_command is a FakeRun checking the exact argv."""

    def __init__(self, *calls):
        self.run_command = FakeRun(*calls)

    @staticmethod
    def get_bin_path(name, required=False):
        return "/usr/bin/" + name


@pytest.fixture
def proc_net(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    (tmp_path / "net" / "tcp6").write_text(TCP6)
    (tmp_path / "netns").mkdir()
    (tmp_path / "netns" / "lab").write_text("")
    return tmp_path


def test_parse_listening_only_across_tables():
    assert parse_tcp_tables(TCP) == {30321, 5900}
    assert parse_tcp_tables(TCP + TCP6) == {30321, 5900, 30421}
    assert parse_tcp_tables("") == set()
    assert parse_tcp_tables("   0: garbage here 0A\n") == set()


def test_own_namespace_reads_proc_and_runs_nothing(proc_net):
    ports = ListeningPorts(Module(), proc_net=str(proc_net / "net"), netns_dir=str(proc_net / "netns"))
    assert ports.get(None) == ports.get("") == frozenset([30321, 5900, 30421])


def test_own_namespace_without_ipv6(proc_net):
    (proc_net / "net" / "tcp6").unlink()
    assert listening_tcp_ports(str(proc_net / "net")) == {30321, 5900}


def test_a_namespace_is_read_inside_it_once(proc_net):
    net = str(proc_net / "net")
    module = Module((["/usr/bin/ip", "netns", "exec", "lab", "/usr/bin/cat", net + "/tcp", net + "/tcp6"], None,
                     (0, TCP6, "")))
    ports = ListeningPorts(module, proc_net=net, netns_dir=str(proc_net / "netns"))
    assert ports.get("lab") == frozenset([30421])
    assert ports.get("lab") == frozenset([30421])  # no second command (FakeRun would refuse it)
    assert not module.run_command.expected


def test_a_namespace_without_ipv6_names_one_table(proc_net):
    (proc_net / "net" / "tcp6").unlink()
    net = str(proc_net / "net")
    module = Module((["/usr/bin/ip", "netns", "exec", "lab", "/usr/bin/cat", net + "/tcp"], None, (0, TCP, "")))
    assert ListeningPorts(module, proc_net=net, netns_dir=str(proc_net / "netns")).get("lab") == frozenset([30321, 5900])


def test_a_namespace_not_made_yet_has_no_listeners(proc_net):
    ports = ListeningPorts(Module(), proc_net=str(proc_net / "net"), netns_dir=str(proc_net / "netns"))
    assert ports.get("later") == frozenset()


def test_a_namespace_that_cannot_be_read_is_an_error(proc_net):
    net = str(proc_net / "net")
    err = "setting the network namespace \"lab\" failed: Operation not permitted\n"
    module = Module((["/usr/bin/ip", "netns", "exec", "lab", "/usr/bin/cat", net + "/tcp", net + "/tcp6"], None, (1, "", err)))
    with pytest.raises(QemuInitError, match=r"^reading the TCP ports listened on in network namespace lab \(.*\) failed: "
                                            r"setting the network namespace \"lab\" failed: Operation not permitted$"):
        ListeningPorts(module, proc_net=net, netns_dir=str(proc_net / "netns")).get("lab")


def test_the_real_proc_sees_a_real_listener():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert sock.getsockname()[1] in ListeningPorts(Module()).get(None)
