# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One file per device kind: what it validates, which cfg keys it owns, the QEMU argv it adds, what it needs on
the host before launch and what it probes after.

  disk.py, cdrom.py          the VM's drives (DSKx, CDRx)
  nic.py                     a NIC in general (model, MAC, NICx keys) and the registry of backends
  nic_base.py                what a NIC backend answers (NicBackend), and the NIC spec
  nic_<backend>.py           one per -netdev backend: tap, socket, mcast, hubport, user, stream, dgram
  firmware.py, tpm.py        bios or UEFI (FIRMWARE, SECURE_BOOT), a TPM 2.0 from swtpm (TPM)
  agent.py, cidata.py        the guest agent channel (GUEST_AGENT), the cloud-init seed (CIDATA, CIDATA_ID)
  vnc.py                     the display (VNC, VNC_LISTEN)

A new NIC backend is one nic_<name>.py with a NicBackend subclass plus its line in nic.BACKENDS.
"""
