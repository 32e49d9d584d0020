# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of _iproute: parsing real `ip -json` output, the pure planners, and the argv `ip` gets.

The JSON fixtures are real output of iproute2 6.1 (fixtures/iproute/capture.sh re-creates them in a
scratch network namespace). The only fake is run_command.
"""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import (
    IpCommand,
    check_mtu,
    parse_links,
    plan_bridge,
    plan_tap,
    resolve_group,
    resolve_user,
)
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, FakeRun, fixture


@pytest.fixture
def mixed():
    return parse_links(fixture("mixed.json"))


# ---------------------------------------------------------------------------------------------
# parse_links


def test_parse_empty_namespace():
    assert parse_links(fixture("empty.json")) == {
        "lo": {"name": "lo", "kind": "loopback", "mtu": 65536, "up": False, "master": None},
    }


def test_parse_mixed(mixed):
    assert sorted(mixed) == ["br0", "br1", "lo", "qtap0", "tap0", "tap1", "tap2", "tun0", "veth0", "veth1"]
    assert mixed["br0"] == {
        "name": "br0", "kind": "bridge", "mtu": 1400, "up": True, "master": None, "stp": False, "ports": ["tap0"],
    }
    assert mixed["br1"] == {
        "name": "br1", "kind": "bridge", "mtu": 1500, "up": False, "master": None, "stp": True, "ports": [],
    }
    # iproute2 printed user "root" and group "users"; the record holds ids.
    assert mixed["tap0"] == {
        "name": "tap0", "kind": "tap", "mtu": 1400, "up": True, "master": "br0",
        "multi_queue": True, "persistent": True, "owner": 0, "group": 100,
    }
    # Ids without a name are printed as numbers.
    assert (mixed["tap2"]["owner"], mixed["tap2"]["group"]) == (12345, 23456)
    assert (mixed["tap1"]["owner"], mixed["tap1"]["group"]) == (None, None)
    assert mixed["tun0"]["kind"] == "tun"
    assert mixed["qtap0"]["persistent"] is False
    assert mixed["veth0"]["kind"] == "veth"


def test_parse_keeps_an_owner_name_it_cannot_resolve():
    raw = json.loads(fixture("mixed.json"))
    tap0 = [item for item in raw if item["ifname"] == "tap0"][0]
    tap0["linkinfo"]["info_data"]["user"] = "no-such-user-qi"
    assert parse_links(json.dumps(raw))["tap0"]["owner"] == "no-such-user-qi"


def test_parse_rejects_garbage():
    with pytest.raises(QemuInitError, match="cannot parse"):
        parse_links("Device not found\n")


# ---------------------------------------------------------------------------------------------
# plan_bridge


@pytest.mark.parametrize("kwargs, lines, after", [
    (dict(name="br0"), [], {"mtu": 1400, "stp": False, "up": True, "ports": ["tap0"]}),
    (dict(name="br0", mtu=1400), [], {"mtu": 1400}),
    (dict(name="br0", mtu=9000), [["link", "set", "dev", "br0", "mtu", "9000"]], {"mtu": 9000}),
    (dict(name="br0", stp=True), [["link", "set", "dev", "br0", "type", "bridge", "stp_state", "1"]], {"stp": True}),
    (dict(name="br1"), [["link", "set", "dev", "br1", "up", "type", "bridge", "stp_state", "0"]],
     {"stp": False, "up": True}),
    (dict(name="br1", stp=True, up=False), [], {"stp": True, "up": False}),
    (dict(name="br1", stp=None, up=None), [], {"stp": True, "up": False}),
    (dict(name="br1", stp=True, mtu=9000, up=True), [["link", "set", "dev", "br1", "mtu", "9000", "up"]],
     {"mtu": 9000, "up": True}),
    (dict(name="brn"), [["link", "add", "name", "brn", "up", "type", "bridge", "stp_state", "0"]],
     {"mtu": 1500, "stp": False, "up": True, "ports": []}),
    # A new bridge's MTU is set after `link add`, so that the kernel keeps it when ports join and leave;
    # the kernel's own 1500 needs a step away first (setting the MTU a link has marks nothing).
    (dict(name="brn", mtu=9000, stp=True, up=False),
     [["link", "add", "name", "brn", "type", "bridge", "stp_state", "1"],
      ["link", "set", "dev", "brn", "mtu", "9000"]],
     {"mtu": 9000, "stp": True, "up": False}),
    (dict(name="brn", mtu=1400),
     [["link", "add", "name", "brn", "up", "type", "bridge", "stp_state", "0"],
      ["link", "set", "dev", "brn", "mtu", "1400"]],
     {"mtu": 1400, "up": True}),
    (dict(name="brn", mtu=1500),
     [["link", "add", "name", "brn", "mtu", "1499", "up", "type", "bridge", "stp_state", "0"],
      ["link", "set", "dev", "brn", "mtu", "1500"]],
     {"mtu": 1500}),
    (dict(name="brn", mtu=68),
     [["link", "add", "name", "brn", "up", "type", "bridge", "stp_state", "0"],
      ["link", "set", "dev", "brn", "mtu", "68"]],
     {"mtu": 68}),
    # An existing bridge at the wanted MTU: nothing to do (the kernel does not say whether it keeps it).
    (dict(name="br1", mtu=1500, stp=True, up=False), [], {"mtu": 1500}),
    (dict(name="br1", state="absent"), [["link", "del", "dev", "br1"]], None),
    (dict(name="br0", state="absent", force=True), [["link", "del", "dev", "br0"]], None),
    (dict(name="brn", state="absent"), [], None),
    (dict(name="brn", state="absent", force=True), [], None),
])
def test_plan_bridge(mixed, kwargs, lines, after):
    plan = plan_bridge(mixed, **kwargs)
    assert plan.lines == lines
    assert plan.changed is bool(lines)
    if after is None:
        assert plan.after == {"name": kwargs["name"], "state": "absent"}
    else:
        assert plan.after["state"] == "present"
        assert dict((k, plan.after[k]) for k in after) == after
    current = mixed.get(kwargs["name"])
    if current is None:
        assert plan.before == {"name": kwargs["name"], "state": "absent"}
    else:
        assert plan.before == {
            "name": kwargs["name"], "state": "present", "mtu": current["mtu"], "stp": current["stp"],
            "up": current["up"], "ports": current["ports"],
        }
    assert plan.diff == {"before": plan.before, "after": plan.after}


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="br0", state="absent"), r"^bridge br0 still has ports \(tap0\); set force: true"),
    (dict(name="veth0"), r"^a link named veth0 exists but it is a veth, not a bridge; it is never changed"),
    (dict(name="veth0", state="absent", force=True), r"veth0 exists but it is a veth, not a bridge"),
    (dict(name="tap1", state="absent"), r"tap1 exists but it is a tap, not a bridge"),
    (dict(name="lo"), r"lo exists but it is a loopback, not a bridge"),
])
def test_plan_bridge_refuses(mixed, kwargs, message):
    snapshot = copy.deepcopy(mixed)
    with pytest.raises(QemuInitError, match=message):
        plan_bridge(mixed, **kwargs)
    assert mixed == snapshot


# ---------------------------------------------------------------------------------------------
# plan_tap

SET_TAP0 = ["link", "set", "dev", "tap0"]


@pytest.mark.parametrize("kwargs, lines, after", [
    (dict(name="tap0"), [], {"bridge": "br0", "owner": 0, "group": 100, "multi_queue": True, "mtu": 1400, "up": True}),
    (dict(name="tap0", owner=0, group=100, multi_queue=True, bridge="br0", mtu=1400), [], {"bridge": "br0"}),
    # A tap that joins a bridge without an mtu takes the bridge's (br1: 1500, br0: 1400).
    (dict(name="tap0", bridge="br1"), [SET_TAP0 + ["master", "br1", "mtu", "1500"]], {"bridge": "br1", "mtu": 1500}),
    (dict(name="tap0", bridge="br1", mtu=1400), [SET_TAP0 + ["master", "br1"]], {"bridge": "br1", "mtu": 1400}),
    (dict(name="tap0", bridge="br1", mtu=9000), [SET_TAP0 + ["master", "br1", "mtu", "9000"]], {"mtu": 9000}),
    (dict(name="tap0", bridge=""), [SET_TAP0 + ["nomaster"]], {"bridge": None}),
    (dict(name="tap0", mtu=9000, up=False), [SET_TAP0 + ["mtu", "9000", "down"]], {"mtu": 9000, "up": False}),
    (dict(name="tap0", up=None), [], {"up": True}),
    (dict(name="tap1", bridge="br0"), [["link", "set", "dev", "tap1", "master", "br0", "mtu", "1400", "up"]],
     {"bridge": "br0", "mtu": 1400, "up": True}),
    (dict(name="tapn", bridge="br0"),
     [["tuntap", "add", "dev", "tapn", "mode", "tap"], ["link", "set", "dev", "tapn", "master", "br0", "mtu", "1400", "up"]],
     {"bridge": "br0", "mtu": 1400}),
    (dict(name="tapn", bridge="br1"),
     [["tuntap", "add", "dev", "tapn", "mode", "tap"], ["link", "set", "dev", "tapn", "master", "br1", "up"]],
     {"bridge": "br1", "mtu": 1500}),
    (dict(name="tap1", bridge="", up=False), [], {"bridge": None, "up": False}),
    (dict(name="tapn"), [["tuntap", "add", "dev", "tapn", "mode", "tap"], ["link", "set", "dev", "tapn", "up"]],
     {"bridge": None, "owner": None, "group": None, "multi_queue": False, "mtu": 1500, "up": True,
      "persistent": True, "mode": "tap"}),
    (dict(name="tapn", up=False), [["tuntap", "add", "dev", "tapn", "mode", "tap"]], {"up": False}),
    (dict(name="tapn", bridge="br1", owner=1000, group=1001, multi_queue=True, mtu=1400),
     [["tuntap", "add", "dev", "tapn", "mode", "tap", "user", "1000", "group", "1001", "multi_queue"],
      ["link", "set", "dev", "tapn", "master", "br1", "mtu", "1400", "up"]],
     {"bridge": "br1", "owner": 1000, "group": 1001, "multi_queue": True, "mtu": 1400}),
    # Recreated with force, keeping what the task leaves unmanaged.
    (dict(name="tap0", owner=1000, force=True),
     [["link", "del", "dev", "tap0"],
      ["tuntap", "add", "dev", "tap0", "mode", "tap", "user", "1000", "group", "100", "multi_queue"],
      SET_TAP0 + ["master", "br0", "mtu", "1400", "up"]],
     {"bridge": "br0", "owner": 1000, "group": 100, "multi_queue": True, "mtu": 1400, "up": True}),
    (dict(name="tap0", multi_queue=False, bridge="", force=True),
     [["link", "del", "dev", "tap0"],
      ["tuntap", "add", "dev", "tap0", "mode", "tap", "user", "0", "group", "100"],
      SET_TAP0 + ["mtu", "1400", "up"]],
     {"bridge": None, "multi_queue": False}),
    (dict(name="tun0", force=True),
     [["link", "del", "dev", "tun0"], ["tuntap", "add", "dev", "tun0", "mode", "tap"],
      ["link", "set", "dev", "tun0", "up"]],
     {"mode": "tap"}),
    (dict(name="qtap0", bridge="br0", force=True),
     [["link", "del", "dev", "qtap0"], ["tuntap", "add", "dev", "qtap0", "mode", "tap"],
      ["link", "set", "dev", "qtap0", "master", "br0", "mtu", "1400", "up"]],
     {"persistent": True, "bridge": "br0", "mtu": 1400}),
    # force alone never recreates a tap whose fixed settings already match.
    (dict(name="tap2", owner=12345, group=23456, force=True), [["link", "set", "dev", "tap2", "up"]],
     {"owner": 12345, "group": 23456}),
    (dict(name="tap2", state="absent"), [["link", "del", "dev", "tap2"]], None),
    (dict(name="qtap0", state="absent", force=True), [["link", "del", "dev", "qtap0"]], None),
    (dict(name="tapn", state="absent"), [], None),
    # A missing bridge does not matter when the tap goes away.
    (dict(name="tap1", state="absent", bridge="nosuch"), [["link", "del", "dev", "tap1"]], None),
])
def test_plan_tap(mixed, kwargs, lines, after):
    plan = plan_tap(mixed, **kwargs)
    assert plan.lines == lines
    assert plan.changed is bool(lines)
    if after is None:
        assert plan.after == {"name": kwargs["name"], "state": "absent"}
    else:
        assert plan.after["state"] == "present"
        assert dict((k, plan.after[k]) for k in after) == after
    assert plan.diff["before"] == plan.before


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="tap0", owner=1000), r"^tap tap0 exists with settings the kernel cannot change in place "
                                    r"\(owner is 0, wanted 1000\); set force: true to delete and recreate it$"),
    (dict(name="tap0", multi_queue=False, group=5), r"\(multi_queue is True, wanted False; group is 100, wanted 5\)"),
    (dict(name="tap1", owner=0), r"owner is unset, wanted 0"),
    (dict(name="tun0"), r"mode is tun, wanted tap"),
    (dict(name="qtap0"), r"it is not persistent: a running process \(such as QEMU\) created it"),
    (dict(name="qtap0", state="absent"), r"^tap qtap0 is not persistent: .*set force: true to delete it anyway$"),
    (dict(name="br0"), r"^a link named br0 exists but it is a bridge, not a tap; it is never changed or deleted"),
    (dict(name="veth0", state="absent", force=True), r"veth0 exists but it is a veth, not a tap"),
    (dict(name="tap1", bridge="nosuch"), r"^cannot put tap tap1 on bridge nosuch: there is no link named nosuch$"),
    (dict(name="tap1", bridge="veth0"), r"^cannot put tap tap1 on veth0: veth0 is a veth, not a bridge$"),
])
def test_plan_tap_refuses(mixed, kwargs, message):
    snapshot = copy.deepcopy(mixed)
    with pytest.raises(QemuInitError, match=message):
        plan_tap(mixed, **kwargs)
    assert mixed == snapshot


def test_a_tap_on_a_bridge_above_the_tap_maximum_takes_the_tap_maximum(mixed):
    lines = []
    for planner, name, kwargs in ((plan_bridge, "br-big", dict(mtu=65535)), (plan_tap, "tap1", dict(bridge="br-big"))):
        plan = planner(mixed, name, **kwargs)
        lines += plan.lines
        plan.update(mixed)
    assert lines[-1] == ["link", "set", "dev", "tap1", "master", "br-big", "mtu", "65521", "up"]
    assert (mixed["br-big"]["mtu"], mixed["tap1"]["mtu"]) == (65535, 65521)


def test_plans_chain_through_update(mixed):
    """Several links planned for one batch (as the vm module does) see each other's results."""
    lines = []
    for planner, name, kwargs in (
        (plan_bridge, "br-vm", dict(mtu=9000)),
        (plan_tap, "vm1-n1", dict(bridge="br-vm")),
        (plan_tap, "vm2-n1", dict(bridge="br-vm")),
        (plan_tap, "tap0", dict(bridge="br-vm")),
    ):
        plan = planner(mixed, name, **kwargs)
        lines += plan.lines
        plan.update(mixed)
    assert lines == [
        ["link", "add", "name", "br-vm", "up", "type", "bridge", "stp_state", "0"],
        ["link", "set", "dev", "br-vm", "mtu", "9000"],
        ["tuntap", "add", "dev", "vm1-n1", "mode", "tap"],
        ["link", "set", "dev", "vm1-n1", "master", "br-vm", "mtu", "9000", "up"],
        ["tuntap", "add", "dev", "vm2-n1", "mode", "tap"],
        ["link", "set", "dev", "vm2-n1", "master", "br-vm", "mtu", "9000", "up"],
        ["link", "set", "dev", "tap0", "master", "br-vm", "mtu", "9000"],
    ]
    assert [mixed[n]["mtu"] for n in ("br-vm", "vm1-n1", "vm2-n1", "tap0")] == [9000] * 4
    assert mixed["br-vm"]["ports"] == ["tap0", "vm1-n1", "vm2-n1"]
    assert mixed["br0"]["ports"] == []
    assert not plan_tap(mixed, "vm1-n1", bridge="br-vm").changed

    plan_tap(mixed, "vm1-n1", state="absent").update(mixed)
    assert mixed["br-vm"]["ports"] == ["tap0", "vm2-n1"]
    with pytest.raises(QemuInitError, match=r"still has ports \(tap0, vm2-n1\)"):
        plan_bridge(mixed, "br-vm", state="absent")
    plan_bridge(mixed, "br-vm", state="absent", force=True).update(mixed)
    assert "br-vm" not in mixed
    assert mixed["tap0"]["master"] is None


