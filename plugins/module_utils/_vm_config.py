# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config: one VM's cfg file and registry entry, present or absent."""

from __future__ import annotations

import contextlib
import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, cfg_path, vms_dir
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import listening_tcp_ports
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import is_live_qemu, read_pidfile
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_help import QemuDevices
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Registry, atomic_write, ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_short_name, check_vm_name
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params

SPEC_PARAMS = (
    "name", "os", "memory", "cpus", "machine", "accel", "disks", "cdroms", "kernel", "initrd", "append", "nics",
    "hubs", "bridge", "netns", "vnc", "vnc_listen", "monitor_tcp", "serial_log", "extra_args",
)


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError) as exc:
        raise QemuInitError("reading %s failed: %s" % (path, exc))


def describe_nics(spec, short_name):
    return [
        dict(
            index=i,
            netdev="net%d" % (i - 1),
            model=nic.model,
            backend=nic.backend,
            mac=spec.nic_mac(i),
            mac_source="explicit" if nic.mac else "derived",
            tap=spec.nic_tap(i, short_name),
            bridge=spec.nic_bridge(i),
        )
        for i, nic in enumerate(spec.nics, start=1)
    ]


def _registry_line(entry):
    return "" if entry is None else "%s %s %d %s\n" % (entry.short_name, entry.name, entry.slot, ",".join(entry.macs))


class VmConfig:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.config_dir = self.params["config_dir"]
        self.run_dir = self.params["run_dir"]
        self.registry = Registry(self.config_dir)
        self.check_mode = module.check_mode

    def run(self):
        # Everything that can be checked without the registry is checked before we touch anything.
        check_vm_name(self.params["name"], "name")
        if self.params.get("short_name"):
            check_short_name(self.params["short_name"])
        if self.params["state"] == "absent":
            return self._with_registry(self._absent)
        spec = self._spec(self.params["name"])
        binary = self.module.get_bin_path(self.params["qemu_binary"], required=False)
        if binary and spec.nics:
            QemuDevices(self.module, binary).check_nic_models(spec, lambda i: "nics[%d].model" % (i - 1))
        return self._with_registry(lambda reg: self._present(reg, spec))

    def _spec(self, name):
        params = dict((k, self.params.get(k)) for k in SPEC_PARAMS)
        params["name"] = name
        return from_params(params, check_files=True)

    def _with_registry(self, action):
        if self.check_mode:
            return action(self.registry.read())  # check mode reads, never locks or creates files
        with self.registry.locked() as reg:
            return action(reg)

    def _present(self, reg, spec):
        entry_now = reg.resolve(spec.name)
        if entry_now is not None and entry_now.name != spec.name:
            # `name` was a short name: work on the VM it stands for.
            spec = self._spec(entry_now.name)
        else:
            entry_now = reg.get(spec.name)
        path = cfg_path(self.config_dir, spec.name)
        before = _read_text(path)
        existing = CfgFile.parse(before, path) if before is not None else None  # a damaged file stops us here
        after = spec.render_onto(existing)
        entry = reg.plan_register(spec.name, self.params.get("short_name"), spec.macs(),
                                  listening=listening_tcp_ports() if entry_now is None else ())
        changed = before != after or entry != entry_now
        if changed and not self.check_mode:
            self._write(reg, path, before, after, entry)
        result = dict(changed=changed, name=spec.name, short_name=entry.short_name, path=path,
                      nics=describe_nics(spec, entry.short_name), macs=spec.macs(), cfg=dict(spec.cfg_items()),
                      hubs=[dict(id=h.id, tap=spec.hub_tap(h, entry.short_name), bridge=spec.hub_bridge(h)) for h in spec.hubs])
        result.update(ports_info(reg.base, entry.slot))
        if self.module._diff:
            result["diff"] = [
                dict(before_header=path, after_header=path, before=before or "", after=after),
                dict(before_header=reg.path, after_header=reg.path, before=_registry_line(entry_now), after=_registry_line(entry)),
            ]
        return result

    def _write(self, reg, path, before, after, entry):
        os.makedirs(vms_dir(self.config_dir), mode=0o755, exist_ok=True)
        if before != after:
            atomic_write(path, after, mode=0o644)
        reg.put(entry)
        try:
            self.registry.save(reg)
        except QemuInitError as exc:
            # Put the cfg file back as it was, so cfg and registry never disagree.
            with contextlib.suppress(OSError, QemuInitError):
                if before is None:
                    os.unlink(path)
                elif before != after:
                    atomic_write(path, before, mode=0o644)
            raise QemuInitError("registering %s failed, cfg file restored: %s" % (entry.name, exc.msg))

    def _absent(self, reg):
        entry = reg.resolve(self.params["name"])
        name = entry.name if entry else self.params["name"]
        path = cfg_path(self.config_dir, name)
        before = _read_text(path)
        pid = read_pidfile(RunPaths(self.run_dir, name).pidfile)
        if (before is not None or entry) and is_live_qemu(pid):
            raise ParameterError("state", "VM %s is running (pid %d); stop and remove it with qemu_init.qemu.vm state=absent" % (name, pid))
        changed = before is not None or entry is not None
        if changed and not self.check_mode:
            if before is not None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise QemuInitError("removing %s failed: %s" % (path, exc.strerror))
            if entry is not None:
                reg.remove(name)
                self.registry.save(reg)
        result = dict(changed=changed, name=name, path=path)
        if self.module._diff:
            result["diff"] = [
                dict(before_header=path, after_header=path, before=before or "", after=""),
                dict(before_header=reg.path, after_header=reg.path, before=_registry_line(entry), after=""),
            ]
        return result
