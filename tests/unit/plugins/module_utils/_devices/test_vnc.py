# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vnc device kind: argv (TCP, unix socket, the password's secret object), the cfg round trip, the refusals
(each naming the parameter, never showing the password), and the password file vm_config writes."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._argspec import redacted
from ansible_collections.qemu_init.qemu.plugins.module_utils._artifacts import remove_state
from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgFile
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import vnc
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.context import DeviceContext
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import build_argv
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import ports_info
from ansible_collections.qemu_init.qemu.plugins.module_utils._vmspec import from_cfg, from_params
from ansible_collections.qemu_init.qemu.tests.unit.plugins.vm_helpers import run_vm_config

RUN = RunPaths("/run/qemu-init", "web1")
STATE = StatePaths("/var/lib/qemu-init", "web1")
SECRET = "s3cr,t!x"  # a comma too: it must never reach an option list


def spec_of(**params):
    return from_params(dict(dict(name="web1"), **params), check_files=False)


def argv_of(spec, slot=2):
    return build_argv(spec, "qemu", RUN, ports_info(30320, slot), "web1", "tcg", state_paths=STATE)


def round_trip(spec):
    text = spec.render_onto(None)
    assert from_cfg(CfgFile.parse(text, "x"), "x") == spec
    return text


def test_off_is_no_display_at_all():
    argv = argv_of(spec_of())
    assert "-display" in argv and argv[argv.index("-display") + 1] == "none"
    assert "-vnc" not in argv and "-object" not in argv


@pytest.mark.parametrize("listen, shown", [(None, "127.0.0.1:2"), ("::1", "[::1]:2"), ("0.0.0.0", "0.0.0.0:2")])
def test_tcp_display_is_the_slot(listen, shown):
    argv = argv_of(spec_of(vnc=True, vnc_listen=listen))
    assert argv[argv.index("-vnc") + 1] == shown
    assert "-display" not in argv


def test_unix_socket_is_in_the_run_dir_and_takes_no_port():
    spec = spec_of(vnc=True, vnc_listen="unix")
    argv = argv_of(spec)
    assert argv[argv.index("-vnc") + 1] == "unix:/run/qemu-init/web1/vnc.sock"
    assert not vnc.listens_tcp(spec) and vnc.socket_path(spec, RUN) == RUN.vnc
    assert vnc.socket_path(spec_of(vnc=True), RUN) is None and vnc.socket_path(spec_of(vnc_listen="unix"), RUN) is None
    assert 'VNC_LISTEN="unix"' in round_trip(spec)


def test_unix_socket_path_with_a_comma_is_escaped():
    run = RunPaths("/run/a,b", "web1")
    argv = vnc.argv(DeviceContext(spec_of(vnc=True, vnc_listen="unix"), run, STATE, "web1"), ports_info(30320, 0))
    assert argv == ["-vnc", "unix:/run/a,,b/web1/vnc.sock"]


@pytest.mark.parametrize("listen", [None, "unix"])
def test_password_is_a_secret_object_reading_the_state_dir_file(listen):
    spec = spec_of(vnc=True, vnc_listen=listen, vnc_password_id="0123abcd")
    argv = argv_of(spec)
    obj = argv[argv.index("-object") + 1]
    assert obj == "secret,id=vncpass-0123abcd,file=/var/lib/qemu-init/web1/vnc-password,format=raw"
    assert argv[argv.index("-vnc") + 1].endswith(",password-secret=vncpass-0123abcd")
    assert argv.index("-object") < argv.index("-vnc")  # the object exists before the display looks it up
    text = round_trip(spec)
    assert 'VNC_PASSWORD_ID="0123abcd"' in text


def test_a_new_password_id_changes_the_argv():
    """restart_required compares argv: a new password (a new id) must show there, the password itself never."""
    one, two = vnc.new_password_id(), vnc.new_password_id()
    assert one != two and len(one) == 16
    assert argv_of(spec_of(vnc=True, vnc_password_id=one)) != argv_of(spec_of(vnc=True, vnc_password_id=two))


@pytest.mark.parametrize("params, field, problem", [
    (dict(vnc=True, vnc_listen="localhost"), "vnc_listen", "not an IP address or unix"),
    (dict(vnc=True, vnc_listen="/run/x.sock"), "vnc_listen", "not an IP address or unix"),
    (dict(vnc=True, vnc_password_id="a,b"), "vnc_password_id", "not an id"),
    (dict(vnc=False, vnc_password_id="abc"), "vnc_password_id", "needs VNC on"),
])
def test_refusals_name_the_field(params, field, problem):
    with pytest.raises(ParameterError) as exc:
        spec_of(**params)
    assert exc.value.param == field and problem in exc.value.problem


def test_a_hand_written_cfg_is_held_to_the_same_rules():
    with pytest.raises(ParameterError) as exc:
        from_cfg(CfgFile.parse('NAME="web1"\nVNC_PASSWORD_ID="abc"\n', "web1-qemu.cfg"), "web1-qemu.cfg")
    assert exc.value.param == "web1-qemu.cfg: VNC_PASSWORD_ID"


@pytest.mark.parametrize("password, vnc_on, problem", [
    ("123456789", True, "9 characters long; VNC authentication (DES) uses at most 8"),
    ("", True, "must not be empty"),
    ("pässwd", True, "printable ASCII"),
    ("tab\there", True, "printable ASCII"),
    ("fine", False, "needs vnc: true"),
])
def test_password_refusals_name_vnc_password_and_never_show_it(password, vnc_on, problem):
    with pytest.raises(ParameterError) as exc:
        vnc.check_password(password, vnc_on)
    assert exc.value.param == "vnc_password" and problem in exc.value.problem
    assert not password or password not in str(exc.value)