# ---------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize("value, expected", [(None, None), ("0", 0), (0, 0), ("root", 0), (" 1000 ", 1000), (65534, 65534)])
def test_resolve_user(value, expected):
    assert resolve_user(value) == expected


@pytest.mark.parametrize("value, problem", [
    ("no-such-user-qi", "no such user 'no-such-user-qi' on this host"),
    ("", "must be a user name or a numeric id"),
    ("-1", "no such user '-1'"),
    (2 ** 32 - 1, "out of range"),
    (-5, "out of range"),
])
def test_resolve_user_rejects(value, problem):
    with pytest.raises(ParameterError) as err:
        resolve_user(value)
    assert err.value.param == "owner"
    assert problem in err.value.problem


@pytest.mark.parametrize("value, expected", [(None, None), ("root", 0), ("100", 100)])
def test_resolve_group(value, expected):
    assert resolve_group(value) == expected


def test_resolve_group_rejects_unknown():
    with pytest.raises(ParameterError, match="^group: no such group 'no-such-group-qi' on this host$"):
        resolve_group("no-such-group-qi")


@pytest.mark.parametrize("value", [None, 68, 1500, 65535])
def test_check_mtu_accepts(value):
    assert check_mtu(value) == value


@pytest.mark.parametrize("value", [0, 67, 65536, True, "1500"])
def test_check_mtu_rejects(value):
    with pytest.raises(ParameterError, match="^mtu: must be an integer between 68 and 65535"):
        check_mtu(value)


