# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bridges and taps through iproute2's `ip`: read links as JSON, plan changes, apply them in one batch.

Three steps, so that one task (or one `vm` call converging many VMs) costs two `ip` processes:

1. ``IpCommand(module, netns).links()`` reads every link of the namespace once and normalises it.
2. ``plan_bridge()`` / ``plan_tap()`` are pure: they compare that snapshot with what is wanted and
   return a ``Plan`` (the `ip` batch lines, the settings before and after). ``Plan.update(links)`` folds
   the predicted result into the snapshot, so further plans in the same batch see it.
3. ``IpCommand.apply(lines)`` runs all lines with one ``ip [-n NS] -batch -`` fed on stdin.

A batch line is a list of argv tokens (what follows ``ip [-n NS]``), never a shell string.
This is a private module (leading underscore): not an API for other collections.
"""

from __future__ import annotations

import grp
import json
import pwd
import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError

# What the kernel gives a new bridge or tap when no MTU is asked for (ETH_DATA_LEN).
DEFAULT_MTU = 1500
MTU_MIN = 68
MTU_MAX = 65535
# The tun driver's max_mtu (a bridge may go up to MTU_MAX; a tap joining it stops here).
TAP_MTU_MAX = 65521

# `ip -batch` cuts a line at any '#' (comment), treats a token starting with a quote as quoted and
# joins a line ending in a backslash with the next one; a line with such a token is run as its own
# argv instead (the kernel allows all three in names).
_BATCH_UNSAFE = re.compile(r"#|^['\"]|\\")
_BATCH_FAILED = re.compile(r"Command failed -:(\d+)")

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

    # A normalised link record (see parse_links) and a snapshot of all links: name -> record.
    Link = dict[str, t.Any]
    Links = dict[str, Link]
    # One `ip` batch line: the argv tokens after ``ip [-n NS]``.
    Line = list[str]


class Plan:
    """What one link needs: `ip` batch lines and its settings before and after (for diff and return).

    ``link_after`` is the normalised link record the kernel will hold afterwards (None: no link).
    """

    def __init__(self, name: str, kind: str, lines: list[Line], link_before: Link | None, link_after: Link | None) -> None:
        self.name = name
        self.kind = kind
        self.lines = lines
        self.link_before = link_before
        self.link_after = link_after

    @property
    def changed(self) -> bool:
        return bool(self.lines)

    @property
    def before(self) -> dict[str, t.Any]:
        return settings(self.kind, self.name, self.link_before)

    @property
    def after(self) -> dict[str, t.Any]:
        return settings(self.kind, self.name, self.link_after)

    @property
    def diff(self) -> dict[str, dict[str, t.Any]]:
        return {"before": self.before, "after": self.after}

    def update(self, links: Links) -> Links:
        """Fold the predicted result into a ``links()`` snapshot (in place) and return it."""
        if self.link_after is None:
            links.pop(self.name, None)
        else:
            links[self.name] = dict(self.link_after)
        _refresh_ports(links)
        return links


class IpCommand:
    """The `ip` binary, bound to one network namespace; runs argv lists through module.run_command."""

    def __init__(self, module: AnsibleModule, netns: str | None = None) -> None:
        self.module = module
        self.netns = netns
        self.binary = module.get_bin_path("ip", required=True)

    def argv(self, args: t.Iterable[object]) -> list[str]:
        """``ip [-n NS] ARGS`` as an argv list."""
        base = [self.binary]
        if self.netns:
            base += ["-n", self.netns]
        return base + [str(a) for a in args]

    def run(self, args: t.Iterable[object], data: str | None = None) -> str:
        """Run ``ip [-n NS] ARGS``; returns stdout, raises QemuInitError on failure."""
        cmd = self.argv(args)
        kwargs: dict[str, t.Any] = {"check_rc": False}
        if data is not None:
            kwargs["data"] = data
        rc, out, err = self.module.run_command(cmd, **kwargs)
        if rc != 0:
            self._raise_missing_netns(err)
            raise QemuInitError(
                "%s failed: %s" % (" ".join(cmd), _first_line(err) or "exit status %d" % rc),
                rc=rc, stdout=out, stderr=err, cmd=cmd,
            )
        return out

    def links(self) -> Links:
        """All links of the namespace: dict name -> normalised record (see parse_links)."""
        return parse_links(self.run(["-json", "-details", "link", "show"]))

    def apply(self, lines: t.Iterable[t.Iterable[object]]) -> None:
        """Apply batch lines in order; consecutive batch-safe lines share one `ip -batch -` process."""
        groups: list[tuple[bool, list[Line]]] = []
        for line in ([str(token) for token in line] for line in lines):
            safe = not any(_BATCH_UNSAFE.search(token) for token in line)
            if safe and groups and groups[-1][0]:
                groups[-1][1].append(line)
            else:
                groups.append((safe, [line]))
        done = 0
        for _safe, group in groups:
            if len(group) == 1:
                self._run_applying(group[0], done)
            else:
                self._run_batch(group, done)
            done += len(group)

    def _run_applying(self, line: Line, done: int) -> None:
        try:
            self.run(line)
        except QemuInitError as err:
            if done:
                err.msg += " (the %d change(s) before it were applied)" % done
                err.args = (err.msg,)
            raise

    def _run_batch(self, group: list[Line], done: int) -> None:
        cmd = self.argv(["-batch", "-"])
        data = "\n".join(" ".join(line) for line in group)
        rc, out, err = self.module.run_command(cmd, data=data, check_rc=False)
        if rc == 0:
            return
        self._raise_missing_netns(err)
        match = _BATCH_FAILED.search(err or "")
        if match and 1 <= int(match.group(1)) <= len(group):
            index = int(match.group(1)) - 1
            why = _first_line(err)
            msg = "ip %s failed: %s" % (" ".join(group[index]), why or "exit status %d" % rc)
            applied = done + index
        else:
            msg = "%s failed: %s" % (" ".join(cmd), _first_line(err) or "exit status %d" % rc)
            applied = None
        if applied:
            msg += " (the %d change(s) before it were applied)" % applied
        raise QemuInitError(msg, rc=rc, stdout=out, stderr=err, cmd=cmd, batch=data)

    def _raise_missing_netns(self, err: str | None) -> None:
        if self.netns and err and "Cannot open network namespace" in err and "No such file" in err:
            raise QemuInitError("network namespace %s does not exist (ip netns list)" % self.netns, stderr=err)


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip() and not _BATCH_FAILED.match(line.strip()):
            return line.strip()
    return ""


# ---------------------------------------------------------------------------------------------
# Reading


def parse_links(text: str | None) -> Links:
    """Normalise ``ip -json -details link show`` output: dict name -> record.

    Every record: ``name``, ``kind`` (``bridge``, ``tap``, ``tun``, another ``info_kind`` such as
    ``veth``, or the ``link_type`` of a device without one, e.g. ``loopback``), ``mtu``, ``up`` (admin
    state), ``master`` (name or None). Bridges add ``stp`` and ``ports`` (sorted names); taps and tuns
    add ``multi_queue``, ``persistent``, ``owner`` and ``group`` (numeric ids or None).
    """
    try:
        # strict=False: ip prints control characters in link names (the kernel allows them) unescaped.
        raw = json.loads(text or "[]", strict=False)
    except ValueError as exc:
        raise QemuInitError("cannot parse the output of ip -json link show: %s" % exc, stdout=text) from exc
    links: Links = {}
    for item in raw:
        name = item.get("ifname")
        if not name:
            continue
        info = item.get("linkinfo") or {}
        data = info.get("info_data") or {}
        kind = info.get("info_kind") or item.get("link_type") or "unknown"
        link: Link = {
            "name": name,
            "kind": kind,
            "mtu": item.get("mtu"),
            "up": "UP" in (item.get("flags") or []),
            "master": item.get("master"),
        }
        if kind == "bridge":
            link["stp"] = bool(data.get("stp_state", 0))
            link["ports"] = []
        elif kind == "tun":
            link["kind"] = "tun" if data.get("type") == "tun" else "tap"
            link["multi_queue"] = bool(data.get("multi_queue", False))
            link["persistent"] = bool(data.get("persist", True))
            # iproute2 prints the owner as a name when it resolves, else as a number.
            link["owner"] = _uid(data.get("user"))
            link["group"] = _gid(data.get("group"))
        links[name] = link
    _refresh_ports(links)
    return links


def _uid(value: int | str | None) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        return value


def _gid(value: int | str | None) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        return value


def _refresh_ports(links: Links) -> None:
    for link in links.values():
        if link.get("master") is not None and link["master"] not in links:
            link["master"] = None
    for link in links.values():
        if link["kind"] == "bridge":
            link["ports"] = sorted(n for n, other in links.items() if other.get("master") == link["name"])


def settings(kind: str, name: str, link: Link | None) -> dict[str, t.Any]:
    """The user-facing settings of a bridge or tap (what modules return and diff show)."""
    if link is None:
        return {"name": name, "state": "absent"}
    if kind == "bridge":
        return {
            "name": name, "state": "present", "mtu": link["mtu"], "stp": link["stp"], "up": link["up"],
            "ports": list(link["ports"]),
        }
    return {
        "name": name, "state": "present", "mode": link["kind"], "bridge": link["master"],
        "owner": link["owner"], "group": link["group"], "multi_queue": link["multi_queue"],
        "mtu": link["mtu"], "up": link["up"], "persistent": link["persistent"],
    }


# ---------------------------------------------------------------------------------------------
# Parameters


def resolve_user(value: t.Any, param: str = "owner") -> int | None:
    """A user name or numeric id -> uid (None stays None); an unknown name is a ParameterError."""
    return _resolve(value, param, pwd.getpwnam, "pw_uid", "user")


def resolve_group(value: t.Any, param: str = "group") -> int | None:
    """A group name or numeric id -> gid (None stays None); an unknown name is a ParameterError."""
    return _resolve(value, param, grp.getgrnam, "gr_gid", "group")


def _resolve(value: t.Any, param: str, lookup: t.Callable[[str], t.Any], attr: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip()
        if not text:
            raise ParameterError(param, "must be a %s name or a numeric id" % what)
        if text.isdigit():
            number = int(text)
        else:
            try:
                return getattr(lookup(text), attr)
            except KeyError:
                raise ParameterError(param, "no such %s %r on this host" % (what, text)) from None
    # (uid_t)-1 means "no owner" to the kernel; anything above cannot be stored.
    if not 0 <= number < 2 ** 32 - 1:
        raise ParameterError(param, "%s id %d is out of range" % (what, number))
    return number


def check_mtu(value: t.Any, param: str = "mtu") -> int | None:
    """None or an MTU the kernel can accept on a bridge or tap."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MTU_MIN <= value <= MTU_MAX:
        raise ParameterError(param, "must be an integer between %d and %d, got %r" % (MTU_MIN, MTU_MAX, value))
    return value


