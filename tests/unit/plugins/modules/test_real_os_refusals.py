# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input to the "real operating systems" options (DESIGN.md; issue 13): each is a clear fail_json, naming the
parameter and the problem, before anything is made.

Through the modules' main() (vm_config, vms, vm), with real files in a temp dir, the real qemu-img (backing-chain
loops, sizes), the real firmware descriptor search and the real PATH lookup of swtpm; the only fake is the answer
to `qemu-system-x86_64 -device help` (vm_config's NIC model check), as in test_vm_config.py. Every refusal is
checked to leave the whole temp tree as it was: no cfg file, no registry, nothing in the state dir, no overlay, no
seed. The wait_for cases configure a VM first and check that the refused `vm state=started` started nothing (with
the check removed a real, paused QEMU would start: the test would see its pidfile).

Where a case cannot reach a module:
- a cloud-config dict key that is not a string: module arguments arrive as JSON, whose keys are strings ({1: x}
  arrives as {"1": x}, test_int_key_arrives_as_a_string); the refusal is tested on _seed.build_seed;
- no OVMF: OVMF is installed on the test hosts, so _firmware.SEARCH_DIRS and XDG_CONFIG_HOME are pointed at an
  empty (or partial) directory with monkeypatch; the module still runs end to end;
- no swtpm: PATH is set to an empty directory (swtpm is in /usr/bin, which get_bin_path then does not search).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qemu_init.qemu.plugins.module_utils import _firmware, _seed
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.modules import vm as vm_module, vm_config, vms
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import DEVICE_HELP, Exit, needs_qemu

QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="needs qemu-img")


def run(plugin, args, check_mode=False):
    """(result, failed) of plugin.main(); run_command is real except for `QEMU -device help`."""
    real_run_command = basic.AnsibleModule.run_command

    def run_command(self, argv, *a, **kw):
        if list(argv[1:]) == ["-device", "help"]:
            return 0, DEVICE_HELP, ""
        return real_run_command(self, argv, *a, **kw)

    def exit_json(self, **kwargs):
        raise Exit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit(kwargs, True)

    args = dict(args, _ansible_check_mode=check_mode)
    with patch_module_args(args), mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), pytest.raises(Exit) as exc:
        plugin.main()
    return exc.value.result, exc.value.failed


