#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: contributors to the qemu_init.qemu collection
#
# Smoke test of the Debian image (tools/build-debian-image.sh; docs/test-guest.md, "The Debian
# image"): boots a qcow2 overlay on it under TCG with UEFI (OVMF), a NoCloud seed, a TPM (when
# swtpm is installed) and the guest agent, then proves it from outside and inside:
#   - the SSH banner through a user-mode host forward on 127.0.0.1;
#   - ssh as the image's default user with a key given by user-data (generated here), then
#     `cloud-init status --wait`, `systemctl is-system-running --wait`, the root grown by
#     cloud-init to the overlay's larger size, /sys/class/tpm/tpm0, passwordless sudo;
#   - the guest agent answers guest-sync, guest-ping and guest-network-get-interfaces;
#   - QMP system_powerdown: systemd powers off and QEMU exits.
# Prints the timings (build warm, boot to the SSH banner, cloud-init done, powerdown).
#
#   tools/boot-debian-image-smoke.sh [--no-build] [IMAGE_DIR]
#       IMAGE_DIR default ${QI_DEBIAN_IMAGE_DIR:-<repo>/.cache/debian-image}; without --no-build
#       tools/build-debian-image.sh runs first (about a second when the image is up to date).
#
# Network: one user-mode NIC (no host interfaces touched), its forward on 127.0.0.1 only. Only
# the QEMU and swtpm it started are stopped, by the pids in their pidfiles; its work directory
# is removed. Needs qemu-system-x86_64, qemu-img, ovmf, dosfstools, mtools, openssh-client,
# python3; swtpm optional (QI_SMOKE_TPM=0 skips the TPM). QI_SMOKE_TIMEOUT: seconds to wait for
# the SSH banner and cloud-init (default 600).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=yes
if [[ ${1:-} == --no-build ]]; then
    BUILD=no
    shift
fi
IMAGE_DIR=${1:-${QI_DEBIAN_IMAGE_DIR:-$REPO/.cache/debian-image}}
TIMEOUT=${QI_SMOKE_TIMEOUT:-600}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

GUEST_TOOL=boot-debian-image-smoke
# shellcheck source=tools/guest-lib.sh
. "$REPO/tools/guest-lib.sh"

WORK=
QEMU_PIDFILE=
SWTPM_PIDFILE=

# Stop a process we started: the pid from its pidfile, only when its command line names
# our work directory (a reused pid is someone else's).
stop_pidfile() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$WORK"; then
        kill "$pid" 2>/dev/null || true
    fi
}

