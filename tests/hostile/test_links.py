# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""bridge and tap on hostile parameters: the real modules and the real `ip`, inside a namespace of ours.

Every example starts from a namespace holding at most one link made beforehand (so that "exists as
another kind", "recreate with force" and "move to a bridge" are reached too). The outcome must be either
- success: the namespace holds exactly what was asked (check_link: the link with that exact name and
  kind; its MTU, master, up/down state, and a bridge's STP or a tap's owner, group and multi_queue as
  given, or as the module documents them when not given: a new link's defaults, an existing link's own
  settings), the host's namespace holds no link of that name, and running it again changes nothing; or
- a fail_json naming the parameter, with the namespace's links as they were.
`netns` is always our namespace, a name that does not exist, or an invalid one: never the host's.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import uuid

import pytest
from ansible.module_utils.parsing.convert_bool import boolean
from hypothesis import given, settings, strategies as st

from ansible_collections.qemu_init.qemu.plugins.modules import bridge as bridge_module, tap as tap_module
from ansible_collections.qemu_init.qemu.tests.hostile import harness, strategies as hs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
CONFIG = os.path.join(hs.SANDBOX, "cfg")
RUN = os.path.join(hs.SANDBOX, "run")

# Names the kernel takes that are awkward for tools: batch comment and quote characters, backslashes,
# unicode, exactly 15 bytes; and ones it refuses.
ifnames = st.one_of(
    st.sampled_from(["br0", "a#b", "#a", '"a', "'a", "a'", 'a"b', "a\\", "\\a", "a\\b", "-a", "--", "a,b", "a=b", "a$b",
                     "$(id)", "`id`", "a;b", "\u00e9", "\u2603\u2603\u2603\u2603\u2603", "x" * 15, "x" * 16, "lo", "a.b", ".a",
                     "up", "dev", "type", "master", "nomaster", "help", "all", "default", "0", "1"]),
    st.text(st.sampled_from("ab09._-#\\\"'$`;,=@+[]{}!?*~^&|<>"), min_size=1, max_size=15),
    hs.hostile_text,
)
_valid_owners = st.sampled_from(["root", "0", "nobody", "65534", "daemon", "4294967294", "1000000"])
owners = st.one_of(
    _valid_owners, _valid_owners,
    st.sampled_from(["-1", "4294967295", "no-such-user-x", "0x1", " 0", "root ", "", "1 2"]),
    hs.hostile_text, hs.wrong_types,
)
# mostly names the kernel takes, so that "accepted and works" is exercised as much as refusals
link_names = st.one_of(ifnames, ifnames, ifnames, hs.wrong_types)


def netns_values(ns):
    missing = "qi-hostile-none-%s" % uuid.uuid4().hex[:8]
    existing = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    return st.one_of(st.just(ns), st.just(ns), st.just(ns), st.just(ns), st.just(missing),
                     hs.hostile_text.filter(lambda v: v.strip() and v not in existing))


def ip(ns, *args, check=True):
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, check=check)


LINK_FIELDS = ("kind", "mtu", "master", "up", "owner", "group", "stp", "multi_queue")


def _id(value, db):
    """A user or group as ip shows it or as the module takes it (name or number) -> its number."""
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    return (db.getpwnam(value).pw_uid if db is pwd else db.getgrnam(value).gr_gid)


def links(ns):
    """name -> dict of LINK_FIELDS, for every link of the namespace but lo."""
    out = {}
    for link in json.loads(ip(ns, "-json", "-details", "link", "show").stdout, strict=False):
        if link["ifname"] == "lo":
            continue
        info = link.get("linkinfo", {})
        data = info.get("info_data", {})
        kind = info.get("info_kind")
        if kind == "tun":
            kind = data.get("type", kind)  # ip shows a tap as kind tun, type tap
        out[link["ifname"]] = dict(zip(LINK_FIELDS, (
            kind, link.get("mtu"), link.get("master"), "UP" in link.get("flags", []),
            _id(data.get("user"), pwd), _id(data.get("group"), grp),
            data.get("stp_state", 0) != 0 if kind == "bridge" else None,
            bool(data.get("multi_queue")) if kind == "tap" else None)))
    return out


