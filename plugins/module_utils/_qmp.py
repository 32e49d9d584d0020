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


Command = t.Union[str, t.Tuple[str, t.Optional[t.Dict[str, t.Any]]]]  # a name, or (name, arguments)


def _requests(commands: t.Sequence[Command], last_id: int) -> tuple[list[tuple[str, str]], bytes]:
    """([(request id, command name)], the requests as one write); ids count on from last_id. Ids tie replies to
    requests, so a reply arriving after a timeout is not mistaken for the answer to a later command."""
    ids, lines = [], []
    for number, item in enumerate(commands, start=last_id + 1):
        name, arguments = (item, None) if isinstance(item, str) else item
        ids.append(("qi-%d" % number, name))
        request: dict[str, t.Any] = {"execute": name, "id": ids[-1][0]}
        if arguments:
            request["arguments"] = arguments
        lines.append(json.dumps(request).encode("utf-8") + b"\r\n")
    return ids, b"".join(lines)


def _results(ids: list[tuple[str, str]], replies: t.Mapping[str, Message | None]) -> list[t.Any]:
    """The `return` values in the order sent; the first error (in that order) raises QmpError."""
    results = []
    for request_id, name in ids:
        reply: Message = replies[request_id] or {}  # never None here: callers wait for every reply
        if "error" in reply:
            error = reply["error"]
            raise QmpError(name, error.get("class"), error.get("desc"))
        results.append(reply["return"])
    return results


def _connect(path: str, timeout: float) -> socket.socket:
    """A socket connected to the QMP socket at path (blocking, with `timeout`); QmpConnectError otherwise."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as err:  # missing file, refused (QEMU gone), not a socket, path too long...
        sock.close()
        raise QmpConnectError("cannot connect to QMP socket %s: %s" % (path, err.strerror or err)) from err
    return sock


def _decode(path: str, line: bytes) -> Message:
    try:
        return json.loads(line.decode("utf-8"))
    except ValueError as err:
        raise QemuInitError("unparsable QMP message on %s: %s" % (path, err), line=repr(line)) from err


def _closed(path: str, greeted: bool) -> QmpClosed:
    if not greeted:
        return QmpClosed("QMP socket %s closed before the greeting" % path)
    return QmpClosed("QMP connection %s closed (QEMU exited?)" % path)


def _no_greeting(path: str, timeout: float) -> QmpTimeout:
    # QEMU serves one QMP client at a time; the kernel still accepts the connection into the backlog, so a busy
    # monitor looks like silence.
    return QmpTimeout("no QMP greeting on %s within %.1f s (is another client connected?)" % (path, timeout))


def _no_reply(ids: list[tuple[str, str]], timeout: float, path: str) -> QmpTimeout:
    names = ", ".join(name for _id, name in ids)
    return QmpTimeout("QMP command %s: no reply within %.1f s on %s" % (names, timeout, path))


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
        self._sock = _connect(path, timeout)
        self._poller = select.poll()
        self._poller.register(self._sock, select.POLLIN)
        try:
            while self.greeting is None:
                if not self._receive(deadline - time.monotonic()):
                    raise _no_greeting(path, timeout)
                if self.closed:
                    raise _closed(path, greeted=False)
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
                self._dispatch(_decode(self.path, line))
        return True

    def _dispatch(self, msg: Message) -> None:
        if "event" in msg:
            self._events.append(msg)
        elif "QMP" in msg:
            self.greeting = msg
        elif msg.get("id") in self._pending and ("return" in msg or "error" in msg):
            self._pending[msg["id"]] = msg
        # Anything else is a late reply to a command that timed out: its caller gave up.

    def _closed_error(self) -> QmpClosed:
        return _closed(self.path, greeted=True)

    # -- commands ----------------------------------------------------------------------

    def command(self, name: str, arguments: dict[str, t.Any] | None = None, timeout: float | None = None) -> t.Any:
        """Run a QMP command; return its `return` value or raise QmpError/QmpTimeout/QmpClosed."""
        return self.pipeline([(name, arguments)], timeout)[0]

    def pipeline(self, commands: t.Sequence[Command], timeout: float | None = None) -> list[t.Any]:
        """Send several commands in one write and wait for all their replies: one round trip instead of one per
        command (QEMU runs them in order). Each command is a name or (name, arguments). Their `return` values in
        order; the first error (in the order sent) raises QmpError, QmpTimeout or QmpClosed."""
        if self.closed:
            raise self._closed_error()
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        ids, data = _requests(commands, self._next_id)
        self._next_id += len(ids)
        self._pending = dict((request_id, None) for request_id, _name in ids)
        try:
            self._sock.settimeout(max(timeout, 0.001))
            self._sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as err:
            self.closed = True
            raise self._closed_error() from err
        except socket.timeout as err:
            names = ", ".join(name for _id, name in ids)
            raise QmpTimeout("QMP command %s: could not send within %.1f s" % (names, timeout)) from err
        try:
            while any(reply is None for reply in self._pending.values()):
                if self.closed:
                    raise self._closed_error()
                if not self._receive(deadline - time.monotonic()):
                    raise _no_reply(ids, timeout, self.path)
            replies = self._pending
        finally:
            self._pending = {}
        return _results(ids, replies)

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


class _Exchange:
    """One connection of pipeline_many: the requests went out with the connect; collects the greeting and replies."""

    def __init__(self, path: str, commands: t.Sequence[Command], timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.ids, data = _requests(commands, 0)
        self.replies: dict[str, Message | None] = dict((request_id, None) for request_id, _name in self.ids)
        self.greeted = False
        self.buf = b""
        self.sock = _connect(path, timeout)
        try:
            # QEMU reads them once it has sent its greeting: one write, no round trip for the greeting.
            self.sock.sendall(data)
        except OSError as err:
            self.sock.close()
            raise _closed(path, greeted=False) from err
        self.sock.setblocking(False)

    def receive(self) -> bool:
        """Take in what arrived; True once every reply is in. QmpClosed on EOF before that."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            raise _closed(self.path, self.greeted)
        *lines, self.buf = (self.buf + data).split(b"\n")  # a partial last line waits for the rest
        for line in lines:
            if not line.strip():
                continue
            msg = _decode(self.path, line)
            if "QMP" in msg:
                self.greeted = True
            elif msg.get("id") in self.replies and ("return" in msg or "error" in msg):
                self.replies[msg["id"]] = msg
        return all(reply is not None for reply in self.replies.values())

    def timed_out(self) -> QmpTimeout:
        return _no_reply(self.ids, self.timeout, self.path) if self.greeted else _no_greeting(self.path, self.timeout)


