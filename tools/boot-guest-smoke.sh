#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Self-test of the test guest (docs/test-guest.md), with real QEMU under TCG:
#  1. one guest without network, once per kernel image (vmlinux through PVH, vmlinuz):
#     wait for QI-READY, press the power button over QMP, expect QI-POWEROFF and exit;
#     then one with qi.noacpid=1, which must ignore the button (stopped with QMP quit);
#  2. (root only) two guests on a bridge inside a network namespace this script creates
#     and always deletes: each pings the other (QI-PING-OK), then both are powered down.
# Prints the measured times. Stops only the QEMU processes it started (by pidfile).
#
#   tools/boot-guest-smoke.sh [--no-build] [--no-pair]
#
# Environment: QI_GUEST_DIR (guest built by tools/build-guest.sh), QEMU (binary),
# QI_SMOKE_NIC_B (device model of the second pair guest, default e1000).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GUEST_DIR=${QI_GUEST_DIR:-$REPO/.cache/guest}
QEMU=${QEMU:-qemu-system-x86_64}
NIC_B=${QI_SMOKE_NIC_B:-e1000}
READY_TIMEOUT=60
STOP_TIMEOUT=30
NET=10.201.0 # only ever inside our own namespace

build=1
pair=1
for arg in "$@"; do
    case $arg in
        --no-build) build= ;;
        --no-pair) pair= ;;
        *)
            echo "usage: $0 [--no-build] [--no-pair]" >&2
            exit 2
            ;;
    esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qi-smoke.XXXXXX")
NS=qi-smoke-$$
NS_MADE=
PIDFILES=()
declare -A T0=()

say() { printf 'smoke: %s\n' "$*"; }
# stderr: fail is also called inside $(...), whose stdout is captured
fail() {
    say "FAIL: $*" >&2
    exit 1
}

# Seconds between two $EPOCHREALTIME values, to 0.01 s.
delta() {
    local a=${1//[!0-9]/} b=${2//[!0-9]/} # digits only: the separator follows the locale
    local cs=$(((b - a) / 10000))
    printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

# The pid from a pidfile, only while it is still the QEMU we started with that pidfile.
our_pid() {
    local pidfile=$1 pid argv
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    argv=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $argv == *" -pidfile $pidfile "* ]] || return 1
    echo "$pid"
}

# Exited: gone, or a zombie (PID 1 reaps daemonized QEMUs only every second or two).
exited() {
    local state
    state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
    [[ $state == Z ]]
}

