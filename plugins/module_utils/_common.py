# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Things every module shares: the error types and the common options.

This is a private module (leading underscore): not an API for other collections.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

DEFAULT_CONFIG_DIR = "/etc/qemu"
DEFAULT_RUN_DIR = "/run/qemu-init"
DEFAULT_STATE_DIR = "/var/lib/qemu-init"


class QemuInitError(Exception):
    """An operation failed; the message says what was attempted and why."""

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        # Extra keys for fail_json (stderr, rc, cmd, ...), reported to the user as they are.
        self.details = details


class ParameterError(QemuInitError):
    """A parameter value is unusable; raised before anything is changed."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__("%s: %s" % (param, problem))
        self.param = param
        self.problem = problem


def common_argument_spec() -> dict[str, dict[str, t.Any]]:
    """Options every module of the collection accepts (so module_defaults for group/all works)."""
    return dict(
        config_dir=dict(type="path", default=DEFAULT_CONFIG_DIR),
        run_dir=dict(type="path", default=DEFAULT_RUN_DIR),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    )


def fail_from_error(module: AnsibleModule, err: QemuInitError) -> t.NoReturn:
    """Report a QemuInitError through fail_json, with its details."""
    module.fail_json(msg=err.msg, **err.details)


def run_module(module: AnsibleModule, action: t.Callable[[AnsibleModule], dict[str, t.Any]]) -> None:
    """Exit with action(module)'s result dict; our typed errors become fail_json.

    Anything else is a bug and keeps its traceback.
    """
    try:
        result = action(module)
    except QemuInitError as err:
        fail_from_error(module, err)
        return
    module.exit_json(**result)
