#!/usr/bin/env bash
# The performance benchmark (docs/performance.md): P1..P6, ROUNDS rounds (default 5), one table of ratios with
# min/median/max, and the machine it ran on. As root on Debian 12, from the repository:
#   bash bench/run.sh [ROUNDS]
# Environment: QI_BENCH_LIBVIRT=0 leaves P5 out (no libvirt installed or started); QI_BENCH_FLEET (20 VMs in
# P1/P2/P4/P5), QI_BENCH_INFO (200 VMs in P6); QI_BUILD_DIR, QI_VENV, QI_GUEST_DIR as for tools/test.sh.
#
# What it installs for itself, beyond tools/bootstrap.sh: Debian's libvirt-daemon-system, python3-libvirt and python3-lxml
# (libvirt's side of P5), and PyPI's `ansible` package (for its community.libvirt collection, pinned in
# bench/requirements.txt) in its own venv, .cache/bench-venv, without dependencies: both sides run on the
# project's ansible-core. It starts libvirtd (and virtlogd) if none runs, and stops only what it started.
# Everything that makes links does it in network namespaces it creates and deletes.
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

rounds="${1:-5}"
fleet="${QI_BENCH_FLEET:-20}"
info_count="${QI_BENCH_INFO:-200}"
use_libvirt="${QI_BENCH_LIBVIRT:-1}"
bench="$QI_REPO/bench"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || qi_die "ROUNDS must be a positive number, got $rounds"
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
        "$(qi_find_python)" -m venv "$bench_venv"
        "$bench_venv/bin/pip" install -q --no-deps -r "$bench/requirements.txt"
        cp "$bench/requirements.txt" "$stamp"
    fi
    site="$("$bench_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    collections="$collections:$site"
fi
qi_layout "$QI_BUILD_DIR/bench/ansible_collections/qemu_init/qemu"
export PATH="$QI_VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_HOME="$QI_BUILD_DIR/bench/ansible-home"
role=false
if [[ -f "$QI_REPO/roles/vms/tasks/main.yml" ]]; then
    role=true
fi

scratch="$(mktemp -d /tmp/qi-bench.XXXXXX)"
results="$scratch/results"
prefix="qi-b$$"
namespaces=()
lv_reaper=""
kvm_mode=""
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

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
        [[ -d "$dir" ]] && bash "$bench/fleet.sh" down - "${dir%/}" "$fleet"
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

# play PLAYBOOK DIR NETNS [ansible-playbook args...]: a fleet play on DIR/NETNS (fleet.yml's extra vars).
play() {
    local playbook="$1" dir="$2" ns="$3"
    shift 3
    ansible-playbook -i localhost, "$bench/$playbook" -e fleet_dir="$dir" -e fleet_ns="$ns" -e fleet_role="$role" "$@"
}

# timed ROUND KEY COMMAND...: run it, log to $scratch/KEY.log, append "ROUND KEY SECONDS" to the results.
timed() {
    local round="$1" key="$2" t0 t1
    shift 2
    t0="$(qi_now)"
    if ! "$@" >"$scratch/$key.log" 2>&1; then
        tail -n 30 "$scratch/$key.log" >&2
        qi_die "round $round: $key failed (log above)"
    fi
    t1="$(qi_now)"
    awk -v r="$round" -v k="$key" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s %s %.3f\n", r, k, b - a }' >>"$results"
}

# bench_line ROUND LOG: the BENCH key=value pairs of LOG as result lines.
bench_line() {
    grep -o 'BENCH [^"]*' "$2" | head -n 1 | tr ' ' '\n' | grep '=' | sed "s/^/$1 /; s/=/ /" >>"$results"
}

