# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the collection's real modules in-process and watch what they touch.

`call(main, args)` runs a module's main() the way Ansible does (arguments through _ANSIBLE_ARGS, the
result read back as JSON from stdout), while a Python audit hook records every file the module writes,
creates, renames, removes or chmods and every process it starts. Nothing is faked: the modules run
`ip` and `qemu-system-x86_64` for real.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import re
import stat
import sys
import traceback

from ansible.module_utils.testing import patch_module_args

PROFILE = os.environ.get("QI_HOSTILE_PROFILE", "ci")


def examples(n):
    """The example count of a test: n under the ci profile, ten times n under long."""
    return n * (10 if PROFILE == "long" else 1)


SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox"))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    # event: (index of the path argument, index of the dir_fd argument or None)
    "os.mkdir": (0, 2),
    "os.remove": (0, 1),
    "os.rmdir": (0, 1),
    "os.chmod": (0, 2),
    "os.chown": (0, 3),
    "os.truncate": (0, None),
    "os.utime": (0, 3),
    "shutil.rmtree": (0, 1),
}


class Recorder:
    """What one module run did to the file system and which programs it ran."""

    def __init__(self):
        self.writes = []    # (event, absolute path)
        self.execs = []     # argv lists
        self.binds = []     # unix socket paths bound

    def _path(self, value, dir_fd=None):
        if isinstance(value, int) or value is None or dir_fd not in (None, -100):
            return None  # an fd, or relative to a dir_fd: covered by the event that opened it
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        return os.path.abspath(os.fspath(value))

    def event(self, name, args):
        if name == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            target = self._path(path)
            if writing and target is not None:
                self.writes.append((name, target))
        elif name in _PATH_EVENTS:
            index, fd_index = _PATH_EVENTS[name]
            dir_fd = args[fd_index] if fd_index is not None and len(args) > fd_index else None
            target = self._path(args[index], dir_fd)
            if target is not None:
                self.writes.append((name, target))
        elif name in ("os.rename", "os.link", "os.symlink"):
            # rename changes both paths; link and symlink create the second one
            for value in (args[:2] if name == "os.rename" else args[1:2]):
                target = self._path(value)
                if target is not None:
                    self.writes.append((name, target))
        elif name == "subprocess.Popen":
            executable, argv = args[0], args[1]
            self.execs.append((executable, argv))
        elif name == "socket.bind":
            address = args[1]
            if isinstance(address, (str, bytes)):
                self.binds.append(self._path(address))


_ACTIVE = []


def _hook(name, args):
    if _ACTIVE:
        try:
            _ACTIVE[-1].event(name, args)
        except Exception:  # pylint: disable=broad-except  # an audit hook must never break the code it watches
            _ACTIVE[-1].writes.append(("hook-error", traceback.format_exc()))


sys.addaudithook(_hook)


class Outcome:
    """A module run: kind is 'ok', 'fail' or 'crash' (an exception escaped main() or no JSON came out)."""

    def __init__(self, kind, result, recorder, error=None):
        self.kind = kind
        self.result = result
        self.recorder = recorder
        self.error = error

    @property
    def msg(self):
        return str((self.result or {}).get("msg", ""))

    def __repr__(self):
        return "Outcome(%s, %r%s)" % (self.kind, self.result, ", error=%s" % self.error if self.error else "")


def call(main, args, check_mode=False, diff=False):
    """Run a module's main() with args as Ansible passes them; never raises."""
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    out = io.StringIO()
    recorder = Recorder()
    code, error = "no exit", None
    try:
        with patch_module_args(args), contextlib.redirect_stdout(out):
            _ACTIVE.append(recorder)
            try:
                main()
            except SystemExit as exc:
                code = exc.code
            finally:
                _ACTIVE.pop()
    except Exception:  # pylint: disable=broad-except  # that is what we look for
        error = traceback.format_exc()
    text = out.getvalue()
    try:
        result = json.loads(text) if text.strip() else None
    except ValueError:
        result, error = None, error or "stdout is not JSON: %r" % text[-2000:]
    if error or result is None or code == "no exit":
        return Outcome("crash", result, recorder, error or "main() returned without exit_json/fail_json (exit %r)" % (code,))
    if result.get("exception"):
        return Outcome("crash", result, recorder, result["exception"])
    if bool(code) != bool(result.get("failed")):
        return Outcome("crash", result, recorder, "exit status %r does not match failed=%r" % (code, result.get("failed")))
    return Outcome("fail" if result.get("failed") else "ok", result, recorder)


def is_under(path, roots):
    path = os.path.realpath(path)
    return any(path == os.path.realpath(r) or path.startswith(os.path.realpath(r).rstrip("/") + "/") for r in roots)


# Files a module may write outside config_dir/run_dir (Python's own machinery, never our data).
ALLOWED_OUTSIDE = ("/dev/null", "/dev/kvm")  # kvm: opened read-write only to ask its API version


def writes_outside(outcome, roots):
    bad = []
    for event, path in outcome.recorder.writes:
        if event == "hook-error":
            bad.append(path)
        elif path not in ALLOWED_OUTSIDE and not is_under(path, roots) and "__pycache__" not in path:
            bad.append("%s %s" % (event, path))
    return bad


