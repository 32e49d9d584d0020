# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._qmp import (
    QmpClient,
    QmpClosed,
    QmpConnectError,
    QmpError,
    QmpTimeout,
    pipeline_many,
)

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="qmp", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_qemu(directory, *extra):
    sock = os.path.join(directory, "qmp.sock")
    log = open(os.path.join(directory, "qemu.log"), "wb")
    proc = subprocess.Popen(
        [QEMU, "-machine", "none", "-nodefaults", "-display", "none", "-S",
         "-qmp", "unix:%s,server=on,wait=off" % sock] + list(extra),
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        assert proc.poll() is None, "qemu exited: %s" % open(os.path.join(directory, "qemu.log")).read()
        assert time.monotonic() < deadline, "qemu did not create %s" % sock
        time.sleep(0.005)
    return proc, sock


@pytest.fixture
def qemu(short_dir):
    proc, sock = start_qemu(short_dir, "-name", "testvm")
    yield proc, sock
    proc.kill()
    proc.wait()


@pytest.fixture
def client(qemu):
    # QEMU creates the socket file (bind) a moment before it listens: refused until then.
    deadline = time.monotonic() + 10
    while True:
        try:
            qmp = QmpClient(qemu[1], timeout=10)
            break
        except QmpConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    with qmp:
        yield qmp


# -- against a real QEMU ---------------------------------------------------------------

@needs_qemu
def test_greeting_name_and_status(client):
    assert client.greeting["QMP"]["version"]["qemu"]["major"] >= 4
    assert client.query_name() == "testvm"
    status = client.query_status()
    assert status["status"] == "prelaunch" and status["running"] is False


@needs_qemu
def test_unknown_command_raises_with_class(client):
    with pytest.raises(QmpError) as info:
        client.command("no-such-command")
    assert info.value.error_class == "CommandNotFound"
    assert "no-such-command" in info.value.desc
    assert isinstance(info.value, QemuInitError)
    # The session is still usable after an error.
    assert client.query_name() == "testvm"


@needs_qemu
def test_pipeline_negotiates_and_queries_in_one_write(qemu):
    # What the probe sends: qmp_capabilities and its queries together, right after the greeting.
    deadline = time.monotonic() + 10
    while True:
        try:
            qmp = QmpClient(qemu[1], timeout=10, negotiate=False)
            break
        except QmpConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    with qmp:
        caps, name, status = qmp.pipeline(["qmp_capabilities", "query-name", "query-status"])
        assert caps == {} and name == {"name": "testvm"} and status["status"] == "prelaunch"
        with pytest.raises(QmpError) as info:
            qmp.pipeline(["query-name", "no-such-command", ("human-monitor-command", {"command-line": "info name"})])
        assert info.value.command == "no-such-command" and info.value.error_class == "CommandNotFound"
        assert qmp.query_name() == "testvm"  # every reply of the failed pipeline was read: the next one is ours


@needs_qemu
def test_command_arguments_and_hmp(client):
    assert "paused" in client.hmp("info status")
    with pytest.raises(QmpError) as info:
        client.command("query-name", {"bogus": 1})
    assert info.value.error_class == "GenericError"


@needs_qemu
def test_stop_cont_events_are_queued(client):
    client.command("cont")
    client.command("stop")
    # Both events arrived while command() waited for replies; none is lost.
    assert client.wait_event("STOP", timeout=5)["event"] == "STOP"
    resume = client.wait_event(["RESUME", "SHUTDOWN"], timeout=5)
    assert resume["event"] == "RESUME" and "timestamp" in resume
    assert client.events() == []
    assert client.query_status()["status"] == "paused"


@needs_qemu
def test_wait_event_times_out(client):
    started = time.monotonic()
    assert client.wait_event("SHUTDOWN", timeout=0.3) is None
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6


@needs_qemu
def test_quit_is_seen_as_eof(client, qemu):
    assert client.command("quit") == {}
    deadline = time.monotonic() + 10
    events = []
    while not client.closed:
        assert time.monotonic() < deadline, "no EOF after quit"
        # The lead's stop loop multiplexes like this: poll the fds, then read_available().
        select.select([client], [], [], 1)
        events += client.read_available()
    assert [e["event"] for e in events] == ["SHUTDOWN"]
    assert events[0]["data"]["reason"] == "host-qmp-quit"
    assert qemu[0].wait(timeout=10) == 0
    with pytest.raises(QmpClosed):
        client.query_name()
    with pytest.raises(QmpClosed):
        client.wait_event("SHUTDOWN", timeout=1)


@needs_qemu
def test_second_client_gets_no_greeting(client, qemu):
    # QEMU serves one QMP client at a time; the second connection just waits.
    with pytest.raises(QmpTimeout) as info:
        QmpClient(qemu[1], timeout=0.3)
    assert qemu[1] in str(info.value)
    assert client.query_name() == "testvm"


# -- connection failures ---------------------------------------------------------------

def test_missing_socket(short_dir):
    path = os.path.join(short_dir, "absent.sock")
    with pytest.raises(QmpConnectError) as info:
        QmpClient(path, timeout=1)
    assert path in str(info.value)


def test_refused_socket(short_dir):
    # A socket file whose server is gone (QEMU killed) refuses connections.
    path = os.path.join(short_dir, "dead.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()
    with pytest.raises(QmpConnectError) as info:
        QmpClient(path, timeout=1)
    assert path in str(info.value) and "refused" in str(info.value)


# -- framing, against a scripted server on a real unix socket ------------------------

def read_request(reader):
    return json.loads(reader.readline().decode())


@pytest.fixture
def scripted(short_dir):
    """A connected QmpClient plus the server side of its socket, after the handshake."""
    path = os.path.join(short_dir, "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    accepted = []

    def handshake():
        conn, dummy = server.accept()
        reader = conn.makefile("rb")
        # The greeting is split mid-object: the client must buffer the partial line.
        conn.sendall(b'{"QMP": {"version": {"qemu": {"major": 7}},')
        time.sleep(0.02)
        conn.sendall(b' "capabilities": []}}\r\n')
        request = read_request(reader)
        assert request["execute"] == "qmp_capabilities"
        conn.sendall(json.dumps({"return": {}, "id": request["id"]}).encode() + b"\r\n")
        accepted.append((conn, reader))

    thread = threading.Thread(target=handshake)
    thread.start()
    qmp = QmpClient(path, timeout=5)
    thread.join(5)
    conn, reader = accepted[0]
    yield qmp, conn, reader
    qmp.close()
    reader.close()
    conn.close()
    server.close()


def event(name):
    return b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "%s"}\r\n' % name.encode()


def test_partial_lines_and_several_messages_per_chunk(scripted):
    qmp, conn, dummy = scripted
    assert qmp.greeting["QMP"]["version"]["qemu"]["major"] == 7
    line = event("A")
    conn.sendall(line[:20])
    assert qmp.read_available() == []
    conn.sendall(line[20:] + event("B") + event("C")[:5])
    assert [e["event"] for e in qmp.read_available()] == ["A", "B"]
    conn.sendall(event("C")[5:])
    assert qmp.wait_event("C", timeout=5)["event"] == "C"
    assert not qmp.closed


def test_events_and_stale_replies_around_a_command(scripted):
    qmp, conn, reader = scripted

    def serve():
        request = read_request(reader)
        assert request == {"execute": "query-status", "id": request["id"]}
        reply = json.dumps({"return": {"status": "running"}, "id": request["id"]}).encode() + b"\r\n"
        stale = json.dumps({"return": {"status": "stale"}, "id": "old"}).encode() + b"\r\n"
        conn.sendall(event("BEFORE") + stale + reply[:10])
        time.sleep(0.02)
        conn.sendall(reply[10:] + event("AFTER"))

    thread = threading.Thread(target=serve)
    thread.start()
    assert qmp.query_status() == {"status": "running"}
    thread.join(5)
    assert qmp.wait_event("AFTER", timeout=5)["event"] == "AFTER"
    assert [e["event"] for e in qmp.events()] == ["BEFORE"]


def test_pipeline_sends_once_and_returns_in_order(scripted):
    qmp, conn, reader = scripted

    def serve():
        first, second = read_request(reader), read_request(reader)
        assert [first["execute"], second["execute"]] == ["query-name", "query-status"]
        assert second["arguments"] == {"x": 1}
        # Replies may come in one chunk, with an event between them.
        conn.sendall(json.dumps({"return": {"name": "a"}, "id": first["id"]}).encode() + b"\r\n" + event("E")
                     + json.dumps({"return": {"status": "running"}, "id": second["id"]}).encode() + b"\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    assert qmp.pipeline(["query-name", ("query-status", {"x": 1})]) == [{"name": "a"}, {"status": "running"}]
    thread.join(5)
    assert [e["event"] for e in qmp.events()] == ["E"]


def test_command_timeout_then_eof(scripted):
    qmp, conn, reader = scripted
    started = time.monotonic()
    with pytest.raises(QmpTimeout) as info:
        qmp.command("query-status", timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.5
    assert "query-status" in str(info.value)
    # The late reply (old id) must not be taken as the answer to the next command.
    late_id = read_request(reader)["id"]
    conn.sendall(json.dumps({"return": {"late": True}, "id": late_id}).encode() + b"\r\n" + event("SHUTDOWN"))
    conn.shutdown(socket.SHUT_WR)
    assert qmp.wait_event("SHUTDOWN", timeout=5)["event"] == "SHUTDOWN"
    with pytest.raises(QmpClosed):
        qmp.wait_event("NEVER", timeout=5)
    assert qmp.closed
    with pytest.raises(QmpClosed):
        qmp.command("query-name")


def test_garbage_line_is_reported(scripted):
    qmp, conn, dummy = scripted
    conn.sendall(b"not json\r\n")
    with pytest.raises(QemuInitError) as info:
        qmp.wait_event("X", timeout=5)
    assert "unparsable" in str(info.value)


# -- pipeline_many: many QEMUs asked at once ---------------------------------------------

@needs_qemu
def test_pipeline_many_answers_each_in_order_and_reports_each_failure(short_dir):
    """Three real QEMUs, asked two at a time (limit=2), between a missing socket, a refused one, a monitor another
    client holds (no greeting: a timeout), a server that hangs up and a command QEMU refuses: each job gets its own
    outcome, in the order of the jobs, and a failure ends only its own job."""
    procs, socks = [], []
    for i in range(3):
        directory = os.path.join(short_dir, "vm%d" % i)
        os.mkdir(directory)
        proc, sock = start_qemu(directory, "-name", "vm%d" % i)
        procs.append(proc)
        socks.append(sock)
    refused = os.path.join(short_dir, "dead.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(refused)
    dead.close()
    hangup = os.path.join(short_dir, "hangup.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(hangup)
    server.listen(1)

    def hang_up():
        conn, _address = server.accept()
        conn.close()

    closer = threading.Thread(target=hang_up)
    closer.start()
    holder = QmpClient(socks[2], timeout=5)  # vm2's only monitor is taken
    try:
        queries = ["qmp_capabilities", "query-name"]
        started = time.monotonic()
        out = pipeline_many([(socks[0], queries), (os.path.join(short_dir, "absent.sock"), queries), (socks[1], queries),
                             (refused, queries), (socks[2], queries), (hangup, queries),
                             (socks[0], ["qmp_capabilities", "no-such-command"])], timeout=0.5, limit=2)
        assert time.monotonic() - started < 3
    finally:
        holder.close()
        closer.join(5)
        server.close()
        for proc in procs:
            proc.kill()
            proc.wait()
    assert out[0] == [{}, {"name": "vm0"}] and out[2] == [{}, {"name": "vm1"}]
    assert isinstance(out[1], QmpConnectError) and "absent.sock" in out[1].msg
    assert isinstance(out[3], QmpConnectError) and "refused" in out[3].msg
    assert isinstance(out[4], QmpTimeout) and "no QMP greeting" in out[4].msg and socks[2] in out[4].msg
    assert isinstance(out[5], QmpClosed) and hangup in out[5].msg
    assert isinstance(out[6], QmpError) and out[6].error_class == "CommandNotFound"


def test_pipeline_many_of_nothing():
    assert pipeline_many([]) == []
