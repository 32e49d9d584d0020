# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting until guests are ready (`wait_for`: agent, ssh, serial), for many VMs at once under one timeout.

One thread per VM: each check is blocking socket or file I/O with a short deadline of its own, so a thread per
VM keeps the code plain and the VMs truly parallel (a hundred VMs are a hundred mostly sleeping threads). Every
attempt is bounded by `attempt_timeout` and by what is left of the overall timeout; between attempts a thread
waits `interval` (0.5 s): a VM is seen ready at most about half a second after it is, and no fixed long sleep
hides a ready guest.

Readiness, per method:
- ssh: a TCP connect to the host and port the caller gives (a user NIC's hostfwd on 127.0.0.1, or an address
  the caller accepted) and a line starting `SSH-` from the server. A connect alone proves nothing: QEMU's
  user-mode network accepts a forwarded connection before the guest listens, then closes it. No name is
  resolved (an IP address literal only): DNS could block past any deadline. With no host but an agent
  socket, the addresses the guest agent reports are tried, only those inside the networks the caller passed.
- agent: the guest agent answers (guest-sync-delimited and the facts of _qga); the facts are returned.
- serial: a regular expression (MULTILINE, carriage returns removed) found in the serial log. The log is read
  incrementally from the last offset, so a large log costs its new bytes only; a match may span reads.
A VM whose QEMU is gone (its `alive()` says so) stops waiting at once, not ready, with the reason. At the timeout
the VMs not ready are reported with what was last seen; the caller fails naming them (failure_message()).

Measured with the project's Debian 12 image (TCG, q35, 2 vCPUs, 1 GiB, OVMF, user NIC with hostfwd on 127.0.0.1,
a seed from _seed; the host's load ~2 from other work), one wait_ready() for the three methods of one guest, seconds
after launch: agent 52.7 (18 attempts), SSH banner 53.9 (33 attempts), serial `<name> login:` 59.3 (119 attempts).
A second run at load ~4-5 (the serial tail then read through _files.read_appended): 63.5, 66.9 and 70.3 s.
Before the guest's sshd listens, slirp accepts and then holds or closes the forwarded connection: an attempt
then costs up to attempt_timeout, which is why that stays short.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_appended
from ansible_collections.qemu_init.qemu.plugins.module_utils._qga import GuestAgent, QgaError

METHODS = ("agent", "ssh", "serial")
INTERVAL = 0.5
ATTEMPT_TIMEOUT = 3.0
# RFC 4253 4.2: the server may send other lines before its identification string; these bound what we read.
_BANNER_LIMIT = 8192
# The serial reader keeps this much of the text before the new bytes, so a match spanning two reads is found.
_SERIAL_CARRY = 16384
_SERIAL_CHUNK = 1024 * 1024


class Target(t.NamedTuple):
    """One VM to wait for. `alive()` tells whether its QEMU still runs; the other fields depend on `method`.

    ssh: `host` (an IP address) and `port`; or no host, `agent_socket` and `networks` (agent-reported addresses
    inside them are tried). agent: `agent_socket`. serial: `serial_log` and `pattern`, read from `serial_offset`.
    `started`: time.monotonic() of the launch, to count ready_seconds from it (default: the start of the wait).
    """

    name: str
    method: str
    alive: t.Callable[[], bool]
    host: str | None = None
    port: int | None = None
    agent_socket: str | None = None
    networks: t.Sequence[str] = ()
    serial_log: str | None = None
    pattern: str | None = None
    serial_offset: int = 0
    started: float | None = None


class SerialTail:
    """Incremental regex search in a growing log file: each poll reads only the bytes added since the last."""

    def __init__(self, path: str, pattern: str, offset: int = 0) -> None:
        self.path = path
        self.regex = re.compile(pattern, re.MULTILINE)
        self.offset = offset
        self.carry = ""
        self.identity: tuple[int, int] | None = None
        self.decoder_tail = b""  # an incomplete UTF-8 sequence at the end of the last read

    def poll(self) -> str | None:
        """The first match in what the log holds now (its text), or None; FileReadError for an unreadable log."""
        while True:
            read = read_appended(self.path, self.offset, self.identity, "serial log", limit=_SERIAL_CHUNK)
            if read is None:
                return None  # QEMU has not created it yet
            data, offset, self.identity = read
            if offset - len(data) != self.offset:  # another file at the path, or truncated: started over
                self.carry, self.decoder_tail = "", b""
            self.offset = offset
            if not data:
                return None
            text, self.decoder_tail = _decode_prefix(self.decoder_tail + data)
            window = self.carry + text.replace("\r", "")
            match = self.regex.search(window)
            if match:
                return match.group(0)
            self.carry = window[-_SERIAL_CARRY:]


