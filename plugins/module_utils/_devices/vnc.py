# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vnc: the VM's display. VNC, VNC_LISTEN and VNC_PASSWORD_ID in the cfg.

With vnc on, QEMU serves display `slot` (TCP port 5900 + slot, _registry.ports_info) on vnc_listen (127.0.0.1
unless asked otherwise), or, with vnc_listen `unix`, on the unix socket vnc.sock in the run dir (0600) and on no
TCP port at all. With vnc off there is no display (-display none).

A password (vm_config's vnc_password) is never in the argv or the cfg: vm_config writes it to
<state_dir>/<name>/vnc-password (0600) and QEMU reads it from there through a secret object
(-object secret,...,file=,format=raw and -vnc ...,password-secret=). The cfg holds VNC_PASSWORD_ID, a random id
drawn anew each time the file's content changes; it is part of the secret object's id, so a new password changes
the argv and a running VM reports restart_required, while neither the cfg nor the argv tells anything about the
password (a digest would allow guessing an 8-character password offline)."""

from __future__ import annotations

import ipaddress
import re
import secrets

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError, QemuInitError
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.qemu_opts import esc
from ansible_collections.qemu_init.qemu.plugins.module_utils._files import read_bytes

CFG_KEY_PATTERN = r"VNC|VNC_LISTEN|VNC_PASSWORD_ID"
DEFAULT_LISTEN = "127.0.0.1"
UNIX = "unix"  # vnc_listen: the display on <run_dir>/<name>/vnc.sock, no TCP port
# VNC authentication (RFB security type 2) keys DES with the password: QEMU uses its first 8 bytes and ignores the
# rest without a word. Clients encode characters beyond ASCII differently: printable ASCII only.
MAX_PASSWORD = 8
_PASSWORD_RE = re.compile(r"^[\x20-\x7e]+$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECRET_PREFIX = "vncpass-"  # the secret object's id is this plus VNC_PASSWORD_ID (QEMU ids start with a letter)


def build(spec, p, where):
    """Check and set vnc, vnc_listen and vnc_password_id from params p (module parameters or cfg values);
    where(fname) names a field."""
    spec.vnc = bool(p.get("vnc"))
    listen = p.get("vnc_listen") or DEFAULT_LISTEN
    if listen != UNIX:
        try:
            ipaddress.ip_address(listen)
        except ValueError:
            raise ParameterError(where("vnc_listen"), "%r is not an IP address or %s" % (listen, UNIX)) from None
    spec.vnc_listen = listen
    password_id = p.get("vnc_password_id")
    if password_id is not None:
        if not _ID_RE.match(password_id):
            raise ParameterError(where("vnc_password_id"), "%r is not an id (letters, digits, '.', '_', '-')" % (password_id,))
        if not spec.vnc:
            raise ParameterError(where("vnc_password_id"), "a VNC password needs VNC on")
    spec.vnc_password_id = password_id


def check_password(password, vnc_on, where="vnc_password"):
    """Refuse a password VNC cannot use as given (never shows it)."""
    if not vnc_on:
        raise ParameterError(where, "a VNC password needs vnc: true")
    if not password:
        raise ParameterError(where, "must not be empty; leave vnc_password out for a display without a password")
    if len(password) > MAX_PASSWORD:
        raise ParameterError(where, "is %d characters long; VNC authentication (DES) uses at most %d, and QEMU would "
                             "silently ignore the rest" % (len(password), MAX_PASSWORD))
    if not _PASSWORD_RE.match(password):
        raise ParameterError(where, "may hold printable ASCII characters only (VNC clients encode others differently)")


def new_password_id():
    return secrets.token_hex(8)


def listens_tcp(spec):
    """Does the VM's display take its TCP port (5900 + slot)?"""
    return spec.vnc and spec.vnc_listen != UNIX


def socket_path(spec, run):
    """The display's unix socket (vnc_listen: unix), else None."""
    return run.vnc if spec.vnc and spec.vnc_listen == UNIX else None


def cfg_items(spec):
    items = []
    if spec.vnc:
        items.append(("VNC", "yes"))
    if spec.vnc_listen != DEFAULT_LISTEN:
        items.append(("VNC_LISTEN", spec.vnc_listen))
    if spec.vnc_password_id:
        items.append(("VNC_PASSWORD_ID", spec.vnc_password_id))
    return items


def argv(ctx, ports):
    """-vnc HOST:DISPLAY (ports: _registry.ports_info of the VM's slot) or -vnc unix:PATH, with the password's
    secret object when there is one; or -display none."""
    spec = ctx.spec
    if not spec.vnc:
        return ["-display", "none"]
    args = []
    if spec.vnc_listen == UNIX:
        where = "unix:%s" % esc(ctx.run.vnc)
    else:
        host = spec.vnc_listen
        where = "%s:%d" % ("[%s]" % host if ":" in host else host, ports["vnc_display"])
    if spec.vnc_password_id:
        secret = SECRET_PREFIX + spec.vnc_password_id
        args += ["-object", "secret,id=%s,file=%s,format=raw" % (secret, esc(ctx.state.vnc_password))]
        where += ",password-secret=%s" % secret
    return args + ["-vnc", where]


def prepare(ctx):
    """Before launch: the password file the cfg asks for is there (QEMU's own error would not say what to do)."""
    spec = ctx.spec
    if not (spec.vnc and spec.vnc_password_id):
        return
    hint = "run qemu_init.qemu.vm_config with vnc_password to write it"
    data = read_bytes(ctx.state.vnc_password, "VNC password file", spec.name, hint=hint, limit=64)  # FileReadError names it
    if not data:
        raise QemuInitError("VM %s: the VNC password file %s is %s; %s"
                            % (spec.name, ctx.state.vnc_password, "missing" if data is None else "empty", hint))
