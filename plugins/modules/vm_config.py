#!/usr/bin/python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_config
short_description: Manage a QEMU VM's qemu-init cfg file and registry entry
version_added: 0.1.0
description:
  - Renders C(<config_dir>/vms/<name>-qemu.cfg) in the qemu-init format (C(NAME), C(OS), C(DSKx), C(CDRx), C(NICx),
    C(BRIDGE_IFNAME), plus this collection's extension keys) from structured parameters.
  - Registers the VM in the registry C(<config_dir>/qemu-init.reg) with a short name and a slot, which gives its
    monitor port (base from C(monitor.conf) + slot), control port (monitor port + 100) and VNC display (slot).
    A VM keeps its slot across runs. A new VM gets the lowest slot whose ports no other VM uses and no program
    listens on in the VM's network namespace (O(netns), else the host's).
  - Keys of an existing cfg file that this module does not manage, and its comments, are kept.
  - MAC addresses are derived from the VM's name, OS and NIC number (C(DE:AD:BE:EF:hh:ll)) unless a NIC sets one;
    a MAC that another registered VM already uses is an error naming both VMs.
  - Does not start or stop anything; see M(qemu_init.qemu.vm).
author:
  - qemu_init.qemu maintainers (@qemu-init)
extends_documentation_fragment:
  - qemu_init.qemu._common
  - qemu_init.qemu._common.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - The VM's name (its long name), or the short name of a VM already in the registry.
      - 1-64 characters of letters, digits, C(.), C(_) and C(-), starting with a letter or digit.
      - Exactly one of O(name) and O(vms) is required.
    type: str
  vms:
    description:
      - Many VMs in one call (the batch form), instead of O(name) and the per-VM options at the top level.
      - Each item is a dict of the per-VM options of this module, O(name) required in each, O(state) per item;
        that is every option except O(vms), O(config_dir), O(run_dir) and O(qemu_binary). Per-VM options at the
        top level must be left at their defaults.
      - All items are validated before anything is changed, and planned under one registry lock, so the VMs of
        one call get distinct slots and a MAC used twice among them is an error naming both. The cfg files are
        written and the registry saved once; if a write fails, the cfg files already written are put back.
      - Errors name the item, for example C(vms[2].nics[0].mcast).
    type: list
    elements: dict
    version_added: 0.1.0
  state:
    description:
      - V(present) writes the cfg file and registers the VM.
      - V(absent) removes the cfg file and the registry entry. A running VM is not touched and the task fails;
        use M(qemu_init.qemu.vm) with O(qemu_init.qemu.vm#module:state=absent) to stop and remove it.
    type: str
    choices: [present, absent]
    default: present
  short_name:
    description:
      - Short name in the registry (1-10 characters of lower-case letters, digits, C(_) and C(-)). Tap devices are
        named after it (C(<short_name>-n<NIC number>)).
      - Default is the registered short name, or for a new VM the name itself when it fits, else a short form of
        the name with 4 hex digits of its hash.
    type: str
  os:
    description: OS label; part of the MAC derivation, so changing it changes the derived MACs.
    type: str
    default: linux
  memory:
    description: Memory in MiB. Default is QEMU's own default.
    type: int
  cpus:
    description: Number of virtual CPUs.
    type: int
  machine:
    description: QEMU machine type, for example V(q35) or V(pc). Default is QEMU's default machine.
    type: str
  accel:
    description:
      - Accelerator. V(auto) uses KVM when C(/dev/kvm) works and TCG otherwise.
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  disks:
    description: Disk images, in order (C(DSK1), C(DSK2), ...).
    type: list
    elements: dict
    default: []
    suboptions:
      file:
        description:
          - Path of the image. Must exist unless O(disks[].base_image) or O(disks[].size) makes it.
          - A relative path lives under the VM's directory in O(state_dir) (C(<state_dir>/<name>/<file>)) and must
            stay there; C(../) or a symbolic link leading out is an error.
        type: path
        required: true
      format:
        description:
          - Image format, always passed explicitly to QEMU.
          - Left out, it is what C(qemu-img info) reads when the cfg first names an existing file, and then kept in the
            cfg (a guest that writes an image header into a raw disk cannot change it later); V(qcow2) for a file
            the module makes. A hand-written cfg without C(DSKx_FORMAT) means V(qcow2) for C(*.qcow2), else V(raw).
        type: str
        choices: [raw, qcow2, qed, vdi, vmdk, vhdx, vpc, luks]
      base_image:
        description:
          - Absolute path of an image to make O(disks[].file) from, as a qcow2 overlay (C(qemu-img create -b ... -F
            ...)) when O(disks[].file) does not exist. The base is never written, so many VMs may share it.
          - An existing O(disks[].file) on another base, the disk as its own base, a missing base and a backing chain
            that loops are errors, found before anything is made.
        type: path
        version_added: 0.1.0
      size:
        description:
          - Virtual size, like V(20G), V(512M) or a number of bytes (binary units, as qemu-img reads them).
          - Makes a blank disk when there is neither a file nor a base image; grows a smaller disk (offline with
            C(qemu-img resize), or while the VM runs with QMP C(block_resize)). A size below the disk's current size
            is an error (disks are never shrunk).
        type: str
        version_added: 0.1.0
      cache:
        description: QEMU's cache mode for the drive (C(cache=)); QEMU's default when not set.
        type: str
        choices: [none, writeback, writethrough, directsync, unsafe]
        version_added: 0.1.0
      discard:
        description: Whether the guest's discard (TRIM) requests free space in the image (V(unmap)) or are ignored.
        type: str
        choices: [ignore, unmap]
        version_added: 0.1.0
      interface:
        description: Drive interface.
        type: str
        choices: [ide, virtio, scsi, none]
        default: ide
      readonly:
        description: Attach the image read-only.
        type: bool
        default: false
  firmware:
    description:
      - V(bios) (QEMU's SeaBIOS) or V(uefi) (OVMF, found through QEMU's firmware descriptors in
        C(/usr/share/qemu/firmware), as libvirt finds it; package C(ovmf) or C(edk2-ovmf)).
      - With V(uefi) the VM's UEFI variables are copied once from the firmware's template to
        C(<state_dir>/<name>/efi-vars.fd) and kept across restarts.
      - A host with no such firmware (none for secure boot, with O(secure_boot)) is refused when the cfg would
        change, before anything is written.
    type: str
    choices: [bios, uefi]
    default: bios
    version_added: 0.1.0
  secure_boot:
    description:
      - UEFI secure boot with Microsoft's keys enrolled (O(firmware=uefi) only); the machine is V(q35) with SMM.
      - The keys live in the VM's UEFI variables (C(<state_dir>/<name>/efi-vars.fd)). When this changes, the VM's next
        start gives it a fresh copy of the new firmware template's variables; the boot entries the guest wrote are lost.
    type: bool
    default: false
    version_added: 0.1.0
  tpm:
    description:
      - A TPM 2.0 emulated by C(swtpm) (a host package), its state in C(<state_dir>/<name>/tpm/); started before
        QEMU and ended with it.
      - A host without C(swtpm) is refused when the cfg would change, before anything is written.
    type: bool
    default: false
    version_added: 0.1.0
  guest_agent:
    description:
      - A virtio-serial channel C(org.qemu.guest_agent.0) for the QEMU guest agent, on a 0600 socket in the run dir.
        M(qemu_init.qemu.vm_info) then reports the guest's hostname, OS and addresses, and M(qemu_init.qemu.vm) can
        wait for the agent (O(qemu_init.qemu.vm#module:wait_for=agent)).
    type: bool
    default: false
    version_added: 0.1.0
  cloud_init:
    description:
      - A cloud-init NoCloud seed (a FAT volume labelled C(cidata)), made on the managed host with Python's standard
        library, kept in C(<state_dir>/<name>/cidata.img) (mode 0600) and attached read-only.
      - Rewritten only when its content changes. The C(instance-id) defaults to a digest of the content, so a change
        makes cloud-init run again at the next boot (the VM reports RV(restart_required)); C(local-hostname) defaults
        to the VM's name.
      - The content never appears in results, diffs or logs. O(cloud_init.user_data) and O(cloud_init.vendor_data)
        are replaced by C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER) in the invocation the module logs and returns (also in
        the items of O(vms)); unlike C(no_log) options, words of them that appear elsewhere (a user named like the
        VM) are not masked in the rest of the result.
    type: dict
    version_added: 0.1.0
    suboptions:
      user_data:
        description: A dict (written as C(#cloud-config) YAML) or a string used as is (a script, a MIME multipart).
        type: raw
      meta_data:
        description: A dict or a YAML string; C(instance-id) and C(local-hostname) default as described above.
        type: raw
      network_config:
        description: cloud-init network configuration (version 1 or 2), a dict or a YAML string.
        type: raw
      vendor_data:
        description: Vendor data, a dict or a string, like O(cloud_init.user_data).
        type: raw
  cdroms:
    description: ISO images, in order (C(CDR1), C(CDR2), ...). Each must exist.
    type: list
    elements: path
    default: []
  kernel:
    description: Kernel to boot directly (C(-kernel)). Must exist.
    type: path
  initrd:
    description: Initial ramdisk for O(kernel).
    type: path
  append:
    description: Kernel command line for O(kernel).
    type: str
  nics:
    description:
      - Network adapters, in order (C(NIC1), C(NIC2), ...). NIC x is QEMU netdev C(net<x-1>).
    type: list
    elements: dict
    default: []
    suboptions:
      model:
        description:
          - QEMU device model, checked against the QEMU binary's C(-device help) when the binary is installed.
        type: str
        default: e1000
      backend:
        description:
          - V(tap) a tap device on a bridge; V(socket) a TCP socket to another VM (O(nics[].listen) or O(nics[].connect));
            V(mcast) a UDP multicast bus (O(nics[].mcast)); V(hubport) a QEMU hub (the old C(-net) "VLAN", O(nics[].hub));
            V(user) user-mode networking; V(stream) and V(dgram) the QEMU 7.2 socket backends.
        type: str
        choices: [tap, socket, mcast, hubport, user, stream, dgram]
        default: tap
      bridge:
        description: Bridge for a V(tap) NIC. Default is O(bridge).
        type: str
      tap:
        description: Tap device name for a V(tap) NIC. Default C(<short_name>-n<NIC number>).
        type: str
      listen:
        description:
          - V(socket)/V(stream) NIC that listens, C([HOST]:PORT); V(stream) also C(unix:/path). An empty HOST means
            V(127.0.0.1), never every address.
          - For V(dgram), the local address, C(HOST:PORT) or C(unix:/path).
          - In one M(qemu_init.qemu.vm) call, VMs with listening NICs are started first.
        type: str
      connect:
        description:
          - V(socket)/V(stream) NIC that connects, C(HOST:PORT); V(stream) also C(unix:/path).
          - For V(dgram), the remote address, C(HOST:PORT) or C(unix:/path).
          - A V(socket)/V(stream) NIC that finds nothing listening at start is an error (QEMU would keep running
            with a dead link).
        type: str
      mcast:
        description: Multicast group and port of a V(mcast) NIC, for example V(230.0.0.1:1234).
        type: str
      localaddr:
        description: Local address a V(mcast) NIC sends from.
        type: str
      hub:
        description: Hub number of a V(hubport) NIC. Give the hub a way out with O(hubs).
        type: int
      hostfwd:
        description:
          - Host forwards of a V(user) NIC, C(PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT).
          - An empty host address means V(127.0.0.1), never every address.
        type: list
        elements: str
      restrict:
        description:
          - V(true) isolates the guest of a V(user) NIC (QEMU's C(restrict=on)); it can contact neither the host nor,
            through the host, anything outside. Slirp's own DHCP server, DNS address and gateway still answer it, and
            its O(nics[].hostfwd) forwards still reach it.
          - Written as C(NICx_RESTRICT="yes"), only when V(true). V(false), the same as leaving it out, is accepted on
            every backend.
        type: bool
        version_added: 0.1.0
      mac:
        description:
          - Explicit MAC address (6 octets, unicast, not all-zero). Default derived from O(name), O(os) and the NIC number.
        type: str
  hubs:
    description:
      - Uplinks of QEMU hubs (the old C(-net) "VLAN"s). For each, a tap device on a bridge is plugged into hub
        O(hubs[].id), so the guest NICs on that hub (O(nics[].backend=hubport)) reach the bridge.
      - Written as C(HUBx), C(HUBx_BRIDGE), C(HUBx_TAP).
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
    suboptions:
      id:
        description: The hub number; at least one NIC must be on it.
        type: int
        required: true
      bridge:
        description: Bridge of the uplink tap. Default is O(bridge).
        type: str
      tap:
        description: Name of the uplink tap. Default C(<short_name>-h<id>).
        type: str
  bridge:
    description: Default bridge of V(tap) NICs and hub uplinks (qemu-init's C(BRIDGE_IFNAME)).
    type: str
    default: br0
  netns:
    description:
      - Network namespace the VM, its taps and its bridges live in.
      - A new VM's slot is chosen clear of the ports listened on in this namespace (read with C(ip netns exec),
        which needs root; a namespace that does not exist yet has no listeners).
    type: str
  vnc:
    description: Give the VM a VNC display (display = slot, port 5900 + slot).
    type: bool
    default: false
  vnc_listen:
    description:
      - Address the VNC display listens on (TCP port 5900 + slot), or V(unix).
      - V(unix) puts the display on the unix socket C(<run_dir>/<name>/vnc.sock) (mode 0600, in the 0700 run dir)
        and on no TCP port at all; RV(vnc_socket) names it. Only root on the host can connect; reach it from
        elsewhere through SSH (for example C(ssh -L 5901:/run/qemu-init/web1/vnc.sock root@host)).
      - One option says where the display is, so no pair of options can contradict each other.
    type: str
    default: 127.0.0.1
  vnc_password:
    description:
      - A password the VNC display asks for (RFB "VNC authentication"); O(vnc=true) is required.
      - At most 8 printable ASCII characters (VNC authentication keys DES with the password; QEMU would ignore
        the rest). This protects little against anyone who can watch the connection; see the collection's
        docs/security.md and prefer O(vnc_listen=unix) or an SSH tunnel.
      - Written to C(<state_dir>/<name>/vnc-password) (mode 0600, directory 0700), only when it changes, and read
        by QEMU through a C(secret) object; it never appears in QEMU's command line, the cfg file, results, diffs
        or logs (C(no_log)). The cfg gets C(VNC_PASSWORD_ID), a random id drawn anew whenever the file changes, so
        a new password makes a running VM report RV(restart_required).
      - Left out, the display has no password and a password file left from before is removed.
    type: str
    version_added: 0.1.0
  monitor_tcp:
    description:
      - Open qemu-init's TCP human monitor on the monitor port and the control port, on 127.0.0.1 and ::1 only.
        The modules themselves always use the QMP unix socket.
    type: bool
    default: false
  autostart:
    description:
      - Start the VM when the host boots, and power it down gracefully when the host shuts down.
      - Writes C(AUTOSTART="yes") into the cfg file and, on a host with O(systemd_dir), enables the VM's systemd
        instance C(qemu-init@<name>.service) (the symlink in C(<systemd_dir>/qemu-init.target.wants/) that
        C(systemctl enable) makes, so it works without a running systemd too). V(false) removes both.
      - The units and the C(qemu-init) command come from the role C(qemu_init.qemu.host); on OpenRC hosts its init
        script starts every VM whose cfg says C(AUTOSTART="yes").
    type: bool
    default: false
    version_added: 0.1.0
  serial_log:
    description: File the guest's serial console is written to. Default C(<run_dir>/<name>/serial.log).
    type: path
  extra_args:
    description:
      - Further QEMU arguments, one list element per argument (no shell is involved).
      - Options the collection manages (for example C(-netdev), C(-drive), C(-qmp), C(-daemonize)) are refused with the
        parameter to use instead; so is the legacy C(-net).
      - So are listeners on other than a loopback address or a unix socket (for example
        C(-chardev socket,...,server=on) without a loopback C(host=), C(-gdb tcp::1234), C(-incoming tcp:0:4444),
        C(-display vnc=0.0.0.0:0)) and C(-incoming exec:); see the collection's docs/security.md.
    type: list
    elements: str
    default: []
  qemu_binary:
    description:
      - QEMU binary (name or path) asked for its device list to check NIC models. When it is not installed the
        check is skipped.
    type: str
    default: qemu-system-x86_64
  systemd_dir:
    description:
      - The systemd unit directory where O(autostart) enables the VM's instance. A host without it (OpenRC) gets no
        link, only the cfg key.
    type: path
    default: /etc/systemd/system
    version_added: 0.1.0
seealso:
  - module: qemu_init.qemu.vm
  - module: qemu_init.qemu.bridge
  - module: qemu_init.qemu.tap
"""

EXAMPLES = r"""
- name: A VM with one disk and two NICs on br0
  qemu_init.qemu.vm_config:
    name: web1
    os: debian
    memory: 1024
    cpus: 2
    disks:
      - file: /var/lib/qemu/web1.qcow2
        interface: virtio
    nics:
      - model: virtio-net-pci
      - model: e1000
        bridge: br1

- name: Two VMs joined by a TCP socket instead of a bridge
  qemu_init.qemu.vm_config:
    name: "{{ item.name }}"
    kernel: /srv/guest/vmlinuz
    initrd: /srv/guest/initrd.img
    append: console=ttyS0
    nics:
      - backend: socket
        listen: "{{ item.listen | default(omit) }}"
        connect: "{{ item.connect | default(omit) }}"
  loop:
    - {name: left, listen: "127.0.0.1:10001"}
    - {name: right, connect: "127.0.0.1:10001"}

- name: Many VMs in one call (one registry lock, one write of the registry)
  qemu_init.qemu.vm_config:
    vms:
      - name: node1
        memory: 512
        nics: [{bridge: br0}]
      - name: node2
        memory: 512
        nics: [{bridge: br0}]
      - name: retired-node
        state: absent

- name: Set the directories for every module of the collection at once
  module_defaults:
    group/qemu_init.qemu.all:
      config_dir: /srv/qemu/etc
      run_dir: /srv/qemu/run
  block:
    - name: Remove a VM's cfg file and registry entry
      qemu_init.qemu.vm_config:
        name: old-vm
        state: absent
"""

RETURN = r"""
vms:
  description:
    - With O(vms), one result per item, in order, each with the keys documented here for a single VM and
      C(changed).
  returned: when O(vms) is given
  type: list
  elements: dict
  sample:
    - name: web1
      changed: true
      cfg_exists: true
      running: false
      pid: null
      restart_required: false
      short_name: web1
      path: /etc/qemu/vms/web1-qemu.cfg
      slot: 0
      monitor_port: 30320
cfg_exists:
  description:
    - Whether the VM's cfg file exists once this call is done. In check mode nothing is written, so it is V(false)
      for a VM whose file would be created (and V(true) for one whose file would be removed).
    - What a play needs to know before it asks M(qemu_init.qemu.vm) to start the VM (the P(qemu_init.qemu.vms#role)
      role leaves such VMs out of its lifecycle calls in check mode).
  returned: always
  type: bool
  sample: true
  version_added: 0.1.0
running:
  description:
    - Whether the VM runs now, found as M(qemu_init.qemu.vm) finds it - its pidfile names a live C(qemu-system-*)
      process whose command line carries that pidfile, and which answers QMP C(query-name) with the VM's name.
    - Read after the cfg file is written; nothing is started or stopped.
  returned: when O(state=present)
  type: bool
  sample: true
  version_added: 0.1.0
pid:
  description: The process id of the running VM's QEMU; V(null) when it does not run.
  returned: when O(state=present)
  type: int
  sample: 4242
  version_added: 0.1.0
restart_required:
  description:
    - V(true) when the VM runs with other launch arguments than its cfg file gives after this call (in check mode,
      would give), so that C(qemu_init.qemu.vm state=started) would report it with C(restart_required=true), or
      restart it with O(qemu_init.qemu.vm#module:restart_on_change=true). V(false) when it does not run, or was
      started without a launch record (by hand).
  returned: when O(state=present)
  type: bool
  sample: false
  version_added: 0.1.0
name:
  description: The VM's long name (also when O(name) was its short name).
  returned: when O(name) is given
  type: str
  sample: web1
short_name:
  description: The VM's short name in the registry.
  returned: when O(state=present)
  type: str
  sample: web1
path:
  description:
    - Path of the cfg file. As with any module returning C(path), Ansible adds the file's C(mode), C(owner) and
      C(size) when it exists.
  returned: when O(name) is given
  type: str
  sample: /etc/qemu/vms/web1-qemu.cfg
slot:
  description: The VM's slot in the registry.
  returned: when O(state=present)
  type: int
  sample: 0
monitor_port:
  description: The VM's monitor port (base + slot); listened on only with O(monitor_tcp=true).
  returned: when O(state=present)
  type: int
  sample: 30320
control_port:
  description: The VM's control port (monitor port + 100); listened on only with O(monitor_tcp=true).
  returned: when O(state=present)
  type: int
  sample: 30420
vnc_display:
  description: The VM's VNC display number (the slot); used only with O(vnc=true).
  returned: when O(state=present)
  type: int
  sample: 0
vnc_port:
  description: TCP port of the VNC display (5900 + display).
  returned: when O(state=present)
  type: int
  sample: 5900
vnc_socket:
  description: The VNC display's unix socket with O(vnc_listen=unix) (the display then has no TCP port), else V(null).
  returned: when O(state=present)
  type: str
  sample: /run/qemu-init/web1/vnc.sock
  version_added: 0.1.0
macs:
  description: MAC of each NIC, in order.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["DE:AD:BE:EF:CF:CE"]
nics:
  description: Each NIC as it resolves.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    index:
      description: NIC number x (C(NICx)).
      type: int
      sample: 1
    netdev:
      description: QEMU netdev id.
      type: str
      sample: net0
    model:
      description: Device model.
      type: str
      sample: e1000
    backend:
      description: Network backend.
      type: str
      sample: tap
    mac:
      description: MAC address.
      type: str
      sample: DE:AD:BE:EF:CF:CE
    mac_source:
      description: V(derived) from name, OS and number, or V(explicit).
      type: str
      sample: derived
    tap:
      description: Tap device name; V(null) for backends without a tap.
      type: str
      sample: web1-n1
    bridge:
      description: Bridge of a tap NIC; V(null) for other backends.
      type: str
      sample: br0
    listen:
      description: What a V(socket)/V(stream) NIC listens on, or a V(dgram) NIC's local address, as given; else V(null).
      type: str
      sample: null
      version_added: 0.1.0
    connect:
      description: What a V(socket)/V(stream) NIC connects to, or a V(dgram) NIC's remote address, as given; else V(null).
      type: str
      sample: null
      version_added: 0.1.0
    mcast:
      description: Multicast C(group:port) of a V(mcast) NIC; else V(null).
      type: str
      sample: null
      version_added: 0.1.0
    localaddr:
      description: Local address a V(mcast) NIC sends from, as given; else V(null).
      type: str
      sample: null
      version_added: 0.1.0
    hub:
      description: Hub id of a V(hubport) NIC; else V(null).
      type: int
      sample: null
      version_added: 0.1.0
    hostfwd:
      description: Host forwards of a V(user) NIC, as given; empty for other backends.
      type: list
      elements: str
      sample: []
      version_added: 0.1.0
    restrict:
      description: Whether a V(user) NIC is restricted to slirp's own services and its forwards; V(null) for other backends.
      type: bool
      sample: null
      version_added: 0.1.0
  sample:
    - index: 1
      netdev: net0
      model: e1000
      backend: tap
      mac: DE:AD:BE:EF:CF:CE
      mac_source: derived
      tap: web1-n1
      bridge: br0
hubs:
  description: Each hub uplink as it resolves.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{"id": 0, "tap": "web1-h0", "bridge": "br0"}]
autostart:
  description: Whether the VM starts at boot (O(autostart)).
  returned: when O(state=present)
  type: bool
  sample: false
cfg:
  description: The keys this module manages in the cfg file, as written.
  returned: when O(state=present)
  type: dict
  sample: {"NAME": "web1", "OS": "debian", "NIC1": "e1000", "BRIDGE_IFNAME": "br0"}
"""

# _zipload first: the module_utils imported after it load from AnsiballZ's zip compiled once instead of twice.
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.qemu_init.qemu.plugins.module_utils._argspec import per_vm_argument_spec, secret_aware_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import common_argument_spec, run_module
from ansible_collections.qemu_init.qemu.plugins.module_utils._vm_config import VmConfig


def main():
    per_vm = per_vm_argument_spec()
    argument_spec = common_argument_spec()
    argument_spec.update(per_vm)
    argument_spec["name"] = dict(type="str")
    argument_spec.update(
        vms=dict(type="list", elements="dict"),
        qemu_binary=dict(type="str", default="qemu-system-x86_64"),
        systemd_dir=dict(type="path", default="/etc/systemd/system"),
    )
    module = secret_aware_module(argument_spec, supports_check_mode=True,
                                 required_one_of=[("name", "vms")], mutually_exclusive=[("name", "vms")])
    run_module(module, lambda m: VmConfig(m, per_vm).run())


if __name__ == "__main__":
    main()
