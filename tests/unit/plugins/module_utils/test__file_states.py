# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A cfg file, pidfile, launch record, registry or monitor.conf path holding a directory, a FIFO, a dangling link or a
file the module's user cannot read: vm, vm_info and vm_config fail with a clear error naming the VM and the file,
change nothing, and never hang (before _files: tracebacks such as "[Errno 21] Is a directory", and a FIFO pidfile
blocked the module forever)."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import launched_otherwise
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import read_pidfile
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Registry, RegistryError, read_monitor_base
from ansible_collections.qemu_init.qemu.tests.unit.plugins.module_utils.file_states import STATES
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import manager, run_vm_config


def test_a_fifo_with_no_writer_does_not_block(tmp_path):
    # In a child with an alarm: before the reader, open() of a FIFO waited for a writer forever.
    path = str(tmp_path / "qemu.pid")
    os.mkfifo(path)
    code = ("import signal, sys; signal.alarm(10); sys.path[:0] = %r\n"
            "from ansible_collections.qemu_init.qemu.plugins.module_utils._process import read_pidfile\n"
            "try:\n    read_pidfile(%r, 'web1')\nexcept Exception as exc:\n    print(exc)\n" % (sys.path, path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out
    assert "cannot read the pidfile of VM web1: %s: it is a named pipe (FIFO), not a file" % path in out.stdout


class Hung(Exception):
    pass


@pytest.fixture(autouse=True)
def no_hang():
    """Each test ends within 20 s: before the reader, a FIFO at a cfg path or pidfile blocked open() forever."""
    def hung(_signum, _frame):
        raise Hung("blocked for 20 s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _load_as_nobody(top, names):
    """VmManager.load(names) (all_names() for None) on config_dir top/etc, in a child that drops to user nobody after
    importing the collection; the error it prints (or 'ok')."""
    nobody = pwd.getpwnam("nobody")
    code = "\n".join([
        "import os, pathlib, sys",
        "sys.path[:0] = %r" % sys.path,
        "from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import manager",
        "mgr = manager(pathlib.Path(%r))" % top,
        "os.setgroups([]); os.setgid(%d); os.setuid(%d)" % (nobody.pw_gid, nobody.pw_uid),
        "try:",
        "    mgr.load(%r or mgr.all_names(), need_cfg=False)" % (names,),
        "    print('ok')",
        "except Exception as exc:",
        "    print(type(exc).__name__, exc)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out
    return out.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to user nobody: needs root")
def test_permission_denied_as_another_user():
    # The modules run as root in these tests; a user without the right to read a file is made by dropping to nobody
    # (tmp_path sits under a 0700 directory nobody cannot enter: a directory of our own, 0755).
    top = tempfile.mkdtemp(prefix="qi-files-")
    nobody = pwd.getpwnam("nobody").pw_uid
    try:
        os.chmod(top, 0o755)
        os.makedirs(os.path.join(top, "etc", "vms"))
        path = os.path.join(top, "etc", "vms", "web1-qemu.cfg")
        with open(path, "w") as handle:
            handle.write('NAME="web1"\n')
        os.chmod(path, 0o000)
        for names in (["web1"], None):  # vm, and vm_info without a name
            out = _load_as_nobody(top, names)
            assert out.startswith("CfgError cannot read the cfg file of VM web1: %s: permission denied (the module runs as "
                                  "uid %d)" % (path, nobody)), out
            assert "docs/cfg-format.md, recovery" in out
        reg = os.path.join(top, "etc", "qemu-init.reg")
        with open(reg, "w") as handle:
            handle.write("web1 web1 0\n")
        os.chmod(reg, 0o000)
        out = _load_as_nobody(top, ["web1"])
        assert out.startswith("RegistryError cannot read the registry: %s: permission denied (the module runs as uid %d)"
                              % (reg, nobody)), out
    finally:
        subprocess.run(["rm", "-rf", top], check=True)


@pytest.mark.parametrize("make, problem", STATES[:3], ids=["directory", "fifo", "dangling"])
def test_vm_and_vm_info_name_the_vm_and_the_cfg_file(tmp_path, make, problem):
    vms = tmp_path / "etc" / "vms"
    vms.mkdir(parents=True)
    path = str(vms / "web1-qemu.cfg")
    make(path)
    for names in (["web1"], None):  # vm (one name) and vm_info without a name (all VMs)
        mgr = manager(tmp_path)
        with pytest.raises(QemuInitError) as exc:
            mgr.load(names or mgr.all_names(), need_cfg=names is not None)
        msg = exc.value.msg
        assert msg.startswith("cannot read the cfg file of VM web1: %s: " % path), msg
        assert (problem % path if "%s" in problem else problem) in msg
        assert "docs/cfg-format.md, recovery" in msg


@pytest.mark.parametrize("make, problem", STATES[:3], ids=["directory", "fifo", "dangling"])
def test_vm_config_names_the_vm_and_the_cfg_file_and_changes_nothing(tmp_path, make, problem):
    vms = tmp_path / "etc" / "vms"
    vms.mkdir(parents=True)
    path = str(vms / "web1-qemu.cfg")
    make(path)
    for state in ("present", "absent"):
        result, failed, _calls = run_vm_config(dict(name="web1", memory=256, state=state, config_dir=str(tmp_path / "etc"),
                                                    run_dir=str(tmp_path / "run")))
        assert failed, result
        assert result["msg"].startswith("cannot read the cfg file of VM web1: %s: " % path), result
        assert (problem % path if "%s" in problem else problem) in result["msg"]
    assert sorted(os.listdir(str(vms))) == ["web1-qemu.cfg"]
    assert not os.path.exists(str(tmp_path / "etc" / "qemu-init.reg"))


@pytest.mark.parametrize("make, problem", STATES[:3], ids=["directory", "fifo", "dangling"])
def test_pidfile_launch_record_registry_and_monitor_conf(tmp_path, make, problem):
    mgr = manager(tmp_path)
    run = os.path.join(mgr.run_dir, "web1")
    os.makedirs(run)
    os.makedirs(mgr.config_dir)
    for path, call, prefix in (
            (os.path.join(run, "qemu.pid"), lambda p: read_pidfile(p, "web1"), "cannot read the pidfile of VM web1"),
            (os.path.join(mgr.config_dir, "qemu-init.reg"), lambda p: Registry(mgr.config_dir).read(), "cannot read the registry"),
            (os.path.join(mgr.config_dir, "monitor.conf"), lambda p: read_monitor_base(mgr.config_dir),
             "cannot read the monitor base port file")):
        make(path)
        with pytest.raises(QemuInitError) as exc:
            call(path)
        assert exc.value.msg.startswith("%s: %s: " % (prefix, path)), exc.value.msg
        assert (problem % path if "%s" in problem else problem) in exc.value.msg
        if path.endswith(".reg"):
            assert isinstance(exc.value, RegistryError) and "docs/registry.md (recovery)" in exc.value.msg
        _remove(path)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    else:
        os.unlink(path)


def test_a_launch_record_that_is_a_directory_is_an_error_for_vm_info(tmp_path):
    run = RunPaths(str(tmp_path), "web1")
    os.makedirs(run.launch_record)
    with pytest.raises(QemuInitError) as exc:
        launched_otherwise(run, ["qemu"])
    assert exc.value.msg.startswith("cannot read the launch record of VM web1: %s: it is a directory" % run.launch_record)
    os.rmdir(run.launch_record)
    with open(run.launch_record, "w") as handle:
        json.dump(dict(argv=["q", "-a"]), handle)
    assert launched_otherwise(run, ["qemu", "-b"]) and not launched_otherwise(run, ["other-qemu", "-a"])
