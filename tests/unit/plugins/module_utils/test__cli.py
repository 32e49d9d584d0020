# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The qemu-init command's own parts: the command line, exit codes, the HostModule, on temp dirs and real idle
QEMUs. The command against real guests is the integration target cli's."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _cli
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import launch, needs_qemu, run_vm_config


@pytest.fixture
def dirs(tmp_path):
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"))


def cli(dirs, *argv, prog="qemu-init"):
    return _cli.main(["--config-dir", dirs["config_dir"], "--run-dir", dirs["run_dir"]] + list(argv), prog=prog)


@pytest.mark.parametrize("argv, expected", [
    (["web1", "info", "status"], ["cmd", "web1", "info", "status"]),
    (["--config-dir", "/x", "web1", "info"], ["--config-dir", "/x", "cmd", "web1", "info"]),
    (["--run-dir=/r", "-q", "web1", "info"], ["--run-dir=/r", "-q", "cmd", "web1", "info"]),
])
def test_qemu_cmd_is_qemu_init_cmd(argv, expected):
    assert _cli._alias(argv, "cmd") == expected


def test_usage_errors_exit_2(dirs, capsys):
    for argv in ([], ["bogus"], ["start"], ["start", "--autostart", "web1"], ["stop", "--timeout", "x", "web1"], ["cmd", "web1"]):
        with pytest.raises(SystemExit) as exc:
            cli(dirs, *argv)
        assert exc.value.code == 2, argv
    assert "usage: qemu-init" in capsys.readouterr().err


def test_help_names_every_command_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        _cli.main(["--help"])
    out = capsys.readouterr().out
    for word in ("start", "stop", "restart", "status", "list", "cmd", "mon", "console", "exit codes:"):
        assert word in out


def test_unknown_vm(dirs, capsys):
    assert cli(dirs, "status", "nosuch") == _cli.EXIT_NOT_RUNNING
    assert cli(dirs, "start", "nosuch") == _cli.EXIT_NOT_RUNNING
    assert cli(dirs, "stop", "nosuch") == _cli.EXIT_NOT_RUNNING
    out = capsys.readouterr()
    assert "nosuch: unknown" in out.out and "VM nosuch has no cfg file" in out.err


def test_status_list_and_not_running(dirs, capsys):
    run_vm_config(dict(dirs, name="web1", autostart=True, systemd_dir="/nonexistent"))
    assert cli(dirs, "status", "web1") == _cli.EXIT_NOT_RUNNING
    assert cli(dirs, "cmd", "web1", "info", "status") == _cli.EXIT_NOT_RUNNING_CMD
    assert cli(dirs, "mon", "web1") == _cli.EXIT_NOT_RUNNING_CMD
    assert cli(dirs, "console", "web1") == _cli.EXIT_NOT_RUNNING_CMD
    assert cli(dirs, "stop", "web1") == _cli.EXIT_OK
    capsys.readouterr()
    assert cli(dirs, "list", "--json") == _cli.EXIT_OK
    assert json.loads(capsys.readouterr().out) == [dict(name="web1", short_name="web1", slot=0, running=False, pid=None, status=None)]
    assert cli(dirs, "list") == _cli.EXIT_OK
    assert capsys.readouterr().out.splitlines() == ["NAME  SHORT  SLOT  STATE    PID", "web1  web1   0     stopped  -"]


def test_autostart_selects_from_the_cfg_files(dirs):
    run_vm_config(dict(dirs, name="a", autostart=True, systemd_dir="/nonexistent"))
    run_vm_config(dict(dirs, name="b", systemd_dir="/nonexistent"))
    opts = _cli.parser().parse_args(["--config-dir", dirs["config_dir"], "--run-dir", dirs["run_dir"], "start", "--autostart"])
    assert _cli._names(opts) == ["a"]


@needs_qemu
def test_status_of_a_running_vm_and_cmd(dirs, qemus, capsys):
    run_vm_config(dict(dirs, name="web1", systemd_dir="/nonexistent"))
    qemus.append(launch(RunPaths(dirs["run_dir"], "web1"), "web1"))
    assert cli(dirs, "status", "--json", "web1") == _cli.EXIT_OK
    facts = json.loads(capsys.readouterr().out)
    assert facts[0]["running"] and facts[0]["pid"] == qemus[0] and facts[0]["status"] == "prelaunch"
    assert cli(dirs, "cmd", "web1", "info", "name") == _cli.EXIT_OK
    assert capsys.readouterr().out.strip() == "web1"
    assert cli(dirs, "cmd", "web1", "nosuchcommand") == _cli.EXIT_FAILED
    assert "nosuchcommand" in capsys.readouterr().err
    assert cli(dirs, "status") == _cli.EXIT_OK  # every VM (the only one) runs


def test_host_module_runs_argv_lists_with_umask_and_input(tmp_path):
    module = _cli.HostModule({})
    path = str(tmp_path / "made")
    rc, out, err = module.run_command(["sh", "-c", 'cat > "$0"; echo ok', path], data="secret\n", umask=0o077)
    assert (rc, out, err) == (0, "ok\n", "")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with pytest.raises(QemuInitError, match="not found"):
        module.get_bin_path("no-such-binary-here", required=True)
    assert module.get_bin_path("no-such-binary-here") is None
