# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A VM's TPM 2.0: one swtpm process per VM (DESIGN.md, "Real operating systems": `tpm: true`).

Layout (per VM):
- <state_dir>/<name>/tpm/ (0700): the TPM's persistent state (tpm2-00.permall, 0600); it outlives reboots
  and belongs to the VM like its UEFI vars: a new state is a new TPM (BitLocker, LUKS+TPM, measured boot
  break).
- <run_dir>/<name>/swtpm.sock (0600): the control socket QEMU connects to (`-chardev socket`); QEMU passes
  the data channel over it, so one socket is all.
- <run_dir>/<name>/swtpm.pid and swtpm.log (truncated at each start: it holds this run's messages only).

Lifetime: started before QEMU, `--daemon`, and `--terminate` makes it exit when QEMU's connection closes, so
it ends with QEMU however QEMU ends (quit, poweroff, SIGKILL). stop() is for the cases where QEMU never
connected (QEMU failed to start) or the caller wants it gone now: it signals only the pid in this VM's
pidfile, and only when /proc/PID/cmdline is swtpm with this VM's socket (a pid is reused after exit).

Measured here (swtpm 0.7.1, Debian 12, 2 vCPUs): `swtpm socket ... --daemon` returns after 6-18 ms with the
socket in place (the parent exits once the daemon listens). It replaces a stale file at the socket path and
removes its socket and pidfile when it exits (SIGTERM or QEMU gone). With --log file=, its errors go to the
log only: stderr stays empty, so a failure is reported with the log. A missing state directory is NOT an
error at start (rc 0; it fails later when QEMU initialises the TPM): the directory is made here first.
"""

from __future__ import annotations

import os
import signal
import time
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import FileReadError, read_bytes
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_cmdline, proc_state

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

PACKAGES = "Debian/Ubuntu: swtpm (and swtpm-tools for swtpm_setup); Fedora/RHEL: swtpm swtpm-tools; Arch: swtpm"
MISSING = "true needs swtpm, which is not installed on this host (package: %s)" % PACKAGES
# x86: tpm-tis (ISA, what every OS knows) or tpm-crb (q35/UEFI, the TPM 2.0-only interface Windows 11 prefers);
# arm virt: tpm-tis-device.
MODELS = ("tpm-tis", "tpm-crb", "tpm-tis-device")
DEFAULT_MODEL = "tpm-tis"
# 1: swtpm's own errors and warnings; 5 and more add libtpms' traces (large: megabytes over a boot).
LOG_LEVEL = 1
# How long start() waits for the socket after the parent exited (it is there at once, measured: 6-18 ms in all).
SOCKET_WAIT = 2.0
STOP_WAIT = 5.0


class TpmPaths(t.NamedTuple):
    state: str
    socket: str
    pidfile: str
    log: str


def tpm_paths(state_dir: str, run_dir: str, name: str) -> TpmPaths:
    """Where the TPM of VM `name` keeps its state and run-time files."""
    if not name or name in (".", "..") or "/" in name:
        raise QemuInitError("tpm: %r cannot name a directory" % (name,))
    run = os.path.join(run_dir, name)
    return TpmPaths(os.path.join(state_dir, name, "tpm"), os.path.join(run, "swtpm.sock"), os.path.join(run, "swtpm.pid"),
                    os.path.join(run, "swtpm.log"))


def qemu_args(socket_path: str, model: str = DEFAULT_MODEL) -> list[str]:
    """QEMU's argv for the TPM served at socket_path: a chardev to swtpm's control socket, an emulator tpmdev on
    it, and the front end (`model`: tpm-tis on x86 by default, tpm-crb for q35/UEFI, tpm-tis-device on arm virt)."""
    if model not in MODELS:
        raise QemuInitError("tpm: model %r is not one of %s" % (model, ", ".join(MODELS)))
    return ["-chardev", "socket,id=chrtpm,path=%s" % socket_path.replace(",", ",,"),
            "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
            "-device", "%s,tpmdev=tpm0" % model]


def _no_comma(path: str, what: str) -> str:
    # swtpm's option parser has no escape for a comma inside a value (QEMU's doubles it; swtpm's does not).
    if "," in path:
        raise QemuInitError("tpm: the %s %s contains a comma, which swtpm's options cannot carry" % (what, path))
    return path


class Swtpm:
    """swtpm for one host: start/stop a VM's TPM, through module.run_command (argv lists, no shell)."""

    def __init__(self, module: AnsibleModule, binary: str | None = None) -> None:
        self.module = module
        found = binary or module.get_bin_path("swtpm")
        if not found:
            raise QemuInitError("tpm: " + MISSING)
        self.binary: str = found

    def argv(self, paths: TpmPaths, log_level: int = LOG_LEVEL) -> list[str]:
        """The swtpm command line (0.7.1's options: `swtpm socket --help`)."""
        return [self.binary, "socket", "--tpm2",
                "--tpmstate", "dir=%s,mode=0600" % _no_comma(paths.state, "state directory"),
                "--ctrl", "type=unixio,path=%s,mode=0600" % _no_comma(paths.socket, "socket"),
                "--pid", "file=%s" % _no_comma(paths.pidfile, "pidfile"),
                "--log", "file=%s,level=%d,truncate" % (_no_comma(paths.log, "log file"), log_level),
                "--daemon", "--terminate"]

    def running(self, paths: TpmPaths) -> int | None:
        """The pid of this VM's live swtpm (from its pidfile, checked in /proc), or None."""
        pid = _read_pid(paths.pidfile)
        return pid if pid is not None and is_our_swtpm(pid, paths.socket) else None

    def start(self, paths: TpmPaths) -> int:
        """Start the VM's swtpm (or keep the one already serving its socket); returns its pid.

        Makes the state directory (0700) and the run directory (0700) first."""
        pid = self.running(paths)
        if pid is not None:
            return pid
        # The VM's state dir first: makedirs gives `mode` to the last directory only, and <state_dir>/<name>/ holds
        # the VM's disks and secrets (0700 when made here; an existing one keeps the mode its maker chose).
        for directory, own in ((os.path.dirname(paths.state), False), (paths.state, True), (os.path.dirname(paths.socket), True)):
            try:
                os.makedirs(directory, 0o700, exist_ok=True)
                if own:
                    os.chmod(directory, 0o700)
            except OSError as exc:
                raise QemuInitError("tpm: cannot create %s: %s" % (directory, exc.strerror or exc)) from exc
        cmd = self.argv(paths)
        rc, out, err = self.module.run_command(cmd, check_rc=False, environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise QemuInitError("tpm: swtpm did not start (exit status %d): %s" % (rc, _why(err, out, paths.log)),
                                rc=rc, stderr=err, cmd=cmd)
        deadline = time.monotonic() + SOCKET_WAIT
        while True:
            pid = self.running(paths)
            if pid is not None and os.path.exists(paths.socket):
                return pid
            if time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        raise QemuInitError("tpm: swtpm exited 0 but %s: %s" % (
            "no swtpm runs with the pid in %s" % paths.pidfile if pid is None else "its socket %s is missing" % paths.socket,
            _why(err, out, paths.log)), cmd=cmd)

    def stop(self, paths: TpmPaths, timeout: float = STOP_WAIT) -> bool:
        """End this VM's swtpm (SIGTERM, then SIGKILL after `timeout` s); True when one was running.

        Only the pid in its own pidfile, and only when /proc says it is swtpm serving this VM's socket."""
        pid = self.running(paths)
        if pid is None:
            _remove_stale(paths)
            return False
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, timeout)
        _remove_stale(paths)
        return True


def live_pid(paths: TpmPaths) -> int | None:
    """The pid of the VM's live swtpm, or None (no pidfile, an unreadable one, or a pid that is no longer it).
    Needs no swtpm binary: for observers (vm_info) on hosts where only the pidfile tells."""
    try:
        pid = _read_pid(paths.pidfile)
    except QemuInitError:
        return None
    return pid if pid is not None and is_our_swtpm(pid, paths.socket) else None


def is_our_swtpm(pid: int, socket_path: str) -> bool:
    """pid is a live (not zombie) swtpm whose command line names socket_path."""
    if proc_state(pid) in (None, "Z", "X", "x"):
        return False
    argv = proc_cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]) == "swtpm" and any(
        arg.startswith("type=unixio,path=%s," % socket_path) or arg == "type=unixio,path=%s" % socket_path for arg in argv)


def _read_pid(path: str) -> int | None:
    try:
        data = read_bytes(path, "swtpm pidfile", limit=4096)
    except FileReadError as err:
        raise QemuInitError("tpm: %s" % err.msg) from err
    text = (data or b"").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _why(err: str, out: str, log: str) -> str:
    """swtpm's stderr, else its log's last lines (with --log file= errors go there only)."""
    text = (err or out or "").strip()
    if text:
        return text
    try:
        data = read_bytes(log, "swtpm log", limit=1024 * 1024)
    except FileReadError:
        data = None
    lines = (data or b"").decode("utf-8", "replace").strip().splitlines()
    return ("log %s: %s" % (log, " | ".join(lines[-10:]))) if lines else "no message (log %s is empty)" % log


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until pid has exited: gone or a zombie (PID 1 reaps late here, TOOLING.md)."""
    deadline = time.monotonic() + timeout
    while proc_state(pid) not in (None, "Z", "X", "x"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _remove_stale(paths: TpmPaths) -> None:
    """swtpm removes its socket and pidfile when it exits cleanly; after SIGKILL (or a crash) they stay."""
    for path in (paths.pidfile, paths.socket):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise QemuInitError("tpm: cannot remove the stale %s: %s" % (path, err.strerror or err)) from err
