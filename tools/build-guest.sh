#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Build the project's tiny test guest from Debian packages (see docs/test-guest.md):
# the Debian amd64 kernel (linux-image-amd64's current dependency) and a busybox-static
# initramfs whose /init is tools/guest/init.
#
#   tools/build-guest.sh [OUTDIR]     default: ${QI_GUEST_DIR:-<repo>/.cache/guest}
#
# Writes OUTDIR/vmlinuz (bzImage), OUTDIR/vmlinux (uncompressed ELF, boots through PVH
# with qemu -kernel, faster under TCG), OUTDIR/initrd.img and OUTDIR/manifest.
# Cached: nothing is rebuilt while the manifest's cache_key matches (kernel package
# version apt offers now, busybox version, module list, init, this script and tools/guest-lib.sh).
# Only apt talks to the network; nothing is installed on the host.
#
# Environment:
#   QI_GUEST_DIR       default OUTDIR
#   QI_GUEST_DEB_DIR   where downloaded .deb files are kept (default OUTDIR/debs)
#   QI_GUEST_MODULES   modules wanted in the guest (dependencies are added)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-${QI_GUEST_DIR:-$REPO/.cache/guest}}
DEB_DIR=${QI_GUEST_DEB_DIR:-$OUTDIR/debs}
# What busybox acpid needs to see the ACPI power button, and drivers for QEMU's PCI NIC
# models e1000*, e1000e, rtl8139, virtio-net-pci, ne2k_pci, pcnet and vmxnet3.
MODULES=${QI_GUEST_MODULES:-evdev button e1000 e1000e 8139cp 8139too virtio_pci virtio_net ne2k-pci pcnet32 vmxnet3}
INIT_SRC=$REPO/tools/guest/init
META_PKG=linux-image-amd64
# Kernel directories searched first; the whole module tree is extracted only when
# a dependency lives elsewhere (decompressing the package dominates the build).
PARTIAL_DIRS=(drivers/net drivers/virtio drivers/input drivers/acpi drivers/ptp drivers/pps net lib)

GUEST_TOOL=build-guest
# shellcheck source=tools/guest-lib.sh
. "$REPO/tools/guest-lib.sh"

# Candidate version of a package, empty if apt offers none.
candidate_version() {
    apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}

# The versioned kernel package linux-image-amd64's candidate depends on, e.g.
# linux-image-6.1.0-56-amd64 (security updates change the ABI name, so the name itself
# moves). Debian pins it ("Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)"), so one
# apt-cache call (~0.5-0.9 s without a pkgcache.bin) usually answers both questions.
resolve_kernel() {
    local depends
    depends=$(apt-cache show --no-all-versions "$META_PKG" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1)
    [[ $depends =~ (linux-image-[0-9][^ ,]*-amd64)( \(= ([^\)]+)\))? ]] || return 1
    KPKG=${BASH_REMATCH[1]}
    KVER=${BASH_REMATCH[3]}
    [[ -n $KVER ]] || KVER=$(candidate_version "$KPKG")
    [[ -n $KVER ]] || return 1
    KREL=${KPKG#linux-image-}
}

# Static busybox: the host's busybox-static when installed, else the package's.
resolve_busybox() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status} ${Version}' busybox-static 2>/dev/null || true)
    if [[ $status == installed\ * && -x /bin/busybox ]]; then
        BB_VER=${status#installed }
        BB_SOURCE=host
    else
        BB_VER=$(candidate_version busybox-static)
        [[ -n $BB_VER ]] || die "busybox-static is neither installed nor offered by apt"
        BB_SOURCE=deb
    fi
}

outputs_present() {
    [[ -s $OUTDIR/vmlinuz && -s $OUTDIR/initrd.img && -f $OUTDIR/manifest ]]
}

