# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hypothesis profiles, the test network namespace, and the summary table of the hostile-input suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from hypothesis import HealthCheck, settings

from ansible_collections.qemu_init.qemu.tests.hostile import harness
from ansible_collections.qemu_init.qemu.tests.hostile.strategies import CANARY, SANDBOX

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.filter_too_much, HealthCheck.data_too_large])
# `ci` (default): what tools/test.sh runs, about a minute, with hypothesis derandomized: the same inputs on
# every run, so a failure in CI is a regression, not the luck of the draw. `random`: as many examples, new
# ones each run. `long`: ten times the examples, new ones each run, for a deeper local search
# (QI_HOSTILE_PROFILE=long bash tools/test.sh hostile). Each test sets its example count with
# harness.examples(n), which scales with the profile.
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("random", **_COMMON)
settings.register_profile("long", **_COMMON)
settings.load_profile(harness.PROFILE)


def pytest_terminal_summary(terminalreporter):
    table = harness.TALLY.table()
    terminalreporter.write_sep("=", "hostile inputs per module")
    terminalreporter.write_line(table)
    report = os.environ.get("QI_HOSTILE_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
    if os.path.exists(CANARY):
        terminalreporter.write_line("CANARY %s EXISTS: a value was run by a shell" % CANARY)


def pytest_sessionfinish(session, exitstatus):
    if os.path.exists(CANARY):
        session.exitstatus = 1
    shutil.rmtree(SANDBOX, ignore_errors=True)


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, capture_output=True, text=True)


@pytest.fixture(scope="session")
def netns():
    """A network namespace of our own, deleted at the end (every link the tests make lives in it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    name = "qi-hostile-%s" % uuid.uuid4().hex[:8]
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _ip("netns", "del", name, check=False)
