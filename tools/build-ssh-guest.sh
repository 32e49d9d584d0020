#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Build the SSH guest (see docs/test-guest.md, "The SSH guest"): a Debian 12 root file
# system with openssh-server and python3, so that Ansible (and molecule) can manage the
# guest over SSH through a user-mode host forward on 127.0.0.1.
#
#   tools/build-ssh-guest.sh [OUTDIR]     default: ${QI_SSH_GUEST_DIR:-<repo>/.cache/ssh-guest}
#
# Writes into OUTDIR:
#   rootfs.img     raw ext4 image of the root (sparse; boot a qcow2 overlay of it, never it)
#   vmlinux        Debian's kernel (PVH ELF; vmlinuz when the kernel has no PVH entry)
#   initrd.img     tools/build-guest.sh's busybox initramfs with virtio_blk/ext4 modules and
#                  tools/ssh-guest/init as /init: mounts /dev/vda and switch_roots into it
#   id_ed25519     the SSH key root's authorized_keys holds (a new one per build)
#   manifest       key=value lines: cache_key, kernel, initrd, image, ssh_user, ssh_key, ...
# How: `debootstrap --variant=minbase --include=openssh-server,python3,busybox-static` into
# OUTDIR/rootfs (kept, keyed by suite, mirror and the packages' candidate versions), trimmed
# (docs, man pages, locales, apt lists), then tools/ssh-guest/{rcS,poweroff}, /etc/inittab
# (busybox init as PID 1, no systemd) and the public key are copied in and
# `mkfs.ext4 -d` makes the image without mounting anything. The kernel part is
# tools/build-guest.sh run into OUTDIR/kernel with another module list (sharing the test
# guest's downloaded kernel .deb), in parallel with debootstrap.
# Cached: nothing is rebuilt while the manifest's cache_key matches (the root's key, the
# kernel build's cache_key, the files in tools/ssh-guest/, this script and tools/guest-lib.sh): about a second.
# Needs root (debootstrap), debootstrap, mkfs.ext4 (e2fsprogs >= 1.43), ssh-keygen, cpio
# or busybox, and whatever tools/build-guest.sh needs. Only apt and debootstrap use the
# network (the Debian mirror); nothing is installed on the host.
#
# Environment:
#   QI_SSH_GUEST_DIR       default OUTDIR
#   QI_SSH_GUEST_SUITE     Debian suite (default bookworm, Debian 12)
#   QI_SSH_GUEST_MIRROR    Debian mirror (default: the host's apt sources' first Debian
#                          archive URI, else http://deb.debian.org/debian)
#   QI_SSH_GUEST_PACKAGES  comma-separated packages on top of minbase
#                          (default openssh-server,python3,busybox-static; busybox-static is
#                          PID 1 and acpid, so keep it)
#   QI_SSH_GUEST_SIZE      size of the ext4 image (default 1G; the file is sparse)
#   QI_GUEST_DIR, QI_GUEST_DEB_DIR   where tools/build-guest.sh keeps the kernel .deb
#                          (shared with the test guest: default <repo>/.cache/guest/debs)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-${QI_SSH_GUEST_DIR:-$REPO/.cache/ssh-guest}}
SUITE=${QI_SSH_GUEST_SUITE:-bookworm}
PACKAGES=${QI_SSH_GUEST_PACKAGES:-openssh-server,python3,busybox-static}
IMAGE_SIZE=${QI_SSH_GUEST_SIZE:-1G}
KERNEL_DEB_DIR=${QI_GUEST_DEB_DIR:-${QI_GUEST_DIR:-$REPO/.cache/guest}/debs}
# virtio disk + ext4 (crc32c_generic: ext4's metadata checksums ask the crypto API for
# crc32c, which nothing could modprobe here), the power button (evdev, button) and NICs.
MODULES="evdev button virtio_pci virtio_net e1000 virtio_blk crc32c_generic ext4"
SRC=$REPO/tools/ssh-guest
# Bump when the debootstrap call or the trimming changes: the kept root is rebuilt.
ROOTFS_RECIPE=2

GUEST_TOOL=build-ssh-guest
# shellcheck source=tools/guest-lib.sh
. "$REPO/tools/guest-lib.sh"


outputs_present() {
    [[ -s $OUTDIR/rootfs.img && -s $OUTDIR/initrd.img && -s $OUTDIR/id_ed25519 && -f $OUTDIR/manifest ]] &&
        [[ -s $OUTDIR/vmlinux || -s $OUTDIR/vmlinuz ]]
}

