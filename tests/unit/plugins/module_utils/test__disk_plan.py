# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""_disk_plan: pure planning against canned `qemu-img info` JSON, then the real qemu-img (and one real QEMU for
the online grow) in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from ansible.module_utils import basic

from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan as dp
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_img import QemuImg
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import patch_module_args

MiB = 1024 ** 2
GiB = 1024 ** 3
QEMU_IMG = shutil.which("qemu-img")
QEMU = shutil.which("qemu-system-x86_64")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="needs qemu-img (qemu-utils)")
needs_qemu = pytest.mark.skipif(QEMU is None or QEMU_IMG is None, reason="needs qemu-system-x86_64 and qemu-img")


def entry(filename, size=64 * MiB, fmt="qcow2", backing=None, backing_fmt="qcow2"):
    """One element of `qemu-img info --output=json --backing-chain` as qemu-img 7.2 prints it (trimmed)."""
    info = {"virtual-size": size, "filename": filename, "format": fmt, "actual-size": 200704, "dirty-flag": False}
    if fmt == "qcow2":
        info["cluster-size"] = 65536
    if backing:
        info.update({"backing-filename": backing, "full-backing-filename": backing, "backing-filename-format": backing_fmt})
    return info


def state(path, *entries, problem=None):
    return dp.DiskState(path, list(entries), problem)


MISSING = dp.DiskState("/vm/web1/disk.qcow2", [])
BASE = state("/img/debian.qcow2", entry("/img/debian.qcow2", 2 * GiB))


def want(**kw):
    kw.setdefault("file", "/vm/web1/disk.qcow2")
    kw.setdefault("param", "disks[0]")
    return dp.DiskWant(**kw)


# -- pure planning ---------------------------------------------------------------------------------------------

def test_blank_disk_is_qcow2_unless_told():
    plan = dp.plan_disk(want(size=20 * GiB), MISSING)
    assert plan == dp.DiskPlan("create_blank", "/vm/web1/disk.qcow2", "qcow2", 20 * GiB)
    assert plan.changes
    assert dp.plan_disk(want(size=GiB, format="raw"), MISSING).format == "raw"


def test_no_file_no_base_no_size_says_what_to_give():
    plan = dp.plan_disk(want(), MISSING)
    assert plan.action == "error" and not plan.changes
    assert plan.message == ("disks[0].file: /vm/web1/disk.qcow2 does not exist: give size to create a blank disk, "
                            "or base_image to create an overlay on an image")


def test_overlay_on_base_reads_the_base_format():
    raw_base = state("/img/b.raw", entry("/img/b.raw", GiB, fmt="raw"))
    plan = dp.plan_disk(want(base_image="/img/b.raw"), MISSING, raw_base)
    assert plan == dp.DiskPlan("create_overlay", "/vm/web1/disk.qcow2", "qcow2", GiB, None, "/img/b.raw", "raw")


def test_overlay_larger_than_base_and_never_smaller():
    plan = dp.plan_disk(want(base_image="/img/debian.qcow2", size=20 * GiB), MISSING, BASE)
    assert (plan.action, plan.size, plan.base_format) == ("create_overlay", 20 * GiB, "qcow2")
    plan = dp.plan_disk(want(base_image="/img/debian.qcow2", size=GiB), MISSING, BASE)
    assert plan.action == "error"
    assert plan.message == ("disks[0].size: 1 GiB (1073741824 bytes) is smaller than base_image /img/debian.qcow2 "
                            "(2 GiB (2147483648 bytes)): an overlay is never smaller than its base")


def test_missing_base_image():
    plan = dp.plan_disk(want(base_image="/img/gone.qcow2"), MISSING, dp.DiskState("/img/gone.qcow2", []))
    assert plan.message == "disks[0].base_image: /img/gone.qcow2 does not exist (disks[0].file /vm/web1/disk.qcow2 is to be an overlay on it)"


