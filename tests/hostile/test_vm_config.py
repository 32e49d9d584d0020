# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config on hostile parameters: the real module, real files, real `qemu -device help`.

Each example is a valid VM with one parameter made hostile (or a batch holding such a VM). The outcome
must be either
- success: only config_dir/run_dir/state_dir (and the scratch image directory DISKS) changed; the cfg file is config_dir/vms/<name>-qemu.cfg, reads back to
  the same keys, gives exactly those values when bash sources it (as qemu-init does) without running
  anything, and turns into a QEMU argv whose option lists hold exactly the options we put there; a second
  run in check mode reports no change; or
- a fail_json naming the parameter, with config_dir, run_dir and everything around them unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import load_cfg_file
from ansible_collections.qemu_init.qemu.plugins.modules import vm_config
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

CONFIG = os.path.join(hs.SANDBOX, "cfg")
RUN = os.path.join(hs.SANDBOX, "run")
STATE = os.path.join(hs.SANDBOX, "state")
# Images a disk may be made on, grown or refused for (base images, a backing-chain loop), fresh for every example:
# disks made or grown at an absolute path land here, never among the sample files.
DISKS = os.path.join(hs.SANDBOX, "disks")
TEMPLATE = os.path.join(hs.SANDBOX, "template")
DISKS_TEMPLATE = os.path.join(hs.SANDBOX, "disks-template")
DIRS = dict(config_dir=CONFIG, run_dir=RUN, state_dir=STATE)
ST = os.path.join(hs.SANDBOX, "st")  # where a hostile state_dir lives
ROOTS = [CONFIG, RUN, STATE, DISKS, ST]
BASE = dict(name="hv1", os="debian", accel="tcg", memory=64, nics=[dict(model="e1000")])

# Real files with awkward names, for disks, cdroms, kernel and initrd.
SAMPLES = {
    "disk,with,commas.img": 1 << 20, "disk with spaces.img": 1 << 20, "d\u00efsk-\u2603.img": 1 << 20,
    "disk=eq.img": 1 << 20, "disk,,double.img": 1 << 20, "-dash.img": 1 << 20, "x.qcow2": 1 << 20,
    "vmlinuz,format=raw": 4096, "initrd\"q'.img": 4096,
}


def _setup_files():
    os.makedirs(hs.FILES, exist_ok=True)
    os.makedirs(os.path.join(hs.FILES, "dir.img"), exist_ok=True)
    for name, size in SAMPLES.items():
        with open(os.path.join(hs.FILES, name), "wb") as handle:
            handle.truncate(size)


_setup_files()
sample_paths = st.one_of(
    st.sampled_from([os.path.join(hs.FILES, n) for n in SAMPLES] + [
        os.path.join(hs.FILES, "dir.img"), os.path.join(hs.FILES, "missing.img"), "/dev/null", "/dev/zero", "relative.img",
        "", hs.FILES + "/../files/disk,with,commas.img", "~/x.img", hs.FILES + "/disk with spaces.img\n"]),
    hs.hostile_text,
)
disks = st.lists(st.fixed_dictionaries({"file": sample_paths}, optional={
    "format": st.one_of(st.sampled_from(["raw", "qcow2", "vmdk", "RAW", "raw,snapshot=on", ""]), hs.hostile_text),
    "interface": st.one_of(st.sampled_from(["ide", "virtio", "scsi", "none", "sd", "ide,if=virtio"]), hs.hostile_text),
    "readonly": st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2])),
}), min_size=1, max_size=3)
nic_fields = {
    "model": st.one_of(st.sampled_from(["e1000", "virtio-net-pci", "rtl8139", "no-such-nic", "e1000,mac=01:00:00:00:00:01",
                                        "e1000 ", "virtio-net-pci,netdev=x"]), hs.hostile_text),
    "bridge": hs.names, "tap": hs.names, "listen": hs.hostports, "connect": hs.hostports, "mcast": hs.hostports,
    "localaddr": hs.hosts, "hub": hs.ints, "hostfwd": st.lists(hs.hostfwds, max_size=3), "mac": hs.macs,
    "restrict": st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2])),
}
nics = st.lists(
    st.fixed_dictionaries({"backend": st.one_of(st.sampled_from(["tap", "socket", "mcast", "hubport", "user", "stream", "dgram"]),
                                                hs.hostile_text)},
                          optional=nic_fields),
    min_size=1, max_size=3)


