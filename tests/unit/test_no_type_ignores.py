"""mypy checks everything it is given (issue 13: no silenced type errors in wiring): the library, the
SCF entry points, the packaging scripts, the benchmark and the tests carry no ignore comment for
mypy, so a type error is fixed where it is. A cast with a comment saying why tells mypy something."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("shared/harvest", "functions", "packaging", "bench", "tests")
MARK = "type: " + "ignore"  # spelled apart so this file does not match itself


def test_no_type_ignore_anywhere_mypy_checks() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in CHECKED
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if MARK in line
    ]
    assert found == []
