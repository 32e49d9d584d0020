# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The `qemu-init` command on the managed host (with `qemu-cmd` and `qemu-mon` as links to it).

Not a second implementation: start, stop and status call the vm and vm_info modules' own code (_vm_states)
with a HostModule standing in for AnsibleModule, so a VM started by the command and one started by a playbook
are the same thing, and the systemd units at boot and shutdown run the same stop ladder as `vm stopped`.
Needs Python 3 and these module_utils only (the host role installs them with a launcher).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_RUN_DIR,
    DEFAULT_STATE_DIR,
    ParameterError,
    QemuInitError,
)

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed (the message says why)
EXIT_USAGE = 2  # bad command line (argparse's own code)
EXIT_NOT_RUNNING = 3  # status: a named VM is not running, or unknown; start/stop: unknown VM
EXIT_NOT_RUNNING_CMD = 4  # cmd, mon, console: the VM is not running

DEFAULT_TIMEOUT = 120
EXIT_CODES = """exit codes:
  0  done (status: every named VM runs)
  1  the operation failed (the message says why; a stop that timed out without --force leaves the VM running)
  2  bad command line
  3  unknown VM (status: also a VM that is not running)
  4  cmd, mon, console: the VM is not running"""


class HostModule:
    """What the collection's module_utils need of an AnsibleModule, for a command on the host."""

    check_mode = False
    _diff = False

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params

    def get_bin_path(self, name: str, required: bool = False, opt_dirs: list[str] | None = None) -> str | None:
        path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/local/sbin", "/usr/sbin", "/sbin"]))
        if path is None and required:
            raise QemuInitError("%s not found in PATH or /usr/local/sbin, /usr/sbin, /sbin" % name)
        return path

    def run_command(self, args: list[str], check_rc: bool = False, data: str | None = None, umask: int | None = None,
                    environ_update: dict[str, str] | None = None, **_ignored: t.Any) -> tuple[int, str, str]:
        env = dict(os.environ, **(environ_update or {}))

        def child_umask() -> None:
            if umask is not None:
                os.umask(umask)

        # The host tools run without Ansible: this is their stand-in for AnsibleModule.run_command (argv only).
        proc = subprocess.run(args, input=data, capture_output=True, text=True,  # pylint: disable=ansible-bad-function
                              env=env, preexec_fn=child_umask, check=False)  # noqa: PLW1509
        if check_rc and proc.returncode != 0:
            raise QemuInitError("%s failed: %s" % (" ".join(args), proc.stderr.strip()), rc=proc.returncode)
        return proc.returncode, proc.stdout, proc.stderr

    def fail_json(self, msg: str, **details: t.Any) -> t.NoReturn:
        raise QemuInitError(msg, **details)


def _module(opts: argparse.Namespace, **params: t.Any) -> HostModule:
    base = dict(config_dir=opts.config_dir, run_dir=opts.run_dir, state_dir=opts.state_dir, qemu_binary=opts.qemu_binary,
                shutdown_timeout=getattr(opts, "timeout", DEFAULT_TIMEOUT), force=getattr(opts, "force", False),
                restart_on_change=False, name=None)
    base.update(params)
    return HostModule(base)


# --- selecting VMs ----------------------------------------------------------------------------
def _all_names(opts: argparse.Namespace) -> list[str]:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import VmInventory
    return VmInventory(_module(opts)).all_names()


def _autostart_names(opts: argparse.Namespace) -> list[str]:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import VmInventory
    manager = VmInventory(_module(opts))
    records = manager.load(manager.all_names(), need_cfg=False)
    return [r.name for r in records if r.spec is not None and r.spec.autostart]


def _names(opts: argparse.Namespace) -> list[str]:
    if getattr(opts, "autostart", False):
        return _autostart_names(opts)
    if getattr(opts, "all", False):
        return _all_names(opts)
    return list(opts.names)


