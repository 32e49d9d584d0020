# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a qemu-system binary says it supports (`-device help`)."""

from __future__ import annotations

import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError

_NAME_RE = re.compile(r'^name "([^"]+)"(?:.*?, alias "([^"]+)")?')
NETWORK_SECTION = "Network devices"

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


class QemuDevices:
    """The devices one qemu binary knows, asked once per module run."""

    def __init__(self, module: AnsibleModule, binary: str) -> None:
        self.module = module
        self.binary = binary
        self._sections: dict[str, set[str]] | None = None

    def network_models(self) -> set[str]:
        """The names and aliases of the network devices (NIC models) the binary lists."""
        if self._sections is None:
            rc, out, err = self.module.run_command([self.binary, "-device", "help"], environ_update={"LC_ALL": "C"})
            if rc != 0:
                raise QemuInitError("qemu_binary: asking %s for its devices (-device help) failed: %s" % (self.binary, (err or out).strip()),
                                    rc=rc, stderr=err)
            sections = parse_device_help(out)
            if not sections.get(NETWORK_SECTION):
                # e.g. /bin/true: exits 0 and lists nothing. Not a QEMU system emulator, whatever the NIC model.
                raise QemuInitError("qemu_binary: %s lists no network devices for -device help; is it a QEMU system emulator "
                                    "(qemu-system-ARCH)?" % self.binary)
            self._sections = sections
        return self._sections[NETWORK_SECTION]

    def check_nic_models(self, spec: VmSpec, param_of_index: t.Callable[[int], str]) -> None:
        """ParameterError (named by param_of_index(i)) for the first NIC whose model the binary lacks."""
        known = self.network_models()
        for i, nic in enumerate(spec.nics, start=1):
            if nic.model not in known:
                raise ParameterError(
                    param_of_index(i),
                    "%s has no network device %r; its NIC models are: %s" % (self.binary, nic.model, ", ".join(sorted(known)) or "none"),
                )