def _qemu_img(*args):
    subprocess.run(["qemu-img"] + list(args), check=True, capture_output=True)


def _disks_template():
    """base.qcow2 (1 MiB), disk.qcow2 (an overlay on it), raw.img (1 MiB), a.qcow2 <-> b.qcow2 (a loop), made once."""
    if os.path.isdir(DISKS_TEMPLATE):
        return
    os.makedirs(DISKS_TEMPLATE + ".tmp", exist_ok=True)

    def at(name):
        return os.path.join(DISKS_TEMPLATE + ".tmp", name)

    _qemu_img("create", "-f", "qcow2", at("base.qcow2"), "1M")
    _qemu_img("create", "-f", "qcow2", "-b", os.path.join(DISKS, "base.qcow2"), "-F", "qcow2", "-u", at("disk.qcow2"), "1M")
    _qemu_img("create", "-f", "raw", at("raw.img"), "1M")
    _qemu_img("create", "-f", "qcow2", at("a.qcow2"), "1M")
    _qemu_img("create", "-f", "qcow2", "-b", os.path.join(DISKS, "a.qcow2"), "-F", "qcow2", "-u", at("b.qcow2"), "1M")
    _qemu_img("rebase", "-u", "-b", os.path.join(DISKS, "b.qcow2"), "-F", "qcow2", at("a.qcow2"))
    os.rename(DISKS_TEMPLATE + ".tmp", DISKS_TEMPLATE)


def _safe_relative(value):
    """A relative file the module may make a disk at: Ansible's path type expands ~ and $VARS (to absolute paths
    outside the sandbox), and a leading / is absolute."""
    return isinstance(value, str) and not value.startswith("/") and "~" not in value and "$" not in value


at_disks = [os.path.join(DISKS, n) for n in ("base.qcow2", "disk.qcow2", "raw.img", "a.qcow2", "b.qcow2", "new.qcow2", "new dir/x,y.img")]
made_files = st.one_of(
    st.sampled_from(["d.qcow2", "sub/d.img", "../x", "../../x", ".", "..", "a b,c=d.qcow2", "x\ny", DISKS] + at_disks),
    hs.hostile_text.filter(_safe_relative),
)
base_images = st.one_of(
    st.sampled_from(at_disks + [os.path.join(DISKS, "missing.qcow2"), os.path.join(hs.FILES, "x.qcow2"), "/dev/null", DISKS,
                                "base.qcow2", "../base.qcow2", os.path.join(hs.FILES, "dir.img")]),
    hs.hostile_text,
)
sizes = st.one_of(
    st.sampled_from(["1M", "2M", "1m", "1MiB", "1 M", "512", "513", "0", "-1", "1X", "", "1e6", "64K", "1G", 2 * 1024 * 1024, 0, -512]),
    hs.hostile_text, hs.ints,
)
made_disks = st.lists(st.fixed_dictionaries({"file": made_files}, optional={
    "base_image": base_images, "size": sizes,
    "format": st.sampled_from(["raw", "qcow2", "vmdk", ""]),
    "cache": st.one_of(st.sampled_from(["none", "writeback", "writethrough", "directsync", "unsafe", "NONE", ""]), hs.hostile_text),
    "discard": st.one_of(st.sampled_from(["ignore", "unmap", "on", ""]), hs.hostile_text),
}), min_size=1, max_size=2)
# cloud_init: the four documents as dicts, strings, lists and odd scalars, with weird keys; and cloud_init itself odd.
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=False), hs.hostile_text,
                         st.sampled_from(["no", "on", "0755", "1e3", "~", "null", "- a", "a: b", "#cloud-config", "\u2028", "\x85"]))
yaml_keys = st.one_of(hs.hostile_text, st.sampled_from(["", "? x", "a: b", "- ", "<<", "x" * 1100, "users", "runcmd"]))
documents = st.one_of(
    hs.hostile_text, st.sampled_from(["#cloud-config\nusers: []\n", "#!/bin/sh\nid\n", '{"instance-id": "x"}', "instance-id: i-1\n"]),
    st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(yaml_keys, inner, max_size=3)),
                 max_leaves=8),
    hs.wrong_types,
)
cloud_inits = st.one_of(
    st.fixed_dictionaries({}, optional={"user_data": documents, "meta_data": documents, "network_config": documents,
                                        "vendor_data": documents}),
    st.dictionaries(yaml_keys, documents, max_size=2),
    hs.hostile_text, st.lists(st.one_of(hs.hostile_text, st.integers()), max_size=2),
)
hubs = st.lists(st.fixed_dictionaries({"id": hs.ints}, optional={"bridge": hs.names, "tap": hs.names}), max_size=2)

