# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A FAT12 image with a volume label and a few files in its root directory, written with the standard library.

What a cloud-init NoCloud seed needs (label `cidata`, files user-data, meta-data, network-config, vendor-data),
made on the managed host without mkfs.vfat, mtools, genisoimage or xorriso. Why an image and not QEMU's vvfat
driver over a directory: vvfat is a read-write emulation that distributions may leave out (RHEL's qemu-kvm
allows a fixed list of block drivers), while a FAT12 image is read by every QEMU as a raw disk, and it is one
0600 file that can be compared byte for byte. Written in ~1 ms for a few KiB of content.

The layout is the classic one (Microsoft's FAT specification, as mkfs.fat writes it for a small volume):
boot sector with BIOS parameter block, two FATs, a fixed 512-entry root directory, then the data clusters.
Long names (user-data is not a valid 8.3 name) get VFAT long-name entries, which Linux's vfat reads.
The output depends only on the label and the files, so equal content gives an equal image.
"""

from __future__ import annotations

import hashlib
import struct
import typing as t

SECTOR = 512
ROOT_ENTRIES = 512
MAX_CLUSTERS = 4084  # FAT12's limit
MIN_SECTORS = 2048  # a 1 MiB volume: blkid and the kernel are happy with it, and it costs nothing


def _short_name(index: int) -> bytes:
    """A unique, valid 8.3 name for the index-th file; its real name is in the long-name entries."""
    return ("SEED~%d" % (index + 1)).ljust(8).encode("ascii") + b"   "


def _lfn_checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _lfn_entries(name: str, short: bytes) -> list[bytes]:
    """The long-name directory entries for `name`, in the order they are stored (last part first)."""
    units = list(name.encode("utf-16-le"))
    chars = [bytes(units[i:i + 2]) for i in range(0, len(units), 2)]
    chars.append(b"\x00\x00")
    while len(chars) % 13:
        chars.append(b"\xff\xff")
    parts = [chars[i:i + 13] for i in range(0, len(chars), 13)]
    checksum = _lfn_checksum(short)
    entries = []
    for seq, part in enumerate(parts, start=1):
        order = seq | (0x40 if seq == len(parts) else 0)
        entries.append(struct.pack("<B10sBBB12sH4s", order, b"".join(part[0:5]), 0x0F, 0, checksum,
                                   b"".join(part[5:11]), 0, b"".join(part[11:13])))
    return list(reversed(entries))


def _geometry(sizes: t.Sequence[int]) -> tuple[int, int, int]:
    """(sectors per cluster, sectors per FAT, total sectors) for files of these sizes."""
    for spc in (1, 2, 4, 8, 16, 32, 64):
        cluster = spc * SECTOR
        data_clusters = sum(-(-size // cluster) for size in sizes)
        clusters = max(data_clusters, (MIN_SECTORS // spc))
        if clusters > MAX_CLUSTERS:
            continue
        fat_sectors = -(-((clusters + 2) * 3 // 2 + 1) // SECTOR)
        total = 1 + 2 * fat_sectors + ROOT_ENTRIES * 32 // SECTOR + clusters * spc
        return spc, fat_sectors, total
    raise ValueError("%d bytes do not fit a FAT12 volume" % sum(sizes))


def fat12_image(label: str, files: t.Sequence[tuple[str, bytes]]) -> bytes:
    """The image of a FAT12 volume labelled `label` (at most 11 characters) holding `files` [(name, content)]."""
    vol_label = label.upper().encode("ascii")
    if len(vol_label) > 11 or not vol_label:
        raise ValueError("a FAT volume label has 1 to 11 characters")
    if len(files) > (ROOT_ENTRIES - 1) // 4:
        raise ValueError("too many files for the root directory")
    spc, fat_sectors, total = _geometry([len(content) for _name, content in files])
    cluster_size = spc * SECTOR
    serial = struct.unpack("<I", hashlib.sha256(vol_label + b"".join(n.encode() + c for n, c in files)).digest()[:4])[0]

    boot = bytearray(SECTOR)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"QEMUINIT"
    struct.pack_into("<HBHBHHBHHHII", boot, 11, SECTOR, spc, 1, 2, ROOT_ENTRIES, total if total < 0x10000 else 0,
                     0xF8, fat_sectors, 32, 64, 0, total if total >= 0x10000 else 0)
    struct.pack_into("<BBBI11s8s", boot, 36, 0x80, 0, 0x29, serial, vol_label.ljust(11), b"FAT12   ")
    boot[510:512] = b"\x55\xaa"

    fat = [0xFF8, 0xFFF]
    root = [vol_label.ljust(11) + b"\x08" + bytes(20)]  # the volume label entry
    data = bytearray()
    for index, (name, content) in enumerate(files):
        clusters = -(-len(content) // cluster_size)
        first = len(fat) if clusters else 0  # an empty file has no cluster
        if clusters:
            fat.extend(range(first + 1, first + clusters))
            fat.append(0xFFF)
            data += content.ljust(clusters * cluster_size, b"\x00")
        short = _short_name(index)
        root.extend(_lfn_entries(name, short))
        # 8.3 entry: archive attribute, a fixed date (1 Jan 2020) so equal content gives an equal image.
        root.append(struct.pack("<11sBBBHHHHHHHI", short, 0x20, 0, 0, 0, 0x5021, 0x5021, 0, 0, 0x5021, first, len(content)))

    fat_bytes = bytearray(fat_sectors * SECTOR)
    for i, value in enumerate(fat):
        offset = i * 3 // 2
        if i % 2 == 0:
            fat_bytes[offset] = value & 0xFF
            fat_bytes[offset + 1] = (fat_bytes[offset + 1] & 0xF0) | (value >> 8)
        else:
            fat_bytes[offset] = (fat_bytes[offset] & 0x0F) | ((value & 0x0F) << 4)
            fat_bytes[offset + 1] = value >> 4
    root_bytes = b"".join(root).ljust(ROOT_ENTRIES * 32, b"\x00")
    image = bytes(boot) + bytes(fat_bytes) * 2 + root_bytes + bytes(data)
    return image.ljust(total * SECTOR, b"\x00")
