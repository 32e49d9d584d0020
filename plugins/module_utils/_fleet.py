# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vms module: the desired state of many VMs (cfg files, registry entries, processes) in one call.

Read once, plan once, apply in phases:
1. validate every item and plan every cfg file and registry entry in memory (VmConfig.plan), VMs to remove
   first so that new VMs get the slots and MACs they free;
2. probe every VM side by side (running, restart_required against the cfg as it will be) and decide each
   VM's step with the pure planner (_plan.plan);
3. in check mode, report that; otherwise stop every VM to stop at once (one parallel ladder), remove what
   `absent` removes, write the cfg files and the registry under one lock, and start every VM to start
   (links per network namespace in one `ip -batch`, launches side by side, listeners before connectors).
"""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import vm_exists
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import STATES, Found, plan, unlisted
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import WAITING_STATES, StopTimeout, VmManager, check_waitable, wait_until_ready
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm_config import VmConfig, validate_items

# Per VM, what the lifecycle adds to vm_config's result (the vm module's keys).
LIFECYCLE_KEYS = ("state", "running", "pid", "stop_method", "stop_seconds", "start_seconds", "restart_required")


def item_argument_spec(per_vm_spec: dict[str, Any]) -> dict[str, Any]:
    """vm_config's per-VM options with the vms module's `state` (a VM's lifecycle state, default: the call's)."""
    spec = copy.deepcopy(per_vm_spec)
    spec["state"] = dict(type="str", choices=list(STATES))
    return spec


class Fleet:
    def __init__(self, module, per_vm_spec: dict[str, Any]):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.item_spec = item_argument_spec(per_vm_spec)
        self.config = VmConfig(module, per_vm_spec)
        self.manager = VmManager(module)
        self._config_items: list[tuple[str, dict[str, Any]]] = []  # vm_config items, removals first

    def run(self) -> dict[str, Any]:
        items = self._items()
        changes, states = self._plan_configs(items)
        self.config.report_runtime(changes)
        steps = plan((Found(c.name, states[c.name], c.result["running"], c.result["restart_required"],
                            vm_exists(c.before is not None, c.entry_now is not None, RunPaths(self.manager.run_dir, c.name)))
                      for c in changes), self.params["restart_on_change"]).steps
        if self.params["wait_for"] != "none":
            for change in changes:  # before anything is changed
                if change.after is not None and states[change.name] in WAITING_STATES:
                    check_waitable(change.name, change.spec_after, self.params["wait_for"], self.params.get("wait_pattern"))
        results = dict((c.name, self._result(c, states[c.name], step)) for c, step in zip(changes, steps))
        order = [c.name for c in changes]
        if not self.check_mode:
            self._apply(changes, steps, results, order)
        out = dict(changed=any(r["changed"] for r in results.values()), vms=[results[n] for n in order])
        if self.module._diff:
            out["diff"] = self._diffs(changes, steps)
        return out

    # --- reading and planning ------------------------------------------------------------
    def _items(self) -> list[tuple[str, dict[str, Any]]]:
        items = validate_items(self.params["vms"], self.item_spec)
        for _prefix, params in items:
            params["state"] = params["state"] or self.params["default_state"]
        return items

    def _plan_configs(self, items):
        """The cfg and registry _Changes of every VM in the order given (those `exclusive` adds last), and each
        VM's state by long name. Planned removals first: the slots, short names and MACs they free go to the new
        VMs of this call."""
        registry = self.manager.registry_snapshot()
        listed = []  # (position, prefix, vm_config params)
        states = {}
        for position, (prefix, params) in enumerate(items):
            entry = registry.resolve(params["name"])
            states[entry.name if entry else params["name"]] = params["state"]
            listed.append((position, prefix, dict(params, state="absent" if params["state"] == "absent" else "present")))
        if self.params["exclusive"]:
            for name in unlisted(self.manager.all_names(), list(states)):
                states[name] = "absent"
                listed.append((len(listed), "exclusive.", dict(name=name, state="absent")))
        ordered = sorted(listed, key=lambda item: item[2]["state"] != "absent")  # stable: removals first
        self._config_items = [(prefix, params) for _pos, prefix, params in ordered]
        changes = self.config.plan(self._config_items, running_ok=True)
        by_position = sorted(zip((pos for pos, _p, _x in ordered), changes), key=lambda pair: pair[0])
        return [change for _pos, change in by_position], states

    def _result(self, change, state: str, step) -> dict[str, Any]:
        result = dict(change.result)
        actions = [action for action in ("stop", "remove", "start") if getattr(step, action)]
        result.update(state=state, changed=change.changed or step.changed, cfg_exists=self.config.cfg_exists(change),
                      cfg_changed=change.changed, actions=actions,
                      restart_required=step.restart_required, stop_method="none" if step.already_stopped else None,
                      stop_seconds=None, start_seconds=None)
        return result

    # --- applying ------------------------------------------------------------------------
    def _apply(self, changes, steps, results, order) -> None:
        to_stop = [s.name for s in steps if s.stop]
        to_remove = [s.name for s in steps if s.remove]
        to_start = [s.name for s in steps if s.start]
        done: list[str] = []
        try:
            if to_stop:
                self._stop(to_stop, results)
                self.config.forget_listening_ports()  # the slots they free can go to this call's new VMs
                done.append("stopped %s" % ", ".join(to_stop))
            if to_remove:
                removed = self.manager.load(to_remove, need_cfg=False)
                self.manager.remove_runtime(removed)
                self.manager.remove_state(removed)
                done.append("removed the taps, run dirs and state of %s" % ", ".join(to_remove))
            if any(c.changed for c in changes):
                # One registry lock for every cfg file and registry entry, removals included (planned first).
                written = self.config.converge(self._config_items, running_ok=True)
                for change in written:  # the plan under the lock is the one that counts
                    results[change.name].update(change.result, cfg_exists=change.after is not None)
                done.append("wrote the cfg files and the registry")
            if to_start:
                records = self.manager.load(to_start)
                times = self.manager.start(records)
                for record in records:
                    results[record.name].update(running=record.running, pid=record.pid,
                                                start_seconds=times.get(record.name))
            if self.params["wait_for"] != "none":
                self._wait(order, results)
        except QemuInitError as exc:
            msg = exc.msg + ("; before that this call %s" % "; ".join(done) if done else "; nothing was changed")
            raise QemuInitError(msg, vms=[results[n] for n in order], **exc.details) from exc

    def _wait(self, order, results) -> None:
        """wait_for: every VM of the call that runs now, in parallel under one wait_timeout."""
        waiting = [n for n in order if results[n]["state"] in WAITING_STATES and results[n].get("running")]
        if not waiting:
            return
        wait_until_ready(self.manager.load(waiting), self.params["wait_for"], self.params["wait_timeout"],
                         self.params.get("wait_pattern"), results)

    def _stop(self, names: list[str], results) -> None:
        records = [r for r in self.manager.load(names, need_cfg=False) if r.running]
        try:
            stopped = self.manager.stop(records, self.params["shutdown_timeout"], self.params["force"])
        except StopTimeout as exc:
            for name, (method, seconds) in exc.results.items():
                results[name].update(stop_method=method, stop_seconds=seconds, running=method is None)
                if method is not None:
                    results[name]["pid"] = None
                self._joined(results[name], method)
            raise
        for name, (method, seconds) in stopped.items():
            results[name].update(stop_method=method, stop_seconds=seconds, running=False, pid=None)
            self._joined(results[name], method)

    @staticmethod
    def _joined(result, method) -> None:
        """A VM another call was stopping: this call only waited (stop_method joined). For `stopped` that is no
        change of ours, as the vm module reports it."""
        if method == "joined" and result["state"] == "stopped":
            result["changed"] = result["cfg_changed"]

    def _diffs(self, changes, steps) -> list[dict[str, str]]:
        diffs = [d for c in changes if c.changed for d in c.diffs(self.config.registry.path)]
        for change, step in zip(changes, steps):
            if step.stop or step.start:
                before = "running\n" if change.result["running"] else "stopped\n"
                after = "running (restarted)\n" if step.stop and step.start else ("running\n" if step.start else "stopped\n")
                header = "%s (process)" % change.name
                diffs.append(dict(before_header=header, after_header=header, before=before, after=after))
        return diffs
