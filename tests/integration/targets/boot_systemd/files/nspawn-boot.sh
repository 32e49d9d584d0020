#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# The boot test (docs/boot.md): a Debian 12 systemd booted in systemd-nspawn with a network namespace
# of its own, the host role and three autostart VMs configured inside it before boot, then:
#   - systemd starts the VMs at boot (qemu-init@NAME.service, Type=forking): each guest prints QI-READY,
#     boot1 pings the two others over the bridge the units made, and systemd's MainPID is QEMU's pid;
#   - the container is powered off (SIGRTMIN+4 to its PID 1, what `machinectl poweroff` sends): every
#     guest prints QI-POWEROFF, the three stops overlap in time (all "Stopping" before any "Stopped"),
#     each says stop_method acpi, nothing is killed, and the network goes down after the VMs.
# Evidence from the guests' serial logs and the container's journal, read from the host afterwards.
#
#   nspawn-boot.sh REPO ROOT_CACHE_DIR WORK_DIR COLLECTIONS_DIR VENV GUEST_DIR
# REPO holds tools/build-nspawn-root.sh; COLLECTIONS_DIR holds ansible_collections/qemu_init/qemu (bound
# read-only into the container); VENV is the controller's virtualenv (Debian 12's python3 in the root
# runs it: same interpreter); GUEST_DIR holds the test guest. Prints `key=value` result lines last.
set -euo pipefail

REPO=$1 ROOT_CACHE=$2 WORK=$3 COLLECTIONS=$4 VENV=$5 GUEST_DIR=$6
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VMS=(boot1 boot2 boot3)
ROOT=$WORK/root
SCRIPT_PID='' NSPAWN_PID='' INIT_PID=''