def _decode_prefix(data: bytes) -> tuple[str, bytes]:
    """UTF-8 text of `data` (invalid bytes replaced), and up to 3 trailing bytes that may start a character."""
    for cut in range(1, 4):
        if len(data) >= cut and data[-cut] & 0xC0 == 0xC0:  # a lead byte within the last 3 bytes
            needed = 2 if data[-cut] < 0xE0 else 3 if data[-cut] < 0xF0 else 4
            if needed > cut:
                return data[:-cut].decode("utf-8", "replace"), data[-cut:]
            break
    return data.decode("utf-8", "replace"), b""


def ssh_banner(host: str, port: int, timeout: float) -> str | None:
    """The SSH identification line served at host:port, or None when there is none within `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while len(data) < _BANNER_LIMIT:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                chunk = sock.recv(4096)
                if not chunk:
                    return None  # closed: slirp forwarding to a port nobody listens on yet
                data += chunk
                *lines, data = data.split(b"\n")
                for line in lines:
                    if line.startswith(b"SSH-"):
                        return line.rstrip(b"\r").decode("ascii", "replace")
                if data.startswith(b"SSH-") and len(data) >= 255:  # RFC 4253: at most 255 characters
                    return data[:255].decode("ascii", "replace")
            return None
    except OSError:
        return None


def _check_target(target: Target) -> None:
    name = target.name
    if target.method not in METHODS:
        raise ParameterError("wait_for", "VM %s: %r is not one of %s" % (name, target.method, ", ".join(METHODS)))
    if target.method == "ssh":
        if target.host is None and not (target.agent_socket and target.networks):
            raise ParameterError("wait_for", "VM %s: ssh needs a host and port, or the guest agent and accepted networks" % name)
        if target.host is not None:
            try:
                ipaddress.ip_address(target.host)
            except ValueError as exc:
                raise ParameterError("wait_for", "VM %s: ssh host %r is not an IP address" % (name, target.host)) from exc
        if not isinstance(target.port, int) or isinstance(target.port, bool) or not 0 < target.port < 65536:
            raise ParameterError("wait_for", "VM %s: ssh port %r is not a TCP port" % (name, target.port))
        for network in target.networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ParameterError("wait_for", "VM %s: %r is not a network" % (name, network)) from exc
    elif target.method == "agent":
        if not target.agent_socket:
            raise ParameterError("wait_for", "VM %s: waiting for the agent needs guest_agent: true" % name)
    else:
        if not target.serial_log or not target.pattern:
            raise ParameterError("wait_for", "VM %s: serial needs a serial log file and wait_pattern" % name)
        try:
            re.compile(target.pattern)
        except re.error as exc:
            raise ParameterError("wait_pattern", "%r is not a regular expression: %s" % (target.pattern, exc)) from exc


def _agent_addresses(target: Target, timeout: float) -> list[str]:
    """Addresses the guest agent reports inside the caller's networks (in the agent's order)."""
    networks = [ipaddress.ip_network(n, strict=False) for n in target.networks]
    try:
        with GuestAgent(t.cast(str, target.agent_socket), timeout) as agent:
            facts = agent.facts()
    except QgaError:
        return []
    found = []
    for address in facts.get("addresses") or []:
        ip = ipaddress.ip_address(address)
        if any(ip.version == n.version and ip in n for n in networks):
            found.append(address)
    return found


class _Waiter:
    """The wait of one VM, run in a thread of its own; `result` is filled when it ends."""

    def __init__(self, target: Target, begin: float, deadline: float, interval: float, attempt_timeout: float) -> None:
        self.target = target
        self.begin = target.started if target.started is not None else begin
        self.deadline = deadline
        self.interval = interval
        self.attempt_timeout = attempt_timeout
        self.result: dict[str, t.Any] = dict(ready=False, ready_seconds=None, method=target.method, reason=None, attempts=0)
        if target.method == "ssh":
            self.result["ssh"] = dict(host=target.host, port=target.port) if target.host else None
        if target.method == "agent":
            self.result.update(guest=None, addresses=[])
        self.tail = SerialTail(t.cast(str, target.serial_log), t.cast(str, target.pattern), target.serial_offset) \
            if target.method == "serial" else None
        self.last = "nothing seen yet"

    def _attempt(self, timeout: float) -> bool:
        target = self.target
        if target.method == "ssh":
            hosts = [target.host] if target.host else _agent_addresses(target, timeout)
            if not hosts:
                self.last = "the guest agent reports no address in %s" % ", ".join(target.networks)
                return False
            for host in hosts:
                left = self.deadline - time.monotonic()
                banner = ssh_banner(host, t.cast(int, target.port), max(0.05, min(timeout, left)))
                if banner:
                    self.result.update(ssh=dict(host=host, port=target.port), banner=banner)
                    return True
            self.last = "no SSH banner on %s" % ", ".join("%s:%d" % (h, t.cast(int, target.port)) for h in hosts)
            return False
        if target.method == "agent":
            try:
                with GuestAgent(t.cast(str, target.agent_socket), timeout) as agent:
                    facts = agent.facts()
            except QgaError as exc:
                self.last = exc.msg
                return False
            self.result.update(guest=facts, addresses=facts.get("addresses") or [])
            return True
        tail = t.cast(SerialTail, self.tail)
        try:
            found = tail.poll()
        except QemuInitError as exc:
            self.last = exc.msg
            return False
        if found is None:
            self.last = "no match for %r in %s (%d bytes read)" % (target.pattern, tail.path, tail.offset)
            return False
        self.result["match"] = found[:200]
        return True

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug must not leave the VM as "still waiting" forever: say it
            self.result["reason"] = "waiting failed: %s: %s" % (type(exc).__name__, exc)

    def _run(self) -> None:
        while True:
            if not self.target.alive():
                self.result["reason"] = "QEMU exited before the guest was ready (last: %s)" % self.last
                return
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.result["reason"] = "not ready in time (last: %s)" % self.last
                return
            self.result["attempts"] += 1
            started = time.monotonic()
            if self._attempt(min(self.attempt_timeout, left)):
                self.result.update(ready=True, ready_seconds=round(time.monotonic() - self.begin, 2))
                return
            # Sleep what is left of the interval: an attempt that took long (a timeout) retries at once.
            pause = self.interval - (time.monotonic() - started)
            if pause > 0:
                time.sleep(min(pause, max(0.0, self.deadline - time.monotonic())))


def wait_ready(targets: t.Sequence[Target], timeout: float, interval: float = INTERVAL,
               attempt_timeout: float = ATTEMPT_TIMEOUT) -> dict[str, dict[str, t.Any]]:
    """Wait for every target in parallel, at most `timeout` seconds in all; per VM name its result:

    {ready, ready_seconds (from `started` or the start of the wait; None when not ready), method, reason (why
    not ready, else None), attempts} plus, for agent, {guest (the _qga facts), addresses}, for ssh {ssh: {host,
    port}, banner}, for serial {match}. ParameterError (before any waiting) for a target that cannot be waited for.
    """
    names = [target.name for target in targets]
    if len(set(names)) != len(names):
        raise ParameterError("wait_for", "a VM is listed twice")
    for target in targets:
        _check_target(target)
    begin = time.monotonic()
    deadline = begin + timeout
    waiters = [_Waiter(target, begin, deadline, interval, attempt_timeout) for target in targets]
    if len(waiters) == 1:
        waiters[0].run()  # one VM: no thread
    else:
        # Daemon threads: each ends by the deadline on its own; a stuck one must not keep the module alive.
        threads = [threading.Thread(target=w.run, name="wait-%s" % w.target.name, daemon=True) for w in waiters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + attempt_timeout + 1.0)
    results = {}
    for waiter in waiters:
        if not waiter.result["ready"] and waiter.result["reason"] is None:  # a thread still in its attempt
            waiter.result["reason"] = "not ready in time (last: %s)" % waiter.last
        results[waiter.target.name] = dict(waiter.result)
    return results


def not_ready(results: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[str]:
    """Names of the VMs that are not ready, in the order of `results`."""
    return [name for name, result in results.items() if not result["ready"]]


def failure_message(results: t.Mapping[str, t.Mapping[str, t.Any]], timeout: float) -> str | None:
    """The message naming the VMs not ready and why (they keep running), or None when all are ready."""
    late = not_ready(results)
    if not late:
        return None
    return "%d VM%s not ready within %g s (left running): %s" % (
        len(late), "" if len(late) == 1 else "s", timeout, "; ".join("%s: %s" % (name, results[name]["reason"]) for name in late))
