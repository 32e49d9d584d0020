# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm, vm_info and monitor on hostile parameters, with real QEMU processes in a namespace of ours.

- test_vm_params / test_vm_info_names: hostile names, states, timeouts, binaries: a result or a clear
  failure, nothing written outside config_dir/run_dir, never a traceback.
- test_vm_lifecycle: VMs whose every value is legal but awkward (commas, quotes, '#', backslashes and
  unicode in paths, tap and bridge names; every NIC backend; VNC; the TCP monitor) are configured, started
  for real (paused with -S, so no guest code runs), checked from the process's side (QEMU has exactly those
  files open, QMP socket 0600 in a 0700 directory, every listening socket on loopback unless the VM asked
  for another address) and removed again, leaving nothing behind. Half of them boot the test guest's
  kernel and initrd copied to odd paths, with shell syntax in `append`; the test guest must be built
  (tools/test.sh hostile builds it first; without it these tests skip, and CI fails on that skip).
- test_kernel_initrd_append_reach_the_guest: one VM runs that kernel and initrd from odd paths, and the
  guest's kernel prints exactly the `append` given (`$(id)`, backquotes, quotes, commas, `;#`), as one
  argv item of QEMU, and the guest's /init (from that initrd) reports ready.
- test_monitor: hostile HMP and QMP commands against one running VM, which must still be running
  (same pid) after each.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import DEFAULT_BRIDGE
from ansible_collections.qemu_init.qemu.plugins.modules import monitor as monitor_module, vm as vm_module, vm_config, vm_info
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace"),
              pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64")]
CONFIG = os.path.join(hs.SANDBOX, "vmcfg")
RUN = os.path.join(hs.SANDBOX, "vmrun")
STATE = os.path.join(hs.SANDBOX, "vmstate")  # never the host's /var/lib/qemu-init
DIRS = dict(config_dir=CONFIG, run_dir=RUN, state_dir=STATE)
REPO = os.environ.get("QI_REPO") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST = os.environ.get("QI_GUEST_DIR") or os.path.join(REPO, ".cache", "guest")


def call(main, params, **kwargs):
    return harness.call(main, dict(DIRS, **params), **kwargs)


def stop_all(ns):
    """Stop and remove every VM of the test's config_dir (force; they are paused anyway)."""
    names = [n[:-len("-qemu.cfg")] for n in os.listdir(os.path.join(CONFIG, "vms"))] if os.path.isdir(os.path.join(CONFIG, "vms")) else []
    if names:
        out = call(vm_module.main, dict(name=names, state="absent", force=True, shutdown_timeout=0))
        assert out.kind == "ok", out


def base_vm(ns, name="base1", **extra):
    params = dict(name=name, os="debian", accel="tcg", memory=32, netns=ns, extra_args=["-S"], nics=[dict(backend="user")])
    params.update(extra)
    out = call(vm_config.main, params)
    assert out.kind == "ok", out
    return out.result


# --- hostile module parameters (few launches) -----------------------------------------------------

vm_names = st.one_of(hs.names, st.just("base1"), st.lists(st.one_of(hs.names, st.just("base1")), max_size=3), hs.wrong_types)


