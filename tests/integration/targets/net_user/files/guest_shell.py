#!/usr/bin/env python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run commands in the test guest's shell, reached through a serial port on a unix socket.

Usage: guest_shell.py SOCKET TIMEOUT COMMAND...
The guest runs with `console=ttyS1 qi.shell=1` and ttyS1 on `-chardev socket,path=SOCKET,server=on`:
its /init keeps a shell on the console (docs/test-guest.md) and still writes its markers to ttyS0
(the serial log). Each COMMAND runs in that shell, one after the other, with its output on the
console; prints JSON, a list of {command, rc, output}. The exit status is read from a line the
shell prints after the command (`QI-RC-<n>=<status>`), which the echo of the typed line cannot
match (it shows `$?`, not digits).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time


def main():
    path, timeout, commands = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.settimeout(0.2)
    received = b""

    def read_until(pattern, deadline):
        nonlocal received
        while True:
            match = re.search(pattern, received)
            if match or time.monotonic() > deadline:
                return match
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise SystemExit("the guest's console closed: %r" % received[-500:])
            received += chunk

    # The shell may have printed its prompt before we connected (nothing listened): ask for another.
    conn.sendall(b"\n")
    results = []
    for n, command in enumerate(commands):
        received = b""
        conn.sendall(("%s; echo QI-RC-%d=$?\n" % (command, n)).encode())
        match = read_until(rb"QI-RC-%d=(\d+)\r?\n" % n, time.monotonic() + timeout)
        if not match:
            raise SystemExit("no exit status of %r within %s s; console: %r" % (command, timeout, received[-500:]))
        results.append(dict(command=command, rc=int(match.group(1)),
                            output=received[:match.start()].decode("utf-8", "replace").replace("\r", "")))
    conn.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
