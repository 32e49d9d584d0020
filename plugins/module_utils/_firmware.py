# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which UEFI firmware a VM boots: found through QEMU's firmware descriptors, as libvirt finds it.

QEMU's docs/interop/firmware.json defines the descriptors. They are read from /usr/share/qemu/firmware,
/etc/qemu/firmware and $XDG_CONFIG_HOME/qemu/firmware; a file in a later directory replaces the one of the same
name in an earlier one, and an empty file hides it. The candidates are taken in file-name order (the numeric
prefixes say the packager's preference) and the first one that fits is used: interface uefi, a flash mapping
with a separate NVRAM template, a target for x86_64 whose machine pattern matches the VM's machine type, and
the features secure boot asks for (secure-boot, enrolled-keys, requires-smm) or, without secure boot, no
secure-boot feature.
"""

from __future__ import annotations

import fnmatch
import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import FileReadError, read_json

SEARCH_DIRS = ("/usr/share/qemu/firmware", "/etc/qemu/firmware")
# The packages that ship OVMF with descriptors, for the error message.
PACKAGES = "Debian/Ubuntu: ovmf; Fedora/RHEL: edk2-ovmf; Arch: edk2-ovmf; Alpine: ovmf"
# QEMU's machine aliases as x86_64 binaries resolve them; descriptors match versioned names.
MACHINE_ALIASES = {"pc": "pc-i440fx-", "q35": "pc-q35-", None: "pc-i440fx-"}


class Firmware(t.NamedTuple):
    descriptor: str
    code: str
    code_format: str
    vars_template: str
    vars_format: str
    secure_boot: bool
    requires_smm: bool


def search_dirs() -> list[str]:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return list(SEARCH_DIRS) + [os.path.join(config, "qemu", "firmware")]


def descriptors(dirs: t.Sequence[str] | None = None) -> list[str]:
    """The descriptor files in effect, in the order QEMU's spec gives (by file name; later dirs replace)."""
    by_name: dict[str, str] = {}
    for directory in dirs if dirs is not None else search_dirs():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(".json"):
                by_name[name] = os.path.join(directory, name)
    return [by_name[name] for name in sorted(by_name) if os.path.getsize(by_name[name]) > 0]


def _machine_matches(patterns: t.Iterable[str], machine: str | None) -> bool:
    probe = MACHINE_ALIASES.get(machine, machine) or ""
    # An alias stands for its newest versioned type: pc-q35-* matches "pc-q35-" + any version.
    names = [probe + "99.0"] if probe.endswith("-") else [probe]
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


def _fits(doc: dict[str, t.Any], machine: str | None, secure_boot: bool) -> bool:
    if "uefi" not in doc.get("interface-types", []):
        return False
    mapping = doc.get("mapping") or {}
    if mapping.get("device") != "flash" or "nvram-template" not in mapping or "executable" not in mapping:
        return False
    if not any(target.get("architecture") == "x86_64" and _machine_matches(target.get("machines", []), machine)
               for target in doc.get("targets", [])):
        return False
    features = set(doc.get("features", []))
    if secure_boot:
        return {"secure-boot", "enrolled-keys", "requires-smm"} <= features
    return "secure-boot" not in features


def select(machine: str | None, secure_boot: bool, dirs: t.Sequence[str] | None = None) -> Firmware:
    """The firmware for an x86_64 VM of `machine` type; QemuInitError naming the packages when there is none."""
    looked = dirs if dirs is not None else search_dirs()
    found = descriptors(looked)
    for path in found:
        try:
            doc = read_json(path, "firmware descriptor")
        except FileReadError:
            continue  # a broken descriptor is skipped, as QEMU's consumers do
        if not isinstance(doc, dict) or not _fits(doc, machine, secure_boot):
            continue
        mapping = doc["mapping"]
        code, template = mapping["executable"], mapping["nvram-template"]
        if not (os.path.isfile(code.get("filename", "")) and os.path.isfile(template.get("filename", ""))):
            continue
        return Firmware(path, code["filename"], code.get("format", "raw"), template["filename"], template.get("format", "raw"),
                        secure_boot, "requires-smm" in doc.get("features", []))
    what = "UEFI firmware with secure boot and enrolled keys" if secure_boot else "UEFI firmware"
    if not found:
        raise QemuInitError("firmware: no %s found: no QEMU firmware descriptors in %s; install OVMF (%s)"
                            % (what, ", ".join(looked), PACKAGES))
    hint = "; secure boot needs machine: q35 (SMM)" if secure_boot and not is_q35(machine) else ""
    raise QemuInitError("firmware: none of the firmware descriptors (%s) describes %s for x86_64 machine %s%s"
                        % (", ".join(os.path.basename(p) for p in found), what, machine or "pc (the default)", hint))


def is_q35(machine: str | None) -> bool:
    return machine is not None and (machine == "q35" or machine.startswith("pc-q35-"))
