# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run daemons in the foreground under a prompt child reaper, as systemd would (P5's libvirtd and virtlogd).

    python3 bench/reaper.py PIDFILE CMD [ARGS...] [--also CMD [ARGS...]]...

libvirt's destroy waits for the QEMU process to vanish. libvirt double-forks QEMU, so it is reaped by the
nearest subreaper, else PID 1; on these machines PID 1 reaps orphans only every 1-2 s, which would bill libvirt
for that wait. This process declares itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), starts each
command, reaps every orphan at once, writes its own pid to PIDFILE, and on SIGTERM passes SIGTERM on to the
commands and exits when they have.
"""

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    pidfile, rest = sys.argv[1], sys.argv[2:]
    commands, current = [], []
    for arg in rest:
        if arg == "--also":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: %s" % os.strerror(ctypes.get_errno()))
    daemons = [subprocess.Popen(cmd) for cmd in commands]
    signal.signal(signal.SIGTERM, lambda signum, frame: [d.send_signal(signal.SIGTERM) for d in daemons if d.poll() is None])
    with open(pidfile, "w") as handle:
        handle.write("%d\n" % os.getpid())
    pids = set(d.pid for d in daemons)
    while pids:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        pids.discard(pid)
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.kill()


if __name__ == "__main__":
    main()