def pipeline_many(jobs: t.Sequence[tuple[str, t.Sequence[Command]]], timeout: float = DEFAULT_TIMEOUT,
                  limit: int = 64) -> list[list[t.Any] | QemuInitError]:
    """QmpClient(path, negotiate=False).pipeline(commands) for every (path, commands) of jobs, all at once in this
    thread: each connection gets its requests in one write and its replies as they come (one poll over all), up to
    `limit` connections open at a time, each within `timeout` of its connect. In the order of jobs: the `return`
    values, or the error (QmpConnectError, QmpClosed, QmpTimeout, QmpError) that connection ended with.

    QEMU answers each in well under a millisecond of its own CPU; asking 100 VMs one after the other (or 16 threads at a
    time, which the GIL serialises) waited ~55 ms on 2 cores, one poll over all of them ~25 ms."""
    outcomes: list[list[t.Any] | QemuInitError | None] = [None] * len(jobs)
    poller = select.poll()
    open_: dict[int, tuple[int, _Exchange]] = {}
    queue = iter(enumerate(jobs))

    def finish(fd: int, outcome: list[t.Any] | QemuInitError) -> None:
        index, exchange = open_.pop(fd)
        poller.unregister(fd)
        exchange.sock.close()
        outcomes[index] = outcome

    try:
        while True:
            for index, (path, commands) in queue:
                try:
                    exchange = _Exchange(path, commands, timeout)
                except QemuInitError as exc:
                    outcomes[index] = exc
                    continue
                open_[exchange.sock.fileno()] = (index, exchange)
                poller.register(exchange.sock, select.POLLIN)
                if len(open_) >= limit:
                    break
            if not open_:
                break
            wait = min(exchange.deadline for _index, exchange in open_.values()) - time.monotonic()
            for fd, _event in poller.poll(max(0, math.ceil(wait * 1000))):
                exchange = open_[fd][1]
                try:
                    if exchange.receive():
                        finish(fd, _results(exchange.ids, exchange.replies))
                except QemuInitError as exc:  # QmpClosed, QmpError, an unparsable message
                    finish(fd, exc)
            now = time.monotonic()
            for fd, (_index, exchange) in list(open_.items()):
                if now >= exchange.deadline:
                    finish(fd, exchange.timed_out())
    finally:
        for _index, exchange in open_.values():
            exchange.sock.close()
    return t.cast("list[list[t.Any] | QemuInitError]", outcomes)
