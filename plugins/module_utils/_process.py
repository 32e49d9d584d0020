# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Process identity from /proc: is the pid in a pidfile a live QEMU?

A pidfile outlives its process and pids are reused, so a pid alone proves nothing: the
process must exist, not be a zombie (PID 1 here reaps late, see TOOLING.md) and be a
qemu-system-* binary. _probe.probe adds the final proof, QMP query-name.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_bytes


def read_pidfile(path: str, vm: str | None = None) -> int | None:
    """The pid in `path`, or None when the file is missing, empty or not a number.

    Anything else at the path (a directory, a FIFO, a file the user cannot read) is a clear error naming the
    VM: taking it for "no pidfile" would start a second QEMU on the same disks.
    """
    data = read_bytes(path, "pidfile", vm, hint="QEMU writes it at start; remove what is there if no QEMU runs this VM",
                      limit=4096)
    text = (data or b"").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def proc_state(pid: int, proc: str = "/proc") -> str | None:
    """The one-letter state from /proc/PID/stat ('R', 'S', 'Z', ...), or None if there is no such process."""
    try:
        with open("%s/%d/stat" % (proc, pid), "r") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: the state follows the last ')'.
    return stat[stat.rindex(")") + 2:].split(" ", 1)[0]


def proc_cmdline(pid: int, proc: str = "/proc") -> list[str]:
    """The argv of PID from /proc/PID/cmdline; [] when there is no such process (or a kernel thread)."""
    try:
        with open("%s/%d/cmdline" % (proc, pid), "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]


# TypeGuard: where this is true, pid is an int (for mypy; annotations are never evaluated at run time).
def is_live_qemu(pid: int | None, proc: str = "/proc", argv: list[str] | None = None) -> t.TypeGuard[int]:
    """True when pid is a running (not zombie) qemu-system-* process. `argv`: its proc_cmdline, when the caller
    has read it already (a probe needs it anyway; one read of /proc/PID/cmdline instead of two)."""
    if pid is None:
        return False
    state = proc_state(pid, proc)
    if state is None or state in ("Z", "X", "x"):
        return False
    if argv is None:
        argv = proc_cmdline(pid, proc)
    return bool(argv) and os.path.basename(argv[0]).startswith("qemu-system-")
