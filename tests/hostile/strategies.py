# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile values for every kind of parameter the modules take."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import strategies as st

# Everything the tests make lives under SANDBOX; a shell that ever ran one of the $(...) or `...`
# values below would create CANARY.
SANDBOX = tempfile.mkdtemp(prefix="qi-hostile-")
OUTSIDE = os.path.join(SANDBOX, "outside")
CANARY = os.path.join(SANDBOX, "canary")
FILES = os.path.join(OUTSIDE, "files")

SHELLISH = [
    "$(touch %s)" % CANARY, "`touch %s`" % CANARY, ";touch %s" % CANARY, "|touch %s" % CANARY,
    "&& touch %s" % CANARY, "\ntouch %s" % CANARY, "${IFS}", "$HOME", "*", "?", "~root", "!!",
]
PIECES = [
    "", " ", ".", "..", "/", "../", "../../", "a", "Z", "0", "-", "_", ",", ",,", "=", '"', "'", "\\", "#", "%", ":",
    "@", "[", "]", "{", "}", "{{", "}}", "\t", "\n", "\r", "\0", "\x7f", "\u00e9", "\u2603", "\u202e", "\ufeff",
    "\U0001f600", "-net", "-qmp", "0.0.0.0", "::", "127.0.0.1", OUTSIDE, OUTSIDE + "/pwn",
] + SHELLISH

NASTY = [
    "", " ", ".", "..", "../x", "../../x", "/x", OUTSIDE + "/pwn", "a/b", "a\0b", "a\nb", "a\rb", "-x", "--help",
    "a,b", "a,,b", "a=b", 'a"b', "a'b", "a b", "a\tb", "a#b", "a\\", "\\", "a%b", "a:b", "\u00e9", "\u2603",
    "x" * 15, "x" * 16, "x" * 64, "x" * 65, "x" * 4096, "{{ lookup('pipe', 'id') }}", "\u202egnp.exe",
] + SHELLISH

# Hypothesis may use any code point but lone surrogates (they cannot cross JSON into a module).
_CHARS = st.characters(blacklist_categories=("Cs",))

hostile_text = st.one_of(
    st.sampled_from(NASTY),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.text(_CHARS, max_size=40),
    st.text(st.sampled_from("aZ09._-,=:/\\\"'$`;#@[] "), min_size=1, max_size=20),
)
plain_names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z").filter(lambda s: not s.endswith("."))
names = st.one_of(hostile_text, plain_names)
wrong_types = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=False), st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
ints = st.one_of(
    st.sampled_from([-(2 ** 63), -1, 0, 1, 15, 16, 17, 1024, 1025, 65535, 65536, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1,
                     2 ** 31, 2 ** 63, 2 ** 64]),
    st.integers(),
    st.sampled_from(["1", "0x10", "1g", "256M", " 64 ", "1e3", "-0", "", "NaN", "1_000"]),
    st.floats(allow_nan=True, allow_infinity=False),
)
ports = st.one_of(st.sampled_from([0, 1, 22, 1023, 1024, 65535, 65536, 99999, -1]), st.integers(-10, 70000),
                  st.sampled_from(["", "http", "0x50", "080", "1e3", "１２"]))
