# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every file the collection reads and writes: one reader, one atomic writer.

The reader turns whatever the file system holds at a path into text or a clear QemuInitError naming the
VM (when known) and the file: a directory, a FIFO, a socket or device, a dangling symbolic link, a
permission the module's user lacks, an I/O error, a file too large to be ours or not UTF-8 text. It never
blocks: a FIFO is opened with O_NONBLOCK (which succeeds at once without a writer) and refused after
fstat, before anything is read, and only regular files are read.

/proc is not read through here: there a missing entry means "no such process", which is an answer, not
an error (_process.py, _ports.py).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

# Our files are small (a registry of 10,000 VMs is about 1 MiB). A larger one is not ours (a cfg path
# pointing at a disk image, say): refused without reading it into memory.
MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 65536
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a unix socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class FileReadError(QemuInitError):
    """A file exists (or a link to one does) but cannot be read as the collection's text file."""

    def __init__(self, msg, path, problem):
        super().__init__(msg)
        self.path = path
        self.problem = problem


def _kind(mode):
    for test, label in _KINDS:
        if test(mode):
            return label
    return "something other than a regular file"


def _problem(path, exc):
    """What is wrong with path, in words, from the OSError opening or reading it."""
    code = exc.errno
    if code == errno.ENOENT and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return "it is a symbolic link to %s, which does not exist" % target
    if code == errno.EISDIR:
        return "it is a directory, not a file"
    if code == errno.ENXIO:  # a unix socket, or a device with nothing behind it, cannot be opened at all
        with contextlib.suppress(OSError):
            return "it is %s, not a file" % _kind(os.stat(path).st_mode)
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (the module runs as uid %d)" % os.geteuid()
    if code == errno.ELOOP:
        return "too many levels of symbolic links (a link loop)"
    if code == errno.ENOTDIR:
        return "a directory on its path is not a directory"
    name = errno.errorcode.get(code, "")
    return "%s%s" % (exc.strerror or exc, " (%s)" % name if name else "")


def _error(path, problem, what, vm, hint):
    subject = ("the %s of VM %s" % (what, vm)) if vm else ("the %s" % what)
    return FileReadError("cannot read %s: %s: %s%s" % (subject, path, problem, ("; " + hint) if hint else ""), path, problem)


def _open_regular(path, what, vm, hint):
    """(fd, fstat) of the regular file at path (symbolic links followed), or None when nothing is there; anything
    else at path (a directory, a FIFO, a dangling link, no permission) raises FileReadError. The caller closes fd."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        # O_NOCTTY: a path to a terminal must not become the module's controlling terminal.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise _error(path, _problem(path, exc), what, vm, hint) from exc
        return None
    except OSError as exc:
        raise _error(path, _problem(path, exc), what, vm, hint) from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _error(path, _problem(path, exc), what, vm, hint) from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _error(path, "it is %s, not a file" % _kind(st.st_mode), what, vm, hint)
    return fd, st


def read_bytes(path, what="file", vm=None, hint=None, limit=MAX_BYTES):
    """The bytes of the regular file at path (symbolic links followed), or None when nothing is there.

    Anything else at path raises FileReadError: `what` names the file in the message ("cfg file",
    "registry", ...), `vm` the VM it belongs to, `hint` says what to do about it.
    """
    opened = _open_regular(path, what, vm, hint)
    if opened is None:
        return None
    fd, st = opened
    try:
        if st.st_size > limit:
            raise _error(path, "it is %d bytes, more than a %s can be (%d bytes)" % (st.st_size, what, limit), what, vm, hint)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:  # grew while read, or a size fstat does not know
                raise _error(path, "it is more than %d bytes, more than a %s can be" % (limit, what), what, vm, hint)
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _error(path, _problem(path, exc), what, vm, hint) from exc
    finally:
        os.close(fd)


def read_text(path, what="file", vm=None, hint=None, limit=MAX_BYTES, damaged_hint=None):
    """The UTF-8 text of the regular file at path, or None when nothing is there (see read_bytes).

    damaged_hint, when given, replaces hint for a file that is there but is not UTF-8 text (damaged, not misplaced).
    """
    data = read_bytes(path, what, vm, hint, limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, "not UTF-8 text (%s)" % exc, what, vm, damaged_hint or hint) from exc


def read_json(path, what="file", vm=None, hint=None):
    """The JSON document in the file at path, or None when nothing is there."""
    text = read_text(path, what, vm, hint)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _error(path, "not JSON (%s)" % exc, what, vm, hint) from exc


def read_appended(path: str, offset: int, identity: tuple[int, int] | None, what: str = "log", vm: str | None = None,
                  limit: int = 1024 * 1024) -> tuple[bytes, int, tuple[int, int]] | None:
    """Up to `limit` bytes of the growing regular file at path from `offset` on, for readers that follow a log.

    Returns (data, the offset after it, the file's identity (st_dev, st_ino)), or None when nothing is there.
    When the file at path is not the one `identity` names (replaced; None: any file) or is shorter than `offset`
    (truncated), it is read from its start: data then begins at offset 0, which the caller sees in the returned offset.
    Anything but a regular file raises FileReadError, as read_bytes does.
    """
    opened = _open_regular(path, what, vm, None)
    if opened is None:
        return None
    fd, st = opened
    try:
        current = (st.st_dev, st.st_ino)
        if (identity is not None and current != identity) or st.st_size < offset:
            offset = 0
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, limit)
        return data, offset + len(data), current
    except OSError as exc:
        raise _error(path, _problem(path, exc), what, vm, None) from exc
    finally:
        os.close(fd)


def atomic_write(path, text, mode=0o644, durable=True):
    """Replace `path` with `text` (str, written as UTF-8, or bytes): temp file in the same directory, fsync, rename, fsync dir.

    The temp file is 0600 from its creation (mkstemp) until chmod to `mode` just before the rename, so a secret
    written with mode 0600 is never readable by others. On any failure the old file is untouched and the temp
    file removed.

    durable=False leaves out both fsyncs (readers still see the old file or the new one, never a part): for the
    run-time records of a process (launch record, links.json), which a crash of the host takes with it and which
    live under /run, a tmpfs on most hosts. Two fsyncs cost ~2 ms on a disk; a VM's start writes two records.
    """
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    except OSError as exc:
        raise QemuInitError("writing %s failed: %s" % (path, exc.strerror or exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise QemuInitError("writing %s failed: %s" % (path, exc.strerror or exc)) from exc
        raise
    if not durable:
        return
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
