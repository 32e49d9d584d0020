#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vm
short_description: Start, stop, restart and remove QEMU VMs described by qemu-init cfg files
version_added: 0.1.0
description:
  - Brings one or many VMs to a state in one call. The VMs are described by their cfg files
    (see M(qemu_init.qemu.vm_config)).
  - A VM is running when the pid in its pidfile is a live, non-zombie C(qemu-system-*) process started with that
    pidfile, and it answers QMP C(query-name) with the VM's name. A stale pidfile, or one naming a reused pid, does
    not count, and the process it names is never touched.
  - Starting creates the bridges and tap devices the VM's tap NICs need (in the VM's network namespace, if it has
    one) and launches QEMU with C(-nodefaults -no-reboot -daemonize), two QMP unix sockets (mode 0600; C(qmp.sock)
    for lifecycle control, C(observe.sock) for observers such as M(qemu_init.qemu.vm_info)), an explicit
    C(mac=) for every NIC and an explicit C(format=) for every disk. The VMs of a call are launched side by side
    (a few per core at once), except those with a connecting socket/stream NIC, which follow one at a time after
    every other VM, listeners first. A failed launch reports QEMU's error and leaves no tap, pidfile or registry
    entry.
  - Stopping presses the ACPI power button (QMP C(system_powerdown)) and presses it again every 2 seconds, because a
    press before the guest's ACPI handler is up is lost. Exit is noticed by events (pidfd, QMP C(SHUTDOWN), socket
    EOF), not by sleeping. All VMs of a call stop in parallel under one O(shutdown_timeout). After the timeout, with
    O(force=true) the ladder is the guest agent's C(guest-shutdown) (VMs with C(guest_agent=true) only), QMP C(quit), then
    SIGTERM, then SIGKILL; without it the task fails and the VMs keep
    running.
  - A VM that another call is stopping at the same moment (a second task, another playbook) is not pressed again;
    this call waits for that stop (within its own O(shutdown_timeout)) and reports RV(stop_method=joined); if
    the other call gives up while the VM still runs, this one takes the stop over. M(qemu_init.qemu.vm_info) and
    M(qemu_init.qemu.monitor) keep working during a stop.
author:
  - qemu_init.qemu maintainers (@qemu-init)
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.attributes
  - qemu_init.qemu._common.lifecycle
attributes:
  check_mode:
    support: full
    details: Predicts starts and stops (C(changed)) without doing them.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description:
      - A VM's name (long or short), or a list of names. All VMs of a list are converged in one call.
    type: raw
    required: true
  state:
    description:
      - V(present) only checks that the VM has a cfg file; it reports RV(vms[].restart_required) and changes nothing.
      - V(started) starts stopped VMs. A running VM whose cfg gives other QEMU arguments than it was launched with is
        reported with C(restart_required=true) and left alone, unless O(restart_on_change=true).
      - V(stopped) powers running VMs down gracefully.
      - V(restarted) stops running VMs and starts them again (always a change).
      - V(absent) stops the VM, then removes the taps the collection made for it, its run directory, its cfg file and
        its registry entry. Bridges stay.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
  shutdown_timeout:
    description: Seconds to wait for the guests to power off after the first ACPI power-button press.
    type: int
    default: 120
  force:
    description:
      - When guests do not power off within O(shutdown_timeout), escalate to QMP C(quit), then SIGTERM, then SIGKILL
        (each waiting a few seconds for the process to exit). Without it the task fails and the VMs keep running.
    type: bool
    default: false
  restart_on_change:
    description: With O(state=started), gracefully restart a running VM whose cfg changed since it was launched.
    type: bool
    default: false
  qemu_binary:
    description: QEMU binary (name or path) to launch.
    type: str
    default: qemu-system-x86_64
seealso:
  - module: qemu_init.qemu.vm_config
  - module: qemu_init.qemu.vm_info
"""

EXAMPLES = r"""
- name: Start two VMs in one call
  qemu_init.qemu.vm:
    name: [web1, web2]
    state: started

- name: Power a VM down gracefully, force it after 60 seconds
  qemu_init.qemu.vm:
    name: web1
    state: stopped
    shutdown_timeout: 60
    force: true
  register: stop

- name: Show how it stopped
  ansible.builtin.debug:
    msg: "{{ stop.name }} stopped by {{ stop.stop_method }} in {{ stop.stop_seconds }} s"

- name: Apply a changed cfg by restarting
  qemu_init.qemu.vm:
    name: web1
    state: started
    restart_on_change: true

- name: Remove a VM completely
  qemu_init.qemu.vm:
    name: web1
    state: absent
    force: true

- name: Start a cloud image and wait until its SSH server answers
  qemu_init.qemu.vm:
    name: debian1
    state: started
    wait_for: ssh
    wait_timeout: 600
  register: up

- name: Where to log in
  ansible.builtin.debug:
    msg: "ssh -p {{ up.ssh.port }} debian@{{ up.ssh.host }} (ready after {{ up.ready_seconds }} s)"
