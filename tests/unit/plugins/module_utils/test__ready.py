# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Readiness waiting against real local servers: TCP listeners on 127.0.0.1 that send (or never send) an SSH
banner, a unix socket speaking the guest agent's JSON protocol, and real serial log files. Timeouts are small:
the whole file runs in about 3 s."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError
from ansible_collections.qemu_init.qemu.plugins.module_utils._ready import (
    SerialTail,
    Target,
    failure_message,
    not_ready,
    ssh_banner,
    wait_ready,
)

FAST = dict(interval=0.05, attempt_timeout=0.3)
BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


def always() -> bool:
    return True


class Server:
    """A TCP listener on 127.0.0.1 whose every connection gets handle(conn) in a thread; closed by the test."""

    def __init__(self, handle, port: int = 0) -> None:
        self.handle = handle
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            self.handle(conn, self)

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def servers():
    made: list = []

    def make(handle, port=0):
        server = Server(handle, port)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def banner_after(delay: float, before: bytes = b""):
    start = time.monotonic()

    def handle(conn, _server):
        # Like a booting guest behind slirp: connections before `delay` are accepted and closed at once.
        if time.monotonic() - start < delay:
            return
        conn.sendall(before + BANNER)
        time.sleep(0.2)

    return handle


def silent(conn, server):
    server.stopped.wait(2)


def ssh_target(name, port, **kw):
    return Target(name, "ssh", kw.pop("alive", always), host="127.0.0.1", port=port, **kw)


# --- ssh -----------------------------------------------------------------------------------------------------
def test_ssh_ready_once_the_banner_comes(servers):
    server = servers(banner_after(0.3))
    result = wait_ready([ssh_target("web1", server.port)], 3, **FAST)["web1"]
    assert result["ready"] is True and result["reason"] is None
    assert 0.3 <= result["ready_seconds"] < 1.0
    assert result["ssh"] == {"host": "127.0.0.1", "port": server.port}
    assert result["banner"] == BANNER.decode().strip()
    assert result["attempts"] > 1  # the early connections were closed without a banner


def test_ssh_lines_before_the_banner_are_skipped(servers):
    server = servers(banner_after(0, before=b"welcome\r\nto the host\r\n"))
    assert ssh_banner("127.0.0.1", server.port, 1.0) == BANNER.decode().strip()


def test_ssh_silent_server_and_closed_port_are_not_ready(servers):
    quiet = servers(silent)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    began = time.monotonic()
    results = wait_ready([ssh_target("quiet", quiet.port), ssh_target("refused", closed.getsockname()[1])], 0.6, **FAST)
    closed.close()
    assert time.monotonic() - began < 1.2
    assert not_ready(results) == ["quiet", "refused"]
    assert results["quiet"]["ready_seconds"] is None
    assert "no SSH banner on 127.0.0.1:%d" % quiet.port in results["quiet"]["reason"]
    message = failure_message(results, 0.6)
    assert message.startswith("2 VMs not ready within 0.6 s (left running): quiet: not ready in time")
    assert "refused: not ready in time" in message


def test_ssh_server_that_starts_listening_late_is_found(servers):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    timer = threading.Timer(0.3, lambda: servers(banner_after(0), port=port))
    timer.start()
    result = wait_ready([ssh_target("late", port)], 2, **FAST)["late"]
    timer.join()
    assert result["ready"] and 0.3 <= result["ready_seconds"] < 1.0


def test_vms_wait_in_parallel(servers):
    ports = [servers(banner_after(0.5)).port for _server in range(4)]
    began = time.monotonic()
    results = wait_ready([ssh_target("vm%d" % i, port) for i, port in enumerate(ports)], 3, **FAST)
    elapsed = time.monotonic() - began
    assert all(r["ready"] for r in results.values())
    assert elapsed < 1.2  # one after the other would take 4 x 0.5 s


