# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/run.sh's count of the collection's module calls in a play (P2: "one module call").

Enabled only by bench/run.sh (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins, ANSIBLE_CALLBACKS_ENABLED=
qi_bench_calls). Every run of a qemu_init.qemu module, resolved as Ansible resolved it, appends one line to
the file named by $QI_BENCH_CALLS: `FQCN CHANGED TASK NAME`. A task without a loop is one call when it ran
(ok or failed, not skipped); a looped task is one call per item that ran, and its aggregate result is not
counted again. set_fact, debug, include_role and the like are not modules of the collection and not counted.
"""

from __future__ import annotations

import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: qi_bench_calls
type: aggregate
short_description: Count the qemu_init.qemu module calls of a play (bench/run.sh only)
description:
  - Appends one line per module call of the collection to the file named by the environment variable
    E(QI_BENCH_CALLS).
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

PREFIX = "qemu_init.qemu."


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "qi_bench_calls"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result):
        action = result._task.resolved_action or result._task.action
        if not action or not action.startswith(PREFIX):
            return
        path = os.environ.get("QI_BENCH_CALLS")
        if not path:
            return
        name = " ".join(result._task.get_name().split())
        with open(path, "a") as handle:
            handle.write("%s %s %s\n" % (action, bool(result._result.get("changed")), name))

    def _unlooped(self, result):
        # A looped task's aggregate result carries the items' results; the items were counted one by one.
        if "results" not in result._result:
            self._record(result)

    def v2_runner_on_ok(self, result):
        self._unlooped(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._unlooped(result)

    def v2_runner_item_on_ok(self, result):
        self._record(result)

    def v2_runner_item_on_failed(self, result):
        self._record(result)