def shell_execs(outcome):
    """Commands that went through a shell, or were given as one string."""
    bad = []
    for executable, argv in outcome.recorder.execs:
        if isinstance(argv, (str, bytes)):
            bad.append("command string %r" % (argv,))
            continue
        argv = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
        progs = [os.fsdecode(executable) if executable else argv[0]]
        if len(argv) > 4 and argv[1:3] == ["netns", "exec"]:
            progs.append(argv[4])  # ip netns exec NS PROGRAM ...
        if any(os.path.basename(p) in SHELLS for p in progs):
            bad.append("shell %r" % (argv,))
    return bad


def snapshot(root):
    """Every entry under root: relative path -> (type, mode, content or link target)."""
    tree = {}
    if not os.path.lexists(root):
        return tree
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    tree[rel] = ("file", stat.S_IMODE(st.st_mode), handle.read())
            elif stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", 0, os.readlink(path))
            else:
                tree[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), None)
    return tree


def tree_diff(before, after):
    changed = sorted(set(before) ^ set(after)) + sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return changed


class Tally:
    """Examples per module and their outcomes, printed as the summary table."""

    def __init__(self):
        self.rows = collections.OrderedDict()

    def add(self, module, kind):
        row = self.rows.setdefault(module, collections.Counter())
        row["examples"] += 1
        row[kind] += 1

    def table(self):
        lines = ["%-28s %9s %9s %9s %9s" % ("module", "examples", "accepted", "rejected", "failures")]
        total = collections.Counter()
        for module, row in self.rows.items():
            lines.append("%-28s %9d %9d %9d %9d" % (module, row["examples"], row["ok"], row["fail"], row["bad"]))
            total.update(row)
        lines.append("%-28s %9d %9d %9d %9d" % ("total", total["examples"], total["ok"], total["fail"], total["bad"]))
        return "\n".join(lines)


TALLY = Tally()


# Prose in which a refusal names a parameter without the "param: " form, each tied to one parameter and
# to that parameter's own value: "VM 0 has no cfg file" names `name` when name is "0" (or lists "0"),
# and names nothing when name is "web1" and some other parameter is 0. A value alone never names a
# parameter: "0", "up" or "-" occur in almost any message. The collection's own errors use "param: ";
# these are the few that describe what exists already (a link, a namespace, a running VM).
PROSE = {
    "name": ("VM {}", "a link named {} exists", "tap {} exists", "cannot put tap {} on"),
    "netns": ("network namespace {}",),
    "bridge": ("on bridge {}",),
    "qmp": ("QMP command {}",),
    "command": ("HMP command {!r}",),
}


def _values(value):
    """The strings a parameter's value reaches a message as (a scalar Ansible made a str counts as
    given: False -> "False"; each item of a list of names)."""
    found = []
    for one in (value if isinstance(value, list) else [value]):
        if isinstance(one, (bool, int, float)):
            one = str(one)
        if isinstance(one, str) and one.strip():
            found.append(one)
    return found


def names_param(msg, param, value=None):
    """Does msg name param, by its name or path ("nics[0].mac: ...", Ansible's argument checks), or in
    one of the PROSE forms for param followed by its value?"""
    p = re.escape(param)
    if (re.search(r"(^|[\s.(;])%s(\[\d+\])?(\.\w+)?: " % p, msg)
            or re.search(r"'%s'|value of %s must|found in %s\b|\b%s\b.*(are mutually exclusive|is required|are required)" % (p, p, p, p), msg)
            or re.search(r"(Unsupported parameters|mutually exclusive|one of the following is required|missing required).*\b%s\b" % p, msg)):
        return True
    for form in PROSE.get(param, ()):
        for one in _values(value):
            if re.search(r"(^|[\s(])%s(?=[\s\"';:,)]|$)" % re.escape(form.format(one)), msg):
                return True
    return False


def judge(module, outcome, roots, params, before=None, after=None, also=(), tally=None):
    """The properties every run must have; returns the problems (empty when none) and counts the run.

    - no traceback, no exception, JSON out;
    - nothing written outside `roots` (config_dir/run_dir), no shell, no command string;
    - a failure names one of `params` (a list of names, or a dict param -> value given) or of `also`
      by its name (names_param; a value on its own does not count), and leaves the trees as they
      were (before == after).
    """
    problems = []
    if outcome.kind == "crash":
        problems.append("crash: %s" % outcome.error)
    problems += ["wrote outside config_dir/run_dir: %s" % w for w in writes_outside(outcome, roots)]
    problems += ["ran through a shell: %s" % s for s in shell_execs(outcome)]
    if outcome.kind == "fail":
        msg = outcome.msg
        given = dict(params) if isinstance(params, dict) else dict.fromkeys(params or ())
        given.update((p, None) for p in also if p not in given)
        if given and not any(names_param(msg, p, v) for p, v in given.items()):
            problems.append("failure message names none of %s: %r" % (sorted(given), msg))
        if "Traceback" in msg:
            problems.append("failure message carries a traceback: %r" % msg)
        if before is not None and after is not None and before != after:
            problems.append("failed but changed: %s" % tree_diff(before, after))
    (TALLY if tally is None else tally).add(module, "bad" if problems else outcome.kind)
    return problems
