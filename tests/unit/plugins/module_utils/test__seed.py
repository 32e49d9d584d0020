# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The NoCloud seed: its YAML read back by PyYAML's SafeLoader (what cloud-init uses), its files, its image, its writes.

Timing of seed creation (the figure in _seed's docstring), from the directory holding ansible_collections/:
    python -m timeit -n 1000 -s 'from ansible_collections.qemu_init.qemu.tests.unit.plugins.module_utils.test__seed \
import TYPICAL; from ansible_collections.qemu_init.qemu.plugins.module_utils._seed import build_seed' \
'build_seed(TYPICAL, "web1")'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._fat import fat12_image
from ansible_collections.qemu_init.qemu.plugins.module_utils._seed import (
    build_seed,
    describe_seed,
    seed_changed,
    seed_files,
    to_yaml,
    write_seed,
)

TYPICAL = {
    "user_data": {
        "users": [{"name": "ops", "groups": ["sudo"], "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                   "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0000000000000000000000000000000000000000000 ops@x"]}],
        "packages": ["nginx", "python3"],
        "write_files": [{"path": "/etc/motd", "content": "hello\n", "permissions": "0644"}],
        "runcmd": [["systemctl", "enable", "--now", "nginx"]],
        "chpasswd": {"expire": False},
    },
    "meta_data": {"dsmode": "local"},
    "network_config": {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}},
}
SECRET = "s3cret-Passw0rd"
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def files(cloud_init, name="web1"):
    return dict(seed_files(cloud_init, name)[0])


def load_cloud_config(data: bytes, loader=yaml.SafeLoader):
    text = data.decode("utf-8")
    assert text.startswith("#cloud-config\n")
    return yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader/CSafeLoader only


# --- YAML ----------------------------------------------------------------------------------------------------
AWKWARD = ["no", "yes", "on", "off", "~", "null", "0755", "1e3", "0x1f", "12:30", "2024-01-01", ".inf", "-", "- x",
           "a: b", "# not a comment", "&anchor", "*alias", "!tag", "|", ">", "'", '"', "\\", "\\n", "{", "[", "?", "%",
           "@", "`", "", " lead", "trail ", "tab\there", "line\nbreak", "cr\rlf\r\n", "nul\x00", "bell\x07", "del\x7f",
           "c1\x85\x9f", "ls\u2028ps\u2029", "bom\ufeff", "nonchar\ufffe\uffff", "snow \u2603", "emoji \U0001F600",
           "<<", "=", "k" * 3000]


@pytest.mark.parametrize("loader", LOADERS)
def test_awkward_strings_round_trip_as_strings(loader):
    value = {"list": AWKWARD, "as_keys": {s: s for s in AWKWARD}, "nested": [[{"a": [None, True, False, 0, -7, 2 ** 70]}]],
             "floats": [1.5, -0.0, 1e-05, 1e16, 3.0e300], "empty": [{}, []]}
    assert yaml.load(to_yaml(value, "p"), Loader=loader) == value  # noqa: S506


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20))
def test_any_value_round_trips(value):
    try:
        expected_ok = True
        text = to_yaml(value, "p")
    except ParameterError as exc:
        # Only lone surrogates (not Unicode) are refused among these.
        assert "surrogate" in exc.msg
        expected_ok = False
    if expected_ok:
        assert yaml.safe_load(text) == value


@pytest.mark.parametrize("value, where, problem", [
    ({1: "a"}, "p", "keys must be strings"),
    ({"a": [{"b": {True: 1}}]}, "p.a[0].b", "keys must be strings"),
    ({"a": {"x", "y"}}, "p.a", "set is not something YAML can hold"),
    ({"a": b"bytes"}, "p.a", "bytes is not"),
    ({"a": float("nan")}, "p.a", "as a string"),
    ({"a": "\ud800"}, "p.a", "surrogate"),
])
def test_yaml_refusals_name_the_place(value, where, problem):
    with pytest.raises(ParameterError, match=problem) as info:
        to_yaml(value, "p")
    assert info.value.param == where


def test_deep_nesting_is_refused_before_recursion_error():
    value: list = []
    for _level in range(200):
        value = [value]
    with pytest.raises(ParameterError, match="nested more than"):
        to_yaml(value, "p")


