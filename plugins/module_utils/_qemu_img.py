# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""qemu-img: argv lists for what the collection asks of it (info, overlays, blank disks, growing), run through
the module's run_command. Sizes are bytes here; "20G" style strings are parsed by parse_size."""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGTP]?)(i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}


def parse_size(value: t.Any) -> int:
    """Bytes of a size given as a number of bytes or as "20G", "512M", "1T" (binary units, as qemu-img reads them)."""
    if isinstance(value, bool):
        raise ValueError("%r is not a size" % (value,))
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError("%r is not a size like 20G, 512M or a number of bytes" % (value,))
        size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size <= 0 or size % 512:
        raise ValueError("%r is not a positive multiple of 512 bytes" % (value,))
    return size


class QemuImg:
    def __init__(self, module: AnsibleModule, binary: str | None = None) -> None:
        self.module = module
        self.binary = binary or module.get_bin_path("qemu-img", required=True)

    def _run(self, args: list[str], what: str) -> str:
        cmd = [self.binary] + args
        rc, out, err = self.module.run_command(cmd, check_rc=False, environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise QemuInitError("%s failed: %s" % (what, (err or out).strip()), rc=rc, stderr=err, cmd=cmd)
        return out

    def info(self, path: str, chain: bool = False, fmt: str | None = None) -> t.Any:
        """`qemu-img info --output=json` of path (a list over the backing chain with chain=True).

        -U (force-share): a running VM holds a write lock on its disk; reading its header is still safe.
        fmt: the format the user gave (-f, for the top image only): read as that, never probed."""
        args = ["info", "--output=json", "-U"] + (["--backing-chain"] if chain else []) + (["-f", fmt] if fmt else []) + [path]
        return json.loads(self._run(args, "reading %s (qemu-img info)" % path))

    def create_overlay(self, path: str, base: str, base_format: str, size: int | None = None) -> None:
        """A qcow2 file whose backing file is base (never written); it grows to `size` if given."""
        self._run(["create", "-q", "-f", "qcow2", "-b", base, "-F", base_format, path] + ([str(size)] if size else []),
                  "creating the overlay %s on %s" % (path, base))

    def create(self, path: str, fmt: str, size: int) -> None:
        self._run(["create", "-q", "-f", fmt, path, str(size)], "creating the disk %s" % path)

    def resize(self, path: str, fmt: str, size: int) -> None:
        """Grow a disk that no VM uses (qemu-img refuses to shrink without --shrink, which is never passed)."""
        self._run(["resize", "-q", "-f", fmt, path, str(size)], "growing %s to %d bytes" % (path, size))
