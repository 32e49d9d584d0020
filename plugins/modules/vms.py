#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vms
short_description: Converge a fleet of QEMU VMs (cfg files, registry entries, processes) in one call
version_added: 0.1.0
description:
  - The desired state of many VMs in one task, each with a state of its own. It does what
    M(qemu_init.qemu.vm_config) and M(qemu_init.qemu.vm) do, in one module call, with one registry lock.
  - Reads the registry, the cfg files and every VM's process once; plans every cfg file and registry entry (VMs
    to remove first, so that new VMs get the slots and MACs they free); decides for each VM whether it is
    stopped, started, restarted or removed, exactly as M(qemu_init.qemu.vm) decides.
  - Then, outside check mode, in this order. Every VM to stop is powered down at once (the ACPI power button,
    then after O(shutdown_timeout) the force ladder with O(force=true), as M(qemu_init.qemu.vm) does). The VMs
    with C(state=absent) are removed (taps the collection made, run directory, cfg file, registry entry).
    The cfg files are written and the registry saved under one lock. Every VM to start is launched; its missing
    bridges and taps made with one C(ip -batch) per network namespace, the QEMUs launched side by side (a few per
    core), VMs with a connecting socket/stream NIC after the others and one at a time, listeners first.
  - A failure reports what the call had done before it, and every VM's outcome so far in RV(vms).
  - The role C(qemu_init.qemu.vms) is one task calling this module.
author:
  - qemu_init.qemu maintainers (@qemu-init)
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.attributes
  - qemu_init.qemu._common.lifecycle
attributes:
  check_mode:
    support: full
    details: The plan is reported (cfg changes, starts, stops, removals) and nothing is done.
  diff_mode:
    support: full
    details: The cfg file and registry line of every VM that changes, and a C(<name> (process)) entry per VM that is
      started, stopped or restarted.
  idempotent:
    support: full
