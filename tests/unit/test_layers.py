"""Settings are read once, at the edge: nothing below the composition root reads the environment."""

from __future__ import annotations

import re
from pathlib import Path

import harvest

PACKAGE = Path(harvest.__file__).parent

# Where the environment may be read: the settings parsers, the composition root (through them),
# SCF's rotating role keys, and the command line and local tools that are not shipped to SCF.
EDGE = ("settings.py", "composition.py", "adapters/role_keys.py", "cli/", "local/", "devtools/")

READS_ENV = re.compile(r"\bos\.environ\b|\bgetenv\b|\benviron\[")


def test_no_use_case_handler_or_domain_module_reads_the_environment() -> None:
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not str(path.relative_to(PACKAGE)).startswith(EDGE) and READS_ENV.search(path.read_text())
    )
    assert readers == []


def test_the_scan_sees_a_read_of_the_environment() -> None:
    # The pattern catches the ways a module reads it (so an empty list above means something).
    assert all(READS_ENV.search(line) for line in ("env = os.environ", "os.getenv('X')", "environ['X']"))
    assert (PACKAGE / "settings.py").exists()
    assert READS_ENV.search((PACKAGE / "settings.py").read_text())
