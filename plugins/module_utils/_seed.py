# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloud-init NoCloud seed of a VM: its files, its FAT12 `cidata` image, and writing that image only when it changed.

Input is the `cloud_init` option ({user_data, meta_data, network_config, vendor_data}) and the VM's name. A dict
becomes YAML, a string is used as it is (a `#cloud-config` document, a `#!` script, MIME multipart: cloud-init
decides). cloud-init reads user-data and vendor-data as cloud-config only after the first line `#cloud-config`,
so a dict there gets that line; meta-data and network-config are plain YAML documents.

YAML without PyYAML: modules run on the managed host, which may have no PyYAML. Every value is written in
JSON-compatible flow style ({"key": [1, "two", true, null]}), which is YAML, with strings always double-quoted
so that nothing is left to YAML 1.1's implicit typing (`no`, `on`, `0755`, `1e3` stay strings). The quoting is
JSON's plus what YAML adds to it: characters that YAML reads as line breaks inside a quoted scalar (U+0085,
U+2028, U+2029) or refuses as unprintable (DEL, C1 controls, U+FFFE/U+FFFF) are written as \\u escapes, and a key
whose quoted form is longer than YAML's 1024-character limit on implicit keys gets an explicit `? ` key.
The unit tests load the output back with PyYAML's SafeLoader (what cloud-init uses) and compare.

meta-data: `instance-id` defaults to a digest of the whole seed (user-data, network-config, vendor-data and the
rest of meta-data), so any change of content is a new instance for cloud-init and its per-instance modules run
again (note: that includes regenerating the SSH host keys). `local-hostname` defaults to the VM's name.
A meta_data string is a YAML document we cannot parse without PyYAML: a JSON object is read as a dict; otherwise
the defaults are appended as top-level `key: value` lines unless a line already starts with that key.

The seed holds secrets (passwords, keys): it is written 0600 from the first byte (a temp file from mkstemp,
renamed over the old one), and describe_seed() reports names, sizes and digests only. Caveat: a digest of a
file lets someone who holds it confirm a guess of that file's whole content (only a risk for low-entropy
secrets in an otherwise known file).

