# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile file system states where the modules read their files (issue 16, item 4).

One VM runs (hf1, paused with -S) and one is only configured (hf2). Each example puts one state (a directory, a
FIFO, a dangling link, a link loop, a unix socket, /dev/null, a link to /proc/self/mem whose offset 0 reads as EIO,
a file too large to be ours, bytes that are not UTF-8) at one of their files (cfg file, registry, monitor.conf,
pidfile, launch record, record of the taps made) and runs vm, vm_info, vm_config or monitor on them. The outcome:
never a traceback, never a hang (an alarm ends an example after 30 s), a failure names the file and changes
nothing, and once the file is put back hf1 is still the same running QEMU.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.modules import monitor as monitor_module, vm as vm_module, vm_config, vm_info
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace"),
              pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64")]
CONFIG = os.path.join(hs.SANDBOX, "fscfg")
RUN = os.path.join(hs.SANDBOX, "fsrun")
DIRS = dict(config_dir=CONFIG, run_dir=RUN)
HUGE = 8 * 1024 * 1024 + 1  # more than _files.MAX_BYTES


def _vm_params(netns, name):
    return dict(DIRS, name=name, os="debian", accel="tcg", memory=32, netns=netns, extra_args=["-S"],
                nics=[dict(backend="user")])


FILES = {
    "cfg:hf1": os.path.join(CONFIG, "vms", "hf1-qemu.cfg"),
    "cfg:hf2": os.path.join(CONFIG, "vms", "hf2-qemu.cfg"),
    "registry": os.path.join(CONFIG, "qemu-init.reg"),
    "monitor.conf": os.path.join(CONFIG, "monitor.conf"),
    "pidfile:hf1": os.path.join(RUN, "hf1", "qemu.pid"),
    "launch:hf1": os.path.join(RUN, "hf1", "launch.json"),
    "links:hf1": os.path.join(RUN, "hf1", "links.json"),
}


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def put_state(path, state):
    _remove(path)
    if state == "directory":
        os.mkdir(path)
    elif state == "fifo":
        os.mkfifo(path)
    elif state == "dangling":
        os.symlink(path + ".gone", path)
    elif state == "loop":
        os.symlink(os.path.basename(path), path)
    elif state == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.close()
    elif state == "devnull":
        os.symlink("/dev/null", path)
    elif state == "eio":
        os.symlink("/proc/self/mem", path)
    elif state == "huge":
        with open(path, "wb") as handle:
            handle.truncate(HUGE)
    elif state == "not_utf8":
        with open(path, "wb") as handle:
            handle.write(b'NAME="hf1"\n\xff\xfe\x00\n')


def restore(path, content):
    _remove(path)
    if content is not None:
        with open(path, "wb") as handle:
            handle.write(content)


@pytest.fixture(scope="module")
def vms(netns):
    for name in ("hf1", "hf2"):
        out = harness.call(vm_config.main, _vm_params(netns, name))
        assert out.kind == "ok", out
    out = harness.call(vm_module.main, dict(DIRS, name="hf1", state="started"))
    assert out.kind == "ok" and out.result["running"], out
    originals = {}
    for key, path in FILES.items():
        if os.path.exists(path):
            with open(path, "rb") as handle:
                originals[key] = handle.read()
        else:
            originals[key] = None
    yield netns, out.result["pid"], originals
    out = harness.call(vm_module.main, dict(DIRS, name=["hf1", "hf2"], state="absent", force=True, shutdown_timeout=0))
    assert out.kind == "ok", out


class Hung(Exception):
    pass


def _hung(_signum, _frame):
    raise Hung("the module blocked for 30 s")


# (module name, main, params for the VM the damaged file belongs to). vm stopped/restarted/absent on hf1 are left
# out: they would stop the VM the other examples need (their reads are the same as vm started's).
def calls(netns, vm):
    out = [
        ("vm", vm_module.main, dict(DIRS, name=vm, state="present")),
        ("vm", vm_module.main, dict(DIRS, name=vm, state="started")),
        ("vm_info", vm_info.main, dict(DIRS, name=vm)),
        ("vm_info", vm_info.main, dict(DIRS)),
        ("vm_config", vm_config.main, _vm_params(netns, vm)),
        ("monitor", monitor_module.main, dict(DIRS, name="hf1", command="info status")),
    ]
    if vm == "hf2":
        out.append(("vm_config", vm_config.main, dict(DIRS, name=vm, state="absent")))
        out.append(("vm", vm_module.main, dict(DIRS, name=vm, state="stopped")))
    return out


STATES = ["directory", "fifo", "dangling", "loop", "socket", "devnull", "eio", "huge", "not_utf8"]
# A pidfile holding text that is no pid means "not running" by design (tests/integration/targets/faults_files):
# for the pidfile only the states that are no readable file are hostile here.
PIDFILE_STATES = ["directory", "fifo", "dangling", "loop", "socket", "devnull", "eio", "huge"]


@settings(max_examples=harness.examples(200))
@given(data=st.data(), key=st.sampled_from(sorted(FILES)))
def test_file_states(vms, data, key):
    netns, pid, originals = vms
    path = FILES[key]
    state = data.draw(st.sampled_from(PIDFILE_STATES if key.startswith("pidfile") else STATES), label="state")
    vm = "hf2" if key == "cfg:hf2" else "hf1" if ":" in key else data.draw(st.sampled_from(["hf1", "hf2"]), label="vm")
    module, main, params = data.draw(st.sampled_from(calls(netns, vm)), label="call")
    put_state(path, state)
    try:
        before = harness.snapshot(hs.SANDBOX)
        previous = signal.signal(signal.SIGALRM, _hung)
        signal.alarm(30)
        try:
            out = harness.call(main, params)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        after = harness.snapshot(hs.SANDBOX)
        # The message must name the damaged file (the parameter oracle does not apply: no parameter is wrong).
        problems = harness.judge("%s (file states)" % module, out, [CONFIG, RUN], {}, before, after)
        if out.kind == "fail" and path not in out.msg:
            problems.append("failure message does not name %s: %r" % (path, out.msg))
        if out.kind == "fail" and ("Errno" in out.msg or "Traceback" in out.msg):
            problems.append("failure message carries a raw OS error: %r" % out.msg)
        assert not problems, (key, state, module, params, out, problems)
    finally:
        restore(path, originals[key])
    state_now = harness.call(vm_info.main, dict(DIRS, name="hf1"))
    assert state_now.kind == "ok" and state_now.result["vms"][0]["running"] and state_now.result["vms"][0]["pid"] == pid, state_now
