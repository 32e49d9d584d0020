# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VM spec -> qemu-system argv. Pure: no I/O except probing /dev/kvm for accel=auto.

Always: -nodefaults -no-reboot -daemonize -pidfile -qmp unix:... (twice: the lifecycle and the observer
monitor, see _paths.RunPaths); every NIC with an explicit
mac=, every disk with an explicit format=. Values that land inside QEMU's comma-separated
option lists have their commas doubled (QEMU's escape), so a path or name can never smuggle
in an option of its own.
"""

from __future__ import annotations

import fcntl
import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

_KVM_GET_API_VERSION = 0xAE00
_KVM_API_VERSION = 12

if t.TYPE_CHECKING:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
    from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import NicSpec, VmSpec


def esc(value: object) -> str:
    """Escape a value for a QEMU option list (a,b=c): commas are doubled."""
    return str(value).replace(",", ",,")


def kvm_usable(dev: str = "/dev/kvm") -> bool:
    """True when /dev/kvm opens read-write and answers the API version KVM has had since 2007."""
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, _KVM_GET_API_VERSION) == _KVM_API_VERSION
    except OSError:
        return False
    finally:
        os.close(fd)


def resolve_accel(accel: str, kvm_check: t.Callable[[], bool] = kvm_usable) -> str:
    """The accelerator to launch with: 'auto' becomes kvm when /dev/kvm is usable, else tcg."""
    if accel == "auto":
        return "kvm" if kvm_check() else "tcg"
    return accel


def _split_hostport(value: str, default_host: str) -> tuple[str, str]:
    host, port = value.rsplit(":", 1)
    return (host.strip("[]") or default_host), port


def netdev_arg(nic: NicSpec, index: int, tap_name: str | None) -> str:
    """The -netdev value of NIC `index` (1-based)."""
    netdev_id = "net%d" % (index - 1)
    backend = nic.backend
    if backend == "tap":
        # The vm module creates and enslaves the tap before launch: QEMU runs no scripts.
        return "tap,id=%s,ifname=%s,script=no,downscript=no" % (netdev_id, esc(tap_name))
    if backend == "socket":
        if nic.listen:
            # An empty host would listen on every address; loopback unless the user names one.
            host, port = _split_hostport(nic.listen, "127.0.0.1")
            return "socket,id=%s,listen=%s:%s" % (netdev_id, esc(host), port)
        return "socket,id=%s,connect=%s" % (netdev_id, esc(nic.connect))
    if backend == "mcast":
        value = "socket,id=%s,mcast=%s" % (netdev_id, esc(nic.mcast))
        if nic.localaddr:
            value += ",localaddr=%s" % esc(nic.localaddr)
        return value
    if backend == "hubport":
        return "hubport,id=%s,hubid=%d" % (netdev_id, _needed(nic.hub, "hub", index, backend))
    if backend == "user":
        options = ["user,id=%s" % netdev_id] + (["restrict=on"] if nic.restrict else [])
        return ",".join(options + ["hostfwd=%s" % esc(rule) for rule in nic.hostfwd])
    if backend == "stream":
        server = bool(nic.listen)
        address = _needed(nic.listen or nic.connect, "listen or connect", index, backend)
        return "stream,id=%s,server=%s,%s" % (netdev_id, "on" if server else "off", _address("addr", address))
    if backend == "dgram":
        local = _needed(nic.listen, "listen", index, backend)
        remote = _needed(nic.connect, "connect", index, backend)
        return "dgram,id=%s,%s,%s" % (netdev_id, _address("local", local), _address("remote", remote))
    raise QemuInitError("NIC%d: backend %r has no QEMU mapping" % (index, backend))


_T = t.TypeVar("_T")


def _needed(value: _T | None, field: str, index: int, backend: str) -> _T:
    # _vmspec validation guarantees these fields; a spec built some other way gets an error, not a TypeError.
    if value is None:
        raise QemuInitError("NIC%d: backend %s needs %s" % (index, backend, field))
    return value


def _address(prefix: str, value: str) -> str:
    if value.startswith("unix:"):
        return "%s.type=unix,%s.path=%s" % (prefix, prefix, esc(value[5:]))
    host, port = _split_hostport(value, "127.0.0.1")
    return "%s.type=inet,%s.host=%s,%s.port=%s" % (prefix, prefix, esc(host), prefix, port)


def _qmp_unix(path: str) -> str:
    return "unix:%s,server=on,wait=off" % esc(path)


def qmp_args(run_paths: RunPaths) -> list[str]:
    """The -qmp options: the lifecycle monitor (qmp.sock), then the observer monitor (observe.sock)."""
    return ["-qmp", _qmp_unix(run_paths.qmp), "-qmp", _qmp_unix(run_paths.observe)]


def observer_socket(run_paths: RunPaths, argv: t.Sequence[str]) -> str:
    """The socket observers use for a QEMU running with `argv` (its /proc cmdline): observe.sock, or qmp.sock
    for a QEMU launched before the observer monitor existed (its argv has no such -qmp)."""
    return run_paths.observe if _qmp_unix(run_paths.observe) in argv else run_paths.qmp


def build_argv(spec: VmSpec, binary: str, run_paths: RunPaths, ports: dict[str, int], short_name: str, accel: str,
               ipv6_loopback: bool = False) -> list[str]:
    """The full argv to launch `spec`.

    run_paths: _paths.RunPaths; ports: dict from _registry.ports_info; accel: 'kvm' or 'tcg'.
    """
    argv = [
        binary,
        "-name", esc(spec.name),
        "-nodefaults",
        "-no-reboot",
        "-daemonize",
        "-pidfile", run_paths.pidfile,
    ] + qmp_args(run_paths) + [
        "-accel", accel,
    ]
    if spec.machine:
        argv += ["-machine", spec.machine]
    if spec.memory:
        argv += ["-m", str(spec.memory)]
    if spec.cpus:
        argv += ["-smp", str(spec.cpus)]
    if spec.kernel:
        argv += ["-kernel", spec.kernel]
        if spec.initrd:
            argv += ["-initrd", spec.initrd]
        if spec.append is not None:
            argv += ["-append", spec.append]
    for disk in spec.disks:
        drive = "file=%s,format=%s,if=%s,media=disk,snapshot=off" % (esc(disk.file), disk.format, disk.interface)
        if disk.readonly:
            drive += ",readonly=on"
        argv += ["-drive", drive]
    for path in spec.cdroms:
        argv += ["-drive", "file=%s,format=raw,if=ide,media=cdrom,readonly=on" % esc(path)]
    for i, nic in enumerate(spec.nics, start=1):
        argv += ["-netdev", netdev_arg(nic, i, spec.nic_tap(i, short_name))]
        argv += ["-device", "%s,netdev=net%d,mac=%s" % (nic.model, i - 1, spec.nic_mac(i))]
    for hub in spec.hubs:
        # The uplink: a tap netdev with no guest device, plugged into the hub by a hubport.
        uplink = "hub%dup" % hub.id
        argv += ["-netdev", "tap,id=%s,ifname=%s,script=no,downscript=no" % (uplink, esc(spec.hub_tap(hub, short_name)))]
        argv += ["-netdev", "hubport,id=hub%dport,hubid=%d,netdev=%s" % (hub.id, hub.id, uplink)]
    # The serial console: a unix socket `qemu-init console` attaches to (one client at a time), and everything the
    # guest prints also goes to the log file, attached or not.
    argv += ["-chardev", "socket,id=serial0,path=%s,server=on,wait=off,logfile=%s,logappend=on"
             % (esc(run_paths.console), esc(spec.serial_log or run_paths.serial_log)),
             "-serial", "chardev:serial0"]
    if spec.vnc:
        host = spec.vnc_listen
        argv += ["-vnc", "%s:%d" % ("[%s]" % host if ":" in host else host, ports["vnc_display"])]
    else:
        argv += ["-display", "none"]
    if spec.monitor_tcp:
        hosts = ["127.0.0.1"] + (["::1"] if ipv6_loopback else [])
        for role, port in (("mon", ports["monitor_port"]), ("ctl", ports["control_port"])):
            for n, host in enumerate(hosts):
                chardev = "%s%d" % (role, n)
                argv += ["-chardev", "socket,id=%s,host=%s,port=%d,server=on,wait=off" % (chardev, host, port)]
                argv += ["-mon", "chardev=%s,mode=readline" % chardev]
    argv += spec.extra_args
    return argv
