#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_info
short_description: Facts about QEMU VMs managed by qemu_init.qemu
version_added: 0.1.0
description:
  - Reports for one, several or all VMs whether they run (pidfile, process identity and QMP C(query-name)), their
    QMP run state, slot and ports, NICs with MACs and taps, serial log, cfg path and whether a restart is required.
  - Changes nothing. QMP is asked on the VM's observer socket (C(observe.sock)) for one exchange, so it works while
    the VM is being stopped.
author:
  - qemu_init.qemu maintainers (@qemu-init)
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.attributes
  - qemu_init.qemu._common.info_module
options:
  name:
    description:
      - A VM's name (long or short) or a list of names. Default is every VM in the registry or with a cfg file.
    type: raw
  qemu_binary:
    description: QEMU binary, used to compute the launch arguments that RV(vms[].restart_required) compares.
    type: str
    default: qemu-system-x86_64
seealso:
  - module: qemu_init.qemu.vm
"""

EXAMPLES = r"""
- name: Facts of every VM
  qemu_init.qemu.vm_info:
  register: all_vms

- name: Names of the running ones
  ansible.builtin.debug:
    msg: "{{ all_vms.vms | selectattr('running') | map(attribute='name') | list }}"
"""

RETURN = r"""
vms:
  description: One entry per VM.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Long name.
      type: str
      sample: web1
    exists:
      description:
        - Whether the VM has a cfg file, a registry entry or a run directory. An unknown name is reported with
          V(false) rather than failing, so a play can test for it.
      type: bool
      sample: true
    short_name:
      description: Short name in the registry (null when not registered yet).
      type: str
      sample: web1
    running:
      description: Whether the VM runs.
      type: bool
      sample: true
    pid:
      description: QEMU's pid when running.
      type: int
      sample: 4242
    status:
      description: QMP run state (C(running), C(paused), ...) when running.
      type: str
      sample: running
    slot:
      description: Registry slot.
      type: int
      sample: 0
    monitor_port:
      description:
        - Monitor port (base + slot), the slot's whether or not anything listens on it (see RV(vms[].monitor_tcp)).
      type: int
      sample: 30320
    control_port:
      description: Control port (monitor port + 100), the slot's like RV(vms[].monitor_port).
      type: int
      sample: 30420
    monitor_tcp:
      description: Whether the cfg asks for the TCP monitor and control ports (on loopback); V(null) without a cfg file.
      type: bool
      sample: false
      version_added: 0.1.0
    vnc_display:
      description: VNC display number, the slot's whether or not VNC is on (see RV(vms[].vnc)).
      type: int
      sample: 0
    vnc_port:
      description: VNC TCP port, the slot's like RV(vms[].vnc_display).
      type: int
      sample: 5900
    vnc:
      description: Whether the cfg turns VNC on; V(null) without a cfg file.
      type: bool
      sample: false
      version_added: 0.1.0
    vnc_socket:
      description:
        - The VNC display's unix socket when the cfg puts it there (C(VNC_LISTEN=unix); no TCP port then), else
          V(null).
      type: str
      sample: /run/qemu-init/web1/vnc.sock
      version_added: 0.1.0
    vnc_password_set:
      description: Whether the VNC display asks for a password (C(VNC_PASSWORD_ID)); V(null) without a cfg file.
      type: bool
      sample: false
      version_added: 0.1.0
    nics:
      description:
        - NICs as in M(qemu_init.qemu.vm_config)'s RV(qemu_init.qemu.vm_config#module:nics).
        - Also for a VM whose cfg file was written by hand and is not registered yet, with the MACs the rule gives.
          Its tap NICs then report C(tap) as C(null) unless the cfg file names the tap, because the default tap
          name comes from the short name, which the registration decides.
      type: list
      elements: dict
      sample: [{"index": 1, "netdev": "net0", "model": "e1000", "backend": "tap", "mac": "DE:AD:BE:EF:CF:CE",
                "mac_source": "derived", "tap": "web1-n1", "bridge": "br0"}]
    serial_log:
      description: File the serial console is written to.
      type: str
      sample: /run/qemu-init/web1/serial.log
    cfg_path:
      description: The cfg file (null when it is missing).
      type: str
      sample: /etc/qemu/vms/web1-qemu.cfg
    netns:
      description: Network namespace of the VM.
      type: str
      sample: null
    restart_required:
      description: The VM runs with other QEMU arguments than its cfg gives now.
      type: bool
      sample: false
    tpm:
      description:
        - For a VM with C(tpm=true), whether its swtpm runs (C(running)) and its C(pid); V(null) for a VM without a TPM.
        - A running VM whose swtpm is gone (killed, crashed) runs on with a TPM that fails every command; restart the
          VM to get a new swtpm on the same TPM state.
      type: dict
      version_added: 0.1.0
      sample: {running: true, pid: 4242}
    guest:
      description:
        - What the QEMU guest agent reports, for a running VM with C(guest_agent=true) whose agent answers within 2
          seconds; V(null) otherwise.
        - C(addresses) leaves out loopback and link-local addresses.
      type: dict
      version_added: 0.1.0
      sample:
        hostname: web1
        os: {id: debian, name: Debian GNU/Linux, version_id: "12", kernel_release: 6.1.0-28-cloud-amd64}
        interfaces: [{name: enp0s2, mac: "DE:AD:BE:EF:12:34", addresses: [10.0.2.15]}]
        addresses: [10.0.2.15]
"""

from ansible.module_utils.basic import AnsibleModule

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._observe import info


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        name=dict(type="raw"),
        qemu_binary=dict(type="str", default="qemu-system-x86_64"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, info)


if __name__ == "__main__":
    main()
