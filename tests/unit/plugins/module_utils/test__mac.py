# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac, find_duplicate_macs, normalize_mac


# Expected values computed independently: printf 'web1:debian:1' | sha256sum | cut -c1-4
@pytest.mark.parametrize("name, os_name, index, expected", [
    ("web1", "debian", 1, "DE:AD:BE:EF:CF:CE"),
    ("web1", "debian", 2, "DE:AD:BE:EF:D4:64"),
    ("db1", "linux", 1, "DE:AD:BE:EF:17:B9"),
    ("a", "b", 10, "DE:AD:BE:EF:44:C8"),
])
def test_derive_mac_vectors(name, os_name, index, expected):
    assert derive_mac(name, os_name, index) == expected


@pytest.mark.parametrize("index", [0, -1, True, "1", 1.0])
def test_derive_mac_rejects_bad_index(index):
    with pytest.raises(ParameterError):
        derive_mac("web1", "debian", index)


@pytest.mark.parametrize("value, expected", [
    ("de:ad:be:ef:00:01", "DE:AD:BE:EF:00:01"),
    ("52-54-00-12-34-56", "52:54:00:12:34:56"),
    (" 02:00:00:00:00:01 ", "02:00:00:00:00:01"),
])
def test_normalize_mac_accepts(value, expected):
    assert normalize_mac(value) == expected


@pytest.mark.parametrize("value, problem", [
    ("00:00:00:00:00:00", "all-zero"),
    ("01:00:5e:00:00:01", "multicast"),
    ("ff:ff:ff:ff:ff:ff", "multicast"),
    ("de:ad:be:ef:00", "6 hex octets"),
    ("de:ad:be:ef:00:01:02", "6 hex octets"),
    ("de:ad:be-ef:00:01", "6 hex octets"),
    ("zz:ad:be:ef:00:01", "6 hex octets"),
    ("", "6 hex octets"),
    (None, "6 hex octets"),
])
def test_normalize_mac_rejects(value, problem):
    with pytest.raises(ParameterError) as exc:
        normalize_mac(value, "nics[0].mac")
    assert exc.value.param == "nics[0].mac"
    assert problem in exc.value.problem


def test_find_duplicate_macs_names_every_owner():
    found = find_duplicate_macs([
        ("web1", ["DE:AD:BE:EF:00:01", "de:ad:be:ef:00:02"]),
        ("db1", ["DE:AD:BE:EF:00:02"]),
        ("cache", ["DE:AD:BE:EF:00:03"]),
    ])
    assert found == [("DE:AD:BE:EF:00:02", ["web1 NIC2", "db1 NIC1"])]


def test_find_duplicate_macs_none():
    assert find_duplicate_macs([("a", [derive_mac("a", "linux", 1)]), ("b", [derive_mac("b", "linux", 1)])]) == []