def host_names():
    return set(link["ifname"] for link in json.loads(ip(None, "-json", "link", "show").stdout, strict=False))


def reset(ns):
    for name in links(ns):
        ip(ns, "link", "del", "dev", name, check=False)


def pre_existing(ns, name, kind):
    """Make a link called name of kind (bridge, tap, dummy) before the module runs; False if the kernel refuses it.

    The link has settings of its own that differ from a new link's (MTU 1400; a bridge with STP on; a
    tap with an owner and a group, on br-pre when there is one), so that check_link sees whether a
    run keeps what it was not asked to change, in place or when it recreates a tap with force."""
    if kind is None or not isinstance(name, str) or not name or "\0" in name:
        return False
    argv = {"bridge": ["link", "add", "name", name, "type", "bridge"],
            "tap": ["tuntap", "add", "dev", name, "mode", "tap", "user", "65534", "group", "65534"],
            "dummy": ["link", "add", "name", name, "type", "dummy"]}[kind]
    if ip(ns, *argv, check=False).returncode != 0:
        return False
    # set after creation: an MTU given at `ip link add` is not user-set and a bridge would lose it
    ip(ns, "link", "set", "dev", name, "mtu", "1400")
    if kind == "bridge":
        ip(ns, "link", "set", "dev", name, "type", "bridge", "stp_state", "1")
    if kind == "tap" and "br-pre" in links(ns):
        ip(ns, "link", "set", "dev", name, "master", "br-pre")
    return True


def check_link(module, ns, out, params, before, after):
    """The link is what the task asked for, field by field; what the task left out is as documented:
    a new link gets the kernel's defaults (MTU 1500, no master, no owner or group, single queue), an
    existing one (recreated with force or changed in place) keeps its own."""
    name, kind = out.result[module]["name"], module
    # Ansible turns a non-string into a string for a str option (with a warning): False -> "False".
    assert name == params["name"] or not isinstance(params["name"], str), (name, params)
    if params.get("state", "present") == "absent":
        assert name not in after, (name, after)
        return
    assert name in after, (name, after)
    got = after[name]
    old = before.get(name)
    assert got["kind"] == kind and (old is None or old["kind"] == kind), (old, got, kind)
    kept = old or dict(mtu=1500, master=None, owner=None, group=None, multi_queue=False)
    want = dict(kind=kind, up=boolean(params.get("up", True)),
                mtu=int(params["mtu"]) if params.get("mtu") is not None else kept["mtu"])
    if module == "bridge":
        want.update(master=None, stp=boolean(params.get("stp", False)), owner=None, group=None, multi_queue=None)
    else:
        want.update(stp=None,
                    master=(params["bridge"] or None) if params.get("bridge") is not None else kept["master"],
                    owner=_id(params["owner"], pwd) if params.get("owner") is not None else kept["owner"],
                    group=_id(params["group"], grp) if params.get("group") is not None else kept["group"],
                    multi_queue=boolean(params["multi_queue"]) if params.get("multi_queue") is not None else kept["multi_queue"])
    assert got == want, dict(params=params, before=old, after=got, wanted=want)
    for k, v in after.items():
        # nothing else appeared, and the other links kept their settings; a bridge that got a new port
        # may have a new MTU (the kernel moves a bridge's MTU not set by the user to its ports')
        assert k == name or k in before, (k, before)
        if k != name:
            assert dict(v, mtu=None) == dict(before[k], mtu=None), (k, before[k], v)
    assert name not in host_names() or name in HOST_BEFORE


HOST_BEFORE = set()