# param -> values; every value of the right type is tried, and wrong types too.
MUTATIONS = {
    "name": hs.names, "short_name": hs.names, "os": hs.names, "memory": hs.ints, "cpus": hs.ints,
    "machine": st.one_of(st.sampled_from(["pc", "q35", "none", "pc,accel=kvm", "pc -S"]), hs.hostile_text),
    "accel": st.one_of(st.sampled_from(["kvm", "tcg", "auto", "xen", "tcg,thread=multi"]), hs.hostile_text),
    "disks": disks, "cdroms": st.lists(sample_paths, min_size=1, max_size=2),
    "kernel": sample_paths, "initrd": sample_paths, "append": hs.hostile_text,
    "nics": nics, "hubs": hubs, "bridge": hs.names, "netns": hs.names,
    "vnc": st.one_of(st.booleans(), st.sampled_from(["yes", "2"])),
    "vnc_listen": st.one_of(st.sampled_from(["0.0.0.0", "::", "::1", "127.0.0.1", "[::1]", "localhost", "1.2.3.4:5"]), hs.hosts),
    "monitor_tcp": st.one_of(st.booleans(), st.sampled_from(["on", "0.0.0.0"])),
    "serial_log": st.one_of(st.sampled_from([os.path.join(hs.OUTSIDE, "serial,log"), "relative.log", "/dev/stdout"]), hs.hostile_text),
    "extra_args": hs.extra_args, "state": st.one_of(st.sampled_from(["absent", "started", ""]), hs.hostile_text),
    # any binary but a shell: the binary is the operator's choice, and the arguments we give it are fixed
    "qemu_binary": st.one_of(st.sampled_from(["qemu-system-x86_64", "/bin/true", "/bin/false", "sh -c id", "no-such-qemu"]),
                             hs.hostile_text).filter(hs.not_a_shell),
    # The real-OS options (DESIGN.md, "Real operating systems").
    "made_disks": made_disks,
    "firmware": st.one_of(st.sampled_from(["bios", "uefi", "UEFI", "efi", ""]), hs.hostile_text),
    "secure_boot": st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2])),
    "uefi_secure": st.tuples(st.sampled_from([None, "pc", "q35", "pc-q35-7.2", "pc-i440fx-7.2", "microvm"]), st.booleans()),
    "tpm": st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2])),
    "guest_agent": st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2])),
    "cloud_init": cloud_inits,
    # A state_dir the VM's seed is written to: under the sandbox (ST), or one that cannot be a directory.
    "state_dir": st.one_of(st.sampled_from([STATE + "/x/..", os.path.join(hs.FILES, "x.qcow2"), "/dev/null", ST + "/s p,a=c#e\u2603"]),
                           hs.hostile_text.filter(lambda v: ".." not in v and "~" not in v and "$" not in v and "\0" not in v)
                           .map(lambda v: os.path.join(ST, v.lstrip("/")))),
}
mutations = st.one_of(
    st.sampled_from(sorted(MUTATIONS)).flatmap(lambda k: st.tuples(st.just(k), MUTATIONS[k])),
    # Not state_dir: null is the host's own /var/lib/qemu-init, and 0 a directory "0" in the cwd.
    st.tuples(st.sampled_from(sorted(set(MUTATIONS) - {"state_dir"})), hs.wrong_types),
)


def _template():
    """config_dir with one VM (base1) already registered, copied afresh for every example."""
    if not os.path.isdir(TEMPLATE):
        for d in (CONFIG, RUN, STATE):
            shutil.rmtree(d, ignore_errors=True)
        out = harness.call(vm_config.main, dict(DIRS, name="base1", os="debian", nics=[dict(model="e1000")]))
        assert out.kind == "ok", out
        shutil.copytree(CONFIG, TEMPLATE)


def _fresh():
    _template()
    _disks_template()
    for d in (CONFIG, RUN, STATE, DISKS, ST):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(TEMPLATE, CONFIG)
    shutil.copytree(DISKS_TEMPLATE, DISKS)


