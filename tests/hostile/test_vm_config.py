# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_config on hostile parameters: the real module, real files, real `qemu -device help`.

Each example is a valid VM with one parameter made hostile (or a batch holding such a VM). The outcome
must be either
- success: only config_dir/run_dir changed; the cfg file is config_dir/vms/<name>-qemu.cfg, reads back to
  the same keys, gives exactly those values when bash sources it (as qemu-init does) without running
  anything, and turns into a QEMU argv whose option lists hold exactly the options we put there; a second
  run in check mode reports no change; or
- a fail_json naming the parameter, with config_dir, run_dir and everything around them unchanged.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import load_cfg_file
from ansible_collections.qemu_init.qemu.plugins.modules import vm_config
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

CONFIG = os.path.join(hs.SANDBOX, "cfg")
RUN = os.path.join(hs.SANDBOX, "run")
TEMPLATE = os.path.join(hs.SANDBOX, "template")
DIRS = dict(config_dir=CONFIG, run_dir=RUN)
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
}
mutations = st.one_of(
    st.sampled_from(sorted(MUTATIONS)).flatmap(lambda k: st.tuples(st.just(k), MUTATIONS[k])),
    st.tuples(st.sampled_from(sorted(MUTATIONS)), hs.wrong_types),
)


def _template():
    """config_dir with one VM (base1) already registered, copied afresh for every example."""
    if not os.path.isdir(TEMPLATE):
        for d in (CONFIG, RUN):
            shutil.rmtree(d, ignore_errors=True)
        out = harness.call(vm_config.main, dict(DIRS, name="base1", os="debian", nics=[dict(model="e1000")]))
        assert out.kind == "ok", out
        shutil.copytree(CONFIG, TEMPLATE)


def _fresh():
    _template()
    for d in (CONFIG, RUN):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(TEMPLATE, CONFIG)


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
    "-drive": {"file", "format", "if", "media", "snapshot", "readonly"},
    "-netdev": {"id", "ifname", "script", "downscript", "listen", "connect", "mcast", "localaddr", "hubid", "netdev",
                "hostfwd", "restrict", "server", "addr.type", "addr.host", "addr.port", "addr.path", "local.type", "local.host",
                "local.port", "local.path", "remote.type", "remote.host", "remote.port", "remote.path"},
    "-device": {"netdev", "mac"},
    "-chardev": {"id", "host", "port", "server", "wait", "path", "logfile", "logappend"},
    "-qmp": {"server", "wait"},
    "-mon": {"chardev", "mode"},
}


def check_argv(spec, result):
    """The argv of the spec: separate str items, option lists with exactly our keys, paths intact."""
    run = RunPaths(RUN, spec.name)
    argv = build_argv(spec, "/usr/bin/qemu-system-x86_64", run, ports_info(30320, result["slot"]), result["short_name"], "tcg",
                      ipv6_loopback=True)
    problems = []
    assert all(isinstance(a, str) for a in argv), argv
    assert not any("\0" in a for a in argv), argv
    n_user = len(spec.extra_args)
    ours = argv[:len(argv) - n_user] if n_user else argv
    if n_user:
        assert argv[-n_user:] == spec.extra_args
    drives = [d.file for d in spec.disks] + list(spec.cdroms)
    qmps = []
    for flag, value in zip(ours, ours[1:]):
        if flag not in OPTION_KEYS:
            continue
        parts = qemu_opts(value)
        typed = flag in ("-netdev", "-device", "-chardev", "-qmp")
        head, rest = (parts[0], parts[1:]) if typed else (None, parts)
        if flag == "-netdev" and head not in ("tap", "socket", "hubport", "user", "stream", "dgram"):
            problems.append("-netdev %r: backend %r" % (value, head))
        if flag == "-device" and head not in [n.model for n in spec.nics]:
            problems.append("-device %r: model %r" % (value, head))
        for part in rest:
            key, sep, _val = part.partition("=")
            if flag == "-netdev" and key == "hostfwd":
                continue
            if not sep or key not in OPTION_KEYS[flag]:
                problems.append("%s %r: unexpected option %r" % (flag, value, part))
        if flag == "-drive":
            path = parts[0].partition("=")[2]
            if path != drives.pop(0):
                problems.append("-drive %r: file is %r" % (value, path))
        if flag == "-qmp":
            qmps.append(head)
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


def check_success(result):
    path = result["path"]
    assert os.path.dirname(path) == os.path.join(CONFIG, "vms"), path
    assert os.path.basename(path).endswith("-qemu.cfg")
    cfg, spec = load_cfg_file(path)
    assert dict(spec.cfg_items()) == result["cfg"]
    keys = [k for k, _v in cfg.items()]
    assert bash_values(path, keys) == [v for _k, v in cfg.items()]
    assert not os.path.exists(hs.CANARY)
    check_argv(spec, result)


@settings(max_examples=harness.examples(300))
@given(mutation=mutations, batch=st.booleans())
def test_vm_config_hostile(mutation, batch):
    key, value = mutation
    _fresh()
    item = dict(BASE)
    item[key] = value
    if key == "state" and value == "absent":
        item["name"] = "base1"
    if batch:
        if key == "qemu_binary":
            params = dict(DIRS, qemu_binary=value, vms=[dict(BASE)])
        else:
            params = dict(DIRS, vms=[dict(name="hv0", os="debian", nics=[dict(model="e1000")]), item])
    else:
        params = dict(DIRS, **item)
    before = harness.snapshot(hs.SANDBOX)
    out = harness.call(vm_config.main, params)
    after = harness.snapshot(hs.SANDBOX)
    # In a batch the refusal names the item's path ("vms[1].memory: ..."): that names memory, while
    # "vms" alone would let any item's error pass for this one's.
    problems = harness.judge("vm_config", out, [CONFIG, RUN], {key: value}, before, after)
    assert not problems, (params, out, problems)
    if out.kind == "ok":
        changed = harness.tree_diff(before, after)
        outside = [p for p in changed if p not in ("cfg", "run") and not p.startswith(("cfg/", "run/"))]
        assert not outside, outside
        # nothing lost: the VM that was there before is untouched unless this call named it
        if "base1" not in (str(item.get("name")), str(item.get("short_name"))):
            assert "cfg/vms/base1-qemu.cfg" not in changed, changed
            with open(os.path.join(CONFIG, "qemu-init.reg"), encoding="utf-8") as handle:
                assert any(line.split()[:2] == ["base1", "base1"] for line in handle), "base1 left the registry"
        for one in (out.result["vms"] if batch else [out.result]):
            if "path" in one and os.path.exists(one["path"]):
                check_success(one)
        again = harness.call(vm_config.main, params, check_mode=True)
        assert again.kind == "ok" and not again.result["changed"], again
        assert not os.path.exists(hs.CANARY)
