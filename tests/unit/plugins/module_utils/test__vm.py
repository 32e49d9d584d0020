# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Process identity and the stop ladder against real QEMU processes (no guest: -machine none).

A QEMU without a machine has no ACPI, so system_powerdown never stops it: exactly the
"guest that ignores the power button" case, in a second instead of a boot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import name_list
from ansible_collections.qemu_init.qemu.plugins.module_utils._observe import is_read_only
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import StopTimeout, VmRecord
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import gone, launch, manager, needs_qemu


@needs_qemu
def test_probe_identifies_a_running_vm_and_only_it(tmp_path, qemus):
    mgr = manager(tmp_path)
    run = RunPaths(mgr.run_dir, "vm1")
    qemus.append(launch(run, "vm1"))
    record = mgr.probe(VmRecord("vm1", None, None, None, run))
    assert record.running and record.pid == qemus[0] and record.status == "prelaunch"
    # the same process seen from another VM's record (its pidfile copied there) is not that VM
    other = RunPaths(mgr.run_dir, "vm2")
    os.makedirs(other.dir)
    shutil.copy(run.pidfile, other.pidfile)
    assert not mgr.probe(VmRecord("vm2", None, None, None, other)).running


def test_stale_pidfile_naming_a_live_non_qemu_process(tmp_path):
    mgr = manager(tmp_path)
    run = RunPaths(mgr.run_dir, "vm1")
    os.makedirs(run.dir)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with open(run.pidfile, "w") as handle:
            handle.write("%d\n" % sleeper.pid)
        assert not mgr.probe(VmRecord("vm1", None, None, None, run)).running
        assert sleeper.poll() is None  # untouched
    finally:
        sleeper.kill()
        sleeper.wait()


@needs_qemu
def test_stop_without_force_fails_and_leaves_it_running(tmp_path, qemus):
    mgr = manager(tmp_path)
    run = RunPaths(mgr.run_dir, "vm1")
    qemus.append(launch(run, "vm1"))
    record = mgr.probe(VmRecord("vm1", None, None, None, run))
    t0 = time.monotonic()
    with pytest.raises(StopTimeout) as exc:
        mgr.stop([record], timeout=2.5, force=False)
    elapsed = time.monotonic() - t0
    assert 2.5 <= elapsed < 4.0
    assert "VM vm1 did not power off within 2.5 s" in exc.value.msg and "force: true" in exc.value.msg
    assert "(pressed 2)" in exc.value.msg  # at 0 s and again at 2 s
    assert exc.value.results == {"vm1": (None, None)}
    assert mgr.probe(record).running


@needs_qemu
def test_stop_with_force_escalates_to_quit_for_all_at_once(tmp_path, qemus):
    mgr = manager(tmp_path)
    records = []
    for name in ("vm1", "vm2", "vm3"):
        run = RunPaths(mgr.run_dir, name)
        qemus.append(launch(run, name))
        records.append(mgr.probe(VmRecord(name, None, None, None, run)))
    t0 = time.monotonic()
    results = mgr.stop(records, timeout=1, force=True)
    elapsed = time.monotonic() - t0
    assert set(results) == {"vm1", "vm2", "vm3"}
    assert all(method == "quit" for method, dummy in results.values())
    assert all(gone(pid) for pid in qemus)
    assert elapsed < 3.0  # one shared timeout, not one per VM
    assert not any(os.path.exists(r.run.pidfile) or os.path.exists(r.run.qmp) for r in records)
    assert not any(r.running for r in records)


@pytest.mark.parametrize("value, names", [("web1", ["web1"]), (["a", "b"], ["a", "b"])])
def test_name_list(value, names):
    assert name_list(value) == names


@pytest.mark.parametrize("value", [None, "", [], [1], {"a": 1}, ["a", ""]])
def test_name_list_rejects(value):
    with pytest.raises(ParameterError):
        name_list(value)


@pytest.mark.parametrize("command, qmp, read_only", [
    ("info status", None, True), ("  info  block", None, True), ("system_powerdown", None, False),
    (None, "query-status", True), (None, "stop", False), ("", None, False),
])
def test_is_read_only(command, qmp, read_only):
    assert is_read_only(command, qmp) is read_only


@needs_qemu
def test_a_timeout_still_tidies_the_vms_that_did_stop(tmp_path, qemus):
    mgr = manager(tmp_path)
    stuck, going = RunPaths(mgr.run_dir, "stuck"), RunPaths(mgr.run_dir, "going")
    qemus.extend([launch(stuck, "stuck"), launch(going, "going")])
    records = [mgr.probe(VmRecord(name, None, None, None, run)) for name, run in (("stuck", stuck), ("going", going))]
    # 'going' is ended by someone else right away (SIGTERM, before any press); 'stuck' ignores the button.
    os.kill(qemus[1], 15)
    with pytest.raises(StopTimeout) as exc:
        mgr.stop(records, timeout=1, force=False)
    assert exc.value.results["going"][0] == "external" and exc.value.results["stuck"] == (None, None)
    assert not os.path.exists(going.pidfile) and os.path.exists(stuck.pidfile)
