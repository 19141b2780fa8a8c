"""Pytest fixtures for real ffmpeg-made media and the live test origin.

Load them with `pytest_plugins = ("tests.support.media",)` (in the root conftest, or in a test
module); the helpers tests call directly (decode_errors, probe) live in harvest.devtools; the fake
clock is tests/support/clock.py.

The media pools are built once into tests/.media (gitignored) and reused across runs: `build_pool`
holds a file lock (tests/.media/.build.lock) while it builds, so parallel pytest-xdist workers wait
for the first one and then all read the same cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from tests.support.clock import ManualClock

from harvest.devtools import KINDS, ChannelSpec, FaultPlan, LiveOrigin, Pool, build_pools

MEDIA_DIR = Path(__file__).resolve().parents[1] / ".media"
# A wall time off any segment boundary, so "has this segment ended" is never a tie.
TEST_NOW = 1_800_000_007.3


@pytest.fixture(scope="session")
def media_pools() -> dict[str, Pool]:
    """One pool per kind ("ts", "fmp4", "aes", "byterange"): 12 s of 2 s segments, looped by origins."""
    return build_pools(MEDIA_DIR, KINDS, seconds=12, segment_seconds=2)


@pytest.fixture
def start_origin() -> Iterator[Callable[..., LiveOrigin]]:
    """Start LiveOrigins on a free loopback port; each one is stopped when the test ends.

    The clock defaults to a ManualClock at TEST_NOW, so the live edge is fixed unless a test moves it.
    """
    started: list[LiveOrigin] = []

    def start(
        channels: Mapping[str, ChannelSpec],
        clock: Callable[[], float] | None = None,
        faults: FaultPlan | None = None,
    ) -> LiveOrigin:
        origin = LiveOrigin(channels, clock=clock or ManualClock(TEST_NOW), faults=faults).start()
        started.append(origin)
        return origin

    yield start
    for origin in started:
        origin.stop()
