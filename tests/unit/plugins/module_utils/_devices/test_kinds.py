# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real-OS device kinds (firmware, tpm, agent, cidata, disks made by the collection): cfg round trip, argv,
and the refusals, each naming the parameter."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _firmware
from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import firmware
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.context import DeviceContext
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_cfg, from_params

RUN = RunPaths("/run/qemu-init", "web1")
STATE = StatePaths("/var/lib/qemu-init", "web1")


def spec_of(**params):
    return from_params(dict(dict(name="web1"), **params), check_files=False)


def argv_of(spec):
    return build_argv(spec, "qemu", RUN, ports_info(30320, 0), "web1", "tcg", state_paths=STATE)


def round_trip(spec):
    text = spec.render_onto(None)
    again = from_cfg(CfgFile.parse(text, "x"), "x")
    assert again == spec
    return text


@pytest.fixture
def ovmf(tmp_path, monkeypatch):
    """A firmware descriptor directory with one plain and one secure-boot OVMF build (files that exist)."""
    for name, secure in (("60-plain.json", False), ("50-secure.json", True)):
        code, vars_ = tmp_path / (name + ".code"), tmp_path / (name + ".vars")
        code.write_bytes(b"c")
        vars_.write_bytes(b"VARS" + name.encode())
        features = ["secure-boot", "enrolled-keys", "requires-smm"] if secure else []
        doc = {"interface-types": ["uefi"],
               "mapping": {"device": "flash", "mode": "split", "executable": {"filename": str(code), "format": "raw"},
                           "nvram-template": {"filename": str(vars_), "format": "raw"}},
               "targets": [{"architecture": "x86_64", "machines": ["pc-i440fx-*", "pc-q35-*"]}], "features": features}
        (tmp_path / name).write_text(json.dumps(doc))
    monkeypatch.setattr(_firmware, "SEARCH_DIRS", (str(tmp_path),))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    return tmp_path


def test_uefi_argv_uses_the_descriptor_and_the_vms_own_vars(ovmf):
    spec = spec_of(firmware="uefi")
    argv = argv_of(spec)
    assert "-drive" in argv
    flash = [a for a in argv if a.startswith("if=pflash")]
    assert flash == ["if=pflash,format=raw,unit=0,readonly=on,file=%s/60-plain.json.code" % ovmf,
                     "if=pflash,format=raw,unit=1,file=/var/lib/qemu-init/web1/efi-vars.fd"]
    assert "-machine" not in argv
    assert "FIRMWARE=\"uefi\"" in round_trip(spec)


def test_secure_boot_takes_q35_with_smm_and_locks_the_flash(ovmf):
    spec = spec_of(firmware="uefi", secure_boot=True)
    argv = argv_of(spec)
    assert argv[argv.index("-machine") + 1] == "q35,smm=on"
    assert "driver=cfi.pflash01,property=secure,value=on" in argv
    assert any(a.endswith("50-secure.json.code") for a in argv)
    round_trip(spec)


def test_uefi_vars_are_copied_once_and_kept(ovmf, tmp_path):
    state = StatePaths(str(tmp_path / "state"), "web1")
    ctx = DeviceContext(spec_of(firmware="uefi"), RUN, state, "web1")
    assert firmware.prepare(ctx) is True
    assert stat_mode(state.efi_vars) == 0o600
    size = os.path.getsize(state.efi_vars)
    guest = b"written by the guest"[:size].ljust(size, b"!")  # the guest changes variables, never the file's size
    with open(state.efi_vars, "wb") as f:
        f.write(guest)
    assert firmware.prepare(ctx) is False
    assert open(state.efi_vars, "rb").read() == guest


def test_uefi_vars_of_another_size_are_refused_and_kept(ovmf, tmp_path):
    state = StatePaths(str(tmp_path / "state"), "web1")
    ctx = DeviceContext(spec_of(firmware="uefi"), RUN, state, "web1")
    firmware.prepare(ctx)
    with open(state.efi_vars, "ab") as f:
        f.write(b"x" * 4096)
    damaged = open(state.efi_vars, "rb").read()
    with pytest.raises(QemuInitError, match=r"^VM web1: the UEFI variables file .*efi-vars.fd is damaged: \d+ bytes, "
                                            r"the firmware's template .* has \d+; it is left as it is\. Move it aside"):
        firmware.prepare(ctx)
    assert open(state.efi_vars, "rb").read() == damaged
    os.rename(state.efi_vars, state.efi_vars + ".damaged")
    assert firmware.prepare(ctx) is True  # the recovery: a fresh copy


def test_uefi_vars_are_copied_again_when_secure_boot_changes(ovmf, tmp_path):
    # The variables hold secure boot's keys: kept across the change, they would go on enforcing (or never enforce) it.
    state = StatePaths(str(tmp_path / "state"), "web1")
    plain, secure = spec_of(firmware="uefi"), spec_of(firmware="uefi", secure_boot=True)
    assert firmware.prepare(DeviceContext(plain, RUN, state, "web1")) is True
    assert json.loads(open(state.efi_vars_record).read()) == dict(secure_boot=False, template=str(ovmf / "60-plain.json.vars"))
    assert stat_mode(state.efi_vars_record) == 0o600
    assert firmware.prepare(DeviceContext(secure, RUN, state, "web1")) is True
    assert open(state.efi_vars, "rb").read() == b"VARS50-secure.json"
    assert json.loads(open(state.efi_vars_record).read())["secure_boot"] is True
    assert firmware.prepare(DeviceContext(secure, RUN, state, "web1")) is False  # same setting: the VM's, kept
    assert firmware.prepare(DeviceContext(plain, RUN, state, "web1")) is True
    assert open(state.efi_vars, "rb").read() == b"VARS60-plain.json"


