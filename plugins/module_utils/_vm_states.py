# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the vm module does, on top of the VM manager and the planner (vm_info and monitor: _observe.py)."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import name_list
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import Found, plan
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import WAITING_STATES, StopTimeout, VmManager, check_waitable, wait_until_ready

VM_KEYS = ("name", "running", "pid", "changed", "stop_method", "stop_seconds", "start_seconds", "restart_required")
# With wait_for (DESIGN.md, "Real operating systems").
READY_KEYS = ("ready", "ready_seconds", "addresses", "ssh")


def converge(module):
    """The vm module: bring each named VM to `state` in one call (stops in parallel)."""
    params = module.params
    state, check = params["state"], module.check_mode
    names = name_list(params["name"])
    manager = VmManager(module)
    records = manager.load(names, need_cfg=state != "absent")
    results = dict((r.name, dict(name=r.name, running=r.running, pid=r.pid, changed=False, stop_method=None,
                                 stop_seconds=None, start_seconds=None, restart_required=False)) for r in records)

    wait_for = params.get("wait_for") or "none"
    if wait_for != "none" and state in WAITING_STATES:
        for r in records:  # before anything starts
            check_waitable(r.name, r.spec, wait_for, params.get("wait_pattern"))
    wants_restart_check = state in ("started", "present")
    steps = plan((Found(r.name, state, r.running, wants_restart_check and manager.restart_required(r), manager.exists(r))
                  for r in records), params["restart_on_change"]).steps
    by_name = dict((r.name, r) for r in records)
    to_stop = [by_name[s.name] for s in steps if s.stop]
    to_start = [by_name[s.name] for s in steps if s.start]
    to_remove = [by_name[s.name] for s in steps if s.remove]
    for step in steps:
        results[step.name].update(changed=step.changed, restart_required=step.restart_required,
                                  stop_method="none" if step.already_stopped else None)

    if not check:
        if to_stop:
            try:
                stopped = manager.stop(to_stop, params["shutdown_timeout"], params["force"])
            except StopTimeout as exc:
                for name, (method, seconds) in exc.results.items():
                    results[name].update(stop_method=method, stop_seconds=seconds, running=method is None)
                    results[name]["changed"] = method not in (None, "joined")
                    if method is not None:
                        results[name]["pid"] = None
                raise QemuInitError(exc.msg, vms=[_vm_result(results[r.name]) for r in records]) from exc
            for name, (method, seconds) in stopped.items():
                results[name].update(stop_method=method, stop_seconds=seconds, running=False, pid=None)
                if method == "joined" and state == "stopped":
                    results[name]["changed"] = False  # another call stopped it; this one only waited for that
        if to_start:
            times = manager.start(to_start)
            for r in to_start:
                results[r.name].update(running=r.running, pid=r.pid, start_seconds=times.get(r.name))
                if r.name not in times and r not in to_stop:
                    results[r.name]["changed"] = False  # another run started it meanwhile
        if to_remove:
            manager.remove(to_remove)
    if wait_for != "none" and state in WAITING_STATES:
        _wait(records, params, results, check)
    return _result([results[r.name] for r in records])


def _wait(records, params, results, check):
    """wait_for: every running VM of the call, in parallel; a VM not ready in time fails the task (it keeps running)."""
    if check:
        return
    try:
        wait_until_ready(records, params["wait_for"], params["wait_timeout"], params.get("wait_pattern"), results)
    except QemuInitError as exc:
        raise QemuInitError(exc.msg, vms=[_vm_result(results[r.name]) for r in records]) from exc


def _vm_result(result):
    return dict((k, result[k]) for k in VM_KEYS + READY_KEYS if k in result)


def _result(vm_results):
    out = dict(changed=any(r["changed"] for r in vm_results), vms=[_vm_result(r) for r in vm_results])
    if len(vm_results) == 1:
        out.update(_vm_result(vm_results[0]))
    return out
