# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hand-written qemu-init cfg files (issue 16, item 8): seen whole by vm_info before they are registered (NICs, the
MACs the rule gives), and adopted into the registry by vm_config without a byte of the file changing. The start that
adopts them is tested on a real guest (tests/integration/targets/vm_info, handwritten.yml)."""

from __future__ import annotations

import hashlib
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qemu_init.qemu.plugins.modules import vm_info
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import Exit, run_vm_config

# As a qemu-init user writes it: comments, a blank line, single quotes, no quotes, typographic quotes, spacing.
OLDBOX = """# oldbox, moved over from the old host
NAME="oldbox"
OS='debian'
DSK1=%s

NIC1="e1000"    # uplink
NIC2=\u201cvirtio-net-pci\u201d
BRIDGE_IFNAME="br1"
"""


def qemu_init_mac(name, os_label, index):
    """The MAC rule of DESIGN.md, written out again here, independently of _mac."""
    digest = hashlib.sha256(("%s:%s:%d" % (name, os_label, index)).encode()).digest()
    return "DE:AD:BE:EF:%02X:%02X" % (digest[0], digest[1])


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "etc" / "vms").mkdir(parents=True)
    disk = tmp_path / "oldbox.img"
    disk.write_bytes(b"\0" * 4096)
    cfg = tmp_path / "etc" / "vms" / "oldbox-qemu.cfg"
    cfg.write_text(OLDBOX % disk, encoding="utf-8")
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run")), cfg, str(disk)


def run_vm_info(args, failed=False):
    def exit_json(self, **kwargs):
        raise Exit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        raise Exit(dict(kwargs, msg=msg), True)

    with patch_module_args(args), mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), pytest.raises(Exit) as exc:
        vm_info.main()
    assert exc.value.failed == failed, exc.value.result
    return exc.value.result


def test_vm_info_shows_a_hand_written_vm_with_its_nics_and_macs(dirs):
    d, _cfg, _disk = dirs
    # Another VM, made by vm_config, so that there is a registry to be listed from as well.
    result, failed, _calls = run_vm_config(dict(d, name="newbox", nics=[dict(model="e1000")]))
    assert not failed, result
    for args in (dict(d, name="oldbox"), d):
        vms = dict((vm["name"], vm) for vm in run_vm_info(args)["vms"])
        assert "oldbox" in vms, vms
        old = vms["oldbox"]
        assert old["exists"] and old["short_name"] is None and old["slot"] is None, old
        assert [(n["index"], n["model"], n["backend"], n["bridge"], n["mac"], n["mac_source"], n["tap"]) for n in old["nics"]] == [
            (1, "e1000", "tap", "br1", qemu_init_mac("oldbox", "debian", 1), "derived", None),
            (2, "virtio-net-pci", "tap", "br1", qemu_init_mac("oldbox", "debian", 2), "derived", None),
        ]
    assert sorted(vms) == ["newbox", "oldbox"]


def test_vm_config_adopts_a_hand_written_vm_without_rewriting_it(dirs):
    d, cfg, disk = dirs
    before = cfg.read_bytes()
    params = dict(d, name="oldbox", os="debian", disks=[dict(file=disk)], bridge="br1",
                  nics=[dict(model="e1000"), dict(model="virtio-net-pci")])
    check, failed, _calls = run_vm_config(params, check_mode=True, diff=True)
    assert not failed and check["changed"], check
    assert check["diff"][0]["before"] == check["diff"][0]["after"]  # only the registry line would change
    applied, failed, _calls = run_vm_config(params, diff=True)
    assert not failed and applied["changed"], applied
    assert cfg.read_bytes() == before
    macs = [qemu_init_mac("oldbox", "debian", i) for i in (1, 2)]
    assert applied["short_name"] == "oldbox" and applied["slot"] == 0 and applied["macs"] == macs
    assert [n["tap"] for n in applied["nics"]] == ["oldbox-n1", "oldbox-n2"]
    with open(d["config_dir"] + "/qemu-init.reg", encoding="utf-8") as handle:
        assert handle.read().splitlines()[1:] == ["oldbox oldbox 0 " + ",".join(macs)]
    again, failed, _calls = run_vm_config(params)
    assert not failed and not again["changed"], again
    assert cfg.read_bytes() == before
    info = run_vm_info(dict(d, name="oldbox"))["vms"][0]
    assert info["short_name"] == "oldbox" and info["slot"] == 0
    assert [n["tap"] for n in info["nics"]] == ["oldbox-n1", "oldbox-n2"]


@pytest.mark.parametrize("fname", ["old box-qemu.cfg", "-qemu.cfg", ".oldbox-qemu.cfg"])
def test_a_cfg_file_whose_name_gives_no_vm_name_is_named_not_the_name_parameter(dirs, fname):
    # Before: vm_info without a name failed with "name: must be a non-empty string", naming a parameter nobody gave.
    d, _cfg, _disk = dirs
    path = "%s/vms/%s" % (d["config_dir"], fname)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('NAME="old box"\n')
    result = run_vm_info(d, failed=True)
    assert result["msg"].startswith("%s: the file name does not give a VM name (" % path), result
    assert not result["msg"].startswith("name:")
    assert [vm["name"] for vm in run_vm_info(dict(d, name="oldbox"))["vms"]] == ["oldbox"]  # the others still answer
