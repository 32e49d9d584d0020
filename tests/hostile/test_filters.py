# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mac and duplicate_macs filters on hostile input: a value of the documented form, or AnsibleFilterError."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.filter.mac import duplicate_macs, mac
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

MAC_RE = re.compile(r"^DE:AD:BE:EF:[0-9A-F]{2}:[0-9A-F]{2}$")
anything = st.one_of(hs.names, hs.wrong_types, hs.ints)


@settings(max_examples=harness.examples(500))
@given(name=anything, os_name=st.one_of(st.just("linux"), anything),
       index=st.one_of(st.just(1), hs.ints, hs.wrong_types, st.sampled_from(hs.INFINITIES)))
def test_mac_filter(name, os_name, index):
    try:
        value = mac(name, os_name, index)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("qemu_init.qemu.mac: "), exc
        harness.TALLY.add("mac filter", "fail")
        return
    assert MAC_RE.match(value), value
    assert value == derive_mac(str(name), str(os_name), int(index))
    harness.TALLY.add("mac filter", "ok")


vm_items = st.one_of(
    st.fixed_dictionaries({"name": anything}, optional={
        "os": anything, "host": anything,
        "nics": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={"mac": hs.macs}), hs.wrong_types), max_size=3),
                          hs.wrong_types)}),
    hs.wrong_types, hs.hostile_text)


plain_vms = st.lists(st.fixed_dictionaries({"name": hs.plain_names, "nics": st.lists(st.fixed_dictionaries({}, optional={
    "mac": st.sampled_from(["02:00:00:00:00:01", "02-00-00-00-00-01", "de:ad:be:ef:cf:ce", "01:00:00:00:00:01"])}), max_size=3)}),
    max_size=4)


@settings(max_examples=harness.examples(300))
@given(vms=st.one_of(plain_vms, st.lists(vm_items, max_size=4), hs.wrong_types, hs.hostile_text))
def test_duplicate_macs_filter(vms):
    try:
        found = duplicate_macs(vms)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("qemu_init.qemu.duplicate_macs: "), exc
        harness.TALLY.add("duplicate_macs filter", "fail")
        return
    assert isinstance(found, list)
    for item in found:
        assert re.match(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$", item["mac"]) and len(item["nics"]) > 1, item
    harness.TALLY.add("duplicate_macs filter", "ok")
