# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of every qemu_init.qemu module: ansible.builtin.normal, with fewer garbage collections.

Each task runs in a worker process forked from ansible-playbook, so the worker starts with the controller's whole
heap (every loaded plugin, the play, the inventory: some hundred thousand objects). To build a module's payload,
ansible-core parses every file it packs into an AST: for the fleet modules ~110 files (half ansible-core's, half
ours), millions of short-lived objects. With Python's default thresholds (700, 10, 10) that triggers dozens of
full collections, each walking the inherited heap: 0.09 s of the 0.23 s a vms call over 100 VMs spent building
its payload, measured with ansible-core 2.19 on 2 cores (ANSIBLE_DEBUG timestamps; docs/performance.md).

Raising the thresholds for the task's duration lets reference counting free what it frees anyway and defers
the rare cycle (the dependency finder links each import node to its parent) to a later collection: the worker's
peak RSS stays where it was (~60 MiB), while turning the collector off would add ~16 MiB. Nothing else differs
from ansible.builtin.normal: check mode, async and the module's arguments are handled by it.
"""

from __future__ import annotations

import gc

from ansible.plugins.action.normal import ActionModule as NormalAction

# (young collection after this many net allocations, a middle one after this many young ones, a full one after
# this many middle ones): a full collection comes after 20 million allocations instead of 70,000.
TASK_GC_THRESHOLDS = (50_000, 20, 20)


class ModuleAction(NormalAction):
    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        before = gc.get_threshold()
        gc.set_threshold(*TASK_GC_THRESHOLDS)
        try:
            return super().run(tmp, task_vars)
        finally:
            gc.set_threshold(*before)
