# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The failure oracle itself: a refusal passes only when it names the offending parameter.

A message that merely contains one of the values given ("0", "up", "-" occur in almost any text) does
not name a parameter; the PROSE forms count only with that parameter's own value.
"""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.tests.hostile import harness


def refused(msg):
    return harness.Outcome("fail", {"failed": True, "msg": msg}, harness.Recorder())


def verdict(msg, params, also=()):
    return harness.judge("oracle", refused(msg), [], params, also=also, tally=harness.Tally())


@pytest.mark.parametrize("msg, params", [
    ("mtu: must be an integer from 68 to 65535, got 0", {"mtu": 0, "name": "br0"}),
    ("nics[1].mac: not a unicast address: 01:00:00:00:00:01", {"nics": [{}, {"mac": "01:00:00:00:00:01"}]}),
    ("vms[1].memory: must be at least 16 (MiB), got 0", {"memory": 0}),
    ("value of state must be one of: present, absent, got: up", {"state": "up"}),
    ("argument 'mtu' is of type <class 'str'> and we were unable to convert to int", {"mtu": "x", "up": True}),
    ("VM 0 has no cfg file (/x/vms/0-qemu.cfg); create it with qemu_init.qemu.vm_config", {"name": ["a", "0"]}),
    ("a link named up exists but it is a tap, not a bridge; it is never changed", {"name": "up"}),
    ("network namespace qi-none does not exist (ip netns list)", {"netns": "qi-none", "name": "0"}),
    ("HMP command 'info x' failed on VM m: unknown", {"name": "m2"}, ),
])
def test_a_refusal_naming_its_parameter_passes(msg, params):
    also = ("command",) if "HMP" in msg else ()
    if also:
        params = dict(params, command="info x")
    assert verdict(msg, params, also) == []


@pytest.mark.parametrize("msg, params", [
    # the value is in the message, the parameter is not: the old oracle let these through
    ("could not bring the link up", {"name": "up"}),
    ("ip link add failed: exit status 0", {"name": "br0", "mtu": 0}),
    ("VM web1: qemu exited with status 1 (-)", {"name": "x", "qemu_binary": "-"}),
    ("tap0 is in use", {"name": "tap1", "bridge": "tap0"}),
    # a PROSE form with another parameter's value
    ("VM 0 has no cfg file", {"name": "web1", "shutdown_timeout": 0}),
    ("network namespace up does not exist", {"netns": "lab", "name": "up"}),
    # the name of another parameter does not do
    ("memory: must be at least 16 (MiB), got 1", {"cpus": 1}),
])
def test_a_refusal_naming_only_a_value_is_bad(msg, params):
    problems = verdict(msg, params)
    assert len(problems) == 1 and problems[0].startswith("failure message names none of"), problems
