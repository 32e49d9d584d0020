# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A reproducer for ansible-core's `AnsibleModule.run_command` stall, for an upstream report (docs/performance.md,
"Issue 14's misses, third pass"): now and then a call returns a whole second after its command exited.

    <venv>/bin/python bench/run_command_stall.py [CALLS [THREADS]] [-- ARGV...]

Runs ARGV (default: qemu-system-x86_64 -version, a command that prints a line and exits at once) CALLS times
(default 1000) through a real AnsibleModule's run_command, in THREADS threads (default 1), and prints one line:
`BENCH calls=N stalls=K max=SECONDS slow=[...]`, the calls that took over 0.5 s. The command itself takes ~15 ms.

Why (ansible-core 2.19.14, module_utils/basic.py, the loop that reads the child's output): when the last pipe
reaches end of file in the same pass in which the child exits, the first `cmd.poll()` still sees the child
running and the second one (in the `elif`) sees it gone, so neither branch ends the loop; the next pass waits in
`select(1)` on no file descriptors at all, `poll([], 0, 1000)` in strace. One poll() per pass would fix it.
Measured here (2 cores, Python 3.11): 0-3 stalls per 1,000 calls in one thread, 1-4 over 4 threads.
"""

import shutil
import sys
import threading
import time

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

STALL = 0.5


def main():
    args = sys.argv[1:]
    argv = args[args.index("--") + 1:] if "--" in args else [shutil.which("qemu-system-x86_64") or "true", "-version"]
    numbers = [int(a) for a in (args[:args.index("--")] if "--" in args else args)]
    calls = numbers[0] if numbers else 1000
    threads = numbers[1] if len(numbers) > 1 else 1
    with patch_module_args({}):
        module = basic.AnsibleModule(argument_spec={})
    slow = []
    lock = threading.Lock()

    def work(count):
        for _call in range(count):
            t0 = time.perf_counter()
            module.run_command(argv)
            took = time.perf_counter() - t0
            if took > STALL:
                with lock:
                    slow.append(round(took, 3))

    workers = [threading.Thread(target=work, args=(calls // threads + (i < calls % threads),)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("BENCH calls=%d stalls=%d max=%s slow=%s" % (calls, len(slow), max(slow) if slow else 0, slow))


if __name__ == "__main__":
    main()
