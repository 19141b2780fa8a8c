"""Fixtures for the console's browser tests: `harvest serve`'s stack in-process over a live origin
with real ffmpeg media, and Debian's chromium driven by Playwright (never a downloaded browser).

`console_page` is a fresh tab (its own sessionStorage) at the console's URL. Set
HARVEST_CONSOLE_SCREENSHOTS=docs to refresh the README's screenshots from a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.browser import (
    DESTINATION,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    Console,
    chromium_context,
)

from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml
from harvest.local.serve import build_stack
from harvest.settings import Settings


@pytest.fixture(scope="module")
def console(media_pools: dict[str, Pool], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The stack `harvest serve` runs, over a live `news` channel and a `sports` channel."""
    tmp = tmp_path_factory.mktemp("console")
    channels = {
        "news": ChannelSpec("ts", media_pools["ts"], dvr_window=3600),
        "sports": ChannelSpec("ts", media_pools["ts"], dvr_window=600),
    }
    origin = LiveOrigin(channels).start()
    write_channels_yaml(tmp / "channels.yaml", origin.url, channels)
    settings = Settings(
        region=REGION,
        data_dir=tmp / "data",
        channels_file=tmp / "channels.yaml",
        credentials={SECRET_ID: SECRET_KEY},
        port=0,
        workers=2,
        rate_limit=0.0,
        default_destination=DESTINATION,
    )
    stack = build_stack(settings)
    stack.start()
    try:
        yield Console(stack)
    finally:
        stack.stop(timeout=10)
        origin.stop()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    yield from chromium_context(tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture
def console_page(browser_context: object, console: Console) -> Iterator[object]:
    from playwright.sync_api import BrowserContext

    assert isinstance(browser_context, BrowserContext)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A Content-Security-Policy violation is only a console message: count those too.
    page.on(
        "console", lambda message: errors.append(message.text) if "Security Policy" in message.text else None
    )
    page.goto(console.url)
    yield page
    page.close()
    assert errors == [], f"uncaught errors or CSP violations in the page: {errors}"


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")
