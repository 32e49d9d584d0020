# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config: VMs' cfg files and registry entries, present or absent; one VM or a batch under one lock."""

from __future__ import annotations

import contextlib
import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._argspec import odd_dict_option
from ansible_collections.qemu_init.qemu.plugins.module_utils._artifacts import HostSide, check_no_shared_writable_disks
from ansible_collections.qemu_init.qemu.plugins.module_utils._autostart import DEFAULT_SYSTEMD_DIR, AutostartLink
from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import DAMAGED_CFG_HINT, CfgError, CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import DEFAULT_STATE_DIR, ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import firmware, tpm, vnc as vnc_kind
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths, cfg_path, vms_dir
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import ListeningPorts
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import (
    kvm_check_once,
    probe_many,
    restart_required,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import is_live_qemu, read_pidfile
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Registry, atomic_write, ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_short_name, check_vm_name
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import describe_nics, from_cfg, from_params, parse_cfg_text, read_cfg_text

SPEC_PARAMS = (
    "name", "os", "memory", "cpus", "machine", "accel", "disks", "cdroms", "kernel", "initrd", "append", "nics",
    "hubs", "bridge", "netns", "vnc", "vnc_listen", "vnc_password", "monitor_tcp", "autostart", "serial_log", "extra_args",
    "firmware", "secure_boot", "tpm", "guest_agent", "cloud_init",
)


def _read_text(path, name):
    """VM name's cfg file text, or None when it has none (_vmspec.read_cfg_text)."""
    return read_cfg_text(path, name)


def _disk_uses(spec):
    return [(os.path.realpath(d.file), d.readonly) for d in spec.disks] + \
        [(os.path.realpath(d.base_image), True) for d in spec.disks if d.base_image]


def _registry_line(entry):
    return "" if entry is None else "%s %s %d %s\n" % (entry.short_name, entry.name, entry.slot, ",".join(entry.macs))


def validate_items(raw_items, per_vm_spec, param="vms"):
    """[(prefix, validated params)] of a list of per-VM option dicts; errors name the item (`vms[2]`)."""
    # Imported here: the qemu-init command on the host imports this module without ansible installed.
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.module_utils.errors import UnsupportedError

    items = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise ParameterError("%s[%d]" % (param, i), "must be a dict of per-VM options, got %s" % type(raw).__name__)
        odd = odd_dict_option(per_vm_spec, raw)
        if odd is not None:
            raise ParameterError("%s[%d].%s" % (param, i, odd[0]), odd[1])
        checked = ArgumentSpecValidator(per_vm_spec).validate(raw)
        if checked.error_messages:
            raise ParameterError("%s[%d]" % (param, i), "; ".join(
                ("unsupported parameter %s" % err.msg) if isinstance(err, UnsupportedError) else err.msg
                for err in checked.errors))
        items.append(("%s[%d]." % (param, i), checked.validated_parameters))
    return items


@contextlib.contextmanager
def _item_errors(prefix, label):
    """Name a batch item in errors: `vms[2].nics[0].mcast: ...` for a parameter, `vms[2] (web1): ...` otherwise."""
    if not prefix:
        yield
        return
    try:
        yield
    except ParameterError as exc:
        raise ParameterError(prefix + exc.param, exc.problem) from exc
    except QemuInitError as exc:
        raise QemuInitError("%s (%s): %s" % (prefix.rstrip("."), label, exc.msg), **exc.details) from exc


class _Change:
    """What one VM's cfg file and registry entry are (`before`, `entry_now`) and become (`after`, `entry`).

    `after` None means the cfg file is removed, `entry` None that the registry entry is.
    """

    def __init__(self, name, path, before, after, entry_now, entry, result, ports=None, link=None, link_after=False,
                 artifacts=(), parsed_after=None):
        self.name = name
        self._spec_after = None
        self._parsed_after = parsed_after  # the CfgFile of `after` when it was parsed already (an unchanged cfg)
        self.artifacts = [a for a in artifacts if a.changed]  # _artifacts: disks to make or grow, the seed
        self.link = link  # _autostart.AutostartLink, or None where the host has no systemd unit directory
        self.link_before = bool(link and link.enabled())
        self.link_after = bool(link and link_after)
        self.ports = ports  # _registry.ports_info of the slot it keeps or gets (None when removed)
        self.path = path
        self.before = before
        self.after = after
        self.entry_now = entry_now
        self.entry = entry
        self.result = result

    @property
    def spec_after(self):
        """The VM's spec as its cfg reads after this call (None when the cfg is removed): parsed once, for every
        question asked of it (restart_required, wait_for, shared disks)."""
        if self._spec_after is None and self.after is not None:
            if self._parsed_after is not None:
                self._spec_after = from_cfg(self._parsed_after, self.path)
            else:
                self._spec_after = parse_cfg_text(self.after, self.path)[1]
        return self._spec_after

    @property
    def file_changed(self):
        return self.before != self.after

    @property
    def link_changed(self):
        return self.link_before != self.link_after

    @property
    def changed(self):
        return self.file_changed or self.entry != self.entry_now or self.link_changed or bool(self.artifacts)

    def diffs(self, registry_path):
        diffs = [a.diff() for a in self.artifacts] + [
            dict(before_header=self.path, after_header=self.path, before=self.before or "", after=self.after or ""),
            dict(before_header=registry_path, after_header=registry_path,
                 before=_registry_line(self.entry_now), after=_registry_line(self.entry)),
        ]
        if self.link_changed:
            diffs.append(dict(before_header=self.link.path, after_header=self.link.path,
                              before=self.link.line(self.link_before), after=self.link.line(self.link_after)))
        return diffs

    def apply(self):
        # The disks and the seed first: the cfg never names a seed or overlay that is not there.
        applied = []
        try:
            for artifact in self.artifacts:
                applied.append(artifact)  # before apply: a half-made file (a full disk) is undone too
                artifact.apply()
        except (OSError, QemuInitError) as exc:
            for artifact in reversed(applied):
                with contextlib.suppress(OSError, QemuInitError):
                    artifact.undo()
            msg = exc.msg if isinstance(exc, QemuInitError) else (exc.strerror or str(exc))
            details = exc.details if isinstance(exc, QemuInitError) else {}
            raise QemuInitError("VM %s: %s" % (self.name, msg), **details) from exc
        if self.file_changed:
            if self.after is not None:
                atomic_write(self.path, self.after, mode=0o644)
            else:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise QemuInitError("removing %s failed: %s" % (self.path, exc.strerror)) from exc
        if self.link_changed:
            self.link.set(self.link_after)

    def undo(self):
        for artifact in reversed(self.artifacts):
            with contextlib.suppress(OSError, QemuInitError):
                artifact.undo()
        if self.link_changed:
            with contextlib.suppress(QemuInitError):
                self.link.set(self.link_before)
        if not self.file_changed:
            return
        if self.before is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            atomic_write(self.path, self.before, mode=0o644)


class VmConfig:
    """Converge one VM (the module's top-level options) or many (`vms`), under one registry lock.

    Every item is validated before the registry is touched; then all are planned against one in-memory
    registry (so a batch gets distinct slots and sees MAC clashes between its own VMs); then the cfg files are
    written and the registry saved once. If a write fails, the cfg files already written are put back.
    """

    def __init__(self, module, per_vm_spec=None):
        self.module = module
        self.params = module.params
        self.config_dir = self.params["config_dir"]
        self.run_dir = self.params["run_dir"]
        self.state_dir = self.params.get("state_dir") or DEFAULT_STATE_DIR
        self.registry = Registry(self.config_dir)
        self.host_side = HostSide(module, self.state_dir, self.run_dir)
        self._artifacts = {}
        self.check_mode = module.check_mode
        self.per_vm_spec = per_vm_spec or {}
        self._devices = None
        self._models_checked = set()
        self._models_to_check = []  # (prefix, spec): checked against QEMU's NIC models once the plan is made
        # The TCP ports listened on per network namespace, read once per namespace: a plan made again under the
        # lock uses the same reading (what keeps our own concurrent calls apart is the registry, read again there),
        # unless the call stopped VMs in between (forget_listening_ports).
        self._listening = ListeningPorts(module)
        self._rendered = {}  # cfg path -> (spec, text read, that text parsed, text rendered) from _cfg_would_change

    def run(self):
        if self.params.get("vms") is None:
            change = self._converge([("", self.params)])[0]
            self._report_runtime([change])
            result = dict(change.result, changed=change.changed, cfg_exists=self.cfg_exists(change))
            if self.module._diff:
                result["diff"] = change.diffs(self.registry.path)
            return result
        changes = self._converge(self._batch_items())
        self._report_runtime(changes)
        result = dict(changed=any(c.changed for c in changes),
                      vms=[dict(c.result, changed=c.changed, cfg_exists=self.cfg_exists(c)) for c in changes])
        if self.module._diff:
            result["diff"] = [d for c in changes if c.changed for d in c.diffs(self.registry.path)]
        return result

    def _report_runtime(self, changes):
        """Add running, pid and restart_required to the result of each VM kept (state=present).

        Done after the registry lock is released; reads only."""
        self.report_runtime([c for c in changes if c.after is not None])

    def report_runtime(self, changes):
        """Add running, pid and restart_required to each change's result, probed as the vm module probes
        (_probe.probe_many), all at once. restart_required compares the VM's launch record with the arguments the
        cfg gives after this call (in check mode: would give), as `vm state=present` would then; a VM whose cfg
        is removed has none."""
        kvm_check = kvm_check_once()
        runs = [RunPaths(self.run_dir, change.name) for change in changes]
        # The run status is not reported here.
        probed = probe_many([(change.name, run) for change, run in zip(changes, runs)], status=False)
        for change, run, (pid, running, _status) in zip(changes, runs, probed):
            required = False
            if running and change.after is not None:
                required = restart_required(run, change.spec_after, change.ports, change.entry.short_name, kvm_check,
                                            StatePaths(self.state_dir, change.name))
            change.result.update(running=running, pid=pid, restart_required=required)

    def forget_listening_ports(self):
        """The next plan reads the ports listened on again: the caller stopped VMs, whose ports are free now."""
        self._listening = ListeningPorts(self.module)

    def cfg_exists(self, change):
        """Does the VM's cfg file exist once this call is done? (In check mode: as it was.)"""
        return (change.before if self.check_mode else change.after) is not None

    def _batch_items(self):
        for key, option in self.per_vm_spec.items():
            if key != "name" and self.params.get(key) != option.get("default", [] if option.get("type") == "list" else None):
                raise ParameterError(key, "set it in each item of vms (with vms, the per-VM options at the top level are not used)")
        return validate_items(self.params["vms"], self.per_vm_spec)

    def _converge(self, items, running_ok=False):
        prepared = self._prepare(items)
        self._settle_nic_models()  # bad input is refused before the lock creates anything
        return self._with_registry(lambda reg: self._plan_and_apply(reg, prepared, running_ok))

    def converge(self, items, running_ok=False):
        """Write the cfg files and registry entries of items [(prefix, params)] (not in check mode); their _Changes.

        running_ok: a VM to remove may still be running (its caller stopped it, or vouches for it)."""
        return self._converge(items, running_ok)

    def plan(self, items, running_ok=False):
        """The _Changes that converge(items) would make, from one read of the registry; writes nothing.

        running_ok: a VM to remove may be running (the vms module stops it before it removes it).
        """
        return self._plan(self.registry.read(), self._prepare(items), running_ok)

    def _prepare(self, items):
        # Everything that can be checked without the registry is checked before we touch anything.
        prepared = []
        for prefix, params in items:
            with _item_errors(prefix, params.get("name")):
                check_vm_name(params["name"], "name")
                if params.get("short_name"):
                    check_short_name(params["short_name"])
                spec = None
                if params["state"] == "present":
                    spec = self._spec(params, params["name"])
                    if self._cfg_would_change(spec):
                        self._check_host(spec)
                        self._check_nic_models(prefix, spec)
            prepared.append((prefix, params, spec))
        return prepared

    def _spec(self, params, name):
        values = dict((k, params.get(k)) for k in SPEC_PARAMS)
        values["name"] = name
        # Relative disk files, formats read once, disks to make and the seed: planned now, made when applied.
        self._artifacts[name] = self.host_side.prepare(values, name, lambda: self._spec_now(name))
        return from_params(values, check_files=True)

    def _spec_now(self, name):
        """The VM's spec as its cfg file gives it now, or None (no file, or one that does not parse)."""
        path = cfg_path(self.config_dir, name)
        try:
            text = _read_text(path, name)
            return parse_cfg_text(text, path)[1] if text is not None else None
        except QemuInitError:
            return None

    def _cfg_would_change(self, spec):
        """Would vm_config write this VM's cfg file? QEMU is asked for its NIC models (`-device help`, 0.2-0.5 s)
        only then: an idempotent run does not pay for it. A hint read without the lock; _plan_present checks
        again on what it reads under the lock."""
        path = cfg_path(self.config_dir, spec.name)
        try:
            before = _read_text(path, spec.name)
            existing = CfgFile.parse(before, path) if before is not None else None
            after = spec.render_onto(existing)
        except QemuInitError:
            return True  # a damaged file is reported when it is planned
        self._rendered[path] = (spec, before, existing, after)
        return after != before

    def _check_host(self, spec):
        """What the VM needs of this host besides QEMU: OVMF for uefi, swtpm for tpm, disks QEMU can open (no backing
        chain that loops). Checked when its cfg would change, before anything is written (at launch it would fail
        only after vm_config reported success)."""
        firmware.check_host(spec)
        tpm.check_host(self.module, spec)
        self.host_side.check_chains(spec)

    def _check_nic_models(self, prefix, spec):
        """Check spec's NIC models against QEMU's when the plan is made (_settle_nic_models); QEMU is asked from now
        on, in a thread, unless its answer is cached."""
        self._models_checked.add(spec.name)
        if not spec.nics:
            return
        # lazy: an idempotent run asks QEMU nothing
        from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_help import QemuDevices

        if self._devices is None:
            binary = self.module.get_bin_path(self.params["qemu_binary"], required=False)
            self._devices = QemuDevices(self.module, binary, self.run_dir) if binary else False
        if isinstance(self._devices, QemuDevices):
            self._devices.prefetch()
            self._models_to_check.append((prefix, spec))

    def _settle_nic_models(self):
        """The NIC model checks _check_nic_models put off, in item order, before the plan is used."""
        pending, self._models_to_check = self._models_to_check, []
        devices = self._devices
        if not devices:
            return  # nothing is pending without a QEMU to ask (see _check_nic_models)
        for prefix, spec in pending:
            with _item_errors(prefix, spec.name):
                devices.check_nic_models(spec, lambda i: "nics[%d].model" % (i - 1))

    def _with_registry(self, action):
        if self.check_mode:
            return action(self.registry.read())  # check mode reads, never locks or creates files
        with self.registry.locked() as reg:
            return action(reg)

    def _plan_and_apply(self, reg, prepared, running_ok=False):
        changes = self._plan(reg, prepared, running_ok)
        self._check_shared_disks(reg, changes)
        if not self.check_mode and any(c.changed for c in changes):
            self._apply(reg, changes)
            if self._devices:
                self._devices.save()  # QEMU's NIC models, once this call's own changes are made
        return changes

    def _check_shared_disks(self, reg, changes):
        """Two VMs writing one disk: refused before launch, naming both (QEMU's image locking would stop the second
        at launch only, and not on every filesystem). Overlays' bases are read-only uses."""
        mine = set(c.name for c in changes)
        uses = {}
        for change in changes:
            if change.after is not None and change.file_changed:
                uses[change.name] = _disk_uses(change.spec_after)
        if not any(uses.values()):
            return  # no cfg gains or changes a disk: nothing new can clash (and a re-run reads no other cfg)
        for entry in reg.entries():
            if entry.name in mine:
                continue
            path = cfg_path(self.config_dir, entry.name)
            try:
                text = _read_text(path, entry.name)
                if text is not None:
                    uses[entry.name] = _disk_uses(parse_cfg_text(text, path)[1])
            except QemuInitError:
                continue  # its own damage is reported when it is used
        check_no_shared_writable_disks(uses)

    def _plan(self, reg, prepared, running_ok=False):
        changes = []
        seen: dict[str, str] = {}
        for prefix, params, spec in prepared:
            with _item_errors(prefix, params["name"]):
                if spec is None:
                    change = self._plan_absent(reg, params, running_ok)
                else:
                    change = self._plan_present(reg, params, spec, prefix)
                if change.name in seen:
                    alias = "" if params["name"] == change.name else " (%s is its short name)" % params["name"]
                    raise ParameterError("name", "VM %s is already listed in %s%s" % (change.name, seen[change.name], alias))
            seen[change.name] = prefix.rstrip(".")
            changes.append(change)
        self._settle_nic_models()
        return changes

    def _plan_present(self, reg, params, spec, prefix):
        entry_now = reg.resolve(spec.name)
        if entry_now is not None and entry_now.name != spec.name:
            # `name` was a short name: work on the VM it stands for.
            spec = self._spec(params, entry_now.name)
        else:
            entry_now = reg.get(spec.name)
        path = cfg_path(self.config_dir, spec.name)
        before = _read_text(path, spec.name)
        hint = self._rendered.get(path)
        if hint is not None and hint[0] is spec and hint[1] == before:
            existing, after = hint[2], hint[3]  # the same spec onto the same text: parsed and rendered once (100 VMs: ~10 ms less)
        else:
            try:
                existing = CfgFile.parse(before, path) if before is not None else None  # a damaged file stops us here
            except CfgError as exc:
                raise CfgError("%s; %s" % (exc.msg, DAMAGED_CFG_HINT)) from exc
            after = spec.render_onto(existing)
        if after != before and spec.name not in self._models_checked:
            self._check_nic_models(prefix, spec)  # the file changed since _cfg_would_change looked, or `name` was a short name
        own = spec.listened_tcp_ports()
        # A new VM's slot also avoids the ports its own NICs will listen on.
        entry = reg.plan_register(spec.name, params.get("short_name"), spec.macs(),
                                  listening=(self._listening.get(spec.netns) | frozenset(own)) if entry_now is None else ())
        ports = ports_info(reg.base, entry.slot)
        for port, label in ((ports["monitor_port"], "monitor_tcp"), (ports["control_port"], "monitor_tcp"), (ports["vnc_port"], "vnc")):
            if port in own and (vnc_kind.listens_tcp(spec) if label == "vnc" else getattr(spec, label)):
                # QEMU would fail to bind one of the two at launch: refused now, naming the NIC.
                raise ParameterError(own[port], "port %d is also the %s port of VM %s (slot %d), which %s=true listens on"
                                     % (port, "VNC" if label == "vnc" else "monitor/control", spec.name, entry.slot, label))
        reg.put(entry)  # the next VM of a batch sees this one's slot, short name and MACs
        result = dict(name=spec.name, short_name=entry.short_name, path=path,
                      nics=describe_nics(spec, entry.short_name), macs=spec.macs(), cfg=dict(spec.cfg_items()),
                      hubs=[dict(id=h.id, tap=spec.hub_tap(h, entry.short_name), bridge=spec.hub_bridge(h)) for h in spec.hubs])
        result.update(ports)
        link = self._link(spec.name)
        result["autostart"] = spec.autostart
        if spec.cidata:
            result["cloud_init"] = dict(seed=spec.cidata, instance_id=spec.cidata_id)
        result["vnc_socket"] = vnc_kind.socket_path(spec, RunPaths(self.run_dir, spec.name))
        result["state_dir"] = StatePaths(self.state_dir, spec.name).dir
        return _Change(spec.name, path, before, after, entry_now, entry, result, ports, link, spec.autostart,
                       self._artifacts.get(spec.name, ()), parsed_after=existing if after == before else None)

    def _link(self, name):
        link = AutostartLink(self.params.get("systemd_dir") or DEFAULT_SYSTEMD_DIR, name)
        return link if link.managed() else None

    def _plan_absent(self, reg, params, running_ok=False):
        entry = reg.resolve(params["name"])
        name = entry.name if entry else params["name"]
        path = cfg_path(self.config_dir, name)
        before = _read_text(path, name)
        pid = read_pidfile(RunPaths(self.run_dir, name).pidfile, name)
        if not running_ok and (before is not None or entry) and is_live_qemu(pid):
            raise ParameterError("state", "VM %s is running (pid %d); stop and remove it with qemu_init.qemu.vm state=absent" % (name, pid))
        if entry is not None:
            reg.remove(name)
        return _Change(name, path, before, None, entry, None, dict(name=name, path=path), link=self._link(name))

    def _apply(self, reg, changes):
        if any(c.after is not None and c.file_changed for c in changes):
            try:
                os.makedirs(vms_dir(self.config_dir), mode=0o755, exist_ok=True)
            except OSError as exc:
                raise QemuInitError("creating %s failed: %s" % (vms_dir(self.config_dir), exc.strerror or exc)) from exc
        done = []
        try:
            for change in changes:
                # A seed or overlay that went missing under an unchanged cfg is made again: the cfg names it.
                if change.file_changed or change.link_changed or change.artifacts:
                    change.apply()
                    done.append(change)
            if any(c.entry != c.entry_now for c in changes):
                self.registry.save(reg)
        except QemuInitError as exc:
            if not done:
                raise
            # Put the cfg files back as they were, so cfg files and registry never disagree.
            not_restored = []
            for change in reversed(done):
                try:
                    change.undo()
                except (OSError, QemuInitError):
                    not_restored.append(change.path)
            what = "cfg file%s of %s" % ("s" if len(done) > 1 else "", ", ".join(c.name for c in done))
            if not_restored:
                raise QemuInitError("%s; restoring the %s failed for %s" % (exc.msg, what, ", ".join(not_restored)), **exc.details) from exc
            raise QemuInitError("%s; the %s restored, nothing changed" % (exc.msg, what), **exc.details) from exc