# --- subcommands ------------------------------------------------------------------------------
def _lifecycle(opts: argparse.Namespace, state: str) -> int:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._vm_states import converge
    names = _names(opts)
    if not names:
        _say(opts, "no VM to %s" % ("start" if state == "started" else state.rstrip("ed")))
        return EXIT_OK
    if state == "stopped" and getattr(opts, "all", False):
        names = [vm["name"] for vm in _info(opts, names) if vm["running"]]
        if not names:
            _say(opts, "no VM is running")
            return EXIT_OK
    result = converge(_module(opts, name=names, state=state))
    for vm in result["vms"]:
        _say(opts, _lifecycle_line(vm, state))
    if opts.json:
        _out(json.dumps(result["vms"], indent=1))
    return EXIT_OK


def _lifecycle_line(vm: dict[str, t.Any], state: str) -> str:
    if state == "stopped":
        if vm["stop_method"] == "none":
            return "%s: not running" % vm["name"]
        return "%s: stopped (%s, %.2f s)" % (vm["name"], vm["stop_method"], vm["stop_seconds"] or 0)
    if not vm["changed"]:
        return "%s: already running (pid %s)" % (vm["name"], vm["pid"])
    how = "restarted" if vm["stop_method"] not in (None, "none") else "started"
    return "%s: %s (pid %s)" % (vm["name"], how, vm["pid"])


def _info(opts: argparse.Namespace, names: list[str] | None) -> list[dict[str, t.Any]]:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._observe import info
    return info(_module(opts, name=names or None))["vms"]


def _status(opts: argparse.Namespace) -> int:
    vms = _info(opts, list(opts.names))
    if opts.json:
        _out(json.dumps(vms, indent=1))
    else:
        for vm in vms:
            _out(_status_line(vm))
    return EXIT_OK if all(vm["running"] for vm in vms) else EXIT_NOT_RUNNING


def _status_line(vm: dict[str, t.Any]) -> str:
    if not vm["exists"]:
        return "%s: unknown" % vm["name"]
    if not vm["running"]:
        return "%s: stopped" % vm["name"]
    ports = "" if vm["slot"] is None else ", monitor port %s, control port %s" % (vm["monitor_port"], vm["control_port"])
    note = ", restart required (cfg changed)" if vm["restart_required"] else ""
    return "%s: %s (pid %s, slot %s%s)%s" % (vm["name"], vm["status"], vm["pid"], vm["slot"], ports, note)


def _list(opts: argparse.Namespace) -> int:
    vms = _info(opts, None)
    if opts.json:
        _out(json.dumps([dict((k, vm[k]) for k in ("name", "short_name", "slot", "running", "pid", "status")) for vm in vms], indent=1))
        return EXIT_OK
    rows = [("NAME", "SHORT", "SLOT", "STATE", "PID")]
    rows += [(vm["name"], vm["short_name"] or "-", "-" if vm["slot"] is None else str(vm["slot"]),
              vm["status"] if vm["running"] else "stopped", str(vm["pid"] or "-")) for vm in vms]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        _out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return EXIT_OK


def _running_record(opts: argparse.Namespace, name: str):
    from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import VmInventory
    record = VmInventory(_module(opts)).load([name], need_cfg=False)[0]
    if not record.running:
        raise _NotRunning("VM %s is not running" % record.name)
    return record


def _cmd(opts: argparse.Namespace) -> int:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._observe import monitor
    _running_record(opts, opts.name)
    result = monitor(_module(opts, name=opts.name, command=" ".join(opts.words), qmp=None, arguments=None))
    sys.stdout.write(result.get("output", ""))
    return EXIT_OK


def _mon(opts: argparse.Namespace) -> int:
    """An interactive human monitor (HMP over QMP), with line editing and history when readline is there."""
    from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_cmdline
    from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import observer_socket
    from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient
    record = _running_record(opts, opts.name)
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline
            history = os.path.expanduser("~/.qemu-init_history")
            if os.path.exists(history):
                readline.read_history_file(history)
        except (ImportError, OSError):
            readline = None  # type: ignore[assignment]
        _out("QEMU monitor of %s (HMP; 'quit' ends the VM, Ctrl-D or 'exit' leaves the monitor)" % record.name)
    prompt = "(qemu %s) " % record.name if interactive else ""
    # One QMP session per command: the monitor is never held between two lines, so other clients
    # (the vm module, vm_info, a stop) are not locked out while a person reads the output.
    while True:
        try:
            line = input(prompt)
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("exit", "bye"):
            break
        # The observer monitor: the lifecycle one may be held by a stop in progress.
        with QmpClient(observer_socket(record.run, proc_cmdline(record.pid)), timeout=5.0) as qmp:
            sys.stdout.write(qmp.hmp(line))
        sys.stdout.flush()
        if line.split()[0] in ("quit", "q"):
            break
    if interactive and "readline" in sys.modules:
        import readline
        try:
            readline.write_history_file(os.path.expanduser("~/.qemu-init_history"))
        except OSError:
            pass
    return EXIT_OK


