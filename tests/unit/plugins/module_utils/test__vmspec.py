# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import (
    default_disk_format,
    from_cfg,
    from_params,
    parse_cfg_text,
)

PLAIN_QEMU_INIT = """\
# plain qemu-init: only its own keys
NAME="web1"
OS="debian"
DSK1="/var/lib/qemu/web1.qcow2"
DSK2="/var/lib/qemu/web1-data.img"
CDR1="/srv/iso/install.iso"
NIC1="virtio-net-pci"
NIC2="e1000"
NIC4="e1000"
BRIDGE_IFNAME="br1"
"""


def test_plain_qemu_init_cfg_loads_with_qemu_init_meaning():
    _cfg, spec = parse_cfg_text(PLAIN_QEMU_INIT, "web1-qemu.cfg")
    assert spec.name == "web1" and spec.os == "debian"
    assert [(d.file, d.format, d.interface) for d in spec.disks] == [
        ("/var/lib/qemu/web1.qcow2", "qcow2", "ide"), ("/var/lib/qemu/web1-data.img", "raw", "ide")]
    assert spec.cdroms == ["/srv/iso/install.iso"]
    # numbering stops at the first gap: NIC4 is not a NIC
    assert [n.model for n in spec.nics] == ["virtio-net-pci", "e1000"]
    assert [spec.nic_bridge(i) for i in (1, 2)] == ["br1", "br1"]
    assert spec.macs() == ["DE:AD:BE:EF:CF:CE", "DE:AD:BE:EF:D4:64"]


def test_render_onto_hand_written_file_keeps_operator_keys_and_is_stable():
    cfg, spec = parse_cfg_text(PLAIN_QEMU_INIT + 'MY_KEY="mine"\n', "x")
    text = spec.render_onto(cfg)
    assert 'MY_KEY="mine"' in text and "# plain qemu-init" in text
    assert "NIC4" not in text  # an orphaned NIC key of ours goes
    cfg2, spec2 = parse_cfg_text(text, "x")
    assert spec2 == spec
    assert spec2.render_onto(cfg2) == text


def full_params(**over):
    params = dict(
        name="web1", os="debian", memory=256, cpus=2, machine="q35", accel="tcg",
        disks=[dict(file="/d/web1.qcow2", format=None, interface="virtio", readonly=False),
               dict(file="/d/seed.img", format="raw", interface="ide", readonly=True)],
        cdroms=["/iso/a.iso"], kernel="/k/vmlinuz", initrd="/k/initrd.img", append="console=ttyS0 qi.ip=10.0.0.1/24",
        nics=[
            dict(model="e1000", backend="tap", bridge="br1", tap="web1-up"),
            dict(model="virtio-net-pci", backend="socket", listen=":10001"),
            dict(model="e1000", backend="socket", connect="127.0.0.1:10002"),
            dict(model="e1000", backend="mcast", mcast="230.0.0.1:1234", localaddr="127.0.0.1"),
            dict(model="rtl8139", backend="hubport", hub=0),
            dict(model="e1000", backend="user", hostfwd=["tcp::2222-:22"], restrict=True),
            dict(model="e1000", backend="stream", connect="unix:/run/x.sock"),
            dict(model="e1000", backend="dgram", listen="127.0.0.1:9000", connect="127.0.0.1:9001"),
            dict(model="e1000", mac="52:54:00:12:34:56"),
        ],
        bridge="br0", netns="lab", vnc=True, vnc_listen="::1", monitor_tcp=True, serial_log="/var/log/web1.serial",
        extra_args=["-device", "virtio-rng-pci", "-smbios", "type=1,serial=a b"],
    )
    params.update(over)
    return params


def test_every_field_round_trips_through_the_cfg_file():
    spec = from_params(full_params(), check_files=False)
    text = spec.render_onto(None)
    again = from_cfg(CfgFile.parse(text), "x")
    assert again == spec
    assert spec.render_onto(CfgFile.parse(text)) == text
    # an empty host in a forward is bound to loopback, never to every address
    assert spec.nics[5].hostfwd == ["tcp:127.0.0.1:2222-:22"]
    assert 'NIC6_RESTRICT="yes"' in text.splitlines() and again.nics[5].restrict is True
    assert spec.nic_mac(9) == "52:54:00:12:34:56"


