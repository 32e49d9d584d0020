# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is a VM running, and was it launched as its cfg says now? Shared by the vm, vm_info and vm_config modules.

Reads the pidfile, /proc, the launch record and asks QMP; changes nothing. Kept apart from the VM manager so
that vm_config can report the same facts without loading the start and stop machinery.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_json as _read_json
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import is_live_qemu, proc_cmdline, read_pidfile
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv, kvm_usable, observer_socket, resolve_accel
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClosed, QmpConnectError, QmpTimeout, pipeline_many

QMP_TIMEOUT = 5.0
# Work that mostly waits for many QEMUs or guests (stop ladders, guest facts) runs this many at a time.
PROBE_PARALLEL = 16


def each(action, items, limit):
    """action(item) for every item, up to `limit` at a time; [(item, result, QemuInitError or None)] in order.

    A single item runs in the calling thread: the one-VM path has no threads. Other exceptions propagate.
    """
    if len(items) <= 1:
        try:
            return [(item, action(item), None) for item in items]
        except QemuInitError as exc:
            return [(items[0], None, exc)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        futures = [pool.submit(action, item) for item in items]
    outcomes = []
    for item, future in zip(items, futures):
        error = future.exception()
        if error is not None and not isinstance(error, QemuInitError):
            raise error
        outcomes.append((item, None if error else future.result(), error))
    return outcomes


def probe(name, run, status=True):
    """(pid, running, QMP run status) of VM `name` with RunPaths `run`. Touches nothing (probe_many of one VM)."""
    return probe_many([(name, run)], status)[0]


def probe_many(vms, status=True):
    """[(pid, running, QMP run status)] of every (name, RunPaths) in vms, in order; their QMP questions all at once
    (_qmp.pipeline_many). Touches nothing. QemuInitError for a VM whose QEMU does not answer.

    Running means: the pidfile names a live qemu-system process (not a zombie) whose command line carries
    that very pidfile, and which answers QMP query-name (on its observer monitor) with the VM's name. A pid alone proves nothing:
    pidfiles outlive processes and pids are reused. status=False: the run status is not asked for (None).
    """
    found: list[tuple[int | None, bool, str | None]] = [(None, False, None)] * len(vms)
    asked = []  # (index in vms, pid, observer socket)
    for index, (name, run) in enumerate(vms):
        pid = read_pidfile(run.pidfile, name)
        argv = proc_cmdline(pid) if pid else []
        if is_live_qemu(pid, argv=argv) and run.pidfile in argv:
            # The observer monitor: the lifecycle one may be held by a stop in progress (QEMU serves one client per
            # monitor socket). A QEMU launched before it existed has only qmp.sock.
            asked.append((index, pid, observer_socket(run, argv)))
    # qmp_capabilities and the queries go in the connection's first write: one round trip to each QEMU.
    queries = ["qmp_capabilities", "query-name"] + (["query-status"] if status else [])
    outcomes = pipeline_many([(path, queries) for _index, _pid, path in asked], timeout=QMP_TIMEOUT)
    for (index, pid, path), outcome in zip(asked, outcomes):
        name = vms[index][0]
        if isinstance(outcome, (QmpConnectError, QmpClosed)):
            continue  # exiting right now, or its socket is gone: not running as this VM
        if isinstance(outcome, QmpTimeout):
            # Never treat it as stopped: a second QEMU on the same pidfile and disks would follow.
            raise QemuInitError("VM %s: QEMU pid %d does not answer QMP on %s (%s); is another QMP client connected to it, "
                                "or is QEMU hung?" % (name, pid, path, outcome.msg)) from outcome
        if isinstance(outcome, QemuInitError):
            raise outcome
        if outcome[1].get("name") == name:
            found[index] = (pid, True, outcome[2].get("status") if status else None)
    return found


def read_json(path, what="run-time record", vm=None):
    """The JSON document in path, or None when there is no such file (_files.read_json)."""
    return _read_json(path, what, vm)


def kvm_check_once():
    """A kvm_check for launch_argv that opens /dev/kvm at most once (a module run asks for every VM)."""
    return functools.lru_cache(maxsize=None)(kvm_usable)


def launch_argv(spec, binary, run, ports, short_name, kvm_check, state=None):
    """The argv the vm module launches `spec` with (ports: _registry.ports_info of its slot; state: StatePaths)."""
    return build_argv(spec, binary, run, ports, short_name, resolve_accel(spec.accel, kvm_check),
                      ipv6_loopback=os.path.exists("/proc/sys/net/ipv6"), state_paths=state)


def restart_required(run, spec, ports, short_name, kvm_check, state=None):
    """Was the VM whose run dir is `run` launched with other arguments than `spec` gives now? The one
    definition of restart_required, for every module. Ask only of a running VM (probe)."""
    return launched_otherwise(run, lambda: launch_argv(spec, "qemu-system", run, ports, short_name, kvm_check, state))


def launched_otherwise(run, desired):
    """True when the VM's launch record shows other arguments than `desired` (a list, or a callable giving one).

    argv[0] is left out: the same qemu found at another path is not a reason to restart. A VM without a launch
    record (started by hand, or by an older release) is never reported.
    """
    launched = (read_json(run.launch_record, "launch record", run.name) or {}).get("argv")
    if not launched:
        return False
    return launched[1:] != (desired() if callable(desired) else desired)[1:]
