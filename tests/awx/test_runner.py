# Copyright: (c) 2026, qemu_init.qemu maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job-template playbooks run the way AWX runs a job: ansible-runner with a private data dir
(env/extravars, env/envvars, env/settings, an inventory script in inventory/hosts, project/ with
the playbook), the collection installed from its artifact as in the execution environment.

Two real guests (the project's test guest, docs/test-guest.md) on a bridge inside a network
namespace the test creates and deletes; cfg files, registry and run dirs in a temp dir. Checked
from the job's side (status, rc, job_events: playbook_on_stats counts, runner_on_ok results,
set_stats artifacts) and from outside it (pids, /proc, QMP, serial console markers, the guests'
pings). Needs root (network namespace, bridge, taps).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, COLL, load_survey, run, survey_extra_vars, tool

NAMES = ("awx-a", "awx-b")
ADDRS = {"awx-a": "10.201.13.1", "awx-b": "10.201.13.2"}
NIC_MODELS = {"awx-a": "e1000", "awx-b": "virtio-net-pci"}
BRIDGE = "awx-br0"
EVENTS_SEEN = []  # the trimmed listing printed at the end (tools/test.sh shows it)
JOB_IDS = iter(range(1, 100))


class Lab:
    """Where the guests live: a netns, temp config/run dirs, the guest's kernel and initrd."""

    def __init__(self, root, netns, collections, kernel, initrd):
        self.root = root
        self.netns = netns
        self.collections = collections
        self.kernel = kernel
        self.initrd = initrd
        self.config_dir = root / "etc"
        self.run_dir = root / "run"

    def specs(self):
        specs = []
        for name in NAMES:
            peer = ADDRS[NAMES[1 - NAMES.index(name)]]
            specs.append({
                "name": name, "netns": self.netns, "bridge": BRIDGE, "memory": 128, "accel": "tcg",
                "kernel": str(self.kernel), "initrd": str(self.initrd),
                "append": f"console=ttyS0 panic=-1 quiet qi.name={name} qi.ip={ADDRS[name]}/24 "
                          f"qi.ping={peer} qi.pingtries=60",
                "nics": [{"model": NIC_MODELS[name]}],
            })
        return specs

    def dirs(self):
        return {"vm_config_dir": str(self.config_dir), "vm_run_dir": str(self.run_dir)}

    def pid(self, name):
        pidfile = self.run_dir / name / "qemu.pid"
        return int(pidfile.read_text().strip()) if pidfile.exists() else None

    def serial(self, name):
        log = self.run_dir / name / "serial.log"
        return log.read_text(errors="replace").replace("\r", "") if log.exists() else ""

    def is_our_qemu(self, pid):
        """pid is a live (not zombie) QEMU started with one of our run dir's pidfiles."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return False
        state = stat.rsplit(")", 1)[1].split()[0]
        return (state != "Z" and os.path.basename(exe).startswith("qemu-system-")
                and any(arg.startswith(str(self.run_dir).encode()) for arg in cmdline))


def qmp(path, *commands, timeout=10):
    """Run QMP commands on a VM's socket, as an outside client; returns their results."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        stream = sock.makefile("rwb")
        assert "QMP" in json.loads(stream.readline())
        results = []
        for command in ("qmp_capabilities",) + commands:
            stream.write(json.dumps({"execute": command}).encode() + b"\n")
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if "event" not in reply:
                    break
            assert "return" in reply, reply
            results.append(reply["return"])
        return results[1:]


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


INVENTORY_SCRIPT = """#!{python}
# An inventory script, as AWX writes one into the private data dir: localhost in the group vmhosts,
# with the host vars of AWX's Demo Inventory localhost.
import json
import sys

HOSTVARS = {{"ansible_connection": "local", "ansible_python_interpreter": "{{{{ ansible_playbook_python }}}}"}}
if "--host" in sys.argv:
    print(json.dumps(HOSTVARS))
else:
    print(json.dumps({{"all": {{"children": ["vmhosts", "ungrouped"]}}, "vmhosts": {{"hosts": ["localhost"]}},
                      "_meta": {{"hostvars": {{"localhost": HOSTVARS}}}}}}))
"""