def qemu_opts(value):
    """QEMU's split of an option list: commas separate, a doubled comma is a literal one."""
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == ",":
            if value[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    return parts + [cur]


OPTION_KEYS = {
    "-drive": {"file", "format", "if", "media", "snapshot", "readonly", "cache", "discard", "unit"},
    "-netdev": {"id", "ifname", "script", "downscript", "listen", "connect", "mcast", "localaddr", "hubid", "netdev",
                "hostfwd", "restrict", "server", "addr.type", "addr.host", "addr.port", "addr.path", "local.type", "local.host",
                "local.port", "local.path", "remote.type", "remote.host", "remote.port", "remote.path"},
    "-device": {"netdev", "mac", "tpmdev", "id", "bus", "chardev", "name"},
    "-chardev": {"id", "host", "port", "server", "wait", "path", "logfile", "logappend"},
    "-qmp": {"server", "wait"},
    "-mon": {"chardev", "mode"},
}


# The -device kinds besides NICs: the TPM front end, the guest agent's virtio-serial bus and port.
OTHER_DEVICES = {"tpm-tis", "virtio-serial-pci", "virtserialport"}


def check_argv(spec, result, state_dir=STATE):
    """The argv of the spec: separate str items, option lists with exactly our keys, paths intact."""
    run = RunPaths(RUN, spec.name)
    state = StatePaths(state_dir, spec.name)
    argv = build_argv(spec, "/usr/bin/qemu-system-x86_64", run, ports_info(30320, result["slot"]), result["short_name"], "tcg",
                      ipv6_loopback=True, state_paths=state)
    problems = []
    assert all(isinstance(a, str) for a in argv), argv
    assert not any("\0" in a for a in argv), argv
    n_user = len(spec.extra_args)
    ours = argv[:len(argv) - n_user] if n_user else argv
    if n_user:
        assert argv[-n_user:] == spec.extra_args
    drives = sorted([d.file for d in spec.disks] + list(spec.cdroms) + ([spec.cidata] if spec.cidata else []))
    seen_drives, flash = [], []
    qmps = []
    for flag, value in zip(ours, ours[1:]):
        if flag not in OPTION_KEYS:
            continue
        parts = qemu_opts(value)
        typed = flag in ("-netdev", "-device", "-chardev", "-qmp")
        head, rest = (parts[0], parts[1:]) if typed else (None, parts)
        if flag == "-netdev" and head not in ("tap", "socket", "hubport", "user", "stream", "dgram"):
            problems.append("-netdev %r: backend %r" % (value, head))
        if flag == "-device" and head not in [n.model for n in spec.nics] + sorted(OTHER_DEVICES):
            problems.append("-device %r: model %r" % (value, head))
        for part in rest:
            key, sep, _val = part.partition("=")
            if flag == "-netdev" and key == "hostfwd":
                continue
            if not sep or key not in OPTION_KEYS[flag]:
                problems.append("%s %r: unexpected option %r" % (flag, value, part))
        if flag == "-drive" and parts[0] == "if=pflash":
            flash.append(dict(p.partition("=")[::2] for p in parts)["file"])
        elif flag == "-drive":
            seen_drives.append(parts[0].partition("=")[2])
        if flag == "-qmp":
            qmps.append(head)
    if sorted(seen_drives) != drives:
        problems.append("-drive files %r, not %r" % (seen_drives, drives))
    if spec.firmware == "uefi" and (len(flash) != 2 or flash[1] != state.efi_vars):
        problems.append("pflash drives %r (UEFI variables: %s)" % (flash, state.efi_vars))
    if spec.firmware != "uefi" and flash:
        problems.append("pflash drives %r without uefi" % flash)
    if qmps != ["unix:" + run.qmp, "unix:" + run.observe]:  # the lifecycle and the observer monitor, nothing else
        problems.append("-qmp %r" % qmps)
    # The serial port: the console socket in the run dir, logged to the serial log, and nothing else.
    serial = ours[ours.index("-serial") + 1]
    console = [value for flag, value in zip(ours, ours[1:]) if flag == "-chardev" and value.startswith("socket,id=serial0,")]
    wanted = [dict(p.partition("=")[::2] for p in qemu_opts(value)[1:]) for value in console]
    expected = {"id": "serial0", "path": run.console, "server": "on", "wait": "off",
                "logfile": spec.serial_log or run.serial_log, "logappend": "on"}
    if serial != "chardev:serial0" or wanted != [expected]:
        problems.append("-serial %r with -chardev %r" % (serial, console))
    assert not problems, problems
    return argv


def bash_values(path, keys):
    """What bash sees when it sources the cfg (qemu-init does), and whether that ran anything."""
    script = 'set -u; . "$1" >/dev/null 2>&1 || exit 97; shift; for k in "$@"; do printf "%s\\0" "${!k}"; done'
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", script, "bash", path] + keys,
                          capture_output=True, cwd=hs.OUTSIDE, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    return proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


def check_success(result, state_dir=STATE):
    path = result["path"]
    assert os.path.dirname(path) == os.path.join(CONFIG, "vms"), path
    assert os.path.basename(path).endswith("-qemu.cfg")
    cfg, spec = load_cfg_file(path)
    assert dict(spec.cfg_items()) == result["cfg"]
    keys = [k for k, _v in cfg.items()]
    assert bash_values(path, keys) == [v for _k, v in cfg.items()]
    assert not os.path.exists(hs.CANARY)
    check_argv(spec, result, state_dir)


def _item_and_names(key, value):
    """The VM's options for a mutation, and the parameters a refusal of it may name (with their values)."""
    item = dict(BASE)
    if key == "made_disks":
        item["disks"] = value
        return item, {"disks": value}
    if key == "uefi_secure":
        machine, secure = value if isinstance(value, tuple) else (value, True)
        item.update(firmware="uefi", secure_boot=secure)
        if machine is not None:
            item["machine"] = machine
        return item, {"firmware": "uefi", "machine": machine, "secure_boot": secure}
    if key == "state_dir":
        item["cloud_init"] = {"user_data": {"users": []}}  # something to write there: the seed
        return item, {key: value}
    item[key] = value
    return item, {key: value}


@settings(max_examples=harness.examples(330))
@given(mutation=mutations, batch=st.booleans())
def test_vm_config_hostile(mutation, batch):
    key, value = mutation
    _fresh()
    item, names = _item_and_names(key, value)
    if key == "state" and value == "absent":
        item["name"] = "base1"
    top = {"qemu_binary": value} if key == "qemu_binary" else {"state_dir": value} if key == "state_dir" else {}
    if top:
        item.pop(key, None)
    if batch:
        if top:
            params = dict(DIRS, vms=[item], **top)
        else:
            params = dict(DIRS, vms=[dict(name="hv0", os="debian", nics=[dict(model="e1000")]), item])
    else:
        params = dict(DIRS, **item)
        params.update(top)
    state_dir = params["state_dir"] if isinstance(params["state_dir"], str) else STATE
    before = harness.snapshot(hs.SANDBOX)
    out = harness.call(vm_config.main, params)
    after = harness.snapshot(hs.SANDBOX)
    # In a batch the refusal names the item's path ("vms[1].memory: ..."): that names memory, while
    # "vms" alone would let any item's error pass for this one's.
    problems = harness.judge("vm_config", out, ROOTS, names, before, after)
    assert not problems, (params, out, problems)
    if out.kind == "ok":
        changed = harness.tree_diff(before, after)
        outside = [p for p in changed if not any(p == r or p.startswith(r + "/") for r in ("cfg", "run", "state", "disks", "st"))]
        assert not outside, outside
        # nothing lost: the VM that was there before is untouched unless this call named it
        if "base1" not in (str(item.get("name")), str(item.get("short_name"))):
            assert "cfg/vms/base1-qemu.cfg" not in changed, changed
            with open(os.path.join(CONFIG, "qemu-init.reg"), encoding="utf-8") as handle:
                assert any(line.split()[:2] == ["base1", "base1"] for line in handle), "base1 left the registry"
        for one in (out.result["vms"] if batch else [out.result]):
            if "path" in one and os.path.exists(one["path"]):
                check_success(one, state_dir)
            seed = (one.get("cloud_init") or {}).get("seed")
            if seed:  # the seed holds secrets: 0600, and its content is never in the result
                assert stat.S_IMODE(os.stat(seed).st_mode) == 0o600, seed
                assert "user_data" not in json.dumps(one.get("cloud_init")), one
        again = harness.call(vm_config.main, params, check_mode=True)
        assert again.kind == "ok" and not again.result["changed"], again
        assert not os.path.exists(hs.CANARY)