def run_one(module_name, main, ns, params, pre_kind, pre_bridge):
    HOST_BEFORE.clear()
    HOST_BEFORE.update(host_names())
    reset(ns)
    if pre_bridge:
        ip(ns, "link", "add", "name", "br-pre", "type", "bridge")
    pre_existing(ns, params.get("name"), pre_kind)
    before = links(ns)
    out = harness.call(main, dict(params, config_dir=CONFIG, run_dir=RUN))
    after = links(ns)
    problems = harness.judge(module_name, out, [CONFIG, RUN], dict((k, v) for k, v in params.items() if k != "netns" or v != ns) or ["name"],
                             before, after)
    assert not problems, (params, out, problems)
    if out.kind == "ok" and params.get("netns") == ns:
        check_link(module_name, ns, out, params, before, after)
        again = harness.call(main, dict(params, config_dir=CONFIG, run_dir=RUN))
        assert again.kind == "ok" and not again.result["changed"], (params, again)
    assert host_names() - HOST_BEFORE == set() or params.get("name") not in host_names() - HOST_BEFORE


# Names the kernel takes, however awkward: the "accepted and works" half of the examples.
awkward_names = st.one_of(
    st.sampled_from(["a#b", "#a", '"a', "'a", "a'", 'a"b', "a\\", "\\a", "a\\b", "-a", "--", "a,b", "a=b", "a$b", "$(id)",
                     "`id`", "a;b", "\u00e9", "x" * 15, "up", "dev", "type", "master", "help", "0"]),
    st.text(st.sampled_from("ab09._-#\\\"'$`;,=@+[]{}!?*~^&|<>"), min_size=1, max_size=15).filter(lambda n: n not in (".", "..")),
)
mtus = st.integers(68, 9000)


@settings(max_examples=harness.examples(60))
@given(data=st.data())
def test_bridge_hostile(netns, data):
    if data.draw(st.booleans()):
        params = data.draw(st.fixed_dictionaries({"name": awkward_names, "netns": st.just(netns)}, optional={
            "state": st.sampled_from(["present", "absent"]), "stp": st.booleans(), "mtu": mtus, "up": st.booleans()}))
    else:
        params = data.draw(st.fixed_dictionaries({"name": link_names, "netns": netns_values(netns)}, optional={
            "state": st.one_of(st.sampled_from(["present", "absent"]), hs.hostile_text),
            "stp": st.one_of(st.booleans(), st.sampled_from(["yes", "2"])),
            "mtu": hs.ints, "up": st.booleans(), "force": st.booleans(),
        }))
    run_one("bridge", bridge_module.main, netns, params,
            data.draw(st.sampled_from([None, None, "bridge", "tap", "dummy"])), False)


@settings(max_examples=harness.examples(80))
@given(data=st.data())
def test_tap_hostile(netns, data):
    if data.draw(st.booleans()):
        params = data.draw(st.fixed_dictionaries({"name": awkward_names, "netns": st.just(netns)}, optional={
            "state": st.sampled_from(["present", "absent"]), "bridge": st.sampled_from(["br-pre", ""]),
            "owner": _valid_owners, "group": _valid_owners, "multi_queue": st.booleans(), "mtu": mtus, "up": st.booleans(),
            "force": st.booleans()}))
    else:
        params = data.draw(st.fixed_dictionaries({"name": link_names, "netns": netns_values(netns)}, optional={
            "state": st.one_of(st.sampled_from(["present", "absent"]), hs.hostile_text),
            "bridge": st.one_of(st.sampled_from(["br-pre", "", "no-such-br", "lo"]), ifnames),
            "owner": owners, "group": owners, "multi_queue": st.booleans(),
            "mtu": hs.ints, "up": st.booleans(), "force": st.booleans(),
        }))
    # a tap there already, more often than another kind: changed in place or recreated with force, it
    # must keep what the task does not set (pre_existing gives it settings of its own)
    run_one("tap", tap_module.main, netns, params,
            data.draw(st.sampled_from([None, None, "bridge", "tap", "tap", "dummy"])), data.draw(st.booleans()))
