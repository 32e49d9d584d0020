# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import multiprocessing
import os
import socket

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import listening_tcp_ports
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import (
    DEFAULT_MONITOR_BASE,
    Entry,
    Registry,
    RegistryError,
    RegistryState,
    default_short_name,
    ports_info,
    read_monitor_base,
    slot_ports,
)


def register(reg_state, name, listening=(), macs=None):
    entry = reg_state.plan_register(name, None, macs if macs is not None else [derive_mac(name, "linux", 1)], listening)
    reg_state.put(entry)
    return entry


def empty(base=DEFAULT_MONITOR_BASE):
    return RegistryState("reg", base, [])


def test_ports_of_a_slot():
    assert ports_info(30320, 3) == dict(slot=3, monitor_port=30323, control_port=30423, vnc_display=3, vnc_port=5903)


def test_150_vms_get_distinct_non_overlapping_ports():
    state = empty()
    slots = [register(state, "vm%03d" % i).slot for i in range(150)]
    # slots 100..199 would put a monitor port on an earlier VM's control port (base + s + 100)
    assert slots == list(range(100)) + list(range(200, 250))
    ports = [p for s in slots for p in slot_ports(state.base, s)]
    assert len(ports) == len(set(ports)) == 450


def test_ports_listened_on_by_others_are_skipped():
    state = empty()
    listening = {30320, 30421, 5902}  # slot 0 monitor, slot 1 control, slot 2 VNC
    assert [register(state, "vm%d" % i, listening).slot for i in range(3)] == [3, 4, 5]


def test_a_real_listener_is_seen_and_skipped(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert port in listening_tcp_ports()
        # a base that puts slot 0's monitor port on the listener
        state = empty(base=port)
        assert register(state, "vm0", listening_tcp_ports()).slot == 1


def test_freed_slot_is_reused_and_others_keep_theirs():
    state = empty()
    for i in range(5):
        register(state, "vm%d" % i)
    assert state.remove("vm2")
    assert register(state, "new").slot == 2
    assert [state.get("vm%d" % i).slot for i in (0, 1, 3, 4)] == [0, 1, 3, 4]
    # registering an existing VM again keeps its slot
    assert register(state, "vm4").slot == 4


def test_more_vms_than_ports_is_a_clear_error():
    state = empty(base=65000)  # room for slots 0..435, minus the +100 overlaps
    count = 0
    with pytest.raises(RegistryError) as exc:
        while True:
            register(state, "vm%d" % count)
            count += 1
    assert "no free slot left" in exc.value.msg
    assert count == 236  # 0..99, 200..299, 400..435


def test_short_names_and_resolution():
    state = empty()
    state.put(state.plan_register("web-server-frontend", None, [], ()))
    entry = state.get("web-server-frontend")
    assert entry.short_name == default_short_name("web-server-frontend")
    assert len(entry.short_name) <= 10
    assert state.resolve(entry.short_name) is entry
    assert state.resolve("web-server-frontend") is entry
    assert state.resolve("nope") is None
    with pytest.raises(ParameterError) as exc:
        state.plan_register("other", entry.short_name, [], ())
    assert exc.value.param == "short_name" and "web-server-frontend" in exc.value.problem


@pytest.mark.parametrize("name, short", [("web1", "web1"), ("Web1", "web"), ("a.b.c.d.e.f.g", "abcde")])
def test_default_short_name(name, short):
    assert default_short_name(name).startswith(short)


def test_duplicate_mac_names_both_vms():
    state = empty()
    register(state, "web1", macs=["DE:AD:BE:EF:00:01"])
    with pytest.raises(ParameterError) as exc:
        register(state, "web2", macs=["DE:AD:BE:EF:00:01"])
    assert "web2" in exc.value.msg and "web1" in exc.value.msg


def test_registry_file_round_trip_and_atomic_save(tmp_path):
    registry = Registry(str(tmp_path))
    with registry.locked() as state:
        register(state, "web1")
        register(state, "db1")
        registry.save(state)
    again = registry.read()
    assert [e.as_tuple() for e in again.entries()] == [e.as_tuple() for e in state.entries()]
    leftovers = [n for n in os.listdir(str(tmp_path)) if n.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("text, problem", [
    ("web1 web1\n", "expected 'SHORT_NAME NAME SLOT"),
    ("web1 web1 x\n", "expected 'SHORT_NAME NAME SLOT"),
    ("web1 web1 0\nweb2 web2 0\n", "slot 0 is registered twice"),
    ("web1 web1 0\nweb1 web2 1\n", "short name web1 is registered twice"),
    ("web1 web1 0 zz:zz\n", "6 hex octets"),
    ("WEB web1 0\n", "not a valid short name"),
])
def test_damaged_registry_is_a_clear_error(tmp_path, text, problem):
    (tmp_path / "qemu-init.reg").write_text(text)
    with pytest.raises(RegistryError) as exc:
        Registry(str(tmp_path)).read()
    assert problem in exc.value.msg
    assert "qemu-init.reg:" in exc.value.msg


@pytest.mark.parametrize("content, base", [(None, 30320), ('# base\nMONPORT="31000"\n', 31000), ("32000\n", 32000)])
def test_monitor_conf(tmp_path, content, base):
    if content is not None:
        (tmp_path / "monitor.conf").write_text(content)
    assert read_monitor_base(str(tmp_path)) == base


@pytest.mark.parametrize("content", ['MONPORT="80"\n', 'MONPORT="65500"\n', 'OTHER="1"\n', "MONPORT=$(x)\n"])
def test_bad_monitor_conf(tmp_path, content):
    (tmp_path / "monitor.conf").write_text(content)
    with pytest.raises(RegistryError):
        read_monitor_base(str(tmp_path))


def _register_many(config_dir, prefix, count, barrier):
    registry = Registry(config_dir)
    barrier.wait()
    for i in range(count):
        with registry.locked() as state:
            register(state, "%s%02d" % (prefix, i))
            registry.save(state)


def test_two_processes_registering_at_once_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), prefix, 50, barrier)) for prefix in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    entries = Registry(str(tmp_path)).read().entries()
    assert len(entries) == 100
    assert len(set(e.slot for e in entries)) == 100
    assert sorted(e.name for e in entries) == sorted(["a%02d" % i for i in range(50)] + ["b%02d" % i for i in range(50)])


def test_entry_equality():
    assert Entry("a", "a", 0, ["DE:AD:BE:EF:00:01"]) == Entry("a", "a", 0, ["DE:AD:BE:EF:00:01"])
    assert Entry("a", "a", 0) != Entry("a", "a", 1)
