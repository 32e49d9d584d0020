# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The product bugs the hostile-input suite (tests/hostile) found, each pinned by a plain unit test."""

from __future__ import annotations

import json

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand, parse_links
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_ifname
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, FakeRun
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import manager


def test_batch_line_ending_in_a_backslash_runs_on_its_own(module):
    # `ip -batch` joins a line ending in a backslash with the next one: deleting and recreating the tap
    # `a\` in one batch became "link del dev atuntap add dev a\ mode tap ..." and failed.
    fake = FakeRun(
        ([IP, "link", "del", "dev", "a\\"], None, (0, "", "")),
        ([IP, "tuntap", "add", "dev", "a\\", "mode", "tap", "user", "0"], None, (0, "", "")),
        ([IP, "link", "set", "dev", "a\\", "up"], None, (0, "", "")),
    )
    module.run_command = fake
    IpCommand(module).apply([["link", "del", "dev", "a\\"], ["tuntap", "add", "dev", "a\\", "mode", "tap", "user", 0],
                             ["link", "set", "dev", "a\\", "up"]])
    assert not fake.expected


def test_link_names_with_control_characters_parse():
    # ip -json prints them unescaped; a namespace holding one such link made every module fail there.
    text = json.dumps([{"ifname": "a\x1bb", "mtu": 1500, "flags": ["UP"], "linkinfo": {"info_kind": "bridge"}}])
    text = text.replace("\\u001b", "\x1b")
    assert parse_links(text)["a\x1bb"]["kind"] == "bridge"


@pytest.mark.parametrize("name", ["all", "default"])
def test_names_the_kernel_reserves_are_refused(name):
    with pytest.raises(ParameterError, match="reserved by the kernel"):
        check_ifname(name, "nics[0].tap")


@pytest.mark.parametrize("extra_args", [
    ["--qmp", "tcp:0.0.0.0:4444,server=on,wait=off"],
    ["--monitor", "stdio"],
    ["--daemonize"],
    ["-qmp-pretty", "unix:/tmp/q.sock,server=on"],
    ["-readconfig", "/tmp/q.conf"],
])
def test_extra_args_cannot_reach_managed_options_by_another_spelling(extra_args):
    with pytest.raises(ParameterError, match="^extra_args: .* is managed by this collection"):
        from_params(dict(name="vm1", extra_args=extra_args), check_files=False)


@pytest.mark.parametrize("extra_args", [
    ["-chardev", "socket,id=c0,host=0.0.0.0,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,host=10.0.0.1,,x,port=4444,server"],
    ["-chardev", "udp,id=c0,port=4444"],
    ["-gdb", "tcp::1234"],
    ["-gdb", "1234"],
    ["-s"],
    ["-incoming", "tcp:0:4444"],
    ["-incoming", "exec:cat /tmp/state"],
    ["-spice", "port=5930,disable-ticketing=on"],
    ["-display", "vnc=0.0.0.0:0"],
    ["-display", "vnc=:1"],
    ["-debugcon", "tcp::4445,server"],
    ["--parallel", "tcp:[::]:4446,server"],
])
def test_extra_args_refuse_listeners_on_other_than_loopback(extra_args):
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="vm1", extra_args=extra_args), check_files=False)
    assert exc.value.param == "extra_args"
    assert "loopback only" in exc.value.problem


@pytest.mark.parametrize("extra_args", [
    ["-chardev", "socket,id=c0,host=127.0.0.1,port=4444,server=on,wait=off", "-mon", "chardev=c0"],
    ["-chardev", "socket,id=obs,path=/run/x/obs.sock,server=on,wait=off", "-mon", "chardev=obs,mode=control"],
    ["-chardev", "socket,id=c0,host=192.0.2.1,port=4444"],  # a client: connects out, listens nowhere
    ["-gdb", "tcp:127.0.0.1:1234"],
    ["-gdb", "tcp:[::1]:1234"],
    ["-incoming", "defer"],
    ["-spice", "port=5930,addr=127.0.0.1"],
    ["-display", "vnc=localhost:1"],
    ["-display", "none"],
    ["-S", "-rtc", "base=utc"],
])
def test_extra_args_allow_loopback_and_unix_listeners(extra_args):
    assert from_params(dict(name="vm1", extra_args=extra_args), check_files=False).extra_args == extra_args


