#!/usr/bin/env python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection for the faults_devices target.

kill-swtpm RUN_DIR NAME     SIGKILL the VM's swtpm: only the pid in <RUN_DIR>/<NAME>/swtpm.pid, and only when
                            /proc says it is swtpm serving that VM's socket; waits until it is gone.
deleted-fd PID PATH         the /proc/PID/fd/N through which process PID still holds PATH after it was deleted.
small-fs DIR SIZE -- CMD... run CMD with a tmpfs of SIZE mounted on DIR. Run it under `unshare -m --propagation
                            private`: the mount exists only in that private mount namespace and goes with it.
Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def proc_argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


def cmd_kill_swtpm(args):
    run = os.path.join(args.run_dir, args.name)
    with open(os.path.join(run, "swtpm.pid")) as handle:
        pid = int(handle.read().strip())
    argv = proc_argv(pid)
    socket_path = os.path.join(run, "swtpm.sock")
    if not argv or os.path.basename(argv[0]) != "swtpm" or not any(a.startswith("type=unixio,path=%s" % socket_path) for a in argv):
        raise SystemExit("pid %d is not the swtpm of %s: %r" % (pid, run, argv))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc_state(pid) not in (None, "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.02)
    print(json.dumps(dict(pid=pid, gone=proc_state(pid) in (None, "Z", "X"))))


def cmd_deleted_fd(args):
    fd_dir = "/proc/%d/fd" % args.pid
    for fd in sorted(os.listdir(fd_dir), key=int):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target == args.path + " (deleted)":
            print(json.dumps(dict(fd=os.path.join(fd_dir, fd))))
            return
    raise SystemExit("process %d holds no deleted %s" % (args.pid, args.path))


def cmd_small_fs(args):
    # unshare execs this script: its parent is in the mount namespace the tmpfs must stay out of.
    if os.stat("/proc/self/ns/mnt").st_ino == os.stat("/proc/%d/ns/mnt" % os.getppid()).st_ino:
        raise SystemExit("small-fs mounts only in a private mount namespace: run it under unshare -m --propagation private")
    os.makedirs(args.dir, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % args.size, "qi-faults-devices", args.dir], check=True)
    proc = subprocess.run(args.cmd, check=False)
    print(json.dumps(dict(rc=proc.returncode)))
    sys.exit(proc.returncode)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("kill-swtpm")
    p.add_argument("run_dir")
    p.add_argument("name")
    p = sub.add_parser("deleted-fd")
    p.add_argument("pid", type=int)
    p.add_argument("path")
    p = sub.add_parser("small-fs")
    p.add_argument("dir")
    p.add_argument("size")
    p.add_argument("cmd", nargs="+")
    args = parser.parse_args()
    dict(kill_swtpm=cmd_kill_swtpm, deleted_fd=cmd_deleted_fd, small_fs=cmd_small_fs)[args.command.replace("-", "_")](args)


if __name__ == "__main__":
    main()