def test_defaults_are_not_written():
    text = from_params(dict(name="min"), check_files=False).render_onto(None)
    assert text.splitlines()[1:] == ['NAME="min"', 'OS="linux"']


@pytest.mark.parametrize("restrict", [None, False])
def test_restrict_unset_or_false_writes_nothing_on_any_backend(restrict):
    spec = from_params(dict(name="web1", nics=[dict(backend="user", restrict=restrict), dict(backend="tap", restrict=restrict)]),
                       check_files=False)
    assert [n.restrict for n in spec.nics] == [False, False]
    assert "RESTRICT" not in spec.render_onto(None)


@pytest.mark.parametrize("value, expected", [("yes", True), ("on", True), ("true", True), ("no", False), ("off", False)])
def test_restrict_read_from_a_hand_written_cfg(value, expected):
    text = 'NAME="w"\nNIC1="e1000"\nNIC1_BACKEND="user"\nNIC1_RESTRICT="%s"\n' % value
    cfg, spec = parse_cfg_text(text, "x")
    assert spec.nics[0].restrict is expected
    # rendered back the collection's way: "yes", or no key at all for the default
    rendered = spec.render_onto(cfg).splitlines()
    assert [line for line in rendered if line.startswith("NIC1_RESTRICT")] == (['NIC1_RESTRICT="yes"'] if expected else [])


def test_nic_tap_and_bridge_defaults():
    spec = from_params(dict(name="web1", bridge="br9", nics=[{}, dict(backend="user")]), check_files=False)
    assert spec.nic_tap(1, "w1") == "w1-n1" and spec.nic_bridge(1) == "br9"
    assert spec.nic_tap(2, "w1") is None and spec.nic_bridge(2) is None


