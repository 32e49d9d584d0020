#!/usr/bin/env bash
# The whole test suite:   bash tools/test.sh [STEP...]     (default: every step)
#                         bash tools/test.sh --list         (the steps, in run order)
# Installs what it needs (tools/bootstrap.sh), lays the collection out as
# $QI_BUILD_DIR/ansible_collections/qemu_init/qemu (a copy of the work tree) and runs each
# step there with the venv first on PATH. Steps run in the order of the table below, whatever
# the order of the arguments. Ends with a summary table and the line "N passed, M failed"
# (steps); exits 1 if a step failed. docs/testing.md has the details.
#
# Environment: QI_VENV, QI_BUILD_DIR, QI_STEP_TIMEOUT (seconds per step, default 3600, 0: none),
# and extra arguments per step (word-split):
#   QI_SANITY_ARGS, QI_UNITS_ARGS, QI_HOSTILE_ARGS, QI_INTEGRATION_ARGS (e.g. a target name), QI_FLOOR_ARGS,
#   QI_NEWEST_ARGS (targets: they replace the step's own list), QI_LINT_ARGS, QI_MOLECULE_ARGS (scenario names)
# Skipped tests (units, hostile) are counted in the step's note; one that tests/expected-skips.txt
# does not list fails the step when CI=true or QI_STRICT_SKIPS=1 (QI_STRICT_SKIPS=0: never).
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COLL="$QI_BUILD_DIR/ansible_collections/qemu_init/qemu"
PYV="${PYV:-}"  # X.Y of the venv's python, set after bootstrap
# Wall-clock limit per step in seconds (0: none), so that a hung step still ends in a summary
# inside CI's 90 minutes.
QI_STEP_TIMEOUT="${QI_STEP_TIMEOUT:-3600}"
[[ "$QI_STEP_TIMEOUT" =~ ^[0-9]+$ ]] || qi_die "QI_STEP_TIMEOUT must be a number of seconds"

# --------------------------------------------------------------------------------------
# The steps: name, then the command (a function below or any program), run in a process
# of its own with `set -e`, from $COLL. Adding a step is one line, e.g.
#   add_step molecule_host  run_molecule host
STEP_NAMES=()
declare -A STEP_CMDS=()
add_step() {
    local name="$1"
    shift
    STEP_NAMES+=("$name")
    STEP_CMDS[$name]="$(printf '%q ' "$@")"
}

define_steps() {
    add_step sanity       run_sanity
    add_step static       run_static
    add_step units        run_units
    add_step hostile      run_hostile
    add_step integration  run_integration
    add_step floor        run_floor
    add_step newest       run_newest
    add_step lint         run_lint
    add_step docs         run_docs
    add_step molecule     run_molecule
    add_step awx          run_awx
    add_step build        run_build
}

# --------------------------------------------------------------------------------------
# Step implementations. Each runs in $COLL; a step with nothing to test calls qi_skip.

# qi_skip REASON: mark the running step as skipped (nothing to test), not passed.
qi_skip() {
    printf '%s\n' "$*" >"$QI_STEP_SKIP_FILE"
    qi_log "nothing to do: $*"
}

# qi_note TEXT: a note for the summary table (e.g. what failed).
qi_note() {
    printf '%s\n' "$*" >>"$QI_STEP_NOTE_FILE"
}

# Print a command, then run it.
run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

# Word-split an env var into the array named by $2 (no globbing).
split_args() {
    local -n _out="$2"
    _out=()
    if [[ -n "${!1:-}" ]]; then
        read -r -a _out <<<"${!1}"
    fi
}

run_sanity() {
    local -a extra
    split_args QI_SANITY_ARGS extra
    run ansible-test sanity --local --python "$PYV" "${extra[@]}"
}

