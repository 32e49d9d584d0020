# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bridge module run through main(): real `ip -json` fixtures in, exact argv out (run_command is faked)."""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.modules import bridge
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, links, needs_ip, run_module

pytestmark = needs_ip


def run(capsys, args, *calls):
    return run_module(bridge.main, capsys, args, *calls)


def test_create_check_mode_predicts_and_runs_nothing_else(capsys):
    result = run(capsys, {"name": "br9", "netns": "lab", "_ansible_check_mode": True, "_ansible_diff": True},
                 links("lab", "empty.json"))
    assert result["changed"] is True
    after = {"name": "br9", "state": "present", "mtu": 1500, "stp": False, "up": True, "ports": []}
    assert result["bridge"] == after
    assert result["diff"] == {"before": {"name": "br9", "state": "absent"}, "after": after}


def test_create(capsys):
    result = run(capsys, {"name": "br9", "mtu": 9000, "stp": True, "netns": "lab"},
                 links("lab", "empty.json"),
                 ([IP, "-n", "lab", "-batch", "-"],
                  "link add name br9 up type bridge stp_state 1\nlink set dev br9 mtu 9000", (0, "", "")))
    assert result["changed"] is True
    assert result["bridge"] == {"name": "br9", "state": "present", "mtu": 9000, "stp": True, "up": True, "ports": []}
    assert "diff" not in result


def test_create_at_the_default_mtu_steps_away_from_it(capsys):
    # The kernel marks an MTU as set (and keeps it when ports join) only when `link set` changes it.
    result = run(capsys, {"name": "br9", "mtu": 1500},
                 links(None, "empty.json"),
                 ([IP, "-batch", "-"],
                  "link add name br9 mtu 1499 up type bridge stp_state 0\nlink set dev br9 mtu 1500", (0, "", "")))
    assert result["changed"] is True
    assert result["bridge"]["mtu"] == 1500


def test_create_without_mtu_leaves_it_to_the_kernel(capsys):
    result = run(capsys, {"name": "br9"}, links(None, "empty.json"),
                 ([IP, "link", "add", "name", "br9", "up", "type", "bridge", "stp_state", "0"], None, (0, "", "")))
    assert result["changed"] is True
    assert result["bridge"]["mtu"] == 1500


def test_unchanged(capsys):
    result = run(capsys, {"name": "br0", "mtu": 1400, "_ansible_diff": True}, links(None, "mixed.json"))
    assert result["changed"] is False
    assert result["bridge"] == {"name": "br0", "state": "present", "mtu": 1400, "stp": False, "up": True, "ports": ["tap0"]}
    assert result["diff"]["before"] == result["diff"]["after"]


def test_changes_in_one_command(capsys):
    result = run(capsys, {"name": "br1", "mtu": 1400, "_ansible_diff": True},
                 links(None, "mixed.json"),
                 ([IP, "link", "set", "dev", "br1", "mtu", "1400", "up", "type", "bridge", "stp_state", "0"], None, (0, "", "")))
    assert result["changed"] is True
    assert result["diff"]["before"] == {"name": "br1", "state": "present", "mtu": 1500, "stp": True, "up": False, "ports": []}
    assert result["diff"]["after"] == {"name": "br1", "state": "present", "mtu": 1400, "stp": False, "up": True, "ports": []}


def test_group_options_are_accepted(capsys):
    result = run(capsys, {"name": "br0", "mtu": 1400, "config_dir": "/tmp/qi/etc", "run_dir": "/tmp/qi/run"},
                 links(None, "mixed.json"))
    assert result["changed"] is False


def test_absent_refuses_a_bridge_with_ports(capsys):
    result = run(capsys, {"name": "br0", "state": "absent"}, links(None, "mixed.json"))
    assert result["failed"] is True
    assert result["msg"] == ("bridge br0 still has ports (tap0); set force: true to delete it anyway "
                             "(its ports are released, not deleted)")


def test_absent_with_force(capsys):
    result = run(capsys, {"name": "br0", "state": "absent", "force": True, "_ansible_diff": True},
                 links(None, "mixed.json"), ([IP, "link", "del", "dev", "br0"], None, (0, "", "")))
    assert result["changed"] is True
    assert result["bridge"] == {"name": "br0", "state": "absent"}
    assert result["diff"]["after"] == {"name": "br0", "state": "absent"}
    assert result["diff"]["before"]["ports"] == ["tap0"]


def test_absent_check_mode(capsys):
    result = run(capsys, {"name": "br1", "state": "absent", "_ansible_check_mode": True}, links(None, "mixed.json"))
    assert result["changed"] is True


def test_absent_twice(capsys):
    result = run(capsys, {"name": "br9", "state": "absent"}, links(None, "mixed.json"))
    assert result["changed"] is False
    assert result["bridge"] == {"name": "br9", "state": "absent"}


@pytest.mark.parametrize("state", ["present", "absent"])
def test_never_touches_a_link_that_is_not_a_bridge(capsys, state):
    result = run(capsys, {"name": "veth0", "state": state, "force": True}, links(None, "mixed.json"))
    assert result["failed"] is True
    assert result["msg"].startswith("a link named veth0 exists but it is a veth, not a bridge")


def test_missing_netns(capsys):
    err = 'Cannot open network namespace "nope": No such file or directory\n'
    result = run(capsys, {"name": "br0", "netns": "nope"},
                 ([IP, "-n", "nope", "-json", "-details", "link", "show"], None, (255, "", err)))
    assert result["failed"] is True
    assert result["msg"] == "network namespace nope does not exist (ip netns list)"


@pytest.mark.parametrize("args, msg", [
    ({"name": "br/0"}, "name: interface name 'br/0' contains a character the kernel rejects ('/')"),
    ({"name": "br 0"}, "name: interface name 'br 0' contains a character the kernel rejects (' ')"),
    ({"name": "br0:1"}, "name: interface name 'br0:1' contains a character the kernel rejects (':')"),
    ({"name": "br%d"}, "name: interface name 'br%d' contains a character the kernel rejects ('%')"),
    ({"name": ".."}, "name: '..' is not a valid interface name"),
    ({"name": "a-very-long-bridge"}, "name: interface name 'a-very-long-bridge' is 18 bytes long, the kernel allows 15"),
    ({"name": ""}, "name: must be a non-empty interface name"),
    ({"name": "br0", "netns": "../x"}, "netns: '../x' is not a valid network namespace name"),
    ({"name": "br0", "mtu": 67}, "mtu: must be an integer between 68 and 65535, got 67"),
])
def test_parameters_checked_before_anything_runs(capsys, args, msg):
    result = run(capsys, args)
    assert result["failed"] is True
    assert result["msg"].startswith(msg)
