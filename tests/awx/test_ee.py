# Copyright: (c) 2026, qemu_init.qemu maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment definition (awx/execution-environment.yml).

No container runtime works here, so the image is not built; instead ``ansible-builder create``
writes the build context, which is checked, and the two stages that matter for this collection
are replayed on the host from that context: the galaxy stage (installing the collection from the
requirements file, in the directory the Containerfile makes its WORKDIR) and the builder stage's
dependency introspection (bindep of the installed collections plus ours), whose result bindep
resolves for Fedora (the base image) and for this Debian host.
"""

from __future__ import annotations

import os
import re
import shutil

import yaml
from bindep.depends import Depends

from conftest import COLL, pinned, run, tool

FEDORA = ["platform:rpm", "platform:dnf", "platform:redhat", "platform:fedora", "platform:fedora-42"]
DEBIAN = ["platform:dpkg", "platform:debian", "platform:debian-12"]


def test_ee_build_context(tmp_path, collection_tarball):
    ee_dir = tmp_path / "ee"
    shutil.copytree(COLL / "awx", ee_dir)
    # What docs/awx.md says to do before `ansible-builder build`.
    shutil.copy(collection_tarball, ee_dir / "qemu_init-qemu.tar.gz")
    ctx = tmp_path / "context"
    run([tool("ansible-builder"), "create", "-f", ee_dir / "execution-environment.yml", "-c", ctx,
         "--output-filename", "Containerfile"])

    containerfile = (ctx / "Containerfile").read_text()
    definition = yaml.safe_load((ee_dir / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    # ansible-core and ansible-runner with the pins the test suite runs with
    refs = f'ARG ANSIBLE_INSTALL_REFS="ansible-core=={pinned("ansible-core")} ansible-runner=={pinned("ansible-runner")}"'
    assert refs in containerfile
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    # galaxy stage: the context's _build (with the collection) becomes /build, the WORKDIR of the install
    assert "COPY _build /build\nWORKDIR /build" in containerfile
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", containerfile, re.M)
    # builder and final stages: our bindep.txt is merged with the collections' and installed
    assert "introspect.py introspect --user-bindep=bindep.txt" in containerfile
    assert "RUN /output/scripts/install-from-bindep" in containerfile

    build = ctx / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    entries = requirements["collections"]
    assert len(entries) == 1 and entries[0]["type"] == "file", entries
    assert (build / entries[0]["name"]).read_bytes() == collection_tarball.read_bytes()
    assert (build / "bindep.txt").read_text() == (COLL / "awx" / "bindep.txt").read_text()

    # The galaxy stage, replayed: `ansible-galaxy collection install -r requirements.yml` in /build.
    installed = tmp_path / "usr-share-ansible-collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    run([tool("ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
         "-p", installed], cwd=build, env=env)
    coll = installed / "ansible_collections" / "qemu_init" / "qemu"
    for name in ("vms_up", "vms_down", "vms_report"):
        assert (coll / "playbooks" / f"{name}.yml").is_file(), name
        assert (coll / "awx" / "surveys" / f"{name}.json").is_file(), name
    assert (coll / "roles" / "vms" / "tasks" / "main.yml").is_file()

    # The builder stage's introspection, replayed with the installed collections.
    bindep_out = tmp_path / "bindep.txt"
    pip_out = tmp_path / "requirements.txt"
    run([tool("python"), build / "scripts" / "introspect.py", "introspect", "--user-bindep", build / "bindep.txt",
         "--write-bindep", bindep_out, "--write-pip", pip_out, installed])
    # The modules need only the Python standard library on the host that runs them.
    assert not pip_out.exists() or not pip_out.read_text().strip(), pip_out.read_text()
    depends = Depends(bindep_out.read_text())
    fedora = sorted(rule[0] for rule in depends.active_rules(FEDORA))
    debian = sorted(rule[0] for rule in depends.active_rules(DEBIAN))
    assert fedora == ["iproute", "qemu-system-x86-core"], fedora
    assert debian == ["iproute2", "qemu-system-x86"], debian
    # On this Debian host bindep finds every package of its platform installed: the names are real.
    missing = run([tool("bindep"), "-b", "-f", bindep_out]).split()
    assert missing == [], missing
