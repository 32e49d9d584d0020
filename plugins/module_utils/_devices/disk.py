# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A disk (DSKx): an image file, its format, the bus it sits on, read-only or not."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_absolute_path

FORMATS = ("raw", "qcow2", "qed", "vdi", "vmdk", "vhdx", "vpc", "luks")
INTERFACES = ("ide", "virtio", "scsi", "none")
DEFAULT_INTERFACE = "ide"
CFG_KEY_PATTERN = r"DSK\d+(_(FORMAT|INTERFACE|READONLY))?"


@dataclass
class DiskSpec:
    file: str
    format: str
    interface: str = DEFAULT_INTERFACE
    readonly: bool = False


def default_format(path):
    """The format assumed when a disk does not say: qcow2 for *.qcow2 files, raw otherwise.

    Never guessed from the image's content: a raw image whose guest wrote a qcow2 header
    would otherwise be opened as qcow2 on the next boot (QEMU's probing hazard).
    """
    return "qcow2" if path.lower().endswith(".qcow2") else "raw"


def _choice(value, choices, where):
    if value not in choices:
        raise ParameterError(where, "%r is not one of %s" % (value, ", ".join(choices)))
    return value


def build(d, where, check_files):
    """A DiskSpec from a disks[] item; where(field) names a field of it."""
    path = check_absolute_path(d.get("file"), where("file"), must_exist=check_files, kind="disk image")
    return DiskSpec(
        file=path,
        format=_choice(d.get("format") or default_format(path), FORMATS, where("format")),
        interface=_choice(d.get("interface") or DEFAULT_INTERFACE, INTERFACES, where("interface")),
        readonly=bool(d.get("readonly")),
    )


def from_cfg(i, path, opt, to_bool, where):
    return dict(file=path, format=opt("DSK%d_FORMAT" % i), interface=opt("DSK%d_INTERFACE" % i),
                readonly=to_bool(opt("DSK%d_READONLY" % i), where("readonly")))


def cfg_items(disk: DiskSpec, i: int):
    items = [("DSK%d" % i, disk.file)]
    if disk.format != default_format(disk.file):
        items.append(("DSK%d_FORMAT" % i, disk.format))
    if disk.interface != DEFAULT_INTERFACE:
        items.append(("DSK%d_INTERFACE" % i, disk.interface))
    if disk.readonly:
        items.append(("DSK%d_READONLY" % i, "yes"))
    return items


def argv(disk: DiskSpec):
    drive = "file=%s,format=%s,if=%s,media=disk,snapshot=off" % (esc(disk.file), disk.format, disk.interface)
    if disk.readonly:
        drive += ",readonly=on"
    return ["-drive", drive]