# Static checks beyond ansible-test's: ruff (ruff.toml) over the Python code, mypy (.mypy.ini)
# over ansible_collections.qemu_init.qemu.plugins with ansible-core importable. Both always run;
# the step fails when either finds anything. Caches go to $QI_BUILD_DIR, not into the copy.
run_static() {
    local out dir ruff_rc=0 mypy_rc=0 ruff_sum mypy_sum
    local -a paths=()
    out="$(mktemp "${TMPDIR:-/tmp}/qi-static.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the step runs in its own subshell
    trap "rm -f -- '$out'" EXIT
    for dir in plugins tests tools bench; do
        [[ -d "$dir" ]] && paths+=("$dir")
    done
    RUFF_CACHE_DIR="$QI_BUILD_DIR/.ruff_cache" run ruff check --no-fix --config ruff.toml "${paths[@]}" >"$out" 2>&1 ||
        ruff_rc=$?
    cat "$out"
    ruff_sum="$(grep -E '^(Found [0-9]+ errors?|All checks passed)' "$out" | tail -n 1)"
    ruff_sum="${ruff_sum%.}"
    # From the build dir, so that the copy is importable as ansible_collections.qemu_init.qemu;
    # paths in the report are shown relative to the collection root, as in the work tree.
    (cd "$QI_BUILD_DIR" && run mypy --config-file "$COLL/.mypy.ini" --cache-dir "$QI_BUILD_DIR/.mypy_cache" \
        -p ansible_collections.qemu_init.qemu.plugins) >"$out" 2>&1 || mypy_rc=$?
    sed 's|^ansible_collections/qemu_init/qemu/||' "$out"
    mypy_sum="$(grep -E '^(Found [0-9]+ errors?|Success:)' "$out" | tail -n 1)"
    ruff_sum="ruff: ${ruff_sum:-exit $ruff_rc}"
    mypy_sum="mypy: ${mypy_sum:-exit $mypy_rc}"
    qi_log "static: $ruff_sum; $mypy_sum"
    if [[ $ruff_rc -ne 0 || $mypy_rc -ne 0 ]]; then
        qi_note "$ruff_sum; $mypy_sum"
        return 1
    fi
}

# check_skips STEP JUNIT...: the step's tests and skips (tools/skips.py, from pytest's JUnit XML) go
# into its note; a skip that tests/expected-skips.txt does not list fails the step under CI=true
# (or QI_STRICT_SKIPS=1): a skipped test proves nothing and must not pass for one.
check_skips() {
    local step="$1" note rc=0
    shift
    note="$(python tools/skips.py "$step" tests/expected-skips.txt "$@")" || rc=$?
    qi_note "$note"
    return "$rc"
}

run_units() {
    local -a extra
    split_args QI_UNITS_ARGS extra
    if [[ -z "$(find tests/unit -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit 2>/dev/null)" ]]; then
        qi_skip "no unit tests (tests/unit/**/test_*.py)"
        return 0
    fi
    local rc=0
    # ansible-test has pytest write tests/output/junit/python<X.Y>-<context>-units.xml
    rm -f tests/output/junit/python*-units.xml
    run ansible-test units --local --python "$PYV" "${extra[@]}" || rc=$?
    # hypothesis keeps its example database in the cwd (ansible-test does not pass
    # HYPOTHESIS_STORAGE_DIRECTORY through); it must not reach lint or the artifact.
    rm -rf .hypothesis
    check_skips units tests/output/junit/python*-units.xml || [[ $rc -ne 0 ]] || rc=1
    return "$rc"
}

