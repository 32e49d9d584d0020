# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vms module through main(): real files in a temp dir, real idle QEMUs for the VMs found running; only
run_command (qemu -device help) is faked. Starting real guests is the integration target's (vms)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import ListeningPorts
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import (
    gone,
    launch,
    needs_qemu,
    run_vm_config,
    run_vms as run,
)


@pytest.fixture
def dirs(tmp_path):
    # state_dir too: the unit tests never touch the host's /var/lib/qemu-init (where QEMU's NIC models are cached).
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"), state_dir=str(tmp_path / "state"))


def by_name(result):
    return dict((vm["name"], vm) for vm in result["vms"])


def cfg(dirs, name):
    return os.path.join(dirs["config_dir"], "vms", "%s-qemu.cfg" % name)


def test_check_apply_check_apply_without_starting(dirs):
    args = dict(dirs, vms=[dict(name="a", nics=[dict(model="e1000", backend="user")]), dict(name="b", os="debian")],
                default_state="present")
    check, failed, calls = run(args, check_mode=True, diff=True)
    assert not failed and check["changed"]
    assert calls == [["/usr/bin/qemu-system-x86_64", "-device", "help"]]  # NIC models asked once for the call
    assert not os.path.exists(dirs["config_dir"])
    assert [vm["name"] for vm in check["vms"]] == ["a", "b"]
    assert [vm["slot"] for vm in check["vms"]] == [0, 1]
    assert all(vm["cfg_exists"] is False and vm["state"] == "present" and not vm["running"] for vm in check["vms"])
    assert [d["after_header"] for d in check["diff"]] == [cfg(dirs, "a"), os.path.join(dirs["config_dir"], "qemu-init.reg"),
                                                          cfg(dirs, "b"), os.path.join(dirs["config_dir"], "qemu-init.reg")]
    apply, failed, dummy = run(args, diff=True)
    assert not failed and apply["changed"]
    assert apply["diff"] == check["diff"]
    assert all(vm["cfg_exists"] for vm in apply["vms"])
    assert by_name(apply)["b"]["macs"] == run_vm_config(dict(dirs, name="b", os="debian"), check_mode=True)[0]["macs"]
    check2, failed, dummy = run(args, check_mode=True, diff=True)
    assert not failed and not check2["changed"] and check2["diff"] == []
    apply2, failed, dummy = run(args)
    assert not failed and not apply2["changed"]


def test_removals_are_planned_first_so_new_vms_get_their_slots(dirs):
    run(dict(dirs, vms=[dict(name="old")], default_state="present"))
    result, failed, dummy = run(dict(dirs, vms=[dict(name="new", state="present"), dict(name="old", state="absent")]))
    assert not failed
    new, old = result["vms"]  # reported in the order given
    assert new["slot"] == 0 and new["changed"]
    assert old["changed"] and old["stop_method"] == "none" and not os.path.exists(cfg(dirs, "old"))


def test_exclusive_removes_the_unlisted_vms_last_in_the_report(dirs):
    run(dict(dirs, vms=[dict(name="a"), dict(name="b"), dict(name="c")], default_state="present"))
    check, failed, dummy = run(dict(dirs, vms=[dict(name="b", state="present")], exclusive=True), check_mode=True)
    assert not failed and check["changed"]
    assert [(vm["name"], vm["state"], vm["changed"]) for vm in check["vms"]] == [
        ("b", "present", False), ("a", "absent", True), ("c", "absent", True)]
    assert os.path.exists(cfg(dirs, "a"))  # check mode
    result, failed, dummy = run(dict(dirs, vms=[dict(name="b", state="present")], exclusive=True))
    assert not failed
    assert sorted(os.listdir(os.path.join(dirs["config_dir"], "vms"))) == ["b-qemu.cfg"]
    again, failed, dummy = run(dict(dirs, vms=[dict(name="b", state="present")], exclusive=True))
    assert not failed and not again["changed"]


def test_without_exclusive_unlisted_vms_stay(dirs):
    run(dict(dirs, vms=[dict(name="a"), dict(name="b")], default_state="present"))
    result, failed, dummy = run(dict(dirs, vms=[dict(name="b", state="present")]))
    assert not failed and [vm["name"] for vm in result["vms"]] == ["b"]
    assert os.path.exists(cfg(dirs, "a"))


@pytest.mark.parametrize("vms, param", [
    ([dict(name="a"), dict(name="b", nics=[dict(backend="bogus")])], "vms[1]"),
    ([dict(name="a"), dict(name="b", state="paused")], "vms[1]"),
    ([dict(name="a"), dict(name="a")], "vms[1].name: VM a is already listed in vms[0]"),
    ([dict(name="a", nics=[dict(backend="mcast")])], "vms[0].nics[0]"),
])
def test_bad_input_names_the_item_and_changes_nothing(dirs, vms, param):
    result, failed, dummy = run(dict(dirs, vms=vms))
    assert failed and result["msg"].startswith(param), result["msg"]
    assert not os.path.exists(dirs["config_dir"])