hosts = st.one_of(
    st.sampled_from(["", "127.0.0.1", "0.0.0.0", "localhost", "[::1]", "[::]", "::1", "[fe80::1%eth0]", "10.0.0.1",
                     "224.0.0.1", "230.0.0.1", "[ff02::1]", "239.255.255.250", "256.1.1.1", "example.invalid", "a,b",
                     "127.0.0.1,server=on", "host=0.0.0.0"]),
    hostile_text,
)
hostports = st.one_of(
    st.builds(lambda h, p: "%s:%s" % (h, p), hosts, ports),
    st.sampled_from(["127.0.0.1", ":", ":1234", "1234", "unix:/x", "unix:" + OUTSIDE + "/s,ock", "unix:rel", "unix:",
                     "127.0.0.1:1234,server=on", "127.0.0.1:1234\n", "fd:3"]),
    hostile_text,
)
hostfwds = st.one_of(
    st.builds(lambda proto, ha, hp, ga, gp: "%s:%s:%s-%s:%s" % (proto, ha, hp, ga, gp),
              st.sampled_from(["tcp", "udp", "sctp", "", "TCP"]),
              st.sampled_from(["", "127.0.0.1", "0.0.0.0", "::1", "[::1]", "10.0.2.15", "a,b"]),
              ports, st.sampled_from(["", "10.0.2.15", "0.0.0.0", "::"]), ports),
    hostile_text,
)
octet = st.integers(0, 255).map(lambda o: "%02x" % o)
macs = st.one_of(
    st.sampled_from(["00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01", "de:ad:be:ef:00:01",
                     "DE:AD:BE:EF:00:01", "De:aD:bE:eF:00:01", "de-ad-be-ef-00-01", "de:ad-be:ef:00:01", "deadbeef0001",
                     "de:ad:be:ef:00", "de:ad:be:ef:00:01:02", "de:ad:be:ef:0:1", " de:ad:be:ef:00:01 ", "gg:ad:be:ef:00:01",
                     "de:ad:be:ef:00:01,", "de:ad:be:ef:00:01\n", "\uff44e:ad:be:ef:00:01"]),
    st.lists(octet, min_size=5, max_size=7).map(":".join),
    st.lists(octet, min_size=6, max_size=6).map(lambda o: ":".join(o).upper()),
    hostile_text,
)
# extra_args that try to open listeners or monitors, to smuggle options, or are just odd.
listener_args = st.sampled_from([
    ["-net", "nic"], ["--net", "user"], ["-monitor", "tcp:0.0.0.0:4444,server,nowait"], ["--monitor", "stdio"],
    ["-qmp", "tcp:0.0.0.0:4444,server=on,wait=off"], ["--qmp", "tcp:0.0.0.0:4444,server=on,wait=off"],
    ["-qmp-pretty", "tcp:127.0.0.1:4444,server=on"], ["-mon", "chardev=c0"], ["-vnc", "0.0.0.0:0"], ["--vnc", ":0"],
    ["-display", "vnc=0.0.0.0:0"], ["-display", "vnc=:1"], ["-display", "vnc=127.0.0.1:1"], ["-display", "none"],
    ["-chardev", "socket,id=c0,host=0.0.0.0,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,host=127.0.0.1,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,host=::,port=4444,server=on,wait=off"],
    ["-chardev", "socket,id=c0,path=" + OUTSIDE + "/c.sock,server=on,wait=off"],
    ["-chardev", "udp,id=c0,port=4444"], ["-chardev", "null,id=c0"],
    ["-gdb", "tcp::1234"], ["-gdb", "tcp:0.0.0.0:1234"], ["-gdb", "tcp:127.0.0.1:1234"], ["-s"], ["-gdb", "1234"],
    ["-incoming", "tcp:0:4444"], ["-incoming", "tcp:127.0.0.1:4444"], ["-incoming", "exec:touch " + CANARY],
    ["-incoming", "defer"], ["-spice", "port=5930,disable-ticketing=on"], ["-spice", "port=5930,addr=127.0.0.1"],
    ["-readconfig", OUTSIDE + "/q.conf"], ["-debugcon", "tcp::4445,server"], ["-parallel", "tcp:0.0.0.0:4446,server"],
    ["-serial", "tcp::4447,server"], ["-drive", "file=/etc/shadow"], ["-daemonize"], ["--daemonize"], ["-pidfile", "/x"],
    ["-name", "x"], ["-m", "1g"], ["-runas", "nobody"], ["-S"], ["-no-shutdown"], ["-device", "virtio-rng-pci"],
    ["-device", "e1000,netdev=net0,mac=01:00:00:00:00:00"], ["-rtc", "base=utc"], ["-msg", "timestamp=on"],
])
extra_args = st.one_of(
    listener_args,
    st.lists(hostile_text, max_size=4),
    st.lists(st.sampled_from(["-S", "-rtc", "base=utc", "-vga", "none", "-device", "virtio-rng-pci", "-boot", "order=n"]),
             max_size=4),
)

# "inf", "-inf", "Infinity" and float infinity make ansible-core's own check_type_int raise OverflowError
# (a traceback before any module code runs; fixed upstream by ansible/ansible#87253). test_upstream.py
# pins that; the other tests leave these values out.
INFINITIES = ["inf", "-inf", "Infinity", float("inf")]


def not_a_shell(value):
    """False for a value naming an existing shell (a binary parameter may name anything else)."""
    found = shutil.which(value) if isinstance(value, str) and value and "\0" not in value else None
    return not (found and os.path.basename(os.path.realpath(found)) in ("sh", "bash", "dash", "zsh", "ksh", "busybox"))
