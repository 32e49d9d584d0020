#!/usr/bin/env python
# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection and outside checks for the faults_* integration targets.

It signals only processes it started (by pid; for `kill-on-marker` the tree under the process it
started), or a pid whose command line it checked first (a qemu naming the target's own scratch
dir, a helper of this script). Prints one JSON object.

  count RUN_DIR NAME...            live qemu processes per VM (argv names RUN_DIR/NAME/qemu.pid)
  qemu-under DIR                   every live qemu whose argv mentions DIR
  kill-qemu-under DIR              SIGKILL every live qemu whose argv mentions DIR (cleanup)
  kill-on-marker [options] -- ARGV start ARGV, wait for a marker, SIGKILL it and all its descendants
  parallel --count N --log P -- ARGV  start N copies of ARGV at once (QI_RUN_INDEX=i), wait for all
  kill-qemu PIDFILE [--on-qmp-event SOCK EVENT] [--serial LOG]
                                   SIGKILL the qemu named by PIDFILE (now, or when EVENT arrives)
  wait-qmp-event SOCK EVENT [--ready-file F]
                                   connect to a QMP monitor (then write F) and wait for EVENT
  zombie PIDFILE [--wait-for PATH] -- ARGV
                                   a holder process runs ARGV (a qemu, not daemonized), SIGKILLs it
                                   once PIDFILE names it (and PATH exists) and never reaps it: a zombie qemu
  listen HOST PORT                 a detached TCP listener (a foreign program on a port)
  stop-helper PID                  SIGTERM a holder/listener this script started (checked by cmdline)
  fill DIR                         write DIR/fill until the filesystem is full
  put-state KIND PATH [TEXT]       replace PATH by a KIND: directory, fifo, dangling (a link to PATH.gone), loop (a
                                   link to itself), eio (a link to /proc/self/mem, whose offset 0 reads as EIO),
                                   file (holding TEXT), none (nothing)
  show-state PATH                  which of those KINDs is at PATH
  kill-swtpm RUN_DIR NAME          SIGKILL the VM's swtpm: only the pid in RUN_DIR/NAME/swtpm.pid, and only when
                                   /proc says it is swtpm serving that VM's socket; waits until it is gone
  deleted-fd PID PATH              the /proc/PID/fd/N through which process PID still holds PATH after it was deleted
  small-fs DIR SIZE -- CMD...      run CMD with a tmpfs of SIZE mounted on DIR, and exit with its status. Run it under
                                   `unshare -m --propagation private`: the mount exists only in that private mount
                                   namespace and goes with it
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

# Helpers started in the background end on their own after this long, so a failed test never
# leaves one behind for good.
MAX_LIFETIME = 900


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


def live_qemus():
    """{pid: argv} of every qemu-system-* process that is not a zombie."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        argv = proc_argv(pid)
        if argv and os.path.basename(argv[0]).startswith("qemu-system-") and proc_state(pid) not in (None, "Z", "X"):
            found[pid] = argv
    return found


def read_pid(path):
    """The pid in a pidfile, or None; a FIFO or anything else that is not a regular file is never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def cmd_count(args):
    qemus = live_qemus()
    out = {}
    for name in args.names:
        pidfile = os.path.join(args.run_dir, name, "qemu.pid")
        pids = sorted(pid for pid, argv in qemus.items() if pidfile in argv)
        out[name] = dict(pids=pids, count=len(pids), pidfile_pid=read_pid(pidfile))
    return out


def cmd_qemu_under(args):
    qemus = live_qemus()
    pids = sorted(pid for pid, argv in qemus.items() if any(args.dir in a for a in argv))
    return dict(pids=pids, count=len(pids))


