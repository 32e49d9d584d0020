# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Our module_utils, loaded from AnsiballZ's zip, compiled once instead of twice.

A module runs from the zip Ansible ships, and Python's zipimport compiles each source file twice on import: once when
it builds the module's spec (zipimporter.find_spec asks its own get_filename, which compiles) and again when it runs
it (get_code). Measured with Python 3.11; the unit test shows it for the Python that runs the test. For our ~45
files that is ~33 ms of every module call (about a tenth of a vms re-run's module process).

Importing this module, as every module of the collection does before its other imports, puts a finder first on
sys.meta_path for names under PREFIX when the module itself was loaded from a zip. The finder asks the same
zipimporter only whether the name is a package (which compiles nothing) and hands out a spec whose loader is that
zipimporter, so get_code compiles the file once. __file__, __path__, tracebacks and coverage see the same paths as
without it. Anything else, or a name the zip does not hold, it leaves to Python's own machinery.

This is a private module (leading underscore): not an API for other collections.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import typing as t
import zipimport

if t.TYPE_CHECKING:
    import importlib.abc  # 1.4 ms to import at run time, for a type only

PREFIX = "ansible_collections.qemu_init.qemu.plugins.module_utils."


class CompileOnceFinder:
    """sys.meta_path finder for the modules named `prefix`... inside a zip on their package's path."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def find_spec(self, fullname: str, path: t.Sequence[str] | None, target: t.Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self.prefix) or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            try:
                importer = zipimport.zipimporter(entry)  # the zip's directory is read once per process and cached
                is_package = importer.is_package(fullname)
            except zipimport.ZipImportError:  # not a zip, or not in it
                continue
            origin = os.path.join(entry, leaf, "__init__.py") if is_package else os.path.join(entry, leaf + ".py")
            # zipimporter is a Loader (exec_module, since Python 3.10); typeshed does not say so.
            loader = t.cast("importlib.abc.Loader", importer)
            spec = importlib.machinery.ModuleSpec(fullname, loader, origin=origin, is_package=is_package)
            spec.has_location = True  # __file__ is set, as zipimport sets it
            if is_package:
                spec.submodule_search_locations = [os.path.dirname(origin)]
            return spec
        return None

    def invalidate_caches(self) -> None:
        """Nothing is cached here."""


def install(prefix: str = PREFIX) -> bool:
    """Put a CompileOnceFinder for `prefix` first on sys.meta_path, once; whether one is there now.

    Only where zipimporter loads modules itself (Python 3.10 and later); earlier ones go their own (legacy) way.
    """
    if not hasattr(zipimport.zipimporter, "exec_module"):
        return False
    if not any(isinstance(finder, CompileOnceFinder) and finder.prefix == prefix for finder in sys.meta_path):
        sys.meta_path.insert(0, CompileOnceFinder(prefix))
    return True


if isinstance(getattr(__spec__, "loader", None), zipimport.zipimporter):
    install()