Measured (Python 3.11, this project's 2-core test VM, load ~2 from other work): build_seed() of a typical seed
(user-data with a user, an SSH key, packages, write_files, runcmd; meta-data; network-config), the 1 MiB image
included: 1000 creations in 0.10-0.11 s, ~0.1 ms each (`python -m timeit -n 1000`, see test__seed.py's docstring).
write_seed() of an unchanged seed (read and compare 1 MiB): ~0.21 ms; of a changed one (temp file, fsync,
rename, directory fsync): ~1.8 ms on this disk.
Proved on the project's Debian 12 image (cloud-init 22.4.2, OVMF, TCG): cloud-init found the seed
(`DataSourceNoCloud [seed=/dev/vdb]`, blkid LABEL="CIDATA" TYPE="vfat"), applied local-hostname, the SSH key,
write_files (a string with `yes: no`, `0755`, a snowman and quotes arrived byte for byte) and runcmd, and
instance_id in /run/cloud-init/instance-data.json is ours.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import typing as t

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._fat import fat12_image
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import atomic_write, read_bytes

LABEL = "cidata"  # what cloud-init's NoCloud data source looks for (case-insensitively)
CLOUD_CONFIG = "#cloud-config\n"
# option key -> (file name in the seed, whether a dict gets the #cloud-config line)
FILES = {
    "user_data": ("user-data", True),
    "meta_data": ("meta-data", False),
    "network_config": ("network-config", False),
    "vendor_data": ("vendor-data", True),
}
ORDER = [name for name, _cloud_config in FILES.values()]
MODE = 0o600
# Larger than any FAT12 image (4084 clusters of 32 KiB): an existing file beyond it is not a seed of ours.
MAX_IMAGE_BYTES = 160 * 1024 * 1024
_MAX_DEPTH = 64  # deeper than any cloud-config; stops a self-referencing structure before RecursionError
_MAX_PLAIN_KEY = 1000  # YAML: an implicit key is at most 1024 characters, quotes and escapes included

# Characters a double-quoted YAML scalar cannot hold as they are: the quote and backslash, C0 controls (JSON too),
# DEL and C1 controls (YAML 1.1 refuses them), U+0085/U+2028/U+2029 (YAML line breaks: they would be folded),
# U+FEFF (a BOM), U+FFFE/U+FFFF (not characters), and surrogates (not UTF-8 at all: refused below).
_NEEDS_ESCAPE = re.compile("[\"\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_SURROGATE = re.compile("[\ud800-\udfff]")


class Seed(t.NamedTuple):
    """One VM's seed: its files [(name, content)], the instance-id cloud-init will see, and the FAT12 image."""

    files: list[tuple[str, bytes]]
    instance_id: str
    image: bytes


# --- YAML ----------------------------------------------------------------------------------------------------
def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _SHORT_ESCAPES.get(char) or "\\u%04x" % ord(char)


def yaml_string(text: str, param: str) -> str:
    """`text` as a double-quoted YAML scalar (a JSON string, with YAML's extra escapes)."""
    if _SURROGATE.search(text):
        raise ParameterError(param, "the string holds a lone surrogate (not valid Unicode text): %r" % text[:40])
    return '"%s"' % _NEEDS_ESCAPE.sub(_escape, text)


def _float(value: float, param: str) -> str:
    if not math.isfinite(value):
        raise ParameterError(param, "%r has no YAML form cloud-init reads as a number; give it as a string" % value)
    text = repr(value)
    # YAML 1.1 (PyYAML, cloud-init) reads 1e-05 as a string: its float pattern wants a dot.
    if "." not in text and "e" in text:
        mantissa, exponent = text.split("e")
        text = "%s.0e%s" % (mantissa, exponent)
    return text


def _emit(value: t.Any, param: str, indent: str, depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise ParameterError(param, "nested more than %d levels deep" % _MAX_DEPTH)
    # bool before int: True is an int to Python.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(value, param)
    if isinstance(value, str):
        return yaml_string(value, param)
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(param, "mapping keys must be strings, %r is %s" % (key, type(key).__name__))
            child = "%s.%s" % (param, key)
            quoted = yaml_string(key, child)
            # An implicit key longer than 1024 characters is a YAML error; an explicit one (`? key : value`) is not.
            prefix = "? %s : " if len(quoted) > _MAX_PLAIN_KEY else "%s: "
            entries.append(inner + prefix % quoted + _emit(item, child, inner, depth + 1))
        return "{\n%s\n%s}" % (",\n".join(entries), indent)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [inner + _emit(item, "%s[%d]" % (param, index), inner, depth + 1) for index, item in enumerate(value)]
        return "[\n%s\n%s]" % (",\n".join(items), indent)
    raise ParameterError(param, "%s is not something YAML can hold here (give a dict, list, string, number, "
                                "boolean or null)" % type(value).__name__)


def to_yaml(value: t.Any, param: str) -> str:
    """One YAML document holding `value` (dicts, lists, str, int, float, bool, None), ending with a newline.

    `param` names the value in errors (`cloud_init.user_data`); nested values add `.key` or `[index]`.
    """
    return _emit(value, param, "", 0) + "\n"


# --- the seed ------------------------------------------------------------------------------------------------
def _meta_scalar(text: str, key: str) -> str | None:
    """The value of a top-level `key: value` line of a block-style YAML document, quotes removed; None if absent."""
    match = re.search(r"^%s[ \t]*:[ \t]*(.*?)[ \t]*$" % re.escape(key), text, re.MULTILINE)
    if not match:
        return None
    value = match.group(1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def _document(value: t.Any, param: str, cloud_config: bool) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return (CLOUD_CONFIG if cloud_config else "") + to_yaml(value, param)
    raise ParameterError(param, "must be a dict or a string, not %s" % type(value).__name__)


def _encode(text: str, param: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParameterError(param, "not valid Unicode text (%s)" % exc.reason) from exc


def _digest(files: t.Sequence[tuple[str, bytes]]) -> str:
    # Name and length before each content: no two different seeds give the same byte stream.
    sha = hashlib.sha256()
    for name, content in files:
        sha.update(b"%s\0%d\0" % (name.encode(), len(content)))
        sha.update(content)
    return sha.hexdigest()


def _meta(meta: t.Any, vm_name: str, param: str) -> tuple[t.Callable[[str | None], str], str | None]:
    """(render(instance_id) -> the meta-data text, the instance-id the user gave or None)."""
    if meta is None:
        meta = {}
    if isinstance(meta, str) and meta.strip().startswith("{"):
        try:
            parsed = json.loads(meta)
        except ValueError:
            parsed = None  # YAML flow style that is not JSON: kept as text
        if isinstance(parsed, dict):
            meta = parsed
    if isinstance(meta, dict):
        fields = dict(meta)
        fields.setdefault("local-hostname", vm_name)
        given = fields.pop("instance-id", None)

        def render_dict(instance_id: str | None) -> str:
            # instance-id first: it is what one looks for when cloud-init re-ran (or did not).
            ordered: dict[str, t.Any] = {} if instance_id is None else {"instance-id": given if given is not None else instance_id}
            ordered.update(fields)
            return to_yaml(ordered, param)

        return render_dict, None if given is None else str(given)
    if not isinstance(meta, str):
        raise ParameterError(param, "must be a dict or a string, not %s" % type(meta).__name__)
    text = meta
    if _meta_scalar(text, "local-hostname") is None:
        text += ("" if not text or text.endswith("\n") else "\n") + "local-hostname: %s\n" % yaml_string(vm_name, param)
    given_text = _meta_scalar(text, "instance-id")

    def render_text(instance_id: str | None) -> str:
        if given_text is not None or instance_id is None:
            return text
        return "instance-id: %s\n" % yaml_string(instance_id, param) + text

    return render_text, given_text


def seed_files(cloud_init: t.Mapping[str, t.Any], vm_name: str, param: str = "cloud_init") -> tuple[list[tuple[str, bytes]], str]:
    """The seed's files [(name, content)] in a fixed order, and its instance-id; ParameterError for bad input."""
    if not isinstance(cloud_init, t.Mapping):
        raise ParameterError(param, "must be a dict with keys %s" % ", ".join(FILES))
    unknown = sorted(str(key) for key in cloud_init if key not in FILES)
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ParameterError(param, "unknown key%s %s (known: %s)" % (plural, ", ".join(unknown), ", ".join(FILES)))
    content: dict[str, bytes] = {}
    for key, (name, cloud_config) in FILES.items():
        value = cloud_init.get(key)
        if key == "meta_data" or (value is None and key != "user_data"):
            continue  # meta-data below (its defaults depend on the rest); network-config, vendor-data only when given
        key_param = "%s.%s" % (param, key)
        content[name] = _encode(_document({} if value is None else value, key_param, cloud_config), key_param)

    meta_param = "%s.meta_data" % param
    render_meta, given_id = _meta(cloud_init.get("meta_data"), vm_name, meta_param)
    if given_id is None:
        # The digest covers everything cloud-init sees except the id itself.
        content["meta-data"] = _encode(render_meta(None), meta_param)
        instance_id = "iid-qi-" + _digest([(name, content[name]) for name in ORDER if name in content])[:20]
    else:
        instance_id = given_id
    content["meta-data"] = _encode(render_meta(instance_id), meta_param)
    return [(name, content[name]) for name in ORDER if name in content], instance_id


def build_seed(cloud_init: t.Mapping[str, t.Any], vm_name: str, param: str = "cloud_init") -> Seed:
    """The seed of VM `vm_name` for its `cloud_init` option: files, instance-id and the `cidata` FAT12 image."""
    files, instance_id = seed_files(cloud_init, vm_name, param)
    try:
        image = fat12_image(LABEL, files)
    except ValueError as exc:
        raise ParameterError(param, "the seed does not fit a FAT12 volume: %s" % exc) from exc
    return Seed(files, instance_id, image)


def seed_changed(path: str, seed: Seed, vm: str | None = None) -> bool:
    """Whether writing `seed` to `path` would change anything: content, or a mode other than 0600, or a link there."""
    if os.path.islink(path):
        return True  # replaced by a regular file of ours, never written through
    current = read_bytes(path, "cloud-init seed", vm, limit=MAX_IMAGE_BYTES)
    if current is None or current != seed.image:
        return True
    return stat.S_IMODE(os.stat(path).st_mode) != MODE


def write_seed(path: str, seed: Seed, vm: str | None = None) -> tuple[bool, str]:
    """Write the seed image to `path` when it differs from what is there; (changed, instance_id).

    The image is written to a temp file (0600 from its creation: mkstemp), fsynced and renamed over `path`; a
    file with the same bytes but a wider mode only has its mode fixed.
    """
    if not seed_changed(path, seed, vm):
        return False, seed.instance_id
    if not os.path.islink(path) and read_bytes(path, "cloud-init seed", vm, limit=MAX_IMAGE_BYTES) == seed.image:
        try:
            os.chmod(path, MODE)
        except OSError as exc:
            raise QemuInitError("setting the mode of the cloud-init seed %s failed: %s" % (path, exc.strerror or exc)) from exc
        return True, seed.instance_id
    atomic_write(path, seed.image, mode=MODE)
    return True, seed.instance_id


def describe_seed(seed: Seed) -> dict[str, t.Any]:
    """What a result or diff may show of a seed: names, sizes, digests and the instance-id, never the content."""
    return dict(
        label=LABEL,
        instance_id=seed.instance_id,
        size=len(seed.image),
        sha256=hashlib.sha256(seed.image).hexdigest(),
        files=[dict(name=name, size=len(content), sha256=hashlib.sha256(content).hexdigest()) for name, content in seed.files],
    )
