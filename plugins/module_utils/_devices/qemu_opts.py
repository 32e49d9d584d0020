# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""QEMU's option-list syntax (a,b=c), as every device kind writes it."""

from __future__ import annotations


def esc(value: object) -> str:
    """Escape a value for a QEMU option list: commas are doubled (QEMU's escape), so a path or name can never
    smuggle in an option of its own."""
    return str(value).replace(",", ",,")
