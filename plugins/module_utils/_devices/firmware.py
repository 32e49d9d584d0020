# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""firmware: bios (SeaBIOS, QEMU's default) or uefi (OVMF found through QEMU's firmware descriptors, _firmware.py),
with secure_boot. FIRMWARE, SECURE_BOOT in the cfg. The per-VM UEFI variables are copied once from the
descriptor's template into the state dir and kept: a restart keeps the boot entries the guest wrote.

The variables also hold secure boot's keys: a secure-boot template has them enrolled, a plain one has none, and the
firmware enforces whatever keys the variables hold (OVMF's plain build too). So the copy is made again when
secure_boot changed since it was made (efi-vars.json records for which setting): kept, the old variables would go
on enforcing secure boot after it was turned off, and never enforce it after it was turned on."""

from __future__ import annotations

import contextlib
import json
import os
import shutil

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import atomic_write, read_json

FIRMWARES = ("bios", "uefi")
DEFAULT = "bios"
CFG_KEY_PATTERN = r"FIRMWARE|SECURE_BOOT"
# Secure boot needs SMM, which QEMU's x86 machines offer on q35 only.
SECURE_BOOT_MACHINE = "q35"


def build(spec, firmware, secure_boot, where):
    if firmware not in FIRMWARES:
        raise ParameterError(where("firmware"), "%r is not one of %s" % (firmware, ", ".join(FIRMWARES)))
    if secure_boot and firmware != "uefi":
        raise ParameterError(where("secure_boot"), "secure boot needs firmware: uefi")
    if secure_boot and spec.machine:
        # The OVMF descriptor search is imported for UEFI VMs only (test_lazy_imports.py).
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _firmware

        if not _firmware.is_q35(spec.machine):
            raise ParameterError(where("secure_boot"), "secure boot needs a q35 machine (SMM), not %s" % spec.machine)
    spec.firmware = firmware
    spec.secure_boot = bool(secure_boot)


def cfg_items(spec):
    items = []
    if spec.firmware != DEFAULT:
        items.append(("FIRMWARE", spec.firmware))
    if spec.secure_boot:
        items.append(("SECURE_BOOT", "yes"))
    return items


def machine(spec):
    """The -machine value: the VM's own, q35 for secure boot when it names none; SMM on for secure boot."""
    value = spec.machine or (SECURE_BOOT_MACHINE if spec.secure_boot else None)
    if value and spec.secure_boot:
        value += ",smm=on"
    return value


def select(spec):
    """The OVMF build for spec (a clear error naming the packages when none is installed)."""
    from ansible_collections.qemu_init.qemu.plugins.module_utils import _firmware

    return _firmware.select(spec.machine or (SECURE_BOOT_MACHINE if spec.secure_boot else None), spec.secure_boot)


def check_host(spec):
    """ParameterError when this host has no UEFI firmware for spec: vm_config checks it before it writes anything,
    so that a VM it configured does not fail only at launch."""
    if spec.firmware != "uefi":
        return
    try:
        select(spec)
    except QemuInitError as exc:
        msg = exc.msg[len("firmware: "):] if exc.msg.startswith("firmware: ") else exc.msg
        raise ParameterError("secure_boot" if spec.secure_boot else "firmware", msg) from None


def argv(ctx):
    spec = ctx.spec
    if spec.firmware != "uefi":
        return []
    chosen = select(spec)
    args = ["-drive", "if=pflash,format=%s,unit=0,readonly=on,file=%s" % (chosen.code_format, esc(chosen.code)),
            "-drive", "if=pflash,format=%s,unit=1,file=%s" % (chosen.vars_format, esc(ctx.state.efi_vars))]
    if spec.secure_boot:
        # Only SMM code may then write the flash holding the variables: the guest OS cannot change its own keys.
        args += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    return args


def prepare(ctx):
    """Copy the variables template to the state dir (0600) once, and again when secure_boot changed since; an
    existing vars file made for this setting, or of unknown origin (copied before efi-vars.json existed), is the
    VM's and kept. Returns whether a copy was made.

    An existing one whose size is not the template's is refused, naming the file: QEMU would only say
    "pflash1 has invalid size" (or, at a multiple of 4 KiB, boot a firmware that cannot find its store)."""
    spec = ctx.spec
    if spec.firmware != "uefi":
        return False
    chosen = select(spec)
    if os.path.exists(ctx.state.efi_vars) and _made_for(ctx.state) in (None, spec.secure_boot):
        _check_vars(spec.name, ctx.state.efi_vars, chosen)
        return False
    os.makedirs(ctx.state.dir, mode=0o700, exist_ok=True)
    tmp = ctx.state.efi_vars + ".tmp"
    try:
        with open(chosen.vars_template, "rb") as src, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, ctx.state.efi_vars)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise QemuInitError("VM %s: copying the UEFI variables template %s to %s failed: %s"
                            % (spec.name, chosen.vars_template, ctx.state.efi_vars, exc.strerror or exc)) from exc
    # After the copy: a record that did not get written leaves the copy of unknown origin, which is kept.
    atomic_write(ctx.state.efi_vars_record, json.dumps(dict(secure_boot=spec.secure_boot, template=chosen.vars_template)) + "\n",
                 mode=0o600)
    return True


def _made_for(state):
    """The secure_boot setting the VM's vars file was copied for (efi-vars.json), or None when that is not known."""
    try:
        record = read_json(state.efi_vars_record, "UEFI variables record", state.name)
    except QemuInitError:
        return None  # not a file, not JSON: unknown, as without a record
    value = record.get("secure_boot") if isinstance(record, dict) else None
    return value if isinstance(value, bool) else None


def _check_vars(name, path, chosen):
    try:
        size, want = os.stat(path).st_size, os.stat(chosen.vars_template).st_size
    except OSError as exc:
        raise QemuInitError("VM %s: reading the UEFI variables %s failed: %s" % (name, exc.filename, exc.strerror or exc)) from exc
    if size != want:
        raise QemuInitError("VM %s: the UEFI variables file %s is damaged: %d bytes, the firmware's template %s has %d; "
                            "it is left as it is. Move it aside and start the VM again for a fresh copy of the template "
                            "(boot entries the guest wrote are lost): see docs/faults.md"
                            % (name, path, size, chosen.vars_template, want))
