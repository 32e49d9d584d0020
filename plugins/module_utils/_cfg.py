# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The qemu-init cfg file format: KEY="value" lines and # comments.

qemu-init sources these files with bash, so people write them by hand with comments, blank
lines, single or double quotes and sometimes no quotes at all. We read that subset of shell
syntax (no expansions are performed, none are needed) and keep every line we do not change
exactly as it was, so render(parse(text)) == text and hand edits survive our rewrites.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import QemuInitError

_ASSIGN_RE = re.compile(r"^(?P<indent>\s*)(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<rest>.*)$")
# Copying the qemu-init wiki page into an editor gives typographic quotes; they mean plain ones.
_SMART_QUOTES = {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"}
# Characters that keep their special meaning inside bash double quotes.
_DQ_SPECIAL = '\\"$`'


# Appended to the error about a cfg file that cannot be read: where the way out is documented.
DAMAGED_CFG_HINT = ("the cfg file is damaged and was left as it is: fix it, or move it away and run qemu_init.qemu.vm_config "
                    "for the VM again (docs/cfg-format.md, recovery)")
# Appended to the error about a cfg path holding no readable file (a directory, a FIFO, a dangling link, ...).
CFG_FILE_HINT = ("the cfg file was left as it is: make it a readable file, or move it away and run qemu_init.qemu.vm_config "
                 "for the VM again (docs/cfg-format.md, recovery)")


class CfgError(QemuInitError):
    """A cfg file (or a value for it) cannot be read or written."""


def quote(value: str) -> str:
    """Render a value the way qemu-init files write them: in double quotes, shell-safe."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise CfgError("cfg values are single lines; %r contains a line break or NUL" % (value,))
    return '"%s"' % "".join("\\" + c if c in _DQ_SPECIAL else c for c in value)


def _unquote(rest: str, where: str) -> str:
    """Read the value part of KEY=... (a shell word without expansions); text after it may only be a comment."""
    for smart, plain in _SMART_QUOTES.items():
        rest = rest.replace(smart, plain)
    out = []
    i = 0
    n = len(rest)
    while i < n:
        c = rest[i]
        if c in " \t":
            break
        if c == "'":
            end = rest.find("'", i + 1)
            if end < 0:
                raise CfgError("%s: unterminated single quote" % where)
            out.append(rest[i + 1:end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise CfgError("%s: unterminated double quote" % where)
                c = rest[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and rest[i + 1] in _DQ_SPECIAL:
                    out.append(rest[i + 1])
                    i += 2
                    continue
                if c in "$`":
                    raise CfgError("%s: shell expansion (%s) is not supported in cfg values; write the value out" % (where, c))
                out.append(c)
                i += 1
        elif c == "\\" and i + 1 < n:
            out.append(rest[i + 1])
            i += 2
        elif c in "$`;&|<>()":
            raise CfgError("%s: shell syntax %r is not supported in cfg values; quote the value" % (where, c))
        else:
            out.append(c)
            i += 1
    trailer = rest[i:].strip()
    if trailer and not trailer.startswith("#"):
        raise CfgError("%s: unexpected text after the value: %r" % (where, trailer))
    return "".join(out)


class _Line:
    __slots__ = ("raw", "key", "value")

    def __init__(self, raw: str, key: str | None = None, value: str | None = None) -> None:
        self.raw = raw
        self.key = key
        self.value = value


class CfgFile:
    """An ordered cfg file. Unchanged lines render exactly as they were read."""

    def __init__(self, lines: t.Iterable[_Line] | None = None) -> None:
        self._lines = list(lines or [])

    @classmethod
    def parse(cls, text: str, source: str = "<cfg>") -> CfgFile:
        """Read cfg text; CfgError names source:line for anything outside the supported syntax."""
        lines = []
        seen: dict[str, int] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                lines.append(_Line(raw))
                continue
            match = _ASSIGN_RE.match(raw)
            if not match:
                raise CfgError("%s:%d: expected KEY=\"value\" or a # comment, got %r" % (source, number, raw))
            key = match.group("key")
            where = "%s:%d" % (source, number)
            value = _unquote(match.group("rest"), where)
            if key in seen:
                # bash would silently take the last one; an operator who wrote two is better told.
                raise CfgError("%s: %s is set twice (first on line %d)" % (where, key, seen[key]))
            seen[key] = number
            lines.append(_Line(raw, key, value))
        return cls(lines)

    @classmethod
    def from_items(cls, items: t.Iterable[tuple[str, t.Any]], header: t.Iterable[str] | None = None) -> CfgFile:
        """A new file: the header lines as comments, then KEY="value" for each item."""
        cfg = cls([_Line("# " + h if h else "#") for h in (header or [])])
        for key, value in items:
            cfg.set(key, value)
        return cfg

    def copy(self) -> CfgFile:
        """An independent copy (what parse(render()) gives, without parsing)."""
        return CfgFile(_Line(line.raw, line.key, line.value) for line in self._lines)

    def render(self) -> str:
        if not self._lines:
            return ""
        return "\n".join(line.raw for line in self._lines) + "\n"

    def keys(self) -> list[str]:
        return [line.key for line in self._lines if line.key is not None]

    def items(self) -> list[tuple[str, str]]:
        # A line has a value exactly when it has a key (parse and set make both).
        return [(line.key, line.value) for line in self._lines if line.key is not None and line.value is not None]

    def as_dict(self) -> dict[str, str]:
        return dict(self.items())

    def get(self, key: str, default: str | None = None) -> str | None:
        for line in self._lines:
            if line.key == key:
                return line.value
        return default

    def __contains__(self, key: object) -> bool:
        return any(line.key == key for line in self._lines)

    def set(self, key: str, value: t.Any) -> None:
        """Set key to value: in place if the key exists (untouched when equal), else appended."""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise CfgError("invalid cfg key %r" % (key,))
        value = str(value)
        for line in self._lines:
            if line.key == key:
                if line.value != value:
                    match = _ASSIGN_RE.match(line.raw)
                    line.raw = "%s%s=%s" % (match.group("indent") if match else "", key, quote(value))
                    line.value = value
                return
        self._lines.append(_Line("%s=%s" % (key, quote(value)), key, value))

    def delete(self, key: str) -> None:
        self._lines = [line for line in self._lines if line.key != key]

    def retain(self, keep: t.Callable[[str], bool]) -> None:
        """Drop every assignment whose key does not satisfy keep(key); comments stay."""
        self._lines = [line for line in self._lines if line.key is None or keep(line.key)]


def numbered(cfg_dict: t.Mapping[str, str], prefix: str) -> list[str]:
    """Values of PREFIX1, PREFIX2, ... up to the first gap, as qemu-init numbers devices."""
    values = []
    index = 1
    while "%s%d" % (prefix, index) in cfg_dict:
        values.append(cfg_dict["%s%d" % (prefix, index)])
        index += 1
    return values
