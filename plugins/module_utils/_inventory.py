# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VMs of a host as they are: registry, cfg files, run dirs and processes, read and probed; nothing changed.

vm_info, monitor and the qemu-init command's status need only this; the VM manager (_vm.py) adds starting,
stopping and removing on top, so that a module that only looks does not carry the machinery that acts.
A VM is running when its pidfile names a live, non-zombie qemu-system process whose command line carries that
pidfile and which answers QMP query-name with the VM's name (_probe.probe).
"""

from __future__ import annotations

import contextlib
import json
import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import DAMAGED_CFG_HINT, CfgError
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import DEFAULT_STATE_DIR, ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import atomic_write
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import CFG_SUFFIX, RunPaths, StatePaths, cfg_path, vms_dir
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import (
    kvm_check_once,
    probe,
    probe_many,
    read_json,
    restart_required,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Registry, ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_vm_name
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import parse_cfg_text, read_cfg_text


class VmRecord:
    """One VM as found on disk and in the process table."""

    def __init__(self, name, entry, spec, cfg_text, run, state=None):
        self.name = name
        self.entry = entry          # registry Entry, or None for a hand-written cfg not yet registered
        self.spec = spec            # VmSpec, or None when the cfg file is missing
        self.cfg_text = cfg_text
        self.run = run              # RunPaths
        self.state = state or StatePaths(DEFAULT_STATE_DIR, name)  # StatePaths
        self._links = None          # links.json as last read or written by this call
        self.pid = None
        self.running = False
        self.status = None          # QMP run state ('running', 'paused', ...)

    @property
    def short_name(self):
        return self.entry.short_name if self.entry else None

    @property
    def serial_log(self):
        return (self.spec.serial_log if self.spec else None) or self.run.serial_log

    def made_links(self):
        """The taps the collection made for this VM and their namespace ({"netns": ..., "taps": [...]}; {} when none).

        links.json is read once per record and kept as record_links writes it: a start reads and writes it under
        the start lock, so no other call writes it meanwhile."""
        if self._links is None:
            self._links = read_json(self.run.links_record, "record of the taps made", self.name) or {}
        return self._links

    def record_links(self, netns, taps):
        """Write links.json: the taps made for this VM, in netns; none left removes the file."""
        if taps:
            self._links = dict(netns=netns, taps=sorted(taps))
            atomic_write(self.run.links_record, json.dumps(self._links) + "\n", mode=0o600, durable=False)
        else:
            self._links = {}
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.run.links_record)


def vm_exists(has_cfg, registered, run):
    """Is anything of a VM on the host (what `absent` has to remove): a cfg file, a registry entry or a run dir?"""
    return bool(has_cfg or registered or os.path.isdir(run.dir))


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


class VmInventory:
    """The VMs of one config_dir and run_dir, read once per module run and probed side by side."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.config_dir = self.params["config_dir"]
        self.run_dir = self.params["run_dir"]
        self.state_dir = self.params.get("state_dir") or DEFAULT_STATE_DIR
        self.registry = Registry(self.config_dir)
        self._binary = None
        self._registry_state = None
        self._kvm_usable = kvm_check_once()

    # --- reading -------------------------------------------------------------------------
    def registry_snapshot(self):
        """The registry as read once per module run, for names and the base port.

        Changes are always made on a fresh read under the lock (Registry.locked), never on this.
        """
        if self._registry_state is None:
            self._registry_state = self.registry.read()
        return self._registry_state

    def all_names(self):
        """Every VM known here: registered ones and those with a cfg file."""
        names = [e.name for e in sorted(self.registry_snapshot().entries(), key=lambda e: e.slot)]
        try:
            files = sorted(os.listdir(vms_dir(self.config_dir)))
        except FileNotFoundError:
            files = []
        for fname in files:
            if fname.endswith(CFG_SUFFIX) and fname[:-len(CFG_SUFFIX)] not in names:
                stem = fname[:-len(CFG_SUFFIX)]
                try:
                    check_vm_name(stem, "name")
                except ParameterError as exc:
                    # Not "name: ...": no name was given; a file in the directory is what is wrong.
                    raise QemuInitError("%s: the file name does not give a VM name (%s); rename it to <NAME>-qemu.cfg after "
                                        "the NAME it holds, or move it out of %s"
                                        % (os.path.join(vms_dir(self.config_dir), fname), exc.problem, vms_dir(self.config_dir))) from exc
                names.append(stem)
        return names

    def load(self, names, need_cfg=True):
        """VmRecords for names (long or short), each probed; one registry read for all."""
        state = self.registry_snapshot()
        records, seen = [], set()
        for given in names:
            entry = state.resolve(given)
            name = entry.name if entry else check_vm_name(given, "name")
            if name in seen:
                continue
            seen.add(name)
            path = cfg_path(self.config_dir, name)
            spec = None
            text = read_cfg_text(path, name)  # None when there is no file; anything unreadable raises, naming it
            if text is not None:
                try:
                    cfg, spec = parse_cfg_text(text, path)
                except CfgError as exc:
                    raise QemuInitError("cannot read the cfg file of VM %s: %s; %s" % (name, exc.msg, DAMAGED_CFG_HINT)) from exc
                text = cfg.render()
                if spec.name != name:
                    raise QemuInitError("%s: NAME is %r but the file belongs to VM %r; fix NAME or rename the file" % (path, spec.name, name))
            elif need_cfg:
                raise QemuInitError("VM %s has no cfg file (%s); create it with qemu_init.qemu.vm_config" % (name, path))
            records.append(VmRecord(name, entry, spec, text, RunPaths(self.run_dir, name), StatePaths(self.state_dir, name)))
        # A probe mostly waits for its QEMU's QMP answers: all VMs are asked at once.
        probed = probe_many([(r.name, r.run) for r in records])
        for record, (pid, running, status) in zip(records, probed):
            record.pid, record.running, record.status = pid, running, status
        return records

    def probe(self, record):
        """Set record.pid/running/status from the pidfile, /proc and QMP (_probe.probe). Touches nothing."""
        record.pid, record.running, record.status = probe(record.name, record.run)
        return record

    def restart_required(self, record):
        """True when a running VM was launched with other arguments than its cfg gives now."""
        if not record.running or record.spec is None or record.entry is None:
            return False
        entry = record.entry
        return restart_required(record.run, record.spec, ports_info(self.registry_snapshot().base, entry.slot),
                                entry.short_name, self._kvm_usable, record.state)

    def exists(self, record):
        return vm_exists(record.spec is not None, record.entry is not None, record.run)
