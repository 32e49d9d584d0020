#!/usr/bin/env python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A TCP listener on 127.0.0.1 that a test starts and stops by PID, in whatever namespace it runs in.

Usage: listener.py base                 print a monitor base B: nothing listens on B..B+2, B+100..B+102 here
       listener.py start PORT PIDFILE   listen on 127.0.0.1:PORT, return once listening (the listener stays
                                        in the background, at most 10 minutes), its pid in PIDFILE
       listener.py stop PIDFILE         SIGTERM the pid in PIDFILE, only if its command line names PIDFILE
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import time


def listening():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def base():
    busy = listening()
    while True:
        candidate = random.randrange(40000, 48000)
        if not busy.intersection(range(candidate, candidate + 3)) and \
                not busy.intersection(range(candidate + 100, candidate + 103)):
            print(candidate)
            return


def start(port, pidfile):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", int(port)))
    sock.listen(1)
    pid = os.fork()
    if pid:
        with open(pidfile, "w") as handle:
            handle.write("%d\n" % pid)
        return
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # the caller waits for EOF on its pipes
    time.sleep(600)
    os._exit(0)


def stop(pidfile):
    try:
        with open(pidfile) as handle:
            pid = int(handle.read())
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().split(b"\0")
    except (OSError, ValueError):
        return
    if pidfile.encode() in argv:
        os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    {"base": base, "start": start, "stop": stop}[sys.argv[1]](*sys.argv[2:])
