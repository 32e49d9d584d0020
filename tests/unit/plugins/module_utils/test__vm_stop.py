# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stop machinery with others around: observers and a second stop while a stop is in progress, and QEMU
ended by someone else during a stop. Real idle QEMUs (-machine none: no ACPI, so system_powerdown never stops
one, the "guest that ignores the power button" in a second); nothing is faked. The outcome rules are also
tested pure, on _Stopping's recorded facts."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import launched_otherwise
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv, observer_socket, qmp_args
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient, QmpTimeout
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import StopTimeout, VmRecord, _Stopping
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import gone, launch, manager, needs_qemu


def lock_held(run):
    """Does some open file hold the VM's stop lock?"""
    try:
        fd = os.open(run.stop_lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


class Background(threading.Thread):
    """mgr.stop(...) in a thread: keeps its result or exception."""

    def __init__(self, mgr, records, timeout, force):
        super().__init__(daemon=True)
        self.args = (mgr, records, timeout, force)
        self.result = self.error = None
        self.start()

    def run(self):
        mgr, records, timeout, force = self.args
        try:
            self.result = mgr.stop(records, timeout, force)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc


def running(tmp_path, qemus, name="vm1", observer=True):
    """(manager, record) of a freshly launched idle QEMU, probed."""
    mgr = manager(tmp_path)
    run = RunPaths(mgr.run_dir, name)
    qemus.append(launch(run, name, observer=observer))
    return mgr, mgr.probe(VmRecord(name, None, None, None, run))


def again(tmp_path, record):
    """The same VM as a second call sees it: its own manager and record, probed."""
    other = manager(tmp_path)
    return other, other.probe(VmRecord(record.name, None, None, None, RunPaths(other.run_dir, record.name)))


@needs_qemu
def test_observers_answer_while_a_stop_holds_the_lifecycle_monitor(tmp_path, qemus):
    mgr, record = running(tmp_path, qemus)
    stop = Background(mgr, [record], 3, False)
    until(lambda: lock_held(record.run))
    # The stop holds qmp.sock: a client there gets no greeting (QEMU serves one client per monitor socket)...
    with pytest.raises(QmpTimeout):
        QmpClient(record.run.qmp, timeout=0.5)
    # ...and a probe (vm_info, monitor, a second call) uses the observer monitor and answers at once.
    t0 = time.monotonic()
    other, seen = again(tmp_path, record)
    assert seen.running and seen.pid == qemus[0] and seen.status == "prelaunch"
    assert time.monotonic() - t0 < 1.0
    stop.join(10)
    assert isinstance(stop.error, StopTimeout)


@needs_qemu
def test_a_second_stop_waits_for_the_first_and_says_joined(tmp_path, qemus):
    mgr, record = running(tmp_path, qemus)
    first = Background(mgr, [record], 1.5, True)
    until(lambda: lock_held(record.run))
    other, seen = again(tmp_path, record)
    t0 = time.monotonic()
    second = other.stop([seen], 30, False)
    assert second["vm1"][0] == "joined"
    assert 0.5 < time.monotonic() - t0 < 5.0  # as long as the first one's 1.5 s + quit, not its own 30 s
    first.join(10)
    assert first.error is None and first.result["vm1"][0] == "quit"
    assert gone(qemus[0]) and not os.path.exists(record.run.pidfile) and not seen.running


@needs_qemu
def test_a_second_stop_takes_over_when_the_first_gives_up(tmp_path, qemus):
    mgr, record = running(tmp_path, qemus)
    first = Background(mgr, [record], 1, False)
    until(lambda: lock_held(record.run))
    other, seen = again(tmp_path, record)
    t0 = time.monotonic()
    second = other.stop([seen], 2.5, True)
    first.join(10)
    assert isinstance(first.error, StopTimeout) and first.error.results == {"vm1": (None, None)}
    # The first gave up after 1 s with the VM running; the second took the stop over and forced it after its 2.5 s.
    assert second["vm1"][0] == "quit" and 2.5 <= time.monotonic() - t0 < 5.0
    assert gone(qemus[0]) and not os.path.exists(record.run.pidfile)


@needs_qemu
def test_a_joined_stop_that_times_out_says_who_holds_it(tmp_path, qemus):
    mgr, record = running(tmp_path, qemus)
    holder = os.open(record.run.stop_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(StopTimeout) as exc:
            mgr.stop([record], 1, False)
    finally:
        os.close(holder)
    assert "VM vm1: another call is stopping it (it holds %s) and it did not exit within 1 s; still running" % record.run.stop_lock \
        in exc.value.msg
    assert "system_powerdown" not in exc.value.msg  # it pressed nothing: the stop is the other call's
    assert exc.value.results == {"vm1": (None, None)}
    assert mgr.probe(record).running and os.path.exists(record.run.pidfile)


@needs_qemu
@pytest.mark.parametrize("how", ["sigkill", "sigterm", "quit"])
def test_qemu_ended_by_someone_else_during_a_stop_is_external(tmp_path, qemus, how):
    mgr, record = running(tmp_path, qemus)
    with QmpClient(record.run.observe) as watcher:  # listening before the stop, so its first press is seen
        stop = Background(mgr, [record], 10, True)
        assert watcher.wait_event("POWERDOWN", 10) is not None
        if how == "quit":
            watcher.command("quit")  # through another monitor
        else:
            os.kill(qemus[0], signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    stop.join(10)
    assert stop.error is None
    method, seconds = stop.result["vm1"]
    assert method == "external" and seconds < 2.0  # seen at once, not after the 10 s
    assert not os.path.exists(record.run.pidfile)


@needs_qemu
def test_a_vm_launched_without_the_observer_monitor(tmp_path, qemus):
    """Launched by a release before observe.sock: probed and stopped on qmp.sock, which the stop does not hold."""
    mgr, record = running(tmp_path, qemus, observer=False)
    assert record.running and not os.path.exists(record.run.observe)
    stop = Background(mgr, [record], 2, True)
    until(lambda: lock_held(record.run))
    for _attempt in range(3):
        other, seen = again(tmp_path, record)
        assert seen.running and seen.status == "prelaunch"
    stop.join(10)
    assert stop.error is None and stop.result["vm1"][0] == "quit"
    assert gone(qemus[0]) and not os.path.exists(record.run.pidfile) and not os.path.exists(record.run.qmp)


def facts(joined=False, sent=(), shutdown=None, watched=True, method="acpi", presses=1):
    waiter = object.__new__(_Stopping)
    waiter.joined, waiter.sent, waiter.shutdown, waiter.watched, waiter.method = joined, set(sent), shutdown, watched, method
    waiter.presses = presses
    return waiter


@pytest.mark.parametrize("waiter, outcome", [
    (facts(shutdown={"guest": True, "reason": "guest-shutdown"}), "acpi"),
    (facts(shutdown={"guest": True, "reason": "guest-reset"}), "acpi"),  # -no-reboot: a reboot ends QEMU too
    (facts(shutdown={"guest": True, "reason": "guest-panic"}), "external"),
    # the guest made it while we pulled the plug: it did shut down
    (facts(sent=["quit"], method="quit", shutdown={"reason": "guest-shutdown"}), "acpi"),
    (facts(sent=["quit"], method="quit", shutdown={"reason": "host-qmp-quit"}), "quit"),
    # quit was taken but QEMU hung on the way out until SIGTERM: it needed SIGTERM
    (facts(sent=["quit", "sigterm"], method="sigterm", shutdown={"reason": "host-qmp-quit"}), "sigterm"),
    (facts(sent=["quit", "sigterm"], method="sigterm", shutdown={"reason": "host-signal"}), "sigterm"),
    (facts(sent=["quit", "sigterm", "sigkill"], method="sigkill"), "sigkill"),
    (facts(sent=["quit", "sigterm", "sigkill"], method="sigkill", shutdown={"reason": "host-signal"}), "sigkill"),
    # not our doing: quit through another monitor, a signal from elsewhere, gone without a word
    (facts(shutdown={"reason": "host-qmp-quit"}), "external"),
    (facts(shutdown={"reason": "host-signal"}), "external"),
    (facts(sent=["quit"], method="quit", shutdown={"reason": "host-signal"}), "external"),
    (facts(), "external"),
    (facts(sent=["quit"], method="quit"), "external"),
    # no session held (a VM from before the observer monitor, or QMP did not answer): the rung
    (facts(watched=False), "acpi"),
    (facts(watched=False, sent=["quit"], method="quit"), "quit"),
    # nothing of ours reached QEMU (it was gone before the first press): whatever ended it, not this call
    (facts(watched=False, presses=0), "external"),
    (facts(watched=False, presses=0, shutdown={"reason": "guest-shutdown"}), "acpi"),
    (facts(joined=True, shutdown={"reason": "host-qmp-quit"}), "joined"),
    (facts(joined=True, watched=False), "joined"),
    # the guest agent's guest-shutdown (the first force rung for a VM with an agent) powered the guest off
    (facts(sent=["agent"], method="agent", shutdown={"reason": "guest-shutdown"}), "agent"),
    (facts(sent=["agent", "quit"], method="quit", shutdown={"reason": "host-qmp-quit"}), "quit"),
])
def test_outcome(waiter, outcome):
    assert waiter.outcome() == outcome


def test_exit_tidies_only_files_that_are_still_the_exited_qemus(tmp_path):
    mgr = manager(tmp_path)
    run = RunPaths(mgr.run_dir, "vm1")
    os.makedirs(run.dir)
    for path in (run.pidfile, run.qmp, run.observe, run.launch_record):
        with open(path, "w") as handle:
            handle.write("4242\n")
    record = VmRecord("vm1", None, None, None, run)
    record.pid, record.running = 1234, True
    # Another run restarted the VM meanwhile: the pidfile names its new QEMU, whose files stay.
    mgr._after_exit(record)
    assert all(os.path.exists(p) for p in (run.pidfile, run.qmp, run.observe, run.launch_record))
    assert not record.running and record.pid is None
    record.pid = 4242
    mgr._after_exit(record)
    assert not any(os.path.exists(p) for p in (run.pidfile, run.qmp, run.observe, run.launch_record))


def test_a_vm_launched_without_the_observer_monitor_reports_restart_required(tmp_path):
    """The launch argv changed (documented in the changelog): such a VM is restart_required until restarted."""
    run = RunPaths(str(tmp_path / "run"), "web1")
    os.makedirs(run.dir)
    spec = from_params(dict(name="web1", os="debian"), check_files=False)
    desired = build_argv(spec, "/usr/bin/qemu-system-x86_64", run, ports_info(30320, 0), "web1", "tcg")
    at = desired.index(qmp_args(run)[3]) - 1  # the observer -qmp and its value
    old = desired[:at] + desired[at + 2:]
    assert observer_socket(run, old) == run.qmp and observer_socket(run, desired) == run.observe
    for launched, required in ((old, True), (desired, False)):
        with open(run.launch_record, "w") as handle:
            json.dump(dict(argv=launched), handle)
        assert launched_otherwise(run, desired) is required


@needs_qemu
def test_the_agent_rung_is_skipped_without_an_agent_and_falls_to_quit_when_the_agent_is_silent(tmp_path, qemus):
    """An idle QEMU ignores the power button. Without guest_agent the force ladder goes straight to quit (no
    AGENT_WAIT); with guest_agent but nothing answering on qga.sock (no guest), the rung costs the agent timeout
    and quit ends it."""
    mgr, record = running(tmp_path, qemus, "noagent")
    record.spec = from_params(dict(name="noagent"), check_files=False)
    t0 = time.monotonic()
    assert mgr.stop([record], 0.2, True)["noagent"][0] == "quit"
    assert time.monotonic() - t0 < 5.0  # no AGENT_WAIT (10 s) spent

    mgr, record = running(tmp_path, qemus, "silent")
    record.spec = from_params(dict(name="silent", guest_agent=True), check_files=False)
    os.makedirs(record.run.dir, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(record.run.qga)  # an agent channel nobody answers on
    listener.listen(1)
    try:
        method, _seconds = mgr.stop([record], 0.2, True)["silent"]
    finally:
        listener.close()
    assert method == "quit"
