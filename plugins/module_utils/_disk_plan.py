# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What to do for one disk of a VM (DESIGN.md, "Real operating systems": `disks[].base_image`, `size`, `format`).

Three steps, so that check mode and the error paths need no disk writes:
1. read_state() asks `qemu-img info --output=json --backing-chain` what is at `file` (and at `base_image`);
2. plan_disk() compares that with what the user wants and returns a DiskPlan: none, create_overlay,
   create_blank, grow_offline, grow_online or error (pure: the unit tests feed it canned JSON);
3. apply_plan() carries it out (qemu-img, or QMP block_resize for a running VM).

Rules:
- `format` left out: what qemu-img info reads for an existing file, qcow2 for a file made here. Given: the file
  is read as that format (-f), never probed.
- `base_image` and no `file`: a qcow2 overlay on the base (its real path, so that a symbolic link moved to a
  newer image later cannot change an overlay's data under it); the base's format is what qemu-img reads.
- An existing `file` whose backing chain does not contain `base_image` is an error naming both, as is
  `base_image` being `file` itself, a missing base and a chain that loops.
- `size` smaller than the current virtual size is an error (never shrink), larger grows the disk: offline with
  `qemu-img resize`, online with QMP `block_resize` when the caller says the VM runs.

Measured on this machine (2 vCPUs, qemu-img 7.2): `qemu-img create -f qcow2 -b debian-12.qcow2 -F qcow2` on the
204 MiB Debian image takes 6.5-12.9 ms (10 runs, median ~10 ms) and writes a 196,640-byte file whatever the
base's size: only the base's header is read. `qemu-img info --backing-chain` on that overlay: 4.7-8.0 ms.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError

if t.TYPE_CHECKING:
    from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_img import QemuImg
    from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient

NONE = "none"
CREATE_OVERLAY = "create_overlay"
CREATE_BLANK = "create_blank"
GROW_OFFLINE = "grow_offline"
GROW_ONLINE = "grow_online"
ERROR = "error"

DEFAULT_FORMAT = "qcow2"
# How far the chain walk that explains a failed `qemu-img info --backing-chain` follows backing files. QEMU
# itself has no fixed depth; 256 is far beyond any real chain and bounds the walk (one qemu-img run per step).
MAX_CHAIN_WALK = 256


class DiskWant(t.NamedTuple):
    """What the user asked for one disk. `file` is absolute (resolve_disk_file); `param` names the disk in
    messages, e.g. "disks[0]"."""

    file: str
    base_image: str | None = None
    size: int | None = None
    format: str | None = None
    param: str = "disk"


class DiskState(t.NamedTuple):
    """What is at a path: `chain` is qemu-img's --backing-chain list (top first), [] when nothing is there.
    `problem` says why the chain could not be read (a loop, a missing backing file, not an image)."""

    path: str
    chain: list[dict[str, t.Any]]
    problem: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.chain) or self.problem is not None


class DiskPlan(t.NamedTuple):
    """One disk's verdict. `size` is the virtual size to create or grow to (bytes; None: the base's size);
    `format` is what the argv must say; `message` is set for action "error" only."""

    action: str
    file: str
    format: str | None = None
    size: int | None = None
    current_size: int | None = None
    base: str | None = None
    base_format: str | None = None
    drive: str | None = None
    message: str | None = None

    @property
    def changes(self) -> bool:
        return self.action not in (NONE, ERROR)


def human_size(size: int) -> str:
    """"20 GiB (21474836480 bytes)": the unit the user probably wrote, and the exact number."""
    for unit, factor in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            text = ("%d" % value) if size % factor == 0 else ("%.2f" % value)
            return "%s %s (%d bytes)" % (text, unit, size)
    return "%d bytes" % size


# -- where a disk lives ----------------------------------------------------------------------------------------