def _console(opts: argparse.Namespace) -> int:
    """Attach to the serial console socket; Ctrl-] detaches. The log file keeps everything either way."""
    import select
    record = _running_record(opts, opts.name)
    if not os.path.exists(record.run.console):
        raise QemuInitError("VM %s has no console socket (%s): it was started by an older release; its console is "
                            "logged to %s (restart it to get one)" % (record.name, record.run.console, record.serial_log))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(record.run.console)
    except OSError as exc:
        raise QemuInitError("attaching to %s failed: %s (is another console attached?)" % (record.run.console, exc.strerror)) from exc
    tty_state = None
    stdin = sys.stdin.fileno()
    if sys.stdin.isatty():
        import termios
        import tty
        tty_state = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        sys.stderr.write("Connected to %s's serial console; Ctrl-] detaches.\r\n" % record.name)
    try:
        stdin_open = True
        while True:
            readable = select.select([sock] + ([stdin] if stdin_open else []), [], [])[0]
            if sock in readable:
                data = sock.recv(4096)
                if not data:
                    break  # QEMU exited
                os.write(sys.stdout.fileno(), data)
            if stdin in readable:
                data = os.read(stdin, 1024)
                if not data:
                    stdin_open = False  # end of input: keep showing output until the VM goes or we are interrupted
                    if not sys.stdin.isatty():
                        sock.settimeout(opts.linger)
                        _drain(sock, opts.linger)
                        break
                    continue
                if b"\x1d" in data:  # Ctrl-]
                    sock.sendall(data.split(b"\x1d", 1)[0])
                    break
                sock.sendall(data)
    finally:
        sock.close()
        if tty_state is not None:
            import termios
            termios.tcsetattr(stdin, termios.TCSADRAIN, tty_state)
            sys.stderr.write("\nDetached.\n")
    return EXIT_OK