@pytest.mark.parametrize("over, param, problem", [
    (dict(name="a/b"), "name", "not a valid VM name"),
    (dict(name="../etc"), "name", "not a valid VM name"),
    (dict(name="a b"), "name", "not a valid VM name"),
    (dict(name="a;reboot"), "name", "not a valid VM name"),
    (dict(name="x" * 65), "name", "limit is 64"),
    (dict(os="deb ian"), "os", "not a valid OS label"),
    (dict(memory=8), "memory", "outside"),
    (dict(cpus=0), "cpus", "outside"),
    (dict(machine="q35,accel=kvm"), "machine", "not a QEMU machine"),
    (dict(accel="hvf"), "accel", "not one of"),
    (dict(kernel="vmlinuz"), "kernel", "must be absolute"),
    (dict(kernel=None, initrd=None, append="x"), "append", "needs a kernel"),
    (dict(disks=[dict(file="/d/a.img", format="vmdk2")]), "disks[0].format", "not one of"),
    (dict(disks=[dict(file="rel.img")]), "disks[0].file", "must be absolute"),
    (dict(cdroms=["/iso/a\n.iso"]), "cdroms[0]", "newline"),
    (dict(bridge="br/0"), "bridge", "character"),
    (dict(bridge="a-very-long-bridge"), "bridge", "15"),
    (dict(netns="../x"), "netns", "not a valid network namespace"),
    (dict(nics=[dict(backend="wire")]), "nics[0].backend", "not one of"),
    (dict(nics=[dict(model="e1000,netdev=x")]), "nics[0].model", "not a QEMU device"),
    (dict(nics=[dict(backend="tap", mcast="230.0.0.1:1")]), "nics[0].mcast", "not used by backend tap"),
    (dict(nics=[dict(backend="socket")]), "nics[0].listen", "exactly one of listen or connect"),
    (dict(nics=[dict(backend="socket", listen=":1", connect="h:2")]), "nics[0].listen", "exactly one"),
    (dict(nics=[dict(backend="socket", connect=":1234")]), "nics[0].connect", "needs a host"),
    (dict(nics=[dict(backend="socket", listen=":99999")]), "nics[0].listen", "not between 1 and 65535"),
    (dict(nics=[dict(backend="mcast")]), "nics[0].mcast", "needs mcast"),
    (dict(nics=[dict(backend="mcast", mcast="10.0.0.1:1234")]), "nics[0].mcast", "not a multicast group"),
    (dict(nics=[dict(backend="hubport")]), "nics[0].hub", "needs hub"),
    (dict(nics=[dict(backend="hubport", hub=-1)]), "nics[0].hub", "not a hub number"),
    (dict(nics=[dict(backend="user", hostfwd=["2222:22"])]), "nics[0].hostfwd", "PROTO"),
    (dict(nics=[{}, dict(backend="tap", restrict=True)]), "nics[1].restrict", "not used by backend tap (it uses: bridge, tap)"),
    (dict(nics=[dict(backend="socket", listen=":1", restrict=True)]), "nics[0].restrict", "not used by backend socket"),
    (dict(nics=[dict(backend="stream", listen=":1", restrict=True)]), "nics[0].restrict", "not used by backend stream"),
    (dict(nics=[dict(backend="user", restrict="yes")]), "nics[0].restrict", "not true or false"),
    (dict(nics=[dict(backend="dgram", listen=":1")]), "nics[0].listen", "needs listen"),
    (dict(nics=[dict(mac="01:00:5e:00:00:01")]), "nics[0].mac", "multicast"),
    (dict(nics=[dict(mac="00:00:00:00:00:00")]), "nics[0].mac", "all-zero"),
    (dict(nics=[{}, dict(mac="de:ad:be:ef:cf:ce")]), "nics[1].mac", "already used by NIC1"),
    (dict(nics=[dict(tap="t0"), dict(tap="t0")]), "nics[1].tap", "already used by NIC1"),
    (dict(nics=[dict(tap="b0", bridge="b0")]), "nics[0].tap", "a tap cannot be a bridge"),
    (dict(nics=[dict(bridge="b1"), dict(tap="b1")]), "nics[1].tap", "a tap cannot be a bridge"),
    (dict(bridge="b2", nics=[dict(tap="b2")]), "nics[0].tap", "a tap cannot be a bridge"),
    (dict(nics=[dict(backend="hubport", hub=1)], hubs=[dict(id=1, tap="b3", bridge="b3")]), "hubs[0].tap", "a tap cannot be a bridge"),
    (dict(vnc_listen="localhost"), "vnc_listen", "not an IP address"),
    (dict(extra_args=["-net", "nic"]), "extra_args", "legacy -net"),
    (dict(extra_args=["-netdev", "user,id=x"]), "extra_args", "use nics"),
    (dict(extra_args=["-daemonize"]), "extra_args", "managed"),
])
def test_bad_params_name_the_parameter(over, param, problem):
    params = dict(name="web1", os="debian", kernel="/k/vmlinuz")
    params.update(over)
    with pytest.raises(ParameterError) as exc:
        from_params(params, check_files=False)
    assert exc.value.param == param, exc.value.msg
    assert problem in exc.value.problem


def test_missing_files_are_errors_only_when_checked(tmp_path):
    params = dict(name="web1", disks=[dict(file=str(tmp_path / "missing.img"))])
    from_params(params, check_files=False)
    with pytest.raises(ParameterError) as exc:
        from_params(params, check_files=True)
    assert exc.value.param == "disks[0].file" and "does not exist" in exc.value.problem


@pytest.mark.parametrize("text, where", [
    ('OS="x"\n', "NAME"),
    ('NAME="w"\nNIC1="e1000"\nNIC1_BACKEND="wire"\n', "NIC1_BACKEND"),
    ('NAME="w"\nMEMORY="lots"\n', "MEMORY"),
    ('NAME="w"\nVNC="maybe"\n', "VNC"),
    ('NAME="w"\nDSK1="/a.img"\nDSK1_FORMAT="zip"\n', "DSK1_FORMAT"),
    ('NAME="w"\nNIC1="e1000"\nNIC1_BACKEND="user"\nNIC1_RESTRICT="sometimes"\n', "NIC1_RESTRICT"),
    ('NAME="w"\nNIC1="e1000"\nNIC1_RESTRICT="yes"\n', "NIC1_RESTRICT"),
])
def test_bad_cfg_names_file_and_key(text, where):
    with pytest.raises(ParameterError) as exc:
        parse_cfg_text(text, "/etc/qemu/vms/w-qemu.cfg")
    assert exc.value.param == "/etc/qemu/vms/w-qemu.cfg: " + where