# ---------------------------------------------------------------------------------------------
# IpCommand: the argv and stdin `ip` gets (run_command is the only fake)


def expect(module, *calls):
    fake = FakeRun(*calls)
    module.run_command = fake
    return fake


def test_links_reads_once(module):
    fake = expect(module, ([IP, "-json", "-details", "link", "show"], None, (0, fixture("mixed.json"), "")))
    links = IpCommand(module).links()
    assert links["br0"]["ports"] == ["tap0"]
    assert not fake.expected


def test_links_in_netns(module):
    fake = expect(module, ([IP, "-n", "lab", "-json", "-details", "link", "show"], None, (0, fixture("empty.json"), "")))
    assert list(IpCommand(module, "lab").links()) == ["lo"]
    assert not fake.expected


def test_missing_netns_is_a_clear_error(module):
    err = 'Cannot open network namespace "nsx": No such file or directory\n'
    expect(module, ([IP, "-n", "nsx", "-json", "-details", "link", "show"], None, (255, "", err)))
    with pytest.raises(QemuInitError) as exc:
        IpCommand(module, "nsx").links()
    assert exc.value.msg == "network namespace nsx does not exist (ip netns list)"


def test_apply_nothing_runs_nothing(module):
    expect(module)
    IpCommand(module).apply([])


