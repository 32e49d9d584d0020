# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one traceback hostile input still gets, and it is not ours: ansible-core's int check.

ansible-core 2.19's check_type_int turns "inf", "-inf", "Infinity" (and a float infinity) into an
OverflowError instead of its "cannot be converted to an int" error, before any module code runs; fixed
upstream by ansible/ansible#87253. This test pins where the traceback comes from, so a regression of
our own cannot hide behind it, and passes as it is once ansible-core handles the value.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.modules import vm_config
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs


@pytest.mark.parametrize("value", hs.INFINITIES)
def test_infinity_for_an_int_option(value):
    dirs = dict(config_dir=os.path.join(hs.SANDBOX, "inf-cfg"), run_dir=os.path.join(hs.SANDBOX, "inf-run"))
    out = harness.call(vm_config.main, dict(dirs, name="vm1", memory=value))
    assert not os.path.exists(dirs["config_dir"])
    if out.kind == "crash":
        assert "OverflowError" in out.error and "ansible/module_utils/common/validation.py" in out.error, out.error
        assert "qemu_init" not in out.error.split("check_type_int")[-1], out.error
    else:
        assert out.kind == "fail" and "memory" in out.msg, out
