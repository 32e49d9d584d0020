# shellcheck shell=bash
# What the guest builders (build-guest.sh, build-nspawn-root.sh, build-debian-image.sh) share. Sourced, never run.
# The sourcing script sets GUEST_TOOL (its name, for messages) and OUTDIR (its output directory) first.

log() { printf '%s: %s\n' "$GUEST_TOOL" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# Seconds since an $EPOCHREALTIME value, to 0.1 s.
elapsed() {
    # digits only: the separator follows the locale
    local now=${EPOCHREALTIME//[!0-9]/} then=${1//[!0-9]/}
    local tenths=$(((now - then) / 100000))
    echo "$((tenths / 10)).$((tenths % 10))"
}

apt_lists_present() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

apt_busy() {
    pgrep -x 'apt|apt-get|aptitude|dpkg|unattended-upgr' >/dev/null 2>&1
}

# apt-get update only when apt knows no packages at all, never next to another apt run.
ensure_apt_lists() {
    apt_lists_present && return 0
    [[ $EUID -eq 0 ]] || die "apt has no package lists; run 'apt-get update' as root first"
    local waited=0
    while apt_busy; do
        ((waited < 300)) || die "apt has no package lists and another apt/dpkg process keeps running"
        ((waited % 30 == 0)) && log "waiting for another apt/dpkg process to finish"
        sleep 5
        waited=$((waited + 5))
    done
    log "apt has no package lists: apt-get update"
    apt-get update -q >&2 || die "apt-get update failed"
}

# The value of KEY in OUTDIR/manifest (KEY=value lines), empty when there is none.
# Make OUTDIR, make it absolute, and hold its lock on fd 9 for the rest of the build: one build per OUTDIR at a
# time, and the second one then finds it up to date.
lock_outdir() {
    mkdir -p "$OUTDIR"
    OUTDIR=$(cd "$OUTDIR" && pwd)
    exec 9>"$OUTDIR/.lock"
    flock 9
}

manifest_get() {
    [[ -f $OUTDIR/manifest ]] || return 0
    sed -n "s/^$1=//p" "$OUTDIR/manifest" | head -n1
}

# The first Debian archive (not -security) in the host's apt sources, one-line or deb822
# format; empty when there is none. (The image and nspawn root builders.)
apt_debian_mirror() {
    local -a files=()
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    ((${#files[@]})) || return 0
    grep -hvE '^[[:space:]]*#' "${files[@]}" 2>/dev/null |
        grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' |
        tr -d '[:space:]' | sed 's|/$||' | head -n1 || true
}

# "pkg=version,..." for PACKAGE... (one apt-cache call, two when some are not in SUITE): the version apt lists for
# SUITE/main from MIRROR (what debootstrap of SUITE installs; apt's candidate may be a
# newer one from SUITE-security or SUITE-updates), else apt's candidate version.
# Packages apt does not know are left out.
#   apt_suite_versions SUITE MIRROR PACKAGE...
apt_suite_versions() {
    local suite=$1 mirror=${2%/}
    shift 2
    local -A from_suite=() candidate=()
    local line pkg version source
    local -a src
    while IFS='|' read -r pkg version source; do
        pkg=${pkg//[[:space:]]/}
        version=${version//[[:space:]]/}
        [[ -n $pkg && -n $version ]] || continue
        # source: " http://deb.debian.org/debian bookworm/main amd64 Packages"
        read -r -a src <<<"$source"
        if [[ ${src[0]%/} == "$mirror" && ${src[1]:-} == "$suite/main" && -z ${from_suite[$pkg]:-} ]]; then
            from_suite[$pkg]=$version
        fi
    done < <(apt-cache madison "$@" 2>/dev/null)
    local -a rest=()
    for pkg in "$@"; do
        [[ -n ${from_suite[$pkg]:-} ]] || rest+=("$pkg")
    done
    # A second apt-cache call (~0.5-2 s) only for packages not found in SUITE/main.
    if ((${#rest[@]})); then
        while IFS= read -r line; do
            if [[ $line =~ ^([^[:space:]]+):$ ]]; then
                pkg=${BASH_REMATCH[1]}
            elif [[ $line =~ ^[[:space:]]+Candidate:[[:space:]]+(.+)$ && ${BASH_REMATCH[1]} != '(none)' ]]; then
                candidate[$pkg]=${BASH_REMATCH[1]}
            fi
        done < <(apt-cache policy "${rest[@]}" 2>/dev/null)
    fi
    local out='' sep=''
    for pkg in "$@"; do
        version=${from_suite[$pkg]:-${candidate[$pkg]:-}}
        [[ -n $version ]] || continue
        out+="$sep$pkg=$version"
        sep=,
    done
    echo "$out"
}

# "pkg=version,..." of the candidate versions of PACKAGES, in one apt-cache call.
candidate_versions() {
    local -a pkgs
    IFS=, read -r -a pkgs <<<"$PACKAGES"
    apt-cache policy "${pkgs[@]}" 2>/dev/null | awk '
        /^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1) }
        /^  Candidate: / && pkg != "" && $2 != "(none)" { out = out sep pkg "=" $2; sep = ","; pkg = "" }
        END { print out }'
}

# debootstrap --variant=minbase of SUITE from MIRROR with PACKAGES (comma-separated) into DIR, .debs kept in
# OUTDIR/debs; the log in OUTDIR/debootstrap.log, its tail and a clear error when it fails (DIR is removed).
#   debootstrap_minbase DIR
# shellcheck disable=SC2153  # SUITE, MIRROR, PACKAGES, OUTDIR are the sourcing builder's settings
debootstrap_minbase() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$OUTDIR/debs"
    log "debootstrap $SUITE from $MIRROR (minbase + $PACKAGES)"
    if ! debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$OUTDIR/debs" \
        "$SUITE" "$dir" "$MIRROR" >"$OUTDIR/debootstrap.log" 2>&1; then
        tail -n 20 "$OUTDIR/debootstrap.log" >&2
        rm -rf "$dir"
        die "debootstrap failed (is $MIRROR reachable? full log: $OUTDIR/debootstrap.log)"
    fi
}

# Debian byte-compiles only part of the standard library at install time; under TCG, compiling the rest on
# each import costs seconds per Ansible module run. Compile it all once, in the root DIR.
#   compile_python_stdlib DIR
compile_python_stdlib() {
    local root=$1 d
    local -a pydirs=()
    for d in "$root"/usr/lib/python3 "$root"/usr/lib/python3.[0-9]*; do
        [[ -d $d ]] && pydirs+=("${d#"$root"}")
    done
    chroot "$root" /usr/bin/python3 -m compileall -q -x '/(test|tests|idle_test)/' "${pydirs[@]}" >/dev/null ||
        log "warning: compileall reported files it could not compile"
}