def test_apply_one_line_runs_it_directly(module):
    fake = expect(module, ([IP, "-n", "lab", "link", "del", "dev", "br0"], None, (0, "", "")))
    IpCommand(module, "lab").apply([["link", "del", "dev", "br0"]])
    assert not fake.expected


def test_apply_several_lines_in_one_batch(module):
    fake = expect(module, (
        [IP, "-n", "lab", "-batch", "-"],
        "tuntap add dev t1 mode tap user 0\nlink set dev t1 master br0 mtu 1400 up",
        (0, "", ""),
    ))
    IpCommand(module, "lab").apply([
        ["tuntap", "add", "dev", "t1", "mode", "tap", "user", 0],
        ["link", "set", "dev", "t1", "master", "br0", "mtu", 1400, "up"],
    ])
    assert not fake.expected


def test_apply_runs_names_batch_would_mangle_on_their_own(module):
    # ip -batch cuts a line at '#' and unquotes a token starting with a quote.
    fake = expect(
        module,
        ([IP, "-batch", "-"], "link add name a up type bridge\nlink add name b up type bridge", (0, "", "")),
        ([IP, "link", "add", "name", "c#1", "up", "type", "bridge"], None, (0, "", "")),
        ([IP, "link", "add", "name", "'d", "up", "type", "bridge"], None, (0, "", "")),
        ([IP, "-batch", "-"], "link add name e up type bridge\nlink add name f up type bridge", (0, "", "")),
    )
    IpCommand(module).apply([["link", "add", "name", n, "up", "type", "bridge"] for n in ("a", "b", "c#1", "'d", "e", "f")])
    assert not fake.expected


