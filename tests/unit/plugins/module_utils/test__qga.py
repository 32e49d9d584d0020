# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guest agent client's pure part; exchanges with a real agent are in the real-OS integration tests."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._qga import guest_facts, interface_facts


def test_interface_facts_keep_only_global_addresses():
    raw = {"name": "enp0s2", "hardware-address": "de:ad:be:ef:cf:ce", "ip-addresses": [
        {"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24},
        {"ip-address-type": "ipv6", "ip-address": "fe80::dcad:beff:feef:cfce%enp0s2", "prefix": 64},
        {"ip-address-type": "ipv6", "ip-address": "fec0::dcad:beff:feef:cfce", "prefix": 64},
        {"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
        {"ip-address-type": "ipv4", "ip-address": "garbage"},
    ]}
    assert interface_facts(raw) == dict(name="enp0s2", mac="DE:AD:BE:EF:CF:CE", addresses=["10.0.2.15", "fec0::dcad:beff:feef:cfce"])
    assert interface_facts({"name": "x"}) == dict(name="x", mac=None, addresses=[])


def test_no_agent_socket_is_none_not_an_error(tmp_path):
    assert guest_facts(str(tmp_path / "qga.sock"), timeout=0.2) is None
