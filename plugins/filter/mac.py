# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters mac and duplicate_macs: the collection's MAC rule, on the controller."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac, find_duplicate_macs

DEFAULT_OS = "linux"


def mac(name, os_name=DEFAULT_OS, index=1):
    """MAC of NIC `index` of VM `name` with OS `os_name` (the same function the modules use)."""
    try:
        return derive_mac(str(name), str(os_name), int(index))
    except (QemuInitError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(float("inf"))
        raise AnsibleFilterError("qemu_init.qemu.mac: %s" % (getattr(exc, "msg", None) or exc)) from exc


def _vm_macs(vm, where):
    if not isinstance(vm, dict) or not vm.get("name"):
        raise AnsibleFilterError("qemu_init.qemu.duplicate_macs: %s must be a dict with a name" % where)
    label = "%s:%s" % (vm["host"], vm["name"]) if vm.get("host") else str(vm["name"])
    nics = vm.get("nics") or []
    if not isinstance(nics, (list, tuple)):
        raise AnsibleFilterError("qemu_init.qemu.duplicate_macs: %s: nics must be a list, got %s" % (where, type(nics).__name__))
    macs = []
    for index, nic in enumerate(nics, start=1):
        explicit = nic.get("mac") if isinstance(nic, dict) else None
        macs.append(explicit or derive_mac(str(vm["name"]), str(vm.get("os") or DEFAULT_OS), index))
    return label, macs


def duplicate_macs(vms):
    """MACs used by more than one NIC across `vms`: [{mac, nics: ["vm NIC1", ...]}], empty when none."""
    if not isinstance(vms, (list, tuple)):
        raise AnsibleFilterError("qemu_init.qemu.duplicate_macs: expects a list of VMs, got %s" % type(vms).__name__)
    try:
        pairs = [_vm_macs(vm, "item %d" % i) for i, vm in enumerate(vms)]
        return [dict(mac=m, nics=owners) for m, owners in find_duplicate_macs(pairs)]
    except QemuInitError as exc:
        raise AnsibleFilterError("qemu_init.qemu.duplicate_macs: %s" % exc.msg) from exc


class FilterModule:
    def filters(self):
        return {"mac": mac, "duplicate_macs": duplicate_macs}
