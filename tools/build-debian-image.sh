#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Build the project's Debian 12 cloud image (see docs/test-guest.md, "The Debian image"):
# systemd as PID 1, cloud-init (NoCloud), openssh-server, qemu-guest-agent, python3, made
# from Debian packages and UEFI-bootable: a GPT disk with an EFI system partition holding a
# unified kernel image at EFI/BOOT/BOOTX64.EFI (no boot loader) and an ext4 root.
#
#   tools/build-debian-image.sh [OUTDIR]     default: ${QI_DEBIAN_IMAGE_DIR:-<repo>/.cache/debian-image}
#
# Writes into OUTDIR:
#   debian-12.qcow2   the base image (compressed qcow2): boot overlays on it, never it
#   manifest          key=value lines: cache_key, image, default_user, partition UUIDs,
#                     kernel command line, package versions, ...
# How: `debootstrap --variant=minbase --include=...` into OUTDIR/rootfs (kept, keyed by suite,
# mirror, the package list and the versions apt lists for the suite), trimmed; then a copy of
# it is configured (the files in tools/debian-image/, chroot for file edits only: nothing is
# started), its initramfs regenerated with fewer modules, and the image assembled without loop
# devices or mounts: objcopy makes the unified kernel image from systemd-boot-efi's stub,
# mkfs.vfat + mmd/mcopy the ESP, mkfs.ext4 -d the root, sfdisk the GPT on a plain file,
# dd conv=notrunc places the partitions, qemu-img convert -c makes the qcow2.
# Cached: nothing is rebuilt while the manifest's cache_key matches (the root's key, the
# image size, the files in tools/debian-image/, this script and tools/guest-lib.sh). The
# versions are asked of apt (one apt-cache call, 1-2 s on a busy machine) only when apt's
# package lists changed since the manifest was written: up to date takes about 0.1 s.
# Needs root (debootstrap, chroot), debootstrap, e2fsprogs (mkfs.ext4 -d), dosfstools,
# mtools, fdisk (sfdisk), binutils (objcopy, objdump), qemu-utils. Only apt and debootstrap
# use the network (the Debian mirror); nothing is installed on the host.
#
# Environment:
#   QI_DEBIAN_IMAGE_DIR       default OUTDIR
#   QI_DEBIAN_IMAGE_SUITE     Debian suite (default bookworm, Debian 12)
#   QI_DEBIAN_IMAGE_MIRROR    Debian mirror (default: the host's apt sources' first Debian
#                             archive URI, else http://deb.debian.org/debian)
#   QI_DEBIAN_IMAGE_EXTRA     comma-separated packages added to the image's list
#   QI_DEBIAN_IMAGE_SIZE      virtual disk size (default 2G; the qcow2 stores only what is used)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-${QI_DEBIAN_IMAGE_DIR:-$REPO/.cache/debian-image}}
SUITE=${QI_DEBIAN_IMAGE_SUITE:-bookworm}
DISK_SIZE=${QI_DEBIAN_IMAGE_SIZE:-2G}
SRC=$REPO/tools/debian-image
IMAGE_NAME=debian-12.qcow2
# On top of minbase. python3-cffi-backend: debootstrap does not resolve virtual packages, and
# python3-cryptography (cloud-init -> python3-jwt/oauthlib) needs python3-cffi-backend-api-*.
# iproute2: cloud-init's networkd renderer wants ip. cloud-guest-utils: growpart.
# systemd-boot-efi: the EFI stub of the unified kernel image (taken from the root, not the host).
PACKAGES=systemd,systemd-sysv,udev,dbus,cloud-init,openssh-server,qemu-guest-agent,python3
PACKAGES+=,python3-cffi-backend,linux-image-amd64,initramfs-tools,systemd-boot-efi,sudo
PACKAGES+=,cloud-guest-utils,iproute2,e2fsprogs,netbase
[[ -z ${QI_DEBIAN_IMAGE_EXTRA:-} ]] || PACKAGES+=,$QI_DEBIAN_IMAGE_EXTRA
SRC_FILES=(cloud.cfg dpkg-nodoc initramfs.conf initramfs-modules wait-online.conf)
# Bump when the debootstrap call or the trimming changes: the kept root is rebuilt.
ROOTFS_RECIPE=1
ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
# The Discoverable Partitions Specification's "root, x86-64" type.
ROOT_TYPE=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709