@pytest.mark.parametrize("record", [None, "{not json", json.dumps(dict(secure_boot="yes")), json.dumps([False])])
def test_uefi_vars_of_unknown_origin_are_kept_whatever_secure_boot_says(ovmf, tmp_path, record):
    # Copied before efi-vars.json existed (or the record is damaged): which keys they hold is not known, so they stay.
    state = StatePaths(str(tmp_path / "state"), "web1")
    assert firmware.prepare(DeviceContext(spec_of(firmware="uefi"), RUN, state, "web1")) is True
    os.unlink(state.efi_vars_record)
    if record is not None:
        with open(state.efi_vars_record, "w") as handle:
            handle.write(record)
    guest = b"G" * os.path.getsize(ovmf / "50-secure.json.vars")  # the fixture's templates differ in size; real ones do not
    with open(state.efi_vars, "wb") as handle:
        handle.write(guest)
    assert firmware.prepare(DeviceContext(spec_of(firmware="uefi", secure_boot=True), RUN, state, "web1")) is False
    assert open(state.efi_vars, "rb").read() == guest


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


def test_bios_is_the_default_and_adds_nothing():
    spec = spec_of()
    assert spec.firmware == "bios" and not any("pflash" in a for a in argv_of(spec))
    assert "FIRMWARE" not in spec.render_onto(None)


@pytest.mark.parametrize("params, param, problem", [
    (dict(secure_boot=True), "secure_boot", "needs firmware: uefi"),
    (dict(firmware="uefi", secure_boot=True, machine="pc"), "secure_boot", "needs a q35 machine"),
    (dict(firmware="coreboot"), "firmware", "is not one of bios, uefi"),
    (dict(disks=[dict(file="/d/a.qcow2", base_image="/d/a.qcow2")]), "disks[0].base_image", "is the disk itself"),
    (dict(disks=[dict(file="/d/a.img", base_image="/d/b.qcow2", format="raw")]), "disks[0].format", "is qcow2, not raw"),
    (dict(disks=[dict(file="/d/a.qcow2", size="12Q")]), "disks[0].size", "is not a size"),
    (dict(disks=[dict(file="/d/a.qcow2", cache="fast")]), "disks[0].cache", "is not one of"),
    (dict(cidata="relative.img"), "cidata", "absolute"),
    (dict(cidata="/s/c.img", cidata_id="bad id"), "cidata_id", "is not an instance-id"),
])
def test_refusals_name_the_parameter(params, param, problem):
    with pytest.raises(ParameterError) as info:
        spec_of(**params)
    assert info.value.param == param and problem in info.value.problem


def test_tpm_agent_seed_and_disk_options_argv_and_cfg():
    spec = spec_of(tpm=True, guest_agent=True, cidata="/var/lib/qemu-init/web1/cidata.img", cidata_id="iid-1234",
                   disks=[dict(file="/d/root.qcow2", base_image="/img/debian.qcow2", size="8G", cache="none",
                               discard="unmap", interface="virtio")])
    argv = argv_of(spec)
    joined = " ".join(argv)
    assert "-drive file=/d/root.qcow2,format=qcow2,if=virtio,media=disk,snapshot=off,cache=none,discard=unmap" in joined
    assert "-drive file=/var/lib/qemu-init/web1/cidata.img,format=raw,if=virtio,media=disk,readonly=on,id=cidata-iid-1234" in joined
    assert "-chardev socket,id=qga0,path=/run/qemu-init/web1/qga.sock,server=on,wait=off" in joined
    assert "virtserialport,bus=qgaserial0.0,chardev=qga0,name=org.qemu.guest_agent.0" in joined
    assert "-tpmdev emulator,id=tpm0,chardev=chrtpm" in joined
    text = round_trip(spec)
    for line in ('DSK1_BASE="/img/debian.qcow2"', 'DSK1_SIZE="8G"', 'DSK1_CACHE="none"', 'DSK1_DISCARD="unmap"', 'TPM="yes"',
                 'GUEST_AGENT="yes"', 'CIDATA="/var/lib/qemu-init/web1/cidata.img"', 'CIDATA_ID="iid-1234"'):
        assert line in text
    # A new instance-id (re-seeded user-data) changes the launch arguments: restart_required compares those.
    reseeded = spec_of(tpm=True, guest_agent=True, cidata="/var/lib/qemu-init/web1/cidata.img", cidata_id="iid-5678",
                       disks=[dict(file="/d/root.qcow2", base_image="/img/debian.qcow2", size="8G", cache="none",
                                   discard="unmap", interface="virtio")])
    assert argv_of(reseeded) != argv and "id=cidata-iid-5678" in " ".join(argv_of(reseeded))
