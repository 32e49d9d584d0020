# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM manager: what should run, and the start and stop ladders (what runs now: _inventory.VmInventory).

State lives in two places only: the registry (names, slots) and the run dir of each VM
(pidfile, QMP socket, serial log, launch record, and the list of links we made for it).
A VM is running when its pidfile names a live, non-zombie qemu-system process whose
command line carries that pidfile and which answers QMP query-name with the VM's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import signal
import time

from ansible_collections.qemu_init.qemu.plugins.module_utils._artifacts import remove_state
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import firmware, tpm, vnc
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.context import DeviceContext
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic import backend_of
from ansible_collections.qemu_init.qemu.plugins.module_utils._inventory import VmInventory, VmRecord
from ansible_collections.qemu_init.qemu.plugins.module_utils._paths import cfg_path
from ansible_collections.qemu_init.qemu.plugins.module_utils._plan import Launchable, launch_waves
from ansible_collections.qemu_init.qemu.plugins.module_utils._ports import ListeningPorts, netns_exists
from ansible_collections.qemu_init.qemu.plugins.module_utils._probe import (
    PROBE_PARALLEL,
    QMP_TIMEOUT,
    each,
    launch_argv,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._process import (
    is_live_qemu,
    proc_cmdline,
    proc_state,
    read_pidfile,
)
from ansible_collections.qemu_init.qemu.plugins.module_utils._qemu import observer_socket
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import QmpClient, QmpClosed, QmpConnectError, QmpTimeout
from ansible_collections.qemu_init.qemu.plugins.module_utils._registry import atomic_write, ports_info

# A power-button press that arrives before the guest's ACPI handler is up is lost (measured with
# the test guest), so the press is repeated until the guest goes down or the timeout ends.
POWERDOWN_RESEND = 2.0
# How long each rung of the force ladder waits for the process to exit before the next one.
AGENT_WAIT = 10.0  # after guest-shutdown, as long as quit gets
AGENT_TIMEOUT = 2.0  # to reach the agent and hand it guest-shutdown
QUIT_WAIT = 10.0
SIGTERM_WAIT = 10.0
SIGKILL_WAIT = 5.0
# How long a connect NIC may take to reach its listener, and how often we look.
CONNECT_WAIT = 2.0
CONNECT_POLL = 0.1
# Without a pidfd (Python < 3.9 or kernel < 5.3), exit is noticed by polling /proc this often.
PROC_POLL = 0.05
# A call waiting for another call's stop of a VM looks this often whether that call let go of it (gave up or
# died) while the VM still runs; the exit itself is seen at once (pidfd).
JOIN_POLL = 0.25
# In run_dir: held while VMs are launched, so two runs never start the same VM twice.
START_LOCK = ".qemu-init.start.lock"
# A batch launches this many QEMUs at a time (2 per core, at least 4): each spends ~50 ms initialising before
# -daemonize returns, mostly on the CPU, so a few at once fill the cores (20 VMs: 0.4 s instead of 1.1 s on 2 cores).
LAUNCH_PARALLEL = max(4, 2 * (os.cpu_count() or 1))


def launchable(record):
    """The launch order's view of a VM to start (_plan.launch_waves)."""
    nics = record.spec.nics
    return Launchable(record.name, connects=any(backend_of(nic).connects(nic) for nic in nics),
                      listens=any(backend_of(nic).listens(nic) for nic in nics))


def _unused_link_group(ip):
    """A link group (as a string) that no link of ip's namespace is in: random, far above the small numbers
    people give groups, and checked."""
    for _attempt in range(8):
        group = str((1 << 24) + int.from_bytes(os.urandom(3), "big"))
        shown = json.loads(ip.run(["-json", "link", "show", "group", group]) or "[]", strict=False)
        if not any(item.get("ifname") for item in shown):
            return group
    raise QemuInitError("no unused link group found to remove taps with")


def _pidfd(pid):
    """A pidfd for pid (readable once the process exits), or None where the platform has none."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


class VmManager(VmInventory):
    """The VMs of a host, started, stopped and removed (reading them: VmInventory)."""

    # --- what should run -----------------------------------------------------------------
    def binary(self):
        if self._binary is None:
            self._binary = self.module.get_bin_path(self.params.get("qemu_binary") or "qemu-system-x86_64", required=True)
        return self._binary

    def desired_argv(self, record):
        entry = record.entry
        return launch_argv(record.spec, self.binary(), record.run, ports_info(self.registry_snapshot().base, entry.slot),
                           entry.short_name, self._kvm_usable, record.state)

    # --- starting ------------------------------------------------------------------------
    def start(self, records):
        """Launch the given (stopped) VMs: register, make links, listeners first. Returns seconds per VM.

        A VM another run started since it was probed is left alone (it gets no entry in the result).
        """
        if not records:
            return {}
        self.binary()  # a qemu_binary that is not there fails before run_dir or the lock is made
        # Two runs converging the same VMs at once (two playbooks, forks) both found them stopped:
        # they launch one after the other, each only what a fresh look under the lock finds stopped.
        with self._start_lock():
            records = [r for r in records if not self.probe(r).running]
            return self._start(records) if records else {}

    @contextlib.contextmanager
    def _start_lock(self):
        os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        path = os.path.join(self.run_dir, START_LOCK)
        try:
            # O_CLOEXEC: a QEMU launched while we hold it must not inherit (and keep) the lock.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise QemuInitError("cannot open the start lock %s: %s" % (path, exc.strerror)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _start(self, records):
        newly_registered = self._register(records)
        try:
            self._forget_unused_links(records)
            made = self._make_links(records)
        except QemuInitError:
            self._unregister(newly_registered)
            raise
        self._kvm_usable()  # probed once here, not by the launch threads (start() looked the binary up already)

        def launch(record):
            t0 = time.monotonic()
            self._launch(record)
            return round(time.monotonic() - t0, 3)

        started, times = [], {}
        for wave in launch_waves(records, launchable):
            failed = []
            for record, seconds, exc in each(launch, wave, LAUNCH_PARALLEL):
                if exc is None:
                    times[record.name] = seconds
                    started.append(record.name)
                else:
                    self._remove_links(record.spec.netns, made.get(record.name, []))
                    failed.append((record, exc))
            if failed:
                self._unregister([n for n in newly_registered if n in set(r.name for r, _exc in failed)])
                exc = failed[0][1]
                if len(failed) > 1:
                    exc.msg += " (also failed: %s)" % ", ".join(r.name for r, _exc in failed[1:])
                if started:
                    exc.msg += " (already started in this task: %s)" % ", ".join(started)
                exc.args = (exc.msg,)
                raise exc
        return times

    def _register(self, records):
        """Register hand-written VMs that have no registry entry yet; returns their names."""
        missing = [r for r in records if r.entry is None]
        if not missing:
            return []
        with self.registry.locked() as state:
            listening = ListeningPorts(self.module)  # in each VM's own network namespace
            for record in missing:
                record.entry = state.resolve(record.name) or state.plan_register(
                    record.name, None, record.spec.macs(),
                    listening.get(record.spec.netns) | frozenset(record.spec.listened_tcp_ports()))
                state.put(record.entry)
            self.registry.save(state)
        return [r.name for r in missing]

    def _unregister(self, names):
        if not names:
            return
        with self.registry.locked() as state:
            for name in names:
                state.remove(name)
            self.registry.save(state)

    def _make_links(self, records):
        """Create missing bridges and taps of all tap NICs, one `ip` batch per namespace.

        Returns {vm name: [links created for it]} so that a failed launch or `absent` removes
        exactly what we made, never a tap or bridge the operator made.
        """
        # lazy: only a start makes links
        from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand, plan_bridge, plan_tap

        made: dict[str, list[str]] = {}
        by_netns: dict[str | None, list[VmRecord]] = {}
        for record in records:
            by_netns.setdefault(record.spec.netns, []).append(record)
        for netns, group in by_netns.items():
            ip = IpCommand(self.module, netns)
            self._check_host(ip, group)
            links = ip.links()
            lines = []
            if netns and not links.get("lo", {}).get("up"):
                # Loopback listeners (socket NICs, the TCP monitor) need lo up in a fresh namespace.
                lines.append(["link", "set", "dev", "lo", "up"])
            for record in group:
                for tap, bridge in record.spec.taps(record.short_name):
                    try:
                        if bridge not in links:
                            plan = plan_bridge(links, bridge, stp=False)
                            lines += plan.lines
                            plan.update(links)
                        created = tap not in links
                        # A persistent tap with no owner may be attached by any user who can open /dev/net/tun
                        # (while QEMU is not holding it); ours belong to the user QEMU runs as.
                        plan = plan_tap(links, tap, bridge=bridge, owner=os.geteuid() if created else None, up=True)
                    except QemuInitError as exc:
                        # Nothing is made yet (the batch runs below): say which VM's links clash.
                        exc.msg = "VM %s (tap %s on bridge %s): %s" % (record.name, tap, bridge, exc.msg)
                        exc.args = (exc.msg,)
                        raise
                    lines += plan.lines
                    plan.update(links)
                    if created:
                        made.setdefault(record.name, []).append(tap)
            # Note the taps in each VM's run dir before making them: a run killed at any point after
            # this leaves no tap that `absent` would take for the operator's and never remove.
            for record in group:
                if made.get(record.name):
                    self._remember_links(record, made[record.name])
            if lines:
                ip.apply(lines)
        return made

    def _forget_unused_links(self, records):
        """Remove the taps the collection made for a VM that its start will not use: those of NICs or hubs its cfg no
        longer has, and all of them when its cfg names another network namespace now (changed while it was stopped).
        Left, they would hang on their bridges until `absent`, or, recorded under the new namespace, never be
        removed. No QEMU holds them (the VM is being started); a namespace that is gone took its taps with it.
        The taps go one namespace at a time, as in remove_runtime; each record is rewritten once its taps are gone."""
        doomed: dict[str | None, list[str]] = {}
        kept = []
        for record in records:
            known = record.made_links()
            old, taps = known.get("netns"), known.get("taps") or []
            wanted = {tap for tap, _bridge in record.spec.taps(record.short_name)} if old == record.spec.netns else set()
            unused = [tap for tap in taps if tap not in wanted]
            if unused:
                doomed.setdefault(old, []).extend(unused)
                kept.append((record, old, [tap for tap in taps if tap in wanted]))
        for netns, taps in doomed.items():
            if netns is None or netns_exists(netns):
                self._remove_links(netns, taps)
        for record, netns, taps in kept:
            record.record_links(netns, taps)

    def _check_host(self, ip, records):
        """What each NIC's backend needs from ip's namespace before launch (an mcast group's route)."""
        for record in records:
            for i, nic in enumerate(record.spec.nics, start=1):
                def where(fname, i=i):
                    return "nics[%d].%s" % (i - 1, fname)
                problem = backend_of(nic).host_problem(nic, ip, where)
                if problem:
                    raise QemuInitError("VM %s nics[%d] (%s %s): %s"
                                        % (record.name, i - 1, nic.backend, nic.mcast or nic.connect or nic.listen, problem))

    def _remove_links(self, netns, taps):
        if not taps:
            return
        # lazy: only a removal deletes links
        from ansible_collections.qemu_init.qemu.plugins.module_utils._iproute import IpCommand

        ip = IpCommand(self.module, netns)
        links = ip.links()
        doomed = [tap for tap in taps if links.get(tap, {}).get("kind") in ("tap", "tun")]
        if len(doomed) > 1:
            # The kernel unregisters the links of one `link del group` request together, after one RCU grace
            # period; `link del dev` waits for one per tap (40 taps: 0.1 s instead of 0.8 s). So the taps are put
            # in a link group no link of the namespace is in, and that group is deleted.
            group = _unused_link_group(ip)
            ip.apply([["link", "set", "dev", tap, "group", group] for tap in doomed] + [["link", "del", "group", group]])
        elif doomed:
            ip.apply([["link", "del", "dev", doomed[0]]])

    def _launch(self, record):
        run = record.run
        os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        os.makedirs(run.dir, mode=0o700, exist_ok=True)
        os.chmod(run.dir, 0o700)
        for stale in (run.pidfile, run.qmp, run.observe, run.console, run.qga, run.vnc, run.launch_record):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        # Keep the previous boot's console as .1 so markers read after a start are from this boot.
        serial = record.serial_log
        if os.path.exists(serial):
            os.replace(serial, serial + ".1")
        # QEMU opens the log after -daemonize set its umask to 027 and keeps an existing file's mode:
        # made here first, the console (which may show secrets) is owner-only.
        with contextlib.suppress(OSError):  # a missing directory: QEMU's own error says which
            os.close(os.open(serial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        # What the devices need on the host first: the UEFI variables copied, the TPM emulator up.
        ctx = DeviceContext(record.spec, run, record.state, record.short_name, self.module)
        vnc.prepare(ctx)  # the password file the cfg asks for, checked before anything is started
        firmware.prepare(ctx)
        tpm.prepare(ctx)
        try:
            self._launch_qemu(record, ctx)
        except QemuInitError:
            tpm.teardown(ctx)  # swtpm would otherwise wait for a QEMU forever
            raise

    def _launch_qemu(self, record, ctx):
        run = record.run
        serial = record.serial_log
        argv = self.desired_argv(record)
        cmd = list(argv)
        if record.spec.netns:
            cmd = [self.module.get_bin_path("ip", required=True), "netns", "exec", record.spec.netns] + cmd
        # QEMU creates the QMP socket, pidfile and serial log: owner-only from the start. The umask is
        # set in the child only: launches run side by side in threads, a process-wide umask would race.
        rc, out, err = self.module.run_command(cmd, check_rc=False, umask=0o077)
        if rc != 0:
            for leftover in (run.pidfile, run.qmp, run.observe):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
            raise QemuInitError("starting VM %s failed (qemu exit status %d): %s" % (record.name, rc, (err or out).strip()),
                                rc=rc, stderr=err, stdout=out, cmd=cmd)
        for socket_path in (run.qmp, run.observe, run.console, run.qga, run.vnc):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(socket_path, 0o600)
        digest = hashlib.sha256((record.cfg_text or "").encode("utf-8")).hexdigest()
        atomic_write(run.launch_record, json.dumps(dict(argv=argv, cfg_sha256=digest, netns=record.spec.netns,
                                                        started=time.time()), indent=1) + "\n", mode=0o600, durable=False)
        self.probe(record)
        if not record.running:
            raise QemuInitError("VM %s: qemu exited right after starting; see %s" % (record.name, serial))
        dead = self._dead_connections(record)
        if dead:
            # QEMU 7.2 keeps running with a connect NIC that found no listener, and never retries:
            # a silently dead network. Take it down again and say which NIC.
            self.stop([record], 0, True)
            raise QemuInitError("VM %s: %s; start the listening VM first (in one vm call listeners start first), "
                                "then this one" % (record.name, "; ".join(dead)))

    def _dead_connections(self, record):
        """Descriptions of the socket/stream connect NICs QEMU could not connect."""
        connects = [(i, nic) for i, nic in enumerate(record.spec.nics, start=1) if backend_of(nic).connects(nic)]
        if not connects:
            return []
        # No QMP event reports the socket backend's outcome; it is settled for a loopback peer by the
        # time -daemonize returns, a remote one may take a moment: look again for up to CONNECT_WAIT.
        deadline = time.monotonic() + CONNECT_WAIT
        with QmpClient(record.run.qmp, timeout=QMP_TIMEOUT) as qmp:
            while True:
                text = qmp.hmp("info network")
                dead = ["nics[%d] (%s connect %s) is not connected: nothing accepted the connection"
                        % (i - 1, nic.backend, nic.connect)
                        for i, nic in connects if not backend_of(nic).connected(nic, text, i)]
                if not dead or time.monotonic() >= deadline:
                    return dead
                qmp.wait_event("NETDEV_STREAM_CONNECTED", CONNECT_POLL)

    def _remember_links(self, record, made_taps):
        os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        os.makedirs(record.run.dir, mode=0o700, exist_ok=True)
        record.record_links(record.spec.netns, set(record.made_links().get("taps", [])) | set(made_taps))

    # --- stopping ------------------------------------------------------------------------
    def stop(self, records, timeout, force):
        """Power the running VMs off together under one timeout. Returns {name: (method, seconds)}.

        ACPI system_powerdown is pressed, and pressed again every POWERDOWN_RESEND seconds; exit is
        seen through events (pidfd readable, QMP SHUTDOWN or EOF), never by sleeping. After the
        timeout, with force the ladder is quit -> SIGTERM -> SIGKILL; without it, StopTimeout.

        A VM whose stop lock another call holds (it is stopping that VM right now) is not pressed: this
        call waits for that stop (method `joined`), and takes over if that call lets go of a VM still running.
        How the VM went down is read from QEMU's SHUTDOWN event where we see one (_Stopping.outcome).
        """
        waiters, pending = [], []
        try:
            for record in records:
                if record.running:
                    # Pressed as soon as connected: the first guests shut down while we connect to the next ones.
                    waiters.append(_Stopping(record))
                    if not waiters[-1].joined:
                        waiters[-1].press()
            _wait_exit(waiters, timeout)
            pending = [w for w in waiters if not w.done]
            if pending and not force:
                self._finish(waiters)
                raise StopTimeout(_timeout_message(pending, timeout), results=dict((w.record.name, w.result()) for w in waiters))
            for method, action, wait, applies in _LADDER:
                if not pending:
                    break
                if applies is not None and not any(applies(w) for w in pending if not w.joined):
                    continue
                acting = [w for w in pending if not w.joined and (applies is None or applies(w))]  # another call's stop is left to it
                for w in acting:
                    w.method = method
                if method == "agent":
                    # Each agent may take its whole AGENT_TIMEOUT to not answer: asked side by side, so hung agents cost
                    # one timeout, not one per VM; and when no agent took guest-shutdown nothing is waited for.
                    each(action, acting, PROBE_PARALLEL)
                    if not any("agent" in w.sent for w in acting) and not any(w.joined for w in pending):
                        continue
                else:
                    for w in acting:
                        action(w)
                _wait_exit(pending, wait, rung=(method, action))
                pending = [w for w in pending if not w.done]
            self._finish(waiters)
        finally:
            for w in waiters:
                w.close()
        if pending:
            survivors = [w for w in pending if not w.joined]
            msgs = []
            if survivors:
                msgs.append("VM %s survived SIGKILL" % ", ".join("%s (pid %s)" % (w.record.name, w.pid) for w in survivors))
            if len(survivors) < len(pending):
                msgs.append(_joined_message([w for w in pending if w.joined], timeout + _LADDER_SECONDS))
            raise StopTimeout("; ".join(msgs), results=dict((w.record.name, w.result()) for w in waiters))
        return dict((w.record.name, w.result()) for w in waiters)

    def _finish(self, waiters):
        """Tidy the run dirs of the VMs that exited; the call that held a VM's stop does it, before letting go."""
        for w in waiters:
            w.close_session()
            if w.done:
                self._after_exit(w.record, tidy=not w.joined)
            w.release()

    def _after_exit(self, record, tidy=True):
        """The VM's QEMU exited: forget it, and (tidy) remove its pidfile, sockets and launch record.

        Only while the pidfile still names the QEMU that exited: a run that restarted the VM meanwhile owns them.
        """
        if tidy and read_pidfile(record.run.pidfile) in (None, record.pid):
            for path in (record.run.pidfile, record.run.qmp, record.run.observe, record.run.launch_record):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        record.running, record.pid, record.status = False, None, None

    # --- removing ------------------------------------------------------------------------
    def remove(self, records):
        """Remove what the collection made for stopped VMs: taps, run dirs, cfg files, registry entries.

        One `ip` batch per network namespace and one registry update, however many VMs.
        """
        self.remove_runtime(records)
        self.remove_state(records)
        for record in records:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cfg_path(self.config_dir, record.name))
        registered = [r.name for r in records if r.entry is not None]
        if registered:
            with self.registry.locked() as state:
                removed = [name for name in registered if state.remove(name)]
                if removed:
                    self.registry.save(state)

    def remove_state(self, records):
        """The UEFI variables, TPM state and seed of each VM go; its disks only when asked (remove_disks)."""
        for record in records:
            try:
                remove_state(record.state, bool(self.params.get("remove_disks")))
            except OSError as exc:
                raise QemuInitError("VM %s: removing its state in %s failed: %s" % (record.name, record.state.dir, exc)) from exc

    def remove_runtime(self, records):
        """Remove the taps the collection made for stopped VMs and their run dirs (not cfg files, not the registry)."""
        taps: dict[str | None, list[str]] = {}
        for record in records:
            links = record.made_links()
            taps.setdefault(links.get("netns"), []).extend(links.get("taps") or [])
        for netns, names in taps.items():
            self._remove_links(netns, names)
        for record in records:
            shutil.rmtree(record.run.dir, ignore_errors=True)


class StopTimeout(QemuInitError):
    def __init__(self, msg, results):
        super().__init__(msg)
        self.results = results


# The cause in QEMU's SHUTDOWN event when the guest went down by itself (with -no-reboot a reboot ends QEMU
# too), and the causes our own force ladder produces. Anything else while we stop a VM is not our doing.
_GUEST_SHUTDOWN = ("guest-shutdown", "guest-reset")
_SHUTDOWN_BY = {"host-qmp-quit": "quit", "host-signal": "sigterm"}


def _timeout_message(pending, timeout):
    msgs = []
    pressed = [w for w in pending if not w.joined]
    if pressed:
        msgs.append("%s did not power off within %g s after ACPI system_powerdown (pressed %s); still running. The guest may "
                    "not handle the power button (acpid); set force: true to escalate to quit, SIGTERM and SIGKILL"
                    % (", ".join("VM %s" % w.record.name for w in pressed), timeout, ", ".join(str(w.presses) for w in pressed)))
    if len(pressed) < len(pending):
        msgs.append(_joined_message([w for w in pending if w.joined], timeout))
    return "; ".join(msgs)


def _joined_message(joined, seconds):
    return ("%s: another call is stopping %s (it holds %s) and %s not exit within %g s; still running"
            % (", ".join("VM %s" % w.record.name for w in joined), "them" if len(joined) > 1 else "it",
               ", ".join(w.record.run.stop_lock for w in joined), "they did" if len(joined) > 1 else "it did", seconds))


class _Stopping:
    """One VM being stopped by this call: its stop lock, lifecycle QMP session, pidfd, presses and outcome.

    The call that holds the VM's stop lock (run dir, flock) presses and escalates; a second call finds it held,
    is `joined`, and only waits for the exit, looking every JOIN_POLL s whether the first call let go (it gave
    up, or died) while the VM still runs: then it takes over. The holder keeps a QMP session open on the
    lifecycle socket until the exit, to see QEMU's SHUTDOWN event and its cause: that tells a guest that
    powered off from a QEMU that vanished (SIGKILL, a crash) or was ended by someone else. A VM launched before
    the observer monitor existed has only qmp.sock, which observers need too: it is not held, each press
    connects for one command, and its outcome is the rung we were on.
    """

    def __init__(self, record):
        self.record = record
        self.pid = record.pid
        self.t0 = time.monotonic()
        self.last_press = self.last_look = self.t0
        self.presses = 0
        self.method = "acpi"        # the rung we are on
        self.sent = set()           # what this call did to QEMU beyond pressing: quit, sigterm, sigkill
        self.done = False
        self.seconds = None
        self.shutdown = None        # the data of QEMU's SHUTDOWN event, once seen
        self.qmp = None             # the held lifecycle session
        self.watched = False        # a session was held from before the exit: no SHUTDOWN then means something
        self.lock_fd = None
        self.hold = observer_socket(record.run, proc_cmdline(self.pid)) != record.run.qmp
        self.pidfd = _pidfd(self.pid)
        self.joined = not self._lock()
        if not self.joined:
            self._connect()

    # -- the stop lock --------------------------------------------------------------------
    def _lock(self):
        """Take the VM's stop lock without waiting; False while another call holds it."""
        if self.lock_fd is None:
            try:
                # O_CLOEXEC: a QEMU this process launches later (restarted) must not inherit the lock.
                self.lock_fd = os.open(self.record.run.stop_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                return False  # the run dir is gone: another call stopped and removed the VM
            except OSError as exc:
                raise QemuInitError("VM %s: cannot open the stop lock %s: %s" % (self.record.name, self.record.run.stop_lock, exc.strerror)) from exc
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def tick(self, now, rung=None):
        """Called while waiting: the holder presses again when due (rung None); a joined waiter looks whether
        the other call let go, and if the VM still runs, takes over: presses, or applies the ladder's rung."""
        if self.joined:
            if now - self.last_look < JOIN_POLL:
                return
            self.last_look = now
            if not self._lock() or self.check_exit():
                return  # still theirs, or gone (then it stays `joined`: their stop, or whatever ended it)
            self.joined = False
            self._connect()
            if rung is None:
                self.press()
            else:
                self.method = rung[0]
                rung[1](self)
        elif rung is None and now - self.last_press >= POWERDOWN_RESEND:
            self.press()

    def next_tick(self, rung=None):
        if self.joined:
            return self.last_look + JOIN_POLL
        return self.last_press + POWERDOWN_RESEND if rung is None else float("inf")

    # -- QMP --------------------------------------------------------------------------------
    def _connect(self):
        if not self.hold:
            return
        try:
            self.qmp = QmpClient(self.record.run.qmp, timeout=QMP_TIMEOUT)
            self.watched = True
        except (QmpConnectError, QmpClosed, QmpTimeout):
            self.qmp = None  # it may be exiting right now; the pidfd or /proc will tell

    def press(self):
        self.last_press = time.monotonic()
        if self._command("system_powerdown"):
            self.presses += 1

    def quit(self):
        self.sent.add("quit")
        self._command("quit")

    def has_agent(self):
        return bool(self.record.spec and self.record.spec.guest_agent)

    def agent_shutdown(self):
        """Ask the guest agent to power the guest off (guest-shutdown; it sends no reply). A guest whose ACPI
        handler is missing or stuck may still run its agent. An agent that does not answer is left for quit."""
        if not self.has_agent():
            return
        # lazy: only guests with an agent
        from ansible_collections.qemu_init.qemu.plugins.module_utils._qga import GuestAgent, QgaError

        try:
            with GuestAgent(self.record.run.qga, AGENT_TIMEOUT) as agent:
                agent.shutdown()
            self.sent.add("agent")
        except (QgaError, OSError):  # OSError: the guest closed the port while we wrote (it is going down)
            pass

    def _command(self, name):
        if self.qmp is not None:
            if self.qmp.closed:
                return False
            try:
                self.qmp.command(name)
                return True
            except (QmpClosed, QmpTimeout):
                return False
        # No session held: one connection for this command, so the socket is free again right after.
        try:
            with QmpClient(self.record.run.qmp, timeout=min(QMP_TIMEOUT, POWERDOWN_RESEND)) as qmp:
                qmp.command(name)
            return True
        except (QmpConnectError, QmpClosed, QmpTimeout):
            return False

    def signal(self, signum):
        # Only the process that is still this VM's QEMU (same pidfile on its command line) is signalled.
        if is_live_qemu(self.pid) and self.record.run.pidfile in proc_cmdline(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)
                self.sent.add("sigkill" if signum == signal.SIGKILL else "sigterm")

    # -- waiting ------------------------------------------------------------------------------
    def fds(self):
        fds = []
        if self.pidfd is not None:
            fds.append(self.pidfd)
        if self.qmp is not None and not self.qmp.closed:
            fds.append(self.qmp.fileno())
        return fds

    def on_readable(self, fd):
        if self.qmp is not None and fd == self.qmp.fileno():
            self._take_events()

    def _take_events(self):
        if self.qmp is None:
            return
        for event in self.qmp.read_available():
            if event.get("event") == "SHUTDOWN" and self.shutdown is None:
                self.shutdown = event.get("data") or {}

    def check_exit(self):
        """Has the process exited? A pidfd says so exactly; without one, /proc (a zombie counts)."""
        if self.done:
            return True
        if self.pidfd is not None:
            exited = bool(select.select([self.pidfd], [], [], 0)[0])
        else:
            exited = proc_state(self.pid) in (None, "Z", "X", "x")
        if exited:
            self.done = True
            self.seconds = round(time.monotonic() - self.t0, 3)
            if self.qmp is not None:
                # QEMU wrote its SHUTDOWN event before it exited: it is in the socket now, with the EOF.
                self._take_events()
        return exited

    def needs_polling(self):
        return self.pidfd is None

    def outcome(self):
        """stop_method of a VM that exited, from what we did and what QEMU said."""
        if self.joined:
            return "joined"  # another call held the stop until the end
        if "sigkill" in self.sent:
            return "sigkill"
        if self.shutdown is not None:
            cause = self.shutdown.get("reason")
            if cause in _GUEST_SHUTDOWN:
                return "agent" if "agent" in self.sent else "acpi"
            if _SHUTDOWN_BY.get(cause) in self.sent:
                return self.method  # our quit or SIGTERM; the last rung it took
            return "external"  # quit through another monitor, a signal from elsewhere, a guest panic...
        if self.watched or not (self.presses or self.sent):
            # Gone without a SHUTDOWN event and not by our SIGKILL (killed, crashed), or before anything of ours
            # reached it.
            return "external"
        return self.method  # nothing to tell by (no session): the rung we were on

    def result(self):
        return (self.outcome(), self.seconds) if self.done else (None, None)

    def close_session(self):
        if self.qmp is not None:
            self.qmp.close()

    def release(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing the last fd of the open file lets go of the flock
            self.lock_fd = None

    def close(self):
        self.close_session()
        self.release()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


# (stop_method, action, seconds to wait for the exit, which VMs the rung is for); a rung no pending VM is for is
# skipped, waiting nothing.
_LADDER = (("agent", _Stopping.agent_shutdown, AGENT_WAIT, _Stopping.has_agent),
           ("quit", _Stopping.quit, QUIT_WAIT, None),
           ("sigterm", lambda w: w.signal(signal.SIGTERM), SIGTERM_WAIT, None),
           ("sigkill", lambda w: w.signal(signal.SIGKILL), SIGKILL_WAIT, None))
_LADDER_SECONDS = AGENT_WAIT + QUIT_WAIT + SIGTERM_WAIT + SIGKILL_WAIT


def _wait_exit(waiters, timeout, rung=None):
    """Wait until every waiter's process exited or timeout passed; events, not sleeps.

    rung None is the ACPI phase (presses repeated); else (method, action) of the force ladder's rung, which a
    joined waiter that takes over meanwhile applies at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        pending = [w for w in waiters if not w.check_exit()]
        now = time.monotonic()
        if not pending or now >= deadline:
            return
        for w in pending:
            w.tick(now, rung)
        pending = [w for w in pending if not w.done]
        if not pending:
            continue
        wait = min([deadline - now] + [w.next_tick(rung) - now for w in pending])
        if any(w.needs_polling() for w in pending):
            wait = min(wait, PROC_POLL)
        owners = {}
        for w in pending:
            for fd in w.fds():
                owners[fd] = w
        if not owners:
            # Nothing to watch (no pidfd, QMP gone): /proc is all there is.
            wait = min(wait, PROC_POLL)
        readable = select.select(list(owners), [], [], max(wait, 0))[0]
        for fd in readable:
            owner = owners[fd]
            if fd != owner.pidfd:
                owner.on_readable(fd)


# --- readiness -------------------------------------------------------------------------------
WAIT_FOR = ("none", "agent", "ssh", "serial")
# The states after which a call waits for its guests (wait_for).
WAITING_STATES = ("started", "restarted", "present")
# The longest wait_timeout (68 years): far beyond any wait, and a number every timeout below can carry (Python's
# thread join and lock waits overflow from about 9.2e9 s; a huge int cannot even become a float).
MAX_WAIT_TIMEOUT = 2 ** 31 - 1
SSH_PORT = 22


def ssh_forward(spec):
    """(host, port) where a NIC forwards to the guest's SSH port (a user NIC's hostfwd), or None."""
    for nic in spec.nics:
        forward = backend_of(nic).host_forward(nic, SSH_PORT)
        if forward:
            return forward
    return None


def wait_timeout_problem(timeout):
    """Why wait_timeout cannot be used (None when it can): the vm and vms modules refuse it before anything starts."""
    if not 0 <= timeout <= MAX_WAIT_TIMEOUT:
        return "wait_timeout: must be 0 to %d seconds, not %d" % (MAX_WAIT_TIMEOUT, timeout)
    return None


def check_waitable(name, spec, wait_for, pattern):
    """ParameterError when VM `name` (its spec) offers no way to wait for it as wait_for asks; checked before
    anything is started."""
    if wait_for == "agent" and not spec.guest_agent:
        raise ParameterError("wait_for", "agent: VM %s has no guest agent channel (set guest_agent: true)" % name)
    if wait_for == "ssh" and not ssh_forward(spec) and not (spec.guest_agent and not spec.netns):
        raise ParameterError("wait_for", "ssh: VM %s has no user NIC forwarding a host port to guest port 22 (hostfwd: "
                             "[tcp:127.0.0.1:PORT-:22]) and no guest agent to report its address" % name)
    if wait_for == "serial":
        if not pattern:
            raise ParameterError("wait_pattern", "wait_for: serial needs wait_pattern (a regular expression)")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ParameterError("wait_pattern", "%r is not a regular expression: %s" % (pattern, exc)) from None


def ready_target(record, wait_for, pattern, started=None):
    """The _ready.Target of a running VM for wait_for (check_waitable first)."""
    # lazy: only calls that wait load the readiness checks
    from ansible_collections.qemu_init.qemu.plugins.module_utils._ready import Target

    spec = record.spec
    check_waitable(record.name, spec, wait_for, pattern)

    def alive(pid=record.pid):
        return is_live_qemu(pid)

    if wait_for == "agent":
        return Target(record.name, "agent", alive, agent_socket=record.run.qga, started=started)
    if wait_for == "ssh":
        forward = ssh_forward(spec)
        if forward:
            return Target(record.name, "ssh", alive, host=forward[0], port=forward[1], started=started)
        # The guest's own addresses, as its agent reports them (a tap NIC on a bridge the host routes to).
        return Target(record.name, "ssh", alive, port=SSH_PORT, agent_socket=record.run.qga,
                      networks=("0.0.0.0/0", "::/0"), started=started)
    return Target(record.name, "serial", alive, serial_log=record.serial_log, pattern=pattern, started=started)


def wait_until_ready(records, wait_for, timeout, pattern, results):
    """Wait for the running records (_ready.wait_ready), all in parallel under one timeout, and merge each VM's
    readiness (readiness_keys) into results[name]. Raises QemuInitError naming the VMs not ready (they keep
    running); their results are merged first."""
    from ansible_collections.qemu_init.qemu.plugins.module_utils._ready import failure_message, wait_ready

    targets = [ready_target(r, wait_for, pattern) for r in records if r.running]
    ready = wait_ready(targets, timeout) if targets else {}
    for name, facts in ready.items():
        results[name].update(readiness_keys(facts))
    message = failure_message(ready, timeout)
    if message:
        raise QemuInitError(message)


def readiness_keys(result):
    """What a VM's result gains from its readiness (DESIGN.md: ready, ready_seconds, addresses, ssh)."""
    return dict(ready=result.get("ready", False), ready_seconds=result.get("ready_seconds"),
                addresses=result.get("addresses") or (result.get("guest") or {}).get("addresses") or [],
                ssh=result.get("ssh"))
