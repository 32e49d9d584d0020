# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""_swtpm: argv with a faked run_command, then the real swtpm (and a real QEMU that connects to it) in a temp dir.
Only the processes these tests start are stopped, by their pids."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest
from ansible.module_utils import basic

from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_state
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import patch_module_args

SWTPM = shutil.which("swtpm")
QEMU = shutil.which("qemu-system-x86_64")
needs_swtpm = pytest.mark.skipif(SWTPM is None, reason="needs swtpm (Debian: apt-get install swtpm)")
needs_qemu = pytest.mark.skipif(SWTPM is None or QEMU is None, reason="needs swtpm and qemu-system-x86_64")


@pytest.fixture
def module():
    with patch_module_args({}):
        return basic.AnsibleModule(argument_spec={})


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="qi-tpm-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def started():
    """Pids of the swtpm/QEMU processes a test starts: killed at the end if still alive, and only those."""
    pids = []
    yield pids
    for pid in pids:
        if proc_state(pid) not in (None, "Z"):
            os.kill(pid, signal.SIGKILL)


PATHS = _swtpm.tpm_paths("/var/lib/qemu-init", "/run/qemu-init", "web1")


def test_paths_and_qemu_args():
    assert tuple(PATHS) == ("/var/lib/qemu-init/web1/tpm", "/run/qemu-init/web1/swtpm.sock", "/run/qemu-init/web1/swtpm.pid",
                            "/run/qemu-init/web1/swtpm.log")
    assert _swtpm.qemu_args(PATHS.socket) == ["-chardev", "socket,id=chrtpm,path=/run/qemu-init/web1/swtpm.sock",
                                              "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"]
    crb = _swtpm.qemu_args("/r/a,b/s.sock", "tpm-crb")
    assert crb[1::2] == ["socket,id=chrtpm,path=/r/a,,b/s.sock", "emulator,id=tpm0,chardev=chrtpm", "tpm-crb,tpmdev=tpm0"]
    with pytest.raises(QemuInitError, match="model 'tpm-spapr' is not one of tpm-tis, tpm-crb, tpm-tis-device"):
        _swtpm.qemu_args(PATHS.socket, "tpm-spapr")
    with pytest.raises(QemuInitError, match="cannot name a directory"):
        _swtpm.tpm_paths("/s", "/r", "../x")


def test_missing_binary_names_the_package(module, monkeypatch):
    monkeypatch.setattr(module, "get_bin_path", lambda name, required=False, opt_dirs=None: None)
    with pytest.raises(QemuInitError) as exc:
        _swtpm.Swtpm(module)
    assert exc.value.msg.startswith("tpm: true needs swtpm, which is not installed on this host (package: Debian/Ubuntu: swtpm")


def test_argv_through_a_faked_run_command(module, monkeypatch, tmp_path):
    paths = _swtpm.tpm_paths(str(tmp_path / "state"), str(tmp_path / "run"), "web1")
    calls = []

    def fake_run(cmd, check_rc=False, environ_update=None, **kwargs):
        calls.append(cmd)
        assert check_rc is False and isinstance(cmd, list)
        return 1, "", "swtpm: Could not open UnixIO socket: Permission denied"

    monkeypatch.setattr(module, "run_command", fake_run)
    tpm = _swtpm.Swtpm(module, binary="/usr/bin/swtpm")
    with pytest.raises(QemuInitError) as exc:
        tpm.start(paths)
    assert exc.value.msg == "tpm: swtpm did not start (exit status 1): swtpm: Could not open UnixIO socket: Permission denied"
    assert calls == [["/usr/bin/swtpm", "socket", "--tpm2",
                      "--tpmstate", "dir=%s,mode=0600" % paths.state,
                      "--ctrl", "type=unixio,path=%s,mode=0600" % paths.socket,
                      "--pid", "file=%s" % paths.pidfile,
                      "--log", "file=%s,level=1,truncate" % paths.log,
                      "--daemon", "--terminate"]]
    for directory in (os.path.dirname(paths.state), paths.state, os.path.dirname(paths.socket)):  # made before swtpm runs: 0700
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_failure_without_stderr_reports_the_log(module, monkeypatch, tmp_path):
    paths = _swtpm.tpm_paths(str(tmp_path / "state"), str(tmp_path / "run"), "web1")

    def fake_run(cmd, **kwargs):
        with open(paths.log, "w") as handle:
            handle.write("Could not open UnixIO socket: No such file or directory\n")
        return 1, "", ""

    monkeypatch.setattr(module, "run_command", fake_run)
    with pytest.raises(QemuInitError) as exc:
        _swtpm.Swtpm(module, binary="/usr/bin/swtpm").start(paths)
    assert exc.value.msg == "tpm: swtpm did not start (exit status 1): log %s: Could not open UnixIO socket: No such file or directory" % paths.log