GUEST_TOOL=build-debian-image
# shellcheck source=tools/guest-lib.sh
. "$REPO/tools/guest-lib.sh"

# A digest of apt's package lists and sources (names, sizes, mtimes) and of what is asked of
# them: while it is unchanged, so are the versions apt lists, and no apt-cache call is needed.
apt_stamp() {
    {
        echo "$SUITE $MIRROR $PACKAGES"
        stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* /etc/apt/sources.list \
            /etc/apt/sources.list.d/* /etc/apt/preferences /etc/apt/preferences.d/* 2>/dev/null || true
    } | sha256sum | cut -c1-16
}

outputs_present() {
    [[ -s $OUTDIR/$IMAGE_NAME && -f $OUTDIR/manifest ]]
}

# A UUID (version 4 layout) from a seed string: the same inputs give the same image.
uuid_from() {
    local h
    h=$(printf '%s' "$1" | sha256sum | cut -c1-32)
    printf '%s-%s-4%s-%x%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" $((0x${h:16:1} & 3 | 8)) "${h:17:3}" "${h:20:12}"
}

# Bytes of a size like 2G, 512M (powers of 1024).
size_bytes() {
    local n=${1%[KMGTkmgt]} unit=${1: -1}
    [[ $n =~ ^[0-9]+$ ]] || die "not a size: $1"
    case $unit in
        [Kk]) echo $((n << 10)) ;;
        [Mm]) echo $((n << 20)) ;;
        [Gg]) echo $((n << 30)) ;;
        [Tt]) echo $((n << 40)) ;;
        *) echo "$1" ;;
    esac
}

# debootstrap into a fresh directory, trim it, and put it in place as OUTDIR/rootfs.
build_rootfs() {
    local key=$1 new=$OUTDIR/.rootfs.new
    debootstrap_minbase "$new"
    # What tools/debian-image/dpkg-nodoc keeps out of later installs, out of this one too.
    find "$new/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$new/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$new/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$new"/usr/share/man/* "$new"/usr/share/info/* "$new"/usr/share/lintian/* \
        "$new"/var/cache/apt/* "$new"/var/lib/apt/lists/* "$new"/var/cache/debconf/*-old \
        "$new"/var/log/*
    mkdir -p "$new/var/lib/apt/lists/partial" "$new/var/cache/apt/archives/partial"
    install -m 0644 "$SRC/dpkg-nodoc" "$new/etc/dpkg/dpkg.cfg.d/01_qemu-init-nodoc"
    compile_python_stdlib "$new"
    echo "$key" >"$new/.qi-rootfs-key"
    rm -rf "$OUTDIR/rootfs"
    mv "$new" "$OUTDIR/rootfs"
}

# Configure the copy of the root at $1 for booting as a cloud image. File edits only
# (chroot runs systemctl enable, which only makes links, and mkinitramfs): nothing starts.
configure_root() {
    local root=$1 root_partuuid=$2
    install -m 0644 "$SRC/cloud.cfg" "$root/etc/cloud/cloud.cfg.d/99_qemu-init.cfg"
    install -m 0644 "$SRC/initramfs.conf" "$root/etc/initramfs-tools/conf.d/qemu-init.conf"
    install -m 0644 "$SRC/initramfs-modules" "$root/etc/initramfs-tools/modules"
    install -d -m 0755 "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
    install -m 0644 "$SRC/wait-online.conf" \
        "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/qemu-init.conf"
    # cloud-init writes the network config for systemd-networkd (tools/debian-image/cloud.cfg).
    chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1 ||
        die "systemctl enable systemd-networkd failed in the image"
    # Masked: the apt timers (they would reach for the mirror from every test VM), systemd's
    # TPM2 PCR barriers, which fail without the tpm2-tss libraries when a TPM is attached, and
    # e2scrub (LVM snapshots the image has none of; its boot-time reap took 1 min under TCG).
    local unit
    for unit in apt-daily.timer apt-daily-upgrade.timer systemd-pcrphase.service \
        systemd-pcrphase-sysinit.service systemd-pcrphase-initrd.service \
        e2scrub_reap.service e2scrub_all.timer; do
        ln -sfn /dev/null "$root/etc/systemd/system/$unit"
    done
    # sshd and cloud-init are enabled by their packages; the guest agent is started by udev
    # when the virtio-serial port org.qemu.guest_agent.0 appears. Checked, not assumed.
    [[ -L $root/etc/systemd/system/multi-user.target.wants/ssh.service ]] || die "ssh.service is not enabled in the image"
    [[ -L $root/etc/systemd/system/cloud-init.target.wants/cloud-init.service ||
        -L $root/etc/systemd/system/multi-user.target.wants/cloud-init.service ]] ||
        die "cloud-init.service is not enabled in the image"
    grep -rqs 'org.qemu.guest_agent.0' "$root/usr/lib/udev/rules.d/" "$root/lib/udev/rules.d/" ||
        die "qemu-guest-agent's udev rule is missing in the image"
    # Per-VM identity comes at first boot: an empty machine-id (systemd makes one), no SSH host
    # keys (cloud-init makes them), no random seed, no root password.
    : >"$root/etc/machine-id"
    [[ -L $root/var/lib/dbus/machine-id ]] || rm -f "$root/var/lib/dbus/machine-id"
    rm -f "$root"/etc/ssh/ssh_host_*key* "$root/var/lib/systemd/random-seed" "$root/etc/resolv.conf"
    sed -i 's/^root:[^:]*:/root:*:/' "$root/etc/shadow"
    echo debian >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    printf '# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\nPARTUUID=%s\t/\text4\terrors=remount-ro\t0\t1\n' \
        "$root_partuuid" >"$root/etc/fstab"
    printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
    # The initramfs with the modules of tools/debian-image/initramfs-modules only.
    rm -f "$root"/boot/initrd.img-*
    chroot "$root" mkinitramfs -o "/boot/initrd.img-$KREL" "$KREL" >"$WORK/mkinitramfs.log" 2>&1 || {
        cat "$WORK/mkinitramfs.log" >&2
        die "mkinitramfs failed in the image"
    }
}

# The unified kernel image: systemd-boot-efi's stub with os-release, the command line, the
# kernel and the initramfs added as PE sections, each at the next aligned address after the last.
build_uki() {
    local root=$1 cmdline=$2 out=$3
    local stub=$root/usr/lib/systemd/boot/efi/linuxx64.efi.stub
    [[ -f $stub ]] || die "no EFI stub in the image ($stub; systemd-boot-efi)"
    local align end=0 vma size line
    align=$((16#$(LC_ALL=C objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
    ((align > 0)) || die "cannot read the stub's section alignment"
    # objdump -h: "Idx Name Size VMA LMA File-off Algn": the end of the highest section.
    while read -r -a line; do
        [[ ${#line[@]} -ge 7 && ${line[0]} =~ ^[0-9]+$ ]] || continue
        size=$((16#${line[2]}))
        vma=$((16#${line[3]}))
        ((vma + size > end)) && end=$((vma + size))
    done < <(LC_ALL=C objdump -h "$stub")
    ((end > 0)) || die "cannot read the stub's sections"
    printf '%s' "$cmdline" >"$WORK/cmdline"
    local -a args=()
    local name file
    for name in osrel cmdline linux initrd; do
        case $name in
            osrel) file=$root/usr/lib/os-release ;;
            cmdline) file=$WORK/cmdline ;;
            linux) file=$root/boot/vmlinuz-$KREL ;;
            initrd) file=$root/boot/initrd.img-$KREL ;;
        esac
        [[ -f $file ]] || die "missing $file"
        end=$(((end + align - 1) / align * align))
        args+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' "$end")")
        end=$((end + $(stat -L -c %s "$file")))
    done
    objcopy "${args[@]}" "$stub" "$out" || die "objcopy failed to make the unified kernel image"
}

# The GPT disk: ESP (partition 1) and root (partition 2, last, so growpart can extend it).
assemble_disk() {
    local root=$1 uki=$2 raw=$3
    local total esp_mib esp_start esp_sectors root_start root_sectors
    total=$(($(size_bytes "$DISK_SIZE") / 512))
    # Room for the UKI plus 16 MiB, at least 64 MiB.
    esp_mib=$(($(stat -c %s "$uki") / 1048576 + 16))
    ((esp_mib >= 64)) || esp_mib=64
    esp_start=2048
    esp_sectors=$((esp_mib * 2048))
    root_start=$((esp_start + esp_sectors))
    # Up to the last whole MiB before the backup GPT (33 sectors).
    root_sectors=$(((total - 34 - root_start) / 2048 * 2048))
    ((root_sectors >= 1024 * 2048)) || die "QI_DEBIAN_IMAGE_SIZE=$DISK_SIZE is too small (1 GiB root at least)"

    rm -f "$WORK/esp.img"
    mkfs.vfat -F 32 -n ESP -i "${ESP_VOLID}" -C "$WORK/esp.img" $((esp_sectors / 2)) >/dev/null ||
        die "mkfs.vfat failed"
    MTOOLS_SKIP_CHECK=1 mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT || die "mmd failed"
    MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/esp.img" "$uki" ::/EFI/BOOT/BOOTX64.EFI || die "mcopy failed"

    mkfs.ext4 -q -F -L root -U "$FS_UUID" -E root_owner=0:0 -d "$root" "$WORK/root.img" \
        "$((root_sectors / 2))k" >/dev/null || die "mkfs.ext4 -d failed"

    rm -f "$raw"
    truncate -s $((total * 512)) "$raw"
    sfdisk -q --no-reread --no-tell-kernel "$raw" >/dev/null <<EOF || die "sfdisk failed"
label: gpt
label-id: $DISK_GUID
first-lba: 2048
start=$esp_start, size=$esp_sectors, type=$ESP_TYPE, uuid=$ESP_PARTUUID, name="esp"
start=$root_start, size=$root_sectors, type=$ROOT_TYPE, uuid=$ROOT_PARTUUID, name="root"
EOF
    dd if="$WORK/esp.img" of="$raw" bs=1M seek=$((esp_start / 2048)) conv=notrunc,sparse status=none ||
        die "dd of the ESP failed"
    dd if="$WORK/root.img" of="$raw" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none ||
        die "dd of the root failed"
    rm -f "$WORK/esp.img" "$WORK/root.img"
    ESP_MIB=$esp_mib
    ROOT_MIB=$((root_sectors / 2048))
}

# cloud-init's default user in the image's /etc/cloud/cloud.cfg (system_info.default_user.name).
default_user() {
    awk '
        /^system_info:/ { si = 1; next }
        si && /^[^ #]/ { si = 0 }
        si && /^ +default_user:/ { du = 1; next }
        du && /^ +name:/ { print $2; exit }
        du && /^ {0,3}[^ ]/ { du = 0 }
    ' "$1/etc/cloud/cloud.cfg"
}

main() {
    local tool
    for tool in debootstrap chroot mkfs.ext4 mkfs.vfat mmd mcopy sfdisk objcopy objdump qemu-img \
        apt-cache sha256sum flock truncate dd awk; do
        have "$tool" || die "$tool is required"
    done
    local f
    for f in "${SRC_FILES[@]}"; do
        [[ -f $SRC/$f ]] || die "missing $SRC/$f"
    done
    [[ $EUID -eq 0 ]] || die "debootstrap and chroot need root"
    size_bytes "$DISK_SIZE" >/dev/null
    lock_outdir

    local start=$EPOCHREALTIME
    MIRROR=${QI_DEBIAN_IMAGE_MIRROR:-$(apt_debian_mirror)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    MIRROR=${MIRROR%/}
    ensure_apt_lists

    local -a pkgs
    IFS=, read -r -a pkgs <<<"$PACKAGES"
    local versions rootfs_key nodoc_sum stamp
    stamp=$(apt_stamp)
    if outputs_present && [[ $(manifest_get apt_stamp) == "$stamp" ]]; then
        versions=$(manifest_get suite_versions) # apt's lists did not change since
    else
        versions=$(apt_suite_versions "$SUITE" "$MIRROR" "${pkgs[@]}")
    fi
    nodoc_sum=$(sha256sum "$SRC/dpkg-nodoc" | cut -d' ' -f1)
    rootfs_key="recipe=$ROOTFS_RECIPE suite=$SUITE mirror=$MIRROR variant=minbase nodoc=${nodoc_sum:0:16} packages=$versions"
    local have_key=
    [[ -f $OUTDIR/rootfs/.qi-rootfs-key ]] && have_key=$(<"$OUTDIR/rootfs/.qi-rootfs-key")
    if [[ -z $versions ]]; then
        # apt offers none of the packages (offline, no lists): keep what is there.
        [[ -n $have_key ]] || die "apt offers none of $PACKAGES (check the apt sources)"
        log "warning: apt offers none of the packages; keeping the cached root ($have_key)"
        rootfs_key=$have_key
    fi

    local files_sum self_sum cache_key
    files_sum=$(cd "$SRC" && cat "${SRC_FILES[@]}" | sha256sum | cut -d' ' -f1)
    # The builder is this script and the helpers it sources: a change to either rebuilds the image.
    self_sum=$(cat "${BASH_SOURCE[0]}" "$REPO/tools/guest-lib.sh" | sha256sum | cut -d' ' -f1)
    cache_key="$rootfs_key size=$DISK_SIZE files=${files_sum:0:16} builder=${self_sum:0:16}"
    if [[ $have_key == "$rootfs_key" ]] && outputs_present && [[ $(manifest_get cache_key) == "$cache_key" ]]; then
        echo "debian image up to date in $OUTDIR ($(elapsed "$start") s)"
        return 0
    fi

    WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    local rootfs_built=no t_rootfs=0
    if [[ $have_key != "$rootfs_key" ]]; then
        local t0=$EPOCHREALTIME
        build_rootfs "$rootfs_key"
        rootfs_built=yes
        t_rootfs=$(elapsed "$t0")
    fi

    local t1=$EPOCHREALTIME
    KREL=
    local k
    for k in "$OUTDIR"/rootfs/boot/vmlinuz-*; do
        [[ -f $k ]] && KREL=${k##*/vmlinuz-}
    done
    [[ -n $KREL ]] || die "no kernel in $OUTDIR/rootfs/boot"
    # Identifiers from the cache key: the same inputs give the same UUIDs.
    DISK_GUID=$(uuid_from "disk $cache_key")
    ESP_PARTUUID=$(uuid_from "esp $cache_key")
    ROOT_PARTUUID=$(uuid_from "root $cache_key")
    FS_UUID=$(uuid_from "rootfs $cache_key")
    ESP_VOLID=$(printf '%s' "esp $cache_key" | sha256sum | cut -c1-8)
    local cmdline="root=PARTUUID=$ROOT_PARTUUID rw console=tty0 console=ttyS0,115200"

    log "configuring a copy of the root (kernel $KREL)"
    cp -a "$OUTDIR/rootfs" "$WORK/root"
    rm -f "$WORK/root/.qi-rootfs-key"
    configure_root "$WORK/root" "$ROOT_PARTUUID"
    local user
    user=$(default_user "$WORK/root")
    [[ -n $user ]] || die "no default_user name in the image's /etc/cloud/cloud.cfg"

    log "unified kernel image, ESP, root file system, GPT"
    build_uki "$WORK/root" "$cmdline" "$WORK/BOOTX64.EFI"
    local uki_size initrd_size
    uki_size=$(stat -c %s "$WORK/BOOTX64.EFI")
    initrd_size=$(stat -c %s "$WORK/root/boot/initrd.img-$KREL")
    # The initramfs lives in the UKI; the root keeps the kernel package's files only.
    rm -f "$WORK/root/boot/initrd.img-$KREL"
    local installed root_used
    installed=$(dpkg-query --admindir="$WORK/root/var/lib/dpkg" -W -f='${Package}=${Version},' "${pkgs[@]}" 2>/dev/null | sed 's/,$//')
    root_used=$(du -sxm "$WORK/root" | cut -f1)
    assemble_disk "$WORK/root" "$WORK/BOOTX64.EFI" "$WORK/disk.raw"
    rm -rf "$WORK/root"

    log "qemu-img convert -c (qcow2)"
    local -a qopts=(-c -O qcow2)
    # zstd: faster to write here and to read in every test boot than zlib (QEMU >= 5.1).
    if qemu-img create -q -f qcow2 -o compression_type=zstd "$WORK/probe.qcow2" 1M >/dev/null 2>&1; then
        qopts+=(-o compression_type=zstd)
    fi
    rm -f "$WORK/probe.qcow2"
    qemu-img convert "${qopts[@]}" "$WORK/disk.raw" "$WORK/$IMAGE_NAME" || die "qemu-img convert failed"
    rm -f "$WORK/disk.raw"
    local t_image
    t_image=$(elapsed "$t1")

    local qcow_size
    qcow_size=$(stat -c %s "$WORK/$IMAGE_NAME")
    {
        echo "# qemu_init.qemu Debian image, written by tools/build-debian-image.sh"
        echo "cache_key=$cache_key"
        echo "image=$IMAGE_NAME"
        echo "image_format=qcow2"
        echo "image_virtual_size=$(size_bytes "$DISK_SIZE")"
        echo "image_file_size=$qcow_size"
        echo "firmware=uefi"
        echo "default_user=$user"
        echo "python=/usr/bin/python3"
        echo "cmdline=$cmdline"
        echo "disk_guid=$DISK_GUID"
        echo "esp_partuuid=$ESP_PARTUUID"
        echo "esp_size_mib=$ESP_MIB"
        echo "root_partuuid=$ROOT_PARTUUID"
        echo "root_fs_uuid=$FS_UUID"
        echo "root_fs_label=root"
        echo "root_size_mib=$ROOT_MIB"
        echo "root_used_mib=$root_used"
        echo "uki_size=$uki_size"
        echo "initrd_size=$initrd_size"
        echo "kernel_release=$KREL"
        echo "suite=$SUITE"
        echo "mirror=$MIRROR"
        echo "packages=$installed"
        echo "suite_versions=$versions"
        echo "apt_stamp=$stamp"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "build_seconds_rootfs=$t_rootfs"
        echo "build_seconds_image=$t_image"
    } >"$WORK/manifest"

    # Output first, manifest last: a reader that sees the new manifest sees the new image.
    rm -f "$OUTDIR/manifest"
    mv -f "$WORK/$IMAGE_NAME" "$OUTDIR/$IMAGE_NAME"
    mv -f "$WORK/manifest" "$OUTDIR/manifest"
    echo "debian image built in $(elapsed "$start") s (root rebuilt: $rootfs_built, ${t_rootfs} s; image ${t_image} s): $IMAGE_NAME $((qcow_size / 1048576)) MiB, in $OUTDIR"
}

main "$@"
