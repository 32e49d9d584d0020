# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The batch paths of the VM manager: launch order, side-by-side work, many VMs probed at once (real QEMUs)."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import launch_waves
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import each as _each
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import VmRecord, launchable
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import launch, manager, needs_qemu


def record(name, *nics):
    spec = from_params(dict(name=name, nics=[dict(nic, model="e1000") for nic in nics]), check_files=False)
    return VmRecord(name, None, spec, None, RunPaths("/nonexistent", name))


def names(waves):
    return [[r.name for r in wave] for wave in waves]


def test_vms_without_a_connecting_nic_start_together_first():
    plain = record("plain", dict(backend="user"))
    server = record("server", dict(backend="socket", listen=":10000"))
    client = record("client", dict(backend="socket", connect="127.0.0.1:10000"))
    relay = record("relay", dict(backend="stream", connect="127.0.0.1:10000"), dict(backend="stream", listen=":10001"))
    leaf = record("leaf", dict(backend="stream", connect="127.0.0.1:10001"))
    # Connecting VMs one at a time after the others; among them, those that also listen first.
    assert names(launch_waves([client, leaf, relay, plain, server], launchable)) == [["plain", "server"], ["relay"], ["client"], ["leaf"]]


def test_only_connecting_vms_or_none():
    client = record("client", dict(backend="socket", connect="127.0.0.1:10000"))
    assert names(launch_waves([client], launchable)) == [["client"]]
    assert launch_waves([], launchable) == []


def test_each_keeps_order_and_collects_errors():
    def action(n):
        if n % 3 == 0:
            raise QemuInitError("no %d" % n)
        return n * 10

    outcomes = _each(action, list(range(1, 8)), 3)
    assert [item for item, _result, _exc in outcomes] == list(range(1, 8))
    assert [result for _item, result, exc in outcomes if exc is None] == [10, 20, 40, 50, 70]
    assert [exc.msg for _item, _result, exc in outcomes if exc is not None] == ["no 3", "no 6"]


def test_each_runs_a_single_item_in_the_calling_thread():
    seen = []
    assert _each(lambda item: seen.append(threading.current_thread()) or item, ["one"], 4) == [("one", "one", None)]
    assert seen == [threading.current_thread()]
    assert _each(lambda item: item, [], 4) == []


def test_each_lets_other_exceptions_through():
    def action(n):
        if n == 2:
            raise KeyError(n)
        return n

    with pytest.raises(KeyError):
        _each(action, [1, 2, 3], 2)


@needs_qemu
def test_load_probes_many_vms_side_by_side(tmp_path, qemus):
    mgr = manager(tmp_path)
    vms = ["vm%d" % i for i in range(6)]
    for name in vms[:5]:
        # vm3's QEMU calls itself something else: it is not vm3, whatever its pidfile says.
        qemus.append(launch(RunPaths(mgr.run_dir, name), "other" if name == "vm3" else name))
    records = mgr.load(vms, need_cfg=False)
    assert [r.name for r in records] == vms
    assert [r.running for r in records] == [True, True, True, False, True, False]
    assert [r.pid for r in records if r.running] == [qemus[0], qemus[1], qemus[2], qemus[4]]
    assert set(r.status for r in records if r.running) == {"prelaunch"}