def test_exit_0_without_a_daemon_is_an_error(module, monkeypatch, tmp_path):
    paths = _swtpm.tpm_paths(str(tmp_path / "state"), str(tmp_path / "run"), "web1")
    monkeypatch.setattr(module, "run_command", lambda cmd, **kwargs: (0, "", ""))
    monkeypatch.setattr(_swtpm, "SOCKET_WAIT", 0.05)
    with pytest.raises(QemuInitError, match="tpm: swtpm exited 0 but no swtpm runs with the pid in .*swtpm.pid: no message"):
        _swtpm.Swtpm(module, binary="/usr/bin/swtpm").start(paths)


def test_a_comma_in_a_path_is_refused(module):
    paths = _swtpm.tpm_paths("/var/lib/a,b", "/run/qemu-init", "web1")
    with pytest.raises(QemuInitError, match="state directory /var/lib/a,b/web1/tpm contains a comma"):
        _swtpm.Swtpm(module, binary="/usr/bin/swtpm").argv(paths)


def test_a_pid_that_is_not_our_swtpm_is_never_signalled(module, tmp_path, monkeypatch):
    """The pidfile names this test's own process (alive, not swtpm): stop() leaves it alone and removes the pidfile."""
    paths = _swtpm.tpm_paths(str(tmp_path / "state"), str(tmp_path / "run"), "web1")
    os.makedirs(os.path.dirname(paths.pidfile))
    with open(paths.pidfile, "w") as handle:
        handle.write("%d\n" % os.getpid())
    monkeypatch.setattr(os, "kill", lambda pid, sig: pytest.fail("signalled %d" % pid))
    tpm = _swtpm.Swtpm(module, binary="/usr/bin/swtpm")
    assert tpm.running(paths) is None
    assert tpm.stop(paths) is False
    assert not os.path.exists(paths.pidfile)


def test_live_pid_needs_our_swtpm_and_never_fails(tmp_path):
    """vm_info's view: no pidfile, garbage, a directory or a pid that is not this VM's swtpm are all "not running"."""
    paths = _swtpm.tpm_paths(str(tmp_path / "state"), str(tmp_path / "run"), "web1")
    assert _swtpm.live_pid(paths) is None
    os.makedirs(os.path.dirname(paths.pidfile))
    for content in ("%d\n" % os.getpid(), "garbage"):
        with open(paths.pidfile, "w") as handle:
            handle.write(content)
        assert _swtpm.live_pid(paths) is None
    os.unlink(paths.pidfile)
    os.mkdir(paths.pidfile)
    assert _swtpm.live_pid(paths) is None


# -- the real swtpm --------------------------------------------------------------------------------------------

@needs_swtpm
def test_real_swtpm_starts_with_its_socket_and_stops_by_pid(module, short_dir, started):
    paths = _swtpm.tpm_paths(os.path.join(short_dir, "state"), os.path.join(short_dir, "run"), "web1")
    tpm = _swtpm.Swtpm(module)
    t0 = time.monotonic()
    pid = tpm.start(paths)
    took = time.monotonic() - t0
    started.append(pid)
    assert stat.S_ISSOCK(os.stat(paths.socket).st_mode) and stat.S_IMODE(os.stat(paths.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.state).st_mode) == 0o700
    assert _swtpm.is_our_swtpm(pid, paths.socket) and not _swtpm.is_our_swtpm(pid, paths.socket + "x")
    assert tpm.start(paths) == pid  # already serving this VM: kept
    assert _swtpm.live_pid(paths) == pid
    assert took < 5
    assert tpm.stop(paths) is True
    assert proc_state(pid) in (None, "Z")
    assert not os.path.exists(paths.socket) and not os.path.exists(paths.pidfile)
    assert tpm.stop(paths) is False


@needs_qemu
def test_real_qemu_connects_lists_the_tpm_and_swtpm_ends_with_it(module, short_dir, started):
    """QEMU -S (nothing boots) with the TPM argv: query-tpm lists it; after quit swtpm exits by itself (--terminate)."""
    paths = _swtpm.tpm_paths(os.path.join(short_dir, "state"), os.path.join(short_dir, "run"), "web1")
    tpm = _swtpm.Swtpm(module)
    pid = tpm.start(paths)
    started.append(pid)
    qmp_sock, qemu_pid = os.path.join(short_dir, "qmp.sock"), os.path.join(short_dir, "qemu.pid")
    subprocess.run([QEMU, "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-machine", "q35"]
                   + _swtpm.qemu_args(paths.socket, "tpm-crb")
                   + ["-qmp", "unix:%s,server=on,wait=off" % qmp_sock, "-daemonize", "-pidfile", qemu_pid], check=True)
    with open(qemu_pid) as handle:
        started.append(int(handle.read()))
    with QmpClient(qmp_sock) as qmp:
        assert qmp.command("query-tpm") == [{"model": "tpm-crb", "id": "tpm0",
                                             "options": {"type": "emulator", "data": {"chardev": "chrtpm"}}}]
        qmp.command("quit")
    deadline = time.monotonic() + 5
    while proc_state(pid) not in (None, "Z"):
        assert time.monotonic() < deadline, "swtpm still runs 5 s after QEMU quit"
        time.sleep(0.01)
    assert os.listdir(paths.state) and tpm.running(paths) is None
    assert stat.S_IMODE(os.stat(os.path.join(paths.state, "tpm2-00.permall")).st_mode) == 0o600
