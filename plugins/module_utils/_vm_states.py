# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the vm, vm_info and monitor modules do, on top of the VM manager."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import cfg_path
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import Found, plan
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_cmdline
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import observer_socket
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient, QmpError
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import QMP_TIMEOUT, StopTimeout, VmManager
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm_config import describe_nics

VM_KEYS = ("name", "running", "pid", "changed", "stop_method", "stop_seconds", "start_seconds", "restart_required")


def name_list(value, param="name", required=True):
    """A `name` parameter given as one name or a list of names."""
    if value is None or value == [] or value == "":
        if required:
            raise ParameterError(param, "give a VM name or a list of names")
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ParameterError(param, "must be a VM name or a list of VM names, got %r" % (value,))
    return names


def converge(module):
    """The vm module: bring each named VM to `state` in one call (stops in parallel)."""
    params = module.params
    state, check = params["state"], module.check_mode
    names = name_list(params["name"])
    manager = VmManager(module)
    records = manager.load(names, need_cfg=state != "absent")
    results = dict((r.name, dict(name=r.name, running=r.running, pid=r.pid, changed=False, stop_method=None,
                                 stop_seconds=None, start_seconds=None, restart_required=False)) for r in records)

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
    return _result([results[r.name] for r in records])


def _vm_result(result):
    return dict((k, result[k]) for k in VM_KEYS)


def _result(vm_results):
    out = dict(changed=any(r["changed"] for r in vm_results), vms=[_vm_result(r) for r in vm_results])
    if len(vm_results) == 1:
        out.update(_vm_result(vm_results[0]))
    return out


def info(module):
    """The vm_info module: facts of the named VMs, or of all."""
    manager = VmManager(module)
    names = name_list(module.params.get("name"), required=False) or manager.all_names()
    records = manager.load(names, need_cfg=False)
    base = manager.registry_snapshot().base
    vms = []
    for r in records:
        item = dict(name=r.name, exists=manager.exists(r), short_name=r.short_name, running=r.running, pid=r.pid, status=r.status,
                    cfg_path=cfg_path(manager.config_dir, r.name) if r.spec else None, serial_log=r.serial_log,
                    netns=r.spec.netns if r.spec else None,
                    vnc=r.spec.vnc if r.spec else None, monitor_tcp=r.spec.monitor_tcp if r.spec else None,
                    nics=describe_nics(r.spec, r.short_name) if r.spec else [],
                    restart_required=manager.restart_required(r))
        if r.entry:
            item.update(ports_info(base, r.entry.slot))
        else:
            item.update(slot=None, monitor_port=None, control_port=None, vnc_display=None, vnc_port=None)
        vms.append(item)
    return dict(changed=False, vms=vms)


def is_read_only(command=None, qmp=None):
    if qmp is not None:
        return qmp.startswith("query-")
    words = (command or "").split()
    return bool(words) and words[0] in ("info", "i")


def monitor(module):
    """The monitor module: one HMP or QMP command to one running VM."""
    params = module.params
    manager = VmManager(module)
    record = manager.load([params["name"]])[0]
    if not record.running:
        raise QemuInitError("VM %s is not running; start it with qemu_init.qemu.vm" % record.name)
    read_only = is_read_only(params.get("command"), params.get("qmp"))
    result = dict(changed=not read_only, name=record.name)
    if module.check_mode and not read_only:
        result["skipped"] = True
        result["msg"] = "not sent in check mode: the command may change the VM"
        return result
    # The observer monitor, held for this one command: the lifecycle one may be held by a stop in progress.
    with QmpClient(observer_socket(record.run, proc_cmdline(record.pid)), timeout=QMP_TIMEOUT) as qmp:
        if params.get("command") is not None:
            output = qmp.hmp(params["command"])
            first = output.strip().splitlines()[0] if output.strip() else ""
            # HMP reports its errors as text, not as QMP errors.
            if first.startswith(("unknown command", "Error:")) or "Try \"help\"" in output:
                raise QemuInitError("HMP command %r failed on VM %s: %s" % (params["command"], record.name, output.strip()))
            result["output"] = output
        else:
            try:
                result["return"] = qmp.command(params["qmp"], params.get("arguments") or None)
            except QmpError as exc:
                raise QemuInitError("QMP command %s failed on VM %s: %s: %s" % (params["qmp"], record.name, exc.error_class, exc.desc)) from exc
    return result
