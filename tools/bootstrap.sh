#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 / Ubuntu machine (as root).
# Idempotent and quick when nothing changed:
#   1. Debian packages (apt-get), skipped locally when all are installed already;
#      with CI=true always `apt-get update` + `apt-get install`.
#   2. A virtualenv ($QI_VENV, default .venv) with the pins of tools/requirements.txt;
#      skipped when a stamp says requirements.txt (and the base python) did not change.
#   3. ansible-test's get-pip stand-in in ~/.ansible/test/cache (see docs/testing.md).
# Environment: QI_VENV, QI_PYTHON (python to build the venv from), QI_EXTRA_APT_PACKAGES
# (space-separated, added to the apt list), QI_SKIP_APT=1 (do not touch apt at all).
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Host packages. qemu + iproute2 + busybox-static + cpio: the modules and the test guest
# (a Debian kernel fetched with `apt-get download` plus a busybox initramfs); shellcheck: the
# sanity test for our shell scripts; python3-venv/pip: the tool venv; rsync: the build layout.
APT_PACKAGES=(
    qemu-system-x86 qemu-utils busybox-static iproute2 shellcheck
    python3 python3-venv python3-pip rsync cpio ca-certificates git
    xz-utils zstd
)
# Append what later steps need (one package per line keeps merges easy).
APT_PACKAGES+=(
    debootstrap
    e2fsprogs
    openssh-client
    # tools/build-debian-image.sh (GPT, ESP, UKI) and its smoke test (UEFI, TPM)
    fdisk
    dosfstools
    mtools
    binutils
    ovmf
    swtpm
    # tools/build-nspawn-root.sh's container: systemd-nspawn (the boot_systemd target)
    systemd-container
)
if [[ -n "${QI_EXTRA_APT_PACKAGES:-}" ]]; then
    read -r -a _qi_extra <<<"$QI_EXTRA_APT_PACKAGES"
    APT_PACKAGES+=("${_qi_extra[@]}")
fi

REQUIREMENTS="$QI_REPO/tools/requirements.txt"

apt_missing_packages() {
    # Prints the packages that are not fully installed.
    local pkg status
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        if [[ "$status" != installed ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

install_apt_packages() {
    if [[ "${QI_SKIP_APT:-}" == 1 ]]; then
        qi_log "apt: skipped (QI_SKIP_APT=1)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
        qi_warn "no apt-get/dpkg-query: install these yourself: ${APT_PACKAGES[*]}"
        return 0
    fi

    local -a missing
    mapfile -t missing < <(apt_missing_packages "${APT_PACKAGES[@]}")
    if [[ "${CI:-}" != true && ${#missing[@]} -eq 0 ]]; then
        qi_log "apt: all ${#APT_PACKAGES[@]} packages installed"
        return 0
    fi

    local -a sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            qi_die "not root and no password-less sudo; install: ${missing[*]:-${APT_PACKAGES[*]}}"
        fi
    fi

    local -a apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    qi_log "apt: update + install ${APT_PACKAGES[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
        --no-install-recommends "${APT_PACKAGES[@]}" </dev/null

    mapfile -t missing < <(apt_missing_packages "${APT_PACKAGES[@]}")
    if [[ ${#missing[@]} -ne 0 ]]; then
        qi_die "apt: still not installed: ${missing[*]}"
    fi
}

setup_venv() {
    local python
    python="$(qi_find_python 11 13)" ||
        qi_die "no usable python 3.11-3.13 with venv found (apt-get install python3 python3-venv, or set QI_PYTHON)"
    qi_make_venv "$QI_VENV" "$python" "$REQUIREMENTS"
}

# ansible-test bootstraps pip in each venv it makes with a get-pip script downloaded from a
# host that is not reachable here. The stand-in runs pip from the official wheel instead
# (fetched from PyPI); ansible-test then installs its pinned requirements from PyPI as usual.
setup_get_pip_standin() {
    local at_dir pip_version home cache standin wheel tmp
    at_dir="$("$QI_VENV/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')"
    pip_version="$(sed -n "s/.*[( ,]pip='\([0-9.]*\)'.*/\1/p" \
        "$at_dir/_internal/python_requirements.py" | head -n 1)"
    if [[ -z "$pip_version" ]]; then
        pip_version=24.2
        qi_warn "could not read ansible-test's pip version; assuming $pip_version"
    fi
    home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
    cache="$home/.ansible/test/cache"
    standin="$cache/get_pip_${pip_version//./_}.py"
    wheel="$(compgen -G "$cache/pip-$pip_version-*.whl" | head -n 1 || true)"

    if [[ -f "$standin" && -n "$wheel" ]] && grep -qF "$wheel" "$standin"; then
        qi_log "ansible-test: get-pip stand-in present ($standin)"
        return 0
    fi
    if [[ -f "$standin" ]] && ! grep -qF 'qemu_init.qemu stand-in' "$standin"; then
        qi_log "ansible-test: $standin exists (a real get-pip script?), left alone"
        return 0
    fi

    mkdir -p "$cache"
    if [[ -z "$wheel" ]]; then
        qi_log "ansible-test: pip download pip==$pip_version"
        "$QI_VENV/bin/python" -m pip download --disable-pip-version-check --no-deps \
            --only-binary=:all: -d "$cache" "pip==$pip_version" >/dev/null </dev/null
        wheel="$(compgen -G "$cache/pip-$pip_version-*.whl" | head -n 1 || true)"
        [[ -n "$wheel" ]] || qi_die "pip==$pip_version wheel not found in $cache after download"
    fi

    tmp="$(mktemp "$cache/.get_pip.XXXXXX")"
    cat >"$tmp" <<EOF
# qemu_init.qemu stand-in for ansible-test's get-pip-$pip_version.py, written by tools/bootstrap.sh.
# ansible-test runs it as: python quiet_pip.py [pip options] [packages] [--no-setuptools] [--no-wheel]
import sys

WHEEL = "$wheel"
sys.path.insert(0, WHEEL)

from pip._internal.cli.main import main  # noqa: E402

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
EOF
    mv -f "$tmp" "$standin"
    qi_log "ansible-test: wrote get-pip stand-in $standin"
}

main() {
    local start
    start="$(qi_now)"
    install_apt_packages
    setup_venv
    setup_get_pip_standin
    qi_log "bootstrap done in $(qi_elapsed "$start")s"
}

main "$@"
