#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Build the Debian 12 root that the boot test (tests/integration/targets/boot_systemd, docs/boot.md)
# boots with `systemd-nspawn -b`: systemd as PID 1, QEMU and Python inside, so that the host role and
# qemu-init@.service run there as on a real host.
#
#   tools/build-nspawn-root.sh [OUTDIR]     default: ${QI_NSPAWN_ROOT_DIR:-<repo>/.cache/nspawn-root}
#
# Writes OUTDIR/rootfs (a directory: never boot it, boot a copy; it is the cache) and OUTDIR/manifest
# (key=value: cache_key, suite, mirror, packages with versions, built, size). The .debs are kept in
# OUTDIR/debs. How: `debootstrap --variant=minbase --include=PACKAGES` (debootstrap installs Depends
# only, no Recommends), trimmed (docs, man pages, locales, apt lists), then a few settings for a
# container: a persistent journal (/var/log/journal, the test reads it afterwards), a hostname, no
# getty on the console. No loop device, nothing mounted.
# Cached: nothing is rebuilt while the cache key matches: suite, mirror, the packages and the
# candidate versions apt offers for them now (one apt-cache call), and the sha256 of this script and
# tools/guest-lib.sh. Offline with a cache (apt offers none of the packages), the kept root is used.
# Needs root, debootstrap, apt-cache. Only debootstrap uses the network (the Debian mirror).
#
# Environment:
#   QI_NSPAWN_ROOT_DIR       default OUTDIR
#   QI_NSPAWN_ROOT_SUITE     Debian suite (default bookworm)
#   QI_NSPAWN_ROOT_MIRROR    Debian mirror (default: the host's apt sources' first Debian archive,
#                            else http://deb.debian.org/debian)
#   QI_NSPAWN_ROOT_PACKAGES  comma-separated packages on top of minbase (default below)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-${QI_NSPAWN_ROOT_DIR:-$REPO/.cache/nspawn-root}}
SUITE=${QI_NSPAWN_ROOT_SUITE:-bookworm}
# systemd + systemd-sysv: PID 1; dbus: systemctl talks to it; python3: the qemu-init command and
# Ansible's modules; iproute2: bridges and taps; qemu-system-x86: the VMs.
PACKAGES=${QI_NSPAWN_ROOT_PACKAGES:-systemd,systemd-sysv,dbus,python3,iproute2,qemu-system-x86}

GUEST_TOOL=build-nspawn-root
# shellcheck source=tools/guest-lib.sh
. "$REPO/tools/guest-lib.sh"


# Container settings on top of debootstrap's result.
customize_root() {
    local root=$1
    # Persistent journal: the test reads it from the host afterwards (journalctl --directory).
    install -d -m 2755 "$root/var/log/journal"
    echo qi-nspawn >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost qi-nspawn\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    : >"$root/etc/fstab"
    # No login prompt on the container's console: nobody logs in, and the log stays readable.
    ln -sfn /dev/null "$root/etc/systemd/system/console-getty.service"
    ln -sfn /dev/null "$root/etc/systemd/system/getty@.service"
    # A fresh machine-id on each boot (systemd writes a transient one when the file is empty).
    : >"$root/etc/machine-id"
}

build_root() {
    local key=$1 new=$OUTDIR/.rootfs.new
    debootstrap_minbase "$new"
    rm -rf "$new"/usr/share/doc/* "$new"/usr/share/man/* "$new"/usr/share/info/* \
        "$new"/usr/share/locale/* "$new"/var/cache/apt/* "$new"/var/lib/apt/lists/* \
        "$new"/var/cache/debconf/*-old "$new"/var/log/* "$new"/etc/resolv.conf
    mkdir -p "$new/var/lib/apt/lists/partial" "$new/var/cache/apt/archives/partial"
    customize_root "$new"
    echo "$key" >"$new/.qi-rootfs-key"
    rm -rf "$OUTDIR/rootfs"
    mv "$new" "$OUTDIR/rootfs"
}

main() {
    local tool
    for tool in debootstrap apt-cache sha256sum flock; do
        have "$tool" || die "$tool is required"
    done
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    lock_outdir

    local start=$EPOCHREALTIME
    MIRROR=${QI_NSPAWN_ROOT_MIRROR:-$(apt_debian_mirror)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    ensure_apt_lists

    local versions self_sum key have_key=
    versions=$(candidate_versions)
    self_sum=$(cat "${BASH_SOURCE[0]}" "$REPO/tools/guest-lib.sh" | sha256sum | cut -d' ' -f1)
    key="suite=$SUITE mirror=$MIRROR variant=minbase packages=$versions builder=${self_sum:0:16}"
    [[ -f $OUTDIR/rootfs/.qi-rootfs-key ]] && have_key=$(<"$OUTDIR/rootfs/.qi-rootfs-key")
    if [[ -z $versions ]]; then
        [[ -n $have_key ]] || die "apt offers none of $PACKAGES (check the apt sources)"
        log "warning: apt offers none of $PACKAGES; keeping the cached root ($have_key)"
        key=$have_key
    fi
    if [[ $have_key == "$key" && -f $OUTDIR/manifest && -x $OUTDIR/rootfs/lib/systemd/systemd ]]; then
        echo "nspawn root up to date in $OUTDIR ($(elapsed "$start") s)"
        return 0
    fi
    build_root "$key"
    local size
    size=$(du -sxm "$OUTDIR/rootfs" | cut -f1)
    {
        echo "# qemu_init.qemu nspawn root, written by tools/build-nspawn-root.sh"
        echo "cache_key=$key"
        echo "rootfs=rootfs"
        echo "suite=$SUITE"
        echo "mirror=$MIRROR"
        echo "packages=$versions"
        echo "size_mib=$size"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$OUTDIR/manifest.new"
    mv -f "$OUTDIR/manifest.new" "$OUTDIR/manifest"
    echo "nspawn root built in $(elapsed "$start") s: $size MiB in $OUTDIR/rootfs"
}

main "$@"
