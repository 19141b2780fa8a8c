"""Constants and helpers of the console's browser tests (fixtures: tests/browser/conftest.py)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harvest.local.serve import LocalStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET_ID, SECRET_KEY, REGION = "AKIDconsole", "console-secret-key", "ap-singapore"
BUCKET = "vod-1250000000"
DESTINATION = f"https://{BUCKET}.cos.{REGION}.myqcloud.com/vod/"
TIMEOUT_MS = 30_000


@dataclass
class Console:
    stack: LocalStack

    @property
    def url(self) -> str:
        return f"{self.stack.url}/console/"


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot to HARVEST_CONSOLE_SCREENSHOTS (docs/ for the README), when it is set."""
    target = os.environ.get("HARVEST_CONSOLE_SCREENSHOTS", "")
    if target:
        shutil.copy(path, Path(target) / path.name)
