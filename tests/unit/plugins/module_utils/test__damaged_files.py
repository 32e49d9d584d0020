# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Damaged registry and cfg files: a clear error that names the file and points to the documented
recovery, and the file left byte for byte (the faults_files integration target does the same with
every module against real files)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Registry, RegistryError
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import manager, run_vm_config

DAMAGED_CFGS = [
    (b'NAME="web1"\nMEMORY="12', "unterminated double quote"),
    (b'NAME="web1"\nMEMORY="128"\n\xff\xfe\n', "not UTF-8 text"),
]


@pytest.mark.parametrize("text", [
    "web1 web1 0\nweb2 web2 0\n",
    "web1 web1 0\nweb1 web2 1\n",
    "web1 web1 0\nweb2 web1 1\n",
])
def test_a_name_or_slot_registered_twice_points_to_the_recovery(tmp_path, text):
    (tmp_path / "qemu-init.reg").write_text(text)
    with pytest.raises(RegistryError) as exc:
        Registry(str(tmp_path)).read()
    assert "registered twice" in exc.value.msg
    assert "docs/registry.md (recovery)" in exc.value.msg
    assert (tmp_path / "qemu-init.reg").read_text() == text


def _write_cfg(tmp_path, data):
    vms = tmp_path / "etc" / "vms"
    vms.mkdir(parents=True)
    path = vms / "web1-qemu.cfg"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, problem", DAMAGED_CFGS)
def test_vm_modules_refuse_a_damaged_cfg_and_point_to_the_recovery(tmp_path, data, problem):
    path = _write_cfg(tmp_path, data)
    with pytest.raises(QemuInitError) as exc:
        manager(tmp_path).load(["web1"])
    assert str(path) in exc.value.msg and problem in exc.value.msg
    assert "docs/cfg-format.md, recovery" in exc.value.msg
    assert path.read_bytes() == data


@pytest.mark.parametrize("data, problem", DAMAGED_CFGS)
def test_vm_config_refuses_to_overwrite_a_damaged_cfg(tmp_path, data, problem):
    path = _write_cfg(tmp_path, data)
    result, failed, calls = run_vm_config(dict(name="web1", memory=256, config_dir=str(tmp_path / "etc"),
                                               run_dir=str(tmp_path / "run")))
    assert failed and calls == []  # no command: the damaged file stops it first
    assert str(path) in result["msg"] and problem in result["msg"]
    assert "docs/cfg-format.md, recovery" in result["msg"]
    assert path.read_bytes() == data
    assert not os.path.exists(tmp_path / "etc" / "qemu-init.reg")
