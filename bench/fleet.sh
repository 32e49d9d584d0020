#!/usr/bin/env bash
# The baseline for P1: the same fleet as bench/fleet.yml (fleet_nic=tap, fleet_paused=true) brought up by a plain
# script making the same ip and qemu-system calls, one command per step, one VM after the other:
#   bash bench/fleet.sh up|down NETNS DIR COUNT [MACS]
# up:   bridge qi-bbr, for each VM qbNNN two taps qbNNN-n1/qbNNN-n2 on it, then qemu-system-x86_64 ... -S -daemonize
#       with the argv the vm module uses (pidfile, QMP socket, serial file, e1000 NICs with the collection's MACs,
#       or with MACS=indexed the explicit DE:AD:BE:<nic>:<i/256>:<i%256> of bench/fleet.yml's fleet_macs=indexed).
# down: SIGTERM to each QEMU by its pidfile, if that pid is still it, then wait until they have exited (a zombie
#       waiting for PID 1 counts as exited), so that the next measurement does not share the CPU with them (not
#       timed; the taps go with the namespace).
set -euo pipefail

action="$1" ns="$2" dir="$3" count="$4" macs="${5:-derived}"

# The collection's MAC rule: DE:AD:BE:EF + the first two bytes of sha256("NAME:OS:INDEX").
mac() {
    local hex
    if [[ "$macs" == indexed ]]; then
        printf 'DE:AD:BE:%02X:%02X:%02X' "$2" $(($3 / 256)) $(($3 % 256))
        return
    fi
    hex="$(printf '%s' "$1:linux:$2" | sha256sum)"
    hex="${hex:0:4}"
    printf 'DE:AD:BE:EF:%s:%s' "${hex:0:2}" "${hex:2:2}" | tr 'a-f' 'A-F'
}

case "$action" in
up)
    ip -n "$ns" link add qi-bbr type bridge stp_state 0
    ip -n "$ns" link set qi-bbr up
    for ((i = 1; i <= count; i++)); do
        vm="qb$((100 + i))"
        for n in 1 2; do
            ip -n "$ns" tuntap add dev "$vm-n$n" mode tap
            ip -n "$ns" link set "$vm-n$n" master qi-bbr up
        done
    done
    for ((i = 1; i <= count; i++)); do
        vm="qb$((100 + i))"
        run="$dir/$vm"
        mkdir -p "$run"
        ip netns exec "$ns" qemu-system-x86_64 -name "$vm" -nodefaults -no-reboot -daemonize \
            -pidfile "$run/qemu.pid" -qmp "unix:$run/qmp.sock,server=on,wait=off" -accel tcg -m 64 \
            -netdev "tap,id=net0,ifname=$vm-n1,script=no,downscript=no" -device "e1000,netdev=net0,mac=$(mac "$vm" 1 "$i")" \
            -netdev "tap,id=net1,ifname=$vm-n2,script=no,downscript=no" -device "e1000,netdev=net1,mac=$(mac "$vm" 2 "$i")" \
            -serial "file:$run/serial.log" -display none -S
    done
    ;;
down)
    pids=()
    for ((i = 1; i <= count; i++)); do
        pidfile="$dir/qb$((100 + i))/qemu.pid"
        if [[ -s "$pidfile" ]]; then
            pid="$(cat "$pidfile")"
            # Only the QEMU this script started: its command line names this pidfile.
            if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$pidfile"; then
                kill -TERM "$pid"
                pids+=("$pid")
            fi
            rm -f "$pidfile"
        fi
    done
    for pid in "${pids[@]}"; do
        for ((try = 0; try < 200; try++)); do
            state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || state=""
            [[ -z "$state" || "$state" == Z ]] && break
            sleep 0.05
        done
    done
    ;;
*)
    echo "usage: $0 up|down NETNS DIR COUNT [derived|indexed]" >&2
    exit 2
    ;;
esac