@settings(max_examples=harness.examples(55))
@given(params=st.fixed_dictionaries({"name": vm_names}, optional={
    "state": st.one_of(st.sampled_from(["present", "started", "stopped", "restarted", "absent"]), hs.hostile_text),
    "shutdown_timeout": hs.ints, "force": st.one_of(st.booleans(), hs.wrong_types),
    "restart_on_change": st.booleans(),
    "qemu_binary": st.one_of(st.sampled_from(["qemu-system-x86_64", "no-such-qemu", "sh -c id", "/dev/null", "", "."]),
                             hs.hostile_text).filter(hs.not_a_shell),
    # The real-OS options: waiting (base1 has no agent and no forward of port 22), and what absent removes.
    "wait_for": st.one_of(st.sampled_from(["none", "agent", "ssh", "serial", "SSH", ""]), hs.hostile_text, hs.wrong_types),
    "wait_timeout": hs.ints,
    "wait_pattern": st.one_of(st.sampled_from(["QI-READY", "(", "[", "a{2,1}", "(?P<x", "\\", "", ".*"]), hs.hostile_text, hs.wrong_types),
    "remove_disks": st.one_of(st.booleans(), hs.wrong_types),
}), agent=st.booleans())
def test_vm_params(netns, params, agent):
    stop_all(netns)
    base_vm(netns, guest_agent=agent)
    before = harness.snapshot(hs.SANDBOX)
    if params.get("state") not in ("started", "restarted", "stopped", "absent"):
        pass
    elif isinstance(params.get("shutdown_timeout"), int) and params["shutdown_timeout"] > 5:
        params["shutdown_timeout"] = 5  # a paused guest never powers off by itself: no reason to wait longer
    if isinstance(params.get("wait_timeout"), int) and params["wait_timeout"] > 0 and params.get("wait_for") in ("agent", "serial"):
        params["wait_timeout"] = 0  # a paused guest never gets ready either: one attempt
    out = call(vm_module.main, params)
    after = harness.snapshot(hs.SANDBOX)
    problems = harness.judge("vm", out, [CONFIG, RUN, STATE], params, before, after if out.kind == "fail" else before)
    if out.kind == "fail" and ("did not power off" in out.msg or "not ready within" in out.msg):
        # A timed-out stop or wait says so and names the VMs, which are left running (documented).
        problems = [p for p in problems if not p.startswith(("failed but changed", "failure message names"))]
        assert "base1" in out.msg, out
    assert not problems, (params, out, problems)
    stop_all(netns)


@settings(max_examples=harness.examples(60))
@given(name=st.one_of(st.none(), vm_names))
def test_vm_info_names(netns, name):
    if not os.path.isdir(os.path.join(CONFIG, "vms")):
        base_vm(netns)
    before = harness.snapshot(hs.SANDBOX)
    out = call(vm_info.main, {} if name is None else dict(name=name))
    after = harness.snapshot(hs.SANDBOX)
    problems = harness.judge("vm_info", out, [CONFIG, RUN, STATE], dict(name=name), before, after)
    assert before == after, harness.tree_diff(before, after)  # an info module changes nothing, ever
    assert not problems, (name, out, problems)


# --- real launches of awkward but legal VMs ---------------------------------------------------------

@pytest.fixture(scope="session")
def guest():
    """The test guest's kernel and initrd, copied to awkward names (commas, '=', a space, quotes, '#',
    unicode). Skips when the guest is not built: tools/test.sh hostile builds it before the tests, and
    a skip there fails CI (docs/testing.md)."""
    kernel, initrd = os.path.join(GUEST, "vmlinuz"), os.path.join(GUEST, "initrd.img")
    if not (os.path.exists(kernel) and os.path.exists(initrd)):
        pytest.skip("no test guest in %s (bash tools/build-guest.sh builds it)" % GUEST)
    os.makedirs(hs.FILES, exist_ok=True)
    names = (os.path.join(hs.FILES, "vm,linuz=raw \u2603"), os.path.join(hs.FILES, "init\"rd',,#.img"))
    for src, dst in zip((kernel, initrd), names):
        if not os.path.exists(dst):
            shutil.copyfile(src, dst)
    return names


