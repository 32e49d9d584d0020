# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a qemu-system binary says it supports (`-device help`), and the cache of it.

Asking costs a QEMU start-up (~30 ms) on every call that writes a cfg with NICs. What a binary lists changes only
when the binary does, so the NIC models are kept per binary in <run_dir>/.qemu-devices.json, under the binary's
identity (device, inode, size, mtime and ctime of its real path), as libvirt keeps QEMU's capabilities: a new or
rebuilt binary is asked again. It is run-time data, not a VM's state: in run_dir (a tmpfs on most hosts), the first
such call after a boot asks QEMU again. (NIC models are built into QEMU, never in its loadable modules, so the modules are
not part of the identity.) The cache is a hint: unreadable, damaged or of another format, it is asked around and
rewritten. It is written only once the call's own changes are made (save(), never in check mode, never by a call
that failed), and not at all where the run directory cannot be written.

When the cache has no answer, prefetch() asks QEMU in a thread, so that its start-up overlaps the caller's reading and
planning (vm_config starts it for the first cfg that would change, and checks every model once its plan is made).
"""

from __future__ import annotations

import json
import os
import re
import threading
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import atomic_write, read_json

_NAME_RE = re.compile(r'^name "([^"]+)"(?:.*?, alias "([^"]+)")?')
NETWORK_SECTION = "Network devices"
DEVICE_CACHE = ".qemu-devices.json"  # in run_dir; not a VM name (those never start with a dot)
CACHE_FORMAT = 1

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

    from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import VmSpec


def parse_device_help(text: str) -> dict[str, set[str]]:
    """{section title: set of device names and aliases} from `qemu-system-* -device help`."""
    sections: dict[str, set[str]] = {}
    current = sections.setdefault("", set())
    for line in text.splitlines():
        match = _NAME_RE.match(line)
        if match:
            current.update(n for n in match.groups() if n)
        elif line.rstrip().endswith(":"):
            current = sections.setdefault(line.rstrip()[:-1], set())
    return sections


def binary_identity(binary: str) -> tuple[str, list[int]] | None:
    """(real path, [st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns]) of the binary, or None if it cannot be stat'ed."""
    try:
        path = os.path.realpath(binary)
        st = os.stat(path)
    except OSError:
        return None
    return path, [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class QemuDevices:
    """The devices one qemu binary knows, asked once per module run, or read from the cache in cache_dir."""

    def __init__(self, module: AnsibleModule, binary: str, cache_dir: str | None = None) -> None:
        self.module = module
        self.binary = binary
        self.cache_path = os.path.join(cache_dir, DEVICE_CACHE) if cache_dir else None
        self._network: set[str] | None = None
        self._unsaved: tuple[str, list[int]] | None = None  # the identity of a binary asked in this call
        self._asking: threading.Thread | None = None  # prefetch()'s question to QEMU, until network_models() joins it
        self._asked: set[str] | Exception | None = None  # its answer, or what it raised

    def prefetch(self) -> None:
        """Start finding the NIC models: from the cache at once, else by asking QEMU in a thread that
        network_models() waits for (and whose error it raises)."""
        if self._network is not None or self._asking is not None:
            return
        identity = binary_identity(self.binary) if self.cache_path else None
        self._network = self._cached(identity)
        if self._network is None:
            self._unsaved = identity
            self._asking = threading.Thread(target=self._ask_into, name="qemu-device-help", daemon=True)
            self._asking.start()

    def _ask_into(self) -> None:
        try:
            self._asked = self._ask()
        except Exception as exc:  # pylint: disable=broad-exception-caught  # raised again by network_models()
            self._asked = exc

    def network_models(self) -> set[str]:
        """The names and aliases of the network devices (NIC models) the binary lists."""
        self.prefetch()
        if self._asking is not None:
            self._asking.join()
            self._asking = None
            if isinstance(self._asked, Exception):
                self._unsaved = None
                raise self._asked
            self._network = self._asked
        return t.cast("set[str]", self._network)

    def _ask(self) -> set[str]:
        rc, out, err = self.module.run_command([self.binary, "-device", "help"], environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise QemuInitError("qemu_binary: asking %s for its devices (-device help) failed: %s" % (self.binary, (err or out).strip()),
                                rc=rc, stderr=err)
        network = parse_device_help(out).get(NETWORK_SECTION)
        if not network:
            # e.g. /bin/true: exits 0 and lists nothing. Not a QEMU system emulator, whatever the NIC model.
            raise QemuInitError("qemu_binary: %s lists no network devices for -device help; is it a QEMU system emulator "
                                "(qemu-system-ARCH)?" % self.binary)
        return network

    def _read_cache(self) -> dict[str, t.Any]:
        try:
            cache = read_json(t.cast(str, self.cache_path), "NIC model cache")  # a FIFO there must not block us
        except QemuInitError:  # not a regular file, not JSON: asked around, and replaced by save()
            return {}
        if not isinstance(cache, dict) or cache.get("format") != CACHE_FORMAT or not isinstance(cache.get("binaries"), dict):
            return {}
        return cache["binaries"]

    def _cached(self, identity: tuple[str, list[int]] | None) -> set[str] | None:
        if identity is None:
            return None
        entry = self._read_cache().get(identity[0])
        if not isinstance(entry, dict) or entry.get("identity") != identity[1]:
            return None
        network = entry.get("network")
        if not isinstance(network, list) or not network or not all(isinstance(n, str) for n in network):
            return None
        return set(network)

    def save(self) -> None:
        """Keep what QEMU was asked in this call in the cache, for the next calls (see the module's docstring)."""
        identity, self._unsaved = self._unsaved, None
        if identity is None or self._network is None:
            return
        binaries = self._read_cache()
        binaries[identity[0]] = dict(identity=identity[1], network=sorted(self._network))
        try:
            os.makedirs(os.path.dirname(t.cast(str, self.cache_path)), mode=0o755, exist_ok=True)
            atomic_write(t.cast(str, self.cache_path), json.dumps(dict(format=CACHE_FORMAT, binaries=binaries), indent=1, sort_keys=True) + "\n",
                         mode=0o644, durable=False)
        except (OSError, QemuInitError):
            pass  # a hint only: the next call asks QEMU again

    def check_nic_models(self, spec: VmSpec, param_of_index: t.Callable[[int], str]) -> None:
        """ParameterError (named by param_of_index(i)) for the first NIC whose model the binary lacks."""
        known = self.network_models()
        for i, nic in enumerate(spec.nics, start=1):
            if nic.model not in known:
                raise ParameterError(
                    param_of_index(i),
                    "%s has no network device %r; its NIC models are: %s" % (self.binary, nic.model, ", ".join(sorted(known)) or "none"),
                )
