# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small QMP client over QEMU's unix socket (stdlib only: it runs on the managed host).

QMP sends one JSON object per line. Replies and asynchronous events share the stream, so
events that arrive while we wait for a reply are queued for events()/wait_event().
EOF on the socket is how we learn that QEMU exited (the process may linger as a zombie,
see TOOLING.md). fileno() and read_available() let the stop logic poll many VMs at once.
"""

from __future__ import annotations

import json
import math
import select
import socket
import time
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

DEFAULT_TIMEOUT = 10.0
_RECV_SIZE = 65536

if t.TYPE_CHECKING:
    # A QMP message (greeting, reply or event) as decoded from JSON.
    Message = dict[str, t.Any]


class QmpError(QemuInitError):
    """QEMU answered a command with an error; error_class is e.g. 'CommandNotFound'."""

    def __init__(self, command: str, error_class: str | None, desc: str | None) -> None:
        super().__init__("QMP command %s failed: %s: %s" % (command, error_class, desc))
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QmpConnectError(QemuInitError):
    """The QMP socket is missing, refuses connections or cannot be used."""


class QmpTimeout(QemuInitError):
    """QEMU did not answer in time."""


class QmpClosed(QemuInitError):
    """QEMU closed the connection: normally because it exited."""


class QmpClient:
    """One QMP session: connect, read the greeting, negotiate capabilities.

    `timeout` bounds connecting (greeting included) and is the default for command(). With negotiate=False the
    caller sends qmp_capabilities itself, typically in one pipeline() with its first command.
    """

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT, negotiate: bool = True) -> None:
        self.path = path
        self.timeout = timeout
        self.closed = False  # True once EOF was seen: QEMU is gone or dropped us
        self.greeting: Message | None = None
        self._buf = b""
        self._events: list[Message] = []
        self._next_id = 0
        self._pending: dict[str, Message | None] = {}  # request id -> its reply, once it came
        deadline = time.monotonic() + timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(path)
        except OSError as err:  # missing file, refused (QEMU gone), not a socket, path too long...
            self._sock.close()
            raise QmpConnectError("cannot connect to QMP socket %s: %s" % (path, err.strerror or err)) from err
        self._poller = select.poll()
        self._poller.register(self._sock, select.POLLIN)
        try:
            while self.greeting is None:
                if not self._receive(deadline - time.monotonic()):
                    # QEMU serves one QMP client at a time; the kernel still accepts the
                    # connection into the backlog, so a busy monitor looks like silence.
                    raise QmpTimeout("no QMP greeting on %s within %.1f s (is another client connected?)"
                                     % (path, timeout))
                if self.closed:
                    raise QmpClosed("QMP socket %s closed before the greeting" % path)
            if negotiate:
                self.command("qmp_capabilities", timeout=max(deadline - time.monotonic(), 0))
        except BaseException:
            self.close()
            raise

    # -- plumbing ----------------------------------------------------------------------

    def fileno(self) -> int:
        """The socket's fd, for select()/poll() over several clients."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket (idempotent). Does not stop QEMU."""
        self._sock.close()

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, wait: float) -> bool:
        """Wait up to `wait` s for data, parse complete lines; False if nothing came."""
        if self.closed:
            return True
        if not self._poller.poll(max(0, math.ceil(wait * 1000))):
            return False
        try:
            data = self._sock.recv(_RECV_SIZE)
        except ConnectionResetError:  # QEMU's `quit` sometimes ends with RST rather than FIN
            data = b""
        if not data:
            self.closed = True
            return True
        self._buf += data
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if not sep:
                break  # a partial line stays buffered until the rest arrives
            self._buf = rest
            if line.strip():
                self._dispatch(line)
        return True

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line.decode("utf-8"))
        except ValueError as err:
            raise QemuInitError("unparsable QMP message on %s: %s" % (self.path, err), line=repr(line)) from err
        if "event" in msg:
            self._events.append(msg)
        elif "QMP" in msg:
            self.greeting = msg
        elif msg.get("id") in self._pending and ("return" in msg or "error" in msg):
            self._pending[msg["id"]] = msg
        # Anything else is a late reply to a command that timed out: its caller gave up.

    def _closed_error(self) -> QmpClosed:
        return QmpClosed("QMP connection %s closed (QEMU exited?)" % self.path)

    # -- commands ----------------------------------------------------------------------

    def command(self, name: str, arguments: dict[str, t.Any] | None = None, timeout: float | None = None) -> t.Any:
        """Run a QMP command; return its `return` value or raise QmpError/QmpTimeout/QmpClosed."""
        return self.pipeline([(name, arguments)], timeout)[0]

    def pipeline(self, commands: t.Sequence[str | tuple[str, dict[str, t.Any] | None]], timeout: float | None = None) -> list[t.Any]:
        """Send several commands in one write and wait for all their replies: one round trip instead of one per
        command (QEMU runs them in order). Each command is a name or (name, arguments). Their `return` values in
        order; the first error (in the order sent) raises QmpError, QmpTimeout or QmpClosed."""
        if self.closed:
            raise self._closed_error()
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        ids, lines = [], []
        for item in commands:
            name, arguments = (item, None) if isinstance(item, str) else item
            self._next_id += 1
            # Ids tie replies to requests, so a reply arriving after a timeout is not mistaken
            # for the answer to a later command.
            ids.append(("qi-%d" % self._next_id, name))
            request: dict[str, t.Any] = {"execute": name, "id": ids[-1][0]}
            if arguments:
                request["arguments"] = arguments
            lines.append(json.dumps(request).encode("utf-8") + b"\r\n")
        names = ", ".join(name for _id, name in ids)
        self._pending = dict((request_id, None) for request_id, _name in ids)
        try:
            self._sock.settimeout(max(timeout, 0.001))
            self._sock.sendall(b"".join(lines))
        except (BrokenPipeError, ConnectionResetError) as err:
            self.closed = True
            raise self._closed_error() from err
        except socket.timeout as err:
            raise QmpTimeout("QMP command %s: could not send within %.1f s" % (names, timeout)) from err
        try:
            while any(reply is None for reply in self._pending.values()):
                if self.closed:
                    raise self._closed_error()
                if not self._receive(deadline - time.monotonic()):
                    raise QmpTimeout("QMP command %s: no reply within %.1f s on %s" % (names, timeout, self.path))
            replies = self._pending
        finally:
            self._pending = {}
        results = []
        for request_id, name in ids:
            reply: Message = replies[request_id] or {}  # never None here: the loop above waited for every reply
            if "error" in reply:
                error = reply["error"]
                raise QmpError(name, error.get("class"), error.get("desc"))
            results.append(reply["return"])
        return results

    def hmp(self, command_line: str, timeout: float | None = None) -> str:
        """Run a human monitor command; return its text output."""
        return self.command("human-monitor-command", {"command-line": command_line}, timeout)

    def query_name(self) -> str | None:
        """The VM's -name, or None when it was started without one."""
        return self.command("query-name").get("name")

    def query_status(self) -> dict[str, t.Any]:
        """The query-status dict: {'status': 'running'|'paused'|'prelaunch'|..., 'running': bool, ...}."""
        return self.command("query-status")

    # -- events ------------------------------------------------------------------------

    def events(self) -> list[Message]:
        """Return and forget the events received so far (no I/O)."""
        events, self._events = self._events, []
        return events

    def read_available(self) -> list[Message]:
        """Without blocking, take in whatever has arrived and return all queued events.

        On EOF this sets `closed` instead of raising, so events that came just before
        (SHUTDOWN) are still returned; after that the fd stays readable, drop it from
        your select() set.
        """
        while not self.closed and self._receive(0):
            pass
        return self.events()

    def wait_event(self, names: str | t.Iterable[str], timeout: float) -> Message | None:
        """Wait for the first event named in `names` (a name or a list), removing it from
        the queue; other events stay queued. None on timeout; QmpClosed on EOF."""
        names = (names,) if isinstance(names, str) else tuple(names)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for index in range(seen, len(self._events)):
                if self._events[index]["event"] in names:
                    return self._events.pop(index)
            seen = len(self._events)
            if self.closed:
                raise self._closed_error()
            if not self._receive(deadline - time.monotonic()) and time.monotonic() >= deadline:
                return None
