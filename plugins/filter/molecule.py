# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters molecule_vms and molecule_instances: molecule platforms as qemu_init.qemu VMs.

The playbooks qemu_init.qemu.molecule_create and qemu_init.qemu.molecule_destroy stay thin: every decision
(defaults, per-platform overrides, the SSH port, the login user, the cloud-init user-data) is made here, in
Python, and unit-tested (tests/unit/plugins/filter/test_molecule.py).
"""

from __future__ import annotations

import os
import typing as t

from ansible.errors import AnsibleFilterError

# The cloud-init default user of Debian's cloud images and of the project's Debian image.
DEFAULT_SSH_USER = "debian"
DEFAULT_MEMORY = 1024
DEFAULT_CPUS = 1
DEFAULT_FIRMWARE = "uefi"
DEFAULT_ACCEL = "auto"
DEFAULT_SSH_PORT_BASE = 22220
# The root disk of each VM: a name relative to <state_dir>/<vm>/, made as a qcow2 overlay on the base image.
DISK_FILE = "disk.qcow2"
FIRMWARES = ("uefi", "bios")
ACCELS = ("auto", "kvm", "tcg")
# Only the host forward on 127.0.0.1: the guests are reachable from this machine only.
SSH_HOST = "127.0.0.1"


def _fail(filter_name, msg) -> t.NoReturn:
    raise AnsibleFilterError("qemu_init.qemu.%s: %s" % (filter_name, msg))


def _platforms(filter_name, platforms):
    if not isinstance(platforms, (list, tuple)):
        _fail(filter_name, "expects molecule's platforms (a list of dicts), got %s" % type(platforms).__name__)
    names = []
    for index, platform in enumerate(platforms):
        if not isinstance(platform, dict) or not isinstance(platform.get("name"), str) or not platform["name"]:
            _fail(filter_name, "platforms[%d] must be a dict with a name" % index)
        if platform["name"] in names:
            _fail(filter_name, "platforms[%d]: the name %r is used twice" % (index, platform["name"]))
        names.append(platform["name"])
    return platforms


def _int(filter_name, where, key, value, low, high):
    try:
        number = int(value)
        if isinstance(value, bool) or (isinstance(value, float) and value != number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        _fail(filter_name, "%s: %s must be a whole number, got %r" % (where, key, value))
    if not low <= number <= high:
        _fail(filter_name, "%s: %s must be between %d and %d, got %d" % (where, key, low, high, number))
    return number


def _choice(filter_name, where, key, value, choices):
    if value not in choices:
        _fail(filter_name, "%s: %s must be one of %s, got %r" % (where, key, ", ".join(choices), value))
    return value


def _pick(platform, key, default):
    """The platform's setting, else `default` (molecule.yml's `key:` with no value counts as unset)."""
    value = platform.get(key)
    return default if value is None or value == "" else value


def _where(index, platform):
    return "platform %s (platforms[%d])" % (platform["name"], index)


def login_user(platform, default=DEFAULT_SSH_USER):
    """The login user of a platform: its ssh_user, else `default` (the image's cloud-init default user)."""
    return _pick(platform, "ssh_user", None) or default or DEFAULT_SSH_USER


def ssh_ports(platforms, ssh_port_base=DEFAULT_SSH_PORT_BASE, filter_name="molecule_vms"):
    """Host port of each platform's SSH forward: its ssh_port, else ssh_port_base + its index. Distinct."""
    ports: list[int] = []
    for index, platform in enumerate(platforms):
        where = _where(index, platform)
        if _pick(platform, "ssh_port", None) is not None:
            port = _int(filter_name, where, "ssh_port", platform["ssh_port"], 1, 65535)
        else:
            base = _int(filter_name, where, "qemu_molecule_ssh_port_base", ssh_port_base, 1, 65535)
            port = _int(filter_name, where, "qemu_molecule_ssh_port_base + index", base + index, 1, 65535)
        if port in ports:
            _fail(filter_name, "%s: SSH port %d is also the port of platform %s; set ssh_port"
                  % (where, port, platforms[ports.index(port)]["name"]))
        ports.append(port)
    return ports


def _user_data(user, public_key):
    # 'default' keeps the image's default user; the entry for the login user merges into it when it is that user
    # (cloud-init merges a listed user of the default user's name into the default user), else makes it.
    return {
        "users": [
            "default",
            {
                "name": user,
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [public_key],
            },
        ],
        "ssh_pwauth": False,
    }


def molecule_vms(platforms, public_key=None, base_image=None, state="started", memory=DEFAULT_MEMORY,
                 cpus=DEFAULT_CPUS, firmware=DEFAULT_FIRMWARE, accel=DEFAULT_ACCEL, ssh_user=DEFAULT_SSH_USER,
                 ssh_port_base=DEFAULT_SSH_PORT_BASE, restrict=False):
    """The qemu_init.qemu.vms module's `vms` for molecule's platforms.

    state=started: one VM per platform booted from a qcow2 overlay on its base image, UEFI by default, a user-mode
    NIC forwarding 127.0.0.1:<port> to the guest's port 22, the guest agent, and cloud-init user-data giving the
    login user `public_key`; `restrict` cuts the guests off from everything but their forwards (QEMU's
    restrict=on). state=absent: each platform's VM, to be removed (the module's remove_disks removes its disks).
    """
    name = "molecule_vms"
    platforms = _platforms(name, platforms)
    # None (an unset playbook variable) means the default.
    memory = DEFAULT_MEMORY if memory is None else memory
    cpus = DEFAULT_CPUS if cpus is None else cpus
    firmware = firmware or DEFAULT_FIRMWARE
    accel = accel or DEFAULT_ACCEL
    ssh_port_base = DEFAULT_SSH_PORT_BASE if ssh_port_base is None else ssh_port_base
    if restrict not in (None, True, False):
        _fail(name, "restrict must be true or false, got %r" % (restrict,))
    nic_options = {"restrict": True} if restrict else {}
    if state == "absent":
        return [{"name": p["name"], "state": "absent"} for p in platforms]
    _choice(name, "state", "state", state, ("started", "absent"))
    if not isinstance(public_key, str) or not public_key.strip():
        _fail(name, "public_key (the SSH public key the guests accept) is required")
    public_key = public_key.strip()
    if "\n" in public_key:
        _fail(name, "public_key must be one line (an OpenSSH public key)")
    ports = ssh_ports(platforms, ssh_port_base, name)
    vms = []
    for index, platform in enumerate(platforms):
        where = _where(index, platform)
        image = _pick(platform, "base_image", base_image)
        if not image or not isinstance(image, str):
            _fail(name, "%s: no base image: set the platform's base_image or the variable qemu_molecule_base_image"
                  % where)
        if not os.path.isabs(image):
            _fail(name, "%s: base_image must be an absolute path, got %r" % (where, image))
        firmware_of = _choice(name, where, "firmware", _pick(platform, "firmware", firmware), FIRMWARES)
        vms.append({
            "name": platform["name"],
            "state": "started",
            "memory": _int(name, where, "memory", _pick(platform, "memory", memory), 64, 1 << 22),
            "cpus": _int(name, where, "cpus", _pick(platform, "cpus", cpus), 1, 1024),
            "machine": "q35",
            "accel": _choice(name, where, "accel", accel, ACCELS),
            "firmware": firmware_of,
            "disks": [{"file": DISK_FILE, "base_image": image, "interface": "virtio"}],
            "cloud_init": {"user_data": _user_data(login_user(platform, ssh_user), public_key)},
            "guest_agent": True,
            "nics": [{"model": "virtio-net-pci", "backend": "user",
                      "hostfwd": ["tcp:%s:%d-:22" % (SSH_HOST, ports[index])], **nic_options}],
        })
    return vms


def molecule_instances(vms, platforms, identity_file, ssh_user=DEFAULT_SSH_USER):
    """molecule's instance config for the VMs the qemu_init.qemu.vms module started (its result's `vms`).

    One entry per platform, in molecule.yml's order: instance (the platform's name), address and port (the
    VM's SSH forward as the module reports it), user (ssh_user, else the image's default user), identity_file.
    """
    name = "molecule_instances"
    platforms = _platforms(name, platforms)
    if not isinstance(vms, (list, tuple)):
        _fail(name, "expects the qemu_init.qemu.vms module's vms (a list), got %s" % type(vms).__name__)
    if not isinstance(identity_file, str) or not os.path.isabs(identity_file):
        _fail(name, "identity_file must be an absolute path, got %r" % (identity_file,))
    by_name = {vm.get("name"): vm for vm in vms if isinstance(vm, dict)}
    instances = []
    for index, platform in enumerate(platforms):
        where = _where(index, platform)
        vm = by_name.get(platform["name"])
        if vm is None:
            _fail(name, "%s: the module's result has no VM of that name" % where)
        ssh = vm.get("ssh")
        if not isinstance(ssh, dict) or not ssh.get("host") or not ssh.get("port"):
            _fail(name, "%s: the module's result gives no SSH address (ssh: %r); was it started with wait_for: ssh "
                  "and a user NIC forwarding a host port to the guest's port 22?" % (where, ssh))
        instances.append({
            "instance": platform["name"],
            "address": ssh["host"],
            "port": _int(name, where, "ssh.port", ssh["port"], 1, 65535),
            "user": login_user(platform, ssh_user),
            "identity_file": identity_file,
            "connection": "ssh",
        })
    return instances


class FilterModule:
    def filters(self):
        return {"molecule_vms": molecule_vms, "molecule_instances": molecule_instances}