def test_base_image_is_an_absolute_path():
    assert dp.plan_disk(want(base_image="debian.qcow2"), MISSING, BASE).message == "disks[0].base_image: debian.qcow2 is not an absolute path"


def test_overlay_is_always_qcow2():
    plan = dp.plan_disk(want(base_image="/img/debian.qcow2", format="raw"), MISSING, BASE)
    assert plan.message == "disks[0].format: raw, but an overlay on base_image is always qcow2"


def test_base_image_that_is_the_file_itself(tmp_path):
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"")
    (tmp_path / "alias.qcow2").symlink_to(disk)
    plan = dp.plan_disk(want(file=str(disk), base_image=str(tmp_path / "alias.qcow2")), state(str(disk), entry(str(disk))))
    assert plan.action == "error"
    assert plan.message.startswith("disks[0].base_image: %s is the disk's own file (disks[0].file: %s)" % (tmp_path / "alias.qcow2", disk))


def test_existing_overlay_on_another_base_names_both():
    disk = state("/vm/web1/disk.qcow2", entry("/vm/web1/disk.qcow2", backing="/img/old.qcow2"), entry("/img/old.qcow2"))
    plan = dp.plan_disk(want(base_image="/img/debian.qcow2"), disk)
    assert plan.message == ("disks[0].base_image: /img/debian.qcow2, but disks[0].file /vm/web1/disk.qcow2 exists and is an "
                            "overlay on /img/old.qcow2: set base_image to /img/old.qcow2, or remove /vm/web1/disk.qcow2 to "
                            "have it made anew on /img/debian.qcow2")


def test_existing_disk_without_backing_file_and_a_base_image():
    plan = dp.plan_disk(want(base_image="/img/debian.qcow2"), state("/vm/web1/disk.qcow2", entry("/vm/web1/disk.qcow2")))
    assert "exists and is a disk without a backing file: leave base_image out" in plan.message


def test_base_anywhere_down_the_chain_is_the_same_base():
    """An external snapshot on top of the overlay (disk -> overlay -> base) still stands on base_image."""
    disk = state("/vm/web1/disk.qcow2", entry("/vm/web1/disk.qcow2", backing="/vm/web1/mid.qcow2"),
                 entry("/vm/web1/mid.qcow2", backing="/img/debian.qcow2"), entry("/img/debian.qcow2"))
    assert dp.plan_disk(want(base_image="/img/debian.qcow2"), disk).action == "none"


def test_relative_backing_names_are_relative_to_the_overlay():
    disk = state("/vm/web1/disk.qcow2", entry("disk.qcow2", backing="../../img/debian.qcow2"), entry("/img/debian.qcow2"))
    assert dp.chain_paths(disk) == ["/vm/web1/disk.qcow2", "/vm/web1/../../img/debian.qcow2"]
    assert dp.plan_disk(want(base_image="/img/debian.qcow2"), disk).action == "none"


def test_sizes_none_grow_and_never_shrink():
    disk = state("/vm/web1/disk.qcow2", entry("/vm/web1/disk.qcow2", 10 * GiB, fmt="raw"))
    assert dp.plan_disk(want(), disk) == dp.DiskPlan("none", "/vm/web1/disk.qcow2", "raw", 10 * GiB, 10 * GiB)
    assert dp.plan_disk(want(size=10 * GiB), disk).action == "none"
    assert dp.plan_disk(want(size=20 * GiB), disk) == dp.DiskPlan("grow_offline", "/vm/web1/disk.qcow2", "raw", 20 * GiB, 10 * GiB)
    online = dp.plan_disk(want(size=20 * GiB), disk, running=True, drive="virtio0")
    assert (online.action, online.size, online.drive) == ("grow_online", 20 * GiB, "virtio0")
    plan = dp.plan_disk(want(size=5 * GiB), disk, running=True)
    assert plan.message == ("disks[0].size: 5 GiB (5368709120 bytes) is smaller than /vm/web1/disk.qcow2's current virtual "
                            "size, 10 GiB (10737418240 bytes): disks are never shrunk")


