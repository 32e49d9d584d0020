# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tpm: a TPM 2.0 emulated by swtpm (_swtpm.py), its state in the state dir; started before QEMU, ends with it
(swtpm --terminate exits when QEMU closes the connection). TPM in the cfg."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._common import ParameterError

# _swtpm is imported by the functions that use it: a VM without a TPM never loads it (test_lazy_imports.py).
CFG_KEY_PATTERN = r"TPM"


def cfg_items(spec):
    return [("TPM", "yes")] if spec.tpm else []


def check_host(module, spec):
    """ParameterError naming the package when tpm is on and swtpm is not installed: vm_config checks it before it
    writes anything, so that a VM it configured does not fail only at launch."""
    if spec.tpm and not module.get_bin_path("swtpm"):
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

        raise ParameterError("tpm", _swtpm.MISSING)


def paths(ctx):
    from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

    return _swtpm.tpm_paths(ctx.state.root, ctx.run.root, ctx.spec.name)


def argv(ctx):
    if not ctx.spec.tpm:
        return []
    from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

    return _swtpm.qemu_args(paths(ctx).socket)


def prepare(ctx):
    """Start the VM's swtpm (kept when it already runs for this VM)."""
    if ctx.spec.tpm:
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

        _swtpm.Swtpm(ctx.module).start(paths(ctx))


def teardown(ctx):
    """Stop the VM's swtpm: after a failed launch it would wait for a QEMU forever."""
    if ctx.spec.tpm:
        from ansible_collections.qemu_init.qemu.plugins.module_utils import _swtpm

        _swtpm.Swtpm(ctx.module).stop(paths(ctx))
