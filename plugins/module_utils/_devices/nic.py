# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A NIC in general: model, MAC, the NICx cfg keys, the -netdev/-device pair, and the registry of backends.

What a backend's own fields mean is in its nic_<backend>.py; this file only routes to it.
"""

from __future__ import annotations

import re

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import (
    DEFAULT_NIC_BACKEND,
    DEFAULT_NIC_MODEL,
    OPTIONAL_FIELDS,
    NicBackend,
    NicSpec,
    netdev_id,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_dgram import DgramNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_hubport import HubportNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_mcast import McastNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_socket import SocketNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_stream import StreamNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_tap import TapNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_user import UserNic
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import normalize_mac

# One line per backend; the order is the documented order of the choices.
BACKENDS: dict[str, NicBackend] = {backend.name: backend for backend in (
    TapNic(),
    SocketNic(),
    McastNic(),
    HubportNic(),
    UserNic(),
    StreamNic(),
    DgramNic(),
)}
CFG_KEY_PATTERN = r"NIC\d+(_(BACKEND|MAC|%s))?" % "|".join(f.upper() for f in OPTIONAL_FIELDS)
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def backend_of(nic: NicSpec) -> NicBackend:
    return BACKENDS[nic.backend]


def build(n, i, where):
    """A NicSpec from a nics[] item (params or cfg, already typed); where(field) names a field of it."""
    backend_name = n.get("backend") or DEFAULT_NIC_BACKEND
    if backend_name not in BACKENDS:
        raise ParameterError(where("backend"), "%r is not one of %s" % (backend_name, ", ".join(BACKENDS)))
    backend = BACKENDS[backend_name]
    model = n.get("model") or DEFAULT_NIC_MODEL
    if not _MODEL_RE.match(model):
        raise ParameterError(where("model"), "%r is not a QEMU device name" % (model,))
    nic = NicSpec(model=model, backend=backend_name)
    for fname in OPTIONAL_FIELDS:
        value = n.get(fname)
        # restrict: false is the default, so it is no mistake on any backend (`hub: 0` is a value).
        if value is None or value is False or value in ("", []):
            continue
        if fname not in backend.fields:
            raise ParameterError(where(fname), "is not used by backend %s (it uses: %s)" % (backend_name, ", ".join(backend.fields)))
        setattr(nic, fname, value)
    backend.validate(nic, where)
    if n.get("mac"):
        nic.mac = normalize_mac(n["mac"], where("mac"))
    return nic


def from_cfg(d, i, model, opt, to_int, to_bool, where):
    """The nics[] item NIC<i> of a cfg dict describes (typed as parameters are)."""
    nic = dict(model=model, backend=opt("NIC%d_BACKEND" % i) or DEFAULT_NIC_BACKEND, mac=opt("NIC%d_MAC" % i))
    for fname in OPTIONAL_FIELDS:
        nic[fname] = opt("NIC%d_%s" % (i, fname.upper()))
    nic["hub"] = to_int(nic["hub"], where("hub"))
    nic["hostfwd"] = (nic["hostfwd"] or "").split()
    nic["restrict"] = to_bool(nic["restrict"], where("restrict"))
    return nic


def cfg_items(nic: NicSpec, i: int):
    items = [("NIC%d" % i, nic.model)]
    if nic.backend != DEFAULT_NIC_BACKEND:
        items.append(("NIC%d_BACKEND" % i, nic.backend))
    for fname in ("bridge", "tap", "listen", "connect", "mcast", "localaddr", "hub"):
        value = getattr(nic, fname)
        if value is not None:
            items.append(("NIC%d_%s" % (i, fname.upper()), str(value)))
    if nic.hostfwd:
        items.append(("NIC%d_HOSTFWD" % i, " ".join(nic.hostfwd)))
    if nic.restrict:
        items.append(("NIC%d_RESTRICT" % i, "yes"))
    if nic.mac:
        items.append(("NIC%d_MAC" % i, nic.mac))
    return items


def argv(nic: NicSpec, i: int, tap: str | None, mac: str):
    return ["-netdev", backend_of(nic).netdev(nic, i, tap),
            "-device", "%s,netdev=%s,mac=%s" % (nic.model, netdev_id(i), mac)]


def describe(nic: NicSpec, i: int, mac: str, tap: str | None, bridge: str | None):
    """NIC i as the modules report it."""
    return dict(
        index=i,
        netdev=netdev_id(i),
        model=nic.model,
        backend=nic.backend,
        mac=mac,
        mac_source="explicit" if nic.mac else "derived",
        tap=tap,
        bridge=bridge,
        # The backend's own settings; null (hostfwd: []) where the backend has none.
        listen=nic.listen,
        connect=nic.connect,
        mcast=nic.mcast,
        localaddr=nic.localaddr,
        hub=nic.hub,
        hostfwd=list(nic.hostfwd),
        restrict=nic.restrict if nic.backend == "user" else None,
    )