# The hostile-input suite (tests/hostile, docs/security.md): hypothesis feeds hostile parameters to
# the real modules (real `ip` in a namespace of its own, real QEMU) and checks each outcome; it ends
# with a table of examples per module. QI_HOSTILE_PROFILE=long runs ten times the examples.
# The kernel/initrd/append cases boot the test guest (tools/build-guest.sh, cached under .cache/guest
# by content): built here, before the tests, so that they run rather than skip; the integration
# step then finds it up to date.
run_hostile() {
    local -a extra
    local report junit rc=0
    split_args QI_HOSTILE_ARGS extra
    if [[ ! -d tests/hostile ]]; then
        qi_skip "no hostile-input suite (tests/hostile/)"
        return 0
    fi
    if ! run bash "$QI_REPO/tools/build-guest.sh"; then
        qi_note "the test guest did not build (tools/build-guest.sh): the tests that boot it skip"
    fi
    report="$(mktemp "${TMPDIR:-/tmp}/qi-hostile.XXXXXX")"
    junit="$(mktemp "${TMPDIR:-/tmp}/qi-hostile-junit.XXXXXX")"
    PYTHONPATH="$QI_BUILD_DIR" QI_HOSTILE_REPORT="$report" \
        run python -m pytest -p no:cacheprovider -q -rs --junitxml="$junit" tests/hostile "${extra[@]}" || rc=$?
    if [[ -s "$report" ]]; then
        qi_note "$(awk '$1 == "total" {print $2 " inputs: " $3 " accepted, " $4 " refused, " $5 " bad"}' "$report")"
    fi
    check_skips hostile "$junit" || [[ $rc -ne 0 ]] || rc=1
    rm -f -- "$report" "$junit"
    rm -rf .hypothesis
    return "$rc"
}