class Marker:
    """Something to wait for: a regex in a file, a path existing, a link in a netns, a QMP event."""

    def __init__(self, args):
        self.args = args
        self.qmp = None
        self.buffer = b""

    def seen(self):
        a = self.args
        if a.file:
            try:
                with open(a.file, "rb") as handle:
                    text = handle.read().decode("utf-8", "replace")
            except OSError:
                return False
            return re.search(a.regex, text, re.MULTILINE) is not None if a.regex else True
        if a.link:
            return os.path.exists("/sys/class/net/%s" % a.link) if not a.netns else _link_in_netns(a.netns, a.link)
        if a.qmp_event:
            return self._qmp_event(a.qmp_socket, a.qmp_event)
        raise SystemExit("no marker given")

    def connect_qmp(self, path):
        """Connect to a QMP monitor and negotiate, so that events flow from now on; False if not there yet."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            return False
        sock.settimeout(10)
        self.qmp = sock
        self._messages()  # greeting
        sock.sendall(json.dumps({"execute": "qmp_capabilities"}).encode() + b"\n")
        while not any("return" in m for m in self._messages()):
            pass
        return True

    def _messages(self):
        while b"\n" not in self.buffer:
            chunk = self.qmp.recv(65536)
            if not chunk:
                raise SystemExit("the QMP monitor closed the connection")
            self.buffer += chunk
        lines = self.buffer.split(b"\n")
        self.buffer = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def _qmp_event(self, path, event):
        if self.qmp is None and not self.connect_qmp(path):
            return False
        self.qmp.settimeout(0.05)
        try:
            messages = self._messages()
        except socket.timeout:
            return False
        finally:
            self.qmp.settimeout(10)
        return any(m.get("event") == event for m in messages)


def _link_in_netns(netns, link):
    # /sys/class/net shows the caller's namespace; `ip -n` reads the other one (argv, no shell).
    import subprocess  # pylint: disable=import-outside-toplevel
    return subprocess.call(["ip", "-n", netns, "link", "show", "dev", link],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def add_marker_options(parser):
    parser.add_argument("--file", help="wait until this file exists (and matches --regex)")
    parser.add_argument("--regex")
    parser.add_argument("--link", help="wait until this network link exists")
    parser.add_argument("--netns")
    parser.add_argument("--qmp-socket")
    parser.add_argument("--qmp-event")
    parser.add_argument("--timeout", type=float, default=120.0)


def cmd_kill_on_marker(args):
    """Run argv; SIGKILL it and every process under it when the marker shows up.

    Killing the tree (ansible-playbook, its workers and the module they run) is the harshest thing
    the death of the controller can do to a running task: the module dies mid-way.
    """
    import subprocess  # pylint: disable=import-outside-toplevel
    t0 = time.monotonic()
    marker = Marker(args)
    if args.qmp_event:
        # Listen before the command starts, so that no event can be missed.
        while not marker.connect_qmp(args.qmp_socket):
            if time.monotonic() - t0 > args.timeout:
                return dict(marker_seen=False, killed=False, rc=None, reason="cannot connect to %s" % args.qmp_socket)
            time.sleep(0.05)
    with open(args.log, "wb") as log:
        proc = subprocess.Popen(args.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    seen = False
    deadline = t0 + args.timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.seen():
            seen = True
            break
        time.sleep(0.02)
    killed = []
    if proc.poll() is None:
        # Also when the marker never came: do not leave it running.
        killed = kill_tree(proc.pid)
    rc = proc.wait()
    if marker.qmp is not None:
        marker.qmp.close()
    with open(args.log, "rb") as handle:
        tail = handle.read()[-3000:].decode("utf-8", "replace")
    return dict(marker_seen=seen, killed=bool(seen and killed), killed_processes=killed, rc=rc,
                seconds=round(time.monotonic() - t0, 3), log_tail=tail)


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def kill_tree(pid):
    """SIGKILL pid and all its descendants (processes this script started, directly or not).

    Ansible's workers call setsid(), so the session of ansible-playbook does not hold them: the tree
    is walked instead. Each process is stopped first, so none can fork a child we would miss; a
    daemonized qemu has left the tree (its parent is PID 1) and is not touched.
    """
    stopped, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            os.kill(current, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        stopped.append(current)
        todo.extend(children(current))
    killed = []
    for current in stopped:
        argv = proc_argv(current)
        try:
            os.kill(current, signal.SIGKILL)
            killed.append("%d %s" % (current, " ".join(os.path.basename(a) for a in argv[:2])))
        except ProcessLookupError:
            pass
    return killed


def cmd_kill_qemu_under(args):
    """Last resort of a target's cleanup: SIGKILL every live qemu whose argv mentions DIR (the target's
    own scratch dir, so only QEMUs the target started)."""
    killed = []
    for pid, argv in sorted(live_qemus().items()):
        if any(args.dir in a for a in argv):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return dict(killed=killed, count=len(killed))


def cmd_parallel(args):
    """Start COUNT copies of argv at the same moment (env QI_RUN_INDEX=0..COUNT-1); wait for all."""
    import subprocess  # pylint: disable=import-outside-toplevel
    procs = []
    for index in range(args.count):
        log = open("%s%d.log" % (args.log, index), "wb")  # pylint: disable=consider-using-with
        env = dict(os.environ, QI_RUN_INDEX=str(index))
        procs.append((subprocess.Popen(args.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=env), log))
    results = []
    for index, (proc, log) in enumerate(procs):
        rc = proc.wait()
        log.close()
        with open("%s%d.log" % (args.log, index), "rb") as handle:
            tail = handle.read()[-3000:].decode("utf-8", "replace")
        results.append(dict(rc=rc, log_tail=tail))
    return dict(runs=results, rcs=[r["rc"] for r in results])


def cmd_kill_qemu(args):
    pid = read_pid(args.pidfile)
    if pid is None:
        return dict(pid=None, killed=False, reason="no pid in %s" % args.pidfile)
    if args.on_qmp_event:
        marker = Marker(argparse.Namespace(file=None, regex=None, link=None, netns=None,
                                           qmp_socket=args.on_qmp_event[0], qmp_event=args.on_qmp_event[1]))
        deadline = time.monotonic() + args.timeout
        while not marker.connect_qmp(args.on_qmp_event[0]):
            if time.monotonic() > deadline:
                return dict(pid=pid, killed=False, reason="cannot connect to %s" % args.on_qmp_event[0])
            time.sleep(0.05)
        if args.ready_file:
            with open(args.ready_file, "w") as handle:
                handle.write("connected\n")
        seen = False
        while time.monotonic() < deadline and proc_state(pid) not in (None, "Z", "X"):
            if marker.seen():
                seen = True
                break
        marker.qmp.close()
        if not seen:
            return dict(pid=pid, killed=False, reason="event %s not seen before qemu exited or the timeout" % args.on_qmp_event[1])
    serial = None
    if args.serial:
        with open(args.serial, "rb") as handle:
            serial = handle.read().decode("utf-8", "replace")
    if pid is None or args.pidfile not in proc_argv(pid) or proc_state(pid) in (None, "Z", "X"):
        return dict(pid=pid, killed=False, reason="no live qemu with this pidfile")
    os.kill(pid, signal.SIGKILL)
    return dict(pid=pid, killed=True, serial_at_kill=serial)


def cmd_wait_qmp_event(args):
    """Connect to a QMP monitor, say so in --ready-file, and wait for an event: a test starts this first, then
    the action that should make QEMU emit the event, so that the event cannot be missed."""
    marker = Marker(argparse.Namespace(file=None, regex=None, link=None, netns=None,
                                       qmp_socket=args.socket, qmp_event=args.event))
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while not marker.connect_qmp(args.socket):
        if time.monotonic() > deadline:
            return dict(seen=False, reason="cannot connect to %s" % args.socket)
        time.sleep(0.05)
    if args.ready_file:
        with open(args.ready_file, "w") as handle:
            handle.write("connected\n")
    seen = False
    try:
        while time.monotonic() < deadline:
            if marker.seen():
                seen = True
                break
    except SystemExit as exc:  # the monitor closed: QEMU exited before the event
        return dict(seen=False, reason=str(exc))
    finally:
        marker.qmp.close()
    return dict(seen=seen, seconds=round(time.monotonic() - t0, 3))


def _detach():
    """Fork; the parent returns the child's pid, the child becomes a session leader with no stdio."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            report = pipe.read()
        return pid, report
    os.close(read_end)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    return 0, write_end


