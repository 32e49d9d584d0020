# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one address parser (plugins/module_utils/_addr.py)."""

from __future__ import annotations

import pytest

from ansible_collections.qemu_init.qemu.plugins.module_utils import _addr
from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError


@pytest.mark.parametrize("value, host, port, bracketed", [
    ("127.0.0.1:80", "127.0.0.1", 80, False),
    (":10001", "", 10001, False),
    ("[::1]:22", "::1", 22, True),
    ("host-a.example:65535", "host-a.example", 65535, False),
])
def test_hostport(value, host, port, bracketed):
    assert _addr.hostport(value, "p") == (host, port, bracketed)


@pytest.mark.parametrize("value, allow_empty, message", [
    ("127.0.0.1", True, "is not HOST:PORT"),
    ("127.0.0.1:0", True, "port 0 is not between 1 and 65535"),
    ("127.0.0.1:65536", True, "port 65536 is not between"),
    (":80", False, "needs a host to connect to"),
    (None, True, "is not HOST:PORT"),
    (80, True, "is not HOST:PORT"),
])
def test_hostport_refuses_naming_the_parameter(value, allow_empty, message):
    with pytest.raises(ParameterError) as info:
        _addr.hostport(value, "nics[2].listen", allow_empty)
    assert info.value.param == "nics[2].listen" and message in str(info.value)


def test_stream_address_takes_unix_paths_only_absolute():
    assert _addr.stream_address("unix:/run/x.sock", "p") == "/run/x.sock"
    assert _addr.stream_address("[::1]:7", "p").port == 7
    with pytest.raises(ParameterError):
        _addr.stream_address("unix:relative.sock", "p")


def test_forward_round_trip_and_refusal():
    forward = _addr.forward("tcp::2222-:22", "nics[0].hostfwd")
    assert forward == ("tcp", "", 2222, "", 22)
    assert forward._replace(host_addr="127.0.0.1").render() == "tcp:127.0.0.1:2222-:22"
    with pytest.raises(ParameterError, match="PROTO:"):
        _addr.forward("sctp::1-:2", "nics[0].hostfwd")


def test_ip_and_loopback():
    assert _addr.ip("230.0.0.1", "p").is_multicast
    with pytest.raises(ParameterError, match="IPv4 only"):
        _addr.ip("::1", "p", version=4, what="QEMU's mcast backend")
    with pytest.raises(ParameterError, match="is not an IP address"):
        _addr.ip("nope", "p")
    assert _addr.is_loopback("[::1]") and _addr.is_loopback("localhost") and _addr.is_loopback("127.3.0.1")
    assert not _addr.is_loopback("0.0.0.0") and not _addr.is_loopback("example.org")
