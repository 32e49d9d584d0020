# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The NIC kind and its backends (plugins/module_utils/_devices/nic*.py)."""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic import BACKENDS, backend_of, build
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import NicSpec
from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, FakeRun


@pytest.mark.parametrize("nic, expected", [
    (dict(backend="socket", listen=":10001"), "socket,id=net2,listen=127.0.0.1:10001"),
    (dict(backend="socket", listen="0.0.0.0:10001"), "socket,id=net2,listen=0.0.0.0:10001"),
    (dict(backend="socket", connect="127.0.0.1:10001"), "socket,id=net2,connect=127.0.0.1:10001"),
    (dict(backend="mcast", mcast="230.0.0.1:1234"), "socket,id=net2,mcast=230.0.0.1:1234"),
    (dict(backend="mcast", mcast="230.0.0.1:1234", localaddr="127.0.0.1"), "socket,id=net2,mcast=230.0.0.1:1234,localaddr=127.0.0.1"),
    (dict(backend="hubport", hub=0), "hubport,id=net2,hubid=0"),
    (dict(backend="user", hostfwd=["tcp::2222-:22", "udp:127.0.0.2:53-:53"]),
     "user,id=net2,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.2:53-:53"),
    (dict(backend="user", restrict=True), "user,id=net2,restrict=on"),
    (dict(backend="user", restrict=False), "user,id=net2"),
    (dict(backend="user", restrict=True, hostfwd=["tcp::2222-:22"]), "user,id=net2,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"),
    (dict(backend="stream", listen=":7000"), "stream,id=net2,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=7000"),
    (dict(backend="stream", connect="unix:/run/s,1.sock"), "stream,id=net2,server=off,addr.type=unix,addr.path=/run/s,,1.sock"),
    (dict(backend="dgram", listen="127.0.0.1:9000", connect="127.0.0.1:9001"),
     "dgram,id=net2,local.type=inet,local.host=127.0.0.1,local.port=9000,remote.type=inet,remote.host=127.0.0.1,remote.port=9001"),
])
def test_netdev_for_every_backend(nic, expected):
    spec = from_params(dict(name="web1", nics=[{}, {}, nic]), check_files=False)
    nic = spec.nics[2]
    assert backend_of(nic).netdev(nic, 3, spec.nic_tap(3, "web1")) == expected


def test_unknown_backend_is_an_error_naming_the_field():
    with pytest.raises(ParameterError, match=r"nics\[0\]\.backend.*'wire' is not one of tap, socket, mcast, hubport, user, stream, dgram"):
        build(dict(backend="wire"), 1, lambda fname: "nics[0].%s" % fname)


@pytest.mark.parametrize("nic, missing", [
    (NicSpec(backend="hubport"), "hub"),
    (NicSpec(backend="stream"), "listen or connect"),
    (NicSpec(backend="dgram", connect="127.0.0.1:1"), "listen"),
    (NicSpec(backend="dgram", listen="127.0.0.1:1"), "connect"),
])
def test_a_nic_without_its_address_is_an_error_not_a_type_error(nic, missing):
    with pytest.raises(QemuInitError, match="^NIC2: backend %s needs %s$" % (nic.backend, missing)):
        backend_of(nic).netdev(nic, 2, None)


# `info network` texts captured from QEMU 7.2 (a NIC device in front, as the vm module launches it).
CONNECTED_SOCKET = "e1000.0: index=0,type=nic,model=e1000,macaddr=de:ad:be:ef:00:01\r\n \\ net0: index=0,type=socket,socket: connect to 127.0.0.1:10997\r\n"
DEAD_SOCKET = "e1000.0: index=0,type=nic,model=e1000,macaddr=de:ad:be:ef:00:01\r\n \\ net0: index=0,type=socket,\r\n"
CONNECTED_STREAM = "net1: index=0,type=stream,tcp:127.0.0.1:10996\r\n"
DEAD_STREAM = "net1: index=0,type=stream,connection error\r\n"
UNIX_STREAM = "net1: index=0,type=stream,unix:/run/x.sock\r\n"


@pytest.mark.parametrize("text, index, backend, connected", [
    (CONNECTED_SOCKET, 0, "socket", True),
    (DEAD_SOCKET, 0, "socket", False),
    (CONNECTED_SOCKET, 1, "socket", False),  # no such netdev
    (CONNECTED_STREAM, 1, "stream", True),
    (UNIX_STREAM, 1, "stream", True),
    (DEAD_STREAM, 1, "stream", False),
])
def test_connected(text, index, backend, connected):
    assert BACKENDS[backend].connected(NicSpec(backend=backend), text, index + 1) is connected


def mcast_nic(**fields):
    spec = from_params(dict(name="web1", nics=[dict(backend="mcast", mcast="230.0.0.1:1234", **fields)]), check_files=False)
    return spec.nics[0]


def where(fname):
    return "nics[0].%s" % fname


def test_mcast_without_a_route_to_its_group_is_a_host_problem_naming_localaddr(module):
    # What `ip route get` prints in a fresh namespace with only lo: the kernel has no route to the group.
    module.run_command = FakeRun(([IP, "-n", "lab", "route", "get", "230.0.0.1"], None, (2, "", "RTNETLINK answers: Network is unreachable\n")))
    problem = backend_of(mcast_nic()).host_problem(mcast_nic(), IpCommand(module, "lab"), where)
    assert not module.run_command.expected
    assert problem.startswith("network namespace lab has no route to the multicast group 230.0.0.1")
    assert "set nics[0].localaddr (127.0.0.1 for a bus between VMs on this host)" in problem


def test_mcast_with_a_route_or_a_localaddr_has_no_host_problem(module):
    module.run_command = FakeRun(([IP, "route", "get", "230.0.0.1"], None, (0, "multicast 230.0.0.1 dev eth0 src 10.0.0.2\n", "")))
    assert backend_of(mcast_nic()).host_problem(mcast_nic(), IpCommand(module), where) is None
    assert not module.run_command.expected
    module.run_command = FakeRun()  # localaddr: QEMU joins on that address, no route is asked for
    nic = mcast_nic(localaddr="127.0.0.1")
    assert backend_of(nic).host_problem(nic, IpCommand(module, "lab"), where) is None