@pytest.mark.parametrize("nic, field", [
    (dict(backend="socket", listen="[::1]:1234"), "listen"),
    (dict(backend="socket", connect="[::1]:1234"), "connect"),
    (dict(backend="mcast", mcast="[ff02::1]:1234"), "mcast"),
    (dict(backend="mcast", mcast="230.0.0.1:1234", localaddr="::1"), "localaddr"),
])
def test_ipv4_only_backends_refuse_ipv6(nic, field):
    # QEMU 7.2: "can't resolve host address '['" at launch, after vm_config had accepted it.
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="vm1", nics=[nic]), check_files=False)
    assert exc.value.param == "nics[0].%s" % field
    assert "IPv4 only" in exc.value.problem


@pytest.mark.parametrize("index", [float("inf"), float("-inf"), float("nan")])
def test_mac_filter_refuses_non_finite_index(index):
    from ansible.errors import AnsibleFilterError

    from ansible_collections.qemu_init.qemu.plugins.filter.mac import mac

    with pytest.raises(AnsibleFilterError, match="^qemu_init.qemu.mac: "):
        mac("web1", "debian", index)


@pytest.mark.parametrize("nics", [True, 3, "e1000", {"mac": "02:00:00:00:00:01"}])
def test_duplicate_macs_filter_refuses_nics_that_are_not_a_list(nics):
    from ansible.errors import AnsibleFilterError

    from ansible_collections.qemu_init.qemu.plugins.filter.mac import duplicate_macs

    with pytest.raises(AnsibleFilterError, match="item 0: nics must be a list"):
        duplicate_macs([{"name": "web1", "nics": nics}])


def test_taps_the_vm_module_makes_belong_to_the_user_qemu_runs_as(tmp_path):
    # An ownerless persistent tap may be attached by any user who can open /dev/net/tun while the VM is
    # stopped (kernel: tun_not_capable); taps the vm module creates get QEMU's user as owner.
    import os

    from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
    from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Entry
    from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import VmRecord

    if IP is None:
        pytest.skip("iproute2's ip is not installed")
    calls = []

    def fake_run(argv, check_rc=False, data=None, **kwargs):
        calls.append((list(argv), data))
        return 0, "[]" if "-json" in argv else "", ""

    mgr = manager(tmp_path)
    mgr.module.run_command = fake_run
    spec = from_params(dict(name="web1", nics=[dict(model="e1000")]), check_files=False)
    record = VmRecord("web1", Entry("web1", "web1", 0), spec, "", RunPaths(mgr.run_dir, "web1"))
    mgr._make_links([record])
    applied = "\n".join(data or " ".join(argv) for argv, data in calls)
    assert "tuntap add dev web1-n1 mode tap user %d" % os.geteuid() in applied, calls


@pytest.mark.parametrize("field", ["memory", "cpus"])
def test_a_boolean_is_not_a_number_of_cpus_or_mib(field):
    # `cpus: true` passed Ansible's int check (True is an int) and was written as CPUS="True",
    # a cfg file that no module could read back.
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="vm1", **{field: True}), check_files=False)
    assert exc.value.param == field


@pytest.mark.parametrize("params, param", [
    (dict(extra_args=["-S", "\r"]), "extra_args"),
    (dict(kernel="/boot/vmlinuz", append="console=ttyS0\rquiet"), "append"),
    (dict(serial_log="/var/log/a\rb.log"), "serial_log"),
    (dict(disks=[dict(file="/srv/a\r.img")]), "disks[0].file"),
])
def test_a_carriage_return_is_refused_naming_the_parameter(params, param):
    # cfg values are single lines: a CR reached the cfg writer and failed there, naming no parameter.
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="vm1", **params), check_files=False)
    assert exc.value.param == param