def test_format_given_must_be_what_the_file_is():
    disk = state("/vm/web1/disk.qcow2", entry("/vm/web1/disk.qcow2", fmt="raw"))
    assert dp.plan_disk(want(format="qcow2"), disk).message == "disks[0].format: qcow2, but qemu-img reads /vm/web1/disk.qcow2 as raw"


def test_a_loop_in_canned_json_and_a_problem_are_errors():
    looped = state("/vm/web1/a.qcow2", entry("/vm/web1/a.qcow2", backing="/vm/web1/b.qcow2"),
                   entry("/vm/web1/b.qcow2", backing="/vm/web1/a.qcow2"), entry("/vm/web1/a.qcow2"))
    plan = dp.plan_disk(want(file="/vm/web1/a.qcow2"), looped)
    assert plan.message == ("disks[0].file: /vm/web1/a.qcow2: its backing chain is a loop: "
                            "/vm/web1/a.qcow2 -> /vm/web1/b.qcow2 -> /vm/web1/a.qcow2")
    broken = state("/vm/web1/a.qcow2", problem="its backing file /img/x (of /vm/web1/a.qcow2) does not exist")
    assert dp.plan_disk(want(file="/vm/web1/a.qcow2", size=GiB), broken).message == (
        "disks[0].file: /vm/web1/a.qcow2: its backing file /img/x (of /vm/web1/a.qcow2) does not exist")
    bad_base = state("/img/debian.qcow2", problem="its backing chain is a loop: x -> x")
    assert dp.plan_disk(want(base_image="/img/debian.qcow2"), MISSING, bad_base).message == (
        "disks[0].base_image: /img/debian.qcow2: its backing chain is a loop: x -> x")


def test_raise_for_errors_collects_every_message():
    plans = [dp.plan_disk(want(), MISSING), dp.plan_disk(want(size=GiB), MISSING),
             dp.plan_disk(want(param="disks[2]", file="/x"), dp.DiskState("/x", []))]
    with pytest.raises(QemuInitError) as exc:
        dp.raise_for_errors(plans)
    assert exc.value.msg.splitlines() == dp.errors(plans)
    assert [m.split(":")[0] for m in dp.errors(plans)] == ["disks[0].file", "disks[2].file"]
    dp.raise_for_errors(plans[1:2])


@pytest.mark.parametrize("size, text", [(512, "512 bytes"), (64 * MiB, "64 MiB (67108864 bytes)"),
                                        (GiB + 512 * MiB, "1.50 GiB (1610612736 bytes)"), (2 * 1024 ** 4, "2 TiB (2199023255552 bytes)")])
def test_human_size(size, text):
    assert dp.human_size(size) == text


# -- read_state with a fake qemu-img ---------------------------------------------------------------------------

class FakeImg:
    """QemuImg.info from a dict of canned answers: path -> entry; --backing-chain fails like qemu-img on a loop."""

    def __init__(self, entries, chain_error=None):
        self.entries = entries
        self.chain_error = chain_error
        self.calls = []

    def info(self, path, chain=False, fmt=None):
        self.calls.append((path, chain, fmt))
        if chain and self.chain_error:
            raise QemuInitError("reading %s (qemu-img info) failed: x" % path, rc=1, stderr=self.chain_error)
        return [self.entries[path]] if chain else self.entries[path]


def test_read_state_walks_a_loop_qemu_img_refuses(tmp_path):
    a, b = str(tmp_path / "a.qcow2"), str(tmp_path / "b.qcow2")
    for p in (a, b):
        open(p, "wb").close()
    img = FakeImg({a: entry(a, backing=b), b: entry(b, backing=a)}, "qemu-img: Backing file 'a.qcow2' creates an infinite loop.")
    got = dp.read_state(img, a, "qcow2")
    assert got.problem == "its backing chain is a loop: %s -> %s -> %s" % (a, b, a)
    assert img.calls == [(a, True, "qcow2"), (a, False, "qcow2"), (b, False, None)]