options:
  vms:
    description:
      - The VMs. Each item takes the per-VM options of M(qemu_init.qemu.vm_config) (O(qemu_init.qemu.vm_config#module:name),
        O(qemu_init.qemu.vm_config#module:os), O(qemu_init.qemu.vm_config#module:memory),
        O(qemu_init.qemu.vm_config#module:nics), O(qemu_init.qemu.vm_config#module:disks), ...), validated the same
        way, plus C(state).
      - Each item's C(state) (default O(default_state)) is one of the following.
      - C(present) writes the cfg file and registers the VM; its process is left as it is
        (RV(vms[].restart_required) says whether it lags behind the cfg).
      - C(started) also starts it when it does not run. A running VM launched with other arguments than its cfg
        gives now is reported with RV(vms[].restart_required=true), or restarted with O(restart_on_change=true).
      - C(stopped) writes the cfg file and powers the VM down gracefully.
      - C(restarted) writes the cfg file, stops the VM if it runs and starts it again (always a change).
      - C(absent) stops the VM and removes it, as M(qemu_init.qemu.vm) with O(qemu_init.qemu.vm#module:state=absent)
        does.
      - Errors name the item, for example C(vms[2].nics[0].mcast).
    type: list
    elements: dict
    required: true
  default_state:
    description: The state of the items of O(vms) that set none.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
  exclusive:
    description:
      - Converge the host's whole fleet. Every VM of this O(config_dir) that O(vms) does not list (registered, or
        with a cfg file) is stopped and removed, as if listed with C(state=absent).
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds to wait for the guests to power off after the first ACPI power-button press.
    type: int
    default: 120
  force:
    description:
      - When guests do not power off within O(shutdown_timeout), escalate to QMP C(quit), then SIGTERM, then SIGKILL.
        Without it the task fails and the VMs keep running.
    type: bool
    default: false
  restart_on_change:
    description: Gracefully restart a running VM with C(state=started) whose cfg changed since it was launched.
    type: bool
    default: false
  qemu_binary:
    description: QEMU binary (name or path) to launch, and to ask for its NIC models.
    type: str
    default: qemu-system-x86_64
  systemd_dir:
    description: The systemd unit directory where an item's C(autostart) enables the VM's instance (see
      M(qemu_init.qemu.vm_config)).
    type: path
    default: /etc/systemd/system
seealso:
  - module: qemu_init.qemu.vm_config
  - module: qemu_init.qemu.vm
  - module: qemu_init.qemu.vm_info
"""

EXAMPLES = r"""
- name: Two VMs on br0 running, a third one gone, in one call
  qemu_init.qemu.vms:
    vms:
      - name: web1
        memory: 1024
        disks: [{file: /var/lib/qemu/web1.qcow2}]
        nics: [{model: virtio-net-pci}]
      - name: web2
        memory: 1024
        disks: [{file: /var/lib/qemu/web2.qcow2}]
        nics: [{model: virtio-net-pci}]
      - name: old1
        state: absent
    shutdown_timeout: 60
    force: true

- name: Exactly these VMs on this host, nothing else (others are stopped and removed)
  qemu_init.qemu.vms:
    exclusive: true
    restart_on_change: true
    vms: "{{ my_fleet }}"
  register: fleet

- name: Show what happened to each VM
  ansible.builtin.debug:
    msg: "{{ fleet.vms | map(attribute='name') | zip(fleet.vms | map(attribute='running')) | list }}"

- name: Two Debian VMs from one cloud image, each with its own overlay, up (SSH answering) when the task returns
  qemu_init.qemu.vms:
    wait_for: ssh
    vms:
      - name: deb1
        firmware: uefi
        guest_agent: true
        disks: [{file: root.qcow2, base_image: /srv/images/debian-12-genericcloud-amd64.qcow2, size: 20G, interface: virtio}]
        nics: [{model: virtio-net-pci, backend: user, hostfwd: ["tcp:127.0.0.1:2222-:22"]}]
        cloud_init: {user_data: {ssh_authorized_keys: ["{{ my_public_key }}"]}}
      - name: deb2
        firmware: uefi
        guest_agent: true
        disks: [{file: root.qcow2, base_image: /srv/images/debian-12-genericcloud-amd64.qcow2, size: 20G, interface: virtio}]
        nics: [{model: virtio-net-pci, backend: user, hostfwd: ["tcp:127.0.0.1:2223-:22"]}]
        cloud_init: {user_data: {ssh_authorized_keys: ["{{ my_public_key }}"]}}
"""

RETURN = r"""
vms:
  description:
    - One entry per VM, in the order of O(vms); the VMs O(exclusive) removed follow.
    - The keys of M(qemu_init.qemu.vm_config)'s result for one VM merged with those of M(qemu_init.qemu.vm)'s
      RV(qemu_init.qemu.vm#module:vms[]) entries. VMs that are removed have only C(name), C(path) and the lifecycle
      keys.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The VM's long name.
      type: str
      sample: web1
    state:
      description: The state asked for.
      type: str
      sample: started
    changed:
      description: Whether this VM's cfg file or registry entry changed, or it was started, stopped or removed.
      type: bool
      sample: true
    cfg_changed:
      description: Whether the VM's cfg file or registry entry changed (or in check mode, would change).
      type: bool
      sample: false
    actions:
      description:
        - What was (in check mode, would be) done to the VM's process, in order, out of V(stop), V(remove) and
          V(start). A restart is V(stop) then V(start); an empty list means the process was left as it was.
      type: list
      elements: str
      sample: [stop, start]
    cfg_exists:
      description: Whether the VM's cfg file exists after the task (in check mode, whether it exists now).
      type: bool
      sample: true
    short_name:
      description: The VM's short name in the registry.
      type: str
      sample: web1
    path:
      description: The cfg file's path.
      type: str
      sample: /etc/qemu/vms/web1-qemu.cfg
    slot:
      description: The VM's registry slot.
      type: int
      sample: 0
    monitor_port:
      description: The VM's monitor port (base + slot).
      type: int
      sample: 30320
    control_port:
      description: The VM's control port (monitor port + 100).
      type: int
      sample: 30420
    vnc_display:
      description: The VM's VNC display (its slot).
      type: int
      sample: 0
    vnc_socket:
      description: The VNC display's unix socket with C(vnc_listen=unix), else V(null).
      type: str
      sample: /run/qemu-init/web1/vnc.sock
      version_added: 0.1.0
    nics:
      description: Each NIC as M(qemu_init.qemu.vm_config) reports it (C(mac), C(backend), C(tap), ...).
      type: list
      elements: dict
      sample: [{"index": 1, "model": "e1000", "backend": "tap", "mac": "DE:AD:BE:EF:CF:CE", "tap": "web1-0", "bridge": "br0"}]
    macs:
      description: The MACs of the NICs.
      type: list
      elements: str
      sample: ["DE:AD:BE:EF:CF:CE"]
    running:
      description: Whether the VM runs after the task (in check mode, the current state).
      type: bool
      sample: true
    pid:
      description: QEMU's pid, when running.
      type: int
      sample: 4242
    stop_method:
      description:
        - How the VM was stopped (V(acpi), V(agent), V(quit), V(sigterm), V(sigkill), V(external), V(joined); see
          M(qemu_init.qemu.vm)); V(none) for a VM to stop or remove that was not running; null when no stop was
          asked for, or in check mode.
      type: str
      sample: acpi
    stop_seconds:
      description: Seconds from the first power-button press to QEMU's exit.
      type: float
      sample: 0.21
    start_seconds:
      description: Seconds the launch took.
      type: float
      sample: 0.08
    restart_required:
      description: The VM runs with other QEMU arguments than its cfg gives now, and was not restarted.
      type: bool
      sample: false
    ready:
      description: With O(wait_for), whether the guest was seen ready.
      type: bool
      returned: when O(wait_for) is not V(none) and the VM runs
      sample: true
    ready_seconds:
      description: Seconds from the VM's launch (or the start of the wait, for a VM already running) until it was ready.
      type: float
      returned: when O(wait_for) is not V(none) and the VM runs
      sample: 44.2
    addresses:
      description: The guest's addresses as its agent reported them while waiting (no loopback, no link-local); empty otherwise.
      type: list
      elements: str
      returned: when O(wait_for) is not V(none) and the VM runs
      sample: [10.0.2.15]
    ssh:
      description: With O(wait_for=ssh), where the SSH server answered.
      type: dict
      returned: when O(wait_for=ssh) and the VM runs
      sample: {host: 127.0.0.1, port: 22220}
"""

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._argspec import per_vm_argument_spec, secret_aware_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._fleet import Fleet
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import STATES
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import WAIT_FOR, wait_timeout_problem


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        vms=dict(type="list", elements="dict", required=True),
        default_state=dict(type="str", default="started", choices=list(STATES)),
        exclusive=dict(type="bool", default=False),
        shutdown_timeout=dict(type="int", default=120),
        force=dict(type="bool", default=False),
        restart_on_change=dict(type="bool", default=False),
        qemu_binary=dict(type="str", default="qemu-system-x86_64"),
        systemd_dir=dict(type="path", default="/etc/systemd/system"),
        remove_disks=dict(type="bool", default=False),
        wait_for=dict(type="str", default="none", choices=list(WAIT_FOR)),
        wait_timeout=dict(type="int", default=300),
        wait_pattern=dict(type="str"),
    )
    module = secret_aware_module(argument_spec, supports_check_mode=True)
    if module.params["shutdown_timeout"] < 0:
        module.fail_json(msg="shutdown_timeout: must be 0 or more seconds")
    if wait_timeout_problem(module.params["wait_timeout"]):
        module.fail_json(msg=wait_timeout_problem(module.params["wait_timeout"]))
    run_module(module, lambda m: Fleet(m, per_vm_argument_spec()).run())


if __name__ == "__main__":
    main()
