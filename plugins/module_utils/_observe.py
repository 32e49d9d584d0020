# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the vm_info and monitor modules do: look at VMs, and send one command to a running one.

Built on the inventory only (_inventory.py), not on the VM manager: a module that looks carries no start or stop
machinery (bridges, taps, launches, the stop ladder) in its payload.
"""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import vnc as vnc_kind
from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import VmInventory, name_list
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import cfg_path
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import PROBE_PARALLEL, QMP_TIMEOUT, each
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_cmdline
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import observer_socket
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient, QmpError
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import describe_nics

# How long vm_info waits for a guest agent (one that is not up yet must not hold the task for long).
GUEST_TIMEOUT = 2.0


def info(module):
    """The vm_info module: facts of the named VMs, or of all."""
    manager = VmInventory(module)
    names = name_list(module.params.get("name"), required=False) or manager.all_names()
    records = manager.load(names, need_cfg=False)
    base = manager.registry_snapshot().base
    vms = []
    for r in records:
        item = dict(name=r.name, exists=manager.exists(r), short_name=r.short_name, running=r.running, pid=r.pid, status=r.status,
                    cfg_path=cfg_path(manager.config_dir, r.name) if r.spec else None, serial_log=r.serial_log,
                    netns=r.spec.netns if r.spec else None,
                    vnc=r.spec.vnc if r.spec else None, monitor_tcp=r.spec.monitor_tcp if r.spec else None,
                    vnc_socket=vnc_kind.socket_path(r.spec, r.run) if r.spec else None,
                    vnc_password_set=bool(r.spec.vnc and r.spec.vnc_password_id) if r.spec else None,
                    nics=describe_nics(r.spec, r.short_name) if r.spec else [],
                    restart_required=manager.restart_required(r), tpm=_tpm(r))
        if r.entry:
            item.update(ports_info(base, r.entry.slot))
        else:
            item.update(slot=None, monitor_port=None, control_port=None, vnc_display=None, vnc_port=None)
        vms.append(item)
    # The guest agents answer side by side: a guest that does not answer costs its timeout once, not once per VM.
    for item, facts, error in each(_guest, records, PROBE_PARALLEL):
        vms[records.index(item)]["guest"] = None if error else facts
    return dict(changed=False, vms=vms)


def _tpm(record):
    """{running, pid} of the VM's swtpm for a VM with a TPM, else None. A running VM whose swtpm is gone (killed,
    crashed) runs on with a TPM that fails every command: restart it (docs/faults.md)."""
    if record.spec is None or not record.spec.tpm:
        return None
    from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

    pid = _swtpm.live_pid(_swtpm.tpm_paths(record.state.root, record.run.root, record.name))
    return dict(running=pid is not None, pid=pid)


def _guest(record):
    """The guest's facts from its agent ({hostname, os, interfaces, addresses}), or None when the VM has no agent
    channel, is not running, or its agent does not answer in time."""
    if not record.running or record.spec is None or not record.spec.guest_agent:
        return None
    # lazy: only VMs with an agent channel
    from ansible_collections.qemu_init.qemu.plugins.module_utils._qga import guest_facts

    return guest_facts(record.run.qga, GUEST_TIMEOUT)


def is_read_only(command=None, qmp=None):
    if qmp is not None:
        return qmp.startswith("query-")
    words = (command or "").split()
    return bool(words) and words[0] in ("info", "i")


def monitor(module):
    """The monitor module: one HMP or QMP command to one running VM."""
    params = module.params
    manager = VmInventory(module)
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
