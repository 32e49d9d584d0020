# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A CD-ROM (CDRx): an ISO image on the IDE bus, always read-only."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_absolute_path

CFG_KEY_PATTERN = r"CDR\d+"


def build(path, where, check_files):
    return check_absolute_path(path, where, must_exist=check_files, kind="ISO image")


def cfg_items(path, i):
    return [("CDR%d" % i, path)]


def argv(path):
    return ["-drive", "file=%s,format=raw,if=ide,media=cdrom,readonly=on" % esc(path)]