# --- the files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loader", LOADERS)
def test_dict_user_data_is_cloud_config_and_defaults_fill_meta_data(loader):
    seed = files(TYPICAL)
    assert list(seed) == ["user-data", "meta-data", "network-config"]
    assert load_cloud_config(seed["user-data"], loader) == TYPICAL["user_data"]
    meta = yaml.load(seed["meta-data"], Loader=loader)  # noqa: S506
    assert meta["local-hostname"] == "web1" and meta["dsmode"] == "local"
    assert meta["instance-id"].startswith("iid-qi-")
    assert yaml.load(seed["network-config"], Loader=loader) == TYPICAL["network_config"]  # noqa: S506
    assert not seed["network-config"].startswith(b"#cloud-config")


def test_only_user_data_and_meta_data_are_always_there():
    seed = files({})
    assert list(seed) == ["user-data", "meta-data"]
    assert load_cloud_config(seed["user-data"]) == {}
    seed = files({"vendor_data": {"packages": ["x"]}})
    assert list(seed) == ["user-data", "meta-data", "vendor-data"]
    assert load_cloud_config(seed["vendor-data"]) == {"packages": ["x"]}


@pytest.mark.parametrize("text", ["#cloud-config\nhostname: x\n", "#!/bin/sh\necho hi\n", "Content-Type: multipart/mixed\n"])
def test_string_user_data_is_used_as_is(text):
    assert files({"user_data": text, "vendor_data": text, "network_config": text})["user-data"] == text.encode()
    assert files({"vendor_data": text})["vendor-data"] == text.encode()
    assert files({"network_config": text})["network-config"] == text.encode()


def test_instance_id_follows_every_file_and_the_name():
    base = seed_files(TYPICAL, "web1")[1]
    assert seed_files(dict(TYPICAL), "web1")[1] == base  # deterministic
    assert seed_files(TYPICAL, "web2")[1] != base  # local-hostname differs
    for key, value in [("user_data", {"packages": ["x"]}), ("meta_data", {"dsmode": "net"}), ("network_config", "version: 1\n"),
                       ("vendor_data", "#cloud-config\n{}\n")]:
        assert seed_files(dict(TYPICAL, **{key: value}), "web1")[1] != base, key


def test_given_instance_id_and_hostname_are_kept():
    seed, iid = seed_files({"meta_data": {"instance-id": "i-42", "local-hostname": "other"}}, "web1")
    assert iid == "i-42"
    assert yaml.safe_load(dict(seed)["meta-data"]) == {"instance-id": "i-42", "local-hostname": "other"}


@pytest.mark.parametrize("text, iid, meta", [
    ("dsmode: local", None, {"dsmode": "local", "local-hostname": "web1"}),
    ("dsmode: local\ninstance-id: 'i-7'\n", "i-7", {"dsmode": "local", "instance-id": "i-7", "local-hostname": "web1"}),
    ("local-hostname: h\n", None, {"local-hostname": "h"}),
    ('{"instance-id": "i-8"}', "i-8", {"instance-id": "i-8", "local-hostname": "web1"}),
    ("", None, {"local-hostname": "web1"}),
])
def test_meta_data_as_text_gets_the_missing_defaults(text, iid, meta):
    seed, instance_id = seed_files({"meta_data": text}, "web1")
    loaded = yaml.safe_load(dict(seed)["meta-data"])
    if iid is None:
        assert instance_id.startswith("iid-qi-")
        meta = dict(meta, **{"instance-id": instance_id})
    else:
        assert instance_id == iid
    assert loaded == meta


@pytest.mark.parametrize("cloud_init, param, problem", [
    ({"userdata": {}}, "cloud_init", "unknown key userdata"),
    ({"user_data": 3}, "cloud_init.user_data", "dict or a string, not int"),
    ({"user_data": ["a"]}, "cloud_init.user_data", "dict or a string, not list"),
    ({"meta_data": ["a"]}, "cloud_init.meta_data", "dict or a string, not list"),
    ({"network_config": True}, "cloud_init.network_config", "dict or a string"),
    ({"vendor_data": {"a": {2: 3}}}, "cloud_init.vendor_data.a", "keys must be strings"),
    ({"user_data": "#cloud-config\n\udcff"}, "cloud_init.user_data", "not valid Unicode"),
    ("user_data", "cloud_init", "must be a dict"),
])
def test_refusals_name_the_parameter(cloud_init, param, problem):
    with pytest.raises(ParameterError, match=problem) as info:
        build_seed(cloud_init, "web1")
    assert info.value.param == param


