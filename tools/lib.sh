# shellcheck shell=bash
# Shared helpers for tools/bootstrap.sh and tools/test.sh. Sourced, never run.
#
# Sets QI_REPO (the repository root) and the defaults every tool agrees on:
#   QI_VENV       the virtualenv with the pinned tools   (default $QI_REPO/.venv)
#   QI_BUILD_DIR  where the collection is laid out       (default $QI_REPO/.build)

QI_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
QI_VENV="${QI_VENV:-$QI_REPO/.venv}"
QI_BUILD_DIR="${QI_BUILD_DIR:-$QI_REPO/.build}"
export QI_REPO QI_VENV QI_BUILD_DIR

# Ansible refuses to start without a UTF-8 locale; C.UTF-8 is always there on Debian/Ubuntu.
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in
    *UTF-8* | *utf8* | *UTF8* | *utf-8*) ;;
    *) export LANG=C.UTF-8 LC_ALL=C.UTF-8 ;;
esac

qi_log() {
    printf '==> %s\n' "$*" >&2
}

qi_warn() {
    printf 'WARNING: %s\n' "$*" >&2
}

qi_die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# Seconds since the epoch with microseconds (bash >= 5).
qi_now() {
    printf '%s' "${EPOCHREALTIME/,/.}"
}

# qi_elapsed START -> seconds since START, one decimal.
qi_elapsed() {
    awk -v a="$1" -v b="$(qi_now)" 'BEGIN { printf "%.1f", b - a }'
}

# qi_python_ok PYTHON MIN MAX: PYTHON runs (pyenv shims may exit 127), is 3.MIN..3.MAX and has venv + ensurepip
# (Debian: python3-venv). 11 13 is the range ansible-core 2.19, the pinned one, supports on the controller.
qi_python_ok() {
    "$1" - "$2" "$3" >/dev/null 2>&1 <<'EOF'
import sys
import ensurepip  # noqa: F401
import venv  # noqa: F401
low, high = int(sys.argv[1]), int(sys.argv[2])
sys.exit(0 if (3, low) <= sys.version_info[:2] <= (3, high) else 1)
EOF
}

# Where pyenv keeps its builds (versions/X.Y.Z/bin/pythonX.Y), which these machines have and Debian does not package.
QI_PYENV_VERSIONS="${PYENV_ROOT:-${HOME:-/root}/.pyenv}/versions"

# qi_find_python MIN MAX: a python for a venv, as qi_python_ok says. QI_PYTHON first when set, then Debian's
# /usr/bin/python3 (so the venv does not depend on a pyenv build), /usr/bin/python3.MAX..3.MIN, python3 on PATH, and
# last pyenv's builds, newest first.
qi_find_python() {
    local low="$1" high="$2" candidate minor
    local -a candidates=()
    if [[ -n "${QI_PYTHON:-}" ]]; then
        candidates+=("$QI_PYTHON")
    fi
    candidates+=(/usr/bin/python3)
    for ((minor = high; minor >= low; minor--)); do
        candidates+=("/usr/bin/python3.$minor")
    done
    if candidate="$(command -v python3 2>/dev/null)"; then
        candidates+=("$candidate")
    fi
    mapfile -t -O "${#candidates[@]}" candidates < <(compgen -G "$QI_PYENV_VERSIONS/3.*/bin/python3" | sort -rV)
    for candidate in "${candidates[@]}"; do
        if [[ -x "$candidate" ]] && qi_python_ok "$candidate" "$low" "$high"; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# X.Y of the venv's python (what ansible-test's --python must say).
qi_venv_python_version() {
    "$QI_VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# qi_layout DEST: copy the work tree to DEST (a path ending ansible_collections/qemu_init/qemu).
qi_layout() {
    local coll="$1" dir
    # /.venv without a slash: a worktree's .venv is often a symlink to the main checkout's venv (a directory
    # pattern would not match it, and ansible-test sanity refuses symlinks to directories).
    local -a excludes=(
        --exclude=/.git/ --exclude=/.venv --exclude=/.build/ --exclude=/tests/output/
        --exclude=/collections/ --exclude=/.ansible/ --exclude=/.cache
        --exclude=/tests/integration/inventory --exclude=__pycache__/ --exclude='*.pyc'
    )
    for dir in "$QI_BUILD_DIR" "$QI_VENV"; do
        if [[ "$dir" == "$QI_REPO"/* ]]; then
            excludes+=("--exclude=/${dir#"$QI_REPO"/}/")
        fi
    done
    mkdir -p "$coll"
    # A copy, not a symlink: ansible-test resolves the cwd and must find ansible_collections/.
    # --delete-excluded also drops what earlier runs left in the copy (.ansible/ from
    # ansible-lint, tests/output/ from ansible-test), so each run starts clean.
    rsync -a --delete --delete-excluded --filter='P /.git/' "${excludes[@]}" \
        --filter=':- .gitignore' "$QI_REPO/" "$coll/"
    # The copy gets a git repo of its own (no commits needed). Without it, ansible-test and
    # ansible-lint find the work tree's .git above the copy, in which .build/ is ignored,
    # and then see no files at all. With it they see what git would: .gitignore applies.
    if [[ ! -d "$coll/.git" ]]; then
        git -C "$coll" init -q
    fi
}

# Bump when the way a venv is built changes, to force a reinstall everywhere.
QI_VENV_FORMAT=1

# qi_make_venv VENV PYTHON REQUIREMENTS: VENV, a virtualenv made from PYTHON with REQUIREMENTS' pins.
# Left alone while VENV/.qi-stamp says it was built from the same (the pins, the interpreter and its version,
# QI_VENV_FORMAT) and it imports ansible_test; otherwise pip installs the pins on top, in a venv made anew when
# it is broken or comes from another interpreter. pip's log stays in VENV; its tail is shown when pip fails.
qi_make_venv() {
    local venv="$1" python="$2" requirements="$3" stamp log="$1/pip-install.log"
    stamp="$({
        printf 'format %s\npython %s\n' "$QI_VENV_FORMAT" "$python"
        "$python" -c 'import sys; print("version", sys.version.split()[0])'
        sha256sum <"$requirements"
    } | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$venv/.qi-stamp" 2>/dev/null)" == "$stamp" ]] &&
        "$venv/bin/python" -c 'import ansible_test' >/dev/null 2>&1; then
        qi_log "venv: $venv up to date ($("$venv/bin/python" -V 2>&1))"
        return 0
    fi
    if [[ -e "$venv" ]]; then
        [[ -f "$venv/pyvenv.cfg" ]] || qi_die "$venv exists and is not a virtualenv; remove it"
        if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 ||
            ! grep -qxF "python $python" "$venv/.qi-base-python" 2>/dev/null; then
            qi_log "venv: removing $venv (other or broken base python)"
            rm -rf -- "$venv"
        fi
    fi
    if [[ ! -e "$venv" ]]; then
        qi_log "venv: creating $venv with $python ($("$python" -V 2>&1))"
        "$python" -m venv "$venv"
        printf 'python %s\n' "$python" >"$venv/.qi-base-python"
    fi
    rm -f -- "$venv/.qi-stamp"
    qi_log "venv: pip install -r ${requirements#"$QI_REPO"/} (log: $log)"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" >"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        qi_die "pip install -r $requirements failed (full log: $log)"
    fi
    printf '%s\n' "$stamp" >"$venv/.qi-stamp"
    qi_log "venv: ansible-core $("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')"
}
