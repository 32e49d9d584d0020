# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qemu_init.qemu.plugins.filter.mac import FilterModule
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac

FILTERS = FilterModule().filters()


def test_mac_filter_is_the_module_function():
    assert FILTERS["mac"]("web1", "debian", 1) == "DE:AD:BE:EF:CF:CE" == derive_mac("web1", "debian", 1)
    assert FILTERS["mac"]("db1") == "DE:AD:BE:EF:17:B9"  # os linux, NIC 1 by default


@pytest.mark.parametrize("args", [("web1", "debian", 0), ("web1", "debian", "x")])
def test_mac_filter_rejects_bad_index(args):
    with pytest.raises(AnsibleFilterError):
        FILTERS["mac"](*args)


def test_duplicate_macs_across_hosts():
    vms = [
        dict(host="h1", name="web1", os="debian", nics=[{}, {}]),
        dict(host="h2", name="web1", os="debian", nics=[{}]),  # same name+os on another host: same MAC
        dict(host="h2", name="db1", nics=[dict(mac="de:ad:be:ef:d4:64")]),
    ]
    assert FILTERS["duplicate_macs"](vms) == [
        dict(mac="DE:AD:BE:EF:CF:CE", nics=["h1:web1 NIC1", "h2:web1 NIC1"]),
        dict(mac="DE:AD:BE:EF:D4:64", nics=["h1:web1 NIC2", "h2:db1 NIC1"]),
    ]


def test_duplicate_macs_none_and_bad_input():
    assert FILTERS["duplicate_macs"]([dict(name="a", nics=[{}]), dict(name="b", nics=[{}])]) == []
    with pytest.raises(AnsibleFilterError):
        FILTERS["duplicate_macs"]("web1")
    with pytest.raises(AnsibleFilterError):
        FILTERS["duplicate_macs"]([dict(nics=[])])
    with pytest.raises(AnsibleFilterError):
        FILTERS["duplicate_macs"]([dict(name="a", nics=[dict(mac="01:00:00:00:00:01")])])
