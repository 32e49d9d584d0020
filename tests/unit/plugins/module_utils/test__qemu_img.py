# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""qemu-img through the QemuImg command class, against the real qemu-img on temp files."""

from __future__ import annotations

import os
import shutil

import pytest
from ansible.module_utils import basic

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_img import QemuImg, parse_size
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import patch_module_args

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img (qemu-utils)")


@pytest.mark.parametrize("value, size", [
    ("20G", 20 * 1024 ** 3), ("512M", 512 * 1024 ** 2), ("1T", 1024 ** 4), ("64k", 65536), ("10GiB", 10 * 1024 ** 3),
    (1048576, 1048576), ("1048576", 1048576),
])
def test_parse_size(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "G", "-1G", "1.5G", "20X", 0, 1000, True, "1 G B"])
def test_parse_size_refuses(value):
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.fixture
def img():
    with patch_module_args({}):
        module = basic.AnsibleModule(argument_spec={})
    return QemuImg(module)


@needs_qemu_img
def test_overlay_info_chain_and_resize(tmp_path, img):
    base, overlay, blank = (str(tmp_path / n) for n in ("base.qcow2", "web1.qcow2", "data.raw"))
    img.create(base, "qcow2", parse_size("64M"))
    img.create_overlay(overlay, base, "qcow2")
    info = img.info(overlay)
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 * 1024 ** 2
    assert info["backing-filename"] == base and info["backing-filename-format"] == "qcow2"
    assert [i["filename"] for i in img.info(overlay, chain=True)] == [overlay, base]
    img.resize(overlay, "qcow2", parse_size("128M"))
    assert img.info(overlay)["virtual-size"] == 128 * 1024 ** 2
    assert img.info(base)["virtual-size"] == 64 * 1024 ** 2  # the base is never written
    img.create(blank, "raw", parse_size("1M"))
    assert img.info(blank)["format"] == "raw" and os.path.getsize(blank) == 1024 ** 2


@needs_qemu_img
def test_errors_say_what_was_attempted(tmp_path, img):
    with pytest.raises(QemuInitError, match="reading .*missing.qcow2 \\(qemu-img info\\) failed"):
        img.info(str(tmp_path / "missing.qcow2"))
    img.create(str(tmp_path / "d.qcow2"), "qcow2", parse_size("2M"))
    with pytest.raises(QemuInitError, match="growing .* failed"):
        img.resize(str(tmp_path / "d.qcow2"), "qcow2", parse_size("1M"))  # shrinking is refused by qemu-img itself
