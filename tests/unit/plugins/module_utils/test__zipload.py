# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_zipload: modules imported from a zip, as AnsiballZ imports our module_utils, are compiled once, and are otherwise
the modules zipimport makes. Each case runs in a fresh interpreter that counts compiles through the `compile` audit
event (sys.addaudithook), with a real zip on sys.path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload

HERE = os.path.dirname(os.path.abspath(__file__))

# A package as our module_utils are one: a package, a module, a sub-package with a module whose function fails.
FILES = {
    "qizl/__init__.py": "",
    "qizl/mod.py": "VALUE = 42\n",
    "qizl/sub/__init__.py": "from qizl.sub import leaf\n",
    "qizl/sub/leaf.py": "from qizl.mod import VALUE\n\n\ndef fail():\n    raise ValueError('leaf says %d' % VALUE)\n",
}

# Run in the child: import the zip's modules, with or without the finder, and report what came of them.
CHILD = r"""
import collections, json, sys, traceback
compiles = collections.Counter()
sys.addaudithook(lambda event, args: compiles.update([str(args[1])]) if event == "compile" else None)
from ansible_collections.qemu_init.qemu.plugins.module_utils import _zipload
archive, mode = sys.argv[1], sys.argv[2]
sys.path.insert(0, archive)
if mode == "finder":
    assert _zipload.install("qizl.") and _zipload.install("qizl.")
elif mode == "boot":  # _zipload itself imported from the zip, as a module imports it from AnsiballZ's
    import qizl_boot
import qizl.mod, qizl.sub, qizl.sub.leaf
try:
    qizl.sub.leaf.fail()
except ValueError:
    tb = traceback.format_exc().splitlines()[-3:]
try:
    import qizl.nothing
except ImportError as exc:
    missing = type(exc).__name__
finders = [(type(f).__name__, getattr(f, "prefix", None)) for f in sys.meta_path if type(f).__name__ == "CompileOnceFinder"]
print(json.dumps(dict(
    compiles={k[len(archive) + 1:]: v for k, v in compiles.items() if k.startswith(archive + "/")},
    files={m: sys.modules[m].__file__ for m in ("qizl.mod", "qizl.sub", "qizl.sub.leaf")},
    path=list(qizl.sub.__path__), package=qizl.sub.leaf.__package__, traceback=tb, missing=missing, finders=finders)))
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("zipload") / "payload.zip")
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in FILES.items():
            zf.writestr(name, text)
        with open(_zipload.__file__, encoding="utf-8") as src:
            zf.writestr("qizl_boot.py", src.read())
    return path


def child(archive, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", CHILD, archive, mode], env=env, check=True, capture_output=True, text=True, cwd=HERE)
    return json.loads(out.stdout)


@pytest.mark.skipif(not hasattr(__import__("zipimport").zipimporter, "exec_module"), reason="install() needs Python 3.10+")
def test_the_finder_compiles_each_file_once_and_changes_nothing_else(archive):
    plain, once = child(archive, "plain"), child(archive, "finder")
    # Without it zipimport compiles every file twice (find_spec -> get_filename, then get_code): why it exists.
    assert plain["compiles"] == {"qizl/__init__.py": 2, "qizl/mod.py": 2, "qizl/sub/__init__.py": 2, "qizl/sub/leaf.py": 2}
    # With it, once each below the prefix; the top package is not below it and is zipimport's as before.
    assert once["compiles"] == {"qizl/__init__.py": 2, "qizl/mod.py": 1, "qizl/sub/__init__.py": 1, "qizl/sub/leaf.py": 1}
    assert once["finders"] == [["CompileOnceFinder", "qizl."]]  # installed once, though asked twice
    # The same modules otherwise: file names, the package's path, tracebacks with their source lines, a missing module.
    for key in ("files", "path", "package", "traceback", "missing"):
        assert once[key] == plain[key], key
    assert once["files"]["qizl.sub"] == archive + "/qizl/sub/__init__.py"
    assert once["traceback"][-2].strip() == "raise ValueError('leaf says %d' % VALUE)"
    assert once["missing"] == "ModuleNotFoundError"


@pytest.mark.skipif(not hasattr(__import__("zipimport").zipimporter, "exec_module"), reason="install() needs Python 3.10+")
def test_loaded_from_a_zip_it_installs_itself_for_our_module_utils(archive):
    booted = child(archive, "boot")
    assert booted["finders"] == [["CompileOnceFinder", _zipload.PREFIX]]
    assert booted["compiles"]["qizl/mod.py"] == 2  # not below our prefix: left to zipimport


def test_loaded_from_files_it_installs_nothing():
    # Here (pytest) _zipload came from the file system: nothing on sys.meta_path is its finder.
    assert not any(isinstance(finder, _zipload.CompileOnceFinder) for finder in sys.meta_path)
