# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of one VM, as vm_config takes them at its top level and in each item of `vms`, and as the vms
module takes them in each item: one definition for both modules (their DOCUMENTATION describes them)."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import disk
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic import BACKENDS
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import DEFAULT_NIC_BACKEND, DEFAULT_NIC_MODEL


def per_vm_argument_spec():
    """The options of one VM: the module's top level, and each item of O(vms)."""
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        short_name=dict(type="str"),
        os=dict(type="str", default="linux"),
        memory=dict(type="int"),
        cpus=dict(type="int"),
        machine=dict(type="str"),
        accel=dict(type="str", default="auto", choices=["auto", "kvm", "tcg"]),
        disks=dict(type="list", elements="dict", default=[], options=dict(
            file=dict(type="path", required=True),
            format=dict(type="str", choices=list(disk.FORMATS)),
            interface=dict(type="str", default=disk.DEFAULT_INTERFACE, choices=list(disk.INTERFACES)),
            readonly=dict(type="bool", default=False),
        )),
        cdroms=dict(type="list", elements="path", default=[]),
        kernel=dict(type="path"),
        initrd=dict(type="path"),
        append=dict(type="str"),
        nics=dict(type="list", elements="dict", default=[], options=dict(
            model=dict(type="str", default=DEFAULT_NIC_MODEL),
            backend=dict(type="str", default=DEFAULT_NIC_BACKEND, choices=list(BACKENDS)),
            bridge=dict(type="str"),
            tap=dict(type="str"),
            listen=dict(type="str"),
            connect=dict(type="str"),
            mcast=dict(type="str"),
            localaddr=dict(type="str"),
            hub=dict(type="int"),
            hostfwd=dict(type="list", elements="str"),
            restrict=dict(type="bool"),
            mac=dict(type="str"),
        )),
        hubs=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="int", required=True),
            bridge=dict(type="str"),
            tap=dict(type="str"),
        )),
        bridge=dict(type="str", default="br0"),
        netns=dict(type="str"),
        vnc=dict(type="bool", default=False),
        vnc_listen=dict(type="str", default="127.0.0.1"),
        monitor_tcp=dict(type="bool", default=False),
        autostart=dict(type="bool", default=False),
        serial_log=dict(type="path"),
        extra_args=dict(type="list", elements="str", default=[]),
    )