def test_read_state_of_nothing_a_dangling_link_and_a_directory(tmp_path):
    img = FakeImg({})
    assert dp.read_state(img, str(tmp_path / "none")) == dp.DiskState(str(tmp_path / "none"), [])
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert dp.read_state(img, str(tmp_path / "link")).problem == "it is a symbolic link to %s, which does not exist" % (tmp_path / "gone")
    assert dp.read_state(img, str(tmp_path)).problem == "it is a directory"
    assert img.calls == []


# -- paths -----------------------------------------------------------------------------------------------------

def test_relative_file_lives_under_the_vm_state_dir(tmp_path):
    sd = str(tmp_path)
    assert dp.resolve_disk_file("disk.qcow2", sd, "web1") == os.path.join(sd, "web1", "disk.qcow2")
    assert dp.resolve_disk_file("sub/../d.raw", sd, "web1") == os.path.join(sd, "web1", "d.raw")
    assert dp.resolve_disk_file("/srv/x.qcow2", sd, "web1") == "/srv/x.qcow2"


@pytest.mark.parametrize("file", ["../web2/disk.qcow2", "..", ".", "a/../../x", ""])
def test_relative_file_must_not_leave_it(tmp_path, file):
    with pytest.raises(ParameterError) as exc:
        dp.resolve_disk_file(file, str(tmp_path), "web1", "disks[1].file")
    assert exc.value.param == "disks[1].file"


def test_symlink_escape_is_refused_and_a_link_inside_is_fine(tmp_path):
    vm = tmp_path / "web1"
    vm.mkdir()
    (vm / "out").symlink_to("/etc")
    (vm / "images").mkdir()
    (vm / "in").symlink_to(vm / "images")
    with pytest.raises(ParameterError) as exc:
        dp.resolve_disk_file("out/disk.qcow2", str(tmp_path), "web1", "disks[0].file")
    assert exc.value.msg == ("disks[0].file: out/disk.qcow2 resolves to /etc/disk.qcow2 through a symbolic link, outside the "
                             "VM's directory %s/ (give an absolute path for a disk elsewhere)" % vm)
    assert dp.resolve_disk_file("in/disk.qcow2", str(tmp_path), "web1") == str(vm / "in" / "disk.qcow2")


@pytest.mark.parametrize("name", ["", "..", "a/b"])
def test_vm_name_must_be_one_directory(tmp_path, name):
    with pytest.raises(ParameterError, match="^name: "):
        dp.resolve_disk_file("d.qcow2", str(tmp_path), name)


# -- clashes ---------------------------------------------------------------------------------------------------

def test_one_writable_disk_two_vms():
    assert dp.find_disk_clashes({"web1": [("/d/shared.qcow2", False)], "web2": [("/d/shared.qcow2", False)]}) == [
        "disk /d/shared.qcow2 is written by VMs web1 and web2: a writable disk belongs to one VM (give each VM its own file, "
        "or an overlay on a shared base_image)"]
    assert dp.find_disk_clashes({"db": [("/d/x", True)], "app": [("/d/x", False)], "web": [("/d/x", True)]}) == [
        "disk /d/x is written by VM app and used by VMs db and web: a writable disk belongs to one VM (give each VM its own "
        "file, or an overlay on a shared base_image)"]


def test_shared_readonly_and_bases_are_fine_twice_in_one_vm_is_not():
    uses = {"web1": [("/vm/web1/d.qcow2", False), ("/img/base.qcow2", True)],
            "web2": [("/vm/web2/d.qcow2", False), ("/img/base.qcow2", True), ("/iso/tools.iso", True)],
            "web3": [("/iso/tools.iso", True)]}
    assert dp.find_disk_clashes(uses) == []
    assert dp.find_disk_clashes({"web1": [("/d/x", False), ("/d/x", True)]}) == [
        "disks: /d/x is attached 2 times to VM web1 and written: a writable disk can be attached once"]


