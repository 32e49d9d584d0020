# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures the unit tests under tests/unit/plugins share."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, patch_module_args
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import gone


@pytest.fixture
def module():
    """An AnsibleModule without options, for IpCommand (skips where iproute2's ip is not installed)."""
    if IP is None:
        pytest.skip("iproute2's ip is not installed")
    with patch_module_args({}):
        yield basic.AnsibleModule(argument_spec={})


@pytest.fixture
def qemus():
    """The pids of the QEMUs a test starts (append them): killed at the end if still there, and only those."""
    pids = []
    yield pids
    for pid in pids:
        if not gone(pid):
            os.kill(pid, 9)
