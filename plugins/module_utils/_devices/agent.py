# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""guest_agent: a virtio-serial port org.qemu.guest_agent.0 on a unix socket in the run dir (0600), for the QEMU
guest agent in the guest (_qga.py talks to it). GUEST_AGENT in the cfg."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc

CFG_KEY_PATTERN = r"GUEST_AGENT"
PORT_NAME = "org.qemu.guest_agent.0"


def cfg_items(spec):
    return [("GUEST_AGENT", "yes")] if spec.guest_agent else []


def argv(ctx):
    if not ctx.spec.guest_agent:
        return []
    return ["-chardev", "socket,id=qga0,path=%s,server=on,wait=off" % esc(ctx.run.qga),
            "-device", "virtio-serial-pci,id=qgaserial0",
            "-device", "virtserialport,bus=qgaserial0.0,chardev=qga0,name=%s" % PORT_NAME]