# Download PKG=VERSION into DEB_DIR unless the .deb is there already; prints its path.
fetch_deb() {
    local pkg=$1 version=$2 deb
    for deb in "$DEB_DIR/${pkg}"_*.deb; do
        [[ -f $deb ]] || continue
        if [[ $(dpkg-deb -f "$deb" Version) == "$version" ]]; then
            echo "$deb"
            return 0
        fi
    done
    log "downloading $pkg=$version"
    local -a opts=(-q)
    # As root apt drops to _apt, who cannot write into a root-owned cache dir.
    [[ $EUID -eq 0 ]] && opts+=(-o APT::Sandbox::User=root)
    (cd "$DEB_DIR" && apt-get "${opts[@]}" download "$pkg=$version" >&2) ||
        die "apt-get download $pkg=$version failed"
    for deb in "$DEB_DIR/${pkg}"_*.deb; do
        [[ -f $deb ]] || continue
        if [[ $(dpkg-deb -f "$deb" Version) == "$version" ]]; then
            echo "$deb"
        else
            rm -f "$deb" # an older version: the cache keeps one per package
        fi
    done
}

# Extract the kernel and (some of) its modules from the .deb into $WORK/kernel.
extract_kernel() {
    local deb=$1 mode=$2
    local -a members=("./boot/vmlinuz-$KREL" "./lib/modules/$KREL/modules.builtin")
    if [[ $mode == partial ]]; then
        local d
        for d in "${PARTIAL_DIRS[@]}"; do members+=("./lib/modules/$KREL/kernel/$d"); done
    else
        members+=("./lib/modules/$KREL/kernel")
    fi
    rm -rf "$WORK/kernel"
    mkdir -p "$WORK/kernel"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/kernel" "${members[@]}" 2>/dev/null || {
        # A missing directory in the partial set is not fatal; the kernel image is.
        [[ -f $WORK/kernel/boot/vmlinuz-$KREL ]] || die "no boot/vmlinuz-$KREL in $deb"
    }
    MODROOT=$WORK/kernel/lib/modules/$KREL
}

# Module name as the kernel knows it ('-' and '_' are the same).
modname() {
    local base=${1##*/}
    base=${base%%.ko*}
    echo "${base//-/_}"
}

# Print a module file uncompressed (Debian may compress modules in later releases).
modcat() {
    case $1 in
        *.ko) cat "$1" ;;
        *.ko.xz) xz -dc "$1" ;;
        *.ko.zst) zstd -qdc "$1" ;;
        *.ko.gz) gzip -dc "$1" ;;
        *) die "unknown module format: $1" ;;
    esac
}

index_modules() {
    declare -gA KO_PATH=() BUILTIN=()
    local path
    while IFS= read -r path; do
        KO_PATH[$(modname "$path")]=${path#"$MODROOT"/}
    done < <(find "$MODROOT/kernel" -name '*.ko*' -type f)
    if [[ -f $MODROOT/modules.builtin ]]; then
        while IFS= read -r path; do
            BUILTIN[$(modname "$path")]=1
        done <"$MODROOT/modules.builtin"
    fi
}

# Depth-first: dependencies before the module. Fills ORDER (paths under MODROOT)
# and MISSING (names found neither as a file nor built in).
visit_module() {
    local name
    name=$(modname "$1")
    [[ -z ${SEEN[$name]:-} ]] || return 0
    SEEN[$name]=1
    [[ -z ${BUILTIN[$name]:-} ]] || return 0
    local rel=${KO_PATH[$name]:-}
    if [[ -z $rel ]]; then
        MISSING+=("$name")
        return 0
    fi
    local deps dep
    deps=$(modcat "$MODROOT/$rel" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1)
    for dep in ${deps//,/ }; do
        visit_module "$dep"
    done
    ORDER+=("$rel")
}

resolve_modules() {
    declare -gA SEEN=()
    ORDER=()
    MISSING=()
    index_modules
    local m
    for m in $MODULES; do visit_module "$m"; done
}

# vmlinux from the bzImage: the payload (boot protocol fields setup_sects at 0x1f1,
# payload_offset/payload_length at 0x248) is the compressed ELF kernel, followed by
# its uncompressed size, which --single-stream / trailing-garbage tolerance skips.
extract_vmlinux() {
    local bz=$1 out=$2 setup_sects payload_offset payload_length offset magic
    [[ $(od -An -c -j $((0x202)) -N4 "$bz" | tr -d ' ') == HdrS ]] || return 1
    setup_sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$bz" | tr -d ' ')
    read -r payload_offset payload_length < <(od -An -tu4 -j $((0x248)) -N8 "$bz")
    offset=$(((setup_sects + 1) * 512 + payload_offset))
    magic=$(od -An -tx1 -j "$offset" -N4 "$bz" | tr -d ' ')
    local -a decompress
    case $magic in
        fd377a58) decompress=(xz -dc --single-stream) ;;
        1f8b08*) decompress=(gzip -dc) ;;
        *)
            log "no vmlinux: unsupported kernel compression (magic $magic)"
            return 1
            ;;
    esac
    have "${decompress[0]}" || {
        log "no vmlinux: ${decompress[0]} not installed"
        return 1
    }
    # Through a file, not a pipe: a decompressor that stops at the end of its stream
    # must not SIGPIPE the writer. gzip exits 2 for the trailing size word.
    head -c $((offset + payload_length)) "$bz" | tail -c "$payload_length" >"$out.payload"
    "${decompress[@]}" <"$out.payload" >"$out" 2>/dev/null || true
    rm -f "$out.payload"
    [[ $(od -An -c -N4 "$out" | tr -d ' ') == 177ELF ]] || {
        log "no vmlinux: decompressed payload is not an ELF file"
        return 1
    }
    # QEMU's -kernel boots an ELF only through the PVH entry note
    # (XEN_ELFNOTE_PHYS32_ENTRY, type 18). Checked when binutils is there.
    if have readelf; then
        local notes
        notes=$(LC_ALL=C readelf -n "$out" 2>/dev/null || true)
        if [[ $notes != *'(0x00000012)'* && $notes != *PHYS32_ENTRY* ]]; then
            log "no vmlinux: the kernel has no PVH entry point (CONFIG_PVH)"
            return 1
        fi
    fi
}

