# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry: short name <-> long name, each VM's slot and MACs; and the one place ports are decided.

File `<config_dir>/qemu-init.reg`, one VM a line: `SHORT NAME SLOT [MAC,MAC,...]`, `#` comments.
Changes happen under an exclusive fcntl lock on a separate lock file (the registry itself is
replaced by rename, which a lock on it would not survive) and are written atomically: a temp
file in the same directory, fsync, rename, fsync of the directory. A crash mid-write leaves the
old registry or the new one, never half of one.

Ports: VM in slot s gets MONPORT = base + s, CTLPORT = base + s + 100 and VNC display s
(TCP 5900 + s). A slot is handed out only when none of its three ports is used by another VM's
slot or listened on by another program.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgError, CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError

# atomic_write lives in _files, next to the reader; the modules that save the registry also take it from here.
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import FileReadError, atomic_write, read_text
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import normalize_mac
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_short_name, check_vm_name

REGISTRY_FILE = "qemu-init.reg"
LOCK_FILE = ".qemu-init.reg.lock"
MONITOR_CONF = "monitor.conf"
DEFAULT_MONITOR_BASE = 30320
CONTROL_OFFSET = 100
VNC_BASE = 5900
MAX_PORT = 65535

if t.TYPE_CHECKING:
    import collections.abc


class RegistryError(QemuInitError):
    pass


class Entry:
    __slots__ = ("short_name", "name", "slot", "macs")

    def __init__(self, short_name: str, name: str, slot: int, macs: t.Iterable[str] = ()) -> None:
        self.short_name = short_name
        self.name = name
        self.slot = slot
        self.macs = list(macs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self.as_tuple() == other.as_tuple()

    def as_tuple(self) -> tuple[str, str, int, tuple[str, ...]]:
        return (self.short_name, self.name, self.slot, tuple(self.macs))

    def __repr__(self) -> str:
        return "Entry(%r, %r, %r, %r)" % self.as_tuple()


def slot_ports(base: int, slot: int) -> tuple[int, int, int]:
    """The TCP ports a slot occupies: monitor, control and VNC."""
    return (base + slot, base + slot + CONTROL_OFFSET, VNC_BASE + slot)


def ports_info(base: int, slot: int) -> dict[str, int]:
    """The slot and its ports as the modules return them (and _qemu.build_argv takes them)."""
    monitor, control, vnc = slot_ports(base, slot)
    return dict(slot=slot, monitor_port=monitor, control_port=control, vnc_display=slot, vnc_port=vnc)


def default_short_name(name: str) -> str:
    """A VM's short name when none is given: the name itself when it fits the short-name rules,
    else up to 5 of its characters and 4 hex digits of its hash (stable, and distinct in practice)."""
    try:
        return check_short_name(name)
    except ParameterError:
        pass
    stem = re.sub(r"[^a-z0-9_-]", "", name.lower())[:5]
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:4]
    return (stem + digest) if stem else ("vm" + digest)


def read_monitor_base(config_dir: str) -> int:
    """Base monitor port from monitor.conf (`MONPORT="30320"`, or a bare number); default 30320."""
    path = os.path.join(config_dir, MONITOR_CONF)
    text = read_text(path, "monitor base port file", hint='make it a file holding MONPORT="<port>", or remove it for the '
                     "default %d (docs/macs-and-ports.md)" % DEFAULT_MONITOR_BASE)
    if text is None:
        return DEFAULT_MONITOR_BASE
    value = None
    bare = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if len(bare) == 1 and bare[0].isdigit():
        value = bare[0]
    else:
        try:
            value = CfgFile.parse(text, path).get("MONPORT")
        except CfgError as exc:
            raise RegistryError("cannot read the monitor base port: %s" % exc.msg) from exc
        if value is None:
            raise RegistryError('%s: no MONPORT="<port>" line' % path)
    if not value.isdigit() or not 1024 <= int(value) <= MAX_PORT - CONTROL_OFFSET - 1:
        raise RegistryError("%s: monitor base port %r must be a number from 1024 to %d" % (path, value, MAX_PORT - CONTROL_OFFSET - 1))
    return int(value)