# changed_count LOG: the changed= figure of the play recap.
changed_count() {
    grep -o 'changed=[0-9]*' "$1" | tail -n 1 | cut -d= -f2
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

for ((r = 1; r <= rounds; r++)); do
    qi_log "round $r of $rounds"
    # P1: the same fleet, by a plain script and by the collection; P2: the collection again, and an empty play.
    netns "$prefix-s$r"
    timed "$r" p1_script bash "$bench/fleet.sh" up "$prefix-s$r" "$scratch/s$r" "$fleet"
    bash "$bench/fleet.sh" down "$prefix-s$r" "$scratch/s$r" "$fleet"
    netns "$prefix-o$r"
    fleet_args=(-e fleet_count="$fleet" -e fleet_state=started -e fleet_nic=tap -e fleet_paused=true)
    timed "$r" p1_ours play fleet.yml "$scratch/o$r" "$prefix-o$r" "${fleet_args[@]}"
    timed "$r" p2_ours play fleet.yml "$scratch/o$r" "$prefix-o$r" "${fleet_args[@]}"
    echo "$r p2_changed $(changed_count "$scratch/p2_ours.log")" >>"$results"
    timed "$r" p2_empty ansible-playbook -i localhost, "$bench/empty.yml"
    timed "$r" p1_down play fleet.yml "$scratch/o$r" "$prefix-o$r" -e fleet_count="$fleet" -e fleet_state=absent
    unnetns "$prefix-s$r"
    unnetns "$prefix-o$r"

    # P5: up and down of the same fleet (user-mode NICs, CPUs running the firmware), ours and libvirt's.
    if [[ "$use_libvirt" == 1 ]]; then
        netns "$prefix-u$r"
        p5_args=(-e fleet_count="$fleet" -e fleet_nic=user -e fleet_paused=false -e fleet_python=/usr/bin/python3)
        timed "$r" p5_ours_up play fleet.yml "$scratch/u$r" "$prefix-u$r" "${p5_args[@]}" -e fleet_state=started
        timed "$r" p5_ours_down play fleet.yml "$scratch/u$r" "$prefix-u$r" "${p5_args[@]}" -e fleet_state=absent
        unnetns "$prefix-u$r"
        timed "$r" p5_lv_up ansible-playbook -i localhost, "$bench/libvirt.yml" -e lv_count="$fleet" -e lv_state=up
        timed "$r" p5_lv_down ansible-playbook -i localhost, "$bench/libvirt.yml" -e lv_count="$fleet" -e lv_state=down
    fi

    # P3/P4: graceful stop of one booted guest, of as many as the machine has cores (each guest's shutdown
    # has a core of its own: what the module's parallel stop costs, apart from the guests' competing for CPU),
    # and of $fleet, in one task each.
    stop_counts=(1)
    (($(nproc) > 1 && $(nproc) < fleet)) && stop_counts+=("$(nproc)")
    ((fleet > 1)) && stop_counts+=("$fleet")
    for count in "${stop_counts[@]}"; do
        ansible-playbook -i localhost, "$bench/stop.yml" -e stop_dir="$scratch/g$r-$count" -e stop_count="$count" \
            -e stop_guest="$QI_GUEST_DIR" >"$scratch/stop.log" 2>&1 \
            || { tail -n 30 "$scratch/stop.log" >&2; qi_die "round $r: stop.yml with $count guests failed (log above)"; }
        grep -o 'BENCH [^"]*' "$scratch/stop.log" | head -n 1 | tr ' ' '\n' | grep '=' | grep -v '^count=' \
            | sed "s/^/$r stop${count}_/; s/=/ /" >>"$results"
    done
done

# P6: $info_count VMs waiting with -S (16 MiB, no NICs); vm_info over all of them, once per round.
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

{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
        "kernel $(uname -r), $(qemu-system-x86_64 --version | head -n 1)"
    echo "software: $(ansible --version | sed -n 1p), $(python3 --version)," \
        "$( [[ "$use_libvirt" == 1 ]] && libvirtd --version || echo 'libvirt not used')," \
        "community.libvirt $(grep -m1 '"version"' "${site:-/nonexistent}/ansible_collections/community/libvirt/MANIFEST.json" 2>/dev/null | grep -o '[0-9][0-9.]*' || echo '-')"
    echo "load average (1/5/15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after;" \
        "vms role: $role; fleet $fleet VMs, P6 $info_count VMs"
} >"$scratch/machine"
"$QI_VENV/bin/python" "$bench/table.py" "$results" "$scratch/machine"