def test_eight_printable_characters_are_fine():
    vnc.check_password("Ab1 ~!,.", True)


def test_launch_needs_the_password_file(tmp_path):
    state = StatePaths(str(tmp_path), "web1")
    ctx = DeviceContext(spec_of(vnc=True, vnc_password_id="abc"), RUN, state, "web1")
    with pytest.raises(QemuInitError, match="VNC password file .*vnc-password is missing; run qemu_init.qemu.vm_config"):
        vnc.prepare(ctx)
    os.makedirs(state.dir)
    os.mkdir(state.vnc_password)
    with pytest.raises(QemuInitError, match="cannot read the VNC password file of VM web1: .*not a file"):
        vnc.prepare(ctx)
    os.rmdir(state.vnc_password)
    with open(state.vnc_password, "w") as handle:
        handle.write("pw")
    vnc.prepare(ctx)
    vnc.prepare(DeviceContext(spec_of(vnc=True), RUN, state, "web1"))  # no password: nothing to check


def test_the_password_of_vms_items_is_redacted_in_the_invocation():
    params = redacted(dict(vms=[dict(name="a", vnc_password=SECRET), dict(name="b")], vnc_password=SECRET))
    assert SECRET not in repr(params)
    assert params["vms"][0]["vnc_password"] == params["vnc_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert params["vms"][1].get("vnc_password") is None


def test_absent_removes_the_password_file_without_remove_disks(tmp_path):
    state = StatePaths(str(tmp_path), "web1")
    os.makedirs(state.dir)
    for path in (state.vnc_password, os.path.join(state.dir, "root.qcow2")):
        with open(path, "w") as handle:
            handle.write("x")
    removed = remove_state(state, remove_disks=False)
    assert removed == [state.vnc_password]
    assert os.listdir(state.dir) == ["root.qcow2"]


# --- through vm_config's main() --------------------------------------------------------------------------------

@pytest.fixture
def dirs(tmp_path):
    return dict(config_dir=str(tmp_path / "etc"), run_dir=str(tmp_path / "run"), state_dir=str(tmp_path / "state"))


def _never_shows(secret, *things):
    for thing in things:
        assert secret not in json.dumps(thing)


def test_vm_config_writes_the_password_to_the_state_dir_only(dirs):
    args = dict(dirs, name="web1", vnc=True, vnc_password=SECRET)
    check, failed, _calls = run_vm_config(args, check_mode=True, diff=True)
    assert not failed and check["changed"] and not os.path.exists(dirs["state_dir"])
    first, failed, _calls = run_vm_config(args, diff=True)
    assert not failed and first["changed"]
    path = os.path.join(dirs["state_dir"], "web1", "vnc-password")
    with open(path, "rb") as handle:
        assert handle.read() == SECRET.encode()  # no newline: QEMU's raw secret is every byte of the file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(first["path"]) as handle:
        cfg_text = handle.read()
    password_id = first["cfg"]["VNC_PASSWORD_ID"]
    assert 'VNC_PASSWORD_ID="%s"' % password_id in cfg_text
    assert any(d["after_header"] == path and d["after"] == "VNC password (new, not shown)\n" for d in first["diff"])
    _never_shows(SECRET, check, first, cfg_text)
    assert first["vnc_socket"] is None

    again, failed, _calls = run_vm_config(args, diff=True)
    assert not failed and not again["changed"] and again["cfg"]["VNC_PASSWORD_ID"] == password_id

    changed, failed, _calls = run_vm_config(dict(args, vnc_password="other"), diff=True)
    assert not failed and changed["changed"]
    assert changed["cfg"]["VNC_PASSWORD_ID"] != password_id  # the argv changes with it: restart_required
    assert any(d["before"] == "VNC password (set, not shown)\n" and d["after"] == "VNC password (changed, not shown)\n"
               for d in changed["diff"])
    _never_shows("other", changed)

    dropped, failed, _calls = run_vm_config(dict(args, vnc_password=None), diff=True)
    assert not failed and dropped["changed"] and "VNC_PASSWORD_ID" not in dropped["cfg"]
    assert not os.path.exists(path)
    still, failed, _calls = run_vm_config(dict(args, vnc_password=None))
    assert not failed and not still["changed"]


def test_a_password_file_left_behind_goes_even_when_the_cfg_does_not_change(dirs):
    args = dict(dirs, name="web1", vnc=True)
    first, failed, _calls = run_vm_config(args)
    assert not failed
    path = os.path.join(dirs["state_dir"], "web1", "vnc-password")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("stale")
    cleaned, failed, _calls = run_vm_config(args)
    assert not failed and cleaned["changed"] and not os.path.exists(path)


def test_vm_config_refuses_a_long_password_before_writing(dirs):
    result, failed, _calls = run_vm_config(dict(dirs, name="web1", vnc=True, vnc_password="123456789"))
    assert failed and "vnc_password" in result["msg"] and "at most 8" in result["msg"]
    assert "123456789" not in json.dumps(result)
    assert not os.path.exists(dirs["config_dir"]) and not os.path.exists(dirs["state_dir"])


def test_vm_config_reports_the_unix_socket(dirs):
    result, failed, _calls = run_vm_config(dict(dirs, name="web1", vnc=True, vnc_listen="unix"))
    assert not failed and result["vnc_socket"] == os.path.join(dirs["run_dir"], "web1", "vnc.sock")