def _holder_sleep():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    deadline = time.monotonic() + MAX_LIFETIME
    while time.monotonic() < deadline:
        time.sleep(1)
    os._exit(0)


def cmd_zombie(args):
    holder, channel = _detach()
    if holder:
        return dict(json.loads(channel), holder_pid=holder)
    # The holder: start qemu as our child, wait for its pidfile, kill it, never wait() for it.
    child = os.fork()
    if child == 0:
        os.execvp(args.argv[0], args.argv)
    deadline = time.monotonic() + 60
    report = dict(zombie_pid=child)
    # QEMU writes its pidfile before it creates the QMP socket: wait for both, or the kill may come between.
    while time.monotonic() < deadline and (read_pid(args.pidfile) != child or not all(os.path.exists(p) for p in args.wait_for)):
        time.sleep(0.02)
    report["pidfile_named_it"] = read_pid(args.pidfile) == child
    os.kill(child, signal.SIGKILL)
    while proc_state(child) not in ("Z", None):
        time.sleep(0.01)
    report["state"] = proc_state(child)
    os.write(channel, json.dumps(report).encode())
    os.close(channel)
    _holder_sleep()
    return None


def cmd_listen(args):
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((args.host, args.port))
    sock.listen(1)
    holder, channel = _detach()
    if holder:
        sock.close()
        return dict(json.loads(channel), pid=holder)
    os.write(channel, json.dumps(dict(host=args.host, port=args.port)).encode())
    os.close(channel)
    _holder_sleep()
    return None


