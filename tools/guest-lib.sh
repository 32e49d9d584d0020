# shellcheck shell=bash
# What the guest builders (tools/build-guest.sh, tools/build-ssh-guest.sh) share. Sourced, never run.
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
manifest_get() {
    [[ -f $OUTDIR/manifest ]] || return 0
    sed -n "s/^$1=//p" "$OUTDIR/manifest" | head -n1
}