run_integration() {
    local -a extra targets
    local listing
    split_args QI_INTEGRATION_ARGS extra
    # Root targets (needs/root), destructive ones (aliases: destructive) and privileged ones
    # (needs/privileged, only filtered under docker) all run: the tests use their own netns.
    local -a opts=(--local --python "$PYV" --allow-destructive --allow-root --continue-on-error)
    if [[ -z "$(find tests/integration/targets -mindepth 2 -type f -print -quit 2>/dev/null)" ]]; then
        qi_skip "no integration targets (tests/integration/targets/)"
        return 0
    fi
    listing="$(ansible-test integration --list-targets "${opts[@]}" "${extra[@]}")" || {
        qi_log "ansible-test could not list the integration targets"
        return 1
    }
    mapfile -t targets < <(printf '%s' "$listing" | grep -v '^$')
    if [[ ${#targets[@]} -eq 0 ]]; then
        qi_skip "no integration targets to run (tests/integration/targets/)"
        return 0
    fi
    qi_log "integration targets: ${targets[*]}"
    write_integration_config
    run ansible-test integration "${opts[@]}" "${extra[@]}"
}

# tests/integration/integration_config.yml, the vars file of every target's play (ansible-test passes only its own
# environment to the targets): where the work tree and its guest cache are (setup_guest), where boot_systemd keeps
# its container root and boots its copy (~240 MiB each) when not in .cache/tmp, then the `name: value` lines given.
write_integration_config() {
    local config=tests/integration/integration_config.yml
    printf 'qi_repo: %s\n' "$QI_REPO" >"$config"
    if [[ -n "${QI_NSPAWN_ROOT_DIR:-}" ]]; then
        printf 'qi_nspawn_root_dir: %s\n' "$QI_NSPAWN_ROOT_DIR" >>"$config"
    fi
    if [[ -n "${QI_NSPAWN_WORK_DIR:-}" ]]; then
        printf 'qi_nspawn_work_dir: %s\n' "$QI_NSPAWN_WORK_DIR" >>"$config"
    fi
    if [[ $# -gt 0 ]]; then
        printf '%s\n' "$@" >>"$config"
    fi
}

# The integration targets that run under each end of the ansible-core range we claim (the floor and newest steps), not
# only under the pinned 2.19: the modules, the vms role (module_defaults included) and the mac filter. After
# `integration`, so that the test guest is cached. QI_FLOOR_ARGS and QI_NEWEST_ARGS replace the list.
CORE_TARGETS=(bridge tap vm_config vm vm_info monitor vms_fleet handwritten_cfg)

# run_core_targets STEP PYTHON [TARGET_PYTHON]: CORE_TARGETS under the ansible-core of tools/requirements-STEP.txt, in
# the venv $QI_BUILD_DIR/venv-STEP made from PYTHON; the modules run on TARGET_PYTHON, else on the venv's.
run_core_targets() {
    local step="$1" python="$2" target_python="${3:-}" venv="$QI_BUILD_DIR/venv-$1" args_var="QI_${1^^}_ARGS"
    local pyv python_version core_version
    local -a targets
    qi_make_venv "$venv" "$python" "$QI_REPO/tools/requirements-$step.txt"
    split_args "$args_var" targets
    [[ ${#targets[@]} -gt 0 ]] || targets=("${CORE_TARGETS[@]}")
    if [[ -n "$target_python" ]]; then
        # integration_config.yml is the play's vars file: it outranks the inventory's interpreter.
        write_integration_config "ansible_python_interpreter: $target_python"
    else
        write_integration_config
        target_python="$venv/bin/python"
    fi
    read -r pyv python_version core_version < <("$venv/bin/python" -c 'import platform, sys
from ansible.release import __version__
print("%d.%d" % sys.version_info[:2], platform.python_version(), __version__)')
    qi_note "ansible-core $core_version on Python $python_version, modules on Python $("$target_python" -c 'import platform; print(platform.python_version())'): ${targets[*]}"
    PATH="$venv/bin:$PATH" run ansible-test integration --local --python "$pyv" --allow-destructive --allow-root \
        --continue-on-error "${targets[@]}"
}

# The oldest ansible-core that meta/runtime.yml admits (2.17), so that requires_ansible is a tested claim. The modules
# run under the oldest Python 2.17 manages hosts with, 3.7, when the machine has one (pyenv's, as these machines do;
# QI_FLOOR_TARGET_PYTHON names another), else under the controller's.
run_floor() {
    local python
    python="$(qi_find_python 11 13)" || qi_die "no usable python 3.11-3.13 with venv found"
    run_core_targets floor "$python" \
        "${QI_FLOOR_TARGET_PYTHON:-$(compgen -G "$QI_PYENV_VERSIONS/3.7.*/bin/python3.7" | head -n 1 || true)}"
}

# The newest ansible-core release (tools/requirements-newest.txt), what a new user installs. It needs Python 3.12 or
# newer on the controller (QI_NEWEST_PYTHON, a /usr/bin/python3.1x, or pyenv's build); without one the step is skipped.
run_newest() {
    local python
    if ! python="$(QI_PYTHON="${QI_NEWEST_PYTHON:-}" qi_find_python 12 14)"; then
        qi_skip "no Python 3.12-3.14 with venv for ansible-core $(sed -n 's/^ansible-core==//p' "$QI_REPO/tools/requirements-newest.txt") (set QI_NEWEST_PYTHON)"
        return 0
    fi
    run_core_targets newest "$python"
}

run_lint() {
    local -a extra
    split_args QI_LINT_ARGS extra
    run ansible-lint "${extra[@]}"
}

# The docs: plugin and role docs and the guides lint clean, docs/docsite/rst is generated from
# the current docs/*.md, the HTML docsite builds with warnings as errors and has a page for every
# module, filter, role and listed guide, and the changelog fragments lint and render as a release.
run_docs() {
    local tmp html missing=() file name version
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/qi-docs-step.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the step runs in its own subshell
    trap "rm -rf -- '$tmp'" EXIT
    run python tools/md2rst.py --check
    run antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .
    QI_DOCS_SKIP_BOOTSTRAP=1 QI_DOCS_NO_REGEN=1 run bash tools/build-docs.sh "$tmp/html"
    html="$tmp/html"
    local -a pages=(index.html)
    for file in plugins/modules/*.py; do
        name="$(basename "$file" .py)"
        [[ "$name" == _* ]] || pages+=("${name}_module.html")
    done
    for file in plugins/filter/*.yml; do
        [[ -f "$file" ]] && pages+=("$(basename "$file" .yml)_filter.html")
    done
    for file in roles/*/tasks; do
        [[ -d "$file" ]] && pages+=("$(basename "$(dirname "$file")")_role.html")
    done
    while read -r name; do
        pages+=("docsite/$name.html")
    done < <(python -c 'import sys, yaml
for s in yaml.safe_load(open(sys.argv[1]))["sections"]:
    for e in s["toctree"]:
        print(e["ref"] if isinstance(e, dict) else e)' docs/docsite/extra-docs.yml)
    for file in "${pages[@]}"; do
        [[ -s "$html/$file" ]] || missing+=("$file")
    done
    if [[ ${#missing[@]} -ne 0 ]]; then
        qi_note "missing pages: ${missing[*]}"
        qi_die "the docsite lacks ${missing[*]} (a role needs meta/argument_specs.yml to get a page)"
    fi
    qi_log "docsite: all ${#pages[@]} expected pages are there ($(find "$html" -name '*.html' | wc -l) HTML pages)"

    run antsibull-changelog lint
    # antsibull-changelog renders fragments as RST: Ansible's semantic markup (O(...), C(...)) would
    # show up literally.
    if grep -nE '(^|[^A-Za-z])(O|V|C|M|I|B|U|L|E|P|RV)\([^)]+\)' changelogs/fragments/*.y*ml 2>/dev/null; then
        qi_die "changelog fragments use Ansible markup (above); write RST (\`\`option\`\`) instead"
    fi
    # The release as `antsibull-changelog release` would make it, in a copy: every pending
    # fragment must render, and the result must be clean RST.
    version="$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"
    mkdir -p "$tmp/cl/ansible_collections/qemu_init/qemu"
    for file in galaxy.yml meta plugins roles changelogs CHANGELOG.rst; do
        if [[ -e "$file" ]]; then
            cp -a "$file" "$tmp/cl/ansible_collections/qemu_init/qemu/"
        fi
    done
    (
        cd "$tmp/cl/ansible_collections/qemu_init/qemu"
        ANSIBLE_COLLECTIONS_PATH="$tmp/cl" run antsibull-changelog release --version "$version"
        grep -q "^v${version//./\\.}\$" CHANGELOG.rst || qi_die "CHANGELOG.rst has no section v$version"
        run python -c 'import sys, docutils.core
docutils.core.publish_doctree(open(sys.argv[1]).read(), source_path=sys.argv[1],
                              settings_overrides={"halt_level": 2, "report_level": 2})' CHANGELOG.rst
        qi_log "changelog: v$version renders ($(grep -c '^- ' CHANGELOG.rst) entries)"
    )
}

# run_molecule [SCENARIO...]: `molecule test` each scenario of extensions/molecule/ (default: the scenarios
# QI_MOLECULE_ARGS names, else all of them). Runs every scenario, fails if any failed.
# The collection comes from its artifact, as users get it: built (ansible-galaxy collection build) and installed
# into a collections path of its own, the only one on ANSIBLE_COLLECTIONS_PATH; guest_ssh (prerun: false) sees
# nothing else, so the playbooks qemu_init.qemu.molecule_create/destroy are proved from the installed files.
# guest_ssh boots the project's Debian image: tools/build-debian-image.sh runs first (cached by content).
run_molecule() {
    local -a scenarios=("$@") failed=()
    local file scenario tmp tarball
    if [[ ${#scenarios[@]} -eq 0 ]]; then
        split_args QI_MOLECULE_ARGS scenarios
    fi
    if [[ ${#scenarios[@]} -eq 0 ]]; then
        for file in extensions/molecule/*/molecule.yml; do
            [[ -f "$file" ]] || continue
            scenario="$(basename "$(dirname "$file")")"
            scenarios+=("$scenario")
        done
    fi
    if [[ ${#scenarios[@]} -eq 0 ]]; then
        qi_skip "no molecule scenarios (extensions/molecule/*/molecule.yml)"
        return 0
    fi
    for scenario in "${scenarios[@]}"; do
        [[ -f "extensions/molecule/$scenario/molecule.yml" ]] || qi_die "no molecule scenario $scenario"
    done
    if [[ " ${scenarios[*]} " == *" guest_ssh "* ]]; then
        run bash "$QI_REPO/tools/build-debian-image.sh" || {
            qi_note "the Debian image did not build (tools/build-debian-image.sh)"
            return 1
        }
    fi
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/qi-molecule-coll.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the step runs in its own subshell
    trap "rm -rf -- '$tmp'" EXIT
    run ansible-galaxy collection build --output-path "$tmp/dist" . >/dev/null
    tarball="$(compgen -G "$tmp/dist/qemu_init-qemu-*.tar.gz" | head -n 1)"
    [[ -n "$tarball" ]] || qi_die "no tarball in $tmp/dist"
    ANSIBLE_COLLECTIONS_PATH="$tmp/installed" run ansible-galaxy collection install --offline -p "$tmp/installed" \
        "$tarball" >/dev/null
    export ANSIBLE_COLLECTIONS_PATH="$tmp/installed"
    qi_log "molecule: the collection from $(basename "$tarball"), installed in $ANSIBLE_COLLECTIONS_PATH"
    for scenario in "${scenarios[@]}"; do
        local start
        start="$(qi_now)"
        if run molecule test -s "$scenario"; then
            qi_log "molecule $scenario: passed in $(qi_elapsed "$start")s"
        else
            qi_log "molecule $scenario: FAILED in $(qi_elapsed "$start")s"
            failed+=("$scenario")
        fi
    done
    if [[ ${#failed[@]} -ne 0 ]]; then
        qi_log "molecule scenarios failed: ${failed[*]}"
        qi_note "failed: ${failed[*]}"
        return 1
    fi
}

# The AWX side (docs/awx.md): the execution environment's build context (ansible-builder create,
# offline), the surveys against the playbooks, and the job-template playbooks run by ansible-runner
# as AWX runs a job, with two real guests. -s: the test prints the job events it checked.
run_awx() {
    PYTHONDONTWRITEBYTECODE=1 run python -m pytest -p no:cacheprovider -s -q tests/awx
}

# Build the collection artifact, check it carries nothing that must not ship, install it
# and verify the installed files against its manifest.
run_build() {
    local tmp tarball bad
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/qi-build.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the step runs in its own subshell
    trap "rm -rf -- '$tmp'" EXIT
    run ansible-galaxy collection build --output-path "$tmp/dist" .
    tarball="$(compgen -G "$tmp/dist/qemu_init-qemu-*.tar.gz" | head -n 1)"
    [[ -n "$tarball" ]] || qi_die "no tarball in $tmp/dist"
    qi_log "artifact: $(basename "$tarball"), $(tar -tzf "$tarball" | wc -l) entries, $(du -h "$tarball" | cut -f1)"
    bad="$(tar -tzf "$tarball" | sed 's|^\./||' | grep -E \
        '^(tests/output|\.venv|\.build|collections|\.ansible|\.git|\.hypothesis|\.pytest_cache|tests/integration/inventory)(/|$)|(^|/)__pycache__(/|$)|\.pyc$' || true)"
    if [[ -n "$bad" ]]; then
        printf '%s\n' "$bad" | head -n 20 >&2
        qi_die "the artifact contains files that must not ship (see above; fix build_ignore in galaxy.yml)"
    fi
    # Only the fresh directory on the collections path, or galaxy finds the laid-out copy
    # and reports "already installed".
    export ANSIBLE_COLLECTIONS_PATH="$tmp/installed"
    run ansible-galaxy collection install --offline -p "$tmp/installed" "$tarball"
    [[ -f "$tmp/installed/ansible_collections/qemu_init/qemu/MANIFEST.json" ]] ||
        qi_die "installed collection has no MANIFEST.json"
    run ansible-galaxy collection verify --offline -p "$tmp/installed" qemu_init.qemu
    run ansible-doc --list qemu_init.qemu
}

# --------------------------------------------------------------------------------------
# Runner.

RESULT_NAMES=()
RESULT_STATUS=()
RESULT_TIMES=()
RESULT_NOTES=()
record() {
    RESULT_NAMES+=("$1")
    RESULT_STATUS+=("$2")
    RESULT_TIMES+=("$3")
    RESULT_NOTES+=("${4:-}")
}

layout() {
    qi_layout "$COLL"
    # Tools that install the collection somewhere (molecule's prerun) do it here, not in ~/.ansible.
    rm -rf -- "$ANSIBLE_HOME"
    mkdir -p "$ANSIBLE_HOME"
}

print_summary() {
    local i n_passed=0 n_failed=0
    printf '\n%-14s %-8s %9s  %s\n' STEP RESULT SECONDS NOTE
    for i in "${!RESULT_NAMES[@]}"; do
        printf '%-14s %-8s %9s  %s\n' "${RESULT_NAMES[$i]}" "${RESULT_STATUS[$i]}" \
            "${RESULT_TIMES[$i]}" "${RESULT_NOTES[$i]}"
        case "${RESULT_STATUS[$i]}" in
            passed) n_passed=$((n_passed + 1)) ;;
            failed) n_failed=$((n_failed + 1)) ;;
        esac
    done
    printf '%-14s %-8s %9s\n' total "" "$(qi_elapsed "$SUITE_START")"
    printf '\n%d passed, %d failed\n' "$n_passed" "$n_failed"
    return $((n_failed > 0))
}

cleanup() {
    if [[ ${#CLEANUP_FILES[@]} -gt 0 ]]; then
        rm -f -- "${CLEANUP_FILES[@]}"
    fi
}

# One run per build dir: two runs rsyncing into the same copy would break each other. A pid
# file, not flock: a lock fd would be inherited by daemonized qemu processes the tests leave.
acquire_build_lock() {
    local lock="$QI_BUILD_DIR/.test-sh.pid" pid
    mkdir -p "$QI_BUILD_DIR"
    if ! (set -o noclobber; printf '%s\n' "$$" >"$lock") 2>/dev/null; then
        pid="$(cat "$lock" 2>/dev/null || true)"
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            qi_die "another tools/test.sh (pid $pid) is using $QI_BUILD_DIR; wait for it, or set QI_BUILD_DIR"
        fi
        printf '%s\n' "$$" >"$lock"  # stale: its run is gone
    fi
    CLEANUP_FILES+=("$lock")
}

usage() {
    printf 'usage: bash tools/test.sh [--list] [STEP...]\nsteps (in run order): %s\n' "${STEP_NAMES[*]}"
}

# Internal: run one step's command from $COLL with `set -e` (a process of its own, so that
# `timeout` can bound it). The parent exported everything it needs.
run_one_step() {
    define_steps
    [[ -n "${STEP_CMDS[$1]+set}" ]] || qi_die "unknown step: $1"
    cd "$COLL"
    eval "${STEP_CMDS[$1]}"
}

# setup_failed PART START NOTE: PART of the setup failed (started at START): record it, every step as not run, and
# print the summary. Called from main, whose `steps` it reads.
setup_failed() {
    local name
    record "$1" failed "$(qi_elapsed "$2")" "$3; no step ran"
    for name in "${steps[@]}"; do
        record "$name" not-run -
    done
    print_summary
}

main() {
    if [[ "${1:-}" == --run-step ]]; then
        run_one_step "$2"
        return
    fi
    define_steps
    local arg
    local -A wanted=()
    for arg in "$@"; do
        case "$arg" in
            -h | --help) usage; return 0 ;;
            --list) printf '%s\n' "${STEP_NAMES[@]}"; return 0 ;;
            -*) usage >&2; return 2 ;;
        esac
        [[ -n "${STEP_CMDS[$arg]+set}" ]] || { qi_warn "unknown step: $arg"; usage >&2; return 2; }
        wanted[$arg]=1
    done
    local -a steps=()
    local name
    for name in "${STEP_NAMES[@]}"; do
        if [[ $# -eq 0 || -n "${wanted[$name]+set}" ]]; then
            steps+=("$name")
        fi
    done

    SUITE_START="$(qi_now)"
    CLEANUP_FILES=()
    trap cleanup EXIT
    acquire_build_lock
    local start rc
    qi_log "[bootstrap] bash tools/bootstrap.sh"
    start="$(qi_now)"
    if ! bash "$QI_REPO/tools/bootstrap.sh"; then
        setup_failed bootstrap "$start" setup
        return 1
    fi
    record bootstrap ok "$(qi_elapsed "$start")" setup

    export PATH="$QI_VENV/bin:$PATH"
    export ANSIBLE_COLLECTIONS_PATH="$QI_BUILD_DIR"
    export ANSIBLE_HOME="$QI_BUILD_DIR/ansible-home"
    if [[ ! -t 1 && -z "${NO_COLOR+set}" ]]; then
        # ansible-lint and molecule colour even into files; keep CI logs readable.
        export NO_COLOR=1 PY_COLORS=0
    fi
    PYV="$(qi_venv_python_version)"
    export PYV

    start="$(qi_now)"
    if ! layout; then
        setup_failed layout "$start" "setup (rsync to $COLL)"
        return 1
    fi
    record layout ok "$(qi_elapsed "$start")" "setup: $COLL"

    QI_STEP_SKIP_FILE="$(mktemp "${TMPDIR:-/tmp}/qi-skip.XXXXXX")"
    QI_STEP_NOTE_FILE="$(mktemp "${TMPDIR:-/tmp}/qi-note.XXXXXX")"
    CLEANUP_FILES+=("$QI_STEP_SKIP_FILE" "$QI_STEP_NOTE_FILE")
    export QI_STEP_SKIP_FILE QI_STEP_NOTE_FILE

    local status note
    for name in "${steps[@]}"; do
        printf '\n' >&2
        qi_log "[$name] ${STEP_CMDS[$name]}"
        : >"$QI_STEP_SKIP_FILE"
        : >"$QI_STEP_NOTE_FILE"
        start="$(qi_now)"
        rc=0
        if [[ "$QI_STEP_TIMEOUT" -gt 0 ]]; then
            timeout -k 30 "$QI_STEP_TIMEOUT" bash "$QI_REPO/tools/test.sh" --run-step "$name" \
                </dev/null || rc=$?
        else
            bash "$QI_REPO/tools/test.sh" --run-step "$name" </dev/null || rc=$?
        fi
        note="$(paste -sd ';' "$QI_STEP_NOTE_FILE")"
        if [[ $rc -eq 124 && "$QI_STEP_TIMEOUT" -gt 0 ]]; then
            status=failed
            note="timed out after ${QI_STEP_TIMEOUT}s (QI_STEP_TIMEOUT)${note:+; $note}"
        elif [[ $rc -ne 0 ]]; then
            status=failed
            note="exit $rc${note:+; $note}"
        elif [[ -s "$QI_STEP_SKIP_FILE" ]]; then
            status=skipped
            note="$(head -n 1 "$QI_STEP_SKIP_FILE")"
        else
            status=passed
        fi
        record "$name" "$status" "$(qi_elapsed "$start")" "$note"
        qi_log "[$name] ${status^^} in ${RESULT_TIMES[-1]}s${note:+ ($note)}"
    done

    print_summary
}

main "$@"
