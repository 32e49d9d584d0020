# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the vm and vm_config unit tests share: a VmManager on temp dirs, idle real QEMUs, and vm_config run
through main() with run_command (qemu -device help) as the only fake. The fixtures are in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_state
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import qmp_args
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import VmManager
from ansible_collections.qemu_init.qemu.plugins.modules import vm_config, vms

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64")

with open(os.path.join(os.path.dirname(__file__), "module_utils", "fixtures", "qemu-7.2-device-help.txt")) as _handle:
    DEVICE_HELP = _handle.read()


def manager(tmp_path, **options):
    """A VmManager with config_dir and run_dir under tmp_path, and any further (str) module options."""
    args = dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"), **options)
    spec = dict(config_dir=dict(type="path"), run_dir=dict(type="path"), **{key: dict(type="str") for key in options})
    with patch_module_args(args):
        module = basic.AnsibleModule(argument_spec=spec)
    return VmManager(module)


def launch(run, name, observer=True):
    """Start an idle daemonized QEMU the way the vm module does (pidfile, lifecycle and observer QMP in the run
    dir; observer=False: only qmp.sock, as releases before the observer monitor launched it); returns its pid."""
    os.makedirs(run.dir, exist_ok=True)
    qmp = qmp_args(run) if observer else ["-qmp", "unix:%s,server=on,wait=off" % run.qmp]
    subprocess.run([QEMU, "-name", name, "-machine", "none", "-nodefaults", "-display", "none", "-S", "-daemonize",
                    "-pidfile", run.pidfile] + qmp, check=True)
    with open(run.pidfile) as handle:
        return int(handle.read())


def gone(pid):
    return proc_state(pid) in (None, "Z")


class Exit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


def run_vm_config(args, check_mode=False, diff=False, qemu="/usr/bin/qemu-system-x86_64", device_help=DEVICE_HELP, on_call=None):
    """Run vm_config's main(); return (result, failed, argv list of run_command calls). on_call(argv) is called in the
    thread that runs the command."""
    return run_main(vm_config, args, check_mode, diff, qemu, device_help, on_call)


def run_vms(args, check_mode=False, diff=False, qemu="/usr/bin/qemu-system-x86_64", device_help=DEVICE_HELP, on_call=None):
    """Run the vms module's main(), as run_vm_config does vm_config's."""
    return run_main(vms, args, check_mode, diff, qemu, device_help, on_call)


def run_main(plugin, args, check_mode, diff, qemu, device_help, on_call=None):
    calls = []

    def fake_run_command(self, argv, **kwargs):
        calls.append(list(argv))
        if on_call is not None:
            on_call(argv)
        assert argv == [qemu, "-device", "help"], argv
        return 0, device_help, ""

    def exit_json(self, **kwargs):
        raise Exit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit(kwargs, True)

    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "run_command", fake_run_command), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: qemu), pytest.raises(Exit) as exc:
        plugin.main()
    return exc.value.result, exc.value.failed, calls