# -- QMP and apply with fakes ----------------------------------------------------------------------------------

QUERY_BLOCK = [  # qemu 7.2, -drive file=...,if=virtio (no id): QEMU names the drive virtio0 and the node itself
    {"device": "virtio0", "qdev": "/machine/peripheral-anon/device[1]/virtio-backend", "locked": False, "removable": False,
     "inserted": {"node-name": "#block142", "file": "/vm/web1/disk.qcow2", "drv": "qcow2", "ro": False,
                  "image": {"virtual-size": 67108864, "filename": "/vm/web1/disk.qcow2", "format": "qcow2"}}},
    {"device": "", "qdev": "/machine/peripheral/data/virtio-backend", "locked": False, "removable": False,
     "inserted": {"node-name": "data-fmt", "file": "/vm/web1/data.raw", "drv": "raw", "ro": False}},
    {"device": "ide1-cd0", "qdev": "/machine/unattached/device[20]", "locked": False, "removable": True, "tray_open": False},
]


class FakeQmp:
    def __init__(self, blocks):
        self.blocks = blocks
        self.sent = []

    def command(self, name, arguments=None, timeout=None):
        self.sent.append((name, arguments))
        return self.blocks if name == "query-block" else {}


@pytest.mark.parametrize("drive, file, node", [("virtio0", None, "#block142"), (None, "/vm/web1/disk.qcow2", "#block142"),
                                               ("data", None, "data-fmt"), ("data-fmt", None, "data-fmt"),
                                               ("nope", "/vm/web1/data.raw", "data-fmt")])
def test_find_block_node(drive, file, node):
    assert dp.find_block_node(FakeQmp(QUERY_BLOCK), drive, file) == node


def test_block_resize_and_its_errors():
    qmp = FakeQmp(QUERY_BLOCK)
    assert dp.block_resize(qmp, 2 * GiB, file="/vm/web1/disk.qcow2") == "#block142"
    assert qmp.sent == [("query-block", None), ("block_resize", {"node-name": "#block142", "size": 2 * GiB})]
    with pytest.raises(QemuInitError) as exc:
        dp.find_block_node(FakeQmp(QUERY_BLOCK), "virtio9")
    assert exc.value.msg == ("the VM has no block device with drive virtio9 (query-block lists: virtio0=/vm/web1/disk.qcow2, "
                             "/machine/peripheral/data/virtio-backend=/vm/web1/data.raw, ide1-cd0=(empty))")


class RecordImg:
    def __init__(self):
        self.calls = []

    def create_overlay(self, *args):
        self.calls.append(("create_overlay",) + args)

    def create(self, *args):
        self.calls.append(("create",) + args)

    def resize(self, *args):
        self.calls.append(("resize",) + args)


def test_apply_plan_calls(tmp_path):
    img, f = RecordImg(), str(tmp_path / "new" / "d.qcow2")
    assert dp.apply_plan(dp.DiskPlan("create_overlay", f, "qcow2", None, None, "/img/b", "raw"), img)
    assert oct(os.stat(tmp_path / "new").st_mode & 0o777) == "0o700"
    assert dp.apply_plan(dp.DiskPlan("create_blank", f, "raw", GiB), img)
    assert dp.apply_plan(dp.DiskPlan("grow_offline", f, "raw", 2 * GiB, GiB), img)
    assert not dp.apply_plan(dp.DiskPlan("none", f, "raw", GiB, GiB), img)
    assert img.calls == [("create_overlay", f, "/img/b", "raw", None), ("create", f, "raw", GiB), ("resize", f, "raw", 2 * GiB)]
    with pytest.raises(QemuInitError, match="^disks\\[0\\].size: no$"):
        dp.apply_plan(dp.DiskPlan("error", f, message="disks[0].size: no"), img)
    with pytest.raises(QemuInitError, match="the create_blank plan lacks a field it needs"):
        dp.apply_plan(dp.DiskPlan("create_blank", f, "raw"), img)
    with pytest.raises(QemuInitError, match="needs the VM's QMP socket"):
        dp.apply_plan(dp.DiskPlan("grow_online", f, "raw", 2 * GiB, GiB), img)
    qmp = FakeQmp(QUERY_BLOCK)
    assert dp.apply_plan(dp.DiskPlan("grow_online", "/vm/web1/disk.qcow2", "qcow2", 2 * GiB, GiB, drive="virtio0"), img, qmp)
    assert qmp.sent[-1] == ("block_resize", {"node-name": "#block142", "size": 2 * GiB})


