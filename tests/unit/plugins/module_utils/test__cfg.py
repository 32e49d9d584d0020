# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._cfg import CfgError, CfgFile, numbered, quote

HAND_WRITTEN = """\
# web server, written by hand the qemu-init way
NAME="web1"
OS='debian'

DSK1="/var/lib/qemu/web1.img"   # the root disk
DSK2=/var/lib/qemu/web1-data.img
CDR1="/srv/iso/debian 12.iso"
NIC1="virtio-net-pci"
NIC2="e1000"
# from the wiki page, with its typographic quotes
BRIDGE_IFNAME=\u201cbr1\u201d
  MY_OWN_KEY="keep me"
export OTHER=x
EMPTY=
"""


def test_hand_written_file_loads():
    cfg = CfgFile.parse(HAND_WRITTEN, "web1-qemu.cfg")
    assert cfg.as_dict() == {
        "NAME": "web1", "OS": "debian", "DSK1": "/var/lib/qemu/web1.img", "DSK2": "/var/lib/qemu/web1-data.img",
        "CDR1": "/srv/iso/debian 12.iso", "NIC1": "virtio-net-pci", "NIC2": "e1000", "BRIDGE_IFNAME": "br1",
        "MY_OWN_KEY": "keep me", "OTHER": "x", "EMPTY": "",
    }


def test_render_parse_is_exact_and_stable():
    once = CfgFile.parse(HAND_WRITTEN).render()
    assert once == HAND_WRITTEN
    assert CfgFile.parse(once).render() == once


def test_set_changes_only_that_line():
    cfg = CfgFile.parse(HAND_WRITTEN)
    cfg.set("NIC2", "rtl8139")
    cfg.set("NIC1", "virtio-net-pci")  # unchanged value keeps the line as written
    cfg.set("MEMORY", "512")
    lines = cfg.render().splitlines()
    assert lines[8] == 'NIC2="rtl8139"'
    assert lines[7] == 'NIC1="virtio-net-pci"'
    assert lines[4] == 'DSK1="/var/lib/qemu/web1.img"   # the root disk'
    assert lines[-1] == 'MEMORY="512"'


def test_indented_line_keeps_indent_on_change():
    cfg = CfgFile.parse(HAND_WRITTEN)
    cfg.set("MY_OWN_KEY", "changed")
    assert '  MY_OWN_KEY="changed"' in cfg.render().splitlines()


@pytest.mark.parametrize("value", ['plain', 'with space', 'quote " inside', 'dollar $HOME', 'back`tick`', 'back\\slash', "single ' quote", ""])
def test_quote_round_trips(value):
    cfg = CfgFile.parse("KEY=%s\n" % quote(value))
    assert cfg.get("KEY") == value


@pytest.mark.parametrize("text, problem", [
    ('NAME="web1\n', "unterminated double quote"),
    ("NAME='web1\n", "unterminated single quote"),
    ('NAME="$(reboot)"\n', "shell expansion"),
    ("NAME=`reboot`\n", "shell syntax"),
    ("NAME=a;reboot\n", "shell syntax"),
    ('NAME="a" b\n', "unexpected text"),
    ("this is not a cfg line\n", "expected KEY="),
    ('NAME="a"\nNAME="b"\n', "set twice"),
])
def test_parse_errors_name_the_line(text, problem):
    with pytest.raises(CfgError) as exc:
        CfgFile.parse(text, "x.cfg")
    assert problem in exc.value.msg
    assert exc.value.msg.startswith("x.cfg:")


def test_quote_refuses_line_breaks():
    with pytest.raises(CfgError):
        quote("a\nb")


def test_numbered_stops_at_first_gap():
    assert numbered({"NIC1": "a", "NIC2": "b", "NIC4": "d"}, "NIC") == ["a", "b"]
    assert numbered({"NIC2": "b"}, "NIC") == []


def test_delete_and_retain_keep_comments():
    cfg = CfgFile.parse(HAND_WRITTEN)
    cfg.delete("DSK2")
    cfg.retain(lambda key: not key.startswith("NIC"))
    text = cfg.render()
    assert "DSK2" not in text and "NIC1" not in text
    assert "# the root disk" in text and "# from the wiki page" in text


def test_copy_is_what_parsing_the_rendered_text_gives_and_independent():
    cfg = CfgFile.parse(HAND_WRITTEN)
    copy = cfg.copy()
    assert copy.render() == cfg.render() == CfgFile.parse(cfg.render()).render()
    assert copy.items() == CfgFile.parse(cfg.render()).items()
    copy.set("NAME", "other")
    copy.delete("DSK2")
    copy.set("NEW_KEY", "1")
    assert cfg.render() == CfgFile.parse(HAND_WRITTEN).render()  # the original stays as read
