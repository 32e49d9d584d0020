# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tap module run through main(): real `ip -json` fixtures in, exact argv out (run_command is faked)."""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.modules import tap
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, links, needs_ip, run_module

pytestmark = needs_ip

OK = (0, "", "")


def run(capsys, args, *calls):
    return run_module(tap.main, capsys, args, *calls)


def tap_settings(**kwargs):
    settings = {"name": "t9", "state": "present", "mode": "tap", "bridge": None, "owner": None, "group": None,
                "multi_queue": False, "mtu": 1500, "up": True, "persistent": True}
    settings.update(kwargs)
    return settings


def test_create_check_mode(capsys):
    result = run(capsys, {"name": "t9", "bridge": "br0", "netns": "lab", "_ansible_check_mode": True, "_ansible_diff": True},
                 links("lab"))
    assert result["changed"] is True
    # Without an mtu the tap takes its bridge's (br0: 1400).
    assert result["tap"] == tap_settings(bridge="br0", mtu=1400)
    assert result["diff"] == {"before": {"name": "t9", "state": "absent"}, "after": tap_settings(bridge="br0", mtu=1400)}


def test_create_on_a_bridge_takes_its_mtu(capsys):
    result = run(capsys, {"name": "t9", "bridge": "br0", "netns": "lab"},
                 links("lab"),
                 ([IP, "-n", "lab", "-batch", "-"], "tuntap add dev t9 mode tap\nlink set dev t9 master br0 mtu 1400 up", OK))
    assert result["changed"] is True
    assert result["tap"]["mtu"] == 1400


def test_create_in_one_batch(capsys):
    result = run(capsys, {"name": "t9", "bridge": "br0", "owner": "root", "group": "100", "multi_queue": True,
                          "mtu": 1400, "netns": "lab"},
                 links("lab"),
                 ([IP, "-n", "lab", "-batch", "-"],
                  "tuntap add dev t9 mode tap user 0 group 100 multi_queue\nlink set dev t9 master br0 mtu 1400 up", OK))
    assert result["changed"] is True
    assert result["tap"] == tap_settings(bridge="br0", owner=0, group=100, multi_queue=True, mtu=1400)


def test_unchanged_when_owner_given_by_name(capsys):
    result = run(capsys, {"name": "tap0", "bridge": "br0", "owner": "root", "group": "100", "multi_queue": True,
                          "mtu": 1400, "_ansible_diff": True}, links(None))
    assert result["changed"] is False
    assert result["tap"] == tap_settings(name="tap0", bridge="br0", owner=0, group=100, multi_queue=True, mtu=1400)
    assert result["diff"]["before"] == result["diff"]["after"]


def test_moves_to_another_bridge(capsys):
    result = run(capsys, {"name": "tap0", "bridge": "br1", "_ansible_diff": True},
                 links(None), ([IP, "link", "set", "dev", "tap0", "master", "br1", "mtu", "1500"], None, OK))
    assert result["changed"] is True
    assert (result["diff"]["before"]["bridge"], result["diff"]["after"]["bridge"]) == ("br0", "br1")
    assert (result["diff"]["before"]["mtu"], result["diff"]["after"]["mtu"]) == (1400, 1500)


def test_moves_to_another_bridge_keeping_the_mtu_it_is_given(capsys):
    result = run(capsys, {"name": "tap0", "bridge": "br1", "mtu": 1400},
                 links(None), ([IP, "link", "set", "dev", "tap0", "master", "br1"], None, OK))
    assert result["changed"] is True
    assert result["tap"]["mtu"] == 1400


def test_recreate_needs_force(capsys):
    result = run(capsys, {"name": "tap0", "owner": "12345"}, links(None))
    assert result["failed"] is True
    assert result["msg"] == ("tap tap0 exists with settings the kernel cannot change in place "
                             "(owner is 0, wanted 12345); set force: true to delete and recreate it")


def test_recreate_with_force_check_mode(capsys):
    result = run(capsys, {"name": "tap0", "owner": "12345", "force": True, "_ansible_check_mode": True, "_ansible_diff": True},
                 links(None))
    assert result["changed"] is True
    assert result["diff"]["before"]["owner"] == 0
    assert result["tap"] == tap_settings(name="tap0", bridge="br0", owner=12345, group=100, multi_queue=True, mtu=1400)


def test_recreate_with_force(capsys):
    result = run(capsys, {"name": "tap0", "owner": "12345", "force": True},
                 links(None),
                 ([IP, "-batch", "-"],
                  "link del dev tap0\ntuntap add dev tap0 mode tap user 12345 group 100 multi_queue\n"
                  "link set dev tap0 master br0 mtu 1400 up", OK))
    assert result["changed"] is True


def test_non_persistent_tap_is_left_alone(capsys):
    result = run(capsys, {"name": "qtap0", "state": "absent"}, links(None))
    assert result["failed"] is True
    assert result["msg"].startswith("tap qtap0 is not persistent: a running process (such as QEMU) created it")


def test_non_persistent_tap_deleted_with_force(capsys):
    result = run(capsys, {"name": "qtap0", "state": "absent", "force": True},
                 links(None), ([IP, "link", "del", "dev", "qtap0"], None, OK))
    assert result["changed"] is True
    assert result["tap"] == {"name": "qtap0", "state": "absent"}


def test_absent_twice(capsys):
    result = run(capsys, {"name": "t9", "state": "absent"}, links(None))
    assert result["changed"] is False


def test_missing_bridge(capsys):
    result = run(capsys, {"name": "t9", "bridge": "br9"}, links(None))
    assert result["failed"] is True
    assert result["msg"] == "cannot put tap t9 on bridge br9: there is no link named br9"


def test_kernel_error_is_reported(capsys):
    err = "ioctl(TUNSETIFF): Device or resource busy\n"
    result = run(capsys, {"name": "t9", "up": False}, links(None),
                 ([IP, "tuntap", "add", "dev", "t9", "mode", "tap"], None, (1, "", err)))
    assert result["failed"] is True
    assert result["msg"] == "%s tuntap add dev t9 mode tap failed: ioctl(TUNSETIFF): Device or resource busy" % IP
    assert result["stderr"] == err


@pytest.mark.parametrize("args, msg", [
    ({"name": "t/9"}, "name: interface name 't/9' contains a character the kernel rejects ('/')"),
    ({"name": "."}, "name: '.' is not a valid interface name"),
    ({"name": "t9", "bridge": "br 0"}, "bridge: interface name 'br 0' contains a character the kernel rejects (' ')"),
    ({"name": "t9", "owner": "no-such-user-qi"}, "owner: no such user 'no-such-user-qi' on this host"),
    ({"name": "t9", "group": "no-such-group-qi"}, "group: no such group 'no-such-group-qi' on this host"),
    ({"name": "t9", "mtu": 65536}, "mtu: must be an integer between 68 and 65535, got 65536"),
    ({"name": "t9", "netns": "a b"}, "netns: 'a b' is not a valid network namespace name"),
])
def test_parameters_checked_before_anything_runs(capsys, args, msg):
    result = run(capsys, args)
    assert result["failed"] is True
    assert result["msg"].startswith(msg)