# ---------------------------------------------------------------------------------------------
# Planning (pure: no commands run here)


def _not_this_kind(name: str, link: Link, wanted: str) -> QemuInitError:
    return QemuInitError(
        "a link named %s exists but it is a %s, not a %s; it is never changed or deleted by this module "
        "(pick another name or remove it yourself)" % (name, link["kind"], wanted)
    )


def _set_line(name: str, master: str | None = None, mtu: int | None = None, up: bool | None = None) -> Line | None:
    """`link set` for the attributes that differ; None means leave it, master '' means nomaster."""
    line = ["link", "set", "dev", name]
    if master == "":
        line.append("nomaster")
    elif master is not None:
        line += ["master", master]
    if mtu is not None:
        line += ["mtu", str(mtu)]
    if up is not None:
        line.append("up" if up else "down")
    return line if len(line) > 4 else None


def plan_bridge(links: Links, name: str, state: str = "present", stp: bool | None = False, mtu: int | None = None,
                up: bool | None = True, force: bool = False) -> Plan:
    """Plan a Linux bridge; None for stp/mtu/up means "leave as it is" (new bridges: kernel default).

    Raises QemuInitError when a link of that name is not a bridge, or when an absent bridge still
    has ports and force is false (with force the ports are released, not deleted).
    """
    current = links.get(name)
    if current is not None and current["kind"] != "bridge":
        raise _not_this_kind(name, current, "bridge")

    if state == "absent":
        if current is None:
            return Plan(name, "bridge", [], None, None)
        if current["ports"] and not force:
            raise QemuInitError(
                "bridge %s still has ports (%s); set force: true to delete it anyway "
                "(its ports are released, not deleted)" % (name, ", ".join(current["ports"]))
            )
        return Plan(name, "bridge", [["link", "del", "dev", name]], current, None)

    if current is None:
        # The kernel moves a bridge's MTU to its smallest port's whenever a port joins, leaves or changes
        # its MTU, unless the MTU was set on the existing bridge (`link set ... mtu`, which marks it set by
        # the user); an MTU given at `link add` is not. A wanted MTU is therefore set after the add.
        line = ["link", "add", "name", name]
        if mtu == DEFAULT_MTU:
            # Setting the MTU a link already has is a no-op that marks nothing: start one below it.
            line += ["mtu", str(DEFAULT_MTU - 1)]
        if up:
            line.append("up")
        line += ["type", "bridge"]
        if stp is not None:
            line += ["stp_state", "1" if stp else "0"]
        lines = [line]
        if mtu is not None:
            lines.append(["link", "set", "dev", name, "mtu", str(mtu)])
        after = {
            "name": name, "kind": "bridge", "mtu": DEFAULT_MTU if mtu is None else mtu, "up": bool(up),
            "master": None, "stp": bool(stp), "ports": [],
        }
        return Plan(name, "bridge", lines, None, after)

    after = dict(current, ports=list(current["ports"]))
    changes: list[str] = []
    # `link set ... mtu` also keeps the MTU from now on when ports come and go. Whether the kernel already
    # keeps it is not readable (no netlink attribute says so): a bridge at the wanted MTU is left alone.
    if mtu is not None and mtu != current["mtu"]:
        changes += ["mtu", str(mtu)]
        after["mtu"] = mtu
    if up is not None and up != current["up"]:
        changes.append("up" if up else "down")
        after["up"] = up
    if stp is not None and stp != current["stp"]:
        # `type` swallows the rest of the line, so it comes last.
        changes += ["type", "bridge", "stp_state", "1" if stp else "0"]
        after["stp"] = stp
    lines = [["link", "set", "dev", name] + changes] if changes else []
    return Plan(name, "bridge", lines, current, after)


