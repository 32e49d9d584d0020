#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tap
short_description: Manage a persistent tap device with C(ip)
version_added: 0.1.0
description:
  - Creates, changes or deletes a persistent tap device (C(ip tuntap)), optionally enslaved to a bridge, in
    the host's network namespace or in the one named by O(netns).
  - A persistent tap outlives the process using it, so QEMU can open it by name
    (C(-netdev tap,ifname=NAME,script=no)), also when QEMU runs as an unprivileged user (O(owner), O(group)).
  - The current state is read with C(ip -json -details link show); all changes of one task are applied by
    a single C(ip -batch) process.
  - The bridge, MTU and up/down state of an existing tap are changed in place. The kernel cannot change the
    mode (tun/tap), O(multi_queue), O(owner) or O(group) of an existing tap; when those differ the tap is
    deleted and recreated only with O(force=true), otherwise the module fails and changes nothing.
  - A non-persistent tap (one a running process such as QEMU created itself, for example through
    C(qemu-brup)) disappears when that process exits. The module never changes or deletes one unless
    O(force=true); with O(force=true), O(state=absent) deletes it (the VM loses that network link) and
    O(state=present) replaces it with a persistent tap.
  - A link of the same name that is not a tap or tun device is never changed or deleted; the module fails.
author:
  - qemu_init.qemu maintainers (@qemu-init)
options:
  name:
    description:
      - Name of the tap (1-15 bytes, no C(/), C(:), C(%) or whitespace, not C(.) or C(..)).
    type: str
    required: true
  state:
    description:
      - V(present) creates the tap or brings it to the wanted settings; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  bridge:
    description:
      - Bridge to enslave the tap to; it must exist already (see M(qemu_init.qemu.bridge)). A tap on another
        bridge is moved.
      - An empty string takes the tap off any bridge. When not set, the tap's bridge is left as it is.
    type: str
  owner:
    description:
      - User (name or numeric id) allowed to open the tap, for QEMU running as that user.
      - When not set, a new tap has no owner and an existing tap keeps its owner.
    type: str
  group:
    description:
      - Group (name or numeric id) allowed to open the tap.
      - When not set, a new tap has no group and an existing tap keeps its group.
    type: str
  multi_queue:
    description:
      - Whether the tap supports several queues (for C(-netdev tap,queues=N) with virtio-net).
      - When not set, a new tap is single-queue and an existing tap keeps its setting.
    type: bool
  mtu:
    description:
      - MTU of the tap (68-65535; the tap driver allows up to 65521).
      - When not set, a tap made on a bridge or moved onto one gets the bridge's MTU (also on a bridge with a
        smaller MTU than the kernel's default), a new tap without a bridge gets the kernel's default, and a tap
        already on its bridge keeps its MTU.
    type: int
  up:
    description:
      - Administrative state of the tap; V(true) brings it up.
    type: bool
    default: true
  force:
    description:
      - Delete and recreate a tap whose mode, O(multi_queue), O(owner) or O(group) differ, or that is not
        persistent (with O(state=present)); delete a non-persistent tap (with O(state=absent)).
      - Recreating keeps the settings not given in the task (bridge, MTU, owner, ...).
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
      - The diff shows the tap's settings (state, mode, bridge, owner, group, multi_queue, MTU, up,
        persistent) before and after.
  idempotent:
    support: full
notes:
  - Needs root (CAP_NET_ADMIN) on the managed host and iproute2's C(ip).
  - Taps made here are not persistent across reboots (they live in the kernel only).
  - O(config_dir) and O(run_dir) are accepted so that C(module_defaults) for C(group/qemu_init.qemu.all)
    works; this module does not use them.
seealso:
  - module: qemu_init.qemu.bridge
"""

EXAMPLES = r"""
- name: Tap for a VM that runs as user qemu, on bridge br0
  qemu_init.qemu.tap:
    name: web1-n1
    bridge: br0
    owner: qemu
    group: kvm

- name: Multi-queue tap with jumbo frames in a network namespace
  qemu_init.qemu.tap:
    name: db1-n1
    bridge: br-lab
    multi_queue: true
    mtu: 9000
    netns: lab

- name: Change the owner of an existing tap (the kernel needs a new tap for that)
  qemu_init.qemu.tap:
    name: web1-n1
    owner: 1001
    force: true

- name: Take a tap off its bridge and bring it down
  qemu_init.qemu.tap:
    name: web1-n1
    bridge: ""
    up: false

- name: Remove the tap
  qemu_init.qemu.tap:
    name: web1-n1
    state: absent
"""

RETURN = r"""
tap:
  description:
    - The tap's settings after the task (in check mode, as they would be).
    - With O(state=absent) only RV(tap.name) and RV(tap.state) are returned.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the tap.
      returned: always
      type: str
      sample: web1-n1
    state:
      description: Whether the tap exists.
      returned: always
      type: str
      sample: present
    mode:
      description: C(tap), or C(tun) for a tun device of that name left as it is.
      returned: when RV(tap.state=present)
      type: str
      sample: tap
    bridge:
      description: The bridge the tap is enslaved to, or V(null).
      returned: when RV(tap.state=present)
      type: str
      sample: br0
    owner:
      description: Numeric id of the user allowed to open the tap, or V(null).
      returned: when RV(tap.state=present)
      type: int
      sample: 1000
    group:
      description: Numeric id of the group allowed to open the tap, or V(null).
      returned: when RV(tap.state=present)
      type: int
      sample: 993
    multi_queue:
      description: Whether the tap supports several queues.
      returned: when RV(tap.state=present)
      type: bool
      sample: false
    mtu:
      description: MTU of the tap.
      returned: when RV(tap.state=present)
      type: int
      sample: 1500
    up:
      description: Whether the tap is administratively up.
      returned: when RV(tap.state=present)
      type: bool
      sample: true
    persistent:
      description: Whether the tap outlives the process using it (always V(true) for taps made here).
      returned: when RV(tap.state=present)
      type: bool
      sample: true
diff:
  description: The tap's settings before and after, when run in diff mode.
  returned: when diff mode is on
  type: dict
  sample:
    before: {name: web1-n1, state: absent}
    after: {name: web1-n1, state: present, mode: tap, bridge: br0, owner: null, group: null,
            multi_queue: false, mtu: 1500, up: true, persistent: true}
"""

from ansible.module_utils.basic import AnsibleModule

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import (
    IpCommand,
    check_mtu,
    converge_link,
    plan_tap,
    resolve_group,
    resolve_user,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._validate import check_ifname, check_netns


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        bridge=dict(type="str"),
        owner=dict(type="str"),
        group=dict(type="str"),
        multi_queue=dict(type="bool"),
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
    bridge = params["bridge"]
    if bridge:
        check_ifname(bridge, "bridge")
    netns = check_netns(params["netns"])
    mtu = check_mtu(params["mtu"])
    owner = resolve_user(params["owner"], "owner")
    group = resolve_group(params["group"], "group")
    ip = IpCommand(module, netns)
    plan = plan_tap(
        ip.links(), name, state=params["state"], bridge=bridge, owner=owner, group=group,
        multi_queue=params["multi_queue"], mtu=mtu, up=params["up"], force=params["force"],
    )
    return converge_link(module, ip, plan, "tap")


if __name__ == "__main__":
    main()
