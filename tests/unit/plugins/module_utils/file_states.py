# Copyright (c) qemu_init.qemu contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real file system states at the paths of the collection's files (test__files.py, test__file_states.py)."""

from __future__ import annotations

import os
import socket

# Our files are never this large (_files.MAX_BYTES); a cfg path pointing at a disk image is.
HUGE = 8 * 1024 * 1024 + 1


def _directory(path):
    os.mkdir(path)


def _fifo(path):
    os.mkfifo(path)


def _dangling(path):
    os.symlink(path + ".gone", path)


def _loop(path):
    os.symlink(path, path)


def _socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.close()  # the socket file stays


def _devnull(path):
    os.symlink("/dev/null", path)


def _eio(path):
    # A real I/O error: reading /proc/self/mem at offset 0 (never mapped) fails with EIO.
    os.symlink("/proc/self/mem", path)


def _huge(path):
    with open(path, "wb") as handle:
        handle.truncate(HUGE)


def _not_utf8(path):
    with open(path, "wb") as handle:
        handle.write(b'NAME="web1"\n\xff\xfe\n')


STATES = [
    (_directory, "it is a directory, not a file"),
    (_fifo, "it is a named pipe (FIFO), not a file"),
    (_dangling, "it is a symbolic link to %s.gone, which does not exist"),
    (_loop, "too many levels of symbolic links"),
    (_socket, "it is a unix socket, not a file"),
    (_devnull, "it is a character device, not a file"),
    (_eio, "Input/output error (EIO)"),
    (_huge, "more than a cfg file can be"),
    (_not_utf8, "not UTF-8 text"),
]
