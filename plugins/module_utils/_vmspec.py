# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM spec: validated from module parameters or from a cfg file, rendered back to cfg keys.

Data flows one way: module params -> VmSpec -> cfg file; and cfg file -> VmSpec -> QEMU argv.
Both inputs go through the same validation (`_build`), so a hand-edited cfg is held to the
same rules as the module's parameters. Only the naming of the offending field differs
(`nics[0].backend` for a parameter, `NIC1_BACKEND` for a cfg key).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CFG_FILE_HINT, DAMAGED_CFG_HINT, CfgError, CfgFile, numbered
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import (
    agent,
    cdrom,
    cidata,
    disk,
    firmware as firmware_kind,
    nic as nic_kind,
    tpm,
    vnc as vnc_kind,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.disk import DiskSpec, default_format as default_disk_format
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import DEFAULT_NIC_MODEL, NicSpec
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_hubport import HubSpec, build_hubs, hub_cfg_items
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import FileReadError, read_text
from ansible_collections.qemu_init.qemu.plugins.module_utils._mac import derive_mac
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import (
    check_absolute_path,
    check_ifname,
    check_netns,
    check_vm_name,
)

__all__ = ["DiskSpec", "HubSpec", "NicSpec", "VmSpec", "default_disk_format", "from_params", "from_cfg"]

DEFAULT_OS = "linux"
DEFAULT_BRIDGE = "br0"
DEFAULT_ACCEL = "auto"
DEFAULT_VNC_LISTEN = vnc_kind.DEFAULT_LISTEN
MAX_NICS = 32
MAX_DISKS = 32

ACCELS = ("auto", "kvm", "tcg")

# The cfg keys each device kind owns (_devices/).
_KIND_KEY_PATTERNS = (disk.CFG_KEY_PATTERN, cdrom.CFG_KEY_PATTERN, nic_kind.CFG_KEY_PATTERN, firmware_kind.CFG_KEY_PATTERN,
                      tpm.CFG_KEY_PATTERN, agent.CFG_KEY_PATTERN, cidata.CFG_KEY_PATTERN, vnc_kind.CFG_KEY_PATTERN)
# cfg keys we own; anything else in a cfg file is the operator's and is kept untouched.
_MANAGED_KEY_RE = re.compile(
    r"^(NAME|OS|MEMORY|CPUS|MACHINE|ACCEL|KERNEL|INITRD|APPEND|BRIDGE_IFNAME|NETNS|MONITOR_TCP|AUTOSTART"
    r"|SERIAL_LOG|EXTRA_ARGS|HUB\d+(_(BRIDGE|TAP))?|%s)$" % "|".join(_KIND_KEY_PATTERNS)
)

# Options the launcher owns; passing them through extra_args would break identity, stop or
# security guarantees, so they are refused with the parameter to use instead.
_RESERVED_ARGS = {
    "-daemonize": "the vm module always daemonizes QEMU",
    "-pidfile": "the pidfile lives in run_dir",
    "-qmp": "the QMP socket lives in run_dir",
    "-monitor": "use monitor_tcp",
    "-name": "the VM's name comes from name",
    "-vnc": "use vnc, vnc_listen and vnc_password",
    "-serial": "use serial_log",
    "-kernel": "use kernel",
    "-initrd": "use initrd",
    "-append": "use append",
    "-m": "use memory",
    "-smp": "use cpus",
    "-accel": "use accel",
    "-enable-kvm": "use accel",
    "-machine": "use machine",
    "-M": "use machine",
    "-netdev": "use nics",
    "-nic": "use nics",
    "-drive": "use disks",
    "-hda": "use disks",
    "-cdrom": "use cdroms",
    "-runas": "run QEMU as a user outside this module",
    "-chroot": "not supported",
    "-no-reboot": "always set",
    "-nodefaults": "always set",
    "-qmp-pretty": "the QMP socket lives in run_dir; a further monitor is -chardev plus -mon chardev=ID",
    "-readconfig": "a QEMU config file could hold options this collection must check; write them in extra_args",
}
# extra_args options whose value can open a network listener (QEMU's chardev and address syntaxes).
_LISTENER_ARGS = ("-chardev", "-gdb", "-debugcon", "-parallel", "-virtioconsole", "-incoming", "-spice", "-display")

_INSTANCE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MACHINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


@dataclass
class VmSpec:
    name: str
    os: str = DEFAULT_OS
    memory: int | None = None
    cpus: int | None = None
    machine: str | None = None
    accel: str = DEFAULT_ACCEL
    disks: list[DiskSpec] = field(default_factory=list)
    cdroms: list[str] = field(default_factory=list)
    kernel: str | None = None
    initrd: str | None = None
    append: str | None = None
    nics: list[NicSpec] = field(default_factory=list)
    hubs: list[HubSpec] = field(default_factory=list)
    bridge: str = DEFAULT_BRIDGE
    netns: str | None = None
    vnc: bool = False
    vnc_listen: str = DEFAULT_VNC_LISTEN
    vnc_password_id: str | None = None  # the password is in the state dir (_devices/vnc.py)
    monitor_tcp: bool = False
    autostart: bool = False
    serial_log: str | None = None
    extra_args: list[str] = field(default_factory=list)
    firmware: str = firmware_kind.DEFAULT
    secure_boot: bool = False
    tpm: bool = False
    guest_agent: bool = False
    cidata: str | None = None  # the cloud-init seed image (vm_config writes it from cloud_init)
    cidata_id: str | None = None  # its instance-id

    # --- derived facts -------------------------------------------------------------------
    def nic_mac(self, index):
        """MAC of NIC `index` (1-based): the explicit one, else the derived one."""
        nic = self.nics[index - 1]
        return nic.mac or derive_mac(self.name, self.os, index)

    def macs(self):
        return [self.nic_mac(i) for i in range(1, len(self.nics) + 1)]

    def nic_bridge(self, index):
        nic = self.nics[index - 1]
        return nic_kind.backend_of(nic).bridge(nic, self.bridge)

    def nic_tap(self, index, short_name):
        """The tap device name NIC `index` uses (a tap NIC's: explicit, else <short_name>-n<index>), or None."""
        nic = self.nics[index - 1]
        return nic_kind.backend_of(nic).tap(nic, index, short_name)

    def hub_bridge(self, hub):
        return hub.bridge_name(self.bridge)

    def hub_tap(self, hub, short_name):
        return hub.tap_name(short_name)

    def taps(self, short_name):
        """[(tap, bridge)] of every tap this VM needs: tap NICs, then hub uplinks."""
        taps = [(self.nic_tap(i, short_name), self.nic_bridge(i))
                for i in range(1, len(self.nics) + 1) if self.nic_tap(i, short_name)]
        return taps + [(self.hub_tap(hub, short_name), self.hub_bridge(hub)) for hub in self.hubs]

    def listened_tcp_ports(self):
        """{port: what} of the TCP ports the VM's NICs listen on (socket/stream listen, tcp host forwards)."""
        ports: dict[int, str] = {}
        for i, nic in enumerate(self.nics, start=1):
            backend = nic_kind.backend_of(nic)
            for port in backend.listened_tcp_ports(nic):
                ports.setdefault(port, "nics[%d].%s" % (i - 1, "listen" if backend.listens(nic) else "hostfwd"))
        return ports

    def uses_bridge(self):
        """Does a tap NIC or a hub uplink use the VM's own bridge (BRIDGE_IFNAME)?"""
        return (any(not nic.bridge and self.nic_bridge(i) for i, nic in enumerate(self.nics, start=1))
                or any(not hub.bridge for hub in self.hubs))

    # --- rendering -----------------------------------------------------------------------
    def cfg_items(self):
        """The cfg keys of this spec, in qemu-init's order; defaults are left out."""
        items = [("NAME", self.name), ("OS", self.os)]
        for key, value in (
            ("MEMORY", self.memory),
            ("CPUS", self.cpus),
            ("MACHINE", self.machine),
            ("ACCEL", None if self.accel == DEFAULT_ACCEL else self.accel),
            ("KERNEL", self.kernel),
            ("INITRD", self.initrd),
            ("APPEND", self.append),
        ):
            if value is not None:
                items.append((key, str(value)))
        for i, item in enumerate(self.disks, start=1):
            items += disk.cfg_items(item, i)
        for i, path in enumerate(self.cdroms, start=1):
            items += cdrom.cfg_items(path, i)
        items += firmware_kind.cfg_items(self) + tpm.cfg_items(self) + agent.cfg_items(self) + cidata.cfg_items(self)
        for i, nic in enumerate(self.nics, start=1):
            items += nic_kind.cfg_items(nic, i)
        items += hub_cfg_items(self.hubs)
        # qemu-init's docs put BRIDGE_IFNAME at the bottom of the NIC section.
        if self.uses_bridge() or self.bridge != DEFAULT_BRIDGE:
            items.append(("BRIDGE_IFNAME", self.bridge))
        if self.netns:
            items.append(("NETNS", self.netns))
        items += vnc_kind.cfg_items(self)
        if self.monitor_tcp:
            items.append(("MONITOR_TCP", "yes"))
        if self.autostart:
            items.append(("AUTOSTART", "yes"))
        if self.serial_log:
            items.append(("SERIAL_LOG", self.serial_log))
        if self.extra_args:
            items.append(("EXTRA_ARGS", " ".join(shlex.quote(a) for a in self.extra_args)))
        return items

    def render_onto(self, existing=None):
        """Return cfg text for this spec.

        Onto an existing file: our keys get the new values in place, our keys no longer wanted go,
        the operator's own keys and comments stay where they were, new keys are appended.
        """
        wanted = self.cfg_items()
        if existing is None:
            cfg = CfgFile.from_items(wanted, header=["qemu-init cfg for %s, managed by qemu_init.qemu.vm_config" % self.name])
            return cfg.render()
        cfg = existing.copy()  # the caller's object stays as read
        wanted_keys = set(key for key, _value in wanted)
        cfg.retain(lambda key: key in wanted_keys or not is_managed_key(key))
        for key, value in wanted:
            cfg.set(key, value)
        return cfg.render()


def is_managed_key(key):
    return bool(_MANAGED_KEY_RE.match(key))


# --- building a spec -------------------------------------------------------------------------


class _ParamNames:
    """Names fields the way module parameters spell them."""

    def top(self, fname):
        return fname

    def disk(self, i, fname):
        return "disks[%d].%s" % (i - 1, fname)

    def cdrom(self, i):
        return "cdroms[%d]" % (i - 1)

    def nic(self, i, fname):
        return "nics[%d].%s" % (i - 1, fname)

    def hub(self, i, fname):
        return "hubs[%d].%s" % (i - 1, fname)


class _CfgNames:
    """Names fields the way a cfg file spells them, prefixed with the file."""

    _TOP = {
        "name": "NAME", "os": "OS", "memory": "MEMORY", "cpus": "CPUS", "machine": "MACHINE", "accel": "ACCEL",
        "kernel": "KERNEL", "initrd": "INITRD", "append": "APPEND", "bridge": "BRIDGE_IFNAME", "netns": "NETNS",
        "vnc": "VNC", "vnc_listen": "VNC_LISTEN", "monitor_tcp": "MONITOR_TCP", "autostart": "AUTOSTART",
        "serial_log": "SERIAL_LOG", "vnc_password_id": "VNC_PASSWORD_ID",
        "extra_args": "EXTRA_ARGS", "cidata": "CIDATA", "cidata_id": "CIDATA_ID",
    }

    def __init__(self, source):
        self.source = source

    def top(self, fname):
        return "%s: %s" % (self.source, self._TOP.get(fname, fname.upper()))

    def disk(self, i, fname):
        return "%s: DSK%d%s" % (self.source, i, "" if fname == "file" else "_" + fname.upper())

    def cdrom(self, i):
        return "%s: CDR%d" % (self.source, i)

    def nic(self, i, fname):
        return "%s: NIC%d%s" % (self.source, i, "" if fname == "model" else "_" + fname.upper())

    def hub(self, i, fname):
        return "%s: HUB%d%s" % (self.source, i, "" if fname == "id" else "_" + fname.upper())


def from_params(params, check_files=True):
    """Build a VmSpec from vm_config's module parameters (already type-converted by Ansible)."""
    return _build(params, _ParamNames(), check_files)


def from_cfg(cfg, source="<cfg>", check_files=False):
    """Build a VmSpec from a parsed CfgFile; unknown keys are ignored here (the file keeps them)."""
    names = _CfgNames(source)
    d = cfg.as_dict()
    if not d.get("NAME"):
        raise ParameterError(names.top("name"), "missing: every qemu-init cfg needs NAME")

    def opt(key):
        value = d.get(key)
        return None if value is None or value == "" else value

    params = dict(
        name=d["NAME"],
        os=opt("OS") or DEFAULT_OS,
        memory=_to_int(opt("MEMORY"), names.top("memory")),
        cpus=_to_int(opt("CPUS"), names.top("cpus")),
        machine=opt("MACHINE"),
        accel=opt("ACCEL") or DEFAULT_ACCEL,
        kernel=opt("KERNEL"),
        initrd=opt("INITRD"),
        append=d.get("APPEND"),
        bridge=opt("BRIDGE_IFNAME") or DEFAULT_BRIDGE,
        netns=opt("NETNS"),
        vnc=_to_bool(opt("VNC"), names.top("vnc")),
        vnc_listen=opt("VNC_LISTEN") or DEFAULT_VNC_LISTEN,
        vnc_password_id=opt("VNC_PASSWORD_ID"),
        monitor_tcp=_to_bool(opt("MONITOR_TCP"), names.top("monitor_tcp")),
        autostart=_to_bool(opt("AUTOSTART"), names.top("autostart")),
        serial_log=opt("SERIAL_LOG"),
        firmware=opt("FIRMWARE") or firmware_kind.DEFAULT,
        secure_boot=_to_bool(opt("SECURE_BOOT"), names.top("secure_boot")),
        tpm=_to_bool(opt("TPM"), names.top("tpm")),
        guest_agent=_to_bool(opt("GUEST_AGENT"), names.top("guest_agent")),
        cidata=opt("CIDATA"),
        cidata_id=opt("CIDATA_ID"),
        cdroms=numbered(d, "CDR"),
        disks=[],
        nics=[],
    )
    try:
        params["extra_args"] = shlex.split(d.get("EXTRA_ARGS") or "")
    except ValueError as exc:
        raise ParameterError(names.top("extra_args"), "cannot split into arguments: %s" % exc) from exc
    for i, path in enumerate(numbered(d, "DSK"), start=1):
        params["disks"].append(disk.from_cfg(i, path, opt, _to_bool, lambda fname, i=i: names.disk(i, fname)))
    for i, model in enumerate(numbered(d, "NIC"), start=1):
        params["nics"].append(nic_kind.from_cfg(d, i, model, opt, _to_int, _to_bool, lambda fname, i=i: names.nic(i, fname)))
    params["hubs"] = [dict(id=_to_int(hub_id, names.hub(i, "id")), bridge=opt("HUB%d_BRIDGE" % i), tap=opt("HUB%d_TAP" % i))
                      for i, hub_id in enumerate(numbered(d, "HUB"), start=1)]
    return _build(params, names, check_files)


def parse_cfg_text(text, source, check_files=False):
    """Parse cfg text into (CfgFile, VmSpec); cfg syntax errors become ParameterError-like CfgError."""
    cfg = CfgFile.parse(text, source)
    return cfg, from_cfg(cfg, source, check_files)


def _to_int(value, where):
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParameterError(where, "%r is not a whole number" % (value,)) from None


def _to_bool(value, where):
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ParameterError(where, "%r is not yes or no" % (value,))


def _choice(value, choices, where):
    if value not in choices:
        raise ParameterError(where, "%r is not one of %s" % (value, ", ".join(choices)))
    return value


def _build(p, names, check_files):
    name = check_vm_name(p["name"], names.top("name"))
    os_name = p.get("os") or DEFAULT_OS
    if not _OS_RE.match(os_name) or len(os_name) > 64:
        raise ParameterError(names.top("os"), "%r is not a valid OS label (letters, digits, '.', '_', '+', '-')" % (os_name,))
    spec = VmSpec(name=name, os=os_name)

    for fname in ("memory", "cpus"):
        # Ansible's int check lets a boolean through (True is an int); rendered as "True" it would not read back.
        if isinstance(p.get(fname), bool):
            raise ParameterError(names.top(fname), "must be a whole number, got %r" % (p[fname],))
    memory = p.get("memory")
    if memory is not None and not 16 <= memory <= 16 * 1024 * 1024:
        raise ParameterError(names.top("memory"), "%d MiB is outside 16 MiB .. 16 TiB" % memory)
    spec.memory = memory
    cpus = p.get("cpus")
    if cpus is not None and not 1 <= cpus <= 1024:
        raise ParameterError(names.top("cpus"), "%d is outside 1 .. 1024" % cpus)
    spec.cpus = cpus
    machine = p.get("machine")
    if machine is not None and not _MACHINE_RE.match(machine):
        raise ParameterError(names.top("machine"), "%r is not a QEMU machine type name" % (machine,))
    spec.machine = machine
    spec.accel = _choice(p.get("accel") or DEFAULT_ACCEL, ACCELS, names.top("accel"))

    for fname in ("kernel", "initrd"):
        if p.get(fname):
            setattr(spec, fname, check_absolute_path(p[fname], names.top(fname), must_exist=check_files, kind=fname))
    if spec.initrd and not spec.kernel:
        raise ParameterError(names.top("initrd"), "an initrd needs a kernel")
    append = p.get("append")
    if append is not None:
        if not spec.kernel:
            raise ParameterError(names.top("append"), "a kernel command line needs a kernel")
        if "\n" in append or "\r" in append or "\0" in append:
            raise ParameterError(names.top("append"), "must be a single line")
        spec.append = append

    disks = p.get("disks") or []
    if len(disks) > MAX_DISKS:
        raise ParameterError(names.top("disks"), "at most %d disks" % MAX_DISKS)
    for i, d in enumerate(disks, start=1):
        spec.disks.append(disk.build(d, lambda fname, i=i: names.disk(i, fname), check_files))
    for i, path in enumerate(p.get("cdroms") or [], start=1):
        spec.cdroms.append(cdrom.build(path, names.cdrom(i), check_files))

    spec.bridge = check_ifname(p.get("bridge") or DEFAULT_BRIDGE, names.top("bridge"))
    spec.netns = check_netns(p.get("netns"), names.top("netns"))

    nics = p.get("nics") or []
    if len(nics) > MAX_NICS:
        raise ParameterError(names.top("nics"), "at most %d NICs" % MAX_NICS)
    for i, n in enumerate(nics, start=1):
        spec.nics.append(nic_kind.build(n, i, lambda fname, i=i: names.nic(i, fname)))
    macs: dict[str, int] = {}
    for i in range(1, len(spec.nics) + 1):
        mac = spec.nic_mac(i)
        if mac in macs:
            raise ParameterError(names.nic(i, "mac"), "%s is already used by NIC%d of this VM" % (mac, macs[mac]))
        macs[mac] = i
    taps: dict[str, int] = {}
    for i, nic in enumerate(spec.nics, start=1):
        if nic.tap:
            if nic.tap in taps:
                raise ParameterError(names.nic(i, "tap"), "%s is already used by NIC%d of this VM" % (nic.tap, taps[nic.tap]))
            taps[nic.tap] = i

    spec.hubs = build_hubs(p.get("hubs") or [], spec.nics, names.hub)
    # A tap named like a bridge the VM puts its taps on would be that bridge: refused here, not at launch.
    bridges = set(spec.nic_bridge(i) for i in range(1, len(spec.nics) + 1)) - {None}
    bridges.update(spec.hub_bridge(hub) for hub in spec.hubs)
    for i, nic in enumerate(spec.nics, start=1):
        if nic.tap and nic.tap in bridges:
            raise ParameterError(names.nic(i, "tap"), "%s is also a bridge this VM's taps are put on; a tap cannot be a bridge" % nic.tap)
    for i, hub in enumerate(spec.hubs, start=1):
        if hub.tap in bridges:
            raise ParameterError(names.hub(i, "tap"), "%s is also a bridge this VM's taps are put on; a tap cannot be a bridge" % hub.tap)

    vnc_kind.build(spec, p, names.top)
    spec.monitor_tcp = bool(p.get("monitor_tcp"))
    firmware_kind.build(spec, p.get("firmware") or firmware_kind.DEFAULT, p.get("secure_boot"), names.top)
    spec.tpm = bool(p.get("tpm"))
    spec.guest_agent = bool(p.get("guest_agent"))
    if p.get("cidata"):
        # Not required to exist yet: vm_config makes it from cloud_init after this check (QEMU names a missing one).
        spec.cidata = check_absolute_path(p["cidata"], names.top("cidata"), kind="cloud-init seed")
        cidata_id = p.get("cidata_id")
        if cidata_id is not None and not _INSTANCE_ID_RE.match(cidata_id):
            raise ParameterError(names.top("cidata_id"), "%r is not an instance-id (letters, digits, '.', '_', '-')" % (cidata_id,))
        spec.cidata_id = cidata_id
    spec.autostart = bool(p.get("autostart"))
    if p.get("serial_log"):
        spec.serial_log = check_absolute_path(p["serial_log"], names.top("serial_log"))

    extra = [str(a) for a in (p.get("extra_args") or [])]
    for index, arg in enumerate(extra):
        if arg in ("-net", "--net"):
            raise ParameterError(names.top("extra_args"), legacy_net_message(extra))
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and len(flag) > 2:
            flag = flag[1:]  # QEMU takes --opt for -opt
        if flag in _RESERVED_ARGS:
            raise ParameterError(names.top("extra_args"), "%s is managed by this collection: %s" % (flag, _RESERVED_ARGS[flag]))
        if "\0" in arg or "\n" in arg or "\r" in arg:
            raise ParameterError(names.top("extra_args"), "arguments must not contain NUL, newline or carriage return characters")
        if flag == "-s" or (flag in _LISTENER_ARGS and index + 1 < len(extra)):
            problem = _non_loopback_listener(flag, extra[index + 1] if flag != "-s" else "tcp::1234")
            if problem:
                shown = arg if flag == "-s" else "%s %s" % (arg, extra[index + 1])
                raise ParameterError(names.top("extra_args"), "%s %s; extra_args may open listeners on loopback only "
                                     "(127.0.0.1, ::1, localhost) or unix sockets. A NIC or the VNC display on another address "
                                     "is asked for with nics[].listen, hostfwd or vnc_listen" % (shown, problem))
    spec.extra_args = extra
    return spec


def _qemu_opts(value):
    """Split a QEMU option list (a,b=c,,d) into [(key, value)]; the first bare word gets key ''."""
    parts, current, i = [], [], 0
    while i < len(value):
        if value[i] == ",":
            if value[i + 1:i + 2] == ",":
                current.append(",")
                i += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(value[i])
        i += 1
    parts.append("".join(current))
    opts = []
    for n, part in enumerate(parts):
        key, sep, val = part.partition("=")
        opts.append((key, val) if sep else (("", part) if n == 0 else (part, "on")))
    return opts


def _legacy_chardev_host(value):
    """Host of a legacy chardev address (tcp:HOST:PORT,server), or None when it opens no socket of its own."""
    kind, sep, rest = value.partition(":")
    if not sep:
        return "" if value.isdigit() else None  # -gdb 1234 is tcp::1234
    if kind == "udp":
        rest = rest.split(",", 1)[0]
        return rest.rpartition("@")[2].rpartition(":")[0] if "@" in rest else ""
    if kind in ("tcp", "telnet", "websocket"):
        return rest.split(",", 1)[0].rpartition(":")[0]
    return None


def _non_loopback_listener(flag, value):
    """Why `flag value` would listen on a non-loopback address, or None."""
    where = None
    if flag == "-chardev":
        opts = _qemu_opts(value)
        keys = dict(opts)
        backend = keys.get("", "")
        if backend == "socket" and "path" not in keys and "fd" not in keys and keys.get("server", "off") in ("on", "yes", "true", "y"):
            where = keys.get("host", "")
        elif backend == "udp":
            where = keys.get("localaddr", "")
    elif flag == "-incoming":
        kind = value.split(":", 1)[0]
        if kind == "exec":
            return "runs a shell command"
        if kind in ("tcp", "rdma"):
            where = value.split(":", 1)[1].rpartition(":")[0] if ":" in value[4:] else ""
    elif flag == "-spice":
        keys = dict(_qemu_opts(value))
        if "port" in keys or "tls-port" in keys:
            where = keys.get("addr", "")
    elif flag == "-display":
        first = _qemu_opts(value)[0]
        if first[0] == "vnc" or first[1].startswith("vnc="):
            address = first[1][4:] if first[1].startswith("vnc=") else first[1]
            if not address.startswith("unix:"):
                where = address.rpartition(":")[0]
    else:
        where = _legacy_chardev_host(value)
    if where is None or _addr.is_loopback(where):
        return None
    return "would listen on %s" % (where or "every address")


_LEGACY_BACKEND_FIELDS = {
    # -net TYPE option -> nics[] field
    "tap": {"ifname": "tap"},
    "socket": {"listen": "listen", "connect": "connect", "mcast": "mcast", "localaddr": "localaddr"},
    "user": {"hostfwd": "hostfwd", "restrict": "restrict"},
}


def legacy_net_message(args):
    """The refusal of -net in extra_args, with the nics: entries that do the same."""
    nics: dict[str, list[dict[str, str]]] = {}
    backends: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for i, arg in enumerate(args):
        if arg not in ("-net", "--net") or i + 1 >= len(args):
            continue
        kind, _sep, rest = args[i + 1].partition(",")
        opts = dict(o.partition("=")[::2] for o in rest.split(",") if o)
        vlan = opts.get("vlan", "0")
        if kind == "nic":
            nic = {"model": opts.get("model", DEFAULT_NIC_MODEL)}
            if opts.get("macaddr"):
                nic["mac"] = opts["macaddr"]
            nics.setdefault(vlan, []).append(nic)
        elif kind in _LEGACY_BACKEND_FIELDS or kind in ("none",):
            backends.setdefault(vlan, []).append((kind, opts))
    entries, uplinks = [], []
    for vlan, vlan_nics in sorted(nics.items()):
        vlan_backends = backends.get(vlan, [])
        if len(vlan_nics) == 1 and len(vlan_backends) <= 1:
            nic = dict(vlan_nics[0])
            if vlan_backends:
                kind, opts = vlan_backends[0]
                backend = "mcast" if kind == "socket" and "mcast" in opts else kind
                nic["backend"] = backend
                for opt, fname in _LEGACY_BACKEND_FIELDS.get(kind, {}).items():
                    if fname == "restrict":
                        # QEMU's boolean spellings (a bare `restrict` is on); off is the default and needs no entry.
                        if opt in opts and opts[opt].lower() in ("", "on", "yes", "y", "true"):
                            nic[fname] = "true"
                    elif opts.get(opt):
                        nic[fname] = [opts[opt]] if fname == "hostfwd" else opts[opt]
            entries.append(nic)
        else:
            # Several devices on one -net VLAN: a QEMU hub, and a tap on it becomes the hub's uplink.
            hub = int(vlan) if vlan.isdigit() else 0
            entries += [dict(nic, backend="hubport", hub=hub) for nic in vlan_nics]
            for kind, opts in vlan_backends:
                if kind == "tap":
                    uplinks.append(dict(id=hub, tap=opts["ifname"]) if opts.get("ifname") else dict(id=hub))

    def yaml_list(items):
        return "[%s]" % ", ".join("{%s}" % ", ".join("%s: %s" % (k, v) for k, v in item.items()) for item in items)

    modern = []
    if entries:
        modern.append("nics: %s" % yaml_list(entries))
    if uplinks:
        modern.append("hubs: %s" % yaml_list(uplinks))
    return ("the legacy -net option is not supported; describe the NICs in nics instead%s "
            "(a -net 'VLAN' shared by several devices becomes backend: hubport with hub: N, and a tap on it "
            "a hubs: [{id: N, bridge: BRIDGE}] uplink)" % ((": " + "; ".join(modern)) if modern else ""))


def read_cfg_text(path, vm=None):
    """The text of the cfg file at path, or None when there is none; anything at path that is not a readable
    UTF-8 regular file is a CfgError naming the VM, the file and the recovery (_files.read_text)."""
    try:
        return read_text(path, "cfg file", vm, hint=CFG_FILE_HINT, damaged_hint=DAMAGED_CFG_HINT)
    except FileReadError as exc:
        raise CfgError(exc.msg) from exc


def load_cfg_file(path, check_files=False, vm=None):
    """Read and parse a cfg file from disk: (CfgFile, VmSpec). A missing file is a CfgError too."""
    text = read_cfg_text(path, vm)
    if text is None:
        raise CfgError("%s: no such cfg file" % path)
    return parse_cfg_text(text, path, check_files)


def describe_nics(spec, short_name):
    """The NICs of spec as the modules report them. A VM not registered yet (a hand-written cfg file) has no short
    name: its MACs are known (the rule needs only NAME, OS and the NIC number), a tap NIC's tap only when the file
    names it (NICx_TAP), else null until a start or vm_config registers the VM."""
    return [nic_kind.describe(nic, i, spec.nic_mac(i), spec.nic_tap(i, short_name) if short_name or nic.tap else None,
                              spec.nic_bridge(i))
            for i, nic in enumerate(spec.nics, start=1)]