class RegistryState:
    """The registry's content, as read under the lock (or without one, read-only)."""

    def __init__(self, path: str, base: int, entries: t.Iterable[Entry]) -> None:
        self.path = path
        self.base = base
        # Indexes, so that a batch of n VMs is planned in O(n): names, short names, MACs and the ports in use.
        self._by_name: dict[str, Entry] = {}       # in insertion order
        self._by_short: dict[str, Entry] = {}
        self._mac_users: dict[str, list[str]] = {}  # MAC -> names
        self._port_users: dict[int, int] = {}      # port -> number of entries whose slot uses it
        # (listening ports, slot below which free_slot found none free)
        self._scan: tuple[frozenset[int] | None, int] = (None, 0)
        for entry in entries:
            self._index(entry)

    # --- reading ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, path: str, text: str, base: int) -> RegistryState:
        """Read registry text; RegistryError names path:line of a damaged line."""
        entries = []
        # key -> line number, one table per unique column
        by_name: dict[object, int] = {}
        by_short: dict[object, int] = {}
        by_slot: dict[object, int] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = "%s:%d" % (path, number)
            fields = line.split()
            if len(fields) not in (3, 4) or not fields[2].isdigit():
                raise RegistryError(
                    "%s: expected 'SHORT_NAME NAME SLOT [MACS]', got %r; the registry is damaged: restore it from a "
                    "backup or see docs/registry.md (recovery)" % (where, raw)
                )
            try:
                short, name = check_short_name(fields[0], "short name"), check_vm_name(fields[1], "name")
                macs = [normalize_mac(m, "mac") for m in fields[3].split(",")] if len(fields) == 4 else []
            except ParameterError as exc:
                raise RegistryError("%s: %s; the registry is damaged: see docs/registry.md (recovery)" % (where, exc.msg)) from exc
            slot = int(fields[2])
            for table, key, what in ((by_name, name, "name"), (by_short, short, "short name"), (by_slot, slot, "slot")):
                if key in table:
                    raise RegistryError("%s: %s %s is registered twice (also on line %d); the registry is damaged: see "
                                        "docs/registry.md (recovery)" % (where, what, key, table[key]))
                table[key] = number
            entries.append(Entry(short, name, slot, macs))
        return cls(path, base, entries)

    def entries(self) -> list[Entry]:
        return list(self._by_name.values())

    def get(self, name: str) -> Entry | None:
        return self._by_name.get(name)

    def resolve(self, name_or_short: str) -> Entry | None:
        """The entry whose long name, else whose short name, is the given one; None if unknown."""
        return self._by_name.get(name_or_short) or self._by_short.get(name_or_short)

    def render(self) -> str:
        lines = ["# qemu-init registry, managed by qemu_init.qemu: SHORT_NAME NAME SLOT MACS"]
        for e in sorted(self._by_name.values(), key=lambda e: e.slot):
            lines.append(" ".join([e.short_name, e.name, str(e.slot)] + ([",".join(e.macs)] if e.macs else [])))
        return "\n".join(lines) + "\n"

    # --- deciding --------------------------------------------------------------------------
    def free_slot(self, listening: t.Iterable[int] = (), exclude_name: str | None = None) -> int:
        """Lowest slot whose monitor, control and VNC ports are used by no other VM and not listened on."""
        listening = frozenset(listening)
        excluded = self._by_name.get(exclude_name) if exclude_name is not None else None
        own = set(slot_ports(self.base, excluded.slot)) if excluded else set()

        def busy(port: int) -> bool:
            users = self._port_users.get(port, 0) - (1 if port in own else 0)
            return users > 0 or port in listening

        # Slots below the last one handed out for the same listening ports are still taken (only remove()
        # frees one, and it resets this): a batch of n new VMs scans n slots in all, not n * n.
        slot = self._scan[1] if self._scan[0] == listening and excluded is None else 0
        while self.base + slot + CONTROL_OFFSET <= MAX_PORT and VNC_BASE + slot <= MAX_PORT:
            if not any(busy(port) for port in slot_ports(self.base, slot)):
                if excluded is None:
                    self._scan = (listening, slot)
                return slot
            slot += 1
        raise RegistryError(
            "no free slot left: every monitor port from %d (monitor.conf) up to %d is taken by %d registered VMs or "
            "other programs; remove VMs or lower the base port" % (self.base, MAX_PORT - CONTROL_OFFSET, len(self._by_name))
        )

    def mac_clashes(self, name: str, macs: t.Collection[str]) -> list[tuple[str, str]]:
        """[(mac, other_vm)] for each of `macs` another registered VM already uses."""
        if not any(user != name for mac in macs for user in self._mac_users.get(mac, ())):
            return []
        clashes = []  # in registry order (by slot, as the file lists them), whatever order entries were put in
        for e in sorted(self._by_name.values(), key=lambda e: e.slot):
            if e.name == name:
                continue
            for mac in macs:
                if mac in e.macs:
                    clashes.append((mac, e.name))
        return clashes

    def plan_register(self, name: str, short_name: str | None, macs: list[str], listening: t.Iterable[int] = ()) -> Entry:
        """The entry `name` should have: its slot kept if it has one, else the lowest free one.

        Raises on a short name owned by another VM and on MACs another VM uses.
        """
        current = self.get(name)
        short_name = short_name or (current.short_name if current else default_short_name(name))
        for e, what in ((self._by_short.get(short_name), "short name"), (self._by_name.get(short_name), "name")):
            if e is not None and e.name != name:
                raise ParameterError("short_name", "%s is already the %s of VM %s" % (short_name, what, e.name))
        e = self._by_short.get(name)
        if e is not None and e.name != name:
            raise ParameterError("name", "%s is already the short name of VM %s" % (name, e.name))
        clashes = self.mac_clashes(name, macs)
        if clashes:
            raise ParameterError("nics", "; ".join("MAC %s of VM %s is already used by VM %s" % (mac, name, other) for mac, other in clashes))
        slot = current.slot if current else self.free_slot(listening)
        return Entry(short_name, name, slot, macs)

    def put(self, entry: Entry) -> None:
        """Add or replace the entry of entry.name."""
        self.remove(entry.name)
        self._index(entry)

    def remove(self, name: str) -> bool:
        """Forget VM `name`; False when it was not registered."""
        entry = self._by_name.pop(name, None)
        if entry is None:
            return False
        if self._by_short.get(entry.short_name) is entry:
            del self._by_short[entry.short_name]
        for mac in entry.macs:
            users = self._mac_users[mac]
            users.remove(name)
            if not users:
                del self._mac_users[mac]
        for port in slot_ports(self.base, entry.slot):
            self._port_users[port] -= 1
        self._scan = (None, 0)  # a slot may be free again
        return True

    def _index(self, entry: Entry) -> None:
        self._by_name[entry.name] = entry
        self._by_short[entry.short_name] = entry
        for mac in entry.macs:
            self._mac_users.setdefault(mac, []).append(entry.name)
        for port in slot_ports(self.base, entry.slot):
            self._port_users[port] = self._port_users.get(port, 0) + 1