@pytest.mark.parametrize("path, fmt", [("/a/b.qcow2", "qcow2"), ("/a/B.QCOW2", "qcow2"), ("/a/b.img", "raw"), ("/a/b", "raw")])
def test_default_disk_format(path, fmt):
    assert default_disk_format(path) == fmt


def test_hub_uplinks_round_trip_and_tap_names():
    spec = from_params(dict(name="web1", bridge="br7", nics=[dict(backend="hubport", hub=0), dict(backend="hubport", hub=0, model="rtl8139")],
                            hubs=[dict(id=0)]), check_files=False)
    assert spec.taps("w1") == [("w1-h0", "br7")]
    text = spec.render_onto(None)
    assert 'HUB1="0"' in text and 'BRIDGE_IFNAME="br7"' in text
    own = from_params(dict(name="web1", nics=[dict(backend="hubport", hub=0), dict(bridge="br2")], hubs=[dict(id=0, bridge="br1")]),
                      check_files=False)
    assert "BRIDGE_IFNAME" not in own.render_onto(None)  # nothing uses the VM's own bridge
    assert from_cfg(CfgFile.parse(text), "x") == spec


@pytest.mark.parametrize("hubs, param, problem", [
    ([dict(id=1)], "hubs[0].id", "no NIC is on hub 1"),
    ([dict(id=0), dict(id=0)], "hubs[1].id", "already has an uplink"),
    ([dict(id=0, tap="t0")], "hubs[0].tap", "already the tap of a NIC"),
    ([dict(id=0, bridge="b/r")], "hubs[0].bridge", "character"),
])
def test_bad_hubs(hubs, param, problem):
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="web1", nics=[dict(backend="hubport", hub=0), dict(tap="t0")], hubs=hubs), check_files=False)
    assert exc.value.param == param and problem in exc.value.problem


@pytest.mark.parametrize("args, expected", [
    (["-net", "nic,model=e1000", "-net", "tap,ifname=t0"], "nics: [{model: e1000, backend: tap, tap: t0}]"),
    (["-net", "nic,model=rtl8139,macaddr=52:54:00:12:34:56", "-net", "user,hostfwd=tcp::2222-:22"],
     "nics: [{model: rtl8139, mac: 52:54:00:12:34:56, backend: user, hostfwd: ['tcp::2222-:22']}]"),
    (["-net", "nic", "-net", "user,restrict=on,hostfwd=tcp::2222-:22"],
     "nics: [{model: e1000, backend: user, hostfwd: ['tcp::2222-:22'], restrict: true}]"),
    (["-net", "nic", "-net", "user,restrict=y"], "nics: [{model: e1000, backend: user, restrict: true}]"),
    (["-net", "nic", "-net", "user,restrict"], "nics: [{model: e1000, backend: user, restrict: true}]"),
    (["-net", "nic", "-net", "user,restrict=off"], "nics: [{model: e1000, backend: user}]"),
    (["-net", "nic", "-net", "socket,mcast=230.0.0.1:1234"], "nics: [{model: e1000, backend: mcast, mcast: 230.0.0.1:1234}]"),
    (["-net", "nic,vlan=1", "-net", "nic,vlan=1,model=rtl8139", "-net", "tap,vlan=1"],
     "nics: [{model: e1000, backend: hubport, hub: 1}, {model: rtl8139, backend: hubport, hub: 1}]; hubs: [{id: 1}]"),
    (["-net", "nic", "-net", "nic,model=rtl8139", "-net", "tap,ifname=t0"],
     "nics: [{model: e1000, backend: hubport, hub: 0}, {model: rtl8139, backend: hubport, hub: 0}]; hubs: [{id: 0, tap: t0}]"),
])
def test_legacy_net_is_refused_with_the_modern_equivalent(args, expected):
    with pytest.raises(ParameterError) as exc:
        from_params(dict(name="web1", extra_args=args), check_files=False)
    assert exc.value.param == "extra_args" and expected in exc.value.problem
