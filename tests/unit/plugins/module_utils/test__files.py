# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one reader (_files.read_text/read_json): every file system state a path can hold, each a clear error naming the
file (and the VM); and a check that module_utils reads no file around it. The modules' side: test__file_states.py."""

from __future__ import annotations

import ast
import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _files
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import FileReadError, read_appended, read_json, read_text
from ansible_collections.qemu_init.qemu.tests.unit.plugins.module_utils.file_states import STATES

MODULE_UTILS = os.path.dirname(_files.__file__)


@pytest.mark.parametrize("make, problem", STATES, ids=[m.__name__.strip("_") for m, _p in STATES])
def test_read_text_names_the_state_the_file_and_the_vm(tmp_path, make, problem):
    path = str(tmp_path / "web1-qemu.cfg")
    make(path)
    with pytest.raises(FileReadError) as exc:
        read_text(path, "cfg file", "web1", hint="do this")
    msg = exc.value.msg
    assert msg.startswith("cannot read the cfg file of VM web1: %s: " % path), msg
    assert (problem % path if "%s" in problem else problem) in msg
    assert msg.endswith("; do this")


def test_missing_file_is_none_and_a_regular_file_is_read(tmp_path):
    assert read_text(str(tmp_path / "nothing")) is None
    assert read_json(str(tmp_path / "nothing")) is None
    (tmp_path / "f").write_text("\u2603 x\n")
    os.symlink("f", str(tmp_path / "link"))
    assert read_text(str(tmp_path / "f")) == "\u2603 x\n"
    assert read_text(str(tmp_path / "link")) == "\u2603 x\n"  # a link to a file is that file


def test_read_json_refuses_what_is_not_json(tmp_path):
    (tmp_path / "launch.json").write_text("{cut")
    with pytest.raises(FileReadError) as exc:
        read_json(str(tmp_path / "launch.json"), "launch record", "web1")
    assert exc.value.msg.startswith("cannot read the launch record of VM web1: %s: not JSON" % (tmp_path / "launch.json"))


def _opens(tree):
    """(line, call) of every open()/os.open()/io.open() call in a module's syntax tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("open", "fdopen"):
                found.append((node.lineno, ast.unparse(node)))
    return found


# Opens that are not reading one of our files: locks (created), /dev/kvm, the serial log QEMU then writes,
# and /proc (where a missing entry means "no such process", an answer, not an error).
NOT_READS = {
    "_process.py": ("/stat", "/cmdline"),
    "_ports.py": ("proc_net",),
    "_qemu.py": ("dev",),
    "_registry.py": ("self.lock_path",),
    "_vm.py": ("O_CREAT",),
}


def test_every_file_is_read_through_the_one_reader():
    stray = []
    for fname in sorted(os.listdir(MODULE_UTILS)):
        if not fname.endswith(".py") or fname == "_files.py":
            continue
        with open(os.path.join(MODULE_UTILS, fname), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for line, call in _opens(tree):
            if not any(marker in call for marker in NOT_READS.get(fname, ())):
                stray.append("%s:%d %s" % (fname, line, call[:80]))
    assert stray == []


def test_a_file_that_is_there_but_not_text_gets_the_damaged_hint(tmp_path):
    (tmp_path / "f").write_bytes(b"\xff\xfe")
    with pytest.raises(FileReadError) as exc:
        read_text(str(tmp_path / "f"), "cfg file", "web1", hint="misplaced", damaged_hint="damaged")
    assert exc.value.msg.endswith("; damaged")
    os.unlink(str(tmp_path / "f"))
    os.mkdir(str(tmp_path / "f"))
    with pytest.raises(FileReadError) as exc:
        read_text(str(tmp_path / "f"), "cfg file", "web1", hint="misplaced", damaged_hint="damaged")
    assert exc.value.msg.endswith("; misplaced")


# A log is read by what was added to it: size and encoding are the follower's business, not errors.
LOG_STATES = [(make, problem) for make, problem in STATES if make.__name__ not in ("_huge", "_not_utf8")]


@pytest.mark.parametrize("make, problem", LOG_STATES, ids=[m.__name__.strip("_") for m, _p in LOG_STATES])
def test_read_appended_refuses_what_read_text_refuses(tmp_path, make, problem):
    path = str(tmp_path / "serial.log")
    make(path)
    with pytest.raises(FileReadError) as exc:
        read_appended(path, 0, None, "serial log", "web1")
    assert exc.value.msg.startswith("cannot read the serial log of VM web1: %s: " % path)
    assert (problem % path if "%s" in problem else problem) in exc.value.msg


def test_read_appended_follows_growth_truncation_and_replacement(tmp_path):
    path = tmp_path / "serial.log"
    assert read_appended(str(path), 0, None) is None
    path.write_bytes(b"abcdef")
    data, offset, identity = read_appended(str(path), 2, None, limit=3)
    assert (data, offset) == (b"cde", 5)
    assert read_appended(str(path), offset, identity) == (b"f", 6, identity)
    assert read_appended(str(path), 6, identity) == (b"", 6, identity)
    path.write_bytes(b"xy")  # truncated in place: same file, shorter than the offset
    assert read_appended(str(path), 6, identity) == (b"xy", 2, identity)
    other = tmp_path / "new.log"
    other.write_bytes(b"0123456789")
    os.replace(str(other), str(path))  # another file, longer than the offset: still read from its start
    data, offset, new_identity = read_appended(str(path), 2, identity)
    assert (data, offset) == (b"0123456789", 10) and new_identity != identity


@pytest.mark.parametrize("durable, syncs", [(True, 2), (False, 0)])
def test_atomic_write_syncs_only_what_must_survive_a_crash(tmp_path, monkeypatch, durable, syncs):
    """A durable write syncs the file and its directory; a run-time record (durable=False) neither. Both replace
    the file in one rename, with the mode asked for, and leave no temp file. os.fsync is watched, not replaced."""
    synced = []
    real_fsync = os.fsync

    def watched(fd):
        synced.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(_files.os, "fsync", watched)
    path = tmp_path / "launch.json"
    path.write_text("old\n")
    inode = path.stat().st_ino
    _files.atomic_write(str(path), "new\n", mode=0o600, durable=durable)
    assert path.read_text() == "new\n" and path.stat().st_ino != inode
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert os.listdir(str(tmp_path)) == ["launch.json"]
    assert len(synced) == syncs
