# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VM spec -> qemu-system argv. Pure: no I/O except probing /dev/kvm for accel=auto.

Always: -nodefaults -no-reboot -daemonize -pidfile -qmp unix:... (twice: the lifecycle and the observer
monitor, see _paths.RunPaths); every NIC with an explicit mac=, every disk with an explicit format=. Each
device kind writes its own options (_devices/); values inside QEMU's option lists are escaped (qemu_opts.esc).
"""

from __future__ import annotations

import fcntl
import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import DEFAULT_STATE_DIR
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import agent, cdrom, cidata, disk, firmware, nic as nic_kind, tpm, vnc
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.context import DeviceContext
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import StatePaths

_KVM_GET_API_VERSION = 0xAE00
_KVM_API_VERSION = 12

if t.TYPE_CHECKING:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
    from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import VmSpec

__all__ = ["esc", "build_argv", "resolve_accel", "kvm_usable", "qmp_args", "observer_socket"]


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
               ipv6_loopback: bool = False, state_paths: StatePaths | None = None) -> list[str]:
    """The full argv to launch `spec`.

    run_paths: _paths.RunPaths; ports: dict from _registry.ports_info; accel: 'kvm' or 'tcg'; state_paths:
    _paths.StatePaths (default: under the default state dir).
    """
    ctx = DeviceContext(spec, run_paths, state_paths or StatePaths(DEFAULT_STATE_DIR, spec.name), short_name)
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
    machine = firmware.machine(spec)
    if machine:
        argv += ["-machine", machine]
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
    argv += firmware.argv(ctx)
    for item in spec.disks:
        argv += disk.argv(item)
    for path in spec.cdroms:
        argv += cdrom.argv(path)
    for i, nic in enumerate(spec.nics, start=1):
        argv += nic_kind.argv(nic, i, spec.nic_tap(i, short_name), spec.nic_mac(i))
    for hub in spec.hubs:
        argv += hub.argv(short_name)
    argv += cidata.argv(ctx) + agent.argv(ctx) + tpm.argv(ctx)
    # The serial console: a unix socket `qemu-init console` attaches to (one client at a time), and everything the
    # guest prints also goes to the log file, attached or not.
    argv += ["-chardev", "socket,id=serial0,path=%s,server=on,wait=off,logfile=%s,logappend=on"
             % (esc(run_paths.console), esc(spec.serial_log or run_paths.serial_log)),
             "-serial", "chardev:serial0"]
    argv += vnc.argv(ctx, ports)
    if spec.monitor_tcp:
        hosts = ["127.0.0.1"] + (["::1"] if ipv6_loopback else [])
        for role, port in (("mon", ports["monitor_port"]), ("ctl", ports["control_port"])):
            for n, host in enumerate(hosts):
                chardev = "%s%d" % (role, n)
                argv += ["-chardev", "socket,id=%s,host=%s,port=%d,server=on,wait=off" % (chardev, host, port)]
                argv += ["-mon", "chardev=%s,mode=readline" % chardev]
    argv += spec.extra_args
    return argv
