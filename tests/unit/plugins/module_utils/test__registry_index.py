# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""RegistryState's indexes (names, short names, MACs, used ports, where free_slot resumes) against the plain
definitions they replace, over random sequences of registrations and removals."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import CONTROL_OFFSET, Entry, RegistryState, slot_ports

BASE = 30320
MACS = ["DE:AD:BE:EF:00:%02X" % i for i in range(6)]


def plain_free_slot(entries, listening, exclude=None):
    used = set(listening)
    for e in entries:
        if e.name != exclude:
            used.update(slot_ports(BASE, e.slot))
    slot = 0
    while used.intersection(slot_ports(BASE, slot)):
        slot += 1
    return slot


def plain_clashes(entries, name, macs):
    return [(mac, e.name) for e in sorted(entries, key=lambda e: e.slot) if e.name != name for mac in macs if mac in e.macs]


operations = st.lists(st.tuples(
    st.sampled_from(["add", "add", "add", "remove", "move"]),
    st.integers(min_value=0, max_value=11),                           # which VM
    st.lists(st.sampled_from(MACS), max_size=2, unique=True),        # its MACs
    st.sampled_from([frozenset(), frozenset([BASE + 1]), frozenset([5900, BASE + 2 + CONTROL_OFFSET])]),  # listening
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_indexes_agree_with_the_plain_definitions(ops):
    state = RegistryState("reg", BASE, [])
    entries = {}  # the reference: name -> Entry
    for op, number, macs, listening in ops:
        name = "vm%d" % number
        if op == "remove":
            assert state.remove(name) == (name in entries)
            entries.pop(name, None)
        elif op == "move" and name in entries:
            # A hand-edited registry can give a VM a slot anywhere; put() must re-index its ports.
            moved = Entry(entries[name].short_name, name, max(e.slot for e in entries.values()) + 1 + number % 3, entries[name].macs)
            state.put(moved)
            entries[name] = moved
        elif op == "add":
            others = list(entries.values())
            assert state.mac_clashes(name, macs) == plain_clashes(others, name, macs)
            assert state.free_slot(listening) == plain_free_slot(others, listening)
            if name not in entries and not plain_clashes(others, name, macs):
                entry = state.plan_register(name, None, macs, listening)
                assert entry.slot == plain_free_slot(others, listening)
                state.put(entry)
                entries[name] = entry
        for probe in ("vm%d" % i for i in range(12)):
            assert state.get(probe) is entries.get(probe)
            assert state.resolve(probe) is entries.get(probe)
            if probe in entries:
                assert state.free_slot((), exclude_name=probe) == plain_free_slot(entries.values(), (), exclude=probe)
        assert sorted(e.name for e in state.entries()) == sorted(entries)
        again = RegistryState.parse("reg", state.render(), BASE)
        assert [e.as_tuple() for e in again.entries()] == [e.as_tuple() for e in sorted(entries.values(), key=lambda e: e.slot)]


def test_a_batch_gets_consecutive_slots_around_listened_ports():
    state = RegistryState("reg", BASE, [])
    listening = frozenset([BASE + 2, 5904])
    slots = []
    for i in range(8):
        entry = state.plan_register("vm%d" % i, None, [], listening)
        state.put(entry)
        slots.append(entry.slot)
    assert slots == [0, 1, 3, 5, 6, 7, 8, 9]


def test_a_removed_slot_is_handed_out_again():
    state = RegistryState("reg", BASE, [])
    for i in range(4):
        state.put(state.plan_register("vm%d" % i, None, [], ()))
    state.remove("vm1")
    assert state.plan_register("new", None, [], ()).slot == 1


def test_short_names_follow_put_and_remove():
    state = RegistryState("reg", BASE, [Entry("web", "web-frontend", 0, [])])
    assert state.resolve("web").name == "web-frontend"
    state.put(Entry("front", "web-frontend", 0, []))
    assert state.resolve("web") is None
    assert state.resolve("front").name == "web-frontend"
    state.remove("web-frontend")
    assert state.resolve("front") is None