def plan_tap(links: Links, name: str, state: str = "present", bridge: str | None = None, owner: int | None = None,
             group: int | None = None, multi_queue: bool | None = None, mtu: int | None = None, up: bool | None = True,
             force: bool = False) -> Plan:
    """Plan a persistent tap; None means "leave as it is" (new taps: kernel default).

    ``bridge`` names the master bridge ('' takes the tap off any bridge); ``owner``/``group`` are
    numeric ids (see resolve_user/resolve_group). A tap that joins a bridge (made on it or moved onto
    it) without an ``mtu`` takes the bridge's MTU, as libvirt does: the bridge then keeps its MTU even
    when the kernel sets it (a bridge whose MTU nobody set follows its smallest port), and the tap
    carries no frame the bridge's other ports would drop. A tap already on its bridge keeps its MTU. The kernel cannot change the mode (tun/tap),
    multi_queue, owner or group of an existing tap, nor make a tap persistent that a process (QEMU)
    created and holds: such a tap is deleted and recreated only with force, else QemuInitError.
    A non-persistent tap is never deleted without force either. A link of that name that is not a
    tap or tun is never touched.
    """
    current = links.get(name)
    if current is not None and current["kind"] not in ("tap", "tun"):
        raise _not_this_kind(name, current, "tap")

    if state == "absent":
        if current is None:
            return Plan(name, "tap", [], None, None)
        if not current["persistent"] and not force:
            raise QemuInitError(
                "tap %s is not persistent: a running process (such as QEMU) created it and holds it open, "
                "and it disappears when that process exits; set force: true to delete it anyway" % name
            )
        return Plan(name, "tap", [["link", "del", "dev", name]], current, None)

    if bridge:
        master = links.get(bridge)
        if master is None:
            raise QemuInitError("cannot put tap %s on bridge %s: there is no link named %s" % (name, bridge, bridge))
        if master["kind"] != "bridge":
            raise QemuInitError("cannot put tap %s on %s: %s is a %s, not a bridge" % (name, bridge, bridge, master["kind"]))

    if mtu is None and bridge and bridge != (current or {}).get("master"):
        mtu = min(links[bridge]["mtu"], TAP_MTU_MAX)

    if current is not None:
        fixed = _fixed_differences(current, owner, group, multi_queue)
        if not fixed:
            return _plan_tap_in_place(current, bridge, mtu, up)
        if not force:
            raise QemuInitError(
                "tap %s exists with settings the kernel cannot change in place (%s); set force: true to delete "
                "and recreate it" % (name, "; ".join(fixed))
            )

    # Create, or recreate keeping what the caller leaves unmanaged.
    keep = current or {}
    want: Link = {
        "name": name, "kind": "tap",
        "owner": owner if owner is not None else keep.get("owner"),
        "group": group if group is not None else keep.get("group"),
        "multi_queue": multi_queue if multi_queue is not None else keep.get("multi_queue", False),
        "persistent": True,
        "master": (bridge or None) if bridge is not None else keep.get("master"),
        "mtu": mtu if mtu is not None else keep.get("mtu", DEFAULT_MTU),
        "up": up if up is not None else keep.get("up", False),
    }
    lines = [["link", "del", "dev", name]] if current is not None else []
    add = ["tuntap", "add", "dev", name, "mode", "tap"]
    if want["owner"] is not None:
        add += ["user", str(want["owner"])]
    if want["group"] is not None:
        add += ["group", str(want["group"])]
    if want["multi_queue"]:
        add.append("multi_queue")
    lines.append(add)
    fresh = _set_line(
        name,
        master=want["master"],
        mtu=want["mtu"] if want["mtu"] != DEFAULT_MTU else None,
        up=True if want["up"] else None,
    )
    if fresh:
        lines.append(fresh)
    return Plan(name, "tap", lines, current, want)