say() { printf 'nspawn-boot: %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The first descendant of PID $1 (breadth first) whose command name is $2.
descendant_named() {
    local -a queue=("$1")
    local pid child
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        for child in $(pgrep -P "$pid" 2>/dev/null); do
            [[ $(cat "/proc/$child/comm" 2>/dev/null) == "$2" ]] && echo "$child" && return 0
            queue+=("$child")
        done
    done
    return 1
}

alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

cleanup() {
    # Only the container this script started, found through its pids. Its systemd is PID 1 of the
    # container's pid namespace: when it ends, every process in there (the QEMUs) ends with it.
    if [[ -z $NSPAWN_PID && -n $SCRIPT_PID ]]; then NSPAWN_PID=$(descendant_named "$SCRIPT_PID" systemd-nspawn) || NSPAWN_PID=''; fi
    if [[ -z $INIT_PID && -n $NSPAWN_PID ]]; then INIT_PID=$(descendant_named "$NSPAWN_PID" systemd) || INIT_PID=''; fi
    if alive "$INIT_PID"; then
        say "cleanup: powering the container off (its systemd is pid $INIT_PID)"
        kill -s RTMIN+4 "$INIT_PID" 2>/dev/null || true
        for _ in $(seq 150); do alive "$INIT_PID" || break; sleep 0.2; done
        if alive "$INIT_PID"; then kill -KILL "$INIT_PID" 2>/dev/null || true; fi
    fi
    if alive "$NSPAWN_PID"; then kill "$NSPAWN_PID" 2>/dev/null || true; fi
    if alive "$SCRIPT_PID"; then kill "$SCRIPT_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# 1. The root (cached) and a copy of it to boot.
t0=$(now)
bash "$REPO/tools/build-nspawn-root.sh" "$ROOT_CACHE" >&2
build_s=$(since "$t0")
t0=$(now)
rm -rf "$ROOT"
mkdir -p "$WORK"
cp -a --reflink=auto "$ROOT_CACHE/rootfs" "$ROOT"
copy_s=$(since "$t0")

# 2. What the test adds: the guest, the playbook, the network stand-in unit.
kernel=vmlinux
grep -qx 'pvh_vmlinux=yes' "$GUEST_DIR/manifest" || kernel=vmlinuz
install -d "$ROOT/srv/guest" "$ROOT/srv/qi" "$ROOT/var/log/qi-guests"
cp "$GUEST_DIR/$kernel" "$GUEST_DIR/initrd.img" "$ROOT/srv/guest/"
cp "$HERE/site.yml" "$ROOT/srv/qi/site.yml"
cp "$HERE/qi-network.service" "$ROOT/etc/systemd/system/qi-network.service"
ln -sfn /etc/systemd/system/qi-network.service "$ROOT/etc/systemd/system/multi-user.target.wants/qi-network.service"

# 3. Configure the root as a user would an image: Ansible inside it, systemd not running.
t0=$(now)
if ! systemd-nspawn -q -D "$ROOT" --register=no --keep-unit --private-network --pipe \
    --bind-ro="$VENV" --bind-ro="$COLLECTIONS:/qi/collections" \
    -E ANSIBLE_COLLECTIONS_PATH=/qi/collections -E ANSIBLE_HOME=/tmp/ansible-home \
    -E ANSIBLE_LOCALHOST_WARNING=false -E ANSIBLE_NOCOLOR=1 \
    "$VENV/bin/ansible-playbook" -i localhost, -e ansible_python_interpreter=/usr/bin/python3 \
    -e boot_guest_kernel="$kernel" /srv/qi/site.yml >"$WORK/configure.log" 2>&1; then
    tail -n 40 "$WORK/configure.log" >&2
    fail "ansible-playbook inside the root failed (log: $WORK/configure.log)"
fi
configure_s=$(since "$t0")
for vm in "${VMS[@]}"; do
    [[ -L $ROOT/etc/systemd/system/qemu-init.target.wants/qemu-init@$vm.service ]] ||
        fail "vm_config autostart made no link for $vm"
done
[[ -L $ROOT/etc/systemd/system/multi-user.target.wants/qemu-init.target ]] || fail "the role did not enable qemu-init.target"

# 4. Boot. nspawn -b wants a terminal: script(1) gives it one.
t0=$(now)
script -qfec "systemd-nspawn -D '$ROOT' --register=no --keep-unit --private-network -b" "$WORK/console.log" \
    </dev/null >/dev/null 2>&1 &
SCRIPT_PID=$!
# script(1) runs the command through sh: nspawn is a grandchild; the container's systemd is its child.
for _ in $(seq 300); do
    NSPAWN_PID=$(descendant_named "$SCRIPT_PID" systemd-nspawn) && INIT_PID=$(descendant_named "$NSPAWN_PID" systemd) && break
    NSPAWN_PID='' INIT_PID=''
    alive "$SCRIPT_PID" || break
    sleep 0.2
done
[[ -n $INIT_PID ]] || fail "the container's systemd did not start (console: $WORK/console.log)"
say "container up: nspawn pid $NSPAWN_PID, its systemd is pid $INIT_PID here"

# 5. The guests come up by themselves: QI-READY in each serial log, boot1 pings the others.
marker() { tr -d '\r' 2>/dev/null <"$ROOT/var/log/qi-guests/$1.log" | grep -c -- "^$2" || true; }
waited=0
while :; do
    ready=0
    for vm in "${VMS[@]}"; do [[ $(marker "$vm" "QI-READY $vm") -ge 1 ]] && ready=$((ready + 1)); done
    pings=$(marker boot1 "QI-PING-")
    [[ $ready -eq ${#VMS[@]} && $pings -ge 2 ]] && break
    ((waited < 1800)) || fail "after 180 s: $ready of ${#VMS[@]} guests ready, $pings pings done (console: $WORK/console.log)"
    kill -0 "$NSPAWN_PID" 2>/dev/null || fail "the container ended early (console: $WORK/console.log)"
    sleep 0.1
    waited=$((waited + 1))
done
boot_s=$(since "$t0")
[[ $(marker boot1 "QI-PING-OK") -eq 2 ]] || fail "boot1 could not ping both peers over the bridge: $(tr -d '\r' <"$ROOT/var/log/qi-guests/boot1.log" | grep QI-PING)"

# systemd tracks QEMU itself: the unit's MainPID is the pid in QEMU's pidfile (both in the container's
# pid namespace), and `qemu-init list` agrees.
inside() { nsenter --target "$INIT_PID" --mount --uts --ipc --net --pid -- "$@"; }
for vm in "${VMS[@]}"; do
    main_pid=$(inside systemctl show -p MainPID --value "qemu-init@$vm.service")
    file_pid=$(cat "/proc/$INIT_PID/root/run/qemu-init/$vm/qemu.pid")
    state=$(inside systemctl is-active "qemu-init@$vm.service" || true)
    [[ $state == active && $main_pid == "$file_pid" && $main_pid != 0 ]] ||
        fail "qemu-init@$vm.service: $state, MainPID $main_pid, pidfile $file_pid"
    say "qemu-init@$vm.service active, MainPID $main_pid = QEMU's pidfile"
done
inside systemctl status --no-pager --lines=0 qemu-init@boot1.service >"$WORK/status-boot1.txt" || true
grep -q 'Main PID: [0-9]* (qemu-system' "$WORK/status-boot1.txt" || fail "systemctl status does not show QEMU as the main process"
inside /usr/local/sbin/qemu-init list >&2

# 6. Power the container off, as `machinectl poweroff` does: SIGRTMIN+4 to its systemd.
t0=$(now)
kill -s RTMIN+4 "$INIT_PID"
for _ in $(seq 1000); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$NSPAWN_PID" 2>/dev/null && fail "the container did not power off within 200 s"
poweroff_s=$(since "$t0")
wait "$SCRIPT_PID" || true
SCRIPT_PID='' NSPAWN_PID=''

# 7. Evidence: the serial logs and the journal.
for vm in "${VMS[@]}"; do
    [[ $(marker "$vm" "QI-POWEROFF $vm") -eq 1 ]] || fail "$vm printed no QI-POWEROFF (its ACPI power button was not handled)"
done
journalctl --directory="$ROOT/var/log/journal" -o short-unix --no-pager >"$WORK/journal.txt"
# stopping/stopped times per VM, the stop methods, the network's stop, and what must not be there.
awk -v vms="${VMS[*]}" '
    BEGIN { n = split(vms, v, " "); for (i = 1; i <= n; i++) want[v[i]] = 1; boot = 0 }
    / systemd\[1\]: Starting qemu-init@/ { boot++ }
    / systemd\[1\]: Stopping qemu-init@/ { match($0, /qemu-init@[^.]+/); vm = substr($0, RSTART + 10, RLENGTH - 10); stopping[vm] = $1 }
    / systemd\[1\]: Stopped qemu-init@/ { match($0, /qemu-init@[^.]+/); vm = substr($0, RSTART + 10, RLENGTH - 10); stopped[vm] = $1 }
    / qemu-init\[[0-9]+\]: [^ ]+: stopped \(/ { vm = $4; sub(/:$/, "", vm); m = $6; sub(/^\(/, "", m); sub(/,$/, "", m); method[vm] = m }
    /qi-network down/ { netdown = $1 }
    /qemu-init@.*(Killing process|timed out|Failed with result)/ { bad = bad " [" $0 "]" }
    END {
        for (vm in want) {
            if (!(vm in stopping) || !(vm in stopped)) { print "error=no Stopping/Stopped lines for " vm; exit }
            if (method[vm] != "acpi") { print "error=" vm " stop_method " method[vm] " (not acpi)"; exit }
            if (first == "" || stopping[vm] < first) first = stopping[vm]
            if (lastin == "" || stopping[vm] > lastin) lastin = stopping[vm]
            if (firstout == "" || stopped[vm] < firstout) firstout = stopped[vm]
            if (last == "" || stopped[vm] > last) last = stopped[vm]
            sum += stopped[vm] - stopping[vm]
            if (slowest == "" || stopped[vm] - stopping[vm] > slowest) slowest = stopped[vm] - stopping[vm]
        }
        if (bad != "") { print "error=killed or failed:" bad; exit }
        if (netdown == "" || netdown < last) { print "error=the network went down (" netdown ") before the last VM stopped (" last ")"; exit }
        printf "stops_overlap=%s\n", (lastin < firstout) ? "yes" : "no"
        printf "stop_total_s=%.2f\nstop_sum_s=%.2f\nstop_slowest_s=%.2f\nnetwork_down_after_s=%.2f\n", last - first, sum, slowest, netdown - last
    }' "$WORK/journal.txt" >"$WORK/stops.txt"
cat "$WORK/stops.txt" >&2
grep -q '^error=' "$WORK/stops.txt" && fail "$(sed -n 's/^error=//p' "$WORK/stops.txt")"
grep -qx 'stops_overlap=yes' "$WORK/stops.txt" || fail "the VMs were not stopped in parallel (journal: $WORK/journal.txt)"
grep -E 'systemd\[1\]: (Stopping|Stopped) qemu-init@|qemu-init\[[0-9]+\]: .*stopped \(|qi-network down' "$WORK/journal.txt" >&2

# 8. Results for the Ansible target.
echo "build_s=$build_s"
echo "copy_s=$copy_s"
echo "configure_s=$configure_s"
echo "boot_to_ready_s=$boot_s"
echo "poweroff_s=$poweroff_s"
cat "$WORK/stops.txt"
echo "vms=${VMS[*]}"
