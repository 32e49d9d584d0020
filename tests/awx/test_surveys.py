# Copyright: (c) 2026, qemu_init.qemu maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job-template playbooks and their surveys (awx/surveys/*.json) fit together, and the
playbooks refuse bad extra vars up front, naming the variable, before anything changes."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import COLL, load_survey, survey_extra_vars, survey_spec_errors, tool

PLAYBOOKS = ("vms_up", "vms_down", "vms_report")


def playbook_interface(name):
    """The extra vars a playbook declares: the argument_spec of its validate_argument_spec task."""
    plays = yaml.safe_load((COLL / "playbooks" / f"{name}.yml").read_text())
    specs = [task["ansible.builtin.validate_argument_spec"]["argument_spec"]
             for play in plays for task in play.get("tasks", [])
             if "ansible.builtin.validate_argument_spec" in task]
    assert len(specs) == 1, f"{name}: expected one validate_argument_spec task"
    return specs[0]


def jinja_names(name):
    """Every identifier used inside {{ }} and {% %} of a playbook, plus hosts: templates."""
    text = (COLL / "playbooks" / f"{name}.yml").read_text()
    names = set()
    for expr in re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, re.S):
        code = re.sub(r"'[^']*'|\"[^\"]*\"", "", " ".join(expr))  # drop string literals
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    return names


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_survey_is_valid_for_awx(name):
    survey = load_survey(name)
    assert survey_spec_errors(survey) == []


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_survey_variables_are_read_by_the_playbook(name):
    survey = load_survey(name)
    interface = playbook_interface(name)
    used = jinja_names(name)
    for item in survey["spec"]:
        var = item["variable"]
        assert var in interface, f"{name}: survey variable {var} is not an extra var of the playbook"
        assert var in used, f"{name}: survey variable {var} is declared but never read"
        spec = interface[var]
        if item["type"] == "integer":
            assert spec["type"] == "int", var
        elif item["type"] == "multiplechoice":
            if spec["type"] == "bool":
                assert sorted(item["choices"]) == ["false", "true"], var
            else:
                assert set(item["choices"]) <= set(spec["choices"]), var
        elif item["type"] in ("text", "textarea"):
            # text answers: the playbooks split lists out of text and parse YAML themselves
            assert spec["type"] in ("str", "path", "list"), var
    # and every declared extra var is read, so the interface holds no dead names
    for var in interface:
        assert var in used, f"{name}: extra var {var} is declared but never read"


def test_survey_defaults_give_working_extra_vars():
    """AWX passes the defaults of unanswered questions; they must be what the playbooks expect."""
    up = survey_extra_vars(load_survey("vms_up"), {"vm_specs": "- name: x\n"})
    assert up == {"target_hosts": "localhost", "vm_specs": "- name: x\n", "vm_default_state": "started",
                  "vm_restart_on_change": "false", "vm_shutdown_timeout": 120, "vm_force": "false",
                  "vm_config_dir": "/etc/qemu", "vm_run_dir": "/run/qemu-init"}
    report = survey_extra_vars(load_survey("vms_report"), {})
    assert report["vm_names"] == "all"
    with pytest.raises(AssertionError, match="vm_names: required"):
        survey_extra_vars(load_survey("vms_down"), {})


# (playbook, extra vars, the variable refused, what the message says about it). The variable's name
# must be in the failed task's own message: the play's output as a whole names every variable (the
# argument spec is printed with the failure), so finding a name anywhere in it proves nothing.
BAD_EXTRA_VARS = [
    ("vms_up", {"vm_specs": "- name: a\n  memory: [unclosed"}, "vm_specs", "vm_specs is neither a list nor YAML/JSON text"),
    ("vms_up", {"vm_specs": [{"name": "a"}], "vm_default_state": "running"}, "vm_default_state", "vm_default_state must be one of"),
    ("vms_up", {"vm_specs": [{"name": "a"}, {"name": "a"}]}, "vm_specs", "vm_specs names a VM twice: a"),
    ("vms_up", {"vm_specs": [{"name": "a"}, {"memory": 64}]}, "vm_specs", "every vm_specs item needs a name; item 1 has none"),
    ("vms_up", {"vm_specs": []}, "vm_specs", "vm_specs is empty"),
    ("vms_up", {"vm_specs": [{"name": "a"}], "vm_shutdown_timeout": "soon"}, "vm_shutdown_timeout", "soon"),
    ("vms_up", {"vm_specs": [{"name": "a"}], "vm_shutdown_timeout": -5}, "vm_shutdown_timeout",
     "vm_shutdown_timeout must be a positive number of seconds, got -5"),
    pytest.param("vms_up", {"vm_specs": [{"name": "a", "memroy": 64}]}, "vm_specs", "memroy", marks=pytest.mark.xfail(
        strict=True, reason="the vms role refuses it naming its own variable (qemu_vms.memroy), not the survey's vm_specs")),
    ("vms_down", {"vm_names": " , "}, "vm_names", "vm_names names no VM"),
    ("vms_down", {"vm_names": "a", "vm_force": "maybe"}, "vm_force", "maybe"),
    ("vms_down", {"vm_names": "a", "vm_down_state": "gone"}, "vm_down_state", "vm_down_state must be one of: stopped, absent"),
]


def failed_task_messages(stdout):
    """The msg of every failed task result in ansible-playbook's output (default callback, JSON results,
    on one line or indented over several)."""
    decoder = json.JSONDecoder()
    return [str(decoder.raw_decode(stdout, match.end())[0].get("msg", ""))
            for match in re.finditer(r"^fatal: \[[^\]]*\]: FAILED! => ", stdout, re.M)]


@pytest.mark.parametrize("playbook, extra_vars, variable, message", BAD_EXTRA_VARS,
                         ids=[f"{case[0]}-{case[2]}-{case[3].split()[0]}" for case in
                              (c.values if hasattr(c, "values") else c for c in BAD_EXTRA_VARS)])
def test_bad_extra_vars_fail_early(tmp_path, installed_collections, playbook, extra_vars, variable, message):
    """Each bad value fails the play with a message naming its variable, and nothing is written."""
    config_dir = tmp_path / "etc"
    extra_vars = dict(extra_vars, vm_config_dir=str(config_dir), vm_run_dir=str(tmp_path / "run"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed_collections), ANSIBLE_HOME=str(tmp_path / "ah"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run([tool("ansible-playbook"), f"qemu_init.qemu.{playbook}", "-e", json.dumps(extra_vars)],
                          env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout
    messages = failed_task_messages(proc.stdout)
    assert messages, proc.stdout
    msg = messages[-1]  # the failure that ended the play (an earlier one may have been rescued)
    print(f"\n{playbook} {variable}: {msg}")
    assert message in msg, msg
    assert re.search(r"(?<![\w])%s(?![\w])" % re.escape(variable), msg), f"{variable} is not named: {msg}"
    assert not config_dir.exists()