class Registry:
    """The registry file of one config_dir."""

    def __init__(self, config_dir: str) -> None:
        self.config_dir = config_dir
        self.path = os.path.join(config_dir, REGISTRY_FILE)
        self.lock_path = os.path.join(config_dir, LOCK_FILE)

    def read(self) -> RegistryState:
        """Read without the lock (for reporting); the file is replaced atomically, so never torn."""
        return RegistryState.parse(self.path, self._read_text(), read_monitor_base(self.config_dir))

    def _read_text(self) -> str:
        try:
            return read_text(self.path, "registry", hint="the registry is damaged: see docs/registry.md (recovery)") or ""
        except FileReadError as exc:
            raise RegistryError(exc.msg) from exc

    @contextlib.contextmanager
    def locked(self, create: bool = True) -> collections.abc.Iterator[RegistryState]:
        """Hold the registry lock; yield the current state. Save changes with save(state)."""
        if create:
            os.makedirs(self.config_dir, mode=0o755, exist_ok=True)
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RegistryError("cannot open the registry lock %s: %s" % (self.lock_path, exc.strerror)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.read()
        finally:
            os.close(fd)  # closing drops the flock

    def save(self, state: RegistryState) -> None:
        """Write the state atomically (call it while holding locked())."""
        atomic_write(self.path, state.render(), mode=0o644)