def vm_state_dir(state_dir: str, vm: str) -> str:
    """<state_dir>/<vm>/: refuses a VM name that is not one path component."""
    if not vm or vm in (".", "..") or "/" in vm or "\0" in vm:
        raise ParameterError("name", "%r cannot name a directory under state_dir" % (vm,))
    return os.path.join(os.path.abspath(state_dir), vm)


def resolve_disk_file(file: str, state_dir: str, vm: str, param: str = "disks[0].file") -> str:
    """The absolute path of a disk's `file`: an absolute path as given (normalised), a relative one under
    <state_dir>/<vm>/. A relative path must stay there: `../x`, or a symbolic link on the way that leads out,
    is a ParameterError naming `param` (a VM's own directory is what `absent` cleans up; a disk outside it
    must be named by an absolute path, on purpose)."""
    if not isinstance(file, str) or not file.strip() or "\0" in file:
        raise ParameterError(param, "%r is not a file name" % (file,))
    if os.path.isabs(file):
        return os.path.normpath(file)
    base = vm_state_dir(state_dir, vm)
    path = os.path.normpath(os.path.join(base, file))
    if not path.startswith(base + os.sep):
        raise ParameterError(param, "%s leads out of the VM's directory %s/ (a relative file stays under it; give an absolute "
                                    "path for a disk elsewhere)" % (file, base))
    real_base, real = os.path.realpath(base), os.path.realpath(path)
    if not real.startswith(real_base + os.sep):
        raise ParameterError(param, "%s resolves to %s through a symbolic link, outside the VM's directory %s/ (give an "
                                    "absolute path for a disk elsewhere)" % (file, real, base))
    return path


# -- reading what is there -------------------------------------------------------------------------------------

def _backing_of(entry: dict[str, t.Any], path: str) -> str | None:
    """The backing file of a qemu-img info entry for `path`, as a path (relative names are relative to the
    overlay's directory, as QEMU opens them); None without one."""
    name = entry.get("full-backing-filename") or entry.get("backing-filename")
    if not name:
        return None
    return name if os.path.isabs(name) else os.path.join(os.path.dirname(path), name)


def chain_paths(state: DiskState) -> list[str]:
    """The paths of the chain, top first, as QEMU opens them (from the entries' backing names)."""
    if not state.chain:
        return []
    paths = [state.path]
    for entry in state.chain[:-1]:
        backing = _backing_of(entry, paths[-1])
        if backing is None:
            break
        paths.append(backing)
    return paths


def _loop_in(paths: t.Sequence[str]) -> str | None:
    seen: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            return " -> ".join(list(paths[:len(seen)]) + [path])
        seen.append(real)
    return None


def _explain_chain(img: QemuImg, path: str, fmt: str | None, fallback: str) -> str:
    """Why `qemu-img info --backing-chain` failed: follows the chain one file at a time (qemu-img only says "creates
    an infinite loop" about one file; this names the whole loop, or the missing link)."""
    walked = [path]
    current = path
    for _step in range(MAX_CHAIN_WALK):
        try:
            entry = img.info(current, fmt=fmt if current == path else None)
        except QemuInitError:
            return fallback
        backing = _backing_of(entry, current)
        if backing is None:
            return fallback
        walked.append(backing)
        loop = _loop_in(walked)
        if loop:
            return "its backing chain is a loop: %s" % loop
        if not os.path.exists(backing):
            return "its backing file %s (of %s) does not exist" % (backing, current)
        current = backing
    return "its backing chain is longer than %d files" % MAX_CHAIN_WALK


def read_state(img: QemuImg, path: str, fmt: str | None = None) -> DiskState:
    """What is at `path`: nothing, a readable chain, or a problem (a loop, a missing backing file, not `fmt`).

    One `qemu-img info --backing-chain` run (4.7-8.0 ms measured); only when it fails is the chain walked file
    by file to say why."""
    if not os.path.lexists(path):
        return DiskState(path, [])
    if not os.path.exists(path):
        return DiskState(path, [], "it is a symbolic link to %s, which does not exist" % os.readlink(path))
    if os.path.isdir(path):
        return DiskState(path, [], "it is a directory")
    try:
        info = img.info(path, chain=True, fmt=fmt)
    except QemuInitError as err:
        stderr = str(err.details.get("stderr") or err.msg).strip()
        return DiskState(path, [], _explain_chain(img, path, fmt, "qemu-img info cannot read it: %s" % stderr))
    chain = info if isinstance(info, list) else [info]
    return DiskState(path, chain)


