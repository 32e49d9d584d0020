# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How much CPU a test guest's graceful shutdown costs, and so how fast N of them can stop on this machine (P4).

    python3 bench/guest_stop_cpu.py GUEST_DIR [COUNT [MEMORY_MIB]]

Boots COUNT test guests (tools/build-guest.sh's GUEST_DIR; no NICs, no links, TCG) with plain qemu-system-x86_64,
waits for each one's QI-READY (acpid holds the power button), then presses every power button at once over QMP
and watches each QEMU: the SHUTDOWN event (the guest is done) and the process's exit (pidfd). The CPU time each
QEMU used from the press on is sampled from /proc every few ms until it exits, so it is a lower bound (and counted
in clock ticks, 10 ms here). Prints
one line per guest and the sum: COUNT guests that need S CPU-seconds in all cannot all be down sooner than
S / cores, whatever starts the shutdown, nor sooner than the largest single guest's CPU time (a guest uses one
core at a time). The last line is for bench/run.sh (P4, in every round, next to the module's stop):

    BENCH count=COUNT cpu_sum=S cpu_max=M floor=max(S / cores, M) slowest_exit=SECONDS

slowest_exit is when the last of these plain QEMUs exited, counted from the first press: the same stop
without Ansible or the collection.
Stops only the QEMUs it started (by the pid in its own pidfiles) and removes its scratch directory.
"""

import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

READY_TIMEOUT = 300.0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    guest = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    memory = sys.argv[3] if len(sys.argv) > 3 else "128"
    scratch = tempfile.mkdtemp(prefix="qi-stopcpu.")
    pids = []
    try:
        dirs = []
        for i in range(count):
            d = os.path.join(scratch, "g%d" % i)
            os.mkdir(d)
            subprocess.run(["qemu-system-x86_64", "-name", "g%d" % i, "-nodefaults", "-no-reboot", "-display", "none",
                            "-accel", "tcg", "-m", memory, "-kernel", os.path.join(guest, "vmlinux"),
                            "-initrd", os.path.join(guest, "initrd.img"), "-append", "console=ttyS0 panic=-1 quiet",
                            "-serial", "file:%s/serial.log" % d, "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % d,
                            "-daemonize", "-pidfile", d + "/pid"], check=True)
            with open(d + "/pid") as handle:
                pids.append(int(handle.read()))
            dirs.append(d)
        deadline = time.monotonic() + READY_TIMEOUT
        for d in dirs:
            while True:
                with open(d + "/serial.log", "rb") as handle:
                    if b"QI-READY" in handle.read():
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("%s: no QI-READY within %g s" % (d, READY_TIMEOUT))
                time.sleep(0.05)  # waiting for guests to boot, outside any measurement
        sessions = []
        for d, pid in zip(dirs, pids):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(d + "/qmp.sock")
            stream = sock.makefile("rwb")
            stream.readline()
            stream.write(b'{"execute": "qmp_capabilities"}\n')
            stream.flush()
            stream.readline()
            sessions.append(dict(sock=sock, stream=stream, pid=pid, pidfd=os.pidfd_open(pid), cpu0=cpu_seconds(pid)))
        start = time.monotonic()
        for s in sessions:
            s["stream"].write(b'{"execute": "system_powerdown"}\n')
            s["stream"].flush()
        pending = set(range(len(sessions)))
        while pending:
            watched = [sessions[i]["sock"] for i in pending] + [sessions[i]["pidfd"] for i in pending]
            readable, _w, _x = select.select(watched, [], [], 0.005)
            now = time.monotonic() - start
            for i in sorted(pending):
                s = sessions[i]
                try:
                    s["cpu"] = cpu_seconds(s["pid"]) - s["cpu0"]
                except (OSError, ValueError, IndexError):
                    pass
                if s["sock"] in readable:
                    for line in s["sock"].recv(65536).splitlines():
                        try:
                            event = json.loads(line).get("event")
                        except ValueError:
                            continue
                        if event == "SHUTDOWN" and "shutdown" not in s:
                            s["shutdown"] = now
                if s["pidfd"] in readable:
                    s["exit"] = now
                    pending.discard(i)
                    os.close(s["pidfd"])
                    s["sock"].close()
        for i, s in enumerate(sessions):
            print("guest %2d: SHUTDOWN event %.3f s, exit %.3f s, CPU >= %.3f s"
                  % (i, s.get("shutdown", float("nan")), s["exit"], s.get("cpu", 0.0)))
        cpu = [s.get("cpu", 0.0) for s in sessions]
        cores = os.cpu_count() or 1
        print("guests %d, cores %d: per guest CPU median %.3f s; sum %.3f s, / cores = %.3f s; slowest exit %.3f s"
              % (count, cores, statistics.median(cpu), sum(cpu), sum(cpu) / cores, max(s["exit"] for s in sessions)))
        print("BENCH count=%d cpu_sum=%.3f cpu_max=%.3f floor=%.3f slowest_exit=%.3f"
              % (count, sum(cpu), max(cpu), max([sum(cpu) / cores] + cpu), max(s["exit"] for s in sessions)))
    finally:
        for pid in pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as handle:
                    mine = scratch.encode() in handle.read()
            except OSError:
                mine = False
            if mine:
                os.kill(pid, 9)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
