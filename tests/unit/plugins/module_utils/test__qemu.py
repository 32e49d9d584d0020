# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv, esc, observer_socket, qmp_args, resolve_accel
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_params

RUN = RunPaths("/run/qemu-init", "web1")


def argv_of(**params):
    spec = from_params(dict(dict(name="web1", os="debian"), **params), check_files=False)
    return build_argv(spec, "/usr/bin/qemu-system-x86_64", RUN, ports_info(30320, 2), "web1", "tcg")


def test_minimal_vm_argv():
    assert argv_of() == [
        "/usr/bin/qemu-system-x86_64", "-name", "web1", "-nodefaults", "-no-reboot", "-daemonize",
        "-pidfile", "/run/qemu-init/web1/qemu.pid", "-qmp", "unix:/run/qemu-init/web1/qmp.sock,server=on,wait=off",
        "-qmp", "unix:/run/qemu-init/web1/observe.sock,server=on,wait=off",
        "-accel", "tcg",
        "-chardev", "socket,id=serial0,path=/run/qemu-init/web1/console.sock,server=on,wait=off,"
                    "logfile=/run/qemu-init/web1/serial.log,logappend=on",
        "-serial", "chardev:serial0", "-display", "none",
    ]


def test_observers_use_observe_sock_and_qmp_sock_only_for_a_qemu_launched_without_it():
    assert observer_socket(RUN, argv_of()) == "/run/qemu-init/web1/observe.sock"
    old = [a for a in argv_of() if "observe.sock" not in a]
    old.remove("-qmp")  # the argv of a release before the observer monitor
    assert observer_socket(RUN, old) == "/run/qemu-init/web1/qmp.sock"
    assert observer_socket(RUN, []) == "/run/qemu-init/web1/qmp.sock"  # gone meanwhile: its cmdline is empty
    # Another VM's observer socket does not count, and a comma in the run dir is escaped as in the argv.
    assert observer_socket(RunPaths("/run/qemu-init", "web2"), argv_of()) == "/run/qemu-init/web2/qmp.sock"
    odd = RunPaths("/run/a,b", "web1")
    assert observer_socket(odd, qmp_args(odd)) == "/run/a,b/web1/observe.sock"
    assert qmp_args(odd)[3] == "unix:/run/a,,b/web1/observe.sock,server=on,wait=off"


def test_full_vm_argv_has_explicit_mac_and_format():
    argv = argv_of(memory=256, cpus=2, machine="q35", kernel="/k/vmlinuz", initrd="/k/initrd.img", append="console=ttyS0",
                   disks=[dict(file="/d/a,b.qcow2"), dict(file="/d/seed.img", readonly=True, interface="virtio")],
                   cdroms=["/iso/x.iso"], nics=[dict(model="virtio-net-pci"), dict(backend="user", mac="02:00:00:00:00:09")],
                   vnc=True, extra_args=["-device", "virtio-rng-pci"])
    joined = " ".join(argv)
    assert "-machine q35 -m 256 -smp 2 -kernel /k/vmlinuz -initrd /k/initrd.img -append console=ttyS0" in joined
    assert "-drive file=/d/a,,b.qcow2,format=qcow2,if=ide,media=disk,snapshot=off" in joined
    assert "-drive file=/d/seed.img,format=raw,if=virtio,media=disk,snapshot=off,readonly=on" in joined
    assert "-drive file=/iso/x.iso,format=raw,if=ide,media=cdrom,readonly=on" in joined
    assert "-netdev tap,id=net0,ifname=web1-n1,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=DE:AD:BE:EF:CF:CE" in joined
    assert "-netdev user,id=net1 -device e1000,netdev=net1,mac=02:00:00:00:00:09" in joined
    assert "-vnc 127.0.0.1:2" in joined and "-display" not in argv
    assert argv[-2:] == ["-device", "virtio-rng-pci"]


def test_monitor_tcp_is_loopback_only():
    spec = from_params(dict(name="web1", monitor_tcp=True), check_files=False)
    argv = build_argv(spec, "qemu-system-x86_64", RUN, ports_info(30320, 2), "web1", "kvm", ipv6_loopback=True)
    chardevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-chardev" and not argv[i + 1].startswith("socket,id=serial0,")]
    assert chardevs == [
        "socket,id=mon0,host=127.0.0.1,port=30322,server=on,wait=off",
        "socket,id=mon1,host=::1,port=30322,server=on,wait=off",
        "socket,id=ctl0,host=127.0.0.1,port=30422,server=on,wait=off",
        "socket,id=ctl1,host=::1,port=30422,server=on,wait=off",
    ]


def test_escape_and_accel():
    assert esc("a,b,,c") == "a,,b,,,,c"
    assert resolve_accel("auto", lambda: False) == "tcg"
    assert resolve_accel("auto", lambda: True) == "kvm"
    assert resolve_accel("tcg", lambda: True) == "tcg"


def test_hub_uplink_argv():
    spec = from_params(dict(name="web1", nics=[dict(backend="hubport", hub=3)], hubs=[dict(id=3, bridge="br1")]), check_files=False)
    argv = build_argv(spec, "qemu", RUN, ports_info(30320, 0), "web1", "tcg")
    joined = " ".join(argv)
    assert "-netdev hubport,id=net0,hubid=3 -device e1000,netdev=net0,mac=" in joined
    assert "-netdev tap,id=hub3up,ifname=web1-h3,script=no,downscript=no -netdev hubport,id=hub3port,hubid=3,netdev=hub3up" in joined
