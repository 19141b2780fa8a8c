"""The console's build is reproducible and what the package ships is what its sources make.

`make console` runs `npm ci` (versions pinned by console/package-lock.json) and console/build.mjs;
building again into a fresh folder must give the very same bytes as the files in the package.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harvest.console.static import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_rebuild_gives_the_same_bytes_as_the_shipped_console(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (CONSOLE / "node_modules" / "hls.js").is_dir():
        pytest.fail("the console's build tools are missing: run `make console` (make install does)")
    # WHEN the console is built again from its sources into a fresh folder
    subprocess.run([node, "build.mjs", str(tmp_path / "out")], cwd=CONSOLE, check=True, capture_output=True)

    # THEN every file is byte-identical to the installed one, and nothing is missing or extra
    assert digests(tmp_path / "out") == digests(STATIC_DIR)
    # AND the bundled player is the version the lock file pins
    lock = json.loads((CONSOLE / "package-lock.json").read_text("utf-8"))
    pinned = lock["packages"]["node_modules/hls.js"]["version"]
    assert (STATIC_DIR / "licenses" / "BUNDLED.txt").read_text("utf-8") == f"hls.js {pinned}\n"
    assert json.loads((CONSOLE / "package.json").read_text("utf-8"))["dependencies"]["hls.js"] == pinned