def tree(root):
    """Every path under root with its type, mode, size and content (links: their target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                found[path] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[path] = ("file", st.st_mode, handle.read())
            else:
                found[path] = ("dir", st.st_mode)
    return found


@pytest.fixture
def env(tmp_path):
    """config_dir, run_dir, state_dir and an image directory under tmp_path."""
    dirs = dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"), state_dir=str(tmp_path / "state"))
    images = tmp_path / "img"
    images.mkdir()
    return dict(dirs=dirs, root=str(tmp_path), img=str(images))


def qemu_img(*args):
    subprocess.run([QEMU_IMG] + list(args), check=True, capture_output=True)


def refused(env, plugin, args, param, problem, check_mode=False):
    """Run plugin with args: it must fail with a message naming `param` first and holding `problem`, and leave
    every file under the temp dir as it was (in particular: no cfg, no registry, no state dir content)."""
    before = tree(env["root"])
    result, failed = run(plugin, dict(env["dirs"], **args), check_mode=check_mode)
    assert failed, result
    assert result["msg"].startswith(param + ": "), result["msg"]
    assert problem in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
    after = tree(env["root"])
    assert after == before, sorted(set(after) ^ set(before)) or [p for p in after if after[p] != before[p]]
    return result["msg"]


# --- disks: base_image, size, relative files -------------------------------------------------------------------

@needs_qemu_img
@pytest.mark.parametrize("file", ["d.qcow2", "ABS"])
def test_missing_base_image(env, file):
    file = os.path.join(env["img"], "d.qcow2") if file == "ABS" else file
    base = os.path.join(env["img"], "nope.qcow2")
    refused(env, vm_config, dict(name="v1", disks=[dict(file=file, base_image=base)]), "disks[0].base_image",
            "%s does not exist" % base)


def test_relative_base_image(env):
    refused(env, vm_config, dict(name="v1", disks=[dict(file="d.qcow2", base_image="base.qcow2")]), "disks[0].base_image",
            "is not an absolute path")


@needs_qemu_img
@pytest.mark.parametrize("through_link", [False, True])
def test_base_image_is_the_disk_itself(env, through_link):
    disk = os.path.join(env["img"], "disk.qcow2")
    qemu_img("create", "-f", "qcow2", disk, "1M")
    base = disk
    if through_link:
        base = os.path.join(env["img"], "link.qcow2")
        os.symlink(disk, base)
    refused(env, vm_config, dict(name="v1", disks=[dict(file=disk, base_image=base)]), "disks[0].base_image",
            "a disk cannot be its own base")


@pytest.fixture
def loop(env):
    """a.qcow2 backed by b.qcow2 backed by a.qcow2, made with the real qemu-img."""
    if QEMU_IMG is None:
        pytest.skip("needs qemu-img")
    a, b = os.path.join(env["img"], "a.qcow2"), os.path.join(env["img"], "b.qcow2")
    qemu_img("create", "-f", "qcow2", a, "1M")
    qemu_img("create", "-f", "qcow2", "-b", a, "-F", "qcow2", b)
    qemu_img("rebase", "-u", "-b", b, "-F", "qcow2", a)
    return a, b


def test_base_image_in_a_backing_loop(env, loop):
    a, b = loop
    msg = refused(env, vm_config, dict(name="v1", disks=[dict(file="d.qcow2", base_image=a)]), "disks[0].base_image",
                  "its backing chain is a loop")
    assert "%s -> %s -> %s" % (a, b, a) in msg


@pytest.mark.parametrize("extra", [dict(size="1M"), dict(format="qcow2"), {}])
def test_disk_in_a_backing_loop(env, loop, extra):
    _a, b = loop
    refused(env, vm_config, dict(name="v1", disks=[dict(file=b, **extra)]), "disks[0].file", "its backing chain is a loop")


@needs_qemu_img
def test_size_below_the_current_size(env):
    disk = os.path.join(env["img"], "big.qcow2")
    qemu_img("create", "-f", "qcow2", disk, "2M")
    refused(env, vm_config, dict(name="v1", disks=[dict(file=disk, size="1M")]), "disks[0].size", "disks are never shrunk")
    info = json.loads(subprocess.run([QEMU_IMG, "info", "--output=json", disk], capture_output=True, check=True).stdout)
    assert info["virtual-size"] == 2 * 1024 * 1024


@needs_qemu_img
def test_overlay_size_below_its_base(env):
    base = os.path.join(env["img"], "base.qcow2")
    qemu_img("create", "-f", "qcow2", base, "2M")
    refused(env, vm_config, dict(name="v1", disks=[dict(file="d.qcow2", base_image=base, size="1M")]), "disks[0].size",
            "an overlay is never smaller than its base")


@pytest.mark.parametrize("size", ["-1", "1X", "0", "100"])
def test_size_that_is_no_size(env, size):
    refused(env, vm_config, dict(name="v1", disks=[dict(file="d.qcow2", size=size)]), "disks[0].size", repr(size))


def test_relative_file_leading_out(env):
    refused(env, vm_config, dict(name="v1", disks=[dict(file="../x.qcow2", size="1M")]), "disks[0].file",
            "leads out of the VM's directory")
    assert not os.path.exists(os.path.join(env["dirs"]["state_dir"], "x.qcow2"))


def test_relative_file_through_a_link_leading_out(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    vm_dir = os.path.join(env["dirs"]["state_dir"], "v1")
    os.makedirs(vm_dir)
    os.symlink(str(outside), os.path.join(vm_dir, "out"))
    refused(env, vm_config, dict(name="v1", disks=[dict(file="out/x.qcow2", size="1M")]), "disks[0].file",
            "through a symbolic link, outside the VM's directory")
    assert os.listdir(str(outside)) == []


# --- cloud_init ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("user_data, kind", [([1, 2], "list"), (5, "int"), (True, "bool")])
def test_user_data_of_a_wrong_type(env, user_data, kind):
    refused(env, vm_config, dict(name="v1", cloud_init=dict(user_data=user_data)), "cloud_init.user_data",
            "must be a dict or a string, not %s" % kind)


def test_meta_data_of_a_wrong_type(env):
    refused(env, vm_config, dict(name="v1", cloud_init=dict(meta_data=[1])), "cloud_init.meta_data", "must be a dict or a string")


def test_unknown_cloud_init_key(env):
    result, failed = run(vm_config, dict(env["dirs"], name="v1", cloud_init=dict(user_data={}, userdata={})))
    assert failed and "cloud_init.userdata" in result["msg"] and result["msg"].startswith("Unsupported parameters"), result
    assert not os.path.exists(env["dirs"]["config_dir"]) and not os.path.exists(env["dirs"]["state_dir"])


@pytest.mark.parametrize("value, kind", [(5, "int"), ([1], "list"), (["a"], "list"), ("not a dict", "a string that is neither"),
                                         (True, "bool")])
def test_cloud_init_that_is_no_dict(env, value, kind):
    refused(env, vm_config, dict(name="v1", cloud_init=value), "cloud_init", "must be a dict with the keys user_data")
    refused(env, vm_config, dict(vms=[dict(name="v1", cloud_init=value)]), "vms[0].cloud_init", kind)
    refused(env, vms, dict(vms=[dict(name="v1", cloud_init=value)]), "vms[0].cloud_init", kind)


def test_float_without_a_yaml_form(env):
    refused(env, vm_config, dict(name="v1", cloud_init=dict(user_data=dict(a=[float("nan")]))), "cloud_init.user_data.a[0]",
            "no YAML form")


def test_int_key_arrives_as_a_string(env):
    """Module arguments are JSON: a key that is not a string reaches the module as one (and is written as that)."""
    result, failed = run(vm_config, dict(env["dirs"], name="v1", cloud_init=dict(user_data={1: "x"})))
    assert not failed, result
    with open(result["cloud_init"]["seed"], "rb") as handle:
        assert b'"1": "x"' in handle.read()


@pytest.mark.parametrize("user_data, param", [({1: "x"}, "cloud_init.user_data"), ({"a": {None: 1}}, "cloud_init.user_data.a"),
                                              ({"a": [{2.5: 1}]}, "cloud_init.user_data.a[0]")])
def test_key_that_is_not_a_string(user_data, param):
    with pytest.raises(ParameterError) as exc:
        _seed.build_seed(dict(user_data=user_data), "v1")
    assert exc.value.param == param and "mapping keys must be strings" in exc.value.problem


# --- firmware, secure boot, tpm ----------------------------------------------------------------------------------

def test_secure_boot_without_uefi(env):
    refused(env, vm_config, dict(name="v1", secure_boot=True), "secure_boot", "secure boot needs firmware: uefi")


def test_secure_boot_on_a_pc_machine(env):
    refused(env, vm_config, dict(name="v1", firmware="uefi", secure_boot=True, machine="pc"), "secure_boot", "needs a q35 machine")


@pytest.fixture
def no_ovmf(tmp_path, monkeypatch):
    """The firmware search sees only an empty directory of ours (returned: put descriptors there)."""
    where = tmp_path / "firmware"
    where.mkdir()
    monkeypatch.setattr(_firmware, "SEARCH_DIRS", (str(where),))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return where


@pytest.mark.parametrize("check_mode", [False, True])
def test_uefi_without_ovmf(env, no_ovmf, check_mode):
    refused(env, vm_config, dict(name="v1", firmware="uefi"), "firmware", "install OVMF (Debian/Ubuntu: ovmf", check_mode)
    refused(env, vms, dict(vms=[dict(name="v1", firmware="uefi", state="present")]), "vms[0].firmware", "install OVMF",
            check_mode)


def test_secure_boot_without_a_secure_boot_build(env, no_ovmf):
    """Only the plain build's descriptor (its files exist): uefi is fine, secure boot is refused."""
    code, template = os.path.join(env["img"], "OVMF_CODE.fd"), os.path.join(env["img"], "OVMF_VARS.fd")
    for path in (code, template):
        with open(path, "wb") as handle:
            handle.write(b"\0" * 4096)
    descriptor = dict(interface_types=["uefi"], mapping=dict(device="flash", executable=dict(filename=code, format="raw"),
                                                             **{"nvram-template": dict(filename=template, format="raw")}),
                      targets=[dict(architecture="x86_64", machines=["pc-i440fx-*", "pc-q35-*"])], features=["acpi-s3"])
    descriptor["interface-types"] = descriptor.pop("interface_types")
    (no_ovmf / "60-plain.json").write_text(json.dumps(descriptor))
    refused(env, vm_config, dict(name="v1", firmware="uefi", secure_boot=True), "secure_boot",
            "describes UEFI firmware with secure boot and enrolled keys")
    result, failed = run(vm_config, dict(env["dirs"], name="v2", firmware="uefi"), check_mode=True)
    assert not failed and result["changed"], result