# -- the real qemu-img -----------------------------------------------------------------------------------------

@pytest.fixture
def img():
    with patch_module_args({}):
        module = basic.AnsibleModule(argument_spec={})
    return QemuImg(module)


def qi(*args):
    subprocess.run([QEMU_IMG] + list(args), check=True, capture_output=True)


def plan_for(img, w, running=False, drive=None):
    st = dp.read_state(img, w.file, w.format)
    base = dp.read_state(img, w.base_image) if w.base_image and not st.exists else None
    return dp.plan_disk(w, st, base, running, drive)


@needs_qemu_img
def test_real_overlay_then_grow_and_the_base_is_never_written(tmp_path, img):
    base, disk = str(tmp_path / "base.qcow2"), str(tmp_path / "web1" / "disk.qcow2")
    qi("create", "-q", "-f", "qcow2", base, "64M")
    before = (os.stat(base).st_mtime_ns, os.path.getsize(base))
    w = dp.DiskWant(disk, base_image=base, param="disks[0]")
    plan = plan_for(img, w)
    assert (plan.action, plan.base, plan.base_format, plan.size) == ("create_overlay", base, "qcow2", 64 * MiB)
    assert dp.apply_plan(plan, img)
    assert plan_for(img, w).action == "none"
    grow = plan_for(img, w._replace(size=128 * MiB))
    assert (grow.action, grow.format, grow.current_size) == ("grow_offline", "qcow2", 64 * MiB)
    dp.apply_plan(grow, img)
    assert img.info(disk)["virtual-size"] == 128 * MiB and img.info(disk)["backing-filename"] == base
    assert plan_for(img, w._replace(size=64 * MiB)).message.endswith("disks are never shrunk")
    assert (os.stat(base).st_mtime_ns, os.path.getsize(base)) == before


@needs_qemu_img
def test_real_overlay_is_made_on_the_base_real_path(tmp_path, img):
    """A "latest" symlink moved to a newer image later must not change an existing overlay's data."""
    base = str(tmp_path / "debian-20261204.qcow2")
    qi("create", "-q", "-f", "raw", base, "1M")
    (tmp_path / "latest").symlink_to(base)
    w = dp.DiskWant(str(tmp_path / "d.qcow2"), base_image=str(tmp_path / "latest"), size=2 * MiB, param="disks[0]")
    dp.apply_plan(plan_for(img, w), img)
    info = img.info(w.file)
    assert (info["backing-filename"], info["backing-filename-format"], info["virtual-size"]) == (base, "raw", 2 * MiB)
    assert plan_for(img, w).action == "none"


