# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Firmware selection through QEMU's descriptors: written to temp dirs, and the host's own where installed."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _firmware
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError


def descriptor(directory, name, code, template, machines=("pc-i440fx-*", "pc-q35-*"), features=(), interface="uefi"):
    os.makedirs(str(directory), exist_ok=True)
    for path in (code, template):
        with open(path, "wb") as handle:
            handle.write(b"\0" * 16)
    doc = {"interface-types": [interface],
           "mapping": {"device": "flash", "executable": {"filename": code, "format": "raw"},
                       "nvram-template": {"filename": template, "format": "raw"}},
           "targets": [{"architecture": "x86_64", "machines": list(machines)}], "features": list(features)}
    with open(os.path.join(str(directory), name), "w") as handle:
        json.dump(doc, handle)


@pytest.fixture
def fw(tmp_path):
    d = tmp_path / "share"
    descriptor(d, "40-secure.json", str(tmp_path / "ms.fd"), str(tmp_path / "ms-vars.fd"), ("pc-q35-*",),
               ("secure-boot", "enrolled-keys", "requires-smm"))
    descriptor(d, "60-plain.json", str(tmp_path / "code.fd"), str(tmp_path / "vars.fd"))
    return tmp_path


def test_plain_uefi_skips_secure_boot_descriptors(fw):
    chosen = _firmware.select(None, False, [str(fw / "share")])
    assert (chosen.code, chosen.vars_template, chosen.secure_boot, chosen.requires_smm) == (
        str(fw / "code.fd"), str(fw / "vars.fd"), False, False)


def test_secure_boot_needs_q35_and_takes_the_enrolled_one(fw):
    chosen = _firmware.select("q35", True, [str(fw / "share")])
    assert chosen.code == str(fw / "ms.fd") and chosen.requires_smm
    with pytest.raises(QemuInitError, match="secure boot needs machine: q35"):
        _firmware.select("pc", True, [str(fw / "share")])


def test_a_later_directory_replaces_and_an_empty_file_hides(fw):
    etc = fw / "etc"
    descriptor(etc, "60-plain.json", str(fw / "other.fd"), str(fw / "other-vars.fd"))
    assert _firmware.select(None, False, [str(fw / "share"), str(etc)]).code == str(fw / "other.fd")
    with open(str(etc / "60-plain.json"), "w"):
        pass
    with pytest.raises(QemuInitError, match="none of the firmware descriptors"):
        _firmware.select(None, False, [str(fw / "share"), str(etc)])


def test_missing_files_and_other_interfaces_are_skipped(fw):
    d = fw / "more"
    descriptor(d, "10-bios.json", str(fw / "b.fd"), str(fw / "bv.fd"), interface="bios")
    descriptor(d, "20-gone.json", str(fw / "gone.fd"), str(fw / "gone-vars.fd"))
    os.unlink(str(fw / "gone.fd"))
    assert _firmware.select(None, False, [str(fw / "share"), str(d)]).code == str(fw / "code.fd")


def test_no_descriptor_at_all_names_the_packages(tmp_path):
    with pytest.raises(QemuInitError, match="install OVMF .*ovmf.*edk2-ovmf"):
        _firmware.select(None, False, [str(tmp_path / "none")])


@pytest.mark.skipif(not os.path.exists("/usr/share/qemu/firmware/60-edk2-x86_64.json"), reason="needs Debian's ovmf")
def test_debian_ovmf():
    assert _firmware.select(None, False, ["/usr/share/qemu/firmware"]).code == "/usr/share/OVMF/OVMF_CODE_4M.fd"
    assert _firmware.select("q35", True, ["/usr/share/qemu/firmware"]).vars_template == "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