@pytest.mark.parametrize("check_mode", [False, True])
def test_tpm_without_swtpm(env, tmp_path, monkeypatch, check_mode):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    msg = refused(env, vm_config, dict(name="v1", tpm=True), "tpm", "needs swtpm, which is not installed", check_mode)
    assert "package: Debian/Ubuntu: swtpm" in msg
    refused(env, vms, dict(vms=[dict(name="v1", tpm=True, state="present")]), "vms[0].tpm", "(package: Debian/Ubuntu: swtpm",
            check_mode)


# --- vm and vms: wait_for ---------------------------------------------------------------------------------------

@pytest.fixture
def configured(env):
    """VM w1, configured for real (a paused TCG guest with a user NIC forwarding host port 2222 to guest port 2222)."""
    args = dict(env["dirs"], name="w1", accel="tcg", memory=32, extra_args=["-S"],
                nics=[dict(backend="user", hostfwd=["tcp:127.0.0.1:2222-:2222"])])
    result, failed = run(vm_config, args)
    assert not failed, result
    yield env
    # With a check removed the VM would have started: stopped and removed again whatever happened.
    run(vm_module, dict(env["dirs"], name="w1", state="absent", force=True, shutdown_timeout=0))


WAIT_CASES = [
    (dict(wait_for="agent"), "wait_for", "has no guest agent channel (set guest_agent: true)"),
    (dict(wait_for="ssh"), "wait_for", "no user NIC forwarding a host port to guest port 22"),
    (dict(wait_for="serial"), "wait_pattern", "wait_for: serial needs wait_pattern"),
    (dict(wait_for="serial", wait_pattern="(unclosed"), "wait_pattern", "is not a regular expression"),
    (dict(wait_for="serial", wait_pattern="QI-READY", wait_timeout=-1), "wait_timeout", "must be 0 to 2147483647 seconds"),
]


