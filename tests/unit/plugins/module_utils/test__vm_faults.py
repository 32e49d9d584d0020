# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vm manager under faults found by the faults_* integration targets: two runs starting the same
VM at once, and a run killed between making a VM's taps and launching it. Real files and (where
installed) a real idle QEMU; only run_command is faked, for `ip`."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from unittest import mock

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Entry
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import START_LOCK, VmRecord
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import launch, manager, needs_qemu


@pytest.fixture
def idle_qemu(tmp_path, qemus):
    """An idle daemonized QEMU named vm1 with the vm module's pidfile and QMP socket: another run's VM."""
    run = RunPaths(str(tmp_path / "run"), "vm1")
    qemus.append(launch(run, "vm1"))
    return run, qemus[-1]


@needs_qemu
def test_start_leaves_alone_a_vm_another_run_started_meanwhile(tmp_path, idle_qemu):
    run, pid = idle_qemu
    mgr = manager(tmp_path)
    # As this run saw it before the other run launched it: stopped. No spec is needed: nothing is launched.
    record = VmRecord("vm1", Entry("vm1", "vm1", 0), None, None, run)
    mgr.module.run_command = mock.Mock(side_effect=AssertionError("nothing may be run"))
    assert mgr.start([record]) == {}
    assert record.running and record.pid == pid
    assert os.path.exists(os.path.join(mgr.run_dir, START_LOCK))


@needs_qemu
def test_start_waits_for_the_other_runs_start_lock(tmp_path, idle_qemu):
    run, pid = idle_qemu
    mgr = manager(tmp_path)
    record = VmRecord("vm1", Entry("vm1", "vm1", 0), None, None, run)
    fd = os.open(os.path.join(mgr.run_dir, START_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the other run, launching
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(mgr.start([record])))
    worker.start()
    try:
        worker.join(0.5)
        assert worker.is_alive() and not outcome  # blocked on the lock
    finally:
        os.close(fd)
    worker.join(30)
    assert outcome == [{}] and record.pid == pid


def test_taps_are_recorded_before_they_are_made(tmp_path):
    """A run killed (or an `ip` failing) after the taps are made must not leave taps `absent` would not remove."""
    mgr = manager(tmp_path)
    spec = from_params(dict(name="vm1", nics=[dict(model="e1000")], bridge="br-t"), check_files=False)
    record = VmRecord("vm1", Entry("vm1", "vm1", 0, spec.macs()), spec, "", RunPaths(mgr.run_dir, "vm1"))
    calls = []

    def fake_run_command(argv, **kwargs):
        calls.append(argv)
        if argv[-2:] == ["link", "show"]:
            return 0, "[]", ""
        # By the time the links are made, the run dir already says which ones are ours.
        with open(os.path.join(record.run.dir, "links.json")) as handle:
            assert json.load(handle)["taps"] == ["vm1-n1"]
        return 1, "", "killed right here"

    mgr.module.run_command = fake_run_command
    with pytest.raises(QemuInitError):
        mgr._make_links([record])
    assert len(calls) >= 2
    assert record.made_links() == dict(netns=None, taps=["vm1-n1"])


def test_a_missing_qemu_binary_fails_before_run_dir_or_lock_exist(tmp_path):
    # Found by the hostile-input suite: qemu_binary=/dev/null failed only after run_dir and the start lock were made.
    mgr = manager(tmp_path, qemu_binary="/dev/null")
    mgr.module.fail_json = mock.Mock(side_effect=RuntimeError("fail_json"))
    record = VmRecord("vm1", Entry("vm1", "vm1", 0), None, None, RunPaths(mgr.run_dir, "vm1"))
    with pytest.raises(RuntimeError):
        mgr.start([record])
    assert "/dev/null" in mgr.module.fail_json.call_args.kwargs["msg"]
    assert not os.path.exists(mgr.run_dir)
