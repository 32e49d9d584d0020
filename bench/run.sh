#!/usr/bin/env bash
# The performance benchmark (docs/performance.md): the fleet-up curve against a serial script (P1, P2), graceful
# stops against the guests' CPU floor (P3, P4), libvirt (P5), 200 VMs (P6); ROUNDS rounds (default 5), one
# table of min/median/max, the curve as an SVG, and the machine it ran on. As root on Debian 12, from the
# repository:
#   bash bench/run.sh [--only SECTION[,SECTION...]] [ROUNDS]
# Sections (all by default): curve (P1, P2, the curve and the module's peak RSS), stop (P3, P4), libvirt (P5),
# info (P6).
# Environment: QI_BENCH_LIBVIRT=0 leaves P5 out (no libvirt installed or started); QI_BENCH_CURVE (fleet sizes of
# the curve, default "1 10 50 100 200"), QI_BENCH_STOP (guests stopped in one call, default "1 2 10 20"; 1 is
# P3), QI_BENCH_FLEET (20 VMs in P5), QI_BENCH_INFO (200 VMs in P6); QI_BENCH_OUT (where the results, the table
# and the SVG are written, default $QI_BUILD_DIR/bench-out); QI_BUILD_DIR, QI_VENV, QI_GUEST_DIR as for
# tools/test.sh.
#
# What it installs for itself, beyond tools/bootstrap.sh: Debian's libvirt-daemon-system, python3-libvirt and python3-lxml
# (libvirt's side of P5), and PyPI's `ansible` package (for its community.libvirt collection, pinned in
# bench/requirements.txt) in its own venv, .cache/bench-venv, without dependencies: both sides run on the
# project's ansible-core. It starts libvirtd (and virtlogd) if none runs, and stops only what it started.
# Everything that makes links does it in network namespaces it creates and deletes.
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

