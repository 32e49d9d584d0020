#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monitor
short_description: Send a monitor (HMP) or QMP command to a running QEMU VM
version_added: 0.1.0
description:
  - The Ansible counterpart of qemu-init's C(qemu-cmd), through the VM's observer QMP unix socket
    (C(<run_dir>/<name>/observe.sock)), held for this one command. It works while the VM is being stopped (the stop
    holds the other socket, C(qmp.sock)); a VM launched by an earlier version of the collection has only C(qmp.sock).
    Two clients of the observer socket at the same moment take turns; each waits up to 5 seconds for its turn.
  - Read-only commands (HMP C(info ...), QMP C(query-*)) report C(changed=false) and also run in check mode; every
    other command reports C(changed=true) and is not sent in check mode.
author:
  - qemu_init.qemu maintainers (@qemu-init)
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.attributes
attributes:
  check_mode:
    support: partial
    details: Only read-only commands are sent in check mode.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Commands that change the VM report a change every time.
options:
  name:
    description: The VM's name (long or short). It must be running.
    type: str
    required: true
  command:
    description: A human monitor (HMP) command line, for example V(info status).
    type: str
  qmp:
    description: A QMP command name, for example V(query-status).
    type: str
  arguments:
    description: Arguments of the O(qmp) command.
    type: dict
seealso:
  - module: qemu_init.qemu.vm_info
"""

EXAMPLES = r"""
- name: Ask the human monitor
  qemu_init.qemu.monitor:
    name: web1
    command: info status
  register: status

- name: Eject a CD through QMP
  qemu_init.qemu.monitor:
    name: web1
    qmp: eject
    arguments:
      id: ide1-cd0
"""

RETURN = r"""
name:
  description: The VM's long name.
  returned: always
  type: str
  sample: web1
output:
  description: The HMP command's output.
  returned: when O(command) was given and sent
  type: str
  sample: "VM status: running\r\n"
return:
  description: The QMP command's return value.
  returned: when O(qmp) was given and sent
  type: raw
  sample: {"status": "running", "running": true}
"""

from ansible.module_utils.basic import AnsibleModule

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._observe import monitor


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        command=dict(type="str"),
        qmp=dict(type="str"),
        arguments=dict(type="dict"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("command", "qmp"), ("command", "arguments")],
        required_one_of=[("command", "qmp")],
    )
    run_module(module, monitor)


if __name__ == "__main__":
    main()