def test_apply_names_the_failed_batch_line(module):
    err = 'Cannot find device "nosuch"\nCommand failed -:2\n'
    expect(module, ([IP, "-batch", "-"], "link set dev t1 nomaster\nlink set dev nosuch up\nlink set dev t1 down", (1, "", err)))
    with pytest.raises(QemuInitError) as exc:
        IpCommand(module).apply([
            ["link", "set", "dev", "t1", "nomaster"], ["link", "set", "dev", "nosuch", "up"], ["link", "set", "dev", "t1", "down"],
        ])
    assert exc.value.msg == 'ip link set dev nosuch up failed: Cannot find device "nosuch" (the 1 change(s) before it were applied)'
    assert exc.value.details["stderr"] == err
    assert exc.value.details["rc"] == 1


def test_apply_single_command_failure(module):
    err = "ioctl(TUNSETIFF): Device or resource busy\n"
    expect(module, ([IP, "tuntap", "add", "dev", "t1", "mode", "tap"], None, (1, "", err)))
    with pytest.raises(QemuInitError) as exc:
        IpCommand(module).apply([["tuntap", "add", "dev", "t1", "mode", "tap"]])
    assert exc.value.msg == "%s tuntap add dev t1 mode tap failed: ioctl(TUNSETIFF): Device or resource busy" % IP
    assert exc.value.details["cmd"] == [IP, "tuntap", "add", "dev", "t1", "mode", "tap"]