sections="curve,stop,libvirt,info"
rounds=5
while (($#)); do
    case "$1" in
    --only)
        (($# > 1)) || qi_die "--only needs a list of sections (curve,stop,libvirt,info)"
        sections="$2"
        shift 2
        ;;
    --only=*)
        sections="${1#--only=}"
        shift
        ;;
    -h | --help)
        sed -n '2,9p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        rounds="$1"
        shift
        ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || qi_die "ROUNDS must be a positive number, got $rounds"
for section in ${sections//,/ }; do
    [[ "$section" =~ ^(curve|stop|libvirt|info)$ ]] || qi_die "unknown section $section (curve, stop, libvirt, info)"
done
# wanted SECTION: whether this run measures SECTION.
wanted() {
    [[ ",$sections," == *",$1,"* ]]
}
read -r -a curve_sizes <<<"${QI_BENCH_CURVE:-1 10 50 100 200}"
read -r -a stop_counts <<<"${QI_BENCH_STOP:-1 2 10 20}"
fleet="${QI_BENCH_FLEET:-20}"
info_count="${QI_BENCH_INFO:-200}"
use_libvirt="${QI_BENCH_LIBVIRT:-1}"
wanted libvirt || use_libvirt=0
bench="$QI_REPO/bench"
for n in "${curve_sizes[@]}" "${stop_counts[@]}" "$fleet" "$info_count"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || qi_die "fleet sizes must be positive numbers, got $n"
done
# The curve's largest fleet is the one whose module processes are watched (peak RSS).
rss_size="$(printf '%s\n' "${curve_sizes[@]}" | sort -n | tail -n 1)"
[[ "$(id -u)" == 0 ]] || qi_die "run me as root: the bench makes network namespaces, bridges and taps"

bash "$QI_REPO/tools/bootstrap.sh"
export QI_GUEST_DIR="${QI_GUEST_DIR:-$QI_REPO/.cache/guest}"
bash "$QI_REPO/tools/build-guest.sh" "$QI_GUEST_DIR" >&2

collections="$QI_BUILD_DIR/bench"
if [[ "$use_libvirt" == 1 ]]; then
    missing=()
    for pkg in libvirt-daemon-system python3-libvirt python3-lxml; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        qi_log "apt-get install ${missing[*]} (P5: libvirt's side)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    bench_venv="$QI_REPO/.cache/bench-venv"
    stamp="$bench_venv/.requirements"
    if ! cmp -s "$bench/requirements.txt" "$stamp" 2>/dev/null; then
        qi_log "bench venv $bench_venv: PyPI ansible (community.libvirt for P5)"
        rm -rf "$bench_venv"
        "$(qi_find_python 11 13)" -m venv "$bench_venv"
        "$bench_venv/bin/pip" install -q --no-deps -r "$bench/requirements.txt"
        cp "$bench/requirements.txt" "$stamp"
    fi
    site="$("$bench_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    collections="$collections:$site"
fi
qi_layout "$QI_BUILD_DIR/bench/ansible_collections/qemu_init/qemu"
# The callback counts the collection's module calls of each play ($QI_BENCH_CALLS; bench/callback_plugins).
export PATH="$QI_VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_HOME="$QI_BUILD_DIR/bench/ansible-home" \
    ANSIBLE_CALLBACK_PLUGINS="$bench/callback_plugins" ANSIBLE_CALLBACKS_ENABLED=qi_bench_calls
role=false
if [[ -f "$QI_REPO/roles/vms/tasks/main.yml" ]]; then
    role=true
fi
# The stop is timed through the vms module (the fleet in one call) where the collection has it, else through vm.
stop_module="${QI_BENCH_STOP_MODULE:-vm}"
if [[ -z "${QI_BENCH_STOP_MODULE:-}" && -f "$QI_REPO/plugins/modules/vms.py" ]]; then
    stop_module=vms
fi

scratch="$(mktemp -d /tmp/qi-bench.XXXXXX)"
results="$scratch/results"
out="${QI_BENCH_OUT:-$QI_BUILD_DIR/bench-out}"
prefix="qi-b$$"
namespaces=()
lv_reaper=""
kvm_mode=""
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$results"

# bench/modproc.py with the venv's interpreter as its shebang: the interpreter for plays whose module processes
# are watched (wall time, peak RSS; one line per process in $QI_MODPROC_LOG).
modproc="$scratch/modproc-python"
printf '#!%s\n' "$(readlink -f "$QI_VENV/bin/python")" >"$modproc"
cat "$bench/modproc.py" >>"$modproc"
chmod 0755 "$modproc"
export QI_MODPROC_LOG="$scratch/modproc-other.log"

cleanup() {
    local ns dir domain
    set +e
    # After a failure: the VMs, script QEMUs and libvirt domains a round left behind.
    for dir in "$scratch"/*/; do
        if [[ -d "$dir/etc" ]]; then
            ansible-playbook -i localhost, "$bench/teardown.yml" -e teardown_dir="${dir%/}" >/dev/null 2>&1
        fi
    done
    for dir in "$scratch"/s*/; do
        dir="${dir%/}"
        [[ -d "$dir" ]] && bash "$bench/fleet.sh" down - "$dir" "${dir##*-}"
    done
    if [[ "$use_libvirt" == 1 ]]; then
        for domain in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^qibench-'); do
            virsh -q -c qemu:///system destroy "$domain" >/dev/null 2>&1
            virsh -q -c qemu:///system undefine "$domain" >/dev/null 2>&1
        done
        # libvirt keeps each domain's QEMU log after undefine.
        rm -f /var/log/libvirt/qemu/qibench-qb*.log
    fi
    if [[ -n "$lv_reaper" ]]; then
        kill -TERM "$lv_reaper" 2>/dev/null
        wait "$lv_reaper" 2>/dev/null
    fi
    if [[ -n "$kvm_mode" ]]; then
        chmod "$kvm_mode" /dev/kvm
    fi
    for ns in "${namespaces[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

netns() {
    ip netns add "$1"
    namespaces+=("$1")
}

unnetns() {
    ip netns del "$1"
}

# play PLAYBOOK DIR NETNS [ansible-playbook args...]: a fleet play on DIR/NETNS (fleet.yml's extra vars); fleet.yml is
# fleet_modules.yml (the same fleet without the role) for a commit without the role.
play() {
    local playbook="$1" dir="$2" ns="$3"
    shift 3
    if [[ "$playbook" == fleet.yml && "$role" != true ]]; then
        playbook=fleet_modules.yml
    fi
    ansible-playbook -i localhost, "$bench/$playbook" -e fleet_dir="$dir" -e fleet_ns="$ns" "$@"
}

# timed ROUND KEY COMMAND...: run it, log to $scratch/KEY.log, append "ROUND KEY SECONDS" to the results; its
# module calls are logged to $scratch/KEY.calls (bench/callback_plugins/qi_bench_calls.py).
timed() {
    local round="$1" key="$2" t0 t1
    shift 2
    : >"$scratch/$key.calls"
    t0="$(qi_now)"
    if ! QI_BENCH_CALLS="$scratch/$key.calls" "$@" >"$scratch/$key.log" 2>&1; then
        tail -n 30 "$scratch/$key.log" >&2
        qi_die "round $round: $key failed (log above)"
    fi
    t1="$(qi_now)"
    awk -v r="$round" -v k="$key" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s %s %.3f\n", r, k, b - a }' >>"$results"
}

# bench_line ROUND LOG [PREFIX]: the BENCH key=value pairs of LOG as result lines, keys prefixed with PREFIX.
bench_line() {
    grep -o 'BENCH [^"]*' "$2" | head -n 1 | tr ' ' '\n' | grep '=' | grep -v '^count=' \
        | sed "s/^/$1 ${3:-}/; s/=/ /" >>"$results"
}

# changed_count LOG: the changed= figure of the play recap.
changed_count() {
    grep -o 'changed=[0-9]*' "$1" | tail -n 1 | cut -d= -f2
}

# calls_count KEY: how many module calls of the collection timed KEY made.
calls_count() {
    wc -l <"$scratch/$1.calls" | tr -d ' '
}

# modproc_lines ROUND KEY LOG: bench/modproc.py's log of one play as result lines: KEY_wall (the module
# processes' wall time, summed), KEY_hwm and KEY_maxrss (the largest of their peaks, KiB).
modproc_lines() {
    awk -v r="$1" -v k="$2" '{ wall += $2; if ($3 > hwm) hwm = $3; if ($4 > rss) rss = $4 }
        END { if (NR) printf "%s %s_wall %.4f\n%s %s_hwm %d\n%s %s_maxrss %d\n", r, k, wall, r, k, hwm, r, k, rss }' "$3" >>"$results"
}

start_libvirt() {
    local autostart
    if virsh -q -c qemu:///system uri >/dev/null 2>&1; then
        qi_log "libvirtd is running already: P5 uses it as it is"
        return
    fi
    # libvirtd would start autostart networks (bridges, dnsmasq, firewall rules): not on this machine's network.
    autostart="$(find /etc/libvirt/qemu/networks/autostart -name '*.xml' 2>/dev/null | head -n 1)"
    if [[ -n "$autostart" ]]; then
        qi_die "libvirt would autostart the network in $autostart; disable it (virsh net-autostart --disable NAME) or set QI_BENCH_LIBVIRT=0"
    fi
    # libvirt only trusts its cached QEMU capabilities while its QEMU user may open /dev/kvm; where only root
    # may (no udev rule here), it probes QEMU again on every call, ~40 s each. Debian's udev makes it 0666.
    if [[ -c /dev/kvm ]] && ! runuser -u libvirt-qemu -- test -r /dev/kvm -a -w /dev/kvm; then
        kvm_mode="$(stat -c %a /dev/kvm)"
        qi_log "chmod 0666 /dev/kvm for the run (was $kvm_mode; restored at exit), as Debian's udev rule sets it"
        chmod 0666 /dev/kvm
    fi
    netns "$prefix-lv"
    qi_log "starting libvirtd and virtlogd in network namespace $prefix-lv"
    ip netns exec "$prefix-lv" python3 "$bench/reaper.py" "$scratch/reaper.pid" \
        virtlogd --pid-file "$scratch/virtlogd.pid" --also libvirtd --pid-file "$scratch/libvirtd.pid" \
        >"$scratch/libvirtd.log" 2>&1 &
    lv_reaper=$!
    local tries=0
    until virsh -q -c qemu:///system uri >/dev/null 2>&1; do
        tries=$((tries + 1))
        ((tries < 300)) || qi_die "libvirtd did not come up: $(tail -n 5 "$scratch/libvirtd.log")"
        sleep 0.1
    done
}

if [[ "$use_libvirt" == 1 ]]; then
    start_libvirt
    if virsh -q -c qemu:///system list --all --name | grep -q '^qibench-'; then
        qi_die "libvirt has domains named qibench-*: not the bench's to touch; remove them first"
    fi
    # Warm-up (not timed): libvirt probes QEMU's capabilities on first use.
    for state in up down; do
        if ! ansible-playbook -i localhost, "$bench/libvirt.yml" -e lv_count=1 -e lv_state="$state" >>"$scratch/lv-warm.log" 2>&1; then
            tail -n 30 "$scratch/lv-warm.log" >&2
            qi_die "libvirt warm-up failed (log above)"
        fi
    done
fi

# P1/P2 and the curve: for each fleet size n, n VMs (qb101.., 64 MiB, TCG, -S, 2 e1000 NICs with explicit MACs
# on bridge qi-bbr in a fresh netns, given to the play as data) brought up by the serial script, then by the role (one play), the role's
# play again on the running fleet (changed=0, its module calls counted), an empty play given the same data, and down.
# The largest fleet's plays run their modules under bench/modproc.py (peak RSS; ~20 ms a module call).
curve_round() {
    local r="$1" n ns dir key
    local -a interp
    for n in "${curve_sizes[@]}"; do
        ns="$prefix-s$r-$n"
        dir="$scratch/s$r-$n"
        netns "$ns"
        timed "$r" "c${n}_script" bash "$bench/fleet.sh" up "$ns" "$dir" "$n" indexed
        bash "$bench/fleet.sh" down "$ns" "$dir" "$n" indexed
        unnetns "$ns"
        rm -rf "$dir"
        ns="$prefix-o$r-$n"
        dir="$scratch/o$r-$n"
        netns "$ns"
        interp=()
        if [[ "$n" == "$rss_size" ]]; then
            interp=(-e fleet_python="$modproc")
        fi
        # The fleet as data, as a user's inventory holds it (bench/fleet_vars.py: the same VMs fleet.yml would build).
        python3 "$bench/fleet_vars.py" "$n" "$ns" >"$scratch/fleet-vars.json"
        local -a args=(-e fleet_count="$n" -e fleet_nic=tap -e fleet_paused=true -e fleet_macs=indexed
            -e "@$scratch/fleet-vars.json" "${interp[@]}")
        for key in up rerun down; do
            export QI_MODPROC_LOG="$scratch/modproc-c$n-$key.log"
            : >"$QI_MODPROC_LOG"
            if [[ "$key" == down ]]; then
                timed "$r" "c${n}_$key" play fleet.yml "$dir" "$ns" "${args[@]}" -e fleet_state=absent
            else
                timed "$r" "c${n}_$key" play fleet.yml "$dir" "$ns" "${args[@]}" -e fleet_state=started
            fi
            echo "$r c${n}_${key}_calls $(calls_count "c${n}_$key")" >>"$results"
            modproc_lines "$r" "c${n}_$key" "$QI_MODPROC_LOG"
            if [[ "$key" == rerun ]]; then
                # P2's baseline, right after the re-run it is compared with, given the same fleet as data: reading the
                # user's inventory is Ansible's start-up too (~0.03 s for 100 VMs), not the collection's work.
                timed "$r" "c${n}_empty" ansible-playbook -i localhost, "$bench/empty.yml" -e "@$scratch/fleet-vars.json"
            fi
        done
        export QI_MODPROC_LOG="$scratch/modproc-other.log"
        echo "$r c${n}_rerun_changed $(changed_count "$scratch/c${n}_rerun.log")" >>"$results"
        unnetns "$ns"
        rm -rf "$dir"
    done
}

# P3/P4: graceful stop of N booted test guests in one module call (P3: N = 1), and next to it, in the same
# round, the floor: bench/guest_stop_cpu.py boots N plain QEMUs with the same guest, presses every power button
# at once and measures the CPU their shutdown needs.
stop_round() {
    local r="$1" count dir
    for count in "${stop_counts[@]}"; do
        python3 "$bench/guest_stop_cpu.py" "$QI_GUEST_DIR" "$count" >"$scratch/floor.log" 2>&1 \
            || { tail -n 30 "$scratch/floor.log" >&2; qi_die "round $r: guest_stop_cpu.py with $count guests failed (log above)"; }
        bench_line "$r" "$scratch/floor.log" "floor${count}_"
        dir="$scratch/g$r-$count"
        mkdir -p "$dir"
        : >"$dir/noop.log"
        : >"$dir/stop.log"
        ansible-playbook -i localhost, "$bench/stop.yml" -e stop_dir="$dir" -e stop_count="$count" \
            -e stop_guest="$QI_GUEST_DIR" -e stop_module="$stop_module" -e stop_python="$modproc" >"$scratch/stop.log" 2>&1 \
            || { tail -n 30 "$scratch/stop.log" >&2; qi_die "round $r: stop.yml with $count guests failed (log above)"; }
        bench_line "$r" "$scratch/stop.log" "stop${count}_"
        modproc_lines "$r" "stop${count}_noop" "$dir/noop.log"
        modproc_lines "$r" "stop${count}_stop" "$dir/stop.log"
        rm -rf "$dir"
    done
}

# P5: up and down of the same fleet (user-mode NICs, CPUs running the firmware), ours and libvirt's.
libvirt_round() {
    local r="$1"
    netns "$prefix-u$r"
    local -a p5_args=(-e fleet_count="$fleet" -e fleet_nic=user -e fleet_paused=false -e fleet_python=/usr/bin/python3)
    timed "$r" p5_ours_up play fleet.yml "$scratch/u$r" "$prefix-u$r" "${p5_args[@]}" -e fleet_state=started
    timed "$r" p5_ours_down play fleet.yml "$scratch/u$r" "$prefix-u$r" "${p5_args[@]}" -e fleet_state=absent
    unnetns "$prefix-u$r"
    timed "$r" p5_lv_up ansible-playbook -i localhost, "$bench/libvirt.yml" -e lv_count="$fleet" -e lv_state=up
    timed "$r" p5_lv_down ansible-playbook -i localhost, "$bench/libvirt.yml" -e lv_count="$fleet" -e lv_state=down
}

for ((r = 1; r <= rounds; r++)); do
    qi_log "round $r of $rounds ($sections)"
    if wanted curve; then
        curve_round "$r"
    fi
    if [[ "$use_libvirt" == 1 ]]; then
        libvirt_round "$r"
    fi
    if wanted stop; then
        stop_round "$r"
    fi
done

# P6: $info_count VMs waiting with -S (16 MiB, no NICs); vm_info over all of them, once per round.
if wanted info; then
    qi_log "P6: $info_count VMs"
    netns "$prefix-p6"
    mkdir -p "$scratch/p6"
    timed 1 p6_up play fleet.yml "$scratch/p6" "$prefix-p6" -e fleet_count="$info_count" -e fleet_state=started \
        -e fleet_nic=none -e fleet_paused=true -e fleet_memory=16
    for ((r = 1; r <= rounds; r++)); do
        ansible-playbook -i localhost, "$bench/info.yml" -e info_dir="$scratch/p6" -e info_count="$info_count" \
            >"$scratch/info.log" 2>&1 || { tail -n 30 "$scratch/info.log" >&2; qi_die "P6 vm_info failed (log above)"; }
        bench_line "$r" "$scratch/info.log"
    done
    timed 1 p6_down play fleet.yml "$scratch/p6" "$prefix-p6" -e fleet_count="$info_count" -e fleet_state=absent -e fleet_nic=none
    rm -rf "$scratch/p6"
    PYTHONPATH="$QI_BUILD_DIR/bench" "$QI_VENV/bin/python" "$bench/registry_scaling.py" "$info_count" >"$scratch/reg.log"
    bench_line 1 "$scratch/reg.log"
fi

{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
        "kernel $(uname -r), $(qemu-system-x86_64 --version | head -n 1)"
    echo "software: $(ansible --version | sed -n 1p), $(python3 --version)," \
        "$( [[ "$use_libvirt" == 1 ]] && libvirtd --version || echo 'libvirt not used')," \
        "community.libvirt $(grep -m1 '"version"' "${site:-/nonexistent}/ansible_collections/community/libvirt/MANIFEST.json" 2>/dev/null | grep -o '[0-9][0-9.]*' || echo '-')"
    echo "load average (1/5/15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after;" \
        "sections $sections; vms role: $role; stop through: $stop_module; commit $(git -C "$QI_REPO" rev-parse --short HEAD 2>/dev/null || echo '-')"
} >"$scratch/machine"
mkdir -p "$out"
cp "$results" "$out/results"
cp "$scratch/machine" "$out/machine"
if wanted curve; then
    "$QI_VENV/bin/python" "$bench/plot.py" "$results" "$out/curve.svg" "$scratch/machine"
    qi_log "the curve: $out/curve.svg (docs/performance-curve.svg is the committed copy)"
fi
qi_log "results, table and machine: $out"
# Last, so that its status (1: a re-run was not idempotent) is the script's.
"$QI_VENV/bin/python" "$bench/table.py" "$results" "$scratch/machine" | tee "$out/table.md"