@needs_qemu
def test_stops_and_removals_of_running_vms_in_one_call(dirs, qemus):
    # Idle QEMUs (-machine none) ignore the power button: shutdown_timeout 0 and force go straight to quit.
    run(dict(dirs, vms=[dict(name="s"), dict(name="r"), dict(name="k")], default_state="present"))
    for name in ("s", "r", "k"):
        qemus.append(launch(RunPaths(dirs["run_dir"], name), name))
    args = dict(dirs, vms=[dict(name="s", state="stopped"), dict(name="r", state="absent"), dict(name="k", state="present")],
                shutdown_timeout=0, force=True)
    check, failed, dummy = run(args, check_mode=True, diff=True)
    assert not failed
    assert [(vm["name"], vm["running"], vm["changed"], vm["actions"], vm["cfg_changed"]) for vm in check["vms"]] == [
        ("s", True, True, ["stop"], False), ("r", True, True, ["stop", "remove"], True), ("k", True, False, [], False)]
    assert [(d["after_header"], d["before"], d["after"]) for d in check["diff"] if d["after_header"].endswith("(process)")] == [
        ("s (process)", "running\n", "stopped\n"), ("r (process)", "running\n", "stopped\n")]
    assert not any(gone(pid) for pid in qemus)
    result, failed, dummy = run(args)
    assert not failed, result
    s, r, k = result["vms"]
    assert (s["stop_method"], s["running"], s["pid"]) == ("quit", False, None)
    assert (r["stop_method"], r["running"]) == ("quit", False)
    assert not os.path.exists(cfg(dirs, "r")) and not os.path.isdir(os.path.join(dirs["run_dir"], "r"))
    assert k["running"] and k["pid"] == qemus[2] and not k["changed"]
    assert gone(qemus[0]) and gone(qemus[1]) and not gone(qemus[2])


@needs_qemu
def test_a_stop_that_times_out_fails_naming_the_vm_and_keeps_it_running(dirs, qemus):
    run(dict(dirs, vms=[dict(name="s")], default_state="present"))
    qemus.append(launch(RunPaths(dirs["run_dir"], "s"), "s"))
    result, failed, dummy = run(dict(dirs, vms=[dict(name="s", state="stopped"), dict(name="n", state="present")],
                                     shutdown_timeout=0))
    assert failed and "VM s did not power off" in result["msg"] and "nothing was changed" in result["msg"]
    assert result["vms"][0]["running"] and result["vms"][0]["stop_method"] is None
    assert not gone(qemus[0])
    assert not os.path.exists(cfg(dirs, "n"))  # the stop came first; nothing was written after it failed


@pytest.mark.parametrize("module_name", ["vms", "vm_config"])
def test_cloud_init_secrets_are_redacted_in_the_invocation_and_nothing_else_is_masked(dirs, tmp_path, capsys, module_name):
    """The real exit path (stdout JSON, as Ansible reads it): user_data and vendor_data are replaced in the returned
    invocation, the secret is nowhere in the output, and words of the data that are also the VM's name or in paths
    are not masked (no_log would have masked them everywhere)."""
    import json

    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.qemu_init.qemu.plugins.modules import vm_config, vms

    secret = "s3cr3t-T0ken-4242"
    vm = dict(name="debian", cloud_init=dict(user_data=dict(users=[dict(name="debian", passwd=secret)]),
                                             vendor_data="#!/bin/sh\necho %s\n" % secret))
    args = dict(dirs, state_dir=str(tmp_path / "state"), _ansible_check_mode=True, _ansible_diff=True)
    args.update(vms=[vm]) if module_name == "vms" else args.update(vm)
    with patch_module_args(args), pytest.raises(SystemExit):
        (vms if module_name == "vms" else vm_config).main()
    out = capsys.readouterr().out
    assert secret not in out
    result = json.loads(out)
    assert not result.get("failed"), result
    item = result["invocation"]["module_args"]["vms"][0] if module_name == "vms" else result["invocation"]["module_args"]
    assert item["cloud_init"]["user_data"] == item["cloud_init"]["vendor_data"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert (result["vms"][0] if module_name == "vms" else result)["name"] == "debian"
    assert "********" not in out


@needs_qemu
def test_the_ports_listened_on_are_read_once_per_call_and_again_after_stops(dirs, qemus, monkeypatch):
    reads = []
    real = ListeningPorts._read
    monkeypatch.setattr(ListeningPorts, "_read", lambda self, netns: reads.append(netns) or real(self, netns))
    result, failed, dummy = run(dict(dirs, vms=[dict(name="a"), dict(name="b")], default_state="present"))
    assert not failed and reads == [None]  # planned, then planned again under the lock on the same reading
    qemus.append(launch(RunPaths(dirs["run_dir"], "a"), "a"))
    del reads[:]
    result, failed, dummy = run(dict(dirs, vms=[dict(name="a", state="stopped"), dict(name="c", state="present")],
                                     shutdown_timeout=0, force=True))
    assert not failed and by_name(result)["a"]["stop_method"] == "quit" and by_name(result)["c"]["slot"] == 2
    assert reads == [None, None]  # the ports a listened on are free after its stop: read again for c's slot
