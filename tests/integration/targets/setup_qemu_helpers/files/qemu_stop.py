#!/usr/bin/env python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stop a QEMU that a test started: QMP `quit`, wait until it has exited; SIGTERM, SIGKILL as last resorts.

Usage: qemu_stop.py PIDFILE QMP_SOCKET [TIMEOUT]
Only the process named by PIDFILE is signalled, and only if its command line names that pidfile
(so a reused pid is never hit). Prints JSON: pid, method (quit, sigterm, sigkill or none), events.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import time


def read_pid(pidfile):
    # O_NONBLOCK and a regular file only: a FIFO left at a pidfile (faults_files) must not hang the clean-up.
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return int(os.read(fd, 4096).strip())
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def running(pid, pidfile):
    """True while our QEMU lives; a zombie has exited (PID 1 reaps daemons a second or two later)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and os.fsencode(pidfile) in cmdline


def wait_exit(pid, pidfile, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid, pidfile):
            return True
        time.sleep(0.02)
    return not running(pid, pidfile)


def qmp_quit(path, timeout):
    """Send quit; returns the events QEMU sent before closing the socket."""
    events = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    quit_sent = False
    try:
        sock.connect(path)
        stream = sock.makefile("rwb")
        json.loads(stream.readline())  # greeting
        for command in ({"execute": "qmp_capabilities"}, {"execute": "quit"}):
            stream.write(json.dumps(command).encode() + b"\n")
            stream.flush()
            quit_sent = command["execute"] == "quit"
            # After quit, QEMU closes the socket as it exits: EOF, or a reset when it had a tap open.
            for line in iter(stream.readline, b""):
                message = json.loads(line)
                if "event" in message:
                    events.append(message["event"])
                elif ("return" in message or "error" in message) and not quit_sent:
                    break
    except ConnectionResetError:
        if not quit_sent:
            raise
    finally:
        sock.close()
    return events


def main():
    pidfile, qmp = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    pid = read_pid(pidfile)
    result = {"pid": pid, "method": "none", "events": []}
    if pid is None or not running(pid, pidfile):
        print(json.dumps(result))
        return 0
    try:
        result["events"] = qmp_quit(qmp, timeout)
        result["method"] = "quit"
    except (OSError, ValueError) as exc:
        result["qmp_error"] = str(exc)
    if result["method"] == "quit" and wait_exit(pid, pidfile, timeout):
        print(json.dumps(result))
        return 0
    for method, sig in (("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL)):
        result["method"] = method
        if running(pid, pidfile):
            os.kill(pid, sig)
        if wait_exit(pid, pidfile, 10):
            break
    print(json.dumps(result))
    return 0 if not running(pid, pidfile) else 1


if __name__ == "__main__":
    sys.exit(main())