def _disk(name):
    path = os.path.join(hs.FILES, name)
    os.makedirs(hs.FILES, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(1 << 20)
    return path


ok_ifnames = st.sampled_from(["a#b", "a\\", "'q", '"q', "x$y", "\u00e9\u00e9", "t,1", "t=1", "up", "dev-1", "x" * 15])
vm_name = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z").filter(lambda s: not s.endswith(".") and s != "base1")
port = st.integers(20000, 60000)
nic = st.one_of(
    st.fixed_dictionaries({"backend": st.just("tap")}, optional={"tap": ok_ifnames, "bridge": ok_ifnames, "mac": st.just("02:00:00:00:00:01")}),
    st.fixed_dictionaries({"backend": st.just("user")}, optional={"hostfwd": st.lists(st.builds(
        lambda h, p: "tcp:%s:%d-:22" % (h, p), st.sampled_from(["", "127.0.0.1"]), port), max_size=2, unique_by=lambda r: r.split(":")[2]),
        "restrict": st.booleans()}),
    st.builds(lambda h, p: {"backend": "socket", "listen": "%s:%d" % (h, p)}, st.sampled_from(["", "127.0.0.1", "localhost"]), port),
    st.builds(lambda h, p: {"backend": "stream", "listen": "%s:%d" % (h, p)}, st.sampled_from(["", "127.0.0.1", "[::1]"]), port),
    st.sampled_from([{"backend": "stream", "listen": "unix:" + os.path.join(hs.SANDBOX, "s,o\"ck#")}]),
    st.builds(lambda p: {"backend": "mcast", "mcast": "230.0.0.1:%d" % p, "localaddr": "127.0.0.1"}, port),
    st.builds(lambda p, q: {"backend": "dgram", "listen": "127.0.0.1:%d" % p, "connect": "127.0.0.1:%d" % q}, port, port),
)


def listeners(pid):
    """(proto, address, port) of every listening TCP socket and bound UDP socket of pid."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = "/proc/%d/net/%s" % (pid, table)
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if inode not in inodes or (table.startswith("tcp") and state != "0A"):
                    continue
                addr_hex, port_hex = local.split(":")
                raw = bytes.fromhex(addr_hex)
                if len(raw) == 4:
                    addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:
                    addr = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                found.append((table, addr, int(port_hex, 16)))
    return found


def loopback(addr):
    return addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")


@settings(max_examples=harness.examples(24))
@given(name=vm_name, nics=st.lists(nic, max_size=3), disks=st.lists(st.sampled_from(
    ["disk,with,commas.img", "disk with spaces.img", "d\u00efsk-\u2603.img", "disk=eq.img", "q\"uo'te#.img", "back\\slash.img"]),
    max_size=2, unique=True), vnc=st.booleans(), vnc_listen=st.sampled_from(["127.0.0.1", "::1"]), monitor_tcp=st.booleans(),
    kernel=st.booleans(), serial=st.booleans())
def test_vm_lifecycle(netns, guest, name, nics, disks, vnc, vnc_listen, monitor_tcp, kernel, serial):
    stop_all(netns)
    # the bridges earlier examples made stay (as documented); one named like this VM's tap would refuse it
    for link in _links(netns):
        if link != "lo":
            subprocess.run(["ip", "-n", netns, "link", "del", "dev", link], capture_output=True, check=False)
    # every port and unix path once per VM
    seen, unique = set(), []
    for n in nics:
        key = n.get("listen") or n.get("mcast") or n.get("backend")
        if key not in seen and not any(h in seen for h in n.get("hostfwd", [])):
            seen.add(key)
            seen.update(n.get("hostfwd", []))
            unique.append(n)
    nics = [dict(n, mac="02:00:00:00:00:%02x" % i) if "mac" in n else n for i, n in enumerate(unique, start=1)]
    taps = [n.get("tap") for n in nics if n["backend"] == "tap" and n.get("tap")]
    if len(set(taps)) != len(taps):
        nics = [n for n in nics if n["backend"] != "tap"]
    params = dict(name=name, os="debian", accel="tcg", memory=32, netns=netns, extra_args=["-S"], nics=nics,
                  disks=[dict(file=_disk(d), format="raw") for d in disks], vnc=vnc, vnc_listen=vnc_listen,
                  monitor_tcp=monitor_tcp)
    if kernel:
        params.update(kernel=guest[0], initrd=guest[1], append="console=ttyS0 qi.name=%s $(id) `id` ;#" % name)
    roots = [CONFIG, RUN]
    if serial:
        params["serial_log"] = os.path.join(hs.OUTSIDE, "ser ial,log", name + ".log")
        os.makedirs(os.path.dirname(params["serial_log"]), exist_ok=True)
        roots.append(os.path.dirname(params["serial_log"]))
    configured = call(vm_config.main, params)
    bridges = set(n.get("bridge") or DEFAULT_BRIDGE for n in nics if n["backend"] == "tap")
    if any(n.get("tap") and n["tap"] in bridges for n in nics if n["backend"] == "tap"):
        # A tap named like one of the VM's bridges: refused before anything is written, naming the tap.
        assert configured.kind == "fail" and "].tap: " in configured.msg and "a tap cannot be a bridge" in configured.msg, configured
        assert not os.path.exists(os.path.join(CONFIG, "vms", name + "-qemu.cfg"))
        return
    assert harness.judge("vm_config", configured, roots, params) == [] and configured.kind == "ok", configured
    links_before = _links(netns)
    started = call(vm_module.main, dict(name=name, state="started"))
    problems = harness.judge("vm", started, roots, dict(name=name))
    assert not problems and started.kind == "ok" and started.result["running"], (params, started, problems)
    try:
        pid = started.result["pid"]
        _check_process(pid, name, params, configured.result)
        info = call(vm_info.main, dict(name=name))
        assert harness.judge("vm_info", info, roots, dict(name=name)) == [] and info.result["vms"][0]["running"], info
        again = call(vm_module.main, dict(name=name, state="started"))
        assert again.kind == "ok" and not again.result["changed"] and not again.result["restart_required"], again
    finally:
        removed = call(vm_module.main, dict(name=name, state="absent", force=True, shutdown_timeout=0))
    assert harness.judge("vm", removed, roots, dict(name=name)) == [] and removed.kind == "ok", removed
    assert not os.path.exists(os.path.join(RUN, name)) and not os.path.exists(os.path.join(CONFIG, "vms", name + "-qemu.cfg"))
    left = set(_links(netns)) - set(links_before)
    assert not (left & set(taps)), left  # the taps it made are gone (bridges stay, as documented)
    assert not os.path.exists(hs.CANARY)


def _links(ns):
    out = subprocess.run(["ip", "-n", ns, "-json", "link", "show"], capture_output=True, text=True, check=True).stdout
    return [link["ifname"] for link in json.loads(out, strict=False)]


def _check_process(pid, name, params, configured):
    # QEMU opened exactly the files the VM names, however odd their names (escaping reached QEMU intact).
    opened = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            opened.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    for disk in params["disks"]:
        assert os.path.realpath(disk["file"]) in opened, (disk["file"], opened)
    serial = params.get("serial_log") or os.path.join(RUN, name, "serial.log")
    assert os.path.realpath(serial) in opened, (serial, opened)
    assert stat.S_IMODE(os.stat(serial).st_mode) == 0o600, oct(os.stat(serial).st_mode)  # the console may show secrets
    for sock in ("qmp.sock", "observe.sock"):  # lifecycle and observer monitors
        assert stat.S_IMODE(os.stat(os.path.join(RUN, name, sock)).st_mode) == 0o600, sock
    assert stat.S_IMODE(os.stat(os.path.join(RUN, name)).st_mode) == 0o700
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        argv = handle.read().split(b"\0")[:-1]
    if "kernel" in params:
        # each one argv item, right after its option, passed through untouched
        for option in ("kernel", "initrd", "append"):
            assert argv[argv.index(b"-" + option.encode()) + 1] == params[option].encode(), (option, argv)
    else:
        assert not set(argv) & {b"-kernel", b"-initrd", b"-append"}, argv
    # Listening sockets: loopback, unless the VM asked for every address (an empty listen host is
    # loopback by the collection's rule; nothing here asks for more).
    # An mcast NIC binds its group address; it joins the group on localaddr's interface (here lo).
    groups = set(n["mcast"].rsplit(":", 1)[0] for n in params["nics"] if n["backend"] == "mcast")
    for proto, addr, port in listeners(pid):
        assert loopback(addr) or (proto == "udp" and addr in groups), (proto, addr, port, params)
    tcp_ports = set(p for proto, _a, p in listeners(pid) if proto.startswith("tcp"))
    assert (configured["monitor_port"] in tcp_ports) == bool(params["monitor_tcp"]), (tcp_ports, configured)
    assert (configured["vnc_port"] in tcp_ports) == bool(params["vnc"]), (tcp_ports, configured)


APPEND = "console=ttyS0 panic=-1 qi.name=k1 $(id) `id` ;# a,,b 'q' \"d\" \\x {{ x }} %s" % hs.CANARY


def test_kernel_initrd_append_reach_the_guest(netns, guest):
    """Not paused: the guest boots from the odd paths and its kernel prints the command line it got."""
    stop_all(netns)
    params = dict(name="k1", os="debian", accel="tcg", memory=128, netns=netns, nics=[], kernel=guest[0],
                  initrd=guest[1], append=APPEND)
    configured = call(vm_config.main, params)
    assert harness.judge("vm_config", configured, [CONFIG, RUN], params) == [] and configured.kind == "ok", configured
    started = call(vm_module.main, dict(name="k1", state="started"))
    assert started.kind == "ok" and started.result["running"], started
    try:
        with open("/proc/%d/cmdline" % started.result["pid"], "rb") as handle:
            argv = handle.read().split(b"\0")[:-1]
        for option in ("kernel", "initrd", "append"):
            assert argv[argv.index(b"-" + option.encode()) + 1] == params[option].encode(), (option, argv)
        serial = os.path.join(RUN, "k1", "serial.log")
        lines, deadline = [], time.monotonic() + 120  # TCG on a busy 2-core machine: ~5-8 s usually
        while time.monotonic() < deadline and "QI-READY k1" not in lines:
            time.sleep(0.2)
            with open(serial, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").replace("\r", "").split("\n")
        got = [line.split("Kernel command line: ", 1)[1] for line in lines if "Kernel command line: " in line]
        assert got == [APPEND], (got, lines[-20:])
        assert "QI-READY k1" in lines, lines[-20:]  # the initrd's /init ran and read qi.name from the cmdline
        assert not os.path.exists(hs.CANARY)
    finally:
        removed = call(vm_module.main, dict(name="k1", state="absent", force=True, shutdown_timeout=0))
    assert removed.kind == "ok", removed


# --- monitor ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running_vm(netns):
    stop_all(netns)
    base_vm(netns, name="mon1")
    out = call(vm_module.main, dict(name="mon1", state="started"))
    assert out.kind == "ok" and out.result["running"], out
    yield out.result["pid"]
    stop_all(netns)


hmp = st.one_of(st.builds(lambda s: "info " + s, hs.hostile_text), st.sampled_from(
    ["info status", "info name", "info network\nquit", "info status; quit", "info status\0quit", "i status", "info", "",
     "help info", "info \u2603", "info " + "x" * 5000]))
qmp_names = st.one_of(st.builds(lambda s: "query-" + s, hs.hostile_text), st.sampled_from(
    ["query-status", "query-name", "query-status\nquit", "query-commands", "qmp_capabilities", "query-"]))
qmp_args = st.one_of(st.none(), st.dictionaries(hs.hostile_text, st.one_of(hs.hostile_text, st.integers(), st.booleans(),
                                                                           st.lists(st.integers(), max_size=2)), max_size=3))


@settings(max_examples=harness.examples(100))
@given(params=st.one_of(
    st.fixed_dictionaries({"name": st.just("mon1"), "command": hmp}),
    st.fixed_dictionaries({"name": st.just("mon1"), "qmp": qmp_names}, optional={"arguments": qmp_args}),
    st.fixed_dictionaries({"name": st.one_of(hs.names, hs.wrong_types)}, optional={"command": hmp, "qmp": qmp_names}),
    # anything at all in check mode: only read-only commands are sent there
    st.fixed_dictionaries({"name": st.just("mon1"), "command": hs.hostile_text}),
    st.fixed_dictionaries({"name": st.just("mon1"), "qmp": hs.hostile_text}, optional={"arguments": qmp_args}),
), check=st.booleans())
def test_monitor(running_vm, params, check):
    check = check or not (str(params.get("command", "")).startswith("info ") or str(params.get("qmp", "")).startswith("query-"))
    before = harness.snapshot(hs.SANDBOX)
    out = call(monitor_module.main, params, check_mode=check)
    after = harness.snapshot(hs.SANDBOX)
    problems = harness.judge("monitor", out, [CONFIG, RUN], params, before, after, also=("command", "qmp"))
    if out.kind == "fail" and ("failed on VM mon1" in out.msg or "is not running" in out.msg):
        problems = [p for p in problems if not p.startswith("failure message names")]  # QEMU's own refusal, quoted
    assert not problems, (params, out, problems)
    state = call(vm_info.main, dict(name="mon1")).result["vms"][0]
    assert state["running"] and state["pid"] == running_vm, (params, out, state)
