# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A client of the QEMU guest agent (qemu-ga in the guest), over the VM's agent socket; standard library only.

The agent speaks QMP-like JSON over a virtio-serial port with no greeting and no session: whatever an earlier
client left unread may still be in the pipe, and the agent may have half a request buffered. So every exchange
starts with a sync (QGA reference, "guest-sync-delimited"): a 0xFF byte makes the agent drop a partial request,
then guest-sync-delimited with a fresh random id is answered with 0xFF followed by that id; everything before
it is stale and skipped. Every read has a deadline: an agent that is not running (or hung) costs at most the
timeout, never a blocked call.
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import time
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

TIMEOUT = 3.0


class QgaError(QemuInitError):
    """The agent did not answer in time, or answered with an error."""


class GuestAgent:
    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buffer = b""
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise QgaError("guest agent socket %s: %s" % (path, exc.strerror or exc)) from exc

    def __enter__(self) -> GuestAgent:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # --- the protocol ------------------------------------------------------------------------
    def _send(self, execute: str, arguments: dict[str, t.Any] | None = None) -> None:
        message: dict[str, t.Any] = {"execute": execute}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def _read_until(self, done: t.Callable[[], int], deadline: float, what: str) -> int:
        """Read until done() gives a position >= 0 in the buffer; returns it."""
        while True:
            found = done()
            if found >= 0:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise QgaError("guest agent on %s did not answer %s within %.3g s (is qemu-guest-agent running in the guest?)"
                               % (self.path, what, self.timeout))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                raise QgaError("guest agent socket %s: %s" % (self.path, exc.strerror or exc)) from exc
            if not chunk:
                raise QgaError("guest agent socket %s closed (the VM is exiting?)" % self.path)
            self.buffer += chunk

    def _read_message(self, deadline: float, what: str) -> dict[str, t.Any]:
        while True:
            end = self._read_until(lambda: self.buffer.find(b"\n"), deadline, what)
            line, self.buffer = self.buffer[:end].strip(b"\xff \r\t"), self.buffer[end + 1:]
            if not line:
                continue
            try:
                message = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                continue  # a fragment of something stale
            if isinstance(message, dict):
                return message

    def sync(self) -> None:
        """Make the channel clean: only answers to our next request follow."""
        token = random.randint(1, 2 ** 31 - 1)
        deadline = time.monotonic() + self.timeout
        self.sock.sendall(b"\xff")
        self._send("guest-sync-delimited", {"id": token})
        while True:
            start = self._read_until(lambda: self.buffer.find(b"\xff"), deadline, "guest-sync-delimited")
            self.buffer = self.buffer[start + 1:]
            message = self._read_message(deadline, "guest-sync-delimited")
            if message.get("return") == token:
                return

    def command(self, execute: str, arguments: dict[str, t.Any] | None = None, expect_reply: bool = True) -> t.Any:
        """Run one agent command after a sync; its `return` value."""
        self.sync()
        self._send(execute, arguments)
        if not expect_reply:
            return None
        message = self._read_message(time.monotonic() + self.timeout, execute)
        if "error" in message:
            error = message["error"]
            raise QgaError("guest agent: %s failed: %s" % (execute, error.get("desc", error)))
        return message.get("return")

    # --- what the collection asks ----------------------------------------------------------
    def ping(self) -> None:
        self.command("guest-ping")

    def shutdown(self) -> None:
        """Ask the guest to power off; the agent sends no reply on success (the guest goes away)."""
        self.command("guest-shutdown", {"mode": "powerdown"}, expect_reply=False)

    def facts(self) -> dict[str, t.Any]:
        """{hostname, os, interfaces: [{name, mac, addresses}], addresses} as vm_info returns them."""
        hostname = (self.command("guest-get-host-name") or {}).get("host-name")
        try:
            osinfo = self.command("guest-get-osinfo") or {}
        except QgaError:
            osinfo = {}  # older agents
        interfaces = [interface_facts(i) for i in self.command("guest-network-get-interfaces") or []]
        interfaces = [i for i in interfaces if i["name"] != "lo"]
        keys = ("id", "name", "pretty-name", "version", "version-id", "kernel-release", "machine")
        return dict(hostname=hostname, os=dict((k.replace("-", "_"), osinfo.get(k)) for k in keys) if osinfo else None,
                    interfaces=interfaces, addresses=[a for i in interfaces for a in i["addresses"]])


def interface_facts(raw: dict[str, t.Any]) -> dict[str, t.Any]:
    """One interface from guest-network-get-interfaces: its global addresses only (no loopback, no link-local)."""
    addresses = []
    for entry in raw.get("ip-addresses") or []:
        try:
            address = ipaddress.ip_address(entry.get("ip-address", "").split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local:
            continue
        addresses.append(str(address))
    mac = raw.get("hardware-address")
    return dict(name=raw.get("name"), mac=mac.upper() if mac else None, addresses=addresses)


def guest_facts(path: str, timeout: float = TIMEOUT) -> dict[str, t.Any] | None:
    """The agent's facts, or None when there is no agent socket or the agent does not answer in time."""
    try:
        with GuestAgent(path, timeout) as agent:
            return agent.facts()
    except QgaError:
        return None
