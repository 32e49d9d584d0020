# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloud-init NoCloud seed: a small FAT volume labelled cidata, attached read-only on virtio. CIDATA (the
seed image) and CIDATA_ID (its instance-id, so a changed seed changes the cfg and the VM reports
restart_required) in the cfg. vm_config writes the seed from cloud_init (_seed.py); a hand-written cfg may name
a seed image made some other way."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc

CFG_KEY_PATTERN = r"CIDATA(_ID)?"


def cfg_items(spec):
    items = []
    if spec.cidata:
        items.append(("CIDATA", spec.cidata))
        if spec.cidata_id:
            items.append(("CIDATA_ID", spec.cidata_id))
    return items


def argv(ctx):
    if not ctx.spec.cidata:
        return []
    drive = "file=%s,format=raw,if=virtio,media=disk,readonly=on" % esc(ctx.spec.cidata)
    if ctx.spec.cidata_id:
        # The instance-id in the launch arguments (as the drive's host-side id, which the guest never sees):
        # restart_required compares those, and a re-seeded VM must report it. The seed's path stays the same.
        drive += ",id=cidata-%s" % ctx.spec.cidata_id
    return ["-drive", drive]