# -- planning --------------------------------------------------------------------------------------------------

def _error(want: DiskWant, field: str, problem: str) -> DiskPlan:
    return DiskPlan(ERROR, want.file, message="%s.%s: %s" % (want.param, field, problem))


def plan_disk(want: DiskWant, state: DiskState, base_state: DiskState | None = None, running: bool = False,
              drive: str | None = None) -> DiskPlan:
    """The plan for one disk. `state` is read_state(file, want.format); `base_state` read_state(base_image) when
    the file is missing and a base is given; `running`: the VM runs and uses this disk (grow online through
    QMP, on `drive`, the drive id, or found by file: find_block_node)."""
    if want.base_image is not None and not os.path.isabs(want.base_image):
        # Relative to what? The module's cwd is arbitrary and the VM's state dir holds the VM's own files, not the
        # images many VMs share: the user says where the image is.
        return _error(want, "base_image", "%s is not an absolute path" % want.base_image)
    base = os.path.realpath(want.base_image) if want.base_image else None
    if base is not None:
        if base == os.path.realpath(want.file):
            return _error(want, "base_image", "%s is the disk's own file (%s.file: %s): a disk cannot be its own base"
                          % (want.base_image, want.param, want.file))
        if not state.exists and want.format not in (None, "qcow2"):
            return _error(want, "format", "%s, but an overlay on base_image is always qcow2" % want.format)
    if state.problem is not None:
        return _error(want, "file", "%s: %s" % (want.file, state.problem))
    if not state.exists:
        return _plan_new(want, base, base_state)

    paths = chain_paths(state)
    loop = _loop_in(paths)
    if loop:
        return _error(want, "file", "%s: its backing chain is a loop: %s" % (want.file, loop))
    top = state.chain[0]
    fmt = str(top.get("format"))
    if want.format and want.format != fmt:
        return _error(want, "format", "%s, but qemu-img reads %s as %s" % (want.format, want.file, fmt))
    if base is not None and base not in [os.path.realpath(p) for p in paths[1:]]:
        if len(paths) > 1:
            on = "an overlay on %s" % paths[1]
            if len(paths) > 2:
                on += " (chain: %s)" % " -> ".join(paths[1:])
            fix = "set base_image to %s, or remove %s to have it made anew on %s" % (paths[1], want.file, want.base_image)
        else:
            on = "a disk without a backing file"
            fix = "leave base_image out, or remove %s to have it made anew on %s" % (want.file, want.base_image)
        real_note = "" if base == want.base_image else " (%s)" % base
        return _error(want, "base_image", "%s%s, but %s.file %s exists and is %s: %s"
                      % (want.base_image, real_note, want.param, want.file, on, fix))
    current = int(top["virtual-size"])
    if want.size is None or want.size == current:
        return DiskPlan(NONE, want.file, fmt, current, current)
    if want.size < current:
        return _error(want, "size", "%s is smaller than %s's current virtual size, %s: disks are never shrunk"
                      % (human_size(want.size), want.file, human_size(current)))
    return DiskPlan(GROW_ONLINE if running else GROW_OFFLINE, want.file, fmt, want.size, current, drive=drive if running else None)


