#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge
short_description: Manage a Linux bridge with C(ip)
version_added: 0.1.0
description:
  - Creates, changes or deletes a Linux bridge with iproute2's C(ip), in the host's network namespace or
    in the one named by O(netns).
  - The current state is read with C(ip -json -details link show); all changes of one task are applied
    by a single C(ip -batch) process.
  - A link of the same name that is not a bridge is never changed or deleted; the module fails instead.
  - Bridges made here are not persistent across reboots (they live in the kernel only); run the task at
    boot, for example through the P(qemu_init.qemu.host#role) role.
author:
  - qemu_init.qemu maintainers (@qemu-init)
options:
  name:
    description:
      - Name of the bridge (1-15 bytes, no C(/), C(:), C(%) or whitespace, not C(.) or C(..)).
    type: str
    required: true
  state:
    description:
      - V(present) creates the bridge or brings its settings to the wanted ones.
      - V(absent) deletes it. A bridge that still has ports is only deleted with O(force=true); the ports
        themselves are released, not deleted.
    type: str
    choices: [present, absent]
    default: present
  stp:
    description:
      - Whether the kernel's Spanning Tree Protocol runs on the bridge.
      - Off by default on purpose; with STP on, a new port (such as the tap of a VM that just started) goes
        through the listening and learning states and forwards nothing for about 30 seconds.
    type: bool
    default: false
  mtu:
    description:
      - MTU of the bridge (68-65535). When not set, a new bridge gets the kernel's default and an existing
        bridge keeps its MTU; the kernel then moves it to the smallest MTU of its ports as ports come and go.
      - When set, the MTU is set on the existing bridge (after creating it), which makes the kernel keep it
        whatever ports join or leave. A bridge found at another MTU is set back, and kept from then on. A bridge
        already at this MTU is left alone (the kernel does not tell whether it keeps it).
    type: int
  up:
    description:
      - Administrative state of the bridge; V(true) brings it up.
    type: bool
    default: true
  force:
    description:
      - With O(state=absent), delete the bridge even when it still has ports.
    type: bool
    default: false
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.netns
  - qemu_init.qemu._common.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the bridge's settings (state, MTU, STP, up, ports) before and after.
  idempotent:
    support: full
notes:
  - Needs root (CAP_NET_ADMIN) on the managed host and iproute2's C(ip).
  - O(config_dir) and O(run_dir) are accepted so that C(module_defaults) for C(group/qemu_init.qemu.all)
    works; this module does not use them.
seealso:
  - module: qemu_init.qemu.tap
"""

EXAMPLES = r"""
- name: Bridge br0 for the VMs, STP off, up
  qemu_init.qemu.bridge:
    name: br0

- name: Bridge with jumbo frames inside a network namespace
  qemu_init.qemu.bridge:
    name: br-lab
    mtu: 9000
    netns: lab

- name: Remove a bridge even if taps are still attached (they are released, not deleted)
  qemu_init.qemu.bridge:
    name: br-old
    state: absent
    force: true
"""

RETURN = r"""
bridge:
  description:
    - The bridge's settings after the task (in check mode, as they would be).
    - With O(state=absent) only RV(bridge.name) and RV(bridge.state) are returned.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the bridge.
      returned: always
      type: str
      sample: br0
    state:
      description: Whether the bridge exists.
      returned: always
      type: str
      sample: present
    mtu:
      description: MTU of the bridge.
      returned: when RV(bridge.state=present)
      type: int
      sample: 1500
    stp:
      description: Whether STP runs on the bridge.
      returned: when RV(bridge.state=present)
      type: bool
      sample: false
    up:
      description: Whether the bridge is administratively up.
      returned: when RV(bridge.state=present)
      type: bool
      sample: true
    ports:
      description: Names of the links enslaved to the bridge, sorted.
      returned: when RV(bridge.state=present)
      type: list
      elements: str
      sample: [web1-n1, db1-n1]
diff:
  description: The bridge's settings before and after, when run in diff mode.
  returned: when diff mode is on
  type: dict
  sample:
    before: {name: br0, state: absent}
    after: {name: br0, state: present, mtu: 1500, stp: false, up: true, ports: []}
"""

from ansible.module_utils.basic import AnsibleModule

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand, check_mtu, converge_link, plan_bridge
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_ifname, check_netns


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        stp=dict(type="bool", default=False),
        mtu=dict(type="int"),
        up=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
        netns=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, converge)


def converge(module):
    params = module.params
    name = check_ifname(params["name"], "name")
    netns = check_netns(params["netns"])
    mtu = check_mtu(params["mtu"])
    ip = IpCommand(module, netns)
    plan = plan_bridge(ip.links(), name, state=params["state"], stp=params["stp"], mtu=mtu, up=params["up"], force=params["force"])
    return converge_link(module, ip, plan, "bridge")


if __name__ == "__main__":
    main()
