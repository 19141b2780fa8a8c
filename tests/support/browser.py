"""Constants and helpers of the console's browser tests (fixtures: tests/browser/conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def chromium_context(profile: Path, extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    """Debian's chromium with a fresh user-data dir (`profile`), for as long as the caller iterates."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
            viewport={"width": 1360, "height": 860},
            timezone_id="UTC",
            locale="en-GB",
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
