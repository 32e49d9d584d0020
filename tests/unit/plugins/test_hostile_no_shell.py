# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""No shell anywhere in the collection's Python: every command is an argv list.

Read from the source (AST), so a new `shell=True`, `use_unsafe_shell`, `os.system`, or a
`run_command("a string")` fails the unit tests, whatever path reaches it.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SHELL_FUNCS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"),
               ("os", "execl"), ("os", "execlp"), ("os", "spawnl"), ("os", "spawnlp")}
RUNNERS = {"run_command", "run", "Popen", "call", "check_call", "check_output"}


def python_files():
    for top in ("plugins", "tools", "roles"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def _is_string_command(node):
    """A command given as text: a literal, an f-string, '%'-formatting, .format() or ' '.join()."""
    if isinstance(node, (ast.JoinedStr,)) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return True
    return bool(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"))


def findings(source, path):
    out = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.keyword) and node.arg == "shell" and not (isinstance(node.value, ast.Constant) and node.value.value is False):
            out.append("%s:%d: shell=%s" % (path, node.value.lineno, ast.unparse(node.value)))
        if isinstance(node, ast.keyword) and node.arg == "use_unsafe_shell":
            out.append("%s:%d: use_unsafe_shell" % (path, node.value.lineno))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (func.value.id, func.attr) in SHELL_FUNCS:
            out.append("%s:%d: %s.%s runs a shell" % (path, node.lineno, func.value.id, func.attr))
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in RUNNERS and node.args and _is_string_command(node.args[0]):
            out.append("%s:%d: %s(%s): a command string, not an argv list" % (path, node.lineno, name, ast.unparse(node.args[0])))
    return out


def test_there_is_python_to_check():
    files = list(python_files())
    assert any(f.startswith("plugins/modules/") for f in files) and any(f.startswith("plugins/module_utils/") for f in files)


@pytest.mark.parametrize("path", sorted(python_files()))
def test_no_shell_and_no_command_strings(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        assert findings(handle.read(), path) == []


@pytest.mark.parametrize("bad", [
    "module.run_command('ip link show')",
    "module.run_command('ip link show %s' % name)",
    "module.run_command(f'ip link del {name}')",
    "module.run_command(' '.join(argv))",
    "module.run_command(argv, use_unsafe_shell=True)",
    "subprocess.run(argv, shell=True)",
    "subprocess.run(argv, shell=flag)",
    "os.system('reboot')",
    "subprocess.check_output('id')",
])
def test_the_checker_sees_each_kind(bad):
    assert findings(bad, "<test>"), bad


@pytest.mark.parametrize("good", [
    "module.run_command([binary, '-device', 'help'])",
    "module.run_command(cmd, check_rc=False)",
    "subprocess.run(['ip', 'link'], shell=False)",
])
def test_the_checker_passes_argv_lists(good):
    assert findings(good, "<test>") == []