def _plan_new(want: DiskWant, base: str | None, base_state: DiskState | None) -> DiskPlan:
    if base is None:
        if want.size is None:
            return _error(want, "file", "%s does not exist: give size to create a blank disk, or base_image to create an "
                                        "overlay on an image" % want.file)
        return DiskPlan(CREATE_BLANK, want.file, want.format or DEFAULT_FORMAT, want.size)
    if base_state is None or not base_state.exists:
        return _error(want, "base_image", "%s does not exist (%s.file %s is to be an overlay on it)"
                      % (want.base_image, want.param, want.file))
    if base_state.problem is not None:
        return _error(want, "base_image", "%s: %s" % (want.base_image, base_state.problem))
    loop = _loop_in(chain_paths(base_state))
    if loop:
        return _error(want, "base_image", "%s: its backing chain is a loop: %s" % (want.base_image, loop))
    base_top = base_state.chain[0]
    base_size = int(base_top["virtual-size"])
    if want.size is not None and want.size < base_size:
        return _error(want, "size", "%s is smaller than base_image %s (%s): an overlay is never smaller than its base"
                      % (human_size(want.size), want.base_image, human_size(base_size)))
    size = want.size if want.size is not None and want.size > base_size else None
    return DiskPlan(CREATE_OVERLAY, want.file, "qcow2", size or base_size, None, base, str(base_top["format"]))


def errors(plans: t.Iterable[DiskPlan]) -> list[str]:
    """The messages of the plans that are errors, in order."""
    return [plan.message or "" for plan in plans if plan.action == ERROR]


def raise_for_errors(plans: t.Iterable[DiskPlan]) -> None:
    """QemuInitError with every error's message (one per line), before anything is changed."""
    found = errors(plans)
    if found:
        raise QemuInitError("; ".join(found) if len(found) < 2 else "\n".join(found))


# -- carrying a plan out ---------------------------------------------------------------------------------------

def apply_plan(plan: DiskPlan, img: QemuImg, qmp: QmpClient | None = None) -> bool:
    """Do what the plan says; True when something changed. grow_online needs the VM's QMP client."""
    if plan.action == ERROR:
        raise QemuInitError(plan.message or "disk %s: no plan" % plan.file)
    if plan.action == NONE:
        return False
    if plan.action in (CREATE_OVERLAY, CREATE_BLANK):
        parent = os.path.dirname(plan.file)
        if not os.path.isdir(parent):
            try:
                # 0700: a VM's state directory holds its disks, UEFI vars, TPM state and cloud-init seed.
                os.makedirs(parent, 0o700)
            except OSError as err:
                raise QemuInitError("creating the directory %s for %s failed: %s" % (parent, plan.file, err.strerror or err)) from err
    if plan.action == CREATE_OVERLAY:
        img.create_overlay(plan.file, _needed(plan.base, plan), _needed(plan.base_format, plan), plan.size)
    elif plan.action == CREATE_BLANK:
        img.create(plan.file, _needed(plan.format, plan), _needed(plan.size, plan))
    elif plan.action == GROW_OFFLINE:
        img.resize(plan.file, _needed(plan.format, plan), _needed(plan.size, plan))
    elif plan.action == GROW_ONLINE:
        if qmp is None:
            raise QemuInitError("growing %s online needs the VM's QMP socket" % plan.file)
        block_resize(qmp, _needed(plan.size, plan), drive=plan.drive, file=plan.file)
    else:
        raise QemuInitError("disk %s: unknown plan action %r" % (plan.file, plan.action))
    return True


_T = t.TypeVar("_T")


def _needed(value: _T | None, plan: DiskPlan) -> _T:
    """A field the plan's action needs (plan_disk always sets it; a hand-made plan may not)."""
    if value is None:
        raise QemuInitError("disk %s: the %s plan lacks a field it needs: %r" % (plan.file, plan.action, plan))
    return value


# -- QMP: growing a disk a running VM uses ---------------------------------------------------------------------