def cmd_stop_helper(args):
    argv = proc_argv(args.pid)
    if not any(a.endswith("faults.py") for a in argv) or not any(a in ("zombie", "listen") for a in argv):
        return dict(pid=args.pid, stopped=False, argv=argv)
    os.kill(args.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc_state(args.pid) not in (None, "Z"):
        time.sleep(0.02)
    return dict(pid=args.pid, stopped=True)


def cmd_fill(args):
    path = os.path.join(args.dir, "fill")
    written = 0
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as handle:
        while True:
            try:
                written += handle.write(block)
            except OSError:
                # The last blocks may still fit in part: fill them byte-wise coarse to fine.
                for size in (4096, 512, 1):
                    try:
                        while True:
                            written += handle.write(b"\0" * size)
                    except OSError:
                        continue
                break
    fs = os.statvfs(args.dir)
    return dict(path=path, written=written, free_bytes=fs.f_bavail * fs.f_frsize)


STATE_KINDS = ("directory", "fifo", "dangling", "loop", "eio", "file", "none")


def cmd_put_state(args):
    path = args.path
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)
    if args.kind == "directory":
        os.mkdir(path, 0o755)
    elif args.kind == "fifo":
        os.mkfifo(path, 0o644)
    elif args.kind == "dangling":
        os.symlink(path + ".gone", path)
    elif args.kind == "loop":
        os.symlink(os.path.basename(path), path)
    elif args.kind == "eio":
        os.symlink("/proc/self/mem", path)
    elif args.kind == "file":
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(args.text or "")
        os.chmod(path, 0o644)
    return dict(path=path, kind=args.kind)


def cmd_show_state(args):
    path = args.path
    if not os.path.lexists(path):
        kind = "none"
    elif os.path.islink(path):
        target = os.readlink(path)
        kind = {path + ".gone": "dangling", os.path.basename(path): "loop", "/proc/self/mem": "eio"}.get(target, "link")
    elif os.path.isdir(path):
        kind = "directory"
    else:
        kind = "fifo" if stat.S_ISFIFO(os.lstat(path).st_mode) else "file"
    return dict(path=path, kind=kind)


def cmd_kill_swtpm(args):
    run = os.path.join(args.run_dir, args.name)
    pid = read_pid(os.path.join(run, "swtpm.pid"))
    argv = proc_argv(pid) if pid else []
    socket_path = os.path.join(run, "swtpm.sock")
    if not argv or os.path.basename(argv[0]) != "swtpm" or not any(a.startswith("type=unixio,path=%s" % socket_path) for a in argv):
        raise SystemExit("pid %s is not the swtpm of %s: %r" % (pid, run, argv))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc_state(pid) not in (None, "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.02)
    return dict(pid=pid, gone=proc_state(pid) in (None, "Z", "X"))


def cmd_deleted_fd(args):
    fd_dir = "/proc/%d/fd" % args.pid
    for fd in sorted(os.listdir(fd_dir), key=int):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target == args.path + " (deleted)":
            return dict(fd=os.path.join(fd_dir, fd))
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("count")
    p.add_argument("run_dir")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("qemu-under")
    p.add_argument("dir")
    p = sub.add_parser("kill-qemu-under")
    p.add_argument("dir")
    p = sub.add_parser("kill-on-marker")
    add_marker_options(p)
    p.add_argument("--log", required=True)
    p.add_argument("argv", nargs="+")
    p = sub.add_parser("parallel")
    p.add_argument("--count", type=int, default=2)
    p.add_argument("--log", required=True, help="log file prefix: PREFIX0.log, PREFIX1.log, ...")
    p.add_argument("argv", nargs="+")
    p = sub.add_parser("kill-qemu")
    p.add_argument("pidfile")
    p.add_argument("--on-qmp-event", nargs=2, metavar=("SOCKET", "EVENT"))
    p.add_argument("--ready-file", help="written once the QMP watcher is connected")
    p.add_argument("--serial")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("wait-qmp-event")
    p.add_argument("socket")
    p.add_argument("event")
    p.add_argument("--ready-file", help="written once connected to the monitor")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("zombie")
    p.add_argument("pidfile")
    p.add_argument("--wait-for", action="append", default=[], metavar="PATH",
                   help="also wait until PATH exists (e.g. the QMP socket) before the kill")
    p.add_argument("argv", nargs="+")
    p = sub.add_parser("listen")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p = sub.add_parser("stop-helper")
    p.add_argument("pid", type=int)
    p = sub.add_parser("fill")
    p.add_argument("dir")
    p = sub.add_parser("put-state")
    p.add_argument("kind", choices=STATE_KINDS)
    p.add_argument("path")
    p.add_argument("text", nargs="?")
    p = sub.add_parser("show-state")
    p.add_argument("path")
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
    handler = {"count": cmd_count, "qemu-under": cmd_qemu_under, "kill-qemu-under": cmd_kill_qemu_under,
               "kill-on-marker": cmd_kill_on_marker, "parallel": cmd_parallel,
               "kill-qemu": cmd_kill_qemu, "wait-qmp-event": cmd_wait_qmp_event, "zombie": cmd_zombie, "listen": cmd_listen,
               "stop-helper": cmd_stop_helper, "fill": cmd_fill, "put-state": cmd_put_state,
               "show-state": cmd_show_state, "kill-swtpm": cmd_kill_swtpm, "deleted-fd": cmd_deleted_fd,
               "small-fs": cmd_small_fs}[args.command]
    result = handler(args)
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
