# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the `ip` unit tests share: real `ip -json` fixtures, and the one allowed fake, run_command."""

from __future__ import annotations

import json
import os
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.process import get_bin_path

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    import contextlib

    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()):
            yield

FIXTURES = os.path.join(os.path.dirname(__file__), "module_utils", "fixtures", "iproute")

try:
    IP = get_bin_path("ip")
except ValueError:
    IP = None

needs_ip = pytest.mark.skipif(IP is None, reason="iproute2's ip is not installed")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


class FakeRun:
    """Stands in for AnsibleModule.run_command: checks each call against the expected one, in order."""

    def __init__(self, *expected):
        self.expected = list(expected)  # (argv, data, (rc, stdout, stderr))

    def __call__(self, args, check_rc=False, data=None, **kwargs):
        assert self.expected, "unexpected command %r" % (args,)
        argv, stdin, result = self.expected.pop(0)
        assert args == argv
        assert data == stdin
        assert check_rc is False
        return result


def links(ns, name="mixed.json"):
    """The expected `ip -json -details link show` call, answered with a fixture."""
    argv = [IP] + (["-n", ns] if ns else []) + ["-json", "-details", "link", "show"]
    return (argv, None, (0, fixture(name), ""))


def run_module(main, capsys, args, *calls):
    """Run a module's main() with args; return its result and check every expected command ran."""
    fake = FakeRun(*calls)
    with patch_module_args(args), mock.patch.object(basic.AnsibleModule, "run_command", fake), pytest.raises(SystemExit) as exc:
        main()
    result = json.loads(capsys.readouterr().out)
    assert not fake.expected, "commands not run: %r" % (fake.expected,)
    assert bool(exc.value.code) == bool(result.get("failed"))
    return result
