# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Count the tests of a pytest run (its JUnit XML files) and judge its skips against an allow-list.

    python tools/skips.py STEP ALLOWLIST JUNIT.xml...

A skipped test proves nothing, so tools/test.sh must not count it as a pass. This prints every skip
with its reason, and one line for the step's note in the summary ("420 tests: 418 passed, 0 failed,
2 skipped (2 expected)"). A skip is expected when a line of ALLOWLIST (tests/expected-skips.txt) names the
step and matches the test; each such line gives its reason. Other skips are unexpected: with CI=true
(or QI_STRICT_SKIPS=1) they make the exit status 1, so that CI fails on a test that quietly stopped
running; QI_STRICT_SKIPS=0 turns that off. QI_EXPECTED_SKIPS adds patterns for one run
("units:tests.unit.*::test_x*" separated by spaces).

ALLOWLIST lines: STEP PATTERN REASON... ('#' starts a comment). PATTERN is an fnmatch pattern over
the test's id "CLASSNAME::NAME" as JUnit gives it (tests.hostile.test_vm::test_vm_lifecycle,
tests.unit.plugins.modules.test_vm::TestX::test_y[param] becomes ...test_vm.TestX::test_y[param]).
"""

from __future__ import annotations

import fnmatch
import os
import sys
import xml.etree.ElementTree as ET


def read_allowlist(path, step):
    """[(pattern, reason)] of the step; a line without a reason is an error."""
    allowed = []
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                fields = line.split(None, 2)
                if len(fields) < 3:
                    raise SystemExit("%s:%d: want STEP PATTERN REASON, got %r" % (path, number, line))
                if fields[0] == step:
                    allowed.append((fields[1], fields[2]))
    for entry in os.environ.get("QI_EXPECTED_SKIPS", "").split():
        entry_step, _sep, pattern = entry.partition(":")
        if entry_step == step and pattern:
            allowed.append((pattern, "QI_EXPECTED_SKIPS"))
    return allowed


def read_junit(paths):
    """(counts, skips): counts of tests/failures/errors/skipped; skips as [(id, message)]."""
    counts = dict(tests=0, failures=0, errors=0, skipped=0)
    skips = []
    for path in paths:
        root = ET.parse(path).getroot()
        for case in root.iter("testcase"):
            counts["tests"] += 1
            kinds = [child.tag for child in case]
            if "failure" in kinds:
                counts["failures"] += 1
            elif "error" in kinds:
                counts["errors"] += 1
            elif "skipped" in kinds:
                counts["skipped"] += 1
                skipped = case.find("skipped")
                test_id = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
                skips.append((test_id, skipped.get("message") or skipped.get("type") or "no reason given"))
    return counts, skips


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    step, allowlist, paths = argv[0], argv[1], [p for p in argv[2:] if os.path.isfile(p) and os.path.getsize(p)]
    if not paths:
        print("skips: no JUnit results for %s (%s)" % (step, " ".join(argv[2:])), file=sys.stderr)
        print("no test results")
        return 1
    allowed = read_allowlist(allowlist, step)
    counts, skips = read_junit(paths)
    unexpected = []
    for test_id, message in skips:
        reason = next((why for pattern, why in allowed if fnmatch.fnmatchcase(test_id, pattern)), None)
        if reason is None:
            unexpected.append(test_id)
            print("skips: UNEXPECTED skip %s: %s" % (test_id, message), file=sys.stderr)
        else:
            print("skips: expected skip %s: %s (allowed: %s)" % (test_id, message, reason), file=sys.stderr)
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    note = "%d tests: %d passed, %d failed, %d skipped" % (
        counts["tests"], passed, counts["failures"] + counts["errors"], counts["skipped"])
    if skips:
        note += " (%d expected, %d unexpected)" % (len(skips) - len(unexpected), len(unexpected))
    strict = os.environ.get("QI_STRICT_SKIPS", "1" if os.environ.get("CI") == "true" else "0") == "1"
    if unexpected and strict:
        note += "; unexpected skips fail the step (CI=true or QI_STRICT_SKIPS=1)"
    print(note)
    return 1 if unexpected and strict else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
