# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure planner: what each state does to a VM found running or not, and the launch order."""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import (
    STATES,
    Found,
    Launchable,
    decide,
    launch_waves,
    plan,
    unlisted,
)


def step(state, running, restart_required=False, exists=True, restart_on_change=False):
    s = decide(Found("vm1", state, running, restart_required, exists), restart_on_change)
    return dict(stop=s.stop, start=s.start, remove=s.remove, restart_required=s.restart_required,
                already_stopped=s.already_stopped, changed=s.changed)


@pytest.mark.parametrize("state, running, restart_required, restart_on_change, expected", [
    # started: start what is down; a running VM is left alone unless a restart is both required and asked for
    ("started", False, False, False, dict(start=True)),
    ("started", True, False, False, dict()),
    ("started", True, True, False, dict(restart_required=True)),
    ("started", True, True, True, dict(stop=True, start=True)),
    ("started", True, False, True, dict()),
    # stopped: stop what runs; a VM already down is reported with stop_method none
    ("stopped", True, False, False, dict(stop=True)),
    ("stopped", False, False, False, dict(already_stopped=True)),
    ("stopped", True, True, True, dict(stop=True)),  # restart_on_change does not start a VM to stop
    # restarted: always starts, stops first what runs
    ("restarted", True, False, False, dict(stop=True, start=True)),
    ("restarted", False, False, False, dict(start=True)),
    # present: never touches the process; reports a lagging running VM
    ("present", True, True, True, dict(restart_required=True)),
    ("present", False, True, False, dict()),
    ("present", True, False, False, dict()),
])
def test_each_state(state, running, restart_required, restart_on_change, expected):
    want = dict(stop=False, start=False, remove=False, restart_required=False, already_stopped=False)
    want.update(expected)
    want["changed"] = want["stop"] or want["start"] or want["remove"]
    assert step(state, running, restart_required, restart_on_change=restart_on_change) == want


def test_absent_stops_a_running_vm_then_removes_it():
    assert step("absent", True) == dict(stop=True, start=False, remove=True, restart_required=False,
                                        already_stopped=False, changed=True)


def test_absent_of_a_stopped_vm_removes_it_and_says_it_was_down():
    assert step("absent", False) == dict(stop=False, start=False, remove=True, restart_required=False,
                                         already_stopped=True, changed=True)


def test_absent_of_a_vm_that_does_not_exist_is_no_change():
    assert step("absent", False, exists=False)["changed"] is False


def test_unknown_state_is_a_bug_not_a_silent_no_op():
    with pytest.raises(ValueError):
        decide(Found("vm1", "paused", True, False, True), False)


def test_plan_keeps_order_and_lists_each_action():
    found = [Found("a", "started", False, False, True), Found("b", "stopped", True, False, True),
             Found("c", "absent", True, False, True), Found("d", "restarted", True, False, True),
             Found("e", "present", True, True, True), Found("f", "started", True, True, True)]
    p = plan(found, restart_on_change=True)
    assert [s.name for s in p.steps] == list("abcdef")
    assert p.names("stop") == ["b", "c", "d", "f"]
    assert p.names("start") == ["a", "d", "f"]
    assert p.names("remove") == ["c"]
    assert p.changed
    assert [s.name for s in p.steps if s.restart_required] == ["e"]


def test_an_idempotent_plan_changes_nothing():
    found = [Found("a", "started", True, False, True), Found("b", "stopped", False, False, True),
             Found("c", "absent", False, False, False), Found("d", "present", False, False, True)]
    assert not plan(found).changed
    assert plan(found).names("stop") == plan(found).names("start") == plan(found).names("remove") == []


def test_every_documented_state_is_planned():
    for state in STATES:
        decide(Found("vm1", state, True, True, True), True)


def names(waves):
    return [[vm.name for vm in wave] for wave in waves]


def test_launch_waves_listeners_before_connectors():
    plain = Launchable("plain", connects=False, listens=False)
    server = Launchable("server", connects=False, listens=True)
    client = Launchable("client", connects=True, listens=False)
    relay = Launchable("relay", connects=True, listens=True)
    assert names(launch_waves([client, relay, plain, server])) == [["plain", "server"], ["relay"], ["client"]]
    assert launch_waves([]) == []
    assert names(launch_waves([client])) == [["client"]]


def test_unlisted_keeps_the_hosts_order():
    assert unlisted(["c", "a", "b", "d"], ["b", "x"]) == ["c", "a", "d"]
    assert unlisted([], ["a"]) == []
