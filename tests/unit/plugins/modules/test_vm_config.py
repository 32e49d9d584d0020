# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config through main(): real files in a temp dir; only run_command (qemu -device help) is faked."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qemu_init.qemu.plugins.modules import vm_config

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "module_utils", "fixtures", "qemu-7.2-device-help.txt")
with open(FIXTURE) as _handle:
    DEVICE_HELP = _handle.read()


class Exit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


def run(args, check_mode=False, diff=False, qemu="/usr/bin/qemu-system-x86_64"):
    """Run the module; return (result, failed, argv list of run_command calls)."""
    calls = []

    def fake_run_command(self, argv, **kwargs):
        calls.append(list(argv))
        assert argv == [qemu, "-device", "help"], argv
        return 0, DEVICE_HELP, ""

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
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: qemu):
        with pytest.raises(Exit) as exc:
            vm_config.main()
    return exc.value.result, exc.value.failed, calls


@pytest.fixture
def dirs(tmp_path):
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"))


def test_check_apply_check_apply(dirs):
    args = dict(dirs, name="web1", os="debian", memory=256, nics=[dict(model="virtio-net-pci"), dict(model="e1000", backend="user")])
    check, failed, calls = run(args, check_mode=True, diff=True)
    assert not failed and check["changed"]
    assert calls == [["/usr/bin/qemu-system-x86_64", "-device", "help"]]
    assert not os.path.exists(dirs["config_dir"])  # check mode writes nothing, not even the directory
    assert 'NIC1="virtio-net-pci"' in check["diff"][0]["after"]
    apply, failed, dummy = run(args, diff=True)
    assert not failed and apply["changed"]
    assert apply["diff"] == check["diff"]
    with open(apply["path"]) as handle:
        assert handle.read() == check["diff"][0]["after"]
    assert apply["slot"] == 0 and apply["monitor_port"] == 30320 and apply["control_port"] == 30420
    assert apply["macs"] == ["DE:AD:BE:EF:CF:CE", "DE:AD:BE:EF:D4:64"]
    assert apply["nics"][0]["tap"] == "web1-n1" and apply["nics"][1]["tap"] is None
    check2, failed, dummy = run(args, check_mode=True)
    assert not failed and not check2["changed"]
    apply2, failed, dummy = run(args)
    assert not failed and not apply2["changed"]


def test_short_name_resolves_and_operator_keys_survive(dirs):
    run(dict(dirs, name="web-server-frontend", short_name="wsf"))
    path = os.path.join(dirs["config_dir"], "vms", "web-server-frontend-qemu.cfg")
    with open(path, "a") as handle:
        handle.write('# my note\nMY_KEY="mine"\n')
    result, failed, dummy = run(dict(dirs, name="wsf", memory=512))
    assert not failed and result["changed"] and result["name"] == "web-server-frontend"
    with open(path) as handle:
        text = handle.read()
    assert 'MY_KEY="mine"' in text and "# my note" in text and 'MEMORY="512"' in text


def test_unknown_nic_model_fails_before_writing(dirs):
    result, failed, dummy = run(dict(dirs, name="web1", nics=[dict(model="e1001")]))
    assert failed and result["msg"].startswith("nics[0].model: ")
    assert "e1000" in result["msg"]
    assert not os.path.exists(dirs["config_dir"])


def test_missing_disk_fails_before_writing(dirs):
    result, failed, dummy = run(dict(dirs, name="web1", disks=[dict(file="/nonexistent/disk.img")]))
    assert failed and result["msg"] == "disks[0].file: disk image /nonexistent/disk.img does not exist"
    assert not os.path.exists(dirs["config_dir"])


def test_duplicate_mac_across_vms_names_both(dirs):
    run(dict(dirs, name="web1", nics=[dict(mac="02:00:00:00:00:01")]))
    result, failed, dummy = run(dict(dirs, name="web2", nics=[dict(mac="02:00:00:00:00:01")]))
    assert failed and "web1" in result["msg"] and "web2" in result["msg"]
    assert not os.path.exists(os.path.join(dirs["config_dir"], "vms", "web2-qemu.cfg"))


def test_damaged_cfg_is_not_overwritten(dirs):
    os.makedirs(os.path.join(dirs["config_dir"], "vms"))
    path = os.path.join(dirs["config_dir"], "vms", "web1-qemu.cfg")
    with open(path, "w") as handle:
        handle.write('NAME="web1\n')
    result, failed, dummy = run(dict(dirs, name="web1"))
    assert failed and "unterminated double quote" in result["msg"]
    with open(path) as handle:
        assert handle.read() == 'NAME="web1\n'


def test_absent(dirs):
    run(dict(dirs, name="web1"))
    check, failed, dummy = run(dict(dirs, name="web1", state="absent"), check_mode=True, diff=True)
    assert check["changed"] and 'NAME="web1"' in check["diff"][0]["before"]
    assert os.path.exists(check["path"])
    result, failed, dummy = run(dict(dirs, name="web1", state="absent"))
    assert not failed and result["changed"] and not os.path.exists(result["path"])
    with open(os.path.join(dirs["config_dir"], "qemu-init.reg")) as handle:
        assert "web1" not in handle.read()
    again, failed, dummy = run(dict(dirs, name="web1", state="absent"))
    assert not failed and not again["changed"]


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="needs qemu-system-x86_64")
def test_absent_refuses_a_running_vm(dirs):
    run(dict(dirs, name="web1"))
    os.makedirs(os.path.join(dirs["run_dir"], "web1"))
    # A real, idle QEMU (no machine, no guest) stands in the pidfile.
    qmp = os.path.join(dirs["run_dir"], "web1", "qmp.sock")
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S",
                             "-qmp", "unix:%s,server=on,wait=off" % qmp],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(qmp) and qemu.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # a test helper waiting for an external process, not module code
        assert qemu.poll() is None and os.path.exists(qmp), "qemu did not start: %s" % qemu.stderr.read()
        with open(os.path.join(dirs["run_dir"], "web1", "qemu.pid"), "w") as handle:
            handle.write("%d\n" % qemu.pid)
        result, failed, dummy = run(dict(dirs, name="web1", state="absent"))
    finally:
        qemu.kill()
        qemu.wait()
        qemu.stderr.close()
    assert failed and result["msg"] == (
        "state: VM web1 is running (pid %d); stop and remove it with qemu_init.qemu.vm state=absent" % qemu.pid)
    assert os.path.exists(os.path.join(dirs["config_dir"], "vms", "web1-qemu.cfg"))
    # once it is gone, the same call removes the cfg
    result, failed, dummy = run(dict(dirs, name="web1", state="absent"))
    assert not failed and result["changed"]


@pytest.mark.parametrize("args, msg", [
    (dict(name="../x"), "name: "),
    (dict(name="web1", short_name="Web One"), "short_name: "),
    (dict(name="web1", nics=[dict(mac="01:00:5e:00:00:01")]), "nics[0].mac: "),
    (dict(name="web1", extra_args=["-net", "nic"]), "extra_args: "),
])
def test_bad_input_names_the_parameter(dirs, args, msg):
    result, failed, dummy = run(dict(dirs, **args))
    assert failed and result["msg"].startswith(msg)
    assert not os.path.exists(dirs["config_dir"])