"""

RETURN = r"""
vms:
  description: One entry per VM, in the order of O(name).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The VM's long name.
      type: str
      sample: web1
    running:
      description: Whether the VM runs after the task (in check mode, the current state).
      type: bool
      sample: true
    pid:
      description: QEMU's pid, when running.
      type: int
      sample: 4242
    changed:
      description: Whether this VM was (or in check mode would be) started, stopped or removed.
      type: bool
      sample: true
    stop_method:
      description:
        - How the VM was stopped; null when no stop was asked for, when it did not stop, or in check mode.
        - V(acpi) the guest powered off (QEMU reported a guest shutdown), after the power button.
        - V(agent) the guest powered off after the guest agent's C(guest-shutdown), the first rung of the force ladder
          for a VM with C(guest_agent=true) whose guest did not answer the power button.
        - V(quit), V(sigterm), V(sigkill) forced by this call after O(shutdown_timeout) (O(force=true)); QEMU ended
          after QMP C(quit), after SIGTERM, or needed SIGKILL.
        - V(external) QEMU ended during the stop, but not by this call's doing and not as a guest shutdown, that is
          killed by another process (SIGKILL, the OOM killer), crashed, or ended by a C(quit) or a signal from
          elsewhere. Seen as QEMU exiting without its C(SHUTDOWN) event, or with one whose cause is not this call's.
        - V(joined) another call was stopping the VM already; this call waited until it exited and did not touch it
          (with O(state=stopped) the VM is then not changed by this call). That call's result says how it stopped.
        - V(none) it was not running; nothing was done.
        - A VM launched by an earlier version of the collection (no C(observe.sock)) gives no C(SHUTDOWN) event to
          tell by; it reports the rung the stop was on (V(acpi) or the force rung) until it is restarted.
      type: str
      choices: [acpi, agent, quit, sigterm, sigkill, external, joined, none]
      sample: acpi
    stop_seconds:
      description: Seconds from the first power-button press to QEMU's exit.
      type: float
      sample: 0.21
    start_seconds:
      description: Seconds the launch took (QEMU daemonizes once it is set up).
      type: float
      sample: 0.08
    restart_required:
      description: The VM runs with other QEMU arguments than its cfg gives now.
      type: bool
      sample: false
    ready:
      description: With O(wait_for), whether the guest was seen ready.
      type: bool
      returned: when O(wait_for) is not V(none)
      sample: true
    ready_seconds:
      description: Seconds from the launch (or the start of the wait, for a VM already running) until it was ready.
      type: float
      returned: when O(wait_for) is not V(none)
      sample: 44.2
    addresses:
      description: The guest's addresses (no loopback, no link-local) as its agent reported them while waiting; empty otherwise.
      type: list
      elements: str
      returned: when O(wait_for) is not V(none)
      sample: [10.0.2.15]
    ssh:
      description: With O(wait_for=ssh), where the SSH server answered.
      type: dict
      returned: when O(wait_for=ssh)
      sample: {host: 127.0.0.1, port: 22220}
  sample:
    - name: web1
      running: false
      pid: null
      changed: true
      stop_method: acpi
      stop_seconds: 0.21
      start_seconds: null
      restart_required: false
name:
  description: With a single VM, its name (the keys of RV(vms) are also at the top level then).
  returned: when O(name) names one VM
  type: str
  sample: web1
running:
  description: With a single VM, see RV(vms[].running).
  returned: when O(name) names one VM
  type: bool
  sample: true
pid:
  description: With a single VM, see RV(vms[].pid).
  returned: when O(name) names one VM
  type: int
  sample: 4242
stop_method:
  description: With a single VM, see RV(vms[].stop_method).
  returned: when O(name) names one VM
  type: str
  choices: [acpi, agent, quit, sigterm, sigkill, external, joined, none]
  sample: acpi
stop_seconds:
  description: With a single VM, see RV(vms[].stop_seconds).
  returned: when O(name) names one VM
  type: float
  sample: 0.21
start_seconds:
  description: With a single VM, see RV(vms[].start_seconds).
  returned: when O(name) names one VM
  type: float
  sample: 0.08
restart_required:
  description: With a single VM, see RV(vms[].restart_required).
  returned: when O(name) names one VM
  type: bool
  sample: false
ready:
  description: With a single VM, see RV(vms[].ready).
  returned: when O(name) names one VM and O(wait_for) is not V(none)
  type: bool
  sample: true
ready_seconds:
  description: With a single VM, see RV(vms[].ready_seconds).
  returned: when O(name) names one VM and O(wait_for) is not V(none)
  type: float
  sample: 44.2
addresses:
  description: With a single VM, see RV(vms[].addresses).
  returned: when O(name) names one VM and O(wait_for) is not V(none)
  type: list
  elements: str
  sample: [10.0.2.15]
ssh:
  description: With a single VM, see RV(vms[].ssh).
  returned: when O(name) names one VM and O(wait_for=ssh)
  type: dict
  sample: {host: 127.0.0.1, port: 22220}
"""

from ansible.module_utils.basic import AnsibleModule

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm import WAIT_FOR, wait_timeout_problem
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm_states import converge


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        name=dict(type="raw", required=True),
        state=dict(type="str", default="started", choices=["present", "started", "stopped", "restarted", "absent"]),
        shutdown_timeout=dict(type="int", default=120),
        force=dict(type="bool", default=False),
        restart_on_change=dict(type="bool", default=False),
        qemu_binary=dict(type="str", default="qemu-system-x86_64"),
        remove_disks=dict(type="bool", default=False),
        wait_for=dict(type="str", default="none", choices=list(WAIT_FOR)),
        wait_timeout=dict(type="int", default=300),
        wait_pattern=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["shutdown_timeout"] < 0:
        module.fail_json(msg="shutdown_timeout: must be 0 or more seconds")
    if wait_timeout_problem(module.params["wait_timeout"]):
        module.fail_json(msg=wait_timeout_problem(module.params["wait_timeout"]))
    run_module(module, converge)


if __name__ == "__main__":
    main()
