# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What to do to bring VMs to their states: pure decisions, no I/O.

The vm module (one state for many VMs) and the vms module (a state per VM, the fleet in one call) both
decide here, from what was found (running, restart required, does the VM exist) and what is wanted. The
callers read the world before and act after; this file only decides, so that every decision is unit-tested
without QEMU and check mode reports exactly what a real run would do.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence, TypeVar

STATES = ("present", "started", "stopped", "restarted", "absent")


class Found(NamedTuple):
    """One VM as it was found, and the state wanted for it."""

    name: str
    state: str
    running: bool
    restart_required: bool  # running with other launch arguments than its cfg gives (after this call's writes)
    exists: bool  # anything of it on the host: cfg file, registry entry or run dir


class Step(NamedTuple):
    """What happens to one VM, and what is reported for it."""

    name: str
    stop: bool
    start: bool
    remove: bool
    restart_required: bool  # reported: a restart is needed but was not asked for
    already_stopped: bool  # a stop state for a VM found down: stop_method 'none'

    @property
    def changed(self) -> bool:
        return self.stop or self.start or self.remove


class Plan(NamedTuple):
    steps: list[Step]

    def names(self, action: str) -> list[str]:
        """The VMs that get `action` (stop, start or remove), in the order they were given."""
        return [s.name for s in self.steps if getattr(s, action)]

    @property
    def changed(self) -> bool:
        return any(s.changed for s in self.steps)


def decide(vm: Found, restart_on_change: bool) -> Step:
    """The step for one VM. `restart_on_change` turns a started VM's restart_required into a restart."""
    if vm.state not in STATES:
        raise ValueError("unknown state %r" % (vm.state,))
    stop = start = remove = reported = False
    if vm.state == "started":
        if not vm.running:
            start = True
        elif vm.restart_required:
            if restart_on_change:
                stop = start = True
            else:
                reported = True
    elif vm.state == "stopped":
        stop = vm.running
    elif vm.state == "restarted":
        stop, start = vm.running, True
    elif vm.state == "absent":
        stop, remove = vm.running, vm.exists
    else:  # present: the cfg only; say whether the running VM lags behind it
        reported = vm.running and vm.restart_required
    return Step(vm.name, stop, start, remove, reported,
                already_stopped=vm.state in ("stopped", "absent") and not vm.running)


def plan(found: Iterable[Found], restart_on_change: bool = False) -> Plan:
    """Steps for every VM, in the given order. The callers apply them in phases: every stop (together, in
    parallel), then every removal, then every start (in launch waves, see launch_waves): a VM that is stopped
    frees what one that starts may need (ports of socket NICs, taps, MACs, slots)."""
    return Plan([decide(vm, restart_on_change) for vm in found])


class Launchable(NamedTuple):
    """What the launch order needs to know about a VM to start."""

    name: str
    connects: bool  # has a socket/stream NIC that connects to a listener
    listens: bool  # has a socket/stream NIC that listens


T = TypeVar("T")


def launch_waves(vms: Sequence[T], describe=lambda vm: vm) -> list[list[T]]:
    """The order of a batch start: [[VMs launched together], [next], ...].

    A connecting socket/stream NIC needs its peer listening when QEMU starts, and QEMU never retries. So every
    VM without one is launched first, side by side (listeners among them); then those with one, one at a time,
    those that also listen first (a chain a <- b <- c: b listens for c and connects to a).
    `describe(vm)` gives the vm's Launchable.
    """
    facts = [(vm, describe(vm)) for vm in vms]
    first = [vm for vm, f in facts if not f.connects]
    connecting = sorted((pair for pair in facts if pair[1].connects), key=lambda pair: 0 if pair[1].listens else 1)
    return ([first] if first else []) + [[vm] for vm, _f in connecting]


def unlisted(registered: Iterable[str], listed: Iterable[str]) -> list[str]:
    """exclusive: the VMs on the host that the call does not list, in the host's order."""
    wanted = set(listed)
    return [name for name in registered if name not in wanted]
