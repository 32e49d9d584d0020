# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config through main(): real files in a temp dir; only run_command (qemu -device help) is faked."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from unittest import mock

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _vm_config as vm_config_utils
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import launch, manager, needs_qemu, run_vm_config as run

# What a QEMU built with one NIC model lists (the 7.2 fixture cut down to its network section with e1000 alone).
DEVICE_HELP_E1000_ONLY = 'Network devices:\nname "e1000", bus PCI, alias "e1000-82540em", desc "Intel Gigabit Ethernet"\n'


@pytest.fixture
def dirs(tmp_path):
    # state_dir too: the unit tests never touch the host's /var/lib/qemu-init.
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"), state_dir=str(tmp_path / "state"))


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


@needs_qemu
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


def test_batch_check_apply_idempotent(dirs):
    vms = [dict(name="b1", nics=[dict(), dict()]), dict(name="b2", nics=[dict(model="virtio-net-pci")]),
           dict(name="gone", state="absent")]
    check, failed, calls = run(dict(dirs, vms=vms), check_mode=True, diff=True)
    assert not failed and check["changed"], check
    assert len(calls) == 1  # one device list for the whole batch
    assert not os.path.exists(dirs["config_dir"])
    assert [v["changed"] for v in check["vms"]] == [True, True, False]
    apply, failed, dummy = run(dict(dirs, vms=vms), diff=True)
    assert not failed and apply["changed"]
    assert apply["diff"] == check["diff"] and len(apply["diff"]) == 4  # two changed VMs, cfg + registry each
    assert [v.get("slot") for v in apply["vms"]] == [0, 1, None]
    assert apply["vms"][0]["macs"] != apply["vms"][1]["macs"]
    with open(apply["vms"][1]["path"]) as handle:
        assert 'NIC1="virtio-net-pci"' in handle.read()
    again, failed, dummy = run(dict(dirs, vms=vms))
    assert not failed and not again["changed"]
    # The batch and the single form agree: the single form finds nothing to change either.
    single, failed, dummy = run(dict(dirs, name="b1", nics=[dict(), dict()]))
    assert not failed and not single["changed"] and single["slot"] == 0


def test_batch_absent_and_short_names(dirs):
    run(dict(dirs, vms=[dict(name="c1", short_name="x1"), dict(name="c2")]))
    res, failed, dummy = run(dict(dirs, vms=[dict(name="x1", state="absent"), dict(name="c2", memory=64)]))
    assert not failed, res
    assert res["vms"][0] == dict(name="c1", path=res["vms"][0]["path"], changed=True, cfg_exists=False)
    assert not os.path.exists(res["vms"][0]["path"])
    assert res["vms"][1]["changed"] and res["vms"][1]["slot"] == 1
    with open(os.path.join(dirs["config_dir"], "qemu-init.reg")) as handle:
        assert [line.split()[1] for line in handle if line.strip() and not line.startswith("#")] == ["c2"]


@pytest.mark.parametrize("vms, top, expected", [
    ([dict(name="d1"), dict(name="d2", nics=[dict(backend="mcast", mcast="x")])], {}, "vms[1].nics[0].mcast: "),
    ([dict(name="d1", bogus=1)], {}, "vms[0]: unsupported parameter bogus"),
    ([dict(name="d1", state="gone")], {}, "vms[0]: value of state must be one of"),
    ([dict(os="x")], {}, "vms[0]: missing required arguments: name"),
    (["d1"], {}, "Elements value for option 'vms' is of type str"),
    ([dict(name="d1"), dict(name="d1")], {}, "vms[1].name: VM d1 is already listed in vms[0]"),
    ([dict(name="d1", nics=[dict(mac="DE:AD:BE:EF:00:01")]), dict(name="d2", nics=[dict(mac="de:ad:be:ef:00:01")])],
     {}, "vms[1].nics: MAC DE:AD:BE:EF:00:01 of VM d2 is already used by VM d1"),
    ([dict(name="d1")], dict(memory=64), "memory: set it in each item of vms"),
    ([dict(name="../d1")], {}, "vms[0].name: "),
])
def test_batch_bad_items_change_nothing(dirs, vms, top, expected):
    run(dict(dirs, vms=[dict(name="keep")]))
    before = sorted(os.listdir(os.path.join(dirs["config_dir"], "vms")))
    with open(os.path.join(dirs["config_dir"], "qemu-init.reg")) as handle:
        registry = handle.read()
    res, failed, dummy = run(dict(dirs, vms=vms, **top))
    assert failed and res["msg"].startswith(expected), res["msg"]
    assert sorted(os.listdir(os.path.join(dirs["config_dir"], "vms"))) == before
    with open(os.path.join(dirs["config_dir"], "qemu-init.reg")) as handle:
        assert handle.read() == registry


