# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vm module's links: the exact `ip -batch` lines it sends for a VM's taps and bridges (real `ip -json`
fixtures in; run_command is the only fake)."""

from __future__ import annotations

import json
import os

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import Entry
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import VmRecord
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.ip_fakes import IP, FakeRun, links, needs_ip
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import manager

pytestmark = needs_ip


def record_for(mgr, bridge):
    spec = from_params(dict(name="vm1", nics=[dict(model="e1000")], bridge=bridge), check_files=False)
    return VmRecord("vm1", Entry("vm1", "vm1", 0, spec.macs()), spec, "", RunPaths(mgr.run_dir, "vm1"))


def test_a_tap_on_an_existing_bridge_takes_its_mtu(tmp_path):
    mgr = manager(tmp_path)
    mgr.module.run_command = FakeRun(
        links(None, "mixed.json"),  # br0 is at MTU 1400
        ([IP, "-batch", "-"],
         "tuntap add dev vm1-n1 mode tap user %d\nlink set dev vm1-n1 master br0 mtu 1400 up" % os.geteuid(),
         (0, "", "")))
    assert mgr._make_links([record_for(mgr, "br0")]) == {"vm1": ["vm1-n1"]}
    assert not mgr.module.run_command.expected


def test_a_bridge_the_vm_module_makes_is_left_to_the_kernel(tmp_path):
    mgr = manager(tmp_path)
    mgr.module.run_command = FakeRun(
        links(None, "mixed.json"),
        ([IP, "-batch", "-"],
         "link add name br-new up type bridge stp_state 0\n"
         "tuntap add dev vm1-n1 mode tap user %d\nlink set dev vm1-n1 master br-new up" % os.geteuid(),
         (0, "", "")))
    assert mgr._make_links([record_for(mgr, "br-new")]) == {"vm1": ["vm1-n1"]}
    assert not mgr.module.run_command.expected


def record_in(mgr, netns, made):
    """vm1 (one tap NIC on br0, in netns) whose run dir records the taps `made` made for it in another namespace."""
    spec = from_params(dict(name="vm1", nics=[dict(model="e1000")], bridge="br0", netns=netns), check_files=False)
    record = VmRecord("vm1", Entry("vm1", "vm1", 0, spec.macs()), spec, "", RunPaths(mgr.run_dir, "vm1"))
    os.makedirs(record.run.dir)
    with open(record.run.links_record, "w") as handle:
        json.dump(made, handle)
    return record


def test_taps_left_in_the_namespace_a_vm_moved_from_are_removed_there(tmp_path):
    # The VM ran on the host, was stopped, and its cfg now names a namespace: the tap made on the host goes there.
    mgr = manager(tmp_path)
    record = record_in(mgr, "lab", dict(netns=None, taps=["tap1"]))
    mgr.module.run_command = FakeRun(links(None, "mixed.json"), ([IP, "link", "del", "dev", "tap1"], None, (0, "", "")))
    mgr._forget_unused_links([record])
    assert not mgr.module.run_command.expected and not os.path.exists(record.run.links_record)


def test_a_namespace_that_is_gone_took_its_taps_and_one_still_named_is_kept(tmp_path):
    mgr = manager(tmp_path)
    mgr.module.run_command = FakeRun()  # no command at all
    gone = record_in(mgr, None, dict(netns="qi-no-such-netns-here", taps=["vm1-n1"]))
    mgr._forget_unused_links([gone])
    assert not os.path.exists(gone.run.links_record)
    same = VmRecord("vm1", gone.entry, gone.spec, "", gone.run)
    with open(same.run.links_record, "w") as handle:
        json.dump(dict(netns=None, taps=["vm1-n1"]), handle)
    mgr._forget_unused_links([same])  # the namespace it runs in: its record stays
    assert os.path.exists(same.run.links_record)


def test_the_tap_of_a_nic_the_cfg_no_longer_has_is_removed_and_the_rest_kept(tmp_path):
    # vm1 had a second NIC (its tap stands in as tap1, a tap of the fixture); its cfg now has one, vm1-n1.
    mgr = manager(tmp_path)
    record = record_in(mgr, None, dict(netns=None, taps=["tap1", "vm1-n1"]))
    mgr.module.run_command = FakeRun(links(None, "mixed.json"), ([IP, "link", "del", "dev", "tap1"], None, (0, "", "")))
    mgr._forget_unused_links([record])
    assert not mgr.module.run_command.expected
    with open(record.run.links_record) as handle:
        assert json.load(handle) == dict(netns=None, taps=["vm1-n1"])


def test_the_record_of_made_taps_is_owner_only_sorted_and_gone_with_the_last_tap(tmp_path):
    mgr = manager(tmp_path)
    record = record_in(mgr, None, dict(netns=None, taps=["vm1-n1"]))
    record.record_links("lab", {"vm1-n2", "vm1-n1"})
    with open(record.run.links_record) as handle:
        assert json.load(handle) == dict(netns="lab", taps=["vm1-n1", "vm1-n2"])
    assert os.stat(record.run.links_record).st_mode & 0o777 == 0o600
    assert VmRecord("vm1", record.entry, record.spec, "", record.run).made_links() == record.made_links()
    record.record_links("lab", [])
    assert not os.path.exists(record.run.links_record) and record.made_links() == {}


def test_the_unused_taps_of_several_vms_go_in_one_batch_per_namespace(tmp_path):
    # vm1 dropped its second NIC and vm2 its only one: one listing of the links and one batch, not one of each per VM.
    mgr = manager(tmp_path)
    vm1 = record_in(mgr, None, dict(netns=None, taps=["tap1", "vm1-n1"]))
    spec2 = from_params(dict(name="vm2"), check_files=False)
    vm2 = VmRecord("vm2", Entry("vm2", "vm2", 1, spec2.macs()), spec2, "", RunPaths(mgr.run_dir, "vm2"))
    os.makedirs(vm2.run.dir)
    vm2.record_links(None, ["tap2"])
    calls = []

    def run_command(args, check_rc=False, data=None, **kwargs):
        calls.append((args, data))
        if args == links(None)[0]:
            return links(None)[2]
        if args[:5] == [IP, "-json", "link", "show", "group"]:
            return 0, "[]", ""  # the random group is free
        assert args == [IP, "-batch", "-"]
        return 0, "", ""

    mgr.module.run_command = run_command
    mgr._forget_unused_links([vm1, vm2])
    assert [args for args, _data in calls].count(links(None)[0]) == 1
    batches = [data.splitlines() for args, data in calls if args == [IP, "-batch", "-"]]
    assert len(batches) == 1
    group = batches[0][-1].split()[-1]
    assert batches[0] == ["link set dev tap1 group " + group, "link set dev tap2 group " + group, "link del group " + group]
    with open(vm1.run.links_record) as handle:
        assert json.load(handle) == dict(netns=None, taps=["vm1-n1"])
    assert not os.path.exists(vm2.run.links_record)