def test_a_dead_qemu_stops_the_wait_at_once(servers):
    quiet = servers(silent)
    deadline = time.monotonic() + 0.3
    began = time.monotonic()
    results = wait_ready([ssh_target("dies", quiet.port, alive=lambda: time.monotonic() < deadline),
                          ssh_target("dead", quiet.port, alive=lambda: False)], 5, **FAST)
    assert time.monotonic() - began < 1.2
    for name in ("dies", "dead"):
        assert not results[name]["ready"] and results[name]["reason"].startswith("QEMU exited before the guest was ready")
    assert results["dead"]["attempts"] == 0


def test_started_counts_ready_seconds_from_the_launch(servers):
    server = servers(banner_after(0))
    result = wait_ready([ssh_target("web1", server.port, started=time.monotonic() - 10)], 2, **FAST)["web1"]
    assert 10 <= result["ready_seconds"] < 11


@pytest.mark.parametrize("target, param, problem", [
    (Target("a", "ping", always), "wait_for", "not one of agent, ssh, serial"),
    (Target("a", "ssh", always, port=22), "wait_for", "needs a host and port"),
    (Target("a", "ssh", always, host="localhost", port=22), "wait_for", "not an IP address"),
    (Target("a", "ssh", always, host="127.0.0.1", port=70000), "wait_for", "not a TCP port"),
    (Target("a", "ssh", always, agent_socket="/x", networks=["10.0.0.0/33"], port=22), "wait_for", "not a network"),
    (Target("a", "agent", always), "wait_for", "guest_agent"),
    (Target("a", "serial", always, serial_log="/x"), "wait_for", "wait_pattern"),
    (Target("a", "serial", always, serial_log="/x", pattern="(unclosed"), "wait_pattern", "not a regular expression"),
])
def test_refusals(target, param, problem):
    with pytest.raises(ParameterError, match=problem) as info:
        wait_ready([target], 1)
    assert info.value.param == param


def test_a_vm_listed_twice_is_refused():
    with pytest.raises(ParameterError, match="twice"):
        wait_ready([Target("a", "agent", always, agent_socket="/x")] * 2, 1)


# --- serial --------------------------------------------------------------------------------------------------
def test_serial_found_in_a_growing_log(tmp_path):
    log = tmp_path / "serial.log"

    def write():
        with open(str(log), "ab") as handle:
            for piece in (b"[    0.0] Linux version 6.1\r\n", b"Debian GNU/Linux 12 web1 tty", b"S0\r\n\r\nweb1 lo", b"gin: "):
                handle.write(piece)
                handle.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=write)
    writer.start()  # the log does not exist when the wait begins
    result = wait_ready([Target("web1", "serial", always, serial_log=str(log), pattern=r"^web1 login: ")], 2, **FAST)["web1"]
    writer.join()
    assert result["ready"] and result["match"] == "web1 login: "


def test_serial_reads_only_new_bytes_and_matches_across_reads(tmp_path):
    log = tmp_path / "serial.log"
    log.write_bytes(b"x" * (3 * 1024 * 1024) + b"\nboot ")  # larger than one read
    tail = SerialTail(str(log), r"boot done")
    assert tail.poll() is None and tail.offset == 3 * 1024 * 1024 + 6
    with open(str(log), "ab") as handle:
        handle.write(b"do")
    assert tail.poll() is None and tail.offset == 3 * 1024 * 1024 + 8
    with open(str(log), "ab") as handle:
        handle.write(b"ne\n")
    assert tail.poll() == "boot done"


def test_serial_utf8_split_between_reads_and_a_new_log_start_over(tmp_path):
    log = tmp_path / "serial.log"
    snowman = "\u2603".encode()
    log.write_bytes(b"a " + snowman[:1])
    tail = SerialTail(str(log), "\u2603 ok")
    assert tail.poll() is None
    with open(str(log), "ab") as handle:
        handle.write(snowman[1:] + b" ok")
    assert tail.poll() == "\u2603 ok"
    log.write_bytes(b"short")  # truncated: a restarted QEMU
    tail = SerialTail(str(log), "^new$", offset=100)
    assert tail.poll() is None and tail.offset == 5
    replacement = tmp_path / "next.log"
    replacement.write_bytes(b"new\n")
    os.replace(str(replacement), str(log))  # another file at the path, shorter than the offset or not
    assert tail.poll() == "new"