def _fixed_differences(current: Link, owner: int | None, group: int | None, multi_queue: bool | None) -> list[str]:
    reasons = []
    if current["kind"] != "tap":
        reasons.append("mode is %s, wanted tap" % current["kind"])
    if not current["persistent"]:
        reasons.append("it is not persistent: a running process (such as QEMU) created it and holds it open")
    if multi_queue is not None and bool(multi_queue) != current["multi_queue"]:
        reasons.append("multi_queue is %s, wanted %s" % (current["multi_queue"], bool(multi_queue)))
    if owner is not None and owner != current["owner"]:
        reasons.append("owner is %s, wanted %s" % (_id_text(current["owner"]), owner))
    if group is not None and group != current["group"]:
        reasons.append("group is %s, wanted %s" % (_id_text(current["group"]), group))
    return reasons


def _id_text(value: object) -> str:
    return "unset" if value is None else str(value)


def _plan_tap_in_place(current: Link, bridge: str | None, mtu: int | None, up: bool | None) -> Plan:
    name = current["name"]
    after = dict(current)
    master = None
    if bridge is not None and (bridge or None) != current["master"]:
        master = bridge
        after["master"] = bridge or None
    new_mtu = None
    if mtu is not None and mtu != current["mtu"]:
        new_mtu = after["mtu"] = mtu
    new_up = None
    if up is not None and up != current["up"]:
        new_up = after["up"] = up
    line = _set_line(name, master=master, mtu=new_mtu, up=new_up)
    return Plan(name, "tap", [line] if line else [], current, after)


def converge_link(module: AnsibleModule, ip: IpCommand, plan: Plan, key: str) -> dict[str, t.Any]:
    """Apply a link plan unless in check mode; the module result with `key` (bridge/tap) and diff."""
    if plan.changed and not module.check_mode:
        ip.apply(plan.lines)
    result: dict[str, t.Any] = {"changed": plan.changed, key: plan.after}
    if module._diff:
        result["diff"] = plan.diff
    return result