class Job:
    """One AWX-style job: a fresh private data dir, `ansible-runner run DIR -p PLAYBOOK`."""

    def __init__(self, lab, ident, playbook, extra_vars):
        self.ident = ident
        pdd = lab.root / "jobs" / ident
        for sub in ("env", "inventory", "project"):
            (pdd / sub).mkdir(parents=True)
        awx_vars = {"awx_job_id": next(JOB_IDS), "awx_job_template_name": f"QEMU VMs: {playbook}",
                    "awx_user_name": "admin"}
        (pdd / "env" / "extravars").write_text(json.dumps(dict(awx_vars, **extra_vars), indent=1))
        (pdd / "env" / "envvars").write_text(json.dumps({
            "ANSIBLE_COLLECTIONS_PATH": str(lab.collections),
            "ANSIBLE_HOME": str(pdd / "ansible-home"),
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "AWX_PRIVATE_DATA_DIR": str(pdd),
            "JOB_ID": str(awx_vars["awx_job_id"]),
        }))
        (pdd / "env" / "settings").write_text(json.dumps({"job_timeout": 600, "pexpect_timeout": 5}))
        inventory = pdd / "inventory" / "hosts"
        inventory.write_text(INVENTORY_SCRIPT.format(python=sys.executable))
        inventory.chmod(0o700)
        # The project: a playbook of the project importing the collection's (AWX projects are
        # git repositories; this is what one using the collection from the EE contains).
        (pdd / "project" / f"{playbook}.yml").write_text(
            f"---\n- name: Run qemu_init.qemu.{playbook}\n  ansible.builtin.import_playbook: qemu_init.qemu.{playbook}\n")
        started = time.monotonic()
        # ansible-runner finds ansible-playbook on PATH (in the EE: the image's)
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        proc = subprocess.run([tool("ansible-runner"), "run", str(pdd), "-p", f"{playbook}.yml", "--ident", ident],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
        self.seconds = time.monotonic() - started
        self.output = proc.stdout
        artifacts = pdd / "artifacts" / ident
        assert (artifacts / "rc").is_file(), f"ansible-runner exited {proc.returncode}:\n{proc.stdout[-8000:]}"
        self.rc = int((artifacts / "rc").read_text())
        self.status = (artifacts / "status").read_text().strip()
        self.events = sorted((json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")),
                             key=lambda e: e["counter"])
        for event in self.events:
            data = event.get("event_data", {})
            if event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
                EVENTS_SEEN.append(f"{ident:8} {event['event']:17} {data.get('resolved_action', ''):28} "
                                   f"changed={data.get('res', {}).get('changed', False)!s:5} {data.get('task')}")
            if event["event"] == "runner_on_ok" and data.get("resolved_action") == "qemu_init.qemu.vms":
                EVENTS_SEEN.extend(f"{'':8}   vm {vm['name']}: actions={vm['actions']} changed={vm['changed']}"
                                   f" cfg_changed={vm['cfg_changed']} running={vm['running']} pid={vm['pid']}"
                                   for vm in data["res"].get("vms", []))
            if event["event"] == "runner_on_ok" and data.get("resolved_action") == "ansible.builtin.debug":
                msg = data["res"].get("msg")
                EVENTS_SEEN.extend(f"{'':8}   | {line}" for line in (msg if isinstance(msg, list) else [msg]))
        EVENTS_SEEN.append(f"{ident:8} playbook_on_stats ok={self.stats['ok']} changed={self.stats['changed']} "
                           f"failures={self.stats['failures']} ({self.seconds:.1f} s)")

    def assert_successful(self):
        assert (self.status, self.rc) == ("successful", 0), f"{self.ident}: {self.status} rc={self.rc}\n{self.output[-8000:]}"
        assert self.stats["failures"] == {} and self.stats["dark"] == {}, self.stats

    @property
    def stats(self):
        stats = [e["event_data"] for e in self.events if e["event"] == "playbook_on_stats"]
        assert len(stats) == 1, f"{self.ident}: {len(stats)} playbook_on_stats events"
        return stats[0]

    def results(self, action):
        """res of every runner_on_ok event of a module (FQCN)."""
        return [e["event_data"]["res"] for e in self.events
                if e["event"] == "runner_on_ok" and e["event_data"].get("resolved_action") == action]

    def module_events(self):
        """(event, FQCN) of every task event of the collection's modules, in order: the module calls the job made
        (task-level events only; a looped task would add runner_item_* events, listed too)."""
        return [(e["event"], e["event_data"]["resolved_action"]) for e in self.events
                if e["event"].startswith("runner_") and e["event"] != "runner_on_start"
                and e["event_data"].get("resolved_action", "").startswith("qemu_init.qemu.")]

    def check_counts(self, changed):
        """playbook_on_stats agrees with the per-task events, and `changed` tasks changed."""
        oks = [e for e in self.events if e["event"] == "runner_on_ok" and e["event_data"]["host"] == "localhost"]
        assert self.stats["ok"] == {"localhost": len(oks)}, self.stats
        assert self.stats["changed"].get("localhost", 0) == changed, (self.stats, [
            e["event_data"]["task"] for e in oks if e["event_data"]["res"].get("changed")])
        assert sum(1 for e in oks if e["event_data"]["res"].get("changed")) == changed

    def artifact(self, key):
        return self.stats["artifact_data"][key]["localhost"]


@pytest.fixture(scope="module")
def lab(installed_collections):
    assert os.geteuid() == 0, "needs root: network namespace, bridge and taps"
    repo = Path(os.environ.get("QI_REPO") or COLL)
    guest_dir = Path(os.environ.get("QI_GUEST_DIR") or repo / ".cache" / "guest")
    run(["bash", repo / "tools" / "build-guest.sh", guest_dir], timeout=900)
    manifest = dict(line.split("=", 1) for line in (guest_dir / "manifest").read_text().splitlines() if "=" in line)
    kernel = guest_dir / ("vmlinux" if manifest.get("pvh_vmlinux") == "yes" else "vmlinuz")
    root = Path(tempfile.mkdtemp(prefix="qi-awx-"))
    netns = f"qi-awx-{os.getpid()}"
    run(["ip", "netns", "add", netns])
    the_lab = Lab(root, netns, installed_collections, kernel, guest_dir / "initrd.img")
    try:
        yield the_lab
    finally:
        # Only what a failed test left: our own QEMUs, by the pid in their pidfile.
        for name in NAMES:
            pid = the_lab.pid(name)
            if pid and the_lab.is_our_qemu(pid):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(root, ignore_errors=True)
        print("\nevents checked (job, event, module, changed, task):\n" + "\n".join(EVENTS_SEEN))


ROW_KEYS = {"name", "state", "cfg_changed", "changed", "running", "pid", "stop_method", "action", "restart_required"}


def test_up_boots_two_guests_that_ping_each_other(lab):
    job = Job(lab, "up-1", "vms_up", dict(lab.dirs(), target_hosts="vmhosts", vm_specs=lab.specs()))
    job.assert_successful()
    # the role is one qemu_init.qemu.vms call: it wrote both cfg files and started both VMs
    job.check_counts(changed=1)
    assert job.module_events() == [("runner_on_ok", "qemu_init.qemu.vms")]
    (fleet,) = job.results("qemu_init.qemu.vms")
    assert fleet["changed"]
    assert [(vm["name"], vm["state"], vm["cfg_changed"], vm["actions"], vm["changed"], vm["running"], vm["cfg_exists"])
            for vm in fleet["vms"]] == [(n, "started", True, ["start"], True, True, True) for n in NAMES]
    assert [(vm["stop_method"], vm["restart_required"]) for vm in fleet["vms"]] == [(None, False)] * len(NAMES)
    rows = job.artifact("qemu_vms_up")
    assert all(set(r) == ROW_KEYS for r in rows), rows
    assert [(r["name"], r["state"], r["action"], r["running"], r["cfg_changed"], r["changed"], r["stop_method"],
             r["restart_required"]) for r in rows] == [(n, "started", "started", True, True, True, None, False) for n in NAMES]
    assert [r["pid"] for r in rows] == [vm["pid"] for vm in fleet["vms"]]

    macs = {vm["name"]: vm["nics"][0]["mac"] for vm in fleet["vms"]}
    assert all(vm["macs"] == [macs[vm["name"]]] for vm in fleet["vms"])
    for vm in fleet["vms"]:
        name, pid = vm["name"], vm["pid"]
        assert lab.pid(name) == pid and lab.is_our_qemu(pid), name
        qmp_name, qmp_status = qmp(lab.run_dir / name / "qmp.sock", "query-name", "query-status")
        assert (qmp_name, qmp_status["status"]) == ({"name": name}, "running"), name
    for name in NAMES:
        peer = ADDRS[NAMES[1 - NAMES.index(name)]]
        wait_for(f"{name}: QI-PING-OK", lambda n=name, p=peer: f"QI-PING-OK {p}" in lab.serial(n)
                 or "QI-PING-FAIL" in lab.serial(n), timeout=180)
        log = lab.serial(name)
        assert f"QI-PING-OK {peer}" in log, log
        # the guest sees the MAC the module derived, on the NIC model asked for
        assert f"QI-NIC {name} eth0 {macs[name].lower()} " in log, log


def test_up_again_changes_nothing(lab):
    # This time the way a survey launch gives the vars: vm_specs as YAML text, booleans as text,
    # target_hosts left at the survey's default (localhost).
    pids = {name: lab.pid(name) for name in NAMES}
    answers = dict(lab.dirs(), vm_specs=yaml.safe_dump(lab.specs(), sort_keys=False))
    job = Job(lab, "up-2", "vms_up", survey_extra_vars(load_survey("vms_up"), answers))
    job.assert_successful()
    job.check_counts(changed=0)
    # one module call for the run, which found both running with the same pids and did nothing
    assert job.module_events() == [("runner_on_ok", "qemu_init.qemu.vms")]
    (fleet,) = job.results("qemu_init.qemu.vms")
    assert not fleet["changed"]
    assert {vm["name"]: (vm["running"], vm["pid"], vm["restart_required"], vm["actions"], vm["cfg_changed"], vm["changed"])
            for vm in fleet["vms"]} == {name: (True, pid, False, [], False, False) for name, pid in pids.items()}
    rows = job.artifact("qemu_vms_up")
    assert {r["name"]: (r["running"], r["pid"], r["changed"], r["cfg_changed"], r["action"]) for r in rows} == {
        name: (True, pid, False, False, "") for name, pid in pids.items()}
    assert all(lab.is_our_qemu(pid) for pid in pids.values())


def test_report_lists_both_running(lab):
    job = Job(lab, "report", "vms_report", survey_extra_vars(load_survey("vms_report"), lab.dirs()))
    job.assert_successful()
    job.check_counts(changed=0)
    assert job.module_events() == [("runner_on_ok", "qemu_init.qemu.vm_info")]
    (info,) = job.results("qemu_init.qemu.vm_info")
    assert sorted(vm["name"] for vm in info["vms"]) == sorted(NAMES)
    rows = {row["name"]: row for row in job.artifact("qemu_vms_report")}
    assert sorted(rows) == sorted(NAMES)
    for name, row in rows.items():
        assert (row["running"], row["status"], row["pid"], row["netns"]) == (True, "running", lab.pid(name), lab.netns)
        assert f"QI-NIC {name} eth0 {row['macs'][0].lower()} " in lab.serial(name)
    (shown,) = [e["event_data"]["res"]["msg"] for e in job.events
                if e["event"] == "runner_on_ok" and e["event_data"]["task"] == "Show the VMs"]
    assert sorted(line.split(":")[0] for line in shown) == sorted(NAMES)
    assert all(f"running, pid {lab.pid(line.split(':')[0])}, QMP running" in line for line in shown), shown


def test_down_powers_both_off_through_acpi(lab):
    pids = {name: lab.pid(name) for name in NAMES}
    answers = dict(lab.dirs(), vm_names=", ".join(NAMES), vm_shutdown_timeout=60)
    extra_vars = survey_extra_vars(load_survey("vms_down"), answers)
    assert (extra_vars["vm_force"], extra_vars["vm_down_state"]) == ("false", "stopped")
    job = Job(lab, "down", "vms_down", extra_vars)
    job.assert_successful()
    job.check_counts(changed=1)
    # named VMs: no registry listing, one vm call stopping both
    assert job.module_events() == [("runner_on_skipped", "qemu_init.qemu.vm_info"), ("runner_on_ok", "qemu_init.qemu.vm")]
    (stopped,) = job.results("qemu_init.qemu.vm")
    assert [(vm["name"], vm["running"], vm["stop_method"]) for vm in stopped["vms"]] == [
        (n, False, "acpi") for n in NAMES]
    assert [(r["name"], r["stop_method"]) for r in job.artifact("qemu_vms_down")] == [(n, "acpi") for n in NAMES]
    for name, pid in pids.items():
        wait_for(f"{name}'s QEMU (pid {pid}) to exit", lambda p=pid: not lab.is_our_qemu(p), timeout=30)
        # the guest ran its power-button handler: a graceful poweroff, not a kill
        assert f"QI-POWEROFF {name}" in lab.serial(name)
        assert (lab.config_dir / "vms" / f"{name}-qemu.cfg").is_file()


def test_down_absent_removes_everything(lab):
    # vm_specs (a real list, as job template extra vars or the API give it) names the VMs.
    job = Job(lab, "absent", "vms_down", dict(lab.dirs(), vm_specs=lab.specs(), vm_down_state="absent",
                                              vm_force=True, vm_shutdown_timeout=30))
    job.assert_successful()
    job.check_counts(changed=1)
    assert job.module_events() == [("runner_on_skipped", "qemu_init.qemu.vm_info"), ("runner_on_ok", "qemu_init.qemu.vm")]
    (removed,) = job.results("qemu_init.qemu.vm")
    assert [(vm["name"], vm["changed"], vm["stop_method"]) for vm in removed["vms"]] == [(n, True, "none") for n in NAMES]
    links = json.loads(run(["ip", "-n", lab.netns, "-json", "link", "show"]))
    assert sorted(link["ifname"] for link in links) == sorted(["lo", BRIDGE]), links
    for name in NAMES:
        assert not (lab.config_dir / "vms" / f"{name}-qemu.cfg").exists()
        assert not (lab.run_dir / name).exists()