# debootstrap into a fresh directory, trim it, and put it in place as OUTDIR/rootfs.
build_rootfs() {
    local key=$1 new=$OUTDIR/.rootfs.new
    debootstrap_minbase "$new"
    # What a guest without network or a human never reads: about half the size.
    rm -rf "$new"/usr/share/doc/* "$new"/usr/share/man/* "$new"/usr/share/info/* \
        "$new"/usr/share/locale/* "$new"/var/cache/apt/* "$new"/var/lib/apt/lists/* \
        "$new"/var/cache/debconf/*-old "$new"/var/log/* "$new"/etc/resolv.conf
    mkdir -p "$new/var/lib/apt/lists/partial" "$new/var/cache/apt/archives/partial"
    compile_python_stdlib "$new"
    echo "$key" >"$new/.qi-rootfs-key"
    rm -rf "$OUTDIR/rootfs"
    mv "$new" "$OUTDIR/rootfs"
}

# Our boot files and the public key into the kept root (overwritten on every image build).
customize_rootfs() {
    local root=$OUTDIR/rootfs pubkey=$1
    install -d -m 0755 "$root/etc/qi" "$root/etc/acpi/PWRF" "$root/etc/ssh/sshd_config.d"
    install -m 0755 "$SRC/rcS" "$root/etc/qi/rcS"
    install -m 0755 "$SRC/poweroff" "$root/etc/qi/poweroff"
    ln -sfn /etc/qi/poweroff "$root/etc/acpi/PWRF/00000080"
    # busybox acpid maps KEY_POWER to PWRF and runs <confdir>/PWRF/00000080.
    printf 'PWRF PWRF/00000080\nPWRB PWRF/00000080\n' >"$root/etc/qi/acpid.conf"
    # busybox init: run the boot script, then only reap orphans (no getty, no respawn).
    printf '# busybox init (the SSH guest has no systemd); see /etc/qi/rcS\n::sysinit:/etc/qi/rcS\n' \
        >"$root/etc/inittab"
    cat >"$root/etc/ssh/sshd_config.d/qi.conf" <<'EOF'
# qemu_init.qemu SSH guest: root with the build's key only; no DNS lookups (no network).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    echo qi-ssh-guest >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    : >"$root/etc/fstab"
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
}

# Fixed-mtime newc cpio (gzip) of the one file that replaces the base initramfs's /init.
build_init_overlay() {
    local out=$1 dir=$WORK/overlay
    rm -rf "$dir"
    mkdir -p "$dir"
    install -m 0755 "$SRC/init" "$dir/init"
    touch -h -d @0 "$dir/init"
    local -a cpio_cmd
    if have cpio && cpio --help 2>&1 | grep -q -- --reproducible; then
        cpio_cmd=(cpio --quiet -o -H newc -R 0:0 --reproducible)
    else
        cpio_cmd=(busybox cpio -o -H newc -R 0:0)
    fi
    (cd "$dir" && echo init | "${cpio_cmd[@]}") | gzip -9n >"$out"
}

main() {
    local tool
    for tool in debootstrap mkfs.ext4 ssh-keygen apt-cache gzip sha256sum flock; do
        have "$tool" || die "$tool is required"
    done
    local f
    for f in init rcS poweroff; do
        [[ -f $SRC/$f ]] || die "missing $SRC/$f"
    done
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    mkdir -p "$OUTDIR"
    OUTDIR=$(cd "$OUTDIR" && pwd)
    exec 9>"$OUTDIR/.lock"
    flock 9 # one build per OUTDIR at a time; the second one then finds it up to date

    local start=$EPOCHREALTIME
    MIRROR=${QI_SSH_GUEST_MIRROR:-$(apt_debian_mirror)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    # Before build-guest.sh starts below, so that the two never run apt-get update side by side.
    ensure_apt_lists

    # The kernel and base initramfs: tools/build-guest.sh, side by side with the rest.
    WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$KERNEL_DEB_DIR"
    QI_GUEST_MODULES=$MODULES QI_GUEST_DEB_DIR=$KERNEL_DEB_DIR \
        bash "$REPO/tools/build-guest.sh" "$OUTDIR/kernel" >"$WORK/kernel.log" 2>&1 &
    local kernel_pid=$!

    local versions rootfs_key
    versions=$(candidate_versions)
    rootfs_key="recipe=$ROOTFS_RECIPE suite=$SUITE mirror=$MIRROR variant=minbase packages=$versions"
    local have_key=
    [[ -f $OUTDIR/rootfs/.qi-rootfs-key ]] && have_key=$(<"$OUTDIR/rootfs/.qi-rootfs-key")
    if [[ -z $versions ]]; then
        # apt offers none of the packages (offline, no lists): keep what is there.
        if [[ -n $have_key ]]; then
            log "warning: apt offers none of $PACKAGES; keeping the cached root ($have_key)"
            rootfs_key=$have_key
        else
            wait "$kernel_pid" || true
            die "apt offers none of $PACKAGES (check the apt sources)"
        fi
    fi
    local rootfs_built=no
    if [[ $have_key != "$rootfs_key" ]]; then
        build_rootfs "$rootfs_key"
        rootfs_built=yes
    fi

    if ! wait "$kernel_pid"; then
        cat "$WORK/kernel.log" >&2
        die "tools/build-guest.sh failed for the kernel part"
    fi
    local kernel_key kernel_file=vmlinux
    kernel_key=$(sed -n 's/^cache_key=//p' "$OUTDIR/kernel/manifest" | head -n1)
    grep -qx 'pvh_vmlinux=yes' "$OUTDIR/kernel/manifest" || kernel_file=vmlinuz

    local src_sum self_sum cache_key
    src_sum=$(cat "$SRC/init" "$SRC/rcS" "$SRC/poweroff" | sha256sum | cut -d' ' -f1)
    # The builder is this script and the helpers it sources: a change to either rebuilds the image.
    self_sum=$(cat "${BASH_SOURCE[0]}" "$REPO/tools/guest-lib.sh" | sha256sum | cut -d' ' -f1)
    cache_key="$rootfs_key size=$IMAGE_SIZE kernel=[$kernel_key] files=${src_sum:0:16} builder=${self_sum:0:16}"
    if [[ $rootfs_built == no ]] && outputs_present && [[ $(manifest_get cache_key) == "$cache_key" ]]; then
        echo "ssh guest up to date in $OUTDIR ($(elapsed "$start") s)"
        return 0
    fi

    local out=$WORK/out
    mkdir -p "$out"
    log "making the image (key, boot files, mkfs.ext4 -d)"
    ssh-keygen -q -t ed25519 -N '' -C "qi-ssh-guest@$(hostname)" -f "$out/id_ed25519" >/dev/null
    customize_rootfs "$out/id_ed25519.pub"
    mkfs.ext4 -q -F -L qi-root -E root_owner=0:0 -d "$OUTDIR/rootfs" "$out/rootfs.img" "$IMAGE_SIZE" >/dev/null ||
        die "mkfs.ext4 -d failed"
    build_init_overlay "$WORK/init-overlay.cpio.gz"
    # Concatenated archives: the kernel unpacks both, the second one's /init wins.
    cat "$OUTDIR/kernel/initrd.img" "$WORK/init-overlay.cpio.gz" >"$out/initrd.img"

    local apparent used
    apparent=$(stat -c %s "$out/rootfs.img")
    used=$(($(stat -c %b "$out/rootfs.img") * $(stat -c %B "$out/rootfs.img")))
    {
        echo "# qemu_init.qemu SSH guest, written by tools/build-ssh-guest.sh"
        echo "cache_key=$cache_key"
        echo "kernel=$kernel_file"
        echo "initrd=initrd.img"
        echo "append=console=ttyS0 panic=-1 quiet root=/dev/vda"
        echo "image=rootfs.img"
        echo "image_format=raw"
        echo "image_size=$apparent"
        echo "image_allocated=$used"
        echo "ssh_user=root"
        echo "ssh_key=id_ed25519"
        echo "python=/usr/bin/python3"
        echo "guest_ip=10.0.2.15/24"
        echo "suite=$SUITE"
        echo "mirror=$MIRROR"
        echo "packages=$versions"
        grep -E '^(kernel_package|kernel_package_version|kernel_release|load_order)=' "$OUTDIR/kernel/manifest" || true
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "sha256_initrd.img=$(sha256sum "$out/initrd.img" | cut -d' ' -f1)"
    } >"$out/manifest"

    # Outputs first, manifest last: a reader that sees the new manifest sees the new files.
    rm -f "$OUTDIR/manifest"
    for f in rootfs.img initrd.img id_ed25519 id_ed25519.pub; do
        mv -f "$out/$f" "$OUTDIR/$f"
    done
    # The kernel as a hard link to the kernel build's (a copy across file systems).
    rm -f "$OUTDIR/vmlinux" "$OUTDIR/vmlinuz"
    ln "$OUTDIR/kernel/$kernel_file" "$OUTDIR/$kernel_file" 2>/dev/null ||
        cp "$OUTDIR/kernel/$kernel_file" "$OUTDIR/$kernel_file"
    mv -f "$out/manifest" "$OUTDIR/manifest"
    echo "ssh guest built in $(elapsed "$start") s (root rebuilt: $rootfs_built): image $((used / 1048576)) MiB of $((apparent / 1048576)) MiB, in $OUTDIR"
}

main "$@"
