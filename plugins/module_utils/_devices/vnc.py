# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vnc: the VM's display. VNC and VNC_LISTEN in the cfg. With vnc on, QEMU serves display `slot` (TCP port
5900 + slot, _registry.ports_info) on vnc_listen (127.0.0.1 unless asked otherwise); with vnc off there is no
display at all (-display none)."""

from __future__ import annotations

import ipaddress

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError

CFG_KEY_PATTERN = r"VNC|VNC_LISTEN"
DEFAULT_LISTEN = "127.0.0.1"


def build(spec, p, where):
    """Check and set vnc and vnc_listen from params p (module parameters or cfg values); where(fname) names a field."""
    spec.vnc = bool(p.get("vnc"))
    listen = p.get("vnc_listen") or DEFAULT_LISTEN
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        raise ParameterError(where("vnc_listen"), "%r is not an IP address" % (listen,)) from None
    spec.vnc_listen = listen


def cfg_items(spec):
    items = []
    if spec.vnc:
        items.append(("VNC", "yes"))
    if spec.vnc_listen != DEFAULT_LISTEN:
        items.append(("VNC_LISTEN", spec.vnc_listen))
    return items


def argv(spec, ports):
    """-vnc HOST:DISPLAY (ports: _registry.ports_info of the VM's slot), or -display none."""
    if not spec.vnc:
        return ["-display", "none"]
    host = spec.vnc_listen
    return ["-vnc", "%s:%d" % ("[%s]" % host if ":" in host else host, ports["vnc_display"])]