# --- the image and its file ----------------------------------------------------------------------------------
def test_image_is_the_fat12_cidata_volume_of_the_files():
    seed = build_seed(TYPICAL, "web1")
    assert seed.image == fat12_image("cidata", seed.files)
    assert seed.instance_id == seed_files(TYPICAL, "web1")[1]


@pytest.mark.skipif(not shutil.which("mtype"), reason="needs mtools")
def test_image_reads_back_with_mtools(tmp_path):
    seed = build_seed(TYPICAL, "web1")
    path = str(tmp_path / "seed.img")
    write_seed(path, seed)
    for name, content in seed.files:
        assert subprocess.run(["mtype", "-i", path, "::" + name], capture_output=True, check=True).stdout == content


def test_written_once_then_unchanged_then_rewritten_on_change(tmp_path):
    path = str(tmp_path / "seed.img")
    seed = build_seed(TYPICAL, "web1")
    assert seed_changed(path, seed)
    assert write_seed(path, seed) == (True, seed.instance_id)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    inode = os.stat(path).st_ino
    assert not seed_changed(path, seed)
    assert write_seed(path, seed) == (False, seed.instance_id)
    assert os.stat(path).st_ino == inode  # not rewritten
    other = build_seed(dict(TYPICAL, user_data="#cloud-config\n{}\n"), "web1")
    assert write_seed(path, other) == (True, other.instance_id)
    with open(path, "rb") as handle:
        assert handle.read() == other.image
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["seed.img"]  # no temp file left


def test_a_wider_mode_is_fixed_and_counts_as_a_change(tmp_path):
    path = str(tmp_path / "seed.img")
    seed = build_seed(TYPICAL, "web1")
    write_seed(path, seed)
    os.chmod(path, 0o644)
    assert seed_changed(path, seed)
    assert write_seed(path, seed) == (True, seed.instance_id)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_symbolic_link_is_replaced_not_written_through(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    path = tmp_path / "seed.img"
    path.symlink_to(target)
    seed = build_seed(TYPICAL, "web1")
    assert write_seed(str(path), seed)[0]
    assert not path.is_symlink() and path.read_bytes() == seed.image
    assert target.read_bytes() == b"keep"


def test_never_readable_by_others_while_written(tmp_path, monkeypatch):
    """Every file in the directory at the moment of the rename is 0600 (the temp file included)."""
    path = str(tmp_path / "seed.img")
    seen = []
    real_rename = os.rename

    def rename(src, dst):
        seen.extend(stat.S_IMODE(os.stat(os.path.join(str(tmp_path), n)).st_mode) for n in os.listdir(str(tmp_path)))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    write_seed(path, build_seed(TYPICAL, "web1"))
    assert seen == [0o600]


def test_something_else_at_the_path_is_an_error(tmp_path):
    (tmp_path / "seed.img").mkdir()
    with pytest.raises(QemuInitError, match="cloud-init seed of VM web1.*directory"):
        write_seed(str(tmp_path / "seed.img"), build_seed(TYPICAL, "web1"), vm="web1")


def test_description_has_no_content():
    user_data = dict(TYPICAL["user_data"], chpasswd={"users": [{"name": "ops", "password": SECRET, "type": "text"}]})
    seed = build_seed(dict(TYPICAL, user_data=user_data), "web1")
    description = describe_seed(seed)
    assert SECRET not in repr(description)
    assert description["instance_id"] == seed.instance_id and description["label"] == "cidata"
    assert description["sha256"] == hashlib.sha256(seed.image).hexdigest()
    assert [f["name"] for f in description["files"]] == ["user-data", "meta-data", "network-config"]
    assert all(set(f) == {"name", "size", "sha256"} for f in description["files"])