cleanup() {
    [[ -n $WORK ]] || return 0
    [[ -z $QEMU_PIDFILE ]] || stop_pidfile "$QEMU_PIDFILE"
    [[ -z $SWTPM_PIDFILE ]] || stop_pidfile "$SWTPM_PIDFILE"
    if [[ ${QI_SMOKE_KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}

fail() {
    log "FAIL: $*"
    if [[ -f $WORK/serial.log ]]; then
        log "last lines of the serial log:"
        tail -n 30 "$WORK/serial.log" | tr -d '\r' >&2
    fi
    exit 1
}

# A free TCP port on 127.0.0.1 (the kernel's pick; QEMU binds it moments later).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until 127.0.0.1:PORT sends an SSH banner. Slirp accepts connections before the guest
# listens (and then closes them), so only the banner counts.
wait_banner() {
    python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, timeout = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + timeout
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            data = s.recv(256)
            if data.startswith(b"SSH-"):
                print(data.decode(errors="replace").strip())
                sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit(1)
EOF
}

# The guest agent over its unix socket: guest-sync (fresh id; stale replies skipped), guest-ping,
# guest-network-get-interfaces. Retries the sync until the agent is up (at most 120 s).
agent_check() {
    python3 - "$1" <<'EOF'
import json, random, socket, sys, time
path = sys.argv[1]

def exchange(sock, buf, cmd, want_id=None, timeout=10.0):
    sock.sendall(json.dumps(cmd).encode() + b"\n")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        while b"\n" in buf[0]:
            line, buf[0] = buf[0].split(b"\n", 1)
            line = line.strip(b"\xff \r")
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "error" in msg:
                raise RuntimeError(f"{cmd['execute']}: {msg['error']}")
            if want_id is not None and msg.get("return") != want_id:
                continue  # a reply to an earlier, timed-out guest-sync
            return msg["return"]
        sock.settimeout(max(0.1, end - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            raise RuntimeError("agent socket closed")
        buf[0] += data
    raise TimeoutError(cmd["execute"])

start = time.monotonic()
with socket.socket(socket.AF_UNIX) as sock:
    sock.connect(path)
    buf = [b""]
    while True:
        sync_id = random.randrange(1, 2**31)
        try:
            exchange(sock, buf, {"execute": "guest-sync", "arguments": {"id": sync_id}}, sync_id, 5.0)
            break
        except TimeoutError:
            if time.monotonic() - start > 120:
                sys.exit("guest-sync: no answer in 120 s")
    print(f"guest-sync ok after {time.monotonic() - start:.1f} s")
    exchange(sock, buf, {"execute": "guest-ping"})
    print("guest-ping ok")
    ifaces = exchange(sock, buf, {"execute": "guest-network-get-interfaces"})
    for i in ifaces:
        addrs = [f"{a['ip-address']}/{a['prefix']}" for a in i.get("ip-addresses", [])]
        print(f"  {i['name']} {i.get('hardware-address', '-')} {' '.join(addrs)}")
    if not any(a.get("ip-address") == "10.0.2.15" for i in ifaces for a in i.get("ip-addresses", [])):
        sys.exit("guest-network-get-interfaces: no 10.0.2.15 (DHCP from the user-mode network)")
EOF
}

# QMP system_powerdown, resent every 10 s until QEMU reports SHUTDOWN; prints the seconds until
# QEMU closed the socket (it exits). Exit status 1 after 120 s.
qmp_powerdown() {
    python3 - "$1" <<'EOF'
import json, socket, sys, time
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.settimeout(1.0)
buf = b""

def send(cmd):
    sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")

def messages():
    """Messages read within about a second; None at EOF."""
    global buf
    try:
        data = sock.recv(65536)
    except (socket.timeout, TimeoutError):
        return []
    if not data:
        return None
    buf += data
    *lines, buf = buf.split(b"\n")
    return [json.loads(line) for line in lines if line.strip()]

send("qmp_capabilities")
start = time.monotonic()
send("system_powerdown")
last, shutdown = start, None
while time.monotonic() - start < 120:
    msgs = messages()
    if msgs is None:
        print(f"{time.monotonic() - start:.1f} {shutdown if shutdown is not None else -1:.1f}")
        sys.exit(0)
    for msg in msgs:
        if msg.get("event") == "SHUTDOWN" and shutdown is None:
            shutdown = time.monotonic() - start
    if shutdown is None and time.monotonic() - last > 10:
        send("system_powerdown")  # a press before the guest's ACPI handler is up is lost
        last = time.monotonic()
sys.exit(1)
EOF
}

main() {
    local tool
    for tool in qemu-system-x86_64 qemu-img mkfs.vfat mcopy ssh ssh-keygen python3; do
        have "$tool" || die "$tool is required"
    done
    [[ -f $OVMF_CODE && -f $OVMF_VARS ]] || die "no $OVMF_CODE / $OVMF_VARS (install ovmf)"
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

    if [[ $BUILD == yes ]]; then
        local t0=$EPOCHREALTIME
        bash "$REPO/tools/build-debian-image.sh" "$IMAGE_DIR" || die "the image build failed"
        log "build (warm when up to date): $(elapsed "$t0") s"
    fi
    [[ -f $IMAGE_DIR/manifest ]] || die "no $IMAGE_DIR/manifest (run tools/build-debian-image.sh)"
    OUTDIR=$IMAGE_DIR
    local image user vsize
    image=$IMAGE_DIR/$(manifest_get image)
    user=$(manifest_get default_user)
    vsize=$(manifest_get image_virtual_size)
    [[ -f $image && -n $user && -n $vsize ]] || die "the manifest names no image, default_user or size"
    log "image $image (default user $user, built $(manifest_get built))"

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/qi-debian-smoke.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    # The overlay is 1 GiB larger than the image: cloud-init's growpart + resizefs must use it.
    local t=$EPOCHREALTIME
    local grown=$((vsize + 1073741824))
    qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$WORK/disk.qcow2" "$grown" || fail "qemu-img create"
    log "overlay: $(elapsed "$t") s"
    cp "$OVMF_VARS" "$WORK/vars.fd"

    t=$EPOCHREALTIME
    ssh-keygen -q -t ed25519 -N '' -C qi-debian-smoke -f "$WORK/id_ed25519" >/dev/null
    mkdir "$WORK/seed"
    {
        echo '#cloud-config'
        echo 'ssh_authorized_keys:'
        echo "  - $(<"$WORK/id_ed25519.pub")"
    } >"$WORK/seed/user-data"
    printf 'instance-id: qi-smoke-%s\nlocal-hostname: qi-debian-smoke\n' "$$" >"$WORK/seed/meta-data"
    # (mkfs.vfat warns that lowercase labels "might not work": cloud-init looks for cidata.)
    mkfs.vfat -n cidata -C "$WORK/seed.img" 2048 >/dev/null 2>&1 || fail "mkfs.vfat of the seed"
    MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/seed.img" "$WORK/seed/user-data" "$WORK/seed/meta-data" :: ||
        fail "mcopy into the seed"
    log "seed: $(elapsed "$t") s"

    local -a tpm_args=()
    local tpm=no
    if [[ ${QI_SMOKE_TPM:-1} != 0 ]] && have swtpm; then
        mkdir -m 0700 "$WORK/tpm"
        SWTPM_PIDFILE=$WORK/swtpm.pid
        swtpm socket --tpm2 --tpmstate "dir=$WORK/tpm" --ctrl "type=unixio,path=$WORK/swtpm.sock" \
            --pid "file=$SWTPM_PIDFILE" --log "file=$WORK/swtpm.log" --terminate --daemon ||
            fail "swtpm did not start"
        tpm_args=(-chardev "socket,id=chrtpm,path=$WORK/swtpm.sock" -tpmdev "emulator,id=tpm0,chardev=chrtpm"
            -device "tpm-crb,tpmdev=tpm0")
        tpm=yes
    fi

    local port
    port=$(free_port)
    QEMU_PIDFILE=$WORK/qemu.pid
    local launch=$EPOCHREALTIME
    qemu-system-x86_64 -name qi-debian-smoke -machine q35 -accel tcg -m 1024 -smp 2 \
        -nodefaults -no-reboot -display none \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
        -drive "if=pflash,format=raw,unit=1,file=$WORK/vars.fd" \
        -drive "file=$WORK/disk.qcow2,format=qcow2,if=virtio" \
        -drive "file=$WORK/seed.img,format=raw,if=virtio,readonly=on" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 \
        -chardev "socket,id=qga0,path=$WORK/qga.sock,server=on,wait=off" \
        -device virtio-serial-pci -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
        "${tpm_args[@]}" \
        -serial "file:$WORK/serial.log" -qmp "unix:$WORK/qmp.sock,server=on,wait=off" \
        -daemonize -pidfile "$QEMU_PIDFILE" 2>"$WORK/qemu.err" || {
        cat "$WORK/qemu.err" >&2
        fail "qemu did not start"
    }
    log "launched (TCG, q35, 2 vCPUs, 1 GiB, OVMF, TPM: $tpm), SSH forward 127.0.0.1:$port"

    local banner
    banner=$(wait_banner "$port" "$TIMEOUT") || fail "no SSH banner in $TIMEOUT s"
    local t_banner
    t_banner=$(elapsed "$launch")
    log "SSH banner after $t_banner s: $banner"

    local -a ssh_cmd=(ssh -i "$WORK/id_ed25519" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o ConnectTimeout=30 -o LogLevel=ERROR "$user@127.0.0.1")
    local out tries=0
    until out=$("${ssh_cmd[@]}" "timeout $TIMEOUT cloud-init status --wait" 2>&1); do
        tries=$((tries + 1))
        ((tries < 5)) || fail "ssh/cloud-init status --wait: $out"
        sleep 3
    done
    local t_cloudinit
    t_cloudinit=$(elapsed "$launch")
    log "cloud-init done after $t_cloudinit s: $(echo "$out" | tr -s '.\n' ' ')"
    [[ $out == *'status: done'* ]] || fail "cloud-init did not finish cleanly: $out"

    out=$("${ssh_cmd[@]}" 'timeout 300 systemctl is-system-running --wait' 2>&1) || {
        "${ssh_cmd[@]}" 'systemctl --failed --no-legend; sudo -n journalctl -b -p err --no-pager | tail -n 20' >&2 || true
        fail "systemctl is-system-running: $out"
    }
    local t_running
    t_running=$(elapsed "$launch")
    log "systemd: $out after $t_running s"

    # One session for the checks inside: root grown, TPM, sudo, identity, kernel, agent service.
    local checks
    checks=$("${ssh_cmd[@]}" "set -e
        echo hostname=\$(hostname)
        echo kernel=\$(uname -r)
        echo root_bytes=\$(findmnt -bno SIZE /)
        echo root_source=\$(findmnt -no SOURCE /)
        echo tpm=\$(test -e /sys/class/tpm/tpm0 && echo yes || echo no)
        echo sudo=\$(sudo -n true && echo yes || echo no)
        echo machine_id=\$(cat /etc/machine-id)
        echo agent=\$(systemctl is-active qemu-guest-agent)
        echo sshd_keys=\$(ls /etc/ssh/ssh_host_*_key | tr '\n' ' ')
        echo python=\$(python3 -c 'import sys; print(sys.version.split()[0])')
        echo analyze=\$(systemd-analyze 2>/dev/null | head -n1)
        echo slowest_units=\$(systemd-analyze blame 2>/dev/null | head -n6 | tr -s ' \n' ' ')
        echo slowest_cloud_init=\$(sudo -n cloud-init analyze blame 2>/dev/null | grep -m6 's (' | tr -s ' \n' ' ')" 2>&1) || fail "checks in the guest: $checks"
    printf '    %s\n' "${checks//$'\n'/$'\n'    }" >&2
    local root_bytes
    root_bytes=$(sed -n 's/^root_bytes=//p' <<<"$checks")
    ((root_bytes > vsize)) || fail "the root did not grow past the image's size ($root_bytes <= $vsize bytes)"
    grep -qx 'hostname=qi-debian-smoke' <<<"$checks" || fail "meta-data's local-hostname not applied"
    grep -qx 'sudo=yes' <<<"$checks" || fail "no passwordless sudo for $user"
    grep -qx 'agent=active' <<<"$checks" || fail "qemu-guest-agent is not active"
    if [[ $tpm == yes ]]; then
        grep -qx 'tpm=yes' <<<"$checks" || fail "no /sys/class/tpm/tpm0 with a swtpm TPM"
    fi

    t=$EPOCHREALTIME
    agent_check "$WORK/qga.sock" >&2 || fail "guest agent"
    log "guest agent: $(elapsed "$t") s"

    grep -q 'Linux version' "$WORK/serial.log" || fail "the serial log does not show the kernel's boot"

    local pd
    pd=$(qmp_powerdown "$WORK/qmp.sock") || fail "QEMU did not exit within 120 s of system_powerdown"
    local t_exit t_shutdown
    read -r t_exit t_shutdown <<<"$pd"
    log "powerdown: SHUTDOWN event after $t_shutdown s, QEMU exited (QMP EOF) after $t_exit s"
    tr -d '\r' <"$WORK/serial.log" | grep -q 'reboot: Power down' || log "warning: no 'reboot: Power down' on the serial console"

    echo "debian image smoke test OK: banner ${t_banner} s, cloud-init done ${t_cloudinit} s, system running ${t_running} s, powerdown ${t_exit} s (TPM: $tpm; load $(cut -d' ' -f1-3 /proc/loadavg))"
}

main "$@"