cleanup() {
    local rc=$? pidfile pid i
    for pidfile in "${PIDFILES[@]}"; do
        pid=$(our_pid "$pidfile") || continue
        exited "$pid" && continue
        say "stopping leftover QEMU $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            exited "$pid" && break
            sleep 0.1
        done
        exited "$pid" || kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n $NS_MADE ]]; then
        ip netns delete "$NS" || say "could not delete netns $NS"
    fi
    if ((rc != 0)); then
        local log
        for log in "$WORK"/*.log; do
            [[ -f $log ]] || continue
            say "--- tail of $log"
            tail -n 20 "$log" | sed 's/^/    /'
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# launch NAME KERNEL APPEND [QEMU ARGS...]; runs inside $NS when NETNS_EXEC is set.
NETNS_EXEC=()
launch() {
    local name=$1 kernel=$2 append=$3
    shift 3
    PIDFILES+=("$WORK/$name.pid")
    T0[$name]=$EPOCHREALTIME
    "${NETNS_EXEC[@]}" "$QEMU" -name "$name" -accel tcg -m 128 -nodefaults -no-reboot \
        -display none -serial "file:$WORK/$name.log" \
        -kernel "$kernel" -initrd "$GUEST_DIR/initrd.img" \
        -append "console=ttyS0 panic=-1 quiet qi.name=$name $append" \
        -daemonize -pidfile "$WORK/$name.pid" \
        -qmp "unix:$WORK/$name.qmp,server=on,wait=off" "$@" 2>"$WORK/$name.err" ||
        fail "$name: QEMU did not start: $(cat "$WORK/$name.err")"
}

# wait_marker NAME LINE [GIVE_UP_LINE]: wait until the serial log has LINE (exactly);
# prints seconds since launch. Fails on any QI-ERROR, on GIVE_UP_LINE, on timeout and
# when QEMU exits first.
wait_marker() {
    local name=$1 line=$2 give_up=${3:-} log=$WORK/$1.log deadline pid text
    deadline=$((SECONDS + READY_TIMEOUT))
    pid=$(our_pid "$WORK/$name.pid") || fail "$name: no QEMU process"
    while :; do
        text=$(tr -d '\r' <"$log" 2>/dev/null || true)
        if [[ $text == *QI-ERROR* ]]; then
            fail "$name: $(grep '^QI-ERROR' <<<"$text" | head -n1)"
        fi
        grep -qxF -- "$line" <<<"$text" && break
        if [[ -n $give_up ]] && grep -qxF -- "$give_up" <<<"$text"; then
            fail "$name: $give_up"
        fi
        exited "$pid" && fail "$name: QEMU exited before '$line'"
        ((SECONDS < deadline)) || fail "$name: no '$line' within $READY_TIMEOUT s"
        sleep 0.05
    done
    delta "${T0[$name]}" "$EPOCHREALTIME"
}

# qmp_wait COMMAND TIMEOUT NAME...: send the QMP COMMAND (system_powerdown, quit) to each
# guest, then wait for each QEMU to close its QMP socket (it exited). Prints "NAME SECONDS"
# per guest, from the command to the exit; exits 3 if some did not exit within TIMEOUT.
qmp_wait() {
    local command=$1 timeout=$2 name
    shift 2
    local -a socks=()
    for name in "$@"; do socks+=("$name=$WORK/$name.qmp"); done
    python3 - "$command" "$timeout" "${socks[@]}" <<'PY'
import json, selectors, socket, sys, time
command, timeout = sys.argv[1], float(sys.argv[2])
sel = selectors.DefaultSelector()
sent = {}
for arg in sys.argv[3:]:
    name, path = arg.split("=", 1)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    stream = sock.makefile("rwb", buffering=0)
    json.loads(stream.readline())  # greeting
    for cmd in ("qmp_capabilities", command):
        stream.write(json.dumps({"execute": cmd}).encode() + b"\n")
        sent[name] = time.monotonic()
        while True:  # skip events up to the reply; "quit" may close the socket instead
            try:
                line = stream.readline()
            except ConnectionResetError:
                line = b""
            if not line or "return" in json.loads(line):
                break
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ, name)
deadline = time.monotonic() + timeout
while sel.get_map():
    left = deadline - time.monotonic()
    if left <= 0:
        print("still running after %.0f s:" % timeout, *(k.data for k in sel.get_map().values()), file=sys.stderr)
        sys.exit(3)
    for key, _ in sel.select(left):
        try:
            data = key.fileobj.recv(65536)
        except ConnectionResetError:  # after "quit", QEMU may reset rather than close
            data = b""
        if not data:  # QEMU is gone
            print(key.data, "%.2f" % (time.monotonic() - sent[key.data]))
            sel.unregister(key.fileobj)
            key.fileobj.close()
PY
}

# Wait for the process itself (after its socket closed) and check the guest said why.
check_stopped() {
    local name=$1 pid i
    pid=$(our_pid "$WORK/$name.pid") || return 0
    for ((i = 0; i < 100; i++)); do
        exited "$pid" && break
        sleep 0.05
    done
    exited "$pid" || fail "$name: QEMU $pid still running after its QMP socket closed"
    grep -qxF "QI-POWEROFF $name" <(tr -d '\r' <"$WORK/$name.log") ||
        fail "$name: exited without QI-POWEROFF"
}

single() {
    local label=$1 kernel=$2 name=solo-$1 ready stop
    launch "$name" "$kernel" "" -nic none
    ready=$(wait_marker "$name" "QI-READY $name")
    stop=$(qmp_wait system_powerdown "$STOP_TIMEOUT" "$name") || fail "$name: no exit after system_powerdown"
    check_stopped "$name"
    say "single guest ($label): boot-to-READY ${ready} s, powerdown-to-exit ${stop#* } s"
}

# qi.noacpid=1: the guest must ignore the power button (for force-stop tests).
noacpid_test() {
    local kernel=$1 name=deaf ready stop
    launch "$name" "$kernel" "qi.noacpid=1" -nic none
    ready=$(wait_marker "$name" "QI-READY $name")
    if qmp_wait system_powerdown 3 "$name" >/dev/null 2>&1; then
        fail "$name: exited on the power button despite qi.noacpid=1"
    fi
    ! grep -q '^QI-POWEROFF' "$WORK/$name.log" || fail "$name: handled the power button"
    stop=$(qmp_wait quit 10 "$name") || fail "$name: no exit after quit"
    say "guest with qi.noacpid=1: boot-to-READY ${ready} s, ignored the power button for 3 s, quit in ${stop#* } s"
}

pair_test() {
    [[ $EUID -eq 0 ]] || {
        say "SKIP pair test: network namespaces need root"
        return 0
    }
    local kernel=$1
    ip netns add "$NS"
    NS_MADE=1
    ip -n "$NS" link add br0 type bridge stp_state 0
    ip -n "$NS" link set br0 up
    local tap
    for tap in t0 t1; do
        ip -n "$NS" tuntap add dev "$tap" mode tap
        ip -n "$NS" link set "$tap" master br0 up
    done
    NETNS_EXEC=(ip netns exec "$NS")
    launch pairA "$kernel" "qi.ip=$NET.1/24 qi.ping=$NET.2" \
        -netdev tap,id=net0,ifname=t0,script=no,downscript=no \
        -device e1000,netdev=net0,mac=DE:AD:BE:EF:00:01
    launch pairB "$kernel" "qi.ip=$NET.2/24 qi.ping=$NET.1" \
        -netdev tap,id=net0,ifname=t1,script=no,downscript=no \
        -device "$NIC_B,netdev=net0,mac=DE:AD:BE:EF:00:02"
    NETNS_EXEC=()
    local name ready ping peer mac
    for name in pairA pairB; do
        ready=$(wait_marker "$name" "QI-READY $name")
        say "$name: boot-to-READY ${ready} s"
    done
    for name in pairA pairB; do
        if [[ $name == pairA ]]; then peer=$NET.2 mac=de:ad:be:ef:00:01; else peer=$NET.1 mac=de:ad:be:ef:00:02; fi
        grep -q "^QI-NIC $name eth0 $mac " "$WORK/$name.log" ||
            fail "$name: the guest does not see eth0 with MAC $mac"
        ping=$(wait_marker "$name" "QI-PING-OK $peer" "QI-PING-FAIL $peer")
        say "$name: QI-PING-OK $peer at ${ping} s ($(grep "^QI-NIC $name eth0" "$WORK/$name.log" | tr -d '\r'))"
    done
    local stops
    stops=$(qmp_wait system_powerdown "$STOP_TIMEOUT" pairA pairB) || fail "pair: no exit after system_powerdown"
    check_stopped pairA
    check_stopped pairB
    say "pair powerdown-to-exit (in parallel): $(echo "$stops" | tr '\n' ' ')"
    ip netns delete "$NS"
    NS_MADE=
}

main() {
    command -v "$QEMU" >/dev/null || fail "$QEMU not found"
    if [[ -n $build ]]; then
        local t=$EPOCHREALTIME
        "$REPO/tools/build-guest.sh" "$GUEST_DIR"
        say "build-guest.sh took $(delta "$t" "$EPOCHREALTIME") s"
    fi
    [[ -s $GUEST_DIR/vmlinuz && -s $GUEST_DIR/initrd.img ]] || fail "no guest in $GUEST_DIR"
    local fastest=$GUEST_DIR/vmlinuz
    if [[ -s $GUEST_DIR/vmlinux ]]; then
        single vmlinux-pvh "$GUEST_DIR/vmlinux"
        fastest=$GUEST_DIR/vmlinux
    fi
    single bzimage "$GUEST_DIR/vmlinuz"
    noacpid_test "$fastest"
    [[ -z $pair ]] || pair_test "$fastest"
    say "PASS"
}

main
