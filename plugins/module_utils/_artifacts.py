# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What vm_config makes on the host besides the cfg file: the disks it creates or grows (_disk_plan.py), the
cloud-init seed (_seed.py) and the VNC password file. Each is an Artifact: planned without writing (check mode, diff), applied after
every VM of the call validated, undone when a later write of the same call fails.

Disks given by a relative file live under <state_dir>/<name>/, as do the seed and the VNC password (0600, and the directory 0700).
"""

from __future__ import annotations

import contextlib
import json
import os
import typing as t

# _disk_plan and _seed are imported by the methods that use them: a VM with no disk to make and no cloud-init
# loads neither (tests/unit/plugins/modules/test_lazy_imports.py).
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import vnc
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.disk import default_format
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_bytes, read_json
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import RunPaths, StatePaths
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import QMP_TIMEOUT, probe
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import proc_cmdline
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import observer_socket
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu_img import QemuImg, parse_size
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import atomic_write


def _state_dir_ready(path):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)


class SeedArtifact:
    """The VM's cidata image, rewritten only when its bytes change, and removed once the VM has no cloud_init (seed
    None): the image holds the user-data, secrets included, and nothing attaches it any more. The diff shows names,
    sizes, digests and the instance-id only."""

    def __init__(self, name, path, seed):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _seed

        self.name = name
        self.path = path
        self.seed = seed
        self.before = read_bytes(path, "cloud-init seed", name, limit=_seed.MAX_IMAGE_BYTES)
        if seed is None:
            self.changed = self.before is not None or os.path.islink(path)
        else:
            self.changed = _seed.seed_changed(path, seed, name)

    def diff(self):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _seed

        before = "" if self.before is None else "cloud-init seed (%d bytes, content not shown)\n" % len(self.before)
        after = "" if self.seed is None else "cloud-init seed: %s\n" % json.dumps(_seed.describe_seed(self.seed), sort_keys=True)
        return dict(before_header=self.path, after_header=self.path, before=before, after=after)

    def apply(self):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _seed

        if self.seed is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        _state_dir_ready(self.path)
        _seed.write_seed(self.path, self.seed, self.name)

    def undo(self):
        if self.before is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            atomic_write(self.path, self.before, mode=0o600)


class VncPasswordArtifact:
    """The VM's VNC password file in its state dir (0600, the directory 0700): written when its content changes,
    removed when the VM no longer has a password. The diff says that it changes, never what it is."""

    def __init__(self, name, path, password):
        self.name = name
        self.path = path
        self.password = password  # None: remove the file
        self.before = read_bytes(path, "VNC password file", name, limit=64)
        wanted = None if password is None else password.encode("ascii")
        self.changed = self.before != wanted

    def diff(self):
        before = "" if self.before is None else "VNC password (set, not shown)\n"
        after = "" if self.password is None else "VNC password (%s, not shown)\n" % ("new" if self.before is None else "changed")
        return dict(before_header=self.path, after_header=self.path, before=before, after=after)

    def apply(self):
        if self.password is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        _state_dir_ready(self.path)
        atomic_write(self.path, self.password.encode("ascii"), mode=0o600)  # no newline: QEMU reads every byte

    def undo(self):
        if self.before is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            _state_dir_ready(self.path)
            atomic_write(self.path, self.before, mode=0o600)


class DiskArtifact:
    """One disk to create (an overlay on base_image, or blank of size) or grow (offline, or online through QMP)."""

    def __init__(self, name, plan, img, state, observer):
        self.name = name
        self.plan = plan
        self.img = img
        self.state = state
        self.observer = observer  # the running VM's observer QMP socket, for grow_online
        self.changed = plan.changes
        self.created = False

    def describe(self):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

        plan = self.plan
        if plan.action == _disk_plan.CREATE_OVERLAY:
            return "qcow2 overlay on %s (%s), %s" % (plan.base, plan.base_format, _disk_plan.human_size(plan.size or 0))
        if plan.action == _disk_plan.CREATE_BLANK:
            return "blank %s disk, %s" % (plan.format, _disk_plan.human_size(plan.size or 0))
        if plan.action in (_disk_plan.GROW_OFFLINE, _disk_plan.GROW_ONLINE):
            return "grown %s to %s" % ("while running" if plan.action == _disk_plan.GROW_ONLINE else "offline",
                                       _disk_plan.human_size(plan.size or 0))
        return "unchanged"

    def diff(self):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

        plan = self.plan
        before = "" if plan.current_size is None else "%s disk, %s\n" % (plan.format, _disk_plan.human_size(plan.current_size))
        return dict(before_header=plan.file, after_header=plan.file, before=before, after=self.describe() + "\n")

    def apply(self):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

        if self.plan.action in (_disk_plan.CREATE_OVERLAY, _disk_plan.CREATE_BLANK):
            _state_dir_ready(self.state.made)
            # Noted before it exists: a run killed right after creating it still leaves it to remove_disks.
            remember_made_disk(self.state, self.plan.file)
            self.created = True
        if self.plan.action == _disk_plan.GROW_ONLINE:
            with QmpClient(self.observer, timeout=QMP_TIMEOUT) as qmp:
                _disk_plan.apply_plan(self.plan, self.img, qmp)
        else:
            _disk_plan.apply_plan(self.plan, self.img)

    def undo(self):
        # A disk made by this call goes again (with its record); a grown disk cannot shrink back (it is reported as grown).
        if self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.plan.file)
            forget_made_disk(self.state, self.plan.file)
            self.created = False


def made_disks(state):
    """The disk files the collection created for the VM (what remove_disks removes besides its state dir)."""
    return list((read_json(state.made, "record of the disks made", state.name) or {}).get("disks", []))


def remember_made_disk(state, path):
    disks = sorted(set(made_disks(state)) | {path})
    atomic_write(state.made, json.dumps(dict(disks=disks)) + "\n", mode=0o600)


def forget_made_disk(state, path):
    disks = made_disks(state)
    if path in disks:
        atomic_write(state.made, json.dumps(dict(disks=sorted(set(disks) - {path}))) + "\n", mode=0o600)


# Formats whose images can have a backing file. Not luks: reading its header needs its secret.
CHAIN_FORMATS = ("qcow2", "qed", "vmdk")


class HostSide:
    """Turns a VM's disks and cloud_init parameters into what its spec needs (absolute files, formats, the seed's
    path and instance-id) and into the Artifacts that make them. One per module run: qemu-img is looked up once."""

    def __init__(self, module, state_dir, run_dir):
        self.module = module
        self.state_dir = state_dir
        self.run_dir = run_dir
        self._img = None

    def img(self):
        if self._img is None:
            self._img = QemuImg(self.module)
        return self._img

    def prepare(self, values, name, before_spec):
        """values: the spec parameters (changed in place); before_spec(): the VM's spec from its cfg file now, or None
        (asked only when a disk needs it: an idempotent run of VMs whose disks say their format reads no cfg twice).
        Returns the Artifacts; raises ParameterError/QemuInitError before anything is made."""
        state = StatePaths(self.state_dir, name)
        artifacts: list[t.Any] = []
        disks = values.get("disks") or []
        if any(d.get("base_image") or d.get("size") or not os.path.isabs(d.get("file") or "") or not d.get("format") for d in disks):
            artifacts += self._disks(values, name, state, before_spec)
        artifacts += self._vnc_password(values, state, before_spec)
        cloud_init = values.pop("cloud_init", None)
        if cloud_init:
            from ansible_collections.qemu_init.qemu.plugins.module_utils import _seed

            seed = _seed.build_seed(cloud_init, name)
            values["cidata"] = state.seed
            values["cidata_id"] = seed.instance_id
            artifact = SeedArtifact(name, state.seed, seed)
            if artifact.changed:
                artifacts.append(artifact)
        elif os.path.lexists(state.seed):
            # cloud_init was dropped: the cfg no longer attaches the seed, which goes with its secrets.
            artifacts.append(SeedArtifact(name, state.seed, None))
        return artifacts

    def _vnc_password(self, values, state, before_spec):
        """The password goes to the state dir, the cfg gets VNC_PASSWORD_ID: the one the cfg has while the file
        holds this password, a new random one when the file is written (a new password: restart_required)."""
        password = values.pop("vnc_password", None)
        if password is None:
            values["vnc_password_id"] = None
            if not os.path.lexists(state.vnc_password):
                return []
            return [VncPasswordArtifact(state.name, state.vnc_password, None)]  # no password any more: the file goes
        vnc.check_password(password, bool(values.get("vnc")))
        artifact = VncPasswordArtifact(state.name, state.vnc_password, password)
        now = None if artifact.changed else before_spec()
        values["vnc_password_id"] = (now.vnc_password_id if now is not None and now.vnc and now.vnc_password_id
                                     else vnc.new_password_id())
        return [artifact] if artifact.changed else []

    def _disks(self, values, name, state, before_spec):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

        now = before_spec()
        known = dict((d.file, d.format) for d in (now.disks if now else []))
        running = None
        artifacts, plans = [], []
        disks = [dict(d) for d in values["disks"]]
        for i, d in enumerate(disks):
            param = "disks[%d]" % i
            d["file"] = _disk_plan.resolve_disk_file(d.get("file") or "", self.state_dir, name, param + ".file")
            makes = bool(d.get("base_image") or d.get("size"))
            if not makes and d.get("format"):
                continue
            if not makes and not d.get("format"):
                # The format is read once, when the cfg first names the file, and then kept in the cfg: a guest that
                # writes an image header into a raw disk must not change how it is opened next time.
                if d["file"] in known:
                    d["format"] = known[d["file"]]
                elif os.path.exists(d["file"]):
                    d["format"] = self._read_format(d["file"], param)
                continue
            if not d.get("format") and d["file"] in known and not d.get("base_image"):
                d["format"] = known[d["file"]]
            size = None
            if d.get("size"):
                try:
                    size = parse_size(d["size"])
                except ValueError as exc:
                    raise ParameterError(param + ".size", str(exc)) from None
            want = _disk_plan.DiskWant(d["file"], d.get("base_image"), size, d.get("format"), param)
            disk_state = _disk_plan.read_state(self.img(), d["file"], d.get("format"))
            base_state = None
            if not disk_state.exists and d.get("base_image") and os.path.isabs(d["base_image"]):
                base_state = _disk_plan.read_state(self.img(), d["base_image"])
            if running is None:
                running = self._observer(name)
            plan = _disk_plan.plan_disk(want, disk_state, base_state, running=bool(running))
            plans.append(plan)
            if plan.action != _disk_plan.ERROR:
                d["format"] = plan.format or d.get("format") or default_format(d["file"])
                if plan.changes:
                    artifacts.append(DiskArtifact(name, plan, self.img(), state, running))
        _disk_plan.raise_for_errors(plans)
        values["disks"] = disks
        return artifacts

    def check_chains(self, spec):
        """ParameterError for an existing disk given with a format that can have a backing file (CHAIN_FORMATS) when
        qemu-img cannot read it as that: a backing chain that loops, a backing file that is gone, a file that is not
        that format. QEMU would refuse it only at launch. vm_config asks this when the cfg would change; disks made or
        grown here were read by their plan already, disks whose format was left out when it was read. Skipped on a
        host without qemu-img (as the NIC models are without QEMU)."""
        for i, disk in enumerate(spec.disks):
            if disk.base_image or disk.size or disk.format not in CHAIN_FORMATS or not os.path.exists(disk.file):
                continue
            if self._img is None and not self.module.get_bin_path("qemu-img"):
                return
            from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

            state = _disk_plan.read_state(self.img(), disk.file, disk.format)
            if state.problem:
                raise ParameterError("disks[%d].file" % i, "%s: %s" % (disk.file, state.problem))

    def _read_format(self, path, param):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

        found = _disk_plan.read_state(self.img(), path)
        if found.problem or not found.chain:
            raise ParameterError(param + ".file", "%s: %s" % (path, found.problem or "not a disk image"))
        return str(found.chain[0]["format"])

    def _observer(self, name):
        """The running VM's observer socket ('' when it is not running)."""
        run = RunPaths(self.run_dir, name)
        pid, running, _status = probe(name, run)
        return observer_socket(run, proc_cmdline(pid)) if running else ""