build_initramfs() {
    local root=$WORK/root bb=$1 out=$2
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,root,var/log} \
        "$root/lib/modules/$KREL"
    install -m 0755 "$bb" "$root/bin/busybox"
    install -m 0755 "$INIT_SRC" "$root/init"
    # One link per applet, as "busybox --install -s" would make at boot (cheaper here).
    local applet
    while IFS= read -r applet; do
        # linuxrc (no directory) would only be run as a real root's init
        [[ $applet == */* && $applet != bin/busybox ]] || continue
        mkdir -p "$root/${applet%/*}"
        ln -sf /bin/busybox "$root/$applet"
    done < <("$root/bin/busybox" --list-full)
    [[ -e $root/bin/sh ]] || ln -s busybox "$root/bin/sh"
    local rel dest
    : >"$root/lib/modules/$KREL/qi-load-order"
    for rel in "${ORDER[@]}"; do
        dest=${rel%.ko*}.ko
        mkdir -p "$root/lib/modules/$KREL/${dest%/*}"
        modcat "$MODROOT/$rel" >"$root/lib/modules/$KREL/$dest"
        echo "$dest" >>"$root/lib/modules/$KREL/qi-load-order"
    done
    printf 'kernel_release=%s\nkernel_package_version=%s\nbusybox_version=%s\n' \
        "$KREL" "$KVER" "$BB_VER" >"$root/etc/qi-guest"
    # Fixed mtimes and sorted names: the same inputs give the same initrd.img.
    find "$root" -exec touch -h -d @0 {} +
    local -a cpio_cmd
    if have cpio && cpio --help 2>&1 | grep -q -- --reproducible; then
        cpio_cmd=(cpio --quiet -o -H newc -R 0:0 --reproducible)
    else
        cpio_cmd=("$bb" cpio -o -H newc -R 0:0)
    fi
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "${cpio_cmd[@]}") | gzip -9n >"$out"
}

main() {
    local tool
    for tool in apt-cache apt-get dpkg-deb dpkg-query tar gzip od sha256sum flock; do
        have "$tool" || die "$tool is required"
    done
    [[ -f $INIT_SRC ]] || die "missing $INIT_SRC"
    mkdir -p "$DEB_DIR"
    DEB_DIR=$(cd "$DEB_DIR" && pwd)
    lock_outdir

    ensure_apt_lists
    if ! resolve_kernel; then
        if outputs_present; then
            log "warning: apt offers no $META_PKG; keeping the cached guest ($(manifest_get kernel_package) $(manifest_get kernel_package_version))"
            exit 0
        fi
        die "apt offers no $META_PKG (check the apt sources)"
    fi
    resolve_busybox

    local init_sum self_sum cache_key
    init_sum=$(sha256sum "$INIT_SRC" | cut -d' ' -f1)
    # The builder is this script and the helpers it sources: a change to either rebuilds.
    self_sum=$(cat "${BASH_SOURCE[0]}" "$REPO/tools/guest-lib.sh" | sha256sum | cut -d' ' -f1)
    cache_key="$KPKG=$KVER busybox-static=$BB_VER modules=${MODULES// /,} init=${init_sum:0:16} builder=${self_sum:0:16}"
    if outputs_present && [[ $(manifest_get cache_key) == "$cache_key" ]]; then
        echo "guest up to date: $KPKG $KVER in $OUTDIR"
        return 0
    fi

    local start=$EPOCHREALTIME
    WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM

    local kdeb bb
    kdeb=$(fetch_deb "$KPKG" "$KVER")
    [[ -n $kdeb ]] || die "no .deb for $KPKG=$KVER after download"
    if [[ $BB_SOURCE == host ]]; then
        bb=/bin/busybox
    else
        local bbdeb
        bbdeb=$(fetch_deb busybox-static "$BB_VER")
        mkdir -p "$WORK/busybox"
        dpkg-deb -x "$bbdeb" "$WORK/busybox"
        bb=$WORK/busybox/bin/busybox
    fi
    [[ -x $bb ]] || die "no busybox binary at $bb"

    log "extracting $KPKG $KVER"
    extract_kernel "$kdeb" partial
    resolve_modules
    if ((${#MISSING[@]})); then
        log "modules outside the usual directories (${MISSING[*]}): extracting all modules"
        extract_kernel "$kdeb" full
        resolve_modules
        ((${#MISSING[@]} == 0)) || die "modules not in $KPKG: ${MISSING[*]}"
    fi

    local out=$WORK/out
    mkdir -p "$out"
    cp "$WORK/kernel/boot/vmlinuz-$KREL" "$out/vmlinuz"
    # Decompressing vmlinux and packing the initramfs are independent: run them side by side.
    local pvh=no vmlinux_pid
    extract_vmlinux "$out/vmlinuz" "$out/vmlinux" 2>"$WORK/vmlinux.err" &
    vmlinux_pid=$!
    build_initramfs "$bb" "$out/initrd.img"
    if wait "$vmlinux_pid"; then
        pvh=yes
    else
        cat "$WORK/vmlinux.err" >&2
        rm -f "$out/vmlinux"
    fi

    {
        echo "# qemu_init.qemu test guest, written by tools/build-guest.sh"
        echo "cache_key=$cache_key"
        echo "kernel_package=$KPKG"
        echo "kernel_package_version=$KVER"
        echo "kernel_release=$KREL"
        echo "busybox_package=busybox-static"
        echo "busybox_version=$BB_VER"
        echo "busybox_source=$BB_SOURCE"
        echo "modules=${MODULES// /,}"
        echo "load_order=$(tr '\n' ',' <"$WORK/root/lib/modules/$KREL/qi-load-order" | sed 's/,$//')"
        echo "pvh_vmlinux=$pvh"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        local f
        for f in vmlinuz vmlinux initrd.img; do
            [[ -f $out/$f ]] && echo "sha256_$f=$(sha256sum "$out/$f" | cut -d' ' -f1)"
        done
    } >"$out/manifest"

    # Outputs first, manifest last: a reader that sees the new manifest sees the new files.
    local f
    for f in vmlinuz vmlinux initrd.img; do
        if [[ -f $out/$f ]]; then
            mv -f "$out/$f" "$OUTDIR/$f"
        else
            rm -f "${OUTDIR:?}/$f"
        fi
    done
    mv -f "$out/manifest" "$OUTDIR/manifest"
    echo "guest built in $(elapsed "$start") s: $KPKG $KVER, vmlinux/PVH: $pvh, in $OUTDIR"
}

main "$@"
