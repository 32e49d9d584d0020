# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ModuleAction: ansible.builtin.normal's run with raised GC thresholds, put back afterwards, also on errors."""

from __future__ import annotations

import gc
import importlib
import pathlib

import pytest
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.qemu_init.qemu.plugins.plugin_utils._module_action import TASK_GC_THRESHOLDS, ModuleAction

# Every module of the collection (plugins/modules/*.py).
MODULES = sorted(p.stem for p in (pathlib.Path(__file__).parents[4] / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_run_raises_the_thresholds_for_the_task_only(monkeypatch, thresholds):
    seen = []

    def normal_run(self, tmp=None, task_vars=None):
        seen.append((gc.get_threshold(), task_vars))
        return {"changed": False}

    monkeypatch.setattr(NormalAction, "run", normal_run)
    action = ModuleAction.__new__(ModuleAction)
    assert action.run(task_vars={"x": 1}) == {"changed": False}
    assert seen == [(TASK_GC_THRESHOLDS, {"x": 1})]
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_come_back_when_the_task_raises(monkeypatch, thresholds):
    def normal_run(self, tmp=None, task_vars=None):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(NormalAction, "run", normal_run)
    with pytest.raises(RuntimeError, match="connection lost"):
        ModuleAction.__new__(ModuleAction).run(task_vars={})
    assert gc.get_threshold() == (700, 10, 10)


def test_fewer_full_collections_than_the_default():
    assert TASK_GC_THRESHOLDS[0] > 700 and TASK_GC_THRESHOLDS[0] * TASK_GC_THRESHOLDS[1] * TASK_GC_THRESHOLDS[2] >= 10**7


@pytest.mark.parametrize("name", MODULES)
def test_every_module_runs_through_it(name):
    assert len(MODULES) >= 7
    action = importlib.import_module("ansible_collections.qemu_init.qemu.plugins.action.%s" % name)
    assert issubclass(action.ActionModule, ModuleAction)
    assert action.ActionModule._supports_check_mode and action.ActionModule._supports_async
