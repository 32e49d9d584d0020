# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The FAT12 writer, checked by the tools that know FAT: fsck.fat (dosfstools), mtools and blkid."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._fat import fat12_image

needs = pytest.mark.skipif(not all(shutil.which(t) for t in ("fsck.fat", "mtype", "mdir", "blkid")),
                           reason="needs dosfstools, mtools and blkid")
SEED = [("user-data", b"#cloud-config\nhostname: web1\n"), ("meta-data", b"instance-id: i-1\nlocal-hostname: web1\n"),
        ("network-config", b"version: 2\n" + b"#" * 9000), ("vendor-data", b"")]


def write(tmp_path, files, label="cidata"):
    path = str(tmp_path / "seed.img")
    with open(path, "wb") as handle:
        handle.write(fat12_image(label, files))
    return path


@needs
def test_fsck_finds_nothing_and_every_file_reads_back(tmp_path):
    path = write(tmp_path, SEED)
    check = subprocess.run(["fsck.fat", "-n", path], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert "\n  " not in check.stdout  # fsck prints each finding indented
    for name, content in SEED:
        out = subprocess.run(["mtype", "-i", path, "::" + name], capture_output=True, check=True).stdout
        assert out == content, name
    listing = subprocess.run(["mdir", "-i", path, "::"], capture_output=True, text=True, check=True).stdout
    assert "Volume in drive : is CIDATA" in listing


@needs
def test_blkid_sees_the_cidata_label(tmp_path):
    out = subprocess.run(["blkid", "-o", "export", write(tmp_path, SEED)], capture_output=True, text=True, check=True).stdout
    assert "LABEL=CIDATA" in out.splitlines() and "TYPE=vfat" in out.splitlines()


@needs
def test_large_file_takes_bigger_clusters(tmp_path):
    content = bytes(range(256)) * 12000  # 3 MB: more than 4084 clusters of one sector
    path = write(tmp_path, [("user-data", content)])
    assert subprocess.run(["fsck.fat", "-n", path], capture_output=True, check=False).returncode == 0
    assert subprocess.run(["mtype", "-i", path, "::user-data"], capture_output=True, check=True).stdout == content


def test_same_content_same_image_and_a_change_shows():
    assert fat12_image("cidata", SEED) == fat12_image("cidata", SEED)
    assert fat12_image("cidata", SEED) != fat12_image("cidata", [SEED[0], ("meta-data", b"instance-id: i-2\n")] + SEED[2:])


@pytest.mark.parametrize("label, files, problem", [
    ("", SEED, "label"), ("twelve-chars", SEED, "label"), ("cidata", [("f%d" % i, b"") for i in range(200)], "too many"),
])
def test_refusals(label, files, problem):
    with pytest.raises(ValueError, match=problem):
        fat12_image(label, files)