def test_name_and_vms_are_exclusive(dirs):
    res, failed, dummy = run(dict(dirs, name="e1", vms=[dict(name="e2")]))
    assert failed and "mutually exclusive" in res["msg"]
    res, failed, dummy = run(dict(dirs))
    assert failed and "one of the following is required: name, vms" in res["msg"]


def test_batch_registry_write_failure_restores_cfg_files(dirs):
    run(dict(dirs, vms=[dict(name="f1", memory=64)]))
    cfg = os.path.join(dirs["config_dir"], "vms", "f1-qemu.cfg")
    with open(cfg) as handle:
        old = handle.read()
    real_save = vm_config_utils.Registry.save

    def failing_save(self, state):
        raise vm_config_utils.QemuInitError("writing %s failed: No space left on device" % self.path)

    with mock.patch.object(vm_config_utils.Registry, "save", failing_save):
        res, failed, dummy = run(dict(dirs, vms=[dict(name="f1", memory=128), dict(name="f2")]))
    assert vm_config_utils.Registry.save is real_save
    assert failed and "No space left on device" in res["msg"]
    assert "the cfg files of f1, f2 restored, nothing changed" in res["msg"]
    with open(cfg) as handle:
        assert handle.read() == old
    assert not os.path.exists(os.path.join(dirs["config_dir"], "vms", "f2-qemu.cfg"))


def test_qemu_is_asked_for_its_nic_models_only_when_a_cfg_changes(dirs):
    vms = [dict(name="i1", nics=[dict(model="e1000")]), dict(name="i2", nics=[dict(model="virtio-net-pci")])]
    first, failed, calls = run(dict(dirs, vms=vms))
    assert not failed and first["changed"] and len(calls) == 1
    again, failed, calls = run(dict(dirs, vms=vms))
    assert not failed and not again["changed"] and calls == []  # the idempotent run does not start QEMU
    vms[1]["nics"] = [dict(model="no-such-nic")]
    bad, failed, calls = run(dict(dirs, vms=vms))
    # Refused from the models the first run cached (test_nic_models_are_cached_per_binary): QEMU is not asked again.
    assert failed and calls == [] and bad["msg"].startswith("vms[1].nics[0].model")


def test_qemu_is_asked_in_a_thread_and_every_model_checked_before_anything_is_made(dirs):
    # QEMU's start-up for -device help overlaps the reading and planning of the call; the check still comes first.
    threads = []
    vms = [dict(name="m1", nics=[dict(model="e1000")]), dict(name="m2", nics=[dict(model="no-such-nic")])]
    bad, failed, calls = run(dict(dirs, vms=vms), on_call=lambda argv: threads.append(threading.current_thread().name))
    assert failed and bad["msg"].startswith("vms[1].nics[0].model: ") and "e1000" in bad["msg"]
    assert len(calls) == 1 and threads == ["qemu-device-help"]  # asked once, not from the module's own thread
    assert not os.path.exists(dirs["config_dir"]) and not os.path.exists(dirs["run_dir"])