def find_block_node(qmp: QmpClient, drive: str | None = None, file: str | None = None) -> str:
    """The block node name of a running VM's disk, from query-block: the entry whose drive id (`-drive id=`, or
    QEMU's own such as virtio0), qdev id or node name is `drive`, else the one that has `file` open.

    QEMU 7.2 names the node of a `-drive` without node-name itself ("#block142"): looked up each time, never stored."""
    blocks = qmp.command("query-block") or []
    real = os.path.realpath(file) if file else None
    by_file = []
    for block in blocks:
        inserted = block.get("inserted") or {}
        node = inserted.get("node-name")
        if not node:
            continue
        if drive and drive in (block.get("device"), node) + _device_ids(str(block.get("qdev") or "")):
            return str(node)
        if real and inserted.get("file") and os.path.realpath(inserted["file"]) == real:
            by_file.append(str(node))
    if len(by_file) == 1:
        return by_file[0]
    wanted = " or ".join(x for x in ("drive %s" % drive if drive else "", "file %s" % file if file else "") if x)
    if by_file:
        raise QemuInitError("the VM has %s open on %d drives (%s): name the drive" % (file, len(by_file), ", ".join(by_file)))
    raise QemuInitError("the VM has no block device with %s (query-block lists: %s)" % (
        wanted or "nothing asked for",
        ", ".join("%s=%s" % (b.get("device") or b.get("qdev"), (b.get("inserted") or {}).get("file", "(empty)")) for b in blocks)
        or "none"))


def _device_ids(qdev: str) -> tuple[str, ...]:
    """The device id in query-block's qdev: the id itself, or a QOM path such as
    /machine/peripheral/ID/virtio-backend (a virtio device given id=ID, QEMU 7.2)."""
    parts = qdev.split("/")
    if len(parts) > 3 and parts[:3] == ["", "machine", "peripheral"]:
        return (qdev, parts[3])
    return (qdev,) if qdev else ()


def block_resize(qmp: QmpClient, size: int, drive: str | None = None, file: str | None = None) -> str:
    """Grow a running VM's disk to `size` bytes with QMP block_resize (on its node); returns the node name.

    The guest sees the new size at once (virtio-blk sends a config-change interrupt); its partitions and file
    systems are the guest's business (cloud-init's growpart does that at boot)."""
    node = find_block_node(qmp, drive, file)
    qmp.command("block_resize", {"node-name": node, "size": size})
    return node


# -- one writable disk, two VMs --------------------------------------------------------------------------------

def find_disk_clashes(uses: t.Mapping[str, t.Iterable[tuple[str, bool]]]) -> list[str]:
    """Messages for every file that one VM writes and another VM uses at all: `uses` maps a VM name to its disks
    as (real path, readonly). Pass the files a VM's overlays are backed by as readonly uses: a base image that
    only backs overlays is fine; one that a VM also writes would change under the overlays on it.

    A VM that lists one writable file twice is reported too (QEMU refuses the second open: "Failed to get
    "write" lock")."""
    by_file: dict[str, list[tuple[str, bool]]] = {}
    for vm in sorted(uses):
        for path, readonly in uses[vm]:
            by_file.setdefault(path, []).append((vm, bool(readonly)))
    messages = []
    for path in sorted(by_file):
        users = by_file[path]
        writers = sorted({vm for vm, readonly in users if not readonly})
        if not writers:
            continue
        readers = sorted({vm for vm, _readonly in users} - set(writers))
        if len(writers) > 1 or readers:
            what = "written by VM%s %s" % ("s" if len(writers) > 1 else "", _and(writers))
            if readers:
                what += " and used by VM%s %s" % ("s" if len(readers) > 1 else "", _and(readers))
            messages.append("disk %s is %s: a writable disk belongs to one VM (give each VM its own file, or an overlay "
                            "on a shared base_image)" % (path, what))
        elif len(users) > 1:
            messages.append("disks: %s is attached %d times to VM %s and written: a writable disk can be attached once"
                            % (path, len(users), writers[0]))
    return messages


def _and(names: t.Sequence[str]) -> str:
    return names[0] if len(names) == 1 else "%s and %s" % (", ".join(names[:-1]), names[-1])