@needs_qemu_img
def test_real_chain_loops_are_errors(tmp_path, img):
    a, b, c = (str(tmp_path / n) for n in ("a.qcow2", "b.qcow2", "c.qcow2"))
    qi("create", "-q", "-f", "qcow2", a, "1M")
    qi("create", "-q", "-f", "qcow2", "-b", a, "-F", "qcow2", b)
    qi("rebase", "-u", "-b", b, "-F", "qcow2", a)  # a -> b -> a
    plan = plan_for(img, dp.DiskWant(b, param="disks[0]"))
    assert plan.message == "disks[0].file: %s: its backing chain is a loop: %s -> %s -> %s" % (b, b, a, b)
    qi("create", "-q", "-f", "qcow2", c, "1M")
    qi("rebase", "-u", "-b", c, "-F", "qcow2", c)  # c -> c
    assert plan_for(img, dp.DiskWant(c, param="disks[1]")).message == "disks[1].file: %s: its backing chain is a loop: %s -> %s" % (c, c, c)
    over_loop = plan_for(img, dp.DiskWant(str(tmp_path / "new.qcow2"), base_image=a, param="disks[2]"))
    assert over_loop.message == "disks[2].base_image: %s: its backing chain is a loop: %s -> %s -> %s" % (a, a, b, a)


@needs_qemu_img
def test_real_missing_backing_file_other_base_and_wrong_format(tmp_path, img):
    base, other, disk, raw = (str(tmp_path / n) for n in ("base.qcow2", "other.qcow2", "disk.qcow2", "data.raw"))
    qi("create", "-q", "-f", "qcow2", base, "1M")
    qi("create", "-q", "-f", "qcow2", other, "1M")
    qi("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", disk)
    plan = plan_for(img, dp.DiskWant(disk, base_image=other, param="disks[0]"))
    assert plan.message.startswith("disks[0].base_image: %s, but disks[0].file %s exists and is an overlay on %s:" % (other, disk, base))
    os.unlink(base)
    plan = plan_for(img, dp.DiskWant(disk, param="disks[0]"))
    assert plan.message == "disks[0].file: %s: its backing file %s (of %s) does not exist" % (disk, base, disk)
    qi("create", "-q", "-f", "raw", raw, "1M")
    plan = plan_for(img, dp.DiskWant(raw, format="qcow2", param="disks[3]"))
    assert plan.action == "error" and plan.message.startswith("disks[3].file: %s: qemu-img info cannot read it:" % raw)
    assert "not in qcow2 format" in plan.message
    assert plan_for(img, dp.DiskWant(raw, format="raw", size=2 * MiB, param="disks[3]")).action == "grow_offline"
    missing = plan_for(img, dp.DiskWant(str(tmp_path / "n.qcow2"), base_image=base, param="disks[4]"))
    assert missing.message.startswith("disks[4].base_image: %s does not exist" % base)


@needs_qemu
def test_real_online_grow_through_qmp(img, qemus):
    """A QEMU (-S: nothing runs in it) with the disk as -drive if=virtio and no id: the node is found by file."""
    work = tempfile.mkdtemp(prefix="qi-disk-", dir="/tmp")  # AF_UNIX paths are limited to 108 bytes
    try:
        disk, sock, pidfile = (os.path.join(work, n) for n in ("d.qcow2", "qmp.sock", "qemu.pid"))
        dp.apply_plan(dp.plan_disk(dp.DiskWant(disk, size=64 * MiB), dp.DiskState(disk, [])), img)
        subprocess.run([QEMU, "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-machine", "pc",
                        "-drive", "file=%s,format=qcow2,if=virtio,media=disk" % disk,
                        "-qmp", "unix:%s,server=on,wait=off" % sock, "-daemonize", "-pidfile", pidfile], check=True)
        with open(pidfile) as handle:
            qemus.append(int(handle.read()))
        plan = plan_for(img, dp.DiskWant(disk, size=96 * MiB, param="disks[0]"), running=True)
        assert (plan.action, plan.current_size) == ("grow_online", 64 * MiB)
        with QmpClient(sock) as qmp:
            start = time.monotonic()
            assert dp.apply_plan(plan, img, qmp)
            took = time.monotonic() - start
            sizes = [b["inserted"]["image"]["virtual-size"] for b in qmp.command("query-block")]
            qmp.command("quit")
        assert sizes == [96 * MiB] and img.info(disk)["virtual-size"] == 96 * MiB
        assert took < 5
    finally:
        shutil.rmtree(work, ignore_errors=True)