def remove_state(state, remove_disks):
    """What `absent` removes of the VM's state dir: all of it with remove_disks, else all but the disk files in it.
    With remove_disks the disks it created elsewhere go too. Returns the paths removed."""
    removed = []
    doomed_disks = set(made_disks(state)) if remove_disks else set()
    for path in sorted(doomed_disks):
        if not path.startswith(state.dir + os.sep) and os.path.isfile(path):
            os.unlink(path)
            removed.append(path)
    if not os.path.isdir(state.dir):
        return removed
    kept = False
    for root, dirs, files in os.walk(state.dir, topdown=False):
        for fname in files:
            path = os.path.join(root, fname)
            if not remove_disks and _is_disk(path, state):
                kept = True
                continue
            os.unlink(path)
            removed.append(path)
        for dname in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, dname))
    if not kept:
        with contextlib.suppress(OSError):
            os.rmdir(state.dir)
    return removed


def _is_disk(path, state):
    """A file of the state dir that is not one of the collection's own (seed, UEFI vars, TPM state, records)."""
    own = (state.seed, state.efi_vars, state.efi_vars_record, state.vnc_password, state.made)
    return path not in own and not path.startswith(os.path.join(state.dir, "tpm") + os.sep)


def check_no_shared_writable_disks(uses):
    """QemuInitError when two VMs would write one disk ({vm: [(realpath, readonly)]})."""
    from ansible_collections.qemu_init.qemu.plugins.module_utils import _disk_plan

    clashes = _disk_plan.find_disk_clashes(uses)
    if clashes:
        raise QemuInitError("; ".join(clashes))
