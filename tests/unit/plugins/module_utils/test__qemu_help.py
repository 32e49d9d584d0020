# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of _qemu_help: parsing `-device help`, the binary's identity, and QemuDevices asking QEMU at most once per
call, in a thread (prefetch), with its cache in the run dir. run_command is the only fake: it answers with QEMU
7.2's real output and records the thread it was called from. The modules' side (when vm_config asks, what a bad
model does to a call) is in tests/unit/plugins/modules/test_vm_config.py."""

from __future__ import annotations

import json
import os
import threading

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_text
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_help import (
    DEVICE_CACHE,
    NETWORK_SECTION,
    QemuDevices,
    binary_identity,
    parse_device_help,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "qemu-7.2-device-help.txt")
DEVICE_HELP = read_text(FIXTURE, "fixture")


class Module:
    """What QemuDevices uses of AnsibleModule: run_command, answering -device help with `answer` (rc, out, err)."""

    def __init__(self, answer=(0, DEVICE_HELP, ""), gate=None):
        self.answer = answer
        self.gate = gate  # an Event the command waits for: the caller's thread is seen going on meanwhile
        self.calls = []

    def run_command(self, argv, **kwargs):
        self.calls.append((list(argv), kwargs.get("environ_update"), threading.current_thread().name))
        if self.gate is not None:
            assert self.gate.wait(10)
        return self.answer


@pytest.fixture
def binary(tmp_path):
    path = tmp_path / "qemu-system-x86_64"  # never run (run_command is faked): the cache keys on its identity
    path.write_text("#!/bin/sh\n")
    return str(path)


def spec(*models):
    return from_params(dict(name="h1", nics=[dict(model=m) for m in models]))


def test_the_sections_and_aliases_of_qemu_7_2():
    sections = parse_device_help(DEVICE_HELP)
    network = sections[NETWORK_SECTION]
    assert {"e1000", "e1000-82540em", "virtio-net-pci", "rtl8139"} <= network  # names and aliases
    assert "virtio-blk-pci" not in network and "virtio-blk-pci" in sections["Storage devices"]
    assert "Controller/Bridge/Hub devices" in sections


def test_text_before_any_section_and_lines_that_are_neither():
    text = 'name "orphan"\nsomething else\nNetwork devices:\nname "n1", bus PCI\n  desc only\n'
    assert parse_device_help(text) == {"": {"orphan"}, NETWORK_SECTION: {"n1"}}


def test_identity_follows_the_real_path_and_changes_with_the_file(binary, tmp_path):
    link = tmp_path / "qemu-link"
    link.symlink_to(binary)
    path, key = binary_identity(str(link))
    assert path == binary and key[1] == os.stat(binary).st_ino
    with open(binary, "a") as handle:
        handle.write("# rebuilt\n")
    assert binary_identity(binary)[1] != key
    assert binary_identity(str(tmp_path / "missing")) is None


def test_prefetch_asks_in_a_thread_that_network_models_waits_for(binary, tmp_path):
    gate = threading.Event()
    module = Module(gate=gate)
    devices = QemuDevices(module, binary, str(tmp_path / "run"))
    devices.prefetch()
    devices.prefetch()  # once per call, however many VMs want it
    assert len(module.calls) <= 1  # the thread may not have reached run_command yet: it waits on the gate there
    gate.set()
    assert "virtio-net-pci" in devices.network_models()
    assert module.calls == [([binary, "-device", "help"], {"LC_ALL": "C"}, "qemu-device-help")]
    devices.check_nic_models(spec("e1000", "virtio-net-pci"), "nics[{}].model".format)
    with pytest.raises(ParameterError) as exc:
        devices.check_nic_models(spec("e1000", "no-such-nic"), lambda i: "nics[%d].model" % (i - 1))
    assert exc.value.param == "nics[1].model" and "no network device 'no-such-nic'" in exc.value.problem
    assert len(module.calls) == 1


def test_what_the_thread_raised_is_raised_by_network_models_and_nothing_is_cached(binary, tmp_path):
    devices = QemuDevices(Module(answer=(1, "", "qemu: could not load a module\n")), binary, str(tmp_path / "run"))
    devices.prefetch()
    with pytest.raises(QemuInitError) as exc:
        devices.network_models()
    assert exc.value.msg.startswith("qemu_binary: asking %s for its devices (-device help) failed: qemu: could not" % binary)
    devices.save()
    assert not os.path.exists(tmp_path / "run" / DEVICE_CACHE)


def test_a_cache_hit_starts_no_thread_and_a_new_call_reads_what_save_kept(binary, tmp_path):
    run_dir = str(tmp_path / "run")
    first = QemuDevices(Module(), binary, run_dir)
    first.network_models()
    first.save()
    cache = json.loads(read_text(os.path.join(run_dir, DEVICE_CACHE), "cache"))
    assert cache["format"] == 1 and "e1000" in cache["binaries"][binary]["network"]
    module = Module(answer=(1, "", "must not be asked"))
    second = QemuDevices(module, binary, run_dir)
    before = threading.active_count()
    second.prefetch()
    assert threading.active_count() == before and module.calls == []
    assert second.network_models() == first.network_models()


def test_without_a_run_dir_qemu_is_asked_and_nothing_is_written(binary, tmp_path):
    module = Module()
    devices = QemuDevices(module, binary, None)
    assert "e1000" in devices.network_models()
    devices.save()
    assert len(module.calls) == 1 and os.listdir(tmp_path) == ["qemu-system-x86_64"]
