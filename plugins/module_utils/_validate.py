# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of the names and paths users give us, before anything runs.

Every check raises ParameterError naming the parameter and the problem.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError

# VM names become file names (<name>-qemu.cfg), run-dir names and QMP answers: keep them to a
# portable, shell-inert alphabet. Dots, dashes and underscores allowed inside, not first.
VM_NAME_MAX = 64
_VM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Short names feed interface names (<short>-n<index> must fit in 15 bytes), so at most 10 chars.
SHORT_NAME_MAX = 10
_SHORT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

IFNAME_MAX = 15  # IFNAMSIZ - 1
_IFNAME_FORBIDDEN = set("/:%") | set(" \t\n\r\v\f")

NETNS_MAX = 64
_NETNS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_vm_name(value: t.Any, param: str = "name") -> str:
    """A VM's long name: 1-64 chars of [A-Za-z0-9._-], starting with a letter or digit."""
    if not isinstance(value, str) or not value:
        raise ParameterError(param, "must be a non-empty string")
    if len(value) > VM_NAME_MAX:
        raise ParameterError(param, "%r is %d characters long, the limit is %d" % (value, len(value), VM_NAME_MAX))
    if not _VM_NAME_RE.match(value) or value.endswith("."):
        raise ParameterError(
            param,
            "%r is not a valid VM name: use letters, digits, '.', '_' and '-', starting with a letter or digit "
            "and not ending with '.'" % (value,),
        )
    return value


def check_short_name(value: t.Any, param: str = "short_name") -> str:
    """A VM's short name: 1-10 chars of [a-z0-9_-], starting with a letter or digit."""
    if not isinstance(value, str) or not value:
        raise ParameterError(param, "must be a non-empty string")
    if len(value) > SHORT_NAME_MAX or not _SHORT_NAME_RE.match(value):
        raise ParameterError(
            param,
            "%r is not a valid short name: 1-%d characters of lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit" % (value, SHORT_NAME_MAX),
        )
    return value


def check_ifname(value: t.Any, param: str) -> str:
    """A Linux interface name: 1-15 bytes, no '/', ':', '%' or whitespace, not '.', '..', 'all' or 'default'."""
    if not isinstance(value, str) or not value:
        raise ParameterError(param, "must be a non-empty interface name")
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > IFNAME_MAX:
        raise ParameterError(param, "interface name %r is %d bytes long, the kernel allows %d" % (value, len(raw), IFNAME_MAX))
    if value in (".", ".."):
        raise ParameterError(param, "%r is not a valid interface name" % (value,))
    if value in ("all", "default"):
        # The kernel refuses them: they are the names of its per-interface sysctl directories.
        raise ParameterError(param, "%r is reserved by the kernel (net.ipv4.conf.%s) and cannot name an interface" % (value, value))
    bad = sorted(set(value) & _IFNAME_FORBIDDEN)
    if bad or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ParameterError(
            param, "interface name %r contains a character the kernel rejects (%s)" % (value, ", ".join(repr(c) for c in bad) or "control character")
        )
    return value


def check_netns(value: t.Any, param: str = "netns") -> str | None:
    """A network namespace name as `ip netns` stores it (a file under /run/netns)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ParameterError(param, "must be a non-empty namespace name")
    if len(value) > NETNS_MAX or not _NETNS_RE.match(value) or value in (".", ".."):
        raise ParameterError(
            param, "%r is not a valid network namespace name: 1-%d characters of letters, digits, '.', '_' and '-'" % (value, NETNS_MAX)
        )
    return value


def check_absolute_path(value: t.Any, param: str, must_exist: bool = False, kind: str = "file") -> str:
    """An absolute path without NUL or newline; optionally one that must exist already."""
    if not isinstance(value, str) or not value:
        raise ParameterError(param, "must be a non-empty path")
    if "\0" in value or "\n" in value or "\r" in value:
        raise ParameterError(param, "path %r contains a NUL, newline or carriage return character" % (value,))
    if not os.path.isabs(value):
        raise ParameterError(param, "path %r must be absolute" % (value,))
    if must_exist and not os.path.exists(value):
        raise ParameterError(param, "%s %s does not exist" % (kind, value))
    return value
