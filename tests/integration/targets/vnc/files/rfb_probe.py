# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tiny RFB (VNC) client and a secret finder, for the vnc integration target. Standard library only.

  rfb_probe.py types ADDRESS        the security types the server offers (RFB 3.8), as JSON
  rfb_probe.py auth ADDRESS         VNC authentication (type 2) with the password read from stdin: the
                                    SecurityResult (0 ok, 1 failed) as JSON
  rfb_probe.py scan PATH...         every file under the paths whose bytes hold the secret read from stdin, with
                                    its mode, as JSON (the secret is never an argument: argv is world-readable)

ADDRESS is unix:PATH or HOST:PORT; connect only to 127.0.0.1 / ::1 or our own sockets.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import sys

# --- DES (FIPS 46-3), enough for VNC authentication: one key, ECB, 8-byte blocks -------------------------------
_IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40,
       32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63,
       55, 47, 39, 31, 23, 15, 7]
_FP = [40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13,
       53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27, 34, 2, 42, 10, 50, 18, 58, 26,
       33, 1, 41, 9, 49, 17, 57, 25]
_E = [32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21, 20,
      21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1]
_P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22,
      11, 4, 25]
_PC1 = [57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4]
_PC2 = [14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47,
        55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32]
_SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
_S = [
    [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
     4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
     0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
     13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
     10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
     4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
     9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
     1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
     7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
]


def _permute(value, table, width):
    out = 0
    for pos in table:
        out = (out << 1) | ((value >> (width - pos)) & 1)
    return out


def _subkeys(key):
    cd = _permute(int.from_bytes(key, "big"), _PC1, 64)
    c, d = cd >> 28, cd & 0xFFFFFFF
    keys = []
    for shift in _SHIFTS:
        c = ((c << shift) | (c >> (28 - shift))) & 0xFFFFFFF
        d = ((d << shift) | (d >> (28 - shift))) & 0xFFFFFFF
        keys.append(_permute((c << 28) | d, _PC2, 56))
    return keys


def des_encrypt_block(key, block):
    keys = _subkeys(key)
    value = _permute(int.from_bytes(block, "big"), _IP, 64)
    left, right = value >> 32, value & 0xFFFFFFFF
    for k in keys:
        x = _permute(right, _E, 32) ^ k
        s_out = 0
        for i in range(8):
            six = (x >> (42 - 6 * i)) & 0x3F
            row, column = ((six & 0x20) >> 4) | (six & 1), (six >> 1) & 0xF
            s_out = (s_out << 4) | _S[i][row * 16 + column]
        left, right = right, left ^ _permute(s_out, _P, 32)
    return _permute((right << 32) | left, _FP, 64).to_bytes(8, "big")


def vnc_response(password, challenge):
    """VNC authentication: DES-ECB of the 16-byte challenge, keyed with the password (8 bytes, NUL padded), each
    key byte's bits reversed (RFB's historical quirk)."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode("latin-1")[:8].ljust(8, b"\0"))
    return des_encrypt_block(key, challenge[:8]) + des_encrypt_block(key, challenge[8:16])


# --- RFB -------------------------------------------------------------------------------------------------------
def _connect(address):
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address[5:]
    else:
        host, _sep, port = address.rpartition(":")
        host = host.strip("[]")
        if host not in ("127.0.0.1", "::1"):
            raise SystemExit("refusing to connect to %s: loopback or our own unix sockets only" % host)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    sock.settimeout(10)
    sock.connect(target)
    return sock


def _recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit("the server closed the connection after %r" % data)
        data += chunk
    return data


def _handshake(sock):
    version = _recv(sock, 12)
    sock.sendall(b"RFB 003.008\n")
    count = _recv(sock, 1)[0]
    if count == 0:
        length = struct.unpack(">I", _recv(sock, 4))[0]
        raise SystemExit("the server refused: %s" % _recv(sock, length).decode("utf-8", "replace"))
    return version.decode("ascii").strip(), list(_recv(sock, count))


def types(address):
    with _connect(address) as sock:
        version, offered = _handshake(sock)
    return dict(version=version, types=offered)


def auth(address, password):
    with _connect(address) as sock:
        version, offered = _handshake(sock)
        if 2 not in offered:
            return dict(version=version, types=offered, result=None)
        sock.sendall(bytes([2]))
        sock.sendall(vnc_response(password, _recv(sock, 16)))
        result = struct.unpack(">I", _recv(sock, 4))[0]
        reason = ""
        if result:
            length = struct.unpack(">I", _recv(sock, 4))[0]
            reason = _recv(sock, length).decode("utf-8", "replace")
        else:
            sock.sendall(bytes([1]))  # ClientInit, shared: the server answers with its framebuffer
            width, height = struct.unpack(">HH", _recv(sock, 4))
            reason = "framebuffer %dx%d" % (width, height)
    return dict(version=version, types=offered, result=result, reason=reason)


def scan(paths, secret):
    found = []
    needle = secret.encode()
    for top in paths:
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    continue
                with open(path, "rb") as handle:
                    if needle in handle.read():
                        found.append(dict(path=path, mode="%04o" % stat.S_IMODE(st.st_mode)))
    return found


def main(argv):
    if argv[1:2] == ["selftest"]:
        # FIPS 81's DES example and an OpenSSL-checked vector.
        assert des_encrypt_block(bytes.fromhex("0123456789abcdef"), b"Now is t").hex() == "3fa40e8a984d4815"
        assert des_encrypt_block(bytes.fromhex("0102030405060708"), b"01234567").hex() == "1b18b97a85f967e9"
        out = dict(ok=True)
    elif argv[1:2] == ["types"]:
        out = types(argv[2])
    elif argv[1:2] == ["auth"]:
        out = auth(argv[2], sys.stdin.read().rstrip("\n"))
    elif argv[1:2] == ["scan"]:
        out = scan(argv[2:], sys.stdin.read().rstrip("\n"))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