def _drain(sock: socket.socket, seconds: float) -> None:
    """Print what the guest sends for `seconds` after scripted input ended (its answer to the last line)."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return
        if not data:
            return
        os.write(sys.stdout.fileno(), data)


class _NotRunning(QemuInitError):
    pass


# --- the command line -------------------------------------------------------------------------
def parser(prog: str = "qemu-init") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start, stop and talk to the QEMU VMs of this host, as the qemu_init.qemu collection manages them "
                    "(cfg files in CONFIG_DIR/vms/<name>-qemu.cfg, runtime files in RUN_DIR/<name>/).",
        epilog=EXIT_CODES + "\n\nexamples:\n  qemu-init start web1 web2\n  qemu-init stop --timeout 60 --force web1\n"
                            "  qemu-init status --json web1\n  qemu-init cmd web1 info status\n  qemu-init mon web1\n"
                            "  qemu-init console web1")
    top.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR, help="cfg files, registry, monitor.conf (default %(default)s)")
    top.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="pidfiles, sockets, serial logs (default %(default)s)")
    top.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                     help="what VMs keep across reboots: UEFI vars, TPM state, seeds (default %(default)s)")
    top.add_argument("--qemu-binary", default="qemu-system-x86_64", help="QEMU to launch (default %(default)s)")
    top.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def lifecycle(name: str, text: str, stop: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("names", nargs="*", default=[], metavar="NAME", help="VM names (long or short)")
        if name == "start":
            which.add_argument("--autostart", action="store_true", help="every VM whose cfg says AUTOSTART=\"yes\"")
        else:
            which.add_argument("--all", action="store_true", help="every VM of this host")
        if stop:
            p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                           help="seconds the guests get to power off after the ACPI press (default %(default)s)")
            p.add_argument("--force", action="store_true", help="after the timeout: QMP quit, then SIGTERM, then SIGKILL")
        p.add_argument("--json", action="store_true", help="also print the results as JSON")
        return p

    lifecycle("start", "start VMs (makes their bridges and taps first)", False)
    lifecycle("stop", "power VMs down gracefully (ACPI), all at once", True)
    lifecycle("restart", "stop (if running) and start VMs", True)
    p = sub.add_parser("status", help="is it running, pid, QMP status, ports", description="exit 0 only if every named VM runs")
    p.add_argument("names", nargs="*", metavar="NAME", help="VM names (default: every VM)")
    p.add_argument("--json", action="store_true", help="the facts vm_info returns, as JSON")
    p = sub.add_parser("list", help="every VM of this host, a line each")
    p.add_argument("--json", action="store_true", help="as JSON")
    p = sub.add_parser("cmd", help="one human-monitor command (qemu-cmd)", description="e.g. qemu-init cmd web1 info status")
    p.add_argument("name", metavar="NAME")
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND...")
    p = sub.add_parser("mon", help="an interactive human monitor (qemu-mon)")
    p.add_argument("name", metavar="NAME")
    p = sub.add_parser("console", help="attach to the serial console (Ctrl-] detaches; the log continues)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--linger", type=float, default=2.0, help=argparse.SUPPRESS)  # scripted input: wait for the answer
    return top


def _say(opts: argparse.Namespace, line: str) -> None:
    if not opts.quiet:
        _out(line, sys.stderr if opts.json else sys.stdout)


def _out(text: str, stream: t.TextIO | None = None) -> None:
    """A line for the person at the terminal (module_utils have no print: the modules speak JSON only)."""
    stream = stream or sys.stdout
    stream.write(text + "\n")


def main(argv: list[str] | None = None, prog: str | None = None, defaults: dict[str, str] | None = None) -> int:
    """Run the command; `defaults` (config_dir, run_dir, state_dir, qemu_binary) are the installed launcher's built-in ones."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = os.path.basename(prog or sys.argv[0])
    # qemu-cmd and qemu-mon are links to qemu-init, as in qemu-init's tool set.
    if prog == "qemu-cmd" or prog == "qemu-mon":
        argv = _alias(argv, "cmd" if prog == "qemu-cmd" else "mon")
    top = parser("qemu-init")
    top.set_defaults(**(defaults or {}))
    opts = top.parse_args(argv)
    actions: dict[str, t.Callable[[argparse.Namespace], int]] = dict(
        start=lambda o: _lifecycle(o, "started"), stop=lambda o: _lifecycle(o, "stopped"),
        restart=lambda o: _lifecycle(o, "restarted"), status=_status, list=_list, cmd=_cmd, mon=_mon, console=_console)
    if opts.command == "cmd" and not opts.words:
        top.error("cmd: give a monitor command, e.g. info status")
    try:
        return actions[opts.command](opts)
    except _NotRunning as exc:
        _out("qemu-init: %s" % exc.msg, sys.stderr)
        return EXIT_NOT_RUNNING_CMD
    except ParameterError as exc:
        _out("qemu-init: %s" % exc.problem, sys.stderr)
        return EXIT_NOT_RUNNING if "no cfg file" in exc.problem else EXIT_FAILED
    except QemuInitError as exc:
        _out("qemu-init: %s" % exc.msg, sys.stderr)
        return EXIT_NOT_RUNNING if _unknown(exc.msg) else EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _unknown(msg: str) -> bool:
    return " has no cfg file " in msg


def _alias(argv: list[str], command: str) -> list[str]:
    """`qemu-cmd [GLOBAL OPTIONS] NAME COMMAND...` -> `qemu-init [GLOBAL OPTIONS] cmd NAME COMMAND...`."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1 if "=" in argv[i] or argv[i] in ("-q", "--quiet", "-h", "--help") else 2
    return argv[:i] + [command] + argv[i:]