@needs_qemu
@pytest.mark.parametrize("args, param, problem", WAIT_CASES)
@pytest.mark.parametrize("state", ["started", "restarted"])
def test_vm_wait_for_refused_before_start(configured, args, param, problem, state):
    before = tree(configured["root"])
    result, failed = run(vm_module, dict(configured["dirs"], name="w1", state=state, **args))
    msg = result["msg"]
    assert failed and msg.startswith(param + ": ") and problem in msg, result
    assert tree(configured["root"]) == before  # not started: no pidfile, no run dir, no serial log
    assert not os.path.exists(RunPaths(configured["dirs"]["run_dir"], "w1").pidfile)


@pytest.mark.parametrize("plugin", [vm_module, vms])
@pytest.mark.parametrize("timeout", [2 ** 31, 2 ** 63, 10 ** 400])
def test_wait_timeout_too_large(configured, plugin, timeout):
    """In check mode (nothing starts, nothing is waited for: with the check removed this passes instead of hanging)."""
    args = dict(name="w1") if plugin is vm_module else dict(vms=[dict(name="w1", accel="tcg", memory=32, extra_args=["-S"])])
    refused(configured, plugin, dict(args, wait_for="serial", wait_pattern="x", wait_timeout=timeout), "wait_timeout",
            "must be 0 to 2147483647 seconds", check_mode=True)


@needs_qemu
@pytest.mark.parametrize("args, param, problem", WAIT_CASES)
def test_vms_wait_for_refused_before_anything(env, args, param, problem):
    """vms: the VM is neither configured nor started."""
    item = dict(name="w2", accel="tcg", memory=32, extra_args=["-S"], nics=[dict(backend="user", hostfwd=["tcp:127.0.0.1:2222-:2222"])])
    try:
        refused(env, vms, dict(vms=[item], **args), param, problem)
    finally:
        run(vm_module, dict(env["dirs"], name="w2", state="absent", force=True, shutdown_timeout=0))


def test_wait_for_ssh_with_an_agent_in_a_netns(env):
    """An agent reports the guest's addresses, but the host cannot reach a guest inside a network namespace."""
    item = dict(name="w3", guest_agent=True, netns="qi-nonexistent-ns", nics=[])
    refused(env, vms, dict(vms=[item], wait_for="ssh"), "wait_for", "no guest agent to report its address")
