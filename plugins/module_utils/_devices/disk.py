# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A disk (DSKx): an image file, its format, the bus it sits on, read-only or not, its cache and discard modes;
and what the collection makes of it: an overlay on base_image, or a blank disk of size (_disk_plan.py plans
creating and growing it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_img import parse_size
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_absolute_path

FORMATS = ("raw", "qcow2", "qed", "vdi", "vmdk", "vhdx", "vpc", "luks")
INTERFACES = ("ide", "virtio", "scsi", "none")
DEFAULT_INTERFACE = "ide"
CACHES = ("none", "writeback", "writethrough", "directsync", "unsafe")
DISCARDS = ("ignore", "unmap")
CFG_KEY_PATTERN = r"DSK\d+(_(FORMAT|INTERFACE|READONLY|BASE|SIZE|CACHE|DISCARD))?"


@dataclass
class DiskSpec:
    file: str
    format: str
    interface: str = DEFAULT_INTERFACE
    readonly: bool = False
    base_image: str | None = None  # made as a qcow2 overlay on it when file does not exist
    size: str | None = None  # as written ("20G"); made blank, or grown, to it
    cache: str | None = None
    discard: str | None = None

    @property
    def size_bytes(self):
        return None if self.size is None else parse_size(self.size)


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
    base_image = d.get("base_image") or None
    size = d.get("size") or None
    # A disk the collection makes (base_image, size) need not exist yet.
    path = check_absolute_path(d.get("file"), where("file"), must_exist=check_files and not (base_image or size), kind="disk image")
    if base_image is not None:
        base_image = check_absolute_path(base_image, where("base_image"), must_exist=check_files, kind="base image")
    if size is not None:
        try:
            parse_size(size)
        except ValueError as exc:
            raise ParameterError(where("size"), str(exc)) from None
        size = str(size)
    spec = DiskSpec(
        file=path,
        # A disk the collection makes is qcow2 (an overlay must be); else the file name's rule (default_format).
        format=_choice(d.get("format") or ("qcow2" if base_image else default_format(path)), FORMATS, where("format")),
        interface=_choice(d.get("interface") or DEFAULT_INTERFACE, INTERFACES, where("interface")),
        readonly=bool(d.get("readonly")),
        base_image=base_image,
        size=size,
        cache=_choice(d["cache"], CACHES, where("cache")) if d.get("cache") else None,
        discard=_choice(d["discard"], DISCARDS, where("discard")) if d.get("discard") else None,
    )
    if base_image and spec.format != "qcow2":
        raise ParameterError(where("format"), "an overlay on base_image is qcow2, not %s" % spec.format)
    if base_image and os.path.realpath(base_image) == os.path.realpath(path):
        raise ParameterError(where("base_image"), "%s is the disk itself; a base image is never written" % base_image)
    return spec


def from_cfg(i, path, opt, to_bool, where):
    return dict(file=path, format=opt("DSK%d_FORMAT" % i), interface=opt("DSK%d_INTERFACE" % i),
                readonly=to_bool(opt("DSK%d_READONLY" % i), where("readonly")), base_image=opt("DSK%d_BASE" % i),
                size=opt("DSK%d_SIZE" % i), cache=opt("DSK%d_CACHE" % i), discard=opt("DSK%d_DISCARD" % i))


def cfg_items(disk: DiskSpec, i: int):
    items = [("DSK%d" % i, disk.file)]
    if disk.format != default_format(disk.file):
        items.append(("DSK%d_FORMAT" % i, disk.format))
    if disk.interface != DEFAULT_INTERFACE:
        items.append(("DSK%d_INTERFACE" % i, disk.interface))
    if disk.readonly:
        items.append(("DSK%d_READONLY" % i, "yes"))
    for key, value in (("BASE", disk.base_image), ("SIZE", disk.size), ("CACHE", disk.cache), ("DISCARD", disk.discard)):
        if value is not None:
            items.append(("DSK%d_%s" % (i, key), value))
    return items


def argv(disk: DiskSpec):
    drive = "file=%s,format=%s,if=%s,media=disk,snapshot=off" % (esc(disk.file), disk.format, disk.interface)
    if disk.readonly:
        drive += ",readonly=on"
    if disk.cache:
        drive += ",cache=%s" % disk.cache
    if disk.discard:
        drive += ",discard=%s" % disk.discard
    return ["-drive", drive]
