# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qemu_init.qemu.plugins.filter.molecule import FilterModule

FILTERS = FilterModule().filters()
molecule_vms = FILTERS["molecule_vms"]
molecule_instances = FILTERS["molecule_instances"]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake molecule@qemu_init.qemu"
BASE = "/srv/images/debian-12.qcow2"


def test_defaults_make_a_uefi_vm_with_an_overlay_a_seed_the_agent_and_an_ssh_forward():
    (vm,) = molecule_vms([{"name": "web1"}], public_key=KEY + "\n", base_image=BASE)
    assert vm == {
        "name": "web1",
        "state": "started",
        "memory": 1024,
        "cpus": 1,
        "machine": "q35",
        "accel": "auto",
        "firmware": "uefi",
        "disks": [{"file": "disk.qcow2", "base_image": BASE, "interface": "virtio"}],
        "cloud_init": {"user_data": {
            "users": ["default", {"name": "debian", "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                                  "lock_passwd": True, "ssh_authorized_keys": [KEY]}],
            "ssh_pwauth": False}},
        "guest_agent": True,
        "nics": [{"model": "virtio-net-pci", "backend": "user", "hostfwd": ["tcp:127.0.0.1:22220-:22"]}],
    }


def test_unset_playbook_variables_are_none_and_mean_the_defaults():
    (vm,) = molecule_vms([{"name": "a"}], public_key=KEY, base_image=BASE, memory=None, cpus=None, firmware=None,
                         accel=None, ssh_user=None, ssh_port_base=None)
    assert (vm["memory"], vm["cpus"], vm["firmware"], vm["accel"]) == (1024, 1, "uefi", "auto")
    assert vm["cloud_init"]["user_data"]["users"][1]["name"] == "debian"
    assert vm["nics"][0]["hostfwd"] == ["tcp:127.0.0.1:22220-:22"]


def test_platform_settings_win_over_the_variables():
    platforms = [
        {"name": "a"},
        {"name": "b", "base_image": "/other.qcow2", "memory": "512", "cpus": 2, "firmware": "bios",
         "ssh_user": "admin", "ssh_port": 2300},
        {"name": "c", "groups": ["db"], "anything": "molecule allows"},
    ]
    vms = molecule_vms(platforms, public_key=KEY, base_image=BASE, memory=768, cpus=1, firmware="uefi",
                       accel="tcg", ssh_user="ubuntu", ssh_port_base=40000)
    assert [vm["name"] for vm in vms] == ["a", "b", "c"]
    assert [vm["disks"][0]["base_image"] for vm in vms] == [BASE, "/other.qcow2", BASE]
    assert [(vm["memory"], vm["cpus"], vm["firmware"], vm["accel"]) for vm in vms] == [
        (768, 1, "uefi", "tcg"), (512, 2, "bios", "tcg"), (768, 1, "uefi", "tcg")]
    assert [vm["cloud_init"]["user_data"]["users"][1]["name"] for vm in vms] == ["ubuntu", "admin", "ubuntu"]
    # the port is the base + the platform's index, unless the platform sets ssh_port
    assert [vm["nics"][0]["hostfwd"] for vm in vms] == [
        ["tcp:127.0.0.1:40000-:22"], ["tcp:127.0.0.1:2300-:22"], ["tcp:127.0.0.1:40002-:22"]]


def test_restrict_cuts_the_guests_off_from_all_but_their_forwards():
    (vm,) = molecule_vms([{"name": "a"}], public_key=KEY, base_image=BASE, restrict=True)
    assert vm["nics"] == [{"model": "virtio-net-pci", "backend": "user", "hostfwd": ["tcp:127.0.0.1:22220-:22"],
                           "restrict": True}]
    for off in (False, None):
        assert "restrict" not in molecule_vms([{"name": "a"}], public_key=KEY, base_image=BASE, restrict=off)[0]["nics"][0]


def test_absent_needs_no_key_and_no_image():
    assert molecule_vms([{"name": "a"}, {"name": "b", "base_image": "relative"}], state="absent") == [
        {"name": "a", "state": "absent"},
        {"name": "b", "state": "absent"},
    ]
    assert molecule_vms([], state="absent") == []


@pytest.mark.parametrize("platforms, kwargs, message", [
    ("web1", {}, "expects molecule's platforms"),
    ([{"memory": 1}], {}, r"platforms\[0\] must be a dict with a name"),
    ([{"name": "a"}, {"name": "a"}], {}, "the name 'a' is used twice"),
    ([{"name": "a"}], {"base_image": None}, "no base image: set the platform's base_image or the variable "
                                            "qemu_molecule_base_image"),
    ([{"name": "a", "base_image": "images/x.qcow2"}], {}, "base_image must be an absolute path"),
    ([{"name": "a", "firmware": "efi"}], {}, r"platform a \(platforms\[0\]\): firmware must be one of uefi, bios"),
    ([{"name": "a"}], {"accel": "hvf"}, "accel must be one of auto, kvm, tcg"),
    ([{"name": "a", "memory": "1G"}], {}, "memory must be a whole number, got '1G'"),
    ([{"name": "a", "cpus": True}], {}, "cpus must be a whole number"),
    ([{"name": "a", "cpus": 0}], {}, "cpus must be between 1 and 1024"),
    ([{"name": "a", "ssh_port": 70000}], {}, "ssh_port must be between 1 and 65535"),
    ([{"name": "a"}, {"name": "b", "ssh_port": 22220}], {}, "SSH port 22220 is also the port of platform a"),
    ([{"name": "a"}], {"ssh_port_base": 65535, "public_key": KEY}, None),
    ([{"name": "a"}, {"name": "b"}], {"ssh_port_base": 65535}, r"qemu_molecule_ssh_port_base \+ index must be"),
    ([{"name": "a"}], {"public_key": ""}, "public_key .* is required"),
    ([{"name": "a"}], {"public_key": KEY + "\n" + KEY}, "public_key must be one line"),
    ([{"name": "a"}], {"state": "stopped"}, "state must be one of started, absent"),
    ([{"name": "a"}], {"restrict": "yes"}, "restrict must be true or false"),
])
def test_bad_input_is_an_error_naming_the_platform_and_the_setting(platforms, kwargs, message):
    kwargs = {"public_key": KEY, "base_image": BASE, **kwargs}
    if message is None:
        assert molecule_vms(platforms, **kwargs)
        return
    with pytest.raises(AnsibleFilterError, match="qemu_init.qemu.molecule_vms: .*" + message):
        molecule_vms(platforms, **kwargs)


def test_instances_come_from_the_module_result_in_platform_order():
    platforms = [{"name": "a"}, {"name": "b", "ssh_user": "admin"}]
    vms = [  # the module's order need not be molecule.yml's
        {"name": "b", "ready": True, "ssh": {"host": "127.0.0.1", "port": 22221}},
        {"name": "a", "ready": True, "ssh": {"host": "127.0.0.1", "port": "22220"}},
    ]
    assert molecule_instances(vms, platforms, "/e/qemu_init/id_ed25519") == [
        {"instance": "a", "address": "127.0.0.1", "port": 22220, "user": "debian",
         "identity_file": "/e/qemu_init/id_ed25519", "connection": "ssh"},
        {"instance": "b", "address": "127.0.0.1", "port": 22221, "user": "admin",
         "identity_file": "/e/qemu_init/id_ed25519", "connection": "ssh"},
    ]
    assert molecule_instances(vms, platforms[:1], "/k", ssh_user="ubuntu")[0]["user"] == "ubuntu"
    assert molecule_instances(vms, platforms[:1], "/k", ssh_user=None)[0]["user"] == "debian"


@pytest.mark.parametrize("vms, identity_file, message", [
    ({"name": "a"}, "/k", "expects the qemu_init.qemu.vms module's vms"),
    ([], "/k", r"platform a \(platforms\[0\]\): the module's result has no VM of that name"),
    ([{"name": "a", "ssh": None}], "/k", "gives no SSH address .*wait_for: ssh"),
    ([{"name": "a", "ssh": {"host": "127.0.0.1"}}], "/k", "gives no SSH address"),
    ([{"name": "a", "ssh": {"host": "127.0.0.1", "port": 22}}], "key", "identity_file must be an absolute path"),
])
def test_instances_bad_input(vms, identity_file, message):
    with pytest.raises(AnsibleFilterError, match="qemu_init.qemu.molecule_instances: .*" + message):
        molecule_instances(vms, [{"name": "a"}], identity_file)
