# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An interpreter wrapper that watches each module process Ansible starts: wall time and peak RSS.

bench/run.sh writes a copy of this file with the real interpreter as its shebang and hands that copy to the
plays as `ansible_python_interpreter`. With `connection: local` Ansible then runs `COPY .../AnsiballZ_X.py`;
this wrapper forks, the child execs the real interpreter with the same arguments (stdin, stdout and stderr
are the child's unchanged; ansible-core runs the module inside that one process, AnsiballZ's runpy), and the
parent appends one line to the file named by $QI_MODPROC_LOG:

    MODULE WALL_SECONDS VMHWM_KIB MAXRSS_KIB EXIT_STATUS

- WALL_SECONDS: fork to exit of the module process (seen by a blocking waitid, so to the microsecond).
- VMHWM_KIB: the module process's own peak resident set (VmHWM in /proc/PID/status), read every 10 ms by a
  thread while it runs; VmHWM only grows, so the last reading is the peak up to then.
- MAXRSS_KIB: ru_maxrss from wait4: the larger of the process's own peak and its reaped children's (the
  pre-daemonize QEMU parents and `ip` processes the module ran).

The wrapper costs one fork and its own interpreter start-up (~20 ms per module call on these machines), paid
before the module starts; docs/performance.md says where it is used.
"""

import os
import sys
import threading
import time


def vmhwm_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    log = os.environ["QI_MODPROC_LOG"]
    module = os.path.basename(sys.argv[-1]) if len(sys.argv) > 1 else "-"
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable] + sys.argv[1:])
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.wait(0.01):
            try:
                peak[0] = max(peak[0], vmhwm_kib(pid))
            except (OSError, ValueError):
                pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # Wait for the exit without reaping, so the watcher never reads a reused pid's /proc entry.
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - start
    done.set()
    watcher.join()
    dummy, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(log, "a") as handle:
        handle.write("%s %.4f %d %d %d\n" % (module, wall, peak[0], usage.ru_maxrss, code))
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