def test_serial_log_that_is_not_a_file_is_reported(tmp_path):
    log = tmp_path / "serial.log"
    os.mkfifo(str(log))
    result = wait_ready([Target("web1", "serial", always, serial_log=str(log), pattern="x")], 0.3, **FAST)["web1"]
    assert not result["ready"] and "serial log: %s: it is a named pipe (FIFO), not a file" % log in result["reason"]


# --- agent ---------------------------------------------------------------------------------------------------
INTERFACES = [
    {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [{"ip-address": "127.0.0.1", "prefix": 8}]},
    {"name": "enp0s2", "hardware-address": "52:54:00:12:34:56", "ip-addresses": [
        {"ip-address": "10.0.2.15", "prefix": 24}, {"ip-address": "fe80::5054:ff:fe12:3456%enp0s2", "prefix": 64}]},
]


class FakeAgent:
    """qemu-ga's side of the agent socket: a unix socket server answering guest-sync-delimited and the fact commands.

    The first `silent` connections are accepted and read but never answered: a guest whose agent is not up yet
    (QEMU's chardev accepts the client either way).
    """

    def __init__(self, path: str, silent: int = 0) -> None:
        self.silent = silent
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(4)
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with contextlib.suppress(OSError), conn:
                self._session(conn, answer=self.connections > self.silent)

    def _session(self, conn: socket.socket, answer: bool) -> None:
        buffer = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                line = line.strip(b"\xff")
                if not line or not answer:
                    continue
                request = json.loads(line)
                command = request["execute"]
                if command == "guest-sync-delimited":
                    conn.sendall(b"\xff" + json.dumps({"return": request["arguments"]["id"]}).encode() + b"\n")
                    continue
                reply = {"guest-get-host-name": {"host-name": "web1"},
                         "guest-get-osinfo": {"id": "debian", "version-id": "12", "kernel-release": "6.1.0"},
                         "guest-network-get-interfaces": INTERFACES}.get(command)
                message = {"return": reply} if reply is not None else {"error": {"class": "CommandNotFound", "desc": command}}
                conn.sendall(json.dumps(message).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def agent_path(tmp_path):
    # A short directory: unix socket paths are limited to 107 bytes and pytest's tmp_path can be long.
    directory = tmp_path / "a"
    directory.mkdir()
    path = str(directory / "qga.sock")
    if len(path) > 100:
        pytest.skip("tmp path too long for a unix socket")
    return path


def test_agent_ready_with_facts_once_it_answers(agent_path):
    agent = FakeAgent(agent_path, silent=2)
    try:
        result = wait_ready([Target("web1", "agent", always, agent_socket=agent_path)], 3, interval=0.05, attempt_timeout=0.2)["web1"]
    finally:
        agent.close()
    assert result["ready"] and result["attempts"] == 3
    assert result["addresses"] == ["10.0.2.15"]
    assert result["guest"]["hostname"] == "web1" and result["guest"]["os"]["id"] == "debian"
    assert [i["name"] for i in result["guest"]["interfaces"]] == ["enp0s2"]


def test_agent_socket_missing_times_out_with_the_reason(agent_path):
    result = wait_ready([Target("web1", "agent", always, agent_socket=agent_path)], 0.3, **FAST)["web1"]
    assert not result["ready"] and result["guest"] is None
    assert "guest agent socket" in result["reason"]


def test_ssh_on_an_address_the_agent_reports_inside_accepted_networks(agent_path, servers):
    agent = FakeAgent(agent_path)
    server = servers(banner_after(0))
    try:
        # 10.0.2.15 is not this machine's: the agent's answer is checked against the accepted networks only,
        # and the banner looked for on each accepted address. 127.0.0.0/8 is accepted here but not reported.
        refused = wait_ready([Target("web1", "ssh", always, agent_socket=agent_path, networks=["192.168.0.0/16"], port=server.port)],
                             0.4, **FAST)["web1"]
    finally:
        agent.close()
    assert not refused["ready"] and "reports no address in 192.168.0.0/16" in refused["reason"]
    assert server.connections == 0  # nothing outside the accepted networks was connected to
