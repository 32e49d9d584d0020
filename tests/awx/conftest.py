# Copyright: (c) 2026, qemu_init.qemu maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pieces of the AWX-side tests (tools/test.sh step `awx`, docs/awx.md).

Run with the venv's pytest from the laid-out collection (``.../ansible_collections/qemu_init/qemu``):
the tools (ansible-galaxy, ansible-builder, ansible-runner, bindep) are taken from the directory of
the Python that runs pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

COLL = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name):
    """A program of the venv (ansible-galaxy, ansible-builder, ...)."""
    path = BIN / name
    assert path.is_file(), f"{name} is not in {BIN}: run the tests with the venv's python (tools/test.sh awx)"
    return str(path)


def run(argv, cwd=None, env=None, timeout=300):
    """Run argv (a list, no shell); fail the test with its output when it fails."""
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, timeout=timeout, check=False,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
    return proc.stdout


def galaxy_meta():
    return yaml.safe_load((COLL / "galaxy.yml").read_text())


def pinned(requirement):
    """The version tools/requirements.txt pins for a package (the suite's own pins)."""
    for line in (COLL / "tools" / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == requirement:
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"tools/requirements.txt pins no {requirement}")


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory):
    """The collection artifact, built the way a release is (galaxy.yml build_ignore applies)."""
    out = tmp_path_factory.mktemp("dist")
    run([tool("ansible-galaxy"), "collection", "build", "--output-path", out, COLL])
    meta = galaxy_meta()
    tarball = out / f"{meta['namespace']}-{meta['name']}-{meta['version']}.tar.gz"
    assert tarball.is_file(), sorted(p.name for p in out.iterdir())
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (meta["namespace"], meta["name"], meta["version"])
    return tarball


@pytest.fixture(scope="session")
def installed_collections(tmp_path_factory, collection_tarball):
    """A collections dir holding the installed artifact, as in the execution environment."""
    dest = tmp_path_factory.mktemp("collections")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest))
    run([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", dest, collection_tarball], env=env)
    assert (dest / "ansible_collections" / "qemu_init" / "qemu" / "playbooks" / "vms_up.yml").is_file()
    return dest


# --------------------------------------------------------------------------------------------
# AWX surveys. The rules below restate AWX's own (awx/api/views: JobTemplateSurveySpec
# _validate_spec_data; awx/main/models/mixins.py: SurveyJobTemplateMixin) so that the survey
# files can be checked, and answered the way AWX answers them, without an AWX.

SURVEY_TYPES = {
    "text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
    "integer": int, "float": (float, int),
}


def load_survey(name):
    return json.loads((COLL / "awx" / "surveys" / f"{name}.json").read_text())


def survey_spec_errors(survey):
    """What AWX's survey_spec endpoint would refuse in this survey (an empty list: accepted)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append(f"{field}: missing or not a {kind.__name__}")
    if errors or not survey["spec"]:
        return errors or ["spec has no items"]
    seen = set()
    for idx, item in enumerate(survey["spec"]):
        where = f"question {idx} ({item.get('variable')})"
        for field in ("type", "question_name", "variable", "required"):
            kind = bool if field == "required" else str
            if not isinstance(item.get(field), kind):
                errors.append(f"{where}: {field} missing or not a {kind.__name__}")
        if item.get("variable") in seen:
            errors.append(f"{where}: variable used twice")
        seen.add(item.get("variable"))
        qtype = item.get("type")
        if qtype not in SURVEY_TYPES:
            errors.append(f"{where}: type {qtype!r} is not one of {sorted(SURVEY_TYPES)}")
            continue
        default = item.get("default", "")
        if default != "" and (not isinstance(default, SURVEY_TYPES[qtype]) or isinstance(default, bool)):
            errors.append(f"{where}: default {default!r} is not a {qtype}")
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append(f"{where}: {key} must be an integer or null")
        if qtype in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not choices:
                errors.append(f"{where}: {qtype} needs choices")
                continue
            defaults = default.splitlines() if isinstance(default, str) else default
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"{where}: multiplechoice takes one default")
            if any(d not in choices for d in defaults):
                errors.append(f"{where}: default {default!r} is not among the choices")
    return errors


def survey_answer_errors(item, value):
    """AWX's check of one answer (SurveyJobTemplateMixin._survey_element_validation)."""
    qtype, var = item["type"], item["variable"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{var}: {value!r} is not text"]
        if item.get("min") is not None and len(value) < item["min"]:
            return [f"{var}: shorter than {item['min']}"]
        if item.get("max") is not None and len(value) > item["max"]:
            return [f"{var}: longer than {item['max']}"]
    elif qtype in ("integer", "float"):
        if isinstance(value, bool) or not isinstance(value, SURVEY_TYPES[qtype]):
            return [f"{var}: {value!r} is not a {qtype}"]
        if item.get("min") is not None and value < item["min"]:
            return [f"{var}: below {item['min']}"]
        if item.get("max") is not None and value > item["max"]:
            return [f"{var}: above {item['max']}"]
    else:
        choices = item["choices"]
        if isinstance(choices, str):
            choices = choices.splitlines()
        values = value if qtype == "multiselect" else [value]
        if qtype == "multiselect" and not isinstance(value, list):
            return [f"{var}: multiselect answers are lists"]
        if any(v not in choices for v in values):
            return [f"{var}: {value!r} is not among {choices}"]
    return []


def survey_extra_vars(survey, answers):
    """The extra vars AWX gives the playbook for these survey answers: every answer (checked), and
    the default of each unanswered question whose default passes the same check; a required
    question left unanswered without a default is refused."""
    items = {item["variable"]: item for item in survey["spec"]}
    unknown = set(answers) - set(items)
    assert not unknown, f"no survey question for {sorted(unknown)}"
    extra_vars = {}
    for var, item in items.items():
        if var in answers:
            errors = survey_answer_errors(item, answers[var])
            assert not errors, errors
            extra_vars[var] = answers[var]
        elif item.get("default") is not None and not survey_answer_errors(item, item["default"]):
            extra_vars[var] = item["default"]
        else:
            assert not item["required"], f"{var}: required and not answered"
    return extra_vars
