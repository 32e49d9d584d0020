# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the tap module (plugins/plugin_utils/_module_action.py: ansible.builtin.normal with fewer garbage collections)."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.plugin_utils._module_action import ModuleAction


class ActionModule(ModuleAction):
    pass