def cache_of(dirs):
    path = os.path.join(dirs["run_dir"], ".qemu-devices.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def test_nic_models_are_cached_per_binary(dirs, tmp_path):
    binary = tmp_path / "qemu-system-x86_64"  # run_command is faked; the cache keys on the file's identity
    binary.write_text("#!/bin/sh\n")
    qemu = str(binary)
    checked, failed, calls = run(dict(dirs, name="c1", nics=[dict(model="e1000")]), check_mode=True, qemu=qemu)
    assert not failed and len(calls) == 1 and cache_of(dirs) is None  # check mode writes nothing, the cache neither
    bad, failed, calls = run(dict(dirs, name="c1", nics=[dict(model="no-such-nic")]), qemu=qemu)
    assert failed and len(calls) == 1 and not os.path.exists(dirs["run_dir"])  # a refused call leaves no trace
    out, failed, calls = run(dict(dirs, name="c1", nics=[dict(model="e1000")]), qemu=qemu)
    assert not failed and out["changed"] and len(calls) == 1
    cache = cache_of(dirs)
    st = os.stat(qemu)
    entry = cache["binaries"][qemu]
    assert cache["format"] == 1 and entry["identity"] == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    assert {"e1000", "virtio-net-pci"} <= set(entry["network"]) and "virtio-blk-pci" not in entry["network"]
    assert oct(os.stat(os.path.join(dirs["run_dir"], ".qemu-devices.json")).st_mode & 0o777) == "0o644"
    # The next cfg to write (another VM, a changed NIC) is checked against the cache; a bad model still fails.
    out, failed, calls = run(dict(dirs, name="c2", nics=[dict(model="virtio-net-pci")]), qemu=qemu)
    assert not failed and out["changed"] and calls == []
    bad, failed, calls = run(dict(dirs, name="c2", nics=[dict(model="no-such-nic")]), qemu=qemu)
    assert failed and calls == [] and "no network device 'no-such-nic'" in bad["msg"]
    # A rebuilt binary (new contents: new size and ctime) is asked again, with the answer it gives now.
    binary.write_text("#!/bin/sh\n# 7.2.1\n")
    narrow = DEVICE_HELP_E1000_ONLY
    bad, failed, calls = run(dict(dirs, name="c3", nics=[dict(model="virtio-net-pci")]), qemu=qemu, device_help=narrow)
    assert failed and len(calls) == 1 and "virtio-net-pci" in bad["msg"]
    out, failed, calls = run(dict(dirs, name="c3", nics=[dict(model="e1000")]), qemu=qemu, device_help=narrow)
    assert not failed and len(calls) == 1 and cache_of(dirs)["binaries"][qemu]["network"] == ["e1000", "e1000-82540em"]


@pytest.mark.parametrize("damage", ["{not json", json.dumps(dict(format=99, binaries={})), json.dumps([1, 2]),
                                    json.dumps(dict(format=1, binaries={"X": dict(identity=[], network=[])}))])
def test_a_damaged_or_foreign_cache_is_asked_around_and_rewritten(dirs, tmp_path, damage):
    binary = tmp_path / "qemu"
    binary.write_text("")
    os.makedirs(dirs["run_dir"])
    with open(os.path.join(dirs["run_dir"], ".qemu-devices.json"), "w") as handle:
        handle.write(damage.replace('"X"', json.dumps(str(binary))))
    out, failed, calls = run(dict(dirs, name="d1", nics=[dict(model="e1000")]), qemu=str(binary))
    assert not failed and len(calls) == 1 and cache_of(dirs)["binaries"][str(binary)]["network"]


def test_a_fifo_in_the_cache_s_place_is_asked_around_not_waited_on(dirs, tmp_path):
    binary = tmp_path / "qemu"
    binary.write_text("")
    os.makedirs(dirs["run_dir"])
    os.mkfifo(os.path.join(dirs["run_dir"], ".qemu-devices.json"))  # opened plainly for reading, it would block
    out, failed, calls = run(dict(dirs, name="f1", nics=[dict(model="e1000")]), qemu=str(binary))
    assert not failed and len(calls) == 1 and cache_of(dirs)["binaries"][str(binary)]["network"]  # replaced by the file


def test_an_unwritable_cache_does_not_fail_the_call(dirs, tmp_path):
    os.makedirs(os.path.join(dirs["run_dir"], ".qemu-devices.json"))  # a directory in its place: never replaced
    out, failed, calls = run(dict(dirs, name="u1", nics=[dict(model="e1000")]))
    assert not failed and out["changed"] and len(calls) == 1
    out, failed, calls = run(dict(dirs, name="u2", nics=[dict(model="e1000")]))
    assert not failed and len(calls) == 1  # asked again: nothing was cached


def test_a_binary_that_lists_no_network_devices_is_blamed_not_the_nic_model(dirs):
    # e.g. qemu_binary: /bin/true, which exits 0 and prints nothing (found by the hostile-input suite)
    out, failed, calls = run(dict(dirs, name="t1", nics=[dict(model="e1000")], qemu_binary="/bin/true"), qemu="/bin/true", device_help="")
    assert failed and len(calls) == 1
    assert out["msg"].startswith("qemu_binary: /bin/true lists no network devices")
    assert not os.path.exists(dirs["config_dir"])


def test_a_new_vm_gets_a_slot_clear_of_its_own_nics_listen_ports(dirs):
    # Found by the hostile-input suite: a socket NIC listening on 30320 (slot 0's monitor port) with monitor_tcp
    # made QEMU fail to bind at launch. The slot now avoids the VM's own listen and host-forward ports.
    nics = [dict(model="e1000", backend="socket", listen=":30320"), dict(model="e1000", backend="user", hostfwd=["tcp::30421-:22"])]
    out, failed, _calls = run(dict(dirs, name="own1", monitor_tcp=True, nics=nics))
    assert not failed, out
    assert out["slot"] == 2 and out["monitor_port"] == 30322  # 0: monitor 30320; 1: control 30421


def test_a_registered_vm_cannot_listen_on_its_own_monitor_port(dirs):
    out, failed, _calls = run(dict(dirs, name="own2", monitor_tcp=True))
    assert not failed and out["monitor_port"] == 30320
    nics = [dict(model="e1000", backend="stream", listen="127.0.0.1:30420")]
    out, failed, _calls = run(dict(dirs, name="own2", monitor_tcp=True, nics=nics))
    assert failed and out["msg"].startswith("nics[0].listen: port 30420 is also the monitor/control port of VM own2"), out["msg"]
    out, failed, _calls = run(dict(dirs, vms=[dict(name="own2", monitor_tcp=True, nics=nics)]))
    assert failed and out["msg"].startswith("vms[0].nics[0].listen: port 30420"), out["msg"]
    out, failed, _calls = run(dict(dirs, name="own2", monitor_tcp=False, nics=nics))
    assert not failed, out  # no monitor listening: no clash


def test_cfg_exists_says_whether_the_file_is_there_after_the_call(dirs):
    vms = [dict(name="e1"), dict(name="e2")]
    check, failed, _calls = run(dict(dirs, vms=vms), check_mode=True)
    assert not failed and [v["cfg_exists"] for v in check["vms"]] == [False, False]  # would be created
    done, failed, _calls = run(dict(dirs, vms=vms))
    assert not failed and [v["cfg_exists"] for v in done["vms"]] == [True, True]
    gone, failed, _calls = run(dict(dirs, name="e2", state="absent"), check_mode=True)
    assert not failed and gone["changed"] and gone["cfg_exists"]  # check mode: still there
    gone, failed, _calls = run(dict(dirs, name="e2", state="absent"))
    assert not failed and not gone["cfg_exists"] and not os.path.exists(gone["path"])


@needs_qemu
def test_running_pid_and_restart_required_agree_with_the_vm_module(dirs, tmp_path, qemus):
    """vm_config reports each kept VM as the vm module would find it (the vms role skips vm calls on this)."""
    args = dict(dirs, name="r1", memory=64)
    first, failed, _calls = run(args)
    assert not failed and (first["running"], first["pid"], first["restart_required"]) == (False, None, False)

    mgr = manager(tmp_path, qemu_binary="qemu-system-x86_64")
    record = mgr.load(["r1"])[0]
    qemus.append(launch(record.run, "r1"))  # an idle QEMU that answers QMP as r1, on r1's pidfile
    seen, failed, _calls = run(args)
    assert not failed and not seen["changed"]
    assert (seen["running"], seen["pid"], seen["restart_required"]) == (True, qemus[0], False)  # no launch record yet

    with open(record.run.launch_record, "w") as handle:
        json.dump(dict(argv=mgr.desired_argv(mgr.load(["r1"])[0])), handle)  # launched as the cfg says
    same, failed, _calls = run(args)
    assert not failed and same["running"] and not same["restart_required"]

    bigger = dict(args, memory=96)
    predicted, failed, _calls = run(bigger, check_mode=True)
    assert not failed and predicted["changed"] and predicted["restart_required"]
    assert not mgr.restart_required(manager(tmp_path, qemu_binary="qemu-system-x86_64").load(["r1"])[0])  # file unchanged
    written, failed, _calls = run(bigger)
    assert not failed and written["changed"] and written["restart_required"]
    after = manager(tmp_path, qemu_binary="qemu-system-x86_64")
    assert after.restart_required(after.load(["r1"])[0])  # what `vm state=present` reports now

    # A live QEMU on the pidfile that answers QMP with another name is not this VM.
    other = manager(tmp_path).load(["r1"])[0].run
    os.kill(qemus[0], 9)
    qemus.append(launch(other, "someone-else"))
    stranger, failed, _calls = run(bigger)
    assert not failed and (stranger["running"], stranger["pid"], stranger["restart_required"]) == (False, None, False)


def test_nics_report_each_backends_settings(dirs):
    nics = [dict(model="e1000"),
            dict(backend="user", hostfwd=["tcp:127.0.0.1:2222-:22"], restrict=True),
            dict(backend="socket", listen=":30999"),
            dict(backend="mcast", mcast="230.0.0.1:1234", localaddr="127.0.0.1"),
            dict(backend="hubport", hub=1)]
    out, failed, _calls = run(dict(dirs, name="nicky", nics=nics, hubs=[dict(id=1)]))
    assert not failed, out
    got = [dict((k, n[k]) for k in ("backend", "listen", "connect", "mcast", "localaddr", "hub", "hostfwd", "restrict"))
           for n in out["nics"]]
    assert got == [
        dict(backend="tap", listen=None, connect=None, mcast=None, localaddr=None, hub=None, hostfwd=[], restrict=None),
        dict(backend="user", listen=None, connect=None, mcast=None, localaddr=None, hub=None,
             hostfwd=["tcp:127.0.0.1:2222-:22"], restrict=True),
        dict(backend="socket", listen=":30999", connect=None, mcast=None, localaddr=None, hub=None, hostfwd=[], restrict=None),
        dict(backend="mcast", listen=None, connect=None, mcast="230.0.0.1:1234", localaddr="127.0.0.1", hub=None,
             hostfwd=[], restrict=None),
        dict(backend="hubport", listen=None, connect=None, mcast=None, localaddr=None, hub=1, hostfwd=[], restrict=None),
    ]


def test_autostart_enables_the_systemd_instance_as_systemctl_does(dirs, tmp_path):
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    link = systemd / "qemu-init.target.wants" / "qemu-init@web1.service"
    args = dict(dirs, name="web1", autostart=True, systemd_dir=str(systemd))
    check, failed, dummy = run(args, check_mode=True, diff=True)
    assert not failed and check["changed"] and not os.path.lexists(str(link))
    assert check["diff"][-1]["after"] == "%s -> %s\n" % (link, systemd / "qemu-init@.service")
    apply, failed, dummy = run(args, diff=True)
    assert not failed and apply["changed"] and apply["autostart"]
    assert os.readlink(str(link)) == str(systemd / "qemu-init@.service")
    with open(apply["path"]) as handle:
        assert 'AUTOSTART="yes"\n' in handle.read()
    again, failed, dummy = run(args)
    assert not failed and not again["changed"]
    # The link alone gone (an operator ran systemctl disable): put back, a change.
    os.unlink(str(link))
    fixed, failed, dummy = run(args)
    assert not failed and fixed["changed"] and os.path.islink(str(link))
    off, failed, dummy = run(dict(args, autostart=False))
    assert not failed and off["changed"] and not os.path.lexists(str(link))
    run(dict(args, autostart=True))
    gone, failed, dummy = run(dict(dirs, name="web1", state="absent", systemd_dir=str(systemd)))
    assert not failed and gone["changed"] and not os.path.lexists(str(link))


def test_autostart_without_a_systemd_dir_is_the_cfg_key_only(dirs, tmp_path):
    result, failed, dummy = run(dict(dirs, name="web1", autostart=True, systemd_dir=str(tmp_path / "none")))
    assert not failed and result["autostart"] and not os.path.exists(str(tmp_path / "none"))


def test_dropping_cloud_init_removes_the_seed_and_its_secrets(dirs):
    secret = "qi-seed-secret-4711"
    seed = os.path.join(dirs["state_dir"], "s1", "cidata.img")
    with_seed = dict(dirs, name="s1", cloud_init=dict(user_data=dict(write_files=[dict(path="/x", content=secret)])))
    out, failed, dummy = run(with_seed)
    assert not failed and out["changed"] and os.path.isfile(seed) and out["cfg"]["CIDATA"] == seed
    without = dict(dirs, name="s1")
    check, failed, dummy = run(without, check_mode=True, diff=True)
    assert not failed and check["changed"] and os.path.isfile(seed)  # check mode: said, not done
    seed_diff = [d for d in check["diff"] if d["before_header"] == seed]
    assert seed_diff == [dict(before_header=seed, after_header=seed, after="",
                              before="cloud-init seed (%d bytes, content not shown)\n" % os.path.getsize(seed))]
    out, failed, dummy = run(without, diff=True)
    assert not failed and out["changed"] and not os.path.lexists(seed) and "CIDATA" not in out["cfg"]
    assert secret not in json.dumps(out) and "cloud_init" not in out
    again, failed, dummy = run(without)
    assert not failed and not again["changed"]
